/*
 * Reference firmware: the CMSIS-DSP q15 frontend, hop by hop, with a trace.
 *
 *     firmware <recording.wav> <trace file | -> [text] [nopcm]
 *
 * Reads a 16-bit mono WAV at SED_SAMPLE_RATE_HZ through semihosting, frames it
 * as sed-runtime does (frame k = samples [k*hop, k*hop + window), zero-padded
 * to SED_FFT_LEN), computes each frame with CMSIS-DSP -- arm_mfcc_q15 for
 * MFCC, the same library calls stopping before the DCT for log-mel -- and
 * quantizes it to the model's int8 input when the export says so.  Per hop it
 * logs the new PCM samples, the q8.7 frame and the int8 frame as a sed trace
 * (binary by default, "text" for the UART line form; "-" writes the text form
 * to the console).  `sed-verify --frontend frontend.json --audio <recording>
 * --trace <trace>` then checks every element.
 *
 * Everything the frontend needs comes from the header sed-export writes
 * (sed_model.h); the arithmetic target follows the core: the DSP-extension
 * path of CMSIS-DSP on Cortex-M4/M7 ("dsp"), the plain C path on Cortex-M3
 * ("generic").
 *
 * Exit status: 0 done; 2 bad arguments; 3 fault; 4 the recording cannot be
 * used; 5 the trace cannot be written; 6 a CMSIS-DSP call failed.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define SED_MODEL_IMPLEMENTATION
#include "sed_model.h"
#include "sed_trace.h"

#include "arm_math.h"

#if defined(ARM_MATH_DSP)
#define FW_TARGET "dsp"
#else
#define FW_TARGET "generic"
#endif

#if defined(__ARM_ARCH_7EM__)
#define FW_CORE "Armv7E-M (Cortex-M4/M7)"
#else
#define FW_CORE "Armv7-M (Cortex-M3)"
#endif

#define EXIT_USAGE 2
#define EXIT_AUDIO 4
#define EXIT_TRACE 5
#define EXIT_DSP 6

/* arm_mfcc_q15's constants (Source/TransformFunctions/arm_mfcc_q15.c) */
#define LOG2TOLOG_Q15 0x02C5C860       /* ln(2) in q5.26 */
#define MICRO_Q15 0x00000219           /* added to each mel energy before the shift */
#define SHIFT_MELFILTER_SATURATION_Q15 10

/* ------------------------------------------------------------------ buffers */

static int16_t audio[SED_WINDOW_SAMPLES];           /* the current window of samples */
static q15_t frame[SED_FFT_LEN] __ALIGNED(4);        /* frame handed to CMSIS-DSP (modified in place) */
static q31_t scratch[SED_FFT_LEN] __ALIGNED(8);      /* RFFT output (2*N q15), then mel energies (q31) */
static q15_t features[SED_N_MELS > SED_FEATURE_BINS ? SED_N_MELS : SED_FEATURE_BINS];
#if SED_FEATURE_QUANTIZED
static int8_t features_s8[SED_FEATURE_BINS];
#endif
static char stdio_buf[4096];

/* ------------------------------------------------------------------ frontend */

#if SED_N_DCT > 0
static arm_mfcc_instance_q15 mfcc;
#else
static arm_rfft_instance_q15 rfft;
#endif

static arm_status frontend_init(void)
{
#if SED_N_DCT > 0
    return arm_mfcc_init_q15(&mfcc, SED_FFT_LEN, SED_N_MELS, SED_N_DCT, sed_dct_q15, sed_filter_pos,
                             sed_filter_len, sed_filter_coefs_q15, sed_window_q15);
#else
    return arm_rfft_init_q15(&rfft, SED_FFT_LEN, 0, 1);
#endif
}

#if SED_N_DCT == 0
/*
 * The q8.7 log-mel vector: arm_mfcc_q15's own sequence of CMSIS-DSP calls
 * (CMSIS-DSP 1.10, RFFT path), stopping before its arm_mat_vec_mult_q15.
 * Q formats as in the library source.
 */
static arm_status logmel_q15(q15_t *src, q15_t *dst, q31_t *tmp)
{
    q15_t m;
    uint32_t index;
    uint32_t i;
    uint32_t coefs_pos = 0;
    q63_t result;
    q31_t log_exponent;
    const uint32_t fft_shift = 31u - __CLZ(SED_FFT_LEN);
    q15_t *spectrum = (q15_t *)tmp;

    arm_absmax_q15(src, SED_FFT_LEN, &m, &index);
    if ((m != 0) && (m != 0x7FFF)) {
        q15_t quotient;
        int16_t shift;
        arm_status status = arm_divide_q15(0x7FFF, m, &quotient, &shift);
        if (status != ARM_MATH_SUCCESS) {
            return status;
        }
        arm_scale_q15(src, quotient, (int8_t)shift, src, SED_FFT_LEN); /* q15, full scale */
    }
    arm_mult_q15(src, sed_window_q15, src, SED_FFT_LEN);            /* q15 */
    arm_rfft_q15(&rfft, src, spectrum);                             /* q15 - fft_shift */
    arm_cmplx_mag_q15(spectrum, src, SED_FFT_LEN / 2 + 1);          /* q14 - fft_shift */
    for (i = 0; i < SED_N_MELS; i++) {
        arm_dot_prod_q15(src + sed_filter_pos[i], &sed_filter_coefs_q15[coefs_pos], sed_filter_len[i], &result);
        coefs_pos += sed_filter_len[i];
        result += MICRO_Q15;                                        /* q34.29 - fft_shift */
        result >>= SHIFT_MELFILTER_SATURATION_Q15;
        tmp[i] = __SSAT(result, 31);                                /* q34.29 - fft_shift - 10 */
    }
    if ((m != 0) && (m != 0x7FFF)) {
        arm_scale_q31(tmp, m << 16, 0, tmp, SED_N_MELS);            /* undo the normalisation */
    }
    arm_vlog_q31(tmp, tmp, SED_N_MELS);                             /* q5.26 */
    log_exponent = (q31_t)(fft_shift + 2u + SHIFT_MELFILTER_SATURATION_Q15);
    log_exponent = log_exponent * LOG2TOLOG_Q15;
    arm_offset_q31(tmp, log_exponent, tmp, SED_N_MELS);             /* q8.26 */
    arm_shift_q31(tmp, -19, tmp, SED_N_MELS);                       /* q8.7 */
    for (i = 0; i < SED_N_MELS; i++) {
        dst[i] = (q15_t)__SSAT((q15_t)tmp[i], 16);
    }
    return ARM_MATH_SUCCESS;
}
#endif

static arm_status frontend_frame(const int16_t *window, q15_t *out)
{
    memcpy(frame, window, sizeof(int16_t) * SED_WINDOW_SAMPLES);
    memset(frame + SED_WINDOW_SAMPLES, 0, sizeof(q15_t) * (SED_FFT_LEN - SED_WINDOW_SAMPLES));
#if SED_N_DCT > 0
    return arm_mfcc_q15(&mfcc, frame, out, scratch);
#else
    return logmel_q15(frame, out, scratch);
#endif
}

#if SED_FEATURE_QUANTIZED
/*
 * TFLM's MultiplyByQuantizedMultiplier (double rounding): x * M * 2^(S - 31),
 * as the runtime quantizes q8.7 features to the model's int8 input.
 */
static int32_t saturating_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    int64_t ab;
    int32_t nudge;
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

static int32_t rounding_divide_by_pot(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

static int32_t multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift)
{
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    return rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul((int32_t)((uint32_t)x << left), multiplier), right);
}

static void quantize_features(const q15_t *in, int8_t *out)
{
    int i;
    for (i = 0; i < SED_FEATURE_BINS; i++) {
        int32_t q = multiply_by_quantized_multiplier(in[i], SED_FEATURE_MULTIPLIER, SED_FEATURE_SHIFT) +
                    SED_FEATURE_ZERO_POINT;
        out[i] = (int8_t)(q > 127 ? 127 : (q < -128 ? -128 : q));
    }
}
#endif

/* ------------------------------------------------------------------ WAV input */

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

/* Find the data chunk of a 16-bit mono PCM WAV at SED_SAMPLE_RATE_HZ; return its byte length or -1. */
static long wav_open_data(FILE *f)
{
    uint8_t head[12];
    uint8_t chunk[8];
    uint8_t fmt[16];
    int have_fmt = 0;
    if (fread(head, 1, 12, f) != 12 || memcmp(head, "RIFF", 4) != 0 || memcmp(head + 8, "WAVE", 4) != 0) {
        fprintf(stderr, "firmware: not a RIFF/WAVE file\n");
        return -1;
    }
    while (fread(chunk, 1, 8, f) == 8) {
        uint32_t size = le32(chunk + 4);
        if (memcmp(chunk, "fmt ", 4) == 0) {
            uint16_t format, channels, bits;
            uint32_t rate;
            if (size < 16 || fread(fmt, 1, 16, f) != 16) {
                break;
            }
            format = le16(fmt);
            channels = le16(fmt + 2);
            rate = le32(fmt + 4);
            bits = le16(fmt + 14);
            if ((format != 1 && format != 0xFFFE) || channels != 1 || bits != 16) {
                fprintf(stderr, "firmware: need 16-bit mono PCM, got format %u, %u channels, %u bits\n",
                        (unsigned)format, (unsigned)channels, (unsigned)bits);
                return -1;
            }
            if (rate != SED_SAMPLE_RATE_HZ) {
                fprintf(stderr, "firmware: recording is %lu Hz, the frontend runs at %lu Hz\n", (unsigned long)rate,
                        (unsigned long)SED_SAMPLE_RATE_HZ);
                return -1;
            }
            have_fmt = 1;
            size -= 16;
        } else if (memcmp(chunk, "data", 4) == 0) {
            if (!have_fmt) {
                break;
            }
            return (long)size;
        }
        if (fseek(f, (long)(size + (size & 1u)), SEEK_CUR) != 0) {
            break;
        }
    }
    fprintf(stderr, "firmware: no fmt/data chunk\n");
    return -1;
}

/* Read up to n samples; return how many were read. */
static size_t read_samples(FILE *f, int16_t *dst, size_t n, long *remaining_bytes)
{
    size_t want = n;
    size_t got;
    if ((long)(want * 2) > *remaining_bytes) {
        want = (size_t)(*remaining_bytes / 2);
    }
    got = fread(dst, sizeof(int16_t), want, f);
    *remaining_bytes -= (long)(got * 2);
    return got;
}

/* ------------------------------------------------------------------ trace output */

static int write_failed;

static void write_file(void *ctx, const void *data, size_t len)
{
    if (fwrite(data, 1, len, (FILE *)ctx) != len) {
        write_failed = 1;
    }
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    FILE *in;
    FILE *out;
    long remaining;
    int text = 0;
    int log_pcm = 1;
    int i;
    uint32_t hop = 0;
    sed_trace_writer tw;
    arm_status status;

    if (argc < 3) {
        fprintf(stderr, "usage: firmware <recording.wav> <trace file | -> [text] [nopcm]\n");
        return EXIT_USAGE;
    }
    for (i = 3; i < argc; i++) {
        if (strcmp(argv[i], "text") == 0) {
            text = 1;
        } else if (strcmp(argv[i], "nopcm") == 0) {
            log_pcm = 0;
        } else {
            fprintf(stderr, "firmware: unknown option %s\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    in = fopen(argv[1], "rb");
    if (in == NULL) {
        fprintf(stderr, "firmware: cannot open %s\n", argv[1]);
        return EXIT_AUDIO;
    }
    remaining = wav_open_data(in);
    if (remaining < 0) {
        return EXIT_AUDIO;
    }
    if (strcmp(argv[2], "-") == 0) {
        out = stdout; /* the console stands in for a UART: text lines among other output */
        text = 1;
        printf("firmware: %s, CMSIS-DSP %s path, tracing to the console\n", FW_CORE, FW_TARGET);
    } else {
        out = fopen(argv[2], "wb");
        if (out == NULL) {
            fprintf(stderr, "firmware: cannot create %s\n", argv[2]);
            return EXIT_TRACE;
        }
    }
    setvbuf(out, stdio_buf, _IOFBF, sizeof stdio_buf);

    status = frontend_init();
    if (status != ARM_MATH_SUCCESS) {
        fprintf(stderr, "firmware: CMSIS-DSP init failed (%d)\n", (int)status);
        return EXIT_DSP;
    }

    sed_trace_begin(&tw, write_file, out, text ? SED_TRACE_TEXT : SED_TRACE_BINARY, SED_TRACE_IDENTITY, FW_TARGET,
                    "sed-runtime reference firmware, " FW_CORE ", QEMU");

    /* hop 0 needs a whole window; every later hop needs SED_HOP_SAMPLES more */
    if (read_samples(in, audio, SED_WINDOW_SAMPLES, &remaining) == SED_WINDOW_SAMPLES) {
        int16_t *fresh = audio;
        uint32_t n_fresh = SED_WINDOW_SAMPLES;
        for (;;) {
            status = frontend_frame(audio, features);
            if (status != ARM_MATH_SUCCESS) {
                fprintf(stderr, "firmware: CMSIS-DSP failed (%d) at hop %lu\n", (int)status, (unsigned long)hop);
                return EXIT_DSP;
            }
            if (log_pcm) {
                sed_trace_i16(&tw, SED_STAGE_PCM, hop, fresh, n_fresh);
            }
            sed_trace_i16(&tw, SED_STAGE_FEATURES, hop, features, SED_FEATURE_BINS);
#if SED_FEATURE_QUANTIZED
            quantize_features(features, features_s8);
            sed_trace_i8(&tw, SED_STAGE_FEATURES_S8, hop, features_s8, SED_FEATURE_BINS);
#endif
            hop++;
            memmove(audio, audio + SED_HOP_SAMPLES, sizeof(int16_t) * (SED_WINDOW_SAMPLES - SED_HOP_SAMPLES));
            fresh = audio + (SED_WINDOW_SAMPLES - SED_HOP_SAMPLES);
            n_fresh = SED_HOP_SAMPLES;
            if (read_samples(in, fresh, SED_HOP_SAMPLES, &remaining) != SED_HOP_SAMPLES) {
                break;
            }
        }
    }
    sed_trace_end(&tw, hop);
    fclose(in);
    if (fflush(out) != 0 || write_failed) {
        fprintf(stderr, "firmware: writing the trace failed\n");
        return EXIT_TRACE;
    }
    if (out != stdout) {
        fclose(out);
    }
    return 0;
}
