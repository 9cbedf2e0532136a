"""Live bypass lists (config ``bypass-lists:``): files of addresses, ports and TLS SNI
patterns whose traffic is not inspected.

One entry a line; ``#`` starts a comment::

    10.1.0.0/16            # an IPv4 or IPv6 address or CIDR (host bits are ignored)
    2001:db8::/32
    port 443               # TCP/UDP/SCTP source or destination port
    port 8000-8100         # an inclusive range
    sni *.windowsupdate.com  # TLS client hello server name; "*." = any subdomain

A bad line is reported as ``file:line: reason`` and skipped; the rest of the file loads.
Matching follows the kernel's LPM trie: the longest prefix that contains the source or
the destination wins, so per-entry counters agree with a kernel map holding the same
entries. Each entry is counted (packets, bytes) under its label ``<file>:<line>``
(``stats()``: ``bypass_list.<file>:<line>.pkts|bytes``).

``ListWatcher`` tells when a list file changed (inotify through ctypes on the files'
directories, so editors that replace the file are seen too; mtime polling where inotify
is unavailable); the owner then calls ``BypassLists.reload``. Entries removed from a file
disappear from the matcher; entries that stay keep their counters.

This module only parses, matches and counts; it imports nothing of the engine.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BypassLists", "ListEntry", "ListWatcher", "parse_file", "parse_lines"]

MAX_ENTRIES = 1 << 20  # per load, all files together: memory stays bounded
_PORT_PROTOCOLS = frozenset({6, 17, 132})


@dataclass(frozen=True)
class ListEntry:
    """One line of a list. ``kind`` is "cidr", "port" or "sni"; ``value`` the normalised
    text (``10.1.0.0/16``, ``8000-8100``, ``*.example.com``)."""

    file: str
    line: int
    kind: str
    value: str

    @property
    def label(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class _Count:
    pkts: int = 0
    bytes: int = 0


def _parse_port(text: str) -> tuple[int, int] | str:
    lo_text, sep, hi_text = text.partition("-")
    try:
        lo = int(lo_text)
        hi = int(hi_text) if sep else lo
    except ValueError:
        return f"bad port {text!r} (expected N or N-M)"
    if not (1 <= lo <= 65535 and 1 <= hi <= 65535):
        return f"port {text!r} out of range 1-65535"
    if lo > hi:
        return f"port range {text!r} is reversed"
    return lo, hi


def _parse_sni(text: str) -> str | None:
    name = text.strip().lower().rstrip(".")
    core = name[2:] if name.startswith("*.") else name
    if not core or "*" in core or any(c.isspace() for c in core) or ".." in core:
        return None
    return name


def parse_lines(lines: list[str], file: str) -> tuple[list[ListEntry], list[str]]:
    """Entries of one list's ``lines`` and an error ``file:line: reason`` per bad line."""
    entries: list[ListEntry] = []
    errors: list[str] = []
    for number, raw in enumerate(lines, 1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        word, _, rest = text.partition(" ")
        rest = rest.strip()
        word_l = word.lower()
        if word_l == "port":
            ports = _parse_port(rest)
            if isinstance(ports, str):
                errors.append(f"{file}:{number}: {ports}")
                continue
            value = str(ports[0]) if ports[0] == ports[1] else f"{ports[0]}-{ports[1]}"
            entries.append(ListEntry(file, number, "port", value))
        elif word_l == "sni":
            name = _parse_sni(rest)
            if name is None:
                errors.append(f"{file}:{number}: bad SNI pattern {rest!r} "
                              "(a host name, or *.domain)")
                continue
            entries.append(ListEntry(file, number, "sni", name))
        elif rest:
            errors.append(f"{file}:{number}: unknown entry {text!r} "
                          "(an address/CIDR, 'port N[-M]' or 'sni PATTERN')")
        else:
            try:
                net = ipaddress.ip_network(word, strict=False)
            except ValueError:
                errors.append(f"{file}:{number}: {word!r} is not an IP address or CIDR")
                continue
            entries.append(ListEntry(file, number, "cidr", str(net)))
    return entries, errors


def parse_file(path: str | os.PathLike[str]) -> tuple[list[ListEntry], list[str]]:
    """Entries of the list file at ``path`` (labelled by its base name) and its errors;
    an unreadable file is one error and no entries."""
    name = Path(path).name
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        return [], [f"{path}: cannot read bypass list: {exc.strerror or exc}"]
    return parse_lines(lines, name)


@dataclass
class BypassLists:
    """The loaded lists: matcher and per-entry counters. Empty until ``reload``."""

    paths: tuple[str, ...] = ()
    entries: list[ListEntry] = field(default_factory=list)
    # prefix length -> network as int -> entry, per family (4, 6); longest prefix first
    _nets: dict[int, list[tuple[int, dict[int, ListEntry]]]] = field(default_factory=dict)
    _ports: dict[int, ListEntry] = field(default_factory=dict)
    _sni_exact: dict[str, ListEntry] = field(default_factory=dict)
    _sni_suffix: dict[str, ListEntry] = field(default_factory=dict)
    _counts: dict[ListEntry, _Count] = field(default_factory=dict)
    generation: int = 0  # bumped by every reload that changed the entries

    def reload(self, paths: tuple[str, ...] | None = None) -> list[str]:
        """(Re)read every list file; returns the errors (``file:line: reason``). Entries
        that stay keep their counters; the others are gone. Duplicates: the first wins."""
        if paths is not None:
            self.paths = tuple(paths)
        entries: list[ListEntry] = []
        errors: list[str] = []
        for path in self.paths:
            found, errs = parse_file(path)
            entries += found
            errors += errs
        if len(entries) > MAX_ENTRIES:
            errors.append(f"bypass-lists: {len(entries)} entries, only the first "
                          f"{MAX_ENTRIES} are used")
            entries = entries[:MAX_ENTRIES]
        if entries != self.entries:
            self.generation += 1
        self._build(entries)
        return errors

    def _build(self, entries: list[ListEntry]) -> None:
        nets: dict[int, dict[int, dict[int, ListEntry]]] = {4: {}, 6: {}}
        ports: dict[int, ListEntry] = {}
        exact: dict[str, ListEntry] = {}
        suffix: dict[str, ListEntry] = {}
        for e in entries:
            if e.kind == "cidr":
                net = ipaddress.ip_network(e.value)
                by_len = nets[net.version].setdefault(net.prefixlen, {})
                by_len.setdefault(int(net.network_address), e)
            elif e.kind == "port":
                lo, _, hi = e.value.partition("-")
                for port in range(int(lo), int(hi or lo) + 1):
                    ports.setdefault(port, e)
            elif e.value.startswith("*."):
                suffix.setdefault(e.value[1:], e)  # ".example.com"
            else:
                exact.setdefault(e.value, e)
        self._nets = {fam: sorted(by.items(), reverse=True) for fam, by in nets.items()}
        self._ports, self._sni_exact, self._sni_suffix = ports, exact, suffix
        old = self._counts
        self._counts = {e: old.get(e) or _Count() for e in entries}
        self.entries = entries

    def __bool__(self) -> bool:
        return bool(self.entries)

    # -- matching -------------------------------------------------------------------
    def match_address(self, addr: bytes) -> ListEntry | None:
        """The entry whose CIDR holds ``addr`` (4 or 16 bytes), longest prefix first."""
        family, width = (4, 32) if len(addr) == 4 else (6, 128)
        value = int.from_bytes(addr, "big")
        for prefixlen, table in self._nets.get(family, ()):
            hit = table.get(value >> (width - prefixlen) << (width - prefixlen))
            if hit is not None:
                return hit
        return None

    def match_port(self, port: int) -> ListEntry | None:
        return self._ports.get(port)

    def match_packet(self, ip_packet: bytes) -> ListEntry | None:
        """The entry an IPv4/IPv6 packet matches (source or destination address first, then
        ports of TCP/UDP/SCTP on first fragments / without extension headers), or None."""
        if len(ip_packet) < 20:
            return None
        version = ip_packet[0] >> 4
        if version == 4:
            src, dst, proto = ip_packet[12:16], ip_packet[16:20], ip_packet[9]
            l4 = (ip_packet[0] & 0x0F) * 4
            first = struct.unpack_from("!H", ip_packet, 6)[0] & 0x1FFF == 0
        elif version == 6 and len(ip_packet) >= 40:
            src, dst, proto, l4, first = ip_packet[8:24], ip_packet[24:40], ip_packet[6], 40, True
        else:
            return None
        hit = self.match_address(src) or self.match_address(dst)
        if hit is not None or not self._ports:
            return hit
        if first and proto in _PORT_PROTOCOLS and len(ip_packet) >= l4 + 4:
            sport, dport = struct.unpack_from("!HH", ip_packet, l4)
            return self._ports.get(sport) or self._ports.get(dport)
        return None

    @property
    def has_sni(self) -> bool:
        """Whether any ``sni`` entry is loaded (kept by ``reload``: no scan of entries)."""
        return bool(self._sni_exact or self._sni_suffix)

    def match_sni(self, server_name: str) -> ListEntry | None:
        """The entry a TLS server name matches: exact (case-insensitive), or ``*.d`` for
        any name ending in ``.d`` (not ``d`` itself)."""
        name = server_name.lower().rstrip(".")
        hit = self._sni_exact.get(name)
        if hit is not None or not self._sni_suffix:
            return hit
        dot = name.find(".")
        while dot >= 0:
            hit = self._sni_suffix.get(name[dot:])
            if hit is not None:
                return hit
            dot = name.find(".", dot + 1)
        return None

    # -- counting -------------------------------------------------------------------
    def count(self, entry: ListEntry, pkts: int, nbytes: int) -> None:
        c = self._counts.get(entry)
        if c is not None:
            c.pkts += pkts
            c.bytes += nbytes

    def set_count(self, entry: ListEntry, pkts: int, nbytes: int) -> None:
        """Counters read from elsewhere (a kernel map value): replace, not add."""
        c = self._counts.get(entry)
        if c is not None:
            c.pkts, c.bytes = pkts, nbytes

    def stats(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e, c in self._counts.items():
            out[f"bypass_list.{e.label}.pkts"] = c.pkts
            out[f"bypass_list.{e.label}.bytes"] = c.bytes
        return out


# --- change notification ---------------------------------------------------------------
IN_MODIFY = 0x002
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len (then the name)
_WATCH_MASK = (IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE
               | IN_DELETE)


class ListWatcher:
    """``changed()`` is True once after any list file was written, replaced or removed.
    inotify on the files' directories (editors replace files by rename); when inotify is
    unavailable, the files' (mtime, size, inode) are compared at each call."""

    def __init__(self, paths: tuple[str, ...]) -> None:
        self.paths = tuple(paths)
        self._names = {Path(p).name for p in self.paths}
        self._fd = -1
        self._stamps = self._stat_all()
        with contextlib.suppress(OSError, AttributeError):
            self._fd = self._init_inotify()
        self.mode = "inotify" if self._fd >= 0 else "mtime"

    def _init_inotify(self) -> int:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = int(libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC))
        if fd < 0:
            return -1
        for directory in {str(Path(p).resolve().parent) for p in self.paths}:
            if libc.inotify_add_watch(fd, directory.encode(), _WATCH_MASK) < 0:
                os.close(fd)
                return -1
        return fd

    def _stat_all(self) -> tuple[tuple[float, int, int] | None, ...]:
        out: list[tuple[float, int, int] | None] = []
        for p in self.paths:
            try:
                st = os.stat(p)
                out.append((st.st_mtime, st.st_size, st.st_ino))
            except OSError:
                out.append(None)
        return tuple(out)

    def fileno(self) -> int:
        return self._fd

    def changed(self) -> bool:
        if self._fd < 0:
            stamps = self._stat_all()
            changed, self._stamps = stamps != self._stamps, stamps
            return changed
        hit = False
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return hit
            except OSError:
                return hit
            if not data:
                return hit
            off = 0
            while off + _EVENT.size <= len(data):
                _wd, _mask, _cookie, length = _EVENT.unpack_from(data, off)
                name = data[off + _EVENT.size: off + _EVENT.size + length].rstrip(b"\0")
                if name.decode(errors="replace") in self._names:
                    hit = True
                off += _EVENT.size + length

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1


# --- kernel maps (bpf/flow_tables.h: bypass_cidr_v4/v6, bypass_ports) -----------------
MAP_CIDR_V4 = "bypass_cidr_v4"
MAP_CIDR_V6 = "bypass_cidr_v6"
MAP_PORTS = "bypass_ports"
LIST_MAPS = (MAP_CIDR_V4, MAP_CIDR_V6, MAP_PORTS)
_LPM_V4 = struct.Struct("=I4s")  # prefixlen (host order), address (network order)
_LPM_V6 = struct.Struct("=I16s")
_PORT_KEY = struct.Struct("!H2x")
_LIST_COUNTERS = struct.Struct("=QQ")


def kernel_keys(lists: BypassLists) -> dict[str, dict[bytes, ListEntry]]:
    """The map keys ``lists`` needs, by map name (first entry wins a shared key)."""
    out: dict[str, dict[bytes, ListEntry]] = {name: {} for name in LIST_MAPS}
    for e in lists.entries:
        if e.kind == "cidr":
            net = ipaddress.ip_network(e.value)
            if net.version == 4:
                key = _LPM_V4.pack(net.prefixlen, net.network_address.packed)
                out[MAP_CIDR_V4].setdefault(key, e)
            else:
                key = _LPM_V6.pack(net.prefixlen, net.network_address.packed)
                out[MAP_CIDR_V6].setdefault(key, e)
        elif e.kind == "port":
            lo, _, hi = e.value.partition("-")
            for port in range(int(lo), int(hi or lo) + 1):
                out[MAP_PORTS].setdefault(_PORT_KEY.pack(port), e)
    return out


class KernelLists:
    """Keeps the eBPF list maps equal to a ``BypassLists`` and reads their counters back.
    ``maps``: map name -> ``syscall.BpfMap`` (from the loaded filter's map fds)."""

    def __init__(self, maps: dict[str, Any]) -> None:
        self.maps = maps
        self._keys: dict[str, dict[bytes, ListEntry]] = {name: {} for name in LIST_MAPS}
        self.errors = 0  # keys the kernel refused (map full)

    def sync(self, lists: BypassLists) -> None:
        """Add the keys new entries need, delete those of removed entries (their packets are
        delivered again at once). A kept key keeps its kernel counters."""
        wanted = kernel_keys(lists)
        zero = _LIST_COUNTERS.pack(0, 0)
        for name, keys in wanted.items():
            table = self.maps.get(name)
            if table is None:
                continue
            have = self._keys[name]
            for key in [k for k in have if k not in keys]:
                table.delete(key)
            added: dict[bytes, ListEntry] = {}
            for key, entry in keys.items():
                if key in have or table.update(key, zero) == 0:
                    added[key] = entry
                else:
                    self.errors += 1
            self._keys[name] = added

    @property
    def key_count(self) -> int:
        """Keys in the maps now (what ``read_counts`` looks up)."""
        return sum(len(keys) for keys in self._keys.values())

    def read_counts(self, lists: BypassLists) -> None:
        """Each entry's counters = the sum over its keys' kernel values."""
        totals: dict[ListEntry, list[int]] = {}
        for name, keys in self._keys.items():
            table = self.maps.get(name)
            if table is None:
                continue
            for key, entry in keys.items():
                raw = table.lookup(key)
                if raw is None:
                    continue
                pkts, nbytes = _LIST_COUNTERS.unpack_from(raw)
                t = totals.setdefault(entry, [0, 0])
                t[0] += pkts
                t[1] += nbytes
        for entry, (pkts, nbytes) in totals.items():
            lists.set_count(entry, pkts, nbytes)
