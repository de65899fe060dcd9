"""Numba kernels, each named after the firmware function it mirrors bit for bit."""
