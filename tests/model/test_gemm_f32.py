"""conv_per_channel_gemm_f32 (input offset folded into the bias) == conv_per_channel, including wrapped sums."""

import numpy as np
import pytest

import sed_runtime.kernels.tflm_int8 as K


def _run_both(rng, in_shape, out_c, k_h, k_w, stride, dilation, pad, input_offset, bias_scale, single_rounding):
    n, in_h, in_w, in_c = in_shape
    out_h = (in_h + 2 * pad[0] - dilation[0] * (k_h - 1) - 1) // stride[0] + 1
    out_w = (in_w + 2 * pad[1] - dilation[1] * (k_w - 1) - 1) // stride[1] + 1
    x = rng.integers(-128, 128, in_shape).astype(np.int8)
    filt = rng.integers(-127, 128, (out_c, k_h, k_w, in_c)).astype(np.int32)  # [OC, KH, KW, IC]
    bias = rng.integers(-bias_scale, bias_scale, out_c, dtype=np.int64).astype(np.int32)
    if bias_scale > 1 << 24:  # sums that wrap modulo 2**32 both ways
        bias[0], bias[1] = 2**31 - 1, -2**31
    multiplier = rng.integers(1 << 30, (1 << 31) - 1, out_c).astype(np.int64)
    shift = rng.integers(-14, 2, out_c).astype(np.int64)
    output_offset, act_min, act_max = 3, -128, 127

    ref = np.zeros((n, out_h, out_w, out_c), np.int8)
    K.conv_per_channel(x, np.ascontiguousarray(filt.transpose(1, 2, 3, 0)), bias, ref, np.zeros(out_c, np.int32),
                       input_offset, output_offset, multiplier, shift, stride[0], stride[1], dilation[0],
                       dilation[1], pad[0], pad[1], act_min, act_max, 1, single_rounding)

    filter_ck = filt.reshape(out_c, -1)
    assert K.gemm_f32_folded_is_exact(filter_ck)
    pixels, depth = n * out_h * out_w, filter_ck.shape[1]
    pointwise = (k_h, k_w, stride, pad) == (1, 1, (1, 1), (0, 0))
    shape = (1, 1, 1, 1) if pointwise else K.gemm_padded_shape(n, in_h, in_w, in_c, out_h, out_w, k_h, k_w,
                                                               stride[0], stride[1], dilation[0], dilation[1],
                                                               pad[0], pad[1])
    padded = np.full(shape, -input_offset, np.float32)
    index = np.zeros(0, np.int32) if pointwise else K.gemm_patch_index(shape, out_h, out_w, k_h, k_w, stride[0],
                                                                       stride[1], dilation[0], dilation[1])
    folded = K.gemm_folded_bias(filter_ck, bias, input_offset)
    may_wrap = K.gemm_sum_may_wrap(filter_ck, folded)
    left, add, neg, total, has_left = K.requantize_lane_params(multiplier, shift, single_rounding)
    out = np.zeros((n, out_h, out_w, out_c), np.int8)
    K.conv_per_channel_gemm_f32(x, np.ascontiguousarray(filter_ck.T, dtype=np.float32), folded, out, padded, index,
                                np.zeros((pixels, depth), np.float32), np.zeros((pixels, out_c), np.float32),
                                output_offset, multiplier, left, add, neg, total, has_left, pad[0], pad[1], act_min,
                                act_max, single_rounding, may_wrap)
    return ref, out, may_wrap


@pytest.mark.parametrize("single_rounding", [False, True])
@pytest.mark.parametrize("case", [
    ((1, 7, 5, 16), 8, 1, 1, (1, 1), (1, 1), (0, 0), 5),
    ((1, 9, 6, 1), 12, 4, 3, (2, 2), (1, 1), (2, 1), 128),
    ((2, 8, 8, 3), 5, 3, 3, (1, 2), (2, 1), (1, 2), -127),
])
@pytest.mark.parametrize("bias_scale", [1 << 10, (1 << 31) - 1])
def test_gemm_f32_folded_equals_direct(case, bias_scale, single_rounding):
    rng = np.random.default_rng(7)
    in_shape, out_c, k_h, k_w, stride, dilation, pad, input_offset = case
    ref, out, may_wrap = _run_both(rng, in_shape, out_c, k_h, k_w, stride, dilation, pad, input_offset, bias_scale,
                                   single_rounding)
    assert may_wrap == (bias_scale > 1 << 24)
    diff = np.flatnonzero(ref != out)
    assert diff.size == 0, f"pos {diff[0]}: act {out.flat[diff[0]]} ref {ref.flat[diff[0]]}; {diff.size} of {ref.size} differ"
