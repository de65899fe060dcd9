"""sed-runtime: streaming sound-event detection with Cortex-M firmware arithmetic, bit for bit."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sed-runtime")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
