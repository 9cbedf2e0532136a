"""The ``stream`` section of suricata.yaml as the TCP tracker reads it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ruleengine.config.values import (
    EXCEPTION_POLICIES,
    parse_bool,
    parse_size,
    policy_word,
    value_or,
)


@dataclass(frozen=True)
class StreamConfig:
    """The ``stream`` section of suricata.yaml that the tracker honours."""

    midstream: bool = False
    inline: bool = False
    reassembly_depth: int = 1 << 20  # 0 = unlimited
    async_oneside: bool = False
    bypass: bool = False
    # stream.auto-bypass (ruleengine): bypass a flow once no loaded rule can still match it
    auto_bypass: bool = False
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
            auto_bypass=value_or(parse_bool, section.get("auto-bypass"), False),
            toserver_chunk_size=value_or(
                parse_size, reassembly.get("toserver-chunk-size"), cls.toserver_chunk_size),
            toclient_chunk_size=value_or(
                parse_size, reassembly.get("toclient-chunk-size"), cls.toclient_chunk_size),
            # 0 would leave no room for any out-of-order byte: the default
            memcap=value_or(parse_size, reassembly.get("memcap"), cls.memcap) or cls.memcap,
        )


def midstream_policy(section: Mapping[str, Any] | None, master: Any, *, ips: bool) -> str:
    """``stream.midstream-policy`` as Suricata's ExceptionPolicyMidstreamParse resolves it
    (``master``: the top-level ``exception-policy`` as written, None when absent). With
    midstream pick-up enabled the policy still applies to picked-up sessions, but only
    ``pass-flow`` (or ``ignore``) may be set directly; the master switch is taken as is
    (``bypass`` included); ``auto`` and the built-in default mean drop-flow only in IPS
    mode without midstream pick-up."""
    if not isinstance(section, Mapping):
        section = {}
    midstream = value_or(parse_bool, section.get("midstream"), False)
    auto = "drop-flow" if ips and not midstream else "ignore"
    direct = policy_word(section.get("midstream-policy"))
    if direct in EXCEPTION_POLICIES and direct != "not-set":
        if direct == "auto":
            return auto
        if midstream and direct not in ("ignore", "pass-flow"):
            return "ignore"  # Suricata refuses this combination at start-up
        if not ips and direct.startswith(("drop", "reject")):
            return "ignore"
        return direct
    if master is None:
        return auto
    # a master that is not a scalar was warned about: it reads as its default, auto
    word = "auto" if isinstance(master, dict | list) else policy_word(master)
    if word == "auto":
        return auto
    if not ips and word.startswith(("drop", "reject")):
        return "ignore"
    return word if word in EXCEPTION_POLICIES else "ignore"
