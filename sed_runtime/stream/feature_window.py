"""Sliding window of feature frames: the model's input, read without copying.

Frames arrive one hop at a time; every ``stride_frames`` frames the last
``window_frames`` frames are the model's input.  Storage is doubled (each
frame is written at ``i`` and ``i + window_frames``), so the current window is
always one contiguous view -- the layout TFLM's ``signal`` circular buffer
uses.

Start-up: with ``start_when_full=True`` (default) the first window is handed
out once ``window_frames`` frames exist; with ``False`` the window starts
filled with ``fill_value`` (firmware that zero-initialises its feature buffer
and runs from the first stride).
"""

from __future__ import annotations

import numpy as np

from sed_runtime.errors import ConfigError

__all__ = ["FeatureWindow"]


class FeatureWindow:
    def __init__(self, window_frames: int, bins: int, stride_frames: int, dtype=np.int8,
                 start_when_full: bool = True, fill_value: int = 0) -> None:
        for name, value in (("window_frames", window_frames), ("bins", bins), ("stride_frames", stride_frames)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ConfigError(f"{name}={value!r} must be a positive integer")
        self.window_frames = int(window_frames)
        self.bins = int(bins)
        self.stride_frames = int(stride_frames)
        self.start_when_full = start_when_full
        self.fill_value = fill_value
        self._store = np.empty((2 * self.window_frames, self.bins), dtype=dtype)
        self.reset()

    def reset(self) -> None:
        self._store[:] = self.fill_value
        self._pos = 0  # next row to write, in [0, window_frames)
        self.frames_seen = 0
        self._since = 0

    def push(self, frame: np.ndarray) -> bool:
        """Append one frame; True when a new window is ready (read it with :meth:`window`)."""
        w = self.window_frames
        self._store[self._pos] = frame
        self._store[self._pos + w] = frame
        self._pos = self._pos + 1 if self._pos + 1 < w else 0
        self.frames_seen += 1
        self._since += 1
        if self.start_when_full and self.frames_seen < w:
            return False
        if self.start_when_full and self.frames_seen == w:
            self._since = 0
            return True
        if self._since >= self.stride_frames:
            self._since = 0
            return True
        return False

    def window(self) -> np.ndarray:
        """The last ``window_frames`` frames, oldest first ([window_frames, bins], a view)."""
        return self._store[self._pos:self._pos + self.window_frames]

    @property
    def last_frame_index(self) -> int:
        """Stream index of the newest frame in the window."""
        return self.frames_seen - 1
