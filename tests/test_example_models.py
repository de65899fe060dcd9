"""The shipped example models (``models/*.onnx``): self-describing, within a Cortex-M0+ budget as their cards
say, and doing their job on the bundled demo clips through ``sed-listen``.

The demo clips are synthetic (``examples/training/make_demo_clips.py``): these are smoke tests of the shipped
files, not evidence of recall; the cards' held-out figures come from ``sed-eval`` runs on real audio."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sed_runtime.cli import inspect_main
from sed_runtime.cli_detect import listen_main
from sed_runtime.detector import Detector
from sed_runtime.model.metadata import read_metadata

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"baby_cry": ROOT / "models" / "baby_cry.onnx", "smoke_alarm": ROOT / "models" / "smoke_alarm.onnx"}


def _demo(label: str) -> np.ndarray:
    with resources.as_file(resources.files("sed_runtime") / "data" / f"demo_{label}.wav") as path:
        x, rate = sf.read(str(path), dtype="int16")
    assert rate == 16000
    return x


@pytest.mark.parametrize("label", sorted(MODELS))
def test_model_is_self_describing_and_fits_a_cortex_m0plus(label, capsys):
    path = MODELS[label]
    meta = read_metadata(path)
    assert meta.labels == (label,) and meta.sample_rate_hz == 16000
    assert meta.frontend["family"] == "cmsis-dsp"
    assert 0.5 <= meta.decision["on_threshold"] <= 1.0
    assert (ROOT / "models" / f"{label}.md").is_file()
    assert inspect_main([str(path), "--json", "--target", "m0plus"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["ram_bytes"] <= 96 * 1024 and info["flash_bytes"] <= 128 * 1024
    assert info["targets"] == [{"target": "Cortex-M0+", "ram_bytes": 96 * 1024, "flash_bytes": 128 * 1024,
                                "fits": True}]


@pytest.mark.parametrize("label", sorted(MODELS))
def test_listen_demo_finds_the_models_own_sound(label, capsys):
    """``sed-listen --model M --input demo`` plays ``demo_<label>.wav``: one event of the label, where the
    clip has it (the cry starts at 3 s, the alarm at 2.5 s; both clips are 12 s)."""
    assert listen_main(["--model", str(MODELS[label]), "--input", "demo", "--fast"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["label"] for e in events] == [label], events
    assert 2.5 <= events[0]["onset"] <= 9.0 and events[0]["offset"] <= 12.5


@pytest.mark.parametrize("label", sorted(MODELS))
def test_no_event_on_the_other_demo_clips_speech_or_noise(label):
    det = Detector(str(MODELS[label]))
    others = [other for other in MODELS if other != label]
    rng = np.random.default_rng(5)
    clips = [_demo(o) for o in others + ["yes_no"]] + [(rng.standard_normal(20 * 16000) * 600).astype(np.int16)]
    for clip in clips:
        det.reset()
        assert det.process(clip) + det.flush() == []
