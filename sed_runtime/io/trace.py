"""Firmware traces: what a device logs per hop, in a form the runtime can check bit for bit.

A trace is a sequence of *records*.  Each record is one array (or one line of
text) tagged with the pipeline stage it comes from and the hop it belongs to:

=============  ======  ===========================================================
stage          code    payload
=============  ======  ===========================================================
``header``     0x01    text: JSON object (first record; format version, target,
                       device, and the identity of the frontend/model it ran)
``info``       0x02    text: free-form note from the device (ignored by checks)
``pcm``        0x10    int16 [n]: the samples that completed this hop's frame
                       (hop 0: the first ``window_samples``; hop k > 0: the
                       ``hop_samples`` after them)
``features``   0x20    the frontend's frame (CMSIS-DSP: int16 q8.7 [bins])
``features_s8``0x21    the frame quantized to the model's int8 input [bins]
``tensor``     0x30    any intermediate tensor of the model; ``name`` says which
``output``     0x40    the model output (scores) of this hop
``decision``   0x50    decision state after this hop (smoothed scores, on/off)
``event``      0x60    int32 [3]: class index, onset hop, offset hop (exclusive),
                       logged when the event closes
``end``        0x7F    uint32 [1]: number of records before it (last record)
=============  ======  ===========================================================

Hop ``k`` is frontend frame ``k``: it covers samples ``[k*hop, k*hop + window)``.
A device logs the stages it can afford; absent stages are not compared.

Binary form (little-endian; what ``examples/firmware/sed_trace.h`` writes)::

    file    := "SEDTRACE" u16 version=1 u16 flags=0  record*
    record  := u32 size            bytes of the record after this field
               u8  stage  u8 dtype  u8 ndim (0..4)  u8 name_len
               u32 hop
               u32 dims[ndim]
               u8  name[name_len]  (UTF-8, no whitespace)
               payload             prod(dims) elements of dtype (text: the UTF-8 bytes)
               u32 crc32           zlib CRC-32 of every byte of the record before it

Text form, one record per line, for UART logs (other lines are ignored, so the
trace can be interleaved with ordinary console output)::

    @sed1 <stage> <hop> <dtype> <dims or -> <name or -> <payload> *<crc32, 8 hex digits>

``dims`` is ``40`` or ``1x40``; numeric payloads are decimal values separated
by single spaces (``f32``: the 8 hex digits of the IEEE-754 bits); text
payloads are the text itself.  The CRC-32 covers every byte of the line
before the ``*``.  The ``1`` in ``@sed1`` is the format version.

dtypes: ``i8`` 1, ``u8`` 2, ``i16`` 3, ``u16`` 4, ``i32`` 5, ``u32`` 6,
``f32`` 7, ``text`` 8.

A checksum failure does not stop reading: the record is kept with
``crc_ok=False`` so that a comparison can say where the damage is.  Broken
framing (an impossible size, dtype, stage or shape), a cut-off last record and
a missing ``end`` record raise :class:`~sed_runtime.errors.TraceError` (the last
one unless ``allow_partial``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterable

import numpy as np

from sed_runtime.errors import TraceError

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "TEXT_PREFIX",
    "STAGES",
    "DTYPES",
    "TraceRecord",
    "Trace",
    "TraceWriter",
    "read_trace",
    "parse_trace",
    "frontend_identity",
    "identity_digest",
]

FORMAT_VERSION = 1
MAGIC = b"SEDTRACE"
TEXT_PREFIX = f"@sed{FORMAT_VERSION}"
_FILE_HEADER = struct.Struct("<8sHH")
_RECORD_HEAD = struct.Struct("<IBBBBI")  # size, stage, dtype, ndim, name_len, hop
_CRC = struct.Struct("<I")
MAX_NDIM = 4
MAX_RECORD_BYTES = 1 << 28  # 256 MiB: anything larger is a corrupt size field

#: stage name -> code, in pipeline order (records of one hop compare in this order)
STAGES: dict[str, int] = {
    "header": 0x01,
    "info": 0x02,
    "pcm": 0x10,
    "features": 0x20,
    "features_s8": 0x21,
    "tensor": 0x30,
    "output": 0x40,
    "decision": 0x50,
    "event": 0x60,
    "end": 0x7F,
}
_STAGE_NAMES = {code: name for name, code in STAGES.items()}

#: dtype name -> (code, numpy dtype or None for text)
DTYPES: dict[str, tuple[int, np.dtype | None]] = {
    "i8": (1, np.dtype("<i1")),
    "u8": (2, np.dtype("<u1")),
    "i16": (3, np.dtype("<i2")),
    "u16": (4, np.dtype("<u2")),
    "i32": (5, np.dtype("<i4")),
    "u32": (6, np.dtype("<u4")),
    "f32": (7, np.dtype("<f4")),
    "text": (8, None),
}
_DTYPE_BY_CODE = {code: (name, dt) for name, (code, dt) in DTYPES.items()}
_DTYPE_BY_NUMPY = {dt.newbyteorder("="): name for name, (_, dt) in DTYPES.items() if dt is not None}

_TEXT_STAGES = ("header", "info")


# ---------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class TraceRecord:
    """One logged array (or text) of one stage at one hop.

    ``where`` locates it in its file (``"byte 1234"``, ``"line 56"``) for
    messages; ``crc_ok`` is False when its checksum does not match its bytes.
    """

    stage: str
    hop: int
    data: Any  # np.ndarray, or str for text records
    name: str = ""
    crc_ok: bool = True
    where: str = ""

    @property
    def dtype(self) -> str:
        return "text" if isinstance(self.data, str) else _DTYPE_BY_NUMPY[self.data.dtype.newbyteorder("=")]

    @property
    def label(self) -> str:
        """``features`` or ``tensor 'conv1'``: the stage and the name, if any."""
        return f"{self.stage} {self.name!r}" if self.name else self.stage


@dataclass
class Trace:
    """A parsed trace: its header (a dict), its data records, and how it ended.

    ``records`` excludes the header and end records.  ``complete`` is True
    when the trace has an ``end`` record whose count matches.
    """

    header: dict[str, Any]
    records: list[TraceRecord]
    form: str  # "binary" or "text"
    complete: bool
    source: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def target(self) -> str | None:
        return self.header.get("target")

    @property
    def identity(self) -> dict[str, Any]:
        ident = self.header.get("identity")
        return ident if isinstance(ident, dict) else {}

    def stages(self) -> list[str]:
        """The data stages present, in pipeline order."""
        present = {r.stage for r in self.records}
        return [s for s in STAGES if s in present]

    def damaged(self) -> list[TraceRecord]:
        return [r for r in self.records if not r.crc_ok]


def _check_name(name: str) -> bytes:
    raw = name.encode("utf-8")
    if len(raw) > 255 or any(ch.isspace() for ch in name) or name == "-":
        raise TraceError(f"record name {name!r} must be at most 255 UTF-8 bytes, without whitespace, and not '-'")
    return raw


def _as_payload(stage: str, data) -> tuple[str, Any]:
    """(dtype name, normalised data) of a record payload."""
    if stage not in STAGES or stage in ("end",):
        raise TraceError(f"stage {stage!r} cannot be written as data; expected one of "
                         f"{[s for s in STAGES if s not in ('header', 'end')]}")
    if isinstance(data, str):
        if "\n" in data or "\r" in data:
            raise TraceError(f"a text record must be one line; got {data[:40]!r}...")
        return "text", data
    if stage in _TEXT_STAGES:
        raise TraceError(f"stage {stage!r} holds text, got {type(data).__name__}")
    arr = np.asarray(data)
    name = _DTYPE_BY_NUMPY.get(arr.dtype.newbyteorder("="))
    if name is None:
        raise TraceError(f"dtype {arr.dtype} cannot be traced; expected one of {[d for d in DTYPES if d != 'text']}")
    if arr.ndim > MAX_NDIM:
        raise TraceError(f"a traced array has at most {MAX_NDIM} dimensions, got shape {arr.shape}")
    out = np.asarray(arr, dtype=DTYPES[name][1])
    return name, out if out.flags.c_contiguous else out.copy(order="C")  # (ascontiguousarray makes 0-d 1-d)


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------

def _encode_binary(stage: str, hop: int, dtype: str, data, name: str) -> bytes:
    name_raw = _check_name(name) if name else b""
    if dtype == "text":
        dims: tuple[int, ...] = (len(data.encode("utf-8")),)
        payload = data.encode("utf-8")
    else:
        dims = data.shape
        payload = data.tobytes()
    body = bytearray(_RECORD_HEAD.pack(0, STAGES[stage], DTYPES[dtype][0], len(dims), len(name_raw), hop))
    body += struct.pack(f"<{len(dims)}I", *dims)
    body += name_raw
    body += payload
    struct.pack_into("<I", body, 0, len(body) - 4 + _CRC.size)
    body += _CRC.pack(zlib.crc32(body))
    return bytes(body)


def _format_values(dtype: str, data) -> str:
    if dtype == "text":
        return data
    flat = data.reshape(-1)
    if dtype == "f32":
        return " ".join(f"{v:08x}" for v in flat.view(np.uint32).tolist())
    return " ".join(map(str, flat.tolist()))


def _encode_text(stage: str, hop: int, dtype: str, data, name: str) -> str:
    if name:
        _check_name(name)
    dims = "-" if dtype != "text" and data.ndim == 0 else (
        str(len(data.encode("utf-8"))) if dtype == "text" else "x".join(map(str, data.shape)))
    body = f"{TEXT_PREFIX} {stage} {hop} {dtype} {dims} {name or '-'} {_format_values(dtype, data)} "
    return f"{body}*{zlib.crc32(body.encode('utf-8')):08x}\n"


class TraceWriter:
    """Write a trace record by record (binary, or text with ``text=True``).

    ``header`` is the JSON object of the header record; ``sed_trace`` (the
    format version) is added.  :meth:`close` writes the ``end`` record; use
    the writer as a context manager.  ``fh`` is a binary file object (the
    text form is written UTF-8 encoded).
    """

    def __init__(self, fh: BinaryIO, header: dict[str, Any], *, text: bool = False) -> None:
        self._fh = fh
        self.text = text
        self.count = 0
        self._closed = False
        head = {"sed_trace": FORMAT_VERSION, **header}
        if not text:
            fh.write(_FILE_HEADER.pack(MAGIC, FORMAT_VERSION, 0))
        self._emit("header", 0, "text", json.dumps(head, separators=(",", ":"), sort_keys=True), "")

    @classmethod
    def open(cls, path: str | os.PathLike, header: dict[str, Any], *, text: bool | None = None) -> "TraceWriter":
        """Create ``path``; the text form when ``text`` is True or (None) the suffix is ``.txt``/``.log``."""
        path = Path(path)
        if text is None:
            text = path.suffix.lower() in (".txt", ".log")
        try:
            fh = open(path, "wb")
        except OSError as exc:
            raise TraceError(f"cannot create trace {str(path)!r}: {exc.strerror or exc}") from exc
        writer = cls(fh, header, text=text)
        writer._owns = True
        return writer

    def _emit(self, stage: str, hop: int, dtype: str, data, name: str) -> None:
        if self._closed:
            raise TraceError("trace writer is closed")
        if isinstance(hop, bool) or not 0 <= int(hop) <= 0xFFFFFFFF:
            raise TraceError(f"hop={hop!r} must be an integer in [0, 2**32)")
        if self.text:
            self._fh.write(_encode_text(stage, int(hop), dtype, data, name).encode("utf-8"))
        else:
            self._fh.write(_encode_binary(stage, int(hop), dtype, data, name))
        self.count += 1

    def write(self, stage: str, hop: int, data, name: str = "") -> None:
        """Log ``data`` (an integer/float32 array, or text for ``info``) for ``stage`` at ``hop``."""
        if stage == "header":
            raise TraceError("the header record is written once, by the constructor")
        dtype, payload = _as_payload(stage, data)
        self._emit(stage, hop, dtype, payload, name)

    def close(self, hops: int | None = None) -> None:
        """Write the ``end`` record (its hop: ``hops``, default 0) and close an owned file."""
        if self._closed:
            return
        self._emit("end", 0 if hops is None else hops, "u32", np.array([self.count], np.uint32), "")
        self._closed = True
        if getattr(self, "_owns", False):
            self._fh.close()

    def __enter__(self) -> "TraceWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif getattr(self, "_owns", False):
            self._closed = True
            self._fh.close()


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------

def read_trace(path: str | os.PathLike, *, allow_partial: bool = False) -> Trace:
    """Read a binary or text trace file (the form is detected from its first bytes)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TraceError(f"cannot read trace {str(path)!r}: {exc.strerror or exc}") from exc
    return parse_trace(data, source=str(path), allow_partial=allow_partial)


def parse_trace(data: bytes, *, source: str = "trace", allow_partial: bool = False) -> Trace:
    """Parse trace bytes (binary or text form)."""
    if data[:len(MAGIC)] == MAGIC:
        return _parse_binary(data, source, allow_partial)
    if len(data) < len(MAGIC) and MAGIC.startswith(data) and data:
        raise TraceError(f"{source}: {len(data)} bytes, cut off inside the file header (truncated)")
    if TEXT_PREFIX.encode() in data or b"@sed" in data:
        return _parse_text(data, source, allow_partial)
    if not data:
        raise TraceError(f"{source}: the trace is empty")
    raise TraceError(f"{source}: not a sed trace: it starts with {data[:8]!r}, not {MAGIC!r}, "
                     f"and has no {TEXT_PREFIX!r} lines")


def _parse_header_json(text: str, source: str, where: str) -> dict[str, Any]:
    try:
        header = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TraceError(f"{source}: header record ({where}) is not valid JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise TraceError(f"{source}: header record ({where}) must be a JSON object")
    version = header.get("sed_trace")
    if version != FORMAT_VERSION:
        raise TraceError(f"{source}: header says trace format version {version!r}; this reader reads version "
                         f"{FORMAT_VERSION}")
    return header


def _finish(source: str, form: str, header, records, end, allow_partial: bool, last_where: str) -> Trace:
    notes = []
    if header is None:
        raise TraceError(f"{source}: no header record: the trace does not start with the header "
                         f"(truncated at the start, or not written by a sed trace writer)")
    complete = False
    if end is None:
        hop = records[-1].hop if records else None
        msg = (f"{source}: truncated: no end record after {len(records) + 1} records "
               f"(last: {records[-1].label} of hop {hop}, {last_where})" if records else
               f"{source}: truncated: the trace holds only its header")
        if not allow_partial:
            raise TraceError(msg + "; pass allow_partial (sed-verify --partial) to check what is there")
        notes.append(msg.split(": ", 1)[1])
    else:
        declared, where = end
        if declared != len(records) + 1:
            raise TraceError(f"{source}: the end record ({where}) counts {declared} records before it, but "
                             f"{len(records) + 1} are there: records were lost or duplicated")
        complete = True
    return Trace(header=header, records=records, form=form, complete=complete, source=source, notes=notes)


def _parse_binary(data: bytes, source: str, allow_partial: bool) -> Trace:
    if len(data) < _FILE_HEADER.size:
        raise TraceError(f"{source}: {len(data)} bytes, cut off inside the file header (truncated)")
    _, version, flags = _FILE_HEADER.unpack_from(data, 0)
    if version != FORMAT_VERSION:
        raise TraceError(f"{source}: trace format version {version}; this reader reads version {FORMAT_VERSION}")
    if flags != 0:
        raise TraceError(f"{source}: file header flags 0x{flags:04x} must be 0 in format version {FORMAT_VERSION}")
    pos = _FILE_HEADER.size
    header = None
    records: list[TraceRecord] = []
    end = None
    last_where = f"byte {pos}"
    n = len(data)
    while pos < n:
        where = f"record {len(records) + (header is not None) + 1} at byte {pos}"
        if end is not None:
            raise TraceError(f"{source}: data after the end record ({where})")
        if pos + _RECORD_HEAD.size > n:
            raise TraceError(f"{source}: truncated: {n - pos} bytes left at byte {pos}, less than a record head "
                             f"({_RECORD_HEAD.size} bytes)")
        size, stage_code, dtype_code, ndim, name_len, hop = _RECORD_HEAD.unpack_from(data, pos)
        if size < _RECORD_HEAD.size - 4 + _CRC.size or size > MAX_RECORD_BYTES:
            raise TraceError(f"{source}: corrupt {where}: record size {size} is impossible")
        if pos + 4 + size > n:
            raise TraceError(f"{source}: truncated: {where} announces {size + 4} bytes but only {n - pos} remain")
        stage = _STAGE_NAMES.get(stage_code)
        if stage is None:
            raise TraceError(f"{source}: corrupt {where}: unknown stage code 0x{stage_code:02x}")
        dt = _DTYPE_BY_CODE.get(dtype_code)
        if dt is None:
            raise TraceError(f"{source}: corrupt {where} ({stage}, hop {hop}): unknown dtype code {dtype_code}")
        dtype, np_dtype = dt
        if ndim > MAX_NDIM:
            raise TraceError(f"{source}: corrupt {where} ({stage}, hop {hop}): {ndim} dimensions (at most {MAX_NDIM})")
        q = pos + _RECORD_HEAD.size
        dims = struct.unpack_from(f"<{ndim}I", data, q)
        q += 4 * ndim
        count = 1
        for d in dims:
            count *= d
        itemsize = 1 if np_dtype is None else np_dtype.itemsize
        if dtype == "text" and ndim != 1:
            raise TraceError(f"{source}: corrupt {where} ({stage}, hop {hop}): a text record has 1 dimension, not {ndim}")
        expected = _RECORD_HEAD.size - 4 + 4 * ndim + name_len + count * itemsize + _CRC.size
        if expected != size:
            raise TraceError(f"{source}: corrupt {where} ({stage}, hop {hop}): shape {tuple(dims)} of {dtype} and a "
                             f"{name_len}-byte name need a {expected}-byte record, the size field says {size}")
        try:
            name = data[q:q + name_len].decode("utf-8")
        except UnicodeDecodeError:
            raise TraceError(f"{source}: corrupt {where} ({stage}, hop {hop}): the name is not UTF-8") from None
        q += name_len
        payload = data[q:q + count * itemsize]
        q += count * itemsize
        (crc,) = _CRC.unpack_from(data, q)
        crc_ok = zlib.crc32(data[pos:q]) == crc
        rec_where = f"byte {pos}"
        pos = q + _CRC.size
        if np_dtype is None:
            value: Any = payload.decode("utf-8", errors="replace")
        else:
            value = np.frombuffer(payload, np_dtype).reshape(dims).astype(np_dtype.newbyteorder("="))
        if stage == "header":
            if header is not None or records:
                raise TraceError(f"{source}: a second header record ({where})")
            if not crc_ok:
                raise TraceError(f"{source}: the header record ({where}) fails its checksum: the trace is damaged")
            if dtype != "text":
                raise TraceError(f"{source}: the header record ({where}) must hold text, not {dtype}")
            header = _parse_header_json(value, source, where)
            continue
        if header is None:
            raise TraceError(f"{source}: the first record ({where}) is a {stage} record, not the header")
        if stage == "end":
            if not crc_ok or dtype != "u32" or value.shape != (1,):
                raise TraceError(f"{source}: the end record ({where}) is damaged")
            end = (int(value[0]), where)
            continue
        records.append(TraceRecord(stage, hop, value, name, crc_ok, rec_where))
        last_where = rec_where
    return _finish(source, "binary", header, records, end, allow_partial, last_where)


def _parse_text(data: bytes, source: str, allow_partial: bool) -> Trace:
    header = None
    records: list[TraceRecord] = []
    end = None
    last_where = "line 0"
    lines = data.split(b"\n")
    cut_last = not data.endswith(b"\n")
    for number, raw in enumerate(lines, 1):
        start = raw.find(b"@sed")
        if start < 0:
            continue  # console output between trace lines
        raw = raw[start:].rstrip(b"\r")
        where = f"line {number}"
        prefix = raw.split(b" ", 1)[0]
        if prefix != TEXT_PREFIX.encode():
            version = prefix[4:].decode("ascii", "replace")
            raise TraceError(f"{source}: {where} is a trace line of format version {version!r}; this reader reads "
                             f"version {FORMAT_VERSION} ({TEXT_PREFIX} lines)")
        star = raw.rfind(b"*")
        is_last = number == len(lines) or (number == len(lines) - 1 and lines[-1] == b"")
        if star < 0 or len(raw) - star - 1 != 8:
            if is_last and cut_last:
                raise TraceError(f"{source}: truncated: the last line ({where}) is cut off before its checksum")
            raise TraceError(f"{source}: corrupt {where}: no '*<8 hex digits>' checksum at the end")
        body = raw[:star]
        try:
            crc = int(raw[star + 1:], 16)
        except ValueError:
            raise TraceError(f"{source}: corrupt {where}: checksum {raw[star + 1:]!r} is not hexadecimal") from None
        crc_ok = zlib.crc32(body) == crc
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            if crc_ok:
                raise TraceError(f"{source}: corrupt {where}: not UTF-8") from None
            text = body.decode("utf-8", errors="replace")
        fields_ = text.split(" ", 6)
        if len(fields_) < 7 or not text.endswith(" "):
            raise TraceError(f"{source}: corrupt {where}: expected '{TEXT_PREFIX} stage hop dtype dims name payload "
                             f"*crc', got {text[:60]!r}")
        _, stage, hop_s, dtype, dims_s, name, payload = fields_
        payload = payload[:-1]  # the space before '*'
        if stage not in STAGES:
            raise TraceError(f"{source}: corrupt {where}: unknown stage {stage!r}")
        if dtype not in DTYPES:
            raise TraceError(f"{source}: corrupt {where} ({stage}): unknown dtype {dtype!r}")
        try:
            hop = int(hop_s)
            dims = () if dims_s == "-" else tuple(int(d) for d in dims_s.split("x"))
        except ValueError:
            raise TraceError(f"{source}: corrupt {where} ({stage}): hop {hop_s!r} or dims {dims_s!r} is not an "
                             f"integer") from None
        if hop < 0 or any(d < 0 for d in dims) or len(dims) > MAX_NDIM:
            raise TraceError(f"{source}: corrupt {where} ({stage}): hop {hop} / dims {dims_s} out of range")
        name = "" if name == "-" else name
        np_dtype = DTYPES[dtype][1]
        if np_dtype is None:
            value: Any = payload
            if len(payload.encode("utf-8")) != (dims[0] if dims else -1) and crc_ok:
                raise TraceError(f"{source}: corrupt {where} ({stage}): text of {len(payload.encode('utf-8'))} bytes, "
                                 f"dims say {dims_s}")
        else:
            tokens = payload.split(" ") if payload else []
            count = 1
            for d in dims:
                count *= d
            if len(tokens) != count:
                raise TraceError(f"{source}: corrupt {where} ({stage}, hop {hop}): {len(tokens)} values, dims "
                                 f"{dims_s} need {count}")
            try:
                if dtype == "f32":
                    value = np.array([int(t, 16) for t in tokens], np.uint32).view(np.float32)
                else:
                    ints = [int(t) for t in tokens]
                    info = np.iinfo(np_dtype)
                    if ints and (min(ints) < info.min or max(ints) > info.max):
                        raise ValueError
                    value = np.array(ints, np_dtype.newbyteorder("="))
            except (ValueError, OverflowError):
                raise TraceError(f"{source}: corrupt {where} ({stage}, hop {hop}): a value is not a {dtype}") from None
            value = value.reshape(dims)
        if stage == "header":
            if header is not None or records:
                raise TraceError(f"{source}: a second header record ({where})")
            if not crc_ok:
                raise TraceError(f"{source}: the header record ({where}) fails its checksum: the trace is damaged")
            header = _parse_header_json(value, source, where)
            continue
        if header is None:
            raise TraceError(f"{source}: the first trace line ({where}) is a {stage} record, not the header")
        if end is not None:
            raise TraceError(f"{source}: a record after the end record ({where})")
        if stage == "end":
            if not crc_ok or dtype != "u32" or value.shape != (1,):
                raise TraceError(f"{source}: the end record ({where}) is damaged")
            end = (int(value[0]), where)
            continue
        records.append(TraceRecord(stage, hop, value, name, crc_ok, where))
        last_where = where
    if header is None and not records:
        raise TraceError(f"{source}: no {TEXT_PREFIX} lines: not a sed trace")
    return _finish(source, "text", header, records, end, allow_partial, last_where)


# ---------------------------------------------------------------------------
# Identity: what a trace belongs to
# ---------------------------------------------------------------------------

def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("utf-8")


def frontend_identity(spec, tables=None) -> dict[str, Any]:
    """The frontend's identity: its frame geometry and a digest of everything that fixes its integers.

    For the CMSIS-DSP family the digest covers the frame parameters, the
    feature quantization (multiplier, shift, zero point) and the table
    integers (window, mel filters, DCT), so firmware that uses its own tables
    is identified by what it computes with.  Other families hash their spec.
    The arithmetic ``target`` is not part of it: one export serves every core.
    """
    from sed_runtime.frontend.spec import FrontendSpec

    params: dict[str, Any] = {
        "family": spec.family,
        "sample_rate_hz": spec.sample_rate_hz,
        "window_samples": spec.window_samples,
        "hop_samples": spec.hop_samples,
        "bins": spec.bins,
    }
    h = hashlib.sha256()
    if isinstance(spec, FrontendSpec):
        from sed_runtime.fixedpoint import quantize_multiplier
        from sed_runtime.frontend.cmsis import CmsisFrontend

        if tables is None:
            tables = CmsisFrontend(spec).prepare().tables
        params.update(fft_len=spec.fft_len, n_mels=spec.n_mels, n_dct=spec.n_dct, output=spec.output,
                      lower_hz=spec.lower_hz, upper_hz=spec.upper_hz, window=spec.window)
        if spec.quantization is not None:
            mult, shift = quantize_multiplier(1.0 / (128.0 * spec.quantization.scale))
            params["quantization"] = {"scale": spec.quantization.scale, "zero_point": spec.quantization.zero_point,
                                      "multiplier": int(mult), "shift": int(shift)}
        else:
            params["quantization"] = None
        h.update(_canonical({k: v for k, v in params.items() if k not in ("lower_hz", "upper_hz", "window")}))
        for arr, dt in ((tables.window_q15, "<i2"), (tables.filter_pos, "<u4"), (tables.filter_len, "<u4"),
                        (tables.filter_coefs_q15, "<i2"), (tables.dct_q15, "<i2")):
            h.update(np.ascontiguousarray(arr, dtype=dt).tobytes())
    else:
        d = dict(spec.to_dict())
        d.pop("target", None)
        params["spec"] = d
        h.update(_canonical(params))
    params["frontend_sha256"] = h.hexdigest()
    return params


def identity_digest(data: bytes) -> str:
    """sha256 hex digest of a model file's bytes (the ``model_sha256`` of an identity)."""
    return hashlib.sha256(data).hexdigest()


def records_by_key(records: Iterable[TraceRecord]) -> dict[tuple[int, str, str], TraceRecord]:
    """Index records by (hop, stage, name); a duplicate key raises TraceError."""
    out: dict[tuple[int, str, str], TraceRecord] = {}
    for rec in records:
        key = (rec.hop, rec.stage, rec.name)
        if key in out:
            raise TraceError(f"two {rec.label} records for hop {rec.hop} ({out[key].where} and {rec.where})")
        out[key] = rec
    return out


def write_trace_bytes(header: dict[str, Any], records: Iterable[tuple[str, int, Any, str]], *,
                      text: bool = False) -> bytes:
    """A whole trace as bytes: ``records`` yields (stage, hop, data, name)."""
    buf = io.BytesIO()
    writer = TraceWriter(buf, header, text=text)
    last_hop = 0
    for stage, hop, data, name in records:
        writer.write(stage, hop, data, name)
        last_hop = max(last_hop, hop + 1)
    writer.close(last_hop)
    return buf.getvalue()
