"""Pinned bypass tables (``af-packet.pinned-maps``): the flow tables outlive the engine.

The tables are pinned as ``<dir>/<map name>`` in a bpffs (``pinned-maps-dir``, default
``/sys/fs/bpf``, mounted there if it is not a bpffs yet; the directory is
``pinned-maps-name``, default ``ruleengine-<interface>``). The next start reuses them before
its programs are loaded, so flows bypassed by the previous run stay out of user space across
a restart or a reload. A pinned table whose type, key or value size or number of entries
differs from what the program being loaded expects (another layout, another
``ebpf-map-entries`` or ``use-percpu-hash``) is stale: its pin is removed, with a message,
and the new table is pinned instead.

Beside the tables a one-entry array ``ruleengine_pin_stamp`` records what wrote them: the
table layout version (``PIN_LAYOUT_VERSION``, the meaning of ``bpf/flow_keys.h``'s key and
value), a digest of the program object(s) that use them, and the load options that change a
key or a table (``vlan.use-for-tracking``, ``ebpf-map-entries``, ``use-percpu-hash``). Sizes
alone cannot tell a key whose fields moved, or one built without VLAN ids, from ours: reusing
such a table would keep other flows bypassed than the ones the entries name. A start whose
stamp differs (or pins without a stamp, left by an older build) removes every pin it knows
with one message and starts with empty tables (``check_stamp``, ``write_stamp``).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from capture_backends.ebpf import syscall

__all__ = ["BPFFS_MAGIC", "PIN_LAYOUT_VERSION", "STAMP_MAP", "PinStamp", "check_stamp",
           "ensure_bpffs", "is_bpffs", "read_stamp", "reuse_or_remove", "write_stamp"]

BPFFS_MAGIC = 0xCAFE4A11
_libc = ctypes.CDLL(None, use_errno=True)


def is_bpffs(path: Path) -> bool:
    """``path`` is on a bpffs (statfs f_type, the first field of struct statfs)."""
    buf = ctypes.create_string_buffer(256)
    if _libc.statfs(str(path).encode(), buf) != 0:
        return False
    return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF == BPFFS_MAGIC


def ensure_bpffs(root: Path) -> str | None:
    """Mount a bpffs at ``root`` unless it is on one; the message to log when it was
    mounted. OSError when it cannot be."""
    if is_bpffs(root):
        return None
    root.mkdir(parents=True, exist_ok=True)
    if _libc.mount(b"bpf", str(root).encode(), b"bpf", 0, b"mode=0700") != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{root} is not a bpffs and mounting one there failed: "
                           f"{os.strerror(err)}")
    return f"mounted a bpffs at {root} for the pinned maps"


def reuse_or_remove(path: Path, expected: syscall.MapInfo) -> tuple[int | None, str | None]:
    """The fd of the table pinned at ``path`` when it has ``expected``'s type, key/value size
    and entries; else (also when the pin is no map) the pin is removed. Returns the fd (or
    None) and a message for a removed pin."""
    if not path.exists():
        return None, None
    try:
        fd = syscall.obj_get(str(path))
    except OSError as exc:
        found = f"unreadable ({exc.strerror})"
    else:
        try:
            info = syscall.map_info(fd)
        except OSError as exc:
            os.close(fd)
            found = f"not a map ({exc.strerror})"
        else:
            got = (info.type, info.key_size, info.value_size, info.max_entries)
            want = (expected.type, expected.key_size, expected.value_size,
                    expected.max_entries)
            if got == want:
                return fd, None
            os.close(fd)
            found = "type/key/value/entries {}/{}/{}/{}".format(*got)
    path.unlink(missing_ok=True)
    return None, (f"stale pinned map {path} removed: {found}, this program needs "
                  "{}/{}/{}/{}".format(expected.type, expected.key_size, expected.value_size,
                                       expected.max_entries))


# Bump when the meaning of a pinned table's key or value changes (bpf/flow_keys.h), even if
# the sizes stay: a table of the old layout must not be reused.
PIN_LAYOUT_VERSION = 1
STAMP_MAP = "ruleengine_pin_stamp"
_STAMP_MAGIC = b"ruleengine-pins\0"
# magic, layout version, flags (bit 0 vlan_in_key, bit 1 percpu), map entries, program digest
_STAMP = struct.Struct("=16sIII32s")
_BPF_MAP_CREATE = 0
_BPF_MAP_TYPE_ARRAY = 2


@dataclass(frozen=True)
class PinStamp:
    """What wrote a set of pinned tables; equal stamps mean the tables can be reused."""

    layout_version: int
    vlan_in_key: bool
    percpu: bool
    map_entries: int
    digest: bytes  # sha256 of the program object files, in load order

    @classmethod
    def for_programs(cls, programs: Iterable[Path], *, vlan_in_key: bool, percpu: bool,
                     map_entries: int) -> PinStamp:
        """The stamp of this run. A missing program file is left out (its load fails with
        the loader's own message); OSError when one cannot be read."""
        h = hashlib.sha256()
        for path in programs:
            if not path.is_file():
                continue
            h.update(path.name.encode() + b"\0" + path.read_bytes())
        return cls(PIN_LAYOUT_VERSION, vlan_in_key, percpu, map_entries, h.digest())

    def pack(self) -> bytes:
        flags = int(self.vlan_in_key) | int(self.percpu) << 1
        return _STAMP.pack(_STAMP_MAGIC, self.layout_version, flags, self.map_entries,
                           self.digest)

    @classmethod
    def unpack(cls, raw: bytes) -> PinStamp | None:
        if len(raw) < _STAMP.size:
            return None
        magic, version, flags, entries, digest = _STAMP.unpack_from(raw)
        if magic != _STAMP_MAGIC:
            return None
        return cls(version, bool(flags & 1), bool(flags & 2), entries, digest)

    def differs(self, other: PinStamp) -> str:
        """What ``other`` (found pinned) has that this run does not, for the message."""
        if other.layout_version != self.layout_version:
            return f"table layout version {other.layout_version}, this build has " \
                   f"{self.layout_version}"
        if other.digest != self.digest:
            return f"written by another program (sha256 {other.digest.hex()[:12]}, this run " \
                   f"loads {self.digest.hex()[:12]})"
        if other.vlan_in_key != self.vlan_in_key:
            return f"vlan.use-for-tracking was {'on' if other.vlan_in_key else 'off'}"
        if other.percpu != self.percpu:
            return f"use-percpu-hash was {'yes' if other.percpu else 'no'}"
        return f"ebpf-map-entries was {other.map_entries}, now {self.map_entries}"


def read_stamp(pin_dir: Path) -> PinStamp | None:
    """The stamp pinned in ``pin_dir``; None when there is none or it is not one of ours."""
    path = pin_dir / STAMP_MAP
    if not path.exists():
        return None
    try:
        fd = syscall.obj_get(str(path))
    except OSError:
        return None
    try:
        m = syscall.BpfMap(fd)
        raw = m.lookup(b"\0\0\0\0") if m.key_size == 4 else None
    except OSError:
        raw = None
    finally:
        os.close(fd)
    return None if raw is None else PinStamp.unpack(raw)


def check_stamp(pin_dir: Path, stamp: PinStamp, tables: Iterable[str]) -> str | None:
    """Before loading: when ``pin_dir`` holds pins of ``tables`` written under another stamp
    (or none), remove them and the stamp; the one message to log, or None."""
    present = [name for name in tables if (pin_dir / name).exists()]
    if not present:
        return None
    found = read_stamp(pin_dir)
    if found == stamp:
        return None
    why = "no version stamp (pinned by an older build or another tool)" if found is None \
        else stamp.differs(found)
    for name in (*present, STAMP_MAP):
        (pin_dir / name).unlink(missing_ok=True)
    return f"stale pinned maps in {pin_dir} removed ({', '.join(present)}): {why}; " \
           "flows bypassed by the previous run are inspected again"


class _MapCreateAttr(ctypes.Structure):
    # union bpf_attr for BPF_MAP_CREATE, up to map_name (the kernel zero-checks the rest)
    _fields_ = [("map_type", ctypes.c_uint32), ("key_size", ctypes.c_uint32),
                ("value_size", ctypes.c_uint32), ("max_entries", ctypes.c_uint32),
                ("map_flags", ctypes.c_uint32), ("inner_map_fd", ctypes.c_uint32),
                ("numa_node", ctypes.c_uint32), ("map_name", ctypes.c_char * 16)]


def _create_stamp_map() -> int:
    attr = _MapCreateAttr(_BPF_MAP_TYPE_ARRAY, 4, _STAMP.size, 1, 0, 0, 0, b"re_pin_stamp")
    fd = syscall.bpf(_BPF_MAP_CREATE, attr)
    if fd < 0:
        raise OSError(-fd, f"cannot create the pin stamp map: {os.strerror(-fd)}")
    return fd


def write_stamp(pin_dir: Path, stamp: PinStamp) -> None:
    """After loading: pin ``stamp`` beside the tables (replacing an older one)."""
    fd = _create_stamp_map()
    try:
        err = syscall.BpfMap(fd).update(b"\0\0\0\0", stamp.pack())
        if err:
            raise OSError(err, f"cannot write the pin stamp: {os.strerror(err)}")
        path = pin_dir / STAMP_MAP
        path.unlink(missing_ok=True)
        syscall.obj_pin(fd, str(path))
    finally:
        os.close(fd)
