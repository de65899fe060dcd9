"""Import a quantized ONNX model into the int8 :class:`~sed_runtime.model.graph.Graph`.

Accepted input: ONNX models written by ``onnxruntime.quantization.quantize_static``
with int8 weights (symmetric, per channel or per tensor), int8 activations
(``QuantType.QInt8``) and int32 biases, in either format:

* **QDQ** (the default): float operators between ``DequantizeLinear`` and
  ``QuantizeLinear`` nodes.  Each Q/DQ pair is folded into the quantization of
  one int8 tensor; a ``DequantizeLinear`` of an int8/int32 initializer becomes
  a constant tensor.
* **QOperator**: ``QLinearConv``, ``QLinearMatMul``, ``QGemm``, ``QLinearAdd``,
  ``QLinearMul``, ``QLinearAveragePool``, ``QLinearGlobalAveragePool``,
  ``QLinearConcat``, ``QLinearSoftmax``, ``QLinearSigmoid``; ``MaxPool``,
  ``Reshape``, ``Transpose``, ... directly on int8 tensors.

Operator mapping (ONNX -> TFLite builtin):

=========================================  ====================================================
Conv (group 1)                              CONV_2D, weights OIHW -> OHWI, per-channel axis 0
Conv (group = in channels)                  DEPTHWISE_CONV_2D, weights -> 1HW(C*mult), axis 3
Gemm, MatMul with constant B                FULLY_CONNECTED (weights [out, in])
AveragePool / MaxPool                       AVERAGE_POOL_2D / MAX_POOL_2D
GlobalAveragePool                           MEAN over H, W, keep_dims
Add, Mul, Concat, Pad                       ADD, MUL, CONCATENATION, PAD
Reshape, Flatten, Squeeze, Unsqueeze        RESHAPE (plus TRANSPOSE where NHWC order differs)
Transpose                                   TRANSPOSE (or RESHAPE / nothing when it moves no data)
Softmax, Sigmoid, Tanh                      SOFTMAX, LOGISTIC, TANH
Relu, Clip(0, 6), Clip(-1, 1)               the producer's ``fused_activation_function``
=========================================  ====================================================

Integer shape arithmetic on constants (``Shape``/``Gather``/``Concat``/...
feeding a Reshape, as PyTorch exports ``x.view(x.size(0), -1)``) is evaluated
at import.  Padding that is not TFLite SAME becomes a PAD (with the zero
point) before a VALID convolution or pooling.

Layout: 4-D activations are NCHW in ONNX and NHWC here (converted once, at
import; a 4-D graph input is fed NHWC); other ranks keep their ONNX axis order.  A Flatten/Reshape of an NHWC
tensor whose only consumers are fully connected layers is a plain RESHAPE and
the layers' weight columns are permuted into NHWC flattening order; any other
consumer gets a TRANSPOSE back to ONNX order first, so element order always
matches the ONNX model.

Quantized edges: the ``QuantizeLinear`` after a float graph input and the
``DequantizeLinear`` before a float graph output are folded into the int8
quantization of the Graph's input and output tensors; callers quantize
features with the input's ``Tensor.quantization`` (the frontend does this in
integer arithmetic) and read scores as int8 with the output's.  With
``float_io=True`` the graph keeps float32 edges through QUANTIZE/DEQUANTIZE
operators instead (TFLM rounds those half away from zero, onnxruntime half to
even).

TFLM-mandated output quantizations replace the ONNX ones: SOFTMAX and
LOGISTIC outputs are int8 with scale 1/256 and zero point -128, TANH outputs
scale 1/128 and zero point 0 (onnxruntime calibrates softmax to [0, 1], i.e.
scale 1/255).  Where TFLM needs equal input and output quantization
(CONCATENATION inputs, pooling, PAD, reshapes) and the ONNX model has
different ones, an int8 -> int8 QUANTIZE requantizes.

Everything else raises :class:`UnsupportedOperatorError` naming the op type,
the node and the supported set (also for unsupported attributes: grouped
convolution, ceil_mode that adds a window, non-constant Pad modes, ...), or
:class:`ModelError` for a model that is not quantized the way the interpreter
needs (float activations, uint8 activations or weights, non-zero weight zero
points, per-channel activations).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sed_runtime.errors import ModelError, UnsupportedOperatorError
from sed_runtime.model.graph import Graph, Operator, Quantization, Tensor

__all__ = ["import_onnx", "SUPPORTED_ONNX_OPS"]

SUPPORTED_ONNX_OPS = (
    "Add", "AveragePool", "Clip", "Concat", "Constant", "Conv", "DequantizeLinear", "Dropout", "Flatten", "Gemm",
    "GlobalAveragePool", "Identity", "MatMul", "MaxPool", "Mul", "Pad", "QGemm", "QLinearAdd", "QLinearAveragePool",
    "QLinearConcat", "QLinearConv", "QLinearGlobalAveragePool", "QLinearMatMul", "QLinearMul", "QLinearSigmoid",
    "QLinearSoftmax", "QuantizeLinear", "Relu", "Reshape", "Sigmoid", "Softmax", "Squeeze", "Tanh", "Transpose",
    "Unsqueeze",
)

# Integer-valued shape arithmetic that is evaluated at import when all its inputs are constants.
_FOLDABLE = ("Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Slice", "Reshape", "Mul", "Add", "Sub",
             "Div", "ReduceProd", "Constant", "ConstantOfShape", "Identity", "Range", "Transpose", "Flatten")

_LAYOUT_ONLY = ("Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity")
_NHWC = (0, 2, 3, 1)  # our axis i holds ONNX (NCHW) axis _NHWC[i]
_FUSABLE = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL")
_POOLS = ("AVERAGE_POOL_2D", "MAX_POOL_2D")
_SOFTMAX_Q = (1.0 / 256.0, -128)
_LOGISTIC_Q = (1.0 / 256.0, -128)
_TANH_Q = (1.0 / 128.0, 0)


def _q(scale, zero_point, axis: int = 0) -> Quantization:
    return Quantization(np.asarray(scale, dtype=np.float32), np.asarray(zero_point, dtype=np.int64), axis)


def _same_quant(a: Quantization | None, b: Quantization | None) -> bool:
    if a is None or b is None:
        return a is b
    return (a.scale.shape == b.scale.shape and bool(np.all(a.scale == b.scale))
            and bool(np.all(a.zero_point == b.zero_point)))


def _layout(rank: int) -> tuple[int, ...]:
    """The default layout of an ONNX tensor of this rank here: NHWC for 4-D, ONNX order otherwise."""
    return _NHWC if rank == 4 else tuple(range(rank))


def _memory_equal(shape, layout) -> bool:
    """True when storing an ONNX tensor of ``shape`` in ``layout`` keeps the ONNX element order."""
    moved = [a for a in layout if shape[a] != 1]
    return moved == sorted(moved)


@dataclass
class _Act:
    """An int8 activation of the graph being built.

    ``shape`` is the ONNX shape; the stored tensor is ``shape`` permuted by
    ``layout`` (our axis i holds ONNX axis ``layout[i]``).  ``feature_perm``
    marks a flattened NHWC tensor: our feature g is ONNX feature ``perm[g]``.
    ``forced`` marks a quantization TFLM imposes (softmax, logistic, tanh),
    which replaces whatever the ONNX model says downstream.
    """

    index: int
    shape: tuple[int, ...]
    quant: Quantization
    onnx_name: str
    layout: tuple[int, ...]
    feature_perm: np.ndarray | None = None
    forced: bool = False

    @property
    def ours(self) -> tuple[int, ...]:
        return tuple(self.shape[a] for a in self.layout)


@dataclass
class _Const:
    """A constant in ONNX layout; ``quant`` is None for plain (shape, axes, float) constants."""

    data: np.ndarray
    quant: Quantization | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)


@dataclass
class _Op:
    kind: str
    name: str
    inputs: list[int]
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)


def _attrs(node) -> dict[str, Any]:
    from onnx import helper

    out = {}
    for a in node.attribute:
        value = helper.get_attribute_value(a)
        out[a.name] = value.decode() if isinstance(value, bytes) else value
    return out


def _where(node) -> str:
    return f"{node.op_type} (node {node.name!r})"


def _unsupported(node, why: str = "") -> UnsupportedOperatorError:
    detail = f": {why}" if why else ""
    return UnsupportedOperatorError(
        f"ONNX operator {node.op_type} (node {node.name!r}) is not supported{detail}; "
        f"supported: {', '.join(SUPPORTED_ONNX_OPS)}"
    )


def _out_size(size: int, kernel: int, stride: int, dilation: int, pad_begin: int, pad_end: int, ceil: bool) -> int:
    """ONNX Conv/pool output length (ceil_mode as onnxruntime: the last window starts inside the input)."""
    effective = (kernel - 1) * dilation + 1
    span = size + pad_begin + pad_end - effective
    if span < 0:
        raise ModelError(f"window {effective} is larger than the padded input {size + pad_begin + pad_end}")
    out = -(-span // stride) + 1 if ceil else span // stride + 1
    if ceil and (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


def import_onnx(source, float_io: bool = False) -> Graph:
    """Read a quantized ONNX model (a path or an ``onnx.ModelProto``) into a :class:`Graph`.

    The Graph's ``metadata`` holds the model's ``metadata_props``.  See the
    module docstring for the accepted formats, operators and layout rules.
    """
    import onnx

    if isinstance(source, onnx.ModelProto):
        model = source
    else:
        path = Path(source)
        if not path.is_file():
            raise ModelError(f"ONNX model {str(path)!r} does not exist")
        try:
            model = onnx.load(str(path))
        except Exception as exc:  # onnx raises protobuf DecodeError and friends
            raise ModelError(f"{str(path)!r} is not a readable ONNX model: {exc}") from exc
    return _Importer(model, float_io).run()


class _Importer:
    def __init__(self, model, float_io: bool):
        from onnx import numpy_helper

        self.model = model
        self.float_io = float_io
        g = model.graph
        for opset in model.opset_import:
            if opset.domain not in ("", "ai.onnx", "com.microsoft"):
                raise ModelError(f"ONNX model uses operator domain {opset.domain!r}; supported: ai.onnx, com.microsoft")
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        self.values: dict[str, _Act | _Const] = {}
        for t in g.initializer:
            self.values[t.name] = _Const(numpy_helper.to_array(t))
        self.consumers: dict[str, list] = {}
        self.producers: dict[str, Any] = {}
        for node in g.node:
            for name in node.input:
                if name:
                    self.consumers.setdefault(name, []).append(node)
            for name in node.output:
                self.producers[name] = node
        self.graph_outputs = {o.name for o in g.output}
        self.done: set[int] = set()  # ids of nodes consumed by a fusion
        self.tensors: list[Tensor] = []
        self.ops: list[_Op] = []
        self.producer: dict[int, _Op] = {}

    # ------------------------------------------------------------------ building blocks
    def tensor(self, name: str, shape, dtype=np.int8, quant: Quantization | None = None, data=None) -> int:
        self.tensors.append(Tensor(len(self.tensors), name, tuple(shape), dtype, quant, data))
        return len(self.tensors) - 1

    def act(self, name: str, onnx_shape, quant: Quantization, layout: tuple[int, ...] | None = None) -> _Act:
        onnx_shape = tuple(int(d) for d in onnx_shape)
        layout = _layout(len(onnx_shape)) if layout is None else tuple(layout)
        index = self.tensor(name, tuple(onnx_shape[a] for a in layout), np.int8, quant)
        return _Act(index, onnx_shape, quant, name, layout)

    def op(self, kind: str, name: str, inputs, outputs, **options) -> _Op:
        op = _Op(kind, name, list(inputs), list(outputs), options)
        self.ops.append(op)
        for t in op.outputs:
            self.producer[t] = op
        return op

    def const_i32(self, name: str, values) -> int:
        values = np.asarray(values, dtype=np.int32)
        return self.tensor(name, values.shape, np.int32, None, values)

    def requantize(self, src: _Act, quant: Quantization, name: str) -> _Act:
        """``src`` requantized to ``quant`` by an int8 -> int8 QUANTIZE (``src`` itself when equal)."""
        if _same_quant(src.quant, quant):
            return src
        out = self.act(f"{name}_requantized", src.shape, quant, src.layout)
        out.feature_perm = src.feature_perm
        self.op("QUANTIZE", f"{name}_requantize", [src.index], [out.index])
        return out

    def reshape(self, x: _Act, onnx_shape, name: str, layout=None) -> _Act:
        out = self.act(name, onnx_shape, x.quant, layout)
        shape_index = self.const_i32(f"{name}_shape", out.ours)
        self.op("RESHAPE", name, [x.index, shape_index], [out.index], new_shape=list(out.ours))
        return out

    def transpose(self, x: _Act, perm: list[int], layout, name: str) -> _Act:
        """TRANSPOSE our tensor by ``perm``; the result stores ONNX shape ``x.shape`` in ``layout``."""
        out = self.act(name, x.shape, x.quant, layout)
        perm_index = self.const_i32(f"{name}_perm", perm)
        self.op("TRANSPOSE", name, [x.index, perm_index], [out.index])
        return out

    # ------------------------------------------------------------------ value lookup
    def value(self, name: str, node) -> _Act | _Const:
        if name not in self.values:
            raise ModelError(f"{_where(node)} reads {name!r}, which is neither an initializer nor the output of "
                             "a supported, quantized operator")
        return self.values[name]

    def activation_input(self, name: str, node, nhwc: bool = False) -> _Act:
        v = self.value(name, node)
        if not isinstance(v, _Act):
            raise ModelError(f"{_where(node)} has constant input {name!r} where an int8 activation is expected")
        if nhwc and (len(v.shape) != 4 or v.layout != _NHWC):
            raise _unsupported(node, f"needs a 4-D NCHW input; {name!r} has shape {v.shape}")
        return v

    def plain_const(self, name: str, node) -> np.ndarray:
        v = self.value(name, node)
        if isinstance(v, _Const) and v.quant is None:
            return v.data
        raise ModelError(f"{_where(node)} input {name!r} must be a constant (an initializer)")

    def quant_from(self, scale_name: str, zp_name: str | None, node, axis: int | None = None,
                   rank: int | None = None, activation: bool = True) -> Quantization:
        scale = np.asarray(self.plain_const(scale_name, node), dtype=np.float32)
        zp = self.plain_const(zp_name, node) if zp_name else np.zeros(scale.shape, np.uint8)  # ONNX default
        if activation and zp.dtype != np.int8:
            raise ModelError(f"{_where(node)} quantizes to {zp.dtype}; this runtime needs int8 activations "
                             "(quantize_static activation_type=QuantType.QInt8)")
        if scale.size > 1:
            if activation:
                raise ModelError(f"{_where(node)} quantizes an activation per channel; activations must be per tensor")
            axis = 1 if axis is None else int(axis)  # the ONNX default axis
            if rank is not None and axis < 0:
                axis += rank
        else:
            axis = 0
        return _q(scale.reshape(-1), np.asarray(zp, np.int64).reshape(-1), axis)

    def q_node_quant(self, qnode) -> Quantization:
        return self.quant_from(qnode.input[1], qnode.input[2] if len(qnode.input) > 2 else None, qnode)

    # ------------------------------------------------------------------ looking ahead
    def real_consumers(self, name: str, seen=None) -> list:
        """Nodes other than Q/DQ/Identity reading ``name`` through any such chain; "output" for a graph output."""
        seen = set() if seen is None else seen
        found = ["output"] if name in self.graph_outputs else []
        for node in self.consumers.get(name, []):
            if id(node) in seen:
                continue
            seen.add(id(node))
            if node.op_type in ("QuantizeLinear", "DequantizeLinear", "Identity"):
                found.extend(self.real_consumers(node.output[0], seen))
            else:
                found.append(node)
        return found

    def real_source(self, name: str) -> str:
        """The name behind a chain of Q/DQ/Identity nodes."""
        while name in self.producers and self.producers[name].op_type in ("QuantizeLinear", "DequantizeLinear",
                                                                          "Identity"):
            name = self.producers[name].input[0]
        return name

    def activation_kind(self, node) -> tuple[str | None, float, float]:
        """The TFLite fused activation a Relu/Clip node is (None if none is), and its bounds."""
        if node.op_type == "Relu":
            return "RELU", 0.0, np.inf
        attrs = _attrs(node)
        lo, hi = float(attrs.get("min", -np.inf)), float(attrs.get("max", np.inf))
        if len(node.input) > 1 and node.input[1]:
            lo = self.scalar(node.input[1], node)
        if len(node.input) > 2 and node.input[2]:
            hi = self.scalar(node.input[2], node)
        kind = {(0.0, np.inf): "RELU", (0.0, 6.0): "RELU6", (-1.0, 1.0): "RELU_N1_TO_1"}.get((lo, hi))
        return kind, lo, hi

    def scalar(self, name: str, node) -> float:
        v = self.value(name, node)
        if not isinstance(v, _Const) or v.data.size != 1:
            raise ModelError(f"{_where(node)} input {name!r} must be a constant scalar")
        value = float(v.data.reshape(-1)[0])
        if v.quant is not None:
            value = (value - float(v.quant.zero_point[0])) * float(v.quant.scale[0])
        return value

    def output_quant(self, y: str, fusable: bool) -> tuple[Quantization | None, str, list[str]]:
        """Quantization of the float output ``y``, from the QuantizeLinear that follows it.

        When ``fusable`` and ``y`` feeds one Relu/Clip (no Q between), that
        activation is fused: returns its kind and its output name to alias.
        """
        users = self.consumers.get(y, [])
        qs = [c for c in users if c.op_type == "QuantizeLinear"]
        if qs:
            return self.q_node_quant(qs[0]), "NONE", []
        if fusable and len(users) == 1 and users[0].op_type in ("Relu", "Clip") and y not in self.graph_outputs:
            kind, _, _ = self.activation_kind(users[0])
            if kind is not None:
                quant, _, _ = self.output_quant(users[0].output[0], False)
                if quant is not None:
                    self.done.add(id(users[0]))
                    return quant, kind, [users[0].output[0]]
        return None, "NONE", []

    def new_output(self, node, onnx_shape, explicit: Quantization | None = None, fusable: bool = False,
                   inherit: Quantization | None = None, forced: tuple[float, int] | None = None):
        """The int8 output tensor of ``node``; returns (act, fused activation kind, names to alias)."""
        kind, aliases = "NONE", []
        if forced is not None:
            quant = _q(forced[0], forced[1])
        elif explicit is not None:
            quant = explicit
        else:
            quant, kind, aliases = self.output_quant(node.output[0], fusable)
            if quant is None:
                if inherit is None:
                    raise ModelError(f"output {node.output[0]!r} of {_where(node)} is not quantized (no "
                                     "QuantizeLinear follows it); import expects a fully int8 model "
                                     "(quantize_static, QDQ or QOperator)")
                quant = inherit
        out = self.act(node.output[0], onnx_shape, quant)
        out.forced = forced is not None
        return out, kind, aliases

    def finish(self, node, out: _Act, aliases=()) -> None:
        self.values[node.output[0]] = out
        for a in aliases:
            self.values[a] = out

    # ------------------------------------------------------------------ driver
    def run(self) -> Graph:
        g = self.model.graph
        inputs = [self.graph_input(vi) for vi in g.input if vi.name not in self.values]
        for node in g.node:
            if id(node) not in self.done:
                self.convert(node)
        outputs = [self.graph_output(vi) for vi in g.output]
        metadata = {p.key: p.value for p in self.model.metadata_props}
        return self.finalize(inputs, outputs, metadata)

    def graph_input(self, vi) -> int:
        from onnx import TensorProto

        tt = vi.type.tensor_type
        shape = []
        for axis, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                shape.append(d.dim_value)
            elif axis == 0:
                shape.append(1)  # a symbolic batch dimension: one window at a time
            else:
                raise ModelError(f"graph input {vi.name!r} has a dynamic dimension {axis} "
                                 f"({d.dim_param or '?'}); only the batch dimension may be dynamic")
        qnode = self.first_quantize(vi.name)
        if tt.elem_type != TensorProto.FLOAT or qnode is None:
            raise ModelError(f"graph input {vi.name!r} must be float32 followed by QuantizeLinear "
                             "(a model quantized with quantize_static)")
        quant = self.q_node_quant(qnode)
        if self.float_io:
            act = self.act(f"{vi.name}_int8", shape, quant)
            index = self.tensor(vi.name, act.ours, np.float32)
            self.op("QUANTIZE", f"{vi.name}_quantize", [index], [act.index])
        else:
            act = self.act(vi.name, shape, quant)
            index = act.index
        self.values[vi.name] = act
        return index

    def first_quantize(self, name: str):
        """The QuantizeLinear after a float input, possibly behind layout-only operators.

        quantize_static leaves a Flatten/Reshape/Transpose that reads a graph
        input unquantized; the Q after it gives the input's quantization and
        the layout operators then run on int8 (they keep the quantization).
        """
        for node in self.consumers.get(name, []):
            if node.op_type == "QuantizeLinear":
                return node
        users = self.consumers.get(name, [])
        if len(users) == 1 and users[0].op_type in _LAYOUT_ONLY:
            return self.first_quantize(users[0].output[0])
        return None

    def graph_output(self, vi) -> int:
        v = self.values.get(vi.name)
        if not isinstance(v, _Act):
            raise ModelError(f"graph output {vi.name!r} is not an int8 activation of the imported graph")
        if self.float_io:
            index = self.tensor(vi.name, v.ours, np.float32)
            self.op("DEQUANTIZE", f"{vi.name}_dequantize", [v.index], [index])
            return index
        return v.index

    def finalize(self, inputs, outputs, metadata) -> Graph:
        used = set(inputs) | set(outputs)
        for op in self.ops:
            used.update(t for t in op.inputs + op.outputs if t >= 0)
        remap, tensors = {}, []
        for t in self.tensors:
            if t.index in used:
                remap[t.index] = len(tensors)
                tensors.append(Tensor(len(tensors), t.name, t.shape, t.dtype, t.quantization, t.data))
        ops = [Operator(op.kind, op.name, [remap[t] if t >= 0 else -1 for t in op.inputs],
                        [remap[t] for t in op.outputs], op.options) for op in self.ops]
        return Graph(tensors, ops, [remap[i] for i in inputs], [remap[o] for o in outputs], metadata)

    def convert(self, node) -> None:
        if node.op_type in _FOLDABLE and node.domain in ("", "ai.onnx") and self.try_fold(node):
            return
        handler = getattr(self, f"op_{node.op_type}", None)
        if node.domain not in ("", "ai.onnx", "com.microsoft") or handler is None:
            raise _unsupported(node)
        handler(node)

    def try_fold(self, node) -> bool:
        """Evaluate shape arithmetic (and float weight preprocessing) whose inputs are all known now."""
        feeds = {}
        for name in node.input:
            if not name:
                continue
            v = self.values.get(name)
            if isinstance(v, _Const) and v.quant is None:
                feeds[name] = v.data
            elif isinstance(v, _Act) and node.op_type == "Shape":
                feeds[name] = np.zeros(v.shape, np.float32)
            else:
                return False
        from onnx.reference import ReferenceEvaluator

        for name, value in zip(node.output, ReferenceEvaluator(node).run(None, feeds)):
            self.values[name] = _Const(np.asarray(value))
        return True

    # ------------------------------------------------------------------ quantize / dequantize
    def op_QuantizeLinear(self, node) -> None:  # noqa: N802
        if node.output[0] in self.values:  # folded into the tensor before it (graph input, fixed output)
            return
        v = self.value(node.input[0], node)
        if isinstance(v, _Act):
            self.values[node.output[0]] = v if v.forced else self.requantize(v, self.q_node_quant(node), node.output[0])
            return
        if v.quant is not None:
            raise ModelError(f"{_where(node)} quantizes an already quantized constant {node.input[0]!r}")
        quant = self.quant_from(node.input[1], node.input[2] if len(node.input) > 2 else None, node,
                                _attrs(node).get("axis"), v.data.ndim, activation=False)
        shape = [1] * v.data.ndim
        if quant.per_channel:
            shape[quant.axis] = quant.scale.size
        scale = quant.scale.reshape(shape if quant.per_channel else ())
        zp = quant.zero_point.reshape(shape if quant.per_channel else ())
        # onnxruntime's QuantizeLinear: divide in float32, round half to even, saturate.
        q = np.clip(np.rint(v.data.astype(np.float32) / scale) + zp, -128, 127)
        self.values[node.output[0]] = _Const(q.astype(np.int8), quant)

    def op_DequantizeLinear(self, node) -> None:  # noqa: N802
        v = self.value(node.input[0], node)
        if isinstance(v, _Act):
            quant = self.q_node_quant(node)
            if not v.forced and not _same_quant(quant, v.quant):
                raise ModelError(f"{_where(node)} dequantizes {node.input[0]!r} with scale {quant.scale[0]:g}, zero "
                                 f"point {quant.zero_point[0]}; it was quantized with {v.quant.scale[0]:g}, "
                                 f"{v.quant.zero_point[0]}")
            self.values[node.output[0]] = v
            return
        if v.quant is not None:  # the DQ of a QuantizeLinear'd float initializer
            self.values[node.output[0]] = v
            return
        if v.data.dtype == np.uint8:
            raise ModelError(f"{_where(node)}: constant {node.input[0]!r} is uint8; this runtime needs int8 "
                             "weights (quantize_static weight_type=QuantType.QInt8)")
        if v.data.dtype not in (np.int8, np.int32):
            raise ModelError(f"{_where(node)} dequantizes a {v.data.dtype} constant; expected int8 or int32")
        quant = self.quant_from(node.input[1], node.input[2] if len(node.input) > 2 else None, node,
                                _attrs(node).get("axis"), v.data.ndim, activation=False)
        self.values[node.output[0]] = _Const(v.data, quant)

    # ------------------------------------------------------------------ trivial
    def op_Identity(self, node) -> None:  # noqa: N802
        self.values[node.output[0]] = self.value(node.input[0], node)

    op_Dropout = op_Identity

    def op_Constant(self, node) -> None:  # noqa: N802
        self.try_fold(node)

    # ------------------------------------------------------------------ weights and biases
    def weights(self, w, node, name: str, rank: int) -> _Const:
        if not isinstance(w, _Const) or w.quant is None or w.data.dtype != np.int8 or w.data.ndim != rank:
            raise ModelError(f"{_where(node)} weights {name!r} must be a constant rank-{rank} int8 tensor with its "
                             "DequantizeLinear (quantize_static QInt8 weights)")
        if np.any(w.quant.zero_point != 0):
            raise ModelError(f"{_where(node)} weights {name!r} have zero points {w.quant.zero_point[:4]}; "
                             "TFLM needs symmetric int8 weights (zero point 0)")
        return w

    def bias(self, b, node, x: _Act, w_scale: np.ndarray, channels: int) -> np.ndarray:
        """int32 bias in units of input scale x weight scale (TFLM's convention)."""
        expected = float(x.quant.scale[0]) * np.broadcast_to(w_scale.astype(np.float64), (channels,))
        if b is None:
            return np.zeros(channels, np.int32)
        if not isinstance(b, _Const) or b.data.size != channels:
            raise ModelError(f"{_where(node)} bias must be a constant with {channels} values")
        data = b.data.reshape(-1)
        if b.quant is None:  # a float bias: quantize it the way quantize_static does
            return np.rint(data.astype(np.float64) / expected).astype(np.int32)
        if data.dtype != np.int32 or np.any(b.quant.zero_point != 0):
            raise ModelError(f"{_where(node)} bias must be int32 with zero point 0; got {data.dtype}")
        scale = np.broadcast_to(b.quant.scale.astype(np.float64), (channels,))
        if np.allclose(scale, expected, rtol=1e-5, atol=0):
            return data.astype(np.int32)
        return np.clip(np.rint(data * scale / expected), -2**31, 2**31 - 1).astype(np.int32)

    def filter_tensors(self, node, data: np.ndarray, w: _Const, axis: int, x: _Act, b, channels: int):
        """Weight and bias tensors (TFLite layout) for a conv/FC layer."""
        per_channel = w.quant.per_channel
        w_scale = w.quant.scale
        wq = _q(w_scale, np.zeros(w_scale.size, np.int64), axis if per_channel else 0)
        w_index = self.tensor(f"{node.name}_weights", data.shape, np.int8, wq, np.ascontiguousarray(data))
        b_scale = float(x.quant.scale[0]) * w_scale.astype(np.float64)
        b_index = self.tensor(f"{node.name}_bias", (channels,), np.int32,
                              _q(b_scale, np.zeros(b_scale.size, np.int64)),
                              self.bias(b, node, x, w_scale, channels))
        return w_index, b_index

    # ------------------------------------------------------------------ padding
    def padding(self, node, in_hw, kernel, strides, dilations) -> tuple[str, list[int], tuple[int, int]]:
        """("SAME" | "VALID" | "EXPLICIT", ONNX pads [top, left, bottom, right], output (H, W))."""
        attrs = _attrs(node)
        auto_pad = attrs.get("auto_pad", "NOTSET")
        ceil = bool(attrs.get("ceil_mode", 0))
        same, same_out = [0, 0, 0, 0], []
        for i in range(2):
            eff = (kernel[i] - 1) * dilations[i] + 1
            out = -(-in_hw[i] // strides[i])
            total = max((out - 1) * strides[i] + eff - in_hw[i], 0)
            same[i], same[i + 2] = total // 2, total - total // 2  # TFLite SAME: the extra pad at the end
            same_out.append(out)
        if auto_pad == "SAME_UPPER":
            pads = list(same)
        elif auto_pad == "SAME_LOWER":
            pads = [same[2], same[3], same[0], same[1]]
        elif auto_pad == "VALID":
            pads = [0, 0, 0, 0]
        elif auto_pad == "NOTSET":
            pads = [int(p) for p in attrs.get("pads", [0, 0, 0, 0])]
        else:
            raise ModelError(f"{_where(node)} has auto_pad={auto_pad!r}")
        out_hw = tuple(_out_size(in_hw[i], kernel[i], strides[i], dilations[i], pads[i], pads[i + 2], ceil)
                       for i in range(2))
        if ceil and out_hw != tuple(_out_size(in_hw[i], kernel[i], strides[i], dilations[i], pads[i], pads[i + 2],
                                              False) for i in range(2)):
            raise _unsupported(node, "ceil_mode=1 adds a partial window (TFLite has no ceil mode)")
        if pads == [0, 0, 0, 0]:
            return "VALID", pads, out_hw
        if pads == same and list(out_hw) == same_out:
            return "SAME", pads, out_hw
        return "EXPLICIT", pads, out_hw

    def explicit_pad(self, x: _Act, pads: list[int], name: str) -> _Act:
        top, left, bottom, right = pads
        n, c, h, w = x.shape
        out = self.act(f"{name}_padded", (n, c, h + top + bottom, w + left + right), x.quant)
        paddings = self.const_i32(f"{name}_paddings", [[0, 0], [top, bottom], [left, right], [0, 0]])
        self.op("PAD", f"{name}_pad", [x.index, paddings], [out.index])
        return out

    # ------------------------------------------------------------------ convolution
    def conv(self, node, x: _Act, w: _Const, b, explicit: Quantization | None) -> None:
        attrs = _attrs(node)
        c_out, c_in_per_group, kh, kw = w.shape
        n, c_in, h, wd = x.shape
        group = int(attrs.get("group", 1))
        kernel = [int(k) for k in attrs.get("kernel_shape", [kh, kw])]
        strides = [int(s) for s in attrs.get("strides", [1, 1])]
        dilations = [int(d) for d in attrs.get("dilations", [1, 1])]
        if kernel != [kh, kw]:
            raise ModelError(f"{_where(node)} kernel_shape {kernel} disagrees with weights {w.shape}")
        if w.quant.per_channel and w.quant.axis != 0:
            raise ModelError(f"{_where(node)} weights are quantized along axis {w.quant.axis}; expected 0")
        if group == 1 and c_in_per_group == c_in:
            kind, data, axis, options = "CONV_2D", w.data.transpose(0, 2, 3, 1), 0, {}  # OIHW -> OHWI
        elif group == c_in and c_in_per_group == 1 and c_out % c_in == 0:
            # [C*mult, 1, kH, kW] -> [1, kH, kW, C*mult]; output channel o reads input channel o // mult in both.
            kind, data, axis = "DEPTHWISE_CONV_2D", w.data.transpose(1, 2, 3, 0), 3
            options = {"depth_multiplier": c_out // c_in}
        else:
            raise _unsupported(node, f"grouped convolution (group={group}, {c_in} input channels) is neither "
                               "CONV_2D nor DEPTHWISE_CONV_2D")
        padding, pads, (oh, ow) = self.padding(node, (h, wd), kernel, strides, dilations)
        if padding == "EXPLICIT":  # TFLM convolutions pad SAME or VALID only
            x, padding = self.explicit_pad(x, pads, node.name or node.output[0]), "VALID"
        out, act_kind, aliases = self.new_output(node, (n, c_out, oh, ow), explicit=explicit, fusable=True)
        w_index, b_index = self.filter_tensors(node, data, w, axis, x, b, c_out)
        options.update(padding=padding, stride_w=strides[1], stride_h=strides[0], dilation_w_factor=dilations[1],
                       dilation_h_factor=dilations[0], fused_activation_function=act_kind)
        self.op(kind, node.name, [x.index, w_index, b_index], [out.index], **options)
        self.finish(node, out, aliases)

    def op_Conv(self, node) -> None:  # noqa: N802
        x = self.activation_input(node.input[0], node, nhwc=True)
        w = self.weights(self.value(node.input[1], node), node, node.input[1], 4)
        b = self.value(node.input[2], node) if len(node.input) > 2 and node.input[2] else None
        self.conv(node, x, w, b, None)

    def op_QLinearConv(self, node) -> None:  # noqa: N802
        i = node.input
        x = self.q_activation(i[0], i[1], i[2], node, nhwc=True)
        w = self.weights(self.q_const(i[3], i[4], i[5], node, axis=0), node, i[3], 4)
        b = None
        if len(i) > 8 and i[8]:
            b = _Const(self.plain_const(i[8], node), _q(float(x.quant.scale[0]) * w.quant.scale, np.zeros(w.quant.scale.size)))
        self.conv(node, x, w, b, self.quant_from(i[6], i[7], node))

    # ------------------------------------------------------------------ QOperator operands
    def q_activation(self, name: str, scale: str, zp: str, node, nhwc: bool = False) -> _Act:
        x = self.activation_input(name, node, nhwc)
        quant = self.quant_from(scale, zp, node)
        if not x.forced and not _same_quant(quant, x.quant):
            raise ModelError(f"{_where(node)} reads {name!r} with scale {quant.scale[0]:g}, zero point "
                             f"{quant.zero_point[0]}; it was produced with {x.quant.scale[0]:g}, {x.quant.zero_point[0]}")
        return x

    def q_const(self, name: str, scale: str, zp: str, node, axis: int = 0) -> _Const:
        v = self.value(name, node)
        if isinstance(v, _Act) or v.quant is not None:
            raise ModelError(f"{_where(node)} input {name!r} must be an integer initializer")
        return _Const(v.data, self.quant_from(scale, zp, node, axis, v.data.ndim, activation=False))

    def q_operand(self, name: str, scale: str, zp: str, node) -> _Act | _Const:
        if isinstance(self.value(name, node), _Act):
            return self.q_activation(name, scale, zp, node)
        return self.q_const(name, scale, zp, node, axis=None)

    # ------------------------------------------------------------------ fully connected
    def fully_connected(self, node, a: _Act, w_mk: np.ndarray, w: _Const, out_axis_ok: bool, b,
                        explicit: Quantization | None, keep_dims: bool) -> None:
        if len(a.shape) == 4:
            raise _unsupported(node, f"a matrix product on the 4-D activation {a.onnx_name!r}; flatten it first")
        m, k = w_mk.shape
        if a.shape[-1] != k:
            raise ModelError(f"{_where(node)} input {a.onnx_name!r} has {a.shape[-1]} features; weights expect {k}")
        if w.quant.per_channel and not out_axis_ok:
            raise ModelError(f"{_where(node)} weights are quantized per input feature; expected per output feature")
        if np.any(w.quant.zero_point != 0):
            raise ModelError(f"{_where(node)} weights have non-zero zero points; TFLM needs symmetric int8 weights")
        if a.feature_perm is not None:  # columns into NHWC flattening order
            w_mk = w_mk[:, a.feature_perm]
        out_shape = a.shape[:-1] + (m,) if keep_dims else (int(np.prod(a.shape[:-1])), m)
        out, act_kind, aliases = self.new_output(node, out_shape, explicit=explicit, fusable=True)
        w_index, b_index = self.filter_tensors(node, w_mk, w, 0, a, b, m)
        self.op("FULLY_CONNECTED", node.name, [a.index, w_index, b_index], [out.index],
                fused_activation_function=act_kind, keep_num_dims=keep_dims)
        self.finish(node, out, aliases)

    def gemm(self, node, a: _Act, b: _Const, c, explicit: Quantization | None) -> None:
        attrs = _attrs(node)
        if attrs.get("transA", 0):
            raise _unsupported(node, "transA=1")
        if float(attrs.get("alpha", 1.0)) != 1.0 or (c is not None and float(attrs.get("beta", 1.0)) != 1.0):
            raise _unsupported(node, f"alpha={attrs.get('alpha', 1.0)}, beta={attrs.get('beta', 1.0)} (expected 1)")
        b = self.weights(b, node, node.input[1], 2)
        trans_b = bool(attrs.get("transB", 0))
        w_mk = b.data if trans_b else b.data.T
        self.fully_connected(node, a, w_mk, b, b.quant.axis == (0 if trans_b else 1), c, explicit, keep_dims=False)

    def op_Gemm(self, node) -> None:  # noqa: N802
        a = self.activation_input(node.input[0], node)
        c = self.value(node.input[2], node) if len(node.input) > 2 and node.input[2] else None
        self.gemm(node, a, self.value(node.input[1], node), c, None)

    def op_QGemm(self, node) -> None:  # noqa: N802
        i = list(node.input) + [""] * (9 - len(node.input))
        a = self.q_activation(i[0], i[1], i[2], node)
        trans_b = bool(_attrs(node).get("transB", 0))
        b = self.q_const(i[3], i[4], i[5], node, axis=0 if trans_b else 1)
        if not i[7]:
            raise _unsupported(node, "QGemm without y_scale has a float output")
        c = None
        if i[6]:
            c = _Const(self.plain_const(i[6], node), _q(float(a.quant.scale[0]) * b.quant.scale,
                                                        np.zeros(b.quant.scale.size)))
        self.gemm(node, a, b, c, self.quant_from(i[7], i[8] or None, node))

    def matmul(self, node, a: _Act, b, explicit: Quantization | None) -> None:
        if not isinstance(b, _Const) or b.quant is None:
            raise _unsupported(node, "only MatMul with a constant int8 B (weights) maps to FULLY_CONNECTED")
        b = self.weights(b, node, node.input[1] if node.op_type == "MatMul" else node.input[3], 2)
        self.fully_connected(node, a, b.data.T, b, b.quant.axis == 1, None, explicit, keep_dims=len(a.shape) > 2)

    def op_MatMul(self, node) -> None:  # noqa: N802
        self.matmul(node, self.activation_input(node.input[0], node), self.value(node.input[1], node), None)

    def op_QLinearMatMul(self, node) -> None:  # noqa: N802
        i = node.input
        a = self.q_activation(i[0], i[1], i[2], node)
        b = self.q_const(i[3], i[4], i[5], node, axis=1)
        self.matmul(node, a, b, self.quant_from(i[6], i[7], node))

    # ------------------------------------------------------------------ pooling
    def pool(self, node, kind: str, x: _Act, explicit: Quantization | None) -> None:
        attrs = _attrs(node)
        if len(node.output) > 1 and node.output[1]:
            raise _unsupported(node, "the MaxPool indices output")
        if any(int(d) != 1 for d in attrs.get("dilations", [1, 1])):
            raise _unsupported(node, f"pooling dilations {attrs['dilations']}")
        if int(attrs.get("channels_last", 0)):
            raise _unsupported(node, "channels_last=1")
        kernel = [int(k) for k in attrs["kernel_shape"]]
        strides = [int(s) for s in attrs.get("strides", [1, 1])]
        n, c, h, w = x.shape
        padding, pads, (oh, ow) = self.padding(node, (h, w), kernel, strides, [1, 1])
        if kind == "AVERAGE_POOL_2D" and padding != "VALID" and int(attrs.get("count_include_pad", 0)):
            padding = "EXPLICIT"  # padded zeros count: pad them in, then average VALID windows
        elif padding == "EXPLICIT" and kind == "AVERAGE_POOL_2D":
            raise _unsupported(node, f"pads {pads} are not TFLite SAME padding and count_include_pad=0")
        elif padding == "EXPLICIT" and x.quant.zero_point[0] != -128:
            raise _unsupported(node, f"pads {pads} are not TFLite SAME padding; padding max pooling needs an input "
                               f"whose zero point is -128 (below every value), not {x.quant.zero_point[0]}")
        if padding == "EXPLICIT":
            x, padding = self.explicit_pad(x, pads, node.name or node.output[0]), "VALID"
        out, _, aliases = self.new_output(node, (n, c, oh, ow), explicit=explicit, inherit=x.quant)
        pooled = out
        if not _same_quant(out.quant, x.quant):  # TFLM pooling keeps the input quantization
            pooled = self.act(f"{node.output[0]}_pooled", out.shape, x.quant)
        self.op(kind, node.name, [x.index], [pooled.index], padding=padding, stride_w=strides[1],
                stride_h=strides[0], filter_width=kernel[1], filter_height=kernel[0],
                fused_activation_function="NONE")
        if pooled is not out:
            self.op("QUANTIZE", f"{node.name}_requantize", [pooled.index], [out.index])
        self.finish(node, out, aliases)

    def op_MaxPool(self, node) -> None:  # noqa: N802
        self.pool(node, "MAX_POOL_2D", self.activation_input(node.input[0], node, nhwc=True), None)

    def op_AveragePool(self, node) -> None:  # noqa: N802
        self.pool(node, "AVERAGE_POOL_2D", self.activation_input(node.input[0], node, nhwc=True), None)

    def op_QLinearAveragePool(self, node) -> None:  # noqa: N802
        i = node.input
        x = self.q_activation(i[0], i[1], i[2], node, nhwc=True)
        self.pool(node, "AVERAGE_POOL_2D", x, self.quant_from(i[3], i[4] if len(i) > 4 else None, node))

    def global_average_pool(self, node, x: _Act, explicit: Quantization | None) -> None:
        if int(_attrs(node).get("channels_last", 0)):
            raise _unsupported(node, "channels_last=1")
        n, c = x.shape[:2]
        out, _, aliases = self.new_output(node, (n, c, 1, 1), explicit=explicit)
        axes = self.const_i32(f"{node.name}_axes", [1, 2])
        self.op("MEAN", node.name, [x.index, axes], [out.index], keep_dims=True)
        self.finish(node, out, aliases)

    def op_GlobalAveragePool(self, node) -> None:  # noqa: N802
        self.global_average_pool(node, self.activation_input(node.input[0], node, nhwc=True), None)

    def op_QLinearGlobalAveragePool(self, node) -> None:  # noqa: N802
        i = node.input
        x = self.q_activation(i[0], i[1], i[2], node, nhwc=True)
        self.global_average_pool(node, x, self.quant_from(i[3], i[4] if len(i) > 4 else None, node))

    # ------------------------------------------------------------------ element-wise
    def const_operand(self, c: _Const, like: _Act, node, name: str) -> int:
        if c.quant is None or c.data.dtype != np.int8 or c.quant.per_channel:
            raise ModelError(f"{_where(node)} constant operand must be int8 quantized per tensor")
        rank = len(like.shape)
        if c.data.ndim > rank:
            raise ModelError(f"{_where(node)} constant operand has more axes than {like.onnx_name!r}")
        data = c.data.reshape((1,) * (rank - c.data.ndim) + c.data.shape)  # numpy broadcasting, right-aligned
        if like.feature_perm is not None and data.shape[-1] != 1:
            data = data[..., like.feature_perm]
        data = np.ascontiguousarray(data.transpose(like.layout))
        return self.tensor(name, data.shape, np.int8, c.quant, data)

    def binary(self, node, kind: str, a, b, explicit: Quantization | None) -> None:
        acts = [v for v in (a, b) if isinstance(v, _Act)]
        if not acts:
            raise _unsupported(node, "both operands are constants")
        like = acts[0]
        if any(len(v.shape) != len(like.shape) or v.layout != like.layout
               or (v.feature_perm is None) != (like.feature_perm is None) for v in acts):
            raise _unsupported(node, f"operands of different ranks or layouts ({a.shape}, {b.shape})")
        operands = [v.index if isinstance(v, _Act) else self.const_operand(v, like, node, f"{node.name}_operand{k}")
                    for k, v in enumerate((a, b))]
        out, act_kind, aliases = self.new_output(node, tuple(np.broadcast_shapes(a.shape, b.shape)),
                                                 explicit=explicit, fusable=True)
        out.feature_perm = like.feature_perm
        self.op(kind, node.name, operands, [out.index], fused_activation_function=act_kind)
        self.finish(node, out, aliases)

    def op_Add(self, node) -> None:  # noqa: N802
        self.binary(node, "ADD", self.value(node.input[0], node), self.value(node.input[1], node), None)

    def op_Mul(self, node) -> None:  # noqa: N802
        self.binary(node, "MUL", self.value(node.input[0], node), self.value(node.input[1], node), None)

    def qlinear_binary(self, node, kind: str) -> None:
        i = list(node.input) + [""] * (8 - len(node.input))
        a = self.q_operand(i[0], i[1], i[2], node)
        b = self.q_operand(i[3], i[4], i[5], node)
        self.binary(node, kind, a, b, self.quant_from(i[6], i[7] or None, node))

    def op_QLinearAdd(self, node) -> None:  # noqa: N802
        self.qlinear_binary(node, "ADD")

    def op_QLinearMul(self, node) -> None:  # noqa: N802
        self.qlinear_binary(node, "MUL")

    def concat(self, node, parts: list[_Act], explicit: Quantization | None) -> None:
        rank = len(parts[0].shape)
        axis = int(_attrs(node)["axis"]) % rank
        if any(len(p.shape) != rank or p.layout != parts[0].layout or p.feature_perm is not None for p in parts):
            raise _unsupported(node, "inputs of different ranks or layouts")
        shape = list(parts[0].shape)
        shape[axis] = sum(p.shape[axis] for p in parts)
        out, _, aliases = self.new_output(node, shape, explicit=explicit)
        # TFLM concatenation needs every input in the output's quantization.
        inputs = [self.requantize(p, out.quant, f"{node.name}_input{k}").index for k, p in enumerate(parts)]
        self.op("CONCATENATION", node.name, inputs, [out.index], axis=out.layout.index(axis),
                fused_activation_function="NONE")
        self.finish(node, out, aliases)

    def op_Concat(self, node) -> None:  # noqa: N802
        self.concat(node, [self.activation_input(n, node) for n in node.input], None)

    def op_QLinearConcat(self, node) -> None:  # noqa: N802
        i = node.input
        parts = [self.q_activation(i[k], i[k + 1], i[k + 2], node) for k in range(2, len(i), 3)]
        self.concat(node, parts, self.quant_from(i[0], i[1], node))

    def op_Pad(self, node) -> None:  # noqa: N802
        attrs = _attrs(node)
        if attrs.get("mode", "constant") != "constant":
            raise _unsupported(node, f"mode={attrs['mode']!r} (only constant padding)")
        x = self.activation_input(node.input[0], node)
        if x.feature_perm is not None:
            raise _unsupported(node, "padding a flattened NHWC tensor")
        rank = len(x.shape)
        pads = [int(p) for p in (self.plain_const(node.input[1], node) if len(node.input) > 1 else attrs["pads"])]
        if len(node.input) > 3 and node.input[3]:
            axes = [int(a) % rank for a in self.plain_const(node.input[3], node)]
            full = [0] * (2 * rank)
            for k, a in enumerate(axes):
                full[a], full[a + rank] = pads[k], pads[k + len(axes)]
            pads = full
        if any(p < 0 for p in pads):
            raise _unsupported(node, f"negative pads {pads}")
        value = attrs.get("value", 0.0)
        if len(node.input) > 2 and node.input[2]:
            pad_value = self.value(node.input[2], node)
            if isinstance(pad_value, _Const) and pad_value.quant is None and pad_value.data.dtype == np.int8:
                # QOperator: the pad value is an int8 code of the input's quantization
                value = (float(pad_value.data.reshape(-1)[0]) - float(x.quant.zero_point[0])) * float(x.quant.scale[0])
            else:
                value = self.scalar(node.input[2], node)
        if value != 0.0:
            raise _unsupported(node, f"constant value {value:g} (TFLM PAD pads with the zero point, i.e. 0.0)")
        shape = tuple(d + pads[a] + pads[a + rank] for a, d in enumerate(x.shape))
        out, _, aliases = self.new_output(node, shape, inherit=x.quant)
        padded = out if _same_quant(out.quant, x.quant) else self.act(f"{node.output[0]}_padded", shape, x.quant)
        paddings = self.const_i32(f"{node.name}_paddings", [[pads[a], pads[a + rank]] for a in x.layout])
        self.op("PAD", node.name, [x.index, paddings], [padded.index])
        if padded is not out:
            self.op("QUANTIZE", f"{node.name}_requantize", [padded.index], [out.index])
        self.finish(node, out, aliases)

    # ------------------------------------------------------------------ shapes
    def reshape_like_onnx(self, node, x: _Act, target) -> None:
        """Give ``x`` the ONNX shape ``target`` keeping the ONNX element order."""
        target = tuple(int(d) for d in target)
        if int(np.prod(target)) != int(np.prod(x.shape)):
            raise ModelError(f"{_where(node)} reshapes {x.shape} to {target}: element counts differ")
        if x.feature_perm is not None:
            raise _unsupported(node, "reshaping a flattened NHWC tensor again")
        quant_out, _, aliases = self.output_quant(node.output[0], False)
        name = node.output[0]
        out_layout = _layout(len(target))
        in_same, out_same = _memory_equal(x.shape, x.layout), _memory_equal(target, out_layout)
        if target == x.shape and x.layout == out_layout:
            out = x
        elif in_same and out_same:
            out = self.reshape(x, target, name)
        elif (len(x.shape) == 4 and len(target) == 2 and target[0] == x.shape[0] and x.layout == _NHWC
              and self.only_fully_connected_consumers(node.output[0])):
            # Flatten in NHWC order; the fully connected layers permute their weight columns instead.
            out = self.reshape(x, target, name)
            out.feature_perm = np.arange(int(np.prod(x.shape[1:]))).reshape(x.shape[1:]).transpose(1, 2, 0).reshape(-1)
        else:
            y = x
            if not in_same:  # into ONNX element order
                identity = tuple(range(len(x.shape)))
                y = self.transpose(x, [x.layout.index(j) for j in identity], identity, f"{name}_onnx_order")
            if out_same:
                out = self.reshape(y, target, name)
            else:
                flat = self.reshape(y, target, f"{name}_onnx_order", layout=tuple(range(len(target))))
                out = self.transpose(flat, list(out_layout), out_layout, name)
        if quant_out is not None:
            out = self.requantize(out, quant_out, name)
        self.finish(node, out, aliases)

    def only_fully_connected_consumers(self, name: str) -> bool:
        users = self.real_consumers(name)
        return bool(users) and all(
            u != "output" and u.op_type in ("Gemm", "MatMul", "QGemm", "QLinearMatMul")
            and self.real_source(u.input[0]) == name for u in users)

    def op_Reshape(self, node) -> None:  # noqa: N802
        x = self.activation_input(node.input[0], node)
        shape = [int(d) for d in self.plain_const(node.input[1], node)]
        allow_zero = int(_attrs(node).get("allowzero", 0))
        target = [x.shape[k] if d == 0 and not allow_zero else d for k, d in enumerate(shape)]
        if -1 in target:
            known = int(np.prod([d for d in target if d != -1]))
            target[target.index(-1)] = int(np.prod(x.shape)) // max(known, 1)
        self.reshape_like_onnx(node, x, target)

    def op_Flatten(self, node) -> None:  # noqa: N802
        x = self.activation_input(node.input[0], node)
        axis = int(_attrs(node).get("axis", 1))
        axis = axis + len(x.shape) if axis < 0 else axis
        self.reshape_like_onnx(node, x, (int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:]))))

    def op_Squeeze(self, node) -> None:  # noqa: N802
        x = self.activation_input(node.input[0], node)
        rank = len(x.shape)
        if len(node.input) > 1 and node.input[1]:
            axes = [int(a) % rank for a in self.plain_const(node.input[1], node)]
        elif "axes" in _attrs(node):
            axes = [int(a) % rank for a in _attrs(node)["axes"]]
        else:
            axes = [a for a, d in enumerate(x.shape) if d == 1]
        if any(x.shape[a] != 1 for a in axes):
            raise ModelError(f"{_where(node)} squeezes axes {axes} of shape {x.shape}; they must have size 1")
        self.reshape_like_onnx(node, x, [d for a, d in enumerate(x.shape) if a not in axes])

    def op_Unsqueeze(self, node) -> None:  # noqa: N802
        x = self.activation_input(node.input[0], node)
        if len(node.input) > 1 and node.input[1]:
            axes = [int(a) for a in self.plain_const(node.input[1], node)]
        else:
            axes = [int(a) for a in _attrs(node)["axes"]]
        out_rank = len(x.shape) + len(axes)
        shape = list(x.shape)
        for a in sorted(a % out_rank for a in axes):
            shape.insert(a, 1)
        self.reshape_like_onnx(node, x, shape)

    def op_Transpose(self, node) -> None:  # noqa: N802
        x = self.activation_input(node.input[0], node)
        if x.feature_perm is not None:
            raise _unsupported(node, "transposing a flattened NHWC tensor")
        rank = len(x.shape)
        perm = [int(p) for p in _attrs(node).get("perm", list(range(rank))[::-1])]
        target = tuple(x.shape[p] for p in perm)
        out_layout = _layout(rank)
        # our output axis i holds ONNX output axis out_layout[i] = ONNX input axis perm[out_layout[i]].
        ours_perm = [x.layout.index(perm[out_layout[i]]) for i in range(rank)]
        quant_out, _, aliases = self.output_quant(node.output[0], False)
        moved = [p for i, p in enumerate(ours_perm) if x.ours[p] != 1]
        if ours_perm == list(range(rank)) and target == x.shape and x.layout == out_layout:
            out = x
        elif moved == sorted(moved):  # only size-1 axes move: a reshape
            out = self.reshape(x, target, node.output[0])
        else:
            perm_index = self.const_i32(f"{node.name}_perm", ours_perm)
            out = self.act(node.output[0], target, x.quant)
            self.op("TRANSPOSE", node.name, [x.index, perm_index], [out.index])
        if quant_out is not None:
            out = self.requantize(out, quant_out, node.output[0])
        self.finish(node, out, aliases)

    # ------------------------------------------------------------------ activations
    def fixed_output(self, node, kind: str, x: _Act, fixed: tuple[float, int], **options) -> None:
        """An op whose int8 output quantization TFLM fixes; the ONNX QuantizeLinear after it is dropped."""
        out, _, aliases = self.new_output(node, x.shape, forced=fixed)
        out.feature_perm = x.feature_perm
        for c in self.consumers.get(node.output[0], []):
            if c.op_type == "QuantizeLinear":
                aliases.append(c.output[0])
                self.done.add(id(c))
        self.op(kind, node.name, [x.index], [out.index], **options)
        self.finish(node, out, aliases)

    def softmax(self, node, x: _Act, axis: int, coerce_2d: bool) -> None:
        rank = len(x.shape)
        axis = axis + rank if axis < 0 else axis
        reduced = range(axis, rank) if coerce_2d else [axis]  # opset < 13 softmax flattens axes >= axis
        ours = {x.layout.index(a) for a in reduced if x.shape[a] != 1}
        if not ours <= {rank - 1}:
            raise _unsupported(node, f"softmax over ONNX axis {axis} of {x.shape} is not the innermost axis here")
        self.fixed_output(node, "SOFTMAX", x, _SOFTMAX_Q, beta=1.0)

    def op_Softmax(self, node) -> None:  # noqa: N802
        x = self.activation_input(node.input[0], node)
        self.softmax(node, x, int(_attrs(node).get("axis", -1 if self.opset >= 13 else 1)), self.opset < 13)

    def op_QLinearSoftmax(self, node) -> None:  # noqa: N802
        i = node.input
        x = self.q_activation(i[0], i[1], i[2], node)
        attrs = _attrs(node)
        opset = int(attrs.get("opset", 13))
        self.softmax(node, x, int(attrs.get("axis", -1 if opset >= 13 else 1)), opset < 13)

    def op_Sigmoid(self, node) -> None:  # noqa: N802
        self.fixed_output(node, "LOGISTIC", self.activation_input(node.input[0], node), _LOGISTIC_Q)

    def op_QLinearSigmoid(self, node) -> None:  # noqa: N802
        i = node.input
        self.fixed_output(node, "LOGISTIC", self.q_activation(i[0], i[1], i[2], node), _LOGISTIC_Q)

    def op_Tanh(self, node) -> None:  # noqa: N802
        self.fixed_output(node, "TANH", self.activation_input(node.input[0], node), _TANH_Q)

    def op_Relu(self, node) -> None:  # noqa: N802
        """Relu/Clip that quantize_static left in place: fused into its producer, or implied by saturation."""
        x = self.activation_input(node.input[0], node)
        kind, lo, hi = self.activation_kind(node)
        quant_out, _, aliases = self.output_quant(node.output[0], False)
        quant_out = quant_out or x.quant
        producer = self.producer.get(x.index)
        users = self.real_consumers(x.onnx_name)
        if (kind is not None and producer is not None and len(users) == 1 and users[0] is node
                and producer.options.get("fused_activation_function") == "NONE"
                and (producer.kind in _FUSABLE or (producer.kind in _POOLS and _same_quant(quant_out, x.quant)))):
            out = self.act(node.output[0], x.shape, quant_out, x.layout)
            out.feature_perm = x.feature_perm
            producer.options["fused_activation_function"] = kind
            producer.outputs = [out.index]
            self.producer[out.index] = producer
            self.finish(node, out, aliases)
            return
        q_lo = float(quant_out.scale[0]) * (-128 - int(quant_out.zero_point[0]))
        q_hi = float(quant_out.scale[0]) * (127 - int(quant_out.zero_point[0]))
        if lo <= q_lo and q_hi <= hi:  # the output's int8 saturation already clips to [lo, hi]
            self.finish(node, self.requantize(x, quant_out, node.output[0]), aliases)
            return
        raise _unsupported(node, f"{node.op_type} to [{lo:g}, {hi:g}] cannot be fused into the operator producing "
                           f"{x.onnx_name!r}, and its output range [{q_lo:g}, {q_hi:g}] is wider")

    op_Clip = op_Relu
