/*
 * Host-side entry points of the sed-runtime CMSIS-DSP test oracle.
 *
 * This file is compiled by tests/firmware/cmsis_host.py together with the
 * CMSIS-DSP sources (downloaded at test time, never stored in this repository)
 * into a shared library for the build machine.  It only calls the CMSIS-DSP
 * API; the instances live here so that Python (ctypes) never needs to know
 * their layout.
 *
 * sedh_logmel_q15() returns the intermediate that arm_mfcc_q15 (non-Neon,
 * RFFT path) hands to arm_mat_vec_mult_q15: the same library calls, in the
 * same order, with the same integer conversions, stopping before the DCT.
 *
 * All entry points return 0 on success, a negative arm_status / -100 (out of
 * memory) otherwise.  Inputs are never modified: the CMSIS functions that work
 * in place (arm_rfft_q15, arm_mfcc_q15) get a private copy.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arm_math.h"

#define SEDH_NOMEM (-100)

/* Which arithmetic path this library was built for: 1 = ARM_MATH_DSP. */
int sedh_has_dsp(void)
{
#if defined(ARM_MATH_DSP)
    return 1;
#else
    return 0;
#endif
}

int sedh_has_loopunroll(void)
{
#if defined(ARM_MATH_LOOPUNROLL)
    return 1;
#else
    return 0;
#endif
}

/* arm_rfft_q15, forward, bit reversal on.  out receives the 2*n values written. */
int sedh_rfft_q15(uint32_t n, const q15_t *x, q15_t *out)
{
    arm_rfft_instance_q15 inst;
    arm_status st = arm_rfft_init_q15(&inst, n, 0, 1);
    if (st != ARM_MATH_SUCCESS) {
        return (int)st;
    }
    q15_t *work = (q15_t *)malloc((size_t)n * sizeof(q15_t));
    if (work == NULL) {
        return SEDH_NOMEM;
    }
    memcpy(work, x, (size_t)n * sizeof(q15_t));
    arm_rfft_q15(&inst, work, out);
    free(work);
    return 0;
}

/* arm_cfft_q15 in place on buf (2*n interleaved re,im). */
int sedh_cfft_q15(uint32_t n, q15_t *buf, uint32_t ifft_flag, uint32_t bit_reverse_flag)
{
    arm_cfft_instance_q15 inst;
    arm_status st = arm_cfft_init_q15(&inst, (uint16_t)n);
    if (st != ARM_MATH_SUCCESS) {
        return (int)st;
    }
    arm_cfft_q15(&inst, buf, (uint8_t)ifft_flag, (uint8_t)bit_reverse_flag);
    return 0;
}

int sedh_cmplx_mag_q15(const q15_t *x, q15_t *out, uint32_t num_samples)
{
    arm_cmplx_mag_q15(x, out, num_samples);
    return 0;
}

/* arm_mfcc_q15 itself; x is copied (the function scales/windows it in place). */
int sedh_mfcc_q15(uint32_t fft_len, uint32_t n_mels, uint32_t n_dct,
                  const q15_t *dct, const uint32_t *filter_pos, const uint32_t *filter_len,
                  const q15_t *filter_coefs, const q15_t *window,
                  const q15_t *x, q15_t *out)
{
    arm_mfcc_instance_q15 inst;
    arm_status st = arm_mfcc_init_q15(&inst, fft_len, n_mels, n_dct, dct,
                                      filter_pos, filter_len, filter_coefs, window);
    if (st != ARM_MATH_SUCCESS) {
        return (int)st;
    }
    /* scratch: the 2*fft_len q15 RFFT output (= fft_len words) and n_mels words */
    size_t words = (size_t)fft_len + (size_t)n_mels;
    q31_t *scratch = (q31_t *)calloc(words, sizeof(q31_t));
    q15_t *work = (q15_t *)malloc((size_t)fft_len * sizeof(q15_t));
    if (scratch == NULL || work == NULL) {
        free(scratch);
        free(work);
        return SEDH_NOMEM;
    }
    memcpy(work, x, (size_t)fft_len * sizeof(q15_t));
    st = arm_mfcc_q15(&inst, work, out, scratch);
    free(scratch);
    free(work);
    return (int)st;
}

/*
 * The q8.7 log-mel vector of arm_mfcc_q15 (before the DCT), out[n_mels].
 * Step by step as in the library function:
 *   absmax normalisation (skipped for 0 and 0x7FFF), window, RFFT,
 *   magnitude of bins 0..N/2, mel dot products with a 2^-10 rescale and a
 *   small bias, un-normalisation, natural log in q5.26, exponent offset,
 *   q8.26 -> q8.7.
 */
#define SEDH_LN2_Q26 0x02C5C860   /* ln(2) in q5.26: log2 exponent -> natural log */
#define SEDH_MEL_BIAS 0x00000219  /* added before the rescale so log() never sees 0 */
#define SEDH_MEL_SHIFT 10         /* headroom shift of the mel dot products */

int sedh_logmel_q15(uint32_t fft_len, uint32_t n_mels,
                    const uint32_t *filter_pos, const uint32_t *filter_len,
                    const q15_t *filter_coefs, const q15_t *window,
                    const q15_t *x, q15_t *out)
{
    arm_rfft_instance_q15 rfft;
    arm_status st = arm_rfft_init_q15(&rfft, fft_len, 0, 1);
    if (st != ARM_MATH_SUCCESS) {
        return (int)st;
    }

    q15_t *sig = (q15_t *)malloc((size_t)fft_len * sizeof(q15_t));
    q15_t *spec = (q15_t *)malloc(2 * (size_t)fft_len * sizeof(q15_t));
    q31_t *mel = (q31_t *)malloc(((size_t)n_mels + 1) * sizeof(q31_t));
    if (sig == NULL || spec == NULL || mel == NULL) {
        free(sig);
        free(spec);
        free(mel);
        return SEDH_NOMEM;
    }
    memcpy(sig, x, (size_t)fft_len * sizeof(q15_t));

    q15_t peak;
    uint32_t peak_index;
    arm_absmax_q15(sig, fft_len, &peak, &peak_index);
    const int normalise = (peak != 0) && (peak != 0x7FFF);
    if (normalise) {
        q15_t gain;
        int16_t gain_shift;
        st = arm_divide_q15(0x7FFF, peak, &gain, &gain_shift);
        if (st != ARM_MATH_SUCCESS) {
            free(sig);
            free(spec);
            free(mel);
            return (int)st;
        }
        arm_scale_q15(sig, gain, gain_shift, sig, fft_len);
    }

    arm_mult_q15(sig, window, sig, fft_len);

    uint32_t log2_len = 31 - __CLZ(fft_len);
    arm_rfft_q15(&rfft, sig, spec);

    /* magnitudes overwrite the windowed signal, as in the library */
    arm_cmplx_mag_q15(spec, sig, 1 + (fft_len >> 1));

    uint32_t coef_at = 0;
    for (uint32_t k = 0; k < n_mels; k++) {
        q63_t acc;
        arm_dot_prod_q15(sig + filter_pos[k], filter_coefs + coef_at, filter_len[k], &acc);
        coef_at += filter_len[k];
        acc += SEDH_MEL_BIAS;
        acc >>= SEDH_MEL_SHIFT;
        /* the q63 value is narrowed to 32 bits by the call, then saturated */
        mel[k] = __SSAT(acc, 31);
    }

    if (normalise) {
        arm_scale_q31(mel, peak << 16, 0, mel, n_mels);
    }

    arm_vlog_q31(mel, mel, n_mels);

    q31_t exponent = (q31_t)(log2_len + 2 + SEDH_MEL_SHIFT);
    exponent = exponent * SEDH_LN2_Q26;
    arm_offset_q31(mel, exponent, mel, n_mels);
    arm_shift_q31(mel, -19, mel, n_mels);

    for (uint32_t k = 0; k < n_mels; k++) {
        /* narrowing cast first: the saturation that follows cannot trigger */
        out[k] = __SSAT((q15_t)mel[k], 16);
    }

    free(sig);
    free(spec);
    free(mel);
    return 0;
}
