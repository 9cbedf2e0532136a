"""Flow hashing of the pcap fan-out: symmetric, stable, fragments kept together."""

from __future__ import annotations

import struct

from ruleengine.capture import LINKTYPE_ETHERNET, LINKTYPE_RAW
from ruleengine.pcap_fanout import FragmentRouter, worker_for


def _v4(src: int, dst: int, sport: int, dport: int, *, proto: int = 6, frag: int = 0,
        ident: int = 1, ports: bool = True) -> bytes:
    l4 = struct.pack("!HH", sport, dport) + b"\0" * 16 if ports else b"x" * 20
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ident, frag, 64, proto, 0,
                       src.to_bytes(4, "big"), dst.to_bytes(4, "big")) + l4


def test_both_directions_meet_and_flows_spread() -> None:
    frags = FragmentRouter()
    seen = set()
    for port in range(1000, 1064):
        fwd = worker_for(LINKTYPE_RAW, _v4(1, 2, port, 80), 4, frags)
        rev = worker_for(LINKTYPE_RAW, _v4(2, 1, 80, port), 4, frags)
        assert fwd == rev
        seen.add(fwd)
    assert seen == {0, 1, 2, 3}


def test_fragments_follow_the_first_fragment() -> None:
    frags = FragmentRouter()
    targets = set()
    for port in range(2000, 2032):
        first = worker_for(LINKTYPE_RAW, _v4(1, 2, port, 53, proto=17, frag=0x2000,
                                             ident=port), 4, frags)
        later = worker_for(LINKTYPE_RAW, _v4(1, 2, 0, 0, proto=17, frag=3, ident=port,
                                             ports=False), 4, frags)
        assert first == later
        targets.add(first)
    assert len(targets) > 1


def test_non_ip_and_vlan() -> None:
    frags = FragmentRouter()
    arp = b"\xff" * 12 + b"\x08\x06" + b"\0" * 28
    assert worker_for(LINKTYPE_ETHERNET, arp, 4, frags) == 0
    ip = _v4(1, 2, 1234, 80)
    plain = b"\0" * 12 + b"\x08\x00" + ip
    tagged = b"\0" * 12 + b"\x81\x00\x00\x05\x08\x00" + ip
    assert worker_for(LINKTYPE_ETHERNET, plain, 4, frags) == \
        worker_for(LINKTYPE_ETHERNET, tagged, 4, frags) == worker_for(LINKTYPE_RAW, ip, 4, frags)
