"""Config and paths: defaults, round trip, atomic writes, corrupt files kept aside, --basedir."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from binmon.config import CONFIG_VERSION, AppConfig, load_config, save_config, updated
from binmon.paths import AppPaths


def test_defaults_when_absent(tmp_path: Path) -> None:
    result = load_config(tmp_path / "config.json")
    assert result.config == AppConfig()
    assert result.problems == ()
    assert not (tmp_path / "config.json").exists()


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.json"
    cfg = AppConfig(
        theme="light",
        timezone="Europe/Paris",
        symbol="DOGEBTC",
        interval="1M",
        watchlist=("ETHBTC", "BTCUSDT"),
        trades_rows=50,
    )
    save_config(path, cfg)
    data = json.loads(path.read_text())
    assert data["version"] == CONFIG_VERSION and data["watchlist"] == ["ETHBTC", "BTCUSDT"]
    back = load_config(path)
    assert back.config == cfg and back.problems == ()
    # No temp file is left next to it.
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]


def test_corrupt_file_is_kept_aside_and_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"theme": "light", oops')
    with caplog.at_level(logging.WARNING, logger="binmon.config"):
        result = load_config(path, now=0.0)
    assert result.config == AppConfig()
    assert len(result.problems) == 1 and "\n" not in result.problems[0]
    assert "corrupt" in result.problems[0]
    aside = list(tmp_path.glob("config.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == '{"theme": "light", oops'
    assert not path.exists()
    assert any("corrupt" in r.getMessage() for r in caplog.records)
    # Saving afterwards creates a fresh file and leaves the corrupt copy alone.
    save_config(path, AppConfig(theme="light"))
    assert aside[0].read_text() == '{"theme": "light", oops'


def test_non_object_json_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("[1, 2]")
    result = load_config(path)
    assert "corrupt" in result.problems[0]
    assert list(tmp_path.glob("config.json.corrupt-*"))


def test_bad_fields_fall_back_one_by_one(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "theme": "purple",
                "interval": "7m",
                "symbol": "ethusdt",
                "watchlist": ["btcusdt", "BTCUSDT", "xrpusdt"],
                "trades_rows": "many",
                "future_setting": {"x": 1},
            }
        )
    )
    result = load_config(path)
    cfg = result.config
    assert cfg.theme == "dark" and cfg.interval == "1m" and cfg.trades_rows == 200
    assert cfg.symbol == "ETHUSDT" and cfg.watchlist == ("BTCUSDT", "XRPUSDT")
    assert len(result.problems) == 3
    assert path.exists()  # a file with bad fields is not corrupt: it stays
    # Unknown keys survive a save (a newer binmon's settings are not destroyed).
    save_config(path, cfg)
    assert json.loads(path.read_text())["future_setting"] == {"x": 1}


def test_newer_version_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"version": CONFIG_VERSION + 1, "theme": "light"}))
    result = load_config(path)
    assert result.config.theme == "light"
    assert "newer" in result.problems[0]


def test_failed_write_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.json"
    save_config(path, AppConfig(theme="light"))

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        save_config(path, AppConfig(theme="dark"))
    monkeypatch.undo()
    assert load_config(path).config.theme == "light"
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_updated_validates() -> None:
    cfg = updated(AppConfig(), symbol="solusdt", watchlist=["a", "b"])
    assert cfg.symbol == "SOLUSDT" and cfg.watchlist == ("A", "B")
    with pytest.raises(ValueError):
        updated(AppConfig(), interval="2m")
    with pytest.raises(ValueError):
        updated(AppConfig(), theme="blue")


def test_paths_under_basedir(tmp_path: Path) -> None:
    paths = AppPaths.resolve(tmp_path / "base").ensure()
    for d in (paths.config_dir, paths.state_dir, paths.data_dir, paths.log_dir):
        assert d.is_dir() and d.is_relative_to(tmp_path / "base")
    assert paths.config_file.parent == paths.config_dir
    assert paths.window_state_file.parent == paths.state_dir


def test_paths_default_to_platform_dirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xc"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xs"))
    paths = AppPaths.resolve()
    assert paths.config_dir == tmp_path / "xc" / "binmon"
    assert paths.state_dir == tmp_path / "xs" / "binmon"
