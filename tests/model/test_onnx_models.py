"""ONNX models through load_model: the .onnx dispatch, and the interpreter on graphs the ONNX importer builds.

Each network of the ONNX test zoo (tests/model/onnx_builders.py) is quantized
as users do (onnxruntime ``quantize_static``, QDQ, per-channel int8), saved,
and loaded with ``sed_runtime.load_model``; its outputs must equal, bit for
bit, tflite-micro's on the same graph exported to .tflite.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from _compare import assert_equal_ints
from model.tflite_builder import tflm_available, tflm_run

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.skipif(not tflm_available(), reason="needs tflite-micro")

from model.onnx_builders import ZOO, calibration_like_int8, quantize  # noqa: E402
from sed_runtime import load_model  # noqa: E402


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_model_via_load_model_matches_tflm(name, tmp_path):
    from sed_runtime.model.export_tflite import export_tflite

    qmodel = quantize(ZOO[name](0), seed=0)
    path = tmp_path / f"{name}.onnx"
    onnx.save(qmodel, path)
    model = load_model(path)
    data = export_tflite(model.graph)
    for k, xs in enumerate(calibration_like_int8(qmodel, 5, seed=3)):
        xs = [x.transpose(0, 2, 3, 1) if x.ndim == 4 else x for x in xs]  # the plan is NHWC
        xs = [np.ascontiguousarray(x.reshape(info.shape)) for x, info in zip(xs, model.inputs)]
        ours = model.invoke(*xs)
        ours = ours if isinstance(ours, tuple) else (ours,)
        expected = tflm_run(data, *xs, n_outputs=len(ours))
        for j, (a, e) in enumerate(zip(ours, expected)):
            assert_equal_ints(np.asarray(a).reshape(e.shape), e, f"{name} input set {k} output {j}")
