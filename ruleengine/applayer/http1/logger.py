"""The EVE ``http`` object of a transaction (``output-json-http.c``, the basic fields)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ruleengine.applayer.jsontext import as_int, text


def _header(tx: Any, getter: str, name: bytes, attribute: str) -> Any:
    """A header through the transaction's ``request_header``/``response_header`` method,
    or a plain attribute of that name (test doubles)."""
    method = getattr(tx, getter, None)
    if callable(method):
        return method(name)
    return getattr(tx, attribute, None)


def eve_http(tx: Any, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Fields Suricata leaves out when absent or empty are left out here too."""
    http: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        value = text(value)
        if value:
            http[key] = value

    put("hostname", getattr(tx, "hostname", None))
    port = as_int(getattr(tx, "host_port", None))
    if port is not None:
        http["http_port"] = port
    put("url", getattr(tx, "url", None))
    put("http_user_agent", getattr(tx, "user_agent", None))
    content_type = text(_header(tx, "response_header", b"content-type", "content_type"))
    if content_type:
        # Suricata logs the media type only, without parameters
        put("http_content_type", content_type.split(";", 1)[0].strip())
    put("http_refer", _header(tx, "request_header", b"referer", "referer"))
    put("http_method", getattr(tx, "method", None))
    put("protocol", getattr(tx, "protocol", None))
    status = as_int(getattr(tx, "status", None))
    if status is not None:
        http["status"] = status
    put("redirect", _header(tx, "response_header", b"location", "redirect"))
    length = as_int(getattr(tx, "length", None))
    if length is not None:
        http["length"] = length
    return http
