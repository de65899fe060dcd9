"""RingBuffer: FIFO order, contiguous views across the wrap, newest-dropped overflow, SPSC threads, no allocation."""

import threading
import time
import tracemalloc
from collections import deque

import numpy as np
import pytest

from sed_runtime.errors import AudioFormatError, ConfigError
from sed_runtime.stream.ring_buffer import RingBuffer


def _ramp(start, n):
    return ((np.arange(start, start + n) % 65536) - 32768).astype(np.int16)


@pytest.mark.parametrize("capacity", [0, -3, 2.5, True, None])
def test_capacity_must_be_positive_integer(capacity):
    with pytest.raises(ConfigError, match=r"capacity_samples=.* must be a positive integer"):
        RingBuffer(capacity)


def test_write_refuses_other_dtypes_and_shapes():
    ring = RingBuffer(8)
    with pytest.raises(AudioFormatError, match=r"1-D int16 samples, got dtype=float32 ndim=1"):
        ring.write(np.zeros(3, np.float32))
    with pytest.raises(AudioFormatError, match=r"ndim=2"):
        ring.write(np.zeros((3, 1), np.int16))


@pytest.mark.parametrize("capacity", [1, 5, 160, 1000])
def test_matches_a_fifo_model_and_views_are_contiguous(capacity):
    """Seeded random writes/reads against a deque; every peek is one slice of the doubled storage."""
    rng = np.random.default_rng(capacity)
    ring = RingBuffer(capacity)
    model = deque()
    produced = 0
    dropped = events = 0
    for _ in range(3000):
        if rng.random() < 0.55:
            n = int(rng.integers(0, 2 * capacity + 2))
            block = _ramp(produced, n)
            produced += n
            stored = ring.write(block)
            fit = min(n, capacity - len(model))
            assert stored == fit
            model.extend(block[:fit].tolist())  # the oldest of the block are kept, the newest dropped
            if fit < n:
                dropped += n - fit
                events += 1
        else:
            n = int(rng.integers(0, len(model) + 1))
            view = ring.peek(n)
            assert view.shape == (n,)
            assert view.base is ring._storage and view.flags.c_contiguous  # a view, never a copy
            assert not view.flags.writeable
            np.testing.assert_array_equal(view, np.array([model[i] for i in range(n)], np.int16))
            ring.consume(n)
            for _ in range(n):
                model.popleft()
        assert ring.readable() == len(model)
        assert ring.writable() == capacity - len(model)
        assert (ring.overrun_samples, ring.overrun_events) == (dropped, events)
        # the doubled-storage invariant: slot i and slot i + capacity hold the same sample
        np.testing.assert_array_equal(ring._storage[:capacity], ring._storage[capacity:])
    assert ring.total_consumed + ring.readable() == ring.total_written


def test_full_window_readable_at_every_wrap_position():
    capacity = 7
    ring = RingBuffer(capacity)
    for offset in range(3 * capacity):
        ring.write(_ramp(offset * 100, capacity))
        np.testing.assert_array_equal(ring.peek(capacity), _ramp(offset * 100, capacity))
        ring.consume(capacity)
        ring.write(_ramp(0, offset % capacity))  # move the write position around
        ring.clear()


def test_overflow_drops_newest_and_keeps_buffered_audio():
    ring = RingBuffer(10)
    assert ring.write(_ramp(0, 6)) == 6
    view = ring.peek(6)
    assert ring.write(_ramp(6, 8)) == 4  # 4 fit, the 4 newest are dropped
    np.testing.assert_array_equal(view, _ramp(0, 6))  # a window being read is not overwritten
    np.testing.assert_array_equal(ring.peek(10), _ramp(0, 10))
    assert (ring.overrun_samples, ring.overrun_events) == (4, 1)
    assert ring.write(_ramp(99, 3)) == 0
    assert (ring.overrun_samples, ring.overrun_events) == (7, 2)
    assert "overrun_samples=7, overrun_events=2" in repr(ring)


def test_peek_and_consume_beyond_readable_are_refused():
    ring = RingBuffer(4)
    ring.write(_ramp(0, 3))
    with pytest.raises(ConfigError, match=r"peek\(n=4\) needs 0 <= n <= 3"):
        ring.peek(4)
    with pytest.raises(ConfigError, match=r"consume\(n=-1\) needs 0 <= n <= 3"):
        ring.consume(-1)


def test_producer_thread_and_consumer_see_one_consistent_stream():
    """A real producer thread in small irregular blocks; the consumer reads with a lag.

    What the consumer reads equals, in order, exactly the samples the
    producer reported as stored; everything else is counted as dropped.
    """
    capacity = 256
    ring = RingBuffer(capacity)
    rng = np.random.default_rng(5)
    sizes = rng.integers(1, 97, 4000)
    stored_blocks = []
    done = threading.Event()

    def produce():
        pos = 0
        for i, n in enumerate(sizes):
            block = _ramp(pos, int(n))
            pos += int(n)
            stored = ring.write(block)
            stored_blocks.append(block[:stored].copy())
            if i % 50 == 0:
                time.sleep(0.0005)
        done.set()

    got = []
    thread = threading.Thread(target=produce)
    thread.start()
    consumer_rng = np.random.default_rng(6)
    while True:
        finished = done.is_set()
        n = ring.readable()
        if n:
            take = int(consumer_rng.integers(1, n + 1))
            got.append(ring.peek(take).copy())
            ring.consume(take)
            continue
        if finished:
            break
        time.sleep(0.0001)
    thread.join()
    expected = np.concatenate(stored_blocks)
    np.testing.assert_array_equal(np.concatenate(got), expected)
    assert ring.overrun_samples == int(sizes.sum()) - expected.shape[0]
    assert ring.total_written == expected.shape[0]


def test_steady_state_allocates_nothing():
    ring = RingBuffer(4000)
    block = _ramp(0, 160)

    def hop():
        ring.write(block)
        view = ring.peek(ring.readable())
        int(view[0])
        ring.consume(view.shape[0])

    for _ in range(100):
        hop()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(5000):
            hop()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert current - base <= 512, f"traced memory grew by {current - base} bytes over 5000 hops"
    assert peak - base < 2 * block.nbytes, f"a hop allocated {peak - base} bytes at its peak"
