"""The log-mel vector of ``arm_mfcc_q15``, composed from the cmsisdsp wheel's own functions.

The wheel has no log-mel entry point; this calls its primitives in the order
``arm_mfcc_q15`` does (CMSIS-DSP 1.10, RFFT path), so every integer comes from
the firmware library.  Only the glue (the rounding offset, the saturation
shift and the final cast) is written here, from the C source.  Slow and
readable: one frame per call.
"""

from __future__ import annotations

import numpy as np

import cmsisdsp

MICRO_Q15 = 0x219
SHIFT_MELFILTER_SATURATION_Q15 = 10
LOG2TOLOG_Q15 = 0x02C5C860


def _ssat31(v: int) -> int:
    return max(-(2**31), min(2**31 - 1, v))


def logmel_q15(frame: np.ndarray, window, filter_pos, filter_len, filter_coefs) -> np.ndarray:
    fft_len = frame.shape[0]
    src = frame.astype(np.int16).copy()
    m, _ = cmsisdsp.arm_absmax_q15(src)
    m = int(m)
    normalised = m not in (0, 0x7FFF)
    if normalised:
        status, quotient, shift = cmsisdsp.arm_divide_q15(0x7FFF, m)
        assert status == 0
        src = cmsisdsp.arm_scale_q15(src, quotient, shift)
    src = cmsisdsp.arm_mult_q15(src, np.asarray(window, np.int16))
    inst = cmsisdsp.arm_rfft_instance_q15()
    assert cmsisdsp.arm_rfft_init_q15(inst, fft_len, 0, 1) == 0
    spectrum = cmsisdsp.arm_rfft_q15(inst, src)
    mag = cmsisdsp.arm_cmplx_mag_q15(spectrum[: fft_len + 2])
    fft_shift = fft_len.bit_length() - 1
    mel = np.zeros(len(filter_pos), np.int32)
    pos_c = 0
    for i, (pos, length) in enumerate(zip(filter_pos, filter_len)):
        pos, length = int(pos), int(length)
        if length:
            acc = int(cmsisdsp.arm_dot_prod_q15(mag[pos:pos + length].copy(),
                                                np.asarray(filter_coefs[pos_c:pos_c + length], np.int16)))
        else:
            acc = 0
        pos_c += length
        mel[i] = _ssat31((acc + MICRO_Q15) >> SHIFT_MELFILTER_SATURATION_Q15)
    if normalised:
        mel = cmsisdsp.arm_scale_q31(mel, m << 16, 0)
    mel = cmsisdsp.arm_vlog_q31(mel)
    mel = cmsisdsp.arm_offset_q31(mel, (fft_shift + 2 + SHIFT_MELFILTER_SATURATION_Q15) * LOG2TOLOG_Q15)
    mel = cmsisdsp.arm_shift_q31(mel, -19)
    return mel.astype(np.int64).astype(np.int16)  # (q15_t) cast: keep the low 16 bits


def mfcc_q15(frame: np.ndarray, tables, fft_len: int) -> np.ndarray:
    """``arm_mfcc_q15`` of the wheel itself (instance from ``arm_mfcc_init_q15``)."""
    inst = cmsisdsp.arm_mfcc_instance_q15()
    status = cmsisdsp.arm_mfcc_init_q15(
        inst, fft_len, tables.n_mels, tables.n_dct, tables.dct_q15.ravel(),
        tables.filter_pos, tables.filter_len, tables.filter_coefs_q15, tables.window_q15,
    )
    assert status == 0
    tmp = np.zeros(2 * fft_len + 2, np.int32)
    status, out = cmsisdsp.arm_mfcc_q15(inst, frame.astype(np.int16).copy(), tmp)
    assert status == 0
    return out
