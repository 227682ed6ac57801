"""``binmon --demo`` as a subprocess with a saved alert: the alert fires on the live demo market
and its notification arrives in a real dunst (private bus + Xvfb, stopped afterwards)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from notify_daemon import missing_tools, notification_daemon

from binmon.alerts.rules import AlertRule, Condition, Frequency, Operand, Operator, Subject
from binmon.alerts.storage import RulesFile

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    bool(missing_tools()), reason=f"needs {', '.join(missing_tools())} (installed by .ci/run)"
)


def test_demo_app_fires_a_saved_alert_into_dunst(tmp_path: Path) -> None:
    rule = AlertRule(
        "alert-e2e",
        "BTCUSDT",
        "1m",
        Condition(Subject.price("close"), Operator.GREATER_THAN, Operand.of_value(1.0)),
        Frequency.ONCE,
        message="{symbol} {interval} is above {value} (e2e)",
    )
    RulesFile(tmp_path / "config" / "alerts.json").save([rule])
    with notification_daemon() as daemon:
        env = {**os.environ, **daemon.env, "QT_QPA_PLATFORM": "offscreen", "QTWEBENGINE_DISABLE_SANDBOX": "1"}
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        args = ["gui", "--demo", "--basedir", str(tmp_path), "--symbol", "BTCUSDT", "--interval", "1m"]
        proc = subprocess.run(
            [sys.executable, "-m", "binmon", *args, "--exit-after", "7"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        shown = daemon.close_all_and_read()
    (note,) = [n for n in shown if n["body"].endswith("(e2e)")]
    assert (note["appname"], note["summary"]) == ("binmon", "BTCUSDT 1m alert")
    # {value} is the watched value when it fired: the demo market's BTCUSDT close, at its tick size.
    assert re.fullmatch(r"BTCUSDT 1m is above \d{1,3}(,\d{3})*(\.\d{1,2})? \(e2e\)", note["body"]), note[
        "body"
    ]
    log = (tmp_path / "logs" / "binmon.log").read_text()
    assert "Traceback" not in log and " ERROR " not in log
    assert (tmp_path / "data" / "alerts-demo.sqlite").exists()
