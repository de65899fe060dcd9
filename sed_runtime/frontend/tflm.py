"""The TensorFlow Lite Micro ``signal`` frontend of micro_speech, streaming and bit-exact.

Many TFLM audio models are trained on the features of the micro_speech
"audio preprocessor": a graph of TFLM ``signal`` ops run once per 30 ms window
every 20 ms (window, FFT auto-scale, int16 real FFT, energy, mel filter bank,
square root, spectral-subtraction noise reduction, PCAN gain control, log,
then an int8 conversion).  This module turns a float configuration
(:class:`TflmFrontendSpec`, the parameters of ``audio_preprocessor.py``'s
``FeatureParams`` with units in their names) into the integer state of each
stage exactly as TFLM's Python op wrappers do, and runs the kernels of
:mod:`sed_runtime.kernels.tflm_signal`.

Lifecycle (as TFLM kernels): build with a spec -> :meth:`TflmFrontend.prepare`
(all tables, all buffers, all validation) -> :meth:`TflmFrontend.process` any
number of times -> :meth:`TflmFrontend.reset` to start a new stream.

Streaming contract: ``process(samples)`` accepts any number of int16 samples
and returns every frame they complete, in order.  Frame ``k`` covers samples
``[k*hop, k*hop + window)`` and sees the noise estimate left by frames
``0..k-1`` (as the preprocessor model invoked once per hop from a fresh
state).  Any chunking of the same audio gives the same frames, bit for bit.
The returned array is a view of an internal buffer, valid until the next
call.  After ``prepare()`` a call allocates nothing unless it is handed a
chunk larger than any before (the output buffer then grows once).

Float details.  Three tables come from float arithmetic, and TFLM computes
them in float32 through C: the mel scale (``1127 * log1pf(f / 700)``), the
filter-bank weights built on it, and the PCAN gain table (``powf``).  The
filter-bank layout and weights are sensitive to the last bit of ``log1pf``:
over 100 random configurations, glibc 2.36's ``log1pf`` and a correctly
rounded one give different tables for about a third of them.  So the same C
functions are called here (the platform's C math library through ``ctypes``,
as TFLM's pybind wrapper calls them); where no C math library can be loaded
the float64 function rounded to float32 is used, and :data:`FLOAT32_MATH` says
which.  The Hann window follows TFLM's numpy expression (float64, ``np.round``
half-to-even).  Float32 arithmetic follows NumPy 2 (NEP 50) promotion, as
TFLM's scripts run today.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import numbers
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from sed_runtime.errors import AudioFormatError, ConfigError
from sed_runtime.frontend.spec import TFLM_FAMILY
from sed_runtime.kernels.tflm_signal import (
    PCAN_SNR_BITS,
    KissFftrInt16Tables,
    kiss_fftr_int16_tables,
    pack_signal_frames,
    stream_signal_frames,
)

__all__ = [
    "TFLM_FAMILY",
    "FLOAT32_MATH",
    "TflmFrontendSpec",
    "MICRO_SPEECH_SPEC",
    "TflmStages",
    "WindowStage",
    "FftStage",
    "FilterBankStage",
    "NoiseReductionStage",
    "PcanStage",
    "LogStage",
    "Int8Stage",
    "TflmFrontend",
    "compute_tflm_features",
    "freq_to_mel",
    "hann_window_weights",
    "pcan_gain_lut",
]

OUTPUTS = ("int8", "int16")
_MIN_FFT_LEN, _MAX_FFT_LEN = 64, 2048  # fft_ops._MIN_FFT_LENGTH / _MAX_FFT_LENGTH
_BLOCK_FRAMES = 64  # frames computed per kernel call when a chunk is long


# ---------------------------------------------------------------------------
# float32 C math, as TFLM's pybind wrappers call it
# ---------------------------------------------------------------------------

def _load_c_math():
    names = ["libm.so.6", ctypes.util.find_library("m"), "ucrtbase"]
    for name in names:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            log1pf, powf = lib.log1pf, lib.powf
        except (OSError, AttributeError):
            continue
        log1pf.restype, log1pf.argtypes = ctypes.c_float, [ctypes.c_float]
        powf.restype, powf.argtypes = ctypes.c_float, [ctypes.c_float, ctypes.c_float]
        return log1pf, powf, f"C library {name}"
    return None, None, "float64 rounded to float32 (no C math library found)"


_LOG1PF, _POWF, FLOAT32_MATH = _load_c_math()


def _log1pf(x: np.float32) -> np.float32:
    if _LOG1PF is not None:
        return np.float32(_LOG1PF(float(x)))
    return np.float32(math.log1p(float(x)))


def _powf(x: np.float32, y: np.float32) -> np.float32:
    if _POWF is not None:
        return np.float32(_POWF(float(x), float(y)))
    return np.float32(float(x) ** float(y))


def freq_to_mel(freq_hz: float) -> float:
    """Mel value of a frequency, in float32 as TFLM's ``FreqToMel``: ``1127 * log1pf(f / 700)``.

    The argument is rounded to float32 first (as pybind passes a Python float
    to a C ``float``); the float32 result is returned as a Python float.
    """
    f = np.float32(freq_hz)
    return float(np.float32(np.float32(1127.0) * _log1pf(np.float32(f / np.float32(700.0)))))


# ---------------------------------------------------------------------------
# Table generators (TFLM's signal/python/ops, re-derived)
# ---------------------------------------------------------------------------

def hann_window_weights(window_samples: int, shift: int) -> np.ndarray:
    """int16 Hann window in q(shift): ``round((0.5 - 0.5 cos(2 pi (i + 0.5) / N)) * 2**shift)``.

    Mirrors: ``window_op.hann_window_weights`` (float64, ``np.round`` = half to
    even; the window is sampled at half-integer points, so it is symmetric
    and never exactly 0 or 1).
    """
    arg = np.pi * 2 / window_samples
    index = np.arange(window_samples)
    weights = 0.5 - (0.5 * np.cos(arg * (index + 0.5)))
    return np.round(weights * (2 ** shift)).astype(np.int16)


def pcan_gain_lut(strength: float, offset: float, input_bits: int, gain_bits: int) -> np.ndarray:
    """The 125-entry PCAN gain table: ``2**gain_bits * (x / 2**input_bits + offset) ** -strength``.

    Mirrors: ``WideDynamicFuncLut`` / ``PcanGainLookupFunction``
    (``wide_dynamic_func_lut_wrapper.cc``), in float32 with C ``powf``:
    entries 0 and 1 are the gains at x = 0 and 1; then for each bit length
    ``b`` = 2..32 of x, four entries at ``4b - 6``: the gain ``y0`` at
    ``x0 = 2**(b-1)``, and the quadratic coefficients ``a1 = 4 (y1 - y0) -
    (y2 - y0)``, ``a2 = (y2 - y0) - a1`` through ``x0 * 3/2`` and ``2 x0``
    (``2 x0 - 1`` for b = 32), and 0.  Gains saturate at 32767 and round by
    ``+ 0.5f`` then truncation; ``a1``/``a2`` are cast to int16 (wrap).
    """
    strength32 = np.float32(strength)
    offset32 = np.float32(offset)
    scale = np.float32(np.uint32(1) << np.uint32(gain_bits))
    divisor = np.float32(np.uint32(1) << np.uint32(input_bits))

    def gain(x: int) -> int:
        x_f = np.float32(np.float32(x) / divisor)
        g = np.float32(scale * _powf(np.float32(x_f + offset32), np.float32(-strength32)))
        if g > np.float32(32767):
            return 32767
        return int(np.float32(g + np.float32(0.5)))  # C: static_cast<int16_t>, truncation

    def wrap16(v: int) -> int:
        return ((v + 32768) & 0xFFFF) - 32768

    lut = np.zeros(4 * 32 - 3, np.int16)
    lut[0] = gain(0)
    lut[1] = gain(1)
    for interval in range(2, 33):
        x0 = 1 << (interval - 1)
        x1 = x0 + (x0 >> 1)
        x2 = x0 + (x0 - 1) if interval == 32 else 2 * x0
        y0, y1, y2 = gain(x0), gain(x1), gain(x2)
        diff1, diff2 = y1 - y0, y2 - y0
        a1 = 4 * diff1 - diff2
        a2 = diff2 - a1
        base = 4 * interval - 6
        lut[base] = y0
        lut[base + 1] = wrap16(a1)
        lut[base + 2] = wrap16(a2)
        if base + 3 < lut.shape[0]:
            lut[base + 3] = 0
    return lut


@dataclass(frozen=True)
class FilterBankTables:
    """The mel filter bank of ``SignalFilterBank`` and the energy range it reads."""

    start_index: int
    end_index: int
    weights: np.ndarray
    unweights: np.ndarray
    channel_frequency_starts: np.ndarray
    channel_weight_starts: np.ndarray
    channel_widths: np.ndarray


def filter_bank_tables(spectrum_size: int, sample_rate_hz: int, n_channels: int, lower_band_hz: float,
                       upper_band_hz: float, scaling_bits: int, alignment: int, channel_block_size: int
                       ) -> FilterBankTables:
    """Triangular mel filter bank in TFLM's packed layout.

    Mirrors: ``filter_bank_ops._init_filter_bank_weights`` (and
    ``calc_start_end_indices``): ``n_channels + 1`` mel centres evenly spaced
    (float32) above ``freq_to_mel(lower_band_hz)``; bins from
    ``round(1 + lower / hz_per_bin)`` (Python ``round``: half to even) are
    assigned to the first centre at or above their mel value.  Each channel's
    bins are padded to ``channel_block_size`` from a start aligned to
    ``alignment`` bytes (of int16); a channel with no bins points at a block of
    zero weights placed first.  Weight = (centre - mel(bin)) / (centre -
    previous centre) in float32, ``int(w * 2**scaling_bits)`` and unweight
    ``int((1 - w) * 2**scaling_bits)`` (truncation).
    """
    def ensure(cond: bool, message: str) -> None:
        if not cond:
            raise ConfigError(message)

    ensure(lower_band_hz >= 0, f"lower_band_hz={lower_band_hz:g} must be >= 0")
    ensure(lower_band_hz <= upper_band_hz,
           f"lower_band_hz={lower_band_hz:g} must not exceed upper_band_hz={upper_band_hz:g}")
    mel_lower = np.float32(freq_to_mel(lower_band_hz))
    mel_upper = np.float32(freq_to_mel(upper_band_hz))
    mel_spacing = np.float32((mel_upper - mel_lower) / np.float32(n_channels + 1))
    centers = mel_lower + mel_spacing * np.arange(1, n_channels + 2, dtype=np.float32)

    index_alignment = 1 if alignment < 2 else alignment // 2
    n = n_channels + 1
    freq_starts = np.zeros(n, np.int16)
    weight_starts = np.zeros(n, np.int16)
    widths = np.zeros(n, np.int16)
    actual_starts = np.zeros(n, np.int64)
    actual_widths = np.zeros(n, np.int64)
    hz_per_bin = (sample_rate_hz / 2) / (spectrum_size - 1)  # HTK: DC excluded
    start_index = round(1 + (lower_band_hz / hz_per_bin))  # half to even, as Python's round

    chan_start = start_index
    weight_index = 0
    zeros_placed = False
    for chan in range(n):
        freq_index = chan_start
        while freq_to_mel(freq_index * hz_per_bin) <= centers[chan]:
            freq_index += 1
            ensure(freq_index < 1 << 15, f"filter bank channel {chan} runs past 32767 FFT bins")
        width = freq_index - chan_start
        actual_starts[chan] = chan_start
        actual_widths[chan] = width
        if width == 0:
            # An empty channel reads one block of zero weights, kept at the front.
            freq_starts[chan] = 0
            weight_starts[chan] = 0
            widths[chan] = channel_block_size
            if not zeros_placed:
                zeros_placed = True
                weight_starts[:chan] += channel_block_size
                weight_index += channel_block_size
        else:
            aligned_start = (chan_start // index_alignment) * index_alignment
            aligned_width = chan_start - aligned_start + width
            padded_width = ((aligned_width - 1) // channel_block_size + 1) * channel_block_size
            freq_starts[chan] = aligned_start
            weight_starts[chan] = weight_index
            widths[chan] = padded_width
            weight_index += padded_width
        chan_start = freq_index

    weights = np.zeros(weight_index, np.int16)
    unweights = np.zeros(weight_index, np.int16)
    end_index = 0
    mel_low = freq_to_mel(lower_band_hz)
    one = np.float32(1.0)
    scale = np.float32(1 << scaling_bits)
    for chan in range(n):
        frequency = int(actual_starts[chan])
        offset = frequency - int(freq_starts[chan])
        denom_mel = np.float32(mel_low) if chan == 0 else centers[chan - 1]
        for j in range(int(actual_widths[chan])):
            num = np.float32(centers[chan] - np.float32(freq_to_mel(frequency * hz_per_bin)))
            den = np.float32(centers[chan] - denom_mel)
            weight = np.float32(num / den)
            index = int(weight_starts[chan]) + offset + j
            weights[index] = int(np.float32(weight * scale))
            unweights[index] = int(np.float32(np.float32(one - weight) * scale))
            frequency += 1
        end_index = max(end_index, frequency)
    ensure(end_index < spectrum_size,
           f"the filter bank needs FFT bin {end_index} but the spectrum has {spectrum_size} bins "
           f"(upper_band_hz={upper_band_hz:g} too close to the Nyquist frequency for this fft_len)")
    arrays = (weights, unweights, freq_starts, weight_starts, widths)
    for arr in arrays:
        arr.setflags(write=False)
    return FilterBankTables(int(start_index), int(end_index), *arrays)


# ---------------------------------------------------------------------------
# The spec (float configuration, units in names)
# ---------------------------------------------------------------------------

def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)


@dataclass(frozen=True)
class TflmFrontendSpec:
    """The micro_speech audio preprocessor's parameters (``FeatureParams``), units in names.

    Defaults are micro_speech's (``audio_preprocessor_int8.tflite``).  Give
    the window as ``window_ms`` or ``window_samples`` and the hop as
    ``stride_ms`` or ``hop_samples`` (or both, consistent); samples are
    ``int(ms * sample_rate_hz / 1000)`` as TFLM computes them.  ``fft_len``
    defaults to the smallest power of two >= the window (64..2048).
    ``correction_bits`` (the input correction of PCAN and the log) defaults
    to ``log2(fft_len) - filter_bank_scaling_bits // 2``.

    ``output="int8"`` gives micro_speech's model input; ``"int16"`` the log
    filter-bank values before that conversion.
    """

    sample_rate_hz: int = 16000
    window_ms: float | None = None
    window_samples: int | None = None
    stride_ms: float | None = None
    hop_samples: int | None = None
    fft_len: int | None = None
    window_scaling_bits: int = 12
    n_channels: int = 40
    lower_band_hz: float = 125.0
    upper_band_hz: float = 7500.0
    filter_bank_scaling_bits: int = 12
    filter_bank_alignment: int = 4
    filter_bank_channel_block_size: int = 4
    spectral_subtraction_bits: int = 14
    smoothing_bits: int = 10
    even_smoothing: float = 0.025
    odd_smoothing: float = 0.06
    min_signal_remaining: float = 0.05
    clamping: bool = False
    enable_pcan: bool = True
    pcan_strength: float = 0.95
    pcan_offset: float = 80.0
    pcan_gain_bits: int = 21
    pcan_smoothing_bits: int = 10
    pcan_snr_shift: int = 6
    log_scale_bits: int = 6
    correction_bits: int | None = None
    output: str = "int8"
    int8_feature_scale: float = 25.6
    int8_feature_range: float = 26.0
    family: str = TFLM_FAMILY

    def __post_init__(self) -> None:
        def set_(name: str, value) -> None:
            object.__setattr__(self, name, value)

        def need_int(name: str, lo: int, hi: int) -> int:
            value = getattr(self, name)
            if not _is_int(value) or not lo <= value <= hi:
                raise ConfigError(f"{name}={value!r} must be an integer in [{lo}, {hi}]")
            set_(name, int(value))
            return int(value)

        def need_real(name: str, lo: float, hi: float) -> float:
            value = getattr(self, name)
            if not _is_real(value) or not lo <= value <= hi:
                raise ConfigError(f"{name}={value!r} must be a number in [{lo:g}, {hi:g}]")
            set_(name, float(value))
            return float(value)

        def need_bool(name: str) -> None:
            value = getattr(self, name)
            if not isinstance(value, (bool, np.bool_)):
                raise ConfigError(f"{name}={value!r} must be true or false")
            set_(name, bool(value))

        if self.family != TFLM_FAMILY:
            raise ConfigError(f"family={self.family!r}: a TflmFrontendSpec is family {TFLM_FAMILY!r}")
        rate = need_int("sample_rate_hz", 1, 10**6)
        window = self._samples("window", "window_ms", "window_samples", rate, 30.0)
        hop = self._samples("hop", "stride_ms", "hop_samples", rate, 20.0)
        if hop > window:
            raise ConfigError(f"hop_samples={hop} must not exceed window_samples={window}")
        if self.fft_len is None:
            fft_len = 1 << max(0, math.ceil(math.log2(window)))
            if not _MIN_FFT_LEN <= fft_len <= _MAX_FFT_LEN:
                raise ConfigError(f"window_samples={window} needs fft_len={fft_len}; TFLM's rfft op supports "
                                  f"{_MIN_FFT_LEN}..{_MAX_FFT_LEN}")
            set_("fft_len", fft_len)
        fft_len = need_int("fft_len", _MIN_FFT_LEN, _MAX_FFT_LEN)
        if fft_len & (fft_len - 1):
            raise ConfigError(f"fft_len={fft_len} must be a power of two (as audio_preprocessor.py picks it)")
        if window > fft_len:
            raise ConfigError(f"window_samples={window} must not exceed fft_len={fft_len}")
        need_int("window_scaling_bits", 0, 14)
        need_int("n_channels", 1, 1024)
        need_real("lower_band_hz", 0.0, rate / 2)
        need_real("upper_band_hz", 0.0, rate / 2)
        if not self.lower_band_hz < self.upper_band_hz:
            raise ConfigError(f"band lower_band_hz={self.lower_band_hz:g}, upper_band_hz={self.upper_band_hz:g} "
                              f"must satisfy lower_band_hz < upper_band_hz <= sample_rate_hz/2={rate / 2:g}")
        scaling_bits = need_int("filter_bank_scaling_bits", 0, 14)
        need_int("filter_bank_alignment", 1, 64)
        need_int("filter_bank_channel_block_size", 1, 64)
        need_int("spectral_subtraction_bits", 0, 30)
        need_int("smoothing_bits", 0, 31)
        need_real("even_smoothing", 0.0, 1.0)
        need_real("odd_smoothing", 0.0, 1.0)
        need_real("min_signal_remaining", 0.0, 1.0)
        need_bool("clamping")
        need_bool("enable_pcan")
        need_real("pcan_strength", 0.0, 1e3)
        need_real("pcan_offset", 0.0, 1e9)
        gain_bits = need_int("pcan_gain_bits", 0, 31)
        need_int("pcan_smoothing_bits", 0, 31)
        need_int("pcan_snr_shift", 0, 63)
        need_int("log_scale_bits", 0, 30)
        if self.correction_bits is None:
            set_("correction_bits", int(math.log2(fft_len)) - int(scaling_bits / 2))
        correction = need_int("correction_bits", 0, 31)
        if self.enable_pcan:
            input_bits = self.pcan_smoothing_bits - correction
            if input_bits < 0:
                raise ConfigError(f"pcan_smoothing_bits={self.pcan_smoothing_bits} must be >= correction_bits="
                                  f"{correction} (the PCAN table's input bits would be negative)")
            if gain_bits - correction - PCAN_SNR_BITS < 1:
                raise ConfigError(f"pcan_gain_bits={gain_bits} must exceed correction_bits + {PCAN_SNR_BITS} = "
                                  f"{correction + PCAN_SNR_BITS} (TFLM's pcan op refuses a SNR shift < 1)")
        if self.output not in OUTPUTS:
            raise ConfigError(f"output={self.output!r} is not supported; expected one of {OUTPUTS}")
        need_real("int8_feature_scale", 1e-6, 1e6)
        need_real("int8_feature_range", 1e-6, 1e6)
        value_div = int(self.int8_feature_scale * self.int8_feature_range + 0.5)
        if not 1 <= value_div < 2**31:
            raise ConfigError(f"int8_feature_scale * int8_feature_range = {value_div} must round to an integer "
                              f"divisor in [1, 2**31)")

    def _samples(self, what: str, ms_name: str, samples_name: str, rate: int, default_ms: float) -> int:
        ms = getattr(self, ms_name)
        samples = getattr(self, samples_name)
        if ms is not None and (not _is_real(ms) or ms <= 0):
            raise ConfigError(f"{ms_name}={ms!r} must be a positive number of milliseconds")
        if samples is not None and (not _is_int(samples) or samples <= 0):
            raise ConfigError(f"{samples_name}={samples!r} must be a positive integer")
        if ms is None and samples is None:
            ms = default_ms
        from_ms = int(ms * rate / 1000) if ms is not None else None
        if samples is None:
            samples = from_ms
        elif from_ms is not None and from_ms != samples:
            raise ConfigError(f"{ms_name}={ms:g} gives {from_ms} samples at {rate} Hz but "
                              f"{samples_name}={samples}; give one of them")
        if samples <= 0:
            raise ConfigError(f"{ms_name}={ms:g} is less than one sample at {rate} Hz")
        object.__setattr__(self, samples_name, int(samples))
        if ms is not None:
            object.__setattr__(self, ms_name, float(ms))
        return int(samples)

    # -- derived -----------------------------------------------------------
    @property
    def bins(self) -> int:
        """Values per feature frame."""
        return self.n_channels

    @property
    def frame_ms(self) -> float:
        return 1000.0 * self.hop_samples / self.sample_rate_hz

    @property
    def output_dtype(self) -> np.dtype:
        return np.dtype(np.int8) if self.output == "int8" else np.dtype(np.int16)

    def frames_in(self, n_samples: int) -> int:
        """Complete frames in a stream of ``n_samples`` samples."""
        if n_samples < self.window_samples:
            return 0
        return 1 + (n_samples - self.window_samples) // self.hop_samples

    def describe(self) -> str:
        return (f"{self.family} {self.output} window={self.window_samples} hop={self.hop_samples} "
                f"fft_len={self.fft_len} channels={self.n_channels} pcan={'on' if self.enable_pcan else 'off'}")

    # -- (de)serialisation -------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TflmFrontendSpec":
        if not isinstance(data, dict):
            raise ConfigError(f"a frontend spec must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown {TFLM_FAMILY} spec key(s) {unknown}; expected keys among {sorted(known)}")
        return cls(**data)


#: micro_speech's preprocessor: 30 ms window, 20 ms hop at 16 kHz, 512-point FFT,
#: 40 channels 125..7500 Hz, noise reduction, PCAN, log, int8 (the fixture model).
MICRO_SPEECH_SPEC = TflmFrontendSpec()


# ---------------------------------------------------------------------------
# Integer state of each stage
# ---------------------------------------------------------------------------

def _frozen(*arrays: np.ndarray) -> None:
    for arr in arrays:
        arr.setflags(write=False)


@dataclass(frozen=True)
class WindowStage:
    """``SignalWindow``: int16 Hann weights in q(shift)."""

    weights: np.ndarray
    shift: int

    @classmethod
    def from_spec(cls, spec: TflmFrontendSpec) -> "WindowStage":
        weights = hann_window_weights(spec.window_samples, spec.window_scaling_bits)
        _frozen(weights)
        return cls(weights, spec.window_scaling_bits)


@dataclass(frozen=True)
class FftStage:
    """``SignalFftAutoScale`` + ``SignalRfft`` (int16, kiss_fft) of ``fft_len`` points."""

    kiss: KissFftrInt16Tables

    @classmethod
    def from_spec(cls, spec: TflmFrontendSpec) -> "FftStage":
        return cls(kiss_fftr_int16_tables(spec.fft_len))


@dataclass(frozen=True)
class FilterBankStage:
    """``SignalEnergy`` over [start_index, end_index) + ``SignalFilterBank`` + ``SignalFilterBankSquareRoot``."""

    tables: FilterBankTables

    @classmethod
    def from_spec(cls, spec: TflmFrontendSpec) -> "FilterBankStage":
        return cls(filter_bank_tables(spec.fft_len // 2 + 1, spec.sample_rate_hz, spec.n_channels,
                                      spec.lower_band_hz, spec.upper_band_hz, spec.filter_bank_scaling_bits,
                                      spec.filter_bank_alignment, spec.filter_bank_channel_block_size))


@dataclass(frozen=True)
class NoiseReductionStage:
    """``SignalFilterBankSpectralSubtraction`` coefficients, q(spectral_subtraction_bits).

    Mirrors ``filter_bank_ops.filter_bank_spectral_subtraction``: ``int(x * 2**bits)``
    (truncation), ``one_minus = 2**bits - smoothing``, odd smoothing 0 means
    "same as even".  The noise estimate itself is frontend state.
    """

    smoothing: int
    one_minus_smoothing: int
    alternate_smoothing: int
    alternate_one_minus_smoothing: int
    min_signal_remaining: int
    smoothing_bits: int
    spectral_subtraction_bits: int
    clamping: bool

    @classmethod
    def from_spec(cls, spec: TflmFrontendSpec) -> "NoiseReductionStage":
        unit = 1 << spec.spectral_subtraction_bits
        odd = spec.odd_smoothing if spec.odd_smoothing != 0 else spec.even_smoothing
        smoothing = int(spec.even_smoothing * unit)
        alternate = int(odd * unit)
        return cls(smoothing, int(unit - smoothing), alternate, int(unit - alternate),
                   int(spec.min_signal_remaining * unit), spec.smoothing_bits, spec.spectral_subtraction_bits,
                   spec.clamping)


@dataclass(frozen=True)
class PcanStage:
    """``SignalPCAN``: gain table and SNR shift (``enabled=False`` skips the stage)."""

    enabled: bool
    gain_lut: np.ndarray
    snr_shift: int

    @classmethod
    def from_spec(cls, spec: TflmFrontendSpec) -> "PcanStage":
        if not spec.enable_pcan:
            lut = np.zeros(125, np.int16)
        else:
            lut = pcan_gain_lut(spec.pcan_strength, spec.pcan_offset,
                                spec.pcan_smoothing_bits - spec.correction_bits, spec.pcan_gain_bits)
        _frozen(lut)
        # TFLM's pcan op wrapper computes gain_bits - correction_bits - 12, checks it, then
        # passes 6 whatever it was; pcan_snr_shift (default 6) is what the op receives.
        return cls(spec.enable_pcan, lut, spec.pcan_snr_shift)


@dataclass(frozen=True)
class LogStage:
    """``SignalFilterBankLog``: ``output_scale = 2**log_scale_bits``, input shifted by ``correction_bits``."""

    output_scale: int
    correction_bits: int

    @classmethod
    def from_spec(cls, spec: TflmFrontendSpec) -> "LogStage":
        return cls(1 << spec.log_scale_bits, spec.correction_bits)


@dataclass(frozen=True)
class Int8Stage:
    """micro_speech's int8 conversion: ``(v * 256 + rounding) / div - 128``, clamped.

    ``div = int(int8_feature_scale * int8_feature_range + 0.5)`` (666 for
    25.6 * 26) and ``rounding = int(div / 2)``, as ``audio_preprocessor.py``.
    """

    enabled: bool
    value_scale: int
    value_rounding: int
    value_div: int
    offset: int

    @classmethod
    def from_spec(cls, spec: TflmFrontendSpec) -> "Int8Stage":
        value_div = int((spec.int8_feature_scale * spec.int8_feature_range) + 0.5)
        return cls(spec.output == "int8", 256, int(value_div / 2), value_div, -128)


@dataclass(frozen=True)
class TflmStages:
    """The integer state of every stage, built once from a spec."""

    window: WindowStage
    fft: FftStage
    filter_bank: FilterBankStage
    noise_reduction: NoiseReductionStage
    pcan: PcanStage
    log: LogStage
    int8: Int8Stage

    @classmethod
    def from_spec(cls, spec: TflmFrontendSpec) -> "TflmStages":
        return cls(WindowStage.from_spec(spec), FftStage.from_spec(spec), FilterBankStage.from_spec(spec),
                   NoiseReductionStage.from_spec(spec), PcanStage.from_spec(spec), LogStage.from_spec(spec),
                   Int8Stage.from_spec(spec))


# ---------------------------------------------------------------------------
# The streaming frontend
# ---------------------------------------------------------------------------

class TflmFrontend:
    """The micro_speech audio preprocessor as a streaming frontend.

    ``stages`` overrides the integer state derived from the spec (for example
    tables read from a firmware build); by default it is
    ``TflmStages.from_spec(spec)``.
    """

    def __init__(self, spec: TflmFrontendSpec, stages: TflmStages | None = None) -> None:
        if not isinstance(spec, TflmFrontendSpec):
            raise ConfigError(f"spec must be a TflmFrontendSpec, got {type(spec).__name__}")
        if stages is not None and not isinstance(stages, TflmStages):
            raise ConfigError(f"stages must be a TflmStages, got {type(stages).__name__}")
        self.spec = spec
        self._stages_override = stages
        self._prepared = False

    # ------------------------------------------------------------------
    def prepare(self) -> "TflmFrontend":
        """Build every stage's integer state and every buffer; every error surfaces here."""
        spec = self.spec
        stages = self._stages_override or TflmStages.from_spec(spec)
        self._check_stages(stages)
        self.stages = stages
        self._quantize = stages.int8.enabled
        fb = stages.filter_bank.tables
        # Zero outside the filter bank's bins.  A block-padded channel may read a few bins
        # past the spectrum (TFLM reads whatever follows in its arena); the weights there
        # are zero, so any value gives the same sums: zeros are kept there.
        reach = int((fb.channel_frequency_starts.astype(np.int64) + fb.channel_widths).max())
        nr, pcan, log, q = stages.noise_reduction, stages.pcan, stages.log, stages.int8
        self._pack = pack_signal_frames(
            window=stages.window.weights, window_shift=stages.window.shift, kiss=stages.fft.kiss,
            energy_start=fb.start_index, energy_end=fb.end_index,
            energy_len=max(stages.fft.kiss.fft_len // 2 + 1, reach), weights=fb.weights, unweights=fb.unweights,
            channel_frequency_starts=fb.channel_frequency_starts, channel_weight_starts=fb.channel_weight_starts,
            channel_widths=fb.channel_widths, smoothing=nr.smoothing, one_minus_smoothing=nr.one_minus_smoothing,
            alternate_smoothing=nr.alternate_smoothing, alternate_one_minus_smoothing=nr.alternate_one_minus_smoothing,
            min_signal_remaining=nr.min_signal_remaining, smoothing_bits=nr.smoothing_bits,
            spectral_subtraction_bits=nr.spectral_subtraction_bits, clamping=nr.clamping, enable_pcan=pcan.enabled,
            gain_lut=pcan.gain_lut, snr_shift=pcan.snr_shift, log_output_scale=log.output_scale,
            correction_bits=log.correction_bits, value_scale=q.value_scale, value_rounding=q.value_rounding,
            value_div=q.value_div, offset=q.offset)
        self._noise_estimate = self._pack.noise_estimate
        self._hop, self._window = spec.hop_samples, spec.window_samples
        self._buf = np.zeros(spec.window_samples + _BLOCK_FRAMES * spec.hop_samples, np.int16)
        self._state = np.zeros(1, np.int64)  # [samples buffered in _buf]
        self._allocate_output(_BLOCK_FRAMES)
        self._prepared = True
        self.reset()
        return self

    def _check_stages(self, stages: TflmStages) -> None:
        spec = self.spec
        fb = stages.filter_bank.tables
        if stages.window.weights.shape != (spec.window_samples,):
            raise ConfigError(f"window weights have shape {stages.window.weights.shape}; "
                              f"expected ({spec.window_samples},)")
        if stages.fft.kiss.fft_len < spec.window_samples:
            raise ConfigError(f"fft_len={stages.fft.kiss.fft_len} is shorter than window_samples={spec.window_samples}")
        if fb.channel_widths.shape != (spec.n_channels + 1,):
            raise ConfigError(f"filter bank has {fb.channel_widths.shape[0] - 1} channels; "
                              f"expected n_channels={spec.n_channels}")
        n_bins = stages.fft.kiss.fft_len // 2 + 1
        if not 0 <= fb.start_index <= fb.end_index <= n_bins:
            raise ConfigError(f"energy range [{fb.start_index}, {fb.end_index}) must lie within {n_bins} bins")
        wreach = fb.channel_weight_starts.astype(np.int64) + fb.channel_widths
        if fb.weights.shape != fb.unweights.shape or (wreach > fb.weights.shape[0]).any() \
                or (fb.channel_frequency_starts < 0).any() or (fb.channel_weight_starts < 0).any():
            raise ConfigError("filter bank tables are inconsistent: a channel reads past its weights")
        if (fb.weights < 0).any() or (fb.unweights < 0).any():
            raise ConfigError("filter bank weights must be >= 0 (TFLM's generator makes them so)")
        if stages.pcan.gain_lut.shape != (125,):
            raise ConfigError(f"PCAN gain table has shape {stages.pcan.gain_lut.shape}; expected (125,)")
        if stages.int8.value_div < 1:
            raise ConfigError(f"int8 divisor {stages.int8.value_div} must be >= 1")

    def _allocate_output(self, rows: int) -> None:
        self._out_s16 = np.zeros((rows, self.spec.n_channels), np.int16)
        s8_rows = rows if self.stages.int8.enabled else 0
        self._out_s8 = np.zeros((s8_rows, self.spec.n_channels), np.int8)

    def reset(self) -> None:
        """Start a new stream: forget buffered audio and zero the noise estimate (as TFLM's op reset)."""
        self._state[0] = 0
        self._noise_estimate[:] = 0
        self.frames_emitted = 0
        self.samples_seen = 0
        self._last_count = 0

    # ------------------------------------------------------------------
    @property
    def output_dtype(self) -> np.dtype:
        return self.spec.output_dtype

    @property
    def noise_estimate(self) -> np.ndarray:
        """The spectral-subtraction noise estimate after the last frame (uint32, read-only view)."""
        view = self._noise_estimate.view()
        view.setflags(write=False)
        return view

    @property
    def last_frames_int16(self) -> np.ndarray:
        """The FilterbankLog frames of the last ``process`` call (before the int8 conversion)."""
        return self._out_s16[: self._last_count]

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Feed int16 samples; return the frames they complete ([frames, n_channels]).

        int8 frames when ``spec.output == "int8"``, int16 log values otherwise.
        The array is a view valid until the next call.
        """
        if not self._prepared:
            raise ConfigError("process() called before prepare()")
        if not isinstance(samples, np.ndarray) or samples.dtype != np.int16 or samples.ndim != 1:
            raise AudioFormatError(
                f"process() expects a 1-D int16 array of mono samples, got "
                f"{type(samples).__name__} dtype={getattr(samples, 'dtype', None)} ndim={getattr(samples, 'ndim', None)}"
            )
        n_in = samples.shape[0]
        if (self._state[0] + n_in) // self._hop >= self._out_s16.shape[0]:
            self._allocate_output(max((self._state[0] + n_in) // self._hop + 1, 2 * self._out_s16.shape[0]))
        pack = self._pack
        count = stream_signal_frames(samples, self._buf, self._state, self._hop, self._window, pack.params,
                                     pack.tables_s16, pack.tables_i64, pack.work_s16, pack.work_u32, pack.work_u64,
                                     self._out_s16, self._out_s8)
        self.samples_seen += n_in
        self.frames_emitted += count
        self._last_count = count
        if self._quantize:
            return self._out_s8[:count]
        return self._out_s16[:count]


def compute_tflm_features(spec: TflmFrontendSpec, samples: np.ndarray, stages: TflmStages | None = None) -> np.ndarray:
    """Offline: all frames of ``samples`` from a fresh state, as a new array ([frames, n_channels])."""
    frontend = TflmFrontend(spec, stages).prepare()
    return frontend.process(samples).copy()
