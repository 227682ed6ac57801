"""REST bodies, archive rows, error bodies, stream names and control frames of the codec."""

from __future__ import annotations

import csv
import io
import os
import pickle
from pathlib import Path
from typing import Any

import orjson
import pytest

from binmon.binance.codec import (
    MINI_TICKER_ALL,
    agg_trade_stream,
    book_ticker_stream,
    decode_error_body,
    decode_exchange_info,
    decode_kline_row,
    decode_klines,
    get_property_frame,
    kline_stream,
    kline_to_row,
    list_subscriptions_frame,
    mini_ticker_stream,
    parse_stream_name,
    set_property_frame,
    subscribe_frame,
    trade_stream,
    unsubscribe_frame,
)
from binmon.binance.errors import (
    BinanceAPIError,
    BinanceError,
    IPBannedError,
    ProtocolError,
    RateLimitedError,
)
from binmon.core.intervals import INTERVALS, IntervalError
from binmon.core.models import Kline


def real_fixtures() -> Path:
    """``../shared/fixtures/real`` next to the repo root, or ``$BINMON_FIXTURES``; fails if absent."""
    env = os.environ.get("BINMON_FIXTURES")
    root = Path(env) if env else Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "real"
    if not (root / "cryptofeed").is_dir():
        pytest.fail(f"real fixtures not found at {root} (set BINMON_FIXTURES)")
    return root


def exchange_info_body(name: str) -> str:
    """The body of a cryptofeed HTTP capture line ``<url> -> <ts>: <body>``."""
    line = (real_fixtures() / "cryptofeed" / name).read_text().splitlines()[0]
    url, _, rest = line.partition(" -> ")
    assert url.endswith("/exchangeInfo")
    return rest.partition(": ")[2]


# ---------------------------------------------------------------- kline rows

DOC_ROW: list[object] = [1499040000000, "0.01634790", "0.80000000", "0.01575800", "0.01577100",
    "148976.11427815", 1499644799999, "2434.19055334", 308, "1756.87402397", "28.46694368", "0"]  # fmt: skip


def test_archive_csv_round_trips_to_identical_text() -> None:
    text = (real_fixtures() / "XRPETH-1m-2019-10-11_13.csv").read_text()
    rows = list(csv.reader(io.StringIO(text)))
    klines = [decode_kline_row("XRPETH", "1m", row) for row in rows]
    assert len(klines) == 2469 and all(k.closed for k in klines)
    assert klines[0].open == 0.00141342 and klines[0].trades == 9 and klines[0].close_time == 1570752059999
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(kline_to_row(k) for k in klines)
    assert out.getvalue() == text


def test_rest_row_json_types_and_closed_flag() -> None:
    k = decode_kline_row("bnbbtc", "1m", DOC_ROW)
    assert k == Kline("BNBBTC", "1m", 1499040000000, 1499644799999, 0.0163479, 0.8, 0.015758, 0.015771,
                      148976.11427815, 2434.19055334, 308, 1756.87402397, 28.46694368, True)  # fmt: skip
    assert decode_kline_row("BNBBTC", "1m", DOC_ROW, server_time_ms=1499644799999).closed is False
    assert decode_kline_row("BNBBTC", "1m", DOC_ROW, server_time_ms=1499644800000).closed is True
    assert kline_to_row(k) == DOC_ROW


def test_microsecond_archive_rows_become_milliseconds() -> None:
    row = list(DOC_ROW)
    row[0], row[6] = "1735689600000000", "1735689659999999"
    k = decode_kline_row("BTCUSDT", "1m", row)
    assert (k.open_time, k.close_time) == (1735689600000, 1735689659999)


BAD_ROWS: list[tuple[object, str | None]] = [
    (DOC_ROW[:11], "12 columns"),
    ("1499040000000,0.1,0.1,0.1,0.1,1,1499644799999,1,1,1,1,0", "12 columns"),
    ({"open": 1}, "12 columns"),
    ([True, *DOC_ROW[1:]], "column 0 (open_time)"),
    ([1.5, *DOC_ROW[1:]], "column 0 (open_time)"),
    (["-5", *DOC_ROW[1:]], "column 0 (open_time)"),
    ([*DOC_ROW[:1], "abc", *DOC_ROW[2:]], "column 1 (open)"),
    ([*DOC_ROW[:4], "nan", *DOC_ROW[5:]], "column 4 (close)"),
    ([*DOC_ROW[:5], "inf", *DOC_ROW[6:]], "column 5 (volume)"),
    ([*DOC_ROW[:2], None, *DOC_ROW[3:]], "column 2 (high)"),
    ([*DOC_ROW[:8], "308", *DOC_ROW[9:]], None),  # a CSV-style count is fine
    ([*DOC_ROW[:8], 3.5, *DOC_ROW[9:]], "column 8 (trades)"),
    ([*DOC_ROW[:6], 1499040000000 - 1, *DOC_ROW[7:]], "close_time before open_time"),
]


@pytest.mark.parametrize(("row", "why"), BAD_ROWS, ids=lambda v: repr(v)[:30])
def test_bad_rows_raise_protocol_error_naming_the_column(row: Any, why: str | None) -> None:
    if why is None:
        assert decode_kline_row("BNBBTC", "1m", row).trades == 308
        return
    with pytest.raises(ProtocolError, match=why.replace("(", r"\(").replace(")", r"\)")):
        decode_kline_row("BNBBTC", "1m", row)


def test_decode_klines_bodies() -> None:
    body = orjson.dumps([DOC_ROW, DOC_ROW])
    assert decode_klines("BNBBTC", "1h", body) == decode_klines("BNBBTC", "1h", [DOC_ROW, DOC_ROW])
    assert decode_klines("BNBBTC", "1h", body.decode())[1].interval == "1h"
    assert decode_klines("BNBBTC", "1h", b"[]") == []
    with pytest.raises(ProtocolError, match="not valid JSON"):
        decode_klines("BNBBTC", "1h", b"<html>")
    with pytest.raises(ProtocolError, match="expected a JSON array"):
        decode_klines("BNBBTC", "1h", b'{"code":-1121,"msg":"Invalid symbol."}')
    with pytest.raises(ProtocolError):
        decode_klines("BNBBTC", "1h", [DOC_ROW, [1, 2]])
    with pytest.raises(IntervalError):
        decode_klines("BNBBTC", "2m", [DOC_ROW])
    with pytest.raises(IntervalError):
        decode_kline_row("BNBBTC", "1H", DOC_ROW)


# ---------------------------------------------------------------- exchangeInfo


def test_spot_exchange_info_from_real_capture() -> None:
    info = decode_exchange_info(exchange_info_body("BINANCE.0"))
    assert info.server_time == 1633998511098
    assert len(info.symbols) == 1695 and sum(s.trading for s in info.symbols) == 1262
    eth = info.symbol("ethbtc")
    assert eth is not None and eth.trading and (eth.base_asset, eth.quote_asset) == ("ETH", "BTC")
    assert (eth.tick_size, eth.step_size, eth.price_precision) == ("0.00000100", "0.00010000", 6)
    lrc = info.symbol("LRCBTC")
    assert lrc is not None and lrc.price_precision == 8 and lrc.step_size == "1.00000000"
    assert info.request_weight_per_minute() == 1200
    assert [(r.kind, r.interval, r.interval_num, r.limit) for r in info.rate_limits][-1] == (
        "RAW_REQUESTS", "MINUTE", 5, 6100,
    )  # fmt: skip
    assert decode_exchange_info(orjson.loads(exchange_info_body("BINANCE.0"))) == info


def test_futures_exchange_info_from_real_capture() -> None:
    info = decode_exchange_info(exchange_info_body("BINANCE_FUTURES.0").encode())
    btc = info.symbol("BTCUSDT")
    assert btc is not None and (btc.tick_size, btc.price_precision, btc.step_size) == ("0.01", 2, "0.001")
    assert info.request_weight_per_minute() == 2400 and len(info.symbols) == 122


def test_exchange_info_defaults_and_errors() -> None:
    sym: dict[str, Any] = {"symbol": "AB", "status": "BREAK", "baseAsset": "A", "quoteAsset": "B"}
    info = decode_exchange_info({"serverTime": 5, "symbols": [sym]})
    assert info.rate_limits == () and not info.symbols[0].trading
    assert (info.symbols[0].tick_size, info.symbols[0].step_size) == ("0.00000001", "0.00000001")
    price = {"filterType": "PRICE_FILTER"}
    bad: list[tuple[object, str]] = [
        ([], "expected a JSON object"),
        (b"{", "not valid JSON"),
        ({"symbols": []}, "serverTime: missing key 'serverTime'"),
        ({"serverTime": "5", "symbols": []}, "serverTime"),
        ({"serverTime": 5}, "symbols: missing key"),
        ({"serverTime": 5, "symbols": {}}, "symbols must be a list"),
        ({"serverTime": 5, "symbols": [1]}, r"symbols\[0\]"),
        ({"serverTime": 5, "symbols": [dict(sym, status=None)]}, r"symbols\[0\] \('AB'\): status"),
        ({"serverTime": 5, "symbols": [dict(sym, filters=[price])]}, "missing key 'tickSize'"),
        ({"serverTime": 5, "symbols": [dict(sym, filters=[dict(price, tickSize="-1")])]}, "negative"),
        ({"serverTime": 5, "symbols": [dict(sym, filters=[dict(price, tickSize="x")])]}, "tickSize"),
        ({"serverTime": 5, "symbols": [dict(sym, filters="none")]}, "filters must be a list"),
        ({"serverTime": 5, "symbols": [dict(sym, filters=[3])]}, "filter must be an object"),
        ({"serverTime": 5, "symbols": [], "rateLimits": [{"rateLimitType": "X"}]}, "rateLimits"),
    ]  # fmt: skip
    for body, match in bad:
        with pytest.raises(ProtocolError, match=match):
            decode_exchange_info(body)


# ---------------------------------------------------------------- error bodies


def test_error_bodies_pick_the_exception_and_read_one_line() -> None:
    err = decode_error_body(400, b'{"code": -1121, "msg": "Invalid symbol."}')
    assert type(err) is BinanceAPIError and (err.status, err.code, err.msg) == (400, -1121, "Invalid symbol.")
    assert str(err) == "Binance error -1121 (HTTP 400): Invalid symbol."
    limited = decode_error_body(
        429, '{"code":-1003,"msg":"Too many requests."}', "https://x/api", retry_after=30
    )
    assert isinstance(limited, RateLimitedError) and isinstance(limited, BinanceAPIError)
    assert limited.retry_after == 30.0
    assert (
        str(limited)
        == "Binance error -1003 (HTTP 429): Too many requests. [https://x/api] (retry after 30 s)"
    )
    banned = decode_error_body(
        418, b'{"code":-1003,"msg":"Way too many requests; IP banned."}', retry_after=120.5
    )
    assert isinstance(banned, IPBannedError) and banned.retry_after == 120.5
    html = decode_error_body(403, b"<html>\n <body>403  Forbidden</body></html>")
    assert (
        html.code == 0 and "firewall" in html.msg and "<html> <body>403 Forbidden</body></html>" in html.msg
    )
    assert decode_error_body(502, b"").msg == "empty response body"
    assert decode_error_body(500, b"\xff" * 1000).msg.endswith("...")
    assert "\n" not in str(decode_error_body(500, "line1\nline2"))
    assert decode_error_body(400, b'{"code": true, "msg": "x"}').code == 0


def test_errors_pickle_and_share_a_base() -> None:
    for err in (
        decode_error_body(429, b'{"code":-1003,"msg":"m"}', "u", retry_after=3),
        decode_error_body(400, b""),
    ):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err) and back.__dict__ == err.__dict__
        assert isinstance(back, BinanceError)


# ---------------------------------------------------------------- stream names and control frames


def test_stream_name_builders() -> None:
    assert kline_stream("BTCUSDT", "1m") == "btcusdt@kline_1m"
    assert kline_stream("BTCUSDT", "1M") == "btcusdt@kline_1M"  # the month keeps its case
    assert trade_stream("BTCUSDT") == "btcusdt@trade"
    assert agg_trade_stream("BTCUSDT") == "btcusdt@aggTrade"
    assert book_ticker_stream("1000SHIBUSDT") == "1000shibusdt@bookTicker"
    assert mini_ticker_stream("ETHBTC") == "ethbtc@miniTicker"
    assert MINI_TICKER_ALL == "!miniTicker@arr"
    with pytest.raises(IntervalError):
        kline_stream("BTCUSDT", "2m")
    for bad in ("", "BTC USDT", "btc@usdt", "btc/usdt", "x" * 41):
        with pytest.raises(ValueError):
            trade_stream(bad)
    with pytest.raises(TypeError):
        trade_stream(5)  # type: ignore[arg-type]


@pytest.mark.parametrize("interval", INTERVALS)
def test_parse_stream_name_inverts_kline_stream(interval: str) -> None:
    assert parse_stream_name(kline_stream("ethBTC", interval)) == ("ETHBTC", "kline", interval)


def test_parse_stream_name_examples_and_garbage() -> None:
    assert parse_stream_name("btcusdt@trade") == ("BTCUSDT", "trade", None)
    assert parse_stream_name("btcusdt@depth20@100ms") == ("BTCUSDT", "depth20", None)
    assert parse_stream_name("btcusdt@kline_1m@+08:00") == ("BTCUSDT", "kline", "1m")
    assert parse_stream_name("!miniTicker@arr") == ("", "!miniTicker@arr", None)
    assert parse_stream_name("btcusdt_perpetual@continuousKline_1m") == (
        "BTCUSDT_PERPETUAL",
        "continuousKline_1m",
        None,
    )
    for bad in ("", "btcusdt", "@trade", "btcusdt@", "btcusdt@@x", "btcusdt@trade@", "btc usdt@trade",
                "btcusdt@kline_2m", "btcusdt@kline_", "btcusdt@1trade", "!", "!miniTicker@", "btcusdt@tr ade",
                "a/b@trade", "btcusdt@trade@ 1s"):  # fmt: skip
        with pytest.raises(ValueError):
            parse_stream_name(bad)


def test_control_frames_are_exactly_binances_json() -> None:
    assert (
        subscribe_frame(["btcusdt@kline_1m"], 1)
        == '{"method":"SUBSCRIBE","params":["btcusdt@kline_1m"],"id":1}'
    )
    assert (
        unsubscribe_frame(("btcusdt@trade", "!miniTicker@arr"), 312)
        == '{"method":"UNSUBSCRIBE","params":["btcusdt@trade","!miniTicker@arr"],"id":312}'
    )
    assert list_subscriptions_frame(3) == '{"method":"LIST_SUBSCRIPTIONS","id":3}'
    assert (
        set_property_frame("combined", True, 5)
        == '{"method":"SET_PROPERTY","params":["combined",true],"id":5}'
    )
    assert get_property_frame("combined", 2) == '{"method":"GET_PROPERTY","params":["combined"],"id":2}'


def test_control_frames_refuse_bad_input() -> None:
    with pytest.raises(TypeError, match="single string"):
        subscribe_frame("btcusdt@trade", 1)
    with pytest.raises(ValueError, match="empty"):
        subscribe_frame([], 1)
    with pytest.raises(ValueError):
        subscribe_frame(["btcusdt@trade", "garbage"], 1)
    with pytest.raises(TypeError):
        subscribe_frame(["btcusdt@trade"], True)
    with pytest.raises(TypeError):
        list_subscriptions_frame("1")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        list_subscriptions_frame(-1)
    with pytest.raises(ValueError):
        list_subscriptions_frame(2**63)
    with pytest.raises(TypeError):
        set_property_frame("combined", object(), 1)
    with pytest.raises(ValueError):
        set_property_frame("", True, 1)
