"""HTTP/1.x: a lenient, bounded, sans-IO parser with libhtp's IDS normalisation.

Public API::

    from ruleengine.applayer.http1 import HttpConfig, HttpParser, HttpTransaction, Progress
    parser = HttpParser(HttpConfig.from_mapping(yaml_libhtp_default_config)[0])
    parser.feed(True, client_bytes); parser.feed(False, server_bytes)
    for tx in parser.transactions: tx.buffer("http.uri")
"""

from ruleengine.applayer.http1.config import HttpConfig
from ruleengine.applayer.http1.parser import HttpParser
from ruleengine.applayer.http1.tx import HttpTransaction, Progress

__all__ = ["HttpConfig", "HttpParser", "HttpTransaction", "Progress"]
