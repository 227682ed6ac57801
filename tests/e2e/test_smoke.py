"""``binmon --smoke-test`` from the source tree, as CI runs it on the installed package.

The app starts its own simulator (demo market) and checks the chart page, a live candle, an
indicator, an alert, a backtest in the spawn process pool and the screenshot, then exits 0
with one "passed" line, leaving no process behind; a bad option combination exits non-zero
with a one-line reason. Runs offscreen, in its own session.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    leftovers: list[str]  # processes of its session still alive 5 s after it exited


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(QT_QPA_PLATFORM="offscreen", QTWEBENGINE_DISABLE_SANDBOX="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _session_members(sid: int) -> list[str]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                out.append(f"{d.name} {stat.split('(', 1)[1].split(')', 1)[0]}")
    return out


def _run(*args: str, timeout: float = 75.0) -> Run:
    proc = subprocess.Popen(
        [sys.executable, "-m", "binmon", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=ROOT,
        start_new_session=True,  # its own session: everything it starts can be found and killed
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    deadline = time.monotonic() + 5.0
    while (left := _session_members(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    if left:
        os.killpg(proc.pid, signal.SIGKILL)
    return Run(proc.returncode, out, err, left)


def test_smoke_test_passes_and_writes_a_real_screenshot(tmp_path: Path) -> None:
    shot = tmp_path / "smoke.png"
    base = tmp_path / "base"
    run = _run("--smoke-test", "--screenshot", str(shot), "--basedir", str(base))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    lines = [line for line in run.stdout.splitlines() if line.startswith("binmon: smoke test")]
    assert len(lines) == 1 and lines[0].startswith("binmon: smoke test passed"), run.stdout
    steps = ("chart ready", "live candle", "indicator (SMA 20", "alert (", "backtest (sma_", "screenshot")
    for step in steps:
        assert step in lines[0]
    image = QImage(str(shot))
    assert image.width() >= 800 and image.height() >= 500
    # Not blank: the chart area (left two thirds) has many colours (candles, grid, labels, SMA).
    w, h = image.width(), image.height()
    colours = {image.pixel(x, y) for x in range(0, w * 2 // 3, 7) for y in range(60, h - 60, 7)}
    assert len(colours) > 50
    # With --basedir the log stays there, one line per step.
    logs = "".join(p.read_text() for p in base.rglob("*.log"))
    for step in ("chart ready", "live candle", "indicator", "alert", "backtest", "screenshot"):
        assert f"smoke: {step} ok" in logs
    # The indicator and the alert were removed again: --basedir may be the user's own.
    assert json.loads((base / "config" / "config.json").read_text())["indicators"] == []
    assert json.loads((base / "config" / "alerts.json").read_text())["rules"] == []
    # Nothing it started is left: backtest worker, manager process, QtWebEngine helpers.
    assert run.leftovers == []


def test_smoke_test_rejects_exit_after_with_one_line() -> None:
    run = _run("--smoke-test", "--exit-after", "3", timeout=30)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        "binmon: error: --smoke-test cannot be combined with --exit-after or --dump-chart"
    ]
