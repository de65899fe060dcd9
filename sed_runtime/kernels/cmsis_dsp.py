"""CMSIS-DSP q15/q31 vector, statistics, fast-math and matrix kernels, bit for bit.

Every kernel mirrors one CMSIS-DSP 1.10 function of the same name as built for
the firmware we reproduce: little-endian, ``ARM_MATH_LOOPUNROLL`` defined, no
MVE or Neon.  The plain C path (no ``ARM_MATH_DSP``: Cortex-M0/M0+/M3 and the
host-built ``cmsisdsp`` Python wheel) is the one implemented.  The
``ARM_MATH_DSP`` path (Cortex-M4/M7/M33) gives the same results for every
kernel here except :func:`arm_mat_vec_mult_q15`, whose ``dsp`` flag selects
between the two; each docstring says what was checked.

Conventions
-----------
* q15 arrays are ``np.int16``, q31 arrays ``np.int32``; scalars come back as
  ``int64`` (q63 results too).  Where CMSIS returns through pointers, the
  kernel returns a tuple in the pointers' order, with the ``arm_status``
  first when CMSIS returns one.
* Kernels write into ``dst`` and allocate nothing.  The block size CMSIS takes
  as an argument is ``len(dst)`` (``len(src)`` for reductions); pass slices
  (views) to process part of a buffer.
* Element-wise kernels may run in place (``dst`` is ``src``), as in CMSIS.
* Every operand is widened to ``int64`` before arithmetic and every C
  truncation or saturation is written out (``wrap_i32``, ``sat_q15`` ...), so
  results are the same compiled and under ``NUMBA_DISABLE_JIT=1``.
* ``>>`` is an arithmetic shift (floor) in C for the signed operands used here
  (gcc and armcc both), and in Python.

Statuses are the ``arm_status`` values: :data:`ARM_MATH_SUCCESS`,
:data:`ARM_MATH_ARGUMENT_ERROR`, :data:`ARM_MATH_NANINF`.
"""

from __future__ import annotations

import math

import numpy as np

from sed_runtime._numba import njit
from sed_runtime.fixedpoint import clz32, sat_q15, sat_q31, wrap_i16, wrap_i32

__all__ = [
    "ARM_MATH_SUCCESS",
    "ARM_MATH_ARGUMENT_ERROR",
    "ARM_MATH_NANINF",
    "arm_mult_q15",
    "arm_absmax_q15",
    "arm_divide_q15",
    "arm_scale_q15",
    "arm_scale_q31",
    "arm_offset_q31",
    "arm_shift_q15",
    "arm_shift_q31",
    "arm_dot_prod_q15",
    "arm_sqrt_q15",
    "arm_sqrt_q31",
    "arm_cmplx_mag_q15",
    "arm_vlog_q15",
    "arm_vlog_q31",
    "arm_mat_vec_mult_q15",
]

ARM_MATH_SUCCESS = 0
ARM_MATH_ARGUMENT_ERROR = -1
ARM_MATH_NANINF = -4


# --------------------------------------------------------------------------
# Constants and tables
# --------------------------------------------------------------------------

def _inv_sqrt_seeds(frac_bits: int, first_num: int, denom: int, count: int) -> np.ndarray:
    """``round(2**frac_bits / sqrt((first_num + i) / denom))`` for i < count, exactly.

    Integer arithmetic only: with ``r = 2**(2*frac_bits) * denom / (first_num + i)``
    the seed is ``floor(sqrt(r) + 1/2) = (floor(sqrt(4*r)) + 1) // 2``, i.e.
    rounded to nearest (no seed is a tie).  Range and error are checked in the
    tests against the float values.
    """
    seeds = [
        (math.isqrt((4 << (2 * frac_bits)) * denom // (first_num + i)) + 1) // 2
        for i in range(count)
    ]
    return np.array(seeds, dtype=np.int32)


# Newton seeds for 1/sqrt(x), x = (8 + i)/32 in [0.25, 1), in q3.28, rounded to
# nearest: the entries arm_sqrt_q31 can index (its table, sqrt_initial_lut_q31,
# has 32 rows; rows 24..31 are never read because the normalized input is < 1).
_SQRT_SEED_Q31 = _inv_sqrt_seeds(28, 8, 32, 24)
# The same for arm_sqrt_q15: x = (4 + i)/16 in [0.25, 1), in q3.12 (rows 0..11
# of sqrt_initial_lut_q15).
_SQRT_SEED_Q15 = _inv_sqrt_seeds(12, 4, 16, 12)

# ln(2) = 1/log2(e), truncated: floor(ln(2) * 2**31) and floor(ln(2) * 2**15).
LN2_Q31 = 0x58B90BFB
LN2_Q15 = 0x58B9


# --------------------------------------------------------------------------
# Scalar helpers
# --------------------------------------------------------------------------

@njit(inline="always")
def _abs_q15(x):
    """|x| saturated: -32768 becomes 32767 (arm_abs_q15 / __QSUB16(0, x))."""
    v = np.int64(x)
    if v > 0:
        return v
    return sat_q15(-v)


@njit(inline="always")
def _smlald_pair(a0, a1, b0, b1, dsp):
    """The term one ``__SMLALD`` adds to its 64-bit accumulator: ``a0*b0 + a1*b1``.

    a0, a1 are the low and high halves of one word, b0, b1 of the other.  The
    DSP instruction is exact.  The portable C emulation CMSIS uses without
    ARM_MATH_DSP adds the two int32 products in int32 before widening, so the
    pair sum wraps: only when a0 = a1 = b0 = b1 = -32768 (2**30 + 2**30).
    """
    p = np.int64(a0) * np.int64(b0) + np.int64(a1) * np.int64(b1)
    if dsp:
        return p
    return wrap_i32(p)


@njit
def _sqrt_q31_positive(x):
    """Square root of a positive q31 by three Newton steps on 1/sqrt.

    Mirrors: the ``in > 0`` branch of arm_sqrt_q31.
    Scaling and overflow: the input is shifted left by an even count to
    [0.25, 1) (q31); the seed is q3.28; each step computes
    ``var1 * (3 - x*var1**2) / 2`` with floor shifts (``>> 28``, ``>> 31``,
    ``>> 29``) and int32 truncation of every intermediate, as C assigns to
    ``q31_t``; the result ``x * var1 >> 28`` is shifted back by half the count.
    Assumptions: 0 < x <= 2**31 - 1.
    """
    sign_bits = clz32(x) - 1
    # keep the shift even so that it halves exactly for the result
    norm = sign_bits if sign_bits % 2 == 0 else sign_bits - 1
    number = np.int64(x) << norm                                   # q31 in [0.25, 1)
    var1 = np.int64(_SQRT_SEED_Q31[(number >> 26) - 8])            # q3.28 ~ 1/sqrt
    for _ in range(3):
        temp = wrap_i32((var1 * var1) >> 28)                       # q3.28 var1**2
        temp = wrap_i32((number * temp) >> 31)                     # q3.28 x*var1**2
        temp = wrap_i32(0x30000000 - temp)                         # q3.28 3 - x*var1**2
        var1 = wrap_i32((var1 * temp) >> 29)                       # q3.28 (halved)
    var1 = wrap_i32((number * var1) >> 28)                         # q31 sqrt(number)
    return var1 >> (norm // 2)


@njit
def _log_q31_scalar(value):
    """Natural log of one q31 value read as an unsigned 32-bit integer, in q5.26.

    Mirrors: ``arm_scalar_log_q31`` (static in arm_vlog_q31.c), Clay Turner's
    bit-by-bit log2.
    Scaling and overflow: the input, as uint32, is normalized to x in [1, 2)
    (q2.30) with ``c = clz`` leading zeros; 31 rounds of ``x = x*x >> 30``
    (floor; x stays below 2**31) produce log2(x) one bit at a time in q26
    (bits below 2**-26 are dropped: the increment reaches 0 after 26 rounds).
    Then ``(log2 - c)`` in q5.26 with int32 wrap (``c == 32``, the input 0,
    gives ``0 - (32 << 26)`` which wraps to -2**31), multiplied by ln(2) in
    q31 (LN2_Q31, truncated) and shifted right by 31 (floor), truncated to
    int32.  Result: ln(value / 2**31) for value > 0.
    Assumptions: value is a q31 integer; negative values are taken modulo
    2**32 (see :func:`arm_vlog_q31`).
    """
    u = np.int64(value) & 0xFFFFFFFF
    c = clz32(u)
    if c == 0:
        x = u >> 1                                                  # q2.30 in [1, 2)
    else:
        x = u << (c - 1)                                            # q2.30 in [1, 2), 0 stays 0
    inc = np.int64(1) << 25                                         # 0.5 in q26
    y = np.int64(0)                                                 # q26 log2(x)
    for _ in range(31):
        x = (x * x) >> 30
        if x >= (np.int64(1) << 31):                                # x*x >= 2.0
            y += inc
            x >>= 1
        inc >>= 1
    tmp = wrap_i32(y - wrap_i32(c << 26))                           # q5.26 log2(value / 2**31)
    return wrap_i32((tmp * LN2_Q31) >> 31)                          # q5.26 ln(value / 2**31)


@njit
def _log_q15_scalar(value):
    """Natural log of one q15 value read as an unsigned 16-bit integer, in q4.11.

    Mirrors: ``arm_scalar_log_q15`` (static in arm_vlog_q15.c).
    Scaling and overflow: as the q31 version with 16-bit words: x in [1, 2)
    in q2.14, 15 rounds of ``x = x*x >> 14`` giving log2 in q11 (the
    increment reaches 0 after 11 rounds), ``(log2 - c)`` in q4.11 (for the
    input 0, ``c = 16`` gives exactly -32768, no wrap), multiplied by ln(2)
    in q15 (LN2_Q15, truncated), shifted right by 15 (floor) and truncated to
    16 bits.  C does the last multiply in unsigned 32-bit arithmetic with a
    logical shift; its low 16 bits equal the signed floor shift used here
    because ``|tmp * LN2_Q15| < 2**31``.
    Assumptions: value is a q15 integer; negative values are taken modulo
    2**16 (see :func:`arm_vlog_q15`).
    """
    u = np.int64(value) & 0xFFFF
    c = clz32(u) - 16
    if c == 0:
        x = u >> 1                                                  # q2.14 in [1, 2)
    else:
        x = u << (c - 1)                                            # q2.14 in [1, 2), 0 stays 0
    inc = np.int64(1) << 10                                         # 0.5 in q11
    y = np.int64(0)                                                 # q11 log2(x)
    for _ in range(15):
        x = (x * x) >> 14
        if x >= (np.int64(1) << 15):                                # x*x >= 2.0
            y += inc
            x >>= 1
        inc >>= 1
    tmp = wrap_i16(y - (c << 11))                                   # q4.11 log2(value / 2**15)
    return wrap_i16((tmp * LN2_Q15) >> 15)                          # q4.11 ln(value / 2**15)


# --------------------------------------------------------------------------
# Basic math
# --------------------------------------------------------------------------

@njit
def arm_mult_q15(src_a, src_b, dst):
    """Element-wise q15 product, ``dst[i] = sat(src_a[i] * src_b[i] >> 15)``.

    Mirrors: arm_mult_q15 (C and DSP paths agree: both form the 32-bit product
    and ``__SSAT(p >> 15, 16)``).
    Scaling and overflow: q15 * q15 = q2.30, shifted right by 15 (floor, no
    rounding), saturated to q15; only -32768 * -32768 saturates (to 32767).
    Assumptions: len(src_a), len(src_b) >= len(dst); dst may be src_a or
    src_b (in place).
    """
    for i in range(dst.shape[0]):
        p = np.int64(src_a[i]) * np.int64(src_b[i])                # q2.30
        dst[i] = sat_q15(p >> 15)                                  # q15


@njit
def arm_scale_q15(src, scale_fract, shift, dst):
    """``dst[i] = sat(src[i] * scale_fract >> (15 - shift))``.

    Mirrors: arm_scale_q15 (C and DSP paths agree).
    Scaling and overflow: q15 * q15 = q2.30, shifted right by ``15 - shift``
    (floor, no rounding), saturated to q15.  The scale is
    ``scale_fract / 32768 * 2**shift``.
    Assumptions: -16 <= shift <= 15, so that the C shift count ``15 - shift``
    is in 0..31 (outside it C's shift is undefined); scale_fract is a q15;
    len(src) >= len(dst); in place allowed.
    """
    k_shift = 15 - np.int64(shift)
    scale = np.int64(scale_fract)
    for i in range(dst.shape[0]):
        p = np.int64(src[i]) * scale                               # q2.30
        dst[i] = sat_q15(p >> k_shift)                             # q15


@njit
def arm_scale_q31(src, scale_fract, shift, dst):
    """``dst[i] = sat((src[i] * scale_fract >> 32) << (shift + 1))``.

    Mirrors: arm_scale_q31 (no DSP-specific code).
    Scaling and overflow: q31 * q31 = q2.62, shifted right by 32 (floor) to a
    q31 value that is *half* the product, then shifted by ``shift + 1``: left
    with saturation to q31 when ``shift >= -1`` (C detects overflow by
    shifting back, which equals saturating the exact shift), right (floor)
    otherwise.  Because of the ``>> 32``, for ``shift >= 0`` the least
    significant bit of every unsaturated result is 0.
    Assumptions: -32 <= shift <= 30 (C shift counts 0..31); scale_fract is a
    q31; len(src) >= len(dst); in place allowed.
    """
    k_shift = np.int64(shift) + 1
    scale = np.int64(scale_fract)
    for i in range(dst.shape[0]):
        half = (np.int64(src[i]) * scale) >> 32                    # q31, product / 2
        if k_shift >= 0:
            dst[i] = sat_q31(half << k_shift)
        else:
            dst[i] = half >> (-k_shift)


@njit
def arm_offset_q31(src, offset, dst):
    """``dst[i] = sat(src[i] + offset)``.

    Mirrors: arm_offset_q31 (``__QADD`` on the unrolled body and the DSP path,
    ``clip_q63_to_q31`` on the C tail: both saturate the exact sum).
    Scaling and overflow: saturating q31 addition.
    Assumptions: offset is a q31; len(src) >= len(dst); in place allowed.
    """
    off = np.int64(offset)
    for i in range(dst.shape[0]):
        dst[i] = sat_q31(np.int64(src[i]) + off)


@njit
def arm_shift_q31(src, shift_bits, dst):
    """``dst[i] = src[i] << shift_bits`` saturated, or ``>> -shift_bits``.

    Mirrors: arm_shift_q31.  The unrolled body shifts in 32 bits and detects
    overflow by shifting back; the tail saturates the 64-bit shift; both equal
    saturating the exact shift for counts up to 31.
    Scaling and overflow: left shifts saturate to q31; right shifts are
    arithmetic (floor, no rounding).
    Assumptions: -31 <= shift_bits <= 31 (beyond, C's shifts are undefined
    and the unrolled body and the tail disagree on x86); len(src) >=
    len(dst); in place allowed.
    """
    s = np.int64(shift_bits)
    for i in range(dst.shape[0]):
        v = np.int64(src[i])
        if s >= 0:
            dst[i] = sat_q31(v << s)
        else:
            dst[i] = v >> (-s)


@njit
def arm_shift_q15(src, shift_bits, dst):
    """``dst[i] = __SSAT((q31)src[i] << shift_bits, 16)``, or ``>> -shift_bits``.

    Mirrors: arm_shift_q15 (C and DSP paths agree).
    Scaling and overflow: the left shift is done in int32 and wraps for
    counts above 16 (e.g. ``1 << 31`` is -2**31, which then saturates to
    -32768), then saturates to q15; right shifts are arithmetic (floor).
    Assumptions: -31 <= shift_bits <= 31; len(src) >= len(dst); in place
    allowed.
    """
    s = np.int64(shift_bits)
    for i in range(dst.shape[0]):
        v = np.int64(src[i])
        if s >= 0:
            dst[i] = sat_q15(wrap_i32(v << s))
        else:
            dst[i] = v >> (-s)


@njit
def arm_dot_prod_q15(src_a, src_b):
    """Dot product of two q15 vectors as a q34.30 in int64.

    Mirrors: arm_dot_prod_q15 (the C path sums each widened product; the DSP
    path uses ``SMLALD``, exact in 64 bits on the hardware: same result).
    Scaling and overflow: exact; each q2.30 product is added to a 64-bit
    accumulator, which cannot overflow below 2**33 terms.
    Assumptions: block size is len(src_a); len(src_b) >= len(src_a).  Pass
    slices to use part of a buffer (no allocation).
    """
    acc = np.int64(0)                                               # q34.30
    for i in range(src_a.shape[0]):
        acc += np.int64(src_a[i]) * np.int64(src_b[i])
    return acc


# --------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------

@njit
def arm_absmax_q15(src):
    """Largest saturated absolute value of a q15 vector and its first index.

    Mirrors: arm_absmax_q15.  Both paths start from element 0 and replace the
    running maximum only when an element is strictly greater, so ties return
    the lowest index.  |-32768| saturates to 32767 (ternary on the C path,
    ``__QSUB16(0, x)`` on the DSP path), so -32768 and 32767 tie.
    Scaling and overflow: none beyond that saturation.
    Returns: ``(value, index)``.
    Assumptions: len(src) >= 1 (CMSIS reads src[0] unconditionally).
    """
    best = _abs_q15(src[0])
    index = np.int64(0)
    for i in range(1, src.shape[0]):
        v = _abs_q15(src[i])
        if v > best:
            best = v
            index = np.int64(i)
    return best, index


# --------------------------------------------------------------------------
# Fast math
# --------------------------------------------------------------------------

@njit
def arm_divide_q15(numerator, denominator):
    """q15 division as a normalized quotient and a left shift.

    Mirrors: arm_divide_q15 (no DSP-specific code).
    Scaling and overflow: with saturated absolute values (|-32768| -> 32767),
    ``t = (|num| << 15) / |den|`` truncated (C integer division of
    non-negative values); if t needs more than 15 bits it is shifted right by
    ``shift = 17 - clz(t)`` (floor) into [16384, 32767], so
    ``num / den ~= quotient * 2**shift / 32768``; the sign is applied last.
    ``num == den`` gives ``(16384, 1)``.  A zero numerator gives 0 with shift
    0, whatever the denominator's sign.
    Returns: ``(status, quotient, shift)``.  Denominator 0 gives
    ``(ARM_MATH_NANINF, -32768, 0)`` for a negative numerator and
    ``(ARM_MATH_NANINF, 32767, 0)`` otherwise, 0 / 0 included (the sign is
    ``(num < 0) != (den < 0)``).
    Assumptions: both arguments are q15 integers.
    """
    num = np.int64(numerator)
    den = np.int64(denominator)
    negative = (num < 0) != (den < 0)
    if den == 0:
        if negative:
            return np.int64(ARM_MATH_NANINF), np.int64(-32768), np.int64(0)
        return np.int64(ARM_MATH_NANINF), np.int64(32767), np.int64(0)
    num = _abs_q15(num)
    den = _abs_q15(den)
    temp = (num << 15) // den                                      # q15 quotient, up to 2**30
    shift = np.int64(0)
    normalize = 17 - clz32(temp)
    if normalize > 0:
        shift = normalize
        temp >>= normalize                                         # q15, times 2**shift
    if negative:
        temp = -temp
    return np.int64(ARM_MATH_SUCCESS), wrap_i16(temp), shift


@njit
def arm_sqrt_q31(x):
    """Square root of a q31 value.

    Mirrors: arm_sqrt_q31 (no DSP-specific code): see
    :func:`_sqrt_q31_positive` for the Newton iteration.  Seeds are the
    rounded values of 2**28 / sqrt(x) at x = 8/32 .. 31/32 (the reachable
    rows of ``sqrt_initial_lut_q31``).
    Scaling and overflow: q31 in, q31 out, floor shifts throughout.
    Measured error against sqrt(x * 2**31): -7.7 .. +7.4 LSB (200k inputs:
    random, 1..5000, powers of two).  The tests check equality with the
    library, not with the real square root.
    Returns: ``(status, root)``: ``(ARM_MATH_SUCCESS, 0)`` for 0,
    ``(ARM_MATH_ARGUMENT_ERROR, 0)`` for negative input.
    Assumptions: x is a q31 integer.
    """
    v = np.int64(x)
    if v > 0:
        return np.int64(ARM_MATH_SUCCESS), _sqrt_q31_positive(v)
    if v == 0:
        return np.int64(ARM_MATH_SUCCESS), np.int64(0)
    return np.int64(ARM_MATH_ARGUMENT_ERROR), np.int64(0)


@njit
def arm_sqrt_q15(x):
    """Square root of a q15 value.

    Mirrors: arm_sqrt_q15 (no DSP-specific code).  Same algorithm as
    :func:`arm_sqrt_q31` on 16-bit words: normalization by an even shift to
    [0.25, 1), seed in q3.12 (rounded 2**12 / sqrt(x) at x = 4/16 .. 15/16),
    three Newton steps with ``>> 12``, ``>> 15``, ``>> 13`` (floor) and every
    intermediate truncated to int16 (all C variables are ``q15_t``), result
    ``number * var1 >> 12`` shifted back.  Measured error against
    sqrt(x * 2**15), all positive inputs: -4.7 .. +7.2 LSB.
    Returns: ``(status, root)`` as :func:`arm_sqrt_q31`.
    Assumptions: x is a q15 integer.
    """
    v = np.int64(x)
    if v < 0:
        return np.int64(ARM_MATH_ARGUMENT_ERROR), np.int64(0)
    if v == 0:
        return np.int64(ARM_MATH_SUCCESS), np.int64(0)
    sign_bits = clz32(v) - 17
    norm = sign_bits if sign_bits % 2 == 0 else sign_bits - 1
    number = wrap_i16(v << norm)                                   # q15 in [0.25, 1)
    var1 = np.int64(_SQRT_SEED_Q15[(number >> 11) - 4])            # q3.12 ~ 1/sqrt
    for _ in range(3):
        temp = wrap_i16((var1 * var1) >> 12)                       # q3.12 var1**2
        temp = wrap_i16((number * temp) >> 15)                     # q3.12 x*var1**2
        temp = wrap_i16(0x3000 - temp)                             # q3.12 3 - x*var1**2
        var1 = wrap_i16((var1 * temp) >> 13)                       # q3.12 (halved)
    var1 = wrap_i16((number * var1) >> 12)                         # q15 sqrt(number)
    return np.int64(ARM_MATH_SUCCESS), var1 >> (norm // 2)


@njit
def arm_vlog_q31(src, dst):
    """Natural logarithm of q31 values, in q5.26.

    Mirrors: arm_vlog_q31 (scalar path; no DSP-specific code).  See
    :func:`_log_q31_scalar` for the algorithm.
    Scaling and overflow: ``dst = ln(src / 2**31)`` in q5.26, with floor
    truncation at every step; over the positive q31 range results lie in
    [-1442005916, -1] (ln(2**-31) .. ln(1 - 2**-31)), within -1.7 .. +0.7
    LSB of the exact value (200k sampled inputs).
    Edge values: ``src == 0`` gives -1488522235 (= -LN2_Q31, i.e. 32*ln 2
    below zero: ln(2**-32), through an int32 wrap in C).  Negative inputs are
    read as unsigned 32-bit values, i.e. as (src + 2**32) / 2**31 in [1, 2):
    the result is ln of that, in [0, 46516319]; -2**31 gives 0, -1 gives
    46516319.  No error is reported.
    Assumptions: len(src) >= len(dst); in place allowed.
    """
    for i in range(dst.shape[0]):
        dst[i] = _log_q31_scalar(src[i])


@njit
def arm_vlog_q15(src, dst):
    """Natural logarithm of q15 values, in q4.11.

    Mirrors: arm_vlog_q15 (scalar path; no DSP-specific code).  See
    :func:`_log_q15_scalar` for the algorithm.
    Scaling and overflow: ``dst = ln(src / 2**15)`` in q4.11, floor
    truncation at every step; over the positive q15 range results lie in
    [-21294, -1] (1 gives -21294, 32767 gives -1), within -1.8 .. 0 LSB of
    the exact value (all inputs).
    Edge values: ``src == 0`` gives -22713 (= ln(2**-16)).  Negative inputs
    are read as unsigned 16-bit values, (src + 2**16) / 2**15 in [1, 2):
    results in [0, 1418]; -32768 gives 0, -1 gives 1418.
    Assumptions: len(src) >= len(dst); in place allowed.
    """
    for i in range(dst.shape[0]):
        dst[i] = _log_q15_scalar(src[i])


# --------------------------------------------------------------------------
# Complex math
# --------------------------------------------------------------------------

@njit
def arm_cmplx_mag_q15(src_interleaved, dst):
    """Magnitudes of interleaved (re, im) q15 complex values, in q2.14.

    Mirrors: arm_cmplx_mag_q15 of CMSIS-DSP 1.10 (not the older
    arm_sqrt_q15-based version): ``arm_sqrt_q31((re*re + im*im) >> 1) >> 16``.
    The C path adds the two products as uint32, the DSP path with ``SMUAD``
    (int32 wrap) then casts to uint32: both give the exact sum, which is at
    most 2**31.
    Scaling and overflow: re**2 + im**2 is q2.30; halved it is a q31 in
    [0, 2**30]; its q31 square root shifted right by 16 (floor) is |z| in
    q2.14 (|z| / 2 in q15), within -1 .. 0 LSB of the exact value (measured
    on a 676x676 grid over the full range).  -32768 - 32768j gives 23170.
    No saturation is needed.
    Assumptions: number of values is len(dst); len(src_interleaved) >=
    2*len(dst).  dst may share memory with the start of src_interleaved
    (output i is written after inputs 2i and 2i+1 are read).
    """
    for i in range(dst.shape[0]):
        re = np.int64(src_interleaved[2 * i])
        im = np.int64(src_interleaved[2 * i + 1])
        power = (re * re + im * im) >> 1                            # q31, <= 2**30
        if power > 0:
            root = _sqrt_q31_positive(power)                        # q31
        else:
            root = np.int64(0)
        dst[i] = root >> 16                                         # q2.14


# --------------------------------------------------------------------------
# Matrix
# --------------------------------------------------------------------------

@njit
def arm_mat_vec_mult_q15(mat, vec, dst, dsp=False):
    """q15 matrix times q15 vector: ``dst[r] = sat(sum_c mat[r, c] * vec[c] >> 15)``.

    Mirrors: arm_mat_vec_mult_q15 (generic, non-Neon, non-MVE code).  The
    loop structure matters for two quirks, both reproduced:

    * Rows go in groups of four, columns in pairs through ``__SMLALD``, an
      odd last column as a plain product; leftover rows (rows % 4) go four
      columns at a time (two ``__SMLALD``) then one by one.  Without
      ARM_MATH_DSP (``dsp=False``: Cortex-M0/M0+/M3 and the host wheel) the
      portable ``__SMLALD`` sums the two products of a pair in int32 before
      widening, so a pair with all four values -32768 contributes -2**31
      instead of +2**31; with ``dsp=True`` (Cortex-M4/M7) the instruction
      is exact.  Which pairs exist depends on the row group, as above.
    * The row start offset is held in a ``uint16_t``: once it passes 65535
      it wraps, and later rows are read from the wrong place in the matrix
      (from matrices larger than 65536 elements).

    Scaling and overflow: q15 * q15 = q2.30 products summed in a 64-bit
    accumulator (q34.30), shifted right by 15 (floor, no rounding),
    saturated to q15.  (C passes the shifted sum to ``__SSAT`` as an int32;
    with at most 65535 columns it always fits.)
    Assumptions: mat is C-contiguous with shape (rows, cols), rows and cols
    at most 65535 (``uint16_t`` fields of arm_matrix_instance_q15);
    len(vec) >= cols; len(dst) >= rows; dst shares no memory with mat or vec.
    """
    rows = mat.shape[0]
    cols = mat.shape[1]
    flat = mat.reshape(rows * cols)
    offset = 0                                                      # C's uint16_t i
    out = 0
    for _ in range(rows >> 2):
        a1 = offset
        a2 = a1 + cols
        a3 = a2 + cols
        a4 = a3 + cols
        sum1 = np.int64(0)                                          # q34.30
        sum2 = np.int64(0)
        sum3 = np.int64(0)
        sum4 = np.int64(0)
        for c in range(0, cols - 1, 2):
            v0 = vec[c]
            v1 = vec[c + 1]
            sum1 += _smlald_pair(flat[a1 + c], flat[a1 + c + 1], v0, v1, dsp)
            sum2 += _smlald_pair(flat[a2 + c], flat[a2 + c + 1], v0, v1, dsp)
            sum3 += _smlald_pair(flat[a3 + c], flat[a3 + c + 1], v0, v1, dsp)
            sum4 += _smlald_pair(flat[a4 + c], flat[a4 + c + 1], v0, v1, dsp)
        if cols & 1:
            c = cols - 1
            v = np.int64(vec[c])
            sum1 += np.int64(flat[a1 + c]) * v
            sum2 += np.int64(flat[a2 + c]) * v
            sum3 += np.int64(flat[a3 + c]) * v
            sum4 += np.int64(flat[a4 + c]) * v
        dst[out] = sat_q15(sum1 >> 15)                              # q15
        dst[out + 1] = sat_q15(sum2 >> 15)
        dst[out + 2] = sat_q15(sum3 >> 15)
        dst[out + 3] = sat_q15(sum4 >> 15)
        out += 4
        offset = (offset + 4 * cols) & 0xFFFF
    for _ in range(rows & 3):
        a1 = offset
        acc = np.int64(0)                                           # q34.30
        quad_end = cols & ~3
        for c in range(0, quad_end, 4):
            acc += _smlald_pair(flat[a1 + c], flat[a1 + c + 1], vec[c], vec[c + 1], dsp)
            acc += _smlald_pair(flat[a1 + c + 2], flat[a1 + c + 3], vec[c + 2], vec[c + 3], dsp)
        for c in range(quad_end, cols):
            acc += np.int64(flat[a1 + c]) * np.int64(vec[c])
        dst[out] = sat_q15(acc >> 15)                               # q15
        out += 1
        offset = (offset + cols) & 0xFFFF
