"""Header forms: actions, scopes, protocols, addresses, ports, directions; syntax errors."""

from __future__ import annotations

import ipaddress

import pytest
from lark import Lark

from ruleengine.rules.errors import RuleError
from ruleengine.rules.loader import parse_rule
from ruleengine.rules.model import Action, Direction
from ruleengine.rules.syntax import option_regex, parser
from tests.rules.helpers import one_error, one_rule

OPTS = '(msg:"x"; sid:1;)'


def net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text)


def test_grammar_ships_as_package_data() -> None:
    lark = Lark.open_from_package("ruleengine.grammar", "rules.lark", parser="lalr", start="rule")
    tree = lark.parse('alert tcp any any -> any any (msg:"a\\;b"; content:"x"; sid:1;)')
    options = [str(t) for t in tree.scan_values(lambda v: getattr(v, "type", "") == "OPTION")]
    assert options == ['msg:"a\\;b";', 'content:"x";', "sid:1;"]


def test_full_rule_start_parses_with_shared_parser() -> None:
    tree = parser().parse("drop:flow http1 any any <> any any (sid:1;)", start="rule")
    assert tree.data == "rule"


@pytest.mark.parametrize(
    ("action", "expected", "scope"),
    [
        ("alert", Action.ALERT, None),
        ("drop", Action.DROP, None),
        ("pass", Action.PASS, None),
        ("reject", Action.REJECT, None),
        ("rejectsrc", Action.REJECTSRC, None),
        ("rejectdst", Action.REJECTDST, None),
        ("rejectboth", Action.REJECTBOTH, None),
        ("drop:flow", Action.DROP, "flow"),
        ("drop:packet", Action.DROP, "packet"),
        ("pass:flow", Action.PASS, "flow"),
    ],
)
def test_actions(action: str, expected: Action, scope: str | None) -> None:
    rule = one_rule(f"{action} tcp any any -> any any {OPTS}")
    assert rule.action is expected
    assert rule.action_scope == scope


def test_bad_action_scope() -> None:
    d = one_error(f"alert:flow tcp any any -> any any {OPTS}")
    assert d.code == "invalid-action-scope"
    assert d.column == 7


@pytest.mark.parametrize(
    ("proto", "app"),
    [
        ("ip", None),
        ("tcp", None),
        ("udp", None),
        ("icmp", None),
        ("pkthdr", None),
        ("tcp-pkt", None),
        ("http", "http"),
        ("http1", "http"),
        ("tls", "tls"),
        ("dns", "dns"),
        ("smb", "smb"),
        ("HTTP", "http"),
    ],
)
def test_protocols(proto: str, app: str | None) -> None:
    rule = one_rule(f'alert {proto} any any -> any any (msg:"x"; flow:to_server; sid:1;)')
    assert rule.protocol == proto.lower()
    assert rule.app_proto == app


def test_unknown_protocol_with_hint() -> None:
    d = one_error(f"alert htp any any -> any any {OPTS}")
    assert d.code == "unknown-protocol"
    assert (d.column, d.end_column) == (7, 10)
    assert d.hint == "did you mean 'http'?"


def test_addresses() -> None:
    rule = one_rule(
        "alert ip [192.168.1.0/24,!192.168.1.5,[10.0.0.1,2001:db8::/32]] any -> "
        f"!$HOME_NET any {OPTS}"
    )
    assert rule.src.include == (net("192.168.1.0/24"), net("10.0.0.1/32"), net("2001:db8::/32"))
    assert rule.src.exclude == (net("192.168.1.5/32"),)
    assert rule.dst.include == ()
    assert rule.dst.exclude == (net("192.168.0.0/16"), net("10.0.0.0/8"), net("172.16.0.0/12"))
    assert rule.src.contains(ipaddress.ip_address("192.168.1.9").packed)
    assert not rule.src.contains(ipaddress.ip_address("192.168.1.5").packed)
    assert not rule.dst.contains(ipaddress.ip_address("10.9.9.9").packed)
    assert rule.dst.contains(ipaddress.ip_address("8.8.8.8").packed)


def test_address_netmask_and_negated_list() -> None:
    rule = one_rule(f"alert ip 10.1.0.0/255.255.0.0 any -> ![1.1.1.1,2.2.2.2] any {OPTS}")
    assert rule.src.include == (net("10.1.0.0/16"),)
    assert rule.dst.include == () and rule.dst.exclude == (net("1.1.1.1/32"), net("2.2.2.2/32"))


@pytest.mark.parametrize(
    ("ports", "include", "exclude"),
    [
        ("80", ((80, 80),), ()),
        ("[80,81]", ((80, 80), (81, 81)), ()),
        ("80:82", ((80, 82),), ()),
        ("1024:", ((1024, 65535),), ()),
        (":1024", ((0, 1024),), ()),
        ("!80", (), ((80, 80),)),
        ("[80:100,!99]", ((80, 100),), ((99, 99),)),
        ("$HTTP_PORTS", ((80, 80),), ()),
        ("any", (), ()),
    ],
)
def test_ports(
    ports: str, include: tuple[tuple[int, int], ...], exclude: tuple[tuple[int, int], ...]
) -> None:
    rule = one_rule(f"alert tcp any any -> any {ports} (flow:to_server; sid:1;)")
    assert rule.dst_ports.include == include
    assert rule.dst_ports.exclude == exclude


def test_port_semantics() -> None:
    rule = one_rule("alert tcp any any -> any [80:100,!99] (flow:to_server; sid:1;)")
    assert rule.dst_ports.contains(80) and rule.dst_ports.contains(100)
    assert not rule.dst_ports.contains(99) and not rule.dst_ports.contains(101)


@pytest.mark.parametrize(
    ("ports", "code", "message"),
    [
        ("70000", "invalid-port", "port '70000' is outside 0-65535"),
        ("90:80", "invalid-port", "port range '90:80' is empty (low > high)"),
        ("8o", "invalid-port", "invalid port '8o'"),
        ("$NOPE", "undefined-variable", "port variable '$NOPE' is not defined"),
    ],
)
def test_bad_ports(ports: str, code: str, message: str) -> None:
    r = f"alert tcp any any -> any {ports} {OPTS}"
    d = one_error(r)
    assert (d.code, d.message) == (code, message)
    assert d.column == r.index(ports) + 1


def test_bad_address() -> None:
    r = f"alert tcp 1.2.3.400 any -> any any {OPTS}"
    d = one_error(r)
    assert d.code == "invalid-address"
    assert (d.column, d.end_column) == (11, 20)


def test_undefined_address_variable_hint() -> None:
    d = one_error(f"alert tcp $HOME_NT any -> any any {OPTS}")
    assert d.code == "undefined-variable"
    assert d.hint == "did you mean 'HOME_NET'?"


@pytest.mark.parametrize(
    ("arrow", "direction"), [("->", Direction.ONE_WAY), ("<>", Direction.BOTH)]
)
def test_directions(arrow: str, direction: Direction) -> None:
    rule = one_rule(f"alert udp 1.1.1.1 53 {arrow} any any {OPTS}")
    assert rule.direction is direction


def test_both_directions_loads_one_rule() -> None:
    rule = one_rule("alert tcp 1.1.1.1 any <> 2.2.2.2 80 (flow:established; sid:7;)")
    assert rule.direction is Direction.BOTH
    assert rule.src.include == (net("1.1.1.1/32"),) and rule.dst_ports.include == ((80, 80),)


@pytest.mark.parametrize(
    ("text", "code", "column", "message"),
    [
        (
            "alert tcp any any -> any (sid:1;)",
            "syntax-error",
            25,
            "incomplete rule header: expected '!' or '[' or a port",
        ),
        ("alert tcp any any any any (sid:1;)", "syntax-error", 19, None),
        ("alrt tcp any any -> any any (sid:1;)", "syntax-error", 1, None),
        (
            "alert tcp any any -> any any",
            "syntax-error",
            29,
            "no option list: expected '(' after the rule header",
        ),
        ("alert tcp any any -> any any (sid:1;", "syntax-error", 37, "rule does not end with ')'"),
        (
            'alert tcp any any -> any any (msg:"x"; sid:1)',
            "missing-semicolon",
            40,
            "no terminating ';' found for option 'sid'",
        ),
    ],
)
def test_syntax_errors(text: str, code: str, column: int, message: str | None) -> None:
    d = one_error(text)
    assert d.code == code
    assert d.column == column
    if message is not None:
        assert d.message == message


def test_option_value_runs_to_first_unescaped_semicolon() -> None:
    # Quotes do not protect a ';' (Suricata's rule): msg ends at "a", then 'b"' is garbage.
    d = one_error('alert tcp any any -> any any (msg:"a;b"; sid:1;)')
    assert d.code in ("unknown-keyword", "syntax-error", "missing-quotes")
    rule = one_rule('alert tcp any any -> any any (msg:"a\\;b"; flow:to_server; sid:1;)')
    assert rule.msg == "a;b"


def test_option_regex_matches_grammar_terminal() -> None:
    m = option_regex().match('  content:"a\\;b" ;', 0)
    assert m is not None and m.group("name") == "content" and m.group("value") == '"a\\;b" '


def test_parse_rule_api_raises_rule_error() -> None:
    with pytest.raises(RuleError) as info:
        parse_rule('alert tcp any any -> any any (msg:"x";)', file="f.rules", line=3)
    assert info.value.code == "missing-sid"
    assert info.value.span is not None and info.value.span.line == 3
    rule = parse_rule("alert tcp any any -> any any (sid:9;)")
    assert rule.sid == 9 and rule.span.file == "<string>"


def test_missing_semicolon_after_quoted_value() -> None:
    r = 'alert tcp any any -> any any (msg:"x" sid:1;)'
    d = one_error(r)
    assert d.code == "missing-semicolon"
    assert (
        d.message == "unexpected text after the closing quote of 'msg' (possible missing semicolon)"
    )
    assert (d.column, d.end_column) == (r.index("sid") + 1, r.index(";)") + 1)
    r = 'alert tcp any any -> any any (content:"abc" nocase; sid:1;)'
    assert one_error(r).column == r.index("nocase") + 1
    r = 'alert tcp any any -> any any (content:! "abc" nocase; sid:1;)'
    assert one_error(r).column == r.index("nocase") + 1


def test_deeply_nested_lists_are_an_error_not_a_crash() -> None:
    r = "alert tcp " + "[" * 40 + "1.1.1.1" + "]" * 40 + " any -> any any (sid:1;)"
    d = one_error(r)
    assert d.code == "nesting-too-deep" and d.column == 11 + 32
    assert one_error("alert tcp " + "!" * 40 + "1.1.1.1 any -> any any (sid:1;)").code == (
        "nesting-too-deep"
    )
    ok = "alert tcp " + "[" * 30 + "1.1.1.1" + "]" * 30 + " any -> any any (flow:to_server; sid:1;)"
    assert one_rule(ok).src.include == (net("1.1.1.1/32"),)
