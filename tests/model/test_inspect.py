"""sed-inspect: the per-layer table, totals, targets and JSON output."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import SHARED
from sed_runtime.cli import DEMO_SPEC, inspect_main

MICRO_SPEECH = SHARED / "fixtures" / "micro_speech" / "micro_speech_quantized.tflite"


def test_table_and_totals(capsys):
    assert inspect_main([str(MICRO_SPEECH)]) == 0
    out = capsys.readouterr().out
    assert "DEPTHWISE_CONV_2D" in out and "320,000" in out and "16,016" in out
    assert "arena (peak RAM of activations): 5,960 B" in out and "5,968 B" in out
    assert "flash: 16,704 B" in out
    assert "MACs: 336,000 per inference\n" in out  # no metadata: no per-second figure
    for target in ("Cortex-M0+ (96 KB RAM, 128 KB flash): fits", "Cortex-M4 (256 KB RAM, 1024 KB flash): fits",
                   "Cortex-M7 (512 KB RAM, 2048 KB flash): fits"):
        assert target in out


def test_json_and_custom_target(capsys):
    assert inspect_main([str(MICRO_SPEECH), "--json", "--ram", "4K", "--flash", "1M"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [layer["op"] for layer in info["layers"]] == ["RESHAPE", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "SOFTMAX"]
    assert info["macs"] == 336000 and info["arena_bytes"] == 5960 and info["weight_bytes"] == 16704
    assert sum(layer["weight_bytes"] for layer in info["layers"]) == info["weight_bytes"]
    assert info["targets"] == [{"target": "custom", "ram_bytes": 4096, "flash_bytes": 1048576, "fits": False}]
    assert info["macs_per_second"] is None


def test_metadata_gives_macs_per_second_and_frontend_tables(tmp_path, capsys):
    metadata = pytest.importorskip("sed_runtime.model.metadata")
    model = tmp_path / "kws.tflite"
    shutil.copy(MICRO_SPEECH, model)
    metadata.write_metadata(model, {"schema_version": 1, "sample_rate_hz": 16000, "frontend": dict(DEMO_SPEC),
                                    "window_frames": 49, "stride_frames": 4,
                                    "labels": ["silence", "unknown", "yes", "no"]})
    assert inspect_main([str(model), "--json", "--target", "m0plus"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["inferences_per_second"] == 16000 / (4 * 256)
    assert info["macs_per_second"] == 336000 * 16000 / (4 * 256)
    assert info["table_bytes"] > 512 * 2  # at least the q15 window of a 512-point FFT
    assert info["flash_bytes"] == info["weight_bytes"] + info["table_bytes"]
    assert [t["target"] for t in info["targets"]] == ["Cortex-M0+"]


def test_errors_are_one_line(tmp_path, capsys):
    assert inspect_main([str(tmp_path / "missing.tflite")]) == 1
    assert capsys.readouterr().err.startswith("error: cannot read model")
    assert inspect_main([str(MICRO_SPEECH), "--ram", "lots"]) == 1
    assert "is not a byte count" in capsys.readouterr().err


def test_ram_counts_frontend_state_beside_the_arena(tmp_path, capsys):
    """A target fits on RAM only when the arena plus the frontend's state (sample window, arm_mfcc_q15's q31
    complex buffer, one frame, the feature history) fit: a RAM size between the arena and that sum fails."""
    metadata = pytest.importorskip("sed_runtime.model.metadata")
    model = tmp_path / "kws.tflite"
    shutil.copy(MICRO_SPEECH, model)
    spec = dict(DEMO_SPEC)
    metadata.write_metadata(model, {"schema_version": 1, "sample_rate_hz": 16000, "frontend": spec,
                                    "window_frames": 49, "stride_frames": 4,
                                    "labels": ["silence", "unknown", "yes", "no"]})
    assert inspect_main([str(model), "--json", "--ram", "6000"]) == 0
    info = json.loads(capsys.readouterr().out)
    n_out = spec.get("n_dct") or spec["n_mels"]
    state = info["frontend_state"]
    assert state == {"samples": 2 * spec["window_samples"], "frontend_work": 8 * spec["fft_len"] + 2 * n_out,
                     "feature_history": 49 * n_out, "total": state["samples"] + state["frontend_work"]
                     + state["feature_history"]}
    assert info["ram_bytes"] == info["arena_bytes"] + state["total"]
    assert info["arena_bytes"] <= 6000 < info["ram_bytes"]
    assert info["targets"][0]["fits"] is False  # the arena alone would fit 6000 B
    assert inspect_main([str(model), "--ram", str(info["ram_bytes"])]) == 0
    custom = [line for line in capsys.readouterr().out.splitlines() if line.startswith("custom (")]
    assert len(custom) == 1 and custom[0].endswith(": fits")  # exactly the sum fits
