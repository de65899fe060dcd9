"""Command-line entry points.

Library errors (:class:`sed_runtime.errors.SedError`) become one line on
stderr and exit code 1; ``--debug`` shows the traceback instead.  Ctrl-C
exits with 130 and a closed standard output (``sed-stamp --show | head``)
with 141, quietly, as a program stopped by SIGINT or SIGPIPE.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np

from sed_runtime.errors import ConfigError, SedError

DEMO_CLIP = "demo_yes_1000ms.wav"
DEMO_SPEC = {
    "family": "cmsis-dsp",
    "sample_rate_hz": 16000,
    "window_samples": 512,
    "hop_samples": 256,
    "fft_len": 512,
    "n_mels": 40,
    "lower_hz": 20.0,
    "upper_hz": 8000.0,
    "n_dct": 0,
    "target": "generic",
}


def _run(main, argv) -> int:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        return main(argv)
    except SedError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader of stdout went away.  Point stdout at /dev/null so that the
        # interpreter's last flush does not report the broken pipe again.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # stdout is not a file descriptor (captured)
            pass
        return 141


# ---------------------------------------------------------------------------
# sed-features
# ---------------------------------------------------------------------------

def _features_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sed-features",
        description="Compute the integer feature frames a Cortex-M firmware computes for a recording "
        "(CMSIS-DSP q15 log-mel or MFCC, or the TFLM micro_speech signal frontend; bit-exact).",
    )
    p.add_argument("audio", nargs="?", help="16-bit (or 8/24/32-bit, float) WAV/FLAC/OGG at the spec's sample rate")
    p.add_argument("--frontend", metavar="SPEC.json", help="frontend spec (JSON; keys documented in README)")
    p.add_argument("--out", metavar="FILE", help="write frames [frames, bins] here (.npy, or CSV with --format csv)")
    p.add_argument("--format", choices=("npy", "csv"), default=None, help="output format (default: from --out suffix)")
    p.add_argument("--target", choices=("generic", "dsp"), help="override the spec's arithmetic target")
    p.add_argument("--channel", type=int, help="channel of a multi-channel file to use (0-based)")
    p.add_argument("--micro-speech", action="store_true",
                   help="use the built-in TFLM micro_speech frontend spec (family tflm-signal) instead of --frontend")
    p.add_argument("--demo", action="store_true",
                   help="run on the bundled demo clip with a built-in log-mel spec (or --micro-speech / --frontend)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _features(argv) -> int:
    from sed_runtime.frontend import MICRO_SPEECH_SPEC, FrontendSpec, make_frontend
    from sed_runtime.frontend.spec import load_spec
    from sed_runtime.io.wavfile import read_pcm16

    args = _features_parser().parse_args(argv)
    if args.micro_speech and args.frontend:
        _features_parser().error("give either --frontend SPEC.json or --micro-speech, not both")
    if args.demo:
        if args.frontend:
            spec = load_spec(args.frontend)
        elif args.micro_speech:
            spec = MICRO_SPEECH_SPEC
        else:
            spec = FrontendSpec.from_dict(dict(DEMO_SPEC))
        audio_ref = resources.files("sed_runtime") / "data" / DEMO_CLIP
        with resources.as_file(audio_ref) as demo_path:
            samples, _ = read_pcm16(demo_path, spec.sample_rate_hz)
        audio_name = f"bundled clip {DEMO_CLIP}"
    else:
        if not args.audio or not (args.frontend or args.micro_speech):
            _features_parser().error("AUDIO and --frontend SPEC.json are required (or --micro-speech instead of --frontend; or --demo)")
        spec = MICRO_SPEECH_SPEC if args.micro_speech else load_spec(args.frontend)
        samples, _ = read_pcm16(args.audio, spec.sample_rate_hz, args.channel)
        audio_name = args.audio
    if args.target:
        if not isinstance(spec, FrontendSpec):
            raise ConfigError(f"--target {args.target} applies to the cmsis-dsp family; the spec is family {spec.family!r}")
        spec = FrontendSpec.from_dict({**spec.to_dict(), "target": args.target})

    frontend = make_frontend(spec)
    t0 = time.perf_counter()
    frames = frontend.process(samples).copy()
    elapsed = time.perf_counter() - t0

    if args.out:
        fmt = args.format or ("csv" if args.out.lower().endswith(".csv") else "npy")
        out = Path(args.out)
        try:
            with open(out, "wb") as fh:  # a file object: np.save would append ".npy" to a bare path
                if fmt == "npy":
                    np.save(fh, frames)
                else:
                    np.savetxt(fh, frames, fmt="%d", delimiter=",")
        except OSError as exc:
            raise SedError(f"cannot write features to {str(out)!r}: {exc.strerror or exc}") from exc
        print(f"wrote {frames.shape[0]} frames x {frames.shape[1]} {spec.output} values ({frames.dtype}) to {out}",
              file=sys.stderr)
    seconds = samples.shape[0] / spec.sample_rate_hz
    summary = {
        "audio": audio_name,
        "seconds": round(seconds, 3),
        "frontend": _describe(spec),
        "frames": int(frames.shape[0]),
        "bins": int(frames.shape[1]),
        "dtype": str(frames.dtype),
        "min": int(frames.min()) if frames.size else None,
        "max": int(frames.max()) if frames.size else None,
        "x_real_time": round(seconds / elapsed, 1) if elapsed > 0 else None,
    }
    if not args.out or args.demo:
        print(json.dumps(summary))
        if args.demo and frames.size:
            _print_bars(frames, spec)
    return 0


def _describe(spec) -> str:
    if hasattr(spec, "describe"):
        return spec.describe()
    return f"{spec.family} {spec.output} fft_len={spec.fft_len} n_mels={spec.n_mels} target={spec.target}"


def _print_bars(frames: np.ndarray, spec) -> None:
    """A coarse text spectrogram: one row per mel band group, one column per frame group."""
    shades = " .:-=+*#%@"
    rows = min(12, frames.shape[1])
    cols = min(64, frames.shape[0])
    lo, hi = float(frames.min()), float(frames.max())
    band_edges = np.linspace(0, frames.shape[1], rows + 1).astype(int)
    frame_edges = np.linspace(0, frames.shape[0], cols + 1).astype(int)
    for r in reversed(range(rows)):
        line = []
        for c in range(cols):
            block = frames[frame_edges[c]:frame_edges[c + 1], band_edges[r]:band_edges[r + 1]]
            level = (float(block.mean()) - lo) / (hi - lo) if hi > lo else 0.0
            line.append(shades[min(len(shades) - 1, int(level * len(shades)))])
        print(f"band {band_edges[r]:3d} |" + "".join(line) + "|")
    print(f"          {frames.shape[0]} frames, hop {spec.hop_samples} samples ({spec.frame_ms:g} ms)")


def features_main(argv=None) -> int:
    return _run(_features, argv)


# ---------------------------------------------------------------------------
# sed-stamp
# ---------------------------------------------------------------------------

def _stamp(argv) -> int:
    from sed_runtime.model.metadata import read_metadata, write_metadata

    p = argparse.ArgumentParser(
        prog="sed-stamp",
        description="Write a model's metadata (sample rate, frontend, window/stride in frames, labels, default "
        "decision parameters) into the model (.onnx metadata_props, .tflite metadata buffer), checked against "
        "its graph; or show the metadata a model carries.",
    )
    p.add_argument("model", help="quantized model (.onnx or .tflite)")
    p.add_argument("--metadata", metavar="META.json", help="metadata to stamp (JSON; keys documented in README)")
    p.add_argument("--out", metavar="OUT", help="write the stamped model here (default: in place)")
    p.add_argument("--sidecar", action="store_true", help=".tflite: write <model>.json beside it, model unchanged")
    p.add_argument("--show", action="store_true", help="print the model's metadata as JSON and exit")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_args(argv)
    if args.show:
        print(read_metadata(args.model).to_json(indent=2))
        return 0
    if not args.metadata:
        p.error("--metadata META.json is required (or --show)")
    target = write_metadata(args.model, args.metadata, out_path=args.out, sidecar=args.sidecar)
    meta = read_metadata(args.model if args.sidecar else target)
    print(f"stamped {target}: {len(meta.labels)} labels, window {meta.window_frames} x {meta.bins} "
          f"{meta.frontend.get('family', 'cmsis-dsp')} frames at {meta.sample_rate_hz} Hz, "
          f"stride {meta.stride_frames}", file=sys.stderr)
    return 0


def stamp_main(argv=None) -> int:
    return _run(_stamp, argv)


# ---------------------------------------------------------------------------
# sed-eval
# ---------------------------------------------------------------------------

def eval_main(argv=None) -> int:
    """``sed-eval``: score detections against reference annotations (see :mod:`sed_runtime.eval.cli`)."""
    from sed_runtime.eval.cli import main

    return _run(main, argv)


# ---------------------------------------------------------------------------
# sed-verify
# ---------------------------------------------------------------------------

def _verify(argv) -> int:
    from sed_runtime.io.trace import read_trace
    from sed_runtime.io.wavfile import read_pcm16
    from sed_runtime.verify import COMPARABLE, RECORDED, RuntimeReference, check_identity, record_trace, verify_trace

    p = argparse.ArgumentParser(
        prog="sed-verify",
        description="Check a device trace against the runtime, stage by stage and element by element (exit 0 only "
        "when everything is equal), or record the runtime's own trace of a recording.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", metavar="M", help="quantized model with metadata (.onnx or .tflite)")
    src.add_argument("--frontend", metavar="SPEC.json", help="frontend spec (frontend stages only)")
    p.add_argument("--audio", metavar="CLIP", required=True, help="the recording the device processed")
    p.add_argument("--trace", metavar="DEVICE_TRACE", help="device trace to check (binary or text form)")
    p.add_argument("--record", metavar="OUT_TRACE", help="write the runtime's trace here (.txt/.log: text form)")
    p.add_argument("--target", choices=("generic", "dsp"), help="arithmetic target (default: the trace's, else the spec's)")
    p.add_argument("--stages", help=f"comma-separated stages to compare (default: all of {','.join(COMPARABLE)}) or "
                   f"record (default: {','.join(RECORDED)})")
    p.add_argument("--partial", action="store_true", help="accept a trace without its end record or with hops missing")
    p.add_argument("--text", action="store_true", help="--record in the text (UART) form whatever the suffix")
    p.add_argument("--channel", type=int, help="channel of a multi-channel recording (0-based)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_args(argv)
    if not args.trace and not args.record:
        p.error("give --trace DEVICE_TRACE to check, --record OUT_TRACE to write, or both")
    stages = [s.strip() for s in args.stages.split(",") if s.strip()] if args.stages else None

    model = spec = None
    if args.model:
        from sed_runtime import load_model

        model = load_model(args.model)
    else:
        from sed_runtime.frontend.spec import load_spec

        spec = load_spec(args.frontend)
    trace = read_trace(args.trace, allow_partial=args.partial) if args.trace else None
    target = args.target or (trace.target if trace is not None and trace.target in ("generic", "dsp") else None)
    reference = RuntimeReference(spec, target=target, model=model)
    if trace is not None:  # refuse a trace of another model or rate before reading the audio
        check_identity(trace, reference.identity, reference.model_sha256)
    samples, _ = read_pcm16(args.audio, reference.spec.sample_rate_hz, args.channel)
    reference.run(samples)
    if args.record:
        n = record_trace(args.record, reference, text=True if args.text else None,
                         stages=stages if stages is not None else RECORDED)
        print(f"wrote {n} records ({reference.hops} hops, target {reference.target}) to {args.record}", file=sys.stderr)
    if trace is None:
        return 0
    report = verify_trace(trace, reference, stages=stages, allow_partial=args.partial)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print("\n".join(report.lines()))
    return 0 if report.ok else 1


def verify_main(argv=None) -> int:
    return _run(_verify, argv)


# ---------------------------------------------------------------------------
# sed-export
# ---------------------------------------------------------------------------

def _export(argv) -> int:
    from sed_runtime.export.firmware import export_firmware

    p = argparse.ArgumentParser(
        prog="sed-export",
        description="Write what firmware needs: a C header with the frontend tables, feature quantization and trace "
        "identity, and with --model the .tflite (checked in tflite-micro), arena size, labels and decision constants.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", metavar="M", help="quantized model with metadata (.onnx or .tflite)")
    src.add_argument("--frontend", metavar="SPEC.json", help="frontend spec (header with the frontend only)")
    p.add_argument("--out", metavar="DIR", required=True, help="output directory")
    p.add_argument("--header-name", default="sed_model.h", help="file name of the C header (default sed_model.h)")
    p.add_argument("--no-check", action="store_true", help="do not run the exported model in tflite-micro")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_args(argv)
    written = export_firmware(args.out, model_path=args.model, frontend_path=args.frontend,
                              header_name=args.header_name, check=not args.no_check)
    for kind, path in written.items():
        print(f"{kind}: {path}")
    return 0


def export_main(argv=None) -> int:
    return _run(_export, argv)


# ---------------------------------------------------------------------------
# sed-inspect
# ---------------------------------------------------------------------------

INSPECT_TARGETS = {  # name -> (label, RAM bytes, flash bytes)
    "m0plus": ("Cortex-M0+", 96 * 1024, 128 * 1024),
    "m4": ("Cortex-M4", 256 * 1024, 1024 * 1024),
    "m7": ("Cortex-M7", 512 * 1024, 2 * 1024 * 1024),
}


def _size(text: str) -> int:
    """``96K``, ``1M``, ``256KB``, ``262144`` -> bytes (K = 1024, M = 1024**2, as MCU datasheets count)."""
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    mult = {"K": 1024, "M": 1024**2}.get(t[-1:], 1)
    try:
        value = float(t[:-1] if mult > 1 else t) * mult
    except ValueError:
        raise ConfigError(f"size {text!r} is not a byte count like 96K, 1M or 262144") from None
    if value <= 0:
        raise ConfigError(f"size {text!r} must be > 0")
    return int(value)


def _frontend_table_bytes(metadata) -> int | None:
    """Bytes of the frontend's constant tables (window, filters, DCT) when the metadata names a frontend."""
    try:
        from sed_runtime.frontend import make_frontend

        tables = getattr(make_frontend(metadata.frontend_spec), "tables", None)
    except Exception:  # no metadata, or a frontend family without table arrays
        return None
    if tables is None:
        return None
    return int(sum(v.nbytes for v in vars(tables).values() if isinstance(v, np.ndarray)))


def _frontend_state_bytes(metadata) -> dict | None:
    """RAM the device needs outside the arena to feed the model, by part, from the metadata's frontend:
    the sample window, the frontend's working buffers, one frame of features and the feature history that
    slides by ``stride_frames`` (the arena reuses its input tensor once the first layer has read it)."""
    try:
        spec = metadata.frontend_spec
        frames = int(metadata["window_frames"])
    except Exception:  # no metadata or no frontend in it
        return None
    rate = spec.sample_rate_hz
    if getattr(spec, "family", "") == "tflm-signal":
        window = spec.window_samples or round(spec.window_ms * rate / 1000)
        fft = spec.fft_len or 1 << (window - 1).bit_length()
        bins = fft // 2 + 1
        n_out = spec.n_channels
        # int16 FFT input, complex int16 spectrum, uint32 energies; per channel uint64 accumulators,
        # uint32 noise estimates, int16 outputs
        work = 2 * fft + 4 * bins + 4 * bins + (8 + 4 + 2) * (n_out + 1)
    else:  # cmsis-dsp: arm_mfcc_q15 windows its input in place and needs a q31 complex buffer of fft_len
        window = spec.window_samples
        n_out = spec.n_dct or spec.n_mels
        work = 8 * spec.fft_len + 2 * n_out
    return {"samples": 2 * window, "frontend_work": work, "feature_history": frames * n_out,
            "total": 2 * window + work + frames * n_out}


def _inspect(argv) -> int:
    from sed_runtime.model.interpreter import load_model

    p = argparse.ArgumentParser(
        prog="sed-inspect",
        description="Per-layer table of an int8 model (op, shapes, MACs, weight and activation bytes) and totals: "
        "arena (peak RAM), weights + tables (flash), MACs per inference and per second of audio, and whether it "
        "fits a Cortex-M target.",
    )
    p.add_argument("model", help="int8 model (.tflite or quantized .onnx)")
    p.add_argument("--target", choices=sorted(INSPECT_TARGETS), action="append",
                   help="check this target (repeatable; default: all of m0plus, m4, m7)")
    p.add_argument("--ram", metavar="SIZE", help="check a custom target with this much RAM (e.g. 64K)")
    p.add_argument("--flash", metavar="SIZE", help="... and this much flash (e.g. 256K)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_args(argv)

    model = load_model(args.model)
    info = model.summary()
    table_bytes = _frontend_table_bytes(model.metadata)
    flash = info["weight_bytes"] + (table_bytes or 0)
    state = _frontend_state_bytes(model.metadata)
    ram_total = info["arena_bytes"] + (state["total"] if state else 0)
    per_second = None
    meta = model.metadata
    try:
        hop = meta["frontend"]["hop_samples"]
        per_second = meta["sample_rate_hz"] / (meta["stride_frames"] * hop)
    except (KeyError, TypeError, ZeroDivisionError):
        pass
    targets = [INSPECT_TARGETS[t] for t in (args.target or ([] if args.ram or args.flash else sorted(
        INSPECT_TARGETS, key=lambda k: INSPECT_TARGETS[k][1])))]
    if args.ram or args.flash:
        targets.append(("custom", _size(args.ram) if args.ram else None, _size(args.flash) if args.flash else None))
    fits = []
    for label, ram, rom in targets:
        ok = (ram is None or ram_total <= ram) and (rom is None or flash <= rom)
        fits.append(dict(target=label, ram_bytes=ram, flash_bytes=rom, fits=ok))
    info.update(model=str(args.model), table_bytes=table_bytes, flash_bytes=flash, frontend_state=state,
                ram_bytes=ram_total,
                inferences_per_second=per_second,
                macs_per_second=None if per_second is None else info["macs"] * per_second, targets=fits)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0

    def shape(s) -> str:
        return "x".join(str(d) for d in s) or "scalar"

    print(f"{args.model}: {info['operators']} operators; in "
          + ", ".join(f"{i['name']} {i['dtype']}[{shape(i['shape'])}]" for i in info["inputs"]) + "; out "
          + ", ".join(f"{o['name']} {o['dtype']}[{shape(o['shape'])}]" for o in info["outputs"]))
    header = f"{'#':>3}  {'op':<18} {'input':<22} {'output':<14} {'MACs':>11} {'weight B':>10} {'act B':>9} " \
             f"{'live B':>9}"
    print(header)
    print("-" * len(header))
    for layer in info["layers"]:
        ins = ",".join(shape(s) for s in layer["inputs"]) or "-"
        note = "  (aliased: no copy)" if layer["aliased"] else ""
        print(f"{layer['index']:>3}  {layer['op']:<18} {ins:<22} {shape(layer['output']):<14} {layer['macs']:>11,} "
              f"{layer['weight_bytes']:>10,} {layer['activation_bytes']:>9,} {layer['live_bytes']:>9,}{note}")
    print("-" * len(header))
    print(f"arena (peak RAM of activations): {info['arena_bytes']:,} B  "
          f"(TFLM's greedy plan of the same tensors: {info['tflm_arena_bytes']:,} B; a TFLM arena adds its own "
          "bookkeeping)")
    family = meta.get("frontend", {}).get("family") if isinstance(meta.get("frontend"), dict) else None
    tables = f"{table_bytes:,} B" if table_bytes is not None else \
        f"not counted for the {family} frontend" if family else "n/a: no frontend in the metadata"
    if state:
        print(f"RAM: {ram_total:,} B  (arena {info['arena_bytes']:,} B + frontend state {state['total']:,} B: "
              f"samples {state['samples']:,}, working buffers {state['frontend_work']:,}, feature history "
              f"{state['feature_history']:,})")
    else:
        print(f"RAM: {ram_total:,} B  (arena only: no frontend in the metadata)")
    print(f"flash: {flash:,} B  (weights {info['weight_bytes']:,} B, frontend tables {tables})")
    rate = "" if per_second is None else f", {info['macs'] * per_second:,.0f} per second of audio " \
        f"({per_second:g} inferences/s)"
    print(f"MACs: {info['macs']:,} per inference{rate}")
    for f in fits:
        ram = "-" if f["ram_bytes"] is None else f"{f['ram_bytes'] // 1024} KB RAM"
        rom = "-" if f["flash_bytes"] is None else f"{f['flash_bytes'] // 1024} KB flash"
        verdict = "fits" if f["fits"] else "does NOT fit"
        print(f"{f['target']} ({ram}, {rom}): {verdict}")
    return 0


def inspect_main(argv=None) -> int:
    return _run(_inspect, argv)


# ---------------------------------------------------------------------------
# sed-pack
# ---------------------------------------------------------------------------

def _pack(argv) -> int:
    from sed_runtime.pack import CALIBRATION_METHODS, load_json_arg, pack

    p = argparse.ArgumentParser(
        prog="sed-pack",
        description="Quantize a float ONNX model (features in, scores out) to an int8 QDQ ONNX model that carries "
        "its metadata: calibration windows from the audio through this runtime's integer frontend, "
        "onnxruntime quantize_static (per-channel int8 weights), then every verification window run by the "
        "int8 engine and compared with the float model (the drift is printed).",
    )
    p.add_argument("model", help="float ONNX model: input = window_frames x bins features (q8.7 / 128), "
                   "output = one score per label")
    p.add_argument("--frontend", required=True, metavar="SPEC.json", help="cmsis-dsp frontend spec (JSON)")
    p.add_argument("--labels", required=True, help="comma-separated class labels, one per output")
    p.add_argument("--window-frames", type=int, required=True, help="feature frames per model input")
    p.add_argument("--stride-frames", type=int, required=True, help="frames between two inferences")
    p.add_argument("--decision", metavar="JSON", help="default decision parameters: a JSON file or inline {...}")
    p.add_argument("--calibration", nargs="+", required=True, metavar="AUDIO", help="calibration recordings")
    p.add_argument("--verify", nargs="+", metavar="AUDIO", help="verification recordings (default: calibration)")
    p.add_argument("--out", required=True, metavar="OUT.onnx", help="the int8 model to write")
    p.add_argument("--per-tensor", action="store_true", help="per-tensor weights (default: per output channel)")
    p.add_argument("--calibration-method", choices=CALIBRATION_METHODS, default="minmax")
    p.add_argument("--max-windows", type=int, default=2000, help="calibration/verification windows kept (spread)")
    p.add_argument("--description", help="free text stored in the metadata")
    p.add_argument("--json", metavar="FILE", help="write the report (drift per label, sizes) as JSON")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_args(argv)
    report = pack(args.model, args.out, frontend=args.frontend, labels=[x for x in args.labels.split(",") if x],
                  window_frames=args.window_frames, stride_frames=args.stride_frames,
                  decision=load_json_arg(args.decision, "--decision"), calibration=args.calibration,
                  verification=args.verify, per_channel=not args.per_tensor,
                  calibration_method=args.calibration_method, max_calibration_windows=args.max_windows,
                  max_verification_windows=args.max_windows, description=args.description)
    print(report.format())
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    return 0


def pack_main(argv=None) -> int:
    return _run(_pack, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(features_main())
