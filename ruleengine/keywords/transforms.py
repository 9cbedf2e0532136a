"""Buffer transforms (``dotprefix``, ``to_lowercase``, ``xor:"..."``, ``pcrexform:"..."``...).

Suricata's rules (``DetectSignatureAddTransform`` / ``DetectBufferGetActiveList``):

* a transform needs an active sticky buffer (not ``pkt_data``, not ``base64_data``);
* transforms must directly follow the sticky buffer: once a content (or any match) was
  added to the buffer, a further transform is an error;
* the transformed buffer is a buffer of its own: ``dns.query; dotprefix; content:"a";
  dns.query; content:"b";`` inspects ``a`` in the transformed and ``b`` in the plain one.
  The same chain written twice shares one list, like Suricata's buffer ids.

Each transformed list is a ``BufferMatch`` whose ``transforms`` holds the chain in rule
order; detection applies it to the fetched buffer before prefilter and inspection.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ruleengine.keywords import transform_apply as tx
from ruleengine.keywords._values import parse_int, split_args
from ruleengine.keywords.registry import ArgKind, KeywordSpec, Quotes, Setup, Stage, unquote
from ruleengine.rules.errors import KeywordError, RuleError
from ruleengine.rules.model import BASE64_DATA, PAYLOAD, BufferMatch, ContentMatch, Transform

if TYPE_CHECKING:
    from ruleengine.rules.builder import RuleBuilder

MAX_TRANSFORMS = 16  # Suricata's DETECT_TRANSFORMS_MAX
_HEX_RE = re.compile(r"(?:[0-9a-fA-F]{2})+\Z")


def _attach(b: RuleBuilder, t: Transform) -> None:
    """Put ``t`` on the active sticky buffer: the following matches go to the list of
    (buffer, chain so far + t)."""
    st = b.sticky
    if st is None or st.name in (PAYLOAD, BASE64_DATA):
        raise KeywordError(
            f"transform '{t.name}' needs a sticky buffer before it",
            code="transform-without-buffer",
            hint="write the transform right after a sticky buffer, e.g. 'dns.query; dotprefix;'",
        )
    if len(st.buf.items) != st.items_at_set:
        raise KeywordError(
            f"transform '{t.name}' must directly follow the sticky buffer '{st.name}' "
            "(a match was already added to it)",
            code="transform-after-match",
            hint="put every transform before the first content of the buffer",
        )
    chain = [*st.buf.transforms, t]
    if len(chain) > MAX_TRANSFORMS:
        raise KeywordError(
            f"more than {MAX_TRANSFORMS} transforms on '{st.name}'", code="too-many-transforms"
        )
    old = st.buf
    key = tx.chain_key(st.name, chain)
    new = b.lists.get(key)
    if new is None:
        new = BufferMatch(st.name, transforms=chain)
        b.lists[key] = new
        b.rule.buffers.append(new)
    plain_key = tx.chain_key(st.name, old.transforms)
    if not old.items and b.lists.get(plain_key) is old:
        # the list was created by the sticky keyword itself and stays empty: drop it
        del b.lists[plain_key]
        if any(x is old for x in b.rule.buffers):
            b.rule.buffers[:] = [x for x in b.rule.buffers if x is not old]
    st.buf = new
    st.items_at_set = len(new.items)


def _noarg(name: str) -> Setup:
    def setup(b: RuleBuilder, value: str | None) -> None:
        _attach(b, Transform(name))

    return setup


def setup_xor(b: RuleBuilder, value: str | None) -> None:
    assert value is not None
    text, start = unquote(value)
    if not _HEX_RE.match(text) or len(text) > 510:
        raise KeywordError(
            "xor: the key must be an even number of hex digits (1-255 bytes), "
            f"got '{text}'",
            code="invalid-keyword-value",
            value_range=(start, start + len(text)),
        )
    _attach(b, Transform("xor", text, key=bytes.fromhex(text)))


def setup_pcrexform(b: RuleBuilder, value: str | None) -> None:
    assert value is not None
    text, start = unquote(value)
    try:
        tx.compile_pcrexform(text)
    except tx.TransformError as exc:
        raise KeywordError(
            str(exc), code="invalid-pcrexform", value_range=(start, start + len(text))
        ) from None
    _attach(b, Transform("pcrexform", text))


def setup_from_base64(b: RuleBuilder, value: str | None) -> None:
    nbytes = 0
    offset = 0
    mode = "rfc4648"
    seen: set[str] = set()
    if value:
        for part, pos in split_args(value):
            if not part:
                continue
            name, _, arg = part.partition(" ")
            name = name.rstrip(":").lower()
            arg = arg.strip().lstrip(":").strip()
            if name in seen:
                raise KeywordError(
                    f"from_base64: '{name}' given twice", value_range=(pos, pos + len(part))
                )
            seen.add(name)
            at = pos + len(part) - len(arg)
            if name == "bytes":
                nbytes = parse_int(arg, "from_base64 bytes", start=at, lo=1, hi=0xFFFFFFFF)
            elif name == "offset":
                offset = parse_int(arg, "from_base64 offset", start=at, lo=0, hi=65535)
            elif name == "mode":
                mode = arg.lower()
                if mode not in ("strict", "rfc4648", "rfc2045"):
                    raise KeywordError(
                        f"from_base64: unknown mode '{arg}'",
                        value_range=(at, at + len(arg)),
                        hint="valid: strict, rfc4648, rfc2045",
                    )
            else:
                raise KeywordError(
                    f"from_base64: unknown option '{name}'",
                    value_range=(pos, pos + len(part)),
                    hint="valid: bytes <n>, offset <n>, mode <strict|rfc4648|rfc2045>",
                )
    arg_text = value if value else None
    _attach(b, Transform("from_base64", arg_text, nbytes=nbytes, offset=offset, mode=mode))


_NOARG = (
    "to_lowercase", "to_uppercase", "strip_whitespace", "compress_whitespace", "url_decode",
    "to_md5", "to_sha1", "to_sha256", "dotprefix", "header_lowercase", "strip_pseudo_headers",
    "domain", "tld",
)  # fmt: skip

IMPLEMENTED: frozenset[str] = frozenset((*_NOARG, "xor", "pcrexform", "from_base64"))


def check_transformed_contents(b: RuleBuilder) -> None:
    """Suricata's DetectEngineBufferTypeValidateTransform (in DetectContentSetup): a
    positive content a transform's output can never contain makes the rule invalid
    (``to_lowercase; content:"ABC";``)."""
    for buf in b.rule.buffers:
        if not buf.transforms:
            continue
        for item in buf.items:
            if not isinstance(item, ContentMatch) or item.negated:
                continue
            bad = tx.content_incompatible(buf.transforms, item.pattern)
            if bad is not None:
                raise RuleError(
                    f"content \"{item.pattern.decode('latin-1')}\" is incompatible with the "
                    f"{bad} transform of {buf.buffer}: it can never match",
                    item.span or b.rule.span,
                    code="content-incompatible-with-transform",
                )


SPECS: tuple[KeywordSpec, ...] = (
    *(
        KeywordSpec(name, _noarg(name), arg=ArgKind.NONE, stage=Stage.STICKY)
        for name in _NOARG
    ),
    KeywordSpec("xor", setup_xor, quotes=Quotes.MANDATORY, stage=Stage.STICKY),
    KeywordSpec("pcrexform", setup_pcrexform, quotes=Quotes.MANDATORY, stage=Stage.STICKY),
    KeywordSpec("from_base64", setup_from_base64, arg=ArgKind.OPTIONAL,
                quotes=Quotes.FORBIDDEN, stage=Stage.STICKY),
)
