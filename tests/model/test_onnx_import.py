"""ONNX import: quantize_static models -> Graph -> .tflite -> tflite-micro, against onnxruntime as a tolerance.

onnxruntime is not the oracle: it runs the QDQ graph in float and rounds
half to even, TFLM requantizes with an integer multiplier and rounds half away
from zero.  What is measured here is how far the TFLM run of the imported
model is from onnxruntime's, in LSBs of the imported model's output
(``max`` and the fraction of outputs within half an LSB).  A layout or weight
permutation mistake shows as tens of LSBs; rounding differences as one LSB
per layer at most.  Bit-exactness of our interpreter against tflite-micro on
the same exported files is tested with the interpreter.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from onnx_builders import ZOO, FloatNet, calibration_like_int8, quantize, run_onnxruntime
from sed_runtime.errors import ModelError, UnsupportedOperatorError
from sed_runtime.model.export_tflite import export_tflite
from sed_runtime.model.graph import Graph
from sed_runtime.model.onnx_import import SUPPORTED_ONNX_OPS, import_onnx

runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
logging.getLogger().setLevel(logging.ERROR)  # quantize_static's pre-processing advice

N_INPUTS = 20
TOL = 1e-3  # onnxruntime returns float32 dequantized values


def nhwc(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 2, 3, 1) if x.ndim == 4 else x


def tflm_outputs(graph: Graph, inputs: list[list[np.ndarray]]) -> list[np.ndarray]:
    interpreter = runtime.Interpreter.from_bytes(export_tflite(graph), arena_size=1 << 20)
    outs = []
    for xs in inputs:
        for k, x in enumerate(xs):
            interpreter.set_input(nhwc(x), k)
        interpreter.invoke()
        outs.append(np.array(interpreter.get_output(0)))
    return outs


def lsb_differences(qmodel: onnx.ModelProto, graph: Graph, inputs) -> np.ndarray:
    """|TFLM - onnxruntime| per output value, in LSBs of the imported graph's output."""
    out = graph.tensors[graph.outputs[0]]
    scale, zp = float(out.quantization.scale[0]), int(out.quantization.zero_point[0])
    diffs = []
    for xs, ours in zip(inputs, tflm_outputs(graph, inputs)):
        (ref,) = run_onnxruntime(qmodel, xs)
        real = (ours.astype(np.float64) - zp) * scale
        diffs.append(np.abs(real - nhwc(ref.astype(np.float64)).reshape(real.shape)).ravel() / scale)
    return np.concatenate(diffs)


def report(name: str, d: np.ndarray) -> str:
    return f"{name}: max {d.max():.2f} LSB, {np.mean(d <= 0.5 + TOL):.1%} of {d.size} outputs within 0.5 LSB"


def single(f, *shapes, **quantize_options):
    """A quantized model applying ``f(net, *inputs)`` to graph inputs of the given shapes."""
    def build(seed: int) -> onnx.ModelProto:
        net = FloatNet(seed=seed, input_names_shapes=[(f"x{k}", s) for k, s in enumerate(shapes)])
        net.output(f(net, *[i.name for i in net.inputs]))
        return quantize(net.model(), seed=seed, **quantize_options)
    return build


# quantize_static leaves pooling of an unquantized (graph) input in float unless told otherwise.
FORCE = {"extra_options": {"ForceQuantizeNoInputCheck": True}}


X4 = (1, 3, 12, 10)
SINGLE = {
    "conv_same": single(lambda n, x: n.conv(x, 6, 3, pads=1), X4),
    "conv_stride2_explicit_pad": single(lambda n, x: n.conv(x, 6, 3, stride=2, pads=1), X4),
    "conv_asymmetric_pad": single(lambda n, x: n.conv(x, 6, (3, 2), pads=[1, 0, 1, 1]), X4),
    "conv_relu": single(lambda n, x: n.conv(x, 6, 3, pads=1, relu=True), X4),
    "conv_relu6": single(lambda n, x: n.conv(x, 6, 3, pads=1, relu="relu6"), X4),
    "conv_dilated": single(lambda n, x: n.conv(x, 6, 3, dilation=2, pads=2), X4),
    "conv_1x1_no_bias": single(lambda n, x: n.conv(x, 6, 1, bias=False), X4),
    "conv_auto_pad_same": single(lambda n, x: n.conv(x, 6, 3, stride=2, auto_pad="SAME_UPPER"), X4),
    "depthwise_x2": single(lambda n, x: n.depthwise(x, 2), X4),
    "depthwise_stride2": single(lambda n, x: n.depthwise(x, 1, stride=2, pads=1), X4),
    "average_pool_same": single(lambda n, x: n.average_pool(x, 3, 1, 1), X4, **FORCE),
    "average_pool_include_pad": single(lambda n, x: n.average_pool(x, 3, 1, 1, count_include_pad=1), X4, **FORCE),
    "max_pool": single(lambda n, x: n.max_pool(x, 2), X4, **FORCE),
    "max_pool_same": single(lambda n, x: n.max_pool(x, 3, 1, 1), X4, **FORCE),
    "global_average_pool": single(lambda n, x: n.global_average_pool(x), X4),
    "gemm": single(lambda n, x: n.gemm(x, 7), (1, 20)),
    "gemm_transB0": single(lambda n, x: n.gemm(x, 7, trans_b=0), (1, 20)),
    "matmul_per_frame": single(lambda n, x: n.matmul(x, 7, bias=False), (1, 5, 20)),
    "add": single(lambda n, x, y: n.add(x, y), X4, X4),
    "add_broadcast": single(lambda n, x, y: n.add(x, y), X4, (1, 3, 1, 1)),
    "mul": single(lambda n, x, y: n.mul(x, y), X4, X4),
    "mul_constant": single(lambda n, x: n.mul(x, n.const(np.linspace(0.2, 2, 3, dtype=np.float32).reshape(3, 1, 1))), X4),
    "concat_channels": single(lambda n, x, y: n.concat([x, y]), X4, (1, 2, 12, 10)),
    "concat_time": single(lambda n, x, y: n.concat([x, y], axis=2), X4, (1, 3, 4, 10)),
    "pad": single(lambda n, x: n.pad(x, [0, 0, 1, 2, 0, 0, 2, 1]), X4),
    "softmax": single(lambda n, x: n.softmax(x), (1, 10)),
    "sigmoid": single(lambda n, x: n.sigmoid(x), (1, 40)),
    "tanh": single(lambda n, x: n.tanh(x), (1, 40), op_types=["Tanh"]),
    "flatten_to_gemm": single(lambda n, x: n.gemm(n.flatten(x), 5), X4),
    "flatten_output": single(lambda n, x: n.flatten(n.conv(x, 3, 1)), X4),
    "transpose": single(lambda n, x: n.transpose(n.conv(x, 3, 1), (0, 2, 3, 1)), X4),
    "reshape_to_4d": single(lambda n, x: n.conv(n.reshape(x, (1, 2, 6, 10)), 4, 3, pads=1), (1, 120)),
    "squeeze": single(lambda n, x: n.squeeze(n.global_average_pool(x), (2, 3)), X4),
}


@pytest.mark.parametrize("case", SINGLE)
def test_single_layer_within_one_lsb_of_onnxruntime(case):
    d = np.concatenate([lsb_differences(qm, import_onnx(qm), calibration_like_int8(qm, 8, seed + 10))
                        for seed in range(2) for qm in [SINGLE[case](seed)]])
    print(report(case, d))
    assert d.max() <= 1.0 + TOL, report(case, d)
    assert np.mean(d <= 0.5 + TOL) >= 0.75, report(case, d)


# Deeper networks accumulate one-LSB rounding differences layer after layer.
ZOO_MAX_LSB = {"conv_stack": 4, "depthwise": 2, "residual": 3, "flatten_to_fc": 2, "sequence": 2}


@pytest.mark.parametrize("qdq", [True, False], ids=["qdq", "qoperator"])
@pytest.mark.parametrize("name", ZOO)
def test_network_close_to_onnxruntime(name, qdq):
    qmodel = quantize(ZOO[name](0), seed=0, qdq=qdq)
    graph = import_onnx(qmodel)
    d = lsb_differences(qmodel, graph, calibration_like_int8(qmodel, N_INPUTS, seed=7))
    print(report(f"{name} ({'QDQ' if qdq else 'QOperator'}, {len(graph.operators)} ops)", d))
    assert d.max() <= ZOO_MAX_LSB[name] + TOL, report(name, d)
    assert np.mean(d <= 0.5 + TOL) >= 0.3, report(name, d)


QUANTIZER_VARIANTS = {
    "per_tensor_weights": {"per_channel": False},
    "per_tensor_qoperator": {"per_channel": False, "qdq": False},
    "weights_with_qdq_pair": {"extra_options": {"AddQDQPairToWeight": True}},
    "dedicated_qdq_pairs": {"extra_options": {"DedicatedQDQPair": True}},
    "symmetric_activations": {"extra_options": {"ActivationSymmetric": True}},  # keeps Relu nodes: fused here
    "kept_activations": {"extra_options": {"QDQKeepRemovableActivations": True}},
}


@pytest.mark.parametrize("variant", QUANTIZER_VARIANTS)
@pytest.mark.parametrize("name", ["residual", "sequence"])
def test_quantizer_options(name, variant):
    qmodel = quantize(ZOO[name](1), seed=1, **QUANTIZER_VARIANTS[variant])
    graph = import_onnx(qmodel)
    d = lsb_differences(qmodel, graph, calibration_like_int8(qmodel, 10, seed=5))
    print(report(f"{name} ({variant})", d))
    assert d.max() <= 3 + TOL, report(name, d)


def test_layout_and_weights():
    """NCHW -> NHWC once at import: input shape, conv OHWI and depthwise 1HWC weights, quantized dims."""
    net = FloatNet("x", (1, 2, 9, 7), seed=3)
    y = net.conv(net.input, 4, (3, 2), pads=[0, 1, 1, 1])  # H pads (0, 1) are not SAME: PAD + VALID
    net.output(net.depthwise(y, 2))
    qmodel = quantize(net.model())
    graph = import_onnx(qmodel)
    init = {t.name: onnx.numpy_helper.to_array(t) for t in qmodel.graph.initializer}
    assert graph.tensors[graph.inputs[0]].shape == (1, 9, 7, 2)
    kinds = [op.kind for op in graph.operators]
    assert kinds == ["PAD", "CONV_2D", "DEPTHWISE_CONV_2D"]
    conv, dw = graph.operators[1], graph.operators[2]
    w = graph.tensors[conv.inputs[1]]
    onnx_w = next(v for k, v in init.items() if v.dtype == np.int8 and v.shape == (4, 2, 3, 2))
    np.testing.assert_array_equal(w.data, onnx_w.transpose(0, 2, 3, 1))
    assert w.quantization.axis == 0 and w.quantization.scale.size == 4
    wd = graph.tensors[dw.inputs[1]]
    assert wd.shape == (1, 3, 3, 8) and wd.quantization.axis == 3 and wd.quantization.scale.size == 8
    assert dw.options["depth_multiplier"] == 2 and dw.options["padding"] == "SAME"
    bias = graph.tensors[conv.inputs[2]]
    assert bias.dtype == np.int32 and bias.quantization.scale.size == 4


def test_flatten_to_fc_permutes_weight_columns():
    """A Flatten of (C, H, W) feeding Gemm is a RESHAPE of NHWC; the weight columns follow NHWC order."""
    qmodel = SINGLE["flatten_to_gemm"](0)
    graph = import_onnx(qmodel)
    assert [op.kind for op in graph.operators] == ["RESHAPE", "FULLY_CONNECTED"]
    init = {t.name: onnx.numpy_helper.to_array(t) for t in qmodel.graph.initializer}
    onnx_w = next(v for v in init.values() if v.dtype == np.int8 and v.shape == (5, 360))
    ours = graph.tensors[graph.operators[1].inputs[1]].data
    np.testing.assert_array_equal(ours, onnx_w.reshape(5, 3, 12, 10).transpose(0, 2, 3, 1).reshape(5, 360))


def test_flatten_with_other_consumer_transposes_back():
    graph = import_onnx(SINGLE["flatten_output"](0))
    assert [op.kind for op in graph.operators] == ["CONV_2D", "TRANSPOSE", "RESHAPE"]


def test_relu_is_fused_or_implied():
    qmodel = SINGLE["conv_relu6"](0)
    assert not any(n.op_type in ("Relu", "Clip") for n in qmodel.graph.node)  # quantize_static folded it
    kept = single(lambda n, x: n.conv(x, 6, 3, pads=1, relu="relu6"), X4,
                  extra_options={"QDQKeepRemovableActivations": True})(0)
    assert any(n.op_type == "Clip" for n in kept.graph.node)
    graph = import_onnx(kept)
    assert [op.kind for op in graph.operators] == ["CONV_2D"]
    assert graph.operators[0].options["fused_activation_function"] == "RELU6"
    d = lsb_differences(kept, graph, calibration_like_int8(kept, 8, seed=3))
    assert d.max() <= 1.0 + TOL, report("conv + kept Clip", d)


def test_softmax_output_is_tflm_quantized():
    graph = import_onnx(SINGLE["softmax"](0))
    out = graph.tensors[graph.outputs[0]]
    assert out.quantization.scale[0] == np.float32(1 / 256) and out.quantization.zero_point[0] == -128


def test_float_io_adds_quantize_and_dequantize():
    qmodel = SINGLE["conv_relu"](1)
    graph = import_onnx(qmodel, float_io=True)
    assert graph.operators[0].kind == "QUANTIZE" and graph.operators[-1].kind == "DEQUANTIZE"
    assert graph.tensors[graph.inputs[0]].dtype == np.float32
    assert graph.tensors[graph.outputs[0]].dtype == np.float32
    x = np.random.default_rng(0).standard_normal((1, 3, 12, 10)).astype(np.float32)
    interpreter = runtime.Interpreter.from_bytes(export_tflite(graph), arena_size=1 << 20)
    interpreter.set_input(nhwc(x), 0)
    interpreter.invoke()
    ours = interpreter.get_output(0)
    ref = nhwc(run_onnxruntime_float(qmodel, x))
    step = float(import_onnx(qmodel).tensors[1].quantization.scale[0])
    assert np.abs(ours - ref).max() <= 2 * step  # input rounding (half away vs half even) may add one LSB


def run_onnxruntime_float(qmodel, x):
    from onnx_builders import ort_session

    return ort_session(qmodel).run(None, {qmodel.graph.input[0].name: x})[0]


def test_metadata_props_and_dynamic_batch():
    net = FloatNet("x", (1, 4), seed=0)
    net.output(net.gemm(net.input, 3))
    qmodel = quantize(net.model())
    qmodel.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    helper.set_model_props(qmodel, {"sed_runtime": '{"schema_version": 1}'})
    graph = import_onnx(qmodel)
    assert graph.metadata["sed_runtime"] == '{"schema_version": 1}'
    assert graph.tensors[graph.inputs[0]].shape == (1, 4)


def test_import_from_path(tmp_path):
    qmodel = SINGLE["gemm"](0)
    onnx.save(qmodel, tmp_path / "m.onnx")
    assert len(import_onnx(tmp_path / "m.onnx").operators) == 1
    with pytest.raises(ModelError, match="does not exist"):
        import_onnx(tmp_path / "missing.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        import_onnx(tmp_path / "bad.onnx")


def test_unsupported_operator_names_op_node_and_supported_set():
    net = FloatNet("x", (1, 3, 8, 8), seed=0)
    y = net.conv(net.input, 4, 3, pads=1)
    net.output(net.node("LeakyRelu", [y], alpha=0.1))
    qmodel = quantize(net.model())
    name = next(n.name for n in qmodel.graph.node if n.op_type == "LeakyRelu")
    with pytest.raises(UnsupportedOperatorError) as info:
        import_onnx(qmodel)
    message = str(info.value)
    assert "LeakyRelu" in message and repr(name) in message and "QLinearConv" in message
    assert all(op in message for op in SUPPORTED_ONNX_OPS)


def test_float_model_is_refused():
    net = FloatNet("x", (1, 4), seed=0)
    net.output(net.gemm(net.input, 3))
    with pytest.raises(ModelError, match="must be float32 followed by QuantizeLinear"):
        import_onnx(net.model())


def test_grouped_convolution_is_refused():
    net = FloatNet("x", (1, 4, 8, 8), seed=0)
    net.output(net.conv(net.input, 4, 3, pads=1, group=2))
    with pytest.raises(UnsupportedOperatorError, match="grouped convolution"):
        import_onnx(quantize(net.model()))


def test_uint8_activations_are_refused():
    qmodel = SINGLE["gemm"](0)
    for init in qmodel.graph.initializer:  # turn the activation zero points into uint8
        value = onnx.numpy_helper.to_array(init)
        if value.dtype == np.int8 and value.ndim == 0:
            init.CopyFrom(onnx.numpy_helper.from_array((value.astype(np.int16) + 128).astype(np.uint8), init.name))
    with pytest.raises(ModelError, match="int8 activations"):
        import_onnx(qmodel)


def test_unknown_domain_is_refused():
    qmodel = SINGLE["gemm"](0)
    qmodel.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(ModelError, match="com.example"):
        import_onnx(qmodel)


def test_pytorch_style_shape_arithmetic_is_folded():
    """x.view(x.size(0), -1): Shape -> Gather -> Unsqueeze -> Concat -> Reshape, evaluated at import."""
    net = FloatNet("x", (1, 2, 4, 4), seed=0)
    y = net.conv(net.input, 3, 3, pads=1, relu=True)
    shape = net.node("Shape", [y])
    batch = net.node("Gather", [shape, net.const(np.array(0, np.int64))], axis=0)
    batch = net.node("Unsqueeze", [batch, net.const(np.array([0], np.int64))])
    target = net.node("Concat", [batch, net.const(np.array([-1], np.int64))], axis=0)
    y = net.node("Reshape", [y, target])
    net.output(net.gemm(y, 2, k=48))
    qmodel = quantize(net.model())
    graph = import_onnx(qmodel)
    assert [op.kind for op in graph.operators] == ["CONV_2D", "RESHAPE", "FULLY_CONNECTED"]
    d = lsb_differences(qmodel, graph, calibration_like_int8(qmodel, 8, seed=1))
    assert d.max() <= 1.0 + TOL, report("shape arithmetic", d)


def test_graph_input_behind_a_reshape():
    """quantize_static leaves a Reshape of the input unquantized: the Q after it quantizes the input."""
    qmodel = SINGLE["reshape_to_4d"](0)
    assert next(n for n in qmodel.graph.node if qmodel.graph.input[0].name in n.input).op_type == "Reshape"
    graph = import_onnx(qmodel)
    assert graph.tensors[graph.inputs[0]].quantization is not None
    assert graph.tensors[graph.inputs[0]].shape == (1, 120)


def test_tanh_output_without_quantize_linear():
    """By default quantize_static leaves Tanh's output float; TFLM's fixed 1/128 quantization is used."""
    qmodel = single(lambda n, x: n.tanh(n.gemm(x, 30)), (1, 40))(0)
    assert qmodel.graph.node[-1].op_type == "Tanh"
    out = import_onnx(qmodel)
    q = out.tensors[out.outputs[0]].quantization
    assert q.scale[0] == np.float32(1 / 128) and q.zero_point[0] == 0


def test_constant_input_types():
    graph = import_onnx(SINGLE["mul_constant"](0))
    const = graph.tensors[graph.operators[0].inputs[1]]
    assert const.shape == (1, 1, 1, 3) and const.dtype == np.int8 and const.is_constant


def test_helper_model_is_valid_onnx():
    model = ZOO["residual"](0)
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
