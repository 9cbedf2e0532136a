"""Sticky buffers of the TLS transaction (Suricata's ``detect-tls-*.c``, ``detect-ja3*.c``,
``detect-ja4-hash.c``)."""

from __future__ import annotations

from typing import Any

from ruleengine.applayer.base import BufferDirection, BufferSpec
from ruleengine.applayer.tls.tx import TlsSide, TlsTransaction

_TS = BufferDirection.TO_SERVER
_TC = BufferDirection.TO_CLIENT
_BOTH = BufferDirection.BOTH


def _tx(obj: Any) -> TlsTransaction | None:
    return obj if isinstance(obj, TlsTransaction) else None


def _enc(text: str | None) -> bytes | None:
    return text.encode() if text is not None else None


def _cert0_field(name: str) -> Any:
    def get(obj: Any) -> bytes | None:
        tx = _tx(obj)
        if tx is None or tx.server.cert0 is None:
            return None
        return _enc(getattr(tx.server.cert0, name))
    return get


def get_sni(obj: Any) -> bytes | None:
    tx = _tx(obj)
    return tx.client.sni if tx is not None else None


def get_certs(obj: Any) -> list[bytes] | None:
    tx = _tx(obj)
    return list(tx.server.certs) if tx is not None and tx.server.certs else None


def get_sans(obj: Any) -> list[bytes] | None:
    tx = _tx(obj)
    if tx is None or tx.server.cert0 is None or not tx.server.cert0.sans:
        return None
    return [s.encode() for s in tx.server.cert0.sans]


def _alpn(side_of: str) -> Any:
    def get(obj: Any) -> list[bytes] | None:
        tx = _tx(obj)
        if tx is None:
            return None
        side: TlsSide = getattr(tx, side_of)
        return list(side.alpns) or None
    return get


def _random(side_of: str, start: int, end: int) -> Any:
    def get(obj: Any) -> bytes | None:
        tx = _tx(obj)
        if tx is None:
            return None
        side: TlsSide = getattr(tx, side_of)
        if side.random is None or len(side.random) != 32:
            return None
        return side.random[start:end]
    return get


def _ja3(side_of: str, attr: str) -> Any:
    def get(obj: Any) -> bytes | None:
        tx = _tx(obj)
        if tx is None:
            return None
        return _enc(getattr(getattr(tx, side_of), attr))
    return get


BUFFERS: tuple[BufferSpec, ...] = (
    BufferSpec("tls.sni", aliases=("tls_sni",), direction=_TS, getter=get_sni),
    BufferSpec("tls.cert_subject", aliases=("tls_cert_subject",), direction=_TC,
               getter=_cert0_field("subject")),
    BufferSpec("tls.cert_issuer", aliases=("tls_cert_issuer",), direction=_TC,
               getter=_cert0_field("issuer")),
    BufferSpec("tls.cert_serial", aliases=("tls_cert_serial",), direction=_TC,
               getter=_cert0_field("serial")),
    BufferSpec("tls.cert_fingerprint", aliases=("tls_cert_fingerprint",), direction=_TC,
               lowercase_only=True, getter=_cert0_field("fingerprint")),
    BufferSpec("tls.certs", direction=_TC, multi=True, getter=get_certs),
    BufferSpec("tls.subjectaltname", direction=_TC, multi=True, getter=get_sans),
    BufferSpec("tls.alpn", direction=_BOTH, multi=True, getter=_alpn("client"),
               getter_toclient=_alpn("server")),
    BufferSpec("tls.random", direction=_BOTH, getter=_random("client", 0, 32),
               getter_toclient=_random("server", 0, 32)),
    BufferSpec("tls.random_time", direction=_BOTH, getter=_random("client", 0, 4),
               getter_toclient=_random("server", 0, 4)),
    BufferSpec("tls.random_bytes", direction=_BOTH, getter=_random("client", 4, 32),
               getter_toclient=_random("server", 4, 32)),
    BufferSpec("ja3.hash", aliases=("ja3_hash",), direction=_TS, lowercase_only=True,
               getter=_ja3("client", "ja3_hash")),
    BufferSpec("ja3.string", aliases=("ja3_string",), direction=_TS,
               getter=_ja3("client", "ja3_string")),
    BufferSpec("ja3s.hash", direction=_TC, lowercase_only=True,
               getter=_ja3("server", "ja3_hash")),
    BufferSpec("ja3s.string", direction=_TC, getter=_ja3("server", "ja3_string")),
    BufferSpec("ja4.hash", direction=_TS, getter=_ja3("client", "ja4")),
)
