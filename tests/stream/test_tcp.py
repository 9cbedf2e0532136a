from __future__ import annotations

from ruleengine.config import Config
from ruleengine.stream.tcp import StreamConfig
from tests.decode.frames import decode_one, tcp_frame
from tests.stream.conn import Conn

IPS = StreamConfig(inline=True)


class TestHandshake:
    def test_three_way_handshake_establishes(self) -> None:
        conn = Conn()
        conn.send("S", conn.isn_c, to_server=True)
        assert conn.flow is not None and conn.flow.state == "new"
        assert conn.flow.tcp is not None and conn.flow.tcp.state_name == "syn_sent"
        conn.send("SA", conn.isn_s, conn.isn_c + 1, to_server=False)
        assert conn.flow.tcp.state_name == "syn_recv"
        upd = conn.send("A", conn.isn_c + 1, conn.isn_s + 1, to_server=True)
        assert upd.established and conn.flow.state == "established"
        assert conn.flow.tcp.tcp_flags_ts == 0x12 and conn.flow.tcp.tcp_flags_tc == 0x12
        assert conn.flow.tcp.tcp_flags == 0x12
        assert conn.tracker.counters["tcp.sessions"] == 1

    def test_synack_with_wrong_ack_is_rejected(self) -> None:
        conn = Conn()
        conn.send("S", conn.isn_c, to_server=True)
        upd = conn.send("SA", conn.isn_s, conn.isn_c + 77, to_server=False)
        assert not upd.accept and "stream.3whs_synack_with_wrong_ack" in upd.events
        assert upd.invalid
        assert conn.flow is not None and conn.flow.tcp is not None
        assert conn.flow.tcp.state_name == "syn_sent"

    def test_no_session_without_syn_when_midstream_is_off(self) -> None:
        conn = Conn()
        upd = conn.c("PA", 0, b"GET / HTTP/1.0\r\n\r\n", ack_off=0)
        assert not upd.accept and upd.midstream_rejected and upd.data == []
        assert not upd.invalid  # not tracked is not invalid
        assert conn.flow is not None and conn.flow.tcp is None and conn.flow.state == "new"

    def test_midstream_pickup(self) -> None:
        conn = Conn(StreamConfig(midstream=True))
        upd = conn.c("PA", 0, b"GET / HTTP/1.0\r\n\r\n", ack_off=0)
        assert upd.accept and upd.established
        assert conn.tracker.counters["tcp.midstream_pickups"] == 1
        conn.s("PA", 0, b"HTTP/1.0 200 OK\r\n\r\n", ack_off=18)
        assert bytes(conn.toserver) == b"GET / HTTP/1.0\r\n\r\n"
        conn.c("A", 18, ack_off=19)
        assert bytes(conn.toclient) == b"HTTP/1.0 200 OK\r\n\r\n"

    def test_midstream_synack_receiver_is_client(self) -> None:
        conn = Conn(StreamConfig(midstream=True))
        upd = conn.send("SA", conn.isn_s, conn.isn_c + 1, to_server=False)
        assert upd.accept
        flow = conn.flow
        assert flow is not None and flow.sport == 40000 and flow.dport == 80
        conn.c("A", 0, ack_off=0)
        assert flow.state == "established"
        conn.c("PA", 0, b"hello", ack_off=0)
        conn.s("A", 0, ack_off=5)
        assert bytes(conn.toserver) == b"hello"

    def test_async_oneside(self) -> None:
        conn = Conn(StreamConfig(async_oneside=True))
        conn.send("S", conn.isn_c, to_server=True)
        upd = conn.c("A", 0, ack_off=0)
        assert upd.established
        conn.c("PA", 0, b"one-way", ack_off=0)
        assert bytes(conn.toserver) == b"one-way"  # no ACKs will come: deliver on arrival

    def test_async_oneside_midstream_until_the_other_side_shows_up(self) -> None:
        conn = Conn(StreamConfig(midstream=True, async_oneside=True))
        conn.c("PA", 0, b"first", ack_off=0)
        assert bytes(conn.toserver) == b"first"
        conn.s("A", 0, ack_off=5)
        assert conn.flow is not None and conn.flow.tcp is not None
        assert not conn.flow.tcp.oneside
        conn.c("PA", 5, b"second", ack_off=0)
        assert bytes(conn.toserver) == b"first"  # now waits for the ACK
        conn.s("A", 0, ack_off=11)
        assert bytes(conn.toserver) == b"firstsecond"

    def test_syn_from_server_side_of_an_existing_flow_swaps_roles(self) -> None:
        conn = Conn()
        conn.s("A", 0, ack_off=0)  # a stray packet creates the flow first
        conn.send("S", conn.isn_c, to_server=True)
        flow = conn.flow
        assert flow is not None and flow.tcp is not None
        assert flow.sport == 40000  # SYN sender became the client

    def test_bad_checksum_not_accepted(self) -> None:
        conn = Conn()
        conn.handshake()
        frame = bytearray(tcp_frame("PA", conn.isn_c + 1, conn.isn_s + 1, b"data"))
        frame[-1] ^= 0xFF
        pkt = conn.decoder.decode(1.0, bytes(frame))
        assert pkt is not None and not pkt.checksum_ok
        assert conn.flow is not None
        upd = conn.tracker.process(conn.flow, pkt, True)
        assert not upd.accept
        assert conn.tracker.counters["tcp.invalid_checksum"] == 1

    def test_tcp_fast_open_data_on_syn(self) -> None:
        conn = Conn()
        conn.send("S", conn.isn_c, data=b"GET /tfo", to_server=True)
        upd = conn.send("SA", conn.isn_s, conn.isn_c + 1 + 8, to_server=False)
        assert upd.accept and upd.data == [(True, b"GET /tfo")]
        conn.c("A", 8, ack_off=0)
        conn.c("PA", 8, b" HTTP/1.0", ack_off=0)
        conn.s("A", 0, ack_off=17)
        assert bytes(conn.toserver) == b"GET /tfo HTTP/1.0"

    def test_tcp_fast_open_data_refused(self) -> None:
        conn = Conn()
        conn.send("S", conn.isn_c, data=b"early", to_server=True)
        upd = conn.send("SA", conn.isn_s, conn.isn_c + 1, to_server=False)
        assert upd.accept and "stream.3whs_synack_tfo_data_ignored" in upd.events
        conn.c("A", 0, ack_off=0)
        conn.c("PA", 0, b"again", ack_off=0)
        conn.s("A", 0, ack_off=5)
        assert bytes(conn.toserver) == b"again"

    def test_rst_without_session(self) -> None:
        conn = Conn()
        upd = conn.c("R", 0)
        assert not upd.accept and "stream.rst_but_no_session" in upd.events


class TestDeliveryIDS:
    def test_data_goes_out_when_acked(self) -> None:
        conn = Conn()
        conn.handshake()
        upd = conn.c("PA", 0, b"GET / HTTP/1.1\r\n\r\n", ack_off=0)
        assert upd.data == []  # not ACKed yet
        upd = conn.s("PA", 0, b"HTTP/1.1 200 OK\r\n", ack_off=18)
        assert upd.data == [(True, b"GET / HTTP/1.1\r\n\r\n")]
        upd = conn.c("A", 18, ack_off=17)
        assert upd.data == [(False, b"HTTP/1.1 200 OK\r\n")]

    def test_out_of_order_segments(self) -> None:
        conn = Conn()
        conn.handshake()
        conn.c("PA", 6, b"world", ack_off=0)
        conn.c("PA", 11, b"!", ack_off=0)
        conn.s("A", 0, ack_off=0)
        assert conn.toserver == b""
        conn.c("PA", 0, b"hello ", ack_off=0)
        conn.s("A", 0, ack_off=12)
        assert bytes(conn.toserver) == b"hello world!"

    def test_partial_ack_delivers_prefix(self) -> None:
        conn = Conn()
        conn.handshake()
        conn.c("PA", 0, b"abcdefgh", ack_off=0)
        conn.s("A", 0, ack_off=3)
        assert bytes(conn.toserver) == b"abc"
        conn.s("A", 0, ack_off=8)
        assert bytes(conn.toserver) == b"abcdefgh"

    def test_retransmission_not_delivered_twice(self) -> None:
        conn = Conn()
        conn.handshake()
        conn.c("PA", 0, b"request", ack_off=0)
        conn.s("A", 0, ack_off=7)
        upd = conn.c("PA", 0, b"request", ack_off=0)
        assert "stream.pkt_retransmission" in upd.events
        conn.s("A", 0, ack_off=7)
        assert bytes(conn.toserver) == b"request"
        assert conn.tracker.counters["tcp.pkt_retransmission"] == 1

    def test_keepalive_is_not_a_retransmission(self) -> None:
        conn = Conn()
        conn.handshake()
        conn.c("PA", 0, b"hello", ack_off=0)
        conn.s("A", 0, ack_off=5)
        upd = conn.c("A", 4, b"\x00", ack_off=0)  # keep-alive: seq = next - 1, one byte
        assert upd.events == [] and upd.data == []
        assert conn.tracker.counters["tcp.keepalive"] == 1
        assert bytes(conn.toserver) == b"hello"

    def test_retransmission_of_buffered_data(self) -> None:
        conn = Conn()
        conn.handshake()
        conn.c("PA", 0, b"request", ack_off=0)
        upd = conn.c("PA", 0, b"request", ack_off=0)
        assert "stream.pkt_retransmission" in upd.events
        conn.s("A", 0, ack_off=7)
        assert bytes(conn.toserver) == b"request"

    def test_overlap_keeps_first_data(self) -> None:
        conn = Conn()
        conn.handshake()
        conn.c("PA", 4, b"EFGH", ack_off=0)
        upd = conn.c("PA", 2, b"cdXXYY", ack_off=0)  # overlaps 4..8 with different bytes
        assert "stream.reassembly_overlap_different_data" in upd.events
        conn.c("PA", 0, b"ab", ack_off=0)
        conn.s("A", 0, ack_off=8)
        assert bytes(conn.toserver) == b"abcdEFGH"
        assert conn.tracker.counters["tcp.overlap_diff_data"] == 1

    def test_sequence_wraparound(self) -> None:
        conn = Conn(isn_c=0xFFFFFFF0, isn_s=0xFFFFFFFE)
        conn.handshake()
        conn.c("PA", 0, b"0123456789", ack_off=0)
        conn.c("PA", 10, b"abcdefghij", ack_off=0)  # crosses 2**32
        conn.s("PA", 0, b"response-bytes", ack_off=20)
        conn.c("A", 20, ack_off=14)
        assert bytes(conn.toserver) == b"0123456789abcdefghij"
        assert bytes(conn.toclient) == b"response-bytes"

    def test_wraparound_out_of_order(self) -> None:
        conn = Conn(isn_c=0xFFFFFFFA)
        conn.handshake()
        conn.c("PA", 8, b"89", ack_off=0)
        conn.c("PA", 0, b"01234567", ack_off=0)
        conn.s("A", 0, ack_off=10)
        assert bytes(conn.toserver) == b"0123456789"

    def test_gap_when_peer_acks_unseen_data(self) -> None:
        conn = Conn()
        conn.handshake()
        conn.c("PA", 0, b"head", ack_off=0)
        conn.c("PA", 10, b"tail", ack_off=0)  # bytes 4..10 never captured
        upd = conn.s("A", 0, ack_off=14)
        assert upd.data == [(True, b"head"), (True, b"tail")]
        assert upd.gap_toserver and upd.gaps == [1]
        assert "stream.reassembly_seq_gap" in upd.events
        assert conn.tracker.counters["tcp.reassembly_gap"] == 1
        assert conn.flow is not None and conn.flow.tcp is not None
        assert conn.flow.tcp.client.gap and not conn.flow.tcp.server.gap

    def test_fin_ack_is_not_a_gap(self) -> None:
        conn = Conn()
        conn.handshake()
        conn.c("FPA", 0, b"bye", ack_off=0)
        upd = conn.s("A", 0, ack_off=4)  # ACKs the data and the FIN
        assert upd.data == [(True, b"bye")] and not upd.gap_toserver
        assert upd.closed_toserver and not upd.closed_toclient

    def test_fin_both_sides_closes_and_flushes(self) -> None:
        conn = Conn()
        conn.handshake()
        conn.c("PA", 0, b"req", ack_off=0)
        conn.s("PA", 0, b"resp", ack_off=3)
        conn.s("FA", 4, ack_off=3)
        upd = conn.c("FA", 3, ack_off=5)
        assert upd.closed and conn.flow is not None and conn.flow.state == "closed"
        assert bytes(conn.toserver) == b"req" and bytes(conn.toclient) == b"resp"
        assert upd.closed_toserver
        assert conn.tracker.counters["tcp.fin"] == 2

    def test_rst_closes_and_flushes_unacked_data(self) -> None:
        conn = Conn()
        conn.handshake()
        conn.c("PA", 0, b"unacked", ack_off=0)
        upd = conn.s("RA", 0, ack_off=7)
        assert upd.closed and (True, b"unacked") in upd.data
        assert upd.closed_toserver and upd.closed_toclient
        assert conn.flow is not None and conn.flow.state == "closed"

    def test_rst_far_out_of_sequence_is_ignored(self) -> None:
        conn = Conn()
        conn.handshake()
        upd = conn.send("R", conn.isn_s + 1 + (1 << 30), 0, to_server=False)
        assert not upd.accept and upd.invalid and "stream.suspected_rst_inject" in upd.events
        assert conn.flow is not None and conn.flow.state == "established"

    def test_flush_at_flow_end(self) -> None:
        conn = Conn()
        conn.handshake()
        conn.c("PA", 0, b"never-acked", ack_off=0)
        upd = conn.flush()
        assert upd.data == [(True, b"never-acked")]
        assert upd.closed_toserver and upd.closed_toclient

    def test_one_sided_capture_forced_flush(self) -> None:
        conn = Conn(StreamConfig(midstream=True, max_unacked=10))
        conn.c("PA", 0, b"0123456789", ack_off=0)
        assert conn.toserver == b""
        conn.c("PA", 10, b"abc", ack_off=0)
        assert bytes(conn.toserver) == b"0123456789abc"
        assert conn.tracker.counters["tcp.forced_flush"] == 1

    def test_port_reuse_after_close(self) -> None:
        conn = Conn()
        conn.handshake()
        conn.c("RA", 0, ack_off=0)
        old = conn.flow
        assert old is not None and old.state == "closed"
        conn.send("S", 90000, to_server=True)  # the flow table starts a new flow
        assert conn.flow is not old and conn.flow is not None
        assert conn.flow.tcp is not None and conn.flow.tcp.state_name == "syn_sent"
        # fed the old flow directly, the tracker resets the session itself
        pkt = decode_one(tcp_frame("S", 123456))
        conn.tracker.process(old, pkt, True)
        assert conn.tracker.counters["tcp.ssn_reuse"] == 1
        assert old.tcp is not None and old.tcp.state_name == "syn_sent"


class TestDepth:
    def test_depth_limits_delivery_and_is_reported_once(self) -> None:
        conn = Conn(StreamConfig(reassembly_depth=10))
        conn.handshake()
        conn.c("PA", 0, b"0123456", ack_off=0)
        conn.c("PA", 7, b"789abcdef", ack_off=0)
        upd = conn.s("A", 0, ack_off=16)
        assert bytes(conn.toserver) == b"0123456789"
        assert upd.depth_reached_toserver and not upd.depth_reached_toclient
        conn.c("PA", 16, b"more", ack_off=0)
        upd = conn.s("A", 0, ack_off=20)
        assert upd.data == [] and not upd.depth_reached_toserver
        assert conn.tracker.counters["tcp.stream_depth_reached"] == 1
        assert conn.flow is not None and conn.flow.tcp is not None
        assert conn.flow.tcp.client.buffered == 0  # nothing kept beyond depth

    def test_zero_depth_is_unlimited(self) -> None:
        conn = Conn(StreamConfig(reassembly_depth=0, inline=True))
        conn.handshake()
        for i in range(50):
            conn.c("PA", i * 100, b"x" * 100, ack_off=0)
        assert len(conn.toserver) == 5000

    def test_depth_per_direction(self) -> None:
        conn = Conn(StreamConfig(reassembly_depth=4, inline=True))
        conn.handshake()
        upd = conn.s("PA", 0, b"server-data", ack_off=0)
        assert upd.depth_reached_toclient and bytes(conn.toclient) == b"serv"
        conn.c("PA", 0, b"ab", ack_off=4)
        assert bytes(conn.toserver) == b"ab"


class TestInline:
    def test_inline_delivers_on_arrival(self) -> None:
        conn = Conn(IPS)
        conn.handshake()
        upd = conn.c("PA", 0, b"GET /", ack_off=0)
        assert upd.data == [(True, b"GET /")]
        upd = conn.s("A", 0, ack_off=5)
        assert upd.data == []  # already delivered; not twice

    def test_inline_out_of_order_waits_for_hole(self) -> None:
        conn = Conn(IPS)
        conn.handshake()
        assert conn.c("PA", 3, b"def", ack_off=0).data == []
        assert conn.c("PA", 0, b"abc", ack_off=0).data == [(True, b"abcdef")]


def test_hostile_packets_do_not_raise() -> None:
    conn = Conn(StreamConfig(midstream=True))
    for flags in ("FSRPAUEC", "SF", "R", "F", "U", "", "SR"):
        conn.send(flags, 123, 456, b"zz", to_server=True)
        conn.send(flags, 0xFFFFFFFF, 0, b"", to_server=False)
    assert not [e for e in conn.events() if e == "stream.internal_error"]


def test_invalid_packet_not_accepted() -> None:
    conn = Conn()
    pkt = decode_one(tcp_frame("S", 1))
    pkt.invalid = True
    conn.handshake()
    assert conn.flow is not None
    assert not conn.tracker.process(conn.flow, pkt, True).accept


def _stream_config(*overrides: str, ips: bool = False) -> StreamConfig:
    """The tracker's settings as the engine reads them from suricata.yaml (``--set``)."""
    config, _ = Config.load(None, list(overrides))
    return StreamConfig.from_mapping(config.get_section("stream"), ips_mode=ips)


def test_config_from_yaml() -> None:
    cfg = _stream_config("stream.midstream=true", "stream.inline=auto",
                         "stream.async-oneside=yes", "stream.bypass=yes",
                         "stream.reassembly.depth=64kb", ips=True)
    assert cfg == StreamConfig(
        midstream=True, inline=True, reassembly_depth=65536, async_oneside=True, bypass=True
    )
    assert _stream_config() == StreamConfig()
    assert not _stream_config("stream.inline=no", ips=True).inline
    assert _stream_config("stream.reassembly.depth=junk").reassembly_depth == 1 << 20


def test_depth_reached_across_a_gap() -> None:
    conn = Conn(StreamConfig(reassembly_depth=10))
    conn.handshake()
    conn.c("PA", 0, b"abc", ack_off=0)
    conn.c("PA", 20, b"later", ack_off=0)  # beyond depth: not stored
    upd = conn.s("A", 0, ack_off=25)
    assert upd.data == [(True, b"abc")]
    assert upd.depth_reached_toserver and upd.gap_toserver


def test_data_beyond_depth_arriving_early_does_not_end_delivery() -> None:
    conn = Conn(StreamConfig(reassembly_depth=10))
    conn.handshake()
    conn.c("PA", 12, b"zz", ack_off=0)
    conn.c("PA", 0, b"0123", ack_off=0)
    upd = conn.s("A", 0, ack_off=4)
    assert upd.data == [(True, b"0123")] and not upd.depth_reached_toserver
    conn.c("PA", 4, b"456789", ack_off=0)
    upd = conn.s("A", 0, ack_off=14)
    assert upd.data == [(True, b"456789")] and upd.depth_reached_toserver


class TestMemcap:
    def test_in_order_data_is_handed_out_at_the_cap(self) -> None:
        conn = Conn(StreamConfig(memcap=10))
        conn.handshake()
        conn.c("PA", 0, b"0123456", ack_off=0)
        upd = conn.c("PA", 7, b"789abc", ack_off=0)  # would exceed 10 buffered bytes
        assert upd.data == [(True, b"0123456")]
        assert conn.tracker.counters["tcp.forced_flush"] == 1
        assert conn.tracker.snapshot()["tcp.reassembly_memuse"] == 6
        conn.s("A", 0, ack_off=13)
        assert bytes(conn.toserver) == b"0123456789abc"
        assert conn.tracker.memuse == 0
        snap = conn.tracker.snapshot()
        assert snap["tcp.active_sessions"] == 1 and snap["tcp.sessions"] == 1

    def test_out_of_order_data_is_dropped_at_the_cap(self) -> None:
        conn = Conn(StreamConfig(memcap=8))
        conn.handshake()
        conn.c("PA", 10, b"later", ack_off=0)
        conn.c("PA", 20, b"toomuch", ack_off=0)
        assert conn.tracker.counters["tcp.segment_memcap_drop"] == 1
        assert conn.tracker.memuse == 5

    def test_release_and_reclaim(self) -> None:
        conn = Conn(StreamConfig(memcap=100))
        conn.handshake()
        conn.c("PA", 0, b"x" * 40, ack_off=0)
        assert conn.tracker.memuse == 40
        assert conn.flow is not None
        conn.tracker.release(conn.flow)
        assert conn.tracker.memuse == 0
        conn.c("PA", 40, b"y" * 40, ack_off=0)
        conn.flow.tcp = None  # the flow dropped its session without flush()
        conn.tracker._reclaim()
        assert conn.tracker.memuse == 0


def test_memcap_from_yaml() -> None:
    assert _stream_config("stream.reassembly.memcap=64mb").memcap == 64 << 20
    assert _stream_config("stream.reassembly.memcap=0").memcap == StreamConfig.memcap


def test_per_direction_out_of_order_bounds() -> None:
    conn = Conn(StreamConfig(max_segments=3, max_buffered=1000))
    conn.handshake()
    for i in range(1, 6):  # five holes: only three ranges are kept
        conn.c("PA", i * 10, b"z", ack_off=0)
    assert conn.tracker.counters["tcp.segment_memcap_drop"] == 2
    conn.c("PA", 100, b"y" * 2000, ack_off=0)  # too big for the out-of-order budget
    assert conn.tracker.counters["tcp.segment_memcap_drop"] == 3
    conn.c("PA", 0, b"0123456789", ack_off=0)  # in-order data is always accepted
    conn.s("A", 0, ack_off=11)
    assert bytes(conn.toserver) == b"0123456789z"


def test_flow_reverse_swaps_session_halves() -> None:
    conn = Conn(StreamConfig(midstream=True, inline=True))
    conn.s("PA", 0, b"HTTP/1.1 200 OK\r\n\r\n", ack_off=0)  # first packet: a response
    flow = conn.flow
    assert flow is not None and flow.tcp is not None and flow.sport == 80
    assert conn.toserver == b"HTTP/1.1 200 OK\r\n\r\n"
    responder = flow.tcp.client
    flow.reverse()  # the app layer saw a response going "to server": swap
    assert flow.sport == 40000 and flow.dport == 80
    assert flow.tcp.server is responder
    assert (flow.pkts_toserver, flow.pkts_toclient) == (0, 1)
    upd = conn.c("PA", 0, b"GET / HTTP/1.1\r\n\r\n", ack_off=19)
    assert upd.data == [(True, b"GET / HTTP/1.1\r\n\r\n")]
    assert conn.table.lookup(decode_one(tcp_frame("A", 18, 19)))[1] is True



def test_suricata_names_the_fin_states_by_who_closed_first() -> None:
    # StreamTcpHandleFin: a client FIN makes the session close_wait, a server FIN fin_wait1
    conn = Conn()
    conn.handshake()
    conn.c("FA", 0, ack_off=0)
    assert conn.flow is not None and conn.flow.tcp is not None
    assert conn.flow.tcp.state_name == "close_wait"
    conn = Conn()
    conn.handshake()
    conn.s("FA", 0, ack_off=0)
    assert conn.flow is not None and conn.flow.tcp is not None
    assert conn.flow.tcp.state_name == "fin_wait1"


def test_async_client_fin_beyond_its_first_window_is_out_of_window() -> None:
    # SYN/ACK never seen: Suricata checks the client's FIN against the seq of its last data
    # packet plus the window of its first ACK (8192 here, unscaled), and ignores it beyond
    big = b"x" * 9000
    conn = Conn(StreamConfig(async_oneside=True))
    conn.send("S", conn.isn_c, to_server=True)
    conn.c("A", 0, ack_off=0)
    conn.c("PA", 0, big, ack_off=0)
    conn.c("FA", len(big), ack_off=0)
    assert "stream.fin_out_of_window" in conn.events()
    assert conn.flow is not None and conn.flow.tcp is not None
    assert conn.flow.tcp.state_name == "established"
    small = Conn(StreamConfig(async_oneside=True))
    small.send("S", small.isn_c, to_server=True)
    small.c("A", 0, ack_off=0)
    small.c("PA", 0, b"hello", ack_off=0)
    small.c("FA", 5, ack_off=0)
    assert small.flow is not None and small.flow.tcp is not None
    assert small.flow.tcp.state_name == "close_wait"
