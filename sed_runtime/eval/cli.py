"""``sed-eval``: score detections against reference annotations (the command behind ``sed_runtime.cli.eval_main``).

Three ways to get detections, one per run:

* ``--events DET`` (or ``--manifest-events``): events already detected (a
  file of events, or a folder holding ``<audio stem>.tsv`` per recording);
* ``--scores DIR`` (or ``--manifest-scores``): score series already computed
  (``<audio stem>.npz`` per recording); the decision rules make the events,
  and ``--thresholds`` sweeps them;
* ``--model M``: run the detector (``sed_runtime.Detector``) on the audio.

Recordings come from a manifest (``--manifest``, see
:mod:`sed_runtime.eval.labels`) or from the command line (``AUDIO ... --ref
REF`` with ``--category``/``--positives``/``--source`` describing them all).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path

from sed_runtime.decision.config import DecisionConfig, load_decision_overrides
from sed_runtime.errors import ConfigError
from sed_runtime.eval.labels import (
    POSITIVES_KINDS, AnnotationError, ManifestItem, audio_duration_s, events_for, read_event_lists, read_manifest,
)
from sed_runtime.eval.runner import (
    FA_CRITERIA, DetectorScorer, EvalSettings, FileJob, Progress, SavedScores, build_report, run_evaluation,
)
from sed_runtime.eval.sweep import load_score_series, parse_thresholds

__all__ = ["main", "parser", "format_report"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sed-eval",
        description="Evaluate sound-event detections against reference annotations: event- and segment-based "
        "precision/recall/F1/error rate as sed_eval computes them, false alarms per hour on non-target audio with "
        "an exact Poisson interval (by category), and, from scores, a threshold sweep with a DET plot.",
    )
    p.add_argument("audio", nargs="*", help="recordings (or use --manifest)")
    p.add_argument("--manifest", metavar="FILE", help="JSON or CSV manifest: audio, labels, category, positives, "
                   "source, events, scores, duration_s per recording")
    p.add_argument("--ref", metavar="REF", help="reference events for the AUDIO: one event list (onset offset label; "
                   "or the DCASE filename onset offset label form), or a folder of <audio stem>.tsv")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--events", metavar="DET", help="detections already made: an event list (either form) or a folder "
                     "of <audio stem>.tsv")
    src.add_argument("--scores", metavar="DIR", help="saved score series: a folder of <audio stem>.npz (scores, "
                     "step_s, labels[, offset_s])")
    src.add_argument("--model", metavar="M", help="run this model with sed_runtime's detector")
    src.add_argument("--manifest-events", action="store_true", help="take detections from the manifest's 'events' "
                     "field")
    src.add_argument("--manifest-scores", action="store_true", help="take saved score series from the manifest's "
                     "'scores' field")
    p.add_argument("--category", default="unspecified", help="category of the AUDIO given on the command line "
                   "(e.g. speech, music, ambience)")
    p.add_argument("--positives", choices=POSITIVES_KINDS, help="kind of the target events in --ref: real or "
                   "synthetic (required when they hold any event)")
    p.add_argument("--source", default="unspecified", help="where the AUDIO comes from (reported with false alarms)")
    p.add_argument("--labels", help="comma-separated classes to evaluate (default: every class named by the "
                   "references and detections, or the model's classes its decision parameters do not ignore)")
    g = p.add_argument_group("matching (sed_eval's parameters)")
    g.add_argument("--collar", type=float, default=0.2, metavar="S", help="onset/offset collar t_collar in seconds "
                   "(default 0.2)")
    g.add_argument("--offset-fraction", type=float, default=0.5, metavar="F", help="percentage_of_length: offset "
                   "tolerance as a fraction of the reference length, if larger than the collar (default 0.5)")
    g.add_argument("--onset-only", action="store_true", help="do not evaluate offsets")
    g.add_argument("--offset-only", action="store_true", help="do not evaluate onsets")
    g.add_argument("--matching", choices=("optimal", "greedy"), default="optimal", help="event matching (default "
                   "optimal, sed_eval's default)")
    g.add_argument("--segment", type=float, default=1.0, metavar="S", help="segment length for segment-based "
                   "metrics (default 1.0 s)")
    g.add_argument("--dtc", type=float, default=0.5, help="intersection criteria (psds_eval): detection tolerance")
    g.add_argument("--gtc", type=float, default=0.5, help="intersection criteria (psds_eval): ground-truth coverage")
    g.add_argument("--fa-criterion", choices=FA_CRITERIA, default="collar", help="what makes a detection a false "
                   "alarm on target audio: no event-based match (collar, default) or a DTC failure (intersection)")
    g.add_argument("--confidence", type=float, default=0.95, help="confidence of false-alarm intervals (default 0.95)")
    s = p.add_argument_group("decision and sweep (with --scores or --model)")
    s.add_argument("--decision", metavar="FILE", help="decision parameter overrides (JSON/TOML, as sed-listen reads)")
    s.add_argument("--thresholds", metavar="LIST", help="sweep these on thresholds: 'a,b,c' or 'start:stop:step'")
    s.add_argument("--at-fa", type=float, action="append", default=None, metavar="RATE",
                   help="report the miss rate at this many false alarms per hour (repeatable; default 1)")
    s.add_argument("--plot", metavar="DET.png", help="write a DET-style plot of the sweep (needs matplotlib)")
    o = p.add_argument_group("output")
    o.add_argument("--json", metavar="FILE", help="write the full report as JSON ('-': standard output, no table)")
    o.add_argument("--workers", type=int, default=1, help="processes evaluating files in parallel (default 1)")
    o.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    o.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


# ---------------------------------------------------------------------------
# assembling the jobs
# ---------------------------------------------------------------------------

def _lists_from(path: str | None, what: str):
    """An event-list source: a file (either form) or a folder of <stem>.tsv.

    Returns ``lookup(audio, single_ok)`` giving the events of one recording
    (``[]`` when the source does not mention it).
    """
    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        def from_folder(audio: str, single_ok: bool = True):
            for suffix in (".tsv", ".txt"):
                candidate = p / (Path(audio).stem + suffix)
                if candidate.exists():
                    lists = read_event_lists(candidate)
                    return lists[None] if None in lists else events_for(lists, Path(audio).name)
            return []
        return from_folder
    if not p.exists():
        raise AnnotationError(f"{what} {path!r} does not exist")
    lists = read_event_lists(p)

    def from_file(audio: str, single_ok: bool = True):
        if None in lists:
            if not single_ok:
                raise AnnotationError(f"{what} {path!r} is a one-file event list (onset offset label) but it is "
                                      f"given for several recordings; use the 'filename onset offset label' form "
                                      f"or a folder of <audio stem>.tsv")
            return lists[None]
        return events_for(lists, audio)
    return from_file


def _items(args) -> list[ManifestItem]:
    if args.manifest and args.audio:
        raise ConfigError("give recordings either on the command line or in --manifest, not both")
    if args.manifest:
        return read_manifest(args.manifest)
    if not args.audio:
        raise ConfigError("no recordings: give AUDIO files or --manifest")
    return [ManifestItem(audio=a, labels=args.ref, category=args.category,
                         positives=args.positives or "none", source=args.source) for a in args.audio]


def _jobs(args, items: list[ManifestItem]) -> list[FileJob]:
    single = len(items) == 1
    ref_cache: dict[str, object] = {}
    events_lookup = _lists_from(args.events, "--events")
    jobs = []
    for item in items:
        reference = []
        if item.labels:
            lookup = ref_cache.get(item.labels) or _lists_from(item.labels, "reference")
            ref_cache[item.labels] = lookup
            reference = list(lookup(item.audio, single or bool(args.manifest)))
        if reference and item.positives == "none":
            raise AnnotationError(f"{item.audio!r} has {len(reference)} reference events; say whether they are real "
                                  f"or synthetic (--positives, or 'positives' in the manifest)")
        detections = None
        if args.events is not None:
            detections = list(events_lookup(item.audio, single))
        elif args.manifest_events:
            if item.events is None:
                raise AnnotationError(f"{item.audio!r}: the manifest gives no 'events' file")
            detections = list(_lists_from(item.events, "events")(item.audio, True))
        scores = None
        if args.scores is not None:
            scores = str(Path(args.scores) / (Path(item.audio).stem + ".npz"))
        elif args.manifest_scores:
            if item.scores is None:
                raise AnnotationError(f"{item.audio!r}: the manifest gives no 'scores' file")
            scores = item.scores
        duration = item.duration_s if item.duration_s is not None else audio_duration_s(item.audio)
        jobs.append(FileJob(name=item.audio, reference=tuple(reference), duration_s=duration,
                            category=item.category, positives=item.positives, source=item.source,
                            detections=None if detections is None else tuple(detections), scores=scores))
    return jobs


def _labels(args, jobs: list[FileJob], model_labels=None) -> tuple[str, ...]:
    if args.labels:
        return tuple(x.strip() for x in args.labels.split(",") if x.strip())
    if model_labels is not None:
        return tuple(model_labels)
    names = {e.label for j in jobs for e in j.reference}
    names |= {e.label for j in jobs for e in (j.detections or ())}
    return tuple(sorted(names))


def _only(jobs: list[FileJob], labels: tuple[str, ...]) -> list[FileJob]:
    """Leave out events of classes outside the evaluation (a file whose references all go becomes non-target)."""
    keep = set(labels)
    return [replace(j, reference=tuple(e for e in j.reference if e.label in keep),
                    positives=j.positives if any(e.label in keep for e in j.reference) else "none",
                    detections=None if j.detections is None else tuple(e for e in j.detections if e.label in keep))
            for j in jobs]


# ---------------------------------------------------------------------------
# human-readable report
# ---------------------------------------------------------------------------

def _pct(x) -> str:
    return "   n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:6.2f}"


def _num(x, width=8, digits=3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a".rjust(width)
    return f"{x:{width}.{digits}f}"


def format_report(report: dict) -> str:
    lines = [f"sed-eval: {report['data']['files']} files, {report['data']['hours']:.3f} h; "
             f"labels {', '.join(report['labels'])}; detections from {report['detections_from']}",
             f"data: {report['data']['summary']}", ""]
    st = report["settings"]
    for name, block in report["event_based"].items():
        o = block["overall"]
        lines.append(f"Event-based ({name}; collar {st['t_collar_s']:g} s, offset {100 * st['percentage_of_length']:g}%"
                     f" of length, onset {'on' if st['evaluate_onset'] else 'off'}, offset "
                     f"{'on' if st['evaluate_offset'] else 'off'}, {st['matching']} matching)")
        lines.append(f"  data: {block['data']}")
        lines.append(f"  overall   F {_pct(o['f_measure']['f_measure'])}%  P {_pct(o['f_measure']['precision'])}%  "
                     f"R {_pct(o['f_measure']['recall'])}%  ER {_num(o['error_rate']['error_rate'], 6, 3)} "
                     f"(S {_num(o['error_rate']['substitution_rate'], 5, 3)} D "
                     f"{_num(o['error_rate']['deletion_rate'], 5, 3)} "
                     f"I {_num(o['error_rate']['insertion_rate'], 5, 3)})")
        a = block["class_wise_average"]
        if a["f_measure"]:
            lines.append(f"  class avg F {_pct(a['f_measure']['f_measure'])}%  P {_pct(a['f_measure']['precision'])}%"
                         f"  R {_pct(a['f_measure']['recall'])}%  ER {_num(a['error_rate']['error_rate'], 6, 3)}")
        lines.append(f"  {'class':<20} {'Nref':>5} {'Nsys':>5} {'F%':>6} {'P%':>6} {'R%':>6} {'ER':>6}")
        for label, c in block["class_wise"].items():
            lines.append(f"  {label:<20} {int(c['count']['Nref']):5d} {int(c['count']['Nsys']):5d} "
                         f"{_pct(c['f_measure']['f_measure'])} {_pct(c['f_measure']['precision'])} "
                         f"{_pct(c['f_measure']['recall'])} {_num(c['error_rate']['error_rate'], 6, 2)}")
        lines.append("")
    for name, block in report["segment_based"].items():
        o = block["overall"]
        lines.append(f"Segment-based ({name}; {st['time_resolution_s']:g} s segments): F "
                     f"{_pct(o['f_measure']['f_measure'])}%  P {_pct(o['f_measure']['precision'])}%  R "
                     f"{_pct(o['f_measure']['recall'])}%  ER {_num(o['error_rate']['error_rate'], 6, 3)}")
    lines.append("")
    fa = report["false_alarms"]
    lines.append(f"False alarms per hour ({fa['criterion']}; {100 * fa['confidence']:g}% exact Poisson interval)")
    if fa["non_target"]:
        nt = fa["non_target"]
        lines.append(f"  non-target audio: {nt['count']} in {nt['hours']:.3f} h = {_num(nt['per_hour'], 0, 2)}/h "
                     f"[{_num(nt['ci_low'], 0, 2)}, {_num(nt['ci_high'], 0, 2)}]")
        lines.append(f"    data: {nt['data']}")
        for cat, b in nt["by_category"].items():
            lines.append(f"    {cat:<18} {b['count']:5d} in {b['hours']:8.3f} h = {_num(b['per_hour'], 8, 2)}/h "
                         f"[{_num(b['ci_low'], 0, 2)}, {_num(b['ci_high'], 0, 2)}]  sources: {', '.join(b['sources'])}")
    else:
        lines.append("  non-target audio: none in this evaluation (every file has reference events)")
    al = fa["all_audio"]
    lines.append(f"  all audio: {al['count']} in {al['hours']:.3f} h = {_num(al['per_hour'], 0, 2)}/h "
                 f"[{_num(al['ci_low'], 0, 2)}, {_num(al['ci_high'], 0, 2)}]")
    if "operating_points" in report:
        op = report["operating_points"]
        rows = op["rows"]
        lines.append("")
        lines.append(f"Operating points (false alarms on {rows[0]['fa_basis'] if rows else '-'}; recall/precision "
                     f"event-based on all files)")
        lines.append(f"  data: {op['data']}")
        lines.append(f"  {'threshold':>9} {'dets':>6} {'FA':>5} {'FA/h':>9} {'FA/h CI':>19} {'recall%':>8} "
                     f"{'miss%':>7} {'prec%':>7} {'F%':>7}")
        for r in rows:
            lines.append(f"  {r['threshold']:9.3f} {r['detections']:6d} {r['fa_count']:5d} "
                         f"{_num(r['fa_per_hour'], 9, 2)}"
                         f" [{_num(r['fa_ci_low'], 8, 2)},"
                         f"{_num(r['fa_ci_high'], 8, 2)}] {_pct(r['recall']):>8} {_pct(r['miss_rate']):>7} "
                         f"{_pct(r['precision']):>7} {_pct(r['f_measure']):>7}")
        for m in op["miss_rate_at"]:
            if m.get("threshold") is None:
                lines.append(f"  miss rate at <= {m['max_fa_per_hour']:g} FA/h: no swept threshold is that quiet")
            else:
                lines.append(f"  miss rate at <= {m['max_fa_per_hour']:g} FA/h: {_pct(m['miss_rate']).strip()}% "
                             f"(threshold {m['threshold']:g}, {m['fa_per_hour']:.2f} FA/h)")
    return "\n".join(lines) + "\n"


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None  # JSON has no NaN; null means "undefined" (e.g. precision with no detection)
    if hasattr(x, "item"):  # numpy scalars
        return _jsonable(x.item())
    return x


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.onset_only and args.offset_only:
        raise ConfigError("--onset-only and --offset-only exclude each other")
    if (args.manifest_events or args.manifest_scores) and not args.manifest:
        raise ConfigError("--manifest-events and --manifest-scores need --manifest")
    if args.audio and not args.ref:
        raise ConfigError("AUDIO on the command line needs --ref (reference events; an empty file for non-target "
                          "audio)")
    settings = EvalSettings(t_collar_s=args.collar, percentage_of_length=args.offset_fraction,
                            evaluate_onset=not args.offset_only, evaluate_offset=not args.onset_only,
                            matching=args.matching, time_resolution_s=args.segment, dtc=args.dtc, gtc=args.gtc,
                            confidence=args.confidence, fa_criterion=args.fa_criterion)
    thresholds = parse_thresholds(args.thresholds) if args.thresholds else []
    if thresholds and (args.events is not None or args.manifest_events):
        raise ConfigError("--thresholds needs scores (--scores or --model); event files were made at one threshold")
    overrides = load_decision_overrides(args.decision) if args.decision else {}

    items = _items(args)
    jobs = _jobs(args, items)

    scorer = None
    model_labels = None
    decision = None
    if args.model:
        scorer = DetectorScorer(args.model, decision=overrides or None)
        model_labels = tuple(label for label in scorer.labels if label not in scorer.decision.ignore)
        source = f"model {Path(args.model).name} run by sed_runtime.Detector"
    elif args.scores is not None or args.manifest_scores:
        first = load_score_series(jobs[0].scores)
        model_labels = first.labels
        decision = DecisionConfig.from_dict(overrides) if overrides else DecisionConfig()
        scorer = SavedScores(first.labels, decision)
        source = "saved score series through the decision rules"
    else:
        source = "event files"
    labels = _labels(args, jobs, model_labels)
    jobs = _only(jobs, labels)

    progress = Progress(len(jobs), "files", enabled=args.progress)
    results = run_evaluation(jobs, labels, settings, scorer=scorer, decision=decision, thresholds=thresholds,
                             workers=args.workers, progress=progress)
    at_fa = args.at_fa if args.at_fa else ([1.0] if thresholds else [])
    report = build_report(results, labels, settings, thresholds, at_fa, detections_from=source)

    if args.plot:
        if not thresholds:
            print("note: --plot skipped: a DET plot needs --thresholds", file=sys.stderr)
        else:
            from sed_runtime.eval.plot import INSTALL_HINT, matplotlib_available, plot_det

            if matplotlib_available():
                plot_det(report["operating_points"]["rows"], args.plot, title="sed-eval DET",
                         data_note=report["data"]["summary"])
                print(f"wrote DET plot to {args.plot}", file=sys.stderr)
            else:
                print(f"note: --plot skipped: matplotlib is not installed; {INSTALL_HINT}", file=sys.stderr)
    text = json.dumps(_jsonable(report), indent=1)
    if args.json == "-":
        print(text)
        return 0
    if args.json:
        try:
            Path(args.json).write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write the report to {args.json!r}: {exc.strerror or exc}") from exc
    sys.stdout.write(format_report(report))
    return 0
