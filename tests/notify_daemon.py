"""A real notification daemon for tests and benchmarks: a private session bus, Xvfb and dunst.

:func:`notification_daemon` starts ``dbus-daemon`` (with a config of its own: no service
activation, so nothing but our dunst can own ``org.freedesktop.Notifications``), ``Xvfb`` on a
display it picks itself (``-displayfd``: never one in use) and ``dunst`` on both, and stops all
three when the ``with`` block ends - also when it ends with an exception. :func:`missing_tools`
names the binaries that are not installed (tests skip with that reason; CI installs them in
.ci/run).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOOLS = ("dbus-daemon", "Xvfb", "dunst", "dunstctl")

_BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={dir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""
# Notifications stay up until closed (so `dunstctl action` finds them), a history without a
# limit (the benchmark reads back all of its notifications), no icon lookups.
_DUNSTRC = "[global]\n    icon_position = off\n    history_length = 0\n[urgency_normal]\n    timeout = 0\n"


def missing_tools() -> list[str]:
    """The binaries of :data:`TOOLS` not found on PATH."""
    return [t for t in TOOLS if shutil.which(t) is None]


@dataclass
class Daemon:
    """The running daemons: ``env`` has DBUS_SESSION_BUS_ADDRESS and DISPLAY for clients."""

    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]]

    def ctl(self, *args: str, timeout: float = 10.0) -> str:
        """Run ``dunstctl args`` on this bus; its stdout (CalledProcessError on failure)."""
        out = subprocess.run(
            ["dunstctl", *args],
            env={**os.environ, **self.env},
            capture_output=True,
            timeout=timeout,
            check=True,
        )
        return out.stdout.decode()

    def history(self) -> list[dict[str, Any]]:
        """The closed notifications (``dunstctl history``), newest first, as plain dicts."""
        data = json.loads(self.ctl("history"))["data"][0]
        return [{k: v["data"] for k, v in item.items()} for item in data]

    def close_all_and_read(self) -> list[dict[str, Any]]:
        """Close every shown notification (dunst keeps only closed ones in its history), read it."""
        self.ctl("close-all")
        return self.history()

    def stop_dunst(self) -> None:
        """Stop dunst only (the bus stays: a bus with no notification service)."""
        _stop(self.procs.pop("dunst", None))


@contextlib.contextmanager
def notification_daemon(*, with_dunst: bool = True, timeout_s: float = 10.0) -> Iterator[Daemon]:
    """Start bus + Xvfb (+ dunst unless ``with_dunst`` is False); stop them all on exit."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    tmp = Path(tempfile.mkdtemp(prefix="binmon-notify-"))
    try:
        conf = tmp / "bus.conf"
        conf.write_text(_BUS_CONF.format(dir=tmp))
        bus = subprocess.Popen(
            ["dbus-daemon", f"--config-file={conf}", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        procs["dbus-daemon"] = bus
        assert bus.stdout is not None
        address = _read_line(bus.stdout.fileno(), timeout_s, "dbus-daemon printed no address")
        r, w = os.pipe()
        try:
            procs["Xvfb"] = subprocess.Popen(
                ["Xvfb", "-displayfd", str(w), "-nolisten", "tcp", "-screen", "0", "640x480x24"],
                pass_fds=(w,),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            os.close(w)
            display = _read_line(r, timeout_s, "Xvfb did not report its display")
        finally:
            os.close(r)
        env = {"DBUS_SESSION_BUS_ADDRESS": address, "DISPLAY": f":{display}"}
        daemon = Daemon(env, procs)
        if with_dunst:
            rc = tmp / "dunstrc"
            rc.write_text(_DUNSTRC)
            procs["dunst"] = subprocess.Popen(
                ["dunst", "-config", str(rc)],
                env={**os.environ, **env},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + timeout_s
            while True:  # on the bus once dunstctl gets an answer
                try:
                    daemon.ctl("is-paused", timeout=2.0)
                    break
                except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                    if time.monotonic() > deadline or procs["dunst"].poll() is not None:
                        raise RuntimeError("dunst did not come up on the private bus") from None
                    time.sleep(0.05)
        yield daemon
    finally:
        for name in ("dunst", "Xvfb", "dbus-daemon"):
            _stop(procs.pop(name, None))
        shutil.rmtree(tmp, ignore_errors=True)


def _read_line(fd: int, timeout_s: float, what: str) -> str:
    buf = b""
    deadline = time.monotonic() + timeout_s
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        ready, _w, _x = select.select([fd], [], [], max(0.0, left))
        if not ready:
            raise RuntimeError(what)
        chunk = os.read(fd, 4096)
        if not chunk:
            raise RuntimeError(what)
        buf += chunk
    return buf.split(b"\n", 1)[0].decode().strip()


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        return
    proc.terminate()
    try:
        proc.wait(3.0)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(3.0)
    if proc.stdout is not None:
        proc.stdout.close()
