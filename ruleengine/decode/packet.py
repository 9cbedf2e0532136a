"""The decoded packet record that flows from decode to detection.

One ``Packet`` per captured frame is the only per-packet object the hot path
creates (``__slots__``, positional construction, no properties doing work).
Fields the decoder could not fill keep their defaults; anomalies go to ``events``
(Suricata decoder-event names such as ``"ipv4.trunc_pkt"``), never exceptions.
"""

from __future__ import annotations

# TCP flag bits (header values)
TH_FIN = 0x01
TH_SYN = 0x02
TH_RST = 0x04
TH_PUSH = 0x08
TH_ACK = 0x10
TH_URG = 0x20
TH_ECE = 0x40
TH_CWR = 0x80

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58


class Packet:
    __slots__ = (  # noqa: RUF023  (grouped by layer, not sorted)
        "ts",  # float seconds
        "pkt_id",  # backend's opaque id (verdict/bypass), 0 offline
        "length",  # captured frame length (bytes)
        "ip_version",  # 4, 6 or 0 (not IP)
        "src",  # packed address bytes (b"" if not IP)
        "dst",
        "proto",  # IP protocol number (after IPv6 extension headers)
        "ttl",  # TTL / hop limit
        "ip_id",
        "ip_len",  # IP total length (header + payload)
        "sport",  # 0 unless TCP/UDP (ICMP: 0)
        "dport",
        "tcp_flags",
        "seq",
        "ack",
        "window",
        "icmp_type",
        "icmp_code",
        "payload",  # L4 payload bytes (TCP/UDP data, ICMP data, IP payload otherwise)
        "vlan",  # tuple of VLAN ids, outermost first
        "events",  # list[str] | None: decoder anomalies
        "invalid",  # True: do not track/inspect (counted as invalid)
        "checksum_ok",  # False when a checked checksum failed
        "frag",  # True for a packet reassembled from IP fragments
        "ip_header",  # bytes of the IP header (for ip-only keywords), b"" if none
        "l4_header",  # bytes of the TCP/UDP/ICMP header
        # ICMP destination-unreachable only: the quoted packet's
        # (src, dst, sport, dport, proto), used to attach the error to that flow
        "icmp_emb",
        "pseudo",  # True: a flow-end pseudo packet (no wire packet; packet keywords skip it)
        # Decoded from inside a tunnel (GRE, VXLAN, Geneve, IP-in-IP ...): the outermost
        # packet's (ip_version, src, dst, sport, dport, proto) and the tunnel depth, as
        # Suricata's p->root and p->recursion_level; None for a packet not in a tunnel.
        # Every other field describes the innermost packet.
        "tunnel",
    )

    def __init__(
        self,
        ts: float,
        pkt_id: int,
        length: int,
        ip_version: int = 0,
        src: bytes = b"",
        dst: bytes = b"",
        proto: int = 0,
        sport: int = 0,
        dport: int = 0,
        payload: bytes = b"",
    ) -> None:
        self.ts = ts
        self.pkt_id = pkt_id
        self.length = length
        self.ip_version = ip_version
        self.src = src
        self.dst = dst
        self.proto = proto
        self.ttl = 0
        self.ip_id = 0
        self.ip_len = 0
        self.sport = sport
        self.dport = dport
        self.tcp_flags = 0
        self.seq = 0
        self.ack = 0
        self.window = 0
        self.icmp_type = -1
        self.icmp_code = -1
        self.payload = payload
        self.vlan: tuple[int, ...] = ()
        self.events: list[str] | None = None
        self.invalid = False
        self.checksum_ok = True
        self.frag = False
        self.ip_header = b""
        self.l4_header = b""
        self.icmp_emb: tuple[bytes, bytes, int, int, int] | None = None
        self.pseudo = False
        self.tunnel: tuple[int, bytes, bytes, int, int, int, int] | None = None

    def add_event(self, name: str) -> None:
        if self.events is None:
            self.events = [name]
        else:
            self.events.append(name)

    def __repr__(self) -> str:
        return (
            f"Packet(ts={self.ts:.6f}, v{self.ip_version}, proto={self.proto}, "
            f"{self.src.hex()}:{self.sport} -> {self.dst.hex()}:{self.dport}, "
            f"flags={self.tcp_flags:#x}, len(payload)={len(self.payload)})"
        )
