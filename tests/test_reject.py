"""Forged reject packets must be valid on the wire: the decoder's checksum checks accept them."""

from __future__ import annotations

import socket

from capture_backends.base import LINKTYPE_RAW
from ruleengine.decode.decoder import Decoder
from ruleengine.decode.packet import TH_ACK, TH_RST, Packet
from ruleengine.reject import checksum, icmp_unreachable, ipv4_packet, tcp_rst

SRC, DST = socket.inet_aton("10.0.0.1"), socket.inet_aton("10.0.0.2")


def _decode(frame: bytes) -> Packet:
    pkt = Decoder(LINKTYPE_RAW, checksum_validation=True).decode(0.0, frame)
    assert pkt is not None
    return pkt


def test_checksum_matches_rfc1071_example() -> None:
    # RFC 1071 section 3 example words: 0001 f203 f4f5 f6f7 -> sum ddf2, checksum 220d
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D
    assert checksum(b"\x01") == checksum(b"\x01\x00")


def test_tcp_rst_decodes_with_valid_checksums() -> None:
    pkt = _decode(ipv4_packet(SRC, DST, 6, tcp_rst(SRC, DST, 80, 1234, 1000, 2000)))
    assert not pkt.invalid and pkt.checksum_ok
    assert pkt.tcp_flags == TH_RST | TH_ACK
    assert (pkt.sport, pkt.dport, pkt.seq, pkt.ack) == (80, 1234, 1000, 2000)


def test_icmp_unreachable_quotes_the_offending_packet() -> None:
    udp = Packet(0.0, 0, 0, 4, SRC, DST, 17, 5353, 53, b"query")
    original = ipv4_packet(SRC, DST, 17, b"\x14\xe9\x00\x35\x00\x0d\x00\x00query")
    udp.ip_header, udp.l4_header = original[:20], original[20:28]
    proto, message = icmp_unreachable(udp, original)
    pkt = _decode(ipv4_packet(DST, SRC, proto, message))
    assert not pkt.invalid and pkt.checksum_ok
    assert (pkt.icmp_type, pkt.icmp_code) == (3, 3)
