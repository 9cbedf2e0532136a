"""AF_PACKET live capture: TPACKET_V3 rings, fanout workers, eBPF bypass and load balancing.

Process model (like Suricata's workers runmode)::

    group = AfPacketGroup(config)           # parent: load eBPF programs, create flow tables
    # fork N workers; in worker i:
    backend = group.open_worker(i)          # socket + ring + socket filter, joins the fanout group
    for ts, frame, _ in backend.packets():  # returns after backend.close()
        ...
        backend.bypass(flow, 0)             # the kernel stops delivering the flow
    group.close()                           # parent, at exit

Bypass: the socket filter (or the XDP program) looks every packet's canonical 5-tuple (plus
VLAN ids) up in a BPF hash map; a hit is counted in the map, per direction, and not delivered.
One entry covers both directions. Inserting into a full map fails: ``bypass()`` then returns
False and the engine bypasses locally. Packets of a bypassed flow that were already in the
ring when the entry went in are recognised by their flow key while the block is read, counted
(``fast_path_counters``: they reached user space) and never copied out of the ring
(``capture_backends.bypassed_flows``): a flood of them costs the worker a few slices per
packet, not a decode. Packets stamped after the limit the engine sets (``fast_path_until``:
the kernel has not counted a packet of the flow for a while) are delivered, so the engine
sees that the kernel is not honouring the bypass and downgrades it to a local one.

Cleanup: XDP is attached through a BPF link and, unless ``pinned-maps: yes``, nothing is
pinned, so the kernel removes every program and map when the last process holding them exits,
even after SIGKILL; a new start after a crash finds a clean interface. With pinned maps the
flow tables stay (``capture_backends.ebpf.pins``): the next start reuses them, so flows
bypassed before a restart stay bypassed, and its first worker hands their entries to the
engine (``adopted_bypassed``), which deletes each once the kernel stopped counting for it.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import errno
import os
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from capture_backends import ebpf
from capture_backends.base import (
    LINKTYPE_ETHERNET,
    BackendUnavailable,
    BaseBackend,
    BypassCounters,
    Capability,
    CaptureStats,
    FlowTuple,
    RawPacket,
)
from capture_backends.bypassed_flows import BypassedFlows, RingPacket
from capture_backends.ebpf import layout, pins, syscall
from capture_backends.tpacket import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_BLOCK_TIMEOUT_MS,
    DEFAULT_FRAME_SIZE,
    ETH_P_ALL,
    PACKET_FANOUT,
    PACKET_FANOUT_DATA,
    SO_ATTACH_BPF,
    SOL_PACKET,
    TpacketV3Ring,
    read_stats,
    set_promiscuous,
)
from ruleengine.conf_values import parse_int, parse_size, parse_switch

# PACKET_FANOUT modes (linux/if_packet.h) by Suricata cluster-type name
CLUSTER_TYPES: Mapping[str, int] = {
    "cluster_flow": 0,  # PACKET_FANOUT_HASH: the kernel's flow hash (symmetric)
    "cluster_round_robin": 1,  # PACKET_FANOUT_LB
    "cluster_cpu": 2,  # PACKET_FANOUT_CPU
    "cluster_qm": 5,  # PACKET_FANOUT_QM: by RX queue
    "cluster_ebpf": 7,  # PACKET_FANOUT_EBPF: our symmetric load balancer
}
PACKET_FANOUT_FLAG_ROLLOVER = 0x1000
PACKET_FANOUT_FLAG_DEFRAG = 0x8000

XDP_MODES: Mapping[str, int] = {
    "soft": syscall.XDP_FLAGS_SKB_MODE,  # generic XDP: works on every device
    "driver": syscall.XDP_FLAGS_DRV_MODE,  # native: the driver runs it (veth does)
    "hw": syscall.XDP_FLAGS_HW_MODE,  # offloaded to the NIC
    "none": 0,  # let the kernel choose (native when supported)
}

POLL_TIMEOUT_MS = 100  # how soon packets() notices close() when no traffic arrives
BYPASS_PROTOCOLS = frozenset({6, 17})  # TCP, UDP
_MAP_FULL_ERRNOS = frozenset({errno.E2BIG, errno.ENOMEM, errno.EAGAIN, errno.ENOSPC})

# af-packet keys we implement, and Suricata keys we accept without acting on them
_KNOWN_KEYS = frozenset({
    "interface", "threads", "cluster-id", "cluster-type", "bypass", "ebpf-filter-file",
    "ebpf-lb-file", "xdp-filter-file", "xdp-mode", "ring-size", "block-size", "block-timeout",
    "use-percpu-hash", "ebpf-loader", "ebpf-map-entries", "defrag", "rollover",
    "disable-promisc", "frame-size", "pinned-maps", "pinned-maps-name",
    "pinned-maps-dir",  # ruleengine: the bpffs directory (Suricata: /sys/fs/bpf)
})
_ACCEPTED_SURICATA_KEYS = frozenset({
    "use-mmap", "tpacket-v3", "mmap-locked", "use-emergency-flush", "checksum-checks",
    "buffer-size", "pin-maps", "xdp-cpu-redirect",
    "copy-mode", "copy-iface", "bpf-filter", "snaplen",
})


@dataclass(frozen=True)
class AfPacketConfig:
    """One interface's capture settings (the YAML ``af-packet:`` entry).

    ``ring_size`` is in frames of ``frame_size`` bytes per worker, as Suricata's ``ring-size``
    (default 2048 x 2048 B = 4 MiB); the TPACKET_V3 ring is cut into blocks of ``block_size``
    bytes that the kernel hands over when full or after ``block_timeout_ms``.
    Program files: ``.o`` objects for libbpf; BCC compiles the ``.c`` beside them.
    """

    interface: str
    threads: int = 1
    cluster_id: int = 99
    cluster_type: str = "cluster_flow"
    bypass: bool = False
    ebpf_filter_file: str | None = None
    ebpf_lb_file: str | None = None
    xdp_filter_file: str | None = None
    xdp_mode: str = "soft"
    ring_size: int = 2048
    block_size: int = DEFAULT_BLOCK_SIZE
    block_timeout_ms: int = DEFAULT_BLOCK_TIMEOUT_MS
    frame_size: int = DEFAULT_FRAME_SIZE
    use_percpu_hash: bool = False
    loader: str = "libbpf"
    map_entries: int = 32768
    defrag: bool = True
    rollover: bool = False
    promiscuous: bool = True
    vlan_in_key: bool = True  # suricata.yaml vlan.use-for-tracking (a global, not af-packet:)
    pinned_maps: bool = False
    pinned_maps_name: str | None = None  # directory under pinned_maps_dir
    pinned_maps_dir: str = "/sys/fs/bpf"

    def pin_dir(self) -> Path | None:
        """Where the flow tables are pinned (``capture_backends.ebpf.pins``), or None."""
        if not self.pinned_maps:
            return None
        return Path(self.pinned_maps_dir) / (self.pinned_maps_name
                                             or f"ruleengine-{self.interface}")

    def with_loader(self, loader: str) -> AfPacketConfig:
        """The same config with another eBPF loader ("libbpf" or "bcc"; e.g. from a CLI flag).
        ValueError for an unknown name."""
        if loader not in ebpf.LOADERS:
            raise ValueError(f"unknown eBPF loader {loader!r} (one of {', '.join(ebpf.LOADERS)})")
        return dataclasses.replace(self, loader=loader)

    def with_vlan_tracking(self, use_vlan: bool) -> AfPacketConfig:
        """Apply ``vlan.use-for-tracking``: with False, VLAN ids are left out of the kernel
        flow keys and of the eBPF load-balancer hash, as the engine's flow table does."""
        return dataclasses.replace(self, vlan_in_key=use_vlan)

    # -- derived --
    def filter_path(self) -> Path | None:
        """Socket filter to attach: the configured one, else the bundled bypass filter when
        bypass is on and no XDP program does it."""
        if self.ebpf_filter_file:
            return _resolve_program(self.ebpf_filter_file)
        if self.bypass and not self.xdp_filter_file:
            return ebpf.bundled_path(ebpf.SOCKET_FILTER_OBJECT)
        return None

    def lb_path(self) -> Path | None:
        if self.cluster_type != "cluster_ebpf":
            return None
        if self.ebpf_lb_file:
            return _resolve_program(self.ebpf_lb_file)
        return ebpf.bundled_path(ebpf.LB_OBJECT)

    def xdp_path(self) -> Path | None:
        return _resolve_program(self.xdp_filter_file) if self.xdp_filter_file else None

    @classmethod
    def from_yaml(cls, af_packet_section: object, iface: str
                  ) -> tuple[AfPacketConfig, list[str]]:
        """Config for ``iface`` from Suricata's list-of-interfaces ``af-packet:`` section.

        The entry whose ``interface`` is ``iface`` wins; keys it lacks come from the
        ``interface: default`` entry. Returns the config and warnings (unknown keys, bad
        values: each falls back to its default). Never raises on bad input."""
        warnings: list[str] = []
        entries = _entries(af_packet_section, warnings)
        default = next((e for e in entries if str(e.get("interface")) == "default"), {})
        own = next((e for e in entries if str(e.get("interface")) == iface), None)
        if own is None and not default and entries:
            warnings.append(f"af-packet: no entry for interface {iface!r} and no "
                            f"'interface: default' entry, using built-in defaults")
        merged: dict[str, Any] = {**default, **(own or {})}
        for key in merged:
            if key not in _KNOWN_KEYS and key not in _ACCEPTED_SURICATA_KEYS:
                warnings.append(f"af-packet: unknown key {key!r} ignored")
        return _build_config(iface, merged, warnings), warnings


def _resolve_program(name: str) -> Path:
    """A program file path; a bare name that does not exist is looked up among the bundled
    programs (``xdp-filter-file: xdp_filter.o`` selects ours)."""
    p = Path(name)
    if p.exists() or p.is_absolute():
        return p
    bundled = ebpf.bundled_path(p.name)
    return bundled if bundled.exists() or bundled.with_suffix(".c").exists() else p


def _entries(section: object, warnings: list[str]) -> list[Mapping[str, Any]]:
    if section is None:
        return []
    if isinstance(section, Mapping):
        section = [section]
    if not isinstance(section, list):
        warnings.append("af-packet: expected a list of interface entries")
        return []
    out: list[Mapping[str, Any]] = []
    for item in section:
        if isinstance(item, Mapping):
            out.append(item)
        else:
            warnings.append(f"af-packet: entry {item!r} is not a mapping, ignored")
    return out


def _as_bool(value: object, key: str, default: bool, warnings: list[str]) -> bool:
    flag = parse_switch(value)
    if flag is None:
        warnings.append(f"af-packet: {key}: {value!r} is not a boolean, using {default}")
        return default
    return flag


def _as_int(value: object, key: str, default: int, lo: int, hi: int,
            warnings: list[str]) -> int:
    # a size ("4mb") or a plain / hex integer
    number = parse_size(value) if isinstance(value, str) else None
    if number is None:
        number = parse_int(value)
    if number is None:
        warnings.append(f"af-packet: {key}: {value!r} is not a number, using {default}")
        return default
    if not lo <= number <= hi:
        warnings.append(f"af-packet: {key}: {number} out of range [{lo}, {hi}], using {default}")
        return default
    return number


def _build_config(iface: str, raw: Mapping[str, Any], warnings: list[str]) -> AfPacketConfig:
    d = AfPacketConfig(interface=iface)
    kw: dict[str, Any] = {"interface": iface}
    threads = raw.get("threads")
    if threads is not None:
        if str(threads).strip().lower() == "auto":
            kw["threads"] = os.cpu_count() or 1
        else:
            kw["threads"] = _as_int(threads, "threads", d.threads, 1, 1024, warnings)
    if "cluster-id" in raw:
        kw["cluster_id"] = _as_int(raw["cluster-id"], "cluster-id", d.cluster_id, 0, 0xFFFF,
                                   warnings)
    if "cluster-type" in raw:
        ctype = str(raw["cluster-type"]).strip()
        if ctype in CLUSTER_TYPES:
            kw["cluster_type"] = ctype
        else:
            warnings.append(f"af-packet: cluster-type {ctype!r} unsupported "
                            f"(one of {', '.join(CLUSTER_TYPES)}), using {d.cluster_type}")
    for key, attr in (("bypass", "bypass"), ("use-percpu-hash", "use_percpu_hash"),
                      ("defrag", "defrag"), ("rollover", "rollover"),
                      ("pinned-maps", "pinned_maps")):
        if key in raw:
            kw[attr] = _as_bool(raw[key], key, getattr(d, attr), warnings)
    if "disable-promisc" in raw:
        kw["promiscuous"] = not _as_bool(raw["disable-promisc"], "disable-promisc", False,
                                         warnings)
    for key, attr in (("ebpf-filter-file", "ebpf_filter_file"), ("ebpf-lb-file", "ebpf_lb_file"),
                      ("xdp-filter-file", "xdp_filter_file"),
                      ("pinned-maps-name", "pinned_maps_name"),
                      ("pinned-maps-dir", "pinned_maps_dir")):
        value = raw.get(key)
        if value not in (None, ""):
            kw[attr] = str(value)
    name = kw.get("pinned_maps_name")
    if name is not None and (name in (".", "..") or "/" in name):
        warnings.append(f"af-packet: pinned-maps-name {name!r} must be a plain name, "
                        f"using ruleengine-{iface}")
        del kw["pinned_maps_name"]
    if "xdp-mode" in raw:
        mode = str(raw["xdp-mode"]).strip().lower()
        if mode in XDP_MODES:
            kw["xdp_mode"] = mode
        else:
            warnings.append(f"af-packet: xdp-mode {mode!r} unsupported "
                            f"(one of {', '.join(XDP_MODES)}), using {d.xdp_mode}")
    for key, attr, lo, hi in (("ring-size", "ring_size", 16, 1 << 22),
                              ("block-size", "block_size", 4096, 1 << 30),
                              ("block-timeout", "block_timeout_ms", 1, 60_000),
                              ("frame-size", "frame_size", 64, 1 << 20),
                              ("ebpf-map-entries", "map_entries", 1, 1 << 26)):
        if key in raw:
            kw[attr] = _as_int(raw[key], key, getattr(d, attr), lo, hi, warnings)
    if "ebpf-loader" in raw:
        loader = str(raw["ebpf-loader"]).strip().lower()
        if loader in ebpf.LOADERS:
            kw["loader"] = loader
        else:
            warnings.append(f"af-packet: ebpf-loader {loader!r} unknown "
                            f"(one of {', '.join(ebpf.LOADERS)}), using {d.loader}")
    for key, bad in (("use-mmap", False), ("tpacket-v3", False)):
        if key in raw and _as_bool(raw[key], key, True, warnings) is bad:
            warnings.append(f"af-packet: {key}: no is not supported, a TPACKET_V3 ring is used")
    if "copy-mode" in raw and str(raw["copy-mode"]).strip().lower() not in ("", "none"):
        warnings.append("af-packet: copy-mode (IPS/TAP) is not supported, capturing only")
    if raw.get("bpf-filter"):
        warnings.append("af-packet: bpf-filter (cBPF expression) is not supported, ignored")
    return dataclasses.replace(d, **kw)


class _BypassTables:
    """The v4/v6 flow tables the bypass program uses, with the layout checked."""

    def __init__(self, obj: ebpf.BpfObject, source: Path, vlan_in_key: bool = True) -> None:
        self.vlan_in_key = vlan_in_key
        self.obj = obj  # the program that consults the tables (and the bypass list maps)
        maps: dict[str, syscall.BpfMap] = {}
        for name, key_layout in ((layout.MAP_V4, layout.KEY_V4), (layout.MAP_V6, layout.KEY_V6)):
            fd = obj.map_fd(name)
            if fd is None:
                raise BackendUnavailable(f"af-packet: {source} has no map {name}: not a bypass "
                                         f"filter of this project")
            table = syscall.BpfMap(fd)
            if table.key_size != key_layout.size or table.info.value_size != layout.COUNTERS.size:
                raise BackendUnavailable(
                    f"af-packet: map {name} in {source} has key/value sizes "
                    f"{table.key_size}/{table.info.value_size}, expected "
                    f"{key_layout.size}/{layout.COUNTERS.size} (bpf/flow_keys.h)")
            maps[name] = table
        self.v4 = maps[layout.MAP_V4]
        self.v6 = maps[layout.MAP_V6]

    def table(self, flow: FlowTuple) -> syscall.BpfMap:
        return self.v4 if len(flow.src) == 4 else self.v6

    def insert(self, flow: FlowTuple) -> int:
        """Add ``flow`` (zeroed counters, only if absent); 0 or the errno (EEXIST: it was
        already there, E2BIG: the table is full). ValueError for malformed addresses."""
        key, _reverse = layout.canonical_key(flow, self.vlan_in_key)
        # last_ns starts at the insert time (same clock as bpf_ktime_get_ns) so that an
        # entry whose flow never sends again still ages out in expire_idle()
        value = layout.COUNTERS.pack(0, 0, 0, 0, time.clock_gettime_ns(time.CLOCK_MONOTONIC))
        return self.table(flow).update(key, value, syscall.BPF_NOEXIST)

    def counters(self, flow: FlowTuple) -> BypassCounters | None:
        """Per-direction counters, ``flow.src`` read as the client (toserver = its packets)."""
        key, reverse = layout.canonical_key(flow, self.vlan_in_key)
        table = self.table(flow)
        raw = table.lookup(key)
        if raw is None:
            return None
        c = layout.sum_counters(raw, table.info.value_size)
        if reverse:  # flow.src is endpoint b
            return BypassCounters(c.pkts_ba, c.bytes_ba, c.pkts_ab, c.bytes_ab)
        return BypassCounters(c.pkts_ab, c.bytes_ab, c.pkts_ba, c.bytes_ba)


class AfPacketGroup:
    """Everything shared by the workers of one interface: loaded programs and flow tables.
    Create it in the parent before forking; call ``open_worker`` in each worker."""

    def __init__(self, config: AfPacketConfig) -> None:
        self.config = config
        self.owner_pid = os.getpid()
        self._objects: list[ebpf.BpfObject] = []
        self._xdp_link_fd: int | None = None
        self._xdp_prog_fd: int | None = None  # kept to attach it again to a new device
        self._xdp_ifindex = 0  # the device the link is on
        self._closed = False
        self.filter_fd: int | None = None
        self.lb_fd: int | None = None
        self.tables: _BypassTables | None = None
        self.notices: list[str] = []  # for the start-up log (pinned maps)
        self.reused_pins = False  # the tables are those a previous run pinned
        _check_host(config)
        try:
            self.ifindex = socket.if_nametoindex(config.interface)
        except OSError:
            raise BackendUnavailable(
                f"af-packet: no such interface {config.interface!r}") from None
        self.adopted: list[FlowTuple] = []
        try:
            stamp = self._check_pin_stamp()
            self._load_programs()
            self._write_pin_stamp(stamp)
            if self.reused_pins:
                self.adopted = [flow for flow, _ in self.bypassed_flows()]
                self.notices.append(f"pinned maps {config.pin_dir()} reused: "
                                    f"{len(self.adopted)} flow(s) bypassed before this run")
        except BackendUnavailable:
            self.close()
            raise
        except (OSError, KeyError, ValueError) as exc:
            self.close()
            raise BackendUnavailable(f"af-packet: {_describe(exc)}") from exc
        atexit.register(self.close)

    def _check_pin_stamp(self) -> pins.PinStamp | None:
        """Before any program is loaded: pinned tables another program, layout or key option
        wrote are removed (one notice), so none of them is reused. The stamp of this run, or
        None when nothing is pinned."""
        c = self.config
        pin_dir = c.pin_dir()
        if pin_dir is None or not c.bypass or c.loader != "libbpf":
            return None
        notice = pins.ensure_bpffs(pin_dir.parent)
        if notice:
            self.notices.append(notice)
        programs = [p for p in (c.filter_path(), c.xdp_path()) if p is not None]
        stamp = pins.PinStamp.for_programs(programs, vlan_in_key=c.vlan_in_key,
                                           percpu=c.use_percpu_hash, map_entries=c.map_entries)
        notice = pins.check_stamp(pin_dir, stamp, (layout.MAP_V4, layout.MAP_V6))
        if notice:
            self.notices.append(notice)
        return stamp

    def _write_pin_stamp(self, stamp: pins.PinStamp | None) -> None:
        pin_dir = self.config.pin_dir()
        if stamp is not None and pin_dir is not None and pin_dir.is_dir():
            pins.write_stamp(pin_dir, stamp)

    def _open(self, path: Path, kind: str, with_tables: bool) -> ebpf.BpfObject:
        c = self.config
        tables = (layout.MAP_V4, layout.MAP_V6) if with_tables else ()
        pin_dir = c.pin_dir() if with_tables and c.bypass else None
        if pin_dir is not None:
            notice = pins.ensure_bpffs(pin_dir.parent)
            if notice:
                self.notices.append(notice)
        obj = ebpf.open_object(c.loader, path, kind=kind, tables=tables,
                               map_entries=c.map_entries, percpu=c.use_percpu_hash,
                               vlan_in_key=c.vlan_in_key, pin_dir=pin_dir)
        self._objects.append(obj)
        self.notices += getattr(obj, "notices", [])
        if getattr(obj, "reused", []):
            self.reused_pins = True
        return obj

    def _load_programs(self) -> None:
        c = self.config
        filter_path, xdp_path, lb_path = c.filter_path(), c.xdp_path(), c.lb_path()
        if filter_path is not None:
            obj = self._open(filter_path, "socket", with_tables=True)
            self.filter_fd = obj.program_fd(_program_name(c, filter_path,
                                                          ebpf.SOCKET_FILTER_PROGRAM))
            if c.bypass and xdp_path is None:
                self.tables = _BypassTables(obj, filter_path, c.vlan_in_key)
        if xdp_path is not None:
            obj = self._open(xdp_path, "xdp", with_tables=True)
            prog = obj.program_fd(_program_name(c, xdp_path, ebpf.XDP_FILTER_PROGRAM))
            if c.bypass:
                self.tables = _BypassTables(obj, xdp_path, c.vlan_in_key)
            self._xdp_link_fd = syscall.xdp_link_create(prog, self.ifindex,
                                                        XDP_MODES[c.xdp_mode])
            self._xdp_prog_fd, self._xdp_ifindex = prog, self.ifindex
        if lb_path is not None:
            obj = self._open(lb_path, "socket", with_tables=False)
            self.lb_fd = obj.program_fd(_program_name(c, lb_path, ebpf.LB_PROGRAM))

    @property
    def fanout_arg(self) -> int:
        c = self.config
        flags = 0
        # Defrag (IPv4 only, in the kernel) before the hash so that every fragment of a
        # datagram and the flow's other packets hash alike; Suricata sets it for cluster_flow,
        # we also do for cluster_ebpf (our LB would otherwise hash fragments by address).
        if c.cluster_type in ("cluster_flow", "cluster_ebpf") and c.defrag:
            flags |= PACKET_FANOUT_FLAG_DEFRAG
        if c.rollover:
            flags |= PACKET_FANOUT_FLAG_ROLLOVER
        return (c.cluster_id & 0xFFFF) | ((CLUSTER_TYPES[c.cluster_type] | flags) << 16)

    def summary(self) -> str:
        """One line for the start-up log: what was loaded and how packets are spread."""
        c = self.config
        parts = [f"af-packet on {c.interface}: {c.threads} worker(s), {c.cluster_type}"
                 f" (cluster-id {c.cluster_id})"]
        if self.lb_fd is not None:
            parts.append(f"eBPF load balancer {c.lb_path()}")
        if self._xdp_link_fd is not None:
            parts.append(f"XDP {c.xdp_mode} mode {c.xdp_path()}")
        if self.filter_fd is not None:
            parts.append(f"socket filter {c.filter_path()}")
        if self.tables is not None:
            kind = "per-CPU " if self.tables.v4.percpu else ""
            parts.append(f"kernel bypass: {kind}tables of {self.tables.v4.info.max_entries} "
                         f"flows, loader {c.loader}")
        else:
            parts.append("no kernel bypass")
        return "; ".join(parts)

    def list_maps(self) -> dict[str, syscall.BpfMap]:
        """The bypass list maps (``capture_backends.bypass_lists.LIST_MAPS``) of the program
        holding the flow tables, by name; empty without kernel bypass or when a user's
        program has none."""
        if self.tables is None:
            return {}
        from capture_backends.bypass_lists import LIST_MAPS

        found = ((name, self.tables.obj.map_fd(name)) for name in LIST_MAPS)
        return {name: syscall.BpfMap(fd) for name, fd in found if fd is not None}

    @property
    def xdp_attached(self) -> bool:
        return self._xdp_link_fd is not None

    @property
    def xdp_ifindex(self) -> int:
        """The device the XDP link was made on (0 without XDP)."""
        return self._xdp_ifindex if self._xdp_link_fd is not None else 0

    def reattach_xdp(self) -> bool | None:
        """Attach the XDP program to the interface again if it was removed and created anew
        (the kernel detaches a link whose device goes away; the new device has a new
        ifindex). Only in the process holding the link (the parent; the worker itself with
        one worker). None: nothing to do (no XDP, not the owner, the interface is missing
        or still the same device); True: re-attached; False: the kernel refused (counted by
        the caller; tried again on the next call)."""
        if (self._xdp_prog_fd is None or self._closed or self._xdp_link_fd is None
                or os.getpid() != self.owner_pid):
            return None
        try:
            ifindex = socket.if_nametoindex(self.config.interface)
        except OSError:
            return None
        if ifindex == self._xdp_ifindex:
            return None
        try:
            link = syscall.xdp_link_create(self._xdp_prog_fd, ifindex,
                                           XDP_MODES[self.config.xdp_mode])
        except OSError:
            return False
        old, self._xdp_link_fd, self._xdp_ifindex = self._xdp_link_fd, link, ifindex
        with contextlib.suppress(OSError):
            os.close(old)  # the defunct link of the removed device
        return True

    def open_worker(self, index: int) -> AfPacketBackend:
        """Open worker ``index``'s capture socket (call after fork, in the worker)."""
        if self._closed:
            raise BackendUnavailable("af-packet: group already closed")
        return AfPacketBackend(self, index)

    def bypassed_flows(self) -> list[tuple[FlowTuple, layout.FlowCounters]]:
        """Every flow in the kernel tables with its counters (endpoint a as source)."""
        if self.tables is None:
            return []
        out = []
        for table in (self.tables.v4, self.tables.v6):
            for key in list(table.keys()):
                raw = table.lookup(key)
                if raw is not None:
                    out.append((layout.unpack_key(key),
                                layout.sum_counters(raw, table.info.value_size)))
        return out

    def expire_idle(self, idle_s: float) -> list[tuple[FlowTuple, layout.FlowCounters]]:
        """Remove the kernel entries of flows idle for more than ``idle_s`` seconds (no
        packet since, or since their insertion) and return them with their final counters.
        For a periodic sweep in the parent: entries outlive the worker that inserted them."""
        if self.tables is None:
            return []
        limit = time.clock_gettime_ns(time.CLOCK_MONOTONIC) - int(idle_s * 1e9)
        expired = []
        for table in (self.tables.v4, self.tables.v6):
            for key in list(table.keys()):
                raw = table.lookup(key)
                if raw is None:
                    continue
                counters = layout.sum_counters(raw, table.info.value_size)
                if counters.last_ns < limit and table.delete(key):
                    expired.append((layout.unpack_key(key), counters))
        return expired

    def release_in_worker(self) -> None:
        """In a forked worker: drop the inherited XDP link copy so that the parent's close()
        alone detaches XDP (the kernel detaches when the last copy closes)."""
        if self._xdp_link_fd is not None:
            fd, self._xdp_link_fd = self._xdp_link_fd, None
            self._xdp_prog_fd = None  # never re-attached from here: the owner does
            with contextlib.suppress(OSError):
                os.close(fd)

    def close(self) -> None:
        """Detach XDP, close programs and maps. Idempotent; also run at exit."""
        if self._closed:
            return
        self._closed = True
        self.release_in_worker()
        for obj in reversed(self._objects):
            with contextlib.suppress(Exception):
                obj.close()
        self._objects.clear()
        self.tables = None
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)


def _stderr_notice(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _stderr_info(message: str) -> None:
    print(f"notice: {message}", file=sys.stderr)


def _program_name(config: AfPacketConfig, path: Path, bundled_name: str) -> str | None:
    """Our programs are found by name; a user's libbpf object by its first program."""
    if config.loader == "bcc" or path.parent.resolve() == ebpf.bundled_dir().resolve():
        return bundled_name
    return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def _check_host(config: AfPacketConfig) -> None:
    if os.geteuid() != 0:
        raise BackendUnavailable("af-packet: needs root (CAP_NET_RAW and CAP_BPF) "
                                 "to capture on an interface")
    if config.threads < 1:
        raise BackendUnavailable("af-packet: threads must be at least 1")
    if config.cluster_type not in CLUSTER_TYPES:
        raise BackendUnavailable(f"af-packet: cluster-type {config.cluster_type!r} unsupported")
    if config.xdp_mode not in XDP_MODES:
        raise BackendUnavailable(f"af-packet: xdp-mode {config.xdp_mode!r} unsupported")
    reason = ebpf.loader_unavailable(config.loader) if _needs_ebpf(config) else None
    if reason:
        raise BackendUnavailable(f"af-packet: {reason}")


def _needs_ebpf(config: AfPacketConfig) -> bool:
    return bool(config.bypass or config.ebpf_filter_file or config.xdp_filter_file
                or config.cluster_type == "cluster_ebpf")


def _deliver(block: list[RingPacket], bypassed: BypassedFlows,
             vlan_in_key: bool) -> Iterator[RingPacket]:
    """The packets of one ring block, one by one. When the engine bypasses a flow while it
    works through the block (the depth was reached), the rest of the block, copied out of
    the ring but not yet seen, goes through the fast path at once: a block holds thousands
    of frames, many of them of that flow, which would otherwise be decoded only to be found
    bypassed."""
    generation = bypassed.generation
    for i, pkt in enumerate(block):
        yield pkt
        if bypassed.generation != generation:
            yield from _deliver(bypassed.take(block[i + 1:], vlan_in_key), bypassed,
                                vlan_in_key)
            return


class AfPacketBackend(BaseBackend):
    """One worker's capture socket. ``packets()`` yields ``(ts, frame_bytes, 0)``; frames are
    copies (``bytes``) so the engine may keep them. Not thread-safe: one per worker."""

    name: ClassVar[str] = "af-packet"
    linktype = LINKTYPE_ETHERNET

    def __init__(self, group: AfPacketGroup, index: int) -> None:
        self.group = group
        self.index = index
        c = group.config
        self.capabilities = Capability.LIVE
        if group.tables is not None:
            self.capabilities |= Capability.BYPASS | Capability.BYPASS_COUNTERS
            if c.pin_dir() is not None:
                self.capabilities |= Capability.BYPASS_PINNED
        self._tables = group.tables
        self._closed = False
        self._iterating = False
        self._kernel_packets = 0
        self._kernel_drops = 0
        self._errors = 0
        self._bypass_ok = [0, 0]  # v4, v6
        self._full_warned = False  # "bypass table full": said once per run
        self._down_since: float | None = None  # monotonic time the interface went down
        self._gone_since: float | None = None  # the interface was removed: re-attach later
        # where run-time faults are reported, once per outage (tests collect them)
        self.notice: Callable[[str], None] = _stderr_notice
        self.info: Callable[[str], None] = _stderr_info  # the end of a fault (resumed)
        self._bypass_fail = [0, 0]
        # as many flows as the kernel table holds: every entry there may have packets here
        self._bypassed = BypassedFlows(c.map_entries, c.vlan_in_key)
        if os.getpid() != group.owner_pid:
            group.release_in_worker()
        self._ring: TpacketV3Ring | None = None
        try:
            self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except OSError as exc:
            self._closed = True
            raise BackendUnavailable(f"af-packet: worker {index}: cannot open a packet socket: "
                                     f"{_describe(exc)}") from exc
        try:
            self._setup_socket(c)
        except OSError as exc:
            self.close()
            raise BackendUnavailable(
                f"af-packet: worker {index} on {c.interface}: {_describe(exc)}") from exc

    def _setup_socket(self, c: AfPacketConfig) -> None:
        s = self._sock
        g = self.group
        if g.filter_fd is not None:  # before bind: no unfiltered packet slips in
            s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_BPF, g.filter_fd)
        self._ring = TpacketV3Ring(s, ring_frames=c.ring_size, block_size=c.block_size,
                                   frame_size=c.frame_size, block_timeout_ms=c.block_timeout_ms)
        s.bind((c.interface, ETH_P_ALL))
        if c.promiscuous:
            set_promiscuous(s, g.ifindex)
        if c.threads > 1 or c.cluster_type == "cluster_ebpf":
            try:
                s.setsockopt(SOL_PACKET, PACKET_FANOUT, struct.pack("=I", g.fanout_arg))
            except OSError as exc:
                raise OSError(exc.errno, f"cannot join fanout group cluster-id {c.cluster_id} "
                              f"({exc.strerror}; is another capture in this network namespace "
                              f"using that cluster-id with other settings?)") from exc
            if g.lb_fd is not None:  # every member sets it: the first one may not be index 0
                s.setsockopt(SOL_PACKET, PACKET_FANOUT_DATA, struct.pack("=i", g.lb_fd))
        read_stats(s)  # reset: count from now on

    # -- capture --
    def packets(self) -> Iterator[RawPacket]:
        ring = self._ring
        if ring is None or self._closed:
            return
        self._iterating = True
        try:
            bypassed, vlan_in_key = self._bypassed, self.group.config.vlan_in_key
            while not self._closed:
                if self._gone_since is not None:  # the interface was removed
                    if not self._reattach():
                        time.sleep(POLL_TIMEOUT_MS / 1000)
                        yield (time.time(), b"", 0)  # idle tick: timers, stop requests
                        continue
                    ring = self._ring
                    assert ring is not None
                block = ring.read_block(bypassed, vlan_in_key)
                if block is None:
                    if not ring.wait(POLL_TIMEOUT_MS) and self._socket_failed():
                        continue  # gone: re-attached above once it exists again
                    if not ring.block_ready():
                        # Idle tick (empty frame) after a quiet poll period: lets the engine
                        # run its timers, flush its logs and notice a stop request while no
                        # packets arrive (bypassed flows!).
                        yield (time.time(), b"", 0)
                    continue
                if self._down_since is not None:
                    self._resumed()
                yield from _deliver(block, bypassed, vlan_in_key)
        finally:
            self._iterating = False
            if self._closed:
                self._release()

    def read_batch(self, timeout_ms: int = POLL_TIMEOUT_MS) -> list[RawPacket]:
        """Packets of the next ready block, waiting at most ``timeout_ms`` for one; an empty
        list on timeout. For loops that must also wake up without traffic (timeouts)."""
        if self._gone_since is not None and not self._closed and not self._reattach():
            time.sleep(timeout_ms / 1000)
            return []
        ring = self._ring
        if ring is None or self._closed:
            return []
        self._iterating = True  # a close() meanwhile (signal, other thread) defers release
        vlan_in_key = self.group.config.vlan_in_key
        try:
            block = ring.read_block(self._bypassed, vlan_in_key)
            if block is None:
                if not ring.wait(timeout_ms) and self._socket_failed():
                    return []  # gone: the next call re-attaches once it exists again
                block = ring.read_block(self._bypassed, vlan_in_key)
            if block and self._down_since is not None:
                self._resumed()
            return list(block) if block else []
        finally:
            self._iterating = False
            if self._closed:
                self._release()

    def _socket_failed(self) -> bool:
        """After a socket error: True when the interface is gone (capture cannot resume),
        else pause one poll period (interface down: the kernel re-attaches a bound packet
        socket when the interface comes back up, and delivery resumes by itself) so that
        repeated errors cannot spin the CPU."""
        self._errors += 1
        iface = self.group.config.interface
        try:
            socket.if_nametoindex(iface)
        except OSError:
            self._gone()
            return True
        if self._down_since is None:
            self._down_since = time.monotonic()
            # Every worker's socket sees the same outage: the first worker says it, once.
            if self.index == 0:
                workers = self.group.config.threads
                self.notice(f"af-packet: {self.thread_name}: interface {iface} is down; "
                            f"capture paused on {workers} worker(s), it resumes by itself when "
                            f"the interface is up again (ip link set {iface} up); errors "
                            "counted as capture.errors")
        time.sleep(POLL_TIMEOUT_MS / 1000)
        return False

    def _gone(self) -> None:
        """The interface was removed: let go of the socket at once (every worker does, so
        the old fanout group disappears and the re-attached sockets can form a new one),
        then re-attach once an interface of that name exists again (``_reattach``)."""
        self._gone_since = time.monotonic()
        self._release()
        if self.index == 0:
            iface = self.group.config.interface
            xdp = (" (and attaches the XDP program to it again)"
                   if self.group.config.xdp_filter_file else "")
            self.notice(f"af-packet: {self.thread_name}: interface {iface} is gone; capture "
                        f"waits for an interface {iface} to exist again and re-attaches to "
                        f"it{xdp}")

    def _reattach(self) -> bool:
        """Capture on the interface again (socket, filter, ring, fanout) if it exists; False
        to try again later (it is still missing, or the kernel refused: counted)."""
        c = self.group.config
        try:
            ifindex = socket.if_nametoindex(c.interface)
        except OSError:
            return False
        try:
            self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except OSError:
            self._errors += 1
            return False
        self.group.ifindex = ifindex  # the new device: promiscuous mode is set on it
        try:
            self._setup_socket(c)
        except OSError:  # e.g. the other workers' old fanout group is not gone yet
            self._errors += 1
            self._release()
            return False
        assert self._gone_since is not None
        gone_for = time.monotonic() - self._gone_since
        self._gone_since = None
        self._down_since = None
        xdp = ""
        if self.group.xdp_attached:  # one worker: this process holds the XDP link
            done = self.group.reattach_xdp()
            if done is False:
                self._errors += 1
            xdp = {True: "; XDP program attached again", False: "; the XDP program could "
                   "not be attached again: bypass falls back to the engine", None: ""}[done]
        if self.index == 0:
            self.info(f"af-packet: {self.thread_name}: re-attached to {c.interface} (ifindex "
                      f"{ifindex}) {gone_for:.1f} s after it was removed{xdp}")
        return True

    def _resumed(self) -> None:
        """The first packets after an outage: say how long capture was paused (worker 1)."""
        assert self._down_since is not None
        paused = time.monotonic() - self._down_since
        self._down_since = None
        if self.index == 0:
            iface = self.group.config.interface
            self.info(f"af-packet: {self.thread_name}: capture on {iface} resumed after "
                        f"{paused:.1f} s")

    @property
    def thread_name(self) -> str:
        """This worker's name in logs, as in stats.log and Suricata (``W#01-eth0``)."""
        return f"W#{self.index + 1:02d}-{self.group.config.interface}"

    # -- bypass --
    def bypass(self, flow: FlowTuple, pkt_id: int) -> bool:
        tables = self._tables
        if tables is None or flow.proto not in BYPASS_PROTOCOLS:
            return False
        family = 0 if len(flow.src) == 4 else 1
        try:
            err = tables.insert(flow)
        except ValueError:
            self._bypass_fail[family] += 1
            return False
        if err in (0, errno.EEXIST):
            self._bypass_ok[family] += 1
            self._bypassed.add(flow)
            return True
        self._bypass_fail[family] += 1
        if err not in _MAP_FULL_ERRNOS:
            self._errors += 1
        elif not self._full_warned:
            self._full_warned = True
            c = self.group.config
            self.notice(f"af-packet: worker {self.index}: the bypass table on {c.interface} is "
                        f"full ({c.map_entries} flows per family); further flows are bypassed "
                        "in user space (counted as capture.bypass.ipv4_fail/ipv6_fail); raise "
                        "af-packet.ebpf-map-entries")
        return False

    def bypassed_flow_counters(self, flow: FlowTuple) -> BypassCounters | None:
        """Kernel counters of a bypassed flow; ``flow`` is read client -> server (its
        ``src`` is the client), so packets sent by ``flow.src`` are ``toserver``."""
        tables = self._tables
        if tables is None:
            return None
        try:
            kernel = tables.counters(flow)
        except ValueError:
            return None
        if kernel is None:  # the kernel entry is gone (expired): so is the bypass
            self._bypassed.discard(flow)
        return kernel

    def fast_path_counters(self, flow: FlowTuple) -> BypassCounters | None:
        """The packets of ``flow`` the ring reader skipped (they reached the ring: the kernel
        did not bypass them), ``flow.src`` read as the client."""
        return self._bypassed.counters(flow)

    def fast_path_until(self, flow: FlowTuple, ts: float) -> None:
        self._bypassed.until(flow, ts)

    def adopted_bypassed(self) -> list[FlowTuple]:
        """The flows in reused pinned tables (bypassed by a previous run), for the first
        worker's engine to time out; the others get none."""
        return list(self.group.adopted) if self.index == 0 else []

    def bypassed_last_seen_ns(self, flow: FlowTuple) -> int | None:
        """``bpf_ktime_get_ns()`` (CLOCK_MONOTONIC) of the flow's last bypassed packet."""
        tables = self._tables
        if tables is None:
            return None
        try:
            key, _ = layout.canonical_key(flow, tables.vlan_in_key)
        except ValueError:
            return None
        table = tables.table(flow)
        raw = table.lookup(key)
        return None if raw is None else layout.sum_counters(raw, table.info.value_size).last_ns

    def forget_bypassed(self, flow: FlowTuple) -> None:
        self._bypassed.discard(flow)
        tables = self._tables
        if tables is None:
            return
        try:
            key, _ = layout.canonical_key(flow, tables.vlan_in_key)
        except ValueError:
            return
        tables.table(flow).delete(key)

    # -- stats / lifecycle --
    def stats(self) -> CaptureStats:
        if not self._closed and self._ring is not None:
            try:
                packets, drops = read_stats(self._sock)
                self._kernel_packets += packets
                self._kernel_drops += drops
            except OSError:
                self._errors += 1
        return CaptureStats(
            kernel_packets=self._kernel_packets, kernel_drops=self._kernel_drops,
            errors=self._errors,
            bypass_v4_success=self._bypass_ok[0], bypass_v4_fail=self._bypass_fail[0],
            bypass_v6_success=self._bypass_ok[1], bypass_v6_fail=self._bypass_fail[1],
            bypass_fast_path_pkts=self._bypassed.packets)

    def close(self) -> None:
        """Stop ``packets()`` (within POLL_TIMEOUT_MS) and release the socket and ring.
        Safe from a signal handler and idempotent."""
        if self._closed:
            return
        self.stats()  # keep the final kernel counters
        self._closed = True
        if not self._iterating:
            self._release()

    def _release(self) -> None:
        if self._ring is not None:
            ring, self._ring = self._ring, None
            ring.close()
        with contextlib.suppress(OSError):
            self._sock.close()

