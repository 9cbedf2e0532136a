"""ruleengine: a Suricata-compatible signature engine with kernel flow bypass."""

__version__ = "0.1.0"
