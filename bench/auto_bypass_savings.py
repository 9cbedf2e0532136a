"""What stream.auto-bypass saves over the depth bypass alone on a realistic capture, with the
same alerts (issue 14 §6).

    .venv/bin/python bench/auto_bypass_savings.py [--pcap P] [--sets 10,http,http-buffers]

The capture is bench/workload_nginx.py's (nginx serving curl and http.client, 3000
requests; run that script once as root to make it). Each rule set is run twice as a child
``ruleengine run`` of this checkout: ``stream.bypass: yes`` (depth bypass) and the same with
``stream.auto-bypass: yes``. From each run's EVE: the flows' bytes (wire), the bytes
bypassed (the flow events' ``bypassed`` counters, by ``bypass_reason``), CPU seconds and
the alerts as a multiset of (sid, 5-tuple, tx_id) (not pcap_cnt: an alert of a response
body moves from the completing packet to the bypass point).

Sets: ``10`` and ``http`` are bench/pcap_throughput.py's (the first 10 / all ET Open HTTP
rules); ``http-buffers`` keeps of the ET HTTP rules those that auto-bypass can reason past:
no raw-stream/packet rules (content without a sticky buffer, packet keywords) and no tag
rules, no response rules with a feature the HTTP phase refuses (thresholds, xbits...), so it
shows what the HTTP phase saves when the rule set lets it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from pcap_throughput import http_rules  # noqa: E402

CACHE = REPO / "bench" / ".cache"
DEFAULT_PCAP = next((p for p in (CACHE / "nginx-3000-7.pcap",
                                 Path("/work/main/bench/.cache/nginx-3000-7.pcap"))
                     if p.exists()), CACHE / "nginx-3000-7.pcap")


@dataclass
class Result:
    cpu: float = 0.0
    flows: int = 0
    wire_bytes: int = 0
    bypassed_bytes: Counter[str] = field(default_factory=Counter)
    bypassed_flows: Counter[str] = field(default_factory=Counter)
    alerts: Counter[tuple[object, ...]] = field(default_factory=Counter)

    @property
    def bypassed(self) -> int:
        return sum(self.bypassed_bytes.values())


def buffer_only_rules(source: Path) -> Path:
    """The app-layer-only subset of ``source``: what auto-bypass can reason past."""
    from ruleengine.detect.auto_bypass import AutoBypassPlan, late_feature
    from ruleengine.detect.engine import DetectEngine
    from ruleengine.rules.loader import load_rule_text

    lines = [ln for ln in source.read_text().splitlines() if ln.strip()]
    engine = DetectEngine(load_rule_text("\n".join(lines)).rules)
    plan = AutoBypassPlan.build(engine.rules)
    tags = {cr.rule.sid for cr in engine.rules if cr.rule.tags}
    late = {cr.rule.sid for cr in engine.rules
            if cr.is_tx and False in cr.tx_dirs and late_feature(cr) is not None}
    held = {b.sid for b in plan.blockers} | tags | late
    sid = re.compile(r"\bsid\s*:\s*(\d+)")
    kept = [ln for ln in lines if (m := sid.search(ln)) and int(m.group(1)) not in held]
    out = Path(tempfile.mkstemp(suffix=".rules", prefix="bench-ab-")[1])
    out.write_text("\n".join(kept) + "\n")
    print(f"  http-buffers: {len(kept)} of {len(lines)} ET HTTP rules "
          f"(left out: {len(plan.blockers)} raw-stream/packet rules, {len(tags)} tag rules, "
          f"{len(late)} response rules with thresholds/xbits/...)")
    return out


def run(pcap: Path, rules: Path, home: str, auto: bool, depth: str) -> Result:
    logdir = Path(tempfile.mkdtemp(prefix="bench-ab-"))
    cmd = [sys.executable, "-m", "ruleengine", "run", "-r", str(pcap), "-S", str(rules),
           "-l", str(logdir), "--no-progress", "-k", "none",
           "--set", f"vars.address-groups.HOME_NET=[{home}]",
           "--set", "stream.bypass=yes", "--set", f"stream.auto-bypass={'yes' if auto else 'no'}",
           "--set", f"stream.reassembly.depth={depth}"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if status != 0:
        raise SystemExit(f"engine failed: {err[-2000:]}")
    res = Result(cpu=usage.ru_utime + usage.ru_stime)
    with open(logdir / "eve.json", encoding="utf-8") as fh:
        for line in fh:
            ev = json.loads(line)
            kind = ev.get("event_type")
            if kind == "alert":
                res.alerts[(ev["alert"]["signature_id"], ev.get("src_ip"), ev.get("src_port"),
                            ev.get("dest_ip"), ev.get("dest_port"), ev.get("tx_id"))] += 1
            elif kind == "flow":
                _add_flow(res, ev)
    return res


def _add_flow(res: Result, ev: dict[str, object]) -> None:
    body = ev.get("flow")
    if not isinstance(body, dict):
        return
    res.flows += 1
    res.wire_bytes += int(body.get("bytes_toserver", 0)) + int(body.get("bytes_toclient", 0))
    bypassed = body.get("bypassed")
    if not isinstance(bypassed, dict):
        return
    reason = "unknown"
    meta = ev.get("metadata")
    for var in (meta.get("flowvars") or []) if isinstance(meta, dict) else []:
        if isinstance(var, dict) and isinstance(var.get("bypass_reason"), str):
            reason = var["bypass_reason"].partition(":")[0]
    res.bypassed_flows[reason] += 1
    res.bypassed_bytes[reason] += (int(bypassed.get("bytes_toserver", 0))
                                   + int(bypassed.get("bytes_toclient", 0)))


def report(kind: str, depth: Result, auto: Result) -> None:
    wire = depth.wire_bytes
    inspected_depth, inspected_auto = wire - depth.bypassed, wire - auto.bypassed
    same = depth.alerts == auto.alerts
    print(f"rules={kind}: flows={depth.flows} wire={wire / 1e6:.1f} MB")
    for name, res in (("depth", depth), ("depth+auto", auto)):
        reasons = ", ".join(f"{r} {res.bypassed_flows[r]} flows/{b / 1e6:.1f} MB"
                            for r, b in sorted(res.bypassed_bytes.items())) or "none"
        print(f"  {name:10s} bypassed {res.bypassed / 1e6:6.1f} MB "
              f"({100 * res.bypassed / wire:5.1f} % of wire; {reasons}); "
              f"cpu {res.cpu:.1f}s; alerts {sum(res.alerts.values())}")
    saved = 100 * (inspected_depth - inspected_auto) / inspected_depth if inspected_depth else 0
    print(f"  auto-bypass: {(auto.bypassed - depth.bypassed) / 1e6:.1f} MB more bypassed "
          f"({100 * (auto.bypassed - depth.bypassed) / wire:.1f} % of wire), inspected bytes "
          f"{inspected_depth / 1e6:.1f} -> {inspected_auto / 1e6:.1f} MB (-{saved:.1f} %); "
          f"same alerts: {same}")
    if not same:
        print(f"  only with depth: {dict(depth.alerts - auto.alerts)}")
        print(f"  only with auto:  {dict(auto.alerts - depth.alerts)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pcap", type=Path, default=DEFAULT_PCAP)
    parser.add_argument("--sets", default="10,http,http-buffers")
    parser.add_argument("--depth", default="1mb", help="stream.reassembly.depth (1mb)")
    args = parser.parse_args()
    if not args.pcap.exists():
        print(f"{args.pcap}: missing; run bench/workload_nginx.py (root) once to capture it")
        return 1
    meta = args.pcap.with_suffix(".json")
    home = json.loads(meta.read_text())["home_net"] if meta.exists() else "10.193.0.1"
    print(f"pcap: {args.pcap} ({args.pcap.stat().st_size / 1e6:.1f} MB), HOME_NET {home}")
    for kind in args.sets.split(","):
        if kind == "http-buffers":
            rules = buffer_only_rules(http_rules(None))
        else:
            rules = http_rules(10 if kind == "10" else None)
        t0 = time.monotonic()
        depth = run(args.pcap, rules, home, False, args.depth)
        auto = run(args.pcap, rules, home, True, args.depth)
        report(f"{kind} depth={args.depth}", depth, auto)
        print(f"  ({time.monotonic() - t0:.0f}s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
