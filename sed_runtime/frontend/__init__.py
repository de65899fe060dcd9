"""Audio frontend: per-stage float configs, integer tables and states, and the
kernels that turn q15 audio frames into the features a model consumes."""

from sed_runtime.frontend.cmsis import CmsisFrontend, compute_features
from sed_runtime.frontend.cmsis_tables import MfccTablesQ15
from sed_runtime.frontend.spec import FeatureQuantization, FrontendSpec, load_spec

__all__ = ["CmsisFrontend", "compute_features", "FeatureQuantization", "FrontendSpec", "MfccTablesQ15", "load_spec"]
