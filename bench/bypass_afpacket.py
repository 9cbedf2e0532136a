"""Engine CPU with and without stream-depth bypass on AF_PACKET: elephant TCP flows.

Two network namespaces joined by a veth pair (offloads off: MTU-sized frames). The engine
runs for real (``ruleengine run --af-packet VETH``: one worker by default, ``--workers N``
behind the eBPF balancer; TPACKET_V3 ring, socket filter bypass) in namespace B.
``--flows`` HTTP downloads of ``--mb`` MiB each (>= 1 GiB in total by default) run at once
from A to B's server, paced by the server to ``--rate-mbit`` in total (default 1 Gbit/s, a
busy uplink; unpaced, veth runs at several Gbit/s and the whole transfer is over before
one Python worker has read its first MiB). ``stream.reassembly.depth`` is 1 MiB:

* ``bypass on``   ``stream.bypass: yes``: when a flow reaches the depth the engine inserts it
                  into the kernel table; the socket filter then counts its packets there;
* ``bypass off``  every packet of every flow reaches the engine (as far as the ring allows:
                  what does not fit is a kernel drop).

Prints per mode: transfer time and rate, engine CPU seconds while the traffic ran (from
/proc, start-up excluded) and for the whole run (rusage), packets the engine got from the
kernel (``capture.kernel_packets`` minus drops), kernel drops, packets the bypass map
counted, packets of bypassed flows that still reached user space ("leaked"; of them "fast":
those the ring reader's fast path skipped undecoded), packets the veth carried; then the
CPU ratio off/on. Needs root; traffic stays between the two namespaces, which are removed
at exit.

``--repo A --repo B`` runs the engine of each checkout in turn (each needs its ``make -C bpf``
objects), ``--passes N`` times, alternating, and prints every pass's ratio with the load
average (a noisy shared machine: compare checkouts within one run).

Usage: python bench/bypass_afpacket.py [--flows 4] [--mb 256] [--rate-mbit 1000]
                                              [--loader libbpf|bcc] [--workers 1]
                                              [--repo DIR ...] [--passes 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import kernel  # noqa: E402
from tests.integration import afp_engine as ae  # noqa: E402

PORT = 8080
RULES = ae.DATA / "bypass_http.rules"


@dataclass
class Result:
    mode: str
    transfer_s: float
    gbit_s: float
    cpu_traffic_s: float
    cpu_total_s: float
    user_pkts: int
    kernel_drops: int
    map_pkts: int
    leaked_pkts: int
    fast_path_pkts: int
    link_pkts: int
    bypassed_flows: int


def _wait_drained(engine: ae.Engine, limit: float = 120.0) -> float:
    """Wait until the engine stops using CPU (its ring is empty); returns its CPU so far."""
    deadline = time.monotonic() + limit
    last = engine.cpu_now()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = engine.cpu_now()
        if now - last < 0.02:
            return now
        last = now
    return last


def use_checkout(repo: Path) -> None:
    """Run the engine of ``repo`` (its code on PYTHONPATH, started in it) from now on."""
    ae.REPO = repo
    ae.ENGINE = [sys.executable, "-m", "ruleengine"]


def run_mode(bypass: bool, flows: int, mb: int, rate_mbit: float, loader: str, workers: int,
             workdir: Path) -> Result:
    logdir = Path(tempfile.mkdtemp(prefix="on-" if bypass else "off-", dir=workdir))
    with kernel.netns_pair("bk") as net:
        cfg = ae.write_config(workdir / f"suricata-{'on' if bypass else 'off'}.yaml",
                              stream_bypass=bypass, depth="1mb", bypassed_timeout=2,
                              threads=workers,
                              cluster_type="cluster_ebpf" if workers > 1 else "cluster_flow",
                              extra_afp={"ring-size": 65536, "block-size": 1 << 22})
        engine = ae.Engine(net, net.ns_b, net.if_b, RULES, logdir, cfg, loader=loader,
                           workers=workers)
        engine.wait_ready(net, net.ns_b, net.if_b, timeout=30)
        server = ae.HttpServer(net, net.ns_b, net.v4_b, PORT)
        rx0, tx0 = ae.link_packets(net, net.ns_b, net.if_b)
        cpu0 = engine.cpu_now()
        t0 = time.perf_counter()
        rate = int(rate_mbit * 1e6 / 8 / flows)  # bytes/s per flow, 0: unpaced
        clients = [ae.start_client(net, net.ns_a, (net.v4_b, PORT), (net.v4_a, 42000 + i),
                                   f"/elephant-{i}?size={mb << 20}&rate={rate}")
                   for i in range(flows)]
        received = sum(ae.finish_client(c, timeout=600).received for c in clients)
        transfer = time.perf_counter() - t0
        rx1, tx1 = ae.link_packets(net, net.ns_b, net.if_b)
        cpu_traffic = _wait_drained(engine) - cpu0
        time.sleep(3.5)  # bypassed flows time out: their kernel counters are read
        if engine.stop() != 0:
            print(engine.stderr(), file=sys.stderr)
        server.close()
    stats = engine.final_stats()
    return Result(
        mode="bypass on" if bypass else "bypass off",
        transfer_s=transfer, gbit_s=received * 8 / transfer / 1e9,
        cpu_traffic_s=cpu_traffic, cpu_total_s=engine.cpu_seconds,
        # PACKET_STATISTICS' tp_packets (capture.kernel_packets) includes the drops
        user_pkts=stats.get("capture.kernel_packets", 0) - stats.get("capture.kernel_drops", 0),
        kernel_drops=stats.get("capture.kernel_drops", 0),
        map_pkts=stats.get("flow_bypassed.pkts", 0),
        leaked_pkts=stats.get("flow_bypassed.local_capture_pkts", 0),
        fast_path_pkts=stats.get("capture.bypass.fast_path_pkts", 0),
        link_pkts=(rx1 - rx0) + (tx1 - tx0),
        bypassed_flows=stats.get("flow_bypassed.capture", 0),
    )


def _table(results: list[Result]) -> str:
    head = (f"{'mode':<11} {'xfer s':>7} {'Gbit/s':>7} {'CPU s':>7} {'CPU s':>7} "
            f"{'user pkts':>10} {'drops':>9} {'map pkts':>10} {'leaked':>7} {'fast':>7} "
            f"{'veth pkts':>10}"
            f" {'kflows':>6}")
    sub = f"{'':<11} {'':>7} {'':>7} {'traffic':>7} {'total':>7}"
    rows = [head, sub]
    for r in results:
        rows.append(f"{r.mode:<11} {r.transfer_s:7.2f} {r.gbit_s:7.2f} {r.cpu_traffic_s:7.2f} "
                    f"{r.cpu_total_s:7.2f} {r.user_pkts:10,} {r.kernel_drops:9,} "
                    f"{r.map_pkts:10,} {r.leaked_pkts:7,} {r.fast_path_pkts:7,} "
                    f"{r.link_pkts:10,} "
                    f"{r.bypassed_flows:6}")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flows", type=int, default=4, help="concurrent elephant flows")
    parser.add_argument("--mb", type=int, default=256, help="MiB per flow (server -> client)")
    parser.add_argument("--rate-mbit", type=float, default=1000,
                        help="total sending rate of the flows, Mbit/s (0: as fast as the veth "
                             "goes, several Gbit/s, far beyond what one Python worker reads)")
    parser.add_argument("--loader", choices=("libbpf", "bcc"), default="libbpf")
    parser.add_argument("--workers", type=int, default=1,
                        help="engine workers (more than 1: eBPF load balancer fanout)")
    parser.add_argument("--repo", action="append", type=Path,
                        help="checkout whose engine runs (repeatable; default: this one)")
    parser.add_argument("--passes", type=int, default=1, help="passes over the checkouts")
    args = parser.parse_args()
    if os.geteuid() != 0 or not kernel.commands_available(["ip"]):
        print("needs root and iproute2 (network namespaces, AF_PACKET, eBPF)", file=sys.stderr)
        return 1
    total = args.flows * args.mb
    rate = f"{args.rate_mbit:g} Mbit/s in total" if args.rate_mbit else "unpaced"
    print(f"{args.flows} TCP flows x {args.mb} MiB = {total / 1024:.2f} GiB over veth ({rate}), "
          f"stream depth 1 MiB, loader {args.loader}, {args.workers} engine worker(s)")
    repos = [r.resolve() for r in args.repo] if args.repo else [REPO]
    ratios: dict[Path, list[str]] = {r: [] for r in repos}
    with tempfile.TemporaryDirectory(prefix="bench-afp-") as tmp:
        for n in range(args.passes):
            for repo in repos:
                use_checkout(repo)
                results = [run_mode(bypass, args.flows, args.mb, args.rate_mbit, args.loader,
                                    args.workers, Path(tmp)) for bypass in (True, False)]
                on, off = results
                ratio = off.cpu_traffic_s / on.cpu_traffic_s if on.cpu_traffic_s > 0 \
                    else float("inf")
                ratio_total = off.cpu_total_s / on.cpu_total_s if on.cpu_total_s > 0 \
                    else float("inf")
                load = " ".join(f"{x:.2f}" for x in os.getloadavg())
                print(f"\npass {n + 1}, {repo} (load average {load})")
                print(_table(results))
                print(f"engine CPU off/on: {ratio:.1f}x while the traffic ran, "
                      f"{ratio_total:.1f}x for the whole run (start-up included); kernel drops "
                      f"with bypass on: {on.kernel_drops}", flush=True)
                ratios[repo].append(f"{ratio:.1f}x ({off.cpu_traffic_s:.2f}/"
                                    f"{on.cpu_traffic_s:.2f} s)")
    print("\nCPU off/on while the traffic ran (off/on CPU s), per pass:")
    for repo, rs in ratios.items():
        print(f"  {repo}: {', '.join(rs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
