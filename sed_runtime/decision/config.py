"""Decision parameters in milliseconds, turned once into step counts.

A detector produces one score vector per inference step (the model's stride).
:class:`DecisionConfig` says, in units a user thinks in, how those scores
become events; :meth:`DecisionConfig.resolve` converts it once, for a given
step duration and class list, into the integer :class:`ResolvedDecision` the
compiled decision kernel runs on.

Rules (per class, every step):

* smoothing: ``"none"``, ``"mean"`` or ``"median"`` over the last
  ``smoothing_ms`` of scores (at least one step; fewer at stream start), or
  ``"ema"`` with time constant ``smoothing_ms``;
* an event starts when the smoothed score is ``>= on_threshold`` (or, with
  ``vote_k``/``vote_n``, when at least k of the last n smoothed scores are) and
  no refractory time is running; it ends at the first step whose smoothed
  score is ``< off_threshold`` (hysteresis: ``off_threshold <= on_threshold``);
* events shorter than ``min_duration_ms`` are dropped;
* an event starting within ``merge_gap_ms`` of the previous event's end (same
  class) is merged into it;
* after an event ends, no new one starts for ``refractory_ms``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from sed_runtime.errors import ConfigError

__all__ = ["DecisionConfig", "ResolvedDecision", "SMOOTHING_KINDS", "load_decision_overrides"]

SMOOTHING_KINDS = ("none", "mean", "median", "ema")
_SMOOTHING_CODE = {kind: i for i, kind in enumerate(SMOOTHING_KINDS)}


def _number(name: str, value: Any, low: float = 0.0, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name}={value!r} must be a finite number")
    if not low <= value <= high:
        raise ConfigError(f"{name}={value!r} must be in [{low:g}, {high:g}]")
    return float(value)


@dataclass(frozen=True)
class DecisionConfig:
    """How scores become events.  Times in milliseconds, scores in [0, 1].

    ``thresholds`` overrides ``on_threshold``/``off_threshold`` per label:
    ``{"baby_cry": [0.7, 0.5]}``.  ``ignore`` lists labels that never make
    events (e.g. a background class).
    """

    on_threshold: float = 0.5
    off_threshold: float | None = None  # None: equal to on_threshold
    smoothing: str = "mean"
    smoothing_ms: float = 0.0
    min_duration_ms: float = 0.0
    merge_gap_ms: float = 0.0
    refractory_ms: float = 0.0
    vote_k: int = 0
    vote_n: int = 0
    thresholds: dict[str, tuple[float, float]] = field(default_factory=dict)
    ignore: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        on = _number("on_threshold", self.on_threshold, 0.0, 1.0)
        off = on if self.off_threshold is None else _number("off_threshold", self.off_threshold, 0.0, 1.0)
        if off > on:
            raise ConfigError(f"off_threshold={off:g} must not exceed on_threshold={on:g} (hysteresis)")
        object.__setattr__(self, "on_threshold", on)
        object.__setattr__(self, "off_threshold", off)
        if self.smoothing not in SMOOTHING_KINDS:
            raise ConfigError(f"smoothing={self.smoothing!r} is not supported; expected one of {SMOOTHING_KINDS}")
        for name in ("smoothing_ms", "min_duration_ms", "merge_gap_ms", "refractory_ms"):
            object.__setattr__(self, name, _number(name, getattr(self, name)))
        for name in ("vote_k", "vote_n"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name}={value!r} must be a non-negative integer")
        if (self.vote_k == 0) != (self.vote_n == 0) or self.vote_k > self.vote_n:
            raise ConfigError(f"voting vote_k={self.vote_k}, vote_n={self.vote_n} needs 1 <= vote_k <= vote_n (or both 0)")
        table = {}
        for label, pair in dict(self.thresholds).items():
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise ConfigError(f"thresholds[{label!r}]={pair!r} must be [on, off]")
            t_on = _number(f"thresholds[{label!r}] on", pair[0], 0.0, 1.0)
            t_off = _number(f"thresholds[{label!r}] off", pair[1], 0.0, 1.0)
            if t_off > t_on:
                raise ConfigError(f"thresholds[{label!r}]: off {t_off:g} must not exceed on {t_on:g}")
            table[str(label)] = (t_on, t_off)
        object.__setattr__(self, "thresholds", table)
        object.__setattr__(self, "ignore", tuple(str(x) for x in self.ignore))

    # ------------------------------------------------------------------
    def replace(self, **changes: Any) -> "DecisionConfig":
        """A copy with some fields changed (validated again); ``None`` values are ignored."""
        data = asdict(self)
        data.update({k: v for k, v in changes.items() if v is not None})
        return DecisionConfig.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["thresholds"] = {k: list(v) for k, v in self.thresholds.items()}
        data["ignore"] = list(self.ignore)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DecisionConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"decision parameters must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown decision parameter(s) {unknown}; expected among {sorted(known)}")
        data = dict(data)
        if "thresholds" in data and data["thresholds"] is not None:
            data["thresholds"] = {k: tuple(v) if isinstance(v, list) else v for k, v in data["thresholds"].items()}
        if "ignore" in data and data["ignore"] is not None:
            data["ignore"] = tuple(data["ignore"])
        return cls(**{k: v for k, v in data.items() if v is not None})

    def resolve(self, labels: list[str] | tuple[str, ...], step_ms: float) -> "ResolvedDecision":
        """Convert to step counts for a model with these labels and inference stride."""
        step_ms = _number("step_ms", step_ms)
        if step_ms <= 0:
            raise ConfigError(f"step_ms={step_ms} must be > 0")
        unknown = sorted((set(self.thresholds) | set(self.ignore)) - set(labels))
        if unknown:
            raise ConfigError(f"decision parameters name unknown label(s) {unknown}; the model's labels are {list(labels)}")
        n = len(labels)
        on = np.full(n, self.on_threshold)
        off = np.full(n, self.off_threshold)
        for i, label in enumerate(labels):
            if label in self.thresholds:
                on[i], off[i] = self.thresholds[label]
        enabled = np.array([label not in self.ignore for label in labels])

        def steps(ms: float) -> int:  # round half up, as a firmware constant would be computed
            return int(math.floor(ms / step_ms + 0.5))

        smoothing_steps = max(1, steps(self.smoothing_ms)) if self.smoothing in ("mean", "median") else 1
        ema_alpha = 1.0
        if self.smoothing == "ema" and self.smoothing_ms > 0:
            ema_alpha = 1.0 - math.exp(-step_ms / self.smoothing_ms)
        return ResolvedDecision(
            labels=tuple(labels), step_ms=step_ms, smoothing_code=_SMOOTHING_CODE[self.smoothing],
            smoothing_steps=smoothing_steps, ema_alpha=ema_alpha, on=on, off=off, enabled=enabled,
            min_steps=steps(self.min_duration_ms), merge_steps=steps(self.merge_gap_ms),
            refractory_steps=steps(self.refractory_ms), vote_k=self.vote_k, vote_n=self.vote_n,
        )


@dataclass(frozen=True)
class ResolvedDecision:
    """Decision parameters in steps: what the compiled kernel reads."""

    labels: tuple[str, ...]
    step_ms: float
    smoothing_code: int
    smoothing_steps: int
    ema_alpha: float
    on: np.ndarray
    off: np.ndarray
    enabled: np.ndarray
    min_steps: int
    merge_steps: int
    refractory_steps: int
    vote_k: int
    vote_n: int


def load_decision_overrides(path: str | Path) -> dict[str, Any]:
    """Read decision overrides from a JSON or TOML sidecar file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read decision file {str(path)!r}: {exc.strerror or exc}") from exc
    try:
        if path.suffix.lower() == ".toml":
            import tomllib  # Python >= 3.11

            data = tomllib.loads(raw.decode("utf-8"))
        else:
            data = json.loads(raw.decode("utf-8"))
    except ModuleNotFoundError as exc:  # Python 3.10
        raise ConfigError(f"{str(path)!r}: TOML needs Python >= 3.11; use JSON") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"decision file {str(path)!r} is not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"decision file {str(path)!r} must hold a mapping of parameters")
    return data.get("decision", data)
