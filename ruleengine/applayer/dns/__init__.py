"""DNS over UDP and TCP (Suricata's ``rust/src/dns``): probe, parser, transactions,
detection buffers and keywords, EVE logging.

Modules: ``wire`` (message parsing, probes), ``parser`` (:class:`DnsParser`,
:class:`DnsTransaction`, event names), ``config`` (``app-layer.protocols.dns``),
``detect`` (buffers and keywords), ``logger`` (EVE ``dns`` v3/v2, :func:`log_sides`).

Use::

    config, warnings = parse_config(yaml_subtree)
    parser = PROTOCOL.make_parser(config, 17)   # 17: UDP (one datagram per feed), 6: TCP
    parser.feed(True, datagram, ts)
    for tx in parser.transactions:               # one per message (Suricata's model)
        for to_server, obj in log_sides(tx, eve_options): ...
"""

from __future__ import annotations

from typing import Any

from ruleengine.applayer.base import AppParser, ProbeResult, package_spec
from ruleengine.applayer.dns import config, detect, logger, parser
from ruleengine.applayer.dns.config import DnsConfig, parse_config
from ruleengine.applayer.dns.logger import alert_logger, eve_logger, log_sides
from ruleengine.applayer.dns.parser import EVENTS, DnsParser, DnsTransaction
from ruleengine.applayer.dns.wire import (
    HEADER_SIZE,
    Incomplete,
    Malformed,
    header_valid,
    parse_body,
    parse_header,
    probe_tcp,
    probe_udp,
)

PROBE_DEPTH = 1024


def probe(data: bytes, to_server: bool) -> ProbeResult:
    """Either framing, both directions (Suricata registers the same probe for requests
    and responses): a UDP datagram that parses as a DNS message, or a TCP length prefix
    followed by a plausible header. The contract's probe does not say which transport
    the flow uses: :func:`probe_udp_result` / :func:`probe_tcp_result` do."""
    udp = probe_udp_result(data, to_server)
    if udp == "match":
        return "match"
    tcp = probe_tcp_result(data, to_server)
    if tcp == "match":
        return "match"
    return "undecided" if "undecided" in (tcp, udp) else "nomatch"


def _plausible_prefix(message: bytes, dlen: int) -> bool:
    """The first bytes of a longer message: a valid header for ``dlen`` bytes, and the
    sections parse as far as they go (running out of bytes is fine, garbage is not)."""
    try:
        header = parse_header(message)
    except Incomplete:
        return False
    if not header_valid(header, dlen):
        return False
    try:
        parse_body(message, header, 64)
    except Incomplete:
        return True
    except Malformed:
        return False
    return True


def probe_udp_result(data: bytes, to_server: bool) -> ProbeResult:
    """Suricata's UDP probe: the whole datagram parses as a message. A datagram cut at
    :data:`PROBE_DEPTH` by the prober is judged on what it has."""
    if len(data) < HEADER_SIZE:
        return "undecided" if not data else "nomatch"
    is_dns, _, incomplete = probe_udp(data)
    if is_dns:
        return "match"
    if incomplete and len(data) >= PROBE_DEPTH:
        return "match" if _plausible_prefix(data, 0xFFFF) else "nomatch"
    return "nomatch"


def probe_tcp_result(data: bytes, to_server: bool) -> ProbeResult:
    """Suricata's TCP probe (length prefix, then the message), stricter on a partial
    message: Suricata then checks the header only (it probes port 53 only; here every
    TCP flow may be offered), so here the available sections must parse too, and the
    answer waits for the whole message up to :data:`PROBE_DEPTH` bytes."""
    if len(data) < HEADER_SIZE + 2:
        return "undecided"
    dlen = int.from_bytes(data[:2], "big")
    body = data[2:]
    if len(body) >= dlen:
        return "match" if probe_tcp(data)[0] else "nomatch"
    if not _plausible_prefix(body, dlen):
        return "nomatch"
    return "match" if len(data) >= PROBE_DEPTH else "undecided"


def _make_parser(config: Any, ipproto: int) -> AppParser:
    return DnsParser(config if isinstance(config, DnsConfig) else DnsConfig(), tcp=ipproto == 6)


PROTOCOL = package_spec(
    "dns", config, detect, logger, parser,
    ipprotos=frozenset({6, 17}), default_ports={17: (53,), 6: (53,)},
    probe=probe, probes={17: probe_udp_result, 6: probe_tcp_result}, probe_depth=PROBE_DEPTH,
    make_parser=_make_parser,
    # a query is logged as the client's message, a response as the server's
    log_when="each_side", log_dir="packet",
    event_from_client=lambda obj: obj.get("type") in ("request", "query"),
)

__all__ = ["EVENTS", "PROTOCOL", "DnsConfig", "DnsParser", "DnsTransaction", "alert_logger",
           "eve_logger", "log_sides", "parse_config", "probe", "probe_tcp_result",
           "probe_udp_result"]
