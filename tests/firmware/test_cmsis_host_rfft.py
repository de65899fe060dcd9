"""``rfft_q15`` against CMSIS-DSP itself, compiled for this machine.

Tier ``cmsis_host``: ``cmsis_host.py`` builds CMSIS-DSP 1.10.3 twice with gcc --
the generic C path (``target="generic"``, Cortex-M0/M3 firmware, the PyPI
wheel) and the ``ARM_MATH_DSP`` path with the DSP intrinsics emulated in C by
CMSIS's ``none.h`` (``target="dsp"``, Cortex-M4/M7 firmware).  Every FFT length
and both targets are compared bit for bit on seeded frames of four kinds.

The oracle itself is checked against the Cortex-M firmware golden vectors
(m3 -> plain, m4 -> dsp) when they are present, and against the ``cmsisdsp``
wheel when it is installed.

Needs gcc (or ``$CC``); without one the tier is skipped.  The CMSIS-DSP
sources come from ``$SED_CMSIS_DSP_SRC`` or are downloaded once into the user
cache.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import cmsis_host
from sed_runtime.kernels.cmsis_fft import rfft_q15

try:
    from _compare import assert_equal_ints
except ImportError:  # pragma: no cover - helper not available

    def assert_equal_ints(actual, expected, what):
        np.testing.assert_array_equal(actual, expected, err_msg=what)


pytestmark = pytest.mark.cmsis_host

LENGTHS = cmsis_host.RFFT_LENGTHS  # 32 .. 8192
TARGETS = {"generic": "plain", "dsp": "dsp"}
KINDS = ("random", "fullscale", "quiet", "tone")
FRAMES_PER_KIND = 50


def _golden_dir() -> Path:
    env = os.environ.get("SED_GOLDEN_DIR")
    if env:
        return Path(env) / "cmsis-dsp"
    # the shared data directory next to the project checkout
    return Path(__file__).resolve().parents[3] / "shared" / "golden" / "cmsis-dsp"


@pytest.fixture(scope="session")
def hosts():
    if cmsis_host.find_compiler() is None:
        pytest.skip("cmsis_host tier needs a C compiler: gcc (or $CC) not found on PATH")
    cmsis_host.build_all()
    return {target: cmsis_host.CmsisHost(flavor) for target, flavor in TARGETS.items()}


def make_frames(n: int, kind: str, count: int = FRAMES_PER_KIND) -> np.ndarray:
    """Seeded int16 frames [count, n] of one kind."""
    rng = np.random.default_rng([n, KINDS.index(kind), 20261127])
    frames = np.empty((count, n), dtype=np.int16)
    t = np.arange(n)
    for i in range(count):
        if kind == "random":
            x = rng.integers(-32768, 32768, n)
        elif kind == "fullscale":
            v = i % 7
            if v == 0:
                x = np.full(n, 32767)
            elif v == 1:
                x = np.full(n, -32768)
            elif v == 2:
                x = np.where(t % 2 == 0, 32767, -32768)
            elif v == 3:
                x = np.where(rng.random(n) < 0.5, 32767, -32768)
            elif v == 4:
                x = np.clip(np.round(rng.normal(0.0, 1.5 * 32768, n)), -32768, 32767)
            elif v == 5:
                period = int(rng.integers(2, n // 2 + 1))
                x = np.where((t + int(rng.integers(0, period))) % period < period // 2, 32767, -32768)
            else:
                f = rng.uniform(0.0, n / 2)
                x = np.clip(np.round(1.6 * 32767 * np.sin(2 * np.pi * f * t / n + rng.uniform(0, 2 * np.pi))),
                            -32768, 32767)
        elif kind == "quiet":
            v = i % 4
            if i == 0:
                x = np.zeros(n)
            elif v == 0:
                x = rng.integers(-2, 3, n)
            elif v == 1:
                x = np.round(rng.normal(0.0, 4.0, n))
            elif v == 2:
                x = np.zeros(n)
                hits = rng.integers(0, n, int(rng.integers(1, 5)))
                x[hits] = rng.choice([-3, -2, -1, 1, 2, 3], hits.size)
            else:
                x = np.round(rng.normal(0.0, 40.0, n))
        elif kind == "tone":
            amp = 32767 * 10 ** rng.uniform(-3.0, 0.0)
            f = float(rng.integers(1, n // 2)) if i % 2 == 0 else rng.uniform(0.0, n / 2)
            x = amp * np.cos(2 * np.pi * f * t / n + rng.uniform(0, 2 * np.pi))
            x = x + rng.normal(0.0, amp * rng.uniform(0.0, 0.01), n)
            x = np.clip(np.round(x), -32768, 32767)
        else:
            raise ValueError(kind)
        frames[i] = x
    return frames


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", LENGTHS, ids=[f"N{n}" for n in LENGTHS])
@pytest.mark.parametrize("target", tuple(TARGETS))
def test_rfft_q15_matches_host_cmsis(hosts, target, n, kind):
    host = hosts[target]
    for i, x in enumerate(make_frames(n, kind)):
        expected = host.rfft_q15(x)
        actual = rfft_q15(x.copy(), target=target)
        assert_equal_ints(actual, expected, f"rfft_q15 target={target} N={n} {kind} frame {i}")


# --------------------------------------------------------------------------- the oracle itself


@pytest.mark.parametrize("flavor", ("plain", "dsp"))
def test_host_library_reproduces_firmware_golden(hosts, flavor):
    golden = _golden_dir()
    prefix = "m3" if flavor == "plain" else "m4"
    files = sorted(golden.glob(f"{prefix}_*.npz"))
    if not files:
        pytest.skip(f"no firmware golden vectors in {golden} (set SED_GOLDEN_DIR)")
    results = cmsis_host.verify_golden_files(files, flavor)
    bad = [f"{name}: {ok}/{total}" for name, ok, total in results if ok != total]
    assert not bad, f"host {flavor} build differs from the {prefix} firmware: " + ", ".join(bad)


def test_plain_host_library_equals_cmsisdsp_wheel(hosts):
    wheel = pytest.importorskip("cmsisdsp")
    host = hosts["generic"]
    for n in LENGTHS:
        inst = wheel.arm_rfft_instance_q15()
        assert wheel.arm_rfft_init_q15(inst, n, 0, 1) == 0
        for kind in KINDS:
            for i, x in enumerate(make_frames(n, kind, 10)):
                assert_equal_ints(host.rfft_q15(x), wheel.arm_rfft_q15(inst, x.copy()),
                                  f"host plain vs wheel N={n} {kind} frame {i}")
