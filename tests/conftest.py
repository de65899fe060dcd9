"""Test-wide settings: Numba bounds checking on, with its own compile cache.

Set before any test module imports Numba.  The separate cache keeps
bounds-checked machine code out of the cache the benchmarks use.
"""

import os
from pathlib import Path

if "NUMBA_BOUNDSCHECK" not in os.environ and os.environ.get("NUMBA_DISABLE_JIT") != "1":
    os.environ["NUMBA_BOUNDSCHECK"] = "1"
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parent.parent / ".numba_cache" / "boundscheck"))

SHARED = Path(__file__).resolve().parents[2] / "shared"
