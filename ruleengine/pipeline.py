"""The one module that wires the stages together.

Data flows one way::

    backend.packets() -> Decoder -> FlowTable -> TcpTracker -> app-layer parser (registry)
        -> DetectEngine (prefilter + inspection) -> actions (alert/drop/reject/pass/bypass)
        -> outputs (EVE, stats)

Stages never call each other; this module hands each stage's output to the next.
The capture backend is only seen through ``capture_backends.base.CaptureBackend``.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ruleengine.applayer import registry
from ruleengine.applayer.base import AppParser
from ruleengine.applayer.probing import AppProtoProbe, probe_direction
from ruleengine.bypass import BypassManager
from ruleengine.bypass_accounting import account, mode_name
from ruleengine.bypass_state import BypassStateFile
from ruleengine.capture import Capability, CaptureBackend, FlowTuple, Verdict
from ruleengine.config.values import parse_bool, parse_size
from ruleengine.decode.decoder import Decoder
from ruleengine.decode.packet import IPPROTO_TCP, IPPROTO_UDP, Packet
from ruleengine.detect.auto_bypass import AUTO, AutoBypassPlan, FlowWatch
from ruleengine.detect.engine import DetectEngine, Match
from ruleengine.flow.table import STATE_CLOSED, Flow, FlowTable
from ruleengine.outputs.eve import EveWriter, verdict_object
from ruleengine.outputs.fastlog import FastLogWriter
from ruleengine.outputs.stats import Stats
from ruleengine.reject import RejectSender
from ruleengine.rules.model import Action, Rule
from ruleengine.settings import EngineSettings
from ruleengine.stream.tcp import TcpTracker

# Flow-level decisions kept on the flow (Flow.verdict_state) so later packets skip work.
FLOW_INSPECT = 0
FLOW_PASS = 1  # a pass rule matched on the flow, or an exception policy said pass-flow
FLOW_DROP = 2  # drop (IPS): every later packet of the flow is dropped

Classifier = Callable[[str | None], "tuple[str, int] | None"]
# the flow event's ``action`` for a flow-level decision (output-json-flow.c)
_FLOW_ACTIONS = {FLOW_PASS: "pass", FLOW_DROP: "drop"}
# (timestamp, uptime, counters): where a worker's stats go instead of its own EVE stats event
StatsSink = Callable[[float, float, dict[str, int]], None]


class ReloadError(Exception):
    """A rule reload cannot build its engine (unreadable or invalid rule file): the message
    says why; the running engine stays."""


class RuleReload:
    """One rule reload: the new engine is built in a thread beside the running one (the
    packet loop keeps running) and swapped in between two packets (Suricata's
    ``DetectEngineReload``). ``done`` once swapped or failed; ``error`` says why it failed."""

    def __init__(self, listeners: Iterable[Callable[[RuleReload], None]] = ()) -> None:
        self.done = False
        self.error: str | None = None
        self.engine: DetectEngine | None = None
        self.started = time.time()
        self.finished = 0.0
        self._built = threading.Event()
        # told once it is done, as by add_done_callback (the owner's reload_listeners)
        self._listeners: list[Callable[[RuleReload], None]] = list(listeners)

    def add_done_callback(self, callback: Callable[[RuleReload], None]) -> None:
        """``callback(reload)`` once it is done (at once if it is); runs between packets."""
        if self.done:
            callback(self)
        else:
            self._listeners.append(callback)

    def _build(self, rebuild: Callable[[], DetectEngine]) -> None:
        try:
            self.engine = rebuild()
        except ReloadError as exc:
            self.error = str(exc)
        except Exception as exc:  # whatever the new rules do, the old engine runs on
            self.error = f"internal error: {type(exc).__name__}: {exc}"
        finally:
            self._built.set()

    def complete(self, error: str | None) -> None:
        """End a reload done elsewhere (the workers' parent: once every worker answered)."""
        self.error = error
        self._built.set()
        self._finish()

    def _finish(self) -> None:
        self.done = True
        self.finished = time.time()
        self.engine = None  # the pipeline holds it now
        for callback in self._listeners:
            callback(self)
        self._listeners.clear()


@dataclass
class RunReport:
    """What a run did, for the summary and for tests."""

    packets: int = 0
    bytes: int = 0
    invalid: int = 0
    flows: int = 0
    alerts_by_sid: dict[int, int] = field(default_factory=dict)
    msg_by_sid: dict[int, str] = field(default_factory=dict)
    dropped: int = 0
    bypassed_flows_local: int = 0
    bypassed_flows_capture: int = 0
    duration: float = 0.0
    interrupted: bool = False


CONTROL_INTERVAL = 0.05  # seconds between two polls of the unix socket
_MAX_EXPECTATIONS = 4096
_EXPECTATION_TIMEOUT = 300.0  # seconds an announced data flow is waited for


class BypassListsHook(Protocol):
    """Live bypass lists as the pipeline uses them (``commands.bypass_lists_live``)."""

    def poll(self) -> bool: ...
    def counters(self) -> dict[str, int]: ...
    @property
    def has_sni(self) -> bool: ...
    def match_server_name(self, app: Any) -> tuple[bool, Any]: ...
    def match_flow(self, flow: Flow) -> Any: ...
    def count_flow(self, entry: Any, flow: Flow) -> None: ...


class _FlowExtra:
    """Per-flow pipeline state that no stage owns (kept in ``Flow.user``)."""

    __slots__ = ("alerted", "anomalies", "auto_watch", "decision", "drops_logged", "encrypted",
                 "exception_policies",
                 "inspected", "list_entry", "logged", "midstream_seen", "pending", "probe",
                 "raw_alproto", "raw_done", "raw_on_complete", "recent_txs", "sni_checked",
                 "stream_log")

    def __init__(self, probe: AppProtoProbe) -> None:
        self.alerted = False
        # bypass lists: the server name was looked up; the entry that bypassed the flow
        self.sni_checked = False
        self.list_entry: Any = None
        self.midstream_seen = False
        # exception policies applied to the flow: (target, policy) as the flow event logs them
        self.exception_policies: list[tuple[str, str]] = []
        # directions (1: to server, 2: to client) whose flow drop has a drop event
        self.drops_logged = 0
        # tx_id -> how many of its app-layer events have an anomaly event
        self.anomalies: dict[int, int] = {}
        self.decision = FLOW_INSPECT
        self.probe: AppProtoProbe | None = probe
        # the app layer reported its handshake done both ways (encryption-handling)
        self.encrypted = False
        # tx ids whose EVE event was written
        self.logged: set[int] = set()
        # Reassembled stream data of a direction, waiting for that direction's next packet
        # (IDS mode delivers data when the other side ACKs it; Suricata inspects a
        # direction's stream on that direction's packets).
        self.pending: dict[bool, list[bytes]] = {True: [], False: []}
        # per direction (index: to_server): how many of its messages were complete when
        # its raw stream was last inspected (raw_on_complete protocols)
        self.raw_done = [0, 0]
        # the protocol whose registry entry said raw_on_complete (``_raw_ready``'s cache)
        self.raw_alproto: str | None = ""
        self.raw_on_complete = False
        # (tx_id, to_server) -> (request_progress, response_progress) last inspected
        self.inspected: dict[tuple[int, bool], tuple[int, int]] = {}
        # the transactions handed to detection in the current pass: one pruned from the
        # parser in that pass still gives its alert the app-layer object (alert.dns)
        self.recent_txs: list[Any] = []
        # the last reassembled bytes per direction, for alerts' payload (when logged)
        self.stream_log: dict[bool, bytearray] | None = None
        self.auto_watch: FlowWatch | None = None  # stream.auto-bypass


class Pipeline:
    """One engine instance: a flow table and the stages around it (one per worker)."""

    def __init__(
        self,
        settings: EngineSettings,
        detect: DetectEngine,
        *,
        eve: EveWriter | None,
        stats: Stats,
        classify: Classifier,
        reject: RejectSender | None = None,
        fast: FastLogWriter | None = None,
    ) -> None:
        # protocol settings that follow the rule set (ja3-fingerprints: auto)
        used = frozenset(name for cr in detect.rules for name, _ in cr.rule.options)
        settings = dataclasses.replace(settings, applayer=settings.applayer.for_rules(used))
        self.settings = settings
        self.detect = detect
        # stream.auto-bypass: what the rule set allows, decided once per engine
        self._auto_plan = self._auto_bypass_plan(detect.rules) \
            if settings.stream.auto_bypass else None
        self.eve = eve
        # eve-log alert option ``verdict: yes``: alerts carry the packet's final verdict
        alert_options = settings.eve_options.get("alert") or {}
        self._log_verdict = parse_bool(alert_options.get("verdict")) is True
        # alert payload options: stream matches log the last payload-buffer-size bytes of
        # the matched direction's reassembled data (kept only when payload is logged)
        logs_payload = any(parse_bool(alert_options.get(k)) is True
                           for k in ("payload", "payload-printable", "payload-length"))
        size = parse_size(alert_options.get("payload-buffer-size", "4kb"))
        self._stream_log_size = (size if size and size > 0 else 4096) if logs_payload else 0
        # eve-log anomaly types: applayer on unless turned off (decode/stream: not logged)
        anomaly_types = (settings.eve_options.get("anomaly") or {}).get("types") or {}
        self._anomaly_applayer = parse_bool(anomaly_types.get("applayer", True)) is not False \
            if isinstance(anomaly_types, dict) else True
        drop_options = settings.eve_options.get("drop") or {}
        self._drop_log_all = str(drop_options.get("flows", "start")).lower() == "all"
        self._drop_log_alerts = parse_bool(drop_options.get("alerts")) is True
        self.stats = stats
        self.classify = classify
        self.reject = reject
        self.fast = fast  # fast.log, when enabled
        self.flows = FlowTable(settings.timeouts, use_vlan=settings.use_vlan,
                               memcap=settings.flow_memcap,
                               use_recursion=settings.use_recursion)
        # (host a, host b, port) -> (protocol, expiry): flows announced by a parser
        self._expected: OrderedDict[tuple[bytes, bytes, int], tuple[str, float]] = OrderedDict()
        self.tcp = TcpTracker(settings.stream)
        self.report = RunReport()
        self._backend: CaptureBackend | None = None
        self._decoder: Decoder | None = None
        self.bypass_mgr: BypassManager | None = None
        # Set by the worker runner when several workers share one EVE log: their stats
        # snapshots go to the parent, which writes one merged stats event (Suricata's totals).
        self.stats_sink: StatsSink | None = None
        # set by live runs: the bypassed flows, for ``ruleengine bypass list``
        self.bypass_state: BypassStateFile | None = None
        # set by live runs with ``bypass-lists:``: reloaded between packets, sni entries
        self.bypass_lists: BypassListsHook | None = None
        self._next_flow_pass = 0.0
        self._next_stats = 0.0
        self._next_timer = 0.0  # min of the two above (offline: the flow pass only)
        self._stamp = 0  # EveWriter.stamp: bumped whenever transactions may change
        self._started = time.time()
        self._pcap_cnt = 0
        self._numbered = False  # the backend's packet ids are pcap numbers
        self._last_ts = 0.0
        self._frame: bytes | memoryview = b""  # the frame being processed
        self._linktype = 1
        self._stop = False
        # Live rule reload: ``rebuild`` builds a DetectEngine from the run's rule files
        # (raises ReloadError); ``reload_listeners`` hear of every finished reload.
        self.rebuild: Callable[[], DetectEngine] | None = None
        self.reload_listeners: list[Callable[[RuleReload], None]] = []
        self._reload: RuleReload | None = None
        self._reload_requested = False  # set by SIGUSR2: only a flag in the handler
        self.last_reload = time.time()  # ruleset-reload-time: the engine's load time
        self._base_applayer = settings.applayer
        # Polled between packets, at most every CONTROL_INTERVAL s (the unix socket)
        self.control: Callable[[], None] | None = None
        self._next_control = 0.0
        # ``ruleengine hunt`` shards a big pcap by flow hash: frames this returns False for
        # belong to another shard. They still count (pcap_cnt stays the file's packet
        # number) and still drive the timers, but are not decoded or inspected.
        self.packet_filter: Callable[[bytes | memoryview], bool] | None = None

    # --- driving -------------------------------------------------------------------

    def stop(self) -> None:
        """Ask ``run`` to return after the current packet (signal handlers call this)."""
        self._stop = True

    @property
    def stopping(self) -> bool:
        return self._stop

    def uptime(self) -> float:
        return time.time() - self._started

    # --- live rule reload ------------------------------------------------------------

    def request_reload(self) -> None:
        """SIGUSR2: reload at the next packet boundary (safe in a signal handler)."""
        self._reload_requested = True

    def start_reload(self) -> RuleReload:
        """Start building the new engine (or return the reload already under way)."""
        if self._reload is not None:
            return self._reload
        reload = RuleReload(self.reload_listeners)
        if self.rebuild is None or self._stop:
            reload.error = "live rule reload is not available" if self.rebuild is None \
                else "engine is shutting down"
            reload._finish()
            return reload
        self._reload = reload
        rebuild = self.rebuild
        threading.Thread(target=reload._build, args=(rebuild,), name="rule-reload",
                         daemon=True).start()
        return reload

    def _swap_engine(self, reload: RuleReload) -> None:
        """Between packets: the new engine takes over the old one's state, or, when it
        could not be built, the old engine simply goes on."""
        self._reload = None
        new = reload.engine
        if new is not None and reload.error is None:
            new.adopt_state(self.detect)
            self.detect = new
            if self._auto_plan is not None:
                self._auto_plan = self._auto_bypass_plan(new.rules)
            used = frozenset(name for cr in new.rules for name, _ in cr.rule.options)
            self.settings = dataclasses.replace(
                self.settings, applayer=self._base_applayer.for_rules(used))
            self.last_reload = time.time()
            self.stats.incr("detect.engine_reloads")
        else:
            self.stats.incr("detect.engine_reload_failures")
        reload._finish()

    def _between_packets(self) -> None:
        """Work that must not run inside a packet: reload requests and swaps, and the
        unix socket (whose commands may read or change engine state)."""
        if self._reload_requested:
            self._reload_requested = False
            self.start_reload()
        reload = self._reload
        if reload is not None and reload._built.is_set():
            self._swap_engine(reload)
        if self.bypass_lists is not None:
            self.bypass_lists.poll()  # a look at the watcher about once a second
        if self.control is not None:
            now = time.monotonic()
            if now >= self._next_control:
                self._next_control = now + CONTROL_INTERVAL
                self.control()

    def run(self, backend: CaptureBackend, *,
            on_packet: Callable[[], None] | None = None) -> RunReport:
        """Process every packet of ``backend`` until it ends or ``stop()`` is called."""
        self._backend = backend
        self._linktype = int(backend.linktype)
        self._numbered = bool(getattr(backend, "numbered", False))
        self._decoder = Decoder(backend.linktype,
                                checksum_validation=self.settings.checksum_validation,
                                checksum_auto=self.settings.checksum_auto,
                                vxlan_ports=self.settings.vxlan_ports,
                                geneve_ports=self.settings.geneve_ports,
                                max_layers=self.settings.max_layers,
                                vxlan_strict=self.settings.vxlan_strict)
        self.bypass_mgr = BypassManager(backend, self.stats, self.settings.timeouts)
        t0 = time.perf_counter()
        inline = bool(backend.capabilities & Capability.INLINE)
        process = self.process
        try:
            for ts, data, pkt_id in backend.packets():
                if data:
                    verdict = process(ts, data, pkt_id)
                    if inline:
                        backend.verdict(pkt_id, verdict)
                    if on_packet is not None:
                        on_packet()
                elif self.eve is not None:
                    # idle tick of a live capture: write what is buffered, so eve.json
                    # shows alerts now rather than after the next busy period
                    self.eve.flush()
                # the timers' and the between-packets checks inline: on most packets
                # neither has anything to do, and a call each costs more than the test
                if ts >= self._next_timer or self.flows.evicted:
                    self._timers(ts)
                if self._reload_requested or self._reload is not None \
                        or self.control is not None or self.bypass_lists is not None:
                    self._between_packets()
                if self._stop:
                    self.report.interrupted = True
                    break
        finally:
            self.finish()
            self.report.duration = time.perf_counter() - t0
        return self.report

    # --- per packet ----------------------------------------------------------------

    def process(self, ts: float, data: bytes | memoryview, pkt_id: int) -> Verdict:
        """Decode, track, parse, detect and act on one frame; return its verdict."""
        assert self._decoder is not None
        report = self.report
        report.packets += 1
        report.bytes += len(data)
        eve = self.eve
        if eve is not None:  # transactions may change now: EVE rebuilds their objects
            self._stamp += 1
            eve.stamp = self._stamp
        # a pcap worker's frames come numbered by their place in the file (pcap_cnt as in
        # a run in one process); other backends are counted here
        self._pcap_cnt = pkt_id if self._numbered else self._pcap_cnt + 1
        self._last_ts = ts
        if self.packet_filter is not None and not self.packet_filter(data):
            return Verdict.ACCEPT
        self._frame = data  # for alerts' ``packet`` option
        pkt = self._decoder.decode(ts, data, pkt_id)
        if pkt is None:  # a fragment held for reassembly
            return Verdict.ACCEPT
        if pkt.invalid:
            report.invalid += 1
            return Verdict.ACCEPT
        if not pkt.ip_version:
            return Verdict.ACCEPT
        flow, to_server = self.flows.lookup(pkt)
        stored = flow.user
        extra: _FlowExtra = self._extra(flow) if stored is None else stored
        if stored is None and self.bypass_lists is not None:
            self._flow_list(flow, extra, pkt)
        if flow.bypass:
            self._count_bypassed_packet(flow, pkt, to_server)
            return Verdict.ACCEPT
        if extra.decision == FLOW_DROP:
            self._dropped(flow, extra, pkt, to_server, "flow drop")
            return Verdict.DROP
        if extra.decision == FLOW_PASS:
            self._track_only(flow, extra, pkt, to_server)
            return Verdict.ACCEPT
        return self._inspect(flow, extra, pkt, to_server)

    def _inspect(self, flow: Flow, extra: _FlowExtra, pkt: Packet, to_server: bool) -> Verdict:
        chunks: list[tuple[bool, bytes]] = []
        depth_reached = False
        stream_chunk: bytes | None = None
        stream_add = False  # PKT_STREAM_ADD: this packet's payload went to the stream
        eof_ts = eof_tc = False
        is_tcp = pkt.proto == IPPROTO_TCP
        if is_tcp:
            upd = self.tcp.process(flow, pkt, to_server)
            if self._midstream_exception(flow, extra, upd.midstream_rejected):
                self._exception_applied(extra, "stream_midstream", "tcp.midstream",
                                        self.settings.midstream_policy)
                if self._midstream_policy(flow, extra, pkt, to_server):
                    return Verdict.DROP if extra.decision == FLOW_DROP else Verdict.ACCEPT
            chunks = upd.data
            depth_reached = upd.depth_reached_toserver or upd.depth_reached_toclient
            eof_ts, eof_tc = upd.closed_toserver, upd.closed_toclient
            if upd.accept:
                stream_chunk = b""  # the payload belongs to the stream: inspect it as stream
                stream_add = True
        elif pkt.proto == IPPROTO_UDP and pkt.payload:
            chunks = [(to_server, bytes(pkt.payload))]
        if extra.encrypted:
            chunks = []  # encryption-handling default: the encrypted rest is not inspected
        for i, (chunk_to_server, chunk) in enumerate(chunks):
            if self._app_feed(flow, extra, chunk_to_server, chunk, pkt.ts):
                # the app layer found the flow's sides swapped (midstream pick-up)
                chunks = [(not d, c) for d, c in chunks]
                to_server = not to_server
                eof_ts, eof_tc = eof_tc, eof_ts
                self._app_feed_rest(flow, chunks[i + 1:], pkt.ts)
                break
        if eof_ts or eof_tc:
            self._app_eof(flow, eof_ts, eof_tc)
        if is_tcp:
            if chunks:
                if self._stream_log_size:
                    self._keep_stream_log(extra, chunks)
                pending_by_side = extra.pending
                for chunk_to_server, chunk in chunks:
                    pending_by_side[chunk_to_server].append(chunk)
            pending = extra.pending[to_server]
            if pending and self._raw_ready(flow, extra, to_server,
                                           (eof_ts if to_server else eof_tc) or depth_reached):
                stream_chunk = b"".join(pending)
                pending.clear()
            if extra.encrypted:
                stream_chunk, stream_add = b"", True
        if not pkt.payload:
            stream_add = True  # nothing of its own to inspect: no fallback to it
        matches = self._detect(flow, extra, pkt, to_server, stream_chunk, stream_add)
        verdict = self._act(flow, extra, pkt, to_server, matches) if matches \
            else Verdict.ACCEPT
        if self.detect.tag_packet(pkt, flow) and self.eve is not None:  # tag keyword
            self.eve.tagged_packet(ts=pkt.ts, flow=flow, pkt=pkt,
                                   pcap_cnt=self._pcap_cnt if self.settings.offline else None)
        if depth_reached and self.settings.stream_bypass and not flow.bypass:
            self._bypass(flow, pkt, "stream-depth")
        if self.bypass_lists is not None and not extra.sni_checked and flow.app is not None \
                and to_server:  # after detection saw the client hello (a to-server tx)
            self._sni_list(flow, extra, pkt)
        if self._auto_plan is not None and not flow.bypass and flow.app is not None \
                and self._auto_bypass(flow, extra, pkt, to_server) is Verdict.DROP:
            verdict = Verdict.DROP
        app = flow.app
        if app is not None and not extra.encrypted and app.encrypted:
            self._encrypted(flow, extra, pkt)
        return verdict

    def _raw_ready(self, flow: Flow, extra: _FlowExtra, to_server: bool, ending: bool) -> bool:
        """Is a direction's pending raw stream inspected now? As Suricata's
        StreamTcpReassembleRawCheckLimit: for a protocol that triggers raw inspection when a
        message completes (HTTP), data of a message still in progress waits until one
        completes, a chunk-size of data is pending, or the direction ends (EOF, depth,
        close). Other flows inspect what the peer ACKed on this direction's next packet."""
        if ending or flow.app is None or flow.state == STATE_CLOSED:
            return True
        alproto = flow.alproto
        if alproto is not extra.raw_alproto:  # looked up once per flow (and protocol)
            spec = registry.by_name().get(alproto or "")
            extra.raw_alproto = alproto
            extra.raw_on_complete = spec is not None and spec.raw_on_complete
        if not extra.raw_on_complete:
            return True
        stream = self.settings.stream
        limit = stream.toserver_chunk_size if to_server else stream.toclient_chunk_size
        pending = extra.pending[to_server]
        if (len(pending[0]) if len(pending) == 1 else sum(map(len, pending))) >= limit:
            return True
        side = 1 if to_server else 0
        done = 0
        if to_server:
            for tx in _parser(flow).transactions:
                done += tx.request_complete
        else:
            for tx in _parser(flow).transactions:
                done += tx.response_complete
        if done != extra.raw_done[side]:
            extra.raw_done[side] = done
            return True
        return False

    def _encrypted(self, flow: Flow, extra: _FlowExtra, pkt: Packet) -> None:
        """The handshake is done both ways: Suricata's ``encryption-handling``. ``bypass``
        hands the flow to the capture bypass; ``default`` stops inspecting its content
        (packet rules still run on headers); ``full`` inspects everything."""
        handling = registry.encryption_handling(flow.alproto or "", self.settings.applayer)
        if handling == "full":
            return
        extra.encrypted = True
        self.stats.incr(f"app_layer.{flow.alproto}.encrypted")
        if handling == "bypass" and not flow.bypass:
            self._bypass(flow, pkt, "encryption")

    def _track_only(self, flow: Flow, extra: _FlowExtra, pkt: Packet, to_server: bool) -> None:
        """A passed flow still needs TCP state so it closes and times out correctly; a
        midstream packet refused again counts its pass-flow policy again (Suricata's stream
        engine runs on passed flows)."""
        if pkt.proto == IPPROTO_TCP:
            upd = self.tcp.process(flow, pkt, to_server)
            if upd.midstream_rejected and self.settings.midstream_policy == "pass-flow":
                self._exception_applied(extra, "stream_midstream", "tcp.midstream",
                                        "pass-flow")

    # --- app layer -----------------------------------------------------------------

    def _app_feed(self, flow: Flow, extra: _FlowExtra, to_server: bool, data: bytes,
                  ts: float) -> bool:
        """Probe (until decided) and parse one chunk. True when probing found the flow
        reversed: the flow was swapped and this chunk was fed with its corrected side."""
        probe = extra.probe
        if probe is not None:
            result = probe.probe(data, to_server)
            if result:
                extra.probe = None
                return self._app_start(flow, extra, probe, result, to_server, data, ts)
            if result is False:
                extra.probe = None
                flow.alproto = "failed"
        if flow.alproto not in (None, "failed") and \
                (flow.alproto_ts if to_server else flow.alproto_tc) is None:
            self._other_direction(flow, to_server, data)
        app = flow.app
        if app is not None:
            app.feed(to_server, data, ts)
            if getattr(app, "expectations", None):
                self._take_expectations(flow)
        return False

    def _take_expectations(self, flow: Flow) -> None:
        """Flows the parser announced (FTP data channels): the next flow between these two
        hosts towards that port is of that protocol, without probing."""
        announced = getattr(flow.app, "expectations", None)
        if not announced:
            return
        pair = (flow.src, flow.dst) if flow.src <= flow.dst else (flow.dst, flow.src)
        for port, alproto in announced:
            self._expected[(*pair, port)] = (alproto, flow.last_ts + _EXPECTATION_TIMEOUT)
            self._expected.move_to_end((*pair, port))
        announced.clear()
        while len(self._expected) > _MAX_EXPECTATIONS:
            self._expected.popitem(last=False)

    def _expected_alproto(self, flow: Flow) -> str | None:
        if not self._expected:
            return None
        pair = (flow.src, flow.dst) if flow.src <= flow.dst else (flow.dst, flow.src)
        found = self._expected.pop((*pair, flow.dport), None)
        if found is None:
            return None
        alproto, expires = found
        return alproto if flow.start_ts <= expires else None

    def _other_direction(self, flow: Flow, to_server: bool, data: bytes) -> None:
        """The first data of the direction that did not decide the protocol: probed on its
        own, it keeps the flow's protocol unless it positively shows another one (an HTTP
        client talking to an SSH server); the flow's parser stays the one it has."""
        seen = probe_direction(data, to_server, ipproto=flow.proto,
                               ports=(flow.sport, flow.dport),
                               enabled=self.settings.applayer.enabled)
        alproto = seen if seen is not None else flow.alproto
        if alproto != flow.alproto:
            self.stats.incr("app_layer.mismatch_protocol_both_directions")
        _set_direction_alproto(flow, to_server, alproto)

    def _app_start(self, flow: Flow, extra: _FlowExtra, probe: AppProtoProbe, alproto: str,
                   to_server: bool, data: bytes, ts: float) -> bool:
        """Protocol found: start its parser with everything probing held back (both
        directions, the other one first since it came earlier), as Suricata hands the
        parser the stream from its start. True when the flow was found reversed."""
        flow.alproto = alproto
        flow.app = registry.make_parser(alproto, self.settings.applayer, flow.proto)
        if flow.app is None:  # detection-only protocol
            _set_direction_alproto(flow, to_server, alproto)
            return False
        mine = probe.buffered(to_server) or data
        other = probe.buffered(not to_server)
        side = not to_server if probe.reversed else to_server
        if probe.reversed:
            flow.reverse()
            extra.pending = {True: extra.pending[False], False: extra.pending[True]}
            extra.raw_done.reverse()  # indexed by direction too
        _set_direction_alproto(flow, side, alproto)
        if other:  # probed already and showed nothing else
            _set_direction_alproto(flow, not side, alproto)
        parser = _parser(flow)
        if other:
            parser.feed(not side, other, ts)
        parser.feed(side, mine, ts)
        return probe.reversed

    def _app_feed_rest(self, flow: Flow, chunks: list[tuple[bool, bytes]], ts: float) -> None:
        if flow.app is not None:
            for chunk_to_server, chunk in chunks:
                _parser(flow).feed(chunk_to_server, chunk, ts)

    def _app_eof(self, flow: Flow, toserver: bool, toclient: bool) -> None:
        if flow.app is not None:
            if toserver:
                _parser(flow).close(True)
            if toclient:
                _parser(flow).close(False)

    # --- detection -----------------------------------------------------------------

    def _detect(self, flow: Flow, extra: _FlowExtra, pkt: Packet, to_server: bool,
                stream_chunk: bytes | None, stream_add: bool = True) -> list[Match]:
        """Packet/stream rules and the transactions that progressed since this direction
        last looked at them, in one ordered pass (``pass`` and rule order span both)."""
        txs: list[tuple[Any, bool, bool]] = []
        if flow.app is not None:
            txs = self._changed_txs(_parser(flow), extra, to_server)
        matches = self.detect.inspect(pkt, flow, to_server, stream_chunk, txs,
                                      stream_add=stream_add)
        if txs and self.eve is not None and flow.app is not None:
            changed = extra.recent_txs  # the transactions of ``txs`` (``_changed_txs``)
            self._log_txs(flow, extra, changed, pkt)
            self._log_files(flow, changed, pkt)
            self._log_anomalies(flow, extra, changed, pkt)
        return matches

    def _changed_txs(self, parser: AppParser, extra: _FlowExtra,
                     to_server: bool) -> list[tuple[Any, bool, bool]]:
        changed = []
        recent = []
        inspected = extra.inspected
        for tx in parser.transactions:
            progress = (tx.request_progress, tx.response_progress)
            key = (tx.tx_id, to_server)
            if inspected.get(key) != progress:
                inspected[key] = progress
                changed.append((tx, tx.request_complete, tx.response_complete))
                recent.append(tx)
        extra.recent_txs = recent
        if len(parser.transactions) > 1:  # _prune_txs keeps the last one anyway
            self._prune_txs(parser, extra)
        return changed

    def _log_txs(self, flow: Flow, extra: _FlowExtra, txs: list[Any], pkt: Packet | None,
                 *, flow_end: bool = False) -> None:
        """The protocol's EVE event of each transaction, once, when it is complete both
        ways (or at flow end), as Suricata's tx loggers run on completed transactions."""
        if self.eve is None or not flow.alproto or not self.eve.wants(flow.alproto):
            return
        spec = registry.by_name().get(flow.alproto)
        each_side = spec is not None and spec.log_when == "each_side"
        for tx in txs:
            if tx.tx_id in extra.logged:
                continue
            done = tx.request_complete and tx.response_complete
            if not (flow_end or done or each_side):
                continue
            ts = pkt.ts if pkt is not None else flow.last_ts
            wrote = self.eve.app_tx(flow.alproto, ts=ts, flow=flow, tx=tx, flow_end=flow_end,
                                    pkt=pkt if pkt is not None and pkt.length else None,
                                    pcap_cnt=self._pcap_cnt if self.settings.offline
                                    and pkt is not None and pkt.length else None)
            if (wrote and not each_side) or done or flow_end:
                extra.logged.add(tx.tx_id)
                if len(extra.logged) > 4096:  # bounded: ids are increasing
                    extra.logged = {i for i in extra.logged if i >= tx.tx_id - 1024}

    def _log_files(self, flow: Flow, txs: list[Any], pkt: Packet | None, *,
                   flow_end: bool = False) -> None:
        """A ``fileinfo`` event per file once it is closed or truncated; at flow end the
        files still open are truncated (Suricata's file logger, ``output-file.c``)."""
        if self.eve is None or not flow.alproto or not self.eve.wants("files"):
            return
        for tx in txs:
            for file in getattr(tx, "files", ()):
                if file.logged:
                    continue
                if file.is_open:
                    if not flow_end:
                        continue
                    file.close(truncated=True)
                file.logged = True
                live = pkt is not None and pkt.length
                self.eve.fileinfo(flow.alproto, ts=pkt.ts if pkt is not None else flow.last_ts,
                                  flow=flow, tx=tx, file=file,
                                  pcap_cnt=self._pcap_cnt if self.settings.offline and live
                                  else None)

    def _log_anomalies(self, flow: Flow, extra: _FlowExtra, txs: list[Any],
                       pkt: Packet | None) -> None:
        """An ``anomaly`` event per new app-layer event of a transaction (eve-log
        ``anomaly`` with ``types: applayer``, Suricata's default), once each."""
        if self.eve is None or not self._anomaly_applayer or not flow.alproto \
                or not self.eve.wants("anomaly"):
            return
        live = pkt is not None and pkt.length
        for tx in txs:
            events = tx.events
            done = extra.anomalies.get(tx.tx_id, 0)
            if len(events) <= done:
                continue
            for name in events[done:]:
                self.eve.anomaly(flow.alproto, name, ts=pkt.ts if pkt is not None
                                 else flow.last_ts, flow=flow, pkt=pkt if live else None,
                                 tx_id=tx.tx_id, pcap_cnt=self._pcap_cnt
                                 if self.settings.offline and live else None)
            extra.anomalies[tx.tx_id] = len(events)

    @staticmethod
    def _prune_txs(parser: AppParser, extra: _FlowExtra) -> None:
        """Forget transactions complete both ways and inspected so in both directions."""
        txs = parser.transactions
        while len(txs) > 1:
            tx = txs[0]
            if not (tx.request_complete and tx.response_complete):
                break
            progress = (tx.request_progress, tx.response_progress)
            if (extra.inspected.get((tx.tx_id, True)) != progress
                    or extra.inspected.get((tx.tx_id, False)) != progress):
                break
            extra.inspected.pop((tx.tx_id, True), None)
            extra.inspected.pop((tx.tx_id, False), None)
            extra.anomalies.pop(tx.tx_id, None)
            del txs[0]

    # --- actions -------------------------------------------------------------------

    def _act(self, flow: Flow, extra: _FlowExtra, pkt: Packet, to_server: bool,
             matches: list[Match]) -> Verdict:
        verdict = Verdict.ACCEPT
        to_log: list[tuple[Match, bool]] = []
        final_action = "alert"  # the rule action that decides the packet (EVE verdict)
        for match in matches:
            rule = match.rule
            action = rule.action
            if action is Action.PASS:
                if match.apply_to_flow:
                    extra.decision = FLOW_PASS
                final_action = "pass"
                break
            blocked = self.settings.ips and (action is Action.DROP or action.is_reject)
            # Matches come in rule order (action, priority): beyond packet-alert-max the
            # lower-priority alerts are discarded, as Suricata does.
            if match.alert:
                if len(to_log) < self.settings.packet_alert_max:
                    to_log.append((match, blocked))
                else:
                    self.stats.incr("detect.alert_queue_overflow")
            if (action is Action.DROP or action.is_reject) and final_action == "alert":
                final_action = action.value
            if blocked:
                verdict = Verdict.DROP
                if match.apply_to_flow or action.is_reject:
                    extra.decision = FLOW_DROP
            if action.is_reject and self.reject is not None and pkt.length:
                self.reject.send(pkt, action.value)
                self.stats.incr("ips.rejected")
            if rule.bypass and not flow.bypass:
                self._bypass(flow, pkt, f"rule:{rule.sid}")
        # alerts are written once the packet's fate is known, as Suricata's alert queue
        verdict_obj = verdict_object(final_action, ips=self.settings.ips, proto=pkt.proto) \
            if to_log and self._log_verdict else None
        for match, blocked in to_log:
            self._alert(flow, extra, pkt, to_server, match, blocked, verdict_obj)
        if verdict is Verdict.DROP:
            dropper = next((m.rule for m in matches if m.rule.action is Action.DROP
                            or m.rule.action.is_reject), None)
            self._dropped(flow, extra, pkt, to_server, "rules", dropper)
        return verdict

    def _keep_stream_log(self, extra: _FlowExtra, chunks: list[tuple[bool, bytes]]) -> None:
        if extra.stream_log is None:
            extra.stream_log = {True: bytearray(), False: bytearray()}
        limit = self._stream_log_size
        for chunk_to_server, chunk in chunks:
            window = extra.stream_log[chunk_to_server]
            window += chunk[-limit:]
            if len(window) > limit:
                del window[:len(window) - limit]

    def _alert(self, flow: Flow, extra: _FlowExtra, pkt: Packet, to_server: bool,
               match: Match, blocked: bool, verdict: dict[str, Any] | None = None) -> None:
        rule = match.rule
        extra.alerted = True
        sid = rule.sid
        self.report.alerts_by_sid[sid] = self.report.alerts_by_sid.get(sid, 0) + 1
        self.report.msg_by_sid.setdefault(sid, rule.msg)
        self.stats.incr("detect.alert")
        if self.fast is not None:
            self.fast.alert(pkt, rule, *self._classification(rule), blocked=blocked)
        if self.eve is None:
            return
        category, severity = self._classification(rule)
        tx = None
        if match.tx_id is not None and flow.app is not None:
            tx = next((t for t in (*extra.recent_txs, *_parser(flow).transactions)
                       if t.tx_id == match.tx_id), None)
        self.eve.alert(
            ts=pkt.ts, flow=flow, pkt=pkt, rule=rule,
            action="blocked" if blocked else "allowed",
            to_server=to_server, tx=tx, tx_id=match.tx_id,
            app_proto=flow.alproto, category=category, severity=severity,
            pcap_cnt=self._pcap_cnt if self.settings.offline and pkt.length else None,
            variables=self.detect.alert_vars(pkt, flow), verdict=verdict,
            stream=match.stream or match.tx_id is not None,
            stream_data=bytes(extra.stream_log[match.to_server])
            if extra.stream_log is not None else None,
            frame=self._frame if pkt.length and not pkt.pseudo else None,
            linktype=self._linktype,
        )

    def _classification(self, rule: Rule) -> tuple[str | None, int]:
        info = self.classify(rule.classtype) if rule.classtype else None
        category = info[0] if info else None
        if rule.priority is not None:
            return category, rule.priority
        return category, info[1] if info else 3

    def _dropped(self, flow: Flow, extra: _FlowExtra, pkt: Packet, to_server: bool,
                 reason: str, rule: Rule | None = None) -> None:
        """Count a dropped packet and write its ``drop`` event (output-json-drop.c): with
        ``flows: start`` (the default) a flow dropped as a whole logs its first drop per
        direction, a drop a rule caused is always logged; ``flows: all`` logs every one."""
        self.report.dropped += 1
        self.stats.incr("ips.blocked")
        if self.eve is None or not self.settings.ips or not self.eve.wants("drop"):
            return
        side = 1 if to_server else 2
        if not self._drop_log_all and rule is None and extra.drops_logged & side:
            return
        extra.drops_logged |= side
        category, severity = self._classification(rule) if rule is not None else (None, 3)
        self.eve.drop(ts=pkt.ts, flow=flow, pkt=pkt, to_server=to_server, reason=reason,
                      rule=rule if self._drop_log_alerts else None, category=category,
                      severity=severity,
                      pcap_cnt=self._pcap_cnt if self.settings.offline and pkt.length else None)

    def _exception_applied(self, extra: _FlowExtra, target: str, counter: str,
                           policy: str) -> None:
        """An exception policy met this flow: the flow event lists it once, the stats count
        each time it acted (``exception_policy.<counter>.<policy>``; not for ignore)."""
        name = policy.replace("-", "_")
        if all(t != target for t, _ in extra.exception_policies):
            extra.exception_policies.append((target, name))
        if name != "ignore":
            self.stats.incr(f"exception_policy.{counter}.{name}")

    # --- bypass --------------------------------------------------------------------

    def _bypass(self, flow: Flow, pkt: Packet, reason: str) -> None:
        """Suricata's PacketBypassCallback: capture bypass if the backend takes it, else local.
        ``reason``: ``rule:<sid>``, ``stream-depth``, ``encryption`` or an exception policy;
        kept on the flow for its EVE record and counted."""
        assert self._backend is not None and self.bypass_mgr is not None
        flow.bypass_reason = reason
        self.stats.incr("flow_bypassed.reason." + reason.split(":", 1)[0])
        # A tunnelled flow's packets carry the outer headers on the wire, which a capture
        # bypass keyed on the flow's tuple would never match (Suricata's AFPBypassCallback
        # refuses tunnel packets too): bypass it locally.
        if flow.proto not in (IPPROTO_TCP, IPPROTO_UDP) or pkt.tunnel is not None:
            self.bypass_mgr.bypass_local(flow, pkt.ts)
            self.report.bypassed_flows_local += 1
            return
        # Always the client->server tuple, so the backend's "toserver" counters are the flow's.
        tup = FlowTuple(flow.src, flow.dst, flow.sport, flow.dport, flow.proto, flow.vlan)
        if flow.tcp is not None:
            self.tcp.release(flow)  # no more reassembly for a bypassed flow: free its buffers
        if self.bypass_mgr.bypass_capture(flow, tup, pkt.pkt_id, pkt.ts):
            self.report.bypassed_flows_capture += 1
        else:
            self.report.bypassed_flows_local += 1

    def _flow_list(self, flow: Flow, extra: _FlowExtra, pkt: Packet) -> None:
        """Address/port entries matched in user space (a pcap run; live captures match
        them in the kernel or the NFQ reader): a new flow they list is bypassed before its
        first packet is inspected."""
        assert self.bypass_lists is not None
        entry = self.bypass_lists.match_flow(flow)
        if entry is None:
            return
        extra.list_entry = entry
        self._bypass(flow, pkt, "list")
        # none of it was inspected: this first packet counts as bypassed (accounting)
        flow.inspected_pkts = flow.inspected_bytes = 0

    def _sni_list(self, flow: Flow, extra: _FlowExtra, pkt: Packet) -> None:
        """Bypass lists' ``sni`` entries: decided once the client hello was parsed."""
        lists = self.bypass_lists
        assert lists is not None
        if flow.bypass or not lists.has_sni:
            extra.sni_checked = True
            return
        decided, entry = lists.match_server_name(flow.app)
        extra.sni_checked = decided
        if entry is not None:
            extra.list_entry = entry
            self._bypass(flow, pkt, "list")

    def _auto_bypass_plan(self, rules: Any) -> AutoBypassPlan:
        plan = AutoBypassPlan.build(rules)
        if self.settings.stream_bypass:  # the depth bypass comes anyway past the depth
            plan.depth_bypass = self.settings.stream.reassembly_depth
        return plan

    def _auto_bypass(self, flow: Flow, extra: _FlowExtra, pkt: Packet,
                     to_server: bool) -> Verdict:
        """stream.auto-bypass (``detect/auto_bypass.py``): once no rule can still match the
        flow, run the last evaluation its transactions would get, log them, bypass it.
        Returns that evaluation's verdict for the packet."""
        assert self._auto_plan is not None
        verdict = Verdict.ACCEPT
        watch = extra.auto_watch
        if watch is None or watch.plan is not self._auto_plan:
            watch = extra.auto_watch = self._auto_plan.watch(flow)
            if watch is None:
                return verdict
        views = watch.ready(flow, to_server, extra.encrypted)
        if views is None:
            return verdict
        for view in views:
            matches = self.detect.inspect_tx(pkt, flow, to_server, view, True, True)
            if matches and self._act(flow, extra, pkt, to_server, matches) is Verdict.DROP:
                verdict = Verdict.DROP
        txs = list(_parser(flow).transactions)
        self._log_txs(flow, extra, txs, pkt, flow_end=True)
        self._log_files(flow, txs, pkt, flow_end=True)
        # a drop or pass of the last evaluation decides the flow's fate instead; a bypass
        # rule may have bypassed it already
        if not flow.bypass and extra.decision == FLOW_INSPECT:
            self._bypass(flow, pkt, AUTO)
        return verdict

    def bypassed_flows(self) -> list[Flow]:
        """Flows bypassed now (the unix socket's ``bypass-list``), oldest first."""
        return [f for f in self.flows.flows.values() if f.bypass]

    def end_bypassed_flow(self, flow: Flow) -> None:
        """``bypass-remove``: end a bypassed flow now. Its kernel entry is deleted (eBPF
        map) and its flow event written, as at its timeout; the connection's next packet
        starts a new flow that is inspected again (picked up midstream)."""
        self.flows.remove(flow)
        flow.end_reason = "forced"
        self._end_flow(flow)

    def _count_bypassed_packet(self, flow: Flow, pkt: Packet, to_server: bool) -> None:
        assert self.bypass_mgr is not None
        self.bypass_mgr.count_packet(flow, pkt.length, to_server, pkt.ts, pkt.pkt_id)

    # --- exception policy ------------------------------------------------------------

    @staticmethod
    def _midstream_exception(flow: Flow, extra: _FlowExtra, rejected: bool) -> bool:
        """A midstream packet was refused, or a session was just picked up midstream:
        both are Suricata's midstream exception (checked once per flow for pick-ups)."""
        if rejected:
            return True
        if flow.tcp is not None and flow.tcp.midstream and not extra.midstream_seen:
            extra.midstream_seen = True
            return True
        return False

    def _midstream_policy(self, flow: Flow, extra: _FlowExtra, pkt: Packet,
                          to_server: bool) -> bool:
        """Apply the resolved stream.midstream-policy. True when it decided the packet's fate."""
        policy = self.settings.midstream_policy
        if policy == "pass-flow":
            extra.decision = FLOW_PASS
            return True
        if policy == "drop-flow" and self.settings.ips:
            extra.decision = FLOW_DROP
            self._dropped(flow, extra, pkt, to_server, "stream midstream")
            return True
        if policy == "bypass":
            self._bypass(flow, pkt, "exception-policy")
            return True
        if policy == "reject" and self.settings.ips:
            extra.decision = FLOW_DROP
            if self.reject is not None:
                self.reject.send(pkt, "reject")
            self._dropped(flow, extra, pkt, to_server, "stream midstream")
            return True
        return False

    # --- timers and flow end ---------------------------------------------------------

    def _timers(self, now: float) -> None:
        try:
            self._timer_pass(now)
        finally:
            # the earliest time a timer is due (``run`` skips the call before)
            self._next_timer = self._next_flow_pass if self.settings.offline \
                else min(self._next_flow_pass, self._next_stats)

    def _timer_pass(self, now: float) -> None:
        if now >= self._next_flow_pass:
            self._next_flow_pass = now + self.settings.flow_manager_interval
            if self.bypass_mgr is not None:
                self.bypass_mgr.poll(now)
            self._end_flows(self.flows.expire(now))
            if self.bypass_state is not None and self.bypass_mgr is not None:
                self.bypass_state.update(self.bypass_mgr.captured_flows())
        elif self.flows.evicted:
            # flows pushed out by flow.memcap end now, not at the next pass: a flood of new
            # flows within one interval must not pile them up
            self._end_flows(self.flows.take_evicted())
        if not self.settings.offline and now >= self._next_stats:
            self._next_stats = now + self.settings.stats_interval
            self.write_stats(now)

    def _end_flows(self, flows: Iterable[Flow]) -> None:
        for flow in flows:
            self._end_flow(flow)

    def _end_flow(self, flow: Flow) -> None:
        extra = self._extra(flow)
        if self.eve is not None:  # the flow's last data and close change its transactions
            self._stamp += 1
            self.eve.stamp = self._stamp
        if not flow.bypass and extra.decision == FLOW_INSPECT:
            self._final_inspection(flow, extra)
        # A bypassed flow that times out gets no pseudo packets in Suricata (the flow
        # manager and worker skip FlowIsBypassed flows): its unfinished txs are not logged.
        timed_out_bypassed = bool(flow.bypass) and flow.end_reason == "timeout"
        if flow.app is not None and not timed_out_bypassed:
            self._log_txs(flow, extra, list(_parser(flow).transactions), None, flow_end=True)
            self._log_files(flow, list(_parser(flow).transactions), None, flow_end=True)
            self._log_anomalies(flow, extra, list(_parser(flow).transactions), None)
        if flow.tcp is not None:
            self.tcp.release(flow)
        accounting = None
        if flow.bypass and self.bypass_mgr is not None:
            self.bypass_mgr.flow_ended(flow)
            # the flow's totals are final now (kernel counters folded in): reconcile them
            accounting = account(self.stats, flow).as_flowvar(mode_name(flow))
            if extra.list_entry is not None and self.bypass_lists is not None:
                self.bypass_lists.count_flow(extra.list_entry, flow)
        self.report.flows += 1
        self.stats.incr("flow.end")
        if self.eve is not None:
            self.eve.flow(flow, app_proto=flow.alproto, alerted=extra.alerted,
                          reason=flow.end_reason, bypass_reason=flow.bypass_reason,
                          bypass_accounting=accounting,
                          variables=self.detect.alert_vars(None, flow),
                          action=_FLOW_ACTIONS.get(extra.decision),
                          exception_policies=extra.exception_policies)
            self.eve.netflow(flow)

    def _final_inspection(self, flow: Flow, extra: _FlowExtra) -> None:
        """Flow end: deliver what the stream still holds (data never ACKed before the
        capture ended), close the app layer, and inspect what is left in both directions
        with pseudo packets, as Suricata does."""
        if flow.tcp is not None:
            for chunk_to_server, chunk in self.tcp.flush(flow).data:
                self._app_feed(flow, extra, chunk_to_server, chunk, flow.last_ts)
                extra.pending[chunk_to_server].append(chunk)
        if flow.app is not None:
            _parser(flow).close(None)
        for to_server in (True, False):
            pending = extra.pending[to_server]
            stream_chunk = b"".join(pending) if pending else None
            pending.clear()
            pseudo = _pseudo_packet(flow, to_server)
            txs = self._changed_txs(_parser(flow), extra, to_server) \
                if flow.app is not None else []
            if stream_chunk is None and not txs:
                continue  # nothing new for this direction: no pseudo packet
            matches = self.detect.inspect(pseudo, flow, to_server, stream_chunk, txs)
            if matches:
                self._act(flow, extra, pseudo, to_server, matches)

    def finish(self) -> None:
        """End of input: close every flow, write the last stats event."""
        if self._backend is None:
            return
        self._end_flows(self.flows.flush())
        if self.bypass_state is not None:
            self.bypass_state.remove()
        # Offline runs stamp the last stats event with capture time, as Suricata does.
        now = self._last_ts if self.settings.offline and self._last_ts else time.time()
        self.write_stats(now)
        if self.eve is not None:
            self.eve.flush()

    def write_stats(self, now: float) -> None:
        self.collect_counters()
        if self.stats_sink is not None:  # one of several workers: the parent merges
            self.stats_sink(now, now - self._started, self.stats.snapshot())
        elif self.eve is not None:
            self.eve.stats(now, now - self._started, self.stats.snapshot())

    def collect_counters(self) -> None:
        """Copy stage counters into the stats registry (gauges, set not added)."""
        if self._decoder is not None:
            for name, value in self._decoder.counters.items():
                self.stats.set(name, value)
        if self._backend is not None:
            cap = self._backend.stats()
            self.stats.set("capture.kernel_packets", cap.kernel_packets)
            self.stats.set("capture.kernel_drops", cap.kernel_drops)
            self.stats.set("capture.errors", cap.errors)
            self.stats.set("capture.bypass.ipv4_success", cap.bypass_v4_success)
            self.stats.set("capture.bypass.ipv4_fail", cap.bypass_v4_fail)
            self.stats.set("capture.bypass.ipv6_success", cap.bypass_v6_success)
            self.stats.set("capture.bypass.ipv6_fail", cap.bypass_v6_fail)
            self.stats.set("capture.bypass.fast_path_pkts", cap.bypass_fast_path_pkts)
            for name, value in cap.extra:
                self.stats.set(f"capture.{name}", value)
        self.stats.set("flow.active", len(self.flows))
        if self.eve is not None:
            self.stats.set("eve.lines_written", self.eve.events)
            self.stats.set("eve.lines_lost", self.eve.sink.stats.lost)
        for name, value in self.flows.counters.items():  # flow.total, flow.memcap, ...
            self.stats.set(name, value)
        for name, value in self.tcp.snapshot().items():  # Suricata's tcp.* section
            self.stats.set(name, value)
        if self.bypass_lists is not None:  # bypass_list.<file>:<line>.pkts|bytes
            for name, value in self.bypass_lists.counters().items():
                self.stats.set(name, value)
        if self.eve is not None:  # EVE's own transport (not in EVE's stats schema)
            sink = self.eve.sink.stats
            self.stats.set("output.eve.written", sink.written)
            self.stats.set("output.eve.lost", sink.lost)
            self.stats.set("output.eve.errors", sink.errors)

    def _extra(self, flow: Flow) -> _FlowExtra:
        stored = flow.user
        if stored is None:
            extra = _FlowExtra(AppProtoProbe(
                midstream=self.settings.stream.midstream, ipproto=flow.proto,
                ports=(flow.sport, flow.dport), enabled=self.settings.applayer.enabled))
            flow.user = extra
            expected = self._expected_alproto(flow)
            if expected is not None and expected in self.settings.applayer.enabled:
                extra.probe = None
                flow.alproto = flow.alproto_ts = flow.alproto_tc = expected
                flow.app = registry.make_parser(expected, self.settings.applayer, flow.proto)
            return extra
        known: _FlowExtra = stored
        return known


def _set_direction_alproto(flow: Flow, to_server: bool, alproto: str | None) -> None:
    if to_server:
        flow.alproto_ts = alproto
    else:
        flow.alproto_tc = alproto


def _parser(flow: Flow) -> AppParser:
    """The flow's app-layer parser (the flow table stores it untyped, below the app layer);
    callers check ``flow.app is not None`` first."""
    parser: AppParser = flow.app
    return parser


def _pseudo_packet(flow: Flow, to_server: bool) -> Packet:
    """A payload-less packet standing for the flow at its end (Suricata's pseudo packet)."""
    if to_server:
        pkt = Packet(flow.last_ts, 0, 0, flow.ip_version, flow.src, flow.dst, flow.proto,
                     flow.sport, flow.dport, b"")
    else:
        pkt = Packet(flow.last_ts, 0, 0, flow.ip_version, flow.dst, flow.src, flow.proto,
                     flow.dport, flow.sport, b"")
    pkt.pseudo = True
    return pkt


def mpm_choice(value: Any) -> str:
    """Map suricata.yaml ``mpm-algo`` to our prefilter choice."""
    text = str(value or "auto").lower()
    if text == "hs":
        return "hs"
    if text.startswith("ac"):
        return "ac"
    return "auto"
