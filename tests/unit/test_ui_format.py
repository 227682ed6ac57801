"""Formatting helpers of the panels: precision from tickSize, K/M/B volumes, signed percentages."""

from __future__ import annotations

from datetime import UTC, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from binmon.ui.format import (
    MISSING,
    format_delay,
    format_pct,
    format_price,
    format_qty,
    format_rate,
    format_time_ms,
    format_volume,
)


@pytest.mark.parametrize(
    ("value", "precision", "text"),
    [
        (0.00000638, 8, "0.00000638"),  # a real BTC-quoted price: 2 decimals would show 0.00
        (57312.1, 2, "57312.10"),
        (0.0618, 6, "0.061800"),
        (1.5, 0, "2"),
        (3.14159, -1, "3"),
        (None, 2, MISSING),
        (float("nan"), 2, MISSING),
        (float("inf"), 2, MISSING),
    ],
)
def test_format_price(value: float | None, precision: int, text: str) -> None:
    assert format_price(value, precision) == text


def test_format_qty_uses_step_precision_or_trims() -> None:
    assert format_qty(1.5, 4) == "1.5000"
    assert format_qty(1.5) == "1.5"
    assert format_qty(3.0) == "3"
    assert format_qty(0.00012345) == "0.00012345"
    assert format_qty(0.0) == "0"
    assert format_qty(None) == MISSING


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0.00"),
        (999.994, "999.99"),
        (999.996, "1.00K"),  # rounds up into the next unit rather than "1000.00"
        (1_234, "1.23K"),
        (999_999, "1.00M"),
        (1_234_567, "1.23M"),
        (2_500_000_000, "2.50B"),
        (7.1e12, "7.10T"),
        (8.2e15, "8200.00T"),
        (-1_500, "-1.50K"),
        (None, MISSING),
    ],
)
def test_format_volume(value: float | None, text: str) -> None:
    assert format_volume(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.234, "+1.23%"),
        (-0.5, "-0.50%"),
        (0.0, "0.00%"),
        (-0.001, "0.00%"),  # rounds to zero: no "-0.00%"
        (0.004, "0.00%"),
        (None, MISSING),
    ],
)
def test_format_pct(value: float | None, text: str) -> None:
    assert format_pct(value) == text


def test_format_time_ms_in_zones() -> None:
    ms = 1_570_752_000_123  # 2019-10-11 00:00:00.123 UTC
    assert format_time_ms(ms, UTC) == "00:00:00.123"
    assert format_time_ms(ms, ZoneInfo("Asia/Tokyo")) == "09:00:00.123"
    assert format_time_ms(ms, timezone(timedelta(hours=-5))) == "19:00:00.123"
    assert format_time_ms(ms + 5, UTC) == "00:00:00.128"
    # None is the machine's zone: whatever it is, minutes/seconds/ms survive for whole-hour zones.
    assert format_time_ms(ms, None).endswith(":00.123")


def test_format_delay_and_rate() -> None:
    assert format_delay(120.4) == "delay 120 ms"
    assert format_delay(12_345) == "delay 12.3 s"
    assert format_delay(None) == f"delay {MISSING}"
    assert format_rate(1234.4) == "1,234 msg/s"
    assert format_rate(2.25) == "2.2 msg/s"
    assert format_rate(0) == "0.0 msg/s"
