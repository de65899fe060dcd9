"""Write a :class:`~sed_runtime.model.graph.Graph` as a TFLite flatbuffer that TFLM loads.

This is how an imported ONNX model is checked bit for bit (the exported file
runs in the ``tflite-micro`` interpreter) and how single-operator test models
are built.  The file has one subgraph; every constant tensor gets its own
buffer, 16-byte aligned as the TFLite converter aligns them (firmware reads
int32 biases in place); activations point at the empty buffer 0.

Operator options are the Graph's ``Operator.options``: TFLite's option field
names in snake_case (``stride_w``, ``dilation_h_factor``, ``keep_num_dims``,
``fused_activation_function``, ...).  Enumerations are given by name
(``padding="SAME"``, ``fused_activation_function="RELU6"``) or by their
schema value.  Options an operator does not have are refused, so a misspelt
option never silently falls back to a schema default.

``Graph.metadata`` (str -> str) is written as named metadata buffers, the
place TFLite keeps model metadata.

Example::

    from sed_runtime.model.export_tflite import export_tflite
    Path("model.tflite").write_bytes(export_tflite(graph))
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import flatbuffers
import numpy as np

from sed_runtime.errors import ModelError
from sed_runtime.model.graph import SUPPORTED_OPS, Graph, Operator, Tensor

__all__ = ["export_tflite", "pack_model", "TFLITE_FILE_IDENTIFIER"]

TFLITE_FILE_IDENTIFIER = b"TFL3"
_SCHEMA_VERSION = 3
_BUFFER_ALIGNMENT = 16


def _schema():
    # Imported lazily: the schema module is large and only writers/readers need it.
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    return schema


_TENSOR_TYPES = {
    np.dtype(np.float32): "FLOAT32",
    np.dtype(np.int32): "INT32",
    np.dtype(np.uint8): "UINT8",
    np.dtype(np.int64): "INT64",
    np.dtype(np.bool_): "BOOL",
    np.dtype(np.int16): "INT16",
    np.dtype(np.int8): "INT8",
}

# Builtin operator -> its options table in the schema (None: the operator has no options).
_OPTIONS_TABLE = {
    "ADD": "AddOptions",
    "AVERAGE_POOL_2D": "Pool2DOptions",
    "CONCATENATION": "ConcatenationOptions",
    "CONV_2D": "Conv2DOptions",
    "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "DEQUANTIZE": "DequantizeOptions",
    "FULLY_CONNECTED": "FullyConnectedOptions",
    "LOGISTIC": None,
    "MAX_POOL_2D": "Pool2DOptions",
    "MEAN": "ReducerOptions",
    "MUL": "MulOptions",
    "PAD": "PadOptions",
    "QUANTIZE": "QuantizeOptions",
    "RESHAPE": "ReshapeOptions",
    "SOFTMAX": "SoftmaxOptions",
    "SQUEEZE": "SqueezeOptions",
    "TANH": None,
    "TRANSPOSE": "TransposeOptions",
}
assert set(_OPTIONS_TABLE) == set(SUPPORTED_OPS)

# Options whose values are schema enumerations, by snake_case name -> schema enum class name.
_ENUM_OPTIONS = {
    "padding": "Padding",
    "fused_activation_function": "ActivationFunctionType",
    "weights_format": "FullyConnectedOptionsWeightsFormat",
    "quantized_bias_type": "TensorType",
}

# Options that must be present and >= 1 (the schema default 0 would be invalid).
_REQUIRED_POSITIVE = {
    "CONV_2D": ("stride_w", "stride_h"),
    "DEPTHWISE_CONV_2D": ("stride_w", "stride_h"),
    "AVERAGE_POOL_2D": ("stride_w", "stride_h", "filter_width", "filter_height"),
    "MAX_POOL_2D": ("stride_w", "stride_h", "filter_width", "filter_height"),
}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _enum_value(schema, enum_name: str, value: Any, where: str) -> int:
    enum = getattr(schema, enum_name)
    members = {k: v for k, v in vars(enum).items() if not k.startswith("_")}
    if isinstance(value, str):
        by_name = {k.upper(): v for k, v in members.items()}
        if value.upper() not in by_name:
            raise ModelError(f"{where}={value!r} is not a {enum_name}; expected one of {sorted(members)}")
        return int(by_name[value.upper()])
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and int(value) in members.values():
        return int(value)
    raise ModelError(f"{where}={value!r} is not a {enum_name}; expected one of {sorted(members)}")


def _builtin_options(schema, op: Operator):
    """The schema options object of ``op`` filled from ``op.options``, and its union type."""
    table = _OPTIONS_TABLE[op.kind]
    if table is None:
        if op.options:
            raise ModelError(f"operator {op.kind} (node {op.name!r}) takes no options; got {sorted(op.options)}")
        return None, schema.BuiltinOptions.NONE
    obj = getattr(schema, table + "T")()
    known = {_snake(k): k for k in vars(obj)}
    for key, value in op.options.items():
        if key not in known:
            raise ModelError(
                f"operator {op.kind} (node {op.name!r}) has no option {key!r}; "
                f"{table} has {sorted(known) or 'no options'}"
            )
        where = f"{op.kind} (node {op.name!r}) option {key}"
        if key in _ENUM_OPTIONS:
            value = _enum_value(schema, _ENUM_OPTIONS[key], value, where)
        elif isinstance(value, (list, tuple, np.ndarray)):
            value = [int(v) for v in np.asarray(value).reshape(-1)]
        elif isinstance(value, (bool, np.bool_)):
            value = bool(value)
        elif isinstance(value, (int, np.integer)):
            value = int(value)
        elif isinstance(value, (float, np.floating)):
            value = float(value)
        else:
            raise ModelError(f"{where}={value!r} must be a number, a name or a list of integers")
        setattr(obj, known[key], value)
    for key in _REQUIRED_POSITIVE.get(op.kind, ()):
        value = op.options.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ModelError(f"operator {op.kind} (node {op.name!r}) needs option {key} >= 1, got {value!r}")
    return obj, getattr(schema.BuiltinOptions, table)


class _AlignedBuffer:
    """A schema Buffer whose bytes start on a 16-byte boundary of the finished file.

    Flatbuffers are built back to front; the finished file's length is a
    multiple of the largest alignment requested, so aligning the vector
    relative to the end aligns it relative to the start too.
    """

    def __init__(self, data: bytes | None):
        self.data = data

    def Pack(self, builder: flatbuffers.Builder):  # noqa: N802  (the schema's object-API protocol)
        schema = _schema()
        vector = None
        if self.data:
            builder.StartVector(1, len(self.data), _BUFFER_ALIGNMENT)
            builder.head -= len(self.data)
            builder.Bytes[builder.head : builder.head + len(self.data)] = self.data
            builder.vectorNumElems = len(self.data)
            vector = builder.EndVector()
        schema.BufferStart(builder)
        if vector is not None:
            schema.BufferAddData(builder, vector)
        return schema.BufferEnd(builder)


def pack_model(model) -> bytes:
    """Serialise a schema ``ModelT`` with 16-byte aligned buffers and the ``TFL3`` identifier."""
    model.buffers = [
        b if isinstance(b, _AlignedBuffer) else _AlignedBuffer(None if b.data is None else bytes(np.asarray(b.data, np.uint8)))
        for b in (model.buffers or [])
    ]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_FILE_IDENTIFIER)
    return bytes(builder.Output())


def _quantization(schema, tensor: Tensor):
    q = tensor.quantization
    if q is None:
        return None
    if not 0 <= q.axis < max(len(tensor.shape), 1):
        raise ModelError(
            f"tensor {tensor.name!r} has quantization axis {q.axis}; its shape {tensor.shape} has {len(tensor.shape)} axes"
        )
    if q.per_channel and tensor.shape[q.axis] != q.scale.size:
        raise ModelError(
            f"tensor {tensor.name!r} has {q.scale.size} scales along axis {q.axis}; expected {tensor.shape[q.axis]}"
        )
    out = schema.QuantizationParametersT()
    out.scale = np.asarray(q.scale, dtype=np.float32)
    out.zeroPoint = np.asarray(q.zero_point, dtype=np.int64)
    out.quantizedDimension = int(q.axis)
    return out


def export_tflite(graph: Graph, metadata: Mapping[str, str | bytes] | None = None,
                  description: str = "sed-runtime") -> bytes:
    """Serialise ``graph`` as a ``.tflite`` flatbuffer (schema version 3).

    ``metadata`` entries are added to ``graph.metadata`` (and win on equal
    names); each becomes a named metadata buffer.  Raises :class:`ModelError`
    for a tensor type TFLite cannot hold or an operator option the operator
    does not have.
    """
    schema = _schema()
    buffers: list[_AlignedBuffer] = [_AlignedBuffer(None)]  # buffer 0: the empty sentinel TFLM expects

    tensors = []
    for t in graph.tensors:
        if t.dtype not in _TENSOR_TYPES:
            raise ModelError(f"tensor {t.name!r} has dtype {t.dtype}; TFLite holds {sorted(str(d) for d in _TENSOR_TYPES)}")
        ft = schema.TensorT()
        ft.name = t.name
        ft.shape = np.asarray(t.shape, dtype=np.int32)
        ft.type = getattr(schema.TensorType, _TENSOR_TYPES[t.dtype])
        ft.quantization = _quantization(schema, t)
        if t.is_constant:
            ft.buffer = len(buffers)
            buffers.append(_AlignedBuffer(np.ascontiguousarray(t.data).astype(t.dtype.newbyteorder("<")).tobytes()))
        else:
            ft.buffer = 0
        tensors.append(ft)

    opcodes: list[str] = []
    operators = []
    for op in graph.operators:
        if op.kind not in opcodes:
            opcodes.append(op.kind)
        fo = schema.OperatorT()
        fo.opcodeIndex = opcodes.index(op.kind)
        fo.inputs = np.asarray(op.inputs, dtype=np.int32)
        fo.outputs = np.asarray(op.outputs, dtype=np.int32)
        fo.builtinOptions, fo.builtinOptionsType = _builtin_options(schema, op)
        operators.append(fo)

    codes = []
    for kind in opcodes:
        code = schema.OperatorCodeT()
        value = getattr(schema.BuiltinOperator, kind)
        code.builtinCode = value
        code.deprecatedBuiltinCode = min(value, schema.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
        code.version = 1
        codes.append(code)

    subgraph = schema.SubGraphT()
    subgraph.tensors = tensors
    subgraph.operators = operators
    subgraph.inputs = np.asarray(graph.inputs, dtype=np.int32)
    subgraph.outputs = np.asarray(graph.outputs, dtype=np.int32)
    subgraph.name = "main"

    entries = dict(graph.metadata)
    entries.update(metadata or {})
    model_metadata = []
    for name, value in entries.items():
        entry = schema.MetadataT()
        entry.name = name
        entry.buffer = len(buffers)
        buffers.append(_AlignedBuffer(value.encode("utf-8") if isinstance(value, str) else bytes(value)))
        model_metadata.append(entry)

    model = schema.ModelT()
    model.version = _SCHEMA_VERSION
    model.description = description
    model.operatorCodes = codes
    model.subgraphs = [subgraph]
    model.buffers = buffers
    model.metadata = model_metadata or None
    return pack_model(model)
