"""Evaluate a detector over many recordings, in parallel, and say what every figure rests on.

Each file is one job: get its detections (from a file of events already
detected, or by running the decision rules over its scores at the base
configuration and at every swept threshold), count them against its reference
events, return the counts.  Counts add up, so the jobs run in any order in a
process pool and the report is computed once from the totals.

Where scores come from is injected: a *scorer* is a picklable callable taking
a :class:`FileJob` and returning a :class:`~sed_runtime.eval.sweep.ScoreSeries`
(with attributes ``labels`` and ``decision``, the base decision
configuration).  :class:`SavedScores` reads score files; :class:`DetectorScorer`
runs ``sed_runtime.Detector``.
"""

from __future__ import annotations

import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Callable, Sequence, TextIO

from sed_runtime.decision.config import DecisionConfig
from sed_runtime.errors import ConfigError, SedError
from sed_runtime.eval.labels import LabeledEvent
from sed_runtime.eval.metrics import (
    MATCHING_KINDS, EventCounts, IntersectionCounts, SegmentCounts, count_events, count_intersections,
    count_segments, event_based_results, false_alarm_count, intersection_results, poisson_rate_interval,
    segment_based_results, sum_counts,
)
from sed_runtime.eval.sweep import (
    OperatingPoint, ScoreSeries, ThresholdConfigs, check_factory, events_from_scores, load_score_series, miss_rate_at,
)

__all__ = ["EvalSettings", "FileJob", "FileResult", "SavedScores", "DetectorScorer", "Progress",
           "evaluate_file", "run_evaluation", "build_report", "FA_CRITERIA"]

FA_CRITERIA = ("collar", "intersection")


@dataclass(frozen=True)
class EvalSettings:
    """Matching parameters (sed_eval's names and defaults) and report options."""

    t_collar_s: float = 0.2
    percentage_of_length: float = 0.5
    evaluate_onset: bool = True
    evaluate_offset: bool = True
    matching: str = "optimal"
    time_resolution_s: float = 1.0
    dtc: float = 0.5
    gtc: float = 0.5
    confidence: float = 0.95
    fa_criterion: str = "collar"
    empty_system_output_zero: bool = False

    def __post_init__(self) -> None:
        if not self.t_collar_s > 0:
            raise ConfigError(f"t_collar_s={self.t_collar_s!r} must be > 0 seconds")
        if not 0.0 <= self.percentage_of_length <= 1.0:
            raise ConfigError(f"percentage_of_length={self.percentage_of_length!r} must be in [0, 1]")
        if not (self.evaluate_onset or self.evaluate_offset):
            raise ConfigError("evaluate_onset and evaluate_offset cannot both be False")
        if self.matching not in MATCHING_KINDS:
            raise ConfigError(f"matching={self.matching!r}; expected one of {MATCHING_KINDS}")
        if not self.time_resolution_s > 0:
            raise ConfigError(f"time_resolution_s={self.time_resolution_s!r} must be > 0 seconds")
        for name in ("dtc", "gtc"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be in [0, 1]")
        if not 0.0 < self.confidence < 1.0:
            raise ConfigError(f"confidence={self.confidence!r} must be in (0, 1)")
        if self.fa_criterion not in FA_CRITERIA:
            raise ConfigError(f"fa_criterion={self.fa_criterion!r}; expected one of {FA_CRITERIA}")

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class FileJob:
    """One recording to evaluate: its reference events and what kind of data it is."""

    name: str
    reference: tuple[LabeledEvent, ...]
    duration_s: float
    category: str = "unspecified"
    positives: str = "none"
    source: str = "unspecified"
    detections: tuple[LabeledEvent, ...] | None = None  # events already detected (no scorer needed)
    scores: str | None = None  # path of saved scores, for SavedScores

    @property
    def is_target(self) -> bool:
        return len(self.reference) > 0


@dataclass
class Counts:
    """All counts of one file (or a sum of files) at one decision setting."""

    events: EventCounts
    segments: SegmentCounts
    intersections: IntersectionCounts

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(self.events + other.events, self.segments + other.segments,
                      self.intersections + other.intersections)


@dataclass
class FileResult:
    job: FileJob
    counts: Counts
    sweep: list[Counts] = field(default_factory=list)
    detections: list[LabeledEvent] = field(default_factory=list)


def _count(job: FileJob, detections, labels, s: EvalSettings) -> Counts:
    return Counts(
        count_events(job.reference, detections, labels, s.t_collar_s, s.percentage_of_length, s.evaluate_onset,
                     s.evaluate_offset, s.matching),
        count_segments(job.reference, detections, labels, s.time_resolution_s, job.duration_s),
        count_intersections(job.reference, detections, labels, job.duration_s, s.dtc, s.gtc),
    )


def evaluate_file(job: FileJob, labels: Sequence[str], settings: EvalSettings, scorer=None,
                  decision: DecisionConfig | None = None, thresholds: Sequence[float] = (),
                  factory: Callable[[float], DecisionConfig] | None = None) -> FileResult:
    """Count one file: its given detections, or the events the decision rules make from its scores."""
    labels = tuple(labels)
    if job.detections is not None:
        detections = [e for e in job.detections if e.label in labels]
        if thresholds:
            raise ConfigError("a threshold sweep needs scores; detections read from a file have no thresholds")
        return FileResult(job, _count(job, detections, labels, settings), [], detections)
    if scorer is None:
        raise ConfigError(f"{job.name!r}: no detections and no scorer to make them")
    series: ScoreSeries = scorer(job)
    keep = [i for i, label in enumerate(series.labels) if label in labels]
    if len(keep) != len(series.labels):  # classes left out of the evaluation make no events
        series = ScoreSeries(series.scores[:, keep], series.step_s, tuple(series.labels[i] for i in keep),
                             series.offset_s)
    base = decision if decision is not None else getattr(scorer, "decision", None) or DecisionConfig()
    base = _restrict(base, series.labels)
    detections = events_from_scores(series, base)
    result = FileResult(job, _count(job, detections, labels, settings), [], detections)
    factory = factory or ThresholdConfigs(base)
    for t in thresholds:
        config = _restrict(factory(t), series.labels)
        result.sweep.append(_count(job, events_from_scores(series, config), labels, settings))
    return result


def _restrict(config: DecisionConfig, labels) -> DecisionConfig:
    """Drop per-label settings for labels outside the evaluation."""
    thresholds = {k: v for k, v in config.thresholds.items() if k in labels}
    ignore = tuple(k for k in config.ignore if k in labels)
    if len(thresholds) == len(config.thresholds) and len(ignore) == len(config.ignore):
        return config
    data = config.to_dict()
    data.update(thresholds=thresholds, ignore=list(ignore))
    return DecisionConfig.from_dict(data)


# ---------------------------------------------------------------------------
# scorers
# ---------------------------------------------------------------------------

class SavedScores:
    """Scorer reading each job's saved score series (``FileJob.scores``, a ``.npz``)."""

    def __init__(self, labels: Sequence[str], decision: DecisionConfig | None = None) -> None:
        self.labels = tuple(labels)
        self.decision = decision or DecisionConfig()

    def __call__(self, job: FileJob) -> ScoreSeries:
        if job.scores is None:
            raise ConfigError(f"{job.name!r} has no score file")
        series = load_score_series(job.scores)
        if series.labels != self.labels:
            raise ConfigError(f"score file {job.scores!r} has labels {list(series.labels)}; the other files have "
                              f"{list(self.labels)}")
        return series


_DETECTORS: dict = {}  # per process: (model path, target) -> Detector


class DetectorScorer:
    """Scorer running ``sed_runtime.Detector`` on each recording (model loaded once per worker process)."""

    def __init__(self, model_path: str, decision: dict | None = None, target: str | None = None) -> None:
        self.model_path = str(model_path)
        self.target = target
        detector = self._detector()
        self.labels = tuple(detector.labels)
        self.decision = detector.decision.config
        if decision:
            self.decision = self.decision.replace(**decision)

    @staticmethod
    def _import():
        try:
            from sed_runtime import load_model
            from sed_runtime.detector import Detector
        except ImportError as exc:
            raise SedError(
                f"--model needs the detector (sed_runtime.Detector and sed_runtime.load_model), which this "
                f"installation does not provide yet ({exc}); evaluate saved detections with --events or saved "
                f"scores with --scores") from exc
        return load_model, Detector

    def _detector(self):
        key = (self.model_path, self.target)
        if key not in _DETECTORS:
            load_model, Detector = self._import()
            _DETECTORS[key] = Detector(load_model(self.model_path), target=self.target)
        return _DETECTORS[key]

    def __call__(self, job: FileJob) -> ScoreSeries:
        import numpy as np

        from sed_runtime.io.sources import FileSource

        detector = self._detector()
        detector.reset()
        parts = []
        # any format, channel count (mixed) and rate (resampled to the model's), as sed-detect reads it
        with FileSource(job.name, detector.sample_rate_hz, channel="mix", chunk_samples=1 << 16) as source:
            for chunk in source.chunks():
                detector.process(chunk)
                parts.append(detector.scores.astype(np.float64, copy=True))
        detector.flush()
        scores = np.concatenate(parts) if parts else np.zeros((0, len(detector.labels)))
        return ScoreSeries(scores, detector.step_s, tuple(detector.labels), detector.first_stamp_s)


# ---------------------------------------------------------------------------
# progress
# ---------------------------------------------------------------------------

class Progress:
    """A one-line progress bar on a terminal stream (silent when the stream is not a terminal, unless forced)."""

    def __init__(self, total: int, label: str = "files", stream: TextIO | None = None,
                 enabled: bool | None = None, width: int = 30) -> None:
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled if enabled is not None else bool(getattr(self.stream, "isatty", lambda: False)())
        self.width = width
        self.done = 0
        self._start = time.monotonic()
        self._last = 0.0

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and (now - self._last >= 0.1 or self.done >= self.total):
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        fraction = self.done / self.total if self.total else 1.0
        filled = int(round(fraction * self.width))
        elapsed = now - self._start
        eta = elapsed / self.done * (self.total - self.done) if self.done else math.nan
        eta_text = f"eta {eta:5.0f} s" if math.isfinite(eta) and self.done < self.total else f"{elapsed:5.1f} s"
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} "
                          f"{self.label} {eta_text}")
        if self.done >= self.total:
            self.stream.write("\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.done < self.total:
            self.stream.write("\n")
            self.stream.flush()


# ---------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------

def _job(args) -> FileResult:
    job, labels, settings, scorer, decision, thresholds, factory = args
    return evaluate_file(job, labels, settings, scorer, decision, thresholds, factory)


def run_evaluation(jobs: Sequence[FileJob], labels: Sequence[str], settings: EvalSettings | None = None, *,
                   scorer=None, decision: DecisionConfig | None = None, thresholds: Sequence[float] = (),
                   factory: Callable[[float], DecisionConfig] | None = None, workers: int = 1,
                   progress: Progress | None = None) -> list[FileResult]:
    """Evaluate every job; returns one :class:`FileResult` per job, in job order.

    ``workers > 1`` runs the jobs in a process pool (the scorer and factory
    must then be picklable: module-level classes or functions).
    """
    settings = settings or EvalSettings()
    labels = tuple(labels)
    if not labels:
        raise ConfigError("no labels to evaluate: the references and detections name no class")
    if not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers={workers!r} must be an integer >= 1")
    thresholds = list(thresholds)
    if thresholds and any(job.detections is not None for job in jobs):
        raise ConfigError("a threshold sweep needs scores (--scores or --model); detections read from event files "
                          "were made at one fixed threshold")
    if thresholds:
        base = decision if decision is not None else getattr(scorer, "decision", None) or DecisionConfig()
        check_factory(factory or ThresholdConfigs(base), thresholds)
    args = [(job, labels, settings, scorer, decision, thresholds, factory) for job in jobs]
    results: list[FileResult | None] = [None] * len(jobs)
    try:
        if workers == 1 or len(jobs) <= 1:
            for i, a in enumerate(args):
                results[i] = _job(a)
                if progress:
                    progress.update()
        else:
            with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
                futures = {pool.submit(_job, a): i for i, a in enumerate(args)}
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    if progress:
                        progress.update()
    finally:
        if progress:
            progress.close()
    return results


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------

def _hours(results) -> float:
    return sum(r.job.duration_s for r in results) / 3600.0


def _describe(results: Sequence[FileResult]) -> dict:
    """What a figure rests on: positives by kind, negatives by category and source."""
    positives: dict[str, dict] = {}
    negatives: dict[str, dict] = {}
    for r in results:
        j = r.job
        if j.is_target:
            p = positives.setdefault(j.positives, {"files": 0, "events": 0, "hours": 0.0, "sources": set()})
            p["events"] += len(j.reference)
        else:
            p = negatives.setdefault(j.category, {"files": 0, "hours": 0.0, "sources": set()})
        p["files"] += 1
        p["hours"] += j.duration_s / 3600.0
        p["sources"].add(j.source)
    for block in (positives, negatives):
        for p in block.values():
            p["sources"] = sorted(p["sources"])
    parts = [f"{kind} positives: {p['events']} events in {p['files']} files ({p['hours']:.3f} h)"
             for kind, p in sorted(positives.items())]
    parts += [f"negatives {cat}: {p['files']} files, {p['hours']:.3f} h from {', '.join(p['sources'])}"
              for cat, p in sorted(negatives.items())]
    return {"files": len(results), "hours": _hours(results), "positives": positives, "negatives": negatives,
            "summary": "; ".join(parts) if parts else "no files"}


def _subsets(results: Sequence[FileResult]) -> dict[str, list[FileResult]]:
    subsets = {"all files": list(results)}
    kinds = sorted({r.job.positives for r in results if r.job.is_target})
    if len(kinds) > 1:
        for kind in kinds:
            subsets[f"{kind} positives only"] = [r for r in results if r.job.is_target and r.job.positives == kind]
    return subsets


def _fa(results: Sequence[FileResult], labels, settings: EvalSettings, counts_of=lambda r: r.counts) -> dict:
    totals = sum_counts(counts_of(r) for r in results)
    per_class = false_alarm_count(totals.events if settings.fa_criterion == "collar" else totals.intersections)
    hours = _hours(results)
    out = poisson_rate_interval(int(per_class.sum()), hours, settings.confidence).to_dict()
    out["by_class"] = {label: poisson_rate_interval(int(per_class[k]), hours, settings.confidence).to_dict()
                       for k, label in enumerate(labels)}
    return out


def _false_alarms(results, labels, settings) -> dict:
    criterion = ("detections matching no reference event of their class (event-based collar criterion)"
                 if settings.fa_criterion == "collar" else
                 "detections failing the intersection criterion (DTC)")
    non_target = [r for r in results if not r.job.is_target]
    out = {"criterion": criterion, "confidence": settings.confidence}
    if non_target:
        block = _fa(non_target, labels, settings)
        block["data"] = _describe(non_target)["summary"]
        block["by_category"] = {}
        for cat in sorted({r.job.category for r in non_target}):
            group = [r for r in non_target if r.job.category == cat]
            sub = _fa(group, labels, settings)
            sub["sources"] = sorted({r.job.source for r in group})
            sub["data"] = _describe(group)["summary"]
            block["by_category"][cat] = sub
        out["non_target"] = block
    else:
        out["non_target"] = None
    block = _fa(results, labels, settings)
    block["data"] = _describe(results)["summary"]
    out["all_audio"] = block
    return out


def _operating_points(results, labels, settings, thresholds) -> list[OperatingPoint]:
    non_target = [r for r in results if not r.job.is_target]
    basis_results = non_target or list(results)
    basis = "non-target audio" if non_target else "all audio"
    points = []
    for k, t in enumerate(thresholds):
        totals = sum_counts(r.sweep[k] for r in results)
        fa = _fa(basis_results, labels, settings, counts_of=lambda r, k=k: r.sweep[k])
        scores = event_based_results(totals.events)["overall"]["f_measure"]
        n_ref = int(totals.intersections.ref.sum())
        points.append(OperatingPoint(
            threshold=float(t), detections=int(totals.events.n_sys), fa_count=fa["count"], fa_hours=fa["hours"],
            fa_per_hour=fa["per_hour"], fa_ci_low=fa["ci_low"], fa_ci_high=fa["ci_high"], fa_basis=basis,
            recall=scores["recall"], precision=scores["precision"], f_measure=scores["f_measure"],
            tpr_intersection=int(totals.intersections.tp.sum()) / n_ref if n_ref else math.nan))
    return points


def build_report(results: Sequence[FileResult], labels: Sequence[str], settings: EvalSettings,
                 thresholds: Sequence[float] = (), at_fa_per_hour: Sequence[float] = (),
                 detections_from: str = "") -> dict:
    """Everything in one JSON-able mapping; each block carries a ``data`` line saying what it rests on."""
    labels = tuple(labels)
    report: dict = {"labels": list(labels), "settings": settings.to_dict(), "detections_from": detections_from,
                    "data": _describe(results)}
    report["event_based"] = {}
    report["segment_based"] = {}
    report["intersection_based"] = {}
    for name, group in _subsets(results).items():
        totals = sum_counts(r.counts for r in group)
        data = _describe(group)["summary"]
        report["event_based"][name] = {"data": data, "files": totals.events.files,
                                       **event_based_results(totals.events, settings.empty_system_output_zero)}
        report["segment_based"][name] = {"data": data, **segment_based_results(totals.segments)}
        report["intersection_based"][name] = {"data": data, **intersection_results(totals.intersections)}
    report["false_alarms"] = _false_alarms(results, labels, settings)
    if thresholds:
        points = _operating_points(results, labels, settings, thresholds)
        report["operating_points"] = {
            "data": report["data"]["summary"],
            "decision_note": "events from the decision rules at each threshold (base configuration otherwise)",
            "rows": [p.to_dict() for p in points],
            "miss_rate_at": [],
        }
        for target in at_fa_per_hour:
            best = miss_rate_at(points, target)
            report["operating_points"]["miss_rate_at"].append(
                {"max_fa_per_hour": target, **(best.to_dict() if best else {"threshold": None, "miss_rate": None})})
    return report
