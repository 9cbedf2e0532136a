"""HTTP/1.x: a lenient, bounded, sans-IO parser with libhtp's IDS normalisation.

Modules: ``config`` (libhtp settings from suricata.yaml), ``parser`` (:class:`HttpParser`, one
per flow), ``tx`` (:class:`HttpTransaction`, what detection and EVE read), ``normalize`` (URI
and host normalisation), ``decompress`` (gzip/deflate/lzma layers), ``body`` (Suricata's
inspection windows), ``getters`` (buffer getters referenced by ``ruleengine.buffers``),
``events`` (anomaly event names).

Use::

    config, unknown = HttpConfig.from_mapping(yaml_libhtp_default_config)
    parser = HttpParser(config)
    parser.feed(True, client_bytes, ts)      # to_server
    parser.feed(False, server_bytes, ts)     # to_client
    parser.gap(True, missing_len)            # stream hole
    parser.close()                           # EOF (one side: close(True/False))
    for tx in parser.transactions:           # oldest first; the caller prunes old ones
        tx.buffer("http.uri"), tx.buffer("http.header", False), tx.request_complete
"""

from ruleengine.applayer.http1.config import HttpConfig
from ruleengine.applayer.http1.parser import HttpParser
from ruleengine.applayer.http1.tx import HttpTransaction, Progress

__all__ = ["HttpConfig", "HttpParser", "HttpTransaction", "Progress"]
