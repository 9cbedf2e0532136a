"""JA3 / JA3S (``src/util-ja3.c`` + ``app-layer-ssl.c``) and JA4 (``rust/src/ja4.rs``)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from ruleengine.applayer.tls.consts import (
    EXT_ALPN,
    EXT_SNI,
    SSL_VERSION_3,
    TLS_VERSION_10,
    TLS_VERSION_11,
    TLS_VERSION_12,
    TLS_VERSION_13,
    is_grease,
)


def _join(values: Iterable[int]) -> str:
    return "-".join(str(v) for v in values if not is_grease(v))


def ja3_string(version: int, ciphers: Sequence[int], extensions: Sequence[int],
               curves: Sequence[int], point_formats: Sequence[int]) -> str:
    """``SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats`` (decimal,
    ``-`` separated, GREASE skipped; an empty field stays empty)."""
    return ",".join([str(version), _join(ciphers), _join(extensions), _join(curves),
                     _join(point_formats)])


def ja3s_string(version: int, cipher: int, extensions: Sequence[int]) -> str:
    return ",".join([str(version), _join([cipher]), _join(extensions)])


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


_JA4_VERSIONS = {TLS_VERSION_13: "13", TLS_VERSION_12: "12", TLS_VERSION_11: "11",
                 TLS_VERSION_10: "10", SSL_VERSION_3: "s3"}


def _sha12(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def ja4_hash(versions: Iterable[int], ciphers: Sequence[int], extensions: Sequence[int],
             sig_algs: Sequence[int], first_alpn: bytes | None, quic: bool = False) -> str:
    """Suricata's JA4 (``JA4::get_hash``): the highest non-GREASE version seen (ClientHello
    version and supported_versions), counts capped at 99, SNI/ALPN counted but not hashed, the
    first ALPN's first and last byte (GREASE skipped), sorted ciphers / extensions, signature
    algorithms in wire order; empty lists hash the empty string."""
    best: int | None = None
    for v in versions:
        if not is_grease(v) and (best is None or v > best):
            best = v
    version = _JA4_VERSIONS.get(best, "00") if best is not None else "00"
    cs = [c for c in ciphers if not is_grease(c)]
    exts: list[int] = []
    nof_exts = 0
    domain = False
    for e in extensions:
        if is_grease(e):
            continue
        if e == EXT_SNI:
            domain = True
        elif e != EXT_ALPN:
            exts.append(e)
        nof_exts += 1
    alpn = "00"
    if first_alpn is not None and len(first_alpn) > 1:
        v = (first_alpn[0] << 8) | first_alpn[-1]
        if not (len(first_alpn) == 2 and is_grease(v)):
            alpn = chr(first_alpn[0]) + chr(first_alpn[-1])
    sigs = [s for s in sig_algs if not is_grease(s)]
    ja4_a = (f"{'q' if quic else 't'}{version}{'d' if domain else 'i'}"
             f"{min(99, len(cs)):02d}{min(99, nof_exts):02d}{alpn}")
    ja4_b = _sha12(",".join(f"{c:04x}" for c in sorted(cs)))
    c_raw = ",".join(f"{e:04x}" for e in sorted(exts)) + "_" + ",".join(f"{s:04x}" for s in sigs)
    return f"{ja4_a}_{ja4_b}_{_sha12(c_raw)}"
