"""MIME decoding of one SMTP message (Suricata's ``util-decode-mime`` / ``rust/src/mime``).

The message is handed over whole (bounded by ``max-message``) and decoded by the standard
library's :mod:`email` parser with the ``compat32`` policy, which never raises on malformed
input: it records defects instead, which become Suricata's MIME events. What Suricata takes
from a message, and so what this returns:

- **files**: the decoded body of every part that is an attachment (a ``filename`` in
  Content-Disposition or a ``name`` in Content-Type: Suricata's ``CTNT_IS_ATTACHMENT``),
  base64 / quoted-printable decoded when enabled, each cut at ``content-limit`` -- the
  ``file.data`` of the transaction;
- **headers** of the top-level entity (from, to, cc, subject, ...), each value cut at
  ``header-value-depth``;
- **urls** found in text parts for the configured schemes (``extract-urls``), logged
  without the scheme unless ``log-url-scheme``;
- the body MD5 when ``body-md5`` (of the decoded text parts, as Suricata hashes the body).
"""

from __future__ import annotations

import binascii
import email
import email.errors
import hashlib
import quopri
import re
from dataclasses import dataclass, field
from email.message import Message
from email.policy import compat32

from ruleengine.applayer.smtp.config import SmtpConfig

MAX_PARTS = 1024  # entities walked per message (a hostile message can nest thousands)
MAX_URLS = 256
_URL_END = re.compile(rb"[\s\"'<>()\[\]{}]")


@dataclass
class MimeResult:
    files: list[bytes] = field(default_factory=list)  # contents, each up to content-limit
    filenames: list[str] = field(default_factory=list)
    file_sizes: list[int] = field(default_factory=list)  # decoded sizes, before the limit
    headers: list[tuple[str, str]] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    body_md5: str | None = None
    events: list[str] = field(default_factory=list)


def _decode_part(part: Message, config: SmtpConfig, events: list[str]) -> bytes:
    raw = part.get_payload(decode=False)
    data = raw.encode("latin-1", "replace") if isinstance(raw, str) else b""
    cte = str(part.get("content-transfer-encoding", "")).strip().lower()
    if cte == "base64" and config.decode_base64:
        cleaned = re.sub(rb"[^A-Za-z0-9+/=]", b"", data)
        if len(cleaned.rstrip(b"=")) % 4 == 1 or re.search(rb"[^A-Za-z0-9+/=\s]", data):
            events.append("mime_invalid_base64")
        try:
            # lenient as Suricata: decode what is there, padding fixed up
            usable = len(cleaned.rstrip(b"=")) // 4 * 4
            tail = cleaned.rstrip(b"=")[usable:]
            body = binascii.a2b_base64(cleaned.rstrip(b"=")[:usable] or b"")
            if len(tail) >= 2:
                body += binascii.a2b_base64(tail + b"=" * (4 - len(tail)))
            return body
        except (binascii.Error, ValueError):
            events.append("mime_invalid_base64")
            return b""
    if cte == "quoted-printable" and config.decode_qp:
        if re.search(rb"=(?![0-9A-Fa-f]{2}|\r?\n)", data):
            events.append("mime_invalid_qp")
        return quopri.decodestring(data)
    return data


def _urls(text: bytes, config: SmtpConfig, out: list[str]) -> None:
    low = text.lower()
    for scheme in config.url_schemes:
        marker = scheme.encode() + b"://"
        start = low.find(marker)
        while start != -1 and len(out) < MAX_URLS:
            end_match = _URL_END.search(text, start)
            end = end_match.start() if end_match else len(text)
            begin = start if config.log_url_scheme else start + len(marker)
            url = text[begin:end].decode("utf-8", "replace").lower()
            if url and url not in out:
                out.append(url)
            start = low.find(marker, end)


def _headers(msg: Message, depth: int) -> list[tuple[str, str]]:
    out = []
    for name, value in msg.items():
        text = str(value).replace("\r\n", " ").replace("\n", " ").strip()
        out.append((name.lower(), text[:depth] if depth else text))
    return out


def _defect_events(msg: Message, events: list[str]) -> None:
    for defect in getattr(msg, "defects", ()):
        if isinstance(defect, email.errors.MissingHeaderBodySeparatorDefect |
                      email.errors.MalformedHeaderDefect):
            events.append("mime_malformed_msg")
        elif isinstance(defect, email.errors.StartBoundaryNotFoundDefect |
                        email.errors.CloseBoundaryNotFoundDefect |
                        email.errors.MultipartInvariantViolationDefect):
            events.append("mime_parse_failed")


# What the stdlib's lenient parser can still raise on hostile bytes (odd RFC 2231
# parameters, unknown charsets, deep nesting); anything else is a bug and must surface.
_HOSTILE = (ValueError, LookupError, TypeError, IndexError, RecursionError)


def decode_message(data: bytes, config: SmtpConfig) -> MimeResult:
    """Everything Suricata extracts from one message; never raises for any input."""
    result = MimeResult()
    try:
        _decode(data, config, result)
    except _HOSTILE:
        result.events.append("mime_parse_failed")
    result.events = list(dict.fromkeys(result.events))
    return result


def _decode(data: bytes, config: SmtpConfig, result: MimeResult) -> None:
    msg = email.message_from_bytes(data, policy=compat32)
    result.headers = _headers(msg, config.header_value_depth)
    md5 = hashlib.md5(usedforsecurity=False) if config.body_md5 else None
    for count, part in enumerate(msg.walk()):
        if count >= MAX_PARTS:
            result.events.append("mime_parse_failed")
            break
        _defect_events(part, result.events)
        if part.is_multipart():
            continue
        body = _decode_part(part, config, result.events)
        filename = part.get_filename()
        if filename is not None:
            if len(filename) > 255:
                result.events.append("mime_long_filename")
            result.filenames.append(filename)
            result.files.append(body[: config.content_limit])
            result.file_sizes.append(len(body))
        elif part.get_content_maintype() == "text":
            if config.extract_urls:
                _urls(body, config, result.urls)
            if md5 is not None:
                md5.update(body)
    if md5 is not None:
        result.body_md5 = md5.hexdigest()
