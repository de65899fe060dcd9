"""The trace flow with tflite-micro as the device.

tflite-micro's Python package is TFLM -- the interpreter firmware links --
compiled for the host.  This script plays a device: it runs a model's
frontend and the model itself in tflite-micro, hop by hop, and logs what a
firmware would (input PCM, feature frame, model output) with the runtime's
trace writer.  ``sed-verify`` then checks the "device" against the runtime::

    sed-export --model kws.tflite --out export/           # the .tflite firmware runs, checked in TFLM
    python examples/firmware/tflm_device.py --model export/model.tflite --audio clip.wav \\
        --preprocessor audio_preprocessor_int8.tflite --trace device.trace
    sed-verify --model kws.tflite --audio clip.wav --trace device.trace

The frontend runs in tflite-micro too when ``--preprocessor`` names a TFLM
audio preprocessor model (``audio_preprocessor_int8.tflite`` of the
micro_speech example: 30 ms of int16 in, one int8 frame out, its noise
estimates kept inside the interpreter between hops).  Without it the frames
come from the runtime's frontend (for CMSIS-DSP frontends, the reference
firmware in QEMU proves those), and only the model runs in TFLM.

``--flip HOP`` flips the low bit of one output value (at the first inference
at or after HOP), to see how a divergence is reported.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="model with metadata (.tflite from sed-export)")
    ap.add_argument("--audio", required=True, help="recording (16-bit WAV at the model's rate)")
    ap.add_argument("--trace", required=True, help="trace to write (.txt/.log: text form)")
    ap.add_argument("--preprocessor", help="TFLM audio preprocessor .tflite (frontend in tflite-micro too)")
    ap.add_argument("--flip", type=int, metavar="HOP", help="flip one output bit at the first inference at or after HOP")
    args = ap.parse_args(argv)

    from tflite_micro.python.tflite_micro import runtime

    from sed_runtime import load_model
    from sed_runtime.detector import Detector
    from sed_runtime.frontend import make_frontend
    from sed_runtime.io.trace import TraceWriter, frontend_identity
    from sed_runtime.io.wavfile import read_pcm16
    from sed_runtime.stream.feature_window import FeatureWindow
    from sed_runtime.verify import model_digest

    model = load_model(args.model)
    detector = Detector(model)  # the model's metadata: frontend spec, window and stride in frames
    spec = detector.spec
    samples, _ = read_pcm16(args.audio, spec.sample_rate_hz)
    with open(args.model, "rb") as fh:
        interpreter = runtime.Interpreter.from_bytes(fh.read(), arena_size=max(4 * model.arena_bytes, 1 << 18))

    n_hops = spec.frames_in(samples.shape[0])
    if args.preprocessor:
        frontend = runtime.Interpreter.from_file(args.preprocessor)
        frames = np.empty((n_hops, spec.bins), np.int8)
        for k in range(n_hops):
            start = k * spec.hop_samples
            frontend.set_input(samples[start:start + spec.window_samples].reshape(1, -1), 0)
            frontend.invoke()
            frames[k] = np.array(frontend.get_output(0)).reshape(-1)
        device = "tflite-micro (audio preprocessor and model)"
    else:
        frames = make_frontend(spec).process(samples).copy()
        device = "sed-runtime frontend + tflite-micro model"

    identity = dict(frontend_identity(spec))
    identity["model_sha256"] = model_digest(model.graph)
    header = {"target": getattr(spec, "target", "generic"), "device": device, "identity": identity}
    window = FeatureWindow(detector.window_frames, spec.bins, detector.stride_frames, dtype=np.int8)
    shape = tuple(model.inputs[0].shape)
    flipped = False
    with TraceWriter.open(args.trace, header) as trace:
        for k in range(n_hops):
            fresh = samples[:spec.window_samples] if k == 0 else \
                samples[spec.window_samples + (k - 1) * spec.hop_samples:][:spec.hop_samples]
            trace.write("pcm", k, fresh)
            trace.write("features", k, frames[k])
            if window.push(frames[k]):
                interpreter.set_input(window.window().reshape(shape), 0)
                interpreter.invoke()
                out = np.array(interpreter.get_output(0))
                if args.flip is not None and k >= args.flip and not flipped:
                    out.reshape(-1)[0] ^= 1
                    flipped = True
                trace.write("output", k, out)
        trace.close(n_hops)
    print(f"wrote {args.trace}: {n_hops} hops, device: {device}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
