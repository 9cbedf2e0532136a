"""Non-buffer TLS rule keywords (parse + match), after Suricata's ``detect-tls-version.c``,
``detect-ssl-version.c``, ``detect-ssl-state.c``, ``detect-tls.c``,
``detect-tls-cert-validity.c`` and ``detect-tls-certs.c`` (chain length)."""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ruleengine.applayer.base import BufferDirection, TxKeyword, TxMatchContext
from ruleengine.applayer.tls import consts as c
from ruleengine.applayer.tls.tx import TlsSide, TlsTransaction
from ruleengine.applayer.tls.x509 import CertInfo


def _tx(obj: Any) -> TlsTransaction | None:
    return obj if isinstance(obj, TlsTransaction) else None


def _side(tx: TlsTransaction, ctx: TxMatchContext) -> TlsSide:
    return tx.client if ctx.to_server else tx.server


def _side_complete(tx: TlsTransaction, ctx: TxMatchContext) -> bool:
    return tx.request_complete if ctx.to_server else tx.response_complete


def _match_side_version(obj: Any, ctx: TxMatchContext,
                        test: Callable[[int], bool]) -> bool | None:
    """``test`` on the version the inspected side announced; None while it may still come."""
    tx = _tx(obj)
    if tx is None:
        return False
    version = _side(tx, ctx).version
    if version == 0:
        return False if _side_complete(tx, ctx) else None
    return test(version)


def _match_cert(obj: Any, ctx: TxMatchContext,
                test: Callable[[TlsTransaction, CertInfo], bool]) -> bool | None:
    """``test`` on the inspected side's first certificate; None while it may still come."""
    tx = _tx(obj)
    if tx is None:
        return False
    side = _side(tx, ctx)
    if side.cert0 is None:
        return False if (_side_complete(tx, ctx) or side.cert_seen) else None
    return test(tx, side.cert0)


def _require(value: str | None, keyword: str) -> str:
    if value is None or not value.strip():
        raise ValueError(f"{keyword} needs a value")
    return value.strip()


# -- tls.version ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _TlsVersion:
    version: int
    raw: bool

    def matches(self, version: int) -> bool:
        if not self.raw and (version >> 8) == 0x7F:
            version = c.TLS_VERSION_13  # every TLS 1.3 draft is 1.3
        return version == self.version


_TLS_VERSION_RE = re.compile(r"^\s*([A-z0-9.]+)\s*$")


def parse_tls_version(value: str | None) -> _TlsVersion:
    text = _require(value, "tls.version")
    if not _TLS_VERSION_RE.match(text):
        raise ValueError(f"invalid tls.version option {text!r}")
    for prefix, version in (("1.0", c.TLS_VERSION_10), ("1.1", c.TLS_VERSION_11),
                            ("1.2", c.TLS_VERSION_12), ("1.3", c.TLS_VERSION_13)):
        if text.startswith(prefix):
            return _TlsVersion(version, False)
    if text.startswith("0x") and len(text) == 6:
        try:
            return _TlsVersion(int(text, 16), True)
        except ValueError:
            pass
    raise ValueError(f"invalid tls.version value {text!r} (1.0, 1.1, 1.2, 1.3 or 0xNNNN)")


def match_tls_version(arg: _TlsVersion, obj: Any, ctx: TxMatchContext) -> bool | None:
    return _match_side_version(obj, ctx, arg.matches)


# -- ssl_version ------------------------------------------------------------------------------
_SSL_VERSIONS = {"sslv2": "sslv2", "sslv3": "sslv3", "tls1.0": "tls1.0", "tls1.1": "tls1.1",
                 "tls1.2": "tls1.2", "tls1.3": "tls1.3"}


@dataclass(frozen=True)
class _SslVersion:
    positive: frozenset[str]
    negative: frozenset[str]

    def matches(self, version: int) -> bool:
        name = _ssl_version_name(version)
        if name is None or name in self.negative:
            return False
        return name in self.positive if self.positive else True


def parse_ssl_version(value: str | None) -> _SslVersion:
    text = _require(value, "ssl_version")
    pos: set[str] = set()
    neg: set[str] = set()
    for part in text.split(","):
        item = part.strip()
        if not item:
            raise ValueError(f"invalid ssl_version option {text!r}: empty item")
        negated = item.startswith("!")
        name = item[1:].strip().lower() if negated else item.lower()
        if name not in _SSL_VERSIONS:
            raise ValueError(f"invalid ssl_version value {item!r} "
                             "(sslv2, sslv3, tls1.0, tls1.1, tls1.2, tls1.3)")
        (neg if negated else pos).add(name)
    return _SslVersion(frozenset(pos), frozenset(neg))


def _ssl_version_name(version: int) -> str | None:
    if version == c.SSL_VERSION_2:
        return "sslv2"
    if version == c.SSL_VERSION_3:
        return "sslv3"
    if version == c.TLS_VERSION_10:
        return "tls1.0"
    if version == c.TLS_VERSION_11:
        return "tls1.1"
    if version == c.TLS_VERSION_12:
        return "tls1.2"
    if c.is_tls13(version):
        return "tls1.3"
    return None


def match_ssl_version(arg: _SslVersion, obj: Any, ctx: TxMatchContext) -> bool | None:
    return _match_side_version(obj, ctx, arg.matches)


# -- ssl_state --------------------------------------------------------------------------------
_STATES = {"client_hello": c.STATE_CLIENT_HELLO, "server_hello": c.STATE_SERVER_HELLO,
           "client_keyx": c.STATE_CLIENT_KEYX, "server_keyx": c.STATE_SERVER_KEYX,
           "unknown": c.STATE_UNKNOWN}
_STATE_FIRST = re.compile(r"^\s*(!?)([_a-zA-Z0-9]+)(.*)$", re.DOTALL)
_STATE_NEXT = re.compile(r"^(?:\s*[|,]\s*(!?)([_a-zA-Z0-9]+))(.*)$", re.DOTALL)


@dataclass(frozen=True)
class _SslState:
    flags: int
    mask: int


def parse_ssl_state(value: str | None) -> _SslState:
    text = _require(value, "ssl_state")
    m = _STATE_FIRST.match(text)
    flags = mask = 0
    while True:
        if m is None:
            raise ValueError(f"invalid ssl_state option {text!r}")
        neg, name, rest = m.group(1), m.group(2), m.group(3)
        if name not in _STATES:
            raise ValueError(f"found invalid option {name!r} in ssl_state keyword")
        flags |= _STATES[name]
        if neg:
            mask |= _STATES[name]
        if not rest.strip():
            break
        m = _STATE_NEXT.match(rest)
    return _SslState(flags, mask)


def match_ssl_state(arg: _SslState, obj: Any, ctx: TxMatchContext) -> bool | None:
    tx = _tx(obj)
    if tx is None:
        return False
    # DetectSslStateMatch: the flags of the record(s) just parsed
    return bool((arg.flags & tx.current_flags) ^ arg.mask)


# -- tls.subject / tls.issuerdn / tls.fingerprint ---------------------------------------------
@dataclass(frozen=True)
class _Substring:
    text: str
    negated: bool


_SUBJECT_RE = re.compile(r"^[A-z0-9\s\-.=,*@]+$")
_FINGERPRINT_RE = re.compile(r"^[A-z0-9:* ]+$")


def _substring_parser(keyword: str, pattern: re.Pattern[str]) -> Any:
    def parse(value: str | None) -> _Substring:
        if value is None:
            raise ValueError(f"{keyword} needs a value")
        text = value.strip()
        negated = text.startswith("!")
        if negated:
            text = text[1:].strip()
            if len(text) >= 2 and text[0] == text[-1] == '"':
                text = text[1:-1]
        if not text or not pattern.match(text):
            raise ValueError(f"invalid {keyword} option {value!r}")
        return _Substring(text, negated)
    return parse


def _substring_matcher(attr: str) -> Any:
    def match(arg: _Substring, obj: Any, ctx: TxMatchContext) -> bool | None:
        return _match_cert(obj, ctx,
                           lambda tx, cert: (arg.text in getattr(cert, attr)) != arg.negated)
    return match


# -- tls_cert_notbefore / notafter / expired / valid --------------------------------------------
_VALIDITY_RE = re.compile(r"^\s*(<|>)?\s*([ -:TW0-9]+)\s*(?:(<>)\s*([ -:TW0-9]+))?\s*$")
_DATE_PATTERNS = ("%Y-%m", "%Y-%m-%d", "%Y-%m-%d %H", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S",
                  "%Y-%m-%dT%H", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")
_TIME_PATTERNS = ("%H:%M", "%H:%M:%S")


def _date_to_epoch(text: str) -> int:
    """``DateStringToEpoch``: all digits = epoch seconds (so ``2015`` is 2015 seconds after
    1970, as in Suricata), else an ISO 8601 prefix form in UTC; a bare time is today's."""
    s = text.strip()
    if s.isdigit():
        return int(s)
    for pat in _DATE_PATTERNS:
        try:
            dt = datetime.strptime(s, pat)
        except ValueError:
            continue
        return calendar.timegm(dt.timetuple())
    for pat in _TIME_PATTERNS:
        try:
            t = datetime.strptime(s, pat)
        except ValueError:
            continue
        today = datetime.now(UTC)
        dt = today.replace(hour=t.hour, minute=t.minute, second=t.second, microsecond=0)
        return calendar.timegm(dt.timetuple())
    raise ValueError(f"invalid date {text!r}")


@dataclass(frozen=True)
class _Validity:
    field: str  # "not_before" | "not_after"
    mode: str  # "eq" "lt" "gt" "range" "expired" "valid"
    epoch: int = 0
    epoch2: int = 0


def _validity_parser(keyword: str, attr: str) -> Any:
    def parse(value: str | None) -> _Validity:
        text = _require(value, keyword)
        m = _VALIDITY_RE.match(text)
        if m is None:
            raise ValueError(f"invalid {keyword} option {text!r}")
        mode_sign, v1, rng, v2 = m.groups()
        if rng and mode_sign:
            raise ValueError(f"{keyword}: range specified but mode also set")
        epoch = _date_to_epoch(v1)
        if rng:
            if v2 is None:
                raise ValueError(f"{keyword}: range needs two dates")
            epoch2 = _date_to_epoch(v2)
            if epoch2 <= epoch:
                raise ValueError(f"{keyword}: second value in range must not be smaller "
                                 "than the first")
            return _Validity(attr, "range", epoch, epoch2)
        mode = {"<": "lt", ">": "gt"}.get(mode_sign or "", "eq")
        return _Validity(attr, mode, epoch)
    return parse


def _no_value_parser(keyword: str, mode: str) -> Any:
    def parse(value: str | None) -> _Validity:
        if value is not None and value.strip():
            raise ValueError(f"{keyword} takes no value")
        return _Validity("not_after", mode)
    return parse


def match_validity(arg: _Validity, obj: Any, ctx: TxMatchContext) -> bool | None:
    return _match_cert(obj, ctx, lambda tx, cert: _validity_holds(arg, tx, cert))


def _validity_holds(arg: _Validity, tx: TlsTransaction, cert: CertInfo) -> bool:
    epoch: int = getattr(cert, arg.field)
    if epoch == 0:
        return False
    now: float = tx.last_ts or time.time()
    if arg.mode == "eq":
        return epoch == arg.epoch
    if arg.mode == "lt":
        return epoch <= arg.epoch
    if arg.mode == "gt":
        return epoch >= arg.epoch
    if arg.mode == "range":
        return arg.epoch <= epoch <= arg.epoch2
    if arg.mode == "expired":
        return now > epoch
    return now <= epoch  # valid


# -- tls.cert_chain_len -----------------------------------------------------------------------
@dataclass(frozen=True)
class _UintCond:
    op: str  # eq ne lt le gt ge range nrange
    a: int
    b: int = 0

    def test(self, v: int) -> bool:
        op = self.op
        if op == "eq":
            return v == self.a
        if op == "ne":
            return v != self.a
        if op == "lt":
            return v < self.a
        if op == "le":
            return v <= self.a
        if op == "gt":
            return v > self.a
        if op == "ge":
            return v >= self.a
        inside = self.a < v < self.b
        return inside if op == "range" else not inside


_U32_MAX = 0xFFFFFFFF
_UINT_RANGE = re.compile(r"^\s*(!?)\s*(\d+)\s*(?:-|<>)\s*(\d+)\s*$")
_UINT_OP = re.compile(r"^\s*(<=|>=|!=|<|>|=|!)?\s*(\d+)\s*$")


def parse_uint(value: str | None, keyword: str = "tls.cert_chain_len") -> _UintCond:
    """Suricata's unsigned-integer condition (``N``, ``=N``, ``!N``, ``<N``, ``<=N``, ``>N``,
    ``>=N``, ``N-M`` / ``N<>M`` exclusive range, ``!N-M``)."""
    text = _require(value, keyword)
    m = _UINT_RANGE.match(text)
    if m:
        a, b = int(m.group(2)), int(m.group(3))
        if a > _U32_MAX or b > _U32_MAX:
            raise ValueError(f"{keyword}: value out of range")
        if a >= b:
            raise ValueError(f"{keyword}: range start must be below its end")
        return _UintCond("nrange" if m.group(1) else "range", a, b)
    m = _UINT_OP.match(text)
    if not m:
        raise ValueError(f"invalid {keyword} value {text!r}")
    a = int(m.group(2))
    if a > _U32_MAX:
        raise ValueError(f"{keyword}: value out of range")
    op = {None: "eq", "=": "eq", "!": "ne", "!=": "ne", "<": "lt", "<=": "le", ">": "gt",
          ">=": "ge"}[m.group(1)]
    return _UintCond(op, a)


def match_chain_len(arg: _UintCond, obj: Any, ctx: TxMatchContext) -> bool | None:
    tx = _tx(obj)
    if tx is None:
        return False
    side = tx.server
    if not side.cert_seen:
        return False if tx.response_complete else None
    return arg.test(len(side.certs))


# -- tls.store --------------------------------------------------------------------------------
def parse_store(value: str | None) -> None:
    if value is not None and value.strip():
        raise ValueError("tls.store takes no value")


def match_store(arg: None, obj: Any, ctx: TxMatchContext) -> bool:
    return True


_TC = BufferDirection.TO_CLIENT

KEYWORDS: tuple[TxKeyword, ...] = (
    TxKeyword("tls.version", parse_tls_version, match_tls_version,
              doc="TLS/SSL version of the side inspected (1.0 1.1 1.2 1.3 or 0xNNNN)"),
    TxKeyword("ssl_version", parse_ssl_version, match_ssl_version,
              doc="sslv2, sslv3, tls1.0 ... tls1.3, comma list, ! negates"),
    TxKeyword("ssl_state", parse_ssl_state, match_ssl_state,
              doc="client_hello|server_hello|client_keyx|server_keyx|unknown, ! and | ,"),
    TxKeyword("tls.subject", _substring_parser("tls.subject", _SUBJECT_RE),
              _substring_matcher("subject"), direction=_TC, negatable=True),
    TxKeyword("tls.issuerdn", _substring_parser("tls.issuerdn", _SUBJECT_RE),
              _substring_matcher("issuer"), direction=_TC, negatable=True),
    TxKeyword("tls.fingerprint", _substring_parser("tls.fingerprint", _FINGERPRINT_RE),
              _substring_matcher("fingerprint"), direction=_TC, negatable=True),
    TxKeyword("tls_cert_notbefore", _validity_parser("tls_cert_notbefore", "not_before"),
              match_validity, direction=_TC),
    TxKeyword("tls_cert_notafter", _validity_parser("tls_cert_notafter", "not_after"),
              match_validity, direction=_TC),
    TxKeyword("tls_cert_expired", _no_value_parser("tls_cert_expired", "expired"),
              match_validity, direction=_TC, value_required=False),
    TxKeyword("tls_cert_valid", _no_value_parser("tls_cert_valid", "valid"),
              match_validity, direction=_TC, value_required=False),
    TxKeyword("tls.cert_chain_len", parse_uint, match_chain_len, direction=_TC),
    TxKeyword("tls.store", parse_store, match_store, aliases=("tls_store",),
              value_required=False, doc="accepted; certificates are not stored"),
)
