"""The per-stream ordering filter behind the stream client's "each closed candle once, in order"."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from binmon.binance.sequencer import StreamSequencer
from binmon.core.intervals import MINUTE_MS, next_open
from binmon.core.models import Kline, KlineEvent, StreamEvent, TradeEvent

STREAM = "btcusdt@kline_1m"
T0 = 1_700_000_040_000  # a minute boundary


def kl(i: int, closed: bool = True, close: float = 100.0, interval: str = "1m", t0: int = T0) -> Kline:
    t = t0 + i * MINUTE_MS if interval == "1m" else t0
    return Kline("BTCUSDT", interval, t, t + MINUTE_MS - 1, 1, 2, 0.5, close, 1, 1, 1, 0, 0, closed)


def ev(i: int, closed: bool = True, close: float = 100.0) -> KlineEvent:
    return KlineEvent(T0 + i * MINUTE_MS, kl(i, closed, close), STREAM)


class Harness:
    def __init__(self) -> None:
        self.out: list[StreamEvent] = []
        self.gaps: list[str] = []
        self.repair = True  # what on_gap answers
        self.seq = StreamSequencer(self.out.append, self.on_gap, lambda: T0 + 10**9)

    def on_gap(self, stream: str) -> bool:
        self.gaps.append(stream)
        return self.repair

    def closed(self) -> list[int]:
        return [
            (e.kline.open_time - T0) // MINUTE_MS
            for e in self.out
            if isinstance(e, KlineEvent) and e.kline.closed
        ]


def test_closed_duplicates_and_late_forming_updates_are_dropped() -> None:
    h = Harness()
    for e in [ev(0, False), ev(0), ev(0), ev(0, False), ev(1, False), ev(1, False, 101), ev(1), ev(1)]:
        h.seq.push(e)
    assert h.closed() == [0, 1]
    assert [(e.kline.closed, e.kline.close) for e in h.out if isinstance(e, KlineEvent)] == [
        (False, 100.0),
        (True, 100.0),
        (False, 100.0),
        (False, 101.0),
        (True, 100.0),
    ]
    assert h.seq.stats.duplicates == 2
    assert h.seq.stats.stale == 1
    assert not h.gaps


def test_the_final_value_of_the_previous_candle_passes_after_the_next_one_started() -> None:
    # Reordered: the first update of candle 1 overtook the close of candle 0.
    h = Harness()
    for e in [ev(0, False), ev(1, False), ev(0), ev(0, False)]:
        h.seq.push(e)
    assert h.closed() == [0]
    assert [e.kline.open_time for e in h.out if isinstance(e, KlineEvent)] == [T0, T0 + MINUTE_MS, T0]


def test_a_missed_close_is_fetched_when_the_next_candle_starts() -> None:
    # Candle 1's final update is lost: the first update of candle 2 shows it, not candle 2's close.
    h = Harness()
    for e in [ev(0, False), ev(0), ev(1, False), ev(2, False, 102)]:
        h.seq.push(e)
    assert h.gaps == [STREAM] and h.seq.is_held(STREAM) and h.seq.stats.missed_closes == 1
    assert h.seq.backfill_start(STREAM) == T0  # from the last closed candle
    h.seq.release(STREAM, [kl(0), kl(1, close=101), kl(2, False, 102)])
    h.seq.repair_done(STREAM)
    assert h.closed() == [0, 1]
    h.seq.push(ev(1, close=101))  # the close was only late after all: dropped
    h.seq.push(ev(2))
    assert h.closed() == [0, 1, 2] and h.seq.stats.duplicates == 2  # the overlap kl(0) and the late close
    assert not h.seq.is_held(STREAM)


def test_a_missed_close_the_owner_declines_to_repair_passes() -> None:
    h = Harness()
    h.repair = False
    for e in [ev(0), ev(1, False), ev(2, False)]:
        h.seq.push(e)
    assert h.gaps == [STREAM] and not h.seq.is_held(STREAM)
    assert [e.kline.open_time for e in h.out if isinstance(e, KlineEvent)][-1] == T0 + 2 * MINUTE_MS


def test_a_live_gap_holds_the_stream_until_released_with_the_backfill() -> None:
    h = Harness()
    h.seq.push(ev(0))
    h.seq.push(ev(2))  # candle 1 missing
    assert h.gaps == [STREAM]
    assert h.seq.is_held(STREAM)
    assert h.seq.backfill_start(STREAM) == T0
    h.seq.push(ev(3, False))  # buffered
    h.seq.push(ev(1))  # the late one, buffered too
    assert h.closed() == [0]
    filled = h.seq.release(STREAM, [kl(0), kl(1), kl(2), kl(3, False)])
    assert filled == 1  # candle 1 was missing; 0 is a repeat, 2 the live feed had
    assert h.closed() == [0, 1, 2]
    assert not h.seq.is_held(STREAM)
    assert h.seq.holes(STREAM) == []
    # A repair in progress does not start another one on the next gap.
    h.seq.push(ev(5))
    assert h.gaps == [STREAM]
    assert h.seq.holes(STREAM) == [(T0 + 2 * MINUTE_MS, T0 + 5 * MINUTE_MS)]


def test_failed_backfill_release_remembers_the_hole_and_late_fill_fills_it_once() -> None:
    h = Harness()
    h.seq.push(ev(0))
    assert h.seq.hold(STREAM) == T0
    h.seq.push(ev(4, False))
    h.seq.push(ev(4))
    h.seq.release(STREAM, None, force=True)  # backfill failed: live data flows, with a hole
    assert h.closed() == [0, 4]
    assert h.seq.holes(STREAM) == [(T0, T0 + 4 * MINUTE_MS)]
    # A short backfill (the source lags) fills what it has and keeps the rest of the hole.
    assert h.seq.late_fill(STREAM, [kl(0), kl(1), kl(2, False)]) == 1
    assert h.seq.holes(STREAM) == [(T0 + MINUTE_MS, T0 + 4 * MINUTE_MS)]
    assert h.seq.late_fill(STREAM, [kl(0), kl(1), kl(2), kl(3), kl(4), kl(5, False)]) == 3
    assert h.closed() == [0, 4, 1, 2, 3]
    assert h.seq.holes(STREAM) == []
    assert h.seq.late_fill(STREAM, [kl(1), kl(2)]) == 0  # never twice


def test_late_fill_before_any_new_close_passes_in_order() -> None:
    h = Harness()
    h.seq.push(ev(0))
    h.seq.hold(STREAM)
    h.seq.push(ev(3, False))
    h.seq.release(STREAM, None, force=True)
    assert h.seq.holes(STREAM) == []  # nothing closed since: the hole is not visible yet
    h.seq.late_fill(STREAM, [kl(0), kl(1), kl(2), kl(3, False)])
    assert h.closed() == [0, 1, 2]
    h.seq.push(ev(3))
    assert h.closed() == [0, 1, 2, 3]


def test_a_gap_inside_the_buffer_beyond_the_backfill_keeps_the_rest_held() -> None:
    h = Harness()
    h.seq.push(ev(0))
    h.seq.hold(STREAM)
    for e in [ev(1), ev(2, False), ev(4), ev(5, False)]:  # 3 lost while held
        h.seq.push(e)
    # The backfill was taken before candle 2 closed: it cannot vouch for the 2..4 gap.
    assert h.seq.release(STREAM, [kl(0), kl(1), kl(2, False)]) == 0
    assert h.closed() == [0, 1]
    assert h.seq.is_held(STREAM) and h.seq.backfill_start(STREAM) == T0 + MINUTE_MS
    assert h.seq.release(STREAM, [kl(1), kl(2), kl(3), kl(4), kl(5, False)]) == 2
    assert h.closed() == [0, 1, 2, 3, 4]
    assert not h.seq.is_held(STREAM) and h.seq.holes(STREAM) == []


def test_a_gap_the_backfill_vouches_for_is_genuine() -> None:
    # Minutes without trades have no candle: the backfill (authoritative) lacks them too.
    h = Harness()
    h.seq.push(ev(0))
    h.seq.push(ev(3))  # gap 1..2
    assert h.gaps == [STREAM]
    assert h.seq.release(STREAM, [kl(0), kl(3), kl(4, False)]) == 0  # nothing was missing
    assert h.closed() == [0, 3]
    assert h.seq.holes(STREAM) == [] and not h.seq.is_held(STREAM)


def test_the_newest_backfilled_row_is_never_taken_as_final() -> None:
    # REST's "closed" for the newest row is a clock estimate: a half-built 1s candle read a
    # moment before its close must not become final; the live close (or a repair) gives it.
    h = Harness()
    h.seq.push(ev(0))
    h.seq.hold(STREAM)
    h.seq.release(STREAM, [kl(0), kl(1), kl(2, True, close=1.0)])
    assert h.closed() == [0, 1]
    assert isinstance(h.out[-1], KlineEvent) and not h.out[-1].kline.closed and h.out[-1].kline.close == 1.0
    h.seq.push(ev(2, True, close=2.0))
    last = h.out[-1]
    assert h.closed() == [0, 1, 2] and isinstance(last, KlineEvent) and last.kline.close == 2.0


def test_hold_needs_a_reference_and_forget_starts_afresh() -> None:
    h = Harness()
    assert h.seq.hold(STREAM) is None  # never seen
    h.seq.push(ev(0, False))
    assert h.seq.hold(STREAM) == T0  # forming only: backfill from its open
    assert h.seq.hold(STREAM) is None  # already under repair
    h.seq.repair_done(STREAM, release=False)
    assert not h.seq.is_held(STREAM)
    h.seq.forget(STREAM)
    h.seq.push(ev(0))
    h.seq.push(ev(9))  # the fresh state detects the gap after 0 again
    assert h.gaps == [STREAM]


def test_monthly_gaps_use_calendar_months() -> None:
    jan = 1_704_067_200_000  # 2024-01-01
    feb = next_open("1M", jan)
    mar = next_open("1M", feb)

    def m(t: int) -> KlineEvent:
        return KlineEvent(
            t, Kline("BTCUSDT", "1M", t, next_open("1M", t) - 1, 1, 1, 1, 1, 1, 1, 1, 0, 0), "x"
        )

    h = Harness()
    h.seq.push(m(jan))
    h.seq.push(m(feb))
    assert not h.gaps  # 31 days later is the next month, not a gap
    h.seq.push(m(next_open("1M", mar)))
    assert h.gaps == ["x"]


def test_trades_are_deduplicated_by_id_per_stream() -> None:
    h = Harness()
    trades = [TradeEvent(1, "BTCUSDT", i, 1.0, 1.0, 1, False, "btcusdt@trade") for i in (1, 2, 2, 1, 3)]
    for t in trades:
        h.seq.push(t)
    assert [e.trade_id for e in h.out if isinstance(e, TradeEvent)] == [1, 2, 3]


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(2, 40),
    updates=st.integers(0, 3),
    faults=st.lists(st.tuples(st.sampled_from(["dup", "swap", "drop"]), st.integers(0, 10**6)), max_size=12),
)
def test_any_mix_of_duplicates_swaps_and_drops_yields_each_closed_candle_once_in_order(
    n: int, updates: int, faults: list[tuple[str, int]]
) -> None:
    truth = [kl(i, True, 100.0 + i) for i in range(n)]
    feed: list[tuple[int, KlineEvent]] = []  # (index of the newest candle at that time, event)
    for i in range(n):
        feed += [(i, KlineEvent(0, kl(i, False, 50.0 + u), STREAM)) for u in range(updates)]
        feed.append((i, KlineEvent(0, truth[i], STREAM)))
    for kind, pos in faults:
        j = pos % len(feed)
        if kind == "dup":
            feed.insert(j, feed[j])
        elif kind == "swap" and j + 1 < len(feed):
            feed[j], feed[j + 1] = feed[j + 1], feed[j]
        elif kind == "drop" and len(feed) > 1:
            del feed[j]

    h = Harness()
    now = [0]

    def repair(stream: str) -> bool:
        # A synchronous "REST" that knows every candle up to now (the newest one forming).
        start = h.seq.backfill_start(stream)
        assert start is not None
        rows = [k for k in truth[: now[0]] if k.open_time >= start] + [kl(now[0], False)]
        h.seq.release(stream, rows)
        h.seq.repair_done(stream)
        return True

    h.seq = StreamSequencer(h.out.append, repair, lambda: 0)
    for idx, e in feed:
        now[0] = max(now[0], idx)
        h.seq.push(e)

    got = h.closed()
    assert got == sorted(set(got))  # strictly increasing: in order, once each
    if got:
        assert got == list(range(got[0], got[-1] + 1))  # and no hole in between
        closes = {
            (e.kline.open_time - T0) // MINUTE_MS: e.kline.close
            for e in h.out
            if isinstance(e, KlineEvent) and e.kline.closed
        }
        assert all(closes[i] == 100.0 + i for i in got)
