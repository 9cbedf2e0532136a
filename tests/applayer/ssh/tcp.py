"""Frames of one TCP connection with correct sequence numbers, for the in-memory backend."""

from __future__ import annotations

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether


class TcpConversation:
    def __init__(self, client: str = "10.0.0.1", server: str = "10.0.0.2",
                 cport: int = 40000, sport: int = 2222, mss: int = 1448) -> None:
        self.client, self.server, self.cport, self.sport = client, server, cport, sport
        self.mss = mss
        self.seq = {True: 1000, False: 5000}
        self.ts = 1.0
        self.frames: list[tuple[float, bytes]] = []

    def _frame(self, to_server: bool, flags: str, data: bytes = b"") -> None:
        src, dst = (self.client, self.server) if to_server else (self.server, self.client)
        sport, dport = (self.cport, self.sport) if to_server else (self.sport, self.cport)
        pkt = Ether() / IP(src=src, dst=dst) / TCP(
            sport=sport, dport=dport, flags=flags, seq=self.seq[to_server],
            ack=self.seq[not to_server]) / data
        self.frames.append((self.ts, bytes(pkt)))
        self.ts += 0.001
        self.seq[to_server] += len(data) + (1 if "S" in flags or "F" in flags else 0)

    def handshake(self) -> None:
        self._frame(True, "S")
        self._frame(False, "SA")
        self._frame(True, "A")

    def send(self, to_server: bool, data: bytes) -> None:
        """``data`` in MSS-sized segments, each acknowledged."""
        for i in range(0, len(data), self.mss):
            self._frame(to_server, "PA", data[i : i + self.mss])
            self._frame(not to_server, "A")

    def close(self) -> None:
        self._frame(True, "FA")
        self._frame(False, "FA")
        self._frame(True, "A")
