"""Flow-hash shards of one pcap for ``ruleengine hunt``.

A big file is split into N tasks that each read the whole file and inspect only the frames
whose *symmetric* flow hash falls in their shard, so both directions of a flow meet in the
same task. The hash reads the raw frame (the link layer, VLAN tags, the IP header and the
transport ports) without the decoder: it must agree with the flow table only in that all
packets of one flow get one shard.

Frames with no flow to hash go to shard 0, all of them: IP fragments (the first one
carries ports, the rest do not, and the reassembled packet needs them all), non-IP frames
and link types the reader does not know. Tunnels hash by their outer header, so every
flow inside a tunnel stays with it; an ICMP error goes with the TCP/UDP flow it quotes, as
the flow table files it. The tuple is read by ``ruleengine.rawflow``, the reader the
pcap fan-out and the capture backends use too.
"""

from __future__ import annotations

from collections.abc import Callable

from ruleengine.rawflow import flow_hash, frame_tuple


def flow_key(linktype: int, frame: bytes | memoryview) -> int | None:
    """The direction-independent flow hash of a frame, or None (shard 0)."""
    t = frame_tuple(linktype, frame)
    if t is None or t[5]:  # no tuple, or a fragment
        return None
    return flow_hash(t)


def shard_of(linktype: int, frame: bytes | memoryview, count: int) -> int:
    """The shard (0 .. count-1) of a frame. ``flow_hash`` has no salt and no ``hash()``:
    every worker process, on any machine, computes the same shard."""
    if count <= 1:
        return 0
    key = flow_key(linktype, frame)
    return 0 if key is None else key % count


def shard_filter(linktype: int, index: int, count: int) -> Callable[[bytes | memoryview], bool]:
    """The pipeline's ``packet_filter`` for shard ``index`` of ``count``."""

    def mine(frame: bytes | memoryview) -> bool:
        return shard_of(linktype, frame, count) == index

    return mine
