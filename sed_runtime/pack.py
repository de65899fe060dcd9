"""``sed-pack``: a float ONNX model (features in, scores out) -> a self-describing int8 QDQ ONNX model.

What goes in: the float model, whose input is ``window_frames`` frames of the
frontend's features in natural-log units (q8.7 / 128, what
:func:`sed_runtime.frontend.compute_features` gives divided by 128, in C
order: ``[1, 1, frames, bins]`` or any shape with that many values) and whose
output is one score per label; the frontend spec; the labels; the window and
stride in frames; default decision parameters; calibration audio.

What happens:

1. the calibration audio goes through OUR integer frontend (any file rate is
   resampled to the spec's, as ``sed-detect`` reads it) and is cut into model
   windows every ``stride_frames`` frames;
2. ``onnxruntime.quantization.quantize_static`` quantizes the model to QDQ:
   int8 weights (symmetric, per output channel unless ``per_channel=False``),
   int8 activations calibrated on those windows (MinMax unless told otherwise);
3. the metadata (:class:`sed_runtime.model.metadata.ModelMetadata`, with the
   frontend's int8 ``quantization`` set to the quantized model's input
   quantization) is stamped into ``metadata_props`` and checked against the
   graph;
4. verification through the engine: the packed file is loaded with
   :func:`sed_runtime.load_model`, the verification audio (default: the
   calibration audio) is turned into int8 features by the frontend's integer
   requantization, every window is run by the int8 interpreter, and its
   dequantized scores are compared with the float model's scores (onnxruntime,
   float) on the same q8.7 features.  The report gives the float-to-int8 drift
   (max and mean absolute difference per label, and how many windows cross the
   on threshold differently) and checks that :class:`sed_runtime.Detector`
   accepts the model.

API::

    from sed_runtime.pack import pack
    report = pack("net.onnx", "net_int8.onnx", frontend=spec, labels=["alarm"], window_frames=61,
                  stride_frames=4, decision={"on_threshold": 0.6}, calibration=["a.wav", "b.flac"])
    summary = report.format()               # drift table: float vs int8 scores per window
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sed_runtime.errors import ConfigError, ModelError

__all__ = ["pack", "PackReport", "LabelDrift", "feature_windows", "read_audio"]

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")


@dataclass(frozen=True)
class LabelDrift:
    """Float-to-int8 score differences of one label over the verification windows."""

    label: str
    max_abs: float
    mean_abs: float
    flips: int  # windows where float and int8 scores fall on different sides of the on threshold


@dataclass(frozen=True)
class PackReport:
    """What :func:`pack` wrote and how far the int8 scores are from the float scores."""

    out_path: str
    windows: int  # verification windows compared
    calibration_windows: int
    on_threshold: float
    drift: tuple[LabelDrift, ...]
    arena_bytes: int
    weight_bytes: int
    macs: int
    input_scale: float
    input_zero_point: int
    extra: dict = field(default_factory=dict)

    @property
    def max_abs(self) -> float:
        return max((d.max_abs for d in self.drift), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["drift"] = [asdict(d) for d in self.drift]
        return out

    def format(self) -> str:
        lines = [f"packed {self.out_path}: arena {self.arena_bytes:,} B, weights {self.weight_bytes:,} B, "
                 f"{self.macs:,} MACs per inference; input scale {self.input_scale:.6g}, zero point "
                 f"{self.input_zero_point}",
                 f"calibrated on {self.calibration_windows} windows; float vs int8 (this runtime's engine) on "
                 f"{self.windows} windows:"]
        for d in self.drift:
            lines.append(f"  {d.label}: max |drift| {d.max_abs:.4f}, mean {d.mean_abs:.4f}, "
                         f"{d.flips} window(s) cross the on threshold {self.on_threshold:g} differently")
        return "\n".join(lines)


# ---------------------------------------------------------------------------
# audio and features
# ---------------------------------------------------------------------------

def read_audio(path: str | Path, sample_rate_hz: int) -> np.ndarray:
    """A recording as int16 mono at ``sample_rate_hz`` (channels mixed, resampled), as ``sed-detect`` reads it."""
    from sed_runtime.io.sources import FileSource

    parts = []
    with FileSource(path, sample_rate_hz, channel="mix", chunk_samples=1 << 16) as source:
        for chunk in source.chunks():
            parts.append(np.array(chunk, dtype=np.int16, copy=True))
    return np.concatenate(parts) if parts else np.zeros(0, np.int16)


def feature_windows(frames: np.ndarray, window_frames: int, stride_frames: int) -> np.ndarray:
    """Windows ``[n, window_frames, bins]`` of ``frames`` starting every ``stride_frames`` frames (a new array).

    Window ``k`` covers frames ``[k * stride, k * stride + window_frames)``:
    the windows :class:`sed_runtime.Detector` feeds its model.
    """
    n = 0 if len(frames) < window_frames else 1 + (len(frames) - window_frames) // stride_frames
    if n == 0:
        return np.zeros((0, window_frames, frames.shape[1]), frames.dtype)
    idx = np.arange(n)[:, None] * stride_frames + np.arange(window_frames)[None, :]
    return frames[idx]


def _as_audio(item, rate: int) -> np.ndarray:
    if isinstance(item, np.ndarray):
        if item.dtype != np.int16 or item.ndim != 1:
            raise ConfigError(f"calibration arrays must be 1-D int16 at {rate} Hz, got {item.dtype} {item.shape}")
        return item
    return read_audio(item, rate)


def _spec_of(frontend):
    from sed_runtime.frontend import FrontendSpec, load_spec
    from sed_runtime.frontend.spec import spec_from_dict

    if isinstance(frontend, FrontendSpec):
        spec = frontend
    elif isinstance(frontend, Mapping):
        spec = spec_from_dict(dict(frontend))
    else:
        spec = load_spec(frontend)
    if not isinstance(spec, FrontendSpec):
        raise ConfigError(f"sed-pack needs a cmsis-dsp frontend spec (its integer features feed the model); got "
                          f"family {spec.family!r}")
    if spec.tables_path is not None:
        raise ConfigError("sed-pack: a frontend with external tables cannot be embedded in a self-describing "
                          "model; use generated tables")
    return spec


def _windows(spec, audio: Sequence, window_frames: int, stride_frames: int, max_windows: int | None):
    """The q8.7 windows ``[n, frames, bins]`` of the audio and, when ``spec`` has a quantization, the int8 windows
    the frontend's integer requantization makes of them (else ``None``)."""
    from sed_runtime.frontend import CmsisFrontend

    q87, s8 = [], []
    for item in audio:
        frontend = CmsisFrontend(spec).prepare()
        out = frontend.process(_as_audio(item, spec.sample_rate_hz)).copy()
        q87.append(feature_windows(frontend.last_frames_q15.copy(), window_frames, stride_frames))
        if spec.quantization is not None:
            s8.append(feature_windows(out, window_frames, stride_frames))
    empty = np.zeros((0, window_frames, spec.bins), np.int16)
    q = np.concatenate(q87) if q87 else empty
    s = (np.concatenate(s8) if s8 else empty.astype(np.int8)) if spec.quantization is not None else None
    if max_windows is not None and len(q) > max_windows:
        keep = np.linspace(0, len(q) - 1, max_windows).round().astype(np.int64)  # evenly spread, deterministic
        q = q[keep]
        s = None if s is None else s[keep]
    return q, s


# ---------------------------------------------------------------------------
# quantization
# ---------------------------------------------------------------------------

class _Reader:
    def __init__(self, name: str, shape, windows_q87: np.ndarray):
        self._name, self._shape = name, tuple(shape)
        self._it = iter(windows_q87)

    def get_next(self):
        w = next(self._it, None)
        if w is None:
            return None
        return {self._name: (w.astype(np.float32) / np.float32(128)).reshape(self._shape)}


def _io_shape(model, window_frames: int, bins: int, n_labels: int) -> tuple[str, tuple[int, ...]]:
    graph = model.graph
    inits = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ModelError(f"the float model must have one input (features) and one output (scores); it has "
                         f"{len(inputs)} inputs and {len(graph.output)} outputs")
    dims = [d.dim_value if d.dim_value > 0 else 1 for d in inputs[0].type.tensor_type.shape.dim]
    if int(np.prod(dims)) != window_frames * bins:
        raise ModelError(f"the float model's input {inputs[0].name!r} has shape {dims} = {int(np.prod(dims))} values; "
                         f"window_frames={window_frames} x {bins} feature bins = {window_frames * bins}")
    out_dims = [d.dim_value if d.dim_value > 0 else 1 for d in graph.output[0].type.tensor_type.shape.dim]
    if out_dims and int(np.prod(out_dims)) != n_labels:
        raise ModelError(f"the float model's output {graph.output[0].name!r} has shape {out_dims}; expected "
                         f"{n_labels} values, one per label")
    return inputs[0].name, tuple(dims)


def _session(model_bytes: bytes):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def _fix_batch(model) -> None:
    """Pin a symbolic batch dimension to 1 (the engine runs one window at a time)."""
    for vi in list(model.graph.input) + list(model.graph.output):
        for d in vi.type.tensor_type.shape.dim:
            if d.dim_value <= 0:
                d.ClearField("dim_param")
                d.dim_value = 1


def pack(float_model, out_path, *, frontend, labels: Sequence[str], window_frames: int, stride_frames: int,
         decision: Mapping[str, Any] | None = None, calibration: Sequence, verification: Sequence | None = None,
         per_channel: bool = True, calibration_method: str = "minmax", max_calibration_windows: int | None = 2000,
         max_verification_windows: int | None = 4000, description: str | None = None) -> PackReport:
    """Quantize ``float_model`` to int8 QDQ, stamp its metadata, verify it through the engine (module docstring).

    ``frontend``: a :class:`~sed_runtime.frontend.FrontendSpec`, its dict or
    a JSON path (cmsis-dsp family; a ``quantization`` in it is replaced by
    the one calibration finds).  ``calibration`` / ``verification``: audio
    file paths or 1-D int16 arrays at the spec's rate.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from sed_runtime import load_model
    from sed_runtime.frontend import FrontendSpec
    from sed_runtime.model.metadata import ModelMetadata, write_metadata

    if calibration_method not in CALIBRATION_METHODS:
        raise ConfigError(f"calibration_method={calibration_method!r}; expected one of {CALIBRATION_METHODS}")
    spec = _spec_of(frontend)
    labels = list(labels)
    model = float_model if isinstance(float_model, onnx.ModelProto) else onnx.load(str(float_model))
    model = onnx.ModelProto.FromString(model.SerializeToString())
    _fix_batch(model)
    # the metadata is checked before any work (the graph check comes after quantization)
    base = ModelMetadata(frontend={**spec.to_dict(), "quantization": None}, window_frames=window_frames,
                         stride_frames=stride_frames, labels=tuple(labels), decision=dict(decision or {}),
                         description=description)
    on_threshold = float(base.decision_config.on_threshold)
    in_name, in_shape = _io_shape(model, base.window_frames, spec.bins, len(labels))

    plain = FrontendSpec.from_dict({**spec.to_dict(), "quantization": None})
    calib, _ = _windows(plain, list(calibration), base.window_frames, base.stride_frames, max_calibration_windows)
    if len(calib) == 0:
        raise ConfigError(f"the calibration audio gives no complete window of {base.window_frames} frames "
                          f"({(base.window_frames - 1) * spec.hop_samples + spec.window_samples} samples at "
                          f"{spec.sample_rate_hz} Hz)")
    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[calibration_method]
    out_path = Path(out_path)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, src)
        logging.disable(logging.WARNING)  # onnxruntime's "consider pre-processing" advice on every call
        try:
            quantize_static(str(src), str(dst), _Reader(in_name, in_shape, calib), quant_format=QuantFormat.QDQ,
                            per_channel=per_channel, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                            calibrate_method=method)
        finally:
            logging.disable(logging.NOTSET)
        qmodel = onnx.load(str(dst))
    scale, zero_point = _input_quantization(qmodel, in_name)
    meta = ModelMetadata.from_dict({**base.to_dict(),
                                    "frontend": {**spec.to_dict(), "quantization": {"scale": scale,
                                                                                    "zero_point": zero_point}}})
    out_path.write_bytes(qmodel.SerializeToString())
    write_metadata(out_path, meta)

    # -- verification through the engine ------------------------------------------------
    engine = load_model(out_path)
    from sed_runtime.detector import Detector

    Detector(engine)  # the detector accepts the packed model as it is
    qspec = FrontendSpec.from_dict(meta.frontend)
    verify, verify_s8 = _windows(qspec, list(calibration if verification is None else verification),
                                 base.window_frames, base.stride_frames,
                                 max_calibration_windows if verification is None else max_verification_windows)
    float_session = _session(model.SerializeToString())
    out_q = engine.output_quantization
    o_scale, o_zp = float(out_q.scale[0]), int(out_q.zero_point[0])
    diffs = np.zeros((len(verify), len(labels)))
    flips = np.zeros(len(labels), np.int64)
    for k, (w, x_s8) in enumerate(zip(verify, verify_s8)):
        ref = float_session.run(None, {in_name: (w.astype(np.float32) / np.float32(128)).reshape(in_shape)})[0]
        ref = np.asarray(ref, np.float64).reshape(-1)
        got = (engine.invoke(x_s8).astype(np.float64).reshape(-1) - o_zp) * o_scale
        diffs[k] = np.abs(got - ref)
        flips += (got >= on_threshold) != (ref >= on_threshold)
    drift = tuple(LabelDrift(label, float(diffs[:, i].max(initial=0.0)), float(diffs[:, i].mean()) if len(diffs) else 0.0,
                             int(flips[i])) for i, label in enumerate(labels))
    summary = engine.summary()
    return PackReport(out_path=str(out_path), windows=len(verify), calibration_windows=len(calib),
                      on_threshold=on_threshold, drift=drift, arena_bytes=int(summary["arena_bytes"]),
                      weight_bytes=int(summary["weight_bytes"]), macs=int(summary["macs"]), input_scale=scale,
                      input_zero_point=zero_point)


def _input_quantization(qmodel, in_name: str) -> tuple[float, int]:
    from onnx import numpy_helper

    init = {t.name: numpy_helper.to_array(t) for t in qmodel.graph.initializer}
    name = in_name
    while True:
        users = [n for n in qmodel.graph.node if name in n.input]
        q = next((n for n in users if n.op_type == "QuantizeLinear"), None)
        if q is not None or len(users) != 1:
            break
        name = users[0].output[0]
    if q is None:
        raise ModelError(f"the quantized model does not quantize its input {in_name!r} (onnxruntime left it float)")
    return float(init[q.input[1]]), int(init[q.input[2]])


def load_json_arg(value: str | None, what: str) -> dict:
    """A JSON object given inline (``{...}``) or as a file path (for the CLI)."""
    if value is None:
        return {}
    text = value if value.lstrip().startswith("{") else None
    if text is None:
        try:
            text = Path(value).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read {what} file {value!r}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{what} {value!r} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{what} must be a JSON object, got {type(data).__name__}")
    return data

