"""Model metadata: what a model must carry to run by itself (``sed-listen --model m.onnx``).

A model is self-describing: besides its int8 graph it carries the sample
rate, the feature frontend and its parameters, the input window and stride in
feature frames, the class labels and default decision parameters.  They are
one JSON object stored under the key ``sed_runtime``:

* ONNX: a ``metadata_props`` entry ``sed_runtime``;
* TFLite: a named metadata buffer ``sed_runtime`` in the flatbuffer (the place
  TFLite keeps model metadata; TFLM ignores it), or a sidecar ``<model>.json``
  beside a ``.tflite`` that must stay byte-identical to the firmware's.

JSON form (``schema_version`` 1)::

    {
      "schema_version": 1,
      "sample_rate_hz": 16000,
      "frontend": {"family": "tflm-signal", ...},     # FrontendSpec.to_dict() of either family
      "window_frames": 49,                            # feature frames per model input
      "stride_frames": 5,                             # frames between two inferences
      "labels": ["silence", "unknown", "yes", "no"],  # one per model output value
      "decision": {"on_threshold": 0.6, "off_threshold": 0.4, "smoothing_ms": 300,
                   "min_duration_ms": 100, "merge_gap_ms": 200, "refractory_ms": 0},
      "description": "optional free text"
    }

``frontend`` is validated by :func:`sed_runtime.frontend.spec.spec_from_dict`
and ``decision`` by :class:`sed_runtime.decision.DecisionConfig` when read;
``sample_rate_hz`` must equal the frontend's.  Against the graph:
``window_frames`` x the frontend's feature bins must equal the number of
values of the model's input, ``labels`` must match the number of values of
its output, and a frontend ``quantization`` must equal the input tensor's.

API::

    from sed_runtime.model.metadata import ModelMetadata, read_metadata, write_metadata
    meta = read_metadata("kws.onnx")                  # ModelMetadata; ModelError when absent or inconsistent
    write_metadata("kws.onnx", "meta.json", out_path="kws_stamped.onnx")
    write_metadata("kws.tflite", meta, sidecar=True)  # writes kws.json, leaves kws.tflite untouched

:class:`ModelMetadata` is also a read-only mapping of its JSON fields, which
is what :func:`sed_runtime.load_model` attaches to a model as ``.metadata``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from sed_runtime.errors import ConfigError, ModelError

__all__ = ["METADATA_KEY", "SCHEMA_VERSION", "ModelMetadata", "read_metadata", "write_metadata", "load_metadata_json",
           "sidecar_path"]

METADATA_KEY = "sed_runtime"
SCHEMA_VERSION = 1
_FIELDS = ("schema_version", "sample_rate_hz", "frontend", "window_frames", "stride_frames", "labels", "decision",
           "description")
_REQUIRED = ("frontend", "window_frames", "stride_frames", "labels")


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ModelError(f"metadata {name}={value!r} must be a positive integer")
    return int(value)


@dataclass(frozen=True)
class ModelMetadata(Mapping):
    """Validated model metadata (see the module docstring); a read-only mapping of its JSON fields."""

    frontend: dict[str, Any]
    window_frames: int
    stride_frames: int
    labels: tuple[str, ...]
    decision: dict[str, Any] = field(default_factory=dict)
    sample_rate_hz: int | None = None
    description: str | None = None
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise ModelError(f"metadata schema_version={self.schema_version!r} is not supported; "
                             f"this runtime reads version {SCHEMA_VERSION}")
        if not isinstance(self.frontend, Mapping):
            raise ModelError(f"metadata frontend={self.frontend!r} must be a JSON object (a frontend spec)")
        frontend = json.loads(json.dumps(dict(self.frontend)))  # a plain, JSON-safe copy
        if "tables" in frontend:
            raise ModelError(f"metadata frontend names an external tables file {frontend['tables']!r}; "
                             "a self-describing model cannot carry a file reference")
        spec = self._spec(frontend)
        object.__setattr__(self, "frontend", frontend)
        object.__setattr__(self, "window_frames", _positive_int("window_frames", self.window_frames))
        object.__setattr__(self, "stride_frames", _positive_int("stride_frames", self.stride_frames))
        labels = self.labels
        if isinstance(labels, str) or not isinstance(labels, (list, tuple)) or not labels:
            raise ModelError(f"metadata labels={labels!r} must be a non-empty list of strings")
        if not all(isinstance(x, str) and x for x in labels):
            raise ModelError(f"metadata labels={list(labels)!r} must all be non-empty strings")
        duplicates = sorted({x for x in labels if list(labels).count(x) > 1})
        if duplicates:
            raise ModelError(f"metadata labels repeat {duplicates}")
        object.__setattr__(self, "labels", tuple(labels))
        rate = spec.sample_rate_hz if self.sample_rate_hz is None else self.sample_rate_hz
        if _positive_int("sample_rate_hz", rate) != spec.sample_rate_hz:
            raise ModelError(f"metadata sample_rate_hz={rate} disagrees with the frontend's "
                             f"sample_rate_hz={spec.sample_rate_hz}")
        object.__setattr__(self, "sample_rate_hz", int(rate))
        if not isinstance(self.decision, Mapping):
            raise ModelError(f"metadata decision={self.decision!r} must be a JSON object of decision parameters")
        decision = json.loads(json.dumps(dict(self.decision)))
        self._decision(decision)
        object.__setattr__(self, "decision", decision)
        if self.description is not None and not isinstance(self.description, str):
            raise ModelError(f"metadata description={self.description!r} must be a string")

    # -- validation through the owning modules ------------------------------------
    @staticmethod
    def _spec(frontend: dict):
        from sed_runtime.frontend.spec import spec_from_dict

        try:
            return spec_from_dict(dict(frontend))
        except (ConfigError, TypeError) as exc:
            raise ModelError(f"metadata frontend is not a valid frontend spec: {exc}") from exc

    @staticmethod
    def _decision(decision: dict):
        from sed_runtime.decision import DecisionConfig

        try:
            return DecisionConfig.from_dict(dict(decision))
        except (ConfigError, TypeError) as exc:
            raise ModelError(f"metadata decision parameters are invalid: {exc}") from exc

    @property
    def frontend_spec(self):
        """The frontend spec object (:class:`FrontendSpec` or the TFLM family's spec)."""
        return self._spec(self.frontend)

    @property
    def decision_config(self):
        """The default :class:`~sed_runtime.decision.DecisionConfig`."""
        return self._decision(self.decision)

    @property
    def bins(self) -> int:
        """Feature values per frame."""
        return int(self.frontend_spec.bins)

    # -- (de)serialisation ----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in _FIELDS}
        out["labels"] = list(self.labels)
        if out["description"] is None:
            del out["description"]
        return out

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelMetadata":
        if not isinstance(data, Mapping):
            raise ModelError(f"model metadata must be a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - set(_FIELDS))
        if unknown:
            raise ModelError(f"unknown metadata key(s) {unknown}; expected keys among {list(_FIELDS)}")
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            raise ModelError(f"model metadata lacks {missing} (required: {list(_REQUIRED)})")
        return cls(**{k: data[k] for k in data})

    @classmethod
    def from_json(cls, text: str, where: str = "model metadata") -> "ModelMetadata":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(f"{where} is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    # -- the graph ---------------------------------------------------------------------
    def check_graph(self, graph, where: str = "the model") -> "ModelMetadata":
        """Raise :class:`ModelError` when this metadata disagrees with ``graph``'s input or output."""
        if not graph.inputs or not graph.outputs:
            raise ModelError(f"{where} has no input or no output tensor")
        x = graph.tensors[graph.inputs[0]]
        size = int(np.prod(x.shape, dtype=np.int64))
        if size != self.window_frames * self.bins:
            raise ModelError(f"metadata window_frames={self.window_frames} x {self.bins} feature bins "
                             f"(frontend) = {self.window_frames * self.bins} values, but the input "
                             f"{x.name!r} of {where} has shape {x.shape} = {size} values")
        y = graph.tensors[graph.outputs[0]]
        n_out = int(np.prod(y.shape, dtype=np.int64))
        if n_out != len(self.labels):
            raise ModelError(f"metadata lists {len(self.labels)} labels {list(self.labels)}, but the output "
                             f"{y.name!r} of {where} has shape {y.shape} = {n_out} values")
        q = self.frontend.get("quantization")
        if q is not None and x.quantization is not None:
            scale, zp = float(x.quantization.scale[0]), int(x.quantization.zero_point[0])
            if not math.isclose(float(q.get("scale", 0.0)), scale, rel_tol=1e-6) or int(q.get("zero_point", 0)) != zp:
                raise ModelError(f"metadata frontend quantization scale={q.get('scale')}, "
                                 f"zero_point={q.get('zero_point', 0)} disagrees with the input {x.name!r} of "
                                 f"{where}: scale={scale:g}, zero_point={zp}")
        return self

    # -- Mapping ---------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------

def sidecar_path(model_path: str | Path) -> Path:
    """``<model>.json``: the metadata sidecar of a model file (``kws.tflite`` -> ``kws.json``)."""
    return Path(model_path).with_suffix(".json")


def load_metadata_json(path: str | Path) -> ModelMetadata:
    """Read metadata from a JSON file.

    ``frontend`` may be the path of a frontend spec JSON file (relative to
    this file) instead of the spec itself; it is read and embedded.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read metadata file {str(path)!r}: {getattr(exc, 'strerror', None) or exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(f"metadata file {str(path)!r} is not valid JSON: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("frontend"), str):
        spec_path = path.parent / data["frontend"]
        try:
            data = {**data, "frontend": json.loads(spec_path.read_text(encoding="utf-8"))}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"metadata file {str(path)!r}: cannot read frontend spec {str(spec_path)!r}: {exc}") from exc
    try:
        return ModelMetadata.from_dict(data)
    except ModelError as exc:
        raise ModelError(f"{str(path)!r}: {exc}") from exc


def _kind(path: Path, head: bytes) -> str:
    from sed_runtime.model.tflite_import import is_tflite

    if is_tflite(head):
        return "tflite"
    if path.suffix.lower() == ".onnx":
        return "onnx"
    raise ModelError(f"{str(path)!r}: unknown model format; expected a .tflite flatbuffer or a .onnx model")


def _read_head(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(8)
    except OSError as exc:
        raise ModelError(f"cannot read model {str(path)!r}: {exc.strerror or exc}") from exc


def _load_graph(path: Path, kind: str):
    if kind == "tflite":
        from sed_runtime.model.tflite_import import import_tflite

        return import_tflite(path)
    from sed_runtime.model.onnx_import import import_onnx

    return import_onnx(path)


def read_metadata(source, required: bool | None = None):
    """The :class:`ModelMetadata` of a model file or of an imported :class:`Graph`, checked against its graph.

    ``source`` is a path (``.onnx`` or ``.tflite``; a ``.tflite`` without
    embedded metadata falls back to its sidecar ``<model>.json``) or a Graph
    (whose ``metadata`` holds the importer's raw entries).  A model without
    metadata raises :class:`ModelError` when ``required`` (the default for
    paths); for a Graph the default is lenient and gives an empty dict, so
    that :func:`sed_runtime.load_model` still loads plain models (the
    detector refuses them).  Inconsistent metadata always raises.
    """
    from sed_runtime.model.graph import Graph

    if isinstance(source, ModelMetadata):
        return source
    if isinstance(source, Graph):
        text = source.metadata.get(METADATA_KEY)
        if text is None:
            if required:
                raise ModelError(f"the model carries no {METADATA_KEY!r} metadata; stamp it with "
                                 "sed-stamp MODEL --metadata meta.json")
            return {}
        return ModelMetadata.from_json(text, f"{METADATA_KEY!r} metadata").check_graph(source)
    path = Path(source)
    kind = _kind(path, _read_head(path))
    graph = _load_graph(path, kind)
    where = f"model {str(path)!r}"
    text = graph.metadata.get(METADATA_KEY)
    if text is not None:
        meta = ModelMetadata.from_json(text, f"the {METADATA_KEY!r} metadata of {where}")
    elif kind == "tflite" and sidecar_path(path).is_file():
        meta = load_metadata_json(sidecar_path(path))
        where = f"model {str(path)!r} (sidecar {str(sidecar_path(path))!r})"
    elif required is False:
        return {}
    else:
        hint = f" or a sidecar {sidecar_path(path).name}" if kind == "tflite" else ""
        raise ModelError(f"{where} carries no {METADATA_KEY!r} metadata{hint}; stamp it with "
                         f"sed-stamp {path.name} --metadata meta.json")
    return meta.check_graph(graph, where)


def write_metadata(path, metadata, out_path=None, sidecar: bool = False) -> Path:
    """Stamp ``metadata`` (a :class:`ModelMetadata`, a mapping, or a JSON file path) onto a model.

    The metadata is checked against the model's graph first.  ONNX models get
    a ``metadata_props`` entry; TFLite models a named metadata buffer (the
    rest of the flatbuffer is rewritten unchanged, buffers 16-byte aligned),
    or with ``sidecar=True`` a ``<model>.json`` file and no change to the
    model.  Writes to ``out_path`` (default: in place, or the sidecar path)
    and returns the path written.
    """
    path = Path(path)
    if isinstance(metadata, ModelMetadata):
        meta = metadata
    elif isinstance(metadata, Mapping):
        meta = ModelMetadata.from_dict(metadata)
    else:
        meta = load_metadata_json(metadata)
    kind = _kind(path, _read_head(path))
    meta.check_graph(_load_graph(path, kind), f"model {str(path)!r}")
    text = meta.to_json()
    if sidecar:
        if kind != "tflite":
            raise ModelError(f"a sidecar is for .tflite models that must stay byte-identical; stamp "
                             f"{str(path)!r} in place (its metadata_props) instead")
        target = Path(out_path) if out_path is not None else sidecar_path(path)
        _write_bytes(target, (meta.to_json(indent=2) + "\n").encode("utf-8"))
        return target
    target = Path(out_path) if out_path is not None else path
    if kind == "onnx":
        import onnx

        model = onnx.load(str(path))
        kept = [(p.key, p.value) for p in model.metadata_props if p.key != METADATA_KEY]
        del model.metadata_props[:]
        for key, value in kept + [(METADATA_KEY, text)]:
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        _write_bytes(target, model.SerializeToString())
    else:
        _write_bytes(target, _stamp_tflite(path.read_bytes(), text))
    return target


def _stamp_tflite(data: bytes, text: str) -> bytes:
    """The flatbuffer with its ``sed_runtime`` metadata buffer replaced by ``text``."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    from sed_runtime.model.export_tflite import pack_model

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    if any(b.offset > 1 for b in model.buffers or []):
        raise ModelError("this .tflite keeps its buffers outside the flatbuffer (a >2 GB layout); "
                         "use a sidecar (sed-stamp --sidecar)")
    buffers = list(model.buffers or [])
    entries = list(model.metadata or [])
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    entry = next((m for m in entries if m.name in (METADATA_KEY, METADATA_KEY.encode())), None)
    if entry is None:  # a new named buffer
        entry = schema.MetadataT()
        entry.name = METADATA_KEY
        entry.buffer = len(buffers)
        buffers.append(buffer)
        entries.append(entry)
    else:  # restamping: replace the bytes of the existing buffer
        buffers[entry.buffer] = buffer
    model.buffers = buffers
    model.metadata = entries
    return pack_model(model)


def _write_bytes(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise ModelError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from exc
