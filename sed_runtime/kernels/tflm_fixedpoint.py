"""gemmlowp fixed-point math as TFLM's int8 Softmax, Logistic and Tanh use it, bit for bit.

TFLM's quantized transcendental kernels do not use lookup tables for int8:
they call gemmlowp's ``FixedPoint<int32_t, IntegerBits>`` functions
(``fixedpoint/fixedpoint.h``).  Each helper here mirrors one of them for the
scalar ``int32`` raw type.  A fixed-point value is its raw ``int32`` (held in
an ``int64``); ``integer_bits`` is gemmlowp's ``tIntegerBits`` template
argument, so the value is ``raw / 2**(31 - integer_bits)`` (Q``integer_bits``.
``31 - integer_bits``).

gemmlowp's additions and subtractions are plain ``int32`` arithmetic (overflow
is undefined behaviour in C and does not occur for the inputs TFLM passes);
here every sum is wrapped to ``int32`` explicitly, so a wrap would match what
an Arm or x86 build computes.  Multiplications are
:func:`~sed_runtime.fixedpoint.saturating_rounding_doubling_high_mul`
(gemmlowp's ``operator*``), divisions by powers of two are
:func:`~sed_runtime.fixedpoint.rounding_divide_by_pot`.

Accuracy of the approximations (measured here against double precision on
2 million random raw inputs, plus for ``exp`` the 2**20 raw values nearest 0):
``exp_on_negative_values`` within 2.3e-7 absolute on [-32, 0] (5 integer bits)
and [-16, 0] (4); ``one_over_one_plus_x_for_x_in_0_1`` within 3.2e-9 on
[0, 1); ``logistic`` within 7.1e-8 and ``tanh`` within 1.5e-7 on [-16, 16)
(4 integer bits).  These figures describe the approximations only;
bit-exactness to TFLM is what the tests check.
"""

from __future__ import annotations

import numpy as np

from sed_runtime._numba import njit
from sed_runtime.fixedpoint import clz32, rounding_divide_by_pot, saturating_rounding_doubling_high_mul, wrap_i32

__all__ = [
    "INT32_MAX",
    "rounding_half_sum",
    "saturating_rounding_multiply_by_pot",
    "exp_on_interval_between_negative_one_quarter_and_0_excl",
    "exp_on_negative_values",
    "one_over_one_plus_x_for_x_in_0_1",
    "one_minus_x_over_one_plus_x_for_x_in_0_1",
    "logistic",
    "tanh",
    "get_reciprocal",
]

INT32_MAX = 2147483647
INT32_MIN = -2147483648

# exp(-2**e) in q0.31 for e = -2 .. 4 (gemmlowp's barrel-shifter constants).
_EXP_BARREL_Q31 = np.array([1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242], dtype=np.int64)


@njit
def rounding_half_sum(a, b):
    """``(a + b) / 2`` rounded half away from zero.

    Mirrors: gemmlowp ``RoundingHalfSum<int32_t>`` (Arm NEON ``VRHADD`` for
    non-negative sums).
    Scaling and overflow: the sum is formed in 64 bits, ``sign(sum)`` is added
    and the result divided by 2 truncating toward zero (C ``/``); it always
    fits in int32.
    Assumptions: ``a`` and ``b`` in int32 range.
    """
    s = np.int64(a) + np.int64(b)
    if s >= 0:
        return (s + np.int64(1)) // np.int64(2)
    return -((-(s - np.int64(1))) // np.int64(2))


@njit
def saturating_rounding_multiply_by_pot(x, exponent):
    """``x * 2**exponent``: a saturating left shift, or a rounding right shift.

    Mirrors: gemmlowp ``SaturatingRoundingMultiplyByPOT<Exponent>(int32_t)``,
    which ``Rescale`` uses to change a value's integer bits.
    Scaling and overflow: for ``exponent > 0``, values above
    ``2**(31 - exponent) - 1`` saturate to ``INT32_MAX`` and values below its
    negation to ``INT32_MIN`` (note the asymmetric edge: ``-2**(31 - exponent)``
    also saturates, as in gemmlowp); for ``exponent < 0``,
    :func:`rounding_divide_by_pot` by ``-exponent``.
    Assumptions: ``x`` in int32 range, ``-31 <= exponent <= 30``.
    """
    e = np.int64(exponent)
    if e == 0:
        return np.int64(x)
    if e < 0:
        return rounding_divide_by_pot(x, -e)
    threshold = (np.int64(1) << (np.int64(31) - e)) - np.int64(1)
    if x > threshold:
        return np.int64(INT32_MAX)
    if x < -threshold:
        return np.int64(INT32_MIN)
    return np.int64(x) << e


@njit
def exp_on_interval_between_negative_one_quarter_and_0_excl(a):
    """``exp(a)`` for ``a`` in [-1/4, 0), q0.31 in and out.

    Mirrors: gemmlowp ``exp_on_interval_between_negative_one_quarter_and_0_excl``
    (a 4th-order Taylor expansion around -1/8).
    Scaling and overflow: every product is a rounding doubling high multiply
    (q0.31 x q0.31 -> q0.31); x**4/4 and the bracket /2 are rounding right
    shifts; sums wrap to int32 (they stay in range for the assumed input).
    Assumptions: ``-2**29 <= a < 0`` (i.e. [-1/4, 0) in q0.31).
    """
    constant_term = np.int64(1895147668)  # exp(-1/8), q0.31
    constant_1_over_3 = np.int64(715827883)  # 1/3, q0.31
    x = wrap_i32(np.int64(a) + np.int64(1 << 28))  # a + 1/8, q0.31
    x2 = saturating_rounding_doubling_high_mul(x, x)
    x3 = saturating_rounding_doubling_high_mul(x2, x)
    x4 = saturating_rounding_doubling_high_mul(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    inner = wrap_i32(saturating_rounding_doubling_high_mul(wrap_i32(x4_over_4 + x3), constant_1_over_3) + x2)
    poly = rounding_divide_by_pot(inner, 1)  # x^4/24 + x^3/6 + x^2/2, q0.31
    return wrap_i32(constant_term + saturating_rounding_doubling_high_mul(constant_term, wrap_i32(x + poly)))


@njit
def exp_on_negative_values(a, integer_bits):
    """``exp(a)`` for ``a <= 0``; input q``integer_bits``, result q0.31.

    Mirrors: gemmlowp ``exp_on_negative_values<int32_t, tIntegerBits>``.
    Scaling and overflow: ``a`` is split into its residue in [-1/4, 0)
    (evaluated by :func:`exp_on_interval_between_negative_one_quarter_and_0_excl`
    after a saturating rescale to q0.31) and the multiples of 1/4, 1/2, 1, 2,
    4, 8, 16 it dropped, each applied by one rounding doubling high multiply
    by ``exp(-2**e)`` in q0.31.  With more than 5 integer bits, inputs below
    -32 give 0.  ``a == 0`` gives ``INT32_MAX`` (gemmlowp's ``One()``).
    Assumptions: ``a <= 0`` in int32 range, ``0 <= integer_bits <= 6``.
    """
    k = np.int64(integer_bits)
    frac = np.int64(31) - k
    one_quarter = np.int64(1) << (frac - np.int64(2))
    mask = one_quarter - np.int64(1)
    a64 = np.int64(a)
    a_mod_quarter_minus_one_quarter = wrap_i32((a64 & mask) - one_quarter)  # q(k), in [-1/4, 0)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter, k))  # q0.31
    remainder = wrap_i32(a_mod_quarter_minus_one_quarter - a64)  # q(k), the multiples of 1/4 removed
    for i in range(7):
        exponent = np.int64(i) - np.int64(2)
        if k > exponent:
            bit = np.int64(1) << (frac + exponent)
            if remainder & bit:
                result = saturating_rounding_doubling_high_mul(result, _EXP_BARREL_Q31[i])
    if k > 5:
        clamp = -(np.int64(1) << (np.int64(36) - k))  # -32 in q(k)
        if a64 < clamp:
            result = np.int64(0)
    if a64 == 0:
        result = np.int64(INT32_MAX)
    return result


@njit
def _newton_reciprocal_q2(half_denominator):
    """Three Newton-Raphson steps for ``1 / half_denominator`` in q2.29 (gemmlowp's shared loop)."""
    x = wrap_i32(np.int64(1515870810) + saturating_rounding_doubling_high_mul(half_denominator,
                                                                              np.int64(-1010580540)))  # q2.29
    one_q2 = np.int64(1 << 29)
    for _ in range(3):
        half_denominator_times_x = saturating_rounding_doubling_high_mul(half_denominator, x)  # q2.29
        one_minus = wrap_i32(one_q2 - half_denominator_times_x)  # q2.29
        x = wrap_i32(x + saturating_rounding_multiply_by_pot(
            saturating_rounding_doubling_high_mul(x, one_minus), 2))  # q4.27 -> q2.29
    return x


@njit
def one_over_one_plus_x_for_x_in_0_1(a):
    """``1 / (1 + a)`` for ``a`` in [0, 1); q0.31 in and out.

    Mirrors: gemmlowp ``one_over_one_plus_x_for_x_in_0_1<int32_t>``.
    Scaling and overflow: ``half_denominator = (a + 1) / 2`` by
    :func:`rounding_half_sum`; Newton-Raphson from 48/17 - 32/17 * d in
    q2.29, three iterations; the q2.29 estimate of ``1 / d`` is halved
    exactly (q1.30) and rescaled to q0.31 with a saturating shift.
    Assumptions: ``0 <= a <= INT32_MAX``.
    """
    half_denominator = rounding_half_sum(a, np.int64(INT32_MAX))  # q0.31
    x = _newton_reciprocal_q2(half_denominator)
    return saturating_rounding_multiply_by_pot(x, 1)  # q1.30 (x / 2 exactly) -> q0.31


@njit
def one_minus_x_over_one_plus_x_for_x_in_0_1(a):
    """``(1 - a) / (1 + a)`` for ``a`` in [0, 1); q0.31 in and out.

    Mirrors: gemmlowp ``one_minus_x_over_one_plus_x_for_x_in_0_1<int32_t>``.
    Scaling and overflow: as :func:`one_over_one_plus_x_for_x_in_0_1`, then
    ``x - 1`` in q2.29 rescaled to q0.31 with a saturating shift by 2.
    Assumptions: ``0 <= a <= INT32_MAX``.
    """
    half_denominator = rounding_half_sum(a, np.int64(INT32_MAX))
    x = _newton_reciprocal_q2(half_denominator)
    return saturating_rounding_multiply_by_pot(wrap_i32(x - np.int64(1 << 29)), 2)


@njit
def logistic(a, integer_bits):
    """``1 / (1 + exp(-a))``; input q``integer_bits``, result q0.31.

    Mirrors: gemmlowp ``logistic<int32_t, tIntegerBits>``.
    Scaling and overflow: for ``a > 0``,
    ``one_over_one_plus_x(exp_on_negative_values(-a))``; for ``a < 0``,
    ``INT32_MAX`` minus that of ``-a``; ``a == 0`` gives ``2**30`` (one half).
    Assumptions: ``a`` in int32 range and not ``INT32_MIN``.
    """
    a64 = np.int64(a)
    if a64 == 0:
        return np.int64(1 << 30)
    if a64 > 0:
        return one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(-a64, integer_bits))
    return np.int64(INT32_MAX) - one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(a64, integer_bits))


@njit
def tanh(a, integer_bits):
    """``tanh(a)``; input q``integer_bits``, result q0.31.

    Mirrors: gemmlowp ``tanh<int32_t, tIntegerBits>`` through
    ``neg_tanh_on_negative_values``: ``(1 - exp(-2|a|)) / (1 + exp(-2|a|))``
    where doubling ``-|a|`` is exact (the same raw read as q``integer_bits + 1``).
    Scaling and overflow: the sign is restored by negation; ``a == 0`` gives 0.
    Assumptions: ``a`` in int32 range and not ``INT32_MIN``.
    """
    a64 = np.int64(a)
    if a64 == 0:
        return np.int64(0)
    n = a64 if a64 < 0 else -a64
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, np.int64(integer_bits) + np.int64(1)))
    return -t if a64 < 0 else t


@njit
def get_reciprocal(x, x_integer_digits):
    """``1 / x`` as a q0.31 value and a power-of-two exponent.

    Mirrors: TFLM ``GetReciprocal`` (``kernels/internal/common.h``).
    Returns ``(shifted_scale, num_bits_over_unit)``: ``x`` (q``x_integer_digits``)
    is normalised by its leading zeros to ``1 + f`` with f in [0, 1) (the
    ``uint32`` shift and subtraction of ``2**31`` wrap as in C), and
    ``shifted_scale = one_over_one_plus_x_for_x_in_0_1(f)``;
    ``num_bits_over_unit = x_integer_digits - clz(x)``.
    Assumptions: ``0 < x <= INT32_MAX``.
    """
    ux = np.int64(x) & np.int64(0xFFFFFFFF)
    headroom_plus_one = clz32(ux)
    num_bits_over_unit = np.int64(x_integer_digits) - headroom_plus_one
    shifted = ((ux << headroom_plus_one) - (np.int64(1) << np.int64(31))) & np.int64(0xFFFFFFFF)
    shifted_sum_minus_one = wrap_i32(shifted)
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit
