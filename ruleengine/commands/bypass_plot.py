"""The bypass report's plot (matplotlib, optional: ``pip install 'ruleengine[plot]'``).

Top: packet rates over time (what the wire carried, what reached user space, what was
bypassed), one colour per input (e.g. runs with different stream depths). Bottom: bypassed
flows closed per interval. The format follows the file name (.png or .svg).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ruleengine.commands.bypass_report import Report

FORMATS = (".png", ".svg")
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


class PlotError(Exception):
    pass


def plot(reports: Sequence[Report], labels: Sequence[str], out: Path) -> None:
    """Write the plot of ``reports`` to ``out``. Raises PlotError (no matplotlib, bad
    suffix, unwritable file)."""
    if out.suffix.lower() not in FORMATS:
        raise PlotError(f"--plot {out}: the file name must end in .png or .svg")
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display: files only
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotError("--plot needs matplotlib: pip install 'ruleengine[plot]'") from None
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1.3]})
    try:
        _draw(top, bottom, reports, labels)
        fig.suptitle("What bypass saved: packet rates and closed bypassed flows", fontsize=13)
        fig.tight_layout()
        fig.savefig(out, dpi=110)
    except OSError as exc:
        raise PlotError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)


def _draw(top: Any, bottom: Any, reports: Sequence[Report], labels: Sequence[str]) -> None:
    for i, (report, label) in enumerate(zip(reports, labels, strict=True)):
        s = report.series
        if s is None:
            continue
        colour = _COLOURS[i % len(_COLOURS)]
        tag = f" ({label})" if len(reports) > 1 else ""
        top.plot(s.times, s.wire_pps, color=colour, linestyle=":", linewidth=1.2,
                 label=f"wire{tag}")
        top.plot(s.times, s.user_pps, color=colour, linewidth=2.0,
                 label=f"capture rate: reached user space{tag}")
        top.plot(s.times, s.bypassed_pps, color=colour, linestyle="--", linewidth=1.6,
                 label=f"bypassed rate{tag}")
        if s.measured_capture_pps:
            top.plot(s.measured_times, s.measured_capture_pps, color=colour, marker="o",
                     markersize=3, linestyle="none",
                     label=f"capture rate measured (stats events){tag}")
        width = s.step / (len(reports) + 0.5)
        offsets = [t + width * (i + 0.5) for t in s.times]
        bottom.bar(offsets, s.closed_bypassed_flows, width=width, color=colour, alpha=0.8,
                   label=f"closed bypassed flows{tag}")
    top.set_ylabel("packets / s")
    top.grid(True, alpha=0.3)
    peak = max((max(r.series.wire_pps, default=0.0) for r in reports if r.series), default=0.0)
    top.set_ylim(0, max(1.0, peak) * (1.25 + 0.12 * len(reports)))  # room for the legend
    top.legend(loc="upper left", fontsize=8, framealpha=0.9, ncol=min(2, len(reports)))
    step = reports[0].series.step if reports and reports[0].series else 1.0
    bottom.set_ylabel(f"flows / {step:g} s")
    bottom.set_xlabel("seconds since the first packet")
    bottom.grid(True, alpha=0.3)
    bottom.legend(loc="upper right", fontsize=8)
