"""Tier 3 for the gemmlowp fixed-point helpers: accuracy against double precision (the figures the module states),
plus exact edge values gemmlowp defines."""

from __future__ import annotations

import numpy as np

from sed_runtime._numba import njit
from sed_runtime.kernels.tflm_fixedpoint import (
    INT32_MAX,
    exp_on_negative_values,
    get_reciprocal,
    logistic,
    one_over_one_plus_x_for_x_in_0_1,
    rounding_half_sum,
    saturating_rounding_multiply_by_pot,
    tanh,
)


@njit
def _map(fn_id, raws, bits, out):
    for i in range(raws.size):
        if fn_id == 0:
            out[i] = exp_on_negative_values(raws[i], bits)
        elif fn_id == 1:
            out[i] = one_over_one_plus_x_for_x_in_0_1(raws[i])
        elif fn_id == 2:
            out[i] = logistic(raws[i], bits)
        else:
            out[i] = tanh(raws[i], bits)


def _run(fn_id, raws, bits=0):
    out = np.zeros(raws.size, np.int64)
    _map(fn_id, raws.astype(np.int64), bits, out)
    return out / 2.0**31


def test_exp_on_negative_values_accuracy():
    rng = np.random.default_rng(0)
    for bits in (4, 5):
        raws = np.concatenate([-rng.integers(0, 2**31, 200_000), -np.arange(2**16)])
        err = np.abs(_run(0, raws, bits) - np.exp(raws / 2.0 ** (31 - bits)))
        assert err.max() <= 2.3e-7, (bits, err.max())


def test_reciprocal_logistic_tanh_accuracy():
    rng = np.random.default_rng(1)
    raws = rng.integers(0, 2**31, 200_000)
    assert np.abs(_run(1, raws) - 1 / (1 + raws / 2.0**31)).max() <= 3.2e-9
    raws = rng.integers(-(2**31) + 1, 2**31, 200_000)
    x = raws / 2.0**27
    assert np.abs(_run(2, raws, 4) - 1 / (1 + np.exp(-x))).max() <= 7.1e-8
    assert np.abs(_run(3, raws, 4) - np.tanh(x)).max() <= 1.5e-7


def test_exact_edges():
    assert _run(0, np.array([0]), 5)[0] * 2**31 == INT32_MAX  # exp(0) is gemmlowp's One()
    assert _run(2, np.array([0]), 4)[0] == 0.5 and _run(3, np.array([0]), 4)[0] == 0.0
    assert rounding_half_sum(3, 4) == 4 and rounding_half_sum(-3, -4) == -4 and rounding_half_sum(-3, 4) == 1
    assert saturating_rounding_multiply_by_pot(2**29, 2) == INT32_MAX
    assert saturating_rounding_multiply_by_pot(-(2**29), 2) == -(2**31)
    assert saturating_rounding_multiply_by_pot(-(2**29) + 1, 2) == -(2**31) + 4
    assert saturating_rounding_multiply_by_pot(-6, -2) == -2  # rounding shift: -1.5 -> -2
    scale, bits_over = get_reciprocal(1 << 19, 12)  # 1.0 in q12.19: the reciprocal is ~1.0
    assert bits_over == 0 and abs(scale / 2.0**31 - 1.0) < 1e-8
