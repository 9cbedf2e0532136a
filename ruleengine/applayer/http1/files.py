"""Which HTTP bodies are files, and their names (``src/app-layer-htp.c``).

* A response body is a file once a response line was seen (or the request was HTTP/0.9).
  Its name is the ``filename=`` of ``Content-Disposition``, else the request's normalised
  URI path.
* A request body is a file for ``PUT`` and for a ``POST`` that is not
  ``multipart/form-data``, named by the URI path; a multipart POST carries one file per part
  whose ``Content-Disposition`` has a ``filename``.

Everything here is a pure function of bytes: the parser calls it, and ``getters`` uses the
same multipart reading for ``file.data``, so detection and ``fileinfo`` agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ruleengine.applayer.files import AppFile, FilePolicy
from ruleengine.applayer.http1 import lexical as lex

if TYPE_CHECKING:
    from ruleengine.applayer.http1.tx import HttpTransaction

# a multipart body may name many files: more than this per transaction are not tracked
MAX_FILES_PER_TX = 256

_SPACE = b" \t\r\n\x0b\x0c"
_BACKSLASH, _QUOTE, _SEMICOLON = 0x5C, 0x22, 0x3B


def disposition_param(value: bytes, name: bytes = b"filename=") -> bytes | None:
    """The value of parameter ``name`` (lowercase, with its ``=``) in a
    ``Content-Disposition`` value, read as Suricata's HTTPParseContentDispositionHeader
    does: ``;`` outside quotes (not escaped) ends a token; one pair of surrounding quotes is
    removed, nothing is unescaped."""
    line = value.lstrip(_SPACE)
    n = len(line)
    quotes = 0
    offset = 0
    x = 1
    while x < n:
        if line[x - 1] != _BACKSLASH and line[x] == _QUOTE:
            quotes += 1
        at_end = x + 1 == n
        if ((line[x - 1] != _BACKSLASH and line[x] == _SEMICOLON) or at_end) \
                and quotes % 2 == 0:
            token = line[offset:x + 1] if at_end else line[offset:x]
            offset = x + 1
            while offset < n and line[offset] in _SPACE:
                x += 1
                offset += 1
            if len(token) > len(name) and token[:len(name)].lower() == name:
                found = token[len(name):]
                if found.startswith(b'"'):
                    found = found[1:]
                if found.endswith(b'"'):
                    found = found[:-1]
                return found
        x += 1
    return None


def multipart_boundary(content_type: bytes | None) -> bytes | None:
    """The boundary of a ``multipart/...`` Content-Type, or None."""
    if content_type is None or not content_type.lower().lstrip().startswith(b"multipart/"):
        return None
    for param in content_type.split(b";")[1:]:
        key, _, value = param.strip().partition(b"=")
        if key.strip().lower() == b"boundary" and value.strip():
            return value.strip().strip(b'"')
    return None


def multipart_file_parts(body: bytes, boundary: bytes) -> list[tuple[bytes, bytes, bool]]:
    """``(filename, content, ended)`` for each part of a multipart body whose
    Content-Disposition names a file; ``ended``: a delimiter followed the content (False for
    the last part of a body that stops early)."""
    delimiter = b"--" + boundary
    files: list[tuple[bytes, bytes, bool]] = []
    parts = body.split(delimiter)
    for index, part in enumerate(parts[1:], start=1):
        if part.startswith(b"--"):
            break  # closing delimiter
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            head, sep, content = part.partition(b"\n\n")
        if not sep:
            continue
        name = _part_filename(head)
        if name is None:
            continue
        ended = index + 1 < len(parts)
        if ended:
            if content.endswith(b"\r\n"):
                content = content[:-2]
            elif content.endswith(b"\n"):
                content = content[:-1]
        files.append((name, content, ended))
    return files


def _part_filename(head: bytes) -> bytes | None:
    for line in head.splitlines():
        key, colon, value = line.partition(b":")
        if colon and key.strip().lower() == b"content-disposition":
            return disposition_param(value)
    return None


def response_file_name(tx: HttpTransaction) -> bytes | None:
    """The name of the response body's file, or None when the body is not a file."""
    if tx.response_line is None and not tx.is_http09:
        return None  # junk taken as body before any response line
    disposition = lex.lookup(tx.response_headers, b"content-disposition")
    if disposition:
        name = disposition_param(disposition)
        if name is not None:
            return name
    return tx.uri_path


def request_file_name(tx: HttpTransaction) -> bytes | None:
    """The name of the request body's single file (PUT, non-multipart POST), or None; a
    multipart POST's files come from :func:`multipart_file_parts`."""
    if tx.method_raw == b"PUT":
        return tx.uri_path
    if tx.method_raw == b"POST" and not is_multipart(tx):
        return tx.uri_path
    return None


def is_multipart(tx: HttpTransaction) -> bool:
    return tx.method_raw == b"POST" and \
        multipart_boundary(tx.request_header(b"content-type")) is not None


class BodyFiles:
    """The file of one direction's current message body, as the parser feeds it.

    Suricata stores file content up to the body limit (``request-body-limit`` /
    ``response-body-limit``): the chunk that crosses it is cut, and the next one closes the
    file ``TRUNCATED``. Multipart request files are read from the stored body when the
    request ends (each part is then complete or cut).
    """

    __slots__ = ("current", "decided", "to_server")

    def __init__(self, *, to_server: bool) -> None:
        self.to_server = to_server
        self.current: AppFile | None = None
        # this body's file question is settled (not a file, multipart, or cut at the
        # limit): nothing more is opened before the next message
        self.decided = False

    def data(self, tx: HttpTransaction, chunk: bytes, stored_before: int, limit: int,
             policy: FilePolicy) -> None:
        """Body bytes (dechunked, decompressed) of ``tx``; ``stored_before``: body bytes
        kept before this chunk, ``limit``: the body limit (0: none)."""
        if limit and stored_before >= limit:
            if self.current is not None:
                self.current.close(truncated=True)
                self.current = None
            self.decided = True
            return
        if self.current is None:
            if self.decided:
                return
            self.decided = True
            name = request_file_name(tx) if self.to_server else response_file_name(tx)
            if name is None:
                return
            self.current = AppFile(name, to_server=self.to_server, tx_id=tx.tx_id,
                                   policy=policy)
            tx.files.append(self.current)
        self.current.append(chunk[:limit - stored_before] if limit else chunk)

    def gap(self, *, fatal: bool) -> None:
        """Stream bytes of the body are missing; ``fatal``: parsing of this direction stops,
        so the file can only end truncated."""
        if self.current is not None:
            self.current.gap()
            if fatal:
                self.abort()

    def abort(self) -> None:
        """Parsing of this direction stopped inside the body: the file is cut short."""
        if self.current is not None:
            self.current.close(truncated=True)
            self.current = None

    def end(self, tx: HttpTransaction, policy: FilePolicy) -> None:
        """The message is complete: close its file; a multipart request yields its parts."""
        if self.current is not None:
            self.current.close()
            self.current = None
        if self.to_server and is_multipart(tx) and tx.request_body:
            boundary = multipart_boundary(tx.request_header(b"content-type"))
            for name, content, ended in multipart_file_parts(tx.request_body, boundary or b""):
                if len(tx.files) >= MAX_FILES_PER_TX:
                    break
                file = AppFile(name, to_server=True, tx_id=tx.tx_id, policy=policy)
                file.append(content)
                file.close(truncated=not ended and tx.request_body_truncated)
                tx.files.append(file)
        self.decided = False
