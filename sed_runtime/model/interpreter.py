"""Run a prepared int8 graph over one static arena: TFLM's Invoke, without TFLM.

:func:`load_model` reads a model file (``.tflite`` flatbuffer or quantized
``.onnx``), runs every operator's Prepare (:mod:`sed_runtime.model.prepare`),
plans the arena (:mod:`sed_runtime.model.planner`), allocates it once as a
``uint8`` buffer and binds each operator to its kernel with views of that
buffer.  :meth:`Model.invoke` then copies the input in, calls one compiled
kernel per operator and returns the output view; it allocates nothing that
outlives the call.

Example::

    from sed_runtime import load_model
    model = load_model("micro_speech_quantized.tflite")
    scores = model.invoke(features_s8)      # int8 [1, 4], a view: copy it to keep it
    model.arena_bytes, model.output_quantization   # peak activation RAM; real = scale * (q - zero_point)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from sed_runtime.errors import ConfigError, ModelError
from sed_runtime.kernels import tflm_int8 as K
from sed_runtime.model.graph import Graph, Quantization, Tensor
from sed_runtime.model.planner import ArenaPlan, plan_arena
from sed_runtime.model.prepare import ALIASING_OPS, PreparedOp, prepare_graph

__all__ = ["Model", "load_model", "load_graph", "TensorInfo", "IM2COL_LIMIT_BYTES"]

# Host scratch allowed for one convolution's im2col matrix; larger layers use the direct loops.
IM2COL_LIMIT_BYTES = 16 * 1024 * 1024
CONV_STRATEGIES = ("auto", "direct", "im2col", "im2col-int", "gemm-nhwc")


@dataclass(frozen=True)
class TensorInfo:
    """What a caller needs to feed or read a graph input or output."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    quantization: Quantization | None

    @property
    def scale(self) -> float | None:
        return None if self.quantization is None else float(self.quantization.scale[0])

    @property
    def zero_point(self) -> int | None:
        return None if self.quantization is None else int(self.quantization.zero_point[0])


def _info(t: Tensor) -> TensorInfo:
    return TensorInfo(t.name, t.shape, t.dtype, t.quantization)


def _to6(a: np.ndarray) -> np.ndarray:
    """``a`` with leading unit axes, as a 6-D view."""
    if a.ndim > 6:
        raise ModelError(f"tensor of {a.ndim} axes; at most 6 are supported")
    return a[(None,) * (6 - a.ndim)] if a.ndim < 6 else a


def _aliases(graph: Graph) -> dict[int, int]:
    """RESHAPE/SQUEEZE outputs that can share their input's bytes (both activations)."""
    out = {}
    for op in graph.operators:
        if op.kind in ALIASING_OPS:
            src, dst = op.inputs[0], op.outputs[0]
            if not graph.tensors[src].is_constant and dst not in out:
                out[dst] = src
    return out


def _entry_point(fn: Callable, args: tuple) -> Callable:
    """The compiled entry point ``fn`` dispatches these arguments to, or ``fn`` itself (not a Numba dispatcher,
    JIT disabled, or no overload for exactly these types)."""
    overloads = getattr(fn, "overloads", None)
    if not overloads:
        return fn
    try:
        signature = tuple(fn.typeof_pyval(a) for a in args)
    except Exception:  # noqa: BLE001 - an argument Numba cannot type: keep the dispatcher
        return fn
    compiled = overloads.get(signature)
    return compiled.entry_point if compiled is not None else fn


class Model:
    """A loaded int8 model: its graph, its planned arena and its compiled steps.

    Attributes
    ----------
    graph : Graph
        The immutable plan the model was imported into.
    metadata : Mapping
        Model metadata (sample rate, frontend, window and stride, labels,
        decision defaults): the :class:`~sed_runtime.model.metadata.ModelMetadata`
        read by :func:`~sed_runtime.model.metadata.read_metadata`, or an empty
        dict for a model that carries none (the raw flatbuffer entries stay in
        ``graph.metadata``).
    arena : numpy.ndarray
        The one ``uint8`` buffer every activation lives in.
    arena_bytes : int
        Its size: the peak RAM the activations need (see :mod:`sed_runtime.model.planner`).
    single_rounding : bool
        Whether requantization mirrors a ``TFLITE_SINGLE_ROUNDING`` build.
    conv_strategy : str
        How convolutions run; every strategy gives the same integers, the
        choice is speed.  ``"im2col"`` gathers patches channel-major into
        host scratch (not part of the arena: it models no firmware buffer)
        and forms the sums as a matrix product, in float32 (BLAS) when every
        partial sum is provably an exact float32 integer, else in int32
        (``"im2col-int"`` forces int32); ``"gemm-nhwc"`` gathers them
        pixel-major (float32, ungrouped convolutions); ``"direct"`` runs the
        reference loop order, vectorized over channels; ``"auto"`` (default)
        picks per layer (see :func:`_conv_strategy`).  ``strategies`` records
        the choice per operator index.
    """

    def __init__(self, graph: Graph, *, single_rounding: bool = False, metadata: dict | None = None,
                 conv_strategy: str = "auto"):
        if conv_strategy not in CONV_STRATEGIES:
            raise ConfigError(f"conv_strategy={conv_strategy!r}; expected one of {', '.join(CONV_STRATEGIES)}")
        self.graph = graph
        self.conv_strategy = conv_strategy
        self.single_rounding = bool(single_rounding)
        self.metadata = dict(graph.metadata) if metadata is None else metadata
        if not graph.inputs or not graph.outputs:
            raise ModelError(f"the graph has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; "
                             "expected at least one of each")
        for t in graph.inputs:
            if graph.tensors[t].is_constant:
                raise ModelError(f"graph input {graph.tensors[t].name!r} is a constant tensor")
        self.prepared: list[PreparedOp] = prepare_graph(graph, single_rounding=self.single_rounding)
        self.aliases = _aliases(graph)
        self.plan: ArenaPlan = plan_arena(graph, self.aliases)
        self.arena = np.zeros(max(self.plan.size, 1), np.uint8)
        self._views: dict[int, np.ndarray] = {}
        for t in graph.tensors:
            if t.is_constant:
                self._views[t.index] = t.data
            elif t.index in self.plan.offsets:
                off = self.plan.offsets[t.index]
                self._views[t.index] = self.arena[off:off + t.nbytes].view(t.dtype).reshape(t.shape)
            elif t.nbytes == 0:
                self._views[t.index] = np.zeros(t.shape, t.dtype)
        self._scratch: list[np.ndarray] = []
        self.strategies: dict[int, str] = {}
        self._steps: list[tuple[Callable, tuple]] = []
        self._direct = False
        for p in self.prepared:
            self._steps.extend(_BIND[p.kind](self, p))
        self.inputs = tuple(_info(graph.tensors[t]) for t in graph.inputs)
        self.outputs = tuple(_info(graph.tensors[t]) for t in graph.outputs)
        self._input_flat = [self._views[t].reshape(-1) for t in graph.inputs]
        outs = []
        for t in graph.outputs:
            v = self._views[t].view()
            v.setflags(write=False)
            outs.append(v)
        self._outputs = tuple(outs)

    # -- public API ---------------------------------------------------------

    @property
    def arena_bytes(self) -> int:
        return self.plan.size

    @property
    def input_quantization(self) -> Quantization | None:
        """Quantization of the (first) graph input: ``real = scale * (q - zero_point)``."""
        return self.inputs[0].quantization

    @property
    def output_quantization(self) -> Quantization | None:
        """Quantization of the (first) graph output."""
        return self.outputs[0].quantization

    def tensor(self, index: int) -> np.ndarray:
        """The current contents of tensor ``index`` (a view; activations are overwritten as the arena is reused)."""
        return self._views[index]

    def invoke(self, *inputs: np.ndarray):
        """Run the model once.

        Each input must have the graph input's dtype (``int8`` for an int8
        model; no implicit conversion) and its number of elements; it is read
        in C order, so features ``[49, 40]`` feed an input ``[1, 1960]``.
        Returns the output as a read-only view of the arena (the same array
        object every call, overwritten by the next ``invoke``: copy it to keep
        it), or a tuple of views for several outputs.
        """
        if len(inputs) != len(self._input_flat):
            raise ConfigError(f"invoke() got {len(inputs)} inputs; the model has {len(self._input_flat)}")
        for x, flat, info in zip(inputs, self._input_flat, self.inputs):
            x = np.asarray(x)
            if x.dtype != info.dtype:
                raise ConfigError(f"input {info.name!r} has dtype {x.dtype}; expected {info.dtype} "
                                  f"(quantize with scale {info.scale} and zero point {info.zero_point})")
            if x.size != flat.size:
                raise ConfigError(f"input {info.name!r} has {x.size} elements (shape {x.shape}); "
                                  f"expected {flat.size} (shape {info.shape})")
            flat[:] = x.reshape(-1)
        for fn, args in self._steps:
            fn(*args)
        if not self._direct:
            # Every step's argument types are fixed at bind time, so after the first call (which compiles or
            # loads each kernel) the steps call the compiled entry points and skip the dispatcher's type lookup.
            self._steps = [(_entry_point(fn, args), args) for fn, args in self._steps]
            self._direct = True
        return self._outputs[0] if len(self._outputs) == 1 else self._outputs

    def summary(self) -> dict[str, Any]:
        """Per-layer and total figures (what ``sed-inspect`` prints), as plain Python values.

        Per layer: op, activation input shapes, output shape, MACs (convolutions,
        fully connected, MUL), weight bytes (constant tensors it reads, as
        stored), activation bytes (its activation inputs and outputs) and the
        bytes of the arena live while it runs.  Totals: ``arena_bytes`` (peak
        RAM of the activations), ``tflm_arena_bytes`` (TFLM's greedy plan of
        the same activations: 16-byte rounding, no aliasing), ``weight_bytes``
        (every constant tensor once: flash) and ``macs`` per inference.
        """
        g = self.graph
        layers = []
        for p in self.prepared:
            acts_in = [i for i in p.inputs if i >= 0 and not g.tensors[i].is_constant]
            consts = {i for i in p.inputs if i >= 0 and g.tensors[i].is_constant}
            act_bytes = sum(g.tensors[i].nbytes for i in acts_in + list(p.outputs))
            layers.append(dict(
                index=p.index, op=p.kind, name=p.name,
                inputs=[list(g.tensors[i].shape) for i in acts_in],
                output=list(g.tensors[p.outputs[0]].shape),
                macs=int(p.macs),
                weight_bytes=int(sum(g.tensors[i].nbytes for i in consts)),
                activation_bytes=int(act_bytes),
                live_bytes=int(self.plan.peak_at(p.index + 1)),
                aliased=bool(p.kind in ALIASING_OPS and self.aliases.get(p.outputs[0]) == p.inputs[0]),
            ))
        from sed_runtime.model.planner import tflm_arena_plan

        def io(info: TensorInfo) -> dict[str, Any]:
            return dict(name=info.name, shape=list(info.shape), dtype=str(info.dtype), scale=info.scale,
                        zero_point=info.zero_point)

        return dict(
            operators=len(self.prepared),
            inputs=[io(i) for i in self.inputs],
            outputs=[io(o) for o in self.outputs],
            layers=layers,
            arena_bytes=int(self.arena_bytes),
            tflm_arena_bytes=int(tflm_arena_plan(g).size),
            weight_bytes=int(sum(t.nbytes for t in g.tensors if t.is_constant)),
            macs=int(sum(p.macs for p in self.prepared)),
            single_rounding=self.single_rounding,
        )

    def __repr__(self) -> str:
        ins = ", ".join(f"{i.name}{list(i.shape)}:{i.dtype}" for i in self.inputs)
        outs = ", ".join(f"{o.name}{list(o.shape)}:{o.dtype}" for o in self.outputs)
        return f"Model({len(self.prepared)} ops, arena {self.arena_bytes} B, in {ins}, out {outs})"

    # -- binding helpers ----------------------------------------------------

    def _view(self, index: int) -> np.ndarray:
        return self._views[index]

    def _new_scratch(self, n: int, dtype) -> np.ndarray:
        buf = np.zeros(max(n, 1), dtype)
        self._scratch.append(buf)
        return buf


# ---------------------------------------------------------------------------
# Binding: one (kernel, arguments) step per operator, all views made here
# ---------------------------------------------------------------------------


def _conv_strategy(m: Model, p: PreparedOp) -> str:
    """Which loop nest runs this convolution: ``direct``, ``im2col`` (int32 or float32) or ``gemm-nhwc`` (float32).

    All give identical integers; the choice is speed and host scratch.
    ``auto``: pixel-major im2col + one float32 product (``gemm-nhwc``, the
    input offset folded into the bias) for an ungrouped convolution when
    float32 is exact, else the direct loops over 8 or more input channels;
    channel-major im2col for few channels or groups (micro_speech's
    1-channel depthwise layer), float32 when exact, else int32; the direct
    loops (vectorized over channels) for depthwise layers over more than 4
    channels and whenever the scratch would exceed :data:`IM2COL_LIMIT_BYTES`.
    """
    q = p.params
    x, out = m._view(p.inputs[0]), m._view(p.outputs[0])
    depth = q["filter_ck"].shape[1]
    pixels = out.shape[0] * out.shape[1] * out.shape[2]
    exact = K.im2col_f32_is_exact(q["filter_ck"], q["input_offset"])
    folded_exact = K.gemm_f32_folded_is_exact(q["filter_ck"])
    if m.conv_strategy == "direct":
        return "direct"
    if m.conv_strategy == "im2col-int":
        return "im2col-int"
    if m.conv_strategy == "im2col":
        return "im2col-f32" if exact else "im2col-int"
    if m.conv_strategy == "gemm-nhwc":
        return "gemm-nhwc" if folded_exact and q["im2col_groups"] == 1 and p.kind == "CONV_2D" else "im2col-int"
    if depth * pixels * 4 + x.size * 4 * q["stride_w"] * 2 > IM2COL_LIMIT_BYTES:
        return "direct"
    in_c = x.shape[3]
    if p.kind == "CONV_2D" and q["im2col_groups"] == 1 and folded_exact:
        return "gemm-nhwc"
    if p.kind == "CONV_2D" and q["im2col_groups"] == 1 and in_c >= 8:
        return "direct"
    if p.kind == "DEPTHWISE_CONV_2D" and in_c > 4:
        return "direct"
    return "im2col-f32" if exact else "im2col-int"


def _bind_convolution(m: Model, p: PreparedOp):
    q = p.params
    x, out = m._view(p.inputs[0]), m._view(p.outputs[0])
    strategy = _conv_strategy(m, p)
    m.strategies[p.index] = strategy
    depth = q["filter_ck"].shape[1]
    out_c = q["filter_ck"].shape[0]
    pixels = out.shape[0] * out.shape[1] * out.shape[2]
    if strategy == "gemm-nhwc":
        pointwise = (q["k_h"], q["k_w"], q["stride_h"], q["stride_w"], q["pad_h"], q["pad_w"]) == (1, 1, 1, 1, 0, 0)
        padded_shape = (1, 1, 1, 1) if pointwise else K.gemm_padded_shape(
            *x.shape, out.shape[1], out.shape[2], q["k_h"], q["k_w"], q["stride_h"], q["stride_w"],
            q["dilation_h"], q["dilation_w"], q["pad_h"], q["pad_w"])
        padded = m._new_scratch(int(np.prod(padded_shape)), np.float32).reshape(padded_shape)
        patch_index = np.zeros(0, np.int32) if pointwise else K.gemm_patch_index(
            padded_shape, out.shape[1], out.shape[2], q["k_h"], q["k_w"], q["stride_h"], q["stride_w"],
            q["dilation_h"], q["dilation_w"])
        padded[...] = -q["input_offset"]  # the input zero point: a tap there adds nothing (the interior is rewritten)
        cols = m._new_scratch(pixels * depth, np.float32).reshape(pixels, depth)
        acc = m._new_scratch(pixels * out_c, np.float32).reshape(pixels, out_c)
        weights = np.ascontiguousarray(q["filter_ck"].T, dtype=np.float32)
        bias = K.gemm_folded_bias(q["filter_ck"], q["bias"], q["input_offset"])
        left, add, neg, total, has_left = K.requantize_lane_params(q["multiplier"], q["shift"], m.single_rounding)
        return [(K.conv_per_channel_gemm_f32, (x, weights, bias, out, padded, patch_index, cols, acc,
                                               q["output_offset"], q["multiplier"], left, add, neg, total, has_left,
                                               q["pad_h"], q["pad_w"], q["act_min"], q["act_max"],
                                               m.single_rounding, K.gemm_sum_may_wrap(q["filter_ck"], bias)))]
    if strategy in ("im2col-f32", "im2col-int"):
        padded_shape = K.im2col_padded_shape(*x.shape, out.shape[1], out.shape[2], q["k_h"], q["k_w"],
                                             q["stride_h"], q["stride_w"], q["dilation_h"], q["dilation_w"],
                                             q["pad_h"], q["pad_w"])
        if strategy == "im2col-f32":
            kernel, dtype, weights, acc_shape = K.conv_per_channel_im2col_f32, np.float32, \
                q["filter_ck"].astype(np.float32), (out_c, pixels)
        else:
            kernel, dtype, weights, acc_shape = K.conv_per_channel_im2col, np.int32, q["filter_ck"], (pixels,)
        padded = m._new_scratch(int(np.prod(padded_shape)), dtype).reshape(padded_shape)
        cols = m._new_scratch(depth * pixels, dtype).reshape(depth, pixels)
        acc = m._new_scratch(int(np.prod(acc_shape)), dtype).reshape(acc_shape)
        channels = m._new_scratch(out_c * pixels, np.int8).reshape(out_c, pixels)
        left, add, neg, total, has_left = K.requantize_lane_params(q["multiplier"], q["shift"], m.single_rounding)
        return [(kernel, (x, weights, q["bias"], out, padded, cols, acc, channels, q["input_offset"],
                          q["output_offset"], q["multiplier"], left, add, neg, total, has_left, q["k_h"], q["k_w"],
                          q["stride_h"], q["stride_w"], q["dilation_h"], q["dilation_w"], q["pad_h"],
                          q["pad_w"], q["act_min"], q["act_max"], q["im2col_groups"], m.single_rounding))]
    if p.kind == "CONV_2D":
        acc = m._new_scratch(q["filter"].shape[3], np.int32)
        return [(K.conv_per_channel, (x, q["filter"], q["bias"], out, acc, q["input_offset"], q["output_offset"],
                                      q["multiplier"], q["shift"], q["stride_h"], q["stride_w"], q["dilation_h"],
                                      q["dilation_w"], q["pad_h"], q["pad_w"], q["act_min"], q["act_max"],
                                      q["groups"], m.single_rounding))]
    if q["depth_multiplier"] == 1 and q["stride_w"] == 1:
        row = out.shape[2] * out.shape[3]

        def tiled(a):
            return np.ascontiguousarray(np.tile(a, (1,) * (a.ndim - 1) + (out.shape[2],)))
        acc = m._new_scratch(row, np.int32)
        left, add, neg, total, has_left = K.requantize_lane_params(q["multiplier"], q["shift"], m.single_rounding)
        return [(K.depthwise_conv_per_channel_rows, (x, tiled(q["filter"]), tiled(q["bias"]), out, acc,
                                                     q["input_offset"], q["output_offset"], tiled(q["multiplier"]),
                                                     tiled(left), tiled(add), tiled(neg), tiled(total), has_left,
                                                     q["stride_h"], q["dilation_h"],
                                                     q["dilation_w"], q["pad_h"], q["pad_w"], q["act_min"],
                                                     q["act_max"], m.single_rounding))]
    acc = m._new_scratch(q["filter"].shape[2], np.int32)
    return [(K.depthwise_conv_per_channel, (x, q["filter"], q["bias"], out, acc, q["input_offset"],
                                            q["output_offset"], q["multiplier"], q["shift"], q["depth_multiplier"],
                                            q["stride_h"], q["stride_w"], q["dilation_h"], q["dilation_w"],
                                            q["pad_h"], q["pad_w"], q["act_min"], q["act_max"], m.single_rounding))]


def _bind_fully_connected(m: Model, p: PreparedOp):
    q = p.params
    x = m._view(p.inputs[0]).reshape(q["batches"], q["depth"])
    out = m._view(p.outputs[0]).reshape(q["batches"], -1)
    return [(K.fully_connected, (x, q["filter"], q["bias"], out, q["input_offset"], q["filter_offset"],
                                 q["output_offset"], q["multiplier"], q["shift"], q["act_min"], q["act_max"],
                                 m.single_rounding))]


def _bind_pool(m: Model, p: PreparedOp):
    q = p.params
    x, out = m._view(p.inputs[0]), m._view(p.outputs[0])
    window = (q["filter_h"], q["filter_w"], q["stride_h"], q["stride_w"], q["pad_h"], q["pad_w"], q["act_min"],
              q["act_max"])
    if p.kind == "AVERAGE_POOL_2D":
        return [(K.average_pool, (x, out, m._new_scratch(x.shape[3], np.int32), *window))]
    return [(K.max_pool, (x, out, *window))]


def _bind_mean(m: Model, p: PreparedOp):
    q = p.params
    sums = m._new_scratch(q["out_size"], np.int32)
    return [(K.quantized_mean, (_to6(m._view(p.inputs[0])), m._view(p.outputs[0]).reshape(-1), sums,
                                q["out_strides"], q["input_zero_point"], q["num_elements"], q["output_zero_point"],
                                q["multiplier"], q["shift"], q["qmin"], q["qmax"], m.single_rounding))]


def _broadcast6(a: np.ndarray, out6: np.ndarray) -> np.ndarray:
    return np.broadcast_to(_to6(a), out6.shape)


def _bind_add(m: Model, p: PreparedOp):
    q = p.params
    out6 = _to6(m._view(p.outputs[0]))
    a6 = _broadcast6(m._view(p.inputs[0]), out6)
    b6 = _broadcast6(m._view(p.inputs[1]), out6)
    return [(K.add_elementwise, (a6, b6, out6, q["input1_offset"], q["input2_offset"], q["left_shift"],
                                 q["input1_multiplier"], q["input1_shift"], q["input2_multiplier"], q["input2_shift"],
                                 q["output_multiplier"], q["output_shift"], q["output_offset"], q["act_min"],
                                 q["act_max"], m.single_rounding))]


def _bind_mul(m: Model, p: PreparedOp):
    q = p.params
    out6 = _to6(m._view(p.outputs[0]))
    a6 = _broadcast6(m._view(p.inputs[0]), out6)
    b6 = _broadcast6(m._view(p.inputs[1]), out6)
    return [(K.mul_elementwise, (a6, b6, out6, q["input1_offset"], q["input2_offset"], q["output_offset"],
                                 q["output_multiplier"], q["output_shift"], q["act_min"], q["act_max"],
                                 m.single_rounding))]


def _bind_softmax(m: Model, p: PreparedOp):
    q = p.params
    x = m._view(p.inputs[0]).reshape(-1, q["depth"])
    out = m._view(p.outputs[0]).reshape(-1, q["depth"])
    return [(K.softmax, (x, out, q["input_multiplier"], q["input_left_shift"], q["diff_min"], q["output_bits"],
                         m.single_rounding))]


def _bind_logistic_tanh(m: Model, p: PreparedOp):
    q = p.params
    fn = K.logistic_s8 if p.kind == "LOGISTIC" else K.tanh_s8
    return [(fn, (m._view(p.inputs[0]).reshape(-1), m._view(p.outputs[0]).reshape(-1), q["input_zero_point"],
                  q["input_range_radius"], q["input_multiplier"], q["input_left_shift"], m.single_rounding))]


def _bind_quantize(m: Model, p: PreparedOp):
    q = p.params
    x = m._view(p.inputs[0]).reshape(-1)
    out = m._view(p.outputs[0]).reshape(-1)
    if x.dtype == np.float32:
        return [(K.affine_quantize, (x, out, q["output_scale"], q["output_zero_point"], q["qmin"], q["qmax"]))]
    return [(K.requantize, (x, out, q["input_zero_point"], q["output_zero_point"], q["multiplier"], q["shift"],
                            q["qmin"], q["qmax"], m.single_rounding))]


def _bind_dequantize(m: Model, p: PreparedOp):
    q = p.params
    return [(K.dequantize, (m._view(p.inputs[0]).reshape(-1), m._view(p.outputs[0]).reshape(-1), q["scale"],
                            q["zero_point"]))]


def _bind_reshape(m: Model, p: PreparedOp):
    if m.aliases.get(p.outputs[0]) == p.inputs[0]:
        return []  # the output is the input's bytes: nothing to do
    src = m._view(p.inputs[0]).reshape(-1)
    dst = m._view(p.outputs[0]).reshape(-1)
    return [(K.copy_nd, (_to6(src), _to6(dst)))]


def _bind_transpose(m: Model, p: PreparedOp):
    src = m._view(p.inputs[0]).transpose(p.params["perm"])
    return [(K.copy_nd, (_to6(src), _to6(m._view(p.outputs[0]))))]


def _bind_concatenation(m: Model, p: PreparedOp):
    axis = p.params["axis"]
    out = m._view(p.outputs[0])
    steps = []
    start = 0
    for t in p.inputs:
        src = m._view(t)
        n = src.shape[axis]
        index = [slice(None)] * out.ndim
        index[axis] = slice(start, start + n)
        steps.append((K.copy_nd, (_to6(src), _to6(out[tuple(index)]))))
        start += n
    return steps


def _bind_pad(m: Model, p: PreparedOp):
    pads = p.params["paddings"]
    out = m._view(p.outputs[0])
    src = m._view(p.inputs[0])
    interior = out[tuple(slice(int(a), int(a) + d) for (a, _), d in zip(pads, src.shape))]
    return [(K.fill_value, (out.reshape(-1), p.params["pad_value"][()])),
            (K.copy_nd, (_to6(src), _to6(interior)))]


_BIND: dict[str, Callable[[Model, PreparedOp], list[tuple[Callable, tuple]]]] = {
    "ADD": _bind_add,
    "AVERAGE_POOL_2D": _bind_pool,
    "CONCATENATION": _bind_concatenation,
    "CONV_2D": _bind_convolution,
    "DEPTHWISE_CONV_2D": _bind_convolution,
    "DEQUANTIZE": _bind_dequantize,
    "FULLY_CONNECTED": _bind_fully_connected,
    "LOGISTIC": _bind_logistic_tanh,
    "MAX_POOL_2D": _bind_pool,
    "MEAN": _bind_mean,
    "MUL": _bind_mul,
    "PAD": _bind_pad,
    "QUANTIZE": _bind_quantize,
    "RESHAPE": _bind_reshape,
    "SOFTMAX": _bind_softmax,
    "SQUEEZE": _bind_reshape,
    "TANH": _bind_logistic_tanh,
    "TRANSPOSE": _bind_transpose,
}


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def load_graph(path: str | Path | bytes) -> Graph:
    """Import a model file into a Graph, choosing the importer by content (then suffix).

    TFLite flatbuffers are recognised by their ``TFL3`` identifier; ``.onnx``
    files go to ``sed_runtime.model.onnx_import.import_onnx``.
    """
    from sed_runtime.model.tflite_import import import_tflite, is_tflite

    if isinstance(path, (bytes, bytearray, memoryview)):
        data = bytes(path)
        if is_tflite(data):
            return import_tflite(data)
        raise ModelError("model bytes are not a TFLite flatbuffer (no 'TFL3' identifier); pass ONNX models by path")
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise ModelError(f"cannot read model {str(path)!r}: {exc.strerror or exc}") from exc
    if is_tflite(head):
        return import_tflite(path)
    if path.suffix.lower() == ".onnx":
        try:
            from sed_runtime.model.onnx_import import import_onnx
        except ImportError as exc:
            raise ModelError(f"cannot load {str(path)!r}: the ONNX importer is not available ({exc})") from exc
        return import_onnx(path)
    if path.suffix.lower() == ".tflite":
        raise ModelError(f"{str(path)!r} is not a TFLite flatbuffer (bytes 4..8 are {head[4:8]!r}, expected b'TFL3')")
    raise ModelError(f"{str(path)!r}: unknown model format; expected a .tflite flatbuffer or a .onnx model")


def _model_metadata(graph: Graph, path) -> Any:
    """Metadata hook: :func:`sed_runtime.model.metadata.read_metadata` when that module exists.

    A ``.tflite`` without embedded metadata but with a sidecar ``<model>.json``
    is read through its path; otherwise the imported graph is used (no second
    import).
    """
    try:
        from sed_runtime.model import metadata as metadata_module
    except ImportError:
        return dict(graph.metadata)
    key = getattr(metadata_module, "METADATA_KEY", None)
    sidecar = getattr(metadata_module, "sidecar_path", None)
    if (isinstance(path, (str, Path)) and key is not None and key not in graph.metadata and sidecar is not None
            and Path(path).suffix.lower() != ".onnx" and sidecar(path).is_file()):
        return metadata_module.read_metadata(path, required=False)
    return metadata_module.read_metadata(graph)


def load_model(path: str | Path | bytes, single_rounding: bool = False) -> Model:
    """Load a ``.tflite`` (int8 TFLite flatbuffer) or ``.onnx`` (quantized QDQ) model, ready to invoke.

    ``single_rounding=True`` mirrors firmware built with
    ``TFLITE_SINGLE_ROUNDING`` (CMSIS-NN: ``CMSIS_NN_USE_SINGLE_ROUNDING``);
    the default is TFLM's double rounding.  All validation happens here:
    unsupported operators raise
    :class:`~sed_runtime.errors.UnsupportedOperatorError`, inconsistent models
    :class:`~sed_runtime.errors.ModelError`.
    """
    graph = load_graph(path)
    return Model(graph, single_rounding=single_rounding, metadata=_model_metadata(graph, path))
