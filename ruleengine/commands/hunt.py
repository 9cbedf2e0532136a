"""``ruleengine hunt``: a rule set over a pcap archive on Dask (retro-hunt).

    ruleengine hunt -S RULES [-c suricata.yaml] [--set k=v] [-l LOGDIR]
                    [--workers N | --scheduler ADDRESS] [--parquet FILE] PCAP...|DIR...

Work is split by file; a file of at least ``--shard-size`` bytes is split further by flow
hash (``hunt_shard``): each of its tasks reads the whole file and inspects only its
shard's flows. Every task runs the engine in its Dask worker process exactly as
``ruleengine run -r`` builds it (the configuration, rules, settings, detection engine
and pipeline come from ``run``'s own functions), writing EVE into a task-local temporary
directory; the client merges the tasks' EVE into one ``eve.json`` in LOGDIR, each event
with ``pcap_filename`` (Suricata's eve-log ``pcap-file: yes``).

Dask does the scheduling: a ``LocalCluster`` of worker processes by default,
``--scheduler`` for an existing cluster (whose workers must see the pcap paths).
A missing or unreadable file, a file that is not a capture or a worker lost on a task is
one line on stderr; the rest of the archive still runs and the exit code is 1.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import hashlib
import importlib
import io
import json
import logging
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capture_backends.pcap_file import PcapError, PcapFileBackend
from ruleengine.commands import run
from ruleengine.commands.hunt_shard import shard_filter
from ruleengine.config import Config
from ruleengine.config.values import parse_size
from ruleengine.detect.engine import DetectEngine
from ruleengine.outputs.sinks import SinkSpec
from ruleengine.rules.loader import RuleSet
from ruleengine.settings import EngineSettings

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
DEFAULT_SHARD_SIZE = "256mb"
# Rules whose state spans flows (counts per host, host/ip-pair bits): a flow-hash shard
# would see only part of the flows they count, so such rule sets are split by file only.
CROSS_FLOW_KEYWORDS = frozenset({"threshold", "detection_filter", "hostbits", "xbits"})


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "hunt",
        help="run a rule set over a pcap archive on Dask (retro-hunt)",
        description="Run the detection engine over many pcap files on a Dask cluster and "
        "merge their EVE into one eve.json.",
    )
    parser.add_argument("inputs", nargs="+", metavar="PCAP|DIR",
                        help="pcap/pcapng files, or directories searched recursively")
    parser.add_argument("-S", dest="rules", metavar="RULES", action="append", default=[],
                        help="rule file (exclusive: yaml rule-files are ignored); repeatable")
    parser.add_argument("-s", dest="extra_rules", metavar="RULES", action="append",
                        default=[], help="rule file in addition to the yaml's rule-files")
    run.add_options(parser, run.CONFIG_OPTIONS)
    parser.add_argument("-l", dest="logdir", metavar="LOGDIR", default=".",
                        help="directory for the merged eve.json (default: .)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="worker processes of the local cluster (default: cores)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="use this Dask scheduler (tcp://host:port) instead of a local "
                        "cluster; its workers must see the pcap paths")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="how long to try reaching --scheduler (default 10)")
    parser.add_argument("--shard-size", default=DEFAULT_SHARD_SIZE, metavar="SIZE",
                        help="files of at least this size are split by flow hash "
                        f"(default {DEFAULT_SHARD_SIZE}; 0: never)")
    parser.add_argument("--shards", type=int, metavar="N",
                        help="flow-hash shards of a big file (default: the cluster's threads)")
    parser.add_argument("--parquet", metavar="FILE",
                        help="also write the events as Parquet (needs pyarrow)")
    parser.add_argument("--no-progress", action="store_true", help="no progress report")
    parser.add_argument("-v", dest="verbose", action="count", default=0, help="more output")
    parser.set_defaults(func=hunt_command)


# --- what a task needs (pickled to the workers) -----------------------------------------


@dataclass(frozen=True)
class HuntSpec:
    """The run's configuration and rule sources, from which a worker builds its engine.
    ``digest``: of the rules' text and the configuration file as the client read them,
    so that a worker of a long-lived cluster (``--scheduler``) never reuses the engine it
    cached for an earlier hunt whose files had the same names."""

    config: str | None
    overrides: tuple[str, ...]
    rules: tuple[str, ...]
    extra_rules: tuple[str, ...]
    checksum: str | None
    digest: str = ""

    def namespace(self) -> argparse.Namespace:
        """The ``run`` arguments its helpers read."""
        return argparse.Namespace(config=self.config, overrides=list(self.overrides),
                                  rules=list(self.rules), extra_rules=list(self.extra_rules),
                                  checksum=self.checksum, verbose=0)


@dataclass(frozen=True)
class Task:
    path: str  # absolute: the worker's working directory is not ours
    name: str  # as the user gave it: EVE's pcap_filename
    shard: int = 0
    shards: int = 1


@dataclass
class TaskResult:
    task: Task
    eve: bytes = b""
    error: str | None = None
    packets: int = 0
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


_CACHE: dict[HuntSpec, tuple[Config, RuleSet]] = {}
# (spec, thread) -> the detection engine as built, never inspected with itself: each task
# runs a copy with fresh run state (``_engine_for``)
_ENGINES: dict[tuple[HuntSpec, int], DetectEngine] = {}


def _rules_for(spec: HuntSpec) -> tuple[Config, RuleSet]:
    """Configuration and parsed rules, once per worker process (parsing a big rule set
    costs seconds)."""
    cached = _CACHE.get(spec)
    if cached is not None:
        return cached
    args = spec.namespace()
    config = run._load_config(args)
    if config is None:
        raise RuntimeError("the configuration cannot be read")
    ruleset = run._load_rules(args, config, strict=False)
    if ruleset is None:
        raise RuntimeError("the rules cannot be loaded")
    _CACHE.clear()  # the rules of one hunt at a time (a long-lived cluster runs many)
    _CACHE[spec] = (config, ruleset)
    return config, ruleset


def _engine_for(spec: HuntSpec, settings: EngineSettings, ruleset: RuleSet) -> DetectEngine:
    """The detection engine of ``spec`` for one task. Building it is most of a small
    task's cost (1.3 s with ET Open: rule compile, prefilter tables, hyperscan), so it is
    built once per worker thread (a thread of its own: hyperscan's scratch space and the
    engine's per-packet scratch must not be shared by tasks running at the same time)
    and kept unused; a task gets a shallow copy (the compiled rules, groups and
    databases are read-only during inspection) whose run state is new, as a new
    ``ruleengine run`` has: thresholds, xbits and tags (empty copies of the kept engine's
    tables, so their caps stay), counters, the packet variables. Per-flow state is on
    the flows, and every task has its own flow table."""
    thread = threading.get_ident()
    key = (spec, thread)
    built = _ENGINES.get(key)
    if built is None:
        # one engine per thread: a long-lived cluster's next hunt frees the last one's
        for old in [k for k in _ENGINES if k[1] == thread]:
            del _ENGINES[old]
        built = _ENGINES[key] = run._detect_engine(settings, ruleset)
    engine = copy.copy(built)
    engine.thresholds = copy.deepcopy(built.thresholds)
    engine.xbits = copy.deepcopy(built.xbits)
    engine.tags = copy.deepcopy(built.tags)
    engine.tagged_packets = engine.alerts_discarded = engine.errors = 0
    engine.last_error = None
    engine._pktvars = None
    return engine


def run_task(spec: HuntSpec, task: Task) -> TaskResult:
    """One file (or one flow-hash shard of it), in a Dask worker. Never raises: a problem
    is the result's ``error``. ``run``'s messages go to a buffer (the client already
    printed the configuration and rule diagnostics once); the rest become ``warnings``."""
    started = time.perf_counter()
    result = TaskResult(task)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            config, ruleset = _rules_for(spec)
        said = io.StringIO()
        with tempfile.TemporaryDirectory(prefix="ruleengine-hunt-") as tmp, \
                contextlib.redirect_stderr(said):
            _inspect(spec, task, config, ruleset, Path(tmp), result)
        result.warnings.extend(line.removeprefix("warning: ")
                               for line in said.getvalue().splitlines()
                               if line.startswith(("warning:", "error:")))
    except Exception as exc:  # reported per file, the archive goes on
        result.error = f"{type(exc).__name__}: {exc}"
    result.seconds = time.perf_counter() - started
    return result


def _inspect(spec: HuntSpec, task: Task, config: Config, ruleset: RuleSet, tmp: Path,
             result: TaskResult) -> None:
    try:
        backend = PcapFileBackend(task.path)
    except (OSError, ValueError, PcapError) as exc:
        result.error = str(exc).removeprefix(f"{task.path}: ")
        return
    settings = run._settings(spec.namespace(), config, ips=False, offline=True)
    # the task's own regular file, whatever eve-log's transport (the client writes it)
    settings = dataclasses.replace(settings, eve_sink=SinkSpec(), eve_prefix="")
    try:
        pipeline, eve = run._make_pipeline(settings, _engine_for(spec, settings, ruleset),
                                           tmp, live=False)
    except Exception:
        backend.close()
        raise
    if task.shards > 1:
        pipeline.packet_filter = shard_filter(int(backend.linktype), task.shard, task.shards)
    try:
        report = pipeline.run(backend)
    finally:
        backend.close()
        run._close_eve(eve)
    result.packets = report.packets
    result.warnings.extend(str(w) for w in getattr(backend, "warnings", []))
    result.eve = (tmp / "eve.json").read_bytes()


# --- the client --------------------------------------------------------------------------


def _say(kind: str, message: str) -> None:
    print(f"{kind}: {message}", file=sys.stderr)


CAPTURE_MAGICS = frozenset({
    bytes.fromhex(m) for m in ("d4c3b2a1", "a1b2c3d4", "4d3cb2a1", "a1b23c4d", "34cdb2a1",
                               "a1b2cd34", "0a0d0d0a")})


def _looks_like_capture(path: Path) -> bool:
    """A pcap or pcapng magic (or a file we cannot read: its task says why)."""
    try:
        with path.open("rb") as handle:
            return handle.read(4) in CAPTURE_MAGICS
    except OSError:
        return True


def _inputs(names: Sequence[str]) -> tuple[list[tuple[str, Path]], list[tuple[str, str]]]:
    """(name, path) of every file to inspect, and (name, reason) of inputs that are not
    there. Directories are searched recursively, in name order; their files that are not
    captures (rules, notes) are skipped with a notice, while a file named on the command
    line that is not a capture fails."""
    files: list[tuple[str, Path]] = []
    bad: list[tuple[str, str]] = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file())
            captures = [p for p in found if _looks_like_capture(p)]
            if len(captures) < len(found):
                _say("notice", f"{name}: skipped {len(found) - len(captures)} file(s) that "
                     "are not pcap/pcapng captures")
            if not captures:
                bad.append((name, "directory holds no pcap/pcapng file"))
            files.extend((str(p), p) for p in captures)
        elif path.is_file():
            files.append((name, path))
        elif path.exists():
            bad.append((name, "not a regular file"))
        else:
            bad.append((name, "no such file or directory"))
    return files, bad


def _digest(spec: HuntSpec, ruleset: RuleSet) -> str:
    digest = hashlib.sha256()
    if spec.config is not None:
        with contextlib.suppress(OSError):  # it was read a moment ago
            digest.update(Path(spec.config).read_bytes())
    for rule in ruleset.rules:
        digest.update(rule.raw.encode("utf-8", "surrogateescape") + b"\n")
    return digest.hexdigest()


def _cross_flow(ruleset: RuleSet) -> set[str]:
    return {name for rule in ruleset.rules for name, _ in rule.options
            if name in CROSS_FLOW_KEYWORDS}


def _tasks(files: list[tuple[str, Path]], shard_size: int, shards: int) -> list[Task]:
    tasks: list[Task] = []
    for name, path in files:
        try:
            size = path.stat().st_size
        except OSError:
            size = 0  # the task reports it
        count = shards if shard_size and size >= shard_size and shards > 1 else 1
        tasks.extend(Task(str(path.absolute()), name, i, count) for i in range(count))
    return tasks


def hunt_command(args: argparse.Namespace) -> int:
    shard_size = parse_size(args.shard_size)
    if shard_size is None:
        _say("error", f"--shard-size {args.shard_size!r}: not a size")
        return EXIT_USAGE
    if args.workers is not None and args.workers < 1:
        _say("error", "--workers must be at least 1")
        return EXIT_USAGE
    if args.parquet and not _have_pyarrow():
        _say("error", "--parquet needs pyarrow (pip install 'ruleengine[hunt]')")
        return EXIT_USAGE
    try:
        _distributed()
    except ImportError:
        _say("error", "hunt needs dask.distributed (pip install 'ruleengine[hunt]')")
        return EXIT_USAGE
    spec = HuntSpec(args.config, tuple(args.overrides), tuple(args.rules),
                    tuple(args.extra_rules), args.checksum)
    config = run._load_config(spec.namespace())
    if config is None:
        return EXIT_USAGE
    ruleset = run._load_rules(spec.namespace(), config, strict=False)
    if ruleset is None:
        return EXIT_FAILURE
    spec = dataclasses.replace(spec, digest=_digest(spec, ruleset))
    logdir = Path(args.logdir)
    try:
        logdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _say("error", f"cannot create log directory {logdir}: {exc.strerror}")
        return EXIT_USAGE
    files, bad = _inputs(args.inputs)
    for name, reason in bad:
        _say("error", f"{name}: {reason}")
    stateful = _cross_flow(ruleset)
    if stateful and shard_size:
        _say("notice", f"rules use {', '.join(sorted(stateful))} (state across flows): "
             "files are not split by flow hash")
        shard_size = 0
    with _client(args) as client:
        if client is None:
            return EXIT_FAILURE
        shards = args.shards or max(1, sum(client.nthreads().values()))
        tasks = _tasks(files, shard_size, shards)
        started = time.perf_counter()
        results = _execute(client, spec, tasks, progress=not args.no_progress)
        seconds = time.perf_counter() - started
        workers = len(client.nthreads())
    failed = _merge(results, logdir / "eve.json", args.parquet, seconds, workers)
    return EXIT_FAILURE if failed or bad else EXIT_OK


def _distributed() -> Any:
    """``dask.distributed``, imported when a hunt starts (an optional extra; untyped)."""
    return importlib.import_module("dask.distributed")


def _have_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def _client(args: argparse.Namespace) -> Iterator[Any]:
    """A Dask client on ``--scheduler`` or on a new local cluster of worker processes
    (one thread each: the engine is pure Python, processes are what runs in parallel).
    None (reported) when the scheduler cannot be reached."""
    dd = _distributed()
    Client, LocalCluster = dd.Client, dd.LocalCluster
    if args.scheduler:
        try:
            client = Client(args.scheduler, timeout=f"{max(args.timeout, 0.1)}s")
        except (OSError, TimeoutError, ValueError) as exc:
            _say("error", f"cannot reach the Dask scheduler at {args.scheduler}: "
                 f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
            yield None
            return
        try:
            yield client
        finally:
            client.close()
        return
    workers = args.workers or os.cpu_count() or 1
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _execute(client: Any, spec: HuntSpec, tasks: list[Task], *,
             progress: bool) -> list[TaskResult]:
    """Submit every task, report progress with Dask's own bar (a terminal) or a count
    (otherwise), and return the results in task order; a task Dask could not run (its
    worker died) is a failed result."""
    dd = _distributed()
    futures = [client.submit(run_task, spec, task, key=f"hunt-{i}", pure=False)
               for i, task in enumerate(tasks)]
    if progress and sys.stdout.isatty():
        dd.progress(futures, notebook=False)
        print(file=sys.stdout)
    elif futures:
        last = 0.0
        for done, _ in enumerate(dd.as_completed(futures), start=1):
            now = time.monotonic()
            if progress and (now - last >= 1.0 or done == len(futures)):
                last = now
                print(f"hunt: {done}/{len(futures)} tasks done", file=sys.stderr)
    results: list[TaskResult] = []
    for task, future in zip(tasks, futures, strict=True):
        try:
            results.append(future.result())
        except Exception as exc:  # KilledWorker, a cancelled future
            results.append(TaskResult(task, error=f"{type(exc).__name__}: {exc}"))
    return results


# --- merging -----------------------------------------------------------------------------


def _events(results: list[TaskResult]) -> list[dict[str, Any]]:
    """One file's events (all its shards), each with ``pcap_filename``. Shards are merged
    in timestamp order (EVE timestamps are all UTC, so they sort as strings)."""
    events: list[dict[str, Any]] = []
    for result in results:
        for line in result.eve.decode("utf-8", "replace").splitlines():
            if line.strip():
                event = json.loads(line)
                event["pcap_filename"] = result.task.name
                events.append(event)
    if len(results) > 1:
        events.sort(key=lambda e: str(e.get("timestamp", "")))
    return events


def _by_file(results: list[TaskResult]) -> dict[str, list[TaskResult]]:
    grouped: dict[str, list[TaskResult]] = {}
    for result in results:
        grouped.setdefault(result.task.name, []).append(result)
    return grouped


def _merge(results: list[TaskResult], eve_path: Path, parquet: str | None,
           seconds: float, workers: int) -> int:
    """Write the merged EVE (and Parquet), print the warnings, failures and the summary;
    return the number of files that failed."""
    sids: Counter[int] = Counter()
    msgs: dict[int, str] = {}
    per_file: Counter[str] = Counter()
    failed: list[tuple[str, str]] = []
    packets = 0
    parquet_out = _ParquetOut(parquet) if parquet else None
    with eve_path.open("w", encoding="utf-8") as out:
        for name, shard_results in _by_file(results).items():
            for result in shard_results:
                for warning in dict.fromkeys(result.warnings):
                    _say("warning", warning)
            errors = [r.error for r in shard_results if r.error]
            if errors:
                failed.append((name, errors[0]))
                _say("error", f"{name}: {errors[0]}")
            # every shard reads (and counts) the whole file
            packets += max((r.packets for r in shard_results), default=0)
            events = _events([r for r in shard_results if not r.error])
            for event in events:
                out.write(json.dumps(event, separators=(",", ":"), ensure_ascii=False))
                out.write("\n")
                alert = event.get("alert")
                if event.get("event_type") == "alert" and isinstance(alert, dict):
                    sid = int(alert.get("signature_id", 0))
                    sids[sid] += 1
                    msgs.setdefault(sid, str(alert.get("signature", "")))
                    per_file[name] += 1
            if parquet_out is not None:
                parquet_out.write(events)
    if parquet_out is not None:
        parquet_out.close()
    files = len(_by_file(results))
    print(f"hunt: {files} file(s) in {len(results)} task(s) on {workers} worker(s), "
          f"{seconds:.1f} s: {packets} packets, {sum(sids.values())} alerts, "
          f"{len(failed)} file(s) failed; EVE in {eve_path}")
    if sids:
        print("alerts per sid:")
        for sid, count in sorted(sids.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"  {count:>8}  {sid:<10} {msgs[sid]}")
        print("alerts per file:")
        for name, count in sorted(per_file.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"  {count:>8}  {name}")
    return len(failed)


PARQUET_COLUMNS = (
    ("timestamp", "string"), ("event_type", "string"), ("pcap_filename", "string"),
    ("pcap_cnt", "int64"), ("flow_id", "int64"), ("src_ip", "string"),
    ("src_port", "int64"), ("dest_ip", "string"), ("dest_port", "int64"),
    ("proto", "string"), ("app_proto", "string"), ("signature_id", "int64"),
    ("signature", "string"), ("category", "string"), ("severity", "int64"),
    ("action", "string"), ("event", "string"),
)
ALERT_COLUMNS = ("signature_id", "signature", "category", "severity", "action")


class _ParquetOut:
    """Every event as one row: the common EVE fields and the alert's as columns (a fixed
    schema, whatever the event types), the whole event as JSON in ``event``."""

    def __init__(self, path: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        self._schema = pa.schema([(n, getattr(pa, t)()) for n, t in PARQUET_COLUMNS])
        self._writer = pq.ParquetWriter(path, self._schema)

    def write(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        rows = [self._row(e) for e in events]
        self._writer.write_table(self._pa.Table.from_pylist(rows, schema=self._schema))

    @staticmethod
    def _row(event: dict[str, Any]) -> dict[str, Any]:
        found = event.get("alert")
        alert: dict[str, Any] = found if isinstance(found, dict) else {}
        row: dict[str, Any] = {}
        for name, kind in PARQUET_COLUMNS[:-1]:
            value = alert.get(name) if name in ALERT_COLUMNS else event.get(name)
            if kind == "int64":
                row[name] = value if isinstance(value, int) else None
            else:
                row[name] = None if value is None else str(value)
        row["event"] = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
        return row

    def close(self) -> None:
        self._writer.close()
