"""Suite-wide settings."""

import os

# Bugs caught by the engine's safety nets are raised, not counted, in every test and in the
# engine subprocesses the tests start (see ruleengine/safety.py).
os.environ.setdefault("RULEENGINE_STRICT", "1")
