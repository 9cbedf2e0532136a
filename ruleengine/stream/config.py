"""The ``stream`` section of suricata.yaml as the TCP tracker reads it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1 << 10,
    "kib": 1 << 10,
    "mb": 1 << 20,
    "mib": 1 << 20,
    "gb": 1 << 30,
    "gib": 1 << 30,
}


def parse_size(value: object) -> int | None:
    """Suricata size strings: ``1mb``, ``512kb``, ``1gb``, ``4096`` → bytes; None if bad."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip().lower().replace(" ", "")
    digits = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = text[len(digits) :]
    if unit not in _SIZE_UNITS:
        return None
    try:
        number = float(digits)
    except ValueError:
        return None
    if number < 0:
        return None
    return int(number * _SIZE_UNITS[unit])


def _truthy(value: object, default: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("yes", "true", "on", "1", "enable", "enabled"):
            return True
        if v in ("no", "false", "off", "0", "disable", "disabled"):
            return False
    if isinstance(value, int):
        return value != 0
    return default


@dataclass(frozen=True)
class StreamConfig:
    """The ``stream`` section of suricata.yaml that the tracker honours."""

    midstream: bool = False
    inline: bool = False
    reassembly_depth: int = 1 << 20  # 0 = unlimited
    async_oneside: bool = False
    bypass: bool = False
    max_buffered: int = 4 << 20  # out-of-order bytes kept per direction
    max_segments: int = 4096  # out-of-order ranges kept per direction
    max_unacked: int = 1 << 20  # contiguous bytes waiting for an ACK before forced delivery
    memcap: int = 256 << 20  # all buffered stream bytes (stream.reassembly.memcap)
    # stream.reassembly.toserver/toclient-chunk-size: raw stream data of a transaction still
    # in progress waits for this much before it is inspected (StreamTcpReassembleRawCheckLimit)
    toserver_chunk_size: int = 2560
    toclient_chunk_size: int = 2560

    @classmethod
    def from_mapping(
        cls, section: Mapping[str, object] | None, *, ips_mode: bool = False
    ) -> StreamConfig:
        """Build from suricata.yaml's ``stream`` mapping (keys: ``midstream``,
        ``inline`` (yes/no/auto — auto means inline in IPS mode), ``async-oneside``,
        ``bypass``, ``reassembly.depth``). Bad values keep the default."""
        if not isinstance(section, Mapping):
            return cls(inline=ips_mode)
        inline_raw = section.get("inline", "auto")
        if isinstance(inline_raw, str) and inline_raw.strip().lower() == "auto":
            inline = ips_mode
        else:
            inline = _truthy(inline_raw, ips_mode)
        depth = cls.reassembly_depth
        memcap = cls.memcap
        reassembly = section.get("reassembly")
        if isinstance(reassembly, Mapping):
            parsed = parse_size(reassembly.get("depth"))
            if parsed is not None:
                depth = parsed
            parsed = parse_size(reassembly.get("memcap"))
            if parsed:
                memcap = parsed
        return cls(
            midstream=_truthy(section.get("midstream"), False),
            inline=inline,
            reassembly_depth=depth,
            async_oneside=_truthy(section.get("async-oneside"), False),
            bypass=_truthy(section.get("bypass"), False),
            memcap=memcap,
        )
