"""``app-layer.protocols.smtp`` settings (Suricata's ``SMTPConfigure``)::

    smtp:
      enabled: yes
      raw-extraction: no          # the whole message is one file (file.data)
      mime:
        decode-mime: yes
        decode-base64: yes
        decode-quoted-printable: yes
        header-value-depth: 2000
        extract-urls: yes
        extract-urls-schemes: [http]
        log-url-scheme: no
        body-md5: no
      inspected-tracker:
        content-limit: 100000     # bytes of each file inspected by file.data
        content-inspect-min-size: 32768
        content-inspect-window: 4096

Defaults are those of Suricata's shipped ``suricata.yaml`` (what a user runs), not of its
zero-initialised C struct. ``raw-extraction`` and ``decode-mime`` together: Suricata turns raw
extraction off with an error; here with a warning. Engine caps (not Suricata keys):
``max-message`` bytes of one message kept for MIME decoding, ``max-tx`` open transactions,
``max-rcpt`` recipients kept per transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ruleengine.config.values import parse_bool, parse_size

DEFAULT_CONTENT_LIMIT = 100_000
DEFAULT_MAX_MESSAGE = 4 << 20
DEFAULT_MAX_TX = 256
DEFAULT_MAX_RCPT = 256

_MIME_BOOLS = {
    "decode-mime": "decode_mime",
    "decode-base64": "decode_base64",
    "decode-quoted-printable": "decode_qp",
    "extract-urls": "extract_urls",
    "log-url-scheme": "log_url_scheme",
    "body-md5": "body_md5",
}
_TOP_KEYS = frozenset({"enabled", "detection-ports", "raw-extraction", "mime",
                       "inspected-tracker", "max-message", "max-tx", "max-rcpt"})
_TRACKER_KEYS = frozenset({"content-limit", "content-inspect-min-size",
                           "content-inspect-window"})


@dataclass(frozen=True)
class SmtpConfig:
    raw_extraction: bool = False
    decode_mime: bool = True
    decode_base64: bool = True
    decode_qp: bool = True
    header_value_depth: int = 2000
    extract_urls: bool = True
    url_schemes: tuple[str, ...] = ("http",)
    log_url_scheme: bool = False
    body_md5: bool = False
    content_limit: int = DEFAULT_CONTENT_LIMIT
    max_message: int = DEFAULT_MAX_MESSAGE
    max_tx: int = DEFAULT_MAX_TX
    max_rcpt: int = DEFAULT_MAX_RCPT


def _size(value: Any, key: str, default: int, warnings: list[str]) -> int:
    size = parse_size(value)
    if size is None:
        warnings.append(f"app-layer.protocols.smtp.{key}: {value!r} is not a size; "
                        f"using {default}")
        return default
    return size


def _schemes(value: Any, warnings: list[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in value.strip("[]").split(",")]
    if not isinstance(value, list | tuple):
        warnings.append("app-layer.protocols.smtp.mime.extract-urls-schemes: expected a list; "
                        "using [http]")
        return ("http",)
    schemes = tuple(str(v).strip().lower() for v in value if str(v).strip())
    return schemes or ("http",)


def _mime(section: Mapping[str, Any], values: dict[str, Any], warnings: list[str]) -> None:
    for key, value in section.items():
        if key in _MIME_BOOLS:
            flag = parse_bool(value)
            if flag is None:
                warnings.append(f"app-layer.protocols.smtp.mime.{key}: {value!r} is not a "
                                "boolean; keeping the default")
            else:
                values[_MIME_BOOLS[key]] = flag
        elif key == "header-value-depth":
            values["header_value_depth"] = _size(value, "mime." + key, 2000, warnings)
        elif key == "extract-urls-schemes":
            values["url_schemes"] = _schemes(value, warnings)
        else:
            warnings.append(f"app-layer.protocols.smtp.mime.{key}: unknown key, ignored")


def _tracker(section: Mapping[str, Any], values: dict[str, Any], warnings: list[str]) -> None:
    for key, value in section.items():
        if key not in _TRACKER_KEYS:
            warnings.append(f"app-layer.protocols.smtp.inspected-tracker.{key}: unknown key, "
                            "ignored")
        elif key == "content-limit":
            values["content_limit"] = _size(value, "inspected-tracker." + key,
                                            DEFAULT_CONTENT_LIMIT, warnings)
        else:
            # inspection windows of partial files: every file here is inspected whole
            # (up to content-limit) once its part ends, so these only need to be valid
            _size(value, "inspected-tracker." + key, 0, warnings)


def parse_config(subtree: Mapping[str, Any]) -> tuple[SmtpConfig, list[str]]:
    """Never raises: bad values keep the default and become warnings."""
    warnings: list[str] = []
    values: dict[str, Any] = {}
    if not isinstance(subtree, Mapping):
        return SmtpConfig(), ["app-layer.protocols.smtp: expected a mapping; using defaults"]
    for key, value in subtree.items():
        if key not in _TOP_KEYS:
            warnings.append(f"app-layer.protocols.smtp.{key}: unknown key, ignored")
        elif key == "raw-extraction":
            flag = parse_bool(value)
            if flag is None:
                warnings.append(f"app-layer.protocols.smtp.raw-extraction: {value!r} is not "
                                "a boolean; keeping no")
            else:
                values["raw_extraction"] = flag
        elif key == "mime":
            if isinstance(value, Mapping):
                _mime(value, values, warnings)
            elif value is not None:
                warnings.append("app-layer.protocols.smtp.mime: expected a mapping; ignored")
        elif key == "inspected-tracker":
            if isinstance(value, Mapping):
                _tracker(value, values, warnings)
        elif key in ("max-message", "max-tx", "max-rcpt"):
            default = {"max-message": DEFAULT_MAX_MESSAGE, "max-tx": DEFAULT_MAX_TX,
                       "max-rcpt": DEFAULT_MAX_RCPT}[key]
            values[key.replace("-", "_")] = max(1, _size(value, key, default, warnings))
    if values.get("raw_extraction") and values.get("decode_mime", True):
        warnings.append('app-layer.protocols.smtp: "decode-mime" and "raw-extraction" can\'t '
                        "be enabled at the same time; disabling raw extraction")
        values["raw_extraction"] = False
    return SmtpConfig(**values), warnings
