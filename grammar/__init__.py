"""The Suricata rule grammar (``rules.lark``), shipped as package ``ruleengine.grammar``.

Load it with ``Lark.open_from_package("ruleengine.grammar", "rules.lark", ...)``;
``ruleengine.rules.syntax`` does, and caches the built parser.
"""
