"""Flow hashing for pcap fan-out (``ruleengine.pcap_workers``).

The parent of an ``autofp``/``workers`` pcap run reads the file once and must send every
packet of a flow, in both directions, to the same worker: ``worker_for`` reads the tuple
from the raw frame (``ruleengine.rawflow``, no full decode) and takes its symmetric flow
hash. IP fragments of one datagram must meet in one worker (defragmentation happens
there), so a fragment goes where the first fragment of its datagram went
(``FragmentRouter``); an ICMP error goes with the flow it quotes; frames that are not IP
go to worker 0.
"""

from __future__ import annotations

from ruleengine.rawflow import flow_hash, frame_tuple


class FragmentRouter:
    """Maps ``(src, dst, proto, ip id)`` of a fragmented datagram to the worker its first
    seen fragment went to; bounded (oldest entries dropped past ``cap``)."""

    def __init__(self, cap: int = 65536) -> None:
        self.cap = cap
        self._seen: dict[bytes, int] = {}

    def route(self, key: bytes, wanted: int) -> int:
        worker = self._seen.get(key)
        if worker is None:
            if len(self._seen) >= self.cap:
                del self._seen[next(iter(self._seen))]
            worker = self._seen[key] = wanted
        return worker


def worker_for(linktype: int, data: bytes | memoryview, workers: int, frags: FragmentRouter,
               *, ports: bool = True) -> int:
    """The worker (0..workers-1) for one frame; ``ports=False`` hashes the address pair
    only (every flow between two hosts in one worker)."""
    if workers <= 1:
        return 0
    t = frame_tuple(linktype, data)
    if t is None:
        return 0
    # a later fragment has ports 0: it only goes by its own hash when it comes before its
    # datagram's first fragment (which hashes with the ports, as the reassembled packet)
    wanted = flow_hash(t, ports) % workers
    if t[5]:
        return frags.route(t[1] + t[2] + bytes((t[0],)) + t[5], wanted)
    return wanted
