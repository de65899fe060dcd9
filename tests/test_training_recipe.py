"""The training recipe end to end on a minute of generated audio (needs the ``train`` extra), and the shipped
smoke-alarm model on a synthetic T3 pattern (no torch)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "examples" / "training"
MODEL = ROOT / "models" / "smoke_alarm.onnx"


def _t3(seconds: float = 12.0, f0: float = 3150.0, seed: int = 0) -> np.ndarray:
    """A clean T3 alarm (0.5 s beeps 0.5 s apart, three per cycle, 1.5 s pause) at -20 dBFS in faint noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    t = np.arange(n) / 16000
    on = np.zeros(n, bool)
    start = 2.0
    while start < seconds - 4:
        for k in range(3):
            on[int((start + k) * 16000):int((start + k + 0.5) * 16000)] = True
        start += 4.0
    x = 0.1 * np.sin(2 * np.pi * f0 * t) * on + 0.003 * rng.standard_normal(n)
    return np.clip(np.rint(x * 32768), -32768, 32767).astype(np.int16)


@pytest.mark.skipif(not MODEL.exists(), reason="models/smoke_alarm.onnx not built")
def test_shipped_smoke_alarm_detects_t3_and_not_noise():
    from sed_runtime.detector import Detector
    from sed_runtime.model.metadata import read_metadata

    meta = read_metadata(MODEL)
    assert meta.labels == ("smoke_alarm",) and meta.sample_rate_hz == 16000
    det = Detector(str(MODEL))
    events = det.process(_t3()) + det.flush()
    assert [e.label for e in events] == ["smoke_alarm"], events
    det.reset()
    quiet = (np.random.default_rng(1).standard_normal(12 * 16000) * 300).astype(np.int16)
    assert det.process(quiet) + det.flush() == []


@pytest.mark.parametrize("cls", ["smoke_alarm", "baby_cry"])
def test_recipe_runs_end_to_end_on_fixture_audio(tmp_path, cls):
    missing = [m for m in ("torch", "pyroomacoustics") if importlib.util.find_spec(m) is None]
    if missing:
        if os.environ.get("SED_REQUIRE_TRAIN") == "1":
            pytest.fail(f"SED_REQUIRE_TRAIN=1 but {missing} not installed (pip install -e '.[train]')")
        pytest.skip(f"the training recipe needs the 'train' extra ({', '.join(missing)} missing)")
    sys.path.insert(0, str(RECIPE))
    try:
        spec = importlib.util.spec_from_file_location("training_recipe", RECIPE / "recipe.py")
        recipe = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(recipe)
        config = importlib.import_module(cls).CONFIG
        out = tmp_path / "m.onnx"
        assert recipe.main([cls, "--fixture", "--work", str(tmp_path / "work"), "--out", str(out),
                            "--train-minutes", "0.05", "--threads", "1"]) == 0
    finally:
        sys.path.remove(str(RECIPE))
    from sed_runtime.model.metadata import read_metadata

    meta = read_metadata(out)
    assert meta.labels == (cls,) and meta.window_frames == config.window_frames
    assert meta.stride_frames == config.stride_frames
    summary = json.loads((tmp_path / "work" / "summary.json").read_text())
    assert summary["pack"]["windows"] > 0 and summary["train"]["steps"] > 0
    assert len(summary["train"]["mining"]) == 3  # hard-negative mining ran at each scheduled point
    report = json.loads((tmp_path / "work" / "test_report.json").read_text())
    assert report["false_alarms"]["non_target"] is not None
