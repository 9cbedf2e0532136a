"""Parsing of transforms, xbits, flowint, flowvar/pktvar, stream_size, base64_decode/
base64_data, tag and asn1: what each builds, and clear errors for bad values."""

from __future__ import annotations

import pytest

from ruleengine.keywords import REGISTRY
from ruleengine.keywords.registry import Stage
from ruleengine.rules.errors import RuleError
from ruleengine.rules.loader import load_rule_text, parse_rule
from ruleengine.rules.model import (
    BASE64_DATA,
    Asn1Match,
    Base64Decode,
    ContentMatch,
    Flowint,
    StreamSize,
    Tag,
    VarCheck,
    Xbit,
    XbitCmd,
)


def r(options: str, proto: str = "tcp") -> object:
    return parse_rule(f"alert {proto} any any -> any any ({options} sid:1;)")


def err(options: str, proto: str = "tcp") -> str:
    with pytest.raises(RuleError) as exc:
        parse_rule(f"alert {proto} any any -> any any ({options} sid:1;)")
    return str(exc.value)


@pytest.mark.parametrize("name", [
    "dotprefix", "to_lowercase", "to_uppercase", "strip_whitespace", "compress_whitespace",
    "to_md5", "to_sha1", "to_sha256", "url_decode", "xor", "pcrexform", "header_lowercase",
    "strip_pseudo_headers", "from_base64", "domain", "tld", "xbits", "flowint", "flowvar",
    "pktvar", "stream_size", "base64_decode", "base64_data", "tag", "asn1",
])
def test_keywords_are_supported(name: str) -> None:
    spec = REGISTRY.get(name)
    assert spec is not None and spec.stage is not Stage.UNSUPPORTED


# --- transforms ------------------------------------------------------------------------


def test_transform_chain_in_rule_order() -> None:
    rule = parse_rule('alert dns any any -> any any (dns.query; dotprefix; to_lowercase; '
                      'content:".example.com"; endswith; sid:1;)')
    (bm,) = rule.buffers
    assert bm.buffer == "dns.query"
    assert [t.name for t in bm.transforms] == ["dotprefix", "to_lowercase"]
    assert rule.unsupported == []


def test_transformed_and_plain_buffer_are_separate_lists() -> None:
    rule = parse_rule('alert dns any any -> any any (dns.query; dotprefix; content:".a.com"; '
                      'dns.query; content:"b"; dns.query; dotprefix; content:".c"; sid:1;)')
    lists = [([t.name for t in b.transforms], [i.pattern for i in b.items
                                                if isinstance(i, ContentMatch)])
             for b in rule.buffers]
    assert lists == [(["dotprefix"], [b".a.com", b".c"]), ([], [b"b"])]


def test_xor_and_pcrexform_and_from_base64_args() -> None:
    rule = parse_rule('alert http any any -> any any (http.uri; xor:"0d0ac8ff"; '
                      'content:"x"; http.header; pcrexform:"a(b+)c"; content:"b"; '
                      'file.data; from_base64:bytes 10, offset 2, mode rfc2045; '
                      'content:"z"; sid:1;)')
    ts = {b.buffer: b.transforms[0] for b in rule.buffers}
    assert ts["http.uri"].key == bytes.fromhex("0d0ac8ff")
    assert ts["http.header"].arg == "a(b+)c"
    fb = ts["file.data"]
    assert (fb.nbytes, fb.offset, fb.mode) == (10, 2, "rfc2045")


@pytest.mark.parametrize(("options", "needle"), [
    ('dotprefix; content:"a";', "needs a sticky buffer"),
    ('dns.query; content:"a"; dotprefix; content:".b";', "must directly follow"),
    ('dns.query; xor:"0d0"; content:"a";', "even number of hex digits"),
    ('dns.query; xor:"zz"; content:"a";', "even number of hex digits"),
    ('dns.query; pcrexform:"abc"; content:"a";', "capture group"),
    ('dns.query; pcrexform:"a(b"; content:"a";', "does not compile"),
    ('dns.query; from_base64:mode nope; content:"a";', "unknown mode"),
    ('dns.query; from_base64:offset 70000; content:"a";', "outside the allowed range"),
    ('dns.query; from_base64:color red; content:"a";', "unknown option"),
    ('dns.query; to_lowercase; content:"ABC";', "incompatible with the to_lowercase"),
    ('dns.query; strip_whitespace; content:"a b";', "incompatible with the strip_whitespace"),
    ('dns.query; dotprefix;', "no match was added"),
])
def test_transform_errors(options: str, needle: str) -> None:
    assert needle in err(options, "dns")


def test_negated_content_is_not_validated_against_transforms() -> None:
    r('dns.query; to_lowercase; content:!"ABC";', "dns")  # Suricata skips negated ones


# --- xbits -----------------------------------------------------------------------------


def test_xbits_parse() -> None:
    rule = r("xbits:set, ET.a, track ip_pair, expire 15; xbits:isset,b,track ip_dst; "
             "xbits:noalert;")
    assert rule.xbits == [Xbit(XbitCmd.SET, "ET.a", "ip_pair", 15),
                          Xbit(XbitCmd.ISSET, "b", "ip_dst", 30)]
    assert rule.noalert


@pytest.mark.parametrize(("value", "needle"), [
    ("bogus,a,track ip_src", "unknown command"),
    ("set", "needs a bit name"),
    ("set,a", "needs 'track ip_src'"),
    ("set,a,track ip_nope", "track must be ip_src, ip_dst or ip_pair"),
    ("set,a,track ip_src,expire 0", "outside the allowed range"),
    ("set,a,track ip_src,colour blue", "unknown option"),
    ("noalert,a", "takes no other argument"),
])
def test_xbits_errors(value: str, needle: str) -> None:
    assert needle in err(f"xbits:{value};")


# --- flowint / flowvar / pktvar --------------------------------------------------------


def test_flowint_parse() -> None:
    rule = r("flowint: ET.x, +, 1; flowint:a,==,b; flowint:c,isset; flowint:d,isnotset; "
             "flowint:e,>=,4294967295;")
    assert rule.flowints == [Flowint("ET.x", "+", 1), Flowint("a", "==", "b"),
                             Flowint("c", "isset"), Flowint("d", "notset"),
                             Flowint("e", ">=", 4294967295)]
    assert [f.is_check for f in rule.flowints] == [False, True, True, True, True]


@pytest.mark.parametrize(("value", "needle"), [
    ("a,~,1", "invalid value"),
    ("a,+", "needs a value"),
    ("a,isset,3", "takes no value"),
    ("a,=,4294967296", "outside the allowed range"),
])
def test_flowint_errors(value: str, needle: str) -> None:
    assert needle in err(f"flowint:{value};")


def test_flowvar_pktvar_parse() -> None:
    rule = r('flowvar:user,"ad|6d|in"; pktvar:k, "x";')
    assert rule.var_checks == [VarCheck("flow", "user", b"admin"), VarCheck("pkt", "k", b"x")]
    assert "expected <name>" in err("flowvar:user;")
    assert "expected <name>" in err("flowvar:user,admin;")


# --- stream_size -----------------------------------------------------------------------


def test_stream_size_parse() -> None:
    rule = r("stream_size: client,=,39; stream_size:either,!=,0; stream_size:both,>=,7;")
    assert rule.stream_size == [StreamSize("client", "=", 39), StreamSize("either", "!=", 0),
                                StreamSize("both", ">=", 7)]
    assert "unknown side" in err("stream_size:middle,<,5;")
    assert "unknown operator" in err("stream_size:server,=>,5;")
    assert "not an integer" in err("stream_size:server,<,five;")
    assert "invalid value" in err("stream_size:server,<;")


# --- base64 ----------------------------------------------------------------------------


def test_base64_decode_and_data_parse() -> None:
    rule = parse_rule('alert http any any -> any any (http.request_body; content:"<b64>"; '
                      'base64_decode:bytes 300, offset 2, relative; base64_data; '
                      'content:"<!DOCTYPE"; content:"SYSTEM"; distance:0; sid:1;)')
    body = rule.buffer("http.request_body")
    assert body is not None
    (dec,) = [i for i in body.items if isinstance(i, Base64Decode)]
    assert (dec.bytes, dec.offset, dec.relative) == (300, 2, True)
    assert rule.base64_data is not None and rule.base64_data.buffer == BASE64_DATA
    assert [i.pattern for i in rule.base64_data.items if isinstance(i, ContentMatch)] == [
        b"<!DOCTYPE", b"SYSTEM"]
    assert all(b.buffer != BASE64_DATA for b in rule.buffers)  # never a prefilter list


def test_base64_errors() -> None:
    assert "without a preceding base64_decode" in err('base64_data; content:"a";')
    assert "invalid value" in err('content:"a"; base64_decode:relative, bytes 3; '
                                  'base64_data; content:"x";')
    assert "no match was added" in err('content:"a"; base64_decode; base64_data;')
    assert "needs a sticky buffer" in err('content:"a"; base64_decode; base64_data; '
                                          'to_lowercase; content:"x";')


# --- tag -------------------------------------------------------------------------------


def test_tag_parse() -> None:
    rule = r("tag:session,5,packets; tag:host,30,seconds,src; tag:session;")
    assert rule.tags == [Tag("session", 5, "packets"), Tag("host", 30, "seconds", "src"),
                         Tag("session", 256, "packets")]
    assert "unknown type" in err("tag:flow;")
    assert "needs its metric" in err("tag:session,5;")
    assert "unknown metric" in err("tag:session,5,frames;")
    assert "unknown direction" in err("tag:host,5,packets,up;")


def test_tag_direction_on_session_warns() -> None:
    rs = load_rule_text("alert tcp any any -> any any (tag:session,5,packets,src; sid:1;)")
    assert rs.loaded == 1
    assert any(d.code == "tag-direction-ignored" for d in rs.warnings)


# --- asn1 ------------------------------------------------------------------------------


def test_asn1_parse_goes_to_the_payload_list() -> None:
    rule = parse_rule("alert http any any -> any any (http.uri; content:\"a\"; "
                      "asn1:double_overflow, bitstring_overflow, relative_offset -3, "
                      "oversize_length 2048; sid:1;)")
    payload = rule.buffer("payload")
    assert payload is not None
    (m,) = payload.items
    assert isinstance(m, Asn1Match)
    assert (m.bitstring_overflow, m.double_overflow, m.relative_offset, m.oversize_length,
            m.absolute_offset) == (True, True, -3, 2048, None)
    assert "unknown option" in err("asn1:overflow_everything;")
    assert "exclude each other" in err("asn1:absolute_offset 1, relative_offset 2, "
                                       "double_overflow;")
    assert "outside the allowed range" in err("asn1:absolute_offset 70000, double_overflow;")
