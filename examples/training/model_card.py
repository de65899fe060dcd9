"""Print the measured sections of a model card (markdown) from a recipe's work directory and the packed model:
the data split with minutes, rates and licenses, the held-out results (false alarms per hour by category with
95 % exact Poisson intervals; recall split by real and synthetic positives), the validation sweep that chose the
threshold, ``sed-inspect`` figures and the float-to-int8 drift.  Every number comes from the run's JSON files.

    python examples/training/model_card.py --work ~/.cache/sed_runtime/baby_cry --model models/baby_cry.onnx
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

LICENSES = {
    "tuxpaint-stamps-default": "GPL-2",
    "klettres-data": "GPL-2+",
    "hedgewars-data": "GPL-2",
    "redeclipse-data": "CC-BY-SA-3.0 / CC-BY-3.0 / CC0",
    "gcompris-qt-data": "GPL-3+ / Free Art / CC0 / CC-BY-3.0",
    "scratch": "CC-BY-SA-3.0",
    "minetest-data": "CC-BY-SA-3.0 / CC-BY-3.0 / CC0",
    "sound-theme-freedesktop": "CC-BY-SA (see its copyright)",
    "ktuberling-data": "GPL-2+",
    "supertux-data": "GPL-2+ / GPL-3+ / CC-BY-SA",
    "sonic-pi-samples": "CC0 (mostly)",
    "bucklespring-data": "GPL-2+",
    "fillets-ng-data-cs": "GPL-2+",
    "codec2-examples": "LGPL-2.1",
    "warzone2100-music": "GPL-2+ / CC-BY-SA",
    "supertuxkart-data": "per file CC0 / CC-BY / CC-BY-SA / GPL",
    "openttd-opensfx": "CC-BY-3.0 / CC0 / CC-BY-SA-3.0",
    "lomiri-sounds": "see its copyright",
}


def _rates(rates) -> str:
    k = sorted({f"{r / 1000:g}k" for r in rates}, key=lambda s: float(s[:-1]))
    return ", ".join(k) if len(k) <= 3 else f"{k[0]}-{k[-1]}"


def data_table(data: dict) -> str:
    rows = ["| split | package | category | minutes | original rates (Hz) | license |", "|---|---|---|---:|---|---|"]
    names = {"train": "train", "validation": "validation (decision only)", "test": "test (held out)"}
    for split in ("train", "validation", "test"):
        for r in data.get(split, []):
            rows.append(f"| {names[split]} | {r['package']} | {r['category']} | {r['minutes']:.1f} | "
                        f"{_rates(r['rates_hz'])} | {LICENSES.get(r['package'], '?')} |")
    totals = {s: sum(r["minutes"] for r in data.get(s, [])) / 60 for s in ("train", "validation", "test")}
    rows.append("")
    rows.append("Hours: " + ", ".join(f"{s} {h:.2f}" for s, h in totals.items()) + ".")
    return "\n".join(rows)


def _ci(b: dict) -> str:
    return f"{b['per_hour']:.2f} ({b['ci_low']:.2f}-{b['ci_high']:.2f})"


def results(report: dict) -> str:
    fa = report["false_alarms"]["non_target"]
    rows = ["| negatives (real, held out) | sources | hours | false alarms | per hour (95 % CI) |",
            "|---|---|---:|---:|---|"]
    for cat, b in fa["by_category"].items():
        rows.append(f"| {cat} | {', '.join(b['sources'])} | {b['hours']:.2f} | {b['count']} | {_ci(b)} |")
    rows.append(f"| **all non-target** | | **{fa['hours']:.2f}** | **{fa['count']}** | **{_ci(fa)}** |")
    rows += ["", "| positives (held out) | files | events | detected | recall (event-based, onset collar) |",
             "|---|---:|---:|---:|---:|"]
    blocks = {k.replace(" positives only", ""): b for k, b in report["event_based"].items() if k != "all files"}
    if not blocks:  # one kind of positives: the whole report is about it (its false alarms are above)
        blocks = {", ".join(sorted(report["data"]["positives"])): report["event_based"]["all files"]}
    for kind, block in blocks.items():
        c = next(iter(block["class_wise"].values()))
        n_ref, recall = int(c["count"]["Nref"]), c["f_measure"]["recall"]
        files = report["data"]["positives"].get(kind, {}).get("files", block["files"])
        rows.append(f"| {kind} | {files} | {n_ref} | {round(recall * n_ref)} | {recall:.3f} |")
    return "\n".join(rows)


def sweep(report: dict) -> str:
    rows = ["| on threshold | false alarms | FA/h | recall (synthetic) |", "|---:|---:|---:|---:|"]
    for r in report["operating_points"]["rows"]:
        rows.append(f"| {r['threshold']:g} | {r['fa_count']} | {r['fa_per_hour']:.2f} | "
                    f"{'n/a' if r['recall'] is None else format(r['recall'], '.3f')} |")
    return "\n".join(rows)


def inspect(model: Path) -> str:
    out = subprocess.run([sys.executable, "-c", "import sys; from sed_runtime.cli import inspect_main; "
                          "sys.exit(inspect_main())", str(model), "--json"], check=True, capture_output=True,
                         text=True).stdout
    i = json.loads(out)
    m0 = next(t for t in i["targets"] if t["target"] == "Cortex-M0+")
    st = i["frontend_state"]
    return (f"RAM {i['ram_bytes']:,} B (arena {i['arena_bytes']:,} B + frontend state {st['total']:,} B); flash "
            f"{i['flash_bytes']:,} B (weights {i['weight_bytes']:,} B + frontend tables {i['table_bytes']:,} B); "
            f"{i['macs']:,} MACs per inference ({i['macs_per_second'] / 1e6:.1f} M MACs per second of audio); "
            f"Cortex-M0+ (96 KB RAM, 128 KB flash): {'fits' if m0['fits'] else 'does NOT fit'}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--model", type=Path, required=True)
    args = ap.parse_args(argv)
    summary = json.loads((args.work / "summary.json").read_text())
    test = json.loads((args.work / "test_report.json").read_text())
    val = json.loads((args.work / "val_report.json").read_text())
    d = summary["pack"]["drift"][0]
    print("## Data\n")
    print(data_table(summary["data"]))
    print("\n## Results on held-out sources\n")
    print(results(test))
    print("\n## Threshold choice (validation packages)\n")
    print(sweep(val))
    print(f"\nShipped decision: `{json.dumps(summary['decision'])}`\n")
    print("## Size\n")
    print(inspect(args.model))
    print(f"\nint8 drift (`sed-pack`, {summary['pack']['windows']:,} calibration windows): max {d['max_abs']:.3f}, "
          f"mean {d['mean_abs']:.4f}; {d['flips']} windows cross the on threshold differently")
    t = summary["train"]
    print(f"\nTraining: {t['steps']:,} steps in {t['minutes']:.1f} min; mining {t.get('mining')}; "
          f"whole recipe {summary['minutes_total']} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
