"""Sans-IO SSH parser (Suricata's ``rust/src/ssh/ssh.rs`` and ``parser.rs``), one per flow.

Each direction starts with its identification line (``SSH-protoversion-softwareversion
comments``), then the binary packet protocol: ``uint32 packet_length``, ``byte
padding_length``, ``byte msg_code`` and ``packet_length - 2`` more bytes. Records are skipped
without being buffered, except a KEXINIT (up to 65535 bytes, reassembled across segments) whose
algorithm lists give the hassh fingerprints. A NEWKEYS ends the side's cleartext: from then on
the side is encrypted and nothing more of it is parsed (Suricata's ``SshStateFinished``; Suricata
goes on reading the encrypted bytes as records, this parser drops them, so memory stays
bounded). Both sides past NEWKEYS make :attr:`SshParser.encrypted` True.

Banner rules as Suricata's: the line ends at LF, CRLF or a lone CR; a line longer than 255
bytes raises ``long_banner``; a line that is not ``SSH-x-y`` raises ``invalid_banner`` and stops
the direction. Without a line end the first 256 bytes decide: a plausible banner is taken from
them (``long_banner``) and the rest of the line is skipped (``SshStateBannerWaitEol``). A record
with ``packet_length`` < 2 raises ``invalid_record`` and stops the direction; a KEXINIT of 65535
bytes or more raises ``long_kex_record`` and is skipped.

Deviations, all bounded-memory choices: only the first KEXINIT of a side is fingerprinted
(Suricata appends a second one to the hassh string); a banner's fields keep at most
``max_banner_length`` bytes each.
"""

from __future__ import annotations

import hashlib
import re
import struct

from ruleengine.applayer.base import add_bounded
from ruleengine.applayer.ssh.config import (
    BANNER_MAX_LEN,
    MAX_REASSEMBLED_RECORD,
    SshSettings,
)
from ruleengine.safety import reraise_bug

# Suricata's SSHConnectionState (progress values)
IN_PROGRESS = 0
BANNER_WAIT_EOL = 1
BANNER_DONE = 2
FINISHED = 3
CLOSED = 4  # the direction ended (progress only: the engine re-inspects at the flow's end)

MSG_KEXINIT = 20
MSG_NEWKEYS = 21
RECORD_HEADER_LEN = 6

EVENTS = frozenset({"invalid_banner", "long_banner", "invalid_record", "long_kex_record"})

_LINE_END = re.compile(rb"[\r\n]")
_SW_END = re.compile(rb"[ \r\n]")
_U32 = struct.Struct(">I")


class SshSide:
    """One direction's facts (Suricata's ``SshHeader``)."""

    __slots__ = ("closed", "failed", "hassh", "hassh_string", "protover", "state", "swver")

    def __init__(self) -> None:
        self.state = IN_PROGRESS
        self.protover = b""
        self.swver = b""
        self.hassh = b""  # md5 hex digest, lowercase
        self.hassh_string = b""  # "kex;enc;mac;cmp" of this side's direction
        self.failed = False  # an invalid banner / record stopped the direction
        self.closed = False

    @property
    def banner_done(self) -> bool:
        return self.state >= BANNER_DONE


class SshTransaction:
    """The flow's single transaction (tx_id 0): ``client`` and ``server`` sides."""

    def __init__(self, max_events: int = 64, log_hassh: bool = False) -> None:
        self.tx_id = 0
        self.client = SshSide()
        self.server = SshSide()
        self.events: list[str] = []
        self.events_dropped = 0
        self._max_events = max_events
        self.log_hassh = log_hassh  # hassh in EVE, and logged once both sides sent NEWKEYS
        self.logged = False  # the EVE ``ssh`` event was written (one per flow)

    # -- contract -------------------------------------------------------------------------
    def _progress(self, side: SshSide) -> int:
        """``SCSshTxGetAlStateProgress``: Finished only when both sides are; else the side's
        banner state."""
        if side.closed:
            return CLOSED
        if self.client.state >= FINISHED and self.server.state >= FINISHED:
            return FINISHED
        return BANNER_DONE if side.state >= BANNER_DONE else IN_PROGRESS

    @property
    def request_progress(self) -> int:
        return self._progress(self.client)

    @property
    def response_progress(self) -> int:
        return self._progress(self.server)

    @property
    def request_complete(self) -> bool:
        return self.request_progress >= FINISHED

    @property
    def response_complete(self) -> bool:
        return self.response_progress >= FINISHED

    # -- helpers --------------------------------------------------------------------------
    def side(self, to_server: bool) -> SshSide:
        return self.client if to_server else self.server

    def add_event(self, name: str) -> None:
        if not add_bounded(self.events, name, self._max_events):
            self.events_dropped += 1


class _Direction:
    """Bytes held between feeds: a banner line shorter than 256 bytes, a record header
    shorter than 6, or a KEXINIT body being reassembled."""

    __slots__ = ("buf", "kex_collect", "record_left")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.record_left = 0
        self.kex_collect = False


def split_line(data: bytes) -> tuple[bytes, bytes] | None:
    """``ssh_parse_line``: (line, rest) or None while the end is not there. A CR ends the
    line when followed by anything but LF; a CR at the very end waits for more."""
    m = _LINE_END.search(data)
    if m is None:
        return None
    i = m.start()
    if data[i] == 0x0A:
        return data[:i], data[i + 1 :]
    if i + 1 >= len(data):
        return None
    if data[i + 1] == 0x0A:
        return data[:i], data[i + 2 :]
    return data[:i], data[i + 1 :]


def parse_banner(line: bytes) -> tuple[bytes, bytes] | None:
    """``ssh_parse_banner``: (protoversion, softwareversion) of ``SSH-proto-software
    comments``; None when it is not one. The software version stops at a space, CR or LF,
    unless the text right after the dash starts with one (then it is all of the rest)."""
    if not line.startswith(b"SSH-"):
        return None
    rest = line[4:]
    dash = rest.find(b"-")
    if dash <= 0:  # no dash (nom: incomplete) or an empty protoversion
        return None
    protover = rest[:dash]
    tail = rest[dash + 1 :]
    m = _SW_END.search(tail)
    if m is None or m.start() == 0:
        return protover, tail
    return protover, tail[: m.start()]


def parse_kexinit(body: bytes) -> list[bytes] | None:
    """``ssh_parse_key_exchange`` over the bytes after the message code: cookie (16), ten
    name-lists, first_kex_packet_follows, reserved. None when they do not fit."""
    pos = 16
    lists: list[bytes] = []
    end = len(body)
    for _ in range(10):
        if pos + 4 > end:
            return None
        (n,) = _U32.unpack_from(body, pos)
        pos += 4
        if n > end - pos:
            return None
        lists.append(bytes(body[pos : pos + n]))
        pos += n
    if pos + 5 > end:
        return None
    return lists


def hassh_of(lists: list[bytes], to_server: bool) -> tuple[bytes, bytes]:
    """``generate_hassh``: the client's lists for its own direction (kex;enc c2s;mac c2s;
    cmp c2s), the server's for its (kex;enc s2c;mac s2c;cmp s2c). (string, md5 hex)."""
    if to_server:
        parts = (lists[0], lists[2], lists[4], lists[6])
    else:
        parts = (lists[0], lists[3], lists[5], lists[7])
    text = b";".join(parts)
    return text, hashlib.md5(text, usedforsecurity=False).hexdigest().encode()


class SshParser:
    """One flow's SSH state. ``transactions`` holds the single transaction."""

    def __init__(self, settings: SshSettings | None = None) -> None:
        self.settings = settings if settings is not None else SshSettings()
        self.tx = SshTransaction(self.settings.max_events, self.settings.hassh_logged)
        self.transactions: list[SshTransaction] = [self.tx]
        self._dirs = {True: _Direction(), False: _Direction()}
        self.internal_errors = 0  # parser bugs caught by the safety net (should stay 0)

    # -- contract -------------------------------------------------------------------------
    @property
    def encrypted(self) -> bool:
        return self.tx.client.state >= FINISHED and self.tx.server.state >= FINISHED

    def feed(self, to_server: bool, data: bytes, ts: float = 0.0) -> None:
        side = self.tx.side(to_server)
        if not data or side.failed or side.closed or side.state >= FINISHED:
            return
        try:
            rest: bytes | None = bytes(data)
            if side.state < BANNER_DONE:
                rest = self._banner(to_server, side, bytes(data))
            if rest:
                self._records(to_server, side, rest)
        except Exception as exc:  # pragma: no cover - a parser bug must not kill the flow
            reraise_bug(exc)
            self.internal_errors += 1
            self.tx.add_event("invalid_record")
            self._fail(to_server)

    def close(self, to_server: bool | None = None) -> None:
        for direction in (True, False) if to_server is None else (to_server,):
            self.tx.side(direction).closed = True
            d = self._dirs[direction]
            d.buf = bytearray()
            d.record_left = 0
            d.kex_collect = False

    # -- banner ---------------------------------------------------------------------------
    def _fail(self, to_server: bool) -> None:
        self.tx.side(to_server).failed = True
        self._dirs[to_server].buf = bytearray()

    def _set_banner(self, side: SshSide, fields: tuple[bytes, bytes]) -> None:
        cap = self.settings.max_banner_length
        side.protover = fields[0][:cap]
        side.swver = fields[1][:cap]

    def _banner(self, to_server: bool, side: SshSide, data: bytes) -> bytes | None:
        """Banner bytes consumed; returns what follows the banner line (records), or None
        when everything was consumed."""
        d = self._dirs[to_server]
        if side.state == BANNER_WAIT_EOL:
            found = split_line(data)
            if found is None:
                return None  # still the over-long line: skipped, not kept
            side.state = BANNER_DONE
            return found[1]
        buf = bytes(d.buf) + data if d.buf else data
        found = split_line(buf)
        if found is not None:
            d.buf = bytearray()
            line, rest = found
            if not self._take_banner(to_server, side, line, BANNER_DONE):
                return None
            if len(line) >= BANNER_MAX_LEN:
                self.tx.add_event("long_banner")
            return rest
        if len(buf) < BANNER_MAX_LEN:
            d.buf = bytearray(buf)
            return None
        # 256 bytes without a line end: judge the banner on them, skip the rest of the line
        d.buf = bytearray()
        head = buf[: max(BANNER_MAX_LEN, self.settings.max_banner_length)]
        if self._take_banner(to_server, side, head, BANNER_WAIT_EOL):
            self.tx.add_event("long_banner")
        return None

    def _take_banner(self, to_server: bool, side: SshSide, line: bytes, state: int) -> bool:
        """The banner's fields into ``side``, which moves to ``state``; False (the side
        failed) when the line is no SSH banner."""
        fields = parse_banner(line)
        if fields is None:
            self.tx.add_event("invalid_banner")
            self._fail(to_server)
            return False
        self._set_banner(side, fields)
        side.state = state
        return True

    # -- records --------------------------------------------------------------------------
    def _records(self, to_server: bool, side: SshSide, data: bytes) -> None:
        d = self._dirs[to_server]
        view = memoryview(data)
        if d.record_left:
            take = min(d.record_left, len(view))
            if d.kex_collect:
                d.buf += view[:take]
            d.record_left -= take
            view = view[take:]
            if d.record_left:
                return
            if d.kex_collect:
                d.kex_collect = False
                body = bytes(d.buf)
                d.buf = bytearray()
                self._kexinit(to_server, side, body)
        elif d.buf:
            view = memoryview(bytes(d.buf) + bytes(view))
            d.buf = bytearray()
        self._walk(to_server, side, d, view)

    def _walk(self, to_server: bool, side: SshSide, d: _Direction, view: memoryview) -> None:
        pos = 0
        end = len(view)
        while pos < end:
            if end - pos < RECORD_HEADER_LEN:
                d.buf = bytearray(view[pos:])
                return
            (pkt_len,) = _U32.unpack_from(view, pos)
            if pkt_len <= 1:
                self.tx.add_event("invalid_record")
                self._fail(to_server)
                return
            code = view[pos + 5]
            body_len = pkt_len - 2
            start = pos + RECORD_HEADER_LEN
            avail = end - start
            if avail >= body_len:
                pos = start + body_len
                if code == MSG_NEWKEYS:
                    side.state = FINISHED  # the rest of this side is encrypted
                    return
                if code == MSG_KEXINIT and self.settings.hassh_computed:
                    self._kexinit(to_server, side, bytes(view[start:pos]))
                continue
            # the record runs past this chunk
            if code == MSG_NEWKEYS:
                side.state = FINISHED
                return
            d.record_left = body_len - avail
            if code == MSG_KEXINIT and self.settings.hassh_computed:
                if body_len < MAX_REASSEMBLED_RECORD:
                    d.kex_collect = True
                    d.buf = bytearray(view[start:])
                else:
                    self.tx.add_event("long_kex_record")
            return

    def _kexinit(self, to_server: bool, side: SshSide, body: bytes) -> None:
        if side.hassh:
            return  # only the first KEXINIT of a side
        lists = parse_kexinit(body)
        if lists is None:
            return
        side.hassh_string, side.hassh = hassh_of(lists, to_server)
