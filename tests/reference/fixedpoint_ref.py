"""Reference requantization arithmetic, written from the C/C++ sources with Python ints.

Slow on purpose: every C step is spelled out (int32 casts, truncating division,
arithmetic shifts) so each function can be checked line by line against

- gemmlowp ``fixedpoint.h`` (``SaturatingRoundingDoublingHighMul``,
  ``RoundingDivideByPOT``), as used by TFLM;
- TFLM ``tensorflow/lite/kernels/internal/common.cc``
  (``MultiplyByQuantizedMultiplier``, both builds) and ``quantization_util.cc``
  (``QuantizeMultiplier``);
- CMSIS-NN ``Include/arm_nnsupportfunctions.h`` (``arm_nn_doubling_high_mult``,
  ``arm_nn_doubling_high_mult_no_sat``, ``arm_nn_divide_by_power_of_two``,
  ``arm_nn_requantize``), portable C paths.

Where C is undefined (signed int32 overflow of ``x * (1 << left_shift)``), the
reference wraps modulo 2**32, which is what Arm and x86 compilers emit.
"""

from __future__ import annotations

import math
from fractions import Fraction

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


# -- C semantics on Python ints ----------------------------------------------


def to_int32(value: int) -> int:
    """``(int32_t)value``: keep the low 32 bits, two's complement."""
    value &= 0xFFFFFFFF
    return value - 2**32 if value >= 2**31 else value


def c_div(numerator: int, denominator: int) -> int:
    """C/C++ integer ``/``: the quotient truncated toward zero (Python ``//`` floors)."""
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator < 0) == (denominator < 0) else -quotient


def asr(value: int, amount: int) -> int:
    """Arithmetic shift right of a signed value (Python ``>>`` on ints floors, like ASR)."""
    return value >> amount


def assert_int32(*values: int) -> None:
    for value in values:
        assert INT32_MIN <= value <= INT32_MAX, f"{value} is outside int32"


# -- QuantizeMultiplier --------------------------------------------------------


def quantize_multiplier_ref(real_multiplier: float, single_rounding: bool = False) -> tuple[int, int]:
    """TFLM ``QuantizeMultiplier``; the rounding is done on exact rationals.

    ``significand * 2**31`` is rounded half away from zero (``std::round``)
    with :class:`fractions.Fraction`, independently of the float trick the
    package uses.
    """
    if real_multiplier == 0.0:
        return 0, 0
    significand, shift = math.frexp(real_multiplier)
    scaled = Fraction(significand) * 2**31
    magnitude = abs(scaled)
    rounded = math.floor(magnitude + Fraction(1, 2))  # half away from zero, on |.|
    q_fixed = rounded if scaled > 0 else -rounded
    assert q_fixed <= 2**31
    if q_fixed == 2**31:
        q_fixed = c_div(q_fixed, 2)
        shift += 1
    assert q_fixed <= INT32_MAX
    if shift < -31:
        shift = 0
        q_fixed = 0
    if single_rounding and shift > 30:
        shift = 30
        q_fixed = 2**31 - 1
    return to_int32(q_fixed), shift


# -- gemmlowp, as used by TFLM -------------------------------------------------


def srdhm_ref(a: int, b: int) -> int:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` for int32, with C's truncating ``/``."""
    assert_int32(a, b)
    overflow = a == b and a == INT32_MIN
    ab_64 = a * b
    nudge = (1 << 30) if ab_64 >= 0 else 1 - (1 << 30)
    ab_x2_high32 = to_int32(c_div(ab_64 + nudge, 1 << 31))
    return INT32_MAX if overflow else ab_x2_high32


def rounding_divide_by_pot_ref(x: int, exponent: int) -> int:
    """gemmlowp ``RoundingDivideByPOT`` for int32."""
    assert_int32(x)
    assert 0 <= exponent <= 31
    mask = to_int32((1 << exponent) - 1)
    remainder = x & mask
    threshold = asr(mask, 1) + (1 if x < 0 else 0)
    return asr(x, exponent) + (1 if remainder > threshold else 0)


def multiply_by_quantized_multiplier_ref(x: int, multiplier: int, shift: int) -> int:
    """TFLM ``MultiplyByQuantizedMultiplier(int32_t, int32_t, int)``, default (double-rounding) build."""
    assert_int32(x, multiplier)
    left_shift = shift if shift > 0 else 0
    right_shift = 0 if shift > 0 else -shift
    assert left_shift <= 30, "1 << 31 overflows int in C"
    scaled = to_int32(x * to_int32(1 << left_shift))  # int32 multiply; wraps as compiled
    return rounding_divide_by_pot_ref(srdhm_ref(scaled, multiplier), right_shift)


def multiply_by_quantized_multiplier_single_rounding_ref(x: int, multiplier: int, shift: int) -> int:
    """TFLM ``MultiplyByQuantizedMultiplier(int32_t, int32_t, int)`` with ``TFLITE_SINGLE_ROUNDING``."""
    assert_int32(x, multiplier)
    assert multiplier >= 0 and -31 <= shift <= 30  # TFLM's TFLITE_DCHECKs
    total_shift = 31 - shift
    round_ = 1 << (total_shift - 1)
    result = x * multiplier + round_
    assert -(2**63) <= result < 2**63, "int64 overflow"
    result = asr(result, total_shift)
    return to_int32(result)


# -- CMSIS-NN (portable C paths) -----------------------------------------------


def arm_nn_doubling_high_mult_ref(m1: int, m2: int) -> int:
    """CMSIS-NN ``arm_nn_doubling_high_mult`` (saturating)."""
    assert_int32(m1, m2)
    mult = 1 << 30
    if (m1 < 0) != (m2 < 0):
        mult = 1 - mult
    mult = mult + m1 * m2
    result = to_int32(c_div(mult, 1 << 31))
    if m1 == m2 and m1 == INT32_MIN:
        result = INT32_MAX
    return result


def arm_nn_doubling_high_mult_no_sat_ref(m1: int, m2: int) -> int:
    """CMSIS-NN ``arm_nn_doubling_high_mult_no_sat``: 64-bit accumulate from 2**30, take bits 31..62."""
    assert_int32(m1, m2)
    acc = (1 << 30) + m1 * m2  # fits int64: |m1 * m2| <= 2**62
    return to_int32(asr(acc, 31))


def arm_nn_divide_by_power_of_two_ref(dividend: int, exponent: int) -> int:
    """CMSIS-NN ``arm_nn_divide_by_power_of_two``; note the threshold depends on the *quotient*'s sign."""
    assert_int32(dividend)
    assert 0 <= exponent <= 31
    remainder_mask = to_int32((1 << exponent) - 1)
    remainder = remainder_mask & dividend
    result = asr(dividend, exponent)
    threshold = asr(remainder_mask, 1)
    if result < 0:
        threshold += 1
    if remainder > threshold:
        result += 1
    return result


def arm_nn_divide_by_power_of_two_asm_ref(dividend: int, exponent: int) -> int:
    """CMSIS-NN ``arm_nn_divide_by_power_of_two`` under ``CMSIS_NN_USE_REQUANTIZE_INLINE_ASSEMBLY``.

    Negative dividends other than INT32_MIN are decremented, then ``ASRS`` by a
    register amount leaves the last bit shifted out in the carry flag and
    ``ADC #0`` adds it.  Modelled for 1 <= exponent <= 31 only: with a zero
    shift amount ``ASRS`` leaves the carry flag as it was.
    """
    assert_int32(dividend)
    assert 1 <= exponent <= 31
    temp = dividend
    if temp < 0 and temp != INT32_MIN:
        temp -= 1
    carry = (temp >> (exponent - 1)) & 1
    return asr(temp, exponent) + carry


def arm_nn_requantize_ref(val: int, multiplier: int, shift: int, single_rounding: bool = False) -> int:
    """CMSIS-NN ``arm_nn_requantize``: default path, or ``CMSIS_NN_USE_SINGLE_ROUNDING``."""
    assert_int32(val, multiplier)
    if single_rounding:
        total_shift = 31 - shift
        new_val = val * multiplier
        result = asr(new_val, total_shift - 1)
        result = asr(result + 1, 1)
        return to_int32(result)  # int64 returned as int32_t
    left = shift if shift > 0 else 0
    right = 0 if shift > 0 else -shift
    scaled = to_int32(val * to_int32(1 << left))
    return arm_nn_divide_by_power_of_two_ref(arm_nn_doubling_high_mult_no_sat_ref(scaled, multiplier), right)


# -- exact arithmetic, for stating what the roundings mean -----------------------


def round_half_up(value: Fraction) -> int:
    """Nearest integer, ties toward +infinity."""
    return math.floor(value + Fraction(1, 2))


def round_half_away(value: Fraction) -> int:
    """Nearest integer, ties away from zero."""
    magnitude = math.floor(abs(value) + Fraction(1, 2))
    return magnitude if value >= 0 else -magnitude
