"""End to end: ``Detector`` per 20 ms hop against the same pipeline assembled from peers.

Gates (issue item 10), on 10 minutes of real audio with a DS-CNN-S-sized
keyword model (``_models.build_ds_cnn_s``: MFCC 49 x 10, 2.66 M MACs, 24 kB of
weights, an inference every hop):

* ours takes at most 1.0x the median per-hop time of the peer pipeline run in
  the same process on the same audio: ``cmsisdsp.arm_mfcc_q15`` per hop (same
  tables), int8 quantization and a 49 x 10 window in numpy, onnxruntime on the
  same QDQ model (one thread, sequential), numpy moving-average smoothing and a
  threshold compare.  Segments of 30 s alternate between ours and the peer;
  per-hop times are ``time.perf_counter`` around each call.
* ours has a p99 per hop of at most 2x its own p50, in this thread's CPU time
  (what the scheduler gives other processes on a shared machine does not
  count; the wall-clock p99 is reported);
* the Python overhead per hop outside the kernels is reported (an instrumented
  pass times every kernel call; the rest of the hop is overhead);
* warm start (fresh interpreter, Numba cache warm) from ``import sed_runtime``
  to the first scores takes at most 1 s of CPU time (the issue's absolute
  bound; the wall time is reported beside it); the cold start with an empty
  Numba cache is reported.

Preconditions (asserted): our MFCC frames equal ``arm_mfcc_q15`` on hops of the
bench audio, the peer's float int8 quantization is within one step of ours
(TFLM's integer requantization) on them, and our model's int8 output equals
tflite-micro running the exported ``.tflite`` on real feature windows.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest

from conftest import SHARED, report_gate
from sed_runtime import load_model
from sed_runtime.detector import Detector
from sed_runtime.frontend.cmsis import CmsisFrontend
from sed_runtime.io.wavfile import read_pcm16

cmsisdsp = pytest.importorskip("cmsisdsp")
ort = pytest.importorskip("onnxruntime")

from _models import DS_CNN_SPEC, build_ds_cnn_s  # noqa: E402  (after the skips: it imports onnx)

GATE_RATIO = 1.0        # ours / peer, median per-hop time
GATE_TAIL = 2.0         # ours p99 / ours p50
GATE_WARM_START_S = 1.0
RATE = DS_CNN_SPEC.sample_rate_hz
HOP = DS_CNN_SPEC.hop_samples
AUDIO_S = 600           # 10 minutes
SEGMENT_HOPS = 1500     # 30 s per interleaved segment
OVERHEAD_HOPS = 3000    # 60 s in the instrumented pass
WARM_RUNS = 7  # median of 7 fresh interpreters: 3 left the median to one noisy start on a shared machine

# Met and enforced: 0.90-0.92 in two runs after the engine's pointwise/first-conv rework (0.96-0.99 before it,
# 1.17 before the row-wise depthwise loops, 4.1 before the im2col rework).


# ---------------------------------------------------------------------------
# Data and model
# ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def clip() -> np.ndarray:
    samples, _ = read_pcm16(SHARED / "fixtures" / "real" / "mixed_5min.wav", RATE)
    return samples


@pytest.fixture(scope="session")
def ds_cnn_path(tmp_path_factory, clip):
    """The QDQ int8 DS-CNN-S ONNX model, stamped with metadata, in a temporary directory."""
    return build_ds_cnn_s(tmp_path_factory.mktemp("ds_cnn_s"), clip[: RATE * 120], seed=0)


@pytest.fixture(scope="module")
def audio(clip) -> np.ndarray:
    """10 minutes of real audio: the 254 s recording repeated, whole hops only."""
    n = AUDIO_S * RATE
    return np.ascontiguousarray(np.tile(clip, -(-n // clip.shape[0]))[:n])


def _hops(audio: np.ndarray) -> list[np.ndarray]:
    return [audio[k:k + HOP] for k in range(0, audio.shape[0] - HOP + 1, HOP)]


def _detector(path) -> Detector:
    detector = Detector(load_model(path))
    detector.process(np.zeros(RATE, np.int16))  # compile / load every kernel
    detector.reset()
    return detector


# ---------------------------------------------------------------------------
# The peer pipeline
# ---------------------------------------------------------------------------

class PeerPipeline:
    """The same detector assembled from peers, fed one 20 ms hop per call.

    ``arm_mfcc_q15`` (cmsisdsp wheel, our frontend's tables) on the last
    window of samples zero-padded to the FFT length; int8 features in numpy;
    a [49, 10] int8 window shifted by one row per hop; onnxruntime on the same
    QDQ model (one thread, sequential); a moving average of the scores over
    the decision's smoothing steps compared with the on-thresholds.
    ``mfcc`` and ``run`` are the two kernel calls (replaceable to time them).
    """

    def __init__(self, model_path, detector: Detector) -> None:
        spec = detector.spec
        tables = CmsisFrontend(replace(spec, quantization=None)).prepare().tables
        self._inst = cmsisdsp.arm_mfcc_instance_q15()
        status = cmsisdsp.arm_mfcc_init_q15(self._inst, spec.fft_len, spec.n_mels, spec.n_dct, tables.dct_q15.ravel(),
                                            tables.filter_pos, tables.filter_len, tables.filter_coefs_q15,
                                            tables.window_q15)
        assert status == 0, f"arm_mfcc_init_q15 returned {status}"
        self._tmp = np.zeros(2 * spec.fft_len + 2, np.int32)
        self.mfcc = cmsisdsp.arm_mfcc_q15
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self.run = session.run
        self._input_name = session.get_inputs()[0].name
        self._input_shape = tuple(session.get_inputs()[0].shape)
        q = spec.quantization
        self._q_scale, self._q_zp = np.float32(q.scale), np.float32(q.zero_point)
        self._q_gain = 1.0 / (128.0 * q.scale)  # q8.7 -> int8 steps
        self._window_samples, self._hop = spec.window_samples, spec.hop_samples
        self._frame = np.zeros(spec.fft_len, np.int16)
        self._history = np.zeros(spec.window_samples, np.int16)
        self._window = np.zeros((detector.window_frames, spec.bins), np.int8)
        resolved = detector.decision.resolved
        self._scores = np.zeros((resolved.smoothing_steps, len(detector.labels)), np.float32)
        self._on = resolved.on
        self.reset()

    def reset(self) -> None:
        self._history[:] = 0
        self._window[:] = 0
        self._scores[:] = 0
        self.hops = 0
        self.frames = 0
        self.steps = 0

    def features(self, hop: np.ndarray):
        """One hop in -> (q8.7 MFCC, int8 features) of the frame it completes, or None before the first."""
        w, h = self._window_samples, self._hop
        self._history[:w - h] = self._history[h:]
        self._history[w - h:] = hop
        self.hops += 1
        if self.hops * h < w:
            return None
        self.frames += 1
        self._frame[:w] = self._history  # the tail stays zero: the wrapper copies its input
        _, mfcc = self.mfcc(self._inst, self._frame, self._tmp)
        q = np.clip(np.rint(mfcc * self._q_gain) + self._q_zp, -128, 127).astype(np.int8)
        return mfcc, q

    def process(self, hop: np.ndarray):
        """One hop in -> the classes over threshold after smoothing (None until the window is full)."""
        got = self.features(hop)
        if got is None:
            return None
        self._window[:-1] = self._window[1:]
        self._window[-1] = got[1]
        if self.frames < self._window.shape[0]:
            return None
        x = ((self._window.astype(np.float32) - self._q_zp) * self._q_scale).reshape(self._input_shape)
        (scores,) = self.run(None, {self._input_name: x})
        self._scores[self.steps % self._scores.shape[0]] = scores.reshape(-1)
        self.steps += 1
        smoothed = self._scores.sum(axis=0) / min(self.steps, self._scores.shape[0])
        return smoothed >= self._on


# ---------------------------------------------------------------------------
# Preconditions: the same integers
# ---------------------------------------------------------------------------

def test_bit_exact_preconditions(ds_cnn_path, audio):
    """Both pipelines compute the same features, and our model gives tflite-micro's integers."""
    detector = _detector(ds_cnn_path)
    peer = PeerPipeline(ds_cnn_path, detector)
    hops = _hops(audio)
    # frames: every 97th hop over the 10 minutes (the frame that hop completes)
    checked = mismatches_q15 = 0
    s8_diff = []
    sample = set(range(200, len(hops), 97))
    for k, hop in enumerate(hops):
        ours_s8 = detector.frontend.process(hop)
        ours_q15 = detector.frontend.last_frames_q15
        got = peer.features(hop)
        if k in sample:
            assert ours_s8.shape[0] == 1 and got is not None
            mismatches_q15 += not np.array_equal(ours_q15[0], got[0])
            s8_diff.append(got[1].astype(np.int16) - ours_s8[0])
            checked += 1
    assert checked > 300
    assert mismatches_q15 == 0, f"{mismatches_q15} of {checked} MFCC frames differ from arm_mfcc_q15"
    # The peer quantizes in float (numpy rint: half to even), ours as TFLM does (integer multiplier, double
    # rounding), so a value near a midpoint may land one step apart: same scale and zero point, same work.
    s8_diff = np.abs(np.concatenate(s8_diff))
    assert s8_diff.max() <= 1, f"the peer's int8 features differ from ours by up to {s8_diff.max()} steps"

    # model: int8 output == tflite-micro on the exported .tflite, on real feature windows
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    from sed_runtime.model.export_tflite import export_tflite
    from sed_runtime.model.interpreter import load_graph

    interpreter = runtime.Interpreter.from_bytes(export_tflite(load_graph(ds_cnn_path)), arena_size=1 << 20)
    features = CmsisFrontend(detector.spec).prepare().process(audio[: RATE * 60]).copy()
    model = detector.model
    starts = np.random.default_rng(0).integers(0, features.shape[0] - detector.window_frames, 8)
    for s in starts:
        window = features[s:s + detector.window_frames].reshape(model.inputs[0].shape)
        interpreter.set_input(window, 0)
        interpreter.invoke()
        expected = np.array(interpreter.get_output(0))
        got = model.invoke(window)
        assert np.array_equal(got, expected), f"window at frame {s}: ours {got} tflite-micro {expected}"


# ---------------------------------------------------------------------------
# Per hop, interleaved with the peer
# ---------------------------------------------------------------------------

def _timed(fn, hops: list[np.ndarray], wall: list[float], cpu: list[float]) -> None:
    """Append the wall-clock seconds of ``fn(hop)`` per hop, and this thread's CPU seconds around them."""
    clock, cpu_clock = time.perf_counter, time.thread_time
    for hop in hops:
        c0 = cpu_clock()
        t0 = clock()
        fn(hop)
        t1 = clock()
        cpu.append(cpu_clock() - c0)
        wall.append(t1 - t0)


@pytest.fixture(scope="module")
def per_hop(ds_cnn_path, audio):
    """Per-hop seconds of ours and of the peer over the 10 minutes, 30 s segments alternating.

    Wall clock (``perf_counter``), and this thread's CPU time (``thread_time``,
    read outside the wall-clock interval), which the time the scheduler gives
    to other processes does not inflate.
    """
    detector = _detector(ds_cnn_path)
    peer = PeerPipeline(ds_cnn_path, detector)
    for hop in _hops(audio[: RATE * 2]):  # warm onnxruntime
        peer.process(hop)
    peer.reset()
    hops = _hops(audio)
    times: dict[str, list[float]] = {"ours": [], "ours_cpu": [], "peer": [], "peer_cpu": []}
    for r, start in enumerate(range(0, len(hops), SEGMENT_HOPS)):
        segment = hops[start:start + SEGMENT_HOPS]
        runs = [(detector.process, "ours"), (peer.process, "peer")]
        for fn, name in (runs if r % 2 == 0 else runs[::-1]):
            _timed(fn, segment, times[name], times[f"{name}_cpu"])
    detector.flush()
    return dict({k: np.asarray(v) for k, v in times.items()}, audio_s=audio.shape[0] / RATE, detector=detector,
                peer_pipeline=peer)


def _stats(t: np.ndarray, audio_s: float) -> dict:
    return dict(p50_us=float(np.median(t) * 1e6), p99_us=float(np.percentile(t, 99) * 1e6),
                mean_us=float(t.mean() * 1e6), x_real_time=float(audio_s / t.sum()))


def test_gate_per_hop_vs_peer_pipeline(per_hop, benchmark):
    ours, peer = _stats(per_hop["ours"], per_hop["audio_s"]), _stats(per_hop["peer"], per_hop["audio_s"])
    ratio = ours["p50_us"] / peer["p50_us"]
    benchmark.extra_info.update(
        ratio=round(ratio, 3), gate=GATE_RATIO, hops=int(per_hop["ours"].shape[0]),
        **{f"ours_{k}": round(v, 1) for k, v in ours.items()}, **{f"peer_{k}": round(v, 1) for k, v in peer.items()})
    detector = per_hop["detector"]
    detector.reset()
    hop = np.zeros(HOP, np.int16)
    for _ in range(60):
        detector.process(hop)  # the window is full: every call runs the model
    benchmark.pedantic(detector.process, args=(hop,), rounds=500, iterations=1)
    xrt_cpu = {name: per_hop["audio_s"] / per_hop[f"{name}_cpu"].sum() for name in ("ours", "peer")}
    benchmark.extra_info.update(ours_x_real_time_cpu=round(xrt_cpu["ours"], 1),
                                peer_x_real_time_cpu=round(xrt_cpu["peer"], 1))
    report_gate(f"detector e2e per 20 ms hop: ours p50 {ours['p50_us']:.0f} us (p99 {ours['p99_us']:.0f}, mean "
                f"{ours['mean_us']:.0f}; {ours['x_real_time']:.0f}x real time, {xrt_cpu['ours']:.0f}x in CPU time), "
                f"peer cmsisdsp+onnxruntime+numpy p50 {peer['p50_us']:.0f} us (p99 {peer['p99_us']:.0f}; "
                f"{peer['x_real_time']:.0f}x real time, {xrt_cpu['peer']:.0f}x in CPU time), ratio {ratio:.2f} "
                f"(gate <= {GATE_RATIO})")
    assert ratio <= GATE_RATIO, f"ours/peer median per-hop time {ratio:.2f} exceeds the gate {GATE_RATIO}"


def test_gate_tail_per_hop(per_hop):
    """p99 / p50 of our per-hop time, in this thread's CPU time, per segment, median over segments.

    Our own irregular costs (a collection, an event, a buffer growing) count
    fully in CPU time; the time the scheduler hands to other processes on a
    shared machine does not.  The wall-clock p99 is reported beside it.
    """
    cpu = np.asarray(per_hop["ours_cpu"])
    # The ratio is taken per 30 s segment (1,500 hops: p99 = the 15th largest) and the median over the 20
    # segments is gated, so a few seconds in which a neighbouring process thrashes the shared caches (which
    # inflates CPU time too) do not decide the result; a steady tail of our own raises every segment's ratio.
    segments = [cpu[i:i + SEGMENT_HOPS] for i in range(0, cpu.shape[0], SEGMENT_HOPS)]
    ratios = [float(np.percentile(seg, 99) / np.median(seg)) for seg in segments if seg.shape[0] >= 100]
    tail = float(np.median(ratios))
    p50, p99 = float(np.median(cpu)), float(np.percentile(cpu, 99))
    wall = _stats(per_hop["ours"], per_hop["audio_s"])
    report_gate(f"detector e2e tail: ours p99/p50 per hop {tail:.2f} in thread CPU time, median over {len(ratios)} "
                f"segments (range {min(ratios):.2f}-{max(ratios):.2f}; whole run p99 {p99 * 1e6:.0f} us, "
                f"p50 {p50 * 1e6:.0f} us; gate <= {GATE_TAIL}); wall clock p99 {wall['p99_us']:.0f} us / p50 "
                f"{wall['p50_us']:.0f} us = {wall['p99_us'] / wall['p50_us']:.2f}")
    assert tail <= GATE_TAIL, f"ours p99/p50 per hop {tail:.2f} (thread CPU time) exceeds the gate {GATE_TAIL}"


def test_peer_pipeline_per_hop(per_hop, benchmark):
    """The peer alone, for the record (per 20 ms hop with the window full: one onnxruntime run per call)."""
    peer = per_hop["peer_pipeline"]
    hop = np.zeros(HOP, np.int16)
    for _ in range(60):
        peer.process(hop)
    benchmark.pedantic(peer.process, args=(hop,), rounds=500, iterations=1)


# ---------------------------------------------------------------------------
# Where a hop goes: kernels vs Python
# ---------------------------------------------------------------------------

class _Clock:
    """Wraps callables so that the time spent inside them, their calls and their arguments add up per key."""

    def __init__(self) -> None:
        self.inside: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.args: dict[str, int] = {}

    def wrap(self, key: str, fn):
        for table in (self.inside, self.calls, self.args):
            table.setdefault(key, 0)
        clock, inside, calls, n_args = time.perf_counter, self.inside, self.calls, self.args

        def timed(*args):
            t0 = clock()
            result = fn(*args)
            inside[key] += clock() - t0
            calls[key] += 1
            n_args[key] += len(args)
            return result

        return timed

    def snapshot(self) -> np.ndarray:
        """Time inside, calls and arguments so far, per key (in key order)."""
        return np.array([*self.inside.values(), *self.calls.values(), *self.args.values()])


class _WrapperCost:
    """What a wrapped call costs, linear in its number of arguments, measured on a no-op (medians of 5).

    ``added``: seconds the wrapper adds to the caller; ``counted``: the part of
    them that lands inside the time it records.
    """

    def __init__(self, wide: int = 24, n: int = 20000) -> None:
        def noop(*args):
            return None

        self.per_call = self._measure(noop, (), n)
        wide_cost = self._measure(noop, (0,) * wide, n)
        self.per_arg = tuple((w - c) / wide for w, c in zip(wide_cost, self.per_call))

    @staticmethod
    def _measure(noop, args, n) -> tuple[float, float]:
        clock = _Clock()
        timed = clock.wrap("noop", noop)
        added, counted = [], []
        for _ in range(5):
            before = clock.inside["noop"]
            t0 = time.perf_counter()
            for _ in range(n):
                timed(*args)
            t1 = time.perf_counter()
            for _ in range(n):
                noop(*args)
            t2 = time.perf_counter()
            added.append(((t1 - t0) - (t2 - t1)) / n)
            counted.append((clock.inside["noop"] - before - (t2 - t1)) / n)
        return statistics.median(added), statistics.median(counted)

    def added(self, calls: float, args: float) -> float:
        return calls * self.per_call[0] + args * self.per_arg[0]

    def counted(self, calls: float, args: float) -> float:
        return max(calls * self.per_call[1] + args * self.per_arg[1], 0.0)


def _instrumented(fn, hops: list[np.ndarray], clock: _Clock, runs: dict[str, list]) -> None:
    """Per hop: wall-clock and thread CPU seconds of ``fn(hop)`` and what ``clock`` counted during it."""
    wall_clock, cpu_clock = time.perf_counter, time.thread_time
    for hop in hops:
        before = clock.snapshot()
        c0 = cpu_clock()
        t0 = wall_clock()
        fn(hop)
        t1 = wall_clock()
        runs["cpu"].append(cpu_clock() - c0)
        runs["wall"].append(t1 - t0)
        runs["counts"].append(clock.snapshot() - before)


def _breakdown(clock: _Clock, runs: dict[str, list], cost: _WrapperCost,
               stages: dict[str, str] | None = None) -> dict[str, float]:
    """Mean microseconds per hop: each kernel group, the Python around it, and the Python outside all kernels.

    ``clock`` times kernel groups (keys) and, optionally, the public calls
    that contain them (``stages``: stage key -> kernel group key); the cost of
    every wrapper is taken out of the time it lands in.  Only hops the
    scheduler did not interrupt count (wall clock within 5 % of the thread's
    CPU time): means over the others would charge other processes' time to
    whichever stage was running.
    """
    stages = stages or {}
    wall, cpu = np.asarray(runs["wall"]), np.asarray(runs["cpu"])
    kept = wall - cpu <= 0.05 * cpu
    counts = np.asarray(runs["counts"])[kept].mean(axis=0)
    keys = list(clock.inside)
    n = len(keys)
    inside = dict(zip(keys, counts[:n]))
    calls = dict(zip(keys, counts[n:2 * n]))
    args = dict(zip(keys, counts[2 * n:]))
    kernels = {k: inside[k] - cost.counted(calls[k], args[k]) for k in keys if k not in stages}
    out = {k: v * 1e6 for k, v in kernels.items()}
    for stage, group in stages.items():
        true_stage = inside[stage] - cost.counted(calls[stage], args[stage]) - cost.added(calls[group], args[group])
        out[f"{group}_python"] = (true_stage - kernels[group]) * 1e6
    total = wall[kept].mean() - sum(cost.added(calls[k], args[k]) for k in keys)
    out["kernels"] = sum(kernels.values()) * 1e6
    out["python"] = (total - sum(kernels.values())) * 1e6
    out["glue"] = out["python"] - sum(out[f"{g}_python"] for g in stages.values())
    out["total"] = total * 1e6
    out["kept"] = float(kept.mean())
    return out


def _glue_alone(detector: Detector, n: int = 5000) -> float:
    """Microseconds of ``Detector.process`` per hop with its three stages stubbed (median of 5 rounds of n)."""
    frame = np.zeros((1, detector.spec.bins), detector.frontend.output_dtype)
    scores = np.zeros(detector.model.outputs[0].shape, detector.model.outputs[0].dtype)
    stubs = {"frontend": lambda samples: frame, "model": lambda x: scores, "decision": lambda s: []}
    saved = detector.frontend.process, detector.model.invoke, detector.decision.process
    detector.frontend.process, detector.model.invoke, detector.decision.process = stubs.values()
    hop = np.zeros(HOP, np.int16)
    rounds = []
    try:
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(n):
                detector.process(hop)
            rounds.append((time.perf_counter() - t0) / n * 1e6)
    finally:
        detector.frontend.process, detector.model.invoke, detector.decision.process = saved
    return statistics.median(rounds)


def test_report_python_overhead_per_hop(ds_cnn_path, audio, monkeypatch):
    """Instrumented pass: time inside every kernel call of a hop; the rest is Python overhead (reported).

    Ours: the frontend's kernels, each operator's kernel in ``model.invoke``
    and the decision kernel (Numba dispatch included), and the public calls
    around them (``frontend.process``, ``model.invoke``, ``decision.process``);
    what is left of the hop is the detector's own glue.  The peer:
    ``arm_mfcc_q15`` and ``InferenceSession.run``; the rest is numpy.
    """
    import sed_runtime.decision.engine as engine
    import sed_runtime.frontend.cmsis as cmsis

    detector = _detector(ds_cnn_path)
    peer = PeerPipeline(ds_cnn_path, detector)
    clock = _Clock()
    monkeypatch.setattr(cmsis, "frames_q15", clock.wrap("frontend", cmsis.frames_q15))
    monkeypatch.setattr(cmsis, "drop_front", clock.wrap("frontend", cmsis.drop_front))
    monkeypatch.setattr(engine, "decide", clock.wrap("decision", engine.decide))
    model = detector.model
    steps = getattr(model, "_steps", None)
    assert steps is not None, "Model._steps (the operators' kernel calls) is gone: update this instrumentation"
    model._steps = [(clock.wrap("model", fn), args) for fn, args in steps]
    stages = {"frontend.process": "frontend", "model.invoke": "model", "decision.process": "decision"}
    for stage, obj in zip(stages, (detector.frontend, model, detector.decision)):
        name = stage.split(".")[1]
        monkeypatch.setattr(obj, name, clock.wrap(stage, getattr(obj, name)))
    peer_clock = _Clock()
    peer.mfcc = peer_clock.wrap("mfcc", peer.mfcc)
    peer.run = peer_clock.wrap("onnxruntime", peer.run)

    hops = _hops(audio[: RATE * 2 + OVERHEAD_HOPS * HOP])
    warm, hops = hops[: 2 * RATE // HOP], hops[2 * RATE // HOP:]
    for hop in warm:
        detector.process(hop)
        peer.process(hop)
    ours_runs: dict[str, list] = {"wall": [], "cpu": [], "counts": []}
    peer_runs: dict[str, list] = {"wall": [], "cpu": [], "counts": []}
    for r, start in enumerate(range(0, len(hops), SEGMENT_HOPS)):
        segment = hops[start:start + SEGMENT_HOPS]
        runs = [(detector.process, clock, ours_runs), (peer.process, peer_clock, peer_runs)]
        for fn, fn_clock, out in (runs if r % 2 == 0 else runs[::-1]):
            _instrumented(fn, segment, fn_clock, out)
    cost = _WrapperCost()
    ours = _breakdown(clock, ours_runs, cost, stages)
    peers = _breakdown(peer_clock, peer_runs, cost)
    glue = _glue_alone(_detector(ds_cnn_path))
    report_gate(f"detector per hop (means over the {ours['kept']:.0%} of hops not preempted): kernels "
                f"{ours['kernels']:.1f} us (frontend {ours['frontend']:.1f}, model {ours['model']:.1f}, decision "
                f"{ours['decision']:.1f}); Python outside kernels {ours['python']:.1f} us (frontend.process "
                f"{ours['frontend_python']:.1f}, model.invoke {ours['model_python']:.1f}, decision.process "
                f"{ours['decision_python']:.1f}, detector glue {ours['glue']:.1f}) of {ours['total']:.1f} us; "
                f"detector glue alone (stages stubbed) {glue:.1f} us; peer ({peers['kept']:.0%} of hops): "
                f"arm_mfcc_q15 {peers['mfcc']:.1f} us, onnxruntime {peers['onnxruntime']:.1f} us, numpy/Python "
                f"{peers['python']:.1f} us of {peers['total']:.1f} us")
    assert 0.0 < ours["python"] < ours["total"]


# ---------------------------------------------------------------------------
# Start-up: a fresh interpreter to the first scores
# ---------------------------------------------------------------------------

START_PROBE = """
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
import numpy as np
import sed_runtime
from sed_runtime.detector import Detector
detector = Detector(sys.argv[1])
t_ready, c_ready = time.perf_counter(), time.process_time()
audio = np.load(sys.argv[2])
t_audio, c_audio = time.perf_counter(), time.process_time()
hop, pos = detector.spec.hop_samples, 0
while detector.scores.shape[0] == 0:
    detector.process(audio[pos:pos + hop])
    pos += hop
t_first, c_first = time.perf_counter(), time.process_time()
print(json.dumps({"wall_s": (t_first - t0) - (t_audio - t_ready), "cpu_s": (c_first - c0) - (c_audio - c_ready),
                  "load_s": t_ready - t0, "first_scores_s": t_first - t_audio, "hops": pos // hop}))
"""


def _start(model_path, audio_path, cache_dir) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    done = subprocess.run([sys.executable, "-c", START_PROBE, str(model_path), str(audio_path)], env=env,
                          capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_gate_warm_start_to_first_decision(ds_cnn_path, audio, tmp_path, benchmark):
    """A fresh interpreter: ``import sed_runtime``, ``Detector(model path)``, hops until the first scores.

    Gated on the process's CPU time (median of 3 runs with the Numba cache
    warm): on an idle machine it is the wall time, on a shared one the wall
    time also holds what the scheduler gave other processes.  Both are
    reported, and the cold start (empty Numba cache: every kernel compiled).
    """
    audio_path = tmp_path / "first_2s.npy"
    np.save(audio_path, audio[: 2 * RATE])
    cache = tmp_path / "numba_cache"
    cold = _start(ds_cnn_path, audio_path, cache)  # empty cache: compiles every kernel
    warm: list[dict] = []
    benchmark.pedantic(lambda: warm.append(_start(ds_cnn_path, audio_path, cache)), rounds=WARM_RUNS, iterations=1)
    med = {key: statistics.median(w[key] for w in warm) for key in ("cpu_s", "wall_s", "load_s", "first_scores_s")}
    benchmark.extra_info.update(cold_start_wall_s=round(cold["wall_s"], 2), cold_start_cpu_s=round(cold["cpu_s"], 2),
                                **{f"warm_{k}": round(v, 3) for k, v in med.items()}, gate_s=GATE_WARM_START_S)
    report_gate(f"detector start to first scores ({warm[0]['hops']} hops), Numba cache warm: {med['cpu_s']:.2f} s "
                f"CPU (median of {WARM_RUNS}; gate <= {GATE_WARM_START_S} s), {med['wall_s']:.2f} s wall (import + "
                f"model {med['load_s']:.2f} s, hops to the first scores {med['first_scores_s']:.2f} s); cold (empty "
                f"Numba cache) {cold['wall_s']:.1f} s wall, {cold['cpu_s']:.1f} s CPU")
    assert med["cpu_s"] <= GATE_WARM_START_S, f"warm start {med['cpu_s']:.2f} s CPU exceeds {GATE_WARM_START_S} s"
