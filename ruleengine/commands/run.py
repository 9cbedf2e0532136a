"""``ruleengine run``: Suricata's command line for pcap files, AF_PACKET and NFQUEUE.

    ruleengine run -r PCAP -S RULES [-S RULES ...] -l LOGDIR [-c suricata.yaml]
                   [--set key=value ...] [-k none|all] [--simulate-ips] [--runmode MODE] [-v]
    ruleengine run --af-packet[=IFACE] ...
    ruleengine run -q N [-q M ...] ...

Bad input never produces a traceback: configuration, rule and capture problems are
reported as one-line messages and the run goes on where Suricata's would.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from capture_backends.base import BackendUnavailable
from capture_backends.pcap_file import PcapError, PcapFileBackend
from ruleengine.config import Config, ConfigError
from ruleengine.detect.engine import DetectEngine
from ruleengine.diagnostics import render_text
from ruleengine.outputs.eve import EveWriter, OutputError
from ruleengine.outputs.progress import Progress
from ruleengine.outputs.stats import Stats, StatsLogWriter
from ruleengine.outputs.summary import render_summary
from ruleengine.pipeline import Pipeline, RunReport, mpm_choice
from ruleengine.reject import RejectSender
from ruleengine.rules.classification import classification
from ruleengine.rules.loader import RuleSet, load_rule_files
from ruleengine.settings import EngineSettings
from ruleengine.workers import run_workers

if TYPE_CHECKING:  # imported lazily at run time: only AF_PACKET runs need it
    from capture_backends.af_packet import AfPacketGroup

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="inspect a pcap file, an AF_PACKET interface or NFQUEUE queues",
        description="Run the detection engine, like `suricata -r/-i/-q`.",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "-r", dest="pcap", metavar="PCAP", help="read packets from a pcap/pcapng file"
    )
    source.add_argument(
        "--af-packet",
        "-i",
        dest="af_packet",
        metavar="IFACE",
        nargs="?",
        const="",
        help="capture on an interface with AF_PACKET (default: af-packet config)",
    )
    source.add_argument(
        "-q",
        dest="queues",
        metavar="N",
        type=int,
        action="append",
        help="inline IPS on NFQUEUE queue N (repeatable)",
    )
    parser.add_argument(
        "-S",
        dest="rules",
        metavar="RULES",
        action="append",
        default=[],
        help="rule file (exclusive: yaml rule-files are ignored); repeatable",
    )
    parser.add_argument(
        "-s",
        dest="extra_rules",
        metavar="RULES",
        action="append",
        default=[],
        help="rule file in addition to the yaml's rule-files; repeatable",
    )
    parser.add_argument(
        "-l",
        dest="logdir",
        metavar="LOGDIR",
        default=".",
        help="directory for eve.json (default: current directory)",
    )
    parser.add_argument("-c", dest="config", metavar="YAML", help="suricata.yaml")
    parser.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override a configuration value (repeatable)",
    )
    parser.add_argument(
        "-k",
        dest="checksum",
        choices=("none", "all"),
        help="checksum checks: none disables them, all forces them",
    )
    parser.add_argument(
        "--simulate-ips",
        action="store_true",
        help="apply drop/reject on a pcap run as an inline IPS would",
    )
    parser.add_argument("--runmode", metavar="MODE", help="single | autofp | workers")
    parser.add_argument(
        "--bpf-loader",
        choices=("libbpf", "bcc"),
        help="eBPF loader for AF_PACKET (default: af-packet.loader or libbpf)",
    )
    parser.add_argument(
        "--nfq-install-rules",
        action="store_true",
        help="install (and on exit remove) the iptables rules NFQ bypass needs",
    )
    parser.add_argument("-v", dest="verbose", action="count", default=0, help="more output")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_command)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def run_command(args: argparse.Namespace) -> int:
    if args.pcap is None and args.af_packet is None and not args.queues:
        _error("nothing to inspect: give -r PCAP, --af-packet IFACE or -q QUEUE")
        return EXIT_USAGE
    if args.runmode and args.runmode not in ("single", "autofp", "workers"):
        _warn(f"unknown runmode {args.runmode!r}; using the default")
    try:
        config, warnings = Config.load(args.config, args.overrides)
    except ConfigError as exc:
        _error(str(exc))
        return EXIT_USAGE
    for warning in warnings:
        _warn(warning)
    ruleset = _load_rules(args, config)
    if ruleset is None:
        return EXIT_USAGE
    logdir = Path(args.logdir)
    try:
        logdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _error(f"cannot create log directory {logdir}: {exc.strerror}")
        return EXIT_USAGE
    if args.pcap is not None:
        return _run_pcap(args, config, ruleset, logdir)
    if args.af_packet is not None:
        return _run_af_packet(args, config, ruleset, logdir)
    return _run_nfq(args, config, ruleset, logdir)


def _load_rules(args: argparse.Namespace, config: Config) -> RuleSet | None:
    paths = list(args.rules)
    if not paths:
        default_path = Path(str(config.get("default-rule-path", ".") or "."))
        for name in config.get("rule-files", []) or []:
            paths.append(str(default_path / str(name)))
    paths.extend(args.extra_rules)
    missing = [p for p in paths if not Path(p).exists()]
    for path in missing:
        _warn(f"rule file {path} not found")
    address_vars = config.get_section("vars.address-groups") or None
    port_vars = config.get_section("vars.port-groups") or None
    ruleset = load_rule_files(
        [p for p in paths if p not in missing],
        address_vars=_str_map(address_vars),
        port_vars=_str_map(port_vars),
    )
    for diag in ruleset.diagnostics:
        if diag.severity == "error" or args.verbose:
            print(render_text(diag), file=sys.stderr)
    print(
        f"{ruleset.files} rule files processed. {ruleset.loaded} rules successfully loaded, "
        f"{ruleset.failed} rules failed, {ruleset.skipped} rules skipped",
        file=sys.stderr,
    )
    return ruleset


def _str_map(section: Any) -> dict[str, str] | None:
    if not isinstance(section, dict):
        return None
    return {str(k): str(v) for k, v in section.items()}


def _settings(
    args: argparse.Namespace, config: Config, *, ips: bool, offline: bool
) -> EngineSettings:
    settings, warnings = EngineSettings.from_config(config, ips=ips, k_option=args.checksum,
                                                    offline=offline)
    for warning in warnings:
        _warn(warning)
    return settings


def _detect_engine(settings: EngineSettings, ruleset: RuleSet) -> DetectEngine:
    return DetectEngine(ruleset.rules, mpm=mpm_choice(settings.mpm),
                        action_order=settings.action_order)


def _make_pipeline(
    settings: EngineSettings, detect: DetectEngine, logdir: Path, *, live: bool,
    append: bool = False, reject_mark: int = 0,
) -> tuple[Pipeline, EveWriter]:
    eve = EveWriter(logdir / "eve.json", append=append, type_options=settings.eve_options)
    pipeline = Pipeline(
        settings,
        detect,
        eve=eve,
        stats=Stats(),
        classify=classification,
        reject=RejectSender(mark=reject_mark) if live else None,
    )
    return pipeline, eve


def _print_summary(
    report: RunReport, ruleset: RuleSet, detect: DetectEngine, stats: Stats | None = None
) -> None:
    print(
        render_summary(
            report=report,
            ruleset=ruleset,
            skipped=detect.skipped,
            counters=stats.snapshot() if stats else {},
        ),
        file=sys.stderr,
    )


def _run_pcap(args: argparse.Namespace, config: Config, ruleset: RuleSet, logdir: Path) -> int:
    try:
        backend = PcapFileBackend(args.pcap)
    except (OSError, ValueError, PcapError) as exc:
        _error(f"{exc}")
        return EXIT_FAILURE
    settings = _settings(args, config, ips=args.simulate_ips, offline=True)
    pipeline, eve = _make_pipeline(settings, _detect_engine(settings, ruleset), logdir,
                                   live=False)
    progress = Progress(total=getattr(backend, "size_bytes", 0), enabled=not args.no_progress)
    try:
        with _signals_stop(pipeline):
            report = pipeline.run(
                backend, on_packet=lambda: progress.update(getattr(backend, "position", 0))
            )
    finally:
        progress.close()
        backend.close()
        eve.close()
    for warning in getattr(backend, "warnings", []):
        _warn(str(warning))
    _print_summary(report, ruleset, pipeline.detect, pipeline.stats)
    return EXIT_OK


def _run_af_packet(args: argparse.Namespace, config: Config, ruleset: RuleSet, logdir: Path) -> int:
    from capture_backends.af_packet import AfPacketConfig, AfPacketGroup

    section = config.get("af-packet") or []
    iface = args.af_packet or _first_interface(section)
    if not iface:
        _error("--af-packet needs an interface (argument or af-packet: in the yaml)")
        return EXIT_USAGE
    afp_config, warnings = AfPacketConfig.from_yaml(
        section if isinstance(section, list) else [], iface
    )
    if args.bpf_loader:
        afp_config = afp_config.with_loader(args.bpf_loader)
    for warning in warnings:
        _warn(warning)
    settings = _settings(args, config, ips=False, offline=False)
    # The kernel map key must agree with the flow table on whether VLAN ids count.
    afp_config = afp_config.with_vlan_tracking(settings.use_vlan)
    try:
        group = AfPacketGroup(afp_config)
    except BackendUnavailable as exc:
        _error(str(exc))
        return EXIT_FAILURE
    if args.checksum is None and not _afp_checksum_checks(section, iface):
        settings = dataclasses.replace(settings, checksum_validation=False)
    stats_outputs = _StatsOutputs(config, logdir)
    # Built once here: forked workers inherit it instead of each compiling the prefilter.
    detect = _detect_engine(settings, ruleset)
    try:
        report, counters = run_workers(
            threads=afp_config.threads,
            open_backend=group.open_worker,
            make_pipeline=lambda: _make_pipeline(settings, detect, logdir, live=True,
                                                 append=True)[0],
            write_stats=stats_outputs.write,
            housekeeping=_orphan_sweep(group, settings),
        )
    except (BackendUnavailable, OutputError) as exc:  # a worker could not start
        _error(str(exc))
        return EXIT_FAILURE
    finally:
        group.close()
        stats_outputs.close()
    stats = Stats()
    stats.merge(counters)
    _print_summary(report, ruleset, detect, stats)
    return EXIT_OK


def _orphan_sweep(group: AfPacketGroup, settings: EngineSettings
                  ) -> Callable[[], dict[str, int]]:
    """Parent housekeeping with several workers: delete kernel bypass entries that no
    worker looks after any more (their worker died). A live worker deletes its entries
    within its ``bypassed`` timeout plus two flow-manager passes of the last packet, so an
    entry idle for twice the longest such timeout (plus margin) is an orphan."""
    timeouts = settings.timeouts  # the kernel tables hold TCP and UDP flows only
    longest = max(timeouts.tcp.bypassed, timeouts.udp.bypassed)
    idle = 2 * longest + 2 * settings.flow_manager_interval + 1

    def sweep() -> dict[str, int]:
        try:
            expired = group.expire_idle(idle)
        except OSError:
            return {"flow_bypassed.orphans_failed": 1}
        return {"flow_bypassed.orphans_expired": len(expired)}

    return sweep


class _StatsOutputs:
    """Live capture stats: an EVE stats event and a ``stats.log`` block (when the ``stats``
    output is enabled) at every stats interval and at the end, from the counters of all
    workers (``run_workers`` merges them). Files are opened on first use, i.e. in the
    process that writes (after the workers were forked); errors are one-line warnings.
    ``eve``: a single-process run's own writer (one writer per file: no interleaved lines),
    left open by ``close()``."""

    def __init__(self, config: Config, logdir: Path, eve: EveWriter | None = None) -> None:
        self._logdir = logdir
        self._options = config.stats_log()
        self._opened = False
        self._eve: EveWriter | None = eve
        self._own_eve = eve is None
        self._log: StatsLogWriter | None = None

    def _open(self) -> None:
        self._opened = True
        if self._own_eve:
            try:
                self._eve = EveWriter(self._logdir / "eve.json", append=True)
            except OutputError as exc:
                _warn(str(exc))
        if self._options.enabled:
            path = self._logdir / self._options.filename
            try:
                self._log = StatsLogWriter(path, append=self._options.append,
                                           null_values=self._options.null_values)
            except OSError as exc:
                _warn(f"stats.log: cannot open {path}: {exc.strerror}")

    def write(self, now: float, uptime: float, counters: dict[str, int]) -> None:
        if not self._opened:
            self._open()
        if self._eve is not None:
            self._eve.stats(now, uptime, counters)
            self._eve.flush()
        if self._log is not None:
            self._log.write(counters, ts=now, uptime=uptime)

    def close(self) -> None:
        if self._eve is not None and self._own_eve:
            self._eve.close()
        if self._log is not None:
            self._log.close()


def _afp_checksum_checks(section: Any, iface: str) -> bool:
    """af-packet ``checksum-checks`` for ``iface`` (its entry, else ``interface: default``).

    Suricata's default ``kernel`` trusts the kernel: frames the host itself sends, and
    frames a veth or an offloading NIC hands over, carry checksums that are only filled in
    later (TP_STATUS_CSUMNOTREADY), so validating them would mark a whole TCP session
    invalid. Without the per-frame status we follow ``kernel``/``no``/``auto`` by not
    validating; only ``yes`` validates. ``-k all`` still forces validation."""
    entries = [e for e in section if isinstance(e, dict)] if isinstance(section, list) else []
    own = next((e for e in entries if str(e.get("interface")) == iface), {})
    default = next((e for e in entries if str(e.get("interface")) == "default"), {})
    value = own.get("checksum-checks", default.get("checksum-checks", "kernel"))
    return str(value).strip().lower() in ("yes", "true", "on", "1")


def _first_interface(section: Any) -> str | None:
    if isinstance(section, list):
        for item in section:
            if isinstance(item, dict) and item.get("interface") not in (None, "default"):
                return str(item["interface"])
    return None


def _run_nfq(args: argparse.Namespace, config: Config, ruleset: RuleSet, logdir: Path) -> int:
    from capture_backends.nfqueue import NfqBackend, NfqConfig, NfqConfigError

    try:
        nfq_config, warnings = NfqConfig.from_yaml(config.get_section("nfq") or {}, args.queues)
    except NfqConfigError as exc:
        _error(str(exc))
        return EXIT_USAGE
    if args.nfq_install_rules:
        nfq_config = nfq_config.with_install_rules(True)
    for warning in warnings:
        _warn(warning)
    try:
        backend = NfqBackend(nfq_config)
    except BackendUnavailable as exc:
        _error(str(exc))
        return EXIT_FAILURE
    settings = _settings(args, config, ips=True, offline=False)
    pipeline, eve = _make_pipeline(settings, _detect_engine(settings, ruleset), logdir,
                                   live=True,
                                   reject_mark=backend.inject_mark)
    # stats.log too (Suricata writes it in every live run mode), EVE stats as before
    stats_outputs = _StatsOutputs(config, logdir, eve=eve)
    pipeline.stats_sink = stats_outputs.write
    try:
        with _signals_stop(pipeline):
            report = pipeline.run(backend)
    finally:
        backend.close()
        stats_outputs.close()
        eve.close()
    _print_summary(report, ruleset, pipeline.detect, pipeline.stats)
    return EXIT_OK


class _signals_stop:
    """SIGINT/SIGTERM stop the pipeline cleanly."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: object) -> None:
        # Only a flag: live backends yield idle ticks, so the loop notices within a poll period
        # and every pending packet still gets its verdict before close().
        self._pipeline.stop()

    def __enter__(self) -> _signals_stop:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
