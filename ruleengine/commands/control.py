"""The unix command socket of ``ruleengine run``: where it listens, and the running
engine as its commands see it (``ControlTarget`` for one pipeline, or for the parent of
AF_PACKET workers).

Enabled by ``--unix-socket[=PATH]`` or ``unix-command.enabled: yes`` (path:
``unix-command.filename``, Suricata's default ``/var/run/suricata/suricata-command.socket``).
Suricata's ``enabled: auto`` opens it on live captures; here ``auto`` opens nothing, so a run
never writes under /var/run unless asked to.
"""

from __future__ import annotations

import argparse
import datetime
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any

from ruleengine.config import Config
from ruleengine.config.values import parse_bool
from ruleengine.control.commands import command_table
from ruleengine.control.server import CommandServer, ControlError, Pending, Reply, socket_path
from ruleengine.flow.table import BYPASS_CAPTURE, Flow
from ruleengine.outputs.sinks import request_reopen
from ruleengine.outputs.stats import nest
from ruleengine.pipeline import Pipeline, RuleReload
from ruleengine.rules.loader import RuleSet
from ruleengine.workers import WorkerHub

# Suricata's RunModeGetMainMode names
CAPTURE_MODES = {"pcap": "PCAP_FILE", "af-packet": "AF_PACKET_DEV", "nfq": "NFQ"}


def wanted_path(args: argparse.Namespace, config: Config) -> str | None:
    """The socket path when the socket is enabled, else None."""
    flag = getattr(args, "unix_socket", None)
    filename = config.get("unix-command.filename")
    if flag is not None:  # --unix-socket[=PATH]: PATH, else the yaml's filename
        return socket_path(flag or (str(filename) if filename else None))
    if parse_bool(config.get("unix-command.enabled", "auto")) is True:
        return socket_path(str(filename) if filename else None)
    return None


def open_server(path: str, target: Any, warn: Callable[[str], None]) -> CommandServer | None:
    """The server on ``path``; a socket that cannot be created is a warning (Suricata:
    "Unable to create unix command socket") and the run goes on without it."""
    try:
        server = CommandServer(path, command_table(target))
    except ControlError as exc:
        warn(f"unix socket: {exc}; running without it")
        return None
    print(f"notice: unix socket: listening on {path}", flush=True, file=sys.stderr)
    return server


def iso_time(ts: float) -> str:
    """Suricata's CreateIsoTimeString: local time with microseconds and the UTC offset."""
    return datetime.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%dT%H:%M:%S.%f%z")


@dataclass
class RulesInUse:
    """The rule set the engine runs now; a reload's rule set waits in ``pending`` until its
    engine is swapped in."""

    ruleset: RuleSet
    pending: RuleSet | None = None
    history: list[str] = field(default_factory=list)

    def stats(self) -> list[dict[str, Any]]:
        rs = self.ruleset
        return [{"id": 0, "rules_loaded": rs.loaded, "rules_failed": rs.failed,
                 "rules_skipped": rs.skipped}]

    def failed(self) -> list[dict[str, Any]]:
        return [{"tenant_id": 0, "rule": d.source_line, "filename": d.file, "line": d.line,
                 "error": d.message} for d in self.ruleset.errors]

    def swapped(self, reload: RuleReload) -> None:
        if reload.error is None and self.pending is not None:
            self.ruleset = self.pending
        self.pending = None


def _flow_entry(flow: Flow) -> dict[str, Any]:
    """One bypassed flow as ``bypass-list`` shows it (EVE's names)."""
    return {
        "flow_id": flow.flow_id,
        "src_ip": str(ip_address(flow.src)), "src_port": flow.sport,
        "dest_ip": str(ip_address(flow.dst)), "dest_port": flow.dport,
        "proto": _PROTOS.get(flow.proto, str(flow.proto)),
        "bypass": "capture" if flow.bypass == BYPASS_CAPTURE else "local",
        "reason": flow.bypass_reason,
        "since": iso_time(flow.bypass_ts) if flow.bypass_ts else None,
    }


_PROTOS = {6: "TCP", 17: "UDP", 1: "ICMP", 58: "IPv6-ICMP"}


def _matches(flow: Flow, args: dict[str, Any]) -> bool:
    """``bypass-remove`` selects by ``flow_id``, or by the addresses and ports (either
    direction; ``proto`` optional)."""
    if "flow_id" in args:
        return bool(flow.flow_id == args["flow_id"])
    entry = _flow_entry(flow)
    want = {k: args[k] for k in ("src_ip", "src_port", "dest_ip", "dest_port", "proto")
            if k in args}
    if "proto" in want and str(want.pop("proto")).upper() != entry["proto"].upper():
        return False
    reverse = {"src_ip": "dest_ip", "dest_ip": "src_ip", "src_port": "dest_port",
               "dest_port": "src_port"}
    forward = all(entry[k] == v for k, v in want.items())
    backward = all(entry[reverse[k]] == v for k, v in want.items())
    return forward or backward


def _selector_error(args: dict[str, Any]) -> str | None:
    if "flow_id" in args:
        return None if isinstance(args["flow_id"], int) else "flow_id is not an integer"
    if not {"src_ip", "dest_ip"} <= set(args):
        return "give flow_id, or src_ip and dest_ip (and src_port, dest_port, proto)"
    return None


class _RunTarget:
    """What every target answers alike: the rule set in use, the configuration, the
    capture and run modes."""

    def __init__(self, rules: RulesInUse, config: Config | None, capture: str,
                 runmode: str) -> None:
        self.rules = rules
        self._config = config
        self.capture_mode = CAPTURE_MODES.get(capture, capture)
        self.running_mode = runmode

    def ruleset_stats(self) -> list[dict[str, Any]]:
        return self.rules.stats()

    def failed_rules(self) -> list[dict[str, Any]]:
        return self.rules.failed()

    def conf_get(self, name: str) -> Any:
        return None if self._config is None else self._config.get(name)


class PipelineTarget(_RunTarget):
    """One pipeline in this process (pcap, NFQ, AF_PACKET with one worker). Every method
    runs between packets: the server is polled by the pipeline's own loop."""

    def __init__(self, pipeline: Pipeline, rules: RulesInUse, *, capture: str,
                 runmode: str, ifaces: list[str], config: Config | None = None) -> None:
        super().__init__(rules, config, capture, runmode)
        self.pipeline = pipeline
        self._ifaces = ifaces

    def reload(self) -> Pending:
        return _pending(self.pipeline.start_reload())

    def reload_times(self) -> list[dict[str, Any]]:
        return [{"id": 0, "last_reload": iso_time(self.pipeline.last_reload)}]

    def counters(self) -> dict[str, Any]:
        self.pipeline.collect_counters()
        return _counters(self.pipeline.stats.snapshot(), self.pipeline.uptime())

    def ifaces(self) -> list[str]:
        return list(self._ifaces)

    def iface_stat(self, name: str) -> dict[str, Any] | None:
        if name not in self._ifaces:
            return None
        self.pipeline.collect_counters()
        return _iface_stat(self.pipeline.stats.snapshot())

    def shutdown(self) -> None:
        self.pipeline.stop()

    def reopen_logs(self) -> None:
        request_reopen()  # each file reopens at its next write, as after SIGHUP

    def bypassed(self) -> list[dict[str, Any]]:
        return [_flow_entry(f) for f in self.pipeline.bypassed_flows()]

    def unbypass(self, args: dict[str, Any]) -> Reply:
        problem = _selector_error(args)
        if problem:
            return Reply(False, problem)
        found = [f for f in self.pipeline.bypassed_flows() if _matches(f, args)]
        if not found:
            return Reply(False, "no bypassed flow matches")
        removed = [_flow_entry(f) for f in found]
        for flow in found:
            self.pipeline.end_bypassed_flow(flow)
        return Reply(True, {"count": len(removed), "flows": removed})


class WorkersTarget(_RunTarget):
    """The parent of several AF_PACKET or pcap workers: reloads go to every worker (each
    rebuilds its engine), counters are the workers' merged snapshots. Bypassed flows live
    in the workers: ``bypass-list`` shows the kernel's table, ``bypass-remove`` is refused.
    A pcap run has no interface (``iface=""``)."""

    def __init__(self, hub: WorkerHub, rules: RulesInUse, *, iface: str,
                 kernel_flows: Callable[[], list[dict[str, Any]]],
                 reload_rules: Callable[[], RuleSet | None],
                 config: Config | None = None, capture: str = "af-packet",
                 runmode: str = "workers") -> None:
        super().__init__(rules, config, capture, runmode)
        self.hub = hub
        self._iface = iface
        self._kernel_flows = kernel_flows
        self._reload_rules = reload_rules
        hub.reload_listeners.append(self._reloaded)

    def reload(self) -> Pending:
        return _pending(self.hub.reload())

    def _reloaded(self, reload: RuleReload) -> None:
        if reload.error is None:  # the workers swapped: the parent reads the same files
            fresh = self._reload_rules()
            if fresh is not None:
                self.rules.ruleset = fresh
        else:
            print(f"error: rule reload failed, old rules kept: {reload.error}",
                  file=sys.stderr, flush=True)

    def reload_times(self) -> list[dict[str, Any]]:
        return [{"id": 0, "last_reload": iso_time(self.hub.last_reload)}]

    def counters(self) -> dict[str, Any]:
        return _counters(self.hub.counters(), time.time() - self.hub.started)

    def ifaces(self) -> list[str]:
        return [self._iface] if self._iface else []

    def iface_stat(self, name: str) -> dict[str, Any] | None:
        return _iface_stat(self.hub.counters()) if name and name == self._iface else None

    def shutdown(self) -> None:
        self.hub.stop()

    def reopen_logs(self) -> None:
        request_reopen()  # the parent's stats files
        self.hub.signal_all(signal.SIGHUP)  # every worker reopens its own

    def bypassed(self) -> list[dict[str, Any]]:
        return self._kernel_flows()

    def unbypass(self, args: dict[str, Any]) -> Reply:
        return Reply(False, "bypass-remove needs one worker (--runmode single): with "
                            "several, the flow lives in a worker process")


def kernel_flow_entry(src: bytes, dst: bytes, sport: int, dport: int, proto: int,
                      pkts: int, nbytes: int) -> dict[str, Any]:
    """A kernel bypass table entry as ``bypass-list`` shows it (workers' parent)."""
    return {"src_ip": str(ip_address(src)), "src_port": sport, "dest_ip": str(ip_address(dst)),
            "dest_port": dport, "proto": _PROTOS.get(proto, str(proto)), "bypass": "capture",
            "pkts": pkts, "bytes": nbytes}


def _pending(reload: RuleReload) -> Pending:
    pending = Pending()

    def done(r: RuleReload) -> None:
        if r.error is None:
            pending.complete(True, "done")
        else:
            pending.complete(False, f"rule reload failed, old rules kept: {r.error}")

    reload.add_done_callback(done)
    return pending


def _counters(snapshot: dict[str, int], uptime: float) -> dict[str, Any]:
    return {"uptime": max(0, int(uptime)), **nest(snapshot)}


def _iface_stat(snapshot: dict[str, int]) -> dict[str, Any]:
    """Suricata's LiveDeviceIfaceStat fields from the capture counters."""
    return {
        "pkts": snapshot.get("capture.kernel_packets", 0) or snapshot.get("decoder.pkts", 0),
        "drop": snapshot.get("capture.kernel_drops", 0),
        "invalid-checksums": sum(v for k, v in snapshot.items()
                                 if k.endswith("invalid_checksum")),
        "bypassed": snapshot.get("flow_bypassed.pkts", 0)
        + snapshot.get("flow_bypassed.local_pkts", 0),
    }
