"""Event sinks write each event at once, in layouts other tools read."""

from __future__ import annotations

import csv
import json

import pytest

from sed_runtime.decision import Event
from sed_runtime.errors import ConfigError
from sed_runtime.io.sinks import CallbackSink, open_sink

EVENTS = [Event("baby_cry", 1.25, 3.5, 0.91, 0.8, 0), Event("smoke alarm", 4.0, 4.5, 0.7, 0.65, 1)]


@pytest.mark.parametrize("fmt", ["jsonl", "tsv", "csv"])
def test_each_event_is_on_disk_before_close(tmp_path, fmt):
    path = tmp_path / f"events.{fmt}"
    sink = open_sink(fmt, path)
    sink.write(EVENTS[0], file="a.wav")
    text = path.read_text()  # not closed yet: flushed already
    assert "1.25" in text and "baby_cry" in text
    sink.write(EVENTS[1])
    sink.close()
    lines = path.read_text().splitlines()
    if fmt == "jsonl":
        first = json.loads(lines[0])
        assert first == {"label": "baby_cry", "onset": 1.25, "offset": 3.5, "peak": 0.91, "mean": 0.8, "file": "a.wav"}
    elif fmt == "tsv":
        assert lines == ["1.250000\t3.500000\tbaby_cry", "4.000000\t4.500000\tsmoke alarm"]
    else:
        rows = list(csv.reader(lines))
        assert rows[0] == ["onset", "offset", "label", "peak", "mean"] and rows[2][2] == "smoke alarm"


def test_stdout_and_callback(capsys):
    sink = open_sink("jsonl")
    sink.write(EVENTS[0])
    assert json.loads(capsys.readouterr().out)["label"] == "baby_cry"
    got = []
    CallbackSink(got.append).write(EVENTS[1])
    assert got == [EVENTS[1]]


def test_bad_format_and_unwritable_path(tmp_path):
    with pytest.raises(ConfigError, match="format='xml'"):
        open_sink("xml")
    with pytest.raises(ConfigError, match="cannot write events"):
        open_sink("tsv", tmp_path / "missing" / "e.tsv")
