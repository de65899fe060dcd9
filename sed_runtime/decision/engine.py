"""Per-class smoothing, hysteresis, duration, merge and refractory rules, streamed.

:class:`DecisionEngine` keeps all state in preallocated arrays and runs one
compiled kernel per call over any number of score steps, so feeding the same
scores in any chunking gives the same events, and steady-state calls allocate
nothing but the :class:`Event` objects they return.

Times: step ``k`` of the stream (0-based) is stamped ``offset_s + k * step_s``;
an event's onset is the stamp of its first active step, its offset the stamp
of the first step after it (so a one-step event lasts one step).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sed_runtime._numba import njit
from sed_runtime.decision.config import DecisionConfig, ResolvedDecision
from sed_runtime.errors import ConfigError

__all__ = ["Event", "DecisionEngine"]

_NO_STEP = -(1 << 62)


@dataclass(frozen=True)
class Event:
    """A detected sound event, times in seconds of stream time."""

    label: str
    onset_s: float
    offset_s: float
    peak_score: float
    mean_score: float
    class_index: int

    @property
    def duration_s(self) -> float:
        return self.offset_s - self.onset_s

    def to_dict(self) -> dict:
        return {"label": self.label, "onset": round(self.onset_s, 6), "offset": round(self.offset_s, 6),
                "peak": round(self.peak_score, 6), "mean": round(self.mean_score, 6)}


# state layout (int64 per class)
_ACTIVE, _ONSET, _COUNT, _HAS_PENDING, _P_ONSET, _P_OFFSET, _P_COUNT, _LAST_OFFSET, _HIST_N, _VOTE_SUM = range(10)
# state layout (float64 per class)
_PEAK, _SUM, _P_PEAK, _P_SUM, _EMA = range(5)


@njit
def _emit(c, onset, offset, peak, total, count, ev_int, ev_float, n_events):
    ev_int[n_events, 0] = c
    ev_int[n_events, 1] = onset
    ev_int[n_events, 2] = offset
    ev_float[n_events, 0] = peak
    ev_float[n_events, 1] = total / count if count > 0 else 0.0
    return n_events + 1


@njit
def _close(c, step, st_i, st_f, min_steps, merge_steps, ev_int, ev_float, n_events):
    """End class c's active event at ``step`` (exclusive): drop, merge or hold it as pending."""
    onset = st_i[c, _ONSET]
    st_i[c, _ACTIVE] = 0
    st_i[c, _LAST_OFFSET] = step
    if step - onset < min_steps:
        return n_events
    if st_i[c, _HAS_PENDING] == 1 and onset - st_i[c, _P_OFFSET] <= merge_steps:
        st_i[c, _P_OFFSET] = step
        st_i[c, _P_COUNT] += st_i[c, _COUNT]
        st_f[c, _P_SUM] += st_f[c, _SUM]
        if st_f[c, _PEAK] > st_f[c, _P_PEAK]:
            st_f[c, _P_PEAK] = st_f[c, _PEAK]
        return n_events
    if st_i[c, _HAS_PENDING] == 1:
        n_events = _emit(c, st_i[c, _P_ONSET], st_i[c, _P_OFFSET], st_f[c, _P_PEAK], st_f[c, _P_SUM],
                         st_i[c, _P_COUNT], ev_int, ev_float, n_events)
    st_i[c, _HAS_PENDING] = 1
    st_i[c, _P_ONSET] = onset
    st_i[c, _P_OFFSET] = step
    st_i[c, _P_COUNT] = st_i[c, _COUNT]
    st_f[c, _P_SUM] = st_f[c, _SUM]
    st_f[c, _P_PEAK] = st_f[c, _PEAK]
    return n_events


@njit
def decide(scores, step0, smoothing_code, smoothing_steps, ema_alpha, on, off, enabled, min_steps, merge_steps,
           refractory_steps, vote_k, vote_n, hist, votes, scratch, st_i, st_f, smoothed, ev_int, ev_float):
    """Run the decision rules over ``scores[steps, classes]`` starting at stream step ``step0``.

    Writes smoothed scores to ``smoothed`` and finished events (class, onset
    step, offset step | peak, mean) to ``ev_int``/``ev_float``; returns how
    many events were written.  A held (pending) event is written once no later
    event can merge into it.
    """
    n_steps, n_classes = scores.shape
    width = hist.shape[1]
    n_events = 0
    for k in range(n_steps):
        step = step0 + k
        for c in range(n_classes):
            x = np.float64(scores[k, c])
            # ---- smoothing --------------------------------------------------
            pos = step % width
            hist[c, pos] = x
            if st_i[c, _HIST_N] < width:
                st_i[c, _HIST_N] += 1
            n = st_i[c, _HIST_N]
            if smoothing_code == 0:
                y = x
            elif smoothing_code == 1:
                total = 0.0
                for j in range(n):
                    total += hist[c, (step - j) % width]
                y = total / n
            elif smoothing_code == 2:
                for j in range(n):  # insertion sort of the window
                    v = hist[c, (step - j) % width]
                    i = j
                    while i > 0 and scratch[i - 1] > v:
                        scratch[i] = scratch[i - 1]
                        i -= 1
                    scratch[i] = v
                if n % 2 == 1:
                    y = scratch[n // 2]
                else:
                    y = 0.5 * (scratch[n // 2 - 1] + scratch[n // 2])
            else:
                if step == 0:
                    y = x
                else:
                    y = st_f[c, _EMA] + ema_alpha * (x - st_f[c, _EMA])
                st_f[c, _EMA] = y
            smoothed[k, c] = y
            if not enabled[c]:
                continue
            # ---- on condition (threshold or k-of-n vote) -----------------------
            above = y >= on[c]
            if vote_n > 0:
                vpos = step % vote_n
                st_i[c, _VOTE_SUM] += np.int64(above) - votes[c, vpos]
                votes[c, vpos] = np.int64(above)
                start = st_i[c, _VOTE_SUM] >= vote_k
            else:
                start = above
            # ---- hysteresis ------------------------------------------------------
            if st_i[c, _ACTIVE] == 1:
                if y < off[c]:
                    n_events = _close(c, step, st_i, st_f, min_steps, merge_steps, ev_int, ev_float, n_events)
                else:
                    st_i[c, _COUNT] += 1
                    st_f[c, _SUM] += y
                    if y > st_f[c, _PEAK]:
                        st_f[c, _PEAK] = y
            if st_i[c, _ACTIVE] == 0 and start and step - st_i[c, _LAST_OFFSET] >= refractory_steps:
                st_i[c, _ACTIVE] = 1
                st_i[c, _ONSET] = step
                st_i[c, _COUNT] = 1
                st_f[c, _SUM] = y
                st_f[c, _PEAK] = y
            # ---- release a held event nothing can merge into any more -------------
            if st_i[c, _HAS_PENDING] == 1 and st_i[c, _ACTIVE] == 0 and step + 1 - st_i[c, _P_OFFSET] > merge_steps:
                n_events = _emit(c, st_i[c, _P_ONSET], st_i[c, _P_OFFSET], st_f[c, _P_PEAK], st_f[c, _P_SUM],
                                 st_i[c, _P_COUNT], ev_int, ev_float, n_events)
                st_i[c, _HAS_PENDING] = 0
    return n_events


@njit
def finish(step_end, min_steps, merge_steps, st_i, st_f, ev_int, ev_float):
    """Stream end at step ``step_end``: close open events, release held ones."""
    n_events = 0
    for c in range(st_i.shape[0]):
        if st_i[c, _ACTIVE] == 1:
            n_events = _close(c, step_end, st_i, st_f, min_steps, merge_steps, ev_int, ev_float, n_events)
        if st_i[c, _HAS_PENDING] == 1:
            n_events = _emit(c, st_i[c, _P_ONSET], st_i[c, _P_OFFSET], st_f[c, _P_PEAK], st_f[c, _P_SUM],
                             st_i[c, _P_COUNT], ev_int, ev_float, n_events)
            st_i[c, _HAS_PENDING] = 0
    return n_events


class DecisionEngine:
    """Streaming decision logic for one model's classes.

    ``process(scores)`` takes float scores [steps, classes] in [0, 1] and
    returns the events that finished; ``flush()`` ends the stream.
    ``smoothed`` holds the smoothed scores of the last call.
    """

    def __init__(self, config: DecisionConfig, labels, step_s: float, offset_s: float = 0.0,
                 max_steps_per_call: int = 256) -> None:
        if not isinstance(config, DecisionConfig):
            raise ConfigError(f"config must be a DecisionConfig, got {type(config).__name__}")
        self.config = config
        self.resolved: ResolvedDecision = config.resolve(list(labels), step_s * 1000.0)
        self.labels = tuple(labels)
        self.step_s = float(step_s)
        self.offset_s = float(offset_s)
        r = self.resolved
        n = len(self.labels)
        width = max(r.smoothing_steps, 1)
        self._hist = np.zeros((n, width))
        self._votes = np.zeros((n, max(r.vote_n, 1)), np.int64)
        self._scratch = np.zeros(width)
        self._st_i = np.zeros((n, 10), np.int64)
        self._st_f = np.zeros((n, 5))
        self._allocate(max_steps_per_call)
        self.reset()

    def _allocate(self, steps: int) -> None:
        n = len(self.labels)
        self._smoothed = np.zeros((steps, n))
        # at most one finished and one released event per class and step, plus flush
        self._ev_int = np.zeros((2 * n * (steps + 1), 3), np.int64)
        self._ev_float = np.zeros((2 * n * (steps + 1), 2))

    def reset(self) -> None:
        self._hist[:] = 0.0
        self._votes[:] = 0
        self._st_i[:] = 0
        self._st_f[:] = 0.0
        self._st_i[:, _LAST_OFFSET] = _NO_STEP
        self.steps_seen = 0
        self._last = 0

    @property
    def smoothed(self) -> np.ndarray:
        """Smoothed scores of the last ``process`` call ([steps, classes], a view)."""
        return self._smoothed[: self._last]

    def process(self, scores: np.ndarray) -> list[Event]:
        scores = np.asarray(scores)
        if scores.ndim != 2 or scores.shape[1] != len(self.labels):
            raise ConfigError(f"scores have shape {scores.shape}; expected (steps, {len(self.labels)})")
        steps = scores.shape[0]
        if steps > self._smoothed.shape[0]:
            self._allocate(max(steps, 2 * self._smoothed.shape[0]))
        r = self.resolved
        count = decide(scores, self.steps_seen, r.smoothing_code, r.smoothing_steps, r.ema_alpha, r.on, r.off,
                       r.enabled, r.min_steps, r.merge_steps, r.refractory_steps, r.vote_k, r.vote_n,
                       self._hist, self._votes, self._scratch, self._st_i, self._st_f,
                       self._smoothed, self._ev_int, self._ev_float)
        self.steps_seen += steps
        self._last = steps
        return self._events(count)

    def flush(self) -> list[Event]:
        """End of stream: close every open event at the stream's end and release held ones."""
        r = self.resolved
        count = finish(self.steps_seen, r.min_steps, r.merge_steps, self._st_i, self._st_f,
                       self._ev_int, self._ev_float)
        return self._events(count)

    def _events(self, count: int) -> list[Event]:
        if count == 0:
            return []
        out = []
        for i in range(count):
            c, onset, offset = (int(v) for v in self._ev_int[i])
            out.append(Event(self.labels[c], self.offset_s + onset * self.step_s, self.offset_s + offset * self.step_s,
                             float(self._ev_float[i, 0]), float(self._ev_float[i, 1]), c))
        out.sort(key=lambda e: (e.onset_s, e.class_index))
        return out
