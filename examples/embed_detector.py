"""Embedding the detector in an application.

The application owns its audio: here a callback that receives int16 blocks --
from a real microphone through sounddevice when one exists, else from the
bundled demo clip paced in real time.  The callback only copies each block
into a queue (never compute in an audio callback).  A worker thread runs the
Detector; events reach the application's main thread through a second queue.
Ctrl-C (or the end of the clip) shuts everything down cleanly: the worker
flushes the detector so an event still open is closed and delivered.

Run:  python examples/embed_detector.py [--model models/yes_no.tflite] [--seconds 10]
"""

from __future__ import annotations

import argparse
import queue
import threading
import time
from importlib import resources

import numpy as np
import soundfile as sf

from sed_runtime.detector import Detector

BLOCK = 320  # 20 ms at 16 kHz


def start_audio(rate: int, on_block, stop: threading.Event) -> str:
    """Start delivering int16 blocks to ``on_block``; returns a description of the audio source."""
    try:
        import sounddevice as sd

        stream = sd.InputStream(samplerate=rate, channels=1, dtype="int16", blocksize=BLOCK,
                                callback=lambda indata, frames, t, status: on_block(indata[:, 0].copy()))
        stream.start()
        threading.Thread(target=lambda: (stop.wait(), stream.stop(), stream.close()), daemon=True).start()
        return "microphone"
    except Exception:  # noqa: BLE001 - no PortAudio, no device: fall back to the demo clip
        pass
    with resources.as_file(resources.files("sed_runtime") / "data" / "demo_yes_no.wav") as path:
        clip, clip_rate = sf.read(str(path), dtype="int16")
    assert clip_rate == rate, "the demo clip is at the keyword model's rate"

    def play() -> None:
        t0 = time.monotonic()
        for i, pos in enumerate(range(0, clip.shape[0], BLOCK)):
            if stop.is_set():
                break
            on_block(clip[pos:pos + BLOCK].copy())
            time.sleep(max(0.0, t0 + (i + 1) * BLOCK / rate - time.monotonic()))
        on_block(None)  # end of the clip

    threading.Thread(target=play, daemon=True).start()
    return "demo clip (no microphone)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/yes_no.tflite")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    audio_blocks: queue.Queue = queue.Queue(maxsize=500)
    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    detector = Detector(args.model, on_event=events.put)  # events are queued for the main thread

    def on_block(block) -> None:  # the audio callback: copy and hand over, nothing else
        try:
            audio_blocks.put_nowait(block)
        except queue.Full:
            pass  # a real application would count this overrun

    def worker() -> None:
        while not stop.is_set():
            try:
                block = audio_blocks.get(timeout=0.1)
            except queue.Empty:
                continue
            if block is None:
                break
            detector.process(np.ascontiguousarray(block, dtype=np.int16))
        detector.flush()  # close an event still open; delivered through on_event
        events.put(None)

    source = start_audio(detector.sample_rate_hz, on_block, stop)
    print(f"listening on the {source} with labels {detector.labels}; Ctrl-C to stop")
    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    deadline = time.monotonic() + args.seconds
    try:
        while True:
            try:
                event = events.get(timeout=max(0.0, min(0.2, deadline - time.monotonic())))
            except queue.Empty:
                if time.monotonic() >= deadline:
                    break
                continue
            if event is None:
                break
            print(f"{event.label:>8}  {event.onset_s:6.2f}-{event.offset_s:6.2f} s  peak {event.peak_score:.2f}")
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        thread.join(timeout=2.0)
        while not events.empty():  # events flushed during shutdown
            event = events.get()
            if event is not None:
                print(f"{event.label:>8}  {event.onset_s:6.2f}-{event.offset_s:6.2f} s  peak {event.peak_score:.2f}")


if __name__ == "__main__":
    main()
