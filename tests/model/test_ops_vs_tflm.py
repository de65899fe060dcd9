"""Tier 1: every operator, over seeded random shapes and parameters, bit for bit against tflite-micro.

Each case builds a one-operator .tflite model (tests/model/tflite_builder.py),
runs it in the ``tflite-micro`` interpreter and through
``sed_runtime.load_model`` on the same bytes (so the importer is exercised
too), and compares every output element.  25 seeds per test by default; the
``slow`` tier (``SED_SLOW=1``) adds 225 more.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from _compare import assert_equal_ints
from model.tflite_builder import GraphBuilder, tflm_available, tflm_run, to_tflite
from sed_runtime.model.interpreter import Model, load_graph, load_model

pytestmark = pytest.mark.skipif(not tflm_available(), reason="needs tflite-micro and flatbuffers")

CASES = 25
# One test item per seed by default; the slow tier adds one item running seeds 25..249 in a loop.
SEEDS = [*range(CASES), pytest.param("more", marks=pytest.mark.slow, id=f"seeds{CASES}-{10 * CASES - 1}")]


def over_seeds(test):
    """Run ``test`` for its seed, or for every extra seed when the seed is the slow tier's ``"more"``."""

    @functools.wraps(test)
    def run(*args, seed, **kwargs):
        for s in (range(CASES, 10 * CASES) if seed == "more" else (seed,)):
            test(*args, seed=s, **kwargs)

    return run
ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def _scale(rng, lo=-9.0, hi=-2.0) -> np.float32:
    return np.float32(2.0 ** rng.uniform(lo, hi))


def _zp(rng) -> int:
    return int(rng.integers(-128, 128))


def _s8(rng, shape) -> np.ndarray:
    return rng.integers(-128, 128, size=shape, dtype=np.int64).astype(np.int8)


def check(graph, inputs, what, conv_strategy="auto"):
    """Run ``graph`` in TFLM and in sed-runtime on ``inputs``; assert identical outputs."""
    data = to_tflite(graph)
    expected = tflm_run(data, *inputs, n_outputs=len(graph.outputs))
    if conv_strategy == "auto":
        model = load_model(data)
    else:
        model = Model(load_graph(data), conv_strategy=conv_strategy)
    actual = model.invoke(*inputs)
    if len(graph.outputs) == 1:
        actual = (actual,)
    for k, (act, ref) in enumerate(zip(actual, expected)):
        act = np.asarray(act).reshape(ref.shape)
        if ref.dtype == np.float32:
            act, ref = act.view(np.int32), ref.view(np.int32)
        assert_equal_ints(act, ref, f"{what} output {k}")
    return model


# ---------------------------------------------------------------------------
# Convolutions
# ---------------------------------------------------------------------------


def _conv_case(rng, depthwise: bool):
    n = int(rng.integers(1, 3))
    in_h, in_w = int(rng.integers(1, 13)), int(rng.integers(1, 13))
    k_h, k_w = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    stride_h, stride_w = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    dil_h, dil_w = (int(rng.integers(1, 3)), int(rng.integers(1, 3))) if rng.random() < 0.3 else (1, 1)
    padding = "SAME" if rng.random() < 0.5 else "VALID"
    if padding == "VALID":  # keep at least one output pixel
        in_h = max(in_h, (k_h - 1) * dil_h + 1)
        in_w = max(in_w, (k_w - 1) * dil_w + 1)
    if depthwise:
        in_c = int(rng.integers(1, 7))
        dm = int(rng.integers(1, 5))
        out_c = in_c * dm
        filter_shape = (1, k_h, k_w, out_c)
        taps = k_h * k_w
        qdim = 3
    else:
        in_c = int(rng.integers(1, 9))
        groups = int(rng.choice([g for g in (1, 2, 3) if in_c % g == 0])) if rng.random() < 0.25 else 1
        out_c = groups * int(rng.integers(1, 5))
        filter_shape = (out_c, k_h, k_w, in_c // groups)
        taps = k_h * k_w * in_c // groups
        qdim = 0
    in_scale, in_zp = _scale(rng), _zp(rng)
    per_channel = rng.random() < 0.7
    w_scale = np.array([_scale(rng, -9, -5) for _ in range(out_c if per_channel else 1)], np.float32)
    weights = rng.integers(-127, 128, size=filter_shape).astype(np.int8)
    bias_scale = (in_scale * w_scale).astype(np.float32)
    bias = rng.integers(-(2**14), 2**14, size=out_c).astype(np.int32)
    acc_std = 74.0 * 64.0 * np.sqrt(taps)
    out_scale = np.float32(in_scale * float(np.mean(w_scale)) * acc_std / 40.0 * 2.0 ** rng.uniform(-1.5, 1.5))
    out_zp = _zp(rng)

    b = GraphBuilder()
    x = b.tensor("x", (n, in_h, in_w, in_c), scale=in_scale, zero_point=in_zp)
    w = b.tensor("w", filter_shape, scale=w_scale, zero_point=0, data=weights, axis=qdim)
    inputs = [x, w]
    if rng.random() < 0.85:
        inputs.append(b.tensor("b", (out_c,), np.int32, scale=bias_scale, zero_point=0, data=bias))
    options = dict(padding=padding, stride_w=stride_w, stride_h=stride_h, dilation_w_factor=dil_w,
                   dilation_h_factor=dil_h, fused_activation_function=str(rng.choice(ACTIVATIONS)))
    eff_h, eff_w = (k_h - 1) * dil_h + 1, (k_w - 1) * dil_w + 1
    out_h = -(-in_h // stride_h) if padding == "SAME" else (in_h - eff_h) // stride_h + 1
    out_w = -(-in_w // stride_w) if padding == "SAME" else (in_w - eff_w) // stride_w + 1
    y = b.tensor("y", (n, out_h, out_w, out_c), scale=out_scale, zero_point=out_zp)
    if depthwise:
        options["depth_multiplier"] = dm
        b.op("DEPTHWISE_CONV_2D", inputs, [y], **options)
    else:
        b.op("CONV_2D", inputs, [y], **options)
    b.inputs, b.outputs = [x], [y]
    return b.build(), [_s8(rng, (n, in_h, in_w, in_c))]


# per-layer choice / channel-major im2col (float32 when exact) / int32 im2col / pixel-major float32 / reference order
STRATEGIES = ("auto", "im2col", "im2col-int", "gemm-nhwc", "direct")


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("seed", SEEDS)
@over_seeds
def test_conv_2d(seed, strategy):
    graph, inputs = _conv_case(np.random.default_rng([1, seed]), depthwise=False)
    check(graph, inputs, f"CONV_2D {strategy} seed {seed} {graph.operators[0].options} {graph.tensors[1].shape}",
          strategy)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("seed", SEEDS)
@over_seeds
def test_depthwise_conv_2d(seed, strategy):
    graph, inputs = _conv_case(np.random.default_rng([2, seed]), depthwise=True)
    check(graph, inputs,
          f"DEPTHWISE_CONV_2D {strategy} seed {seed} {graph.operators[0].options} {graph.tensors[1].shape}", strategy)


def test_conv_1x1_pointwise():
    rng = np.random.default_rng(3)
    for trial in range(5):
        in_c, out_c = int(rng.integers(1, 33)), int(rng.integers(1, 33))
        b = GraphBuilder()
        x = b.tensor("x", (1, 7, 5, in_c), scale=_scale(rng), zero_point=_zp(rng))
        w_scale = np.array([_scale(rng, -8, -6) for _ in range(out_c)], np.float32)
        w = b.tensor("w", (out_c, 1, 1, in_c), scale=w_scale, data=rng.integers(-127, 128, (out_c, 1, 1, in_c)))
        bias = b.tensor("b", (out_c,), np.int32, scale=w_scale * 0.01, data=rng.integers(-999, 999, out_c))
        y = b.tensor("y", (1, 7, 5, out_c), scale=np.float32(0.02 * np.sqrt(in_c)), zero_point=_zp(rng))
        b.op("CONV_2D", [x, w, bias], [y], padding="VALID", stride_w=1, stride_h=1,
             fused_activation_function="RELU6")
        b.inputs, b.outputs = [x], [y]
        check(b.build(), [_s8(rng, (1, 7, 5, in_c))], f"1x1 conv trial {trial}")


def _fc_case(rng):
    batches = int(rng.integers(1, 4))
    depth = int(rng.integers(1, 300))
    units = int(rng.integers(1, 21))
    keep = rng.random() < 0.3
    in_scale, in_zp = _scale(rng), _zp(rng)
    per_channel = rng.random() < 0.4
    w_scale = np.array([_scale(rng, -9, -5) for _ in range(units if per_channel else 1)], np.float32)
    weights = rng.integers(-127, 128, size=(units, depth)).astype(np.int8)
    acc_std = 74.0 * 64.0 * np.sqrt(depth)
    out_scale = np.float32(in_scale * float(np.mean(w_scale)) * acc_std / 40 * 2.0 ** rng.uniform(-1, 1))
    b = GraphBuilder()
    in_shape = (batches, 2, depth // 2) if (keep and depth % 2 == 0) else (batches, depth)
    x = b.tensor("x", in_shape, scale=in_scale, zero_point=in_zp)
    w = b.tensor("w", (units, depth), scale=w_scale, data=weights)
    inputs = [x, w]
    if rng.random() < 0.8:
        bias_scale = (in_scale * w_scale).astype(np.float32)
        inputs.append(b.tensor("b", (units,), np.int32, scale=bias_scale,
                               data=rng.integers(-(2**14), 2**14, size=units)))
    out_shape = (batches, units)
    y = b.tensor("y", out_shape, scale=out_scale, zero_point=_zp(rng))
    b.op("FULLY_CONNECTED", inputs, [y], fused_activation_function=str(rng.choice(ACTIVATIONS)),
         keep_num_dims=False)
    b.inputs, b.outputs = [x], [y]
    return b.build(), [_s8(rng, in_shape)]


@pytest.mark.parametrize("seed", SEEDS)
@over_seeds
def test_fully_connected(seed):
    graph, inputs = _fc_case(np.random.default_rng([4, seed]))
    check(graph, inputs, f"FULLY_CONNECTED seed {seed} {graph.tensors[1].shape}")


# ---------------------------------------------------------------------------
# Pooling and MEAN
# ---------------------------------------------------------------------------


def _pool_case(rng, kind):
    n, h, w, c = int(rng.integers(1, 3)), int(rng.integers(1, 12)), int(rng.integers(1, 12)), int(rng.integers(1, 9))
    f_h, f_w = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    s_h, s_w = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    padding = "SAME" if rng.random() < 0.5 else "VALID"
    if padding == "VALID":
        h, w = max(h, f_h), max(w, f_w)
    out_h = -(-h // s_h) if padding == "SAME" else (h - f_h) // s_h + 1
    out_w = -(-w // s_w) if padding == "SAME" else (w - f_w) // s_w + 1
    scale, zp = _scale(rng), _zp(rng)
    b = GraphBuilder()
    x = b.tensor("x", (n, h, w, c), scale=scale, zero_point=zp)
    y = b.tensor("y", (n, out_h, out_w, c), scale=scale, zero_point=zp)
    b.op(kind, [x], [y], padding=padding, stride_w=s_w, stride_h=s_h, filter_width=f_w, filter_height=f_h,
         fused_activation_function=str(rng.choice(ACTIVATIONS)))
    b.inputs, b.outputs = [x], [y]
    return b.build(), [_s8(rng, (n, h, w, c))]


@pytest.mark.parametrize("kind", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
@pytest.mark.parametrize("seed", SEEDS)
@over_seeds
def test_pool(kind, seed):
    graph, inputs = _pool_case(np.random.default_rng([5, seed, kind == "MAX_POOL_2D"]), kind)
    check(graph, inputs, f"{kind} seed {seed} {graph.operators[0].options}")


def _mean_case(rng):
    nd = int(rng.integers(1, 5))
    shape = tuple(int(rng.integers(1, 9)) for _ in range(nd))
    if nd == 4 and rng.random() < 0.5:
        axes = [1, 2]  # global average pool
    else:
        count = int(rng.integers(1, nd + 1))
        axes = [int(a) for a in rng.choice(nd, size=count, replace=False)]
        axes = [a - nd if rng.random() < 0.3 else a for a in axes]
    keep = bool(rng.random() < 0.5)
    resolved = sorted({a % nd for a in axes})
    out_shape = tuple(1 if i in resolved else d for i, d in enumerate(shape)) if keep else \
        tuple(d for i, d in enumerate(shape) if i not in resolved)
    b = GraphBuilder()
    x = b.tensor("x", shape, scale=_scale(rng), zero_point=_zp(rng))
    ax = b.tensor("axis", (len(axes),), np.int32, data=np.array(axes, np.int32))
    y = b.tensor("y", out_shape, scale=_scale(rng), zero_point=_zp(rng))
    b.op("MEAN", [x, ax], [y], keep_dims=keep)
    b.inputs, b.outputs = [x], [y]
    return b.build(), [_s8(rng, shape)]


@pytest.mark.parametrize("seed", SEEDS)
@over_seeds
def test_mean(seed):
    graph, inputs = _mean_case(np.random.default_rng([6, seed]))
    check(graph, inputs, f"MEAN seed {seed} {graph.tensors[0].shape} axes {graph.tensors[1].data}")


# ---------------------------------------------------------------------------
# ADD / MUL with broadcasting
# ---------------------------------------------------------------------------


def _broadcast_shapes(rng):
    nd = int(rng.integers(1, 5))
    out = [int(rng.integers(1, 7)) for _ in range(nd)]
    a = [d if rng.random() < 0.7 else 1 for d in out]
    b = [d if rng.random() < 0.7 else 1 for d in out]
    if rng.random() < 0.3:
        b = b[int(rng.integers(0, nd)):]  # fewer axes
    return tuple(a), tuple(b), tuple(np.broadcast_shapes(tuple(a), tuple(b)))


def _binary_case(rng, kind):
    sa, sb, so = _broadcast_shapes(rng) if rng.random() < 0.6 else ((6, 5),) * 3
    b = GraphBuilder()
    x1 = b.tensor("a", sa, scale=_scale(rng, -7, -3), zero_point=_zp(rng))
    const = rng.random() < 0.2
    x2 = b.tensor("b", sb, scale=_scale(rng, -7, -3), zero_point=_zp(rng),
                  data=_s8(rng, sb) if const else None)
    y = b.tensor("y", so, scale=_scale(rng, -7, -2), zero_point=_zp(rng))
    b.op(kind, [x1, x2], [y], fused_activation_function=str(rng.choice(ACTIVATIONS)))
    b.inputs = [x1] if const else [x1, x2]
    b.outputs = [y]
    inputs = [_s8(rng, sa)] if const else [_s8(rng, sa), _s8(rng, sb)]
    return b.build(), inputs


@pytest.mark.parametrize("kind", ["ADD", "MUL"])
@pytest.mark.parametrize("seed", SEEDS)
@over_seeds
def test_add_mul(kind, seed):
    graph, inputs = _binary_case(np.random.default_rng([7, seed, kind == "MUL"]), kind)
    check(graph, inputs, f"{kind} seed {seed} {[t.shape for t in graph.tensors]}")


# ---------------------------------------------------------------------------
# Softmax, logistic, tanh
# ---------------------------------------------------------------------------


def _softmax_case(rng):
    rows, depth = int(rng.integers(1, 5)), int(rng.integers(1, 40))
    b = GraphBuilder()
    x = b.tensor("x", (rows, depth), scale=_scale(rng, -6, 0), zero_point=_zp(rng))
    y = b.tensor("y", (rows, depth), scale=np.float32(1 / 256), zero_point=-128)
    b.op("SOFTMAX", [x], [y], beta=float(np.float32(2.0 ** rng.uniform(-1, 1))) if rng.random() < 0.5 else 1.0)
    b.inputs, b.outputs = [x], [y]
    return b.build(), [_s8(rng, (rows, depth))]


@pytest.mark.parametrize("seed", SEEDS)
@over_seeds
def test_softmax(seed):
    graph, inputs = _softmax_case(np.random.default_rng([8, seed]))
    check(graph, inputs, f"SOFTMAX seed {seed} scale {graph.tensors[0].quantization.scale}")


@pytest.mark.parametrize("kind", ["LOGISTIC", "TANH"])
@pytest.mark.parametrize("seed", SEEDS)
@over_seeds
def test_logistic_tanh(kind, seed):
    rng = np.random.default_rng([9, seed, kind == "TANH"])
    b = GraphBuilder()
    x = b.tensor("x", (256,), scale=_scale(rng, -8, 0), zero_point=_zp(rng))
    if kind == "LOGISTIC":
        y = b.tensor("y", (256,), scale=np.float32(1 / 256), zero_point=-128)
    else:
        y = b.tensor("y", (256,), scale=np.float32(1 / 128), zero_point=0)
    b.op(kind, [x], [y])
    b.inputs, b.outputs = [x], [y]
    check(b.build(), [np.arange(-128, 128, dtype=np.int8)], f"{kind} seed {seed}")


# ---------------------------------------------------------------------------
# Quantize / dequantize
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@over_seeds
def test_quantize_float_and_requantize(seed):
    rng = np.random.default_rng([10, seed])
    scale, zp = _scale(rng, -8, 0), _zp(rng)
    b = GraphBuilder()
    x = b.tensor("x", (300,), np.float32)
    y = b.tensor("y", (300,), scale=scale, zero_point=zp)
    b.op("QUANTIZE", [x], [y])
    b.inputs, b.outputs = [x], [y]
    values = (rng.standard_normal(300) * 200 * scale).astype(np.float32)
    values[:8] = np.array([0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.0, -0.0], np.float32) * scale  # ties
    check(b.build(), [values], f"QUANTIZE float32->int8 seed {seed}")

    b = GraphBuilder()
    x = b.tensor("x", (256,), scale=_scale(rng, -8, 0), zero_point=_zp(rng))
    y = b.tensor("y", (256,), scale=_scale(rng, -8, 0), zero_point=_zp(rng))
    b.op("QUANTIZE", [x], [y])
    b.inputs, b.outputs = [x], [y]
    check(b.build(), [np.arange(-128, 128, dtype=np.int8)], f"QUANTIZE int8->int8 seed {seed}")


@pytest.mark.parametrize("seed", SEEDS)
@over_seeds
def test_dequantize(seed):
    rng = np.random.default_rng([11, seed])
    b = GraphBuilder()
    x = b.tensor("x", (256,), scale=_scale(rng, -8, 2), zero_point=_zp(rng))
    y = b.tensor("y", (256,), np.float32)
    b.op("DEQUANTIZE", [x], [y])
    b.inputs, b.outputs = [x], [y]
    check(b.build(), [np.arange(-128, 128, dtype=np.int8)], f"DEQUANTIZE seed {seed}")


# ---------------------------------------------------------------------------
# Data movement: CONCATENATION, PAD, RESHAPE, SQUEEZE, TRANSPOSE
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@over_seeds
def test_concatenation(seed):
    rng = np.random.default_rng([12, seed])
    nd = int(rng.integers(1, 5))
    base = [int(rng.integers(1, 6)) for _ in range(nd)]
    axis = int(rng.integers(0, nd))
    count = int(rng.integers(1, 5))
    scale, zp = _scale(rng), _zp(rng)
    b = GraphBuilder()
    ins, arrays = [], []
    for i in range(count):
        shape = list(base)
        shape[axis] = int(rng.integers(1, 5))
        ins.append(b.tensor(f"x{i}", shape, scale=scale, zero_point=zp))
        arrays.append(_s8(rng, shape))
    out_shape = list(base)
    out_shape[axis] = sum(a.shape[axis] for a in arrays)
    y = b.tensor("y", out_shape, scale=scale, zero_point=zp)
    b.op("CONCATENATION", ins, [y], axis=axis - nd if rng.random() < 0.3 else axis,
         fused_activation_function="NONE")
    b.inputs, b.outputs = ins, [y]
    check(b.build(), arrays, f"CONCATENATION seed {seed} axis {axis}")


@pytest.mark.parametrize("seed", SEEDS)
@over_seeds
def test_pad(seed):
    rng = np.random.default_rng([13, seed])
    nd = int(rng.integers(1, 5))
    shape = [int(rng.integers(1, 6)) for _ in range(nd)]
    pads = rng.integers(0, 3, size=(nd, 2)).astype(np.int32)
    out_shape = [d + int(p[0]) + int(p[1]) for d, p in zip(shape, pads)]
    scale, zp = _scale(rng), _zp(rng)
    b = GraphBuilder()
    x = b.tensor("x", shape, scale=scale, zero_point=zp)
    p = b.tensor("paddings", (nd, 2), np.int32, data=pads)
    y = b.tensor("y", out_shape, scale=scale, zero_point=zp)
    b.op("PAD", [x, p], [y])
    b.inputs, b.outputs = [x], [y]
    check(b.build(), [_s8(rng, shape)], f"PAD seed {seed} {pads.tolist()}")


@pytest.mark.parametrize("seed", SEEDS)
@over_seeds
def test_reshape_squeeze_transpose(seed):
    rng = np.random.default_rng([14, seed])
    nd = int(rng.integers(2, 6))
    shape = [int(rng.integers(1, 5)) for _ in range(nd)]
    scale, zp = _scale(rng), _zp(rng)
    perm = [int(v) for v in rng.permutation(nd)]
    b = GraphBuilder()
    x = b.tensor("x", shape, scale=scale, zero_point=zp)
    perm_t = b.tensor("perm", (nd,), np.int32, data=np.array(perm, np.int32))
    t_shape = [shape[i] for i in perm]
    t = b.tensor("t", t_shape, scale=scale, zero_point=zp)
    b.op("TRANSPOSE", [x, perm_t], [t])
    flat = int(np.prod(shape))
    new_shape = (1, flat, 1)
    shape_t = b.tensor("shape", (3,), np.int32, data=np.array(new_shape, np.int32))
    r = b.tensor("r", new_shape, scale=scale, zero_point=zp)
    b.op("RESHAPE", [t, shape_t], [r], new_shape=new_shape)
    s = b.tensor("s", (flat,), scale=scale, zero_point=zp)
    b.op("SQUEEZE", [r], [s], squeeze_dims=(0, 2))
    b.inputs, b.outputs = [x], [s, t]
    check(b.build(), [_s8(rng, shape)], f"TRANSPOSE/RESHAPE/SQUEEZE seed {seed} perm {perm}")


# ---------------------------------------------------------------------------
# int16 at the edges: QUANTIZE / DEQUANTIZE / SOFTMAX int16 output / MEAN int16
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [*range(0, CASES, 5), SEEDS[-1]])
@over_seeds
def test_int16_edges(seed):
    rng = np.random.default_rng([15, seed])
    b = GraphBuilder()
    x = b.tensor("x", (200,), np.float32)
    y = b.tensor("y", (200,), np.int16, scale=np.float32(2.0 ** rng.uniform(-14, -6)), zero_point=0)
    b.op("QUANTIZE", [x], [y])
    b.inputs, b.outputs = [x], [y]
    values = (rng.standard_normal(200) * 3e4 * float(b.tensors[y].quantization.scale[0])).astype(np.float32)
    check(b.build(), [values], f"QUANTIZE float32->int16 seed {seed}")

    b = GraphBuilder()
    x = b.tensor("x", (300,), np.int16, scale=np.float32(2.0 ** rng.uniform(-14, -6)), zero_point=0)
    y = b.tensor("y", (300,), scale=_scale(rng, -8, 0), zero_point=_zp(rng))
    z = b.tensor("z", (300,), np.float32)
    b.op("QUANTIZE", [x], [y])
    b.op("DEQUANTIZE", [x], [z])
    b.inputs, b.outputs = [x], [y, z]
    check(b.build(), [rng.integers(-32768, 32768, 300).astype(np.int16)], f"int16 -> int8 / float32 seed {seed}")

    b = GraphBuilder()
    x = b.tensor("x", (3, 17), scale=_scale(rng, -6, 0), zero_point=_zp(rng))
    y = b.tensor("y", (3, 17), np.int16, scale=np.float32(1 / 65536), zero_point=-32768)
    b.op("SOFTMAX", [x], [y], beta=1.0)
    b.inputs, b.outputs = [x], [y]
    check(b.build(), [_s8(rng, (3, 17))], f"SOFTMAX int8->int16 seed {seed}")

    b = GraphBuilder()
    x = b.tensor("x", (1, 5, 6, 3), np.int16, scale=np.float32(2.0 ** -10), zero_point=0)
    ax = b.tensor("axis", (2,), np.int32, data=np.array([1, 2], np.int32))
    y = b.tensor("y", (1, 1, 1, 3), np.int16, scale=np.float32(2.0 ** rng.uniform(-12, -9)), zero_point=0)
    b.op("MEAN", [x, ax], [y], keep_dims=True)
    b.inputs, b.outputs = [x], [y]
    check(b.build(), [rng.integers(-32768, 32768, (1, 5, 6, 3)).astype(np.int16)], f"MEAN int16 seed {seed}")
