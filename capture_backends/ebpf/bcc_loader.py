"""Alternative loader: BCC (Debian ``python3-bpfcc``, module ``bcc``), compiling the ``.c``
sources at run time with ``-DUSE_BCC``.

BCC's compiler front-end wants kernel headers. This machine (like many containers and VMs)
has none for its running kernel, so when ``/lib/modules/$(uname -r)/build`` is missing,
``BCC_KERNEL_SOURCE`` points at ``bpf/minik``: a few stand-in headers that are enough for
networking programs. A user's own ``BCC_KERNEL_SOURCE`` is respected.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from capture_backends.ebpf.bundle import bundled_dir


def available() -> str | None:
    try:
        import bcc  # noqa: F401
    except ImportError as exc:
        return (f"BCC python module not importable ({exc}); install Debian package python3-bpfcc "
                f"(a venv needs a symlink to /usr/lib/python3/dist-packages/bcc: `make setup`)")
    return None


def _ensure_kernel_headers() -> None:
    if os.environ.get("BCC_KERNEL_SOURCE"):
        return
    release = os.uname().release
    if Path(f"/lib/modules/{release}/build/include").is_dir():
        return
    os.environ["BCC_KERNEL_SOURCE"] = str(bundled_dir() / "minik")


_LOCAL_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$', re.MULTILINE)


def inline_local_includes(path: Path, seen: set[Path] | None = None) -> str:
    """The source with its ``#include "local.h"`` lines replaced by the headers' text.

    BCC rewrites map syntax (``table.lookup(k)``) only in the main file it is given, so
    helpers in our shared headers must become part of it. Each header is inlined once."""
    seen = set() if seen is None else seen
    text = path.read_text()

    def expand(match: re.Match[str]) -> str:
        header = (path.parent / match.group(1)).resolve()
        if header in seen or not header.is_file():
            return "" if header in seen else match.group(0)
        seen.add(header)
        return inline_local_includes(header, seen)

    return _LOCAL_INCLUDE.sub(expand, text)


def source_for(path: str | os.PathLike[str]) -> Path:
    """BCC compiles C: for ``x.o`` use the ``x.c`` beside it."""
    p = Path(path)
    return p.with_suffix(".c") if p.suffix == ".o" else p


class BccObject:
    """One C source compiled and loaded by BCC; same surface as ``LibbpfObject``."""

    def __init__(self, path: str | os.PathLike[str], *, map_entries: int | None = None,
                 percpu: bool = False, kind: str = "socket", vlan_in_key: bool = True) -> None:
        self.path = source_for(path)
        if not self.path.is_file():
            raise OSError(2, f"BPF source {self.path} not found (BCC compiles the .c file)")
        reason = available()
        if reason:
            raise OSError(2, reason)
        _ensure_kernel_headers()
        from bcc import BPF

        cflags = ["-DUSE_BCC", f"-I{self.path.parent}", "-Wno-unused-value"]
        if map_entries is not None:
            cflags.append(f"-DMAP_ENTRIES={int(map_entries)}")
        if percpu:
            cflags.append("-DUSE_PERCPU")
        cflags.append(f"-DVLAN_IN_KEY={int(vlan_in_key)}")
        self._kind = BPF.XDP if kind == "xdp" else BPF.SOCKET_FILTER
        try:
            text = inline_local_includes(self.path)
            self._bpf: Any = BPF(text=text.encode(), cflags=cflags)
        except Exception as exc:  # BCC raises bare Exception on compile errors
            raise OSError(22, f"BCC could not compile {self.path.name}: {exc}") from exc
        self._closed = False

    def program_fd(self, name: str | None = None) -> int:
        if self._closed:
            raise OSError(9, "BCC object closed")
        if name is None:
            raise KeyError("BCC needs the program's function name")
        try:
            fn = self._bpf.load_func(name.encode(), self._kind)
        except Exception as exc:
            raise OSError(22, f"BCC could not load {name} from {self.path.name}: {exc}") from exc
        return int(fn.fd)

    def map_fd(self, name: str) -> int | None:
        if self._closed:
            return None
        try:
            return int(self._bpf.get_table(name.encode()).map_fd)
        except (KeyError, Exception):
            return None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._bpf.cleanup()
