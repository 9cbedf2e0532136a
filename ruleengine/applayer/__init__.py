"""Application-layer parsers (sans-IO). HTTP/1.x lives in :mod:`ruleengine.applayer.http1`."""
