"""Quantized models: import into one immutable plan, plan the arena, run TFLM-exact int8 kernels."""

from __future__ import annotations

__all__ = ["Graph", "Tensor", "Operator", "Quantization", "Model", "load_model", "load_graph", "import_tflite"]

_EXPORTS = {
    "Graph": "sed_runtime.model.graph",
    "Tensor": "sed_runtime.model.graph",
    "Operator": "sed_runtime.model.graph",
    "Quantization": "sed_runtime.model.graph",
    "Model": "sed_runtime.model.interpreter",
    "load_model": "sed_runtime.model.interpreter",
    "load_graph": "sed_runtime.model.interpreter",
    "import_tflite": "sed_runtime.model.tflite_import",
}


def __getattr__(name: str):
    # Imported on first use: the interpreter pulls in Numba, which the importers and exporters do not need.
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
