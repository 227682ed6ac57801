"""Indicator templates: named indicator sets in one JSON file. No Qt.

The file (``<config dir>/indicator-templates.json``) holds::

    {"format": "binmon.indicator-templates", "v": 1,
     "templates": [{"format": "binmon.indicator-set", "v": 1, "name": "Trend", "indicators": [...]}, ...]}

each template being a :func:`~binmon.indicators.spec.dump_set` with a name. As with the config
(:mod:`binmon.config`): writes go to a temp file in the same directory, fsync-ed, then
``os.replace``-d over the file, so a crash leaves the old file; a file that is not such a JSON
object is moved aside to ``<name>.corrupt-<YYYYmmdd-HHMMSS>`` and reported, never overwritten; a
file that cannot be read, or was written by a newer binmon, is reported and left alone (saving
is refused rather than losing it). Templates are kept as read: a template with a bad indicator
still loads its good ones (the bad one is reported) and is written back unchanged unless the
user replaces it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from binmon.fileio import atomic_write
from binmon.indicators.spec import IndicatorSpec, SpecError, dump_set, load_set

__all__ = ["TEMPLATES_FILE", "TEMPLATES_FORMAT", "TemplateStore"]

log = logging.getLogger(__name__)

TEMPLATES_FILE = "indicator-templates.json"
TEMPLATES_FORMAT = "binmon.indicator-templates"
TEMPLATES_VERSION = 1
MAX_NAME = 80


class TemplateStore:
    """The templates of one file. :meth:`load` reads it (done on first use otherwise)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: list[Any] = []  # as read, in file order
        self._blocked: str | None = None  # why the file must not be written
        self._loaded = False

    def load(self, *, now: float | None = None) -> list[str]:
        """(Re)read the file; return one-line problems (also logged). Never raises."""
        self._loaded, self._entries, self._blocked = True, [], None
        problems: list[str] = []
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return problems
        except (OSError, UnicodeDecodeError) as exc:
            self._blocked = f"cannot read {self.path}: {exc}"
            return self._report([f"Indicator templates: {self._blocked}"])
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("format") != TEMPLATES_FORMAT:
                raise ValueError("not a binmon indicator templates file")
            entries = data.get("templates")
            if not isinstance(entries, list):
                raise ValueError("'templates' is not a list")
        except ValueError as exc:
            stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
            reason = " ".join(str(exc).split())
            try:
                os.replace(self.path, aside)
            except OSError as move_exc:
                self._blocked = f"{self.path} is corrupt and could not be moved aside ({move_exc})"
                return self._report([f"Indicator templates: {self._blocked}"])
            return self._report(
                [f"Indicator templates: {self.path} is corrupt ({reason}); kept as {aside.name}"]
            )
        version = data.get("v", 1)
        if not isinstance(version, int) or version > TEMPLATES_VERSION:
            self._blocked = f"{self.path} was written by a newer binmon (format {version!r})"
            problems.append(f"Indicator templates: {self._blocked}; not changing it")
        self._entries = entries
        for i, entry in enumerate(entries, start=1):
            name = _name_of(entry)
            if name is None:
                problems.append(f"Indicator templates: entry {i} has no name; kept, not offered")
                continue
            errors: list[str] = []
            try:
                load_set(entry, errors)
            except SpecError as exc:
                errors.append(str(exc))
            problems += [f"Template {name!r}: {e}" for e in errors]
        return self._report(problems)

    def names(self) -> list[str]:
        """Template names, sorted (case-insensitive)."""
        self._ensure()
        names = {n for n in map(_name_of, self._entries) if n is not None}
        return sorted(names, key=str.casefold)

    def get(self, name: str, errors: list[str] | None = None) -> list[IndicatorSpec] | None:
        """The specs of template ``name`` (bad entries skipped, reported into ``errors``); None if absent."""
        self._ensure()
        entry = next((e for e in self._entries if _name_of(e) == name), None)
        if entry is None:
            return None
        try:
            return load_set(entry, errors)
        except SpecError as exc:
            if errors is not None:
                errors.append(str(exc))
            return []

    def save(self, name: str, specs: Iterable[IndicatorSpec]) -> None:
        """Save ``specs`` as template ``name`` (replacing one of that name); ValueError for a bad
        name or a file that must not be overwritten, OSError when it cannot be written."""
        self._ensure()
        name = " ".join(name.split())
        if not name or len(name) > MAX_NAME:
            raise ValueError(f"a template name must have 1 to {MAX_NAME} characters")
        entry = dump_set(specs, name=name)
        entries = list(self._entries)
        where = next((i for i, e in enumerate(entries) if _name_of(e) == name), None)
        if where is None:
            entries.append(entry)
        else:
            entries[where] = entry
        self._write(entries)

    def delete(self, name: str) -> None:
        """Delete template ``name`` (no error if absent); same errors as :meth:`save`."""
        self._ensure()
        entries = [e for e in self._entries if _name_of(e) != name]
        if len(entries) != len(self._entries):
            self._write(entries)

    def _ensure(self) -> None:
        if not self._loaded:
            self.load()

    def _write(self, entries: list[Any]) -> None:
        if self._blocked is not None:
            raise ValueError(self._blocked)
        payload = {"format": TEMPLATES_FORMAT, "v": TEMPLATES_VERSION, "templates": entries}
        text = json.dumps(payload, indent=1) + "\n"
        atomic_write(self.path, text)
        self._entries = entries

    @staticmethod
    def _report(problems: list[str]) -> list[str]:
        for p in problems:
            log.warning("%s", p)
        return problems


def _name_of(entry: object) -> str | None:
    if isinstance(entry, dict):
        name = entry.get("name")
        if isinstance(name, str) and name.strip():
            return name
    return None
