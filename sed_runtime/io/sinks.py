"""Event sinks: every event is written and flushed the moment it closes.

* :class:`JsonlSink` -- one JSON object per line (``label``, ``onset``,
  ``offset``, ``peak``, ``mean``, plus any extra fields such as ``file``).
* :class:`TsvSink` -- ``onset<TAB>offset<TAB>label``: the layout Audacity label
  tracks, sed_eval and the DCASE tools read.
* :class:`CsvSink` -- a header line, then ``onset,offset,label,peak,mean``.
* :class:`CallbackSink` -- calls a user function with each :class:`Event`.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Callable, TextIO

from sed_runtime.decision.engine import Event
from sed_runtime.errors import ConfigError

__all__ = ["Sink", "JsonlSink", "TsvSink", "CsvSink", "CallbackSink", "open_sink", "FORMATS"]

FORMATS = ("jsonl", "tsv", "csv")


class Sink:
    """Base: ``write(event)`` then ``close()``; usable as a context manager."""

    def write(self, event: Event, **extra) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _StreamSink(Sink):
    def __init__(self, stream: TextIO, owns: bool) -> None:
        self._stream = stream
        self._owns = owns

    def _put(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()

    def close(self) -> None:
        if self._owns and not self._stream.closed:
            self._stream.close()


class JsonlSink(_StreamSink):
    def write(self, event: Event, **extra) -> None:
        self._put(json.dumps({**event.to_dict(), **extra}) + "\n")


class TsvSink(_StreamSink):
    def write(self, event: Event, **extra) -> None:
        self._put(f"{event.onset_s:.6f}\t{event.offset_s:.6f}\t{event.label}\n")


class CsvSink(_StreamSink):
    def __init__(self, stream: TextIO, owns: bool) -> None:
        super().__init__(stream, owns)
        self._writer = csv.writer(stream, lineterminator="\n")
        self._writer.writerow(["onset", "offset", "label", "peak", "mean"])
        stream.flush()

    def write(self, event: Event, **extra) -> None:
        self._writer.writerow([f"{event.onset_s:.6f}", f"{event.offset_s:.6f}", event.label,
                               f"{event.peak_score:.6f}", f"{event.mean_score:.6f}"])
        self._stream.flush()


class CallbackSink(Sink):
    def __init__(self, callback: Callable[[Event], None]) -> None:
        self._callback = callback

    def write(self, event: Event, **extra) -> None:
        self._callback(event)


def open_sink(fmt: str, path: str | Path | None = None) -> Sink:
    """A sink of format ``fmt`` writing to ``path`` (``None`` or ``"-"``: standard output)."""
    classes = {"jsonl": JsonlSink, "tsv": TsvSink, "csv": CsvSink}
    if fmt not in classes:
        raise ConfigError(f"format={fmt!r} is not supported; expected one of {FORMATS}")
    if path is None or str(path) == "-":
        return classes[fmt](sys.stdout, owns=False)
    try:
        stream = open(path, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise ConfigError(f"cannot write events to {str(path)!r}: {exc.strerror or exc}") from exc
    return classes[fmt](stream, owns=True)
