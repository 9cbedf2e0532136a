"""Package data: Suricata default configuration files shipped with ruleengine."""
