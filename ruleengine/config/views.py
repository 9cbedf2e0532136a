"""Typed views of configuration sections (frozen dataclasses with Suricata's defaults)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ruleengine.config.values import parse_bool, parse_int, parse_size, scalar_text, value_or


@dataclass(frozen=True)
class StreamSettings:
    memcap: int = 64 << 20
    checksum_validation: bool = True
    midstream: bool = False
    midstream_policy: str | None = None  # None: not set (the exception-policy applies)
    async_oneside: bool = False
    inline: str = "auto"  # auto | yes | no
    drop_invalid: bool = True
    bypass: bool = False
    reassembly_memcap: int = 256 << 20
    reassembly_depth: int = 1 << 20
    toserver_chunk_size: int = 2560
    toclient_chunk_size: int = 2560
    randomize_chunk_size: bool = True
    raw: bool = True

    def is_inline(self, ips: bool) -> bool:
        return ips if self.inline == "auto" else self.inline == "yes"


@dataclass(frozen=True)
class ProtoTimeoutSettings:
    new: int
    established: int
    closed: int
    bypassed: int
    emergency_new: int
    emergency_established: int
    emergency_closed: int
    emergency_bypassed: int


# Suricata's shipped flow-timeouts; "closed" does not apply to udp/icmp (0).
TIMEOUT_DEFAULTS: dict[str, tuple[int, ...]] = {
    "default": (30, 300, 0, 100, 10, 100, 0, 50),
    "tcp": (60, 600, 60, 100, 5, 100, 10, 50),
    "udp": (30, 300, 0, 100, 10, 100, 0, 50),
    "icmp": (30, 300, 0, 100, 10, 100, 0, 50),
}
TIMEOUT_FIELDS = ("new", "established", "closed", "bypassed", "emergency-new",
                   "emergency-established", "emergency-closed", "emergency-bypassed")


@dataclass(frozen=True)
class HttpServerSettings:
    """One libhtp personality block (default-config or a server-config entry). Defaults are
    Suricata's built-in ones (used when the YAML leaves a key out)."""

    name: str = "default-config"
    addresses: tuple[str, ...] = ()
    personality: str = "IDS"
    request_body_limit: int = 4096
    response_body_limit: int = 4096
    request_body_minimal_inspect_size: int = 32 << 10
    request_body_inspect_window: int = 4 << 10
    response_body_minimal_inspect_size: int = 32 << 10
    response_body_inspect_window: int = 4 << 10
    response_body_decompress_layer_limit: int = 2
    http_body_inline: str = "auto"
    double_decode_path: bool = False
    double_decode_query: bool = False
    randomize_inspection_sizes: bool = True
    randomize_inspection_range: int = 10
    raw: Mapping[str, Any] = field(default_factory=dict)  # every key as written


@dataclass(frozen=True)
class AfPacketInterface:
    interface: str
    threads: str | int = "auto"
    cluster_id: int = 99
    cluster_type: str = "cluster_flow"
    defrag: bool = True
    use_mmap: bool = True
    tpacket_v3: bool = False
    ring_size: int | None = None
    block_size: int | None = None
    buffer_size: int | None = None
    checksum_checks: str = "kernel"
    bpf_filter: str | None = None
    copy_mode: str | None = None
    copy_iface: str | None = None
    bypass: bool = False
    ebpf_filter_file: str | None = None
    xdp_filter_file: str | None = None
    xdp_mode: str | None = None
    disable_promisc: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NfqSettings:
    mode: str = "accept"
    repeat_mark: int = 0
    repeat_mask: int = 0
    bypass_mark: int = 0
    bypass_mask: int = 0
    route_queue: int = 0
    batchcount: int = 1
    fail_open: bool = False


@dataclass(frozen=True)
class EveSettings:
    enabled: bool = True
    filename: str = "eve.json"
    filetype: str = "regular"
    append: bool = True
    types: frozenset[str] | None = None  # None: no eve-log section (write every type)
    type_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    community_id: bool = False
    pcap_file: bool = False
    # transport options, as written (validated by ruleengine.outputs.sinks.sink_spec)
    prefix: str = ""
    identity: str | None = None  # syslog
    facility: str | None = None  # syslog
    level: str | None = None  # syslog
    redis: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StatsLogSettings:
    """The ``stats`` output (``stats.log``)."""

    enabled: bool = False
    filename: str = "stats.log"
    append: bool = True
    null_values: bool = False
    totals: bool = True  # the summed counters ("Total")
    threads: bool = False  # each worker's own counters


@dataclass(frozen=True)
class FastLogSettings:
    """The ``fast`` output (``fast.log``). Off unless the section says ``enabled: yes``, as
    Suricata's output setup skips an output without a true ``enabled``."""

    enabled: bool = False
    filename: str = "fast.log"
    append: bool = True


@dataclass(frozen=True)
class ExceptionPolicies:
    """Resolved exception policies (``src/util-exception-policy.c``)."""

    stream_memcap: str = "ignore"
    stream_midstream: str = "ignore"
    stream_reassembly_memcap: str = "ignore"
    flow_memcap: str = "ignore"
    defrag_memcap: str = "ignore"
    app_layer_error: str = "ignore"


@dataclass(frozen=True)
class DetectSettings:
    profile: str = "medium"
    sgh_mpm_context: str = "auto"
    inspection_recursion_limit: int = 3000
    prefilter_default: str = "mpm"
    mpm_algo: str = "auto"
    spm_algo: str = "auto"
    packet_alert_max: int = 15
    action_order: tuple[str, ...] = ("pass", "drop", "reject", "alert")



def http_settings(name: str, addresses: tuple[str, ...], body: Mapping[str, Any],
                   base: HttpServerSettings) -> HttpServerSettings:
    def size(key: str, default: int) -> int:
        return value_or(parse_size, body.get(key), default)

    def flag(key: str, default: bool) -> bool:
        return value_or(parse_bool, body.get(key), default)

    def integer(key: str, default: int) -> int:
        return value_or(parse_int, body.get(key), default)

    inline = body.get("http-body-inline")
    inline_bool = parse_bool(inline)
    return HttpServerSettings(
        name=name,
        addresses=addresses,
        personality=scalar_text(body.get("personality") or base.personality),
        request_body_limit=size("request-body-limit", base.request_body_limit),
        response_body_limit=size("response-body-limit", base.response_body_limit),
        request_body_minimal_inspect_size=size("request-body-minimal-inspect-size",
                                               base.request_body_minimal_inspect_size),
        request_body_inspect_window=size("request-body-inspect-window",
                                         base.request_body_inspect_window),
        response_body_minimal_inspect_size=size("response-body-minimal-inspect-size",
                                                base.response_body_minimal_inspect_size),
        response_body_inspect_window=size("response-body-inspect-window",
                                          base.response_body_inspect_window),
        response_body_decompress_layer_limit=integer("response-body-decompress-layer-limit",
                                                     base.response_body_decompress_layer_limit),
        http_body_inline=(base.http_body_inline if inline is None else
                          "auto" if inline_bool is None else ("yes" if inline_bool else "no")),
        double_decode_path=flag("double-decode-path", base.double_decode_path),
        double_decode_query=flag("double-decode-query", base.double_decode_query),
        randomize_inspection_sizes=flag("randomize-inspection-sizes",
                                        base.randomize_inspection_sizes),
        randomize_inspection_range=integer("randomize-inspection-range",
                                           base.randomize_inspection_range),
        raw={**base.raw, **{str(k): v for k, v in body.items() if k != "address"}},
    )


def af_packet_iface(entry: Mapping[str, Any]) -> AfPacketInterface:
    def opt_str(key: str) -> str | None:
        value = entry.get(key)
        return None if value is None else scalar_text(value)

    threads_raw = entry.get("threads", "auto")
    threads_int = parse_int(threads_raw)
    return AfPacketInterface(
        interface=scalar_text(entry.get("interface")),
        threads=threads_int if threads_int is not None and threads_int > 0 else "auto",
        cluster_id=parse_int(entry.get("cluster-id")) or 99,
        cluster_type=scalar_text(entry.get("cluster-type") or "cluster_flow"),
        defrag=parse_bool(entry.get("defrag")) is not False,
        use_mmap=parse_bool(entry.get("use-mmap")) is not False,
        tpacket_v3=parse_bool(entry.get("tpacket-v3")) is True,
        ring_size=parse_int(entry.get("ring-size")),
        block_size=parse_int(entry.get("block-size")),
        buffer_size=parse_int(entry.get("buffer-size")),
        checksum_checks=scalar_text(entry.get("checksum-checks") or "kernel").lower(),
        bpf_filter=opt_str("bpf-filter"),
        copy_mode=opt_str("copy-mode"),
        copy_iface=opt_str("copy-iface"),
        bypass=parse_bool(entry.get("bypass")) is True,
        ebpf_filter_file=opt_str("ebpf-filter-file"),
        xdp_filter_file=opt_str("xdp-filter-file"),
        xdp_mode=opt_str("xdp-mode"),
        disable_promisc=parse_bool(entry.get("disable-promisc")) is True,
        raw=dict(entry),
    )

