"""The streaming CMSIS-DSP frontend: bit-exact with firmware, chunking-invariant, allocation-free.

Tier 1 oracles: Cortex-M3/M4 firmware vectors (``../shared/golden/cmsis-dsp``), the
cmsisdsp wheel's ``arm_mfcc_q15`` (MFCC, generic path) and the wheel's primitives
composed as ``arm_mfcc_q15`` composes them (log-mel, generic path).  The host-built
CMSIS-DSP tier in ``tests/firmware`` covers the dsp path over a wider grid.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from _compare import assert_equal_ints
from conftest import SHARED
from reference import cmsisdsp_logmel, fixedpoint_ref
from sed_runtime.errors import AudioFormatError, ConfigError
from sed_runtime.frontend import CmsisFrontend, FrontendSpec, MfccTablesQ15, compute_features

cmsisdsp = pytest.importorskip("cmsisdsp")
GOLDEN = SHARED / "golden" / "cmsis-dsp"
REAL = SHARED / "fixtures" / "real"
GOLDEN_CONFIGS = ["fft512_mel40_dct13", "fft1024_mel40_dct10", "fft256_mel32_dct12_fs8k"]


def _real(name: str, seconds: float | None = None) -> np.ndarray:
    data, rate = sf.read(str(REAL / name), dtype="int16")
    assert rate == 16000 and data.ndim == 1
    return data if seconds is None else data[: int(seconds * rate)]


def _golden_spec(data, n_dct: int, target: str) -> FrontendSpec:
    n = int(data["fft_len"])
    return FrontendSpec(sample_rate_hz=int(data["fs"]), window_samples=n, hop_samples=n, fft_len=n,
                        n_mels=int(data["n_mels"]), lower_hz=float(data["fmin"]), upper_hz=float(data["fmax"]),
                        n_dct=n_dct, target=target)


# ---------------------------------------------------------------------------
# Firmware vectors: generic == Cortex-M3, dsp == Cortex-M4, every frame
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("config", GOLDEN_CONFIGS)
@pytest.mark.parametrize("core,target", [("m3", "generic"), ("m4", "dsp")])
@pytest.mark.parametrize("kind", ["logmel", "mfcc"])
@pytest.mark.parametrize("table_source", ["generated", "firmware_arrays"])
def test_frames_equal_cortex_m_firmware(config, core, target, kind, table_source):
    data = np.load(GOLDEN / f"{core}_{kind}_q15_{config}.npz")
    n_dct = int(data["n_dct"]) if kind == "mfcc" else 0
    spec = _golden_spec(data, n_dct, target)
    tables = None
    if table_source == "firmware_arrays":
        tables = MfccTablesQ15.from_arrays(data["window"], data["filter_pos"], data["filter_len"],
                                           data["filter_coefs"], data["dct"] if n_dct else data["dct"][:0])
    frames = compute_features(spec, data["input"].ravel(), tables)
    assert frames.shape == data["output"].shape
    for k in range(frames.shape[0]):
        assert_equal_ints(frames[k], data["output"][k], f"{core} {kind} {config} frame {k} ({data['frame_desc'][k]})")


def test_dsp_target_differs_from_generic_on_speech():
    """The two targets are different arithmetic, not one path under two names."""
    data = np.load(GOLDEN / "m4_logmel_q15_fft512_mel40_dct13.npz")
    generic = compute_features(_golden_spec(data, 0, "generic"), data["input"].ravel())
    dsp = compute_features(_golden_spec(data, 0, "dsp"), data["input"].ravel())
    assert (generic != dsp).any(axis=1).sum() >= 10


# ---------------------------------------------------------------------------
# cmsisdsp wheel (generic path): many configurations and signals
# ---------------------------------------------------------------------------

WHEEL_CONFIGS = [
    # sample_rate_hz, fft_len, window, hop, n_mels, lower_hz, upper_hz, n_dct
    (16000, 512, 512, 256, 40, 20.0, 8000.0, 13),
    (16000, 256, 256, 128, 32, 0.0, 8000.0, 12),
    (16000, 1024, 1024, 320, 64, 50.0, 7600.0, 20),
    (8000, 256, 256, 80, 23, 0.0, 4000.0, 10),
    (44100, 2048, 2048, 1024, 80, 30.0, 16000.0, 13),
    (16000, 128, 128, 64, 20, 100.0, 4000.0, 10),
    (22050, 4096, 4096, 2048, 128, 0.0, 11025.0, 13),
    (16000, 64, 64, 32, 10, 300.0, 8000.0, 8),
    (16000, 32, 32, 16, 5, 1000.0, 8000.0, 5),
]


def _signals(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    t = np.arange(n)
    return {
        "silence": np.zeros(n, np.int16),
        "noise_-70dB": np.clip(rng.normal(0, 10, n), -32768, 32767).astype(np.int16),
        "noise_-30dB": np.clip(rng.normal(0, 1000, n), -32768, 32767).astype(np.int16),
        "clipped": np.clip(rng.normal(0, 40000, n), -32768, 32767).astype(np.int16),
        "clipped_tone": np.clip(1.5 * 32767 * np.sin(2 * np.pi * 0.031 * t), -32768, 32767).astype(np.int16),
        "impulses": (np.arange(n) % 997 == 0).astype(np.int16),
        "speech": np.resize(_real("speech_en_11s.wav"), n),
        "music": np.resize(_real("music_28s.wav", 6.0), n),
    }


@pytest.mark.parametrize("config", WHEEL_CONFIGS, ids=lambda c: f"fs{c[0]}_fft{c[1]}_mel{c[4]}")
def test_mfcc_and_logmel_equal_cmsisdsp_wheel(config):
    rate, fft_len, window, hop, n_mels, lo, hi, n_dct = config
    rng = np.random.default_rng(fft_len * 7 + n_mels)
    n_frames = 12
    n = window + (n_frames - 1) * hop
    mfcc_spec = FrontendSpec(sample_rate_hz=rate, window_samples=window, hop_samples=hop, fft_len=fft_len,
                             n_mels=n_mels, lower_hz=lo, upper_hz=hi, n_dct=n_dct)
    logmel_spec = FrontendSpec(**{**mfcc_spec.to_dict(), "n_dct": 0})
    tables = CmsisFrontend(mfcc_spec).prepare().tables
    for name, x in _signals(n, rng).items():
        mfcc = compute_features(mfcc_spec, x)
        logmel = compute_features(logmel_spec, x)
        assert mfcc.shape == (n_frames, n_dct) and logmel.shape == (n_frames, n_mels)
        for k in range(n_frames):
            frame = x[k * hop:k * hop + window]
            what = f"fs={rate} fft={fft_len} mels={n_mels} {name} frame {k}"
            assert_equal_ints(mfcc[k], cmsisdsp_logmel.mfcc_q15(frame, tables, fft_len), f"mfcc {what}")
            ref = cmsisdsp_logmel.logmel_q15(frame, tables.window_q15, tables.filter_pos, tables.filter_len,
                                             tables.filter_coefs_q15)
            assert_equal_ints(logmel[k], ref, f"logmel {what}")


@pytest.mark.parametrize("name", ["dialogue_cs_60s.wav", "airport_pa.wav", "rain.wav", "dog_bark.wav",
                                  "alarm_clock_beeps.wav", "restaurant.wav", "creek.wav"])
def test_real_recordings_equal_cmsisdsp_wheel(name):
    """Real audio, 16 kHz, 32 ms window, 16 ms hop: MFCC against the wheel's arm_mfcc_q15, frame by frame."""
    x = _real(name, 4.0)
    spec = FrontendSpec(sample_rate_hz=16000, window_samples=512, hop_samples=256, fft_len=512, n_mels=40,
                        lower_hz=20.0, upper_hz=8000.0, n_dct=13)
    frontend = CmsisFrontend(spec).prepare()
    frames = frontend.process(x).copy()
    assert frames.shape[0] == spec.frames_in(x.shape[0])
    for k in range(frames.shape[0]):
        ref = cmsisdsp_logmel.mfcc_q15(x[k * 256:k * 256 + 512], frontend.tables, 512)
        assert_equal_ints(frames[k], ref, f"{name} frame {k}")


def test_short_window_is_zero_padded_like_firmware():
    """window_samples < fft_len: firmware copies the window, zero-fills the rest, Hann over the window only."""
    spec = FrontendSpec(sample_rate_hz=16000, window_samples=400, hop_samples=160, fft_len=512, n_mels=40,
                        lower_hz=20.0, upper_hz=8000.0, n_dct=13)
    frontend = CmsisFrontend(spec).prepare()
    window = frontend.tables.window_q15
    assert (window[400:] == 0).all() and window[200] == 32767 and window[0] == 0
    x = _real("speech_en_11s.wav", 1.0)
    frames = frontend.process(x).copy()
    for k in range(frames.shape[0]):
        padded = np.zeros(512, np.int16)
        padded[:400] = x[k * 160:k * 160 + 400]
        assert_equal_ints(frames[k], cmsisdsp_logmel.mfcc_q15(padded, frontend.tables, 512), f"frame {k}")


# ---------------------------------------------------------------------------
# Streaming invariants
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["generic", "dsp"])
@pytest.mark.parametrize("quantized", [False, True])
def test_any_chunking_gives_identical_frames(target, quantized):
    spec = FrontendSpec(sample_rate_hz=16000, window_samples=480, hop_samples=320, fft_len=512, n_mels=40,
                        lower_hz=20.0, upper_hz=7600.0, target=target,
                        quantization={"scale": 0.05, "zero_point": -20} if quantized else None)
    x = _real("mixed_5min.wav", 12.0)
    reference = compute_features(spec, x)
    assert reference.shape[0] == spec.frames_in(x.shape[0])
    rng = np.random.default_rng(3)
    chunkings = {"1": [1] * 4000, "160": [160], "320": [320], "1000": [1000], "random": list(rng.integers(1, 5000, 64))}
    for name, sizes in chunkings.items():
        frontend = CmsisFrontend(spec).prepare()
        pieces, pos, i = [], 0, 0
        while pos < x.shape[0]:
            size = int(sizes[i % len(sizes)])
            pieces.append(frontend.process(x[pos:pos + size]).copy())
            pos += size
            i += 1
        streamed = np.concatenate(pieces)
        assert_equal_ints(streamed, reference, f"chunks of {name}")
        assert frontend.frames_emitted == reference.shape[0]


def test_reset_starts_a_new_stream():
    spec = FrontendSpec(sample_rate_hz=16000, window_samples=512, hop_samples=256, fft_len=512, n_mels=40)
    x = _real("speech_en_11s.wav", 2.0)
    frontend = CmsisFrontend(spec).prepare()
    first = frontend.process(x).copy()
    frontend.process(x[:777])  # leave a partial window buffered
    frontend.reset()
    assert_equal_ints(frontend.process(x), first, "after reset")


def test_steady_state_allocates_nothing():
    """Thousands of hops after prepare(): traced memory does not grow, no per-call temporaries beyond views."""
    spec = FrontendSpec(sample_rate_hz=16000, window_samples=480, hop_samples=160, fft_len=512, n_mels=40,
                        n_dct=13, target="dsp", quantization={"scale": 0.1, "zero_point": 0})
    x = _real("mixed_5min.wav", 40.0)  # 4000 hops
    frontend = CmsisFrontend(spec).prepare()
    frontend.process(x[:16000])  # compile, fill buffers
    frontend.reset()
    chunk = 160
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        frames = 0
        for pos in range(0, x.shape[0] - chunk + 1, chunk):
            frames += frontend.process(x[pos:pos + chunk]).shape[0]
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert frames >= 3990
    assert after - before <= 1024, f"traced memory grew by {after - before} bytes over {frames} hops"
    assert peak - before <= 4096, f"a call allocated {peak - before} bytes at its peak"


# ---------------------------------------------------------------------------
# int8 quantization of the features, in integer arithmetic
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("scale,zero_point", [(0.05, -20), (1 / 128, 0), (0.3, 100), (2.0, -128), (0.0001, 5)])
def test_int8_quantization_is_tflm_requantization(scale, zero_point):
    base = FrontendSpec(sample_rate_hz=16000, window_samples=512, hop_samples=256, fft_len=512, n_mels=40)
    spec = FrontendSpec(**{**base.to_dict(), "quantization": {"scale": scale, "zero_point": zero_point}})
    x = _real("dialogue_cs_60s.wav", 3.0)
    q15 = compute_features(base, x)
    s8 = compute_features(spec, x)
    assert s8.dtype == np.int8 and s8.shape == q15.shape
    multiplier, shift = fixedpoint_ref.quantize_multiplier_ref(1.0 / (128.0 * scale))
    expected = np.array([[max(-128, min(127, fixedpoint_ref.multiply_by_quantized_multiplier_ref(int(v), multiplier, shift)
                                        + zero_point)) for v in row] for row in q15])
    assert_equal_ints(s8, expected, f"int8 scale={scale} zp={zero_point}")
    # and it is the affine quantization it claims to be (within one step)
    ideal = np.clip(np.round(q15 / 128.0 / scale) + zero_point, -128, 127)
    assert np.abs(s8.astype(int) - ideal).max() <= 1


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

def test_process_rejects_bad_audio_and_unprepared_use():
    spec = FrontendSpec(sample_rate_hz=16000, window_samples=512, hop_samples=256, fft_len=512, n_mels=40)
    frontend = CmsisFrontend(spec)
    with pytest.raises(ConfigError, match="before prepare"):
        frontend.process(np.zeros(10, np.int16))
    frontend.prepare()
    with pytest.raises(AudioFormatError, match="dtype=float32"):
        frontend.process(np.zeros(10, np.float32))
    with pytest.raises(AudioFormatError, match="ndim=2"):
        frontend.process(np.zeros((10, 2), np.int16))


@pytest.mark.parametrize("changes,message", [
    ({"fft_len": 500}, "fft_len=500"),
    ({"window_samples": 1024}, "window_samples=1024 must not exceed fft_len=512"),
    ({"hop_samples": 600}, "hop_samples=600 must not exceed window_samples=512"),
    ({"upper_hz": 9000.0}, "upper_hz=9000"),
    ({"lower_hz": 8000.0}, "lower_hz=8000"),
    ({"n_dct": 41}, "n_dct=41"),
    ({"target": "m4"}, "target='m4'"),
    ({"sample_rate_hz": 0}, "sample_rate_hz=0"),
    ({"quantization": {"scale": -1.0}}, "quantization.scale=-1.0"),
    ({"quantization": {"scale": 0.1, "zero_point": 200}}, "zero_point=200"),
])
def test_spec_errors_name_the_value(changes, message):
    base = dict(sample_rate_hz=16000, window_samples=512, hop_samples=256, fft_len=512, n_mels=40)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        FrontendSpec(**{**base, **changes})


def test_unbuildable_filter_bank_fails_in_prepare():
    spec = FrontendSpec(sample_rate_hz=16000, window_samples=64, hop_samples=32, fft_len=64, n_mels=40, lower_hz=20.0)
    frontend = CmsisFrontend(spec)
    with pytest.raises(ConfigError, match="mel filter 0"):
        frontend.prepare()


def test_more_mels_than_fft_points_is_refused():
    """arm_mfcc_q15 would write n_mels values into an fft_len buffer: a firmware memory overrun."""
    spec = FrontendSpec(sample_rate_hz=22050, window_samples=64, hop_samples=21, fft_len=64, n_mels=80,
                        lower_hz=300.0, upper_hz=8000.0, n_dct=12)
    with pytest.raises(ConfigError, match="n_mels=80 must not exceed fft_len=64"):
        CmsisFrontend(spec).prepare()
