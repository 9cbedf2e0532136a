"""Sans-IO FTP command-channel parser (Suricata's ``src/app-layer-ftp.c``, port parsers of
``rust/src/ftp``), one per flow.

Lines end at LF (a CR before it is dropped). A line of ``max-line-length`` bytes or more is
truncated to that length (``request_command_too_long`` / ``response_command_too_long``) and
the rest of it, up to its LF, is skipped; nothing longer than the cap is ever held.

Requests: the command is found as Suricata's multi-pattern matcher finds it, case insensitive
anywhere in the line, the match that ends first winning (in real traffic: the verb at the
start). A line with no known command opens no transaction. Every known command opens one;
its replies are attached to the oldest transaction still waiting for one, or, when none is, to
a transaction of their own without a command (the server's greeting, unsolicited replies).

Replies: a ``1yz`` reply leaves the transaction open for the final one (``FTPIsPPR``). PORT and
EPRT take their dynamic port from the command line when the reply comes (``mode`` active), PASV
and EPSV from a ``227`` / ``229`` reply (passive); a PORT/EPRT whose argument does not parse
closes the transaction without recording the reply, as Suricata does. After ``AUTH TLS`` is
answered ``234`` the channel turns into TLS: Suricata hands the flow to its TLS parser, this
parser stops (the TLS upgrade itself is not done).

Deviations (bounded memory, or clearer than the C code): a multi-line reply (``ddd-`` ... ``ddd
``) keeps its transaction open until its last line (Suricata marks it done at the first line
and appends the lines that arrive in the same chunk); at most ``max-reply-lines`` reply lines
are kept per transaction; after a truncated line the remainder of the chunk is parsed
(Suricata drops it); a pipelined command's reply is judged by that transaction's command
(Suricata: by the last command seen).

Events (Suricata 8's): ``request_command_too_long``, ``response_command_too_long``;
``too_many_transactions`` when a command would exceed ``max-tx`` transactions (the command is
dropped, the oldest open transaction closed with the event); ``file_without_name`` /
``file_before_port`` on a RETR/STOR without a name / before any data port was negotiated.
"""

from __future__ import annotations

import re

from ruleengine.applayer.base import add_bounded
from ruleengine.applayer.ftp.config import FtpSettings
from ruleengine.safety import reraise_bug

# (name on the wire, name logged); Suricata's FtpCommands table order (ties go to the first)
COMMANDS: tuple[str, ...] = (
    "PORT", "EPRT", "AUTH TLS", "PASV", "RETR", "EPSV", "STOR",
    "ABOR", "ACCT", "ALLO", "APPE", "CDUP", "CHMOD", "CWD", "DELE", "HELP", "IDLE", "LIST",
    "MAIL", "MDTM", "MKD", "MLFL", "MODE", "MRCP", "MRSQ", "MSAM", "MSND", "MSOM", "NLST",
    "NOOP", "PASS", "PWD", "QUIT", "REIN", "REST", "RMD", "RNFR", "RNTO", "SITE", "SIZE",
    "SMNT", "STAT", "STOU", "STRU", "SYST", "TYPE", "UMASK", "USER",
)
_COMMAND_BYTES = tuple((name, name.encode()) for name in COMMANDS)

_MAX_EXPECTATIONS = 64  # undrained announcements kept (the pipeline drains after each feed)

EVENTS = frozenset({"request_command_too_long", "response_command_too_long",
                    "too_many_transactions", "file_before_port", "file_without_name"})

_WS = rb"[ \t\r\n]*"
_PORT_RE = re.compile(rb"PORT" + _WS + rb"\d+" + _WS + rb",\d+,\d+,\d+,(\d+),(\d+)")
_PASV_TAIL = re.compile(rb"\d+,\d+,\d+,\d+," + _WS + rb"(\d+)" + _WS + rb"," + _WS + rb"(\d+)"
                        + _WS + rb"\)")
_EPSV_TAIL = re.compile(_WS + rb"(\d+)" + _WS + rb"\|\)")
_EPRT_TAIL = re.compile(_WS + rb"(\d+)" + _WS + rb"\|")


def find_command(line: bytes) -> str | None:
    """The command Suricata's MPM reports first: the known name (case insensitive) whose
    first occurrence in the line ends earliest."""
    upper = line.upper()
    best: tuple[int, int] | None = None
    found: str | None = None
    for index, (name, raw) in enumerate(_COMMAND_BYTES):
        pos = upper.find(raw)
        if pos < 0:
            continue
        key = (pos + len(raw), index)
        if best is None or key < best:
            best, found = key, name
    return found


def _u8_pair(hi: bytes, lo: bytes) -> int:
    a, b = int(hi), int(lo)
    if a > 255 or b > 255:
        return 0
    return a * 256 + b


def active_port(line: bytes) -> int:
    """``ftp_active_port``: ``PORT h1,h2,h3,h4,p1,p2`` -> p1*256+p2 (0: no port)."""
    m = _PORT_RE.match(line)
    return _u8_pair(m.group(1), m.group(2)) if m else 0


def active_eprt(line: bytes) -> int:
    """``ftp_active_eprt``: ``EPRT |af|addr|port|``."""
    if not line.startswith(b"EPRT"):
        return 0
    pos = 4
    for _ in range(3):
        pos = line.find(b"|", pos)
        if pos < 0:
            return 0
        pos += 1
    m = _EPRT_TAIL.match(line, pos)
    if not m:
        return 0
    port = int(m.group(1))
    return port if port <= 0xFFFF else 0


def _reply_tail(line: bytes, code: bytes, opener: bytes,
                tail: re.Pattern[bytes]) -> re.Match[bytes] | None:
    """``tail`` right after the first ``opener`` of a ``code`` reply (PASV / EPSV)."""
    if not line.startswith(code):
        return None
    pos = line.find(opener, len(code))
    return tail.match(line, pos + len(opener)) if pos >= 0 else None


def pasv_port(line: bytes) -> int:
    """``ftp_pasv_response``: ``227 ... (h1,h2,h3,h4,p1,p2)``."""
    m = _reply_tail(line, b"227", b"(", _PASV_TAIL)
    return _u8_pair(m.group(1), m.group(2)) if m else 0


def epsv_port(line: bytes) -> int:
    """``ftp_epsv_response``: ``229 ... (|||port|)``."""
    m = _reply_tail(line, b"229", b"|||", _EPSV_TAIL)
    if not m:
        return 0
    port = int(m.group(1))
    return port if port <= 0xFFFF else 0


def _is_ppr(line: bytes) -> bool:
    """``FTPIsPPR``: a positive preliminary reply ``1yz<space>``."""
    return (len(line) >= 4 and line[0:1] == b"1" and line[1:3].isdigit()
            and line[3:4] in (b" ", b"\t", b"\r", b"\n", b"\x0b", b"\x0c"))


class FtpReply:
    """One reply line, trailing whitespace removed (Suricata's ``FTPString``)."""

    __slots__ = ("line", "truncated")

    def __init__(self, line: bytes, truncated: bool) -> None:
        self.line = line
        self.truncated = truncated


class FtpTransaction:
    """One command and its reply lines (Suricata's ``FTPTransaction``)."""

    def __init__(self, tx_id: int, command: str | None, max_events: int) -> None:
        self.tx_id = tx_id
        self.command = command  # None: replies without a command (greeting...)
        self.request = b""  # the command line, trailing whitespace removed
        self.request_truncated = False
        self.replies: list[FtpReply] = []
        self.replies_dropped = 0
        self.done = False  # the final reply came (``reply_received``)
        self.dyn_port = 0
        self.active = False
        self.events: list[str] = []
        self.events_dropped = 0
        self._max_events = max_events
        self.multiline_code: bytes | None = None  # the code of an open "ddd-" reply
        self.closed = False

    # -- contract -------------------------------------------------------------------------
    @property
    def request_progress(self) -> int:
        return 1

    @property
    def response_progress(self) -> int:
        # grows with every reply line, so rules see each new line
        return len(self.replies) + self.replies_dropped + (1 << 30 if self.done else 0) + \
            (1 << 31 if self.closed else 0)

    @property
    def request_complete(self) -> bool:
        return True

    @property
    def response_complete(self) -> bool:
        return self.done or self.closed

    # -- helpers --------------------------------------------------------------------------
    @property
    def known(self) -> bool:
        return self.command is not None

    def add_event(self, name: str) -> None:
        if not add_bounded(self.events, name, self._max_events):
            self.events_dropped += 1


class _Lines:
    """One direction's line assembly, bounded by the line cap."""

    __slots__ = ("buf", "skipping")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.skipping = False  # inside the rest of a truncated line


class FtpParser:
    """One flow's FTP control channel."""

    def __init__(self, settings: FtpSettings | None = None) -> None:
        self.settings = settings if settings is not None else FtpSettings()
        self.transactions: list[FtpTransaction] = []
        self._lines = {True: _Lines(), False: _Lines()}
        self._next_id = 0
        self.last_command: str | None = None  # Suricata's state->command
        self.port_line = b""  # the last PORT/EPRT line (state->port_line)
        self.dyn_port = 0  # the negotiated data port (state->dyn_port)
        self.active = False
        self.tls_upgraded = False  # AUTH TLS accepted: the rest is TLS, not parsed
        # (port, "ftp-data") announced data channels; the pipeline drains the list
        self.expectations: list[tuple[int, str]] = []
        self.commands_dropped = 0  # over max-tx open transactions
        self.internal_errors = 0

    # -- contract -------------------------------------------------------------------------
    @property
    def encrypted(self) -> bool:
        return False

    def feed(self, to_server: bool, data: bytes, ts: float = 0.0) -> None:
        if not data or self.tls_upgraded:
            return
        try:
            for line, truncated in self._split(to_server, bytes(data)):
                if self.tls_upgraded:
                    break
                if to_server:
                    self._request(line, truncated)
                else:
                    self._reply(line, truncated)
        except Exception as exc:  # pragma: no cover - a parser bug must not kill the flow
            reraise_bug(exc)
            self.internal_errors += 1

    def close(self, to_server: bool | None = None) -> None:
        for direction in (True, False) if to_server is None else (to_server,):
            lines = self._lines[direction]
            lines.buf = bytearray()
            lines.skipping = False
        if to_server is None or to_server is False:
            for tx in self.transactions:
                tx.closed = True

    # -- lines ----------------------------------------------------------------------------
    def _split(self, to_server: bool, data: bytes) -> list[tuple[bytes, bool]]:
        """Complete lines of this chunk (without the line end) and whether each was
        truncated; the unfinished tail is kept up to the line cap."""
        st = self._lines[to_server]
        cap = self.settings.max_line_length
        out: list[tuple[bytes, bool]] = []
        pos = 0
        end = len(data)
        while pos < end:
            lf = data.find(b"\n", pos)
            if st.skipping:
                if lf < 0:
                    return out  # still inside the over-long line: dropped
                st.skipping = False
                pos = lf + 1
                continue
            if lf < 0:
                st.buf += data[pos : pos + cap - len(st.buf) + 1]
                if len(st.buf) >= cap:
                    out.append((bytes(st.buf[:cap]), True))
                    st.buf = bytearray()
                    st.skipping = True
                return out
            piece = data[pos:lf]
            pos = lf + 1
            if st.buf:
                piece = bytes(st.buf) + piece
                st.buf = bytearray()
            # Suricata counts the line end in the length it checks against the cap
            if len(piece) + 1 >= cap:
                out.append((piece[:cap], True))
                continue
            if piece.endswith(b"\r"):
                piece = piece[:-1]
            out.append((piece, False))
        return out

    # -- requests -------------------------------------------------------------------------
    def _open_tx(self, command: str | None) -> FtpTransaction | None:
        txs = self.transactions
        if txs and self._next_id - txs[0].tx_id > self.settings.max_tx:
            # Suricata 8: the oldest open transaction is closed with the event
            self.commands_dropped += 1
            oldest = next((t for t in txs if not t.done), None)
            if oldest is not None:
                oldest.done = True
                oldest.add_event("too_many_transactions")
            return None
        tx = FtpTransaction(self._next_id, command, self.settings.max_events)
        self._next_id += 1
        txs.append(tx)
        return tx

    def _request(self, line: bytes, truncated: bool) -> None:
        command = find_command(line)
        self.last_command = command
        if command is None:
            return
        tx = self._open_tx(command)
        if tx is None:
            return
        tx.request = line.rstrip()
        tx.request_truncated = truncated
        if truncated:
            tx.add_event("request_command_too_long")
        if command in ("PORT", "EPRT"):
            self.port_line = line
        elif command in ("RETR", "STOR"):
            if len(line) < 6:  # the command, a space and at least one byte of name
                tx.add_event("file_without_name")
            elif not self.dyn_port:
                tx.add_event("file_before_port")
            else:
                # Suricata creates the ftp-data expectation here and forgets the port
                self.dyn_port = 0
                self.active = False

    # -- replies --------------------------------------------------------------------------
    def _reply_tx(self) -> FtpTransaction | None:
        for tx in self.transactions:
            if not tx.done:
                return tx
        return self._open_tx(None)

    def _reply(self, line: bytes, truncated: bool) -> None:
        tx = self._reply_tx()
        if tx is None:
            return
        if tx.multiline_code is None and not self._ports(tx, line):
            tx.done = True  # PORT/EPRT without a port: the reply is not kept
            return
        if line:
            stored = line.rstrip()
            if len(tx.replies) < self.settings.max_reply_lines:
                tx.replies.append(FtpReply(stored, truncated))
            else:
                tx.replies_dropped += 1
            if truncated:
                tx.add_event("response_command_too_long")
        if tx.multiline_code is not None:
            # RFC 959: the reply ends with a line of the same code and a space
            if line[:3] != tx.multiline_code or line[3:4] != b" ":
                return
            tx.multiline_code = None
        elif len(line) >= 4 and line[:3].isdigit() and line[3:4] == b"-":
            tx.multiline_code = line[:3]
            return
        if _is_ppr(line):
            return
        tx.done = True

    def _ports(self, tx: FtpTransaction, line: bytes) -> bool:
        """The reply's effect on the data channel; False: a PORT/EPRT whose argument has
        no port (Suricata: ``goto tx_complete``)."""
        command = tx.command
        if command == "AUTH TLS":
            if line.startswith(b"234 "):
                self.tls_upgraded = True
        elif command in ("PORT", "EPRT"):
            port = active_port(self.port_line) if command == "PORT" \
                else active_eprt(self.port_line)
            if port == 0:
                return False
            self.dyn_port, self.active = port, True
            tx.dyn_port, tx.active = port, True
            self._expect(port)
        elif command == "PASV" and line.startswith(b"227 "):
            self._passive(tx, pasv_port(line))
        elif command == "EPSV" and line.startswith(b"229 "):
            self._passive(tx, epsv_port(line))
        return True

    def _passive(self, tx: FtpTransaction, port: int) -> None:
        if port:
            self.dyn_port, self.active = port, False
            tx.dyn_port, tx.active = port, False
            self._expect(port)

    def _expect(self, port: int) -> None:
        """The data channel to come on ``port``. Announced when the port is negotiated, not
        at RETR/STOR as Suricata (which looks its expectations up at the data flow's first
        data, when RETR was sent): the engine decides a flow's protocol at its SYN, and a
        passive client connects before it sends RETR. So LIST/NLST channels are ftp-data
        here too."""
        if len(self.expectations) < _MAX_EXPECTATIONS:
            self.expectations.append((port, "ftp-data"))
