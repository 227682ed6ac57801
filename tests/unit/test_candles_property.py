"""CandleSeries under any interleaving of duplicated, delayed and reordered klines (hypothesis).

A history is generated as a sorted series with random holes; every candle gets forming (open)
versions with growing trade counts before its final closed one, sometimes a REST copy without
trade ids, and the newest candle may still be forming. All versions, plus duplicates, arrive in
a random order, split into live ``apply`` calls and ``merge`` batches. Whatever the order:

* the series ends as the newest version of each candle, sorted (the last ``max_bars`` of them);
* replaying the emitted operations on a plain list, as the chart does, gives the same bars;
* gaps are reported exactly where open times are missing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from binmon.core import intervals
from binmon.core.candles import Append, CandleSeries, ChartOp, Gap, Reload, Replace
from binmon.core.models import Kline

_START = int(datetime(2017, 1, 1, tzinfo=UTC).timestamp() * 1000)
_END = int(datetime(2030, 1, 1, tzinfo=UTC).timestamp() * 1000)


@dataclass
class History:
    interval: str
    expected: list[Kline]  # the newest version of each candle, sorted: built, not computed
    versions: list[Kline]  # every version of every candle, oldest candle and version first


@st.composite
def histories(draw: st.DrawFn) -> History:
    interval = draw(st.sampled_from(["1s", "1m", "1h", "1d", "1w", "1M"]))
    n = draw(st.integers(min_value=1, max_value=25))
    t = intervals.open_time(interval, draw(st.integers(min_value=_START, max_value=_END)))
    trade_id = draw(st.integers(min_value=0, max_value=10**9))
    expected: list[Kline] = []
    versions: list[Kline] = []
    for i in range(n):
        if i:
            for _ in range(1 + draw(st.integers(min_value=0, max_value=3))):  # 0..3 missing candles
                t = intervals.next_open(interval, t)
        still_forming = i == n - 1 and draw(st.booleans())
        count = draw(st.integers(min_value=1, max_value=4))
        price = draw(st.integers(min_value=1, max_value=10**6)) / 1e8
        first = trade_id + 1
        for j in range(count):
            trades = 1 + j * 2
            bar = Kline(
                symbol="ETHBTC",
                interval=interval,
                open_time=t,
                close_time=intervals.close_time(interval, t),
                open=price,
                high=price * (1 + j / 100),
                low=price,
                close=price * (1 + j / 200),
                volume=trades * 0.5,
                quote_volume=trades * 0.5 * price,
                trades=trades,
                taker_buy_base=trades * 0.25,
                taker_buy_quote=trades * 0.25 * price,
                closed=j == count - 1 and not still_forming,
                first_trade_id=first,
                last_trade_id=first + trades - 1,
            )
            versions.append(bar)
        trade_id = versions[-1].last_trade_id
        expected.append(versions[-1])
        if not still_forming and draw(st.booleans()):
            # The same closed candle from REST: no trade ids, so the stream's copy must win.
            versions.append(replace(versions[-1], first_trade_id=-1, last_trade_id=-1))
    return History(interval, expected, versions)


@st.composite
def deliveries(draw: st.DrawFn, versions: list[Kline]) -> list[tuple[bool, list[Kline]]]:
    """The versions plus duplicates in any order, cut into (is_merge_batch, klines) chunks."""
    dups = draw(st.lists(st.sampled_from(versions), max_size=len(versions)))
    arrivals = draw(st.permutations(versions + dups))
    cuts = sorted(set(draw(st.lists(st.integers(0, len(arrivals)), max_size=8))) | {0, len(arrivals)})
    return [(draw(st.booleans()), arrivals[a:b]) for a, b in pairwise(cuts) if b > a]


class ChartModel:
    """What the chart does with the operations: update() the tail or setData() everything."""

    def __init__(self, interval: str, max_bars: int | None) -> None:
        self.interval = interval
        self.max_bars = max_bars
        self.bars: list[Kline] = []

    def play(self, ops: list[ChartOp]) -> None:
        for i, op in enumerate(ops):
            if isinstance(op, Append):
                assert not self.bars or op.bar.open_time > self.bars[-1].open_time
                self.bars.append(op.bar)
            elif isinstance(op, Replace):
                assert self.bars and self.bars[-1].open_time == op.bar.open_time
                self.bars[-1] = op.bar
            elif isinstance(op, Reload):
                self.bars = list(op.bars)
            else:
                assert isinstance(op, Gap)
                # A gap comes right before the Append that jumps over it, after the old last bar.
                nxt = ops[i + 1]
                assert isinstance(nxt, Append)
                assert op.start == intervals.next_open(self.interval, self.bars[-1].open_time)
                assert op.start <= op.end < nxt.bar.open_time
                assert intervals.next_open(self.interval, op.end) == nxt.bar.open_time
        if self.max_bars is not None:
            del self.bars[: max(0, len(self.bars) - self.max_bars)]


def _check_gaps(s: CandleSeries) -> None:
    times = [b.open_time for b in s.bars]
    if not times:
        assert s.gaps() == []
        return
    missing = [t for g in s.gaps() for t in intervals.open_times(s.interval, g.start, g.end)]
    every = intervals.open_times(s.interval, times[0], times[-1])
    assert sorted(missing + times) == every
    assert not set(missing) & set(times)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), history=histories(), max_bars=st.none() | st.integers(min_value=1, max_value=30))
def test_any_interleaving_converges_and_ops_rebuild_the_bars(
    data: st.DataObject, history: History, max_bars: int | None
) -> None:
    chunks = data.draw(deliveries(history.versions))
    s = CandleSeries("ETHBTC", history.interval, max_bars)
    chart = ChartModel(history.interval, max_bars)
    for is_batch, klines in chunks:
        if is_batch:
            chart.play(s.merge(klines))
        else:
            for bar in klines:
                chart.play(s.apply(bar))
        assert chart.bars == list(s.bars)
        assert len(s) == len(s.bars) <= (max_bars or len(s.bars))
    expected = history.expected if max_bars is None else history.expected[-max_bars:]
    assert list(s.bars) == expected
    assert s.last == expected[-1]
    closed = [b.open_time for b in expected if b.closed]
    assert s.last_closed_open_time == (closed[-1] if closed else None)
    _check_gaps(s)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), history=histories())
def test_one_batch_equals_one_by_one(data: st.DataObject, history: History) -> None:
    arrivals = data.draw(st.permutations(history.versions))
    batch = CandleSeries("ETHBTC", history.interval)
    assert batch.merge(arrivals) == [Reload(tuple(history.expected))]
    live = CandleSeries("ETHBTC", history.interval)
    for bar in arrivals:
        live.apply(bar)
    assert live.bars == batch.bars
    assert batch.merge(arrivals) == []  # a repeated page changes nothing


@settings(max_examples=100, deadline=None)
@given(history=histories())
def test_in_order_live_feed_never_reloads(history: History) -> None:
    # Versions in time order is what a healthy stream delivers: only tail operations.
    s = CandleSeries("ETHBTC", history.interval)
    chart = ChartModel(history.interval, None)
    for bar in history.versions:
        ops = s.apply(bar)
        assert not any(isinstance(op, Reload) for op in ops)
        chart.play(ops)
    assert chart.bars == list(s.bars) == history.expected
    _check_gaps(s)
