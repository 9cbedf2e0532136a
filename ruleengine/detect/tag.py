"""``tag`` (``src/detect-tag.c``, ``src/detect-engine-tag.c``): after a rule with ``tag``
alerted, later packets of the session (``tag:session``) or of the host
(``tag:host,...,src|dst``) are tagged for a number of packets, bytes or seconds.

As in Suricata, every packet of the flow/host counts against the entry (the triggering
one too), the triggering packet itself is not tagged (the alert logs it: SKIPPED_FIRST),
and an entry expires once ``packets > count`` / ``bytes > count`` /
``now - first > count`` seconds. The same rule alerting again resets its entry (at most
``MATCH_LIMIT`` times). Tagged packets are no alerts: the pipeline logs them as EVE
``packet`` events (alert option ``tagged-packets``).

Session tags live in a per-flow list (``flow.detect``), host tags in a table bounded by
``max_hosts`` (least recently tagged host dropped first); each flow/host keeps at most
``max_tags`` entries (DETECT_TAG_MAX_TAGS).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from ruleengine.rules.model import Tag

DEFAULT_MAX_TAGS = 50  # DETECT_TAG_MAX_TAGS, per flow / per host
DEFAULT_MAX_HOSTS = 16384
MATCH_LIMIT = 10  # DETECT_TAG_MATCH_LIMIT


class TagEntry:
    __slots__ = ("bytes", "cnt_match", "first_ts", "gid", "packets", "sid", "skipped_first",
                 "tag")  # fmt: skip

    def __init__(self, gid: int, sid: int, tag: Tag, ts: float) -> None:
        self.gid = gid
        self.sid = sid
        self.tag = tag
        self.first_ts = int(ts)
        self.packets = 0
        self.bytes = 0
        self.cnt_match = 0
        self.skipped_first = False


def _add(entries: list[TagEntry], gid: int, sid: int, tag: Tag, ts: float,
         max_tags: int) -> None:
    for e in entries:
        if e.gid == gid and e.sid == sid:
            e.cnt_match += 1
            if e.cnt_match < MATCH_LIMIT:  # reset time and counters
                e.first_ts = int(ts)
                e.packets = 0
                e.bytes = 0
            return
    if len(entries) < max_tags:
        entries.append(TagEntry(gid, sid, tag, ts))


def _handle(entries: list[TagEntry], ts: int, nbytes: int) -> bool:
    """Count the packet against every entry; True when one of them tags it. Expired
    entries are removed."""
    tagged = False
    keep: list[TagEntry] = []
    for e in entries:
        t = e.tag
        if t.metric == "packets":
            e.packets += 1
        elif t.metric == "bytes":
            e.bytes += nbytes
        if not e.skipped_first:
            e.skipped_first = True  # the packet that set the tag: its alert logs it
            keep.append(e)
            continue
        if t.metric == "packets":
            alive = e.packets <= t.count
        elif t.metric == "bytes":
            alive = e.bytes <= t.count
        else:
            alive = ts - e.first_ts <= t.count
        if alive:
            tagged = True
            keep.append(e)
    if len(keep) != len(entries):
        entries[:] = keep
    return tagged


class TagTable:
    """Host tags (bounded) and the per-packet tag handling."""

    def __init__(self, max_hosts: int = DEFAULT_MAX_HOSTS,
                 max_tags: int = DEFAULT_MAX_TAGS) -> None:
        self.max_hosts = max(1, max_hosts)
        self.max_tags = max(1, max_tags)
        self.hosts: OrderedDict[bytes, list[TagEntry]] = OrderedDict()
        self.tagged_packets = 0
        self.hosts_evicted = 0
        self.active = False  # any tag set so far (most rule sets have none)

    def add(self, gid: int, sid: int, tags: Iterable[Tag], pkt: Any,
            session: list[TagEntry] | None) -> None:
        """A rule with ``tags`` alerted on ``pkt``; ``session`` is the flow's entry list
        (None without a flow: session tags then do nothing)."""
        ts = float(pkt.ts)
        for t in tags:
            if t.kind == "session":
                if session is not None:
                    _add(session, gid, sid, t, ts, self.max_tags)
                    self.active = True
                continue
            host = pkt.src if t.direction == "src" else pkt.dst
            entries = self.hosts.get(host)
            if entries is None:
                if len(self.hosts) >= self.max_hosts:
                    self.hosts.popitem(last=False)
                    self.hosts_evicted += 1
                entries = self.hosts[host] = []
            else:
                self.hosts.move_to_end(host)
            _add(entries, gid, sid, t, ts, self.max_tags)
            self.active = True

    def handle_packet(self, pkt: Any, session: list[TagEntry] | None) -> bool:
        """Is ``pkt`` tagged (Suricata's PKT_HAS_TAG)? Run once per packet, after the
        packet's alerts set their tags."""
        if not self.active:
            return False
        ts = int(pkt.ts)
        nbytes = int(getattr(pkt, "length", 0) or 0)
        tagged = bool(session) and _handle(session, ts, nbytes)  # type: ignore[arg-type]
        if self.hosts:
            for host in (pkt.src, pkt.dst) if pkt.src != pkt.dst else (pkt.src,):
                entries = self.hosts.get(host)
                if entries is None:
                    continue
                if _handle(entries, ts, nbytes):
                    tagged = True
                if not entries:
                    del self.hosts[host]
        if tagged:
            self.tagged_packets += 1
        return tagged
