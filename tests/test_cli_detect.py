"""``sed-listen`` and ``sed-detect`` end to end: happy paths, every bad input in one line, nothing detected lost.

Most runs are in-process (``listen_main`` / ``detect_main`` with capsys); a
few run the console scripts as subprocesses (real stdout pipes: a reader that
goes away, C libraries writing to descriptor 2).  The model is the bundled
keyword model ``models/yes_no.tflite`` (events for "yes" and "no"); the
recordings are built from the micro_speech fixture clips or are the bundled
demo clip (silence, "yes", silence, "no", silence).  The microphone itself is
tested in ``test_listen_mic.py`` (virtual microphone).

Decisions tested here:

- A recording that cannot be used (missing, a directory, corrupt, zero-length,
  not audio) is one ``error:`` line naming the file and what was expected;
  ``sed-detect`` goes on with the other recordings, writes all their events,
  and exits 1.  A zero-length WAV is valid audio but holds nothing to detect:
  it is refused like the others rather than silently giving no events.
- A recording that fails mid-way (a truncated FLAC) keeps the events detected
  before the failure, then reports it (exit 1).
- A model that cannot be used fails before any recording is read (exit 1,
  nothing on stdout), its line naming the model file.
- Rates other than the model's are resampled, channels mixed: the events equal
  the detector's on the resampled samples, and those of the original 16 kHz
  recording within one inference step (100 ms).
- Ctrl-C in sed-listen exits 0 after closing and writing the open event;
  in sed-detect it exits 130 with the recordings finished so far written.
- A closed stdout (``| head``) stops quietly with exit code 141 (as SIGPIPE).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import SHARED
from sed_runtime.cli_detect import detect_main, listen_main
from sed_runtime.detector import Detector
from sed_runtime.stream.resample import resample_pcm16

RATE = 16000
MODEL = Path(__file__).resolve().parents[1] / "models" / "yes_no.tflite"
CLIPS = SHARED / "fixtures" / "micro_speech"
UNSTAMPED = CLIPS / "micro_speech_quantized.tflite"  # the same network without sed_runtime metadata
STEP_S = 0.1  # the model's stride: 5 frames of 20 ms
# The bundled demo clip's events (sed-detect on it, checked against the clip's structure in test_demo_events).
DEMO_EVENTS = [("yes", 1.69, 2.69), ("no", 3.19, 4.79)]


def _demo() -> Path:
    with resources.as_file(resources.files("sed_runtime") / "data" / "demo_yes_no.wav") as path:
        return Path(path)


def _demo_samples() -> np.ndarray:
    x, rate = sf.read(str(_demo()), dtype="int16")
    assert rate == RATE and x.ndim == 1
    return x


def _keywords(names) -> np.ndarray:
    parts = []
    for name in names:
        x, rate = sf.read(str(CLIPS / f"{name}_1000ms.wav"), dtype="int16")
        assert rate == RATE
        parts.append(x)
    return np.concatenate(parts)


def _write(path: Path, samples: np.ndarray, rate: int = RATE, subtype: str = "PCM_16") -> Path:
    sf.write(str(path), samples, rate, subtype=subtype)
    return path


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _triples(events) -> list[tuple]:
    return [(e["label"], e["onset"], e["offset"]) for e in events]


def _offline(samples: np.ndarray) -> list[dict]:
    """The detector on ``samples`` (16 kHz), as sed-detect writes events."""
    detector = Detector(str(MODEL))
    return [e.to_dict() for e in detector.process(samples) + detector.flush()]


def assert_match(pattern: str, line: str) -> None:
    assert re.search(pattern, line), f"{line!r} does not match {pattern!r}"


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, f"expected exactly one line on stderr, got {len(lines)}: {err!r}"
    assert lines[0].startswith("error: "), err
    return lines[0]


def console_script(name: str) -> list[str]:
    """The console script ``name`` of this environment (or the same entry point through ``python -c``)."""
    script = Path(sys.executable).with_name(name)
    if script.exists():
        return [str(script)]
    module, entry = {"sed-listen": ("cli_detect", "listen_main"), "sed-detect": ("cli_detect", "detect_main"),
                     "sed-stamp": ("cli", "stamp_main")}[name]
    return [sys.executable, "-c", f"import sys; from sed_runtime.{module} import {entry}; sys.exit({entry}())"]


# ---------------------------------------------------------------------------
# Bad recordings, one kind each
# ---------------------------------------------------------------------------

def _missing(tmp_path):
    return tmp_path / "missing.wav", r"audio file '.*missing\.wav' does not exist"


def _directory(tmp_path):
    (tmp_path / "folder.wav").mkdir()
    return tmp_path / "folder.wav", r"'.*folder\.wav' is a directory; expected an audio file"


def _corrupt(tmp_path):
    path = tmp_path / "corrupt.wav"
    path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(40)))
    return path, r"cannot read '.*corrupt\.wav' as audio \(.*\); expected a sound file libsndfile decodes"


def _zero_length(tmp_path):
    path = _write(tmp_path / "empty.wav", np.zeros(0, np.int16))
    assert sf.info(str(path)).frames == 0
    return path, r"recording '.*empty\.wav' holds no samples \(zero-length audio\); expected a recording"


def _text(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not audio\n" * 20)
    return path, r"cannot read '.*notes\.txt' as audio \(Format not recognised\); expected a sound file"


def _fake_mp3(tmp_path):
    path = tmp_path / "song.mp3"
    path.write_bytes(b"this is not an MPEG stream\n" * 40)
    return path, r"cannot read '.*song\.mp3' as audio \(.*\); expected a sound file libsndfile decodes"


BAD_RECORDINGS = {"missing": _missing, "directory": _directory, "corrupt": _corrupt, "zero-length": _zero_length,
                  "text": _text, "fake-mp3": _fake_mp3}


# ---------------------------------------------------------------------------
# sed-listen
# ---------------------------------------------------------------------------

def test_demo_events():
    """The demo clip is silence, "yes" (about 1-2 s), silence, "no" (about 3-4 s), silence."""
    assert _triples(_offline(_demo_samples())) == DEMO_EVENTS


def test_listen_demo_prints_json_lines_equal_to_offline(capsys):
    assert listen_main(["--model", str(MODEL), "--input", "demo", "--fast"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    events = jsonl(out)
    assert events == _offline(_demo_samples())
    assert all(set(e) == {"label", "onset", "offset", "peak", "mean"} for e in events)


def test_listen_out_tsv_holds_the_same_events(capsys, tmp_path):
    out_path = tmp_path / "events.tsv"
    assert listen_main(["--model", str(MODEL), "--input", str(_demo()), "--fast", "--out", str(out_path)]) == 0
    printed = jsonl(capsys.readouterr().out)
    rows = [line.split("\t") for line in out_path.read_text().splitlines()]
    assert [(label, float(on), float(off)) for on, off, label in rows] == _triples(printed) == DEMO_EVENTS


def test_listen_realtime_file_in_a_subprocess(tmp_path):
    """The console script, the file played at wall-clock pace through the ring buffer (3 s)."""
    clip = _write(tmp_path / "yes.wav", _keywords(["silence", "yes", "silence"]))
    out_csv = tmp_path / "events.csv"
    result = subprocess.run([*console_script("sed-listen"), "--model", str(MODEL), "--input", str(clip), "--out",
                             str(out_csv)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    events = jsonl(result.stdout)
    assert events == _offline(_keywords(["silence", "yes", "silence"])) and [e["label"] for e in events] == ["yes"]
    header, row = out_csv.read_text().splitlines()
    assert header == "onset,offset,label,peak,mean" and row.split(",")[2] == "yes"


def test_listen_ctrl_c_closes_and_writes_the_open_event(capsys, monkeypatch, tmp_path):
    """Ctrl-C arrives while "yes" is open: exit 0, the event closed at the stream's end, on stdout and in --out."""
    chunks = 9  # FileSource chunks of 4096 samples: 2.3 s in, "yes" (1.69 s - 2.69 s) is open
    process = Detector.process

    def interrupted(self, samples):
        if self.samples_seen >= chunks * 4096:  # samples since the stream started (the detector's reset)
            raise KeyboardInterrupt
        return process(self, samples)

    monkeypatch.setattr(Detector, "process", interrupted)
    out_path = tmp_path / "events.tsv"
    assert listen_main(["--model", str(MODEL), "--input", str(_demo()), "--fast", "--out", str(out_path)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    monkeypatch.undo()
    expected = _offline(_demo_samples()[: chunks * 4096])  # the same samples, flushed at their end
    assert jsonl(out) == expected
    assert [e["label"] for e in expected] == ["yes"] and expected[0]["offset"] < DEMO_EVENTS[0][2]
    rows = [line.split("\t") for line in out_path.read_text().splitlines()]
    assert [(label, float(on), float(off)) for on, off, label in rows] == _triples(expected)


@pytest.mark.parametrize("kind", sorted(BAD_RECORDINGS))
def test_listen_bad_recording_is_one_line(capsys, tmp_path, kind):
    path, message = BAD_RECORDINGS[kind](tmp_path)
    assert listen_main(["--model", str(MODEL), "--input", str(path), "--fast"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert_match(message, _one_error_line(err))


def _fake_sounddevice(monkeypatch, names):
    """Just enough of sounddevice for device lookup: input devices ``names``, the first the default."""
    sd = types.ModuleType("sounddevice")
    sd.PortAudioError = type("PortAudioError", (Exception,), {})
    devices = [{"name": n, "hostapi": 0, "max_input_channels": 1, "max_output_channels": 0,
                "default_samplerate": 44100.0} for n in names]
    sd.query_devices = lambda device=None: devices if device is None else devices[device]
    sd.query_hostapis = lambda index: {"name": "ALSA"}
    sd.default = types.SimpleNamespace(device=[0, 0])
    monkeypatch.setitem(sys.modules, "sounddevice", sd)


def test_listen_unknown_device_is_one_line_naming_it_and_the_candidates(capsys, monkeypatch):
    _fake_sounddevice(monkeypatch, ["Built-in Mic", "USB Mic"])
    assert listen_main(["--model", str(MODEL), "--device", "nosuchdevice"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert _one_error_line(err) == ("error: no input device matches 'nosuchdevice'; input devices: [0] Built-in Mic, "
                                    "[1] USB Mic (see `--list-devices`)")


def test_listen_fallback_plays_the_file_when_the_device_cannot_be_opened(capsys, monkeypatch):
    _fake_sounddevice(monkeypatch, ["Built-in Mic"])
    assert listen_main(["--model", str(MODEL), "--device", "webcam", "--fallback", "demo", "--fast"]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == ["note: no input device matches 'webcam'; input devices: [0] Built-in Mic (see "
                                "`--list-devices`); playing demo instead"]
    assert _triples(jsonl(out)) == DEMO_EVENTS


def test_listen_unwritable_out_fails_before_listening(capsys, tmp_path):
    target = tmp_path / "no-such-folder" / "events.tsv"
    assert listen_main(["--model", str(MODEL), "--input", "demo", "--fast", "--out", str(target)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert_match(r"^error: cannot write events to '.*events\.tsv': No such file or directory$", _one_error_line(err))


# ---------------------------------------------------------------------------
# sed-detect
# ---------------------------------------------------------------------------

@pytest.fixture
def recordings(tmp_path):
    """Two recordings and their events: the demo clip and yes/no/yes from the fixture clips."""
    demo = _write(tmp_path / "demo.wav", _demo_samples())
    words = _keywords(["noise", "yes", "silence", "no", "silence", "yes", "silence"])
    other = _write(tmp_path / "words.wav", words)
    expected = {str(demo): _offline(_demo_samples()), str(other): _offline(words)}
    assert [e["label"] for e in expected[str(other)]] == ["yes", "no", "yes"]
    return [str(demo), str(other)], expected


def _by_file(events) -> dict:
    grouped = {}
    for event in events:
        grouped.setdefault(event.pop("file"), []).append(event)
    return grouped


def test_detect_jsonl_to_stdout_with_a_file_field(capsys, recordings):
    paths, expected = recordings
    assert detect_main(["--model", str(MODEL), *paths]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    events = jsonl(out)
    assert [e["file"] for e in events] == [p for p in paths for _ in expected[p]]  # in the order given
    assert _by_file(events) == expected


def test_detect_tsv_into_a_folder_one_file_per_recording(capsys, tmp_path, recordings):
    paths, expected = recordings
    out_dir = tmp_path / "events"
    assert detect_main(["--model", str(MODEL), *paths, "--format", "tsv", "--out", str(out_dir)]) == 0
    assert capsys.readouterr() == ("", "")
    assert sorted(p.name for p in out_dir.iterdir()) == ["demo.tsv", "words.tsv"]
    for path in paths:
        rows = [line.split("\t") for line in (out_dir / (Path(path).stem + ".tsv")).read_text().splitlines()]
        assert [(label, float(on), float(off)) for on, off, label in rows] == _triples(expected[path])


def test_detect_two_workers_give_the_same_events_as_one(capsys, tmp_path, recordings):
    paths, expected = recordings
    paths = paths + [_write_copy(tmp_path, paths[0], "demo_copy.wav")]
    expected[paths[2]] = expected[paths[0]]
    assert detect_main(["--model", str(MODEL), *paths, "--workers", "1"]) == 0
    one = _by_file(jsonl(capsys.readouterr().out))
    assert detect_main(["--model", str(MODEL), *paths, "--workers", "2"]) == 0
    two = _by_file(jsonl(capsys.readouterr().out))
    assert one == two == expected


def _write_copy(tmp_path, source: str, name: str) -> str:
    target = tmp_path / name
    target.write_bytes(Path(source).read_bytes())
    return str(target)


def _variants(tmp_path, x):
    stereo = np.stack([x, x], axis=1)
    return {
        "8k": (_write(tmp_path / "r8k.wav", resample_pcm16(x, RATE, 8000), 8000), 8000),
        "44k1": (_write(tmp_path / "r44k1.wav", resample_pcm16(x, RATE, 44100), 44100), 44100),
        "stereo": (_write(tmp_path / "stereo.wav", stereo), RATE),
        "24bit": (_write(tmp_path / "p24.wav", x.astype(np.int32) << 16, subtype="PCM_24"), RATE),
        "flac": (_write(tmp_path / "clip.flac", x), RATE),
    }


def test_other_rates_channels_and_formats_are_resampled_mixed_and_detected(capsys, tmp_path):
    x = _demo_samples()
    variants = _variants(tmp_path, x)
    assert detect_main(["--model", str(MODEL), *[str(p) for p, _ in variants.values()]]) == 0
    got = _by_file(jsonl(capsys.readouterr().out))
    original = _offline(x)
    for name, (path, rate) in variants.items():
        events = got[str(path)]
        if rate == RATE:  # mixing identical channels, 24-bit (top 16 bits), FLAC: the same samples
            assert events == original, name
            continue
        file_samples = sf.read(str(path), dtype="int16")[0]
        assert events == _offline(resample_pcm16(file_samples, rate, RATE)), f"{name}: resampled as the library does"
        assert [e["label"] for e in events] == [e["label"] for e in original], name
        tolerance = STEP_S if rate > RATE else 2 * STEP_S  # 8 kHz lost everything above 4 kHz
        for e, o in zip(events, original):
            assert abs(e["onset"] - o["onset"]) <= tolerance + 1e-6, (name, e, o)
            assert abs(e["offset"] - o["offset"]) <= tolerance + 1e-6, (name, e, o)


def test_listen_resamples_like_detect(capsys, tmp_path):
    path = _write(tmp_path / "r44k1.wav", resample_pcm16(_demo_samples(), RATE, 44100), 44100)
    assert listen_main(["--model", str(MODEL), "--input", str(path), "--fast"]) == 0
    live = jsonl(capsys.readouterr().out)
    assert detect_main(["--model", str(MODEL), str(path)]) == 0
    offline = jsonl(capsys.readouterr().out)
    assert [dict(e, file=str(path)) for e in live] == offline
    assert [e["label"] for e in live] == ["yes", "no"]


@pytest.mark.parametrize("kind", sorted(BAD_RECORDINGS))
def test_detect_bad_recording_is_one_line_and_the_others_are_all_written(capsys, recordings, tmp_path, kind):
    paths, expected = recordings
    bad, message = BAD_RECORDINGS[kind](tmp_path)
    assert detect_main(["--model", str(MODEL), paths[0], str(bad), paths[1]]) == 1
    out, err = capsys.readouterr()
    assert _by_file(jsonl(out)) == expected
    assert_match("^error: " + message, _one_error_line(err))


def test_detect_bad_recordings_into_a_folder(capsys, recordings, tmp_path):
    """--out DIR: every good recording gets its event file; each bad one is a line; exit 1."""
    paths, expected = recordings
    bad = [str(BAD_RECORDINGS[kind](tmp_path)[0]) for kind in ("missing", "zero-length")]
    out_dir = tmp_path / "events"
    assert detect_main(["--model", str(MODEL), bad[0], *paths, bad[1], "--out", str(out_dir)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 2 and "missing.wav" in err and "empty.wav" in err
    assert sorted(p.name for p in out_dir.iterdir()) == ["demo.jsonl", "words.jsonl"]
    for path in paths:
        assert jsonl((out_dir / (Path(path).stem + ".jsonl")).read_text()) == expected[path]


def test_detect_recording_failing_midway_keeps_what_was_detected(capsys, recordings, tmp_path):
    """A FLAC cut at two thirds: its readable part's events are written, then one line, exit 1."""
    paths, expected = recordings
    x = np.tile(_demo_samples(), 3)
    whole = _write(tmp_path / "long.flac", x)
    data = whole.read_bytes()
    cut = tmp_path / "cut.flac"
    cut.write_bytes(data[: len(data) * 2 // 3])
    assert detect_main(["--model", str(MODEL), str(cut), paths[1]]) == 1
    out, err = capsys.readouterr()
    got = _by_file(jsonl(out))
    assert got[paths[1]] == expected[paths[1]]
    complete = _offline(x)
    kept = got[str(cut)]
    assert len(kept) >= 2 and kept[:-1] == complete[: len(kept) - 1]  # the last may be closed early, at the cut
    assert kept[-1]["onset"] == complete[len(kept) - 1]["onset"]
    assert_match(r"^error: cannot decode '.*cut\.flac' \(.*\); expected a complete, valid FLAC file$",
                 _one_error_line(err))


def test_detect_subprocess_bad_and_good_recordings(tmp_path, recordings):
    """The console script: the good recording's events on stdout, one line per bad one (no C library chatter)."""
    paths, expected = recordings
    mp3, _ = _fake_mp3(tmp_path)
    empty, _ = _zero_length(tmp_path)
    result = subprocess.run([*console_script("sed-detect"), "--model", str(MODEL), str(mp3), paths[0], str(empty)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert _by_file(jsonl(result.stdout)) == {paths[0]: expected[paths[0]]}
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    assert_match(r"^error: cannot read '.*song\.mp3' as audio", lines[0])
    assert_match(r"^error: recording '.*empty\.wav' holds no samples", lines[1])


def test_detect_ctrl_c_exits_130_with_the_finished_recordings_written(capsys, monkeypatch, recordings):
    import sed_runtime.cli_detect as cli_detect

    paths, expected = recordings
    detect_one = cli_detect._detect_one
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return detect_one(*args, **kwargs)

    monkeypatch.setattr(cli_detect, "_detect_one", interrupted)
    assert detect_main(["--model", str(MODEL), *paths]) == 130
    out, err = capsys.readouterr()
    assert err == ""
    assert _by_file(jsonl(out)) == {paths[0]: expected[paths[0]]}


# ---------------------------------------------------------------------------
# Models and options
# ---------------------------------------------------------------------------

def _corrupt_model(tmp_path):
    path = tmp_path / "broken.tflite"
    path.write_bytes(MODEL.read_bytes()[:1000])
    return path, r"^error: model '.*broken\.tflite': corrupt TFLite flatbuffer: "


BAD_MODELS = {
    "without metadata": lambda tmp_path: (UNSTAMPED, r"^error: model '.*micro_speech_quantized\.tflite': the model "
                                                     r"carries no sed_runtime metadata .*; stamp it with sed-stamp$"),
    "corrupt": _corrupt_model,
    "missing": lambda tmp_path: (tmp_path / "nosuch.tflite",
                                 r"^error: cannot read model '.*nosuch\.tflite': No such file or directory$"),
    "not a model": lambda tmp_path: (_demo(), r"^error: '.*demo_yes_no\.wav': unknown model format; expected a "
                                              r"\.tflite flatbuffer or a \.onnx model$"),
}


@pytest.mark.parametrize("kind", sorted(BAD_MODELS))
@pytest.mark.parametrize("command", ["listen", "detect"])
def test_bad_model_is_one_line_before_any_recording_is_read(capsys, tmp_path, recordings, kind, command):
    model, message = BAD_MODELS[kind](tmp_path)
    if command == "listen":
        code = listen_main(["--model", str(model), "--input", "demo", "--fast"])
    else:
        code = detect_main(["--model", str(model), *recordings[0]])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert_match(message, _one_error_line(err))


def test_bad_model_in_a_subprocess(tmp_path):
    result = subprocess.run([*console_script("sed-listen"), "--model", str(UNSTAMPED), "--input", "demo", "--fast"],
                            capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout) == (1, "")
    assert_match(r"carries no sed_runtime metadata", _one_error_line(result.stderr))


@pytest.mark.parametrize("args, message", [
    (["--channel", "left"], r"^error: --channel 'left' must be 'mix' or a channel index >= 0$"),
    (["--workers", "0"], r"^error: --workers 0 must be >= 1$"),
    (["--threshold", "1.5"], r"^error: on_threshold=1.5 must be in \[0, 1\]$"),
    (["--channel", "2"], r"^error: channel=2 does not exist in '.*demo\.wav', which has 1 channel\(s\)$"),
])
def test_detect_bad_options_are_one_line(capsys, recordings, args, message):
    assert detect_main(["--model", str(MODEL), recordings[0][0], *args]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert_match(message, _one_error_line(err))


def test_detect_out_that_is_a_file_is_one_line(capsys, recordings):
    paths, _ = recordings
    assert detect_main(["--model", str(MODEL), paths[0], "--out", paths[1]]) == 1
    assert_match(r"^error: --out '.*words\.wav' must be a directory .*\(File exists\)$",
                 _one_error_line(capsys.readouterr().err))


# ---------------------------------------------------------------------------
# A reader that goes away (`| head`)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("command", [
    ["sed-stamp", str(MODEL), "--show"],
    ["sed-listen", "--model", str(MODEL), "--input", "demo", "--fast"],
    ["sed-detect", "--model", str(MODEL), "DEMO", "DEMO"],
])
def test_closed_stdout_stops_quietly(command):
    name, *args = command
    args = [str(_demo()) if a == "DEMO" else a for a in args]
    proc = subprocess.Popen([*console_script(name), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert err == ""


def test_listen_closed_stdout_still_completes_out(tmp_path):
    """The events written before the reader left, and the event open then, are all in --out."""
    out_path = tmp_path / "events.tsv"
    proc = subprocess.Popen([*console_script("sed-listen"), "--model", str(MODEL), "--input", "demo", "--fast", "--out",
                             str(out_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert err == ""
    rows = [line.split("\t") for line in out_path.read_text().splitlines()]
    assert [(label, float(on), float(off)) for on, off, label in rows] == DEMO_EVENTS[:1]
