"""The streaming frontend's log-mel and MFCC frames against CMSIS-DSP itself, compiled for this machine.

Tier ``cmsis_host`` (see ``test_cmsis_host_rfft.py`` for the two host builds:
``target="generic"`` = the plain C path, ``target="dsp"`` = the ``ARM_MATH_DSP``
path).  For every configuration of a seeded grid, both targets and both
outputs, each frame of :class:`CmsisFrontend` is compared bit for bit with
the host library: MFCC frames with ``arm_mfcc_q15`` itself (instance from
``arm_mfcc_init_q15``), log-mel frames with the q8.7 vector ``arm_mfcc_q15``
passes to its DCT (``logmel_q15.c``).  The oracle gets the frontend's own
tables, so table generation is not under test here (``tests/frontend`` checks
it against the cmsisdsp wheel).

Grid: common firmware configurations plus a seeded draw per FFT length.
Every ``arm_rfft_q15`` length, 32 to 8192 (the host's ``arm_mfcc_init_q15``
accepts 8192: it only forwards the length to ``arm_rfft_init_q15``); sample
rates 8 to 48 kHz; 10 to 128 mels; band edges 0..300 Hz and 3800 Hz..Nyquist;
10 to 20 DCT outputs; full-length and zero-padded windows
(``fft_len/4 <= window_samples < fft_len``); hops from a quarter of the
window up to the whole window (one named configuration).  Two kinds of drawn
configuration are counted and skipped: those whose first mel filter covers
no FFT bin have no tables (:class:`ConfigError`, as in the cmsisdsp
generator), and those with more mels than FFT points, which ``arm_mfcc_q15``
cannot run (it stores the log-mel vector in its ``fft_len``-sample input
buffer and would write past it).  The number of tested configurations is
asserted.

Audio: one stream per configuration, fed in seeded random chunks, made of
segments of silence, seeded noise at four levels, clipped noise, a constant
-32768 rail, noise peaking at exactly +-32767, +-1 LSB impulses, and
excerpts of the recordings in ``../shared/fixtures/{real,micro_speech}``
(16 kHz; at other rates the same samples are simply taken to be at that
rate), plain and amplified into clipping.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import cmsis_host
from _compare import assert_equal_ints
from sed_runtime.errors import ConfigError
from sed_runtime.frontend import CmsisFrontend, FrontendSpec, MfccTablesQ15

pytestmark = pytest.mark.cmsis_host

TARGETS = {"generic": "plain", "dsp": "dsp"}

FFT_LENGTHS = cmsis_host.RFFT_LENGTHS  # 32 .. 8192
SAMPLE_RATES_HZ = (8000, 16000, 22050, 32000, 44100, 48000)
N_MELS = (10, 20, 23, 32, 40, 64, 80, 128)
LOWER_HZ = (0.0, 20.0, 50.0, 125.0, 300.0)
UPPER_HZ = (3800.0, 4000.0, 7600.0, 8000.0, None)  # None: sample_rate_hz / 2
N_DCT = (10, 12, 13, 20)

CONFIGS_PER_FFT_LEN = 40  # drawn configurations with tables, per FFT length
MIN_CONFIGS_PER_FFT_LEN = 30
MIN_PADDED_PER_FFT_LEN = 10
MIN_TESTED = 300
GRID_SEED = 20261127

SHARED = Path(__file__).resolve().parents[3] / "shared"
RECORDING_DIRS = (SHARED / "fixtures" / "real", SHARED / "fixtures" / "micro_speech")

SEGMENT_KINDS = (
    "silence", "noise_1lsb", "noise_30", "noise_1000", "noise_12000", "clipped_noise",
    "rail_-32768", "peak_32767", "impulse_+1", "impulse_-1", "recording", "recording", "recording_x16",
)


@dataclass(frozen=True)
class Config:
    sample_rate_hz: int
    fft_len: int
    window_samples: int
    hop_samples: int
    n_mels: int
    lower_hz: float
    upper_hz: float | None  # None: Nyquist
    n_dct: int

    @property
    def padded(self) -> bool:
        return self.window_samples < self.fft_len

    @property
    def name(self) -> str:
        upper = "nyq" if self.upper_hz is None else f"{self.upper_hz:g}"
        return (f"N{self.fft_len}-w{self.window_samples}-h{self.hop_samples}-fs{self.sample_rate_hz}"
                f"-mel{self.n_mels}-{self.lower_hz:g}to{upper}Hz-dct{self.n_dct}")

    def spec(self, target: str, n_dct: int) -> FrontendSpec:
        return FrontendSpec(sample_rate_hz=self.sample_rate_hz, window_samples=self.window_samples,
                            hop_samples=self.hop_samples, fft_len=self.fft_len, n_mels=self.n_mels,
                            lower_hz=self.lower_hz, upper_hz=self.upper_hz, n_dct=n_dct, target=target)


# Configurations firmware projects use, always tested.
NAMED_CONFIGS = (
    Config(16000, 512, 400, 160, 40, 20.0, 8000.0, 13),    # 25 ms / 10 ms
    Config(16000, 512, 480, 320, 40, 20.0, 4000.0, 10),    # 30 ms / 20 ms keyword spotting
    Config(16000, 1024, 640, 320, 64, 125.0, 7600.0, 20),  # 40 ms / 20 ms
    Config(8000, 256, 200, 80, 23, 0.0, None, 12),         # 25 ms / 10 ms at 8 kHz
    Config(16000, 256, 200, 100, 20, 50.0, 8000.0, 13),
    Config(8000, 64, 50, 25, 10, 125.0, 3800.0, 10),
    Config(8000, 32, 32, 16, 10, 300.0, None, 10),
    Config(44100, 2048, 2048, 512, 128, 0.0, None, 20),
    Config(48000, 4096, 3000, 1500, 80, 300.0, 8000.0, 13),
    Config(22050, 8192, 8192, 2048, 128, 0.0, None, 20),
    Config(16000, 1024, 1024, 1024, 40, 20.0, 8000.0, 13),  # hop == window
)


def _filter_bank_error(cfg: Config) -> ConfigError | None:
    """The ConfigError that keeps ``cfg`` from having tables, or None."""
    upper = cfg.sample_rate_hz / 2 if cfg.upper_hz is None else cfg.upper_hz
    try:
        MfccTablesQ15.from_config(sample_rate_hz=cfg.sample_rate_hz, fft_len=cfg.fft_len, n_mels=cfg.n_mels,
                                  lower_hz=cfg.lower_hz, upper_hz=upper, n_dct=0)
    except ConfigError as exc:
        return exc
    return None


def _is_empty_first_filter(exc: ConfigError) -> bool:
    text = str(exc)
    return text.startswith("mel filter 0 ") and "has no FFT bin with a non-zero weight" in text


def _draw_grid():
    """Seeded sample of the grid: (tested configs, skip counts by reason, other table errors)."""
    rng = np.random.default_rng(GRID_SEED)
    tested = []
    skipped = {"empty first mel filter": 0, "n_mels > fft_len": 0}
    other_errors = []
    for cfg in NAMED_CONFIGS:
        exc = _filter_bank_error(cfg)
        if exc is not None or cfg.n_mels > cfg.fft_len:
            other_errors.append(f"{cfg.name}: {exc or 'n_mels > fft_len'}")
        else:
            tested.append(cfg)
    bands = [(fs, m, lo, up) for fs, m, lo, up in itertools.product(SAMPLE_RATES_HZ, N_MELS, LOWER_HZ, UPPER_HZ)
             if up is None or up <= fs / 2]
    for fft_len in FFT_LENGTHS:
        found = 0
        for index in rng.permutation(len(bands)):
            if found == CONFIGS_PER_FFT_LEN:
                break
            fs, n_mels, lower, upper = bands[index]
            if found % 2:  # every other configuration zero-pads a shorter window
                window = int(rng.integers(fft_len // 4, fft_len))
            else:
                window = fft_len
            hop = int(rng.integers(max(1, window // 4), window))
            n_dct = int(rng.choice([d for d in N_DCT if d <= n_mels]))
            cfg = Config(fs, fft_len, window, hop, n_mels, lower, upper, n_dct)
            if n_mels > fft_len:
                skipped["n_mels > fft_len"] += 1
                continue
            exc = _filter_bank_error(cfg)
            if exc is None:
                tested.append(cfg)
                found += 1
            elif _is_empty_first_filter(exc):
                skipped["empty first mel filter"] += 1
            else:
                other_errors.append(f"{cfg.name}: {exc}")
    return tuple(tested), skipped, tuple(other_errors)


GRID, SKIPPED, OTHER_TABLE_ERRORS = _draw_grid()


@pytest.fixture(scope="session")
def hosts():
    if cmsis_host.find_compiler() is None:
        pytest.skip("cmsis_host tier needs a C compiler: gcc (or $CC) not found on PATH")
    cmsis_host.build_all()
    return {target: cmsis_host.CmsisHost(flavor) for target, flavor in TARGETS.items()}


@cache
def _recordings() -> tuple[tuple[str, np.ndarray], ...]:
    """(name, int16 samples) of every 16 kHz mono recording in the shared fixtures."""
    found = []
    for directory in RECORDING_DIRS:
        for path in sorted(directory.glob("*.wav")):
            data, rate = sf.read(str(path), dtype="int16", always_2d=False)
            if rate != 16000 or data.ndim != 1:
                raise AssertionError(f"{path.name}: expected 16 kHz mono, got {rate} Hz, shape {data.shape}")
            found.append((path.name, data))
    return tuple(found)


def _segment(kind: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """``n`` int16 samples of one kind, and a label for messages."""
    if kind == "silence":
        return np.zeros(n, np.int16), kind
    if kind.startswith("noise_"):
        level = {"noise_30": 30.0, "noise_1000": 1000.0, "noise_12000": 12000.0}.get(kind)
        x = rng.integers(-1, 2, n) if level is None else np.round(rng.normal(0.0, level, n))
        return np.clip(x, -32768, 32767).astype(np.int16), kind
    if kind == "clipped_noise":  # most samples on the rails, -32768 included
        return np.clip(np.round(rng.normal(0.0, 3 * 32768.0, n)), -32768, 32767).astype(np.int16), kind
    if kind == "rail_-32768":  # |peak| saturates to 0x7FFF: no normalisation
        return np.full(n, -32768, np.int16), kind
    if kind == "peak_32767":  # peak exactly 0x7FFF (never -32768): no normalisation
        x = np.clip(np.round(rng.normal(0.0, 3000.0, n)), -32767, 32767)
        x[rng.integers(0, n, max(1, n // 64))] = rng.choice([-32767, 32767], max(1, n // 64))
        return x.astype(np.int16), kind
    if kind in ("impulse_+1", "impulse_-1"):
        x = np.zeros(n, np.int16)
        at = int(rng.integers(n // 4, 3 * n // 4))
        x[at] = 1 if kind == "impulse_+1" else -1
        return x, f"{kind}@{at}"
    if kind in ("recording", "recording_x16"):
        recordings = _recordings()
        long_enough = [r for r in recordings if r[1].shape[0] >= n]
        name, data = long_enough[int(rng.integers(len(long_enough)))] if long_enough else max(
            recordings, key=lambda r: r[1].shape[0])
        if data.shape[0] < n:
            data = np.resize(data, n)
        start = int(rng.integers(0, data.shape[0] - n + 1))
        x = data[start:start + n]
        if kind == "recording_x16":
            x = np.clip(x.astype(np.int64) * 16, -32768, 32767).astype(np.int16)
        return x, f"{kind}:{name}@{start}"
    raise ValueError(kind)


def _stream(cfg: Config, seed: int) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """The test audio of one configuration and its segments (start, stop, label)."""
    rng = np.random.default_rng([GRID_SEED, seed])
    length = cfg.window_samples + 4 * cfg.hop_samples  # >= 4 frames inside each segment
    parts, segments, at = [], [], 0
    kinds = [k for k in SEGMENT_KINDS if _recordings() or not k.startswith("recording")]
    for kind in rng.permutation(kinds):
        x, label = _segment(str(kind), length, rng)
        parts.append(x)
        segments.append((at, at + length, label))
        at += length
    return np.concatenate(parts), segments


def _feed(frontend: CmsisFrontend, samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """All frames of ``samples``, fed in random chunks of 1 .. window + 2*hop samples."""
    spec = frontend.spec
    frames, pos = [], 0
    while pos < samples.shape[0]:
        take = int(rng.integers(1, spec.window_samples + 2 * spec.hop_samples + 1))
        frames.append(frontend.process(samples[pos:pos + take]).copy())
        pos += take
    return np.concatenate(frames)


def _frame_labels(cfg: Config, k: int, segments) -> str:
    lo, hi = k * cfg.hop_samples, k * cfg.hop_samples + cfg.window_samples
    return " + ".join(label for start, stop, label in segments if start < hi and lo < stop)


def _check_frames(actual, expected, cfg: Config, target: str, output: str, segments) -> None:
    bad = np.flatnonzero((actual != expected).any(axis=1))
    if bad.size:
        k = int(bad[0])
        assert_equal_ints(
            actual[k], expected[k],
            f"{output} target={target} {cfg.name} frame {k} [{_frame_labels(cfg, k, segments)}] "
            f"({bad.size} of {actual.shape[0]} frames differ, first {bad[:8].tolist()})",
        )


@pytest.mark.parametrize("cfg", GRID, ids=[c.name for c in GRID])
@pytest.mark.parametrize("target", tuple(TARGETS))
def test_logmel_and_mfcc_frames_match_host_cmsis(hosts, target, cfg):
    host = hosts[target]
    samples, segments = _stream(cfg, GRID.index(cfg))
    logmel_fe = CmsisFrontend(cfg.spec(target, 0)).prepare()
    mfcc_fe = CmsisFrontend(cfg.spec(target, cfg.n_dct)).prepare()
    rng = np.random.default_rng([GRID_SEED, GRID.index(cfg), list(TARGETS).index(target)])
    logmel = _feed(logmel_fe, samples, rng)
    mfcc = _feed(mfcc_fe, samples, rng)

    n_frames = logmel_fe.spec.frames_in(samples.shape[0])
    assert logmel.shape == (n_frames, cfg.n_mels)
    assert mfcc.shape == (n_frames, cfg.n_dct)
    tables = mfcc_fe.tables
    for name in ("window_q15", "filter_pos", "filter_len", "filter_coefs_q15"):
        assert_equal_ints(getattr(logmel_fe.tables, name), getattr(tables, name), f"{cfg.name} {name}")
    assert not tables.window_q15[cfg.window_samples:].any(), f"{cfg.name}: window not zero past window_samples"

    expected_logmel = np.empty_like(logmel)
    expected_mfcc = np.empty_like(mfcc)
    frame = np.zeros(cfg.fft_len, np.int16)
    for k in range(n_frames):
        frame[:cfg.window_samples] = samples[k * cfg.hop_samples:k * cfg.hop_samples + cfg.window_samples]
        expected_logmel[k], expected_mfcc[k] = host.mfcc_q15(
            frame, tables.window_q15, tables.filter_pos, tables.filter_len, tables.filter_coefs_q15,
            tables.dct_q15, cfg.fft_len)
    _check_frames(logmel, expected_logmel, cfg, target, "log-mel", segments)
    _check_frames(mfcc, expected_mfcc, cfg, target, "mfcc", segments)


def test_recordings_are_available():
    if not _recordings():
        pytest.skip(f"no recordings (*.wav) in {RECORDING_DIRS[0]} or {RECORDING_DIRS[1]}: "
                    "the frame checks ran on synthetic audio only")


def test_grid_covers_every_fft_length_and_padded_windows():
    """Each FFT length has enough configurations with tables, padded windows included.

    Every configuration runs on both targets and gives both outputs, so these
    counts hold per target and per output.
    """
    assert not OTHER_TABLE_ERRORS, (
        "configurations without tables for a reason other than an empty first filter: "
        + "; ".join(OTHER_TABLE_ERRORS))
    per_len = {n: [c for c in GRID if c.fft_len == n] for n in FFT_LENGTHS}
    short = {n: (len(cs), sum(c.padded for c in cs)) for n, cs in per_len.items()
             if len(cs) < MIN_CONFIGS_PER_FFT_LEN or sum(c.padded for c in cs) < MIN_PADDED_PER_FFT_LEN}
    assert not short, (
        f"(configs, padded) per fft_len below ({MIN_CONFIGS_PER_FFT_LEN}, {MIN_PADDED_PER_FFT_LEN}): {short}")
    assert len(GRID) >= MIN_TESTED, (
        f"{len(GRID)} configurations tested (skipped: {SKIPPED}); expected >= {MIN_TESTED}")
    assert len(set(GRID)) == len(GRID)
