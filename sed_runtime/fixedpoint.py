"""Fixed-point scalar helpers shared by every kernel.

All helpers are Numba-compiled scalar functions usable both from Python and
from inside other kernels.  Integer widths are explicit: Numba widens small
integers to int64, so nothing here relies on C's implicit wrap-around; where C
wraps or saturates, the helper says so and does it explicitly.

Naming: ``_q15`` / ``_q31`` for the fixed-point formats, ``ssat`` after the
Arm instruction, ``wrap_*`` for C's modular truncation to a narrower type.
"""

from __future__ import annotations

import numpy as np

from sed_runtime._numba import njit

Q15_MAX = 32767
Q15_MIN = -32768
Q31_MAX = 2147483647
Q31_MIN = -2147483648


@njit(inline="always")
def sat_q15(x):
    """Saturate an integer to int16 range.

    Mirrors: CMSIS ``__SSAT(x, 16)``.
    Scaling and overflow: none; clamps to [-32768, 32767].
    Assumptions: x fits in int64.
    """
    if x > 32767:
        return np.int64(32767)
    if x < -32768:
        return np.int64(-32768)
    return np.int64(x)


@njit(inline="always")
def sat_q31(x):
    """Saturate an integer to int32 range.

    Mirrors: CMSIS ``__SSAT(x, 32)`` / ``clip_q63_to_q31``.
    Scaling and overflow: none; clamps to [-2**31, 2**31 - 1].
    Assumptions: x fits in int64.
    """
    if x > 2147483647:
        return np.int64(2147483647)
    if x < -2147483648:
        return np.int64(-2147483648)
    return np.int64(x)


@njit(inline="always")
def ssat(x, bits):
    """Saturate to a signed ``bits``-bit range.

    Mirrors: Arm ``SSAT`` / CMSIS ``__SSAT(x, bits)``.
    Scaling and overflow: clamps to [-2**(bits-1), 2**(bits-1) - 1].
    Assumptions: 1 <= bits <= 63, x fits in int64.
    """
    hi = (np.int64(1) << (bits - 1)) - 1
    lo = -hi - 1
    if x > hi:
        return hi
    if x < lo:
        return lo
    return np.int64(x)


@njit(inline="always")
def wrap_i16(x):
    """Truncate to int16 as a C cast does (two's-complement wrap).

    Mirrors: ``(q15_t)x`` / ``(int16_t)x`` in C.
    Scaling and overflow: keeps the low 16 bits, sign-extended.
    """
    return np.int64(((np.int64(x) + 32768) & 0xFFFF) - 32768)


@njit(inline="always")
def wrap_i32(x):
    """Truncate to int32 as a C cast does (two's-complement wrap).

    Mirrors: ``(q31_t)x`` / ``(int32_t)x`` in C, and the modulo-2**32 result of
    32-bit multiply-accumulate instructions (``SMLAD`` and friends).
    Scaling and overflow: keeps the low 32 bits, sign-extended.
    """
    return np.int64(((np.int64(x) + 2147483648) & 0xFFFFFFFF) - 2147483648)


@njit(inline="always")
def clz32(x):
    """Count leading zeros of a 32-bit unsigned value.

    Mirrors: Arm ``CLZ`` / CMSIS ``__CLZ``.  ``clz32(0) == 32``.
    Assumptions: 0 <= x < 2**32.
    """
    if x == 0:
        return np.int64(32)
    n = np.int64(0)
    v = np.int64(x)
    while (v & 0x80000000) == 0:
        v <<= 1
        n += 1
    return n
