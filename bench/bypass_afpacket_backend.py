"""AF_PACKET capture cost with and without eBPF bypass, on the real kernel.

Two network namespaces joined by a veth pair (offloads off, MTU-sized frames). A bulk TCP
transfer runs between them in separate processes while this process captures on the
receiving side with one AfPacketBackend worker (TPACKET_V3 ring):

* ``capture``  every packet reaches user space (the loop only parses the 5-tuple);
* ``bypass``   the flow is inserted into the kernel table after its first 10 packets,
               as the engine does when a ``bypass`` rule matches; the socket filter then
               counts the flow in the map instead.

XDP bypass is not benchmarked here: XDP_DROP drops for the whole host, so on this setup
(capturing on an endpoint, not a mirror port) it would cut the transfer itself.

Prints, per mode: transfer rate, packets captured, kernel packets/drops (PACKET_STATISTICS),
packets/bytes counted by the bypass map, and the CPU time the capture process used.
Needs root. Traffic stays between the two namespaces; everything is removed at exit.

Usage: python bench/bypass_afpacket_backend.py [--mb 200] [--loader libbpf|bcc]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import struct
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from capture_backends.af_packet import AfPacketConfig, AfPacketGroup  # noqa: E402
from capture_backends.base import FlowTuple  # noqa: E402
from tests import kernel  # noqa: E402

SERVER = """
import socket, sys
srv = socket.create_server((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
conn, _ = srv.accept()
total = 0
while True:
    data = conn.recv(1 << 20)
    if not data:
        break
    total += len(data)
print(total, flush=True)
"""

CLIENT = """
import socket, sys, time
size = int(sys.argv[4]) << 20
c = socket.socket()
c.bind((sys.argv[3], int(sys.argv[5])))
c.connect((sys.argv[1], int(sys.argv[2])))
chunk = b"x" * (1 << 16)
start = time.perf_counter()
sent = 0
while sent < size:
    c.sendall(chunk)
    sent += len(chunk)
c.shutdown(socket.SHUT_WR)
c.recv(1)
print(time.perf_counter() - start, flush=True)
"""

PORT, CLIENT_PORT = 9100, 45000
BYPASS_AFTER = 10
TIME_LIMIT_S = 120


def run_mode(mode: str, mb: int, loader: str) -> dict[str, float]:
    with kernel.netns_pair("bk") as net:
        config = AfPacketConfig(interface=net.if_b, bypass=True, loader=loader,
                                ring_size=32768, block_size=1 << 20)
        with net.entered(net.ns_b):
            group = AfPacketGroup(config)
            backend = group.open_worker(0)
        flow = FlowTuple(socket.inet_aton(net.v4_a), socket.inet_aton(net.v4_b),
                         CLIENT_PORT, PORT, 6)
        server = net.popen(net.ns_b, sys.executable, "-c", SERVER, net.v4_b, str(PORT),
                           stdout=-1)
        assert server.stdout is not None
        server.stdout.readline()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        client = net.popen(net.ns_a, sys.executable, "-c", CLIENT, net.v4_b, str(PORT),
                           net.v4_a, str(mb), str(CLIENT_PORT), stdout=-1)
        captured = flow_packets = 0
        bypassed = False
        unpack_ports = struct.Struct("!HH").unpack_from
        deadline = time.monotonic() + TIME_LIMIT_S
        while client.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"transfer did not finish in {TIME_LIMIT_S} s")
            for _ts, data, _id in backend.read_batch(50):
                captured += 1
                if mode == "bypass" and not bypassed and len(data) > 38 and \
                        data[12:14] == b"\x08\x00" and data[23] == 6:
                    sport, _dport = unpack_ports(data, 34)
                    if sport in (CLIENT_PORT, PORT):
                        flow_packets += 1
                        if flow_packets >= BYPASS_AFTER:
                            bypassed = backend.bypass(flow, 0)
        while backend.read_batch(50):
            pass
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        assert client.stdout is not None
        transfer_s = float(client.stdout.read().strip() or "nan")
        stats = backend.stats()
        counters = backend.bypassed_flow_counters(flow)
        backend.close()
        group.close()
        server.kill()
        return {
            "MB": mb, "transfer_s": transfer_s, "Mbit/s": mb * 8 * 1.048576 / transfer_s,
            "captured": captured, "kernel_packets": stats.kernel_packets,
            "kernel_drops": stats.kernel_drops,
            "map_pkts": (counters.pkts_toserver + counters.pkts_toclient) if counters else 0,
            "map_MB": ((counters.bytes_toserver + counters.bytes_toclient) / 1e6
                       if counters else 0.0),
            "capture_cpu_s": cpu, "wall_s": wall,
            "cpu_us_per_captured_pkt": cpu / captured * 1e6 if captured else 0.0,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=200, help="bytes to transfer (MiB)")
    parser.add_argument("--loader", choices=("libbpf", "bcc"), default="libbpf")
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C so the namespaces are always removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    if not kernel.commands_available(["ip"]):
        print("needs iproute2", file=sys.stderr)
        return 1
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 1
    print(f"bulk TCP {args.mb} MiB over veth, loader={args.loader}, socket filter bypass")
    for mode in ("capture", "bypass"):
        result = run_mode(mode, args.mb, args.loader)
        cells = ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in result.items())
        print(f"{mode:8s} {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
