"""The streaming detector: chunking-invariant, live == offline, allocation-free, clear refusals.

Uses the micro_speech int8 keyword model (TFLM example) with the TFLM signal
frontend; its metadata is attached here as a dict (what a stamped model carries).
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from conftest import SHARED
from sed_runtime import load_model
from sed_runtime.detector import Detector
from sed_runtime.errors import AudioFormatError, ModelError
from sed_runtime.frontend.tflm import MICRO_SPEECH_SPEC
from sed_runtime.io.sources import ArraySource, FileSource

MICRO = SHARED / "fixtures" / "micro_speech"
LABELS = ["silence", "unknown", "yes", "no"]


def _model(**decision):
    model = load_model(MICRO / "micro_speech_quantized.tflite")
    model.metadata = {"frontend": MICRO_SPEECH_SPEC.to_dict(), "labels": LABELS, "window_frames": 49,
                      "stride_frames": 5, "decision": {"on_threshold": 0.6, "off_threshold": 0.4, **decision}}
    return model


def _clip() -> np.ndarray:
    parts = []
    for name in ("silence", "yes", "noise", "no", "yes", "silence"):
        x, rate = sf.read(str(MICRO / f"{name}_1000ms.wav"), dtype="int16")
        assert rate == 16000
        parts.append(x)
    return np.concatenate(parts)


def _run(detector: Detector, x: np.ndarray, chunk: int | None):
    events, scores = [], []
    if chunk is None:
        events += detector.process(x)
        scores.append(detector.scores.copy())
    else:
        for pos in range(0, x.shape[0], chunk):
            events += detector.process(x[pos:pos + chunk])
            scores.append(detector.scores.copy())
    events += detector.flush()
    return events, np.concatenate(scores)


def test_detects_the_keywords_in_order():
    events, _ = _run(Detector(_model()), _clip(), None)
    assert [e.label for e in events if e.label in ("yes", "no")] == ["yes", "no", "yes"]
    yes = [e for e in events if e.label == "yes"]
    assert 1.0 <= yes[0].onset_s <= 2.3 and 4.0 <= yes[1].onset_s <= 5.3


@pytest.mark.parametrize("chunk", [1, 160, 320, 1000])
def test_any_chunking_gives_identical_scores_and_events(chunk):
    x = _clip()[:16000 * 3]
    whole_events, whole_scores = _run(Detector(_model()), x, None)
    events, scores = _run(Detector(_model()), x, chunk)
    assert np.array_equal(scores, whole_scores)
    assert events == whole_events


def test_live_path_equals_offline(tmp_path):
    """A file played in real time through the ring buffer (as sed-listen --input does) == offline."""
    x = _clip()[: 16000 * 3]
    path = tmp_path / "clip.wav"
    sf.write(path, x, 16000, subtype="PCM_16")
    offline, _ = _run(Detector(_model()), x, None)
    assert offline
    detector = Detector(_model())
    live = []
    with FileSource(path, 16000, realtime=True) as source:
        for chunk in source.chunks():
            live += detector.process(chunk)
    live += detector.flush()
    assert live == offline
    detector = Detector(_model())
    from_array = []
    with ArraySource(x, 16000, chunk_samples=777) as source:
        for chunk in source.chunks():
            from_array += detector.process(chunk)
    assert from_array + detector.flush() == offline


def test_steady_state_allocates_nothing():
    detector = Detector(_model())
    x = np.zeros(16000 * 40, np.int16)
    rng = np.random.default_rng(0)
    x[:] = rng.normal(0, 300, x.shape[0]).astype(np.int16)
    detector.process(x[:16000 * 2])
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for pos in range(16000 * 2, x.shape[0], 320):
            detector.process(x[pos:pos + 320])
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before <= 2048, f"traced memory grew by {after - before} bytes over {(x.shape[0] - 32000) // 320} hops"


def test_callbacks_and_score_series():
    got = []
    detector = Detector(_model(), on_event=got.append)
    events, scores = _run(detector, _clip(), 1600)
    assert got == events and scores.shape[1] == 4
    assert np.allclose(scores.sum(axis=1), 1.0, atol=0.02)  # softmax output


def test_refusals():
    model = load_model(MICRO / "micro_speech_quantized.tflite")
    with pytest.raises(ModelError, match="stamp it with sed-stamp"):
        Detector(model)
    model = _model()
    model.metadata = {**model.metadata, "window_frames": 48}
    with pytest.raises(ModelError, match="window_frames=48"):
        Detector(model)
    model = _model()
    model.metadata = {**model.metadata, "labels": LABELS[:3]}
    with pytest.raises(ModelError, match="3 labels"):
        Detector(model)
    detector = Detector(_model())
    with pytest.raises(AudioFormatError, match="int16"):
        detector.process(np.zeros(100, np.float32))
