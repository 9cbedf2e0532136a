"""Engine settings: the typed values the pipeline reads, derived once from the Config.

Keeping them in one frozen object means the per-packet code never looks keys up in
the YAML tree, and tests can build an engine from plain values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ruleengine.applayer.http1.config import HttpConfig
from ruleengine.flow.table import FlowTimeouts
from ruleengine.stream.tcp import StreamConfig

# Suricata's exception policies for a midstream TCP packet when midstream pick-up is off.
MIDSTREAM_POLICIES = ("auto", "ignore", "pass-flow", "pass-packet", "drop-flow", "drop-packet",
                      "bypass", "reject", "reject-both", "not-set")


@dataclass(frozen=True)
class EngineSettings:
    """Everything the pipeline needs to know about its configuration."""

    checksum_validation: bool = True
    ips: bool = False  # inline verdicts: --simulate-ips or an INLINE backend
    stream: StreamConfig = field(default_factory=StreamConfig)
    stream_bypass: bool = False  # stream.bypass: bypass a flow when it reaches the depth
    midstream_policy: str = "ignore"
    timeouts: FlowTimeouts = field(default_factory=FlowTimeouts)
    http: HttpConfig = field(default_factory=HttpConfig)
    stats_interval: float = 8.0  # seconds between stats events in live runs
    flow_manager_interval: float = 1.0  # seconds between flow expiry passes (capture time)
    eve_types: frozenset[str] | None = None  # None: every type we write
    mpm: str = "auto"
    pcap_cnt: bool = True  # add pcap_cnt to events (offline runs)

    @classmethod
    def from_config(cls, config: Any, *, ips: bool = False, checksum_override: bool | None = None,
                    offline: bool = True) -> EngineSettings:
        """Build settings from a ``ruleengine.config.Config`` (duck-typed: ``get``/``get_bool``/
        ``get_size``/``get_section``)."""
        checksum = config.get_bool("stream.checksum-validation", True)
        if checksum_override is not None:
            checksum = checksum_override
        inline_opt = str(config.get("stream.inline", "auto")).lower()
        inline = ips if inline_opt == "auto" else config.get_bool("stream.inline", False)
        stream = StreamConfig(
            midstream=config.get_bool("stream.midstream", False),
            inline=inline,
            reassembly_depth=config.get_size("stream.reassembly.depth", 1 << 20),
            async_oneside=config.get_bool("stream.async-oneside", False),
            bypass=config.get_bool("stream.bypass", False),
        )
        policy = str(config.get("stream.midstream-policy",
                                config.get("exception-policy", "ignore")) or "ignore").lower()
        if policy == "auto":
            policy = "drop-flow" if ips else "ignore"
        timeouts = FlowTimeouts.from_mapping(config.get_section("flow-timeouts") or {})
        libhtp = config.get_section("app-layer.protocols.http.libhtp.default-config") or {}
        http, _unknown = HttpConfig.from_mapping(libhtp)
        return cls(
            checksum_validation=checksum,
            ips=ips,
            stream=stream,
            stream_bypass=stream.bypass,
            midstream_policy=policy,
            timeouts=timeouts,
            http=http,
            stats_interval=float(config.get("stats.interval", 8) or 8),
            mpm=str(config.get("mpm-algo", "auto") or "auto"),
            pcap_cnt=offline,
        )
