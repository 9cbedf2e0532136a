"""Live bypass lists in a run (config ``bypass-lists:``): load, reload, count.

``capture_backends.bypass_lists`` parses, matches and keeps the eBPF list maps in step;
this module wires it into a run::

    live = from_config(config, warn)          # None when bypass-lists: is not set
    live.attach_kernel(group.list_maps())     # AF_PACKET: CIDRs and ports in the eBPF maps
    nfq_backend.bypass_lists = live.lists     # NFQ: matched on each packet read
    pipeline.bypass_lists = live              # polled between packets, SNI, counters

``poll()`` (between packets; it returns at once unless a second went by or SIGHUP came)
rereads the files when the watcher saw a change or ``request_reload()`` was called (the
SIGHUP handler: logs are reopened too), reports each bad line as ``file:line: reason``
(the rest of the file loads, the run goes on) and puts the kernel maps in step. Counters:
``bypass_list.<file>:<line>.pkts|bytes`` per entry (kernel map values on AF_PACKET,
packets accepted by the list on NFQ, the bypassed packets of the flows an ``sni`` entry
bypassed, added when each flow ends), ``bypass_list.entries``, ``bypass_list.reloads``,
``bypass_list.errors`` (bad lines of the last load) and ``bypass_list.kernel_errors``
(keys the kernel refused: map full).

With several AF_PACKET workers the parent owns the kernel maps (one writer, one reader of
their counters: ``housekeeping``); each worker has a ``worker_copy`` for SNI matching
whose counters add to the parent's.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from capture_backends.bypass_lists import BypassLists, KernelLists, ListEntry, ListWatcher

__all__ = ["LiveLists", "for_pcap", "from_config", "list_paths", "request_reload",
           "with_housekeeping"]

POLL_INTERVAL = 1.0  # seconds between two looks at the watcher
BIG_LIST_KEYS = 4096  # more kernel keys than this: their counters are read less often
MAX_REPORTED = 20  # bad lines reported per load; the rest are counted
REASON = "list"  # flow bypass reason (EVE flowvar bypass_reason, flow_bypassed.reason.list)

_PORT_PROTOCOLS = frozenset({6, 17, 132})  # TCP, UDP, SCTP: the protocols with ports
_GAUGES = frozenset({"bypass_list.entries", "bypass_list.reloads", "bypass_list.errors",
                     "bypass_list.kernel_errors"})
_reload_requests = 0  # bumped by SIGHUP; every LiveLists compares with its last value


def request_reload() -> None:
    """Reload every list at the next poll (safe in a signal handler: only a counter)."""
    global _reload_requests
    _reload_requests += 1


def list_paths(value: Any, base: Path | None, warn: Callable[[str], None]
               ) -> tuple[str, ...]:
    """The files of a ``bypass-lists:`` value (a list of paths, or one path); relative
    paths are read from ``base`` (the configuration file's directory)."""
    if value in (None, "", []):
        return ()
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            warn(f"bypass-lists: {item!r} is not a file name, ignored")
            continue
        path = Path(item.strip())
        if not path.is_absolute() and base is not None:
            path = base / path
        out.append(str(path))
    return tuple(dict.fromkeys(out))


def from_config(config: Any, warn: Callable[[str], None]) -> LiveLists | None:
    """The run's lists from ``config`` (a ``ruleengine.config.Config``), None if unset."""
    source = getattr(config, "source", None)
    paths = list_paths(config.get("bypass-lists"), Path(source).parent if source else None,
                       warn)
    return LiveLists(paths, warn) if paths else None


class LiveLists:
    """One process's lists: the matcher, the watcher, the kernel maps (if attached)."""

    def __init__(self, paths: tuple[str, ...], warn: Callable[[str], None] | None,
                 *, owner: bool = True) -> None:
        self.paths = paths
        self.lists = BypassLists()
        self.kernel: KernelLists | None = None
        self.user_space = False  # address/port entries matched on new flows (pcap runs)
        self.reloads = 0
        self.errors = 0
        self._warn = warn
        self._owner = owner  # reports the gauges (one process of a run does)
        self._watcher: ListWatcher | None = None
        self._watcher_pid = 0
        self._hups = _reload_requests
        self._next_poll = 0.0
        self._load(self.lists.reload(paths))

    def worker_copy(self, *, owner: bool = False) -> LiveLists:
        """For a forked worker: the same files, its own watcher, no kernel maps, quiet (the
        parent reports bad lines), counters without the gauges (with ``owner``: with them,
        for the one worker that reports them when the parent's counters are not merged)."""
        copy = LiveLists(self.paths, None, owner=owner)
        copy.user_space = self.user_space
        return copy

    # -- loading ------------------------------------------------------------------------
    def _load(self, errors: list[str]) -> None:
        self.errors = len(errors)
        if self._warn is None:
            return
        for message in errors[:MAX_REPORTED]:
            self._warn(message)
        if len(errors) > MAX_REPORTED:
            self._warn(f"bypass-lists: {len(errors) - MAX_REPORTED} more bad line(s) not "
                       "shown (counted as bypass_list.errors)")

    def attach_kernel(self, maps: dict[str, Any]) -> bool:
        """Keep the eBPF list maps (name -> ``BpfMap``) equal to the lists from now on.
        False when there are none (no kernel bypass): CIDR and port entries then do
        nothing on AF_PACKET."""
        if not maps:
            return False
        self.kernel = KernelLists(maps)
        self._sync()
        return True

    def _sync(self) -> None:
        if self.kernel is None:
            return
        before = self.kernel.errors
        self.kernel.sync(self.lists)
        refused = self.kernel.errors - before
        if refused and self._warn is not None:
            self._warn(f"bypass-lists: the kernel refused {refused} key(s) (list map full); "
                       "those entries are not bypassed")

    def reload(self) -> None:
        generation = self.lists.generation
        self._load(self.lists.reload())
        self.reloads += 1
        if self.lists.generation != generation:
            self._sync()

    def poll(self) -> bool:
        """Between packets: reload when a file changed or SIGHUP asked. True if reloaded."""
        hup = self._hups != _reload_requests
        now = time.monotonic()
        if now < self._next_poll and not hup:
            return False
        self._next_poll = now + POLL_INTERVAL
        self._hups = _reload_requests
        changed = self._watch().changed()
        if changed or hup:
            self.reload()
            return True
        return False

    def _watch(self) -> ListWatcher:
        # Created in the process that polls: an inotify descriptor shared across fork
        # would hand each event to only one of the processes.
        if self._watcher is None or self._watcher_pid != os.getpid():
            self._watcher = ListWatcher(self.paths)
            self._watcher_pid = os.getpid()
        return self._watcher

    # -- matching / counting ------------------------------------------------------------
    @property
    def has_sni(self) -> bool:
        return self.lists.has_sni  # asked once per flow: the matcher's tables, not a scan

    def match_server_name(self, app: Any) -> tuple[bool, ListEntry | None]:
        """(decided, entry) for a flow's app-layer state: decided once its client hello
        was parsed (``client_server_name`` is a name or ""), or at once for a parser that
        has no server name."""
        name = getattr(app, "client_server_name", "")
        if name is None:  # a TLS flow whose client hello is still to come
            return False, None
        return True, (self.lists.match_sni(name) if name else None)

    def match_flow(self, flow: Any) -> ListEntry | None:
        """The address or port entry a new flow matches, when this process matches them
        in user space (``user_space``: a pcap run), else None. Addresses first, then
        ports of TCP/UDP/SCTP, as the eBPF program and the NFQ reader decide."""
        if not self.user_space:
            return None
        lists = self.lists
        hit = lists.match_address(flow.src) or lists.match_address(flow.dst)
        if hit is None and flow.proto in _PORT_PROTOCOLS:
            hit = lists.match_port(flow.sport) or lists.match_port(flow.dport)
        return hit

    def count_flow(self, entry: ListEntry, flow: Any) -> None:
        """A flow an entry bypassed ended: its bypassed packets and bytes count for it."""
        self.lists.count(entry, flow.bypassed_pkts_toserver + flow.bypassed_pkts_toclient,
                         flow.bypassed_bytes_toserver + flow.bypassed_bytes_toclient)

    def counters(self) -> dict[str, int]:
        """Per-entry counters (kernel values read now) and, from the owner, the gauges."""
        if self.kernel is not None:
            self.kernel.read_counts(self.lists)
        out = self.lists.stats()
        if self._owner:
            out["bypass_list.entries"] = len(self.lists.entries)
            out["bypass_list.reloads"] = self.reloads
            out["bypass_list.errors"] = self.errors
            out["bypass_list.kernel_errors"] = self.kernel.errors if self.kernel else 0
        return out

    def close(self) -> None:
        if self._watcher is not None and self._watcher_pid == os.getpid():
            self._watcher.close()
        self._watcher = None


def housekeeping_interval(live: LiveLists | None, default: float = 5.0) -> float:
    return POLL_INTERVAL if live is not None else default


def with_housekeeping(sweep: Callable[[], dict[str, int]], live: LiveLists | None,
                      sweep_interval: float = 5.0, big_list_interval: float = 5.0,
                      ) -> Callable[[], dict[str, int]]:
    """The parent's housekeeping with several workers, run every ``POLL_INTERVAL`` when
    there are lists: poll them, read the kernel counters (every second, or every
    ``big_list_interval`` when the maps hold more than ``BIG_LIST_KEYS`` keys: one lookup
    per key, and a wide port range is many keys; the run's final counters may then miss
    that much) and ``sweep`` as before every ``sweep_interval``. The parent's counters are
    summed (``WorkerHub.own``), so the lists' counters are returned as increments.
    Without lists: ``sweep`` itself."""
    if live is None:
        return sweep
    last: dict[str, int] = {}
    next_sweep = time.monotonic() + sweep_interval
    next_counters = 0.0

    def run() -> dict[str, int]:
        nonlocal next_sweep, next_counters
        live._next_poll = 0.0  # called once a POLL_INTERVAL already
        reloaded = live.poll()
        out: dict[str, int] = {}
        if time.monotonic() >= next_counters or reloaded:
            big = live.kernel is not None and live.kernel.key_count > BIG_LIST_KEYS
            next_counters = time.monotonic() + (big_list_interval if big else 0.0)
            out = _increments(live.counters(), last)
        if time.monotonic() >= next_sweep:
            next_sweep = time.monotonic() + sweep_interval
            out.update(sweep())
        return out

    return run


def _increments(counters: dict[str, int], last: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, value in counters.items():
        old = last.get(name, 0)
        # an entry's counter that went down was reset (its entry replaced): count it
        # anew; the gauges simply move
        reset = value < old and name not in _GAUGES
        out[name] = value if reset else value - old
        last[name] = value
    return out


def for_af_packet(config: Any, group: Any, warn: Callable[[str], None]) -> LiveLists | None:
    """The lists of an AF_PACKET run, their CIDRs and ports in ``group``'s eBPF maps."""
    live = from_config(config, warn)
    if live is None:
        return None
    if not live.attach_kernel(group.list_maps()) and any(
            e.kind != "sni" for e in live.lists.entries):
        warn("bypass-lists: address and port entries need the eBPF bypass program "
             "(af-packet: bypass: yes, with this project's filter or XDP program); only "
             "sni entries apply")
    return live


def for_nfq(config: Any, backend: Any, warn: Callable[[str], None]) -> LiveLists | None:
    """The lists of an NFQ run: the backend matches each packet it reads."""
    live = from_config(config, warn)
    if live is None:
        return None
    backend.bypass_lists = live.lists
    if not backend.config.bypass_mask:
        warn("bypass-lists: nfq.bypass-mark/bypass-mask are not set: listed packets are "
             "accepted without a mark, so the rest of their connection is still queued")
    return live


def for_pcap(config: Any, warn: Callable[[str], None]) -> LiveLists | None:
    """The lists of a pcap run (``-r``): no kernel, so address and port entries are matched
    on each new flow in user space; a listed flow is bypassed locally (tracked, counted in
    ``flow_bypassed.local_*``, never inspected: reason ``list``), as Suricata bypasses a
    flow in a pcap run. ``sni`` entries as in a live run."""
    live = from_config(config, warn)
    if live is not None:
        live.user_space = True
    return live
