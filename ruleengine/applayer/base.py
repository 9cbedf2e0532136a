"""The contract every application-layer protocol implements (one package per protocol).

Modelled on Suricata's app-layer registration (``app-layer-register.c``: probing parser,
parser, transactions with per-direction progress, events) plus its per-protocol detect
registrations (``DetectAppLayerInspectEngineRegister`` / ``DetectAppLayerMpmRegister``:
a buffer name, a direction, a getter) and its output registrations (``OutputRegisterTx``).

A protocol package ``ruleengine/applayer/<proto>/`` exports ``PROTOCOL``, an
:class:`AppLayerSpec`. The registry (:mod:`ruleengine.applayer.registry`) discovers the
packages; detection, outputs and the pipeline only ever see these types. Nothing here
imports a higher layer: buffers, keywords and loggers are described by plain functions
over the protocol's own transaction type, and the rule, detect and output layers wrap them.

Parsers are sans-IO and lenient: bytes in, transactions and events out, never an exception
for any input, and every buffer bounded by a configurable cap.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal, Protocol, TypeVar


class BufferDirection(enum.Enum):
    TO_SERVER = "toserver"
    TO_CLIENT = "toclient"
    BOTH = "both"


Getter = Callable[[Any], "bytes | list[bytes] | None"]
"""Transaction -> buffer bytes (``multi`` buffers: a list, one entry per instance), or
None while the buffer does not exist (yet)."""


@dataclass(frozen=True)
class BufferSpec:
    """One inspectable buffer (a sticky-buffer keyword)."""

    name: str
    aliases: tuple[str, ...] = ()
    legacy_modifier: str | None = None
    pcre_letter: str | None = None
    direction: BufferDirection = BufferDirection.TO_SERVER
    multi: bool = False
    # Suricata rejects nocase / uppercase patterns on these (normalised lowercase).
    lowercase_only: bool = False
    # A space in a pattern is a rule error (http.method, http.protocol).
    no_spaces: bool = False
    getter: Getter | None = None
    # Response-side getter of a BOTH buffer (``getter`` is then the request side).
    getter_toclient: Getter | None = None
    # The app-layer protocol whose transactions carry this buffer (set by the registry).
    alproto: str = ""


ProbeResult = Literal["match", "undecided", "nomatch"]
"""What a probing parser says of the first bytes of one direction."""

Probe = Callable[[bytes, bool], ProbeResult]
"""``probe(data, to_server)``: look at the first bytes of a direction (Suricata's probing
parsers and pattern tables). ``data`` holds everything seen so far in that direction, up to
:attr:`AppLayerSpec.probe_depth` bytes."""


class Transaction(Protocol):
    """What the engine reads from every transaction."""

    tx_id: int
    # per-direction progress: grows as the side is parsed; the engine re-inspects a
    # transaction when either number changed
    request_progress: int
    response_progress: int
    # app-layer events (Suricata's names, e.g. "tls.invalid_record_length")
    events: list[str]

    @property
    def request_complete(self) -> bool: ...

    @property
    def response_complete(self) -> bool: ...


class AppParser(Protocol):
    """One flow's parser state (both directions).

    A parser may also have ``expectations``: a list of ``(port, alproto)`` the pipeline
    drains after each feed -- a flow to come between the same two hosts towards ``port``
    is of protocol ``alproto`` (Suricata's AppLayerExpectationCreate: FTP's PASV/PORT
    announce the ftp-data flow)."""

    # open transactions, oldest first; the pipeline may delete fully inspected ones
    transactions: list[Any]

    def feed(self, to_server: bool, data: bytes, ts: float = 0.0) -> None:
        """Bytes of one direction, in stream order (TCP: reassembled; UDP: one datagram)."""

    def close(self, to_server: bool | None = None) -> None:
        """End of a direction (None: the flow ended, both)."""

    @property
    def encrypted(self) -> bool:
        """True once both sides are past the handshake and the rest of the flow is
        encrypted (TLS: ChangeCipherSpec/Finished both ways, or TLS 1.3 handshake done;
        SSH: NEWKEYS both ways). Protocols without encryption return False."""


@dataclass(frozen=True, slots=True)
class TxMatchContext:
    """What a transaction keyword may know beyond the transaction: the direction being
    inspected and the flow's addresses (client = the side that opened the flow), as
    4- or 16-byte packed IPs."""

    to_server: bool
    client_ip: bytes = b""
    server_ip: bytes = b""


@dataclass(frozen=True)
class TxKeyword:
    """A non-buffer rule keyword of a protocol (``tls.version``, ``ssl_state``,
    ``dns.opcode``, ``ssh.protoversion``...): Suricata's Setup + AppLayerTxMatch.

    ``parse(value)`` turns the option value (quotes removed, stripped, None when absent)
    into an opaque argument, raising ``ValueError`` with a user-facing message on bad input.
    ``match(arg, tx, ctx)`` (ctx: :class:`TxMatchContext`) returns True / False, or None
    when the transaction does not have what the keyword needs yet (retried on later
    progress; a None at the end of the transaction is a non-match).
    """

    name: str
    parse: Callable[[str | None], Any]
    match: Callable[[Any, Any, TxMatchContext], bool | None]
    direction: BufferDirection = BufferDirection.BOTH
    aliases: tuple[str, ...] = ()
    # value may be written as "!value" and parse receives it with the "!"
    negatable: bool = False
    value_required: bool = True
    doc: str = ""


EveLogger = Callable[[Any, Mapping[str, Any]], "dict[str, Any] | None"]
"""``logger(tx, options)`` -> the object under the protocol's key in EVE (``"tls": {...}``),
or None when the transaction has nothing to log yet. ``options`` is the protocol's subtree
of ``outputs.eve-log.types`` (e.g. ``{"extended": True}``)."""


@dataclass(frozen=True)
class AppLayerSpec:
    """Everything the engine learns about one protocol."""

    name: str  # Suricata's alproto name: "http", "tls", "dns", "ssh", "ftp"
    aliases: tuple[str, ...] = ()  # other names rules use ("http1", "ssl")
    ipprotos: frozenset[int] = frozenset({6})
    default_ports: Mapping[int, tuple[int, ...]] = field(default_factory=dict)  # hint only
    probe: Probe | None = None
    # per IP protocol probes, where the framing differs (DNS: UDP datagram vs TCP length
    # prefix); ``probe`` serves the IP protocols not listed
    probes: Mapping[int, Probe] = field(default_factory=dict)
    probe_depth: int = 32  # bytes a probe may need before it decides
    # make_parser(config, ipproto) -> AppParser; config: the protocol's parsed settings
    make_parser: Callable[[Any, int], AppParser] | None = None
    # parse_config(subtree of app-layer.protocols.<name>) -> settings object handed to
    # make_parser; must not raise for bad values: it returns defaults and the warnings
    parse_config: Callable[[Mapping[str, Any]], tuple[Any, list[str]]] | None = None
    buffers: tuple[BufferSpec, ...] = ()
    keywords: tuple[TxKeyword, ...] = ()
    # EVE event type written per transaction (``tls``, ``dns``...) and its body
    eve_logger: EveLogger | None = None
    # the object added to alerts (``alert.tls``...); defaults to eve_logger
    alert_logger: EveLogger | None = None
    # eve_same_as_alert(options): with these eve-log options, is the event's object the one
    # alert_logger builds? Then the event, alerts and fileinfo of a packet share one object
    eve_same_as_alert: Callable[[Mapping[str, Any]], bool] | None = None
    # more top-level objects of the protocol's events and alerts, beside its own key
    # (SMTP's ``email``): ``{"email": {...}}``, or None
    eve_extra: EveLogger | None = None
    # when is a transaction logged: "complete" (both sides done), "request" (as soon as
    # the to-server side is done: DNS queries) ... the logger's own None also defers
    log_when: Literal["complete", "each_side", "custom"] = "complete"
    # addresses of the event: the flow's (client first, Suricata's LOG_DIR_FLOW: http,
    # tls) or the logged packet's (LOG_DIR_PACKET: dns, a response from the server)
    log_dir: Literal["flow", "packet"] = "flow"
    # with log_dir "packet": whether a logged object is the client's message (its
    # addresses then run client -> server); None: the logging packet's direction
    event_from_client: Callable[[Mapping[str, Any]], bool] | None = None
    # app-layer-event names this protocol raises (without the "<proto>." prefix)
    events: frozenset[str] = frozenset()
    # EVE anomaly events spell the event names in capitals (Suricata's C protocols keep
    # their event tables so: HTTP_... SMTP ... TLS; the Rust ones are lowercase)
    anomaly_upper: bool = False
    # encrypted after its handshake: encryption-handling applies (tls, ssh)
    encrypts: bool = False
    # the raw stream of a message still being parsed waits for the message to complete (or
    # a chunk-size of data) before packet/stream rules see it: the parser's
    # AppLayerParserTriggerRawStreamReassembly at request/response completion (HTTP)
    raw_on_complete: bool = False
    # for_rules(config, keyword names the loaded rules use) -> config: settings that
    # depend on the rule set (TLS ``ja3-fingerprints: auto`` is on when a rule uses ja3)
    for_rules: Callable[[Any, frozenset[str]], Any] | None = None


def add_bounded(events: list[str], name: str, cap: int) -> bool:
    """Append an event unless ``cap`` are kept already (parsers bound every list);
    False when it was dropped (the caller counts it)."""
    if len(events) >= cap:
        return False
    events.append(name)
    return True


_Settings = TypeVar("_Settings")


def settings_parser(parser: Callable[[_Settings], AppParser],
                    settings: type[_Settings]) -> Callable[[Any, int], AppParser]:
    """``make_parser`` of a protocol whose parser takes its settings object alone (the same
    on every IP protocol): anything but such an object (no config loaded) means the
    defaults."""

    def make(config: Any, ipproto: int) -> AppParser:
        return parser(config if isinstance(config, settings) else settings())

    return make


# The parts of a protocol package found by their conventional names: AppLayerSpec field ->
# the name a module of the package exports it under.
_CONVENTIONAL_PARTS = {
    "parse_config": "parse_config", "for_rules": "for_rules", "buffers": "BUFFERS",
    "keywords": "KEYWORDS", "events": "EVENTS", "eve_logger": "eve_logger",
    "alert_logger": "alert_logger", "eve_extra": "eve_extra",
}


def package_spec(name: str, *modules: ModuleType, **specifics: Any) -> AppLayerSpec:
    """The :class:`AppLayerSpec` of a protocol package, its one registration.

    The parts every package has are taken from its ``modules`` by their conventional names
    (``parse_config`` and ``for_rules`` of its config module, ``BUFFERS``, ``KEYWORDS``,
    ``EVENTS``, ``eve_logger``, ``alert_logger``, ``eve_extra``), each from the first module
    that exports it; ``specifics`` say what is the protocol's own (ports, probe, parser
    factory, log policy, differently named loggers) and win over a conventional part."""
    parts: dict[str, Any] = {}
    for field_name, export in _CONVENTIONAL_PARTS.items():
        found = next((getattr(m, export) for m in modules if hasattr(m, export)), None)
        if found is not None:
            parts[field_name] = found
    return AppLayerSpec(name=name, **{**parts, **specifics})
