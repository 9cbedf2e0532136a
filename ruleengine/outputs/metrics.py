"""Prometheus endpoint (``ruleengine run --metrics-port PORT``), with prometheus_client.

Serves ``/metrics`` over HTTP from a thread. Values come from the engine's stats counters:
in live runs the totals of every worker as of the last stats interval (``update``, called
where the stats events are written), in a pcap run the engine's counters at the time of the
scrape (``source``). The metrics, documented in ``METRICS`` (and README):

=========================================  =======  ==================================
metric                                     labels   stats counter(s)
=========================================  =======  ==================================
ruleengine_capture_kernel_packets_total    worker   capture.kernel_packets
ruleengine_capture_kernel_drops_total      worker   capture.kernel_drops
ruleengine_decoder_packets_total                    decoder.pkts
ruleengine_decoder_bytes_total                      decoder.bytes
ruleengine_decoder_invalid_total                    decoder.invalid
ruleengine_flows_total                              flow.total
ruleengine_flows_ended_total                        flow.end
ruleengine_flows_active                             flow.active (gauge)
ruleengine_alerts_total                             detect.alert
ruleengine_bypass_flows_total              reason   flow_bypassed.reason.<reason>
ruleengine_bypass_closed_flows_total       reason   flow_bypassed.by_reason.<r>.flows
ruleengine_bypass_packets_total            reason   flow_bypassed.by_reason.<r>.pkts
ruleengine_bypass_bytes_total              reason   flow_bypassed.by_reason.<r>.bytes
ruleengine_bypass_rule_flows_total         sid      flow_bypassed.by_sid.<sid>.flows
ruleengine_bypass_rule_packets_total       sid      flow_bypassed.by_sid.<sid>.pkts
ruleengine_bypass_rule_bytes_total         sid      flow_bypassed.by_sid.<sid>.bytes
ruleengine_bypass_leaked_packets_total              flow_bypassed.local_capture_pkts
ruleengine_bypass_leaked_bytes_total                flow_bypassed.local_capture_bytes
ruleengine_bypass_leaked_flows_total                flow_bypassed.leaked_flows
ruleengine_bypass_accounting_total         result   flow_bypassed.accounting.<ok|mismatch>
ruleengine_bypass_list_packets_total       entry    bypass_list.<file>:<line>.pkts
ruleengine_bypass_list_bytes_total         entry    bypass_list.<file>:<line>.bytes
ruleengine_bypass_list_entries                      bypass_list.entries (gauge)
ruleengine_bypass_list_reloads_total                bypass_list.reloads
ruleengine_bypass_list_errors                       bypass_list.errors (gauge)
ruleengine_bypass_list_kernel_errors                bypass_list.kernel_errors (gauge)
ruleengine_eve_lines_written_total                  eve.lines_written
ruleengine_eve_lines_lost_total                     eve.lines_lost
=========================================  =======  ==================================

``worker`` is the AF_PACKET worker index ("0" for a single-process run, whose counters are
the totals). ``bypass_*_packets/bytes`` are counted when a bypassed flow ends; for a capture
bypass they never reached user space. ``bypass_list_*`` (config ``bypass-lists:``): ``entry``
is ``<file>:<line>`` of the list entry; its packets/bytes are the kernel map's counters on
AF_PACKET, the packets a list accepted on NFQ or a pcap run, and the bypassed traffic of
the flows an ``sni`` entry bypassed; ``errors`` are the bad lines of the last load,
``kernel_errors`` the keys the kernel refused (map full).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

# (metric, help, counter name or None for a labelled family, kind)
SIMPLE: tuple[tuple[str, str, str, str], ...] = (
    ("decoder_packets", "Packets decoded by the engine", "decoder.pkts", "counter"),
    ("decoder_bytes", "Bytes decoded by the engine", "decoder.bytes", "counter"),
    ("decoder_invalid", "Packets the decoder found invalid", "decoder.invalid", "counter"),
    ("flows", "Flows created", "flow.total", "counter"),
    ("flows_ended", "Flows ended (timeout, eviction, shutdown)", "flow.end", "counter"),
    ("flows_active", "Flows in the flow table", "flow.active", "gauge"),
    ("alerts", "Alerts raised", "detect.alert", "counter"),
    ("bypass_leaked_packets", "Packets of capture-bypassed flows that still reached user "
     "space", "flow_bypassed.local_capture_pkts", "counter"),
    ("bypass_leaked_bytes", "Bytes of capture-bypassed flows that still reached user space",
     "flow_bypassed.local_capture_bytes", "counter"),
    ("bypass_leaked_flows", "Bypassed flows with leaked packets (counted at flow end)",
     "flow_bypassed.leaked_flows", "counter"),
    ("bypass_list_entries", "Entries of the loaded bypass lists", "bypass_list.entries",
     "gauge"),
    ("bypass_list_reloads", "Reloads of the bypass lists (file change or SIGHUP)",
     "bypass_list.reloads", "counter"),
    ("bypass_list_errors", "Bad lines in the last load of the bypass lists",
     "bypass_list.errors", "gauge"),
    ("bypass_list_kernel_errors", "Bypass-list keys the kernel refused (map full)",
     "bypass_list.kernel_errors", "gauge"),
    ("eve_lines_written", "EVE records written", "eve.lines_written", "counter"),
    ("eve_lines_lost", "EVE records lost by the transport", "eve.lines_lost", "counter"),
)
# (metric, help, regex over counter names with one group = the label value, label)
LABELLED: tuple[tuple[str, str, str, str], ...] = (
    ("bypass_flows", "Flows bypassed, by reason (at bypass time)",
     r"flow_bypassed\.reason\.([\w-]+)", "reason"),
    ("bypass_closed_flows", "Bypassed flows ended, by reason",
     r"flow_bypassed\.by_reason\.([\w-]+)\.flows", "reason"),
    ("bypass_packets", "Packets bypassed, by reason (at flow end)",
     r"flow_bypassed\.by_reason\.([\w-]+)\.pkts", "reason"),
    ("bypass_bytes", "Bytes bypassed, by reason (at flow end)",
     r"flow_bypassed\.by_reason\.([\w-]+)\.bytes", "reason"),
    ("bypass_rule_flows", "Flows bypassed by a rule, by sid",
     r"flow_bypassed\.by_sid\.(\d+)\.flows", "sid"),
    ("bypass_rule_packets", "Packets bypassed by a rule, by sid (at flow end)",
     r"flow_bypassed\.by_sid\.(\d+)\.pkts", "sid"),
    ("bypass_rule_bytes", "Bytes bypassed by a rule, by sid (at flow end)",
     r"flow_bypassed\.by_sid\.(\d+)\.bytes", "sid"),
    ("bypass_list_packets", "Packets bypassed by a bypass-list entry (file:line)",
     r"bypass_list\.(.+:\d+)\.pkts", "entry"),
    ("bypass_list_bytes", "Bytes bypassed by a bypass-list entry (file:line)",
     r"bypass_list\.(.+:\d+)\.bytes", "entry"),
    ("bypass_accounting", "Bypassed flows whose accounting (wire = inspected + leaked + "
     "bypassed) was checked at flow end, by result",
     r"flow_bypassed\.accounting\.(ok|mismatch)", "result"),
)
CAPTURE = (("capture_kernel_packets", "Packets the kernel delivered to a capture socket",
            "kernel_packets"),
           ("capture_kernel_drops", "Packets the kernel dropped (ring full)", "kernel_drops"))
PREFIX = "ruleengine_"
METRICS = tuple(PREFIX + m[0] + ("" if m[3] == "gauge" else "_total") for m in SIMPLE) + \
    tuple(PREFIX + m[0] + "_total" for m in LABELLED) + \
    tuple(PREFIX + m[0] + "_total" for m in CAPTURE)
_WORKER = re.compile(r"worker\.(\d+)\.capture\.(kernel_packets|kernel_drops)")


class MetricsError(Exception):
    pass


def families(counters: Mapping[str, int]) -> Iterator[Any]:
    """Prometheus metric families for a stats snapshot."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    for name, text, counter, kind in SIMPLE:
        cls = GaugeMetricFamily if kind == "gauge" else CounterMetricFamily
        yield cls(PREFIX + name, text, value=counters.get(counter, 0))
    for name, text, pattern, label in LABELLED:
        fam = CounterMetricFamily(PREFIX + name, text, labels=[label])
        regex = re.compile(pattern)
        for key in sorted(counters):
            m = regex.fullmatch(key)
            if m:
                fam.add_metric([m.group(1)], counters[key])
        yield fam
    per_worker: dict[str, dict[str, int]] = {}
    for key, value in counters.items():
        m = _WORKER.fullmatch(key)
        if m:
            per_worker.setdefault(m.group(2), {})[m.group(1)] = value
    for name, text, field in CAPTURE:
        fam = CounterMetricFamily(PREFIX + name, text, labels=["worker"])
        workers = per_worker.get(field) or {"0": counters.get(f"capture.{field}", 0)}
        for worker in sorted(workers, key=int):
            fam.add_metric([worker], workers[worker])
        yield fam


class MetricsExporter:
    """``/metrics`` on ``addr:port`` until ``close()``. ``source``: read the counters at
    each scrape; otherwise the last ``update``."""

    def __init__(self, port: int, addr: str = "127.0.0.1",
                 source: Callable[[], Mapping[str, int]] | None = None) -> None:
        try:
            from prometheus_client import start_http_server
            from prometheus_client.registry import CollectorRegistry
        except ImportError:
            raise MetricsError("--metrics-port needs prometheus_client "
                               "(pip install prometheus_client)") from None
        self._lock = threading.Lock()
        self._latest: dict[str, int] = {}
        self._source = source
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        try:
            self._server, self._thread = start_http_server(port, addr=addr, registry=registry)
        except OSError as exc:
            raise MetricsError(f"--metrics-port {port}: cannot listen on {addr}: "
                               f"{exc.strerror or exc}") from None
        self.port = int(self._server.server_address[1])

    def update(self, counters: Mapping[str, int]) -> None:
        with self._lock:
            self._latest = dict(counters)

    def collect(self) -> Iterator[Any]:
        if self._source is not None:
            counters: Mapping[str, int] = self._source()  # a dict copy: atomic under the GIL
        else:
            with self._lock:
                counters = self._latest
        yield from families(counters)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
