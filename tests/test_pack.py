"""sed-pack: float ONNX + frontend + labels + decision + calibration audio -> int8 QDQ ONNX with metadata, verified."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from model.onnx_builders import FloatNet

from sed_runtime.errors import ConfigError, ModelError
from sed_runtime.frontend import FrontendSpec, compute_features
from sed_runtime.model.metadata import read_metadata
from sed_runtime.pack import feature_windows, pack

SPEC = FrontendSpec(sample_rate_hz=16000, window_samples=512, hop_samples=256, fft_len=512, n_mels=16,
                    lower_hz=50.0, upper_hz=8000.0)
WINDOW, STRIDE = 12, 4


def _float_model(seed: int = 0):
    net = FloatNet("features", (1, 1, WINDOW, SPEC.n_mels), seed)
    y = net.conv(net.input, 4, 3, pads=1, relu=True)
    y = net.depthwise(y, 1, 3, stride=2, pads=1, relu=True)
    y = net.conv(y, 6, 1, relu=True)
    y = net.global_average_pool(y)
    net.output(net.sigmoid(net.gemm(net.flatten(y), 2)))
    return net.model()


def _audio(seed: int, seconds: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    x = 0.2 * np.sin(2 * np.pi * 3100 * t) * (np.sin(2 * np.pi * 2 * t) > 0) + 0.05 * rng.standard_normal(t.size)
    return np.clip(np.rint(x * 32767), -32768, 32767).astype(np.int16)


def test_feature_windows_are_the_detector_windows():
    frames = np.arange(20 * 3).reshape(20, 3)
    w = feature_windows(frames, 8, 4)
    assert w.shape == (4, 8, 3)
    assert np.array_equal(w[1], frames[4:12]) and np.array_equal(w[-1], frames[12:20])
    assert feature_windows(frames[:7], 8, 4).shape == (0, 8, 3)


def test_pack_stamps_verifies_and_detects(tmp_path):
    wav = tmp_path / "calib_44k.wav"
    sf.write(wav, _audio(1, 3.0).astype(np.float32) / 32768, 44100)   # another rate: resampled on reading
    out = tmp_path / "tiny_int8.onnx"
    decision = {"on_threshold": 0.5, "off_threshold": 0.4, "smoothing_ms": 0}
    report = pack(_float_model(), out, frontend=SPEC, labels=["alarm", "other"], window_frames=WINDOW,
                  stride_frames=STRIDE, decision=decision, calibration=[wav, _audio(2)],
                  verification=[_audio(3)], description="tiny")
    meta = read_metadata(out)
    assert meta.labels == ("alarm", "other") and meta.window_frames == WINDOW and meta.stride_frames == STRIDE
    assert meta.decision["on_threshold"] == 0.5 and meta.description == "tiny"
    assert meta.frontend["quantization"] == {"scale": report.input_scale, "zero_point": report.input_zero_point}
    frames = compute_features(SPEC, _audio(3))
    assert report.windows == len(feature_windows(frames, WINDOW, STRIDE))
    assert report.calibration_windows > report.windows
    # int8 drift of a tiny sigmoid network on its own calibration range: small, measured, reported
    assert 0 < report.max_abs < 0.08, report.format()
    assert "max |drift|" in report.format() and json.dumps(report.to_dict())
    assert report.arena_bytes > 0 and report.weight_bytes > 0 and report.macs > 0

    from sed_runtime.detector import Detector

    det = Detector(str(out))
    det.process(_audio(3))
    assert det.scores.shape == (report.windows, 2)


def test_pack_per_tensor_and_refusals(tmp_path):
    report = pack(_float_model(1), tmp_path / "pt.onnx", frontend=SPEC.to_dict(), labels=["a", "b"],
                  window_frames=WINDOW, stride_frames=STRIDE, calibration=[_audio(4)], per_channel=False)
    assert report.max_abs < 0.15
    with pytest.raises(ModelError, match="window_frames=10"):
        pack(_float_model(), tmp_path / "x.onnx", frontend=SPEC, labels=["a", "b"], window_frames=10,
             stride_frames=STRIDE, calibration=[_audio(4)])
    with pytest.raises(ModelError, match="one per label"):
        pack(_float_model(), tmp_path / "x.onnx", frontend=SPEC, labels=["a"], window_frames=WINDOW,
             stride_frames=STRIDE, calibration=[_audio(4)])
    with pytest.raises(ConfigError, match="no complete window"):
        pack(_float_model(), tmp_path / "x.onnx", frontend=SPEC, labels=["a", "b"], window_frames=WINDOW,
             stride_frames=STRIDE, calibration=[_audio(4, 0.1)])


def test_sed_pack_cli(tmp_path, capsys):
    import onnx

    from sed_runtime.cli import pack_main

    onnx.save(_float_model(2), tmp_path / "f.onnx")
    (tmp_path / "spec.json").write_text(json.dumps(SPEC.to_dict()))
    wav = tmp_path / "c.wav"
    sf.write(wav, _audio(5), 16000, subtype="PCM_16")
    rc = pack_main([str(tmp_path / "f.onnx"), "--frontend", str(tmp_path / "spec.json"), "--labels", "alarm,other",
                    "--window-frames", str(WINDOW), "--stride-frames", str(STRIDE), "--decision",
                    '{"on_threshold": 0.7}', "--calibration", str(wav), "--out", str(tmp_path / "q.onnx"),
                    "--json", str(tmp_path / "r.json")])
    assert rc == 0
    assert "max |drift|" in capsys.readouterr().out
    assert json.loads((tmp_path / "r.json").read_text())["on_threshold"] == 0.7
    assert read_metadata(tmp_path / "q.onnx").decision["on_threshold"] == 0.7
    assert pack_main([str(tmp_path / "f.onnx"), "--frontend", str(tmp_path / "spec.json"), "--labels", "a",
                      "--window-frames", str(WINDOW), "--stride-frames", str(STRIDE), "--calibration", str(wav),
                      "--out", str(tmp_path / "z.onnx")]) == 1
