"""libhtp's URI and host normalisation with Suricata's IDS personality settings.

Path (``rust/htp/src/urlencoded.rs`` ``path_decode_uri``, ``utf8_decoder.rs``, ``uri.rs``):
``%XX`` and ``%uXXXX`` decoded (invalid encodings keep the ``%``), ``\\`` -> ``/``, encoded
separators decoded, ``//`` compressed, UTF-8 converted to single bytes by best fit (invalid
sequences -> ``?``), then RFC 3986 dot-segment removal. Lowercasing is off (Suricata).
Query and fragment: decoded once (``%XX``, ``%uXXXX``; ``+`` kept unless
``query-plusspace-decode``). URI host: decoded, lowercased, port and trailing dots removed; a Host
header's host is only lowercased and stripped of its port (libhtp ``parse_hostport``; its
trailing dot stays, see libhtp's ``10-host-in-headers`` test).
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass

_HEX = frozenset(b"0123456789abcdefABCDEF")
_REPLACEMENT = 0x3F  # '?', libhtp's best-fit replacement byte


@functools.lru_cache(maxsize=4096)
def bestfit(codepoint: int) -> int:
    """Single byte for a code point, approximating libhtp's Windows-1252 best-fit map: itself
    below 0x100, fullwidth forms and letters with diacritics folded to their ASCII base
    (Unicode compatibility decomposition), anything else the replacement byte ``?``."""
    if codepoint < 0x100:
        return codepoint
    if 0xFF01 <= codepoint <= 0xFF5E:
        return codepoint - 0xFEE0
    if codepoint > 0x10FFFF or 0xD800 <= codepoint <= 0xDFFF:
        return _REPLACEMENT
    base = unicodedata.normalize("NFKD", chr(codepoint))[:1]
    if base and base.isascii() and base.isprintable():
        return ord(base)
    return _REPLACEMENT


def _hexval(pair: bytes) -> int:
    return int(pair, 16)


def path_decode(path: bytes, *, lowercase: bool = False) -> bytes:
    """URL-decode a path the way the IDS personality does (before UTF-8 and dot segments)."""
    if not lowercase and b"%" not in path and b"\\" not in path and b"//" not in path:
        return path
    out = bytearray()
    i, n = 0, len(path)
    while i < n:
        byte = path[i]
        if byte == 0x25:  # '%'
            byte, i = _path_percent(path, i)
        else:
            i += 1
        if byte == 0x5C:  # backslash -> slash
            byte = 0x2F
        if lowercase and 0x41 <= byte <= 0x5A:
            byte += 0x20
        if byte == 0x2F and out and out[-1] == 0x2F:
            continue  # compress separators
        out.append(byte)
    return bytes(out)


def _path_percent(path: bytes, i: int) -> tuple[int, int]:
    """Decode the escape at ``path[i] == '%'``; return (byte, next index)."""
    nxt = path[i + 1 : i + 2]
    if nxt in (b"u", b"U"):
        hexpart = path[i + 2 : i + 6]
        if len(hexpart) == 4 and all(c in _HEX for c in hexpart):
            hi, lo = _hexval(hexpart[:2]), _hexval(hexpart[2:])
            return (lo if hi == 0 else bestfit(hi << 8 | lo)), i + 6
        return 0x25, i + 1  # invalid %u: keep the '%'
    pair = path[i + 1 : i + 3]
    if len(pair) == 2 and all(c in _HEX for c in pair):
        return _hexval(pair), i + 3
    return 0x25, i + 1


def query_decode(query: bytes, *, plusspace: bool = False) -> bytes:
    """URL-decode a query string once (libhtp ``decode_uri``)."""
    if b"%" not in query and not (plusspace and b"+" in query):
        return query
    out = bytearray()
    i, n = 0, len(query)
    while i < n:
        byte = query[i]
        if byte == 0x25:
            nxt = query[i + 1 : i + 2]
            if nxt in (b"u", b"U"):
                hexpart = query[i + 2 : i + 6]
                if len(hexpart) == 4 and all(c in _HEX for c in hexpart):
                    hi, lo = _hexval(hexpart[:2]), _hexval(hexpart[2:])
                    out.append(lo if hi == 0 else bestfit(hi << 8 | lo))
                    i += 6
                    continue
            else:
                pair = query[i + 1 : i + 3]
                if len(pair) == 2 and all(c in _HEX for c in pair):
                    out.append(_hexval(pair))
                    i += 3
                    continue
            out.append(0x25)
            i += 1
            continue
        if byte == 0x2B and plusspace:
            byte = 0x20
        out.append(byte)
        i += 1
    return bytes(out)


def _utf8_expect(lead: int) -> tuple[int, int, int, int] | None:
    """(continuation bytes, initial code point bits, 2nd byte min, 2nd byte max) for a lead byte.
    Overlong forms are allowed (libhtp's ``utf8d_allow_overlong``), surrogates and > U+10FFFF
    are not."""
    if 0xC0 <= lead <= 0xDF:
        return 1, lead & 0x1F, 0x80, 0xBF
    if 0xE0 <= lead <= 0xEF:
        return 2, lead & 0x0F, 0x80, (0x9F if lead == 0xED else 0xBF)
    if 0xF0 <= lead <= 0xF4:
        return 3, lead & 0x07, 0x80, (0x8F if lead == 0xF4 else 0xBF)
    return None


def utf8_bestfit(data: bytes) -> bytes:
    """Convert a (possibly invalid) UTF-8 path to single bytes like libhtp's decoder."""
    if data.isascii():
        return data
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        lead = data[i]
        if lead < 0x80:
            out.append(lead)
            i += 1
            continue
        spec = _utf8_expect(lead)
        if spec is None:
            out.append(_REPLACEMENT)  # invalid first byte is consumed
            i += 1
            continue
        need, codepoint, lo, hi = spec
        j = i + 1
        ok = True
        for k in range(need):
            if j >= n:
                # incomplete at the end: one replacement per byte after the first
                out.extend(b"?" * (j - i - 1))
                return bytes(out)
            c = data[j]
            low, high = (lo, hi) if k == 0 else (0x80, 0xBF)
            if not low <= c <= high:
                ok = False
                break
            codepoint = codepoint << 6 | (c & 0x3F)
            j += 1
        if ok:
            out.append(bestfit(codepoint))
            i = j
        else:
            out.append(_REPLACEMENT)  # the offending byte starts the next character
            i = j
    return bytes(out)


_START, _DOT, _TWO_DOT, _SLASH, _SLASH_DOT, _SLASH_DOT_DOT, _AFTER_DOT_DOT, _REGULAR = range(8)
# What each state holds back, by state: written out, followed by the byte, when that byte
# shows the held bytes start no dot segment (the machine then reads a regular segment).
_HELD = (b"", b".", b"..", b"/", b"/.", b"/..", b"/", b"")
# (state << 8 | byte) -> the next state, for the bytes that go on with a dot segment
_STEPS = {
    _START << 8 | 0x2E: _DOT, _START << 8 | 0x2F: _SLASH,
    _DOT << 8 | 0x2E: _TWO_DOT, _DOT << 8 | 0x2F: _START,  # "./" at the start goes
    _TWO_DOT << 8 | 0x2F: _START,  # "../" at the start goes
    _SLASH << 8 | 0x2E: _SLASH_DOT, _AFTER_DOT_DOT << 8 | 0x2E: _SLASH_DOT,
    _SLASH_DOT << 8 | 0x2F: _AFTER_DOT_DOT,  # "/./" -> "/"
    _SLASH_DOT << 8 | 0x2E: _SLASH_DOT_DOT,
    _SLASH_DOT_DOT << 8 | 0x2F: _AFTER_DOT_DOT,  # "/../": the segment before goes too
    _REGULAR << 8 | 0x2F: _SLASH,
}  # fmt: skip


def remove_dot_segments(path: bytes) -> bytes:
    """RFC 3986 5.2.4 as libhtp's ``normalize_uri_path_inplace`` state machine does it
    (including its quirks, e.g. ``/./`` -> empty)."""
    if b"/." not in path and not path.startswith(b"."):
        return path  # no segment starts with a dot: nothing to remove
    out = bytearray()
    state = _START
    for c in path:
        step = _STEPS.get(state << 8 | c)
        if step is None:
            out += _HELD[state]
            out.append(c)
            state = _REGULAR
            continue
        if state == _SLASH_DOT_DOT:
            _pop_segment(out)
        state = step
    if state == _SLASH:
        out.append(0x2F)
    elif state == _SLASH_DOT_DOT:
        _pop_segment(out)
    return bytes(out)


def _pop_segment(out: bytearray) -> None:
    """Drop the last written segment and its leading slash."""
    cut = out.rfind(b"/")
    del out[max(cut, 0) :]


@dataclass(frozen=True, slots=True)
class ParsedUri:
    scheme: bytes | None
    userinfo: bytes | None
    hostname: bytes | None
    port: bytes | None
    path: bytes | None
    query: bytes | None
    fragment: bytes | None


def parse_uri(uri: bytes, *, method: bytes = b"") -> ParsedUri:
    """Split a request target: ``scheme://[user@]host[:port]`` only with a scheme; a CONNECT
    target is ``host:port``."""
    if method.upper() == b"CONNECT" and not uri.startswith(b"/"):
        host, port = split_hostport(uri)
        return ParsedUri(None, None, host, port, None, None, None)
    scheme = userinfo = hostname = port = None
    rest = uri
    if not uri.startswith(b"/"):
        colon = uri.find(b"://")
        if colon > 0 and not any(c in b"/?#" for c in uri[:colon]):
            scheme = uri[:colon]
            after = uri[colon + 3 :]
            end = len(after)
            for delim in b"/?#":
                pos = after.find(bytes((delim,)))
                if pos != -1 and pos < end:
                    end = pos
            authority, rest = after[:end], after[end:]
            if b"@" in authority:
                userinfo, authority = authority.rsplit(b"@", 1)
            hostname, port = split_hostport(authority)
    fragment = query = None
    hash_pos = rest.find(b"#")
    if hash_pos != -1:
        rest, fragment = rest[:hash_pos], rest[hash_pos + 1 :]
    q_pos = rest.find(b"?")
    if q_pos != -1:
        rest, query = rest[:q_pos], rest[q_pos + 1 :]
    path = rest if rest or scheme is None else None
    if scheme is None and not rest and (query is not None or fragment is not None):
        path = None
    return ParsedUri(scheme, userinfo, hostname, port, path, query, fragment)


def split_hostport(hostport: bytes) -> tuple[bytes, bytes | None]:
    """``host:port`` / ``[v6]:port`` -> (host, port or None). The host keeps its case."""
    hostport = hostport.strip(b" \t")
    if hostport.startswith(b"["):
        end = hostport.find(b"]")
        if end != -1:
            rest = hostport[end + 1 :]
            return hostport[: end + 1], (rest[1:] if rest.startswith(b":") else None)
    if b":" in hostport:
        host, port = hostport.rsplit(b":", 1)
        return host, port
    return hostport, None


def normalize_host(host: bytes) -> bytes:
    """Decoded, lowercase, trailing dots removed (libhtp ``normalized_hostname``)."""
    decoded = query_decode(host, plusspace=False).lower()
    return decoded.rstrip(b".")


def normalize_path(path: bytes, *, lowercase: bool = False, double_decode: bool = False
                   ) -> bytes:
    """libhtp's normalised ``parsed_uri->path``: decoded, UTF-8 best-fit, dot segments
    removed (and decoded again with ``double-decode-path``)."""
    path = remove_dot_segments(utf8_bestfit(path_decode(path, lowercase=lowercase)))
    return query_decode(path) if double_decode else path


def normalize_uri(
    uri: bytes,
    *,
    method: bytes = b"",
    double_decode_path: bool = False,
    double_decode_query: bool = False,
    plusspace: bool = False,
    lowercase: bool = False,
    include_all: bool = False,
) -> tuple[bytes | None, ParsedUri]:
    """The ``http.uri`` buffer for a request target (``None`` when libhtp has none) and the
    parsed parts."""
    parsed = parse_uri(uri, method=method)
    out = bytearray()
    if include_all:
        if parsed.scheme is not None:
            out += parsed.scheme.lower() + b"://"
        if parsed.userinfo is not None:
            user, _, password = parsed.userinfo.partition(b":")
            out += query_decode(user) + b":" + query_decode(password) + b"@"
        if parsed.hostname is not None:
            out += normalize_host(parsed.hostname)
        # libhtp's normalised URI keeps only the port number, so no ":port" here
    if parsed.path is not None:
        out += normalize_path(parsed.path, lowercase=lowercase, double_decode=double_decode_path)
    if parsed.query is not None:
        query = query_decode(parsed.query, plusspace=plusspace)
        if double_decode_query:
            query = query_decode(query, plusspace=plusspace)
        out += b"?" + query
    if parsed.fragment is not None:
        # libhtp normalises the fragment with the same decoder as the query
        out += b"#" + query_decode(parsed.fragment, plusspace=plusspace)
    if not out:
        return None, parsed
    return bytes(out), parsed
