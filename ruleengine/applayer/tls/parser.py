"""Sans-IO SSL/TLS parser (Suricata's ``src/app-layer-ssl.c``), one per flow.

Record layer over the reassembled stream of each direction: a record is handled once all of it
is there (Suricata returns *incomplete* the same way; a record is at most 5 + 65535 bytes).
Handshake messages are reassembled across records up to ``max_handshake_message``; a longer
announced length raises ``handshake_invalid_length`` and the message is skipped without being
buffered. SSLv2 records (first byte with bit 7 or 6 set) are decoded as Suricata does.

Errors Suricata treats as fatal for the flow (bad record type or version, heartbeat anomalies,
too many records in one chunk) stop the parser: later bytes are ignored, as Suricata disables
the app-layer for the flow.

Handshake done per side (``request_complete`` / ``response_complete``, ``HANDSHAKE_DONE``
progress): that side's ChangeCipherSpec, or an application-data record from it (TLS 1.3
client), or for the server a TLS 1.3 ServerHello (not a HelloRetryRequest), or the end of the
direction. :attr:`TlsParser.encrypted` is True once both sides are done without the close
(Suricata's point where encryption-handling applies).
"""

from __future__ import annotations

from ruleengine.applayer.tls import consts as c
from ruleengine.applayer.tls.config import TlsSettings
from ruleengine.applayer.tls.fingerprints import ja3_string, ja3s_string, ja4_hash, md5_hex
from ruleengine.applayer.tls.tx import TlsSide, TlsTransaction
from ruleengine.applayer.tls.x509 import decode_certificate
from ruleengine.safety import reraise_bug

_RECORD_MAX_LEN = 1 << 14


class _Direction:
    __slots__ = ("buf", "hdr_checked", "hs_buf", "hs_skip")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.hdr_checked = False
        self.hs_buf = bytearray()
        self.hs_skip = 0


class _Short(Exception):
    """A hello field runs past the message."""


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise _Short
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")


def _u16_list(data: bytes) -> list[int]:
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data) - 1, 2)]


class TlsParser:
    """One flow's TLS state. ``transactions`` holds the single transaction once data came."""

    def __init__(self, settings: TlsSettings | None = None) -> None:
        self.settings = settings if settings is not None else TlsSettings()
        self.transactions: list[TlsTransaction] = []
        self.tx: TlsTransaction | None = None
        self._dirs = {True: _Direction(), False: _Direction()}
        self.failed = False
        self.internal_errors = 0  # parser bugs caught by the safety net (should stay 0)
        # heartbeat tracking (SSL_AL_FLAG_HB_*)
        self._hb_inflight = False
        self._hb_server_init = False
        self._hb_record_len = 0
        # SSLv2 handshake flags
        self._v2_client_hs = False
        self._v2_server_hs = False
        self._v2_no_session_id = False
        self._v2_master_key = False

    # -- contract -------------------------------------------------------------------------
    @property
    def encrypted(self) -> bool:
        tx = self.tx
        return tx is not None and tx.client.handshake_done and tx.server.handshake_done

    @property
    def client_server_name(self) -> str | None:
        """The client hello's server name ("" without one, or when parsing failed) once the
        hello was parsed; None before (bypass lists' ``sni`` entries decide on it)."""
        tx = self.tx
        if tx is None or not tx.client.hello_seen:
            return "" if self.failed else None
        sni = tx.client.sni
        return sni.decode("ascii", "replace") if sni else ""

    def feed(self, to_server: bool, data: bytes, ts: float = 0.0) -> None:
        tx = self._ensure_tx()
        if ts:
            tx.last_ts = ts
        if self.failed or not data or tx.side(to_server).closed:
            return
        try:
            self._feed(to_server, bytes(data))
        except Exception as exc:  # pragma: no cover - a parser bug must not kill the flow
            reraise_bug(exc)
            self.internal_errors += 1
            tx.add_event("invalid_ssl_record")
            self._fail()

    def close(self, to_server: bool | None = None) -> None:
        tx = self._ensure_tx()
        for direction in (True, False) if to_server is None else (to_server,):
            side = tx.side(direction)
            side.closed = True
            if direction:
                tx.advance_client(c.ClientProgress.FINISHED)
            else:
                tx.advance_server(c.ServerProgress.FINISHED)
            d = self._dirs[direction]
            d.buf.clear()
            d.hs_buf.clear()

    # -- record layer ---------------------------------------------------------------------
    def _ensure_tx(self) -> TlsTransaction:
        if self.tx is None:
            self.tx = TlsTransaction(self.settings.max_events)
            self.tx.log_ja3 = self.settings.ja3_logged
            self.tx.log_ja4 = self.settings.ja4_logged
            self.transactions.append(self.tx)
        return self.tx

    def _fail(self) -> None:
        self.failed = True
        for d in self._dirs.values():
            d.buf.clear()
            d.hs_buf.clear()

    def _feed(self, to_server: bool, data: bytes) -> None:
        tx = self._ensure_tx()
        d = self._dirs[to_server]
        side = tx.side(to_server)
        if not d.buf:
            tx.current_flags = 0  # a fresh record: Suricata resets current_flags
        d.buf += data
        buf = d.buf
        pos = 0
        count = 0
        max_records = max(len(data) // 6, 1)
        while pos < len(buf) and not self.failed:
            if count > max_records:
                tx.add_event("too_many_records_in_packet")
                self._fail()
                return
            b0 = buf[pos]
            if b0 & 0xC0:
                hdr = 2 if b0 & 0x80 else 3
                if len(buf) - pos < hdr:
                    break
                length = ((b0 & (0x7F if hdr == 2 else 0x3F)) << 8) | buf[pos + 1]
                if length == 0:
                    tx.add_event("invalid_sslv2_header")
                    tx.add_event("invalid_ssl_record")
                    pos = len(buf)  # Suricata drops the rest of the chunk
                    break
                if len(buf) - pos < hdr + length:
                    break
                self._sslv2_record(to_server, bytes(buf[pos + hdr : pos + hdr + length]))
                pos += hdr + length
                count += 1
                continue
            if len(buf) - pos < 5:
                break
            ctype = b0
            version = (buf[pos + 1] << 8) | buf[pos + 2]
            length = (buf[pos + 3] << 8) | buf[pos + 4]
            if not d.hdr_checked:
                d.hdr_checked = True
                if side.version == c.SSL_VERSION_2:
                    side.version = 0
                if not c.version_valid(version):
                    tx.add_event("invalid_record_version")
                    self._fail()
                    return
                if ctype not in (c.CT_CHANGE_CIPHER_SPEC, c.CT_ALERT, c.CT_HANDSHAKE,
                                 c.CT_APPLICATION_DATA, c.CT_HEARTBEAT):
                    tx.add_event("invalid_record_type")
                    self._fail()
                    return
                if not (side.hello_seen and side.version != 0):
                    side.version = version
                if length > _RECORD_MAX_LEN:
                    tx.add_event("invalid_record_length")
            if len(buf) - pos < 5 + length:
                break
            body = bytes(buf[pos + 5 : pos + 5 + length])
            pos += 5 + length
            d.hdr_checked = False
            count += 1
            if length and not self._tls_record(to_server, ctype, body):
                self._fail()
                return
        del buf[:pos]

    def _side_done(self, to_server: bool) -> None:
        tx = self._ensure_tx()
        tx.side(to_server).handshake_done = True
        if to_server:
            tx.advance_client(c.ClientProgress.HANDSHAKE_DONE)
        else:
            tx.advance_server(c.ServerProgress.HANDSHAKE_DONE)

    def _tls_record(self, to_server: bool, ctype: int, body: bytes) -> bool:
        tx = self._ensure_tx()
        side = tx.side(to_server)
        if ctype == c.CT_CHANGE_CIPHER_SPEC:
            side.ccs = True
            self._side_done(to_server)
        elif ctype == c.CT_APPLICATION_DATA:
            # TLS 1.3 0-RTT data precedes the ServerHello: not the end of the handshake
            if not (tx.early_data and not tx.server.hello_seen):
                self._side_done(to_server)
        elif ctype == c.CT_HANDSHAKE:
            # after this side's ChangeCipherSpec handshake records are encrypted, except
            # around a TLS 1.3 HelloRetryRequest (compatibility CCS, then a second
            # ClientHello / ServerHello in clear)
            if side.ccs and not tx.hello_retry and not (
                    to_server and tx.client.version > c.TLS_VERSION_12
                    and not tx.server.hello_seen):
                return True
            d = self._dirs[to_server]
            if len(body) < 4 and not d.hs_buf and not d.hs_skip:
                tx.add_event("invalid_ssl_record")
                return False
            self._handshake_data(to_server, body)
        elif ctype == c.CT_HEARTBEAT:
            return self._heartbeat(to_server, body)
        return True

    # -- handshake ------------------------------------------------------------------------
    def _handshake_data(self, to_server: bool, data: bytes) -> None:
        tx = self._ensure_tx()
        d = self._dirs[to_server]
        cap = self.settings.max_handshake_message
        pos = 0
        if d.hs_skip:
            pos = min(d.hs_skip, len(data))
            d.hs_skip -= pos
        if pos >= len(data):
            return
        d.hs_buf += data[pos:]
        hb = d.hs_buf
        while len(hb) >= 4:
            mtype = hb[0]
            mlen = int.from_bytes(hb[1:4], "big")
            if mtype not in c.SUPPORTED_HANDSHAKE_TYPES or mlen > cap:
                if mtype not in c.SUPPORTED_HANDSHAKE_TYPES:
                    tx.add_event("invalid_handshake_message")
                    tx.current_flags |= c.STATE_UNKNOWN
                    tx.flags |= c.STATE_UNKNOWN
                else:
                    tx.add_event("handshake_invalid_length")
                avail = min(mlen, len(hb) - 4)
                del hb[: 4 + avail]
                d.hs_skip = mlen - avail
                continue
            if len(hb) < 4 + mlen:
                break
            body = bytes(hb[4 : 4 + mlen])
            del hb[: 4 + mlen]
            self._handshake_message(to_server, mtype, body)

    def _handshake_message(self, to_server: bool, mtype: int, body: bytes) -> None:
        tx = self._ensure_tx()
        cp = c.ClientProgress
        sp = c.ServerProgress
        if mtype == c.HS_CLIENT_HELLO:
            tx.current_flags = c.STATE_CLIENT_HELLO
            self._hello(to_server, body, client_hello=True)
            if to_server:
                tx.advance_client(cp.HELLO_DONE)
        elif mtype == c.HS_SERVER_HELLO:
            tx.current_flags = c.STATE_SERVER_HELLO
            self._hello(to_server, body, client_hello=False)
            if not to_server:
                tx.advance_server(sp.HELLO)
                if not tx.hello_retry and c.is_tls13(tx.server.version):
                    self._side_done(False)  # the rest of the TLS 1.3 handshake is encrypted
        elif mtype == c.HS_SERVER_KEY_EXCHANGE:
            tx.current_flags = c.STATE_SERVER_KEYX
            if not to_server:
                tx.advance_server(sp.HELLO_DONE)
        elif mtype == c.HS_CLIENT_KEY_EXCHANGE:
            tx.current_flags = c.STATE_CLIENT_KEYX
            if to_server:
                tx.advance_client(cp.CERT_DONE)
        elif mtype == c.HS_CERTIFICATE:
            self._certificates(to_server, body)
            if to_server:
                tx.advance_client(cp.CERT_DONE)
            else:
                tx.advance_server(sp.CERT_DONE)
        elif mtype in (c.HS_CERTIFICATE_REQUEST, c.HS_SERVER_HELLO_DONE,
                       c.HS_CERTIFICATE_STATUS):
            if not to_server:
                tx.advance_server(sp.HELLO_DONE)
        elif mtype == c.HS_CERTIFICATE_VERIFY and to_server:
            tx.advance_client(cp.CERT_DONE)
        tx.flags |= tx.current_flags

    def _hello(self, to_server: bool, body: bytes, client_hello: bool) -> None:
        """``TLSDecodeHandshakeHello``: version, random, session id, ciphers, compression,
        extensions; JA3/JA3S and JA4 when the hello decoded."""
        tx = self._ensure_tx()
        side = tx.side(to_server)
        r = _Reader(body)
        curves: list[int] = []
        point_formats: list[int] = []
        try:
            legacy = r.u16()
        except _Short:
            tx.add_event("handshake_invalid_length")
            return
        first_hello = not side.hello_seen
        side.hello_seen = True
        side.hello_version = legacy
        if not client_hello and (legacy == c.TLS_VERSION_13 or (legacy >> 8) == 0x7F):
            tx.log_without_cert = True
        version = legacy
        if 0x7F01 <= version < 0x7F10 or version == c.TLS_VERSION_13:
            version = c.TLS_VERSION_13_PRE_DRAFT16
        side.version = version
        ext_types: list[int] = []
        ja3_ok = False
        try:
            side.random = r.take(32)
            if client_hello or not tx.log_without_cert:
                sid = r.take(r.u8())
                if sid and side.session_id is None:
                    side.session_id = sid
                    if (not client_hello and tx.client.session_id is not None
                            and tx.client.session_id == sid):
                        tx.session_resumed_flag = True
            if client_hello:
                cs_len = r.u16()
                raw = r.take(cs_len)
                if cs_len % 2:
                    raise _Short
                ciphers = _u16_list(raw)
            else:
                ciphers = [r.u16()]
            if client_hello:
                r.take(r.u8())
            elif not tx.log_without_cert:
                r.take(1)
            side.ciphers = ciphers
            ja3_ok = True
            if r.left() >= 2:
                ext_len = r.u16()
                ext = _Reader(r.take(ext_len))
                while ext.left() > 0:
                    ja3_ok = False
                    etype = ext.u16()
                    edata = ext.take(ext.u16())
                    ja3_ok = True
                    if not self._extension(side, etype, edata, client_hello, curves,
                                           point_formats):
                        break
                    ext_types.append(etype)
        except _Short:
            tx.add_event("handshake_invalid_length")
        side.extensions = ext_types
        if not client_hello:
            tx.hello_retry = side.random == c.HRR_RANDOM
        if not ja3_ok or not first_hello:
            return
        if self.settings.ja3_enabled:
            if client_hello:
                side.ja3_string = ja3_string(legacy, side.ciphers, ext_types, curves,
                                             point_formats)
            else:
                side.ja3_string = ja3s_string(legacy, side.ciphers[0], ext_types)
            side.ja3_hash = md5_hex(side.ja3_string)
        if client_hello and self.settings.ja4_enabled:
            side.ja4 = ja4_hash([legacy, *side.supported_versions], side.ciphers, ext_types,
                                side.sig_algs, side.alpns[0] if side.alpns else None)

    def _extension(self, side: TlsSide, etype: int, data: bytes, client_hello: bool,
                   curves: list[int], point_formats: list[int]) -> bool:
        """One hello extension; False = stop the extension loop (Suricata's ``goto end``)."""
        tx = self._ensure_tx()
        if etype == c.EXT_SNI:
            return self._sni(side, data)
        if etype == c.EXT_EARLY_DATA:
            if client_hello:
                tx.early_data = True
            return True
        if etype == c.EXT_SESSION_TICKET:
            # to be confirmed by the absence of a server certificate (Suricata's comment)
            if client_hello:
                tx.session_resumed_flag = True
            return True
        if not data:
            return True
        r = _Reader(data)
        try:
            if etype == c.EXT_SUPPORTED_GROUPS:
                lst = r.take(r.u16())
                if client_hello:
                    if len(lst) % 2:
                        raise _Short
                    curves.extend(_u16_list(lst))
            elif etype == c.EXT_EC_POINT_FORMATS:
                lst = r.take(r.u8())
                if client_hello:
                    point_formats.extend(lst)
            elif etype == c.EXT_SIGNATURE_ALGORITHMS:
                if client_hello:
                    side.sig_algs = _u16_list(r.take(r.u16()))
            elif etype == c.EXT_ALPN:
                self._alpn(side, r)
            elif etype == c.EXT_SUPPORTED_VERSIONS:
                if client_hello:
                    n = r.u8()
                    if n < 2:
                        raise _Short
                    versions = _u16_list(r.take(n))
                    side.supported_versions = versions
                    for v in versions:
                        if c.version_valid(v):
                            side.version = v
                            break
                    tx.ch_version_extension = True
                else:
                    v = r.u16()
                    if tx.ch_version_extension and v > c.TLS_VERSION_12:
                        tx.log_without_cert = True
                    side.version = v
        except _Short:
            tx.add_event("handshake_invalid_length")
            return False
        return True

    def _sni(self, side: TlsSide, data: bytes) -> bool:
        tx = self._ensure_tx()
        if not data:
            return True
        r = _Reader(data)
        try:
            r.take(2)
            sni_type = r.u8()
        except _Short:
            tx.add_event("handshake_invalid_length")
            return False
        if sni_type != 0:
            tx.add_event("invalid_sni_type")
            return False
        try:
            sni_len = r.u16()
        except _Short:
            tx.add_event("handshake_invalid_length")
            return False
        if sni_len > r.left() or sni_len > 255 or sni_len == 0:
            tx.add_event("invalid_sni_length")
            return False
        if side.sni is not None:
            tx.add_event("multiple_sni_extensions")
            return True
        side.sni = r.take(sni_len)
        return True

    def _alpn(self, side: TlsSide, r: _Reader) -> None:
        alpn_len = r.u16()
        lst = _Reader(r.take(alpn_len))
        while lst.left() > 0:
            n = lst.u8()
            if n > lst.left():
                break
            proto = lst.take(n)
            if len(side.alpns) < self.settings.max_alpns:
                side.alpns.append(proto)

    def _certificates(self, to_server: bool, body: bytes) -> None:
        """``TlsDecodeHSCertificate``: the chain; only the first certificate is decoded."""
        tx = self._ensure_tx()
        side = tx.side(to_server)
        if len(body) < 3:
            return
        chain_len = int.from_bytes(body[:3], "big")
        end = 3 + chain_len
        if end > len(body):
            return
        side.cert_seen = True
        pos = 3
        processed = 0
        while processed < chain_len:
            if pos + 3 > end:
                tx.add_event("invalid_certificate")
                return
            cert_len = int.from_bytes(body[pos : pos + 3], "big")
            pos += 3
            if pos + cert_len > end:
                tx.add_event("invalid_certificate")
                return
            der = body[pos : pos + cert_len]
            add = True
            if processed == 0 and side.cert0 is None:
                info = decode_certificate(der)
                if isinstance(info, str):
                    tx.add_event(info)
                    add = False
                else:
                    side.cert0 = info
            if add and len(side.certs) < self.settings.max_certs:
                side.certs.append(der)
            pos += cert_len
            processed += cert_len + 3

    # -- heartbeat ------------------------------------------------------------------------
    def _heartbeat(self, to_server: bool, body: bytes) -> bool:
        """``SSLv3ParseHeartbeatProtocol`` (CVE-2014-0160 checks)."""
        tx = self._ensure_tx()
        if len(body) < 3:
            return True
        hb_type = body[0]
        encrypted = tx.client.ccs or tx.server.ccs
        if not encrypted and hb_type not in (1, 2):
            tx.add_event("invalid_heartbeat_message")
            return False
        if not self._hb_inflight:
            self._hb_inflight = True
            self._hb_server_init = not to_server
            if encrypted:
                self._hb_record_len = len(body)
                return True
            payload_len = int.from_bytes(body[1:3], "big")
            if payload_len + 3 > len(body):
                tx.add_event("overflow_heartbeat_message")
                return False
            if len(body) - payload_len - 3 < 16:
                tx.add_event("invalid_heartbeat_message")
                return False
        elif self._hb_server_init != to_server:
            # a second request from the side that already has one in flight
            tx.add_event("invalid_heartbeat_message")
            return False
        else:
            self._hb_inflight = False
            if encrypted and 0 < self._hb_record_len < len(body):
                tx.add_event("dataleak_heartbeat_mismatch")
                self._hb_record_len = 0
                return False
            self._hb_record_len = 0
        return True

    # -- SSLv2 ----------------------------------------------------------------------------
    def _sslv2_record(self, to_server: bool, body: bytes) -> None:
        tx = self._ensure_tx()
        side = tx.side(to_server)
        side.version = c.SSL_VERSION_2
        tx.sslv2 = True
        mtype = body[0]
        if self._v2_master_key and self._v2_client_hs and self._v2_server_hs and mtype not in (
                1, 2, 4):
            # after CLIENT-MASTER-KEY the records are encrypted
            self._side_done(to_server)
            return
        if mtype == 0:
            tx.add_event("error_message_encountered")
        elif mtype == 1:
            tx.current_flags = c.STATE_CLIENT_HELLO
            self._v2_client_hs = True
            side.hello_seen = True
            r = _Reader(body, 1)
            try:
                side.hello_version = r.u16()
                cs_len, sid_len, chal_len = r.u16(), r.u16(), r.u16()
                if sid_len == 0:
                    self._v2_no_session_id = True
                specs = r.take(cs_len)
                side.ciphers = [int.from_bytes(specs[i : i + 3], "big")
                                for i in range(0, len(specs) - 2, 3)]
                sid = r.take(sid_len)
                if sid:
                    side.session_id = sid
                side.random = r.take(chal_len)
            except _Short:
                pass
            if to_server:
                tx.advance_client(c.ClientProgress.HELLO_DONE)
        elif mtype == 2:
            self._v2_master_key = True
            if to_server:
                tx.advance_client(c.ClientProgress.CERT_DONE)
        elif mtype == 4:
            tx.current_flags = c.STATE_SERVER_HELLO
            self._v2_server_hs = True
            side.hello_seen = True
            if not to_server:
                tx.advance_server(c.ServerProgress.HELLO)
        elif mtype in (3, 5, 6, 7, 8):
            if mtype == 8 and to_server:
                tx.current_flags = c.STATE_CLIENT_KEYX
            if self._v2_client_hs and self._v2_server_hs and (
                    not to_server or self._v2_no_session_id or self._v2_master_key):
                self._side_done(to_server)
        tx.flags |= tx.current_flags
