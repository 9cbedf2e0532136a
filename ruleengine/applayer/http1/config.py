"""libhtp settings of the HTTP/1.x parser (``app-layer.protocols.http.libhtp.default-config``).

The defaults are the values of Suricata's shipped ``suricata.yaml`` (the suricata-verify tests run
with it). Where Suricata's *code* default differs (used when the key is absent from the YAML), the
field comment says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ruleengine.config.values import parse_size, parse_switch

_KIB = 1024
_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class BodySettings:
    """One direction's body: how much is kept (0: all) and Suricata's inspection sizes."""

    limit: int
    min_size: int  # minimal-inspect-size
    window: int  # inspect-window


@dataclass(frozen=True)
class HttpConfig:
    """Parser and inspection settings; build it with :meth:`from_mapping` from the YAML section."""

    # 0 means unlimited. Code default (key absent): 4096 for both limits.
    request_body_limit: int = 100 * _KIB
    response_body_limit: int = 100 * _KIB
    request_body_minimal_inspect_size: int = 32 * _KIB
    request_body_inspect_window: int = 4 * _KIB
    # Code default: 32 KiB / 4 KiB.
    response_body_minimal_inspect_size: int = 40 * _KIB
    response_body_inspect_window: int = 16 * _KIB
    response_body_decompress_layer_limit: int = 2
    # Decompression bomb guard (Suricata ``compression-bomb-limit``): max decompressed bytes
    # per transaction body; 0 = unlimited.
    compression_bomb_limit: int = 1 * _MIB
    request_decompression: bool = True
    lzma_enabled: bool = False
    double_decode_path: bool = False
    double_decode_query: bool = False
    # ``uri-include-all``: http.uri carries scheme://host:port of an absolute URI too.
    uri_include_all: bool = False
    # ``query-plusspace-decode``: Suricata turns '+'->' ' off for the query.
    query_plusspace_decode: bool = False
    # ``path-convert-lowercase`` is forced off by Suricata for the IDS personality.
    path_convert_lowercase: bool = False
    # libhtp field limit (``meta-field-limit``): longest line (request/status line, header
    # line) kept while waiting for its end. Over it the direction stops with
    # ``*_field_too_long``.
    field_limit: int = 18000
    # Bound of the raw header block (``http.header.raw``) and of the header count.
    max_header_block: int = 64 * _KIB
    headers_limit: int = 1024
    max_tx: int = 512
    # Anomaly events kept per parser (the rest are counted in ``events_dropped``).
    max_events: int = 256

    def body(self, to_server: bool) -> BodySettings:
        """The request (``to_server``) or response body's settings."""
        if to_server:
            return BodySettings(self.request_body_limit, self.request_body_minimal_inspect_size,
                                self.request_body_inspect_window)
        return BodySettings(self.response_body_limit, self.response_body_minimal_inspect_size,
                            self.response_body_inspect_window)

    @classmethod
    def from_mapping(cls, libhtp_default_config: Mapping[str, Any]) -> tuple[HttpConfig, list[str]]:
        """Build from the YAML mapping (keys as in suricata.yaml, e.g. ``request-body-limit``).

        Returns ``(config, unknown_or_invalid)``: keys that are unknown or whose value cannot be
        used, so the caller can warn. Sizes accept ``100kb``/``1mb``/``1gb`` like Suricata.
        """
        values: dict[str, Any] = {}
        problems: list[str] = []
        known = {f.name: f for f in fields(cls)}
        for key, raw in libhtp_default_config.items():
            name = _ALIASES.get(str(key), str(key).replace("-", "_"))
            if name in _ACCEPTED_UNMODELLED:
                continue  # valid Suricata keys whose effect this engine does not model
            if name not in known:
                problems.append(str(key))
                continue
            kind = known[name].type
            try:
                values[name] = _parse_bool(raw) if kind in ("bool", bool) else _parse_size(raw)
            except ValueError:
                problems.append(f"{key}: invalid value {raw!r}")
        return cls(**values), problems


# suricata.yaml spelling -> field name, where they differ
_ALIASES = {"meta-field-limit": "field_limit", "headers-limit": "headers_limit"}

# Valid libhtp default-config keys that are accepted without effect: the personality (only
# IDS is modelled), inline body handling, SWF decompression, inspection-size randomisation
# (sizes are used as configured, for reproducible results) and decompression time/memory
# limits (the bomb limit bounds the work instead).
_ACCEPTED_UNMODELLED = frozenset({
    "personality", "http_body_inline", "swf_decompression", "randomize_inspection_sizes",
    "randomize_inspection_range", "decompression_time_limit", "lzma_memlimit",
})


def _parse_bool(raw: Any) -> bool:
    value = parse_switch(raw)
    if value is None:
        raise ValueError(raw)
    return value


def _parse_size(raw: Any) -> int:
    value = parse_size(raw)
    if value is None:
        raise ValueError(raw)
    return value
