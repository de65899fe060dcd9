"""Audio sources: int16 mono chunks at the model's rate from an array, a file or a microphone.

Every source has the same shape::

    with source:                      # open(): every check, every allocation, every error
        for chunk in source.chunks(): # 1-D int16 arrays at source.sample_rate_hz
            ...
    source.overruns                   # overflow events (0 unless the consumer fell behind a live source)

A chunk may be a view of an internal buffer: it is valid until the next
iteration (copy it to keep it).  Chunk lengths vary; the rest of the pipeline
is chunking-invariant.  ``chunks()`` on a source that is not open opens it
for the duration of the loop.

Rates: a source delivers samples at its input rate (an array's, a file's, a
device's) and resamples them to ``sample_rate_hz`` with
:class:`~sed_runtime.stream.resample.Resampler` (deterministic integer
polyphase FIR, time-aligned, the same integers in any chunking) when the two
differ.

Live sources (:class:`MicrophoneSource`, and :class:`FileSource` with
``realtime=True``) share one path: a producer (the PortAudio callback, or a
thread reading the file at wall-clock pace) only copies samples into a
fixed-capacity :class:`~sed_runtime.stream.ring_buffer.RingBuffer` and counts
overruns; the consumer (``chunks()``, on the caller's thread) reads the ring
buffer, resamples, yields, and is where every error is raised.  When the
consumer falls behind by more than the buffer holds, the newest samples are
dropped: counted in :attr:`overruns` / :attr:`dropped_samples`, summarised by
:meth:`overrun_summary`, never silent (stream time then runs behind wall time
by the dropped duration).

Microphone errors are :class:`~sed_runtime.errors.DeviceError` with one line
that says what to do (``--list-devices``, ``--input FILE``).  A device that
disappears mid-stream (PortAudio ends the stream, or no audio arrives for
``stall_timeout_s``) is noticed on the consumer side: everything received
before is yielded first, then the error is raised.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from sed_runtime.errors import AudioFormatError, ConfigError, DeviceError
from sed_runtime.io.wavfile import (
    _FLOAT_PCM_SUBTYPES,
    _FLOAT_SUBTYPES,
    FLOAT_PEAK_LIMIT,
    _float_to_pcm16,
    _reason,
    check_complete,
)
from sed_runtime.stream.resample import Resampler
from sed_runtime.stream.ring_buffer import RingBuffer

__all__ = [
    "Source", "ArraySource", "FileSource", "MicrophoneSource", "list_devices", "find_device", "mix_to_mono",
]

_NO_DEVICE_HINT = "list the devices with `--list-devices`, or read a file with `--input FILE`"


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name}={value!r} must be a positive integer")
    return int(value)


def _positive_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not value > 0:
        raise ConfigError(f"{name}={value!r} must be a positive number")
    return float(value)


def mix_to_mono(block: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Integer average of the channels of an int16 ``[frames, channels]`` block.

    ``sum / channels`` rounded half away from zero (the sum is exact in
    int32; the result always fits int16).
    """
    channels = block.shape[1]
    total = block.sum(axis=1, dtype=np.int32)
    half = channels // 2
    mixed = np.where(total >= 0, (total + half) // channels, -((half - total) // channels))
    if out is None:
        return mixed.astype(np.int16)
    out[:] = mixed
    return out


class Source:
    """Common interface: ``open``/``close`` (or ``with``), ``chunks()``, ``sample_rate_hz``, ``overruns``."""

    sample_rate_hz: int  # rate of the chunks delivered
    input_rate_hz: int  # rate the audio arrives at (array, file, device)

    def __init__(self) -> None:
        self._opened = False
        self._resampler: Resampler | None = None

    def open(self) -> "Source":
        self._opened = True
        return self

    def close(self) -> None:
        self._opened = False

    def __enter__(self) -> "Source":
        return self.open()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        try:
            self.close()
        except Exception:  # an error is already on its way out; do not mask it
            pass

    def chunks(self) -> Iterator[np.ndarray]:
        """Yield 1-D int16 chunks at :attr:`sample_rate_hz` until the source ends."""
        if self._opened:
            yield from self._chunks()
            return
        with self:
            yield from self._chunks()

    def _chunks(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def _make_resampler(self) -> None:
        if self.input_rate_hz != self.sample_rate_hz:
            self._resampler = Resampler(self.input_rate_hz, self.sample_rate_hz).prepare()
        else:
            self._resampler = None

    # overrun bookkeeping: offline sources never overrun
    @property
    def overruns(self) -> int:
        """Overflow events: buffer overflows (the consumer fell behind) plus overflows the device reported."""
        return 0

    @property
    def dropped_samples(self) -> int:
        """Samples (at :attr:`input_rate_hz`) dropped because the ring buffer was full."""
        return 0

    def overrun_summary(self) -> str | None:
        """One line describing the overruns so far, or None when there were none."""
        return None


class ArraySource(Source):
    """An int16 mono array at ``input_rate_hz``, delivered in chunks of ``chunk_samples`` (input rate).

    ``sample_rate_hz`` (default: the array's rate) is the rate delivered;
    the array is resampled when it differs.  Chunks are views of the array
    (no resampling) or of the resampler's buffer.
    """

    def __init__(self, samples: np.ndarray, input_rate_hz: int, sample_rate_hz: int | None = None, *,
                 chunk_samples: int = 4096) -> None:
        super().__init__()
        if not isinstance(samples, np.ndarray) or samples.dtype != np.int16 or samples.ndim != 1:
            raise AudioFormatError(
                f"ArraySource expects a 1-D int16 array of mono samples, got {type(samples).__name__} "
                f"dtype={getattr(samples, 'dtype', None)} ndim={getattr(samples, 'ndim', None)}"
            )
        self.samples = samples
        self.input_rate_hz = _positive_int("input_rate_hz", input_rate_hz)
        self.sample_rate_hz = self.input_rate_hz if sample_rate_hz is None else \
            _positive_int("sample_rate_hz", sample_rate_hz)
        self.chunk_samples = _positive_int("chunk_samples", chunk_samples)

    def open(self) -> "ArraySource":
        self._make_resampler()
        return super().open()

    def _chunks(self) -> Iterator[np.ndarray]:
        resampler = self._resampler
        if resampler is not None:
            resampler.reset()
        step = self.chunk_samples
        for pos in range(0, self.samples.shape[0], step):
            piece = self.samples[pos:pos + step]
            if resampler is None:
                yield piece
            else:
                out = resampler.process(piece)
                if out.shape[0]:
                    yield out
        if resampler is not None:
            tail = resampler.flush()
            if tail.shape[0]:
                yield tail


class _LiveSource(Source):
    """The ring-buffer path shared by the microphone and real-time file playback.

    A producer calls :meth:`_deliver` (only copies and counts); the consumer
    loop in :meth:`_live_chunks` drains the ring buffer on the caller's thread.
    """

    def __init__(self, buffer_seconds: float) -> None:
        super().__init__()
        self.buffer_seconds = _positive_float("buffer_seconds", buffer_seconds)
        self._ring: RingBuffer | None = None
        self._device_overflows = 0  # producer-owned
        self._deliveries = 0  # producer-owned: callbacks / blocks delivered

    def _make_ring(self) -> None:
        self._ring = RingBuffer(max(1, int(round(self.buffer_seconds * self.input_rate_hz))))
        self._device_overflows = 0
        self._deliveries = 0

    def _deliver(self, block: np.ndarray) -> None:
        """Producer side: copy one block of int16 mono samples into the ring buffer."""
        self._ring.write(block)
        self._deliveries += 1

    # -- subclasses: the producer's state as seen from the consumer
    def _producer_ended(self) -> bool:
        """True once the producer has delivered its last sample (end of a file)."""
        return False

    def _producer_problem(self) -> str | None:
        """A one-line description of a failed producer, or None while it is healthy."""
        return None

    def _poll_seconds(self) -> float:
        return 0.005

    def _live_chunks(self) -> Iterator[np.ndarray]:
        ring, resampler = self._ring, self._resampler
        if resampler is not None:
            resampler.reset()
        while True:
            # Read the producer's state before the fill level: a producer publishes
            # its last samples before it reports that it ended or failed.
            ended = self._producer_ended()
            problem = None if ended else self._producer_problem()
            n = ring.readable()
            if n:
                view = ring.peek(n)
                if resampler is None:
                    yield view
                    ring.consume(n)
                else:
                    out = resampler.process(view)
                    ring.consume(n)
                    if out.shape[0]:
                        yield out
                continue
            if ended or problem is not None:
                break
            time.sleep(self._poll_seconds())
        if resampler is not None:
            tail = resampler.flush()
            if tail.shape[0]:
                yield tail
        if problem is not None:
            raise DeviceError(problem)

    # -- overruns
    @property
    def overruns(self) -> int:
        ring = self._ring
        return (ring.overrun_events if ring is not None else 0) + self._device_overflows

    @property
    def dropped_samples(self) -> int:
        return self._ring.overrun_samples if self._ring is not None else 0

    @property
    def device_overflows(self) -> int:
        """Input overflows the device (PortAudio) reported: audio lost before it reached us."""
        return self._device_overflows

    def overrun_summary(self) -> str | None:
        if self.overruns == 0:
            return None
        parts = []
        ring = self._ring
        if ring is not None and ring.overrun_events:
            parts.append(
                f"{ring.overrun_events} buffer overrun(s): {ring.overrun_samples} samples "
                f"({ring.overrun_samples / self.input_rate_hz:.3f} s) dropped because processing fell behind the "
                f"{self.buffer_seconds:g} s buffer"
            )
        if self._device_overflows:
            parts.append(f"{self._device_overflows} input overflow(s) reported by the audio device")
        return "; ".join(parts)


class FileSource(_LiveSource):
    """A sound file (anything libsndfile reads: WAV, FLAC, OGG, ...) as int16 mono at ``sample_rate_hz``.

    Samples are converted to int16 exactly as :func:`~sed_runtime.io.wavfile.read_pcm16`
    converts them (integer PCM by libsndfile, top 16 bits; float full scale
    1.0 = 32768, rounded half to even, saturated; float files peaking above
    ``FLOAT_PEAK_LIMIT`` refused), and the same incomplete files are refused.

    ``channel``: ``None`` for a mono file (a multi-channel file is then
    refused), an index to pick one channel, or ``"mix"`` for the integer
    average of all channels (:func:`mix_to_mono`).  ``sample_rate_hz``
    (default: the file's rate) is the rate delivered; the file is resampled
    when it differs.

    ``realtime=True`` plays the file at wall-clock pace through the same ring
    buffer and consumer path as a microphone (blocks of ``block_ms``), for
    listening to a file as if live; otherwise chunks of ``chunk_samples``
    (file rate) are read as fast as they are consumed.  Both give the same
    samples.
    """

    def __init__(self, path: str | Path, sample_rate_hz: int | None = None, channel: int | str | None = None, *,
                 chunk_samples: int = 4096, realtime: bool = False, block_ms: float = 10.0,
                 buffer_seconds: float = 2.0) -> None:
        super().__init__(buffer_seconds)
        self.path = Path(path)
        if channel is not None and channel != "mix" and (
                isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) or channel < 0):
            raise ConfigError(f"channel={channel!r} must be None, a channel index >= 0, or 'mix'")
        self.channel = channel
        self._target_rate = None if sample_rate_hz is None else _positive_int("sample_rate_hz", sample_rate_hz)
        self.chunk_samples = _positive_int("chunk_samples", chunk_samples)
        self.realtime = bool(realtime)
        self.block_ms = _positive_float("block_ms", block_ms)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._ended = False
        self._failure: BaseException | None = None

    # ------------------------------------------------------------------ open: every check
    def open(self) -> "FileSource":
        import soundfile as sf  # deferred: keeps `import sed_runtime` light

        path, name = self.path, repr(str(self.path))
        self._name = name
        if not path.exists():
            raise AudioFormatError(f"audio file {name} does not exist")
        if path.is_dir():
            raise AudioFormatError(f"{name} is a directory; expected an audio file")
        try:
            info = sf.info(str(path))
        except (RuntimeError, sf.LibsndfileError) as exc:
            raise AudioFormatError(
                f"cannot read {name} as audio ({_reason(exc)}); expected a sound file libsndfile decodes "
                f"(WAV, FLAC, OGG, ...)"
            ) from exc
        if info.channels > 1 and self.channel is None:
            raise AudioFormatError(
                f"{name} has {info.channels} channels; expected mono (pick one with channel=0..{info.channels - 1}, "
                f"or mix them with channel='mix')"
            )
        if isinstance(self.channel, (int, np.integer)) and self.channel >= info.channels:
            raise AudioFormatError(
                f"channel={self.channel} does not exist in {name}, which has {info.channels} channel(s)"
            )
        check_complete(path, info, name)
        self.info = info
        self.frames = int(info.frames)
        self.channels = int(info.channels)
        self.input_rate_hz = int(info.samplerate)
        self.sample_rate_hz = self.input_rate_hz if self._target_rate is None else self._target_rate
        self._is_float = info.subtype in _FLOAT_SUBTYPES
        if info.subtype in _FLOAT_PCM_SUBTYPES:
            self._check_float_file()
        self._make_resampler()
        if self.realtime:
            self._make_ring()
            self._ended = False
            self._failure = None
            self._stop.clear()
        return super().open()

    def _check_float_file(self) -> None:
        """A float file is checked whole before streaming (finite, peak within FLOAT_PEAK_LIMIT)."""
        peak = 0.0
        for block in self._blocks(convert=False):
            if not np.isfinite(block).all():
                raise AudioFormatError(
                    f"{self._name} contains NaN or infinite samples; expected finite float samples in [-1, 1]"
                )
            if block.size:
                peak = max(peak, float(np.abs(block).max()))
        if peak > FLOAT_PEAK_LIMIT:
            raise AudioFormatError(
                f"{self._name} is a float file with peak {peak:g}; expected samples in [-1, 1] (full scale 1.0; "
                f"at most {FLOAT_PEAK_LIMIT:g} accepted and saturated)"
            )

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        super().close()

    # ------------------------------------------------------------------ reading
    def _blocks(self, convert: bool = True, frames: int | None = None) -> Iterator[np.ndarray]:
        """The file in blocks: int16 mono (convert) or as decoded ([frames, channels], float or int16)."""
        import soundfile as sf

        frames = frames or self.chunk_samples
        dtype = "float64" if self._is_float else "int16"
        buffer = np.zeros((frames, self.channels), dtype)
        mono = np.zeros(frames, np.int16)
        read = 0
        try:
            with sf.SoundFile(str(self.path)) as fh:
                while True:
                    block = fh.read(frames, dtype=dtype, always_2d=True, out=buffer)
                    n = block.shape[0]
                    if n == 0:
                        break
                    read += n
                    yield self._to_mono(block, mono[:n]) if convert else block
                    if n < frames:
                        break
        except (RuntimeError, sf.LibsndfileError) as exc:
            raise AudioFormatError(
                f"cannot decode {self._name} ({_reason(exc)}); expected a complete, valid {self.info.format} file"
            ) from exc
        if self.frames and read < self.frames:
            raise AudioFormatError(
                f"{self._name} is truncated: its header announces {self.frames} frames, only {read} could be read"
            )

    def _to_mono(self, block: np.ndarray, out: np.ndarray) -> np.ndarray:
        if self._is_float:
            block = _float_to_pcm16(block, self._name, check_peak=False)  # peak checked at open()
        if self.channel == "mix" and block.shape[1] > 1:
            return mix_to_mono(block, out)
        out[:] = block[:, 0 if self.channel in (None, "mix") else self.channel]
        return out

    def _chunks(self) -> Iterator[np.ndarray]:
        if self.realtime:
            yield from self._realtime_chunks()
            return
        resampler = self._resampler
        if resampler is not None:
            resampler.reset()
        for block in self._blocks():
            if resampler is None:
                yield block
            else:
                out = resampler.process(block)
                if out.shape[0]:
                    yield out
        if resampler is not None:
            tail = resampler.flush()
            if tail.shape[0]:
                yield tail

    # ------------------------------------------------------------------ real time
    def _realtime_chunks(self) -> Iterator[np.ndarray]:
        if self._thread is not None:
            raise ConfigError("chunks() of a realtime FileSource is already running; open it again to replay")
        self._thread = threading.Thread(target=self._play, name="sed-file-player", daemon=True)
        self._thread.start()
        yield from self._live_chunks()
        if self._failure is not None:
            raise self._failure

    def _play(self) -> None:
        """Producer thread: deliver blocks at wall-clock pace, as an audio callback would."""
        frames = max(1, int(round(self.input_rate_hz * self.block_ms / 1000.0)))
        period = frames / self.input_rate_hz
        start = time.monotonic()
        try:
            for k, block in enumerate(self._blocks(frames=frames)):
                delay = start + (k + 1) * period - time.monotonic()  # a block is delivered once it has "played"
                if delay > 0 and self._stop.wait(delay):
                    return
                if self._stop.is_set():
                    return
                self._deliver(block)
        except BaseException as exc:  # reported by the consumer, not in this thread
            self._failure = exc
        finally:
            self._ended = True

    def _producer_ended(self) -> bool:
        return self._ended

    def _poll_seconds(self) -> float:
        return min(0.005, self.block_ms / 2000.0)


# ---------------------------------------------------------------------------- microphone
def _import_sounddevice():
    """``import sounddevice``, with a missing PortAudio library turned into one clear DeviceError."""
    try:
        import sounddevice
    except OSError as exc:  # sounddevice raises OSError when libportaudio cannot be loaded
        raise DeviceError(
            f"cannot use a microphone: the PortAudio library is not available ({exc}); install it "
            f"(Debian/Ubuntu: apt-get install libportaudio2), or read a file with `--input FILE`"
        ) from exc
    except ImportError as exc:
        raise DeviceError(
            f"cannot use a microphone: the sounddevice package is not installed ({exc}); "
            f"`pip install sounddevice`, or read a file with `--input FILE`"
        ) from exc
    return sounddevice


def _query(sd, *args, **kwargs):
    try:
        return sd.query_devices(*args, **kwargs)
    except sd.PortAudioError as exc:
        raise DeviceError(f"cannot query the audio devices ({exc}); {_NO_DEVICE_HINT}") from exc


def _input_devices(sd) -> list[tuple[int, dict]]:
    return [(index, info) for index, info in enumerate(_query(sd)) if info["max_input_channels"] > 0]


def _default_input_index(sd) -> int:
    try:
        default = sd.default.device[0]
    except (TypeError, IndexError, KeyError):
        return -1
    if isinstance(default, str):
        return -1
    return -1 if default is None else int(default)


def _hostapi_name(sd, info: dict) -> str:
    try:
        return sd.query_hostapis(info["hostapi"])["name"]
    except Exception:  # a host API name is decoration only
        return "?"


def _candidates(devices: list[tuple[int, dict]]) -> str:
    return ", ".join(f"[{index}] {info['name']}" for index, info in devices)


def list_devices() -> str:
    """The audio input devices PortAudio sees, one per line (``*`` marks the default), for ``--list-devices``."""
    sd = _import_sounddevice()
    devices = _input_devices(sd)
    if not devices:
        return ("No audio input device found (PortAudio sees none with input channels). "
                "Check that a microphone is connected and the sound server is running, or read a file with "
                "`--input FILE`.")
    default = _default_input_index(sd)
    lines = ["Audio input devices (use --device INDEX or part of the name):"]
    for index, info in devices:
        mark = "*" if index == default else " "
        lines.append(
            f"{mark} [{index}] {info['name']} ({_hostapi_name(sd, info)}; {info['max_input_channels']} input "
            f"channel(s), default rate {info['default_samplerate']:g} Hz)"
        )
    return "\n".join(lines)


def find_device(spec: int | str | None = None) -> int:
    """PortAudio index of the input device ``spec``: an index, a case-insensitive part of its name, or None (default).

    A name matching several devices is ambiguous unless exactly one matches
    it entirely.  Raises :class:`DeviceError` (one line, with the
    candidates) when nothing or more than one device matches, or when there
    is no input device at all.
    """
    sd = _import_sounddevice()
    devices = _input_devices(sd)
    if not devices:
        raise DeviceError(f"no microphone: PortAudio finds no audio input device; {_NO_DEVICE_HINT}")
    listing = f"input devices: {_candidates(devices)} (see `--list-devices`)"
    by_index = dict(devices)
    if spec is None:
        index = _default_input_index(sd)
        if index not in by_index:
            raise DeviceError(f"no default input device; choose one with `--device`; {listing}")
        return index
    if isinstance(spec, bool) or not isinstance(spec, (int, np.integer, str)):
        raise ConfigError(f"device={spec!r} must be a device index or part of a device name")
    if isinstance(spec, str) and spec.strip().isdigit():
        spec = int(spec.strip())
    if isinstance(spec, (int, np.integer)):
        index = int(spec)
        if index in by_index:
            return index
        all_devices = _query(sd)
        if 0 <= index < len(all_devices):
            raise DeviceError(f"device {index} ({all_devices[index]['name']!r}) has no input channels; {listing}")
        raise DeviceError(f"there is no device {index}; {listing}")
    wanted = spec.strip().lower()
    if not wanted:
        raise DeviceError(f"device name is empty; {listing}")
    matches = [(index, info) for index, info in devices if wanted in info["name"].lower()]
    if len(matches) == 1:
        return matches[0][0]
    exact = [(index, info) for index, info in matches if info["name"].strip().lower() == wanted]
    if len(exact) == 1:
        return exact[0][0]
    if not matches:
        raise DeviceError(f"no input device matches {spec!r}; {listing}")
    raise DeviceError(
        f"device {spec!r} is ambiguous: it matches {_candidates(matches)}; give the index or more of the name"
    )


class MicrophoneSource(_LiveSource):
    """Live int16 audio from an input device through PortAudio (``sounddevice``, imported on open).

    ``device``: None (the default input device), an index, or part of a
    device name (see :func:`find_device`).  The stream is opened 16-bit at
    ``sample_rate_hz``; when the device refuses that rate it is opened at the
    device's default rate and resampled here (:attr:`input_rate_hz` tells
    which), and a device that refuses mono is opened in stereo and its first
    channel used.  ``blocksize`` is the callback size in frames (default
    10 ms at the device rate); ``buffer_seconds`` the ring buffer's capacity;
    ``stall_timeout_s`` how long without audio counts as a lost device.

    The callback only copies into the ring buffer and counts overruns
    (including PortAudio's ``input_overflow``); all checks and errors happen
    in :meth:`open` and in ``chunks()`` on the caller's thread.
    """

    def __init__(self, sample_rate_hz: int, device: int | str | None = None, *, blocksize: int | None = None,
                 buffer_seconds: float = 2.0, stall_timeout_s: float = 3.0, latency: str | float | None = None) -> None:
        super().__init__(buffer_seconds)
        self.sample_rate_hz = _positive_int("sample_rate_hz", sample_rate_hz)
        if device is not None and (isinstance(device, bool) or not isinstance(device, (int, np.integer, str))):
            raise ConfigError(f"device={device!r} must be None, a device index or part of a device name")
        self.device = device
        self.blocksize = None if blocksize is None else _positive_int("blocksize", blocksize)
        self.stall_timeout_s = _positive_float("stall_timeout_s", stall_timeout_s)
        self.latency = latency
        self._stream = None
        self._stream_finished = False  # set by PortAudio's finished callback
        self._closing = False

    # ------------------------------------------------------------------ open
    def open(self) -> "MicrophoneSource":
        if self._stream is not None:
            raise ConfigError("the microphone is already open")
        sd = _import_sounddevice()
        index = find_device(self.device)
        info = _query(sd, index)
        self.device_index = index
        self.device_name = str(info["name"])
        channels, rate = self._choose_settings(sd, index, info)
        self.input_rate_hz = rate
        self.device_channels = channels
        self._make_ring()
        self._make_resampler()
        blocksize = self.blocksize or max(1, rate // 100)
        self._stream_finished = False
        self._closing = False
        try:
            stream = sd.InputStream(
                samplerate=rate, blocksize=blocksize, device=index, channels=channels, dtype="int16",
                latency=self.latency, callback=self._callback, finished_callback=self._on_finished,
            )
        except (sd.PortAudioError, ValueError) as exc:
            raise DeviceError(f"cannot open input device {self._label()} at {rate} Hz ({exc}); {_NO_DEVICE_HINT}") \
                from exc
        try:
            stream.start()
        except sd.PortAudioError as exc:
            stream.close(ignore_errors=True)
            raise DeviceError(f"cannot start input device {self._label()} ({exc}); {_NO_DEVICE_HINT}") from exc
        self._stream = stream
        self._seen_deliveries = 0
        self._last_progress = time.monotonic()
        return super().open()

    def _label(self) -> str:
        return f"[{self.device_index}] {self.device_name!r}"

    def _choose_settings(self, sd, index: int, info: dict) -> tuple[int, int]:
        """(channels, rate): mono at the model rate if the device takes it, else its default rate, else stereo."""
        native = int(round(float(info["default_samplerate"])))
        channel_options = [1] + ([2] if info["max_input_channels"] >= 2 else [])
        rate_options = [self.sample_rate_hz] + ([native] if native != self.sample_rate_hz and native > 0 else [])
        refusals = []
        for channels in channel_options:
            for rate in rate_options:
                try:
                    sd.check_input_settings(device=index, channels=channels, dtype="int16", samplerate=rate)
                except (sd.PortAudioError, ValueError) as exc:
                    refusals.append(f"{channels} ch at {rate} Hz: {exc}")
                    continue
                return channels, rate
        raise DeviceError(
            f"input device [{index}] {info['name']!r} refuses 16-bit input ({'; '.join(refusals)}); "
            f"choose another with `--device` ({_NO_DEVICE_HINT})"
        )

    def close(self) -> None:
        stream, self._stream = self._stream, None
        self._closing = True
        super().close()
        if stream is None:
            return
        sd = _import_sounddevice()
        try:
            stream.abort()  # capture: nothing to drain; what was received is in the ring buffer
            stream.close()
        except sd.PortAudioError as exc:
            stream.close(ignore_errors=True)
            raise DeviceError(f"cannot close input device {self._label()} ({exc})") from exc

    # ------------------------------------------------------------------ producer (PortAudio's thread)
    def _callback(self, indata, frames, time_info, status) -> None:
        if status and status.input_overflow:
            self._device_overflows += 1
        self._deliver(indata[:, 0])

    def _on_finished(self) -> None:
        self._stream_finished = True

    # ------------------------------------------------------------------ consumer checks
    def _producer_problem(self) -> str | None:
        if self._closing:
            return None
        if self._stream_finished:
            return (f"the input device {self._label()} stopped: PortAudio ended the stream (was it unplugged?); "
                    f"the audio received before was processed")
        stream = self._stream
        try:
            active = stream is not None and stream.active
        except Exception as exc:  # PortAudio cannot even tell: the device is gone
            return (f"the input device {self._label()} failed ({exc}); the audio received before was processed")
        if not active:
            return (f"the input device {self._label()} stopped (was it unplugged?); "
                    f"the audio received before was processed")
        now = time.monotonic()
        deliveries = self._deliveries
        if deliveries != self._seen_deliveries:
            self._seen_deliveries = deliveries
            self._last_progress = now
            return None
        if now - self._last_progress > self.stall_timeout_s:
            return (f"the input device {self._label()} delivered no audio for {self.stall_timeout_s:g} s "
                    f"(was it unplugged?); the audio received before was processed")
        return None

    def _poll_seconds(self) -> float:
        blocksize = self.blocksize or max(1, self.input_rate_hz // 100)
        return min(0.005, 0.5 * blocksize / self.input_rate_hz)

    def _chunks(self) -> Iterator[np.ndarray]:
        if self._stream is None:
            raise ConfigError("the microphone is not open; use `with source:` or open() first")
        yield from self._live_chunks()
