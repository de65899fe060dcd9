"""Write golden_oracles.json: sed_eval's and psds_eval's results on the seeded cases of _eval_cases.

Run from the repository root in an environment with the oracles installed
(``pip install sed_eval==0.2.1 psds_eval==0.5.3``):

    python tests/eval/make_golden.py

The tests compare sed_runtime with these stored results always, and with the
oracles themselves on more seeds when they are installed.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _eval_cases import (  # noqa: E402
    case_digest, psds_case, psds_eval_results, sed_eval_case, sed_eval_results,
)

GOLDEN = Path(__file__).resolve().parent / "golden_oracles.json"
SED_EVAL_SEEDS = range(10)
PSDS_SEEDS = range(6)


def main() -> None:
    data = {
        "made_with": {name: version(name) for name in ("sed_eval", "psds_eval", "dcase_util", "pandas", "numpy")},
        "sed_eval": [{"seed": s, "digest": case_digest(sed_eval_case(s)), "results": sed_eval_results(sed_eval_case(s))}
                     for s in SED_EVAL_SEEDS],
        "psds_eval": [{"seed": s, "digest": case_digest(psds_case(s)), "results": psds_eval_results(psds_case(s))}
                      for s in PSDS_SEEDS],
    }
    GOLDEN.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN.name}: {len(data['sed_eval'])} sed_eval cases, {len(data['psds_eval'])} psds_eval cases")


if __name__ == "__main__":
    main()
