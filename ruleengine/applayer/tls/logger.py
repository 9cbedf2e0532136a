"""The EVE ``tls`` object (``src/output-json-tls.c``).

Basic: subject, issuerdn, session_resumed. ``extended: yes`` adds serial, fingerprint, sni,
version, notbefore, notafter, ja3, ja3s, ja4, client_alpns, server_alpns and ``client`` (the
client certificate). ``custom: [...]`` picks fields by Suricata's names. A ``tls`` event is
written only when there is a server certificate, a resumed session (``session-resumption``
option, default on) or a TLS 1.3 handshake (``SSL_AL_FLAG_LOG_WITHOUT_CERT``); the alert
object is always the extended one.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ruleengine.applayer.tls.consts import version_string
from ruleengine.applayer.tls.tx import TlsSide, TlsTransaction
from ruleengine.config.values import parse_switch

_CUSTOM_FIELDS = frozenset(
    {"version", "subject", "issuer", "serial", "fingerprint", "not_before", "not_after", "sni",
     "certificate", "chain", "session_resumed", "ja3", "ja3s", "ja4", "subjectaltname",
     "client", "client_certificate", "client_chain", "client_alpns", "server_alpns"}
)


def _true(value: Any) -> bool:
    return parse_switch(value) is True


def _time(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _cert_fields(out: dict[str, Any], side: TlsSide, fields: set[str], prefix: str = "") -> None:
    info = side.cert0
    if info is not None:
        if "subject" in fields:
            out["subject"] = info.subject
        if "issuer" in fields:
            out["issuerdn"] = info.issuer
        if "serial" in fields:
            out["serial"] = info.serial
        if "fingerprint" in fields:
            out["fingerprint"] = info.fingerprint
        if "not_before" in fields and info.not_before:
            out["notbefore"] = _time(info.not_before)
        if "not_after" in fields and info.not_after:
            out["notafter"] = _time(info.not_after)
        if "subjectaltname" in fields and info.sans:
            out["subjectaltname"] = list(info.sans)
    if side.certs:
        if prefix + "certificate" in fields:
            out["certificate"] = base64.b64encode(side.certs[0]).decode()
        if prefix + "chain" in fields:
            out["chain"] = [base64.b64encode(der).decode() for der in side.certs]


# Suricata's order of the first fields (output-json-tls.c): the server certificate's, with
# the handshake's session_resumed, sni and version among them
_HEAD_ORDER = ("subject", "issuerdn", "session_resumed", "serial", "fingerprint", "sni",
               "version", "notbefore", "notafter", "subjectaltname", "certificate", "chain")


def _build(tx: TlsTransaction, fields: set[str]) -> dict[str, Any]:
    server = tx.server
    client = tx.client
    head: dict[str, Any] = {}
    _cert_fields(head, server, fields)
    if "session_resumed" in fields and tx.session_resumed:
        head["session_resumed"] = True
    if "sni" in fields and client.sni is not None:
        head["sni"] = _text(client.sni)
    if "version" in fields:
        head["version"] = version_string(server.version)
    out = {key: head[key] for key in _HEAD_ORDER if key in head}
    if "ja3" in fields and tx.log_ja3 and client.ja3_hash is not None:
        out["ja3"] = {"hash": client.ja3_hash, "string": client.ja3_string}
    if "ja3s" in fields and tx.log_ja3 and server.ja3_hash is not None:
        out["ja3s"] = {"hash": server.ja3_hash, "string": server.ja3_string}
    if "ja4" in fields and tx.log_ja4 and client.ja4 is not None:
        out["ja4"] = client.ja4
    if "client_alpns" in fields and client.alpns:
        out["client_alpns"] = [_text(a) for a in client.alpns]
    if "server_alpns" in fields and server.alpns:
        out["server_alpns"] = [_text(a) for a in server.alpns]
    if "client" in fields and client.cert0 is not None:
        sub: dict[str, Any] = {}
        client_fields = {"subject", "issuer", "serial", "fingerprint", "not_before",
                         "not_after", "subjectaltname"}
        if "client_certificate" in fields:
            client_fields.add("client_certificate")
        if "client_chain" in fields:
            client_fields.add("client_chain")
        _cert_fields(sub, client, client_fields, prefix="client_")
        out["client"] = sub
    return out


_BASIC = {"subject", "issuer", "session_resumed"}
_EXTENDED = _BASIC | {"serial", "fingerprint", "sni", "version", "not_before", "not_after",
                      "ja3", "ja3s", "ja4", "client_alpns", "server_alpns", "client"}


def _fields(options: Mapping[str, Any]) -> set[str]:
    custom = options.get("custom")
    if isinstance(custom, (list, tuple)):
        return {str(f).lower() for f in custom if str(f).lower() in _CUSTOM_FIELDS}
    if _true(options.get("extended", False)):
        return set(_EXTENDED)
    return set(_BASIC)


def loggable(tx: TlsTransaction, options: Mapping[str, Any] | None = None) -> bool:
    """``JsonTlsLogger``'s gate: a server certificate, a resumed session, or TLS 1.3."""
    opts = options or {}
    resumption = opts.get("session-resumption")
    resumption_on = resumption is None or _true(resumption)
    cert = tx.server.cert0 is not None
    return cert or (tx.session_resumed_flag and resumption_on) or tx.log_without_cert


def eve_tls(tx: Any, options: Mapping[str, Any]) -> dict[str, Any] | None:
    if not isinstance(tx, TlsTransaction) or not loggable(tx, options):
        return None
    return _build(tx, _fields(options))


def alert_tls(tx: Any, options: Mapping[str, Any]) -> dict[str, Any] | None:
    """``AlertJsonTls``: the extended object, whatever the handshake reached."""
    if not isinstance(tx, TlsTransaction):
        return None
    return _build(tx, set(_EXTENDED))
