"""Alert persistence: atomic rules file, corrupt files kept aside, the log and ledger survive kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from binmon.alerts.ledger import Fire, Ledger, LedgerEntry
from binmon.alerts.rules import (
    AlertRule,
    Condition,
    Frequency,
    Operand,
    Operator,
    Subject,
    price_alert,
    rule_to_dict,
)
from binmon.alerts.storage import AlertLog, RulesFile


def rules(n: int = 3) -> list[AlertRule]:
    return [price_alert("BTCUSDT", "1m", 19_000.0 + i, now_ms=i) for i in range(n)]


def fire(i: int, rule_id: str = "r1") -> Fire:
    return Fire(
        rule_id,
        "BTCUSDT",
        "1m",
        1_000 * i,
        2_000 * i,
        1.5 * i,
        float("nan") if i == 2 else i,
        f"m{i}",
        "n",
        i % 2 == 0,
    )


def test_save_then_load_round_trips_and_leaves_no_temp_files(tmp_path: Path) -> None:
    f = RulesFile(tmp_path / "conf" / "alerts.json")
    assert f.load() == ([], [])  # no file yet: nothing, no problem
    saved = rules()
    f.save(saved)
    f.save(saved[:2])
    assert f.load() == (saved[:2], [])
    assert sorted(p.name for p in f.path.parent.iterdir()) == ["alerts.json"]
    doc = json.loads(f.path.read_text())
    assert doc["format"] == "binmon.alert-rules" and doc["v"] == 1


def test_a_failed_save_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = RulesFile(tmp_path / "alerts.json")
    first = rules(1)
    f.save(first)

    def boom(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        f.save(rules(3))
    monkeypatch.undo()
    assert f.load() == (first, [])
    assert [p.name for p in tmp_path.iterdir()] == ["alerts.json"]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b'{"format": "binmon.alert-rules", "v": 1, "rules": [', "Expecting value"),
        (b"\x00\xff garbage", "corrupt"),
        (b'{"format": "something-else", "rules": []}', "not a binmon alert rules file"),
        (b'{"format": "binmon.alert-rules", "v": 7, "rules": []}', "saved by a newer binmon (format 7)"),
    ],
)
def test_a_corrupt_or_foreign_file_is_reported_and_kept_aside(
    tmp_path: Path, content: bytes, why: str
) -> None:
    path = tmp_path / "alerts.json"
    path.write_bytes(content)
    f = RulesFile(path)
    loaded, problems = f.load()
    assert loaded == []
    (problem,) = problems
    assert why in problem and "kept aside as alerts.json.corrupt-" in problem and "\n" not in problem
    (aside,) = [p for p in tmp_path.iterdir() if p.name.startswith("alerts.json.corrupt-")]
    assert aside.read_bytes() == content  # nothing lost
    assert not path.exists()
    f.save(rules(1))  # the next save makes a new file, the bad one stays aside
    assert aside.read_bytes() == content


def test_partially_bad_rules_load_the_good_ones_and_keep_a_copy(tmp_path: Path) -> None:
    good = rules(2)
    entries = [
        rule_to_dict(good[0]),
        {"id": "x"},
        rule_to_dict(good[1]),
        {**rule_to_dict(good[1]), "interval": "9m"},
    ]
    path = tmp_path / "alerts.json"
    path.write_text(json.dumps({"format": "binmon.alert-rules", "v": 1, "rules": entries}))
    loaded, problems = RulesFile(path).load()
    assert loaded == good
    assert problems[0].startswith("alert rule 2: ")
    assert problems[1].startswith("alert rule 4: ") and "interval '9m' is unknown" in problems[1]
    assert "2 alert rule(s) could not be read" in problems[2]
    (aside,) = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert json.loads(aside.read_text())["rules"] == entries


def test_the_log_keeps_fires_and_the_ledger_across_reopen_and_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "alerts.sqlite"
    log = AlertLog(path, keep=5)
    ledger = Ledger()
    for i in range(8):
        ledger.record("r1", LedgerEntry(1_000 * i, 2.0, True, 2_000 * i, triggered=False))
        log.append([fire(i)], ledger)
    log.close()
    log = AlertLog(path, keep=5)
    assert log.count() == 5
    recent = log.recent(3)
    assert [f.message for f in recent] == ["m7", "m6", "m5"]
    assert recent[0] == fire(7)
    assert log.load_ledger() == ledger
    ledger.reset("r1")
    log.save_ledger(ledger)
    assert len(log.load_ledger()) == 0
    log.close()


def test_a_corrupt_log_is_kept_aside_and_a_new_one_started(tmp_path: Path) -> None:
    path = tmp_path / "alerts.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    log = AlertLog(path)
    assert log.problems and "kept aside as alerts.sqlite.corrupt-" in log.problems[0]
    log.append([fire(1)])
    assert log.recent(5) == [fire(1)]
    log.close()
    assert any(p.name.startswith("alerts.sqlite.corrupt-") for p in tmp_path.iterdir())


WRITER = textwrap.dedent(
    """
    import sys
    from binmon.alerts.ledger import Fire, Ledger, LedgerEntry
    from binmon.alerts.rules import price_alert
    from binmon.alerts.storage import AlertLog, RulesFile

    log = AlertLog(sys.argv[1])
    rules_file = RulesFile(sys.argv[2])
    ledger = Ledger()
    i = 0
    while True:
        i += 1
        ledger.record("r", LedgerEntry(i, 1.0, True, i))
        log.append([Fire("r", "BTCUSDT", "1m", i, i, 1.0, 2.0, "m" * 200, "n")], ledger)
        rules_file.save([price_alert("BTCUSDT", "1m", 100.0 + j, now_ms=j) for j in range(i % 50 + 1)])
        if i == 20:
            print("ready", flush=True)
    """
)


def test_kill_9_while_writing_leaves_a_loadable_log_and_rules_file(tmp_path: Path) -> None:
    db, rules_path = tmp_path / "alerts.sqlite", tmp_path / "alerts.json"
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), str(rules_path)], stdout=subprocess.PIPE
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
            time.sleep(0.3)  # in the middle of writes
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    log = AlertLog(db)
    assert log.problems == []
    n = log.count()
    assert n >= 20
    # The ledger was written in the same transaction as the newest fire.
    entry = log.load_ledger().get("r")
    assert entry is not None and entry.bar_open_ms == log.recent(1)[0].bar_open_ms
    log.close()
    loaded, problems = RulesFile(rules_path).load()
    assert problems == [] and 1 <= len(loaded) <= 50
    assert not [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]


def test_rules_of_every_shape_survive_the_file(tmp_path: Path) -> None:
    special = AlertRule(
        "alert-x",
        "ETHBTC",
        "4h",
        Condition(Subject.volume(), Operator.OUTSIDE_CHANNEL, Operand.of_channel(0.5, 9e9)),
        Frequency.EVERY_TIME,
        min_interval_s=2.5,
        expires_ms=1_900_000_000_000,
        message="Ünïcode {symbol} ✓",
        enabled=False,
        name="vol",
        created_ms=7,
    )
    f = RulesFile(tmp_path / "alerts.json")
    f.save([special])
    assert f.load() == ([special], [])
