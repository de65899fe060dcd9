"""The training pipeline for any class module (``smoke_alarm.py``, ``baby_cry.py``): data split by package,
windows, training with hard-negative mining, ``sed-pack``, threshold from the validation packages, held-out
evaluation with ``sed-eval``.

    python examples/training/recipe.py smoke_alarm --data ~/.cache/sed_runtime/training_audio \\
        --work ~/.cache/sed_runtime/smoke_alarm --out models/smoke_alarm.onnx
    python examples/training/recipe.py baby_cry --data ~/.cache/sed_runtime/training_audio \\
        --work ~/.cache/sed_runtime/baby_cry --out models/baby_cry.onnx

A class module provides ``CONFIG`` (a :class:`common.ClassConfig`) and ``DESCRIPTION`` (one line stored in the
model's metadata).  ``--fixture`` runs everything on about a minute of generated audio (the CI test).
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import RATE, SPEC, ClassConfig  # noqa: E402

# on-thresholds swept on the validation packages; dense near 1 where quiet operating points live
THRESHOLDS = "0.5,0.6,0.7,0.8,0.85,0.9,0.93,0.95,0.96,0.97,0.98,0.985,0.99,0.995"


def _resampled_copy(x: np.ndarray, rng, factors=(0.8, 1.25)) -> np.ndarray:
    """``x`` played faster or slower (pitch and tempo together, like tape): other voices, other tunings."""
    from scipy import signal

    r = rng.uniform(*factors)
    up = 100
    down = int(round(up * r))
    return signal.resample_poly(x, up, down).astype(np.float32) if down != up else x


def build_windows(cfg: ClassConfig, clips, rooms, mics, rng, n_pos: int, n_hard: int, scene_s: float,
                  neg_level_db=(-45, -12), perturbed_share: float = 0.0):
    """Negatives (every clip, random mic and level; ``perturbed_share`` of them also as a copy played 0.8-1.25x
    as fast), positive scenes and synthetic hard-negative scenes."""
    from scipy import signal

    ws = common.WindowSet(cfg.window_frames)
    for c in clips:  # real negatives, each through a random microphone at a random level
        x0 = c.audio.astype(np.float32) / 32768
        copies = [x0] + ([_resampled_copy(x0, rng)] if rng.random() < perturbed_share else [])
        for x in copies:
            if rng.random() < 0.8:
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
    """Synthetic positive test scenes in held-out backgrounds: a WAV and its reference events per scene (the
    event spans the target's first to last sounding sample; it starts after 3 s and ends 3 s before the end)."""
    import soundfile as sf

    out_dir.mkdir(parents=True, exist_ok=True)
    items = []
    for k in range(n):
        bg = common.background(clips, scene_s, rng)
        pad = int(3.0 * RATE)
        while True:
            ev, mask = cfg.generate(rng, scene_s - 6.0)
            if mask.any():
                break
        full_ev = np.zeros(len(bg), np.float32)
        full_mask = np.zeros(len(bg), bool)
        full_ev[pad:pad + len(ev)] = ev
        full_mask[pad:pad + len(ev)] = mask
        sub = ClassConfig(**{**cfg.__dict__, "snr_db": snr_db,
                             "generate": lambda r, s, e=full_ev, m=full_mask: (e, m)})
        audio, _ = common.mix_scene(sub, bg, rng, rooms[rng.integers(len(rooms))], mics[rng.integers(len(mics))],
                                    rng.uniform(-38, -12), positive=True)
        on = np.flatnonzero(full_mask)
        name = out_dir / f"pos_{k:04d}.wav"
        sf.write(name, audio, RATE, subtype="PCM_16")
        ref = name.with_suffix(".tsv")
        ref.write_text(f"{on[0] / RATE:.3f}\t{(on[-1] + 1) / RATE:.3f}\t{cfg.label}\n")
        items.append({"audio": str(name), "labels": str(ref), "category": f"synthetic-{cfg.label}",
                      "source": "synthetic in " + "+".join(sorted({c.package for c in clips})),
                      "positives": "synthetic"})
    return items


def sed_eval(model: Path, manifest: Path, out_json: Path, extra=()) -> dict:
    cmd = [sys.executable, "-c", "import sys; from sed_runtime.cli import eval_main; sys.exit(eval_main())",
           "--manifest", str(manifest), "--model", str(model), "--json", str(out_json), "--workers", "2",
           "--no-progress", "--onset-only", "--collar", "3.0", *extra]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out_json.read_text())


def evaluate(cfg: ClassConfig, model: Path, test_clips, rooms, mics, seed: int, n_pos: int, work: Path,
             data: Path | None = None) -> dict:
    """Held-out evaluation: test packages, test rooms and microphones, another seed; synthetic positives in each
    category's backgrounds; extra manifest items (e.g. a reserved real recording) from ``cfg.extra_eval``."""
    test_rng = np.random.default_rng(seed + 200)
    items = common.write_negatives(test_clips, work / "eval_test")
    for cat in ("speech", "music", "ambience"):
        bgs = [c for c in test_clips if c.category == cat] or test_clips
        items += write_positives(cfg, bgs, rooms, mics, test_rng, max(1, n_pos // 3), 24.0,
                                 work / "eval_test" / f"pos_{cat}")
    if cfg.extra_eval is not None:
        items += cfg.extra_eval(work / "eval_test" / "extra", data, test_clips, mics, test_rng)
    common.save_json(work / "test_manifest.json", items)
    return sed_eval(model, work / "test_manifest.json", work / "test_report.json")


def decide(cfg: ClassConfig, model: Path, val_clips, rooms, mics, seed: int, n_pos: int, work: Path, log) -> dict:
    """Sweep on-thresholds for each minimum event duration in ``cfg.min_duration_choices_ms`` on the validation
    packages (real negatives + synthetic positives in their backgrounds) and stamp the chosen decision into
    ``model``: among operating points with recall >= 0.9 (if any), the fewest false alarms, then the highest
    recall, then the shorter minimum duration and the lower threshold."""
    val_rng = np.random.default_rng(seed + 100)
    val_items = common.write_negatives(val_clips, work / "eval_val")
    val_items += write_positives(cfg, val_clips, rooms, mics, val_rng, max(2, n_pos // 4), 24.0,
                                 work / "eval_val" / "pos")
    common.save_json(work / "val_manifest.json", val_items)
    candidates, sweeps = [], {}
    for min_ms in cfg.min_duration_choices_ms or (cfg.decision["min_duration_ms"],):
        override = work / f"val_decision_{int(min_ms)}.json"
        override.write_text(json.dumps({"min_duration_ms": min_ms}))
        rep = sed_eval(model, work / "val_manifest.json", work / f"val_report_{int(min_ms)}.json",
                       ["--thresholds", THRESHOLDS, "--decision", str(override)])
        sweeps[min_ms] = rep
        for r in rep["operating_points"]["rows"]:
            recall = r["recall"] or 0.0
            candidates.append((recall < 0.9, r["fa_count"], -recall, min_ms, r["threshold"]))
    _, fa, neg_recall, min_ms, threshold = min(candidates)
    (work / "val_report.json").write_text(json.dumps(sweeps[min_ms], indent=2) + "\n")
    common.save_json(work / "val_choice.json", {"candidates": sorted(candidates), "chosen": {
        "min_duration_ms": min_ms, "on_threshold": threshold, "fa_count": fa, "recall": -neg_recall}})
    threshold = round(float(threshold), 3)
    decision = {**cfg.decision, "on_threshold": threshold, "min_duration_ms": min_ms,
                "off_threshold": round(min(cfg.decision["off_threshold"], threshold - 0.1), 3)}
    from sed_runtime.model.metadata import read_metadata, write_metadata
    write_metadata(model, {**read_metadata(model).to_dict(), "decision": decision})
    log(f"validation: {fa} false alarms, recall {-neg_recall:.3f} (synthetic); shipped decision: {decision}")
    return decision


def fixture_clips(seed: int, name: str):
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


def test_rooms_and_mics(seed: int):
    """Held-out rooms (other seed, larger and more reverberant) and microphones (other seed)."""
    rooms = common.make_rooms(20, 2000 + seed, rt60_s=(0.2, 1.0), dims_m=((3.5, 10.0), (3.0, 8.0), (2.4, 3.5)))
    return rooms, common.make_mics(15, 4000 + seed)


def run(cfg: ClassConfig, description: str, argv=None) -> int:
    p = argparse.ArgumentParser(description=f"Train, pack and evaluate the {cfg.label} model.")
    p.add_argument("--data", type=Path, help="DEST of fetch_training_audio.sh")
    p.add_argument("--work", type=Path, required=True, help="scratch directory (features, eval audio, reports)")
    p.add_argument("--out", type=Path, required=True, help="the packed int8 model to write")
    p.add_argument("--train-minutes", type=float, default=30.0, help="training wall-time budget")
    p.add_argument("--minutes-per-source", type=float, default=240.0, help="train/validation audio per package")
    p.add_argument("--test-minutes-per-source", type=float, default=120.0, help="held-out audio per package")
    p.add_argument("--positives", type=int, default=4000, help="positive training scenes")
    p.add_argument("--test-positives", type=int, default=210, help="held-out synthetic positive scenes")
    p.add_argument("--perturbed-negatives", type=float, default=0.5, metavar="SHARE",
                   help="share of real negative clips also used played 0.8-1.25x as fast (0: none)")
    p.add_argument("--init", type=Path, help="start from these weights (a previous run's model.pt) instead of "
                   "random ones: a shorter second round with new data")
    p.add_argument("--threads", type=int, default=0, help="PyTorch threads (0: all cores)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--fixture", action="store_true", help="tiny run on generated audio (CI)")
    p.add_argument("--decide-only", action="store_true", help="no training: choose the decision of the model at "
                   "--out on the validation packages, stamp it, then evaluate on the test packages")
    p.add_argument("--evaluate-only", action="store_true", help="no training: evaluate the model at --out on the "
                   "test packages (its shipped decision parameters)")
    args = p.parse_args(argv)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    log = lambda *a: print(f"[{(time.time() - t_start) / 60:5.1f} min]", *a, flush=True)  # noqa: E731
    rng = np.random.default_rng(args.seed)

    if args.decide_only:
        if args.data is None or not (args.data / "x").is_dir():
            p.error("--decide-only needs --data (the DEST of fetch_training_audio.sh)")
        val_clips = common.load_sources(args.data, common.VALIDATION_SOURCES, args.minutes_per_source, args.seed)
        test_clips = common.load_sources(args.data, common.TEST_SOURCES, args.test_minutes_per_source, args.seed)
        decision = decide(cfg, args.out, val_clips, common.make_rooms(60, 1000 + args.seed),
                          common.make_mics(40, 3000 + args.seed), args.seed, args.test_positives, work, log)
        rooms_test, mics_test = test_rooms_and_mics(args.seed)
        evaluate(cfg, args.out, test_clips, rooms_test, mics_test, args.seed, args.test_positives, work, args.data)
        summary_path = work / "summary.json"
        if summary_path.exists():
            summary = json.loads(summary_path.read_text())
            summary["decision"] = decision
            common.save_json(summary_path, summary)
        log("decided and evaluated:", work / "test_report.json")
        return 0
    if args.evaluate_only:
        if args.data is None or not (args.data / "x").is_dir():
            p.error("--evaluate-only needs --data (the DEST of fetch_training_audio.sh)")
        test_clips = common.load_sources(args.data, common.TEST_SOURCES, args.test_minutes_per_source, args.seed)
        common.save_json(work / "data_test.json", common.describe(test_clips))
        rooms_test, mics_test = test_rooms_and_mics(args.seed)
        evaluate(cfg, args.out, test_clips, rooms_test, mics_test, args.seed, args.test_positives, work, args.data)
        log("evaluated:", work / "test_report.json")
        return 0
    if args.fixture:
        train_clips, val_clips, test_clips = (fixture_clips(s, n) for s, n in ((1, "fixture-train"),
                                                                               (2, "fixture-val"),
                                                                               (3, "fixture-test")))
        rooms_train, rooms_test = common.make_rooms(2, 10), common.make_rooms(2, 20)
        mics_test = common.make_mics(15, 4000 + args.seed)
        n_pos, n_hard, n_test_pos, scene_s = 12, 4, 3, 8.0
    else:
        if args.data is None or not (args.data / "x").is_dir():
            p.error("--data must be the DEST of fetch_training_audio.sh (or use --fixture)")
        train_clips = common.load_sources(args.data, common.TRAIN_SOURCES, args.minutes_per_source, args.seed)
        val_clips = common.load_sources(args.data, common.VALIDATION_SOURCES, args.minutes_per_source, args.seed)
        test_clips = common.load_sources(args.data, common.TEST_SOURCES, args.test_minutes_per_source, args.seed)
        rooms_train = common.make_rooms(60, 1000 + args.seed)
        rooms_test, mics_test = test_rooms_and_mics(args.seed)
        n_pos, n_hard, n_test_pos, scene_s = args.positives, args.positives // 4, args.test_positives, 8.0
    mics_train = common.make_mics(40, 3000 + args.seed)
    data_report = {"train": common.describe(train_clips), "validation": common.describe(val_clips),
                   "test": common.describe(test_clips)}
    common.save_json(work / "data.json", data_report)
    log("data:", json.dumps({k: [(r["package"], r["category"], r["minutes"]) for r in v]
                             for k, v in data_report.items()}))

    train_set = build_windows(cfg, train_clips, rooms_train, mics_train, rng, n_pos, n_hard, scene_s,
                              perturbed_share=args.perturbed_negatives)
    log(f"training windows: {len(train_set.y)} ({int(train_set.y.sum())} positive, "
        f"{int((train_set.weight == 0).sum())} ambiguous, not scored)")

    import torch
    model = common.build_model(SPEC.n_mels, channels=cfg.channels)
    if args.init is not None:
        model.load_state_dict(torch.load(args.init))
        log("initial weights:", args.init.name)
    # from previous weights: a lower rate, and mining from the start (the model already knows the easy cases)
    schedule = {"lr": 1e-3, "mine_at": (0.0, 0.3, 0.6)} if args.init is not None else {}
    stats = common.train(model, train_set, minutes=args.train_minutes, batch=64 if args.fixture else 128,
                         seed=args.seed, log=log, checkpoint=work / "model.pt", threads=args.threads, **schedule)
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
                  description=description)
    log(report.format())

    # decision from the validation packages (never from the test packages)
    decision = decide(cfg, args.out, val_clips, rooms_train, mics_train, args.seed, n_test_pos, work, log)

    evaluate(cfg, args.out, test_clips, rooms_test, mics_test, args.seed, n_test_pos, work,
             None if args.fixture else args.data)
    summary = {"train": stats, "pack": report.to_dict(), "decision": decision, "data": data_report,
               "test_report": str(work / "test_report.json"), "minutes_total": round((time.time() - t_start) / 60, 1)}
    common.save_json(work / "summary.json", summary)
    log("done:", json.dumps({k: summary[k] for k in ("train", "decision", "minutes_total")}))
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        print("usage: recipe.py CLASS_MODULE [options]   (e.g. smoke_alarm, baby_cry; --help after it)",
              file=sys.stderr)
        return 2
    module = importlib.import_module(argv[0])
    return run(module.CONFIG, module.DESCRIPTION, argv[1:])


if __name__ == "__main__":
    sys.exit(main())
