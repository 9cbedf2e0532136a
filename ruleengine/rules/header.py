"""Rule header: action, protocol, addresses, ports, direction -> typed model values.

Headers repeat a lot in real rule sets (``alert tcp $EXTERNAL_NET any -> $HOME_NET any``),
so ``HeaderParser`` caches each distinct header text with its (variable-expanded) result.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from lark import Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ruleengine.rules.errors import RuleError, RuleSyntaxError
from ruleengine.rules.model import Action, AddressSet, Direction, IPNetwork, PortSet, Span
from ruleengine.rules.syntax import parser

# Suricata --list-rule-protos: decoder protocols, then app-layer protocols.
PACKET_PROTOCOLS = frozenset(
    {
        "ip",
        "ipv4",
        "ip4",
        "ipv6",
        "ip6",
        "tcp",
        "udp",
        "icmp",
        "icmpv4",
        "icmpv6",
        "sctp",
        "ether",
        "arp",
        "pkthdr",
        "tcp-pkt",
        "tcp-stream",
        "igmp",
    }
)
APP_PROTOCOLS = frozenset(
    {
        "http",
        "http1",
        "http2",
        "ftp",
        "ftp-data",
        "smtp",
        "tls",
        "ssl",
        "ssh",
        "imap",
        "smb",
        "dcerpc",
        "dns",
        "dnp3",
        "enip",
        "cip",
        "nfs",
        "ntp",
        "tftp",
        "ikev2",
        "ike",
        "krb5",
        "dhcp",
        "snmp",
        "sip",
        "rfb",
        "mqtt",
        "pgsql",
        "telnet",
        "websocket",
        "ldap",
        "doh2",
        "quic",
        "bittorrent-dht",
        "modbus",
        "rdp",
        "template",
        "pop3",
        "mdns",
    }
)
HTTP_PROTOCOLS = frozenset({"http", "http1"})

_ACTIONS = {a.value: a for a in Action}
_ACTIONS["accept"] = Action.PASS  # firewall-mode verdict; closest IDS meaning
_DIRECTIONS = {d.value: d for d in Direction}
_MAX_VAR_DEPTH = 16
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Header:
    action: Action
    action_scope: str | None
    protocol: str
    src: AddressSet
    src_ports: PortSet
    direction: Direction
    dst: AddressSet
    dst_ports: PortSet
    app_proto: str | None


@dataclass(slots=True)
class _Items(Generic[_T]):
    """An address or port list while it is walked: what it includes, what it excludes,
    and whether ``any`` is among the included."""

    include: list[_T]
    exclude: list[_T]
    any: bool

    def merge(self, part: _Items[_T]) -> None:
        self.include += part.include
        self.exclude += part.exclude
        self.any = self.any or part.any


@dataclass(frozen=True)
class _ListKind:
    """What tells the address walk from the port walk: the grammar's rule names
    (``addr_atom``/``addr_not``/``addresses`` and the port ones) and the word in messages."""

    what: str
    atom: str
    negation: str
    group: str  # start rule of a variable's value


_ADDRESSES = _ListKind("address", "addr_atom", "addr_not", "addresses")
_PORTS = _ListKind("port", "port_atom", "port_not", "ports")


def app_proto_of(protocol: str) -> str | None:
    if protocol in HTTP_PROTOCOLS:
        return "http"
    if protocol in APP_PROTOCOLS:
        return protocol
    return None


class HeaderParser:
    """Parses rule headers against one set of address/port variables."""

    def __init__(self, address_vars: dict[str, str], port_vars: dict[str, str]) -> None:
        self.address_vars = address_vars
        self.port_vars = port_vars
        self._cache: dict[str, Header] = {}
        self._var_cache: dict[tuple[str, str], Any] = {}

    def parse(self, text: str, *, file: str, line: int, col0: int = 0) -> Header:
        """Parse ``text`` (the header, without the option list). ``col0`` is the 0-based
        column of the header's first character in the rule line (for spans)."""
        hit = self._cache.get(text)
        if hit is not None:
            return hit
        self._file, self._line, self._col0 = file, line, col0
        _check_nesting(text, file, line, col0)
        try:
            tree = parser().parse(text, start="header")
        except UnexpectedInput as exc:
            raise _syntax_error(exc, text, file, line, col0) from None
        header = self._header(tree)
        self._cache[text] = header
        return header

    # --- tree walking -------------------------------------------------------------

    def _span(self, tok: Token) -> Span:
        col = (tok.column or 1) + self._col0
        return Span(self._file, self._line, col, col + len(tok))

    def _header(self, tree: Tree[Token]) -> Header:
        action_t, proto_t, src_t, sp_t, dir_t, dst_t, dp_t = tree.children
        assert isinstance(action_t, Tree) and isinstance(proto_t, Tree)
        assert isinstance(dir_t, Tree)
        action_tok = action_t.children[0]
        assert isinstance(action_tok, Token)
        action = _ACTIONS[str(action_tok)]
        scope = None
        if len(action_t.children) > 1:
            scope_tok = action_t.children[1]
            assert isinstance(scope_tok, Token)
            scope = str(scope_tok)
            if action not in (Action.DROP, Action.PASS) or scope not in ("packet", "flow"):
                raise RuleError(
                    f"action scope '{action_tok}:{scope}' is not supported "
                    "(only drop:packet|flow and pass:packet|flow)",
                    self._span(scope_tok),
                    code="invalid-action-scope",
                )
        proto_tok = proto_t.children[0]
        assert isinstance(proto_tok, Token)
        protocol = str(proto_tok).lower()
        if protocol not in PACKET_PROTOCOLS and protocol not in APP_PROTOCOLS:
            raise RuleError(
                f"protocol '{proto_tok}' is not supported",
                self._span(proto_tok),
                code="unknown-protocol",
                hint=_did_you_mean(protocol, PACKET_PROTOCOLS | APP_PROTOCOLS),
            )
        dir_tok = dir_t.children[0]
        assert isinstance(dir_tok, Token)
        return Header(
            action=action,
            action_scope=scope,
            protocol=protocol,
            src=self._address_set(src_t),
            src_ports=self._port_set(sp_t),
            direction=_DIRECTIONS[str(dir_tok)],
            dst=self._address_set(dst_t),
            dst_ports=self._port_set(dp_t),
            app_proto=app_proto_of(protocol),
        )

    def _address_set(self, node: Tree[Token] | Token) -> AddressSet:
        return AddressSet(*self._walk_set(_ADDRESSES, node))

    def _port_set(self, node: Tree[Token] | Token) -> PortSet:
        return PortSet(*self._walk_set(_PORTS, node))

    def _walk_set(self, kind: _ListKind,
                  node: Tree[Token] | Token) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """(include, exclude) of a header's address or port field."""
        items = self._walk(kind, node, depth=0, var_tok=None)
        if items.any or not items.include:  # [!a,!b] = any except a and b
            return (), tuple(items.exclude)
        return tuple(items.include), tuple(items.exclude)

    def _walk(self, kind: _ListKind, node: Tree[Token] | Token, depth: int,
              var_tok: Token | None) -> _Items[Any]:
        if isinstance(node, Token):  # ADDRESS_RUN / PORT_RUN: "a,b,c" inside a list
            out: _Items[Any] = _Items([], [], False)
            for tok in _split_run(node):
                out.merge(self._atom(kind, tok, depth, var_tok or tok))
            return out
        if node.data == kind.atom:
            atom = node.children[0]
            assert isinstance(atom, Token)
            return self._atom(kind, atom, depth, var_tok or atom)
        if node.data == kind.negation:
            inner = self._walk(kind, node.children[0], depth, var_tok)
            if inner.any and not inner.exclude:
                raise RuleError(
                    f"'!any' is not allowed: it matches no {kind.what}",
                    self._node_span(node, var_tok),
                    code="negated-any",
                )
            if inner.any:  # ![any,!x] == x
                return _Items(list(inner.exclude), [], False)
            return _Items(list(inner.exclude), list(inner.include), False)
        if node.data == kind.group:
            return self._walk(kind, node.children[0], depth, var_tok)
        out = _Items([], [], False)  # addr_list / port_list
        for child in node.children:
            out.merge(self._walk(kind, child, depth, var_tok))
        return out

    def _node_span(self, node: Tree[Token], var_tok: Token | None) -> Span:
        if var_tok is not None:
            return self._span(var_tok)
        toks = list(node.scan_values(lambda v: isinstance(v, Token)))
        first, last = toks[0], toks[-1]
        start = (first.column or 1) - 1  # include the "!"
        end = (last.end_column or last.column or 1) + (1 if node.data.endswith("list") else 0)
        return Span(self._file, self._line, start + self._col0, end + self._col0)

    def _atom(self, kind: _ListKind, tok: Token, depth: int, span_tok: Token) -> _Items[Any]:
        text = str(tok)
        if text == "any":
            return _Items([], [], True)
        if text.startswith("$"):
            table = self.address_vars if kind is _ADDRESSES else self.port_vars
            tree = self._expand(text[1:], table, kind, depth, span_tok)
            return self._walk(kind, tree, depth + 1, span_tok)
        if kind is _ADDRESSES:
            return _Items(self._networks(text, span_tok), [], False)
        return _Items([self._port_range(text, span_tok)], [], False)

    def _networks(self, text: str, span_tok: Token) -> list[IPNetwork]:
        net = _fast_ipv4(text)
        if net is not None:
            return [net]
        try:
            if "-" in text:
                lo_s, hi_s = text.split("-", 1)
                lo, hi = ipaddress.ip_address(lo_s), ipaddress.ip_address(hi_s)
                return list(ipaddress.summarize_address_range(lo, hi))
            return [ipaddress.ip_network(text, strict=False)]
        except (ValueError, TypeError) as exc:
            raise RuleError(
                f"invalid address '{text}': {exc}", self._span(span_tok), code="invalid-address"
            ) from None

    def _port_range(self, text: str, span_tok: Token) -> tuple[int, int]:
        lo_s, sep, hi_s = text.partition(":")
        try:
            lo = int(lo_s) if lo_s else 0
            hi = (int(hi_s) if hi_s else 65535) if sep else lo
            if not (lo_s.isdigit() or not lo_s) or not (hi_s.isdigit() or not hi_s):
                raise ValueError
        except ValueError:
            raise RuleError(
                f"invalid port '{text}'", self._span(span_tok), code="invalid-port"
            ) from None
        if not 0 <= lo <= 65535 or not 0 <= hi <= 65535:
            raise RuleError(
                f"port '{text}' is outside 0-65535", self._span(span_tok), code="invalid-port"
            )
        if lo > hi:
            raise RuleError(
                f"port range '{text}' is empty (low > high)",
                self._span(span_tok),
                code="invalid-port",
            )
        return lo, hi

    def _expand(
        self, name: str, table: dict[str, str], kind: _ListKind, depth: int, span_tok: Token
    ) -> Tree[Token]:
        start, what = kind.group, kind.what
        if depth >= _MAX_VAR_DEPTH:
            raise RuleError(
                f"{what} variable '${name}' is defined in terms of itself (loop)",
                self._span(span_tok),
                code="variable-loop",
            )
        value = table.get(name)
        if value is None:
            raise RuleError(
                f"{what} variable '${name}' is not defined",
                self._span(span_tok),
                code="undefined-variable",
                hint=_did_you_mean(name, table),
            )
        key = (start, name)
        tree = self._var_cache.get(key)
        if tree is None:
            # Bounded nesting keeps the recursive walk safe on hostile configuration.
            too_deep = value.count("[") > MAX_LIST_NESTING or value.count("!") > MAX_LIST_NESTING
            try:
                tree = None if too_deep else parser().parse(value, start=start)
            except UnexpectedInput:
                tree = None
            if tree is None:
                raise RuleError(
                    f"{what} variable '${name}' has an invalid value '{value}'",
                    self._span(span_tok),
                    code="invalid-variable",
                ) from None
            self._var_cache[key] = tree
        assert isinstance(tree, Tree)
        return tree


class _Atom(str):
    """One element of a *_RUN token: text plus its column (what spans need of a Token)."""

    column: int


MAX_LIST_NESTING = 32
_BANG_RUN_RE = re.compile(rf"(?:![ \t]*){{{MAX_LIST_NESTING + 1},}}")


def _check_nesting(text: str, file: str, line: int, col0: int) -> None:
    """Bound ``[[[...]]]`` nesting and ``!!!`` runs before walking the tree recursively."""
    if text.count("!") > MAX_LIST_NESTING:
        m = _BANG_RUN_RE.search(text)
        if m is not None:
            raise RuleError(
                f"more than {MAX_LIST_NESTING} '!' in a row",
                Span(file, line, col0 + m.start() + 1, col0 + m.end() + 1),
                code="nesting-too-deep",
            )
    if text.count("[") <= MAX_LIST_NESTING:
        return
    depth = 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
            if depth > MAX_LIST_NESTING:
                raise RuleError(
                    f"address/port lists nested more than {MAX_LIST_NESTING} levels deep",
                    Span(file, line, col0 + i + 1, col0 + i + 2),
                    code="nesting-too-deep",
                )
        elif ch == "]":
            depth = max(depth - 1, 0)


def _split_run(run: Token) -> list[Token]:
    """The atoms of a *_RUN token, each with its own column."""
    out = []
    col = run.column or 1
    for part in str(run).split(","):
        atom = _Atom(part)
        atom.column = col
        out.append(atom)
        col += len(part) + 1
    return out  # type: ignore[return-value]  # duck-typed: str + column


_IPV4_RE = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:/(\d{1,2}))?\Z")


def _fast_ipv4(text: str) -> ipaddress.IPv4Network | None:
    """Plain dotted-quad[/prefix] without the generic parser (reputation lists have
    thousands); anything unusual returns None and takes the full path."""
    m = _IPV4_RE.match(text)
    if m is None:
        return None
    a, b, c, d, prefix = m.groups()
    octets = (int(a), int(b), int(c), int(d))
    plen = int(prefix) if prefix is not None else 32
    if max(octets) > 255 or plen > 32 or any(len(o) > 1 and o[0] == "0" for o in (a, b, c, d)):
        return None
    addr = (octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]
    mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF
    return ipaddress.IPv4Network((addr & mask, plen))


def _did_you_mean(word: str, choices: Any) -> str | None:
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return f"did you mean '{close[0]}'?" if close else None


def _syntax_error(
    exc: UnexpectedInput, text: str, file: str, line: int, col0: int
) -> RuleSyntaxError:
    col = (exc.column if isinstance(exc.column, int) and exc.column > 0 else len(text) + 1) + col0
    what = "rule header"
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        width = max(len(str(tok)), 1)
        if tok.type == "$END":
            msg = f"incomplete {what}: expected {_expected(exc.expected)}"
            col = len(text.rstrip()) + 1 + col0
        else:
            msg = f"unexpected '{tok}' in {what}: expected {_expected(exc.expected)}"
    elif isinstance(exc, UnexpectedCharacters):
        width = 1
        pos = exc.pos_in_stream or 0
        ch = text[pos] if pos < len(text) else ""
        msg = f"unexpected character {ch!r} in {what}"
    elif isinstance(exc, UnexpectedEOF):
        width = 1
        msg = f"incomplete {what}"
    else:  # pragma: no cover - lark has no other kinds
        width = 1
        msg = f"invalid {what}"
    return RuleSyntaxError(msg, Span(file, line, col, col + width), code="syntax-error")


_TERMINAL_NAMES = {
    "ACTION": "an action (alert, drop, pass, reject, ...)",
    "PROTO": "a protocol",
    "ADDRESS": "an address",
    "PORT": "a port",
    "DIRECTION": "'->' or '<>'",
    "BANG": "'!'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "COLON": "':'",
    "SCOPE": "an action scope",
    "LPAR": "'('",
}


def _expected(names: Any) -> str:
    parts = sorted({_TERMINAL_NAMES.get(str(n), str(n)) for n in names})
    return " or ".join(parts) if parts else "more input"
