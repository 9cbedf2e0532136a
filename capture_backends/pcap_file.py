"""Offline capture from pcap and pcapng files (memory-mapped, no third-party parser).

pcap: all four magics (µs/ns, either byte order) and the "modified" (Kuznetzov)
variant. pcapng: SHB sections in either byte order, IDB per-interface link type,
``if_tsresol`` and ``if_tsoffset``; packets from EPB, SPB and the obsolete OPB.

Damage never raises out of ``packets()``: a truncated last record or an impossible
record length ends the iteration, sets ``truncated`` and adds a human-readable message
to ``warnings`` (Suricata/libpcap stop at the same place). Unknown pcapng blocks are
skipped. Packets of a pcapng interface whose link type differs from the first
interface's are skipped with a warning, because one decoder serves one link type.
Only the constructor raises, with ``PcapError``, for a file that is not a capture.
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from capture_backends.base import BaseBackend, Capability, RawPacket

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAP_MAGIC_MODIFIED = 0xA1B2CD34
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BOM = 0x1A2B3C4D

BLOCK_IDB = 1
BLOCK_OPB = 2
BLOCK_SPB = 3
BLOCK_EPB = 6

OPT_ENDOFOPT = 0
OPT_IF_TSRESOL = 9
OPT_IF_TSOFFSET = 14

# A record larger than this is corruption, not a packet (libpcap's limit for
# "bogus" record lengths is 256 KiB; jumbo/TSO captures stay below it).
MAX_RECORD = 262144 * 4
# mapped file pages already read are given back every 8 MiB (PcapFileBackend._release_behind)
RELEASE_EVERY = 8 << 20


class PcapError(ValueError):
    """The file cannot be read as a pcap/pcapng capture. The message says why."""


class _Interface:
    __slots__ = ("linktype", "snaplen", "ts_div", "ts_mul", "ts_offset")

    def __init__(self, linktype: int, snaplen: int) -> None:
        self.linktype = linktype
        self.snaplen = snaplen
        self.ts_div = 1_000_000.0  # ticks per second (default: microseconds)
        self.ts_mul = 1.0
        self.ts_offset = 0


class PcapFileBackend(BaseBackend):
    """Reads one capture file; ``packets()`` yields ``(ts, bytes, 0)``."""

    name: ClassVar[str] = "pcap"
    capabilities = Capability.OFFLINE

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.truncated = False
        self.warnings: list[str] = []
        self.position = 0
        self.packets_read = 0
        self.skipped_other_linktype = 0
        self._mm: mmap.mmap | None = None
        self._released = 0  # file pages before this offset were given back (_release_behind)
        self._closed = False
        try:
            if not stat.S_ISREG(os.stat(self.path).st_mode):
                raise PcapError(f"{self.path}: not a regular file")
            fd = os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            raise PcapError(f"{self.path}: cannot open: {exc.strerror or exc}") from None
        try:
            st = os.fstat(fd)
            self.size_bytes = st.st_size
            if self.size_bytes < 4:
                raise PcapError(f"{self.path}: not a pcap/pcapng file (only {st.st_size} bytes)")
            try:
                self._mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError) as exc:
                raise PcapError(f"{self.path}: cannot map file: {exc}") from None
        finally:
            os.close(fd)
        self._format = self._detect()

    # -- header detection -------------------------------------------------------------

    def _detect(self) -> str:
        mm = self._mm
        assert mm is not None
        magic_le = struct.unpack_from("<I", mm, 0)[0]
        magic_be = struct.unpack_from(">I", mm, 0)[0]
        if magic_le == PCAPNG_SHB:
            self._open_pcapng()
            return "pcapng"
        for endian, magic in (("<", magic_le), (">", magic_be)):
            if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS, PCAP_MAGIC_MODIFIED):
                self._open_pcap(endian, magic)
                return "pcap"
        raise PcapError(f"{self.path}: not a pcap/pcapng file (unknown magic 0x{magic_be:08x})")

    def _open_pcap(self, endian: str, magic: int) -> None:
        mm = self._mm
        assert mm is not None
        if self.size_bytes < 24:
            raise PcapError(f"{self.path}: truncated pcap file header ({self.size_bytes} bytes)")
        major, _minor, _zone, _sigfigs, snaplen, linktype = struct.unpack_from(
            endian + "HHiIII", mm, 4
        )
        if major != 2:
            raise PcapError(f"{self.path}: unsupported pcap version {major}")
        self.endian = endian
        self.ts_div = 1e9 if magic == PCAP_MAGIC_NS else 1e6
        self.record_extra = 8 if magic == PCAP_MAGIC_MODIFIED else 0
        self.snaplen = snaplen
        # FCS bits live in the upper half of the link-type field (pcap-savefile(5))
        self.linktype = linktype & 0x0FFFFFFF
        self.position = 24

    def _open_pcapng(self) -> None:
        mm = self._mm
        assert mm is not None
        if self.size_bytes < 28:
            raise PcapError(f"{self.path}: truncated pcapng section header")
        endian = self._shb_endian(0)
        if endian is None:
            raise PcapError(f"{self.path}: pcapng section header with a bad byte-order magic")
        self.endian = endian
        # the link type of the first interface, found without consuming packets
        self.linktype = 1
        off = 0
        while off + 12 <= self.size_bytes:
            btype, blen = struct.unpack_from(endian + "II", mm, off)
            if blen < 12 or blen % 4 or off + blen > self.size_bytes:
                break
            if btype == BLOCK_IDB and blen >= 20:
                self.linktype = struct.unpack_from(endian + "H", mm, off + 8)[0]
                break
            if btype in (BLOCK_EPB, BLOCK_SPB, BLOCK_OPB):
                break
            off += blen
        self.position = 0

    def _shb_endian(self, off: int) -> str | None:
        mm = self._mm
        assert mm is not None
        if off + 12 > self.size_bytes:
            return None
        bom = struct.unpack_from("<I", mm, off + 8)[0]
        if bom == PCAPNG_BOM:
            return "<"
        if bom == 0x4D3C2B1A:
            return ">"
        return None

    # -- iteration --------------------------------------------------------------------

    def packets(self) -> Iterator[RawPacket]:
        if self._mm is None or self._closed:
            return iter(())
        if self._format == "pcap":
            return self._pcap_packets()
        return self._pcapng_packets()

    def _release_behind(self, off: int) -> int:
        """Give back the mapped pages already read (every packet is copied out of the map):
        without it a 10 GB capture counts 10 GB of file pages in the run's RSS, which hides
        what the engine itself holds and can push a host into reclaim. Returns the offset
        of the next release."""
        mm = self._mm
        upto = off & ~(mmap.PAGESIZE - 1)
        if mm is not None and upto > self._released and hasattr(mm, "madvise"):
            mm.madvise(mmap.MADV_DONTNEED, self._released, upto - self._released)
            self._released = upto
        return off + RELEASE_EVERY

    def _stop(self, message: str) -> None:
        self.truncated = True
        self.warnings.append(f"{self.path}: {message}")

    def _pcap_packets(self) -> Iterator[RawPacket]:
        mm = self._mm
        assert mm is not None
        rec = struct.Struct(self.endian + "IIII")
        hdr_len = 16 + self.record_extra
        ts_div = self.ts_div
        size = self.size_bytes
        off = self.position
        release_at = off + RELEASE_EVERY
        while off < size and not self._closed:
            if off >= release_at:
                release_at = self._release_behind(off)
            if off + hdr_len > size:
                self._stop(f"truncated packet record header at offset {off}")
                return
            sec, frac, caplen, _origlen = rec.unpack_from(mm, off)
            if caplen > MAX_RECORD:
                self._stop(f"bogus record length {caplen} at offset {off}; stopping")
                return
            start = off + hdr_len
            end = start + caplen
            if end > size:
                self._stop(
                    f"truncated packet at offset {off}: {caplen} bytes announced, "
                    f"{size - start} present"
                )
                return
            data = mm[start:end]
            off = end
            self.position = off
            self.packets_read += 1
            yield (sec + frac / ts_div, data, 0)

    def _pcapng_packets(self) -> Iterator[RawPacket]:
        mm = self._mm
        assert mm is not None
        size = self.size_bytes
        off = self.position
        endian = self.endian
        interfaces: list[_Interface] = []
        first_linktype = self.linktype
        last_ts = 0.0
        release_at = off + RELEASE_EVERY
        while off < size and not self._closed:
            if off >= release_at:
                release_at = self._release_behind(off)
            if off + 12 > size:
                self._stop(f"truncated pcapng block header at offset {off}")
                return
            btype = struct.unpack_from("<I", mm, off)[0]
            if btype == PCAPNG_SHB:
                new_endian = self._shb_endian(off)
                if new_endian is None:
                    self._stop(f"pcapng section header with a bad byte-order magic at {off}")
                    return
                endian = new_endian
                interfaces = []
            btype, blen = struct.unpack_from(endian + "II", mm, off)
            if blen < 12 or blen % 4:
                self._stop(f"bogus pcapng block length {blen} at offset {off}; stopping")
                return
            if off + blen > size:
                self._stop(f"truncated pcapng block at offset {off}")
                return
            body = off + 8
            body_end = off + blen - 4
            off += blen
            self.position = off
            if btype == BLOCK_IDB:
                iface = self._parse_idb(endian, body, body_end)
                if iface is not None:
                    interfaces.append(iface)
                continue
            if btype in (BLOCK_EPB, BLOCK_OPB):
                pkt = self._parse_epb(endian, body, body_end, interfaces, btype == BLOCK_OPB)
            elif btype == BLOCK_SPB:
                pkt = self._parse_spb(endian, body, body_end, interfaces, last_ts)
            else:
                continue  # NRB, ISB, DSB, custom blocks: nothing to inspect
            if pkt is None:
                continue
            ts, data, iface = pkt
            if iface.linktype != first_linktype:
                if not self.skipped_other_linktype:
                    self.warnings.append(
                        f"{self.path}: skipping packets of an interface with link type "
                        f"{iface.linktype} (the run decodes link type {first_linktype})"
                    )
                self.skipped_other_linktype += 1
                continue
            last_ts = ts
            self.packets_read += 1
            yield (ts, data, 0)

    def _parse_idb(self, endian: str, body: int, body_end: int) -> _Interface | None:
        mm = self._mm
        assert mm is not None
        if body + 8 > body_end:
            self.warnings.append(f"{self.path}: short interface description block ignored")
            return None
        linktype, _res, snaplen = struct.unpack_from(endian + "HHI", mm, body)
        iface = _Interface(linktype, snaplen)
        p = body + 8
        while p + 4 <= body_end:
            code, olen = struct.unpack_from(endian + "HH", mm, p)
            p += 4
            if code == OPT_ENDOFOPT or p + olen > body_end:
                break
            if code == OPT_IF_TSRESOL and olen >= 1:
                res = mm[p]
                if res & 0x80:
                    iface.ts_div = float(2 ** min(res & 0x7F, 63))
                else:
                    iface.ts_div = float(10 ** min(res, 18))
            elif code == OPT_IF_TSOFFSET and olen >= 8:
                iface.ts_offset = struct.unpack_from(endian + "q", mm, p)[0]
            p += (olen + 3) & ~3
        return iface

    def _parse_epb(
        self,
        endian: str,
        body: int,
        body_end: int,
        interfaces: list[_Interface],
        obsolete: bool,
    ) -> tuple[float, bytes, _Interface] | None:
        mm = self._mm
        assert mm is not None
        if body + 20 > body_end:
            self.warnings.append(f"{self.path}: short packet block ignored")
            return None
        if obsolete:
            if_id, _drops, ts_hi, ts_lo, caplen, _plen = struct.unpack_from(
                endian + "HHIIII", mm, body
            )
        else:
            if_id, ts_hi, ts_lo, caplen, _plen = struct.unpack_from(endian + "IIIII", mm, body)
        data_start = body + 20
        if if_id >= len(interfaces):
            self.warnings.append(f"{self.path}: packet for unknown interface {if_id} ignored")
            return None
        if data_start + caplen > body_end:
            self.warnings.append(f"{self.path}: packet block with bad captured length ignored")
            return None
        iface = interfaces[if_id]
        ticks = (ts_hi << 32) | ts_lo
        ts = ticks / iface.ts_div + iface.ts_offset
        return ts, mm[data_start : data_start + caplen], iface

    def _parse_spb(
        self,
        endian: str,
        body: int,
        body_end: int,
        interfaces: list[_Interface],
        last_ts: float,
    ) -> tuple[float, bytes, _Interface] | None:
        mm = self._mm
        assert mm is not None
        if not interfaces or body + 4 > body_end:
            self.warnings.append(f"{self.path}: simple packet block without interface ignored")
            return None
        iface = interfaces[0]
        plen = struct.unpack_from(endian + "I", mm, body)[0]
        caplen = min(plen, body_end - body - 4)
        if iface.snaplen:
            caplen = min(caplen, iface.snaplen)
        # SPBs carry no timestamp: reuse the previous packet's
        return last_ts, mm[body + 4 : body + 4 + caplen], iface

    # -- lifecycle --------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._mm is not None:
            self._mm.close()
            self._mm = None

    def __enter__(self) -> PcapFileBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
