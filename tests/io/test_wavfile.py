"""read_pcm16: every sample format libsndfile writes comes back as the int16 the firmware would see.

Files are written with soundfile from one known int16 signal (seeded, both
extremes included).  What libsndfile 1.2.2 (the soundfile wheel's) does, and
what the reader does about it:

- integer PCM: converted by libsndfile; 16-bit is exact, 24/32-bit keep their
  top 16 bits (floor), 8-bit unsigned ``u`` becomes ``(u - 128) << 8``.
- float files: libsndfile's int16 read does not scale them (0.5 reads as 0;
  raw values are rounded half to even and clipped), and writing int16 data into
  a float file stores the raw integers (32767.0), not ``x / 32768``.  The reader
  reads floats itself, full scale 1.0 = 32768 (the exact inverse of reading
  int16 as float), rounds half to even, saturates to int16, and refuses files
  peaking above ``FLOAT_PEAK_LIMIT`` (non-normalised data).  So a float file
  holding ``x / 32768`` reads back exactly (the contract is "within 1 LSB";
  with this scaling the error is 0).
- Vorbis/Opus: lossy; libsndfile's int16 read of Vorbis scales by 32767 and
  wraps on overshoot; the reader saturates instead.
- truncated files: libsndfile reads a WAV whose data chunk is cut short up to
  where it ends (``sf.info`` reports the frames present, no error), and an Ogg
  file likewise; a cut FLAC fails to decode ("lost sync").  The reader refuses
  all three with both lengths in the message.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
import soundfile as sf

from _compare import assert_equal_ints
from sed_runtime.errors import AudioFormatError
from sed_runtime.io.wavfile import FLOAT_PEAK_LIMIT, read_pcm16

RATE = 16000


@pytest.fixture(scope="module")
def signal() -> np.ndarray:
    """Seeded full-range int16 noise with both extremes and the values around zero."""
    rng = np.random.default_rng(20240611)
    edges = np.array([-32768, -32767, -257, -256, -255, -1, 0, 1, 255, 256, 32766, 32767], dtype=np.int16)
    return np.concatenate([edges, rng.integers(-32768, 32768, size=3001, dtype=np.int16)])  # odd length


@pytest.fixture(scope="module")
def tone() -> np.ndarray:
    """0.5 s of two tones at -8 dBFS: something a lossy codec keeps well."""
    t = np.arange(RATE // 2) / RATE
    return (12000 * np.sin(2 * np.pi * 440 * t) + 4000 * np.sin(2 * np.pi * 1250 * t)).astype(np.int16)


def _has_subtype(fmt: str, subtype: str) -> bool:
    return subtype in sf.available_subtypes(fmt)


def _write(path, data, subtype, fmt=None, rate=RATE):
    if fmt is not None and not _has_subtype(fmt, subtype):
        pytest.skip(f"libsndfile {sf.__libsndfile_version__} cannot write {fmt}/{subtype}")
    sf.write(str(path), data, rate, subtype=subtype, format=fmt)
    return path


def _read(path, **kwargs) -> np.ndarray:
    samples, rate = read_pcm16(path, **kwargs)
    assert rate == RATE
    assert samples.dtype == np.int16 and samples.ndim == 1 and samples.flags.c_contiguous
    return samples


# ---------------------------------------------------------------------------
# Integer PCM: exact
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("fmt,ext", [("WAV", "wav"), ("FLAC", "flac")])
def test_pcm16_reads_back_exactly(tmp_path, signal, fmt, ext):
    path = _write(tmp_path / f"x.{ext}", signal, "PCM_16", fmt)
    assert_equal_ints(_read(path), signal, f"{fmt} PCM_16")


@pytest.mark.parametrize("fmt,ext,subtype,shift", [
    ("WAV", "wav", "PCM_24", 8),
    ("WAV", "wav", "PCM_32", 16),
    ("FLAC", "flac", "PCM_24", 8),
])
def test_wide_pcm_from_shifted_int16_reads_back_exactly(tmp_path, signal, fmt, ext, subtype, shift):
    # soundfile writes int32 data left-justified: the file's samples are signal << shift.
    path = _write(tmp_path / f"x.{ext}", signal.astype(np.int32) << 16, subtype, fmt)
    stored = sf.read(str(path), dtype="int32")[0] >> (16 - shift)
    assert_equal_ints(stored, signal.astype(np.int64) << shift, f"{fmt} {subtype} file content")
    assert_equal_ints(_read(path), signal, f"{fmt} {subtype}")


def test_pcm24_low_bits_are_floored_away(tmp_path, signal):
    """24-bit keeps the top 16 bits with an arithmetic shift (floor), for negative samples too."""
    low = np.random.default_rng(3).integers(0, 256, size=signal.shape[0])
    samples24 = (signal.astype(np.int32) << 8) | low.astype(np.int32)
    path = _write(tmp_path / "x.wav", samples24 << 8, "PCM_24", "WAV")
    assert_equal_ints(_read(path), samples24 >> 8, "PCM_24 with low bits")


@pytest.mark.parametrize("fmt,ext,subtype", [("WAV", "wav", "PCM_U8"), ("FLAC", "flac", "PCM_S8")])
def test_8bit_reads_back_top_byte(tmp_path, signal, fmt, ext, subtype):
    """8-bit files keep the top byte of each int16 (written as x >> 8); they read back as (x >> 8) << 8."""
    path = _write(tmp_path / f"x.{ext}", signal, subtype, fmt)
    assert_equal_ints(_read(path), (signal.astype(np.int32) >> 8) << 8, f"{fmt} {subtype}")


def test_wav_with_chunks_around_data_reads_exactly(tmp_path, signal):
    """A LIST chunk before (or after) the data chunk must not look like truncation."""
    path = tmp_path / "tagged.wav"
    with sf.SoundFile(str(path), "w", RATE, 1, "PCM_16") as fh:
        fh.title = "tagged"
        fh.write(signal)
    raw = path.read_bytes()
    assert raw.index(b"LIST") < raw.index(b"data")
    assert_equal_ints(_read(path), signal, "WAV with LIST chunk")
    trailer = b"junk" + struct.pack("<I", 4) + b"\0\0\0\0"
    path.write_bytes(raw[:4] + struct.pack("<I", len(raw) - 8 + len(trailer)) + raw[8:] + trailer)
    assert_equal_ints(_read(path), signal, "WAV with a chunk after data")


def test_streamed_wav_with_unknown_data_length_reads_to_end(tmp_path, signal):
    """Writers that cannot seek back leave the data length 0xFFFFFFFF: read to end of file, no error."""
    path = _write(tmp_path / "x.wav", signal, "PCM_16", "WAV")
    raw = bytearray(path.read_bytes())
    at = raw.index(b"data") + 4
    raw[at:at + 4] = struct.pack("<I", 0xFFFFFFFF)
    path.write_bytes(bytes(raw))
    assert_equal_ints(_read(path), signal, "WAV with unknown data length")


def test_empty_wav_reads_as_no_samples(tmp_path):
    path = _write(tmp_path / "empty.wav", np.zeros(0, np.int16), "PCM_16", "WAV")
    assert _read(path).shape == (0,)


# ---------------------------------------------------------------------------
# Float: full scale 1.0 = 32768, rounded half to even, saturated
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE"])
def test_float_wav_of_normalised_int16_reads_back_exactly(tmp_path, signal, subtype):
    path = _write(tmp_path / "x.wav", signal.astype(np.float64) / 32768, subtype, "WAV")
    # libsndfile alone would give raw rounded values: -1, 0 or 1 here.
    assert set(np.unique(sf.read(str(path), dtype="int16")[0])) <= {-1, 0, 1}
    got = _read(path)
    assert np.abs(got.astype(np.int32) - signal).max() <= 1, "contract: within 1 LSB"
    assert_equal_ints(got, signal, f"WAV {subtype} of x / 32768")


def test_float_scaling_rounding_and_saturation(tmp_path):
    lsb = 1 / 32768
    values = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 1.5, -1.5, 0.5 * lsb, 1.5 * lsb, -2.5 * lsb, 32766.6 * lsb, -FLOAT_PEAK_LIMIT])
    expected = np.array([0, 16384, -16384, 32767, -32768, 32767, -32768, 0, 2, -2, 32767, -32768])
    path = _write(tmp_path / "x.wav", values.astype(np.float32), "FLOAT", "WAV")
    assert_equal_ints(_read(path), expected, "float -> int16 (x 32768, half to even, saturate)")


def test_float_file_holding_raw_int16_values_is_refused(tmp_path, signal):
    """soundfile writing int16 into a float file stores 32767.0, not 1.0: that is not [-1, 1] audio."""
    path = _write(tmp_path / "raw.wav", signal, "FLOAT", "WAV")
    with pytest.raises(AudioFormatError, match=r"'.*raw\.wav' is a float file with peak 32768; expected samples in \[-1, 1\]"):
        read_pcm16(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_float_samples_are_refused(tmp_path, bad):
    path = _write(tmp_path / "x.wav", np.array([0.0, bad, 0.25], np.float32), "FLOAT", "WAV")
    with pytest.raises(AudioFormatError, match="NaN or infinite samples; expected finite"):
        read_pcm16(path)


# ---------------------------------------------------------------------------
# Lossy Ogg: close to the signal, never wrapped
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("subtype,min_snr_db", [("VORBIS", 25.0), ("OPUS", 15.0)])
def test_ogg_reads_close_to_the_signal(tmp_path, tone, subtype, min_snr_db):
    path = _write(tmp_path / "x.ogg", tone, subtype, "OGG")
    got = _read(path)
    assert got.shape == tone.shape
    err = got.astype(np.float64) - tone
    snr_db = 10 * np.log10(np.sum(tone.astype(np.float64) ** 2) / np.sum(err ** 2))
    assert snr_db > min_snr_db, f"{subtype}: SNR {snr_db:.1f} dB"


@pytest.mark.parametrize("subtype", ["VORBIS", "OPUS"])
def test_ogg_overshoot_saturates_instead_of_wrapping(tmp_path, subtype):
    t = np.arange(RATE // 2) / RATE
    square = 0.999 * np.sign(np.sin(2 * np.pi * 440 * t))
    path = _write(tmp_path / "loud.ogg", square.astype(np.float32), subtype, "OGG")
    decoded = sf.read(str(path), dtype="float64")[0]
    assert np.abs(decoded).max() > 1.0, "the codec should overshoot full scale on this input"
    got = _read(path)
    assert_equal_ints(got, np.clip(np.rint(decoded * 32768), -32768, 32767).astype(np.int64), f"{subtype} saturated")
    assert np.all(got[decoded > 1.0] == 32767) and np.all(got[decoded < -1.0] == -32768)


# ---------------------------------------------------------------------------
# Channels and rate
# ---------------------------------------------------------------------------

def test_stereo_needs_a_channel_and_channel_picks_it(tmp_path, signal):
    other = (-(signal.astype(np.int32) + 1)).astype(np.int16)  # bitwise not: differs everywhere
    path = _write(tmp_path / "st.wav", np.stack([signal, other], axis=1), "PCM_16", "WAV")
    with pytest.raises(AudioFormatError, match=r"'.*st\.wav' has 2 channels; expected mono \(pick one with channel=0\.\.1\)"):
        read_pcm16(path)
    assert_equal_ints(_read(path, channel=0), signal, "channel 0")
    assert_equal_ints(_read(path, channel=1), other, "channel 1")
    for channel in (2, -1):
        with pytest.raises(AudioFormatError, match=rf"channel={channel} does not exist in '.*st\.wav', which has 2 channel"):
            read_pcm16(path, channel=channel)


def test_channel_0_of_a_mono_file_is_the_file(tmp_path, signal):
    path = _write(tmp_path / "m.wav", signal, "PCM_16", "WAV")
    assert_equal_ints(_read(path, channel=0), signal, "mono channel 0")


def test_wrong_sample_rate_names_both_rates(tmp_path, signal):
    path = _write(tmp_path / "r8k.wav", signal, "PCM_16", "WAV", rate=8000)
    with pytest.raises(AudioFormatError, match=r"'.*r8k\.wav' has sample rate 8000 Hz; expected 16000 Hz"):
        read_pcm16(path, sample_rate_hz=16000)
    assert read_pcm16(path)[1] == 8000  # no rate asked: the file's rate is returned


# ---------------------------------------------------------------------------
# Missing, corrupt, truncated
# ---------------------------------------------------------------------------

def test_missing_file_and_directory(tmp_path):
    with pytest.raises(AudioFormatError, match=r"audio file '.*nope\.wav' does not exist"):
        read_pcm16(tmp_path / "nope.wav")
    with pytest.raises(AudioFormatError, match=r"is a directory; expected an audio file"):
        read_pcm16(tmp_path)


@pytest.mark.parametrize("content", [b"", bytes(np.random.default_rng(7).integers(0, 256, 4000, dtype=np.uint8))],
                         ids=["empty", "random"])
def test_corrupt_file_is_refused(tmp_path, content):
    path = tmp_path / "corrupt.wav"
    path.write_bytes(content)
    with pytest.raises(AudioFormatError, match=r"cannot read '.*corrupt\.wav' as audio \(.+\); expected a sound file"):
        read_pcm16(path)


@pytest.mark.parametrize("cut", [1, 1000, 1001, 2 * 3013], ids=["mid-sample", "whole-samples", "odd", "all-data"])
def test_truncated_wav_is_refused_with_both_lengths(tmp_path, signal, cut):
    path = _write(tmp_path / "x.wav", signal, "PCM_16", "WAV")
    raw = path.read_bytes()
    path.write_bytes(raw[:-cut])
    announced = 2 * signal.shape[0]
    # libsndfile alone reads what is left without complaint:
    assert sf.info(str(path)).frames == (announced - cut) // 2
    with pytest.raises(AudioFormatError, match=(
            rf"'.*x\.wav' is truncated: its data chunk announces {announced} bytes, the file holds {announced - cut} "
            rf"\({(announced - cut) // 2} whole frames\); expected a complete file")):
        read_pcm16(path)


def test_wav_cut_inside_its_header_is_refused(tmp_path, signal):
    path = _write(tmp_path / "x.wav", signal, "PCM_16", "WAV")
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(AudioFormatError, match=r"cannot read '.*x\.wav' as audio"):
        read_pcm16(path)


def test_truncated_flac_is_refused(tmp_path, tone):
    path = _write(tmp_path / "x.flac", tone, "PCM_16", "FLAC")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(AudioFormatError, match=r"'.*x\.flac'.*(truncated|expected a complete, valid FLAC file)"):
        read_pcm16(path)


@pytest.mark.parametrize("where", ["mid-page", "page-boundary"])
def test_truncated_ogg_is_refused(tmp_path, tone, where):
    path = _write(tmp_path / "x.ogg", tone, "VORBIS", "OGG")
    raw = path.read_bytes()
    end = raw.rindex(b"OggS") if where == "page-boundary" else len(raw) - 1
    path.write_bytes(raw[:end])
    assert sf.info(str(path)).frames < tone.shape[0]  # libsndfile alone reads the pages that are left
    with pytest.raises(AudioFormatError, match=r"'.*x\.ogg' is truncated: it does not end with a complete Ogg page"):
        read_pcm16(path)
