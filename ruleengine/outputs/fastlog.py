"""``fast.log``: one line per alert, as Suricata's ``src/alert-fastlog.c`` writes it.

    11/14/2023-23:13:20.123456  [**] [1:2:3] msg [**] [Classification: Misc Attack] \
[Priority: 2] {TCP} 10.0.0.1:1234 -> 10.0.0.2:80

Details kept from Suricata:

* the time is the packet's, in *local* time, ``MM/DD/YYYY-HH:MM:SS.uuuuuu``
  (``CreateTimeString``), followed by two spaces;
* ``[Drop] `` before ``[**]`` when a drop/reject rule blocked the packet (IPS), ``[wDrop] ``
  when such a rule matched but the engine is not inline (it "would drop");
* a rule without classtype prints ``[Classification: (null)]`` (glibc's rendering of the NULL
  ``class_msg``), its priority defaults to 3;
* the protocol is the IANA keyword of ``known_proto[]`` (``TCP``, ``UDP``, ``ICMP``,
  ``IPv6-ICMP``...), ``PROTO:NNN`` for numbers Suricata has no name for;
* ICMP and ICMPv6 print the type and code where other protocols print ports; protocols
  without ports print 0;
* IPv6 addresses are written in full, eight zero-padded groups (``PrintInet``), not
  compressed as in EVE;
* a packet without IP layer gets Suricata's raw form (``[**] [Raw pkt: XX XX ...]``); the
  decoder keeps no link-layer bytes, so only the first 32 payload bytes it has are shown and
  the ``[pcap file packet: N]`` suffix is left out.

Each line is flushed as it is written (Suricata writes each alert through its file context
at once), so a live capture's ``fast.log`` can be tailed.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import IO, Protocol

from ruleengine.outputs.eve import OutputError, RuleLike
from ruleengine.outputs.sinks import reopen_requests

DEFAULT_FILENAME = "fast.log"

# IANA protocol keywords as Suricata's util-proto-name.c ``known_proto[]`` spells them,
# numbers 0..143 (0x3d, 0x3f, 0x44, 0x63, 0x72 are "Any" there too). One string, split:
# 144 quoted items would hide the table.
_KNOWN_PROTO = (  # noqa: SIM905
    "HOPOPT ICMP IGMP GGP IP-in-IP ST TCP CBT EGP IGP BBN-RCC-MON NVP-II PUP ARGUS EMCON XNET "
    "CHAOS UDP MUX DCN-MEAS HMP PRM XNS-IDP TRUNK-1 TRUNK-2 LEAF-1 LEAF-2 RDP IRTP ISO-TP4 "
    "NETBLT MFE-NSP MERIT-INP DCCP 3PC IDPR XTP DDP IDPR-CMTP TP++ IL IPv6 SDRP IPv6-Route "
    "IPv6-Frag IDRP RSVP GRE DSR BNA ESP AH I-NLSP SwIPe NARP MOBILE TLSP SKIP IPv6-ICMP "
    "IPv6-NoNxt IPv6-Opts Any CFTP Any SAT-EXPAK KRYPTOLAN RVD IPPC Any SAT-MON VISA IPCU CPNX "
    "CPHB WSN PVP BR-SAT-MON SUN-ND WB-MON WB-EXPAK ISO-IP VMTP SECURE-VMTP VINES TTP "
    "NSFNET-IGP DGP TCF EIGRP OSPF Sprite-RPC LARP MTP AX.25 OS MICP SCC-SP ETHERIP ENCAP Any "
    "GMTP IFMP PNNI PIM ARIS SCPS QNX A/N IPComp SNP Compaq-Peer IPX-in-IP VRRP PGM Any L2TP "
    "DDX IATP STP SRP UTI SMP SM PTP IS-IS FIRE CRTP CRUDP SSCOPMCE IPLT SPS PIPE SCTP FC "
    "RSVP-E2E-IGNORE Mobility UDPLite MPLS-in-IP manet HIP Shim6 WESP ROHC Ethernet"
).split()
_ICMP_PROTOS = (1, 58)
_DROP_ACTIONS = frozenset({"drop", "reject", "rejectsrc", "rejectdst", "rejectboth"})
_RAW_BYTES = 32  # Suricata prints at most this many bytes of a non-IP packet


class _Action(Protocol):
    @property
    def value(self) -> str: ...


class FastRule(RuleLike, Protocol):
    """What a line needs of a rule: an alert's fields and the action
    (``ruleengine.rules.model.Rule`` fits)."""

    @property
    def action(self) -> _Action: ...


class FastPacket(Protocol):
    """What a line needs of a packet (``ruleengine.decode.packet.Packet`` fits)."""

    ts: float
    ip_version: int
    src: bytes
    dst: bytes
    proto: int
    sport: int
    dport: int
    icmp_type: int
    icmp_code: int
    payload: bytes


def format_time(ts: float) -> str:
    """``MM/DD/YYYY-HH:MM:SS.uuuuuu`` in local time (Suricata's ``CreateTimeString``)."""
    micros = round(ts * 1_000_000)
    secs, usec = divmod(micros, 1_000_000)
    t = time.localtime(secs)
    return (f"{t.tm_mon:02d}/{t.tm_mday:02d}/{t.tm_year:04d}-"
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{usec:06d}")


def format_address(addr: bytes) -> str:
    """IPv4 dotted quad; IPv6 as eight ``%04x`` groups (Suricata's ``PrintInetIPv6``)."""
    if len(addr) == 4:
        return socket.inet_ntop(socket.AF_INET, addr)
    if len(addr) == 16:
        return ":".join(addr[i:i + 2].hex() for i in range(0, 16, 2))
    return addr.hex()


def proto_label(proto: int) -> str:
    if 0 <= proto < len(_KNOWN_PROTO):
        return _KNOWN_PROTO[proto]
    return f"PROTO:{proto:03d}"


def action_prefix(rule: FastRule, blocked: bool) -> str:
    if blocked:
        return "[Drop] "
    if rule.action.value in _DROP_ACTIONS:
        return "[wDrop] "
    return ""


def format_alert(pkt: FastPacket, rule: FastRule, category: str | None, priority: int, *,
                 blocked: bool) -> str:
    """One fast.log line, newline included."""
    head = (f"{format_time(pkt.ts)}  {action_prefix(rule, blocked)}[**] "
            f"[{int(rule.gid)}:{int(rule.sid)}:{int(rule.rev)}] {rule.msg} [**] "
            f"[Classification: {category if category is not None else '(null)'}] "
            f"[Priority: {int(priority)}]")
    if pkt.ip_version not in (4, 6):
        raw = " ".join(f"{b:02X}" for b in bytes(pkt.payload[:_RAW_BYTES]))
        return f"{head} [**] [Raw pkt: {raw}{' ' if raw else ''}]\n"
    if pkt.proto in _ICMP_PROTOS:
        src_part, dst_part = max(pkt.icmp_type, 0), max(pkt.icmp_code, 0)
    else:
        src_part, dst_part = pkt.sport, pkt.dport
    return (f"{head} {{{proto_label(pkt.proto)}}} {format_address(pkt.src)}:{int(src_part)} "
            f"-> {format_address(pkt.dst)}:{int(dst_part)}\n")


class FastLogWriter:
    """Appends (or, with ``append=False``, first truncates) ``path``; one line per alert.
    Raises ``OutputError`` when the file cannot be opened."""

    def __init__(self, path: str | Path, *, append: bool = True) -> None:
        self.path = Path(path)
        try:
            # line buffered: each alert reaches the file at once, as Suricata's does
            self._fh: IO[str] | None = open(  # noqa: SIM115 (closed by close())
                self.path, "a" if append else "w", encoding="utf-8",
                errors="surrogateescape", buffering=1)
        except OSError as exc:
            raise OutputError(f"fast.log: cannot open {self.path}: {exc.strerror}") from None
        self.alerts = 0
        self._reopens_seen = reopen_requests()

    def _reopen(self) -> None:
        """SIGHUP (logrotate): open the path again in append mode; on error keep the old
        file, as Suricata's SCConfLogReopen leaves nothing better to write to."""
        self._reopens_seen = reopen_requests()
        try:
            fresh = open(  # noqa: SIM115 (closed by close())
                self.path, "a", encoding="utf-8", errors="surrogateescape", buffering=1)
        except OSError:
            return
        if self._fh is not None:
            self._fh.close()
        self._fh = fresh

    def alert(self, pkt: FastPacket, rule: FastRule, category: str | None, priority: int, *,
              blocked: bool) -> None:
        if self._fh is None:
            return
        if self._reopens_seen != reopen_requests():
            self._reopen()
        self._fh.write(format_alert(pkt, rule, category, priority, blocked=blocked))
        self.alerts += 1

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
