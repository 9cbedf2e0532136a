from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Dot1Q
from scapy.packet import Raw

from ruleengine.capture import BypassCounters
from ruleengine.decode.decoder import Decoder
from ruleengine.flow.table import (
    BYPASS_LOCAL,
    FLOW_COST_BYTES,
    FlowTable,
    FlowTimeouts,
    ProtoTimeouts,
    new_flow_id,
)
from tests.decode.frames import decode_one, eth, tcp_frame


def _udp(src: str, dst: str, sport: int, dport: int, ts: float = 1.0, vlan: int | None = None):
    layers = eth() / Dot1Q(vlan=vlan) if vlan is not None else eth()
    return decode_one(bytes(layers / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport)), ts)


class TestLookup:
    def test_symmetric_key_and_direction(self) -> None:
        table = FlowTable()
        f1, ts1 = table.lookup(_udp("10.0.0.1", "10.0.0.2", 5000, 53))
        f2, ts2 = table.lookup(_udp("10.0.0.2", "10.0.0.1", 53, 5000, ts=2.0))
        assert f1 is f2 and len(table) == 1
        assert ts1 is True and ts2 is False
        assert f1.src == bytes([10, 0, 0, 1]) and (f1.sport, f1.dport) == (5000, 53)
        assert (f1.pkts_toserver, f1.pkts_toclient) == (1, 1)
        assert f1.bytes_toserver > 0 and f1.bytes_toclient > 0
        assert (f1.start_ts, f1.last_ts) == (1.0, 2.0)
        assert f1.state == "established"  # UDP: a reply makes it established

    def test_client_is_the_first_sender_even_with_lower_address_on_server(self) -> None:
        table = FlowTable()
        flow, _ = table.lookup(_udp("10.0.0.9", "10.0.0.1", 1, 2))
        assert flow.src == bytes([10, 0, 0, 9])

    def test_synack_first_makes_receiver_the_client(self) -> None:
        table = FlowTable()
        pkt = decode_one(tcp_frame("SA", 100, 200, to_server=False))
        flow, to_server = table.lookup(pkt)
        assert to_server is False
        assert flow.sport == 40000 and flow.dport == 80
        assert flow.pkts_toclient == 1 and flow.pkts_toserver == 0

    def test_syn_after_a_stray_packet_makes_the_syn_sender_the_client(self) -> None:
        table = FlowTable()
        flow, to_server = table.lookup(decode_one(tcp_frame("A", 9, 9, to_server=False)))
        assert to_server and flow.sport == 80  # stray server packet came first
        again, to_server = table.lookup(decode_one(tcp_frame("S", 1)))
        assert again is flow and to_server
        assert flow.sport == 40000 and flow.dport == 80
        assert (flow.pkts_toserver, flow.pkts_toclient) == (1, 1)

    def test_different_ports_vlans_protocols_are_different_flows(self) -> None:
        table = FlowTable()
        table.lookup(_udp("10.0.0.1", "10.0.0.2", 1, 2))
        table.lookup(_udp("10.0.0.1", "10.0.0.2", 1, 3))
        table.lookup(_udp("10.0.0.1", "10.0.0.2", 1, 2, vlan=7))
        table.lookup(
            decode_one(tcp_frame("S", 1, src="10.0.0.1", dst="10.0.0.2", sport=1, dport=2))
        )
        assert len(table) == 4

    def test_vlan_not_used_for_tracking(self) -> None:
        table = FlowTable(use_vlan=False)
        f1, _ = table.lookup(_udp("10.0.0.1", "10.0.0.2", 1, 2, vlan=7))
        f2, to_server = table.lookup(_udp("10.0.0.2", "10.0.0.1", 2, 1))
        assert f1 is f2 and not to_server and f1.vlan == (7,)

    def test_icmp_request_and_reply_share_a_flow(self) -> None:
        table = FlowTable()
        req = decode_one(bytes(eth() / IP(src="1.1.1.1", dst="2.2.2.2") / ICMP(type=8)))
        rep = decode_one(bytes(eth() / IP(src="2.2.2.2", dst="1.1.1.1") / ICMP(type=0)))
        f1, _ = table.lookup(req)
        f2, to_server = table.lookup(rep)
        assert f1 is f2 and not to_server
        assert table.counters["flow.icmpv4"] == 1

    def test_flow_ids_are_positive_51_bit_and_distinct(self) -> None:
        ids = {new_flow_id() for _ in range(1000)}
        assert len(ids) == 1000
        assert all(0 < i < (1 << 51) for i in ids)

    def test_counters(self) -> None:
        table = FlowTable()
        table.lookup(_udp("10.0.0.1", "10.0.0.2", 1, 2))
        table.lookup(decode_one(tcp_frame("S", 1)))
        assert table.counters["flow.total"] == 2
        assert table.counters["flow.udp"] == 1 and table.counters["flow.tcp"] == 1


class TestTimeouts:
    def test_defaults_match_suricata(self) -> None:
        t = FlowTimeouts()
        assert t.tcp == ProtoTimeouts(new=60, established=600, closed=60, bypassed=100)
        assert (t.udp.new, t.udp.established, t.udp.bypassed) == (30, 300, 100)
        assert (t.icmp.new, t.icmp.established) == (30, 300)
        assert (t.default.new, t.default.established, t.default.bypassed) == (30, 300, 100)

    def test_from_mapping(self) -> None:
        t = FlowTimeouts.from_mapping(
            {
                "tcp": {"new": 5, "established": "7", "closed": 1, "emergency-new": 2},
                "udp": {"new": "bogus", "bypassed": -3},
                "icmp": "not a mapping",
            }
        )
        assert t.tcp == ProtoTimeouts(new=5, established=7, closed=1, bypassed=100)
        assert t.udp == FlowTimeouts().udp
        assert t.icmp == FlowTimeouts().icmp
        assert FlowTimeouts.from_mapping(None) == FlowTimeouts()

    def test_expire_by_state(self) -> None:
        table = FlowTable(FlowTimeouts.from_mapping({"udp": {"new": 10, "established": 100}}))
        lone, _ = table.lookup(_udp("10.0.0.1", "10.0.0.2", 1, 2, ts=0.0))
        talk, _ = table.lookup(_udp("10.0.0.1", "10.0.0.3", 1, 2, ts=0.0))
        table.lookup(_udp("10.0.0.3", "10.0.0.1", 2, 1, ts=0.0))
        assert table.expire(5.0) == []
        assert table.expire(11.0) == [lone]
        assert lone.end_reason == "timeout" and len(table) == 1
        assert table.expire(50.0) == []
        assert table.expire(101.0) == [talk]
        assert len(table) == 0

    def test_expire_is_throttled_but_force_scans(self) -> None:
        table = FlowTable(FlowTimeouts.from_mapping({"udp": {"new": 1}}), expire_interval=5.0)
        flow, _ = table.lookup(_udp("10.0.0.1", "10.0.0.2", 1, 2, ts=0.0))
        assert table.expire(0.5) == []
        assert table.expire(2.0) == []  # within the interval: no scan yet
        assert table.expire(2.0, force=True) == [flow]

    def test_activity_resets_the_timer(self) -> None:
        table = FlowTable(FlowTimeouts.from_mapping({"udp": {"new": 10}}), expire_interval=0)
        flow, _ = table.lookup(_udp("10.0.0.1", "10.0.0.2", 1, 2, ts=0.0))
        table.lookup(_udp("10.0.0.1", "10.0.0.2", 1, 2, ts=8.0))
        assert table.expire(15.0) == []
        assert table.expire(18.5) == [flow]

    def test_bypassed_timeout(self) -> None:
        table = FlowTable(FlowTimeouts.from_mapping({"udp": {"bypassed": 3}}), expire_interval=0)
        flow, _ = table.lookup(_udp("10.0.0.1", "10.0.0.2", 1, 2, ts=0.0))
        flow.set_bypassed(BYPASS_LOCAL, 0.0)
        assert flow.state == "bypassed" and flow.timeout() == 3
        flow.count_bypassed(True, 100)
        flow.count_bypassed(False, 50)
        assert (flow.bypassed_pkts_toserver, flow.bypassed_bytes_toclient) == (1, 50)
        assert table.expire(4.0) == [flow]

    def test_capture_bypassed_packets_count_for_the_flow_too(self) -> None:
        table = FlowTable()
        flow, _ = table.lookup(_udp("10.0.0.1", "10.0.0.2", 1, 2))  # one packet seen
        flow.add_capture_bypassed(BypassCounters(pkts_toserver=3, bytes_toserver=300,
                                                 pkts_toclient=2, bytes_toclient=20))
        assert (flow.pkts_toserver, flow.pkts_toclient, flow.bytes_toclient) == (4, 2, 20)
        assert (flow.bypassed_pkts_toserver, flow.bypassed_bytes_toserver) == (3, 300)
        assert (flow.bypassed_pkts_toclient, flow.bypassed_bytes_toclient) == (2, 20)

    def test_flush_returns_everything(self) -> None:
        table = FlowTable()
        a, _ = table.lookup(_udp("10.0.0.1", "10.0.0.2", 1, 2))
        b, _ = table.lookup(_udp("10.0.0.1", "10.0.0.2", 1, 3))
        assert table.flush() == [a, b]
        assert a.end_reason == b.end_reason == "shutdown"
        assert len(table) == 0 and table.flush() == []

    def test_max_flows_evicts_oldest(self) -> None:
        table = FlowTable(max_flows=2)
        a, _ = table.lookup(_udp("10.0.0.1", "10.0.0.2", 1, 2))
        table.lookup(_udp("10.0.0.1", "10.0.0.2", 1, 3))
        table.lookup(_udp("10.0.0.1", "10.0.0.2", 1, 4))
        assert len(table) == 2
        assert a.end_reason == "forced"
        assert table.expire(1.0) == [a]  # handed out for logging
        assert table.counters["flow.end.forced"] == 1

    def test_flow_memcap_bounds_the_table_and_counts(self) -> None:
        table = FlowTable(memcap=3 * FLOW_COST_BYTES + 100)
        assert table.max_flows == 3
        flows = [table.lookup(_udp("10.0.0.1", "10.0.0.2", 1, port))[0]
                 for port in range(10, 16)]
        assert len(table) == 3
        assert table.counters["flow.memcap"] == 3
        assert table.counters["flow.emerg_mode_entered"] == 1
        # the oldest made room, each handed out once to be logged
        assert table.take_evicted() == flows[:3] and table.take_evicted() == []
        assert all(f.end_reason == "forced" for f in flows[:3])

    def test_no_memcap_means_max_flows_only(self) -> None:
        assert FlowTable(memcap=0, max_flows=7).max_flows == 7
        assert FlowTable(memcap=1).max_flows == 1  # never zero


@pytest.mark.parametrize("proto_frame", ["udp6"])
def test_ipv6_flows(proto_frame: str) -> None:
    from scapy.layers.inet6 import IPv6

    d = Decoder(1)
    table = FlowTable()
    p1 = d.decode(
        1.0, bytes(eth() / IPv6(src="::1", dst="::2") / UDP(sport=1, dport=2) / Raw(b"a"))
    )
    p2 = d.decode(
        1.0, bytes(eth() / IPv6(src="::2", dst="::1") / UDP(sport=2, dport=1) / Raw(b"b"))
    )
    assert p1 is not None and p2 is not None
    f1, _ = table.lookup(p1)
    f2, to_server = table.lookup(p2)
    assert f1 is f2 and not to_server and f1.ip_version == 6


def test_icmp_unreachable_joins_the_quoted_flow() -> None:
    table = FlowTable()
    udp = _udp("10.0.0.1", "10.0.0.2", 5000, 53)
    flow, _ = table.lookup(udp)
    quoted = IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5000, dport=53)
    err = decode_one(
        bytes(eth() / IP(src="10.0.0.254", dst="10.0.0.1") / ICMP(type=3, code=3) / quoted)
    )
    assert err.icmp_emb is not None and err.icmp_emb[2:] == (5000, 53, 17)
    got, to_server = table.lookup(err)
    assert got is flow and not to_server and flow.pkts_toclient == 1
    assert len(table) == 1


def test_icmp_unreachable_without_known_flow_is_an_icmp_flow() -> None:
    table = FlowTable()
    quoted = IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5000, dport=53)
    err = decode_one(bytes(eth() / IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(type=3) / quoted))
    flow, _ = table.lookup(err)
    assert flow.proto == 1


def test_icmp_quoted_packet_anomalies() -> None:
    err = decode_one(bytes(eth() / IP() / ICMP(type=3) / Raw(b"\x45" + b"\0" * 10)))
    assert err.icmp_emb is None and err.events == ["icmpv4.ipv4_trunc_pkt"]
    err = decode_one(bytes(eth() / IP() / ICMP(type=3) / Raw(b"\x55" + b"\0" * 30)))
    assert err.events == ["icmpv4.ipv4_unknown_ver"]


def test_tcp_port_reuse_starts_a_new_flow() -> None:
    from ruleengine.stream.tcp import TcpTracker

    table = FlowTable()
    tracker = TcpTracker()

    def feed(frame: bytes):
        pkt = decode_one(frame)
        flow, to_server = table.lookup(pkt)
        tracker.process(flow, pkt, to_server)
        return flow

    old = feed(tcp_frame("S", 100))
    feed(tcp_frame("SA", 500, 101, to_server=False))
    feed(tcp_frame("A", 101, 501))
    feed(tcp_frame("RA", 101, 501))
    assert old.state == "closed"
    assert feed(tcp_frame("S", 100)) is old  # same ISN: a retransmission, same flow
    new = feed(tcp_frame("S", 90000))
    assert new is not old and new.state == "new" and new.tcp is not None
    assert old.end_reason == "tcp_reuse" and table.counters["flow.tcp_reuse"] == 1
    assert table.expire(0.0) == [old]
    assert len(table) == 1


class TestTunnelDepth:
    """Suricata's flow hash and FlowCompare include p->recursion_level: the same tuple
    inside a tunnel and outside it (or at another depth) are different flows."""

    @staticmethod
    def _gre(src: str, dst: str, sport: int, dport: int, depth: int = 1):
        from scapy.layers.l2 import GRE

        pkt = IP(src=src, dst=dst) / UDP(sport=sport, dport=dport)
        for _ in range(depth):
            pkt = IP(src="172.16.0.1", dst="172.16.0.2") / GRE() / pkt
        return decode_one(bytes(eth() / pkt))

    def test_depth_is_part_of_the_key(self) -> None:
        table = FlowTable()
        plain, _ = table.lookup(_udp("10.0.0.1", "10.0.0.2", 5000, 53))
        inner, to_server = table.lookup(self._gre("10.0.0.1", "10.0.0.2", 5000, 53))
        reply, reply_to_server = table.lookup(self._gre("10.0.0.2", "10.0.0.1", 53, 5000))
        deeper, _ = table.lookup(self._gre("10.0.0.1", "10.0.0.2", 5000, 53, depth=2))
        assert inner is reply and to_server and not reply_to_server
        assert len({id(plain), id(inner), id(deeper)}) == 3 and len(table) == 3
        assert (inner.src, inner.sport, inner.dport) == (bytes([10, 0, 0, 1]), 5000, 53)

    def test_use_recursion_off_merges_them(self) -> None:
        table = FlowTable(use_recursion=False)
        plain, _ = table.lookup(_udp("10.0.0.1", "10.0.0.2", 5000, 53))
        inner, _ = table.lookup(self._gre("10.0.0.1", "10.0.0.2", 5000, 53))
        assert plain is inner and len(table) == 1


def test_flow_timeouts_sections_do_not_inherit_from_default() -> None:
    """Suricata's FlowInitFlowProto: ``default`` is the other protocols' section; tcp, udp
    and icmp keep their own built-in values for what their section leaves out."""
    timeouts = FlowTimeouts.from_mapping({
        "default": {"new": 7, "established": 70},
        "udp": {"established": "45"},
        "tcp": {"new": "soon", "closed": -1, "bypassed": 5},
    })
    assert (timeouts.default.new, timeouts.default.established) == (7, 70)
    assert timeouts.for_proto(132).new == 7  # SCTP: the default section
    assert (timeouts.udp.new, timeouts.udp.established) == (30, 45)  # udp's own new
    assert (timeouts.tcp.new, timeouts.tcp.established) == (60, 600)  # bad values: built-in
    assert (timeouts.tcp.closed, timeouts.tcp.bypassed) == (60, 5)
    assert timeouts.for_proto(1) == timeouts.icmp == FlowTimeouts().icmp
    assert FlowTimeouts.from_mapping(None) == FlowTimeouts.from_mapping({"tcp": 3}) \
        == FlowTimeouts()
