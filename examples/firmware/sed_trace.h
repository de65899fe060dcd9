/*
 * sed_trace.h -- write a sed-runtime trace from firmware (format version 1).
 *
 * A trace lets `sed-verify` check, hop by hop and stage by stage, that a
 * device computes exactly what sed-runtime computes.  The device logs, per
 * hop, the arrays it can afford (input PCM, the feature frame, the model's
 * int8 input, intermediate tensors, the output, decision state, events);
 * sed-verify recomputes them from the same audio and names the first element
 * that differs.  The format is documented in sed_runtime/io/trace.py.
 *
 * Two forms, chosen at sed_trace_begin():
 *   SED_TRACE_BINARY  compact length-prefixed records with a CRC-32 each
 *                     (a file on an SD card, semihosting, a RAM buffer);
 *   SED_TRACE_TEXT    one "@sed1 ..." line per record, for a UART console:
 *                     other console output may be interleaved, the reader
 *                     skips it; each line carries a CRC-32 of its bytes.
 *
 * Bytes leave through a callback, in chunks of up to SED_TRACE_BUFFER bytes,
 * so the writer needs no heap, no stdio and no printf:
 *
 *     static void out(void *ctx, const void *data, size_t len)
 *     { uart_write((const uint8_t *)data, len); }
 *
 *     sed_trace_writer tw;
 *     sed_trace_begin(&tw, out, NULL, SED_TRACE_TEXT, SED_TRACE_IDENTITY, "dsp", "my-board");
 *     ...per hop:  sed_trace_i16(&tw, SED_STAGE_FEATURES, hop, features, n_bins);
 *     sed_trace_end(&tw, hops);
 *
 * SED_TRACE_IDENTITY comes from the header that `sed-export` writes; it ties
 * the trace to the frontend tables and model the firmware was built with, so
 * a trace from another model or sample rate is refused instead of compared.
 *
 * Plain C99, header only (all functions static inline); compiles warning-free
 * with -Wall -Wextra.  Assumes a little-endian CPU (every Cortex-M).
 */
#ifndef SED_TRACE_H
#define SED_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && (__BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__)
#error "sed_trace.h writes payloads in CPU byte order and the format is little-endian"
#endif

#ifndef SED_TRACE_BUFFER
#define SED_TRACE_BUFFER 256 /* bytes buffered before the write callback is called */
#endif

#define SED_TRACE_VERSION 1
#define SED_TRACE_MAX_NDIM 4

/* Stages, in pipeline order. */
enum {
    SED_STAGE_HEADER = 0x01,
    SED_STAGE_INFO = 0x02,
    SED_STAGE_PCM = 0x10,          /* int16: samples that completed this hop's frame */
    SED_STAGE_FEATURES = 0x20,     /* frontend frame (CMSIS-DSP: q8.7 int16) */
    SED_STAGE_FEATURES_S8 = 0x21,  /* the frame quantized to the model's int8 input */
    SED_STAGE_TENSOR = 0x30,       /* an intermediate tensor; name it */
    SED_STAGE_OUTPUT = 0x40,       /* model output */
    SED_STAGE_DECISION = 0x50,     /* decision state after this hop */
    SED_STAGE_EVENT = 0x60,        /* int32[3]: class index, onset hop, offset hop (exclusive) */
    SED_STAGE_END = 0x7F
};

/* Element types. */
enum {
    SED_DT_I8 = 1,
    SED_DT_U8 = 2,
    SED_DT_I16 = 3,
    SED_DT_U16 = 4,
    SED_DT_I32 = 5,
    SED_DT_U32 = 6,
    SED_DT_F32 = 7,
    SED_DT_TEXT = 8
};

enum { SED_TRACE_BINARY = 0, SED_TRACE_TEXT = 1 };

typedef void (*sed_trace_write_fn)(void *ctx, const void *data, size_t len);

typedef struct {
    sed_trace_write_fn write;
    void *ctx;
    int text;
    uint32_t count;  /* records written */
    uint32_t crc;    /* running CRC-32 (pre-inverted) of the current record */
    size_t fill;
    uint8_t buf[SED_TRACE_BUFFER];
} sed_trace_writer;

/* ---------------------------------------------------------------- CRC-32 */

/* CRC-32 (IEEE 802.3, reflected, as zlib.crc32), 4 bits at a time. */
static inline uint32_t sed_trace_crc32_update(uint32_t crc, const void *data, size_t len)
{
    static const uint32_t nibble[16] = {
        0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
        0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};
    const uint8_t *p = (const uint8_t *)data;
    while (len--) {
        crc ^= *p++;
        crc = (crc >> 4) ^ nibble[crc & 15u];
        crc = (crc >> 4) ^ nibble[crc & 15u];
    }
    return crc;
}

/* ---------------------------------------------------------------- output */

static inline void sed_trace_flush(sed_trace_writer *w)
{
    if (w->fill) {
        w->write(w->ctx, w->buf, w->fill);
        w->fill = 0;
    }
}

/* Bytes that are part of the current record: buffered and checksummed. */
static inline void sed_trace_put(sed_trace_writer *w, const void *data, size_t len)
{
    const uint8_t *p = (const uint8_t *)data;
    w->crc = sed_trace_crc32_update(w->crc, p, len);
    while (len) {
        size_t room = SED_TRACE_BUFFER - w->fill;
        size_t take = len < room ? len : room;
        memcpy(w->buf + w->fill, p, take);
        w->fill += take;
        p += take;
        len -= take;
        if (w->fill == SED_TRACE_BUFFER) {
            sed_trace_flush(w);
        }
    }
}

static inline void sed_trace_put_u32le(sed_trace_writer *w, uint32_t v)
{
    uint8_t b[4];
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
    sed_trace_put(w, b, 4);
}

static inline void sed_trace_put_str(sed_trace_writer *w, const char *s)
{
    sed_trace_put(w, s, strlen(s));
}

/* Decimal text of a signed value (text form). */
static inline void sed_trace_put_int(sed_trace_writer *w, int32_t v)
{
    char tmp[12];
    int i = 11;
    uint32_t u = v < 0 ? (uint32_t)0 - (uint32_t)v : (uint32_t)v;
    tmp[i] = '\0';
    do {
        tmp[--i] = (char)('0' + (u % 10u));
        u /= 10u;
    } while (u);
    if (v < 0) {
        tmp[--i] = '-';
    }
    sed_trace_put(w, tmp + i, (size_t)(11 - i));
}

static inline void sed_trace_put_uint(sed_trace_writer *w, uint32_t u)
{
    char tmp[11];
    int i = 10;
    do {
        tmp[--i] = (char)('0' + (u % 10u));
        u /= 10u;
    } while (u);
    sed_trace_put(w, tmp + i, (size_t)(10 - i));
}

static inline void sed_trace_put_hex32(sed_trace_writer *w, uint32_t v)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[8];
    int i;
    for (i = 7; i >= 0; --i) {
        tmp[i] = digits[v & 15u];
        v >>= 4;
    }
    sed_trace_put(w, tmp, 8);
}

static inline size_t sed_trace_dtype_size(uint8_t dtype)
{
    switch (dtype) {
    case SED_DT_I8:
    case SED_DT_U8:
    case SED_DT_TEXT:
        return 1;
    case SED_DT_I16:
    case SED_DT_U16:
        return 2;
    default:
        return 4;
    }
}

static inline const char *sed_trace_stage_name(uint8_t stage)
{
    switch (stage) {
    case SED_STAGE_HEADER: return "header";
    case SED_STAGE_INFO: return "info";
    case SED_STAGE_PCM: return "pcm";
    case SED_STAGE_FEATURES: return "features";
    case SED_STAGE_FEATURES_S8: return "features_s8";
    case SED_STAGE_TENSOR: return "tensor";
    case SED_STAGE_OUTPUT: return "output";
    case SED_STAGE_DECISION: return "decision";
    case SED_STAGE_EVENT: return "event";
    default: return "end";
    }
}

static inline const char *sed_trace_dtype_name(uint8_t dtype)
{
    switch (dtype) {
    case SED_DT_I8: return "i8";
    case SED_DT_U8: return "u8";
    case SED_DT_I16: return "i16";
    case SED_DT_U16: return "u16";
    case SED_DT_I32: return "i32";
    case SED_DT_U32: return "u32";
    case SED_DT_F32: return "f32";
    default: return "text";
    }
}

/* One element of a numeric payload as text. */
static inline void sed_trace_put_value(sed_trace_writer *w, uint8_t dtype, const uint8_t *p)
{
    switch (dtype) {
    case SED_DT_I8: sed_trace_put_int(w, (int8_t)p[0]); break;
    case SED_DT_U8: sed_trace_put_uint(w, p[0]); break;
    case SED_DT_I16: {
        int16_t v;
        memcpy(&v, p, 2);
        sed_trace_put_int(w, v);
        break;
    }
    case SED_DT_U16: {
        uint16_t v;
        memcpy(&v, p, 2);
        sed_trace_put_uint(w, v);
        break;
    }
    case SED_DT_I32: {
        int32_t v;
        memcpy(&v, p, 4);
        sed_trace_put_int(w, v);
        break;
    }
    case SED_DT_U32: {
        uint32_t v;
        memcpy(&v, p, 4);
        sed_trace_put_uint(w, v);
        break;
    }
    default: { /* f32: the IEEE-754 bits, exact */
        uint32_t v;
        memcpy(&v, p, 4);
        sed_trace_put_hex32(w, v);
        break;
    }
    }
}

/* ---------------------------------------------------------------- records */

/*
 * One record: `ndim` dims (0..4), `name` (NULL or "" for none; no spaces),
 * `data` = prod(dims) elements of `dtype` (text: dims[0] bytes).
 */
static inline void sed_trace_record(sed_trace_writer *w, uint8_t stage, uint32_t hop, uint8_t dtype,
                                    uint8_t ndim, const uint32_t *dims, const char *name, const void *data)
{
    size_t count = 1;
    size_t name_len = name ? strlen(name) : 0;
    uint8_t i;
    if (ndim > SED_TRACE_MAX_NDIM || name_len > 255u) {
        return;
    }
    for (i = 0; i < ndim; ++i) {
        count *= dims[i];
    }
    w->crc = 0xFFFFFFFFu;
    if (!w->text) {
        uint8_t head[8];
        uint32_t size = 12u + 4u * ndim + (uint32_t)name_len + (uint32_t)(count * sed_trace_dtype_size(dtype));
        head[0] = stage;
        head[1] = dtype;
        head[2] = ndim;
        head[3] = (uint8_t)name_len;
        sed_trace_put_u32le(w, size);
        sed_trace_put(w, head, 4);
        sed_trace_put_u32le(w, hop);
        for (i = 0; i < ndim; ++i) {
            sed_trace_put_u32le(w, dims[i]);
        }
        if (name_len) {
            sed_trace_put(w, name, name_len);
        }
        sed_trace_put(w, data, count * sed_trace_dtype_size(dtype));
        sed_trace_put_u32le(w, ~w->crc);
    } else {
        size_t k;
        const uint8_t *p = (const uint8_t *)data;
        size_t step = sed_trace_dtype_size(dtype);
        sed_trace_put_str(w, "@sed1 ");
        sed_trace_put_str(w, sed_trace_stage_name(stage));
        sed_trace_put(w, " ", 1);
        sed_trace_put_uint(w, hop);
        sed_trace_put(w, " ", 1);
        sed_trace_put_str(w, sed_trace_dtype_name(dtype));
        sed_trace_put(w, " ", 1);
        if (ndim == 0) {
            sed_trace_put(w, "-", 1);
        }
        for (i = 0; i < ndim; ++i) {
            if (i) {
                sed_trace_put(w, "x", 1);
            }
            sed_trace_put_uint(w, dims[i]);
        }
        sed_trace_put(w, " ", 1);
        if (name_len) {
            sed_trace_put(w, name, name_len);
        } else {
            sed_trace_put(w, "-", 1);
        }
        sed_trace_put(w, " ", 1);
        if (dtype == SED_DT_TEXT) {
            sed_trace_put(w, data, count);
        } else {
            for (k = 0; k < count; ++k) {
                if (k) {
                    sed_trace_put(w, " ", 1);
                }
                sed_trace_put_value(w, dtype, p + k * step);
            }
        }
        sed_trace_put(w, " ", 1);
        {
            uint32_t crc = ~w->crc;
            sed_trace_put(w, "*", 1);
            sed_trace_put_hex32(w, crc);
            sed_trace_put(w, "\n", 1);
        }
    }
    w->count += 1;
    sed_trace_flush(w);
}

/* A 1-D array of `n` elements. */
static inline void sed_trace_vector(sed_trace_writer *w, uint8_t stage, uint32_t hop, uint8_t dtype,
                                    const char *name, const void *data, uint32_t n)
{
    sed_trace_record(w, stage, hop, dtype, 1, &n, name, data);
}

static inline void sed_trace_i16(sed_trace_writer *w, uint8_t stage, uint32_t hop, const int16_t *data, uint32_t n)
{
    sed_trace_vector(w, stage, hop, SED_DT_I16, NULL, data, n);
}

static inline void sed_trace_i8(sed_trace_writer *w, uint8_t stage, uint32_t hop, const int8_t *data, uint32_t n)
{
    sed_trace_vector(w, stage, hop, SED_DT_I8, NULL, data, n);
}

/* A free-form note (one line, no '\n'); sed-verify shows it and ignores it otherwise. */
static inline void sed_trace_info(sed_trace_writer *w, uint32_t hop, const char *text)
{
    sed_trace_vector(w, SED_STAGE_INFO, hop, SED_DT_TEXT, NULL, text, (uint32_t)strlen(text));
}

/* ---------------------------------------------------------------- begin / end */

/* A JSON string value: characters other than printable ASCII, '"' and '\\' become '_'. */
static inline void sed_trace_put_json_string(sed_trace_writer *w, const char *s)
{
    sed_trace_put(w, "\"", 1);
    for (; s && *s; ++s) {
        char c = (*s >= 0x20 && *s < 0x7F && *s != '"' && *s != '\\') ? *s : '_';
        sed_trace_put(w, &c, 1);
    }
    sed_trace_put(w, "\"", 1);
}

static inline size_t sed_trace_json_string_len(const char *s)
{
    return 2u + (s ? strlen(s) : 0u);
}

/*
 * Start a trace: the file header (binary form) and the header record.
 * identity_json: SED_TRACE_IDENTITY from the exported header (or NULL);
 * target: "generic" (Cortex-M0/M3 C path) or "dsp" (Cortex-M4/M7 DSP path);
 * device: a free-form board/build description.
 */
static inline void sed_trace_begin(sed_trace_writer *w, sed_trace_write_fn write, void *ctx, int form,
                                   const char *identity_json, const char *target, const char *device)
{
    static const char k_device[] = "{\"device\":";
    static const char k_identity[] = ",\"identity\":";
    static const char k_tail[] = ",\"sed_trace\":1,\"target\":";
    const char *ident = identity_json ? identity_json : "null";
    uint32_t len;
    w->write = write;
    w->ctx = ctx;
    w->text = form == SED_TRACE_TEXT;
    w->count = 0;
    w->fill = 0;
    if (!w->text) {
        static const uint8_t file_header[12] = {'S', 'E', 'D', 'T', 'R', 'A', 'C', 'E', SED_TRACE_VERSION, 0, 0, 0};
        sed_trace_put(w, file_header, sizeof file_header);
    }
    len = (uint32_t)(sizeof k_device - 1 + sed_trace_json_string_len(device) + sizeof k_identity - 1 + strlen(ident) +
                     sizeof k_tail - 1 + sed_trace_json_string_len(target) + 1);
    /* The header record is assembled piecewise; write its head, then the JSON. */
    w->crc = 0xFFFFFFFFu;
    if (!w->text) {
        static const uint8_t head[8] = {SED_STAGE_HEADER, SED_DT_TEXT, 1, 0, 0, 0, 0, 0};
        sed_trace_put_u32le(w, 12u + 4u + len);
        sed_trace_put(w, head, sizeof head);
        sed_trace_put_u32le(w, len);
    } else {
        sed_trace_put_str(w, "@sed1 header 0 text ");
        sed_trace_put_uint(w, len);
        sed_trace_put_str(w, " - ");
    }
    sed_trace_put_str(w, k_device);
    sed_trace_put_json_string(w, device);
    sed_trace_put_str(w, k_identity);
    sed_trace_put_str(w, ident);
    sed_trace_put_str(w, k_tail);
    sed_trace_put_json_string(w, target);
    sed_trace_put(w, "}", 1);
    if (!w->text) {
        sed_trace_put_u32le(w, ~w->crc);
    } else {
        uint32_t crc;
        sed_trace_put(w, " ", 1);
        crc = ~w->crc;
        sed_trace_put(w, "*", 1);
        sed_trace_put_hex32(w, crc);
        sed_trace_put(w, "\n", 1);
    }
    w->count = 1;
    sed_trace_flush(w);
}

/* Finish a trace: the end record counts the records before it, so lost ones are detected. */
static inline void sed_trace_end(sed_trace_writer *w, uint32_t hops)
{
    uint32_t n = w->count;
    sed_trace_vector(w, SED_STAGE_END, hops, SED_DT_U32, NULL, &n, 1);
}

#endif /* SED_TRACE_H */
