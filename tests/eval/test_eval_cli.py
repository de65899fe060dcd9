"""sed-eval end to end: event files, manifests, saved scores with a sweep and DET plot, the detector as scorer.

Success: exit 0; the JSON report's event- and segment-based numbers equal
the metrics computed directly (and sed_eval's, when installed); false alarms
per hour on non-target audio are broken down by category with their sources;
the human table names what the figures rest on.  Failure: exit 1 with one
``error: ...`` line naming the value and what was expected.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf

from _eval_cases import assert_same
from conftest import SHARED, oracle
from sed_runtime.cli import eval_main
from sed_runtime.eval.labels import LabeledEvent as E
from sed_runtime.eval.labels import write_event_list, write_event_lists
from sed_runtime.eval.metrics import (
    count_events, count_segments, event_based_results, segment_based_results, sum_counts,
)

REF = {"a.wav": [E(1.0, 2.0, "dog"), E(3.0, 3.5, "cry"), E(6.0, 8.0, "dog")],
       "b.wav": [E(0.5, 1.5, "cry")],
       "tv.wav": []}
DET = {"a.wav": [E(1.1, 2.2, "dog"), E(3.0, 3.4, "dog"), E(6.1, 7.9, "dog")],
       "b.wav": [E(0.6, 1.4, "cry"), E(5.0, 5.5, "cry")],
       "tv.wav": [E(2.0, 3.0, "dog"), E(7.0, 7.5, "cry")]}
SECONDS = {"a.wav": 10.0, "b.wav": 6.0, "tv.wav": 9.0}


def _write_audio(folder):
    paths = []
    for name, seconds in SECONDS.items():
        path = folder / name
        sf.write(path, np.zeros(int(seconds * 8000), np.int16), 8000, subtype="PCM_16")
        paths.append(str(path))
    return paths


def _expected():
    labels = ["cry", "dog"]
    ev = sum_counts(count_events(REF[n], DET[n], labels) for n in SECONDS)
    seg = sum_counts(count_segments(REF[n], DET[n], labels, 1.0, SECONDS[n]) for n in SECONDS)
    return event_based_results(ev), segment_based_results(seg)


def _nan_to_none(x):
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    return None if isinstance(x, float) and math.isnan(x) else x


def _strip(block):
    return {k: v for k, v in block.items() if k in ("overall", "class_wise", "class_wise_average")}


def test_events_mode_multi_file_lists(tmp_path, capsys):
    audio = _write_audio(tmp_path)
    write_event_lists(tmp_path / "ref.tsv", REF)
    write_event_lists(tmp_path / "det.tsv", DET)
    out = tmp_path / "report.json"
    code = eval_main(audio + ["--ref", str(tmp_path / "ref.tsv"), "--events", str(tmp_path / "det.tsv"),
                              "--positives", "real", "--category", "mixed", "--source", "unit-test",
                              "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    event, segment = _expected()
    assert _strip(report["event_based"]["all files"]) == _nan_to_none(event)
    assert _strip(report["segment_based"]["all files"]) == _nan_to_none(segment)
    nt = report["false_alarms"]["non_target"]
    assert (nt["count"], nt["hours"]) == (2, 9.0 / 3600)
    assert nt["by_category"]["mixed"]["sources"] == ["unit-test"]
    table = capsys.readouterr().out
    assert "real positives: 4 events in 2 files" in table and "Event-based (all files" in table
    assert "non-target audio: 2 in 0.003 h" in table


def test_events_equal_sed_eval_through_the_cli(tmp_path):
    sed_eval = oracle("sed_eval")
    import dcase_util

    audio = _write_audio(tmp_path)
    write_event_lists(tmp_path / "ref.tsv", REF)
    write_event_lists(tmp_path / "det.tsv", DET)
    out = tmp_path / "r.json"
    assert eval_main(audio + ["--ref", str(tmp_path / "ref.tsv"), "--events", str(tmp_path / "det.tsv"),
                              "--positives", "real", "--json", str(out), "--collar", "0.25"]) == 0
    metric = sed_eval.sound_event.EventBasedMetrics(event_label_list=["cry", "dog"], t_collar=0.25)
    for name in SECONDS:
        def box(rows, name=name):
            return dcase_util.containers.MetaDataContainer(
                [{"filename": name, "event_label": e.label, "onset": e.onset_s, "offset": e.offset_s} for e in rows])
        metric.evaluate(box(REF[name]), box(DET[name]))
    got = json.loads(out.read_text())["event_based"]["all files"]
    want = _nan_to_none(metric.results())
    assert_same({k: v for k, v in want["overall"].items() if v}, {k: v for k, v in got["overall"].items() if v})
    assert _strip(got)["class_wise"] == want["class_wise"]


def test_manifest_with_event_folder(tmp_path, capsys):
    (tmp_path / "det").mkdir()
    items = []
    for name in SECONDS:
        write_event_list(tmp_path / "det" / name.replace(".wav", ".tsv"), DET[name])
        write_event_list(tmp_path / name.replace(".wav", ".tsv"), REF[name])
        target = bool(REF[name])
        items.append({"audio": name, "labels": name.replace(".wav", ".tsv"), "duration_s": SECONDS[name],
                      "positives": "synthetic" if target else "none", "category": "target" if target else "speech",
                      "source": "espeak-ng" if target else "tuxpaint-stamps-default"})
    (tmp_path / "m.json").write_text(json.dumps(items))
    assert eval_main(["--manifest", str(tmp_path / "m.json"), "--events", str(tmp_path / "det"), "--json", "-"]) == 0
    report = json.loads(capsys.readouterr().out)
    event, _ = _expected()
    assert _strip(report["event_based"]["all files"]) == _nan_to_none(event)
    speech = report["false_alarms"]["non_target"]["by_category"]["speech"]
    assert speech["count"] == 2 and speech["sources"] == ["tuxpaint-stamps-default"]
    assert "synthetic positives" in report["data"]["summary"]


def test_scores_sweep_with_plot_and_workers(tmp_path, capsys):
    rng = np.random.default_rng(1)
    (tmp_path / "scores").mkdir()
    audio = _write_audio(tmp_path)
    for name in SECONDS:
        steps = int(SECONDS[name] / 0.1)
        scores = rng.random((steps, 2)) * 0.5
        for e in REF[name]:  # high scores inside reference events
            scores[int(e.onset_s / 0.1):int(e.offset_s / 0.1), ["cry", "dog"].index(e.label)] = 0.9
        np.savez(tmp_path / "scores" / name.replace(".wav", ".npz"), scores=scores, step_s=0.1,
                 labels=np.array(["cry", "dog"]))
    write_event_lists(tmp_path / "ref.tsv", REF)
    (tmp_path / "decision.json").write_text(json.dumps({"smoothing": "none", "on_threshold": 0.6}))
    plot = tmp_path / "det.png"
    code = eval_main(audio + ["--ref", str(tmp_path / "ref.tsv"), "--positives", "synthetic", "--scores",
                              str(tmp_path / "scores"), "--decision", str(tmp_path / "decision.json"),
                              "--thresholds", "0.2:0.8:0.2", "--at-fa", "0", "--at-fa", "1000", "--plot", str(plot),
                              "--workers", "2", "--json", str(tmp_path / "r.json")])
    assert code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    rows = report["operating_points"]["rows"]
    assert [r["threshold"] for r in rows] == [0.2, 0.4, 0.6, 0.8]
    assert rows[-1]["fa_count"] == 0 and rows[-1]["recall"] == 1.0  # noise stays below 0.5, events at 0.9
    assert rows[0]["fa_count"] > rows[-1]["fa_count"]
    at = report["operating_points"]["miss_rate_at"]
    assert at[0]["max_fa_per_hour"] == 0 and at[0]["threshold"] is not None
    assert report["event_based"]["all files"]["overall"]["f_measure"]["recall"] == 1.0  # at the base 0.6
    text = capsys.readouterr()
    assert "Operating points" in text.out and "miss rate at <= 1000 FA/h" in text.out
    try:
        import matplotlib  # noqa: F401
        assert plot.read_bytes()[:4] == b"\x89PNG"
    except ImportError:
        assert "matplotlib is not installed" in text.err


@pytest.mark.parametrize("extra, message", [
    (["--thresholds", "0.5"], "--thresholds needs scores"),
    (["--positives", "none"], "say whether they are real or synthetic"),
    (["--collar", "0"], "t_collar_s=0.0 must be > 0"),
])
def test_errors_are_one_line(tmp_path, capsys, extra, message):
    audio = _write_audio(tmp_path)
    write_event_lists(tmp_path / "ref.tsv", REF)
    write_event_lists(tmp_path / "det.tsv", DET)
    args = audio + ["--ref", str(tmp_path / "ref.tsv"), "--events", str(tmp_path / "det.tsv")]
    if "--positives" not in extra:
        args += ["--positives", "real"]
    assert eval_main(args + extra) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


def test_one_file_reference_for_several_recordings(tmp_path, capsys):
    audio = _write_audio(tmp_path)
    write_event_list(tmp_path / "ref.tsv", REF["a.wav"])
    assert eval_main(audio + ["--ref", str(tmp_path / "ref.tsv"), "--events", str(tmp_path / "ref.tsv"),
                              "--positives", "real"]) == 1
    assert "one-file event list" in capsys.readouterr().err


def test_model_that_cannot_be_loaded(tmp_path, capsys):
    audio = _write_audio(tmp_path)
    write_event_lists(tmp_path / "ref.tsv", REF)
    assert eval_main(audio + ["--ref", str(tmp_path / "ref.tsv"), "--model", str(tmp_path / "absent.tflite"),
                              "--positives", "real"]) == 1
    assert capsys.readouterr().err.startswith("error: ")


MICRO = SHARED / "fixtures" / "micro_speech"


@pytest.mark.skipif(not (MICRO / "micro_speech_quantized.tflite").exists(), reason="micro_speech fixture absent")
def test_detector_as_scorer_on_real_keywords(tmp_path):
    """The detector's scores through the sweep path give the detector's own events; 'yes' is found where spoken."""
    from sed_runtime import load_model
    from sed_runtime.detector import Detector
    from sed_runtime.eval import runner
    from sed_runtime.eval.runner import DetectorScorer, EvalSettings, FileJob, build_report, run_evaluation
    from sed_runtime.eval.sweep import events_from_scores
    from sed_runtime.frontend.tflm import MICRO_SPEECH_SPEC

    parts = [sf.read(str(MICRO / f"{n}_1000ms.wav"), dtype="int16")[0] for n in ("silence", "yes", "noise", "yes")]
    clip = np.concatenate(parts)
    path = tmp_path / "clip.wav"
    sf.write(path, clip, 16000, subtype="PCM_16")

    def detector():
        model = load_model(MICRO / "micro_speech_quantized.tflite")
        model.metadata = {"frontend": MICRO_SPEECH_SPEC.to_dict(), "labels": ["silence", "unknown", "yes", "no"],
                          "window_frames": 49, "stride_frames": 5,
                          "decision": {"on_threshold": 0.6, "off_threshold": 0.4}}
        return Detector(model)

    runner._DETECTORS[(str(path) + ".model", None)] = detector()  # what the worker would load from the file
    try:
        scorer = DetectorScorer(str(path) + ".model")
        job = FileJob(str(path), (E(1.0, 2.0, "yes"), E(3.0, 4.0, "yes")), 4.0, "target", "real", "micro_speech")
        series = scorer(job)
        own = detector()
        expected = own.process(clip) + own.flush()
        assert events_from_scores(series, scorer.decision) == [E.from_event(e) for e in expected]
        labels = ("yes",)
        settings = EvalSettings(t_collar_s=1.0, percentage_of_length=1.0)
        report = build_report(run_evaluation([job], labels, settings, scorer=scorer, thresholds=[0.5, 0.9]),
                              labels, settings, [0.5, 0.9])
        assert report["event_based"]["all files"]["overall"]["f_measure"]["recall"] == 1.0
        assert "real positives: 2 events" in report["data"]["summary"]
    finally:
        runner._DETECTORS.clear()


def test_labels_option_evaluates_a_subset(tmp_path):
    audio = _write_audio(tmp_path)
    write_event_lists(tmp_path / "ref.tsv", REF)
    write_event_lists(tmp_path / "det.tsv", DET)
    out = tmp_path / "r.json"
    assert eval_main(audio + ["--ref", str(tmp_path / "ref.tsv"), "--events", str(tmp_path / "det.tsv"),
                              "--positives", "real", "--labels", "cry", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["labels"] == ["cry"]
    counts = sum_counts(count_events([e for e in REF[n] if e.label == "cry"], [e for e in DET[n] if e.label == "cry"],
                                     ["cry"]) for n in SECONDS)
    assert _strip(report["event_based"]["all files"]) == _nan_to_none(event_based_results(counts))
    # a.wav's cry reference keeps it a target file; tv.wav stays the only non-target file
    assert report["false_alarms"]["non_target"]["count"] == 1


def test_manifest_scores(tmp_path, capsys):
    items = []
    for name in ("a.wav", "tv.wav"):
        scores = np.zeros((100, 2))
        for e in REF[name]:
            scores[int(e.onset_s / 0.1):int(e.offset_s / 0.1), ["cry", "dog"].index(e.label)] = 0.9
        np.savez(tmp_path / f"{name}.npz", scores=scores, step_s=0.1, labels=np.array(["cry", "dog"]))
        write_event_list(tmp_path / f"{name}.tsv", REF[name])
        items.append({"audio": name, "labels": f"{name}.tsv", "scores": f"{name}.npz", "duration_s": 10.0,
                      "positives": "real" if REF[name] else "none"})
    (tmp_path / "m.json").write_text(json.dumps(items))
    assert eval_main(["--manifest", str(tmp_path / "m.json"), "--manifest-scores", "--thresholds", "0.5",
                      "--json", "-"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["event_based"]["all files"]["overall"]["f_measure"]["f_measure"] == 1.0
    assert report["operating_points"]["rows"][0]["fa_count"] == 0
    assert report["detections_from"] == "saved score series through the decision rules"
