"""Slow, readable reference of the decision rules (offline: all scores at once).

Written from the rules in sed_runtime/decision/config.py, independently of the
streaming kernel: smooth every class's whole series first, find runs, then
apply refractory, minimum duration and merging in order.
"""

from __future__ import annotations

import math
import statistics


def smooth(series, kind, width, alpha):
    out = []
    for k, x in enumerate(series):
        window = series[max(0, k - width + 1): k + 1]
        if kind == "none":
            out.append(x)
        elif kind == "mean":
            out.append(sum(window) / len(window))
        elif kind == "median":
            out.append(statistics.median(window))
        else:
            out.append(x if k == 0 else out[-1] + alpha * (x - out[-1]))
    return out


def events(scores, labels, step_s, *, on, off, kind="none", width=1, alpha=1.0, min_steps=0, merge_steps=0,
           refractory_steps=0, vote_k=0, vote_n=0):
    """Return [(label, onset_s, offset_s, peak, mean)] sorted by onset then class."""
    n_steps = len(scores)
    result = []
    for c, label in enumerate(labels):
        y = smooth([float(row[c]) for row in scores], kind, width, alpha)
        above = [v >= on for v in y]
        if vote_n:
            start = [sum(above[max(0, k - vote_n + 1): k + 1]) >= vote_k for k in range(n_steps)]
        else:
            start = above
        raw = []  # (onset, offset, values)
        active, onset, last_offset, values = False, 0, -math.inf, []
        for k in range(n_steps):
            if active:
                if y[k] < off:
                    raw.append((onset, k, values))
                    active, last_offset = False, k
                else:
                    values.append(y[k])
            if not active and start[k] and k - last_offset >= refractory_steps:
                active, onset, values = True, k, [y[k]]
        if active:
            raw.append((onset, n_steps, values))
        kept = []
        for onset, offset, vals in raw:
            if offset - onset < min_steps:
                continue
            if kept and onset - kept[-1][1] <= merge_steps:
                kept[-1] = (kept[-1][0], offset, kept[-1][2] + vals)
            else:
                kept.append((onset, offset, vals))
        for onset, offset, vals in kept:
            result.append((label, onset * step_s, offset * step_s, max(vals), sum(vals) / len(vals), c))
    result.sort(key=lambda e: (e[1], e[5]))
    return [e[:5] for e in result]
