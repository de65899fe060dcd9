"""Firmware traces: both forms round-trip; a divergence is located exactly; bad traces are refused clearly.

The C writer (``examples/firmware/sed_trace.h``) is compiled for this host and
its output read back, in both forms, when a C compiler is present.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED
from sed_runtime.cli import verify_main
from sed_runtime.errors import TraceError
from sed_runtime.frontend import FrontendSpec
from sed_runtime.io.trace import (
    MAGIC,
    TraceWriter,
    parse_trace,
    read_trace,
    write_trace_bytes,
)
from sed_runtime.io.wavfile import read_pcm16
from sed_runtime.verify import RuntimeReference, record_trace, verify_trace

REPO = Path(__file__).resolve().parents[2]
TRACE_H = REPO / "examples" / "firmware" / "sed_trace.h"
CLIP = SHARED / "fixtures" / "real" / "dog_bark.wav"
SPEC = dict(sample_rate_hz=16000, window_samples=400, hop_samples=160, fft_len=512, n_mels=40, lower_hz=20.0,
            n_dct=0, quantization={"scale": 0.08, "zero_point": 12})


def _arrays():
    rng = np.random.default_rng(7)
    return [
        ("pcm", 0, rng.integers(-32768, 32768, 400).astype(np.int16), ""),
        ("features", 0, rng.integers(-1100, 800, 40).astype(np.int16), ""),
        ("features_s8", 0, rng.integers(-128, 128, 40).astype(np.int8), ""),
        ("tensor", 0, rng.integers(0, 256, (2, 3, 4)).astype(np.uint8), "conv1/Relu"),
        ("tensor", 0, rng.integers(-2**31, 2**31, (3, 2), dtype=np.int64).astype(np.int32), "bias_acc"),
        ("tensor", 1, rng.integers(0, 2**32, 5, dtype=np.int64).astype(np.uint32), "u32"),
        ("tensor", 1, rng.integers(0, 65536, 5).astype(np.uint16), "u16"),
        ("output", 1, np.array([[np.float32(1.5), -0.0, np.inf, np.float32(1e-40)]], np.float32), ""),
        ("decision", 1, np.array(7, np.int32), ""),
        ("event", 1, np.array([2, 10, 14, 90], np.int32), ""),
        ("info", 2, "board rev C, 168 MHz: all good", ""),
        ("features", 2, np.zeros(0, np.int16), ""),
    ]


def _equal(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
def test_round_trip_keeps_every_dtype_shape_name_and_bit(text):
    records = _arrays()
    data = write_trace_bytes({"target": "dsp", "device": "unit test", "identity": {"x": 1}}, records, text=text)
    assert data.startswith(MAGIC) != text
    trace = parse_trace(data)
    assert trace.form == ("text" if text else "binary")
    assert trace.complete and trace.header["target"] == "dsp" and trace.header["identity"] == {"x": 1}
    assert trace.header["sed_trace"] == 1
    assert len(trace.records) == len(records)
    for rec, (stage, hop, value, name) in zip(trace.records, records):
        assert (rec.stage, rec.hop, rec.name) == (stage, hop, name)
        assert rec.crc_ok
        assert _equal(rec.data, value), (stage, name)


def test_text_form_ignores_console_lines_and_accepts_crlf_and_prefixes():
    data = write_trace_bytes({"target": "generic"}, _arrays()[:3], text=True).decode()
    noisy = "boot: ok\r\n" + "".join(f"[{i:4d}.000] {line}\r\nsensor: 23.5 C\r\n"
                                       for i, line in enumerate(data.splitlines()))
    trace = parse_trace(noisy.encode())
    assert trace.complete and len(trace.records) == 3
    assert _equal(trace.records[1].data, _arrays()[1][2])


def test_writer_refuses_what_the_format_cannot_hold():
    import io

    w = TraceWriter(io.BytesIO(), {})
    with pytest.raises(TraceError, match="dtype int64"):
        w.write("features", 0, np.zeros(3, np.int64))
    with pytest.raises(TraceError, match="whitespace"):
        w.write("tensor", 0, np.zeros(3, np.int8), name="two words")
    with pytest.raises(TraceError, match="stage 'bogus'"):
        w.write("bogus", 0, np.zeros(3, np.int8))
    with pytest.raises(TraceError, match="hop"):
        w.write("pcm", -1, np.zeros(3, np.int16))
    with pytest.raises(TraceError, match="one line"):
        w.write("info", 0, "a\nb")


# ---------------------------------------------------------------------------
# The runtime's trace of a real clip, and a device that differs in one place
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clip():
    samples, _ = read_pcm16(CLIP, 16000)
    return samples


@pytest.fixture(scope="module")
def reference(clip):
    return RuntimeReference(FrontendSpec(**SPEC)).run(clip)


@pytest.fixture(scope="module", params=[False, True], ids=["binary", "text"])
def recorded(request, reference, tmp_path_factory):
    path = tmp_path_factory.mktemp("trace") / ("runtime.txt" if request.param else "runtime.trace")
    record_trace(path, reference)
    return path


def test_the_runtimes_own_trace_verifies_equal(recorded, reference):
    trace = read_trace(recorded)
    assert trace.stages() == ["pcm", "features", "features_s8"]
    report = verify_trace(trace, reference)
    assert report.ok, "\n".join(report.lines())
    assert [s.records for s in report.stages] == [reference.hops] * 3
    assert report.stages[1].elements == reference.hops * 40


def _rewrite(trace, change):
    """Re-encode ``trace`` with ``change(stage, hop, data)`` applied: a device that computed differently."""
    records = []
    for rec in trace.records:
        data = rec.data if isinstance(rec.data, str) else rec.data.copy()
        change(rec.stage, rec.hop, data)
        records.append((rec.stage, rec.hop, data, rec.name))
    return write_trace_bytes(trace.header, records, text=trace.form == "text")


@pytest.mark.parametrize("stage,hop,index", [("features", 37, 21), ("features_s8", 5, 0), ("pcm", 60, 159),
                                             ("features", 0, 39)])
def test_one_flipped_bit_is_reported_at_its_hop_stage_and_element(recorded, reference, stage, hop, index):
    trace = read_trace(recorded)

    def flip(s, h, data):
        if (s, h) == (stage, hop):
            data.view(np.uint8 if data.dtype.itemsize == 1 else np.uint16)[index] ^= 1 << 3

    bad = parse_trace(_rewrite(trace, flip))
    report = verify_trace(bad, reference)
    assert not report.ok
    first = report.first
    expected = reference.value(stage, hop)[index]
    assert (first.hop, first.stage, first.index) == (hop, stage, (index,))
    assert first.runtime == int(expected) and first.device == int(expected ^ (1 << 3) if expected.dtype != np.int8
                                                                   else np.int8(np.uint8(expected) ^ 8))
    counts = {s.stage: (s.differing_records, s.differing_elements) for s in report.stages}
    assert counts[stage] == (1, 1)
    assert sum(c[1] for c in counts.values()) == 1
    assert not first.damaged
    line = next(x for x in report.lines() if x.startswith("FIRST DIVERGENCE"))
    word = "sample" if stage == "pcm" else "bin"
    assert f"hop {hop}, stage {stage}, {word} {index}: device {first.device}, runtime {first.runtime}" in line


def _locate_payload(data: bytes, stage_code: int, hop: int) -> int:
    """Byte offset of the payload of the binary record (stage, hop)."""
    pos = 12
    while pos < len(data):
        size = int.from_bytes(data[pos:pos + 4], "little")
        code, ndim, name_len = data[pos + 4], data[pos + 6], data[pos + 7]
        rec_hop = int.from_bytes(data[pos + 8:pos + 12], "little")
        if code == stage_code and rec_hop == hop:
            return pos + 12 + 4 * ndim + name_len
        pos += 4 + size
    raise AssertionError("record not found")


def test_a_bit_flipped_in_the_file_is_located_and_flagged_as_damage(tmp_path, reference):
    path = tmp_path / "runtime.trace"
    record_trace(path, reference)
    data = bytearray(path.read_bytes())
    at = _locate_payload(bytes(data), 0x20, 44) + 2 * 17  # features of hop 44, bin 17 (int16)
    data[at] ^= 0x01
    trace = parse_trace(bytes(data), source="flipped.trace")
    report = verify_trace(trace, reference)
    assert (report.first.hop, report.first.stage, report.first.index) == (44, "features", (17,))
    assert report.first.damaged and not report.ok
    assert [(r.stage, r.hop) for r in report.damaged] == [("features", 44)]
    assert any("fails its checksum" in line for line in report.lines())


def test_a_character_changed_in_a_text_trace_is_located_and_flagged(tmp_path, reference):
    path = tmp_path / "runtime.txt"
    record_trace(path, reference)
    lines = path.read_text().splitlines(keepends=True)
    i = next(k for k, line in enumerate(lines) if line.startswith("@sed1 features 9 "))
    fields = lines[i].split(" ")
    value = int(fields[6 + 3])  # bin 3 (payload from field 6)
    fields[6 + 3] = str(value + 1)
    lines[i] = " ".join(fields)
    report = verify_trace(parse_trace("".join(lines).encode()), reference)
    assert (report.first.hop, report.first.stage, report.first.index) == (9, "features", (3,))
    assert (report.first.device, report.first.runtime) == (value + 1, value)
    assert report.first.damaged


# ---------------------------------------------------------------------------
# Truncated, corrupt, mismatched
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def binary_bytes(reference, tmp_path_factory):
    path = tmp_path_factory.mktemp("bin") / "runtime.trace"
    record_trace(path, reference)
    return path.read_bytes()


@pytest.mark.parametrize("keep", [3, 10, 30, 100, 1001, -1, -5])
def test_truncated_binary_traces_are_refused(binary_bytes, keep):
    data = binary_bytes[:keep]
    with pytest.raises(TraceError, match="truncated"):
        parse_trace(data, source="cut.trace")


def test_a_trace_cut_at_a_record_boundary_needs_allow_partial(binary_bytes, reference):
    trace = parse_trace(binary_bytes)
    cut = write_trace_bytes(trace.header, [(r.stage, r.hop, r.data, r.name) for r in trace.records[:30]])
    end = cut.rfind(b"\x7f\x06") - 4  # drop the end record
    with pytest.raises(TraceError, match=r"truncated: no end record .* pass allow_partial"):
        parse_trace(cut[:end])
    partial = parse_trace(cut[:end], allow_partial=True)
    assert not partial.complete and len(partial.records) == 30
    report = verify_trace(partial, reference)
    assert report.first is None and not report.ok
    assert any("logged 10 of" in m for m in report.missing)
    assert verify_trace(partial, reference, allow_partial=True).ok


def test_truncated_text_trace_is_refused(reference, tmp_path):
    path = tmp_path / "runtime.txt"
    record_trace(path, reference)
    text = path.read_bytes()
    with pytest.raises(TraceError, match="cut off before its checksum"):
        parse_trace(text[: len(text) // 2])
    lines = text.splitlines(keepends=True)
    with pytest.raises(TraceError, match="no end record"):
        parse_trace(b"".join(lines[:-1]))
    with pytest.raises(TraceError, match="records were lost"):
        parse_trace(b"".join(lines[:5] + lines[6:]))


@pytest.mark.parametrize("what,edit,message", [
    ("magic", lambda d: b"XEDTRACE" + d[8:], "not a sed trace"),
    ("version", lambda d: d[:8] + b"\x02\x00" + d[10:], "format version 2"),
    ("flags", lambda d: d[:10] + b"\x01\x00" + d[12:], "flags"),
    ("size", lambda d: d[:12] + (0xFFFFFFF0).to_bytes(4, "little") + d[16:], "record size .* impossible"),
    ("stage", lambda d: d[:16] + b"\x99" + d[17:], "unknown stage code 0x99"),
    ("dtype", lambda d: d[:17] + b"\x63" + d[18:], "unknown dtype code 99"),
    ("empty", lambda d: b"", "empty"),
])
def test_corrupt_binary_traces_name_the_problem(binary_bytes, what, edit, message):
    with pytest.raises(TraceError, match=message):
        parse_trace(edit(binary_bytes), source="bad.trace")


def test_corrupt_header_and_shape_fields(binary_bytes):
    data = bytearray(binary_bytes)
    data[40] ^= 0xFF  # inside the header JSON: its checksum fails
    with pytest.raises(TraceError, match="header record .* fails its checksum"):
        parse_trace(bytes(data))
    pos = _locate_payload(binary_bytes, 0x20, 3) - 4  # the dims[0] field of features hop 3
    data = bytearray(binary_bytes)
    data[pos] ^= 0x01
    with pytest.raises(TraceError, match=r"corrupt .*features, hop 3.*size field"):
        parse_trace(bytes(data))


def test_newer_text_format_version_is_refused():
    with pytest.raises(TraceError, match="format version '2'"):
        parse_trace(b"@sed2 header 0 text 2 - {} *00000000\n")


def test_a_trace_from_another_sample_rate_is_refused(clip, reference):
    spec8k = FrontendSpec(**{**SPEC, "sample_rate_hz": 8000, "upper_hz": 4000.0})
    other = RuntimeReference(spec8k).run(clip[::2].copy())
    data = write_trace_bytes({"target": "generic", "identity": other.identity},
                             [("features", 0, other.features[0], "")])
    with pytest.raises(TraceError, match="sample rate 8000 Hz, but the runtime's frontend runs at 16000 Hz"):
        verify_trace(parse_trace(data, source="8k.trace"), reference)


@pytest.mark.parametrize("change,message", [
    ({"n_mels": 32}, r"another frontend: .*n_mels: trace 32, runtime 40"),
    ({"hop_samples": 200}, r"another frontend: hop_samples: trace 200, runtime 160"),
    ({"quantization": {"scale": 0.05, "zero_point": 12}}, r"another frontend: quantization"),
    ({"lower_hz": 60.0}, r"other frontend tables"),
])
def test_a_trace_from_another_frontend_is_refused(clip, reference, change, message):
    other = RuntimeReference(FrontendSpec(**{**SPEC, **change})).run(clip)
    data = write_trace_bytes({"target": "generic", "identity": other.identity},
                             [("features", 0, other.features[0], "")])
    with pytest.raises(TraceError, match=message):
        verify_trace(parse_trace(data), reference)


def test_a_trace_of_another_model_is_refused(reference, recorded):
    trace = read_trace(recorded)
    trace.header["identity"] = {**trace.identity, "model_sha256": "ab" * 32}
    ref = RuntimeReference(FrontendSpec(**SPEC)).run(reference.samples)
    ref.model_sha256 = "cd" * 32  # as for a model given with --model
    with pytest.raises(TraceError, match=r"built for another model: model digest abababababab\.\.\. in the trace"):
        verify_trace(trace, ref)


def test_a_trace_without_identity_is_refused(reference):
    data = write_trace_bytes({"target": "generic"}, [("features", 0, reference.features[0], "")])
    with pytest.raises(TraceError, match="carries no identity"):
        verify_trace(parse_trace(data), reference)


def test_a_trace_of_other_audio(reference, clip):
    longer = RuntimeReference(FrontendSpec(**SPEC)).run(np.concatenate([clip, clip]))
    data = write_trace_bytes({"target": "generic", "identity": longer.identity},
                             longer.records(["pcm", "features"]))
    with pytest.raises(TraceError, match=r"the audio gives \d+ hops: the trace belongs to other audio"):
        verify_trace(parse_trace(data), reference)
    shifted = RuntimeReference(FrontendSpec(**SPEC)).run(clip[1:].copy())
    data = write_trace_bytes({"target": "generic", "identity": shifted.identity},
                             shifted.records(["pcm", "features"]))
    report = verify_trace(parse_trace(data), reference)
    assert (report.first.hop, report.first.stage) == (0, "pcm")
    assert any(line.startswith("hint: the device's input samples differ") for line in report.lines())


def test_a_record_of_the_wrong_shape_is_refused(reference):
    data = write_trace_bytes({"target": "generic", "identity": reference.identity},
                             [("features", 0, reference.features[0][:32], "")])
    with pytest.raises(TraceError, match=r"features record of hop 0 .* holds int16 \(32,\); the runtime computes "
                                          r"int16 \(40,\)"):
        verify_trace(parse_trace(data), reference)


# ---------------------------------------------------------------------------
# sed-verify
# ---------------------------------------------------------------------------

@pytest.fixture
def spec_path(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(SPEC))
    return path


def test_sed_verify_exit_codes_and_record(tmp_path, spec_path, capsys):
    out = tmp_path / "rt.log"
    assert verify_main(["--frontend", str(spec_path), "--audio", str(CLIP), "--record", str(out)]) == 0
    assert out.read_bytes().startswith(b"@sed1 header")
    assert verify_main(["--frontend", str(spec_path), "--audio", str(CLIP), "--trace", str(out)]) == 0
    assert "EQUAL:" in capsys.readouterr().out
    lines = out.read_text().splitlines(keepends=True)
    i = next(k for k, line in enumerate(lines) if line.startswith("@sed1 features_s8 12 "))
    fields = lines[i].split(" ")
    value = int(fields[6])
    fields[6] = str(value - 1 if value > -128 else value + 1)
    body = " ".join(fields).rsplit("*", 1)[0]
    lines[i] = f"{body}*{zlib.crc32(body.encode()):08x}\n"  # re-checksummed: a device that computed differently
    bad = tmp_path / "device.log"
    bad.write_text("".join(lines))
    assert verify_main(["--frontend", str(spec_path), "--audio", str(CLIP), "--trace", str(bad)]) == 1
    text = capsys.readouterr().out
    assert re.search(r"FIRST DIVERGENCE: hop 12, stage features_s8, bin 0: device -?\d+, runtime -?\d+", text)
    assert verify_main(["--frontend", str(spec_path), "--audio", str(CLIP), "--trace", str(bad), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["first_divergence"]["hop"] == 12 and not report["ok"]
    assert verify_main(["--frontend", str(spec_path), "--audio", str(CLIP), "--trace", str(bad),
                        "--stages", "pcm,features"]) == 0


def test_sed_verify_refuses_a_corrupt_trace_in_one_line(tmp_path, spec_path, capsys):
    bad = tmp_path / "bad.trace"
    bad.write_bytes(MAGIC + b"\x01\x00\x00\x00" + b"\x05")
    assert verify_main(["--frontend", str(spec_path), "--audio", str(CLIP), "--trace", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "truncated" in err[0]


# ---------------------------------------------------------------------------
# The C writer, compiled for this host
# ---------------------------------------------------------------------------

C_PROGRAM = r"""
#include <stdio.h>
#include "sed_trace.h"

static void out(void *ctx, const void *data, size_t len) { fwrite(data, 1, len, (FILE *)ctx); }

int main(int argc, char **argv)
{
    sed_trace_writer w;
    FILE *f = fopen(argv[1], "wb");
    int16_t pcm[300];
    int8_t s8[5] = {-128, -1, 0, 1, 127};
    int32_t acc[2][3] = {{-2147483647 - 1, -1, 0}, {1, 2147483647, 42}};
    uint32_t dims[2] = {2, 3};
    float f32[3] = {1.5f, -0.0f, 3.0e-40f};
    uint32_t i;
    (void)argc;
    for (i = 0; i < 300; i++) pcm[i] = (int16_t)(i * 219 - 32768);
    sed_trace_begin(&w, out, f, argv[2][0] == 't' ? SED_TRACE_TEXT : SED_TRACE_BINARY,
                    "{\"sample_rate_hz\":16000}", "dsp", "host \"test\" \\ build");
    sed_trace_i16(&w, SED_STAGE_PCM, 0, pcm, 300);
    sed_trace_i8(&w, SED_STAGE_FEATURES_S8, 0, s8, 5);
    sed_trace_record(&w, SED_STAGE_TENSOR, 1, SED_DT_I32, 2, dims, "acc", acc);
    sed_trace_vector(&w, SED_STAGE_OUTPUT, 1, SED_DT_F32, NULL, f32, 3);
    sed_trace_info(&w, 2, "hello from C");
    sed_trace_end(&w, 3);
    fclose(f);
    return 0;
}
"""


@pytest.fixture(scope="module")
def c_writer(tmp_path_factory):
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler (gcc) on PATH to build the sed_trace.h test program")
    d = tmp_path_factory.mktemp("cwriter")
    (d / "main.c").write_text(C_PROGRAM)
    exe = d / "writer"
    res = subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I", str(TRACE_H.parent),
                          str(d / "main.c"), "-o", str(exe)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return exe


@pytest.mark.parametrize("form", ["binary", "text"])
def test_c_writer_output_reads_back_exactly(c_writer, tmp_path, form):
    path = tmp_path / f"c.{form}"
    subprocess.run([str(c_writer), str(path), form[0]], check=True)
    trace = read_trace(path)
    assert trace.complete and trace.form == form
    assert trace.header == {"device": "host _test_ _ build", "identity": {"sample_rate_hz": 16000},
                            "sed_trace": 1, "target": "dsp"}
    pcm, s8, acc, f32, info = trace.records
    assert np.array_equal(pcm.data, (np.arange(300) * 219 - 32768).astype(np.int16)) and pcm.stage == "pcm"
    assert s8.data.tolist() == [-128, -1, 0, 1, 127] and s8.data.dtype == np.int8
    assert acc.name == "acc" and acc.data.tolist() == [[-2**31, -1, 0], [1, 2**31 - 1, 42]]
    assert f32.data.tobytes() == np.array([1.5, -0.0, 3.0e-40], np.float32).tobytes()
    assert (info.stage, info.hop, info.data) == ("info", 2, "hello from C")
    assert all(r.crc_ok for r in trace.records)


def test_c_writer_binary_equals_the_python_writer(c_writer, tmp_path):
    path = tmp_path / "c.bin"
    subprocess.run([str(c_writer), str(path), "b"], check=True)
    trace = read_trace(path)
    records = [(r.stage, r.hop, r.data, r.name) for r in trace.records]
    header = {k: v for k, v in trace.header.items() if k != "sed_trace"}
    assert write_trace_bytes(header, records)[:12] == path.read_bytes()[:12]
    # same records, same bytes after the header record
    ours = write_trace_bytes(header, records)
    skip_ours = 12 + 4 + int.from_bytes(ours[12:16], "little")
    skip_c = 12 + 4 + int.from_bytes(path.read_bytes()[12:16], "little")
    assert ours[skip_ours:] == path.read_bytes()[skip_c:]
