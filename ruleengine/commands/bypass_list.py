"""``ruleengine bypass list``: the flows bypassed in the kernel right now.

Packet and byte counters come live from the kernel maps (``capture_backends.ebpf.inspect``:
the maps the running engine holds, found through ``/proc/<pid>/fdinfo``); the reason, the
sid and the bypass time from the engine's state files in its log directory
(``bypassed-flows.<pid>.json``, ``ruleengine.bypass_state``). A kernel entry the engine
does not describe (e.g. left by an earlier run) is listed with reason ``-``. Without a
state file of a running engine, ``--all-maps`` lists every bypass table of the kernel.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruleengine.bypass_state import STATE_GLOB

EXIT_OK = 0
EXIT_FAILURE = 1
PROTOS = {6: "TCP", 17: "UDP"}


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "list", help="flows bypassed in the kernel now: 5-tuple, packets/bytes since the "
        "bypass, age, reason, sid",
        description="List the live bypassed flows of running engines (AF_PACKET eBPF maps; "
        "needs root) with their reason and sid.")
    parser.add_argument("-l", dest="logdir", default=".", metavar="LOGDIR",
                        help="the engine's log directory (its -l; default: .)")
    parser.add_argument("--pid", type=int, help="only the engine (or worker) with this pid")
    parser.add_argument("--all-maps", action="store_true",
                        help="every bypass table in the kernel, also of engines without a "
                        "state file")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(func=list_command)


@dataclass
class Row:
    src: str
    sport: int
    dst: str
    dport: int
    proto: int
    pkts: int | None
    bytes: int | None
    age: float | None  # seconds since the bypass
    idle: float | None  # seconds since the kernel last counted a packet of it
    reason: str
    sid: int | None
    mode: str
    pid: int | None
    in_kernel: bool

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_states(logdir: Path, pid: int | None) -> tuple[list[dict[str, Any]], list[str]]:
    """State documents of running engines in ``logdir``; notes about stale or bad files."""
    states, notes = [], []
    for path in sorted(logdir.glob(STATE_GLOB)):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            notes.append(f"{path}: unreadable ({exc})")
            continue
        owner = doc.get("pid") if isinstance(doc, dict) else None
        if not isinstance(owner, int) or not isinstance(doc.get("flows"), list):
            notes.append(f"{path}: not a bypass state file")
            continue
        if pid is not None and owner != pid:
            continue
        if not _alive(owner):
            notes.append(f"{path}: engine {owner} is not running (stale file)")
            continue
        states.append(doc)
    return states, notes


def _key_of(entry: dict[str, Any]) -> tuple[Any, ...] | None:
    """Canonical (endpoint a, endpoint b, proto) of a state entry, as the kernel keys it."""
    try:
        a = (ipaddress.ip_address(entry["src_ip"]).packed, int(entry["src_port"]))
        b = (ipaddress.ip_address(entry["dest_ip"]).packed, int(entry["dest_port"]))
        proto = int(entry["proto"])
    except (KeyError, ValueError, TypeError):
        return None
    return (*min(a, b), *max(a, b), proto)


def collect(logdir: Path, pid: int | None, all_maps: bool) -> tuple[list[Row], list[str]]:
    from capture_backends.ebpf import inspect

    states, notes = read_states(logdir, pid)
    described: dict[tuple[Any, ...], tuple[dict[str, Any], int]] = {}
    for doc in states:
        for entry in doc["flows"]:
            if isinstance(entry, dict) and (key := _key_of(entry)) is not None:
                described[key] = (entry, doc["pid"])
    if all_maps:
        ids = None
    else:
        ids = set()
        for doc in states:
            ids |= inspect.process_map_ids(doc["pid"])
    if not states and not all_maps:
        notes.append(f"no running engine has a state file in {logdir} (give the engine's -l, "
                     "or --all-maps)")
        return [], notes
    try:
        entries = inspect.bypass_tables(ids)
    except OSError as exc:
        notes.append(f"cannot read the kernel maps: {exc}")
        entries = []
    now, mono_ns = time.time(), time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    rows, seen = [], set()
    for e in entries:
        f = e.flow
        key = (f.src, f.sport, f.dst, f.dport, f.proto)
        if key in seen:  # the same map held by the parent and its workers
            continue
        seen.add(key)
        entry, owner = described.get(key, ({}, None))
        c = e.counters
        rows.append(_row(entry, owner, f.src, f.sport, f.dst, f.dport, f.proto,
                         c.pkts_ab + c.pkts_ba, c.bytes_ab + c.bytes_ba, now,
                         max(0.0, (mono_ns - c.last_ns) / 1e9) if c.last_ns else None))
    for key, (entry, owner) in described.items():
        if key not in seen:  # NFQ (a connmark), or the entry is already gone
            src, sport, dst, dport, proto = key
            rows.append(_row(entry, owner, src, sport, dst, dport, proto, None, None, now, None))
    return rows, notes


def _row(entry: dict[str, Any], owner: int | None, src: bytes, sport: int, dst: bytes,
         dport: int, proto: int, pkts: int | None, nbytes: int | None, now: float,
         idle: float | None) -> Row:
    reason = str(entry.get("reason") or "-")
    kind, _, rest = reason.partition(":")
    ts = entry.get("bypass_ts")
    if entry.get("src_ip"):  # client first, as the engine saw it
        src_s, sport, dst_s, dport = (str(entry["src_ip"]), int(entry["src_port"]),
                                      str(entry["dest_ip"]), int(entry["dest_port"]))
    else:
        src_s, dst_s = str(ipaddress.ip_address(src)), str(ipaddress.ip_address(dst))
    return Row(src_s, sport, dst_s, dport, proto, pkts, nbytes,
               now - ts if isinstance(ts, (int, float)) else None, idle,
               kind if entry else "-", int(rest) if kind == "rule" and rest.isdigit() else None,
               str(entry.get("mode") or "capture"), owner, pkts is not None)


def _fmt(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:.1f}{unit}"


def render(rows: list[Row]) -> str:
    head = (f"{'proto':<5} {'client':>22} {'server':>22} {'pkts':>9} {'bytes':>12} "
            f"{'age':>8} {'idle':>7} {'reason':<16} {'sid':>9} {'pid':>7}")
    lines = [head]
    for r in sorted(rows, key=lambda r: -(r.bytes or 0)):
        lines.append(
            f"{PROTOS.get(r.proto, str(r.proto)):<5} {f'{r.src}:{r.sport}':>22} "
            f"{f'{r.dst}:{r.dport}':>22} {'-' if r.pkts is None else r.pkts:>9} "
            f"{'-' if r.bytes is None else r.bytes:>12} {_fmt(r.age, 's'):>8} "
            f"{_fmt(r.idle, 's'):>7} {r.reason:<16} {'-' if r.sid is None else r.sid:>9} "
            f"{'-' if r.pid is None else r.pid:>7}")
    lines.append(f"{len(rows)} bypassed flow(s)")
    return "\n".join(lines) + "\n"


def list_command(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print("error: reading the kernel's bpf maps needs root (CAP_SYS_ADMIN)",
              file=sys.stderr)
        return EXIT_FAILURE
    rows, notes = collect(Path(args.logdir), args.pid, args.all_maps)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if args.format == "json":
        json.dump([r.as_dict() for r in rows], sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(rows))
    return EXIT_OK
