"""Property tests: any segmentation/order/duplication reassembles to the original bytes."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ruleengine.stream.tcp import StreamConfig
from tests.stream.conn import Conn

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def segmented(draw: st.DrawFn) -> tuple[bytes, list[tuple[int, int]]]:
    data = draw(st.binary(min_size=1, max_size=300))
    cuts = sorted(set(draw(st.lists(st.integers(1, len(data)), max_size=10))) | {len(data)})
    segs, start = [], 0
    for cut in cuts:
        if cut > start:
            segs.append((start, cut))
            start = cut
    dups = draw(st.lists(st.sampled_from(segs), max_size=4))
    order = draw(st.permutations(segs + dups))
    return data, list(order)


@FUZZ
@given(segmented(), st.booleans(), st.integers(0, 0xFFFFFFFF))
def test_reassembly_is_exact(case: tuple[bytes, list[tuple[int, int]]], inline: bool, isn: int):
    data, order = case
    conn = Conn(StreamConfig(inline=inline), isn_c=isn)
    conn.handshake()
    for start, end in order:
        conn.c("PA", start, data[start:end], ack_off=0)
    conn.s("A", 0, ack_off=len(data))
    assert bytes(conn.toserver) == data
    assert "stream.internal_error" not in conn.events()


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["S", "SA", "A", "PA", "FA", "R", "RA", "F", "FPA"]),
            st.integers(-50, 400),
            st.integers(-50, 400),
            st.binary(max_size=40),
            st.booleans(),
        ),
        max_size=25,
    ),
    st.booleans(),
)
def test_random_packets_never_break_the_tracker(packets, midstream: bool) -> None:
    conn = Conn(StreamConfig(midstream=midstream, reassembly_depth=200))
    for flags, seq, ack, payload, to_server in packets:
        base_seq = conn.isn_c if to_server else conn.isn_s
        base_ack = conn.isn_s if to_server else conn.isn_c
        conn.send(flags, base_seq + seq, base_ack + ack, payload, to_server=to_server)
    if conn.flow is not None:
        conn.flush()
    assert "stream.internal_error" not in conn.events()
    assert len(conn.toserver) <= 200 and len(conn.toclient) <= 200


@FUZZ
@given(
    st.lists(
        st.tuples(st.integers(0, 9), st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)))),
        max_size=20,
    )
)
def test_mutated_frames_through_decoder_table_and_tracker(mutations) -> None:
    """Bit-flipped frames of a real conversation through the whole hot path."""
    from ruleengine.decode.decoder import Decoder
    from ruleengine.flow.table import FlowTable
    from ruleengine.stream.tcp import TcpTracker
    from tests.decode.frames import tcp_frame

    base = [
        tcp_frame("S", 1),
        tcp_frame("SA", 9, 2, to_server=False),
        tcp_frame("A", 2, 10),
        tcp_frame("PA", 2, 10, b"GET / HTTP/1.1\r\n\r\n"),
        tcp_frame("PA", 10, 20, b"HTTP/1.1 200 OK\r\n\r\n", to_server=False),
        tcp_frame("FA", 20, 30),
        tcp_frame("FA", 30, 21, to_server=False),
        tcp_frame("R", 21),
        tcp_frame("S", 7777),
        tcp_frame("A", 5, 5, b"junk", to_server=False),
    ]
    decoder = Decoder(1, checksum_validation=False)
    table = FlowTable(expire_interval=0)
    tracker = TcpTracker(StreamConfig(midstream=True, reassembly_depth=64))
    ts = 0.0
    for index, flips in mutations:
        raw = bytearray(base[index])
        for pos, value in flips:
            raw[pos % len(raw)] = value
        ts += 1.0
        pkt = decoder.decode(ts, bytes(raw))
        if pkt is None or pkt.invalid or not pkt.ip_version:
            continue
        flow, to_server = table.lookup(pkt)
        if pkt.proto == 6:
            upd = tracker.process(flow, pkt, to_server)
            assert "stream.internal_error" not in upd.events
    for flow in table.flush():
        assert "stream.internal_error" not in tracker.flush(flow).events
    assert "decoder.event.decoder.internal_error" not in decoder.counters
