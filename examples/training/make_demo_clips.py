"""Write the bundled demo clips of the example models (``sed_runtime/data/demo_<label>.wav``).

``sed-listen --fallback demo`` (and ``--input demo``) plays the clip named after the model's first label when one
exists, so a machine without a microphone still hears the shipped baby-cry and smoke-alarm models at work.  The
clips are generated here from the recipes' synthesizers in synthetic room noise (no third-party audio), so they
carry this project's license; regenerate them with

    python examples/training/make_demo_clips.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

sys.path.insert(0, str(Path(__file__).resolve().parent))
import baby_cry  # noqa: E402
import smoke_alarm  # noqa: E402

RATE = 16000
OUT = Path(__file__).resolve().parents[2] / "sed_runtime" / "data"


def room_noise(rng, seconds: float) -> np.ndarray:
    """Pink-ish noise with a little mains hum: a quiet room, about -50 dBFS."""
    n = int(seconds * RATE)
    white = rng.standard_normal(n)
    pink = signal.lfilter([0.049922035, -0.095993537, 0.050612699, -0.004408786],
                          [1, -2.494956002, 2.017265875, -0.522189400], white)
    hum = 0.2 * np.sin(2 * np.pi * 50 * np.arange(n) / RATE)
    x = pink / np.std(pink) + hum
    return (x * 10 ** (-50 / 20)).astype(np.float32)


def place(noise: np.ndarray, event: np.ndarray, start_s: float, level_dbfs: float) -> np.ndarray:
    out = noise.copy()
    a = int(start_s * RATE)
    ev = event[: len(out) - a]
    peak = float(np.max(np.abs(ev))) or 1.0
    out[a:a + len(ev)] += ev * (10 ** (level_dbfs / 20) / peak)
    return out


def write(name: str, x: np.ndarray) -> None:
    path = OUT / name
    sf.write(str(path), np.clip(np.rint(x * 32768), -32768, 32767).astype(np.int16), RATE, subtype="PCM_16")
    print(f"{path.relative_to(OUT.parents[1])}: {len(x) / RATE:.1f} s")


def main() -> int:
    rng = np.random.default_rng(2026)
    bout = baby_cry.generate_cry_bout(rng, RATE, 6.0, arousal=0.6)
    write("demo_baby_cry.wav", place(room_noise(rng, 12.0), bout.audio, 3.0, -8.0))
    alarm, _ = smoke_alarm.generate(np.random.default_rng(1), 9.0)  # T3: two and a third cycles
    write("demo_smoke_alarm.wav", place(room_noise(rng, 12.0), alarm, 2.5, -14.0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
