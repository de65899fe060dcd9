"""sed-export: the C header compiles cleanly everywhere and holds the runtime's integers; the model round-trips.

* the header compiles with ``gcc -std=c99 -Wall -Wextra -Werror -pedantic``
  (two translation units, one defining the arrays), as C++, and with
  ``arm-none-eabi-gcc`` for Cortex-M3 and Cortex-M4 when installed;
* a program compiled against it prints the tables, which equal the runtime's;
* ``sed-export --model``: the ``.tflite`` loaded back by the engine gives the
  same outputs, its bytes are in the header, its identity names the model, and
  ``sed-verify --model`` accepts the runtime's own trace and refuses one from
  another model.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED
from sed_runtime import load_model
from sed_runtime.cli import export_main, verify_main
from sed_runtime.errors import ConfigError
from sed_runtime.export.c_header import c_string, frontend_header, write_frontend_export
from sed_runtime.export.firmware import export_firmware
from sed_runtime.fixedpoint import quantize_multiplier
from sed_runtime.frontend import CmsisFrontend, FrontendSpec
from sed_runtime.frontend.tflm import MICRO_SPEECH_SPEC
from sed_runtime.io.trace import read_trace, write_trace_bytes
from sed_runtime.model.graph import Graph, Operator, Quantization, Tensor
from sed_runtime.model.metadata import write_metadata
from sed_runtime.verify import model_digest

MICRO = SHARED / "fixtures" / "micro_speech"
CLIP = SHARED / "fixtures" / "real" / "speech_en_11s.wav"
GCC = shutil.which("gcc")
GXX = shutil.which("g++")
ARM_GCC = shutil.which("arm-none-eabi-gcc")

SPECS = {
    "logmel": FrontendSpec(sample_rate_hz=16000, window_samples=512, hop_samples=256, fft_len=512, n_mels=40,
                           lower_hz=20.0),
    "mfcc_s8": FrontendSpec(sample_rate_hz=16000, window_samples=400, hop_samples=160, fft_len=512, n_mels=40,
                            n_dct=13, quantization={"scale": 0.05, "zero_point": -3}),
    "fft8192": FrontendSpec(sample_rate_hz=48000, window_samples=8192, hop_samples=4096, fft_len=8192, n_mels=128,
                            n_dct=20, quantization={"scale": 1e-4, "zero_point": -128}),
}

DUMP_C = r"""
#include <stdio.h>
#define SED_MODEL_IMPLEMENTATION
#include "sed_model.h"

int other_unit(void);

int main(void)
{
    int i;
    printf("%d %d %d %d %d %d %d\n", SED_SAMPLE_RATE_HZ, SED_WINDOW_SAMPLES, SED_HOP_SAMPLES, SED_FFT_LEN,
           SED_N_MELS, SED_N_DCT, SED_FEATURE_BINS);
    for (i = 0; i < SED_FFT_LEN; i++) printf("%d ", sed_window_q15[i]);
    printf("\n");
    for (i = 0; i < SED_N_MELS; i++) printf("%lu ", (unsigned long)sed_filter_pos[i]);
    printf("\n");
    for (i = 0; i < SED_N_MELS; i++) printf("%lu ", (unsigned long)sed_filter_len[i]);
    printf("\n");
    for (i = 0; i < SED_FILTER_COEFS_LEN; i++) printf("%d ", sed_filter_coefs_q15[i]);
    printf("\n");
#if SED_N_DCT > 0
    for (i = 0; i < SED_N_DCT * SED_N_MELS; i++) printf("%d ", sed_dct_q15[i]);
#endif
    printf("\n");
#if SED_FEATURE_QUANTIZED
    printf("%ld %d %d\n", (long)SED_FEATURE_MULTIPLIER, SED_FEATURE_SHIFT, SED_FEATURE_ZERO_POINT);
#else
    printf("none\n");
#endif
    printf("%s\n", SED_TRACE_IDENTITY);
    return other_unit() == 0 ? 0 : 1;
}
"""

OTHER_C = r"""
#include "sed_model.h"
#include "sed_model.h" /* twice: the guard holds */
int other_unit(void) { return sed_window_q15[0] + SED_FEATURE_BINS - SED_FEATURE_BINS; }
"""


def _compile(cc, flags, sources, out, cwd):
    res = subprocess.run([cc, *flags, *map(str, sources), "-o", str(out)], capture_output=True, text=True, cwd=cwd)
    assert res.returncode == 0, f"{cc} {' '.join(flags)}:\n{res.stderr}"


@pytest.mark.skipif(GCC is None, reason="needs gcc to compile the exported header")
@pytest.mark.parametrize("name", sorted(SPECS))
def test_header_compiles_warning_free_and_holds_the_runtime_tables(tmp_path, name):
    spec = SPECS[name]
    paths = write_frontend_export(spec, tmp_path)
    (tmp_path / "dump.c").write_text(DUMP_C)
    (tmp_path / "other.c").write_text(OTHER_C)
    exe = tmp_path / "dump"
    _compile(GCC, ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I", str(tmp_path)],
             [tmp_path / "dump.c", tmp_path / "other.c"], exe, tmp_path)
    lines = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.splitlines()
    tables = CmsisFrontend(spec).prepare().tables

    def ints(line):
        return np.array([int(v) for v in line.split()], np.int64)

    assert ints(lines[0]).tolist() == [spec.sample_rate_hz, spec.window_samples, spec.hop_samples, spec.fft_len,
                                       spec.n_mels, spec.n_dct, spec.bins]
    assert np.array_equal(ints(lines[1]), tables.window_q15)
    assert np.array_equal(ints(lines[2]), tables.filter_pos)
    assert np.array_equal(ints(lines[3]), tables.filter_len)
    assert np.array_equal(ints(lines[4]), tables.filter_coefs_q15)
    assert np.array_equal(ints(lines[5]), tables.dct_q15.reshape(-1))
    if spec.quantization is None:
        assert lines[6] == "none"
    else:
        mult, shift = quantize_multiplier(1.0 / (128.0 * spec.quantization.scale))
        assert ints(lines[6]).tolist() == [mult, shift, spec.quantization.zero_point]
    identity = json.loads(lines[7])
    assert identity["sample_rate_hz"] == spec.sample_rate_hz and len(identity["frontend_sha256"]) == 64
    assert json.loads(paths["frontend"].read_text())["fft_len"] == spec.fft_len


@pytest.mark.skipif(GXX is None, reason="needs g++")
def test_header_compiles_as_cpp(tmp_path):
    write_frontend_export(SPECS["mfcc_s8"], tmp_path)
    (tmp_path / "a.cpp").write_text('#define SED_MODEL_IMPLEMENTATION\n#include "sed_model.h"\n'
                                    "int main() { return sed_dct_q15[0] == 0; }\n")
    _compile(GXX, ["-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I", str(tmp_path)],
             [tmp_path / "a.cpp"], tmp_path / "a", tmp_path)


@pytest.mark.skipif(ARM_GCC is None, reason="needs arm-none-eabi-gcc (Debian gcc-arm-none-eabi)")
@pytest.mark.parametrize("cpu", ["-mcpu=cortex-m3", "-mcpu=cortex-m4 -mfloat-abi=hard -mfpu=fpv4-sp-d16",
                                 "-mcpu=cortex-m0plus"])
def test_header_compiles_for_cortex_m(tmp_path, cpu):
    write_frontend_export(SPECS["mfcc_s8"], tmp_path)
    (tmp_path / "dump.c").write_text(DUMP_C.replace("#include <stdio.h>", "#define printf(...) ((void)0)"))
    (tmp_path / "other.c").write_text(OTHER_C)
    for src in ("dump.c", "other.c"):
        _compile(ARM_GCC, ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-mthumb", *cpu.split(), "-O2",
                           "-c", "-I", str(tmp_path)], [tmp_path / src], tmp_path / (src + ".o"), tmp_path)


def test_firmware_tables_from_a_file_are_exported(tmp_path):
    tables = CmsisFrontend(SPECS["logmel"]).prepare().tables
    window = tables.window_q15.copy()
    window[100] -= 1  # a firmware whose window differs in one value
    np.savez(tmp_path / "mine.npz", window=window, filter_pos=tables.filter_pos, filter_len=tables.filter_len,
             filter_coefs=tables.filter_coefs_q15, dct=tables.dct_q15)
    spec_json = tmp_path / "spec.json"
    spec_json.write_text(json.dumps({**SPECS["logmel"].to_dict(), "tables": "mine.npz"}))
    assert export_main(["--frontend", str(spec_json), "--out", str(tmp_path / "out")]) == 0
    header = (tmp_path / "out" / "sed_model.h").read_text()
    body = header.split("sed_window_q15[SED_FFT_LEN] = {")[1].split("}")[0]
    assert [int(v) for v in body.replace("\n", " ").split(",")] == window.tolist()
    exported = json.loads((tmp_path / "out" / "frontend.json").read_text())
    assert exported["tables"] == "frontend_tables.npz" and (tmp_path / "out" / "frontend_tables.npz").is_file()
    default_id = frontend_header(SPECS["logmel"]).split("SED_TRACE_IDENTITY ")[1].split("\n")[0]
    assert default_id not in header  # other tables, other identity


def test_c_string_escapes():
    assert c_string('a"b\\c?') == r'"a\"b\\c\077"'
    assert c_string("é\n") == r'"\303\251\012"'


def test_tflm_family_frontend_export_is_refused_clearly(tmp_path):
    spec_json = tmp_path / "spec.json"
    spec_json.write_text(json.dumps(MICRO_SPEECH_SPEC.to_dict()))
    with pytest.raises(ConfigError, match="covers the cmsis-dsp frontend family"):
        export_firmware(tmp_path / "out", frontend_path=spec_json)


# ---------------------------------------------------------------------------
# With a model
# ---------------------------------------------------------------------------

def _fc_model(tmp_path: Path, seed: int, name: str) -> Path:
    """A tiny int8 classifier over 10 log-mel frames, stamped with a CMSIS-DSP frontend."""
    rng = np.random.default_rng(seed)
    frames, bins, classes = 10, 40, 3
    q = lambda s, z: Quantization(np.array([s], np.float32), np.array([z], np.int64))  # noqa: E731
    tensors = (
        Tensor(0, "features", (1, frames * bins), np.dtype(np.int8), q(0.08, 12)),
        Tensor(1, "w", (classes, frames * bins), np.dtype(np.int8), q(0.004, 0),
               rng.integers(-127, 128, (classes, frames * bins)).astype(np.int8)),
        Tensor(2, "b", (classes,), np.dtype(np.int32), q(0.08 * 0.004, 0),
               rng.integers(-2000, 2000, classes).astype(np.int32)),
        Tensor(3, "scores", (1, classes), np.dtype(np.int8), q(1 / 256, -128)),
    )
    op = Operator("FULLY_CONNECTED", "fc", (0, 1, 2), (3,), {"fused_activation_function": "NONE",
                                                           "keep_num_dims": False})
    graph = Graph(tensors, (op,), (0,), (3,))
    from sed_runtime.model.export_tflite import export_tflite

    path = tmp_path / f"{name}.tflite"
    path.write_bytes(export_tflite(graph))
    spec = SPECS["logmel"].to_dict()
    meta = {"frontend": spec, "labels": ["dog", "alarm", "speech"], "window_frames": frames, "stride_frames": 3,
            "decision": {"on_threshold": 0.6, "off_threshold": 0.4, "min_duration_ms": 100}}
    (tmp_path / f"{name}_meta.json").write_text(json.dumps(meta))
    write_metadata(path, tmp_path / f"{name}_meta.json")
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return _fc_model(root, 1, "a"), _fc_model(root, 2, "b")


@pytest.mark.skipif(GCC is None, reason="needs gcc to compile the exported header")
def test_model_export_round_trips_and_its_header_compiles(tmp_path, models):
    pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    model_path = models[0]
    out = tmp_path / "export"
    assert export_main(["--model", str(model_path), "--out", str(out)]) == 0
    original, exported = load_model(model_path), load_model(out / "model.tflite")
    assert model_digest(exported.graph) == model_digest(original.graph)
    rng = np.random.default_rng(3)
    for _ in range(5):
        x = rng.integers(-128, 128, (1, 400)).astype(np.int8)
        assert np.array_equal(np.array(exported.invoke(x)), np.array(original.invoke(x)))
    assert dict(exported.metadata)["labels"] == ["dog", "alarm", "speech"]

    header = (out / "sed_model.h").read_text()
    for define in ("#define SED_WINDOW_FRAMES 10", "#define SED_STRIDE_FRAMES 3", "#define SED_N_LABELS 3",
                   "#define SED_FEATURE_QUANTIZED 1", "#define SED_FEATURE_ZERO_POINT 12",
                   f"#define SED_ARENA_BYTES {original.arena_bytes}", "#define SED_MIN_DURATION_STEPS 2"):
        assert define in header, define
    prog = tmp_path / "p.c"
    prog.write_text('#include <stdio.h>\n#define SED_MODEL_IMPLEMENTATION\n#include "sed_model.h"\n'
                    "int main(void) { fwrite(sed_model_tflite, 1, SED_MODEL_TFLITE_LEN, stdout);\n"
                    '  fprintf(stderr, "%s|%s|%d|%d|%s", sed_labels[0], sed_labels[2], sed_on_threshold_q[0], '
                    "sed_off_threshold_q[0], SED_TRACE_IDENTITY); return 0; }\n")
    _compile(GCC, ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I", str(out)], [prog],
             tmp_path / "p", tmp_path)
    res = subprocess.run([str(tmp_path / "p")], capture_output=True, check=True)
    assert res.stdout == (out / "model.tflite").read_bytes()
    first, last, on_q, off_q, identity = res.stderr.decode().split("|")
    assert (first, last) == ("dog", "speech")
    # score = (q + 128) / 256: >= 0.6 from q = 26 (0.6015...), >= 0.4 from q = -25 (0.40234...)
    assert (int(on_q), int(off_q)) == (26, -25)
    assert json.loads(identity)["model_sha256"] == model_digest(original.graph)


def test_model_export_verify_round_trip_and_wrong_model(tmp_path, models, capsys):
    pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    a, b = models
    out = tmp_path / "export"
    export_firmware(out, model_path=a)
    trace = tmp_path / "runtime.trace"
    assert verify_main(["--model", str(out / "model.tflite"), "--audio", str(CLIP), "--record", str(trace)]) == 0
    recorded = read_trace(trace)
    assert recorded.stages() in (["pcm", "features", "features_s8", "output"],
                                 ["pcm", "features", "features_s8", "output", "event"])
    assert verify_main(["--model", str(a), "--audio", str(CLIP), "--trace", str(trace)]) == 0
    assert "EQUAL:" in capsys.readouterr().out
    assert verify_main(["--model", str(b), "--audio", str(CLIP), "--trace", str(trace)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "built for another model" in err and "\n" not in err
    # a device whose model gives one different score
    records = [(r.stage, r.hop, r.data.copy(), r.name) for r in recorded.records]
    hop = next(h for s, h, _, _ in records if s == "output")
    for s, h, data, _ in records:
        if s == "output" and h == hop:
            data.reshape(-1)[2] += 1 if data.reshape(-1)[2] < 127 else -1
    bad = tmp_path / "device.trace"
    bad.write_bytes(write_trace_bytes({k: v for k, v in recorded.header.items() if k != "sed_trace"}, records))
    assert verify_main(["--model", str(a), "--audio", str(CLIP), "--trace", str(bad)]) == 1
    text = capsys.readouterr().out
    assert f"FIRST DIVERGENCE: hop {hop}, stage output, element [0, 2]" in text


def test_micro_speech_export_with_the_tflm_frontend(tmp_path):
    pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    model = tmp_path / "ms.tflite"
    shutil.copyfile(MICRO / "micro_speech_quantized.tflite", model)
    meta = {"frontend": MICRO_SPEECH_SPEC.to_dict(), "labels": ["silence", "unknown", "yes", "no"],
            "window_frames": 49, "stride_frames": 5}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    write_metadata(model, tmp_path / "meta.json", sidecar=True)
    paths = export_firmware(tmp_path / "out", model_path=model)
    header = paths["header"].read_text()
    assert "#define SED_WINDOW_SAMPLES 480" in header and "sed_window_q15" not in header
    assert load_model(paths["model"]).metadata["window_frames"] == 49
    if GCC is not None:
        _compile(GCC, ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-c", "-DSED_MODEL_IMPLEMENTATION",
                       "-x", "c"], [paths["header"]], tmp_path / "h.o", tmp_path)


def test_sed_export_errors_are_one_line(tmp_path, capsys):
    assert export_main(["--model", str(tmp_path / "missing.tflite"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err


def test_model_digest_is_the_same_for_onnx_and_its_tflite_export():
    import sys

    pytest.importorskip("onnxruntime")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model"))
    from onnx_builders import ZOO, quantize

    from sed_runtime.model.export_tflite import export_tflite
    from sed_runtime.model.onnx_import import import_onnx
    from sed_runtime.model.tflite_import import import_tflite

    digests = set()
    for name in ("conv_stack", "sequence"):
        graph = import_onnx(quantize(ZOO[name](0), seed=0))
        assert model_digest(graph) == model_digest(import_tflite(export_tflite(graph))), name
        digests.add(model_digest(graph))
    assert len(digests) == 2


def test_intermediate_tensors_are_compared_by_name_or_index(tmp_path, capsys):
    pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    model = tmp_path / "ms.tflite"
    shutil.copyfile(MICRO / "micro_speech_quantized.tflite", model)
    meta = {"frontend": MICRO_SPEECH_SPEC.to_dict(), "labels": ["silence", "unknown", "yes", "no"],
            "window_frames": 49, "stride_frames": 5}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    write_metadata(model, tmp_path / "meta.json", sidecar=True)
    clip = MICRO / "yes_1000ms.wav"
    trace_path = tmp_path / "full.trace"
    assert verify_main(["--model", str(model), "--audio", str(clip), "--record", str(trace_path),
                        "--stages", "features,tensor,output"]) == 0
    recorded = read_trace(trace_path)
    names = [r.name for r in recorded.records if r.stage == "tensor"]
    assert "Relu" in names and len(names) == len(set(names)) >= 3
    assert verify_main(["--model", str(model), "--audio", str(clip), "--trace", str(trace_path)]) == 0
    capsys.readouterr()
    # the device's convolution output differs in one element; it also logs a tensor by index
    graph = load_model(model).graph
    relu = next(t.index for t in graph.tensors if t.name == "Relu")
    records = []
    for r in recorded.records:
        data = r.data.copy()
        if r.stage == "tensor" and r.name == "Relu":
            data.reshape(-1)[1234] ^= 2
        records.append((r.stage, r.hop, data, r.name))
    hop = next(h for s, h, _, n in records if n == "Relu")
    records.append(("tensor", hop, next(d for s, h, d, n in records if n == "Relu"), f"#{relu}"))
    bad = tmp_path / "device.trace"
    bad.write_bytes(write_trace_bytes({k: v for k, v in recorded.header.items() if k != "sed_trace"}, records))
    assert verify_main(["--model", str(model), "--audio", str(clip), "--trace", str(bad)]) == 1
    out = capsys.readouterr().out
    shape = next(d for s, h, d, n in records if n == "Relu").shape
    index = [int(i) for i in np.unravel_index(1234, shape)]
    assert f"FIRST DIVERGENCE: hop {hop}, stage tensor, tensor 'Relu', element {index}" in out
    assert f"tensor '#{relu}'" in out
    unknown = write_trace_bytes({k: v for k, v in recorded.header.items() if k != "sed_trace"},
                                [("tensor", hop, np.zeros(3, np.int8), "no_such_tensor")])
    bad.write_bytes(unknown)
    assert verify_main(["--model", str(model), "--audio", str(clip), "--trace", str(bad), "--partial"]) == 1
    assert "no operator of the model writes" in capsys.readouterr().err


def test_events_are_compared_in_order(tmp_path, capsys):
    model = tmp_path / "ms.tflite"
    shutil.copyfile(MICRO / "micro_speech_quantized.tflite", model)
    meta = {"frontend": MICRO_SPEECH_SPEC.to_dict(), "labels": ["silence", "unknown", "yes", "no"],
            "window_frames": 49, "stride_frames": 5, "decision": {"on_threshold": 0.6, "off_threshold": 0.4}}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    write_metadata(model, tmp_path / "meta.json", sidecar=True)
    import soundfile as sf

    clip = tmp_path / "clip.wav"
    parts = [sf.read(str(MICRO / f"{n}_1000ms.wav"), dtype="int16")[0] for n in ("silence", "yes", "noise", "no")]
    sf.write(clip, np.concatenate(parts), 16000, subtype="PCM_16")
    trace_path = tmp_path / "rt.trace"
    assert verify_main(["--model", str(model), "--audio", str(clip), "--record", str(trace_path)]) == 0
    recorded = read_trace(trace_path)
    events = [r for r in recorded.records if r.stage == "event"]
    labels = [meta["labels"][int(e.data[0])] for e in events]
    assert "yes" in labels and "no" in labels and labels.index("yes") < labels.index("no")
    assert all(e.data[1] < e.data[2] and (e.data[1] - 48) % 5 == 0 for e in events)
    assert verify_main(["--model", str(model), "--audio", str(clip), "--trace", str(trace_path)]) == 0
    assert "event " in capsys.readouterr().out
    header = {k: v for k, v in recorded.header.items() if k != "sed_trace"}
    records = [(r.stage, r.hop, r.data.copy(), r.name) for r in recorded.records]
    yes = next(i for i, (s, _, d, _) in enumerate(records) if s == "event" and d[0] == 2)
    records[yes][2][1] += 5  # the device's "yes" starts one inference later
    (tmp_path / "late.trace").write_bytes(write_trace_bytes(header, records))
    assert verify_main(["--model", str(model), "--audio", str(clip), "--trace", str(tmp_path / "late.trace")]) == 1
    out = capsys.readouterr().out
    assert re.search(r"FIRST DIVERGENCE: hop \d+, stage event, event \d+ onset hop: device (\d+), runtime (\d+)", out)
    del records[yes]  # the device misses the event altogether
    (tmp_path / "missed.trace").write_bytes(write_trace_bytes(header, records))
    assert verify_main(["--model", str(model), "--audio", str(clip), "--trace", str(tmp_path / "missed.trace")]) == 1
    assert "missing: event: the device logged" in capsys.readouterr().out
