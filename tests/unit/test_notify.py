"""Notification sinks and the fallback chain (binmon.alerts.notify), with fake desktop services.

The real freedesktop path (dunst on a private bus) is tested in
tests/integration/test_notify_dunst.py; here every failure mode is played by a fake.
"""

from __future__ import annotations

import asyncio
import json
import logging
from enum import Enum
from pathlib import Path
from typing import Any

import pytest

from binmon.alerts.ledger import Fire
from binmon.alerts.notify import (
    CallableSink,
    DesktopNotifier,
    FallbackNotifier,
    LogNotifier,
    Notice,
    NotifyError,
    NotifySettings,
    catch_up_notice,
    is_catch_up,
    load_settings,
    save_settings,
)

NOTICE = Notice("binmon: BTCUSDT 1m", "BTCUSDT crossing 19,250", "BTCUSDT", "1m", fire="the-fire")


class Cap(Enum):
    SOUND = 1
    MESSAGE = 2


class FakeService:
    """The desktop-notifier object: ``mode`` plays a working, missing, hung or refusing service."""

    def __init__(self, mode: str = "ok", caps: frozenset[Cap] = frozenset({Cap.MESSAGE})) -> None:
        self.mode, self.caps = mode, caps
        self.sent: list[dict[str, Any]] = []
        self.clicks: list[Any] = []

    async def get_capabilities(self) -> frozenset[Cap]:
        if self.mode == "absent":
            raise RuntimeError("The name org.freedesktop.Notifications was not provided by any .service file")
        if self.mode == "hung":
            await asyncio.sleep(60)
        return self.caps

    async def send(self, title: str, message: str, **kw: Any) -> str:
        if self.mode == "refuse":  # desktop-notifier logs and returns without dispatching
            return "id-lost"
        self.sent.append({"title": title, "message": message, **kw})
        self.clicks.append(kw["on_clicked"])
        kw["on_dispatched"]()
        return f"id-{len(self.sent)}"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def desktop(service: FakeService, clock: Clock | None = None, **kw: Any) -> tuple[DesktopNotifier, list[str]]:
    made: list[str] = []

    def factory(app: str) -> FakeService:
        made.append(app)
        return service

    return DesktopNotifier(factory=factory, clock=clock or Clock(), timeout_s=0.2, **kw), made


async def test_desktop_send_returns_the_id_and_a_click_gives_the_notice_back() -> None:
    service = FakeService()
    clicked: list[Notice] = []
    notifier, _ = desktop(service, on_clicked=clicked.append)
    assert await notifier.send(NOTICE) == "id-1"
    assert service.sent[0]["title"] == NOTICE.title and service.sent[0]["message"] == NOTICE.body
    assert service.sent[0]["sound"] is None
    service.clicks[0]()  # the user clicks the notification
    assert clicked == [NOTICE] and clicked[0].fire == "the-fire"


async def test_sound_goes_to_the_service_when_it_can_play_it_else_to_the_ui_beep() -> None:
    beeps: list[int] = []
    loud = Notice("t", "b", sound=True)
    able, _ = desktop(FakeService(caps=frozenset({Cap.SOUND})), on_no_sound=lambda: beeps.append(1))
    await able.send(loud)
    assert able._notifier.sent[0]["sound"].name == "message-new-instant" and beeps == []
    mute_service = FakeService()
    mute, _ = desktop(mute_service, on_no_sound=lambda: beeps.append(1))
    await mute.send(loud)
    assert mute_service.sent[0]["sound"] is None and beeps == [1]


@pytest.mark.parametrize("mode", ["absent", "hung", "refuse"])
async def test_a_missing_hung_or_refusing_service_raises_notify_error(mode: str) -> None:
    notifier, _ = desktop(FakeService(mode))
    with pytest.raises(NotifyError) as err:
        await notifier.send(NOTICE)
    assert "\n" not in str(err.value)
    assert await notifier.notify(NOTICE) is False


async def test_after_a_failure_the_service_is_asked_again_only_after_the_retry_delay() -> None:
    service, clock = FakeService("absent"), Clock()
    notifier, made = desktop(service, clock, retry_after_s=30.0)
    assert not await notifier.available()
    service.mode = "ok"  # the daemon starts
    clock.t += 10
    assert not await notifier.available() and len(made) == 1  # not even asked
    clock.t += 25
    assert await notifier.available() and len(made) == 2
    assert await notifier.notify(NOTICE)


async def test_the_chain_falls_back_in_order_and_logs_a_failing_sink_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    toasts: list[Notice] = []
    logged = LogNotifier()
    tray = CallableSink("tray", lambda n: False)  # no system tray
    toast = CallableSink("toast", lambda n: toasts.append(n) or True)
    notifier, _ = desktop(FakeService("absent"), retry_after_s=0.0)
    chain = FallbackNotifier([notifier, tray, toast, logged], timeout_s=0.5)
    with caplog.at_level(logging.WARNING, "binmon.alerts.notify"):
        for _ in range(3):
            assert await chain.deliver(NOTICE) == "toast"
    assert toasts == [NOTICE] * 3 and logged.seen == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # desktop and tray, once each
    assert "desktop failed (no desktop notification service (The name org.freedesktop" in warnings[0]
    assert chain.delivered == {"toast": 3}


async def test_a_raising_or_hanging_sink_never_reaches_the_caller() -> None:
    async def hang(_n: Notice) -> bool:
        await asyncio.sleep(60)
        return True

    def boom(_n: Notice) -> bool:
        raise ValueError("tray exploded")

    logged = LogNotifier()
    chain = FallbackNotifier([CallableSink("hung", hang), CallableSink("boom", boom), logged], timeout_s=0.1)
    assert await chain.deliver(NOTICE) == "log"
    assert logged.seen == [NOTICE]
    # Nothing at all can show it: None, still no exception.
    assert await FallbackNotifier([CallableSink("boom", boom)]).deliver(NOTICE) is None


async def test_a_sink_that_works_again_is_used_again(caplog: pytest.LogCaptureFixture) -> None:
    service = FakeService("absent")
    notifier, _ = desktop(service, retry_after_s=0.0)
    logged = LogNotifier()
    chain = FallbackNotifier([notifier, logged])
    assert await chain.deliver(NOTICE) == "log"
    service.mode = "ok"
    with caplog.at_level(logging.INFO, "binmon.alerts.notify"):
        assert await chain.deliver(NOTICE) == "desktop"
    assert any("desktop works again" in r.getMessage() for r in caplog.records)


async def test_submit_schedules_delivery_and_drain_waits_for_it() -> None:
    logged = LogNotifier()
    chain = FallbackNotifier([logged])
    tasks = [chain.submit(Notice("t", f"n{i}")) for i in range(5)]
    await chain.drain()
    assert all(t.done() for t in tasks) and [n.body for n in logged.seen] == [f"n{i}" for i in range(5)]
    await chain.close()


async def test_async_callable_sinks_are_awaited() -> None:
    async def show(_n: Notice) -> bool:
        await asyncio.sleep(0)
        return True

    assert await FallbackNotifier([CallableSink("toast", show)]).deliver(NOTICE) == "toast"


def test_settings_round_trip_and_a_corrupt_file_is_kept_aside(tmp_path: Path) -> None:
    path = tmp_path / "notifications.json"
    assert load_settings(path) == (NotifySettings(), [])
    save_settings(path, NotifySettings(desktop=False, sound=True))
    assert load_settings(path) == (NotifySettings(desktop=False, sound=True), [])
    path.write_text('{"desktop": "yes", "sound": true}')
    settings, problems = load_settings(path)
    assert settings == NotifySettings(desktop=True, sound=True)
    assert problems == ["notification settings: desktop must be true or false; using the default"]
    path.write_text("{not json")
    settings, problems = load_settings(path)
    assert settings == NotifySettings() and len(problems) == 1 and "is corrupt" in problems[0]
    aside = list(tmp_path.glob("notifications.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == "{not json" and not path.exists()
    save_settings(path, NotifySettings(sound=True))
    assert json.loads(path.read_text()) == {"desktop": True, "sound": True}


def _fire(
    bar_open_ms: int, time_ms: int, *, closed: bool = True, interval: str = "1m", msg: str = "m"
) -> Fire:
    return Fire("r", "BTCUSDT", interval, bar_open_ms, time_ms, 1.0, 1.0, msg, "rule", closed)


def test_catch_up_fires_are_closed_bars_that_closed_long_before_they_fired() -> None:
    t0 = 1_700_000_040_000  # a minute boundary
    assert not is_catch_up(_fire(t0, t0 + 60_000 + 50))  # fired as the bar closed
    assert not is_catch_up(_fire(t0, t0 + 60_000 + 120_000))  # just within the 2 min allowance
    assert is_catch_up(_fire(t0, t0 + 60_000 + 120_001))  # a backfill caught up on it
    assert not is_catch_up(_fire(t0, t0 + 10 * 60_000, closed=False))  # intrabar: never late
    assert not is_catch_up(_fire(t0, t0 + 3_600_000 + 7_000_000, interval="1h"))  # < two 1h intervals
    one = catch_up_notice([_fire(t0, 0, msg="a")])
    assert (one.title, one.body) == ("BTCUSDT 1m alert (late)", "a")
    many = catch_up_notice([_fire(t0, 0, msg="a"), _fire(t0 + 60_000, 0, msg="b")], sound=True)
    assert many.body == "2 alerts fired while binmon was catching up; newest: b" and many.sound
    assert many.fire.bar_open_ms == t0 + 60_000  # a click opens the newest one's chart
