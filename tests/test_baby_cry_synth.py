"""The infant-cry synthesizer (examples/training/baby_cry.py): measured from its audio, not from its own
bookkeeping: f0 by normalized autocorrelation, bursts and gaps from the RMS envelope, harmonics from the spectrum.
The measurements here are written independently of the module's own ``cry_statistics`` (no torch, fast)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "training"))
import baby_cry  # noqa: E402
import prepare_real_eval  # noqa: E402

FS = 16000
SEEDS = range(8)
LOWPASS = signal.butter(6, 2500, "lowpass", fs=FS, output="sos")


@pytest.fixture(scope="module")
def bouts():
    return [baby_cry.generate_cry_bout(np.random.default_rng(s), FS, 6.0) for s in SEEDS]


# ---------------------------------------------------------------------------
# Measurement helpers (independent of the module's YIN and envelope code)
# ---------------------------------------------------------------------------

def nacf_f0(frame: np.ndarray, fs: int = FS, fmin: float = 200.0, fmax: float = 1200.0) -> tuple[float, float]:
    """(f0 Hz, periodicity) of one frame.  f0 by subharmonic summation (Hermes 1988): the candidate whose
    harmonics k = 1..8 (below 7 kHz, weights 0.84**(k-1)) collect the most log-spectral level.  Periodicity is
    the highest normalized autocorrelation over lags near 1/f0 (signal low-passed at 2.5 kHz, where whole-sample
    lags do not decorrelate the high harmonics): near 1 for a voice, low for noise."""
    x = frame - frame.mean()
    n_fft = 8192
    spec = 20 * np.log10(np.abs(np.fft.rfft(x * np.hanning(len(x)), n_fft)) + 1e-12)
    spec = np.clip(spec - (spec.max() - 50.0), 0.0, None)
    cands = np.arange(fmin, fmax, 1.0)
    score = np.zeros(len(cands))
    for k in range(1, 9):
        fk = k * cands
        idx = np.minimum(np.rint(fk * n_fft / fs).astype(int), len(spec) - 1)
        score += np.where(fk < 7000.0, 0.84 ** (k - 1) * spec[idx], 0.0)
    f0 = float(cands[np.argmax(score)])
    y = signal.sosfiltfilt(LOWPASS, x)
    lag = fs / f0
    best = 0.0
    for k in range(max(1, int(lag * 0.9)), int(np.ceil(lag * 1.1)) + 1):
        m = len(y) - k
        best = max(best, np.dot(y[:m], y[k:]) / np.sqrt(np.dot(y[:m], y[:m]) * np.dot(y[k:], y[k:]) + 1e-20))
    return f0, float(best)


def envelope_db(x: np.ndarray, fs: int = FS, win: float = 0.02, hop: float = 0.01) -> np.ndarray:
    w, h = int(win * fs), int(hop * fs)
    return np.array([10 * np.log10(np.mean(x[i:i + w].astype(np.float64) ** 2) + 1e-12)
                     for i in range(0, len(x) - w + 1, h)])


def measured_bursts(x: np.ndarray, below_db: float = 15.0, bridge_s: float = 0.08) -> list[tuple[float, float]]:
    """Runs of 10 ms frames within ``below_db`` of the loud level (95th percentile), gaps < ``bridge_s`` bridged."""
    e = envelope_db(x)
    on = e > np.percentile(e, 95) - below_db
    runs, start = [], None
    for k, v in enumerate(np.append(on, False)):
        if v and start is None:
            start = k
        elif not v and start is not None:
            runs.append([start, k])
            start = None
    out = []
    for a, b in runs:
        if out and (a - out[-1][1]) * 0.01 < bridge_s:
            out[-1][1] = b
        else:
            out.append([a, b])
    return [(a * 0.01 + 0.01, b * 0.01 + 0.01) for a, b in out]


def overlaps(a0, a1, b0, b1) -> bool:
    return min(a1, b1) > max(a0, b0)


def regular_frames(bout, frame_s: float = 0.04, hop_s: float = 0.02, edge_s: float = 0.08):
    """Start samples of frames inside phonations, away from their edges and from irregular phonation."""
    out = []
    for ph in bout.phonations():
        t = ph.onset_s + edge_s
        while t + frame_s <= ph.offset_s - edge_s:
            if not any(overlaps(t, t + frame_s, s.onset_s - 0.02, s.offset_s + 0.02) for s in bout.irregularities):
                out.append(int(t * FS))
            t += hop_s
    return out


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------

def test_deterministic_per_seed():
    a = baby_cry.generate_cry_bout(np.random.default_rng(7), FS, 5.0)
    b = baby_cry.generate_cry_bout(np.random.default_rng(7), FS, 5.0)
    c = baby_cry.generate_cry_bout(np.random.default_rng(8), FS, 5.0)
    assert np.array_equal(a.audio, b.audio) and a.segments == b.segments and a.irregularities == b.irregularities
    assert not np.array_equal(a.audio, c.audio)
    assert np.array_equal(baby_cry.generate_cry(3, FS, 4.0), baby_cry.generate_cry(np.random.default_rng(3), FS, 4.0))
    x1, m1 = baby_cry.generate(np.random.default_rng(5), 8.0)
    x2, m2 = baby_cry.generate(np.random.default_rng(5), 8.0)
    assert np.array_equal(x1, x2) and np.array_equal(m1, m2)


@pytest.mark.parametrize("seed, rate, seconds", [(0, 16000, 6.0), (1, 16000, 12.0), (2, 44100, 3.0),
                                                 (3, 8000, 2.0), (4, 16000, 0.3)])
def test_level_no_nan_no_clipping(seed, rate, seconds):
    x = baby_cry.generate_cry(np.random.default_rng(seed), rate, seconds)
    assert x.dtype == np.float32 and x.ndim == 1 and len(x) == round(seconds * rate)
    assert np.all(np.isfinite(x))
    peak_dbfs = 20 * np.log10(np.max(np.abs(x)))
    p = baby_cry.CRY_PARAMETERS.peak_dbfs
    assert p[0] - 0.01 <= peak_dbfs <= p[1] + 0.01
    assert np.count_nonzero(np.abs(x) >= 0.999) == 0
    assert abs(float(np.mean(x))) < 1e-3


def test_segment_structure(bouts):
    lo, hi = baby_cry.CRY_PARAMETERS.phonation_s
    for bout in bouts:
        segs = bout.segments
        assert segs[0].kind == "phonation" and segs[0].onset_s == 0.0
        assert all(a.offset_s <= b.onset_s for a, b in zip(segs, segs[1:]))
        assert all(lo - 1e-3 <= s.offset_s - s.onset_s <= hi + 1e-3 for s in bout.phonations())
        # phonations and inspirations alternate
        kinds = ["p" if s.kind == "phonation" else "i" for s in segs]
        assert "pp" not in "".join(kinds) and "ii" not in "".join(kinds)


def test_f0_measured_in_cry_range(bouts):
    for bout in bouts:
        f0, nominal = [], []
        for i in regular_frames(bout):
            f, r = nacf_f0(bout.audio[i:i + int(0.04 * FS)])
            if r >= 0.6:
                f0.append(f)
                nominal.append(np.mean(bout.f0_hz[i:i + int(0.04 * FS)]))
        f0, nominal = np.array(f0), np.array(nominal)
        assert len(f0) >= 40
        assert np.mean((f0 >= 250) & (f0 <= 1000)) >= 0.97, np.percentile(f0, [1, 50, 99])
        assert 300 <= np.median(f0) <= 600
        # the measurement agrees with what the synthesizer meant to produce, frame by frame
        assert np.median(np.abs(f0 / nominal - 1)) < 0.02


def test_hyperphonation_is_high_when_present():
    p = dataclasses.replace(baby_cry.CRY_PARAMETERS, hyperphonation_probability=(1.0, 1.0))
    bout = baby_cry.generate_cry_bout(np.random.default_rng(11), FS, 4.0, p)
    hyper = [s for s in bout.irregularities if s.kind == "hyperphonation"]
    assert hyper
    for s in hyper:
        mid = int((s.onset_s + s.offset_s) / 2 * FS)
        f, r = nacf_f0(bout.audio[mid - 320:mid + 320], fmax=1300.0)
        assert r > 0.6 and 750 <= f <= 1050


def test_harmonics_at_multiples_of_f0(bouts):
    """Spectral peaks at k * f0 (k = 1..5) stand well above the valleys at (k + 1/2) * f0."""
    n = int(0.064 * FS)
    win = np.hanning(n)
    contrasts = []
    for bout in bouts:
        for i in regular_frames(bout, frame_s=0.064, hop_s=0.2):
            frame = bout.audio[i:i + n]
            f0, r = nacf_f0(frame)
            if r < 0.8:
                continue
            spec = 20 * np.log10(np.abs(np.fft.rfft(frame * win, 4 * n)) + 1e-12)
            freqs = np.fft.rfftfreq(4 * n, 1 / FS)

            def band(lo, hi):
                return spec[(freqs >= lo) & (freqs <= hi)]

            for k in range(1, 6):
                if (k + 0.6) * f0 > 7000:
                    break
                peak = band(k * f0 * 0.97, k * f0 * 1.03).max()
                valley = np.median(band((k + 0.35) * f0, (k + 0.65) * f0))
                contrasts.append(peak - valley)
    contrasts = np.array(contrasts)
    assert len(contrasts) >= 100
    assert np.median(contrasts) >= 20 and np.mean(contrasts >= 10) >= 0.9


def test_rise_fall_contours_dominate(bouts):
    """Most phonations peak in f0 inside the phonation, not at its start or end."""
    interior = total = 0
    for bout in bouts:
        for ph in bout.phonations():
            starts = range(int((ph.onset_s + 0.06) * FS), int((ph.offset_s - 0.1) * FS), int(0.02 * FS))
            track = [nacf_f0(bout.audio[i:i + 640]) for i in starts]
            f = np.array([f for f, r in track if r >= 0.6])
            if len(f) < 15:
                continue
            smooth = np.convolve(np.clip(f, 0, 750), np.ones(5) / 5, mode="valid")
            pos = np.argmax(smooth) / (len(smooth) - 1)
            total += 1
            interior += 0.1 < pos < 0.9
    assert total >= 30 and interior / total >= 0.6


def test_burst_durations_from_envelope():
    """Loud bursts measured from the envelope are the 0.5-1.5 s phonations (less what the -15 dB threshold trims
    off the attack and release): one burst per phonation.  Voiced inspirations, which can be as loud as a short
    burst, are switched off here and checked in the next test."""
    p = dataclasses.replace(baby_cry.CRY_PARAMETERS, voiced_inhalation_probability=0.0)
    lengths = []
    for seed in range(10):
        bout = baby_cry.generate_cry_bout(np.random.default_rng(100 + seed), FS, 8.0, p)
        measured = measured_bursts(bout.audio)
        ph = bout.phonations()
        assert len(measured) == len(ph), (measured, ph)
        for (a, b), s in zip(measured, ph):
            assert overlaps(a, b, s.onset_s, s.offset_s)
            lengths.append(b - a)
    lengths = np.array(lengths)
    assert lengths.min() >= 0.4 and lengths.max() <= 1.5, (lengths.min(), lengths.max())
    assert np.median(lengths) > 0.7


def test_inhalation_gaps(bouts):
    """Between phonations the envelope drops (a measured gap), and the inspiration there is audible: unvoiced
    ones aperiodic, voiced ones short and high."""
    n_unvoiced = n_voiced = 0
    for bout in bouts:
        e = envelope_db(bout.audio)
        loud = np.percentile(e, 95)
        ph = bout.phonations()
        for a, b in zip(ph, ph[1:]):
            between = e[int(a.offset_s / 0.01):max(int(a.offset_s / 0.01) + 1, int(b.onset_s / 0.01) - 2)]
            assert np.count_nonzero(between < loud - 15) >= 5  # at least ~50 ms well below the cry
        for s in bout.segments:
            if s.kind == "phonation":
                continue
            x = bout.audio[int(s.onset_s * FS):int(s.offset_s * FS)]
            level = 10 * np.log10(np.mean(x.astype(np.float64) ** 2)) - loud
            assert -55 < level < -3
            track = [nacf_f0(x[i:i + 640]) for i in range(0, len(x) - 640, 160)]
            f = np.median([f for f, _ in track])
            r = np.median([r for _, r in track])
            if s.kind == "inhalation":
                n_unvoiced += 1
                assert r < 0.65
            else:
                n_voiced += 1
                assert s.offset_s - s.onset_s <= 0.2 + 1e-3 and r >= 0.7 and 450 <= f <= 1000
    assert n_unvoiced >= 10 and n_voiced >= 1


def test_generate_contract():
    """common.ClassConfig.generate: (float32 at 16 kHz, bool mask) of the scene's length; the mask holds the
    phonations and the inspirations between them."""
    any_mask = 0
    for seed in range(12):
        x, mask = baby_cry.generate(np.random.default_rng(seed), 8.0)
        assert x.dtype == np.float32 and mask.dtype == bool and len(x) == len(mask) == 8 * FS
        assert np.all(np.isfinite(x)) and np.max(np.abs(x)) <= 1.0
        any_mask += bool(mask.any())
        if mask.any():
            # outside the mask the cry is silent or only breathing: far below the masked part
            rms_in = np.sqrt(np.mean(x[mask].astype(np.float64) ** 2))
            out = x[~mask].astype(np.float64)
            assert not len(out) or np.sqrt(np.mean(out ** 2)) < 0.5 * rms_in
    assert any_mask >= 10
    neg = baby_cry.hard_negatives(np.random.default_rng(1), 8.0)
    assert neg.dtype == np.float32 and len(neg) == 8 * FS and np.all(np.isfinite(neg)) and np.max(np.abs(neg)) <= 1


def test_cry_mask_bridges_inspirations_not_pauses():
    bout = baby_cry.generate_cry_bout(np.random.default_rng(2), FS, 8.0)
    mask = baby_cry.cry_mask(bout)
    ph = bout.phonations()
    for a, b in zip(ph, ph[1:]):
        gap = mask[int(a.offset_s * FS) + 1:int(b.onset_s * FS) - 1]
        assert gap.all() if b.onset_s - a.offset_s < 1.0 else not gap.any()


def test_cli_writes_wav(tmp_path, capsys):
    out = tmp_path / "cry.wav"
    assert baby_cry.main(["--out", str(out), "--seconds", "2", "--seed", "1"]) == 0
    x, rate = sf.read(str(out), dtype="int16")
    assert rate == FS and len(x) == 2 * FS and np.abs(x).max() > 1000
    assert "phonations" in capsys.readouterr().out


def test_prepare_real_eval_helpers():
    """The extraction script's pure parts: resampling without added clipping, event merging, the comparison
    table (on synthetic audio standing in for the real clip)."""
    x = np.sin(2 * np.pi * 440 * np.arange(44100) / 44100) * 1.02
    y, gain = prepare_real_eval.to_16k(x, 44100)
    assert len(y) == FS and np.max(np.abs(y)) <= 32767 / 32768 and gain < 1
    assert prepare_real_eval.merge([(0.0, 0.7), (0.85, 1.5), (2.8, 3.5)], 1.0) == [(0.0, 1.5), (2.8, 3.5)]
    table = prepare_real_eval.compare(baby_cry.generate_cry(9, FS, 3.0), 2, 1, 3.0)
    assert table.count("\n") == 9 and "f0 median" in table
