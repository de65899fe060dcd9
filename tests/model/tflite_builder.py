"""Test-side builder of small .tflite models, and a runner for the tflite-micro interpreter.

``GraphBuilder`` collects tensors and operators in the plan's terms
(:mod:`sed_runtime.model.graph`); :func:`to_tflite` writes them with the
project's exporter (:func:`sed_runtime.model.export_tflite.export_tflite`), so
each operator test runs the same bytes in TFLM and in sed-runtime.
:func:`to_tflite_replacing` writes them with the TFLite schema's object API
instead and can swap an operator's code for one the Graph cannot hold (an
unsupported operator), for refusal tests.
"""

from __future__ import annotations

import os
import re
import tempfile

import numpy as np

from sed_runtime.model.graph import Graph, Operator, Quantization, Tensor

__all__ = ["GraphBuilder", "to_tflite", "to_tflite_replacing", "tflm_run", "tflm_arena_head", "tflm_available",
           "ds_cnn_graph"]


def tflm_available() -> bool:
    try:
        import flatbuffers  # noqa: F401
        from tflite_micro.python.tflite_micro import runtime  # noqa: F401
    except ImportError:
        return False
    return True


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    return schema


class GraphBuilder:
    """Accumulate tensors and operators; ``build()`` returns a Graph."""

    def __init__(self):
        self.tensors: list[Tensor] = []
        self.operators: list[Operator] = []
        self.inputs: list[int] = []
        self.outputs: list[int] = []

    def tensor(self, name, shape, dtype=np.int8, scale=None, zero_point=0, data=None, axis=0) -> int:
        quant = None
        if scale is not None:
            scale = np.atleast_1d(np.asarray(scale, np.float32))
            zp = np.atleast_1d(np.asarray(zero_point, np.int64))
            if zp.size == 1 and scale.size > 1:
                zp = np.zeros(scale.size, np.int64) + zp[0]
            quant = Quantization(scale=scale, zero_point=zp, axis=axis)
        index = len(self.tensors)
        self.tensors.append(Tensor(index=index, name=name, shape=tuple(shape), dtype=np.dtype(dtype),
                                   quantization=quant, data=None if data is None else np.asarray(data, dtype)))
        return index

    def op(self, kind, inputs, outputs, **options) -> None:
        self.operators.append(Operator(kind=kind, name=f"{kind.lower()}_{len(self.operators)}", inputs=inputs,
                                       outputs=outputs, options=options))

    def build(self) -> Graph:
        return Graph(tensors=tuple(self.tensors), operators=tuple(self.operators), inputs=tuple(self.inputs),
                     outputs=tuple(self.outputs))


_TYPES = {np.dtype(np.float32): "FLOAT32", np.dtype(np.int32): "INT32", np.dtype(np.int16): "INT16",
          np.dtype(np.int8): "INT8", np.dtype(np.uint8): "UINT8", np.dtype(np.int64): "INT64"}

_OPTIONS = {"ADD": "AddOptions", "AVERAGE_POOL_2D": "Pool2DOptions", "CONCATENATION": "ConcatenationOptions",
            "CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
            "FULLY_CONNECTED": "FullyConnectedOptions", "MAX_POOL_2D": "Pool2DOptions", "MEAN": "ReducerOptions",
            "MUL": "MulOptions", "RESHAPE": "ReshapeOptions", "SOFTMAX": "SoftmaxOptions",
            "SQUEEZE": "SqueezeOptions", "PAD": "PadOptions", "TRANSPOSE": "TransposeOptions"}
_ENUMS = {"padding": "Padding", "fused_activation_function": "ActivationFunctionType",
          "weights_format": "FullyConnectedOptionsWeightsFormat"}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def to_tflite(graph: Graph) -> bytes:
    """The project's .tflite export of ``graph``."""
    from sed_runtime.model.export_tflite import export_tflite

    return export_tflite(graph)


def to_tflite_replacing(graph: Graph, replace: dict[int, str] | None = None) -> bytes:
    """Serialise ``graph`` with the schema object API; operator ``i`` gets builtin code ``replace[i]``."""
    import flatbuffers

    schema = _schema()
    buffers = [schema.BufferT()]
    tensors = []
    for t in graph.tensors:
        ft = schema.TensorT()
        ft.name = t.name
        ft.shape = np.asarray(t.shape, np.int32)
        ft.type = getattr(schema.TensorType, _TYPES[t.dtype])
        if t.quantization is not None:
            q = schema.QuantizationParametersT()
            q.scale = [float(s) for s in t.quantization.scale]
            q.zeroPoint = [int(z) for z in t.quantization.zero_point]
            q.quantizedDimension = int(t.quantization.axis)
            ft.quantization = q
        if t.data is not None:
            b = schema.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(t.data).tobytes(), np.uint8)
            ft.buffer = len(buffers)
            buffers.append(b)
        tensors.append(ft)
    codes, operators = [], []
    kinds = []
    for i, op in enumerate(graph.operators):
        kind = (replace or {}).get(i, op.kind)
        if kind not in kinds:
            kinds.append(kind)
            code = schema.OperatorCodeT()
            value = getattr(schema.BuiltinOperator, kind)
            code.builtinCode = value
            code.deprecatedBuiltinCode = min(value, 127)
            code.version = 1
            codes.append(code)
        fo = schema.OperatorT()
        fo.opcodeIndex = kinds.index(kind)
        fo.inputs = np.asarray(op.inputs, np.int32)
        fo.outputs = np.asarray(op.outputs, np.int32)
        table = _OPTIONS.get(op.kind)
        if table is not None:
            obj = getattr(schema, table + "T")()
            for key, value in op.options.items():
                if key in _ENUMS:
                    value = getattr(getattr(schema, _ENUMS[key]), str(value).upper())
                elif isinstance(value, (tuple, list)):
                    value = [int(v) for v in value]
                setattr(obj, _camel(key), value)
            fo.builtinOptions = obj
            fo.builtinOptionsType = getattr(schema.BuiltinOptions, table)
        operators.append(fo)
    sg = schema.SubGraphT()
    sg.tensors, sg.operators = tensors, operators
    sg.inputs = np.asarray(graph.inputs, np.int32)
    sg.outputs = np.asarray(graph.outputs, np.int32)
    model = schema.ModelT()
    model.version = 3
    model.operatorCodes = codes
    model.subgraphs = [sg]
    model.buffers = buffers
    model.description = "sed-runtime test"
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _interpreter(data: bytes, arena_size: int | None = None):
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(data, arena_size=arena_size or (256 * 1024 + 8 * len(data)))


def tflm_run(data: bytes, *inputs: np.ndarray, n_outputs: int = 1, arena_size: int | None = None) -> list[np.ndarray]:
    """Run the model bytes once in the tflite-micro interpreter; returns its ``n_outputs`` outputs."""
    interpreter = _interpreter(data, arena_size)
    for i, x in enumerate(inputs):
        interpreter.set_input(np.ascontiguousarray(x), i)
    interpreter.invoke()
    return [np.array(interpreter.get_output(i)) for i in range(n_outputs)]


def tflm_arena_head(data: bytes) -> dict[str, int]:
    """TFLM's recorded arena use for the model bytes: ``total``, ``head`` (non-persistent) and ``tail``.

    ``print_allocations`` writes to the C stderr; it is captured through a
    temporary file descriptor swap.
    """
    interpreter = _interpreter(data)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            interpreter.print_allocations()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode("utf-8", errors="replace")
    out = {}
    for key in ("total", "head", "tail"):
        m = re.search(rf"Arena allocation {key} (\d+) bytes", text)
        if m:
            out[key] = int(m.group(1))
    return out


def ds_cnn_graph(rng: np.random.Generator, channels: int = 64, blocks: int = 4) -> Graph:
    """A DS-CNN keyword-spotting network (the shape of Arm's ML-zoo KWS model) with seeded random int8 weights.

    Input int8 [1, 49, 10, 1] (49 frames of 10 MFCCs); conv 10x4 stride 2 ->
    ``blocks`` x (depthwise 3x3 + pointwise 1x1, ReLU) over 25x5x``channels``
    -> average pool -> fully connected (12 classes) -> softmax.
    """
    c = channels
    b = GraphBuilder()
    x = b.tensor("x", (1, 49, 10, 1), scale=0.1, zero_point=-10)
    w = b.tensor("conv_w", (c, 10, 4, 1), scale=np.full(c, 0.01, np.float32),
                 data=rng.integers(-127, 128, (c, 10, 4, 1)))
    bias = b.tensor("conv_b", (c,), np.int32, scale=np.full(c, 0.001, np.float32), data=rng.integers(-999, 999, c))
    cur = b.tensor("conv", (1, 25, 5, c), scale=0.5, zero_point=-128)
    b.op("CONV_2D", [x, w, bias], [cur], padding="SAME", stride_w=2, stride_h=2, fused_activation_function="RELU")
    for i in range(blocks):
        w = b.tensor(f"dw{i}_w", (1, 3, 3, c), scale=np.full(c, 0.02, np.float32),
                     data=rng.integers(-127, 128, (1, 3, 3, c)), axis=3)
        d = b.tensor(f"dw{i}", (1, 25, 5, c), scale=0.5, zero_point=-128)
        b.op("DEPTHWISE_CONV_2D", [cur, w], [d], padding="SAME", stride_w=1, stride_h=1, depth_multiplier=1,
             fused_activation_function="RELU")
        w = b.tensor(f"pw{i}_w", (c, 1, 1, c), scale=np.full(c, 0.003, np.float32),
                     data=rng.integers(-127, 128, (c, 1, 1, c)))
        cur = b.tensor(f"pw{i}", (1, 25, 5, c), scale=0.5, zero_point=-128)
        b.op("CONV_2D", [d, w], [cur], padding="VALID", stride_w=1, stride_h=1, fused_activation_function="RELU")
    pool = b.tensor("pool", (1, 1, 1, c), scale=0.5, zero_point=-128)
    b.op("AVERAGE_POOL_2D", [cur], [pool], padding="VALID", stride_w=1, stride_h=1, filter_width=5, filter_height=25)
    shape = b.tensor("shape", (2,), np.int32, data=np.array([1, c], np.int32))
    flat = b.tensor("flat", (1, c), scale=0.5, zero_point=-128)
    b.op("RESHAPE", [pool, shape], [flat], new_shape=(1, c))
    w = b.tensor("fc_w", (12, c), scale=0.01, data=rng.integers(-127, 128, (12, c)))
    logits = b.tensor("logits", (1, 12), scale=0.3, zero_point=0)
    b.op("FULLY_CONNECTED", [flat, w], [logits])
    probs = b.tensor("probs", (1, 12), scale=1 / 256, zero_point=-128)
    b.op("SOFTMAX", [logits], [probs], beta=1.0)
    b.inputs, b.outputs = [x], [probs]
    return b.build()
