"""Property tests of the codec: feed() never raises, and every conversion is exact."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from binmon.binance.codec import (
    Decoder,
    decode_kline_row,
    kline_stream,
    kline_to_row,
    parse_stream_name,
)
from binmon.core.intervals import INTERVALS
from binmon.core.models import (
    AggTradeEvent,
    BookTickerEvent,
    ControlReply,
    ErrorReply,
    KlineEvent,
    MiniTickerEvent,
    ServerShutdown,
    TradeEvent,
    UnknownEvent,
)

# A real LRCBTC frame from stream.binance.com (fixtures/real/cryptofeed/BINANCE.ws.1.0),
# inlined so hypothesis can mutate it without file access per example.
KLINE = {"e": "kline", "E": 1633998534486, "s": "LRCBTC", "k": {"t": 1633998480000, "T": 1633998539999,
         "s": "LRCBTC", "i": "1m", "f": 12368013, "L": 12368013, "o": "0.00000638", "c": "0.00000638",
         "h": "0.00000638", "l": "0.00000638", "v": "177.00000000", "n": 1, "x": False, "q": "0.00112926",
         "V": "177.00000000", "Q": "0.00112926", "B": "0"}}  # fmt: skip
TRADE = {"e": "trade", "E": 1, "s": "BNBBTC", "t": 2, "p": "0.001", "q": "100", "T": 3, "m": True, "M": True}
BOOK = {"u": 400900217, "s": "BNBUSDT", "b": "25.35190000", "B": "31.21", "a": "25.3652", "A": "40.66"}
MINI = {"e": "24hrMiniTicker", "E": 1, "s": "BNBBTC", "c": "0.0025", "o": "0.0010", "h": "0.0025",
        "l": "0.001", "v": "10000", "q": "18"}  # fmt: skip
TEMPLATES = [KLINE, TRADE, BOOK, MINI, {"result": None, "id": 1}, {"error": {"code": 2, "msg": "x"}, "id": 1}]

EVENT_TYPES = (KlineEvent, TradeEvent, AggTradeEvent, BookTickerEvent, MiniTickerEvent, ControlReply,
               ErrorReply, ServerShutdown, UnknownEvent)  # fmt: skip

FUZZ = settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=5)
    ),
    max_leaves=30,
)
decimal_strings = st.decimals(
    min_value=0, max_value=10**12, places=8, allow_nan=False, allow_infinity=False
).map(lambda d: f"{d:f}")


def check_invariants(dec: Decoder, events: list[Any]) -> None:
    s = dec.stats
    assert s.frames == s.events + s.malformed
    assert len(events) == s.events
    assert all(isinstance(ev, EVENT_TYPES) for ev in events)


def assert_well_typed(ev: Any) -> None:
    """A decoded market event carries only ints, floats, bools and strs of the right kind."""
    if isinstance(ev, KlineEvent):
        k = ev.kline
        assert all(type(v) is float and math.isfinite(v) for v in (k.open, k.high, k.low, k.close, k.volume))
        assert all(type(v) is int for v in (k.open_time, k.close_time, k.trades, ev.event_time))
        assert type(k.closed) is bool and k.interval in INTERVALS and type(k.symbol) is str
    elif isinstance(ev, TradeEvent | AggTradeEvent):
        assert type(ev.price) is float and type(ev.qty) is float and type(ev.buyer_is_maker) is bool
    elif isinstance(ev, BookTickerEvent):
        assert all(type(v) is float for v in (ev.bid_price, ev.bid_qty, ev.ask_price, ev.ask_qty))


@FUZZ
@given(st.text())
def test_arbitrary_text_never_raises(text: str) -> None:
    dec = Decoder()
    check_invariants(dec, dec.feed(text))


@FUZZ
@given(st.binary())
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    dec = Decoder()
    check_invariants(dec, dec.feed(data))


@FUZZ
@given(json_values, st.sampled_from(["", "btcusdt@kline_1m", "!miniTicker@arr", "x"]))
def test_arbitrary_json_never_raises(value: Any, stream: str) -> None:
    dec = Decoder()
    frames: list[str | bytes] = [orjson.dumps(value), json.dumps({"stream": stream, "data": value})]
    events = [ev for frame in frames for ev in dec.feed(frame)]
    check_invariants(dec, events)
    for ev in events:
        assert_well_typed(ev)


@FUZZ
@given(st.sampled_from(TEMPLATES), st.data())
def test_real_shapes_with_one_field_replaced_never_raise(
    template: dict[str, Any], data: st.DataObject
) -> None:
    frame = json.loads(json.dumps(template))
    target = frame["k"] if "k" in frame and data.draw(st.booleans()) else frame
    key = data.draw(st.sampled_from(sorted(target)))
    target[key] = data.draw(json_values)
    dec = Decoder()
    events = dec.feed(json.dumps(frame))
    check_invariants(dec, events)
    for ev in events:
        assert_well_typed(ev)


@FUZZ
@given(st.lists(decimal_strings, min_size=8, max_size=8), st.booleans())
def test_decimals_decode_exactly_like_float(values: list[str], combined: bool) -> None:
    """The orjson batch parse must round every decimal string exactly as float() does."""
    frame = json.loads(json.dumps(KLINE))
    for key, value in zip("ohlcvqVQ", values, strict=True):
        frame["k"][key] = value
    if combined:
        frame = {"stream": "lrcbtc@kline_1m", "data": frame}
    (ev,) = Decoder().feed(json.dumps(frame))
    assert isinstance(ev, KlineEvent)
    k = ev.kline
    got = [k.open, k.high, k.low, k.close, k.volume, k.quote_volume, k.taker_buy_base, k.taker_buy_quote]
    assert got == [float(v) for v in values]
    assert all(type(v) is float for v in got)


@FUZZ
@given(
    st.integers(min_value=0, max_value=4 * 10**12),
    st.lists(st.decimals(min_value=0, max_value=10**6, places=8), min_size=8, max_size=8),
    st.integers(min_value=0, max_value=10**9),
)
def test_kline_rows_round_trip(open_time: int, decimals: list[Decimal], trades: int) -> None:
    """Rows with Binance's 8 decimals (values up to 1e6, 14 digits) survive decode + encode unchanged."""
    d = [f"{x:.8f}" for x in decimals]
    row: list[object] = [
        open_time,
        d[0],
        d[1],
        d[2],
        d[3],
        d[4],
        open_time + 59_999,
        d[5],
        trades,
        d[6],
        d[7],
        "0",
    ]
    assert kline_to_row(decode_kline_row("BTCUSDT", "1m", row)) == row


@FUZZ
@given(
    st.text(alphabet=st.characters(categories=["Lu", "Ll", "Nd", "Lo"]), min_size=1, max_size=20),
    st.sampled_from(INTERVALS),
)
def test_stream_names_round_trip(symbol: str, interval: str) -> None:
    name = kline_stream(symbol, interval)
    ascii_upper = "".join(c.upper() if c.isascii() else c for c in symbol)
    assert parse_stream_name(name) == (ascii_upper, "kline", interval)


@FUZZ
@given(st.text(max_size=40))
def test_parse_stream_name_raises_only_value_error(text: str) -> None:
    try:
        symbol, kind, interval = parse_stream_name(text)
    except ValueError:
        return
    # All-market streams start with "!" and may lack "@" (the retired "!bookTicker");
    # every per-symbol stream has "<symbol>@<kind>".
    if kind.startswith("!"):
        assert symbol == "" and interval is None and text == kind
    else:
        assert "@" in text and symbol and (interval is None or interval in INTERVALS)
