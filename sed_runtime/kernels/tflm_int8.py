"""TFLM int8 operator kernels, bit for bit with ``reference_integer_ops``.

One compiled function per operator, named after the TFLM/TFLite reference
function it mirrors.  Every kernel takes its tensors as arrays (views into the
interpreter's arena), the integer parameters TFLM's ``Prepare`` computes
(:mod:`sed_runtime.model.prepare` computes them the same way), writes into its
output array and allocates nothing; accumulators and other scratch are passed
in.

Conventions
-----------
* Activations are ``int8`` arrays in TFLite's NHWC layout.  Weights are host
  copies made once at prepare time in the layout the loop wants (a convolution
  filter ``[OC, KH, KW, IC]`` becomes ``[KH, KW, IC, OC]`` or ``[OC, K]``)
  and widened to ``int32``, or to ``float32`` for the matrix-product forms
  when every partial sum is provably an exact float32 integer
  (:func:`im2col_f32_is_exact`); widening and reordering change no value.
* ``input_offset`` is ``-input_zero_point`` and ``output_offset`` is
  ``output_zero_point``, as in TFLM's ``ConvParams``/``ArithmeticParams``.
* ``shift`` is TFLM's signed shift (positive = left).  ``single_rounding``
  selects :func:`~sed_runtime.fixedpoint.multiply_by_quantized_multiplier_single_rounding`
  (a ``TFLITE_SINGLE_ROUNDING`` build) instead of the default double-rounding
  :func:`~sed_runtime.fixedpoint.multiply_by_quantized_multiplier`.
* Accumulation is modulo 2**32 (``wrap_i32``), which is what a 32-bit
  accumulator does on Arm and x86 when a sum overflows (C leaves it undefined;
  TFLM's comments bound realistic sums far below 2**31).
* Numba widens integers to ``int64``: products and sums are formed in
  ``int64`` from explicitly widened operands and narrowed only where C
  narrows (a store into an ``int32`` accumulator array keeps the low 32 bits,
  i.e. the modulo-2**32 sum).
* Loops index views with their bare loop counters where speed matters: Numba
  then drops its negative-index wrap-around and LLVM vectorizes.
"""

from __future__ import annotations

import numpy as np

from sed_runtime._numba import njit
from sed_runtime.fixedpoint import (
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_single_rounding,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
    wrap_i32,
)
from sed_runtime.kernels.tflm_fixedpoint import (
    exp_on_negative_values,
    get_reciprocal,
    logistic,
    saturating_rounding_multiply_by_pot,
    tanh,
)

__all__ = [
    "conv_per_channel",
    "conv_per_channel_im2col",
    "conv_per_channel_im2col_f32",
    "conv_per_channel_gemm_f32",
    "im2col_padded_shape",
    "im2col_f32_is_exact",
    "gemm_padded_shape",
    "gemm_patch_index",
    "gemm_f32_folded_is_exact",
    "gemm_folded_bias",
    "gemm_sum_may_wrap",
    "depthwise_conv_per_channel",
    "depthwise_conv_per_channel_rows",
    "fully_connected",
    "average_pool",
    "max_pool",
    "quantized_mean",
    "add_elementwise",
    "mul_elementwise",
    "softmax",
    "logistic_s8",
    "tanh_s8",
    "affine_quantize",
    "requantize",
    "dequantize",
    "copy_nd",
    "fill_value",
    "requantize_s32",
    "requantize_lane_params",
]


@njit(inline="always")
def requantize_s32(x, multiplier, shift, single_rounding):
    """TFLM ``MultiplyByQuantizedMultiplier`` of the selected build (double rounding unless ``single_rounding``)."""
    if single_rounding:
        return multiply_by_quantized_multiplier_single_rounding(x, multiplier, shift)
    return multiply_by_quantized_multiplier(x, multiplier, shift)


@njit(inline="always")
def _clamp(x, lo, hi):
    if x < lo:
        return np.int64(lo)
    if x > hi:
        return np.int64(hi)
    return np.int64(x)


def requantize_lane_params(multiplier, shift, single_rounding):
    """Per-channel constants of :func:`_requantize_fused` (plain Python, once per layer at bind time).

    Returns ``(left_s64, add_s64, neg_s64, total_s64, has_left)``.  Double
    rounding with ``right = max(-shift, 0)``: ``total = 31 + right``, ``add =
    2**30 + (2**(right - 1) << 31)`` (no second term when ``right == 0``),
    ``neg = -2**31`` when ``right > 0`` (the divide's extra step toward zero
    for a negative value) else 0, ``left = max(shift, 0)``.  Single rounding:
    ``total = 31 - shift``, ``add = 2**(total - 1)``, ``neg = 0``, ``left = 0``.
    """
    shift = np.asarray(shift, np.int64)
    if single_rounding:
        total = 31 - shift
        add = np.left_shift(np.int64(1), total - 1)
        return np.zeros_like(shift), add, np.zeros_like(shift), total, False
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    half = np.where(right > 0, np.left_shift(np.int64(1), np.maximum(right - 1, 0)), 0)
    add = np.int64(1 << 30) + (half << 31)
    neg = np.where(right > 0, np.int64(-(1 << 31)), np.int64(0))
    return left, add.astype(np.int64), neg.astype(np.int64), (31 + right).astype(np.int64), bool((left > 0).any())


@njit(inline="always")
def _requantize_fused(x, multiplier, left, add, neg, total, output_offset, act_min, act_max, has_left,
                      single_rounding):
    """``clamp(requantize_s32(x, multiplier, shift) + output_offset)`` in one rounding shift, branch-free.

    Mirrors: TFLM ``MultiplyByQuantizedMultiplier`` of the selected build,
    then the output offset and activation clamp of ``ConvPerChannel``.

    Scaling and overflow: double rounding is ``RoundingDivideByPOT(SRDHM(x *
    2**left, multiplier), right)``: ``h = floor((p + 2**30) / 2**31)`` with
    ``p`` the int64 product, then ``floor((h + 2**(right-1) - [h < 0]) /
    2**right)`` (half away from zero; nothing added when ``right == 0``).
    Nested floors of integer divisions are one floor, and ``h < 0`` exactly
    when ``p + 2**30 < 0``, so the result is ``(p + add + (neg if p + 2**30 <
    0)) >> total`` with the constants of :func:`requantize_lane_params`; the
    sum stays below 2**63.  The one case SRDHM saturates (``x * 2**left ==
    multiplier == INT32_MIN``, ``h = 2**31`` instead of ``2**31 - 1``) differs
    only when ``right == 0``, by one, far above any clamp: the clamped output
    is the same.  Single rounding is ``(p + 2**(total - 1)) >> total`` wrapped
    to int32.  The int32 left shift wraps (``wrap_i32``).

    Assumptions: ``x`` and ``multiplier`` in int32 range, ``-31 <= shift <=
    30``, ``act_max`` below ``2**31 - 1 - output_offset`` (an int8 or int16 output).
    """
    v = np.int64(x)
    if has_left:
        v = (((v << left) + np.int64(2147483648)) & np.int64(0xFFFFFFFF)) - np.int64(2147483648)
    p = v * np.int64(multiplier)
    r = (p + add + (neg & ((p + np.int64(1073741824)) >> np.int64(63)))) >> total
    if single_rounding:
        r = ((r + np.int64(2147483648)) & np.int64(0xFFFFFFFF)) - np.int64(2147483648)
    v = r + np.int64(output_offset)
    return min(max(v, np.int64(act_min)), np.int64(act_max))


@njit(inline="always")
def _trunc_div(a, b):
    """C integer division (truncates toward zero) for ``b > 0``."""
    if a >= 0:
        return a // b
    return -((-a) // b)


# ---------------------------------------------------------------------------
# Convolutions and fully connected
# ---------------------------------------------------------------------------


@njit
def conv_per_channel(input_s8, filter_hwio_s32, bias_s32, output_s8, acc_s32, input_offset, output_offset,
                     multiplier, shift, stride_h, stride_w, dilation_h, dilation_w, pad_h, pad_w,
                     act_min, act_max, groups, single_rounding):
    """2-D convolution with per-channel requantization, NHWC.

    Mirrors: TFLM ``reference_integer_ops::ConvPerChannel`` (int8 input,
    int8 filter, int32 bias), which TFLM's ``CONV_2D`` runs for int8 whether
    the filter is quantized per channel or per tensor (per-tensor scales are
    broadcast to every channel in ``Prepare``).  Grouped convolution
    (``filter IC < input IC``) follows the same function.

    Scaling and overflow: ``acc = sum filter * (input + input_offset) + bias``
    modulo 2**32 (the filter zero point is ignored, as TFLM ignores it);
    ``requantize_s32(acc, multiplier[c], shift[c])`` (double rounding by
    default); ``+ output_offset``; clamped to ``[act_min, act_max]``.  Taps
    outside the image are skipped (zero padding in the real domain), with
    padding ``pad_h``/``pad_w`` before the first row/column, so TFLite SAME's
    asymmetric split (the odd pixel after) falls out of the loop bounds.

    Assumptions: ``input_s8`` [N, H, W, IC]; ``filter_hwio_s32`` [KH, KW,
    IC / groups, OC]; ``bias_s32`` [OC] (zeros when the model has none);
    ``output_s8`` [N, OH, OW, OC]; ``acc_s32`` [OC] scratch; strides and
    dilations >= 1.
    """
    batches, in_h, in_w, _ = input_s8.shape
    k_h, k_w, filter_ic, out_c = filter_hwio_s32.shape
    _, out_h, out_w, _ = output_s8.shape
    per_group = out_c // groups
    for n in range(batches):
        for oy in range(out_h):
            in_y0 = oy * stride_h - pad_h
            for ox in range(out_w):
                in_x0 = ox * stride_w - pad_w
                for c in range(out_c):
                    acc_s32[c] = bias_s32[c]
                for ky in range(k_h):
                    iy = in_y0 + dilation_h * ky
                    if iy < 0 or iy >= in_h:
                        continue
                    for kx in range(k_w):
                        ix = in_x0 + dilation_w * kx
                        if ix < 0 or ix >= in_w:
                            continue
                        pixel = input_s8[n, iy, ix]
                        taps = filter_hwio_s32[ky, kx]
                        if groups == 1:
                            for ic in range(filter_ic):
                                x = np.int32(np.int32(pixel[ic]) + np.int32(input_offset))
                                row = taps[ic]
                                for c in range(out_c):
                                    acc_s32[c] += x * row[c]
                        else:
                            for g in range(groups):
                                for ic in range(filter_ic):
                                    x = np.int32(np.int32(pixel[g * filter_ic + ic]) + np.int32(input_offset))
                                    row = taps[ic]
                                    for j in range(per_group):
                                        c = g * per_group + j
                                        acc_s32[c] += x * row[c]
                out_px = output_s8[n, oy, ox]
                for c in range(out_c):
                    v = requantize_s32(acc_s32[c], multiplier[c], shift[c], single_rounding) + output_offset
                    out_px[c] = _clamp(v, act_min, act_max)


@njit
def depthwise_conv_per_channel(input_s8, filter_hwc_s32, bias_s32, output_s8, acc_s32, input_offset,
                               output_offset, multiplier, shift, depth_multiplier, stride_h, stride_w,
                               dilation_h, dilation_w, pad_h, pad_w, act_min, act_max, single_rounding):
    """Depthwise 2-D convolution with per-channel requantization, NHWC.

    Mirrors: TFLM ``reference_integer_ops::DepthwiseConvPerChannel``: output
    channel ``ic * depth_multiplier + m`` reads input channel ``ic``.

    Scaling and overflow: as :func:`conv_per_channel` (accumulation modulo
    2**32, filter zero point ignored, ``requantize_s32``, output offset,
    clamp); taps outside the image are skipped.

    Assumptions: ``input_s8`` [N, H, W, IC]; ``filter_hwc_s32`` [KH, KW,
    OC] with ``OC = IC * depth_multiplier`` (the model's [1, KH, KW, OC]
    filter, widened); ``bias_s32`` [OC]; ``output_s8`` [N, OH, OW, OC];
    ``acc_s32`` [OC] scratch.
    """
    batches, in_h, in_w, in_c = input_s8.shape
    k_h, k_w, out_c = filter_hwc_s32.shape
    _, out_h, out_w, _ = output_s8.shape
    for n in range(batches):
        for oy in range(out_h):
            in_y0 = oy * stride_h - pad_h
            for ox in range(out_w):
                in_x0 = ox * stride_w - pad_w
                for c in range(out_c):
                    acc_s32[c] = bias_s32[c]
                for ky in range(k_h):
                    iy = in_y0 + dilation_h * ky
                    if iy < 0 or iy >= in_h:
                        continue
                    for kx in range(k_w):
                        ix = in_x0 + dilation_w * kx
                        if ix < 0 or ix >= in_w:
                            continue
                        pixel = input_s8[n, iy, ix]
                        taps = filter_hwc_s32[ky, kx]
                        if depth_multiplier == 1:
                            for c in range(out_c):
                                acc_s32[c] += (np.int32(pixel[c]) + np.int32(input_offset)) * taps[c]
                        else:
                            for ic in range(in_c):
                                x = np.int32(np.int32(pixel[ic]) + np.int32(input_offset))
                                acc = acc_s32[ic * depth_multiplier:(ic + 1) * depth_multiplier]
                                w = taps[ic * depth_multiplier:(ic + 1) * depth_multiplier]
                                for m in range(depth_multiplier):
                                    acc[m] += x * w[m]
                out_px = output_s8[n, oy, ox]
                for c in range(out_c):
                    v = requantize_s32(acc_s32[c], multiplier[c], shift[c], single_rounding) + output_offset
                    out_px[c] = _clamp(v, act_min, act_max)


@njit
def depthwise_conv_per_channel_rows(input_s8, filter_tiled_s32, bias_tiled_s32, output_s8, acc_s32, input_offset,
                                    output_offset, multiplier_tiled, left, add, neg, total, has_left, stride_h,
                                    dilation_h, dilation_w, pad_h, pad_w, act_min, act_max, single_rounding):
    """Depthwise 2-D convolution (depth multiplier 1, column stride 1) one output row at a time, NHWC.

    Mirrors: TFLM ``reference_integer_ops::DepthwiseConvPerChannel`` with
    ``depth_multiplier == 1`` and ``stride_width == 1``.  An output row
    ``[OW, C]`` and an input row ``[W, C]`` are flat runs; tap ``(ky, kx)``
    adds ``filter[ky, kx, c] * (input + input_offset)`` from the input row
    ``iy`` shifted by ``kx * dilation_w - pad_w`` pixels to the output
    columns that tap lands inside the image (TFLM skips the others), one long
    contiguous loop per tap whatever the channel count.  The filter,
    bias, multiplier and shift are tiled along the row at bind time
    (``[KH, KW, OW * C]`` and ``[OW * C]``), so every loop is element-wise.

    Scaling and overflow: as :func:`depthwise_conv_per_channel` (the int32
    stores keep each partial sum modulo 2**32, order-independent);
    requantization, output offset and clamp by :func:`_requantize_fused`.

    Assumptions: ``input_s8`` [N, H, W, C] and ``output_s8`` [N, OH, OW, C]
    C-contiguous; ``filter_tiled_s32`` [KH, KW, OW * C]; ``bias_tiled_s32``,
    ``multiplier_tiled``, the :func:`requantize_lane_params` arrays ``left``,
    ``add``, ``neg``, ``total`` and ``acc_s32`` [OW * C].
    """
    batches, in_h, in_w, depth = input_s8.shape
    k_h, k_w, row = filter_tiled_s32.shape
    _, out_h, out_w, _ = output_s8.shape
    off = np.int32(input_offset)
    in_rows = input_s8.reshape(batches, in_h, in_w * depth)
    out_rows = output_s8.reshape(batches, out_h, row)
    for n in range(batches):
        for oy in range(out_h):
            for j in range(row):
                acc_s32[j] = bias_tiled_s32[j]
            for ky in range(k_h):
                iy = oy * stride_h - pad_h + dilation_h * ky
                if iy < 0 or iy >= in_h:
                    continue
                src_row = in_rows[n, iy]
                for kx in range(k_w):
                    dx = kx * dilation_w - pad_w  # input column = output column + dx
                    ox0 = max(0, -dx)
                    ox1 = min(out_w, in_w - dx)
                    if ox1 <= ox0:
                        continue
                    j0 = ox0 * depth
                    count = (ox1 - ox0) * depth
                    src = src_row[j0 + dx * depth:j0 + dx * depth + count]
                    taps = filter_tiled_s32[ky, kx, j0:j0 + count]
                    acc = acc_s32[j0:j0 + count]
                    for i in range(count):
                        acc[i] += (np.int32(src[i]) + off) * taps[i]  # modulo 2**32 by the int32 store
            out_row = out_rows[n, oy]
            for j in range(row):
                out_row[j] = _requantize_fused(acc_s32[j], multiplier_tiled[j], left[j], add[j], neg[j], total[j],
                                               output_offset, act_min, act_max, has_left, single_rounding)


def im2col_padded_shape(batches, in_h, in_w, in_c, out_h, out_w, k_h, k_w, stride_h, stride_w, dilation_h,
                        dilation_w, pad_h, pad_w):
    """Shape ``[N, C, Hp, stride_w, Wq]`` of the padded, channel-major, column-polyphase input of
    :func:`conv_per_channel_im2col` (plain Python; used at bind time)."""
    rows = max((out_h - 1) * stride_h + (k_h - 1) * dilation_h + 1, in_h + pad_h)
    cols = max((out_w - 1) * stride_w + (k_w - 1) * dilation_w + 1, in_w + pad_w)
    return batches, in_c, rows, stride_w, -(-cols // stride_w)


def im2col_f32_is_exact(filter_ck: np.ndarray, input_offset: int) -> bool:
    """True when float32 sums of ``filter * (input + input_offset)`` are exact integers in any order.

    Every product and partial sum of a row is an integer of magnitude at most
    ``sum_k |filter[c, k]| * max|q + input_offset|``; below ``2**24`` float32
    holds all of them exactly, whatever order (or fused multiply-add) a BLAS
    uses.  Plain Python, evaluated once per layer at bind time.
    """
    if filter_ck.size == 0:
        return True
    largest_input = max(abs(-128 + int(input_offset)), abs(127 + int(input_offset)))
    row_bound = int(np.abs(filter_ck.astype(np.int64)).sum(axis=1).max()) * largest_input
    return row_bound <= 2**24


def gemm_padded_shape(batches, in_h, in_w, in_c, out_h, out_w, k_h, k_w, stride_h, stride_w, dilation_h,
                      dilation_w, pad_h, pad_w):
    """Shape ``[N, Hp, Wp, C]`` of the padded NHWC float32 input of :func:`conv_per_channel_gemm_f32` (plain Python)."""
    rows = max((out_h - 1) * stride_h + (k_h - 1) * dilation_h + 1, in_h + pad_h)
    cols = max((out_w - 1) * stride_w + (k_w - 1) * dilation_w + 1, in_w + pad_w)
    return batches, rows, cols, in_c


def gemm_patch_index(padded_shape, out_h, out_w, k_h, k_w, stride_h, stride_w, dilation_h, dilation_w) -> np.ndarray:
    """Flat ``padded`` position of every ``cols[p, k]`` of :func:`conv_per_channel_gemm_f32`, int32, ``[N * OH * OW * KH * KW * IC]``.

    Plain Python, once per layer at bind time.
    """
    batches, rows, width, in_c = padded_shape
    n = np.arange(batches).reshape(-1, 1, 1, 1, 1, 1)
    oy = np.arange(out_h).reshape(1, -1, 1, 1, 1, 1)
    ox = np.arange(out_w).reshape(1, 1, -1, 1, 1, 1)
    ky = np.arange(k_h).reshape(1, 1, 1, -1, 1, 1)
    kx = np.arange(k_w).reshape(1, 1, 1, 1, -1, 1)
    ic = np.arange(in_c).reshape(1, 1, 1, 1, 1, -1)
    y = oy * stride_h + ky * dilation_h
    x = ox * stride_w + kx * dilation_w
    return np.ascontiguousarray(((n * rows + y) * width + x) * in_c + ic, dtype=np.int32).reshape(-1)


def gemm_sum_may_wrap(filter_ck: np.ndarray, bias_folded_s32: np.ndarray) -> bool:
    """False when ``sum_k filter[c, k] * q[k] + bias_folded[c]`` stays in int32 range for every int8 ``q``.

    The bound is ``128 * sum_k |filter[c, k]| + |bias_folded[c]|`` per channel;
    below ``2**31`` the modulo-2**32 wrap of :func:`conv_per_channel_gemm_f32`
    changes nothing and is skipped.  Plain Python, bind time.
    """
    if filter_ck.size == 0:
        return False
    bound = 128 * np.abs(filter_ck.astype(np.int64)).sum(axis=1) + np.abs(bias_folded_s32.astype(np.int64))
    return bool(bound.max() >= 2**31)


def gemm_f32_folded_is_exact(filter_ck: np.ndarray) -> bool:
    """True when float32 sums of ``filter * input`` (int8 input, no offset) are exact integers in any order.

    Every product and partial sum of a row is an integer of magnitude at most
    ``128 * sum_k |filter[c, k]|``; below ``2**24`` float32 holds all of them
    exactly, whatever order (or fused multiply-add) a BLAS uses.  Plain
    Python, evaluated once per layer at bind time.
    """
    if filter_ck.size == 0:
        return True
    return int(np.abs(filter_ck.astype(np.int64)).sum(axis=1).max()) * 128 <= 2**24


def gemm_folded_bias(filter_ck: np.ndarray, bias_s32: np.ndarray, input_offset: int) -> np.ndarray:
    """``bias + input_offset * sum_k filter[c, k]`` modulo 2**32, as int32 (plain Python, bind time)."""
    folded = bias_s32.astype(np.int64) + int(input_offset) * filter_ck.astype(np.int64).sum(axis=1)
    return (((folded + 2**31) & 0xFFFFFFFF) - 2**31).astype(np.int32)


@njit(inline="always")
def _im2col(input_s8, padded, cols, g, input_offset, k_h, k_w, stride_h, stride_w, dilation_h, dilation_w,
            pad_h, pad_w, groups, out_h, out_w):
    """Steps 1 (padded input, once, for g == 0) and 2 (im2col of group g) of :func:`conv_per_channel_im2col`."""
    batches, in_h, in_w, in_c = input_s8.shape
    per_group_in = in_c // groups
    if g == 0:
        off = np.int32(input_offset)
        for n in range(batches):
            for c in range(in_c):
                for y in range(in_h):
                    dst = padded[n, c, y + pad_h]
                    src = input_s8[n, y, :, c]
                    for r in range(stride_w):
                        # image columns x with (x + pad_w) % stride_w == r, from the first one >= 0
                        x0 = (r - pad_w) % stride_w
                        if x0 >= in_w:
                            continue
                        count = (in_w - x0 + stride_w - 1) // stride_w
                        j0 = (x0 + pad_w) // stride_w
                        src_r = src[x0::stride_w]
                        dst_r = dst[r, j0:j0 + count]
                        for i in range(count):
                            dst_r[i] = np.int32(src_r[i]) + off
    for ky in range(k_h):
        for kx in range(k_w):
            r = (dilation_w * kx) % stride_w
            j0 = (dilation_w * kx) // stride_w
            for ic in range(per_group_in):
                row = cols[(ky * k_w + kx) * per_group_in + ic]
                ch = g * per_group_in + ic
                p = 0
                for n in range(batches):
                    for oy in range(out_h):
                        src = padded[n, ch, oy * stride_h + dilation_h * ky, r, j0:j0 + out_w]
                        dst = row[p:p + out_w]
                        for ox in range(out_w):
                            dst[ox] = src[ox]
                        p += out_w


@njit(inline="always")
def _requantize_channel(acc, out_row, bias, multiplier, left, add, neg, total, has_left, output_offset, act_min,
                        act_max, single_rounding):
    """One output channel: ``acc`` (pixel order) + bias, requantized, offset and clamped into ``out_row``."""
    for p in range(acc.shape[0]):
        x = wrap_i32(np.int64(acc[p]) + np.int64(bias))
        out_row[p] = _requantize_fused(x, multiplier, left, add, neg, total, output_offset, act_min, act_max,
                                       has_left, single_rounding)


@njit(inline="always")
def _store_channels(channels_s8, output_s8):
    """``[OC, pixels]`` -> the NHWC output (a transposition; contiguous rows keep the requantization vectorized)."""
    batches, out_h, out_w, out_c = output_s8.shape
    out2 = output_s8.reshape(batches * out_h * out_w, out_c)
    for c in range(out_c):
        src = channels_s8[c]
        dst = out2[:, c]
        for p in range(src.shape[0]):
            dst[p] = src[p]


@njit
def conv_per_channel_im2col(input_s8, filter_ck_s32, bias_s32, output_s8, padded_s32, cols_s32, acc_s32,
                            channels_s8, input_offset, output_offset, multiplier, left, add, neg, total, has_left,
                            k_h, k_w, stride_h,
                            stride_w, dilation_h, dilation_w, pad_h, pad_w, act_min, act_max, groups,
                            single_rounding):
    """Grouped 2-D convolution as im2col + matrix product: CONV_2D and DEPTHWISE_CONV_2D in one loop nest.

    Mirrors: TFLM ``reference_integer_ops::ConvPerChannel`` (``groups`` =
    input channels / filter channels) and ``DepthwiseConvPerChannel`` (the
    case ``groups`` = input channels, one filter channel each, output channel
    ``g * depth_multiplier + m`` in group ``g``).  The same integer sums in
    another order:

    1. ``padded_s32[n, c, y, r, j]`` = ``input + input_offset`` at image
       column ``j * stride_w + r - pad_w`` and row ``y - pad_h``; the border
       stays 0 (it is never written), so a tap outside the image adds
       ``w * 0``, exactly as TFLM skips it.  Channel-major and split by
       column phase, every patch row below is a contiguous run.
    2. ``cols_s32[k, p]``, ``k = (ky * k_w + kx) * channels_per_group + ic``,
       ``p`` = output pixel (im2col, transposed).
    3. Per output channel, ``acc[p] = sum_k filter[c, k] * cols[k, p]`` along
       ``p`` (long and contiguous, so it vectorizes), ``+ bias``, then
       requantization, output offset and clamp (:func:`_requantize_fused`
       with ``multiplier`` and the :func:`requantize_lane_params` arrays),
       into ``channels_s8[c]``; finally transposed into the NHWC output.

    Scaling and overflow: as :func:`conv_per_channel`; integer addition
    modulo 2**32 is order-independent, so the results are identical.

    Assumptions: ``filter_ck_s32`` [OC, k_h * k_w * channels_per_group] (a
    ``[OC, KH, KW, IC/groups]`` filter reshaped, or a depthwise ``[1, KH, KW,
    OC]`` filter transposed); ``padded_s32`` of
    :func:`im2col_padded_shape`, zero-initialised once; ``cols_s32`` [K, N *
    OH * OW]; ``acc_s32`` [N * OH * OW]; ``channels_s8`` [OC, N * OH * OW];
    ``output_s8`` C-contiguous.
    """
    _, out_h, out_w, out_c = output_s8.shape
    per_group_out = out_c // groups
    depth = filter_ck_s32.shape[1]
    pixels = acc_s32.shape[0]
    # Loops index views with their bare loop counters: Numba then knows the index is non-negative and drops
    # its negative-index wrap-around, which otherwise keeps these short loops from vectorizing.
    for g in range(groups):
        _im2col(input_s8, padded_s32, cols_s32, g, input_offset, k_h, k_w, stride_h, stride_w, dilation_h,
                dilation_w, pad_h, pad_w, groups, out_h, out_w)
        for jc in range(per_group_out):
            c = g * per_group_out + jc
            for p in range(pixels):
                acc_s32[p] = 0
            taps = filter_ck_s32[c]
            for k in range(depth):
                w = taps[k]
                if w == 0:
                    continue
                col = cols_s32[k]
                for p in range(pixels):
                    acc_s32[p] += w * col[p]  # int32 x int32, kept modulo 2**32 by the int32 store
            _requantize_channel(acc_s32, channels_s8[c], bias_s32[c], multiplier[c], left[c], add[c], neg[c],
                                total[c], has_left, output_offset, act_min, act_max, single_rounding)
    _store_channels(channels_s8, output_s8)


@njit
def conv_per_channel_im2col_f32(input_s8, filter_ck_f32, bias_s32, output_s8, padded_f32, cols_f32, acc_f32,
                                channels_s8, input_offset, output_offset, multiplier, left, add, neg, total, has_left,
                            k_h, k_w, stride_h,
                                stride_w, dilation_h, dilation_w, pad_h, pad_w, act_min, act_max, groups,
                                single_rounding):
    """:func:`conv_per_channel_im2col` with the matrix product in float32 (BLAS ``sgemm``), when exact.

    Mirrors: the same TFLM functions, with the same integer results: every
    value the product forms is an integer below ``2**24`` in magnitude
    (checked per layer by :func:`im2col_f32_is_exact`), so float32 holds the
    products and every partial sum exactly, in any summation order.  The
    exact float sum is converted to int32, the bias added modulo 2**32, and
    the rest is :func:`conv_per_channel_im2col`'s step 3.

    Assumptions: those of :func:`conv_per_channel_im2col` with float32
    ``filter_ck_f32``, ``padded_f32``, ``cols_f32`` and ``acc_f32`` [OC, N *
    OH * OW]; :func:`im2col_f32_is_exact` holds for the filter and offset.
    """
    _, out_h, out_w, out_c = output_s8.shape
    per_group_out = out_c // groups
    for g in range(groups):
        _im2col(input_s8, padded_f32, cols_f32, g, input_offset, k_h, k_w, stride_h, stride_w, dilation_h,
                dilation_w, pad_h, pad_w, groups, out_h, out_w)
        c0 = g * per_group_out
        np.dot(filter_ck_f32[c0:c0 + per_group_out], cols_f32, acc_f32[c0:c0 + per_group_out])
        for jc in range(per_group_out):
            c = c0 + jc
            _requantize_channel(acc_f32[c], channels_s8[c], bias_s32[c], multiplier[c], left[c], add[c], neg[c],
                                total[c], has_left, output_offset, act_min, act_max, single_rounding)
    _store_channels(channels_s8, output_s8)


@njit
def conv_per_channel_gemm_f32(input_s8, filter_kc_f32, bias_folded_s32, output_s8, padded_f32, patch_index,
                              cols_f32, acc_f32, output_offset, multiplier, left, add, neg, total, has_left, pad_h,
                              pad_w, act_min, act_max, single_rounding, may_wrap):
    """2-D convolution (one group) as a pixel-major im2col and one float32 matrix product, NHWC in and out.

    Mirrors: TFLM ``reference_integer_ops::ConvPerChannel`` with ``groups ==
    1``, the input offset folded into the bias:

    1. ``padded_f32[n, y, x, c]`` = ``input`` (no offset) at image row ``y -
       pad_h`` and column ``x - pad_w``; its border holds the input zero
       point (``-input_offset``, written once at bind time and never
       overwritten), so a tap outside the image adds ``w * (zero_point +
       input_offset) = 0`` to the true sum, exactly as TFLM skips it.
    2. ``cols_f32[p, k]``: for output pixel ``p`` the patch in the filter's own
       order ``k = (ky * k_w + kx) * IC + ic``, gathered in one flat loop
       through ``patch_index`` (the flat ``padded_f32`` position of every
       ``cols_f32`` element, :func:`gemm_patch_index`, made at bind time).
       A pointwise layer (1x1, stride 1, no padding; an empty
       ``patch_index``) skips both steps: its input converted to float32 is
       already the ``[pixels, IC]`` matrix, written straight into ``cols_f32``.
    3. ``acc = cols @ filter_kc`` is ``[pixels, OC]`` (the NHWC output order):
       ``sum_k w[k, c] * q[k]``.  The true accumulator is that plus
       ``input_offset * sum_k w[k, c] + bias[c]``, which ``bias_folded_s32``
       holds (computed at bind time, modulo 2**32).

    Scaling and overflow: every product and partial sum of step 3 is an
    integer of magnitude at most ``128 * sum_k |w[k, c]| <= 2**24``
    (:func:`gemm_f32_folded_is_exact`), so the float32 sums are exact in any
    order; then ``int32(acc) + bias_folded`` modulo 2**32 (the same integer
    as TFLM's int32 accumulator, addition modulo 2**32 being
    order-independent; the wrap is skipped unless ``may_wrap``, which
    :func:`gemm_sum_may_wrap` clears when the sum provably stays in int32
    range), requantization, output offset and clamp by
    :func:`_requantize_fused` (``multiplier`` and the
    :func:`requantize_lane_params` arrays, one entry per output channel).

    Assumptions: ``filter_kc_f32`` [KH * KW * IC, OC] (the ``[OC, KH, KW,
    IC]`` filter reshaped and transposed); ``padded_f32`` [N, Hp, Wp, IC]
    with Hp, Wp of :func:`gemm_padded_shape` and its border filled with the
    input zero point and ``patch_index`` its int32 gather table (both unused,
    any shape and empty, for a pointwise layer);
    ``cols_f32`` [N * OH * OW, KH * KW * IC]; ``acc_f32`` [N * OH * OW, OC];
    ``input_s8`` and ``output_s8`` C-contiguous.
    """
    batches, in_h, in_w, in_c = input_s8.shape
    out_c = output_s8.shape[3]
    pixels, depth = cols_f32.shape
    cols = cols_f32.reshape(pixels * depth)
    if patch_index.shape[0] == 0:  # pointwise: the input is the matrix
        src = input_s8.reshape(pixels * depth)
        for i in range(pixels * depth):
            cols[i] = np.float32(src[i])
    else:
        _, rows, width, _ = padded_f32.shape
        src = input_s8.reshape(batches * in_h * in_w * in_c)
        pad = padded_f32.reshape(batches * rows * width * in_c)
        run = in_w * in_c
        for n in range(batches):
            for y in range(in_h):
                s0 = (n * in_h + y) * run
                d0 = ((n * rows + y + pad_h) * width + pad_w) * in_c
                for i in range(run):
                    pad[d0 + i] = np.float32(src[s0 + i])
        for i in range(pixels * depth):
            cols[i] = pad[patch_index[i]]
    np.dot(cols_f32, filter_kc_f32, acc_f32)
    out2 = output_s8.reshape(pixels, out_c)
    for q in range(pixels):
        acc = acc_f32[q]
        out_row = out2[q]
        for c in range(out_c):
            x = np.int64(acc[c]) + np.int64(bias_folded_s32[c])
            if may_wrap:
                x = wrap_i32(x)
            out_row[c] = _requantize_fused(x, multiplier[c], left[c], add[c], neg[c], total[c], output_offset,
                                           act_min, act_max, has_left, single_rounding)


@njit
def fully_connected(input_2d, filter_2d, bias_s32, output_2d, input_offset, filter_offset, output_offset,
                    multiplier, shift, act_min, act_max, single_rounding):
    """Fully connected layer, per-tensor or per-channel requantization.

    Mirrors: TFLM ``reference_integer_ops::FullyConnected`` (per-tensor:
    ``filter_offset = -filter_zero_point`` is applied, for backward
    compatibility) and ``FullyConnectedPerChannel`` (``filter_offset = 0``:
    TFLM ignores the filter zero point there).  ``multiplier``/``shift`` hold
    one entry per output channel (the per-tensor pair repeated).

    Scaling and overflow: ``acc = sum (filter + filter_offset) * (input +
    input_offset) + bias`` modulo 2**32; ``requantize_s32``; ``+
    output_offset``; clamped to ``[act_min, act_max]``.

    Assumptions: ``input_2d`` [batches, K] int8; ``filter_2d`` [OC, K] int8;
    ``bias_s32`` [OC]; ``output_2d`` [batches, OC] int8.
    """
    batches, depth = input_2d.shape
    out_c = filter_2d.shape[0]
    for b in range(batches):
        x = input_2d[b]
        for c in range(out_c):
            w = filter_2d[c]
            acc = np.int64(0)
            for k in range(depth):
                acc += (np.int64(w[k]) + filter_offset) * (np.int64(x[k]) + input_offset)
            acc = wrap_i32(acc + np.int64(bias_s32[c]))
            v = requantize_s32(acc, multiplier[c], shift[c], single_rounding) + output_offset
            output_2d[b, c] = _clamp(v, act_min, act_max)


# ---------------------------------------------------------------------------
# Pooling and reduction
# ---------------------------------------------------------------------------


@njit
def average_pool(input_s8, output_s8, acc_s32, filter_h, filter_w, stride_h, stride_w, pad_h, pad_w, act_min,
                 act_max):
    """Average pooling, NHWC; returns False when a window holds no input pixel.

    Mirrors: TFLM ``reference_integer_ops::AveragePool`` (int8).  No
    requantization: TFLM requires equal input and output scales and zero
    points and averages the raw int8 values.

    Scaling and overflow: int32 sum of the in-image pixels of the window
    (kept modulo 2**32 by the int32 scratch, as TFLM's ``int32_t acc``); divided by their count
    rounding half away from zero (``(acc +/- n/2) / n`` with C's truncating
    division); clamped to ``[act_min, act_max]``.  The sums run pixel by
    pixel over contiguous channels (TFLM's loop order sums channel by
    channel: the same integers).

    Assumptions: ``input_s8`` [N, H, W, C], ``output_s8`` [N, OH, OW, C],
    ``acc_s32`` [C] scratch.
    """
    batches, in_h, in_w, depth = input_s8.shape
    _, out_h, out_w, _ = output_s8.shape
    for n in range(batches):
        for oy in range(out_h):
            in_y0 = oy * stride_h - pad_h
            fy0 = max(0, -in_y0)
            fy1 = min(filter_h, in_h - in_y0)
            for ox in range(out_w):
                in_x0 = ox * stride_w - pad_w
                fx0 = max(0, -in_x0)
                fx1 = min(filter_w, in_w - in_x0)
                count = np.int64((fy1 - fy0) * (fx1 - fx0))
                if fy1 <= fy0 or fx1 <= fx0:
                    return False
                for c in range(depth):
                    acc_s32[c] = 0
                for fy in range(fy0, fy1):
                    for fx in range(fx0, fx1):
                        pixel = input_s8[n, in_y0 + fy, in_x0 + fx]
                        for c in range(depth):
                            acc_s32[c] += np.int32(pixel[c])
                out_px = output_s8[n, oy, ox]
                half = count // 2
                for c in range(depth):
                    acc = np.int64(acc_s32[c])
                    if acc > 0:
                        v = _trunc_div(acc + half, count)
                    else:
                        v = _trunc_div(acc - half, count)
                    out_px[c] = _clamp(v, act_min, act_max)
    return True


@njit
def max_pool(input_s8, output_s8, filter_h, filter_w, stride_h, stride_w, pad_h, pad_w, act_min, act_max):
    """Max pooling, NHWC.

    Mirrors: TFLM ``reference_integer_ops::MaxPool`` (int8).
    Scaling and overflow: none; the maximum starts at -128 and is clamped to
    ``[act_min, act_max]``.
    Assumptions: ``input_s8`` [N, H, W, C], ``output_s8`` [N, OH, OW, C].
    """
    batches, in_h, in_w, depth = input_s8.shape
    _, out_h, out_w, _ = output_s8.shape
    for n in range(batches):
        for oy in range(out_h):
            in_y0 = oy * stride_h - pad_h
            fy0 = max(0, -in_y0)
            fy1 = min(filter_h, in_h - in_y0)
            for ox in range(out_w):
                in_x0 = ox * stride_w - pad_w
                fx0 = max(0, -in_x0)
                fx1 = min(filter_w, in_w - in_x0)
                for c in range(depth):
                    m = np.int64(-128)
                    for fy in range(fy0, fy1):
                        for fx in range(fx0, fx1):
                            v = np.int64(input_s8[n, in_y0 + fy, in_x0 + fx, c])
                            if v > m:
                                m = v
                    output_s8[n, oy, ox, c] = _clamp(m, act_min, act_max)


@njit
def quantized_mean(input_6d, output_flat, sum_s32, out_strides, input_zero_point, num_elements, output_zero_point,
                   multiplier, shift, qmin, qmax, single_rounding):
    """Mean over a set of axes, int8 or int16.

    Mirrors: TFLM ``reference_ops::QuantizedMeanOrSum`` (``compute_sum =
    false``) as TFLM's ``MEAN`` runs it for int8/int16.  ``multiplier`` and
    ``shift`` are the ones TFLM derives in the kernel from the
    ``input_scale / output_scale`` pair and ``1 / num_elements`` (see
    :func:`sed_runtime.model.prepare.mean_multiplier`).

    Scaling and overflow: per output, the int32 sum (modulo 2**32) of the
    input values it reduces; ``sum - input_zero_point * num_elements`` cast to
    int32; ``requantize_s32``; ``+ output_zero_point``; clamped to the output
    type's range ``[qmin, qmax]``.

    Assumptions: ``input_6d`` is the input viewed with leading unit axes to
    6-D; ``out_strides`` (6,) gives each input axis's stride in the flat
    output, 0 for a reduced axis; ``sum_s32`` has the output's size.
    """
    for i in range(sum_s32.shape[0]):
        sum_s32[i] = 0
    d0, d1, d2, d3, d4, d5 = input_6d.shape
    s0, s1, s2, s3, s4, s5 = out_strides[0], out_strides[1], out_strides[2], out_strides[3], out_strides[4], \
        out_strides[5]
    for a in range(d0):
        for b in range(d1):
            for c in range(d2):
                for d in range(d3):
                    for e in range(d4):
                        base = a * s0 + b * s1 + c * s2 + d * s3 + e * s4
                        row = input_6d[a, b, c, d, e]
                        if s5 == 1:  # the last axis is kept (NHWC channels): a contiguous run of sums
                            dst = sum_s32[base:base + d5]
                            for f in range(d5):
                                dst[f] += np.int32(row[f])  # modulo 2**32 by the int32 store
                        else:
                            for f in range(d5):
                                o = base + f * s5
                                sum_s32[o] = wrap_i32(np.int64(sum_s32[o]) + np.int64(row[f]))
    for i in range(sum_s32.shape[0]):
        shifted = wrap_i32(np.int64(sum_s32[i]) - np.int64(input_zero_point) * np.int64(num_elements))
        v = requantize_s32(shifted, multiplier, shift, single_rounding) + output_zero_point
        output_flat[i] = _clamp(v, qmin, qmax)


# ---------------------------------------------------------------------------
# Element-wise arithmetic (with numpy broadcasting over up to 6 axes)
# ---------------------------------------------------------------------------


@njit(inline="always")
def _add_func(x, y, input1_offset, input2_offset, left_shift, input1_multiplier, input1_shift, input2_multiplier,
              input2_shift, output_multiplier, output_shift, output_offset, act_min, act_max, single_rounding):
    input1_val = np.int64(x) + input1_offset
    input2_val = np.int64(y) + input2_offset
    shifted_input1_val = wrap_i32(input1_val << left_shift)
    shifted_input2_val = wrap_i32(input2_val << left_shift)
    scaled_input1_val = requantize_s32(shifted_input1_val, input1_multiplier, input1_shift, single_rounding)
    scaled_input2_val = requantize_s32(shifted_input2_val, input2_multiplier, input2_shift, single_rounding)
    raw_sum = wrap_i32(scaled_input1_val + scaled_input2_val)
    raw_output = requantize_s32(raw_sum, output_multiplier, output_shift, single_rounding) + output_offset
    return _clamp(raw_output, act_min, act_max)


@njit
def add_elementwise(input1_6d, input2_6d, output_6d, input1_offset, input2_offset, left_shift, input1_multiplier,
                    input1_shift, input2_multiplier, input2_shift, output_multiplier, output_shift, output_offset,
                    act_min, act_max, single_rounding):
    """Quantized addition with broadcasting.

    Mirrors: TFLM ``reference_integer_ops::AddFunc`` applied element-wise
    (``Add``) or over broadcast shapes (``BroadcastAdd6DSlow``); the same
    per-element function either way.

    Scaling and overflow: each input ``(q + offset) * 2**left_shift`` (left
    shift 20 for int8) is scaled by its multiplier (< 1, shift <= 0) with
    ``requantize_s32`` (TFLM's ``MultiplyByQuantizedMultiplierSmallerThanOneExp``:
    the same double/single rounding); the int32 sum is scaled by the output
    multiplier, offset and clamped.

    Assumptions: the three arrays are 6-D views of equal shape; a broadcast
    input is a view with zero strides on its broadcast axes.
    """
    d0, d1, d2, d3, d4, d5 = output_6d.shape
    for a in range(d0):
        for b in range(d1):
            for c in range(d2):
                for d in range(d3):
                    for e in range(d4):
                        x_row = input1_6d[a, b, c, d, e]
                        y_row = input2_6d[a, b, c, d, e]
                        o_row = output_6d[a, b, c, d, e]
                        for f in range(d5):
                            o_row[f] = _add_func(x_row[f], y_row[f], input1_offset, input2_offset, left_shift,
                                                 input1_multiplier, input1_shift, input2_multiplier, input2_shift,
                                                 output_multiplier, output_shift, output_offset, act_min, act_max,
                                                 single_rounding)


@njit
def mul_elementwise(input1_6d, input2_6d, output_6d, input1_offset, input2_offset, output_offset,
                    output_multiplier, output_shift, act_min, act_max, single_rounding):
    """Quantized multiplication with broadcasting.

    Mirrors: TFLM ``reference_integer_ops::MulElementwise`` /
    ``BroadcastMul6DSlow`` (int8).

    Scaling and overflow: ``(q1 + offset1) * (q2 + offset2)`` (at most
    65025 in magnitude), ``requantize_s32`` by ``input1_scale * input2_scale /
    output_scale``, ``+ output_offset``, clamped to ``[act_min, act_max]``.

    Assumptions: as :func:`add_elementwise`.
    """
    d0, d1, d2, d3, d4, d5 = output_6d.shape
    for a in range(d0):
        for b in range(d1):
            for c in range(d2):
                for d in range(d3):
                    for e in range(d4):
                        x_row = input1_6d[a, b, c, d, e]
                        y_row = input2_6d[a, b, c, d, e]
                        o_row = output_6d[a, b, c, d, e]
                        for f in range(d5):
                            prod = (np.int64(x_row[f]) + input1_offset) * (np.int64(y_row[f]) + input2_offset)
                            v = requantize_s32(prod, output_multiplier, output_shift, single_rounding) + output_offset
                            o_row[f] = _clamp(v, act_min, act_max)


# ---------------------------------------------------------------------------
# Softmax, logistic, tanh: gemmlowp fixed point, no lookup tables
# ---------------------------------------------------------------------------


@njit(inline="always")
def _softmax_rescaled_diff(diff, input_beta_multiplier, input_beta_left_shift, single_rounding):
    # TFLM MultiplyByQuantizedMultiplierGreaterThanOne: double rounding is a plain int32 left shift then
    # SaturatingRoundingDoublingHighMul; single rounding is MultiplyByQuantizedMultiplier.
    if single_rounding:
        return multiply_by_quantized_multiplier_single_rounding(diff, input_beta_multiplier, input_beta_left_shift)
    return saturating_rounding_doubling_high_mul(wrap_i32(np.int64(diff) << np.int64(input_beta_left_shift)),
                                                 input_beta_multiplier)


@njit
def softmax(input_2d, output_2d, input_beta_multiplier, input_beta_left_shift, diff_min, output_bits,
            single_rounding):
    """Softmax over the last axis, int8 input, int8 or int16 output.

    Mirrors: TFLM ``reference_ops::Softmax`` (the quantized template TFLM's
    ``SOFTMAX`` runs for int8 input), with ``input_beta_multiplier``,
    ``input_beta_left_shift`` and ``diff_min`` from TFLM's
    ``PreprocessSoftmaxScaling`` / ``CalculateInputRadius`` (5 integer bits).

    Scaling and overflow, per row: ``diff = q - max(row)``; entries with
    ``diff < diff_min`` output the type minimum.  Others: ``diff`` rescaled to
    q5.26 by the beta multiplier (a left shift by ``input_beta_left_shift``
    then a rounding doubling high multiply); ``exp`` of it in q0.31
    (:func:`~sed_runtime.kernels.tflm_fixedpoint.exp_on_negative_values`);
    the sum of exps rescaled to q12.19 (rounding shift right by 12; plain
    int32 adds); its reciprocal by
    :func:`~sed_runtime.kernels.tflm_fixedpoint.get_reciprocal`; each output
    ``rounding_divide_by_pot(srdhm(reciprocal, exp), num_bits_over_unit + 31
    - output_bits)`` plus the type minimum, clamped to the output type.

    Assumptions: ``input_2d`` [rows, depth] int8, ``output_2d`` [rows, depth]
    int8 (``output_bits = 8``) or int16 (``output_bits = 16``).
    """
    rows, depth = input_2d.shape
    out_min = -(np.int64(1) << np.int64(output_bits - 1))
    out_max = (np.int64(1) << np.int64(output_bits - 1)) - np.int64(1)
    for i in range(rows):
        row = input_2d[i]
        max_in_row = np.int64(-128)
        for c in range(depth):
            if np.int64(row[c]) > max_in_row:
                max_in_row = np.int64(row[c])
        sum_of_exps = np.int64(0)  # q12.19
        for c in range(depth):
            diff = np.int64(row[c]) - max_in_row
            if diff >= diff_min:
                scaled = _softmax_rescaled_diff(diff, input_beta_multiplier, input_beta_left_shift, single_rounding)
                e = exp_on_negative_values(scaled, 5)  # q0.31
                sum_of_exps = wrap_i32(sum_of_exps + saturating_rounding_multiply_by_pot(e, -12))
        shifted_scale, num_bits_over_unit = get_reciprocal(sum_of_exps, 12)
        exponent = num_bits_over_unit + np.int64(31 - output_bits)
        out = output_2d[i]
        for c in range(depth):
            diff = np.int64(row[c]) - max_in_row
            if diff >= diff_min:
                scaled = _softmax_rescaled_diff(diff, input_beta_multiplier, input_beta_left_shift, single_rounding)
                e = exp_on_negative_values(scaled, 5)
                unsat = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted_scale, e), exponent)
                out[c] = _clamp(unsat + out_min, out_min, out_max)
            else:
                out[c] = out_min


@njit
def logistic_s8(input_flat, output_flat, input_zero_point, input_range_radius, input_multiplier, input_left_shift,
                single_rounding):
    """Logistic (sigmoid), int8 in and out.

    Mirrors: TFLM ``reference_integer_ops::Logistic`` (int8 overload).
    Scaling and overflow: ``x = q - input_zero_point``; ``x <= -radius`` gives
    -128 and ``x >= radius`` gives 127; otherwise ``x`` is rescaled to q4.27
    with ``requantize_s32``, ``logistic`` in q0.31
    (:func:`~sed_runtime.kernels.tflm_fixedpoint.logistic`), rounding shift
    right by 23, ``- 128``, clamped to int8.
    Assumptions: output zero point -128 (TFLM's ``Prepare`` checks it).
    """
    for i in range(input_flat.shape[0]):
        x = np.int64(input_flat[i]) - input_zero_point
        if x <= -input_range_radius:
            output_flat[i] = -128
        elif x >= input_range_radius:
            output_flat[i] = 127
        else:
            x_q4 = requantize_s32(x, input_multiplier, input_left_shift, single_rounding)
            y_q0 = logistic(x_q4, 4)
            v = rounding_divide_by_pot(y_q0, 23) - 128
            output_flat[i] = _clamp(v, -128, 127)


@njit
def tanh_s8(input_flat, output_flat, input_zero_point, input_range_radius, input_multiplier, input_left_shift,
            single_rounding):
    """Tanh, int8 in and out.

    Mirrors: TFLM ``reference_integer_ops::Tanh`` (int8 overload).
    Scaling and overflow: ``x = q - input_zero_point``; ``x <= -radius`` gives
    -128 and ``x >= radius`` gives 127; otherwise rescaled to q4.27 with
    ``requantize_s32``, ``tanh`` in q0.31
    (:func:`~sed_runtime.kernels.tflm_fixedpoint.tanh`), rounding shift right
    by 24, clamped to int8 (no output offset: TFLM assumes zero point 0).
    Assumptions: none beyond the types.
    """
    for i in range(input_flat.shape[0]):
        x = np.int64(input_flat[i]) - input_zero_point
        if x <= -input_range_radius:
            output_flat[i] = -128
        elif x >= input_range_radius:
            output_flat[i] = 127
        else:
            x_q4 = requantize_s32(x, input_multiplier, input_left_shift, single_rounding)
            y_q0 = tanh(x_q4, 4)
            output_flat[i] = _clamp(rounding_divide_by_pot(y_q0, 24), -128, 127)


# ---------------------------------------------------------------------------
# Quantize / dequantize / requantize
# ---------------------------------------------------------------------------


@njit
def affine_quantize(input_f32, output_flat, scale_f32, zero_point, qmin, qmax):
    """float32 -> int8/int16 quantization.

    Mirrors: TFLM ``reference_ops::AffineQuantize``:
    ``clamp(round(x / scale) + zero_point)``.
    Scaling and overflow: the division is float32 (``scale`` is the float32
    scale), ``round`` is C ``roundf`` (half away from zero, exact: the
    fractional part of a float32 is exact); the conversion to int32 saturates,
    as Cortex-M's ``VCVT`` does (NaN gives 0) — an x86 build gives
    ``INT32_MIN`` for out-of-range values instead, the only place the two
    differ; then ``+ zero_point`` and the clamp to ``[qmin, qmax]``.
    Assumptions: ``input_f32`` float32 and ``output_flat`` flat, equal sizes.
    """
    s = np.float32(scale_f32)
    for i in range(input_f32.shape[0]):
        q = np.float32(input_f32[i] / s)
        if q != q:  # NaN
            r = np.int64(0)
        else:
            t = np.trunc(q)
            if abs(q - t) >= np.float32(0.5):  # exact: q - trunc(q) is exact in float32; never true for inf
                t = t + np.float32(1.0) if q > 0 else t - np.float32(1.0)
            if t >= np.float32(2147483648.0):
                r = np.int64(2147483647)
            elif t < np.float32(-2147483648.0):
                r = np.int64(-2147483648)
            else:
                r = np.int64(t)
        output_flat[i] = _clamp(wrap_i32(r + zero_point), qmin, qmax)


@njit
def requantize(input_flat, output_flat, input_zero_point, output_zero_point, multiplier, shift, qmin, qmax,
               single_rounding):
    """Integer -> integer requantization (QUANTIZE between integer types).

    Mirrors: TFLM ``reference_ops::Requantize``:
    ``clamp(MultiplyByQuantizedMultiplier(q - input_zero_point) + output_zero_point)``.
    Scaling and overflow: ``requantize_s32`` with the ``input_scale /
    output_scale`` multiplier; clamped to the output type ``[qmin, qmax]``.
    Assumptions: flat arrays of equal size; TFLM's int8<->uint8 xor fast path
    is not needed (uint8 outputs are not produced by this engine).
    """
    for i in range(input_flat.shape[0]):
        x = wrap_i32(np.int64(input_flat[i]) - input_zero_point)
        v = requantize_s32(x, multiplier, shift, single_rounding) + output_zero_point
        output_flat[i] = _clamp(v, qmin, qmax)


@njit
def dequantize(input_flat, output_f32, scale_f64, zero_point):
    """int8/int16 -> float32.

    Mirrors: TFLM ``reference_ops::Dequantize``:
    ``static_cast<float>(scale * (q - zero_point))`` with ``scale`` the
    float32 scale held as a double.
    Scaling and overflow: the product is double, rounded once to float32.
    Assumptions: flat arrays of equal size.
    """
    for i in range(input_flat.shape[0]):
        output_f32[i] = np.float32(scale_f64 * np.float64(np.int64(input_flat[i]) - zero_point))


# ---------------------------------------------------------------------------
# Data movement
# ---------------------------------------------------------------------------


@njit
def copy_nd(src_6d, dst_6d):
    """Copy one 6-D view into another of the same shape (any strides).

    Mirrors: the data movement of TFLM's ``CONCATENATION`` (one input's slab),
    ``PAD`` (the interior), ``TRANSPOSE`` (a permuted view) and ``RESHAPE`` /
    ``SQUEEZE`` (when not aliased): values are moved unchanged.
    Scaling and overflow: none.
    Assumptions: equal shapes and dtypes.
    """
    d0, d1, d2, d3, d4, d5 = dst_6d.shape
    for a in range(d0):
        for b in range(d1):
            for c in range(d2):
                for d in range(d3):
                    for e in range(d4):
                        s = src_6d[a, b, c, d, e]
                        t = dst_6d[a, b, c, d, e]
                        for f in range(d5):
                            t[f] = s[f]


@njit
def fill_value(dst_flat, value):
    """Set every element of a flat view to ``value``.

    Mirrors: the border of TFLM ``reference_ops::Pad`` (the output zero point
    for int8 without ``constant_values``).
    Scaling and overflow: none.
    Assumptions: ``value`` fits the view's dtype.
    """
    for i in range(dst_flat.shape[0]):
        dst_flat[i] = value
