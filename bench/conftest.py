"""Benchmark-wide helpers: interleaved, median-based ratio measurement.

Gates compare our code with a peer run in the same process on the same data.
Rounds alternate between the two (ours, peer, ours, peer, ...) so a slow
moment of the shared machine hits both, and the ratio of medians is used.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"


def interleaved_ratio(ours, peer, rounds: int = 15) -> tuple[float, float, float]:
    """Run ``ours()`` and ``peer()`` alternately; return (ratio of medians, median ours s, median peer s)."""
    ours_t, peer_t = [], []
    for r in range(rounds):
        first, second = (ours, peer) if r % 2 == 0 else (peer, ours)
        for fn in (first, second):
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            (ours_t if fn is ours else peer_t).append(dt)
    mo, mp = statistics.median(ours_t), statistics.median(peer_t)
    return mo / mp, mo, mp


GATE_REPORT: list[str] = []


def report_gate(line: str) -> None:
    """Record one gate's measurement for the summary printed at the end of the run."""
    GATE_REPORT.append(line)


def pytest_terminal_summary(terminalreporter):
    if GATE_REPORT:
        terminalreporter.section("ratio gates (ours vs peer, same run)")
        for line in GATE_REPORT:
            terminalreporter.write_line(line)
