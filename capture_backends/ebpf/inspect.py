"""Read-only views of bypass flow tables owned by another process (``ruleengine bypass list``).

A running engine's maps are found by id: the ids of the bpf maps a process holds are in
``/proc/<pid>/fdinfo`` (``map_id:``), and ``BPF_MAP_GET_FD_BY_ID`` opens them (root). With
no process given, every map of the kernel named like a bypass table is listed
(``BPF_MAP_GET_NEXT_ID``), as ``bpftool map`` does. Entries are read, never changed.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from capture_backends.base import FlowTuple
from capture_backends.ebpf import layout, syscall

BPF_MAP_GET_NEXT_ID = 12
BPF_MAP_GET_FD_BY_ID = 14
BPF_OBJ_GET = 7
BPF_F_RDONLY = 1 << 3
TABLE_NAMES = (layout.MAP_V4, layout.MAP_V6)


class _IdAttr(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32), ("next_id", ctypes.c_uint32),
                ("open_flags", ctypes.c_uint32)]


class _ObjGetAttr(ctypes.Structure):
    _fields_ = [("pathname", ctypes.c_uint64), ("bpf_fd", ctypes.c_uint32),
                ("file_flags", ctypes.c_uint32)]


@dataclass(frozen=True)
class TableEntry:
    map_id: int
    flow: FlowTuple  # endpoint a as source (canonical order)
    key: bytes
    counters: layout.FlowCounters


def map_ids() -> Iterator[int]:
    """Every bpf map id in the kernel (root)."""
    current = 0
    while True:
        attr = _IdAttr(current, 0, 0)
        if syscall.bpf(BPF_MAP_GET_NEXT_ID, attr) < 0:
            return
        current = attr.next_id
        yield current


def open_map_by_id(map_id: int) -> int:
    """A read-only fd of map ``map_id``; OSError when it is gone or not permitted."""
    ret = syscall.bpf(BPF_MAP_GET_FD_BY_ID, _IdAttr(map_id, 0, BPF_F_RDONLY))
    if ret < 0:
        raise OSError(-ret, f"bpf map {map_id}: {os.strerror(-ret)}")
    return ret


def open_pinned(path: str | os.PathLike[str]) -> int:
    """A read-only fd of a map pinned at ``path`` (bpffs)."""
    name = ctypes.create_string_buffer(os.fsencode(path))
    ret = syscall.bpf(BPF_OBJ_GET, _ObjGetAttr(ctypes.addressof(name), 0, BPF_F_RDONLY))
    if ret < 0:
        raise OSError(-ret, f"pinned bpf object {path}: {os.strerror(-ret)}")
    return ret


def process_map_ids(pid: int) -> set[int]:
    """Ids of the bpf maps process ``pid`` holds open (from /proc/<pid>/fdinfo)."""
    ids: set[int] = set()
    base = Path(f"/proc/{pid}/fdinfo")
    try:
        entries = list(base.iterdir())
    except OSError:
        return ids
    for entry in entries:
        try:
            text = entry.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("map_id:"):
                ids.add(int(line.split(":", 1)[1]))
    return ids


def is_bypass_table(fd: int) -> bool:
    """The map's name and key/value sizes are those of a bypass flow table."""
    info = syscall.map_info(fd)
    if info.name not in TABLE_NAMES or info.value_size != layout.COUNTERS.size:
        return False
    want = layout.KEY_V4.size if info.name == layout.MAP_V4 else layout.KEY_V6.size
    return info.key_size == want


def read_table(fd: int, map_id: int) -> list[TableEntry]:
    """Every entry of the bypass table ``fd`` with its counters (per-CPU values summed)."""
    table = syscall.BpfMap(fd)
    out = []
    for key in list(table.keys()):
        raw = table.lookup(key)
        if raw is None:  # deleted meanwhile
            continue
        out.append(TableEntry(map_id, layout.unpack_key(key), key,
                              layout.sum_counters(raw, table.info.value_size)))
    return out


def bypass_tables(map_id_set: set[int] | None = None) -> list[TableEntry]:
    """Entries of the bypass tables among ``map_id_set`` (all maps of the kernel when None).
    Maps that vanish or cannot be opened are skipped."""
    ids = sorted(map_id_set) if map_id_set is not None else list(map_ids())
    entries: list[TableEntry] = []
    for map_id in ids:
        try:
            fd = open_map_by_id(map_id)
        except OSError:
            continue
        try:
            if is_bypass_table(fd):
                entries.extend(read_table(fd, map_id))
        except OSError:
            continue
        finally:
            os.close(fd)
    return entries
