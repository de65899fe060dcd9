"""DET-style plot of a threshold sweep: miss rate against false alarms per hour (PNG, matplotlib).

matplotlib is an optional extra (``pip install 'sed-runtime[plot]'``):
:func:`matplotlib_available` says whether it is installed, and
:func:`plot_det` raises :class:`PlotUnavailableError` when it is not.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Sequence

from sed_runtime.errors import SedError

__all__ = ["PlotUnavailableError", "matplotlib_available", "plot_det", "INSTALL_HINT"]

INSTALL_HINT = "pip install 'sed-runtime[plot]' (or matplotlib)"
_MISS_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.98, 0.99)
_MISS_CLIP = (0.005, 0.995)


class PlotUnavailableError(SedError, RuntimeError):
    """matplotlib is not installed."""


def matplotlib_available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def _field(row, name):
    return row[name] if isinstance(row, dict) else getattr(row, name)


def plot_det(rows: Sequence, path: str | Path, title: str = "", data_note: str = "") -> Path:
    """Draw miss rate (probit axis) against false alarms per hour (log axis) and save a PNG.

    ``rows``: operating points (``OperatingPoint`` or their ``to_dict()``),
    each with ``threshold``, ``fa_per_hour``, ``miss_rate`` (or ``recall``),
    ``fa_basis``.  Points with no false alarm sit at the left edge, marked.
    ``data_note`` (what the figure rests on) is printed under the axes.
    """
    if not matplotlib_available():
        raise PlotUnavailableError(f"the DET plot needs matplotlib: {INSTALL_HINT}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    points = []
    for row in rows:
        recall = _field(row, "recall")
        if recall is None or math.isnan(recall):
            continue
        points.append((_field(row, "fa_per_hour"), 1.0 - recall, _field(row, "threshold")))
    if not points:
        raise SedError("nothing to plot: no operating point has a recall (no reference events)")
    points.sort(key=lambda p: -p[2])  # traced along the threshold, high to low
    positive = [p[0] for p in points if p[0] > 0]
    floor = min(positive) / 2 if positive else 0.01
    xs = [p[0] if p[0] > 0 else floor for p in points]
    ys = [min(max(p[1], _MISS_CLIP[0]), _MISS_CLIP[1]) for p in points]

    def forward(y):
        import numpy as np
        return norm.ppf(np.clip(y, *_MISS_CLIP))

    def inverse(z):
        return norm.cdf(z)

    basis = _field(rows[0], "fa_basis") if rows else ""
    fig, ax = plt.subplots(figsize=(6.4, 5.2), dpi=100)
    try:
        ax.plot(xs, ys, "-o", markersize=3)
        zero = [(x, y) for x, y, p in zip(xs, ys, points) if p[0] == 0]
        if zero:
            ax.plot([z[0] for z in zero], [z[1] for z in zero], "v", color="tab:red", label="no false alarm")
            ax.legend(loc="upper right", fontsize=8)
        for (x, y, p) in list(zip(xs, ys, points))[:: max(1, len(points) // 8)]:
            ax.annotate(f"{p[2]:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xscale("log")
        ax.set_yscale("function", functions=(forward, inverse))
        ax.set_yticks(list(_MISS_TICKS))
        ax.set_yticklabels([f"{100 * t:g}%" for t in _MISS_TICKS])
        ax.set_ylim(_MISS_CLIP)
        ax.set_xlabel(f"false alarms per hour ({basis})" if basis else "false alarms per hour")
        ax.set_ylabel("miss rate (event-based)")
        ax.grid(True, which="both", alpha=0.3)
        if title:
            ax.set_title(title, fontsize=10)
        if data_note:
            fig.text(0.01, 0.01, data_note, fontsize=6, wrap=True, va="bottom")
            fig.subplots_adjust(bottom=0.2)
        path = Path(path)
        try:
            fig.savefig(path, format="png")
        except OSError as exc:
            raise SedError(f"cannot write the DET plot to {str(path)!r}: {exc.strerror or exc}") from exc
    finally:
        plt.close(fig)
    return path
