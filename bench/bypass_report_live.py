"""A real AF_PACKET capture for ``ruleengine bypass report``: what bypass saved, per stream depth.

Two network namespaces joined by a veth pair; the engine runs for real in namespace B
(``ruleengine run --af-packet``, eBPF socket-filter bypass, ``stream.bypass: yes``, stats
every 2 s). For ``--seconds`` a traffic mix runs from A to B's HTTP server, in waves:

* small requests (20-200 KB: inspected to the end, below the depth),
* downloads of 2-40 MB (past the depth: ``stream-depth`` bypass),
* requests for ``/bypass-me`` (the ``bypass`` rule sid 9100001 takes them after the request),
* UDP bursts to port 7000 (the ``bypass`` rule sid 9100011).

The run is repeated for each ``--depth``; every run's eve.json stays in ``--out``/depth-*/ and
the report (text) and one plot comparing the depths are written there. Needs root; traffic
stays between the two namespaces, which are removed at exit.

Usage: python bench/bypass_report_live.py [--seconds 40] [--depth 256kb --depth 4mb]
                                          [--out /tmp/bypass-report]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import kernel  # noqa: E402
from tests.integration import afp_engine as ae  # noqa: E402

PORT = 8080
RULES = ae.DATA / "bypass_http.rules"


def _traffic(net: kernel.NetnsPair, seconds: float, seed: int) -> int:
    """Waves of HTTP and UDP flows for ``seconds``; returns the number of flows started."""
    rng = random.Random(seed)
    port = 41000
    started = 0
    deadline = time.monotonic() + seconds
    udp_tx = kernel.udp_socket(net, net.ns_a, net.v4_a)
    udp_rx = kernel.udp_socket(net, net.ns_b, net.v4_b, 7000)
    while time.monotonic() < deadline:
        wave = []
        for _ in range(rng.randint(3, 6)):
            size = rng.randint(20_000, 200_000)
            wave.append(("/inspect-me", size))
        for _ in range(rng.randint(1, 2)):
            wave.append(("/download", rng.randint(2, 40) * 1_000_000))
        if rng.random() < 0.6:
            wave.append(("/bypass-me", rng.randint(5, 30) * 1_000_000))
        procs = []
        for path, size in wave:
            port += 1
            # paced: a busy link rather than a veth flood (the engine is one Python worker)
            procs.append(ae.start_client(net, net.ns_a, (net.v4_b, PORT), (net.v4_a, port),
                                         f"{path}?size={size}&delay=0.3&rate=20000000"))
        started += len(procs)
        kernel.udp_exchange(udp_tx, udp_rx, 300, size=400)
        started += 1
        for proc in procs:
            ae.finish_client(proc, timeout=120)
        time.sleep(rng.uniform(0.5, 2.0))
    udp_tx.close()
    udp_rx.close()
    return started


def run_depth(depth: str, out: Path, seconds: float) -> Path:
    logdir = out / f"depth-{depth}"
    logdir.mkdir(parents=True, exist_ok=True)
    with kernel.netns_pair("bt-rep") as net:
        cfg = ae.write_config(logdir / "suricata.yaml", stream_bypass=True, depth=depth,
                              bypassed_timeout=3)
        engine = ae.Engine(net, net.ns_b, net.if_b, RULES, logdir, cfg,
                           overrides=("stats.interval=2",))
        engine.wait_ready(net, net.ns_b, net.if_b)
        server = ae.HttpServer(net, net.ns_b, net.v4_b, PORT)
        rx0, tx0 = ae.link_packets(net, net.ns_b, net.if_b)
        flows = _traffic(net, seconds, seed=14)
        rx1, tx1 = ae.link_packets(net, net.ns_b, net.if_b)
        time.sleep(5)  # bypassed flows time out (kernel counters still)
        code = engine.stop()
        server.close()
    print(f"depth {depth}: {flows} flows, veth carried {rx1 - rx0 + tx1 - tx0} packets, "
          f"engine exit {code}, CPU {engine.cpu_seconds:.1f} s", file=sys.stderr)
    return logdir / "eve.json"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--depth", action="append", default=[])
    ap.add_argument("--out", type=Path, default=Path("/tmp/bypass-report"))
    args = ap.parse_args()
    kernel.require_netns()
    depths = args.depth or ["256kb", "4mb"]
    eves = [run_depth(d, args.out, args.seconds) for d in depths]
    cmd = [sys.executable, "-m", "ruleengine", "bypass", "report", *map(str, eves),
           *[x for d in depths for x in ("--label", f"depth {d}")],
           "--plot", str(args.out / "bypass-report.png")]
    report = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    (args.out / "report.txt").write_text(report.stdout)
    print(report.stdout)
    print(report.stderr, file=sys.stderr)
    return report.returncode


if __name__ == "__main__":
    sys.exit(main())
