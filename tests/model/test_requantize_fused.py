"""The branch-free one-shift requantization of the convolution kernels equals TFLM's two-step one, clamped."""

import numpy as np
import pytest

from sed_runtime._numba import njit
from sed_runtime.kernels.tflm_int8 import _clamp, _requantize_fused, requantize_lane_params, requantize_s32


@njit
def _reference(x, multiplier, shift, output_offset, act_min, act_max, single_rounding, out):
    for i in range(x.shape[0]):
        v = requantize_s32(x[i], multiplier[i], shift[i], single_rounding) + output_offset
        out[i] = _clamp(v, act_min, act_max)


@njit
def _fused(x, multiplier, left, add, neg, total, has_left, output_offset, act_min, act_max, single_rounding, out):
    for i in range(x.shape[0]):
        out[i] = _requantize_fused(x[i], multiplier[i], left[i], add[i], neg[i], total[i], output_offset, act_min,
                                   act_max, has_left, single_rounding)


@pytest.mark.parametrize("single_rounding", [False, True])
@pytest.mark.parametrize("shifts", [(-31, 31), (-31, 1), (-12, -4)])
@pytest.mark.parametrize("bounds", [(-128, 127), (-32768, 32767), (-2**40, 2**40)])
def test_requantize_fused_matches_tflm(single_rounding, shifts, bounds):
    rng = np.random.default_rng(abs(hash((single_rounding, shifts, bounds))) % 2**32)
    n = 200_000
    x = np.concatenate([rng.integers(-2**31, 2**31, n), rng.integers(-70000, 70000, n),
                        np.arange(-4096, 4096), [-2**31, 2**31 - 1]]).astype(np.int32)
    # multipliers as quantize_multiplier makes them (2**30 .. 2**31 - 1), plus small and negative ones
    multiplier = rng.integers(2**30, 2**31, x.size).astype(np.int32)
    multiplier[::7] = rng.integers(0 if single_rounding else -2**31 + 1, 2**31, multiplier[::7].size)
    shift = rng.integers(shifts[0], shifts[1], x.size).astype(np.int32)
    if single_rounding:
        shift = np.minimum(shift, 30)
    ref = np.zeros(x.size, np.int64)
    got = np.zeros(x.size, np.int64)
    _reference(x, multiplier, shift, 3, bounds[0], bounds[1], single_rounding, ref)
    left, add, neg, total, has_left = requantize_lane_params(multiplier, shift, single_rounding)
    _fused(x, multiplier, left, add, neg, total, has_left, 3, bounds[0], bounds[1], single_rounding, got)
    bad = np.flatnonzero(ref != got)
    assert bad.size == 0, (f"{bad.size} of {x.size} differ; first: x={x[bad[0]]} multiplier={multiplier[bad[0]]} "
                           f"shift={shift[bad[0]]} ref {ref[bad[0]]} got {got[bad[0]]}")
