"""``filename`` and ``fileext`` (``src/detect-filename.c``): shorthands for a content on the
``file.name`` buffer, the names of the transaction's files (see ``applayer/files.py``).

* ``filename:"<name>"`` is ``file.name; content:"<name>"; nocase;``
* ``fileext:"<ext>"`` is ``file.name; content:".<ext>"; endswith; nocase;``
* ``filemagic:"<text>"`` is ``file.magic; content:"<text>"; nocase;`` (the ``file.magic``
  buffer holds libmagic's description of each file, see ``applayer/files.py``)

Both leave the active buffer alone (a later ``content`` goes where it went before).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ruleengine.applayer.files import magic_available
from ruleengine.keywords.content import _new_content
from ruleengine.keywords.registry import KeywordSpec, Quotes

if TYPE_CHECKING:
    from ruleengine.rules.builder import RuleBuilder

FILE_NAME = "file.name"
FILE_MAGIC = "file.magic"


def _file_name_content(b: RuleBuilder, value: str, *, extension: bool,
                       buffer: str = FILE_NAME) -> None:
    negated = value.startswith("!")
    body = value[1:].strip() if negated else value
    quoted = len(body) >= 2 and body[0] == '"' and body[-1] == '"'
    text = body[1:-1] if quoted else body
    if extension:
        text = "." + text
    content = _new_content(b, ("!" if negated else "") + f'"{text}"')
    content.nocase = True
    content.endswith = extension
    buf = b.buffer_list(buffer)
    buf.items.append(content)
    b.last_content, b.last_content_buffer = content, buf
    b.last_match_buffer = buf


def setup_filename(b: RuleBuilder, value: str | None) -> None:
    assert value is not None
    _file_name_content(b, value, extension=False)


def setup_fileext(b: RuleBuilder, value: str | None) -> None:
    assert value is not None
    _file_name_content(b, value, extension=True)


def setup_filemagic(b: RuleBuilder, value: str | None) -> None:
    assert value is not None
    if not magic_available():  # Suricata without libmagic refuses the keyword
        if "filemagic" not in b.rule.unsupported:
            b.rule.unsupported.append("filemagic")
        b.warn("filemagic needs libmagic (pip install 'ruleengine[magic]'): the rule "
               "loads but is skipped", "unsupported-keyword", b.option_span)
    _file_name_content(b, value, extension=False, buffer=FILE_MAGIC)


SPECS: tuple[KeywordSpec, ...] = (
    KeywordSpec("filename", setup_filename, negatable=True, quotes=Quotes.OPTIONAL,
                doc="file.name; content:<name>; nocase"),
    KeywordSpec("fileext", setup_fileext, negatable=True, quotes=Quotes.OPTIONAL,
                doc="file.name; content:.<ext>; endswith; nocase"),
    KeywordSpec("filemagic", setup_filemagic, negatable=True, quotes=Quotes.OPTIONAL,
                doc="file.magic; content:<text>; nocase"),
)
