"""Hostile frames never raise out of the decoder, nor hit its internal-error safety net."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrRouting
from scapy.layers.l2 import Dot1Q
from scapy.packet import Raw

from ruleengine.decode.decoder import Decoder
from tests.decode.frames import eth, tunnel_frames

LINKTYPES = [0, 1, 12, 101, 104, 108, 113, 228, 229, 276]

SEEDS = [
    bytes(eth() / IP() / TCP(options=[("MSS", 1460), ("WScale", 7)]) / Raw(b"GET / HTTP/1.1")),
    bytes(eth() / Dot1Q(vlan=3) / IPv6() / IPv6ExtHdrRouting(addresses=["::1"]) / UDP()),
    bytes(eth() / IPv6() / IPv6ExtHdrFragment(m=1, id=5) / UDP() / Raw(b"x" * 16)),
    *[bytes(eth() / f) for f in fragment(IP() / UDP() / Raw(b"y" * 100), fragsize=24)],
    # every encapsulation (GRE, ERSPAN, PPTP, VXLAN, Geneve, IP-in-IP, MPLS, PPPoE)
    *[frame for lt, frame in tunnel_frames() if lt == 1],
]

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(d: Decoder, frame: bytes) -> None:
    pkt = d.decode(1.0, frame)
    if pkt is not None:
        assert "decoder.internal_error" not in (pkt.events or []), frame.hex()
        assert isinstance(pkt.payload, bytes)


@FUZZ
@given(linktype=st.sampled_from(LINKTYPES), data=st.binary(max_size=200))
def test_random_bytes(linktype: int, data: bytes) -> None:
    _check(Decoder(linktype), data)


@FUZZ
@given(
    seed=st.sampled_from(SEEDS),
    flips=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=8),
    cut=st.integers(0, 2000),
)
def test_mutated_frames(seed: bytes, flips: list[tuple[int, int]], cut: int) -> None:
    raw = bytearray(seed)
    for pos, value in flips:
        raw[pos % len(raw)] = value
    d = Decoder(1)
    _check(d, bytes(raw[: max(1, cut % (len(raw) + 1))]))
    _check(d, bytes(raw))


@FUZZ
@given(st.lists(st.binary(min_size=0, max_size=64), max_size=12), st.integers(0, 0xFFFF))
def test_fragment_storms(chunks: list[bytes], ident: int) -> None:
    """Random fragments of one datagram id: any order, any overlap, never a crash."""
    d = Decoder(101)
    for i, chunk in enumerate(chunks):
        frag = IP(id=ident, proto=17, flags="MF" if i % 3 else 0, frag=(i * 7) % 50)
        _check(d, bytes(frag / Raw(chunk)))
