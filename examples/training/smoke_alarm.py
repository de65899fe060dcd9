"""Smoke / CO alarm detector: synthetic piezo alarm patterns (T3, T4) in real backgrounds -> models/smoke_alarm.onnx.

Full recipe (by hand, CPU; the command in models/smoke_alarm.md):

    python examples/training/smoke_alarm.py --data ~/.cache/sed_runtime/training_audio \\
        --work ~/.cache/sed_runtime/smoke_alarm --out models/smoke_alarm.onnx --train-minutes 12

``--fixture`` runs the whole pipeline on about a minute of generated audio (the CI test).

Positives are synthetic: no real smoke-alarm recording exists in the registries this project draws on.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import RATE, SPEC, ClassConfig  # noqa: E402

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
    label=LABEL, generate=generate, hard_negatives=hard_negatives, window_frames=100, stride_frames=8,
    min_active_s=0.19,
    decision={"on_threshold": 0.8, "off_threshold": 0.5, "smoothing_ms": 384, "min_duration_ms": 256,
              "merge_gap_ms": 6000, "refractory_ms": 0},
)


# ---------------------------------------------------------------------------
# The pipeline
# ---------------------------------------------------------------------------

def build_windows(cfg: ClassConfig, clips, rooms, mics, rng, n_pos: int, n_hard: int, scene_s: float,
                  neg_level_db=(-45, -12)):
    """Negatives (every clip, random mic and level), positive scenes and synthetic hard-negative scenes."""
    ws = common.WindowSet(cfg.window_frames)
    for c in clips:  # real negatives, each through a random microphone at a random level
        x = c.audio.astype(np.float32) / 32768
        if rng.random() < 0.8:
            from scipy import signal
            x = signal.sosfilt(mics[rng.integers(len(mics))], x).astype(np.float32)
        if common.rms(x) > 1e-5:
            x = common.scale_to_dbfs(x, rng.uniform(*neg_level_db))
        ws.add(common.features(common.to_int16(x)), None, cfg.stride_frames, 0)
    for k in range(n_pos + n_hard):
        bg = common.background(clips, scene_s, rng)
        room = rooms[rng.integers(len(rooms))] if rng.random() < 0.85 else None
        audio, mask = common.mix_scene(cfg, bg, rng, room, mics[rng.integers(len(mics))],
                                       rng.uniform(-40, -8), positive=k < n_pos)
        f = common.features(audio)
        ws.add(f, common.frame_mask(mask, len(f)) if k < n_pos else None, cfg.stride_frames, 0)
    min_frames = cfg.min_active_s * RATE / SPEC.hop_samples
    return ws.finish(cfg.stride_frames, min_frames)


def write_positives(cfg: ClassConfig, clips, rooms, mics, rng, n: int, scene_s: float, out_dir: Path,
                    snr_db=(0.0, 20.0)) -> list[dict]:
    """Synthetic positive test scenes in held-out backgrounds: a WAV and its reference events per scene."""
    out_dir.mkdir(parents=True, exist_ok=True)
    items = []
    for k in range(n):
        bg = common.background(clips, scene_s, rng)
        pad = int(3.0 * RATE)  # the alarm starts after 3 s and stops 3 s before the end
        sub = ClassConfig(**{**cfg.__dict__, "snr_db": snr_db})
        while True:
            ev, mask = cfg.generate(rng, scene_s - 6.0)
            if mask.any():
                break
        full_ev = np.zeros(len(bg), np.float32)
        full_mask = np.zeros(len(bg), bool)
        full_ev[pad:pad + len(ev)] = ev
        full_mask[pad:pad + len(ev)] = mask
        sub = ClassConfig(**{**sub.__dict__, "generate": lambda r, s, e=full_ev, m=full_mask: (e, m)})
        audio, _ = common.mix_scene(sub, bg, rng, rooms[rng.integers(len(rooms))], mics[rng.integers(len(mics))],
                                    rng.uniform(-38, -12), positive=True)
        on = np.flatnonzero(full_mask)
        name = out_dir / f"pos_{k:04d}.wav"
        import soundfile as sf
        sf.write(name, audio, RATE, subtype="PCM_16")
        ref = name.with_suffix(".tsv")
        ref.write_text(f"{on[0] / RATE:.3f}\t{(on[-1] + 1) / RATE:.3f}\t{cfg.label}\n")
        items.append({"audio": str(name), "labels": str(ref),
                      "category": "synthetic-alarm", "source": "synthetic alarm in " + "+".join(sorted({c.package for c in clips})),
                      "positives": "synthetic"})
    return items


def sed_eval(model: Path, manifest: Path, out_json: Path, extra=()) -> dict:
    cmd = [sys.executable, "-c", "import sys; from sed_runtime.cli import eval_main; sys.exit(eval_main())",
           "--manifest", str(manifest), "--model", str(model), "--json", str(out_json), "--workers", "2",
           "--no-progress", "--onset-only", "--collar", "3.0", *extra]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out_json.read_text())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, help="DEST of fetch_training_audio.sh")
    p.add_argument("--work", type=Path, required=True, help="scratch directory (features, eval audio, reports)")
    p.add_argument("--out", type=Path, required=True, help="the packed int8 model to write")
    p.add_argument("--train-minutes", type=float, default=12.0, help="training wall-time budget")
    p.add_argument("--minutes-per-source", type=float, default=40.0, help="train/validation audio per package")
    p.add_argument("--test-minutes-per-source", type=float, default=120.0, help="held-out audio per package")
    p.add_argument("--positives", type=int, default=3000, help="positive training scenes")
    p.add_argument("--test-positives", type=int, default=200, help="held-out synthetic positive scenes")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--fixture", action="store_true", help="tiny run on generated audio (CI)")
    p.add_argument("--evaluate-only", action="store_true", help="no training: evaluate the model at --out on the "
                   "test packages (its shipped decision parameters)")
    args = p.parse_args(argv)
    cfg = CONFIG
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    log = lambda *a: print(f"[{(time.time() - t_start) / 60:5.1f} min]", *a, flush=True)  # noqa: E731
    rng = np.random.default_rng(args.seed)

    if args.evaluate_only:
        if args.data is None or not (args.data / "x").is_dir():
            p.error("--evaluate-only needs --data (the DEST of fetch_training_audio.sh)")
        test_clips = common.load_sources(args.data, common.TEST_SOURCES, args.test_minutes_per_source, args.seed)
        common.save_json(work / "data_test.json", common.describe(test_clips))
        rooms_test = common.make_rooms(20, 2000 + args.seed, rt60_s=(0.2, 1.0),
                                       dims_m=((3.5, 10.0), (3.0, 8.0), (2.4, 3.5)))
        evaluate(cfg, args.out, test_clips, rooms_test, common.make_mics(15, 4000 + args.seed), args.seed,
                 args.test_positives, work)
        log("evaluated:", work / "test_report.json")
        return 0
    if args.fixture:
        train_clips, val_clips, test_clips = (_fixture_clips(s, n) for s, n in ((1, "fixture-train"),
                                                                                (2, "fixture-val"),
                                                                                (3, "fixture-test")))
        rooms_train, rooms_test = common.make_rooms(2, 10), common.make_rooms(2, 20)
        n_pos, n_hard, n_test_pos, scene_s = 12, 4, 3, 8.0
    else:
        train_clips = common.load_sources(args.data, common.TRAIN_SOURCES, args.minutes_per_source, args.seed)
        val_clips = common.load_sources(args.data, common.VALIDATION_SOURCES, args.minutes_per_source, args.seed)
        test_clips = common.load_sources(args.data, common.TEST_SOURCES, args.test_minutes_per_source, args.seed)
        # training rooms and test rooms: different seeds, and test rooms extend to larger, more reverberant spaces
        rooms_train = common.make_rooms(60, 1000 + args.seed)
        rooms_test = common.make_rooms(20, 2000 + args.seed, rt60_s=(0.2, 1.0),
                                       dims_m=((3.5, 10.0), (3.0, 8.0), (2.4, 3.5)))
        n_pos, n_hard, n_test_pos, scene_s = args.positives, args.positives // 4, args.test_positives, 8.0
    mics_train, mics_test = common.make_mics(40, 3000 + args.seed), common.make_mics(15, 4000 + args.seed)
    data_report = {"train": common.describe(train_clips), "validation": common.describe(val_clips),
                   "test": common.describe(test_clips)}
    common.save_json(work / "data.json", data_report)
    log("data:", json.dumps({k: [(r["package"], r["category"], r["minutes"]) for r in v]
                             for k, v in data_report.items()}))

    train_set = build_windows(cfg, train_clips, rooms_train, mics_train, rng, n_pos, n_hard, scene_s)
    log(f"training windows: {len(train_set.y)} ({int(train_set.y.sum())} positive, "
        f"{int((train_set.weight == 0).sum())} ambiguous, not scored)")

    import torch
    model = common.build_model(SPEC.n_mels)
    stats = common.train(model, train_set, minutes=args.train_minutes, batch=64 if args.fixture else 128,
                         seed=args.seed, log=log, checkpoint=work / "model.pt")
    torch.save(model.state_dict(), work / "model.pt")
    log("trained:", stats)
    float_path = work / "float.onnx"
    common.export_onnx(model, float_path, cfg.window_frames, SPEC.n_mels)

    # calibration: training-package audio only (negatives and positive scenes)
    calib_dir = work / "calibration"
    calib_dir.mkdir(exist_ok=True)
    crng = np.random.default_rng(args.seed + 7)
    calib = []
    for k in range(4 if args.fixture else 40):
        audio, _ = common.mix_scene(cfg, common.background(train_clips, scene_s, crng), crng,
                                    rooms_train[0], mics_train[k % len(mics_train)], crng.uniform(-40, -10),
                                    positive=k % 2 == 0)
        calib.append(audio)
    from sed_runtime.pack import pack
    report = pack(float_path, args.out, frontend=SPEC, labels=[cfg.label], window_frames=cfg.window_frames,
                  stride_frames=cfg.stride_frames, decision=cfg.decision, calibration=calib,
                  description="smoke/CO alarm (T3/T4 piezo patterns); trained on synthetic positives, see "
                              "models/smoke_alarm.md")
    log(report.format())

    # threshold from the validation packages (never from the test packages)
    val_rng = np.random.default_rng(args.seed + 100)
    val_items = common.write_negatives(val_clips, work / "eval_val")
    val_items += write_positives(cfg, val_clips, rooms_train, mics_train, val_rng, max(2, n_test_pos // 4),
                                 24.0, work / "eval_val" / "pos")
    common.save_json(work / "val_manifest.json", val_items)
    sweep = sed_eval(args.out, work / "val_manifest.json", work / "val_report.json",
                     ["--thresholds", "0.5:0.98:0.04"])
    threshold = choose_threshold(sweep, cfg.decision["on_threshold"])
    decision = {**cfg.decision, "on_threshold": threshold, "off_threshold": round(min(0.5, threshold - 0.1), 3)}
    from sed_runtime.model.metadata import read_metadata, write_metadata
    write_metadata(args.out, {**read_metadata(args.out).to_dict(), "decision": decision})
    log("shipped decision:", decision)

    evaluate(cfg, args.out, test_clips, rooms_test, mics_test, args.seed, n_test_pos, work)
    summary = {"train": stats, "pack": report.to_dict(), "decision": decision, "data": data_report,
               "test_report": str(work / "test_report.json"), "minutes_total": round((time.time() - t_start) / 60, 1)}
    common.save_json(work / "summary.json", summary)
    log("done:", json.dumps({k: summary[k] for k in ("train", "decision", "minutes_total")}))
    return 0


def evaluate(cfg: ClassConfig, model: Path, test_clips, rooms, mics, seed: int, n_pos: int, work: Path) -> dict:
    """Held-out evaluation: test packages, test rooms and microphones, another seed; synthetic positives in each
    category's backgrounds."""
    test_rng = np.random.default_rng(seed + 200)
    items = common.write_negatives(test_clips, work / "eval_test")
    for cat in ("speech", "music", "ambience"):
        bgs = [c for c in test_clips if c.category == cat] or test_clips
        items += write_positives(cfg, bgs, rooms, mics, test_rng, max(1, n_pos // 3), 24.0,
                                 work / "eval_test" / f"pos_{cat}")
    common.save_json(work / "test_manifest.json", items)
    return sed_eval(model, work / "test_manifest.json", work / "test_report.json")


def choose_threshold(report: dict, default: float) -> float:
    """The lowest swept threshold with no false alarm on the validation negatives (else the highest swept)."""
    rows = (report.get("operating_points") or {}).get("rows", [])
    clean = [r["threshold"] for r in rows if r["fa_count"] == 0]
    if clean:
        return round(float(min(clean)), 3)
    return round(float(max((r["threshold"] for r in rows), default=default)), 3)


def _fixture_clips(seed: int, name: str):
    """A minute of generated background (noise, hum, speech-like bursts) per split, for the CI run."""
    rng = np.random.default_rng(seed)
    clips = []
    for k in range(3):
        n = 20 * RATE
        t = np.arange(n) / RATE
        x = 0.02 * rng.standard_normal(n) + 0.03 * np.sin(2 * np.pi * 50 * t)
        x += 0.1 * np.sin(2 * np.pi * rng.uniform(150, 300) * t) * (np.sin(2 * np.pi * 3 * t) > 0.3)
        clips.append(common.Clip(name, f"gen_{k}.wav", ("speech", "music", "ambience")[k], RATE,
                                 common.to_int16(x.astype(np.float32))))
    return clips


if __name__ == "__main__":
    sys.exit(main())
