"""Resampler: chunking-invariant bit for bit, equal to a slow readable reference, and of sane quality.

Quality is tier 3 (the float ideal is the reference): a full-scale-ish sine
in the passband comes out with SNR above 85 dB (measured 90-94 dB; the
requirement is 60 dB), a tone above the output's Nyquist frequency is
attenuated by more than 80 dB, DC passes exactly.
"""

import tracemalloc

import numpy as np
import pytest

from sed_runtime.errors import AudioFormatError, ConfigError
from sed_runtime.stream.resample import COEF_SHIFT, Resampler, resample_pcm16

RATES = [(44100, 16000), (48000, 16000), (22050, 16000), (8000, 16000), (32000, 16000), (11025, 16000),
         (16000, 8000)]
RATE_IDS = [f"{a}to{b}" for a, b in RATES]


def _noise(rate, seconds, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-32768, 32768, int(rate * seconds)).astype(np.int16)
    x[:5] = [32767, -32768, 32767, -32768, 32767]  # extremes, so saturation is exercised
    return x


def _stream(resampler, x, sizes):
    resampler.reset()
    out, pos, k = [], 0, 0
    while pos < x.shape[0]:
        n = sizes[k % len(sizes)]
        out.append(resampler.process(x[pos:pos + n]).copy())
        pos += n
        k += 1
    out.append(resampler.flush().copy())
    return np.concatenate(out)


@pytest.mark.parametrize("rates", RATES, ids=RATE_IDS)
def test_any_chunking_gives_the_same_samples(rates):
    fin, fout = rates
    x = _noise(fin, 0.25, fin)
    one_shot = resample_pcm16(x, fin, fout)
    up, down = Resampler(fin, fout).up, Resampler(fin, fout).down
    assert one_shot.shape[0] == -(-x.shape[0] * up // down)
    resampler = Resampler(fin, fout, max_chunk_samples=512).prepare()
    rng = np.random.default_rng(1)
    for sizes in ([1], [160], [320], [1000], [7, 1, 513, 2, 4096], list(rng.integers(0, 900, 50))):
        if sizes == [1] and fin > 16000:
            x_part = x[:3000]  # one sample at a time is slow: a prefix is enough to prove it
            ref = _stream(resampler, x_part, [len(x_part)])
            np.testing.assert_array_equal(_stream(resampler, x_part, [1]), ref)
            continue
        np.testing.assert_array_equal(_stream(resampler, x, sizes), one_shot, err_msg=f"chunks {sizes[:6]}")


def _reference(x, coefs_q30, up, down, delay, n_out):
    """The definition, one output at a time with Python ints: y[n] = sum_k h[p + k*up] x[i - k]."""
    taps = coefs_q30.shape[1]
    h = {}  # h[p + k*up] from the oldest-first phase table
    for p in range(up):
        for j in range(taps):
            h[p + (taps - 1 - j) * up] = int(coefs_q30[p, j])
    y = []
    for n in range(n_out):
        t = n * down + delay
        i, p = divmod(t, up)
        acc = sum(h[p + k * up] * int(x[i - k]) for k in range(taps) if 0 <= i - k < len(x))
        q = (abs(acc) + (1 << (COEF_SHIFT - 1))) >> COEF_SHIFT  # half away from zero
        y.append(max(-32768, min(32767, q if acc >= 0 else -q)))
    return np.array(y, np.int16)


@pytest.mark.parametrize("rates", [(48000, 16000), (8000, 16000), (22050, 16000)], ids=["48k", "8k", "22k"])
def test_equals_the_readable_reference(rates):
    fin, fout = rates
    resampler = Resampler(*rates).prepare()
    x = _noise(fin, 0.02, 3)
    got = resample_pcm16(x, fin, fout)
    ref = _reference(x, resampler.coefs_q30, resampler.up, resampler.down, resampler.delay_upsampled, got.shape[0])
    mismatch = np.nonzero(got != ref)[0]
    assert mismatch.size == 0, f"pos {mismatch[0]}: act {got[mismatch[0]]} ref {ref[mismatch[0]]}; " \
                               f"{mismatch.size} of {got.size} differ"


def _snr_db(fin, fout, freq_hz, amplitude=20000.0, seconds=0.5):
    n = np.arange(int(fin * seconds))
    x = np.rint(amplitude * np.sin(2 * np.pi * freq_hz * n / fin + 0.3)).astype(np.int16)
    y = resample_pcm16(x, fin, fout).astype(np.float64)
    m = np.arange(y.shape[0])
    ideal = amplitude * np.sin(2 * np.pi * freq_hz * m / fout + 0.3)  # output n sits at input time n * fin / fout
    edge = 400  # skip the start and the end, where the signal is cut
    err = y[edge:-edge] - ideal[edge:-edge]
    return 10 * np.log10(np.sum(ideal[edge:-edge] ** 2) / np.sum(err ** 2))


@pytest.mark.parametrize("rates", RATES, ids=RATE_IDS)
def test_sine_in_the_passband_has_high_snr(rates):
    fin, fout = rates
    nyquist = min(fin, fout) / 2
    for fraction in (0.05, 0.3, 0.6, 0.85):
        snr = _snr_db(fin, fout, fraction * nyquist + 3.7)
        assert snr > 85.0, f"{fin}->{fout} Hz, sine at {fraction:.2f} of Nyquist: SNR {snr:.1f} dB"


@pytest.mark.parametrize("rates", [(44100, 16000), (48000, 16000), (22050, 16000)], ids=["44k", "48k", "22k"])
def test_tone_above_output_nyquist_is_rejected(rates):
    fin, fout = rates
    n = np.arange(fin // 2)
    for freq in (fout / 2 + 50, 0.45 * fin):
        x = np.rint(30000 * np.sin(2 * np.pi * freq * n / fin)).astype(np.int16)
        y = resample_pcm16(x, fin, fout)[200:-200].astype(np.float64)
        ratio_db = 20 * np.log10(max(np.sqrt(np.mean(y ** 2)), 1e-9) / (30000 / np.sqrt(2)))
        assert ratio_db < -80.0, f"{freq:.0f} Hz leaks through at {ratio_db:.1f} dB"


@pytest.mark.parametrize("rates", RATES, ids=RATE_IDS)
def test_dc_passes_exactly_and_every_phase_sums_to_one(rates):
    resampler = Resampler(*rates).prepare()
    assert (resampler.coefs_q30.astype(np.int64).sum(axis=1) == 1 << COEF_SHIFT).all()
    x = np.full(rates[0] // 10, -12345, np.int16)
    y = resample_pcm16(x, *rates)
    lead = resampler.taps_per_phase * resampler.up // resampler.down + 2
    assert (y[lead:-lead] == -12345).all()


def test_impulse_lands_at_the_same_instant():
    """Delay compensated: an impulse at input sample k peaks at output k * fout / fin."""
    for fin, fout in [(48000, 16000), (8000, 16000), (44100, 16000)]:
        x = np.zeros(fin // 10, np.int16)
        k = fin // 20
        x[k] = 30000
        y = resample_pcm16(x, fin, fout)
        assert abs(int(np.argmax(y)) - k * fout / fin) <= 0.5


def test_full_scale_saturates_instead_of_wrapping():
    fin, fout = 48000, 16000
    x = np.where((np.arange(4800) // 240) % 2 == 0, 32767, -32768).astype(np.int16)  # 100 Hz square, overshoots
    y = resample_pcm16(x, fin, fout)
    square = np.where((np.arange(y.shape[0]) // 80) % 2 == 0, 1, -1)
    settled = (np.arange(y.shape[0]) % 80 > 10) & (np.arange(y.shape[0]) % 80 < 70)
    assert (np.sign(y[settled]) == square[settled]).all()  # no overshoot wrapped to the other sign
    assert y.max() == 32767 and y.min() == -32768


def test_equal_rates_copy_and_lengths():
    x = _noise(16000, 0.01, 9)
    y = resample_pcm16(x, 16000, 16000)
    np.testing.assert_array_equal(y, x)
    assert y is not x
    assert resample_pcm16(np.zeros(0, np.int16), 44100, 16000).shape == (0,)
    assert resample_pcm16(np.ones(1, np.int16), 44100, 16000).shape == (1,)


def test_errors_name_the_value():
    with pytest.raises(ConfigError, match=r"input_rate_hz=0 must be a positive integer"):
        Resampler(0, 16000)
    with pytest.raises(ConfigError, match=r"passband=1.2 must be in"):
        Resampler(44100, 16000, passband=1.2)
    with pytest.raises(ConfigError, match=r"needs a 16001-phase filter"):
        Resampler(44100, 16001).prepare()
    resampler = Resampler(48000, 16000)
    with pytest.raises(ConfigError, match=r"before prepare"):
        resampler.process(np.zeros(3, np.int16))
    resampler.prepare()
    with pytest.raises(AudioFormatError, match=r"1-D int16 array of mono samples, got ndarray dtype=float64"):
        resampler.process(np.zeros(3))
    resampler.process(np.zeros(30, np.int16))
    resampler.flush()
    with pytest.raises(ConfigError, match=r"after flush\(\); call reset\(\)"):
        resampler.process(np.zeros(3, np.int16))
    assert resampler.flush().shape == (0,)


def test_steady_state_allocates_nothing():
    resampler = Resampler(44100, 16000).prepare()
    block = _noise(44100, 0.01, 4)  # 441 samples, 160 outputs
    for _ in range(50):
        resampler.process(block)
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(2000):
            resampler.process(block)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert current - base <= 512, f"traced memory grew by {current - base} bytes"
    assert peak - base < block.nbytes, f"a call allocated {peak - base} bytes at its peak"
