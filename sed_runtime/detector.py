"""The streaming detector: int16 audio in, events out.

``Detector(model)`` joins the pieces a firmware runs, in the same order:
frontend (per hop) -> feature window (every stride) -> int8 model ->
dequantized scores -> decision logic -> events.

Lifecycle: build -> :meth:`Detector.prepare` (all allocation and validation;
called by the constructor) -> :meth:`Detector.process` any number of times ->
:meth:`Detector.flush` at stream end.  :meth:`Detector.reset` starts a new
stream.  The same samples give the same features, scores and events in any
chunking, live or offline.

Time stamps: inference step ``k`` sees the window ending with feature frame
``f = window_frames - 1 + k * stride_frames``; its stamp is the end of the
audio that frame covers, ``(f * hop + window) / rate`` seconds.  An event's
onset is the stamp of its first active step.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from sed_runtime.decision.config import DecisionConfig
from sed_runtime.decision.engine import DecisionEngine, Event
from sed_runtime.errors import AudioFormatError, ModelError
from sed_runtime.frontend import FrontendSpec, make_frontend
from sed_runtime.stream.feature_window import FeatureWindow

__all__ = ["Detector"]


def _metadata_fields(meta):
    """(frontend spec, labels, window_frames, stride_frames, decision defaults) from a model's metadata."""
    from sed_runtime.frontend.spec import spec_from_dict

    if not meta:
        raise ModelError("the model carries no sed_runtime metadata (frontend, labels, window and stride); "
                         "stamp it with sed-stamp")
    get = meta.get if isinstance(meta, dict) else (lambda key, default=None: getattr(meta, key, default))
    missing = [k for k in ("frontend", "labels", "window_frames", "stride_frames") if get(k) is None]
    if missing:
        raise ModelError(f"the model's metadata lacks {missing}; stamp it with sed-stamp")
    frontend = get("frontend")
    spec = frontend if hasattr(frontend, "to_dict") else spec_from_dict(dict(frontend))
    return spec, list(get("labels")), get("window_frames"), get("stride_frames"), get("decision") or {}


class Detector:
    """Detect sound events with a quantized model that carries its own metadata.

    ``model`` is what :func:`sed_runtime.load_model` returns (or a path to
    load).  ``decision`` overrides the model's default decision parameters
    (a :class:`DecisionConfig` or a mapping of its fields); ``on_event`` is
    called with each event as soon as it closes.
    """

    def __init__(self, model, decision: DecisionConfig | dict[str, Any] | None = None,
                 on_event: Callable[[Event], None] | None = None, target: str | None = None) -> None:
        if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
            from sed_runtime import load_model

            model = load_model(model)
        self.model = model
        self._decision_override = decision
        self._target = target
        self.on_event = on_event
        self.prepare()

    # ------------------------------------------------------------------
    def prepare(self) -> None:
        spec, labels, window_frames, stride_frames, decision = _metadata_fields(getattr(self.model, "metadata", None))
        if self._target is not None:
            spec = type(spec).from_dict({**spec.to_dict(), "target": self._target})
        in_q = self.model.input_quantization
        if isinstance(spec, FrontendSpec) and spec.quantization is None:
            # q8.7 features -> the model's int8 input, with TFLM's integer requantization
            spec = FrontendSpec.from_dict({**spec.to_dict(), "quantization": {
                "scale": float(in_q.scale[0]), "zero_point": int(in_q.zero_point[0])}})
        self.spec = spec
        self.frontend = make_frontend(spec)
        self.labels = tuple(labels)
        self.window_frames = int(window_frames)
        self.stride_frames = int(stride_frames)
        bins = spec.bins
        expected = self.window_frames * bins
        size = int(np.prod(self.model.inputs[0].shape))
        if size != expected:
            raise ModelError(f"model input holds {size} values; metadata says window_frames={self.window_frames} x "
                             f"{bins} feature bins = {expected}")
        self.window = FeatureWindow(self.window_frames, bins, self.stride_frames, dtype=np.int8)
        out_q = self.model.output_quantization
        self._out_scale = float(out_q.scale[0])
        self._out_zero_point = int(out_q.zero_point[0])
        n_out = int(np.prod(self.model.outputs[0].shape))
        if n_out != len(self.labels):
            raise ModelError(f"model output has {n_out} values; metadata lists {len(self.labels)} labels")

        config = DecisionConfig.from_dict(dict(decision or {}))
        if isinstance(self._decision_override, DecisionConfig):
            config = self._decision_override
        elif self._decision_override:
            config = config.replace(**self._decision_override)
        rate, hop, win = spec.sample_rate_hz, spec.hop_samples, spec.window_samples
        self.step_s = self.stride_frames * hop / rate
        self.first_stamp_s = ((self.window_frames - 1) * hop + win) / rate
        self.decision = DecisionEngine(config, self.labels, step_s=self.step_s, offset_s=self.first_stamp_s)
        self._input_shape = tuple(self.model.inputs[0].shape)
        self._scores = np.zeros((64, len(self.labels)), np.float32)
        self._n_scores = 0
        self.samples_seen = 0

    def reset(self) -> None:
        self.frontend.reset()
        self.window.reset()
        self.decision.reset()
        self._n_scores = 0
        self.samples_seen = 0

    # ------------------------------------------------------------------
    @property
    def scores(self) -> np.ndarray:
        """Dequantized model scores of the last ``process`` call ([steps, classes], a view)."""
        return self._scores[: self._n_scores]

    @property
    def smoothed_scores(self) -> np.ndarray:
        """Smoothed scores of the last ``process`` call ([steps, classes], a view)."""
        return self.decision.smoothed

    def process(self, samples: np.ndarray) -> list[Event]:
        """Feed int16 mono samples at the model's rate; return the events that closed."""
        if not isinstance(samples, np.ndarray) or samples.dtype != np.int16 or samples.ndim != 1:
            raise AudioFormatError(
                f"Detector.process expects a 1-D int16 array of mono samples, got "
                f"{type(samples).__name__} dtype={getattr(samples, 'dtype', None)}"
            )
        frames = self.frontend.process(samples)
        n = 0
        scores = self._scores
        for i in range(frames.shape[0]):
            if self.window.push(frames[i]):
                if n == scores.shape[0]:
                    self._scores = scores = np.concatenate([scores, np.zeros_like(scores)])
                out = self.model.invoke(self.window.window().reshape(self._input_shape))
                scores[n] = (out.reshape(-1).astype(np.float32) - self._out_zero_point) * self._out_scale
                n += 1
        self._n_scores = n
        self.samples_seen += samples.shape[0]
        events = self.decision.process(scores[:n]) if n else []
        self._deliver(events)
        return events

    def flush(self) -> list[Event]:
        """End of stream: close any open event at the stream's end."""
        events = self.decision.flush()
        self._deliver(events)
        return events

    def _deliver(self, events: list[Event]) -> None:
        if self.on_event is not None:
            for event in events:
                self.on_event(event)

    @property
    def sample_rate_hz(self) -> int:
        return self.spec.sample_rate_hz

