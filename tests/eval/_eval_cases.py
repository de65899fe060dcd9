"""Seeded random evaluation cases and the oracle calls (sed_eval, psds_eval) that score them.

Cases come from Python's ``random.Random(seed)`` (its stream is stable across
Python versions), so the stored golden results (``golden_oracles.json``, made
by ``make_golden.py``) and a live oracle run score the same inputs.

A case has labels and files; each file has a duration, reference events and
estimated events ``[onset, offset, label]``.  sed_eval cases stress what
decides matching: many classes, same-class overlaps, estimates exactly one
collar away (in decimal, so float rounding decides as it does in sed_eval),
offsets near the length-relative tolerance, zero-length events, and files
with no reference or no estimate.  psds_eval cases keep same-class events
apart (psds_eval rejects overlaps) and give every class a reference event.
"""

from __future__ import annotations

import hashlib
import json
import math
import random

from sed_runtime.eval.labels import LabeledEvent

# (name, kwargs for EventBasedMetrics) -- sed_eval needs floats for t_collar / percentage_of_length
EVENT_CONFIGS = [
    ("optimal", dict(t_collar=0.2, percentage_of_length=0.5, evaluate_onset=True, evaluate_offset=True,
                     event_matching_type="optimal")),
    ("onset_only", dict(t_collar=0.2, percentage_of_length=0.5, evaluate_onset=True, evaluate_offset=False,
                        event_matching_type="optimal")),
    ("offset_only", dict(t_collar=0.25, percentage_of_length=0.3, evaluate_onset=False, evaluate_offset=True,
                         event_matching_type="optimal")),
    ("greedy", dict(t_collar=0.2, percentage_of_length=0.5, evaluate_onset=True, evaluate_offset=True,
                    event_matching_type="greedy")),
    ("wide", dict(t_collar=1.0, percentage_of_length=1.0, evaluate_onset=True, evaluate_offset=True,
                  event_matching_type="optimal")),
]
# (name, time_resolution, pass the file duration as evaluated length)
SEGMENT_CONFIGS = [("1s", 1.0, False), ("250ms_length", 0.25, True), ("2s_length", 2.0, True)]


def _event(on, off, label):
    return [round(on, 3), round(max(on, off), 3), label]


def sed_eval_case(seed: int) -> dict:
    rng = random.Random(seed)
    labels = [f"class_{i}" for i in range(rng.randint(1, 8))]
    files = []
    for f in range(rng.randint(1, 4)):
        duration = round(rng.uniform(5.0, 30.0), 2)
        kind = rng.random()
        reference = []
        if kind > 0.15:
            for _ in range(rng.randint(1, 14)):
                on = round(rng.uniform(0, duration - 0.1), rng.choice([1, 2, 3]))
                length = rng.choice([0.0, round(rng.uniform(0.05, 0.6), 2), round(rng.uniform(0.6, 5.0), 1)])
                reference.append(_event(on, min(duration, on + length), rng.choice(labels)))
        estimated = []
        if kind < 0.9:
            for ref in reference:  # perturbed copies: collars hit exactly, just inside, just outside
                if rng.random() < 0.2:
                    continue
                label = ref[2] if rng.random() < 0.75 else rng.choice(labels)
                d_on = rng.choice([0.0, 0.1, 0.2, -0.2, 0.25, -0.05, 0.19, 0.21, 1.0])
                d_off = rng.choice([0.0, 0.2, -0.2, 0.3, 0.5, -0.5, 1.5, 0.05])
                on = max(0.0, round(ref[0] + d_on, 3))
                estimated.append(_event(on, round(ref[1] + d_off, 3), label))
                if rng.random() < 0.15:  # a duplicate detection of the same event
                    estimated.append(_event(on, round(ref[1] + rng.choice([0.0, 0.1]), 3), label))
            for _ in range(rng.randint(0, 5)):  # insertions
                on = round(rng.uniform(0, duration - 0.1), 2)
                estimated.append(_event(on, min(duration, round(on + rng.uniform(0.0, 3.0), 2)), rng.choice(labels)))
            rng.shuffle(estimated)
        files.append({"name": f"file_{f}.wav", "duration": duration, "reference": reference, "estimated": estimated})
    return {"seed": seed, "labels": labels, "files": files}


def _apart(rng, labels, duration, per_class):
    events = []
    for label in labels:
        t = round(rng.uniform(0.0, 2.0), 2)
        for _ in range(rng.randint(0, per_class)):
            length = round(rng.uniform(0.1, 3.0), 2)
            if t + length > duration:
                break
            events.append(_event(t, t + length, label))
            t = round(t + length + rng.uniform(0.0, 3.0), 2)
    rng.shuffle(events)
    return events


def psds_case(seed: int) -> dict:
    rng = random.Random(10_000 + seed)
    labels = [f"c{i}" for i in range(rng.randint(1, 5))]
    files = []
    for f in range(rng.randint(1, 5)):
        duration = round(rng.uniform(8.0, 40.0), 2)
        reference = _apart(rng, labels, duration, 4) if rng.random() < 0.7 else []
        estimated = _apart(rng, labels, duration + 2.0, 4)  # some detections run past the end of the file
        files.append({"name": f"f{f}.wav", "duration": duration, "reference": reference, "estimated": estimated})
    # every class has a reference event (psds_eval divides by each class's reference duration)
    files.append({"name": "all_classes.wav", "duration": 60.0,
                  "reference": [_event(3.0 * i, 3.0 * i + 1.5, label) for i, label in enumerate(labels)],
                  "estimated": []})
    return {"seed": seed, "labels": labels, "files": files,
            "dtc": rng.choice([0.1, 0.3, 0.5, 0.7]), "gtc": rng.choice([0.1, 0.3, 0.5, 0.7])}


def case_digest(case: dict) -> str:
    """sha256 of a case's canonical JSON: stored with the golden results to prove the inputs are unchanged."""
    return hashlib.sha256(json.dumps(case, sort_keys=True).encode()).hexdigest()


def events(rows) -> list[LabeledEvent]:
    return [LabeledEvent(float(on), float(off), label) for on, off, label in rows]


# ---------------------------------------------------------------------------
# oracles (need sed_eval / psds_eval)
# ---------------------------------------------------------------------------

def _container(name, rows):
    import dcase_util

    return dcase_util.containers.MetaDataContainer(
        [{"filename": name, "event_label": label, "onset": on, "offset": off} for on, off, label in rows])


def sed_eval_results(case: dict) -> dict:
    """sed_eval's results() of the case under every EVENT_CONFIGS and SEGMENT_CONFIGS entry."""
    import warnings

    import sed_eval

    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, kwargs in EVENT_CONFIGS:
            metric = sed_eval.sound_event.EventBasedMetrics(event_label_list=list(case["labels"]), **kwargs)
            for f in case["files"]:
                metric.evaluate(_container(f["name"], f["reference"]), _container(f["name"], f["estimated"]))
            out[f"event_{name}"] = metric.results()
        for name, resolution, with_length in SEGMENT_CONFIGS:
            metric = sed_eval.sound_event.SegmentBasedMetrics(event_label_list=list(case["labels"]),
                                                              time_resolution=resolution)
            for f in case["files"]:
                metric.evaluate(_container(f["name"], f["reference"]), _container(f["name"], f["estimated"]),
                                evaluated_length_seconds=f["duration"] if with_length else None)
            out[f"segment_{name}"] = metric.results()
    return out


def psds_eval_results(case: dict) -> dict:
    """psds_eval's per-class tpr and fpr (per hour) of one operating point, and its per-class F-scores."""
    import warnings

    import pandas as pd
    from psds_eval import PSDSEval

    cols = ["filename", "onset", "offset", "event_label"]

    def table(key):
        return pd.DataFrame([{"filename": f["name"], "onset": on, "offset": off, "event_label": label}
                             for f in case["files"] for on, off, label in f[key]], columns=cols)

    meta = pd.DataFrame([{"filename": f["name"], "duration": f["duration"]} for f in case["files"]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        psds = PSDSEval(dtc_threshold=case["dtc"], gtc_threshold=case["gtc"], cttc_threshold=0.3,
                        ground_truth=table("reference"), metadata=meta, class_names=case["labels"])
        detections = table("estimated")
        psds.add_operating_point(detections)
        op = psds.operating_points.iloc[0]
        _, f_scores = psds.compute_macro_f_score(detections)
    names = sorted(case["labels"])
    return {"tpr": {c: float(op.tpr[i]) for i, c in enumerate(names)},
            "fpr": {c: float(op.fpr[i]) for i, c in enumerate(names)},
            "f": {c: float(v) for c, v in f_scores.items()}}


def assert_same(expected, actual, path: str = "") -> None:
    """Nested results equal key for key and bit for bit (NaN equals NaN)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected a mapping, got {actual!r}"
        assert set(expected) == set(actual), f"{path}: keys {sorted(expected)} != {sorted(actual)}"
        for key in expected:
            assert_same(expected[key], actual[key], f"{path}/{key}")
        return
    e, a = float(expected), float(actual)
    assert (math.isnan(e) and math.isnan(a)) or e == a, f"{path}: sed_runtime {a!r} != oracle {e!r}"
