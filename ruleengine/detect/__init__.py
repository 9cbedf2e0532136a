"""Detection: prefilter (multi-pattern matcher) and per-rule inspection.

The integrator uses :class:`ruleengine.detect.engine.DetectEngine`.
"""

from ruleengine.detect.engine import DetectEngine, Match

__all__ = ["DetectEngine", "Match"]
