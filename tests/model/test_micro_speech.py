"""Whole model: TFLM's micro_speech keyword model, bit for bit.

Tier 1 twice over: the fixture's golden scores (produced by tflite-micro), and
the tflite-micro interpreter itself on features of every recording in the
fixtures (the TFLM audio preprocessor model run window by window from a fresh
state, as the golden features were made), one inference per window of 49
frames.  The default run takes a stride of 7 frames over the first 4 s of each
recording; the ``slow`` tier (``SED_SLOW=1``) every window of every recording.
"""

from __future__ import annotations

import numpy as np
import pytest

from _compare import assert_equal_ints
from conftest import SHARED
from model.tflite_builder import tflm_available
from sed_runtime import load_model
from sed_runtime.io.wavfile import read_pcm16

FIXTURES = SHARED / "fixtures" / "micro_speech"
MODEL = FIXTURES / "micro_speech_quantized.tflite"
PREPROCESSOR = FIXTURES / "audio_preprocessor_int8.tflite"
CLIPS = ("yes", "no", "noise", "silence")
WINDOW_SAMPLES, HOP_SAMPLES, FRAMES = 480, 320, 49

pytestmark = pytest.mark.skipif(not MODEL.exists(), reason="micro_speech fixtures not found")


@pytest.fixture(scope="module")
def model():
    return load_model(MODEL)


@pytest.fixture(scope="module")
def golden():
    return np.load(FIXTURES / "golden.npz")


@pytest.mark.parametrize("clip", CLIPS)
def test_golden_scores(model, golden, clip):
    features = golden[f"{clip}_1000ms_features"]
    scores = model.invoke(features)
    assert_equal_ints(scores.reshape(-1), golden[f"{clip}_1000ms_scores"], f"micro_speech {clip}_1000ms")


def test_golden_scores_single_rounding_build_agrees_on_the_winner(golden):
    # No single-rounding TFLM build is available as an oracle; the flag must still give the same decisions.
    model = load_model(MODEL, single_rounding=True)
    for clip in CLIPS:
        scores = model.invoke(golden[f"{clip}_1000ms_features"]).reshape(-1)
        ref = golden[f"{clip}_1000ms_scores"]
        assert int(np.argmax(scores)) == int(np.argmax(ref)), clip
        assert np.max(np.abs(scores.astype(int) - ref.astype(int))) <= 2, clip


def test_io_description(model):
    assert model.inputs[0].shape == (1, 1960) and model.inputs[0].dtype == np.int8
    assert model.outputs[0].shape == (1, 4) and model.outputs[0].dtype == np.int8
    q = model.output_quantization
    assert float(q.scale[0]) == 1 / 256 and int(q.zero_point[0]) == -128
    assert model.graph.metadata.get("min_runtime_version") == "1.5.0"  # raw flatbuffer metadata
    assert dict(model.metadata) == {}  # no sed_runtime metadata in TFLM's example model


def _preprocessor_features(samples: np.ndarray) -> np.ndarray:
    """TFLM's micro_speech audio preprocessor, window by window from a fresh state: int8 [frames, 40]."""
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_file(str(PREPROCESSOR))
    frames = []
    for start in range(0, samples.size - WINDOW_SAMPLES + 1, HOP_SAMPLES):
        interpreter.set_input(samples[start:start + WINDOW_SAMPLES].reshape(1, -1), 0)
        interpreter.invoke()
        frames.append(np.array(interpreter.get_output(0)).reshape(-1))
    return np.stack(frames).astype(np.int8)


def _recordings():
    paths = [FIXTURES / f"{clip}_1000ms.wav" for clip in CLIPS]
    paths += sorted((SHARED / "fixtures" / "real").glob("*.wav"))
    return [p for p in paths if p.exists()]


@pytest.mark.skipif(not tflm_available(), reason="needs tflite-micro")
def test_preprocessor_helper_reproduces_golden_features(golden):
    samples, _ = read_pcm16(FIXTURES / "yes_1000ms.wav", 16000)
    assert_equal_ints(_preprocessor_features(samples)[:FRAMES], golden["yes_1000ms_features"], "yes features")


def _check_recording(model, path, seconds, stride):
    from tflite_micro.python.tflite_micro import runtime

    samples, _ = read_pcm16(path, 16000)
    if seconds is not None:
        samples = samples[:seconds * 16000]
    if samples.size < WINDOW_SAMPLES + (FRAMES - 1) * HOP_SAMPLES:
        samples = np.concatenate([samples, np.zeros(16000, np.int16)])  # dog_bark is shorter than 1 s
    features = _preprocessor_features(samples)
    tflm = runtime.Interpreter.from_file(str(MODEL))
    starts = range(0, features.shape[0] - FRAMES + 1, stride)
    ours = np.empty((len(starts), 4), np.int8)
    ref = np.empty((len(starts), 4), np.int8)
    for i, s in enumerate(starts):
        window = np.ascontiguousarray(features[s:s + FRAMES])
        ours[i] = model.invoke(window).reshape(-1)
        tflm.set_input(window.reshape(1, -1), 0)
        tflm.invoke()
        ref[i] = np.array(tflm.get_output(0)).reshape(-1)
    assert_equal_ints(ours, ref, f"micro_speech on {path.name} ({len(starts)} windows)")
    assert len(starts) > 0


@pytest.mark.skipif(not tflm_available(), reason="needs tflite-micro")
@pytest.mark.parametrize("path", _recordings(), ids=lambda p: p.stem)
def test_every_recording_vs_tflm(model, path):
    _check_recording(model, path, seconds=4, stride=7)


@pytest.mark.slow
@pytest.mark.skipif(not tflm_available(), reason="needs tflite-micro")
@pytest.mark.parametrize("path", _recordings(), ids=lambda p: p.stem)
def test_every_window_of_every_recording_vs_tflm(model, path):
    _check_recording(model, path, seconds=None, stride=1)
