"""Tier 1: sed_runtime.kernels.cmsis_dsp equals the CMSIS-DSP wheel bit for bit.

The ``cmsisdsp`` wheel is CMSIS-DSP's plain C path (no ARM_MATH_DSP) built with
loop unrolling, which is what the kernels mirror.  Lengths include values that
are not multiples of 4 (the unrolled loops' tails).  Every kernel that writes
``dst`` gets a view of a larger buffer whose tail holds a sentinel, checked
untouched afterwards.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

cmsisdsp = pytest.importorskip("cmsisdsp")

from sed_runtime._numba import njit  # noqa: E402
from sed_runtime.kernels import cmsis_dsp as k  # noqa: E402
from _compare import assert_equal_ints  # noqa: E402

I16_MIN, I16_MAX = -32768, 32767
I32_MIN, I32_MAX = -(2**31), 2**31 - 1
LENGTHS = (1, 2, 3, 4, 5, 7, 8, 13, 16, 31, 64, 257)
GUARD = 5
SENTINEL = {np.dtype(np.int16): -12345, np.dtype(np.int32): -123456789}


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def _rng(*key) -> np.random.Generator:
    """A generator seeded from the test's name and parameters (stable across runs)."""
    return np.random.default_rng([20261127, zlib.crc32(repr(key).encode())])


def _q15(rng, n, extremes=True):
    x = rng.integers(I16_MIN, I16_MAX + 1, n, dtype=np.int64)
    if extremes and n >= 4:  # make the saturating corners likely
        idx = rng.choice(n, size=max(1, n // 8), replace=False)
        x[idx] = rng.choice([I16_MIN, I16_MAX, I16_MIN + 1, 0, -1, 1], size=idx.size)
    return x.astype(np.int16)


def _q31(rng, n, extremes=True):
    x = rng.integers(I32_MIN, I32_MAX + 1, n, dtype=np.int64)
    if extremes and n >= 4:
        idx = rng.choice(n, size=max(1, n // 8), replace=False)
        x[idx] = rng.choice([I32_MIN, I32_MAX, I32_MIN + 1, 0, -1, 1], size=idx.size)
    return x.astype(np.int32)


def _guarded(n, dtype):
    """A buffer of n + GUARD sentinels and the length-n view a kernel writes."""
    buf = np.full(n + GUARD, SENTINEL[np.dtype(dtype)], dtype=dtype)
    return buf, buf[:n]


def _check_guard(buf, n, what):
    assert_equal_ints(buf[n:], np.full(GUARD, SENTINEL[buf.dtype], dtype=buf.dtype), f"{what} guard tail")


def _edge_q15(n):
    return {
        "zeros": np.zeros(n, np.int16),
        "min": np.full(n, I16_MIN, np.int16),
        "max": np.full(n, I16_MAX, np.int16),
        "alternating": np.resize(np.array([I16_MIN, I16_MAX], np.int16), n),
    }


def _edge_q31(n):
    return {
        "zeros": np.zeros(n, np.int32),
        "min": np.full(n, I32_MIN, np.int32),
        "max": np.full(n, I32_MAX, np.int32),
        "alternating": np.resize(np.array([I32_MIN, I32_MAX, -1, 1], np.int32), n),
    }


# --------------------------------------------------------------------------
# basic math
# --------------------------------------------------------------------------

@pytest.mark.parametrize("n", LENGTHS)
def test_mult_q15_random(n):
    rng = _rng("mult", n)
    a, b = _q15(rng, n), _q15(rng, n)
    buf, dst = _guarded(n, np.int16)
    k.arm_mult_q15(a, b, dst)
    assert_equal_ints(dst, cmsisdsp.arm_mult_q15(a, b), f"arm_mult_q15 n={n}")
    _check_guard(buf, n, "arm_mult_q15")


@pytest.mark.parametrize("case", ["zeros", "min", "max", "alternating"])
def test_mult_q15_edges(case):
    n = 11
    a = _edge_q15(n)[case]
    for b in _edge_q15(n).values():
        buf, dst = _guarded(n, np.int16)
        k.arm_mult_q15(a, b, dst)
        assert_equal_ints(dst, cmsisdsp.arm_mult_q15(a, b), f"arm_mult_q15 {case}")
        _check_guard(buf, n, "arm_mult_q15")
    # -32768 * -32768 saturates
    out = np.empty(1, np.int16)
    k.arm_mult_q15(np.array([I16_MIN], np.int16), np.array([I16_MIN], np.int16), out)
    assert out[0] == I16_MAX


def test_mult_q15_in_place():
    rng = _rng("mult-inplace")
    a, b = _q15(rng, 37), _q15(rng, 37)
    ref = cmsisdsp.arm_mult_q15(a, b)
    k.arm_mult_q15(a, b, a)
    assert_equal_ints(a, ref, "arm_mult_q15 in place")


@pytest.mark.parametrize("shift", [-16, -9, -1, 0, 1, 3, 8, 15])
@pytest.mark.parametrize("n", (1, 3, 4, 7, 64))
def test_scale_q15(n, shift):
    rng = _rng("scale15", n, shift)
    src = _q15(rng, n)
    for scale in (I16_MIN, I16_MAX, 0, 1, -1, 16384, int(rng.integers(I16_MIN, I16_MAX + 1))):
        buf, dst = _guarded(n, np.int16)
        k.arm_scale_q15(src, scale, shift, dst)
        assert_equal_ints(dst, cmsisdsp.arm_scale_q15(src, scale, shift),
                          f"arm_scale_q15 n={n} scale={scale} shift={shift}")
        _check_guard(buf, n, "arm_scale_q15")


@pytest.mark.parametrize("shift", [-32, -31, -17, -2, -1, 0, 1, 5, 16, 29, 30])
@pytest.mark.parametrize("n", (1, 3, 4, 7, 64))
def test_scale_q31(n, shift):
    rng = _rng("scale31", n, shift)
    src = _q31(rng, n)
    for scale in (I32_MIN, I32_MAX, 0, 1, -1, 2**30, int(rng.integers(I32_MIN, I32_MAX + 1))):
        buf, dst = _guarded(n, np.int32)
        k.arm_scale_q31(src, scale, shift, dst)
        assert_equal_ints(dst, cmsisdsp.arm_scale_q31(src, scale, shift),
                          f"arm_scale_q31 n={n} scale={scale} shift={shift}")
        _check_guard(buf, n, "arm_scale_q31")


def test_scale_q31_edges_and_in_place():
    for name, src in _edge_q31(9).items():
        for scale in (I32_MIN, I32_MAX):
            for shift in (-1, 0, 3):
                ref = cmsisdsp.arm_scale_q31(src, scale, shift)
                work = src.copy()
                k.arm_scale_q31(work, scale, shift, work)
                assert_equal_ints(work, ref, f"arm_scale_q31 {name} scale={scale} shift={shift} in place")


@pytest.mark.parametrize("n", LENGTHS)
def test_offset_q31(n):
    rng = _rng("offset", n)
    src = _q31(rng, n)
    for offset in (I32_MIN, I32_MAX, 0, -1, 1, int(rng.integers(I32_MIN, I32_MAX + 1))):
        buf, dst = _guarded(n, np.int32)
        k.arm_offset_q31(src, offset, dst)
        assert_equal_ints(dst, cmsisdsp.arm_offset_q31(src, offset), f"arm_offset_q31 n={n} offset={offset}")
        _check_guard(buf, n, "arm_offset_q31")


def test_offset_q31_edges():
    for name, src in _edge_q31(6).items():
        for offset in (I32_MIN, I32_MAX, 0, 1, -1):
            dst = np.empty(6, np.int32)
            k.arm_offset_q31(src, offset, dst)
            assert_equal_ints(dst, cmsisdsp.arm_offset_q31(src, offset), f"arm_offset_q31 {name} offset={offset}")


@pytest.mark.parametrize("n", (1, 3, 4, 7, 33))
def test_shift_q31(n):
    rng = _rng("shift31", n)
    src = np.concatenate([_q31(rng, n), np.array([I32_MIN, I32_MAX, 0, -1, 1], np.int32)])
    m = src.size
    for shift in range(-31, 32):
        buf, dst = _guarded(m, np.int32)
        k.arm_shift_q31(src, shift, dst)
        assert_equal_ints(dst, cmsisdsp.arm_shift_q31(src, shift), f"arm_shift_q31 n={m} shift={shift}")
        _check_guard(buf, m, "arm_shift_q31")


@pytest.mark.parametrize("n", (1, 3, 4, 7, 33))
def test_shift_q15(n):
    rng = _rng("shift15", n)
    src = np.concatenate([_q15(rng, n), np.array([I16_MIN, I16_MAX, 0, -1, 1], np.int16)])
    m = src.size
    for shift in range(-31, 32):
        buf, dst = _guarded(m, np.int16)
        k.arm_shift_q15(src, shift, dst)
        assert_equal_ints(dst, cmsisdsp.arm_shift_q15(src, shift), f"arm_shift_q15 n={m} shift={shift}")
        _check_guard(buf, m, "arm_shift_q15")


def test_shift_in_place():
    rng = _rng("shift-inplace")
    a15, a31 = _q15(rng, 21), _q31(rng, 21)
    ref15, ref31 = cmsisdsp.arm_shift_q15(a15, 3), cmsisdsp.arm_shift_q31(a31, -5)
    k.arm_shift_q15(a15, 3, a15)
    k.arm_shift_q31(a31, -5, a31)
    assert_equal_ints(a15, ref15, "arm_shift_q15 in place")
    assert_equal_ints(a31, ref31, "arm_shift_q31 in place")


@pytest.mark.parametrize("n", LENGTHS)
def test_dot_prod_q15(n):
    rng = _rng("dot", n)
    a, b = _q15(rng, n), _q15(rng, n)
    got = k.arm_dot_prod_q15(a, b)
    assert_equal_ints(got, cmsisdsp.arm_dot_prod_q15(a, b), f"arm_dot_prod_q15 n={n}")


def test_dot_prod_q15_edges():
    for name, a in _edge_q15(1023).items():
        for b in _edge_q15(1023).values():
            assert_equal_ints(k.arm_dot_prod_q15(a, b), cmsisdsp.arm_dot_prod_q15(a, b), f"arm_dot_prod_q15 {name}")
    a = np.full(1023, I16_MIN, np.int16)
    assert int(k.arm_dot_prod_q15(a, a)) == 1023 * 2**30  # exact, no wrap


# --------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------

@pytest.mark.parametrize("n", LENGTHS)
def test_absmax_q15_random(n):
    rng = _rng("absmax", n)
    src = _q15(rng, n, extremes=False)
    got = k.arm_absmax_q15(src)
    ref = cmsisdsp.arm_absmax_q15(src)
    assert_equal_ints(np.array(got), np.array(ref), f"arm_absmax_q15 n={n} (value, index)")


@pytest.mark.parametrize(
    "values",
    [
        [0],
        [I16_MIN],
        [0, 0, 0, 0, 0],
        [3, -32768, 32767, -32767],          # |-32768| saturates and ties 32767
        [32767, -32768],
        [-32767, 32767, -32768, 32767],
        [5, -7, 7, -7, 7, 2, 1],             # ties: the first one wins
        [1, 2, 3, 4, 5, 6, 7, 9, -9, 9],     # tie across the unrolled blocks and the tail
        [-1] * 9,
        [I16_MIN] * 6,
        [100] * 4 + [I16_MIN] + [I16_MAX] * 3,
    ],
)
def test_absmax_q15_ties_and_edges(values):
    src = np.array(values, np.int16)
    got = k.arm_absmax_q15(src)
    ref = cmsisdsp.arm_absmax_q15(src)
    assert_equal_ints(np.array(got), np.array(ref), f"arm_absmax_q15 {values} (value, index)")


def test_absmax_q15_many_ties():
    rng = _rng("absmax-ties")
    for n in (2, 5, 8, 9, 30):
        for _ in range(50):
            src = rng.choice(np.array([-4, -3, 3, 4, 0], np.int16), n)
            assert_equal_ints(np.array(k.arm_absmax_q15(src)), np.array(cmsisdsp.arm_absmax_q15(src)),
                              f"arm_absmax_q15 {src.tolist()}")


# --------------------------------------------------------------------------
# fast math
# --------------------------------------------------------------------------

def _divide_cases():
    specials = [I16_MIN, I16_MIN + 1, -16384, -1000, -2, -1, 0, 1, 2, 3, 1000, 16383, 16384, I16_MAX]
    pairs = [(a, b) for a in specials for b in specials]
    rng = _rng("divide")
    pairs += [(int(a), int(b)) for a, b in rng.integers(I16_MIN, I16_MAX + 1, (4000, 2))]
    small = rng.integers(-300, 301, (2000, 2))                # numerator > denominator often
    pairs += [(int(a), int(b)) for a, b in small]
    return pairs


def test_divide_q15():
    for num, den in _divide_cases():
        got = k.arm_divide_q15(num, den)
        ref = cmsisdsp.arm_divide_q15(num, den)
        assert_equal_ints(np.array(got), np.array(ref), f"arm_divide_q15({num}, {den}) (status, quotient, shift)")


def test_divide_q15_documented_edges():
    assert tuple(int(v) for v in k.arm_divide_q15(5, 0)) == (k.ARM_MATH_NANINF, I16_MAX, 0)
    assert tuple(int(v) for v in k.arm_divide_q15(-5, 0)) == (k.ARM_MATH_NANINF, I16_MIN, 0)
    assert tuple(int(v) for v in k.arm_divide_q15(0, 0)) == (k.ARM_MATH_NANINF, I16_MAX, 0)
    assert tuple(int(v) for v in k.arm_divide_q15(100, 100)) == (k.ARM_MATH_SUCCESS, 16384, 1)
    assert tuple(int(v) for v in k.arm_divide_q15(300, -100)) == (k.ARM_MATH_SUCCESS, -24576, 2)


def _sqrt_q31_cases():
    cases = [0, 1, 2, 3, 4, 5, I32_MAX, I32_MAX - 1, 2**30, 2**30 - 1, -1, -2, I32_MIN, I32_MIN + 1]
    cases += [2**e + d for e in range(31) for d in (-1, 0, 1) if 0 <= 2**e + d <= I32_MAX]
    # both sides of every seed-table row, for even and odd normalization shifts
    for row in range(8, 32):
        for down in (0, 1, 4, 9):
            base = (row << 26) >> down
            cases += [base - 1, base, base + 1]
    rng = _rng("sqrt31")
    cases += [int(v) for v in rng.integers(0, I32_MAX + 1, 6000)]
    cases += [int(v) for v in (rng.integers(1, 2**20, 2000))]
    return [c for c in cases if I32_MIN <= c <= I32_MAX]


def test_sqrt_q31():
    cases = _sqrt_q31_cases()
    got = np.array([k.arm_sqrt_q31(c) for c in cases], dtype=np.int64)
    ref = np.array([cmsisdsp.arm_sqrt_q31(c) for c in cases], dtype=np.int64)
    assert_equal_ints(got, ref, "arm_sqrt_q31 (status, root) per input")


def test_sqrt_q31_edges():
    assert tuple(int(v) for v in k.arm_sqrt_q31(0)) == (k.ARM_MATH_SUCCESS, 0)
    assert tuple(int(v) for v in k.arm_sqrt_q31(-7)) == (k.ARM_MATH_ARGUMENT_ERROR, 0)
    assert tuple(int(v) for v in k.arm_sqrt_q31(I32_MAX)) == tuple(cmsisdsp.arm_sqrt_q31(I32_MAX))


def test_sqrt_q15_exhaustive():
    values = range(I16_MIN, I16_MAX + 1)
    got = np.array([k.arm_sqrt_q15(v) for v in values], dtype=np.int64)
    ref = np.array([cmsisdsp.arm_sqrt_q15(v) for v in values], dtype=np.int64)
    assert_equal_ints(got, ref, "arm_sqrt_q15 (status, root), row = input + 32768")


def test_sqrt_seed_tables():
    """The generated Newton seeds are the rounded 1/sqrt values they claim to be."""
    for i, seed in enumerate(k._SQRT_SEED_Q31):
        assert abs(int(seed) - 2**28 / math.sqrt((8 + i) / 32)) <= 0.5
    for i, seed in enumerate(k._SQRT_SEED_Q15):
        assert abs(int(seed) - 2**12 / math.sqrt((4 + i) / 16)) <= 0.5
    assert k.LN2_Q31 == math.floor(math.log(2) * 2**31)
    assert k.LN2_Q15 == math.floor(math.log(2) * 2**15)


def test_vlog_q15_exhaustive():
    src = np.arange(I16_MIN, I16_MAX + 1, dtype=np.int16)
    buf, dst = _guarded(src.size, np.int16)
    k.arm_vlog_q15(src, dst)
    assert_equal_ints(dst, cmsisdsp.arm_vlog_q15(src), "arm_vlog_q15, pos = input + 32768")
    _check_guard(buf, src.size, "arm_vlog_q15")


def test_vlog_q15_documented_values():
    src = np.array([0, 1, I16_MAX, -1, I16_MIN, 16384], np.int16)
    dst = np.empty_like(src)
    k.arm_vlog_q15(src, dst)
    assert dst.tolist() == [-22713, -21294, -1, 1418, 0, -1420]
    # the approximation: ln(x / 2**15) in q4.11 within 2 LSB over the positive range
    pos = np.arange(1, I16_MAX + 1, dtype=np.int16)
    out = np.empty_like(pos)
    k.arm_vlog_q15(pos, out)
    exact = np.log(pos / 2**15) * 2**11
    assert np.max(np.abs(out - exact)) < 2.0


def _vlog_q31_cases():
    cases = [0, 1, 2, 3, I32_MAX, I32_MAX - 1, -1, -2, I32_MIN, I32_MIN + 1, 2**30, 2**30 + 1]
    cases += [2**e + d for e in range(31) for d in (-1, 0, 1) if 0 <= 2**e + d <= I32_MAX]
    cases += [-(2**e) for e in range(31)]
    rng = _rng("vlog31")
    cases += [int(v) for v in rng.integers(I32_MIN, I32_MAX + 1, 4000)]
    cases += [int(v) for v in rng.integers(1, 2**16, 1000)]
    return np.array(cases, dtype=np.int32)


@pytest.mark.parametrize("n", LENGTHS)
def test_vlog_q31_lengths(n):
    src = _q31(_rng("vlog31", n), n)
    buf, dst = _guarded(n, np.int32)
    k.arm_vlog_q31(src, dst)
    assert_equal_ints(dst, cmsisdsp.arm_vlog_q31(src), f"arm_vlog_q31 n={n}")
    _check_guard(buf, n, "arm_vlog_q31")


def test_vlog_q31_cases():
    src = _vlog_q31_cases()
    buf, dst = _guarded(src.size, np.int32)
    k.arm_vlog_q31(src, dst)
    assert_equal_ints(dst, cmsisdsp.arm_vlog_q31(src), "arm_vlog_q31 cases")
    _check_guard(buf, src.size, "arm_vlog_q31")


def test_vlog_q31_documented_values_and_in_place():
    src = np.array([0, 1, I32_MAX, -1, I32_MIN, 2**30], np.int32)
    k.arm_vlog_q31(src, src)
    assert src.tolist() == [-1488522235, -1442005916, -1, 46516319, 0, -46516320]


@pytest.mark.parametrize("n", (1, 2, 3, 4, 5, 7, 8, 33, 256))
def test_cmplx_mag_q15_random(n):
    src = _q15(_rng("mag", n), 2 * n)
    buf, dst = _guarded(n, np.int16)
    k.arm_cmplx_mag_q15(src, dst)
    assert_equal_ints(dst, cmsisdsp.arm_cmplx_mag_q15(src), f"arm_cmplx_mag_q15 n={n}")
    _check_guard(buf, n, "arm_cmplx_mag_q15")


def test_cmplx_mag_q15_edges_and_in_place():
    for name, src in _edge_q15(14).items():
        dst = np.empty(7, np.int16)
        k.arm_cmplx_mag_q15(src, dst)
        assert_equal_ints(dst, cmsisdsp.arm_cmplx_mag_q15(src), f"arm_cmplx_mag_q15 {name}")
    grid = np.array([I16_MIN, I16_MIN + 1, -1, 0, 1, I16_MAX], np.int16)
    src = np.stack(np.meshgrid(grid, grid), axis=-1).reshape(-1).copy()
    ref = cmsisdsp.arm_cmplx_mag_q15(src)
    n = src.size // 2
    k.arm_cmplx_mag_q15(src, src[:n])
    assert_equal_ints(src[:n], ref, "arm_cmplx_mag_q15 in place, corner grid")


# --------------------------------------------------------------------------
# matrix
# --------------------------------------------------------------------------

MAT_SHAPES = [(1, 1), (1, 2), (1, 7), (2, 3), (3, 5), (4, 1), (4, 4), (5, 6), (6, 2),
              (7, 9), (8, 3), (9, 10), (13, 17), (4, 33), (17, 64)]


@pytest.mark.parametrize("shape", MAT_SHAPES)
def test_mat_vec_mult_q15_random(shape):
    rows, cols = shape
    rng = _rng("matvec", rows, cols)
    mat = _q15(rng, rows * cols).reshape(rows, cols)
    vec = _q15(rng, cols)
    buf, dst = _guarded(rows, np.int16)
    k.arm_mat_vec_mult_q15(mat, vec, dst)
    assert_equal_ints(dst, cmsisdsp.arm_mat_vec_mult_q15(mat, vec), f"arm_mat_vec_mult_q15 {shape}")
    _check_guard(buf, rows, "arm_mat_vec_mult_q15")


@pytest.mark.parametrize("shape", [(1, 2), (3, 4), (4, 6), (5, 6), (7, 7), (9, 11)])
def test_mat_vec_mult_q15_edges(shape):
    """All -32768 operands: the plain-C __SMLALD pair sum wraps (reproduced)."""
    rows, cols = shape
    for name, flat in _edge_q15(rows * cols).items():
        mat = flat.reshape(rows, cols)
        for vname, vec in _edge_q15(cols).items():
            dst = np.empty(rows, np.int16)
            k.arm_mat_vec_mult_q15(mat, vec, dst)
            assert_equal_ints(dst, cmsisdsp.arm_mat_vec_mult_q15(mat, vec),
                              f"arm_mat_vec_mult_q15 {shape} mat={name} vec={vname}")


@pytest.mark.parametrize("shape", [(300, 300), (40, 2000), (9, 8000), (7, 10000)])
def test_mat_vec_mult_q15_offset_wrap(shape):
    """Matrices over 65536 elements: CMSIS's uint16_t row offset wraps (reproduced)."""
    rows, cols = shape
    rng = _rng("matvec-big", rows, cols)
    mat = rng.integers(-4000, 4000, (rows, cols), dtype=np.int16)
    vec = rng.integers(-4000, 4000, cols, dtype=np.int16)
    buf, dst = _guarded(rows, np.int16)
    k.arm_mat_vec_mult_q15(mat, vec, dst)
    assert_equal_ints(dst, cmsisdsp.arm_mat_vec_mult_q15(mat, vec), f"arm_mat_vec_mult_q15 {shape}")
    _check_guard(buf, rows, "arm_mat_vec_mult_q15")


def _mat_vec_exact(mat, vec):
    acc = mat.astype(np.int64) @ vec.astype(np.int64)
    return np.clip(acc >> 15, I16_MIN, I16_MAX)


@pytest.mark.parametrize("shape", [(1, 2), (3, 4), (4, 6), (5, 6), (7, 7), (13, 17)])
def test_mat_vec_mult_q15_dsp_path_is_exact(shape):
    """ARM_MATH_DSP: SMLALD is exact, so results equal the exact product (no wrap)."""
    rows, cols = shape
    rng = _rng("matvec-dsp", rows, cols)
    cases = [(_q15(rng, rows * cols).reshape(rows, cols), _q15(rng, cols))]
    cases += [(np.full((rows, cols), I16_MIN, np.int16), np.full(cols, I16_MIN, np.int16))]
    for mat, vec in cases:
        dst = np.empty(rows, np.int16)
        k.arm_mat_vec_mult_q15(mat, vec, dst, True)
        assert_equal_ints(dst, _mat_vec_exact(mat, vec), f"arm_mat_vec_mult_q15 dsp {shape}")


def test_mat_vec_mult_q15_paths_agree_without_min_vector():
    rng = _rng("matvec-paths")
    mat = rng.integers(I16_MIN, I16_MAX + 1, (300, 300), dtype=np.int16)
    vec = rng.integers(I16_MIN + 1, I16_MAX + 1, 300, dtype=np.int16)
    c_path, dsp_path = np.empty(300, np.int16), np.empty(300, np.int16)
    k.arm_mat_vec_mult_q15(mat, vec, c_path, False)
    k.arm_mat_vec_mult_q15(mat, vec, dsp_path, True)
    assert_equal_ints(dsp_path, c_path, "arm_mat_vec_mult_q15 dsp vs C, no -32768 in vec")


# --------------------------------------------------------------------------
# composition inside one compiled function, on slices
# --------------------------------------------------------------------------

@njit
def _frame(x_q15, gains_q15, spectrum_q15, mag_q15, work_q31, log_q31, mat, out_q15):
    k.arm_mult_q15(x_q15, gains_q15, x_q15)
    energy = k.arm_dot_prod_q15(x_q15[1:], x_q15[:-1])
    peak, where = k.arm_absmax_q15(x_q15[2:])
    k.arm_cmplx_mag_q15(spectrum_q15, mag_q15)
    for i in range(mag_q15.shape[0]):
        work_q31[i] = np.int64(mag_q15[i]) << 16
    k.arm_offset_q31(work_q31, 1, work_q31)
    k.arm_vlog_q31(work_q31, log_q31)
    k.arm_mat_vec_mult_q15(mat, mag_q15, out_q15, False)
    k.arm_scale_q15(out_q15, 16384, 1, out_q15)
    return energy, peak, where


def test_kernels_compose_in_one_compiled_function():
    rng = _rng("compose")
    x = _q15(rng, 16)
    gains = _q15(rng, 16)
    spectrum = _q15(rng, 10)
    mat = _q15(rng, 15).reshape(3, 5)
    mag = np.empty(5, np.int16)
    work = np.empty(5, np.int32)
    log = np.empty(5, np.int32)
    out = np.empty(3, np.int16)
    energy, peak, where = _frame(x.copy(), gains, spectrum, mag, work, log, mat, out)

    y = cmsisdsp.arm_mult_q15(x, gains)
    assert int(energy) == cmsisdsp.arm_dot_prod_q15(y[1:].copy(), y[:-1].copy())
    assert_equal_ints(np.array([peak, where]), np.array(cmsisdsp.arm_absmax_q15(y[2:].copy())), "absmax of slice")
    ref_mag = cmsisdsp.arm_cmplx_mag_q15(spectrum)
    assert_equal_ints(mag, ref_mag, "cmplx_mag")
    ref_work = cmsisdsp.arm_offset_q31(ref_mag.astype(np.int32) << 16, 1)
    assert_equal_ints(log, cmsisdsp.arm_vlog_q31(ref_work), "vlog of offset magnitudes")
    ref_out = cmsisdsp.arm_scale_q15(cmsisdsp.arm_mat_vec_mult_q15(mat, ref_mag), 16384, 1)
    assert_equal_ints(out, ref_out, "mat_vec then scale")


def test_empty_vectors_are_no_ops():
    empty15, empty31 = np.empty(0, np.int16), np.empty(0, np.int32)
    k.arm_mult_q15(empty15, empty15, empty15)
    k.arm_scale_q15(empty15, 1, 0, empty15)
    k.arm_shift_q15(empty15, 1, empty15)
    k.arm_cmplx_mag_q15(empty15, empty15)
    k.arm_vlog_q15(empty15, empty15)
    k.arm_scale_q31(empty31, 1, 0, empty31)
    k.arm_offset_q31(empty31, 1, empty31)
    k.arm_shift_q31(empty31, 1, empty31)
    k.arm_vlog_q31(empty31, empty31)
    assert int(k.arm_dot_prod_q15(empty15, empty15)) == 0
