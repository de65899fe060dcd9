"""Reference annotations, detection files and evaluation manifests.

Event lists are text, one event per line, fields separated by tabs (or, when a
line has no tab, by runs of spaces):

* ``onset offset label`` -- one file's events, times in seconds: the layout of
  Audacity label tracks, sed_eval and the DCASE tools (and of
  :class:`sed_runtime.io.sinks.TsvSink`);
* ``filename onset offset label`` -- the DCASE multi-file form; a line holding
  only ``filename`` lists a file that has no events.

Blank lines and lines starting with ``#`` are skipped, as are the frequency
lines (starting with ``\\``) that Audacity writes for spectral selections and a
header line such as ``filename<TAB>onset<TAB>offset<TAB>event_label``.

A manifest lists what to evaluate, as JSON (a list of objects, or an object
with an ``items`` list) or as CSV with a header line.  Fields of an item:

``audio``
    path of the recording (relative paths are relative to the manifest);
``labels``
    its reference events (empty or absent: the file holds no target event);
``category``
    what the audio is, e.g. ``speech``, ``music``, ``ambience``; false alarms
    are broken down by it (default ``unspecified``);
``positives``
    ``real`` or ``synthetic``: where the file's target events come from
    (``none`` for a file without target events, the default when ``labels``
    is absent); every reported figure says which kind it rests on;
``source``
    where the recording comes from (a package, a corpus); reported with the
    false-alarm figures (default ``unspecified``);
``events``
    optional detections already made for this file (an event list), for
    evaluating without a model;
``scores``
    optional score series already computed for this file (``.npz`` with
    ``scores`` [steps, classes], ``step_s``, ``labels`` and optionally
    ``offset_s``), for threshold sweeps without a model;
``duration_s``
    optional length of the recording; read from the audio file when absent.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from sed_runtime.errors import SedError

__all__ = [
    "AnnotationError", "LabeledEvent", "ManifestItem", "POSITIVES_KINDS",
    "read_event_list", "read_event_lists", "events_for", "write_event_list", "write_event_lists",
    "parse_event_list", "read_manifest", "audio_duration_s",
]

POSITIVES_KINDS = ("real", "synthetic", "none")
_HEADER_WORDS = {"filename", "file", "onset", "offset", "event_label", "label", "event_onset", "event_offset"}


class AnnotationError(SedError, ValueError):
    """An event list or manifest cannot be read: names the file, line, value and what was expected."""


@dataclass(frozen=True)
class LabeledEvent:
    """One event of a reference annotation or a detection list, times in seconds."""

    onset_s: float
    offset_s: float
    label: str

    @property
    def duration_s(self) -> float:
        return self.offset_s - self.onset_s

    @classmethod
    def from_event(cls, event) -> "LabeledEvent":
        """From a :class:`sed_runtime.decision.Event` (or anything with ``onset_s``, ``offset_s``, ``label``)."""
        return cls(float(event.onset_s), float(event.offset_s), str(event.label))


def _time(text: str, what: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise AnnotationError(f"{where}: {what} {text!r} is not a number; expected seconds, e.g. 1.250") from None
    if not math.isfinite(value) or value < 0:
        raise AnnotationError(f"{where}: {what} {text!r} must be a finite number of seconds >= 0")
    return value


def _fields(line: str) -> list[str]:
    if "\t" in line:
        return [f.strip() for f in line.split("\t")]
    return line.split()


def _is_header(fields: list[str]) -> bool:
    return bool(fields) and all(f.lower() in _HEADER_WORDS for f in fields)


def parse_event_list(text: str, name: str = "<text>") -> dict[str | None, list[LabeledEvent]]:
    """Parse event-list text; returns ``{filename: events}`` (key ``None`` for the one-file form).

    Every line of one text must have the same form (3 fields, or 1/4 fields for
    the multi-file form).  Events keep the order of the text.
    """
    out: dict[str | None, list[LabeledEvent]] = {}
    form = None  # "single" or "multi"
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip("\r\n")
        if not line.strip() or line.lstrip().startswith(("#", "\\")):
            continue
        fields = _fields(line)
        if form is None and _is_header(fields):
            continue
        where = f"{name}:{number}"
        if len(fields) == 3:
            line_form, filename, (onset, offset, label) = "single", None, fields
        elif len(fields) == 4:
            line_form, (filename, onset, offset, label) = "multi", fields
        elif len(fields) == 1:
            line_form, filename = "multi", fields[0]
        else:
            raise AnnotationError(
                f"{where}: {len(fields)} fields in {line!r}; expected 'onset offset label' (3 fields), "
                f"'filename onset offset label' (4) or 'filename' (1)")
        if form is None:
            form = line_form
        elif form != line_form:
            expected = "'onset offset label'" if form == "single" else "'filename onset offset label' or 'filename'"
            raise AnnotationError(f"{where}: {line!r} mixes forms; earlier lines of this file are {expected}")
        if len(fields) == 1:
            out.setdefault(filename, [])
            continue
        on = _time(onset, "onset", where)
        off = _time(offset, "offset", where)
        if off < on:
            raise AnnotationError(f"{where}: offset {offset} is before onset {onset}; expected onset <= offset")
        if not label:
            raise AnnotationError(f"{where}: empty label in {line!r}; expected a class name")
        out.setdefault(filename, []).append(LabeledEvent(on, off, label))
    if form is None:
        return {None: []}
    return out


def _read_text(path: str | Path, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise AnnotationError(f"cannot read {what} {str(path)!r}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise AnnotationError(f"{what} {str(path)!r} is not UTF-8 text: {exc}") from exc


def read_event_lists(path: str | Path) -> dict[str | None, list[LabeledEvent]]:
    """Read an event list of either form: ``{filename: events}``, key ``None`` for the one-file form."""
    return parse_event_list(_read_text(path, "event list"), str(path))


def read_event_list(path: str | Path, filename: str | None = None) -> list[LabeledEvent]:
    """Events of one file.

    A one-file list is returned whole.  From a multi-file list, ``filename``
    picks the events of the file with that name (or base name); a file the
    list does not mention has no events.
    """
    lists = read_event_lists(path)
    if None in lists:
        return lists[None]
    if filename is None:
        if len(lists) == 1:
            return next(iter(lists.values()))
        raise AnnotationError(f"{str(path)!r} lists events of {len(lists)} files; say which file to read")
    return events_for(lists, filename)


def events_for(lists: Mapping[str | None, list[LabeledEvent]], filename: str) -> list[LabeledEvent]:
    """The events of ``filename`` in a multi-file mapping, matched by full name, then base name, then stem."""
    if filename in lists:
        return lists[filename]
    for key_of in (lambda s: Path(s).name, lambda s: Path(s).stem):
        wanted = key_of(filename)
        hits = [k for k in lists if k is not None and key_of(k) == wanted]
        if len(hits) == 1:
            return lists[hits[0]]
        if len(hits) > 1:
            raise AnnotationError(f"{filename!r} matches several files of the event list: {sorted(hits)}")
    return []


def _format_event(event) -> str:
    return f"{event.onset_s:.6f}\t{event.offset_s:.6f}\t{event.label}"


def write_event_list(path: str | Path, events: Iterable) -> None:
    """Write ``onset<TAB>offset<TAB>label`` lines (Audacity / sed_eval layout), 6 decimals."""
    text = "".join(_format_event(e) + "\n" for e in events)
    _write_text(path, text)


def write_event_lists(path: str | Path, lists: Mapping[str, Iterable]) -> None:
    """Write the DCASE multi-file form; a file without events gets a line with its name only."""
    lines = []
    for filename, events in lists.items():
        events = list(events)
        if not events:
            lines.append(f"{filename}\n")
        lines.extend(f"{filename}\t{_format_event(e)}\n" for e in events)
    _write_text(path, "".join(lines))


def _write_text(path: str | Path, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        raise AnnotationError(f"cannot write event list {str(path)!r}: {exc.strerror or exc}") from exc


# ---------------------------------------------------------------------------
# manifest
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ManifestItem:
    """One recording to evaluate (paths already resolved against the manifest's folder)."""

    audio: str
    labels: str | None = None
    category: str = "unspecified"
    positives: str = "none"
    source: str = "unspecified"
    events: str | None = None
    scores: str | None = None
    duration_s: float | None = None


_MANIFEST_FIELDS = ("audio", "labels", "category", "positives", "source", "events", "scores", "duration_s")


def _manifest_item(entry: Mapping, where: str, base: Path) -> ManifestItem:
    if not isinstance(entry, Mapping):
        raise AnnotationError(f"{where}: expected an object with an 'audio' field, got {entry!r}")
    unknown = sorted(set(entry) - set(_MANIFEST_FIELDS))
    if unknown:
        raise AnnotationError(f"{where}: unknown field(s) {unknown}; expected among {list(_MANIFEST_FIELDS)}")

    def text(key: str) -> str | None:
        value = entry.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise AnnotationError(f"{where}: {key}={value!r} must be a string")
        value = value.strip()
        return value or None

    def path(key: str) -> str | None:
        value = text(key)
        if value is None:
            return None
        p = Path(value)
        return str(p if p.is_absolute() else base / p)

    audio = path("audio")
    if audio is None:
        raise AnnotationError(f"{where}: 'audio' is missing; expected the path of a recording")
    labels = path("labels")
    positives = text("positives")
    if positives is None:
        if labels is not None:
            raise AnnotationError(
                f"{where}: 'positives' is missing for {entry.get('labels')!r}; expected 'real' or 'synthetic' "
                f"(or 'none' for a file without target events), so that every figure says what it rests on")
        positives = "none"
    positives = positives.lower()
    if positives not in POSITIVES_KINDS:
        raise AnnotationError(f"{where}: positives={positives!r}; expected one of {list(POSITIVES_KINDS)}")
    duration = entry.get("duration_s")
    if duration is not None and duration != "":
        try:
            duration = float(duration)
        except (TypeError, ValueError):
            raise AnnotationError(f"{where}: duration_s={duration!r} is not a number of seconds") from None
        if not math.isfinite(duration) or duration <= 0:
            raise AnnotationError(f"{where}: duration_s={duration!r} must be a finite number of seconds > 0")
    else:
        duration = None
    return ManifestItem(audio=audio, labels=labels, category=text("category") or "unspecified",
                        positives=positives, source=text("source") or "unspecified",
                        events=path("events"), scores=path("scores"), duration_s=duration)


def read_manifest(path: str | Path) -> list[ManifestItem]:
    """Read a JSON or CSV manifest (format by suffix; ``.json`` or anything else as CSV)."""
    path = Path(path)
    text = _read_text(path, "manifest")
    base = path.parent
    name = str(path)
    items: list[ManifestItem] = []
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise AnnotationError(f"manifest {name!r} is not valid JSON: {exc}") from exc
        if isinstance(data, Mapping):
            if "items" not in data:
                raise AnnotationError(f"manifest {name!r}: expected a list of items or an object with an 'items' list")
            data = data["items"]
        if not isinstance(data, list):
            raise AnnotationError(f"manifest {name!r}: expected a list of items, got {type(data).__name__}")
        for i, entry in enumerate(data):
            items.append(_manifest_item(entry, f"{name}: item {i}", base))
    else:
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None or "audio" not in [f.strip() for f in reader.fieldnames]:
            raise AnnotationError(f"manifest {name!r}: the first line must be a header naming at least 'audio' "
                                  f"(columns among {list(_MANIFEST_FIELDS)})")
        reader.fieldnames = [f.strip() for f in reader.fieldnames]
        for row in reader:
            where = f"{name}:{reader.line_num}"
            if None in row:
                raise AnnotationError(f"{where}: more values than header columns ({len(reader.fieldnames)})")
            items.append(_manifest_item({k: v for k, v in row.items() if v is not None}, where, base))
    if not items:
        raise AnnotationError(f"manifest {name!r} lists no recordings")
    return items


def audio_duration_s(path: str | Path) -> float:
    """Length of a recording in seconds, from its header (soundfile)."""
    import soundfile

    try:
        info = soundfile.info(str(path))
    except (RuntimeError, OSError) as exc:  # soundfile raises RuntimeError subclasses for unreadable files
        raise AnnotationError(f"cannot read the length of {str(path)!r}: {exc}") from exc
    if info.samplerate <= 0:
        raise AnnotationError(f"{str(path)!r} reports sample rate {info.samplerate}")
    return info.frames / info.samplerate
