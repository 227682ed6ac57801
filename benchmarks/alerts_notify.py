"""Fire-to-notification latency through a real notification daemon. Prints JSON.

Starts a private session bus, Xvfb and dunst (tests/notify_daemon.py; all stopped at the end),
then feeds kline updates to an :class:`~binmon.alerts.engine.AlertEngine` whose one rule fires
on every update, and hands each fire to the app's notification chain
(:class:`~binmon.alerts.notify.FallbackNotifier` -> :class:`~binmon.alerts.notify.DesktopNotifier`
-> D-Bus -> dunst), one at a time, ``--gap-ms`` apart.

Measured per notification, from the kline handed to the engine:

* ``fire_to_daemon_ms`` - until dunst created the notification: dunst's own ``timestamp`` (CLOCK_MONOTONIC
  in microseconds, the same clock as Python's ``time.monotonic_ns`` on Linux), read back with
  ``dunstctl history``;
* ``fire_to_reply_ms`` - until the D-Bus reply to ``Notify`` came back (``deliver`` returned).

The first notification (which opens the D-Bus connection and reads the server's capabilities)
is reported apart as ``first_*``. Every 5 notifications the shown ones are closed (untimed), as a
user dismisses them: dunst's cost per notification grows with the number on screen. Needs
dbus-daemon, Xvfb, dunst and dunstctl.

``python benchmarks/alerts_notify.py [--count 50] [--gap-ms 20]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from notify_daemon import missing_tools, notification_daemon  # noqa: E402

from binmon.alerts.engine import AlertEngine  # noqa: E402
from binmon.alerts.notify import DesktopNotifier, FallbackNotifier, LogNotifier, Notice  # noqa: E402
from binmon.alerts.rules import AlertRule, Condition, Frequency, Operand, Operator, Subject  # noqa: E402
from binmon.core.models import Kline  # noqa: E402

T0 = 1_717_372_800_000


def stats(values_ms: list[float]) -> dict[str, float]:
    """p50 / p99 / max of ``values_ms`` (ms, 3 decimals)."""
    ordered = sorted(values_ms)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "p50": round(statistics.median(ordered), 3),
        "p99": round(p99, 3),
        "max": round(ordered[-1], 3),
    }


def kline(i: int, *, open_time: int = T0, closed: bool = False) -> Kline:
    """The i-th update of one BTCUSDT 1m bar (volume grows: each one is a newer event)."""
    price = 60_000.0 + i
    return Kline(
        symbol="BTCUSDT",
        interval="1m",
        open_time=open_time,
        close_time=open_time + 59_999,
        open=60_000.0,
        high=price,
        low=59_990.0,
        close=price,
        volume=1.0 + i,
        quote_volume=price * (1.0 + i),
        trades=i + 1,
        taker_buy_base=0.5,
        taker_buy_quote=0.5 * price,
        closed=closed,
    )


async def run(count: int, gap_ms: float, daemon: Any) -> dict[str, Any]:
    rule = AlertRule(
        "bench",
        "BTCUSDT",
        "1m",
        Condition(Subject.price("close"), Operator.GREATER_THAN, Operand.of_value(1.0)),
        Frequency.EVERY_TIME,
        message="{symbol} {interval} at {price}",
    )
    engine = AlertEngine([rule])
    engine.load("BTCUSDT", "1m", [kline(0, open_time=T0 - 60_000, closed=True)])  # the previous bar
    desktop = DesktopNotifier("binmon")
    chain = FallbackNotifier([desktop, LogNotifier()])
    starts: list[int] = []  # monotonic ns when each kline went to the engine
    replies: list[float] = []
    for i in range(count + 1):
        t0 = time.monotonic_ns()
        fires = engine.on_kline("BTCUSDT", "1m", kline(i), int(time.time() * 1000))
        assert len(fires) == 1, fires
        fire = fires[0]
        used = await chain.deliver(Notice(f"{fire.symbol} {fire.interval} alert", f"#{i} {fire.message}"))
        replies.append((time.monotonic_ns() - t0) / 1e6)
        starts.append(t0)
        if used != "desktop":
            raise RuntimeError(f"notification {i} went to {used}: {desktop.last_error}")
        if i % 5 == 4:
            # As if the user dismissed them: dunst re-lays out every notification on screen, so
            # a pile of 50 open ones (never expiring in the test config) would be measured instead.
            await asyncio.to_thread(daemon.ctl, "close-all")
        await asyncio.sleep(gap_ms / 1000)
    await chain.close()
    shown = daemon.close_all_and_read()
    by_index = {int(n["body"].split(" ", 1)[0][1:]): int(n["timestamp"]) for n in shown}
    if sorted(by_index) != list(range(count + 1)):
        raise RuntimeError(f"dunst holds {len(by_index)} of {count + 1} notifications")
    arrived = [(by_index[i] * 1000 - starts[i]) / 1e6 for i in range(count + 1)]
    return {
        "benchmark": "alerts_notify",
        "daemon": subprocess.run(["dunst", "--version"], capture_output=True, text=True).stdout.strip(),
        "notifications": count,
        "gap_ms": gap_ms,
        "fire_to_daemon_ms": stats(arrived[1:]),
        "fire_to_reply_ms": stats(replies[1:]),
        "first_fire_to_daemon_ms": round(arrived[0], 3),
        "first_fire_to_reply_ms": round(replies[0], 3),
        "delivered": chain.delivered,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=50, help="notifications measured (after the first)")
    ap.add_argument("--gap-ms", type=float, default=20.0, help="pause between two fires")
    args = ap.parse_args()
    missing = missing_tools()
    if missing:
        print(json.dumps({"benchmark": "alerts_notify", "skipped": f"missing {', '.join(missing)}"}))
        return
    with notification_daemon() as daemon:
        os.environ.update(daemon.env)  # desktop-notifier's D-Bus client reads the address from here
        result = asyncio.run(run(args.count, args.gap_ms, daemon))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
