"""Read a TFLite flatbuffer (what TFLM firmware loads) into a :class:`~sed_runtime.model.graph.Graph`.

The reader is self-contained: it walks the flatbuffer tables it needs
(``Model``, ``SubGraph``, ``Tensor``, ``QuantizationParameters``,
``Operator``, ``Buffer``, ``Metadata`` and the option tables of the supported
operators) by their schema slot numbers, so loading a model needs neither the
``flatbuffers`` package nor the TFLite schema module.  Only subgraph 0 is
read, as TFLM's ``MicroInterpreter`` runs subgraph 0.

Operators outside :data:`~sed_runtime.model.graph.SUPPORTED_OPS` are refused
here, at load time, with their op type, their node name and the supported
list.  TFLite operators have no names of their own; the node name is the name
of the operator's first output tensor (what Netron and the converter show),
followed by its position in the subgraph.

Options are given TFLite's field names in snake_case, enumerations by name
(``padding="SAME"``, ``fused_activation_function="RELU6"``), exactly as the
``.tflite`` exporter writes them back.

Named metadata entries (``Model.metadata``) whose buffers hold UTF-8 text go
to ``Graph.metadata``; binary entries (``min_runtime_version`` padding, offline
memory plans) are left out.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from sed_runtime.errors import ModelError, UnsupportedOperatorError
from sed_runtime.model.graph import SUPPORTED_OPS, Graph, Operator, Quantization, Tensor

__all__ = ["import_tflite", "read_tflite", "BUILTIN_OPERATOR_NAMES", "is_tflite"]

TFLITE_FILE_IDENTIFIER = b"TFL3"

# TFLite BuiltinOperator names by schema value (tensorflow/lite/schema/schema.fbs).
BUILTIN_OPERATOR_NAMES = (
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEPTH_TO_SPACE", "DEQUANTIZE",
    "EMBEDDING_LOOKUP", "FLOOR", "FULLY_CONNECTED", "HASHTABLE_LOOKUP", "L2_NORMALIZATION", "L2_POOL_2D",
    "LOCAL_RESPONSE_NORMALIZATION", "LOGISTIC", "LSH_PROJECTION", "LSTM", "MAX_POOL_2D", "MUL", "RELU",
    "RELU_N1_TO_1", "RELU6", "RESHAPE", "RESIZE_BILINEAR", "RNN", "SOFTMAX", "SPACE_TO_DEPTH", "SVDF", "TANH",
    "CONCAT_EMBEDDINGS", "SKIP_GRAM", "CALL", "CUSTOM", "EMBEDDING_LOOKUP_SPARSE", "PAD",
    "UNIDIRECTIONAL_SEQUENCE_RNN", "GATHER", "BATCH_TO_SPACE_ND", "SPACE_TO_BATCH_ND", "TRANSPOSE", "MEAN", "SUB",
    "DIV", "SQUEEZE", "UNIDIRECTIONAL_SEQUENCE_LSTM", "STRIDED_SLICE", "BIDIRECTIONAL_SEQUENCE_RNN", "EXP",
    "TOPK_V2", "SPLIT", "LOG_SOFTMAX", "DELEGATE", "BIDIRECTIONAL_SEQUENCE_LSTM", "CAST", "PRELU", "MAXIMUM",
    "ARG_MAX", "MINIMUM", "LESS", "NEG", "PADV2", "GREATER", "GREATER_EQUAL", "LESS_EQUAL", "SELECT", "SLICE",
    "SIN", "TRANSPOSE_CONV", "SPARSE_TO_DENSE", "TILE", "EXPAND_DIMS", "EQUAL", "NOT_EQUAL", "LOG", "SUM", "SQRT",
    "RSQRT", "SHAPE", "POW", "ARG_MIN", "FAKE_QUANT", "REDUCE_PROD", "REDUCE_MAX", "PACK", "LOGICAL_OR",
    "ONE_HOT", "LOGICAL_AND", "LOGICAL_NOT", "UNPACK", "REDUCE_MIN", "FLOOR_DIV", "REDUCE_ANY", "SQUARE",
    "ZEROS_LIKE", "FILL", "FLOOR_MOD", "RANGE", "RESIZE_NEAREST_NEIGHBOR", "LEAKY_RELU", "SQUARED_DIFFERENCE",
    "MIRROR_PAD", "ABS", "SPLIT_V", "UNIQUE", "CEIL", "REVERSE_V2", "ADD_N", "GATHER_ND", "COS", "WHERE", "RANK",
    "ELU", "REVERSE_SEQUENCE", "MATRIX_DIAG", "QUANTIZE", "MATRIX_SET_DIAG", "ROUND", "HARD_SWISH", "IF", "WHILE",
    "NON_MAX_SUPPRESSION_V4", "NON_MAX_SUPPRESSION_V5", "SCATTER_ND", "SELECT_V2", "DENSIFY", "SEGMENT_SUM",
    "BATCH_MATMUL", "PLACEHOLDER_FOR_GREATER_OP_CODES", "CUMSUM", "CALL_ONCE", "BROADCAST_TO", "RFFT2D",
    "CONV_3D", "IMAG", "REAL", "COMPLEX_ABS", "HASHTABLE", "HASHTABLE_FIND", "HASHTABLE_IMPORT",
    "HASHTABLE_SIZE", "REDUCE_ALL", "CONV_3D_TRANSPOSE", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE",
    "BROADCAST_ARGS", "RANDOM_STANDARD_NORMAL", "BUCKETIZE", "RANDOM_UNIFORM", "MULTINOMIAL", "GELU",
    "DYNAMIC_UPDATE_SLICE", "RELU_0_TO_1", "UNSORTED_SEGMENT_PROD", "UNSORTED_SEGMENT_MAX",
    "UNSORTED_SEGMENT_SUM", "ATAN2", "UNSORTED_SEGMENT_MIN", "SIGN", "BITCAST", "BITWISE_XOR", "RIGHT_SHIFT",
    "STABLEHLO_LOGISTIC", "STABLEHLO_ADD", "STABLEHLO_DIVIDE", "STABLEHLO_MULTIPLY", "STABLEHLO_MAXIMUM",
    "STABLEHLO_RESHAPE", "STABLEHLO_CLAMP", "STABLEHLO_CONCATENATE", "STABLEHLO_BROADCAST_IN_DIM",
    "STABLEHLO_CONVOLUTION", "STABLEHLO_SLICE", "STABLEHLO_CUSTOM_CALL", "STABLEHLO_REDUCE", "STABLEHLO_ABS",
    "STABLEHLO_AND", "STABLEHLO_COSINE", "STABLEHLO_EXPONENTIAL", "STABLEHLO_FLOOR", "STABLEHLO_LOG",
    "STABLEHLO_MINIMUM", "STABLEHLO_NEGATE", "STABLEHLO_OR", "STABLEHLO_POWER", "STABLEHLO_REMAINDER",
    "STABLEHLO_RSQRT", "STABLEHLO_SELECT", "STABLEHLO_SUBTRACT", "STABLEHLO_TANH", "STABLEHLO_SCATTER",
    "STABLEHLO_COMPARE", "STABLEHLO_CONVERT", "STABLEHLO_DYNAMIC_SLICE", "STABLEHLO_DYNAMIC_UPDATE_SLICE",
    "STABLEHLO_PAD", "STABLEHLO_IOTA", "STABLEHLO_DOT_GENERAL", "STABLEHLO_REDUCE_WINDOW", "STABLEHLO_SORT",
    "STABLEHLO_WHILE", "STABLEHLO_GATHER", "STABLEHLO_TRANSPOSE", "DILATE", "STABLEHLO_RNG_BIT_GENERATOR",
    "REDUCE_WINDOW", "STABLEHLO_COMPOSITE", "STABLEHLO_SHIFT_LEFT", "STABLEHLO_CBRT", "STABLEHLO_CASE",
)
_CUSTOM = 32

# TensorType -> numpy dtype, for the types this engine can hold.
_TENSOR_DTYPES = {
    0: np.dtype(np.float32),
    2: np.dtype(np.int32),
    3: np.dtype(np.uint8),
    4: np.dtype(np.int64),
    6: np.dtype(np.bool_),
    7: np.dtype(np.int16),
    9: np.dtype(np.int8),
}
_TENSOR_TYPE_NAMES = {1: "FLOAT16", 5: "STRING", 8: "COMPLEX64", 10: "FLOAT64", 11: "COMPLEX128", 12: "UINT64",
                      13: "RESOURCE", 14: "VARIANT", 15: "UINT32", 16: "UINT16", 17: "INT4", 18: "BFLOAT16",
                      19: "INT2", 20: "UINT4"}

PADDING_NAMES = {0: "SAME", 1: "VALID"}
ACTIVATION_NAMES = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
WEIGHTS_FORMAT_NAMES = {0: "DEFAULT", 1: "SHUFFLED4x16INT8"}

# Per operator: (BuiltinOptions union value, [(option name, slot, kind, default)]).
# kinds: "b" int8/uint8 enum or bool byte, "i" int32, "f" float32, "iv" vector of int32.
_OPTIONS = {
    "CONV_2D": (1, [("padding", 0, "pad", 0), ("stride_w", 1, "i", 0), ("stride_h", 2, "i", 0),
                    ("fused_activation_function", 3, "act", 0), ("dilation_w_factor", 4, "i", 1),
                    ("dilation_h_factor", 5, "i", 1)]),
    "DEPTHWISE_CONV_2D": (2, [("padding", 0, "pad", 0), ("stride_w", 1, "i", 0), ("stride_h", 2, "i", 0),
                              ("depth_multiplier", 3, "i", 0), ("fused_activation_function", 4, "act", 0),
                              ("dilation_w_factor", 5, "i", 1), ("dilation_h_factor", 6, "i", 1)]),
    "AVERAGE_POOL_2D": (5, [("padding", 0, "pad", 0), ("stride_w", 1, "i", 0), ("stride_h", 2, "i", 0),
                            ("filter_width", 3, "i", 0), ("filter_height", 4, "i", 0),
                            ("fused_activation_function", 5, "act", 0)]),
    "MAX_POOL_2D": (5, [("padding", 0, "pad", 0), ("stride_w", 1, "i", 0), ("stride_h", 2, "i", 0),
                        ("filter_width", 3, "i", 0), ("filter_height", 4, "i", 0),
                        ("fused_activation_function", 5, "act", 0)]),
    "FULLY_CONNECTED": (8, [("fused_activation_function", 0, "act", 0), ("weights_format", 1, "wf", 0),
                            ("keep_num_dims", 2, "bool", 0), ("asymmetric_quantize_inputs", 3, "bool", 0)]),
    "SOFTMAX": (9, [("beta", 0, "f", 0.0)]),
    "CONCATENATION": (10, [("axis", 0, "i", 0), ("fused_activation_function", 1, "act", 0)]),
    "ADD": (11, [("fused_activation_function", 0, "act", 0)]),
    "RESHAPE": (17, [("new_shape", 0, "iv", None)]),
    "MUL": (21, [("fused_activation_function", 0, "act", 0)]),
    "MEAN": (27, [("keep_dims", 0, "bool", 0)]),
    "SQUEEZE": (30, [("squeeze_dims", 0, "iv", None)]),
}


class _Table:
    """One flatbuffer table: scalar fields, sub-tables, vectors and strings by schema slot."""

    __slots__ = ("buf", "pos", "vtable", "vtable_len")

    def __init__(self, buf: bytes, pos: int):
        self.buf = buf
        self.pos = pos
        self.vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vtable_len = struct.unpack_from("<H", buf, self.vtable)[0]

    def _field(self, slot: int) -> int:
        """Absolute position of field ``slot``, or 0 when absent."""
        entry = 4 + 2 * slot
        if entry >= self.vtable_len:
            return 0
        rel = struct.unpack_from("<H", self.buf, self.vtable + entry)[0]
        return self.pos + rel if rel else 0

    def scalar(self, slot: int, fmt: str, default):
        at = self._field(slot)
        return struct.unpack_from("<" + fmt, self.buf, at)[0] if at else default

    def _target(self, slot: int) -> int:
        at = self._field(slot)
        return at + struct.unpack_from("<I", self.buf, at)[0] if at else 0

    def table(self, slot: int) -> "_Table | None":
        at = self._target(slot)
        return _Table(self.buf, at) if at else None

    def vector(self, slot: int, dtype) -> np.ndarray | None:
        at = self._target(slot)
        if not at:
            return None
        n = struct.unpack_from("<I", self.buf, at)[0]
        dtype = np.dtype(dtype).newbyteorder("<")
        return np.frombuffer(self.buf, dtype=dtype, count=n, offset=at + 4)

    def tables(self, slot: int) -> list["_Table"]:
        at = self._target(slot)
        if not at:
            return []
        n = struct.unpack_from("<I", self.buf, at)[0]
        out = []
        for i in range(n):
            elem = at + 4 + 4 * i
            out.append(_Table(self.buf, elem + struct.unpack_from("<I", self.buf, elem)[0]))
        return out

    def string(self, slot: int) -> str | None:
        raw = self.vector(slot, np.uint8)
        return None if raw is None else raw.tobytes().decode("utf-8", errors="replace")


def is_tflite(data: bytes) -> bool:
    """True when ``data`` carries the TFLite file identifier (bytes 4..8 are ``TFL3``)."""
    return len(data) >= 8 and data[4:8] == TFLITE_FILE_IDENTIFIER


def _op_name(code: int, custom: str | None) -> str:
    if code == _CUSTOM:
        return f"CUSTOM({custom})" if custom else "CUSTOM"
    if 0 <= code < len(BUILTIN_OPERATOR_NAMES):
        return BUILTIN_OPERATOR_NAMES[code]
    return f"BUILTIN_{code}"


def _read_options(kind: str, node: str, op: _Table) -> dict:
    spec = _OPTIONS.get(kind)
    if spec is None:
        return {}
    union_type, fields = spec
    options_type = op.scalar(3, "B", 0)
    table = op.table(4) if options_type == union_type else None
    if options_type not in (0, union_type):
        raise ModelError(f"operator {kind} (node {node!r}) carries options of union type {options_type}; "
                         f"expected {union_type}")
    out = {}
    for name, slot, fkind, default in fields:
        if fkind == "iv":
            vec = table.vector(slot, np.int32) if table is not None else None
            if vec is not None:
                out[name] = tuple(int(v) for v in vec)
            continue
        if fkind == "f":
            value = table.scalar(slot, "f", default) if table is not None else default
            out[name] = float(np.float32(value))
            continue
        fmt = "i" if fkind == "i" else "b"
        value = table.scalar(slot, fmt, default) if table is not None else default
        if fkind == "pad":
            if value not in PADDING_NAMES:
                raise ModelError(f"operator {kind} (node {node!r}) has padding {value}; expected 0 (SAME) or 1 (VALID)")
            value = PADDING_NAMES[value]
        elif fkind == "act":
            if value not in ACTIVATION_NAMES:
                raise ModelError(f"operator {kind} (node {node!r}) has fused activation {value}; "
                                 f"expected one of {ACTIVATION_NAMES}")
            value = ACTIVATION_NAMES[value]
        elif fkind == "wf":
            value = WEIGHTS_FORMAT_NAMES.get(value, str(value))
        elif fkind == "bool":
            value = bool(value)
        else:
            value = int(value)
        out[name] = value
    return out


def _quantization(q: _Table | None, tensor_name: str, ndim: int) -> Quantization | None:
    if q is None:
        return None
    scale = q.vector(2, np.float32)
    zero_point = q.vector(3, np.int64)
    if scale is None or scale.size == 0:
        return None
    if zero_point is None or zero_point.size == 0:
        zero_point = np.zeros(scale.size, np.int64)
    axis = int(q.scalar(6, "i", 0))
    if scale.size > 1 and not 0 <= axis < max(ndim, 1):
        raise ModelError(f"tensor {tensor_name!r} has per-channel quantization on axis {axis}; it has {ndim} axes")
    try:
        return Quantization(scale=np.array(scale, np.float32), zero_point=np.array(zero_point, np.int64), axis=axis)
    except ModelError as exc:
        raise ModelError(f"tensor {tensor_name!r}: {exc}") from exc


def _buffer_bytes(data: bytes, buffers: list[_Table], index: int, tensor_name: str) -> bytes | None:
    if not 0 <= index < len(buffers):
        raise ModelError(f"tensor {tensor_name!r} refers to buffer {index}; the model has {len(buffers)}")
    buf = buffers[index]
    raw = buf.vector(0, np.uint8)
    if raw is not None and raw.size:
        return raw.tobytes()
    offset = int(buf.scalar(1, "Q", 0))
    size = int(buf.scalar(2, "Q", 0))
    if offset > 1 and size:  # large-model layout: bytes after the flatbuffer, offset from the file start
        if offset + size > len(data):
            raise ModelError(f"tensor {tensor_name!r}: buffer {index} lies past the end of the file")
        return data[offset:offset + size]
    return None


def read_tflite(data: bytes) -> Graph:
    """Parse TFLite flatbuffer bytes into a Graph (subgraph 0)."""
    if not is_tflite(data):
        raise ModelError("not a TFLite flatbuffer: bytes 4..8 are not the 'TFL3' file identifier")
    try:
        return _read(bytes(data))
    except (struct.error, IndexError, ValueError, OverflowError) as exc:
        if isinstance(exc, ModelError):
            raise
        raise ModelError(f"corrupt TFLite flatbuffer: {exc}") from exc


def _int_tuple(vec: np.ndarray | None) -> tuple[int, ...]:
    return () if vec is None else tuple(int(v) for v in vec)


def _read(data: bytes) -> Graph:
    model = _Table(data, struct.unpack_from("<I", data, 0)[0])
    version = model.scalar(0, "I", 0)
    if version != 3:
        raise ModelError(f"TFLite schema version {version}; expected 3")
    opcodes = []
    for oc in model.tables(1):
        deprecated = oc.scalar(0, "b", 0)
        code = max(int(oc.scalar(3, "i", 0)), int(deprecated))
        opcodes.append(_op_name(code, oc.string(1)))
    subgraphs = model.tables(2)
    if not subgraphs:
        raise ModelError("the TFLite model has no subgraph")
    buffers = model.tables(4)
    sg = subgraphs[0]

    tensors = []
    for i, t in enumerate(sg.tables(0)):
        name = t.string(3) or f"tensor_{i}"
        shape_vec = t.vector(0, np.int32)
        shape = tuple(int(d) for d in shape_vec) if shape_vec is not None else ()
        if any(d < 0 for d in shape):
            raise ModelError(f"tensor {name!r} has shape {shape}; dynamic dimensions are not supported")
        ttype = int(t.scalar(1, "b", 0))
        if ttype not in _TENSOR_DTYPES:
            raise ModelError(f"tensor {name!r} has type {_TENSOR_TYPE_NAMES.get(ttype, ttype)}; supported: "
                             "FLOAT32, INT32, UINT8, INT64, BOOL, INT16, INT8")
        dtype = _TENSOR_DTYPES[ttype]
        if t.scalar(6, "B", 0) and t.table(6) is not None:
            raise ModelError(f"tensor {name!r} is sparse; sparse tensors are not supported")
        if t.scalar(5, "B", 0):
            raise ModelError(f"tensor {name!r} is a variable tensor; stateful models are not supported")
        quant = _quantization(t.table(4), name, len(shape))
        raw = _buffer_bytes(data, buffers, int(t.scalar(2, "I", 0)), name)
        values = None
        if raw is not None:
            count = int(np.prod(shape, dtype=np.int64))
            if len(raw) != count * dtype.itemsize:
                raise ModelError(f"tensor {name!r} of shape {shape} and type {dtype} needs "
                                 f"{count * dtype.itemsize} bytes; its buffer has {len(raw)}")
            values = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)
        tensors.append(Tensor(index=i, name=name, shape=shape, dtype=dtype, quantization=quant, data=values))

    operators = []
    for k, op in enumerate(sg.tables(3)):
        idx = int(op.scalar(0, "I", 0))
        if not 0 <= idx < len(opcodes):
            raise ModelError(f"operator #{k} uses operator code {idx}; the model has {len(opcodes)}")
        kind = opcodes[idx]
        inputs = _int_tuple(op.vector(1, np.int32))
        outputs = _int_tuple(op.vector(2, np.int32))
        first_out = tensors[outputs[0]].name if outputs and 0 <= outputs[0] < len(tensors) else "?"
        node = f"{first_out} (#{k})"
        if kind not in SUPPORTED_OPS:
            raise UnsupportedOperatorError(
                f"operator {kind} (node {node!r}) is not supported; supported: {', '.join(SUPPORTED_OPS)}")
        operators.append(Operator(kind=kind, name=node, inputs=inputs, outputs=outputs,
                                  options=_read_options(kind, node, op)))

    metadata = {}
    for entry in model.tables(6):
        name = entry.string(0)
        index = int(entry.scalar(1, "I", 0))
        if not name or not 0 <= index < len(buffers):
            continue
        raw = _buffer_bytes(data, buffers, index, f"metadata {name}")
        if raw is None:
            continue
        try:
            text = raw.rstrip(b"\0").decode("utf-8")
        except UnicodeDecodeError:
            continue
        if all(c.isprintable() or c in "\n\r\t" for c in text):
            metadata[name] = text

    inputs = _int_tuple(sg.vector(1, np.int32))
    outputs = _int_tuple(sg.vector(2, np.int32))
    for role, indices in (("input", inputs), ("output", outputs)):
        for t in indices:
            if not 0 <= t < len(tensors):
                raise ModelError(f"graph {role} refers to tensor {t}; the subgraph has {len(tensors)}")
    return Graph(tensors=tuple(tensors), operators=tuple(operators), inputs=inputs, outputs=outputs,
                 metadata=metadata)


def import_tflite(source: str | Path | bytes) -> Graph:
    """Load a ``.tflite`` file (a path, or its bytes) into a Graph.

    Raises :class:`~sed_runtime.errors.ModelError` for a file that is not a
    TFLite flatbuffer or is corrupt, and
    :class:`~sed_runtime.errors.UnsupportedOperatorError` for an operator
    outside the supported set.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return read_tflite(bytes(source))
    path = Path(source)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read model {str(path)!r}: {exc.strerror or exc}") from exc
    return read_tflite(data)
