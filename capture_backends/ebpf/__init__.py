"""eBPF support for the AF_PACKET backend: program loaders and flow-table layouts.

* ``layout``      key/value layouts of the bypass flow tables (mirror of bpf/flow_keys.h)
* ``syscall``     bpf(2) map access and XDP link attachment, shared by both loaders
* ``libbpf``      default loader: prebuilt .o files through libbpf via ctypes
* ``bcc_loader``  alternative loader: BCC compiles the .c sources at run time
* ``pins``        pinned flow tables (bpffs): reused across restarts, stale ones replaced

``open_object`` picks the loader by name. Bundled programs live in package
``capture_backends.bpf`` (the repository's bpf/ directory).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from capture_backends.ebpf.bundle import bundled_dir as bundled_dir
from capture_backends.ebpf.bundle import bundled_path as bundled_path

LOADERS = ("libbpf", "bcc")
SOCKET_FILTER_OBJECT = "bypass_filter.o"
XDP_FILTER_OBJECT = "xdp_filter.o"
LB_OBJECT = "lb.o"
SOCKET_FILTER_PROGRAM = "bypass_filter"
XDP_FILTER_PROGRAM = "xdp_bypass"
LB_PROGRAM = "lb_symmetric"


class BpfObject(Protocol):
    def program_fd(self, name: str | None = None) -> int: ...
    def map_fd(self, name: str) -> int | None: ...
    def close(self) -> None: ...


def loader_unavailable(loader: str) -> str | None:
    """None when ``loader`` can be used here, else why not."""
    if loader == "libbpf":
        from capture_backends.ebpf import libbpf

        return libbpf.available()
    if loader == "bcc":
        from capture_backends.ebpf import bcc_loader

        return bcc_loader.available()
    return f"unknown eBPF loader {loader!r} (choose one of {', '.join(LOADERS)})"


def open_object(loader: str, path: str | os.PathLike[str], *, kind: str = "socket",
                tables: tuple[str, ...] = (), map_entries: int | None = None,
                percpu: bool = False, vlan_in_key: bool = True,
                pin_dir: Path | None = None) -> BpfObject:
    """Load a BPF object with ``loader`` ("libbpf": the .o file; "bcc": the .c beside it).
    ``kind`` is "socket" (socket filter / fanout program) or "xdp". Maps named in ``tables``
    get ``map_entries`` entries and become per-CPU when ``percpu``. ``vlan_in_key`` False
    leaves VLAN ids out of flow keys and of the load-balancer hash. Raises OSError."""
    reason = loader_unavailable(loader)
    if reason:
        raise OSError(2, reason)
    if loader == "libbpf":
        from capture_backends.ebpf.libbpf import LibbpfObject

        return LibbpfObject(path, resize=tables, map_entries=map_entries, percpu=percpu,
                            vlan_in_key=vlan_in_key, pin_dir=pin_dir)
    if pin_dir is not None:
        raise OSError(95, "pinned-maps needs the libbpf loader (ebpf-loader: libbpf)")
    from capture_backends.ebpf.bcc_loader import BccObject

    return BccObject(path, map_entries=map_entries, percpu=percpu, kind=kind,
                     vlan_in_key=vlan_in_key)
