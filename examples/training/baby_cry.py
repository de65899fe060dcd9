"""Synthetic infant cries: the positive generator for ``models/baby_cry.onnx``.

Only one real baby-cry recording is reachable from the package registries this project draws on (2.6 s in
Debian ``scratch``), and it is reserved for evaluation.  Training positives are therefore synthesized here from
what the infant-cry literature reports about how cries sound.  A synthetic positive is never evidence of
real-world recall: figures measured on these cries say how well a model finds *this synthesizer's* cries.

What is modelled, and on what it rests (sources by author and year):

* **Bouts of expiratory phonations separated by inspirations.**  A cry is a rhythmic sequence of voiced
  expirations ("cry units", here 0.5-1.5 s) and short inspirations (0.05-0.25 s), with brief silent gaps around
  each inspiration and now and then a longer pause (Wasz-Höckert et al. 1968; Golub & Corwin 1985;
  Zeskind & Barr 1997; LaGasse, Neal & Lester 2005).
* **Fundamental frequency.**  Healthy term infants phonate mostly between about 300 and 600 Hz (means near
  400-500 Hz), higher in more aroused / pain cries (Wasz-Höckert et al. 1968; Zeskind & Lester 1978;
  LaGasse et al. 2005; Reggiannini et al. 2013).  Each bout draws an "arousal" in [0, 1] that raises f0,
  breathiness and the rate of irregular phonation together.
* **Melody.**  The f0 contour of a phonation is mostly a single rise-fall arch; falling, rising, flat and
  double-arch shapes occur less often (Wermke & Mende 2009; Mampe et al. 2009; Várallyay 2007).  On top of the
  contour: slow drift, vibrato-like modulation (4-10 Hz), cycle-to-cycle jitter and shimmer.
* **Irregular phonation.**  Occasional hyperphonation (a sudden f0 shift far above the modal range; Golub &
  Corwin 1985, Kheddache & Tadj 2013 describe it above 1000 Hz, here capped at 800-1000 Hz by default),
  subharmonics (period doubling), biphonation (a second, unrelated fundamental), voicing breaks and
  dysphonated (noisy, turbulent) stretches, all of which are common in healthy young infants (Mende, Herzel
  & Wermke 1990; Robb 2003).
* **Inspirations.**  Mostly unvoiced, noisy inspiratory sounds; sometimes voiced inspiratory phonation
  (stridor), which is shorter and higher in f0 than the expirations around it (Grau, Robb & Cacace 1995;
  Wermke et al. 2018).
* **Source and vocal tract.**  A band-limited harmonic sum (a glottal-pulse train seen in the frequency
  domain) with a spectral tilt of -1 to -7 dB per octave (source and lip radiation together: cries are
  pressed, high-effort phonation, rich in high harmonics), pulsed aspiration noise for breathiness, through a
  cascade of formant resonators (Klatt 1980) placed for an infant vocal tract (about 7-8 cm long, so formants
  sit far above an adult's: F1 about 0.9-1.3 kHz, F2 about 2.6-3.5 kHz, F3 about 4.5-5.6 kHz; Kent & Murray
  1982; Robb & Cacace 1995).
* **Loudness.**  Per-phonation attack and release, intensity that partly follows the f0 arch, and phonation-
  to-phonation level variation.

What is NOT modelled (real cries differ in all of this, and the training recipe's rooms, microphones and real
backgrounds cover only part of it): individual voices and ages (newborn vs. 12 months), articulation changes
within a phonation (formants are fixed per phonation), coughs, hiccups, sobs, fussing and whimpering between
cry bouts, the cry's onset from fussing, clipping and compression of phone recordings, and the statistical
variety of real infants, which no parameter range here has been fitted to.  Ranges are read from published
summaries, not estimated from data; ``baby_cry.md`` compares a few statistics with the one real clip (and says
which ranges were revised after a first comparison with it).

Interface (the recipe's positive-generator contract, see ``common.ClassConfig``):

* :func:`generate` ``(rng, seconds) -> (audio float32 at 16 kHz, mask bool per sample)``: a cry starting
  anywhere in the scene, for ``ClassConfig.generate``.
* :func:`generate_cry` ``(rng, sample_rate_hz=16000, duration_s=None) -> float32`` mono in [-1, 1].
* :func:`generate_cry_bout` the same bout with its ground truth: phonation and inhalation segments,
  irregular-phonation events and the nominal f0 of every sample.
* :data:`CRY_PARAMETERS` the default :class:`CryParameters` (every range in one place, units in names).
* :func:`hard_negatives` optional synthetic non-cry voices and tones (adult-pitched speech-like syllables,
  steady and siren-like tones in the cry's f0 range) for ``ClassConfig.hard_negatives``.
* :func:`cry_statistics` measures f0 (YIN), bursts, gaps and spectral centroid of any recording; used by
  ``prepare_real_eval.py`` to compare this synthesizer with the real clip.

Listening aid::

    python examples/training/baby_cry.py --out cry.wav --seconds 10 --seed 1

Everything is deterministic given the ``numpy.random.Generator`` (or integer seed) passed in.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import signal

RATE = 16000
LABEL = "baby_cry"


@dataclass(frozen=True)
class CryParameters:
    """Ranges the synthesizer draws from, each uniformly unless stated; ``*_db`` relative levels."""

    # -- timing of a bout --
    bout_s: tuple = (3.0, 12.0)                    # bout length when none is asked for
    phonation_s: tuple = (0.5, 1.5)                # one expiratory cry unit
    pre_inhalation_gap_s: tuple = (0.04, 0.10)     # silence between a phonation and the inspiration
    inhalation_s: tuple = (0.05, 0.25)
    post_inhalation_gap_s: tuple = (0.01, 0.05)
    pause_probability: float = 0.08                # a longer pause instead of a quick inspiration
    pause_s: tuple = (0.6, 2.0)
    # -- fundamental frequency --
    f0_reference_hz: tuple = (330.0, 510.0)        # a bout's level (arousal 0 -> 1); contours are ratios of it
    f0_phonation_spread: float = 0.08              # each phonation's level: reference * (1 +- spread)
    f0_limits_hz: tuple = (260.0, 750.0)           # modal phonation is kept inside this (soft limits)
    melody_weights: tuple = (("arch", 0.62), ("falling", 0.14), ("rising", 0.08),
                             ("double_arch", 0.10), ("flat", 0.06))
    arch_start: tuple = (0.75, 0.95)               # contour ratios at the start, peak and end of an arch
    arch_peak: tuple = (1.05, 1.25)
    arch_end: tuple = (0.70, 0.92)
    arch_peak_position: tuple = (0.2, 0.6)         # fraction of the phonation
    drift_extent: tuple = (0.005, 0.03)            # slow random f0 wander, relative
    vibrato_hz: tuple = (4.0, 10.0)
    vibrato_extent: tuple = (0.003, 0.02)          # relative
    jitter: tuple = (0.002, 0.012)                 # cycle-to-cycle period perturbation (sd, relative)
    shimmer: tuple = (0.02, 0.10)                  # cycle-to-cycle amplitude perturbation (sd, relative)
    # -- irregular phonation: probability per phonation at arousal 0 and 1, then segment length --
    hyperphonation_probability: tuple = (0.04, 0.20)
    hyperphonation_f0_hz: tuple = (800.0, 1000.0)
    hyperphonation_s: tuple = (0.10, 0.35)
    subharmonic_probability: tuple = (0.08, 0.25)
    subharmonic_depth: tuple = (0.3, 0.8)
    subharmonic_s: tuple = (0.08, 0.35)
    biphonation_probability: tuple = (0.02, 0.08)
    biphonation_ratio: tuple = (1.15, 1.45)        # second fundamental / first (never harmonic)
    biphonation_db: tuple = (-12.0, -4.0)
    biphonation_s: tuple = (0.08, 0.30)
    voicing_break_probability: tuple = (0.10, 0.25)
    voicing_break_s: tuple = (0.02, 0.06)
    dysphonation_probability: tuple = (0.05, 0.25)
    dysphonation_s: tuple = (0.10, 0.40)
    # -- source and vocal tract --
    tilt_db_per_octave: tuple = (-7.0, -1.0)       # harmonic amplitudes (arousal 0 -> 1 flattens the tilt)
    breath_db: tuple = (-30.0, -10.0)              # aspiration noise re the harmonics (arousal 0 -> 1)
    formants_hz: tuple = ((900.0, 1300.0), (2600.0, 3500.0), (4500.0, 5600.0), (6200.0, 7400.0))
    formant_bandwidths_hz: tuple = ((150.0, 300.0), (200.0, 450.0), (300.0, 600.0), (400.0, 800.0))
    formant_spread: float = 0.06                   # per-phonation variation around the bout's formants
    # -- loudness --
    attack_s: tuple = (0.02, 0.10)
    release_s: tuple = (0.05, 0.20)
    phonation_db: tuple = (-4.0, 0.0)              # phonation-to-phonation level
    loudness_follows_f0: tuple = (0.0, 1.5)        # exponent: louder where the arch is higher
    inhalation_db: tuple = (-38.0, -22.0)          # unvoiced inspiration re the phonation's peak level
    voiced_inhalation_probability: float = 0.25
    voiced_inhalation_f0_hz: tuple = (500.0, 950.0)
    voiced_inhalation_db: tuple = (-20.0, -6.0)
    voiced_inhalation_s: tuple = (0.06, 0.20)
    peak_dbfs: tuple = (-6.0, -1.0)                # the bout's peak sample


CRY_PARAMETERS = CryParameters()


@dataclass(frozen=True)
class CrySegment:
    """A stretch of a bout: ``phonation``, ``inhalation``, ``voiced_inhalation`` (bout segments) or
    ``hyperphonation``, ``subharmonics``, ``biphonation``, ``voicing_break``, ``dysphonation`` (irregularities
    inside a phonation)."""

    onset_s: float
    offset_s: float
    kind: str


@dataclass
class CryBout:
    """A synthetic cry bout and its ground truth."""

    audio: np.ndarray                 # float32 mono in [-1, 1]
    sample_rate_hz: int
    segments: tuple                   # CrySegment: phonations and inhalations, in time order
    irregularities: tuple             # CrySegment: irregular phonation inside the phonations
    f0_hz: np.ndarray                 # float32 per sample: nominal f0 of the main voice, 0 where unvoiced
    arousal: float

    def phonations(self) -> list[CrySegment]:
        return [s for s in self.segments if s.kind == "phonation"]


# ---------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------

def _u(rng, r) -> float:
    return float(rng.uniform(r[0], r[1]))


def _lerp(r, a: float) -> float:
    return float(r[0] + (r[1] - r[0]) * a)


def _cosine_path(u: np.ndarray, knots_u, knots_v) -> np.ndarray:
    """Values through (knots_u, knots_v) with raised-cosine transitions (smooth, monotone between knots)."""
    ku, kv = np.asarray(knots_u, float), np.asarray(knots_v, float)
    i = np.clip(np.searchsorted(ku, u, side="right") - 1, 0, len(ku) - 2)
    s = np.clip((u - ku[i]) / (ku[i + 1] - ku[i]), 0.0, 1.0)
    return kv[i] + (kv[i + 1] - kv[i]) * 0.5 * (1.0 - np.cos(np.pi * s))


def _window(n: int, a: int, b: int, ramp: int) -> np.ndarray:
    """0 outside [a, b), 1 inside, raised-cosine ramps of ``ramp`` samples inside the edges."""
    w = np.zeros(n)
    a, b = max(0, a), min(n, b)
    if b <= a:
        return w
    w[a:b] = 1.0
    r = max(1, min(ramp, (b - a) // 2))
    ramp_up = 0.5 * (1.0 - np.cos(np.pi * (np.arange(r) + 0.5) / r))
    w[a:a + r] = ramp_up
    w[b - r:b] = ramp_up[::-1]
    return w


def _melody(rng, p: CryParameters, u: np.ndarray) -> np.ndarray:
    """An f0 contour as ratios of the phonation's level, over normalized time ``u`` in [0, 1)."""
    names = [m for m, _ in p.melody_weights]
    weights = np.array([w for _, w in p.melody_weights], float)
    kind = names[rng.choice(len(names), p=weights / weights.sum())]
    s, pk, e = _u(rng, p.arch_start), _u(rng, p.arch_peak), _u(rng, p.arch_end)
    if kind == "arch":
        x = _u(rng, p.arch_peak_position)
        return _cosine_path(u, (0.0, x, 1.0), (s, pk, e))
    if kind == "falling":
        x = rng.uniform(0.05, 0.15)
        return _cosine_path(u, (0.0, x, 1.0), (0.5 * (s + pk), pk, e))
    if kind == "rising":
        x = rng.uniform(0.7, 0.9)
        return _cosine_path(u, (0.0, x, 1.0), (s, pk, 0.5 * (pk + 1.0)))
    if kind == "double_arch":
        x1, x2 = rng.uniform(0.15, 0.35), rng.uniform(0.6, 0.8)
        valley = rng.uniform(0.85, 0.97) * min(pk, 1.0)
        return _cosine_path(u, (0.0, x1, 0.5 * (x1 + x2), x2, 1.0), (s, pk, valley, pk * rng.uniform(0.9, 1.05), e))
    return _cosine_path(u, (0.0, 0.15, 0.85, 1.0), (s, 1.0, rng.uniform(0.95, 1.05), e))  # flat


def _slow_wander(rng, t: np.ndarray, extent: float) -> np.ndarray:
    """A smooth random relative deviation of about +-``extent``: three slow sinusoids (0.3-3 Hz)."""
    out = np.zeros_like(t)
    for _ in range(3):
        out += np.sin(2 * np.pi * rng.uniform(0.3, 3.0) * t + rng.uniform(0, 2 * np.pi))
    return extent * out / 3.0


def _soft_limits(f: np.ndarray, lo: float, hi: float, knee: float = 10.0) -> np.ndarray:
    """``f`` kept inside (lo, hi) by softplus knees ``knee`` Hz wide (no flat plateau at a limit)."""
    f = lo + knee * np.logaddexp(0.0, (f - lo) / knee)
    return hi - knee * np.logaddexp(0.0, (hi - f) / knee)


def _per_cycle(values: np.ndarray, cycles: np.ndarray) -> np.ndarray:
    """Per-cycle random values, linearly interpolated along the running cycle count ``cycles``."""
    return np.interp(cycles, np.arange(len(values)), values)


def _harmonics(phase: np.ndarray, f_inst: np.ndarray, fs: int, tilt_exponent: float) -> np.ndarray:
    """sum_k k**-tilt_exponent * sin(k * phase), each harmonic faded out as it nears 0.475 * fs (no aliasing)."""
    top = 0.475 * fs
    kmax = int(top / max(float(f_inst.min()), 50.0)) + 1
    out = np.zeros_like(phase)
    for k in range(1, kmax + 1):
        w = np.clip((top - k * f_inst) / (0.025 * fs), 0.0, 1.0)
        if not w.any():
            break
        out += (k ** -tilt_exponent) * w * np.sin(k * phase)
    return out


def _formant_filter(x: np.ndarray, fs: int, formants, bandwidths) -> np.ndarray:
    """Cascade of two-pole resonators (Klatt's digital resonator, unity gain at 0 Hz); formants at or above
    0.45 * fs are left out."""
    y = x
    for f, bw in zip(formants, bandwidths):
        if f >= 0.45 * fs:
            continue
        c = -np.exp(-2 * np.pi * bw / fs)
        b = 2 * np.exp(-np.pi * bw / fs) * np.cos(2 * np.pi * f / fs)
        y = signal.lfilter([1.0 - b - c], [1.0, -b, -c], y)
    return y


def _tract(rng, p: CryParameters, bout_formants, bout_bandwidths):
    k = 1.0 + p.formant_spread * rng.uniform(-1, 1, len(bout_formants))
    return bout_formants * k, bout_bandwidths * (1.0 + 0.2 * rng.uniform(-1, 1, len(bout_bandwidths)))


def _irregular_span(rng, n: int, fs: int, length_s) -> tuple[int, int]:
    """A span inside a phonation of ``n`` samples, away from its edges."""
    m = min(int(_u(rng, length_s) * fs), int(0.6 * n))
    lo, hi = int(0.15 * n), max(int(0.15 * n) + 1, int(0.85 * n) - m)
    a = int(rng.integers(lo, hi))
    return a, a + m


def _phonation(rng, p: CryParameters, fs: int, n: int, f0_level: float, arousal: float, tract, tilt_exponent,
               breath_db: float):
    """One expiratory phonation: (audio, nominal f0 per sample, irregularities as (kind, a, b) sample spans).
    The audio is ``n`` samples plus a 30 ms filter tail."""
    t = np.arange(n) / fs
    u = np.arange(n) / n
    contour = _melody(rng, p, u)
    f0 = f0_level * contour * (1.0 + _slow_wander(rng, t, _u(rng, p.drift_extent)))
    f0 *= 1.0 + _u(rng, p.vibrato_extent) * np.sin(2 * np.pi * _u(rng, p.vibrato_hz) * t + rng.uniform(0, 6.3))
    f0 = _soft_limits(f0, *p.f0_limits_hz)
    events = []

    def happens(prob) -> bool:
        return bool(rng.random() < _lerp(prob, arousal))

    ramp = int(0.015 * fs)
    if happens(p.hyperphonation_probability):
        a, b = _irregular_span(rng, n, fs, p.hyperphonation_s)
        target = _u(rng, p.hyperphonation_f0_hz) * (1.0 + 0.03 * np.sin(np.pi * (np.arange(n) - a) / max(1, b - a)))
        w = _window(n, a, b, int(rng.uniform(0.01, 0.03) * fs))
        f0 = f0 * (1 - w) + np.minimum(target, p.hyperphonation_f0_hz[1]) * w
        events.append(("hyperphonation", a, b))

    # jitter: each glottal cycle gets its own small frequency error; shimmer: its own amplitude
    cycles0 = np.cumsum(f0) / fs
    n_cycles = int(cycles0[-1]) + 2
    jit = rng.normal(0.0, _u(rng, p.jitter), n_cycles)
    f_inst = f0 * (1.0 + jit[np.minimum(cycles0.astype(np.int64), n_cycles - 1)])
    cycles = np.cumsum(f_inst) / fs
    phase = 2 * np.pi * cycles + rng.uniform(0, 2 * np.pi)
    shim = np.clip(1.0 + rng.normal(0.0, _u(rng, p.shimmer), int(cycles[-1]) + 2), 0.3, None)
    voiced = _harmonics(phase, f_inst, fs, tilt_exponent) * _per_cycle(shim, cycles)

    if happens(p.subharmonic_probability):  # period doubling: every other cycle weaker
        a, b = _irregular_span(rng, n, fs, p.subharmonic_s)
        voiced *= 1.0 + _u(rng, p.subharmonic_depth) * _window(n, a, b, ramp) * np.cos(phase / 2)
        events.append(("subharmonics", a, b))
    if happens(p.biphonation_probability):  # a second, unrelated fundamental
        a, b = _irregular_span(rng, n, fs, p.biphonation_s)
        ratio = _u(rng, p.biphonation_ratio) * (1.0 + _slow_wander(rng, t, 0.02))
        f2 = f_inst * ratio
        ph2 = 2 * np.pi * np.cumsum(f2) / fs + rng.uniform(0, 2 * np.pi)
        gain = 10 ** (_u(rng, p.biphonation_db) / 20) * _window(n, a, b, ramp)
        voiced += gain * _harmonics(ph2, f2, fs, tilt_exponent)
        events.append(("biphonation", a, b))

    voice_gain = np.ones(n)
    noise_gain = np.ones(n)
    if happens(p.dysphonation_probability):  # turbulent: harmonics weaker, noise near their level
        a, b = _irregular_span(rng, n, fs, p.dysphonation_s)
        w = _window(n, a, b, ramp)
        voice_gain *= 1.0 - rng.uniform(0.4, 0.7) * w
        noise_gain *= 1.0 + (10 ** (rng.uniform(-4.0, 0.0) / 20) / 10 ** (breath_db / 20) - 1.0) * w
        events.append(("dysphonation", a, b))
    if happens(p.voicing_break_probability):  # voicing stops briefly, breath goes on
        a, b = _irregular_span(rng, n, fs, p.voicing_break_s)
        voice_gain *= 1.0 - 0.97 * _window(n, a, b, int(0.004 * fs))
        events.append(("voicing_break", a, b))

    level = np.sqrt(np.mean(voiced ** 2)) + 1e-12
    aspiration = rng.standard_normal(n) * (0.6 + 0.4 * np.cos(phase))  # pulsed with the glottal cycle
    aspiration *= level * 10 ** (breath_db / 20)
    src = voiced * voice_gain + aspiration * noise_gain

    # loudness: attack, release, partly following the arch
    env = (contour / contour.max()) ** _u(rng, p.loudness_follows_f0)
    env *= _window(n, 0, n, 1)
    na, nr = int(_u(rng, p.attack_s) * fs), int(_u(rng, p.release_s) * fs)
    na, nr = max(1, min(na, n // 3)), max(1, min(nr, n // 3))
    env[:na] *= 0.5 * (1 - np.cos(np.pi * np.arange(na) / na))
    env[n - nr:] *= 0.5 * (1 + np.cos(np.pi * np.arange(nr) / nr))
    tail = int(0.03 * fs)
    x = np.concatenate([src * env, np.zeros(tail)])
    x = _formant_filter(x, fs, *tract)
    f0_track = np.where(voice_gain > 0.5, f_inst, 0.0)
    return x, f0_track, events


def _inhalation(rng, p: CryParameters, fs: int, n: int, tract) -> np.ndarray:
    """Unvoiced inspiratory noise: band-passed, shaped by the tract, a skewed rise-fall envelope (peak 1)."""
    lo, hi = rng.uniform(400, 1500), min(rng.uniform(3000, 6500), 0.45 * fs)
    sos = signal.butter(2, [lo, hi], "bandpass", fs=fs, output="sos")
    x = signal.sosfilt(sos, rng.standard_normal(n + int(0.02 * fs)))[-n:]
    x = _formant_filter(x, fs, tract[0] * rng.uniform(0.9, 1.1), tract[1] * 1.5)
    u = np.arange(n) / n
    peak = rng.uniform(0.3, 0.7)
    env = np.where(u < peak, np.sin(0.5 * np.pi * u / peak), np.cos(0.5 * np.pi * (u - peak) / (1 - peak)))
    return x * env / (np.max(np.abs(x)) + 1e-12)


def _voiced_inhalation(rng, p: CryParameters, fs: int, n: int, tract, tilt_exponent) -> tuple[np.ndarray, np.ndarray]:
    """Inspiratory phonation (stridor): short, high, rough. Returns (audio with peak 1, f0 per sample)."""
    t = np.arange(n) / fs
    f0 = _u(rng, p.voiced_inhalation_f0_hz) * (1.0 + rng.uniform(-0.1, 0.15) * t / max(t[-1], 1e-3))
    f0 *= 1.0 + 0.01 * _per_cycle(rng.standard_normal(int(t[-1] * 1000) + 2), t * 1000)  # rough: 1 ms wander
    f_inst = _soft_limits(f0, *p.voiced_inhalation_f0_hz)
    phase = 2 * np.pi * np.cumsum(f_inst) / fs
    x = _harmonics(phase, f_inst, fs, tilt_exponent + 0.3)
    x += 0.3 * np.sqrt(np.mean(x ** 2)) * rng.standard_normal(n)
    x = _formant_filter(x * np.sin(np.pi * (np.arange(n) + 0.5) / n), fs, *tract)
    return x / (np.max(np.abs(x)) + 1e-12), f_inst


# ---------------------------------------------------------------------------
# Bouts, and the recipe's generator contract
# ---------------------------------------------------------------------------

def generate_cry_bout(rng, sample_rate_hz: int = RATE, duration_s: float | None = None,
                      params: CryParameters = CRY_PARAMETERS, arousal: float | None = None) -> CryBout:
    """A cry bout of ``duration_s`` seconds (drawn from ``params.bout_s`` when None) with its ground truth.

    The bout starts with a phonation at 0 s and alternates phonations and inspirations.  A phonation that
    would run past the end is cut to fit when at least ``params.phonation_s[0]`` remains (its release moves
    with it) and left out otherwise, so a bout may end in silence; an inspiration is placed only when a
    phonation can follow it.  A bout shorter than ``phonation_s[0]`` holds one phonation of its length (none, and
    so silence, under 50 ms).
    ``arousal`` (0 calm ... 1 pain-like) is drawn uniformly when None.
    """
    rng = np.random.default_rng(rng)
    p = params
    fs = int(sample_rate_hz)
    if fs < 8000:
        raise ValueError(f"sample_rate_hz={fs} must be >= 8000 (formants reach 5.6 kHz)")
    dur = _u(rng, p.bout_s) if duration_s is None else float(duration_s)
    if not dur > 0:
        raise ValueError(f"duration_s={duration_s} must be > 0")
    n = max(1, int(round(dur * fs)))
    a = float(rng.uniform(0, 1)) if arousal is None else float(np.clip(arousal, 0, 1))
    f0_ref = _lerp(p.f0_reference_hz, float(np.clip(a + rng.normal(0, 0.15), 0, 1)))
    tilt_exponent = -_lerp(p.tilt_db_per_octave, a) / (20 * np.log10(2))
    breath = _lerp(p.breath_db, float(np.clip(a + rng.normal(0, 0.2), 0, 1)))
    formants = np.array([_u(rng, r) for r in p.formants_hz])
    bandwidths = np.array([_u(rng, r) for r in p.formant_bandwidths_hz])

    out = np.zeros(n + int(0.05 * fs))
    f0_out = np.zeros(n + int(0.05 * fs))
    segments, irregular = [], []
    t = 0.0
    min_ph = p.phonation_s[0]
    while True:
        remaining = dur - t
        if remaining < min_ph and segments:
            break
        d = min(_u(rng, p.phonation_s), remaining)
        i0, m = int(round(t * fs)), int(round(d * fs))
        if m < int(0.05 * fs):
            break
        tract = _tract(rng, p, formants, bandwidths)
        f0_level = f0_ref * (1.0 + p.f0_phonation_spread * rng.uniform(-1, 1))
        x, f0_track, events = _phonation(rng, p, fs, m, f0_level, a, tract, tilt_exponent, breath)
        gain = 10 ** (_u(rng, p.phonation_db) / 20)
        peak_level = gain / (np.max(np.abs(x)) + 1e-12)
        out[i0:i0 + len(x)] += x[: len(out) - i0] * peak_level
        f0_out[i0:i0 + m] = f0_track[: len(f0_out) - i0]
        segments.append(CrySegment(i0 / fs, (i0 + m) / fs, "phonation"))
        irregular += [CrySegment((i0 + e0) / fs, (i0 + e1) / fs, kind) for kind, e0, e1 in events]
        t += d
        # the inspiration (or a longer pause ending in one)
        gap = _u(rng, p.pre_inhalation_gap_s)
        if rng.random() < p.pause_probability:
            gap += _u(rng, p.pause_s)
        voiced = rng.random() < p.voiced_inhalation_probability
        d_in = _u(rng, p.voiced_inhalation_s if voiced else p.inhalation_s)
        post = _u(rng, p.post_inhalation_gap_s)
        if t + gap + d_in + post + min_ph > dur:
            break
        j0, k = int(round((t + gap) * fs)), int(round(d_in * fs))
        if voiced:
            y, f_in = _voiced_inhalation(rng, p, fs, k, tract, tilt_exponent)
            y *= gain * 10 ** (_u(rng, p.voiced_inhalation_db) / 20)
            f0_out[j0:j0 + k] = f_in
        else:
            y = _inhalation(rng, p, fs, k, tract) * gain * 10 ** (_u(rng, p.inhalation_db) / 20)
        out[j0:j0 + k] += y
        segments.append(CrySegment(j0 / fs, (j0 + k) / fs, "voiced_inhalation" if voiced else "inhalation"))
        t += gap + d_in + post

    out = out[:n]
    sos = signal.butter(2, 80.0, "highpass", fs=fs, output="sos")  # no DC or rumble from the resonators
    out = signal.sosfilt(sos, out)
    out *= 10 ** (_u(rng, p.peak_dbfs) / 20) / (np.max(np.abs(out)) + 1e-12)
    return CryBout(audio=np.clip(out, -1.0, 1.0).astype(np.float32), sample_rate_hz=fs, segments=tuple(segments),
                   irregularities=tuple(irregular), f0_hz=f0_out[:n].astype(np.float32), arousal=a)


def generate_cry(rng, sample_rate_hz: int = RATE, duration_s: float | None = None,
                 params: CryParameters = CRY_PARAMETERS) -> np.ndarray:
    """float32 mono cry bout in [-1, 1] (see :func:`generate_cry_bout`)."""
    return generate_cry_bout(rng, sample_rate_hz, duration_s, params).audio


def cry_mask(bout: CryBout, n: int | None = None, merge_gap_s: float = 1.0) -> np.ndarray:
    """bool per sample where the cry "sounds" for labelling: phonations, and everything between two phonations
    less than ``merge_gap_s`` apart (the inspirations of a running cry); long pauses stay False."""
    fs = bout.sample_rate_hz
    n = len(bout.audio) if n is None else n
    mask = np.zeros(n, bool)
    ph = bout.phonations()
    for k, s in enumerate(ph):
        end = s.offset_s
        if k + 1 < len(ph) and ph[k + 1].onset_s - s.offset_s < merge_gap_s:
            end = ph[k + 1].onset_s
        mask[int(round(s.onset_s * fs)):int(round(end * fs))] = True
    return mask


def generate(rng, seconds: float, params: CryParameters = CRY_PARAMETERS) -> tuple[np.ndarray, np.ndarray]:
    """(dry cry at 16 kHz, mask): ``common.ClassConfig.generate``.  A bout starts anywhere from 4 s before
    the scene to 60 % into it (so scenes may open mid-cry), and may stop before the scene ends; the mask is
    :func:`cry_mask` (phonations and the inspirations between them)."""
    n = int(seconds * RATE)
    start = rng.uniform(-4.0, 0.6 * seconds)
    length = _u(rng, params.bout_s)
    if start + length < 0.5:
        length = 0.5 - start + rng.uniform(0.5, 2.0)
    bout = generate_cry_bout(rng, RATE, length, params)
    x = np.zeros(n, np.float32)
    mask = np.zeros(n, bool)
    m = cry_mask(bout)
    i0 = int(round(start * RATE))
    lo, hi = max(i0, 0), min(i0 + len(bout.audio), n)
    if hi > lo:
        x[lo:hi] = bout.audio[lo - i0:hi - i0]
        mask[lo:hi] = m[lo - i0:hi - i0]
    return x, mask


def hard_negatives(rng, seconds: float) -> np.ndarray:
    """Synthetic non-cry sound that shares parts of a cry's description, for ``ClassConfig.hard_negatives``:
    speech-like syllables at adult and child pitch (90-280 Hz, 0.08-0.35 s, adult formants), or steady and
    siren-like tones in the cry's f0 range (no jitter, no arch, no inspirations)."""
    n = int(seconds * RATE)
    x = np.zeros(n)
    if rng.random() < 0.6:
        p = CryParameters(f0_limits_hz=(80.0, 320.0), jitter=(0.002, 0.006), subharmonic_probability=(0.0, 0.0),
                          hyperphonation_probability=(0.0, 0.0), biphonation_probability=(0.0, 0.0))
        formants = (_u(rng, (450, 800)), _u(rng, (1100, 2000)), _u(rng, (2400, 3000)), _u(rng, (3300, 4200)))
        tract = (np.array(formants), np.array([80.0, 120.0, 180.0, 250.0]))
        f0_level = rng.uniform(90, 280)
        t = rng.uniform(0, 0.5)
        while t < seconds - 0.1:
            m = int(rng.uniform(0.08, 0.35) * RATE)
            i0 = int(t * RATE)
            y, _, _ = _phonation(rng, p, RATE, m, f0_level * rng.uniform(0.85, 1.15), 0.2, tract, 1.8, -25.0)
            y = y[: n - i0]
            x[i0:i0 + len(y)] += y / (np.max(np.abs(y)) + 1e-12) * rng.uniform(0.3, 1.0)
            t += m / RATE + rng.uniform(0.03, 0.25) + (rng.uniform(0.3, 1.0) if rng.random() < 0.15 else 0.0)
    else:
        t_s = np.arange(n) / RATE
        f0 = rng.uniform(300, 1000)
        if rng.random() < 0.5:  # siren: a slow sweep up and down
            f = f0 * (1.0 + rng.uniform(0.2, 0.6) * (0.5 - 0.5 * np.cos(2 * np.pi * t_s / rng.uniform(1.5, 6.0))))
        else:                   # steady tones (instruments, appliances) with random lengths and gaps
            f = np.full(n, f0)
        phase = 2 * np.pi * np.cumsum(f) / RATE
        x = _harmonics(phase, f, RATE, rng.uniform(0.8, 2.5))
        if rng.random() < 0.5:
            on = np.zeros(n)
            t = 0.0
            while t < seconds:
                d = rng.uniform(0.2, 2.0)
                on += _window(n, int(t * RATE), int((t + d) * RATE), int(0.01 * RATE))
                t += d + rng.uniform(0.1, 1.0)
            x *= on
    peak = np.max(np.abs(x))
    return (x * (0.5 / peak) if peak > 0 else x).astype(np.float32)


# ---------------------------------------------------------------------------
# The recipe's class definition (``python examples/training/recipe.py baby_cry ...``)
# ---------------------------------------------------------------------------

REAL_CLIP = "scratch/usr/share/scratch/Media/Sounds/Human/BabyCry.mp3"  # under the training DEST's x/


def real_clip_scenes(out_dir: Path, data: Path | None, backgrounds, mics, rng, n: int = 30) -> list[dict]:
    """The one real cry recording (reserved, never trained on) placed in ``n`` held-out backgrounds: 6-12 s
    of background, the clip at 0..20 dB SNR through a held-out microphone, background again.  All ``n`` scenes
    hold the SAME 2.6 s recording: the result says whether this one cry is found in many backgrounds, not a
    recall estimate.  Nothing is written when ``data`` is None or the recording is missing."""
    import common
    import soundfile as sf

    if data is None or not (data / "x" / REAL_CLIP).exists():
        return []
    x, rate = sf.read(str(data / "x" / REAL_CLIP), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    g = np.gcd(rate, RATE)
    cry = signal.resample_poly(x, RATE // g, rate // g).astype(np.float32)
    segs = bursts(cry, RATE)
    on_s, off_s = segs[0][0], segs[-1][1]
    out_dir.mkdir(parents=True, exist_ok=True)
    items = []
    for k in range(n):
        pre, post = rng.uniform(6.0, 12.0), rng.uniform(6.0, 12.0)
        bg = common.background(backgrounds, pre + len(cry) / RATE + post, rng)
        a = int(pre * RATE)
        event = np.zeros(len(bg), np.float32)
        event[a:a + len(cry)] = cry[: len(bg) - a]
        bg_rms = common.rms(bg) if np.any(bg) else 1e-4
        mix = bg + event * (bg_rms * 10 ** (rng.uniform(0.0, 20.0) / 20) / common.rms(cry))
        mix = signal.sosfilt(mics[rng.integers(len(mics))], mix).astype(np.float32)
        audio = common.to_int16(common.scale_to_dbfs(mix, rng.uniform(-38, -12)))
        name = out_dir / f"real_cry_{k:03d}.wav"
        sf.write(name, audio, RATE, subtype="PCM_16")
        ref = name.with_suffix(".tsv")
        ref.write_text(f"{pre + on_s:.3f}\t{pre + off_s:.3f}\t{LABEL}\n")
        items.append({"audio": str(name), "labels": str(ref), "category": "real-cry-one-recording",
                      "source": "scratch BabyCry.mp3 in " + "+".join(sorted({c.package for c in backgrounds})),
                      "positives": "real"})
    return items


def _config():
    import common

    return common.ClassConfig(
        label=LABEL, generate=generate, hard_negatives=hard_negatives, window_frames=100, stride_frames=8,
        min_active_s=0.4, channels=(16, 32, 48, 48), extra_eval=real_clip_scenes,
        min_duration_choices_ms=(384, 1024, 2048),  # the validation packages choose
        decision={"on_threshold": 0.8, "off_threshold": 0.5, "smoothing_ms": 384, "min_duration_ms": 384,
                  "merge_gap_ms": 4000, "refractory_ms": 0},
    )


def __getattr__(name):  # CONFIG on demand: the synthesizer itself needs neither the recipe nor sed_runtime
    if name == "CONFIG":
        return _config()
    raise AttributeError(name)


DESCRIPTION = "infant cry; trained on synthetic cries in real backgrounds, see models/baby_cry.md"


# ---------------------------------------------------------------------------
# Measuring cries (synthetic or real): bursts, f0, spectral centroid
# ---------------------------------------------------------------------------

def envelope_db(x: np.ndarray, fs: int, frame_s: float = 0.02, hop_s: float = 0.01) -> np.ndarray:
    """RMS level in dB of ``frame_s`` frames every ``hop_s`` (frame k centred at k * hop_s + frame_s / 2)."""
    w, h = int(frame_s * fs), int(hop_s * fs)
    if len(x) < w:
        return np.zeros(0)
    frames = np.lib.stride_tricks.sliding_window_view(np.asarray(x, np.float64), w)[::h]
    return 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)


def bursts(x: np.ndarray, fs: int, below_db: float = 15.0, merge_gap_s: float = 0.08, min_s: float = 0.05,
           hop_s: float = 0.01, frame_s: float = 0.02) -> list[tuple[float, float]]:
    """Loud stretches: frames within ``below_db`` of the recording's 95th-percentile frame level, gaps shorter
    than ``merge_gap_s`` bridged (voicing breaks, glottal stops), stretches shorter than ``min_s`` dropped.
    Times in seconds (frame centres)."""
    e = envelope_db(x, fs, frame_s, hop_s)
    if not len(e):
        return []
    on = e > np.percentile(e, 95) - below_db
    edges = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(np.int8), [0]])))
    runs = [[a, b] for a, b in zip(edges[::2], edges[1::2])]
    merged = []
    for a, b in runs:
        if merged and (a - merged[-1][1]) * hop_s < merge_gap_s:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    c = frame_s / 2
    return [(a * hop_s + c, b * hop_s + c) for a, b in merged if (b - a) * hop_s >= min_s]


def yin_f0(x: np.ndarray, fs: int, fmin_hz: float = 150.0, fmax_hz: float = 1300.0, hop_s: float = 0.01,
           window_s: float = 0.03, threshold: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """(f0 Hz per frame, 0 where unvoiced; aperiodicity per frame) by YIN (de Cheveigné & Kawahara 2002):
    cumulative-mean-normalized difference, first dip under ``threshold`` (else unvoiced), parabolic
    interpolation.  Frame k starts at k * hop_s.  The signal is low-passed at 3 kHz first: with a cry's strong
    high harmonics, a whole-sample lag mismatches one period more than two and YIN would halve f0."""
    x = signal.sosfiltfilt(signal.butter(6, min(3000.0, 0.4 * fs), "lowpass", fs=fs, output="sos"),
                           np.asarray(x, np.float64))
    w, h = int(window_s * fs), int(hop_s * fs)
    tmin, tmax = max(2, int(fs / fmax_hz)), int(np.ceil(fs / fmin_hz))
    if len(x) < w + tmax + 1:
        return np.zeros(0), np.zeros(0)
    frames = np.lib.stride_tricks.sliding_window_view(x, w + tmax + 1)[::h]
    d = np.zeros((len(frames), tmax + 1))
    for tau in range(1, tmax + 1):
        diff = frames[:, :w] - frames[:, tau:tau + w]
        d[:, tau] = np.einsum("ij,ij->i", diff, diff)
    cum = np.cumsum(d[:, 1:], axis=1) / np.arange(1, tmax + 1)
    cmnd = np.ones_like(d)
    cmnd[:, 1:] = d[:, 1:] / np.maximum(cum, 1e-12)
    f0 = np.zeros(len(frames))
    aper = np.ones(len(frames))
    for i, row in enumerate(cmnd):
        below = np.flatnonzero(row[tmin:tmax] < threshold)
        if not len(below):
            aper[i] = float(row[tmin:tmax].min())
            continue
        tau = tmin + int(below[0])
        while tau + 1 < tmax and row[tau + 1] < row[tau]:
            tau += 1
        a, b, c = row[tau - 1], row[tau], row[tau + 1]
        den = a - 2 * b + c
        shift = 0.5 * (a - c) / den if abs(den) > 1e-12 else 0.0
        f0[i] = fs / (tau + float(np.clip(shift, -1, 1)))
        aper[i] = float(b)
    return f0, aper


def spectral_centroid_hz(x: np.ndarray, fs: int, n_fft: int = 512, hop: int = 160) -> np.ndarray:
    """Power-weighted mean frequency of each Hann-windowed frame."""
    if len(x) < n_fft:
        return np.zeros(0)
    frames = np.lib.stride_tricks.sliding_window_view(np.asarray(x, np.float64), n_fft)[::hop]
    p = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2
    f = np.fft.rfftfreq(n_fft, 1.0 / fs)
    return (p @ f) / np.maximum(p.sum(axis=1), 1e-20)


def cry_statistics(x: np.ndarray, fs: int) -> dict:
    """A few acoustic statistics of a cry recording: bursts and the gaps between them (from the envelope,
    :func:`bursts`), f0 of the voiced frames inside bursts (YIN), the position of each burst's f0 maximum
    (arched melodies peak inside), the spectral centroid of the frames inside bursts."""
    hop = 0.01
    b = bursts(x, fs, hop_s=hop)
    f0, _ = yin_f0(x, fs, hop_s=hop)
    centres = np.arange(len(f0)) * hop + 0.015
    inside = np.zeros(len(f0), bool)
    peak_pos = []
    for a, e in b:
        sel = (centres >= a) & (centres < e)
        inside |= sel
        v = f0[sel]
        if e - a >= 0.3 and np.count_nonzero(v) >= 10:
            idx = np.flatnonzero(v)
            smooth = np.convolve(v[idx], np.ones(5) / 5, mode="same")
            peak_pos.append(float(idx[np.argmax(smooth[2:-2]) + 2]) / len(v))
    voiced = f0[inside & (f0 > 0)]
    sc = spectral_centroid_hz(x, fs)
    sc_t = np.arange(len(sc)) * 160 / fs + 256 / fs
    sc_in = sc[np.array([any(a <= t < e for a, e in b) for t in sc_t], bool)] if len(sc) else sc
    long_b = [e - a for a, e in b]
    gaps = [b[k + 1][0] - b[k][1] for k in range(len(b) - 1)]

    def q(v, pct):
        return float(np.percentile(v, pct)) if len(v) else float("nan")

    return {
        "duration_s": len(x) / fs,
        "bursts": len(b),
        "burst_s": long_b,
        "gap_s": gaps,
        "voiced_fraction": float(len(voiced) / max(1, np.count_nonzero(inside))),
        "f0_median_hz": q(voiced, 50),
        "f0_p5_hz": q(voiced, 5),
        "f0_p95_hz": q(voiced, 95),
        "f0_peak_position": float(np.median(peak_pos)) if peak_pos else float("nan"),
        "centroid_median_hz": q(sc_in, 50),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Write a synthetic infant cry to a WAV file (listening aid).")
    ap.add_argument("--out", type=Path, required=True, help="WAV file to write")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the cry bout")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rate", type=int, default=RATE, help="sample rate in Hz")
    ap.add_argument("--arousal", type=float, default=None, help="0 calm ... 1 pain-like (default: drawn)")
    args = ap.parse_args(argv)
    import soundfile as sf

    bout = generate_cry_bout(np.random.default_rng(args.seed), args.rate, args.seconds, arousal=args.arousal)
    sf.write(str(args.out), bout.audio, args.rate, subtype="PCM_16")
    ph = bout.phonations()
    voiced = bout.f0_hz[bout.f0_hz > 0]
    kinds = sorted({s.kind for s in bout.irregularities})
    print(f"{args.out}: {len(bout.audio) / args.rate:.2f} s, arousal {bout.arousal:.2f}, {len(ph)} phonations "
          f"({', '.join(f'{s.offset_s - s.onset_s:.2f}' for s in ph)} s), nominal f0 median "
          f"{np.median(voiced):.0f} Hz, irregular: {', '.join(kinds) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
