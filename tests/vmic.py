"""A private virtual microphone per test, for the ``mic`` tier.

``tools/virtual_mic.sh`` from the shared folder starts a PulseAudio daemon
whose null sink's monitor is the capture source ``vmic``; PortAudio (and so
``sounddevice``) reaches it through the ALSA pulse plugin.  The ``vmic``
fixture starts one daemon per test in its own directory and stops it after;
it skips the test when the daemon cannot be started, or fails it when
``SED_REQUIRE_MIC=1`` (as in CI).  Import the fixture into a test module with
``from vmic import vmic  # noqa: F401``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from conftest import SHARED

VIRTUAL_MIC = SHARED / "tools" / "virtual_mic.sh"


def reinit_portaudio():
    """PortAudio lists devices once, at initialisation: make an imported sounddevice look again."""
    sd = sys.modules.get("sounddevice")
    if sd is not None and hasattr(sd, "_terminate"):
        sd._terminate()
        sd._initialize()


@pytest.fixture
def vmic(tmp_path_factory, monkeypatch):
    """A private virtual microphone daemon for one test; yields a function running virtual_mic.sh commands.

    ``vmic.env`` is the environment a client (this process, or a subprocess
    given ``env=vmic.env``) needs to reach the daemon; this process's
    environment is set too for the duration of the test.
    """
    if not VIRTUAL_MIC.exists():
        pytest.skip(f"{VIRTUAL_MIC.name} is not in the shared folder")
    vmic_dir = tmp_path_factory.mktemp("vmic")
    env = dict(os.environ, VMIC_DIR=str(vmic_dir))

    def run(*args, timeout=60, check=True):
        result = subprocess.run(["bash", str(VIRTUAL_MIC), *args], env=env, capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"virtual_mic.sh {' '.join(args)} failed ({result.returncode}): "
                               f"{result.stderr.strip()[-600:]}")
        return result

    try:
        started = run("start", timeout=600)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        run("stop", check=False)
        if os.environ.get("SED_REQUIRE_MIC") == "1":
            pytest.fail(f"the virtual microphone is required (SED_REQUIRE_MIC=1) but could not be started: {exc}")
        pytest.skip(f"the virtual microphone cannot be started here (needs pulseaudio, or apt-get to install it): "
                    f"{exc}")
    for line in started.stdout.splitlines():
        if line.startswith("export "):
            key, value = line[len("export "):].split("=", 1)
            monkeypatch.setenv(key, value)
            env[key] = value
    reinit_portaudio()
    run.env = env
    yield run
    run("stop", check=False)
    monkeypatch.undo()
    reinit_portaudio()


FEED_LATENCY_MS = 300  # the script's feed uses 20 ms: on a busy machine it can starve and insert silence


def feed(vmic, path):
    """Play ``path`` into the virtual microphone's sink now (as `virtual_mic.sh feed`, with a larger buffer)."""
    return subprocess.Popen(["paplay", "--device=vmic_sink", f"--latency-msec={FEED_LATENCY_MS}", str(path)],
                            env=vmic.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def start_feed(vmic, path):
    """Play ``path`` into the microphone once a stream records from it (as `virtual_mic.sh run` does)."""
    script = f'"$0" wait-recording 20 && exec paplay --device=vmic_sink --latency-msec={FEED_LATENCY_MS} "$1"'
    return subprocess.Popen(["bash", "-c", script, str(VIRTUAL_MIC), str(path)],
                            env=vmic.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


class ServerEvents:
    """Times (``time.monotonic()``) at which the sound server announced new streams, from ``pactl subscribe``.

    ``recording()`` waits for a capture stream that was created and stayed
    (a program probing devices opens and closes some first); ``playing()``
    for a playback stream (a feed).  The difference between their creation
    times is where the feed starts in the recording, to a few milliseconds
    (the server creates a stream when its client opens it; neither waits for
    this process's polling).
    """

    def __init__(self, vmic) -> None:
        self._proc = subprocess.Popen(["pactl", "subscribe"], env=vmic.env, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self._lock = threading.Lock()
        self._new: dict[tuple[str, str], float] = {}
        self._removed: set[tuple[str, str]] = set()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._proc.stdout:  # Event 'new' on source-output #12
            now = time.monotonic()
            parts = line.split()
            if len(parts) == 5 and parts[0] == "Event" and parts[2] == "on":
                key = (parts[3], parts[4])
                with self._lock:
                    if parts[1] == "'new'":
                        self._new[key] = now
                    elif parts[1] == "'remove'":
                        self._removed.add(key)

    def _wait(self, kind: str, after: float, stable_s: float, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = time.monotonic()
            with self._lock:
                alive = [t for key, t in self._new.items()
                         if key[0] == kind and key not in self._removed and after <= t <= now - stable_s]
            if alive:
                return min(alive)
            time.sleep(0.005)
        raise TimeoutError(f"no {kind} appeared on the virtual microphone's server within {timeout:g} s")

    def recording(self, after: float = 0.0, stable_s: float = 0.1, timeout: float = 60.0) -> float:
        """Creation time of the first capture stream created after ``after`` that is still open."""
        return self._wait("source-output", after, stable_s, timeout)

    def playing(self, after: float = 0.0, timeout: float = 10.0) -> float:
        """Creation time of the first playback stream created after ``after``."""
        return self._wait("sink-input", after, 0.0, timeout)

    def close(self) -> None:
        self._proc.kill()
        self._proc.wait()
        self._thread.join(timeout=5)
