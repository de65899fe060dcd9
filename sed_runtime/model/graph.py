"""The one plan format every importer produces: an immutable int8 graph in TFLite terms.

Both importers (TFLite flatbuffers and quantized ONNX) produce a :class:`Graph`:
tensors in NHWC layout with their quantization, and operators named and
parameterised as TFLite/TFLM names them (``CONV_2D``, ``DEPTHWISE_CONV_2D``,
``FULLY_CONNECTED``, ...).  TFLM's integer semantics are the spec, so the plan
speaks its language; an ONNX graph is translated into it once, at import.

Nothing here computes; :mod:`sed_runtime.model.prepare` turns a Graph into
integer parameters (multipliers, shifts, activation ranges, padding) and
:mod:`sed_runtime.model.planner` lays its activations into one arena.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sed_runtime.errors import ModelError

__all__ = ["Quantization", "Tensor", "Operator", "Graph", "SUPPORTED_OPS"]

# TFLite builtin operator names this engine executes (the set importers may emit).
SUPPORTED_OPS = (
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEQUANTIZE",
    "FULLY_CONNECTED", "LOGISTIC", "MAX_POOL_2D", "MEAN", "MUL", "PAD", "QUANTIZE", "RESHAPE",
    "SOFTMAX", "SQUEEZE", "TANH", "TRANSPOSE",
)


@dataclass(frozen=True)
class Quantization:
    """Affine quantization ``real = scale * (q - zero_point)``.

    ``scale`` and ``zero_point`` have one entry (per-tensor) or one per slice
    along ``axis`` (per-channel).  Scales are float32, as in the flatbuffer:
    effective multipliers are later computed in double from these float32
    values, as TFLM does.
    """

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int = 0

    def __post_init__(self) -> None:
        scale = np.asarray(self.scale, dtype=np.float32).reshape(-1)
        zp = np.asarray(self.zero_point, dtype=np.int64).reshape(-1)
        if scale.size == 0 or scale.size != zp.size:
            raise ModelError(f"quantization has {scale.size} scales and {zp.size} zero points; expected equal, >= 1")
        if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            raise ModelError(f"quantization scale {scale[:4]} must be finite and > 0")
        scale.setflags(write=False)
        zp.setflags(write=False)
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "zero_point", zp)

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1


@dataclass(frozen=True)
class Tensor:
    """One tensor of the graph: activations have ``data=None``; constants carry their values."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    quantization: Quantization | None = None
    data: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        if self.data is not None:
            data = np.ascontiguousarray(self.data, dtype=self.dtype).reshape(self.shape)
            data.setflags(write=False)
            object.__setattr__(self, "data", data)

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


@dataclass(frozen=True)
class Operator:
    """One operator: TFLite builtin name, tensor indices, and its options (TFLite option names)."""

    kind: str
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(int(i) for i in self.inputs))
        object.__setattr__(self, "outputs", tuple(int(i) for i in self.outputs))


@dataclass(frozen=True)
class Graph:
    """Tensors, operators in execution order, and the graph's input/output tensor indices."""

    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tensors", tuple(self.tensors))
        object.__setattr__(self, "operators", tuple(self.operators))
        for op in self.operators:
            if op.kind not in SUPPORTED_OPS:
                from sed_runtime.errors import UnsupportedOperatorError

                raise UnsupportedOperatorError(
                    f"operator {op.kind} (node {op.name!r}) is not supported; supported: {', '.join(SUPPORTED_OPS)}"
                )
            for t in op.inputs + op.outputs:
                if t != -1 and not 0 <= t < len(self.tensors):
                    raise ModelError(f"operator {op.name!r} refers to tensor {t}; the graph has {len(self.tensors)}")
