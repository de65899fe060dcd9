"""Reading recordings into int16 mono PCM at the device rate.

Integer PCM of 8/16/24/32 bits and float files are read through libsndfile
(``soundfile``) and converted to int16 by it (24/32-bit integers keep their
top 16 bits; float is scaled by 32767 and clipped).  No resampling here: a
file at another rate is refused with a message naming both rates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sed_runtime.errors import AudioFormatError

__all__ = ["read_pcm16"]


def read_pcm16(path: str | Path, sample_rate_hz: int | None = None, channel: int | None = None) -> tuple[np.ndarray, int]:
    """Read ``path`` as int16 mono; return (samples, sample_rate_hz).

    ``channel`` picks one channel of a multi-channel file (0-based); without
    it a multi-channel file is refused.  ``sample_rate_hz`` (when given) must
    equal the file's rate.
    """
    import soundfile as sf  # deferred: keeps `import sed_runtime` light

    path = Path(path)
    try:
        info = sf.info(str(path))
    except FileNotFoundError as exc:
        raise AudioFormatError(f"audio file {str(path)!r} does not exist") from exc
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise AudioFormatError(f"cannot read {str(path)!r} as audio: {exc}") from exc
    if sample_rate_hz is not None and info.samplerate != sample_rate_hz:
        raise AudioFormatError(
            f"{str(path)!r} has sample rate {info.samplerate} Hz; expected {sample_rate_hz} Hz "
            f"(resample it first, e.g. `sox in.wav -r {sample_rate_hz} out.wav`)"
        )
    if info.channels > 1 and channel is None:
        raise AudioFormatError(
            f"{str(path)!r} has {info.channels} channels; expected mono (pick one with channel=0..{info.channels - 1})"
        )
    if channel is not None and not 0 <= channel < info.channels:
        raise AudioFormatError(f"channel={channel} does not exist in {str(path)!r}, which has {info.channels} channel(s)")
    try:
        data, rate = sf.read(str(path), dtype="int16", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise AudioFormatError(f"cannot decode {str(path)!r}: {exc}") from exc
    if info.frames and data.shape[0] < info.frames:
        raise AudioFormatError(
            f"{str(path)!r} is truncated: its header announces {info.frames} frames, only {data.shape[0]} could be read"
        )
    samples = np.ascontiguousarray(data[:, channel or 0])
    return samples, int(rate)
