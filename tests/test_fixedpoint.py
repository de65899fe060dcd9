"""Requantization helpers in :mod:`sed_runtime.fixedpoint`.

Tier 1: against the TFLM interpreter (a one-op QUANTIZE model, which runs
``QuantizeMultiplier`` at prepare time and ``MultiplyByQuantizedMultiplier`` per
element).  Tier 2: against the slow references in ``tests/reference``, at the
edges (significands rounding to 2**31, ties of both signs, every shift, INT32_MIN)
and on seeded random sweeps.  The suite is also run with ``NUMBA_DISABLE_JIT=1``;
numpy overflow warnings are errors here, so an accidental narrow numpy scalar
shows up in that run.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from reference import fixedpoint_ref as ref
from sed_runtime._numba import njit
from sed_runtime.errors import ConfigError
from sed_runtime.fixedpoint import (
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_single_rounding,
    quantize_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
TFLM_SHIFTS = range(-31, 8)  # the shift range TFLM's conv / fully-connected kernels produce
SINGLE_ROUNDING_SHIFTS = range(-31, 31)  # TFLITE_DCHECK(shift >= -31 && shift <= 30)
DOUBLE_ROUNDING_SHIFTS = range(-31, 31)

EDGE_X = [INT32_MIN, INT32_MIN + 1, -(2**30) - 1, -(2**30), -65536, -32769, -256, -129, -6, -4, -3, -2, -1,
          0, 1, 2, 3, 4, 6, 127, 32767, 65535, 2**30 - 1, 2**30, INT32_MAX - 1, INT32_MAX]
EDGE_MULTIPLIERS = [0, 1, 2, 3, 2**29, 2**30 - 1, 2**30, 2**30 + 1, 3 * 2**29, 2**31 - 2, INT32_MAX]


def mismatch_report(actual, expected, inputs=None, limit=5) -> str:
    """'pos 3: act -128 ref -127 (input ...); 2 of 18 differ', in the manner of CMSIS-NN's validate.h."""
    actual = [int(v) for v in actual]
    expected = [int(v) for v in expected]
    bad = [i for i, (a, e) in enumerate(zip(actual, expected)) if a != e]
    parts = []
    for i in bad[:limit]:
        where = f" (input {inputs[i]})" if inputs is not None else ""
        parts.append(f"pos {i}: act {actual[i]} ref {expected[i]}{where}")
    return "; ".join(parts) + f"; {len(bad)} of {len(actual)} differ"


def assert_all_equal(actual, expected, inputs=None):
    actual = [int(v) for v in actual]
    expected = [int(v) for v in expected]
    assert len(actual) == len(expected)
    if actual != expected:
        pytest.fail(mismatch_report(actual, expected, inputs))


def random_x(rng, n):
    """int32 values mixing full range, small magnitudes, powers of two and their neighbours."""
    full = rng.integers(INT32_MIN, INT32_MAX, size=n, endpoint=True)
    small = rng.integers(-70000, 70000, size=n, endpoint=True)
    bits = rng.integers(0, 32, size=n)
    pow2 = (np.int64(1) << bits) * rng.choice([-1, 1], size=n) + rng.integers(-2, 3, size=n)
    pow2 = np.clip(pow2, INT32_MIN, INT32_MAX)
    pick = rng.integers(0, 3, size=n)
    return [int(v) for v in np.choose(pick, [full, small, pow2])]


def random_multipliers(rng, n, allow_negative=False):
    """Mostly normalised q31 multipliers [2**30, 2**31 - 1], some anywhere in [0, 2**31 - 1]."""
    normal = rng.integers(2**30, INT32_MAX, size=n, endpoint=True)
    anywhere = rng.integers(0, INT32_MAX, size=n, endpoint=True)
    out = np.where(rng.random(n) < 0.8, normal, anywhere)
    if allow_negative:
        out = np.where(rng.random(n) < 0.1, -out, out)
    return [int(v) for v in out]


# ---------------------------------------------------------------------------
# quantize_multiplier
# ---------------------------------------------------------------------------


class TestQuantizeMultiplier:
    @pytest.mark.parametrize(
        "real, expected",
        [
            (1 - 2**-33, (2**30, 1)),  # significand * 2**31 = 2**31 - 0.25 rounds to 2**31
            (0.5 * (1 - 2**-33), (2**30, 0)),
            (1 - 2**-32, (2**30, 1)),  # 2**31 - 0.5: a tie, away from zero reaches 2**31
            (1 - 2**-31, (2**31 - 1, 0)),  # 2**31 - 1 exactly: stays
            (-(1 - 2**-33), (INT32_MIN, 0)),  # TFLM only halves +2**31: -2**31 is kept
            ((1 - 2**-40) * 2.0**-32, (2**30, -31)),  # rounding up rescues it from the flush to zero
        ],
    )
    def test_significand_that_rounds_to_2_pow_31(self, real, expected):
        assert quantize_multiplier(real) == expected
        assert ref.quantize_multiplier_ref(real) == expected

    @pytest.mark.parametrize(
        "real, expected",
        [
            (0.5 + 2**-32, (2**30 + 1, 0)),  # 2**30 + 0.5 -> up (half-to-even would stay at 2**30)
            (-(0.5 + 2**-32), (-(2**30) - 1, 0)),  # -2**30 - 0.5 -> away from zero
            (0.5 + 3 * 2**-32, (2**30 + 2, 0)),  # 2**30 + 1.5 -> 2**30 + 2
            (-(0.5 + 3 * 2**-32), (-(2**30) - 2, 0)),
            ((0.5 + 2**-32) * 2.0**-20, (2**30 + 1, -20)),
        ],
    )
    def test_ties_round_half_away_from_zero(self, real, expected):
        assert quantize_multiplier(real) == expected
        assert ref.quantize_multiplier_ref(real) == expected

    def test_ties_differ_from_half_to_even(self):
        scaled = math.frexp(0.5 + 2**-32)[0] * 2.0**31
        assert round(scaled) == 2**30 and int(np.rint(scaled)) == 2**30  # the roundings TFLM does not use
        assert quantize_multiplier(0.5 + 2**-32)[0] == 2**30 + 1

    @pytest.mark.parametrize("real", [0.0, -0.0])
    def test_zero(self, real):
        assert quantize_multiplier(real) == (0, 0)

    @pytest.mark.parametrize(
        "real, expected",
        [
            (2.0**-32, (2**30, -31)),  # smallest power of two that survives
            (0.75 * 2.0**-32, (0, 0)),  # frexp shift -32 < -31: flushed to zero
            (2.0**-33, (0, 0)),
            (-(2.0**-33), (0, 0)),
            (1e-300, (0, 0)),
            (5e-324, (0, 0)),  # subnormal double
        ],
    )
    def test_tiny_multipliers_flush_to_zero(self, real, expected):
        assert quantize_multiplier(real) == expected
        assert quantize_multiplier(real, single_rounding=True) == expected

    @pytest.mark.parametrize("exponent", range(-32, 31))
    def test_powers_of_two(self, exponent):
        assert quantize_multiplier(2.0**exponent) == (2**30, exponent + 1)

    def test_single_rounding_saturates_shift_above_30(self):
        assert quantize_multiplier(2.0**30) == (2**30, 31)
        assert quantize_multiplier(2.0**30, single_rounding=True) == (2**31 - 1, 30)
        assert quantize_multiplier(1.5 * 2.0**29, single_rounding=True) == (3 * 2**29, 30)
        assert quantize_multiplier(1e10, single_rounding=True) == (2**31 - 1, 30)

    @pytest.mark.parametrize("real", [math.nan, math.inf, -math.inf])
    def test_non_finite_is_an_error(self, real):
        with pytest.raises(ConfigError, match="real_multiplier="):
            quantize_multiplier(real)

    def test_returns_python_ints(self):
        multiplier, shift = quantize_multiplier(np.float32(0.3))
        assert type(multiplier) is int and type(shift) is int

    @pytest.mark.parametrize("single_rounding", [False, True])
    def test_random_sweep_against_reference(self, single_rounding):
        rng = np.random.default_rng(20240611 + single_rounding)
        n = 20000
        exponents = rng.uniform(-36.0, 34.0, size=n)
        values = np.sign(rng.random(n) - 0.2) * np.exp2(exponents)
        # Also the way TFLM forms effective scales: double products of float32 scales.
        s = rng.uniform(1e-4, 1.0, size=(n, 3)).astype(np.float32)
        ratios = [float(a) * float(b) / float(c) for a, b, c in s]
        for real in list(map(float, values)) + ratios:
            assert quantize_multiplier(real, single_rounding=single_rounding) == ref.quantize_multiplier_ref(
                real, single_rounding
            ), real

    def test_represents_the_real_multiplier(self):
        rng = np.random.default_rng(7)
        for real in np.exp2(rng.uniform(-31.0, 20.0, size=2000)):
            multiplier, shift = quantize_multiplier(float(real))
            assert 2**30 <= multiplier <= INT32_MAX
            approx = Fraction(multiplier) * Fraction(2) ** (shift - 31)
            assert abs(approx - Fraction(float(real))) <= Fraction(2) ** (shift - 32)  # half a q31 step


# ---------------------------------------------------------------------------
# saturating_rounding_doubling_high_mul
# ---------------------------------------------------------------------------


class TestSaturatingRoundingDoublingHighMul:
    def test_int32_min_squared_saturates(self):
        assert saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MIN) == INT32_MAX
        assert ref.srdhm_ref(INT32_MIN, INT32_MIN) == INT32_MAX
        assert ref.arm_nn_doubling_high_mult_ref(INT32_MIN, INT32_MIN) == INT32_MAX
        # the non-saturating CMSIS-NN variant wraps instead
        assert ref.arm_nn_doubling_high_mult_no_sat_ref(INT32_MIN, INT32_MIN) == INT32_MIN

    @pytest.mark.parametrize(
        "a, b, expected",
        [
            (1, 2**30, 1),  # +0.5 -> 1
            (-1, 2**30, 0),  # -0.5 -> 0: ties go toward +infinity, not away from zero
            (3, 2**30, 2),  # +1.5 -> 2
            (-3, 2**30, -1),  # -1.5 -> -1
            (-1, -(2**30), 1),
            (INT32_MIN, INT32_MAX, INT32_MIN + 1),
            (INT32_MAX, INT32_MAX, INT32_MAX - 1),
            (INT32_MIN, 2**30, -(2**30)),
            (INT32_MIN, 1, -1),  # -1.0 exactly
            (INT32_MAX, 1, 1),  # 0.99999... -> 1
            (0, INT32_MIN, 0),
        ],
    )
    def test_edges_and_ties(self, a, b, expected):
        assert saturating_rounding_doubling_high_mul(a, b) == expected
        assert ref.srdhm_ref(a, b) == expected

    def test_edge_grid_against_references(self):
        values = sorted(set(EDGE_X + EDGE_MULTIPLIERS + [-m for m in EDGE_MULTIPLIERS]))
        for a in values:
            for b in values:
                expected = ref.srdhm_ref(a, b)
                assert saturating_rounding_doubling_high_mul(a, b) == expected, (a, b)
                assert ref.arm_nn_doubling_high_mult_ref(a, b) == expected, (a, b)
                if not a == b == INT32_MIN:
                    assert ref.arm_nn_doubling_high_mult_no_sat_ref(a, b) == expected, (a, b)
                    assert expected == ref.round_half_up(Fraction(a * b, 2**31)), (a, b)

    def test_random_sweep_against_reference(self):
        rng = np.random.default_rng(11)
        a_values = random_x(rng, 20000)
        b_values = random_multipliers(rng, 20000, allow_negative=True)
        actual = [saturating_rounding_doubling_high_mul(a, b) for a, b in zip(a_values, b_values)]
        expected = [ref.srdhm_ref(a, b) for a, b in zip(a_values, b_values)]
        assert_all_equal(actual, expected, list(zip(a_values, b_values)))


# ---------------------------------------------------------------------------
# rounding_divide_by_pot
# ---------------------------------------------------------------------------


class TestRoundingDivideByPot:
    @pytest.mark.parametrize("exponent", range(1, 32))
    def test_ties_go_away_from_zero(self, exponent):
        half = 1 << (exponent - 1)
        largest = (INT32_MAX // half - 1) // 2  # largest k with (2k + 1) * half in int32
        for k in sorted({0, 1, 2, 5, largest}):
            if k > largest:
                continue
            x = (2 * k + 1) * half  # (k + 0.5) * 2**exponent
            assert rounding_divide_by_pot(x, exponent) == k + 1, (x, exponent)
            assert rounding_divide_by_pot(-x, exponent) == -(k + 1), (-x, exponent)
            assert rounding_divide_by_pot(x - 1, exponent) == k, (x - 1, exponent)
            assert rounding_divide_by_pot(-x + 1, exponent) == -k, (-x + 1, exponent)

    @pytest.mark.parametrize("exponent", range(0, 32))
    def test_edge_grid_against_references(self, exponent):
        for x in EDGE_X:
            expected = ref.rounding_divide_by_pot_ref(x, exponent)
            assert rounding_divide_by_pot(x, exponent) == expected, x
            assert ref.arm_nn_divide_by_power_of_two_ref(x, exponent) == expected, x
            assert expected == ref.round_half_away(Fraction(x, 2**exponent)), x
            if exponent >= 1:
                assert ref.arm_nn_divide_by_power_of_two_asm_ref(x, exponent) == expected, x

    def test_int32_min(self):
        assert rounding_divide_by_pot(INT32_MIN, 31) == -1
        assert rounding_divide_by_pot(INT32_MIN, 0) == INT32_MIN
        assert rounding_divide_by_pot(INT32_MIN + 1, 31) == -1  # -0.99999... -> -1
        assert rounding_divide_by_pot(-(2**30), 31) == -1  # -0.5 -> -1
        assert rounding_divide_by_pot(2**30, 31) == 1  # +0.5 -> 1

    def test_random_sweep_against_reference(self):
        rng = np.random.default_rng(13)
        xs = random_x(rng, 20000)
        exponents = [int(e) for e in rng.integers(0, 32, size=20000)]
        actual = [rounding_divide_by_pot(x, e) for x, e in zip(xs, exponents)]
        expected = [ref.rounding_divide_by_pot_ref(x, e) for x, e in zip(xs, exponents)]
        assert_all_equal(actual, expected, list(zip(xs, exponents)))
        cmsis = [ref.arm_nn_divide_by_power_of_two_ref(x, e) for x, e in zip(xs, exponents)]
        assert_all_equal(cmsis, expected, list(zip(xs, exponents)))
        asm = [ref.arm_nn_divide_by_power_of_two_asm_ref(x, e) if e else r for x, e, r in zip(xs, exponents, expected)]
        assert_all_equal(asm, expected, list(zip(xs, exponents)))


# ---------------------------------------------------------------------------
# multiply_by_quantized_multiplier (double rounding) and its single-rounding twin
# ---------------------------------------------------------------------------

# (x, multiplier, shift, double-rounding result, single-rounding result); the real
# product x * multiplier * 2**(shift - 31) lands on a tie or just below one.
TIE_CASES = [
    (1, 2**30, 0, 1, 1),  # +0.5
    (-1, 2**30, 0, 0, 0),  # -0.5: both round toward +infinity here (SRDHM's tie rule)
    (2, 2**30, -1, 1, 1),  # +0.5
    (-2, 2**30, -1, -1, 0),  # -0.5: RoundingDivideByPOT goes away from zero, single rounding up
    (-6, 2**30, -1, -2, -1),  # -1.5
    (6, 2**30, -1, 2, 2),  # +1.5
    (4, 2**30, -2, 1, 1),  # +0.5
    (-4, 2**30, -2, -1, 0),  # -0.5
    (2**30, 2**30, -30, 1, 1),  # +0.5 at a deep shift
    (-(2**30), 2**30, -30, -1, 0),
    (INT32_MIN, 2**30, -31, -1, 0),  # -0.5 at the deepest shift
    (3, 3 * 2**29, 3, 18, 18),  # 3 * 0.75 * 8 = 18 exactly, left shift
    (-3, 3 * 2**29, 1, -4, -4),  # -4.5 -> SRDHM(-6, 0.75) = -4.5 -> -4
    (1, INT32_MAX, -1, 1, 0),  # 0.4999999998: SRDHM rounds to 1, then 0.5 rounds to 1 (double rounding)
    (-1, INT32_MAX, -1, -1, 0),
]


class TestMultiplyByQuantizedMultiplier:
    @pytest.mark.parametrize("x, multiplier, shift, double, single", TIE_CASES)
    def test_ties(self, x, multiplier, shift, double, single):
        assert multiply_by_quantized_multiplier(x, multiplier, shift) == double
        assert ref.multiply_by_quantized_multiplier_ref(x, multiplier, shift) == double
        assert multiply_by_quantized_multiplier_single_rounding(x, multiplier, shift) == single
        assert ref.multiply_by_quantized_multiplier_single_rounding_ref(x, multiplier, shift) == single

    @pytest.mark.parametrize("shift", DOUBLE_ROUNDING_SHIFTS)
    def test_every_shift_on_edge_grid(self, shift):
        for x in EDGE_X:
            for multiplier in EDGE_MULTIPLIERS:
                expected = ref.multiply_by_quantized_multiplier_ref(x, multiplier, shift)
                assert multiply_by_quantized_multiplier(x, multiplier, shift) == expected, (x, multiplier, shift)
                assert ref.arm_nn_requantize_ref(x, multiplier, shift) == expected, (x, multiplier, shift)

    @pytest.mark.parametrize("shift", TFLM_SHIFTS)
    def test_int32_min_input(self, shift):
        for multiplier in EDGE_MULTIPLIERS + [INT32_MIN, -(2**30)]:
            expected = ref.multiply_by_quantized_multiplier_ref(INT32_MIN, multiplier, shift)
            assert multiply_by_quantized_multiplier(INT32_MIN, multiplier, shift) == expected, multiplier

    def test_left_shift_wraps_in_int32(self):
        # The identity multiplier: 1.0 == 2**30 * 2**(1 - 31), so x is doubled in int32 first.
        assert quantize_multiplier(1.0) == (2**30, 1)
        assert multiply_by_quantized_multiplier(INT32_MIN, 2**30, 1) == 0  # -2**32 wraps to 0
        assert multiply_by_quantized_multiplier(2**30, 2**30, 1) == -(2**30)  # 2**31 wraps to -2**31
        assert multiply_by_quantized_multiplier(2**30 - 1, 2**30, 1) == 2**30 - 1  # no wrap

    def test_saturation_and_the_cmsis_nn_exception(self):
        # Only a multiplier of INT32_MIN (outside CMSIS-NN's documented range) tells the two apart.
        assert multiply_by_quantized_multiplier(INT32_MIN, INT32_MIN, 0) == INT32_MAX
        assert ref.arm_nn_requantize_ref(INT32_MIN, INT32_MIN, 0) == INT32_MIN
        assert multiply_by_quantized_multiplier(INT32_MIN, INT32_MIN, -1) == 2**30
        assert multiply_by_quantized_multiplier(2**30, INT32_MIN, 1) == INT32_MAX  # 2**31 wrapped to INT32_MIN

    def test_zero(self):
        for shift in TFLM_SHIFTS:
            assert multiply_by_quantized_multiplier(0, INT32_MAX, shift) == 0
            assert multiply_by_quantized_multiplier(INT32_MIN, 0, shift) == 0
            assert multiply_by_quantized_multiplier_single_rounding(0, INT32_MAX, shift) == 0
            assert multiply_by_quantized_multiplier_single_rounding(INT32_MIN, 0, shift) == 0
        # a flushed-to-zero multiplier gives zero for every input
        multiplier, shift = quantize_multiplier(2.0**-40)
        assert multiply_by_quantized_multiplier(INT32_MAX, multiplier, shift) == 0

    def test_random_sweep_against_references(self):
        rng = np.random.default_rng(20000)
        n = 20000
        xs = random_x(rng, n)
        multipliers = random_multipliers(rng, n, allow_negative=True)
        shifts = [int(s) for s in rng.integers(-31, 8, size=n)]
        triples = list(zip(xs, multipliers, shifts))
        actual = [multiply_by_quantized_multiplier(*t) for t in triples]
        expected = [ref.multiply_by_quantized_multiplier_ref(*t) for t in triples]
        assert_all_equal(actual, expected, triples)
        cmsis = [ref.arm_nn_requantize_ref(*t) for t in triples]
        assert_all_equal(cmsis, expected, triples)

    def test_within_one_of_the_exact_product(self):
        rng = np.random.default_rng(3)
        for x, multiplier, shift in zip(random_x(rng, 5000), random_multipliers(rng, 5000),
                                        rng.integers(-31, 8, size=5000)):
            shift = int(shift)
            if not INT32_MIN <= x * 2 ** max(shift, 0) <= INT32_MAX:
                continue  # the int32 left shift wraps
            exact = Fraction(x * multiplier) * Fraction(2) ** (shift - 31)
            assert abs(multiply_by_quantized_multiplier(x, multiplier, shift) - exact) <= 1


class TestMultiplyByQuantizedMultiplierSingleRounding:
    @pytest.mark.parametrize("shift", SINGLE_ROUNDING_SHIFTS)
    def test_every_shift_on_edge_grid(self, shift):
        for x in EDGE_X:
            for multiplier in EDGE_MULTIPLIERS:
                expected = ref.multiply_by_quantized_multiplier_single_rounding_ref(x, multiplier, shift)
                got = multiply_by_quantized_multiplier_single_rounding(x, multiplier, shift)
                assert got == expected, (x, multiplier, shift)
                assert ref.arm_nn_requantize_ref(x, multiplier, shift, single_rounding=True) == expected
                exact = Fraction(x * multiplier, 2 ** (31 - shift))
                assert expected == ref.to_int32(ref.round_half_up(exact)), (x, multiplier, shift)

    def test_result_outside_int32_wraps_like_the_cast(self):
        # 2**31 - 1 times (2**31 - 1) * 2**(30 - 31): far outside int32; TFLM's release cast wraps.
        got = multiply_by_quantized_multiplier_single_rounding(INT32_MAX, INT32_MAX, 30)
        assert got == ref.to_int32(ref.round_half_up(Fraction(INT32_MAX * INT32_MAX, 2)))

    def test_random_sweep_against_references(self):
        rng = np.random.default_rng(20001)
        n = 20000
        xs = random_x(rng, n)
        multipliers = random_multipliers(rng, n)
        shifts = [int(s) for s in rng.integers(-31, 31, size=n)]
        triples = list(zip(xs, multipliers, shifts))
        actual = [multiply_by_quantized_multiplier_single_rounding(*t) for t in triples]
        expected = [ref.multiply_by_quantized_multiplier_single_rounding_ref(*t) for t in triples]
        assert_all_equal(actual, expected, triples)
        cmsis = [ref.arm_nn_requantize_ref(*t, single_rounding=True) for t in triples]
        assert_all_equal(cmsis, expected, triples)

    def test_the_two_roundings_differ_only_near_ties(self):
        rng = np.random.default_rng(5)
        differ = 0
        for x, multiplier, shift in zip(random_x(rng, 20000), random_multipliers(rng, 20000),
                                        rng.integers(-31, 8, size=20000)):
            shift = int(shift)
            if not INT32_MIN <= x * 2 ** max(shift, 0) <= INT32_MAX:
                continue
            double = multiply_by_quantized_multiplier(x, multiplier, shift)
            single = multiply_by_quantized_multiplier_single_rounding(x, multiplier, shift)
            if double != single:
                differ += 1
                assert abs(double - single) == 1
        assert 0 < differ < 2000


# ---------------------------------------------------------------------------
# Inlined into a compiled kernel, with int32 array elements as firmware passes them
# ---------------------------------------------------------------------------


@njit(cache=False)
def _requantize_all(x_s32, multiplier_s32, shift_s32, out_double_s32, out_single_s32):
    for i in range(x_s32.shape[0]):
        out_double_s32[i] = multiply_by_quantized_multiplier(x_s32[i], multiplier_s32[i], shift_s32[i])
        out_single_s32[i] = multiply_by_quantized_multiplier_single_rounding(x_s32[i], multiplier_s32[i], shift_s32[i])


def test_inlined_in_a_kernel_with_int32_arrays():
    rng = np.random.default_rng(17)
    n = 4000
    x = np.array(random_x(rng, n), dtype=np.int32)
    multiplier = np.array(random_multipliers(rng, n), dtype=np.int32)
    shift = rng.integers(-31, 8, size=n).astype(np.int32)
    tail = 8
    out_double = np.full(n + tail, 0x5A5A5A5A, dtype=np.int32)
    out_single = np.full(n + tail, 0x5A5A5A5A, dtype=np.int32)
    _requantize_all(x, multiplier, shift, out_double[:n], out_single[:n])
    assert np.all(out_double[n:] == 0x5A5A5A5A) and np.all(out_single[n:] == 0x5A5A5A5A)
    triples = [(int(a), int(b), int(c)) for a, b, c in zip(x, multiplier, shift)]
    assert_all_equal(out_double[:n], [ref.multiply_by_quantized_multiplier_ref(*t) for t in triples], triples)
    assert_all_equal(out_single[:n], [ref.multiply_by_quantized_multiplier_single_rounding_ref(*t) for t in triples],
                     triples)


# ---------------------------------------------------------------------------
# Tier 1: the TFLM interpreter, one QUANTIZE (requantize) op per model
# ---------------------------------------------------------------------------


def _quantize_op_model(schema, in_type, out_type, in_scale, out_scale, n, in_zero_point=0, out_zero_point=0):
    """A one-op .tflite flatbuffer: QUANTIZE from ``in_type`` to ``out_type``, shape [n]."""
    import flatbuffers

    model = schema.ModelT()
    model.version = 3
    opcode = schema.OperatorCodeT()
    opcode.builtinCode = schema.BuiltinOperator.QUANTIZE
    opcode.deprecatedBuiltinCode = schema.BuiltinOperator.QUANTIZE
    opcode.version = 1
    model.operatorCodes = [opcode]
    model.buffers = [schema.BufferT() for _ in range(3)]

    def tensor(name, tensor_type, scale, zero_point, buffer):
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = name, [n], tensor_type, buffer
        q = schema.QuantizationParametersT()
        q.scale, q.zeroPoint = [scale], [zero_point]
        t.quantization = q
        return t

    graph = schema.SubGraphT()
    graph.tensors = [tensor("input", in_type, in_scale, in_zero_point, 1),
                     tensor("output", out_type, out_scale, out_zero_point, 2)]
    graph.inputs, graph.outputs = [0], [1]
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0], [1]
    graph.operators = [op]
    model.subgraphs = [graph]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.fixture(scope="module")
def tflm():
    pytest.importorskip("flatbuffers")
    pytest.importorskip("tflite_micro")
    from tflite_micro.python.tflite_micro import runtime
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    def run(in_dtype, out_dtype, in_scale, out_scale, x, in_zero_point=0, out_zero_point=0):
        types = {np.int16: schema.TensorType.INT16, np.int32: schema.TensorType.INT32}
        data = _quantize_op_model(schema, types[in_dtype], types[out_dtype], float(in_scale), float(out_scale),
                                  len(x), in_zero_point, out_zero_point)
        interpreter = runtime.Interpreter.from_bytes(data, arena_size=64 * 1024 + 16 * len(x))
        interpreter.set_input(np.asarray(x, dtype=in_dtype), 0)
        interpreter.invoke()
        return interpreter.get_output(0)

    return run


def _ours(x, in_scale, out_scale, in_zero_point, out_zero_point, lo, hi):
    """TFLM's reference Requantize, with our helpers: clamp(MBQM(x - zp_in) + zp_out)."""
    effective_scale = float(np.float32(in_scale)) / float(np.float32(out_scale))
    multiplier, shift = quantize_multiplier(effective_scale)
    out = []
    for v in x:
        r = int(multiply_by_quantized_multiplier(int(v) - in_zero_point, multiplier, shift)) + out_zero_point
        out.append(min(max(r, lo), hi))
    return out


def _scale_pairs(rng, count, lo_exp, hi_exp):
    """float32 (input_scale, output_scale) with effective scales log-uniform in [2**lo_exp, 2**hi_exp],
    plus exact powers of two so that ties occur."""
    pairs = [(np.float32(2.0**e), np.float32(1.0)) for e in range(lo_exp, hi_exp + 1, 3)]
    pairs += [(np.float32(0.75 * 2.0**e), np.float32(1.0)) for e in (-9, -1, 0, 2)]
    for _ in range(count):
        out_scale = np.float32(rng.uniform(1e-3, 1.0))
        in_scale = np.float32(out_scale * 2.0 ** rng.uniform(lo_exp, hi_exp))
        pairs.append((in_scale, out_scale))
    return pairs


def test_tflm_is_a_double_rounding_build(tflm):
    # -2 * 0.25 = -0.5: double rounding gives -1, TFLITE_SINGLE_ROUNDING would give 0.
    got = tflm(np.int16, np.int32, 0.25, 1.0, [-2, 2, -6, 6])
    assert list(got) == [-1, 1, -2, 2]


def test_tflm_int16_to_int32_requantize(tflm):
    """Every output bit visible: int32 output, int16 input; shifts from below -31 up to +8."""
    rng = np.random.default_rng(2024)
    edges = [-32768, -32767, -2, -1, 0, 1, 2, 3, 32767]
    for in_scale, out_scale in _scale_pairs(rng, 40, -34, 8):
        x = edges + [int(v) for v in rng.integers(-32768, 32768, size=1000)]
        in_zp = int(rng.integers(-100, 101))
        got = tflm(np.int16, np.int32, in_scale, out_scale, x, in_zp, 0)
        want = _ours(x, in_scale, out_scale, in_zp, 0, INT32_MIN, INT32_MAX)
        if list(map(int, got)) != want:
            pytest.fail(f"scales {in_scale!r}/{out_scale!r}: " + mismatch_report(got, want, x))


def test_tflm_int32_to_int16_requantize(tflm):
    """Full-range int32 input, including left shifts that wrap in int32."""
    rng = np.random.default_rng(2025)
    edges = [INT32_MIN, INT32_MIN + 1, -(2**30) - 1, -(2**30), -1, 0, 1, 2**30 - 1, 2**30, INT32_MAX]
    for in_scale, out_scale in _scale_pairs(rng, 40, -34, 8):
        x = edges + random_x(rng, 1000)
        out_zp = int(rng.integers(-100, 101))
        got = tflm(np.int32, np.int16, in_scale, out_scale, x, 0, out_zp)
        want = _ours(x, in_scale, out_scale, 0, out_zp, -32768, 32767)
        if list(map(int, got)) != want:
            pytest.fail(f"scales {in_scale!r}/{out_scale!r}: " + mismatch_report(got, want, x))
