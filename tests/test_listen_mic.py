"""``sed-listen`` on a real microphone path: PortAudio -> ALSA pulse plugin -> PulseAudio.

A WAV with known keywords (built from the micro_speech fixture clips) is
played into a private virtual microphone (``tests/vmic.py``) while
``sed-listen --device vmic --duration S`` runs as a subprocess printing JSON
lines.  The reference is ``sed-detect`` on the same WAV: every offline event
must appear live with the same label, its onset within 100 ms of the offline
onset shifted by where the feed starts in the stream, and the intervals
between events within 100 ms of the offline ones.

Where the feed starts: the sound server announces sed-listen's capture stream
and the feed's playback stream as they are created (``pactl subscribe``); the
difference of the two times is the feed's start in stream time, to within
about 10 ms.  The exact start then follows from the live path being the
offline path on the same samples: among the starts within 25 ms of the
measured one, the test finds the sample at which the detector run offline
over silence + the WAV + silence gives the live events exactly (every field:
label, onset, offset, peak, mean).  Onsets fall on the model's 100 ms
inference grid, which starts at the stream start live and at the file start
offline: an onset can move by up to one step, never more.

The WAV starts with noise, not near-silence: the TFLM frontend's noise
estimate starts at zero, and faint sound right after the microphone's
digital silence looks loud to the model (micro_speech calls it "yes"),
offline and live alike.

Also here, with the same real stack: an unknown ``--device`` is one line
naming it and the devices there are; a device that disappears mid-stream
(its sound server stops) gives the events before it and the one open then,
closed, one error line and exit code 1; Ctrl-C (SIGINT) with an event open
exits 0 with that event closed and written.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import SHARED
from test_cli_detect import MODEL, console_script, jsonl
from vmic import ServerEvents, feed, vmic  # noqa: F401 - vmic is a fixture

pytestmark = pytest.mark.mic

RATE = 16000
CLIPS = SHARED / "fixtures" / "micro_speech"
# One fixture clip (1 s) per name.  Chosen so that the offline events are the same for any
# leading silence (checked over shifts of 0-0.4 s in 29-sample steps): yes, no, yes.
STRUCTURE = ("noise", "noise", "yes", "silence", "no", "silence", "yes", "silence")
STEP_S = 0.1  # the model's stride: 5 frames of 20 ms


def _wav(tmp_path, names, name="keywords.wav") -> Path:
    parts = []
    for clip in names:
        x, rate = sf.read(str(CLIPS / f"{clip}_1000ms.wav"), dtype="int16")
        assert rate == RATE and x.ndim == 1
        parts.append(x)
    path = tmp_path / name
    sf.write(str(path), np.concatenate(parts), RATE, subtype="PCM_16")
    return path


def _offline(path: Path, env) -> list[dict]:
    result = subprocess.run([*console_script("sed-detect"), "--model", str(MODEL), "--quiet", str(path)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return jsonl(result.stdout)


def _listen(vmic, *args):
    return subprocess.Popen([*console_script("sed-listen"), "--model", str(MODEL), "--device", "vmic", *args],
                            env=vmic.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _feed(vmic, path: Path):
    return feed(vmic, path)


def _play_while_listening(vmic, path: Path, *args, timeout: float = 120.0):
    """Start sed-listen, wait until it records, feed ``path``; return (listen process, feed process, feed start s).

    The feed start is in sed-listen's stream time (see the module docstring).
    """
    server = ServerEvents(vmic)
    try:
        t0 = time.monotonic()
        listen = _listen(vmic, *args)
        try:
            recording = server.recording(after=t0, timeout=timeout)
        except TimeoutError:
            listen.kill()
            out, err = listen.communicate()
            pytest.fail(f"sed-listen did not start recording: exit {listen.returncode}, stderr {err.strip()!r}")
        feed = _feed(vmic, path)
        playing = server.playing(after=recording)
    finally:
        server.close()
    return listen, feed, playing - recording


def _feed_starts(wav: np.ndarray, live: list[dict], around_s: float, duration_s: float,
                 radius_s: float = 0.025) -> list[int]:
    """Feed starts (in samples, within ``radius_s`` of ``around_s``) at which the detector run offline over
    what the microphone then delivered -- silence, the WAV, silence; ``duration_s`` in all -- gives exactly
    the live events, every field.  The first live event is checked on a prefix first (fast), then all."""
    from sed_runtime.detector import Detector

    detector = Detector(str(MODEL))
    total = int(round(duration_s * RATE))
    prefix = min(total, int((live[0]["offset"] + 1.0) * RATE))  # the first event has closed (merge gap 0.3 s)
    stream = np.zeros(total, np.int16)
    found = []
    for start in range(max(0, int((around_s - radius_s) * RATE)), int((around_s + radius_s) * RATE) + 1):
        stream[:] = 0
        stream[start:start + wav.shape[0]] = wav[: total - start]
        detector.reset()
        first = [e.to_dict() for e in detector.process(stream[:prefix])][:1]
        if first != live[:1]:
            continue
        detector.reset()
        if [e.to_dict() for e in detector.process(stream) + detector.flush()] == live:
            found.append(start)
    return found


def test_live_events_through_the_virtual_microphone_match_offline(vmic, tmp_path):
    wav = _wav(tmp_path, STRUCTURE)
    offline = _offline(wav, vmic.env)
    assert [e["label"] for e in offline] == ["yes", "no", "yes"]

    duration = len(STRUCTURE) + 1.0  # the feed starts within a fraction of a second
    listen, feed, feed_start = _play_while_listening(vmic, wav, "--duration", str(duration))
    out, err = listen.communicate(timeout=duration + 60)
    assert feed.wait(timeout=30) == 0, feed.stderr.read()
    assert listen.returncode == 0, err
    assert "warning" not in err, err  # no overruns
    live = jsonl(out)
    report = (f"feed measured to start at {feed_start:.4f} s of stream time; offline onsets "
              f"{[e['onset'] for e in offline]}, live onsets {[e['onset'] for e in live]}")
    assert [e["label"] for e in live] == [e["label"] for e in offline], report

    # The same samples give the same events: some feed start near the measured one reproduces them exactly.
    starts = _feed_starts(sf.read(str(wav), dtype="int16")[0], live, feed_start, duration)
    assert starts, f"no feed start within 25 ms of the measured one gives exactly the live events; {report}"
    exact = starts[0] / RATE
    errors = [round(l["onset"] - exact - o["onset"], 4) for l, o in zip(live, offline)]
    measured = [round(l["onset"] - feed_start - o["onset"], 4) for l, o in zip(live, offline)]
    report += (f"; the live events are those of a feed starting at sample {starts[0]} ({exact:.4f} s; "
               f"{len(starts)} such start(s)); onset errors {errors} s ({measured} s from the measured start)")
    print(report)
    assert max(abs(e) for e in errors) <= STEP_S, report
    live_gaps = np.diff([e["onset"] for e in live])
    offline_gaps = np.diff([e["onset"] for e in offline])
    assert np.all(np.abs(live_gaps - offline_gaps) <= STEP_S + 1e-6), f"intervals {live_gaps} vs {offline_gaps}"


def test_unknown_device_is_one_line_naming_it_and_the_devices_there_are(vmic):
    listed = subprocess.run([*console_script("sed-listen"), "--list-devices"], env=vmic.env, capture_output=True,
                            text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "vmic" in listed.stdout
    result = subprocess.run([*console_script("sed-listen"), "--model", str(MODEL), "--device", "nosuchdevice"],
                            env=vmic.env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: no input device matches 'nosuchdevice'; input devices: ")
    assert "vmic" in lines[0] and lines[0].endswith("(see `--list-devices`)")


def _no_then_open_yes(tmp_path):
    """A WAV and decision file giving a "no" event that closes, then a "yes" event that stays open (its off
    threshold is 0) until the stream ends, for any leading silence."""
    decision = tmp_path / "decision.json"
    decision.write_text(json.dumps({"thresholds": {"yes": [0.6, 0.0]}}))
    wav = _wav(tmp_path, ("noise", "noise", "no", "silence", "yes"))
    return wav, decision


def _end_of_stream_checks(out: str, feed_start: float, out_tsv: Path) -> None:
    live = jsonl(out)
    assert [e["label"] for e in live] == ["no", "yes"], out
    no, yes = live
    assert 2.0 < no["onset"] - feed_start < 3.2 and no["offset"] < yes["onset"]  # "no" plays at 2-3 s of the WAV
    assert 4.0 < yes["onset"] - feed_start < 5.2  # "yes" plays at 4-5 s of the WAV
    assert yes["offset"] - feed_start >= 5.0 - STEP_S  # closed at the stream's end, after the whole feed
    rows = [line.split("\t") for line in out_tsv.read_text().splitlines()]
    assert [(label, float(on), float(off)) for on, off, label in rows] == [
        (e["label"], e["onset"], e["offset"]) for e in live]


def test_device_that_disappears_keeps_the_events_before_one_error_line_exit_1(vmic, tmp_path):
    """The "no" event closed before the device went; the "yes" event open then is closed and written too."""
    wav, decision = _no_then_open_yes(tmp_path)
    out_tsv = tmp_path / "events.tsv"
    listen, feed, feed_start = _play_while_listening(vmic, wav, "--decision", str(decision), "--out", str(out_tsv))
    assert feed.wait(timeout=60) == 0, feed.stderr.read()
    time.sleep(0.3)  # the last of the feed reaches sed-listen
    assert listen.poll() is None, listen.communicate()
    vmic("stop")  # the "microphone" is unplugged: its sound server goes away
    out, err = listen.communicate(timeout=30)
    assert listen.returncode == 1, err
    lines = err.splitlines()
    assert len(lines) == 1, err  # PortAudio's own complaints (C code, descriptor 2) do not show
    assert lines[0].startswith("error: the input device [") and "'vmic'" in lines[0], err
    assert lines[0].endswith("the audio received before was processed"), err
    _end_of_stream_checks(out, feed_start, out_tsv)


def test_ctrl_c_with_an_event_open_exits_0_and_writes_it(vmic, tmp_path):
    wav, decision = _no_then_open_yes(tmp_path)
    out_tsv = tmp_path / "events.tsv"
    listen, feed, feed_start = _play_while_listening(vmic, wav, "--decision", str(decision), "--out", str(out_tsv))
    assert feed.wait(timeout=60) == 0, feed.stderr.read()
    time.sleep(0.3)  # the last of the feed reaches sed-listen
    assert listen.poll() is None, listen.communicate()
    listen.send_signal(signal.SIGINT)
    out, err = listen.communicate(timeout=30)
    assert listen.returncode == 0, err
    assert err == ""
    _end_of_stream_checks(out, feed_start, out_tsv)
