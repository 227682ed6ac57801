"""Capture files as a simulator input: detection, loading, and the REST view of replayed klines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from binmon.history.record import CaptureWriter
from binmon.sim.capture import CaptureMarket, is_capture, load_capture
from binmon.sim.clock import ManualClock

T0 = 1_717_372_800_000  # 2024-06-03 00:00 UTC


def kline(t: int, close: str, n: int, closed: bool, sym: str = "BTCUSDT", iv: str = "1m") -> dict[str, Any]:
    return {
        "t": t, "T": t + 59_999, "s": sym, "i": iv, "f": 100 + n, "L": 100 + 2 * n, "o": "1.50000000",
        "c": close, "h": "2.00000000", "l": "1.00000000", "v": f"{n}.00000000", "n": n, "x": closed,
        "q": "3.00000000", "V": "0.50000000", "Q": "0.75000000", "B": "0",
    }  # fmt: skip


def row(k: dict[str, Any]) -> list[Any]:
    return [k["t"], k["o"], k["h"], k["l"], k["c"], k["v"], k["T"], k["q"], k["n"], k["V"], k["Q"], k["B"]]


def write(path: Path, streams: list[str], records: list[tuple[int, str | None, str | None]]) -> Path:
    """A capture with ``(t, frame, gap)`` records."""
    with CaptureWriter(path, "ws://example/stream", streams) as w:
        for t, frame, gap in records:
            if frame is not None:
                w.frame(t, frame)
            else:
                w.gap(t, gap or "dropped")
    return path


def test_detection_is_by_content_not_by_name(tmp_path: Path) -> None:
    cap = write(tmp_path / "looks-like.csv", ["btcusdt@trade"], [(T0, "{}", None)])
    csv = tmp_path / "looks-like.jsonl"
    csv.write_text("1,0.5,1.0,0.5,1717372800000,True,True\n")
    assert is_capture(cap) and not is_capture(csv)
    other_json = tmp_path / "other.jsonl"
    other_json.write_text('{"hello": 1}\n')
    assert not is_capture(other_json)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert not is_capture(empty)


def test_load_starts_at_the_first_frame_and_derives_symbols(tmp_path: Path) -> None:
    frames = [
        (T0 - 500, None, "dropped before anything"),  # a gap is not a frame: not the start
        (T0, json.dumps({"stream": "nknusdt@bookTicker", "data": {"u": 1, "s": "NKNUSDT",
          "b": "0.35210000", "B": "672.00000000", "a": "0.35260000", "A": "15.00000000"}}), None),
        (T0 + 1, json.dumps({"stream": "lrcbtc@aggTrade", "data": {"e": "aggTrade", "s": "LRCBTC",
          "p": "0.00000638", "q": "177.50000000"}}), None),
        (T0 + 2, json.dumps({"stream": "runeeur@kline_1m", "data": {"e": "kline",
          "k": kline(T0, "6.24800000", 3, False, "RUNEEUR")}}), None),
        (T0 + 3, '{"stream":"extra@trade","data":{"e":"tr', None),  # torn: names nothing usable
        (T0 + 4, json.dumps({"stream": "seen@trade", "data": {"e": "trade", "p": "1.25", "q": "2"}}), None),
    ]  # fmt: skip
    header_streams = ["nknusdt@bookTicker", "lrcbtc@aggTrade", "runeeur@kline_1m", "btcusdt@trade"]
    cap = load_capture(write(tmp_path / "c", header_streams, frames))
    assert cap.first_ms == T0
    assert cap.streams == (*header_streams, "seen@trade")  # header first, then streams only seen
    info = {s.symbol: (s.base, s.quote, s.tick_size, s.step_size) for s in cap.symbols}
    assert info == {
        "NKNUSDT": ("NKN", "USDT", "0.0001", "1"),
        "LRCBTC": ("LRC", "BTC", "0.00000001", "0.1"),
        # kline: "o" 1.5 and "c" 6.248 are prices; "v" 3 and "V" 0.5 quantities ("q" is quote volume)
        "RUNEEUR": ("RUNE", "EUR", "0.001", "0.1"),
        "BTCUSDT": ("BTC", "USDT", "0.00000001", "0.00000001"),  # no frame: 8 decimals
        "SEEN": ("SEEN", "", "0.01", "1"),
    }


def test_load_refuses_what_it_cannot_replay(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no frame"):
        load_capture(write(tmp_path / "gaps", ["btcusdt@trade"], [(T0, None, "x")]))
    not_capture = tmp_path / "x.csv"
    not_capture.write_text("1,2,3\n")
    with pytest.raises(ValueError, match="not a binmon capture"):
        load_capture(not_capture)


def test_the_first_frame_is_found_beyond_the_prescan(tmp_path: Path) -> None:
    records: list[tuple[int, str | None, str | None]] = [(T0 + i, None, "gap") for i in range(5)]
    records.append((T0 + 10, "{}", None))
    assert load_capture(write(tmp_path / "c", [], records), prescan=2).first_ms == T0 + 10


def test_kline_rows_select_like_binance_from_the_latest_push() -> None:
    market = CaptureMarket((), ManualClock(T0 + 10 * 60_000))
    pushes = [kline(T0 + i * 60_000, f"{i + 1}.00000000", i + 1, True) for i in range(5)]
    pushes.append(kline(T0 + 5 * 60_000, "7.00000000", 1, False))
    pushes.append(kline(T0 + 5 * 60_000, "7.50000000", 2, False))  # the same candle, later: wins
    pushes.insert(2, kline(T0 + 60_000, "9.00000000", 9, False))  # an older push of candle 1...
    pushes.insert(4, kline(T0 + 60_000, "2.00000000", 2, True))  # ...then its final again
    assert all(market.observe_kline(k) for k in pushes)
    final = {k["t"]: row(k) for k in pushes}  # later pushes overwrite earlier ones
    opens = sorted(final)
    rows = market.kline_rows
    assert rows("BTCUSDT", "1m", None, None, 500) == [final[t] for t in opens]
    assert rows("btcusdt", "1m", None, None, 2) == [final[t] for t in opens[-2:]]  # newest
    assert rows("BTCUSDT", "1m", T0 + 1, None, 2) == [final[t] for t in opens[1:3]]  # oldest from
    assert rows("BTCUSDT", "1m", T0 + 60_000, T0 + 120_000, 9) == [final[t] for t in opens[1:3]]
    assert rows("BTCUSDT", "1m", None, T0 + 60_000, 9) == [final[t] for t in opens[:2]]
    assert rows("BTCUSDT", "1m", T0 + 6 * 60_000, None, 9) == []
    assert rows("BTCUSDT", "5m", None, None, 9) == []  # not captured: not served
    assert rows("ETHUSDT", "1m", None, None, 9) == []
    assert final[T0 + 5 * 60_000][4] == "7.50000000"


@pytest.mark.parametrize(
    "bad",
    [
        None,
        [],
        {"t": "x"},
        {**kline(T0, "1", 1, True), "t": True},  # a bool is not a time
        {**kline(T0, "1", 1, True), "o": 1.5},  # prices are strings
        {**kline(T0, "1", 1, True), "i": "7m"},
        {k: v for k, v in kline(T0, "1", 1, True).items() if k != "n"},
    ],
)
def test_malformed_klines_are_not_served(bad: Any) -> None:
    market = CaptureMarket((), ManualClock(T0))
    assert not market.observe_kline(bad)
    assert market.kline_rows("BTCUSDT", "1m", None, None, 9) == []


def test_ticker_rolls_up_the_finest_captured_interval() -> None:
    clock = ManualClock(T0 + 24 * 3600_000 + 90_000)  # the window starts at T0 + 90 s
    market = CaptureMarket((), clock)
    idle = market.ticker_24h("BTCUSDT")
    assert (idle.count, idle.volume, idle.first_id, idle.last_id, idle.close) == (0, 0.0, -1, -1, 0.0)
    for i, close in enumerate(["1.10000000", "1.20000000", "0.90000000", "1.40000000"]):
        market.observe_kline(kline(T0 + i * 60_000, close, i + 1, True))
    market.observe_kline(kline(T0, "5.00000000", 99, False, iv="1h"))  # coarser: not used
    t = market.ticker_24h("BTCUSDT")
    # Candles opened at T0+120 s and T0+180 s are inside; T0+60 s is the previous close.
    assert (t.open, t.close, t.prev_close, t.count) == (1.5, 1.4, 1.2, 3 + 4)
    assert (t.volume, t.quote_volume, t.high, t.low) == (7.0, 6.0, 2.0, 1.0)
    assert (t.first_id, t.last_id) == (103, 108)
    clock.advance(24 * 3600_000)
    later = market.ticker_24h("BTCUSDT")
    assert later.count == 0 and later.close == later.prev_close == 1.4
