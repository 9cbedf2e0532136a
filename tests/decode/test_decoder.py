from __future__ import annotations

import struct

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q
from scapy.packet import Raw

from capture_backends.base import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
)
from ruleengine.decode.decoder import Decoder
from ruleengine.decode.packet import TH_ACK, TH_PUSH
from tests.decode.frames import decode_one, eth

V4 = IP(src="192.0.2.1", dst="192.0.2.2") / TCP(sport=1234, dport=80, flags="PA") / Raw(b"hello")
V6 = IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=5353, dport=53) / Raw(b"query")


def _assert_v4_tcp(pkt) -> None:
    assert pkt.ip_version == 4
    assert pkt.src == bytes([192, 0, 2, 1]) and pkt.dst == bytes([192, 0, 2, 2])
    assert (pkt.sport, pkt.dport, pkt.proto) == (1234, 80, 6)
    assert pkt.tcp_flags == TH_PUSH | TH_ACK
    assert pkt.payload == b"hello"
    assert pkt.checksum_ok and not pkt.invalid
    assert len(pkt.ip_header) == 20 and len(pkt.l4_header) == 20


def _assert_v6_udp(pkt) -> None:
    assert pkt.ip_version == 6
    assert pkt.src[-1] == 1 and pkt.dst[-1] == 2 and len(pkt.src) == 16
    assert (pkt.sport, pkt.dport, pkt.proto) == (5353, 53, 17)
    assert pkt.payload == b"query"
    assert pkt.checksum_ok and not pkt.invalid


class TestLinkTypes:
    def test_ethernet(self) -> None:
        d = Decoder(LINKTYPE_ETHERNET)
        _assert_v4_tcp(d.decode(1.0, bytes(eth() / V4)))
        _assert_v6_udp(d.decode(1.0, bytes(eth() / V6)))
        assert d.counters["decoder.ethernet"] == 2
        assert d.counters["decoder.ipv4"] == 1 and d.counters["decoder.ipv6"] == 1
        assert d.counters["decoder.tcp"] == 1 and d.counters["decoder.udp"] == 1

    def test_vlan_and_qinq(self) -> None:
        d = Decoder(LINKTYPE_ETHERNET)
        pkt = d.decode(1.0, bytes(eth() / Dot1Q(vlan=10) / V4))
        _assert_v4_tcp(pkt)
        assert pkt.vlan == (10,)
        pkt = d.decode(1.0, bytes(eth() / Dot1AD(vlan=100) / Dot1Q(vlan=20) / V6))
        _assert_v6_udp(pkt)
        assert pkt.vlan == (100, 20)
        assert d.counters["decoder.vlan"] == 2 and d.counters["decoder.vlan_qinq"] == 1

    def test_too_many_vlan_layers_is_invalid(self) -> None:
        frame = bytes(eth() / Dot1Q(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / Dot1Q(vlan=4) / V4)
        pkt = decode_one(frame)
        assert pkt.invalid and pkt.events == ["vlan.too_many_layers"]

    def test_linux_sll(self) -> None:
        d = Decoder(LINKTYPE_LINUX_SLL)
        _assert_v4_tcp(d.decode(1.0, bytes(CookedLinux(proto=0x0800) / V4)))
        _assert_v6_udp(d.decode(1.0, bytes(CookedLinux(proto=0x86DD) / V6)))
        assert d.counters["decoder.sll"] == 2

    def test_linux_sll2(self) -> None:
        d = Decoder(LINKTYPE_LINUX_SLL2)
        _assert_v4_tcp(d.decode(1.0, bytes(CookedLinuxV2(proto=0x0800, ifindex=3) / V4)))
        _assert_v6_udp(d.decode(1.0, bytes(CookedLinuxV2(proto=0x86DD) / V6)))
        assert d.counters["decoder.sll2"] == 2
        short = d.decode(1.0, bytes(CookedLinuxV2(proto=0x0800))[:12])
        assert short is not None and short.invalid and short.events == ["sll.pkt_too_small"]

    @pytest.mark.parametrize("linktype", [LINKTYPE_RAW, 12, 14, LINKTYPE_IPV4, LINKTYPE_IPV6])
    def test_raw_ip(self, linktype: int) -> None:
        d = Decoder(linktype)
        _assert_v4_tcp(d.decode(1.0, bytes(V4)))
        _assert_v6_udp(d.decode(1.0, bytes(V6)))
        assert d.counters["decoder.raw"] == 2

    def test_raw_bad_version(self) -> None:
        pkt = decode_one(b"\x50" + bytes(V4)[1:], linktype=LINKTYPE_RAW)
        assert pkt.invalid and pkt.events == ["ipraw.invalid_ip_version"]

    @pytest.mark.parametrize(
        ("linktype", "fmt", "af6"),
        [(LINKTYPE_NULL, "<I", 30), (LINKTYPE_NULL, ">I", 24), (LINKTYPE_LOOP, ">I", 28)],
    )
    def test_null_and_loop(self, linktype: int, fmt: str, af6: int) -> None:
        d = Decoder(linktype)
        _assert_v4_tcp(d.decode(1.0, struct.pack(fmt, 2) + bytes(V4)))
        _assert_v6_udp(d.decode(1.0, struct.pack(fmt, af6) + bytes(V6)))
        assert d.counters["decoder.null"] == 2

    def test_null_unknown_family(self) -> None:
        pkt = decode_one(struct.pack("<I", 99) + bytes(V4), linktype=LINKTYPE_NULL)
        assert pkt.ip_version == 0 and pkt.events == ["ltnull.unsupported_type"]

    def test_unsupported_linktype_is_invalid(self) -> None:
        pkt = decode_one(bytes(V4), linktype=9999)
        assert pkt.invalid

    def test_arp_is_not_ip_and_not_invalid(self) -> None:
        from scapy.layers.l2 import ARP

        d = Decoder(LINKTYPE_ETHERNET)
        pkt = d.decode(1.0, bytes(eth() / ARP()))
        assert pkt is not None and pkt.ip_version == 0 and not pkt.invalid
        assert d.counters["decoder.arp"] == 1


class TestMalformed:
    @pytest.mark.parametrize(
        ("frame", "event"),
        [
            (b"\x00" * 10, "ethernet.pkt_too_small"),
            (bytes(eth(type=0x0800)) + b"\x45" + b"\0" * 10, "ipv4.pkt_too_small"),
            (bytes(eth() / V4)[:40], "ipv4.trunc_pkt"),
            (bytes(eth() / IP(ihl=4) / TCP()), "ipv4.hlen_too_small"),
            (bytes(eth() / IP(len=10) / TCP()), "ipv4.iplen_smaller_than_hlen"),
            (bytes(eth() / IP() / TCP(dataofs=3)), "tcp.hlen_too_small"),
            (bytes(eth() / IP(proto=6) / Raw(b"x" * 10)), "tcp.pkt_too_small"),
            (bytes(eth() / IP(proto=17) / Raw(b"x" * 4)), "udp.pkt_too_small"),
            (bytes(eth() / IP() / UDP(len=200)), "udp.len_invalid"),
            (bytes(eth() / IPv6(plen=100) / UDP()), "ipv6.trunc_pkt"),
            (bytes(eth(type=0x86DD) / Raw(b"\x60" + b"\0" * 20)), "ipv6.pkt_too_small"),
            (bytes(eth(type=0x86DD) / IP() / Raw(b"\0" * 30)), "ipv6.wrong_ip_version"),
            (bytes(eth(type=0x0800) / IPv6()), "ipv4.wrong_ip_version"),
        ],
    )
    def test_invalid_frames(self, frame: bytes, event: str) -> None:
        d = Decoder(LINKTYPE_ETHERNET)
        pkt = d.decode(1.0, frame)
        assert pkt is not None and pkt.invalid
        assert event in (pkt.events or [])
        assert d.counters["decoder.invalid"] == 1
        assert d.counters["decoder.event." + event] == 1

    def test_bad_tcp_option_length(self) -> None:
        frame = bytes(eth() / IP() / TCP(options=[]) / Raw(b""))
        raw = bytearray(frame)
        raw[34 + 12] = 0x60  # data offset 6 words: 4 option bytes
        raw[14 + 2 : 14 + 4] = struct.pack("!H", 44)
        raw += b"\x02\x09\x05\xb4"  # MSS option claiming 9 bytes
        pkt = decode_one(bytes(raw), checksum_validation=False)
        assert pkt.invalid and pkt.events == ["tcp.opt_invalid_len"]

    def test_ethernet_padding_is_ignored(self) -> None:
        frame = bytes(eth() / IP() / UDP() / Raw(b"ab")) + b"\0" * 16
        pkt = decode_one(frame)
        assert pkt.payload == b"ab" and pkt.checksum_ok


class TestChecksums:
    def _corrupt_last_byte(self, frame: bytes) -> bytes:
        raw = bytearray(frame)
        raw[-1] ^= 0xFF
        return bytes(raw)

    def test_tcp_bad_checksum_detected(self) -> None:
        d = Decoder(LINKTYPE_ETHERNET)
        pkt = d.decode(1.0, self._corrupt_last_byte(bytes(eth() / V4)))
        assert pkt is not None and not pkt.checksum_ok and not pkt.invalid
        assert d.checksum_errors["tcp"] == 1

    def test_tcp_bad_checksum_ignored_without_validation(self) -> None:
        d = Decoder(LINKTYPE_ETHERNET, checksum_validation=False)
        pkt = d.decode(1.0, self._corrupt_last_byte(bytes(eth() / V4)))
        assert pkt is not None and pkt.checksum_ok
        assert d.checksum_errors["tcp"] == 0

    def test_odd_length_segments(self) -> None:
        for n in range(0, 8):
            frame = bytes(eth() / IP() / TCP() / Raw(b"z" * n))
            assert decode_one(frame).checksum_ok, n
            frame6 = bytes(eth() / IPv6() / TCP() / Raw(b"z" * n))
            assert decode_one(frame6).checksum_ok, n

    def test_udp_checksums(self) -> None:
        assert not decode_one(self._corrupt_last_byte(bytes(eth() / V6))).checksum_ok
        assert decode_one(bytes(eth() / IP() / UDP(chksum=0) / Raw(b"x"))).checksum_ok
        # IPv6 forbids a zero UDP checksum
        assert not decode_one(bytes(eth() / IPv6() / UDP(chksum=0) / Raw(b"x"))).checksum_ok

    def test_icmp_checksums(self) -> None:
        good = bytes(eth() / IP() / ICMP() / Raw(b"ping"))
        pkt = decode_one(good)
        assert pkt.checksum_ok and pkt.icmp_type == 8 and pkt.payload == b"ping"
        assert not decode_one(self._corrupt_last_byte(good)).checksum_ok
        good6 = bytes(eth() / IPv6() / ICMPv6EchoRequest(data=b"ping"))
        pkt6 = decode_one(good6)
        assert pkt6.checksum_ok and pkt6.icmp_type == 128 and pkt6.proto == 58
        assert not decode_one(self._corrupt_last_byte(good6)).checksum_ok


class TestIPv6ExtensionHeaders:
    def test_hop_by_hop_routing_destination(self) -> None:
        frame = bytes(
            eth()
            / IPv6()
            / IPv6ExtHdrHopByHop()
            / IPv6ExtHdrRouting(type=2, addresses=["2001:db8::9"])
            / IPv6ExtHdrDestOpt()
            / TCP(sport=1, dport=2)
            / Raw(b"data")
        )
        pkt = decode_one(frame)
        assert pkt.proto == 6 and (pkt.sport, pkt.dport) == (1, 2)
        assert pkt.payload == b"data" and pkt.checksum_ok
        # scapy pads empty option headers with PadN: Suricata flags "only padding"
        assert pkt.events == ["ipv6.hopopts_only_padding", "ipv6.dstopts_only_padding"]
        assert len(pkt.ip_header) == 40 + 8 + 24 + 8

    def test_option_tlvs(self) -> None:
        from scapy.layers.inet6 import HBHOptUnknown, Pad1, PadN, RouterAlert

        ok = IPv6ExtHdrHopByHop(options=[RouterAlert(), PadN(optdata=b"")])
        pkt = decode_one(bytes(eth() / IPv6() / ok / UDP()), checksum_validation=False)
        assert pkt.events == ["ipv6.zero_len_padn"]
        odd = IPv6ExtHdrDestOpt(options=[HBHOptUnknown(otype=0x3E, optdata=b"ab"), Pad1()])
        pkt = decode_one(bytes(eth() / IPv6() / odd / UDP()), checksum_validation=False)
        assert "ipv6.dstopts_unknown_opt" in pkt.events
        raw = bytearray(bytes(eth() / IPv6() / IPv6ExtHdrHopByHop() / UDP()))
        raw[14 + 40 + 2 : 14 + 40 + 4] = b"\x01\x09"  # PadN longer than the header
        pkt = decode_one(bytes(raw), checksum_validation=False)
        assert "ipv6.exthdr_invalid_optlen" in pkt.events

    def test_routing_type_0_and_duplicates(self) -> None:
        frame = bytes(
            eth()
            / IPv6()
            / IPv6ExtHdrHopByHop()
            / IPv6ExtHdrHopByHop()
            / IPv6ExtHdrRouting(type=0, addresses=["2001:db8::9"])
            / UDP()
        )
        pkt = decode_one(frame, checksum_validation=False)
        assert pkt.proto == 17
        assert "ipv6.exthdr_dupl_hh" in pkt.events and "ipv6.rh_type_0" in pkt.events

    def test_truncated_extension_header(self) -> None:
        frame = bytes(eth() / IPv6(nh=0, plen=4) / Raw(b"\x06\x05\0\0"))
        pkt = decode_one(frame)
        assert pkt.invalid and pkt.events == ["ipv6.trunc_exthdr"]

    def test_atomic_fragment_is_decoded(self) -> None:
        frame = bytes(eth() / IPv6() / IPv6ExtHdrFragment(offset=0, m=0, id=7) / UDP() / Raw(b"a"))
        pkt = decode_one(frame)
        assert pkt.proto == 17 and pkt.payload == b"a"
        assert pkt.events == ["ipv6.exthdr_useless_fh"]

    def test_no_next_header_and_esp(self) -> None:
        assert decode_one(bytes(eth() / IPv6(nh=59))).proto == 59
        pkt = decode_one(bytes(eth() / IPv6(nh=50) / Raw(b"\0" * 16)))
        assert pkt.proto == 50 and len(pkt.payload) == 16


def test_decode_never_raises_on_internal_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    d = Decoder(LINKTYPE_ETHERNET)

    def boom(*_a: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(d, "_ipv4", boom)
    pkt = d.decode(1.0, bytes(eth() / V4))
    assert pkt is not None and pkt.invalid and pkt.events == ["decoder.internal_error"]


def test_counters_bytes_and_max_size() -> None:
    d = Decoder(LINKTYPE_ETHERNET)
    frames = [bytes(eth() / V4), bytes(eth() / V6)]
    for f in frames:
        d.decode(1.0, memoryview(f))
    assert d.counters["decoder.pkts"] == 2
    assert d.counters["decoder.bytes"] == sum(map(len, frames))
    assert d.counters["decoder.max_pkt_size"] == max(map(len, frames))


class TestChecksumAuto:
    def _frames(self, bad_every: int) -> list[bytes]:
        good = bytes(eth() / V4)
        bad = bytearray(good)
        bad[-1] ^= 0xFF
        return [bytes(bad) if i % bad_every == 0 else good for i in range(1200)]

    def test_offloaded_capture_disables_validation(self) -> None:
        d = Decoder(LINKTYPE_ETHERNET, checksum_auto=True)
        results = [d.decode(1.0, f) for f in self._frames(bad_every=5)]
        assert not d.checksum_validation and "offloading" in d.warnings[0]
        assert all(p is not None and p.checksum_ok for p in results[1001:])
        assert not results[0].checksum_ok  # validated while sampling

    def test_few_bad_checksums_keep_validation(self) -> None:
        d = Decoder(LINKTYPE_ETHERNET, checksum_auto=True)
        results = [d.decode(1.0, f) for f in self._frames(bad_every=50)]
        assert d.checksum_validation and d.warnings == []
        assert not results[1150].checksum_ok

    def test_auto_off_by_default(self) -> None:
        d = Decoder(LINKTYPE_ETHERNET)
        for f in self._frames(bad_every=2):
            d.decode(1.0, f)
        assert d.checksum_validation


def test_icmpv6_unreachable_quotes_the_flow() -> None:
    from scapy.layers.inet6 import ICMPv6DestUnreach

    quoted = IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=1234, dport=443)
    pkt = decode_one(bytes(eth() / IPv6(src="2001:db8::ff") / ICMPv6DestUnreach() / quoted))
    assert pkt.icmp_type == 1 and pkt.checksum_ok
    assert pkt.icmp_emb is not None and pkt.icmp_emb[2:] == (1234, 443, 6)


class TestIPv4Options:
    def _frame(self, options: bytes) -> bytes:
        raw = bytearray(bytes(eth() / IP(options=[]) / UDP() / Raw(b"x")))
        ip = bytes(raw[14:34])
        hl = 20 + len(options)
        assert hl % 4 == 0
        head = bytearray(ip)
        head[0] = 0x40 | (hl // 4)
        head[2:4] = struct.pack("!H", hl + 9)
        return bytes(raw[:14]) + bytes(head) + options + bytes(raw[34:])

    def test_valid_options(self) -> None:
        pkt = decode_one(self._frame(b"\x94\x04\x00\x00"), checksum_validation=False)
        assert not pkt.invalid and pkt.events is None and pkt.payload == b"x"
        assert len(pkt.ip_header) == 24

    def test_unknown_and_duplicate(self) -> None:
        pkt = decode_one(self._frame(b"\x94\x04\x00\x00" * 2 + b"\x1f\x02\x01\x00"))
        assert pkt.events == ["ipv4.opt_duplicate", "ipv4.opt_unknown"]
        assert not pkt.invalid

    def test_invalid_length(self) -> None:
        pkt = decode_one(self._frame(b"\x44\x09\x00\x00"))
        assert pkt.invalid and pkt.events == ["ipv4.opt_invalid_len"]
        pkt = decode_one(self._frame(b"\x44\x00\x00\x00"))
        assert pkt.invalid

    def test_eol_required(self) -> None:
        pkt = decode_one(self._frame(b"\x01\x01\x01\x44"))
        assert pkt.events == ["ipv4.opt_eol_required"] and not pkt.invalid


def test_icmpv4_type_and_code_events() -> None:
    assert decode_one(bytes(eth() / IP() / ICMP(type=8, code=0))).events is None
    assert decode_one(bytes(eth() / IP() / ICMP(type=8, code=3))).events == ["icmpv4.unknown_code"]
    assert decode_one(bytes(eth() / IP() / ICMP(type=99))).events == ["icmpv4.unknown_type"]
