"""Streaming Content-Encoding decoders (gzip, deflate as zlib or raw, br, optional lzma).

Like libhtp, each layer sniffs the data rather than trusting the header: ``gzip`` that is
really zlib/raw deflate (and the reverse) is still decoded; data that cannot be decoded is
passed through unchanged from that point on (an event is recorded, the flow goes on).
Output is bounded by the caller's budget (compression bomb guard).
"""

from __future__ import annotations

import lzma
import zlib
from typing import Any, Protocol

try:  # Brotli is a declared dependency; without it "br" is left undecoded, as unknown
    import brotli as _brotli
except ImportError:  # pragma: no cover - environment without the wheel
    _brotli = None

_BROTLI_ERROR: type[Exception] = _brotli.error if _brotli is not None else ValueError

_MAX_GZIP_HEADER = 64 * 1024  # unterminated FNAME/FCOMMENT must not buffer forever
_AUTO_WBITS = 47  # zlib or gzip header, auto-detected
_RAW_WBITS = -15


class _Stream(Protocol):
    def decompress(self, data: bytes, max_length: int = ...) -> bytes: ...


class Layer:
    """One decoding layer; ``feed`` never raises."""

    __slots__ = ("_decoder", "_first", "_kind", "_passthrough", "_pending", "failed")

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._decoder: _Stream | None = None
        self._first = True
        self._pending = b""
        self._passthrough = False
        self.failed = False

    def feed(self, data: bytes, limit: int) -> bytes:
        """Decode ``data``; at most ``limit`` output bytes (0 = no limit)."""
        if self._passthrough or not data:
            return data
        if self._decoder is None:
            # sniffing needs the first bytes: hold tiny first pieces back
            data = self._pending + data
            if len(data) < 4:
                self._pending = data
                return b""
            self._pending = b""
            self._decoder = self._new_decoder(data)
        try:
            return self._run(data, limit)
        except (zlib.error, lzma.LZMAError, EOFError, ValueError, _BROTLI_ERROR):
            if self._first and self._kind in ("gzip", "deflate"):
                # wrong guess on the very first bytes: retry as raw deflate
                self._decoder = zlib.decompressobj(_RAW_WBITS)
                try:
                    return self._run(data, limit)
                except (zlib.error, EOFError, ValueError):
                    pass
            self.failed = True
            self._passthrough = True
            return data if self._first else b""

    def flush(self) -> bytes:
        """End of body: whatever was held back for sniffing."""
        data, self._pending = self._pending, b""
        if not data or self._passthrough:
            return data
        self._decoder = self._new_decoder(data)
        try:
            return self._run(data, 0)
        except (zlib.error, lzma.LZMAError, EOFError, ValueError, _BROTLI_ERROR):
            self.failed = True
            return data

    def _run(self, data: bytes, limit: int) -> bytes:
        assert self._decoder is not None
        out = self._decoder.decompress(data, limit) if limit else self._decoder.decompress(data)
        self._first = False
        return out

    def _new_decoder(self, data: bytes) -> _Stream:
        if self._kind == "lzma":
            return lzma.LZMADecompressor(format=lzma.FORMAT_ALONE, memlimit=1 << 20)
        if self._kind == "br":
            return _BrotliStream()
        if data[:2] == b"\x1f\x8b":
            return _GzipStream()
        if _looks_zlib(data):
            return zlib.decompressobj(_AUTO_WBITS)
        return zlib.decompressobj(_RAW_WBITS)


class _BrotliStream:
    """Brotli through the ``brotli`` module's streaming decompressor (output bounded by
    feeding the input in slices while the caller's limit is not reached)."""

    __slots__ = ("_dec",)

    def __init__(self) -> None:
        assert _brotli is not None
        self._dec: Any = _brotli.Decompressor()

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        if self._dec.is_finished():
            return b""
        if not max_length:
            return bytes(self._dec.process(data))
        out = bytearray()
        for i in range(0, len(data), 1024):
            out += self._dec.process(data[i : i + 1024])
            if len(out) >= max_length or self._dec.is_finished():
                break
        return bytes(out[:max_length])


class _GzipStream:
    """gzip parsed like libhtp: the header is skipped by hand (reserved flag bits and odd
    FEXTRA contents are tolerated), the payload is raw deflate, CRC32/ISIZE are not checked."""

    __slots__ = ("_header", "_inflate")

    def __init__(self) -> None:
        self._header = b""
        self._inflate: zlib._Decompress | None = None

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        if self._inflate is None:
            self._header += data
            size = _gzip_header_size(self._header)
            if size is None:
                if len(self._header) > _MAX_GZIP_HEADER:
                    raise ValueError("gzip header too long")  # -> pass-through, with an event
                return b""  # header not complete yet
            data = self._header[size:]
            self._header = b""
            self._inflate = zlib.decompressobj(_RAW_WBITS)
        if self._inflate.eof:
            return b""  # the trailer and anything after the member
        return self._inflate.decompress(data, max_length)


def _gzip_header_size(data: bytes) -> int | None:
    """Length of the gzip member header (RFC 1952) or None if more bytes are needed."""
    if len(data) < 10:
        return None
    flags = data[3]
    pos = 10
    if flags & 0x04:  # FEXTRA
        if len(data) < pos + 2:
            return None
        pos += 2 + int.from_bytes(data[pos : pos + 2], "little")
    for bit in (0x08, 0x10):  # FNAME, FCOMMENT: zero-terminated
        if flags & bit:
            end = data.find(b"\x00", pos)
            if end == -1:
                return None
            pos = end + 1
    if flags & 0x02:  # FHCRC
        pos += 2
    return pos if len(data) >= pos else None


def _looks_zlib(data: bytes) -> bool:
    if len(data) < 2:
        return False
    cmf, flg = data[0], data[1]
    return cmf & 0x0F == 8 and (cmf << 8 | flg) % 31 == 0


_CODINGS = {
    b"br": "br",
    b"gzip": "gzip",
    b"x-gzip": "gzip",
    b"deflate": "deflate",
    b"x-deflate": "deflate",
    b"lzma": "lzma",
}


def _coding_by_substring(token: bytes) -> str | None:
    """libhtp is lenient: a token that contains a known coding name selects it."""
    for needle, kind in ((b"gzip", "gzip"), (b"deflate", "deflate"), (b"lzma", "lzma")):
        if needle in token:
            return kind
    return None


def parse_content_encoding(
    value: bytes, *, lzma_enabled: bool, layer_limit: int = 0
) -> tuple[list[str], bool, bool]:
    """``(codings, abnormal, too_many)`` for a Content-Encoding value, libhtp style.

    Tokens are separated by commas and/or spaces; NUL bytes are ignored. Every token counts
    as a layer; past ``layer_limit`` (0 = none) the rest is ignored and ``too_many`` is set.
    A token containing ``gzip``/``deflate``/``lzma`` selects that coding (``abnormal`` when
    it is not the exact name); ``identity``/``none`` and unknown tokens decode nothing.
    The codings come back in the order they must be undone (last applied first).
    """
    codings: list[str] = []
    abnormal = too_many = False
    layers = 0
    for token in value.replace(b"\x00", b"").replace(b" ", b",").split(b","):
        name = token.strip(b" \t").lower()
        if not name:
            continue
        layers += 1
        if layer_limit and layers > layer_limit:
            too_many = True
            break
        if name in (b"identity", b"none"):
            continue
        kind = _CODINGS.get(name)
        if kind is None:
            abnormal = True
            kind = _coding_by_substring(name)
        if kind is None or (kind == "lzma" and not lzma_enabled):
            continue
        if kind == "br" and _brotli is None:
            abnormal = True
            continue
        codings.append(kind)
    codings.reverse()
    return codings, abnormal, too_many


class Decompressor:
    """A chain of layers with a total output budget."""

    __slots__ = ("budget_hit", "events", "layers", "remaining")

    def __init__(self, codings: list[str], bomb_limit: int) -> None:
        self.layers = [Layer(kind) for kind in codings]
        self.remaining = bomb_limit  # 0 = unlimited
        self.budget_hit = False
        self.events: list[str] = []

    def feed(self, data: bytes) -> bytes:
        if self.budget_hit:
            return b""
        for layer in self.layers:
            limit = self.remaining if self.remaining else 0
            was_failed = layer.failed
            data = layer.feed(data, limit)
            if layer.failed and not was_failed:
                self.events.append("http.gzip_decompression_failed")
            if not data:
                return b""
        return self._account(data)

    def flush(self) -> bytes:
        """End of body: drain sniffing buffers through the remaining layers."""
        out = b""
        for index, layer in enumerate(self.layers):
            tail = layer.flush()
            for later in self.layers[index + 1 :]:
                tail = later.feed(tail, 0)
            out += tail
        return self._account(out) if out and not self.budget_hit else b""

    def _account(self, data: bytes) -> bytes:
        if self.remaining:
            if len(data) >= self.remaining:
                data = data[: self.remaining]
                self.budget_hit = True
                self.events.append("http.compression_bomb")
            self.remaining -= len(data)
        return data
