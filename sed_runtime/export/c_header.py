"""A C header for firmware: frontend tables, feature quantization, trace identity.

The header is what firmware needs to compute the same features as the
runtime with CMSIS-DSP (the reference firmware in ``examples/firmware/`` is
built against it):

* frame geometry: ``SED_SAMPLE_RATE_HZ``, ``SED_WINDOW_SAMPLES``,
  ``SED_HOP_SAMPLES``, ``SED_FFT_LEN``, ``SED_N_MELS``, ``SED_N_DCT``,
  ``SED_FEATURE_BINS``;
* the five ``arm_mfcc_init_q15`` tables: ``sed_window_q15``,
  ``sed_filter_pos``, ``sed_filter_len``, ``sed_filter_coefs_q15``,
  ``sed_dct_q15`` (MFCC only), as the runtime computes with them;
* the int8 feature quantization as TFLM requantization constants:
  ``SED_FEATURE_MULTIPLIER`` (q31), ``SED_FEATURE_SHIFT`` (positive = left),
  ``SED_FEATURE_ZERO_POINT``: ``q = MultiplyByQuantizedMultiplier(q8.7 value,
  multiplier, shift) + zero_point``, saturated to int8;
* ``SED_TRACE_IDENTITY``: the JSON identity a trace's header carries
  (``sed_trace.h``'s ``sed_trace_begin``), so ``sed-verify`` refuses a trace
  from other tables or another model;
* with a model, whatever the model export adds (``CHeader`` sections).

Layout: declarations always; the array definitions only where
``SED_MODEL_IMPLEMENTATION`` is defined before the ``#include`` (in exactly
one .c file), so the tables exist once however many files include the
header.  Plain C99 with ``<stdint.h>``; checked with ``gcc -std=c99 -Wall
-Wextra -Werror -pedantic`` and with ``arm-none-eabi-gcc``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from sed_runtime.errors import ConfigError, SedError
from sed_runtime.fixedpoint import quantize_multiplier

__all__ = ["CHeader", "c_string", "frontend_header", "write_frontend_export", "HEADER_NAME", "IMPLEMENTATION_MACRO"]

HEADER_NAME = "sed_model.h"
IMPLEMENTATION_MACRO = "SED_MODEL_IMPLEMENTATION"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# ctype -> (numpy dtype the values must fit, values per line)
_CTYPES = {
    "int8_t": (np.int8, 16),
    "uint8_t": (np.uint8, 16),
    "int16_t": (np.int16, 12),
    "uint16_t": (np.uint16, 12),
    "int32_t": (np.int32, 8),
    "uint32_t": (np.uint32, 8),
}


def c_string(text: str) -> str:
    """A C string literal of ``text`` (UTF-8; non-printable and non-ASCII bytes as 3-digit octal escapes)."""
    out = ['"']
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif 0x20 <= byte < 0x7F and ch != "?":  # '?' escaped: no trigraphs
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    out.append('"')
    return "".join(out)


def _c_int(value: int, ctype: str) -> str:
    value = int(value)
    if ctype == "int32_t" and value == -(2**31):
        return "(-2147483647 - 1)"
    if ctype in ("uint32_t",):
        return f"{value}u"
    if ctype == "uint8_t":
        return f"0x{value:02x}"
    return str(value)


def _c_comment(text: str) -> str:
    return text.replace("*/", "* /")


class CHeader:
    """Builds one C header: defines and const arrays, declared always, defined under the implementation macro."""

    def __init__(self, guard: str, title: Sequence[str], implementation_macro: str = IMPLEMENTATION_MACRO) -> None:
        for name in (guard, implementation_macro):
            if not _IDENT.match(name):
                raise ConfigError(f"{name!r} is not a C identifier")
        self.guard = guard
        self.title = list(title)
        self.implementation_macro = implementation_macro
        self._defines: list[str] = []
        self._declarations: list[str] = []
        self._definitions: list[str] = []
        self._names: set[str] = set()

    def _claim(self, name: str) -> None:
        if not _IDENT.match(name):
            raise ConfigError(f"{name!r} is not a C identifier")
        if name in self._names:
            raise ConfigError(f"{name!r} is defined twice in the header")
        self._names.add(name)

    def section(self, title: str) -> None:
        self._defines.append(f"\n/* ---- {_c_comment(title)} ---- */")

    def define(self, name: str, value, comment: str = "") -> None:
        """``#define NAME value``: an int (negative values parenthesised) or a str (a C string literal)."""
        self._claim(name)
        if isinstance(value, bool):
            text = "1" if value else "0"
        elif isinstance(value, (int, np.integer)):
            v = int(value)
            if not -(2**31) <= v < 2**32:
                raise ConfigError(f"{name}={v} does not fit 32 bits")
            text = "(-2147483647 - 1)" if v == -(2**31) else (f"({v})" if v < 0 else (f"{v}u" if v >= 2**31 else str(v)))
        elif isinstance(value, str):
            text = c_string(value)
        else:
            raise ConfigError(f"{name}: cannot write a {type(value).__name__} as a C define")
        line = f"#define {name} {text}"
        if comment:
            line += f" /* {_c_comment(comment)} */"
        self._defines.append(line)

    def array(self, ctype: str, name: str, values, length: str, comment: str = "", align: int | None = None) -> None:
        """``const ctype name[length]`` with ``values`` (flattened, row-major); ``length`` is a C expression."""
        self._claim(name)
        if ctype not in _CTYPES:
            raise ConfigError(f"array {name}: ctype {ctype!r} is not one of {sorted(_CTYPES)}")
        dtype, per_line = _CTYPES[ctype]
        arr = np.asarray(values).reshape(-1)
        if arr.size == 0:
            raise ConfigError(f"array {name} is empty; C has no zero-length arrays")
        if arr.dtype.kind not in "iub":
            raise ConfigError(f"array {name}: values must be integers, got {arr.dtype}")
        info = np.iinfo(dtype)
        if int(arr.min()) < info.min or int(arr.max()) > info.max:
            raise ConfigError(f"array {name}: values [{int(arr.min())}, {int(arr.max())}] do not fit {ctype}")
        attr = f"SED_ALIGNED({align}) " if align else ""
        if comment:
            self._declarations.append(f"/* {_c_comment(comment)} */")
        self._declarations.append(f"extern {attr}const {ctype} {name}[{length}];")
        items = [_c_int(v, ctype) for v in arr.tolist()]
        lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
        body = ",\n    ".join(lines)
        self._definitions.append(f"{attr}const {ctype} {name}[{length}] = {{\n    {body}\n}};")

    def string_array(self, name: str, strings: Sequence[str], length: str, comment: str = "") -> None:
        """``const char *const name[length]`` of C string literals."""
        self._claim(name)
        if not strings:
            raise ConfigError(f"array {name} is empty; C has no zero-length arrays")
        if comment:
            self._declarations.append(f"/* {_c_comment(comment)} */")
        self._declarations.append(f"extern const char *const {name}[{length}];")
        body = ",\n    ".join(c_string(s) for s in strings)
        self._definitions.append(f"const char *const {name}[{length}] = {{\n    {body}\n}};")

    def render(self) -> str:
        title = "\n".join(f" * {_c_comment(t)}".rstrip() for t in self.title)
        return f"""/*
{title}
 *
 * Use: #include this header wherever the constants are needed; in exactly one
 * .c file, #define {self.implementation_macro} before the #include so that the
 * arrays are defined there.
 */
#ifndef {self.guard}
#define {self.guard}

#include <stdint.h>

#ifdef __cplusplus
extern "C" {{
#endif

#if defined(__GNUC__) || defined(__clang__)
#define SED_ALIGNED(n) __attribute__((aligned(n)))
#else
#define SED_ALIGNED(n)
#endif
{chr(10).join(self._defines)}

{chr(10).join(self._declarations)}

#ifdef {self.implementation_macro}
{(chr(10) + chr(10)).join(self._definitions)}
#endif /* {self.implementation_macro} */

#ifdef __cplusplus
}}
#endif

#endif /* {self.guard} */
"""


# ---------------------------------------------------------------------------
# The frontend part
# ---------------------------------------------------------------------------

def _cmsis_spec(spec):
    from sed_runtime.frontend.spec import FrontendSpec

    if not isinstance(spec, FrontendSpec):
        raise ConfigError(
            f"the C header export covers the cmsis-dsp frontend family; got family={getattr(spec, 'family', None)!r}"
        )
    return spec


def add_frontend(header: CHeader, spec, tables=None, identity: dict | None = None) -> dict:
    """Add the frontend section to ``header``; return the identity written as ``SED_TRACE_IDENTITY``."""
    from sed_runtime.frontend.cmsis import CmsisFrontend
    from sed_runtime.io.trace import frontend_identity

    spec = _cmsis_spec(spec)
    if tables is None:
        tables = CmsisFrontend(spec).prepare().tables
    if identity is None:
        identity = frontend_identity(spec, tables)

    header.section(f"frontend: CMSIS-DSP q15 {spec.output} (arm_mfcc_q15 tables)")
    header.define("SED_SAMPLE_RATE_HZ", spec.sample_rate_hz)
    header.define("SED_WINDOW_SAMPLES", spec.window_samples, "samples per frame (zero-padded to SED_FFT_LEN)")
    header.define("SED_HOP_SAMPLES", spec.hop_samples, "samples between frame starts")
    header.define("SED_FFT_LEN", spec.fft_len, "arm_rfft_q15 length")
    header.define("SED_N_MELS", spec.n_mels)
    header.define("SED_N_DCT", spec.n_dct, "0: log-mel features, > 0: MFCC (arm_mfcc_q15)")
    header.define("SED_FEATURE_BINS", spec.bins, "q8.7 values per feature frame")
    header.define("SED_FILTER_COEFS_LEN", int(tables.filter_coefs_q15.size))
    header.define("SED_LOWER_HZ", int(round(spec.lower_hz)), "mel band edges, for reference (rounded)")
    header.define("SED_UPPER_HZ", int(round(spec.upper_hz)))

    header.section("int8 feature quantization: q = MultiplyByQuantizedMultiplier(q8.7, M, S) + Z, saturated")
    if spec.quantization is not None:
        mult, shift = quantize_multiplier(1.0 / (128.0 * spec.quantization.scale))
        header.define("SED_FEATURE_QUANTIZED", 1, f"model input scale {spec.quantization.scale!r}")
        header.define("SED_FEATURE_MULTIPLIER", int(mult), "q31")
        header.define("SED_FEATURE_SHIFT", int(shift), "positive = left (TFLM convention)")
        header.define("SED_FEATURE_ZERO_POINT", int(spec.quantization.zero_point))
    else:
        header.define("SED_FEATURE_QUANTIZED", 0, "features are q8.7 int16 (no int8 model input)")

    header.section("trace identity: pass to sed_trace_begin() (examples/firmware/sed_trace.h)")
    header.define("SED_TRACE_IDENTITY", json.dumps(identity, sort_keys=True, separators=(",", ":")))

    header.array("int16_t", "sed_window_q15", tables.window_q15, "SED_FFT_LEN",
                 f"q15 window ({spec.window}, {spec.window_samples} samples, zeros to SED_FFT_LEN)")
    header.array("uint32_t", "sed_filter_pos", tables.filter_pos, "SED_N_MELS", "first FFT bin of each mel filter")
    header.array("uint32_t", "sed_filter_len", tables.filter_len, "SED_N_MELS", "FFT bins of each mel filter")
    header.array("int16_t", "sed_filter_coefs_q15", tables.filter_coefs_q15, "SED_FILTER_COEFS_LEN",
                 "q15 mel filter weights, packed in filter order")
    if spec.n_dct:
        header.array("int16_t", "sed_dct_q15", tables.dct_q15, "SED_N_DCT * SED_N_MELS",
                     "q15 DCT matrix [SED_N_DCT][SED_N_MELS], row-major")
    return identity


def frontend_header(spec, tables=None, *, identity: dict | None = None, title: Iterable[str] = (),
                    guard: str = "SED_MODEL_H", extra=None) -> str:
    """The C header text for ``spec`` (a CMSIS-DSP :class:`FrontendSpec`).

    ``extra(header)`` may add further sections (the model export does).
    """
    from sed_runtime import __version__

    spec = _cmsis_spec(spec)
    lines = [f"Generated by sed-export (sed-runtime {__version__}); do not edit.", "",
             f"Frontend: CMSIS-DSP q15 {spec.output}, {spec.sample_rate_hz} Hz, window {spec.window_samples}, "
             f"hop {spec.hop_samples}, FFT {spec.fft_len}, {spec.n_mels} mels "
             f"{spec.lower_hz:g}-{spec.upper_hz:g} Hz" + (f", {spec.n_dct} DCT coefficients" if spec.n_dct else ""),
             "Features are q8.7 (divide by 128 for natural-log units)."]
    lines += list(title)
    header = CHeader(guard, lines)
    add_frontend(header, spec, tables, identity)
    if extra is not None:
        extra(header)
    return header.render()


def write_frontend_export(spec, out_dir: str | Path, *, header_name: str = HEADER_NAME, tables=None,
                          identity: dict | None = None, extra=None) -> dict[str, Path]:
    """Write ``header_name`` and ``frontend.json`` (the spec, for ``sed-verify --frontend``) into ``out_dir``.

    A spec that names its own tables file gets it copied beside the JSON.
    Returns ``{"header": path, "frontend": path}``.
    """
    from sed_runtime.frontend.cmsis import CmsisFrontend
    from sed_runtime.io.trace import frontend_identity

    spec = _cmsis_spec(spec)
    if not re.match(r"^[A-Za-z0-9_.-]+\.h$", header_name):
        raise ConfigError(f"header name {header_name!r} must be a plain file name ending in .h")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SedError(f"cannot create export directory {str(out)!r}: {exc.strerror or exc}") from exc
    if tables is None:
        tables = CmsisFrontend(spec).prepare().tables
    if identity is None:
        identity = frontend_identity(spec, tables)
    text = frontend_header(spec, tables, identity=identity, extra=extra)
    spec_dict = spec.to_dict()
    paths = {"header": out / header_name, "frontend": out / "frontend.json"}
    try:
        if spec.tables_path is not None:
            copied = out / "frontend_tables.npz"
            if Path(spec.tables_path).resolve() != copied.resolve():
                shutil.copyfile(spec.tables_path, copied)
            spec_dict["tables"] = copied.name
            paths["tables"] = copied
        paths["header"].write_text(text, encoding="utf-8")
        paths["frontend"].write_text(json.dumps(spec_dict, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise SedError(f"cannot write the export to {str(out)!r}: {exc.strerror or exc}") from exc
    return paths
