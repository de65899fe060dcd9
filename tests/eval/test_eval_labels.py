"""Event lists and manifests: both DCASE forms, Audacity quirks, round trips, and errors that say where and why.

Success: parsed events equal what the text says, in order; writing and
reading back gives the same events.  Failure: :class:`AnnotationError` whose
message names the file and line (or item), the offending value and what was
expected.
"""

from __future__ import annotations

import json

import pytest

from sed_runtime.errors import SedError
from sed_runtime.eval.labels import (
    AnnotationError, LabeledEvent, parse_event_list, read_event_list, read_event_lists, read_manifest,
    write_event_list, write_event_lists,
)


def test_one_file_form_audacity_layout():
    text = "0.500000\t1.250000\tbaby cry\n\\\t100.0\t2000.0\n\n# comment\n2\t3.5\tdog\n"
    assert parse_event_list(text) == {None: [LabeledEvent(0.5, 1.25, "baby cry"), LabeledEvent(2.0, 3.5, "dog")]}


def test_space_separated_and_header():
    text = "onset offset event_label\n1.0 2.0 dog\n"
    assert parse_event_list(text) == {None: [LabeledEvent(1.0, 2.0, "dog")]}


def test_multi_file_form_with_empty_file():
    text = "filename\tonset\toffset\tevent_label\na.wav\t1\t2\tdog\nb.wav\na.wav\t3\t4\tcat\n"
    assert parse_event_list(text) == {"a.wav": [LabeledEvent(1, 2, "dog"), LabeledEvent(3, 4, "cat")], "b.wav": []}


def test_empty_text_has_no_events():
    assert parse_event_list("\n# nothing\n") == {None: []}


@pytest.mark.parametrize("text, fragments", [
    ("1.0\t2.0\n", ["x.tsv:1", "2 fields", "onset offset label"]),
    ("1.0\tabc\tdog\n", ["x.tsv:1", "offset 'abc' is not a number", "seconds"]),
    ("0\t1\tdog\n2.0\t1.0\tdog\n", ["x.tsv:2", "offset 1.0 is before onset 2.0", "onset <= offset"]),
    ("-1\t1\tdog\n", ["x.tsv:1", "onset '-1'", ">= 0"]),
    ("nan\t1\tdog\n", ["x.tsv:1", "onset 'nan'", "finite"]),
    ("1\t2\t\n", ["x.tsv:1", "empty label"]),
    ("1\t2\tdog\na.wav\t1\t2\tdog\n", ["x.tsv:2", "mixes forms", "'onset offset label'"]),
    ("1\t2\tdog\tx\ty\n", ["x.tsv:1", "5 fields"]),
])
def test_errors_name_line_value_and_expectation(text, fragments):
    with pytest.raises(AnnotationError) as info:
        parse_event_list(text, "x.tsv")
    for fragment in fragments:
        assert fragment in str(info.value)
    assert isinstance(info.value, SedError)


def test_round_trip(tmp_path):
    events = [LabeledEvent(0.1, 0.9, "dog"), LabeledEvent(1.0, 1.0, "knock"), LabeledEvent(2.123456, 3.5, "baby cry")]
    write_event_list(tmp_path / "one.tsv", events)
    assert read_event_list(tmp_path / "one.tsv") == events
    write_event_lists(tmp_path / "many.tsv", {"a.wav": events, "silence.wav": []})
    assert read_event_lists(tmp_path / "many.tsv") == {"a.wav": events, "silence.wav": []}
    assert read_event_list(tmp_path / "many.tsv", "some/dir/a.wav") == events  # matched by base name
    assert read_event_list(tmp_path / "many.tsv", "unlisted.wav") == []
    with pytest.raises(AnnotationError, match="2 files; say which"):
        read_event_list(tmp_path / "many.tsv")


def test_missing_file(tmp_path):
    with pytest.raises(AnnotationError, match="cannot read event list"):
        read_event_list(tmp_path / "absent.tsv")


def test_json_manifest(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"items": [
        {"audio": "cry.wav", "labels": "cry.tsv", "positives": "synthetic", "category": "target"},
        {"audio": "/abs/tv.wav", "category": "speech", "source": "fillets-ng-data-cs", "duration_s": 60},
    ]}))
    items = read_manifest(tmp_path / "m.json")
    assert items[0].audio == str(tmp_path / "cry.wav") and items[0].labels == str(tmp_path / "cry.tsv")
    assert items[0].positives == "synthetic" and items[0].source == "unspecified"
    assert items[1].audio == "/abs/tv.wav" and items[1].labels is None and items[1].positives == "none"
    assert items[1].category == "speech" and items[1].duration_s == 60.0


def test_csv_manifest(tmp_path):
    (tmp_path / "m.csv").write_text("audio,labels,category,positives,source\n"
                                    "a.wav,a.tsv,target,real,scratch\nb.wav,,music,,warzone2100-music\n")
    items = read_manifest(tmp_path / "m.csv")
    assert [i.positives for i in items] == ["real", "none"]
    assert items[1].labels is None and items[1].source == "warzone2100-music"


@pytest.mark.parametrize("content, suffix, fragments", [
    ('[{"labels": "a.tsv"}]', ".json", ["item 0", "'audio' is missing"]),
    ('[{"audio": "a.wav", "labels": "a.tsv"}]', ".json", ["item 0", "'positives' is missing", "real", "synthetic"]),
    ('[{"audio": "a.wav", "positives": "maybe"}]', ".json", ["item 0", "positives='maybe'", "expected one of"]),
    ('[{"audio": "a.wav", "colour": "red"}]', ".json", ["item 0", "unknown field(s) ['colour']"]),
    ('[{"audio": "a.wav", "duration_s": -3}]', ".json", ["item 0", "duration_s=-3", "> 0"]),
    ('{"audio": "a.wav"}', ".json", ["'items' list"]),
    ("[", ".json", ["not valid JSON"]),
    ("[]", ".json", ["lists no recordings"]),
    ("path,labels\na.wav,\n", ".csv", ["header naming at least 'audio'"]),
    ("audio,labels\na.wav,a.tsv,extra\n", ".csv", ["m.csv:2", "more values than header columns"]),
    ("audio,duration_s\na.wav,long\n", ".csv", ["m.csv:2", "duration_s='long' is not a number"]),
])
def test_manifest_errors(tmp_path, content, suffix, fragments):
    path = tmp_path / f"m{suffix}"
    path.write_text(content)
    with pytest.raises(AnnotationError) as info:
        read_manifest(path)
    for fragment in fragments:
        assert fragment in str(info.value)
