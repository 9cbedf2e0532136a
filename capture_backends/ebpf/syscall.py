"""Thin ctypes wrappers over the bpf(2) system call for what both loaders share: map element
operations, map metadata and XDP attachment through a BPF link.

Using the raw syscall (not libbpf's wrappers) keeps map access identical whichever loader
created the map, and needs no library beyond libc. Every function reports failure as an
``errno`` value or an ``OSError``; nothing here aborts the process.
"""

from __future__ import annotations

import ctypes
import os
import platform
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

_NR_BPF = {"x86_64": 321, "aarch64": 280, "armv7l": 386, "ppc64le": 361, "s390x": 351,
           "riscv64": 280}

BPF_MAP_LOOKUP_ELEM = 1
BPF_MAP_UPDATE_ELEM = 2
BPF_MAP_DELETE_ELEM = 3
BPF_MAP_GET_NEXT_KEY = 4
BPF_OBJ_PIN = 6
BPF_OBJ_GET = 7
BPF_PROG_TEST_RUN = 10
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_LINK_CREATE = 28

BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2

BPF_XDP = 37  # enum bpf_attach_type
XDP_FLAGS_SKB_MODE = 1 << 1
XDP_FLAGS_DRV_MODE = 1 << 2
XDP_FLAGS_HW_MODE = 1 << 3

BPF_MAP_TYPE_HASH = 1
BPF_MAP_TYPE_PERCPU_HASH = 5
PERCPU_MAP_TYPES = frozenset({5, 6, 10, 21})  # percpu hash/array, lru percpu hash, percpu cgroup


class _MapElemAttr(ctypes.Structure):
    _fields_ = [("map_fd", ctypes.c_uint32), ("_pad", ctypes.c_uint32),
                ("key", ctypes.c_uint64), ("value", ctypes.c_uint64), ("flags", ctypes.c_uint64)]


class _ObjAttr(ctypes.Structure):
    _fields_ = [("pathname", ctypes.c_uint64), ("bpf_fd", ctypes.c_uint32),
                ("file_flags", ctypes.c_uint32)]


class _InfoAttr(ctypes.Structure):
    _fields_ = [("bpf_fd", ctypes.c_uint32), ("info_len", ctypes.c_uint32),
                ("info", ctypes.c_uint64)]


class _MapInfo(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("id", ctypes.c_uint32),
                ("key_size", ctypes.c_uint32), ("value_size", ctypes.c_uint32),
                ("max_entries", ctypes.c_uint32), ("map_flags", ctypes.c_uint32),
                ("name", ctypes.c_char * 16)]


class _TestRunAttr(ctypes.Structure):
    _fields_ = [("prog_fd", ctypes.c_uint32), ("retval", ctypes.c_uint32),
                ("data_size_in", ctypes.c_uint32), ("data_size_out", ctypes.c_uint32),
                ("data_in", ctypes.c_uint64), ("data_out", ctypes.c_uint64),
                ("repeat", ctypes.c_uint32), ("duration", ctypes.c_uint32),
                ("ctx_size_in", ctypes.c_uint32), ("ctx_size_out", ctypes.c_uint32),
                ("ctx_in", ctypes.c_uint64), ("ctx_out", ctypes.c_uint64),
                ("flags", ctypes.c_uint32), ("cpu", ctypes.c_uint32)]


class _LinkCreateAttr(ctypes.Structure):
    _fields_ = [("prog_fd", ctypes.c_uint32), ("target_ifindex", ctypes.c_uint32),
                ("attach_type", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("_rest", ctypes.c_uint64 * 6)]


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


def _nr_bpf() -> int:
    machine = platform.machine()
    try:
        return _NR_BPF[machine]
    except KeyError:
        raise OSError(f"bpf(2) syscall number unknown for {machine}") from None


_NR = _nr_bpf()


def bpf(cmd: int, attr: ctypes.Structure) -> int:
    """Call bpf(2); returns the result, or ``-errno`` on failure."""
    ret = int(_syscall(_NR, cmd, ctypes.byref(attr), ctypes.sizeof(attr)))
    if ret < 0:
        return -ctypes.get_errno()
    return ret


class MapInfo(NamedTuple):
    type: int
    key_size: int
    value_size: int
    max_entries: int
    name: str


def map_info(fd: int) -> MapInfo:
    info = _MapInfo()
    attr = _InfoAttr(fd, ctypes.sizeof(info), ctypes.addressof(info))
    ret = bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    if ret < 0:
        raise OSError(-ret, f"bpf map info: {os.strerror(-ret)}")
    return MapInfo(info.type, info.key_size, info.value_size, info.max_entries,
                   info.name.decode(errors="replace"))


def obj_pin(fd: int, path: str) -> None:
    """Pin the map or program ``fd`` at ``path`` (in a bpffs)."""
    name = ctypes.create_string_buffer(path.encode())
    ret = bpf(BPF_OBJ_PIN, _ObjAttr(ctypes.addressof(name), fd, 0))
    if ret < 0:
        raise OSError(-ret, f"cannot pin at {path}: {os.strerror(-ret)}")


def obj_get(path: str) -> int:
    """A new fd of the object pinned at ``path``."""
    name = ctypes.create_string_buffer(path.encode())
    ret = bpf(BPF_OBJ_GET, _ObjAttr(ctypes.addressof(name), 0, 0))
    if ret < 0:
        raise OSError(-ret, f"cannot open the pin {path}: {os.strerror(-ret)}")
    return ret


def possible_cpus() -> int:
    """Number of possible CPUs (the stride count of per-CPU map values)."""
    try:
        text = Path("/sys/devices/system/cpu/possible").read_text().strip()
    except OSError:
        return os.cpu_count() or 1
    total = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        total += (int(hi) if hi else int(lo)) - int(lo) + 1
    return total


class BpfMap:
    """One BPF hash map by fd. Per-CPU maps take/return one value per possible CPU."""

    def __init__(self, fd: int) -> None:
        info = map_info(fd)
        self.fd = fd
        self.info = info
        self.key_size = info.key_size
        self.percpu = info.type in PERCPU_MAP_TYPES
        self.ncpus = possible_cpus() if self.percpu else 1
        stride = (info.value_size + 7) & ~7 if self.percpu else info.value_size
        self.value_buf_size = stride * self.ncpus
        self._value = ctypes.create_string_buffer(self.value_buf_size)
        self._next = ctypes.create_string_buffer(max(1, self.key_size))

    def _attr(self, key: bytes | None, value: int, flags: int = 0) -> _MapElemAttr:
        # the bytes object stays referenced by the caller for the duration of the call
        kaddr = 0 if key is None else ctypes.cast(ctypes.c_char_p(key), ctypes.c_void_p).value or 0
        return _MapElemAttr(self.fd, 0, kaddr, value, flags)

    def update(self, key: bytes, value: bytes, flags: int = BPF_ANY) -> int:
        """Insert/replace; returns 0 or the errno (E2BIG when full, EEXIST with NOEXIST)."""
        if len(key) != self.key_size:
            raise ValueError(f"key is {len(key)} bytes, map {self.info.name} wants {self.key_size}")
        if self.percpu and len(value) != self.value_buf_size:
            value = (value.ljust((self.info.value_size + 7) & ~7, b"\0")) * self.ncpus
        vbuf = ctypes.create_string_buffer(value, len(value))
        ret = bpf(BPF_MAP_UPDATE_ELEM, self._attr(key, ctypes.addressof(vbuf), flags))
        return 0 if ret >= 0 else -ret

    def lookup(self, key: bytes) -> bytes | None:
        ret = bpf(BPF_MAP_LOOKUP_ELEM, self._attr(key, ctypes.addressof(self._value)))
        if ret < 0:
            return None
        return self._value.raw

    def delete(self, key: bytes) -> bool:
        return bpf(BPF_MAP_DELETE_ELEM, self._attr(key, 0)) >= 0

    def keys(self) -> Iterator[bytes]:
        prev: bytes | None = None
        while True:
            attr = self._attr(prev, ctypes.addressof(self._next))
            if bpf(BPF_MAP_GET_NEXT_KEY, attr) < 0:
                return
            prev = self._next.raw[: self.key_size]
            yield prev

    def __len__(self) -> int:
        return sum(1 for _ in self.keys())


def xdp_link_create(prog_fd: int, ifindex: int, flags: int) -> int:
    """Attach an XDP program through a BPF link; returns the link fd. The program stays
    attached while the fd is open in any process, and is detached by the kernel when the
    last copy closes, including when the process dies: no state survives a crash."""
    attr = _LinkCreateAttr(prog_fd, ifindex, BPF_XDP, flags)
    ret = bpf(BPF_LINK_CREATE, attr)
    if ret < 0:
        raise OSError(-ret, f"XDP attach (BPF_LINK_CREATE): {os.strerror(-ret)}")
    return ret


def prog_test_run(prog_fd: int, frame: bytes) -> int:
    """Run a loaded program once on ``frame`` (an Ethernet frame) with BPF_PROG_TEST_RUN and
    return its return value. The kernel builds the skb (or xdp_buff) itself; socket
    programs see the frame as received (network header after the Ethernet header; VLAN
    tags stay in the data). For tests and diagnostics: no interface or traffic needed."""
    data = ctypes.create_string_buffer(frame, len(frame))
    out = ctypes.create_string_buffer(len(frame) + 256)
    attr = _TestRunAttr(prog_fd, 0, len(frame), len(out), ctypes.addressof(data),
                        ctypes.addressof(out), 1)
    ret = bpf(BPF_PROG_TEST_RUN, attr)
    if ret < 0:
        raise OSError(-ret, f"BPF_PROG_TEST_RUN: {os.strerror(-ret)}")
    return int(attr.retval)
