"""Each TFLM signal-library kernel equals the tflite-micro signal op on seeded random input.

Tier 1: every oracle is a one-operator ``.tflite`` model (custom options as the
flexbuffer map the op's Init reads) run by the ``tflite-micro`` interpreter,
i.e. TFLM's own C++ kernels compiled for this host.  The tables the frontend
generates are compared with the constants of micro_speech's
``audio_preprocessor_int8.tflite``.  The module also runs with
``NUMBA_DISABLE_JIT=1`` (pure Python), proving the integer widths are explicit.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from _compare import assert_equal_ints
from conftest import SHARED
from sed_runtime.errors import ConfigError
from sed_runtime.frontend.tflm import (
    MICRO_SPEECH_SPEC,
    TflmFrontendSpec,
    TflmStages,
    filter_bank_tables,
    freq_to_mel,
    hann_window_weights,
    pcan_gain_lut,
)
from sed_runtime.kernels import tflm_signal as K

pytest.importorskip("tflite_micro")
from reference import tflm_ops  # noqa: E402  (needs tflite_micro)

MODEL = SHARED / "fixtures" / "micro_speech" / "audio_preprocessor_int8.tflite"
U32 = np.uint32
U64 = np.uint64


def _rng(*key) -> np.random.Generator:
    """A generator seeded by the test's parameters (crc32: stable across processes, unlike hash())."""
    return np.random.default_rng([20261127, *[zlib.crc32(str(k).encode()) for k in key]])


def _uint32(rng, n, top_bits=32):
    return (rng.integers(0, 2**32, n, dtype=np.uint64) >> U64(32 - top_bits)).astype(U32)


@pytest.fixture(scope="module")
def fixture_model():
    return tflm_ops.preprocessor_constants(MODEL)


# ---------------------------------------------------------------------------
# Tables: generated from the float config == the micro_speech model's constants
# ---------------------------------------------------------------------------

def test_micro_speech_tables_equal_the_preprocessor_model(fixture_model):
    stages = TflmStages.from_spec(MICRO_SPEECH_SPEC)
    window = fixture_model["SignalWindow"]
    assert window["options"] == {"shift": stages.window.shift}
    assert_equal_ints(stages.window.weights, window["constants"][0], "hann window q12")
    assert fixture_model["SignalRfft"]["options"]["fft_length"] == stages.fft.kiss.fft_len == 512
    fb = stages.filter_bank.tables
    assert fixture_model["SignalEnergy"]["options"] == {"start_index": fb.start_index, "end_index": fb.end_index}
    for name, ours, ref in zip(["weights", "unweights", "freq_starts", "weight_starts", "widths"],
                               [fb.weights, fb.unweights, fb.channel_frequency_starts, fb.channel_weight_starts,
                                fb.channel_widths], fixture_model["SignalFilterBank"]["constants"]):
        assert_equal_ints(ours, ref, f"filter bank {name}")
    assert fixture_model["SignalFilterBank"]["options"] == {"num_channels": 40}
    nr = stages.noise_reduction
    assert fixture_model["SignalFilterBankSpectralSubtraction"]["options"] == dict(
        alternate_one_minus_smoothing=nr.alternate_one_minus_smoothing, alternate_smoothing=nr.alternate_smoothing,
        clamping=nr.clamping, min_signal_remaining=nr.min_signal_remaining, num_channels=40,
        one_minus_smoothing=nr.one_minus_smoothing, smoothing=nr.smoothing, smoothing_bits=nr.smoothing_bits,
        spectral_subtraction_bits=nr.spectral_subtraction_bits)
    assert fixture_model["SignalPCAN"]["options"] == {"snr_shift": stages.pcan.snr_shift}
    assert_equal_ints(stages.pcan.gain_lut, fixture_model["SignalPCAN"]["constants"][0], "PCAN gain table")
    assert fixture_model["SignalFilterBankLog"]["options"] == {
        "input_correction_bits": stages.log.correction_bits, "output_scale": stages.log.output_scale}
    tail = [(name, int(c.reshape(-1)[0])) for name, consts in fixture_model["builtin"] for c in consts
            if name in ("MUL", "ADD", "DIV", "MINIMUM", "MAXIMUM")]
    q = stages.int8
    assert tail == [("MUL", q.value_scale), ("ADD", q.value_rounding), ("DIV", q.value_div), ("ADD", q.offset),
                    ("MINIMUM", 127), ("MAXIMUM", -128)]


def test_freq_to_mel_is_float32():
    assert freq_to_mel(0.0) == 0.0
    mel = freq_to_mel(1000.0)
    assert np.float32(mel) == mel and abs(mel - 1127.0 * np.log1p(1000.0 / 700.0)) < 1e-3


@pytest.mark.parametrize("fft_len,rate,channels,lower,upper", [
    (512, 16000, 40, 125.0, 7500.0), (256, 8000, 20, 20.0, 3900.0), (1024, 44100, 64, 50.0, 16000.0),
    (512, 22050, 32, 0.0, 10000.0), (2048, 16000, 80, 300.0, 7900.0), (64, 16000, 8, 100.0, 7000.0),
])
def test_filter_bank_layout_invariants(fft_len, rate, channels, lower, upper):
    """Aligned starts, block-padded widths, weights in [0, 4096], weight + unweight ~ 4096 on real bins."""
    t = filter_bank_tables(fft_len // 2 + 1, rate, channels, lower, upper, 12, 4, 4)
    assert t.channel_widths.shape == (channels + 1,)
    assert (t.channel_frequency_starts % 2 == 0).all() and (t.channel_widths % 4 == 0).all()
    assert (t.weights >= 0).all() and (t.weights <= 4096).all() and (t.unweights >= 0).all()
    used = t.weights.astype(int) + t.unweights > 0
    assert ((t.weights.astype(int) + t.unweights)[used] >= 4094).all()
    assert t.end_index <= fft_len // 2 + 1 and t.start_index >= 1


# ---------------------------------------------------------------------------
# Stages vs one-operator TFLM models
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("n,shift", [(480, 12), (400, 12), (512, 14), (240, 8), (1, 0)])
def test_apply_window_equals_signal_window(n, shift):
    rng = _rng("window", n, shift)
    weights = hann_window_weights(n, shift)
    op = tflm_ops.window_op(weights, shift)
    out = np.zeros(n + 4, np.int16)
    for trial in range(8):
        x = rng.integers(-32768, 32768, n).astype(np.int16)
        if trial == 0:
            x[:] = -32768
        elif trial == 1:
            x[:] = 32767
        out[n:] = 1234  # tail guard
        K.apply_window(x, weights, shift, out[:n])
        assert_equal_ints(out[:n], op(x)[0], f"window n={n} shift={shift} trial {trial}")
        assert (out[n:] == 1234).all()


@pytest.mark.parametrize("amp", [0, 1, 2, 100, 4000, 16384, 32767])
def test_fft_auto_scale_equals_signal_fft_auto_scale(amp):
    rng = _rng("autoscale", amp)
    op = tflm_ops.fft_auto_scale_op(480)
    out = np.zeros(480, np.int16)
    for _ in range(10):
        x = rng.integers(-amp, amp + 1, 480).astype(np.int16)
        ref, ref_bits = op(x)
        bits = K.fft_auto_scale(x, out)
        assert bits == int(ref_bits)
        assert_equal_ints(out, ref, f"auto scale amp={amp}")


@pytest.mark.parametrize("x", [
    [-32768] + [3] * 15,                       # -32768 wraps max to -32768, then later samples replace it
    [5, -32768, -7, 2, 1] + [0] * 10 + [1],
    [-32768, -5] + [0] * 14,                   # ends negative: shift 0
    [-32768] * 16,
    [0] * 16,
], ids=["min-then-small", "min-mid", "min-then-negative", "all-min", "zeros"])
def test_fft_auto_scale_int16_min_quirk(x):
    """MaxAbs16 stores -(-32768) in an int16: TFLM then picks a wrong shift and wraps; so do we."""
    x = np.array(x, np.int16)
    ref, ref_bits = tflm_ops.fft_auto_scale_op(16)(x)
    out = np.zeros(16, np.int16)
    assert K.fft_auto_scale(x, out) == int(ref_bits)
    assert_equal_ints(out, ref, "auto scale with -32768")


@pytest.mark.parametrize("fft_len", [64, 128, 256, 512, 1024, 2048, 96, 120, 160, 240, 400, 480, 1000])
def test_rfft_int16_equals_signal_rfft(fft_len):
    """kiss_fftr FIXED_POINT=16, every radix (2, 3, 4, 5) and the super-twiddle split."""
    rng = _rng("rfft", fft_len)
    tables = K.kiss_fftr_int16_tables(fft_len)
    op = tflm_ops.rfft_op(fft_len, fft_len)
    tmp = np.zeros(fft_len, np.int16)
    out = np.zeros(fft_len + 2 + 3, np.int16)
    for trial, amp in enumerate([32768, 32768, 20000, 1000, 30, 1] * 2):
        x = rng.integers(-amp, amp, fft_len).astype(np.int16)
        if trial == 1:
            x[::2], x[1::2] = -32768, 32767  # full-scale alternation: Nyquist bin, wrapping sums
        out[fft_len + 2:] = 777
        K.kiss_fftr_int16(x, tmp, out[:fft_len + 2], tables.factors, tables.leaf_order, tables.twiddles,
                          tables.super_twiddles)
        assert_equal_ints(out[:fft_len + 2], op(x)[0], f"rfft {fft_len} trial {trial} amp {amp}")
        assert (out[fft_len + 2:] == 777).all()


def test_rfft_zero_pads_a_short_input_like_the_op():
    rng = _rng("rfft-pad")
    tables = K.kiss_fftr_int16_tables(512)
    op = tflm_ops.rfft_op(480, 512)
    frame = np.zeros(512, np.int16)
    out = np.zeros(514, np.int16)
    for _ in range(5):
        x = rng.integers(-32768, 32768, 480).astype(np.int16)
        frame[:480] = x
        K.kiss_fftr_int16(frame, np.zeros(512, np.int16), out, tables.factors, tables.leaf_order, tables.twiddles,
                          tables.super_twiddles)
        assert_equal_ints(out, op(x)[0], "rfft 480 -> 512")


@pytest.mark.parametrize("n,expected", [(256, [(4, 64), (4, 16), (4, 4), (4, 1)]), (128, [(4, 32), (4, 8), (4, 2), (2, 1)]),
                                        (240, [(4, 60), (4, 15), (3, 5), (5, 1)]), (25, [(5, 5), (5, 1)])])
def test_kiss_factor_order(n, expected):
    assert K.kiss_factors(n) == expected


@pytest.mark.parametrize("fft_len", [2, 14, 28, 63, 0, 22])
def test_rfft_lengths_tflm_cannot_run_are_refused(fft_len):
    with pytest.raises(ConfigError, match=f"fft_len={fft_len}"):
        K.kiss_fftr_int16_tables(fft_len)


@pytest.mark.parametrize("start,end", [(5, 241), (0, 257), (100, 101), (7, 7)])
def test_spectrum_to_energy_equals_signal_energy(start, end):
    rng = _rng("energy", start, end)
    op = tflm_ops.energy_op(257, start, end)
    out = np.zeros(257, U32)
    for trial in range(5):
        x = rng.integers(-32768, 32768, 514).astype(np.int16)
        if trial == 0:
            x[:] = -32768  # re^2 + im^2 = 2**31: past int32, exact as uint32
        K.spectrum_to_energy(x, start, end, out)
        assert_equal_ints(out[start:end], op(x)[0][start:end], f"energy [{start}, {end}) trial {trial}")


@pytest.mark.parametrize("fft_len,rate,channels,lower,upper,bits,align,block", [
    (512, 16000, 40, 125.0, 7500.0, 12, 4, 4), (256, 8000, 20, 20.0, 3900.0, 12, 4, 4),
    (1024, 44100, 64, 50.0, 16000.0, 10, 1, 1), (512, 22050, 32, 0.0, 10000.0, 14, 8, 2),
    (2048, 16000, 80, 300.0, 7900.0, 12, 4, 4),
])
def test_filterbank_accumulate_channels_equals_signal_filter_bank(fft_len, rate, channels, lower, upper, bits,
                                                                  align, block):
    rng = _rng("fb", fft_len, rate, channels)
    t = filter_bank_tables(fft_len // 2 + 1, rate, channels, lower, upper, bits, align, block)
    n_bins = fft_len // 2 + 1
    op = tflm_ops.filter_bank_op(n_bins, t.weights, t.unweights, t.channel_frequency_starts, t.channel_weight_starts,
                                 t.channel_widths)
    work = np.zeros(channels + 1, U64)
    for trial, top in enumerate([32, 32, 20, 8]):
        energy = _uint32(rng, n_bins, top)
        if trial == 0:
            energy[:] = 2**32 - 1
        K.filterbank_accumulate_channels(t.weights, t.unweights, t.channel_frequency_starts, t.channel_weight_starts,
                                         t.channel_widths, energy, work)
        assert_equal_ints(work[1:], op(energy)[0], f"filter bank {fft_len}/{rate}/{channels} trial {trial}")


@pytest.mark.parametrize("top_bits", [16, 32, 33, 48, 63, 64])
def test_filterbank_sqrt_equals_signal_filter_bank_square_root(top_bits):
    rng = _rng("sqrt", top_bits)
    op = tflm_ops.filter_bank_square_root_op(64)
    out = np.zeros(64, U32)
    for scale_bits in (0, 1, 3, 14, 15):
        x = rng.integers(0, 2**63, 64, dtype=np.uint64) * U64(2) + rng.integers(0, 2, 64, dtype=np.uint64)
        x >>= U64(64 - top_bits)
        x[:4] = [0, 1, 2**top_bits - 1, 2**(top_bits - 1)]
        K.filterbank_sqrt(x, scale_bits, out)
        assert_equal_ints(out, op(x, np.int32(scale_bits))[0], f"sqrt < 2**{top_bits} >> {scale_bits}")


@pytest.mark.parametrize("config", [
    dict(smoothing_bits=10, spectral_subtraction_bits=14, even=0.025, odd=0.06, msr=0.05, clamping=False),
    dict(smoothing_bits=10, spectral_subtraction_bits=14, even=0.025, odd=0.06, msr=0.05, clamping=True),
    dict(smoothing_bits=0, spectral_subtraction_bits=10, even=0.5, odd=0.0, msr=0.0, clamping=False),
    dict(smoothing_bits=20, spectral_subtraction_bits=20, even=0.001, odd=0.9, msr=1.0, clamping=True),
], ids=["micro_speech", "clamping", "no-extra-bits", "wide"])
def test_spectral_subtraction_equals_signal_op_over_a_stream(config):
    """Stateful: 400 frames through one op instance and one noise estimate, compared frame by frame."""
    spec = TflmFrontendSpec(smoothing_bits=config["smoothing_bits"],
                            spectral_subtraction_bits=config["spectral_subtraction_bits"],
                            even_smoothing=config["even"], odd_smoothing=config["odd"],
                            min_signal_remaining=config["msr"], clamping=config["clamping"])
    nr = TflmStages.from_spec(spec).noise_reduction
    op = tflm_ops.spectral_subtraction_op(
        40, smoothing=nr.smoothing, one_minus_smoothing=nr.one_minus_smoothing,
        alternate_smoothing=nr.alternate_smoothing, alternate_one_minus_smoothing=nr.alternate_one_minus_smoothing,
        min_signal_remaining=nr.min_signal_remaining, smoothing_bits=nr.smoothing_bits,
        spectral_subtraction_bits=nr.spectral_subtraction_bits, clamping=nr.clamping)
    rng = _rng("ss", *config.values())
    noise = np.zeros(40, U32)
    out = np.zeros(40, U32)
    level = 1.0
    for frame in range(400):
        level *= float(np.exp(rng.normal(0, 0.3)))
        x = np.minimum(rng.exponential(1000 * min(level, 1e6), 40), 2**32 - 1).astype(U32)
        if frame % 37 == 0:
            x = _uint32(rng, 40)  # full-range: the << smoothing_bits wraps
        ref_out, ref_noise = op(x)
        K.filterbank_spectral_subtraction(x, out, noise, nr.smoothing, nr.one_minus_smoothing, nr.alternate_smoothing,
                                          nr.alternate_one_minus_smoothing, nr.min_signal_remaining, nr.smoothing_bits,
                                          nr.spectral_subtraction_bits, nr.clamping)
        assert_equal_ints(out, ref_out, f"spectral subtraction frame {frame}")
        assert_equal_ints(noise, ref_noise, f"noise estimate frame {frame}")


@pytest.mark.parametrize("strength,offset,input_bits,gain_bits", [
    (0.95, 80.0, 7, 21), (0.5, 1.0, 0, 18), (0.98, 120.0, 9, 22), (0.8, 10.0, 5, 31), (2.0, 0.5, 3, 20),
])
def test_pcan_equals_signal_pcan(strength, offset, input_bits, gain_bits):
    lut = pcan_gain_lut(strength, offset, input_bits, gain_bits)
    rng = _rng("pcan", strength, offset, input_bits, gain_bits)
    for snr_shift in (6, 0, 12):
        op = tflm_ops.pcan_op(64, lut, snr_shift)
        for trial in range(20):
            x = _uint32(rng, 64, int(rng.integers(1, 33)))
            noise = _uint32(rng, 64, int(rng.integers(0, 33)))
            noise[:4] = [0, 1, 2, 3]
            out = x.copy()
            K.apply_pcan_auto_gain_control_fixed(lut, snr_shift, noise, out)
            assert_equal_ints(out, op(x, noise)[0], f"pcan snr_shift={snr_shift} trial {trial}")


@pytest.mark.parametrize("output_scale,correction_bits", [(64, 3), (1, 0), (4096, 5), (65536, 0), (2**20, 7),
                                                          (2**31 - 1, 2), (3, 31)])
def test_filterbank_log_equals_signal_filter_bank_log(output_scale, correction_bits):
    rng = _rng("log", output_scale, correction_bits)
    op = tflm_ops.filter_bank_log_op(64, output_scale, correction_bits)
    out = np.zeros(64, np.int16)
    for trial in range(20):
        x = _uint32(rng, 64, int(rng.integers(1, 33)))
        x[:4] = [0, 1, 2, 2**32 - 1]
        K.filterbank_log(x, output_scale, correction_bits, out)
        assert_equal_ints(out, op(x)[0], f"log scale={output_scale} correction={correction_bits} trial {trial}")


def test_micro_speech_int8_is_the_truncating_integer_formula():
    v = np.arange(-32768, 32768, dtype=np.int16)
    out = np.zeros(v.shape[0], np.int8)
    K.micro_speech_int8(v, 256, 333, 666, -128, out)
    wide = v.astype(np.int64) * 256 + 333
    expected = np.clip(np.trunc(wide / 666).astype(np.int64) - 128, -128, 127)
    assert_equal_ints(out, expected, "int8 conversion")


# ---------------------------------------------------------------------------
# Scalar helpers at their edges
# ---------------------------------------------------------------------------

def test_most_significant_bit_matches_gnuc_builtins():
    assert K.most_significant_bit32(0) == 32 and K.most_significant_bit64(U64(0)) == 64
    for x in [1, 2, 3, 255, 256, 2**31 - 1, 2**31, 2**32 - 1]:
        assert K.most_significant_bit32(x) == x.bit_length()
    for x in [1, 2**32 - 1, 2**32, 2**40 + 3, 2**63, 2**64 - 1]:
        assert K.most_significant_bit64(U64(x)) == x.bit_length()


def test_sqrt_rounds_to_nearest_and_saturates():
    for x in [0, 1, 2, 3, 4, 8, 9, 2**32 - 1, 2**32, 2**62, 2**64 - 1]:
        r = K.sqrt64(U64(x))
        root = int(np.floor(np.sqrt(float(x))))
        while root * root > x:
            root -= 1
        while (root + 1) ** 2 <= x:
            root += 1
        expected = root + (1 if x - root * root > root and root != (0xFFFF if x < 2**32 else 0xFFFFFFFF) else 0)
        assert r == expected, x
