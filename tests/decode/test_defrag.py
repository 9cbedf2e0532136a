from __future__ import annotations

import struct

from scapy.layers.inet import IP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, fragment6
from scapy.packet import Raw

from ruleengine.decode.decoder import Decoder
from tests.decode.frames import eth

PAYLOAD = bytes(range(256)) * 12  # 3072 bytes, position-dependent


def _v4_fragments(size: int = 800, ident: int = 77) -> list[bytes]:
    dgram = IP(src="192.0.2.1", dst="192.0.2.2", id=ident) / UDP(sport=1, dport=2) / Raw(PAYLOAD)
    return [bytes(eth() / f) for f in fragment(dgram, fragsize=size)]


def _feed(d: Decoder, frames: list[bytes], ts: float = 1.0):
    out = [d.decode(ts, f) for f in frames]
    done = [p for p in out if p is not None]
    return out, done


class TestIPv4:
    def test_in_order(self) -> None:
        d = Decoder(1)
        frames = _v4_fragments()
        out, done = _feed(d, frames)
        assert out[:-1] == [None] * (len(frames) - 1)
        assert len(done) == 1
        pkt = done[0]
        assert pkt.frag and pkt.proto == 17 and (pkt.sport, pkt.dport) == (1, 2)
        assert pkt.payload == PAYLOAD and pkt.checksum_ok
        assert pkt.ip_len == 20 + 8 + len(PAYLOAD)
        assert d.counters["defrag.ipv4.fragments"] == len(frames)
        assert d.counters["defrag.ipv4.reassembled"] == 1
        assert len(d.defrag) == 0

    def test_reverse_order(self) -> None:
        d = Decoder(1)
        _, done = _feed(d, list(reversed(_v4_fragments())))
        assert len(done) == 1 and done[0].payload == PAYLOAD

    def test_overlap_keeps_first_data(self) -> None:
        d = Decoder(1)
        frames = _v4_fragments(size=1000)
        # a rogue copy of the second fragment with different bytes, arriving after the original
        rogue = bytearray(frames[1])
        for i in range(14 + 20, len(rogue)):
            rogue[i] = 0x41
        _, done = _feed(d, [frames[1], bytes(rogue), frames[0], *frames[2:]])
        assert len(done) == 1
        assert done[0].payload == PAYLOAD
        assert "ipv4.frag_overlap" in (done[0].events or [])
        assert d.counters["decoder.event.ipv4.frag_overlap"] == 1

    def test_duplicates_do_not_break_reassembly(self) -> None:
        d = Decoder(1)
        frames = _v4_fragments()
        _, done = _feed(d, [frames[0], frames[0], frames[1], *frames[1:]])
        assert len(done) == 1 and done[0].payload == PAYLOAD

    def test_timeout_discards_tracker(self) -> None:
        d = Decoder(1, defrag_timeout=10.0)
        frames = _v4_fragments()
        d.decode(1.0, frames[0])
        for f in frames[1:]:
            assert d.decode(100.0, f) is None  # first fragment expired: incomplete
        assert d.counters["defrag.ipv4.timeouts"] >= 1
        assert d.counters["defrag.ipv4.reassembled"] == 0

    def test_too_large(self) -> None:
        d = Decoder(1)
        hdr = IP(src="192.0.2.1", dst="192.0.2.2", id=5, flags=0, frag=8180, proto=17)
        pkt = d.decode(1.0, bytes(eth() / hdr / Raw(b"x" * 200)))
        # not held: inspected as an unreassembled fragment carrying the event
        assert pkt is not None and pkt.ip_version == 4 and pkt.sport == 0
        assert pkt.events == ["ipv4.frag_pkt_too_large"] and not pkt.frag
        assert d.counters["decoder.event.ipv4.frag_pkt_too_large"] == 1
        assert len(d.defrag) == 0

    def test_defrag_disabled_passes_fragments_through(self) -> None:
        d = Decoder(1, defrag=False)
        frames = _v4_fragments()
        pkts = [d.decode(1.0, f) for f in frames]
        assert all(p is not None and p.ip_version == 4 and p.sport == 0 for p in pkts)

    def test_different_ids_are_separate(self) -> None:
        d = Decoder(1)
        a = _v4_fragments(ident=1)
        b = _v4_fragments(ident=2)
        mixed = [x for pair in zip(a, b, strict=True) for x in pair]
        _, done = _feed(d, mixed)
        assert len(done) == 2

    def test_tracker_limit(self) -> None:
        d = Decoder(1)
        d.defrag.max_trackers = 4
        for ident in range(10):
            d.decode(1.0, _v4_fragments(ident=ident)[0])
        assert len(d.defrag) == 4
        assert d.counters["defrag.max_trackers_reached"] == 6


class TestIPv6:
    def _fragments(self) -> list[bytes]:
        dgram = (
            IPv6(src="2001:db8::1", dst="2001:db8::2")
            / IPv6ExtHdrHopByHop()
            / IPv6ExtHdrFragment(id=99)
            / UDP(sport=7, dport=8)
            / Raw(PAYLOAD)
        )
        return [bytes(eth() / f) for f in fragment6(dgram, 1000)]

    def test_in_order_and_reverse(self) -> None:
        for order in (1, -1):
            d = Decoder(1)
            frames = self._fragments()[::order]
            assert len(frames) > 2
            _, done = _feed(d, frames)
            assert len(done) == 1
            pkt = done[0]
            assert pkt.ip_version == 6 and pkt.frag and pkt.proto == 17
            assert pkt.payload == PAYLOAD and pkt.checksum_ok
            assert (pkt.sport, pkt.dport) == (7, 8)
            assert d.counters["defrag.ipv6.reassembled"] == 1
            # the hop-by-hop header is kept, the fragment header removed
            assert len(pkt.ip_header) == 48 and pkt.ip_header[6] == 0 and pkt.ip_header[40] == 17

    def test_overlap_event(self) -> None:
        d = Decoder(1)
        frames = self._fragments()
        _, done = _feed(d, [frames[0], frames[0][:-8] + b"\xee" * 8, *frames[1:]])
        assert len(done) == 1 and done[0].payload == PAYLOAD
        assert "ipv6.frag_overlap" in (done[0].events or [])

    def test_too_large_is_decoded_as_a_fragment(self) -> None:
        d = Decoder(1)
        frag = IPv6() / IPv6ExtHdrFragment(id=1, m=0, offset=8180, nh=17) / Raw(b"x" * 200)
        pkt = d.decode(1.0, bytes(eth() / frag))
        assert pkt is not None and pkt.ip_version == 6 and pkt.proto == 44
        assert pkt.events == ["ipv6.frag_pkt_too_large"]

    def test_invalid_length_event(self) -> None:
        d = Decoder(1)
        frag = IPv6() / IPv6ExtHdrFragment(id=1, m=1, offset=0, nh=17) / Raw(b"x" * 13)
        assert d.decode(1.0, bytes(eth() / frag)) is None
        assert d.counters["decoder.event.ipv6.frag_invalid_length"] == 1


def test_rebuilt_ipv4_header_checksum_is_valid() -> None:
    d = Decoder(1)
    _, done = _feed(d, _v4_fragments())
    hdr = done[0].ip_header
    total = sum(struct.unpack("!10H", hdr))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    assert total == 0xFFFF
