"""One error hierarchy for the whole runtime.

Every error raised on purpose by sed_runtime derives from :class:`SedError`.
Messages name the offending value and what was expected, e.g.
``hop_samples=300 must not exceed window_samples=256``.
"""

from __future__ import annotations


class SedError(Exception):
    """Base class of every error sed_runtime raises on purpose."""


class ConfigError(SedError, ValueError):
    """A configuration value is out of range or inconsistent with another."""


class AudioFormatError(SedError, ValueError):
    """Audio has a sample rate, format, channel layout or length we cannot use."""


class ModelError(SedError, ValueError):
    """A model file is corrupt, unsupported, or its metadata disagrees with its graph."""


class UnsupportedOperatorError(ModelError):
    """A model uses an operator (or operator option) the interpreter does not implement."""


class DeviceError(SedError, RuntimeError):
    """An audio device is missing, cannot be opened, or disappeared."""


class TraceError(SedError, ValueError):
    """A firmware trace is corrupt, truncated, or does not belong to the given model/audio."""
