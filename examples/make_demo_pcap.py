"""Build examples/pcaps/http-demo.pcap with scapy (run once; the pcap is committed).

Four HTTP/1.1 conversations over complete TCP handshakes:
1. GET /index.html                      - benign
2. GET /admin/config.php?cmd=id, with a suspicious User-Agent "sqlmap/1.7"
3. POST /login with a body containing "password=hunter2"
4. GET /downloads/big.iso answered by a 256 KiB body - an "elephant" flow; the demo
   rules bypass it after the response headers, so the rest is not inspected.
"""

from __future__ import annotations

import sys
from pathlib import Path

from scapy.all import IP, TCP, Ether, wrpcap  # type: ignore[import-untyped]

CLIENT, SERVER = "192.168.56.10", "192.168.56.20"
MSS = 1400


class Conversation:
    def __init__(self, sport: int, t0: float) -> None:
        self.sport = sport
        self.t = t0
        self.cseq, self.sseq = 1000, 50000
        self.frames: list[object] = []

    def _pkt(self, from_client: bool, flags: str, payload: bytes = b"") -> None:
        self.t += 0.001
        if from_client:
            ip = IP(src=CLIENT, dst=SERVER) / TCP(sport=self.sport, dport=80, flags=flags,
                                                  seq=self.cseq, ack=self.sseq)
        else:
            ip = IP(src=SERVER, dst=CLIENT) / TCP(sport=80, dport=self.sport, flags=flags,
                                                  seq=self.sseq, ack=self.cseq)
        frame = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / ip / payload
        frame.time = self.t
        self.frames.append(frame)
        step = len(payload) + (1 if "S" in flags or "F" in flags else 0)
        if from_client:
            self.cseq += step
        else:
            self.sseq += step

    def handshake(self) -> None:
        self._pkt(True, "S")
        self._pkt(False, "SA")
        self._pkt(True, "A")

    def send(self, from_client: bool, data: bytes) -> None:
        for i in range(0, len(data), MSS):
            self._pkt(from_client, "PA", data[i:i + MSS])
            self._pkt(not from_client, "A")

    def close(self) -> None:
        self._pkt(True, "FA")
        self._pkt(False, "FA")
        self._pkt(True, "A")


def response(body: bytes, ctype: str = "text/html") -> bytes:
    return (f"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def build() -> list[object]:
    frames: list[object] = []
    exchanges = [
        (b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0\r\n\r\n",
         response(b"<html><body>hello</body></html>")),
        (b"GET /admin/config.php?cmd=id HTTP/1.1\r\nHost: www.example.com\r\n"
         b"User-Agent: sqlmap/1.7\r\n\r\n", response(b"uid=33(www-data)")),
        (b"POST /login HTTP/1.1\r\nHost: www.example.com\r\nContent-Type: "
         b"application/x-www-form-urlencoded\r\nContent-Length: 30\r\n\r\n"
         b"user=admin&password=hunter2xyz", response(b"welcome")),
        (b"GET /downloads/big.iso HTTP/1.1\r\nHost: mirror.example.com\r\n\r\n",
         response(bytes(range(256)) * 1024, "application/octet-stream")),
    ]
    for n, (request, reply) in enumerate(exchanges):
        conv = Conversation(40000 + n, 1_700_000_000.0 + n)
        conv.handshake()
        conv.send(True, request)
        conv.send(False, reply)
        conv.close()
        frames.extend(conv.frames)
    return frames


def main() -> int:
    default = Path(__file__).parent / "pcaps" / "http-demo.pcap"
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    out.parent.mkdir(parents=True, exist_ok=True)
    wrpcap(str(out), build())
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
