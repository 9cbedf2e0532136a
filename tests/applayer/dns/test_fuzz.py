"""Hostile input: random and mutated messages, split anywhere, never raise; what is
logged stays schema-valid and bounded."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ruleengine.applayer.base import TxMatchContext
from ruleengine.applayer.dns import PROTOCOL, DnsConfig, DnsParser, alert_logger, log_sides
from ruleengine.applayer.dns.detect import BUFFERS, KEYWORDS, response_rrnames
from tests.applayer.dns.helpers import (
    SCHEMA_PATH,
    make,
    query,
    response,
    rich_response,
    tcp_frame,
    validate_event,
)

SEEDS = [query(), response(), rich_response(), query("x" * 60 + ".example", "TXT"),
         response(compress=False)]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 8))):
        op = draw(st.integers(0, 2))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == 0 and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == 1:
            data[pos:pos] = draw(st.binary(max_size=8))
        else:
            del data[pos:pos + draw(st.integers(1, 8))]
    return bytes(data)


messages = st.one_of(st.binary(max_size=300), mutated())


def exercise(parser: DnsParser) -> None:
    ctxs = (TxMatchContext(True), TxMatchContext(False))
    args = [(kw, kw.parse(v)) for kw, v in zip(KEYWORDS, ("0", "NXDOMAIN", "A"), strict=True)]
    check_schema = SCHEMA_PATH.exists()
    assert len(parser.transactions) <= parser.config.max_tx
    for tx in parser.transactions:
        for spec in BUFFERS:
            for getter in (spec.getter, spec.getter_toclient):
                if getter is not None:
                    value = getter(tx)
                    assert value is None or all(isinstance(v, bytes) and v for v in value)
        assert response_rrnames(tx) is None or tx.response is not None
        for kw, arg in args:
            for ctx in ctxs:
                assert kw.match(arg, tx, ctx) in (True, False, None)
        for options in ({}, {"version": 2}):
            for _, obj in log_sides(tx, options):
                if check_schema:
                    validate_event(obj)
        alert = alert_logger(tx, {})
        if alert is not None and check_schema:
            validate_event(alert, "alert")
        assert set(tx.events) <= PROTOCOL.events


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.booleans(), messages), max_size=6), st.booleans())
def test_udp_fuzz(datagrams: list[tuple[bool, bytes]], match: bool) -> None:
    parser = make(DnsConfig(match_responses=match, max_tx=4), 17)
    assert isinstance(parser, DnsParser)
    for to_server, data in datagrams:
        parser.feed(to_server, data)
        assert PROTOCOL.probe is not None
        assert PROTOCOL.probe(data, to_server) in ("match", "undecided", "nomatch")
    parser.close()
    exercise(parser)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.booleans(), messages, st.booleans()), max_size=5),
       st.lists(st.integers(1, 64), min_size=1, max_size=20))
def test_tcp_fuzz(items: list[tuple[bool, bytes, bool]], cuts: list[int]) -> None:
    parser = make(DnsConfig(), 6)
    assert isinstance(parser, DnsParser)
    streams: dict[bool, bytes] = {True: b"", False: b""}
    for to_server, data, framed in items:
        streams[to_server] += tcp_frame(data) if framed else data
    for to_server, stream in streams.items():
        pos, i = 0, 0
        while pos < len(stream):
            step = cuts[i % len(cuts)]
            parser.feed(to_server, stream[pos:pos + step])
            pos, i = pos + step, i + 1
    exercise(parser)
    assert all(len(b) <= 0x10001 for b in parser._buf.values())


def test_valid_stream_survives_mutation_neighbours() -> None:
    """A valid framed message after garbage on UDP still parses (datagrams are apart)."""
    parser = make(DnsConfig(), 17)
    assert isinstance(parser, DnsParser)
    parser.feed(True, b"\xff" * 40)
    parser.feed(True, query())
    assert len(parser.transactions) == 1
