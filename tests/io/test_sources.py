"""ArraySource and FileSource: every format, channel layout and rate comes out as the int16 the pipeline expects.

The oracle for a file's samples is :func:`read_pcm16` (tested format by
format in test_wavfile.py); for a rate change it is :func:`resample_pcm16`
(tested in tests/stream/test_resample.py).  FileSource must give exactly
those integers, in any chunking, offline or at wall-clock pace.
"""

import numpy as np
import pytest
import soundfile as sf

from _compare import assert_equal_ints
from sed_runtime.errors import AudioFormatError, ConfigError
from sed_runtime.io.sources import ArraySource, FileSource, mix_to_mono
from sed_runtime.io.wavfile import read_pcm16
from sed_runtime.stream.resample import resample_pcm16

RATE = 16000


def _signal(n, seed=11, channels=1):
    rng = np.random.default_rng(seed)
    x = rng.integers(-32768, 32768, size=(n, channels), dtype=np.int16)
    x[:4] = [[-32768] * channels, [32767] * channels, [-1] * channels, [1] * channels]
    return x[:, 0] if channels == 1 else x


def _tone(rate, seconds=0.3, channels=1):
    t = np.arange(int(rate * seconds)) / rate
    mono = 12000 * np.sin(2 * np.pi * 440 * t) + 4000 * np.sin(2 * np.pi * 1250 * t)
    data = np.stack([mono * (0.5 + 0.25 * c) for c in range(channels)], axis=1)
    return data.astype(np.int16)


def _write(path, data, rate=RATE, subtype="PCM_16", fmt=None):
    if fmt is not None and subtype not in sf.available_subtypes(fmt):
        pytest.skip(f"libsndfile {sf.__libsndfile_version__} cannot write {fmt}/{subtype}")
    sf.write(str(path), data, rate, subtype=subtype, format=fmt)
    return path


def _collect(source):
    chunks = [chunk.copy() for chunk in source.chunks()]
    for chunk in chunks:
        assert chunk.dtype == np.int16 and chunk.ndim == 1
    return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)


# ---------------------------------------------------------------------------
# ArraySource
# ---------------------------------------------------------------------------

def test_array_source_yields_views_in_chunks():
    x = _signal(10000)
    source = ArraySource(x, RATE, chunk_samples=3000)
    with source:
        chunks = list(source.chunks())
    assert [c.shape[0] for c in chunks] == [3000, 3000, 3000, 1000]
    assert all(np.shares_memory(c, x) for c in chunks)  # views, not copies
    assert_equal_ints(np.concatenate(chunks), x, "ArraySource")
    assert source.sample_rate_hz == RATE and source.overruns == 0 and source.overrun_summary() is None


@pytest.mark.parametrize("rate", [44100, 8000])
def test_array_source_resamples(rate):
    x = _signal(rate // 4, seed=rate)
    source = ArraySource(x, rate, RATE, chunk_samples=333)
    assert_equal_ints(_collect(source), resample_pcm16(x, rate, RATE), f"ArraySource {rate} Hz -> {RATE} Hz")
    assert_equal_ints(_collect(source), resample_pcm16(x, rate, RATE), "second pass starts a new stream")


def test_array_source_refuses_non_int16_mono():
    with pytest.raises(AudioFormatError, match=r"1-D int16 array of mono samples, got ndarray dtype=float32"):
        ArraySource(np.zeros(10, np.float32), RATE)
    with pytest.raises(AudioFormatError, match=r"ndim=2"):
        ArraySource(np.zeros((10, 2), np.int16), RATE)
    with pytest.raises(ConfigError, match=r"input_rate_hz=0 must be a positive integer"):
        ArraySource(np.zeros(10, np.int16), 0)
    with pytest.raises(ConfigError, match=r"chunk_samples=-1 must be a positive integer"):
        ArraySource(np.zeros(10, np.int16), RATE, chunk_samples=-1)


# ---------------------------------------------------------------------------
# FileSource: formats and bit depths (mono, at the model rate)
# ---------------------------------------------------------------------------

FORMATS = [
    ("WAV", "wav", "PCM_16"), ("WAV", "wav", "PCM_U8"), ("WAV", "wav", "PCM_24"), ("WAV", "wav", "PCM_32"),
    ("WAV", "wav", "FLOAT"), ("WAV", "wav", "DOUBLE"), ("FLAC", "flac", "PCM_16"), ("FLAC", "flac", "PCM_24"),
    ("FLAC", "flac", "PCM_S8"), ("OGG", "ogg", "VORBIS"),
]


@pytest.mark.parametrize("fmt,ext,subtype", FORMATS, ids=[f"{f}-{s}" for f, _, s in FORMATS])
def test_every_format_reads_like_read_pcm16(tmp_path, fmt, ext, subtype):
    if subtype in ("FLOAT", "DOUBLE", "VORBIS"):
        data = _tone(RATE)[:, 0].astype(np.float64) / 32768.0
    else:
        data = _signal(7001).astype(np.int32) << 16  # left-justified: 24/32-bit files hold low bits too
        if subtype == "PCM_24":
            data |= np.random.default_rng(2).integers(0, 1 << 16, data.shape[0]).astype(np.int32) & 0xFF00
    path = _write(tmp_path / f"x.{ext}", data, subtype=subtype, fmt=fmt)
    expected, rate = read_pcm16(path)
    assert rate == RATE
    source = FileSource(path, RATE, chunk_samples=1000)
    assert_equal_ints(_collect(source), expected, f"{fmt}/{subtype}")
    assert source.input_rate_hz == RATE and source.sample_rate_hz == RATE and source.overruns == 0


def test_chunk_size_does_not_matter_and_native_rate_by_default(tmp_path):
    path = _write(tmp_path / "x.wav", _signal(5003), rate=22050)
    whole = _collect(FileSource(path, chunk_samples=100000))
    assert FileSource(path).open().sample_rate_hz == 22050
    for chunk_samples in (7, 160, 4096):
        assert_equal_ints(_collect(FileSource(path, chunk_samples=chunk_samples)), whole, f"chunks of {chunk_samples}")
    assert_equal_ints(whole, read_pcm16(path)[0], "native rate")


# ---------------------------------------------------------------------------
# Channels
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("channels", [2, 3, 6])
def test_pick_a_channel(tmp_path, channels):
    data = _signal(3001, seed=channels, channels=channels)
    path = _write(tmp_path / "multi.wav", data)
    for channel in (0, channels - 1):
        assert_equal_ints(_collect(FileSource(path, RATE, channel=channel)), data[:, channel], f"channel {channel}")


@pytest.mark.parametrize("channels", [2, 3, 6])
def test_mix_is_the_integer_average(tmp_path, channels):
    data = _signal(3001, seed=channels, channels=channels)
    path = _write(tmp_path / "multi.flac", data, fmt="FLAC")
    expected = []
    for row in data.tolist():  # Python ints: sum / channels rounded half away from zero
        total = sum(row)
        q = (abs(total) + channels // 2) // channels
        expected.append(q if total >= 0 else -q)
    assert_equal_ints(_collect(FileSource(path, RATE, channel="mix")), np.array(expected), f"mix of {channels}")


def test_mix_to_mono_rounds_half_away_from_zero():
    block = np.array([[1, 2], [-1, -2], [32767, 32767], [-32768, -32768], [32767, -32768], [3, 0]], np.int16)
    assert mix_to_mono(block).tolist() == [2, -2, 32767, -32768, -1, 2]
    out = np.zeros(6, np.int16)
    assert mix_to_mono(block, out) is out


def test_mix_of_a_float_stereo_file(tmp_path):
    data = _tone(RATE, channels=2).astype(np.float64) / 32768.0
    path = _write(tmp_path / "stereo.wav", data, subtype="FLOAT")
    left, right = read_pcm16(path, channel=0)[0], read_pcm16(path, channel=1)[0]
    assert_equal_ints(_collect(FileSource(path, RATE, channel="mix")), mix_to_mono(np.stack([left, right], 1)),
                      "float stereo mix")


def test_channel_errors(tmp_path):
    path = _write(tmp_path / "stereo.wav", _signal(100, channels=2))
    with pytest.raises(AudioFormatError, match=r"has 2 channels; expected mono \(pick one with channel=0\.\.1, "
                                               r"or mix them with channel='mix'\)"):
        FileSource(path, RATE).open()
    with pytest.raises(AudioFormatError, match=r"channel=2 does not exist in '.*stereo\.wav', which has 2 channel"):
        FileSource(path, RATE, channel=2).open()
    for bad in (-1, "left", 1.0, True):
        with pytest.raises(ConfigError, match=r"must be None, a channel index >= 0, or 'mix'"):
            FileSource(path, RATE, channel=bad)
    mono = _write(tmp_path / "mono.wav", _signal(100))
    assert_equal_ints(_collect(FileSource(mono, RATE, channel="mix")), _signal(100), "mix of one channel")


# ---------------------------------------------------------------------------
# Rates
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("rate", [44100, 48000, 22050, 8000])
@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT"])
def test_any_rate_is_resampled_to_the_model_rate(tmp_path, rate, subtype):
    data = _tone(rate, 0.25, channels=2)
    if subtype == "FLOAT":
        data = data.astype(np.float64) / 32768.0
    path = _write(tmp_path / "x.wav", data, rate=rate, subtype=subtype)
    source = FileSource(path, RATE, channel="mix", chunk_samples=1234)
    got = _collect(source)
    left, right = (read_pcm16(path, channel=c)[0] for c in (0, 1))
    expected = resample_pcm16(mix_to_mono(np.stack([left, right], 1)), rate, RATE)
    assert_equal_ints(got, expected, f"{rate} Hz {subtype} -> {RATE} Hz")
    assert got.shape[0] == -(-data.shape[0] * RATE // rate)
    assert (source.input_rate_hz, source.sample_rate_hz) == (rate, RATE)


# ---------------------------------------------------------------------------
# Refused files (same checks as read_pcm16, before the first chunk)
# ---------------------------------------------------------------------------

def test_missing_directory_and_corrupt_files(tmp_path):
    with pytest.raises(AudioFormatError, match=r"audio file '.*nope\.wav' does not exist"):
        FileSource(tmp_path / "nope.wav", RATE).open()
    with pytest.raises(AudioFormatError, match=r"is a directory; expected an audio file"):
        FileSource(tmp_path, RATE).open()
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(bytes(np.random.default_rng(7).integers(0, 256, 4000, dtype=np.uint8)))
    with pytest.raises(AudioFormatError, match=r"cannot read '.*corrupt\.wav' as audio \(.+\); expected a sound file"):
        list(FileSource(corrupt, RATE).chunks())


def test_truncated_files_are_refused(tmp_path):
    wav = _write(tmp_path / "x.wav", _signal(3000))
    wav.write_bytes(wav.read_bytes()[:-1001])
    with pytest.raises(AudioFormatError, match=r"'.*x\.wav' is truncated: its data chunk announces 6000 bytes"):
        FileSource(wav, RATE).open()
    ogg = _write(tmp_path / "x.ogg", _tone(RATE)[:, 0], subtype="VORBIS", fmt="OGG")
    ogg.write_bytes(ogg.read_bytes()[:-1])
    with pytest.raises(AudioFormatError, match=r"'.*x\.ogg' is truncated: it does not end with a complete Ogg page"):
        FileSource(ogg, RATE).open()
    flac = _write(tmp_path / "x.flac", _tone(RATE)[:, 0], fmt="FLAC")
    flac.write_bytes(flac.read_bytes()[:-100])
    with pytest.raises(AudioFormatError, match=r"'.*x\.flac'.*(truncated|expected a complete, valid FLAC file)"):
        list(FileSource(flac, RATE).chunks())


def test_float_files_out_of_range_or_not_finite_are_refused_before_streaming(tmp_path):
    data = _tone(RATE)[:, 0].astype(np.float64) / 32768.0
    loud = data.copy()
    loud[-5] = 3.0  # at the very end: the whole file is checked before the first chunk
    path = _write(tmp_path / "loud.wav", loud, subtype="FLOAT")
    with pytest.raises(AudioFormatError, match=r"'.*loud\.wav' is a float file with peak 3; expected samples in"):
        FileSource(path, RATE).open()
    nan = data.copy()
    nan[-7] = np.nan
    path = _write(tmp_path / "nan.wav", nan, subtype="DOUBLE")
    with pytest.raises(AudioFormatError, match=r"contains NaN or infinite samples"):
        FileSource(path, RATE).open()


def test_argument_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"sample_rate_hz=0 must be a positive integer"):
        FileSource(tmp_path / "x.wav", 0)
    with pytest.raises(ConfigError, match=r"block_ms=0 must be a positive number"):
        FileSource(tmp_path / "x.wav", RATE, realtime=True, block_ms=0)


# ---------------------------------------------------------------------------
# Real time: the microphone's ring-buffer path, fed by a thread at wall-clock pace
# ---------------------------------------------------------------------------

def test_realtime_playback_gives_the_same_samples(tmp_path):
    data = _tone(44100, 0.3, channels=2)
    path = _write(tmp_path / "x.wav", data, rate=44100)
    offline = _collect(FileSource(path, RATE, channel="mix"))
    source = FileSource(path, RATE, channel="mix", realtime=True, block_ms=10)
    with source:
        live = _collect(source)
    assert_equal_ints(live, offline, "realtime vs offline")
    assert source.overruns == 0 and source.dropped_samples == 0 and source.overrun_summary() is None


def test_realtime_overrun_is_counted_and_reported(tmp_path):
    """A consumer slower than the buffer: the newest samples are dropped, counted, summarised."""
    import time

    path = _write(tmp_path / "x.wav", _signal(int(RATE * 0.3)))
    source = FileSource(path, RATE, realtime=True, block_ms=10, buffer_seconds=0.05)
    got = []
    with source:
        for chunk in source.chunks():
            got.append(chunk.copy())
            time.sleep(0.12)  # the 50 ms buffer fills while the consumer sleeps
    got = np.concatenate(got)
    assert source.overruns > 0 and source.dropped_samples > 0
    assert got.shape[0] + source.dropped_samples == int(RATE * 0.3)
    summary = source.overrun_summary()
    assert f"{source.dropped_samples} samples" in summary and "dropped because processing fell behind" in summary


def test_realtime_stops_when_the_consumer_stops(tmp_path):
    path = _write(tmp_path / "x.wav", _signal(RATE * 5))
    source = FileSource(path, RATE, realtime=True)
    with source:
        for chunk in source.chunks():
            break
    assert source._thread is None  # joined by close(), long before the 5 s file would end
