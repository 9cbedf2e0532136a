"""Shared helpers for tests that need the real kernel (eBPF, AF_PACKET, NFQUEUE, iptables).

Everything here either works for real or skips the test with a printed reason; nothing is
simulated. Traffic only ever flows between two network namespaces this module creates.

Typical use::

    from tests import kernel

    @pytest.mark.kernel
    def test_something():
        kernel.require_root()
        with kernel.netns_pair() as net:
            net.run(net.ns_b, "ip", "link", "show")           # a command inside namespace B
            with net.entered(net.ns_b):                       # this thread now lives in B:
                rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # sockets made here
                rx.bind((net.v4_b, 5000))                               # stay in B afterwards
            with net.entered(net.ns_a):
                tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            tx.sendto(b"x", (net.v4_b, 5000))
            out = net.python(net.ns_b, "import os; print(os.getpid())")  # code in a fresh process

Namespaces, interfaces and processes started through ``popen`` are always removed on exit,
also when the test fails. Names include the pid (and a counter), so concurrent test runs and
several pairs in one test never collide.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import itertools
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

CLONE_NEWNET = 0x40000000
_SIOCETHTOOL = 0x8946
_ETHTOOL_STSO, _ETHTOOL_SGSO, _ETHTOOL_SGRO = 0x1F, 0x24, 0x2C
REPO_ROOT = Path(__file__).resolve().parent.parent
_counter = itertools.count()


# --------------------------------------------------------------------------------------------
# feature checks: each one skips the calling test (with the reason printed) when unmet
# --------------------------------------------------------------------------------------------


def skip(reason: str) -> None:
    """Skip the current test, printing the reason so it is visible even without ``-rs``."""
    print(f"SKIP: {reason}", file=sys.stderr)
    pytest.skip(reason)


def require_root() -> None:
    if os.geteuid() != 0:
        skip("needs root (network namespaces, AF_PACKET, eBPF)")


def require_command(*names: str) -> None:
    for name in names:
        if shutil.which(name) is None:
            skip(f"command {name!r} not found (install it: see APT_PACKAGES in the Makefile)")


def require_netns() -> None:
    """Root plus `ip netns` support."""
    require_root()
    require_command("ip")
    if not Path("/proc/self/ns/net").exists():
        skip("kernel without network namespaces")


def require_bpf() -> None:
    """Root and a kernel that accepts the bpf() syscall (map creation is the cheapest probe)."""
    require_root()
    libc = ctypes.CDLL(None, use_errno=True)
    # union bpf_attr for BPF_MAP_CREATE: map_type, key_size, value_size, max_entries (4 x u32)
    attr = (ctypes.c_uint32 * 32)(1, 4, 4, 1)  # BPF_MAP_TYPE_HASH
    nr_bpf = {"x86_64": 321, "aarch64": 280}.get(os.uname().machine)
    if nr_bpf is None:
        skip(f"bpf() syscall number unknown for {os.uname().machine}")
    fd = libc.syscall(nr_bpf, 0, ctypes.byref(attr), ctypes.sizeof(attr))
    if fd < 0:
        err = ctypes.get_errno()
        skip(f"bpf() syscall unavailable: {os.strerror(err)}")
    os.close(fd)


def require_file(path: str | os.PathLike[str], why: str) -> None:
    if not Path(path).exists():
        skip(f"{path} missing: {why}")


# --------------------------------------------------------------------------------------------
# namespaces
# --------------------------------------------------------------------------------------------


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc().setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def entered_netns(name: str) -> Iterator[None]:
    """Move the *calling thread* into network namespace ``name`` (made by ``ip netns add``)
    and back on exit. Sockets created inside stay in that namespace after the block;
    processes forked inside start in it."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/run/netns/{name}", os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


class NetnsPair:
    """Two namespaces ``ns_a``/``ns_b`` joined by veth ``if_a``/``if_b``.

    Addresses: ``v4_a``/``v4_b`` (/24) and ``v6_a``/``v6_b`` (/64, no DAD). Use the
    ``netns_pair()`` context manager rather than this class directly.
    """

    def __init__(self, tag: str = "re") -> None:
        n = next(_counter)
        pid = os.getpid()
        self.ns_a = f"{tag}-{pid}-{n}-a"
        self.ns_b = f"{tag}-{pid}-{n}-b"
        # interface names are limited to 15 bytes
        short = f"{pid % 10_000_000}{n % 100:02d}"
        self.if_a = f"v{short}a"
        self.if_b = f"v{short}b"
        octet = 1 + (pid + n) % 250  # any value works: the namespaces are isolated
        self.v4_a = f"10.{octet}.0.1"
        self.v4_b = f"10.{octet}.0.2"
        self.v6_a = f"fd00:{octet:x}::1"
        self.v6_b = f"fd00:{octet:x}::2"
        self._procs: list[subprocess.Popen[bytes]] = []
        self._created: list[str] = []

    # -- lifecycle --
    def setup(self) -> None:
        for ns in (self.ns_a, self.ns_b):
            _ip("netns", "add", ns)
            self._created.append(ns)
        self._add_link()

    def recreate_link(self) -> None:
        """Delete the veth pair and create it again, same names and addresses (an interface
        removed and re-created under a running capture)."""
        _ip("-n", self.ns_a, "link", "del", self.if_a, check=False)
        self._add_link()

    def _add_link(self) -> None:
        _ip("link", "add", self.if_a, "netns", self.ns_a, "type", "veth",
            "peer", "name", self.if_b, "netns", self.ns_b)
        for ns, ifname, v4, v6 in ((self.ns_a, self.if_a, self.v4_a, self.v6_a),
                                   (self.ns_b, self.if_b, self.v4_b, self.v6_b)):
            _ip("-n", ns, "addr", "add", f"{v4}/24", "dev", ifname)
            _ip("-n", ns, "addr", "add", f"{v6}/64", "dev", ifname, "nodad")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", ifname, "up")
            self.disable_offloads(ns, ifname)
        self._wait_link_up()

    def disable_offloads(self, ns: str, ifname: str) -> None:
        """TSO/GSO/GRO off so that captured frames are MTU-sized like on a real wire (veth
        otherwise hands 64 KiB TCP super-packets to taps). Uses the SIOCETHTOOL ioctl
        directly: the ethtool binary is not installed everywhere. Best effort."""
        with self.entered(ns):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for cmd in (_ETHTOOL_STSO, _ETHTOOL_SGSO, _ETHTOOL_SGRO):
                value = (ctypes.c_uint32 * 2)(cmd, 0)
                ifreq = struct.pack("16sP16x", ifname.encode(), ctypes.addressof(value))
                with contextlib.suppress(OSError):
                    fcntl.ioctl(s.fileno(), _SIOCETHTOOL, ifreq)
        finally:
            s.close()

    def _wait_link_up(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = _ip("-n", self.ns_b, "-o", "link", "show", self.if_b).stdout
            if "LOWER_UP" in out and "NO-CARRIER" not in out:
                return
            time.sleep(0.02)
        raise RuntimeError(f"veth {self.if_a}<->{self.if_b} did not come up")

    def teardown(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(Exception):
                proc.wait(timeout=5)
        self._procs.clear()
        for ns in self._created:  # deleting a namespace destroys its veth end (and the peer)
            _ip("netns", "del", ns, check=False)
        self._created.clear()

    # -- running things inside --
    def entered(self, ns: str) -> contextlib.AbstractContextManager[None]:
        """Context manager: the calling thread is in namespace ``ns`` inside the block."""
        return entered_netns(ns)

    def run(self, ns: str, *cmd: str, check: bool = True, timeout: float = 30,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command inside ``ns`` and wait for it."""
        return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True,
                              check=check, timeout=timeout, input=input)

    def popen(self, ns: str, *cmd: str, **kwargs: object) -> subprocess.Popen[bytes]:
        """Start a command inside ``ns``; it is killed at teardown if still running."""
        proc: subprocess.Popen[bytes] = subprocess.Popen(  # type: ignore[call-overload]
            ["ip", "netns", "exec", ns, *cmd], **kwargs)
        self._procs.append(proc)
        return proc

    def python(self, ns: str, code: str, *args: str, timeout: float = 60,
               check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``code`` with this interpreter (the venv) inside ``ns``; the repository root
        is importable. Returns the completed process (stdout/stderr as text)."""
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
        proc = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code, *args],
                              capture_output=True, text=True, timeout=timeout, env=env)
        if check and proc.returncode != 0:
            raise AssertionError(f"python in {ns} exited {proc.returncode}:\n{proc.stderr}")
        return proc

    def mac(self, ns: str, ifname: str) -> bytes:
        """The interface's MAC address (6 bytes)."""
        out = _ip("-n", ns, "-o", "link", "show", ifname).stdout
        return bytes.fromhex(out.split("link/ether ", 1)[1].split()[0].replace(":", ""))

    def raw_socket(self, ns: str, ifname: str) -> socket.socket:
        """An AF_PACKET socket in ``ns`` bound to ``ifname`` for sending hand-made frames
        (e.g. 802.1Q-tagged ones: this kernel has no 8021q module for VLAN devices, but
        the receive path untags frames in the core, so captures see real VLAN metadata)."""
        with self.entered(ns):
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        s.bind((ifname, 0))
        return s

    def ifindex(self, ns: str, ifname: str) -> int:
        out = _ip("-n", ns, "-o", "link", "show", ifname).stdout
        return int(out.split(":", 1)[0])


@contextlib.contextmanager
def netns_pair(tag: str = "re") -> Iterator[NetnsPair]:
    """Create a namespace pair joined by a veth pair; always torn down on exit."""
    require_netns()
    pair = NetnsPair(tag)
    try:
        pair.setup()
        yield pair
    finally:
        pair.teardown()


# --------------------------------------------------------------------------------------------
# small traffic helpers (sockets are created in a namespace, then used from anywhere)
# --------------------------------------------------------------------------------------------


def udp_socket(net: NetnsPair, ns: str, addr: str, port: int = 0) -> socket.socket:
    """A UDP socket living in ``ns`` bound to ``(addr, port)``."""
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with net.entered(ns):
        s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((addr, port))
    return s


def udp_exchange(tx: socket.socket, rx: socket.socket, count: int, size: int = 100,
                 reply: bool = False, pace_every: int = 50) -> int:
    """Send ``count`` datagrams ``tx`` -> ``rx`` (and, with ``reply``, one back per datagram
    received). Returns how many ``rx`` received. Bounded in time."""
    dst = rx.getsockname()[:2]
    src = tx.getsockname()[:2]
    payload = b"\xab" * size
    rx.settimeout(0.5)
    got = 0
    for i in range(count):
        tx.sendto(payload, dst)
        if pace_every and i % pace_every == pace_every - 1:
            time.sleep(0.001)  # veth queues are small: do not overrun the receiver
    deadline = time.monotonic() + 2.0
    while got < count and time.monotonic() < deadline:
        try:
            _data, peer = rx.recvfrom(65535)
        except TimeoutError:
            break
        got += 1
        if reply:
            rx.sendto(payload, peer[:2] if peer else src)
    return got


def wait_for(predicate: object, timeout: float = 3.0, interval: float = 0.02) -> bool:
    """Poll ``predicate()`` until it is truthy or ``timeout`` passes."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def commands_available(names: Sequence[str]) -> bool:
    return all(shutil.which(n) for n in names)
