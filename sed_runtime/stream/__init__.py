"""Streaming plumbing between sources and the frontend: the ring buffer and the resampler."""

from sed_runtime.stream.resample import Resampler, resample_pcm16
from sed_runtime.stream.ring_buffer import RingBuffer

__all__ = ["RingBuffer", "Resampler", "resample_pcm16"]
