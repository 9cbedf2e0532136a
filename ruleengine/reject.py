"""Reject actions: forge a TCP RST or an ICMP unreachable and send it on a raw socket.

Suricata's ``reject``/``rejectsrc`` answers the packet's source, ``rejectdst`` its
destination, ``rejectboth`` both. TCP gets a RST; anything else an ICMP (v4: type 3
code 3 port unreachable; v6: type 1 code 4) quoting the offending packet's start.
Only live runs send anything; pcap runs only count.
"""

from __future__ import annotations

import socket
import struct

from ruleengine.decode.defrag import ipv4_header_checksum
from ruleengine.decode.packet import IPPROTO_TCP, TH_ACK, TH_RST, Packet

_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIBBHHH")


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``, odd lengths padded with a zero byte."""
    return ipv4_header_checksum(data + b"\0" if len(data) % 2 else data)


def _pseudo_header(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    if len(src) == 4:
        return src + dst + struct.pack("!BBH", 0, proto, length)
    return src + dst + struct.pack("!IxxxB", length, proto)


def tcp_rst(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int) -> bytes:
    """A TCP RST|ACK segment (no IP header) with a valid checksum."""
    header = _TCP.pack(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4,
                       TH_RST | TH_ACK, 0, 0, 0)
    csum = checksum(_pseudo_header(src, dst, IPPROTO_TCP, len(header)) + header)
    return header[:16] + struct.pack("!H", csum) + header[18:]


def ipv4_packet(src: bytes, dst: bytes, proto: int, payload: bytes) -> bytes:
    header = _IPV4.pack(0x45, 0, 20 + len(payload), 0, 0x4000, 64, proto, 0, src, dst)
    csum = checksum(header)
    return header[:10] + struct.pack("!H", csum) + header[12:] + payload


def icmp_unreachable(pkt: Packet, quoted: bytes) -> tuple[int, bytes]:
    """(protocol, ICMP message) answering ``pkt`` with a destination unreachable."""
    if pkt.ip_version == 4:
        body = struct.pack("!BBHI", 3, 3, 0, 0) + quoted[:28]
        csum = checksum(body)
        return socket.IPPROTO_ICMP, body[:2] + struct.pack("!H", csum) + body[4:]
    body = struct.pack("!BBHI", 1, 4, 0, 0) + quoted[:1232]
    csum = checksum(_pseudo_header(pkt.dst, pkt.src, 58, len(body)) + body)
    return 58, body[:2] + struct.pack("!H", csum) + body[4:]


class RejectSender:
    """Sends rejects on raw sockets, opened lazily (needs CAP_NET_RAW).

    ``mark``: SO_MARK for the forged packets. Inline (NFQ) firewalls let packets with this
    mark out instead of queueing them back to the engine, which would drop them with the
    rest of the rejected flow.
    """

    def __init__(self, mark: int = 0) -> None:
        self._mark = mark
        self._sock4: socket.socket | None = None
        self._sock6: dict[int, socket.socket] = {}
        self.sent = 0
        self.errors = 0

    def send(self, pkt: Packet, action: str) -> None:
        targets = {"reject": ("src",), "rejectsrc": ("src",), "rejectdst": ("dst",),
                   "rejectboth": ("src", "dst")}.get(action, ("src",))
        for target in targets:
            try:
                self._send_one(pkt, to_source=target == "src")
                self.sent += 1
            except OSError:
                self.errors += 1

    def _send_one(self, pkt: Packet, *, to_source: bool) -> None:
        if to_source:
            src, dst, sport, dport = pkt.dst, pkt.src, pkt.dport, pkt.sport
        else:
            src, dst, sport, dport = pkt.src, pkt.dst, pkt.sport, pkt.dport
        if pkt.proto == IPPROTO_TCP:
            if to_source:
                seq, ack = pkt.ack, pkt.seq + len(pkt.payload)
            else:
                seq, ack = pkt.seq + len(pkt.payload), pkt.ack
            self._send(pkt.ip_version, src, dst, IPPROTO_TCP,
                       tcp_rst(src, dst, sport, dport, seq, ack))
            return
        if not to_source:
            return  # ICMP errors only go back to the sender
        proto, message = icmp_unreachable(pkt, pkt.ip_header + pkt.l4_header + bytes(pkt.payload))
        self._send(pkt.ip_version, src, dst, proto, message)

    def _send(self, version: int, src: bytes, dst: bytes, proto: int, l4: bytes) -> None:
        if version == 4:
            if self._sock4 is None:
                self._sock4 = self._open(socket.AF_INET, socket.IPPROTO_RAW)
            address = (socket.inet_ntop(socket.AF_INET, dst), 0)
            self._sock4.sendto(ipv4_packet(src, dst, proto, l4), address)
            return
        sock = self._sock6.get(proto)
        if sock is None:
            sock = self._sock6[proto] = self._open(socket.AF_INET6, proto)
        # The kernel fills in the IPv6 header (source chosen by routing; equals ``src`` on the
        # path the offending packet took).
        sock.sendto(l4, (socket.inet_ntop(socket.AF_INET6, dst), 0))

    def _open(self, family: int, proto: int) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_RAW, proto)
        if self._mark:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, self._mark)
        return sock

    def close(self) -> None:
        for sock in [self._sock4, *self._sock6.values()]:
            if sock is not None:
                sock.close()
        self._sock4 = None
        self._sock6.clear()
