"""The user's config: a typed, versioned JSON file written atomically.

What the user chose (theme, time zone, last symbol and interval, watchlist, trades rows) lives
here; window geometry and dock layout are UI state and live elsewhere (``AppPaths.state_dir``).

Loading never raises and never loses the user's file: a file that is not valid JSON (or not an
object) is renamed to ``config.json.corrupt-<timestamp>`` and reported as one line, and the
defaults are used; a field of the wrong type falls back to its default and is reported too.
Saving writes a temp file next to the target and ``os.replace``-s it, so a crash mid-write
leaves the old file intact. No Qt here.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from binmon.core.intervals import INTERVALS
from binmon.fileio import atomic_write

log = logging.getLogger(__name__)

#: Bumped when a field changes meaning; :func:`_migrate` upgrades older files.
CONFIG_VERSION = 1

THEMES = ("dark", "light")
#: More indicators than this on one chart is not a config a user made.
MAX_INDICATORS = 100
DEFAULT_WATCHLIST = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT")


@dataclass(frozen=True, slots=True)
class AppConfig:
    """Everything the user chose that survives a restart.

    ``timezone`` is ``"UTC"``, ``"local"`` or an IANA zone name; ``watchlist`` is ordered as the
    user arranged it; ``trades_rows`` is how many trades the trades panel keeps.
    ``indicators`` is the chart's indicator set in draw order, each entry the JSON form of an
    indicator (:func:`binmon.indicators.spec.to_dict`); only its shape is checked here (a list
    of objects naming a function), the indicators themselves when they are restored.
    """

    version: int = CONFIG_VERSION
    theme: str = "dark"
    timezone: str = "local"
    symbol: str = "BTCUSDT"
    interval: str = "1m"
    watchlist: tuple[str, ...] = DEFAULT_WATCHLIST
    trades_rows: int = 200
    indicators: tuple[dict[str, Any], ...] = field(default=(), hash=False)  # dicts: not hashable
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to disk (unknown keys read earlier are kept, for newer versions)."""
        out = dict(self.extra)
        d = asdict(self)
        d.pop("extra")
        d["watchlist"] = list(self.watchlist)
        d["indicators"] = [dict(i) for i in self.indicators]
        out.update(d)
        return out


@dataclass(frozen=True, slots=True)
class LoadResult:
    """A loaded config and the one-line problems met on the way (empty when all was fine)."""

    config: AppConfig
    problems: tuple[str, ...] = ()


def _check_field(name: str, value: Any) -> Any:
    """``value`` normalised for field ``name``; ValueError with a short reason when unusable."""
    if name == "theme":
        if value not in THEMES:
            raise ValueError(f"must be one of {', '.join(THEMES)}")
        return value
    if name in ("timezone", "symbol"):
        if not isinstance(value, str) or not value.strip():
            raise ValueError("must be a non-empty string")
        return value.strip().upper() if name == "symbol" else value.strip()
    if name == "interval":
        if value not in INTERVALS:
            raise ValueError("must be a Binance interval")
        return value
    if name == "watchlist":
        if not isinstance(value, list) or not all(isinstance(s, str) and s.strip() for s in value):
            raise ValueError("must be a list of symbols")
        return tuple(dict.fromkeys(s.strip().upper() for s in value))
    if name == "trades_rows":
        if type(value) is not int or not 10 <= value <= 10_000:
            raise ValueError("must be an integer from 10 to 10000")
        return value
    if name == "indicators":
        if not isinstance(value, list | tuple) or len(value) > MAX_INDICATORS:
            raise ValueError(f"must be a list of at most {MAX_INDICATORS} indicators")
        if not all(isinstance(i, dict) and isinstance(i.get("function"), str) for i in value):
            raise ValueError("must be a list of indicator objects")
        return tuple(dict(i) for i in value)
    raise ValueError("unknown field")


def _migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Upgrade an older file's keys to :data:`CONFIG_VERSION` (version 1 is the first)."""
    return data


def from_json(data: dict[str, Any]) -> LoadResult:
    """Build a config from a parsed JSON object, defaulting (and reporting) each unusable field."""
    problems: list[str] = []
    version = data.get("version", CONFIG_VERSION)
    if type(version) is not int or version < 1:
        problems.append(f"config: bad version {version!r}, reading it as version {CONFIG_VERSION}")
        version = CONFIG_VERSION
    elif version > CONFIG_VERSION:
        problems.append(f"config: written by a newer binmon (version {version}); unknown settings kept")
    data = _migrate(dict(data))
    known = {f.name for f in fields(AppConfig)} - {"version", "extra"}
    values: dict[str, Any] = {}
    for name in known:
        if name not in data:
            continue
        try:
            values[name] = _check_field(name, data[name])
        except ValueError as exc:
            problems.append(f"config: {name} {exc}; using the default")
    extra = {k: v for k, v in data.items() if k not in known and k != "version"}
    return LoadResult(AppConfig(**values, extra=extra), tuple(problems))


def load_config(path: Path, *, now: float | None = None) -> LoadResult:
    """Read ``path``; defaults when it does not exist. Never raises for bad content.

    A file that is not a JSON object is moved aside to ``<name>.corrupt-<YYYYmmdd-HHMMSS>``
    (``now`` overrides the clock, for tests) so the next save cannot overwrite it; each problem
    is logged as a warning and returned.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return LoadResult(AppConfig())
    except OSError as exc:
        msg = f"config: cannot read {path}: {exc.strerror or exc}; using defaults"
        log.warning("%s", msg)
        return LoadResult(AppConfig(), (msg,))
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    except ValueError as exc:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
        aside = path.with_name(f"{path.name}.corrupt-{stamp}")
        try:
            os.replace(path, aside)
            msg = f"config: {path} is corrupt ({_one_line(exc)}); kept as {aside.name}, using defaults"
        except OSError as move_exc:
            msg = f"config: {path} is corrupt ({_one_line(exc)}) and could not be moved aside ({move_exc})"
        log.warning("%s", msg)
        return LoadResult(AppConfig(), (msg,))
    result = from_json(data)
    for p in result.problems:
        log.warning("%s", p)
    return result


def save_config(path: Path, config: AppConfig) -> None:
    """Write ``config`` to ``path`` atomically (temp file in the same directory + ``os.replace``).

    Raises OSError when the directory cannot be written; the old file is then untouched.
    """
    atomic_write(path, json.dumps(config.to_json(), indent=2, sort_keys=True) + "\n")


def updated(config: AppConfig, **changes: Any) -> AppConfig:
    """``config`` with ``changes`` applied, each checked like a loaded field (ValueError if bad)."""
    checked = {}
    for name, value in changes.items():
        if name in ("watchlist", "indicators"):
            value = list(value)
        checked[name] = _check_field(name, value)
    return replace(config, **checked)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
