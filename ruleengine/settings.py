"""Engine settings: the typed values the pipeline reads, derived once from the Config.

Keeping them in one frozen object means the per-packet code never looks keys up in
the YAML tree, and tests can build an engine from plain values.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ruleengine.applayer.files import FilePolicy
from ruleengine.applayer.http1.config import HttpConfig
from ruleengine.applayer.registry import AppLayerSettings, default_settings, load_settings
from ruleengine.config import Config, parse_bool
from ruleengine.decode.tunnel import DEFAULT_MAX_LAYERS, GENEVE_PORTS, VXLAN_PORTS, parse_port_list
from ruleengine.detect.config import DetectSettings
from ruleengine.flow.table import FlowTimeouts
from ruleengine.outputs.config import eve_settings, stats_interval
from ruleengine.outputs.sinks import SinkSpec, sink_spec
from ruleengine.stream.config import midstream_policy
from ruleengine.stream.tcp import StreamConfig


@dataclass(frozen=True)
class EngineSettings:
    """Everything the pipeline needs to know about its configuration."""

    checksum_validation: bool = True
    # pcap-file.checksum-checks: auto — stop validating when most checksums are bad
    # (offloaded captures), as Suricata does for pcap files.
    checksum_auto: bool = False
    ips: bool = False  # inline verdicts: --simulate-ips or an INLINE backend
    stream: StreamConfig = field(default_factory=StreamConfig)
    midstream_policy: str = "ignore"  # resolved stream.midstream-policy
    timeouts: FlowTimeouts = field(default_factory=FlowTimeouts)
    use_vlan: bool = True  # vlan.use-for-tracking
    flow_memcap: int = 32 << 20  # flow.memcap (Suricata's built-in default: 32 MiB)
    http: HttpConfig = field(default_factory=HttpConfig)
    # app-layer.protocols: each registered protocol's settings and which are enabled
    applayer: AppLayerSettings = field(default_factory=default_settings)
    # outputs.eve-log.types options per event type (``tls: {extended: yes}``)
    eve_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # outputs.eve-log.types names: the event types written (None: no eve-log section or no
    # ``types`` list, every type is written)
    eve_types: frozenset[str] | None = None
    # outputs.eve-log transport: filetype, filename and the syslog/redis options
    eve_sink: SinkSpec = field(default_factory=SinkSpec)
    eve_prefix: str = ""  # outputs.eve-log.prefix, written before every record
    eve_host: str | None = None  # EVE ``host``: sensor-name (redis: the hostname by default)
    stats_interval: float = 8.0  # seconds between stats events in live runs
    flow_manager_interval: float = 1.0  # seconds between flow expiry passes (capture time)
    mpm: str = "auto"
    packet_alert_max: int = 15  # alerts logged per packet at most (packet-alert-max)
    # suricata.yaml action-order: which action's rules are evaluated first
    action_order: tuple[str, ...] = ("pass", "drop", "reject", "alert")
    offline: bool = True  # pcap run: pcap_cnt in events, capture-time stats
    # decoder.vxlan / decoder.geneve: UDP ports decoded as the tunnel (empty: disabled)
    vxlan_ports: frozenset[int] = VXLAN_PORTS
    geneve_ports: frozenset[int] = GENEVE_PORTS
    max_layers: int = DEFAULT_MAX_LAYERS  # decoder.max-layers
    vxlan_strict: bool = True  # decoder.vxlan.reserved-bits-check: strict | permissive
    # decoder.recursion-level.use-for-tracking: the tunnel depth is part of the flow key
    use_recursion: bool = True

    def __post_init__(self) -> None:
        # ``http`` given on its own (tests, older callers) is the HTTP parser's config
        if self.applayer.config("http") is not self.http:
            object.__setattr__(self, "applayer", self.applayer.with_config("http", self.http))

    @property
    def stream_bypass(self) -> bool:
        """stream.bypass: bypass a flow when either side reaches the reassembly depth."""
        return self.stream.bypass

    @classmethod
    def from_config(cls, config: Config, *, ips: bool = False, k_option: str | None = None,
                    offline: bool = True) -> tuple[EngineSettings, list[str]]:
        """Settings from a loaded Config, plus warnings for values that could not be used."""
        warnings: list[str] = []
        applayer, problems = load_settings(config.get_section("app-layer.protocols"))
        warnings.extend(problems)
        eve = eve_settings(config.get_list("outputs"))
        detect = DetectSettings.from_mapping(config.data)
        eve_options = eve.type_options
        eve_sink, problems = sink_spec(
            filetype=eve.filetype, filename=eve.filename, facility=eve.facility,
            level=eve.level, identity=eve.identity, redis=dict(eve.redis))
        warnings.extend(problems)
        eve_host = config.sensor_name
        if eve_host is None and eve_sink.filetype == "redis":
            eve_host = socket.gethostname()  # as Suricata's redis output does
        file_policy, problems = FilePolicy.from_files_options(eve_options.get("files"))
        warnings.extend(problems)
        applayer = replace(applayer, files=file_policy)
        unknown = [a for a in detect.action_order
                   if a not in ("pass", "drop", "reject", "alert")]
        if unknown:
            warnings.append(f"action-order: unknown action(s) {', '.join(unknown)} "
                            "(pass, drop, reject, alert): ignored")
        http = applayer.config("http")
        vxlan_ports = _tunnel_ports(config, "vxlan", VXLAN_PORTS, warnings)
        geneve_ports = _tunnel_ports(config, "geneve", GENEVE_PORTS, warnings)
        checks = _pcap_checksum_checks(config.get("pcap-file.checksum-checks", "auto"))
        validation = checksum_validation(config, k_option)
        if offline and k_option is None and checks == "no":
            validation = False  # Suricata's CHECKSUM_VALIDATION_DISABLE for pcap files
        stream = config.get_section("stream")
        settings = cls(
            checksum_validation=validation,
            checksum_auto=offline and k_option is None and checks == "auto",
            ips=ips,
            stream=StreamConfig.from_mapping(stream, ips_mode=ips),
            midstream_policy=midstream_policy(stream, config.get("exception-policy"), ips=ips),
            timeouts=FlowTimeouts.from_mapping(config.get_section("flow-timeouts")),
            use_vlan=config.get_bool("vlan.use-for-tracking", True),
            flow_memcap=config.get_size("flow.memcap", 32 << 20),
            http=http,
            applayer=applayer,
            eve_options=eve_options,
            eve_types=eve.types,
            eve_sink=eve_sink,
            eve_prefix=eve.prefix,
            eve_host=eve_host,
            stats_interval=float(stats_interval(config.get_section("stats"))),
            mpm=detect.mpm_algo,
            packet_alert_max=max(1, detect.packet_alert_max),
            action_order=detect.action_order,
            offline=offline,
            vxlan_ports=vxlan_ports,
            geneve_ports=geneve_ports,
            max_layers=config.get_int("decoder.max-layers", DEFAULT_MAX_LAYERS),
            vxlan_strict=_vxlan_strict(config, warnings),
            use_recursion=config.get_bool("decoder.recursion-level.use-for-tracking", True),
        )
        return settings, warnings


def checksum_validation(config: Config, k_option: str | None = None) -> bool:
    """Whether to validate checksums: ``-k none|all`` wins, else
    ``capture.checksum-validation: none`` disables, else ``stream.checksum-validation``."""
    if k_option is not None:
        return k_option.strip().lower() != "none"
    capture = config.get("capture.checksum-validation")
    if isinstance(capture, str) and capture.strip().lower() == "none":
        return False
    if parse_bool(capture) is False:
        return False
    return config.get_bool("stream.checksum-validation", True)


def _tunnel_ports(config: Config, name: str, default: frozenset[int],
                  warnings: list[str]) -> frozenset[int]:
    """``decoder.<name>.ports`` (a ``$VAR`` of vars.port-groups resolved) when
    ``decoder.<name>.enabled`` is true (the default), else no port."""
    if not config.get_bool(f"decoder.{name}.enabled", True):
        return frozenset()
    value = config.get(f"decoder.{name}.ports")
    if isinstance(value, str) and value.strip().startswith("$"):
        value = config.port_groups().get(value.strip()[1:])
    ports, problem = parse_port_list(value, default)
    if problem:
        warnings.append(f"decoder.{name}.ports: {problem}; using "
                        f"{','.join(map(str, sorted(default)))}")
    return ports


def _vxlan_strict(config: Config, warnings: list[str]) -> bool:
    """``decoder.vxlan.reserved-bits-check`` as DecodeVXLANConfig reads it."""
    value = config.get("decoder.vxlan.reserved-bits-check")
    if value is None:
        return True
    text = str(value).strip().lower()
    if text not in ("strict", "permissive"):
        warnings.append(f"decoder.vxlan.reserved-bits-check: invalid mode {value!r} "
                        "(strict, permissive); using 'strict'")
        return True
    return text == "strict"


def _pcap_checksum_checks(value: Any) -> str:
    """``pcap-file.checksum-checks`` as ``auto``, ``yes`` or ``no``. YAML reads ``no`` as a
    boolean, which must not fall back to ``auto``; a value that is none of these (warned
    about by the config check) means ``auto``, the default."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    truth = parse_bool(value)
    if truth is None:
        return "auto"
    return "yes" if truth else "no"
