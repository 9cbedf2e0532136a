"""TPACKET_V3 memory-mapped receive ring for AF_PACKET sockets, in plain Python.

The kernel fills fixed-size *blocks* with variable-size packets and hands a block to user
space when it is full or its retire timeout expires; user space reads every packet of the
block and gives the block back by writing ``TP_STATUS_KERNEL`` into its status word. One
``poll()`` per batch and no ``recv()`` system call per packet: several times the packet rate
of ``recv()`` from Python (see the kernel spike's measurements).

Layouts (linux/if_packet.h)::

    struct tpacket_block_desc { u32 version; u32 offset_to_priv;
        struct tpacket_hdr_v1 { u32 block_status; u32 num_pkts; u32 offset_to_first_pkt; ... } }
    struct tpacket3_hdr { u32 tp_next_offset, tp_sec, tp_nsec, tp_snaplen, tp_len, tp_status;
        u16 tp_mac, tp_net; u32 tp_rxhash, tp_vlan_tci; u16 tp_vlan_tpid, tp_padding; ... }

The kernel strips the outer VLAN tag into metadata before taps see the frame; like libpcap
we put it back into the frame so the decoder sees what was on the wire.
"""

from __future__ import annotations

import contextlib
import math
import mmap
import select
import socket
import struct
from collections.abc import Iterator

from capture_backends.bypassed_flows import BypassedFlows, ether_key

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_FANOUT = 18
PACKET_FANOUT_DATA = 22
SO_ATTACH_BPF = 50
TPACKET_V3 = 2
ETH_P_ALL = 0x0003
PACKET_MR_PROMISC = 1

TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1 << 0
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6

_BLOCK_STATUS_OFF = 8
_BLOCK_HDR = struct.Struct("=III")  # block_status, num_pkts, offset_to_first_pkt
# tp_next_offset, tp_sec, tp_nsec, tp_snaplen, tp_len, tp_status, tp_mac
_PKT_HDR = struct.Struct("=IIIIIIH")
_VLAN = struct.Struct("=IH")  # tp_vlan_tci (u32), tp_vlan_tpid (u16) at offset 32
_VLAN_OFF = 32
_TAG = struct.Struct("!HH")
_REQ3 = struct.Struct("=7I")
_STATS_V3 = struct.Struct("=III")  # tp_packets, tp_drops, tp_freeze_q_cnt
# the fast path's common frame: Ethernet type IPv4, version 4 with a 20-byte header, whose
# key (addresses and ports) ends at byte 38
# from byte 12: ethertype, version + header length, flags + fragment offset, protocol
_L3 = struct.Struct("!HB5xHxB")
_NOT_V4 = (0, 0, 0, 0)
_V4_KEY_END = 38
_PROTO_BYTE = tuple(bytes((i,)) for i in range(256))

DEFAULT_FRAME_SIZE = 2048
DEFAULT_BLOCK_SIZE = 1 << 17
DEFAULT_BLOCK_TIMEOUT_MS = 10


def ring_geometry(ring_frames: int, block_size: int = DEFAULT_BLOCK_SIZE,
                  frame_size: int = DEFAULT_FRAME_SIZE) -> tuple[int, int, int, int]:
    """``(block_size, block_nr, frame_size, frame_nr)`` for a ring of about ``ring_frames``
    frames of ``frame_size`` bytes (Suricata's ``ring-size`` meaning). The block size is
    rounded up to a multiple of the page size and of ``frame_size``; at least 2 blocks."""
    page = mmap.PAGESIZE
    frame_size = max(frame_size, 64)
    frame_size = (frame_size + 15) & ~15  # TPACKET_ALIGNMENT
    block_size = max(block_size, frame_size, page)
    block_size = (block_size + page - 1) // page * page
    while block_size % frame_size:
        block_size += page
    block_nr = max(2, (max(ring_frames, 1) * frame_size + block_size - 1) // block_size)
    frame_nr = block_nr * (block_size // frame_size)
    return block_size, block_nr, frame_size, frame_nr


class TpacketV3Ring:
    """The RX ring of one AF_PACKET socket. Call ``setup`` before ``bind``."""

    def __init__(self, sock: socket.socket, *, ring_frames: int = 2048,
                 block_size: int = DEFAULT_BLOCK_SIZE, frame_size: int = DEFAULT_FRAME_SIZE,
                 block_timeout_ms: int = DEFAULT_BLOCK_TIMEOUT_MS) -> None:
        self.sock = sock
        self.block_size, self.block_nr, self.frame_size, frame_nr = ring_geometry(
            ring_frames, block_size, frame_size)
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
        req = _REQ3.pack(self.block_size, self.block_nr, self.frame_size, frame_nr,
                         max(1, block_timeout_ms), 0, 0)
        sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
        self._map: mmap.mmap | None = mmap.mmap(
            sock.fileno(), self.block_size * self.block_nr, mmap.MAP_SHARED,
            mmap.PROT_READ | mmap.PROT_WRITE)
        self._current = 0
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN | select.POLLERR)

    @property
    def size_bytes(self) -> int:
        return self.block_size * self.block_nr

    def wait(self, timeout_ms: int) -> bool:
        """Sleep until a block is ready (or ``timeout_ms``). Returns False when the socket
        reported an error instead (e.g. ENETDOWN: the interface went down or away); the
        error is cleared."""
        if self._map is None or self.block_ready():
            return True
        events = self._poll.poll(timeout_ms)  # PEP 475: EINTR is retried, handlers run
        if any(mask & (select.POLLERR | select.POLLHUP | select.POLLNVAL) for _fd, mask in events):
            self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)  # read = clear
            return False
        return True

    def block_ready(self) -> bool:
        m = self._map
        if m is None:
            return False
        off = self._current * self.block_size
        return bool(_BLOCK_HDR.unpack_from(m, off)[0] & TP_STATUS_USER)

    def read_block(self, bypassed: BypassedFlows | None = None,
                   vlan_in_key: bool = True) -> list[tuple[float, bytes, int]] | None:
        """The packets ``(ts, frame, 0)`` of the next ready block, which is handed back to the
        kernel before returning (so frames are copies: ``bytes``); None when no block is
        ready. Copying a block's packets at once keeps the ring free while the engine works
        and lets callers keep the data (e.g. for stream reassembly).

        With ``bypassed`` (not empty), a packet of a flow in it is counted there and left
        out, before its frame is copied: the fast path for packets of flows bypassed while
        they were already in the ring (within the flow's time limit: see ``BypassedFlows``)."""
        m = self._map
        if m is None:
            return None
        off = self._current * self.block_size
        if not _BLOCK_HDR.unpack_from(m, off + _BLOCK_STATUS_OFF)[0] & TP_STATUS_USER:
            return None
        out = block_frames(m, off, self.block_size, bypassed, vlan_in_key)
        struct.pack_into("=I", m, off + _BLOCK_STATUS_OFF, TP_STATUS_KERNEL)
        self._current = (self._current + 1) % self.block_nr
        return out

    def packets(self) -> Iterator[tuple[float, bytes, int]]:
        """Every packet of the blocks ready now (does not wait)."""
        while True:
            block = self.read_block()
            if block is None:
                return
            yield from block

    def close(self) -> None:
        if self._map is not None:
            m, self._map = self._map, None
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._poll.unregister(self.sock)
            m.close()


def block_frames(m: mmap.mmap, off: int, block_size: int, bypassed: BypassedFlows | None = None,
                 vlan_in_key: bool = True) -> list[tuple[float, bytes, int]]:
    """The packets ``(ts, frame, 0)`` of the TPACKET_V3 block at ``m[off:off + block_size]``
    (its status is neither read nor written), leaving out those of flows in ``bypassed``
    (counted there). See ``TpacketV3Ring.read_block``.

    Under a flood the ring holds tens of thousands of frames of flows bypassed a moment ago,
    and each costs this loop once: the common frame (untagged Ethernet, IPv4 without options,
    not a fragment) has its key cut out of the ring with one slice, looked up and counted
    inline; any other frame takes the general reader (``ether_key``). Both give the same key
    (the tests check it). The packet stamp is only computed for a flow with a time limit."""
    _status, num, first = _BLOCK_HDR.unpack_from(m, off + _BLOCK_STATUS_OFF)
    out: list[tuple[float, bytes, int]] = []
    append = out.append
    unpack = _PKT_HDR.unpack_from
    keys: dict[bytes, tuple[list[float], int]] = bypassed.keys if bypassed is not None else {}
    hits = 0
    l3, inf = _L3.unpack_from, math.inf
    p = off + first
    end = off + block_size
    for _ in range(num):
        if p + _PKT_HDR.size > end:  # defensive: never read past the block
            break
        nxt, sec, nsec, snap, _wire, st, mac = unpack(m, p)
        start = p + mac
        if keys:
            etype, ver_ihl, frag, proto = l3(m, start + 12) if snap >= _V4_KEY_END \
                else _NOT_V4
            if st & TP_STATUS_VLAN_VALID or etype != 0x0800 or ver_ihl != 0x45 \
                    or frag & 0x3FFF:  # MF or an offset: a fragment
                tci = _VLAN.unpack_from(m, p + _VLAN_OFF)[0] \
                    if st & TP_STATUS_VLAN_VALID else -1
                key = ether_key(m, start, start + snap, vlan_in_key, tci)
            else:  # addresses + ports in one slice, then the protocol (ip_key's layout)
                key = m[start + 26:start + _V4_KEY_END] + _PROTO_BYTE[proto]
            entry = keys.get(key) if key is not None else None
            if entry is not None:
                counts, i = entry
                limit = counts[4]
                if limit == inf or sec + nsec * 1e-9 <= limit:
                    counts[i] += 1
                    counts[i + 1] += snap
                    hits += 1
                    if not nxt:
                        break
                    p += nxt
                    continue
        if st & TP_STATUS_VLAN_VALID:
            tci, tpid = _VLAN.unpack_from(m, p + _VLAN_OFF)
            if not st & TP_STATUS_VLAN_TPID_VALID or not tpid:
                tpid = 0x8100
            frame = m[start:start + 12] + _TAG.pack(tpid, tci & 0xFFFF) + \
                m[start + 12:start + snap]
        else:
            frame = m[start:start + snap]
        append((sec + nsec * 1e-9, frame, 0))  # the backends' RawPacket shape
        if not nxt:
            break
        p += nxt
    if hits:
        assert bypassed is not None
        bypassed.packets += hits
    return out


def read_stats(sock: socket.socket) -> tuple[int, int]:
    """``(packets, drops)`` since the previous call (the kernel resets them on each read).
    ``packets`` includes the drops, as in Suricata's capture.kernel_packets."""
    raw = sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, _STATS_V3.size)
    packets, drops, _freeze = _STATS_V3.unpack(raw[: _STATS_V3.size].ljust(_STATS_V3.size, b"\0"))
    return packets, drops


def set_promiscuous(sock: socket.socket, ifindex: int) -> None:
    """Promiscuous mode for as long as the socket lives (packet_mreq membership)."""
    mreq = struct.pack("=iHH8s", ifindex, PACKET_MR_PROMISC, 0, b"")
    sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
