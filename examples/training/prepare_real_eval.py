"""Extract the one real baby-cry recording for evaluation only, and compare the cry synthesizer with it.

The recording is ``usr/share/scratch/Media/Sounds/Human/BabyCry.mp3`` in the Debian package ``scratch``
(CC-BY-SA-3.0, 2.6 s, 44.1 kHz MP3).  It is RESERVED FOR EVALUATION: never train on it, never use it to choose
a threshold, never commit it (``common.EXCLUDE`` keeps it out of the training sources).

    python examples/training/prepare_real_eval.py            # apt-get download scratch, extract, compare
    python examples/training/prepare_real_eval.py --deb scratch_*.deb
    python examples/training/prepare_real_eval.py --mp3 path/to/BabyCry.mp3

writes, by default under ``~/.cache/sed_runtime/eval/`` (outside the repository):

* ``baby_cry_real.wav``: 16 kHz mono PCM16 (scipy polyphase resampling from 44.1 kHz; scaled down only if the
  decoded MP3 exceeds full scale, so that writing PCM16 adds no clipping);
* ``baby_cry_real.tsv``: the reference events (``onset offset baby_cry``): the cry as annotators mark it,
  i.e. the envelope bursts merged across inspirations (gaps < 1 s);
* ``baby_cry_real_phonations.tsv``: the bursts themselves (expiratory phonations);
* ``baby_cry_real.json``: a ``sed-eval`` manifest item (``positives: real``, ``source: scratch``).

Segment method (``baby_cry.bursts``): RMS level of 20 ms frames every 10 ms; a frame is loud when it is within
15 dB of the recording's 95th-percentile frame level; loud runs closer than 80 ms are joined (voicing breaks);
runs shorter than 50 ms are dropped; times are frame centres.  The TSVs are estimates from the envelope, not a
human annotation: check them by ear before quoting figures at a finer resolution than ~20 ms.

Decoding needs libsndfile >= 1.1 (MP3 support), which the ``soundfile`` wheels ship.

``--compare N`` (default 200) also prints the acoustic statistics of the real clip beside those of N synthetic
bouts (``baby_cry.cry_statistics``), as the markdown table kept in ``baby_cry.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

sys.path.insert(0, str(Path(__file__).resolve().parent))
import baby_cry  # noqa: E402

MEMBER = "usr/share/scratch/Media/Sounds/Human/BabyCry.mp3"
RATE = baby_cry.RATE
EVENT_MERGE_GAP_S = 1.0


class PrepareError(RuntimeError):
    """A step of the extraction failed: says which and what to do."""


def _run(cmd: list[str], cwd: Path) -> None:
    if shutil.which(cmd[0]) is None:
        raise PrepareError(f"{cmd[0]} not found; it is needed for: {' '.join(cmd)} (a Debian or Ubuntu system)")
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise PrepareError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-400:]}")


def locate_mp3(work: Path, deb: Path | None, mp3: Path | None) -> Path:
    """The MP3: given directly, or extracted from the given .deb, or from ``apt-get download scratch``."""
    if mp3 is not None:
        return mp3
    if deb is None:
        _run(["apt-get", "download", "scratch"], work)
        debs = sorted(work.glob("scratch_*.deb"))
        if not debs:
            raise PrepareError("apt-get download scratch left no scratch_*.deb (run apt-get update first?)")
        deb = debs[-1]
    _run(["dpkg-deb", "-x", str(deb.resolve()), str(work / "x")], work)
    path = work / "x" / MEMBER
    if not path.exists():
        raise PrepareError(f"{deb.name} holds no {MEMBER}")
    return path


def decode(path: Path) -> tuple[np.ndarray, int]:
    """float64 mono at the file's rate."""
    try:
        x, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise PrepareError(f"soundfile cannot decode {path.name} (libsndfile {sf.__libsndfile_version__}; MP3 "
                           f"needs >= 1.1): {e}") from None
    return x.mean(axis=1), int(rate)


def to_16k(x: np.ndarray, rate: int) -> tuple[np.ndarray, float]:
    """(float32 at 16 kHz with |x| <= 1, the gain applied)."""
    if rate != RATE:
        g = np.gcd(rate, RATE)
        x = signal.resample_poly(x, RATE // g, rate // g)
    peak = float(np.max(np.abs(x)))
    gain = 1.0 if peak <= 32767 / 32768 else (32767 / 32768) / peak
    return (x * gain).astype(np.float32), gain


def merge(segments, gap_s: float) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for a, b in segments:
        if out and a - out[-1][1] < gap_s:
            out[-1][1] = b
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def write_tsv(path: Path, segments, label: str) -> None:
    path.write_text("".join(f"{a:.3f}\t{b:.3f}\t{label}\n" for a, b in segments))


def compare(real: np.ndarray, n_bouts: int, seed: int, bout_s: float) -> str:
    """Markdown table: statistics of the real clip and of ``n_bouts`` synthetic bouts of ``bout_s`` seconds
    (medians over bouts, with their 5th-95th percentiles)."""
    r = baby_cry.cry_statistics(real, RATE)
    syn = [baby_cry.cry_statistics(baby_cry.generate_cry(np.random.default_rng(seed + k), RATE, bout_s), RATE)
           for k in range(n_bouts)]

    def pooled(key):
        return np.concatenate([np.asarray(s[key], float) for s in syn])

    def per_bout(key):
        v = np.array([s[key] for s in syn], float)
        v = v[np.isfinite(v)]
        return f"{np.median(v):.0f} ({np.percentile(v, 5):.0f}-{np.percentile(v, 95):.0f})" if key.endswith("hz") \
            else f"{np.median(v):.2f} ({np.percentile(v, 5):.2f}-{np.percentile(v, 95):.2f})"

    bs, gs = pooled("burst_s"), pooled("gap_s")
    rows = [
        ("f0 median (Hz)", f"{r['f0_median_hz']:.0f}", per_bout("f0_median_hz")),
        ("f0 5th percentile (Hz)", f"{r['f0_p5_hz']:.0f}", per_bout("f0_p5_hz")),
        ("f0 95th percentile (Hz)", f"{r['f0_p95_hz']:.0f}", per_bout("f0_p95_hz")),
        ("voiced fraction of burst frames", f"{r['voiced_fraction']:.2f}", per_bout("voiced_fraction")),
        ("position of the f0 maximum in a burst", f"{r['f0_peak_position']:.2f}", per_bout("f0_peak_position")),
        ("burst length (s)", ", ".join(f"{v:.2f}" for v in r["burst_s"]),
         f"median {np.median(bs):.2f}, 5-95 % {np.percentile(bs, 5):.2f}-{np.percentile(bs, 95):.2f}"),
        ("gap between bursts (s)", ", ".join(f"{v:.2f}" for v in r["gap_s"]),
         f"median {np.median(gs):.2f}, 5-95 % {np.percentile(gs, 5):.2f}-{np.percentile(gs, 95):.2f}"),
        ("spectral centroid in bursts, median (Hz)", f"{r['centroid_median_hz']:.0f}", per_bout("centroid_median_hz")),
    ]
    lines = [f"| statistic | real clip ({r['duration_s']:.2f} s) | synthetic: {n_bouts} bouts of {bout_s:g} s, "
             f"median (5-95 %) |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path.home() / ".cache" / "sed_runtime" / "eval" / "baby_cry_real.wav",
                    help="WAV to write (the TSVs and manifest go beside it)")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--deb", type=Path, help="a downloaded scratch_*.deb (default: apt-get download scratch)")
    src.add_argument("--mp3", type=Path, help="BabyCry.mp3 already extracted")
    ap.add_argument("--compare", type=int, default=200, metavar="N", help="synthetic bouts to compare (0: none)")
    ap.add_argument("--bout-seconds", type=float, default=6.0, help="length of each synthetic bout compared")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    out = args.out
    if out.suffix.lower() != ".wav":
        print(f"prepare_real_eval: --out {out} must end in .wav", file=sys.stderr)
        return 1
    try:
        with tempfile.TemporaryDirectory() as tmp:
            mp3 = locate_mp3(Path(tmp), args.deb, args.mp3)
            x, rate = decode(mp3)
    except PrepareError as e:
        print(f"prepare_real_eval: {e}", file=sys.stderr)
        return 1
    y, gain = to_16k(x, rate)
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(out), y, RATE, subtype="PCM_16")
    phon = baby_cry.bursts(y, RATE)
    events = merge(phon, EVENT_MERGE_GAP_S)
    stem = out.with_suffix("")
    write_tsv(stem.with_suffix(".tsv"), events, baby_cry.LABEL)
    write_tsv(Path(f"{stem}_phonations.tsv"), phon, baby_cry.LABEL)
    manifest = [{"audio": out.name, "labels": stem.with_suffix(".tsv").name, "category": "cry",
                 "positives": "real", "source": "scratch:BabyCry.mp3"}]
    stem.with_suffix(".json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{out}: {len(y) / RATE:.2f} s at {RATE} Hz from {rate} Hz "
          f"(gain {20 * np.log10(gain):.2f} dB); {len(phon)} bursts, events: "
          + ", ".join(f"{a:.2f}-{b:.2f} s" for a, b in events))
    print("EVALUATION ONLY: never train on this recording or tune thresholds with it.")
    if args.compare > 0:
        print()
        print(compare(y, args.compare, args.seed, args.bout_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
