"""The rule language: grammar-driven parsing into typed, validated Rule objects.

Public API (import from the submodules; this package imports nothing so that
``ruleengine.keywords`` and ``ruleengine.rules`` can depend on each other's leaves):

- ``ruleengine.rules.loader``: ``load_rule_files(paths, *, address_vars, port_vars,
  use_cache) -> RuleSet``, ``load_rule_text(text, ...) -> RuleSet``,
  ``parse_rule(text, *, file, line, ...) -> Rule`` (raises ``RuleError``), ``RuleSet``.
- ``ruleengine.rules.classification``: ``classification(classtype) -> (description,
  priority) | None`` for the EVE ``alert.category`` / ``alert.severity``.
- ``ruleengine.rules.vars``: Suricata's default address/port groups and
  ``vars_from_yaml(path)`` for a suricata.yaml ``vars:`` section.
- ``ruleengine.rules.errors``: ``RuleError`` > ``RuleSyntaxError``, ``KeywordError``.
- ``ruleengine.rules.model``: the Rule model (the contract with detection).

Pipeline of one rule: ``loader`` (files, comments, continuations, limits, duplicate
sids, cache) -> ``parse`` (header via ``header``/the Lark grammar, options via the
grammar's OPTION terminal, one ``KeywordSpec.setup`` per option on a ``builder``) ->
whole-rule validation and engine-analysis warnings -> ``Rule`` + ``Diagnostic``s.
"""
