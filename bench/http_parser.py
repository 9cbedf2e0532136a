"""Throughput of the HTTP/1.x parser (sans-IO, no detection).

Usage: .venv/bin/python bench/http_parser.py [--seconds N]
Prints requests/s and MB/s for a few traffic shapes fed in 1460-byte segments.
"""

from __future__ import annotations

import argparse
import gzip
import time

from ruleengine.applayer.http1 import HttpParser

SEGMENT = 1460


def _small_pipelined(count: int) -> tuple[bytes, bytes]:
    req = (b"GET /index.php?id=%d&q=a%%20b HTTP/1.1\r\nHost: www.example.com\r\n"
           b"User-Agent: Mozilla/5.0\r\nAccept: */*\r\nCookie: s=1\r\n\r\n")
    resp = (b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html\r\n"
            b"Content-Length: 5\r\n\r\nhello")
    return b"".join(req % i for i in range(count)), resp * count


def _chunked_large(count: int) -> tuple[bytes, bytes]:
    chunk = b"x" * 4000
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(16)) + b"0\r\n\r\n"
    req = b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n"
    resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    return req * count, resp * count


def _gzip_large(count: int) -> tuple[bytes, bytes]:
    body = gzip.compress(b"The quick brown fox jumps over the lazy dog. " * 2000)
    req = b"GET /gz HTTP/1.1\r\nHost: h\r\n\r\n"
    resp = (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
            % len(body) + body)
    return req * count, resp * count


def _run(name: str, maker, seconds: float) -> None:  # type: ignore[no-untyped-def]
    request, response = maker(100)
    total_bytes = total_tx = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        parser = HttpParser()
        for i in range(0, max(len(request), len(response)), SEGMENT):
            if i < len(request):
                parser.feed(True, request[i : i + SEGMENT])
            if i < len(response):
                parser.feed(False, response[i : i + SEGMENT])
        parser.close()
        total_tx += len(parser.transactions)
        total_bytes += len(request) + len(response)
    elapsed = time.perf_counter() - start
    print(f"{name:18s} {total_tx / elapsed:10.0f} tx/s {total_bytes / elapsed / 1e6:8.1f} MB/s")


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--seconds", type=float, default=2.0)
    seconds = args.parse_args().seconds
    _run("small pipelined", _small_pipelined, seconds)
    _run("chunked 64 KB", _chunked_large, seconds)
    _run("gzip 90 KB", _gzip_large, seconds)


if __name__ == "__main__":
    main()
