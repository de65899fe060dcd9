"""``sed-listen`` (live, from a microphone or a file played in real time) and
``sed-detect`` (offline, many files in parallel).

Both run the same :class:`~sed_runtime.detector.Detector`; offline results
equal live results on the same samples.  Library errors become one line on
stderr and exit code 1 (``--debug`` shows the traceback); every event that
closed is written before exit, Ctrl-C included, and an event still open is
closed at the stream's end.  ``sed-detect`` reports a recording it cannot read
(missing, corrupt, empty, not audio) in one line and goes on with the others;
the exit code is then 1.  When the reader of standard output goes away
(``sed-detect ... | head``) both stop quietly (exit code 141, as SIGPIPE).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from importlib import resources
from pathlib import Path

import numpy as np

from sed_runtime.cli import _run
from sed_runtime.errors import AudioFormatError, ConfigError, DeviceError, ModelError, SedError

DEMO_CLIP = "demo_yes_no.wav"


def _load_detector(args):
    """The detector for ``--model``; a model error names the model file."""
    from sed_runtime.detector import Detector

    try:
        return Detector(args.model, decision=_decision_overrides(args), target=args.target)
    except ModelError as exc:
        if args.model in str(exc):
            raise
        raise ModelError(f"model {args.model!r}: {exc}") from exc


@contextlib.contextmanager
def _quiet_c_stderr(enabled: bool = True):
    """Meanwhile, send what C libraries print on file descriptor 2 to /dev/null; Python's ``sys.stderr`` still
    reaches the terminal.  PortAudio's ALSA code prints "Expression '...' failed in 'src/hostapi/alsa/..." lines
    when a device disappears, libmpg123 (inside libsndfile) "Note: Illegal Audio-MPEG-Header" lines while probing
    a file it cannot parse: our own message says it in one line (``--debug`` shows everything)."""
    try:
        if not enabled:
            raise ValueError
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    python_stderr = sys.stderr
    if python_stderr is sys.__stderr__:  # it writes to descriptor 2: give it its own copy
        sys.stderr = open(saved, "w", buffering=1, encoding=python_stderr.encoding, errors="backslashreplace",
                          closefd=False)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        if sys.stderr is not python_stderr:
            sys.stderr.close()
            sys.stderr = python_stderr
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _warm_up(detector) -> None:
    """Run the detector once over a window of silence, then reset it: Numba compiles (or loads its cache) now,
    not while the first seconds of a live stream pile up in the ring buffer (and overflow it)."""
    detector.process(np.zeros(int(round(detector.first_stamp_s * detector.sample_rate_hz)), np.int16))
    detector.flush()
    detector.reset()


def _open_recording(path, rate: int, channel="mix", realtime: bool = False):
    """An open FileSource for ``path``; a file without samples is refused like a corrupt one."""
    from sed_runtime.io.sources import FileSource

    # A file played in real time is not a device that can run ahead: give it a deep buffer so that a busy
    # machine delays its samples instead of dropping them (overruns would still be counted and reported).
    source = FileSource(path, rate, channel=channel, realtime=realtime, buffer_seconds=30.0 if realtime else 2.0)
    with _quiet_c_stderr():
        source.open()
    if source.frames == 0:
        source.close()
        raise AudioFormatError(f"recording {str(path)!r} holds no samples (zero-length audio); "
                               f"expected a recording to detect events in")
    return source


def _decision_overrides(args) -> dict:
    from sed_runtime.decision import load_decision_overrides

    overrides = dict(load_decision_overrides(args.decision)) if args.decision else {}
    for name in ("threshold", "off_threshold", "min_duration_ms", "merge_gap_ms", "smoothing_ms"):
        value = getattr(args, name, None)
        if value is not None:
            overrides["on_threshold" if name == "threshold" else name] = value
    return overrides


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=False, help="quantized model (.onnx or .tflite) with sed_runtime metadata")
    p.add_argument("--threshold", type=float, help="on threshold for every class (score in [0, 1])")
    p.add_argument("--off-threshold", dest="off_threshold", type=float, help="off threshold (hysteresis)")
    p.add_argument("--min-duration-ms", dest="min_duration_ms", type=float, help="drop events shorter than this")
    p.add_argument("--merge-gap-ms", dest="merge_gap_ms", type=float, help="merge events closer than this")
    p.add_argument("--smoothing-ms", dest="smoothing_ms", type=float, help="score smoothing window")
    p.add_argument("--decision", metavar="FILE", help="decision parameters (JSON or TOML) overriding the model's")
    p.add_argument("--target", choices=("generic", "dsp"), help="frontend arithmetic (default: the model's)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def _sink_for(path: str | None, fmt: str | None):
    from sed_runtime.io.sinks import open_sink

    if path is None:
        return None
    fmt = fmt or {".tsv": "tsv", ".txt": "tsv", ".csv": "csv"}.get(Path(path).suffix.lower(), "jsonl")
    return open_sink(fmt, path)


# ---------------------------------------------------------------------------
# sed-listen
# ---------------------------------------------------------------------------

class _LiveView:
    """A small terminal dashboard redrawn in place (only used when stdout is a terminal)."""

    def __init__(self, labels, thresholds, stream) -> None:
        self.labels = labels
        self.thresholds = thresholds
        self.stream = stream
        self.log: list[str] = []
        self._lines = 0
        self._last = 0.0

    def event(self, event) -> None:
        self.log.append(f"{event.onset_s:8.2f}-{event.offset_s:8.2f}s  {event.label}  peak {event.peak_score:.2f}")
        self.log = self.log[-6:]

    def draw(self, level_db: float, scores, seconds: float, overruns: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        width = 40
        lines = [f"sed-listen  {seconds:8.1f} s   overruns: {overruns}   (Ctrl-C to stop)"]
        meter = int(max(0.0, min(1.0, (level_db + 60.0) / 60.0)) * width)
        lines.append(f"{'input':>14} |{'#' * meter}{' ' * (width - meter)}| {level_db:6.1f} dBFS")
        for i, label in enumerate(self.labels):
            value = float(scores[i]) if scores is not None else 0.0
            bar = [" "] * width
            for k in range(int(max(0.0, min(1.0, value)) * width)):
                bar[k] = "="
            mark = min(width - 1, int(self.thresholds[i] * width))
            bar[mark] = "|"
            lines.append(f"{label[:14]:>14} |{''.join(bar)}| {value:4.2f}")
        lines.append("events:")
        lines.extend("  " + line for line in self.log[-6:])
        out = ("\x1b[F\x1b[2K" * self._lines) + "\n".join(lines) + "\n"
        self.stream.write(out)
        self.stream.flush()
        self._lines = len(lines)


def _listen_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sed-listen", description="Detect sound events live from a microphone "
                                "(or a file played in real time) with the firmware's arithmetic.")
    _common(p)
    p.add_argument("--device", help="input device: index or part of its name (see --list-devices)")
    p.add_argument("--list-devices", action="store_true", help="list audio input devices and exit")
    p.add_argument("--input", metavar="FILE", help="play FILE through the live path instead of a microphone "
                   "('demo' = the bundled clip of the model's label, else a keyword clip)")
    p.add_argument("--fallback", metavar="FILE",
                   help="when no microphone can be opened, play FILE instead ('demo' = as for --input)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--out", metavar="FILE", help="also write events to FILE (.tsv, .csv or .jsonl)")
    p.add_argument("--format", choices=("jsonl", "tsv", "csv"), help="format of --out (default: from its suffix)")
    p.add_argument("--realtime", dest="realtime", action="store_true", default=True, help=argparse.SUPPRESS)
    p.add_argument("--fast", dest="realtime", action="store_false",
                   help="with --input: process the file as fast as possible instead of in real time")
    return p


def _demo_path(labels=()) -> Path:
    """The bundled clip for the model's first label (``demo_<label>.wav``) when there is one, else the
    keyword clip."""
    data = resources.files("sed_runtime") / "data"
    ref = data / DEMO_CLIP
    if labels and (data / f"demo_{labels[0]}.wav").is_file():
        ref = data / f"demo_{labels[0]}.wav"
    with resources.as_file(ref) as path:
        return Path(path)


def _take_ctrl_c() -> None:
    """Ctrl-C (SIGINT) ends listening even when the parent left it ignored or blocked (a child inherits both):
    restore Python's handler and unblock the signal in this thread before the audio threads start."""
    if threading.current_thread() is not threading.main_thread():
        return  # embedded in another program's worker thread: its signals are its own
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _listen(argv) -> int:
    from sed_runtime.io.sinks import JsonlSink
    from sed_runtime.io.sources import MicrophoneSource, list_devices

    args = _listen_parser().parse_args(argv)
    _take_ctrl_c()
    if args.list_devices:
        with _quiet_c_stderr(not args.debug):  # ALSA's complaints about absent cards while PortAudio looks
            devices = list_devices()
        print(devices)
        return 0
    if not args.model:
        _listen_parser().error("--model is required")
    if args.duration is not None and args.duration <= 0:
        raise ConfigError(f"--duration {args.duration} must be > 0 seconds")
    detector = _load_detector(args)
    _warm_up(detector)
    rate = detector.sample_rate_hz

    def file_source(name: str):
        path = _demo_path(detector.labels) if name == "demo" else Path(name)
        return _open_recording(path, rate, realtime=args.realtime)

    file_sink = _sink_for(args.out, args.format)  # before the source: an unwritable --out fails first
    quiet = contextlib.ExitStack()  # C-level chatter of the sound stack, while the microphone is in use
    try:
        if args.input:
            source = file_source(args.input)
        else:
            source = MicrophoneSource(rate, device=args.device)
            quiet.enter_context(_quiet_c_stderr(not args.debug))
            try:
                source.open()
            except DeviceError as exc:
                if not args.fallback:
                    raise
                print(f"note: {exc}; playing {args.fallback} instead", file=sys.stderr)
                source = file_source(args.fallback)
    except BaseException:
        quiet.close()
        if file_sink is not None:
            file_sink.close()
        raise

    tty = sys.stdout.isatty()
    stdout_sink = None if tty else JsonlSink(sys.stdout, owns=False)
    stdout_gone = False  # the reader of stdout went away: stop (--out still gets every event up to then)
    thresholds = detector.decision.resolved.on
    view = _LiveView(detector.labels, thresholds, sys.stdout) if tty else None

    def emit(events) -> None:
        nonlocal stdout_sink, stdout_gone
        for event in events:
            if file_sink is not None:
                file_sink.write(event)
            if stdout_sink is not None:
                try:
                    stdout_sink.write(event)
                except BrokenPipeError:
                    stdout_sink, stdout_gone = None, True
            if view is not None:
                view.event(event)

    limit = None if args.duration is None else int(round(args.duration * rate))
    seen = 0
    last_scores = None
    device_error = None
    try:
        try:
            for chunk in source.chunks():
                if limit is not None and seen + chunk.shape[0] > limit:
                    chunk = chunk[: limit - seen]
                emit(detector.process(chunk))
                seen += chunk.shape[0]
                if detector.scores.shape[0]:
                    last_scores = detector.smoothed_scores[-1].copy()
                if view is not None and chunk.shape[0]:
                    rms = float(np.sqrt(np.mean(chunk.astype(np.float64) ** 2))) + 1e-9
                    view.draw(20 * np.log10(rms / 32768.0), last_scores, seen / rate, source.overruns)
                if (limit is not None and seen >= limit) or stdout_gone:
                    break
        except KeyboardInterrupt:
            pass
        except DeviceError as exc:  # the device vanished: keep what was detected, then report
            device_error = exc
    finally:
        emit(detector.flush())
        if file_sink is not None:
            file_sink.close()  # every event is on disk before the device is touched again
        try:
            source.__exit__(None, None, None)
        finally:
            quiet.close()
        if view is not None:
            view.draw(-120.0, last_scores, seen / rate, source.overruns, force=True)
    summary = source.overrun_summary()
    if summary:
        print(f"warning: {summary}", file=sys.stderr)
    if device_error is not None:
        raise device_error
    if stdout_gone:
        raise BrokenPipeError("standard output was closed")
    return 0


def listen_main(argv=None) -> int:
    return _run(_listen, argv)


# ---------------------------------------------------------------------------
# sed-detect
# ---------------------------------------------------------------------------

def _detect_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sed-detect", description="Detect sound events in recordings, offline, "
                                "with the same integers as the live path.")
    _common(p)
    p.add_argument("files", nargs="+", help="recordings (any format, rate and channel count libsndfile reads)")
    p.add_argument("--format", choices=("jsonl", "tsv", "csv"), default="jsonl", help="event format")
    p.add_argument("--out", metavar="DIR", help="write one event file per recording into DIR (default: stdout)")
    p.add_argument("--channel", default="mix", help="'mix' (default) or a channel index")
    p.add_argument("--workers", type=int, default=1, help="recordings processed in parallel (processes)")
    p.add_argument("--plot", action="store_true", help="write a PNG per recording (needs matplotlib)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _detect_one(model_path: str, path: str, overrides: dict, target, channel, plot_dir: str | None,
                progress_queue=None) -> dict:
    """Run the detector over one file; return its events (as dicts) and statistics."""
    from sed_runtime.detector import Detector

    detector = Detector(model_path, decision=overrides, target=target)
    rate = detector.sample_rate_hz
    events = []
    scores = []
    seen = 0
    error = None
    t0 = time.perf_counter()
    with _open_recording(path, rate, channel=channel) as source:
        try:
            for chunk in source.chunks():
                events += detector.process(chunk)
                if plot_dir:
                    scores.append(detector.smoothed_scores.copy())
                seen += chunk.shape[0]
                if progress_queue is not None:
                    progress_queue(chunk.shape[0] / rate)
        except SedError as exc:  # e.g. truncated mid-file: keep what was detected before, then report
            error = exc
    events += detector.flush()
    elapsed = time.perf_counter() - t0
    result = {"file": path, "seconds": seen / rate, "elapsed": elapsed,
              "events": [e.to_dict() for e in events], "error": error}
    if plot_dir:
        result["plot"] = _plot(path, detector, np.concatenate(scores) if scores else None, events, plot_dir)
    return result


def _plot(path: str, detector, smoothed, events, out_dir: str) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ConfigError("--plot needs matplotlib: pip install 'sed-runtime[plot]'") from exc
    from sed_runtime.frontend import make_frontend
    from sed_runtime.io.sources import FileSource

    frontend = make_frontend(detector.spec)
    rate = detector.sample_rate_hz
    frames = []
    with FileSource(path, rate, channel="mix") as source:
        for chunk in source.chunks():
            frames.append(frontend.process(chunk).copy())
    features = np.concatenate(frames) if frames else np.zeros((0, detector.spec.bins))
    fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(12, 6), sharex=True)
    hop_s = detector.spec.hop_samples / rate
    ax0.imshow(features.T.astype(float), origin="lower", aspect="auto",
               extent=(0, features.shape[0] * hop_s, 0, features.shape[1]))
    ax0.set_ylabel("feature bin")
    if smoothed is not None and smoothed.size:
        t = detector.first_stamp_s + np.arange(smoothed.shape[0]) * detector.step_s
        for i, label in enumerate(detector.labels):
            (line,) = ax1.plot(t, smoothed[:, i], label=label)
            ax1.axhline(detector.decision.resolved.on[i], color=line.get_color(), linestyle="--", linewidth=0.8)
    for event in events:
        ax1.axvspan(event.onset_s, event.offset_s, alpha=0.2, color="tab:red")
        ax1.text(event.onset_s, 1.02, event.label, fontsize=7)
    ax1.set_ylim(0, 1.1)
    ax1.set_xlabel("seconds")
    ax1.set_ylabel("smoothed score")
    ax1.legend(loc="upper right", fontsize=7)
    out = Path(out_dir) / (Path(path).stem + ".png")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return str(out)


class _Progress:
    """A one-line progress bar on stderr (seconds of audio done / total)."""

    def __init__(self, total_s: float, enabled: bool) -> None:
        self.total = max(total_s, 1e-9)
        self.done = 0.0
        self.enabled = enabled and sys.stderr.isatty()
        self._last = 0.0
        self._t0 = time.monotonic()

    def add(self, seconds: float) -> None:
        self.done += seconds
        now = time.monotonic()
        if self.enabled and (now - self._last > 0.2 or self.done >= self.total):
            self._last = now
            frac = min(1.0, self.done / self.total)
            speed = self.done / max(now - self._t0, 1e-9)
            bar = "#" * int(frac * 30)
            sys.stderr.write(f"\r[{bar:<30}] {100 * frac:5.1f}%  {self.done:8.1f}/{self.total:.1f} s audio  "
                             f"{speed:7.1f}x real time")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def _audio_seconds(path: str) -> float:
    import soundfile as sf

    try:
        with _quiet_c_stderr():
            info = sf.info(path)
        return info.frames / info.samplerate
    except Exception:  # noqa: BLE001 - unreadable files are reported by the worker
        return 0.0


def _detect(argv) -> int:
    from sed_runtime.io.sinks import open_sink

    args = _detect_parser().parse_args(argv)
    if not args.model:
        _detect_parser().error("--model is required")
    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers} must be >= 1")
    if args.channel != "mix" and not args.channel.isdigit():
        raise ConfigError(f"--channel {args.channel!r} must be 'mix' or a channel index >= 0")
    channel = args.channel if args.channel == "mix" else int(args.channel)
    overrides = _decision_overrides(args)
    # load once in this process so a bad model fails before any work starts; an unreadable
    # recording is reported in the end and the others are processed
    _load_detector(args)
    out_dir = Path(args.out) if args.out else None
    if out_dir is not None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--out {args.out!r} must be a directory one event file per recording is written "
                              f"into ({exc.strerror or exc})") from exc
    plot_dir = str(out_dir or Path.cwd()) if args.plot else None
    show_progress = not args.quiet and sys.stderr.isatty()
    progress = _Progress(sum(_audio_seconds(p) for p in args.files) if show_progress else 0.0, show_progress)
    stdout_sink = open_sink(args.format) if out_dir is None else None
    failures = []

    def failed(path: str, exc: BaseException) -> None:
        message = str(exc)
        failures.append(message if path in message else f"{path}: {message}")

    def write(result) -> None:
        from sed_runtime.decision import Event

        events = [Event(e["label"], e["onset"], e["offset"], e["peak"], e["mean"], -1) for e in result["events"]]
        if out_dir is not None:
            suffix = {"jsonl": ".jsonl", "tsv": ".tsv", "csv": ".csv"}[args.format]
            with open_sink(args.format, out_dir / (Path(result["file"]).stem + suffix)) as sink:
                for event in events:
                    sink.write(event)
        else:
            for event in events:
                if args.format == "jsonl":
                    stdout_sink.write(event, file=result["file"])
                else:
                    stdout_sink.write(event)

    def done(result) -> None:
        write(result)
        if result["error"] is not None:
            failed(result["file"], result["error"])

    try:
        if args.workers == 1 or len(args.files) == 1:
            for path in args.files:
                try:
                    done(_detect_one(args.model, path, overrides, args.target, channel, plot_dir, progress.add))
                except SedError as exc:
                    failed(path, exc)
        else:
            pool = ProcessPoolExecutor(max_workers=min(args.workers, os.cpu_count() or 1),
                                       initializer=_ignore_sigint)
            try:
                futures = {pool.submit(_detect_one, args.model, p, overrides, args.target, channel, plot_dir): p
                           for p in args.files}
                for future in as_completed(futures):
                    try:
                        result = future.result()
                    except SedError as exc:
                        failed(futures[future], exc)
                        continue
                    progress.add(result["seconds"])
                    done(result)
            finally:  # Ctrl-C or a closed stdout: do not start the recordings still queued
                pool.shutdown(wait=True, cancel_futures=True)
    finally:
        progress.close()
    for line in failures:
        print(f"error: {line}", file=sys.stderr)
    return 1 if failures else 0


def _ignore_sigint() -> None:
    """Worker processes leave Ctrl-C to the main process, which stops the pool (no traceback per worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def detect_main(argv=None) -> int:
    return _run(_detect, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(detect_main())

