"""One rule's text -> a validated ``Rule`` (plus warnings), or a positioned RuleError."""

from __future__ import annotations

from ruleengine.applayer.registry import canonical
from ruleengine.buffers import BUFFERS
from ruleengine.keywords import REGISTRY
from ruleengine.keywords.registry import ArgKind, Registry, check_value
from ruleengine.keywords.transforms import check_transformed_contents
from ruleengine.rules.builder import Finding, RuleBuilder
from ruleengine.rules.classification import classification
from ruleengine.rules.errors import KeywordError, RuleError, RuleSyntaxError
from ruleengine.rules.header import HTTP_PROTOCOLS, HeaderParser
from ruleengine.rules.model import (
    PAYLOAD,
    ContentMatch,
    PcreMatch,
    Rule,
    Span,
)
from ruleengine.rules.syntax import option_regex

TCP_PROTOCOLS = frozenset({"tcp", "tcp-pkt", "tcp-stream"})
_HTTP_OK_APP = frozenset({"http", "http2"})
_SHORT_FAST_PATTERN = 4
_PAIRS: dict[tuple[str, str | None], tuple[str, str | None]] = {}


def parse_rule_text(
    text: str, *, file: str, line: int, headers: HeaderParser, registry: Registry = REGISTRY
) -> tuple[Rule, list[Finding]]:
    """Parse one (continuation-joined) rule line. Raises RuleError with an absolute span."""
    open_at = text.find("(")
    if open_at < 0:
        end = len(text.rstrip()) + 1
        raise RuleSyntaxError(
            "no option list: expected '(' after the rule header",
            Span(file, line, end, end + 1),
            code="syntax-error",
        )
    header = headers.parse(text[:open_at], file=file, line=line)
    body_end = len(text.rstrip())
    if not text[:body_end].endswith(")") or body_end - 1 == open_at:
        raise RuleSyntaxError(
            "rule does not end with ')'",
            Span(file, line, body_end + 1, body_end + 2),
            code="syntax-error",
            hint="the option list is '(name:value; ...)'",
        )
    close_at = body_end - 1
    rule = Rule(
        action=header.action,
        protocol=header.protocol,
        src=header.src,
        src_ports=header.src_ports,
        direction=header.direction,
        dst=header.dst,
        dst_ports=header.dst_ports,
        sid=0,
        raw=text,
        span=Span(file, line, 1, body_end + 1),
        action_scope=header.action_scope,
        app_proto=header.app_proto,
    )
    builder = RuleBuilder(rule, file, line)
    _options(builder, text, open_at + 1, close_at, file, line, registry)
    _finalize(builder, Span(file, line, close_at + 1, close_at + 2))
    return rule, builder.warnings


def _options(
    b: RuleBuilder, text: str, pos: int, close_at: int, file: str, line: int, registry: Registry
) -> None:
    get = registry.lookup
    append = b.rule.options.append
    pairs = _PAIRS
    required = ArgKind.REQUIRED
    # finditer skips over garbage between options: each match must start where the
    # previous one ended (the pattern consumes leading whitespace), else it is an error.
    for m in option_regex().finditer(text, pos, close_at):
        if m.start() != pos:
            break
        name, value = m.group("name", "value")
        if value is not None:
            value = value.strip()
        b.match = m
        spec = get(name) or get(name.lower())
        if spec is None:
            raise RuleError(
                f"unknown rule keyword '{name}'",
                Span(file, line, m.start("name") + 1, m.start("name") + 1 + len(name)),
                code="unknown-keyword",
                hint=registry.suggest(name),
            )
        try:
            if value is not None or spec.arg is required:
                check_value(spec, value)  # a missing value is fine for NONE/OPTIONAL
            spec.setup(b, value)
        except KeywordError as exc:
            _place(exc, b)
            raise
        # Share equal option tuples between rules: less memory, and the warm-load
        # pickle stores each distinct one once.
        pair = pairs.get((name, value))
        if pair is None:
            pair = (name, value)
            if value is None or len(value) <= 48:
                pairs[pair] = pair
        append(pair)
        pos = m.end()
    rest = text[pos:close_at]
    if rest.strip():
        pos += len(rest) - len(rest.lstrip())
        raise _option_syntax_error(text, pos, close_at, file, line)


def _place(exc: KeywordError, b: RuleBuilder) -> None:
    if exc.span is not None:
        return
    if exc.value_range is not None and b.value_span is not None:
        start, end = exc.value_range
        vs = b.value_span
        exc.span = Span(vs.file, vs.line, vs.col + start, vs.col + max(end, start + 1))
    else:
        exc.span = b.option_span


def _option_syntax_error(
    text: str, pos: int, close_at: int, file: str, line: int
) -> RuleSyntaxError:
    rest = text[pos:close_at]
    name_len = 0
    while name_len < len(rest) and rest[name_len] not in ' \t;:()"':
        name_len += 1
    name = rest[:name_len]
    if name and ";" not in rest[name_len:]:
        return RuleSyntaxError(
            f"no terminating ';' found for option '{name}'",
            Span(file, line, pos + 1, close_at + 1),
            code="missing-semicolon",
            hint="every option ends with ';' (a ';' inside a value is written '\\;')",
        )
    if not name:
        what = repr(rest[:1]) if rest else "end of rule"
        return RuleSyntaxError(
            f"invalid formatting or malformed option: unexpected {what}",
            Span(file, line, pos + 1, pos + 2),
            code="syntax-error",
        )
    return RuleSyntaxError(
        f"bad option value formatting for '{name}' (possible missing semicolon)",
        Span(file, line, pos + 1, pos + 1 + name_len),
        code="syntax-error",
    )


# --- whole-rule validation (Suricata's SigValidate) --------------------------------------


def _finalize(b: RuleBuilder, close_span: Span) -> None:
    rule = b.rule
    b.check_sticky_used()
    if any(not buf.items for buf in rule.buffers):  # e.g. payload emptied by http_uri
        rule.buffers[:] = [buf for buf in rule.buffers if buf.items]
    if not b.sid_seen:
        raise RuleError(
            "signature is missing required value 'sid'",
            close_span,
            code="missing-sid",
            hint="add 'sid:<number>;' (and 'rev:<number>;')",
        )
    if b.bypass_span is not None and b.filestore_span is not None:
        raise RuleError(
            "'bypass' cannot be used together with 'filestore'",
            b.bypass_span,
            code="bypass-with-filestore",
            hint="a bypassed flow is no longer inspected, so no file would be stored",
        )
    _check_buffer_contents(b)
    check_transformed_contents(b)  # keywords/transforms.py (Suricata's TransformValidate)
    _check_raw_header_direction(b)
    _check_app_proto(b)
    if rule.priority is None and rule.classtype is not None:
        cls = classification(rule.classtype)
        if cls is not None:
            rule.priority = cls[1]
    _choose_fast_pattern(b)
    _analyze(b)


def _check_buffer_contents(b: RuleBuilder) -> None:
    for buf in b.rule.buffers:
        spec = BUFFERS.get(buf.buffer)
        if spec is None or not (spec.lowercase_only or spec.no_spaces):
            continue
        for item in buf.items:
            if not isinstance(item, ContentMatch):
                continue
            span = item.span or b.rule.span
            if spec.lowercase_only:
                if item.nocase:
                    raise RuleError(
                        f"{buf.buffer} is normalized to lowercase: 'nocase' is not allowed "
                        "on its contents",
                        b.span_of(b.nocase_spans[id(item)]) if id(item) in b.nocase_spans else span,
                        code="nocase-on-lowercase-buffer",
                        hint="remove 'nocase' and write the pattern in lowercase",
                    )
                if item.pattern != item.pattern.lower():
                    raise RuleError(
                        f"{buf.buffer} is normalized to lowercase: a pattern with uppercase "
                        "characters can never match",
                        span,
                        code="uppercase-on-lowercase-buffer",
                        hint="write the pattern in lowercase",
                    )
            if spec.no_spaces:
                problem = _space_problem(buf.buffer, item.pattern)
                if problem:
                    raise RuleError(
                        f"{buf.buffer} pattern {problem}",
                        span,
                        code="space-in-pattern",
                        hint=f"the {buf.buffer} buffer never contains that whitespace",
                    )


def _space_problem(buffer: str, pattern: bytes) -> str | None:
    """Suricata's validate callbacks: http.method rejects leading/trailing space or tab
    (DetectHttpMethodValidateCallback), http.protocol any space."""
    if buffer != "http.method":
        return "contains a space" if b" " in pattern else None
    for byte, name in ((0x20, "space"), (0x09, "tab")):
        if pattern[:1] == bytes([byte]):
            return f"with leading {name}"
        if pattern[-1:] == bytes([byte]):
            return f"with trailing {name}"
    return None


def _check_raw_header_direction(b: RuleBuilder) -> None:
    """Suricata: http.header.raw holds request *or* response headers, so the rule must say
    which (DetectHttpRawHeaderValidateCallback)."""
    rule = b.rule
    if rule.buffer("http.header.raw") is None:
        return
    flow = rule.flow
    if flow is None or flow.to_server == flow.to_client:
        raise RuleError(
            "http.header.raw without a flow direction",
            rule.span,
            code="raw-header-without-direction",
            hint="add flow:to_server (request headers) or flow:to_client (response headers)",
        )


def _same_app(header_app: str, keyword_app: str) -> bool:
    if keyword_app == "http":
        return header_app in _HTTP_OK_APP
    return canonical(header_app) == keyword_app


def _check_app_proto(b: RuleBuilder) -> None:
    rule = b.rule
    if not b.uses_http_buffers:
        return
    header_app = rule.app_proto
    wanted = b.keyword_alproto or "http"
    if header_app is None:
        rule.app_proto = wanted  # Suricata sets the alproto from the keywords
    elif not _same_app(header_app, wanted) and not rule.app_proto_negated:
        raise RuleError(
            f"conflicting alprotos: protocol '{rule.protocol}' with {wanted} keywords",
            b.first_http_span or rule.span,
            code="conflicting-alproto",
        )


# MPM priority per buffer (lower number = higher priority): application-layer buffers
# beat the payload; http.method, http.stat_code and http.stat_msg rank with the payload
# (doc/userguide/rules/fast-pattern-explained.rst).
_LOW_PRIORITY_BUFFERS = frozenset({PAYLOAD, "http.method", "http.stat_code", "http.stat_msg"})


def pattern_strength(pattern: bytes) -> int:
    """Suricata's PatternStrength: character diversity, used to break length ties."""
    seen: set[int] = set()
    score = 0
    for byte in pattern:
        if byte in seen:
            score += 1
            continue
        seen.add(byte)
        if 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A:
            score += 3
        elif 0x20 <= byte <= 0x7E or byte in (0x00, 0x01, 0xFF):
            score += 4
        else:
            score += 6
    return score


def _choose_fast_pattern(b: RuleBuilder) -> None:
    """Suricata's choice: an explicit fast_pattern; else, among the non-negated contents
    (all contents if every one is negated), those of the highest-priority buffers, the
    longest, then the strongest; the first one in the rule wins remaining ties."""
    rule = b.rule
    if b.explicit_fast_pattern is not None:
        _, content, _ = b.explicit_fast_pattern
        # Look the buffer up now: "content:..; fast_pattern; http_uri;" moves it afterwards.
        for buf in rule.buffers:
            if any(item is content for item in buf.items):
                rule.fast_pattern = (buf.buffer, content)
                return
        return
    best: tuple[bool, int, int, int] | None = None
    for buf in rule.buffers:
        priority = 3 if buf.buffer in _LOW_PRIORITY_BUFFERS else 2
        for item in buf.items:
            if type(item) is ContentMatch:
                pattern = item.pattern
                key = (not item.negated, -priority, len(pattern), 0)
                if best is not None and key[:3] < best[:3]:
                    continue
                key = (*key[:3], pattern_strength(pattern))
                if best is None or key > best:
                    best = key
                    rule.fast_pattern = (buf.buffer, item)


def _analyze(b: RuleBuilder) -> None:
    """Warnings in the spirit of Suricata's --engine-analysis."""
    rule = b.rule
    has_content = has_pcre = has_inspection = False
    pcre_span: Span | None = None
    for buf in rule.buffers:
        for item in buf.items:
            has_inspection = True
            if isinstance(item, ContentMatch):
                has_content = True
            elif isinstance(item, PcreMatch):
                if not has_pcre:
                    pcre_span = item.span
                has_pcre = True
    if has_pcre and not has_content:
        b.warn(
            "pcre without a content: every packet runs the regex (no fast pattern)",
            "pcre-no-content",
            pcre_span,
            "add a content with a literal part of the regex",
        )
    elif has_inspection and not has_content:
        b.warn(
            "rule inspects buffers but has no content: it cannot use the fast pattern matcher",
            "no-fast-pattern",
            rule.span,
        )
    elif has_content and rule.fast_pattern is not None and rule.fast_pattern[1].negated:
        b.warn(
            "rule has only negated contents: no usable fast pattern",
            "no-fast-pattern",
            rule.fast_pattern[1].span,
        )
    if rule.fast_pattern is not None and not rule.unsupported:
        content = rule.fast_pattern[1]
        if len(content.mpm_pattern) < _SHORT_FAST_PATTERN and not content.negated:
            b.warn(
                f"fast pattern is only {len(content.mpm_pattern)} byte(s) long: "
                "it will match often",
                "short-fast-pattern",
                content.span,
                "choose a longer, rarer content as fast_pattern",
            )
    if (
        rule.protocol in TCP_PROTOCOLS
        and rule.flow is None
        and not any(pc.field == "tcp.flags" for pc in rule.packet_conditions)
    ):
        col = len(rule.raw) - len(rule.raw.lstrip()) + rule.raw.lstrip().find(rule.protocol)
        b.warn(
            "TCP rule without a flow or flags option",
            "tcp-no-flow",
            Span(rule.span.file, rule.span.line, col + 1, col + 1 + len(rule.protocol)),
            "add e.g. 'flow:established,to_server;'",
        )
    if b.uses_http_buffers and (b.keyword_alproto or "http") == "http" \
            and rule.protocol not in HTTP_PROTOCOLS and rule.protocol != "http2":
        b.warn(
            f"HTTP keyword in a '{rule.protocol}' rule: write 'alert http' instead",
            "http-keyword-non-http-rule",
            b.first_http_span,
        )
