"""A progress bar for pcap runs, on stderr, only when stderr is a terminal.

``update`` is called once per packet, so it only compares a counter and a clock before
returning; the bar is redrawn at most ten times a second.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_REDRAW_SECONDS = 0.1
_BAR_WIDTH = 30


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class Progress:
    """``Progress(total=pcap_size)``; ``update(position)`` per packet; ``close()`` at the end.

    A no-op unless ``enabled`` and the stream is a TTY and ``total`` is known (> 0).
    """

    def __init__(self, total: int, *, enabled: bool = True, stream: TextIO | None = None,
                 label: str = "") -> None:
        self.stream = stream if stream is not None else sys.stderr
        try:
            tty = self.stream.isatty()
        except (AttributeError, ValueError, OSError):
            tty = False
        self.active = bool(enabled and tty and total > 0)
        self.total = max(int(total), 0)
        self.label = label
        self.packets = 0
        self.position = 0
        self._started = time.monotonic()
        self._next_draw = self._started
        self._drawn = False

    def update(self, position: int, packets: int | None = None) -> None:
        """Record the reader's byte offset; ``packets`` defaults to one more than before."""
        self.packets = self.packets + 1 if packets is None else packets
        if not self.active:
            return
        self.position = position
        now = time.monotonic()
        if now >= self._next_draw:
            self._next_draw = now + _REDRAW_SECONDS
            self._draw(now)

    def render(self, now: float | None = None) -> str:
        """The bar's text (without the carriage return)."""
        elapsed = (time.monotonic() if now is None else now) - self._started
        fraction = min(max(self.position / self.total, 0.0), 1.0) if self.total else 0.0
        filled = int(fraction * _BAR_WIDTH)
        bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
        rate = self.packets / elapsed if elapsed > 0 else 0.0
        label = f"{self.label} " if self.label else ""
        eta = ""
        if 0 < fraction < 1 and elapsed >= 1.0:
            eta = f"  ETA {elapsed * (1 - fraction) / fraction:.0f}s"
        return (f"{label}[{bar}] {fraction * 100:5.1f}%  "
                f"{_human_bytes(self.position)}/{_human_bytes(self.total)}  "
                f"{self.packets:,} pkts  {rate:,.0f} pkt/s  {elapsed:.1f}s{eta}")

    def _draw(self, now: float) -> None:
        try:
            self.stream.write("\r" + self.render(now) + "\x1b[K")
            self.stream.flush()
            self._drawn = True
        except (OSError, ValueError):
            self.active = False  # the terminal went away: stop drawing, keep running

    def close(self) -> None:
        """Erase the bar so the summary starts on a clean line."""
        if self.active and self._drawn:
            try:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            except (OSError, ValueError):
                pass
        self.active = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
