"""Smoke / CO alarm detector: synthetic piezo alarm patterns (T3, T4) in real backgrounds -> models/smoke_alarm.onnx.

Full recipe (by hand, CPU; the command in models/smoke_alarm.md), ``recipe.py`` with this module:

    python examples/training/recipe.py smoke_alarm --data ~/.cache/sed_runtime/training_audio \\
        --work ~/.cache/sed_runtime/smoke_alarm --out models/smoke_alarm.onnx

``python examples/training/smoke_alarm.py ...`` is the same.  ``--fixture`` runs the whole pipeline on about a
minute of generated audio (the CI test).

Positives are synthetic: no real smoke-alarm recording exists in the registries this project draws on.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RATE, ClassConfig  # noqa: E402

LABEL = "smoke_alarm"


# ---------------------------------------------------------------------------
# The positive generator: ISO 8201 / NFPA 72 temporal patterns of a piezo horn
# ---------------------------------------------------------------------------

def _pattern(kind: str, rng) -> list[tuple[float, float]]:
    """One cycle of (on_s, off_s) pairs, with the tolerances real alarms show (about +-10 %)."""
    j = lambda v: v * rng.uniform(0.9, 1.1)  # noqa: E731
    if kind == "T3":  # three 0.5 s beeps 0.5 s apart, then 1.5 s of silence
        return [(j(0.5), j(0.5)), (j(0.5), j(0.5)), (j(0.5), j(1.5))]
    # T4 (carbon monoxide): four 0.1 s beeps 0.1 s apart, then 5 s of silence
    return [(j(0.1), j(0.1))] * 3 + [(j(0.1), j(5.0))]


def _tone(n: int, rng, f0: float) -> np.ndarray:
    """A piezo tone: fundamental with slow drift and slight vibrato, a 2nd harmonic, a little buzz."""
    t = np.arange(n) / RATE
    drift = f0 * (1 + rng.uniform(-0.004, 0.004) * t / max(t[-1], 1e-3) + rng.uniform(0.0005, 0.003)
                  * np.sin(2 * np.pi * rng.uniform(3, 12) * t + rng.uniform(0, 6.3)))
    phase = 2 * np.pi * np.cumsum(drift) / RATE
    x = np.sin(phase)
    if 2 * f0 < RATE / 2 - 200:
        x += 10 ** (rng.uniform(-30, -8) / 20) * np.sin(2 * phase + rng.uniform(0, 6.3))
    x += 10 ** (rng.uniform(-40, -20) / 20) * rng.standard_normal(n)  # driver buzz / roughness
    return x.astype(np.float32)


def _envelope(n: int, rng) -> np.ndarray:
    a, r = int(rng.uniform(0.002, 0.012) * RATE), int(rng.uniform(0.004, 0.025) * RATE)
    e = np.ones(n, np.float32)
    a, r = min(a, n // 3), min(r, n // 3)
    if a:
        e[:a] = np.linspace(0, 1, a)
    if r:
        e[-r:] = np.linspace(1, 0, r)
    return e


def generate(rng, seconds: float):
    """(dry alarm, mask): a T3 or T4 alarm starting anywhere in the scene (possibly before it), 2.9-3.5 kHz."""
    n = int(seconds * RATE)
    x, mask = np.zeros(n, np.float32), np.zeros(n, bool)
    kind = "T3" if rng.random() < 0.6 else "T4"
    f0 = rng.uniform(2900, 3500)
    t = rng.uniform(-3.0, seconds * 0.6)
    while t < seconds:
        for on, off in _pattern(kind, rng):
            a, b = int(t * RATE), int((t + on) * RATE)
            if b > 0 and a < n:
                beep = _tone(b - a, rng, f0 * rng.uniform(0.998, 1.002)) * _envelope(b - a, rng)
                lo, hi = max(a, 0), min(b, n)
                x[lo:hi] += beep[lo - a:hi - a]
                mask[lo:hi] = True
            t += on + off
    return x, mask


def hard_negatives(rng, seconds: float) -> np.ndarray:
    """Synthetic non-alarm beeps: out-of-band tones with alarm-like or other timing, and in-band tones with
    timing no T3/T4 alarm has (clicks, trills, long tones)."""
    n = int(seconds * RATE)
    x = np.zeros(n, np.float32)
    kind = rng.integers(4)
    if kind == 0:    # an alarm pattern, wrong pitch
        f0 = rng.choice([rng.uniform(500, 2500), rng.uniform(3900, 7000)])
        y, _ = generate(rng, seconds)
        return _retune(y, f0, rng, seconds)
    f0 = rng.uniform(400, 7000) if kind != 3 else rng.uniform(2900, 3500)
    t = rng.uniform(0, 1.0)
    while t < seconds:
        if kind == 1:    # UI / appliance beeps: random lengths and gaps
            on, off = rng.uniform(0.05, 0.4), rng.uniform(0.05, 1.0)
        elif kind == 2:  # trills
            on, off = rng.uniform(0.015, 0.04), rng.uniform(0.015, 0.04)
        else:            # in band: long tones or very short chirps
            on, off = (rng.uniform(2.0, 4.0), rng.uniform(0.5, 2.0)) if rng.random() < 0.5 else \
                (rng.uniform(0.01, 0.05), rng.uniform(0.3, 1.5))
        a, b = int(t * RATE), min(int((t + on) * RATE), n)
        if b > a:
            x[a:b] += _tone(b - a, rng, f0) * _envelope(b - a, rng)
        t += on + off
    return x


def _retune(y: np.ndarray, f0: float, rng, seconds: float) -> np.ndarray:
    on = np.abs(y) > 1e-3
    t = np.arange(len(y)) / RATE
    tone = np.sin(2 * np.pi * f0 * t).astype(np.float32)
    return tone * on.astype(np.float32)


CONFIG = ClassConfig(
    # a 2.56 s window holds a whole T3 triplet (2.5 s) or a T4 burst with its silence around it
    label=LABEL, generate=generate, hard_negatives=hard_negatives, window_frames=160, stride_frames=12,
    min_active_s=0.19, channels=(16, 32, 32, 48),
    # alarms sound for minutes (a T3 cycle is 4 s): the validation packages choose among these
    min_duration_choices_ms=(960, 1920, 3840),
    # alarms sound for minutes: an event needs 1 s of smoothed score above the threshold
    decision={"on_threshold": 0.8, "off_threshold": 0.5, "smoothing_ms": 576, "min_duration_ms": 960,
              "merge_gap_ms": 6000, "refractory_ms": 0},
)


DESCRIPTION = "smoke/CO alarm (T3/T4 piezo patterns); trained on synthetic positives, see models/smoke_alarm.md"


def main(argv=None) -> int:
    import recipe

    return recipe.run(CONFIG, DESCRIPTION, argv)


if __name__ == "__main__":
    sys.exit(main())
