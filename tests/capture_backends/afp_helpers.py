"""Frame building/parsing and capture helpers for the AF_PACKET kernel tests."""

from __future__ import annotations

import itertools
import socket
import struct
import time

from capture_backends.af_packet import AfPacketBackend
from capture_backends.base import FlowTuple

ETH_IPV4, ETH_IPV6, ETH_8021Q, ETH_8021AD = 0x0800, 0x86DD, 0x8100, 0x88A8


def addr(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)


def flow(src: str, dst: str, sport: int, dport: int, proto: int = 17,
         vlan: tuple[int, ...] = ()) -> FlowTuple:
    return FlowTuple(addr(src), addr(dst), sport, dport, proto, vlan)


def udp_frame(src_mac: bytes, dst_mac: bytes, src: str, dst: str, sport: int, dport: int,
              payload: bytes, vlans: tuple[int, ...] = (), v6_ext: tuple[int, ...] = ()) -> bytes:
    """Ethernet [+ 802.1Q/802.1ad tags] + IPv4/IPv6 [+ extension headers] + UDP.
    ``v6_ext`` lists extension header numbers (0 hop-by-hop, 60 dest opts, 43 routing,
    44 fragment with offset 0, 51 AH), outermost first. Checksums are left 0."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    if ":" in src:
        chain = [*v6_ext, 17]
        ext = b""
        for here, nxt in itertools.pairwise(chain):
            if here in (0, 60):
                ext += bytes([nxt, 0]) + b"\x01\x04\x00\x00\x00\x00"  # PadN, 8 bytes
            elif here == 43:
                ext += bytes([nxt, 0, 4, 0]) + b"\x00" * 4  # type 4 (SRH-ish), 0 segments left
            elif here == 44:
                ext += struct.pack("!BBHI", nxt, 0, 0, 0x1234)  # offset 0, M=0 (atomic)
            elif here == 51:
                ext += bytes([nxt, 1, 0, 0]) + b"\x00" * 8  # AH: (1 + 2) * 4 = 12 bytes
        ip = struct.pack("!IHBB", 6 << 28, len(ext) + len(udp), chain[0], 64) + \
            addr(src) + addr(dst) + ext
        ethertype = ETH_IPV6
    else:
        ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0) + \
            addr(src) + addr(dst)
        ethertype = ETH_IPV4
    tags = b""
    for i, vid in enumerate(vlans):
        tpid = ETH_8021AD if i == 0 and len(vlans) > 1 else ETH_8021Q
        tags += struct.pack("!H", tpid) + struct.pack("!H", vid)
    if tags:
        # tags = TPID1 TCI1 [TPID2 TCI2]; the inner ethertype follows the last TCI
        return dst_mac + src_mac + tags + struct.pack("!H", ethertype) + ip + udp
    return dst_mac + src_mac + struct.pack("!H", ethertype) + ip + udp


def parse_flow(frame: bytes) -> tuple[FlowTuple, bytes] | None:
    """(flow as sent, L4 payload) of a TCP/UDP frame, VLAN tags and IPv6 extension headers
    walked; None for anything else."""
    off, ethertype, vlans = 14, int.from_bytes(frame[12:14], "big"), []
    while ethertype in (ETH_8021Q, ETH_8021AD) and len(frame) >= off + 4:
        vlans.append(int.from_bytes(frame[off:off + 2], "big") & 0x0FFF)
        ethertype = int.from_bytes(frame[off + 2:off + 4], "big")
        off += 4
    if ethertype == ETH_IPV4 and len(frame) >= off + 20:
        ihl = (frame[off] & 0x0F) * 4
        proto, src, dst = frame[off + 9], frame[off + 12:off + 16], frame[off + 16:off + 20]
        l4 = off + ihl
    elif ethertype == ETH_IPV6 and len(frame) >= off + 40:
        proto, src, dst = frame[off + 6], frame[off + 8:off + 24], frame[off + 24:off + 40]
        l4 = off + 40
        while proto in (0, 43, 60, 44, 51) and len(frame) >= l4 + 2:
            nxt, hlen = frame[l4], frame[l4 + 1]
            l4 += 8 if proto == 44 else (hlen + 2) * 4 if proto == 51 else (hlen + 1) * 8
            proto = nxt
    else:
        return None
    if proto not in (6, 17) or len(frame) < l4 + 4:
        return None
    sport, dport = struct.unpack_from("!HH", frame, l4)
    header = 8 if proto == 17 else (frame[l4 + 12] >> 4) * 4
    return FlowTuple(src, dst, sport, dport, proto, tuple(vlans)), frame[l4 + header:]


def undirected(f: FlowTuple) -> tuple[object, ...]:
    return (*sorted([(f.src, f.sport), (f.dst, f.dport)]), f.proto, f.vlan)


def drain(backend: AfPacketBackend, quiet_ms: int = 150, limit_s: float = 3.0) -> list[bytes]:
    """Every frame captured until nothing arrives for ``quiet_ms`` (block timeouts included)."""
    frames: list[bytes] = []
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        batch = backend.read_batch(quiet_ms)
        if not batch:
            break
        frames.extend(bytes(data) for _ts, data, _id in batch)
    return frames


def count_flows(frames: list[bytes]) -> dict[FlowTuple, int]:
    out: dict[FlowTuple, int] = {}
    for frame in frames:
        parsed = parse_flow(frame)
        if parsed:
            out[parsed[0]] = out.get(parsed[0], 0) + 1
    return out
