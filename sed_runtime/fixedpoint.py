"""Fixed-point scalar helpers shared by every kernel.

The per-sample helpers are Numba-compiled scalar functions usable both from
Python and from inside other kernels; :func:`quantize_multiplier`, which runs
once at prepare time, is plain Python.  Integer widths are explicit: Numba widens small
integers to int64, so nothing here relies on C's implicit wrap-around; where C
wraps or saturates, the helper says so and does it explicitly.

Naming: ``_q15`` / ``_q31`` for the fixed-point formats, ``ssat`` after the
Arm instruction, ``wrap_*`` for C's modular truncation to a narrower type.
"""

from __future__ import annotations

import math

import numpy as np

from sed_runtime._numba import njit
from sed_runtime.errors import ConfigError

Q15_MAX = 32767
Q15_MIN = -32768
Q31_MAX = 2147483647
Q31_MIN = -2147483648


@njit(inline="always")
def sat_q15(x):
    """Saturate an integer to int16 range.

    Mirrors: CMSIS ``__SSAT(x, 16)``.
    Scaling and overflow: none; clamps to [-32768, 32767].
    Assumptions: x fits in int64.
    """
    if x > 32767:
        return np.int64(32767)
    if x < -32768:
        return np.int64(-32768)
    return np.int64(x)


@njit(inline="always")
def sat_q31(x):
    """Saturate an integer to int32 range.

    Mirrors: CMSIS ``__SSAT(x, 32)`` / ``clip_q63_to_q31``.
    Scaling and overflow: none; clamps to [-2**31, 2**31 - 1].
    Assumptions: x fits in int64.
    """
    if x > 2147483647:
        return np.int64(2147483647)
    if x < -2147483648:
        return np.int64(-2147483648)
    return np.int64(x)


@njit(inline="always")
def ssat(x, bits):
    """Saturate to a signed ``bits``-bit range.

    Mirrors: Arm ``SSAT`` / CMSIS ``__SSAT(x, bits)``.
    Scaling and overflow: clamps to [-2**(bits-1), 2**(bits-1) - 1].
    Assumptions: 1 <= bits <= 63, x fits in int64.
    """
    hi = (np.int64(1) << (bits - 1)) - 1
    lo = -hi - 1
    if x > hi:
        return hi
    if x < lo:
        return lo
    return np.int64(x)


@njit(inline="always")
def wrap_i16(x):
    """Truncate to int16 as a C cast does (two's-complement wrap).

    Mirrors: ``(q15_t)x`` / ``(int16_t)x`` in C.
    Scaling and overflow: keeps the low 16 bits, sign-extended.
    """
    return np.int64(((np.int64(x) + 32768) & 0xFFFF) - 32768)


@njit(inline="always")
def wrap_i32(x):
    """Truncate to int32 as a C cast does (two's-complement wrap).

    Mirrors: ``(q31_t)x`` / ``(int32_t)x`` in C, and the modulo-2**32 result of
    32-bit multiply-accumulate instructions (``SMLAD`` and friends).
    Scaling and overflow: keeps the low 32 bits, sign-extended.
    """
    return np.int64(((np.int64(x) + 2147483648) & 0xFFFFFFFF) - 2147483648)


@njit(inline="always")
def clz32(x):
    """Count leading zeros of a 32-bit unsigned value.

    Mirrors: Arm ``CLZ`` / CMSIS ``__CLZ``.  ``clz32(0) == 32``.
    Assumptions: 0 <= x < 2**32.
    """
    if x == 0:
        return np.int64(32)
    n = np.int64(0)
    v = np.int64(x)
    while (v & 0x80000000) == 0:
        v <<= 1
        n += 1
    return n


# ---------------------------------------------------------------------------
# Requantization: a real multiplier as a Q0.31 integer and a power-of-two shift
# ---------------------------------------------------------------------------


def _round_half_away_from_zero(value: float) -> int:
    """Round a finite double to the nearest integer, ties away from zero (C ``std::round``)."""
    whole = math.trunc(value)
    # ``value - whole`` is the fractional part, exact in binary64.
    if abs(value - whole) >= 0.5:
        whole += 1 if value > 0 else -1
    return whole


def quantize_multiplier(real_multiplier: float, *, single_rounding: bool = False) -> tuple[int, int]:
    """Split a real multiplier into a Q0.31 ``multiplier`` and a power-of-two ``shift``.

    ``real_multiplier ~= multiplier * 2**(shift - 31)`` with
    ``2**30 <= |multiplier| <= 2**31 - 1`` (or ``multiplier == 0``).  ``shift`` is
    positive for a left shift, as in TFLM.  Runs once per tensor at prepare time,
    so it is plain Python; callers must form ``real_multiplier`` in double
    precision the same way the firmware does (for example
    ``float(input_scale) * float(filter_scale) / float(output_scale)`` from the
    float32 scales stored in the model).

    Mirrors: TFLM ``QuantizeMultiplier`` (``tensorflow/lite/kernels/internal/
    quantization_util.cc``), the ``std::frexp`` path (not ``TFLITE_EMULATE_FLOAT``).
    ``single_rounding=True`` mirrors a build with ``TFLITE_SINGLE_ROUNDING``.

    Scaling and overflow: ``frexp`` gives ``significand * 2**shift`` with
    ``0.5 <= |significand| < 1``; ``significand * 2**31`` (exact in binary64) is
    rounded half away from zero (TFLM ``TfLiteRound`` = C ``std::round``, not
    Python's half-to-even ``round``).  A significand that rounds up to ``2**31``
    becomes ``2**30`` with ``shift + 1``.  Then, in this order:

    - ``shift < -31`` (``|real_multiplier|`` below about ``2**-32``) flushes to
      ``(0, 0)``, as TFLM does instead of producing "denormal" multipliers;
    - with ``single_rounding``, ``shift > 30`` saturates to ``(2**31 - 1, 30)``.

    Zero (either sign) gives ``(0, 0)``.  A negative real multiplier gives a
    negative multiplier, down to ``-2**31`` (TFLM only halves ``+2**31``).

    Assumptions: ``real_multiplier`` is finite; anything else raises
    :class:`~sed_runtime.errors.ConfigError` (TFLM's result is undefined there).
    The double-rounding helpers need ``-31 <= shift <= 30``, i.e.
    ``|real_multiplier| < 2**30``; callers validate that in ``prepare()``.
    """
    value = float(real_multiplier)
    if not math.isfinite(value):
        raise ConfigError(f"real_multiplier={real_multiplier!r} must be a finite number")
    if value == 0.0:
        return 0, 0
    significand, shift = math.frexp(value)  # value = significand * 2**shift, 0.5 <= |significand| < 1
    multiplier = _round_half_away_from_zero(significand * 2.0**31)  # q0.31, |.| in [2**30, 2**31]
    if multiplier == 2**31:
        multiplier //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if single_rounding and shift > 30:
        return 2**31 - 1, 30
    return multiplier, shift


@njit(inline="always")
def saturating_rounding_doubling_high_mul(a, b):
    """High 32 bits of ``2 * a * b``, rounded half up; ``INT32_MIN**2`` saturates.

    Mirrors: gemmlowp ``SaturatingRoundingDoublingHighMul`` (int32, as used by
    TFLM), CMSIS-NN ``arm_nn_doubling_high_mult``, Arm NEON ``VQRDMULH``.

    Scaling and overflow: q31 * q31 -> q31.  The int64 product (at most 2**62)
    is divided by 2**31 with rounding to nearest, ties toward +infinity: gemmlowp
    adds ``2**30`` (``1 - 2**30`` for a negative product) and divides with C's
    truncating ``/``, which equals adding ``2**30`` and flooring (``>> 31``), the
    form used here and in CMSIS-NN ``arm_nn_doubling_high_mult_no_sat``.  Only
    ``a == b == INT32_MIN`` overflows int32; it saturates to ``INT32_MAX``
    (``arm_nn_doubling_high_mult_no_sat`` would wrap it to ``INT32_MIN``).
    Returns an int64 holding an int32 value.

    Assumptions: ``a`` and ``b`` are in int32 range.
    """
    a64 = np.int64(a)
    b64 = np.int64(b)
    if a64 == b64 and a64 == -2147483648:
        return np.int64(2147483647)
    product = a64 * b64  # q62, |product| <= 2**62
    return (product + np.int64(1073741824)) >> np.int64(31)  # q31, round half up


@njit(inline="always")
def rounding_divide_by_pot(x, exponent):
    """``x / 2**exponent``, rounded to nearest with the midpoint away from zero.

    Mirrors: gemmlowp ``RoundingDivideByPOT`` (int32, as used by TFLM) and its
    CMSIS-NN twin ``arm_nn_divide_by_power_of_two`` (portable C path; the
    inline-assembly path agrees for ``exponent >= 1``, the only way
    ``arm_nn_requantize`` calls it).

    Scaling and overflow: arithmetic shift right (which floors), then +1 when
    the discarded bits exceed half of ``2**exponent`` (for negative ``x``:
    exceed or equal half), so ``2.5 -> 3`` and ``-2.5 -> -3``.  The result
    always fits in int32; returns int64.

    Assumptions: ``x`` in int32 range, ``0 <= exponent <= 31``.
    """
    x64 = np.int64(x)
    e = np.int64(exponent)
    mask = (np.int64(1) << e) - np.int64(1)
    remainder = x64 & mask
    threshold = mask >> np.int64(1)
    if x64 < 0:
        threshold += np.int64(1)
    result = x64 >> e  # floor(x / 2**e)
    if remainder > threshold:
        result += np.int64(1)
    return result


@njit(inline="always")
def multiply_by_quantized_multiplier(x, multiplier, shift):
    """Requantize an int32 by ``multiplier * 2**(shift - 31)`` with two roundings.

    Mirrors: TFLM ``MultiplyByQuantizedMultiplier(int32_t, int32_t, int)`` in
    the default (double-rounding) build, and CMSIS-NN ``arm_nn_requantize``
    without ``CMSIS_NN_USE_SINGLE_ROUNDING``: CMSIS-NN's variant is the same
    formula with ``arm_nn_doubling_high_mult_no_sat`` in place of the
    saturating multiply, so the two agree for every multiplier in CMSIS-NN's
    documented range (``multiplier != INT32_MIN``) and this one function serves
    both.

    Scaling and overflow: with ``left = max(shift, 0)`` and
    ``right = max(-shift, 0)``:

    1. ``x * 2**left`` in int32 arithmetic.  C leaves the overflow undefined;
       Arm and x86 compilers emit a 32-bit shift or multiply that wraps modulo
       2**32, and so does this helper (the TFLM Python interpreter wraps too).
       Note the identity multiplier ``quantize_multiplier(1.0) == (2**30, 1)``
       doubles ``x`` here, so ``x = INT32_MIN`` wraps to 0.
    2. :func:`saturating_rounding_doubling_high_mul` by ``multiplier`` (q31):
       rounds half toward +infinity.
    3. :func:`rounding_divide_by_pot` by ``right``: rounds half away from zero.

    The result fits in int32 (returned as int64).  Because of the double
    rounding, a negative exact tie can land one away from the single-rounding
    result (``x=-2, multiplier=2**30, shift=-1``: -1 here, 0 single-rounded).

    Assumptions: ``x`` and ``multiplier`` in int32 range, ``-31 <= shift <= 30``
    (TFLM's convolution and fully-connected kernels use -31..+7).
    """
    s = np.int64(shift)
    left = s if s > 0 else np.int64(0)
    right = np.int64(0) if s > 0 else -s
    scaled = wrap_i32(np.int64(x) << left)  # int32 multiply by 2**left, wraps
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(scaled, multiplier), right)


@njit(inline="always")
def multiply_by_quantized_multiplier_single_rounding(x, multiplier, shift):
    """Requantize an int32 by ``multiplier * 2**(shift - 31)`` with one rounding.

    Mirrors: TFLM ``MultiplyByQuantizedMultiplier(int32_t, int32_t, int)``
    built with ``TFLITE_SINGLE_ROUNDING``, and CMSIS-NN ``arm_nn_requantize``
    built with ``CMSIS_NN_USE_SINGLE_ROUNDING`` (which shifts by
    ``total_shift - 1``, adds 1 and shifts by 1 more: the same value).

    Scaling and overflow: the int64 product ``x * multiplier`` (q31 * 2**shift)
    plus ``2**(total_shift - 1)`` is shifted right arithmetically by
    ``total_shift = 31 - shift``, i.e. ``floor(x * multiplier / 2**total_shift
    + 1/2)``: rounding to nearest, ties toward +infinity (``-0.5 -> 0``, unlike
    the double-rounding path).  Nothing overflows int64 for the assumed ranges.
    The int64 result is cast to int32 with wrap-around, as TFLM's
    ``static_cast<int32_t>`` does in a release build (a debug build asserts the
    result is in range; it is whenever the scales make sense).

    Assumptions: ``x`` and ``multiplier`` in int32 range, ``multiplier >= 0``
    and ``-31 <= shift <= 30`` (TFLM's ``TFLITE_DCHECK``\\s).
    """
    total_shift = np.int64(31) - np.int64(shift)
    rounding = np.int64(1) << (total_shift - np.int64(1))
    product = np.int64(x) * np.int64(multiplier)  # q31 * 2**shift, |.| < 2**62
    return wrap_i32((product + rounding) >> total_shift)  # round half up, then (int32_t)
