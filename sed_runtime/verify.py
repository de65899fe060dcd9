"""Check a device trace against the runtime, stage by stage, element by element.

:func:`verify_trace` recomputes every stage a device logged from the same
audio and reports the first divergence (hop, stage, tensor, element, device
value, runtime value) and, per stage, how many records and elements differ.
:func:`record_trace` writes the runtime's own trace, for a firmware team to
diff against theirs.

Before any value is compared, the trace's identity is checked against the
runtime's: the sample rate and frame geometry, the digest of the frontend
tables (window, mel filters, DCT, feature quantization), and, when both sides
name one, the model.  A trace from another model, another rate or other
tables is refused with a :class:`~sed_runtime.errors.TraceError` that says
what differs.

Stages the runtime recomputes: ``pcm`` (the samples that completed each
frame), ``features`` (the frontend frame), ``features_s8`` (its int8
quantization, CMSIS-DSP family with a ``quantization``), and, with a model,
``output`` (the model output at every hop where the model runs) and
``tensor`` (any tensor an operator writes, named by its graph name or
``#<index>``, at those hops) and ``event`` (int32 [class index, onset hop,
offset hop), compared as a sequence in (onset, class) order with the
detector's decision logic over the dequantized outputs; the hop an event
record is logged at is not compared).  ``info`` records are shown, never
compared; ``decision`` records are reported as not compared.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from sed_runtime.errors import ConfigError, TraceError
from sed_runtime.io.trace import STAGES, Trace, TraceRecord, TraceWriter, frontend_identity

__all__ = ["Divergence", "StageReport", "VerifyReport", "RuntimeReference", "verify_trace", "record_trace",
           "check_identity", "model_digest"]

COMPARABLE = ("pcm", "features", "features_s8", "tensor", "output", "event")
RECORDED = ("pcm", "features", "features_s8", "output", "event")  # what --record writes unless told (tensors are many)
_GEOMETRY = ("family", "sample_rate_hz", "window_samples", "hop_samples", "fft_len", "n_mels", "n_dct", "bins",
             "output", "quantization")


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

def _index_text(stage: str, index: tuple[int, ...]) -> str:
    if stage == "event" and len(index) == 2:
        return f"event {index[0]} {('class', 'onset hop', 'offset hop')[index[1]]}"
    if len(index) == 1:
        word = {"pcm": "sample", "features": "bin", "features_s8": "bin", "output": "element"}.get(stage, "element")
        return f"{word} {index[0]}"
    return f"element {list(index)}"


@dataclass(frozen=True)
class Divergence:
    """The first element that differs in one record."""

    hop: int
    stage: str
    name: str
    index: tuple[int, ...]
    device: Any
    runtime: Any
    where: str
    damaged: bool = False

    def describe(self) -> str:
        tensor = f" tensor {self.name!r}," if self.name else ""
        note = " (this record fails its checksum: damaged in storage or transfer)" if self.damaged else ""
        return (f"hop {self.hop}, stage {self.stage},{tensor} {_index_text(self.stage, self.index)}: "
                f"device {self.device}, runtime {self.runtime} [{self.where}]{note}")

    def to_dict(self) -> dict[str, Any]:
        return {"hop": self.hop, "stage": self.stage, "tensor": self.name or None, "index": list(self.index),
                "device": self.device, "runtime": self.runtime, "where": self.where, "damaged": self.damaged}


@dataclass
class StageReport:
    """Counts for one stage (and tensor name) of the trace."""

    stage: str
    name: str = ""
    records: int = 0
    differing_records: int = 0
    elements: int = 0
    differing_elements: int = 0
    expected_records: int = 0
    first: Divergence | None = None

    @property
    def label(self) -> str:
        return f"{self.stage} {self.name!r}" if self.name else self.stage


@dataclass
class VerifyReport:
    """Outcome of :func:`verify_trace`; ``ok`` only when every compared value is equal and nothing is missing."""

    source: str
    target: str
    hops: int
    stages: list[StageReport]
    first: Divergence | None
    not_compared: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    damaged: list[TraceRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    info: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.first is None and not self.not_compared and not self.missing and not self.damaged

    def lines(self) -> list[str]:
        out = [f"trace {self.source}: target {self.target}, {self.hops} hops in the audio"]
        out += [f"device: {text}" for text in self.info]
        out += [f"note: {n}" for n in self.notes]
        width = max([len(s.label) for s in self.stages] + [5])
        out.append(f"{'stage':<{width}}  {'records':>8}  {'differ':>6}  {'elements':>10}  {'differ':>8}")
        for s in self.stages:
            out.append(f"{s.label:<{width}}  {s.records:>8}  {s.differing_records:>6}  {s.elements:>10}  "
                       f"{s.differing_elements:>8}")
        for label, count in self.not_compared.items():
            out.append(f"not compared: {count} {label} records ({_NOT_COMPARED_WHY.get(label.split()[0], '')})")
        out += [f"missing: {m}" for m in self.missing]
        for rec in self.damaged[:5]:
            out.append(f"damaged: {rec.label} record of hop {rec.hop} at {rec.where} fails its checksum")
        if len(self.damaged) > 5:
            out.append(f"damaged: {len(self.damaged) - 5} more records fail their checksums")
        if self.first is not None:
            out.append(f"FIRST DIVERGENCE: {self.first.describe()}")
            if self.first.stage == "pcm":
                out.append("hint: the device's input samples differ from the audio given: check the recording, "
                           "its sample rate, channel and start")
        if self.ok:
            total = sum(s.elements for s in self.stages)
            out.append(f"EQUAL: {total} values in {sum(s.records for s in self.stages)} records, "
                       f"{len(self.stages)} stages")
        else:
            differing = sum(s.differing_elements for s in self.stages)
            out.append(f"NOT EQUAL: {differing} of {sum(s.elements for s in self.stages)} compared values differ")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "source": self.source, "target": self.target, "hops": self.hops,
            "first_divergence": None if self.first is None else self.first.to_dict(),
            "stages": [{"stage": s.stage, "tensor": s.name or None, "records": s.records,
                        "expected_records": s.expected_records, "differing_records": s.differing_records,
                        "elements": s.elements, "differing_elements": s.differing_elements} for s in self.stages],
            "not_compared": self.not_compared, "missing": self.missing,
            "damaged": [{"stage": r.stage, "hop": r.hop, "where": r.where} for r in self.damaged],
            "notes": self.notes,
        }


_NOT_COMPARED_WHY = {
    "output": "no model given: pass --model",
    "tensor": "no model given: pass --model",
    "decision": "the runtime's decision state is float; compare outputs and events",
    "event": "no model given: pass --model",
}


# ---------------------------------------------------------------------------
# Identity
# ---------------------------------------------------------------------------

def _plain(value):
    """Option values in one spelling: sequences as tuples, numpy scalars as Python numbers."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _graph_digest(graph) -> str:
    h = hashlib.sha256()
    for t in graph.tensors:
        h.update(repr((t.index, tuple(int(d) for d in t.shape), np.dtype(t.dtype).str)).encode())
        q = t.quantization
        if q is not None:
            h.update(np.asarray(q.scale, np.float32).tobytes())
            h.update(np.asarray(q.zero_point, np.int64).tobytes())
            h.update(str(int(q.axis) if np.asarray(q.scale).size > 1 else 0).encode())
        if t.data is not None:
            h.update(np.ascontiguousarray(t.data).tobytes())
    for op in graph.operators:
        options = tuple(sorted((k, _plain(v)) for k, v in op.options.items()))
        h.update(repr((op.kind, tuple(op.inputs), tuple(op.outputs), options)).encode())
    h.update(repr((tuple(graph.inputs), tuple(graph.outputs))).encode())
    return h.hexdigest()


def model_digest(graph) -> str:
    """sha256 of a model's arithmetic: tensors (shape, dtype, quantization, constant data) and operators.

    Taken on the graph as firmware gets it -- written as ``.tflite`` and read
    back, so that operator options have one spelling -- and without names or
    metadata: an ONNX model, the ``.tflite`` exported from it and that file
    loaded back all have the same digest.
    """
    from dataclasses import replace

    from sed_runtime.errors import ModelError
    from sed_runtime.model.export_tflite import export_tflite
    from sed_runtime.model.tflite_import import import_tflite

    try:
        graph = import_tflite(export_tflite(replace(graph, metadata={})))
    except ModelError:  # a graph TFLite cannot hold: digest it as it is
        pass
    return _graph_digest(graph)


def check_identity(trace: Trace, expected: dict[str, Any], model_sha256: str | None = None) -> list[str]:
    """Refuse a trace that belongs to another frontend or model; return notes for what cannot be checked."""
    got = trace.identity
    src = trace.source or "the trace"
    if not got:
        raise TraceError(f"{src}: the header carries no identity, so it cannot be matched to a frontend or model; "
                         "firmware passes SED_TRACE_IDENTITY (from the header sed-export writes) to sed_trace_begin")
    rate_t, rate_r = got.get("sample_rate_hz"), expected.get("sample_rate_hz")
    if rate_t != rate_r:
        raise TraceError(f"{src} was written at sample rate {rate_t} Hz, but the runtime's frontend runs at "
                         f"{rate_r} Hz: the trace belongs to another model or frontend")
    diffs = [f"{k}: trace {got.get(k)!r}, runtime {expected.get(k)!r}"
             for k in _GEOMETRY if (k in got or k in expected) and got.get(k) != expected.get(k)]
    if diffs:
        raise TraceError(f"{src} was written for another frontend: " + "; ".join(diffs))
    if got.get("frontend_sha256") != expected.get("frontend_sha256"):
        raise TraceError(
            f"{src} was written with other frontend tables (window, mel filter or DCT integers): frontend digest "
            f"{str(got.get('frontend_sha256'))[:12]}... in the trace, {str(expected.get('frontend_sha256'))[:12]}... "
            "here; rebuild the firmware with the header sed-export writes for this model")
    notes = []
    trace_model = got.get("model_sha256")
    if trace_model and model_sha256 and trace_model != model_sha256:
        raise TraceError(f"{src} was written by firmware built for another model: model digest {trace_model[:12]}... "
                         f"in the trace, {model_sha256[:12]}... for the model given")
    if trace_model and not model_sha256:
        notes.append(f"the trace names a model (digest {trace_model[:12]}...); without --model only frontend "
                     "stages are compared")
    if model_sha256 and not trace_model:
        notes.append("the trace names no model: the firmware's model cannot be checked to be the one given")
    return notes


# ---------------------------------------------------------------------------
# The runtime's side
# ---------------------------------------------------------------------------

class RuntimeReference:
    """The runtime's values of every comparable stage, for one recording.

    ``spec`` is a frontend spec (either family); ``target`` overrides its
    arithmetic target; ``model`` (a loaded :class:`~sed_runtime.model.interpreter.Model`
    with metadata) adds the ``output`` stage.
    """

    def __init__(self, spec=None, *, target: str | None = None, model=None, tables=None) -> None:
        from sed_runtime.frontend import make_frontend
        from sed_runtime.frontend.cmsis import CmsisFrontend
        from sed_runtime.frontend.spec import FrontendSpec

        self.window_frames = self.stride_frames = 0
        if model is not None:
            from sed_runtime.detector import Detector

            # the detector's own checks and its spec: the model's frontend, its int8 input quantization filled in
            detector = Detector(model)
            spec = detector.spec
            self.window_frames, self.stride_frames = detector.window_frames, detector.stride_frames
            self._decision_config = detector.decision.config
            self._labels = detector.labels
        elif spec is None:
            raise ConfigError("RuntimeReference needs a frontend spec or a model")
        if target is not None and hasattr(spec, "target") and spec.target != target:
            spec = type(spec).from_dict({**spec.to_dict(), "target": target})
        self.spec = spec
        self.target = getattr(spec, "target", "generic")
        if isinstance(spec, FrontendSpec):
            self.frontend = CmsisFrontend(spec, tables).prepare()
            self.tables = self.frontend.tables
            self.identity = frontend_identity(spec, self.frontend.tables)
        else:
            self.frontend = make_frontend(spec)
            self.tables = None
            self.identity = frontend_identity(spec)
        self.model = model
        self.model_sha256 = None if model is None else model_digest(model.graph)
        self.samples = np.zeros(0, np.int16)
        self.hops = 0
        self.features = np.zeros((0, spec.bins), np.int16)
        self.features_s8 = None
        self.outputs: dict[int, np.ndarray] = {}
        self._windows: dict[int, np.ndarray] = {}
        self.events: list[np.ndarray] = []
        self._probe = None
        self._probe_hop = -1
        self._probe_values: list[np.ndarray] = []

    def run(self, samples: np.ndarray) -> "RuntimeReference":
        """Compute every stage for ``samples`` (int16 mono at the spec's rate); returns self."""
        from sed_runtime.frontend.spec import FrontendSpec

        spec = self.spec
        self.frontend.reset()
        self.samples = samples
        out = self.frontend.process(samples).copy()
        if isinstance(spec, FrontendSpec) and spec.quantization is not None:
            self.features = self.frontend.last_frames_q15.copy()
            self.features_s8 = out
        else:
            self.features = out
            self.features_s8 = None
        self.hops = self.features.shape[0]
        self.outputs = {}
        self._probe_hop = -1
        if self.model is not None:
            self._run_model(self.model)
        return self

    def _run_model(self, model) -> None:
        from sed_runtime.stream.feature_window import FeatureWindow

        frames = self.features_s8 if self.features_s8 is not None else self.features
        info = model.inputs[0]
        if frames.dtype != info.dtype:
            raise ConfigError(f"the frontend gives {frames.dtype} frames but the model input {info.name!r} is "
                              f"{info.dtype}")
        window = FeatureWindow(self.window_frames, frames.shape[1], self.stride_frames, dtype=frames.dtype)
        shape = tuple(info.shape)
        self._windows = {}
        for hop in range(frames.shape[0]):
            if window.push(frames[hop]):
                x = window.window().reshape(shape)
                result = model.invoke(x)
                self.outputs[hop] = np.array(result[0] if isinstance(result, tuple) else result)
                self._windows[hop] = x.copy()
        self.events = self._decide(model)

    def _decide(self, model) -> list[np.ndarray]:
        """Events as int32 [class index, onset hop, offset hop), in (onset, class) order.

        The detector's decision logic over its dequantized scores; step ``k``
        is the inference at hop ``window_frames - 1 + k * stride_frames``.
        """
        from sed_runtime.decision.engine import DecisionEngine

        if not self.outputs:
            return []
        q = model.output_quantization
        scale = float(np.asarray(q.scale).reshape(-1)[0]) if q is not None else 1.0
        zero_point = int(np.asarray(q.zero_point).reshape(-1)[0]) if q is not None else 0
        hops = sorted(self.outputs)
        scores = np.stack([(self.outputs[h].reshape(-1).astype(np.float32) - zero_point) * scale for h in hops])
        step_s = self.stride_frames * self.spec.hop_samples / self.spec.sample_rate_hz
        engine = DecisionEngine(self._decision_config, self._labels, step_s=step_s, offset_s=0.0)
        found = engine.process(scores) + engine.flush()
        first = self.window_frames - 1
        events = [np.array([e.class_index, first + round(e.onset_s / step_s) * self.stride_frames,
                            first + round(e.offset_s / step_s) * self.stride_frames], np.int32) for e in found]
        events.sort(key=lambda e: (int(e[1]), int(e[0])))
        return events

    def tensor(self, hop: int, name: str) -> np.ndarray | None:
        """Intermediate tensor ``name`` (a graph tensor name, or ``#<index>``) of the inference at ``hop``.

        Computed on demand by a copy of the model whose outputs are every
        tensor an operator writes: the same kernels, an arena that keeps
        everything.
        """
        if self.model is None or hop not in self._windows:
            return None
        if self._probe is None:
            from dataclasses import replace

            from sed_runtime.model.interpreter import Model

            graph = self.model.graph
            produced = tuple(dict.fromkeys(t for op in graph.operators for t in op.outputs if t != -1))
            probe = Model(replace(graph, outputs=produced), single_rounding=self.model.single_rounding,
                          metadata=self.model.metadata)
            by_name = {}
            for position, index in enumerate(produced):
                by_name.setdefault(graph.tensors[index].name, position)
                by_name[f"#{index}"] = position
            self._probe = (probe, by_name)
        probe, by_name = self._probe
        position = by_name.get(name)
        if position is None:
            raise TraceError(f"the trace logs tensor {name!r}, which no operator of the model writes; name a "
                             f"tensor of the model or give its index as '#<index>'")
        if self._probe_hop != hop:
            result = probe.invoke(self._windows[hop])
            self._probe_values = [np.array(v) for v in (result if isinstance(result, tuple) else (result,))]
            self._probe_hop = hop
        return self._probe_values[position]

    def pcm(self, hop: int) -> np.ndarray | None:
        """The samples that completed frame ``hop`` (hop 0: the whole first window)."""
        if not 0 <= hop < self.hops:
            return None
        window, step = self.spec.window_samples, self.spec.hop_samples
        if hop == 0:
            return self.samples[:window]
        start = window + (hop - 1) * step
        return self.samples[start:start + step]

    def value(self, stage: str, hop: int, name: str = "") -> np.ndarray | None:
        if stage == "pcm":
            return self.pcm(hop)
        if stage == "features":
            return self.features[hop] if 0 <= hop < self.hops else None
        if stage == "features_s8":
            if self.features_s8 is None:
                raise TraceError("the trace has features_s8 records but the frontend spec has no quantization")
            return self.features_s8[hop] if 0 <= hop < self.hops else None
        if stage == "output":
            return self.outputs.get(hop)
        if stage == "tensor":
            return self.tensor(hop, name)
        return None

    def expected_hops(self, stage: str) -> int:
        if stage in ("output", "tensor"):
            return len(self.outputs)
        return self.hops

    def records(self, stages: Iterable[str]) -> Iterable[tuple[str, int, np.ndarray, str]]:
        """The runtime's records, hop by hop, in pipeline order."""
        stages = [s for s in COMPARABLE if s in set(stages)]
        for hop in range(self.hops):
            for stage in stages:
                if stage == "tensor":
                    yield from self._tensor_records(hop)
                    continue
                value = self.value(stage, hop) if stage != "features_s8" or self.features_s8 is not None else None
                if value is not None:
                    yield stage, hop, value, ""

    def _tensor_records(self, hop: int):
        if self.model is None or hop not in self._windows:
            return
        graph = self.model.graph
        for index in dict.fromkeys(t for op in graph.operators for t in op.outputs if t != -1):
            name = graph.tensors[index].name
            if not name or len(name.encode("utf-8")) > 255 or any(c.isspace() for c in name) or name == "-":
                name = f"#{index}"
            value = self.tensor(hop, f"#{index}")
            yield "tensor", hop, value, name


# ---------------------------------------------------------------------------
# Compare
# ---------------------------------------------------------------------------

def _scalar(value) -> Any:
    return value.item() if hasattr(value, "item") else value


def verify_trace(trace: Trace, reference: RuntimeReference, *, stages: Iterable[str] | None = None,
                 allow_partial: bool = False) -> VerifyReport:
    """Compare ``trace`` with ``reference`` (see the module docstring)."""
    notes = check_identity(trace, reference.identity, reference.model_sha256) + list(trace.notes)
    wanted = set(stages) if stages is not None else None
    if wanted is not None:
        unknown = sorted(wanted - set(STAGES))
        if unknown:
            raise ConfigError(f"unknown stage(s) {unknown}; expected among {[s for s in STAGES if s not in ('header', 'end')]}")
    trace_target = trace.target
    if trace_target and trace_target != reference.target:
        notes.append(f"the device reports target {trace_target!r}; compared with the runtime's {reference.target!r} "
                     "arithmetic as asked")
    order = {name: i for i, name in enumerate(STAGES)}
    indexed = sorted(enumerate(trace.records), key=lambda item: (item[1].hop, order[item[1].stage], item[0]))
    reports: dict[tuple[str, str], StageReport] = {}
    not_compared: dict[str, int] = {}
    info: list[str] = []
    first: Divergence | None = None
    seen: set[tuple[int, str, str]] = set()
    device_events = []
    for _, rec in indexed:
        if rec.stage == "event" and (wanted is None or "event" in wanted):
            if reference.model is None:
                not_compared["event"] = not_compared.get("event", 0) + 1
            else:
                device_events.append(rec)
            continue
        if rec.stage == "info":
            info.append(f"hop {rec.hop}: {rec.data}")
            continue
        if wanted is not None and rec.stage not in wanted:
            continue
        key = (rec.hop, rec.stage, rec.name)
        if key in seen:
            raise TraceError(f"{trace.source}: two {rec.label} records for hop {rec.hop} (second at {rec.where})")
        seen.add(key)
        if rec.stage not in COMPARABLE or (rec.stage in ("output", "tensor") and reference.model is None):
            not_compared[rec.label] = not_compared.get(rec.label, 0) + 1
            continue
        expected = reference.value(rec.stage, rec.hop, rec.name)
        if expected is None:
            if rec.stage in ("output", "tensor"):
                raise TraceError(f"{trace.source}: an output record at hop {rec.hop} ({rec.where}), but the runtime "
                                 f"runs the model at hops {sorted(reference.outputs)[:3]}... (window/stride differ)")
            raise TraceError(f"{trace.source}: a {rec.label} record at hop {rec.hop} ({rec.where}), but the audio "
                             f"gives {reference.hops} hops: the trace belongs to other audio")
        data = rec.data
        if rec.stage in ("output", "tensor") and not isinstance(data, str) and data.size == expected.size:
            expected = expected.reshape(data.shape)  # [1, classes] logged as [classes] is the same tensor
        if isinstance(data, str) or data.dtype != expected.dtype or data.shape != expected.shape:
            got = "text" if isinstance(data, str) else f"{data.dtype} {data.shape}"
            raise TraceError(f"{trace.source}: the {rec.label} record of hop {rec.hop} ({rec.where}) holds {got}; the "
                             f"runtime computes {expected.dtype} {expected.shape}")
        report = reports.setdefault((rec.stage, rec.name), StageReport(rec.stage, rec.name))
        report.records += 1
        report.elements += data.size
        differ = data != expected
        count = int(np.count_nonzero(differ))
        if count:
            report.differing_records += 1
            report.differing_elements += count
            index = tuple(int(i) for i in np.argwhere(differ)[0])
            div = Divergence(rec.hop, rec.stage, rec.name, index, _scalar(data[index]), _scalar(expected[index]),
                             rec.where, damaged=not rec.crc_ok)
            if report.first is None:
                report.first = div
            if first is None:
                first = div
    missing = []
    if device_events:
        report, div = _compare_events(device_events, reference.events, trace.source)
        reports[("event", "")] = report
        if first is None:
            first = div
    for (stage, name), report in reports.items():
        if stage == "event":
            if report.records != report.expected_records and not allow_partial:
                missing.append(f"event: the device logged {report.records} events, the runtime detects "
                               f"{report.expected_records}")
            continue
        report.expected_records = reference.expected_hops(stage)
        if report.records < report.expected_records and not allow_partial:
            missing.append(f"{report.label}: the device logged {report.records} of the {report.expected_records} "
                           f"hops the audio gives")
    ordered = sorted(reports.values(), key=lambda r: (order[r.stage], r.name))
    return VerifyReport(source=trace.source, target=reference.target, hops=reference.hops, stages=ordered,
                        first=first, not_compared=not_compared, missing=missing, damaged=trace.damaged(),
                        notes=notes, info=info)


def _compare_events(records: list[TraceRecord], expected: list[np.ndarray], source: str):
    """Device events against the runtime's, both in (onset, class) order."""
    for rec in records:
        if isinstance(rec.data, str) or rec.data.dtype != np.int32 or rec.data.shape != (3,):
            got = "text" if isinstance(rec.data, str) else f"{rec.data.dtype} {rec.data.shape}"
            raise TraceError(f"{source}: the event record of hop {rec.hop} ({rec.where}) holds {got}; an event is "
                             "int32 [3]: class index, onset hop, offset hop")
    ordered = sorted(records, key=lambda r: (int(r.data[1]), int(r.data[0])))
    report = StageReport("event", records=len(ordered), expected_records=len(expected))
    first = None
    for i, rec in enumerate(ordered):
        report.elements += 3
        ref = expected[i] if i < len(expected) else None
        if ref is not None and np.array_equal(rec.data, ref):
            continue
        report.differing_records += 1
        differ = [0, 1, 2] if ref is None else [int(j) for j in np.nonzero(rec.data != ref)[0]]
        report.differing_elements += len(differ)
        if first is None:
            j = differ[0]
            first = Divergence(rec.hop, "event", "", (i, j), int(rec.data[j]),
                               "no event" if ref is None else int(ref[j]), rec.where, damaged=not rec.crc_ok)
    report.first = first
    return report, first


def record_trace(path: str | Path, reference: RuntimeReference, *, text: bool | None = None,
                 stages: Iterable[str] = RECORDED) -> int:
    """Write the runtime's trace of ``reference`` to ``path``; return the number of records."""
    from sed_runtime import __version__

    identity = dict(reference.identity)
    if reference.model_sha256:
        identity["model_sha256"] = reference.model_sha256
    header = {"target": reference.target, "device": f"sed-runtime {__version__} (host)", "identity": identity}
    stages = list(stages)
    if reference.model is None:
        stages = [s for s in stages if s not in ("output", "tensor", "event")]
    with TraceWriter.open(path, header, text=text) as writer:
        for stage, hop, value, name in reference.records(stages):
            writer.write(stage, hop, value, name)
        if "event" in stages:
            for event in reference.events:  # logged at the hop where it ends
                writer.write("event", min(int(event[2]), max(reference.hops - 1, 0)), event)
        count = writer.count
        writer.close(reference.hops)
    return count + 1
