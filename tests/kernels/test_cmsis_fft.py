"""arm_rfft_q15 against the cmsisdsp wheel (plain C path) and Cortex-M3/M4 firmware vectors."""

from __future__ import annotations

import numpy as np
import pytest

from _compare import assert_equal_ints
from conftest import SHARED
from sed_runtime.errors import ConfigError
from sed_runtime.kernels.cmsis_fft import (
    RFFT_LENGTHS,
    bit_reversal_swaps,
    cfft_twiddles_q15,
    rfft_q15,
    rfft_q15_tables,
)

cmsisdsp = pytest.importorskip("cmsisdsp")
GOLDEN = SHARED / "golden" / "cmsis-dsp"


def _frames(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    t = np.arange(n)
    return {
        "zeros": np.zeros(n, np.int16),
        "full_scale_random": rng.integers(-32768, 32768, n).astype(np.int16),
        "all_min": np.full(n, -32768, np.int16),
        "all_max": np.full(n, 32767, np.int16),
        "alternating_clip": np.where(t % 2 == 0, 32767, -32768).astype(np.int16),
        "quiet_noise": rng.integers(-3, 4, n).astype(np.int16),
        "mid_noise": np.clip(rng.normal(0, 2000, n), -32768, 32767).astype(np.int16),
        "clipped_tone": np.clip(1.6 * 32767 * np.sin(2 * np.pi * 0.07 * t), -32768, 32767).astype(np.int16),
        "impulse": np.eye(1, n, n // 3, dtype=np.int16)[0],
    }


@pytest.mark.parametrize("n", RFFT_LENGTHS)
def test_rfft_generic_equals_cmsisdsp_wheel(n):
    rng = np.random.default_rng(n)
    inst = cmsisdsp.arm_rfft_instance_q15()
    assert cmsisdsp.arm_rfft_init_q15(inst, n, 0, 1) == 0
    for kind, x in _frames(n, rng).items():
        expected = cmsisdsp.arm_rfft_q15(inst, x.copy())
        assert_equal_ints(rfft_q15(x, "generic"), expected, f"rfft N={n} {kind}")


def _golden(pattern: str):
    files = sorted(GOLDEN.glob(pattern))
    if not files:
        pytest.fail(f"no firmware vectors match {pattern} in {GOLDEN}")
    return files


@pytest.mark.parametrize("core,target", [("m3", "generic"), ("m4", "dsp")])
def test_rfft_equals_cortex_m_firmware(core, target):
    for path in _golden(f"{core}_rfft_q15_N*.npz"):
        data = np.load(path)
        for k, (x, y) in enumerate(zip(data["input"], data["output"])):
            assert_equal_ints(rfft_q15(x, target), y, f"{path.name} frame {k} ({data['frame_desc'][k]})")


def test_targets_differ_on_m4_vectors():
    """The dsp path is not the generic path under another name: M4 frames differ from generic."""
    data = np.load(GOLDEN / "m4_rfft_q15_N512.npz")
    differing = sum(not np.array_equal(rfft_q15(x, "generic"), y) for x, y in zip(data["input"], data["output"]))
    assert differing >= 10


@pytest.mark.parametrize("cfft_len", [16, 32, 64, 128, 256, 512, 1024, 2048, 4096])
def test_cfft_twiddles_are_robust_to_libm(cfft_len):
    """floor() of the scaled cosines is stable: no value sits within 1e-6 LSB of an integer except exact points."""
    i = np.arange(3 * cfft_len // 4)
    scaled = np.concatenate([np.cos(2 * np.pi * i / cfft_len), np.sin(2 * np.pi * i / cfft_len)]) * 32768.0
    frac = np.abs(scaled - np.rint(scaled))
    near = (frac < 1e-6) & (np.abs(scaled) > 1e-3) & (np.abs(np.abs(scaled) - 32768.0) > 1e-3)
    assert not near.any()
    table = cfft_twiddles_q15(cfft_len)
    assert table[0] == 32767 and table[1] == 0


@pytest.mark.parametrize("cfft_len", [16, 32, 1024])
def test_bit_reversal_is_an_involution(cfft_len):
    perm = np.arange(cfft_len)
    for a, b in bit_reversal_swaps(cfft_len):
        perm[a], perm[b] = perm[b], perm[a]
    assert np.array_equal(perm[perm], np.arange(cfft_len))
    assert perm[1] == cfft_len // 2


@pytest.mark.parametrize("bad", [16, 100, 16384])
def test_unsupported_length_is_refused(bad):
    with pytest.raises(ConfigError, match=f"fft_len={bad}"):
        rfft_q15_tables(bad)


def test_rfft_leaves_input_untouched_and_rejects_bad_dtype():
    x = np.arange(64, dtype=np.int16)
    before = x.copy()
    rfft_q15(x)
    assert np.array_equal(x, before)
    with pytest.raises(ConfigError, match="int16"):
        rfft_q15(x.astype(np.float32))
    with pytest.raises(ConfigError, match="target='m4'"):
        rfft_q15(x, "m4")
