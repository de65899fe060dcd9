"""The feature window hands out the last N frames, every stride, as one view."""

import numpy as np
import pytest

from sed_runtime.errors import ConfigError
from sed_runtime.stream.feature_window import FeatureWindow


@pytest.mark.parametrize("window,stride", [(49, 1), (49, 10), (5, 5), (1, 3), (8, 12)])
def test_windows_equal_slices_of_the_frame_stream(window, stride):
    frames = np.arange(200 * 3, dtype=np.int64).reshape(200, 3).astype(np.int16)
    fw = FeatureWindow(window, 3, stride, dtype=np.int16)
    got = []
    for k, frame in enumerate(frames):
        if fw.push(frame):
            view = fw.window()
            assert view.flags.c_contiguous and fw.last_frame_index == k
            got.append((k, view.copy()))
    expected_ends = list(range(window - 1, 200, stride))
    assert [k for k, _ in got] == expected_ends
    for k, view in got:
        assert np.array_equal(view, frames[k - window + 1:k + 1])


def test_zero_filled_start_runs_from_the_first_stride():
    fw = FeatureWindow(4, 2, 2, dtype=np.int8, start_when_full=False, fill_value=-128)
    assert not fw.push(np.ones(2, np.int8))
    assert fw.push(np.full(2, 2, np.int8))
    assert np.array_equal(fw.window()[:, 0], [-128, -128, 1, 2])
    fw.reset()
    assert fw.frames_seen == 0 and (fw.window() == -128).all()


def test_bad_sizes():
    with pytest.raises(ConfigError, match="stride_frames=0"):
        FeatureWindow(4, 2, 0)
