"""Detection metrics: sed_eval's event- and segment-based scores, false alarms per hour, operating points.

Counting is per file and the counts add up, so files can be evaluated in any
order, in parallel, and summed: :class:`EventCounts`, :class:`SegmentCounts`
and :class:`IntersectionCounts` support ``+``.  Scores are then computed from
the totals exactly as sed_eval computes them from its running totals.

Event-based (sed_eval ``sound_event.EventBasedMetrics``)
    A reference event ``r`` and an estimated event ``e`` *match* when their
    labels are equal and, as enabled, ``|onset_e - onset_r| <= t_collar`` and
    ``|offset_e - offset_r| <= max(t_collar, percentage_of_length *
    (offset_r - onset_r))``.  Matching is one to one: ``"optimal"`` takes the
    maximum matching that sed_eval's Hopcroft-Karp search (the mir_eval /
    Eppstein formulation) finds, visiting events in the same order, so the
    same events are left over; ``"greedy"`` pairs each reference event with
    the first free estimate.  Among the leftovers, a reference and an estimate
    that would match but for the label are a *substitution* (paired greedily,
    references in order).  Overall: ``Ntp`` matches, ``Nsubs``
    substitutions, ``Nfp = Nsys - Ntp - Nsubs`` insertions, ``Nfn = Nref -
    Ntp - Nsubs`` deletions.  Per class: ``Ntp`` is the matching size among
    that class's events, ``Nfp = Nsys - Ntp``, ``Nfn = Nref - Ntp``.

Segment-based (sed_eval ``sound_event.SegmentBasedMetrics``)
    Events become an activity roll of ``time_resolution`` segments (segment
    ``floor(onset / res)`` up to, excluding, ``ceil(offset / res)``); the
    evaluated length is the given file length, or the last offset of either
    list.  Per segment: ``Ntp`` classes active in both, ``Nfp``/``Nfn``
    active in one, ``Ntn`` in neither; ``S = min(Nref, Nsys) - Ntp``,
    ``D = max(0, Nref - Nsys)``, ``I = max(0, Nsys - Nref)``.

Scores from counts (sed_eval ``metric``)
    ``precision = Ntp / Nsys`` and ``recall = Ntp / Nref`` (NaN when the
    denominator is 0), ``F = 2 P R / (P + R)`` (0 when both are 0); rates
    ``x / (Nref + eps)`` and ``sensitivity = Ntp / (Ntp + Nfn + eps)``,
    ``specificity = Ntn / (Ntn + Nfp + eps)``, ``accuracy = (Ntp + Ntn) /
    (all + eps)`` with ``eps = numpy.spacing(1)``, as sed_eval guards its
    divisions (so a class without reference events has a huge insertion rate,
    not an infinite one); class-wise averages are NaN-ignoring means over the
    labels, in label order.

Intersection-based (psds_eval's detection and ground-truth criteria)
    A detection passes the DTC when the fraction of it covered by reference
    events of its class is ``>= dtc``; a reference event is detected when the
    fraction of it covered by DTC-passing detections of its class is
    ``>= gtc``; a detection failing the DTC that lies (partly) inside the
    file is a false positive.  Zero-length events are dropped first, as
    psds_eval drops them.

False alarms per hour
    A false alarm is a detection that matches no reference event of its class
    (event-based criterion: the per-class ``Nsys - Ntp``; intersection
    criterion: a DTC failure).  On non-target audio (no reference events)
    every detection is one.  Rates carry an exact (Garwood) Poisson
    confidence interval.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from sed_runtime.errors import ConfigError

__all__ = [
    "EventCounts", "SegmentCounts", "IntersectionCounts", "RateInterval",
    "count_events", "count_segments", "count_intersections", "false_alarm_count",
    "event_based_results", "segment_based_results", "intersection_results",
    "poisson_rate_interval", "maximum_matching", "sum_counts", "EPS", "MATCHING_KINDS",
]

EPS = float(np.spacing(1))  # sed_eval's guard against division by zero
MATCHING_KINDS = ("optimal", "greedy")
SECONDS_PER_HOUR = 3600.0


def _arrays(events, labels: Sequence[str], what: str):
    """onset, offset, class index arrays of ``events`` (LabeledEvent-like)."""
    index = {label: i for i, label in enumerate(labels)}
    n = len(events)
    onset = np.empty(n)
    offset = np.empty(n)
    cls = np.empty(n, np.int64)
    for k, e in enumerate(events):
        try:
            cls[k] = index[e.label]
        except KeyError:
            raise ConfigError(f"{what} event {k} has label {e.label!r}, which is not among the evaluated labels "
                              f"{list(labels)}") from None
        onset[k] = e.onset_s
        offset[k] = e.offset_s
    return onset, offset, cls


# ---------------------------------------------------------------------------
# event-based
# ---------------------------------------------------------------------------

def maximum_matching(candidates: dict[int, list[int]]) -> dict[int, int]:
    """Maximum bipartite matching of estimates to references: ``{reference: estimate}``.

    ``candidates`` maps each estimate (in the order sed_eval builds its graph)
    to the references it may match, in ascending order.  The search is
    Hopcroft-Karp in the formulation sed_eval takes from mir_eval: a greedy
    first pass, then rounds of a breadth-first layering from the free
    estimates and depth-first augmentation from the free references reached.
    Every maximum matching has the same size; visiting vertices in sed_eval's
    order also leaves the same events unmatched, which decides the
    substitution count.
    """
    match: dict[int, int] = {}  # reference -> estimate
    for est, refs in candidates.items():
        for ref in refs:
            if ref not in match:
                match[ref] = est
                break
    free = object()  # marks an estimate of the first layer
    while True:
        came_from = {est: free for est in candidates}  # estimate -> reference leading to it
        for est in match.values():
            del came_from[est]
        frontier = list(came_from)
        layer_of: dict[int, list[int]] = {}  # reference -> estimates of the previous layer
        free_refs: list[int] = []
        while frontier and not free_refs:
            reached: dict[int, list[int]] = {}
            for est in frontier:
                for ref in candidates[est]:
                    if ref not in layer_of:
                        reached.setdefault(ref, []).append(est)
            frontier = []
            for ref, ests in reached.items():
                layer_of[ref] = ests
                if ref in match:
                    frontier.append(match[ref])
                    came_from[match[ref]] = ref
                else:
                    free_refs.append(ref)
        if not free_refs:
            return match

        def augment(ref: int) -> bool:
            ests = layer_of.pop(ref, None)
            if ests is None:
                return False
            for est in ests:
                if est in came_from:
                    back = came_from.pop(est)
                    if back is free or augment(back):
                        match[ref] = est
                        return True
            return False

        for ref in free_refs:
            augment(ref)


def _candidates(hit: np.ndarray) -> dict[int, list[int]]:
    """sed_eval's graph: estimates in order of first hit scanning references row by row."""
    graph: dict[int, list[int]] = {}
    for ref, est in zip(*np.nonzero(hit)):
        graph.setdefault(int(est), []).append(int(ref))
    return graph


@dataclass
class EventCounts:
    """Event-based counts of one or more files (add them with ``+``)."""

    labels: tuple[str, ...]
    n_ref: int = 0
    n_sys: int = 0
    n_tp: int = 0
    n_subs: int = 0
    class_ref: np.ndarray = None  # per class, int64
    class_sys: np.ndarray = None
    class_tp: np.ndarray = None
    files: int = 0
    evaluated_length_s: float = 0.0  # sum of the files' last reference offsets, as sed_eval reports it

    def __post_init__(self) -> None:
        n = len(self.labels)
        for name in ("class_ref", "class_sys", "class_tp"):
            if getattr(self, name) is None:
                setattr(self, name, np.zeros(n, np.int64))

    @property
    def n_fp(self) -> int:
        return self.n_sys - self.n_tp - self.n_subs

    @property
    def n_fn(self) -> int:
        return self.n_ref - self.n_tp - self.n_subs

    @property
    def class_fp(self) -> np.ndarray:
        return self.class_sys - self.class_tp

    @property
    def class_fn(self) -> np.ndarray:
        return self.class_ref - self.class_tp

    def __add__(self, other: "EventCounts") -> "EventCounts":
        if self.labels != other.labels:
            raise ConfigError(f"cannot add counts over labels {list(self.labels)} and {list(other.labels)}")
        return EventCounts(self.labels, self.n_ref + other.n_ref, self.n_sys + other.n_sys, self.n_tp + other.n_tp,
                           self.n_subs + other.n_subs, self.class_ref + other.class_ref,
                           self.class_sys + other.class_sys, self.class_tp + other.class_tp,
                           self.files + other.files, self.evaluated_length_s + other.evaluated_length_s)


def _match_conditions(ref_on, ref_off, est_on, est_off, t_collar_s, percentage_of_length,
                      evaluate_onset, evaluate_offset) -> np.ndarray:
    """ok[r, e]: timing conditions of sed_eval's validate_onset / validate_offset (labels aside)."""
    ok = np.ones((ref_on.size, est_on.size), bool)
    if evaluate_onset:
        ok &= np.abs(ref_on[:, None] - est_on[None, :]) <= t_collar_s
    if evaluate_offset:
        tolerance = np.maximum(t_collar_s, percentage_of_length * (ref_off - ref_on))
        ok &= np.abs(ref_off[:, None] - est_off[None, :]) <= tolerance[:, None]
    return ok


def count_events(reference, estimated, labels: Sequence[str], t_collar_s: float = 0.2,
                 percentage_of_length: float = 0.5, evaluate_onset: bool = True, evaluate_offset: bool = True,
                 matching: str = "optimal") -> EventCounts:
    """Event-based counts of one file, as sed_eval's ``EventBasedMetrics.evaluate`` adds them.

    ``reference``, ``estimated``: sequences of events with ``onset_s``,
    ``offset_s`` and ``label`` (e.g. :class:`~sed_runtime.eval.labels.LabeledEvent`
    or :class:`~sed_runtime.decision.Event`), labels among ``labels``.
    """
    labels = tuple(labels)
    if not (isinstance(t_collar_s, (int, float)) and t_collar_s > 0):
        raise ConfigError(f"t_collar_s={t_collar_s!r} must be a number of seconds > 0")
    if not 0.0 <= percentage_of_length <= 1.0:
        raise ConfigError(f"percentage_of_length={percentage_of_length!r} must be in [0, 1]")
    if not (evaluate_onset or evaluate_offset):
        raise ConfigError("evaluate_onset and evaluate_offset cannot both be False")
    if matching not in MATCHING_KINDS:
        raise ConfigError(f"matching={matching!r}; expected one of {MATCHING_KINDS}")
    ref_on, ref_off, ref_c = _arrays(reference, labels, "reference")
    est_on, est_off, est_c = _arrays(estimated, labels, "estimated")
    n_ref, n_sys = ref_on.size, est_on.size
    timing = _match_conditions(ref_on, ref_off, est_on, est_off, float(t_collar_s), float(percentage_of_length),
                               evaluate_onset, evaluate_offset)
    hit = timing & (ref_c[:, None] == est_c[None, :])

    ref_ok = np.zeros(n_ref, bool)
    est_ok = np.zeros(n_sys, bool)
    if matching == "optimal":
        for ref, est in maximum_matching(_candidates(hit)).items():
            ref_ok[ref] = True
            est_ok[est] = True
    else:
        for r in range(n_ref):
            for e in range(n_sys):
                if not est_ok[e] and hit[r, e]:
                    ref_ok[r] = est_ok[e] = True
                    break
    n_tp = int(est_ok.sum())

    n_subs = 0
    taken = est_ok.copy()
    for r in np.flatnonzero(~ref_ok):
        for e in np.flatnonzero(~est_ok):
            if not taken[e] and timing[r, e]:
                taken[e] = True
                n_subs += 1
                break

    n = len(labels)
    class_tp = np.zeros(n, np.int64)
    for c in range(n):
        rows = np.flatnonzero(ref_c == c)
        cols = np.flatnonzero(est_c == c)
        if rows.size == 0 or cols.size == 0:
            continue
        sub = hit[np.ix_(rows, cols)]
        if matching == "optimal":
            class_tp[c] = len(maximum_matching(_candidates(sub)))
        else:
            used = np.zeros(cols.size, bool)
            for r in range(rows.size):
                for e in range(cols.size):
                    if not used[e] and sub[r, e]:
                        used[e] = True
                        class_tp[c] += 1
                        break
    return EventCounts(labels, n_ref, n_sys, n_tp, n_subs, np.bincount(ref_c, minlength=n).astype(np.int64),
                       np.bincount(est_c, minlength=n).astype(np.int64), class_tp, 1,
                       float(ref_off.max()) if n_ref else 0.0)


# ---------------------------------------------------------------------------
# segment-based
# ---------------------------------------------------------------------------

@dataclass
class SegmentCounts:
    """Segment-based counts of one or more files (add them with ``+``)."""

    labels: tuple[str, ...]
    overall: dict = field(default_factory=lambda: dict.fromkeys(("Ntp", "Ntn", "Nfp", "Nfn", "Nref", "Nsys",
                                                                 "S", "D", "I"), 0))
    class_wise: np.ndarray = None  # [classes, 6]: Ntp Ntn Nfp Nfn Nref Nsys
    files: int = 0
    evaluated_length_s: float = 0.0

    CLASS_FIELDS = ("Ntp", "Ntn", "Nfp", "Nfn", "Nref", "Nsys")

    def __post_init__(self) -> None:
        if self.class_wise is None:
            self.class_wise = np.zeros((len(self.labels), 6), np.int64)

    def __add__(self, other: "SegmentCounts") -> "SegmentCounts":
        if self.labels != other.labels:
            raise ConfigError(f"cannot add counts over labels {list(self.labels)} and {list(other.labels)}")
        return SegmentCounts(self.labels, {k: self.overall[k] + other.overall[k] for k in self.overall},
                             self.class_wise + other.class_wise, self.files + other.files,
                             self.evaluated_length_s + other.evaluated_length_s)


def _roll(onset, offset, cls, n_classes: int, resolution_s: float) -> np.ndarray:
    length = int(math.ceil(float(offset.max()) / resolution_s)) if offset.size else 0
    roll = np.zeros((length, n_classes), np.int64)
    for on, off, c in zip(onset, offset, cls):
        roll[int(math.floor(on / resolution_s)):int(math.ceil(off / resolution_s)), c] = 1
    return roll


def _fit(roll: np.ndarray, length: int) -> np.ndarray:
    if roll.shape[0] >= length:
        return roll[:length]
    return np.vstack([roll, np.zeros((length - roll.shape[0], roll.shape[1]), roll.dtype)])


def count_segments(reference, estimated, labels: Sequence[str], time_resolution_s: float = 1.0,
                   evaluated_length_s: float | None = None) -> SegmentCounts:
    """Segment-based counts of one file, as sed_eval's ``SegmentBasedMetrics.evaluate`` adds them.

    ``evaluated_length_s``: the file's length (segments past the last event
    count as true negatives; events past it are cut); ``None`` evaluates up to
    the last offset of either list, as sed_eval does by default.
    """
    labels = tuple(labels)
    if not (isinstance(time_resolution_s, (int, float)) and time_resolution_s > 0):
        raise ConfigError(f"time_resolution_s={time_resolution_s!r} must be a number of seconds > 0")
    resolution = float(time_resolution_s)
    n = len(labels)
    ref = _arrays(reference, labels, "reference")
    est = _arrays(estimated, labels, "estimated")
    if evaluated_length_s is None:
        evaluated_length_s = max([0.0] + [float(a[1].max()) for a in (ref, est) if a[1].size])
    segments = int(math.ceil(evaluated_length_s / resolution))
    a = _fit(_roll(*ref, n, resolution), segments)
    s = _fit(_roll(*est, n, resolution), segments)
    tp, tn, fp, fn = (a & s), (1 - a) & (1 - s), s & (1 - a), a & (1 - s)
    n_ref, n_sys, n_tp = a.sum(axis=1), s.sum(axis=1), tp.sum(axis=1)
    overall = {
        "Ntp": int(n_tp.sum()), "Ntn": int(tn.sum()), "Nfp": int(fp.sum()), "Nfn": int(fn.sum()),
        "Nref": int(n_ref.sum()), "Nsys": int(n_sys.sum()),
        "S": int((np.minimum(n_ref, n_sys) - n_tp).sum()),
        "D": int(np.maximum(0, n_ref - n_sys).sum()),
        "I": int(np.maximum(0, n_sys - n_ref).sum()),
    }
    class_wise = np.stack([tp.sum(axis=0), tn.sum(axis=0), fp.sum(axis=0), fn.sum(axis=0),
                           a.sum(axis=0), s.sum(axis=0)], axis=1).astype(np.int64)
    return SegmentCounts(labels, overall, class_wise, 1, float(evaluated_length_s))


# ---------------------------------------------------------------------------
# scores from counts (sed_eval layout)
# ---------------------------------------------------------------------------

def _precision(tp, sys, empty_zero: bool):
    if sys == 0:
        return 0 if empty_zero else math.nan
    return float(tp / float(sys))


def _recall(tp, ref):
    return math.nan if ref == 0 else float(tp / float(ref))


def _f_measure(p, r):
    if p == 0 and r == 0:
        return 0.0
    return float(2.0 * p * r / (p + r))


def _rate(x, ref):
    return float(x / (ref + EPS))


def _accuracy_block(tp, tn, fp, fn):
    sensitivity = float(tp / (tp + fn + EPS))
    specificity = float(tn / (tn + fp + EPS))
    return {"accuracy": float((tp + tn) / (tp + tn + fn + fp + EPS)),
            "balanced_accuracy": float(0.5 * sensitivity + 0.5 * specificity),
            "sensitivity": sensitivity, "specificity": specificity}


def _nanmean(values):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a mean of only NaNs is NaN, as in sed_eval
        return float(np.nanmean(values))


def _class_average(class_wise: dict) -> dict:
    def mean(block, key):
        return _nanmean([class_wise[label][block][key] for label in class_wise])

    out = {"f_measure": {}, "error_rate": {}, "accuracy": {}}
    if class_wise:
        out["f_measure"] = {k: mean("f_measure", k) for k in ("f_measure", "precision", "recall")}
        out["error_rate"] = {k: mean("error_rate", k) for k in ("error_rate", "deletion_rate", "insertion_rate")}
        if all(class_wise[label]["accuracy"] for label in class_wise):
            out["accuracy"] = {k: mean("accuracy", k)
                               for k in ("sensitivity", "specificity", "balanced_accuracy", "accuracy")}
    return out


def _f_block(tp, sys, ref, empty_zero):
    p = _precision(tp, sys, empty_zero)
    r = _recall(tp, ref)
    return {"f_measure": _f_measure(p, r), "precision": p, "recall": r}


def event_based_results(counts: EventCounts, empty_system_output_zero: bool = False) -> dict:
    """Scores in sed_eval's ``EventBasedMetrics.results()`` layout (overall, class_wise, class_wise_average).

    ``empty_system_output_zero``: precision 0 instead of NaN when nothing was
    detected (sed_eval's ``empty_system_output_handling='zero_score'``).
    """
    c = counts
    s_rate, d_rate, i_rate = _rate(c.n_subs, c.n_ref), _rate(c.n_fn, c.n_ref), _rate(c.n_fp, c.n_ref)
    overall = {
        "f_measure": _f_block(c.n_tp, c.n_sys, c.n_ref, empty_system_output_zero),
        "error_rate": {"error_rate": float(s_rate + d_rate + i_rate), "substitution_rate": s_rate,
                       "deletion_rate": d_rate, "insertion_rate": i_rate},
        "accuracy": {},
    }
    class_wise = {}
    for k, label in enumerate(c.labels):
        tp, ref, sys = int(c.class_tp[k]), int(c.class_ref[k]), int(c.class_sys[k])
        d, i = _rate(ref - tp, ref), _rate(sys - tp, ref)
        class_wise[label] = {
            "f_measure": _f_block(tp, sys, ref, empty_system_output_zero),
            "accuracy": {},
            "error_rate": {"error_rate": float(0.0 + d + i), "deletion_rate": d, "insertion_rate": i},
            "count": {"Nref": float(ref), "Nsys": float(sys)},
        }
    return {"overall": overall, "class_wise": class_wise, "class_wise_average": _class_average(class_wise)}


def segment_based_results(counts: SegmentCounts) -> dict:
    """Scores in sed_eval's ``SegmentBasedMetrics.results()`` layout."""
    o = counts.overall
    s_rate, d_rate, i_rate = _rate(o["S"], o["Nref"]), _rate(o["D"], o["Nref"]), _rate(o["I"], o["Nref"])
    overall = {
        "f_measure": _f_block(o["Ntp"], o["Nsys"], o["Nref"], False),
        "error_rate": {"error_rate": float(s_rate + d_rate + i_rate), "substitution_rate": s_rate,
                       "deletion_rate": d_rate, "insertion_rate": i_rate},
        "accuracy": _accuracy_block(o["Ntp"], o["Ntn"], o["Nfp"], o["Nfn"]),
    }
    class_wise = {}
    for k, label in enumerate(counts.labels):
        tp, tn, fp, fn, ref, sys = (int(v) for v in counts.class_wise[k])
        d, i = _rate(fn, ref), _rate(fp, ref)
        class_wise[label] = {
            "f_measure": _f_block(tp, sys, ref, False),
            "accuracy": _accuracy_block(tp, tn, fp, fn),
            "error_rate": {"error_rate": float(0.0 + d + i), "deletion_rate": d, "insertion_rate": i},
            "count": {"Nref": float(ref), "Nsys": float(sys)},
        }
    return {"overall": overall, "class_wise": class_wise, "class_wise_average": _class_average(class_wise)}


# ---------------------------------------------------------------------------
# intersection-based (psds_eval criteria)
# ---------------------------------------------------------------------------

@dataclass
class IntersectionCounts:
    """Per-class counts under psds_eval's DTC/GTC criteria (add them with ``+``).

    ``ref``: reference events (zero-length ones dropped), ``tp``: reference
    events detected (GTC), ``fp``: detections failing the DTC, ``sys``:
    detections (zero-length ones dropped), ``duration_s``: audio length.
    """

    labels: tuple[str, ...]
    ref: np.ndarray = None
    tp: np.ndarray = None
    fp: np.ndarray = None
    sys: np.ndarray = None
    duration_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("ref", "tp", "fp", "sys"):
            if getattr(self, name) is None:
                setattr(self, name, np.zeros(len(self.labels), np.int64))

    def __add__(self, other: "IntersectionCounts") -> "IntersectionCounts":
        if self.labels != other.labels:
            raise ConfigError(f"cannot add counts over labels {list(self.labels)} and {list(other.labels)}")
        return IntersectionCounts(self.labels, self.ref + other.ref, self.tp + other.tp, self.fp + other.fp,
                                  self.sys + other.sys, self.duration_s + other.duration_s)


def count_intersections(reference, estimated, labels: Sequence[str], duration_s: float,
                        dtc: float = 0.5, gtc: float = 0.5) -> IntersectionCounts:
    """Counts of one file under psds_eval's detection / ground-truth intersection criteria."""
    labels = tuple(labels)
    for name, value in (("dtc", dtc), ("gtc", gtc)):
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{name}={value!r} must be in [0, 1]")
    if not duration_s > 0:
        raise ConfigError(f"duration_s={duration_s!r} must be > 0")
    ref_on, ref_off, ref_c = _arrays(reference, labels, "reference")
    est_on, est_off, est_c = _arrays(estimated, labels, "estimated")
    keep = ref_off > ref_on
    ref_on, ref_off, ref_c = ref_on[keep], ref_off[keep], ref_c[keep]
    keep = est_off > est_on
    est_on, est_off, est_c = est_on[keep], est_off[keep], est_c[keep]
    same = (ref_c[:, None] == est_c[None, :]) & (est_on[None, :] < ref_off[:, None]) & \
        (ref_on[:, None] < est_off[None, :])
    overlap = np.minimum(est_off[None, :], ref_off[:, None]) - np.maximum(est_on[None, :], ref_on[:, None])
    inter = np.where(same, overlap, 0.0)
    est_share = inter / (est_off - est_on)[None, :]  # fraction of each detection inside each reference event
    passes = same.any(axis=0) & (est_share.sum(axis=0) >= dtc)
    ref_share = np.where(passes[None, :], inter, 0.0) / (ref_off - ref_on)[:, None]
    detected = (same & passes[None, :]).any(axis=1) & (ref_share.sum(axis=1) >= gtc)
    inside = (est_on < duration_s) & (est_off > 0.0)
    n = len(labels)
    return IntersectionCounts(
        labels, np.bincount(ref_c, minlength=n).astype(np.int64),
        np.bincount(ref_c[detected], minlength=n).astype(np.int64),
        np.bincount(est_c[~passes & inside], minlength=n).astype(np.int64),
        np.bincount(est_c, minlength=n).astype(np.int64), float(duration_s))


def intersection_results(counts: IntersectionCounts) -> dict:
    """Per-class TP ratio, false positives per hour and F-score under the intersection criteria.

    ``tpr`` and ``fp_per_hour`` are psds_eval's per-operating-point ``tpr``
    and ``fpr`` (duration unit: hour); ``f_measure`` is ``2 TP / (2 TP + FN +
    FP)``, as psds_eval's ``compute_macro_f_score`` (which gives NaN instead
    of 0 for a class without a detected reference event).
    """
    hours = counts.duration_s / SECONDS_PER_HOUR
    class_wise = {}
    for k, label in enumerate(counts.labels):
        ref, tp, fp = int(counts.ref[k]), int(counts.tp[k]), int(counts.fp[k])
        denominator = 2 * tp + (ref - tp) + fp
        class_wise[label] = {
            "Nref": ref, "Ntp": tp, "Nfp": fp, "Nsys": int(counts.sys[k]),
            "tpr": tp / ref if ref else math.nan,
            "fp_per_hour": fp * SECONDS_PER_HOUR / counts.duration_s if counts.duration_s > 0 else math.nan,
            "f_measure": 2 * tp / denominator if denominator else math.nan,
        }
    macro = _nanmean([v["f_measure"] for v in class_wise.values()]) if class_wise else math.nan
    return {"class_wise": class_wise, "macro_f_measure": macro, "hours": hours}


# ---------------------------------------------------------------------------
# false alarms
# ---------------------------------------------------------------------------

def false_alarm_count(counts: EventCounts | IntersectionCounts) -> np.ndarray:
    """False alarms per class: detections matching no reference event of their class."""
    if isinstance(counts, EventCounts):
        return counts.class_fp
    return counts.fp


@dataclass(frozen=True)
class RateInterval:
    """``count`` events in ``hours``: the rate per hour and its exact two-sided Poisson interval."""

    count: int
    hours: float
    per_hour: float
    low: float
    high: float
    confidence: float

    def to_dict(self) -> dict:
        return {"count": self.count, "hours": self.hours, "per_hour": self.per_hour,
                "ci_low": self.low, "ci_high": self.high, "confidence": self.confidence}


def poisson_rate_interval(count: int, hours: float, confidence: float = 0.95) -> RateInterval:
    """Rate per hour with Garwood's exact Poisson interval.

    For ``k`` events the mean count lies in ``[chi2.ppf(a/2, 2k) / 2,
    chi2.ppf(1 - a/2, 2k + 2) / 2]`` with ``a = 1 - confidence`` (lower bound
    0 when ``k = 0``); both ends are divided by ``hours``.
    """
    from scipy.stats import chi2

    if isinstance(count, bool) or int(count) != count or count < 0:
        raise ConfigError(f"count={count!r} must be a non-negative integer")
    if not (0.0 < confidence < 1.0):
        raise ConfigError(f"confidence={confidence!r} must be in (0, 1)")
    count = int(count)
    if not hours > 0:
        nan = math.nan
        return RateInterval(count, float(hours), nan, nan, nan, confidence)
    alpha = 1.0 - confidence
    low = 0.0 if count == 0 else float(chi2.ppf(alpha / 2, 2 * count)) / 2
    high = float(chi2.ppf(1 - alpha / 2, 2 * count + 2)) / 2
    return RateInterval(count, float(hours), count / hours, low / hours, high / hours, confidence)


def sum_counts(items: Iterable):
    """Sum of count objects (``None`` for an empty iterable)."""
    total = None
    for item in items:
        total = item if total is None else total + item
    return total
