"""Pinned bypass tables (``af-packet.pinned-maps``): the flow tables outlive the engine.

The tables are pinned as ``<dir>/<map name>`` in a bpffs (``pinned-maps-dir``, default
``/sys/fs/bpf``, mounted there if it is not a bpffs yet; the directory is
``pinned-maps-name``, default ``ruleengine-<interface>``). The next start reuses them before
its programs are loaded, so flows bypassed by the previous run stay out of user space across
a restart or a reload. A pinned table whose type, key or value size or number of entries
differs from what the program being loaded expects (another layout, another
``ebpf-map-entries`` or ``use-percpu-hash``) is stale: its pin is removed, with a message,
and the new table is pinned instead.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from capture_backends.ebpf import syscall

__all__ = ["BPFFS_MAGIC", "ensure_bpffs", "is_bpffs", "reuse_or_remove"]

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
