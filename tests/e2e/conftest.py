"""End-to-end fixtures: the simulator and the app, each as a real subprocess.

``sim_proc``
    ``python -m binmon sim --speed 60`` (a 1m candle closes every real second); yields its URLs
    and stops it with SIGTERM afterwards (it must exit 0).
``run_app``
    Runs ``python -m binmon gui --basedir ... --ws-url ... --rest-url ... --exit-after S
    --screenshot ... --dump-chart ...`` offscreen and returns an :class:`AppRun` (exit code,
    stderr, the parsed dump, the screenshot path). ``during(proc)`` runs while the app is up.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class SimUrls:
    ws: str
    rest: str


@dataclass
class AppRun:
    returncode: int
    stderr: str
    dump: dict[str, Any]
    screenshot: Path
    basedir: Path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["QTWEBENGINE_DISABLE_SANDBOX"] = "1"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture
def sim_proc() -> Iterator[SimUrls]:
    """A simulator subprocess at 60x speed with 3 days of history."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "binmon", "sim", "--speed", "60", "--history-days", "3", "--seed", "11"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            pytest.fail(f"the simulator did not start: {proc.stderr.read() if proc.stderr else ''}")
        urls = json.loads(line)
        yield SimUrls(urls["ws"], urls["rest"])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail("the simulator did not stop on SIGTERM")
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                f.close()
        assert rc == 0, f"simulator exited {rc}"


@pytest.fixture
def run_app(tmp_path: Path) -> Callable[..., AppRun]:
    """Run the app against ``urls`` for ``seconds``; ``during(proc)`` is called while it runs."""

    def run(
        urls: SimUrls,
        seconds: float,
        *extra: str,
        during: Callable[[subprocess.Popen[str]], None] | None = None,
        timeout: float = 90.0,
    ) -> AppRun:
        base = tmp_path / "base"
        shot = tmp_path / "shot.png"
        dump = tmp_path / "dump.json"
        cmd = [
            sys.executable, "-m", "binmon", "--log-level", "info", "gui",
            "--basedir", str(base), "--ws-url", urls.ws, "--rest-url", urls.rest,
            "--exit-after", str(seconds), "--screenshot", str(shot), "--dump-chart", str(dump), *extra,
        ]  # fmt: skip
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            cwd=ROOT,
            start_new_session=True,  # so a hung app and its WebEngine helpers can be killed as a group
        )
        try:
            if during is not None:
                during(proc)
            _, err = proc.communicate(timeout=timeout)
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
        # No orphans: nothing is left in the app's process group (QtWebEngineProcess included).
        deadline = time.monotonic() + 5.0
        leftovers = _group_members(proc.pid)
        while leftovers and time.monotonic() < deadline:  # helpers may take a moment to exit
            time.sleep(0.1)
            leftovers = _group_members(proc.pid)
        if leftovers:
            os.killpg(proc.pid, signal.SIGKILL)
        assert not leftovers, f"processes left behind by the app: {leftovers}"
        data = json.loads(dump.read_text()) if dump.exists() else {}
        return AppRun(proc.returncode, err, data, shot, base)

    return run


def _group_members(pgid: int) -> list[str]:
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(f"{d.name} {stat.split('(', 1)[1].split(')', 1)[0]}")
    return out
