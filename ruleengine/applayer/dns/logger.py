"""The EVE ``dns`` object (Suricata 8's ``rust/src/dns/log.rs`` and
``src/output-json-dns.c``).

Version 3 (default): one event per transaction side, ``"type": "request"|"response"``, the
header fields, ``queries``, and for records ``answers`` (format ``detailed``), ``grouped``
(format ``grouped``), ``authorities``, ``additionals``. Version 2 (``version: 2``): a
``"type": "query"`` event per query of a request and one ``"type": "answer"`` event per
response. Options (the ``outputs.eve-log.types.dns`` subtree): ``version``, ``requests``,
``responses``, ``formats`` (``[detailed, grouped]``), ``types`` (rrtype names to log).

Keys that Suricata's EVE schema does not allow where they would go (``rrname_truncated``
in answers, ``srv`` in authorities...) are left out: the schema is what consumers read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ruleengine.applayer.dns.wire import (
    RCODES,
    RRTYPES,
    DnsName,
    Message,
    Record,
    Soa,
    Srv,
    Sshfp,
)
from ruleengine.config.values import is_true

_ANSWER_KEYS = frozenset({"rdata", "rrname", "rrtype", "soa", "srv", "sshfp", "ttl"})
_AUTHORITY_KEYS = frozenset({"rdata", "rdata_truncated", "rrname", "rrname_truncated",
                             "rrtype", "soa", "ttl"})
_ADDITIONAL_KEYS = frozenset({"opt", "rdata", "rrname", "rrtype", "ttl"})
_GROUPED = frozenset({"A", "AAAA", "CNAME", "MX", "NS", "NULL", "PTR", "SOA", "SRV",
                      "SSHFP", "TXT"})


def text(value: bytes) -> str:
    """``set_string_from_bytes``: UTF-8 when valid, else printable ASCII with ``\\xNN``."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02X}" for b in value)


def rrtype_string(rrtype: int) -> str:
    return RRTYPES.get(rrtype, str(rrtype))


def rcode_string(flags: int) -> str:
    rcode = flags & 0xF
    return RCODES.get(rcode, str(rcode))


def print_addr(addr: bytes) -> str:
    if len(addr) == 4:
        return ".".join(str(b) for b in addr)
    if len(addr) == 16:
        return ":".join(addr[i:i + 2].hex() for i in range(0, 16, 2))
    return ""


@dataclass(frozen=True)
class LogConfig:
    version: int = 3
    requests: bool = True
    responses: bool = True
    detailed: bool = True
    grouped: bool = True
    types: frozenset[int] | None = None  # None: every type
    all_flags: bool = True  # Suricata's flags == !0: unknown rrtypes are logged too

    def rrtype_enabled(self, rrtype: int) -> bool:
        if self.all_flags:
            return True
        if rrtype not in RRTYPES:
            return False
        return self.types is None or rrtype in self.types


def _switch(value: Any) -> bool:
    """On unless set to something other than true (Suricata's ``ConfValIsTrue``)."""
    return value is None or is_true(value)


def _list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.strip("[]").split(",") if v.strip()]
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value]
    return None


_CONFIG_CACHE: dict[tuple[Any, ...], LogConfig] = {}


def log_config(options: Mapping[str, Any] | None) -> LogConfig:
    """``JsonDnsLogInitFilters`` / ``JsonDnsCheckVersion`` over the options mapping."""
    options = options if isinstance(options, Mapping) else {}
    key = tuple(sorted((str(k), repr(v)) for k, v in options.items()))
    cached = _CONFIG_CACHE.get(key)
    if cached is not None:
        return cached
    try:
        version = int(str(options.get("version", 3)).strip())
    except ValueError:
        version = 3
    if version not in (2, 3):
        version = 3  # v1 was removed, others invalid: Suricata uses the default
    requests = _switch(options.get("requests"))
    responses = _switch(options.get("responses"))
    detailed = grouped = True
    formats = _list(options.get("formats"))
    if formats and responses:
        chosen = {f.lower() for f in formats}
        if chosen & {"detailed", "grouped"}:
            detailed, grouped = "detailed" in chosen, "grouped" in chosen
    types_list = _list(options.get("types"))
    types: frozenset[int] | None = None
    if types_list is not None:
        by_name = {v.lower(): k for k, v in RRTYPES.items()}
        types = frozenset(by_name[t.lower()] for t in types_list if t.lower() in by_name)
    all_flags = requests and responses and detailed and grouped and types is None
    config = LogConfig(version, requests, responses, detailed, grouped, types, all_flags)
    if len(_CONFIG_CACHE) < 64:
        _CONFIG_CACHE[key] = config
    return config


ALERT_CONFIG = LogConfig(3, True, True, True, False, None, all_flags=False)


# ------------------------------------------------------------------------ records
def _soa(soa: Soa) -> dict[str, Any]:
    out: dict[str, Any] = {"mname": text(soa.mname.value)}
    if soa.mname.truncated:
        out["mname_truncated"] = True
    out.update(rname=text(soa.rname.value), serial=soa.serial, refresh=soa.refresh,
               retry=soa.retry, expire=soa.expire, minimum=soa.minimum)
    return out


def _sshfp(sshfp: Sshfp) -> dict[str, Any]:
    return {"fingerprint": ":".join(f"{b:02x}" for b in sshfp.fingerprint),
            "algo": sshfp.algo, "type": sshfp.fp_type}


def _srv(srv: Srv) -> dict[str, Any]:
    return {"priority": srv.priority, "weight": srv.weight, "port": srv.port,
            "name": text(srv.target.value)}


def _detail(record: Record, index: int, allowed: frozenset[str]) -> dict[str, Any]:
    """``dns_log_json_answer_detail`` (``index``: which TXT string)."""
    out: dict[str, Any] = {"rrname": text(record.name.value)}
    if record.name.truncated:
        out["rrname_truncated"] = True
    out["rrtype"] = rrtype_string(record.rrtype)
    out["ttl"] = record.ttl
    data = record.data
    if isinstance(data, DnsName):
        out["rdata"] = text(data.value)
        if data.truncated:
            out["rdata_truncated"] = True
    elif isinstance(data, Soa):
        out["soa"] = _soa(data)
    elif isinstance(data, Sshfp):
        out["sshfp"] = _sshfp(data)
    elif isinstance(data, Srv):
        out["srv"] = _srv(data)
    elif record.rrtype == 16 and isinstance(data, list):
        if index < len(data):
            out["rdata"] = text(data[index])
    elif record.rrtype == 41 and isinstance(data, list):
        out["opt"] = [{"code": code, "data": value.hex()} for code, value in data]
    elif isinstance(data, bytes):
        if record.rrtype in (1, 28):
            out["rdata"] = print_addr(data)
        elif record.rrtype == 10:
            out["rdata"] = text(data)
    return {k: v for k, v in out.items() if k in allowed}


def _details(records: list[Record], allowed: frozenset[str],
             skip_empty_opt: bool = False) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for record in records:
        if skip_empty_opt and record.rrtype == 41 and isinstance(record.data, list) \
                and not record.data:
            continue
        if record.rrtype == 16 and isinstance(record.data, list):
            out.extend(_detail(record, i, allowed) for i in range(len(record.data)))
        else:
            out.append(_detail(record, 0, allowed))
    return out


def _grouped(records: list[Record]) -> dict[str, list[Any]]:
    groups: dict[str, list[Any]] = {}
    for record in records:
        kind = rrtype_string(record.rrtype)
        data = record.data
        value: list[Any]
        if isinstance(data, DnsName):
            value = [text(data.value)]
        elif isinstance(data, Soa):
            value = [_soa(data)]
        elif isinstance(data, Sshfp):
            value = [_sshfp(data)]
        elif isinstance(data, Srv):
            value = [_srv(data)]
        elif record.rrtype == 16 and isinstance(data, list):
            value = [text(s) for s in data]
        elif isinstance(data, bytes) and record.rrtype in (1, 28):
            value = [print_addr(data)]
        elif isinstance(data, bytes) and record.rrtype == 10:
            value = [text(data)]
        else:
            continue
        if kind in _GROUPED and value:
            groups.setdefault(kind, []).extend(value)
    return groups


def _header_fields(out: dict[str, Any], message: Message) -> None:
    flags = message.header.flags
    out["flags"] = f"{flags:x}"
    for bit, key in ((0x8000, "qr"), (0x0400, "aa"), (0x0200, "tc"), (0x0100, "rd"),
                     (0x0080, "ra"), (0x0040, "z")):
        if flags & bit:
            out[key] = True
    out["opcode"] = (flags >> 11) & 0xF


def _records(out: dict[str, Any], message: Message, config: LogConfig) -> None:
    if message.answers:
        if config.detailed:
            answers = _details(message.answers, _ANSWER_KEYS)
            if answers:
                out["answers"] = answers
        if config.grouped:
            grouped = _grouped(message.answers)
            if grouped:
                out["grouped"] = grouped
    authorities = _details(message.authorities, _AUTHORITY_KEYS)
    if authorities:
        out["authorities"] = authorities
    additionals = _details(message.additionals, _ADDITIONAL_KEYS, skip_empty_opt=True)
    if additionals:
        out["additionals"] = additionals


# ------------------------------------------------------------------------ objects
def _tx_id(tx: Any) -> int:
    return int(getattr(tx, "tx_id", 0))


def _dns_id(tx: Any, message: Message) -> int:
    request = getattr(tx, "request", None)
    return request.header.id if isinstance(request, Message) else message.header.id


def v3_object(tx: Any, message: Message, to_server: bool,
              config: LogConfig) -> dict[str, Any]:
    """``log_json``: the version 3 object for one side."""
    out: dict[str, Any] = {"version": 3, "type": "request" if to_server else "response",
                           "tx_id": _tx_id(tx), "id": _dns_id(tx, message)}
    _header_fields(out, message)
    out["rcode"] = rcode_string(message.header.flags)
    queries = []
    for query in message.queries:
        if config.rrtype_enabled(query.rrtype):
            item: dict[str, Any] = {"rrname": text(query.name.value),
                                    "rrtype": rrtype_string(query.rrtype)}
            if query.name.truncated:
                item["rrname_truncated"] = True
            queries.append(item)
    if queries:
        out["queries"] = queries
    _records(out, message, config)
    return out


def _v2_queries(tx: Any, message: Message, config: LogConfig) -> list[dict[str, Any]]:
    """``dns_log_query`` for i = 0, 1, ... until a query is not logged."""
    out = []
    for query in message.queries:
        if not config.rrtype_enabled(query.rrtype):
            break
        item: dict[str, Any] = {"version": 2, "type": "query", "id": message.header.id,
                                "rrname": text(query.name.value),
                                "rrtype": rrtype_string(query.rrtype), "tx_id": _tx_id(tx)}
        if message.header.z:
            item["z"] = True
        item["opcode"] = message.header.opcode
        out.append(item)
    return out


def _v2_answer(message: Message, config: LogConfig) -> dict[str, Any]:
    """``dns_log_json_answer``."""
    out: dict[str, Any] = {"version": 2, "type": "answer", "id": message.header.id}
    _header_fields(out, message)
    if message.queries:
        out["rrname"] = text(message.queries[0].name.value)
        out["rrtype"] = rrtype_string(message.queries[0].rrtype)
    out["rcode"] = rcode_string(message.header.flags)
    _records(out, message, config)
    return out


def _sides(tx: Any) -> list[tuple[bool, Message]]:
    out = []
    for to_server, attr in ((True, "request"), (False, "response")):
        message = getattr(tx, attr, None)
        if isinstance(message, Message):
            out.append((to_server, message))
    return out


def log_sides(tx: Any, options: Mapping[str, Any] | None = None,
              ) -> list[tuple[bool, dict[str, Any]]]:
    """Every EVE ``dns`` object of the transaction, as (to_server, object): v3 one per
    side present; v2 one per logged query of the request and one for the response.
    Pure: it does not mark anything as logged."""
    config = log_config(options)
    out: list[tuple[bool, dict[str, Any]]] = []
    for to_server, message in _sides(tx):
        if (to_server and not config.requests) or (not to_server and not config.responses):
            continue
        if not any(config.rrtype_enabled(q.rrtype) for q in message.queries):
            continue  # SCDnsLogEnabled / SCDnsLogAnswerEnabled
        if config.version == 2:
            if to_server:
                out.extend((True, obj) for obj in _v2_queries(tx, message, config))
            else:
                out.append((False, _v2_answer(message, config)))
        else:
            out.append((to_server, v3_object(tx, message, to_server, config)))
    return out


def eve_logger(tx: Any, options: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The next EVE ``dns`` object of ``tx`` not returned before (marked on the
    transaction), or None. Call it until None: a v2 request gives one per query."""
    done: set[Any] | None = getattr(tx, "eve_logged", None)
    for index, (to_server, obj) in enumerate(log_sides(tx, options)):
        key = (to_server, index)
        if done is not None:
            if key in done:
                continue
            done.add(key)
        return obj
    return None


def alert_logger(tx: Any, options: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """``AlertJsonDns``: v3, detailed answers, the request when there is one."""
    sides = _sides(tx)
    if not sides:
        return None
    to_server, message = sides[0]
    return v3_object(tx, message, to_server, ALERT_CONFIG)
