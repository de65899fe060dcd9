"""Tier ``firmware``: the reference firmware on emulated Cortex-M3 and Cortex-M4, frame for frame.

For each frontend configuration, ``sed-export`` writes the C header, the
reference firmware (``examples/firmware/``) is built against it with Debian's
``arm-none-eabi-gcc`` and CMSIS-DSP from the ``cmsisdsp`` sdist for
``mps2-an385`` (Cortex-M3: CMSIS-DSP's plain C path) and ``mps2-an386``
(Cortex-M4: the DSP-extension path), real recordings run through it in
``qemu-system-arm``, and the traces it writes are checked with sed-verify's
comparison: target ``generic`` for the M3, ``dsp`` for the M4, every input
sample, every q8.7 value and every int8 model-input value equal.

Needs ``gcc-arm-none-eabi``, ``libnewlib-arm-none-eabi`` and
``qemu-system-arm`` (``.ci/run`` installs them); skipped with the reason when
they are missing, failed instead when ``SED_REQUIRE_FIRMWARE=1``.  The CMSIS-DSP sources are downloaded once (cached).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import SHARED
from sed_runtime.cli import verify_main
from sed_runtime.export.c_header import write_frontend_export
from sed_runtime.frontend import FrontendSpec
from sed_runtime.io.trace import parse_trace, read_trace
from sed_runtime.io.wavfile import read_pcm16
from sed_runtime.stream.resample import Resampler
from sed_runtime.verify import RuntimeReference, verify_trace

FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "examples" / "firmware"
sys.path.insert(0, str(FIRMWARE_DIR))
import fetch_cmsis  # noqa: E402

# examples/firmware/build.py under a name no installed package ("build") can shadow
_spec = importlib.util.spec_from_file_location("sed_firmware_build", FIRMWARE_DIR / "build.py")
firmware = sys.modules["sed_firmware_build"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(firmware)

pytestmark = pytest.mark.firmware

REAL = SHARED / "fixtures" / "real"
ALL_RECORDINGS = sorted(p.name for p in REAL.glob("*.wav"))
SOME = ["speech_en_11s.wav", "alarm_clock_beeps.wav", "dog_bark.wav", "music_28s.wav"]
CORES = {"m3": "generic", "m4": "dsp"}

CONFIGS = {
    # log-mel, the CNN input of most sound-event detectors
    "logmel_fft512": dict(sample_rate_hz=16000, window_samples=512, hop_samples=256, fft_len=512, n_mels=40,
                          lower_hz=20.0, upper_hz=8000.0),
    # MFCC through arm_mfcc_q15 itself, a 25 ms window zero-padded to 512, int8 model input
    "mfcc_win400_s8": dict(sample_rate_hz=16000, window_samples=400, hop_samples=160, fft_len=512, n_mels=40,
                           lower_hz=20.0, upper_hz=8000.0, n_dct=13,
                           quantization={"scale": 0.05, "zero_point": -3}),
    # log-mel to int8, 30 ms window / 20 ms hop padded to 512 (micro_speech geometry), 32 mels
    "logmel_win480_s8": dict(sample_rate_hz=16000, window_samples=480, hop_samples=320, fft_len=512, n_mels=32,
                             lower_hz=125.0, upper_hz=7500.0, quantization={"scale": 0.1, "zero_point": 20}),
    # FFT 1024 (radix-4-by-2 CFFT), MFCC as in the golden vectors
    "mfcc_fft1024": dict(sample_rate_hz=16000, window_samples=1024, hop_samples=512, fft_len=1024, n_mels=40,
                         lower_hz=64.0, upper_hz=8000.0, n_dct=10),
    # 8 kHz, FFT 256, window 200 padded to 256
    "mfcc_8k_win200": dict(sample_rate_hz=8000, window_samples=200, hop_samples=80, fft_len=256, n_mels=32,
                           lower_hz=0.0, upper_hz=4000.0, n_dct=12),
}
RUNS = [(cfg, rec) for rec in ALL_RECORDINGS for cfg in ["logmel_fft512"]] + \
       [(cfg, rec) for cfg in CONFIGS if cfg != "logmel_fft512" for rec in SOME]


@pytest.fixture(scope="module")
def toolchain():
    missing = firmware.missing_tools()
    if missing:
        if os.environ.get("SED_REQUIRE_FIRMWARE") == "1":
            pytest.fail(f"SED_REQUIRE_FIRMWARE=1 but {', '.join(missing)} is missing")
        pytest.skip(f"firmware tier needs {', '.join(missing)} (Debian: apt-get install -y {' '.join(missing)})")
    try:
        return fetch_cmsis.ensure_source()
    except fetch_cmsis.CmsisSourceError as exc:
        pytest.skip(f"firmware tier needs the CMSIS-DSP sources: {exc}")


@pytest.fixture(scope="module")
def builds(toolchain, tmp_path_factory):
    """{(config, core): (elf, export dir)}: every configuration built for both cores."""
    root = tmp_path_factory.mktemp("firmware")
    for core in CORES:  # the CMSIS-DSP library once per core, before the parallel builds
        firmware.build_cmsis(core, toolchain)
    jobs = {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        for name, cfg in CONFIGS.items():
            export = root / name
            write_frontend_export(FrontendSpec(**cfg), export)
            for core in CORES:
                jobs[(name, core)] = (pool.submit(firmware.build_firmware, export / "sed_model.h", core,
                                                  root / name / core, toolchain), export)
        return {key: (fut.result(), export) for key, (fut, export) in jobs.items()}


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """{(rate, name): (wav path, int16 samples)}; 8 kHz copies made with the runtime's resampler."""
    root = tmp_path_factory.mktemp("audio")
    cache = {}

    def get(rate: int, name: str):
        key = (rate, name)
        if key not in cache:
            samples, native = read_pcm16(REAL / name)
            if rate == native:
                cache[key] = (REAL / name, samples)
            else:
                resampler = Resampler(native, rate).prepare()
                out = np.concatenate([resampler.process(samples), resampler.flush()]).astype(np.int16)
                path = root / f"{Path(name).stem}_{rate}.wav"
                sf.write(path, out, rate, subtype="PCM_16")
                cache[key] = (path, out)
        return cache[key]

    return get


def _reference(name: str, core: str, samples: np.ndarray) -> RuntimeReference:
    return RuntimeReference(FrontendSpec(**CONFIGS[name]), target=CORES[core]).run(samples)


@pytest.mark.parametrize("core", sorted(CORES))
@pytest.mark.parametrize("config,recording", RUNS)
def test_every_frame_equals_the_runtime(builds, recordings, tmp_path, config, recording, core):
    elf, _ = builds[(config, core)]
    wav, samples = recordings(CONFIGS[config]["sample_rate_hz"], recording)
    trace_path = tmp_path / f"{core}.trace"
    firmware.run_firmware(elf, core, wav, trace_path, timeout=300)
    trace = read_trace(trace_path)
    assert trace.target == CORES[core]
    reference = _reference(config, core, samples)
    report = verify_trace(trace, reference)
    assert report.ok, "\n".join(report.lines())
    expected_stages = ["pcm", "features"] + (["features_s8"] if "quantization" in CONFIGS[config] else [])
    assert [s.stage for s in report.stages] == expected_stages
    assert all(s.records == reference.hops > 0 for s in report.stages)


def test_the_m4_trace_is_not_generic_arithmetic(builds, recordings, tmp_path):
    """The two targets really differ on real audio, so the per-core equality above is a real check."""
    elf, _ = builds[("logmel_fft512", "m4")]
    wav, samples = recordings(16000, "speech_en_11s.wav")
    trace_path = tmp_path / "m4.trace"
    firmware.run_firmware(elf, "m4", wav, trace_path, pcm=False)
    report = verify_trace(read_trace(trace_path), _reference("logmel_fft512", "m3", samples))
    assert report.first is not None and report.first.stage == "features"
    assert report.stages[0].differing_elements > 100


def test_uart_text_trace_on_the_console(builds, recordings):
    """The firmware prints the text form among its console output; the reader picks out the trace lines."""
    elf, _ = builds[("mfcc_win400_s8", "m3")]
    wav, samples = recordings(16000, "dog_bark.wav")
    result = firmware.run_firmware(elf, "m3", wav, None)
    assert result.stdout.startswith("firmware: ")
    trace = parse_trace(result.stdout.encode(), source="console")
    assert trace.form == "text" and trace.complete
    report = verify_trace(trace, _reference("mfcc_win400_s8", "m3", samples))
    assert report.ok, "\n".join(report.lines())


def test_sed_verify_command_on_a_firmware_trace(builds, recordings, tmp_path, capsys):
    elf, export = builds[("logmel_win480_s8", "m4")]
    wav, _ = recordings(16000, "rain.wav")
    trace_path = tmp_path / "m4.log"
    firmware.run_firmware(elf, "m4", wav, trace_path, text=True)
    assert trace_path.read_bytes().startswith(b"@sed1 header")
    argv = ["--frontend", str(export / "frontend.json"), "--audio", str(wav), "--trace", str(trace_path)]
    assert verify_main(argv) == 0  # target taken from the trace: dsp
    assert "EQUAL:" in capsys.readouterr().out
    assert verify_main(argv + ["--target", "generic"]) == 1
    assert "FIRST DIVERGENCE: hop" in capsys.readouterr().out


def test_firmware_refuses_a_recording_at_another_rate(builds, recordings, tmp_path):
    elf, _ = builds[("mfcc_8k_win200", "m3")]
    with pytest.raises(firmware.FirmwareError, match=r"(?s)status 4.*16000 Hz, the frontend runs at 8000 Hz"):
        firmware.run_firmware(elf, "m3", REAL / "dog_bark.wav", tmp_path / "x.trace")


def test_only_the_m4_build_uses_dsp_instructions(builds):
    dsp = ("smuad", "smladx", "shadd16", "qadd16", "qsub16", "smlald", "qasx", "shsax")
    counts = {}
    for core in CORES:
        elf, _ = builds[("logmel_fft512", core)]
        text = subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True, text=True,
                              check=True).stdout
        counts[core] = sum(1 for line in text.splitlines()
                           if len(line.split("\t")) > 2 and line.split("\t")[2].strip() in dsp)
    assert counts["m3"] == 0 and counts["m4"] > 20, counts


def test_the_header_matches_the_spec(builds):
    _, export = builds[("mfcc_win400_s8", "m3")]
    spec = json.loads((export / "frontend.json").read_text())
    assert spec["window_samples"] == 400 and spec["quantization"] == {"scale": 0.05, "zero_point": -3}
    header = (export / "sed_model.h").read_text()
    assert "#define SED_WINDOW_SAMPLES 400" in header and "#define SED_N_DCT 13" in header


@pytest.mark.parametrize("core", sorted(CORES))
@pytest.mark.parametrize("function,n_dct", [("logmel_q15", 0), ("mfcc_q15", 13)])
def test_firmware_reproduces_the_golden_vectors(toolchain, tmp_path, core, function, n_dct):
    """The shared Cortex-M golden vectors (made by another harness) from this firmware: frames laid end to end."""
    golden = np.load(SHARED / "golden" / "cmsis-dsp" / f"{core}_{function}_fft512_mel40_dct13.npz")
    spec = FrontendSpec(sample_rate_hz=16000, window_samples=512, hop_samples=512, fft_len=512, n_mels=40,
                        lower_hz=20.0, upper_hz=8000.0, n_dct=n_dct)
    export = tmp_path / "export"
    write_frontend_export(spec, export)
    elf = firmware.build_firmware(export / "sed_model.h", core, tmp_path / "fw", toolchain)
    wav = tmp_path / "frames.wav"
    sf.write(wav, golden["input"].reshape(-1), 16000, subtype="PCM_16")
    firmware.run_firmware(elf, core, wav, tmp_path / "t.trace", pcm=False)
    frames = np.array([r.data for r in read_trace(tmp_path / "t.trace").records if r.stage == "features"])
    expected = golden["output"]
    assert frames.shape == expected.shape
    bad = [i for i in range(expected.shape[0]) if not np.array_equal(frames[i], expected[i])]
    assert not bad, f"frames {bad} differ from {core}_{function} golden vectors"
