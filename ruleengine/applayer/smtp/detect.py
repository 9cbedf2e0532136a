"""SMTP detection buffers (Suricata 8's ``smtp.*`` and ``email.*`` sticky buffers, and
``file.data`` over the decoded attachments). All are to-server: the client sends the mail."""

from __future__ import annotations

from ruleengine.applayer.base import BufferDirection, BufferSpec
from ruleengine.applayer.files import magics_in, names_in
from ruleengine.applayer.smtp.parser import BufferGetter, SmtpTransaction


def _text(value: str | None) -> bytes | None:
    return None if value is None else value.encode("utf-8", "surrogateescape")


def _header(name: str) -> BufferGetter:
    return lambda tx: _text(tx.header(name))


def _header_list(name: str) -> BufferGetter:
    def get(tx: SmtpTransaction) -> list[bytes] | None:
        values = tx.headers(name)
        return [v.encode("utf-8", "surrogateescape") for v in values] or None
    return get


def _files(tx: SmtpTransaction) -> list[bytes] | None:
    return list(tx.file_contents) or None


def _urls(tx: SmtpTransaction) -> list[bytes] | None:
    urls = tx.mime.urls if tx.mime is not None else []
    return [u.encode() for u in urls] or None


def _rcpt_to(tx: SmtpTransaction) -> list[bytes] | None:
    return list(tx.rcpt_to) or None


GETTERS: dict[str, BufferGetter] = {
    "smtp.helo": lambda tx: tx.helo,
    "smtp.mail_from": lambda tx: tx.mail_from,
    "smtp.rcpt_to": _rcpt_to,
    "email.from": _header("from"),
    "email.subject": _header("subject"),
    "email.to": _header("to"),
    "email.cc": _header("cc"),
    "email.date": _header("date"),
    "email.message_id": _header("message-id"),
    "email.x_mailer": _header("x-mailer"),
    "email.url": _urls,
    "email.received": _header_list("received"),
    "file.data": _files,
    "file.name": lambda tx: names_in(tx.files, True),
    "file.magic": lambda tx: magics_in(tx.files, True),
}

_MULTI = frozenset({"smtp.rcpt_to", "email.url", "email.received", "file.data", "file.name",
                    "file.magic"})

BUFFERS: tuple[BufferSpec, ...] = tuple(
    BufferSpec(name, direction=BufferDirection.TO_SERVER, multi=name in _MULTI, getter=getter)
    for name, getter in GETTERS.items()
)

# ``tx.buffer(name)`` answers from this table.
SmtpTransaction.buffer_getters = GETTERS
