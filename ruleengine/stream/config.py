"""The ``stream`` section of suricata.yaml as the TCP tracker reads it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ruleengine.config.values import parse_bool, parse_size, value_or


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
        cls, section: Mapping[str, Any] | None, *, ips_mode: bool = False
    ) -> StreamConfig:
        """The tracker's settings from suricata.yaml's ``stream`` section (the subtree the
        config hands this stage). ``inline: auto`` (or any value that is not a boolean)
        means inline in IPS mode; a value of the wrong kind keeps the default."""
        if not isinstance(section, Mapping):
            section = {}
        reassembly = section.get("reassembly")
        if not isinstance(reassembly, Mapping):
            reassembly = {}
        inline = parse_bool(section.get("inline"))
        return cls(
            midstream=value_or(parse_bool, section.get("midstream"), False),
            inline=ips_mode if inline is None else inline,
            reassembly_depth=value_or(parse_size, reassembly.get("depth"), cls.reassembly_depth),
            async_oneside=value_or(parse_bool, section.get("async-oneside"), False),
            bypass=value_or(parse_bool, section.get("bypass"), False),
            toserver_chunk_size=value_or(
                parse_size, reassembly.get("toserver-chunk-size"), cls.toserver_chunk_size),
            toclient_chunk_size=value_or(
                parse_size, reassembly.get("toclient-chunk-size"), cls.toclient_chunk_size),
            # 0 would leave no room for any out-of-order byte: the default
            memcap=value_or(parse_size, reassembly.get("memcap"), cls.memcap) or cls.memcap,
        )
