"""False alarms per hour and their exact Poisson interval, against hand computation.

Success: Garwood bounds equal the published table values and solve the
Poisson tail equations they are defined by; the report's counts, hours and
rates per category and per class equal counts made by hand from the event
lists, and every block says which data it rests on.
"""

from __future__ import annotations

import math

import pytest
from scipy.stats import poisson

from sed_runtime.errors import ConfigError
from sed_runtime.eval.labels import LabeledEvent as E
from sed_runtime.eval.metrics import poisson_rate_interval
from sed_runtime.eval.runner import EvalSettings, FileJob, build_report, run_evaluation

# (count, lower, upper) of the 95% exact interval of a Poisson mean (Garwood 1936; standard tables, 3-4 digits)
TABLE = [(0, 0.0, 3.689), (1, 0.0253, 5.572), (2, 0.2422, 7.225), (5, 1.6235, 11.668), (10, 4.7954, 18.390)]


@pytest.mark.parametrize("count, low, high", TABLE)
def test_garwood_table(count, low, high):
    r = poisson_rate_interval(count, 1.0)
    assert r.per_hour == count
    assert r.low == pytest.approx(low, abs=6e-4)
    assert r.high == pytest.approx(high, abs=6e-4)


@pytest.mark.parametrize("count", [0, 1, 3, 17, 250])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_garwood_solves_the_poisson_tails(count, confidence):
    """Upper bound U: P(X <= k | U) = a/2; lower bound L: P(X >= k | L) = a/2 (a = 1 - confidence)."""
    hours = 2.5
    r = poisson_rate_interval(count, hours, confidence)
    alpha = 1 - confidence
    assert poisson.cdf(count, r.high * hours) == pytest.approx(alpha / 2, rel=1e-9)
    if count:
        assert poisson.sf(count - 1, r.low * hours) == pytest.approx(alpha / 2, rel=1e-9)
    else:
        assert r.low == 0.0
    assert r.per_hour == count / hours


def test_zero_hours_and_bad_input():
    assert math.isnan(poisson_rate_interval(3, 0.0).per_hour)
    with pytest.raises(ConfigError, match="count=-1"):
        poisson_rate_interval(-1, 1.0)
    with pytest.raises(ConfigError, match="confidence=1.5"):
        poisson_rate_interval(1, 1.0, 1.5)


def _jobs():
    return [
        # target file (real positives): one match, one detection far from any reference -> 1 false alarm
        FileJob("cry.wav", (E(1.0, 2.0, "cry"),), 1800.0, "target", "real", "scratch",
                detections=(E(1.05, 2.1, "cry"), E(10.0, 11.0, "cry"))),
        # non-target: speech 1 h with 3 detections, music 0.5 h with 1 detection, ambience 0.5 h with none
        FileJob("tv.wav", (), 3600.0, "speech", "none", "fillets-ng-data-cs",
                detections=(E(5, 6, "cry"), E(50, 51, "alarm"), E(70, 71, "cry"))),
        FileJob("song.wav", (), 1800.0, "music", "none", "warzone2100-music", detections=(E(3, 4, "alarm"),)),
        FileJob("rain.wav", (), 1800.0, "ambience", "none", "redeclipse-data", detections=()),
    ]


def test_report_false_alarms_by_category_and_class():
    labels = ("alarm", "cry")
    settings = EvalSettings()
    report = build_report(run_evaluation(_jobs(), labels, settings), labels, settings)
    fa = report["false_alarms"]
    nt = fa["non_target"]
    assert (nt["count"], nt["hours"]) == (4, 2.0)
    assert nt["per_hour"] == 2.0
    expected = poisson_rate_interval(4, 2.0)
    assert (nt["ci_low"], nt["ci_high"]) == (expected.low, expected.high)
    assert nt["by_class"]["cry"]["count"] == 2 and nt["by_class"]["alarm"]["count"] == 2
    cats = nt["by_category"]
    assert {c: (b["count"], b["hours"]) for c, b in cats.items()} == {
        "ambience": (0, 0.5), "music": (1, 0.5), "speech": (3, 1.0)}
    assert cats["ambience"]["ci_high"] == pytest.approx(-math.log(0.025) / 0.5)  # k = 0: -ln(a/2) per 0.5 h
    assert cats["speech"]["sources"] == ["fillets-ng-data-cs"]
    assert "fillets-ng-data-cs" in cats["speech"]["data"] and "speech" in nt["data"]
    assert "real positives" not in nt["data"]  # non-target figures rest on negatives only
    al = fa["all_audio"]
    assert (al["count"], al["hours"]) == (5, 2.5)  # the target file adds its unmatched detection and 0.5 h
    assert "real positives: 1 events in 1 files" in al["data"]
    assert "collar" in fa["criterion"]


def test_intersection_criterion_counts_dtc_failures():
    jobs = [FileJob("cry.wav", (E(1.0, 2.0, "cry"),), 3600.0, "target", "synthetic",
                    detections=(E(1.5, 3.5, "cry"), E(1.2, 1.8, "cry")))]
    # collar: (1.2, 1.8) matches (onset within 0.2 s, offset within 0.5 s); (1.5, 3.5) does not -> 1 false alarm.
    # intersection: (1.5, 3.5) is 25% inside the reference (DTC 0.5 fails) -> 1; (1.2, 1.8) passes.
    for criterion in ("collar", "intersection"):
        settings = EvalSettings(fa_criterion=criterion)
        report = build_report(run_evaluation(jobs, ("cry",), settings), ("cry",), settings)
        assert report["false_alarms"]["all_audio"]["count"] == 1
        assert report["false_alarms"]["non_target"] is None
    settings = EvalSettings(fa_criterion="intersection", dtc=0.2)
    report = build_report(run_evaluation(jobs, ("cry",), settings), ("cry",), settings)
    assert report["false_alarms"]["all_audio"]["count"] == 0


def test_positives_kinds_are_reported_separately():
    jobs = _jobs() + [FileJob("synth.wav", (E(0.5, 1.0, "alarm"),), 60.0, "target", "synthetic", "espeak-ng",
                              detections=(E(0.5, 1.0, "alarm"),))]
    labels = ("alarm", "cry")
    report = build_report(run_evaluation(jobs, labels), labels, EvalSettings())
    assert set(report["event_based"]) == {"all files", "real positives only", "synthetic positives only"}
    real = report["event_based"]["real positives only"]
    assert real["overall"]["f_measure"]["recall"] == 1.0 and real["files"] == 1
    assert "synthetic" not in real["data"] and "real positives" in real["data"]
    assert report["event_based"]["synthetic positives only"]["overall"]["f_measure"]["precision"] == 1.0
