"""CONNECT: the client's data waits for the response; an accepted CONNECT becomes a tunnel
(probed for HTTP again, as libhtp does), a refused one goes back to HTTP."""

from __future__ import annotations

from ruleengine.applayer.detect_proto import detect_app_proto
from ruleengine.applayer.http1.framing import BodyFraming
from ruleengine.applayer.http1.parse_state import (
    Side,
    State,
)
from ruleengine.applayer.http1.tx import HttpTransaction, Progress


class ConnectTunnel(BodyFraming):
    """The CONNECT method's wait, decision and tunnel."""

    # ------------------------------------------------------------------ CONNECT
    def _connect_wait(self, tx: HttpTransaction) -> None:
        """libhtp holds the client's data after a CONNECT until the response says whether a
        tunnel was opened (REQ_CONNECT_WAIT_RESPONSE)."""
        if tx.response_progress >= Progress.HEADERS:
            self._connect_decided(tx)
        else:
            self._connect_tx = tx
            self._req.state = State.CONNECT_WAIT

    def _on_connect_wait(self, side: Side) -> bool:
        if side.available() > self.config.field_limit:
            self._tunnel()  # no answer and a lot of client data: treat it as tunnelled
        return False

    def _connect_decided(self, tx: HttpTransaction) -> None:
        """The CONNECT response is known: resume HTTP parsing of the client side, or probe
        the tunnel (2xx) and stop if it does not carry HTTP."""
        self._connect_tx = None
        status = tx.status
        req = self._req
        if req.state in (State.STOPPED, State.IGNORE):
            return
        if status is not None and 200 <= status < 300:
            req.state = State.CONNECT_PROBE
        else:
            req.state = State.IDLE
        self._run(req)
        req.compact()

    def _on_connect_probe(self, side: Side) -> bool:
        verdict = detect_app_proto(bytes(side.buf[side.pos : side.pos + 24]), True)
        if verdict is None:
            return False
        if verdict == "http":
            side.state = State.IDLE  # HTTP inside the tunnel (libhtp REQ_CONNECT_PROBE_DATA)
            return True
        self._tunnel()
        return False

    def _tunnel(self) -> None:
        """CONNECT accepted or protocol switched: the rest is not HTTP/1.x."""
        for other in (self._req, self._resp):
            if other.state not in (State.STOPPED,):
                if other.tx is not None and other.state != State.IDLE:
                    self._complete(other)
                other.state = State.IGNORE
                other.pos = len(other.buf)
