"""Audio frontend: per-stage float configs, integer tables and states, and the
kernels that turn int16 audio frames into the features a model consumes.

Two families: the CMSIS-DSP q15 log-mel/MFCC frontend (:class:`FrontendSpec`,
:class:`CmsisFrontend`) and the TFLM ``signal`` micro_speech frontend
(:class:`TflmFrontendSpec`, :class:`TflmFrontend`).  :func:`load_spec` reads
either from JSON; :func:`make_frontend` builds the matching frontend.
"""

from sed_runtime.errors import ConfigError
from sed_runtime.frontend.cmsis import CmsisFrontend, compute_features
from sed_runtime.frontend.cmsis_tables import MfccTablesQ15
from sed_runtime.frontend.spec import FeatureQuantization, FrontendSpec, load_spec, spec_from_dict
from sed_runtime.frontend.tflm import MICRO_SPEECH_SPEC, TflmFrontend, TflmFrontendSpec, compute_tflm_features

__all__ = ["CmsisFrontend", "compute_features", "FeatureQuantization", "FrontendSpec", "MfccTablesQ15", "load_spec",
           "spec_from_dict", "make_frontend", "MICRO_SPEECH_SPEC", "TflmFrontend", "TflmFrontendSpec",
           "compute_tflm_features"]


def make_frontend(spec, *, prepare: bool = True):
    """The streaming frontend of ``spec``'s family, prepared (unless ``prepare=False``).

    :class:`FrontendSpec` -> :class:`CmsisFrontend`; :class:`TflmFrontendSpec`
    -> :class:`TflmFrontend`.  Both share the streaming contract:
    ``process(int16 samples) -> frames`` (a view valid until the next call,
    identical for any chunking) and ``reset()``.
    """
    if isinstance(spec, FrontendSpec):
        frontend = CmsisFrontend(spec)
    elif isinstance(spec, TflmFrontendSpec):
        frontend = TflmFrontend(spec)
    else:
        raise ConfigError(f"spec must be a FrontendSpec or a TflmFrontendSpec, got {type(spec).__name__}")
    return frontend.prepare() if prepare else frontend
