"""Deterministic rational resampling of int16 streams (e.g. 44.1/48/22.05/8 kHz -> 16 kHz).

The rate changes by ``up / down`` (the reduced ratio of the two rates): a
polyphase FIR, conceptually "insert ``up - 1`` zeros, low-pass at ``up *
input_rate``, keep every ``down``-th sample", computed without the zeros.

Design (once, in :meth:`Resampler.prepare`, with ``scipy.signal``): a
Kaiser-window low-pass whose passband ends at ``passband`` (default 0.9) of
the lower Nyquist frequency and whose stopband starts at that Nyquist
frequency, attenuated ``stopband_db`` (default 90 dB).  Its ``up`` phases are
normalised to unit DC gain each (a constant input comes out unchanged) and
quantised to Q30 int32; those integers *are* the filter.

Arithmetic (:func:`polyphase_q30`): int16 samples times Q30 coefficients
accumulated in int64 (at most ~2**46, no overflow), then ``>> 30`` rounded
half away from zero and saturated to int16.  Integer arithmetic makes the
output identical on every machine and with the JIT disabled.

Timing: output sample ``n`` is centred on input time ``n * down / up`` (input
samples), i.e. on the same instant in seconds: the filter's delay is
compensated, the stream only waits for the filter's look-ahead
(:attr:`Resampler.lookahead_input_samples`) before an output can be
computed.  Audio before the first sample is taken as zeros; :meth:`flush`
assumes zeros after the last one and completes the stream with
``ceil(n_in * up / down)`` outputs in total.

Streaming contract: ``process(samples)`` accepts any number of int16 samples
and returns every output they complete.  Feeding the same audio in any
chunking gives the same outputs, bit for bit (each output is the same dot
product of the same inputs).  The returned array is a view of an internal
buffer, valid until the next call.  After ``prepare()`` nothing is allocated
unless a chunk longer than any before needs a longer output buffer.
"""

from __future__ import annotations

import math

import numpy as np

from sed_runtime._numba import njit
from sed_runtime.errors import AudioFormatError, ConfigError

__all__ = ["Resampler", "resample_pcm16", "polyphase_q30"]

COEF_SHIFT = 30  # coefficients are Q30
_MAX_COEFFICIENTS = 1 << 22  # up * taps_per_phase above this is an unreasonable rate pair (16 MiB of int32)


@njit
def polyphase_q30(work, hist, n_new, coefs_q30, up, down, state, out):
    """Polyphase FIR over ``work[:hist + n_new]``; write outputs to ``out``; return their count.

    ``work[:hist]`` holds the last ``hist = taps - 1`` samples of earlier
    calls, ``work[hist:hist + n_new]`` the new ones.  ``state[0]`` is the
    upsampled position of the next output relative to ``work[0]`` (``up`` per
    input sample).  Output at position ``t``: ``i = t // up``, ``p = t % up``,
    ``y = sum_j coefs_q30[p, j] * work[i - hist + j]``.  On return the last
    ``hist`` samples are moved to the front and ``state[0]`` rebased.

    Scaling and overflow: int16 x Q30 products summed in int64 (|sum| <
    2**15 * sum|c|, about 2**46); ``>> 30`` rounded half away from zero (as
    TFLM rounds), saturated to [-32768, 32767].
    Assumptions: ``len(out)`` is at least the number of outputs produced
    (``<= n_new * up // down + 1``); ``state[0] >= hist * up``.
    """
    taps = coefs_q30.shape[1]
    end = hist + n_new
    t = state[0]
    half = np.int64(1) << (COEF_SHIFT - 1)
    count = 0
    while True:
        i = t // up
        if i >= end:
            break
        p = t - i * up
        start = i - (taps - 1)
        acc = np.int64(0)
        for j in range(taps):
            acc += np.int64(work[start + j]) * np.int64(coefs_q30[p, j])  # q15 * q30 -> q45 (int16 scale << 30)
        if acc >= 0:
            y = (acc + half) >> COEF_SHIFT
        else:
            y = -((-acc + half) >> COEF_SHIFT)
        if y > 32767:
            y = 32767
        elif y < -32768:
            y = -32768
        out[count] = y
        count += 1
        t += down
    # keep the newest `hist` samples (a forward copy: the destination is never ahead of the source)
    drop = end - hist
    for k in range(hist):
        work[k] = work[drop + k]
    state[0] = t - drop * up
    return count


class Resampler:
    """Streaming int16 resampler from ``input_rate_hz`` to ``output_rate_hz``.

    Build, then :meth:`prepare` (filter design, all buffers, all errors),
    then :meth:`process` any number of times, :meth:`flush` at the end of a
    stream, :meth:`reset` to start another.
    """

    def __init__(self, input_rate_hz: int, output_rate_hz: int, *, passband: float = 0.9,
                 stopband_db: float = 90.0, max_chunk_samples: int = 4096) -> None:
        for name, value in (("input_rate_hz", input_rate_hz), ("output_rate_hz", output_rate_hz),
                            ("max_chunk_samples", max_chunk_samples)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{name}={value!r} must be a positive integer")
        if not 0.5 <= passband < 1.0:
            raise ConfigError(f"passband={passband!r} must be in [0.5, 1) (fraction of the lower Nyquist frequency)")
        if not 40.0 <= stopband_db <= 120.0:
            raise ConfigError(f"stopband_db={stopband_db!r} must be in [40, 120]")
        self.input_rate_hz = int(input_rate_hz)
        self.output_rate_hz = int(output_rate_hz)
        self.passband = float(passband)
        self.stopband_db = float(stopband_db)
        self.max_chunk_samples = int(max_chunk_samples)
        g = math.gcd(self.input_rate_hz, self.output_rate_hz)
        self.up = self.output_rate_hz // g
        self.down = self.input_rate_hz // g
        self._prepared = False

    # ------------------------------------------------------------------
    def prepare(self) -> "Resampler":
        """Design the filter, quantise it, allocate the buffers."""
        from scipy import signal  # deferred: only resampling sources need scipy.signal

        up, down = self.up, self.down
        fs_up = float(self.input_rate_hz) * up
        nyquist = 0.5 * min(self.input_rate_hz, self.output_rate_hz)
        edge_pass = self.passband * nyquist
        width = nyquist - edge_pass
        numtaps, beta = signal.kaiserord(self.stopband_db, width / (0.5 * fs_up))
        numtaps |= 1  # odd: a whole-sample centre, so the delay is compensated exactly
        taps_per_phase = -(-numtaps // up)
        if up * taps_per_phase > _MAX_COEFFICIENTS:
            raise ConfigError(
                f"resampling {self.input_rate_hz} Hz -> {self.output_rate_hz} Hz needs a {up}-phase filter of "
                f"{up * taps_per_phase} coefficients; at most {_MAX_COEFFICIENTS} supported (use standard rates)"
            )
        h = signal.firwin(numtaps, 0.5 * (edge_pass + nyquist), window=("kaiser", beta), fs=fs_up)
        padded = np.zeros(up * taps_per_phase)
        padded[:numtaps] = h
        # phase p, tap k multiplies x[i - k]: h[p + k * up]; stored oldest-first for a forward dot product
        phases = padded.reshape(taps_per_phase, up).T[:, ::-1]
        phases = phases / phases.sum(axis=1, keepdims=True)  # unit DC gain in every phase
        coefs = np.rint(phases * (1 << COEF_SHIFT)).astype(np.int64)
        # put each phase's rounding residual on its largest tap: the integer sum is exactly 1.0 in Q30
        residual = (1 << COEF_SHIFT) - coefs.sum(axis=1)
        coefs[np.arange(up), np.abs(coefs).argmax(axis=1)] += residual
        self.coefs_q30 = np.ascontiguousarray(coefs.astype(np.int32))
        self.numtaps = numtaps
        self.taps_per_phase = taps_per_phase
        self.delay_upsampled = (numtaps - 1) // 2
        self._hist = taps_per_phase - 1
        self._work = np.zeros(self._hist + self.max_chunk_samples, np.int16)
        self._out = np.zeros(self._max_outputs(self.max_chunk_samples), np.int16)
        self._state = np.zeros(1, np.int64)
        self._zeros = np.zeros(self.lookahead_input_samples + 1, np.int16)
        self._prepared = True
        self.reset()
        return self

    def _max_outputs(self, n_in: int) -> int:
        return n_in * self.up // self.down + 1

    def reset(self) -> None:
        """Start a new stream: zero history, position 0."""
        if not self._prepared:
            raise ConfigError("reset() called before prepare()")
        self._work[: self._hist] = 0
        self._state[0] = self.delay_upsampled + self._hist * self.up
        self.samples_in = 0
        self.samples_out = 0
        self._flushed = False

    @property
    def lookahead_input_samples(self) -> int:
        """Input samples beyond an output's instant that its computation needs (the streaming latency)."""
        return -(-self.delay_upsampled // self.up)

    # ------------------------------------------------------------------
    def process(self, samples: np.ndarray) -> np.ndarray:
        """Feed int16 samples; return the outputs they complete (a view valid until the next call)."""
        if not self._prepared:
            raise ConfigError("process() called before prepare()")
        if self._flushed:
            raise ConfigError("process() called after flush(); call reset() to start a new stream")
        if not isinstance(samples, np.ndarray) or samples.dtype != np.int16 or samples.ndim != 1:
            raise AudioFormatError(
                f"process() expects a 1-D int16 array of mono samples, got "
                f"{type(samples).__name__} dtype={getattr(samples, 'dtype', None)} ndim={getattr(samples, 'ndim', None)}"
            )
        return self._run(samples)

    def _run(self, samples: np.ndarray) -> np.ndarray:
        n_in = samples.shape[0]
        bound = self._max_outputs(n_in)
        if bound > self._out.shape[0]:
            self._out = np.zeros(max(bound, 2 * self._out.shape[0]), np.int16)
        hist, work, step = self._hist, self._work, self.max_chunk_samples
        count = 0
        for pos in range(0, n_in, step):
            piece = min(step, n_in - pos)
            work[hist:hist + piece] = samples[pos:pos + piece]
            count += polyphase_q30(work, hist, piece, self.coefs_q30, self.up, self.down, self._state,
                                   self._out[count:])
        self.samples_in += n_in
        self.samples_out += count
        return self._out[:count]

    def flush(self) -> np.ndarray:
        """End of stream: the remaining outputs, assuming silence after the last sample.

        After it the stream has ``ceil(samples_in * up / down)`` outputs in
        all.  Returns a view valid until the next call; :meth:`reset` starts
        a new stream.
        """
        if not self._prepared:
            raise ConfigError("flush() called before prepare()")
        if self._flushed:
            return self._out[:0]
        total = -(-self.samples_in * self.up // self.down)
        before_in, before_out = self.samples_in, self.samples_out
        needed = total - before_out
        if needed <= 0:
            self._flushed = True
            return self._out[:0]
        last_input = ((total - 1) * self.down + self.delay_upsampled) // self.up
        pad = max(0, last_input + 1 - before_in)
        out = self._run(self._zeros[:pad])
        self.samples_in = before_in  # the padding is not input
        self.samples_out = before_out + needed
        self._flushed = True
        return out[:needed]

    def __repr__(self) -> str:
        return (f"Resampler({self.input_rate_hz} Hz -> {self.output_rate_hz} Hz, up={self.up}, down={self.down}, "
                f"passband={self.passband}, stopband_db={self.stopband_db})")


def resample_pcm16(samples: np.ndarray, input_rate_hz: int, output_rate_hz: int, **options) -> np.ndarray:
    """Offline: the whole of ``samples`` resampled (``ceil(n * up / down)`` int16 samples, a new array).

    The same integers as streaming it through :class:`Resampler` in any
    chunking, then :meth:`Resampler.flush`.
    """
    if input_rate_hz == output_rate_hz:
        return np.array(samples, dtype=np.int16, copy=True)
    resampler = Resampler(input_rate_hz, output_rate_hz, **options).prepare()
    head = resampler.process(samples).copy()
    return np.concatenate([head, resampler.flush()])
