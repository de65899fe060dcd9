"""The tables of a CMSIS-DSP ``arm_mfcc_q15`` instance.

``arm_mfcc_init_q15`` takes five tables: a q15 window of ``fft_len`` samples; a
sparse mel filter bank made of ``filter_pos`` (first FFT bin of each filter),
``filter_len`` (its number of bins) and the packed q15 ``filter_coefs``; and a
q15 DCT matrix of ``n_dct`` rows by ``n_mels`` columns.  Firmware projects
usually compute them once, on a PC, with the helpers of the ``cmsisdsp`` Python
package: ``cmsisdsp.fixedpoint.toQ15``, ``cmsisdsp.mfcc.melFilterMatrix`` and
``cmsisdsp.mfcc.dctMatrix``.  CMSIS-DSP's ``mfccdata.py`` generator uses the
same formulas and the same rounding.  The functions here return the same
integers.  :meth:`MfccTablesQ15.from_arrays` accepts a firmware's own tables
instead.

Float details.  The tables come from float64 ``log``, ``cos``, division and
``numpy.linspace``.  An integer changes only if a last-bit difference in one of
these moves a value across a q15 rounding midpoint, or moves a filter weight
across zero.  Over the configurations in the tests (FFT 32..8192, 10..128 mels,
five sample rates, five bands), no filter coefficient comes closer than 9e-7 LSB
to a midpoint, and no non-zero filter weight is smaller than 2e-6.  No DCT
coefficient (up to 128 mels) comes closer than 2e-4 LSB to a midpoint, and no
window sample (lengths 32..8192) closer than 2.6e-5 LSB.  A last-bit error is
about 1e-16 relative.  So the tables do not depend on the numpy build or the
CPU.  This was checked on a CPU where numpy's ``log`` differs from the C
library's ``log`` in the last bit for about 0.04 % of arguments.

There is one exception: a band edge that falls exactly on an FFT bin.
``upper_hz == sample_rate_hz / 2`` always does, and so does e.g. 7500 Hz with
500 Hz bins.  At such a bin the weight is exactly zero only because ``log``
returns the same bits for the edge and for the bin.  :func:`mel_filter_bank_q15`
says what happens when the weight at the last bin is not zero.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import numpy as np

from sed_runtime.errors import ConfigError
from sed_runtime.fixedpoint import Q15_MAX, Q15_MIN

__all__ = [
    "RFFT_Q15_LENGTHS",
    "MfccTablesQ15",
    "dct_matrix_q15",
    "hamming_window_q15",
    "hann_window_q15",
    "mel_filter_bank_q15",
    "to_q15",
]

#: The transform lengths ``arm_rfft_init_q15`` accepts, hence the FFT lengths
#: of ``arm_mfcc_q15``.
RFFT_Q15_LENGTHS = tuple(1 << k for k in range(5, 14))

_WINDOW_NAMES = ("hann", "hamming")


# --------------------------------------------------------------------------
# Parameter checks
# --------------------------------------------------------------------------


def _fmt(value) -> str:
    """A number as a person would write it: 8000.0 -> '8000', 0.25 -> '0.25'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def _int_param(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{name}={value!r} must be an integer")
    try:
        return operator.index(value)
    except TypeError:
        raise ConfigError(f"{name}={value!r} must be an integer") from None


def _real_param(name: str, value) -> float:
    if isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{name}={value!r} must be a real number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r} must be a real number") from None
    if not math.isfinite(number):
        raise ConfigError(f"{name}={value!r} must be finite")
    return number


def _checked_fft_len(fft_len) -> int:
    n = _int_param("fft_len", fft_len)
    if n not in RFFT_Q15_LENGTHS:
        raise ConfigError(
            f"fft_len={n} must be a power of two in 32..8192 (an arm_rfft_q15 length)"
        )
    return n


def _checked_n_mels(n_mels) -> int:
    n = _int_param("n_mels", n_mels)
    if n < 1:
        raise ConfigError(f"n_mels={n} must be at least 1")
    return n


def _checked_n_dct(n_dct, n_mels: int) -> int:
    n = _int_param("n_dct", n_dct)
    if not 1 <= n <= n_mels:
        raise ConfigError(f"n_dct={n} must be in 1..n_mels={n_mels}")
    return n


def _checked_band(lower_hz, upper_hz, sample_rate_hz) -> tuple[float, float, float]:
    fs = _real_param("sample_rate_hz", sample_rate_hz)
    if fs <= 0.0:
        raise ConfigError(f"sample_rate_hz={_fmt(fs)} must be positive")
    lower = _real_param("lower_hz", lower_hz)
    upper = _real_param("upper_hz", upper_hz)
    if lower < 0.0:
        raise ConfigError(f"lower_hz={_fmt(lower)} must be >= 0")
    if upper <= lower:
        raise ConfigError(f"upper_hz={_fmt(upper)} must be greater than lower_hz={_fmt(lower)}")
    if upper > fs / 2.0:
        raise ConfigError(
            f"upper_hz={_fmt(upper)} must not exceed sample_rate_hz/2={_fmt(fs / 2.0)}"
        )
    return lower, upper, fs


def _index_text(flat_index: int, shape: tuple[int, ...]) -> str:
    return ", ".join(str(int(i)) for i in np.unravel_index(flat_index, shape))


# --------------------------------------------------------------------------
# Conversion to q15
# --------------------------------------------------------------------------


def to_q15(values) -> np.ndarray:
    """Reals to q15 integers, as ``cmsisdsp.fixedpoint.toQ15`` converts them.

    Mirrors: ``cmsisdsp.fixedpoint.toQ15`` (and the ``to_q15`` of CMSIS-DSP's
    ``mfccdata.py``, whose Python ``round`` rounds the same way).

    Scaling and overflow: ``values * 2**15``, rounded half to even (numpy
    ``rint``, which is what the wheel's ``numpy.round`` does), then saturated
    to [-32768, 32767].  So 0.5 LSB -> 0, 1.5 LSB -> 2, 2.5 LSB -> 2,
    -2.5 LSB -> -2, 1.0 -> 32767, -1.0 -> -32768, +-inf -> the nearer limit.

    Assumptions: real input (bool, integer or float) of any shape.  The result
    is int16 with the same shape.  The wheel computes in the input's float
    type, and we compute in float64 (or longdouble).  The two give the same
    integers, because scaling by 2**15 is exact and an overflow to inf
    saturates either way.  We differ from the wheel only where it fails: an
    empty input gives an empty array, integer arrays are scaled in float (the
    wheel overflows on int16), and NaN raises :class:`ConfigError` (the wheel
    raises a bare ``ValueError``).
    """
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise ConfigError(f"values have dtype {array.dtype}; expected real numbers")
    work = array.astype(np.result_type(array.dtype, np.float64))
    nan_at = np.flatnonzero(np.isnan(work))
    if nan_at.size:
        where = f"[{_index_text(nan_at[0], work.shape)}]" if work.ndim else ""
        raise ConfigError(f"values{where}=nan is not a number; expected a real value")
    scaled = np.rint(work * 32768.0)  # half to even
    return np.clip(scaled, Q15_MIN, Q15_MAX).astype(np.int16)


# --------------------------------------------------------------------------
# Windows
# --------------------------------------------------------------------------


def _cosine_window_q15(fft_len, a0: float, a1: float) -> np.ndarray:
    n = _checked_fft_len(fft_len)
    phase = 2.0 * np.pi * np.arange(n) / n  # (2 pi) * n / N, in this order
    return to_q15(a0 - a1 * np.cos(phase))


def hann_window_q15(fft_len) -> np.ndarray:
    """Periodic Hann window: ``to_q15(0.5 - 0.5*cos(2*pi*n/fft_len))``, n < fft_len.

    Mirrors: the window of the CMSIS-DSP firmware golden vectors.  It also
    equals, integer for integer, ``toQ15(scipy.signal.windows.hann(fft_len,
    sym=False))``, the window of CMSIS-DSP's ``mfccdata.py`` (checked for every
    supported length).

    Scaling and overflow: the peak 1.0 at n = fft_len/2 saturates to 32767.
    Rounding is half to even (see :func:`to_q15`).  No sample comes closer
    than 2.6e-5 LSB to a rounding midpoint.

    Assumptions: ``fft_len`` is an ``arm_rfft_q15`` length (32..8192).
    """
    return _cosine_window_q15(fft_len, 0.5, 0.5)


def hamming_window_q15(fft_len) -> np.ndarray:
    """Periodic Hamming window: ``to_q15(0.54 - 0.46*cos(2*pi*n/fft_len))``.

    Mirrors: ``toQ15(scipy.signal.windows.hamming(fft_len, sym=False))``, the
    Hamming window of CMSIS-DSP's ``mfccdata.py``.  The integers are the same
    for every supported length, though the floats differ in the last bits.

    Scaling and overflow: the peak 1.0 saturates to 32767; half to even.  No
    sample comes closer than 2.6e-5 LSB to a rounding midpoint.

    Assumptions: ``fft_len`` is an ``arm_rfft_q15`` length (32..8192).
    """
    return _cosine_window_q15(fft_len, 0.54, 0.46)


# --------------------------------------------------------------------------
# Mel filter bank
# --------------------------------------------------------------------------


def _hz_to_mel(freq_hz):
    """HTK-style mel, ``1127 ln(1 + f/700)``, with the wheel's float64 operation order."""
    return 1127.0 * np.log(1.0 + freq_hz / 700.0)


def _mel_to_hz(mel):
    return 700.0 * (np.exp(mel / 1127.0) - 1.0)


def _triangle_weights(lower_hz: float, upper_hz: float, n_mels: int,
                      sample_rate_hz: float, fft_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Float weights [n_mels, fft_len//2 + 1] (column k = FFT bin k) and the mel edges.

    Each filter is a triangle in mel space.  It rises from edge m to edge m+1,
    falls to edge m+2, and is clipped at zero.  The n_mels+2 edges are evenly
    spaced in mel from lower_hz to upper_hz.  The arithmetic is the wheel's,
    operation for operation.  The edges are mel values of 0-d float64 inputs
    and the bins are mel values of one linspace array, as in the wheel.
    """
    edges = np.linspace(_hz_to_mel(lower_hz), _hz_to_mel(upper_hz), n_mels + 2)
    if not np.all(np.diff(edges) > 0.0):
        raise ConfigError(
            f"lower_hz={_fmt(lower_hz)} and upper_hz={_fmt(upper_hz)} are too close to "
            f"hold n_mels={n_mels} distinct mel edges"
        )
    bins = _hz_to_mel(np.linspace(0.0, sample_rate_hz / 2.0, fft_len // 2 + 1))
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - left) / (centre - left)
    falling = (right - bins) / (right - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[:, 0] = 0.0  # the wheel gives the DC bin no weight
    return weights, edges


def _pack_filters(weights: np.ndarray, band_hz: np.ndarray, config: str):
    """Sparse (pos, len, float coefficients) form of the weight rows.

    Each filter is scanned the way the wheel scans it.  ``pos`` is the first
    bin with a non-zero weight.  The filter ends just before the next zero
    weight.  ``band_hz[m]`` holds filter m's outer edges in Hz, and ``config``
    describes the configuration; both only feed error messages.
    """
    n_mels, n_bins = weights.shape
    positions = np.zeros(n_mels, np.int64)
    lengths = np.zeros(n_mels, np.int64)
    pieces = []
    for m in range(n_mels):
        band = f"mel filter {m} ({band_hz[m, 0]:.1f}..{band_hz[m, 1]:.1f} Hz)"
        nonzero = np.flatnonzero(weights[m] != 0.0)
        if nonzero.size == 0:
            if m == 0:
                raise ConfigError(
                    f"{band} has no FFT bin with a non-zero weight at {config}; "
                    "cmsisdsp.mfcc.melFilterMatrix fails here too. Use fewer mels, "
                    "a larger fft_len or a higher lower_hz"
                )
            # An empty filter keeps the previous filter's range with all-zero
            # coefficients, which is what the wheel's stale loop variables give.
            pos, length = positions[m - 1], lengths[m - 1]
        else:
            pos = nonzero[0]
            zeros_after = np.flatnonzero(weights[m, pos:] == 0.0)
            if zeros_after.size == 0:
                outcome = (
                    "fails" if m == 0
                    else f"silently cuts this filter at the end of filter {m - 1}"
                )
                raise ConfigError(
                    f"{band} is still non-zero at the last FFT bin ({n_bins - 1}) at "
                    f"{config}; cmsisdsp.mfcc.melFilterMatrix {outcome} here. Lower "
                    "upper_hz, or pass the firmware's tables to MfccTablesQ15.from_arrays"
                )
            length = zeros_after[0]
        positions[m] = pos
        lengths[m] = length
        pieces.append(weights[m, pos:pos + length])
    return positions, lengths, np.concatenate(pieces)


def mel_filter_bank_q15(lower_hz, upper_hz, n_mels, sample_rate_hz, fft_len):
    """Sparse q15 mel filter bank for ``arm_mfcc_init_q15``.

    Returns ``(filter_pos, filter_len, filter_coefs_q15)``: uint32[n_mels],
    uint32[n_mels], int16[sum(filter_len)].  Filter m weights FFT bins
    ``filter_pos[m] .. filter_pos[m] + filter_len[m] - 1`` with its slice of
    the packed coefficients.

    Mirrors: ``cmsisdsp.mfcc.melFilterMatrix(Q15, lower_hz, upper_hz, n_mels,
    sample_rate_hz, fft_len)``.  The wheel returns ``(filtLen, filtPos,
    coefs)``; we return the position first.  The filters are triangles on the
    HTK mel scale ``1127 ln(1 + f/700)``.  They have n_mels + 2 equally spaced
    mel edges from lower_hz to upper_hz and a peak weight of 1.  They are not
    area-normalised, and the DC bin always has weight 0.

    Scaling and overflow: coefficients go through :func:`to_q15`, so they are
    rounded half to even and a weight of exactly 1.0 saturates to 32767.

    Where the wheel's scan goes wrong.  The wheel sets a filter's start and
    end inside its scan loop.  When the loop does not set them, the values
    left over from the previous filter (or from none) are used:

    * A filter with no non-zero bin: it is narrower than the bin spacing
      and falls between two bins.  If it is not the first filter, the wheel
      gives it the previous filter's position and length, with all-zero
      coefficients.  That
      band's energy is then 0, which is also what the true empty filter gives.
      We reproduce these integers.  If it is the first filter, the wheel
      raises ``UnboundLocalError``, and we raise :class:`ConfigError`.
    * A filter still non-zero at the last bin (fft_len/2).  The wheel's end
      position is then stale, so the filter is silently cut short (or the
      wheel fails, for the first filter).  Since ``upper_hz`` may not exceed
      ``sample_rate_hz/2``, this can only happen when ``upper_hz`` is exactly
      Nyquist and ``log`` returns different bits for the edge and for the
      Nyquist bin.  The tests check that it does not happen for any supported
      length at 8, 16, 22.05, 44.1 and 48 kHz.  If it ever does, we raise
      :class:`ConfigError` rather than return a table that is wrong or that
      differs from the wheel's.

    Assumptions, checked (ConfigError otherwise): ``fft_len`` is an
    arm_rfft_q15 length, ``0 <= lower_hz < upper_hz <= sample_rate_hz/2``,
    ``n_mels >= 1``.  Arguments are taken as Python numbers (float64), as when
    the wheel is called with Python ints and floats.  numpy float32 arguments
    would make the wheel compute some steps in float32.
    """
    n_fft = _checked_fft_len(fft_len)
    mels = _checked_n_mels(n_mels)
    lower, upper, fs = _checked_band(lower_hz, upper_hz, sample_rate_hz)
    weights, edges = _triangle_weights(lower, upper, mels, fs, n_fft)
    band_hz = np.stack([_mel_to_hz(edges[:-2]), _mel_to_hz(edges[2:])], axis=1)
    config = (
        f"n_mels={mels}, fft_len={n_fft}, sample_rate_hz={_fmt(fs)} "
        f"(bins {_fmt(fs / n_fft)} Hz apart)"
    )
    positions, lengths, coefs = _pack_filters(weights, band_hz, config)
    return positions.astype(np.uint32), lengths.astype(np.uint32), to_q15(coefs)


# --------------------------------------------------------------------------
# DCT
# --------------------------------------------------------------------------


def dct_matrix_q15(n_dct, n_mels) -> np.ndarray:
    """q15 DCT-II matrix int16[n_dct, n_mels] for ``arm_mfcc_init_q15``.

    Row-major, as ``arm_mat_vec_mult_q15`` reads it.  ``.ravel()`` gives the
    flat array that ``arm_mfcc_init_q15`` takes and the wheel returns.

    Mirrors: ``cmsisdsp.mfcc.dctMatrix(Q15, n_dct, n_mels)``.  Entry (k, m) is
    ``cos(k*pi * (m + 0.5)/n_mels) * sqrt(2/n_mels)``, with ``k*pi`` formed
    first as in the wheel.  Every row, row 0 included, is scaled by
    ``sqrt(2/n_mels)``, so the matrix is not orthonormal.

    Scaling and overflow: half to even (see :func:`to_q15`).  Row 0 saturates
    to 32767 when ``n_mels <= 2``.  For n_mels <= 128, no coefficient comes
    closer than 2e-4 LSB to a rounding midpoint.

    Assumptions, checked: ``1 <= n_dct <= n_mels``.
    """
    mels = _checked_n_mels(n_mels)
    rows = _checked_n_dct(n_dct, mels)
    centres = (np.arange(1, mels + 1, dtype=np.float64) - 0.5) / mels
    angles = (np.arange(rows, dtype=np.float64)[:, None] * np.pi) * centres
    return to_q15(np.cos(angles) * math.sqrt(2.0 / mels))


# --------------------------------------------------------------------------
# The five tables together
# --------------------------------------------------------------------------

_FIELD_DTYPES = {
    "window_q15": np.int16,
    "filter_pos": np.uint32,
    "filter_len": np.uint32,
    "filter_coefs_q15": np.int16,
    "dct_q15": np.int16,
}


def _integer_table(name: str, value, ndim: int) -> np.ndarray:
    """``value`` as a fresh array of the field's dtype, if that loses nothing."""
    dtype = np.dtype(_FIELD_DTYPES[name])
    array = np.asarray(value)
    if array.ndim != ndim:
        raise ConfigError(f"{name} has shape {array.shape}; expected a {ndim}-D array")
    if array.size == 0 and array.dtype.kind in "biuf":
        return np.zeros(array.shape, dtype)
    if array.dtype.kind not in "iu":
        raise ConfigError(f"{name} has dtype {array.dtype}; expected integers that fit {dtype}")
    info = np.iinfo(dtype)
    for flat_index in (int(np.argmin(array)), int(np.argmax(array))):
        element = int(array.flat[flat_index])
        if not info.min <= element <= info.max:
            raise ConfigError(
                f"{name}[{_index_text(flat_index, array.shape)}]={element} does not fit "
                f"{dtype} ({info.min}..{info.max})"
            )
    return array.astype(dtype)


def _validated_tables(window_q15, filter_pos, filter_len, filter_coefs_q15, dct_q15,
                      fft_len=None, n_mels=None, n_dct=None) -> tuple[np.ndarray, ...]:
    window = _integer_table("window_q15", window_q15, 1)
    pos = _integer_table("filter_pos", filter_pos, 1)
    length = _integer_table("filter_len", filter_len, 1)
    coefs = _integer_table("filter_coefs_q15", filter_coefs_q15, 1)
    dct = _integer_table("dct_q15", dct_q15, 2)

    if fft_len is None:
        if window.size not in RFFT_Q15_LENGTHS:
            raise ConfigError(
                f"window_q15 has {window.size} samples; expected an arm_rfft_q15 length "
                "(a power of two in 32..8192)"
            )
        n_fft = window.size
    else:
        n_fft = _checked_fft_len(fft_len)
        if window.size != n_fft:
            raise ConfigError(f"window_q15 has {window.size} samples; expected fft_len={n_fft}")

    mels = pos.size if n_mels is None else _checked_n_mels(n_mels)
    if pos.size != mels:
        raise ConfigError(f"filter_pos has {pos.size} entries; expected n_mels={mels}")
    if mels < 1:
        raise ConfigError("filter_pos is empty; expected one entry per mel filter")
    if length.size != mels:
        raise ConfigError(
            f"filter_len has {length.size} entries; expected n_mels={mels} "
            "(the length of filter_pos)"
        )

    total = int(length.sum(dtype=np.int64))
    if coefs.size != total:
        raise ConfigError(
            f"filter_coefs_q15 has {coefs.size} values; expected sum(filter_len)={total}"
        )
    n_bins = n_fft // 2 + 1
    ends = pos.astype(np.int64) + length.astype(np.int64)
    beyond = np.flatnonzero(ends > n_bins)
    if beyond.size:
        m = int(beyond[0])
        raise ConfigError(
            f"filter_pos[{m}]+filter_len[{m}]={int(ends[m])} exceeds fft_len//2+1={n_bins}"
        )

    rows = dct.shape[0] if n_dct is None else _int_param("n_dct", n_dct)
    if dct.shape != (rows, mels):
        raise ConfigError(
            f"dct_q15 has shape {dct.shape}; expected (n_dct, n_mels)=({rows}, {mels})"
        )
    if not 0 <= rows <= mels:
        raise ConfigError(f"dct_q15 has {rows} rows; expected n_dct in 0..n_mels={mels} (0 = log-mel, no DCT)")
    return window, pos, length, coefs, dct


@dataclass(frozen=True, eq=False, repr=False)
class MfccTablesQ15:
    """The five tables ``arm_mfcc_init_q15`` takes, checked against each other.

    Attributes:
        window_q15: int16[fft_len], the window applied before the FFT.
        filter_pos: uint32[n_mels], the first FFT bin of each mel filter.
        filter_len: uint32[n_mels], the number of bins of each mel filter.
        filter_coefs_q15: int16[sum(filter_len)], the filters' weights, packed
            in filter order.
        dct_q15: int16[n_dct, n_mels], row-major.

    Build with :meth:`from_config` (the cmsisdsp generators' integers) or
    :meth:`from_arrays` (a firmware's own tables).  Construction runs the
    checks of :meth:`from_arrays` and stores read-only copies.  ``fft_len``,
    ``n_mels`` and ``n_dct`` are read off the arrays.
    """

    window_q15: np.ndarray
    filter_pos: np.ndarray
    filter_len: np.ndarray
    filter_coefs_q15: np.ndarray
    dct_q15: np.ndarray

    def __post_init__(self):
        arrays = _validated_tables(self.window_q15, self.filter_pos, self.filter_len,
                                   self.filter_coefs_q15, self.dct_q15)
        for name, array in zip(_FIELD_DTYPES, arrays):
            array.setflags(write=False)
            object.__setattr__(self, name, array)

    @property
    def fft_len(self) -> int:
        return int(self.window_q15.size)

    @property
    def n_mels(self) -> int:
        return int(self.filter_pos.size)

    @property
    def n_dct(self) -> int:
        return int(self.dct_q15.shape[0])

    def __repr__(self) -> str:
        return (
            f"MfccTablesQ15(fft_len={self.fft_len}, n_mels={self.n_mels}, "
            f"n_dct={self.n_dct}, n_filter_coefs={self.filter_coefs_q15.size})"
        )

    @classmethod
    def from_config(cls, *, sample_rate_hz, fft_len, n_mels, lower_hz, upper_hz, n_dct,
                    window: str = "hann") -> "MfccTablesQ15":
        """Tables as the cmsisdsp generators make them for this configuration.

        ``window`` is ``"hann"`` (:func:`hann_window_q15`) or ``"hamming"``
        (:func:`hamming_window_q15`).  The mel filter bank comes from
        :func:`mel_filter_bank_q15` and the DCT from :func:`dct_matrix_q15`.
        Any invalid value raises :class:`ConfigError`: fft_len must be a power
        of two in 32..8192, ``0 <= lower_hz < upper_hz <= sample_rate_hz/2``,
        ``n_mels >= 1`` and ``0 <= n_dct <= n_mels`` (0: log-mel, an empty
        DCT).  The same happens for a
        band whose first filter has no FFT bin (see
        :func:`mel_filter_bank_q15`).
        """
        if window not in _WINDOW_NAMES:
            raise ConfigError(
                f"window={window!r} is not supported; expected one of {_WINDOW_NAMES}"
            )
        n_fft = _checked_fft_len(fft_len)
        mels = _checked_n_mels(n_mels)
        rows = 0 if n_dct == 0 and not isinstance(n_dct, bool) else _checked_n_dct(n_dct, mels)
        _checked_band(lower_hz, upper_hz, sample_rate_hz)
        window_q15 = hann_window_q15(n_fft) if window == "hann" else hamming_window_q15(n_fft)
        pos, length, coefs = mel_filter_bank_q15(lower_hz, upper_hz, mels, sample_rate_hz, n_fft)
        dct = dct_matrix_q15(rows, mels) if rows else np.zeros((0, mels), np.int16)
        return cls(window_q15, pos, length, coefs, dct)

    @classmethod
    def from_arrays(cls, window_q15, filter_pos, filter_len, filter_coefs_q15, dct_q15, *,
                    fft_len=None, n_mels=None, n_dct=None) -> "MfccTablesQ15":
        """Tables supplied by the firmware, validated.

        ``dct_q15`` may be 2-D ``[n_dct, n_mels]`` or flat and row-major, as
        ``arm_mfcc_init_q15`` takes it and ``cmsisdsp.mfcc.dctMatrix`` returns
        it.  A flat array is reshaped to ``len(filter_pos)`` columns.
        ``fft_len``, ``n_mels`` and ``n_dct``, when given, must match the
        arrays.  Otherwise they are read off the arrays.

        Each failed check raises one :class:`ConfigError`.  The message names
        the offending value and what was expected.  The checks are: integer
        arrays whose values fit the field's dtype (int16 or uint32); 1-D
        arrays, apart from the DCT; ``len(window_q15) == fft_len``, an
        arm_rfft_q15 length; ``len(filter_len) == len(filter_pos) == n_mels >=
        1``; ``sum(filter_len) == len(filter_coefs_q15)``; ``filter_pos[m] +
        filter_len[m] <= fft_len//2 + 1``; the DCT shape is ``(n_dct,
        n_mels)`` with ``0 <= n_dct <= n_mels`` (0 rows: log-mel).  Zero-length filters are
        accepted, since ``arm_mfcc_q15`` handles them.
        """
        dct = np.asarray(dct_q15)
        if dct.ndim == 1:
            columns = np.asarray(filter_pos).size if n_mels is None else _checked_n_mels(n_mels)
            if columns < 1 or dct.size % columns:
                raise ConfigError(
                    f"dct_q15 has {dct.size} values; expected n_dct*n_mels with n_mels={columns}"
                )
            dct = dct.reshape(dct.size // columns, columns)
        arrays = _validated_tables(window_q15, filter_pos, filter_len, filter_coefs_q15, dct,
                                   fft_len=fft_len, n_mels=n_mels, n_dct=n_dct)
        return cls(*arrays)
