"""Audio frontend: per-stage float configs, integer tables and states, and the
kernels that turn q15 audio frames into the features a model consumes."""
