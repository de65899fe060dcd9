"""``sed-export``: everything firmware needs to run what the runtime runs.

With a frontend spec: the C header of :mod:`sed_runtime.export.c_header` and
``frontend.json``.  With a model (which carries its metadata):

* ``model.tflite`` -- the int8 graph as TFLM loads it, with the metadata
  embedded.  Checked twice before anything is written: run in the
  ``tflite-micro`` interpreter (the firmware's interpreter, compiled for the
  host) on a seeded probe input, and loaded back by the runtime, both must give
  the runtime's output bit for bit;
* the C header gains the model: ``sed_model_tflite[]`` (16-byte aligned) and
  its length, ``SED_ARENA_BYTES`` (the runtime planner's activation arena; a
  TFLM arena also holds TFLM's own bookkeeping, so leave headroom),
  ``SED_WINDOW_FRAMES`` / ``SED_STRIDE_FRAMES``, input and output
  quantization, the labels, and the decision constants in inference steps and
  in frames (one step = ``SED_STRIDE_FRAMES`` frames), with the thresholds
  also as int8 output values;
* ``frontend.json``: the model's frontend spec with the int8 input
  quantization filled in (what the detector runs), for ``sed-verify
  --frontend``;
* ``SED_TRACE_IDENTITY`` names the model too, so ``sed-verify --model``
  refuses a trace from firmware built for another model.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from sed_runtime.errors import ConfigError, ModelError, SedError
from sed_runtime.export.c_header import HEADER_NAME, CHeader, write_frontend_export

__all__ = ["export_firmware", "check_with_tflm", "PROBE_SEED"]

PROBE_SEED = 20240601


def _probe_input(info) -> np.ndarray:
    rng = np.random.default_rng(PROBE_SEED)
    lo, hi = np.iinfo(info.dtype).min, np.iinfo(info.dtype).max
    return rng.integers(lo, hi + 1, size=tuple(info.shape)).astype(info.dtype)


def check_with_tflm(tflite: bytes, probe: np.ndarray, expected: np.ndarray, arena_bytes: int) -> None:
    """Run ``tflite`` in tflite-micro on ``probe``; raise :class:`ModelError` unless it gives ``expected``."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as exc:
        raise SedError("checking the export needs the tflite-micro package (pip install tflite-micro, or "
                       "pip install -e '.[test]'); pass --no-check to export unchecked") from exc
    arena = max(4 * arena_bytes + 64 * 1024, 256 * 1024)
    try:
        interpreter = runtime.Interpreter.from_bytes(tflite, arena_size=arena)
        interpreter.set_input(probe, 0)
        interpreter.invoke()
        got = np.array(interpreter.get_output(0))
    except Exception as exc:  # the TFLM bindings raise RuntimeError and friends with TFLM's own message
        raise ModelError(f"tflite-micro cannot run the exported model: {exc}") from exc
    if got.shape != expected.shape or not np.array_equal(got, expected):
        differ = int(np.count_nonzero(got.reshape(-1) != expected.reshape(-1))) if got.size == expected.size else -1
        raise ModelError(f"the exported .tflite runs differently in tflite-micro than in the runtime on the probe "
                         f"input: {differ} of {expected.size} output values differ (shapes {got.shape} / "
                         f"{expected.shape}); not exporting")


def _add_model(header: CHeader, model, detector, tflite: bytes) -> None:
    labels = detector.labels
    in_info, out_info = model.inputs[0], model.outputs[0]
    header.section("model: int8 TFLite flatbuffer for TFLM")
    header.define("SED_MODEL_TFLITE_LEN", len(tflite), "bytes")
    header.define("SED_ARENA_BYTES", int(model.arena_bytes),
                  "activation arena the runtime plans; TFLM adds its own bookkeeping on top")
    header.define("SED_WINDOW_FRAMES", detector.window_frames, "feature frames per model input")
    header.define("SED_STRIDE_FRAMES", detector.stride_frames, "frames between two inferences")
    header.define("SED_INPUT_ZERO_POINT", int(in_info.zero_point) if in_info.zero_point is not None else 0)
    header.define("SED_OUTPUT_ZERO_POINT", int(out_info.zero_point) if out_info.zero_point is not None else 0)
    header.define("SED_OUTPUT_SCALE_Q31", _scale_q31(out_info.scale), "output scale * 2^31 (score = scale * (q - zp))")
    header.define("SED_N_LABELS", len(labels))
    header.string_array("sed_labels", labels, "SED_N_LABELS", "one label per model output value")

    r = detector.decision.resolved
    header.section(f"decision: one step = SED_STRIDE_FRAMES frames = {r.step_ms:g} ms")
    header.define("SED_DECISION_SMOOTHING", ("none", "mean", "median", "ema")[r.smoothing_code],
                  "none, mean, median or ema")
    header.define("SED_SMOOTHING_STEPS", int(r.smoothing_steps))
    header.define("SED_MIN_DURATION_STEPS", int(r.min_steps))
    header.define("SED_MERGE_GAP_STEPS", int(r.merge_steps))
    header.define("SED_REFRACTORY_STEPS", int(r.refractory_steps))
    header.define("SED_VOTE_K", int(r.vote_k), "0: no k-of-n voting")
    header.define("SED_VOTE_N", int(r.vote_n))
    for name, steps in (("SMOOTHING", r.smoothing_steps), ("MIN_DURATION", r.min_steps),
                        ("MERGE_GAP", r.merge_steps), ("REFRACTORY", r.refractory_steps)):
        header.define(f"SED_{name}_FRAMES", int(steps) * detector.stride_frames)
    scale = float(np.asarray(out_info.scale).reshape(-1)[0]) if out_info.scale is not None else 1.0
    zp = int(out_info.zero_point) if out_info.zero_point is not None else 0
    on_q = [_threshold_q(v, scale, zp) for v in np.asarray(r.on, float)]
    off_q = [_threshold_q(v, scale, zp) for v in np.asarray(r.off, float)]
    header.array("int16_t", "sed_on_threshold_q", on_q, "SED_N_LABELS",
                 "an event may start when the int8 score q >= this (score >= on_threshold)")
    header.array("int16_t", "sed_off_threshold_q", off_q, "SED_N_LABELS",
                 "an event ends when the int8 score q < this (score < off_threshold)")
    header.array("uint8_t", "sed_label_enabled", np.asarray(r.enabled, np.uint8), "SED_N_LABELS",
                 "0: the label never makes events")
    header.array("uint8_t", "sed_model_tflite", np.frombuffer(tflite, np.uint8), "SED_MODEL_TFLITE_LEN",
                 "the model (.tflite), as written beside this header", align=16)


def _scale_q31(scale) -> int:
    if scale is None:
        return 0
    value = float(np.asarray(scale).reshape(-1)[0])
    return int(min(round(value * 2**31), 2**31 - 1))


def _threshold_q(threshold: float, scale: float, zero_point: int) -> int:
    """Smallest int8 q with ``scale * (q - zp) >= threshold`` (so ``score >= t`` iff ``q >= this``)."""
    q = math.ceil(zero_point + threshold / scale - 1e-9)
    while q - 1 >= -129 and scale * (q - 1 - zero_point) >= threshold:
        q -= 1
    while scale * (q - zero_point) < threshold and q <= 128:
        q += 1
    return max(-128, min(128, q))


def export_firmware(out_dir, *, model_path=None, frontend_path=None, header_name: str = HEADER_NAME,
                    check: bool = True) -> dict[str, Path]:
    """Write the firmware export into ``out_dir``; return ``{kind: path}``.

    Exactly one of ``model_path`` and ``frontend_path`` is given.
    """
    from sed_runtime.frontend.spec import FrontendSpec, load_spec
    from sed_runtime.io.trace import frontend_identity

    if (model_path is None) == (frontend_path is None):
        raise ConfigError("export needs a model or a frontend spec (exactly one)")
    if frontend_path is not None:
        return write_frontend_export(load_spec(frontend_path), out_dir, header_name=header_name)

    from sed_runtime import load_model
    from sed_runtime.detector import Detector
    from sed_runtime.model.export_tflite import export_tflite
    from sed_runtime.verify import model_digest

    model = load_model(model_path)
    detector = Detector(model)  # validates the metadata against the graph; fills in the input quantization
    spec = detector.spec
    metadata = dict(model.metadata)
    tflite = export_tflite(model.graph, metadata={"sed_runtime": json.dumps(metadata, sort_keys=True)})
    probe = _probe_input(model.inputs[0])
    expected = np.array(model.invoke(probe))
    back = load_model(tflite)
    if not np.array_equal(np.array(back.invoke(probe)), expected):
        raise ModelError("the exported .tflite, loaded back by the runtime, gives other outputs on the probe input")
    if model_digest(back.graph) != model_digest(model.graph):
        raise ModelError("the exported .tflite does not import to the same graph")
    if check:
        check_with_tflm(tflite, probe, expected, model.arena_bytes)

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SedError(f"cannot create export directory {str(out)!r}: {exc.strerror or exc}") from exc
    identity = dict(frontend_identity(spec))
    identity["model_sha256"] = model_digest(model.graph)

    def extra(header: CHeader) -> None:
        _add_model(header, model, detector, tflite)

    if isinstance(spec, FrontendSpec):
        paths = write_frontend_export(spec, out, header_name=header_name, identity=identity, extra=extra)
    else:
        header = CHeader("SED_MODEL_H", [
            "Generated by sed-export; do not edit.", "",
            f"Frontend: {spec.family} ({spec.describe() if hasattr(spec, 'describe') else ''}); its tables are not "
            "exported: firmware runs the TFLM signal preprocessor.",
        ])
        header.section("frontend geometry")
        header.define("SED_SAMPLE_RATE_HZ", spec.sample_rate_hz)
        header.define("SED_WINDOW_SAMPLES", spec.window_samples)
        header.define("SED_HOP_SAMPLES", spec.hop_samples)
        header.define("SED_FEATURE_BINS", spec.bins)
        header.define("SED_TRACE_IDENTITY", json.dumps(identity, sort_keys=True, separators=(",", ":")))
        extra(header)
        paths = {"header": out / header_name, "frontend": out / "frontend.json"}
        try:
            paths["header"].write_text(header.render(), encoding="utf-8")
            paths["frontend"].write_text(json.dumps(spec.to_dict(), indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise SedError(f"cannot write the export to {str(out)!r}: {exc.strerror or exc}") from exc
    paths["model"] = out / "model.tflite"
    try:
        paths["model"].write_bytes(tflite)
    except OSError as exc:
        raise SedError(f"cannot write {str(paths['model'])!r}: {exc.strerror or exc}") from exc
    return paths
