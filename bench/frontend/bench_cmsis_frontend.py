"""CMSIS-DSP frontend speed against the cmsisdsp wheel's arm_mfcc_q15, called per frame.

Gate (issue "Foundation and the CMSIS-DSP fixed-point frontend"): our log-mel
and our MFCC take at most 0.35x the time per frame of ``cmsisdsp.arm_mfcc_q15``
on the same audio (512-point FFT, 40 mels, 16 kHz), with bit-exact outputs.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SHARED, interleaved_ratio, report_gate
from sed_runtime.frontend.cmsis import CmsisFrontend
from sed_runtime.frontend.spec import FrontendSpec
from sed_runtime.io.wavfile import read_pcm16

cmsisdsp = pytest.importorskip("cmsisdsp")

GATE = 0.35
FFT_LEN = 512
N_MELS = 40
N_DCT = 13


@pytest.fixture(scope="module")
def audio() -> np.ndarray:
    samples, _ = read_pcm16(SHARED / "fixtures" / "real" / "dialogue_cs_60s.wav", 16000)
    return samples[: FFT_LEN * 600]  # 600 frames, 19.2 s of real speech


def _spec(n_dct: int) -> FrontendSpec:
    # hop = window: every sample belongs to one frame, as in the per-frame peer loop
    return FrontendSpec(sample_rate_hz=16000, window_samples=FFT_LEN, hop_samples=FFT_LEN, fft_len=FFT_LEN,
                        n_mels=N_MELS, lower_hz=20.0, upper_hz=8000.0, n_dct=n_dct)


def _peer(frontend: CmsisFrontend):
    """cmsisdsp.arm_mfcc_q15 with the same tables; returns a per-frame function."""
    tables = frontend.tables
    inst = cmsisdsp.arm_mfcc_instance_q15()
    assert cmsisdsp.arm_mfcc_init_q15(inst, FFT_LEN, N_MELS, N_DCT, tables.dct_q15.ravel(), tables.filter_pos,
                                      tables.filter_len, tables.filter_coefs_q15, tables.window_q15) == 0
    tmp = np.zeros(2 * FFT_LEN + 2, np.int32)

    def mfcc(frame):
        status, out = cmsisdsp.arm_mfcc_q15(inst, frame, tmp)
        return out

    return mfcc


@pytest.fixture(scope="module")
def mfcc_frontend():
    return CmsisFrontend(_spec(N_DCT)).prepare()


@pytest.mark.parametrize("n_dct", [0, N_DCT], ids=["logmel", "mfcc"])
def test_gate_vs_cmsisdsp_per_frame(n_dct, audio, mfcc_frontend, benchmark):
    frontend = CmsisFrontend(_spec(n_dct)).prepare()
    frames = audio.reshape(-1, FFT_LEN)
    peer_mfcc = _peer(mfcc_frontend)

    def peer():
        for frame in frames:
            peer_mfcc(frame)

    # bit-exact on the benchmarked data (MFCC: against the peer itself)
    frontend.process(frames[:4].ravel())  # warm the JIT / cache
    frontend.reset()
    ours_out = frontend.process(audio).copy()
    if n_dct:
        expected = np.stack([peer_mfcc(f) for f in frames[:50]])
        assert np.array_equal(ours_out[:50], expected)

    def ours():
        frontend.reset()
        frontend.process(audio)

    ratio, t_ours, t_peer = interleaved_ratio(ours, peer, rounds=15)
    per_frame_ours = t_ours / frames.shape[0]
    per_frame_peer = t_peer / frames.shape[0]
    x_real_time = (audio.shape[0] / 16000) / t_ours
    benchmark.extra_info.update(
        ratio=round(ratio, 3), gate=GATE, us_per_frame_ours=round(per_frame_ours * 1e6, 2),
        us_per_frame_cmsisdsp=round(per_frame_peer * 1e6, 2), x_real_time=round(x_real_time, 1),
        hop_samples=FFT_LEN,
    )
    benchmark.pedantic(ours, rounds=10, iterations=1)
    report_gate(f"cmsis {'mfcc' if n_dct else 'logmel'}: ours {per_frame_ours * 1e6:.2f} us/frame, cmsisdsp "
                f"{per_frame_peer * 1e6:.2f} us/frame, ratio {ratio:.3f} (gate <= {GATE}), {x_real_time:.0f}x real time")
    assert ratio <= GATE, f"ours/cmsisdsp per-frame time ratio {ratio:.3f} exceeds the gate {GATE}"


def test_peer_cmsisdsp_per_frame(audio, mfcc_frontend, benchmark):
    """The peer alone, for the record (frames/s of the firmware library called per frame)."""
    frames = audio.reshape(-1, FFT_LEN)
    peer_mfcc = _peer(mfcc_frontend)

    def peer():
        for frame in frames:
            peer_mfcc(frame)

    benchmark.pedantic(peer, rounds=10, iterations=1)
