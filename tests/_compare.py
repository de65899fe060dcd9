"""Bit-exact comparison of integer results, reported like CMSIS-NN's ``validate.h``.

A failure names the first differing positions with both values and the count,
e.g. ``mult_q15 n=18: pos 3: act -128 ref -127; pos 9: act 5 ref 4; 2 of 18 differ``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["assert_equal_ints"]

_SHOWN = 8  # differing positions listed in the message


def _as_int_array(value, role: str, what: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iub":
        raise TypeError(f"{what}: {role} has dtype {arr.dtype}; expected integers")
    return arr


def assert_equal_ints(actual, expected, what: str) -> None:
    """Assert two integer arrays (or scalars) are identical in shape and value.

    ``what`` names the check (kernel, case, length).  Positions are flat
    indices for 1-D data and index tuples otherwise.  Values are compared
    exactly, whatever the two integer dtypes are.
    """
    act = _as_int_array(actual, "actual", what)
    ref = _as_int_array(expected, "expected", what)
    if act.shape != ref.shape:
        raise AssertionError(f"{what}: shape act {act.shape} ref {ref.shape}")
    differ = act != ref
    count = int(np.count_nonzero(differ))
    if count == 0:
        return
    positions = np.argwhere(differ)[:_SHOWN]
    parts = []
    for pos in positions:
        key = tuple(int(p) for p in pos)
        values = f"act {int(act[key])} ref {int(ref[key])}"
        if not key:  # a scalar
            parts.append(values)
        else:
            parts.append(f"pos {key[0] if len(key) == 1 else key}: {values}")
    more = "; ..." if count > _SHOWN else ""
    raise AssertionError(f"{what}: {'; '.join(parts)}{more}; {count} of {act.size} differ")
