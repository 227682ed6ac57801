"""Where binmon keeps its files: config, UI state, market data and logs.

The directories come from :mod:`platformdirs` (``~/.config/binmon``, ``~/.local/state/binmon``,
... on Linux), or all live under one ``--basedir DIR`` (tests, e2e runs, portable installs), so
nothing else in the program ever builds a path from the environment. No Qt here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "binmon"


@dataclass(frozen=True, slots=True)
class AppPaths:
    """The four directories binmon writes to. Nothing is created until :meth:`ensure`."""

    config_dir: Path
    state_dir: Path
    data_dir: Path
    log_dir: Path

    @classmethod
    def resolve(cls, basedir: Path | str | None = None) -> AppPaths:
        """The platform's user directories, or ``basedir``'s ``config``/``state``/``data``/``logs``."""
        if basedir is not None:
            root = Path(basedir).expanduser().resolve()
            return cls(root / "config", root / "state", root / "data", root / "logs")
        dirs = platformdirs.PlatformDirs(APP_NAME, appauthor=False)
        return cls(
            Path(dirs.user_config_dir),
            Path(dirs.user_state_dir),
            Path(dirs.user_data_dir),
            Path(dirs.user_log_dir),
        )

    def ensure(self) -> AppPaths:
        """Create every directory (parents included); return self. OSError if one cannot be made."""
        for d in (self.config_dir, self.state_dir, self.data_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        return self

    @property
    def config_file(self) -> Path:
        """The typed user config (:mod:`binmon.config`)."""
        return self.config_dir / "config.json"

    @property
    def window_state_file(self) -> Path:
        """Window geometry and dock layout (a QSettings INI file): UI state, not config."""
        return self.state_dir / "window.ini"

    @property
    def log_file(self) -> Path:
        """The app's debug log."""
        return self.log_dir / "binmon.log"
