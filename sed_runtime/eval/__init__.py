"""Evaluation: reference annotations, sed_eval-equal detection metrics, false alarms per hour, threshold sweeps.

* :mod:`~sed_runtime.eval.labels` -- event lists (Audacity / sed_eval / DCASE) and manifests;
* :mod:`~sed_runtime.eval.metrics` -- event- and segment-based counts and scores as sed_eval defines them,
  psds_eval's intersection criteria, false alarms per hour with an exact Poisson interval;
* :mod:`~sed_runtime.eval.sweep` -- score series through the decision rules at many thresholds;
* :mod:`~sed_runtime.eval.runner` -- files in parallel, the report; :mod:`~sed_runtime.eval.plot` -- DET plot.
"""

from sed_runtime.eval.labels import (
    AnnotationError, LabeledEvent, ManifestItem, read_event_list, read_event_lists, read_manifest, write_event_list,
    write_event_lists,
)
from sed_runtime.eval.metrics import (
    EventCounts, IntersectionCounts, RateInterval, SegmentCounts, count_events, count_intersections, count_segments,
    event_based_results, intersection_results, poisson_rate_interval, segment_based_results,
)
from sed_runtime.eval.runner import EvalSettings, FileJob, build_report, evaluate_file, run_evaluation
from sed_runtime.eval.sweep import OperatingPoint, ScoreSeries, ThresholdConfigs, events_from_scores, miss_rate_at

__all__ = [
    "AnnotationError", "LabeledEvent", "ManifestItem", "read_event_list", "read_event_lists", "read_manifest",
    "write_event_list", "write_event_lists",
    "EventCounts", "SegmentCounts", "IntersectionCounts", "RateInterval", "count_events", "count_segments",
    "count_intersections", "event_based_results", "segment_based_results", "intersection_results",
    "poisson_rate_interval",
    "EvalSettings", "FileJob", "build_report", "evaluate_file", "run_evaluation",
    "ScoreSeries", "ThresholdConfigs", "OperatingPoint", "events_from_scores", "miss_rate_at",
]
