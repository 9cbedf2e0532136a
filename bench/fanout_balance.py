"""Balance of the pcap fan-out's flow hash: flows and packets per worker, per checkout.

    .venv/bin/python bench/fanout_balance.py --repo /work/main --repo . [--workers 2,3,4,8]
                                             [--pcap FILE ...]

For each ``--repo`` a child process imports that checkout's ``pcap_fanout.worker_for``
and routes every frame of each pcap (default: the cached bench pcaps in
``/work/main/bench/.cache``) as a ``--runmode autofp`` parent does; this process counts,
per worker, the packets and the distinct flows (by this checkout's ``rawflow`` tuple, both
directions as one). Printed per pcap and worker count: the busiest worker's share against
an even split (``max/mean``: 1.00 is perfect; the busiest worker bounds the speed-up) and
the per-worker counts. Also the parent's routing cost per packet (child CPU / packets).
"""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ruleengine.rawflow import frame_tuple  # noqa: E402

DEFAULT_PCAPS = [Path("/work/main/bench/.cache/nginx-3000-7.pcap"),
                 Path("/work/main/bench/.cache/realistic-200.pcap")]

CHILD = r"""
import json, struct, sys, time
sys.path.insert(0, sys.argv[1])
from ruleengine.pcap_fanout import FragmentRouter, worker_for
path, counts = sys.argv[2], [int(n) for n in sys.argv[3].split(",")]
data = open(path, "rb").read()
endian = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
linktype = struct.unpack_from(endian + "I", data, 20)[0]
frames, pos = [], 24
while pos + 16 <= len(data):
    incl = struct.unpack_from(endian + "I", data, pos + 8)[0]
    frames.append(data[pos + 16:pos + 16 + incl])
    pos += 16 + incl
out = {}
cpu = 0.0
for n in counts:
    frags = FragmentRouter()
    t0 = time.process_time()
    out[n] = [worker_for(linktype, f, n, frags) for f in frames]
    cpu += time.process_time() - t0
us = cpu / len(counts) / len(frames) * 1e6
print(json.dumps({"linktype": linktype, "routes": out, "us": us}))
"""


def frames_of(path: Path) -> Iterator[bytes]:
    data = path.read_bytes()
    endian = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    pos = 24
    while pos + 16 <= len(data):
        incl = struct.unpack_from(endian + "I", data, pos + 8)[0]
        yield data[pos + 16:pos + 16 + incl]
        pos += 16 + incl


def flow_ids(path: Path, linktype: int) -> list[bytes | None]:
    ids: list[bytes | None] = []
    for frame in frames_of(path):
        t = frame_tuple(linktype, frame)
        if t is None:
            ids.append(None)
            continue
        a, b = (t[1], t[3]), (t[2], t[4])
        lo, hi = (a, b) if a <= b else (b, a)
        ids.append(bytes((t[0],)) + lo[0] + hi[0] + struct.pack("!HH", lo[1], hi[1]) + t[5])
    return ids


def spread(values: list[int], n: int) -> str:
    mean = sum(values) / n
    return f"max/mean {max(values) / mean:.3f}  {values}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", action="append", required=True)
    parser.add_argument("--workers", default="2,3,4,8")
    parser.add_argument("--pcap", action="append", type=Path)
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    for pcap in args.pcap or DEFAULT_PCAPS:
        ids: list[bytes | None] | None = None
        for repo in args.repo:
            proc = subprocess.run([sys.executable, "-c", CHILD, repo, str(pcap), args.workers],
                                  capture_output=True, text=True, check=True)
            result = json.loads(proc.stdout)
            if ids is None:
                ids = flow_ids(pcap, result["linktype"])
                print(f"{pcap.name}: {len(ids)} packets, "
                      f"{len({i for i in ids if i is not None})} flows")
            print(f"  {repo}: routing {result['us']:.2f} us/packet")
            for n in counts:
                routes = result["routes"][str(n)]
                packets = Counter(routes)
                flows: list[set[bytes]] = [set() for _ in range(n)]
                for flow, worker in zip(ids, routes, strict=True):
                    if flow is not None:
                        flows[worker].add(flow)
                split = sum(len(f) for f in flows) - len({f for s in flows for f in s})
                print(f"    {n} workers  packets {spread([packets[w] for w in range(n)], n)}")
                print(f"               flows   {spread([len(f) for f in flows], n)}"
                      + (f"  ({split} flows split!)" if split else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
