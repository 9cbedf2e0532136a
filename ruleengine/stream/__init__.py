"""TCP session tracking and stream reassembly."""

from ruleengine.stream.tcp import StreamConfig, StreamUpdate, TcpSession, TcpTracker

__all__ = ["StreamConfig", "StreamUpdate", "TcpSession", "TcpTracker"]
