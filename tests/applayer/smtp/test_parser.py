"""The SMTP parser: transactions as Suricata makes them, MIME attachments as file.data,
every split point, hostile input bounded."""

from __future__ import annotations

import pytest

from ruleengine.applayer.smtp import SmtpParser
from ruleengine.applayer.smtp.config import SmtpConfig, parse_config
from ruleengine.applayer.smtp.logger import email_object, smtp_object
from tests.applayer.smtp import sessions as s


def _parse(chunks: list[tuple[bool, bytes]], config: SmtpConfig | None = None,
           close: bool = True) -> SmtpParser:
    parser = SmtpParser(config)
    for to_server, data in chunks:
        parser.feed(to_server, data)
    if close:
        parser.close(None)
    return parser


def test_one_mail_is_one_transaction_with_its_attachment() -> None:
    parser = _parse(s.exchange())
    (tx,) = parser.transactions  # QUIT opens no transaction of its own
    assert tx.done
    assert tx.helo == b"mx.client.example"
    assert tx.mail_from == b"<alice@example.org>"  # SIZE= option dropped, as Suricata
    assert tx.rcpt_to == [b"<bob@example.net>", b"<carol@example.net>"]
    assert tx.file_contents == [s.ATTACHMENT]
    assert tx.buffer("file.data", True) == [s.ATTACHMENT]
    assert tx.buffer("file.data", False) is None
    assert tx.buffer("email.subject", True) == b"Invoice 42"
    assert tx.events == []


def test_eve_objects() -> None:
    (tx,) = _parse(s.exchange()).transactions
    assert smtp_object(tx) == {"helo": "mx.client.example", "mail_from": "<alice@example.org>",
                               "rcpt_to": ["<bob@example.net>", "<carol@example.net>"]}
    email = email_object(tx, {})
    assert email == {
        "status": "PARSE_DONE", "from": "Alice <alice@example.org>",
        "to": ["bob@example.net", "Carol <carol@example.net>"], "cc": ["dave@example.net"],
        "attachment": ["exploit.ps"],
        "url": ["evil.example/path?x=1", "other.example/."],
    }
    extended = email_object(tx, {"extended": "yes"})
    assert extended is not None
    assert extended["subject"] == "Invoice 42" and extended["x_mailer"] == "TestMailer 1.0"
    assert extended["message_id"] == "<1234@example.org>"


def test_every_split_point_gives_the_same_transaction() -> None:
    chunks = s.exchange()
    whole = _parse(chunks).transactions[0]
    client = b"".join(d for t, d in chunks if t)
    for cut in range(1, len(client), 97):
        split: list[tuple[bool, bytes]] = []
        fed = 0
        for to_server, data in chunks:
            if to_server and fed < cut < fed + len(data):
                split += [(True, data[: cut - fed]), (True, data[cut - fed:])]
            else:
                split.append((to_server, data))
            if to_server:
                fed += len(data)
        tx = _parse(split).transactions[0]
        assert (tx.file_contents, tx.rcpt_to, tx.mail_from) == (whole.file_contents, whole.rcpt_to,
                                                        whole.mail_from), cut


def test_dot_stuffed_lines_are_unstuffed() -> None:
    body = s.message(attachment=b".hidden line\n..two dots\n")
    (tx,) = _parse(s.exchange(body)).transactions
    assert tx.file_contents == [b".hidden line\n..two dots\n"]


def test_quoted_printable_attachment_and_no_attachment() -> None:
    raw = (b"From: a@b\r\nSubject: qp\r\nContent-Type: text/plain\r\n"
           b"Content-Disposition: attachment; filename=\"a.txt\"\r\n"
           b"Content-Transfer-Encoding: quoted-printable\r\n\r\nEVIL=50AYLOAD=\r\nX")
    (tx,) = _parse(s.exchange(raw)).transactions
    assert tx.file_contents == [b"EVILPAYLOADX\r\n"]  # the CRLF before the final dot ends the line
    plain = b"From: a@b\r\nSubject: hi\r\n\r\nbody EVILPAYLOAD\r\n"
    (tx,) = _parse(s.exchange(plain)).transactions
    assert tx.file_contents == []  # the body is not an attachment: no file.data (Suricata)


def test_raw_extraction_makes_the_message_one_file() -> None:
    config, warnings = parse_config({"raw-extraction": True, "mime": {"decode-mime": False}})
    assert warnings == [] and config.raw_extraction
    body = s.message()
    (tx,) = _parse(s.exchange(body), config).transactions
    assert tx.file_contents == [body + b"\r\n"]


def test_two_mails_on_one_session_and_rset() -> None:
    one = s.exchange()[:-2]  # without QUIT
    again = [(True, b"RSET\r\n"), (False, b"250 OK\r\n"),
             (True, b"MAIL FROM:<x@y>\r\n"), (False, b"250 OK\r\n"),
             (True, b"RSET\r\n"), (False, b"250 OK\r\n")]
    parser = _parse(one + again)
    assert [tx.mail_from for tx in parser.transactions] == [b"<alice@example.org>", b"<x@y>"]
    assert all(tx.done for tx in parser.transactions)


def test_data_rejected_and_pipelining() -> None:
    chunks = [(False, b"220 hi ESMTP\r\n"), (True, b"HELO h\r\n"), (False, b"250 ok\r\n"),
              (True, b"DATA\r\n"), (False, b"554 no\r\n"), (True, b"NOOP\r\n")]
    (tx,) = _parse(chunks).transactions
    assert "data_command_rejected" in tx.events and tx.file_contents == []
    # PIPELINING announced: data mode without waiting for 354
    parser = SmtpParser()
    for to_server, data in s.exchange(pipelining=True):
        parser.feed(to_server, data)
    assert parser.transactions[0].file_contents == [s.ATTACHMENT]


def test_starttls_stops_parsing() -> None:
    chunks = [(False, b"220 hi ESMTP\r\n"), (True, b"EHLO h\r\n"), (False, b"250 ok\r\n"),
              (True, b"STARTTLS\r\n"), (False, b"220 go\r\n"),
              (True, b"\x16\x03\x01\x02\x00" + b"\x00" * 500)]
    parser = _parse(chunks)
    assert len(parser.transactions) == 1 and parser.transactions[0].done


def test_bdat_chunks() -> None:
    body = s.message()
    half = len(body) // 2
    chunks = [(False, b"220 hi ESMTP\r\n"), (True, b"EHLO h\r\n"), (False, b"250 ok\r\n"),
              (True, b"MAIL FROM:<a@b>\r\n"), (False, b"250 ok\r\n"),
              (True, f"BDAT {half}\r\n".encode() + body[:half]), (False, b"250 ok\r\n"),
              (True, f"BDAT {len(body) - half} LAST\r\n".encode() + body[half:]),
              (False, b"250 ok\r\n")]
    (tx,) = _parse(chunks).transactions
    assert tx.done and tx.file_contents == [s.ATTACHMENT]


def test_no_welcome_and_invalid_reply_events() -> None:
    parser = _parse([(True, b"HELO h\r\n"), (False, b"xyz\r\n")])
    assert {"no_server_welcome_message", "invalid_reply"} <= set(parser.transactions[0].events)


@pytest.mark.parametrize("garbage", [b"A" * (1 << 20), b"\x00\xff" * 50000, b"\r\n" * 10000])
def test_hostile_input_is_bounded(garbage: bytes) -> None:
    parser = SmtpParser(SmtpConfig(max_message=64 * 1024, max_tx=16))
    parser.feed(False, b"220 hi SMTP\r\n")
    for _ in range(3):
        parser.feed(True, garbage)
        parser.feed(False, garbage)
    parser.feed(True, b"DATA\r\n")
    parser.feed(False, b"354 go\r\n")
    parser.feed(True, b"X" * (1 << 20))  # a message line without end, and no final dot
    parser.close(None)
    assert len(parser.transactions) <= 16
    for tx in parser.transactions:
        assert len(tx.events) <= 64
        assert tx.message is None or len(tx.message) <= 64 * 1024


def test_mime_base64_garbage_and_deep_nesting_never_raise() -> None:
    nested = b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n"
    for i in range(2000):
        nested += f"--b{i}\r\nContent-Type: multipart/mixed; boundary=b{i + 1}\r\n\r\n".encode()
    bad64 = (b"Content-Type: application/x\r\nContent-Disposition: attachment; filename=x\r\n"
             b"Content-Transfer-Encoding: base64\r\n\r\n!!!notbase64***\r\nQUJD\r\n")
    for body in (nested, bad64, b"\xff" * 5000):
        parser = _parse(s.exchange(body))
        assert parser.transactions[0].done
    tx = _parse(s.exchange(bad64)).transactions[0]
    assert "mime_invalid_base64" in tx.events
    assert len(tx.file_contents) == 1  # decoded leniently (invalid characters skipped)


def test_config_warnings() -> None:
    config, warnings = parse_config({"mime": {"decode-mime": "maybe", "bogus": 1},
                                     "inspected-tracker": {"content-limit": "1kb"},
                                     "max-message": "lots"})
    assert config.decode_mime and config.content_limit == 1024
    assert len(warnings) == 3 and all("app-layer.protocols.smtp" in w for w in warnings)


def test_fuzzed_messages_never_raise() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    pieces = st.sampled_from([
        b"Content-Type: multipart/mixed; boundary=\"x\"\r\n", b"--x\r\n", b"--x--\r\n",
        b"Content-Disposition: attachment; filename*=utf-99''%ff%fe\r\n",
        b"Content-Type: text/plain; charset=\"bogus-charset\"; name*0*=''a\r\n",
        b"Content-Transfer-Encoding: base64\r\n",
        b"Content-Transfer-Encoding: quoted-printable\r\n",
        b"\r\n", b"=\r\n", b"=ZZ", b"QUJD\r\n", b"\xff\xfe\x00", b".\r\n", b"..\r\n",
        b"Subject: =?utf-8?b?!!?=\r\n", b"From: \r\n", b"To: ,,,\r\n",
    ])

    @settings(max_examples=200, deadline=None)
    @given(st.lists(pieces, max_size=40))
    def run(parts: list[bytes]) -> None:
        parser = _parse(s.exchange(b"".join(parts)))
        tx = parser.transactions[0]
        email_object(tx, {"extended": True, "md5": ["body", "subject"]})
        smtp_object(tx)

    run()


def test_starttls_then_plaintext_is_a_failed_protocol_change() -> None:
    chunks = [(False, b"220 hi ESMTP\r\n"), (True, b"EHLO h\r\n"), (False, b"250 ok\r\n"),
              (True, b"STARTTLS\r\n"), (False, b"220 go\r\n"), (True, b"MAIL FROM:<a@b>\r\n")]
    (tx,) = _parse(chunks).transactions
    assert "failed_protocol_change" in tx.events


def test_attachments_are_tracked_files() -> None:
    parser = SmtpParser()
    for to_server, data in s.exchange():
        parser.feed(to_server, data)
    (file,) = parser.transactions[0].files
    assert (file.name, file.size, file.to_server, file.state.name, file.tx_id) == (
        b"exploit.ps", len(s.ATTACHMENT), True, "CLOSED", 0)
