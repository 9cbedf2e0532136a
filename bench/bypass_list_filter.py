"""Per-packet cost of the bypass filter's list lookups, timed by the kernel itself
(BPF_PROG_TEST_RUN ``repeat``: the average run time in ns) on one UDP frame that is not
bypassed (the worst case: every lookup misses). Compares this checkout's socket filter with
empty lists and with N CIDR + port entries. Run as root: ``python -m bench.bypass_list_filter``.
"""

from __future__ import annotations

import ctypes
import ipaddress
import sys
from pathlib import Path

from capture_backends import ebpf
from capture_backends.bypass_lists import LIST_MAPS, BypassLists, KernelLists
from capture_backends.ebpf import layout, syscall
from tests.capture_backends.afp_helpers import udp_frame

REPEAT = 200_000


def _time_ns(prog: int, frame: bytes) -> int:
    data = ctypes.create_string_buffer(frame, len(frame))
    attr = syscall._TestRunAttr(prog, 0, len(frame), 0, ctypes.addressof(data), 0, REPEAT)
    if syscall.bpf(syscall.BPF_PROG_TEST_RUN, attr) < 0:
        raise OSError("BPF_PROG_TEST_RUN failed")
    return int(attr.duration)


def main(entries: int = 1000) -> None:
    path = Path(__file__).resolve().parents[1] / "bpf" / "bypass_filter.o"
    obj = ebpf.open_object("libbpf", path, tables=(layout.MAP_V4, layout.MAP_V6),
                           map_entries=1024)
    prog = obj.program_fd(ebpf.SOCKET_FILTER_PROGRAM)
    maps = {name: syscall.BpfMap(fd) for name in LIST_MAPS
            if (fd := obj.map_fd(name)) is not None}
    frame = udp_frame(b"\x02" * 6, b"\x04" * 6, "192.0.2.1", "198.51.100.2", 40000, 53,
                      b"x" * 100)
    empty = min(_time_ns(prog, frame) for _ in range(5))
    lists = BypassLists()
    lines = [f"{ipaddress.IPv4Address(0x0A000000 + (i << 8))}/24" for i in range(entries)]
    lines += [f"port {1000 + i}" for i in range(entries)]
    tmp = Path("/tmp/bench-bypass-list.list")
    tmp.write_text("\n".join(lines) + "\n")
    lists.reload((str(tmp),))
    KernelLists(maps).sync(lists)
    full = min(_time_ns(prog, frame) for _ in range(5))
    tmp.unlink()
    obj.close()
    print(f"socket filter, miss: empty lists {empty} ns/packet, "
          f"{entries} CIDRs + {entries} ports {full} ns/packet")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
