"""A scripted TCP conversation through decoder → flow table → tracker."""

from __future__ import annotations

from ruleengine.decode.decoder import Decoder
from ruleengine.flow.table import Flow, FlowTable
from ruleengine.stream.tcp import StreamConfig, StreamUpdate, TcpTracker
from tests.decode.frames import tcp_frame


class Conn:
    def __init__(self, config: StreamConfig | None = None, isn_c: int = 1000, isn_s: int = 5000):
        self.decoder = Decoder(1)
        self.table = FlowTable()
        self.tracker = TcpTracker(config or StreamConfig())
        self.isn_c = isn_c
        self.isn_s = isn_s
        self.ts = 0.0
        self.flow: Flow | None = None
        self.updates: list[StreamUpdate] = []
        self.toserver = bytearray()
        self.toclient = bytearray()

    def send(self, flags: str, seq: int, ack: int = 0, data: bytes = b"", *, to_server: bool):
        self.ts += 0.001
        pkt = self.decoder.decode(self.ts, tcp_frame(flags, seq, ack, data, to_server=to_server))
        assert pkt is not None
        flow, ts = self.table.lookup(pkt)
        self.flow = flow
        upd = self.tracker.process(flow, pkt, ts)
        self._collect(upd)
        return upd

    def _collect(self, upd: StreamUpdate) -> None:
        self.updates.append(upd)
        for to_server, chunk in upd.data:
            (self.toserver if to_server else self.toclient).extend(chunk)

    # client/server helpers with offsets relative to ISN + 1
    def c(self, flags: str, off: int = 0, data: bytes = b"", ack_off: int | None = None):
        ack = self.isn_s + 1 + ack_off if ack_off is not None else 0
        return self.send(flags, self.isn_c + 1 + off, ack, data, to_server=True)

    def s(self, flags: str, off: int = 0, data: bytes = b"", ack_off: int | None = None):
        ack = self.isn_c + 1 + ack_off if ack_off is not None else 0
        return self.send(flags, self.isn_s + 1 + off, ack, data, to_server=False)

    def handshake(self) -> None:
        self.send("S", self.isn_c, to_server=True)
        self.send("SA", self.isn_s, self.isn_c + 1, to_server=False)
        self.send("A", self.isn_c + 1, self.isn_s + 1, to_server=True)

    def flush(self) -> StreamUpdate:
        assert self.flow is not None
        upd = self.tracker.flush(self.flow)
        self._collect(upd)
        return upd

    def events(self) -> list[str]:
        return [e for u in self.updates for e in u.events]
