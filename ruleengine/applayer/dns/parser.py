"""The DNS parser of one flow (Suricata's ``DNSState`` in ``rust/src/dns/dns.rs``).

Suricata's model, kept here by default: every message is its own transaction — a request
makes a to-server transaction, a response a to-client one (``AppLayerTxData::for_direction``),
and a transaction is complete in both directions as soon as it exists. With
``match_responses`` (an engine option, not Suricata's) a response joins the open request
transaction with the same DNS id instead, and a response without a request stays its own
transaction.

UDP: one datagram per :meth:`DnsParser.feed`. TCP: 2-byte length-prefixed messages, any
number per segment and split anywhere; a zero length is skipped, and a message that does
not parse stops the parser for the flow (Suricata's ``AppLayerResult::err``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ruleengine.applayer.base import add_bounded
from ruleengine.applayer.dns.config import DnsConfig
from ruleengine.applayer.dns.wire import (
    HEADER_SIZE,
    Incomplete,
    Malformed,
    Message,
    header_valid,
    parse_body,
    parse_header,
    probe_tcp,
)

EVENTS = frozenset({
    "malformed_data", "not_request", "not_response", "z_flag_set", "invalid_opcode",
    "name_too_long", "infinite_loop", "too_many_labels", "invalid_additionals",
    "invalid_authorities",
})

# Parser-level anomalies of this engine (no Suricata DNS event has these names).
TOO_MANY_TRANSACTIONS = "too_many_transactions"
TOO_MANY_RECORDS = "too_many_records"

_MAX_TCP_MESSAGE = 0xFFFF + 2


@dataclass(slots=True, eq=False)
class DnsTransaction:
    """``request``/``response``: the parsed :class:`~ruleengine.applayer.dns.wire.Message`
    of each side (one of them is None in Suricata's model). ``tx_id`` counts from 0 per
    flow (Suricata's internal id minus one, the EVE ``tx_id``)."""

    tx_id: int
    ts: float = 0.0
    request: Message | None = None
    response: Message | None = None
    request_progress: int = 0
    response_progress: int = 0
    events: list[str] = field(default_factory=list)
    # Suricata's one-message transaction: the missing side counts as done.
    unidirectional: bool = True
    closed: bool = False
    # (to_server, index) of the EVE objects already returned by logger.eve_logger
    eve_logged: set[tuple[bool, int]] = field(default_factory=set)

    @property
    def request_complete(self) -> bool:
        return (self.request is not None or self.closed
                or (self.unidirectional and self.response is not None))

    @property
    def response_complete(self) -> bool:
        return (self.response is not None or self.closed
                or (self.unidirectional and self.request is not None))

    @property
    def dns_id(self) -> int:
        """The on-the-wire id (the request's when there is one)."""
        message = self.request or self.response
        return message.header.id if message is not None else 0

    @property
    def rcode(self) -> int:
        return self.response.header.rcode if self.response is not None else 0

    def message(self, to_server: bool) -> Message | None:
        return self.request if to_server else self.response

    def add_event(self, name: str) -> None:
        add_bounded(self.events, name, 64)


def _flag_events(message: Message, tx: DnsTransaction, is_request: bool) -> None:
    """Events in Suricata's order (``dns_parse_request`` / ``dns_parse_response``)."""
    header = message.header
    if message.invalid_additionals:
        tx.add_event("invalid_additionals")
    if message.invalid_authorities:
        tx.add_event("invalid_authorities")
    if not is_request and not header.is_response:
        tx.add_event("not_response")
    if header.z:
        tx.add_event("z_flag_set")
    if header.opcode >= 7:
        tx.add_event("invalid_opcode")
    flags = message.name_flags
    if flags.truncated:
        tx.add_event("name_too_long")
    if flags.infinite_loop:
        tx.add_event("infinite_loop")
    if flags.label_limit:
        tx.add_event("too_many_labels")


class DnsParser:
    """Both directions of one DNS flow (UDP when ``tcp`` is False)."""

    def __init__(self, config: DnsConfig | None = None, tcp: bool = False) -> None:
        self.config = config or DnsConfig()
        self.tcp = tcp
        self.transactions: list[DnsTransaction] = []
        self.events: list[str] = []
        self.failed = False
        self._next_id = 0
        self._buf = {True: bytearray(), False: bytearray()}
        self._gap = {True: False, False: False}
        self._closed = {True: False, False: False}
        self.messages_seen = 0

    # ----------------------------------------------------------------- AppParser API
    @property
    def encrypted(self) -> bool:
        return False

    def feed(self, to_server: bool, data: bytes, ts: float = 0.0) -> None:
        if self.failed or not data or self._closed[to_server]:
            return
        try:
            if self.tcp:
                self._feed_tcp(to_server, bytes(data), ts)
            else:
                self._message(to_server, bytes(data), ts, is_tcp=False)
        except Exception:  # pragma: no cover - defensive: never raise for input
            self.failed = True
            self._event("malformed_data")

    def gap(self, to_server: bool, length: int) -> None:
        """A hole in the TCP stream: resynchronise on the next plausible message."""
        if length > 0 and self.tcp:
            self._gap[to_server] = True
            self._buf[to_server].clear()

    def close(self, to_server: bool | None = None) -> None:
        sides = (True, False) if to_server is None else (to_server,)
        for side in sides:
            self._closed[side] = True
            self._buf[side].clear()
        if to_server is None or to_server is False:
            for tx in self.transactions:
                if tx.response is None:
                    tx.closed = True
        if to_server is None or to_server is True:
            for tx in self.transactions:
                if tx.request is None:
                    tx.closed = True

    # ----------------------------------------------------------------- internals
    def _event(self, name: str) -> None:
        """Suricata sets a state event on the newest transaction (none yet: parser)."""
        if self.transactions:
            self.transactions[-1].add_event(name)
        elif len(self.events) < 256:
            self.events.append(name)

    def _parser_event(self, name: str) -> None:
        if len(self.events) < 256:
            self.events.append(name)

    def _feed_tcp(self, to_server: bool, data: bytes, ts: float) -> None:
        buf = self._buf[to_server]
        if self._gap[to_server]:
            is_dns, _, incomplete = probe_tcp(bytes(buf) + data)
            if not (is_dns or incomplete):
                return
            self._gap[to_server] = False
        buf += data
        pos = 0
        size_total = len(buf)
        while size_total - pos >= 2:
            size = (buf[pos] << 8) | buf[pos + 1]
            if size == 0:
                pos += 2
                continue
            if size_total - pos < size + 2:
                break
            msg = bytes(buf[pos + 2:pos + 2 + size])
            pos += size + 2
            if not self._message(to_server, msg, ts, is_tcp=True):
                self.failed = True
                buf.clear()
                return
        del buf[:pos]
        if len(buf) > _MAX_TCP_MESSAGE:  # cannot happen: a message is at most 65537
            buf.clear()

    def _message(self, to_server: bool, msg: bytes, ts: float, is_tcp: bool) -> bool:
        """``parse_request`` / ``parse_response``: False is a parse failure (TCP stops)."""
        self.messages_seen += 1
        if len(msg) < HEADER_SIZE:
            return not is_tcp
        header = parse_header(msg)
        if not header_valid(header, len(msg)):
            return not is_tcp
        try:
            message = parse_body(msg, header, self.config.max_records)
        except (Incomplete, Malformed):
            self._event("malformed_data")
            return False
        if to_server and header.is_response:
            self._event("not_request")
            return False
        if message.records_capped:
            self._parser_event(TOO_MANY_RECORDS)
        tx = None
        if not to_server and self.config.match_responses:
            tx = self._pending_request(header.id)
        if tx is None:
            tx = DnsTransaction(self._next_id, ts=ts,
                                unidirectional=not self.config.match_responses)
            self._next_id += 1
            self.transactions.append(tx)
            while len(self.transactions) > self.config.max_tx:
                self.transactions.pop(0)
                self._parser_event(TOO_MANY_TRANSACTIONS)
        if to_server:
            tx.request = message
            tx.request_progress = 1
        else:
            tx.response = message
            tx.response_progress = 1
        _flag_events(message, tx, to_server)
        return True

    def _pending_request(self, dns_id: int) -> DnsTransaction | None:
        for tx in self.transactions:
            if (tx.request is not None and tx.response is None and not tx.closed
                    and tx.request.header.id == dns_id):
                return tx
        return None
