"""Where an alert's fire is shown: notification sinks behind one protocol, and a fallback chain.

No Qt here. The UI layer hands its Qt sinks (the tray balloon, the in-app toast) in as plain
callables through :class:`CallableSink`, so this module stays part of the pure core.

* :class:`DesktopNotifier` - the freedesktop notification service through desktop-notifier
  (asynchronous, on the running asyncio loop: qasync in the app). ``send()`` returns the
  notification's id; clicking the notification calls ``on_clicked(notice)``.
* :class:`LogNotifier` - writes the notice to the log; the last resort, it never fails.
* :class:`CallableSink` - any ``fn(notice) -> bool`` (the UI's tray balloon and toast).
* :class:`FallbackNotifier` - tries its sinks in order, each within a time limit: a sink that
  raises, times out or says it could not show the notice passes it to the next one. Nothing a
  sink does reaches the caller (the alert engine); a failing sink is logged once, not per fire.
* :class:`NotifySettings` - the user's choices (desktop notifications on/off, sound on/off),
  a small JSON file written atomically; a corrupt file is kept aside.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from binmon.alerts.ledger import Fire
from binmon.core.intervals import interval_ms, next_open
from binmon.fileio import atomic_write

log = logging.getLogger(__name__)

#: How long a sink may take before the next one is tried (a hung D-Bus peer must not hold fires).
SINK_TIMEOUT_S = 2.0
#: After the desktop service failed, fires go straight to the fallbacks for this long.
DESKTOP_RETRY_S = 30.0
#: The freedesktop sound-naming-spec name asked for when sound is on.
SOUND_NAME = "message-new-instant"
SETTINGS_FILE = "notifications.json"


@dataclass(frozen=True, slots=True)
class Notice:
    """One notification. ``fire`` is the alert engine's fire it shows (given back on click)."""

    title: str
    body: str
    symbol: str = ""
    interval: str = ""
    sound: bool = False
    fire: Any = field(default=None, compare=False)


class NotifyError(Exception):
    """A sink could not show a notice (one line: why)."""


class NotificationSink(Protocol):
    """Something that shows notices. ``notify`` returns False (or raises) when it could not."""

    name: str

    async def notify(self, notice: Notice) -> bool:
        """Show ``notice``; True once shown (or handed to the system), False if unavailable."""
        ...


ClickHandler = Callable[[Notice], None]


class DesktopNotifier:
    """The freedesktop notification service (``org.freedesktop.Notifications`` on the session bus).

    ``on_clicked(notice)`` runs on the loop when the user clicks a notification;
    ``on_no_sound()`` runs when a notice wants sound and the service cannot play one (the UI
    beeps instead). ``factory(app_name)`` builds the desktop-notifier object (tests pass a
    fake); it is rebuilt after a failure, so a service started later is found.
    """

    name = "desktop"

    def __init__(
        self,
        app_name: str = "binmon",
        *,
        on_clicked: ClickHandler | None = None,
        on_no_sound: Callable[[], None] | None = None,
        timeout_s: float = SINK_TIMEOUT_S,
        retry_after_s: float = DESKTOP_RETRY_S,
        factory: Callable[[str], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app_name = app_name
        self.on_clicked = on_clicked
        self.on_no_sound = on_no_sound
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self._factory = factory or _make_desktop_notifier
        self._clock = clock
        self._notifier: Any = None
        self._sound_ok = False
        self._down_until = 0.0  # monotonic time before which the service is not asked again
        self.last_error: str | None = None

    async def available(self) -> bool:
        """True when the service answers (connects and reads its capabilities within the limit)."""
        try:
            await self._connect()
        except NotifyError:
            return False
        return True

    async def send(self, notice: Notice) -> str:
        """Show ``notice``; its notification id. NotifyError when the service did not take it."""
        notifier = await self._connect()
        from desktop_notifier import Sound

        delivered: list[bool] = []
        sound = None
        if notice.sound:
            if self._sound_ok:
                sound = Sound(name=SOUND_NAME)
            elif self.on_no_sound is not None:
                _call_safely(self.on_no_sound, "sound fallback")
        try:
            ident = await asyncio.wait_for(
                notifier.send(
                    notice.title,
                    notice.body,
                    sound=sound,
                    on_dispatched=lambda: delivered.append(True),
                    on_clicked=lambda: self._clicked(notice),
                ),
                self.timeout_s,
            )
        except Exception as exc:  # timeouts, OSError, D-Bus errors (no common base)
            raise self._down(f"notification not sent: {_one_line(exc)}") from exc
        if not delivered:
            # desktop-notifier logs the cause and returns normally; nothing was shown.
            raise self._down("the notification service did not take the notification")
        return str(ident)

    async def notify(self, notice: Notice) -> bool:
        """:meth:`send`, with False instead of NotifyError."""
        try:
            await self.send(notice)
        except NotifyError:
            return False
        return True

    async def close(self) -> None:
        """Drop the D-Bus connection (app shutdown)."""
        self.disconnect()

    def disconnect(self) -> None:
        """:meth:`close` without awaiting (it does no I/O that needs the loop)."""
        notifier, self._notifier = self._notifier, None
        _disconnect(notifier)

    async def _connect(self) -> Any:
        if self._notifier is not None:
            return self._notifier
        if self._clock() < self._down_until:
            raise NotifyError(self.last_error or "the notification service is not available")
        notifier = self._factory(self.app_name)
        try:
            caps = await asyncio.wait_for(notifier.get_capabilities(), self.timeout_s)
        except Exception as exc:  # timeouts, no bus, no service, D-Bus errors
            _disconnect(notifier)
            reason = "no answer" if isinstance(exc, TimeoutError) else _one_line(exc)
            raise self._down(f"no desktop notification service ({reason})") from exc
        self._sound_ok = any(getattr(c, "name", "") == "SOUND" for c in caps)
        self._notifier = notifier
        self.last_error = None
        return notifier

    def _down(self, reason: str) -> NotifyError:
        """Forget the connection and stay away for ``retry_after_s``; the error to raise."""
        _disconnect(self._notifier)
        self._notifier = None
        self._down_until = self._clock() + self.retry_after_s
        self.last_error = reason
        return NotifyError(reason)

    def _clicked(self, notice: Notice) -> None:
        handler = self.on_clicked
        if handler is not None:
            _call_safely(lambda: handler(notice), "click handler")


class LogNotifier:
    """Writes each notice to the log at INFO (the last resort: it always succeeds)."""

    name = "log"

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or log
        self.seen: list[Notice] = []  # the notices shown, newest last (bounded)

    async def notify(self, notice: Notice) -> bool:
        """Log ``notice``; True."""
        self._log.info("alert: %s: %s", notice.title, notice.body)
        self.seen.append(notice)
        del self.seen[:-100]
        return True


class CallableSink:
    """A sink around ``show(notice) -> bool`` (sync or async): the UI's tray balloon and toast."""

    def __init__(self, name: str, show: Callable[[Notice], bool | Awaitable[bool]]) -> None:
        self.name = name
        self._show = show

    async def notify(self, notice: Notice) -> bool:
        """Call ``show``; its answer."""
        result = self._show(notice)
        if isinstance(result, Awaitable):
            result = await result
        return bool(result)


class FallbackNotifier:
    """Shows each notice with the first of ``sinks`` that can (see the module docstring).

    :meth:`deliver` never raises; :meth:`submit` schedules it on the running loop (for the
    engine's synchronous fire callback); :meth:`drain` waits for what is scheduled.
    """

    name = "fallback"

    def __init__(self, sinks: Sequence[NotificationSink], *, timeout_s: float = SINK_TIMEOUT_S + 0.5) -> None:
        self.sinks: list[NotificationSink] = list(sinks)
        self.timeout_s = timeout_s
        self._failing: set[str] = set()  # sinks whose failure was logged (until they work again)
        self._tasks: set[asyncio.Task[str | None]] = set()
        self.delivered: dict[str, int] = {}  # sink name -> notices it showed

    async def deliver(self, notice: Notice) -> str | None:
        """Show ``notice`` with the first sink that can; that sink's name (None if none could)."""
        for sink in self.sinks:
            try:
                ok = await asyncio.wait_for(sink.notify(notice), self.timeout_s)
                reason = "not available"
            except TimeoutError:
                ok, reason = False, f"no answer in {self.timeout_s:g} s"
            except Exception as exc:  # a sink's bug must not stop the alert
                ok, reason = False, _one_line(exc)
                if sink.name not in self._failing:
                    log.debug("notification sink %s failed", sink.name, exc_info=True)
            if ok:
                if sink.name in self._failing:
                    self._failing.discard(sink.name)
                    log.info("notifications: %s works again", sink.name)
                self.delivered[sink.name] = self.delivered.get(sink.name, 0) + 1
                return sink.name
            if sink.name not in self._failing:
                self._failing.add(sink.name)
                detail = getattr(sink, "last_error", None) or reason
                log.warning("notifications: %s failed (%s); falling back", sink.name, detail)
        return None

    async def notify(self, notice: Notice) -> bool:
        """:meth:`deliver` as a sink: True when some sink showed it."""
        return await self.deliver(notice) is not None

    def submit(self, notice: Notice) -> asyncio.Task[str | None]:
        """Schedule :meth:`deliver` on the running loop (RuntimeError without one)."""
        task = asyncio.get_running_loop().create_task(self.deliver(notice), name="binmon-notify")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self) -> None:
        """Wait until every submitted notice is delivered (or given up)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def cancel(self) -> None:
        """Cancel the deliveries still scheduled (they end when the loop runs next)."""
        for task in list(self._tasks):
            task.cancel()

    async def close(self) -> None:
        """Cancel pending deliveries and close the sinks that can be closed (app shutdown)."""
        self.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        for sink in self.sinks:
            closer = getattr(sink, "close", None)
            if closer is not None:
                try:
                    await closer()
                except Exception:
                    log.debug("closing notification sink %s failed", sink.name, exc_info=True)


# ---------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """The user's notification choices: desktop notifications (else the in-app fallbacks) and sound."""

    desktop: bool = True
    sound: bool = False


#: A closed-bar fire whose bar closed longer ago than this (and than two intervals) is a catch-up.
CATCH_UP_MS = 120_000


def is_catch_up(fire: Fire) -> bool:
    """True for a fire on a bar that closed well before it fired: a backfill after an outage (or
    a restart) caught up on it. Such fires are logged like any other, but the app shows them as
    one summary instead of one notification each (a long outage would otherwise bring a burst).
    Intrabar fires are never catch-ups: they happen as the price moves."""
    if not fire.bar_closed:
        return False
    closed_at = next_open(fire.interval, fire.bar_open_ms)
    return fire.time_ms - closed_at > max(CATCH_UP_MS, 2 * interval_ms(fire.interval))


def catch_up_notice(fires: Sequence[Fire], *, sound: bool = False) -> Notice:
    """One notice summing up catch-up fires (oldest first): the count and the newest message."""
    newest = fires[-1]
    n = len(fires)
    body = (
        newest.message
        if n == 1
        else f"{n} alerts fired while binmon was catching up; newest: {newest.message}"
    )
    return Notice(
        title=f"{newest.symbol} {newest.interval} alert (late)" if n == 1 else "binmon alerts (late)",
        body=body,
        symbol=newest.symbol,
        interval=newest.interval,
        sound=sound,
        fire=newest,
    )


def load_settings(path: Path) -> tuple[NotifySettings, list[str]]:
    """Read ``path``: the settings and one-line problems. Defaults when missing or bad.

    A file that is not a JSON object is moved aside to ``<name>.corrupt-<stamp>`` (never
    overwritten by the next save); unknown or mistyped keys are ignored and reported.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return NotifySettings(), []
    except OSError as exc:
        return NotifySettings(), [f"notification settings: cannot read {path.name}: {exc.strerror or exc}"]
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    except ValueError as exc:
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            os.replace(path, aside)
            kept = f"kept as {aside.name}"
        except OSError as move_exc:
            kept = f"could not be moved aside: {move_exc}"
        return NotifySettings(), [f"notification settings: {path.name} is corrupt ({_one_line(exc)}); {kept}"]
    problems: list[str] = []
    values: dict[str, bool] = {}
    for key in ("desktop", "sound"):
        if key in data:
            if isinstance(data[key], bool):
                values[key] = data[key]
            else:
                problems.append(f"notification settings: {key} must be true or false; using the default")
    return NotifySettings(**values), problems


def save_settings(path: Path, settings: NotifySettings) -> None:
    """Write ``settings`` to ``path`` atomically (temp file + rename); OSError if it cannot."""
    atomic_write(path, json.dumps(asdict(settings), indent=2, sort_keys=True) + "\n")


# ---------------------------------------------------------------- helpers


def _make_desktop_notifier(app_name: str) -> Any:
    from desktop_notifier import DesktopNotifier as _Lib

    return _Lib(app_name=app_name, app_icon=None)


def _disconnect(notifier: Any) -> None:
    """Close the D-Bus connection desktop-notifier keeps (it offers no public close)."""
    bus = getattr(getattr(notifier, "_backend", None), "bus", None)
    if bus is not None:
        try:
            bus.disconnect()
        except Exception:
            log.debug("closing the notification bus failed", exc_info=True)


def _call_safely(fn: Callable[[], Any], what: str) -> None:
    try:
        fn()
    except Exception:
        log.exception("notifications: %s failed", what)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
