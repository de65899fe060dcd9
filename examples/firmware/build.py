"""Build the reference firmware for Cortex-M3/M4 and run it on a recording in QEMU.

Toolchain (Debian): ``gcc-arm-none-eabi``, ``libnewlib-arm-none-eabi``,
``qemu-system-arm``.  CMSIS-DSP comes from the ``cmsisdsp`` 1.10.3 source
distribution, downloaded on first use (``fetch_cmsis.py``); the CMSIS-DSP
objects are compiled once per core and cached beside the sources
(``~/.cache/sed_runtime/firmware/<key>/``).

=====  ============  ==========  ============================  ==================================
core   QEMU machine  CPU         CMSIS-DSP code path           flags
=====  ============  ==========  ============================  ==================================
m3     mps2-an385    cortex-m3   plain C (target ``generic``)  -mcpu=cortex-m3 -mfloat-abi=soft
m4     mps2-an386    cortex-m4   DSP extension (``dsp``)       -mcpu=cortex-m4 -mfloat-abi=hard
                                                               -mfpu=fpv4-sp-d16
=====  ============  ==========  ============================  ==================================

Both: ``-mthumb -O2 -ffunction-sections -fdata-sections -DARM_MATH_LOOPUNROLL``;
newlib-nano with semihosting (``--specs=nano.specs --specs=rdimon.specs``),
our own ``startup.c`` and ``mps2.ld``.  ``ARM_MATH_DSP`` is not set by hand:
CMSIS-DSP derives it from ``__ARM_FEATURE_DSP``.

Command line::

    sed-export --frontend spec.json --out export/
    python examples/firmware/build.py build --header export/sed_model.h --core m4 --out fw/
    python examples/firmware/build.py run --elf fw/firmware_m4.elf --audio clip.wav --trace m4.trace
    sed-verify --frontend export/frontend.json --audio clip.wav --trace m4.trace

or all of it at once, for both cores: ``python examples/firmware/build.py check
--frontend spec.json --audio clip.wav``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import fetch_cmsis  # noqa: E402

CC = "arm-none-eabi-gcc"
AR = "arm-none-eabi-ar"
QEMU = "qemu-system-arm"


@dataclass(frozen=True)
class Core:
    name: str
    machine: str
    cpu: str
    target: str
    flags: tuple[str, ...]


CORES = {
    "m3": Core("m3", "mps2-an385", "cortex-m3", "generic", ("-mcpu=cortex-m3", "-mfloat-abi=soft")),
    "m4": Core("m4", "mps2-an386", "cortex-m4", "dsp",
               ("-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")),
}
COMMON_FLAGS = ("-mthumb", "-O2", "-ffunction-sections", "-fdata-sections", "-DARM_MATH_LOOPUNROLL")
WARNINGS = ("-std=c99", "-Wall", "-Wextra", "-Werror")
LINK_FLAGS = ("-nostartfiles", "--specs=nano.specs", "--specs=rdimon.specs", "-Wl,--gc-sections")

# The CMSIS-DSP files behind arm_mfcc_q15 and the log-mel sequence (Source/...).
CMSIS_SOURCES = (
    "BasicMathFunctions/arm_abs_q15.c",
    "BasicMathFunctions/arm_dot_prod_q15.c",
    "BasicMathFunctions/arm_mult_q15.c",
    "BasicMathFunctions/arm_offset_q31.c",
    "BasicMathFunctions/arm_scale_q15.c",
    "BasicMathFunctions/arm_scale_q31.c",
    "BasicMathFunctions/arm_shift_q15.c",
    "BasicMathFunctions/arm_shift_q31.c",
    "CommonTables/arm_common_tables.c",
    "CommonTables/arm_const_structs.c",
    "ComplexMathFunctions/arm_cmplx_mag_q15.c",
    "FastMathFunctions/arm_divide_q15.c",
    "FastMathFunctions/arm_sqrt_q31.c",
    "FastMathFunctions/arm_vlog_q31.c",
    "MatrixFunctions/arm_mat_vec_mult_q15.c",
    "StatisticsFunctions/arm_absmax_q15.c",
    "TransformFunctions/arm_bitreversal2.c",
    "TransformFunctions/arm_cfft_init_q15.c",
    "TransformFunctions/arm_cfft_q15.c",
    "TransformFunctions/arm_cfft_radix4_q15.c",
    "TransformFunctions/arm_mfcc_init_q15.c",
    "TransformFunctions/arm_mfcc_q15.c",
    "TransformFunctions/arm_rfft_init_q15.c",
    "TransformFunctions/arm_rfft_q15.c",
)
OWN_SOURCES = ("main.c", "startup.c")
OWN_HEADERS = ("sed_trace.h", "semihost.h", "core/cmsis_compiler.h", "mps2.ld")


class FirmwareError(RuntimeError):
    """The toolchain is missing, a build failed, or the firmware run failed."""


def missing_tools() -> list[str]:
    """Names of the tools (and Debian packages) that are not installed."""
    missing = []
    if shutil.which(CC) is None or shutil.which(AR) is None:
        missing.append("gcc-arm-none-eabi")
    elif not _has_newlib():
        missing.append("libnewlib-arm-none-eabi")
    if shutil.which(QEMU) is None:
        missing.append("qemu-system-arm")
    return missing


def _has_newlib() -> bool:
    res = subprocess.run([CC, "-mcpu=cortex-m3", "-mthumb", "--specs=nano.specs", "-print-file-name=libc_nano.a"],
                         capture_output=True, text=True, check=False)
    return res.returncode == 0 and os.path.isabs(res.stdout.strip())


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=cwd)
    if res.returncode != 0:
        raise FirmwareError(f"{what} failed ({res.returncode}):\n{' '.join(map(str, cmd))}\n{res.stderr[-4000:]}")


def _core(name: str) -> Core:
    try:
        return CORES[name]
    except KeyError:
        raise FirmwareError(f"core {name!r}: expected one of {sorted(CORES)}") from None


def _compiler_id() -> str:
    res = subprocess.run([CC, "--version"], capture_output=True, text=True, check=False)
    return res.stdout.splitlines()[0] if res.stdout else CC


def _includes(src: Path) -> list[str]:
    # CMSIS headers as system headers: our own code is compiled with -Werror, theirs is not ours to fix.
    return ["-I", str(HERE), "-isystem", str(HERE / "core"), "-isystem", str(src / "Include"),
            "-isystem", str(src / "PrivateInclude")]


def build_cmsis(core: str, source=None, *, jobs: int | None = None) -> Path:
    """Compile the CMSIS-DSP files for ``core`` into a cached static library; return its path."""
    c = _core(core)
    src = fetch_cmsis.ensure_source(source)
    h = hashlib.sha256()
    for rel in CMSIS_SOURCES:
        h.update(rel.encode())
        h.update((src / "Source" / rel).read_bytes())
    for header in sorted((src / "Include").rglob("*.h")) + sorted((src / "PrivateInclude").rglob("*.h")):
        h.update(header.read_bytes())
    h.update((HERE / "core" / "cmsis_compiler.h").read_bytes())
    h.update(" ".join(COMMON_FLAGS + c.flags).encode())
    h.update(_compiler_id().encode())
    out_dir = fetch_cmsis.cache_root() / "firmware" / h.hexdigest()[:20]
    lib = out_dir / f"libcmsisdsp_{c.name}.a"
    if lib.is_file():
        return lib
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        tmp = Path(tmp)

        def compile_one(rel: str) -> Path:
            obj = tmp / (rel.replace("/", "_")[:-2] + ".o")
            _run([CC, *COMMON_FLAGS, *c.flags, *_includes(src), "-c", str(src / "Source" / rel), "-o", str(obj)],
                 f"compiling CMSIS-DSP {rel} for {c.name}")
            return obj

        with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 2) as pool:
            objects = list(pool.map(compile_one, CMSIS_SOURCES))
        tmp_lib = tmp / lib.name
        _run([AR, "rcs", str(tmp_lib), *map(str, objects)], f"archiving CMSIS-DSP for {c.name}")
        os.replace(tmp_lib, lib)
    return lib


def build_firmware(header: str | os.PathLike, core: str, out_dir: str | os.PathLike, source=None) -> Path:
    """Compile ``main.c`` + ``startup.c`` against ``header`` (from sed-export) and link the ELF."""
    c = _core(core)
    missing = missing_tools()
    if missing:
        raise FirmwareError(f"missing toolchain packages: {' '.join(missing)} "
                            f"(Debian: apt-get install {' '.join(missing)})")
    header = Path(header).resolve()
    if not header.is_file():
        raise FirmwareError(f"header {header} does not exist (write it with sed-export)")
    src = fetch_cmsis.ensure_source(source)
    lib = build_cmsis(c.name, src)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    elf = out / f"firmware_{c.name}.elf"
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        inc = Path(tmp) / "include"
        inc.mkdir()
        shutil.copyfile(header, inc / "sed_model.h")
        cmd = [CC, *COMMON_FLAGS, *c.flags, *WARNINGS, "-I", str(inc), *_includes(src),
               *(str(HERE / s) for s in OWN_SOURCES), str(lib), "-T", str(HERE / "mps2.ld"), *LINK_FLAGS,
               "-lm", "-o", str(elf)]
        _run(cmd, f"building the firmware for {c.name}")
    return elf


@dataclass
class RunResult:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run_firmware(elf: str | os.PathLike, core: str, audio: str | os.PathLike, trace: str | os.PathLike | None, *,
                 text: bool = False, pcm: bool = True, timeout: float = 600.0) -> RunResult:
    """Run ``elf`` in QEMU on ``audio`` (16-bit mono WAV); write the trace to ``trace``.

    ``trace=None`` sends the text form to the console (``stdout`` of the
    result), as a UART log would.  The recording is linked into a scratch
    directory that QEMU runs in, so paths with spaces or commas are fine.
    A non-zero firmware exit status raises :class:`FirmwareError`.
    """
    c = _core(core)
    if shutil.which(QEMU) is None:
        raise FirmwareError(f"{QEMU} is not installed (Debian: apt-get install qemu-system-arm)")
    audio = Path(audio).resolve()
    with tempfile.TemporaryDirectory(prefix="sed-fw-") as tmp:
        tmp = Path(tmp)
        try:
            os.symlink(audio, tmp / "input.wav")
        except OSError:
            shutil.copyfile(audio, tmp / "input.wav")
        args = ["firmware", "input.wav", "-" if trace is None else "trace.out"]
        if text:
            args.append("text")
        if not pcm:
            args.append("nopcm")
        semihosting = "enable=on,target=native," + ",".join(f"arg={a}" for a in args)
        cmd = [QEMU, "-machine", c.machine, "-cpu", c.cpu, "-nographic", "-monitor", "none", "-serial", "none",
               "-semihosting-config", semihosting, "-kernel", str(Path(elf).resolve())]
        t0 = time.perf_counter()
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=tmp, timeout=timeout,
                                 stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise FirmwareError(f"QEMU ({c.machine}) did not finish within {timeout:g} s") from exc
        seconds = time.perf_counter() - t0
        if res.returncode != 0:
            raise FirmwareError(f"firmware on {c.machine} exited with status {res.returncode}:\n"
                                f"{res.stderr[-2000:]}{res.stdout[-2000:]}")
        if trace is not None:
            shutil.move(str(tmp / "trace.out"), str(trace))
    return RunResult(res.returncode, res.stdout, res.stderr, seconds)


# ---------------------------------------------------------------------------- command line


def _check(args) -> int:
    """Export the frontend, build for both cores, run on the recording, verify each trace."""
    from sed_runtime.cli import export_main, verify_main

    out = Path(args.out)
    export_dir = out / "export"
    rc = export_main(["--frontend", args.frontend, "--out", str(export_dir)])
    if rc:
        return rc
    worst = 0
    for core in args.cores:
        t0 = time.perf_counter()
        elf = build_firmware(export_dir / "sed_model.h", core, out / "build")
        built = time.perf_counter() - t0
        trace = out / f"{core}.trace"
        result = run_firmware(elf, core, args.audio, trace, text=args.text)
        print(f"{core}: built in {built:.1f} s, ran in {result.seconds:.1f} s on {CORES[core].machine}",
              file=sys.stderr)
        rc = verify_main(["--frontend", str(export_dir / "frontend.json"), "--audio", args.audio,
                          "--trace", str(trace)])
        worst = max(worst, rc)
    return worst


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the firmware ELF for one core")
    b.add_argument("--header", required=True, help="sed_model.h written by sed-export")
    b.add_argument("--core", choices=sorted(CORES), required=True)
    b.add_argument("--out", default="firmware-build", help="output directory")
    b.add_argument("--cmsis-src", help="CMSIS-DSP source tree (default: download the cmsisdsp sdist)")
    r = sub.add_parser("run", help="run a firmware ELF on a recording in QEMU")
    r.add_argument("--elf", required=True)
    r.add_argument("--core", choices=sorted(CORES), help="default: from the ELF name (firmware_<core>.elf)")
    r.add_argument("--audio", required=True, help="16-bit mono WAV at the frontend's sample rate")
    r.add_argument("--trace", help="trace file to write (default: text form on the console)")
    r.add_argument("--text", action="store_true", help="write the text (UART) form")
    r.add_argument("--no-pcm", action="store_true", help="do not log the input PCM")
    k = sub.add_parser("check", help="export, build for both cores, run, sed-verify")
    k.add_argument("--frontend", required=True, help="frontend spec JSON")
    k.add_argument("--audio", required=True)
    k.add_argument("--out", default="firmware-check")
    k.add_argument("--cores", nargs="+", default=sorted(CORES), choices=sorted(CORES))
    k.add_argument("--text", action="store_true", help="traces in the text (UART) form")
    args = ap.parse_args(argv)
    try:
        if args.command == "build":
            t0 = time.perf_counter()
            elf = build_firmware(args.header, args.core, args.out, args.cmsis_src)
            print(f"{elf} ({time.perf_counter() - t0:.1f} s)")
        elif args.command == "run":
            core = args.core or Path(args.elf).stem.rsplit("_", 1)[-1]
            result = run_firmware(args.elf, core, args.audio, args.trace, text=args.text, pcm=not args.no_pcm)
            sys.stdout.write(result.stdout)
            print(f"ran in {result.seconds:.1f} s", file=sys.stderr)
        else:
            return _check(args)
    except (FirmwareError, fetch_cmsis.CmsisSourceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
