"""NFQUEUE inline backend: verdicts, bypass by mark, fail-open.

The kernel hands every packet that an ``-j NFQUEUE`` rule sends to queue N to the process
bound to N, and holds it until that process gives a verdict. This backend binds one or more
queues through the ``netfilterqueue`` binding (libnetfilter_queue) and adds what the binding
lacks, by sending NFQNL_MSG_CONFIG messages on the binding's own netlink socket (the kernel
accepts queue configuration only from the port id that bound the queue):

* ``NFQA_CFG_F_FAIL_OPEN``: when the queue (or our socket buffer) is full the kernel accepts
  packets instead of dropping them (``nfq.fail-open``);
* a copy range of 65535 bytes: the binding caps it at ~4 KB, which truncates loopback and
  other large-MTU packets;
* the queue length.

The receive loop is ours too (``recv`` of whole netlink messages, batched, over ``poll`` of
every bound queue plus a wake-up pipe); the buffered messages are handed to the binding's
parser with ``run_socket`` in one call per batch, so the per-packet work in Python is one
callback that stores the packet and queues ``(ts, ip_bytes, pkt_id)`` for the engine.

Bypass (Suricata's ``NFQBypassCallback``): ``bypass(flow, pkt_id)`` marks the verdict of that
packet with ``mark = (bypass_mark & mask) | (mark & ~mask)``; firewall rules (see
``capture_backends.iptables``) save the mark into the connection's connmark and restore it on
later packets, which are then accepted before they reach the queue.

Unlike Suricata, the mark is not only on the packet that triggered the bypass: the flow joins
a bounded table (``capture_backends.bypassed_flows``), and every packet of it that was already
queued (or is queued later, e.g. before the connmark rule sees the saved mark) is accepted
with the mark as soon as it is read, before the engine sees it. Operators' rules that save
the mark unconditionally (``-j CONNMARK --save-mark`` in INPUT/POSTROUTING, as Suricata's
documentation shows them) would otherwise wipe the connmark with the first unmarked verdict,
and the whole flow would be queued again.

``pkt_id`` is ``(queue index << 32) | kernel packet id``: ids are per queue, so the index keeps
them unique when several queues are bound.

Use::

    config, warnings = NfqConfig.from_yaml(yaml.get("nfq") or {}, queues=[0])
    backend = NfqBackend(config.with_install_rules(True))   # BackendUnavailable: message
    for ts, ip_packet, pkt_id in backend.packets():         # (now, b"", 0) = idle tick
        if ip_packet:
            if want_bypass:
                backend.bypass(flow_tuple, pkt_id)           # before the verdict
            backend.verdict(pkt_id, Verdict.ACCEPT)          # exactly once per packet
    backend.close()   # rules removed, packets still waiting accepted, queues unbound

Signal handlers call ``backend.stop()`` (or only stop the engine loop, which sees the idle
ticks). Packets the engine sends itself (reject) carry ``backend.inject_mark`` (SO_MARK) or
go through ``backend.inject(ip_packet)``, so the installed OUTPUT rule lets them out.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from capture_backends.base import (
    LINKTYPE_RAW,
    BackendUnavailable,
    BaseBackend,
    BypassCounters,
    Capability,
    CaptureStats,
    FlowTuple,
    RawPacket,
    Verdict,
)
from capture_backends.bypass_lists import BypassLists
from capture_backends.bypassed_flows import BypassedFlows, ip_key
from capture_backends.nfq_config import _U32, NfqConfig, NfqConfigError

__all__ = [
    "NfqBackend",
    "NfqConfig",
    "NfqConfigError",
    "NfqCounters",
    "build_batch_verdict",
    "build_config_message",
]

# --- netlink / nfnetlink_queue constants (linux/netlink.h, linux/netfilter/nfnetlink_queue.h)
NETLINK_NETFILTER = 12
SOL_NETLINK = 270
SO_RCVBUFFORCE = 33
NLMSG_ERROR = 2
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_CONFIG = 2
NFQNL_MSG_VERDICT_BATCH = 3
NFQA_VERDICT_HDR = 2
NF_ACCEPT = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQA_CFG_MASK = 4
NFQA_CFG_FLAGS = 5
NFQA_CFG_F_FAIL_OPEN = 0x1
NFQNL_COPY_PACKET = 2
COPY_RANGE_MAX = 0xFFFF

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid (host order)
_NFGENMSG = struct.Struct("!BBH")  # family, version, res_id (queue number, big endian)
_NLATTR = struct.Struct("=HH")
_ERROR_TYPE = struct.pack("=H", NLMSG_ERROR)
_RECV_SIZE = 65536 + 4096  # one queued packet (<= 64 KiB) plus its netlink attributes
_BATCH = 64  # messages read per queue before the engine gets them
_POLL_MS = 250  # idle tick period: the engine's timers and stop flag run at least this often
# thread-self: the namespace of the thread that binds (tests bind from a setns'd thread)
_PROC_QUEUES = "/proc/thread-self/net/netfilter/nfnetlink_queue"
RULES_CHECK_S = 2.0  # how often installed firewall rules are checked for (and re-installed)


def _netns_id() -> str:
    try:
        return os.readlink("/proc/thread-self/ns/net")
    except OSError:
        return ""


def _stderr_notice(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)



@dataclass(frozen=True)
class NfqCounters:
    """Backend-side counters (the engine keeps its own ``ips.*`` counters)."""

    received: int = 0  # handed to the engine (packets())
    delivered: int = 0  # read from the kernel (every queued packet we got, judged or not)
    accepted: int = 0
    dropped: int = 0
    repeated: int = 0
    bypass_marked: int = 0
    already_marked: int = 0  # repeat mode: packets carrying the repeat mark, accepted unseen
    verdict_errors: int = 0  # unknown/duplicate packet ids, failed verdicts
    recv_errors: int = 0  # ENOBUFS and other receive failures
    bypass_v4: int = 0  # bypass() calls taken, by address family
    bypass_v6: int = 0
    injected: int = 0  # inject(): packets sent
    verdict_batches: int = 0  # batch messages (each accepted several packets)
    inject_errors: int = 0
    fast_path: int = 0  # packets of bypassed flows accepted with the mark before the engine
    rules_reinstalled: int = 0  # installed rules found removed (iptables -F) and put back
    rules_check_errors: int = 0  # the periodic rule check or its re-install failed
    list_bypassed: int = 0  # packets a bypass-lists entry matched: accepted with the mark
    shutdown_accepted: int = 0  # close(): read but never judged by the engine, accepted
    rules_leftover: int = 0  # rules of an earlier run (killed?) removed before installing


def _nlattr(kind: int, payload: bytes) -> bytes:
    length = _NLATTR.size + len(payload)
    return _NLATTR.pack(length, kind) + payload + b"\0" * (-length % 4)


def build_config_message(queue: int, seq: int, *, copy_range: int = COPY_RANGE_MAX,
                         maxlen: int | None = None, fail_open: bool | None = None) -> bytes:
    """An NFQNL_MSG_CONFIG request (with ACK) for ``queue``: copy mode/range, queue length,
    and the fail-open flag (set or cleared when not None)."""
    attrs = _nlattr(NFQA_CFG_PARAMS, struct.pack("!IB", copy_range, NFQNL_COPY_PACKET))
    if maxlen is not None:
        attrs += _nlattr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", maxlen))
    if fail_open is not None:
        attrs += _nlattr(NFQA_CFG_MASK, struct.pack("!I", NFQA_CFG_F_FAIL_OPEN))
        attrs += _nlattr(NFQA_CFG_FLAGS,
                         struct.pack("!I", NFQA_CFG_F_FAIL_OPEN if fail_open else 0))
    body = _NFGENMSG.pack(socket.AF_UNSPEC, 0, queue) + attrs
    kind = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_CONFIG
    flags = NLM_F_REQUEST | NLM_F_ACK
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, flags, seq, 0) + body


def build_batch_verdict(queue: int, packet_id: int, verdict: int) -> bytes:
    """An NFQNL_MSG_VERDICT_BATCH: ``verdict`` for every packet of ``queue`` still waiting
    whose id is <= ``packet_id``."""
    attrs = _nlattr(NFQA_VERDICT_HDR, struct.pack("!II", verdict, packet_id))
    body = _NFGENMSG.pack(socket.AF_UNSPEC, 0, queue) + attrs
    kind = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_VERDICT_BATCH
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, NLM_F_REQUEST, 0, 0) + body


def _ack_error(message: bytes, seq: int) -> int | None:
    """For an NLMSG_ERROR answering ``seq``: its errno (0 = success); else None."""
    if len(message) < _NLMSGHDR.size + 4:
        return None
    _length, kind, _flags, msg_seq, _pid = _NLMSGHDR.unpack_from(message)
    if kind != NLMSG_ERROR or msg_seq != seq:
        return None
    error: int = struct.unpack_from("=i", message, _NLMSGHDR.size)[0]
    return -error


class _Feed:
    """A socket stand-in for ``NetfilterQueue.run_socket``: returns buffered messages, then
    EAGAIN, which makes ``run_socket`` return."""

    __slots__ = ("buffers", "index")

    def __init__(self) -> None:
        self.buffers: list[bytes] = []
        self.index = 0

    def recv(self, _size: int) -> bytes:
        if self.index < len(self.buffers):
            data = self.buffers[self.index]
            self.index += 1
            return data
        raise BlockingIOError(errno.EAGAIN, "feed drained")

    def reset(self, buffers: list[bytes]) -> None:
        self.buffers = buffers
        self.index = 0


class _Queue:
    """One bound queue: the binding's handle, our dup of its netlink socket, pending packets."""

    __slots__ = ("base", "feed", "handle", "num", "sock")

    def __init__(self, num: int, base: int, handle: Any, sock: socket.socket) -> None:
        self.num = num
        self.base = base
        self.handle = handle
        self.sock = sock
        self.feed = _Feed()


def _has_net_admin() -> bool:
    """CAP_NET_ADMIN (bit 12) in the effective set; root without it cannot bind either."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) & (1 << 12))
    except (OSError, ValueError):
        pass
    return os.geteuid() == 0


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM (for the calling thread) while the firewall rules are removed and
    the pending packets get their verdicts: a second Ctrl-C must not leave rules behind. The
    held signal is delivered when the block ends."""
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    except (OSError, ValueError):
        old = None
    try:
        yield
    finally:
        if old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _load_binding() -> Any:
    try:
        import netfilterqueue
    except ImportError as exc:
        raise BackendUnavailable(
            "nfq: the netfilterqueue binding is not installed (pip install '.[nfq]'; it "
            f"builds against libnetfilter-queue-dev): {exc}") from None
    return netfilterqueue


class NfqBackend(BaseBackend):
    """Inline IPS on NFQUEUE queues. See the module docstring."""

    name: ClassVar[str] = "nfq"

    def __init__(self, config: NfqConfig) -> None:
        self.config = config
        self.linktype = LINKTYPE_RAW
        caps = Capability.LIVE | Capability.INLINE
        if config.bypass_mask:
            caps |= Capability.BYPASS  # no kernel counters: marks, not map entries
        self.capabilities = caps
        self._bypass_value = config.bypass_value
        self._bypass_keep = ~config.bypass_mask & _U32
        self._repeat = config.mode == "repeat"
        self._repeat_value = config.repeat_value
        self._repeat_keep = ~config.repeat_mask & _U32
        self._repeat_mask = config.repeat_mask
        # SO_MARK for the engine's own packets (reject): the installed rules let them out
        self.inject_mark = config.inject_value
        self._pending: dict[int, Any] = {}  # pkt_id -> netfilterqueue.Packet awaiting a verdict
        # Batched accepts (nfq.batchcount > 1, one queue, accept mode): the highest id whose
        # accept is deferred, and how many are deferred.
        self._batch_limit = (config.batchcount if config.batchcount > 1 and
                             len(config.queues) == 1 and config.mode == "accept" else 0)
        self._batch_id = 0
        self._batch_len = 0
        self._bypass_ids: set[int] = set()
        self._bypassed = BypassedFlows(config.bypass_table_size, vlan_in_key=False)
        # bypass-lists (set by the run): a CIDR/port entry's packets are accepted with the
        # bypass mark when read, never handed to the engine; the connmark rules keep the
        # rest of the connection out of the queue
        self.bypass_lists: BypassLists | None = None
        self._ready: list[RawPacket] = []
        self._queues: list[_Queue] = []
        self._by_fd: dict[int, _Queue] = {}
        self._counts = dict.fromkeys(NfqCounters.__dataclass_fields__, 0)
        self._stopping = False
        self._closed = False
        self._lock = threading.RLock()
        self._busy_thread: int | None = None
        self._rules: Any = None
        self._rules_next_check = 0.0
        self._rules_warned = False
        self._rules_netns = ""  # the rules live in this network namespace (tests: setns'd)
        self._hits_base = 0  # queue-rule hits counted by rules that were later removed
        # operators' NFQUEUE rules (not installed by us): their hits when we bound, the last
        # figure read, and what earlier (reloaded) copies counted
        self._op_start = self._op_last = self._op_done = 0
        self._hits_warned = False
        self._bound_netns = ""
        self._families = ("ipv4", "ipv6") if os.path.exists("/proc/net/if_inet6") else ("ipv4",)
        self._last_hits = 0
        # where run-time faults are reported, once each (the CLI passes its warning printer)
        self.notice: Callable[[str], None] = _stderr_notice
        self._proc: Any = None  # the namespace's nfnetlink_queue status file, opened at bind
        # kernel_queue_stats() as close() found it after the last verdict
        self.final_kernel: dict[int, dict[str, int]] = {}
        self.leftover_note = ""  # set when install found an earlier run's rules (said by the CLI)
        self._raw: dict[bool, socket.socket] = {}  # inject(): raw sockets by "is IPv6"
        self._seq = int(time.time()) & 0xFFFF
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._poll = select.poll()
        self._poll.register(self._wake_r, select.POLLIN)
        try:
            self._open()
        except BaseException:
            self._teardown()
            raise

    # -- set-up ---------------------------------------------------------------------------
    def _open(self) -> None:
        if not _has_net_admin():
            raise BackendUnavailable("nfq: binding a netfilter queue needs root (CAP_NET_ADMIN)")
        binding = _load_binding()
        with contextlib.suppress(OSError):
            self._proc = open(_PROC_QUEUES, "rb")  # noqa: SIM115 - kept open: re-read in stats()
        for index, num in enumerate(self.config.queues):
            self._bind(binding, index, num)
        self._bound_netns = _netns_id()
        if self.config.fail_open and not self.config.install_rules:
            from capture_backends.iptables import queue_rule_hits

            # an operator's rule counted packets before we bound (bypassed or dropped)
            start = queue_rule_hits(self.config.queues, self._families, self.config.iptables)
            self._op_start = self._op_last = start or 0
        if self.config.install_rules:
            from capture_backends.iptables import IptablesError, NfqRules

            rules = NfqRules.from_config(self.config)
            try:
                leftovers = rules.install()
            except IptablesError as exc:
                raise BackendUnavailable(f"nfq: cannot install firewall rules: {exc}") from None
            if leftovers:
                self._counts["rules_leftover"] = leftovers
                self.leftover_note = (
                    f"nfq: removed {leftovers} firewall rules {rules.tag} left by an earlier run "
                    "(killed?) before installing ours")
            self._rules = rules
            self._rules_netns = _netns_id()
            self._rules_next_check = time.monotonic() + RULES_CHECK_S

    def _bind(self, binding: Any, index: int, num: int) -> None:
        try:
            handle = binding.NetfilterQueue(af=socket.AF_INET)
        except OSError as exc:
            raise BackendUnavailable(f"nfq: cannot open nfnetlink_queue: {exc}") from None
        callback = self._make_callback(index << 32)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # rcvbuf sizing: we size it ourselves below
                handle.bind(num, callback, max_len=self.config.queue_maxlen,
                            mode=binding.COPY_PACKET)
        except OSError:
            raise BackendUnavailable(
                f"nfq: cannot bind queue {num}: another process has it bound "
                "(or the kernel lacks NETFILTER_NETLINK_QUEUE)") from None
        sock = socket.socket(fileno=os.dup(handle.get_fd()))
        queue = _Queue(num, index << 32, handle, sock)
        self._queues.append(queue)
        self._by_fd[sock.fileno()] = queue
        with contextlib.suppress(OSError):  # room for a full queue of MTU-sized packets
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE,
                            min(self.config.queue_maxlen * 2048, 256 << 20))
        self._configure(queue)
        sock.setblocking(False)
        self._poll.register(sock.fileno(), select.POLLIN)

    def _configure(self, queue: _Queue) -> None:
        """Copy range 64 KiB, queue length and fail-open, acknowledged by the kernel."""
        self._seq = (self._seq + 1) & _U32
        seq = self._seq
        message = build_config_message(queue.num, seq, maxlen=self.config.queue_maxlen,
                                       fail_open=self.config.fail_open)
        sock = queue.sock
        sock.settimeout(2.0)
        try:
            sock.send(message)
            while True:
                data = sock.recv(_RECV_SIZE)
                status = _ack_error(data, seq)
                if status is None:
                    queue.feed.buffers.append(data)  # a packet already queued: keep it
                    continue
                if status:
                    what = "fail-open" if self.config.fail_open else "copy range"
                    raise BackendUnavailable(
                        f"nfq: queue {queue.num}: the kernel refused the {what} configuration: "
                        f"{os.strerror(status)}")
                break
        except TimeoutError:
            raise BackendUnavailable(
                f"nfq: queue {queue.num}: no answer to the configuration request") from None
        except OSError as exc:
            raise BackendUnavailable(
                f"nfq: queue {queue.num}: configuration failed: {exc}") from None
        if queue.feed.buffers:
            self._dispatch(queue, queue.feed.buffers)

    def _make_callback(self, base: int) -> Any:
        pending = self._pending
        ready = self._ready
        counts = self._counts
        repeat = self._repeat
        repeat_mask = self._repeat_mask
        repeat_value = self._repeat_value
        now = time.time

        def on_packet(pkt: Any) -> None:
            # Runs inside the binding's C parser: it must never raise.
            try:
                counts["delivered"] += 1
                if repeat and pkt.mark & repeat_mask == repeat_value:
                    pkt.accept()  # already inspected (Suricata: "already treated")
                    counts["already_marked"] += 1
                    return
                payload = pkt.get_payload()
                pkt_id = base | pkt.id
                pending[pkt_id] = pkt
                ready.append((pkt.get_timestamp() or now(), payload, pkt_id))
            except Exception:
                # No payload (cannot happen in COPY_PACKET mode): never hold it back.
                counts["recv_errors"] += 1
                with contextlib.suppress(Exception):
                    pkt.accept()

        return on_packet

    # -- receiving ------------------------------------------------------------------------
    def packets(self) -> Iterator[RawPacket]:
        """Yield ``(ts, ip_packet, pkt_id)``; ``(now, b"", 0)`` ticks when idle (about every
        250 ms). Returns after ``stop()``/``close()``."""
        while not self._stopping:
            if self._rules is not None and time.monotonic() >= self._rules_next_check:
                self._check_rules()
            if not self._ready:
                self._flush_batch()  # never keep accepted packets waiting while we block
                self._fill(_POLL_MS)
                if not self._ready:
                    if self._stopping:
                        break
                    yield (time.time(), b"", 0)
                    continue
            batch = self._ready[:]
            del self._ready[:]
            self._counts["received"] += len(batch)
            keys = self._bypassed.keys
            lists = self.bypass_lists
            for item in batch:
                # Checked at yield time, not when read: a bypass decided on an earlier
                # packet of this batch applies to the rest of it.
                if keys and self._fast_path(item[1], item[2]):
                    continue
                if lists and self._list_path(lists, item[1], item[2]):
                    continue
                yield item

    def _check_rules(self) -> None:
        """Put our firewall rules back when someone removed them (``iptables -F``, a
        firewall reload) under the running engine: without them no packet reaches the queue
        and the host runs uninspected. Warned once; every re-install is counted."""
        from capture_backends.iptables import IptablesError

        self._rules_next_check = time.monotonic() + RULES_CHECK_S
        if _netns_id() != self._rules_netns:
            return  # iptables would look at another namespace's tables (a test's thread)
        rules = self._rules
        try:
            if rules.complete():
                return
            self._hits_base += self._last_hits  # the removed rules' counters are gone
            self._last_hits = 0
            rules.install()
        except IptablesError as exc:
            self._counts["rules_check_errors"] += 1
            if not self._rules_warned:
                self._rules_warned = True
                self.notice(f"nfq: checking the firewall rules {rules.tag} failed: {exc}")
            return
        self._counts["rules_reinstalled"] += 1
        if not self._rules_warned:
            self._rules_warned = True
            self.notice(
                f"nfq: the firewall rules {rules.tag} were removed under the running engine "
                f"(iptables -F or a firewall reload?); re-installed them (checked every "
                f"{RULES_CHECK_S:g} s, counted as capture.nfq.rules_reinstalled); to manage "
                "the rules yourself, run without --nfq-install-rules")

    def _fast_path(self, payload: bytes | memoryview, pkt_id: int) -> bool:
        """A packet of a bypassed flow: accept it with the bypass mark now. True if it was."""
        key = ip_key(payload) if isinstance(payload, bytes) else None
        if not self._bypassed.hit(key, len(payload)):
            return False
        self._counts["fast_path"] += 1
        self._bypass_ids.add(pkt_id)
        self.verdict(pkt_id, Verdict.ACCEPT)
        return True

    def _list_path(self, lists: BypassLists, payload: bytes | memoryview, pkt_id: int) -> bool:
        """A packet a bypass-lists entry matches: counted for the entry, accepted with the
        bypass mark (when one is configured) now. True if it was."""
        entry = lists.match_packet(bytes(payload))
        if entry is None:
            return False
        lists.count(entry, 1, len(payload))
        self._counts["list_bypassed"] += 1
        if self._bypass_value:
            self._bypass_ids.add(pkt_id)
        self.verdict(pkt_id, Verdict.ACCEPT)
        return True

    def _fill(self, timeout_ms: int) -> None:
        self._busy_thread = threading.get_ident()
        try:
            with self._lock:
                if self._closed:
                    return
                events = self._poll.poll(timeout_ms)
                for fd, _mask in events:
                    if fd == self._wake_r:
                        with contextlib.suppress(OSError):
                            os.read(self._wake_r, 512)
                        continue
                    queue = self._by_fd.get(fd)
                    if queue is not None:
                        self._dispatch(queue, self._read(queue))
        finally:
            self._busy_thread = None

    def _read(self, queue: _Queue) -> list[bytes]:
        messages: list[bytes] = []
        recv = queue.sock.recv
        for _ in range(_BATCH):
            try:
                messages.append(recv(_RECV_SIZE))
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            except OSError as exc:  # ENOBUFS: the kernel could not deliver (see fail-open)
                self._counts["recv_errors"] += 1
                if exc.errno != errno.ENOBUFS:
                    break
        return messages

    def _dispatch(self, queue: _Queue, messages: list[bytes]) -> None:
        if not messages:
            return
        feed = queue.feed
        packets = []
        for message in messages:
            if message[4:6] == _ERROR_TYPE:  # the kernel refused a verdict (no ACK asked)
                self._counts["verdict_errors"] += 1
            elif len(message) > _NLMSGHDR.size:
                packets.append(message)
        feed.reset(packets)
        try:
            queue.handle.run_socket(feed)
        except Exception:  # a malformed message: the binding gave up on this batch
            self._counts["recv_errors"] += 1
        feed.reset([])

    # -- verdicts -------------------------------------------------------------------------
    def verdict(self, pkt_id: int, verdict: Verdict) -> None:
        pkt = self._pending.pop(pkt_id, None)
        if pkt is None:  # unknown, already verdicted, or verdicted by close()
            self._counts["verdict_errors"] += 1
            return
        counts = self._counts
        try:
            if verdict == Verdict.DROP:
                self._bypass_ids.discard(pkt_id)
                self._flush_batch()
                pkt.drop()
                counts["dropped"] += 1
                return
            mark = pkt.mark
            if self._bypass_ids and pkt_id in self._bypass_ids:
                self._bypass_ids.discard(pkt_id)
                mark = self._bypass_value | (mark & self._bypass_keep)
                counts["bypass_marked"] += 1
            if self._repeat:
                pkt.set_mark(self._repeat_value | (mark & self._repeat_keep))
                pkt.repeat()
                counts["repeated"] += 1
                return
            counts["accepted"] += 1
            if mark != pkt.mark:
                self._flush_batch()
                pkt.set_mark(mark)
                pkt.accept()
            elif self._batch_limit and (not self._pending or next(iter(self._pending)) > pkt_id):
                # Every older packet of the (single) queue has its verdict: one batch
                # message accepts them all later (Suricata's nfq.batchcount).
                self._batch_id = pkt_id
                self._batch_len += 1
                if self._batch_len >= self._batch_limit:
                    self._flush_batch()
            else:
                pkt.accept()
        except (RuntimeError, OSError):
            counts["verdict_errors"] += 1

    def _flush_batch(self) -> None:
        """Send the pending batch accept (NFQNL_MSG_VERDICT_BATCH up to the last id)."""
        if not self._batch_len:
            return
        pkt_id, self._batch_len = self._batch_id, 0
        queue = self._queues[0]
        try:
            queue.sock.send(build_batch_verdict(queue.num, pkt_id & _U32, NF_ACCEPT))
            self._counts["verdict_batches"] += 1
        except OSError:
            self._counts["verdict_errors"] += 1

    def bypass(self, flow: FlowTuple, pkt_id: int) -> bool:
        """Mark ``pkt_id``'s verdict with the bypass mark, and the verdicts of every later
        packet of ``flow`` read from the queue. False when bypass-mask is 0 or the packet
        already has its verdict (the engine then bypasses locally). Called again for a
        packet of a flow already bypassed (one the fast path could not recognise, e.g. a
        fragment), it only marks that packet's verdict."""
        if not self._bypass_value or pkt_id not in self._pending:
            return False
        self._bypass_ids.add(pkt_id)
        if len(self._bypassed.keys) and self._bypassed.counters(flow) is not None:
            return True
        if flow.proto in (6, 17):
            self._bypassed.add(flow)
        self._counts["bypass_v6" if len(flow.src) == 16 else "bypass_v4"] += 1
        return True

    def fast_path_counters(self, flow: FlowTuple) -> BypassCounters | None:
        """The packets of ``flow`` that the fast path accepted with the mark (queued, but they
        never reached the engine); None when the flow is not in the table.

        ``fast_path_until`` is the default no-op here: a packet that reached the engine
        after a downgrade to local bypass would get its verdict without the mark, and an
        unconditional ``CONNMARK --save-mark`` would then wipe the flow's connmark."""
        return self._bypassed.counters(flow)

    def forget_bypassed(self, flow: FlowTuple) -> None:
        self._bypassed.discard(flow)

    def inject(self, ip_packet: bytes) -> bool:
        """Send a complete IPv4/IPv6 packet (e.g. the TCP RST or ICMP error of ``reject``)
        from this host, marked with ``inject_mark`` so the installed rules let it out
        instead of queueing it back to the engine. False (counted) when it cannot be sent."""
        if not ip_packet:
            return False
        v6 = ip_packet[0] >> 4 == 6
        try:
            sock = self._raw_socket(v6)
            if v6:
                dst = socket.inet_ntop(socket.AF_INET6, ip_packet[24:40])
                sock.sendto(ip_packet, (dst, 0))
            else:
                sock.sendto(ip_packet, (socket.inet_ntop(socket.AF_INET, ip_packet[16:20]), 0))
        except (OSError, ValueError):
            self._counts["inject_errors"] += 1
            return False
        self._counts["injected"] += 1
        return True

    def _raw_socket(self, v6: bool) -> socket.socket:
        sock = self._raw.get(v6)
        if sock is None:
            # IPPROTO_RAW implies "header included" for both families on Linux.
            family = socket.AF_INET6 if v6 else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_RAW)
            if self.inject_mark:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, self.inject_mark)
            self._raw[v6] = sock
        return sock

    @property
    def pending(self) -> int:
        """Packets handed to the engine (or read) that still await a verdict."""
        return len(self._pending)

    @property
    def rules(self) -> Any:
        """The installed ``capture_backends.iptables.NfqRules`` (None when not installed)."""
        return self._rules

    # -- statistics -----------------------------------------------------------------------
    def counters(self) -> NfqCounters:
        return NfqCounters(**self._counts)

    def kernel_queue_stats(self) -> dict[int, dict[str, int]]:
        """Per-queue kernel counters from /proc/net/netfilter/nfnetlink_queue:
        ``total`` (waiting), ``dropped`` (queue full), ``user_dropped`` (socket full),
        ``id_sequence`` (packets queued so far)."""
        wanted = {q.num for q in self._queues}
        result: dict[int, dict[str, int]] = {}
        if self._proc is None:
            return result
        try:
            self._proc.seek(0)
            lines = self._proc.read().decode("ascii", "replace").splitlines()
        except (OSError, ValueError):
            return result
        for line in lines:
            fields = line.split()
            if len(fields) < 8 or not fields[0].isdigit():
                continue
            num = int(fields[0])
            if num in wanted:
                result[num] = {"total": int(fields[2]), "dropped": int(fields[5]),
                               "user_dropped": int(fields[6]), "id_sequence": int(fields[7])}
        return result

    def fail_open_accepted(self, kernel: dict[int, dict[str, int]] | None = None) -> int | None:
        """Packets the kernel accepted without queueing them (fail-open: queue or socket
        buffer full), whoever installed the NFQUEUE rules; None without fail-open.

        The kernel numbers a packet (``id_sequence``) before it tries our socket, so one
        accepted because the socket was full is ``id_sequence`` minus those delivered (or
        still in the socket). A full queue is checked before numbering and counted nowhere
        (``queue_dropped`` only without fail-open): those are the queue rules' hits (ours,
        or any rule of any table sending to our queues, from ``iptables-save -c``) minus
        the packets numbered. Without such a rule (nft without iptables-nft) only the
        socket part is counted, said once. Exact when the queue is quiet."""
        if not self.config.fail_open or _netns_id() != self._bound_netns:
            return None
        kernel = self.kernel_queue_stats() if kernel is None else kernel
        held = sum(q["total"] for q in kernel.values())  # delivered or in our socket, no verdict
        unread = max(0, held - len(self._pending) - self._batch_len)
        delivered = self._counts["delivered"]
        hits = self._queue_hits()
        if hits is None:
            numbered = sum(q["id_sequence"] for q in kernel.values())
            return max(0, numbered - delivered - unread)
        return max(0, hits - delivered - unread)

    def _queue_hits(self) -> int | None:
        """Packets the NFQUEUE rules sent to our queues since we bound them."""
        from capture_backends.iptables import IptablesError, queue_rule_hits

        if self._rules is not None:
            try:
                self._last_hits = self._rules.queue_hits()
            except IptablesError:
                return None
            return self._hits_base + self._last_hits
        raw = queue_rule_hits(self.config.queues, self._families, self.config.iptables)
        if raw is None:
            if not self._hits_warned:
                self._hits_warned = True
                queues = ",".join(str(q) for q in self.config.queues)
                self.notice(f"nfq: no iptables rule sending to queue {queues} found; packets "
                            "fail-open accepted while the queue was full cannot be counted "
                            "(only those of a full socket: capture.nfq.fail_open_accepted)")
            return None
        if raw < self._op_last:  # the rules were reloaded or zeroed: their counts restart
            self._op_done += self._op_last - self._op_start
            self._op_start = 0
        self._op_last = raw
        return self._op_done + raw - self._op_start

    def stats(self) -> CaptureStats:
        kernel = self.kernel_queue_stats()
        drops = sum(q["dropped"] + q["user_dropped"] for q in kernel.values())
        extra: list[tuple[str, int]] = []
        fail_open = self.fail_open_accepted(kernel)
        if fail_open is not None:
            extra.append(("nfq.fail_open_accepted", fail_open))
        if self._rules is not None:
            extra.append(("nfq.rules_reinstalled", self._counts["rules_reinstalled"]))
        if self.bypass_lists is not None:
            extra.append(("nfq.list_bypassed", self._counts["list_bypassed"]))
        return CaptureStats(
            kernel_packets=self._counts["received"] + self._counts["already_marked"],
            kernel_drops=drops,
            errors=self._counts["recv_errors"] + self._counts["verdict_errors"],
            bypass_v4_success=self._counts["bypass_v4"],
            bypass_v6_success=self._counts["bypass_v6"],
            bypass_fast_path_pkts=self._counts["fast_path"],
            extra=tuple(extra),
        )

    # -- shutdown -------------------------------------------------------------------------
    def shutdown_summary(self) -> str:
        """After close(): what the kernel queued for us and what became of each packet, as
        one line (the kernel's figures from /proc/net/netfilter/nfnetlink_queue)."""
        kernel = self.final_kernel
        c = self._counts
        verdicts = c["accepted"] + c["dropped"] + c["repeated"] + c["already_marked"]
        queues = ",".join(str(n) for n in sorted(kernel)) or "-"
        queued = sum(q["id_sequence"] for q in kernel.values())
        return (f"nfq: queue {queues}: {queued} packets queued by the kernel, "
                f"{c['delivered']} read, {verdicts} verdicts ({c['accepted']} accepted, "
                f"{c['dropped']} dropped, {c['repeated'] + c['already_marked']} repeated; "
                f"{c['shutdown_accepted']} accepted at shutdown unjudged), "
                f"{sum(q['total'] for q in kernel.values())} still waiting, "
                f"{sum(q['dropped'] for q in kernel.values())} dropped by the kernel "
                f"(queue full), {sum(q['user_dropped'] for q in kernel.values())} "
                f"(socket full), {c['verdict_errors']} verdict errors")

    def stop(self) -> None:
        """Make ``packets()`` return soon. Safe from signal handlers and other threads."""
        self._stopping = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def close(self) -> None:
        """Remove installed rules, accept every packet still waiting (read or not yet read),
        unbind the queues. Idempotent. Called from a signal handler that interrupted this
        backend's own receive step, it only stops the loop; call it again afterwards."""
        if self._closed:
            return
        if self._busy_thread == threading.get_ident():
            self.stop()
            return
        self.stop()
        with self._lock, _signals_held():
            if self._closed:
                return
            self._closed = True
            # New packets stop arriving first, so the drain below terminates; packets the
            # kernel still holds for us when the queue is unbound would be dropped by it.
            self._remove_rules()
            for queue in self._queues:
                self._dispatch(queue, self._read_all(queue))
            self._ready.clear()
            self._counts["shutdown_accepted"] += len(self._pending)
            for pkt_id in list(self._pending):
                self.verdict(pkt_id, Verdict.ACCEPT)
            self._flush_batch()
            # the kernel's own figures once every packet it gave us has its verdict (the
            # queue disappears with the unbind below)
            self.final_kernel = self.kernel_queue_stats()
            self._teardown()

    def _read_all(self, queue: _Queue) -> list[bytes]:
        messages: list[bytes] = []
        for _ in range(1 << 16):
            chunk = self._read(queue)
            if not chunk:
                break
            messages.extend(chunk)
        return messages

    def _remove_rules(self) -> None:
        if self._rules is None:
            return
        from capture_backends.iptables import IptablesError

        with contextlib.suppress(IptablesError):
            self._rules.remove()
        self._rules = None

    def _teardown(self) -> None:
        for queue in self._queues:
            with contextlib.suppress(Exception):
                queue.handle.unbind()
            with contextlib.suppress(OSError):
                queue.sock.close()
        self._queues.clear()
        self._by_fd.clear()
        if self._proc is not None:
            with contextlib.suppress(OSError):
                self._proc.close()
            self._proc = None
        for raw in self._raw.values():
            raw.close()
        self._raw.clear()
        self._pending.clear()
        self._bypass_ids.clear()
        self._bypassed.clear()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake_r = self._wake_w = -1
        self._closed = True

    def __enter__(self) -> NfqBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
