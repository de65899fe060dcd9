"""sed-features end to end: in-process through ``features_main`` and once through the installed console script.

Success: exit 0, frames equal ``compute_features`` of the same audio and spec.
Failure: exit 1 and exactly one line ``error: ...`` on stderr naming the value
and what was expected; ``--debug`` re-raises the library error instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from _compare import assert_equal_ints
from conftest import SHARED
from sed_runtime.cli import features_main
from sed_runtime.errors import AudioFormatError, ConfigError
from sed_runtime.frontend import FrontendSpec, compute_features

CLIP = SHARED / "fixtures" / "micro_speech" / "yes_1000ms.wav"
SPEC = {
    "family": "cmsis-dsp",
    "sample_rate_hz": 16000,
    "window_samples": 512,
    "hop_samples": 256,
    "fft_len": 512,
    "n_mels": 40,
    "lower_hz": 20.0,
    "upper_hz": 8000.0,
    "n_dct": 0,
    "target": "generic",
}
FRAMES_1S = 1 + (16000 - 512) // 256  # 61


def _write_spec(path: Path, spec=None, **changes) -> Path:
    data = dict(SPEC if spec is None else spec)
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def spec_path(tmp_path) -> Path:
    return _write_spec(tmp_path / "spec.json")


@pytest.fixture(scope="module")
def clip_samples() -> np.ndarray:
    samples, rate = sf.read(str(CLIP), dtype="int16")
    assert rate == 16000 and samples.shape == (16000,)
    return samples


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = features_main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_one_error_line(code: int, out: str, err: str, *fragments: str) -> str:
    assert code == 1, (code, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one error line, got {len(lines)}:\n{err}"
    assert lines[0].startswith("error: ") and "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


def _console_script() -> str:
    script = Path(sys.executable).with_name("sed-features")
    found = str(script) if script.exists() else shutil.which("sed-features")
    if found is None:
        pytest.skip("sed-features is not installed in this environment (pip install -e .)")
    return found


# ---------------------------------------------------------------------------
# Success paths
# ---------------------------------------------------------------------------

def test_demo_prints_summary_of_bundled_clip(capsys):
    code, out, err = _run(capsys, "--demo")
    assert code == 0, err
    summary = json.loads(out.splitlines()[0])
    assert summary["frames"] == FRAMES_1S == 61
    assert summary["bins"] == 40
    assert summary["dtype"] == "int16"
    assert summary["seconds"] == 1.0
    assert "demo_yes_1000ms.wav" in summary["audio"] and "target=generic" in summary["frontend"]
    assert summary["min"] < summary["max"]
    assert any(line.startswith("band ") for line in out.splitlines()[1:])  # the text spectrogram


def test_console_script_demo_and_error_in_a_subprocess(tmp_path):
    script = _console_script()
    run = subprocess.run([script, "--demo"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout.splitlines()[0])
    assert (summary["frames"], summary["bins"]) == (61, 40)

    bad_spec = _write_spec(tmp_path / "bad.json", hop_samples=600)
    run = subprocess.run([script, "--frontend", str(bad_spec), str(CLIP), "--out", str(tmp_path / "f.npy")],
                         capture_output=True, text=True, timeout=120)
    _assert_one_error_line(run.returncode, run.stdout, run.stderr, "hop_samples=600 must not exceed window_samples=512")
    assert not (tmp_path / "f.npy").exists()

    run = subprocess.run([script, "--frontend", str(bad_spec), str(CLIP), "--debug"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "Traceback" in run.stderr and "ConfigError: hop_samples=600" in run.stderr


def test_npy_output_equals_compute_features(capsys, tmp_path, spec_path, clip_samples):
    out_path = tmp_path / "f.npy"
    code, out, err = _run(capsys, "--frontend", spec_path, CLIP, "--out", out_path)
    assert code == 0, err
    assert out == ""  # with --out the summary is not printed
    assert err.strip() == f"wrote 61 frames x 40 logmel values (int16) to {out_path}"
    frames = np.load(out_path)
    assert frames.dtype == np.int16 and frames.shape == (61, 40)
    assert_equal_ints(frames, compute_features(FrontendSpec(**SPEC), clip_samples), "sed-features .npy")


def test_csv_output_holds_the_same_integers(capsys, tmp_path, spec_path):
    npy_path, csv_path = tmp_path / "f.npy", tmp_path / "f.csv"
    assert _run(capsys, "--frontend", spec_path, CLIP, "--out", npy_path)[0] == 0
    assert _run(capsys, "--frontend", spec_path, CLIP, "--out", csv_path)[0] == 0
    lines = csv_path.read_text().splitlines()
    assert len(lines) == 61 and all(len(line.split(",")) == 40 for line in lines)
    assert all(field.lstrip("-").isdigit() for line in lines for field in line.split(","))
    assert_equal_ints(np.loadtxt(csv_path, delimiter=",", dtype=np.int64), np.load(npy_path), "sed-features .csv")


def test_out_path_without_suffix_is_written_as_given(capsys, tmp_path, spec_path):
    out_path = tmp_path / "features"
    code, _, err = _run(capsys, "--frontend", spec_path, CLIP, "--out", out_path, "--format", "npy")
    assert code == 0, err
    assert out_path.exists() and not (tmp_path / "features.npy").exists()
    assert np.load(out_path).shape == (61, 40)


def test_target_dsp_changes_the_frames(capsys, tmp_path, spec_path, clip_samples):
    generic, dsp = tmp_path / "generic.npy", tmp_path / "dsp.npy"
    assert _run(capsys, "--frontend", spec_path, CLIP, "--out", generic)[0] == 0
    assert _run(capsys, "--frontend", spec_path, CLIP, "--target", "dsp", "--out", dsp)[0] == 0
    g, d = np.load(generic), np.load(dsp)
    assert g.shape == d.shape == (61, 40)
    assert np.count_nonzero(g != d) > 0, "Cortex-M4 arithmetic should differ from the plain C path on real audio"
    assert_equal_ints(d, compute_features(FrontendSpec(**{**SPEC, "target": "dsp"}), clip_samples), "--target dsp")


def test_stereo_needs_channel_and_channel_1_picks_it(capsys, tmp_path, spec_path, clip_samples):
    other = (clip_samples.astype(np.int32) // 3).astype(np.int16)
    stereo = tmp_path / "stereo.wav"
    sf.write(str(stereo), np.stack([other, clip_samples], axis=1), 16000, subtype="PCM_16")

    code, out, err = _run(capsys, "--frontend", spec_path, stereo, "--out", tmp_path / "f.npy")
    _assert_one_error_line(code, out, err, str(stereo), "2 channels", "expected mono", "channel=0..1")

    assert _run(capsys, "--frontend", spec_path, stereo, "--channel", "1", "--out", tmp_path / "c1.npy")[0] == 0
    assert_equal_ints(np.load(tmp_path / "c1.npy"), compute_features(FrontendSpec(**SPEC), clip_samples), "channel 1")

    code, out, err = _run(capsys, "--frontend", spec_path, stereo, "--channel", "2")
    _assert_one_error_line(code, out, err, "channel=2 does not exist", "2 channel(s)")


# ---------------------------------------------------------------------------
# Bad inputs: exit 1, one line naming the value and what was expected
# ---------------------------------------------------------------------------

def _audio_8khz(tmp_path, samples) -> Path:
    path = tmp_path / "r8k.wav"
    sf.write(str(path), samples[:8000], 8000, subtype="PCM_16")
    return path


def _truncated(tmp_path, samples) -> Path:
    path = tmp_path / "cut.wav"
    sf.write(str(path), samples, 16000, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[:-1001])  # mid-sample: 15499 whole frames and a stray byte
    return path


def _corrupt(tmp_path, samples) -> Path:
    path = tmp_path / "corrupt.wav"
    path.write_bytes(np.random.default_rng(11).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


@pytest.mark.parametrize("make_audio,fragments", [
    (_audio_8khz, ["r8k.wav", "sample rate 8000 Hz", "expected 16000 Hz"]),
    (lambda tmp_path, _: tmp_path / "missing.wav", ["audio file", "missing.wav", "does not exist"]),
    (_truncated, ["cut.wav", "is truncated", "announces 32000 bytes", "holds 30999", "15499 whole frames",
                  "expected a complete file"]),
    (_corrupt, ["cannot read", "corrupt.wav", "as audio", "expected a sound file"]),
], ids=["rate-8k", "missing", "truncated", "corrupt"])
def test_bad_audio_is_one_error_line(capsys, tmp_path, spec_path, clip_samples, make_audio, fragments):
    audio = make_audio(tmp_path, clip_samples)
    out_path = tmp_path / "f.npy"
    code, out, err = _run(capsys, "--frontend", spec_path, audio, "--out", out_path)
    _assert_one_error_line(code, out, err, *fragments)
    assert not out_path.exists()


@pytest.mark.parametrize("changes,fragments", [
    ({"hop_ms": 10}, ["unknown frontend spec key(s) ['hop_ms']", "expected keys among", "'hop_samples'"]),
    ({"n_mels": None}, ["missing required key(s) ['n_mels']"]),
    ({"hop_samples": 600}, ["hop_samples=600 must not exceed window_samples=512"]),
    ({"fft_len": 500}, ["fft_len=500 is not an arm_rfft_q15 length", "expected one of", "8192"]),
    ({"lower_hz": "20"}, ["lower_hz='20' must be a number"]),
    ({"tables": 5}, ["tables=5 must be a path"]),
], ids=["unknown-key", "missing-key", "hop-gt-window", "fft-500", "string-hz", "tables-not-path"])
def test_bad_spec_is_one_error_line(capsys, tmp_path, changes, fragments):
    spec = _write_spec(tmp_path / "spec.json", **changes)
    code, out, err = _run(capsys, "--frontend", spec, CLIP, "--out", tmp_path / "f.npy")
    _assert_one_error_line(code, out, err, *fragments)


@pytest.mark.parametrize("content,fragments", [
    ('{"sample_rate_hz": 16000,', ["spec.json' is not valid JSON", "line 1 column"]),
    ("[1, 2]", ["a frontend spec must be a JSON object, got list"]),
    (None, ["spec.json' is not UTF-8 text", "expected a JSON file"]),
], ids=["invalid-json", "not-an-object", "binary"])
def test_unreadable_spec_is_one_error_line(capsys, tmp_path, content, fragments):
    spec = tmp_path / "spec.json"
    if content is None:
        spec.write_bytes(CLIP.read_bytes())  # a WAV passed as the spec
    else:
        spec.write_text(content)
    code, out, err = _run(capsys, "--frontend", spec, CLIP)
    _assert_one_error_line(code, out, err, *fragments)


def test_missing_spec_file_is_one_error_line(capsys, tmp_path):
    code, out, err = _run(capsys, "--frontend", tmp_path / "none.json", CLIP)
    _assert_one_error_line(code, out, err, "cannot read frontend spec", "none.json", "No such file")


def test_unwritable_output_is_one_error_line(capsys, tmp_path, spec_path):
    out_path = tmp_path / "no" / "such" / "dir" / "f.npy"
    code, out, err = _run(capsys, "--frontend", spec_path, CLIP, "--out", out_path)
    _assert_one_error_line(code, out, err, "cannot write features to", str(out_path), "No such file")


def test_missing_arguments_are_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        features_main([])
    assert exc.value.code == 2
    assert "AUDIO and --frontend SPEC.json are required" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# --debug re-raises
# ---------------------------------------------------------------------------

def test_debug_reraises_config_error(tmp_path):
    spec = _write_spec(tmp_path / "spec.json", fft_len=500)
    with pytest.raises(ConfigError, match="fft_len=500"):
        features_main(["--frontend", str(spec), str(CLIP), "--debug"])


def test_debug_reraises_audio_error(tmp_path, spec_path):
    with pytest.raises(AudioFormatError, match="does not exist"):
        features_main(["--frontend", str(spec_path), str(tmp_path / "missing.wav"), "--debug"])
