"""``ruleengine doctor``: is this host ready for kernel bypass? Every check is real (a
syscall, a socket, a file the kernel exports, the firewall as iptables prints it); each
failed one prints its fix. Exit 0 only when no check failed (warnings do not fail).

    ruleengine doctor [-i IFACE] [--format text|json]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import resource
import shutil
import socket
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PASS, WARN, FAIL = "ok", "warn", "FAIL"
MEMLOCK_NEEDED = 64 << 20  # bytes: flow tables of 2 x 32768 entries and the programs


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "doctor", help="preflight: does this host have what kernel bypass needs?",
        description="Check everything AF_PACKET eBPF bypass and NFQ bypass need; print the "
        "fix for each failed check. Exit 0 only when ready.")
    parser.add_argument("-i", "--interface", help="also check this interface for XDP programs "
                        "(default: every interface)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(func=doctor_command)


def _bpf_syscall() -> Check:
    from capture_backends.ebpf import syscall

    class MapCreate(ctypes.Structure):
        _fields_ = [("map_type", ctypes.c_uint32), ("key_size", ctypes.c_uint32),
                    ("value_size", ctypes.c_uint32), ("max_entries", ctypes.c_uint32),
                    ("_rest", ctypes.c_uint64 * 12)]

    fd = syscall.bpf(0, MapCreate(1, 4, 4, 1))  # BPF_MAP_CREATE of a 1-entry hash
    if fd < 0:
        return Check("bpf syscall", FAIL, f"BPF_MAP_CREATE failed: {os.strerror(-fd)}",
                     "run as root (CAP_BPF + CAP_NET_ADMIN), kernel >= 4.18 with "
                     "CONFIG_BPF_SYSCALL=y; check kernel.unprivileged_bpf_disabled")
    os.close(fd)
    return Check("bpf syscall", PASS, "BPF_MAP_CREATE works")


def _jit() -> Check:
    try:
        value = Path("/proc/sys/net/core/bpf_jit_enable").read_text().strip()
    except OSError:
        return Check("bpf JIT", WARN, "/proc/sys/net/core/bpf_jit_enable not readable",
                     "mount /proc; programs then run interpreted (slower)")
    if value in ("1", "2"):
        return Check("bpf JIT", PASS, f"bpf_jit_enable = {value}")
    return Check("bpf JIT", FAIL, f"bpf_jit_enable = {value}: programs run interpreted",
                 "sysctl -w net.core.bpf_jit_enable=1")


def _btf() -> Check:
    if Path("/sys/kernel/btf/vmlinux").exists():
        return Check("BTF", PASS, "/sys/kernel/btf/vmlinux present")
    return Check("BTF", WARN, "no /sys/kernel/btf/vmlinux (the bundled programs do not need "
                 "CO-RE)", "a kernel built with CONFIG_DEBUG_INFO_BTF=y")


def _memlock() -> Check:
    soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    release = tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
    if soft == resource.RLIM_INFINITY or soft >= MEMLOCK_NEEDED:
        return Check("memlock", PASS, "RLIMIT_MEMLOCK " +
                     ("unlimited" if soft == resource.RLIM_INFINITY else f"{soft >> 20} MiB"))
    if release >= (5, 11):  # bpf memory is charged to the memory cgroup since 5.11
        return Check("memlock", PASS, f"RLIMIT_MEMLOCK {soft >> 10} KiB, but kernel "
                     f"{os.uname().release} accounts bpf memory in the memory cgroup")
    return Check("memlock", FAIL, f"RLIMIT_MEMLOCK {soft >> 10} KiB < {MEMLOCK_NEEDED >> 20} MiB",
                 "ulimit -l unlimited (or LimitMEMLOCK=infinity in the systemd unit)")


def _bpffs() -> Check:
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError as exc:
        return Check("bpffs", FAIL, f"/proc/mounts: {exc.strerror}", "mount /proc")
    points = [m.split()[1] for m in mounts if len(m.split()) > 2 and m.split()[2] == "bpf"]
    if points:
        return Check("bpffs", PASS, "mounted at " + ", ".join(points))
    # bypass itself works without it; only pinned maps (af-packet.pinned-maps) pin there
    return Check("bpffs", WARN, "no bpf filesystem mounted (pinned maps need one)",
                 "mount -t bpf bpf /sys/fs/bpf")


def _loaders() -> Check:
    from capture_backends import ebpf

    reasons = {name: ebpf.loader_unavailable(name) for name in ebpf.LOADERS}
    usable = [n for n, r in reasons.items() if r is None]
    detail = "; ".join(f"{n}: {'ok' if r is None else r}" for n, r in reasons.items())
    if usable:
        return Check("eBPF loader", PASS, detail)
    return Check("eBPF loader", FAIL, detail,
                 "apt-get install libbpf1 (or python3-bpfcc for --bpf-loader bcc)")


def _objects() -> Check:
    from capture_backends import ebpf

    names = (ebpf.SOCKET_FILTER_OBJECT, ebpf.LB_OBJECT, ebpf.XDP_FILTER_OBJECT)
    missing = [n for n in names if not ebpf.bundled_path(n).is_file()]
    if not missing:
        return Check("prebuilt objects", PASS, f"{', '.join(names)} in {ebpf.bundled_dir()}")
    return Check("prebuilt objects", FAIL, f"missing in {ebpf.bundled_dir()}: "
                 f"{', '.join(missing)}", "make -C bpf (needs clang-14 and libbpf-dev)")


def _fanout() -> Check:
    packet_fanout, fanout_hash = 18, 0
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    except OSError as exc:
        return Check("AF_PACKET fanout", FAIL, f"AF_PACKET socket: {exc.strerror}",
                     "run as root (CAP_NET_RAW); kernel with CONFIG_PACKET=y")
    try:
        group = (os.getpid() & 0xFFFF) | (fanout_hash << 16)
        sock.setsockopt(263, packet_fanout, struct.pack("I", group))  # SOL_PACKET
    except OSError as exc:
        return Check("AF_PACKET fanout", FAIL, f"PACKET_FANOUT: {exc.strerror}",
                     "a kernel with AF_PACKET fanout (>= 3.1)")
    finally:
        sock.close()
    return Check("AF_PACKET fanout", PASS, "PACKET_FANOUT (hash) accepted")


def _nfqueue() -> Check:
    if Path("/proc/net/netfilter/nfnetlink_queue").exists() or \
            Path("/sys/module/nfnetlink_queue").exists():
        return Check("NFQUEUE module", PASS, "nfnetlink_queue loaded")
    return Check("NFQUEUE module", FAIL, "nfnetlink_queue not loaded",
                 "modprobe nfnetlink_queue (and xt_NFQUEUE, xt_connmark, xt_mark)")


def iptables_order(rules: list[str]) -> list[str]:
    """Problems in ``iptables -t mangle -S`` output: in each chain that queues, the
    bypass mark must be restored from the connmark and accepted before the NFQUEUE rule,
    else a bypassed flow is queued again."""
    problems = []
    chains: dict[str, list[str]] = {}
    for line in rules:
        parts = line.split()
        if len(parts) > 2 and parts[0] == "-A":
            chains.setdefault(parts[1], []).append(line)
    for chain, lines in chains.items():
        first_queue = next((i for i, r in enumerate(lines) if "-j NFQUEUE" in r), None)
        if first_queue is None:
            continue
        before = lines[:first_queue]
        if not any("--mark" in r and "-j ACCEPT" in r for r in before):
            problems.append(f"{chain}: NFQUEUE (rule {first_queue + 1}) comes before any "
                            "'-m mark --mark X -j ACCEPT'")
        elif not any("--restore-mark" in r for r in before):
            problems.append(f"{chain}: no 'CONNMARK --restore-mark' before NFQUEUE")
    return problems


def _iptables() -> Check:
    tool = shutil.which("iptables")
    if tool is None:
        return Check("iptables order", WARN, "iptables not installed (NFQ bypass needs it)",
                     "apt-get install iptables")
    try:
        out = subprocess.run([tool, "-w", "5", "-t", "mangle", "-S"], capture_output=True,
                             text=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("iptables order", FAIL, f"iptables -t mangle -S: {exc}", "run as root")
    if out.returncode != 0:
        return Check("iptables order", FAIL, out.stderr.strip().splitlines()[-1:][0]
                     if out.stderr.strip() else f"exit {out.returncode}", "run as root")
    lines = out.stdout.splitlines()
    if not any("-j NFQUEUE" in r for r in lines):
        return Check("iptables order", PASS, "no NFQUEUE rule in mangle (run -q with "
                     "--nfq-install-rules installs them in the right order)")
    problems = iptables_order(lines)
    if problems:
        return Check("iptables order", FAIL, "; ".join(problems),
                     "put the mark rules first: python -m capture_backends.iptables -q N "
                     "prints them, or use --nfq-install-rules")
    return Check("iptables order", PASS, "mark restore + accept precede every NFQUEUE rule")


def _xdp(interface: str | None) -> Check:
    cmd = ["ip", "-o", "link", "show"] + (["dev", interface] if interface else [])
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("XDP programs", WARN, f"ip link: {exc}", "apt-get install iproute2")
    if out.returncode != 0:
        return Check("XDP programs", FAIL, out.stderr.strip() or "ip link failed",
                     "check the interface name")
    busy = []
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) > 1 and any(w.startswith("xdp") for w in parts[2:]):
            busy.append(parts[1].rstrip(":").split("@")[0])
    if busy:
        return Check("XDP programs", FAIL, "an XDP program is attached to " + ", ".join(busy),
                     "ip link set dev IFACE xdp off (or bpftool net detach) before running "
                     "with an XDP filter")
    return Check("XDP programs", PASS, "no XDP program on " + (interface or "any interface"))


def run_checks(interface: str | None = None) -> list[Check]:
    checks: list[Callable[[], Check]] = [_bpf_syscall, _jit, _btf, _memlock, _bpffs, _loaders,
                                         _objects, _fanout, _nfqueue, _iptables,
                                         lambda: _xdp(interface)]
    results = []
    for check in checks:
        try:
            results.append(check())
        except Exception as exc:  # a check that breaks is a failed check, never a traceback
            name = getattr(check, "__name__", "check").strip("_")
            results.append(Check(name, FAIL, f"{type(exc).__name__}: {exc}", ""))
    return results


def doctor_command(args: argparse.Namespace) -> int:
    results = run_checks(args.interface)
    failed = [c for c in results if c.status == FAIL]
    if args.format == "json":
        json.dump({"ready": not failed, "checks": [vars(c) for c in results]}, sys.stdout,
                  indent=1)
        sys.stdout.write("\n")
    else:
        for c in results:
            print(f"[{c.status:>4}] {c.name:<18} {c.detail}")
            if c.status != PASS and c.fix:
                print(f"{'':7} {'':<18} fix: {c.fix}")
        print("ready for bypass" if not failed else
              f"not ready: {len(failed)} check(s) failed")
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
    return 0 if not failed else 1
