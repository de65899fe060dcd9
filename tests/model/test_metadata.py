"""Model metadata: stamp, read back, check against the graph, refuse clearly; sed-stamp."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
import soundfile as sf

from conftest import SHARED
from onnx_builders import FloatNet, quantize
from sed_runtime.cli import stamp_main
from sed_runtime.errors import ModelError
from sed_runtime.frontend.spec import FrontendSpec
from sed_runtime.frontend.tflm import MICRO_SPEECH_SPEC
from sed_runtime.model.metadata import (
    METADATA_KEY, ModelMetadata, load_metadata_json, read_metadata, sidecar_path, write_metadata,
)
from sed_runtime.model.tflite_import import import_tflite

runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

MICRO = SHARED / "fixtures" / "micro_speech"
LABELS = ["silence", "unknown", "yes", "no"]
DECISION = {"on_threshold": 0.6, "off_threshold": 0.4, "smoothing_ms": 0, "min_duration_ms": 0,
            "merge_gap_ms": 0, "refractory_ms": 0}
MICRO_META = {"frontend": MICRO_SPEECH_SPEC.to_dict(), "labels": LABELS, "window_frames": 49, "stride_frames": 5,
              "decision": DECISION, "description": "TFLM micro_speech keyword model"}
LOGMEL = FrontendSpec(sample_rate_hz=16000, window_samples=512, hop_samples=256, fft_len=512, n_mels=40,
                      lower_hz=20.0, upper_hz=8000.0)


@pytest.fixture
def micro(tmp_path):
    path = tmp_path / "kws.tflite"
    shutil.copy(MICRO / "micro_speech_quantized.tflite", path)
    return path


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    """A small quantized CNN over 24 log-mel frames of 40 bins, 3 classes."""
    net = FloatNet("features", (1, 1, 24, 40), seed=0)
    y = net.conv(net.input, 8, 3, stride=2, pads=1, relu=True)
    y = net.global_average_pool(y)
    net.output(net.sigmoid(net.gemm(net.flatten(y), 3)))
    path = tmp_path_factory.mktemp("onnx") / "detector.onnx"
    qmodel = quantize(net.model())
    onnx.helper.set_model_props(qmodel, {"author": "tests"})
    onnx.save(qmodel, path)
    return path


def logmel_meta(**changes):
    return {"frontend": LOGMEL.to_dict(), "labels": ["dog", "siren", "glass"], "window_frames": 24,
            "stride_frames": 4, "decision": {"on_threshold": 0.7, "off_threshold": 0.5, "smoothing_ms": 250,
                                             "min_duration_ms": 100, "merge_gap_ms": 200, "refractory_ms": 500},
            **changes}


def test_onnx_stamp_and_read_back(onnx_model, tmp_path):
    out = write_metadata(onnx_model, logmel_meta(), out_path=tmp_path / "stamped.onnx")
    meta = read_metadata(out)
    assert meta.labels == ("dog", "siren", "glass") and meta.window_frames == 24 and meta.bins == 40
    assert meta.sample_rate_hz == 16000 and meta.schema_version == 1
    assert meta.frontend_spec == LOGMEL
    assert meta.decision_config.refractory_ms == 500
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props["author"] == "tests"  # other entries survive
    assert json.loads(props[METADATA_KEY])["labels"] == ["dog", "siren", "glass"]
    # stamping again replaces the entry
    write_metadata(out, logmel_meta(labels=["a", "b", "c"]))
    keys = [p.key for p in onnx.load(str(out)).metadata_props]
    assert keys.count(METADATA_KEY) == 1 and read_metadata(out).labels == ("a", "b", "c")


def test_load_model_attaches_metadata(onnx_model, tmp_path):
    from sed_runtime import load_model

    out = write_metadata(onnx_model, logmel_meta(), out_path=tmp_path / "stamped.onnx")
    model = load_model(out)
    assert model.metadata["labels"] == ["dog", "siren", "glass"]
    assert model.metadata["frontend"]["n_mels"] == 40


def test_tflite_embedded_metadata_runs_in_tflm_and_drives_the_detector(micro):
    from sed_runtime import load_model
    from sed_runtime.detector import Detector

    write_metadata(micro, MICRO_META)
    graph = import_tflite(micro)
    assert json.loads(graph.metadata[METADATA_KEY])["window_frames"] == 49
    golden = np.load(MICRO / "golden.npz")
    interpreter = runtime.Interpreter.from_file(str(micro))
    interpreter.set_input(golden["yes_1000ms_features"].reshape(1, -1), 0)
    interpreter.invoke()
    np.testing.assert_array_equal(interpreter.get_output(0).reshape(-1), golden["yes_1000ms_scores"])

    detector = Detector(load_model(micro))  # nothing but the model file
    samples, rate = sf.read(str(MICRO / "yes_1000ms.wav"), dtype="int16")
    events = detector.process(np.concatenate([samples, np.zeros(8000, np.int16)])) + detector.flush()
    assert "yes" in [e.label for e in events]


def test_tflite_restamp_replaces_the_buffer(micro):
    write_metadata(micro, MICRO_META)
    size = micro.stat().st_size
    write_metadata(micro, {**MICRO_META, "description": "x" * 8})
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    m = schema.Model.GetRootAsModel(micro.read_bytes(), 0)
    names = [m.Metadata(i).Name().decode() for i in range(m.MetadataLength())]
    assert names.count(METADATA_KEY) == 1 and "min_runtime_version" in names
    assert abs(micro.stat().st_size - size) <= 64  # no orphaned copy of the old metadata
    assert read_metadata(micro).description == "x" * 8


def test_tflite_sidecar_leaves_the_model_unchanged(micro):
    before = micro.read_bytes()
    target = write_metadata(micro, MICRO_META, sidecar=True)
    assert target == sidecar_path(micro) == micro.with_suffix(".json")
    assert micro.read_bytes() == before
    assert read_metadata(micro).labels == tuple(LABELS)


def test_missing_metadata_is_refused_by_name(micro):
    with pytest.raises(ModelError, match=r"carries no 'sed_runtime' metadata.*sed-stamp kws.tflite"):
        read_metadata(micro)
    graph = import_tflite(micro)
    assert read_metadata(graph) == {}  # what load_model uses: plain models still load
    with pytest.raises(ModelError, match="carries no 'sed_runtime' metadata"):
        read_metadata(graph, required=True)


@pytest.mark.parametrize("change, message", [
    ({"window_frames": 48}, r"window_frames=48 x 40 feature bins .* = 1920 values, but the input 'Reshape_1'.* 1960"),
    ({"labels": ["yes", "no"]}, r"lists 2 labels \['yes', 'no'\], but the output .* 4 values"),
    ({"sample_rate_hz": 8000}, "sample_rate_hz=8000 disagrees with the frontend's sample_rate_hz=16000"),
    ({"stride_frames": 0}, "stride_frames=0 must be a positive integer"),
    ({"labels": ["a", "a", "b", "c"]}, r"labels repeat \['a'\]"),
    ({"decision": {"on_threshold": 0.3, "off_threshold": 0.5}}, "decision parameters are invalid: off_threshold"),
    ({"frontend": {**MICRO_SPEECH_SPEC.to_dict(), "window_samples": -1}}, "not a valid frontend spec"),
    ({"schema_version": 2}, "schema_version=2 is not supported"),
    ({"colour": "red"}, r"unknown metadata key\(s\) \['colour'\]"),
])
def test_inconsistent_metadata_names_the_value(micro, change, message):
    with pytest.raises(ModelError, match=message):
        write_metadata(micro, {**MICRO_META, **change})


def test_missing_keys_and_quantization_mismatch(onnx_model):
    with pytest.raises(ModelError, match=r"lacks \['labels'\]"):
        ModelMetadata.from_dict({k: v for k, v in logmel_meta().items() if k != "labels"})
    spec = {**LOGMEL.to_dict(), "quantization": {"scale": 0.5, "zero_point": 3}}
    with pytest.raises(ModelError, match="frontend quantization scale=0.5, zero_point=3 disagrees with the input"):
        write_metadata(onnx_model, logmel_meta(frontend=spec))
    with pytest.raises(ModelError, match="external tables file"):
        ModelMetadata.from_dict(logmel_meta(frontend={**LOGMEL.to_dict(), "tables": "t.npz"}))


def test_metadata_json_with_frontend_file(tmp_path, onnx_model):
    (tmp_path / "logmel.json").write_text(json.dumps(LOGMEL.to_dict()))
    (tmp_path / "meta.json").write_text(json.dumps(logmel_meta(frontend="logmel.json")))
    meta = load_metadata_json(tmp_path / "meta.json")
    assert meta.frontend == LOGMEL.to_dict()
    assert dict(meta)["window_frames"] == 24 and ModelMetadata.from_json(meta.to_json()) == meta
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_metadata_json(tmp_path / "broken.json")


def test_sed_stamp_cli(micro, tmp_path, capsys):
    meta_file = tmp_path / "meta.json"
    meta_file.write_text(json.dumps(MICRO_META))
    out = tmp_path / "stamped.tflite"
    assert stamp_main([str(micro), "--metadata", str(meta_file), "--out", str(out)]) == 0
    assert "4 labels, window 49 x 40 tflm-signal frames at 16000 Hz, stride 5" in capsys.readouterr().err
    assert stamp_main([str(out), "--show"]) == 0
    assert json.loads(capsys.readouterr().out)["labels"] == LABELS
    assert stamp_main([str(micro), "--show"]) == 1  # not stamped: one line, exit code 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "sed-stamp" in err
    meta_file.write_text(json.dumps({**MICRO_META, "window_frames": 50}))
    assert stamp_main([str(micro), "--metadata", str(meta_file)]) == 1
    assert "window_frames=50" in capsys.readouterr().err
    assert stamp_main([str(micro), "--metadata", str(meta_file), "--sidecar"]) == 1  # checked before writing
    assert not sidecar_path(micro).exists()
