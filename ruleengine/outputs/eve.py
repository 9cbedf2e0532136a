"""EVE JSON output, shaped like Suricata's (``src/output-json*.c``).

One JSON object per line. Every event validates against Suricata's own schema
(``etc/schema.json``), which is strict, so only fields Suricata writes appear here:

- alert: ``timestamp, flow_id, pcap_cnt, event_type, [vlan], src_ip, src_port, dest_ip,
  dest_port, proto, [icmp_type, icmp_code], [tx_id], alert{...}, [tunnel{...}], [http{...}],
  [app_proto],
  direction, [flow{...}]`` (addresses are the packet's, ``flow`` carries the flow's own
  direction, as in Suricata 7+);
- flow (at flow end): addresses in the flow's direction (initiator is ``src``), ``app_proto``,
  ``flow{pkts_*, bytes_*, [bypassed{...}], start, end, age, state, [bypass], reason,
  alerted}`` and ``tcp{...}`` when the flow knows its TCP flags;
- stats: ``stats{uptime, <counter groups>}``, restricted to counters Suricata's EVE knows
  (``ruleengine/data/eve-stats-counters.json``, taken from the schema);
- http (one per transaction) and drop (IPS) events, when the caller writes them.

Optional, as in Suricata's eve-log: ``verdict{}`` on alerts and drops, ``community_id``,
``host`` (sensor-name), ``in_iface``.

Where the lines go is the sink's business (``ruleengine.outputs.sinks``: eve-log's
``filetype`` regular, unix_dgram, unix_stream, syslog or redis). The regular file is opened
with ``O_APPEND`` and every ``write()`` carries whole lines only, so several worker processes
may append to one file without interleaving.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import socket
import struct
import time
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from ruleengine.applayer import registry
from ruleengine.applayer.files import AppFile, fileinfo_object
from ruleengine.applayer.jsontext import as_int
from ruleengine.applayer.jsontext import text as _text
from ruleengine.config.values import is_true
from ruleengine.outputs.sinks import FileSink, Sink
from ruleengine.outputs.sinks import OutputError as OutputError  # re-exported
from ruleengine.outputs.stats import nest

EVENT_TYPES = frozenset({"alert", "drop", "flow", "http", "stats"})

# IANA protocol names as Suricata prints them (src/util-proto-name.c); others print as numbers.
PROTO_NAMES: dict[int, str] = {
    0: "HOPOPT", 1: "ICMP", 2: "IGMP", 4: "IPv4", 6: "TCP", 8: "EGP", 9: "IGP", 17: "UDP",
    27: "RDP", 33: "DCCP", 41: "IPv6", 43: "IPv6-Route", 44: "IPv6-Frag", 46: "RSVP",
    47: "GRE", 50: "ESP", 51: "AH", 58: "IPv6-ICMP", 59: "IPv6-NoNxt", 60: "IPv6-Opts",
    88: "EIGRP", 89: "OSPFIGP", 94: "IPIP", 103: "PIM", 112: "VRRP", 115: "L2TP", 132: "SCTP",
    136: "UDPLite", 137: "MPLS-in-IP",
}
_PORT_PROTOS = frozenset({6, 17, 132, 33, 136})
_ICMP_PROTOS = frozenset({1, 58})

BYPASS_NONE = 0
BYPASS_LOCAL = 1
BYPASS_CAPTURE = 2

_TCP_FLAG_NAMES = (
    (0x01, "fin"), (0x02, "syn"), (0x04, "rst"), (0x08, "psh"),
    (0x10, "ack"), (0x20, "urg"), (0x40, "ecn"), (0x80, "cwr"),
)

# PrintStringsToBuffer: printable ASCII, CR and LF kept, every other byte a '.'
_PRINTABLE = bytes(c if 0x20 <= c < 0x7F or c in (0x0A, 0x0D) else 0x2E for c in range(256))

_LINE_BREAKERS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


# --- what the writer reads from other stages' objects ----------------------------------


class PacketLike(Protocol):
    """The fields of ``ruleengine.decode.packet.Packet`` an alert uses."""

    @property
    def ts(self) -> float: ...
    @property
    def ip_version(self) -> int: ...
    @property
    def src(self) -> bytes: ...
    @property
    def dst(self) -> bytes: ...
    @property
    def proto(self) -> int: ...
    @property
    def sport(self) -> int: ...
    @property
    def dport(self) -> int: ...
    @property
    def icmp_type(self) -> int: ...
    @property
    def icmp_code(self) -> int: ...
    @property
    def vlan(self) -> tuple[int, ...]: ...


class FlowLike(Protocol):
    """The fields of ``ruleengine.flow.table.Flow`` the writer uses.

    ``src``/``sport`` is the flow's initiator (the client). ``pkts_*``/``bytes_*`` are the
    flow's totals, bypassed traffic included (the flow table counts every packet it sees and
    ``ruleengine.bypass`` adds the kernel's counters of a capture-bypassed flow when it ends).
    ``bypassed_*`` (optional attributes) are the part of those totals that was bypassed:
    seen-but-not-inspected packets for a local bypass (``Flow.count_bypassed``), the
    kernel's counters for a capture bypass.
    ``bypass``: 0 none, 1 local, 2 capture. Optional: ``tcp_flags_ts``, ``tcp_flags_tc``
    (OR of TCP flags seen per direction), ``tcp_state`` (Suricata's TCP state name).
    """

    @property
    def flow_id(self) -> int: ...
    @property
    def proto(self) -> int: ...
    @property
    def src(self) -> bytes: ...
    @property
    def dst(self) -> bytes: ...
    @property
    def sport(self) -> int: ...
    @property
    def dport(self) -> int: ...
    @property
    def start_ts(self) -> float: ...
    @property
    def last_ts(self) -> float: ...
    @property
    def pkts_toserver(self) -> int: ...
    @property
    def pkts_toclient(self) -> int: ...
    @property
    def bytes_toserver(self) -> int: ...
    @property
    def bytes_toclient(self) -> int: ...
    @property
    def state(self) -> str: ...
    @property
    def bypass(self) -> int: ...


class RuleLike(Protocol):
    """The fields of ``ruleengine.rules.model.Rule`` an alert uses (``metadata`` optional:
    a list of ``"key value"`` strings, as the rule wrote them)."""

    @property
    def sid(self) -> int: ...
    @property
    def gid(self) -> int: ...
    @property
    def rev(self) -> int: ...
    @property
    def msg(self) -> str: ...


class HttpTxLike(Protocol):
    """An HTTP transaction (``ruleengine.applayer.http1.tx.HttpTransaction``). Every field
    may be None (not seen yet); text fields may be ``bytes`` or ``str``. Optional attributes:
    ``tx_id``, ``content_type``, ``referer``, ``host_port``."""

    @property
    def hostname(self) -> Any: ...
    @property
    def url(self) -> Any: ...
    @property
    def user_agent(self) -> Any: ...
    @property
    def method(self) -> Any: ...
    @property
    def protocol(self) -> Any: ...
    @property
    def status(self) -> Any: ...
    @property
    def length(self) -> Any: ...


# --- formatting helpers ----------------------------------------------------------------


_ts_cache: tuple[int, str] = (-1, "")
_YEAR_10000 = 253402300800.0


_MAX_EVENTS_PER_TX = 256  # DNS v2: one event per query/answer; bounded
_NO_OPTIONS: Mapping[str, Any] = MappingProxyType({})


def app_object(alproto: str, tx: Any, options: Mapping[str, Any] | None = None,
               *, alert: bool = False) -> dict[str, Any] | None:
    """The protocol's EVE object for a transaction (``"tls": {...}``), from its logger in
    the app-layer registry; None when it has none or nothing to log yet."""
    spec = registry.by_name().get(alproto)
    if spec is None:
        return None
    logger = (spec.alert_logger or spec.eve_logger) if alert else spec.eve_logger
    if logger is None:
        return None
    return logger(tx, options or {})


def app_extra(alproto: str, tx: Any, options: Mapping[str, Any] | None = None
              ) -> dict[str, Any]:
    """The protocol's further top-level objects (SMTP's ``email``), possibly empty."""
    spec = registry.by_name().get(registry.canonical(alproto) or alproto)
    if spec is None or spec.eve_extra is None:
        return {}
    return spec.eve_extra(tx, options or {}) or {}


def format_ts(ts: float) -> str:
    """Suricata's EVE timestamp, in UTC: ``2026-11-25T15:42:02.123456+0000``."""
    global _ts_cache
    if not (math.isfinite(ts) and 0 <= ts < _YEAR_10000):
        ts = 0.0  # junk from a hostile capture: print the epoch rather than fail
    micros = round(ts * 1_000_000)
    sec, usec = divmod(micros, 1_000_000)
    cached_sec, prefix = _ts_cache
    if sec != cached_sec:
        try:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        except (OverflowError, OSError, ValueError):
            prefix = "1970-01-01T00:00:00"
        _ts_cache = (sec, prefix)
    return f"{prefix}.{usec:06d}+0000"


def format_ip(addr: bytes) -> str:
    """An address as Suricata prints it (glibc ``inet_ntop``: compressed IPv6, ``::ffff:a.b.c.d``
    for mapped IPv4)."""
    try:
        if len(addr) == 4:
            return socket.inet_ntop(socket.AF_INET, addr)
        if len(addr) == 16:
            return socket.inet_ntop(socket.AF_INET6, addr)
    except (OSError, ValueError):
        pass
    return addr.hex()


def proto_name(proto: int) -> str:
    return PROTO_NAMES.get(proto, str(proto))


text = _text
_as_int = as_int


@cache
def eve_stats_counters() -> frozenset[str]:
    """The dotted counter names Suricata's EVE stats object may carry (from its schema)."""
    data = resources.files("ruleengine.data").joinpath("eve-stats-counters.json").read_text()
    names = json.loads(data)
    return frozenset(str(n) for n in names)


_LIST_TOTALS = ("entries", "reloads", "errors", "kernel_errors")


def bypass_list_object(counters: Mapping[str, int]) -> dict[str, Any] | None:
    """The ``bypass_list`` object of a stats event (eve-log ``- stats: bypass-lists: yes``;
    a ruleengine addition, outside Suricata's stats schema, hence off by default): the
    totals, and per entry (``file:line``) its packets and bytes. None without lists."""
    if "bypass_list.entries" not in counters:
        return None
    out: dict[str, Any] = {k: int(counters.get(f"bypass_list.{k}", 0)) for k in _LIST_TOTALS}
    entries: dict[str, dict[str, int]] = {}
    for name, value in counters.items():
        if not name.startswith("bypass_list.") or name.count(":") == 0:
            continue
        label, _, field = name[len("bypass_list."):].rpartition(".")
        if field in ("pkts", "bytes"):
            entries.setdefault(label, {"pkts": 0, "bytes": 0})[field] = int(value)
    out["pkts"] = sum(e["pkts"] for e in entries.values())
    out["bytes"] = sum(e["bytes"] for e in entries.values())
    out["entries_hit"] = [{"entry": label, **c} for label, c in sorted(entries.items())
                          if c["pkts"] or c["bytes"]]
    return out


_REJECT_TARGETS = {"reject": "to_client", "rejectsrc": "to_client", "rejectdst": "to_server",
                   "rejectboth": "both"}


def verdict_object(action: str, *, ips: bool, proto: int) -> dict[str, Any]:
    """EVE ``verdict`` for a packet whose final action is ``action`` (the rule action that
    decided it: ``alert``, ``drop``, ``pass``, ``reject``, ``rejectsrc``, ``rejectdst``,
    ``rejectboth``), as Suricata's ``EveAddVerdict``."""
    action = action.lower()
    target = _REJECT_TARGETS.get(action)
    if target is not None:
        return {
            "action": "drop" if ips else "alert",
            "reject_target": target,
            "reject": ["tcp-reset" if proto == 6 else "icmp-prohib"],
        }
    if action == "drop" and ips:
        return {"action": "drop"}
    if action == "pass":
        return {"action": "pass"}
    return {"action": "alert"}


def _add_variables(event: dict[str, Any], variables: Mapping[str, Any] | None) -> None:
    """Rule variables into an event (EveAddMetadata): ``traffic`` (flowbits named
    ``traffic/id/..`` and ``traffic/label/..``) at the top level, the rest in ``metadata``."""
    if not variables:
        return
    rest = dict(variables)
    traffic = rest.pop("traffic", None)
    if traffic:
        event["traffic"] = traffic
    if rest:
        event["metadata"] = rest


def _metadata(rule: Any) -> dict[str, list[str]] | None:
    """Rule ``metadata`` as EVE's ``alert.metadata``: key -> list of values."""
    items = getattr(rule, "metadata", None)
    if not items:
        return None
    out: dict[str, list[str]] = {}
    for item in items:
        if isinstance(item, tuple) and len(item) == 2:
            key, value = str(item[0]), str(item[1])
        else:
            key, _, value = str(item).strip().partition(" ")
            value = value.strip()
        if key:
            out.setdefault(key, []).append(value)
    return out or None


_ICMP4_PAIRS = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17}
_ICMP6_PAIRS = {128: 129, 129: 128, 130: 131, 131: 130, 133: 134, 134: 133, 135: 136,
                136: 135, 139: 140, 140: 139, 144: 145, 145: 144}


def community_id(seed: int, src: bytes, dst: bytes, sport: int, dport: int, proto: int,
                 icmp_type: int = -1, icmp_code: int = -1) -> str:
    """Community ID v1 (corelight community-id-spec, as Suricata's ``community-id: yes``):
    ``1:`` + base64(SHA-1(seed, ordered endpoints, proto, ports)). For ICMP the "ports" are
    the type and its reply type (or the code for one-way messages)."""
    one_way = False
    if proto in _ICMP_PROTOS and icmp_type >= 0:
        pairs = _ICMP4_PAIRS if proto == 1 else _ICMP6_PAIRS
        sport = icmp_type
        one_way = icmp_type not in pairs
        dport = max(icmp_code, 0) if one_way else pairs[icmp_type]
    if not one_way and (src, sport) > (dst, dport):
        src, dst, sport, dport = dst, src, dport, sport
    data = struct.pack("!H", seed & 0xFFFF) + src + dst + struct.pack(
        "!BBHH", proto & 0xFF, 0, sport & 0xFFFF, dport & 0xFFFF)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode("ascii")


def _drop_fields(pkt: Any) -> dict[str, Any]:
    """The ``drop`` object's header fields from a ``Packet`` (missing fields are skipped)."""
    body: dict[str, Any] = {}

    def num(name: str) -> int | None:
        value = getattr(pkt, name, None)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    ip_len, ttl = num("ip_len"), num("ttl")
    if getattr(pkt, "ip_version", 0) == 6:
        if ip_len is not None:
            body["len"] = max(ip_len - 40, 0)  # IPv6 payload length
        if ttl is not None:
            body["hoplimit"] = ttl
    else:
        if ip_len is not None:
            body["len"] = ip_len
        if ttl is not None:
            body["ttl"] = ttl
        ip_id = num("ip_id")
        if ip_id is not None:
            body["ipid"] = ip_id
    proto = getattr(pkt, "proto", 0)
    if proto == 6:
        for field_name, key in (("seq", "tcpseq"), ("ack", "tcpack"), ("window", "tcpwin")):
            value = num(field_name)
            if value is not None:
                body[key] = value
        flags = num("tcp_flags") or 0
        for bit, name in _TCP_FLAG_NAMES[:6]:
            body[name] = bool(flags & bit)
        header = getattr(pkt, "l4_header", b"")
        if isinstance(header, bytes | bytearray) and len(header) >= 20:
            body["tcpres"] = header[12] & 0x0F
            body["tcpurgp"] = int.from_bytes(header[18:20], "big")
    elif proto == 17:
        header = getattr(pkt, "l4_header", b"")
        if isinstance(header, bytes | bytearray) and len(header) >= 8:
            body["udplen"] = int.from_bytes(header[4:6], "big")
    return body


def _tunnel_object(tunnel: tuple[int, bytes, bytes, int, int, int, int],
                   pcap_cnt: int | None) -> dict[str, Any]:
    """output-json-alert.c AlertJsonTunnel: the outermost packet's addresses (ports 0 when
    it has none, as Suricata writes them), the tunnel depth, the root's pcap_cnt and
    pkt_src (the root packet always comes from the capture)."""
    _ver, src, dst, sport, dport, proto, depth = tunnel
    obj: dict[str, Any] = {
        "src_ip": format_ip(src),
        "src_port": int(sport),
        "dest_ip": format_ip(dst),
        "dest_port": int(dport),
        "proto": proto_name(proto),
        "depth": int(depth),
    }
    if pcap_cnt:
        obj["pcap_cnt"] = int(pcap_cnt)
    obj["pkt_src"] = "wire/pcap"
    return obj


def _tcp_flags(flags: int) -> str:
    return f"{flags & 0xFF:02x}"


# --- the writer ------------------------------------------------------------------------


class EveWriter:
    """Writes EVE events to ``path``.

    ``types``: the event types to write (``None``: all). ``append``: keep what the file holds
    (worker processes appending to the parent's file pass True). ``host``: Suricata's
    ``sensor-name``, added as ``host`` to every event. ``in_iface``: the capture interface
    (live runs). ``community_id_seed``: add ``community_id`` to events of a flow (eve-log's
    ``community-id: yes`` with ``community-id-seed``). Write errors after opening never
    raise: they are counted in ``write_errors`` and the first one is kept in ``last_error``.
    """

    def __init__(self, path: str | Path, *, types: set[str] | frozenset[str] | None = None,
                 append: bool = False, host: str | None = None,
                 in_iface: str | None = None, community_id_seed: int | None = None,
                 type_options: Mapping[str, Mapping[str, Any]] | None = None,
                 sink: Sink | None = None, prefix: str = "",
                 netflow: bool = False) -> None:
        self.path = Path(path)
        # netflow records are opt-in (eve-log types ``- netflow``), as in Suricata
        self.netflow_enabled = netflow or (types is not None and "netflow" in types)
        # per event type, its options from outputs.eve-log.types (``tls: {extended: yes}``)
        self.type_options: Mapping[str, Mapping[str, Any]] = dict(type_options or {})
        self.community_id_seed = community_id_seed
        self.types = None if types is None else frozenset(types)
        self.host = host
        self.in_iface = in_iface
        self.events = 0
        # where the lines go: eve-log's filetype (default: the regular file ``path``)
        self.sink: Sink = sink if sink is not None else FileSink(self.path, append=append)
        self._prefix = prefix  # eve-log ``prefix``, before every record (e.g. "@cee: ")
        self._dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
        # The alert-style app object (alerts, fileinfo) of a transaction, reused by the
        # events of one packet: ``stamp`` is set by the caller each time transactions may
        # have changed (the pipeline: every packet and flow end); None: no reuse. The
        # objects are shared by those events, so nothing may change them once built.
        self.stamp: int | None = None
        self._objects_stamp: int | None = None
        self._objects: dict[tuple[int, str], tuple[Any, Any, dict[str, Any] | None]] = {}
        self._same_alert: dict[str, bool] = {}

    def _alert_object(self, alproto: str, tx: Any, options: Mapping[str, Any] | None
                      ) -> dict[str, Any] | None:
        """``app_object(alert=True)``, once per transaction and stamp."""
        stamp = self.stamp
        if stamp is None:
            return app_object(alproto, tx, options, alert=True)
        options = options or _NO_OPTIONS  # None and {} alike: one entry for all callers
        cache = self._objects
        if stamp != self._objects_stamp:
            cache.clear()
            self._objects_stamp = stamp
        key = (id(tx), alproto)
        hit = cache.get(key)
        # the entry holds tx and options: their ids cannot be reused while it lives
        if hit is not None and hit[0] is tx and hit[1] is options:
            return hit[2]
        obj = app_object(alproto, tx, options, alert=True)
        cache[key] = (tx, options, obj)
        return obj

    def _same_as_alert(self, name: str, spec: Any) -> bool:
        """Does the protocol's event object equal its alert object under this writer's
        options (asked once per protocol)?"""
        known = self._same_alert.get(name)
        if known is None:
            same = spec.eve_same_as_alert
            options = self.type_options.get(name) or _NO_OPTIONS
            known = same is not None and spec.alert_logger is not None and bool(same(options))
            self._same_alert[name] = known
        return known

    # --- events --------------------------------------------------------------------

    def wants(self, event_type: str) -> bool:
        return self.types is None or event_type in self.types

    def alert(self, *, ts: float, flow: FlowLike | None, pkt: PacketLike, rule: RuleLike,
              action: str, to_server: bool, tx: HttpTxLike | None, app_proto: str | None,
              category: str | None, severity: int, tx_id: int | None = None,
              pcap_cnt: int | None = None, verdict: Mapping[str, Any] | None = None,
              variables: Mapping[str, Any] | None = None, stream: bool = False,
              frame: bytes | memoryview | None = None, linktype: int = 1,
              stream_data: bytes | None = None) -> None:
        """One alert. ``action``: ``"allowed"`` or ``"blocked"``. ``tx_id`` defaults to the
        transaction's own ``tx_id``; ``pcap_cnt`` is the packet's number in the pcap (None
        for pseudo packets, e.g. at flow timeout). ``verdict``: the packet's final verdict
        (``verdict_object``), written when eve-log's ``alert: verdict: yes`` is set.
        ``variables``: the top-level ``metadata`` (flowbits, flowints, flowvars, pktvars;
        Suricata's EveAddMetadata, on by default). ``stream``: the rule matched on
        reassembled stream or transaction data (EVE ``stream``); ``frame``/``linktype``:
        the captured frame, for the ``packet`` option; ``stream_data``: the matched
        direction's last reassembled bytes (``payload-buffer-size``)."""
        if not self.wants("alert"):
            return
        tunnel = getattr(pkt, "tunnel", None)
        # a tunnel's inner packet has no pcap_cnt of its own in Suricata (the tunnel packet
        # is not read from the file): the count is the root's, in the tunnel object
        event = self._header(ts, "alert", flow.flow_id if flow is not None else None,
                             pcap_cnt if tunnel is None else None)
        self._packet_addresses(event, pkt)
        if flow is not None:
            self._community_id(event, flow, pkt)
        if tx_id is None and tx is not None:
            tx_id = _as_int(getattr(tx, "tx_id", None))
        if tx_id is not None:
            event["tx_id"] = tx_id
        alert: dict[str, Any] = {
            "action": action,
            "gid": int(rule.gid),
            "signature_id": int(rule.sid),
            "rev": int(rule.rev),
            "signature": rule.msg or "",
            "category": category or "",
            "severity": int(severity),
        }
        metadata = _metadata(rule)
        if metadata:
            alert["metadata"] = metadata
        event["alert"] = alert
        if tunnel is not None:
            event["tunnel"] = _tunnel_object(tunnel, pcap_cnt)
        if tx is not None:
            obj = self._alert_object(app_proto or "http", tx,
                                     self.type_options.get(app_proto or "")) \
                if (app_proto or "http") != "failed" else None
            if obj:
                event[registry.canonical(app_proto or "http") or "http"] = obj
            event.update(app_extra(app_proto or "", tx, self.type_options.get(app_proto or "")))
        if flow is not None:
            # as output-json-alert.c: app_proto, direction and flow{} only for packets of a flow
            if app_proto:
                event["app_proto"] = app_proto
            event["direction"] = "to_server" if to_server else "to_client"
            flow_obj = self._flow_counts(flow)
            flow_obj["start"] = format_ts(flow.start_ts)
            flow_obj["src_ip"] = format_ip(flow.src)
            flow_obj["dest_ip"] = format_ip(flow.dst)
            if flow.proto in _PORT_PROTOS:
                flow_obj["src_port"] = int(flow.sport)
                flow_obj["dest_port"] = int(flow.dport)
            event["flow"] = flow_obj
        _add_variables(event, variables)
        self._alert_payload(event, pkt, stream=stream and pkt.proto == 6, frame=frame,
                            linktype=linktype, stream_data=stream_data)
        if verdict:
            event["verdict"] = dict(verdict)
        self._emit(event)

    def _alert_payload(self, event: dict[str, Any], pkt: PacketLike, *, stream: bool,
                       frame: bytes | memoryview | None, linktype: int,
                       stream_data: bytes | None = None) -> None:
        """eve-log ``alert`` options ``payload`` (base64), ``payload-printable``,
        ``payload-length`` and ``packet`` (the captured frame, base64, with
        ``packet_info.linktype``), as output-json-alert.c writes them. A stream or
        transaction match on TCP logs the matched direction's reassembled data (at most
        ``payload-buffer-size``), else the packet's payload (Suricata's fallback), with
        ``stream: 1``."""
        options = self.type_options.get("alert") or {}
        base64_on = is_true(options.get("payload", False))
        printable_on = is_true(options.get("payload-printable", False))
        length_on = is_true(options.get("payload-length", False))
        if base64_on or printable_on or length_on:
            payload = stream_data if stream and stream_data else \
                bytes(getattr(pkt, "payload", b"") or b"")
            if base64_on:
                event["payload"] = base64.b64encode(payload).decode("ascii")
            if length_on:
                event["payload_length"] = len(payload)
            if printable_on:
                event["payload_printable"] = payload.translate(_PRINTABLE).decode("ascii")
            event["stream"] = 1 if stream else 0
        if is_true(options.get("packet", False)) and frame:
            event["packet"] = base64.b64encode(bytes(frame)).decode("ascii")
            event["packet_info"] = {"linktype": int(linktype)}

    def tagged_packet(self, *, ts: float, flow: FlowLike | None, pkt: Any,
                      pcap_cnt: int | None = None) -> None:
        """A packet tagged by a ``tag`` rule: a ``packet`` event, as the alert logger
        writes it when its option ``tagged-packets`` is on (off by default, on in the
        stock suricata.yaml). The decoder keeps no link layer, so the raw IP packet is
        logged with linktype 12 (DLT_RAW)."""
        options = self.type_options.get("alert") or {}
        if not self.wants("alert") or not is_true(options.get("tagged-packets")):
            return
        event = self._header(ts, "packet", flow.flow_id if flow is not None else None,
                             pcap_cnt)
        self._packet_addresses(event, pkt)
        raw = bytes(getattr(pkt, "ip_header", b"") or b"") + \
            bytes(getattr(pkt, "l4_header", b"") or b"") + bytes(pkt.payload)
        event["packet"] = base64.b64encode(raw).decode("ascii")
        event["packet_info"] = {"linktype": 12}
        self._emit(event)

    def http(self, *, ts: float, flow: FlowLike, tx: HttpTxLike, tx_id: int | None = None,
             pcap_cnt: int | None = None) -> None:
        """An ``http`` transaction event (addresses in the flow's direction, as Suricata's
        ``LOG_DIR_FLOW``), written once per completed transaction by the caller."""
        if not self.wants("http"):
            return
        event = self._header(ts, "http", flow.flow_id, pcap_cnt)
        self._flow_addresses(event, flow)
        self._community_id(event, flow, None)
        if tx_id is None:
            tx_id = _as_int(getattr(tx, "tx_id", None))
        if tx_id is not None:
            event["tx_id"] = tx_id
        event["http"] = self._http(tx)
        self._emit(event)

    def drop(self, *, ts: float, flow: FlowLike | None, pkt: Any, to_server: bool,
             reason: str | None = None, rule: RuleLike | None = None,
             category: str | None = None, severity: int = 3, pcap_cnt: int | None = None,
             verdict: Mapping[str, Any] | None = None) -> None:
        """A dropped packet (IPS), as Suricata's ``drop`` event (``output-json-drop.c``):
        IP and TCP/UDP header fields, ``reason`` (Suricata's drop reason text, e.g.
        ``"rules"``, ``"stream midstream"``) and, with ``rule``, the alert that dropped it.
        ``pkt`` is a ``Packet`` (header fields are read when present)."""
        if not self.wants("drop"):
            return
        event = self._header(ts, "drop", flow.flow_id if flow is not None else None, pcap_cnt)
        self._packet_addresses(event, pkt)
        if flow is not None:
            self._community_id(event, flow, pkt)
            event["direction"] = "to_server" if to_server else "to_client"
        body = _drop_fields(pkt)
        if reason:
            body["reason"] = reason
        if verdict:
            body["verdict"] = dict(verdict)
        event["drop"] = body
        if rule is not None:
            event["alert"] = {
                "action": "blocked", "gid": int(rule.gid), "signature_id": int(rule.sid),
                "rev": int(rule.rev), "signature": rule.msg or "", "category": category or "",
                "severity": int(severity),
            }
        self._emit(event)

    def app_tx(self, alproto: str, *, ts: float, flow: FlowLike, tx: Any,
               flow_end: bool = False, pcap_cnt: int | None = None,
               pkt: PacketLike | None = None) -> bool:
        """The protocol's transaction events (``tls``, ``dns``, ``http``...) from its
        registry logger. The logger is asked until it has nothing more (DNS v2 writes one
        event per query); False when it had nothing to log yet (retried later)."""
        name = registry.canonical(alproto) or alproto
        if not self.wants(name):
            return True
        spec = registry.by_name().get(name)
        logger = spec.eve_logger if spec is not None else None
        if logger is None:
            return True
        options = self.type_options.get(name) or {}
        shared = spec is not None and self._same_as_alert(name, spec)
        wrote = False
        for _ in range(_MAX_EVENTS_PER_TX):
            # the alert-style object when it is the same: fileinfo and alerts of this
            # packet then reuse it instead of building it again
            obj = self._alert_object(name, tx, self.type_options.get(name) or _NO_OPTIONS) \
                if shared else logger(tx, options)
            if not obj:
                break
            event = self._header(ts, name, flow.flow_id, pcap_cnt)
            if spec is not None and spec.log_dir == "packet" \
                    and spec.event_from_client is not None:
                self._flow_addresses(event, flow, reverse=not spec.event_from_client(obj))
            elif pkt is not None and spec is not None and spec.log_dir == "packet":
                self._packet_addresses(event, pkt)
            else:
                self._flow_addresses(event, flow)
            self._community_id(event, flow, None)
            tx_id = _as_int(getattr(tx, "tx_id", None))
            if tx_id is not None:
                event["tx_id"] = tx_id
            event[name] = obj
            event.update(app_extra(name, tx, options))
            self._emit(event)
            wrote = True
            if spec is not None and spec.log_when != "each_side":
                break  # one event per transaction
        return wrote or flow_end

    def anomaly(self, alproto: str, event_name: str, *, ts: float, flow: FlowLike,
                pkt: PacketLike | None, tx_id: int | None, layer: str = "proto_parser",
                pcap_cnt: int | None = None) -> None:
        """An app-layer anomaly (``output-json-anomaly.c``): the parser's event on the
        packet that raised it, ``{"app_proto", "type": "applayer", "event", "layer"}``.
        ``event_name`` is the engine's ``<proto>.<event>``; EVE spells it as Suricata's
        event table does (capitals for HTTP, TLS and SMTP)."""
        name = registry.canonical(alproto) or alproto
        spec = registry.by_name().get(name)
        event_text = event_name.split(".", 1)[1] if event_name.startswith(f"{name}.") \
            else event_name
        if spec is not None and spec.anomaly_upper:
            event_text = event_text.upper()
        event = self._header(ts, "anomaly", flow.flow_id, pcap_cnt)
        if pkt is not None:
            self._packet_addresses(event, pkt)
        else:
            self._flow_addresses(event, flow)
        self._community_id(event, flow, pkt)
        if tx_id is not None:
            event["tx_id"] = tx_id
        event["anomaly"] = {"app_proto": name, "type": "applayer", "event": event_text,
                            "layer": layer}
        self._emit(event)

    def fileinfo(self, alproto: str, *, ts: float, flow: FlowLike, tx: Any, file: AppFile,
                 pcap_cnt: int | None = None) -> None:
        """A file of a transaction, once it is closed or truncated (``output-json-file.c``):
        addresses in the file's direction (a download runs server -> client), the
        protocol's transaction object, ``app_proto``, ``fileinfo``."""
        name = registry.canonical(alproto) or alproto
        event = self._header(ts, "fileinfo", flow.flow_id, pcap_cnt)
        self._flow_addresses(event, flow, reverse=not file.to_server)
        self._community_id(event, flow, None)
        options = self.type_options.get(name) or _NO_OPTIONS
        # the transaction's metadata object, as alerts carry it (EveHttpAddMetadata)
        obj = self._alert_object(name, tx, options)
        if obj:
            event[name] = obj
        event.update(app_extra(name, tx, options))
        event["app_proto"] = name
        event["fileinfo"] = fileinfo_object(file)
        self._emit(event)

    def flow(self, flow: FlowLike, *, app_proto: str | None, alerted: bool, reason: str,
             bypass_reason: str | None = None,
             bypass_accounting: Mapping[str, Any] | None = None,
             variables: Mapping[str, Any] | None = None, action: str | None = None,
             exception_policies: Sequence[tuple[str, str]] = ()) -> None:
        """The flow's end record. ``reason``: ``timeout``, ``forced`` or ``shutdown``.
        ``variables``: the flow's flowbits, flowints and flowvars (as in alerts)."""
        if not self.wants("flow"):
            return
        event = self._header(flow.last_ts, "flow", flow.flow_id, None)
        self._flow_addresses(event, flow)
        self._community_id(event, flow, None)
        if app_proto:
            event["app_proto"] = app_proto
        body = self._flow_counts(flow)
        body["start"] = format_ts(flow.start_ts)
        body["end"] = format_ts(flow.last_ts)
        body["age"] = max(0, int(flow.last_ts) - int(flow.start_ts))
        bypass = int(flow.bypass or 0)
        if bypass:
            body["bypass"] = "capture" if bypass == BYPASS_CAPTURE else "local"
            body["state"] = "bypassed"
            # the flow schema has no field for these: flowvars, as rules' vars are logged
            extra: list[dict[str, Any]] = []
            if bypass_reason:
                extra.append({"bypass_reason": bypass_reason})
            if bypass_accounting is not None:
                extra.append({"bypass_accounting": {
                    "time": format_ts(float(getattr(flow, "bypass_ts", 0.0) or 0.0)),
                    **bypass_accounting}})
            if extra:
                flowvars = list((variables or {}).get("flowvars") or [])
                variables = {**(variables or {}), "flowvars": [*flowvars, *extra]}
        else:
            body["state"] = flow.state or "new"
        body["reason"] = reason or "unknown"
        body["alerted"] = bool(alerted)
        if action:  # the flow was passed or dropped as a whole
            body["action"] = action
        if exception_policies:
            body["exception_policy"] = [{"target": target, "policy": policy}
                                        for target, policy in exception_policies]
        event["flow"] = body
        tcp = self._tcp(flow)
        if tcp:
            event["tcp"] = tcp
        _add_variables(event, variables)
        self._emit(event)

    def netflow(self, flow: FlowLike) -> None:
        """The flow's two unidirectional records (``output-json-netflow.c``): client to
        server, and server to client when the server sent any packet; each with its own
        addresses, packet/byte counts, TTL range and TCP flags. Only when ``netflow`` is
        listed in eve-log ``types`` (``netflow_enabled``; off in Suricata's default
        configuration)."""
        if not self.netflow_enabled:
            return
        self._netflow_side(flow, to_server=True)
        if flow.pkts_toclient:
            self._netflow_side(flow, to_server=False)

    def _netflow_side(self, flow: FlowLike, *, to_server: bool) -> None:
        event = self._header(flow.last_ts, "netflow", flow.flow_id, None)
        self._flow_addresses(event, flow, reverse=not to_server)
        self._community_id(event, flow, None)
        alproto = getattr(flow, "alproto_ts" if to_server else "alproto_tc", None) \
            or getattr(flow, "alproto", None)
        if alproto:
            event["app_proto"] = alproto
        side = "toserver" if to_server else "toclient"
        body: dict[str, Any] = {
            "pkts": int(getattr(flow, f"pkts_{side}")),
            "bytes": int(getattr(flow, f"bytes_{side}")),
            "start": format_ts(flow.start_ts),
            "end": format_ts(flow.last_ts),
            "age": max(0, int(flow.last_ts) - int(flow.start_ts)),
        }
        if body["pkts"]:
            body["min_ttl"] = int(getattr(flow, f"min_ttl_{side}", 0) or 0)
            body["max_ttl"] = int(getattr(flow, f"max_ttl_{side}", 0) or 0)
        event["netflow"] = body
        if flow.proto == 6:
            tcp = self._tcp(flow) or {}
            key = "tcp_flags_ts" if to_server else "tcp_flags_tc"
            flags = int(tcp.get(key, "00"), 16)
            event["tcp"] = {"tcp_flags": _tcp_flags(flags),
                            **{name: True for bit, name in _TCP_FLAG_NAMES if flags & bit}}
        self._emit(event)

    def stats(self, ts: float, uptime: float, counters: Mapping[str, int]) -> None:
        """A stats event from dotted counters; counters EVE does not know are left out."""
        if not self.wants("stats"):
            return
        nested = nest(counters, eve_stats_counters())
        event = self._header(ts, "stats", None, None)
        up = int(uptime) if math.isfinite(uptime) else 0
        event["stats"] = {"uptime": max(0, up), **nested}
        options = self.type_options.get("stats") or _NO_OPTIONS
        if is_true(options.get("bypass-lists")):
            lists = bypass_list_object(counters)
            if lists is not None:
                event["stats"]["bypass_list"] = lists
        self._emit(event)

    # --- pieces --------------------------------------------------------------------

    def _header(self, ts: float, event_type: str, flow_id: int | None,
                pcap_cnt: int | None) -> dict[str, Any]:
        event: dict[str, Any] = {"timestamp": format_ts(ts)}
        if flow_id is not None:
            event["flow_id"] = int(flow_id)
        if self.in_iface:
            event["in_iface"] = self.in_iface
        if pcap_cnt is not None:
            event["pcap_cnt"] = int(pcap_cnt)
        event["event_type"] = event_type
        if self.host:
            event["host"] = self.host
        return event

    def _community_id(self, event: dict[str, Any], flow: FlowLike,
                      pkt: PacketLike | None) -> None:
        if self.community_id_seed is None:
            return
        icmp_type = pkt.icmp_type if pkt is not None else -1
        icmp_code = pkt.icmp_code if pkt is not None else -1
        event["community_id"] = community_id(self.community_id_seed, flow.src, flow.dst,
                                             flow.sport, flow.dport, flow.proto,
                                             icmp_type, icmp_code)

    @staticmethod
    def _flow_addresses(event: dict[str, Any], flow: FlowLike, *,
                        reverse: bool = False) -> None:
        vlan = getattr(flow, "vlan", None)
        if vlan:
            event["vlan"] = [int(v) for v in vlan]
        src, dst, sport, dport = flow.src, flow.dst, flow.sport, flow.dport
        if reverse:
            src, dst, sport, dport = dst, src, dport, sport
        event["src_ip"] = format_ip(src)
        if flow.proto in _PORT_PROTOS:
            event["src_port"] = int(sport)
        event["dest_ip"] = format_ip(dst)
        if flow.proto in _PORT_PROTOS:
            event["dest_port"] = int(dport)
        event["proto"] = proto_name(flow.proto)

    @staticmethod
    def _packet_addresses(event: dict[str, Any], pkt: PacketLike) -> None:
        if pkt.vlan:
            event["vlan"] = [int(v) for v in pkt.vlan]
        proto = pkt.proto
        event["src_ip"] = format_ip(pkt.src)
        if proto in _PORT_PROTOS:
            event["src_port"] = int(pkt.sport)
        event["dest_ip"] = format_ip(pkt.dst)
        if proto in _PORT_PROTOS:
            event["dest_port"] = int(pkt.dport)
        event["proto"] = proto_name(proto)
        if proto in _ICMP_PROTOS and pkt.icmp_type >= 0:
            event["icmp_type"] = int(pkt.icmp_type)
            event["icmp_code"] = int(max(pkt.icmp_code, 0))

    @staticmethod
    def _flow_counts(flow: FlowLike) -> dict[str, Any]:
        """Packet/byte totals (bypassed traffic included), plus ``bypassed{}`` when bypassed."""
        body: dict[str, Any] = {
            "pkts_toserver": int(flow.pkts_toserver),
            "pkts_toclient": int(flow.pkts_toclient),
            "bytes_toserver": int(flow.bytes_toserver),
            "bytes_toclient": int(flow.bytes_toclient),
        }
        if flow.bypass:
            body["bypassed"] = {
                "pkts_toserver": int(getattr(flow, "bypassed_pkts_toserver", 0) or 0),
                "pkts_toclient": int(getattr(flow, "bypassed_pkts_toclient", 0) or 0),
                "bytes_toserver": int(getattr(flow, "bypassed_bytes_toserver", 0) or 0),
                "bytes_toclient": int(getattr(flow, "bypassed_bytes_toclient", 0) or 0),
            }
        return body

    @staticmethod
    def _tcp(flow: FlowLike) -> dict[str, Any] | None:
        if flow.proto != 6:
            return None
        # The flags live on the flow or on its TCP session (``flow.tcp``).
        source: Any = flow
        ts_flags = getattr(flow, "tcp_flags_ts", None)
        if ts_flags is None:
            source = getattr(flow, "tcp", None)
            ts_flags = getattr(source, "tcp_flags_ts", None)
        tc_flags = getattr(source, "tcp_flags_tc", None)
        # Suricata writes the object for every TCP flow, with 00 when it has no session
        ts_flags = ts_flags if isinstance(ts_flags, int) else 0
        tc_flags = tc_flags if isinstance(tc_flags, int) else 0
        both = ts_flags | tc_flags
        tcp: dict[str, Any] = {
            "tcp_flags": _tcp_flags(both),
            "tcp_flags_ts": _tcp_flags(ts_flags),
            "tcp_flags_tc": _tcp_flags(tc_flags),
        }
        for bit, name in _TCP_FLAG_NAMES:
            if both & bit:
                tcp[name] = True
        state = getattr(flow, "tcp_state", None) or getattr(source, "state_name", None)
        if isinstance(state, str) and state:
            tcp["state"] = state
        if getattr(flow, "tcp", None) is not None:
            # Suricata 7 logs how many memory regions each direction's streaming buffer
            # needed; the engine's stream buffer is one region per direction (Suricata only
            # opens more for data far beyond the window, region gap 256 KiB)
            tcp["ts_max_regions"] = tcp["tc_max_regions"] = 1
        return tcp

    def _http(self, tx: HttpTxLike) -> dict[str, Any]:
        return app_object("http", tx, self.type_options.get("http")) or {}

    # --- file handling -------------------------------------------------------------

    def _emit(self, event: dict[str, Any]) -> None:
        line = self._dumps(event)
        if not line.isascii():
            # JSON allows these raw, but line readers (Python's splitlines, JS) break on them
            line = line.translate(_LINE_BREAKERS)
        self.events += 1
        # backslashreplace: a lone surrogate becomes a JSON escape instead of an error
        self.sink.write((self._prefix + line).encode("utf-8", "backslashreplace"))

    @property
    def write_errors(self) -> int:
        return self.sink.stats.errors

    @property
    def last_error(self) -> str | None:
        return self.sink.stats.last_error

    def flush(self) -> None:
        """Hand buffered lines to the transport (a regular file: one ``write()``)."""
        self.sink.flush()

    def reopen(self) -> None:
        """Reopen a regular file (after logrotate moved it; Suricata does this on SIGHUP);
        nothing for sockets, syslog and redis."""
        self.sink.reopen()

    def close(self) -> None:
        self.sink.close()

    def __enter__(self) -> EveWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
