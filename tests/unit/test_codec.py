"""The websocket Decoder, on real Binance captures and on garbage.

REST decoding, stream names and frame builders are in test_codec_rest.py.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from binmon.binance import codec
from binmon.binance.codec import Decoder
from binmon.binance.ws_events import fast_constructor
from binmon.core.models import (
    AggTradeEvent,
    BookTickerEvent,
    ControlReply,
    ErrorReply,
    Kline,
    KlineEvent,
    MiniTickerEvent,
    ServerShutdown,
    TradeEvent,
    UnknownEvent,
)


def real_fixtures() -> Path:
    """``../shared/fixtures/real`` next to the repo root, or ``$BINMON_FIXTURES``.

    Fails (never skips): CI has the data, and a silently skipped real-data test hides bugs.
    """
    env = os.environ.get("BINMON_FIXTURES")
    root = Path(env) if env else Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "real"
    if not (root / "cryptofeed").is_dir():
        pytest.fail(f"real fixtures not found at {root} (set BINMON_FIXTURES)")
    return root


def capture_frames(name: str) -> list[str]:
    """The frames of a cryptofeed ws capture: line 1 is the URL, then ``<unix_ts>: <frame>``."""
    lines = (real_fixtures() / "cryptofeed" / name).read_text().splitlines()
    assert lines[0].startswith("wss://")
    frames = []
    for line in lines[1:]:
        if line.strip():
            ts, sep, frame = line.partition(": ")
            assert sep and float(ts) > 1.6e9
            frames.append(frame)
    return frames


def decode_all(frames: list[str]) -> tuple[Decoder, list[Any]]:
    dec = Decoder()
    events = [ev for frame in frames for ev in dec.feed(frame)]
    return dec, events


def by_type(events: list[Any]) -> collections.Counter[str]:
    return collections.Counter(type(ev).__name__ for ev in events)


# ---------------------------------------------------------------- real captures


def test_spot_capture_decodes_every_frame() -> None:
    frames = capture_frames("BINANCE.ws.1.0")
    dec, events = decode_all(frames)
    assert by_type(events) == {
        "UnknownEvent": 177,
        "BookTickerEvent": 84,
        "AggTradeEvent": 2,
        "KlineEvent": 2,
    }
    assert dec.stats.frames == len(frames) == 265
    assert (dec.stats.events, dec.stats.malformed, dec.stats.unknown) == (265, 0, 177)
    unknown = [ev for ev in events if isinstance(ev, UnknownEvent)]
    assert {ev.event_type for ev in unknown} == {"depthUpdate"}
    assert unknown[0].stream == "nknusdt@depth@100ms"
    assert unknown[0].data["U"] == 499869750


def test_spot_capture_exact_values_tiny_prices() -> None:
    events = decode_all(capture_frames("BINANCE.ws.1.0"))[1]
    kl = next(ev for ev in events if isinstance(ev, KlineEvent) and ev.kline.symbol == "LRCBTC")
    assert kl == KlineEvent(
        event_time=1633998534486,
        stream="lrcbtc@kline_1m",
        kline=Kline(
            symbol="LRCBTC",
            interval="1m",
            open_time=1633998480000,
            close_time=1633998539999,
            open=0.00000638,
            high=0.00000638,
            low=0.00000638,
            close=0.00000638,
            volume=177.0,
            quote_volume=0.00112926,
            trades=1,
            taker_buy_base=177.0,
            taker_buy_quote=0.00112926,
            closed=False,
            first_trade_id=12368013,
            last_trade_id=12368013,
        ),
    )
    assert f"{kl.kline.open:.8f}" == "0.00000638"
    agg = next(ev for ev in events if isinstance(ev, AggTradeEvent) and ev.symbol == "LRCBTC")
    assert agg == AggTradeEvent(
        1633998534486, "LRCBTC", 9213679, 0.00000638, 177.0, 12368013, 12368013, 1633998534486, False,
        "lrcbtc@aggTrade",
    )  # fmt: skip
    book = next(ev for ev in events if isinstance(ev, BookTickerEvent) and ev.symbol == "LRCBTC")
    assert book == BookTickerEvent(
        259345545, "LRCBTC", 0.00000637, 6500.0, 0.00000638, 27122.0, 0, "lrcbtc@bookTicker"
    )


def test_futures_capture_decodes_every_frame() -> None:
    frames = capture_frames("BINANCE_FUTURES.ws.1.0")
    dec, events = decode_all(frames)
    assert by_type(events) == {
        "UnknownEvent": 764,
        "BookTickerEvent": 613,
        "AggTradeEvent": 91,
        "KlineEvent": 67,
    }
    assert (dec.stats.frames, dec.stats.malformed, dec.stats.unknown) == (1535, 0, 764)
    kl = next(ev for ev in events if isinstance(ev, KlineEvent))
    assert kl.stream == "ctkusdt@kline_1m" and kl.event_time == 1626992741424
    assert (kl.kline.open, kl.kline.close, kl.kline.volume, kl.kline.trades) == (1.01, 1.011, 3917.0, 48)
    # Futures send integer-looking decimals ("3917"): they must still come out as floats.
    assert type(kl.kline.volume) is float and type(kl.kline.taker_buy_base) is float
    book = next(ev for ev in events if isinstance(ev, BookTickerEvent))
    assert book == BookTickerEvent(
        600859600576, "SUSHIUSDT", 7.611, 2.0, 7.612, 297.0, 1626992741017, "sushiusdt@bookTicker"
    )
    assert type(book.bid_qty) is float


@pytest.mark.parametrize(("capture", "decimals"), [("BINANCE.ws.1.0", 356), ("BINANCE_FUTURES.ws.1.0", 3170)])
def test_capture_values_match_float_of_the_wire_strings(capture: str, decimals: int) -> None:
    """Cross-check the orjson batch parse against float() on every decimal of every frame."""
    frames = capture_frames(capture)
    events = decode_all(frames)[1]
    checked = 0
    for frame, ev in zip(frames, events, strict=True):
        data = orjson.loads(frame)["data"]
        if isinstance(ev, KlineEvent):
            k = data["k"]
            pairs = [(ev.kline.open, k["o"]), (ev.kline.high, k["h"]), (ev.kline.low, k["l"])]
            pairs += [(ev.kline.close, k["c"]), (ev.kline.volume, k["v"]), (ev.kline.quote_volume, k["q"])]
            pairs += [(ev.kline.taker_buy_base, k["V"]), (ev.kline.taker_buy_quote, k["Q"])]
            assert (ev.kline.open_time, ev.kline.closed, ev.kline.trades) == (k["t"], k["x"], k["n"])
        elif isinstance(ev, AggTradeEvent):
            pairs = [(ev.price, data["p"]), (ev.qty, data["q"])]
            assert (ev.agg_id, ev.trade_time, ev.buyer_is_maker) == (data["a"], data["T"], data["m"])
        elif isinstance(ev, BookTickerEvent):
            pairs = [(ev.bid_price, data["b"]), (ev.bid_qty, data["B"]), (ev.ask_price, data["a"])]
            pairs += [(ev.ask_qty, data["A"])]
            assert ev.update_id == data["u"] and ev.event_time == data.get("E", 0)
        else:
            continue
        for value, wire in pairs:
            assert type(value) is float and value == float(wire), (value, wire)
            checked += 1
    assert checked == decimals


def test_fast_constructed_events_equal_constructor_built_ones() -> None:
    """The decoder skips the dataclass __init__ for speed: the objects must be indistinguishable."""
    events = decode_all(capture_frames("BINANCE_FUTURES.ws.1.0"))[1]
    seen = set()
    for ev in events:
        if isinstance(ev, UnknownEvent) or type(ev) in seen:
            continue
        seen.add(type(ev))
        if isinstance(ev, KlineEvent):
            rebuilt: Any = KlineEvent(ev.event_time, Kline(*dataclasses.astuple(ev.kline)), ev.stream)
        else:
            rebuilt = type(ev)(*dataclasses.astuple(ev))
        assert ev == rebuilt and hash(ev) == hash(rebuilt) and repr(ev) == repr(rebuilt)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(ev, "stream", "x")  # noqa: B010 (the assignment itself is under test)
    assert seen == {KlineEvent, BookTickerEvent, AggTradeEvent}


# ---------------------------------------------------------------- synthetic, documented shapes

TRADE = {"e": "trade", "E": 1672515782136, "s": "BNBBTC", "t": 12345, "p": "0.00100000", "q": "100.00000000",
         "T": 1672515782136, "m": True, "M": True}  # fmt: skip
MINI = {"e": "24hrMiniTicker", "E": 1672515782136, "s": "BNBBTC", "c": "0.0025", "o": "0.0010", "h": "0.0025",
        "l": "0.0010", "v": "10000", "q": "18"}  # fmt: skip


def lrcbtc_kline() -> dict[str, Any]:
    frames = capture_frames("BINANCE.ws.1.0")
    data: dict[str, Any] = orjson.loads(next(f for f in frames if '"lrcbtc@kline_1m"' in f))["data"]
    return data


def feed_one(frame: object) -> Any:
    dec = Decoder()
    events = dec.feed(orjson.dumps(frame) if not isinstance(frame, str | bytes) else frame)
    assert dec.stats.malformed == 0, dec.stats.last_error
    assert len(events) == 1
    return events[0]


def test_raw_frames_get_derived_stream_names() -> None:
    kl = feed_one(lrcbtc_kline())
    assert isinstance(kl, KlineEvent) and kl.stream == "lrcbtc@kline_1m" and kl.kline.open == 0.00000638
    assert feed_one(TRADE) == TradeEvent(
        1672515782136, "BNBBTC", 12345, 0.001, 100.0, 1672515782136, True, "bnbbtc@trade"
    )
    spot_book = {"u": 400900217, "s": "BNBUSDT", "b": "25.35190000", "B": "31.21000000", "a": "25.36520000",
                 "A": "40.66000000"}  # fmt: skip
    assert feed_one(spot_book).stream == "bnbusdt@bookTicker"
    single = feed_one(MINI)
    assert isinstance(single, MiniTickerEvent) and single.stream == "bnbbtc@miniTicker"
    assert single.tickers[0].close == 0.0025 and single.tickers[0].change_pct == pytest.approx(150.0)


def test_mini_ticker_arrays_raw_and_combined() -> None:
    other = dict(MINI, s="ETHBTC", c="0.05")
    raw = feed_one([MINI, other])
    assert isinstance(raw, MiniTickerEvent) and raw.stream == "!miniTicker@arr"
    assert [t.symbol for t in raw.tickers] == ["BNBBTC", "ETHBTC"] and raw.tickers[1].volume == 10000.0
    combined = feed_one({"stream": "!miniTicker@arr", "data": [MINI, other]})
    assert combined == raw
    assert feed_one("[]") == MiniTickerEvent((), "!miniTicker@arr")


def test_control_replies_errors_and_shutdown() -> None:
    assert feed_one('{"result":null,"id":1}') == ControlReply(1, None)
    assert feed_one('{"result":["btcusdt@trade"],"id":"a"}') == ControlReply("a", ["btcusdt@trade"])
    err = '{"error":{"code":2,"msg":"Invalid request: unknown variant `SUBSCRIBEE`"},"id":7}'
    assert feed_one(err) == ErrorReply(7, 2, "Invalid request: unknown variant `SUBSCRIBEE`")
    assert feed_one('{"code":0,"msg":"Unknown property","id":5}') == ErrorReply(5, 0, "Unknown property")
    assert feed_one('{"code":-1121,"msg":"Invalid symbol."}') == ErrorReply(None, -1121, "Invalid symbol.")
    assert feed_one('{"e":"serverShutdown","E":1747000000000}') == ServerShutdown(1747000000000)


def test_unmodelled_events_are_unknown_counted_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    dec = Decoder()
    depth = {"e": "depthUpdate", "E": 1, "s": "BNBBTC", "U": 1, "u": 2, "b": [], "a": []}
    partial = {"lastUpdateId": 160, "bids": [["0.0024", "10"]], "asks": []}
    mark = {"e": "markPriceUpdate", "E": 1, "s": "BTCUSDT", "p": "1"}
    with caplog.at_level(logging.INFO, logger="binmon.binance.codec"):
        out: list[Any] = [
            *dec.feed(orjson.dumps(depth)),
            *dec.feed(orjson.dumps(depth)),
            *dec.feed(orjson.dumps({"stream": "bnbbtc@depth5@100ms", "data": partial})),
            *dec.feed(orjson.dumps(partial)),
            *dec.feed(orjson.dumps({"stream": "!markPrice@arr", "data": [mark]})),
            *dec.feed(orjson.dumps([mark])),
        ]
    assert [(ev.stream, ev.event_type) for ev in out] == [
        ("", "depthUpdate"),
        ("", "depthUpdate"),
        ("bnbbtc@depth5@100ms", "depth5"),
        ("", "depth"),
        ("!markPrice@arr", "markPrice"),
        ("", "markPriceUpdate"),
    ]
    assert out[0].data == depth
    assert (dec.stats.unknown, dec.stats.events, dec.stats.malformed) == (6, 6, 0)
    logged = [r.getMessage() for r in caplog.records if "unmodelled" in r.getMessage()]
    assert len(logged) == 5  # depthUpdate only once


# ---------------------------------------------------------------- garbage


def kline_with(path: tuple[str, ...], value: object) -> bytes:
    """The real LRCBTC kline frame with one field replaced (or deleted, for ``KeyError``)."""
    data = lrcbtc_kline()
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    # stdlib json: orjson refuses to write the 10**30 the decoder must refuse to read.
    return json.dumps({"stream": "lrcbtc@kline_1m", "data": data}).encode()


GARBAGE: list[object] = [
    b"", "", " ", "{", "}", "[", "null", "true", "1", "1e400", '"x"', "[1,2]", "[null]", "{}", '{"e":5}',
    '{"a":1}', '{"e":"kline"}', '{"stream":"x"}', '{"stream":5,"data":{}}', '{"stream":"x","data":"y"}',
    '{"stream":"x","data":[1]}', '{"result":1,"id":[1]}', '{"error":{"code":"2","msg":"m"},"id":1}',
    '{"error":"bad","id":1}', '{"code":1,"msg":2}', '{"e":"serverShutdown","E":"soon"}',
    '{"e":"trade","s":"X"}', "[" * 5000 + "]" * 5000, "\ud800", b"\xff\xfe\x00garbage", b"\x00" * 64,
    bytes(range(256)), None, 123, 4.5, object(),
]  # fmt: skip


@pytest.mark.parametrize("frame", GARBAGE, ids=lambda f: repr(f)[:30])
def test_garbage_is_counted_never_raised(frame: Any) -> None:
    dec = Decoder()
    assert dec.feed(frame) == []
    assert (dec.stats.frames, dec.stats.malformed, dec.stats.events) == (1, 1, 0)
    assert dec.stats.last_error


BAD_FIELDS: list[tuple[tuple[str, ...], object]] = [
    (("k", "t"), "1633998480000"), (("k", "t"), 1.5), (("k", "t"), True), (("k", "t"), 10**30),
    (("k", "x"), "false"), (("k", "x"), 0), (("k", "i"), "7m"), (("k", "i"), ["1m"]), (("s",), 5),
    (("E",), None), (("k", "o"), 0.5), (("k", "o"), None), (("k", "o"), "abc"), (("k", "o"), "NaN"),
    (("k", "o"), "Infinity"), (("k", "o"), "1e400"), (("k", "o"), "9" * 400), (("k", "o"), "1,2"),
    (("k", "o"), ""), (("k", "o"), "[1"), (("k", "h"), "2],5"), (("k", "o"), '"1"'), (("k", "o"), "true"),
    (("k", "o"), KeyError), (("k",), KeyError), (("k",), []), (("k",), "k"), (("s",), KeyError),
]  # fmt: skip


@pytest.mark.parametrize(("path", "value"), BAD_FIELDS, ids=lambda v: repr(v)[:24])
def test_kline_with_a_bad_field_is_malformed(path: tuple[str, ...], value: object) -> None:
    dec = Decoder()
    assert dec.feed(kline_with(path, value)) == []
    assert dec.stats.malformed == 1, f"accepted {path}={value!r}"
    assert dec.feed(kline_with(("k", "o"), "0.00000638"))  # the same frame, repaired, decodes


AGG = {"e": "aggTrade", "E": 1, "s": "LRCBTC", "a": 9, "p": "0.00000638", "q": "177", "f": 1, "l": 2, "T": 3,
       "m": False}  # fmt: skip
BOOK = {"u": 1, "s": "NKNUSDT", "b": "0.35210000", "B": "672", "a": "0.3526", "A": "3199"}
OTHER_BAD: list[tuple[dict[str, Any], str, object]] = [
    (TRADE, "m", "true"), (TRADE, "t", "12345"), (TRADE, "p", 0.001), (TRADE, "q", "1e999"),
    (TRADE, "T", None),
    (AGG, "a", 9.0), (AGG, "l", False), (AGG, "p", "-"), (AGG, "s", None), (AGG, "E", KeyError),
    (BOOK, "u", "1"), (BOOK, "E", "1"), (BOOK, "b", None), (BOOK, "A", KeyError), (BOOK, "s", ["X"]),
    (MINI, "E", 1.0), (MINI, "c", "0x10"), (MINI, "q", {}), (MINI, "s", KeyError),
]  # fmt: skip


@pytest.mark.parametrize(("template", "key", "value"), OTHER_BAD, ids=lambda v: repr(v)[:16])
def test_other_events_with_a_bad_field_are_malformed(
    template: dict[str, Any], key: str, value: object
) -> None:
    frame = dict(template)
    assert len(Decoder().feed(orjson.dumps(frame))) == 1  # the template itself is fine
    if value is KeyError:
        del frame[key]
    else:
        frame[key] = value
    for wire in (frame, [frame]) if template is MINI else (frame,):
        dec = Decoder()
        assert dec.feed(json.dumps(wire)) == [], f"accepted {key}={value!r}"
        assert dec.stats.malformed == 1


def test_decimals_cannot_smuggle_json_across_fields() -> None:
    """o="[1", h="2],5" would join into a valid 8-element array whose first element is a list."""
    data = lrcbtc_kline()
    data["k"].update(o="[1", h="2],5")
    dec = Decoder()
    assert dec.feed(orjson.dumps(data)) == []
    assert dec.stats.malformed == 1


def test_every_truncation_of_a_real_frame_is_malformed() -> None:
    frame = next(f for f in capture_frames("BINANCE.ws.1.0") if '"lrcbtc@kline_1m"' in f)
    dec = Decoder()
    for end in range(len(frame)):
        assert dec.feed(frame[:end]) == []
    assert dec.stats.malformed == len(frame)
    assert len(dec.feed(frame.encode())) == 1  # bytes work too


def test_malformed_logging_is_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.codec.ratelimit")
    dec = Decoder(logger=log)
    with caplog.at_level(logging.WARNING, logger=log.name):
        for i in range(2500):
            dec.feed(f"not json {i}")
    warnings = [r for r in caplog.records if r.name == log.name]
    assert len(warnings) == 12  # the first 10, the 1000th and the 2000th
    assert "#1000" in warnings[10].getMessage() and "not json 999" in warnings[10].getMessage()
    assert dec.stats.malformed == 2500 and "not JSON" in dec.stats.last_error
    assert all(r.levelno == logging.WARNING for r in warnings)


def test_a_decoder_bug_is_counted_and_logged_as_error(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The last-resort handler: a bug in a per-event decoder must not kill the stream."""

    def broken(d: dict[str, Any], stream: str) -> Any:
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(codec, "decode_kline", broken)
    dec = Decoder()
    with caplog.at_level(logging.WARNING, logger="binmon.binance.codec"):
        assert dec.feed(orjson.dumps({"stream": "lrcbtc@kline_1m", "data": lrcbtc_kline()})) == []
    assert dec.stats.malformed == 1 and "ZeroDivisionError" in dec.stats.last_error
    assert [r.levelno for r in caplog.records] == [logging.ERROR, logging.WARNING]


def test_fast_constructor_refuses_classes_it_would_break() -> None:
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            raise AssertionError("never skipped")

    for cls in (NoSlots, Checked, int):
        with pytest.raises(TypeError):
            fast_constructor(cls)
    fields = dataclasses.astuple(feed_one(lrcbtc_kline()).kline)
    made = fast_constructor(Kline)(*fields)
    assert type(made) is Kline and made == Kline(*fields) and made.open == 0.00000638
