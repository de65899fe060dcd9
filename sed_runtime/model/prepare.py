"""TFLM's ``Prepare`` for every supported operator: a Graph becomes integer parameters.

Everything that TFLM computes once per operator before the first ``Invoke``
happens here, once, in plain Python: effective scales in double precision
from the float32 scales of the model, ``QuantizeMultiplier``, fused
activation ranges, padding, softmax and logistic input scaling.  Every check
TFLM's ``Prepare`` makes (or ``TFLITE_CHECK``s at run time) becomes a
:class:`~sed_runtime.errors.ModelError` naming the operator and the values.

The result, a :class:`PreparedOp` per operator, holds only integers and host
copies of constants; :mod:`sed_runtime.model.interpreter` binds them to arena
views and kernels.  Each ``prepare_<op>`` function names the TFLM function it
mirrors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from sed_runtime.errors import ModelError, UnsupportedOperatorError
from sed_runtime.fixedpoint import quantize_multiplier
from sed_runtime.model.graph import SUPPORTED_OPS, Graph, Operator, Tensor

__all__ = [
    "PreparedOp",
    "prepare_graph",
    "calculate_activation_range_quantized",
    "compute_padding_height_width",
    "quantize_multiplier_smaller_than_one_exp",
    "quantize_multiplier_greater_than_one",
    "preprocess_softmax_scaling",
    "calculate_input_radius",
    "mean_multiplier",
    "ALIASING_OPS",
]

# Operators whose output is the input's bytes under another shape: planned as one buffer.
ALIASING_OPS = ("RESHAPE", "SQUEEZE")

_INT_RANGES = {
    np.dtype(np.int8): (-128, 127),
    np.dtype(np.int16): (-32768, 32767),
    np.dtype(np.uint8): (0, 255),
    np.dtype(np.int32): (-(2**31), 2**31 - 1),
}


@dataclass
class PreparedOp:
    """One operator after ``Prepare``: what its kernel needs, and what ``sed-inspect`` reports.

    ``params`` holds Python ints and read-only host arrays (widened or
    reordered weights, per-channel multipliers and shifts).  ``macs`` counts
    multiply-accumulates of convolutions, fully connected layers and MUL
    (one per output element); ``weight_bytes`` is the bytes of the constant
    tensors the operator reads, as stored in the model (flash).
    """

    index: int
    kind: str
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    params: dict[str, Any] = field(default_factory=dict)
    macs: int = 0
    weight_bytes: int = 0


class _Context:
    """What an operator's Prepare sees: the graph, the rounding mode, and error helpers."""

    def __init__(self, graph: Graph, op_index: int, op: Operator, single_rounding: bool):
        self.graph = graph
        self.index = op_index
        self.op = op
        self.single_rounding = single_rounding

    def fail(self, message: str) -> ModelError:
        return ModelError(f"operator {self.op.kind} (node {self.op.name!r}): {message}")

    def tensor(self, position: int, *, optional: bool = False) -> Tensor | None:
        if position >= len(self.op.inputs) or self.op.inputs[position] == -1:
            if optional:
                return None
            raise self.fail(f"input {position} is missing; it has {len(self.op.inputs)} inputs")
        return self.graph.tensors[self.op.inputs[position]]

    def output(self, position: int = 0) -> Tensor:
        if position >= len(self.op.outputs):
            raise self.fail(f"output {position} is missing; it has {len(self.op.outputs)} outputs")
        return self.graph.tensors[self.op.outputs[position]]

    def option(self, name: str, default=None):
        return self.op.options.get(name, default)

    def quant(self, t: Tensor) -> tuple[float, int]:
        """The per-tensor (legacy ``params``) scale as float32 and zero point, as TFLM's TfLiteTensor holds them."""
        if t.quantization is None:
            raise self.fail(f"tensor {t.name!r} is not quantized; int8 kernels need a scale and zero point")
        return np.float32(t.quantization.scale[0]), int(t.quantization.zero_point[0])

    def expect_dtype(self, t: Tensor, *dtypes) -> None:
        if t.dtype not in [np.dtype(d) for d in dtypes]:
            expected = " or ".join(str(np.dtype(d)) for d in dtypes)
            raise self.fail(f"tensor {t.name!r} has dtype {t.dtype}; expected {expected}")

    def constant(self, t: Tensor, what: str) -> np.ndarray:
        if t.data is None:
            raise self.fail(f"{what} tensor {t.name!r} must be constant")
        return t.data

    def multiplier(self, real: float, what: str) -> tuple[int, int]:
        if not math.isfinite(real):
            raise self.fail(f"{what} = {real!r} is not finite")
        m, s = quantize_multiplier(real, single_rounding=self.single_rounding)
        if not self.single_rounding and not -31 <= s <= 30 and m != 0:
            raise self.fail(f"{what} = {real!r} needs shift {s}; TFLM's requantization supports -31..30")
        return m, s


def _roundf(value: np.float32) -> np.float32:
    """C ``roundf``: float32 rounded half away from zero (exact in float32)."""
    t = np.trunc(value)
    if abs(value - t) >= np.float32(0.5):
        t = t + np.float32(np.sign(value))
    return np.float32(t)


def _activation_name(value) -> str:
    if isinstance(value, str):
        return value.upper()
    names = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
    if value in names:
        return names[value]
    raise ModelError(f"fused_activation_function={value!r} is not a TFLite ActivationFunctionType")


def calculate_activation_range_quantized(activation, scale: float, zero_point: int, dtype) -> tuple[int, int]:
    """The output clamp ``(act_min, act_max)`` of a fused activation.

    Mirrors TFLM ``CalculateActivationRangeQuantized``: RELU clamps below at
    ``quantize(0.0)``, RELU6 also above at ``quantize(6.0)``, RELU_N1_TO_1 at
    ``quantize(-1.0)`` and ``quantize(1.0)``, where ``quantize(f) =
    zero_point + (int)roundf(f / scale)`` in float32; each bound is
    intersected with the output type's range.  Any other activation (NONE,
    and TANH / SIGN_BIT, which TFLM's int8 kernels do not apply) gives the
    full range.
    """
    qmin, qmax = _INT_RANGES[np.dtype(dtype)]
    scale = np.float32(scale)
    act = _activation_name(activation)

    def quantize(f: float) -> int:
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            tmp = _roundf(np.float32(np.float32(f) / scale))
        if not (np.float32(-(2.0**31)) <= tmp <= np.float32(2.0**31 - 1)):
            raise ModelError(f"activation bound {f} / scale {float(scale)!r} overflows int32")
        return int(zero_point) + int(tmp)

    if act == "RELU":
        return max(qmin, quantize(0.0)), qmax
    if act == "RELU6":
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    if act == "RELU_N1_TO_1":
        return max(qmin, quantize(-1.0)), min(qmax, quantize(1.0))
    return qmin, qmax


def _out_size(padding: str, image: int, filt: int, stride: int, dilation: int) -> int:
    effective = (filt - 1) * dilation + 1
    if padding == "SAME":
        return (image + stride - 1) // stride
    return (image + stride - effective) // stride


def compute_padding_height_width(stride_h: int, stride_w: int, dilation_h: int, dilation_w: int, in_h: int,
                                 in_w: int, filter_h: int, filter_w: int, padding) -> tuple[int, int, int, int]:
    """``(out_h, out_w, pad_h, pad_w)`` as TFLM ``ComputePaddingHeightWidth`` computes them.

    ``pad_*`` is the padding before the first row/column: half the total,
    rounded down; the odd pixel of TFLite SAME padding goes after (bottom and
    right), which the kernels get by bounds checks.  VALID has no padding.
    """
    padding = {0: "SAME", 1: "VALID"}.get(padding, padding)
    padding = str(padding).upper()
    if padding not in ("SAME", "VALID"):
        raise ModelError(f"padding={padding!r}; expected SAME or VALID")
    for name, v in (("stride_h", stride_h), ("stride_w", stride_w), ("dilation_h", dilation_h),
                    ("dilation_w", dilation_w), ("filter_h", filter_h), ("filter_w", filter_w)):
        if v < 1:
            raise ModelError(f"{name}={v} must be >= 1")
    out_h = _out_size(padding, in_h, filter_h, stride_h, dilation_h)
    out_w = _out_size(padding, in_w, filter_w, stride_w, dilation_w)
    if out_h < 0 or out_w < 0:
        raise ModelError(f"window {filter_h}x{filter_w} (dilation {dilation_h}x{dilation_w}) does not fit "
                         f"the {in_h}x{in_w} input")

    def pad(stride, dilation, in_size, filt, out_size):
        effective = (filt - 1) * dilation + 1
        total = max((out_size - 1) * stride + effective - in_size, 0)
        return total // 2

    return out_h, out_w, pad(stride_h, dilation_h, in_h, filter_h, out_h), pad(stride_w, dilation_w, in_w, filter_w,
                                                                            out_w)


def quantize_multiplier_smaller_than_one_exp(real: float, *, single_rounding: bool = False) -> tuple[int, int]:
    """TFLM ``QuantizeMultiplierSmallerThanOneExp``: ``0 < real < 1``, shift <= 0 (TFLM aborts otherwise)."""
    if not 0.0 < real < 1.0:
        raise ModelError(f"multiplier {real!r} must be in (0, 1)")
    m, s = quantize_multiplier(real, single_rounding=single_rounding)
    if s > 0:
        raise ModelError(f"multiplier {real!r} gave shift {s}; expected <= 0")
    return m, s


def quantize_multiplier_greater_than_one(real: float, *, single_rounding: bool = False) -> tuple[int, int]:
    """TFLM ``QuantizeMultiplierGreaterThanOne``: ``real > 1``, shift >= 0 (TFLM aborts otherwise)."""
    if not real > 1.0:
        raise ModelError(f"multiplier {real!r} must be > 1")
    m, s = quantize_multiplier(real, single_rounding=single_rounding)
    if s < 0:
        raise ModelError(f"multiplier {real!r} gave shift {s}; expected >= 0")
    return m, s


def preprocess_softmax_scaling(beta: float, input_scale: float, input_integer_bits: int, *,
                               single_rounding: bool = False) -> tuple[int, int]:
    """``(input_multiplier, input_left_shift)`` for the int8 softmax.

    Mirrors TFLM ``PreprocessSoftmaxScaling`` (not ``TFLITE_EMULATE_FLOAT``):
    ``min(beta * input_scale * 2**(31 - input_integer_bits), max)`` in double,
    with ``max = 2**31 - 1`` (``2**30 - 1`` in a single-rounding build), then
    ``QuantizeMultiplierGreaterThanOne``.
    """
    max_real = float(2**30 - 1) if single_rounding else float(2**31 - 1)
    real = min(float(beta) * float(input_scale) * float(1 << (31 - input_integer_bits)), max_real)
    return quantize_multiplier_greater_than_one(real, single_rounding=single_rounding)


def calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    """TFLM ``CalculateInputRadius``: ``floor((2**ib - 1) * 2**(tsb - ib) / 2**shift)`` in double."""
    if not 0 <= input_left_shift <= 62:
        raise ModelError(f"input left shift {input_left_shift} out of 0..62")
    value = 1.0 * ((1 << input_integer_bits) - 1) * float(1 << (total_signed_bits - input_integer_bits)) / float(
        1 << input_left_shift)
    return int(math.floor(value))


def mean_multiplier(multiplier: int, shift: int, num_elements: int) -> tuple[int, int]:
    """Fold ``1 / num_elements`` into a MEAN multiplier, as TFLM ``QuantizedMeanOrSum`` does.

    ``s = min(floor(log2 n), 32, 31 + shift)``; ``multiplier * 2**s / n``
    with C's truncating int64 division; ``shift - s``.
    """
    if num_elements <= 0:
        return multiplier, shift
    s = int(num_elements).bit_length() - 1
    s = min(s, 32)
    s = min(s, 31 + shift)
    m = (int(multiplier) << s) if s >= 0 else (int(multiplier) >> -s)
    m = int(m / num_elements) if m < 0 else m // num_elements  # C division truncates toward zero
    return m, shift - s


# ---------------------------------------------------------------------------
# Per-operator Prepare
# ---------------------------------------------------------------------------


def _check_same_type(ctx: _Context, a: Tensor, b: Tensor) -> None:
    if a.dtype != b.dtype:
        raise ctx.fail(f"tensor {a.name!r} is {a.dtype} and tensor {b.name!r} is {b.dtype}; expected equal types")


def _per_channel_params(ctx: _Context, input_t: Tensor, filter_t: Tensor, output_t: Tensor, channels: int,
                        quantized_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLM ``PopulateConvolutionQuantizationParams`` (int8): per-channel multiplier and shift."""
    if filter_t.quantization is None:
        raise ctx.fail(f"filter {filter_t.name!r} is not quantized")
    fq = filter_t.quantization
    if fq.scale.size > 1:
        if fq.scale.size != channels:
            raise ctx.fail(f"filter {filter_t.name!r} has {fq.scale.size} scales; expected {channels} (one per "
                           "output channel) or 1")
        if fq.axis != quantized_dim:
            raise ctx.fail(f"filter {filter_t.name!r} is quantized along axis {fq.axis}; expected {quantized_dim}")
    input_scale, _ = ctx.quant(input_t)
    output_scale, _ = ctx.quant(output_t)
    mult = np.zeros(channels, np.int32)
    shift = np.zeros(channels, np.int32)
    for c in range(channels):
        filter_scale = float(fq.scale[c] if fq.scale.size > 1 else fq.scale[0])
        effective = float(input_scale) * filter_scale / float(output_scale)
        mult[c], shift[c] = ctx.multiplier(effective, f"effective scale of channel {c}")
    return mult, shift


def _bias(ctx: _Context, position: int, channels: int) -> tuple[np.ndarray, Tensor | None]:
    bias_t = ctx.tensor(position, optional=True)
    if bias_t is None:
        return np.zeros(channels, np.int32), None
    ctx.expect_dtype(bias_t, np.int32)
    data = ctx.constant(bias_t, "bias")
    if data.size != channels:
        raise ctx.fail(f"bias {bias_t.name!r} has {data.size} values; expected {channels}")
    return np.ascontiguousarray(data.reshape(-1), np.int32), bias_t


def _weight_bytes(ctx: _Context) -> int:
    total = 0
    for i in ctx.op.inputs:
        if i != -1 and ctx.graph.tensors[i].is_constant:
            total += ctx.graph.tensors[i].nbytes
    return total


def _activation_range(ctx: _Context, output_t: Tensor) -> tuple[int, int]:
    scale, zp = ctx.quant(output_t)
    try:
        return calculate_activation_range_quantized(ctx.option("fused_activation_function", "NONE"), scale, zp,
                                                    output_t.dtype)
    except ModelError as exc:
        raise ctx.fail(str(exc)) from exc


def _padding(ctx: _Context, stride_h, stride_w, dil_h, dil_w, in_h, in_w, f_h, f_w, out_t: Tensor):
    try:
        out_h, out_w, pad_h, pad_w = compute_padding_height_width(stride_h, stride_w, dil_h, dil_w, in_h, in_w, f_h,
                                                                  f_w, ctx.option("padding", "SAME"))
    except ModelError as exc:
        raise ctx.fail(str(exc)) from exc
    if (out_h, out_w) != tuple(out_t.shape[1:3]):
        raise ctx.fail(f"output {out_t.name!r} is {out_t.shape[1]}x{out_t.shape[2]}; "
                       f"{ctx.option('padding')} padding gives {out_h}x{out_w}")
    return pad_h, pad_w


def prepare_conv_2d(ctx: _Context) -> PreparedOp:
    """Mirrors TFLM ``ConvPrepare`` / ``CalculateOpDataConv`` (int8 path)."""
    input_t, filter_t, output_t = ctx.tensor(0), ctx.tensor(1), ctx.output()
    ctx.expect_dtype(input_t, np.int8)
    ctx.expect_dtype(filter_t, np.int8)
    _check_same_type(ctx, input_t, output_t)
    if len(input_t.shape) != 4 or len(filter_t.shape) != 4 or len(output_t.shape) != 4:
        raise ctx.fail(f"expected 4-D input/filter/output; got {input_t.shape}, {filter_t.shape}, {output_t.shape}")
    weights = ctx.constant(filter_t, "filter")
    n, in_h, in_w, in_c = input_t.shape
    out_c, f_h, f_w, f_ic = filter_t.shape
    if f_ic < 1 or in_c % f_ic:
        raise ctx.fail(f"input has {in_c} channels, filter {f_ic}: the filter's channels must divide the input's")
    groups = in_c // f_ic
    if out_c % groups:
        raise ctx.fail(f"{out_c} output channels do not split into {groups} groups")
    if output_t.shape[0] != n or output_t.shape[3] != out_c:
        raise ctx.fail(f"output {output_t.shape} does not match input batch {n} and {out_c} filters")
    stride_h, stride_w = int(ctx.option("stride_h", 1)), int(ctx.option("stride_w", 1))
    dil_h, dil_w = int(ctx.option("dilation_h_factor", 1)), int(ctx.option("dilation_w_factor", 1))
    pad_h, pad_w = _padding(ctx, stride_h, stride_w, dil_h, dil_w, in_h, in_w, f_h, f_w, output_t)
    mult, shift = _per_channel_params(ctx, input_t, filter_t, output_t, out_c, 0)
    bias, _ = _bias(ctx, 2, out_c)
    act_min, act_max = _activation_range(ctx, output_t)
    _, in_zp = ctx.quant(input_t)
    _, out_zp = ctx.quant(output_t)
    params = dict(
        filter=np.ascontiguousarray(weights.transpose(1, 2, 3, 0), dtype=np.int32),
        filter_ck=np.ascontiguousarray(weights.reshape(out_c, f_h * f_w * f_ic), dtype=np.int32),
        k_h=f_h, k_w=f_w, im2col_groups=groups,
        bias=bias, multiplier=mult, shift=shift, input_offset=-in_zp, output_offset=out_zp,
        stride_h=stride_h, stride_w=stride_w, dilation_h=dil_h, dilation_w=dil_w, pad_h=pad_h, pad_w=pad_w,
        act_min=act_min, act_max=act_max, groups=groups,
    )
    macs = n * output_t.shape[1] * output_t.shape[2] * out_c * f_h * f_w * f_ic
    return PreparedOp(ctx.index, ctx.op.kind, ctx.op.name, ctx.op.inputs, ctx.op.outputs, params, macs,
                      _weight_bytes(ctx))


def prepare_depthwise_conv_2d(ctx: _Context) -> PreparedOp:
    """Mirrors TFLM ``DepthwiseConvPrepare`` / ``CalculateOpDataDepthwiseConv`` (int8 path)."""
    input_t, filter_t, output_t = ctx.tensor(0), ctx.tensor(1), ctx.output()
    ctx.expect_dtype(input_t, np.int8)
    ctx.expect_dtype(filter_t, np.int8)
    _check_same_type(ctx, input_t, output_t)
    if len(input_t.shape) != 4 or len(filter_t.shape) != 4 or len(output_t.shape) != 4:
        raise ctx.fail(f"expected 4-D input/filter/output; got {input_t.shape}, {filter_t.shape}, {output_t.shape}")
    weights = ctx.constant(filter_t, "filter")
    n, in_h, in_w, in_c = input_t.shape
    one, f_h, f_w, out_c = filter_t.shape
    if one != 1:
        raise ctx.fail(f"filter {filter_t.name!r} has shape {filter_t.shape}; expected [1, KH, KW, OC]")
    dm = int(ctx.option("depth_multiplier", 0) or 0)
    if in_c * dm != out_c or output_t.shape[3] != out_c or output_t.shape[0] != n:
        raise ctx.fail(f"depth_multiplier={dm} with {in_c} input channels does not give the filter's {out_c} "
                       f"output channels (output {output_t.shape})")
    stride_h, stride_w = int(ctx.option("stride_h", 1)), int(ctx.option("stride_w", 1))
    dil_h, dil_w = int(ctx.option("dilation_h_factor", 1)), int(ctx.option("dilation_w_factor", 1))
    pad_h, pad_w = _padding(ctx, stride_h, stride_w, dil_h, dil_w, in_h, in_w, f_h, f_w, output_t)
    mult, shift = _per_channel_params(ctx, input_t, filter_t, output_t, out_c, 3)
    bias, _ = _bias(ctx, 2, out_c)
    act_min, act_max = _activation_range(ctx, output_t)
    _, in_zp = ctx.quant(input_t)
    _, out_zp = ctx.quant(output_t)
    params = dict(
        filter=np.ascontiguousarray(weights.reshape(f_h, f_w, out_c), dtype=np.int32),
        filter_ck=np.ascontiguousarray(weights.reshape(f_h * f_w, out_c).T, dtype=np.int32),
        k_h=f_h, k_w=f_w, im2col_groups=in_c,
        bias=bias, multiplier=mult, shift=shift, input_offset=-in_zp, output_offset=out_zp, depth_multiplier=dm,
        stride_h=stride_h, stride_w=stride_w, dilation_h=dil_h, dilation_w=dil_w, pad_h=pad_h, pad_w=pad_w,
        act_min=act_min, act_max=act_max,
    )
    macs = n * output_t.shape[1] * output_t.shape[2] * out_c * f_h * f_w
    return PreparedOp(ctx.index, ctx.op.kind, ctx.op.name, ctx.op.inputs, ctx.op.outputs, params, macs,
                      _weight_bytes(ctx))


def prepare_fully_connected(ctx: _Context) -> PreparedOp:
    """Mirrors TFLM ``FullyConnectedPrepare`` / ``CalculateOpDataFullyConnected`` (int8 path).

    Per-tensor filters take TFLM's ``GetQuantizedConvolutionMultipler``: the
    bias-scale check (``|input_scale * filter_scale - bias_scale| /
    output_scale <= 0.02``) and a multiplier formed from the **float32**
    product ``input_scale * filter_scale`` divided in double by the output
    scale.  Per-channel filters use double products, like convolutions.
    """
    input_t, filter_t, output_t = ctx.tensor(0), ctx.tensor(1), ctx.output()
    ctx.expect_dtype(input_t, np.int8)
    ctx.expect_dtype(filter_t, np.int8)
    _check_same_type(ctx, input_t, output_t)
    if str(ctx.option("weights_format", "DEFAULT")).upper() not in ("DEFAULT", "0"):
        raise UnsupportedOperatorError(f"operator FULLY_CONNECTED (node {ctx.op.name!r}): weights_format "
                                       f"{ctx.option('weights_format')} is not supported; supported: DEFAULT")
    weights = ctx.constant(filter_t, "filter")
    if len(filter_t.shape) != 2:
        raise ctx.fail(f"filter {filter_t.name!r} has shape {filter_t.shape}; expected [units, depth]")
    out_c, depth = filter_t.shape
    out_size = int(np.prod(output_t.shape, dtype=np.int64))
    if not output_t.shape or output_t.shape[-1] != out_c:
        raise ctx.fail(f"output {output_t.name!r} shape {output_t.shape} does not end in {out_c} units")
    batches = out_size // out_c
    in_size = int(np.prod(input_t.shape, dtype=np.int64))
    if in_size != batches * depth:
        raise ctx.fail(f"input {input_t.name!r} of shape {input_t.shape} is not {batches} rows of {depth}")
    if filter_t.quantization is None:
        raise ctx.fail(f"filter {filter_t.name!r} is not quantized")
    fq = filter_t.quantization
    input_scale, in_zp = ctx.quant(input_t)
    output_scale, out_zp = ctx.quant(output_t)
    bias, bias_t = _bias(ctx, 2, out_c)
    if fq.scale.size > 1:
        mult, shift = _per_channel_params(ctx, input_t, filter_t, output_t, out_c, 0)
        filter_offset = 0
    else:
        filter_scale = np.float32(fq.scale[0])
        if bias_t is not None and bias_t.quantization is not None:
            bias_scale = float(np.float32(bias_t.quantization.scale[0]))
            scale_diff = abs(float(input_scale) * float(filter_scale) - bias_scale)
            if not scale_diff / float(output_scale) <= 0.02:
                raise ctx.fail(f"bias scale {bias_scale!r} differs from input_scale * filter_scale "
                               f"{float(input_scale) * float(filter_scale)!r} by more than 0.02 output steps")
        product = np.float32(input_scale * filter_scale)  # float32 product, as TFLM forms it
        m, s = ctx.multiplier(float(product) / float(output_scale), "effective output scale")
        mult = np.full(out_c, m, np.int32)
        shift = np.full(out_c, s, np.int32)
        filter_offset = -int(fq.zero_point[0])
    act_min, act_max = _activation_range(ctx, output_t)
    params = dict(filter=np.ascontiguousarray(weights, np.int8), bias=bias, multiplier=mult, shift=shift,
                  input_offset=-in_zp, filter_offset=filter_offset, output_offset=out_zp, act_min=act_min,
                  act_max=act_max, batches=batches, depth=depth)
    return PreparedOp(ctx.index, ctx.op.kind, ctx.op.name, ctx.op.inputs, ctx.op.outputs, params,
                      batches * out_c * depth, _weight_bytes(ctx))


def _prepare_pool(ctx: _Context) -> PreparedOp:
    """Mirrors TFLM ``PoolingPrepare`` / ``CalculateOpDataPooling`` (int8)."""
    input_t, output_t = ctx.tensor(0), ctx.output()
    ctx.expect_dtype(input_t, np.int8)
    _check_same_type(ctx, input_t, output_t)
    if len(input_t.shape) != 4 or len(output_t.shape) != 4:
        raise ctx.fail(f"expected 4-D input and output; got {input_t.shape}, {output_t.shape}")
    if input_t.shape[0] != output_t.shape[0] or input_t.shape[3] != output_t.shape[3]:
        raise ctx.fail(f"output {output_t.shape} must keep the input's batch and channels ({input_t.shape})")
    in_scale, in_zp = ctx.quant(input_t)
    out_scale, out_zp = ctx.quant(output_t)
    if not float(abs(np.float32(in_scale - out_scale))) <= 1.0e-6 or in_zp != out_zp:
        raise ctx.fail(f"input and output quantization differ (scale {float(in_scale)!r} vs {float(out_scale)!r}, "
                       f"zero point {in_zp} vs {out_zp}); TFLM requires them equal")
    f_h, f_w = int(ctx.option("filter_height", 0)), int(ctx.option("filter_width", 0))
    stride_h, stride_w = int(ctx.option("stride_h", 1)), int(ctx.option("stride_w", 1))
    pad_h, pad_w = _padding(ctx, stride_h, stride_w, 1, 1, input_t.shape[1], input_t.shape[2], f_h, f_w, output_t)
    act_min, act_max = _activation_range(ctx, output_t)
    params = dict(filter_h=f_h, filter_w=f_w, stride_h=stride_h, stride_w=stride_w, pad_h=pad_h, pad_w=pad_w,
                  act_min=act_min, act_max=act_max)
    return PreparedOp(ctx.index, ctx.op.kind, ctx.op.name, ctx.op.inputs, ctx.op.outputs, params, 0,
                      _weight_bytes(ctx))


def prepare_mean(ctx: _Context) -> PreparedOp:
    """Mirrors TFLM ``PrepareMeanOrSumHelper`` plus the multiplier folding of ``QuantizedMeanOrSum`` (int8/int16)."""
    input_t, axis_t, output_t = ctx.tensor(0), ctx.tensor(1), ctx.output()
    ctx.expect_dtype(input_t, np.int8, np.int16)
    _check_same_type(ctx, input_t, output_t)
    ctx.expect_dtype(axis_t, np.int32)
    axes_raw = [int(a) for a in ctx.constant(axis_t, "axis").reshape(-1)]
    nd = len(input_t.shape)
    if nd > 6:
        raise ctx.fail(f"input has {nd} axes; at most 6 are supported")
    axes: list[int] = []
    for a in axes_raw:  # ResolveAxis: negatives wrap, duplicates drop
        cur = a + nd if a < 0 else a
        if not 0 <= cur < nd:
            raise ctx.fail(f"axis {a} out of range for a {nd}-D input")
        if cur not in axes:
            axes.append(cur)
    num_elements = int(np.prod([input_t.shape[a] for a in axes], dtype=np.int64)) if axes else 1
    kept = [d for i, d in enumerate(input_t.shape) if i not in axes]
    out_size = int(np.prod(output_t.shape, dtype=np.int64))
    if out_size != int(np.prod(kept, dtype=np.int64)):
        raise ctx.fail(f"output {output_t.shape} does not hold the {kept} values left after reducing axes {axes}")
    in_scale, in_zp = ctx.quant(input_t)
    out_scale, out_zp = ctx.quant(output_t)
    m, s = ctx.multiplier(float(in_scale) / float(out_scale), "input_scale / output_scale")
    m, s = mean_multiplier(m, s, num_elements)
    # Stride of each input axis in the flat output (0 for reduced axes), padded to 6 axes.
    strides = []
    step = 1
    for i in reversed(range(nd)):
        if i in axes:
            strides.append(0)
        else:
            strides.append(step)
            step *= input_t.shape[i]
    strides = [0] * (6 - nd) + list(reversed(strides))
    qmin, qmax = _INT_RANGES[input_t.dtype]
    params = dict(out_strides=np.array(strides, np.int64), input_zero_point=in_zp, num_elements=num_elements,
                  output_zero_point=out_zp, multiplier=m, shift=s, qmin=qmin, qmax=qmax, out_size=out_size)
    return PreparedOp(ctx.index, ctx.op.kind, ctx.op.name, ctx.op.inputs, ctx.op.outputs, params, 0,
                      _weight_bytes(ctx))


def _broadcast_shapes(ctx: _Context, a: Tensor, b: Tensor, out: Tensor) -> None:
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError as exc:
        raise ctx.fail(f"inputs of shapes {a.shape} and {b.shape} do not broadcast") from exc
    if tuple(shape) != tuple(out.shape) or len(out.shape) > 6:
        raise ctx.fail(f"output shape {out.shape}; broadcasting {a.shape} and {b.shape} gives {tuple(shape)} "
                       "(at most 6 axes)")


def prepare_add(ctx: _Context) -> PreparedOp:
    """Mirrors TFLM ``AddPrepare`` / ``CalculateOpDataAdd`` (int8: left shift 20)."""
    a, b, out = ctx.tensor(0), ctx.tensor(1), ctx.output()
    for t in (a, b, out):
        ctx.expect_dtype(t, np.int8)
    _broadcast_shapes(ctx, a, b, out)
    s1, z1 = ctx.quant(a)
    s2, z2 = ctx.quant(b)
    so, zo = ctx.quant(out)
    left_shift = 20
    twice_max_input_scale = 2 * float(max(s1, s2))
    real1 = float(s1) / twice_max_input_scale
    real2 = float(s2) / twice_max_input_scale
    real_out = twice_max_input_scale / ((1 << left_shift) * float(so))
    try:
        m1, sh1 = quantize_multiplier_smaller_than_one_exp(real1, single_rounding=ctx.single_rounding)
        m2, sh2 = quantize_multiplier_smaller_than_one_exp(real2, single_rounding=ctx.single_rounding)
        mo, sho = quantize_multiplier_smaller_than_one_exp(real_out, single_rounding=ctx.single_rounding)
    except ModelError as exc:
        raise ctx.fail(f"{exc} (input scales {float(s1)!r}, {float(s2)!r}, output scale {float(so)!r})") from exc
    act_min, act_max = _activation_range(ctx, out)
    params = dict(input1_offset=-z1, input2_offset=-z2, left_shift=left_shift, input1_multiplier=m1,
                  input1_shift=sh1, input2_multiplier=m2, input2_shift=sh2, output_multiplier=mo, output_shift=sho,
                  output_offset=zo, act_min=act_min, act_max=act_max)
    return PreparedOp(ctx.index, ctx.op.kind, ctx.op.name, ctx.op.inputs, ctx.op.outputs, params, 0,
                      _weight_bytes(ctx))


def prepare_mul(ctx: _Context) -> PreparedOp:
    """Mirrors TFLM ``MulPrepare`` / ``CalculateOpDataMul`` (int8)."""
    a, b, out = ctx.tensor(0), ctx.tensor(1), ctx.output()
    for t in (a, b, out):
        ctx.expect_dtype(t, np.int8)
    _broadcast_shapes(ctx, a, b, out)
    s1, z1 = ctx.quant(a)
    s2, z2 = ctx.quant(b)
    so, zo = ctx.quant(out)
    act_min, act_max = _activation_range(ctx, out)
    m, s = ctx.multiplier(float(s1) * float(s2) / float(so), "input1_scale * input2_scale / output_scale")
    params = dict(input1_offset=-z1, input2_offset=-z2, output_offset=zo, output_multiplier=m, output_shift=s,
                  act_min=act_min, act_max=act_max)
    return PreparedOp(ctx.index, ctx.op.kind, ctx.op.name, ctx.op.inputs, ctx.op.outputs, params,
                      int(np.prod(out.shape, dtype=np.int64)), _weight_bytes(ctx))


def prepare_concatenation(ctx: _Context) -> PreparedOp:
    """Mirrors TFLM ``CONCATENATION``'s Prepare: equal types, and equal scale and zero point for int8."""
    out = ctx.output()
    inputs = [ctx.tensor(i) for i in range(len(ctx.op.inputs))]
    if not 1 <= len(inputs) <= 10:
        raise ctx.fail(f"{len(inputs)} inputs; TFLM concatenates 1 to 10")
    if _activation_name(ctx.option("fused_activation_function", "NONE")) != "NONE":
        raise ctx.fail("a fused activation is not supported (TFLM requires NONE)")
    nd = len(out.shape)
    axis = int(ctx.option("axis", 0))
    axis = axis + nd if axis < 0 else axis
    if not 0 <= axis < nd or nd > 6:
        raise ctx.fail(f"axis {ctx.option('axis')} out of range for a {nd}-D output (at most 6 axes)")
    total = 0
    for t in inputs:
        _check_same_type(ctx, t, out)
        if len(t.shape) != nd or any(t.shape[i] != out.shape[i] for i in range(nd) if i != axis):
            raise ctx.fail(f"input {t.name!r} of shape {t.shape} does not concatenate into {out.shape} on axis {axis}")
        total += t.shape[axis]
        if out.dtype == np.int8 or out.dtype == np.int16:
            s, z = ctx.quant(t)
            so, zo = ctx.quant(out)
            if float(s) != float(so) or (z != zo) or (out.dtype == np.int16 and z != 0):
                raise ctx.fail(f"input {t.name!r} quantization (scale {float(s)!r}, zero point {z}) differs from "
                               f"the output's ({float(so)!r}, {zo}); TFLM requires them equal")
    if total != out.shape[axis]:
        raise ctx.fail(f"inputs add up to {total} along axis {axis}; the output has {out.shape[axis]}")
    return PreparedOp(ctx.index, ctx.op.kind, ctx.op.name, ctx.op.inputs, ctx.op.outputs, dict(axis=axis), 0,
                      _weight_bytes(ctx))


def prepare_pad(ctx: _Context) -> PreparedOp:
    """Mirrors TFLM ``PadPrepare``: constant paddings, pad value = output zero point (int8) or the constant."""
    input_t, paddings_t, out = ctx.tensor(0), ctx.tensor(1), ctx.output()
    _check_same_type(ctx, input_t, out)
    nd = len(input_t.shape)
    if nd > 5 or len(out.shape) != nd:
        raise ctx.fail(f"input {input_t.shape} / output {out.shape}: TFLM pads tensors of up to 5 axes")
    pads = np.asarray(ctx.constant(paddings_t, "paddings"), np.int64)
    if pads.size != 2 * nd:
        raise ctx.fail(f"paddings has {pads.size} values; expected {2 * nd}")
    pads = pads.reshape(nd, 2)
    if np.any(pads < 0):
        raise ctx.fail(f"negative paddings {pads.tolist()}")
    for i in range(nd):
        if out.shape[i] != input_t.shape[i] + pads[i, 0] + pads[i, 1]:
            raise ctx.fail(f"output {out.shape} is not input {input_t.shape} padded by {pads.tolist()}")
    constant_t = ctx.tensor(2, optional=True)
    if constant_t is not None:
        _check_same_type(ctx, constant_t, input_t)
        value = ctx.constant(constant_t, "constant_values").reshape(-1)
        if value.size != 1:
            raise ctx.fail(f"constant_values has {value.size} values; expected 1")
        if out.dtype == np.int8:
            cs, cz = ctx.quant(constant_t)
            so, zo = ctx.quant(out)
            if float(cs) != float(so) or cz != zo:
                raise ctx.fail("constant_values quantization differs from the output's")
        pad_value = value[0]
    elif out.dtype == np.int8:
        _, zo = ctx.quant(out)
        if not -128 <= zo <= 127:
            raise ctx.fail(f"output zero point {zo} is outside int8")
        pad_value = zo
    else:
        pad_value = 0
    return PreparedOp(ctx.index, ctx.op.kind, ctx.op.name, ctx.op.inputs, ctx.op.outputs,
                      dict(paddings=pads, pad_value=np.array(pad_value, out.dtype)), 0, _weight_bytes(ctx))


def prepare_reshape(ctx: _Context) -> PreparedOp:
    """RESHAPE / SQUEEZE: the same bytes under the output's shape (TFLM copies unless in place; we alias)."""
    input_t, out = ctx.tensor(0), ctx.output()
    _check_same_type(ctx, input_t, out)
    if input_t.nbytes != out.nbytes:
        raise ctx.fail(f"input {input_t.shape} and output {out.shape} hold different numbers of elements")
    return PreparedOp(ctx.index, ctx.op.kind, ctx.op.name, ctx.op.inputs, ctx.op.outputs, {}, 0, _weight_bytes(ctx))


def prepare_transpose(ctx: _Context) -> PreparedOp:
    """Mirrors TFLM ``TRANSPOSE``: a constant permutation of up to 6 axes."""
    input_t, perm_t, out = ctx.tensor(0), ctx.tensor(1), ctx.output()
    _check_same_type(ctx, input_t, out)
    perm = [int(p) for p in ctx.constant(perm_t, "perm").reshape(-1)]
    nd = len(input_t.shape)
    if sorted(perm) != list(range(nd)) or nd > 6:
        raise ctx.fail(f"perm {perm} is not a permutation of the input's {nd} axes (at most 6)")
    if tuple(input_t.shape[p] for p in perm) != tuple(out.shape):
        raise ctx.fail(f"output {out.shape} is not input {input_t.shape} permuted by {perm}")
    return PreparedOp(ctx.index, ctx.op.kind, ctx.op.name, ctx.op.inputs, ctx.op.outputs, dict(perm=tuple(perm)), 0,
                      _weight_bytes(ctx))


def prepare_softmax(ctx: _Context) -> PreparedOp:
    """Mirrors TFLM ``SoftmaxPrepare`` / ``CalculateSoftmaxParams`` (int8 input)."""
    input_t, out = ctx.tensor(0), ctx.output()
    ctx.expect_dtype(input_t, np.int8)
    ctx.expect_dtype(out, np.int8, np.int16)
    if len(input_t.shape) < 1 or input_t.shape != out.shape:
        raise ctx.fail(f"input {input_t.shape} and output {out.shape} must have the same (non-scalar) shape")
    in_scale, _ = ctx.quant(input_t)
    out_scale, out_zp = ctx.quant(out)
    if out.dtype == np.int8:
        if out_zp != -128 or float(out_scale) != 1.0 / 256:
            raise ctx.fail(f"int8 output must have zero point -128 and scale 1/256; got {out_zp}, {float(out_scale)!r}")
        output_bits = 8
    else:
        if out_zp != -32768 or not abs(float(out_scale) - 1.0 / 65536) <= 0.001 / 65536:
            raise ctx.fail(f"int16 output must have zero point -32768 and scale 1/65536; got {out_zp}, "
                           f"{float(out_scale)!r}")
        output_bits = 16
    beta = float(np.float32(ctx.option("beta", 1.0)))
    try:
        m, s = preprocess_softmax_scaling(beta, float(in_scale), 5, single_rounding=ctx.single_rounding)
        diff_min = -calculate_input_radius(5, s)
    except ModelError as exc:
        raise ctx.fail(f"{exc} (beta {beta!r}, input scale {float(in_scale)!r})") from exc
    depth = input_t.shape[-1]
    params = dict(input_multiplier=m, input_left_shift=s, diff_min=diff_min, output_bits=output_bits, depth=depth)
    return PreparedOp(ctx.index, ctx.op.kind, ctx.op.name, ctx.op.inputs, ctx.op.outputs, params, 0, 0)


def _prepare_logistic_or_tanh(ctx: _Context) -> PreparedOp:
    """Mirrors TFLM ``CalculateArithmeticOpDataLogistic`` / tanh's ``CalculateArithmeticOpData`` (int8).

    The input multiplier is ``frexp(input_scale * 2**27)`` with the mantissa
    rounded to q0.31 directly (not ``QuantizeMultiplier``); the radius is
    ``CalculateInputRadius(4, shift)``.
    """
    input_t, out = ctx.tensor(0), ctx.output()
    ctx.expect_dtype(input_t, np.int8)
    ctx.expect_dtype(out, np.int8)
    if input_t.shape != out.shape:
        raise ctx.fail(f"input {input_t.shape} and output {out.shape} must have the same shape")
    in_scale, in_zp = ctx.quant(input_t)
    if ctx.op.kind == "LOGISTIC":
        _, out_zp = ctx.quant(out)
        if out_zp != -128:
            raise ctx.fail(f"int8 output zero point must be -128; got {out_zp}")
    real = float(in_scale) * float(1 << (31 - 4))
    q, shift = math.frexp(real)
    scaled = q * 2.0**31
    mult = int(math.floor(scaled + 0.5)) if scaled >= 0 else -int(math.floor(-scaled + 0.5))  # exact: q has 24 bits
    if mult >= 2**31:
        raise ctx.fail(f"input scale {float(in_scale)!r} gives multiplier {mult}, outside int32")
    try:
        radius = calculate_input_radius(4, shift, 31)
    except ModelError as exc:
        raise ctx.fail(f"input scale {float(in_scale)!r}: {exc}") from exc
    params = dict(input_zero_point=in_zp, input_range_radius=radius, input_multiplier=mult, input_left_shift=shift)
    return PreparedOp(ctx.index, ctx.op.kind, ctx.op.name, ctx.op.inputs, ctx.op.outputs, params, 0, 0)


def prepare_quantize(ctx: _Context) -> PreparedOp:
    """Mirrors TFLM ``PrepareQuantizeReference``: float32 -> int8/int16, or integer requantization."""
    input_t, out = ctx.tensor(0), ctx.output()
    ctx.expect_dtype(input_t, np.float32, np.int8, np.int16)
    ctx.expect_dtype(out, np.int8, np.int16)
    if input_t.shape != out.shape and input_t.nbytes // input_t.dtype.itemsize != out.nbytes // out.dtype.itemsize:
        raise ctx.fail(f"input {input_t.shape} and output {out.shape} differ in size")
    if out.quantization is None or out.quantization.per_channel:
        raise ctx.fail("the output needs per-tensor quantization")
    out_scale, out_zp = ctx.quant(out)
    qmin, qmax = _INT_RANGES[out.dtype]
    params = dict(output_zero_point=out_zp, output_scale=np.float32(out_scale), qmin=qmin, qmax=qmax)
    if input_t.dtype != np.float32:
        in_scale, in_zp = ctx.quant(input_t)
        m, s = ctx.multiplier(float(in_scale) / float(out_scale), "input_scale / output_scale")
        params.update(input_zero_point=in_zp, multiplier=m, shift=s)
    return PreparedOp(ctx.index, ctx.op.kind, ctx.op.name, ctx.op.inputs, ctx.op.outputs, params, 0, 0)


def prepare_dequantize(ctx: _Context) -> PreparedOp:
    """Mirrors TFLM ``DequantizePrepare``: int8/int16 -> float32 with the input's scale and zero point."""
    input_t, out = ctx.tensor(0), ctx.output()
    ctx.expect_dtype(input_t, np.int8, np.int16)
    ctx.expect_dtype(out, np.float32)
    scale, zp = ctx.quant(input_t)
    return PreparedOp(ctx.index, ctx.op.kind, ctx.op.name, ctx.op.inputs, ctx.op.outputs,
                      dict(scale=float(scale), zero_point=zp), 0, 0)


_PREPARE: dict[str, Callable[[_Context], PreparedOp]] = {
    "ADD": prepare_add,
    "AVERAGE_POOL_2D": _prepare_pool,
    "CONCATENATION": prepare_concatenation,
    "CONV_2D": prepare_conv_2d,
    "DEPTHWISE_CONV_2D": prepare_depthwise_conv_2d,
    "DEQUANTIZE": prepare_dequantize,
    "FULLY_CONNECTED": prepare_fully_connected,
    "LOGISTIC": _prepare_logistic_or_tanh,
    "MAX_POOL_2D": _prepare_pool,
    "MEAN": prepare_mean,
    "MUL": prepare_mul,
    "PAD": prepare_pad,
    "QUANTIZE": prepare_quantize,
    "RESHAPE": prepare_reshape,
    "SOFTMAX": prepare_softmax,
    "SQUEEZE": prepare_reshape,
    "TANH": _prepare_logistic_or_tanh,
    "TRANSPOSE": prepare_transpose,
}
assert set(_PREPARE) == set(SUPPORTED_OPS)


def prepare_graph(graph: Graph, *, single_rounding: bool = False) -> list[PreparedOp]:
    """Run every operator's Prepare, in execution order; raises ModelError on the first problem."""
    prepared = []
    for i, op in enumerate(graph.operators):
        fn = _PREPARE.get(op.kind)
        if fn is None:
            raise UnsupportedOperatorError(
                f"operator {op.kind} (node {op.name!r}) is not supported; supported: {', '.join(SUPPORTED_OPS)}")
        if not op.outputs:
            raise ModelError(f"operator {op.kind} (node {op.name!r}) has no output")
        prepared.append(fn(_Context(graph, i, op, single_rounding)))
    return prepared
