"""The interpreter around the kernels: loading, refusal, input validation, fixed memory, arena size, rounding mode."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from _compare import assert_equal_ints
from conftest import SHARED
from model.tflite_builder import GraphBuilder, ds_cnn_graph, tflm_arena_head, tflm_available, tflm_run, to_tflite, \
    to_tflite_replacing
from sed_runtime import load_model
from sed_runtime.errors import ConfigError, ModelError, UnsupportedOperatorError
from sed_runtime.fixedpoint import multiply_by_quantized_multiplier_single_rounding, quantize_multiplier
from sed_runtime.model.graph import SUPPORTED_OPS
from sed_runtime.model.interpreter import Model, load_graph
from sed_runtime.model.planner import Buffer, greedy_plan, plan_arena, tflm_arena_plan
from sed_runtime.model.tflite_import import import_tflite

MICRO_SPEECH = SHARED / "fixtures" / "micro_speech" / "micro_speech_quantized.tflite"
needs_tflm = pytest.mark.skipif(not tflm_available(), reason="needs tflite-micro")


def _small_fc(units=3, depth=5):
    b = GraphBuilder()
    x = b.tensor("features", (1, depth), scale=0.05, zero_point=-3)
    w = b.tensor("weights", (units, depth), scale=0.01, data=np.arange(units * depth).reshape(units, depth) % 7 - 3)
    y = b.tensor("logits", (1, units), scale=0.02, zero_point=5)
    b.op("FULLY_CONNECTED", [x, w], [y], fused_activation_function="NONE")
    b.inputs, b.outputs = [x], [y]
    return b.build()


def _small_net(rng):
    """Conv -> depthwise -> average pool -> concat with a max pool -> reshape -> FC -> softmax: a planner workout."""
    b = GraphBuilder()
    x = b.tensor("x", (1, 16, 12, 2), scale=0.05, zero_point=-10)
    w1 = b.tensor("w1", (6, 3, 3, 2), scale=np.full(6, 0.01, np.float32), data=rng.integers(-127, 128, (6, 3, 3, 2)))
    b1 = b.tensor("b1", (6,), np.int32, scale=np.full(6, 0.0005, np.float32), data=rng.integers(-500, 500, 6))
    c1 = b.tensor("c1", (1, 8, 6, 6), scale=0.1, zero_point=-128)
    b.op("CONV_2D", [x, w1, b1], [c1], padding="SAME", stride_w=2, stride_h=2, fused_activation_function="RELU")
    w2 = b.tensor("w2", (1, 3, 3, 12), scale=np.full(12, 0.02, np.float32), data=rng.integers(-127, 128, (1, 3, 3, 12)),
                  axis=3)
    c2 = b.tensor("c2", (1, 8, 6, 12), scale=0.2, zero_point=-128)
    b.op("DEPTHWISE_CONV_2D", [c1, w2], [c2], padding="SAME", stride_w=1, stride_h=1, depth_multiplier=2,
         fused_activation_function="RELU6")
    p1 = b.tensor("p1", (1, 4, 3, 12), scale=0.2, zero_point=-128)
    b.op("AVERAGE_POOL_2D", [c2], [p1], padding="VALID", stride_w=2, stride_h=2, filter_width=2, filter_height=2)
    p2 = b.tensor("p2", (1, 4, 3, 12), scale=0.2, zero_point=-128)
    b.op("MAX_POOL_2D", [c2], [p2], padding="VALID", stride_w=2, stride_h=2, filter_width=2, filter_height=2)
    cat = b.tensor("cat", (1, 4, 3, 24), scale=0.2, zero_point=-128)
    b.op("CONCATENATION", [p1, p2], [cat], axis=3)
    shape = b.tensor("shape", (2,), np.int32, data=np.array([1, 288], np.int32))
    flat = b.tensor("flat", (1, 288), scale=0.2, zero_point=-128)
    b.op("RESHAPE", [cat, shape], [flat], new_shape=(1, 288))
    w3 = b.tensor("w3", (5, 288), scale=0.003, data=rng.integers(-127, 128, (5, 288)))
    logits = b.tensor("logits", (1, 5), scale=0.3, zero_point=2)
    b.op("FULLY_CONNECTED", [flat, w3], [logits])
    probs = b.tensor("probs", (1, 5), scale=1 / 256, zero_point=-128)
    b.op("SOFTMAX", [logits], [probs], beta=1.0)
    b.inputs, b.outputs = [x], [probs]
    return b.build()


# ---------------------------------------------------------------------------
# Loading and refusal
# ---------------------------------------------------------------------------


@needs_tflm
@pytest.mark.parametrize("kind", ["SUB", "LSTM", "RESIZE_BILINEAR", "HARD_SWISH"])
def test_unsupported_operator_is_refused_at_load(kind):
    data = to_tflite_replacing(_small_fc(), {0: kind})
    with pytest.raises(UnsupportedOperatorError) as info:
        load_model(data)
    message = str(info.value)
    assert f"operator {kind} " in message
    assert "node 'logits (#0)'" in message  # the first output tensor's name and the position
    assert "supported: " + ", ".join(SUPPORTED_OPS) in message


def test_unsupported_operator_in_a_plan_is_refused():
    graph = _small_fc()
    op = graph.operators[0]
    with pytest.raises(UnsupportedOperatorError, match=r"operator GELU \(node 'fc'\).*supported: ADD"):
        type(graph)(tensors=graph.tensors, operators=(type(op)("GELU", "fc", op.inputs, op.outputs),),
                    inputs=graph.inputs, outputs=graph.outputs)


def test_corrupt_and_unknown_files(tmp_path):
    with pytest.raises(ModelError, match="TFL3"):
        load_model(b"\x00" * 64)
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(ModelError, match="not a TFLite flatbuffer"):
        load_model(bad)
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(MICRO_SPEECH.read_bytes()[:600])
    with pytest.raises(ModelError):
        load_model(truncated)
    other = tmp_path / "model.pb"
    other.write_bytes(b"\x08\x01" * 10)
    with pytest.raises(ModelError, match="unknown model format"):
        load_model(other)
    with pytest.raises(ModelError, match="cannot read model"):
        load_model(tmp_path / "missing.tflite")


def test_dispatch_by_content_not_suffix(tmp_path):
    renamed = tmp_path / "micro_speech.bin"
    renamed.write_bytes(MICRO_SPEECH.read_bytes())
    assert load_model(renamed).arena_bytes == load_model(MICRO_SPEECH).arena_bytes


def test_importer_fields_match_the_schema_reader():
    schema = pytest.importorskip("tflite_micro.tensorflow.lite.micro.python.schema_py_generated")
    data = MICRO_SPEECH.read_bytes()
    ref = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    graph = import_tflite(data)
    sg = ref.subgraphs[0]
    assert graph.inputs == tuple(sg.inputs) and graph.outputs == tuple(sg.outputs)
    for ours, t in zip(graph.tensors, sg.tensors):
        assert ours.name == t.name.decode() and ours.shape == tuple(t.shape)
        if t.quantization is not None and t.quantization.scale is not None:
            assert np.array_equal(ours.quantization.scale, t.quantization.scale)
            assert np.array_equal(ours.quantization.zero_point, t.quantization.zeroPoint)
            assert ours.quantization.axis == t.quantization.quantizedDimension
        data_ref = ref.buffers[t.buffer].data
        if data_ref is not None:
            assert ours.data.tobytes() == np.asarray(data_ref, np.uint8).tobytes()
    dw = graph.operators[1]
    assert dw.kind == "DEPTHWISE_CONV_2D" and dw.options["depth_multiplier"] == 8
    assert dw.options["padding"] == "SAME" and dw.options["fused_activation_function"] == "RELU"


# ---------------------------------------------------------------------------
# invoke(): inputs, outputs, no allocation
# ---------------------------------------------------------------------------


def test_invoke_validates_inputs():
    model = load_model(MICRO_SPEECH)
    with pytest.raises(ConfigError, match="dtype int16; expected int8"):
        model.invoke(np.zeros((49, 40), np.int16))
    with pytest.raises(ConfigError, match="1959 elements"):
        model.invoke(np.zeros(1959, np.int8))
    with pytest.raises(ConfigError, match="got 2 inputs"):
        model.invoke(np.zeros(1960, np.int8), np.zeros(1960, np.int8))


def test_output_is_a_read_only_view_reused_by_every_invoke():
    model = load_model(MICRO_SPEECH)
    golden = np.load(SHARED / "fixtures" / "micro_speech" / "golden.npz")
    first = model.invoke(golden["yes_1000ms_features"])
    kept = first.copy()
    second = model.invoke(golden["no_1000ms_features"])
    assert second is first and not first.flags.writeable
    assert np.shares_memory(first, model.arena)
    assert not np.array_equal(kept, second)


def test_no_allocation_growth_over_thousands_of_invokes():
    model = load_model(MICRO_SPEECH)
    x = np.random.default_rng(0).integers(-128, 128, (49, 40)).astype(np.int8)
    for _ in range(50):
        model.invoke(x)
    tracemalloc.start()
    try:
        model.invoke(x)
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(3000):
            model.invoke(x)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before <= 1024, f"traced memory grew by {after - before} bytes over 3000 invokes"


def test_arena_holds_every_activation_and_plan_has_no_live_overlap():
    rng = np.random.default_rng(5)
    model = Model(_small_net(rng))
    plan = model.plan
    assert model.arena.nbytes == plan.size == model.arena_bytes
    for i, (a, oa) in enumerate(zip(plan.buffers, plan.buffer_offsets)):
        assert oa % a.alignment == 0 and oa + a.size <= plan.size
        for b, ob in list(zip(plan.buffers, plan.buffer_offsets))[i + 1:]:
            if a.first <= b.last and b.first <= a.last:
                assert oa + a.size <= ob or ob + b.size <= oa, (a, b)
    for t in model.graph.tensors:
        if not t.is_constant:
            assert np.shares_memory(model.tensor(t.index), model.arena), t.name


# ---------------------------------------------------------------------------
# Arena size against TFLM
# ---------------------------------------------------------------------------


@needs_tflm
def test_micro_speech_arena_not_larger_than_tflm():
    data = MICRO_SPEECH.read_bytes()
    tflm = tflm_arena_head(data)
    graph = import_tflite(data)
    ours = load_model(data).arena_bytes
    # TFLM's non-persistent ("head") section is its activation plan here (no kernel asks for scratch);
    # our replica of its planner must land on the same figure.
    assert tflm_arena_plan(graph).size == tflm["head"]
    assert ours <= tflm["head"], (ours, tflm)
    assert ours == 5960  # input (1960) + depthwise output (4000): the reshape shares the input's bytes


@needs_tflm
@pytest.mark.parametrize("seed", range(4))
def test_small_net_arena_not_larger_than_tflm_and_bit_exact(seed):
    rng = np.random.default_rng([20, seed])
    graph = _small_net(rng)
    data = to_tflite(graph)
    tflm = tflm_arena_head(data)
    model = load_model(data)
    assert tflm_arena_plan(graph).size == tflm["head"]
    assert model.arena_bytes <= tflm["head"], (model.arena_bytes, tflm)
    x = rng.integers(-128, 128, (1, 16, 12, 2)).astype(np.int8)
    assert_equal_ints(model.invoke(x), tflm_run(data, x)[0], f"small net seed {seed}")


@needs_tflm
@pytest.mark.parametrize("strategy", ["auto", "im2col", "im2col-int", "gemm-nhwc", "direct"])
def test_ds_cnn_every_conv_strategy_bit_exact_and_arena_not_larger_than_tflm(strategy):
    rng = np.random.default_rng(31)
    graph = ds_cnn_graph(rng, channels=24, blocks=2)
    data = to_tflite(graph)
    model = Model(load_graph(data), conv_strategy=strategy)
    for trial in range(3):
        x = rng.integers(-128, 128, (1, 49, 10, 1)).astype(np.int8)
        assert_equal_ints(model.invoke(x), tflm_run(data, x)[0], f"DS-CNN {strategy} trial {trial}")
    assert model.arena_bytes <= tflm_arena_head(data)["head"]
    if strategy == "auto":
        assert set(model.strategies.values()) == {"direct", "gemm-nhwc"}


def test_greedy_plan_mirrors_tflm_first_fit():
    # The buffers of TFLM's greedy_memory_planner_test TestGreedyMedium, and the offsets it expects.
    buffers = [Buffer(10, 0, 1, (0,)), Buffer(20, 1, 2, (1,)), Buffer(30, 2, 3, (2,)), Buffer(40, 3, 4, (3,)),
               Buffer(50, 0, 1, (4,))]
    offsets = greedy_plan(buffers)
    assert offsets == [50, 70, 40, 0, 0]
    assert max(o + b.size for o, b in zip(offsets, buffers)) == 90


def test_plan_never_larger_than_tflm_order_on_random_graphs():
    rng = np.random.default_rng(9)
    for trial in range(20):
        b = GraphBuilder()
        prev = b.tensor("x", (1, int(rng.integers(1, 500))), scale=0.1)
        live = [prev]
        b.inputs = [prev]
        for i in range(int(rng.integers(2, 9))):
            src = live[int(rng.integers(0, len(live)))]
            n = b.tensors[src].shape[1]
            out = b.tensor(f"t{i}", (1, n), scale=0.1)
            b.op("QUANTIZE", [src], [out])
            live.append(out)
        b.outputs = [live[-1]]
        graph = b.build()
        assert plan_arena(graph).size <= tflm_arena_plan(graph).size


# ---------------------------------------------------------------------------
# Single rounding: no TFLM build to compare with, so a readable reference
# ---------------------------------------------------------------------------


def _fc_reference(x, w, in_zp, out_zp, multiplier, shift, single_rounding):
    acc = (w.astype(np.int64) @ (x.reshape(-1).astype(np.int64) - in_zp)).tolist()
    out = []
    for a in acc:
        if single_rounding:
            v = int(multiply_by_quantized_multiplier_single_rounding(a, multiplier, shift))
        else:
            from sed_runtime.fixedpoint import multiply_by_quantized_multiplier

            v = int(multiply_by_quantized_multiplier(a, multiplier, shift))
        out.append(min(max(v + out_zp, -128), 127))
    return np.array(out, np.int8)


@pytest.mark.parametrize("single_rounding", [False, True])
def test_fully_connected_rounding_modes_match_reference(single_rounding):
    rng = np.random.default_rng(13)
    differs = 0
    for trial in range(30):
        depth, units = int(rng.integers(1, 40)), int(rng.integers(1, 9))
        in_scale, w_scale, out_scale = (np.float32(2.0 ** rng.uniform(-8, -3)) for _ in range(3))
        if trial % 3 == 0:  # one weight, effective scale 1/2: every odd negative sum is a tie (-0.5 -> -1 or 0)
            depth, in_scale, w_scale, out_scale = 1, np.float32(0.25), np.float32(0.5), np.float32(0.25)
        in_zp, out_zp = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
        w = rng.integers(-127, 128, (units, depth)).astype(np.int8)
        if depth == 1:
            w[:] = 1
        b = GraphBuilder()
        xt = b.tensor("x", (1, depth), scale=in_scale, zero_point=in_zp)
        wt = b.tensor("w", (units, depth), scale=w_scale, data=w)
        yt = b.tensor("y", (1, units), scale=out_scale, zero_point=out_zp)
        b.op("FULLY_CONNECTED", [xt, wt], [yt])
        b.inputs, b.outputs = [xt], [yt]
        x = rng.integers(-128, 128, (1, depth)).astype(np.int8)
        model = Model(b.build(), single_rounding=single_rounding)
        m, s = quantize_multiplier(float(np.float32(in_scale * w_scale)) / float(out_scale),
                                   single_rounding=single_rounding)
        ref = _fc_reference(x, w, in_zp, out_zp, m, s, single_rounding)
        assert_equal_ints(model.invoke(x).reshape(-1), ref, f"FC trial {trial} single_rounding={single_rounding}")
        other = Model(b.build(), single_rounding=not single_rounding).invoke(x).reshape(-1)
        differs += int(np.count_nonzero(other != ref))
    assert differs > 0  # the two builds really differ somewhere (ties between the two roundings)


def test_single_rounding_softmax_uses_the_single_rounding_multiplier_cap():
    from sed_runtime.model.prepare import preprocess_softmax_scaling

    # beta * scale * 2**26 above 2**30 - 1 is capped differently by the two builds.
    m_double, s_double = preprocess_softmax_scaling(1.0, 30.0, 5)
    m_single, s_single = preprocess_softmax_scaling(1.0, 30.0, 5, single_rounding=True)
    assert (m_double, s_double) == quantize_multiplier(min(30.0 * 2**26, 2**31 - 1.0))
    assert (m_single, s_single) == quantize_multiplier(min(30.0 * 2**26, 2**30 - 1.0), single_rounding=True)
    assert (m_double, s_double) != (m_single, s_single)


def test_load_graph_of_bytes_rejects_onnx_bytes():
    with pytest.raises(ModelError, match="pass ONNX models by path"):
        load_graph(b"\x08\x07\x12\x00" * 4)
