"""Alert levels as chart price lines: the page's argument and the recording chart (no Qt)."""

from __future__ import annotations

import math

import pytest

from binmon.ui.chart.api import Crosshair, PriceLine, price_lines_arg
from binmon.ui.chart.fake import RecordingChart


def test_price_lines_arg_is_what_the_page_takes() -> None:
    lines = [PriceLine("a1", 19250.0, "crossing"), PriceLine("a2:low", 0.00000638, "", active=False)]
    assert price_lines_arg(lines) == [
        {"id": "a1", "price": 19250.0, "title": "crossing", "active": True},
        {"id": "a2:low", "price": 0.00000638, "title": "", "active": False},
    ]
    assert price_lines_arg([]) == []


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([PriceLine("a", math.nan)], "price line 'a': price must be a finite number (got nan)"),
        ([PriceLine("a", math.inf)], "price line 'a': price must be a finite number (got inf)"),
        ([PriceLine("a", 1.0), PriceLine("a", 2.0)], "price line ids must be unique and non-empty (got 'a')"),
        ([PriceLine("", 1.0)], "price line ids must be unique and non-empty (got '')"),
    ],
)
def test_bad_price_lines_are_refused_in_one_line(lines: list[PriceLine], message: str) -> None:
    with pytest.raises(ValueError) as err:
        price_lines_arg(lines)
    assert str(err.value) == message


def test_the_recording_chart_keeps_the_lines_and_the_crosshair_price() -> None:
    chart = RecordingChart()
    chart.set_price_lines([PriceLine("a1", 1.5)])
    chart.set_price_lines([PriceLine("a2", 2.5), PriceLine("a3", 3.5)])
    assert [x.id for x in chart.price_lines] == ["a2", "a3"]
    assert len(chart.calls_to("set_price_lines")) == 2
    with pytest.raises(ValueError):
        chart.set_price_lines([PriceLine("bad", math.nan)])
    assert [x.id for x in chart.price_lines] == ["a2", "a3"]  # unchanged, as the real chart
    seen: list[Crosshair] = []
    chart.on_crosshair(seen.append)
    chart.fire_crosshair(None, 19250.5)
    assert seen == [Crosshair(None, None, 19250.5)]
