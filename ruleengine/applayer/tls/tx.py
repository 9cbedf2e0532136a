"""The single TLS transaction of a flow (Suricata's ``SSLState``: tx_id 0)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ruleengine.applayer.base import add_bounded
from ruleengine.applayer.tls.consts import (
    ClientProgress,
    ServerProgress,
)
from ruleengine.applayer.tls.x509 import CertInfo


@dataclass
class TlsSide:
    """One direction's handshake facts (Suricata's ``SSLStateConnp``)."""

    # record-layer version until the hello sets it, then the hello / supported_versions one
    version: int = 0
    hello_version: int | None = None  # the legacy version field of the hello
    random: bytes | None = None
    session_id: bytes | None = None
    sni: bytes | None = None
    ciphers: list[int] = field(default_factory=list)  # client: offered; server: [chosen]
    extensions: list[int] = field(default_factory=list)
    sig_algs: list[int] = field(default_factory=list)
    supported_versions: list[int] = field(default_factory=list)
    alpns: list[bytes] = field(default_factory=list)
    ja3_string: str | None = None  # ja3 (client) / ja3s (server)
    ja3_hash: str | None = None
    ja4: str | None = None  # client only
    certs: list[bytes] = field(default_factory=list)  # DER chain as sent
    cert_seen: bool = False  # a Certificate message was parsed
    cert0: CertInfo | None = None
    hello_seen: bool = False
    ccs: bool = False
    handshake_done: bool = False  # CCS / encrypted data / TLS 1.3 server hello
    closed: bool = False


class TlsTransaction:
    """What detection and EVE read. ``client`` / ``server`` hold each side's facts."""

    def __init__(self, max_events: int = 64) -> None:
        self.tx_id = 0
        self.request_progress = ClientProgress.IN_PROGRESS
        self.response_progress = ServerProgress.IN_PROGRESS
        self.events: list[str] = []
        self.events_dropped = 0
        self._max_events = max_events
        self.client = TlsSide()
        self.server = TlsSide()
        self.flags = 0  # ssl_state STATE_* flags ever seen
        self.current_flags = 0  # ssl_state flags of the record(s) of the latest feed
        self.session_resumed_flag = False  # SSL_AL_FLAG_SESSION_RESUMED
        self.log_without_cert = False  # SSL_AL_FLAG_LOG_WITHOUT_CERT (TLS 1.3)
        self.ch_version_extension = False
        self.early_data = False
        self.hello_retry = False
        self.sslv2 = False
        self.last_ts = 0.0
        # EVE switches copied from the settings (ja3/ja4 "auto" leaves them off)
        self.log_ja3 = False
        self.log_ja4 = False

    # -- contract -------------------------------------------------------------------------
    @property
    def request_complete(self) -> bool:
        return self.client.handshake_done or self.client.closed

    @property
    def response_complete(self) -> bool:
        return self.server.handshake_done or self.server.closed

    @property
    def complete(self) -> bool:
        return self.request_complete and self.response_complete

    # -- helpers --------------------------------------------------------------------------
    def add_event(self, name: str) -> None:
        if not add_bounded(self.events, name, self._max_events):
            self.events_dropped += 1

    def advance_client(self, value: int) -> None:
        if value > self.request_progress:
            self.request_progress = value

    def advance_server(self, value: int) -> None:
        if value > self.response_progress:
            self.response_progress = value

    def side(self, to_server: bool) -> TlsSide:
        return self.client if to_server else self.server

    @property
    def session_resumed(self) -> bool:
        """What EVE logs as ``session_resumed`` (``JsonTlsLogSessionResumed``): the flag, no
        server certificate, a ServerHello seen, not TLS 1.3."""
        return (
            self.session_resumed_flag
            and self.server.cert0 is None
            and self.server.hello_seen
            and not self.log_without_cert
        )
