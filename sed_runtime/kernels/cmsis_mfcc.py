"""CMSIS-DSP ``arm_mfcc_q15``, and the log-mel it computes before its DCT.

One frame goes through, in this order (Q formats after each step as in the
CMSIS source):

1. ``arm_absmax_q15``; unless the peak is 0 or 0x7FFF, normalise the frame to
   full scale with ``arm_divide_q15(0x7FFF, m)`` and ``arm_scale_q15``   # q15
2. ``arm_mult_q15`` by the window                                           # q15
3. ``arm_rfft_q15`` (N points)                                              # q15 - fftShift
4. ``arm_cmplx_mag_q15`` over N/2 + 1 bins                                  # q14 - fftShift
5. per filter ``arm_dot_prod_q15`` + ``MICRO_Q15``, ``>> 10``, ``__SSAT(.,31)``  # q34.29 - fftShift - 10
6. undo the normalisation: ``arm_scale_q31(tmp, m << 16, 0)``
7. ``arm_vlog_q31``                                                          # q5.26
8. ``arm_offset_q31`` by ``(fftShift + 2 + 10) * ln(2)`` in q5.26, ``arm_shift_q31(-19)``  # q8.7
9. ``(q15_t)`` cast (the CMSIS ``__SSAT(..., 16)`` after the cast is a no-op)
10. MFCC only: ``arm_mat_vec_mult_q15`` by the DCT matrix                     # q8.7

Steps 1-9 are the *log-mel* frame (``n_mels`` q8.7 values) that most
sound-event CNNs consume; step 10 gives ``arm_mfcc_q15``'s output.

Mirrors: ``arm_mfcc_q15`` from CMSIS-DSP 1.10 (RFFT path: no
``ARM_MFCC_USE_CFFT``, no Neon).  The two arithmetic targets differ only
inside ``arm_rfft_q15`` (see :mod:`sed_runtime.kernels.cmsis_fft`).
"""

from __future__ import annotations

import numpy as np

from sed_runtime._numba import njit
from sed_runtime.fixedpoint import multiply_by_quantized_multiplier, sat_q31, wrap_i16
from sed_runtime.kernels.cmsis_dsp import (
    arm_absmax_q15,
    arm_cmplx_mag_q15,
    arm_divide_q15,
    arm_dot_prod_q15,
    arm_mat_vec_mult_q15,
    arm_mult_q15,
    arm_offset_q31,
    arm_scale_q15,
    arm_scale_q31,
    arm_shift_q31,
    arm_vlog_q31,
)
from sed_runtime.kernels.cmsis_fft import arm_rfft_q15

__all__ = ["MICRO_Q15", "SHIFT_MELFILTER_SATURATION_Q15", "LOG2TOLOG_Q15", "logmel_q15", "frames_q15", "drop_front"]

MICRO_Q15 = 0x219  # rounding offset added to each mel energy before the shift
SHIFT_MELFILTER_SATURATION_Q15 = 10  # headroom shift of the mel energies
LOG2TOLOG_Q15 = 0x02C5C860  # ln(2) in q5.26


@njit
def logmel_q15(frame, window, fft_out, mag, mel_q31, dst,
               cfft_twiddles, swaps, split_a, split_b, split_modifier, dsp,
               filter_pos, filter_len, filter_coefs):
    """The q8.7 log-mel vector ``arm_mfcc_q15`` hands to its DCT.

    Mirrors: arm_mfcc_q15 up to (not including) arm_mat_vec_mult_q15.
    Scaling and overflow: see the module docstring, step by step.  The final
    ``(q15_t)`` cast truncates; values stay in [-1100, 800] for every input, so
    nothing wraps in practice.
    Assumptions: ``frame`` holds fft_len int16 and is overwritten (scratch);
    ``fft_out`` holds 2*fft_len, ``mag`` fft_len//2 + 1, ``mel_q31`` and ``dst``
    n_mels values; tables from sed_runtime.frontend.cmsis_tables.
    """
    fft_len = frame.shape[0]
    n_mels = dst.shape[0]
    m, _ = arm_absmax_q15(frame)
    normalised = m != 0 and m != 0x7FFF
    if normalised:
        _, quotient, shift = arm_divide_q15(0x7FFF, m)
        arm_scale_q15(frame, quotient, shift, frame)  # q15
    arm_mult_q15(frame, window, frame)  # q15
    fft_shift = np.int64(0)
    n = fft_len
    while n > 1:
        n >>= 1
        fft_shift += 1
    arm_rfft_q15(frame, fft_out, cfft_twiddles, swaps, split_a, split_b, split_modifier, dsp)  # q15 - fft_shift
    arm_cmplx_mag_q15(fft_out, mag)  # q14 - fft_shift
    coefs_pos = 0
    for i in range(n_mels):
        start = filter_pos[i]
        length = filter_len[i]
        acc = arm_dot_prod_q15(mag[start:start + length], filter_coefs[coefs_pos:coefs_pos + length])
        coefs_pos += length
        # q34.29 - fft_shift
        acc = (acc + MICRO_Q15) >> SHIFT_MELFILTER_SATURATION_Q15
        mel_q31[i] = sat_q31(acc)  # q34.29 - fft_shift - 10, saturated to 32 bits
    if normalised:
        arm_scale_q31(mel_q31, np.int64(m) << 16, 0, mel_q31)
    arm_vlog_q31(mel_q31, mel_q31)  # q5.26
    log_exponent = (fft_shift + 2 + SHIFT_MELFILTER_SATURATION_Q15) * LOG2TOLOG_Q15
    arm_offset_q31(mel_q31, log_exponent, mel_q31)
    arm_shift_q31(mel_q31, -19, mel_q31)  # q8.7
    for i in range(n_mels):
        dst[i] = wrap_i16(mel_q31[i])


@njit
def frames_q15(samples, n_frames, hop, window_len, frame, window, fft_out, mag, mel_q31, logmel,
               cfft_twiddles, swaps, split_a, split_b, split_modifier, dsp,
               filter_pos, filter_len, filter_coefs, dct, quant_multiplier, quant_shift, quant_zero_point,
               out_q15, out_s8):
    """Log-mel or MFCC frames of ``n_frames`` windows of ``samples``, hop ``hop``.

    Frame k uses samples[k*hop : k*hop + window_len], zero-padded to fft_len.
    ``dct.shape[0] == 0`` selects log-mel, otherwise MFCC.  When ``out_s8`` has
    rows, each frame is also quantized to int8 (TFLM requantization, double
    rounding: ``multiply_by_quantized_multiplier`` + zero point, saturated).
    Writes rows ``0..n_frames-1`` of ``out_q15`` (and ``out_s8``); allocates nothing.
    """
    fft_len = frame.shape[0]
    bins = out_q15.shape[1]
    quantize = out_s8.shape[0] > 0
    for k in range(n_frames):
        base = k * hop
        for i in range(window_len):
            frame[i] = samples[base + i]
        for i in range(window_len, fft_len):
            frame[i] = 0
        logmel_q15(frame, window, fft_out, mag, mel_q31, logmel,
                   cfft_twiddles, swaps, split_a, split_b, split_modifier, dsp,
                   filter_pos, filter_len, filter_coefs)
        row = out_q15[k]
        if dct.shape[0] > 0:
            arm_mat_vec_mult_q15(dct, logmel, row, dsp)
        else:
            for i in range(bins):
                row[i] = logmel[i]
        if quantize:
            qrow = out_s8[k]
            for i in range(bins):
                q = multiply_by_quantized_multiplier(np.int64(row[i]), quant_multiplier, quant_shift) + quant_zero_point
                if q > 127:
                    q = 127
                elif q < -128:
                    q = -128
                qrow[i] = q


@njit
def drop_front(buf, drop, fill):
    """Move ``buf[drop:fill]`` to the front of ``buf`` in place; return the new fill.

    A forward element copy (safe because the destination precedes the
    source), so no temporary is allocated.
    """
    rest = fill - drop
    for i in range(rest):
        buf[i] = buf[drop + i]
    return rest
