"""export_tflite: every supported operator loads and runs in the tflite-micro interpreter.

Outputs of the single-operator models are checked where a one-line numpy
statement states the operator exactly (data movement, max pooling); the
arithmetic operators are compared bit for bit with our interpreter elsewhere.
The micro_speech model read from its flatbuffer, exported again and run on
the fixture features gives the same scores as the original file.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SHARED
from sed_runtime.errors import ModelError, UnsupportedOperatorError
from sed_runtime.model.export_tflite import export_tflite
from sed_runtime.model.graph import SUPPORTED_OPS, Graph, Operator, Quantization, Tensor
from sed_runtime.model.tflite_import import import_tflite

runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema  # noqa: E402

MICRO_SPEECH = SHARED / "fixtures" / "micro_speech"
ARENA_BYTES = 1 << 20


def q(scale, zero_point=0, axis=0) -> Quantization:
    return Quantization(np.asarray(scale, np.float32), np.asarray(zero_point), axis)


class GraphBuilder:
    """A few lines per test graph: tensors get consecutive indices."""

    def __init__(self) -> None:
        self.tensors: list[Tensor] = []
        self.ops: list[Operator] = []

    def tensor(self, name, shape, dtype=np.int8, quant=None, data=None) -> int:
        self.tensors.append(Tensor(len(self.tensors), name, shape, dtype, quant, data))
        return len(self.tensors) - 1

    def const_i32(self, name, values) -> int:
        values = np.asarray(values, dtype=np.int32)
        return self.tensor(name, values.shape, np.int32, None, values)

    def op(self, kind, inputs, outputs, **options) -> None:
        self.ops.append(Operator(kind, f"{kind.lower()}_{len(self.ops)}", inputs, outputs, options))

    def graph(self, inputs, outputs, metadata=None) -> Graph:
        return Graph(self.tensors, self.ops, inputs, outputs, metadata or {})


def run_tflm(model: bytes, inputs: list[np.ndarray]) -> list[np.ndarray]:
    interpreter = runtime.Interpreter.from_bytes(model, arena_size=ARENA_BYTES)
    for i, x in enumerate(inputs):
        interpreter.set_input(x, i)
    interpreter.invoke()
    outputs = []
    i = 0
    while True:
        try:
            outputs.append(np.array(interpreter.get_output(i)))
        except (IndexError, RuntimeError, ValueError):
            return outputs
        i += 1
        if i >= 8:
            return outputs


def conv_like(kind: str, rng) -> tuple[Graph, list[np.ndarray]]:
    b = GraphBuilder()
    x = b.tensor("x", (1, 9, 7, 3), quant=q(0.05, 3))
    if kind == "CONV_2D":
        w_shape, channels, axis, options = (5, 3, 3, 3), 5, 0, {}
    else:
        w_shape, channels, axis, options = (1, 3, 3, 6), 6, 3, {"depth_multiplier": 2}
    w_scale = rng.uniform(0.002, 0.01, channels)
    w = b.tensor("w", w_shape, quant=q(w_scale, np.zeros(channels, int), axis),
                 data=rng.integers(-127, 128, w_shape))
    bias = b.tensor("b", (channels,), np.int32, q(w_scale * 0.05, np.zeros(channels, int)),
                    rng.integers(-2000, 2000, channels))
    y = b.tensor("y", (1, 5, 4, channels), quant=q(0.03, -7))
    b.op(kind, (x, w, bias), (y,), padding="SAME", stride_w=2, stride_h=2, dilation_w_factor=1,
         dilation_h_factor=1, fused_activation_function="RELU6", **options)
    return b.graph((x,), (y,)), [rng.integers(-128, 128, (1, 9, 7, 3), dtype=np.int8)]


def single_op(kind: str, rng) -> tuple[Graph, list[np.ndarray], np.ndarray | None]:
    """A one-operator graph, its inputs and (where a numpy line states the operator exactly) its output."""
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        g, xs = conv_like(kind, rng)
        return g, xs, None
    b = GraphBuilder()
    x4 = rng.integers(-128, 128, (1, 6, 4, 3), dtype=np.int8)
    if kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        x = b.tensor("x", x4.shape, quant=q(0.1, 2))
        y = b.tensor("y", (1, 3, 2, 3), quant=q(0.1, 2))
        b.op(kind, (x,), (y,), padding="VALID", stride_w=2, stride_h=2, filter_width=2, filter_height=2,
             fused_activation_function="NONE")
        expected = x4.reshape(1, 3, 2, 2, 2, 3).max(axis=(2, 4)) if kind == "MAX_POOL_2D" else None
        return b.graph((x,), (y,)), [x4], expected
    if kind in ("ADD", "MUL"):
        x = b.tensor("x", x4.shape, quant=q(0.1, 2))
        c = b.tensor("c", (1, 1, 1, 3), quant=q(0.05, -1), data=rng.integers(-128, 128, (1, 1, 1, 3)))
        y = b.tensor("y", x4.shape, quant=q(0.2, 0))
        b.op(kind, (x, c), (y,), fused_activation_function="NONE")
        return b.graph((x,), (y,)), [x4], None
    if kind == "CONCATENATION":
        x = b.tensor("x", x4.shape, quant=q(0.1, 2))
        x2 = b.tensor("x2", (1, 6, 4, 2), quant=q(0.1, 2))
        y = b.tensor("y", (1, 6, 4, 5), quant=q(0.1, 2))
        other = rng.integers(-128, 128, (1, 6, 4, 2), dtype=np.int8)
        b.op(kind, (x, x2), (y,), axis=3, fused_activation_function="NONE")
        return b.graph((x, x2), (y,)), [x4, other], np.concatenate([x4, other], axis=3)
    if kind == "DEQUANTIZE":
        x = b.tensor("x", x4.shape, quant=q(0.1, 2))
        y = b.tensor("y", x4.shape, np.float32)
        b.op(kind, (x,), (y,))
        return b.graph((x,), (y,)), [x4], (np.float32(0.1) * (x4.astype(np.float32) - 2)).astype(np.float32)
    if kind == "QUANTIZE":  # int8 -> int8 requantization (float -> int8 is in test_quantize_from_float)
        x = b.tensor("x", x4.shape, quant=q(0.1, 2))
        y = b.tensor("y", x4.shape, quant=q(0.07, -3))
        b.op(kind, (x,), (y,))
        return b.graph((x,), (y,)), [x4], None
    if kind == "FULLY_CONNECTED":
        x = b.tensor("x", (2, 12), quant=q(0.1, 2))
        w_scale = rng.uniform(0.002, 0.01, 5)
        w = b.tensor("w", (5, 12), quant=q(w_scale, np.zeros(5, int)), data=rng.integers(-127, 128, (5, 12)))
        bias = b.tensor("b", (5,), np.int32, q(w_scale * 0.1, np.zeros(5, int)), rng.integers(-500, 500, 5))
        y = b.tensor("y", (2, 5), quant=q(0.05, 1))
        b.op(kind, (x, w, bias), (y,), fused_activation_function="RELU", keep_num_dims=False)
        return b.graph((x,), (y,)), [rng.integers(-128, 128, (2, 12), dtype=np.int8)], None
    if kind in ("LOGISTIC", "TANH", "SOFTMAX"):
        x = b.tensor("x", (2, 10), quant=q(0.1, 2))
        out_q = q(1 / 128, 0) if kind == "TANH" else q(1 / 256, -128)
        y = b.tensor("y", (2, 10), quant=out_q)
        if kind == "SOFTMAX":
            b.op(kind, (x,), (y,), beta=1.0)
        else:
            b.op(kind, (x,), (y,))
        return b.graph((x,), (y,)), [rng.integers(-128, 128, (2, 10), dtype=np.int8)], None
    if kind == "MEAN":
        x = b.tensor("x", x4.shape, quant=q(0.1, 2))
        axis = b.const_i32("axis", [1, 2])
        y = b.tensor("y", (1, 1, 1, 3), quant=q(0.05, -4))
        b.op(kind, (x, axis), (y,), keep_dims=True)
        return b.graph((x,), (y,)), [x4], None
    if kind == "PAD":
        x = b.tensor("x", x4.shape, quant=q(0.1, 2))
        pads = [[0, 0], [1, 2], [0, 1], [0, 0]]
        p = b.const_i32("paddings", pads)
        y = b.tensor("y", (1, 9, 5, 3), quant=q(0.1, 2))
        b.op(kind, (x, p), (y,))
        return b.graph((x,), (y,)), [x4], np.pad(x4, pads, constant_values=2)
    if kind == "RESHAPE":
        x = b.tensor("x", x4.shape, quant=q(0.1, 2))
        s = b.const_i32("shape", [1, 72])
        y = b.tensor("y", (1, 72), quant=q(0.1, 2))
        b.op(kind, (x, s), (y,), new_shape=[1, 72])
        return b.graph((x,), (y,)), [x4], x4.reshape(1, 72)
    if kind == "SQUEEZE":
        x = b.tensor("x", (1, 1, 6, 3), quant=q(0.1, 2))
        y = b.tensor("y", (6, 3), quant=q(0.1, 2))
        b.op(kind, (x,), (y,), squeeze_dims=[0, 1])
        x13 = rng.integers(-128, 128, (1, 1, 6, 3), dtype=np.int8)
        return b.graph((x,), (y,)), [x13], x13.reshape(6, 3)
    if kind == "TRANSPOSE":
        x = b.tensor("x", x4.shape, quant=q(0.1, 2))
        perm = b.const_i32("perm", [0, 3, 1, 2])
        y = b.tensor("y", (1, 3, 6, 4), quant=q(0.1, 2))
        b.op(kind, (x, perm), (y,))
        return b.graph((x,), (y,)), [x4], x4.transpose(0, 3, 1, 2)
    raise AssertionError(f"no test graph for {kind}")


@pytest.mark.parametrize("kind", SUPPORTED_OPS)
def test_single_operator_runs_in_tflm(kind):
    rng = np.random.default_rng(list(SUPPORTED_OPS).index(kind))
    graph, inputs, expected = single_op(kind, rng)
    model = export_tflite(graph)
    assert model[4:8] == b"TFL3"
    (out,) = run_tflm(model, inputs)
    y = graph.tensors[graph.outputs[0]]
    assert out.shape == y.shape and out.dtype == y.dtype
    if expected is not None:
        np.testing.assert_array_equal(out, expected)


def test_quantize_from_float():
    b = GraphBuilder()
    x = b.tensor("x", (1, 16), np.float32)
    y = b.tensor("y", (1, 16), quant=q(0.25, -3))
    b.op("QUANTIZE", (x,), (y,))
    values = np.array([[-40, -1.125, -0.125, 0, 0.1, 0.125, 0.375, 1, 2.5, 3, 7.9, 20, 31.6, 31.75, 32, 1e6]],
                      dtype=np.float32)
    (out,) = run_tflm(export_tflite(b.graph((x,), (y,))), [values])
    # TFLM rounds half away from zero: 0.125 / 0.25 = 0.5 -> 1, -0.125 / 0.25 = -0.5 -> -1.
    expected = np.clip(np.sign(values / 0.25) * np.floor(np.abs(values / 0.25) + 0.5) - 3, -128, 127)
    np.testing.assert_array_equal(out, expected.astype(np.int8))


def test_buffers_are_aligned_and_metadata_is_written():
    graph, _ = conv_like("CONV_2D", np.random.default_rng(1))
    graph = Graph(graph.tensors, graph.operators, graph.inputs, graph.outputs, {"note": "x"})
    model = export_tflite(graph, metadata={"sed_runtime": '{"schema_version": 1}'})
    m = schema.Model.GetRootAsModel(model, 0)
    assert m.BuffersLength() == 1 + 2 + 2  # sentinel, weights, bias, two metadata entries
    for i in range(1, m.BuffersLength()):
        buf = m.Buffers(i)
        start = buf._tab.Vector(buf._tab.Offset(4))
        assert start % 16 == 0, f"buffer {i} starts at {start}"
    names = {m.Metadata(i).Name().decode(): m.Metadata(i).Buffer() for i in range(m.MetadataLength())}
    assert bytes(m.Buffers(names["sed_runtime"]).DataAsNumpy()) == b'{"schema_version": 1}'
    assert bytes(m.Buffers(names["note"]).DataAsNumpy()) == b"x"


def test_unknown_option_is_refused():
    graph, _ = conv_like("CONV_2D", np.random.default_rng(2))
    op = graph.operators[0]
    bad = Operator(op.kind, op.name, op.inputs, op.outputs, {**op.options, "stride": 2})
    with pytest.raises(ModelError, match="has no option 'stride'.*stride_w"):
        export_tflite(Graph(graph.tensors, [bad], graph.inputs, graph.outputs))


def test_missing_stride_and_bad_enum_are_refused():
    graph, _ = conv_like("CONV_2D", np.random.default_rng(3))
    op = graph.operators[0]
    options = {k: v for k, v in op.options.items() if k != "stride_h"}
    with pytest.raises(ModelError, match="stride_h >= 1"):
        export_tflite(Graph(graph.tensors, [Operator(op.kind, op.name, op.inputs, op.outputs, options)],
                            graph.inputs, graph.outputs))
    options = {**op.options, "padding": "FULL"}
    with pytest.raises(ModelError, match="padding='FULL'.*SAME"):
        export_tflite(Graph(graph.tensors, [Operator(op.kind, op.name, op.inputs, op.outputs, options)],
                            graph.inputs, graph.outputs))


def test_graph_refuses_unsupported_kind():
    with pytest.raises(UnsupportedOperatorError, match="LSTM"):
        Graph([Tensor(0, "x", (1,), np.int8)], [Operator("LSTM", "l", (0,), (0,))], (0,), (0,))


# ---------------------------------------------------------------------------
# micro_speech: flatbuffer -> Graph (the TFLite importer) -> flatbuffer gives the same scores
# ---------------------------------------------------------------------------

def test_micro_speech_round_trip():
    path = MICRO_SPEECH / "micro_speech_quantized.tflite"
    golden = np.load(MICRO_SPEECH / "golden.npz")
    exported = export_tflite(import_tflite(path))
    for clip in ("yes", "no", "noise", "silence"):
        features = golden[f"{clip}_1000ms_features"].reshape(1, -1)
        (original,) = run_tflm(path.read_bytes(), [features])
        (again,) = run_tflm(exported, [features])
        np.testing.assert_array_equal(original.reshape(-1), golden[f"{clip}_1000ms_scores"])
        np.testing.assert_array_equal(again, original)
