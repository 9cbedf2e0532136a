"""flow, flowbits, integer keywords, flags, byte_*, threshold, meta keywords, bypass."""

from __future__ import annotations

import pytest

from ruleengine.keywords import REGISTRY
from ruleengine.keywords.registry import ArgKind, KeywordSpec, Registry, check_value
from ruleengine.rules.errors import KeywordError
from ruleengine.rules.model import (
    PAYLOAD,
    BufferSize,
    ByteExtract,
    ByteJump,
    ByteMath,
    ByteTest,
    Endian,
    FlowbitCmd,
    IntCondition,
    IntOp,
    IsDataAt,
    TcpFlags,
)
from tests.rules.helpers import codes, load, one_error, one_rule

H = "alert tcp any any -> any any ("


def rule_with(text: str):  # type: ignore[no-untyped-def]
    return one_rule(H + text + " sid:1;)")


def test_flow() -> None:
    r = rule_with("flow:established,from_client,no_stream;")
    assert r.flow is not None and r.flow.established and r.flow.to_server and r.flow.no_stream
    assert one_error(H + "flow:to_server,to_client; sid:1;)").code == "invalid-keyword-value"
    d = one_error(H + "flow:established,sideways; sid:1;)")
    assert d.message == "flow: unknown option 'sideways'"


def test_flowbits() -> None:
    r = rule_with(
        "flow:to_server; flowbits:set,a; flowbits:isset,b|c; flowbits:isnotset,d&e; "
        "flowbits:noalert;"
    )
    cmds = [(f.cmd, f.names, f.any_of) for f in r.flowbits]
    assert cmds == [
        (FlowbitCmd.SET, ("a",), True),
        (FlowbitCmd.ISSET, ("b", "c"), True),
        (FlowbitCmd.ISNOTSET, ("d", "e"), False),
        (FlowbitCmd.NOALERT, (), True),
    ]
    assert r.noalert
    assert one_error(H + "flowbits:frob,a; sid:1;)").code == "invalid-keyword-value"
    assert one_error(H + "flowbits:set; sid:1;)").code == "missing-value"


def test_flowbit_names_refuse_only_blanks() -> None:
    # as detect-flowbits.c: suricata-verify's eve-metadata-03 sets "traffic/id/mozilla"
    r = rule_with("flow:to_server; flowbits:set,traffic/id/mozilla; flowbits:isset,a:b|c@d;")
    assert [f.names for f in r.flowbits] == [("traffic/id/mozilla",), ("a:b", "c@d")]
    assert one_error(H + "flowbits:set,a b; sid:1;)").code == "invalid-keyword-value"


@pytest.mark.parametrize(
    ("value", "cond"),
    [
        ("10", IntCondition(IntOp.EQ, 10)),
        ("<10", IntCondition(IntOp.LT, 10)),
        (">=10", IntCondition(IntOp.GE, 10)),
        ("!10", IntCondition(IntOp.NE, 10)),
        ("10<>20", IntCondition(IntOp.RANGE, 10, 20)),
        ("10-20", IntCondition(IntOp.RANGE, 10, 20)),
    ],
)
def test_dsize(value: str, cond: IntCondition) -> None:
    r = rule_with(f"flow:to_server; dsize:{value};")
    (pc,) = r.packet_conditions
    assert pc.field == "dsize" and pc.cond == cond


def test_dsize_errors() -> None:
    assert one_error(H + "dsize:20<>10; sid:1;)").code == "invalid-range"
    assert one_error(H + "dsize:abc; sid:1;)").code == "invalid-integer"
    assert one_error(H + "dsize:70000; sid:1;)").code == "out-of-range"


def test_bsize_and_urilen() -> None:
    r = one_rule(
        'alert http any any -> any any (flow:to_server; http.uri; content:"/a"; bsize:>3; '
        "urilen:5<>10,raw; sid:1;)"
    )
    (_, bs) = r.buffer("http.uri").items  # type: ignore[union-attr]
    assert isinstance(bs, BufferSize) and bs.cond == IntCondition(IntOp.GT, 3)
    (ul,) = r.buffer("http.uri.raw").items  # type: ignore[union-attr]
    assert isinstance(ul, BufferSize) and ul.cond == IntCondition(IntOp.RANGE, 5, 10)


def test_packet_keywords_and_flags() -> None:
    r = rule_with("ttl:<5; itype:8; icode:0; window:>1000; ip_proto:tcp; flags:SA+,12;")
    fields = {pc.field: pc.cond for pc in r.packet_conditions}
    assert fields["ttl"] == IntCondition(IntOp.LT, 5)
    assert fields["ip_proto"] == IntCondition(IntOp.EQ, 6)
    assert fields["tcp.flags"] == TcpFlags(0x12, "+", 0xFF & ~0xC0)
    assert one_error(H + "flags:SX; sid:1;)").code == "invalid-keyword-value"


def test_tcp_dot_names_are_the_packet_keywords() -> None:
    r = rule_with("tcp.ack:2548486954; tcp.seq:>5; tcp.window:1024;")
    fields = {pc.field: pc.cond for pc in r.packet_conditions}
    assert fields["ack"] == IntCondition(IntOp.EQ, 2548486954)
    assert fields["seq"] == IntCondition(IntOp.GT, 5)
    assert fields["window"] == IntCondition(IntOp.EQ, 1024)


def test_isdataat() -> None:
    r = rule_with('flow:to_server; content:"abcd"; isdataat:!10,relative;')
    item = r.buffer(PAYLOAD).items[1]  # type: ignore[union-attr]
    assert item == IsDataAt(10, True, True, False, item.span)


def test_byte_keywords() -> None:
    r = rule_with(
        'flow:to_server; content:"abcd"; byte_test:4,!>,1000,0,relative,little,string,hex; '
        "byte_jump:2,1,relative,multiplier 2,post_offset -3,align; "
        "byte_extract:1,0,len,relative; "
        "byte_math:bytes 2,offset 0,oper +,rvalue len,result total,relative;"
    )
    items = r.buffer(PAYLOAD).items  # type: ignore[union-attr]
    bt, bj, be, bm = items[1:]
    assert isinstance(bt, ByteTest)
    assert (bt.nbytes, bt.operator, bt.negated, bt.value, bt.endian, bt.string_base) == (
        4,
        ">",
        True,
        1000,
        Endian.LITTLE,
        16,
    )
    assert isinstance(bj, ByteJump) and (bj.multiplier, bj.post_offset, bj.align) == (2, -3, True)
    assert isinstance(be, ByteExtract) and be.name == "len" and be.relative
    assert isinstance(bm, ByteMath) and (bm.oper, bm.rvalue, bm.result) == ("+", "len", "total")


def test_byte_keyword_errors() -> None:
    assert one_error(H + "byte_test:4,~,1,0; sid:1;)").code == "invalid-keyword-value"
    assert one_error(H + "byte_test:9,=,1,0; sid:1;)").code == "out-of-range"
    assert one_error(H + "byte_jump:4; sid:1;)").code == "invalid-keyword-value"
    assert one_error(H + "byte_math:bytes 2,offset 0; sid:1;)").code == "invalid-keyword-value"


def test_threshold_and_detection_filter() -> None:
    r = rule_with(
        "flow:to_server; threshold:type both, track by_src, count 5, seconds 60; "
        "detection_filter:track by_dst, count 3, seconds 10;"
    )
    assert r.threshold is not None and (
        r.threshold.kind,
        r.threshold.track,
        r.threshold.count,
        r.threshold.seconds,
    ) == ("both", "by_src", 5, 60)
    assert r.detection_filter is not None and r.detection_filter.track == "by_dst"
    d = one_error(H + "threshold:type often, track by_src, count 1, seconds 1; sid:1;)")
    assert d.code == "invalid-keyword-value" and d.message == "threshold: unknown type 'often'"
    assert (
        one_error(H + "threshold:type limit, track by_src; sid:1;)").code == "invalid-keyword-value"
    )


def test_meta_keywords() -> None:
    r = one_rule(
        H + 'msg:"hello \\"world\\""; flow:to_server; sid:42; rev:3; gid:2; '
        "classtype:web-application-attack; reference:cve,2024-1234; "
        "metadata:created_at 2024_01_01, tag x; target:dest_ip; noalert;)"
    )
    assert (r.msg, r.sid, r.rev, r.gid, r.priority) == ('hello "world"', 42, 3, 2, 1)
    assert r.references == [("cve", "2024-1234")]
    assert r.metadata == ["created_at 2024_01_01", "tag x"]
    assert r.target == "dest_ip" and r.noalert
    assert r.options[0] == ("msg", '"hello \\"world\\""')


def test_meta_errors_and_warnings() -> None:
    assert one_error(H + "msg:hello; sid:1;)").code == "missing-quotes"
    assert one_error(H + 'sid:"1"; )').code == "unexpected-quotes"
    assert one_error(H + "sid:1; sid:2;)").code == "duplicate-keyword"
    assert one_error(H + "target:both; sid:1;)").code == "invalid-keyword-value"
    assert one_error(H + "reference:cve; sid:1;)").code == "invalid-keyword-value"
    rs = load(H + "flow:to_server; reference:nosuch,1; sid:1;)")
    assert codes(rs) == ["unknown-reference"]


def test_app_layer_protocol() -> None:
    r = rule_with("flow:to_server; app-layer-protocol:http;")
    assert r.app_proto == "http" and not r.app_proto_negated
    r = rule_with("flow:to_server; app-layer-protocol:!tls;")
    assert r.app_proto == "tls" and r.app_proto_negated
    assert one_error(H + "app-layer-protocol:nosuch; sid:1;)").code == "unknown-protocol"


def test_bypass() -> None:
    r = one_rule(
        'alert http any any -> any any (flow:to_server; http.host; content:"cdn.example"; '
        "bypass; sid:1;)"
    )
    assert r.bypass


def test_unknown_keyword_did_you_mean() -> None:
    r = H + 'http_urii; content:"x"; sid:1;)'
    d = one_error(r)
    assert d.code == "unknown-keyword"
    assert d.message == "unknown rule keyword 'http_urii'"
    assert (d.column, d.end_column) == (r.index("http_urii") + 1, r.index("http_urii") + 10)
    assert d.hint is not None and "'http_uri'" in d.hint


def test_registry_rejects_duplicates_and_checks_generically() -> None:
    reg = Registry()
    spec = KeywordSpec("x", lambda b, v: None, arg=ArgKind.NONE)
    reg.register(spec)
    with pytest.raises(ValueError):
        reg.register(KeywordSpec("y", lambda b, v: None, aliases=("x",)))
    with pytest.raises(KeywordError):
        check_value(spec, "value")
    check_value(spec, None)


def test_every_registered_keyword_has_a_stage_and_setup() -> None:
    for name in REGISTRY.names():
        spec = REGISTRY.get(name)
        assert spec is not None and callable(spec.setup)


def test_msg_escapes_like_suricata() -> None:
    r = one_rule(H + 'msg:"msg escape tests \\w\\x\\y\\\'\\"\\\\\\;\\:"; flow:to_server; sid:1;)')
    assert r.msg == "msg escape tests wxy'\"\\;:"
