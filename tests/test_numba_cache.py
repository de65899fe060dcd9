"""Numba's compile cache when the install and the home directory are read-only.

End to end: the installed ``sed_runtime/`` is copied into a temporary sandbox
and made read-only (``chmod -R a-w``), ``HOME`` and ``XDG_CACHE_HOME`` point to
a read-only directory, ``NUMBA_CACHE_DIR`` is unset, the copy comes first on
``PYTHONPATH`` and ``TMPDIR`` is a fresh directory of the sandbox.  A
subprocess with that scrubbed environment imports
``sed_runtime.kernels.cmsis_fft`` and calls ``rfft_q15``: it must succeed with
``cache_dir_in_use()`` inside ``$TMPDIR``, leave cache files there and nowhere
else, and a second run must load the kernel from those files (Numba's
dispatcher counts cache hits; no timing).

Permissions do not stop root, so when the suite runs as root the subprocess
runs as ``nobody`` (``setpriv --reuid --regid --clear-groups``, which drops
every capability); the sandbox is made traversable for it and its ``$TMPDIR``
is owned by it.  Without ``setpriv`` (or when ``nobody`` cannot run this
interpreter) those tests are skipped.  The decision itself
(``_numba._ensure_cache_location``) is also tested in-process, by faking which
directories ``os.access`` reports writable, so it is covered whoever runs the
suite.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

import sed_runtime
from sed_runtime import _numba
from sed_runtime.kernels.cmsis_fft import rfft_q15

FRAME = ((np.arange(256) * 97) % 2000 - 1000).astype(np.int16)

PROBE = """
import json, sys
import numpy as np
from sed_runtime import _numba
from sed_runtime.kernels import cmsis_fft
out = cmsis_fft.rfft_q15(np.array(json.loads(sys.argv[1]), dtype=np.int16))
kernel = cmsis_fft.arm_rfft_q15
print(json.dumps({
    "module": cmsis_fft.__file__,
    "cache_dir": _numba.cache_dir_in_use(),
    "out": out.tolist(),
    "cache_hits": sum(kernel.stats.cache_hits.values()),
    "cache_misses": sum(kernel.stats.cache_misses.values()),
}))
"""

# Numba re-reads NUMBA_* variables before compiling when one has changed, which
# resets its CACHE_DIR; a kernel decorated afterwards must still find the cache.
PROBE_CONFIG_RELOAD = """
import os
from sed_runtime._numba import njit
from numba.core import config

@njit
def first(x):
    return x + 1

os.environ["NUMBA_WARNINGS"] = "0"
assert first(1) == 2
print("CACHE_DIR after reload:", repr(config.CACHE_DIR))

@njit
def second(x):
    return x + 2

assert second(1) == 3
print("ok")
"""


def _run_as() -> list[str] | None:
    """Command prefix that runs a subprocess without the power to ignore permissions; None if impossible."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        return None
    if setpriv is None:
        return None
    return [setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]


@pytest.fixture(scope="module")
def sandbox():
    """A read-only copy of the package, a read-only home and a private TMPDIR for the probe's user."""
    prefix = _run_as()
    if prefix is None:
        pytest.skip("running as root without setpriv/nobody: cannot make a directory read-only for the subprocess")
    uid, gid = (os.getuid(), os.getgid()) if not prefix else (pwd.getpwnam("nobody").pw_uid, pwd.getpwnam("nobody").pw_gid)
    root = Path(tempfile.mkdtemp(prefix="sed-numba-ro-"))
    try:
        root.chmod(0o755)  # traversable by the probe's user
        site = root / "site"
        shutil.copytree(Path(sed_runtime.__file__).parent, site / "sed_runtime",
                        ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc", "*.pyc"))
        (root / "probe.py").write_text(PROBE)
        (root / "probe_reload.py").write_text(PROBE_CONFIG_RELOAD)
        home = root / "home"
        home.mkdir()
        tmp = root / "tmp"
        tmp.mkdir(mode=0o700)
        if prefix:
            os.chown(tmp, uid, gid)
        for path in [site, *site.rglob("*"), home, root / "probe.py", root / "probe_reload.py"]:
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))  # chmod -R a-w

        env = {
            "PATH": os.defpath,
            "HOME": str(home),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "TMPDIR": str(tmp),
            "PYTHONPATH": str(site),
            "LANG": "C.UTF-8",
        }
        check = subprocess.run([*prefix, sys.executable, "-c", "import numba, numpy"],
                               env=env, capture_output=True, text=True, timeout=120)
        if check.returncode != 0:
            pytest.skip(f"the unprivileged user cannot run this interpreter: {check.stderr.strip()[-300:]}")
        yield {"root": root, "site": site, "home": home, "tmp": tmp, "env": env, "prefix": prefix, "uid": uid}
    finally:
        for path in [root, *root.rglob("*")]:
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | stat.S_IWUSR)
        shutil.rmtree(root)


def _probe(sandbox, script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*sandbox["prefix"], sys.executable, str(sandbox["root"] / script), *args],
                          env=sandbox["env"], capture_output=True, text=True, timeout=180)


def _cache_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in (".nbi", ".nbc"))


def test_read_only_install_caches_in_temp_fallback_and_reuses_it(sandbox):
    site, home, tmp = sandbox["site"], sandbox["home"], sandbox["tmp"]
    assert not os.access(site, os.W_OK) or sandbox["prefix"], "sandbox copy should be read-only"
    fallback = tmp / f"sed_runtime-numba-{sandbox['uid']}"
    expected = rfft_q15(FRAME).tolist()

    first = _probe(sandbox, "probe.py", json.dumps(FRAME.tolist()))
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert Path(result["module"]).is_relative_to(site), "the probe must import the read-only copy"
    assert result["cache_dir"] == str(fallback)
    assert result["out"] == expected
    assert result["cache_misses"] >= 1 and result["cache_hits"] == 0

    files = _cache_files(fallback)
    assert any(p.name.startswith("cmsis_fft.arm_rfft_q15") and p.suffix == ".nbi" for p in files), files
    assert any(p.suffix == ".nbc" for p in files), files
    assert stat.S_IMODE(fallback.stat().st_mode) == 0o700 and fallback.stat().st_uid == sandbox["uid"]
    assert _cache_files(site) == [] and list(home.iterdir()) == []

    second = _probe(sandbox, "probe.py", json.dumps(FRAME.tolist()))
    assert second.returncode == 0, second.stderr
    result = json.loads(second.stdout)
    assert result["cache_dir"] == str(fallback)
    assert result["out"] == expected
    assert result["cache_hits"] >= 1 and result["cache_misses"] == 0, "second run should load from the fallback cache"


def test_fallback_survives_numba_config_reload(sandbox):
    run = _probe(sandbox, "probe_reload.py")
    assert run.returncode == 0, run.stderr
    # The reload did happen (Numba forgot the directory), and the second kernel still found a cache.
    assert run.stdout.splitlines() == ["CACHE_DIR after reload: ''", "ok"]


# ---------------------------------------------------------------------------
# The decision, in-process (any user, root included)
# ---------------------------------------------------------------------------

@pytest.fixture
def decide(monkeypatch, tmp_path):
    """Call _ensure_cache_location with chosen directories denied by os.access; Numba state is restored."""
    from numba.core import config

    package_dir = Path(_numba.__file__).resolve().parent
    user_cache = tmp_path / "home" / ".cache" / "numba"
    monkeypatch.setattr(config, "CACHE_DIR", "")
    monkeypatch.setitem(_numba._OPTIONS, "cache", True)
    monkeypatch.setattr(_numba, "_user_cache_dir", lambda: user_cache)
    monkeypatch.setattr(_numba.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    real_access = os.access

    def run(denied=(), numba_cache_dir=""):
        denied = {Path(p) for p in denied}
        config.CACHE_DIR = numba_cache_dir
        with monkeypatch.context() as m:
            m.setattr(_numba.os, "access", lambda p, mode: Path(p) not in denied and real_access(p, mode))
            chosen = _numba._ensure_cache_location()
        return chosen, config.CACHE_DIR, _numba._OPTIONS["cache"]

    return run, package_dir, user_cache, tmp_path / "tmp" / f"sed_runtime-numba-{os.getuid()}"


def test_decision_respects_numba_cache_dir(decide):
    run, package_dir, user_cache, _ = decide
    assert run(denied=[package_dir, user_cache], numba_cache_dir="/chosen") == ("/chosen", "/chosen", True)


def test_decision_leaves_numba_alone_when_package_or_user_cache_is_writable(decide):
    run, package_dir, user_cache, fallback = decide
    assert run() == (None, "", True)
    assert run(denied=[package_dir]) == (None, "", True)
    assert not fallback.exists()


def test_decision_falls_back_to_private_temp_dir(decide):
    run, package_dir, user_cache, fallback = decide
    assert run(denied=[package_dir, user_cache]) == (str(fallback), str(fallback), True)
    assert fallback.is_dir() and stat.S_IMODE(fallback.stat().st_mode) == 0o700


def test_decision_refuses_a_temp_dir_others_can_write(decide):
    """Cache files are pickles: a fallback another user can write to would let them run code here."""
    run, package_dir, user_cache, fallback = decide
    fallback.mkdir(mode=0o700)
    fallback.chmod(0o777)
    assert run(denied=[package_dir, user_cache]) == (None, "", False)


def test_decision_refuses_a_symlinked_temp_dir(decide, tmp_path):
    run, package_dir, user_cache, fallback = decide
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    fallback.symlink_to(target)
    assert run(denied=[package_dir, user_cache]) == (None, "", False)


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a directory owned by another user needs root")
def test_decision_refuses_a_temp_dir_owned_by_another_user(decide):
    run, package_dir, user_cache, fallback = decide
    fallback.mkdir(mode=0o700)
    os.chown(fallback, 65534, 65534)
    assert run(denied=[package_dir, user_cache]) == (None, "", False)


def test_decision_turns_caching_off_when_nothing_is_writable(decide):
    run, package_dir, user_cache, fallback = decide
    assert run(denied=[package_dir, user_cache, fallback]) == (None, "", False)
