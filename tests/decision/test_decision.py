"""Decision rules: edge cases, equality with the readable reference, chunking, no allocation."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from reference import decision_ref
from sed_runtime.decision import DecisionConfig, DecisionEngine, load_decision_overrides
from sed_runtime.errors import ConfigError

STEP = 0.1


def _run(config, scores, labels=("a", "b"), chunks=None):
    engine = DecisionEngine(config, labels, step_s=STEP)
    events = []
    if chunks is None:
        events += engine.process(scores)
    else:
        pos = 0
        i = 0
        while pos < scores.shape[0]:
            size = chunks[i % len(chunks)]
            events += engine.process(scores[pos:pos + size])
            pos += size
            i += 1
    events += engine.flush()
    return events


def _key(event):
    return (event.onset_s, event.class_index)


def _spans(events):
    return [(e.label, round(e.onset_s, 6), round(e.offset_s, 6)) for e in events]


def _series(*runs, n=40, classes=2):
    s = np.zeros((n, classes), np.float32)
    for c, start, stop, value in runs:
        s[start:stop, c] = value
    return s


def test_threshold_touch_counts_as_on_and_off_needs_strictly_below():
    scores = _series((0, 3, 6, 0.5))
    assert _spans(_run(DecisionConfig(on_threshold=0.5), scores)) == [("a", 0.3, 0.6)]
    scores = _series((0, 3, 6, 0.4999))
    assert _run(DecisionConfig(on_threshold=0.5), scores) == []


def test_hysteresis_keeps_event_on_between_thresholds():
    scores = _series((0, 2, 4, 0.9), (0, 4, 9, 0.4), (0, 9, 10, 0.1))
    assert _spans(_run(DecisionConfig(on_threshold=0.8, off_threshold=0.3), scores)) == [("a", 0.2, 0.9)]
    assert _spans(_run(DecisionConfig(on_threshold=0.8, off_threshold=0.5), scores)) == [("a", 0.2, 0.4)]


def test_minimum_duration_drops_short_events():
    scores = _series((0, 2, 4, 0.9), (0, 10, 15, 0.9))
    assert _spans(_run(DecisionConfig(min_duration_ms=300), scores)) == [("a", 1.0, 1.5)]
    assert len(_run(DecisionConfig(min_duration_ms=200), scores)) == 2  # exactly min duration is kept


def test_merge_gap_joins_nearby_events_of_one_class_only():
    scores = _series((0, 2, 4, 0.9), (0, 6, 8, 0.9), (1, 4, 5, 0.9))
    assert _spans(_run(DecisionConfig(merge_gap_ms=200), scores)) == [("a", 0.2, 0.8), ("b", 0.4, 0.5)]
    assert _spans(_run(DecisionConfig(merge_gap_ms=100), scores)) == [("a", 0.2, 0.4), ("b", 0.4, 0.5), ("a", 0.6, 0.8)]


def test_refractory_time_blocks_restart():
    scores = _series((0, 2, 4, 0.9), (0, 5, 8, 0.9))
    assert _spans(_run(DecisionConfig(refractory_ms=200), scores)) == [("a", 0.2, 0.4), ("a", 0.6, 0.8)]
    assert _spans(_run(DecisionConfig(refractory_ms=100), scores)) == [("a", 0.2, 0.4), ("a", 0.5, 0.8)]


def test_event_open_at_stream_end_is_closed_at_the_end():
    scores = _series((0, 35, 40, 0.9))
    engine = DecisionEngine(DecisionConfig(), ("a", "b"), step_s=STEP)
    assert engine.process(scores) == []
    assert _spans(engine.flush()) == [("a", 3.5, 4.0)]
    assert engine.flush() == []


def test_overlapping_classes_and_scores():
    scores = _series((0, 2, 8, 0.7), (1, 4, 6, 0.9))
    events = _run(DecisionConfig(), scores)
    assert _spans(events) == [("a", 0.2, 0.8), ("b", 0.4, 0.6)]
    assert events[0].peak_score == pytest.approx(0.7) and events[1].mean_score == pytest.approx(0.9)


def test_ignored_and_per_label_thresholds():
    scores = _series((0, 2, 4, 0.6), (1, 2, 4, 0.6))
    config = DecisionConfig(on_threshold=0.5, thresholds={"a": (0.7, 0.7)}, ignore=("b",))
    assert _run(config, scores) == []


def test_smoothing_mean_median_ema():
    scores = _series((0, 10, 11, 1.0), (0, 20, 30, 1.0))
    # a one-step spike is removed by a 3-step median, kept by none
    assert len(_run(DecisionConfig(smoothing="none"), scores)) == 2
    assert _spans(_run(DecisionConfig(smoothing="median", smoothing_ms=300), scores)) == [("a", 2.1, 3.1)]
    assert _spans(_run(DecisionConfig(smoothing="mean", smoothing_ms=400), scores)) == [("a", 2.1, 3.2)]
    assert len(_run(DecisionConfig(smoothing="ema", smoothing_ms=500), scores)) == 1


def test_k_of_n_voting():
    s = np.zeros((20, 2), np.float32)
    s[[3, 5, 7, 8], 0] = 0.9
    assert _spans(_run(DecisionConfig(vote_k=3, vote_n=5, off_threshold=0.0), s)) == [("a", 0.7, 2.0)]


REF_CONFIGS = [
    dict(on_threshold=0.5),
    dict(on_threshold=0.6, off_threshold=0.3, smoothing="mean", smoothing_ms=300),
    dict(on_threshold=0.55, off_threshold=0.4, smoothing="median", smoothing_ms=500, min_duration_ms=200),
    dict(on_threshold=0.5, smoothing="ema", smoothing_ms=250, merge_gap_ms=300),
    dict(on_threshold=0.5, off_threshold=0.45, refractory_ms=400, min_duration_ms=100, merge_gap_ms=200),
    dict(on_threshold=0.5, vote_k=2, vote_n=4, off_threshold=0.2),
]


@pytest.mark.parametrize("params", REF_CONFIGS)
def test_equals_readable_reference_and_any_chunking(params):
    rng = np.random.default_rng(len(str(params)))
    labels = ("a", "b", "c")
    # bursts of high scores over noise
    scores = np.clip(rng.normal(0.2, 0.15, (600, 3)), 0, 1).astype(np.float32)
    for _ in range(40):
        c, start = rng.integers(0, 3), rng.integers(0, 580)
        scores[start:start + rng.integers(1, 20), c] = rng.uniform(0.4, 1.0)
    config = DecisionConfig(**params)
    r = config.resolve(labels, STEP * 1000)
    kind = config.smoothing
    expected = decision_ref.events(scores, labels, STEP, on=config.on_threshold, off=config.off_threshold, kind=kind,
                                   width=r.smoothing_steps, alpha=r.ema_alpha, min_steps=r.min_steps,
                                   merge_steps=r.merge_steps, refractory_steps=r.refractory_steps,
                                   vote_k=r.vote_k, vote_n=r.vote_n)
    whole = _run(config, scores, labels)
    got = [(e.label, e.onset_s, e.offset_s, e.peak_score, e.mean_score) for e in whole]
    assert len(got) == len(expected) and len(got) > 5
    for g, x in zip(got, expected):
        assert g[:3] == pytest.approx(x[:3]) and g[3] == pytest.approx(x[3]) and g[4] == pytest.approx(x[4])
    for chunks in ([1], [7], [160], [3, 50, 1, 999]):
        assert sorted(_run(config, scores, labels, chunks), key=_key) == sorted(whole, key=_key)


def test_steady_state_allocates_nothing():
    engine = DecisionEngine(DecisionConfig(smoothing="median", smoothing_ms=300), ("a", "b"), step_s=STEP)
    quiet = np.full((1, 2), 0.1, np.float32)
    engine.process(quiet)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(5000):
            engine.process(quiet)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before <= 1024


@pytest.mark.parametrize("params,message", [
    (dict(on_threshold=1.5), "on_threshold=1.5"),
    (dict(on_threshold=0.5, off_threshold=0.6), "off_threshold=0.6 must not exceed on_threshold=0.5"),
    (dict(smoothing="gauss"), "smoothing='gauss'"),
    (dict(min_duration_ms=-1), "min_duration_ms=-1"),
    (dict(vote_k=3, vote_n=2), "vote_k=3, vote_n=2"),
    (dict(thresholds={"a": (0.3, 0.5)}), "off 0.5 must not exceed on 0.3"),
])
def test_config_errors_name_the_value(params, message):
    with pytest.raises(ConfigError, match=message):
        DecisionConfig(**params)


def test_unknown_label_and_sidecar_files(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown label\(s\) \['x'\]"):
        DecisionConfig(thresholds={"x": (0.5, 0.5)}).resolve(["a"], 100)
    (tmp_path / "d.json").write_text('{"on_threshold": 0.7, "merge_gap_ms": 250}')
    (tmp_path / "d.toml").write_text('[decision]\non_threshold = 0.7\nmerge_gap_ms = 250\n')
    for name in ("d.json", "d.toml"):
        config = DecisionConfig().replace(**load_decision_overrides(tmp_path / name))
        assert config.on_threshold == 0.7 and config.merge_gap_ms == 250
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid json"):
        load_decision_overrides(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match=r"unknown decision parameter\(s\) \['bogus'\]"):
        DecisionConfig.from_dict({"bogus": 1})
