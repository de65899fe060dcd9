"""Build small float ONNX networks in a few lines and quantize them as users do.

Shared test helpers (other test modules may import them)::

    net = FloatNet("x", (1, 1, 20, 16), seed=0)
    y = net.conv(net.input, 8, 3, pads=1, relu=True)
    y = net.global_average_pool(y)
    y = net.gemm(net.flatten(y), 4)
    net.output(net.softmax(y))
    qdq = quantize(net.model(), seed=0)            # onnxruntime quantize_static, QDQ, per-channel int8

Weights are seeded normal values scaled like a trained network's (He
initialisation), biases small; calibration data are seeded normal inputs.
``run_onnxruntime`` feeds int8 inputs through the quantized model's float
interface (exactly representable values, so the first QuantizeLinear gives
back the same integers) and returns its float outputs.  ``ZOO`` holds small
networks covering the ONNX importer's operators.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17

__all__ = ["FloatNet", "quantize", "ort_session", "run_onnxruntime", "input_quantization", "calibration_like_int8", "ZOO",
           "OPSET"]


class FloatNet:
    """A float32 ONNX graph under construction (NCHW), with shapes inferred as it grows."""

    def __init__(self, input_name: str = "input", input_shape=(1, 1, 16, 16), seed: int = 0,
                 input_names_shapes: list[tuple[str, tuple[int, ...]]] | None = None):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs = []
        for name, shape in input_names_shapes or [(input_name, tuple(input_shape))]:
            self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)))
        self.input = self.inputs[0].name
        self.outputs: list[onnx.ValueInfoProto] = []
        self._count = 0
        self._shapes = {vi.name: tuple(d.dim_value for d in vi.type.tensor_type.shape.dim) for vi in self.inputs}

    # -- plumbing ----------------------------------------------------------
    def _name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def const(self, value, prefix: str = "c") -> str:
        name = self._name(prefix)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op_type: str, inputs, n_outputs: int = 1, **attrs) -> str | list[str]:
        name = self._name(op_type.lower())
        outputs = [f"{name}_out{i}" if n_outputs > 1 else f"{name}_out" for i in range(n_outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outputs, name=name, **attrs))
        self._shapes.clear()
        return outputs if n_outputs > 1 else outputs[0]

    def shape(self, tensor: str) -> tuple[int, ...]:
        if tensor not in self._shapes:
            graph = helper.make_graph(self.nodes, "g", self.inputs, [], self.initializers)
            inferred = onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]))
            for vi in list(inferred.graph.value_info) + list(inferred.graph.input):
                self._shapes[vi.name] = tuple(d.dim_value for d in vi.type.tensor_type.shape.dim)
        return self._shapes[tensor]

    def output(self, *tensors: str) -> None:
        for t in tensors:
            self.outputs.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, list(self.shape(t))))

    def model(self) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, "net", self.inputs, self.outputs, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="onnx_builders")
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model

    # -- layers --------------------------------------------------------------
    def conv(self, x: str, c_out: int, kernel, stride=1, pads=0, dilation=1, group: int = 1, bias: bool = True,
             relu: bool | str = False, auto_pad: str | None = None) -> str:
        c_in = self.shape(x)[1]
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        w = self.rng.normal(0, np.sqrt(2.0 / (c_in // group * kh * kw)), (c_out, c_in // group, kh, kw))
        inputs = [x, self.const(w.astype(np.float32), "w")]
        if bias:
            inputs.append(self.const(self.rng.normal(0, 0.1, c_out).astype(np.float32), "b"))
        attrs = dict(kernel_shape=[kh, kw], strides=_pair(stride), dilations=_pair(dilation), group=group)
        if auto_pad:
            attrs["auto_pad"] = auto_pad
        else:
            attrs["pads"] = _pads(pads)
        y = self.node("Conv", inputs, **attrs)
        return self.activation(y, relu)

    def activation(self, y: str, kind: bool | str) -> str:
        if kind is True or kind == "relu":
            return self.node("Relu", [y])
        if kind == "relu6":
            return self.node("Clip", [y, self.const(np.float32(0), "lo"), self.const(np.float32(6), "hi")])
        return y

    def depthwise(self, x: str, multiplier: int = 1, kernel=3, stride=1, pads=1, dilation=1, relu=False) -> str:
        c = self.shape(x)[1]
        return self.conv(x, c * multiplier, kernel, stride, pads, dilation, group=c, relu=relu)

    def max_pool(self, x: str, kernel, stride=None, pads=0, ceil_mode: int = 0) -> str:
        k = _pair(kernel)
        return self.node("MaxPool", [x], kernel_shape=k, strides=_pair(stride or kernel), pads=_pads(pads),
                         ceil_mode=ceil_mode)

    def average_pool(self, x: str, kernel, stride=None, pads=0, count_include_pad: int = 0) -> str:
        return self.node("AveragePool", [x], kernel_shape=_pair(kernel), strides=_pair(stride or kernel),
                         pads=_pads(pads), count_include_pad=count_include_pad)

    def global_average_pool(self, x: str) -> str:
        return self.node("GlobalAveragePool", [x])

    def flatten(self, x: str, axis: int = 1) -> str:
        return self.node("Flatten", [x], axis=axis)

    def reshape(self, x: str, shape) -> str:
        return self.node("Reshape", [x, self.const(np.asarray(shape, np.int64), "shape")])

    def transpose(self, x: str, perm) -> str:
        return self.node("Transpose", [x], perm=list(perm))

    def squeeze(self, x: str, axes) -> str:
        return self.node("Squeeze", [x, self.const(np.asarray(axes, np.int64), "axes")])

    def gemm(self, x: str, n_out: int, relu=False, trans_b: int = 1, k: int | None = None) -> str:
        k = k or self.shape(x)[-1]
        w = self.rng.normal(0, np.sqrt(2.0 / k), (n_out, k)).astype(np.float32)
        b = self.rng.normal(0, 0.1, n_out).astype(np.float32)
        y = self.node("Gemm", [x, self.const(w if trans_b else w.T.copy(), "w"), self.const(b, "b")], transB=trans_b)
        return self.activation(y, relu)

    def matmul(self, x: str, n_out: int, bias: bool = True) -> str:
        k = self.shape(x)[-1]
        w = self.rng.normal(0, np.sqrt(2.0 / k), (k, n_out)).astype(np.float32)
        y = self.node("MatMul", [x, self.const(w, "w")])
        if bias:
            y = self.node("Add", [y, self.const(self.rng.normal(0, 0.1, n_out).astype(np.float32), "b")])
        return y

    def add(self, a: str, b: str) -> str:
        return self.node("Add", [a, b])

    def mul(self, a: str, b: str) -> str:
        return self.node("Mul", [a, b])

    def concat(self, tensors, axis: int = 1) -> str:
        return self.node("Concat", list(tensors), axis=axis)

    def pad(self, x: str, pads) -> str:
        return self.node("Pad", [x, self.const(np.asarray(pads, np.int64), "pads")], mode="constant")

    def softmax(self, x: str, axis: int = -1) -> str:
        return self.node("Softmax", [x], axis=axis)

    def sigmoid(self, x: str) -> str:
        return self.node("Sigmoid", [x])

    def tanh(self, x: str) -> str:
        return self.node("Tanh", [x])


def _pair(v):
    return [v, v] if isinstance(v, int) else list(v)


def _pads(p):
    """ONNX pads [top, left, bottom, right] from an int, (h, w) or a full list."""
    if isinstance(p, int):
        return [p] * 4
    if len(p) == 2:
        return [p[0], p[1], p[0], p[1]]
    return list(p)


class _Reader:
    """A seeded calibration data reader: ``n`` batches of normal inputs per graph input."""

    def __init__(self, model: onnx.ModelProto, n: int, seed: int, scale: float):
        rng = np.random.default_rng(seed)
        shapes = {i.name: [d.dim_value or 1 for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
        self._batches = iter([{k: (scale * rng.standard_normal(s)).astype(np.float32) for k, s in shapes.items()}
                              for _ in range(n)])

    def get_next(self):
        return next(self._batches, None)


def quantize(model: onnx.ModelProto, seed: int = 0, n_calibration: int = 16, per_channel: bool = True,
             qdq: bool = True, input_scale: float = 1.0, extra_options: dict | None = None,
             op_types: list[str] | None = None) -> onnx.ModelProto:
    """``quantize_static`` with int8 weights (symmetric, per channel) and int8 activations, as users run it."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, src)
        quantize_static(
            str(src), str(dst), _Reader(model, n_calibration, seed, input_scale),
            quant_format=QuantFormat.QDQ if qdq else QuantFormat.QOperator,
            op_types_to_quantize=op_types, per_channel=per_channel, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax, extra_options=extra_options or {},
        )
        return onnx.load(dst)


def ort_session(model: onnx.ModelProto):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def input_quantization(model: onnx.ModelProto) -> list[tuple[float, int]]:
    """(scale, zero_point) of the QuantizeLinear reading each graph input (possibly behind layout operators)."""
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    out = []
    for i in model.graph.input:
        name = i.name
        while True:
            users = [n for n in model.graph.node if name in n.input]
            q = next((n for n in users if n.op_type == "QuantizeLinear"), None)
            if q is not None or len(users) != 1:
                break
            name = users[0].output[0]
        assert q is not None, f"input {i.name} is not quantized"
        out.append((float(init[q.input[1]]), int(init[q.input[2]])))
    return out


def run_onnxruntime(model: onnx.ModelProto, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Run the quantized model on int8 inputs (ONNX layout); return its float outputs.

    The inputs are fed as exactly representable floats, so the model's first
    QuantizeLinear gives back the same integers.
    """
    session = ort_session(model)
    feed = {}
    for vi, x, (scale, zp) in zip(model.graph.input, inputs, input_quantization(model)):
        feed[vi.name] = ((x.astype(np.float32) - np.float32(zp)) * np.float32(scale)).astype(np.float32)
    return session.run(None, feed)


def calibration_like_int8(model: onnx.ModelProto, n: int, seed: int = 1, scale: float = 1.0) -> list[list[np.ndarray]]:
    """``n`` sets of int8 inputs (ONNX layout) drawn like the calibration data, quantized with the input Q."""
    rng = np.random.default_rng(seed)
    ins = input_quantization(model)
    shapes = [[d.dim_value or 1 for d in i.type.tensor_type.shape.dim] for i in model.graph.input]
    return [[np.clip(np.rint(scale * rng.standard_normal(s) / sc) + zp, -128, 127).astype(np.int8)
             for s, (sc, zp) in zip(shapes, ins)] for _ in range(n)]


# ---------------------------------------------------------------------------
# A zoo of small float networks (NCHW, one input) covering the importer's operators.
# ---------------------------------------------------------------------------

def _conv_stack(seed: int) -> onnx.ModelProto:
    """Strides, explicit symmetric/asymmetric padding, dilation, 1x1, ReLU/ReLU6, max pooling, GAP, FC."""
    net = FloatNet("features", (1, 1, 24, 20), seed)
    y = net.conv(net.input, 8, 3, stride=2, pads=1, relu=True)               # stride 2, pads 1 is not TFLite SAME: PAD + VALID
    y = net.conv(y, 8, (3, 5), pads=(1, 2), relu="relu6")                    # SAME
    y = net.conv(y, 12, 3, dilation=2, pads=2, relu=True)                    # dilated SAME
    y = net.conv(y, 12, 3, pads=[0, 1, 1, 0])                                # asymmetric: PAD + VALID
    y = net.max_pool(y, 2)
    y = net.conv(y, 16, 1, relu=True)                                        # 1x1
    y = net.conv(y, 16, 2, stride=2, auto_pad="SAME_UPPER")
    y = net.global_average_pool(y)
    net.output(net.gemm(net.flatten(y), 5))
    return net.model()


def _depthwise(seed: int) -> onnx.ModelProto:
    """Depthwise with multipliers 1 and 2, strides, average pooling (SAME, VALID, include-pad), softmax."""
    net = FloatNet("features", (1, 4, 20, 16), seed)
    y = net.depthwise(net.input, 2, 3, stride=1, pads=1, relu=True)
    y = net.conv(y, 8, 1, relu=True)
    y = net.depthwise(y, 1, 3, stride=2, pads=1, relu="relu6")
    y = net.average_pool(y, 3, 1, 1)
    y = net.average_pool(y, 2, 2)
    y = net.average_pool(y, 3, 1, 1, count_include_pad=1)
    y = net.global_average_pool(y)
    net.output(net.softmax(net.gemm(net.flatten(y), 4)))
    return net.model()


def _residual(seed: int) -> onnx.ModelProto:
    """Add and Concat residual blocks, Mul by a constant, Pad, sigmoid output."""
    net = FloatNet("features", (1, 1, 16, 12), seed)
    x = net.conv(net.input, 8, 3, pads=1, relu=True)
    y = net.conv(x, 8, 3, pads=1, relu=True)
    y = net.add(x, net.conv(y, 8, 3, pads=1))
    z = net.concat([y, net.conv(x, 4, 1, relu=True)], axis=1)
    z = net.mul(z, net.const(np.full((12, 1, 1), 0.5, np.float32)))
    z = net.pad(z, [0, 0, 1, 1, 0, 0, 1, 1])
    z = net.conv(z, 8, 3, stride=2, relu=True)
    z = net.max_pool(z, 2)
    net.output(net.sigmoid(net.gemm(net.flatten(z), 3)))   # Flatten over H, W, C: FC weights permuted
    return net.model()


def _flatten_to_fc(seed: int) -> onnx.ModelProto:
    """Flatten of an NCHW map with C, H, W > 1 straight into Gemm (column permutation), then ReLU FC."""
    net = FloatNet("features", (1, 2, 10, 8), seed)
    y = net.conv(net.input, 6, 3, stride=2, pads=1, relu=True)
    y = net.gemm(net.flatten(y), 16, relu=True)
    net.output(net.gemm(y, 4))
    return net.model()


def _sequence(seed: int) -> onnx.ModelProto:
    """A CRNN-style head: conv over (time, freq), transpose to (time, channels, freq), reshape per frame,
    MatMul + Add per frame (FULLY_CONNECTED keep_num_dims), tanh, a flatten that needs a TRANSPOSE."""
    net = FloatNet("features", (1, 1, 12, 16), seed)
    y = net.conv(net.input, 4, 3, pads=1, relu=True)                      # (1, 4, 12, 16)
    y = net.max_pool(y, (1, 2))                                           # (1, 4, 12, 8)
    y = net.transpose(y, (0, 2, 1, 3))                                    # (1, 12, 4, 8)
    y = net.reshape(y, (1, 12, 32))
    y = net.tanh(net.matmul(y, 6))                                        # (1, 12, 6)
    net.output(net.softmax(net.reshape(y, (1, 72))))
    return net.model()


ZOO = {
    "conv_stack": _conv_stack,
    "depthwise": _depthwise,
    "residual": _residual,
    "flatten_to_fc": _flatten_to_fc,
    "sequence": _sequence,
}
