"""int8 interpreter speed on micro_speech: ours against the tflite-micro Python interpreter (and onnxruntime).

Gate (issue "int8 engine: TFLite import, TFLM-exact kernels, one arena"): one
inference of ``micro_speech_quantized.tflite`` through ``Model.invoke`` takes at
most a tenth of the time of the ``tflite-micro`` interpreter's ``set_input``,
``invoke``, ``get_output`` on the same features, with bit-exact scores on every
benchmarked window (checked first: a fast wrong answer is not measured).

The features are real: 20 s of recorded speech through TFLM's micro_speech
audio preprocessor model, one 49-frame window every 5 frames (the stride of a
live keyword spotter).  Rounds alternate ours / peer and the ratio of medians
is used (bench/conftest.py).

onnxruntime runs the same integers as a QDQ ONNX graph built from the .tflite
(``QLinearConv``/``QGemm`` after its QDQ fusion); it requantizes in float, so
its scores are compared for agreement only, and its time is reported, not
gated.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SHARED, interleaved_ratio, report_gate
from sed_runtime import load_model
from sed_runtime.io.wavfile import read_pcm16

tflite_micro = pytest.importorskip("tflite_micro")

GATE = 10.0  # ours must be at least this many times faster than tflite-micro
FIXTURES = SHARED / "fixtures" / "micro_speech"
MODEL = FIXTURES / "micro_speech_quantized.tflite"
PREPROCESSOR = FIXTURES / "audio_preprocessor_int8.tflite"
FRAMES, STRIDE = 49, 5


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


def _tflm_scores(tflm, window):
    tflm.set_input(window.reshape(1, -1), 0)
    tflm.invoke()
    return tflm.get_output(0)


def test_gate_vs_tflite_micro(model, tflm, windows, benchmark):
    expected = np.stack([np.array(_tflm_scores(tflm, w)).reshape(-1) for w in windows])
    ours_scores = np.stack([model.invoke(w).reshape(-1).copy() for w in windows])
    assert np.array_equal(ours_scores, expected), "not bit-exact with tflite-micro: no timing"

    def ours():
        for w in windows:
            model.invoke(w)

    def peer():
        for w in windows:
            _tflm_scores(tflm, w)

    ratio, t_ours, t_peer = interleaved_ratio(ours, peer, rounds=21)
    speedup = 1.0 / ratio
    per_ours, per_peer = t_ours / len(windows), t_peer / len(windows)
    benchmark.extra_info.update(speedup=round(speedup, 2), gate=GATE, us_per_inference_ours=round(per_ours * 1e6, 2),
                                us_per_inference_tflm=round(per_peer * 1e6, 2), windows=len(windows),
                                arena_bytes=model.arena_bytes)
    benchmark.pedantic(ours, rounds=10, iterations=1)
    report_gate(f"micro_speech invoke: ours {per_ours * 1e6:.1f} us, tflite-micro {per_peer * 1e6:.1f} us, "
                f"{speedup:.1f}x faster (gate >= {GATE:g}x), bit-exact on {len(windows)} windows")
    assert speedup >= GATE, f"ours is {speedup:.2f}x faster than tflite-micro; the gate is {GATE:g}x"


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


def test_vs_onnxruntime_reported(model, tflm, windows, benchmark):
    ort = pytest.importorskip("onnxruntime")
    onnx_model = _qdq_onnx(model.graph)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(onnx_model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feeds = [{"x": w.reshape(1, -1)} for w in windows]
    theirs = np.stack([session.run(None, f)[0].reshape(-1) for f in feeds]).astype(int)
    ours_scores = np.stack([model.invoke(w).reshape(-1).copy() for w in windows]).astype(int)
    max_diff = int(np.abs(theirs - ours_scores).max())
    same_top = float(np.mean(theirs.argmax(1) == ours_scores.argmax(1)))
    assert max_diff <= 8, f"onnxruntime's QDQ graph differs by {max_diff} LSB: the graphs do not match"

    def ours():
        for w in windows:
            model.invoke(w)

    def peer():
        for f in feeds:
            session.run(None, f)

    ratio, t_ours, t_peer = interleaved_ratio(ours, peer, rounds=21)
    per_ours, per_peer = t_ours / len(windows), t_peer / len(windows)
    benchmark.extra_info.update(speedup_vs_onnxruntime=round(1 / ratio, 2), max_score_diff_lsb=max_diff,
                                same_top_class=same_top, us_per_inference_onnxruntime=round(per_peer * 1e6, 2))
    benchmark.pedantic(peer, rounds=10, iterations=1)
    report_gate(f"micro_speech invoke: ours {per_ours * 1e6:.1f} us, onnxruntime (QDQ, 1 thread) "
                f"{per_peer * 1e6:.1f} us, {1 / ratio:.1f}x (reported, not gated); onnxruntime scores within "
                f"{max_diff} LSB, same top class on {same_top:.0%} of windows")


def test_ds_cnn_vs_tflite_micro_reported(benchmark):
    """A DS-CNN keyword-spotting network (conv, 4 x depthwise + pointwise, pool, FC): ours vs tflite-micro, reported."""
    from model.tflite_builder import ds_cnn_graph, to_tflite

    rng = np.random.default_rng(7)
    data = to_tflite(ds_cnn_graph(rng))
    model = load_model(data)
    tflm = tflite_micro.runtime.Interpreter.from_bytes(data, arena_size=1 << 20)
    inputs = [rng.integers(-128, 128, (1, 49, 10, 1)).astype(np.int8) for _ in range(20)]

    def run_tflm(x):
        tflm.set_input(x, 0)
        tflm.invoke()
        return tflm.get_output(0)

    for x in inputs:
        assert np.array_equal(model.invoke(x), run_tflm(x)), "not bit-exact with tflite-micro: no timing"

    def ours():
        for x in inputs:
            model.invoke(x)

    def peer():
        for x in inputs:
            run_tflm(x)

    ratio, t_ours, t_peer = interleaved_ratio(ours, peer, rounds=11)
    per_ours, per_peer = t_ours / len(inputs), t_peer / len(inputs)
    benchmark.extra_info.update(speedup=round(1 / ratio, 2), us_per_inference_ours=round(per_ours * 1e6, 1),
                                us_per_inference_tflm=round(per_peer * 1e6, 1), strategies=sorted(
                                    set(model.strategies.values())))
    benchmark.pedantic(ours, rounds=5, iterations=1)
    report_gate(f"DS-CNN 64ch invoke: ours {per_ours * 1e6:.0f} us, tflite-micro {per_peer * 1e6:.0f} us, "
                f"{1 / ratio:.1f}x (reported, not gated), bit-exact on {len(inputs)} inputs")
