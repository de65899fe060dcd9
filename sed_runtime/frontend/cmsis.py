"""Streaming CMSIS-DSP q15 frontend: int16 audio in, q8.7 (or int8) frames out.

Lifecycle (as TFLM kernels): build with a :class:`FrontendSpec` ->
:meth:`CmsisFrontend.prepare` (all tables, all buffers, all validation) ->
:meth:`CmsisFrontend.process` any number of times -> :meth:`CmsisFrontend.reset`
to start a new stream.

Streaming contract: ``process(samples)`` accepts any number of int16 samples
and returns every frame completed by them, in order.  Frame ``k`` of a stream
covers samples ``[k*hop, k*hop + window)``; feeding the same audio in any
chunking yields the same frames, bit for bit.  The returned array is a view
of an internal buffer, valid until the next call.  After ``prepare()`` a
call allocates nothing unless it is handed a chunk larger than any before
(the output buffer then grows once).
"""

from __future__ import annotations

import numpy as np

from sed_runtime.errors import AudioFormatError, ConfigError
from sed_runtime.fixedpoint import quantize_multiplier
from sed_runtime.frontend.cmsis_tables import MfccTablesQ15, to_q15
from sed_runtime.frontend.spec import FrontendSpec
from sed_runtime.kernels.cmsis_fft import rfft_q15_tables
from sed_runtime.kernels.cmsis_mfcc import drop_front, frames_q15

__all__ = ["CmsisFrontend", "compute_features"]

_BLOCK_FRAMES = 64  # frames computed per kernel call when a chunk is long


def _padded_window_q15(spec: FrontendSpec) -> np.ndarray:
    """Periodic Hann over ``window_samples``, zeros up to ``fft_len`` (a short frame, zero-padded)."""
    n = np.arange(spec.window_samples)
    window = np.zeros(spec.fft_len, np.int16)
    window[: spec.window_samples] = to_q15(0.5 - 0.5 * np.cos(2.0 * np.pi * n / spec.window_samples))
    return window


def _load_tables_npz(path: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in ("window", "filter_pos", "filter_len", "filter_coefs", "dct") if k in data}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read frontend tables {path!r}: {exc}") from exc


class CmsisFrontend:
    """The CMSIS-DSP ``arm_mfcc_q15`` pipeline as a streaming frontend.

    ``tables`` overrides the generated tables with a firmware's own (an
    :class:`MfccTablesQ15`); by default they are generated from the spec
    exactly as ``cmsisdsp.mfcc`` generates them.
    """

    def __init__(self, spec: FrontendSpec, tables: MfccTablesQ15 | None = None) -> None:
        if not isinstance(spec, FrontendSpec):
            raise ConfigError(f"spec must be a FrontendSpec, got {type(spec).__name__}")
        self.spec = spec
        self._tables_override = tables
        self._prepared = False

    # ------------------------------------------------------------------
    def prepare(self) -> "CmsisFrontend":
        """Build tables and buffers; every error surfaces here."""
        spec = self.spec
        if spec.n_mels > spec.fft_len:
            # arm_mfcc_q15 stores the n_mels log-mel values in its fft_len-sample frame buffer
            raise ConfigError(
                f"n_mels={spec.n_mels} must not exceed fft_len={spec.fft_len}: arm_mfcc_q15 writes the log-mel "
                f"values into its fft_len-sample frame buffer, so firmware with this setting overruns memory"
            )
        tables = self._tables_override
        if tables is None and spec.tables_path is not None:
            arrays = _load_tables_npz(spec.tables_path)
            tables = MfccTablesQ15.from_arrays(
                arrays.get("window"), arrays.get("filter_pos"), arrays.get("filter_len"),
                arrays.get("filter_coefs"), arrays.get("dct", np.zeros((0, spec.n_mels), np.int16)),
                fft_len=spec.fft_len, n_mels=spec.n_mels,
            )
        if tables is None:
            tables = MfccTablesQ15.from_config(
                sample_rate_hz=spec.sample_rate_hz, fft_len=spec.fft_len, n_mels=spec.n_mels,
                lower_hz=spec.lower_hz, upper_hz=spec.upper_hz, n_dct=spec.n_dct, window=spec.window,
            )
            if spec.window_samples < spec.fft_len:
                tables = MfccTablesQ15(_padded_window_q15(spec), tables.filter_pos, tables.filter_len,
                                       tables.filter_coefs_q15, tables.dct_q15)
        self._check_tables(tables)
        self.tables = tables
        self._rfft = rfft_q15_tables(spec.fft_len)
        self._dsp = spec.target == "dsp"

        fft_len = spec.fft_len
        self._frame = np.zeros(fft_len, np.int16)
        self._fft_out = np.zeros(2 * fft_len, np.int16)
        self._mag = np.zeros(fft_len // 2 + 1, np.int16)
        self._mel_q31 = np.zeros(spec.n_mels, np.int32)
        self._logmel = np.zeros(spec.n_mels, np.int16)
        self._dct = tables.dct_q15

        if spec.quantization is not None:
            # real = q8.7 / 128 ; q = real / scale + zp  =>  q = v * (1 / (128 * scale)) + zp
            self._qmult, self._qshift = quantize_multiplier(1.0 / (128.0 * spec.quantization.scale))
            self._qzp = spec.quantization.zero_point
        else:
            self._qmult, self._qshift, self._qzp = 0, 0, 0

        self._capacity = spec.window_samples + _BLOCK_FRAMES * spec.hop_samples
        self._buf = np.zeros(self._capacity, np.int16)
        self._allocate_output(_BLOCK_FRAMES)
        self._prepared = True
        self.reset()
        return self

    def _check_tables(self, tables: MfccTablesQ15) -> None:
        spec = self.spec
        if tables.window_q15.shape != (spec.fft_len,):
            raise ConfigError(f"window table has shape {tables.window_q15.shape}; expected ({spec.fft_len},)")
        if tables.filter_pos.shape != (spec.n_mels,):
            raise ConfigError(f"filter_pos has {tables.filter_pos.shape[0]} filters; expected n_mels={spec.n_mels}")
        if tables.dct_q15.shape != (spec.n_dct, spec.n_mels):
            raise ConfigError(f"dct table has shape {tables.dct_q15.shape}; expected ({spec.n_dct}, {spec.n_mels})")

    def _allocate_output(self, rows: int) -> None:
        self._out_q15 = np.zeros((rows, self.spec.bins), np.int16)
        srows = rows if self.spec.quantization is not None else 0
        self._out_s8 = np.zeros((srows, self.spec.bins), np.int8)

    def reset(self) -> None:
        """Forget buffered audio: the next sample starts frame 0 of a new stream."""
        self._fill = 0
        self.frames_emitted = 0
        self.samples_seen = 0
        self._last_count = 0

    # ------------------------------------------------------------------
    @property
    def output_dtype(self) -> np.dtype:
        return np.dtype(np.int8) if self.spec.quantization is not None else np.dtype(np.int16)

    @property
    def last_frames_q15(self) -> np.ndarray:
        """The q8.7 frames of the last ``process`` call (before any int8 quantization)."""
        return self._out_q15[: self._last_count]

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Feed int16 samples; return the frames they complete ([frames, bins]).

        Returns int8 frames when the spec has a quantization, q8.7 int16
        otherwise.  The array is a view valid until the next call.
        """
        if not self._prepared:
            raise ConfigError("process() called before prepare()")
        if not isinstance(samples, np.ndarray) or samples.dtype != np.int16 or samples.ndim != 1:
            raise AudioFormatError(
                f"process() expects a 1-D int16 array of mono samples, got "
                f"{type(samples).__name__} dtype={getattr(samples, 'dtype', None)} ndim={getattr(samples, 'ndim', None)}"
            )
        spec = self.spec
        hop, window = spec.hop_samples, spec.window_samples
        n_in = samples.shape[0]
        bound = (self._fill + n_in) // hop + 1
        if bound > self._out_q15.shape[0]:
            self._allocate_output(max(bound, 2 * self._out_q15.shape[0]))
        count = 0
        pos = 0
        buf = self._buf
        while True:
            take = min(self._capacity - self._fill, n_in - pos)
            if take:
                buf[self._fill:self._fill + take] = samples[pos:pos + take]
                self._fill += take
                pos += take
            n = 0 if self._fill < window else 1 + (self._fill - window) // hop
            if n:
                frames_q15(buf, n, hop, window, self._frame, self.tables.window_q15, self._fft_out, self._mag,
                           self._mel_q31, self._logmel, self._rfft.cfft_twiddles_q15, self._rfft.bit_reversal_swaps,
                           self._rfft.split_a_q15, self._rfft.split_b_q15, self._rfft.split_modifier, self._dsp,
                           self.tables.filter_pos, self.tables.filter_len, self.tables.filter_coefs_q15, self._dct,
                           self._qmult, self._qshift, self._qzp,
                           self._out_q15[count:], self._out_s8[count:])
                count += n
                self._fill = drop_front(buf, n * hop, self._fill)
            if pos >= n_in:
                break
        self.samples_seen += n_in
        self.frames_emitted += count
        self._last_count = count
        if spec.quantization is not None:
            return self._out_s8[:count]
        return self._out_q15[:count]


def compute_features(spec: FrontendSpec, samples: np.ndarray, tables: MfccTablesQ15 | None = None) -> np.ndarray:
    """Offline: all frames of ``samples`` as a new array ([frames, bins]).

    Same integers as streaming the samples through :class:`CmsisFrontend`.
    """
    frontend = CmsisFrontend(spec, tables).prepare()
    frames = frontend.process(samples)
    return frames.copy()
