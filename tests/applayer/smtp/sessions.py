"""SMTP sessions as the two directions' byte streams (client lines, server replies)."""

from __future__ import annotations

import base64
from email.message import EmailMessage

ATTACHMENT = b"%!PS\nlegal { restore } currentdevice putdeviceprops EVILPAYLOAD\n" * 3


def message(*, attachment: bytes = ATTACHMENT, filename: str = "exploit.ps",
            text: str = "See http://evil.example/path?x=1 and HTTP://Other.example/.\n",
            subject: str = "Invoice 42") -> bytes:
    msg = EmailMessage()
    msg["From"] = "Alice <alice@example.org>"
    msg["To"] = "bob@example.net, Carol <carol@example.net>"
    msg["Cc"] = "dave@example.net"
    msg["Subject"] = subject
    msg["Message-ID"] = "<1234@example.org>"
    msg["X-Mailer"] = "TestMailer 1.0"
    msg.set_content(text)
    msg.add_attachment(attachment, maintype="application", subtype="postscript",
                       filename=filename)
    return bytes(msg).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def dot_stuff(data: bytes) -> bytes:
    lines = data.split(b"\r\n")
    return b"\r\n".join(b"." + ln if ln.startswith(b".") else ln for ln in lines)


def exchange(body: bytes | None = None, *, helo: bytes = b"mx.client.example",
             pipelining: bool = False) -> list[tuple[bool, bytes]]:
    """One mail: (to_server, bytes) in the order a real session has them."""
    body = message() if body is None else body
    ehlo_reply = b"250-mx.server.example\r\n" + (b"250-PIPELINING\r\n" if pipelining else b"") \
        + b"250 8BITMIME\r\n"
    return [
        (False, b"220 mx.server.example ESMTP ready\r\n"),
        (True, b"EHLO " + helo + b"\r\n"),
        (False, ehlo_reply),
        (True, b"MAIL FROM:<alice@example.org> SIZE=1000\r\n"),
        (False, b"250 OK\r\n"),
        (True, b"RCPT TO:<bob@example.net>\r\n"),
        (False, b"250 OK\r\n"),
        (True, b"RCPT TO:<carol@example.net>\r\n"),
        (False, b"250 OK\r\n"),
        (True, b"DATA\r\n"),
        (False, b"354 go ahead\r\n"),
        (True, dot_stuff(body) + b"\r\n.\r\n"),
        (False, b"250 queued\r\n"),
        (True, b"QUIT\r\n"),
        (False, b"221 bye\r\n"),
    ]


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)
