"""int8 interpreter speed on three models: ours against tflite-micro (Python) and onnxruntime (1 thread).

Gates (issue item 8), measured in one run, one thread, on three models:

* ``micro_speech`` (``micro_speech_quantized.tflite``, ~336k MACs): its
  features are real (20 s of recorded speech through TFLM's micro_speech
  audio preprocessor, one 49-frame window every 5 frames);
* a tiny CNN (~134k MACs: MFCC 49 x 10 -> conv 3x3 8 ch -> depthwise 3x3 ->
  pointwise 16 -> global average pool -> FC 12 -> softmax);
* the DS-CNN-S-sized keyword spotter of ``bench/_models.py`` (2.66M MACs).

The tiny CNN and DS-CNN-S are float ONNX graphs quantized with onnxruntime's
``quantize_static`` (QDQ int8); ours loads that ``.onnx``, tflite-micro runs
its ``.tflite`` export, onnxruntime the ``.onnx`` itself; their inputs are
real MFCC windows (CMSIS-DSP frontend).  micro_speech's onnxruntime peer is a
QDQ graph built from the ``.tflite`` with the same integers and scales.

* ours is at least 20x faster than tflite-micro on DS-CNN-S and 10x on the
  two tiny models;
* ours takes at most 2.0x onnxruntime's time on DS-CNN-S and at most 1.0x on
  the two tiny models (onnxruntime: ``intra_op_num_threads = 1``,
  ``inter_op_num_threads = 1``, ``ORT_SEQUENTIAL``, default graph
  optimizations).

Bit-exactness with tflite-micro on every benchmarked input is checked first (a
fast wrong answer is not measured); onnxruntime requantizes in float, so its
scores are compared for agreement only.  Rounds alternate ours / peer and the
ratio of medians is used (bench/conftest.py).  An unmet gate is an xfail
carrying the measured ratio.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import pytest

from conftest import SHARED, interleaved_ratio, report_gate
from sed_runtime import load_model
from sed_runtime.io.wavfile import read_pcm16

tflite_micro = pytest.importorskip("tflite_micro")
ort = pytest.importorskip("onnxruntime")

# speedup vs tflite-micro (at least), time ratio vs onnxruntime (at most)
GATE_TFLM = {"micro_speech": 10.0, "tiny_cnn": 10.0, "ds_cnn_s": 20.0}
GATE_ORT = {"micro_speech": 1.0, "tiny_cnn": 1.0, "ds_cnn_s": 2.0}
FIXTURES = SHARED / "fixtures" / "micro_speech"
MODEL = FIXTURES / "micro_speech_quantized.tflite"
PREPROCESSOR = FIXTURES / "audio_preprocessor_int8.tflite"
FRAMES, STRIDE = 49, 5
N_MFCC_WINDOWS = 20

# Gates measured unmet on the development machine (AMD EPYC Zen 4, 2 vCPUs): each stays a visible xfail with its
# measured ratio until the engine meets it.  The assertion message carries this run's figure.
UNMET_ORT: dict[str, str] = {}


UNMET_TFLM: dict[str, str] = {}


def _ort_session(model_bytes: bytes):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


@dataclass
class Bench:
    """One model three ways: ours, tflite-micro, onnxruntime, with their inputs (same integers)."""

    name: str
    macs: int
    ours: Callable[[np.ndarray], np.ndarray]
    tflm: Callable[[np.ndarray], np.ndarray]
    ort: Callable[[dict], list]
    inputs: list[np.ndarray]
    ort_feeds: list[dict]
    arena_bytes: int


@pytest.fixture(scope="module")
def windows() -> list[np.ndarray]:
    samples, _ = read_pcm16(SHARED / "fixtures" / "real" / "dialogue_cs_60s.wav", 16000)
    samples = samples[: 16000 * 20 + 160]
    pre = tflite_micro.runtime.Interpreter.from_file(str(PREPROCESSOR))
    frames = []
    for start in range(0, samples.size - 480 + 1, 320):
        pre.set_input(samples[start:start + 480].reshape(1, 480), 0)
        pre.invoke()
        frames.append(np.array(pre.get_output(0)).reshape(-1))
    features = np.stack(frames).astype(np.int8)
    return [np.ascontiguousarray(features[s:s + FRAMES]) for s in range(0, len(features) - FRAMES + 1, STRIDE)]


@pytest.fixture(scope="module")
def model():
    m = load_model(MODEL)
    m.invoke(np.zeros((FRAMES, 40), np.int8))  # compile (or load from the cache) before timing
    return m


@pytest.fixture(scope="module")
def tflm():
    return tflite_micro.runtime.Interpreter.from_file(str(MODEL))


def _qdq_onnx(graph):
    """micro_speech as a QDQ ONNX graph with the .tflite's integers and scales (int8 in, int8 out)."""
    from onnx import TensorProto, helper, numpy_helper

    t = {tensor.name: tensor for tensor in graph.tensors}
    x_t, dw_t, fc_t = t["Reshape_1"], t["first_weights/read"], t["final_fc_weights/read/transpose"]
    relu_t, add_t, out_t = t["Relu"], t["add_1"], t["labels_softmax"]
    dw_b, fc_b = t["Conv2D_bias"], t["MatMul_bias"]
    inits = []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def qparams(tensor, prefix):
        q = tensor.quantization
        return const(prefix + "_s", np.float32(q.scale[0])), const(prefix + "_z", np.int8(q.zero_point[0]))

    nodes = []
    xs, xz = qparams(x_t, "x")
    nodes.append(helper.make_node("DequantizeLinear", ["x", xs, xz], ["x_f"]))
    nodes.append(helper.make_node("Reshape", ["x_f", const("shape_nchw", np.array([1, 1, 49, 40], np.int64))],
                                  ["x_nchw"]))
    w = dw_t.data.transpose(3, 0, 1, 2)  # [1, KH, KW, OC] -> [OC, 1, KH, KW]
    w_s = dw_t.quantization.scale.astype(np.float32)
    nodes.append(helper.make_node("DequantizeLinear", [const("dw_q", w), const("dw_s", w_s),
                                                       const("dw_z", np.zeros(8, np.int8))], ["dw_f"], axis=0))
    b_s = (np.float32(x_t.quantization.scale[0]) * w_s).astype(np.float32)
    nodes.append(helper.make_node("DequantizeLinear", [const("dwb_q", dw_b.data), const("dwb_s", b_s),
                                                       const("dwb_z", np.zeros(8, np.int32))], ["dwb_f"], axis=0))
    nodes.append(helper.make_node("Conv", ["x_nchw", "dw_f", "dwb_f"], ["conv"], strides=[2, 2],
                                  pads=[4, 3, 5, 3], kernel_shape=[10, 8]))
    nodes.append(helper.make_node("Relu", ["conv"], ["relu"]))
    rs, rz = qparams(relu_t, "relu")
    nodes.append(helper.make_node("QuantizeLinear", ["relu", rs, rz], ["relu_q"]))
    nodes.append(helper.make_node("DequantizeLinear", ["relu_q", rs, rz], ["relu_f"]))
    nodes.append(helper.make_node("Transpose", ["relu_f"], ["relu_nhwc"], perm=[0, 2, 3, 1]))
    nodes.append(helper.make_node("Reshape", ["relu_nhwc", const("shape_flat", np.array([1, 4000], np.int64))],
                                  ["flat"]))
    fs = np.float32(fc_t.quantization.scale[0])
    nodes.append(helper.make_node("DequantizeLinear", [const("fc_q", fc_t.data), const("fc_s", fs),
                                                       const("fc_z", np.int8(0))], ["fc_f"]))
    nodes.append(helper.make_node("DequantizeLinear", [const("fcb_q", fc_b.data),
                                                       const("fcb_s", np.float32(relu_t.quantization.scale[0] * fs)),
                                                       const("fcb_z", np.int32(0))], ["fcb_f"]))
    nodes.append(helper.make_node("Gemm", ["flat", "fc_f", "fcb_f"], ["logits"], transB=1))
    ls, lz = qparams(add_t, "logits")
    nodes.append(helper.make_node("QuantizeLinear", ["logits", ls, lz], ["logits_q"]))
    nodes.append(helper.make_node("DequantizeLinear", ["logits_q", ls, lz], ["logits_f"]))
    nodes.append(helper.make_node("Softmax", ["logits_f"], ["probs"], axis=-1))
    ps, pz = qparams(out_t, "probs")
    nodes.append(helper.make_node("QuantizeLinear", ["probs", ps, pz], ["y"]))
    g = helper.make_graph(nodes, "micro_speech_qdq", [helper.make_tensor_value_info("x", TensorProto.INT8, [1, 1960])],
                          [helper.make_tensor_value_info("y", TensorProto.INT8, [1, 4])], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _tflm_run(interpreter):
    def run(x):
        interpreter.set_input(x, 0)
        interpreter.invoke()
        return interpreter.get_output(0)
    return run


def _micro_speech(model, tflm, windows) -> Bench:
    session = _ort_session(_qdq_onnx(model.graph).SerializeToString())
    inputs = [w.reshape(1, -1) for w in windows]
    return Bench("micro_speech", sum(p.macs for p in model.prepared), model.invoke, _tflm_run(tflm),
                 lambda f: session.run(None, f), inputs, [{"x": x} for x in inputs], model.arena_bytes)


def _tiny_cnn_float():
    """The tiny CNN as a float ONNX graph (MFCC input [1, 1, 49, 10]; seeded He-scaled weights)."""
    from _models import DS_CNN_SPEC, DS_CNN_WINDOW_FRAMES
    from onnx_builders import FloatNet

    net = FloatNet("mfcc", (1, 1, DS_CNN_WINDOW_FRAMES, DS_CNN_SPEC.n_dct), 3)
    y = net.conv(net.input, 8, 3, stride=1, pads=1, relu=True)
    y = net.depthwise(y, 1, 3, stride=1, pads=1, relu=True)
    y = net.conv(y, 16, 1, relu=True)
    y = net.global_average_pool(y)
    net.output(net.softmax(net.gemm(net.flatten(y), 12)))
    return net.model()


def _onnx_bench(name: str, onnx_path, features: np.ndarray) -> Bench:
    """Ours on the QDQ ``.onnx``, tflite-micro on its ``.tflite`` export, onnxruntime on the ``.onnx``."""
    from sed_runtime.model.export_tflite import export_tflite
    from sed_runtime.model.interpreter import load_graph

    model = load_model(onnx_path)
    tflm = tflite_micro.runtime.Interpreter.from_bytes(export_tflite(load_graph(onnx_path)), arena_size=1 << 20)
    session = _ort_session(onnx_path.read_bytes())
    q = model.inputs[0]
    feed_name, feed_shape = session.get_inputs()[0].name, session.get_inputs()[0].shape
    starts = np.random.default_rng(0).integers(0, features.shape[0] - FRAMES, N_MFCC_WINDOWS)
    inputs = [np.ascontiguousarray(features[s:s + FRAMES]).reshape(q.shape) for s in starts]
    # exactly representable floats: onnxruntime's first QuantizeLinear gives back the same integers
    feeds = [{feed_name: ((x.astype(np.float32) - np.float32(q.zero_point)) * np.float32(q.scale))
              .reshape(feed_shape)} for x in inputs]
    model.invoke(inputs[0])
    return Bench(name, sum(p.macs for p in model.prepared), model.invoke, _tflm_run(tflm),
                 lambda f: session.run(None, f), inputs, feeds, model.arena_bytes)


@pytest.fixture(scope="module")
def real_audio() -> np.ndarray:
    """16 kHz real audio: MFCC windows to time on, and calibration data for quantize_static."""
    samples, _ = read_pcm16(SHARED / "fixtures" / "real" / "mixed_5min.wav", 16000)
    return samples


@pytest.fixture(scope="module", params=["micro_speech", "tiny_cnn", "ds_cnn_s"])
def bench(request, tmp_path_factory, real_audio) -> Bench:
    if request.param == "micro_speech":
        return _micro_speech(request.getfixturevalue("model"), request.getfixturevalue("tflm"),
                             request.getfixturevalue("windows"))
    import onnx

    from _models import DS_CNN_SPEC, build_ds_cnn_s
    from onnx_builders import input_quantization, quantize
    from sed_runtime.frontend.cmsis import CmsisFrontend
    from sed_runtime.frontend.spec import FeatureQuantization

    directory = tmp_path_factory.mktemp(request.param)
    if request.param == "ds_cnn_s":
        path = build_ds_cnn_s(directory, real_audio[:16000 * 120], seed=0)
    else:
        q15 = CmsisFrontend(replace(DS_CNN_SPEC, quantization=None)).prepare().process(real_audio[:16000 * 60])
        spread = float(np.std(q15.astype(np.float32) / 128.0))  # the float features the model sees (q8.7 / 128)
        path = directory / "tiny_cnn_int8.onnx"
        onnx.save(quantize(_tiny_cnn_float(), seed=0, input_scale=spread), path)
    (scale, zero_point), = input_quantization(onnx.load(path))
    spec = replace(DS_CNN_SPEC, quantization=FeatureQuantization(scale, zero_point))
    features = CmsisFrontend(spec).prepare().process(real_audio[16000 * 120:16000 * 180]).copy()
    return _onnx_bench(request.param, path, features)


def _loops(b: Bench):
    def ours():
        for x in b.inputs:
            b.ours(x)

    def tflm():
        for x in b.inputs:
            b.tflm(x)

    def peer_ort():
        for f in b.ort_feeds:
            b.ort(f)

    return ours, tflm, peer_ort


def _bit_exact_outputs(b, unmet: dict, request) -> np.ndarray:
    """Our outputs on every input, asserted equal to tflite-micro's before anything is timed (and the model's
    visible expected failure when its gate is listed as not met yet)."""
    if b.name in unmet:
        request.applymarker(pytest.mark.xfail(strict=False, reason=unmet[b.name]))
    expected = np.stack([np.array(b.tflm(x)).reshape(-1) for x in b.inputs])
    got = np.stack([np.array(b.ours(x)).reshape(-1) for x in b.inputs])
    assert np.array_equal(got, expected), f"{b.name}: not bit-exact with tflite-micro: no timing"
    return got


def test_gate_vs_tflite_micro(bench, benchmark, request):
    b = bench
    _bit_exact_outputs(b, UNMET_TFLM, request)
    ours, tflm, _ = _loops(b)
    ratio, t_ours, t_peer = interleaved_ratio(ours, tflm, rounds=21)
    speedup, gate = 1.0 / ratio, GATE_TFLM[b.name]
    per_ours, per_peer = t_ours / len(b.inputs) * 1e6, t_peer / len(b.inputs) * 1e6
    benchmark.extra_info.update(model=b.name, macs=b.macs, speedup=round(speedup, 2), gate=gate,
                                us_per_inference_ours=round(per_ours, 1), us_per_inference_tflm=round(per_peer, 1),
                                inputs=len(b.inputs), arena_bytes=b.arena_bytes)
    benchmark.pedantic(ours, rounds=5, iterations=1)
    report_gate(f"{b.name} ({b.macs / 1e3:.0f}k MACs): ours {per_ours:.1f} us, tflite-micro {per_peer:.1f} us, "
                f"{speedup:.1f}x faster (gate >= {gate:g}x), bit-exact on {len(b.inputs)} inputs")
    assert speedup >= gate, f"{b.name}: ours is {speedup:.2f}x faster than tflite-micro; the gate is {gate:g}x"


def test_gate_vs_onnxruntime(bench, benchmark, request):
    b = bench
    got = _bit_exact_outputs(b, UNMET_ORT, request)
    theirs = np.stack([np.asarray(b.ort(f)[0]).reshape(-1) for f in b.ort_feeds])
    same_top = float(np.mean(theirs.argmax(1) == got.argmax(1)))
    ours, _, peer = _loops(b)
    for _ in range(3):
        peer()
    ratio, t_ours, t_peer = interleaved_ratio(ours, peer, rounds=21)
    gate = GATE_ORT[b.name]
    per_ours, per_peer = t_ours / len(b.inputs) * 1e6, t_peer / len(b.inputs) * 1e6
    benchmark.extra_info.update(model=b.name, ratio_vs_onnxruntime=round(ratio, 3), gate=gate,
                                us_per_inference_ours=round(per_ours, 1),
                                us_per_inference_onnxruntime=round(per_peer, 1), same_top_class=same_top)
    benchmark.pedantic(peer, rounds=5, iterations=1)
    report_gate(f"{b.name} ({b.macs / 1e3:.0f}k MACs): ours {per_ours:.1f} us, onnxruntime (1 thread) "
                f"{per_peer:.1f} us, ratio {ratio:.2f} (gate <= {gate:g}); same top class on {same_top:.0%}")
    assert ratio <= gate, f"{b.name}: ours takes {ratio:.2f}x onnxruntime's time; the gate is {gate:g}x"
