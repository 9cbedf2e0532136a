"""Buffer transforms (``src/detect-transform-*.c``, Suricata 8): pure bytes -> bytes
functions applied in rule order to a sticky buffer before it is inspected.

``apply_chain`` returns None when a transform fails (``pcrexform`` without a match:
Suricata marks the buffer as an error and nothing in it can match).
``content_incompatible`` is Suricata's TransformValidate: a content that can never
match the transformed buffer (``to_lowercase; content:"A"``) makes the rule invalid.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Sequence
from typing import Any

from ruleengine.keywords import base64_decode as b64
from ruleengine.keywords import psl
from ruleengine.rules.model import Transform

_SPACE = frozenset(b" \t\n\v\f\r")  # C isspace() in the "C" locale
_HEX = frozenset(b"0123456789abcdefABCDEF")
_PCREXFORM_CACHE: dict[str, Any] = {}


class TransformError(ValueError):
    """A transform argument the engine cannot use (the rule is skipped)."""


def to_lowercase(buf: bytes, t: Transform) -> bytes | None:
    return buf.lower()


def to_uppercase(buf: bytes, t: Transform) -> bytes | None:
    return buf.upper()


def strip_whitespace(buf: bytes, t: Transform) -> bytes | None:
    return bytes(c for c in buf if c not in _SPACE)


def compress_whitespace(buf: bytes, t: Transform) -> bytes | None:
    """Each run of whitespace becomes its first character."""
    out = bytearray()
    prev_space = False
    for c in buf:
        space = c in _SPACE
        if not (space and prev_space):
            out.append(c)
        prev_space = space
    return bytes(out)


def _hexval(c: int) -> int:
    return ((c & 0xDF) - 0x41 + 10) if c >= 0x41 else c - 0x30


def url_decode(buf: bytes, t: Transform) -> bytes | None:
    """%HH and '+' (space); an invalid or truncated escape stays as written."""
    out = bytearray()
    i, n = 0, len(buf)
    while i < n:
        c = buf[i]
        if c == 0x25 and i + 2 < n and buf[i + 1] in _HEX and buf[i + 2] in _HEX:
            out.append(((_hexval(buf[i + 1]) << 4) | _hexval(buf[i + 2])) & 0xFF)
            i += 3
            continue
        out.append(0x20 if c == 0x2B else c)
        i += 1
    return bytes(out)


def xor(buf: bytes, t: Transform) -> bytes | None:
    key = t.key
    if not key:
        return buf
    klen = len(key)
    return bytes(c ^ key[i % klen] for i, c in enumerate(buf))


def to_md5(buf: bytes, t: Transform) -> bytes | None:
    return hashlib.md5(buf).digest()


def to_sha1(buf: bytes, t: Transform) -> bytes | None:
    return hashlib.sha1(buf).digest()


def to_sha256(buf: bytes, t: Transform) -> bytes | None:
    return hashlib.sha256(buf).digest()


def dotprefix(buf: bytes, t: Transform) -> bytes | None:
    return b"." + buf if buf else buf


def header_lowercase(buf: bytes, t: Transform) -> bytes | None:
    """Header names (each line up to its first ':') lower-cased, values untouched."""
    out = bytearray()
    in_name = True
    for c in buf:
        if c == 0x0A:
            in_name = True
            out.append(c)
        elif in_name:
            if c == 0x3A:
                in_name = False
                out.append(c)
            else:
                out.append(c + 32 if 0x41 <= c <= 0x5A else c)
        else:
            out.append(c)
    return bytes(out)


def strip_pseudo_headers(buf: bytes, t: Transform) -> bytes | None:
    """Drop the lines (``\\n`` included) that start with ':' (HTTP/2 pseudo headers)."""
    out = bytearray()
    start = 0
    n = len(buf)
    while start < n:
        end = buf.find(b"\n", start)
        end = n if end < 0 else end + 1
        if buf[start] != 0x3A:
            out += buf[start:end]
        start = end
    return bytes(out)


def compile_pcrexform(regex: str) -> Any:
    """The PCRE2 code of a pcrexform (at least one capture group: its first is the output)."""
    code = _PCREXFORM_CACHE.get(regex)
    if code is not None:
        return code
    import pcre2

    try:
        code = pcre2.compile(regex.encode("utf-8", "surrogateescape"))
    except Exception as exc:
        raise TransformError(f"pcrexform: \"{regex}\" does not compile: {exc}") from exc
    if int(getattr(code, "groups", 0) or 0) < 1:
        raise TransformError("pcrexform: the expression needs a capture group (its output)")
    if len(_PCREXFORM_CACHE) < 4096:
        _PCREXFORM_CACHE[regex] = code
    return code


def pcrexform(buf: bytes, t: Transform) -> bytes | None:
    """The first capture of the first match; without a match the buffer is unchanged
    (DetectTransformPcrexform copies only on success)."""
    code = compile_pcrexform(t.arg or "")
    try:
        m = code.search(buf)
        group = m.group(1) if m is not None else None
    except Exception:  # match limits, unset group
        return buf
    return bytes(group) if group is not None else buf


def from_base64(buf: bytes, t: Transform) -> bytes | None:
    """Decode ``buf[offset:offset+bytes]`` in the transform's mode; the buffer is left as
    is when the offset is past its end or nothing decodes."""
    if not buf or (t.offset and t.offset >= len(buf)):
        return buf
    data = buf[t.offset :]
    if t.nbytes:
        data = data[: t.nbytes]
    decoded = b64.decode(data, t.mode)
    return decoded if decoded else buf


def domain(buf: bytes, t: Transform) -> bytes | None:
    """The registrable domain (public suffix + one label), by the Public Suffix List."""
    found = psl.registrable_domain(buf)
    return found if found is not None else buf


def tld(buf: bytes, t: Transform) -> bytes | None:
    """The public suffix of a host name (``co.uk`` of ``www.example.co.uk``)."""
    found = psl.public_suffix(buf)
    return found if found is not None else buf


TRANSFORMS: dict[str, Callable[[bytes, Transform], bytes | None]] = {
    "to_lowercase": to_lowercase,
    "to_uppercase": to_uppercase,
    "strip_whitespace": strip_whitespace,
    "compress_whitespace": compress_whitespace,
    "url_decode": url_decode,
    "xor": xor,
    "to_md5": to_md5,
    "to_sha1": to_sha1,
    "to_sha256": to_sha256,
    "dotprefix": dotprefix,
    "header_lowercase": header_lowercase,
    "strip_pseudo_headers": strip_pseudo_headers,
    "pcrexform": pcrexform,
    "from_base64": from_base64,
    "domain": domain,
    "tld": tld,
}


def check_usable(chain: Sequence[Transform]) -> None:
    """Raise TransformError when a transform of the chain cannot run here."""
    for t in chain:
        if t.name not in TRANSFORMS:
            raise TransformError(f"transform {t.name} is not supported")
        if t.name == "pcrexform":
            compile_pcrexform(t.arg or "")
        elif t.name in ("domain", "tld") and not psl.available():
            raise TransformError(
                f"transform {t.name} needs the Public Suffix List ({psl.PSL_PATH} not found)"
            )


def apply_chain(chain: Sequence[Transform], buf: bytes) -> bytes | None:
    out: bytes | None = buf
    for t in chain:
        assert out is not None
        out = TRANSFORMS[t.name](out, t)
        if out is None:
            return None
    return out


def apply_multi(
    chain: Sequence[Transform], value: bytes | list[bytes] | None
) -> bytes | list[bytes] | None:
    """A fetched buffer (single or one per instance) through the chain."""
    if value is None or not chain:
        return value
    if isinstance(value, list):
        items = [apply_chain(chain, v) for v in value]
        return [v for v in items if v is not None]
    return apply_chain(chain, value)


def chain_key(name: str, chain: Sequence[Transform]) -> str:
    """Cache/MPM key of a buffer seen through a transform chain."""
    if not chain:
        return name
    return name + "|" + "|".join(t.ident for t in chain)


def content_incompatible(chain: Sequence[Transform], pattern: bytes) -> str | None:
    """Suricata's TransformValidate over every transform of the chain
    (DetectEngineBufferTypeValidateTransform): the name of the transform a content can
    never match after, or None."""
    for t in chain:
        name = t.name
        if name == "to_lowercase" and any(0x41 <= c <= 0x5A for c in pattern):
            return name
        if name == "to_uppercase" and any(0x61 <= c <= 0x7A for c in pattern):
            return name
        if name == "strip_whitespace" and any(c in _SPACE for c in pattern):
            return name
        if name == "compress_whitespace" and any(
            a in _SPACE and b in _SPACE for a, b in itertools.pairwise(pattern)
        ):
            return name
    return None
