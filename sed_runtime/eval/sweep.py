"""Scores to events at many thresholds: operating points, miss rate at a false-alarm rate.

Any detector that produces per-step class scores can be swept: a
:class:`ScoreSeries` (scores ``[steps, classes]``, the step duration, the stamp
of step 0) is turned into events by :class:`sed_runtime.decision.DecisionEngine`
under the :class:`~sed_runtime.decision.DecisionConfig` a *factory* returns for
each threshold (:class:`ThresholdConfigs` by default: the base configuration
with its on threshold moved and its hysteresis gap kept).  Scoring is done once
per file; only the decision rules run again per threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from sed_runtime.decision.config import DecisionConfig
from sed_runtime.decision.engine import DecisionEngine
from sed_runtime.errors import ConfigError
from sed_runtime.eval.labels import AnnotationError, LabeledEvent

__all__ = ["ScoreSeries", "ThresholdConfigs", "events_from_scores", "load_score_series", "parse_thresholds",
           "OperatingPoint", "miss_rate_at"]


@dataclass(frozen=True)
class ScoreSeries:
    """Scores of one recording: ``scores[k, c]`` for class ``labels[c]`` at stamp ``offset_s + k * step_s``."""

    scores: np.ndarray
    step_s: float
    labels: tuple[str, ...]
    offset_s: float = 0.0

    def __post_init__(self) -> None:
        scores = np.asarray(self.scores, dtype=np.float64)
        if scores.ndim != 2 or scores.shape[1] != len(self.labels):
            raise ConfigError(f"scores have shape {scores.shape}; expected (steps, {len(self.labels)}) for labels "
                              f"{list(self.labels)}")
        if not (math.isfinite(self.step_s) and self.step_s > 0):
            raise ConfigError(f"step_s={self.step_s!r} must be a number of seconds > 0")
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "labels", tuple(str(x) for x in self.labels))


def events_from_scores(series: ScoreSeries, config: DecisionConfig) -> list[LabeledEvent]:
    """Run the decision rules over a whole score series (then end the stream); events in time order."""
    engine = DecisionEngine(config, series.labels, step_s=series.step_s, offset_s=series.offset_s,
                            max_steps_per_call=max(1, series.scores.shape[0]))
    events = engine.process(series.scores) if series.scores.shape[0] else []
    events = events + engine.flush()
    return [LabeledEvent.from_event(e) for e in events]


@dataclass(frozen=True)
class ThresholdConfigs:
    """Default factory: ``base`` with ``on_threshold = t`` and the same on-off gap (per-label thresholds dropped)."""

    base: DecisionConfig = field(default_factory=DecisionConfig)

    def __call__(self, threshold: float) -> DecisionConfig:
        gap = self.base.on_threshold - self.base.off_threshold
        data = self.base.to_dict()
        data.update(on_threshold=float(threshold), off_threshold=max(0.0, float(threshold) - gap), thresholds={})
        return DecisionConfig.from_dict(data)


def parse_thresholds(text: str) -> list[float]:
    """``"0.3,0.5,0.7"`` or ``"start:stop:step"`` (stop included when on the grid) to a sorted list."""
    text = text.strip()
    try:
        if ":" in text:
            start, stop, step = (float(x) for x in text.split(":"))
            if step <= 0 or stop < start:
                raise ValueError
            n = int(math.floor((stop - start) / step + 1e-9)) + 1
            values = [round(start + i * step, 10) for i in range(n)]
        else:
            values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"thresholds {text!r}: expected 'a,b,c' or 'start:stop:step' with 0 <= values <= 1") from None
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise ConfigError(f"thresholds {text!r}: expected values in [0, 1]")
    return sorted(set(values))


def load_score_series(path: str | Path) -> ScoreSeries:
    """Read a ``.npz`` holding ``scores`` [steps, classes], ``step_s``, ``labels`` and optionally ``offset_s``."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("scores", "step_s", "labels") if k not in data]
            if missing:
                raise AnnotationError(f"score file {str(path)!r} lacks {missing}; expected arrays scores "
                                      f"[steps, classes], step_s, labels (and optionally offset_s)")
            return ScoreSeries(data["scores"], float(data["step_s"]), tuple(str(x) for x in data["labels"]),
                               float(data["offset_s"]) if "offset_s" in data else 0.0)
    except (OSError, ValueError) as exc:
        raise AnnotationError(f"cannot read score file {str(path)!r}: {exc}") from exc


@dataclass(frozen=True)
class OperatingPoint:
    """Figures at one threshold.

    ``fa_*``: false alarms on the basis named by ``fa_basis`` (non-target
    audio when there is any, else all audio); ``recall``/``precision``/
    ``f_measure``: event-based (sed_eval), all files; ``tpr_intersection``:
    psds_eval's TP ratio over all classes' reference events.
    """

    threshold: float
    detections: int
    fa_count: int
    fa_hours: float
    fa_per_hour: float
    fa_ci_low: float
    fa_ci_high: float
    fa_basis: str
    recall: float
    precision: float
    f_measure: float
    tpr_intersection: float

    @property
    def miss_rate(self) -> float:
        return 1.0 - self.recall

    def to_dict(self) -> dict:
        return {"threshold": self.threshold, "detections": self.detections, "fa_count": self.fa_count,
                "fa_hours": self.fa_hours, "fa_per_hour": self.fa_per_hour, "fa_ci_low": self.fa_ci_low,
                "fa_ci_high": self.fa_ci_high, "fa_basis": self.fa_basis, "recall": self.recall,
                "miss_rate": self.miss_rate, "precision": self.precision, "f_measure": self.f_measure,
                "tpr_intersection": self.tpr_intersection}


def miss_rate_at(points: Sequence[OperatingPoint], max_fa_per_hour: float) -> OperatingPoint | None:
    """The operating point with the lowest miss rate among those with ``fa_per_hour <= max_fa_per_hour``.

    No interpolation between thresholds: the figure is one the detector
    reaches.  Ties go to the lower false-alarm rate, then the higher
    threshold.  ``None`` when no threshold is that quiet or no point has a
    recall (no reference events).
    """
    eligible = [p for p in points if p.fa_per_hour <= max_fa_per_hour and not math.isnan(p.recall)]
    if not eligible:
        return None
    return min(eligible, key=lambda p: (p.miss_rate, p.fa_per_hour, -p.threshold))


def check_factory(factory: Callable[[float], DecisionConfig], thresholds: Sequence[float]) -> None:
    """Fail early (in the main process) when the factory rejects a threshold."""
    for t in thresholds:
        config = factory(t)
        if not isinstance(config, DecisionConfig):
            raise ConfigError(f"the decision factory returned {type(config).__name__} for threshold {t}; "
                              f"expected a DecisionConfig")
