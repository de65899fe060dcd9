"""Shared training recipe: real negatives split by source package, synthetic positives through rooms and
microphones, features from sed_runtime's fixed-point CMSIS frontend, a small DS-CNN for a Cortex-M0+, export
to ONNX, ``sed-pack``, and evaluation with ``sed-eval`` on packages never used in training.

A new class is a positive generator plus a :class:`ClassConfig` (see ``smoke_alarm.py``): the generator
returns the dry event signal at 16 kHz and a per-sample mask of where the target is sounding.

Needs the ``train`` extra (``pip install -e '.[train]'``: PyTorch on the CPU, pyroomacoustics) and the
training sources unpacked by ``fetch_training_audio.sh`` (its ``DEST``; passed as ``--data``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
from scipy import signal

from sed_runtime.frontend import FrontendSpec, compute_features

RATE = 16000
SPEC = FrontendSpec(sample_rate_hz=RATE, window_samples=512, hop_samples=256, fft_len=512, n_mels=32,
                    lower_hz=100.0, upper_hz=8000.0)
AUDIO_EXT = (".wav", ".ogg", ".oga", ".opus", ".flac", ".mp3")

# ---------------------------------------------------------------------------
# The split, by source package (never by clip).  category: what the audio is, reported separately.
# ---------------------------------------------------------------------------
# (package, path filter or None, category)
TRAIN_SOURCES = [
    ("tuxpaint-stamps-default", None, "speech+effects"),
    ("klettres-data", None, "speech"),
    ("hedgewars-data", None, "music+voices"),
    ("redeclipse-data", None, "ambience"),
    ("gcompris-qt-data", None, "effects"),
    ("scratch", None, "effects"),
    ("minetest-data", None, "effects"),
    ("sound-theme-freedesktop", None, "hard-negative"),
]
# used only to choose the shipped threshold (never for weights)
VALIDATION_SOURCES = [
    ("ktuberling-data", None, "speech"),
    ("supertux-data", None, "music"),
    ("sonic-pi-samples", None, "ambience"),
    ("bucklespring-data", None, "ambience"),
]
# held out: never seen in training or threshold choice
TEST_SOURCES = [
    ("fillets-ng-data-cs", None, "speech"),
    ("codec2-examples", None, "speech"),
    ("warzone2100-music", None, "music"),
    ("supertuxkart-data", "/music/", "music"),
    ("supertuxkart-data", "!/music/", "ambience"),
    ("openttd-opensfx", None, "ambience"),
    ("lomiri-sounds", None, "hard-negative"),
]
EXCLUDE = ("BabyCry",)  # reserved for evaluating a baby-cry model, never trained on


@dataclass
class Clip:
    package: str
    path: str  # relative to the data directory
    category: str
    rate_hz: int  # original rate
    audio: np.ndarray  # int16 at RATE


def _files(data: Path, package: str, flt: str | None) -> list[Path]:
    root = data / "x" / package
    out = []
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.suffix.lower() not in AUDIO_EXT or any(e in p.name for e in EXCLUDE):
            continue
        s = str(p)
        if flt and ((flt.startswith("!") and flt[1:] in s) or (not flt.startswith("!") and flt not in s)):
            continue
        out.append(p)
    return out


def load_audio(path: Path) -> tuple[np.ndarray, int]:
    """float32 mono at RATE (scipy polyphase resampling; the device's mic records at RATE natively) + file rate."""
    x, rate = sf.read(str(path), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if rate != RATE:
        g = np.gcd(rate, RATE)
        x = signal.resample_poly(x, RATE // g, rate // g).astype(np.float32)
    return x, rate


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 32768.0), -32768, 32767).astype(np.int16)


def _decoded(data: Path, package: str, flt: str | None, min_s: float) -> list[tuple[str, int, np.ndarray]]:
    """(relative path, original rate, int16 audio at RATE) of every usable file of a package, decoded once and
    cached beside the unpacked audio (``DEST/cache16k``)."""
    tag = package + ("" if flt is None else "_" + flt.replace("!", "not").strip("/").replace("/", "_"))
    cache = data / "cache16k" / f"{tag}.npz"
    if cache.exists():
        with np.load(cache) as z:  # each z[key] reads the array anew: read each once
            names, rates, bounds, audio = z["names"], z["rates"], z["bounds"], z["audio"]
        return [(str(n), int(r), audio[a:b]) for n, r, a, b in zip(names, rates, bounds[:-1], bounds[1:])]
    out = []
    for f in _files(data, package, flt):
        try:
            x, rate = load_audio(f)
        except (RuntimeError, sf.LibsndfileError, ValueError):
            continue
        if len(x) < min_s * RATE or not np.any(x):
            continue
        out.append((str(f.relative_to(data / "x")), int(rate), to_int16(x)))
    cache.parent.mkdir(parents=True, exist_ok=True)
    bounds = np.cumsum([0] + [len(a) for _, _, a in out])
    tmp = cache.with_name(f"{cache.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, names=np.array([n for n, _, _ in out]), rates=np.array([r for _, r, _ in out], np.int64),
             bounds=bounds, audio=np.concatenate([a for _, _, a in out]) if out else np.zeros(0, np.int16))
    tmp.replace(cache)  # atomic: concurrent recipes never read a half-written cache
    return out


def load_sources(data: Path, sources, max_minutes_per_source: float, seed: int, min_s: float = 0.3) -> list[Clip]:
    """Clips of each (package, filter, category), shuffled with ``seed`` and cut at ``max_minutes_per_source``."""
    rng = np.random.default_rng(seed)
    clips = []
    for package, flt, category in sources:
        files = _decoded(data, package, flt, min_s)
        order = rng.permutation(len(files))
        total = 0.0
        for i in order:
            if total >= max_minutes_per_source * 60:
                break
            name, rate, audio = files[i]
            clips.append(Clip(package, name, category, rate, audio))
            total += len(audio) / RATE
    return clips


def describe(clips: list[Clip]) -> list[dict]:
    """Minutes and original rates per (package, category): what the model card lists."""
    rows: dict[tuple, dict] = {}
    for c in clips:
        r = rows.setdefault((c.package, c.category), {"package": c.package, "category": c.category, "clips": 0,
                                                      "minutes": 0.0, "rates_hz": set()})
        r["clips"] += 1
        r["minutes"] += len(c.audio) / RATE / 60
        r["rates_hz"].add(c.rate_hz)
    return [{**r, "minutes": round(r["minutes"], 1), "rates_hz": sorted(r["rates_hz"])} for r in rows.values()]


# ---------------------------------------------------------------------------
# Augmentation: rooms (pyroomacoustics), microphones, gain, mixing at an SNR
# ---------------------------------------------------------------------------

def make_rooms(n: int, seed: int, rt60_s=(0.15, 0.8), dims_m=((3.0, 8.0), (2.5, 6.0), (2.3, 3.2))) -> list[np.ndarray]:
    """``n`` room impulse responses (ShoeBox, image source method; RT60 and size drawn with ``seed``)."""
    import pyroomacoustics as pra

    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        dims = [rng.uniform(*d) for d in dims_m]
        rt60 = rng.uniform(*rt60_s)
        try:
            absorption, max_order = pra.inverse_sabine(rt60, dims)
        except ValueError:
            continue
        room = pra.ShoeBox(dims, fs=RATE, materials=pra.Material(absorption), max_order=min(max_order, 12))
        src = [rng.uniform(0.3, d - 0.3) for d in dims]
        mic = [rng.uniform(0.3, d - 0.3) for d in dims]
        room.add_source(src)
        room.add_microphone(mic)
        room.compute_rir()
        h = np.asarray(room.rir[0][0], np.float64)[: int(0.6 * RATE)]
        out.append((h / np.max(np.abs(h))).astype(np.float32))
    return out


def make_mics(n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` microphone responses as second-order sections: a high-pass (80-400 Hz), a presence peak or dip
    (1-7 kHz, -8..+8 dB), a high-shelf tilt (-10..+4 dB above 2-6 kHz) and a low-pass (5-7.8 kHz) or none."""
    rng = np.random.default_rng(seed)
    mics = []
    for _ in range(n):
        sos = [signal.butter(2, rng.uniform(80, 400), "highpass", fs=RATE, output="sos")]
        sos.append(_peak(rng.uniform(1000, 7000), rng.uniform(-8, 8), rng.uniform(0.7, 3.0)))
        sos.append(_shelf(rng.uniform(2000, 6000), rng.uniform(-10, 4)))
        if rng.random() < 0.5:
            sos.append(signal.butter(2, rng.uniform(5000, 7800), "lowpass", fs=RATE, output="sos"))
        mics.append(np.concatenate(sos))
    return mics


def _peak(f0, gain_db, q):
    a = 10 ** (gain_db / 40)
    w = 2 * np.pi * f0 / RATE
    alpha = np.sin(w) / (2 * q)
    b = [1 + alpha * a, -2 * np.cos(w), 1 - alpha * a]
    den = [1 + alpha / a, -2 * np.cos(w), 1 - alpha / a]
    return signal.tf2sos(b, den)


def _shelf(f0, gain_db):
    a = 10 ** (gain_db / 40)
    w = 2 * np.pi * f0 / RATE
    alpha = np.sin(w) / 2 * np.sqrt(2)
    c, sa = np.cos(w), 2 * np.sqrt(a) * alpha
    b = [a * ((a + 1) + (a - 1) * c + sa), -2 * a * ((a - 1) + (a + 1) * c), a * ((a + 1) + (a - 1) * c - sa)]
    den = [(a + 1) - (a - 1) * c + sa, 2 * ((a - 1) - (a + 1) * c), (a + 1) - (a - 1) * c - sa]
    return signal.tf2sos(b, den)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-12))


def scale_to_dbfs(x: np.ndarray, dbfs: float) -> np.ndarray:
    return (x * (10 ** (dbfs / 20) / rms(x))).astype(np.float32)


def background(clips: list[Clip], seconds: float, rng) -> np.ndarray:
    """``seconds`` of real background as float: clips of one package drawn at random, concatenated."""
    n = int(seconds * RATE)
    out = np.zeros(0, np.float32)
    pkg = clips[rng.integers(len(clips))].package
    pool = [c for c in clips if c.package == pkg]
    while len(out) < n:
        c = pool[rng.integers(len(pool))]
        start = rng.integers(0, max(1, len(c.audio) - n))
        out = np.concatenate([out, c.audio[start:start + n - len(out)].astype(np.float32) / 32768])
    return out


@dataclass
class ClassConfig:
    """What a new class needs: its label, its generator and the decision defaults it ships with."""

    label: str
    generate: Callable  # (rng, seconds) -> (dry float signal at RATE, mask bool per sample where it sounds)
    hard_negatives: Callable | None  # (rng, seconds) -> float signal of synthetic non-target sound, or None
    window_frames: int = 100
    stride_frames: int = 8
    min_active_s: float = 0.19  # a window is positive when the target sounds this long inside it
    decision: dict = field(default_factory=dict)
    snr_db: tuple = (-5.0, 20.0)
    channels: tuple = (16, 24, 32, 32)  # DS-CNN widths (see build_model)
    min_duration_choices_ms: tuple = ()  # minimum event durations tried on the validation packages
    # (out_dir, data dir or None, test clips, test mics, rng) -> extra sed-eval manifest items (held-out report)
    extra_eval: Callable | None = None


def mix_scene(cfg: ClassConfig, bg: np.ndarray, rng, room: np.ndarray | None, mic, level_dbfs: float,
              positive: bool) -> tuple[np.ndarray, np.ndarray]:
    """(int16 scene, bool mask per sample): an event (or a synthetic hard negative) through ``room``, added to
    ``bg`` at an SNR drawn from the config, then the whole mix through ``mic`` and scaled to ``level_dbfs``."""
    seconds = len(bg) / RATE
    mask = np.zeros(len(bg), bool)
    if positive:
        ev, mask = cfg.generate(rng, seconds)
    else:
        ev = cfg.hard_negatives(rng, seconds)
    if room is not None:
        ev = signal.fftconvolve(ev, room)[: len(ev)].astype(np.float32)
    on = mask if mask.any() else np.abs(ev) > 1e-4
    snr = rng.uniform(*cfg.snr_db)
    ev_rms = rms(ev[on]) if on.any() else rms(ev)
    bg_rms = rms(bg) if np.any(bg) else 1e-4
    x = bg + ev * (bg_rms * 10 ** (snr / 20) / ev_rms)
    if mic is not None:
        x = signal.sosfilt(mic, x).astype(np.float32)
    x = scale_to_dbfs(x, level_dbfs)
    return to_int16(x), mask


# ---------------------------------------------------------------------------
# Features: sed_runtime's fixed-point frontend (what the device computes)
# ---------------------------------------------------------------------------

def features(audio_s16: np.ndarray) -> np.ndarray:
    """q8.7 log-mel frames [frames, n_mels] int16: CmsisFrontend, bit-exact to CMSIS-DSP."""
    return compute_features(SPEC, audio_s16)


def frame_mask(mask: np.ndarray, n_frames: int) -> np.ndarray:
    """Fraction of each frame's hop during which the target sounds."""
    hop = SPEC.hop_samples
    m = np.zeros(n_frames, np.float32)
    lim = min(len(mask) // hop, n_frames)
    if lim:
        m[:lim] = mask[: lim * hop].reshape(lim, hop).mean(axis=1)
    return m


class WindowSet:
    """Feature frames of many scenes, one array, with window starts that never cross a scene boundary."""

    def __init__(self, window_frames: int):
        self.w = window_frames
        self.frames: list[np.ndarray] = []
        self.active: list[np.ndarray] = []
        self.n = 0

    def add(self, frames: np.ndarray, active: np.ndarray | None, stride: int, min_active_frames: float):
        if len(frames) < self.w:
            return
        self.frames.append(frames)
        act = np.zeros(len(frames), np.float32) if active is None else active
        self.active.append(act)

    def finish(self, stride: int, min_active_frames: float):
        """Starts, targets (1 positive, 0 negative) and weights (0 for windows with only a little target)."""
        self.X = np.concatenate(self.frames).astype(np.int16)
        act = np.concatenate(self.active)
        starts, offset = [], 0
        for f in self.frames:
            starts.append(offset + np.arange(0, len(f) - self.w + 1, stride))
            offset += len(f)
        self.starts = np.concatenate(starts)
        csum = np.concatenate([[0.0], np.cumsum(act)])
        amount = csum[self.starts + self.w] - csum[self.starts]
        self.y = (amount >= min_active_frames).astype(np.float32)
        self.weight = np.where((amount > 0.5) & (amount < min_active_frames), 0.0, 1.0).astype(np.float32)
        self.frames, self.active = [], []
        return self

    def batch(self, idx: np.ndarray) -> np.ndarray:
        rows = self.starts[idx][:, None] + np.arange(self.w)[None, :]
        return self.X[rows]


# ---------------------------------------------------------------------------
# Model: a DS-CNN sized for a Cortex-M0+ (checked with sed-inspect after packing)
# ---------------------------------------------------------------------------

def build_model(n_mels: int, n_out: int = 1, channels=(16, 24, 32, 32)):
    import torch
    from torch import nn

    def dw(c_in, c_out, stride):
        return [nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in), nn.BatchNorm2d(c_in), nn.ReLU(),
                nn.Conv2d(c_in, c_out, 1), nn.BatchNorm2d(c_out), nn.ReLU()]

    c = channels
    layers = [nn.Conv2d(1, c[0], 3, 2, 1), nn.BatchNorm2d(c[0]), nn.ReLU()]
    layers += dw(c[0], c[1], 2) + dw(c[1], c[2], (2, 1)) + dw(c[2], c[3], 2)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(*layers)
            self.pool = nn.AdaptiveAvgPool2d(1)  # exports as GlobalAveragePool
            self.head = nn.Linear(c[3], n_out)

        def forward(self, x):  # x: [batch, 1, frames, n_mels] in natural-log units (q8.7 / 128)
            y = self.body(x)
            y = torch.flatten(self.pool(y), 1)
            return self.head(y)  # logits; the exported model ends in a sigmoid

    return Net()


def _score_windows(model, train_set: WindowSet, idx: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Float scores of the windows ``idx`` (eval mode, no gradients)."""
    import torch

    model.eval()
    out = np.empty(len(idx), np.float32)
    with torch.no_grad():
        for a in range(0, len(idx), chunk):
            x = torch.from_numpy(train_set.batch(idx[a:a + chunk]).astype(np.float32) / 128.0)[:, None]
            out[a:a + chunk] = torch.sigmoid(model(x))[:, 0].numpy()
    model.train()
    return out


def train(model, train_set: WindowSet, *, minutes: float, batch: int, seed: int, lr: float = 3e-3,
          log=print, checkpoint: Path | None = None, threads: int = 0, mine_at=(0.3, 0.55, 0.8),
          hard_share: float = 0.5) -> dict:
    """Adam + cosine decay on balanced batches (half positive windows), for ``minutes`` of wall time.

    Hard-negative mining: at each fraction of the budget in ``mine_at`` every negative window is scored, and
    from then on ``hard_share`` of each batch's negatives comes from the pool of negatives that ever scored
    above 0.5 (or the top 1 %, whichever is larger): the rare everyday sounds that resemble the target."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(threads or max(1, os.cpu_count() or 1))
    rng = np.random.default_rng(seed)
    pos = np.flatnonzero((train_set.y == 1) & (train_set.weight > 0))
    neg = np.flatnonzero((train_set.y == 0) & (train_set.weight > 0))
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    t0, step, losses = time.time(), 0, []
    budget = minutes * 60
    pending = sorted(mine_at)
    hard = np.zeros(0, np.int64)
    mined = []
    model.train()
    while (elapsed := time.time() - t0) < budget:
        if pending and elapsed >= pending[0] * budget:
            pending.pop(0)
            scores = _score_windows(model, train_set, neg)
            top = max(int(0.01 * len(neg)), int((scores > 0.5).sum()))
            hard = np.union1d(hard, neg[np.argsort(scores)[::-1][:top]])
            mined.append({"minute": round(elapsed / 60, 1), "above_0.5": int((scores > 0.5).sum()),
                          "pool": int(len(hard))})
            log(f"mined negatives: {mined[-1]}")
        for g in opt.param_groups:
            g["lr"] = lr * 0.5 * (1 + np.cos(np.pi * min(1.0, elapsed / budget)))
        n_neg = batch - batch // 2
        n_hard = int(hard_share * n_neg) if len(hard) else 0
        idx = np.concatenate([rng.choice(pos, batch // 2), rng.choice(neg, n_neg - n_hard),
                              rng.choice(hard, n_hard) if n_hard else np.zeros(0, np.int64)])
        x = torch.from_numpy(train_set.batch(idx).astype(np.float32) / 128.0)[:, None]
        x = x + 0.1 * torch.randn(len(idx), 1, 1, 1)  # small level offsets on top of the audio gains
        y = torch.from_numpy(train_set.y[idx])[:, None]
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % 500 == 0:
            log(f"step {step} {elapsed / 60:.1f} min loss {np.mean(losses[-500:]):.4f}")
            if checkpoint is not None:
                torch.save(model.state_dict(), checkpoint)
    model.eval()
    return {"steps": step, "minutes": round((time.time() - t0) / 60, 2), "final_loss": float(np.mean(losses[-200:])),
            "mining": mined}


def export_onnx(model, path: Path, window_frames: int, n_mels: int) -> None:
    """Float ONNX, input [1, 1, frames, n_mels] (log units), output sigmoid scores [1, n_out]."""
    import torch

    class WithSigmoid(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return torch.sigmoid(self.m(x))

    net = WithSigmoid(model).eval()
    torch.onnx.export(net, torch.zeros(1, 1, window_frames, n_mels), str(path), input_names=["features"],
                      output_names=["scores"], opset_version=17, dynamo=False)


# ---------------------------------------------------------------------------
# Evaluation files: held-out negatives per package and synthetic positives, as a sed-eval manifest
# ---------------------------------------------------------------------------

def write_negatives(clips: list[Clip], out_dir: Path, max_minutes_per_file: float = 30.0) -> list[dict]:
    """Concatenate each (package, category)'s clips into 16 kHz WAV files; manifest items with no labels."""
    out_dir.mkdir(parents=True, exist_ok=True)
    items = []
    groups: dict[tuple, list[Clip]] = {}
    for c in clips:
        groups.setdefault((c.package, c.category), []).append(c)
    for (pkg, cat), cs in groups.items():
        parts, n, k = [], 0, 0
        for c in cs + [None]:
            if c is not None:
                parts.append(c.audio)
                n += len(c.audio)
            if parts and (c is None or n >= max_minutes_per_file * 60 * RATE):
                name = out_dir / f"{pkg}_{cat}_{k}.wav"
                sf.write(name, np.concatenate(parts), RATE, subtype="PCM_16")
                items.append({"audio": str(name), "category": cat, "source": pkg, "positives": "none"})
                parts, n, k = [], 0, k + 1
    return items


def save_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, default=lambda o: sorted(o) if isinstance(o, set) else str(o)) + "\n")
