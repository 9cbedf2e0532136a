"""App-layer (HTTP transaction) rules: once per tx and direction, waiting for buffers,
multi-buffers, absent, both-direction buffers, urilen."""

from __future__ import annotations

import pytest

from ruleengine.detect.engine import DetectEngine, Match
from tests.detect.helpers import FakeFlow, FakeTx, pkt, reply, rule, udp


def engine(*texts: str, **kw: object) -> DetectEngine:
    return DetectEngine([rule(t) for t in texts], **kw)  # type: ignore[arg-type]


def sids(matches: list[Match]) -> list[int]:
    return [m.rule.sid for m in matches]


REQ = {
    "http.method": b"GET",
    "http.uri": b"/index.php?id=1",
    "http.uri.raw": b"/index.php?id=%31",
    "http.host": b"example.com",
    "http.header": b"Host: example.com\r\nUser-Agent: curl\r\n",
    "http.user_agent": b"curl",
    "http.request_header": [b"Host: example.com", b"User-Agent: curl"],
}
RESP = {
    "http.stat_code": b"200",
    "http.header": b"Server: nginx\r\n",
    "http.response_body": b"<html>hello</html>",
    "http.response_header": [b"Server: nginx"],
}


def test_fires_once_per_transaction_and_direction() -> None:
    e = engine('alert http any any -> any any (http.uri; content:"index.php"; sid:1;)')
    flow, tx = FakeFlow(), FakeTx(0, dict(REQ))
    first = e.inspect_tx(pkt(), flow, True, tx, False, False)
    assert sids(first) == [1] and first[0].tx_id == 0
    assert e.inspect_tx(pkt(), flow, True, tx, True, False) == []
    assert sids(e.inspect_tx(pkt(), flow, True, FakeTx(1, dict(REQ)), True, False)) == [1]


def test_needs_http_flow() -> None:
    e = engine('alert http any any -> any any (http.uri; content:"index"; sid:1;)')
    tx = FakeTx(0, dict(REQ))
    assert e.inspect_tx(pkt(), FakeFlow(alproto="failed"), True, tx, True, False) == []


def test_request_rules_only_on_to_server_side_response_on_to_client() -> None:
    e = engine(
        'alert http any any -> any any (http.method; content:"GET"; sid:1;)',
        'alert http any any -> any any (http.stat_code; content:"200"; sid:2;)',
    )
    flow, tx = FakeFlow(), FakeTx(0, dict(REQ), dict(RESP))
    assert sids(e.inspect_tx(pkt(), flow, True, tx, True, False)) == [1]
    assert sids(e.inspect_tx(reply(), flow, False, tx, True, True)) == [2]


def test_both_direction_buffer_fires_in_each_direction() -> None:
    e = engine('alert http any any <> any any (http.header; content:"e"; sid:1;)')
    flow, tx = FakeFlow(), FakeTx(0, dict(REQ), dict(RESP))
    assert sids(e.inspect_tx(pkt(), flow, True, tx, True, False)) == [1]
    assert sids(e.inspect_tx(reply(), flow, False, tx, True, True)) == [1]
    assert e.inspect_tx(reply(), flow, False, tx, True, True) == []


def test_both_direction_buffer_uses_the_right_side() -> None:
    e = engine('alert http any any -> any any (http.header; content:"nginx"; sid:1;)')
    flow, tx = FakeFlow(), FakeTx(0, dict(REQ), dict(RESP))
    assert e.inspect_tx(pkt(), flow, True, tx, True, False) == []
    assert sids(e.inspect_tx(reply(), flow, False, tx, True, True)) == [1]


def test_rule_with_request_and_response_buffers_waits_for_the_response() -> None:
    e = engine(
        'alert http any any -> any any (http.uri; content:"index"; '
        'http.stat_code; content:"200"; sid:1;)'
    )
    flow = FakeFlow()
    tx = FakeTx(0, dict(REQ))
    assert e.inspect_tx(pkt(), flow, True, tx, True, False) == []
    tx.response = dict(RESP)
    out = e.inspect_tx(reply(), flow, False, tx, True, True)
    assert sids(out) == [1] and out[0].to_server is False


def test_multi_buffer_matches_one_header() -> None:
    e = engine(
        'alert http any any -> any any (http.request_header; content:"User-Agent: curl"; '
        "startswith; endswith; sid:1;)",
        'alert http any any -> any any (http.request_header; content:"Host"; '
        'content:"curl"; distance:0; sid:2;)',
    )
    flow, tx = FakeFlow(), FakeTx(0, dict(REQ))
    assert sids(e.inspect_tx(pkt(), flow, True, tx, True, False)) == [1]


def test_absent_buffer() -> None:
    e = engine(
        "alert http any any -> any any (http.referer; absent; sid:1;)",
        'alert http any any -> any any (http.user_agent; absent: or_else; content:"wget"; sid:2;)',
        "alert http any any -> any any (http.user_agent; absent; sid:3;)",
    )
    flow = FakeFlow()
    tx = FakeTx(0, dict(REQ))
    # request not complete yet: absence is not final
    assert e.inspect_tx(pkt(), flow, True, tx, False, False) == []
    assert sids(e.inspect_tx(pkt(), flow, True, tx, True, False)) == [1]
    no_ua = {k: v for k, v in REQ.items() if k != "http.user_agent"}
    assert sids(e.inspect_tx(pkt(), flow, True, FakeTx(1, no_ua), True, False)) == [1, 2, 3]
    wget = dict(REQ, **{"http.user_agent": b"wget"})
    assert sids(e.inspect_tx(pkt(), flow, True, FakeTx(2, wget), True, False)) == [1, 2]


def test_urilen_norm_and_raw() -> None:
    e = engine(
        "alert http any any -> any any (urilen:15; sid:1;)",
        "alert http any any -> any any (urilen:17,raw; sid:2;)",
        "alert http any any -> any any (urilen:<5; sid:3;)",
    )
    flow = FakeFlow()
    assert sids(e.inspect_tx(pkt(), flow, True, FakeTx(0, dict(REQ)), True, False)) == [1, 2]


def test_body_rule_waits_for_body() -> None:
    e = engine('alert http any any -> any any (file.data; content:"hello"; sid:1;)')
    flow = FakeFlow()
    tx = FakeTx(0, dict(REQ), {"http.stat_code": b"200"})
    assert e.inspect_tx(reply(), flow, False, tx, True, False) == []
    tx.response["file.data"] = b"<html>hello</html>"
    assert sids(e.inspect_tx(reply(), flow, False, tx, True, True)) == [1]


def test_tx_drop_applies_to_flow_and_flowbits_work() -> None:
    e = engine(
        'alert http any any -> any any (http.uri; content:"index"; flowbits:set,seen; '
        "noalert; sid:1;)",
        'drop http any any -> any any (http.stat_code; content:"200"; flowbits:isset,seen; sid:2;)',
    )
    flow = FakeFlow()
    tx = FakeTx(0, dict(REQ), dict(RESP))
    out = e.inspect_tx(pkt(), flow, True, tx, True, False)
    assert [(m.rule.sid, m.alert) for m in out] == [(1, False)]
    out = e.inspect_tx(reply(), flow, False, tx, True, True)
    assert [(m.rule.sid, m.apply_to_flow) for m in out] == [(2, True)]


def test_pass_in_packet_rules_cuts_lower_tx_rules_of_the_same_packet() -> None:
    e = engine(
        'pass tcp any any -> any any (content:"GET"; sid:1;)',
        'alert http any any -> any any (http.uri; content:"index"; sid:2;)',
    )
    flow, p = FakeFlow(), pkt(b"GET /index.php")
    assert sids(e.inspect_packet(p, flow, True)) == [1]
    assert e.inspect_tx(p, flow, True, FakeTx(0, dict(REQ)), True, False) == []


def test_combined_inspect_orders_packet_and_tx_matches() -> None:
    e = engine(
        'alert tcp any any -> any any (content:"GET"; sid:1;)',
        'drop http any any -> any any (http.uri; content:"index"; sid:2;)',
    )
    flow, p = FakeFlow(), pkt(b"GET /index.php")
    out = e.inspect(p, flow, True, None, [(FakeTx(0, dict(REQ)), True, False)])
    assert sids(out) == [2, 1]


def test_header_ports_on_tx_rules() -> None:
    e = engine(
        'alert http any any -> any 8080 (http.uri; content:"index"; sid:1;)',
        'alert http any 80 -> any any (http.stat_code; content:"200"; sid:2;)',
    )
    flow, tx = FakeFlow(), FakeTx(0, dict(REQ), dict(RESP))
    assert e.inspect_tx(pkt(), flow, True, tx, True, False) == []
    assert sids(e.inspect_tx(reply(), flow, False, tx, True, True)) == [2]


def test_buggy_transaction_getter_does_not_raise_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RULEENGINE_STRICT", "0")

    class Broken(FakeTx):
        def buffer(self, name: str, to_server: bool | None = None) -> bytes | None:
            raise RuntimeError("boom")

    e = engine('alert http any any -> any any (http.uri; content:"index"; sid:1;)')
    assert e.inspect_tx(pkt(), FakeFlow(), True, Broken(0), True, False) == []
    assert e.errors == 1


def test_buggy_transaction_getter_fails_a_strict_run() -> None:
    class Broken(FakeTx):
        def buffer(self, name: str, to_server: bool | None = None) -> bytes | None:
            raise RuntimeError("boom")

    e = engine('alert http any any -> any any (http.uri; content:"index"; sid:1;)')
    with pytest.raises(RuntimeError, match="boom"):
        e.inspect_tx(pkt(), FakeFlow(), True, Broken(0), True, False)


def test_hostile_value_error_is_counted_even_when_strict() -> None:
    class Hostile(FakeTx):
        def buffer(self, name: str, to_server: bool | None = None) -> bytes | None:
            raise ValueError("bad length")

    e = engine('alert http any any -> any any (http.uri; content:"index"; sid:1;)')
    assert e.inspect_tx(pkt(), FakeFlow(), True, Hostile(0), True, False) == []
    assert (e.getter_errors, e.errors) == (1, 0)
    assert e.counters()["detect.getter_errors"] == 1


def test_a_getter_broken_by_hostile_data_spoils_only_its_buffer() -> None:
    class OneBad(FakeTx):
        def buffer(self, name: str, to_server: bool | None = None) -> bytes | None:
            if name == "http.user_agent":
                raise OverflowError("length out of range")
            return super().buffer(name, to_server)  # type: ignore[return-value]

    e = engine(
        'alert http any any -> any any (http.user_agent; content:"curl"; sid:1;)',
        'alert http any any -> any any (http.uri; content:"index"; sid:2;)',
    )
    assert sids(e.inspect_tx(pkt(), FakeFlow(), True, OneBad(0, dict(REQ)), True, False)) == [2]
    assert (e.getter_errors, e.errors) == (1, 0)


def test_a_type_error_inside_a_getter_is_a_bug_not_a_one_argument_buffer() -> None:
    class Buggy(FakeTx):
        def buffer(self, name: str, to_server: bool | None = None) -> bytes | None:
            raise TypeError("unsupported operand")

    e = engine('alert http any any -> any any (http.uri; content:"index"; sid:1;)')
    with pytest.raises(TypeError, match="unsupported operand"):
        e.inspect_tx(pkt(), FakeFlow(), True, Buggy(0), True, False)


def test_one_argument_buffer_is_learnt_from_its_signature() -> None:
    class NameOnly:
        tx_id = 0

        def buffer(self, name: str) -> bytes | None:
            return b"/index" if name == "http.uri" else None

    e = engine('alert http any any -> any any (http.uri; content:"index"; sid:1;)')
    assert sids(e.inspect_tx(pkt(), FakeFlow(), True, NameOnly(), True, False)) == [1]  # type: ignore[arg-type]


def test_payload_part_of_tx_rule_sees_earlier_stream_data() -> None:
    e = engine(
        'alert http any any -> any any (content:"GET /x"; http.request_body; content:"pw="; sid:1;)'
    )
    flow = FakeFlow()
    first, second = pkt(b"GET /x HTTP/1.1\r\n\r\n"), pkt(b"pw=1")
    assert e.inspect_packet(first, flow, True, first.payload) == []
    tx = FakeTx(0, dict(REQ, **{"http.request_body": b"pw=1"}))
    assert e.inspect_packet(second, flow, True, second.payload) == []
    assert sids(e.inspect_tx(second, flow, True, tx, True, False)) == [1]


def test_completed_side_is_not_inspected_again() -> None:
    e = engine(
        'alert http any any -> any any (http.uri; content:"index"; flowbits:isset,late; sid:1;)'
    )
    flow, tx = FakeFlow(), FakeTx(0, dict(REQ))
    assert e.inspect_tx(pkt(), flow, True, tx, True, False) == []
    flow.flowbits.add("late")
    assert e.inspect_tx(pkt(), flow, True, tx, True, True) == []
    assert sids(e.inspect_tx(pkt(), flow, True, FakeTx(1, dict(REQ)), False, False)) == [1]


def test_non_bytes_buffers_are_ignored_and_internal_errors_are_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RULEENGINE_STRICT", "0")
    e = engine('alert http any any -> any any (http.uri; content:"index"; sid:1;)')
    tx = FakeTx(0, {"http.uri": "/index"})  # a str is not a buffer
    assert e.inspect_tx(pkt(), FakeFlow(), True, tx, True, False) == []
    tx = FakeTx(1, {"http.uri": bytearray(b"/index")})
    assert sids(e.inspect_tx(pkt(), FakeFlow(), True, tx, True, False)) == [1]
    assert e.inspect_tx(pkt(), object(), True, tx, True, False) == []  # type: ignore[arg-type]
    assert e.errors == 1 and e.last_error


def test_transactional_rule_header_is_client_to_server() -> None:
    e = engine(
        'alert http 10.0.0.1 any => 10.0.0.2 80 (http.uri; content:"index"; '
        'http.stat_code; content:"200"; sid:1;)'
    )
    flow, tx = FakeFlow(), FakeTx(0, dict(REQ), dict(RESP))
    assert e.inspect_tx(pkt(), flow, True, tx, True, False) == []
    out = e.inspect_tx(reply(), flow, False, tx, True, True)
    assert sids(out) == [1]


class ProgressTx(FakeTx):
    request_progress: int = 0
    response_progress: int = 0


def test_buffers_are_refetched_when_the_side_progresses() -> None:
    e = engine('alert http any any -> any any (file.data; content:"needle"; sid:1;)')
    flow = FakeFlow()
    tx = ProgressTx(0, dict(REQ))
    tx.request_progress = 4
    assert e.inspect_tx(reply(), flow, False, tx, True, False) == []  # nothing parsed yet
    tx.response_progress, tx.response = 3, {"file.data": b"hay"}
    assert e.inspect_tx(reply(), flow, False, tx, True, False) == []
    tx.response_progress, tx.response = 4, {"file.data": b"hay needle"}
    assert sids(e.inspect_tx(reply(), flow, False, tx, True, True)) == [1]


def test_a_protocol_keyword_broken_by_hostile_data_is_a_non_match_and_an_event() -> None:
    e = engine('alert dns any any -> any any (dns.opcode:0; sid:1;)')
    (cr,) = e.rules
    (cond, _match), = cr.tx_keywords

    def hostile(arg: object, tx: object, ctx: object) -> bool:
        raise ValueError("record past the end")

    cr.tx_keywords = ((cond, hostile),)
    flow = FakeFlow(alproto="dns")
    assert e.inspect_tx(udp(), flow, True, FakeTx(0), True, False) == []
    assert (e.getter_errors, e.errors) == (1, 0)


def test_a_protocol_keyword_bug_fails_a_strict_run() -> None:
    e = engine('alert dns any any -> any any (dns.opcode:0; sid:1;)')
    (cr,) = e.rules
    (cond, _match), = cr.tx_keywords

    def buggy(arg: object, tx: object, ctx: object) -> bool:
        raise AttributeError("no such field")

    cr.tx_keywords = ((cond, buggy),)
    with pytest.raises(AttributeError):
        e.inspect_tx(udp(), FakeFlow(alproto="dns"), True, FakeTx(0), True, False)


class TableTx(FakeTx):
    """A transaction with a getter table (as HttpTransaction.buffer_table): detection
    calls the getters directly for the MPM buffers instead of ``buffer``."""

    calls: list[str]

    def buffer(self, name: str, to_server: bool | None = None) -> bytes | list[bytes] | None:
        self.calls.append("buffer:" + name)
        return super().buffer(name, to_server)

    def buffer_table(self, to_server: bool) -> dict[str, object]:
        fields = self.request if to_server else self.response

        def getter(name: str) -> object:
            def get(tx: TableTx) -> object:
                tx.calls.append(name)
                value = fields[name]
                if isinstance(value, Exception):
                    raise value
                return value
            return get

        return {name: getter(name) for name in fields}


def _table_tx(tx_id: int, request: dict[str, object], response: dict[str, object]) -> TableTx:
    tx = TableTx(tx_id, dict(request), dict(response))
    tx.calls = []
    return tx


TABLE_RULES = (
    'alert http any any -> any any (http.uri; content:"index.php"; sid:1;)',
    'alert http any any -> any any (http.user_agent; content:"CURL"; nocase; sid:2;)',
    'alert http any any -> any any (http.uri; to_uppercase; content:"INDEX"; sid:3;)',
    'alert http any any -> any any (http.request_header; content:"User-Agent: curl"; sid:4;)',
    'alert http any any -> any any (http.stat_code; content:"200"; sid:5;)',
    'alert http any any -> any any (http.response_body; content:"hello"; sid:6;)',
    'alert http any any -> any any (http.host; content:"example"; '
    'http.response_body; content:"html"; sid:7;)',
    'alert http any any -> any any (http.cookie; content:"session"; sid:8;)',
    'alert http any any -> any any (http.host; content:"example"; sid:9;)',
)


@pytest.mark.parametrize("variant", range(4))
def test_getter_table_gives_the_matches_of_buffer(variant: int) -> None:
    """The same transactions through ``buffer`` (FakeTx) and through a getter table:
    the same matches at every step, bytearray values inspected as bytes, a buffer the
    table lacks is absent (sid 8), the transformed one built from the plain one."""
    req: dict[str, object] = dict(REQ)
    resp: dict[str, object] = dict(RESP)
    if variant & 1:
        req["http.user_agent"] = bytearray(b"xCuRl")
        resp["http.response_body"] = bytearray(b"<html>hello</html>")
        req["http.host"] = "example.com"  # not bytes: never inspected (sid 7 cannot fire)
    if variant & 2:
        req["http.uri"] = b"/other"
    results = []
    for make in (lambda: FakeTx(0, dict(req), dict(resp)), lambda: _table_tx(0, req, resp)):
        e, flow, tx = engine(*TABLE_RULES), FakeFlow(), make()
        got = [sids(e.inspect_tx(pkt(), flow, True, tx, False, False)),
               sids(e.inspect_tx(reply(), flow, False, tx, True, False)),
               sids(e.inspect_tx(reply(), flow, False, tx, True, True))]
        results.append(got)
    assert results[0] == results[1]
    assert (7 in results[1][1] + results[1][2]) == (not variant & 1)
    assert results[1][0] == ([1, 2, 3, 4] if not variant & 2 else [2, 4]) + (
        [] if variant & 1 else [9])


def test_getter_table_is_called_once_per_buffer_and_progress_step() -> None:
    e, flow = engine(*TABLE_RULES), FakeFlow()
    tx = _table_tx(0, REQ, RESP)
    e.inspect_tx(pkt(), flow, True, tx, False, False)
    assert sorted(tx.calls) == sorted(set(tx.calls))  # each getter at most once
    assert "http.uri" in tx.calls and "http.cookie" not in tx.calls
    # the buffers the MPM fetched are reused by the rules' checks, not fetched again
    assert "buffer:http.uri" not in tx.calls and "buffer:http.user_agent" not in tx.calls


def test_a_table_getter_broken_by_hostile_data_spoils_only_its_buffer() -> None:
    e = engine(*TABLE_RULES[:2])
    tx = _table_tx(0, {**REQ, "http.user_agent": OverflowError("length")}, {})
    assert sids(e.inspect_tx(pkt(), FakeFlow(), True, tx, True, False)) == [1]
    assert (e.getter_errors, e.errors) == (1, 0)


def test_a_table_getter_bug_fails_a_strict_run() -> None:
    e = engine(TABLE_RULES[0])
    tx = _table_tx(0, {**REQ, "http.uri": RuntimeError("boom")}, {})
    with pytest.raises(RuntimeError, match="boom"):
        e.inspect_tx(pkt(), FakeFlow(), True, tx, True, False)
