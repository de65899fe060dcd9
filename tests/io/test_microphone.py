"""MicrophoneSource, find_device, list_devices.

Two tiers:

- A scripted stand-in for ``sounddevice`` (installed in ``sys.modules``; the
  source imports sounddevice lazily, so it gets the stand-in) drives every
  branch deterministically: rate fallback and resampling, stereo fallback,
  device overflows, ring-buffer overruns, a device that vanishes or stalls,
  error translation.  No sound stack needed.
- ``@pytest.mark.mic``: the real stack (PortAudio -> ALSA pulse plugin ->
  a private PulseAudio daemon) through ``tools/virtual_mic.sh`` from the shared
  folder (the ``vmic`` fixture of ``tests/vmic.py``): a known 16 kHz clip
  played into the virtual microphone is found in the recording bit for bit;
  stopping the daemon mid-stream gives one DeviceError after every sample
  received; with PortAudio but no sound server the error is the one-line
  "no microphone" message.  These tests start (and stop) their own daemon;
  they skip when it cannot be started, or fail when ``SED_REQUIRE_MIC=1``
  (as in CI).
"""

import os
import subprocess
import sys
import threading
import time
import types

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from _compare import assert_equal_ints
from conftest import SHARED
from sed_runtime.errors import ConfigError, DeviceError
from sed_runtime.io.sources import MicrophoneSource, find_device, list_devices
from sed_runtime.io.wavfile import read_pcm16
from sed_runtime.stream.resample import resample_pcm16
from vmic import start_feed, vmic  # noqa: F401 - vmic is a fixture

RATE = 16000


# ---------------------------------------------------------------------------
# A scripted sounddevice
# ---------------------------------------------------------------------------

class FakePortAudioError(Exception):
    pass


class FakeFlags:
    def __init__(self, input_overflow=False):
        self.input_overflow = input_overflow

    def __bool__(self):
        return self.input_overflow


class FakeStream:
    """Calls the callback from its own thread with the blocks of ``script``, then ends as told.

    ``ending``: "vanish" (PortAudio ends the stream: inactive + finished
    callback), "stall" (stays active, no more callbacks), "hold" (waits for
    abort).
    """

    def __init__(self, sd, samplerate, blocksize, device, channels, dtype, latency, callback, finished_callback):
        assert dtype == "int16"
        self.sd, self.samplerate, self.blocksize, self.device, self.channels = sd, samplerate, blocksize, device, channels
        self.callback, self.finished_callback = callback, finished_callback
        self._active = False
        self._abort = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        sd.streams.append(self)

    def start(self):
        if self.sd.start_error:
            raise FakePortAudioError(self.sd.start_error)
        self._active = True
        self._thread.start()

    def _run(self):
        for block, overflow in self.sd.script(self):
            if self._abort.is_set():
                return
            indata = np.repeat(block[:, None], self.channels, axis=1)
            if self.channels > 1:
                indata[:, 1:] = 12345  # only channel 0 is the microphone's
            self.callback(indata, block.shape[0], None, FakeFlags(overflow))
            time.sleep(self.sd.pace_s)
        if self.sd.ending == "vanish":
            self._active = False
            self.finished_callback()
        elif self.sd.ending == "hold":
            self._abort.wait()

    @property
    def active(self):
        return self._active

    def abort(self):
        self._abort.set()
        self._active = False

    def close(self, ignore_errors=False):
        if self._thread.ident is not None:
            self._thread.join(timeout=5)
        self.closed = True


def _device(name, inputs=2, rate=44100.0):
    return {"name": name, "hostapi": 0, "max_input_channels": inputs, "max_output_channels": 2,
            "default_samplerate": rate}


def make_fake_sd(devices, default=0, accepts=lambda index, channels, rate: True, script=None, ending="hold",
                 pace_s=0.0005, start_error=None, open_error=None):
    sd = types.ModuleType("sounddevice")
    sd.PortAudioError = FakePortAudioError
    sd.devices = devices
    sd.default = types.SimpleNamespace(device=[default, default])
    sd.streams = []
    sd.script = script or (lambda stream: iter(()))
    sd.ending, sd.pace_s, sd.start_error = ending, pace_s, start_error

    def query_devices(device=None):
        return sd.devices if device is None else sd.devices[device]

    def check_input_settings(device=None, channels=None, dtype=None, samplerate=None):
        if not accepts(device, channels, samplerate):
            raise FakePortAudioError(f"Invalid sample rate [PaErrorCode -9997]" if channels == 1 else
                                     "Invalid number of channels [PaErrorCode -9998]")

    def input_stream(**kwargs):
        if open_error:
            raise FakePortAudioError(open_error)
        return FakeStream(sd, **kwargs)

    sd.query_devices = query_devices
    sd.query_hostapis = lambda index: {"name": "ALSA"}
    sd.check_input_settings = check_input_settings
    sd.InputStream = input_stream
    return sd


@pytest.fixture
def fake_sd(monkeypatch):
    def install(*args, **kwargs):
        sd = make_fake_sd(*args, **kwargs)
        monkeypatch.setitem(sys.modules, "sounddevice", sd)
        return sd
    return install


def _blocks(signal, size):
    for pos in range(0, signal.shape[0], size):
        yield signal[pos:pos + size], False


def _noise(n, seed):
    return np.random.default_rng(seed).integers(-32768, 32768, n).astype(np.int16)


def _record(source, limit=None):
    got = []
    with source:
        for chunk in source.chunks():
            got.append(chunk.copy())
            if limit is not None and sum(c.shape[0] for c in got) >= limit:
                break
    return np.concatenate(got) if got else np.zeros(0, np.int16)


# ---------------------------------------------------------------------------
# Opening: rate, channels, device choice
# ---------------------------------------------------------------------------

def test_model_rate_accepted_samples_pass_unchanged(fake_sd):
    audio = _noise(8000, 1)
    sd = fake_sd([_device("Built-in Mic")], script=lambda s: _blocks(audio, s.blocksize))
    mic = MicrophoneSource(RATE)
    got = _record(mic, limit=audio.shape[0])
    assert_equal_ints(got[:audio.shape[0]], audio, "model rate")
    stream = sd.streams[0]
    assert (stream.samplerate, stream.channels, stream.device, stream.blocksize) == (RATE, 1, 0, RATE // 100)
    assert (mic.input_rate_hz, mic.device_name, mic.overruns) == (RATE, "Built-in Mic", 0)


def test_device_refusing_the_model_rate_is_opened_at_its_own_and_resampled(fake_sd):
    """48 kHz only: the stream runs at 48 kHz and the source resamples; when the device
    vanishes, every sample received is delivered (the resampler is flushed) before the error."""
    audio = _noise(48000 // 2, 2)
    sd = fake_sd([_device("USB Mic", rate=48000.0)], accepts=lambda i, c, rate: rate == 48000,
                 script=lambda s: _blocks(audio, 480), ending="vanish")
    mic = MicrophoneSource(RATE, device="usb")
    got = []
    with pytest.raises(DeviceError, match=r"^the input device \[0\] 'USB Mic' stopped: PortAudio ended the stream "
                                          r"\(was it unplugged\?\); the audio received before was processed$"):
        with mic:
            for chunk in mic.chunks():
                got.append(chunk.copy())
    assert sd.streams[0].samplerate == 48000 and mic.input_rate_hz == 48000
    assert_equal_ints(np.concatenate(got), resample_pcm16(audio, 48000, RATE), "48 kHz device -> 16 kHz")


def test_device_refusing_mono_is_opened_in_stereo_and_channel_0_used(fake_sd):
    audio = _noise(3200, 3)
    sd = fake_sd([_device("Stereo only")], accepts=lambda i, channels, r: channels == 2,
                 script=lambda s: _blocks(audio, 160))
    mic = MicrophoneSource(RATE)
    assert_equal_ints(_record(mic, limit=audio.shape[0])[:audio.shape[0]], audio, "stereo device, channel 0")
    assert sd.streams[0].channels == 2 and mic.device_channels == 2


def test_device_refusing_everything_names_what_was_tried(fake_sd):
    fake_sd([_device("Odd", rate=96000.0)], accepts=lambda *a: False)
    with pytest.raises(DeviceError, match=r"input device \[0\] 'Odd' refuses 16-bit input \(1 ch at 16000 Hz: Invalid "
                                          r"sample rate .*; 1 ch at 96000 Hz: .*; 2 ch at 16000 Hz: .*; 2 ch at 96000 "
                                          r"Hz: .*\); choose another with `--device`"):
        MicrophoneSource(RATE).open()


def test_portaudio_errors_on_open_and_start_become_device_errors(fake_sd):
    fake_sd([_device("Mic")], open_error="Device unavailable [PaErrorCode -9985]")
    with pytest.raises(DeviceError, match=r"cannot open input device \[0\] 'Mic' at 16000 Hz \(Device unavailable "
                                          r"\[PaErrorCode -9985\]\); list the devices with `--list-devices`"):
        MicrophoneSource(RATE).open()
    fake_sd([_device("Mic")], start_error="Unanticipated host error")
    with pytest.raises(DeviceError, match=r"cannot start input device \[0\] 'Mic' \(Unanticipated host error\)"):
        MicrophoneSource(RATE).open()


# ---------------------------------------------------------------------------
# find_device / list_devices
# ---------------------------------------------------------------------------

DEVICES = [_device("HDA Intel PCH: ALC257 Analog (hw:0,0)"), _device("HDMI 0", inputs=0),
           _device("USB Audio Device: Mic (hw:2,0)", rate=48000.0), _device("pulse", inputs=32),
           _device("default", inputs=32), _device("pulse monitor", inputs=2)]


def test_find_device_by_index_name_and_default(fake_sd):
    fake_sd(DEVICES, default=4)
    assert find_device(None) == 4
    assert find_device(2) == 2 and find_device("2") == 2 and find_device(np.int64(0)) == 0
    assert find_device("usb") == 2 and find_device("ALC257") == 0
    assert find_device("PULSE") == 3  # two contain "pulse", one is exactly "pulse"


def test_find_device_errors_list_the_candidates(fake_sd):
    fake_sd(DEVICES, default=4)
    listing = (r"input devices: \[0\] HDA Intel PCH: ALC257 Analog \(hw:0,0\), \[2\] USB Audio Device: Mic \(hw:2,0\), "
               r"\[3\] pulse, \[4\] default, \[5\] pulse monitor \(see `--list-devices`\)$")
    with pytest.raises(DeviceError, match=r"^no input device matches 'webcam'; " + listing):
        find_device("webcam")
    with pytest.raises(DeviceError, match=r"^device 'hw:' is ambiguous: it matches \[0\] .*, \[2\] .*; give the index"):
        find_device("hw:")
    with pytest.raises(DeviceError, match=r"^device 1 \('HDMI 0'\) has no input channels; " + listing):
        find_device(1)
    with pytest.raises(DeviceError, match=r"^there is no device 9; " + listing):
        find_device(9)
    with pytest.raises(ConfigError, match=r"device=1.5 must be"):
        MicrophoneSource(RATE, device=1.5)


def test_no_input_device_is_one_clear_line(fake_sd):
    fake_sd([_device("HDMI 0", inputs=0)], default=-1)
    with pytest.raises(DeviceError) as info:
        MicrophoneSource(RATE).open()
    message = str(info.value)
    assert message == ("no microphone: PortAudio finds no audio input device; list the devices with "
                       "`--list-devices`, or read a file with `--input FILE`")
    assert "\n" not in message
    assert list_devices().startswith("No audio input device found")


def test_no_default_input_device(fake_sd):
    fake_sd(DEVICES, default=-1)
    with pytest.raises(DeviceError, match=r"^no default input device; choose one with `--device`; input devices: "):
        find_device()


def test_list_devices_marks_the_default(fake_sd):
    fake_sd(DEVICES, default=4)
    text = list_devices()
    assert text.splitlines()[0].startswith("Audio input devices")
    assert "  [2] USB Audio Device: Mic (hw:2,0) (ALSA; 2 input channel(s), default rate 48000 Hz)" in text
    assert "* [4] default (ALSA; 32 input channel(s), default rate 44100 Hz)" in text
    assert "HDMI" not in text


class _RaisingFinder:
    """Makes ``import sounddevice`` fail as it does without libportaudio."""

    def find_spec(self, name, path=None, target=None):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return None


def test_missing_portaudio_is_one_clear_line(monkeypatch):
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_RaisingFinder()] + sys.meta_path)
    for call in (lambda: MicrophoneSource(RATE).open(), list_devices, find_device):
        with pytest.raises(DeviceError, match=r"^cannot use a microphone: the PortAudio library is not available "
                                              r"\(PortAudio library not found\); install it \(Debian/Ubuntu: apt-get "
                                              r"install libportaudio2\), or read a file with `--input FILE`$"):
            call()


# ---------------------------------------------------------------------------
# Overruns and a device that disappears
# ---------------------------------------------------------------------------

def test_device_overflow_flags_are_counted(fake_sd):
    audio = _noise(3200, 4)

    def script(stream):
        for k, (block, _) in enumerate(_blocks(audio, 160)):
            yield block, k in (3, 7)

    fake_sd([_device("Mic")], script=script)
    mic = MicrophoneSource(RATE)
    _record(mic, limit=audio.shape[0])
    assert mic.device_overflows == 2 and mic.overruns == 2 and mic.dropped_samples == 0
    assert mic.overrun_summary() == "2 input overflow(s) reported by the audio device"


def test_slow_consumer_overrun_is_counted_and_the_rest_is_contiguous(fake_sd):
    audio = _noise(16000, 5)
    fake_sd([_device("Mic")], script=lambda s: _blocks(audio, 160), pace_s=0.0)
    mic = MicrophoneSource(RATE, buffer_seconds=0.05)  # 800 samples
    got = []
    with mic:
        for chunk in mic.chunks():
            got.append(chunk.copy())
            if len(got) == 1:
                time.sleep(0.3)  # the producer fills the buffer meanwhile
            if sum(c.shape[0] for c in got) + mic.dropped_samples >= audio.shape[0]:
                break
    got = np.concatenate(got)
    assert mic.overruns >= 1 and mic.dropped_samples > 0
    # what arrived is the stream with the dropped blocks cut out: the first part is intact
    first = got[:800]
    assert_equal_ints(first, audio[:800], "buffered before the overrun")
    assert "dropped because processing fell behind the 0.05 s buffer" in mic.overrun_summary()


def test_stalled_device_raises_after_delivering_everything(fake_sd):
    audio = _noise(4000, 6)
    fake_sd([_device("Mic")], script=lambda s: _blocks(audio, 160), ending="stall")
    mic = MicrophoneSource(RATE, stall_timeout_s=0.2)
    got = []
    start = time.monotonic()
    with pytest.raises(DeviceError, match=r"^the input device \[0\] 'Mic' delivered no audio for 0.2 s \(was it "
                                          r"unplugged\?\); the audio received before was processed$"):
        with mic:
            for chunk in mic.chunks():
                got.append(chunk.copy())
    assert time.monotonic() - start < 5
    assert_equal_ints(np.concatenate(got), audio, "everything before the stall")


def test_chunks_opens_and_closes_when_not_open(fake_sd):
    audio = _noise(1600, 7)
    sd = fake_sd([_device("Mic")], script=lambda s: _blocks(audio, 160))
    mic = MicrophoneSource(RATE)
    for chunk in mic.chunks():
        break
    assert mic._stream is None and sd.streams[0].closed
    with pytest.raises(ConfigError, match=r"already open"):
        with mic:
            mic.open()


# ---------------------------------------------------------------------------
# The real stack through the virtual microphone
# ---------------------------------------------------------------------------

def _clip(tmp_path):
    """A 2.5 s 16 kHz clip: a dog bark, then speech (real audio, full of detail)."""
    import soundfile as sf

    bark = read_pcm16(SHARED / "fixtures" / "real" / "dog_bark.wav", sample_rate_hz=RATE)[0]
    speech = read_pcm16(SHARED / "fixtures" / "real" / "speech_en_11s.wav", sample_rate_hz=RATE)[0]
    clip = np.concatenate([bark, speech[RATE:RATE + int(1.6 * RATE)]])
    path = tmp_path / "clip.wav"
    sf.write(str(path), clip, RATE, subtype="PCM_16")
    return clip, path


def _find(recording, clip):
    """Start of ``clip`` in ``recording`` (exact match of its first 256 samples), or None."""
    key = clip[:256]
    if recording.shape[0] < clip.shape[0]:
        return None
    windows = sliding_window_view(recording[: recording.shape[0] - clip.shape[0] + 256], 256)
    hits = np.nonzero((windows == key).all(axis=1))[0]
    return int(hits[0]) if hits.size else None


@pytest.mark.mic
def test_virtual_microphone_recording_is_bit_exact(vmic, tmp_path):
    clip, path = _clip(tmp_path)
    mic = MicrophoneSource(RATE, device="vmic")
    got, fed_at = [], None
    with mic:
        assert mic.input_rate_hz == RATE and mic.device_name == "vmic"
        feed = start_feed(vmic, path)
        deadline = time.monotonic() + clip.shape[0] / RATE + 30
        for chunk in mic.chunks():
            got.append(chunk.copy())
            if fed_at is None and feed.poll() is not None:
                fed_at = sum(c.shape[0] for c in got)
            if fed_at is not None and sum(c.shape[0] for c in got) > fed_at + RATE // 2:
                break  # the feed ended and half a second more arrived
            assert time.monotonic() < deadline, "the recording did not end"
    assert feed.wait() == 0, feed.stderr.read()
    recording = np.concatenate(got)
    start = _find(recording, clip)
    assert start is not None, f"the clip's first 256 samples are not in the {recording.shape[0]}-sample recording"
    assert_equal_ints(recording[start:start + clip.shape[0]], clip, "virtual microphone recording")
    assert mic.overruns == 0, mic.overrun_summary()


@pytest.mark.mic
def test_microphone_that_disappears_gives_one_error_after_all_its_audio(vmic, tmp_path):
    clip, path = _clip(tmp_path)
    clip, path = clip[: RATE // 2], tmp_path / "short.wav"
    import soundfile as sf

    sf.write(str(path), clip, RATE, subtype="PCM_16")
    mic = MicrophoneSource(RATE, device="vmic", stall_timeout_s=2.0)
    got, stopped_at = [], None
    with pytest.raises(DeviceError, match=r"^the input device \[\d+\] 'vmic' (stopped|failed|delivered no audio)"
                                          r".*the audio received before was processed$") as info:
        with mic:
            feed = start_feed(vmic, path)
            deadline = time.monotonic() + 30
            for chunk in mic.chunks():
                got.append(chunk.copy())
                if stopped_at is None and feed.poll() is not None:
                    vmic("stop")  # the "microphone" is unplugged: its sound server goes away
                    stopped_at = time.monotonic()
                assert time.monotonic() < deadline, "the lost device was not noticed"
    assert "\n" not in str(info.value)
    assert stopped_at is not None and time.monotonic() - stopped_at < 10
    recording = np.concatenate(got)
    start = _find(recording, clip)
    assert start is not None, "audio received before the device disappeared was lost"
    assert_equal_ints(recording[start:start + clip.shape[0]], clip, "audio before the device disappeared")


@pytest.mark.mic
def test_no_sound_server_gives_the_no_microphone_line(vmic, tmp_path):
    """PortAudio installed, no server reachable: one line pointing at --list-devices / --input."""
    env = {k: v for k, v in os.environ.items() if k not in ("PULSE_SERVER", "PULSE_COOKIE", "ALSA_CONFIG_PATH")}
    env.update(PULSE_SERVER=f"unix:{tmp_path}/no-server/native", XDG_RUNTIME_DIR=str(tmp_path), HOME=str(tmp_path))
    code = (
        "import sounddevice\n"
        "if any(d['max_input_channels'] > 0 for d in sounddevice.query_devices()): print('HAS-DEVICES'); raise SystemExit\n"
        "from sed_runtime.errors import DeviceError\n"
        "from sed_runtime.io.sources import MicrophoneSource, list_devices\n"
        "try:\n    MicrophoneSource(16000).open()\nexcept DeviceError as exc:\n    print('ERROR', exc)\n"
        "print(list_devices())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    if result.stdout.startswith("HAS-DEVICES"):
        pytest.skip("this machine has an input device without a sound server (a real sound card)")
    lines = result.stdout.splitlines()
    assert lines[0] == ("ERROR no microphone: PortAudio finds no audio input device; list the devices with "
                        "`--list-devices`, or read a file with `--input FILE`")
    assert lines[1].startswith("No audio input device found")
