"""Quantized models: import into one immutable plan, plan the arena, run TFLM-exact int8 kernels."""
