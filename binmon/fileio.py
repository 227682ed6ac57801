"""Small files written so that a crash never leaves half of one: :func:`atomic_write`, and
:func:`keep_aside` for a damaged file a user may still want. No Qt.

Config, indicator templates, alert rules and notification settings all save through
:func:`atomic_write`; a kill -9 at any moment leaves either the old or the new file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path

__all__ = ["atomic_write", "keep_aside"]


def atomic_write(path: Path, data: bytes | str) -> None:
    """Replace ``path`` with ``data`` (str: UTF-8) so that a crash leaves the old or the new file.

    A temp file in the same directory is written and fsynced, then ``os.replace``-d over
    ``path``, then the directory is fsynced so the rename reaches the disk too. Creates the
    parent directory. Raises OSError when it cannot write; the old file is then untouched.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # Some file systems refuse to fsync a directory: the replace is done anyway.
    with contextlib.suppress(OSError):
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def keep_aside(path: Path, *, copy: bool = False) -> Path:
    """Rename (or copy) ``path`` to ``<name>.corrupt-<UTC timestamp>`` (unique); return the new path."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    if copy:
        shutil.copy2(path, target)
    else:
        os.replace(path, target)
    return target
