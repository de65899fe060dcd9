"""sed-runtime: streaming sound-event detection with Cortex-M firmware arithmetic, bit for bit."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sed-runtime")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"


def load_model(path, single_rounding: bool = False):
    """Load a ``.tflite`` or ``.onnx`` int8 model, ready to ``invoke``; see :func:`sed_runtime.model.interpreter.load_model`."""
    from sed_runtime.model.interpreter import load_model as _load_model

    return _load_model(path, single_rounding=single_rounding)
