"""Progress bar: drawn only on a terminal, erased at the end."""

from __future__ import annotations

import io

from ruleengine.outputs.progress import Progress


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_tty_means_no_output():
    out = io.StringIO()
    progress = Progress(total=1000, stream=out)
    for pos in range(0, 1000, 10):
        progress.update(pos)
    progress.close()
    assert out.getvalue() == "" and progress.packets == 100


def test_disabled_or_unknown_size_means_no_output():
    for progress in (Progress(total=1000, enabled=False, stream=FakeTty()),
                     Progress(total=0, stream=FakeTty())):
        progress.update(10)
        progress.close()
        assert progress.stream.getvalue() == ""  # type: ignore[attr-defined]


def test_tty_draws_and_erases():
    out = FakeTty()
    progress = Progress(total=2048, stream=out, label="input.pcap")
    progress.update(1024)
    text = out.getvalue()
    assert text.startswith("\r") and "input.pcap [" in text and " 50.0%" in text
    assert "1.0 KiB/2.0 KiB" in text and "1 pkts" in text
    progress.update(1500)  # within 0.1 s: not redrawn
    assert out.getvalue() == text
    progress.close()
    assert out.getvalue().endswith("\r\x1b[K")


def test_render_clamps_past_the_end():
    progress = Progress(total=100, stream=FakeTty())
    progress.position = 150
    assert "100.0%" in progress.render()


def test_closed_stream_stops_drawing_without_raising():
    out = FakeTty()
    progress = Progress(total=100, stream=out)
    out.close()
    progress.update(50)
    progress.close()
    assert not progress.active


def test_eta_once_a_second_has_passed():
    progress = Progress(total=1000, stream=FakeTty())
    progress.position = 250
    start = progress._started
    assert "ETA" not in progress.render(start + 0.5)
    assert progress.render(start + 2.0).endswith("ETA 6s")
