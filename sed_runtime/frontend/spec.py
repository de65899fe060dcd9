"""The frontend specification: what a model (or a JSON file) says about its features.

A spec is a plain frozen dataclass with units in its field names.  It is
validated when built, so a bad value fails at load time with a message that
names it, never in the audio path.  JSON form (keys = field names)::

    {
      "family": "cmsis-dsp",
      "sample_rate_hz": 16000,
      "window_samples": 512,
      "hop_samples": 256,
      "fft_len": 512,
      "n_mels": 40,
      "lower_hz": 20.0,
      "upper_hz": 8000.0,
      "n_dct": 0,
      "window": "hann",
      "target": "generic",
      "quantization": {"scale": 0.0625, "zero_point": 0}
    }

``n_dct = 0`` gives log-mel frames (``n_mels`` q8.7 values each); ``n_dct > 0``
gives MFCC (``arm_mfcc_q15``).  ``quantization`` (optional) maps the q8.7
features to the model's int8 input; it is applied in integer arithmetic.
``tables`` (optional, JSON only) names an ``.npz`` holding a firmware's own
tables (``window``, ``filter_pos``, ``filter_len``, ``filter_coefs``, ``dct``),
relative to the JSON file.

``"family"`` selects the frontend: ``"cmsis-dsp"`` (the default when the key
is absent) is a :class:`FrontendSpec`; ``"tflm-signal"`` is the TFLM
micro_speech frontend, a :class:`sed_runtime.frontend.tflm.TflmFrontendSpec`
(keys = its field names).  :func:`spec_from_dict` and :func:`load_spec`
dispatch on it.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from sed_runtime.errors import ConfigError

__all__ = ["FeatureQuantization", "FrontendSpec", "load_spec", "spec_from_dict", "TARGETS", "FAMILIES"]

TARGETS = ("generic", "dsp")
CMSIS_FAMILY = "cmsis-dsp"
TFLM_FAMILY = "tflm-signal"  # spec class: sed_runtime.frontend.tflm.TflmFrontendSpec
FAMILIES = (CMSIS_FAMILY, TFLM_FAMILY)
WINDOWS = ("hann",)
_FFT_LENGTHS = (32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)


@dataclass(frozen=True)
class FeatureQuantization:
    """Affine int8 quantization of the model input: ``real = scale * (q - zero_point)``.

    ``real`` is in the units of the features as floats, i.e. q8.7 / 128
    (natural-log units for log-mel).
    """

    scale: float
    zero_point: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.scale, bool) or not (isinstance(self.scale, (int, float)) and math.isfinite(self.scale) and self.scale > 0):
            raise ConfigError(f"quantization.scale={self.scale!r} must be a finite number > 0")
        if isinstance(self.zero_point, bool) or not isinstance(self.zero_point, int) or not -128 <= self.zero_point <= 127:
            raise ConfigError(f"quantization.zero_point={self.zero_point!r} must be an integer in [-128, 127]")


@dataclass(frozen=True)
class FrontendSpec:
    """A CMSIS-DSP q15 log-mel / MFCC frontend.

    ``window_samples`` audio samples are taken every ``hop_samples``; when the
    window is shorter than ``fft_len`` the frame is zero-padded at the end and
    the Hann window covers the ``window_samples`` only.
    """

    sample_rate_hz: int
    window_samples: int
    hop_samples: int
    fft_len: int
    n_mels: int
    lower_hz: float = 0.0
    upper_hz: float | None = None
    n_dct: int = 0
    window: str = "hann"
    target: str = "generic"
    family: str = CMSIS_FAMILY
    quantization: FeatureQuantization | None = None
    tables_path: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        def positive_int(name: str) -> int:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name}={value!r} must be a positive integer")
            return value

        if self.family != CMSIS_FAMILY:
            if self.family in FAMILIES:
                raise ConfigError(f"family={self.family!r} is not a FrontendSpec family; use spec_from_dict "
                                  f"(or TflmFrontendSpec) for it")
            raise ConfigError(f"family={self.family!r} is not supported; expected one of {FAMILIES}")
        if self.target not in TARGETS:
            raise ConfigError(f"target={self.target!r} is not a known arithmetic target; expected one of {TARGETS}")
        if self.window not in WINDOWS:
            raise ConfigError(f"window={self.window!r} is not supported; expected one of {WINDOWS}")
        rate = positive_int("sample_rate_hz")
        window = positive_int("window_samples")
        hop = positive_int("hop_samples")
        fft_len = positive_int("fft_len")
        n_mels = positive_int("n_mels")
        if fft_len not in _FFT_LENGTHS:
            raise ConfigError(f"fft_len={fft_len} is not an arm_rfft_q15 length; expected one of {_FFT_LENGTHS}")
        if window > fft_len:
            raise ConfigError(f"window_samples={window} must not exceed fft_len={fft_len}")
        if hop > window:
            raise ConfigError(f"hop_samples={hop} must not exceed window_samples={window}")
        if isinstance(self.n_dct, bool) or not isinstance(self.n_dct, int) or not 0 <= self.n_dct <= n_mels:
            raise ConfigError(f"n_dct={self.n_dct!r} must be an integer in [0, n_mels={n_mels}] (0 = log-mel)")
        for name in ("lower_hz", "upper_hz"):
            value = getattr(self, name)
            if name == "upper_hz" and value is None:
                continue  # default: sample_rate_hz / 2
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ConfigError(f"{name}={value!r} must be a number (Hz)")
        upper = rate / 2 if self.upper_hz is None else self.upper_hz
        object.__setattr__(self, "upper_hz", float(upper))
        object.__setattr__(self, "lower_hz", float(self.lower_hz))
        if not 0.0 <= self.lower_hz < self.upper_hz <= rate / 2:
            raise ConfigError(
                f"band lower_hz={self.lower_hz:g}, upper_hz={self.upper_hz:g} must satisfy "
                f"0 <= lower_hz < upper_hz <= sample_rate_hz/2={rate / 2:g}"
            )
        if self.quantization is not None and not isinstance(self.quantization, FeatureQuantization):
            if isinstance(self.quantization, dict):
                object.__setattr__(self, "quantization", _quantization_from_dict(self.quantization))
            else:
                raise ConfigError(f"quantization={self.quantization!r} must be a mapping with scale and zero_point")

    # -- derived -----------------------------------------------------------
    @property
    def output(self) -> str:
        """``"mfcc"`` when ``n_dct > 0``, else ``"logmel"``."""
        return "mfcc" if self.n_dct else "logmel"

    @property
    def bins(self) -> int:
        """Values per feature frame."""
        return self.n_dct or self.n_mels

    @property
    def frame_ms(self) -> float:
        return 1000.0 * self.hop_samples / self.sample_rate_hz

    def frames_in(self, n_samples: int) -> int:
        """Complete frames in a stream of ``n_samples`` samples."""
        if n_samples < self.window_samples:
            return 0
        return 1 + (n_samples - self.window_samples) // self.hop_samples

    # -- (de)serialisation -------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d.get("tables_path") is None:
            d.pop("tables_path", None)
        else:
            d["tables"] = d.pop("tables_path")
        if d["quantization"] is None:
            d.pop("quantization")
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: Path | None = None) -> "FrontendSpec":
        if not isinstance(data, dict):
            raise ConfigError(f"a frontend spec must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)} - {"tables_path"}
        data = dict(data)
        tables = data.pop("tables", None)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown frontend spec key(s) {unknown}; expected keys among {sorted(known | {'tables'})}")
        missing = [k for k in ("sample_rate_hz", "window_samples", "hop_samples", "fft_len", "n_mels") if k not in data]
        if missing:
            raise ConfigError(f"frontend spec is missing required key(s) {missing}")
        if tables is not None:
            if not isinstance(tables, str):
                raise ConfigError(f"tables={tables!r} must be a path to an .npz file (a string)")
            path = Path(tables)
            if base_dir is not None and not path.is_absolute():
                path = base_dir / path
            data["tables_path"] = str(path)
        return cls(**data)


def _quantization_from_dict(data: dict[str, Any]) -> FeatureQuantization:
    unknown = sorted(set(data) - {"scale", "zero_point"})
    if unknown or "scale" not in data:
        raise ConfigError(f"quantization must have keys scale and (optionally) zero_point, got {sorted(data)}")
    return FeatureQuantization(scale=data["scale"], zero_point=data.get("zero_point", 0))


def spec_from_dict(data: dict[str, Any], base_dir: Path | None = None):
    """A spec of the family named by ``data["family"]`` (default ``"cmsis-dsp"``).

    Returns a :class:`FrontendSpec` for ``"cmsis-dsp"`` and a
    :class:`~sed_runtime.frontend.tflm.TflmFrontendSpec` for ``"tflm-signal"``.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"a frontend spec must be a JSON object, got {type(data).__name__}")
    family = data.get("family", CMSIS_FAMILY)
    if family == TFLM_FAMILY:
        from sed_runtime.frontend.tflm import TflmFrontendSpec  # the TFLM module imports its kernels

        return TflmFrontendSpec.from_dict(data)
    if family != CMSIS_FAMILY:
        raise ConfigError(f"family={family!r} is not supported; expected one of {FAMILIES}")
    return FrontendSpec.from_dict(data, base_dir=base_dir)


def load_spec(path: str | Path):
    """Read a frontend spec of either family from a JSON file (see the module docstring for keys)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read frontend spec {str(path)!r}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"frontend spec {str(path)!r} is not UTF-8 text (byte {exc.start}); expected a JSON file") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"frontend spec {str(path)!r} is not valid JSON: {exc}") from exc
    return spec_from_dict(data, base_dir=path.parent)
