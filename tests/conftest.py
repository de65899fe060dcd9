"""Test-wide settings: Numba bounds checking on, with its own compile cache.

Set before any test module imports Numba.  The separate cache keeps
bounds-checked machine code out of the cache the benchmarks use.
"""

import importlib
import os
from pathlib import Path

import pytest

if "NUMBA_BOUNDSCHECK" not in os.environ and os.environ.get("NUMBA_DISABLE_JIT") != "1":
    os.environ["NUMBA_BOUNDSCHECK"] = "1"
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parent.parent / ".numba_cache" / "boundscheck"))

SHARED = Path(__file__).resolve().parents[2] / "shared"


def pytest_collection_modifyitems(config, items):
    """Tests marked ``slow`` run only when SED_SLOW=1 (as .ci/run sets it); otherwise they are skipped."""
    if os.environ.get("SED_SLOW") == "1":
        return
    import pytest

    skip = pytest.mark.skip(reason="slow tier: set SED_SLOW=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def oracle(name: str):
    """Import a reference package the tests compare against (sed_eval, psds_eval): skipped when it is missing,
    except with SED_REQUIRE_ORACLES=1 (CI), where a missing oracle fails instead of passing unnoticed."""
    if os.environ.get("SED_REQUIRE_ORACLES") == "1":
        return importlib.import_module(name)
    return pytest.importorskip(name)
