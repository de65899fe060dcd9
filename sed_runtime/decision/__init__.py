"""Decision logic: scores to events (smoothing, hysteresis, durations, merging, refractory time)."""

from sed_runtime.decision.config import DecisionConfig, load_decision_overrides
from sed_runtime.decision.engine import DecisionEngine, Event

__all__ = ["DecisionConfig", "DecisionEngine", "Event", "load_decision_overrides"]
