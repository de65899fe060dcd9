"""Fetch the CMSIS-DSP C sources from the ``cmsisdsp`` source distribution on the package index.

Nothing of CMSIS-DSP is stored in this repository: the firmware build
(``build.py``) and the host-built test oracle (``tests/firmware/cmsis_host.py``)
both call :func:`ensure_source`, which returns a directory holding
``Include/``, ``PrivateInclude/`` and ``Source/`` of CMSIS-DSP.

Where the sources come from, in order: the ``source`` argument, else
``$SED_CMSIS_DSP_SRC``, else the pinned sdist ``cmsisdsp-1.10.3.tar.gz``,
located through the package index's simple page (``$PIP_INDEX_URL`` and
``$PIP_EXTRA_INDEX_URL`` first, then PyPI), sha256-checked, and unpacked
under the user cache (``$XDG_CACHE_HOME`` or ``~/.cache``, then
``sed_runtime/cmsisdsp-1.10.3``).  Only ``Include``, ``PrivateInclude``,
``Source`` and ``LICENSE`` are unpacked.

Command line: ``python examples/firmware/fetch_cmsis.py`` prints the directory.
"""

from __future__ import annotations

import hashlib
import html.parser
import json
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

SDIST_NAME = "cmsisdsp"
SDIST_VERSION = "1.10.3"
SDIST_FILE = f"{SDIST_NAME}-{SDIST_VERSION}.tar.gz"
SDIST_SHA256 = "307d32298faa7c58db912851027fce35f886fec7eb1a27c4b309ce1a97f47519"
DEFAULT_INDEX = "https://pypi.org/simple/"

__all__ = ["SDIST_NAME", "SDIST_VERSION", "CmsisSourceError", "cache_root", "download_sdist", "ensure_source",
           "is_source_tree"]


class CmsisSourceError(RuntimeError):
    """The CMSIS-DSP sources could not be obtained (no network, wrong checksum, bad archive)."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sed_runtime"


def is_source_tree(path: Path) -> bool:
    return (path / "Include" / "arm_math.h").is_file() and (path / "Source" / "TransformFunctions").is_dir()


def _index_urls() -> list[str]:
    urls = []
    for var in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        urls += os.environ.get(var, "").split()
    if DEFAULT_INDEX not in urls:
        urls.append(DEFAULT_INDEX)
    return urls


class _Anchors(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def _sdist_url_from_index(index: str) -> str | None:
    page = urllib.parse.urljoin(index.rstrip("/") + "/", f"{SDIST_NAME}/")
    req = urllib.request.Request(
        page,
        headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"},
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        body = resp.read()
        ctype = resp.headers.get("Content-Type", "")
    if "json" in ctype:
        for f in json.loads(body)["files"]:
            if f["filename"] == SDIST_FILE:
                return urllib.parse.urljoin(page, f["url"])
        return None
    parser = _Anchors()
    parser.feed(body.decode("utf-8", "replace"))
    for href in parser.hrefs:
        url = urllib.parse.urljoin(page, href)
        if Path(urllib.parse.urlsplit(url).path).name == SDIST_FILE:
            return url.split("#", 1)[0]
    return None


def download_sdist(dest_dir: Path) -> Path:
    """Fetch the pinned sdist (sha256-checked) into dest_dir; return the tarball path."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    tarball = dest_dir / SDIST_FILE
    if tarball.is_file() and hashlib.sha256(tarball.read_bytes()).hexdigest() == SDIST_SHA256:
        return tarball
    errors = []
    for index in _index_urls():
        try:
            url = _sdist_url_from_index(index)
            if url is None:
                errors.append(f"{index}: no {SDIST_FILE}")
                continue
            with urllib.request.urlopen(url, timeout=300) as resp:
                data = resp.read()
        except Exception as exc:  # network / index format problems: try the next index
            errors.append(f"{index}: {exc}")
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest != SDIST_SHA256:
            errors.append(f"{url}: sha256 {digest} != {SDIST_SHA256}")
            continue
        tmp = tarball.with_suffix(f".part{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, tarball)
        return tarball
    raise CmsisSourceError(f"could not download {SDIST_FILE}: " + "; ".join(errors))


def ensure_source(source: str | os.PathLike | None = None) -> Path:
    """Return a CMSIS-DSP source tree (a directory with Include/ and Source/)."""
    if source is None:
        source = os.environ.get("SED_CMSIS_DSP_SRC") or None
    if source is not None:
        path = Path(source).expanduser()
        for cand in (path, path / f"{SDIST_NAME}-{SDIST_VERSION}"):
            if is_source_tree(cand):
                return cand.resolve()
        raise CmsisSourceError(f"{path} is not a CMSIS-DSP source tree (needs Include/arm_math.h and Source/)")

    root = cache_root() / f"{SDIST_NAME}-{SDIST_VERSION}"
    tree = root / "src" / f"{SDIST_NAME}-{SDIST_VERSION}"
    if is_source_tree(tree):
        return tree
    tarball = download_sdist(root)
    staging = Path(tempfile.mkdtemp(prefix="src.", dir=root))
    try:
        with tarfile.open(tarball, "r:gz") as tf:
            top = f"{SDIST_NAME}-{SDIST_VERSION}/"
            wanted = [
                m
                for m in tf.getmembers()
                if m.name.startswith(top)
                and m.name[len(top):].split("/", 1)[0] in ("Include", "PrivateInclude", "Source", "LICENSE")
            ]
            for m in wanted:
                if not (m.isfile() or m.isdir()) or ".." in Path(m.name).parts or m.name.startswith("/"):
                    raise CmsisSourceError(f"unexpected member in {SDIST_FILE}: {m.name}")
            if hasattr(tarfile, "data_filter"):
                tf.extractall(staging, members=wanted, filter="data")
            else:  # pragma: no cover - old Python without extraction filters
                tf.extractall(staging, members=wanted)
        (root / "src").mkdir(exist_ok=True)
        try:
            os.replace(staging / f"{SDIST_NAME}-{SDIST_VERSION}", tree)
        except OSError:
            if not is_source_tree(tree):  # lost a race only if the winner finished
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not is_source_tree(tree):
        raise CmsisSourceError(f"unpacked {SDIST_FILE} lacks the expected sources")
    return tree


if __name__ == "__main__":
    try:
        print(ensure_source(sys.argv[1] if len(sys.argv) > 1 else None))
    except CmsisSourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
