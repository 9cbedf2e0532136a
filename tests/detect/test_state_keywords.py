"""Detection of the stateful keywords: xbits, flowint, flowvar/pktvar (pcre captures),
stream_size, base64_decode/base64_data, tag and asn1, on constructed packets and
transactions through the engine."""

from __future__ import annotations

import base64

import pytest

from ruleengine.detect import asn1
from ruleengine.detect.engine import DetectEngine
from ruleengine.detect.tag import TagTable
from ruleengine.detect.xbits import XbitsTable
from ruleengine.keywords import base64_decode as b64
from ruleengine.rules.model import Asn1Match, Tag, Xbit, XbitCmd
from ruleengine.stream.tcp import TcpSession
from tests.detect.helpers import FakeFlow, FakeTx, pkt, reply, rule


def engine(*texts: str, **kw: object) -> DetectEngine:
    e = DetectEngine([rule(t) for t in texts], **kw)  # type: ignore[arg-type]
    assert e.skipped == [], e.skipped
    return e


def sids(matches: list) -> list[int]:  # type: ignore[type-arg]
    return [m.rule.sid for m in matches]


# --- xbits -----------------------------------------------------------------------------

XB_SET = ('alert tcp any any -> any any (content:"login"; '
          'xbits:set,seen,track ip_src,expire 10; xbits:noalert; sid:1;)')
XB_CHECK = 'alert tcp any any -> any any (content:"cmd"; xbits:isset,seen,track ip_src; sid:2;)'


def test_xbits_track_ip_src_across_flows_and_expire() -> None:
    e = engine(XB_SET, XB_CHECK)
    assert sids(e.inspect_packet(pkt(b"cmd", ts=1.0), FakeFlow(), True)) == []
    m = e.inspect_packet(pkt(b"login", ts=2.0), FakeFlow(), True)
    assert sids(m) == [1] and not m[0].alert  # noalert: acted on, not logged
    # another flow (new FakeFlow), same source host: the bit is there
    assert sids(e.inspect_packet(pkt(b"cmd", ts=5.0, sport=41000), FakeFlow(), True)) == [2]
    # another source host: not set for it
    assert sids(e.inspect_packet(pkt(b"cmd", ts=5.0, src="10.0.0.9"), FakeFlow(), True)) == []
    # set at 2 with expire 10: gone at 12 (set while expire > now)
    assert sids(e.inspect_packet(pkt(b"cmd", ts=11.9), FakeFlow(), True)) == [2]
    assert sids(e.inspect_packet(pkt(b"cmd", ts=12.0), FakeFlow(), True)) == []


def test_xbits_ip_pair_is_unordered_and_ip_dst() -> None:
    e = engine(
        'alert tcp any any -> any any (content:"a"; xbits:set,p,track ip_pair; sid:1;)',
        'alert tcp any any -> any any (content:"b"; xbits:isset,p,track ip_pair; sid:2;)',
        'alert tcp any any -> any any (content:"c"; xbits:set,d,track ip_dst; sid:3;)',
        'alert tcp any any -> any any (content:"e"; xbits:isset,d,track ip_src; sid:4;)',
    )
    e.inspect_packet(pkt(b"a"), FakeFlow(), True)
    assert sids(e.inspect_packet(reply(b"b"), FakeFlow(), False)) == [2]  # reversed pair
    assert sids(e.inspect_packet(pkt(b"b", dst="10.0.0.7"), FakeFlow(), True)) == []
    e.inspect_packet(pkt(b"c"), FakeFlow(), True)  # marks the server host
    assert sids(e.inspect_packet(reply(b"e"), FakeFlow(), False)) == [4]
    assert sids(e.inspect_packet(pkt(b"e"), FakeFlow(), True)) == []


def test_xbits_unset_toggle_isnotset_and_order() -> None:
    # the checker is listed first, but setters run first (SCSigOrderByHostbits)
    e = engine(
        'alert tcp any any -> any any (content:"x"; xbits:isnotset,t,track ip_src; sid:1;)',
        'alert tcp any any -> any any (content:"x"; xbits:toggle,t,track ip_src; sid:2;)',
    )
    assert [cr.rule.sid for cr in e.rules] == [2, 1]
    assert sids(e.inspect_packet(pkt(b"x", ts=1), FakeFlow(), True)) == [2]  # toggled on
    assert sids(e.inspect_packet(pkt(b"x", ts=2), FakeFlow(), True)) == [2, 1]  # now off
    e2 = engine('alert tcp any any -> any any (content:"s"; xbits:set,u,track ip_src; sid:1;)',
                'alert tcp any any -> any any (content:"u"; xbits:unset,u,track ip_src; '
                'sid:2;)',
                'alert tcp any any -> any any (content:"q"; xbits:isset,u,track ip_src; '
                'sid:3;)')
    e2.inspect_packet(pkt(b"s"), FakeFlow(), True)
    e2.inspect_packet(pkt(b"u"), FakeFlow(), True)
    assert sids(e2.inspect_packet(pkt(b"q"), FakeFlow(), True)) == []


def test_xbits_table_is_bounded() -> None:
    table = XbitsTable(max_entries=4)
    set_bit = (Xbit(XbitCmd.SET, "b", "ip_src", 100),)
    for i in range(10):
        table.apply(set_bit, bytes([10, 0, 0, i]), b"\x0a\x00\x00\xff", 1.0)
    assert len(table) == 4 and table.evicted == 6
    check = (Xbit(XbitCmd.ISSET, "b", "ip_src", 100),)
    assert table.checks_pass(check, bytes([10, 0, 0, 9]), b"", 2.0)
    assert not table.checks_pass(check, bytes([10, 0, 0, 0]), b"", 2.0)  # oldest dropped


# --- flowint ---------------------------------------------------------------------------


def test_flowint_counts_per_flow_and_compares() -> None:
    e = engine(
        'alert tcp any any -> any any (content:"dll"; flowint:n,+,1; noalert; sid:1;)',
        'alert tcp any any -> any any (content:"dll"; flowint:n,>=,3; sid:2;)',
        'alert tcp any any -> any any (content:"dll"; flowint:n,notset; sid:3;)',
    )
    flow = FakeFlow()
    got = [sids(e.inspect_packet(pkt(b"dll"), flow, True)) for _ in range(4)]
    # the adder sorts first: the first packet's notset already sees n=1
    assert got == [[1], [1], [1, 2], [1, 2]]
    assert sids(e.inspect_packet(pkt(b"dll"), FakeFlow(), True)) == [1]  # other flow: 1
    assert e.alert_vars(pkt(b""), flow) == {"flowints": {"n": 4}}


def test_flowint_set_sub_variable_target_and_missing() -> None:
    e = engine(
        'alert tcp any any -> any any (content:"set"; flowint:a,=,10; flowint:b,=,4; sid:1;)',
        'alert tcp any any -> any any (content:"sub"; flowint:a,-,b; sid:2;)',
        'alert tcp any any -> any any (content:"chk"; flowint:a,==,6; sid:3;)',
        'alert tcp any any -> any any (content:"chk"; flowint:a,<,c; sid:4;)',  # c unset = 0
        'alert tcp any any -> any any (content:"zzz"; flowint:z,-,1; sid:5;)',
        'alert tcp any any -> any any (content:"zzz"; flowint:z,isset; sid:6;)',
    )
    flow = FakeFlow()
    assert sids(e.inspect_packet(pkt(b"chk"), flow, True)) == []  # a missing: no compare
    e.inspect_packet(pkt(b"set"), flow, True)
    e.inspect_packet(pkt(b"sub"), flow, True)
    assert sids(e.inspect_packet(pkt(b"chk"), flow, True)) == [3]
    # "-" on a missing variable does not create it
    assert sids(e.inspect_packet(pkt(b"zzz"), flow, True)) == [5]


def test_flowint_wraps_at_32_bits_and_caps_variables() -> None:
    e = engine('alert tcp any any -> any any (content:"w"; flowint:w,=,4294967295; '
               'flowint:w,+,2; sid:1;)', flowint_max=1)
    flow = FakeFlow()
    e.inspect_packet(pkt(b"w"), flow, True)
    assert e.alert_vars(pkt(b""), flow) == {"flowints": {"w": 1}}
    e2 = engine('alert tcp any any -> any any (content:"v"; flowint:a,=,1; flowint:b,=,2; '
                'sid:1;)', flowint_max=1)
    e2.inspect_packet(pkt(b"v"), flow2 := FakeFlow(), True)
    assert e2.alert_vars(pkt(b""), flow2) == {"flowints": {"a": 1}}


# --- flowvar / pktvar ------------------------------------------------------------------


def test_pcre_captures_set_flowvars_and_pktvars() -> None:
    e = engine(
        r'alert tcp any any -> any any (content:"USER "; '
        r'pcre:"/USER (?P<flow_user>\w+) (?P<pkt_host>\S+)/"; sid:1;)',
        'alert tcp any any -> any any (content:"PASS"; flowvar:user,"adm"; sid:2;)',
        'alert tcp any any -> any any (content:"USER"; pktvar:host,"evil"; sid:3;)',
    )
    flow = FakeFlow()
    p = pkt(b"USER admin evil.example")
    assert sids(e.inspect_packet(p, flow, True)) == [1, 3]  # pktvar seen by a later rule
    assert e.alert_vars(p, flow) == {"flowvars": [{"user": "admin"}],
                                     "pktvars": [{"host": "evil.example"}]}
    assert e.alert_vars(pkt(b"other"), flow) == {"flowvars": [{"user": "admin"}]}
    assert sids(e.inspect_packet(pkt(b"PASS x"), flow, True)) == [2]
    assert sids(e.inspect_packet(pkt(b"PASS x"), FakeFlow(), True)) == []  # per flow


def test_captures_only_from_a_full_match() -> None:
    e = engine(r'alert tcp any any -> any any (pcre:"/id=(?P<flow_id>\d+)/"; '
               r'content:"OK"; distance:0; sid:1;)')
    flow = FakeFlow()
    assert sids(e.inspect_packet(pkt(b"id=42 FAIL"), flow, True)) == []
    assert e.alert_vars(pkt(b""), flow) is None
    assert sids(e.inspect_packet(pkt(b"id=7 OK"), flow, True)) == [1]
    assert e.alert_vars(pkt(b""), flow) == {"flowvars": [{"id": "7"}]}


def test_capture_names_after_the_flags_store_groups_in_order() -> None:
    e = engine(r'alert tcp any any -> any any (pcre:"/^(\w+)\/(\d+\.\d+)/i, flow:key,pkt:ver";'
               r' sid:1;)')
    flow = FakeFlow()
    p = pkt(b"Mozilla/5.0 (X11)")
    assert sids(e.inspect_packet(p, flow, True)) == [1]
    assert e.alert_vars(p, flow) == {"flowvars": [{"key": "Mozilla"}],
                                     "pktvars": [{"ver": "5.0"}]}


@pytest.mark.parametrize(("pcre", "message"), [
    ('"/(a)/, flow:x,flow:y"', "2 capture variables but has 1"),
    ('"/(a)/, alert:x"', "must be flow:<name> or pkt:<name>"),
])
def test_bad_capture_names_are_rule_errors(pcre: str, message: str) -> None:
    from ruleengine.rules.loader import load_rule_text

    result = load_rule_text(f"alert tcp any any -> any any (pcre:{pcre}; sid:1;)")
    assert not result.rules and message in str(result.errors[0])


def test_traffic_flowbits_are_logged_as_traffic() -> None:
    e = engine('alert tcp any any -> any any (content:"x"; flowbits:set,traffic/id/mozilla; '
               'flowbits:set,traffic/label/browser; flowbits:set,plain; sid:1;)')
    flow = FakeFlow()
    e.inspect_packet(pkt(b"x"), flow, True)
    assert e.alert_vars(pkt(b""), flow) == {
        "flowbits": ["plain"], "traffic": {"id": ["mozilla"], "label": ["browser"]}}


# --- stream_size -----------------------------------------------------------------------


def _session(client_bytes: int, server_bytes: int, fin: bool = False) -> TcpSession:
    ssn = TcpSession()
    for half, n in ((ssn.client, client_bytes), (ssn.server, server_bytes)):
        half.set_base(1000)
        half.ctg_end = n
        if fin:
            half.fin_off = n
    return ssn


@pytest.mark.parametrize(("opt", "client", "server", "hit"), [
    ("server,<,5", 0, 3, True),   # 1 (SYN) + 3
    ("server,<,5", 0, 4, False),  # 1 + 4 = 5
    ("client,=,39", 38, 0, True),
    ("client,>,600", 600, 0, True),
    ("both,>=,10", 9, 20, True),
    ("both,>=,10", 8, 20, False),
    ("either,<=,2", 1, 500, True),
    ("either,!=,1", 0, 0, False),
])
def test_stream_size(opt: str, client: int, server: int, hit: bool) -> None:
    e = engine(f"alert tcp any any -> any any (stream_size:{opt}; sid:1;)")
    flow = FakeFlow()
    flow.tcp = _session(client, server)  # type: ignore[attr-defined]
    assert bool(e.inspect_packet(pkt(b""), flow, True)) is hit


def test_stream_size_counts_fin_and_needs_tcp() -> None:
    e = engine("alert ip any any -> any any (stream_size:client,=,12; sid:1;)")
    flow = FakeFlow()
    flow.tcp = _session(10, 0, fin=True)  # type: ignore[attr-defined]
    assert sids(e.inspect_packet(pkt(b""), flow, True)) == [1]  # SYN + 10 + FIN
    assert sids(e.inspect_packet(pkt(b"", proto=17), flow, True)) == []
    assert sids(e.inspect_packet(pkt(b""), FakeFlow(), True)) == []  # no session


# --- base64 ----------------------------------------------------------------------------


def test_base64_decoder_like_suricata() -> None:
    assert b64.decode(b"aGVsbG8=") == b"hello"
    assert b64.decode(b"QQ==QQ==") == b"AA"  # padding does not end the data
    assert b64.decode(b"aGVsbG8*junk") == b"hello"  # rfc4648: stops at '*'
    # a partial block before the bad byte still yields a byte (Suricata's padding rule)
    assert b64.decode(b"aGVsb*") == b"hell"
    assert b64.decode(b"Q*") == b"@"  # one symbol: one byte
    assert b64.decode(b"aGVs\r\nbG8=", "rfc2045") == b"hello"
    assert b64.decode(b"aGVs\nbG8=", "strict") == b""
    assert b64.decode(b"****") == b""


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def test_base64_decode_relative_and_data_on_http_body() -> None:
    e = engine('alert http any any -> any any (http.request_body; content:"data="; '
               'base64_decode:bytes 40, offset 0, relative; base64_data; '
               'content:"|28 2a 29|Microsoft"; sid:1;)')
    for body, hit in ((b"x=1&data=" + _b64(b"(*)Microsoft Windows"), True),
                      (b"data=" + _b64(b"(*)Apple"), False),
                      (_b64(b"(*)Microsoft") + b"&data=zz", False)):
        tx = FakeTx(0, request={"http.request_body": body})
        assert bool(e.inspect_tx(pkt(b""), FakeFlow(), True, tx, True, False)) is hit, body


def test_base64_bytes_limit_and_absolute_offset() -> None:
    enc = _b64(b"AAAAAAAAAAAAsecret")  # "secret" starts at decoded byte 12 = input 16
    for opt, hit in (("bytes 16", False), ("bytes 24", True), ("offset 16", True),
                     ("offset 200", False)):
        e = engine(f'alert tcp any any -> any any (content:"Q"; base64_decode:{opt}; '
                   f'base64_data; content:"secret"; sid:1;)')
        assert bool(e.inspect_packet(pkt(enc + b"Q"), FakeFlow(), True)) is hit, opt


def test_base64_data_list_is_terminal_with_relative_items() -> None:
    e = engine('alert tcp any any -> any any (content:"|0d 0a 0d 0a|"; '
               'base64_decode:offset 0,relative; base64_data; content:"|78 9f 3e 22|"; '
               r'startswith; content:"IPM"; content:"|5c|"; pcre:"/^\x00?\\/R"; sid:1;)')
    good = b"hdr\r\n\r\n" + _b64(b"\x78\x9f\x3e\x22 IPM.Task \\\\x")
    bad = b"hdr\r\n\r\n" + _b64(b"\x00\x78\x9f\x3e\x22 IPM.Task \\\\x")
    assert sids(e.inspect_packet(pkt(good), FakeFlow(), True)) == [1]
    assert sids(e.inspect_packet(pkt(bad), FakeFlow(), True)) == []


# --- tag -------------------------------------------------------------------------------


def test_session_tag_counts_the_trigger_packet() -> None:
    e = engine('alert tcp any any -> any any (content:"evil"; tag:session,3,packets; sid:1;)')
    flow = FakeFlow()
    other = FakeFlow()
    seen = []
    for i, data in enumerate([b"hello", b"evil", b"a", b"b", b"c", b"d"]):
        p = pkt(data, ts=float(i))
        e.inspect_packet(p, flow, True)
        seen.append(e.tag_packet(p, flow))
        e.inspect_packet(pkt(b"x"), other, True)
        assert not e.tag_packet(pkt(b"x"), other)  # other flows are not tagged
    # the trigger counts as packet 1 (not tagged itself), then 2 and 3 are tagged
    assert seen == [False, False, True, True, False, False]
    assert e.tagged_packets == 2


def test_host_tag_by_seconds_and_bytes() -> None:
    e = engine('alert tcp any any -> any any (content:"evil"; tag:host,10,seconds,src; '
               'sid:1;)')
    e.inspect_packet(p0 := pkt(b"evil", ts=100.0), FakeFlow(), True)
    assert not e.tag_packet(p0, None)
    # any flow of the source host, either direction
    assert e.tag_packet(reply(b"x", ts=105.0), None)
    assert e.tag_packet(pkt(b"x", ts=110.0, dport=22), None)
    assert not e.tag_packet(pkt(b"x", ts=110.0, src="10.9.9.9", dst="10.9.9.8"), None)
    assert not e.tag_packet(pkt(b"x", ts=111.0), None)  # expired
    t = TagTable()
    t.add(1, 2, [Tag("host", 150, "bytes")], pkt(b"x"), None)
    lengths = [t.handle_packet(pkt(b"y" * 10), None) for _ in range(4)]  # 70 bytes each
    assert lengths == [False, True, False, False]


def test_tag_needs_a_surviving_match_and_rematch_resets() -> None:
    # detection_filter suppresses the first match (result 0): no tag from it
    e = engine('alert tcp any any -> any any (content:"evil"; tag:session,2,packets; '
               'detection_filter:track by_src, count 1, seconds 60; sid:1;)')
    flow = FakeFlow()
    assert sids(e.inspect_packet(pkt(b"evil", ts=1), flow, True)) == []
    assert not e.tag_packet(pkt(b"evil", ts=1), flow)
    assert not e.tag_packet(pkt(b"x", ts=2), flow)
    assert sids(e.inspect_packet(pkt(b"evil", ts=3), flow, True)) == [1]
    assert not e.tag_packet(pkt(b"evil", ts=3), flow)  # the trigger
    assert e.tag_packet(pkt(b"x", ts=4), flow)
    assert not e.tag_packet(pkt(b"x", ts=5), flow)  # 3 > 2 packets: expired
    # a limit threshold silences the alert but the match still sets/resets the tag
    # (PacketAlertFinalize: result > 0), and the re-match resets the counters
    e2 = engine('alert tcp any any -> any any (content:"evil"; tag:session,2,packets; '
                'threshold:type limit, track by_src, count 1, seconds 60; sid:1;)')
    flow2 = FakeFlow()
    e2.inspect_packet(pkt(b"evil", ts=1), flow2, True)
    assert not e2.tag_packet(pkt(b"evil", ts=1), flow2)
    assert e2.tag_packet(pkt(b"x", ts=2), flow2)
    m = e2.inspect_packet(pkt(b"evil", ts=3), flow2, True)
    assert sids(m) == [1] and not m[0].alert
    assert e2.tag_packet(pkt(b"evil", ts=3), flow2)  # reset: packet 1 of 2, tagged
    assert e2.tag_packet(pkt(b"x", ts=4), flow2)
    assert not e2.tag_packet(pkt(b"x", ts=5), flow2)


def test_tag_tables_are_bounded() -> None:
    t = TagTable(max_hosts=2, max_tags=1)
    for i in range(5):
        t.add(1, i, [Tag("host", 5)], pkt(b"", dst=f"10.1.0.{i}"), None)
    assert len(t.hosts) == 2 and t.hosts_evicted == 3
    session: list = []  # type: ignore[type-arg]
    t.add(1, 1, [Tag("session", 5)], pkt(b""), session)
    t.add(1, 2, [Tag("session", 5)], pkt(b""), session)
    assert len(session) == 1


# --- asn1 ------------------------------------------------------------------------------


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + content


def test_asn1_checks() -> None:
    bitstring_bad = _tlv(0x30, _tlv(0x03, b"\x20\x00"))  # 32 unused bits of 8
    bitstring_ok = _tlv(0x30, _tlv(0x03, b"\x07\x80"))
    real_big = _tlv(0x09, b"\x01" + b"1" * 300)  # ASCII (NR) real longer than 256
    assert asn1.asn1_match(Asn1Match(bitstring_overflow=True), bitstring_bad, 0)
    assert not asn1.asn1_match(Asn1Match(bitstring_overflow=True), bitstring_ok, 0)
    assert asn1.asn1_match(Asn1Match(double_overflow=True), real_big, 0)
    assert not asn1.asn1_match(Asn1Match(double_overflow=True), _tlv(0x09, b"\x01" + b"1" * 9), 0)
    assert asn1.asn1_match(Asn1Match(oversize_length=100), _tlv(0x04, b"a" * 101), 0)
    assert not asn1.asn1_match(Asn1Match(oversize_length=101), _tlv(0x04, b"a" * 101), 0)
    # offsets: absolute, and relative to the previous match end
    data = b"JUNK" + bitstring_bad
    assert not asn1.asn1_match(Asn1Match(bitstring_overflow=True), data, 0)
    assert asn1.asn1_match(Asn1Match(bitstring_overflow=True, absolute_offset=4), data, 0)
    assert asn1.asn1_match(Asn1Match(bitstring_overflow=True, relative_offset=2), data, 2)
    assert not asn1.asn1_match(Asn1Match(bitstring_overflow=True, relative_offset=-9), data, 2)


def test_asn1_hostile_input_is_bounded() -> None:
    deep = b""
    for _ in range(5000):
        deep = b"\x30\x80" + deep  # indefinite lengths without end: never completes
    assert not asn1.asn1_match(Asn1Match(oversize_length=0), deep, 0)
    many = b"\x04\x00" * 100  # more top-level objects than max-frames: a decode error
    assert not asn1.asn1_match(Asn1Match(oversize_length=0), many, 0)
    assert asn1.asn1_match(Asn1Match(oversize_length=0), b"\x04\x01a" * 3, 0)


def test_asn1_in_a_rule_runs_after_the_payload_with_its_offset() -> None:
    e = engine('alert tcp any any -> any any (content:"|FF|SMB"; asn1:bitstring_overflow, '
               'relative_offset 2; sid:1;)')
    bad = _tlv(0x03, b"\x20\x00")
    assert sids(e.inspect_packet(pkt(b"\xffSMB..." + bad), FakeFlow(), True)) == []
    assert sids(e.inspect_packet(pkt(b"\xffSMB.." + bad), FakeFlow(), True)) == [1]
