"""The one place where Numba options are set.

Every kernel in :mod:`sed_runtime.kernels` is compiled through :func:`njit`
defined here, so caching, bounds checking and error model are uniform.

Caching: compiled kernels are cached on disk (``cache=True``).  Numba writes the
cache next to the source when that directory is writable, otherwise in the
user's cache directory.  When neither is writable (a read-only install under a
read-only home) and the user has not chosen ``NUMBA_CACHE_DIR``, the cache goes
to a per-user directory under the system temporary directory, so importing the
package never fails for want of a cache location.  That directory is used only
when it is a real directory owned by the user and writable by nobody else
(Numba's cache files are pickles: a directory another user can write to would
let them run code in this process); otherwise caching is turned off.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import numba
from numba.core import config as _numba_config

__all__ = ["njit", "cache_dir_in_use", "JIT_DISABLED"]

JIT_DISABLED = bool(_numba_config.DISABLE_JIT)

_OPTIONS = dict(cache=True, nogil=True, error_model="numpy", fastmath=False)


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK)


def _private_dir(path: Path) -> bool:
    """Create ``path`` (mode 0700) if needed; True if it is a directory only this user can write."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.lstat()
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode) or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return False
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return False
    return os.access(path, os.W_OK | os.X_OK)


def _user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "numba"


def _ensure_cache_location() -> str | None:
    """Pick a writable cache directory when Numba's own choices are all read-only."""
    if _numba_config.CACHE_DIR:
        return _numba_config.CACHE_DIR
    package_dir = Path(__file__).resolve().parent
    if os.access(package_dir, os.W_OK) or _writable(_user_cache_dir()):
        return None  # Numba's in-tree or user-wide locator will work.
    fallback = Path(tempfile.gettempdir()) / f"sed_runtime-numba-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    if _private_dir(fallback):
        _numba_config.CACHE_DIR = str(fallback)
        return str(fallback)
    _OPTIONS["cache"] = False  # nowhere to write: compile per process rather than fail
    return None


_CACHE_DIR = _ensure_cache_location()


def cache_dir_in_use() -> str | None:
    """The cache directory forced by this module or by NUMBA_CACHE_DIR, or None for Numba's default."""
    return _CACHE_DIR


def njit(*args, **kwargs):
    """``numba.njit`` with the project's options (cache on, numpy error model, no fastmath)."""
    if _CACHE_DIR and not _numba_config.CACHE_DIR:
        # Numba re-reads its config from NUMBA_* variables when one of them changes
        # (before a compilation), which resets CACHE_DIR; a kernel decorated after
        # that would find no cache locator and fail to import.
        _numba_config.CACHE_DIR = _CACHE_DIR
    options = {**_OPTIONS, **kwargs}
    if args and callable(args[0]) and len(args) == 1:
        return numba.njit(**options)(args[0])
    return numba.njit(*args, **options)
