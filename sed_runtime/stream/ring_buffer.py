"""A fixed-capacity int16 ring buffer between an audio callback and the main loop.

Storage is doubled, as in TFLM's ``signal/src/circular_buffer``: every sample
is stored at slot ``i`` and at slot ``i + capacity``.  A window of up to
``capacity`` samples starting at any slot is then one contiguous run of the
storage, so :meth:`RingBuffer.peek` returns a numpy view, never a
concatenation.  The price is one extra copy per write (the mirror).

Positions are two monotonically increasing sample counters: ``written`` (how
many samples the producer has stored since the start) and ``read`` (how many
the consumer has released).  ``written - read`` samples are readable; slot of
stream sample ``k`` is ``k % capacity``.

Overflow: when the consumer falls behind and a write does not fit, the
samples that do not fit (the newest ones) are dropped and counted
(:attr:`RingBuffer.overrun_samples`, :attr:`RingBuffer.overrun_events`).
Dropping the newest keeps what is already buffered intact and contiguous: a
window the consumer is reading is never overwritten under it, and the
detector sees one gap at the point of overflow instead of audio that changes
while it is being read.

Threading (one producer, one consumer, no lock):

- Only the producer (the audio callback thread) calls :meth:`write` and
  changes ``written`` and the overrun counters; only the consumer (the main
  loop) calls :meth:`peek`, :meth:`consume` and :meth:`clear` and changes
  ``read``.
- The producer copies samples into the free slots first and publishes them
  afterwards with one store of ``written``; the consumer publishes freed slots
  with one store of ``read`` after it has finished with them.  Each counter is
  a Python int attribute: a load or store of it is a single bytecode
  operation, atomic under CPython's global interpreter lock.
- Ordering: the store of the counter comes after the copy in the producer's
  program order, and a thread hands the data to another only through the GIL,
  whose release and acquisition are a mutex release and acquisition (full
  memory barriers).  A consumer that loads the new ``written`` therefore also
  sees the samples it covers, including when numpy released the GIL during a
  large copy (the copy has completed before the producer's next bytecode).
  The same argument covers ``read`` in the other direction.
- A stale counter is always a safe one: a producer that sees an old ``read``
  under-estimates the free space (it may drop samples it could have kept,
  never overwrite unread ones); a consumer that sees an old ``written``
  under-estimates what is readable.
- The producer writes stream samples ``[written, written + n)`` with
  ``written + n <= read + capacity``; the consumer reads
  ``[read, written)``.  The two ranges are disjoint modulo ``capacity``, so
  neither copy of a slot the consumer is reading is touched.

On a free-threaded CPython build (no GIL) the atomicity argument above does
not hold as stated; this module assumes a GIL build.

Steady state allocates no numpy data: writes copy into the fixed storage, and
:meth:`peek` returns a view of it (a small view object, freed when dropped).
"""

from __future__ import annotations

import numpy as np

from sed_runtime.errors import AudioFormatError, ConfigError

__all__ = ["RingBuffer"]


class RingBuffer:
    """Single-producer / single-consumer int16 FIFO of ``capacity_samples`` samples.

    The producer calls :meth:`write` (never blocks, never raises on valid
    input); the consumer calls :meth:`readable`, :meth:`peek` and
    :meth:`consume`.  See the module docstring for the threading contract.
    """

    def __init__(self, capacity_samples: int) -> None:
        if isinstance(capacity_samples, bool) or not isinstance(capacity_samples, (int, np.integer)) \
                or capacity_samples < 1:
            raise ConfigError(f"capacity_samples={capacity_samples!r} must be a positive integer")
        self.capacity_samples = int(capacity_samples)
        self._storage = np.zeros(2 * self.capacity_samples, np.int16)
        self._written = 0  # producer-owned: samples stored since the start
        self._read = 0  # consumer-owned: samples released since the start
        self.overrun_samples = 0  # producer-owned: samples dropped because the buffer was full
        self.overrun_events = 0  # producer-owned: writes that dropped at least one sample

    # ------------------------------------------------------------------ producer side
    def write(self, samples: np.ndarray) -> int:
        """Store as many of ``samples`` (1-D int16) as fit; return how many were stored.

        Samples that do not fit are the newest: they are dropped and counted
        in :attr:`overrun_samples` (and the write in :attr:`overrun_events`).
        """
        if samples.dtype != np.int16 or samples.ndim != 1:
            raise AudioFormatError(
                f"RingBuffer.write expects 1-D int16 samples, got dtype={samples.dtype} ndim={samples.ndim}"
            )
        capacity = self.capacity_samples
        written = self._written
        free = capacity - (written - self._read)  # one load of the consumer's counter
        n = samples.shape[0]
        if n > free:
            self.overrun_samples += n - free
            self.overrun_events += 1
            n = free
        if n == 0:
            return 0
        slot = written % capacity
        end = slot + n  # <= 2 * capacity: the run fits in the doubled storage as it is
        storage = self._storage
        storage[slot:end] = samples[:n]
        # Mirror: the part in the first half also goes capacity later, the part
        # that ran into the second half also goes capacity earlier.
        if end <= capacity:
            storage[slot + capacity:end + capacity] = samples[:n]
        else:
            first = capacity - slot
            storage[slot + capacity:] = samples[:first]
            storage[:end - capacity] = samples[first:n]
        self._written = written + n  # publish after the copy
        return n

    # ------------------------------------------------------------------ consumer side
    def readable(self) -> int:
        """Samples stored and not yet consumed."""
        return self._written - self._read

    def writable(self) -> int:
        """Free space, in samples, as seen now."""
        return self.capacity_samples - (self._written - self._read)

    def peek(self, n: int) -> np.ndarray:
        """The ``n`` oldest unconsumed samples as one contiguous read-only view.

        The view stays valid until those samples are released with
        :meth:`consume` (or :meth:`clear`); the producer does not touch them
        before.
        """
        available = self._written - self._read
        if not 0 <= n <= available:
            raise ConfigError(f"peek(n={n}) needs 0 <= n <= {available} (the samples readable now)")
        slot = self._read % self.capacity_samples
        view = self._storage[slot:slot + n]
        view.flags.writeable = False
        return view

    def consume(self, n: int) -> None:
        """Release the ``n`` oldest samples (after reading them)."""
        available = self._written - self._read
        if not 0 <= n <= available:
            raise ConfigError(f"consume(n={n}) needs 0 <= n <= {available} (the samples readable now)")
        self._read += n

    def clear(self) -> None:
        """Release everything readable now (consumer side)."""
        self._read = self._written

    # ------------------------------------------------------------------ counters
    @property
    def total_written(self) -> int:
        """Samples stored since the start (dropped samples not included)."""
        return self._written

    @property
    def total_consumed(self) -> int:
        """Samples released by the consumer since the start."""
        return self._read

    def __repr__(self) -> str:
        return (f"RingBuffer(capacity_samples={self.capacity_samples}, readable={self.readable()}, "
                f"overrun_samples={self.overrun_samples}, overrun_events={self.overrun_events})")
