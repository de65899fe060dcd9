"""CMSIS-DSP q15 real FFT, bit for bit, for both Cortex-M arithmetic paths.

``arm_rfft_q15`` (forward, lengths 32..8192) runs an ``N/2``-point complex FFT
in place on the real input seen as interleaved complex numbers, then the
split step ``arm_split_rfft_q15`` that turns it into ``N/2 + 1`` bins (and the
mirrored conjugate bins, which CMSIS also writes: the output holds ``2N``
values).

The complex FFT is a radix-4 decimation-in-frequency transform (lengths that
are powers of 4) or one radix-2 stage followed by two radix-4 halves
("radix4by2", the other powers of 2), then a bit-reversal permutation.

Two firmware paths, selected by ``dsp``:

* ``dsp=False`` -- the plain C path of CMSIS-DSP (Cortex-M0/M0+/M3, and the
  host-built ``cmsisdsp`` Python wheel).  Halving additions shift each operand
  first: ``(a >> 1) + (b >> 1)``.  The radix-2 stage rounds each product
  separately: ``(x*c >> 16) + (y*s >> 16)``.
* ``dsp=True`` -- the ``ARM_MATH_DSP`` path (Cortex-M4/M7).  Halving
  additions are the SIMD ``SHADD16``/``SHSUB16``/``SHASX``/``SHSAX``
  instructions, which add at full precision and shift once: ``(a + b) >> 1``.
  The radix-2 stage uses ``SMUAD``/``SMUSDX`` and sums both products before
  the shift: ``(x*c + y*s) >> 16``.

Everything else (saturating adds, twiddle multiplies of the radix-4 stages,
the split step) is the same on both paths.

Scaling (both paths): the complex FFT of length L scales by 1/L (output in
q(15 - log2 L) relative to a true DFT of the q15 input); the split step
halves again, so ``arm_rfft_q15`` of length N outputs the DFT scaled by
1/N.  Downstream code tracks this as ``q15 - fftShift``.

Mirrors: ``arm_rfft_q15``, ``arm_split_rfft_q15``, ``arm_cfft_q15``,
``arm_cfft_radix4by2_q15``, ``arm_radix4_butterfly_q15``,
``arm_bitreversal_16`` from CMSIS-DSP 1.10 (``Source/TransformFunctions``),
little-endian, without MVE or Neon.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sed_runtime._numba import njit
from sed_runtime.errors import ConfigError
from sed_runtime.fixedpoint import sat_q15, wrap_i16, wrap_i32

__all__ = [
    "RFFT_LENGTHS",
    "RfftQ15Tables",
    "rfft_q15_tables",
    "cfft_twiddles_q15",
    "rfft_split_twiddles_q15",
    "bit_reversal_swaps",
    "arm_cfft_q15",
    "arm_split_rfft_q15",
    "arm_rfft_q15",
    "rfft_q15",
]

RFFT_LENGTHS = (32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
_SPLIT_TABLE_POINTS = 4096  # realCoefA/BQ15 hold 4096 complex values (angles 2*pi*i/8192)


# --------------------------------------------------------------------------
# Tables (built once, at prepare time)
# --------------------------------------------------------------------------

def cfft_twiddles_q15(cfft_len: int) -> np.ndarray:
    """Twiddle table of a q15 complex FFT of length ``cfft_len``.

    ``3*L/4`` interleaved (cos, sin) pairs of ``2*pi*i/L``, converted to q15 by
    ``floor(x * 32768)`` and saturated (cos 0 = 1.0 becomes 32767).  This is
    how CMSIS-DSP's ``twiddleCoef_<L>_q15`` tables were produced (they are the
    q31 tables truncated to 16 bits).  The products lie at least 1e-4 LSB away
    from an integer except where they are exactly 0 or -32768, so the floor
    does not depend on the last bit of the platform's sin/cos.
    """
    i = np.arange(3 * cfft_len // 4, dtype=np.float64)
    angle = 2.0 * np.pi * i / cfft_len
    table = np.empty(2 * i.size, dtype=np.float64)
    table[0::2] = np.cos(angle)
    table[1::2] = np.sin(angle)
    scaled = table * 32768.0
    nearest = np.rint(scaled)
    exact = np.abs(scaled - nearest) < 1e-6  # only the exact 0 and -1.0 points
    scaled = np.where(exact, nearest, np.floor(scaled))
    return np.clip(scaled, -32768, 32767).astype(np.int16)


def rfft_split_twiddles_q15() -> tuple[np.ndarray, np.ndarray]:
    """The split-step coefficient tables ``realCoefAQ15`` and ``realCoefBQ15``.

    For i in 0..4095: A = (0.5*(1 - sin t), -0.5*cos t), B = (0.5*(1 + sin t),
    0.5*cos t) with t = 2*pi*i/8192, rounded to nearest (no product lies on a
    tie) and saturated.  A length-N transform reads every (8192/N)-th pair.
    """
    i = np.arange(_SPLIT_TABLE_POINTS, dtype=np.float64)
    t = 2.0 * np.pi * i / (2 * _SPLIT_TABLE_POINTS)
    a = np.empty(2 * i.size)
    b = np.empty(2 * i.size)
    a[0::2] = 0.5 * (1.0 - np.sin(t))
    a[1::2] = 0.5 * (-np.cos(t))
    b[0::2] = 0.5 * (1.0 + np.sin(t))
    b[1::2] = 0.5 * np.cos(t)
    to_q15 = lambda x: np.clip(np.rint(x * 32768.0), -32768, 32767).astype(np.int16)  # noqa: E731
    return to_q15(a), to_q15(b)


def bit_reversal_swaps(cfft_len: int) -> np.ndarray:
    """Pairs (a, b), a < b, of complex indices that bit reversal swaps.

    Both the radix-4 and the radix4by2 transforms of CMSIS-DSP leave their
    output in binary bit-reversed order (the radix-4 butterfly writes its four
    outputs in the order 0, 2, 1, 3), so the swaps are those of plain
    log2(L)-bit reversal -- the pairs listed in ``armBitRevIndexTable_fixed_<L>``.
    """
    bits = int(cfft_len).bit_length() - 1
    idx = np.arange(cfft_len)
    rev = np.zeros_like(idx)
    for b in range(bits):
        rev |= ((idx >> b) & 1) << (bits - 1 - b)
    mask = idx < rev
    return np.stack([idx[mask], rev[mask]], axis=1).astype(np.int32)


@dataclass(frozen=True)
class RfftQ15Tables:
    """Everything ``arm_rfft_q15`` of one length reads: an immutable instance."""

    fft_len: int
    cfft_twiddles_q15: np.ndarray
    bit_reversal_swaps: np.ndarray
    split_a_q15: np.ndarray
    split_b_q15: np.ndarray
    split_modifier: int


_SPLIT_CACHE: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def rfft_q15_tables(fft_len: int) -> RfftQ15Tables:
    """Build the tables of a q15 real FFT of ``fft_len`` points (``arm_rfft_init_q15``)."""
    if fft_len not in RFFT_LENGTHS:
        raise ConfigError(
            f"fft_len={fft_len} is not a length arm_rfft_q15 supports; expected one of {RFFT_LENGTHS}"
        )
    if "ab" not in _SPLIT_CACHE:
        a, b = rfft_split_twiddles_q15()
        a.setflags(write=False)
        b.setflags(write=False)
        _SPLIT_CACHE["ab"] = (a, b)
    a, b = _SPLIT_CACHE["ab"]
    cfft_len = fft_len // 2
    twiddles = cfft_twiddles_q15(cfft_len)
    swaps = bit_reversal_swaps(cfft_len)
    twiddles.setflags(write=False)
    swaps.setflags(write=False)
    return RfftQ15Tables(fft_len, twiddles, swaps, a, b, (2 * _SPLIT_TABLE_POINTS) // fft_len)


# --------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------

@njit
def _radix4_butterfly_q15(buf, fft_len, coef, modifier, dsp):
    """In-place radix-4 DIF butterflies over ``fft_len`` complex q15 values.

    Mirrors: arm_radix4_butterfly_q15 (both paths; ``dsp`` picks ARM_MATH_DSP).
    Scaling and overflow: first stage pre-shifts inputs by 2 and halves the
    sum once; middle stages halve twice; the last stage halves once.  Sums and
    differences saturate to q15 (SSAT / QADD16 / QSUB16).  Twiddle products
    are summed in 32 bits and shifted right by 16 (floor), then truncated to
    16 bits.
    Assumptions: fft_len is a power of 4 >= 16; coef holds 3*fft_len*modifier/4
    (cos, sin) pairs.
    """
    # ---- first stage: inputs pre-scaled by 1/4 -------------------------------
    n2 = fft_len >> 2
    ic = 0
    for i0 in range(n2):
        i1 = i0 + n2
        i2 = i1 + n2
        i3 = i2 + n2
        t0 = np.int64(buf[2 * i0]) >> 2
        t1 = np.int64(buf[2 * i0 + 1]) >> 2
        s0 = np.int64(buf[2 * i2]) >> 2
        s1 = np.int64(buf[2 * i2 + 1]) >> 2
        r0 = sat_q15(t0 + s0)
        r1 = sat_q15(t1 + s1)
        s0 = sat_q15(t0 - s0)
        s1 = sat_q15(t1 - s1)
        t0 = np.int64(buf[2 * i1]) >> 2
        t1 = np.int64(buf[2 * i1 + 1]) >> 2
        u0 = np.int64(buf[2 * i3]) >> 2
        u1 = np.int64(buf[2 * i3 + 1]) >> 2
        t0 = sat_q15(t0 + u0)
        t1 = sat_q15(t1 + u1)
        if dsp:  # SHADD16(R, T)
            buf[2 * i0] = (r0 + t0) >> 1
            buf[2 * i0 + 1] = (r1 + t1) >> 1
        else:
            buf[2 * i0] = (r0 >> 1) + (t0 >> 1)
            buf[2 * i0 + 1] = (r1 >> 1) + (t1 >> 1)
        r0 = sat_q15(r0 - t0)
        r1 = sat_q15(r1 - t1)
        co2 = np.int64(coef[4 * ic])
        si2 = np.int64(coef[4 * ic + 1])
        # q31 products summed in 32 bits, >> 16, cast to q15
        out1 = wrap_i16(wrap_i32(co2 * r0 + si2 * r1) >> 16)
        out2 = wrap_i16(wrap_i32(co2 * r1 - si2 * r0) >> 16)
        t0 = np.int64(buf[2 * i1]) >> 2
        t1 = np.int64(buf[2 * i1 + 1]) >> 2
        buf[2 * i1] = out1
        buf[2 * i1 + 1] = out2
        u0 = np.int64(buf[2 * i3]) >> 2
        u1 = np.int64(buf[2 * i3 + 1]) >> 2
        t0 = sat_q15(t0 - u0)
        t1 = sat_q15(t1 - u1)
        r0 = sat_q15(s0 - t1)
        r1 = sat_q15(s1 + t0)
        s0 = sat_q15(s0 + t1)
        s1 = sat_q15(s1 - t0)
        co1 = np.int64(coef[2 * ic])
        si1 = np.int64(coef[2 * ic + 1])
        buf[2 * i2] = wrap_i16(wrap_i32(co1 * s0 + si1 * s1) >> 16)
        buf[2 * i2 + 1] = wrap_i16(wrap_i32(co1 * s1 - si1 * s0) >> 16)
        co3 = np.int64(coef[6 * ic])
        si3 = np.int64(coef[6 * ic + 1])
        buf[2 * i3] = wrap_i16(wrap_i32(co3 * r0 + si3 * r1) >> 16)
        buf[2 * i3 + 1] = wrap_i16(wrap_i32(co3 * r1 - si3 * r0) >> 16)
        ic += modifier
    # data is q13 relative to the input (q15 >> 2)

    # ---- middle stages ------------------------------------------------------
    modifier <<= 2
    k = fft_len >> 2
    while k > 4:
        n1 = n2
        n2 >>= 2
        ic = 0
        for j in range(n2):
            co1 = np.int64(coef[2 * ic])
            si1 = np.int64(coef[2 * ic + 1])
            co2 = np.int64(coef[4 * ic])
            si2 = np.int64(coef[4 * ic + 1])
            co3 = np.int64(coef[6 * ic])
            si3 = np.int64(coef[6 * ic + 1])
            ic += modifier
            for i0 in range(j, fft_len, n1):
                i1 = i0 + n2
                i2 = i1 + n2
                i3 = i2 + n2
                t0 = np.int64(buf[2 * i0])
                t1 = np.int64(buf[2 * i0 + 1])
                s0 = np.int64(buf[2 * i2])
                s1 = np.int64(buf[2 * i2 + 1])
                r0 = sat_q15(t0 + s0)
                r1 = sat_q15(t1 + s1)
                s0 = sat_q15(t0 - s0)
                s1 = sat_q15(t1 - s1)
                t0 = np.int64(buf[2 * i1])
                t1 = np.int64(buf[2 * i1 + 1])
                u0 = np.int64(buf[2 * i3])
                u1 = np.int64(buf[2 * i3 + 1])
                t0 = sat_q15(t0 + u0)
                t1 = sat_q15(t1 + u1)
                if dsp:  # SHADD16 twice; SHSUB16
                    buf[2 * i0] = ((r0 + t0) >> 1) >> 1
                    buf[2 * i0 + 1] = ((r1 + t1) >> 1) >> 1
                    r0 = (r0 - t0) >> 1
                    r1 = (r1 - t1) >> 1
                else:
                    buf[2 * i0] = ((r0 >> 1) + (t0 >> 1)) >> 1
                    buf[2 * i0 + 1] = ((r1 >> 1) + (t1 >> 1)) >> 1
                    r0 = (r0 >> 1) - (t0 >> 1)
                    r1 = (r1 >> 1) - (t1 >> 1)
                out1 = wrap_i16(wrap_i32(co2 * r0 + si2 * r1) >> 16)
                out2 = wrap_i16(wrap_i32(co2 * r1 - si2 * r0) >> 16)
                t0 = np.int64(buf[2 * i1])
                t1 = np.int64(buf[2 * i1 + 1])
                buf[2 * i1] = out1
                buf[2 * i1 + 1] = out2
                u0 = np.int64(buf[2 * i3])
                u1 = np.int64(buf[2 * i3 + 1])
                t0 = sat_q15(t0 - u0)
                t1 = sat_q15(t1 - u1)
                if dsp:  # SHASX(S, T) -> R ; SHSAX(S, T) -> S
                    r0 = (s0 - t1) >> 1
                    r1 = (s1 + t0) >> 1
                    s0n = (s0 + t1) >> 1
                    s1n = (s1 - t0) >> 1
                else:
                    r0 = (s0 >> 1) - (t1 >> 1)
                    r1 = (s1 >> 1) + (t0 >> 1)
                    s0n = (s0 >> 1) + (t1 >> 1)
                    s1n = (s1 >> 1) - (t0 >> 1)
                buf[2 * i2] = wrap_i16(wrap_i32(co1 * s0n + si1 * s1n) >> 16)
                buf[2 * i2 + 1] = wrap_i16(wrap_i32(co1 * s1n - si1 * s0n) >> 16)
                buf[2 * i3] = wrap_i16(wrap_i32(co3 * r0 + si3 * r1) >> 16)
                buf[2 * i3 + 1] = wrap_i16(wrap_i32(co3 * r1 - si3 * r0) >> 16)
        modifier <<= 2
        k >>= 2

    # ---- last stage: no twiddles ---------------------------------------------
    for i0 in range(0, fft_len, 4):
        a0 = np.int64(buf[2 * i0])
        a1 = np.int64(buf[2 * i0 + 1])
        b0 = np.int64(buf[2 * i0 + 2])
        b1 = np.int64(buf[2 * i0 + 3])
        c0 = np.int64(buf[2 * i0 + 4])
        c1 = np.int64(buf[2 * i0 + 5])
        d0 = np.int64(buf[2 * i0 + 6])
        d1 = np.int64(buf[2 * i0 + 7])
        r0 = sat_q15(a0 + c0)
        r1 = sat_q15(a1 + c1)
        s0 = sat_q15(a0 - c0)
        s1 = sat_q15(a1 - c1)
        t0 = sat_q15(b0 + d0)
        t1 = sat_q15(b1 + d1)
        u0 = sat_q15(b0 - d0)
        u1 = sat_q15(b1 - d1)
        if dsp:
            buf[2 * i0] = (r0 + t0) >> 1
            buf[2 * i0 + 1] = (r1 + t1) >> 1
            buf[2 * i0 + 2] = (r0 - t0) >> 1
            buf[2 * i0 + 3] = (r1 - t1) >> 1
            buf[2 * i0 + 4] = (s0 + u1) >> 1
            buf[2 * i0 + 5] = (s1 - u0) >> 1
            buf[2 * i0 + 6] = (s0 - u1) >> 1
            buf[2 * i0 + 7] = (s1 + u0) >> 1
        else:
            buf[2 * i0] = (r0 >> 1) + (t0 >> 1)
            buf[2 * i0 + 1] = (r1 >> 1) + (t1 >> 1)
            buf[2 * i0 + 2] = (r0 >> 1) - (t0 >> 1)
            buf[2 * i0 + 3] = (r1 >> 1) - (t1 >> 1)
            buf[2 * i0 + 4] = (s0 >> 1) + (u1 >> 1)
            buf[2 * i0 + 5] = (s1 >> 1) - (u0 >> 1)
            buf[2 * i0 + 6] = (s0 >> 1) - (u1 >> 1)
            buf[2 * i0 + 7] = (s1 >> 1) + (u0 >> 1)


@njit
def _cfft_radix4by2_q15(buf, fft_len, coef, dsp):
    """One radix-2 DIF stage, two radix-4 halves, then a left shift by one.

    Mirrors: arm_cfft_radix4by2_q15.
    Scaling and overflow: inputs halved, sums halved again (q15 -> q13 for the
    upper half); lower half multiplied by the twiddle: the C path shifts each
    product right by 16 and adds the two 16-bit results (truncated to int16),
    the DSP path adds both products in 32 bits and shifts once.  The final
    ``<<= 1`` keeps the low 16 bits (no saturation), as C does.
    Assumptions: fft_len in {32, 128, 512, 2048, 8192}; coef is the
    fft_len-point twiddle table.
    """
    n2 = fft_len >> 1
    for i in range(n2):
        cos_v = np.int64(coef[2 * i])
        sin_v = np.int64(coef[2 * i + 1])
        l = i + n2
        a0 = np.int64(buf[2 * i]) >> 1
        a1 = np.int64(buf[2 * i + 1]) >> 1
        b0 = np.int64(buf[2 * l]) >> 1
        b1 = np.int64(buf[2 * l + 1]) >> 1
        xt = sat_q15(a0 - b0)  # cannot saturate: both operands are q14
        yt = sat_q15(a1 - b1)
        buf[2 * i] = (a0 + b0) >> 1
        buf[2 * i + 1] = (a1 + b1) >> 1
        if dsp:  # SMUAD >> 16 ; SMUSDX high half
            buf[2 * l] = wrap_i16(wrap_i32(cos_v * xt + sin_v * yt) >> 16)
            buf[2 * l + 1] = wrap_i16(wrap_i32(cos_v * yt - sin_v * xt) >> 16)
        else:
            buf[2 * l] = wrap_i16(wrap_i16((xt * cos_v) >> 16) + wrap_i16((yt * sin_v) >> 16))
            buf[2 * l + 1] = wrap_i16(wrap_i16((yt * cos_v) >> 16) - wrap_i16((xt * sin_v) >> 16))

    _radix4_butterfly_q15(buf[: fft_len], n2, coef, 2, dsp)
    _radix4_butterfly_q15(buf[fft_len:], n2, coef, 2, dsp)

    for i in range(2 * fft_len):
        buf[i] = wrap_i16(np.int64(buf[i]) << 1)


@njit
def arm_cfft_q15(buf, fft_len, coef, swaps, dsp):
    """Forward q15 complex FFT in place, output in natural order.

    Mirrors: arm_cfft_q15(S, p1, ifftFlag=0, bitReverseFlag=1).
    Scaling and overflow: output = DFT / fft_len (see the butterflies).
    Assumptions: buf holds 2*fft_len int16 (interleaved re, im); coef and
    swaps come from :func:`rfft_q15_tables` / :func:`cfft_twiddles_q15` and
    :func:`bit_reversal_swaps` for this length.
    """
    # powers of 4 have their single set bit at an even position
    if (fft_len & 0x55555555) != 0:
        _radix4_butterfly_q15(buf, fft_len, coef, 1, dsp)
    else:
        _cfft_radix4by2_q15(buf, fft_len, coef, dsp)
    for p in range(swaps.shape[0]):
        a = 2 * swaps[p, 0]
        b = 2 * swaps[p, 1]
        tmp = buf[a]
        buf[a] = buf[b]
        buf[b] = tmp
        tmp = buf[a + 1]
        buf[a + 1] = buf[b + 1]
        buf[b + 1] = tmp


@njit
def arm_split_rfft_q15(src, half_len, coef_a, coef_b, dst, modifier):
    """Turn an N/2-point complex spectrum of a real signal into its N-point spectrum.

    Mirrors: arm_split_rfft_q15 (identical on the C and DSP paths).
    Scaling and overflow: four q15*q15 products summed modulo 2**32 (as both
    the C code and SMLAD do), arithmetic shift right by 16, truncated to q15;
    the imaginary conjugate is negated after the shift and truncated (-(-32768)
    wraps to -32768).  Bins 0 and N/2 are (re0 +/- im0) >> 1.
    Assumptions: src holds 2*half_len int16, dst 4*half_len int16 (the
    mirrored bins N/2+1..N-1 are written too).
    """
    ia = 2 * modifier
    for i in range(1, half_len):
        x1r = np.int64(src[2 * i])
        x1i = np.int64(src[2 * i + 1])
        x2r = np.int64(src[2 * half_len - 2 * i])
        x2i = np.int64(src[2 * half_len - 2 * i + 1])
        ar = np.int64(coef_a[ia * i])
        ai = np.int64(coef_a[ia * i + 1])
        br = np.int64(coef_b[ia * i])
        bi = np.int64(coef_b[ia * i + 1])
        out_r = wrap_i32(x1r * ar - x1i * ai + x2r * br + x2i * bi) >> 16
        out_i = wrap_i32(x2r * bi - x2i * br + x1i * ar + x1r * ai) >> 16
        dst[2 * i] = wrap_i16(out_r)
        dst[2 * i + 1] = wrap_i16(out_i)
        dst[4 * half_len - 2 * i] = wrap_i16(out_r)
        dst[4 * half_len - 2 * i + 1] = wrap_i16(-out_i)
    s0 = np.int64(src[0])
    s1 = np.int64(src[1])
    dst[2 * half_len] = (s0 - s1) >> 1
    dst[2 * half_len + 1] = 0
    dst[0] = (s0 + s1) >> 1
    dst[1] = 0


@njit
def arm_rfft_q15(src, dst, cfft_twiddles, swaps, split_a, split_b, split_modifier, dsp):
    """Forward q15 real FFT of ``len(src)`` points.

    Mirrors: arm_rfft_q15 with an instance from arm_rfft_init_q15(S, N, 0, 1).
    Like the firmware, it transforms ``src`` in place (src is scratch
    afterwards) and writes 2N int16 to ``dst``: bins 0..N/2 as (re, im), then
    the conjugate mirror N/2+1..N-1.
    Scaling and overflow: output = DFT / N in q15.
    Assumptions: len(src) = N in 32..8192 (power of 2); len(dst) >= 2N.
    """
    half = src.shape[0] >> 1
    arm_cfft_q15(src, half, cfft_twiddles, swaps, dsp)
    arm_split_rfft_q15(src, half, split_a, split_b, dst, split_modifier)


def rfft_q15(x: np.ndarray, target: str = "generic", tables: RfftQ15Tables | None = None) -> np.ndarray:
    """Convenience wrapper: ``arm_rfft_q15`` of one int16 frame, input untouched.

    Returns the 2N int16 values the firmware writes.  ``target`` is ``"generic"``
    (plain C: Cortex-M0/M0+/M3) or ``"dsp"`` (Cortex-M4/M7 DSP extension).
    Allocates; the streaming frontend calls :func:`arm_rfft_q15` on
    preallocated buffers instead.
    """
    x = np.asarray(x)
    if x.dtype != np.int16 or x.ndim != 1:
        raise ConfigError(f"rfft_q15 expects a 1-D int16 frame, got dtype={x.dtype} ndim={x.ndim}")
    tables = tables or rfft_q15_tables(x.shape[0])
    if tables.fft_len != x.shape[0]:
        raise ConfigError(f"frame length {x.shape[0]} does not match the tables' fft_len={tables.fft_len}")
    dsp = _target_is_dsp(target)
    work = x.copy()
    out = np.empty(2 * x.shape[0], dtype=np.int16)
    arm_rfft_q15(work, out, tables.cfft_twiddles_q15, tables.bit_reversal_swaps,
                 tables.split_a_q15, tables.split_b_q15, tables.split_modifier, dsp)
    return out


TARGETS = ("generic", "dsp")


def _target_is_dsp(target: str) -> bool:
    if target not in TARGETS:
        raise ConfigError(f"target={target!r} is not a known arithmetic target; expected one of {TARGETS}")
    return target == "dsp"
