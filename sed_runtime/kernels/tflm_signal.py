"""TensorFlow Lite Micro ``signal`` library kernels (the micro_speech frontend), bit for bit.

One frame of the micro_speech audio preprocessor goes through, in this order
(integer formats after each step; "energy units" are squared FFT outputs):

1. ``ApplyWindow``: ``(x * w) >> shift``, saturated to int16      # q15 audio * q(shift) window -> q15
2. ``FftAutoScale``: shift left by ``scale_bits`` so the peak uses all 15 bits
3. ``kiss_fftr`` (kiss_fft v130, ``FIXED_POINT=16``), zero-padded to fft_len
   # int16 spectrum, scaled by 1/fft_len (every stage divides by its radix)
4. ``SpectrumToEnergy``: ``re^2 + im^2`` over ``[start, end)``          # uint32
5. ``FilterbankAccumulateChannels``: triangular mel weights/unweights  # uint64, energy * q12
6. ``FilterbankSqrt``: integer square root, ``>> scale_bits``          # uint32, magnitude * q6
7. ``FilterbankSpectralSubtraction``: stateful noise estimate          # uint32
8. ``ApplyPcanAutoGainControlFixed`` (optional)                        # uint32, q6
9. ``FilterbankLog``: ``output_scale * ln(x << correction_bits)``      # int16
10. micro_speech's int8 conversion: ``(v * 256 + div/2) / div - 128``, clamped   # int8

Mirrors: ``signal/src/{window,fft_auto_scale,max_abs,msb_32,msb_64,rfft_int16,
energy,filter_bank,filter_bank_square_root,square_root_32,square_root_64,
filter_bank_spectral_subtraction,pcan_argc_fixed,filter_bank_log,log}.cc`` and
the kernels in ``signal/micro/kernels/`` of tensorflow/tflite-micro, as built
for a GCC/Clang host or Arm core (the ``__builtin_clz`` path of
``MostSignificantBit32``, not the Xtensa or Hexagon intrinsics), and the
third-party kiss_fft v130 with TFLM's patch.  Step 10 is the integer tail of
``examples/micro_speech/audio_preprocessor.py`` (int32 MUL, ADD, DIV, ADD,
MINIMUM, MAXIMUM, CAST).

Integer widths: C wraps int16/uint32 on every store; Numba computes in int64.
Every stored value is wrapped explicitly (``wrap_i16``, ``& 0xFFFFFFFF``), so
the JIT and ``NUMBA_DISABLE_JIT=1`` give the same integers.  uint64 values are
handled in ``np.uint64`` where they can exceed 2**63.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sed_runtime._numba import njit
from sed_runtime.errors import ConfigError
from sed_runtime.fixedpoint import wrap_i16
from sed_runtime.kernels.cmsis_mfcc import drop_front

__all__ = [
    "KissFftrInt16Tables",
    "kiss_fftr_int16_tables",
    "kiss_factors",
    "LOG_LUT",
    "PCAN_SNR_BITS",
    "PCAN_OUTPUT_BITS",
    "most_significant_bit32",
    "most_significant_bit64",
    "max_abs16",
    "sqrt32",
    "sqrt64",
    "log32",
    "wide_dynamic_function",
    "pcan_shrink",
    "apply_window",
    "fft_auto_scale",
    "kiss_fft_int16",
    "kiss_fftr_int16",
    "spectrum_to_energy",
    "filterbank_accumulate_channels",
    "filterbank_sqrt",
    "filterbank_spectral_subtraction",
    "apply_pcan_auto_gain_control_fixed",
    "filterbank_log",
    "micro_speech_int8",
    "SignalPack",
    "pack_signal_frames",
    "signal_frames",
    "stream_signal_frames",
]

_U32 = 0xFFFFFFFF

# Piecewise-linear correction of log2(1 + f) - f, f in [0, 1), 128 segments
# (signal/src/log.cc kLogLut), in units of 2**-16.
LOG_LUT = np.array([
    0, 224, 442, 654, 861, 1063, 1259, 1450, 1636, 1817, 1992, 2163,
    2329, 2490, 2646, 2797, 2944, 3087, 3224, 3358, 3487, 3611, 3732, 3848,
    3960, 4068, 4172, 4272, 4368, 4460, 4549, 4633, 4714, 4791, 4864, 4934,
    5001, 5063, 5123, 5178, 5231, 5280, 5326, 5368, 5408, 5444, 5477, 5507,
    5533, 5557, 5578, 5595, 5610, 5622, 5631, 5637, 5640, 5641, 5638, 5633,
    5626, 5615, 5602, 5586, 5568, 5547, 5524, 5498, 5470, 5439, 5406, 5370,
    5332, 5291, 5249, 5203, 5156, 5106, 5054, 5000, 4944, 4885, 4825, 4762,
    4697, 4630, 4561, 4490, 4416, 4341, 4264, 4184, 4103, 4020, 3935, 3848,
    3759, 3668, 3575, 3481, 3384, 3286, 3186, 3084, 2981, 2875, 2768, 2659,
    2549, 2437, 2323, 2207, 2090, 1971, 1851, 1729, 1605, 1480, 1353, 1224,
    1094, 963, 830, 695, 559, 421, 282, 142, 0, 0], dtype=np.int64)
LOG_LUT.setflags(write=False)
_LOG_SCALE_LOG2 = 16            # log2 values carry 16 fractional bits
_LOG_SEGMENTS_LOG2 = 7          # 128 table segments
_LOG_COEFF = 45426              # ln(2) in q16 (0.693153..., 2**-16 below ln 2)

PCAN_SNR_BITS = 12              # fractional bits of the PCAN signal-to-noise ratio
PCAN_OUTPUT_BITS = 6            # fractional bits of the PCAN output


# --------------------------------------------------------------------------
# kiss_fft tables (built once, at prepare time, in plain Python)
# --------------------------------------------------------------------------

def kiss_factors(n: int) -> list[tuple[int, int]]:
    """kiss_fft's factorisation of a complex FFT length: [(radix, remaining length), ...].

    Mirrors: ``kf_factor`` (kiss_fft v130): powers of 4 first, then 2, then odd
    radices from 3 up; once the candidate exceeds ``floor(sqrt(n))`` of the
    *original* ``n`` the remainder is taken as one radix.  So 256 -> 4,4,4,4;
    128 -> 4,4,4,2; 240 -> 4,4,3,5.
    """
    factors = []
    p = 4
    floor_sqrt = math.floor(math.sqrt(n))
    while True:
        while n % p:
            p = 2 if p == 4 else 3 if p == 2 else p + 2
            if p > floor_sqrt:
                p = n
        n //= p
        factors.append((p, n))
        if n <= 1:
            return factors


@dataclass(frozen=True)
class KissFftrInt16Tables:
    """Everything ``kiss_fftr`` (FIXED_POINT=16) of one length reads.

    ``factors``: [stages, 2] (radix, sub-length) in kiss_fft order;
    ``leaf_order``: complex input index that lands at each position before
    the first butterfly (kiss_fft's recursive decimation, flattened);
    ``twiddles``: [nfft/2, 2] (cos, sin) of ``-2 pi i / (nfft/2)``;
    ``super_twiddles``: [nfft/4, 2] of ``-pi ((i + 1) / (nfft/2) + 1/2)``.
    Both tables are ``floor(0.5 + 32767 * cos/sin)`` as kiss_fft computes them.
    """

    fft_len: int
    factors: np.ndarray
    leaf_order: np.ndarray
    twiddles: np.ndarray
    super_twiddles: np.ndarray


def _leaf_order(factors: list[tuple[int, int]], n: int) -> np.ndarray:
    order = np.empty(n, np.int64)

    def work(out_offset: int, in_offset: int, fstride: int, level: int) -> None:
        p, m = factors[level]
        if m == 1:
            for j in range(p):
                order[out_offset + j] = in_offset + j * fstride
        else:
            for j in range(p):
                work(out_offset + j * m, in_offset + j * fstride, fstride * p, level + 1)

    work(0, 0, 1, 0)
    return order


def _kiss_cexp_int16(phase: float) -> tuple[int, int]:
    # KISS_FFT_COS/SIN for FIXED_POINT: floor(.5 + SAMP_MAX * cos(phase)) in C doubles (libm via math)
    return math.floor(0.5 + 32767 * math.cos(phase)), math.floor(0.5 + 32767 * math.sin(phase))


def kiss_fftr_int16_tables(fft_len: int) -> KissFftrInt16Tables:
    """Build the state of ``kiss_fftr_alloc(fft_len, 0, ...)`` with FIXED_POINT=16.

    Mirrors: ``RfftInt16Init`` -> ``kiss_fftr_alloc`` -> ``kiss_fft_alloc``.
    Raises ConfigError for lengths TFLM cannot run: odd lengths (kiss_fftr
    returns NULL) and lengths whose half has a prime factor above 5 -- those
    need ``kf_bfly_generic``, whose scratch buffer comes from the allocator
    TFLM patches to return NULL.
    """
    if isinstance(fft_len, bool) or not isinstance(fft_len, (int, np.integer)) or fft_len < 4 or fft_len % 2:
        raise ConfigError(f"fft_len={fft_len!r} must be an even integer >= 4 (kiss_fftr)")
    fft_len = int(fft_len)
    ncfft = fft_len // 2
    factors = kiss_factors(ncfft)
    bad = [p for p, _ in factors if p not in (2, 3, 4, 5)]
    if bad:
        raise ConfigError(
            f"fft_len={fft_len}: fft_len/2={ncfft} has radix {bad[0]}; TFLM's kiss_fft (no scratch allocator) "
            f"runs only lengths whose half factors into 2, 3, 4 and 5"
        )
    pi_kiss = 3.141592653589793238462643383279502884197169399375105820974944
    twiddles = np.empty((ncfft, 2), np.int16)
    for i in range(ncfft):
        twiddles[i] = _kiss_cexp_int16(-2 * pi_kiss * i / ncfft)
    pi_fftr = 3.14159265358979323846264338327
    super_twiddles = np.empty((ncfft // 2, 2), np.int16)
    for i in range(ncfft // 2):
        super_twiddles[i] = _kiss_cexp_int16(-pi_fftr * ((i + 1) / ncfft + 0.5))
    tables = KissFftrInt16Tables(fft_len, np.array(factors, np.int64).reshape(-1, 2), _leaf_order(factors, ncfft),
                                 twiddles, super_twiddles)
    for arr in (tables.factors, tables.leaf_order, tables.twiddles, tables.super_twiddles):
        arr.setflags(write=False)
    return tables


# --------------------------------------------------------------------------
# Scalar helpers
# --------------------------------------------------------------------------

@njit
def most_significant_bit32(x):
    """Bit length of a uint32, with 0 -> 32.

    Mirrors: ``MostSignificantBit32`` (``__GNUC__`` path: ``32 - __builtin_clz(x)``,
    and 32 for x == 0 -- the portable loop would return 0 there).
    A five-step binary search rather than ``fixedpoint.clz32``'s bit loop: it
    runs three times per channel per frame (square root, PCAN, log).
    Assumptions: 0 <= x < 2**32.
    """
    v = np.int64(x)
    if v == 0:
        return np.int64(32)
    n = np.int64(1)
    if v >= 0x10000:
        v >>= 16
        n += 16
    if v >= 0x100:
        v >>= 8
        n += 8
    if v >= 0x10:
        v >>= 4
        n += 4
    if v >= 0x4:
        v >>= 2
        n += 2
    if v >= 0x2:
        n += 1
    return n


@njit
def most_significant_bit64(x):
    """Bit length of a uint64, with 0 -> 64.

    Mirrors: ``MostSignificantBit64`` (``__GNUC__`` path).
    Assumptions: ``x`` is an np.uint64 (or a non-negative int64).
    """
    v = np.uint64(x)
    hi = np.int64(v >> np.uint64(32))
    if hi != 0:
        return np.int64(32) + most_significant_bit32(hi)
    lo = np.int64(v & np.uint64(0xFFFFFFFF))
    if lo == 0:
        return np.int64(64)
    return most_significant_bit32(lo)


@njit
def max_abs16(x):
    """Largest |x[i]| as int16, with TFLM's handling of -32768.

    Mirrors: ``MaxAbs16`` (portable path).
    Scaling and overflow: ``-value`` is computed in int and stored to an
    int16 ``max``; for -32768 that store wraps to -32768, after which every
    later sample greater than the (negative) running maximum replaces it, so
    the result can be negative or smaller than the true peak.  Reproduced.
    Assumptions: ``x`` holds int16 values.
    """
    m = np.int64(0)
    for i in range(x.shape[0]):
        v = np.int64(x[i])
        if v > m:
            m = v
        elif -v > m:
            m = wrap_i16(-v)
    return m


@njit
def sqrt32(num):
    """Rounded integer square root of a uint32, as uint16.

    Mirrors: ``Sqrt32`` (bit-by-bit, then ``++res`` when the remainder exceeds
    ``res`` unless ``res == 0xFFFF``).
    Assumptions: 0 <= num < 2**32.
    """
    n = np.int64(num)
    if n == 0:
        return np.int64(0)
    res = np.int64(0)
    max_bit_number = (np.int64(32) - most_significant_bit32(n)) | 1
    bit = np.int64(1) << (np.int64(31) - max_bit_number)
    iterations = (np.int64(31) - max_bit_number) // 2 + 1
    for _ in range(iterations):
        if n >= res + bit:
            n -= res + bit
            res = (res >> 1) + bit
        else:
            res >>= 1
        bit >>= 2
    if n > res and res != 0xFFFF:
        res += 1
    return res & 0xFFFF


@njit
def sqrt64(num):
    """Rounded integer square root of a uint64, as uint32.

    Mirrors: ``Sqrt64`` (values below 2**32 go to ``Sqrt32``).
    Scaling and overflow: uint64 arithmetic, nothing wraps.
    Assumptions: ``num`` is an np.uint64 (or a non-negative int64).
    """
    n = np.uint64(num)
    if (n >> np.uint64(32)) == np.uint64(0):
        return sqrt32(np.int64(n))
    res = np.uint64(0)
    max_bit_number = (np.int64(64) - most_significant_bit64(n)) | 1
    bit = np.uint64(1) << np.uint64(63 - max_bit_number)
    iterations = (np.int64(63) - max_bit_number) // 2 + 1
    one = np.uint64(1)
    two = np.uint64(2)
    for _ in range(iterations):
        if n >= res + bit:
            n -= res + bit
            res = (res >> one) + bit
        else:
            res >>= one
        bit >>= two
    if n > res and res != np.uint64(0xFFFFFFFF):
        res += one
    return np.int64(res)


@njit
def log32(x, out_scale):
    """``out_scale * ln(x)`` in integers.

    Mirrors: ``Log32`` and ``Log2FractionPart32`` (signal/src/log.cc).
    Scaling and overflow: log2(x) in q16 = integer part (bit length - 1) plus
    the mantissa fraction corrected by a 128-segment linear interpolation of
    ``LOG_LUT`` (``>> 16`` floors, also for a negative slope); times
    ``_LOG_COEFF`` (ln 2 in q16) with rounding, ``>> 16``; then
    ``(out_scale * loge + 2**15) >> 16`` in *uint32* arithmetic -- the product
    wraps modulo 2**32 as in C when ``out_scale * loge`` exceeds it (e.g.
    out_scale = 2**16 for any x > 2).
    Measured error, 270 000 x in [2, 2**32): ``|log32(x, s) / s - ln x| <= 2.7e-3``
    (within 0.64 LSB at s = 64, micro_speech's scale; 2.9 LSB at s = 1024).
    Assumptions: 1 <= x < 2**32 (x == 0 is undefined in TFLM: callers skip x <= 1);
    0 <= out_scale < 2**32.
    """
    integer = most_significant_bit32(x) - 1
    frac = np.int64(x) - (np.int64(1) << integer)  # int32 in C, exact here
    if integer < _LOG_SCALE_LOG2:
        frac <<= _LOG_SCALE_LOG2 - integer
    else:
        frac >>= integer - _LOG_SCALE_LOG2
    base_seg = frac >> (_LOG_SCALE_LOG2 - _LOG_SEGMENTS_LOG2)
    c0 = LOG_LUT[base_seg]
    c1 = LOG_LUT[base_seg + 1]
    seg_base = base_seg << (_LOG_SCALE_LOG2 - _LOG_SEGMENTS_LOG2)
    rel_pos = ((c1 - c0) * (frac - seg_base)) >> _LOG_SCALE_LOG2
    fraction = (frac + c0 + rel_pos) & _U32
    log2 = ((integer << _LOG_SCALE_LOG2) + fraction) & _U32  # q16
    loge = ((_LOG_COEFF * log2 + 32768) >> _LOG_SCALE_LOG2) & _U32  # ln(x) in q16
    return (((np.int64(out_scale) * loge + 32768) & _U32) >> _LOG_SCALE_LOG2)


@njit
def wide_dynamic_function(x, lut):
    """PCAN gain for a noise estimate ``x``: a piecewise quadratic read from ``lut``.

    Mirrors: ``WideDynamicFunction`` (signal/src/pcan_argc_fixed.cc).
    Scaling and overflow: ``x <= 2`` reads ``lut[x]``; otherwise the segment is
    the bit length of ``x`` and ``frac`` its next 10 bits; ``((a2 * frac) >> 5
    + (a1 << 5)) * frac`` is int32 (never overflows for int16 table entries:
    |.| < 2**31 - 2**21), rounded with ``+ 2**14 >> 15``; plus ``y0`` and cast
    to int16 (wraps).
    Assumptions: 0 <= x < 2**32; ``lut`` holds 125 int16 (TFLM's layout).
    """
    if x <= 2:
        return np.int64(lut[x])
    interval = most_significant_bit32(x)
    base = 4 * interval - 6
    if interval < 11:
        frac = (np.int64(x) << (11 - interval)) & 0x3FF
    else:
        frac = (np.int64(x) >> (interval - 11)) & 0x3FF
    result = (np.int64(lut[base + 2]) * frac) >> 5
    result += np.int64(lut[base + 1]) << 5
    result *= frac
    result = (result + (1 << 14)) >> 15
    result += np.int64(lut[base])
    return wrap_i16(result)


@njit
def pcan_shrink(x):
    """``x**2 / 4`` below 2, ``x - 1`` above, from q12 to q6.

    Mirrors: ``PcanShrink`` (kPcanSnrBits = 12, kPcanOutputBits = 6).
    Scaling and overflow: ``(x * x) >> 20`` (x < 8192, so x*x < 2**26) or
    ``(x >> 6) - 64``; uint32 throughout, nothing wraps.
    Assumptions: 0 <= x < 2**32.
    """
    if x < (2 << PCAN_SNR_BITS):
        return (x * x) >> (2 + 2 * PCAN_SNR_BITS - PCAN_OUTPUT_BITS)
    return (x >> (PCAN_SNR_BITS - PCAN_OUTPUT_BITS)) - (1 << PCAN_OUTPUT_BITS)


# --------------------------------------------------------------------------
# Per-stage kernels (array in, array out, no allocation)
# --------------------------------------------------------------------------

@njit
def apply_window(x, window, shift, out):
    """``out[i] = sat16((x[i] * window[i]) >> shift)``.

    Mirrors: ``tflm_signal::ApplyWindow`` (signal/src/window.cc).
    Scaling and overflow: int32 product (exact), arithmetic shift right
    (floors), saturated to int16.
    Assumptions: ``x`` and ``out`` have ``window.shape[0]`` elements (``out``
    may be ``x``); 0 <= shift <= 31.
    """
    for i in range(window.shape[0]):
        raw = (np.int64(x[i]) * np.int64(window[i])) >> shift  # q15 * q(shift) >> shift = q15
        if raw < -32768:
            raw = -32768
        elif raw > 32767:
            raw = 32767
        out[i] = raw


@njit
def fft_auto_scale(x, out):
    """Shift ``x`` left so its peak uses 15 bits; return the shift (``scale_bits``).

    Mirrors: ``FftAutoScale`` (signal/src/fft_auto_scale.cc).
    Scaling and overflow: ``scale_bits = 16 - MostSignificantBit32(max) - 1``,
    clamped at 0 (an all-zero frame has ``MostSignificantBit32(0) == 32`` and
    gets 0).  ``max`` comes from :func:`max_abs16`, so with a -32768 sample the
    shift may be too large; the int ``x * 2**scale_bits`` is then cast to int16
    and wraps, as in C.  A negative ``max`` reads as a huge uint32: shift 0.
    Assumptions: ``out`` has ``x``'s length (may be ``x``).
    """
    m = max_abs16(x)
    scale_bits = np.int64(15) - most_significant_bit32(m & _U32)
    if scale_bits <= 0:
        scale_bits = np.int64(0)
    for i in range(x.shape[0]):
        out[i] = wrap_i16(np.int64(x[i]) << scale_bits)
    return scale_bits


# ---- kiss_fft, FIXED_POINT=16 ---------------------------------------------
# C: smul(a,b) = (int32)a*b; sround(x) = (int16)((x + (1<<14)) >> 15);
# C_FIXDIV(c, k) multiplies both parts by SAMP_MAX/k with sround (so /2 is
# *16383/32768, not a shift); every assignment to a kiss_fft_cpx field wraps
# to int16.  Each butterfly below runs one whole stage: all ``blocks`` blocks
# of ``p * m`` values (kiss_fft's recursion calls it once per block).

@njit
def _sround(x):
    return wrap_i16((x + 16384) >> 15)


@njit
def _fixdiv(x, k):
    # (x * (32767 // k) + 2**14) >> 15 stays within int16 for int16 x and k >= 2: no wrap needed
    return (np.int64(x) * (32767 // k) + 16384) >> 15


@njit
def _cmul(ar, ai, br, bi):
    return _sround(ar * br - ai * bi), _sround(ar * bi + ai * br)


@njit
def _kf_bfly2(f, blocks, fstride, tw, m):
    for blk in range(blocks):
        base = blk * 2 * m
        for u in range(m):
            a = 2 * (base + u)
            b = a + 2 * m
            ar = _fixdiv(f[a], 2)
            ai = _fixdiv(f[a + 1], 2)
            br = _fixdiv(f[b], 2)
            bi = _fixdiv(f[b + 1], 2)
            t = u * fstride
            tr, ti = _cmul(br, bi, np.int64(tw[t, 0]), np.int64(tw[t, 1]))
            f[b] = wrap_i16(ar - tr)
            f[b + 1] = wrap_i16(ai - ti)
            f[a] = wrap_i16(ar + tr)
            f[a + 1] = wrap_i16(ai + ti)


@njit
def _kf_bfly3(f, blocks, fstride, tw, m):
    epi3_i = np.int64(tw[fstride * m, 1])
    for blk in range(blocks):
        base = blk * 3 * m
        for k in range(m):
            i0 = 2 * (base + k)
            i1 = i0 + 2 * m
            i2 = i1 + 2 * m
            f0r = _fixdiv(f[i0], 3)
            f0i = _fixdiv(f[i0 + 1], 3)
            f1r = _fixdiv(f[i1], 3)
            f1i = _fixdiv(f[i1 + 1], 3)
            f2r = _fixdiv(f[i2], 3)
            f2i = _fixdiv(f[i2 + 1], 3)
            t1 = k * fstride
            t2 = 2 * t1
            s1r, s1i = _cmul(f1r, f1i, np.int64(tw[t1, 0]), np.int64(tw[t1, 1]))
            s2r, s2i = _cmul(f2r, f2i, np.int64(tw[t2, 0]), np.int64(tw[t2, 1]))
            s3r = wrap_i16(s1r + s2r)
            s3i = wrap_i16(s1i + s2i)
            s0r = wrap_i16(s1r - s2r)
            s0i = wrap_i16(s1i - s2i)
            fmr = wrap_i16(f0r - (s3r >> 1))
            fmi = wrap_i16(f0i - (s3i >> 1))
            s0r = _sround(s0r * epi3_i)
            s0i = _sround(s0i * epi3_i)
            f[i0] = wrap_i16(f0r + s3r)
            f[i0 + 1] = wrap_i16(f0i + s3i)
            f[i2] = wrap_i16(fmr + s0i)
            f[i2 + 1] = wrap_i16(fmi - s0r)
            f[i1] = wrap_i16(fmr - s0i)
            f[i1 + 1] = wrap_i16(fmi + s0r)


@njit
def _kf_bfly4(f, blocks, fstride, tw, m):
    for blk in range(blocks):
        base = blk * 4 * m
        for k in range(m):
            i0 = 2 * (base + k)
            i1 = i0 + 2 * m
            i2 = i1 + 2 * m
            i3 = i2 + 2 * m
            f0r = _fixdiv(f[i0], 4)
            f0i = _fixdiv(f[i0 + 1], 4)
            f1r = _fixdiv(f[i1], 4)
            f1i = _fixdiv(f[i1 + 1], 4)
            f2r = _fixdiv(f[i2], 4)
            f2i = _fixdiv(f[i2 + 1], 4)
            f3r = _fixdiv(f[i3], 4)
            f3i = _fixdiv(f[i3 + 1], 4)
            t1 = k * fstride
            s0r, s0i = _cmul(f1r, f1i, np.int64(tw[t1, 0]), np.int64(tw[t1, 1]))
            s1r, s1i = _cmul(f2r, f2i, np.int64(tw[2 * t1, 0]), np.int64(tw[2 * t1, 1]))
            s2r, s2i = _cmul(f3r, f3i, np.int64(tw[3 * t1, 0]), np.int64(tw[3 * t1, 1]))
            s5r = wrap_i16(f0r - s1r)
            s5i = wrap_i16(f0i - s1i)
            f0r = wrap_i16(f0r + s1r)
            f0i = wrap_i16(f0i + s1i)
            s3r = wrap_i16(s0r + s2r)
            s3i = wrap_i16(s0i + s2i)
            s4r = wrap_i16(s0r - s2r)
            s4i = wrap_i16(s0i - s2i)
            f[i2] = wrap_i16(f0r - s3r)
            f[i2 + 1] = wrap_i16(f0i - s3i)
            f[i0] = wrap_i16(f0r + s3r)
            f[i0 + 1] = wrap_i16(f0i + s3i)
            f[i1] = wrap_i16(s5r + s4i)  # forward transform
            f[i1 + 1] = wrap_i16(s5i - s4r)
            f[i3] = wrap_i16(s5r - s4i)
            f[i3 + 1] = wrap_i16(s5i + s4r)


@njit
def _kf_bfly5(f, blocks, fstride, tw, m):
    yar = np.int64(tw[fstride * m, 0])
    yai = np.int64(tw[fstride * m, 1])
    ybr = np.int64(tw[2 * fstride * m, 0])
    ybi = np.int64(tw[2 * fstride * m, 1])
    for blk in range(blocks):
        base = blk * 5 * m
        for u in range(m):
            i0 = 2 * (base + u)
            i1 = i0 + 2 * m
            i2 = i1 + 2 * m
            i3 = i2 + 2 * m
            i4 = i3 + 2 * m
            s0r = _fixdiv(f[i0], 5)
            s0i = _fixdiv(f[i0 + 1], 5)
            f1r = _fixdiv(f[i1], 5)
            f1i = _fixdiv(f[i1 + 1], 5)
            f2r = _fixdiv(f[i2], 5)
            f2i = _fixdiv(f[i2 + 1], 5)
            f3r = _fixdiv(f[i3], 5)
            f3i = _fixdiv(f[i3 + 1], 5)
            f4r = _fixdiv(f[i4], 5)
            f4i = _fixdiv(f[i4 + 1], 5)
            t = u * fstride
            s1r, s1i = _cmul(f1r, f1i, np.int64(tw[t, 0]), np.int64(tw[t, 1]))
            s2r, s2i = _cmul(f2r, f2i, np.int64(tw[2 * t, 0]), np.int64(tw[2 * t, 1]))
            s3r, s3i = _cmul(f3r, f3i, np.int64(tw[3 * t, 0]), np.int64(tw[3 * t, 1]))
            s4r, s4i = _cmul(f4r, f4i, np.int64(tw[4 * t, 0]), np.int64(tw[4 * t, 1]))
            s7r = wrap_i16(s1r + s4r)
            s7i = wrap_i16(s1i + s4i)
            s10r = wrap_i16(s1r - s4r)
            s10i = wrap_i16(s1i - s4i)
            s8r = wrap_i16(s2r + s3r)
            s8i = wrap_i16(s2i + s3i)
            s9r = wrap_i16(s2r - s3r)
            s9i = wrap_i16(s2i - s3i)
            f[i0] = wrap_i16(s0r + (s7r + s8r))
            f[i0 + 1] = wrap_i16(s0i + (s7i + s8i))
            s5r = wrap_i16(s0r + _sround(s7r * yar) + _sround(s8r * ybr))
            s5i = wrap_i16(s0i + _sround(s7i * yar) + _sround(s8i * ybr))
            s6r = wrap_i16(_sround(s10i * yai) + _sround(s9i * ybi))
            s6i = wrap_i16(-_sround(s10r * yai) - _sround(s9r * ybi))
            f[i1] = wrap_i16(s5r - s6r)
            f[i1 + 1] = wrap_i16(s5i - s6i)
            f[i4] = wrap_i16(s5r + s6r)
            f[i4 + 1] = wrap_i16(s5i + s6i)
            s11r = wrap_i16(s0r + _sround(s7r * ybr) + _sround(s8r * yar))
            s11i = wrap_i16(s0i + _sround(s7i * ybr) + _sround(s8i * yar))
            s12r = wrap_i16(-_sround(s10i * ybi) + _sround(s9i * yai))
            s12i = wrap_i16(_sround(s10r * ybi) - _sround(s9r * yai))
            f[i2] = wrap_i16(s11r + s12r)
            f[i2 + 1] = wrap_i16(s11i + s12i)
            f[i3] = wrap_i16(s11r - s12r)
            f[i3 + 1] = wrap_i16(s11i - s12i)


@njit
def kiss_fft_int16(fin, fout, factors, leaf_order, twiddles):
    """Forward complex FFT of ``nfft`` int16 pairs, kiss_fft fixed-point.

    Mirrors: ``kiss_fft`` -> ``kf_work`` with ``kf_bfly2/3/4/5`` (kiss_fft v130,
    FIXED_POINT=16, forward), out of place.  The recursion is flattened: the
    leaves are copied in ``leaf_order``, then each stage runs from the
    innermost radix outwards over its independent blocks (the same butterflies
    on the same data as the recursion, so the same integers).
    Scaling and overflow: each radix-p stage first divides its inputs by p
    (``C_FIXDIV``: ``* (32767 // p)``, rounded ``>> 15``), so the output is the
    DFT / nfft; twiddle products round half up (``+ 2**14 >> 15``); every
    stored value wraps to int16.
    Assumptions: ``fin``/``fout`` hold 2*nfft int16 (interleaved re, im), distinct;
    tables from :func:`kiss_fftr_int16_tables` (radices 2..5 only).
    """
    n = leaf_order.shape[0]
    for j in range(n):
        src = 2 * leaf_order[j]
        fout[2 * j] = fin[src]
        fout[2 * j + 1] = fin[src + 1]
    levels = factors.shape[0]
    for level in range(levels - 1, -1, -1):
        fstride = 1  # = number of blocks of this stage
        for k in range(level):
            fstride *= factors[k, 0]
        p = factors[level, 0]
        m = factors[level, 1]
        if p == 4:
            _kf_bfly4(fout, fstride, fstride, twiddles, m)
        elif p == 2:
            _kf_bfly2(fout, fstride, fstride, twiddles, m)
        elif p == 3:
            _kf_bfly3(fout, fstride, fstride, twiddles, m)
        else:
            _kf_bfly5(fout, fstride, fstride, twiddles, m)


@njit
def kiss_fftr_int16(timedata, tmpbuf, freqdata, factors, leaf_order, twiddles, super_twiddles):
    """Real FFT of ``nfft`` int16 samples into ``nfft/2 + 1`` int16 complex bins.

    Mirrors: ``tflm_signal::RfftInt16Apply`` -> ``kiss_fftr`` (kiss_fft v130
    tools/kiss_fftr.c, FIXED_POINT=16).
    Scaling and overflow: the half-length complex FFT (DFT / (nfft/2)), then
    each bin pair is halved again (``C_FIXDIV(., 2)``) and recombined with the
    super-twiddles; the final ``HALF_OF`` is ``>> 1`` of an int sum (floors),
    so the spectrum is the DFT of the input / nfft (q15 in, q15 - log2(nfft)
    out).  ``-(-32768)`` and the DC/Nyquist sums wrap to int16 as in C.
    Assumptions: ``timedata`` holds nfft int16 (read as nfft/2 complex pairs),
    ``tmpbuf`` nfft int16 scratch, ``freqdata`` 2*(nfft/2 + 1) int16.
    """
    ncfft = leaf_order.shape[0]
    kiss_fft_int16(timedata, tmpbuf, factors, leaf_order, twiddles)
    tdc_r = _fixdiv(tmpbuf[0], 2)
    tdc_i = _fixdiv(tmpbuf[1], 2)
    freqdata[0] = wrap_i16(tdc_r + tdc_i)  # DC: sum of even + odd samples
    freqdata[2 * ncfft] = wrap_i16(tdc_r - tdc_i)  # Nyquist
    freqdata[1] = 0
    freqdata[2 * ncfft + 1] = 0
    for k in range(1, ncfft // 2 + 1):
        fpk_r = _fixdiv(tmpbuf[2 * k], 2)
        fpk_i = _fixdiv(tmpbuf[2 * k + 1], 2)
        fpnk_r = _fixdiv(tmpbuf[2 * (ncfft - k)], 2)
        fpnk_i = _fixdiv(wrap_i16(-np.int64(tmpbuf[2 * (ncfft - k) + 1])), 2)
        f1k_r = wrap_i16(fpk_r + fpnk_r)
        f1k_i = wrap_i16(fpk_i + fpnk_i)
        f2k_r = wrap_i16(fpk_r - fpnk_r)
        f2k_i = wrap_i16(fpk_i - fpnk_i)
        tw_r, tw_i = _cmul(f2k_r, f2k_i, np.int64(super_twiddles[k - 1, 0]), np.int64(super_twiddles[k - 1, 1]))
        freqdata[2 * k] = (f1k_r + tw_r) >> 1  # (int16 + int16) >> 1 fits int16
        freqdata[2 * k + 1] = (f1k_i + tw_i) >> 1
        freqdata[2 * (ncfft - k)] = (f1k_r - tw_r) >> 1
        freqdata[2 * (ncfft - k) + 1] = (tw_i - f1k_i) >> 1


@njit
def spectrum_to_energy(spectrum, start_index, end_index, out):
    """``out[i] = re[i]**2 + im[i]**2`` for i in [start_index, end_index).

    Mirrors: ``SpectrumToEnergy`` (signal/src/energy.cc); bins outside the
    range are left untouched, as in TFLM (micro_speech zeroes them).
    Scaling and overflow: two int32 squares summed in int32 and stored as
    uint32; the only case beyond int32 (both parts -32768, 2**31) wraps in C
    but lands on the same uint32, which is what is stored here.
    Assumptions: ``spectrum`` interleaved int16 (re, im); ``out`` uint32.
    """
    for i in range(start_index, end_index):
        re = np.int64(spectrum[2 * i])
        im = np.int64(spectrum[2 * i + 1])
        out[i] = re * re + im * im


@njit
def filterbank_accumulate_channels(weights, unweights, channel_frequency_starts, channel_weight_starts,
                                   channel_widths, energy, work):
    """Triangular mel filter bank: ``num_channels + 1`` uint64 accumulations.

    Mirrors: ``FilterbankAccumulateChannels`` (signal/src/filter_bank.cc).
    Each band ``i`` accumulates ``weights * energy`` (its rising edge) and
    ``unweights * energy`` (the falling edge of the previous channel, carried
    into ``work[i + 1]``).  The SignalFilterBank kernel returns ``work[1:]``.
    Scaling and overflow: energy (uint32) * q(scaling bits) weight, summed in
    uint64.  With non-negative weights nothing wraps (< 2**47 per product).
    Assumptions: ``work`` has ``channel_widths.shape[0]`` (= num_channels + 1)
    uint64 elements; weights >= 0 (as TFLM's generator makes them).
    """
    weight_acc = np.int64(0)
    unweight_acc = np.int64(0)
    for i in range(channel_widths.shape[0]):
        freq_start = np.int64(channel_frequency_starts[i])
        weight_start = np.int64(channel_weight_starts[i])
        for j in range(channel_widths[i]):
            e = np.int64(energy[freq_start + j])
            weight_acc += np.int64(weights[weight_start + j]) * e
            unweight_acc += np.int64(unweights[weight_start + j]) * e
        work[i] = weight_acc
        weight_acc = unweight_acc
        unweight_acc = 0


@njit
def filterbank_sqrt(x, scale_down_bits, out):
    """``out[i] = Sqrt64(x[i]) >> scale_down_bits``.

    Mirrors: ``FilterbankSqrt`` (signal/src/filter_bank_square_root.cc); the
    micro_speech graph passes FftAutoScale's ``scale_bits``, undoing the
    pre-FFT gain (energy grew by 2**(2*scale_bits), its root by 2**scale_bits).
    Scaling and overflow: rounded integer square root (uint32), logical shift.
    Assumptions: ``x`` uint64, ``out`` uint32 with at least ``x``'s length;
    0 <= scale_down_bits <= 31.
    """
    for i in range(x.shape[0]):
        out[i] = sqrt64(x[i]) >> scale_down_bits


@njit
def filterbank_spectral_subtraction(x, out, noise_estimate, smoothing, one_minus_smoothing,
                                    alternate_smoothing, alternate_one_minus_smoothing,
                                    min_signal_remaining, smoothing_bits, spectral_subtraction_bits, clamping):
    """Noise reduction: subtract a slowly tracking per-channel noise floor.

    Mirrors: ``FilterbankSpectralSubtraction`` (signal/src/
    filter_bank_spectral_subtraction.cc).  Even channels use ``smoothing``,
    odd channels ``alternate_smoothing``.
    Scaling and overflow: ``signal << smoothing_bits`` wraps as uint32; the
    estimate is ``(signal_up * s + estimate * (1 - s)) >> spectral_subtraction_bits``
    (uint64 sum, then truncated to uint32); the output is ``max((signal_up -
    min(estimate, signal_up)) >> smoothing_bits, signal * min_signal_remaining
    >> spectral_subtraction_bits)``.  With ``clamping`` an estimate above the
    signal is pulled down to it.  All shifts floor.
    Assumptions: ``x``, ``out``, ``noise_estimate`` uint32 of equal length
    (``noise_estimate`` is the state, updated in place); coefficients in
    [0, 2**spectral_subtraction_bits], spectral_subtraction_bits <= 30,
    0 <= smoothing_bits <= 31.
    """
    for i in range(x.shape[0]):
        if (i & 1) == 0:
            s = np.int64(smoothing)
            oms = np.int64(one_minus_smoothing)
        else:
            s = np.int64(alternate_smoothing)
            oms = np.int64(alternate_one_minus_smoothing)
        signal = np.int64(x[i])
        signal_up = (signal << smoothing_bits) & _U32
        estimate = ((signal_up * s + np.int64(noise_estimate[i]) * oms) >> spectral_subtraction_bits) & _U32
        noise_estimate[i] = estimate
        if estimate > signal_up:
            estimate = signal_up
            if clamping:
                noise_estimate[i] = estimate
        floor = ((signal * np.int64(min_signal_remaining)) >> spectral_subtraction_bits) & _U32
        subtracted = (signal_up - estimate) >> smoothing_bits
        out[i] = subtracted if subtracted > floor else floor


@njit
def apply_pcan_auto_gain_control_fixed(gain_lut, snr_shift, noise_estimate, x):
    """Per-channel automatic gain control (PCAN), in place on ``x``.

    Mirrors: ``ApplyPcanAutoGainControlFixed`` (signal/src/pcan_argc_fixed.cc);
    the SignalPCAN kernel copies its input to its output first, then calls it
    on the output.
    Scaling and overflow: gain = :func:`wide_dynamic_function` of the noise
    estimate, read as uint32 (a negative int16 gain sign-extends to a huge
    uint32, as in C); ``snr = (x * gain) >> snr_shift`` in uint64, truncated
    to uint32 (q12); output :func:`pcan_shrink` (q6).
    Assumptions: ``noise_estimate`` and ``x`` uint32 of equal length; 0 <= snr_shift <= 63.
    """
    shift = np.uint64(snr_shift)
    for i in range(x.shape[0]):
        gain = np.uint64(wide_dynamic_function(np.int64(noise_estimate[i]), gain_lut) & _U32)
        snr = np.int64(((np.uint64(x[i]) * gain) >> shift) & np.uint64(_U32))  # q12
        x[i] = pcan_shrink(snr)  # q6


@njit
def filterbank_log(x, output_scale, correction_bits, out):
    """``out[i] = min(Log32(x[i] << correction_bits, output_scale), 32767)``, 0 for inputs <= 1.

    Mirrors: ``FilterbankLog`` (signal/src/filter_bank_log.cc).
    Scaling and overflow: the left shift wraps as uint32 (C), then
    :func:`log32`; the uint32 result saturates at INT16_MAX.
    Assumptions: ``x`` uint32, ``out`` int16; 0 <= correction_bits <= 31;
    ``output_scale`` is the int32 option, read as uint32 (as the C call does).
    """
    scale = np.int64(output_scale) & _U32
    for i in range(x.shape[0]):
        scaled = (np.int64(x[i]) << correction_bits) & _U32
        if scaled > 1:
            value = log32(scaled, scale)
            out[i] = value if value < 32767 else 32767
        else:
            out[i] = 0


@njit
def micro_speech_int8(features, value_scale, value_rounding, value_div, offset, out):
    """micro_speech's int16 -> int8 feature conversion.

    Mirrors: the int32 tail of ``audio_preprocessor.py`` as the converted model
    runs it: ``MUL`` by ``value_scale``, ``ADD value_rounding`` (the script's
    ``int(value_div / 2)``), ``DIV`` by
    ``value_div`` (C truncation toward zero), ``ADD offset``, clamp to
    [-128, 127], cast to int8.
    Scaling and overflow: int32 arithmetic; with int16 features and
    ``|value_scale| <= 2**15`` nothing overflows.
    Assumptions: value_div >= 1.
    """
    for i in range(features.shape[0]):
        v = np.int64(features[i]) * value_scale + value_rounding
        q = abs(v) // value_div  # truncating division: the sign applies to the magnitude
        if v < 0:
            q = -q
        q += offset
        if q < -128:
            q = -128
        elif q > 127:
            q = 127
        out[i] = q


# --------------------------------------------------------------------------
# The whole frontend, frame by frame
# --------------------------------------------------------------------------
# One call carries ~40 tables, buffers and constants.  Passed one by one, Numba's
# dispatcher spends ~2.5 us per call unboxing them (more than a third of a
# frame), so they travel packed in a few arrays; SignalPack names the layout.

# Indices into the int64 ``params`` array.
_P_WINDOW_LEN, _P_WINDOW_SHIFT, _P_FFT_LEN, _P_LEVELS, _P_N_WEIGHTS, _P_CHANNELS = 0, 1, 2, 3, 4, 5
_P_ENERGY_START, _P_ENERGY_END, _P_ENERGY_LEN = 6, 7, 8
_P_SMOOTHING, _P_ONE_MINUS, _P_ALT_SMOOTHING, _P_ALT_ONE_MINUS, _P_MIN_REMAINING = 9, 10, 11, 12, 13
_P_SMOOTHING_BITS, _P_SUBTRACTION_BITS, _P_CLAMPING = 14, 15, 16
_P_PCAN, _P_SNR_SHIFT, _P_LOG_SCALE, _P_CORRECTION_BITS = 17, 18, 19, 20
_P_VALUE_SCALE, _P_VALUE_ROUNDING, _P_VALUE_DIV, _P_OFFSET = 21, 22, 23, 24
_N_PARAMS = 25
_GAIN_LUT_LEN = 125


@dataclass(frozen=True)
class SignalPack:
    """The arguments of :func:`signal_frames` after the samples, packed.

    ``params`` (int64): sizes and integer constants (``_P_*`` indices);
    ``tables_s16``: window, twiddles, super-twiddles, filter-bank weights,
    unweights, frequency starts, weight starts, widths, PCAN gain table, in
    that order; ``tables_i64``: kiss factors then leaf order; ``work_s16``:
    frame (fft_len, zero past the window), FFT scratch (fft_len), spectrum
    (fft_len + 2); ``work_u32``: energy (``energy_len``, zero outside the
    filter bank's bins), channels, noise estimate (the stream state);
    ``work_u64``: the filter bank's num_channels + 1 accumulators.
    """

    params: np.ndarray
    tables_s16: np.ndarray
    tables_i64: np.ndarray
    work_s16: np.ndarray
    work_u32: np.ndarray
    work_u64: np.ndarray

    @property
    def noise_estimate(self) -> np.ndarray:
        n = int(self.params[_P_CHANNELS])
        return self.work_u32[self.work_u32.shape[0] - n:]


def pack_signal_frames(*, window, window_shift, kiss, energy_start, energy_end, energy_len, weights, unweights,
                       channel_frequency_starts, channel_weight_starts, channel_widths, smoothing,
                       one_minus_smoothing, alternate_smoothing, alternate_one_minus_smoothing, min_signal_remaining,
                       smoothing_bits, spectral_subtraction_bits, clamping, enable_pcan, gain_lut, snr_shift,
                       log_output_scale, correction_bits, value_scale, value_rounding, value_div, offset) -> SignalPack:
    """Pack the integer state of every stage (and fresh buffers) for :func:`signal_frames`."""
    n_channels = channel_widths.shape[0] - 1
    if gain_lut.shape != (_GAIN_LUT_LEN,):
        raise ConfigError(f"PCAN gain table has shape {gain_lut.shape}; expected ({_GAIN_LUT_LEN},)")
    params = np.zeros(_N_PARAMS, np.int64)
    params[_P_WINDOW_LEN] = window.shape[0]
    params[_P_WINDOW_SHIFT] = window_shift
    params[_P_FFT_LEN] = kiss.fft_len
    params[_P_LEVELS] = kiss.factors.shape[0]
    params[_P_N_WEIGHTS] = weights.shape[0]
    params[_P_CHANNELS] = n_channels
    params[_P_ENERGY_START] = energy_start
    params[_P_ENERGY_END] = energy_end
    params[_P_ENERGY_LEN] = energy_len
    params[_P_SMOOTHING] = smoothing
    params[_P_ONE_MINUS] = one_minus_smoothing
    params[_P_ALT_SMOOTHING] = alternate_smoothing
    params[_P_ALT_ONE_MINUS] = alternate_one_minus_smoothing
    params[_P_MIN_REMAINING] = min_signal_remaining
    params[_P_SMOOTHING_BITS] = smoothing_bits
    params[_P_SUBTRACTION_BITS] = spectral_subtraction_bits
    params[_P_CLAMPING] = bool(clamping)
    params[_P_PCAN] = bool(enable_pcan)
    params[_P_SNR_SHIFT] = snr_shift
    params[_P_LOG_SCALE] = log_output_scale
    params[_P_CORRECTION_BITS] = correction_bits
    params[_P_VALUE_SCALE] = value_scale
    params[_P_VALUE_ROUNDING] = value_rounding
    params[_P_VALUE_DIV] = value_div
    params[_P_OFFSET] = offset
    parts = [window, kiss.twiddles, kiss.super_twiddles, weights, unweights, channel_frequency_starts,
             channel_weight_starts, channel_widths, gain_lut]
    tables_s16 = np.concatenate([np.asarray(a, np.int16).reshape(-1) for a in parts])
    tables_i64 = np.concatenate([kiss.factors.reshape(-1), kiss.leaf_order]).astype(np.int64)
    fft_len = kiss.fft_len
    pack = SignalPack(params, tables_s16, tables_i64, np.zeros(3 * fft_len + 2, np.int16),
                      np.zeros(energy_len + 2 * n_channels, np.uint32), np.zeros(n_channels + 1, np.uint64))
    for arr in (params, tables_s16, tables_i64):
        arr.setflags(write=False)
    return pack


@njit
def signal_frames(samples, n_frames, hop, params, tables_s16, tables_i64, work_s16, work_u32, work_u64,
                  out_s16, out_s8):
    """micro_speech features of ``n_frames`` windows of ``samples``, hop ``hop``.

    Mirrors: the audio preprocessor graph, one ``Invoke`` per frame, in
    order (the noise estimate in ``work_u32`` carries from frame to frame and
    from call to call, as the op's persistent buffer).  Frame k reads
    ``samples[k*hop : k*hop + window_len]``.  Writes rows ``0..n_frames-1`` of
    ``out_s16`` (the FilterbankLog output) and, when ``out_s8`` has rows, of
    ``out_s8`` (the int8 conversion).
    Scaling and overflow: see each stage.
    Assumptions: the packed arrays come from :func:`pack_signal_frames`.
    """
    # ---- unpack (views, no copies) -----------------------------------------
    window_len = params[_P_WINDOW_LEN]
    fft_len = params[_P_FFT_LEN]
    ncfft = fft_len // 2
    n_weights = params[_P_N_WEIGHTS]
    n_channels = params[_P_CHANNELS]
    o = 0
    window = tables_s16[o:o + window_len]
    o += window_len
    twiddles = tables_s16[o:o + 2 * ncfft].reshape((ncfft, 2))
    o += 2 * ncfft
    super_twiddles = tables_s16[o:o + 2 * (ncfft // 2)].reshape((ncfft // 2, 2))
    o += 2 * (ncfft // 2)
    weights = tables_s16[o:o + n_weights]
    o += n_weights
    unweights = tables_s16[o:o + n_weights]
    o += n_weights
    frequency_starts = tables_s16[o:o + n_channels + 1]
    o += n_channels + 1
    weight_starts = tables_s16[o:o + n_channels + 1]
    o += n_channels + 1
    widths = tables_s16[o:o + n_channels + 1]
    o += n_channels + 1
    gain_lut = tables_s16[o:o + _GAIN_LUT_LEN]
    levels = params[_P_LEVELS]
    factors = tables_i64[:2 * levels].reshape((levels, 2))
    leaf_order = tables_i64[2 * levels:2 * levels + ncfft]
    frame = work_s16[:fft_len]
    frame_w = work_s16[:window_len]
    fft_tmp = work_s16[fft_len:2 * fft_len]
    spectrum = work_s16[2 * fft_len:3 * fft_len + 2]
    energy_len = params[_P_ENERGY_LEN]
    energy = work_u32[:energy_len]
    channels = work_u32[energy_len:energy_len + n_channels]
    noise_estimate = work_u32[energy_len + n_channels:energy_len + 2 * n_channels]
    shift = params[_P_WINDOW_SHIFT]
    energy_start = params[_P_ENERGY_START]
    energy_end = params[_P_ENERGY_END]
    quantize = out_s8.shape[0] > 0

    # ---- one Invoke per frame -----------------------------------------------
    for k in range(n_frames):
        base = k * hop
        apply_window(samples[base:base + window_len], window, shift, frame_w)  # q15
        scale_bits = fft_auto_scale(frame_w, frame_w)  # q15 << scale_bits
        kiss_fftr_int16(frame, fft_tmp, spectrum, factors, leaf_order, twiddles, super_twiddles)  # / fft_len
        spectrum_to_energy(spectrum, energy_start, energy_end, energy)  # uint32
        filterbank_accumulate_channels(weights, unweights, frequency_starts, weight_starts, widths, energy,
                                       work_u64)  # uint64
        filterbank_sqrt(work_u64[1:], scale_bits, channels)  # uint32, scale_bits undone
        filterbank_spectral_subtraction(channels, channels, noise_estimate, params[_P_SMOOTHING],
                                        params[_P_ONE_MINUS], params[_P_ALT_SMOOTHING], params[_P_ALT_ONE_MINUS],
                                        params[_P_MIN_REMAINING], params[_P_SMOOTHING_BITS],
                                        params[_P_SUBTRACTION_BITS], params[_P_CLAMPING] != 0)
        if params[_P_PCAN] != 0:
            apply_pcan_auto_gain_control_fixed(gain_lut, params[_P_SNR_SHIFT], noise_estimate, channels)  # q6
        row = out_s16[k]
        filterbank_log(channels, params[_P_LOG_SCALE], params[_P_CORRECTION_BITS], row)
        if quantize:
            micro_speech_int8(row, params[_P_VALUE_SCALE], params[_P_VALUE_ROUNDING], params[_P_VALUE_DIV],
                              params[_P_OFFSET], out_s8[k])


@njit
def stream_signal_frames(samples, buf, state, hop, window_len, params, tables_s16, tables_i64, work_s16, work_u32,
                         work_u64, out_s16, out_s8):
    """Append ``samples`` to the ring ``buf`` and compute every frame they complete; return the count.

    The streaming glue of :class:`sed_runtime.frontend.tflm.TflmFrontend` in
    one call: ``buf[:state[0]]`` holds the samples not yet consumed by a
    complete hop; frames are computed (by :func:`signal_frames`) as soon as a
    window is available and written to rows ``0..count-1`` of ``out_s16`` /
    ``out_s8``, then the consumed hops are dropped.  Any chunking of a stream
    gives the same frames.
    Assumptions: ``buf`` holds at least ``window_len + hop`` samples;
    ``out_s16`` has room for ``(state[0] + len(samples)) // hop`` rows (and
    ``out_s8`` too, or 0 rows for no int8 output).
    """
    capacity = buf.shape[0]
    fill = state[0]
    n_in = samples.shape[0]
    pos = 0
    count = 0
    while True:
        take = min(capacity - fill, n_in - pos)
        for i in range(take):
            buf[fill + i] = samples[pos + i]
        fill += take
        pos += take
        n = 0 if fill < window_len else 1 + (fill - window_len) // hop
        if n:
            signal_frames(buf, n, hop, params, tables_s16, tables_i64, work_s16, work_u32, work_u64,
                          out_s16[count:], out_s8[count:])
            count += n
            fill = drop_front(buf, n * hop, fill)
        if pos >= n_in:
            break
    state[0] = fill
    return count
