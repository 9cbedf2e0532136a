"""``ruleengine run``: Suricata's command line for pcap files, AF_PACKET and NFQUEUE.

    ruleengine run -r PCAP -S RULES [-S RULES ...] -l LOGDIR [-c suricata.yaml]
                   [--set key=value ...] [-k none|all] [--simulate-ips] [--runmode MODE] [-v]
    ruleengine run --af-packet[=IFACE] ...
    ruleengine run -q N [-q M ...] ...
    ruleengine run -T [-c suricata.yaml] [-S RULES]     # test the configuration and rules
    ruleengine run --build-info | --list-keywords[=all|csv|KW] | --list-app-layer-protos

Bad input never produces a traceback: configuration, rule and capture problems are
reported as one-line messages and the run goes on where Suricata's would, with one
deliberate exception: a ``-S`` file that is missing, unreadable or loads no rule stops the
start (exit 1; Suricata only warns "rule files specified, but no rules were loaded"), while
``-S /dev/null`` or an empty file runs without rules on purpose.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from capture_backends.base import BackendUnavailable
from capture_backends.pcap_file import PcapError, PcapFileBackend
from ruleengine.bypass_state import BypassStateFile, state_path
from ruleengine.commands import daemon, final_signals, info
from ruleengine.commands.control import (
    PipelineTarget,
    RulesInUse,
    WorkersTarget,
    kernel_flow_entry,
    open_server,
    wanted_path,
)
from ruleengine.config import Config, ConfigError
from ruleengine.control.server import CommandServer
from ruleengine.detect.engine import DetectEngine
from ruleengine.detect.prefilter import compile_in_child
from ruleengine.diagnostics import DEFAULT_PER_KIND, render_omitted, render_text, summarize
from ruleengine.outputs.config import fast_log_settings, stats_log_settings
from ruleengine.outputs.eve import EveWriter, OutputError
from ruleengine.outputs.fastlog import FastLogWriter
from ruleengine.outputs.metrics import MetricsError, MetricsExporter
from ruleengine.outputs.progress import Progress
from ruleengine.outputs.sinks import open_sink, request_reopen
from ruleengine.outputs.stats import Stats, StatsLogWriter
from ruleengine.outputs.summary import render_summary
from ruleengine.pipeline import Pipeline, ReloadError, RuleReload, RunReport, mpm_choice
from ruleengine.reject import RejectSender
from ruleengine.rules.classification import classification
from ruleengine.rules.loader import RuleSet, gc_paused, load_rule_files
from ruleengine.settings import EngineSettings
from ruleengine.workers import WorkerHub, run_workers, worker_index

if TYPE_CHECKING:  # imported lazily at run time: only AF_PACKET runs need it
    from capture_backends.af_packet import AfPacketConfig, AfPacketGroup
    from ruleengine.commands.bypass_lists_live import LiveLists
    from ruleengine.pcap_workers import Scheduler
# Also imported where used: the live bypass lists (AF_PACKET, NFQ) and the pcap workers
# (autofp/workers runmodes); a single-threaded pcap run does not compile them.

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
RUNMODES = ("single", "autofp", "workers")
TEST_MODE_OK = "Configuration provided was successfully loaded. Exiting."


# The command line as data: (flags, argparse keywords) per option, in --help order.
_Option = tuple[tuple[str, ...], dict[str, Any]]
# where the packets come from: one of them
_SOURCE_OPTIONS: tuple[_Option, ...] = (
    (("-r",), {"dest": "pcap", "metavar": "PCAP",
               "help": "read packets from a pcap/pcapng file"}),
    (("--af-packet", "-i"), {
        "dest": "af_packet", "metavar": "IFACE", "nargs": "?", "const": "",
        "help": "capture on an interface with AF_PACKET (default: af-packet config)"}),
    (("-q",), {"dest": "queues", "metavar": "N", "type": int, "action": "append",
               "help": "inline IPS on NFQUEUE queue N (repeatable)"}),
)
# the configuration of the engine: run, explain and hunt alike
CONFIG_OPTIONS: tuple[_Option, ...] = (
    (("-c",), {"dest": "config", "metavar": "YAML", "help": "suricata.yaml"}),
    (("--set",), {"dest": "overrides", "metavar": "KEY=VALUE", "action": "append",
                  "default": [], "help": "override a configuration value (repeatable)"}),
    (("-k",), {"dest": "checksum", "choices": ("none", "all"),
               "help": "checksum checks: none disables them, all forces them"}),
)
_OPTIONS: tuple[_Option, ...] = (
    (("-S",), {"dest": "rules", "metavar": "RULES", "action": "append", "default": [],
               "help": "rule file (exclusive: yaml rule-files are ignored); repeatable"}),
    (("-s",), {"dest": "extra_rules", "metavar": "RULES", "action": "append", "default": [],
               "help": "rule file in addition to the yaml's rule-files; repeatable"}),
    (("-l",), {"dest": "logdir", "metavar": "LOGDIR", "default": ".",
               "help": "directory for eve.json (default: current directory)"}),
    *CONFIG_OPTIONS,
    (("--simulate-ips",), {"action": "store_true",
                           "help": "apply drop/reject on a pcap run as an inline IPS would"}),
    (("--runmode",), {
        "metavar": "MODE",
        "help": "single | autofp | workers. AF_PACKET: single runs one worker, workers runs "
        "the af-packet threads as forked workers (autofp runs as workers, with a warning). "
        "pcap files (-r): autofp and workers read the file here and hash flows to N "
        "forked workers (N = CPUs x threading.detect-thread-ratio). NFQ (-q) always "
        "runs in one process: a warning says so"}),
    (("-T",), {"dest": "test_mode", "action": "store_true",
               "help": "test mode: load the configuration and rules, report and exit "
               "(0 ok, 1 on any rule file or rule error); needs no -r/-i/-q"}),
    (("--engine-analysis",), {
        "action": "store_true",
        "help": "write Suricata's rules_analysis.txt, rules_fast_pattern.txt and rules.json "
        "for the loaded rules to the log directory, then exit"}),
    (("--init-errors-fatal",), {
        "action": "store_true",
        "help": "refuse to start when a rule file is missing or a rule fails to load "
        "(also engine.init-failure-fatal: yes)"}),
    (("--bpf-loader",), {
        "choices": ("libbpf", "bcc"),
        "help": "eBPF loader for AF_PACKET (default: af-packet.loader or libbpf)"}),
    (("--nfq-install-rules",), {
        "action": "store_true",
        "help": "install (and on exit remove) the iptables rules NFQ bypass needs"}),
)
# after the daemon options
_LATE_OPTIONS: tuple[_Option, ...] = (
    (("--unix-socket",), {
        "dest": "unix_socket", "metavar": "PATH", "nargs": "?", "const": "",
        "help": "open Suricata's unix command socket (default: unix-command.filename, else "
        "/var/run/suricata/suricata-command.socket); also unix-command.enabled: yes"}),
    (("--metrics-port",), {
        "type": int, "metavar": "PORT",
        "help": "serve Prometheus metrics on http://ADDR:PORT/metrics (prometheus_client)"}),
    (("--metrics-address",), {"default": "127.0.0.1", "metavar": "ADDR",
                              "help": "address of the metrics endpoint (default 127.0.0.1)"}),
    (("-v",), {"dest": "verbose", "action": "count", "default": 0, "help": "more output"}),
    (("--no-progress",), {"action": "store_true", "help": "no progress bar"}),
)


def add_options(parser: Any, options: tuple[_Option, ...]) -> None:
    for flags, keywords in options:
        parser.add_argument(*flags, **keywords)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="inspect a pcap file, an AF_PACKET interface or NFQUEUE queues",
        description="Run the detection engine, like `suricata -r/-i/-q`.",
    )
    add_options(parser.add_mutually_exclusive_group(), _SOURCE_OPTIONS)
    add_options(parser, _OPTIONS)
    daemon.add_arguments(parser)
    add_options(parser, _LATE_OPTIONS)
    info.add_arguments(parser)
    parser.set_defaults(func=run_command)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def run_command(args: argparse.Namespace) -> int:
    requested = info.run_requested(args)
    if requested is not None:
        return requested
    if args.runmode is not None and args.runmode not in RUNMODES:
        _error(f"unknown runmode {args.runmode!r}: choose one of {', '.join(RUNMODES)}")
        return EXIT_FAILURE
    if args.test_mode:
        return _test_configuration(args)
    if args.engine_analysis:
        return _engine_analysis(args)
    if args.pcap is None and args.af_packet is None and not args.queues:
        _error("nothing to inspect: give -r PCAP, --af-packet IFACE or -q QUEUE")
        return EXIT_USAGE
    config = _load_config(args)
    if config is None:
        return EXIT_USAGE
    try:
        service = daemon.Service.from_args(args, config)
    except daemon.DaemonError as exc:
        _error(str(exc))
        return EXIT_FAILURE
    # the rules live as long as the run (a reload unfreezes): frozen, no collection walks them
    with gc_paused(freeze=True):
        ruleset = _load_rules(args, config, strict=_init_errors_fatal(args, config))
    if ruleset is None:
        return EXIT_FAILURE
    logdir = Path(args.logdir).absolute()  # -D runs in "/"
    try:
        logdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _error(f"cannot create log directory {logdir}: {exc.strerror}")
        return EXIT_USAGE
    if args.metrics_port is not None and not 0 <= args.metrics_port <= 65535:
        _error(f"--metrics-port {args.metrics_port}: not a port number")
        return EXIT_USAGE
    if service.detach:
        if args.pcap is not None:
            args.pcap = str(Path(args.pcap).absolute())
        parent_code = service.daemonize()
        if parent_code is not None:  # the parent: the daemon is ready (0) or failed
            return parent_code
    args.service = service
    with daemon.running(service):
        try:
            if args.pcap is not None:
                return _run_pcap(args, config, ruleset, logdir)
            if args.af_packet is not None:
                return _run_af_packet(args, config, ruleset, logdir)
            return _run_nfq(args, config, ruleset, logdir)
        except daemon.DaemonError as exc:
            _error(str(exc))
            return EXIT_FAILURE
        finally:
            final_signals.end_deferral()  # SIGINT/SIGTERM noted during the final flush: said


def _start_metrics(args: argparse.Namespace,
                   source: Callable[[], dict[str, int]] | None = None) -> MetricsExporter | None:
    """The Prometheus endpoint when ``--metrics-port`` is given; raises MetricsError."""
    if args.metrics_port is None:
        return None
    exporter = MetricsExporter(args.metrics_port, args.metrics_address, source=source)
    _notice(f"metrics on http://{args.metrics_address}:{exporter.port}/metrics")
    return exporter


def _test_configuration(args: argparse.Namespace) -> int:
    """``-T``: what a start would load (configuration, rules, the detection engine), then
    Suricata's closing line. Opens no capture and writes no log. Any rule file or rule
    error fails the test (exit 1), as ``-T`` makes init errors fatal."""
    config = _load_config(args)
    if config is None:
        return EXIT_FAILURE
    ruleset = _load_rules(args, config, strict=True)
    if ruleset is None:
        return EXIT_FAILURE
    settings = _settings(args, config, ips=args.simulate_ips or bool(args.queues),
                         offline=args.af_packet is None and not args.queues)
    _detect_engine(settings, ruleset)  # builds the prefilters as a start would
    if settings.eve_sink.error is not None:  # a start would refuse it (no socket is opened)
        _error(settings.eve_sink.error)
        return EXIT_FAILURE
    print(TEST_MODE_OK)
    return EXIT_OK


def _load_config(args: argparse.Namespace) -> Config | None:
    """``-c`` plus ``--set``, its warnings printed; None (reported) when it cannot be read."""
    try:
        config, warnings = Config.load(args.config, args.overrides)
    except ConfigError as exc:
        _error(str(exc))
        return None
    for warning in warnings:
        _warn(warning)
    return config


def _engine_analysis(args: argparse.Namespace) -> int:
    """``--engine-analysis``: load the configuration and rules, build the detection engine
    and write its analysis reports to the log directory; exit without capturing, as
    Suricata does. Invalid rules are reported in the analysis (not fatal)."""
    from ruleengine.commands.engine_analysis import write_reports

    config = _load_config(args)
    if config is None:
        return EXIT_FAILURE
    ruleset = _load_rules(args, config, strict=_init_errors_fatal(args, config))
    if ruleset is None:
        return EXIT_FAILURE
    settings = _settings(args, config, ips=args.simulate_ips or bool(args.queues),
                         offline=args.af_packet is None and not args.queues)
    detect = _detect_engine(settings, ruleset)
    logdir = Path(args.logdir)
    failures = [d for d in ruleset.errors if d.code != "file-error" and d.source_line]
    try:
        logdir.mkdir(parents=True, exist_ok=True)
        prefix = str(config.get("engine-analysis.file-prefix", "") or "")
        paths = write_reports(logdir, detect, failures, prefix=prefix)
    except OSError as exc:
        _error(f"engine analysis: cannot write to {logdir}: {exc.strerror}")
        return EXIT_FAILURE
    print(f"Engine-Analysis for rules printed to file - {paths[0]}", file=sys.stderr)
    print(f"Engine-Analysis for fast_pattern printed to file - {paths[1]}", file=sys.stderr)
    print(f"Engine-Analysis rules as JSON printed to file - {paths[2]}", file=sys.stderr)
    return EXIT_OK


def _init_errors_fatal(args: argparse.Namespace, config: Config) -> bool:
    return bool(args.init_errors_fatal) or config.get_bool("engine.init-failure-fatal", False)


@dataclass(frozen=True)
class _RuleSource:
    path: str
    origin: str  # "-S", "-s" or "rule-files" (the yaml's)


def _rule_sources(args: argparse.Namespace, config: Config) -> list[_RuleSource]:
    sources = [_RuleSource(p, "-S") for p in args.rules]
    if not sources:
        default_path = Path(str(config.get("default-rule-path", ".") or "."))
        sources.extend(_RuleSource(str(default_path / str(name)), "rule-files")
                       for name in config.get("rule-files", []) or [])
    sources.extend(_RuleSource(p, "-s") for p in args.extra_rules)
    return sources


def _load_rules(args: argparse.Namespace, config: Config, *, strict: bool) -> RuleSet | None:
    """Load every rule file, print the diagnostics and Suricata's summary line. None (the
    reason printed) when the run must not start: a ``-S`` file is missing, cannot be read
    or none of its rules loaded (Suricata refuses to start), or, with ``strict`` (``-T``,
    ``--init-errors-fatal``), any rule file or rule failed. ``-S /dev/null`` or an empty
    file loads no rule on purpose: the run goes on, with a notice."""
    sources = _rule_sources(args, config)
    missing = [s for s in sources if not os.path.lexists(s.path)]
    refused = [f"rule file {s.path} ({s.origin}): no such file or directory"
               for s in missing if s.origin == "-S" or strict]
    for source in missing:
        if source.origin != "-S" and not strict:
            _warn(f"rule file {source.path} not found")
    address_vars = config.get_section("vars.address-groups") or None
    port_vars = config.get_section("vars.port-groups") or None
    ruleset = load_rule_files(
        [s.path for s in sources if s not in missing],
        address_vars=_str_map(address_vars),
        port_vars=_str_map(port_vars),
    )
    _print_diagnostics(ruleset, verbose=bool(args.verbose))
    print(ruleset.summary(), file=sys.stderr)
    failed_files = _failed_exclusive_files(sources, missing, ruleset)
    refused.extend(failed_files)
    if strict and ruleset.errors and not failed_files:
        refused.append(f"{_plural(len(ruleset.errors), 'rule error')} and init errors are "
                       "fatal (-T, --init-errors-fatal, engine.init-failure-fatal)")
    if refused:
        for reason in refused:
            _error(f"{reason}; not starting")
        return None
    if ruleset.loaded == 0:
        _notice("0 rules loaded: the engine runs without signatures (no alerts)")
    return ruleset


def _print_diagnostics(ruleset: RuleSet, *, verbose: bool) -> None:
    """Rule errors (and warnings with -v) on stderr, the first few of each kind and a count
    of the rest (``ruleengine lint --format json`` lists them all)."""
    wanted = [d for d in ruleset.diagnostics if d.severity == "error" or verbose]
    shown, omitted = summarize(wanted, DEFAULT_PER_KIND)
    for diag in shown:
        print(render_text(diag), file=sys.stderr)
    for line in render_omitted(omitted, DEFAULT_PER_KIND,
                               how_to_see="'ruleengine lint --format json' lists all"):
        print(line, file=sys.stderr)


def _failed_exclusive_files(sources: list[_RuleSource], missing: list[_RuleSource],
                            ruleset: RuleSet) -> list[str]:
    """A ``-S`` file (or directory) that could not be read, or whose every rule failed."""
    reasons: list[str] = []
    for source in sources:
        if source.origin != "-S" or source in missing:
            continue
        name = str(Path(source.path))
        inside = (name, name.rstrip("/") + "/")

        def ours(file: str, inside: tuple[str, str] = inside) -> bool:
            return file == inside[0] or file.startswith(inside[1])

        errors = [d for d in ruleset.errors if ours(d.file)]
        if any(d.code == "file-error" for d in errors):
            reasons.append(f"rule file {source.path} (-S) could not be loaded")
        elif errors and not any(ours(r.span.file) for r in ruleset.rules):
            reasons.append(f"no rule of {source.path} (-S) loaded "
                           f"({_plural(len(errors), 'error')})")
    return reasons


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _notice(message: str) -> None:
    print(f"notice: {message}", file=sys.stderr)


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
    with gc_paused():  # long-lived objects only: full collections would rescan them
        return DetectEngine(ruleset.rules, mpm=mpm_choice(settings.mpm),
                            action_order=settings.action_order)


def _make_pipeline(
    settings: EngineSettings, detect: DetectEngine, logdir: Path, *, live: bool,
    append: bool = False, reject_mark: int = 0, fast: FastLogWriter | None = None,
) -> tuple[Pipeline, EveWriter]:
    eve = _open_eve(settings, logdir, append=append)
    pipeline = Pipeline(
        settings,
        detect,
        eve=eve,
        stats=Stats(),
        classify=classification,
        reject=RejectSender(mark=reject_mark) if live else None,
        fast=fast,
    )
    return pipeline, eve


def _open_eve(settings: EngineSettings, logdir: Path, *, append: bool) -> EveWriter:
    """The EVE writer on eve-log's transport (``filetype``; a relative ``filename`` is in
    the log directory). Sockets and redis that cannot be reached yet are a warning (the
    sink keeps trying, as Suricata's does); a regular file that cannot be opened or a bad
    setting raises OutputError. Live runs never wait for a slow socket reader."""
    spec = settings.eve_sink
    sink = open_sink(spec, logdir, append=append, blocking=settings.offline)
    unreachable = getattr(sink, "connect_error", None)
    if unreachable:
        _warn(f"eve-log: {unreachable}")
    # a transport failing later (disk full, directory removed, reader gone) is said once
    # when it starts and once when writing resumes; the counts are in stats.log
    sink.stats.notify = lambda message: _warn(f"eve-log: {message}")
    return EveWriter(spec.path(logdir), append=append, type_options=settings.eve_options,
                     sink=sink, prefix=settings.eve_prefix, host=settings.eve_host,
                     types=settings.eve_types)


def _close_run(control: CommandServer | None, backend: Any, stats_outputs: _StatsOutputs,
               eve: EveWriter, *writers: MetricsExporter | FastLogWriter | None) -> None:
    """Close what a single-process run opened: the socket first (no command runs on a
    closed engine), then the capture, the outputs, and the optional ``writers`` (None: not
    opened)."""
    if control is not None:
        control.close()
    backend.close()
    stats_outputs.close()
    _close_eve(eve)
    for writer in writers:
        if writer is not None:
            writer.close()


def _close_eve(eve: EveWriter) -> None:
    """Close the writer and say what its transport lost (Suricata: "N events were dropped
    due to slow or disconnected socket", "There were N output errors to ...")."""
    eve.close()
    stats = eve.sink.stats
    if stats.lost or stats.errors:
        first = f"; first error: {stats.last_error}" if stats.last_error else ""
        _warn(f"eve-log ({eve.sink.description}): {_plural(stats.lost, 'event')} lost, "
              f"{_plural(stats.errors, 'output error')}{first}")


def _open_fast_log(config: Config, logdir: Path, *, append: bool | None = None
                   ) -> FastLogWriter | None:
    """The ``fast`` output's writer when enabled (a relative filename is in the log
    directory, an absolute one is used as is, as Suricata does). Raises OutputError."""
    options = fast_log_settings(config.get_list("outputs"))
    if not options.enabled:
        return None
    return FastLogWriter(logdir / options.filename,
                         append=options.append if append is None else append)


def _runmode(args: argparse.Namespace, config: Config) -> str | None:
    """``--runmode``, else the yaml's ``runmode`` when valid (a bad one was warned about)."""
    if args.runmode is not None:
        return str(args.runmode)
    return config.runmode if config.runmode in RUNMODES else None


def _warn_one_process(runmode: str | None, what: str) -> None:
    if runmode in ("autofp", "workers"):
        _warn(f"runmode {runmode} is not honoured for {what}: the run is single-threaded "
              "(one process)")


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


def _reload_ruleset(args: argparse.Namespace) -> RuleSet:
    """The rule files read again for a live reload (SIGUSR2, ``reload-rules``): the same
    ``-S``/``-s`` files, the yaml's ``rule-files`` and address/port vars read afresh. Any
    problem (a missing or unreadable file, an invalid rule) raises ReloadError: the running
    engine stays, as a start with ``--init-errors-fatal`` would refuse these rules."""
    try:
        config, _ = Config.load(args.config, args.overrides)
    except ConfigError as exc:
        raise ReloadError(f"configuration: {exc}") from None
    sources = _rule_sources(args, config)
    missing = [s for s in sources if not os.path.lexists(s.path)]
    ruleset = load_rule_files(
        [s.path for s in sources if s not in missing],
        address_vars=_str_map(config.get_section("vars.address-groups") or None),
        port_vars=_str_map(config.get_section("vars.port-groups") or None),
    )
    reasons = [f"rule file {s.path} ({s.origin}): no such file or directory" for s in missing]
    reasons.extend(_failed_exclusive_files(sources, missing, ruleset))
    errors = ruleset.errors
    for diag in errors:
        print(render_text(diag), file=sys.stderr)
    if errors:
        first = errors[0]
        more = f" (and {_plural(len(errors) - 1, 'more error')})" if len(errors) > 1 else ""
        reasons.append(f"{first.file}:{first.line}: {first.message}{more}")
    if reasons:
        raise ReloadError("; ".join(reasons))
    return ruleset


def _enable_reload(pipeline: Pipeline, args: argparse.Namespace, settings: EngineSettings,
                   rules: RulesInUse) -> None:
    """Live rule reload for this pipeline: the new engine is built from the run's rule
    files with the run's settings; Suricata's log lines say how it went."""

    def rebuild() -> DetectEngine:
        # a frozen engine (pcap run) is never collected once replaced: back to normal
        gc.unfreeze()
        ruleset = _reload_ruleset(args)
        with compile_in_child():  # hyperscan would hold the GIL: the packet loop stalls
            engine = _detect_engine(settings, ruleset)
        rules.pending = ruleset
        return engine

    def report(reload: RuleReload) -> None:
        rules.swapped(reload)
        if reload.error is None:
            took = reload.finished - reload.started
            _notice(f"rule reload complete ({took:.2f}s): {rules.ruleset.summary()}")
        else:
            _error(f"rule reload failed, old rules kept: {reload.error}")

    pipeline.rebuild = rebuild
    pipeline.reload_listeners.append(report)


def _open_control(args: argparse.Namespace, config: Config, pipeline: Pipeline,
                  rules: RulesInUse, *, capture: str, ifaces: list[str]) -> CommandServer | None:
    """The unix socket for a run in this process, polled by the pipeline's loop."""
    path = wanted_path(args, config)
    if path is None:
        return None
    target = PipelineTarget(pipeline, rules, capture=capture, runmode="single", ifaces=ifaces,
                            config=config)
    server = open_server(path, target, _warn)
    if server is not None:
        pipeline.control = server.poll
    return server


def _run_pcap(args: argparse.Namespace, config: Config, ruleset: RuleSet, logdir: Path) -> int:
    try:
        backend = PcapFileBackend(args.pcap)
    except (OSError, ValueError, PcapError) as exc:
        _error(f"{exc}")
        return EXIT_FAILURE
    runmode = _runmode(args, config)
    if runmode in ("autofp", "workers"):
        from ruleengine.pcap_workers import worker_count

        threads = worker_count(config.get_float("threading.detect-thread-ratio", 1.0))
        if threads > 1:
            return _run_pcap_workers(args, config, ruleset, logdir, backend, threads,
                                     runmode)
    settings = _settings(args, config, ips=args.simulate_ips, offline=True)
    try:
        fast = _open_fast_log(config, logdir)
        # the engine lives as long as the run: frozen, the collections of the packet loop
        # no longer walk its ~1.5 M objects (ET HTTP: 0.6 s CPU); a reload unfreezes first
        with gc_paused(freeze=True):
            detect = _detect_engine(settings, ruleset)
        pipeline, eve = _make_pipeline(settings, detect, logdir, live=False, fast=fast)
    except OutputError as exc:
        backend.close()
        _error(str(exc))
        return EXIT_FAILURE
    pipeline.bypass_lists = lists = _pcap_bypass_lists(config)
    try:
        metrics = _start_metrics(args, source=pipeline.stats.snapshot)
    except MetricsError as exc:
        backend.close()
        _close_eve(eve)
        _error(str(exc))
        return EXIT_FAILURE
    # stats.log too: the last stats of the run (EVE's final stats event as before)
    stats_outputs = _StatsOutputs(config, logdir, settings, eve=eve)
    pipeline.stats_sink = stats_outputs.write
    rules = RulesInUse(ruleset)
    _enable_reload(pipeline, args, settings, rules)
    control = _open_control(args, config, pipeline, rules, capture="pcap", ifaces=[])
    progress = Progress(total=getattr(backend, "size_bytes", 0), enabled=not args.no_progress)
    try:
        _service_ready(args)
        with _signals_stop(pipeline):
            report = pipeline.run(
                backend, on_packet=lambda: progress.update(getattr(backend, "position", 0))
            )
    finally:
        progress.close()
        if lists is not None:
            lists.close()
        _close_run(control, backend, stats_outputs, eve, metrics, fast)
    for warning in getattr(backend, "warnings", []):
        _warn(str(warning))
    _print_summary(report, rules.ruleset, pipeline.detect, pipeline.stats)
    return EXIT_OK


def _autofp_scheduler(config: Config) -> Scheduler:
    """``autofp-scheduler``: Suricata's ``hash`` (flow 5-tuple, the default) or ``ippair``
    (host pair); the others run as ``hash``, with a warning."""
    from ruleengine.pcap_workers import SCHEDULERS

    name = config.get_str("autofp-scheduler", "hash").strip().lower()
    if name not in SCHEDULERS:
        _warn(f"autofp-scheduler {name} is not implemented: flows are hashed (hash)")
        name = "hash"
    return SCHEDULERS[name]


def _run_pcap_workers(args: argparse.Namespace, config: Config, ruleset: RuleSet,
                      logdir: Path, backend: PcapFileBackend, threads: int,
                      runmode: str) -> int:
    """``-r`` with autofp/workers: this process reads the file and hands each flow's
    frames to one of ``threads`` forked workers (``pcap_workers``); each worker writes
    its own EVE/fast.log part, merged here at the end in timestamp order; the stats are
    the workers' totals, written once at the end as in a single-process run."""
    from ruleengine.pcap_workers import PcapFeed, part_path

    settings = _settings(args, config, ips=args.simulate_ips, offline=True)
    scheduler = _autofp_scheduler(config)
    _notice(f"runmode {runmode}: reading {args.pcap} in this process, "
            f"{threads} worker processes")
    spec = settings.eve_sink
    eve_path = spec.path(logdir)
    split_eve = spec.filetype == "regular"  # sockets, syslog, redis: a connection each
    fast_options = fast_log_settings(config.get_list("outputs"))
    fast_path = logdir / fast_options.filename if fast_options.enabled else None
    try:  # what a single run would refuse to start with is refused before any fork
        _close_eve(_open_eve(settings, logdir, append=False))
        fast = _open_fast_log(config, logdir)
        if fast is not None:
            fast.close()
    except OutputError as exc:
        backend.close()
        _error(str(exc))
        return EXIT_FAILURE
    # Built once here: the forked workers share it instead of each compiling the prefilter.
    detect = _detect_engine(settings, ruleset)
    # frozen: the workers' full collections skip it, and do not write to every one of its
    # objects (which would copy all the engine's pages into each worker)
    gc.freeze()
    feed = PcapFeed(backend, threads, scheduler=scheduler)
    progress = Progress(total=getattr(backend, "size_bytes", 0), enabled=not args.no_progress)
    feed.on_packet = lambda: progress.update(getattr(backend, "position", 0))
    rules = RulesInUse(ruleset)
    hub = WorkerHub()
    server = _pcap_workers_server(args, config, hub, rules, runmode)
    lists = _pcap_bypass_lists(config)  # bad lines said once, here

    def make_pipeline() -> Pipeline:
        index = worker_index()
        mine = settings
        if split_eve:
            part = part_path(eve_path, index)
            mine = dataclasses.replace(settings, eve_sink=dataclasses.replace(
                spec, filename=str(part)))
        fast = FastLogWriter(part_path(fast_path, index), append=False) \
            if fast_path is not None else None
        pipeline = _make_pipeline(mine, detect, logdir, live=False, fast=fast)[0]
        _enable_reload(pipeline, args, settings, rules)
        if lists is not None:  # the workers' counters are summed: one reports the gauges
            pipeline.bypass_lists = lists.worker_copy(owner=index == 0)
        return pipeline

    started = time.time()
    try:
        metrics = _start_metrics(args, source=hub.counters)
    except MetricsError as exc:
        backend.close()
        _error(str(exc))
        return EXIT_FAILURE
    try:
        with _signals_stop(None):
            report, counters = run_workers(
                threads=threads, open_backend=feed.worker_backend,
                make_pipeline=make_pipeline, on_started=_service(args).ready, hub=hub,
                feed=feed)
    except (BackendUnavailable, OutputError) as exc:
        _error(str(exc))
        return EXIT_FAILURE
    finally:
        progress.close()
        if server is not None:
            server.close()
        backend.close()
        if metrics is not None:
            metrics.close()
        _merge_parts(threads, eve_path if split_eve else None, fast_path, fast_options.append)
    stats_outputs = _StatsOutputs(config, logdir, settings)
    # offline: the last stats event carries capture time, as in a single-process run
    stats_outputs.write(feed.last_ts or time.time(), time.time() - started, counters)
    stats_outputs.close()
    for warning in getattr(backend, "warnings", []):
        _warn(str(warning))
    stats = Stats()
    stats.merge(counters)
    _print_summary(report, rules.ruleset, detect, stats)
    return EXIT_OK


def _merge_parts(threads: int, eve_path: Path | None, fast_path: Path | None,
                 fast_append: bool) -> None:
    """The workers' EVE and fast.log parts joined into the configured files."""
    from ruleengine.pcap_workers import eve_key, fast_key, merge_lines, part_path

    try:
        if eve_path is not None:
            merge_lines([part_path(eve_path, i) for i in range(threads)], eve_path,
                        eve_key, append=False)
        if fast_path is not None:
            merge_lines([part_path(fast_path, i) for i in range(threads)], fast_path,
                        fast_key, append=fast_append)
    except OSError as exc:
        _error(f"cannot merge the workers' logs: {exc}")


def _pcap_workers_server(args: argparse.Namespace, config: Config, hub: WorkerHub,
                         rules: RulesInUse, runmode: str) -> CommandServer | None:
    """The unix socket of a pcap run on workers, served by the reading process; reloads
    reach every worker (SIGUSR2)."""
    path = wanted_path(args, config)
    if path is None:
        return None

    def reread() -> RuleSet | None:
        try:
            return _reload_ruleset(args)
        except ReloadError:
            return None

    target = WorkersTarget(hub, rules, iface="", kernel_flows=list, reload_rules=reread,
                           config=config, capture="pcap", runmode=runmode)
    server = open_server(path, target, _warn)
    if server is not None:
        hub.poll = server.poll
    return server


def _pcap_bypass_lists(config: Config) -> LiveLists | None:
    """The pcap run's bypass lists, None without ``bypass-lists:``; imported only then
    (most runs have none: the module and its matcher stay out of start-up)."""
    if not config.get("bypass-lists"):
        return None
    from ruleengine.commands import bypass_lists_live

    return bypass_lists_live.for_pcap(config, _warn)


def _run_af_packet(args: argparse.Namespace, config: Config, ruleset: RuleSet, logdir: Path) -> int:
    from capture_backends.af_packet import AfPacketConfig, AfPacketGroup
    from ruleengine.commands import bypass_lists_live

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
    afp_config = _afp_runmode(_runmode(args, config), afp_config)
    settings = _settings(args, config, ips=False, offline=False)
    # The kernel map key must agree with the flow table on whether VLAN ids count.
    afp_config = afp_config.with_vlan_tracking(settings.use_vlan)
    try:
        group = AfPacketGroup(afp_config)
    except BackendUnavailable as exc:
        _error(str(exc))
        return EXIT_FAILURE
    for notice in group.notices:  # pinned maps: mounted, reused, stale ones removed
        _warn(f"af-packet: {notice}")
    lists = bypass_lists_live.for_af_packet(config, group, _warn)
    if args.checksum is None and not _afp_checksum_checks(section, iface):
        settings = dataclasses.replace(settings, checksum_validation=False)
    stats_outputs = _StatsOutputs(config, logdir, settings, iface=iface)
    try:
        stats_outputs.metrics = _start_metrics(args)
    except MetricsError as exc:
        group.close()
        _error(str(exc))
        return EXIT_FAILURE
    # Built once here: forked workers inherit it instead of each compiling the prefilter.
    detect = _detect_engine(settings, ruleset)
    fast_logs: list[FastLogWriter] = []
    try:
        # truncated once here (append: no); every worker then appends its own lines
        first = _open_fast_log(config, logdir)
        if first is not None:
            first.close()
    except OutputError as exc:
        group.close()
        stats_outputs.close()
        _error(str(exc))
        return EXIT_FAILURE

    service = _service(args)
    main_pid = os.getpid()

    def open_worker(index: int) -> Any:
        backend = group.open_worker(index)
        if os.getpid() == main_pid:  # one worker: it runs in this process
            service.ready()
        else:
            service.worker_opened()
        return backend

    rules = RulesInUse(ruleset)
    hub = WorkerHub() if afp_config.threads > 1 else None
    servers: list[CommandServer] = []
    path = wanted_path(args, config)
    if hub is not None and path is not None:
        # the parent serves the socket; reloads reach every worker (SIGUSR2)
        server = open_server(path, _workers_target(args, config, hub, rules, group, iface),
                             _warn)
        if server is not None:
            servers.append(server)
            hub.poll = server.poll

    def make_pipeline() -> Pipeline:
        fast = _open_fast_log(config, logdir, append=True)
        if fast is not None:
            fast_logs.append(fast)
        pipeline = _make_pipeline(settings, detect, logdir, live=True, append=True,
                                  fast=fast)[0]
        # in the worker process (forked before this runs): one state file per worker
        pipeline.bypass_state = BypassStateFile(state_path(logdir))
        if lists is not None:  # several workers: the parent owns the kernel maps
            pipeline.bypass_lists = lists if hub is None else lists.worker_copy()
        _enable_reload(pipeline, args, settings, rules)
        if hub is None and path is not None:  # one worker, in this process
            target = PipelineTarget(pipeline, rules, capture="af-packet", runmode="single",
                                    ifaces=[iface], config=config)
            server = open_server(path, target, _warn)
            if server is not None:
                servers.append(server)
                pipeline.control = server.poll
        return pipeline

    try:
        with _signals_stop(None):  # SIGHUP; forked workers inherit the handler
            report, counters = run_workers(
                threads=afp_config.threads,
                open_backend=open_worker,
                make_pipeline=make_pipeline,
                write_stats=stats_outputs.write,
                housekeeping=_with_xdp_watch(group, bypass_lists_live.with_housekeeping(
                    _orphan_sweep(group, settings), lists),
                    bypass_lists_live.housekeeping_interval(lists)),
                housekeeping_interval=min(XDP_WATCH_INTERVAL,
                                          bypass_lists_live.housekeeping_interval(lists)),
                on_started=service.ready,
                hub=hub,
            )
    except (BackendUnavailable, OutputError) as exc:  # a worker could not start
        _error(str(exc))
        return EXIT_FAILURE
    finally:
        for server in servers:
            server.close()
        if lists is not None:
            lists.close()
        group.close()
        stats_outputs.close()
        for fast in fast_logs:  # the single-worker case runs in this process
            fast.close()
    stats = Stats()
    stats.merge(counters)
    _print_summary(report, rules.ruleset, detect, stats)
    return EXIT_OK


def _service(args: argparse.Namespace) -> daemon.Service:
    service = getattr(args, "service", None)
    return service if isinstance(service, daemon.Service) else daemon.Service()


def _service_ready(args: argparse.Namespace) -> None:
    """The capture and the logs are open: pidfile, --user/--group, -D's parent let go."""
    _service(args).ready()


def _workers_target(args: argparse.Namespace, config: Config, hub: WorkerHub,
                    rules: RulesInUse, group: AfPacketGroup, iface: str) -> WorkersTarget:
    def kernel_flows() -> list[dict[str, Any]]:
        try:
            entries = group.bypassed_flows()
        except OSError:
            return []
        return [kernel_flow_entry(t.src, t.dst, t.sport, t.dport, t.proto,
                                  c.pkts_ab + c.pkts_ba, c.bytes_ab + c.bytes_ba)
                for t, c in entries]

    def reread() -> RuleSet | None:
        try:
            return _reload_ruleset(args)
        except ReloadError:
            return None

    return WorkersTarget(hub, rules, iface=iface, kernel_flows=kernel_flows,
                         reload_rules=reread, config=config)


def _afp_runmode(runmode: str | None, afp_config: AfPacketConfig) -> AfPacketConfig:
    """AF_PACKET always runs Suricata's workers model (capture and detection in each worker):
    ``single`` keeps one worker, ``autofp`` (one capture thread feeding detection threads)
    is not implemented and runs as workers."""
    if runmode == "single":
        return dataclasses.replace(afp_config, threads=1)
    if runmode == "autofp":
        _warn(f"runmode autofp is not implemented for AF_PACKET: running as workers "
              f"({afp_config.threads} worker process(es))")
    return afp_config


XDP_WATCH_INTERVAL = 0.5  # s: how soon the parent sees a re-created interface (XDP)


def _with_xdp_watch(group: AfPacketGroup, housekeeping: Callable[[], dict[str, int]],
                    interval: float) -> Callable[[], dict[str, int]]:
    """The parent's housekeeping with several workers, called every ``XDP_WATCH_INTERVAL``:
    the parent holds the XDP link, so it attaches the program to an interface that was
    removed and created again (the workers re-attach their sockets themselves), said once
    and counted; ``housekeeping`` itself still runs every ``interval``."""
    next_run = time.monotonic() + interval

    def run() -> dict[str, int]:
        nonlocal next_run
        out: dict[str, int] = {}
        done = group.reattach_xdp()
        if done:
            _notice(f"af-packet: XDP program attached again to {group.config.interface} "
                    f"(ifindex {group.xdp_ifindex}), which was removed and created again")
            out["capture.xdp_reattached"] = 1
        elif done is False:
            out["capture.xdp_reattach_failed"] = 1
        if time.monotonic() >= next_run:
            next_run = time.monotonic() + interval
            for key, value in housekeeping().items():
                out[key] = out.get(key, 0) + value
        return out

    return run


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

    def __init__(self, config: Config, logdir: Path, settings: EngineSettings,
                 eve: EveWriter | None = None, iface: str | None = None) -> None:
        self._logdir = logdir
        self._iface = iface  # in the thread names of stats.log (W#01-eth0)
        self._settings = settings
        self._options = stats_log_settings(config.get_list("outputs"))
        self._opened = False
        self._eve: EveWriter | None = eve
        self._own_eve = eve is None
        self._log: StatsLogWriter | None = None
        self.metrics: MetricsExporter | None = None  # fed every stats interval

    def _open(self) -> None:
        self._opened = True
        if self._own_eve:
            try:
                self._eve = _open_eve(self._settings, self._logdir, append=True)
            except OutputError as exc:
                _warn(str(exc))
        if self._options.enabled:
            path = self._logdir / self._options.filename
            try:
                self._log = StatsLogWriter(path, append=self._options.append,
                                           null_values=self._options.null_values,
                                           totals=self._options.totals,
                                           threads=self._options.threads)
            except OSError as exc:
                _warn(f"stats.log: cannot open {path}: {exc.strerror}")

    def write(self, now: float, uptime: float, counters: dict[str, int],
              threads: dict[int, dict[str, int]] | None = None) -> None:
        """``threads``: each forked worker's counters by number; a run in one process is
        its one worker."""
        if self.metrics is not None:
            self.metrics.update(counters)
        if not self._opened:
            self._open()
        if self._eve is not None:
            self._eve.stats(now, uptime, counters)
            self._eve.flush()
        if self._log is not None:
            per_worker = threads if threads is not None else {1: counters}
            suffix = f"-{self._iface}" if self._iface else ""
            named = {f"W#{n:02d}{suffix}": table for n, table in per_worker.items()}
            self._log.write(counters, ts=now, uptime=uptime, threads=named)

    def close(self) -> None:
        if self.metrics is not None:
            self.metrics.close()
            self.metrics = None
        if self._eve is not None and self._own_eve:
            _close_eve(self._eve)
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
    # From the moment the firewall rules go in, SIGINT/SIGTERM must not take the default
    # action (the rules would stay and, without queue-bypass, black-hole the host): noted
    # until the pipeline runs, which then stops at once.
    early = _EarlySignals()
    try:
        return _run_nfq_engine(args, config, ruleset, logdir, early)
    finally:
        early.restore()


def _run_nfq_engine(args: argparse.Namespace, config: Config, ruleset: RuleSet, logdir: Path,
                    early: _EarlySignals) -> int:
    from capture_backends.nfqueue import NfqBackend, NfqConfig, NfqConfigError
    from ruleengine.commands import bypass_lists_live

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
    backend.notice = _warn
    lists = bypass_lists_live.for_nfq(config, backend, _warn)
    if backend.leftover_note:
        _notice(backend.leftover_note)
    _warn_one_process(_runmode(args, config), "NFQ")
    settings = _settings(args, config, ips=True, offline=False)
    try:
        fast = _open_fast_log(config, logdir)
        pipeline, eve = _make_pipeline(settings, _detect_engine(settings, ruleset), logdir,
                                       live=True, reject_mark=backend.inject_mark, fast=fast)
    except OutputError as exc:
        backend.close()
        _error(str(exc))
        return EXIT_FAILURE
    # stats.log too (Suricata writes it in every live run mode), EVE stats as before
    stats_outputs = _StatsOutputs(config, logdir, settings, eve=eve)
    try:
        stats_outputs.metrics = _start_metrics(args)
    except MetricsError as exc:
        backend.close()
        _close_eve(eve)
        _error(str(exc))
        return EXIT_FAILURE
    pipeline.stats_sink = stats_outputs.write
    pipeline.bypass_state = BypassStateFile(state_path(logdir))
    pipeline.bypass_lists = lists
    rules = RulesInUse(ruleset)
    _enable_reload(pipeline, args, settings, rules)
    control = _open_control(args, config, pipeline, rules, capture="nfq",
                            ifaces=[f"NFQ#{q}" for q in nfq_config.queues])
    try:
        _service_ready(args)
        with _signals_stop(pipeline):
            if early.requested:
                pipeline.stop()  # a signal during start-up: flush, verdicts, rules out
            report = pipeline.run(backend)
    finally:
        if lists is not None:
            lists.close()
        _close_run(control, backend, stats_outputs, eve, fast)
    _notice(backend.shutdown_summary())  # every queued packet's fate, by the kernel's count
    _print_summary(report, rules.ruleset, pipeline.detect, pipeline.stats)
    return EXIT_OK


class _EarlySignals:
    """SIGINT/SIGTERM during start-up: remembered instead of ending the process."""

    def __init__(self) -> None:
        self.requested = False
        self._old = {sig: signal.signal(sig, self._note)
                     for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore(self) -> None:
        if final_signals.deferring():  # the run stopped: its final flush must not be cut
            final_signals.restore_later(self._old)
            return
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def _note(self, signum: int, frame: object) -> None:
        self.requested = True


class _signals_stop:
    """SIGINT/SIGTERM stop the pipeline cleanly; SIGHUP reopens the log files (logrotate),
    as Suricata's does. Without a pipeline (AF_PACKET: the workers install their own stop
    handlers) only SIGHUP is handled."""

    def __init__(self, pipeline: Pipeline | None) -> None:
        self._pipeline = pipeline
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: object) -> None:
        # Only a flag: live backends yield idle ticks, so the loop notices within a poll period
        # and every pending packet still gets its verdict before close().
        if self._pipeline is not None:
            self._pipeline.stop()

    @staticmethod
    def _hangup(signum: int, frame: object) -> None:
        # Only a counter: each regular-file output reopens at its next write or flush
        # (between packets), never inside the handler; the bypass lists are reread there too.
        request_reopen()
        # only a run that loaded the live lists (AF_PACKET, NFQ) has any to reread; no
        # import inside a signal handler
        live = sys.modules.get("ruleengine.commands.bypass_lists_live")
        if live is not None:
            live.request_reload()

    def _usr2(self, signum: int, frame: object) -> None:
        # Only a flag: the reload starts between packets. Without a pipeline (AF_PACKET)
        # the workers and their parent put their own handlers in place; until then (and in
        # a worker forked before that) SIGUSR2 must not take its default action, exit.
        if self._pipeline is not None:
            self._pipeline.request_reload()

    def __enter__(self) -> _signals_stop:
        if self._pipeline is not None:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handler)
        self._old[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._hangup)
        self._old[signal.SIGUSR2] = signal.signal(signal.SIGUSR2, self._usr2)
        return self

    def __exit__(self, *exc: object) -> None:
        # The run has stopped (or failed): a further SIGINT/SIGTERM is only noted, so the
        # final flush (EVE, stats, BPF programs, firewall rules) completes and the exit
        # status stays the run's. ``run_command`` gives the handlers back afterwards.
        final_signals.defer_stop_signals()
        for sig, old in self._old.items():
            if sig not in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, old)
