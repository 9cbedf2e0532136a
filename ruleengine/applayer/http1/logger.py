"""The EVE ``http`` object of a transaction, as ``output-json-http.c`` writes it.

* basic fields, always: hostname, http_port, url, http_user_agent, xff, http_content_type,
  content_range;
* ``extended: yes``: http_refer, http_method, protocol, status (or status_string),
  redirect, length (alerts always carry these: ``EveHttpAddMetadata``);
* ``dump-all-headers: request|response|both``: every header of that side in
  ``request_headers`` / ``response_headers`` (``[{"name", "value"}]``, the name as sent);
* ``custom: [...]``: only the listed headers of Suricata's table (``http_fields[]``), by
  their config name (``x_forwarded_proto``) or header name (``X-Forwarded-Proto``, any
  case), into the same arrays. Names outside the table are ignored, as Suricata does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ruleengine.applayer.http1.tx import HttpTransaction
from ruleengine.applayer.jsontext import as_int, text
from ruleengine.config.values import parse_bool

# Suricata's http_fields[]: (config name, header name, extended). ``etag`` maps to the
# header "etags" there, which no server sends: kept, so ``custom: [etag]`` logs nothing
# there and here alike.
_FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("accept", "accept", False), ("accept_charset", "accept-charset", False),
    ("accept_encoding", "accept-encoding", False),
    ("accept_language", "accept-language", False),
    ("accept_datetime", "accept-datetime", False), ("authorization", "authorization", False),
    ("cache_control", "cache-control", False), ("cookie", "cookie", False),
    ("from", "from", False), ("max_forwards", "max-forwards", False),
    ("origin", "origin", False), ("pragma", "pragma", False),
    ("proxy_authorization", "proxy-authorization", False), ("range", "range", False),
    ("te", "te", False), ("via", "via", False),
    ("x_requested_with", "x-requested-with", False), ("dnt", "dnt", False),
    ("x_forwarded_proto", "x-forwarded-proto", False),
    ("x_authenticated_user", "x-authenticated-user", False),
    ("x_flash_version", "x-flash-version", False), ("accept_range", "accept-range", False),
    ("age", "age", False), ("allow", "allow", False), ("connection", "connection", False),
    ("content_encoding", "content-encoding", False),
    ("content_language", "content-language", False),
    ("content_length", "content-length", False),
    ("content_location", "content-location", False), ("content_md5", "content-md5", False),
    ("content_range", "content-range", False), ("content_type", "content-type", False),
    ("date", "date", False), ("etag", "etags", False), ("expires", "expires", False),
    ("last_modified", "last-modified", False), ("link", "link", False),
    ("location", "location", False), ("proxy_authenticate", "proxy-authenticate", False),
    ("referer", "referer", True), ("refresh", "refresh", False),
    ("retry_after", "retry-after", False), ("server", "server", False),
    ("set_cookie", "set-cookie", False), ("trailer", "trailer", False),
    ("transfer_encoding", "transfer-encoding", False), ("upgrade", "upgrade", False),
    ("vary", "vary", False), ("warning", "warning", False),
    ("www_authenticate", "www-authenticate", False),
    ("true_client_ip", "true-client-ip", False), ("org_src_ip", "org-src-ip", False),
    ("x_bluecoat_via", "x-bluecoat-via", False),
)  # fmt: skip
_MAX_NAME = 255  # MAX_SIZE_HEADER_NAME - 1
_MAX_VALUE = 2047  # MAX_SIZE_HEADER_VALUE - 1
_RANGE = re.compile(rb"^\s*bytes\s+(?:(\d+)\s*-\s*(\d+)|\*)\s*/\s*(\d+|\*)\s*$", re.I)


def _header(tx: Any, getter: str, name: bytes, attribute: str) -> Any:
    """A header through the transaction's ``request_header``/``response_header`` method,
    or a plain attribute of that name (test doubles)."""
    method = getattr(tx, getter, None)
    if callable(method):
        return method(name)
    return getattr(tx, attribute, None)


def custom_fields(options: Mapping[str, Any]) -> frozenset[str]:
    """The header names (lower case) ``custom:`` selects; extended's own field (referer)
    is not logged twice when ``extended`` is on."""
    listed = options.get("custom")
    if isinstance(listed, str | bytes) or not isinstance(listed, Sequence):
        return frozenset()
    extended = parse_bool(options.get("extended")) is True
    chosen: set[str] = set()
    for item in listed:
        name = str(item)
        for config_name, header, ext in _FIELDS:
            if name == config_name or name.lower() == header:
                if not (extended and ext):
                    chosen.add(header)
                break
    return frozenset(chosen)


def dump_all(options: Mapping[str, Any]) -> tuple[bool, bool]:
    """``dump-all-headers``: (request, response). Suricata compares prefixes."""
    value = options.get("dump-all-headers")
    if isinstance(value, list) and value:
        value = value[0]
    word = str(value or "")
    if word.startswith("both"):
        return True, True
    return word.startswith("request"), word.startswith("response")


# header names as sent -> as compared (tx.py's rule: NULs out, SP/HT trimmed, lower case);
# the same few spellings recur in every transaction. Bounded: a peer may send endless names.
_LOWER: dict[bytes, bytes] = {}
_LOWER_MAX = 4096
_LOWER_LEN = 64
# the headers the basic and extended fields read, per side
_REQUEST_WANTED = frozenset((b"user-agent", b"x-forwarded-for", b"referer"))
_RESPONSE_WANTED = frozenset((b"content-type", b"content-range", b"location"))


def _lower(name: bytes) -> bytes:
    low = name.replace(b"\x00", b"").strip(b" \t").lower()
    if len(name) <= _LOWER_LEN:
        if len(_LOWER) >= _LOWER_MAX:
            _LOWER.clear()
        _LOWER[name] = low
    return low


def _pick(headers: list[tuple[bytes, bytes]], wanted: frozenset[bytes]) -> dict[bytes, bytes]:
    """The wanted headers of a list in one pass, the first of each name (as
    ``HttpTransaction.request_header`` finds it)."""
    found: dict[bytes, bytes] = {}
    known = _LOWER.get
    for name, value in headers:
        low = known(name)
        if low is None:
            low = _lower(name)
        if low in wanted and low not in found:
            found[low] = value
    return found


def _replace(raw: bytes | None) -> str | None:
    """The transaction's own EVE text (``HttpTransaction.url`` and the like): bad UTF-8
    replaced, not escaped."""
    return None if raw is None else raw.decode("utf-8", "replace")


def _escaped(raw: bytes | None) -> str | None:
    """A header value as EVE text (``text``), the common case without a call."""
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return text(raw)


def _tx_object(tx: HttpTransaction, extended: bool) -> dict[str, Any]:
    """``_basic`` (+ ``_extended``) of a parser transaction in one go: each header list is
    read once for all the fields, and the fields come straight from the transaction's
    attributes. Same keys, order and values as the generic path."""
    request = _pick(tx.request_headers, _REQUEST_WANTED)
    response = _pick(tx.response_headers, _RESPONSE_WANTED)
    http: dict[str, Any] = {}
    value: str | None = _replace(tx.host)
    if value:
        http["hostname"] = value
    if tx.request_port is not None:
        http["http_port"] = tx.request_port
    value = _replace(tx.uri_raw)
    if value:
        http["url"] = value
    value = _replace(request.get(b"user-agent"))
    if value:
        http["http_user_agent"] = value
    value = _escaped(request.get(b"x-forwarded-for"))
    if value:
        http["xff"] = value
    value = _escaped(response.get(b"content-type"))
    if value:
        # Suricata logs the media type only, without parameters
        value = value.split(";", 1)[0].strip()
        if value:
            http["http_content_type"] = value
    content_range = response.get(b"content-range")
    if content_range:
        http["content_range"] = _content_range(content_range)
    if not extended:
        return http
    value = _escaped(request.get(b"referer"))
    if value:
        http["http_refer"] = value
    value = _replace(tx.method_raw)
    if value:
        http["http_method"] = value
    value = _replace(tx.request_protocol)
    if value:
        http["protocol"] = value
    status = tx.status
    if status is not None and status > 0:
        http["status"] = status
    else:
        # a status line whose code is not a number: its text (libhtp's response_status)
        value = _escaped(tx.status_code)
        if value:
            http["status_string"] = value
    value = _escaped(response.get(b"location"))
    if value:
        http["redirect"] = value
    length = tx.response_message_len
    http["length"] = length if length >= 0 else 0
    return http


def _put(http: dict[str, Any], key: str, value: Any) -> None:
    """``http[key]`` = the value as text, when it has any."""
    value = text(value)
    if value:
        http[key] = value


def _basic(tx: Any, http: dict[str, Any]) -> None:
    _put(http, "hostname", getattr(tx, "hostname", None))
    port = as_int(getattr(tx, "host_port", None))
    if port is not None:
        http["http_port"] = port
    _put(http, "url", getattr(tx, "url", None))
    _put(http, "http_user_agent", getattr(tx, "user_agent", None))
    _put(http, "xff", _header(tx, "request_header", b"x-forwarded-for", "xff"))
    content_type = text(_header(tx, "response_header", b"content-type", "content_type"))
    if content_type:
        # Suricata logs the media type only, without parameters
        _put(http, "http_content_type", content_type.split(";", 1)[0].strip())
    content_range = _header(tx, "response_header", b"content-range", "content_range")
    if isinstance(content_range, bytes | str) and content_range:
        http["content_range"] = _content_range(content_range)


def _content_range(value: bytes | str) -> dict[str, Any]:
    """``{"raw", "start", "end", "size"}`` (HTPParseContentRange; ``*`` parts left out)."""
    raw = value.encode("latin-1", "replace") if isinstance(value, str) else value
    out: dict[str, Any] = {"raw": text(raw) or ""}
    parsed = _RANGE.match(raw)
    if parsed is not None:
        start, end, size = parsed.groups()
        if start is not None and end is not None:
            out["start"], out["end"] = int(start), int(end)
        if size is not None and size != b"*":
            out["size"] = int(size)
    return out


def _extended(tx: Any, http: dict[str, Any]) -> None:
    _put(http, "http_refer", _header(tx, "request_header", b"referer", "referer"))
    _put(http, "http_method", getattr(tx, "method", None))
    _put(http, "protocol", getattr(tx, "protocol", None))
    status = as_int(getattr(tx, "status", None))
    if status is not None and status > 0:
        http["status"] = status
    else:
        # a status line whose code is not a number: its text (libhtp's response_status)
        _put(http, "status_string", getattr(tx, "status_code", None))
    _put(http, "redirect", _header(tx, "response_header", b"location", "redirect"))
    length = as_int(getattr(tx, "length", None))
    http["length"] = length if length is not None and length >= 0 else 0


def _headers(headers: Sequence[tuple[bytes, bytes]], wanted: frozenset[str] | None
             ) -> list[dict[str, str]]:
    """``EveHttpLogJSONHeaders``: every header (``wanted`` None) or the chosen ones, the
    name and value cut at Suricata's buffer sizes."""
    out: list[dict[str, str]] = []
    for name, value in headers:
        if wanted is not None and name.strip().lower().decode("latin-1") not in wanted:
            continue
        out.append({"name": text(bytes(name[:_MAX_NAME])) or "",
                    "value": text(bytes(value[:_MAX_VALUE])) or ""})
    return out


def _add_headers(tx: Any, http: dict[str, Any], options: Mapping[str, Any]) -> None:
    request, response = dump_all(options)
    fields = custom_fields(options)
    for side, dump, key in ((True, request, "request_headers"),
                            (False, response, "response_headers")):
        if not dump and not fields:
            continue
        headers = getattr(tx, "request_headers" if side else "response_headers", None)
        if not isinstance(headers, list):
            continue
        logged = _headers(headers, None if dump else fields)
        if logged:  # an empty array is left out (SCJbRestoreMark)
            http[key] = logged


def eve_http(tx: Any, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``http`` event's object with eve-log's ``http`` options. Fields Suricata leaves
    out when absent or empty are left out here too."""
    options = options or {}
    extended = parse_bool(options.get("extended")) is True
    if type(tx) is HttpTransaction:
        http = _tx_object(tx, extended)
    else:
        http = {}
        _basic(tx, http)
        if extended:
            _extended(tx, http)
    if "dump-all-headers" in options or "custom" in options:
        _add_headers(tx, http, options)
    return http


def eve_http_alert(tx: Any, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``http`` object of alerts, fileinfo and other events: basic and extended fields
    whatever the http logger's options (``EveHttpAddMetadata``)."""
    if type(tx) is HttpTransaction:
        return _tx_object(tx, True)
    http: dict[str, Any] = {}
    _basic(tx, http)
    _extended(tx, http)
    return http


def same_as_alert(options: Mapping[str, Any]) -> bool:
    """Is ``eve_http(tx, options)`` the object ``eve_http_alert(tx)`` builds (extended on,
    no header arrays)? Then one object can serve the http event, alerts and fileinfo."""
    if parse_bool(options.get("extended")) is not True:
        return False
    request, response = dump_all(options)
    return not (request or response or custom_fields(options))
