"""The streaming TFLM micro_speech frontend: bit-exact with TFLM, chunking-invariant, allocation-free.

Tier 1 oracles, all run by the ``tflite-micro`` interpreter:

- TFLM's golden 30 ms feature vectors and ``golden.npz`` (micro_speech fixtures);
- ``audio_preprocessor_int8.tflite`` itself, invoked once per 20 ms hop from a
  fresh state, on the fixture clips and on minutes of real recordings (the
  noise estimate and PCAN drift over time; errors would surface late);
- for other parameter sets, the same chain of TFLM signal ops built as one
  model (:class:`reference.tflm_ops.SignalChain`) with our integer tables.
"""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from _compare import assert_equal_ints
from conftest import SHARED
from sed_runtime.cli import features_main
from sed_runtime.errors import AudioFormatError, ConfigError, SedError
from sed_runtime.frontend import (
    MICRO_SPEECH_SPEC,
    CmsisFrontend,
    FrontendSpec,
    TflmFrontend,
    TflmFrontendSpec,
    compute_tflm_features,
    load_spec,
    make_frontend,
    spec_from_dict,
)

runtime = pytest.importorskip("tflite_micro").runtime
from reference.tflm_ops import SignalChain  # noqa: E402  (needs tflite_micro)

MICRO = SHARED / "fixtures" / "micro_speech"
REAL = SHARED / "fixtures" / "real"
CLIPS = ["yes", "no", "noise", "silence"]
HOP, WINDOW = 320, 480


def _wav(path) -> np.ndarray:
    data, rate = sf.read(str(path), dtype="int16")
    assert rate == 16000 and data.ndim == 1
    return data


@pytest.fixture(scope="module")
def golden():
    return np.load(MICRO / "golden.npz")


@pytest.fixture(scope="module")
def preprocessor():
    """The micro_speech preprocessor model run hop by hop from a fresh state (TFLM's own frames)."""
    interpreter = runtime.Interpreter.from_file(str(MICRO / "audio_preprocessor_int8.tflite"))

    def frames(samples: np.ndarray) -> np.ndarray:
        interpreter.reset()
        n = MICRO_SPEECH_SPEC.frames_in(samples.shape[0])
        out = np.empty((n, 40), np.int8)
        for k in range(n):
            interpreter.set_input(samples[k * HOP:k * HOP + WINDOW].reshape(1, WINDOW), 0)
            interpreter.invoke()
            out[k] = interpreter.get_output(0)
        return out

    return frames


@pytest.fixture(scope="module")
def frontend():
    return TflmFrontend(MICRO_SPEECH_SPEC).prepare()


def _assert_frames(ours: np.ndarray, ref: np.ndarray, what: str) -> None:
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} vs {ref.shape}"
    bad = np.nonzero((ours != ref).any(axis=1))[0]
    if bad.size:
        k = int(bad[0])
        assert_equal_ints(ours[k], ref[k], f"{what}: frame {k} ({bad.size} of {ours.shape[0]} frames differ)")


# ---------------------------------------------------------------------------
# Golden vectors and the fixture clips
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("word", ["yes", "no"])
def test_golden_30ms_vectors(frontend, golden, word):
    frontend.reset()
    frames = frontend.process(_wav(MICRO / f"{word}_30ms.wav"))
    assert frames.shape == (1, 40) and frames.dtype == np.int8
    assert_equal_ints(frames[0], golden[f"{word}_30ms_features"], f"{word}_30ms golden features")


@pytest.mark.parametrize("clip", CLIPS)
def test_every_frame_of_fixture_clips(frontend, golden, preprocessor, clip):
    samples = _wav(MICRO / f"{clip}_1000ms.wav")
    frontend.reset()
    ours = frontend.process(samples).copy()
    _assert_frames(ours, golden[f"{clip}_1000ms_features"], f"{clip}_1000ms vs golden.npz")
    _assert_frames(ours, preprocessor(samples), f"{clip}_1000ms vs preprocessor model")


def test_micro_speech_model_scores_from_our_features(frontend, golden):
    """Our int8 frames, fed to micro_speech_quantized.tflite, give TFLM's scores."""
    model = runtime.Interpreter.from_file(str(MICRO / "micro_speech_quantized.tflite"))
    for clip in CLIPS:
        frontend.reset()
        features = frontend.process(_wav(MICRO / f"{clip}_1000ms.wav"))
        model.set_input(features.reshape(1, 49 * 40), 0)
        model.invoke()
        assert_equal_ints(model.get_output(0).reshape(-1), golden[f"{clip}_1000ms_scores"].reshape(-1),
                          f"{clip} scores")


# ---------------------------------------------------------------------------
# Real recordings, hop by hop against the preprocessor model
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["speech_en_11s.wav", "music_28s.wav", "restaurant.wav", "rain.wav", "creek.wav",
                                  "alarm_clock_beeps.wav", "dog_bark.wav", "dialogue_cs_60s.wav",
                                  "airport_pa.wav"])
def test_real_recordings_every_frame(frontend, preprocessor, name):
    samples = _wav(REAL / name)
    frontend.reset()
    _assert_frames(frontend.process(samples).copy(), preprocessor(samples), name)


def test_mixed_5min_every_frame_and_noise_estimate_drift(frontend, preprocessor):
    """254 s (12718 hops) in one stream: noise estimate and PCAN state carried the whole way."""
    samples = _wav(REAL / "mixed_5min.wav")
    frontend.reset()
    ours = frontend.process(samples).copy()
    assert ours.shape[0] == 12718
    _assert_frames(ours, preprocessor(samples), "mixed_5min.wav")
    assert frontend.noise_estimate.any()


def test_clipped_full_scale_frames(frontend, preprocessor):
    """-32768 at the window centre hits MaxAbs16's int16 wrap (a wrong auto-scale shift); mirrored."""
    rng = np.random.default_rng(7)
    samples = rng.integers(-3000, 3000, 16000).astype(np.int16)
    samples[239::HOP] = -32768  # the Hann peak (weight 4096 = 1.0 in q12) of every window
    samples[4000:5000] = np.where(np.arange(1000) % 2, 32767, -32768)
    frontend.reset()
    _assert_frames(frontend.process(samples).copy(), preprocessor(samples), "clipped frames")


# ---------------------------------------------------------------------------
# Other parameter sets: the TFLM signal-op chain as one model
# ---------------------------------------------------------------------------

PARAMS = [
    dict(),
    dict(window_ms=25, stride_ms=10, n_channels=32, lower_band_hz=50.0, upper_band_hz=7000.0, even_smoothing=0.04,
         odd_smoothing=0.0, clamping=True),
    dict(enable_pcan=False, n_channels=64, fft_len=1024, lower_band_hz=20.0, upper_band_hz=7900.0, output="int16"),
    dict(sample_rate_hz=8000, window_ms=32, stride_ms=16, n_channels=20, lower_band_hz=100.0, upper_band_hz=3800.0,
         pcan_strength=0.8, pcan_offset=10.0, pcan_gain_bits=22, log_scale_bits=8, window_scaling_bits=14),
    dict(window_samples=400, hop_samples=160, smoothing_bits=6, spectral_subtraction_bits=12,
         min_signal_remaining=0.2, int8_feature_scale=10.0, int8_feature_range=12.0),
    dict(sample_rate_hz=22050, window_samples=512, hop_samples=256, n_channels=48, upper_band_hz=10000.0,
         filter_bank_scaling_bits=10, filter_bank_alignment=1, filter_bank_channel_block_size=1, output="int16"),
]


def _chain_frames(spec: TflmFrontendSpec, samples: np.ndarray):
    fe = TflmFrontend(spec).prepare()
    chain = SignalChain(fe.stages, spec.window_samples, spec.n_channels)
    return fe.process(samples).copy(), chain.frames(samples, spec.hop_samples)


@pytest.mark.parametrize("params", PARAMS, ids=[f"p{i}" for i in range(len(PARAMS))])
def test_parameter_sets_equal_the_signal_op_chain(params):
    spec = TflmFrontendSpec(**params)
    samples = _wav(REAL / "speech_en_11s.wav")
    ours, ref = _chain_frames(spec, samples)
    assert ours.dtype == spec.output_dtype
    _assert_frames(ours, ref.astype(ours.dtype), f"{spec.describe()} on speech_en_11s")


def test_default_chain_equals_the_preprocessor_model(preprocessor):
    """The op chain used as oracle above is the preprocessor model, for micro_speech's parameters."""
    samples = _wav(REAL / "music_28s.wav")
    _, chain = _chain_frames(MICRO_SPEECH_SPEC, samples)
    _assert_frames(chain.astype(np.int8), preprocessor(samples), "signal-op chain vs preprocessor model")


def _random_params(rng: np.random.Generator) -> dict:
    rate = int(rng.choice([8000, 16000, 22050, 44100]))
    window_ms = float(rng.choice([20, 25, 30, 32, 40]))
    while int(window_ms * rate / 1000) > 2048:
        window_ms /= 2
    upper = float(min(rate / 2 * 0.9, rng.choice([3800.0, 7000.0, 7500.0, 10000.0])))
    gain_bits = int(rng.integers(16, 25))
    return dict(
        sample_rate_hz=rate, window_ms=window_ms, stride_ms=window_ms * float(rng.choice([0.25, 0.5, 2 / 3, 1.0])),
        n_channels=int(rng.choice([16, 20, 32, 40, 64])), lower_band_hz=float(rng.choice([0.0, 20.0, 125.0, 300.0])),
        upper_band_hz=upper, even_smoothing=float(rng.uniform(0, 0.2)), odd_smoothing=float(rng.uniform(0, 0.2)),
        min_signal_remaining=float(rng.uniform(0, 0.3)), clamping=bool(rng.integers(0, 2)),
        smoothing_bits=int(rng.integers(0, 12)), enable_pcan=bool(rng.integers(0, 4)),
        pcan_strength=float(rng.uniform(0.5, 1.0)), pcan_offset=float(rng.uniform(1.0, 150.0)),
        pcan_gain_bits=gain_bits, log_scale_bits=int(rng.integers(4, 9)),
        output=str(rng.choice(["int8", "int16"])),
    )


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(80))
def test_random_parameter_sets_over_minutes_of_audio(seed):
    """Seeded random configurations over 129 s of dialogue + airport ambience (the noise estimate's long run)."""
    rng = np.random.default_rng(seed)
    params = _random_params(rng)
    try:
        spec = TflmFrontendSpec(**params)
        TflmFrontend(spec).prepare()
    except ConfigError as exc:  # e.g. a band past Nyquist for the FFT, or PCAN bits: refused like TFLM
        pytest.skip(f"configuration refused: {exc}")
    samples = np.concatenate([_wav(REAL / "dialogue_cs_60s.wav"), _wav(REAL / "airport_pa.wav")])
    if spec.sample_rate_hz != 16000:
        samples = samples[: int(samples.shape[0] * spec.sample_rate_hz / 16000)]  # same integers, other rate
    ours, ref = _chain_frames(spec, samples)
    _assert_frames(ours, ref.astype(ours.dtype), f"seed {seed}: {spec.describe()}")


# ---------------------------------------------------------------------------
# Streaming invariants
# ---------------------------------------------------------------------------

def _chunked(frontend, samples: np.ndarray, sizes) -> np.ndarray:
    frontend.reset()
    out, pos, i = [], 0, 0
    while pos < samples.shape[0]:
        size = sizes[i % len(sizes)]
        out.append(frontend.process(samples[pos:pos + size]).copy())
        pos += size
        i += 1
    return np.concatenate(out) if out else np.zeros((0, 40), frontend.output_dtype)


@pytest.mark.parametrize("sizes", [[1], [160], [320], [1000], [479, 1, 480, 481], "random", "whole"])
def test_any_chunking_gives_identical_frames(frontend, sizes):
    samples = _wav(REAL / "speech_en_11s.wav")[: 16000 * 4]
    frontend.reset()
    whole = frontend.process(samples).copy()
    if sizes == "whole":
        sizes = [samples.shape[0]]
    elif sizes == "random":
        sizes = list(np.random.default_rng(3).integers(0, 2000, 200))
    _assert_frames(_chunked(frontend, samples, sizes), whole, f"chunks {sizes[:4]}")


def test_reset_restores_the_initial_state(frontend):
    a = _wav(REAL / "restaurant.wav")[:16000 * 3]
    b = _wav(REAL / "speech_en_11s.wav")[:16000 * 3]
    fresh_b = compute_tflm_features(MICRO_SPEECH_SPEC, b)
    frontend.reset()
    frontend.process(a[:12345])  # leaves a partial window and a noise estimate behind
    assert frontend.noise_estimate.any()
    frontend.reset()
    assert not frontend.noise_estimate.any() and frontend.frames_emitted == 0
    _assert_frames(frontend.process(b).copy(), fresh_b, "after reset")


def test_returned_frames_are_a_view_of_int16_log_values(frontend):
    samples = _wav(MICRO / "yes_1000ms.wav")
    frontend.reset()
    frames = frontend.process(samples)
    logs = frontend.last_frames_int16.copy()
    int16_spec = TflmFrontendSpec(output="int16")
    _assert_frames(logs, compute_tflm_features(int16_spec, samples), "int16 output")
    assert frames.base is not None  # a view into the frontend's buffer


def test_no_allocation_in_steady_state(frontend):
    samples = _wav(REAL / "dialogue_cs_60s.wav")
    frontend.reset()
    for k in range(50):  # warm up: JIT, output buffer sized
        frontend.process(samples[k * HOP:(k + 1) * HOP])
    tracemalloc.start()
    try:
        frontend.process(samples[50 * HOP:51 * HOP])
        before = tracemalloc.take_snapshot()
        for k in range(51, 2551):  # 2500 hops, 50 s
            frontend.process(samples[k * HOP:(k + 1) * HOP])
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    growth = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert growth < 4096, f"steady-state processing grew memory by {growth} bytes"


# ---------------------------------------------------------------------------
# Spec, factory, CLI, errors
# ---------------------------------------------------------------------------

def test_micro_speech_spec_values():
    s = MICRO_SPEECH_SPEC
    assert (s.sample_rate_hz, s.window_samples, s.hop_samples, s.fft_len, s.n_channels) == (16000, 480, 320, 512, 40)
    assert (s.correction_bits, s.output, s.bins, s.frame_ms) == (3, "int8", 40, 20.0)


def test_spec_json_round_trip_and_dispatch(tmp_path):
    path = tmp_path / "micro.json"
    path.write_text(json.dumps({"family": "tflm-signal", "window_ms": 30, "stride_ms": 20, "n_channels": 40}))
    spec = load_spec(path)
    assert isinstance(spec, TflmFrontendSpec) and spec == MICRO_SPEECH_SPEC
    assert spec_from_dict(spec.to_dict()) == spec
    assert isinstance(spec_from_dict({"sample_rate_hz": 16000, "window_samples": 512, "hop_samples": 256,
                                      "fft_len": 512, "n_mels": 40}), FrontendSpec)
    assert isinstance(make_frontend(spec), TflmFrontend)
    assert isinstance(make_frontend(FrontendSpec(16000, 512, 256, 512, 40)), CmsisFrontend)


@pytest.mark.parametrize("data,fragments", [
    ({"family": "tflm"}, ["family='tflm'", "expected one of"]),
    ({"family": "tflm-signal", "n_mels": 40}, ["unknown tflm-signal spec key(s) ['n_mels']", "n_channels"]),
    ({"family": "tflm-signal", "window_ms": 30, "window_samples": 400}, ["window_ms=30 gives 480", "window_samples=400"]),
    ({"family": "tflm-signal", "stride_ms": 40}, ["hop_samples=640 must not exceed window_samples=480"]),
    ({"family": "tflm-signal", "fft_len": 500}, ["fft_len=500 must be a power of two"]),
    ({"family": "tflm-signal", "fft_len": 256}, ["window_samples=480 must not exceed fft_len=256"]),
    ({"family": "tflm-signal", "window_ms": 200}, ["window_samples=3200 needs fft_len=4096"]),
    ({"family": "tflm-signal", "upper_band_hz": 9000.0}, ["upper_band_hz=9000.0 must be a number in [0, 8000]"]),
    ({"family": "tflm-signal", "lower_band_hz": 500.0, "upper_band_hz": 400.0}, ["lower_band_hz=500", "<"]),
    ({"family": "tflm-signal", "even_smoothing": 1.5}, ["even_smoothing=1.5 must be a number in [0, 1]"]),
    ({"family": "tflm-signal", "pcan_gain_bits": 14}, ["pcan_gain_bits=14 must exceed correction_bits + 12 = 15"]),
    ({"family": "tflm-signal", "pcan_smoothing_bits": 2}, ["pcan_smoothing_bits=2 must be >= correction_bits=3"]),
    ({"family": "tflm-signal", "output": "float32"}, ["output='float32' is not supported", "int8"]),
    ({"family": "tflm-signal", "clamping": 1}, ["clamping=1 must be true or false"]),
    ({"family": "tflm-signal", "n_channels": 0}, ["n_channels=0 must be an integer in [1, 1024]"]),
    ({"family": "tflm-signal", "sample_rate_hz": 16000.0}, ["sample_rate_hz=16000.0 must be an integer"]),
])
def test_spec_errors_name_the_value_and_the_expectation(data, fragments):
    with pytest.raises(ConfigError) as exc:
        spec_from_dict(data)
    for fragment in fragments:
        assert fragment in str(exc.value), f"{fragment!r} not in {str(exc.value)!r}"


def test_a_band_past_the_fft_is_refused_at_prepare():
    spec = TflmFrontendSpec(fft_len=64, window_samples=64, hop_samples=32, upper_band_hz=8000.0)
    with pytest.raises(ConfigError, match="needs FFT bin 33 but the spectrum has 33 bins"):
        TflmFrontend(spec).prepare()


def test_padded_channels_reading_past_the_spectrum():
    """64-point FFT, band up to 7999 Hz: the last channel's padding reads bin 33, past the spectrum (zero weight)."""
    spec = TflmFrontendSpec(fft_len=64, window_samples=64, hop_samples=32, upper_band_hz=7999.0, n_channels=32)
    fb = TflmFrontend(spec).prepare().stages.filter_bank.tables
    assert int((fb.channel_frequency_starts.astype(int) + fb.channel_widths).max()) == 34
    samples = _wav(REAL / "speech_en_11s.wav")[:16000 * 3]
    ours, ref = _chain_frames(spec, samples)
    _assert_frames(ours, ref.astype(ours.dtype), "fft 64 band to 7999 Hz")


def test_cmsis_spec_refuses_the_tflm_family():
    with pytest.raises(ConfigError, match="not a FrontendSpec family"):
        FrontendSpec(16000, 512, 256, 512, 40, family="tflm-signal")


def test_process_errors(frontend):
    with pytest.raises(ConfigError, match="before prepare"):
        TflmFrontend(MICRO_SPEECH_SPEC).process(np.zeros(10, np.int16))
    with pytest.raises(AudioFormatError, match="1-D int16"):
        frontend.process(np.zeros(10, np.float32))
    with pytest.raises(AudioFormatError, match="1-D int16"):
        frontend.process(np.zeros((2, 10), np.int16))
    with pytest.raises(ConfigError, match="TflmFrontendSpec"):
        TflmFrontend(FrontendSpec(16000, 512, 256, 512, 40))
    with pytest.raises(ConfigError, match="FrontendSpec or a TflmFrontendSpec"):
        make_frontend({"family": "tflm-signal"})


def test_sed_features_runs_the_tflm_family(tmp_path, capsys):
    spec_path = tmp_path / "micro.json"
    spec_path.write_text(json.dumps({"family": "tflm-signal", "output": "int16"}))
    out = tmp_path / "f.npy"
    clip = MICRO / "no_1000ms.wav"
    assert features_main(["--frontend", str(spec_path), str(clip), "--out", str(out)]) == 0
    _assert_frames(np.load(out), compute_tflm_features(TflmFrontendSpec(output="int16"), _wav(clip)), "cli int16")
    assert features_main(["--micro-speech", str(clip), "--out", str(out)]) == 0
    _assert_frames(np.load(out), compute_tflm_features(MICRO_SPEECH_SPEC, _wav(clip)), "cli --micro-speech")
    capsys.readouterr()
    assert features_main(["--demo", "--micro-speech"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[0])
    assert summary["frames"] == 49 and summary["dtype"] == "int8" and summary["frontend"].startswith("tflm-signal")
    assert features_main(["--micro-speech", str(clip), "--target", "dsp"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --target dsp applies to the cmsis-dsp family") and len(err.splitlines()) == 1
    with pytest.raises(SedError):
        features_main(["--micro-speech", str(clip), "--target", "dsp", "--debug"])


def test_stage_override_and_its_validation():
    """A firmware's own integer state can replace the generated one; a mismatched one is refused."""
    from dataclasses import replace

    from sed_runtime.frontend.tflm import TflmStages, WindowStage

    stages = TflmStages.from_spec(MICRO_SPEECH_SPEC)
    samples = _wav(MICRO / "yes_1000ms.wav")
    _assert_frames(compute_tflm_features(MICRO_SPEECH_SPEC, samples, stages),
                   compute_tflm_features(MICRO_SPEECH_SPEC, samples), "explicit stages")
    short = replace(stages, window=WindowStage(stages.window.weights[:400], 12))
    with pytest.raises(ConfigError, match=r"window weights have shape \(400,\); expected \(480,\)"):
        TflmFrontend(MICRO_SPEECH_SPEC, short).prepare()
    other = TflmStages.from_spec(TflmFrontendSpec(n_channels=32))
    with pytest.raises(ConfigError, match="filter bank has 32 channels; expected n_channels=40"):
        TflmFrontend(MICRO_SPEECH_SPEC, other).prepare()
