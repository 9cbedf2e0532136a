"""Typed rule model: the contract between rule parsing and detection.

Rule parsing (``ruleengine.rules`` + ``ruleengine.keywords``) builds these objects
once; detection (``ruleengine.detect``) only reads them and never re-parses text.
Values that may name a ``byte_extract`` variable are ``int | str`` (str = variable).
Buffer names are the canonical dotted sticky-buffer names of ``ruleengine.buffers``
(``"http.uri"``, ``"http.header"``, ...); ``PAYLOAD`` is the packet/stream payload.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field
from typing import Any

PAYLOAD = "payload"
"""Match-list name for content inspected in the packet payload / reassembled stream."""

IntOrVar = int | str


@dataclass(frozen=True, slots=True)
class Span:
    """Where something sits in a rule file. Line and columns are 1-based; ``end_col``
    is exclusive. ``col`` counts characters of the (continuation-joined) rule line."""

    file: str
    line: int
    col: int
    end_col: int


class Action(enum.Enum):
    ALERT = "alert"
    DROP = "drop"
    PASS = "pass"
    REJECT = "reject"
    REJECTSRC = "rejectsrc"
    REJECTDST = "rejectdst"
    REJECTBOTH = "rejectboth"
    CONFIG = "config"

    @property
    def is_reject(self) -> bool:
        return self in (Action.REJECT, Action.REJECTSRC, Action.REJECTDST, Action.REJECTBOTH)


class Direction(enum.Enum):
    ONE_WAY = "->"
    BOTH = "<>"
    TRANSACTIONAL = "=>"


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class AddressSet:
    """A rule address after variable expansion. ``include`` empty means any.
    ``exclude`` networks are removed from it (Suricata's ``!`` semantics)."""

    include: tuple[IPNetwork, ...] = ()
    exclude: tuple[IPNetwork, ...] = ()

    @property
    def is_any(self) -> bool:
        return not self.include and not self.exclude

    def contains(self, addr: bytes) -> bool:
        if self.is_any:
            return True
        ip = ipaddress.ip_address(addr)
        if self.include and not any(ip in net for net in self.include):
            return False
        return not any(ip in net for net in self.exclude)


@dataclass(frozen=True, slots=True)
class PortSet:
    """Port ranges (inclusive). ``include`` empty means any port."""

    include: tuple[tuple[int, int], ...] = ()
    exclude: tuple[tuple[int, int], ...] = ()

    @property
    def is_any(self) -> bool:
        return not self.include and not self.exclude

    def contains(self, port: int) -> bool:
        if self.include and not any(lo <= port <= hi for lo, hi in self.include):
            return False
        return not any(lo <= port <= hi for lo, hi in self.exclude)


class IntOp(enum.Enum):
    """Suricata's integer-keyword comparison (``bsize``, ``dsize``, ``urilen``...)."""

    EQ = "="
    NE = "!"
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    RANGE = "<>"  # exclusive: lo < v < hi
    NOT_RANGE = "!<>"
    BITMASK_SET = "&"  # (v & lo) == hi
    BITMASK_NOT = "^"  # (v & lo) != hi


@dataclass(frozen=True, slots=True)
class IntCondition:
    op: IntOp
    lo: int
    hi: int = 0

    def matches(self, value: int) -> bool:
        op = self.op
        if op is IntOp.EQ:
            return value == self.lo
        if op is IntOp.NE:
            return value != self.lo
        if op is IntOp.LT:
            return value < self.lo
        if op is IntOp.LE:
            return value <= self.lo
        if op is IntOp.GT:
            return value > self.lo
        if op is IntOp.GE:
            return value >= self.lo
        if op is IntOp.RANGE:
            return self.lo < value < self.hi
        if op is IntOp.NOT_RANGE:
            return not (self.lo < value < self.hi)
        if op is IntOp.BITMASK_SET:
            return (value & self.lo) == self.hi
        return (value & self.lo) != self.hi


# --- buffer inspection items (ordered lists per buffer) ---------------------------


@dataclass(slots=True)
class ContentMatch:
    pattern: bytes
    negated: bool = False
    nocase: bool = False
    offset: IntOrVar | None = None
    depth: IntOrVar | None = None
    distance: IntOrVar | None = None
    within: IntOrVar | None = None
    startswith: bool = False
    endswith: bool = False
    rawbytes: bool = False
    fast_pattern: bool = False
    fast_pattern_only: bool = False
    fast_pattern_chop: tuple[int, int] | None = None  # (offset, length)
    span: Span | None = None

    @property
    def relative(self) -> bool:
        """True when positioned relative to the previous match in the same buffer."""
        return self.distance is not None or self.within is not None

    @property
    def mpm_pattern(self) -> bytes:
        """The bytes the prefilter looks for (the chop, if any)."""
        if self.fast_pattern_chop is None:
            return self.pattern
        off, length = self.fast_pattern_chop
        return self.pattern[off : off + length]


@dataclass(slots=True)
class PcreMatch:
    """``pcre:"/re/flags"``. ``regex`` is the pattern body as written (no slashes),
    ``flags`` the general PCRE flags (i m s x A E G O), ``relative`` is the R flag.
    ``compiled`` is the PCRE2 code object, compiled once at load time."""

    regex: str
    flags: str = ""
    negated: bool = False
    relative: bool = False
    rawbytes: bool = False
    compiled: Any = None
    span: Span | None = None
    # capture names after the flags (``"/(a)(b)/, flow:key,pkt:value"``): group N+1 is
    # stored in variable N as (scope "flow"|"pkt", name)
    capture_vars: tuple[tuple[str, str], ...] = ()


class Endian(enum.Enum):
    BIG = "big"
    LITTLE = "little"


@dataclass(slots=True, kw_only=True)
class ByteOptions:
    """The options every ``byte_*`` keyword shares (``keywords.bytes_`` parses them once):
    keyword arguments after each keyword's own fields."""

    relative: bool = False
    endian: Endian = Endian.BIG
    string_base: int | None = None  # 8, 10, 16 when "string,<base>"
    dce: bool = False
    bitmask: int | None = None
    span: Span | None = None


@dataclass(slots=True)
class ByteTest(ByteOptions):
    nbytes: int
    operator: str  # one of < > = <= >= & ^ (after "!" split into ``negated``)
    value: IntOrVar
    offset: IntOrVar
    negated: bool = False


@dataclass(slots=True)
class ByteJump(ByteOptions):
    nbytes: int
    offset: IntOrVar
    multiplier: int = 1
    align: bool = False
    from_beginning: bool = False
    from_end: bool = False
    post_offset: int = 0


@dataclass(slots=True)
class ByteExtract(ByteOptions):
    nbytes: int
    offset: int
    name: str
    multiplier: int = 1
    align: int = 0


@dataclass(slots=True)
class ByteMath(ByteOptions):
    nbytes: int
    offset: int
    oper: str  # + - * / << >>
    rvalue: IntOrVar
    result: str


@dataclass(slots=True)
class IsDataAt:
    offset: IntOrVar
    negated: bool = False
    relative: bool = False
    rawbytes: bool = False
    span: Span | None = None


@dataclass(slots=True)
class BufferSize:
    """``bsize`` on the buffer it follows."""

    cond: IntCondition
    span: Span | None = None


@dataclass(slots=True)
class Absent:
    """``absent`` / ``absent:or_else``: the sticky buffer must not exist."""

    or_else: bool = False
    span: Span | None = None


@dataclass(slots=True)
class Base64Decode:
    """``base64_decode[:bytes N][, offset N][, relative]``: decodes part of the buffer it
    sits in (``bytes`` 0 = up to 65535 input bytes); ``data`` is the rule's
    ``base64_data`` list, inspected on the decoded bytes (Suricata's terminal list)."""

    bytes: int = 0
    offset: int = 0
    relative: bool = False
    data: BufferMatch | None = None
    span: Span | None = None


@dataclass(slots=True)
class Asn1Match:
    """``asn1:...``: DER/BER checks on the packet payload from an absolute offset or one
    relative to the previous match (``relative_offset``)."""

    bitstring_overflow: bool = False
    double_overflow: bool = False
    oversize_length: int | None = None
    absolute_offset: int | None = None
    relative_offset: int | None = None
    max_frames: int = 30
    span: Span | None = None


InspectItem = (
    ContentMatch | PcreMatch | ByteTest | ByteJump | ByteExtract | ByteMath | IsDataAt
    | BufferSize | Absent | Base64Decode | Asn1Match
)


@dataclass(slots=True)
class BufferMatch:
    """All inspection items of one buffer, in rule order.

    A rule may name the same sticky buffer twice (``http.uri; content:"a"; ...
    http.uri; content:"b";``): Suricata appends to the same list, and so do we.
    """

    buffer: str  # PAYLOAD or a canonical buffer name
    items: list[InspectItem] = field(default_factory=list)
    # transforms applied to the buffer before inspection, in rule order
    transforms: list[Transform] = field(default_factory=list)


# --- per-packet / per-flow conditions ---------------------------------------------


@dataclass(frozen=True, slots=True)
class FlowCondition:
    established: bool = False
    not_established: bool = False
    stateless: bool = False
    to_server: bool = False
    to_client: bool = False
    only_stream: bool = False
    no_stream: bool = False
    only_frag: bool = False
    no_frag: bool = False


class BitCmd(enum.Enum):
    """The commands of flowbits and xbits (Suricata's ``DETECT_FLOWBITS_CMD_*`` and
    ``DETECT_XBITS_CMD_*`` are the same list). ``noalert`` is a command of flowbits only:
    ``xbits:noalert`` sets ``Rule.noalert`` (``keywords.xbits``)."""

    SET = "set"
    UNSET = "unset"
    TOGGLE = "toggle"
    ISSET = "isset"
    ISNOTSET = "isnotset"
    NOALERT = "noalert"


FlowbitCmd = BitCmd
XbitCmd = BitCmd


@dataclass(frozen=True, slots=True)
class Flowbit:
    cmd: FlowbitCmd
    names: tuple[str, ...] = ()  # several = OR ("a|b") for isset/isnotset, AND ("a&b")
    any_of: bool = True

    @property
    def is_check(self) -> bool:
        return self.cmd in (FlowbitCmd.ISSET, FlowbitCmd.ISNOTSET)


@dataclass(frozen=True, slots=True)
class TcpFlags:
    """``flags:[modifier]flags[,mask]``; bits use TCP header values (F=1, S=2, ...)."""

    flags: int
    modifier: str = ""  # "" exact, "+" all of and any other, "*" any of, "!" not
    mask: int = 0xFF  # bits that are considered


@dataclass(frozen=True, slots=True)
class Threshold:
    kind: str  # limit | threshold | both | backoff | detection_filter
    track: str  # by_src | by_dst | by_rule | by_both | by_flow
    count: int
    seconds: int = 0
    multiplier: int = 0


@dataclass(frozen=True, slots=True)
class PacketCondition:
    """A non-buffer per-packet keyword: ``dsize``, ``ttl``, ``ack``, ``seq``, ``window``,
    ``ip_proto``, ``itype``, ``icode``, ``tcp.flags``... ``field`` names the packet
    attribute, ``cond`` the test on it (``TcpFlags`` for flags)."""

    field: str
    cond: IntCondition | TcpFlags
    span: Span | None = None


@dataclass(frozen=True, slots=True)
class TxCondition:
    """A protocol keyword evaluated on a transaction (``tls.version``, ``ssl_state``,
    ``dns.opcode``, ``app-layer-event``...): the registry's keyword ``keyword`` of protocol
    ``alproto`` with its parsed argument (``ruleengine.applayer.base.TxKeyword``)."""

    alproto: str
    keyword: str
    arg: Any
    direction: str = "both"  # toserver | toclient | both
    span: Span | None = field(default=None, compare=False)


@dataclass(slots=True)
class Rule:
    """One loaded signature (``<>`` rules load as one Rule with ``Direction.BOTH``)."""

    action: Action
    protocol: str  # as written, lower-cased: tcp, udp, ip, http, http1, tls, ...
    src: AddressSet
    src_ports: PortSet
    direction: Direction
    dst: AddressSet
    dst_ports: PortSet
    sid: int
    raw: str
    span: Span  # the rule's first character
    gid: int = 1
    rev: int = 0
    msg: str = ""
    action_scope: str | None = None  # packet | flow (8.0 "drop:flow")
    classtype: str | None = None
    priority: int | None = None  # explicit priority; classtype's is applied at load
    metadata: list[str] = field(default_factory=list)
    references: list[tuple[str, str]] = field(default_factory=list)
    target: str | None = None
    app_proto: str | None = None  # from the header protocol or app-layer-protocol
    app_proto_negated: bool = False
    buffers: list[BufferMatch] = field(default_factory=list)
    packet_conditions: list[PacketCondition] = field(default_factory=list)
    tx_conditions: list[TxCondition] = field(default_factory=list)
    flow: FlowCondition | None = None
    flowbits: list[Flowbit] = field(default_factory=list)
    threshold: Threshold | None = None
    detection_filter: Threshold | None = None
    noalert: bool = False
    bypass: bool = False
    prefilter: bool = False  # "prefilter" keyword: use a non-mpm keyword as prefilter
    fast_pattern: tuple[str, ContentMatch] | None = None  # (buffer, content) picked at load
    # Keywords that parsed but the engine does not evaluate (dns.query, tls.sni, lua, ...):
    # the rule loads (lint warns) and detection counts it as skipped.
    unsupported: list[str] = field(default_factory=list)
    # Option names in order, with their values as written (for analysis/lint output).
    options: list[tuple[str, str | None]] = field(default_factory=list)
    xbits: list[Xbit] = field(default_factory=list)
    flowints: list[Flowint] = field(default_factory=list)
    stream_size: list[StreamSize] = field(default_factory=list)
    tags: list[Tag] = field(default_factory=list)
    base64_data: BufferMatch | None = None  # the base64_data list (base64_decode's)
    var_checks: list[VarCheck] = field(default_factory=list)  # flowvar / pktvar

    @property
    def severity(self) -> int:
        return self.priority if self.priority is not None else 3

    def buffer(self, name: str) -> BufferMatch | None:
        for b in self.buffers:
            if b.buffer == name:
                return b
        return None


# --- keywords of ruleengine.keywords.{xbits,flowint,stream_size,tag,transforms} ------

BASE64_DATA = "base64_data"
"""Name of the ``base64_data`` list (``Rule.base64_data``; not in ``Rule.buffers``)."""


@dataclass(frozen=True, slots=True)
class Transform:
    """One buffer transform (``to_lowercase``, ``xor:"0a1b"``, ``pcrexform:"..."``...).
    ``arg`` is the option value as written (unquoted), None for transforms without one;
    ``key`` the xor key; ``nbytes``/``offset``/``mode`` the from_base64 options."""

    name: str
    arg: str | None = None
    key: bytes = b""
    nbytes: int = 0
    offset: int = 0
    mode: str = "rfc4648"

    @property
    def ident(self) -> str:
        """Identity of the transform in a buffer+transforms cache key."""
        return self.name if self.arg is None else f"{self.name}({self.arg})"


@dataclass(frozen=True, slots=True)
class Xbit:
    """``xbits:<cmd>,<name>,track <ip_src|ip_dst|ip_pair>[,expire <s>]`` (noalert sets
    ``Rule.noalert`` instead)."""

    cmd: XbitCmd
    name: str
    track: str  # ip_src | ip_dst | ip_pair
    expire: int = 30

    @property
    def is_check(self) -> bool:
        return self.cmd in (XbitCmd.ISSET, XbitCmd.ISNOTSET)


@dataclass(frozen=True, slots=True)
class Flowint:
    """``flowint:<name>,<op>[,<value|var>]``; op one of = + - (post-match) or
    == != < <= > >= isset notset (checks). ``target`` int, a variable name, or None."""

    name: str
    op: str
    target: int | str | None = None

    @property
    def is_check(self) -> bool:
        return self.op not in ("=", "+", "-")


@dataclass(frozen=True, slots=True)
class StreamSize:
    """``stream_size:<server|client|both|either>,<op>,<n>`` (TCP sequence-space sizes)."""

    side: str
    op: str  # < <= = != >= >
    value: int


@dataclass(frozen=True, slots=True)
class Tag:
    """``tag:<session|host>[,<count>,<packets|seconds|bytes>[,<src|dst>]]``."""

    kind: str  # session | host
    count: int = 256
    metric: str = "packets"
    direction: str = "dst"


@dataclass(frozen=True, slots=True)
class VarCheck:
    """``flowvar:<name>,"<content>"`` / ``pktvar:<name>,"<content>"``: the variable (set
    by a pcre named group ``flow_<name>`` / ``pkt_<name>``) contains ``content``."""

    scope: str  # flow | pkt
    name: str
    content: bytes
