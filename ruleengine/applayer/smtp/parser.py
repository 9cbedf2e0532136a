"""Sans-IO SMTP parser (Suricata's ``src/app-layer-smtp.c``).

Lines of each direction (bounded: a line longer than 4096 bytes is handled in pieces, as
Suricata's ``SMTP_LINE_BUFFER_LIMIT``, and raises ``truncated_line``). Client commands and
server replies are paired through a queue of pending commands, as Suricata's command buffer.

Transactions as Suricata makes them: a command opens a transaction when there is none or
the current one is done (``RSET`` and ``QUIT`` never do); a transaction is done at the end
of its message (``.`` after ``DATA``, the last ``BDAT`` chunk), on the 250 reply to ``RSET``
or when ``STARTTLS`` is accepted. ``DATA`` enters data mode on the server's 354 (or at once
when the server announced PIPELINING); until then client lines are commands, as in Suricata.
After an accepted
``STARTTLS`` the rest is TLS and is not parsed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import ClassVar

from ruleengine.applayer.base import add_bounded
from ruleengine.applayer.files import AppFile, FilePolicy
from ruleengine.applayer.smtp.config import SmtpConfig
from ruleengine.applayer.smtp.mime import MimeResult, decode_message

LINE_LIMIT = 4096
MAX_COMMAND_LINE = 510  # RFC 5321 4.5.3.1.4 (Suricata's SMTP_MAX_REQUEST_AND_REPLY_LINE_LENGTH)
MAX_PENDING = 1024
MAX_EVENTS = 64

EVENTS = frozenset({
    "invalid_reply", "unable_to_match_reply_with_request", "max_command_line_len_exceeded",
    "max_reply_line_len_exceeded", "invalid_pipelined_sequence", "bdat_chunk_len_exceeded",
    "no_server_welcome_message", "tls_rejected", "data_command_rejected",
    "mime_parse_failed", "mime_malformed_msg", "mime_invalid_base64", "mime_invalid_qp",
    "mime_long_line", "mime_long_enc_line", "mime_long_header_name",
    "mime_long_header_value", "mime_long_boundary", "mime_long_filename",
    "duplicate_fields", "unparsable_content", "truncated_line", "invalid_bdat",
    # Suricata 7+: STARTTLS accepted but the TLS that follows did not start
    "failed_protocol_change",
})

_CMD_DATA, _CMD_BDAT, _CMD_STARTTLS, _CMD_RSET, _CMD_DATA_END, _CMD_OTHER = range(6)


BufferGetter = Callable[["SmtpTransaction"], "bytes | list[bytes] | None"]


class SmtpTransaction:
    """One mail (or the commands around it)."""

    # Detection buffers by canonical name: ``smtp/detect.py`` reads the transaction and
    # hands its getters in when it loads, so this module does not import its readers back.
    buffer_getters: ClassVar[Mapping[str, BufferGetter]] = {}

    __slots__ = ("bdat_left", "done", "events", "files", "helo", "mail_from", "message", "mime",
                 "mime_status", "rcpt_to", "request_progress", "response_progress",
                 "truncated", "tx_id")

    def __init__(self, tx_id: int, helo: bytes | None) -> None:
        self.tx_id = tx_id
        self.helo: bytes | None = helo
        self.mail_from: bytes | None = None
        self.rcpt_to: list[bytes] = []
        self.message: bytearray | None = None  # the DATA bytes while they arrive
        self.truncated = False
        self.mime: MimeResult | None = None
        # the attachments as tracked files (fileinfo), made when the message ends
        self.files: list[AppFile] = []
        self.mime_status: str | None = None
        self.bdat_left = 0
        self.done = False
        self.events: list[str] = []
        self.request_progress = 0
        self.response_progress = 0

    @property
    def request_complete(self) -> bool:
        return self.done

    @property
    def response_complete(self) -> bool:
        # Suricata's SMTP progress is one number for both directions
        return self.done

    @property
    def file_contents(self) -> list[bytes]:
        """The attachments' decoded contents (each up to ``content-limit``): file.data."""
        return self.mime.files if self.mime is not None else []

    def header(self, name: str) -> str | None:
        if self.mime is None:
            return None
        return next((v for k, v in self.mime.headers if k == name), None)

    def headers(self, name: str) -> list[str]:
        return [] if self.mime is None else [v for k, v in self.mime.headers if k == name]

    def buffer(self, name: str, to_server: bool | None = None) -> bytes | list[bytes] | None:
        """Detection buffers (the engine asks the transaction, as for HTTP)."""
        getter = self.buffer_getters.get(name)
        if getter is None or to_server is False:
            return None
        return getter(self)


class SmtpParser:
    """Both directions of one SMTP session."""

    def __init__(self, config: SmtpConfig | None = None) -> None:
        self.config = config or SmtpConfig()
        # which hashes files get (set by the engine from outputs.eve-log files: force-hash)
        self.file_policy = FilePolicy()
        self.transactions: list[SmtpTransaction] = []
        self._tx: SmtpTransaction | None = None
        self._next_id = 0
        self._helo: bytes | None = None
        self._buf = {True: bytearray(), False: bytearray()}
        self._discard = {True: False, False: False}
        self._pending: deque[int] = deque()
        self._data_mode = False  # the client is sending a message (DATA or BDAT)
        self._pipelining = False
        self._first_reply = False
        self._multiline = False
        self._tls = 0  # 1: STARTTLS accepted, 2: the client's first TLS bytes were seen
        self._events_dropped = 0

    @property
    def encrypted(self) -> bool:
        return False  # STARTTLS hands the flow to TLS in Suricata; here parsing stops

    # --- input ---------------------------------------------------------------------

    def feed(self, to_server: bool, data: bytes, ts: float = 0.0) -> None:
        if not data:
            return
        if self._tls:
            if self._tls == 1 and to_server:
                self._tls = 2  # checked: only the first bytes after the 220 tell
                if data[:1] not in (b"\x16", b"\x80"):  # TLS record / SSLv2 hello
                    self._event("failed_protocol_change")
            return
        buf = self._buf[to_server]
        buf += data
        while buf and not self._tls:
            if to_server and self._tx is not None and self._tx.bdat_left:
                self._bdat_bytes(buf)
                continue
            nl = buf.find(b"\n")
            if nl == -1:
                if len(buf) < LINE_LIMIT:
                    return
                line, cut = bytes(buf[:LINE_LIMIT]), LINE_LIMIT
                self._event("truncated_line")
            else:
                line, cut = bytes(buf[: nl + 1]), nl + 1
            del buf[:cut]
            if self._discard[to_server]:
                self._discard[to_server] = not line.endswith(b"\n")
                continue
            if not line.endswith(b"\n"):
                self._discard[to_server] = True
            if to_server:
                self._request(line)
            else:
                self._reply(line)

    def close(self, to_server: bool | None = None) -> None:
        if to_server is False:
            return
        for side in (True, False):
            if to_server in (None, side) and self._buf[side] and side:
                rest = bytes(self._buf[side])
                self._buf[side].clear()
                self._request(rest)
        tx = self._tx
        if tx is not None and tx.message is not None and to_server is None:
            tx.truncated = True
            self._finish_message(tx, status="PARSE_ERROR" if tx.message else "HEADER_READY")

    # --- client --------------------------------------------------------------------

    def _current(self, line: bytes) -> SmtpTransaction:
        word = line[:4].lower()
        tx = self._tx
        if tx is None or (tx.done and (self._data_mode or word not in (b"rset", b"quit"))):
            tx = SmtpTransaction(self._next_id, self._helo)
            self._next_id += 1
            self._tx = tx
            self.transactions.append(tx)
            if len(self.transactions) > self.config.max_tx:
                del self.transactions[0]  # oldest first: the pipeline prunes inspected ones
        return tx

    def _request(self, line: bytes) -> None:
        tx = self._current(line)
        tx.request_progress += 1
        if not self._first_reply:
            self._event("no_server_welcome_message")
        if self._data_mode:
            self._data_line(tx, line)
            return
        text = line.rstrip(b"\r\n")
        if len(text) > MAX_COMMAND_LINE:
            self._event("max_command_line_len_exceeded")
        word = text[:4].lower()
        if text[:8].lower() == b"starttls":
            self._command(_CMD_STARTTLS)
        elif word == b"data":
            if tx.message is not None:  # two DATA without the end of the first
                self._event("unparsable_content")
                self._finish_message(tx, status="PARSE_ERROR")
                tx = self._current(line)
            tx.message = bytearray()
            self._data_mode = self._pipelining
            self._command(_CMD_DATA)
        elif word == b"bdat":
            self._bdat(tx, text)
        elif word in (b"helo", b"ehlo"):
            if self._helo is not None:
                self._event("duplicate_fields")
            else:
                self._helo = _param(text, 4)
                tx.helo = self._helo
            self._command(_CMD_OTHER)
        elif text[:9].lower() == b"mail from":
            if tx.mail_from is not None:
                self._event("duplicate_fields")
            else:
                tx.mail_from = _param(text, 9)
            self._command(_CMD_OTHER)
        elif text[:7].lower() == b"rcpt to":
            if len(tx.rcpt_to) < self.config.max_rcpt:
                tx.rcpt_to.append(_param(text, 7))
            self._command(_CMD_OTHER)
        elif word == b"rset":
            self._command(_CMD_RSET)
        else:
            self._command(_CMD_OTHER)

    def _command(self, cmd: int) -> None:
        if self._pending and self._pending[-1] in (_CMD_STARTTLS, _CMD_DATA):
            self._event("invalid_pipelined_sequence")
        if len(self._pending) < MAX_PENDING:
            self._pending.append(cmd)

    def _data_line(self, tx: SmtpTransaction, line: bytes) -> None:
        if line.rstrip(b"\r\n") == b".":
            self._data_mode = False
            self._command(_CMD_DATA_END)
            self._finish_message(tx)
            tx.done = True
            return
        if line.startswith(b".."):
            line = line[1:]  # dot-stuffing (RFC 5321 4.5.2)
        self._append(tx, line)

    def _append(self, tx: SmtpTransaction, data: bytes) -> None:
        msg = tx.message
        if msg is None:
            msg = tx.message = bytearray()
        room = self.config.max_message - len(msg)
        if len(data) > room:
            tx.truncated = True
            data = data[: max(room, 0)]
        msg += data

    def _bdat(self, tx: SmtpTransaction, text: bytes) -> None:
        fields = text.split()
        if len(fields) < 2 or not fields[1].isdigit():
            self._event("invalid_bdat")
            self._command(_CMD_OTHER)
            return
        if tx.message is None:
            tx.message = bytearray()
        tx.bdat_left = int(fields[1])
        last = len(fields) > 2 and fields[2].lower() == b"last"
        self._command(_CMD_BDAT)
        if tx.bdat_left == 0 and last:
            self._finish_message(tx)
            tx.done = True
        elif last:
            tx.bdat_left = -tx.bdat_left  # negative: the message ends with this chunk

    def _bdat_bytes(self, buf: bytearray) -> None:
        tx = self._tx
        assert tx is not None
        want = abs(tx.bdat_left)
        chunk = bytes(buf[:want])
        del buf[: len(chunk)]
        self._append(tx, chunk)
        tx.request_progress += 1
        left = want - len(chunk)
        if left:
            tx.bdat_left = left if tx.bdat_left > 0 else -left
            return
        last = tx.bdat_left < 0
        tx.bdat_left = 0
        if last:
            self._finish_message(tx)
            tx.done = True

    def _finish_message(self, tx: SmtpTransaction, status: str = "PARSE_DONE") -> None:
        data = bytes(tx.message or b"")
        tx.message = None
        if self.config.raw_extraction:
            tx.mime = MimeResult(files=[data[: self.config.content_limit]],
                                 filenames=["rawmsg"])
        elif self.config.decode_mime:
            tx.mime = decode_message(data, self.config)
            for event in tx.mime.events:
                self._event(event, tx)
        tx.mime_status = status
        self._track_files(tx)

    def _track_files(self, tx: SmtpTransaction) -> None:
        """One file per attachment; hashed only when its whole content was kept."""
        mime = tx.mime
        if mime is None:
            return
        sizes = mime.file_sizes or [len(content) for content in mime.files]
        for name, content, size in zip(mime.filenames, mime.files, sizes, strict=False):
            whole = size == len(content)
            file = AppFile(name.encode("utf-8", "surrogateescape"), to_server=True,
                           tx_id=tx.tx_id, policy=self.file_policy if whole else FilePolicy())
            file.append(content)
            file.size = size
            file.close(truncated=tx.truncated)
            tx.files.append(file)
        tx.request_progress += 1

    # --- server --------------------------------------------------------------------

    def _reply(self, line: bytes) -> None:
        text = line.rstrip(b"\r\n")
        if not text:
            return
        tx = self._tx
        if tx is not None:
            tx.response_progress += 1
        if len(text) > MAX_COMMAND_LINE:
            self._event("max_reply_line_len_exceeded")
        code = text[:3]
        if len(text) < 3 or not code.isdigit():
            self._event("invalid_reply")
            return
        more = text[3:4] == b"-"
        was_multiline, self._multiline = self._multiline, more
        if not self._pending:
            if not self._first_reply:
                if not more:
                    self._first_reply = True
                if code != b"220":
                    self._event("invalid_reply")
            elif not was_multiline:
                self._event("unable_to_match_reply_with_request")
            return
        cmd = self._pending[0]
        if more:
            if code == b"250" and text[4:].strip().lower() == b"pipelining":
                self._pipelining = True
            return
        self._pending.popleft()
        self._answer(cmd, code, tx)

    def _answer(self, cmd: int, code: bytes, tx: SmtpTransaction | None) -> None:
        if cmd == _CMD_STARTTLS:
            if code == b"220":
                self._tls = 1
                if tx is not None:
                    tx.done = True
            else:
                self._event("tls_rejected")
        elif cmd == _CMD_DATA:
            if code == b"354":
                self._data_mode = True
            else:
                self._event("data_command_rejected")
                self._data_mode = False
                if tx is not None and tx.message is not None and not tx.message:
                    tx.message = None
        elif cmd == _CMD_RSET and code == b"250" and tx is not None:
            if tx.message is not None:
                self._finish_message(tx, status="PARSE_ERROR")
            tx.done = True

    def _event(self, name: str, tx: SmtpTransaction | None = None) -> None:
        target = tx or self._tx
        if target is None:
            return
        if not add_bounded(target.events, name, MAX_EVENTS):
            self._events_dropped += 1


def _param(text: bytes, prefix: int) -> bytes:
    """Suricata's SMTPParseCommandWithParam: skip the character after the command word
    (``:`` or space) and blanks, then up to the next space (``SIZE=`` options dropped)."""
    rest = text[prefix + 1:].lstrip(b" ")
    return rest.split(b" ", 1)[0]
