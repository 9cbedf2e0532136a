"""HTTP/1.x: a lenient, bounded, sans-IO parser with libhtp's IDS normalisation.

Modules: ``config`` (libhtp settings from suricata.yaml), ``parser`` (:class:`HttpParser`, one
per flow, assembled from ``parse_state``, ``framing``, ``tunnel``, ``request`` and
``response``), ``tx`` (:class:`HttpTransaction`, what detection and EVE read), ``normalize`` (URI
and host normalisation), ``decompress`` (gzip/deflate/lzma layers), ``body`` (Suricata's
inspection windows), ``getters`` and ``buffers`` (the detection buffers), ``logger`` (the EVE
``http`` object), ``events`` (anomaly event names).

Use::

    config, unknown = HttpConfig.from_mapping(yaml_libhtp_default_config)
    parser = HttpParser(config)
    parser.feed(True, client_bytes, ts)      # to_server
    parser.feed(False, server_bytes, ts)     # to_client
    parser.gap(True, missing_len)            # stream hole
    parser.close()                           # EOF (one side: close(True/False))
    for tx in parser.transactions:           # oldest first; the caller prunes old ones
        tx.buffer("http.uri"), tx.buffer("http.header", False), tx.request_complete
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ruleengine.applayer.base import AppParser, ProbeResult, package_spec
from ruleengine.applayer.detect_proto import detect_app_proto
from ruleengine.applayer.http1 import buffers
from ruleengine.applayer.http1.config import HttpConfig
from ruleengine.applayer.http1.logger import eve_http, eve_http_alert, same_as_alert
from ruleengine.applayer.http1.parser import HttpParser
from ruleengine.applayer.http1.tx import HttpTransaction, Progress

# Real libhtp keys the HTTP layer has no use for (no Flash decompression, body inline
# decided by the IPS mode): accepted silently.
_KNOWN_UNUSED_LIBHTP = frozenset({"http-body-inline", "swf-decompression"})


def _probe(data: bytes, to_server: bool) -> ProbeResult:
    result = detect_app_proto(data, to_server)
    if result == "http":
        return "match"
    return "undecided" if result is None else "nomatch"


def _parse_config(subtree: Mapping[str, Any]) -> tuple[HttpConfig, list[str]]:
    libhtp = subtree.get("libhtp")
    section = libhtp.get("default-config") if isinstance(libhtp, Mapping) else None
    config, unknown = HttpConfig.from_mapping(section if isinstance(section, Mapping) else {})
    return config, [f"libhtp.default-config: {key}: not supported"
                    for key in unknown if key not in _KNOWN_UNUSED_LIBHTP]


def _make_parser(config: Any, ipproto: int) -> AppParser:
    return HttpParser(config if isinstance(config, HttpConfig) else HttpConfig())


PROTOCOL = package_spec(
    "http", buffers,
    aliases=("http1",), anomaly_upper=True, raw_on_complete=True,
    default_ports={6: (80, 8080)}, probe=_probe, probe_depth=24,
    make_parser=_make_parser, parse_config=_parse_config,
    eve_logger=eve_http, alert_logger=eve_http_alert, eve_same_as_alert=same_as_alert,
)

__all__ = ["PROTOCOL", "HttpConfig", "HttpParser", "HttpTransaction", "Progress"]
