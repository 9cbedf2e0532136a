"""NFQUEUE bypass: a large TCP transfer through the queue with bypass off and on.

Two network namespaces joined by veth (made here, removed afterwards; traffic only between
them). ``ns_b`` runs an HTTP server and the inline consumer on queue 0 with the rules
installed (``--nfq-install-rules``); ``ns_a`` downloads ``--size-mb`` of one response.

* bypass off: a rule that matches the request without ``bypass``: every packet of the
  transfer goes through the queue and the engine;
* bypass on: the same rule with ``bypass``: the request's verdict carries the bypass mark,
  connmark keeps the rest of the flow out of the queue.

Prints throughput, packets queued (the kernel's id_sequence for the queue), consumer CPU
time, and the on/off ratios. ``--consumer backend`` measures the backend alone (a verdict
loop that bypasses a flow after its 10th packet) instead of the whole engine.

Usage (root): python bench/bypass_nfq.py [--size-mb 500] [--consumer engine|backend]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import kernel  # noqa: E402
from tests.capture_backends.test_nfqueue_engine import (  # noqa: E402
    HttpServer,
    http_get,
    queue_sequence,
    rules_installed,
)

RULE = ('alert http any any -> any any (msg:"big download"; flow:to_server; http.uri; '
        'content:"/big"; {bypass}sid:9001; rev:1;)\n')
YAML = "%YAML 1.1\n---\nnfq:\n  mode: accept\n  bypass-mark: 1\n  bypass-mask: 1\n"
ENGINE = "import sys; from ruleengine.cli import main; sys.exit(main())"
BACKEND = """
import sys
from capture_backends.base import FlowTuple, Verdict
from capture_backends.nfqueue import NfqBackend, NfqConfig
bypass = sys.argv[1] == "on"
backend = NfqBackend(NfqConfig(queues=(0,), bypass_mark=1, bypass_mask=1, install_rules=True))
seen = {}
empty = FlowTuple(b"", b"", 0, 0, 6)
for _ts, data, pkt_id in backend.packets():
    if not data:
        continue
    if bypass:
        key = bytes(data[12:20]) if data[0] >> 4 == 4 else bytes(data[8:40])
        n = seen[key] = seen.get(key, 0) + 1
        if n == 10:
            backend.bypass(empty, pkt_id)
    backend.verdict(pkt_id, Verdict.ACCEPT)
"""


@dataclass
class Result:
    label: str
    seconds: float
    nbytes: int
    queued: int
    cpu: float

    @property
    def mbit(self) -> float:
        return self.nbytes * 8 / self.seconds / 1e6


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_once(bypass: bool, size: int, consumer: str, workdir: Path) -> Result:
    label = "bypass on" if bypass else "bypass off"
    with kernel.netns_pair("bnfq") as net:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        if consumer == "engine":
            rules = workdir / "bench.rules"
            rules.write_text(RULE.format(bypass="bypass; " if bypass else ""))
            (workdir / "suricata.yaml").write_text(YAML)
            logdir = workdir / f"log-{'on' if bypass else 'off'}"
            logdir.mkdir(exist_ok=True)
            cmd = [sys.executable, "-c", ENGINE, "run", "-q", "0", "-S", str(rules),
                   "-c", str(workdir / "suricata.yaml"), "-l", str(logdir),
                   "--nfq-install-rules"]
        else:
            cmd = [sys.executable, "-c", BACKEND, "on" if bypass else "off"]
        log = open(workdir / "consumer.out", "wb")  # noqa: SIM115 - closed below
        proc = net.popen(net.ns_b, *cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        server = HttpServer(net, v6=False)
        try:
            if not kernel.wait_for(lambda: proc.poll() is not None or
                                   rules_installed(net, 0), timeout=60,
                                   interval=0.1) or proc.poll() is not None:
                raise SystemExit("consumer did not start:\n" +
                                 (workdir / "consumer.out").read_text())
            http_get(net, False, "/warmup?size=1000", timeout=10)
            before, cpu0 = queue_sequence(net), _cpu_seconds(proc.pid)
            t0 = time.perf_counter()
            fetch = http_get(net, False, f"/big?size={size}", timeout=600)
            seconds = time.perf_counter() - t0
            queued, cpu = queue_sequence(net) - before, _cpu_seconds(proc.pid) - cpu0
            if fetch.body_bytes != size:
                raise SystemExit(f"{label}: transfer incomplete: {fetch}")
        finally:
            server.close()
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
            log.close()
    return Result(label, seconds, size, queued, cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--consumer", choices=("engine", "backend"), default="engine")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces, NFQUEUE, iptables)", file=sys.stderr)
        return 2
    size = args.size_mb * 1000 * 1000
    with tempfile.TemporaryDirectory(prefix="bypass_nfq-") as tmp:
        results = [run_once(False, size, args.consumer, Path(tmp)),
                   run_once(True, size, args.consumer, Path(tmp))]
    print(f"{args.size_mb} MB HTTP download through NFQUEUE 0, consumer: {args.consumer}")
    print(f"{'':12s} {'seconds':>8s} {'Mbit/s':>8s} {'queued pkts':>12s} {'consumer CPU s':>15s}")
    for r in results:
        print(f"{r.label:12s} {r.seconds:8.2f} {r.mbit:8.0f} {r.queued:12d} {r.cpu:15.2f}")
    off, on = results
    print(f"ratio on/off: throughput x{on.mbit / off.mbit:.1f}, "
          f"packets queued x{on.queued / max(off.queued, 1):.5f} "
          f"({off.queued // max(on.queued, 1)}x fewer), "
          f"consumer CPU x{on.cpu / max(off.cpu, 1e-9):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
