"""Models for the end-to-end benchmarks, built in a temporary directory (never committed).

:func:`build_ds_cnn_s` writes a DS-CNN-S-sized keyword-spotting network (the
"Hello Edge" small depthwise-separable CNN, as in ARM's ML-KWS-for-MCU):

    MFCC [1, 1, 49, 10] -> conv 10x4 stride 2 SAME, 64 ch, ReLU      [64, 25, 5]
                        -> 4 x (depthwise 3x3 SAME + ReLU, pointwise 64 + ReLU)
                        -> global average pool -> FC -> softmax      [1, N]

2.66 M MACs and 22.6 k parameters for 12 classes (24 kB of int8 weights and
int32 biases once quantized; the paper's model, with batch norm, has 24 k).  The float ONNX graph
is made with ``onnx.helper`` through the test suite's ``FloatNet`` (seeded,
He-scaled weights: no training), quantized with onnxruntime's
``quantize_static`` (QDQ, per-channel int8 weights, int8 activations, MinMax
calibration on MFCC windows of real audio) and stamped with sed_runtime
metadata: the CMSIS-DSP MFCC frontend (16 kHz, 40 ms window, 20 ms hop,
1024-point FFT, 40 mels, 10 coefficients), 49 frames per window, an
inference every frame (every 20 ms hop).
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "model"))
from onnx_builders import FloatNet, input_quantization  # noqa: E402  (the test suite's ONNX builders)

from sed_runtime.frontend.cmsis import compute_features  # noqa: E402
from sed_runtime.frontend.spec import FeatureQuantization, FrontendSpec  # noqa: E402
from sed_runtime.model.metadata import ModelMetadata, write_metadata  # noqa: E402

__all__ = ["DS_CNN_SPEC", "DS_CNN_LABELS", "DS_CNN_WINDOW_FRAMES", "DS_CNN_DECISION", "ds_cnn_s_float",
           "build_ds_cnn_s"]

DS_CNN_SPEC = FrontendSpec(sample_rate_hz=16000, window_samples=640, hop_samples=320, fft_len=1024, n_mels=40,
                           lower_hz=20.0, upper_hz=4000.0, n_dct=10)
DS_CNN_WINDOW_FRAMES = 49
DS_CNN_LABELS = ("silence", "unknown", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
DS_CNN_DECISION = {"on_threshold": 0.6, "off_threshold": 0.4, "smoothing": "mean", "smoothing_ms": 500.0,
                   "min_duration_ms": 100.0}
CHANNELS = 64


def ds_cnn_s_float(n_classes: int = len(DS_CNN_LABELS), seed: int = 0):
    """The float ONNX DS-CNN-S graph (NCHW input [1, 1, frames, coefficients])."""
    net = FloatNet("mfcc", (1, 1, DS_CNN_WINDOW_FRAMES, DS_CNN_SPEC.n_dct), seed)
    y = net.conv(net.input, CHANNELS, (10, 4), stride=2, auto_pad="SAME_UPPER", relu=True)
    for _ in range(4):
        y = net.depthwise(y, 1, 3, stride=1, pads=1, relu=True)
        y = net.conv(y, CHANNELS, 1, relu=True)
    y = net.global_average_pool(y)
    net.output(net.softmax(net.gemm(net.flatten(y), n_classes)))
    return net.model()


def _calibration_windows(audio: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    """``n`` seeded MFCC windows of ``audio`` as the float features the model sees (q8.7 / 128)."""
    features = compute_features(DS_CNN_SPEC, audio).astype(np.float32) / 128.0
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, features.shape[0] - DS_CNN_WINDOW_FRAMES, n)
    return [features[s:s + DS_CNN_WINDOW_FRAMES].reshape(1, 1, DS_CNN_WINDOW_FRAMES, -1) for s in starts]


class _Windows:
    def __init__(self, name: str, windows: list[np.ndarray]):
        self._it = iter([{name: w} for w in windows])

    def get_next(self):
        return next(self._it, None)


def build_ds_cnn_s(directory: Path, calibration_audio: np.ndarray, seed: int = 0, n_calibration: int = 64) -> Path:
    """Write ``ds_cnn_s_int8.onnx`` (QDQ int8, stamped with metadata) into ``directory``; return its path."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    float_model = ds_cnn_s_float(seed=seed)
    out = Path(directory) / "ds_cnn_s_int8.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "float.onnx"
        onnx.save(float_model, src)
        windows = _Windows("mfcc", _calibration_windows(calibration_audio, n_calibration, seed))
        quantize_static(str(src), str(out), windows, quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
    (scale, zero_point), = input_quantization(onnx.load(out))
    spec = replace(DS_CNN_SPEC, quantization=FeatureQuantization(scale, zero_point))
    meta = ModelMetadata(frontend=spec.to_dict(), window_frames=DS_CNN_WINDOW_FRAMES, stride_frames=1,
                         labels=DS_CNN_LABELS, decision=DS_CNN_DECISION,
                         description="DS-CNN-S-sized keyword spotter, random seeded weights (benchmark only)")
    write_metadata(out, meta)
    return out

