"""Reading recordings into int16 mono PCM at the device rate.

Integer PCM (8/16/24/32 bits, and codecs that decode to integers, e.g. FLAC)
is converted to int16 by libsndfile (``soundfile``): 8-bit unsigned becomes
``(u - 128) << 8``; 24/32-bit integers keep their top 16 bits (``>>``, floor).

Float data (32/64-bit float files, and Vorbis/Opus/MPEG, which decode to float)
is read as float and converted here, because libsndfile's own float -> int16
read (measured with libsndfile 1.2.2) does not scale a float file unless asked
to (it rounds the raw value and clips it to int16, so ``[-1, 1]`` audio comes
out as -1, 0 or 1) and scales Vorbis by 32767 without clipping (overshoot
wraps around to the opposite sign).  Here
full scale is 1.0 = 32768, the exact inverse of reading int16 PCM as float
(``x / 32768``): ``clip(rint(x * 32768), -32768, 32767)``, ``rint`` rounding
half to even, so +1.0 saturates to 32767.  A 32/64-bit float file whose peak
exceeds ``FLOAT_PEAK_LIMIT`` (+6 dBFS) is refused: it is not normalised audio
(e.g. int16 values written as float) or is so overdriven that saturated
features would mislead.  Lossy decoders overshoot full scale on loud input
(Opus reaches 2.8 on a 0.999 square wave), so their output is saturated
whatever its peak.  NaN and infinite samples are refused.

Nothing is read silently wrong: no resampling (a file at another rate is
refused with a message naming both rates), no implicit downmix (a
multi-channel file needs ``channel``), and a truncated file is refused:
libsndfile reads a WAV whose data chunk is shorter than its header announces,
and an Ogg file cut anywhere, up to where it ends without a word, so both are
checked here (WAV: announced vs present bytes; Ogg: the last page must be
complete and mark the end of the stream).  A truncated FLAC fails in
libsndfile itself ("lost sync") or reads fewer frames than its header
announces; both are reported.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from sed_runtime.errors import AudioFormatError

__all__ = ["read_pcm16", "FLOAT_PEAK_LIMIT"]

# libsndfile subtypes whose samples are floats: stored as such, or decoded as such by a lossy codec.
_FLOAT_PCM_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})
_FLOAT_SUBTYPES = _FLOAT_PCM_SUBTYPES | {"VORBIS", "OPUS", "MPEG_LAYER_I", "MPEG_LAYER_II", "MPEG_LAYER_III"}
# Largest peak of a float file accepted (and saturated): +6 dBFS.
FLOAT_PEAK_LIMIT = 2.0
# A WAV data chunk length writers use when they cannot seek back to fill it in ("read to end of file").
_WAV_UNKNOWN_LENGTHS = (0, 0xFFFFFFFF)
# Largest Ogg page: 27-byte header, 255 lacing values, 255 segments of 255 bytes.
_OGG_MAX_PAGE = 27 + 255 + 255 * 255


def check_complete(path, info, name: str) -> None:
    """Refuse a file that libsndfile would read silently although it is cut short.

    libsndfile reads a truncated WAV or Ogg file without complaint (the frame
    count simply shrinks), so the WAV data chunk's announced length is
    compared with the bytes present, and an Ogg file must end with its
    end-of-stream page.
    """
    if info.format in ("WAV", "WAVEX"):
        data_chunk = _wav_data_chunk(path)
        if data_chunk is not None:
            announced, present = data_chunk
            if announced not in _WAV_UNKNOWN_LENGTHS and present < announced:
                raise AudioFormatError(
                    f"{name} is truncated: its data chunk announces {announced} bytes, the file holds {present} "
                    f"({info.frames} whole frames); expected a complete file (re-export it)"
                )
    if info.format == "OGG" and not _ogg_ends_stream(path):
        raise AudioFormatError(
            f"{name} is truncated: it does not end with a complete Ogg page marking the end of the stream "
            f"({info.frames} frames readable); expected a complete file (re-export it)"
        )


def read_pcm16(path: str | Path, sample_rate_hz: int | None = None, channel: int | None = None) -> tuple[np.ndarray, int]:
    """Read ``path`` as int16 mono; return (samples, sample_rate_hz).

    ``channel`` picks one channel of a multi-channel file (0-based); without
    it a multi-channel file is refused.  ``sample_rate_hz`` (when given) must
    equal the file's rate.  Raises :class:`AudioFormatError` naming the file
    and what was expected.
    """
    import soundfile as sf  # deferred: keeps `import sed_runtime` light

    path = Path(path)
    name = repr(str(path))
    if not path.exists():
        raise AudioFormatError(f"audio file {name} does not exist")
    if path.is_dir():
        raise AudioFormatError(f"{name} is a directory; expected an audio file")
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise AudioFormatError(
            f"cannot read {name} as audio ({_reason(exc)}); expected a sound file libsndfile decodes (WAV, FLAC, OGG, ...)"
        ) from exc
    if sample_rate_hz is not None and info.samplerate != sample_rate_hz:
        raise AudioFormatError(
            f"{name} has sample rate {info.samplerate} Hz; expected {sample_rate_hz} Hz "
            f"(resample it first, e.g. `sox in.wav -r {sample_rate_hz} out.wav`)"
        )
    if info.channels > 1 and channel is None:
        raise AudioFormatError(
            f"{name} has {info.channels} channels; expected mono (pick one with channel=0..{info.channels - 1})"
        )
    if channel is not None and not 0 <= channel < info.channels:
        raise AudioFormatError(f"channel={channel} does not exist in {name}, which has {info.channels} channel(s)")
    check_complete(path, info, name)
    is_float = info.subtype in _FLOAT_SUBTYPES
    try:
        data, rate = sf.read(str(path), dtype="float64" if is_float else "int16", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise AudioFormatError(f"cannot decode {name} ({_reason(exc)}); expected a complete, valid {info.format} file") from exc
    if info.frames and data.shape[0] < info.frames:
        raise AudioFormatError(
            f"{name} is truncated: its header announces {info.frames} frames, only {data.shape[0]} could be read"
        )
    samples = data[:, channel or 0]
    if is_float:
        samples = _float_to_pcm16(samples, name, check_peak=info.subtype in _FLOAT_PCM_SUBTYPES)
    return np.ascontiguousarray(samples), int(rate)


def _float_to_pcm16(x: np.ndarray, name: str, check_peak: bool) -> np.ndarray:
    """Full scale 1.0 -> 32768, rounded half to even, saturated to int16."""
    if not np.isfinite(x).all():
        raise AudioFormatError(f"{name} contains NaN or infinite samples; expected finite float samples in [-1, 1]")
    peak = float(np.abs(x).max()) if x.size else 0.0
    if check_peak and peak > FLOAT_PEAK_LIMIT:
        raise AudioFormatError(
            f"{name} is a float file with peak {peak:g}; expected samples in [-1, 1] (full scale 1.0; "
            f"at most {FLOAT_PEAK_LIMIT:g} accepted and saturated)"
        )
    return np.clip(np.rint(x * 32768.0), -32768, 32767).astype(np.int16)  # x * 2**15 is exact in float64


def _wav_data_chunk(path: Path) -> tuple[int, int] | None:
    """(announced, present) byte counts of a RIFF/RIFX WAV's data chunk; None when there is none."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return None
        order = "<" if head[:4] == b"RIFF" else ">"
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            chunk_id, chunk_len = struct.unpack(order + "4sI", fh.read(8))
            if chunk_id == b"data":
                return chunk_len, size - pos - 8
            pos += 8 + chunk_len + (chunk_len & 1)  # chunks are padded to an even length
    return None


def _ogg_ends_stream(path: Path) -> bool:
    """Whether the file ends exactly at the end of an Ogg page flagged end-of-stream."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(max(0, size - _OGG_MAX_PAGE))
        tail = fh.read()
    pos = tail.rfind(b"OggS")
    while pos >= 0:
        header = tail[pos:pos + 27]
        if len(header) == 27 and header[4] == 0:  # stream structure version 0: a page header
            lacing = tail[pos + 27:pos + 27 + header[26]]
            page_end = pos + 27 + header[26] + sum(lacing)
            return len(lacing) == header[26] and page_end == len(tail) and bool(header[5] & 0x04)
        pos = tail.rfind(b"OggS", 0, pos)
    return False


def _reason(exc: Exception) -> str:
    """libsndfile's own words, without soundfile's repetition of the file name."""
    return str(getattr(exc, "error_string", "") or exc).strip().rstrip(".")
