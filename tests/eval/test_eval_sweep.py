"""Threshold sweeps: scores through the decision rules at many thresholds, operating points, miss rate at FA/h.

Success: events from a whole score series equal the streaming engine's in
chunks; with plain thresholding the detected time is exactly the steps at or
above threshold (so it shrinks as the threshold rises); on isolated unimodal
score bumps the number of detections, false alarms and the intersection TP
ratio never rise with the threshold; the miss rate at a false-alarm budget is
the best reachable operating point; a process pool gives the same report as
one process.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sed_runtime.decision import DecisionConfig, DecisionEngine
from sed_runtime.errors import ConfigError
from sed_runtime.eval.labels import LabeledEvent as E
from sed_runtime.eval.runner import EvalSettings, FileJob, SavedScores, build_report, run_evaluation
from sed_runtime.eval.sweep import (
    OperatingPoint, ScoreSeries, ThresholdConfigs, events_from_scores, miss_rate_at, parse_thresholds,
)

LABELS = ("alarm", "cry")
STEP_S = 0.1


def test_events_from_scores_equal_streaming_engine():
    rng = np.random.default_rng(0)
    scores = rng.random((500, 2))
    config = DecisionConfig(on_threshold=0.7, off_threshold=0.4, smoothing="mean", smoothing_ms=300,
                            min_duration_ms=200, merge_gap_ms=200)
    whole = events_from_scores(ScoreSeries(scores, STEP_S, LABELS, offset_s=0.5), config)
    engine = DecisionEngine(config, LABELS, step_s=STEP_S, offset_s=0.5)
    streamed = []
    for start in range(0, 500, 37):
        streamed += engine.process(scores[start:start + 37])
    streamed += engine.flush()
    assert whole == [E.from_event(e) for e in sorted(streamed, key=lambda e: (e.onset_s, e.class_index))]
    assert whole


@pytest.mark.parametrize("seed", range(4))
def test_detected_time_is_the_steps_above_threshold(seed):
    rng = np.random.default_rng(seed)
    scores = rng.random((400, 2)) ** 2
    series = ScoreSeries(scores, STEP_S, LABELS)
    factory = ThresholdConfigs(DecisionConfig(smoothing="none"))
    previous = math.inf
    for t in parse_thresholds("0.05:0.95:0.05"):
        events = events_from_scores(series, factory(t))
        steps = sum(round(e.duration_s / STEP_S) for e in events)
        assert steps == int((scores >= t).sum())
        assert steps <= previous
        previous = steps


def test_threshold_configs_keep_the_hysteresis_gap():
    factory = ThresholdConfigs(DecisionConfig(on_threshold=0.6, off_threshold=0.4, thresholds={"cry": (0.9, 0.8)},
                                              min_duration_ms=100))
    c = factory(0.3)
    assert (c.on_threshold, c.off_threshold, c.thresholds, c.min_duration_ms) == (0.3, pytest.approx(0.1), {}, 100)
    assert factory(0.1).off_threshold == 0.0


def test_parse_thresholds():
    assert parse_thresholds("0.1:0.5:0.1") == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert parse_thresholds("0.7, 0.3,0.5") == [0.3, 0.5, 0.7]
    for bad in ("0.5:0.1:0.1", "a,b", "1.5", "0:1:0"):
        with pytest.raises(ConfigError, match="thresholds"):
            parse_thresholds(bad)


def _bumps(rng, n_steps, centers, peaks, width=8):
    """Isolated unimodal bumps (zero between them), one per center, on a random class each."""
    scores = np.zeros((n_steps, 2))
    for c, p in zip(centers, peaks):
        k = np.arange(-width, width + 1)
        scores[c + k, rng.integers(2) if len(LABELS) > 1 else 0] = p * (1 - np.abs(k) / (width + 1))
    return scores


def _write_jobs(tmp_path, rng):
    jobs = []
    for f in range(4):
        target = f < 2
        centers = np.arange(30, 580, 45)
        peaks = rng.uniform(0.2, 1.0, centers.size)
        scores = _bumps(rng, 620, centers, peaks)
        reference = []
        if target:  # references cover each bump's support, so detections always lie inside them
            for c in centers:
                label = LABELS[int(np.argmax(scores[c]))]
                reference.append(E(round((c - 9) * STEP_S, 3), round((c + 10) * STEP_S, 3), label))
        path = tmp_path / f"f{f}.npz"
        np.savez(path, scores=scores, step_s=STEP_S, labels=np.array(LABELS))
        jobs.append(FileJob(f"f{f}.wav", tuple(reference), 620 * STEP_S, "target" if target else "speech",
                            "synthetic" if target else "none", "test", scores=str(path)))
    return jobs


def test_sweep_monotone_on_unimodal_bumps(tmp_path):
    rng = np.random.default_rng(7)
    jobs = _write_jobs(tmp_path, rng)
    thresholds = parse_thresholds("0.1:0.9:0.1")
    settings = EvalSettings()
    scorer = SavedScores(LABELS, DecisionConfig(smoothing="none"))
    results = run_evaluation(jobs, LABELS, settings, scorer=scorer, thresholds=thresholds)
    rows = build_report(results, LABELS, settings, thresholds, [5.0])["operating_points"]["rows"]
    assert [r["threshold"] for r in rows] == thresholds
    for a, b in zip(rows, rows[1:]):
        assert b["detections"] <= a["detections"]
        assert b["fa_count"] <= a["fa_count"]
        assert b["tpr_intersection"] <= a["tpr_intersection"]
    assert rows[0]["fa_basis"] == "non-target audio"
    assert rows[0]["fa_hours"] == pytest.approx(2 * 62.0 / 3600)
    assert rows[0]["detections"] > rows[-1]["detections"]


def test_process_pool_gives_the_same_report(tmp_path):
    rng = np.random.default_rng(3)
    jobs = _write_jobs(tmp_path, rng)
    thresholds = [0.3, 0.6]
    scorer = SavedScores(LABELS, DecisionConfig(smoothing="none"))
    one = run_evaluation(jobs, LABELS, scorer=scorer, thresholds=thresholds, workers=1)
    two = run_evaluation(jobs, LABELS, scorer=scorer, thresholds=thresholds, workers=2)
    settings = EvalSettings()
    assert build_report(one, LABELS, settings, thresholds, [1.0]) == build_report(two, LABELS, settings, thresholds,
                                                                                  [1.0])
    assert [r.job.name for r in two] == [j.name for j in jobs]


def _point(t, fa, recall):
    return OperatingPoint(t, 0, 0, 1.0, fa, 0.0, 0.0, "non-target audio", recall, math.nan, math.nan, math.nan)


def test_miss_rate_at_takes_the_best_reachable_point():
    points = [_point(0.2, 9.0, 0.95), _point(0.4, 2.0, 0.80), _point(0.5, 1.0, 0.70), _point(0.6, 1.0, 0.70),
              _point(0.8, 0.0, 0.40)]
    assert miss_rate_at(points, 1.0).threshold == 0.6  # tie on miss rate and FA/h: the higher threshold
    assert miss_rate_at(points, 2.5).threshold == 0.4
    assert miss_rate_at(points, 0.0).miss_rate == pytest.approx(0.6)
    assert miss_rate_at(points[:3], 0.5) is None
    assert miss_rate_at([_point(0.5, 0.0, math.nan)], 1.0) is None


def test_sweep_refuses_fixed_detections():
    job = FileJob("a.wav", (), 10.0, detections=())
    with pytest.raises(ConfigError, match="needs scores"):
        run_evaluation([job], LABELS, thresholds=[0.5])


def test_saved_scores_must_share_labels(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, scores=np.zeros((3, 1)), step_s=0.1, labels=np.array(["dog"]))
    with pytest.raises(ConfigError, match="labels"):
        SavedScores(LABELS)(FileJob("x.wav", (), 1.0, scores=str(path)))


def test_det_plot(tmp_path):
    pytest.importorskip("matplotlib")
    from sed_runtime.eval.plot import plot_det

    points = [_point(0.2, 9.0, 0.95), _point(0.5, 1.0, 0.70), _point(0.8, 0.0, 0.40)]
    out = plot_det(points, tmp_path / "det.png", title="test", data_note="synthetic positives; negatives: test")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_bar_draws_to_its_stream():
    import io

    from sed_runtime.eval.runner import Progress

    stream = io.StringIO()
    bar = Progress(3, "files", stream=stream, enabled=True, width=6)
    for _ in range(3):
        bar.update()
    bar.close()
    text = stream.getvalue()
    assert text.endswith("\n") and "[######] 3/3 files" in text
    quiet = io.StringIO()
    Progress(3, stream=quiet).update()  # not a terminal: silent unless forced
    assert quiet.getvalue() == ""
