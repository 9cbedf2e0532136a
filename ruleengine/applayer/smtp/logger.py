"""EVE ``smtp`` events (Suricata's ``output-json-smtp.c`` + ``output-json-email-common.c``):
``smtp: {helo, mail_from, rcpt_to}`` and, beside it, ``email: {status, from, to, cc,
attachment, url}`` (``extended: yes`` adds message_id, subject, x_mailer; ``custom: [...]``
picks fields; ``md5: [body, subject]`` the hashes)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from ruleengine.applayer.jsontext import text
from ruleengine.applayer.smtp.parser import SmtpTransaction

# config field -> header name; only fields Suricata's EVE schema knows
_EXTENDED = {"message_id": "message-id", "subject": "subject", "x_mailer": "x-mailer"}
_CUSTOM = {**_EXTENDED, "date": "date", "received": "received"}


def smtp_object(tx: SmtpTransaction) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    if tx.helo is not None:
        obj["helo"] = text(tx.helo)
    if tx.mail_from is not None:
        obj["mail_from"] = text(tx.mail_from)
    if tx.rcpt_to:
        obj["rcpt_to"] = [text(r) for r in tx.rcpt_to]
    return obj


def _comma_list(value: str) -> list[str]:
    return [item.lstrip(" \t") for item in value.split(",") if item.strip()]


def _wanted(options: Mapping[str, Any]) -> set[str]:
    fields = set(_EXTENDED) if str(options.get("extended", "")).lower() in (
        "yes", "true", "on", "1") or options.get("extended") is True else set()
    custom = options.get("custom")
    if isinstance(custom, list | tuple):
        for item in custom:
            name = str(item).strip().lower().replace("-", "_")
            if name in _CUSTOM:
                fields.add(name)
    return fields


def email_object(tx: SmtpTransaction, options: Mapping[str, Any]) -> dict[str, Any] | None:
    mime = tx.mime
    if mime is None:
        return None
    obj: dict[str, Any] = {"status": tx.mime_status or "PARSE_DONE"}
    sender = tx.header("from")
    if sender is not None:
        obj["from"] = sender.lstrip(" \t")
    for key in ("to", "cc"):
        value = tx.header(key)
        if value is not None and _comma_list(value):
            obj[key] = _comma_list(value)
    for field in sorted(_wanted(options)):
        header = _CUSTOM[field]
        if field == "received":
            values = tx.headers(header)
            if values:
                obj[field] = values
        else:
            value = tx.header(header)
            if value is not None:
                obj[field] = value
    if mime.filenames and mime.filenames != ["rawmsg"]:
        obj["attachment"] = list(mime.filenames)
    if mime.urls:
        obj["url"] = list(mime.urls)
    md5 = options.get("md5")
    if isinstance(md5, list | tuple):
        if "subject" in md5 and tx.header("subject") is not None:
            subject = tx.header("subject") or ""
            obj["subject_md5"] = hashlib.md5(subject.encode(), usedforsecurity=False).hexdigest()
        if "body" in md5 and mime.body_md5 is not None:
            obj["body_md5"] = mime.body_md5
    return obj


def eve_logger(tx: SmtpTransaction, options: Mapping[str, Any]) -> dict[str, Any] | None:
    return smtp_object(tx)


def eve_extra(tx: SmtpTransaction, options: Mapping[str, Any]) -> dict[str, Any] | None:
    email = email_object(tx, options)
    return None if email is None else {"email": email}
