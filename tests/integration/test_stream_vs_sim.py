"""StreamClient against the real simulator: faults in, exact candle history out.

The simulator runs at 60x, so a 1m candle closes every second and a 1s candle every 17 ms.
Every test ends by comparing the closed candles the consumer received, stream by stream,
with the simulator's own history (``market.klines``): same open times, same values, no
hole, no duplicate — whatever fault was injected on the way.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest

from binmon.binance.backoff import backoff
from binmon.binance.codec import kline_to_row, parse_stream_name
from binmon.binance.rest import RestClient
from binmon.binance.stream import BackfillFn, StreamClient
from binmon.core.events import ConnectionStatus, ConnState
from binmon.core.models import Kline, KlineEvent, StreamEvent
from binmon.sim.server import SimServer

MakeSim = Callable[..., SimServer]
SPEED = 60.0
K1M = "btcusdt@kline_1m"
K1S = "btcusdt@kline_1s"
STREAMS = [K1M, K1S, "ethusdt@kline_1m", "dogebtc@kline_1s", "btcusdt@trade"]


class Consumer:
    """Records what a CSV writer would append: closed candles per stream, in arrival order."""

    def __init__(self) -> None:
        self.closed: dict[str, list[Kline]] = defaultdict(list)
        self.events = 0
        self.statuses: list[ConnectionStatus] = []

    def __call__(self, ev: StreamEvent) -> None:
        self.events += 1
        if isinstance(ev, KlineEvent) and ev.kline.closed:
            self.closed[ev.stream].append(ev.kline)

    def states(self) -> list[ConnState]:
        return [s.state for s in self.statuses]


async def until(cond: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def market_backfill(sim: SimServer) -> BackfillFn:
    """A REST-free backfill: the simulator's own history (on this loop: no blocking)."""

    async def fill(symbol: str, interval: str, start: int) -> list[Kline]:
        return sim.market.klines(symbol, interval, start, None, 1000)

    return fill


def rest_backfill(rest: RestClient) -> BackfillFn:
    """The app's backfill: the synchronous REST client, off the event loop."""

    async def fill(symbol: str, interval: str, start: int) -> list[Kline]:
        def fetch() -> list[Kline]:
            return [k for page in rest.iter_klines(symbol, interval, start) for k in page]

        return await asyncio.to_thread(fetch)

    return fill


def make_client(sim: SimServer, consumer: Consumer, backfill: BackfillFn | None, **kw: Any) -> StreamClient:
    kw.setdefault("backoff_factory", lambda: backoff(initial=0.1, cap=0.5, rng=random.Random(3)))
    kw.setdefault("min_connect_interval", 0.0)
    return StreamClient(
        sim.urls.ws, on_event=consumer, on_status=consumer.statuses.append, backfill=backfill, **kw
    )


def assert_exact_history(sim: SimServer, consumer: Consumer, streams: list[str]) -> dict[str, int]:
    """Every kline stream's closed candles equal the simulator's history over their span."""
    counts = {}
    for stream in streams:
        symbol, kind, interval = parse_stream_name(stream)
        if kind != "kline":
            continue
        assert interval is not None
        got = consumer.closed[stream]
        assert len(got) >= 3, f"{stream}: only {len(got)} closed candles"
        opens = [k.open_time for k in got]
        assert opens == sorted(set(opens)), f"{stream}: out of order or duplicated"
        want = sim.market.klines(symbol, interval, opens[0], opens[-1], 10**7)
        assert [kline_to_row(k) for k in got] == [kline_to_row(k) for k in want], f"{stream}: differs"
        counts[stream] = len(got)
    return counts


def closes(consumer: Consumer, stream: str = K1M) -> int:
    return len(consumer.closed[stream])


def every_kline_stream_has(consumer: Consumer, streams: list[str], n: int) -> Callable[[], bool]:
    """A condition: every kline stream of ``streams`` has at least ``n`` closed candles."""
    kl = [s for s in streams if "@kline_" in s]
    return lambda: all(len(consumer.closed[s]) >= n for s in kl)


# ---------------------------------------------------------------- drops and backfill


async def test_a_dropped_connection_is_backfilled_over_rest_to_the_exact_history(make_sim: MakeSim) -> None:
    consumer = Consumer()
    async with make_sim(speed=SPEED) as sim:
        with RestClient(sim.urls.rest) as rest:
            client = make_client(sim, consumer, rest_backfill(rest))
            await client.subscribe(STREAMS)
            async with client:
                await until(lambda: closes(consumer) >= 2, what="two 1m closes")
                # An outage of 2.5 s real = 150 s of market time: two 1m candles and ~150 1s
                # candles close while nobody listens.
                sim.faults.refuse_connections(2.5)
                before = closes(consumer), closes(consumer, K1S)
                sim.faults.drop_all()
                await until(lambda: client.stats.reconnects == 1, what="the reconnect")
                await until(lambda: client.status.state is ConnState.LIVE)
                await until(lambda: closes(consumer) >= before[0] + 3, what="three more 1m closes")
                await until(every_kline_stream_has(consumer, STREAMS, 3))
                stats = client.stats
        counts = assert_exact_history(sim, consumer, STREAMS)
    assert closes(consumer, K1S) - before[1] >= 2.5 * SPEED  # the outage, then live
    assert stats.backfilled_klines >= 2 * SPEED and stats.connect_failures >= 1
    assert ConnState.BACKFILLING in consumer.states()
    print(f"\nafter drop + 2.5 s outage: {counts}, backfilled {stats.backfilled_klines}")


async def test_reconnect_time_after_a_drop(make_sim: MakeSim) -> None:
    consumer = Consumer()
    async with make_sim(speed=SPEED) as sim:
        client = make_client(sim, consumer, market_backfill(sim))
        await client.subscribe([K1M, K1S])
        times = []
        async with client:
            for _ in range(5):
                await until(lambda: client.status.state is ConnState.LIVE and consumer.events > 0)
                reconnects = client.stats.reconnects
                t0 = time.monotonic()
                sim.faults.drop_all()
                await until(lambda r=reconnects: client.stats.reconnects == r + 1)  # type: ignore[misc]
                await until(lambda: client.status.state is ConnState.LIVE, what="LIVE again")
                n = consumer.events
                await until(lambda n=n: consumer.events > n)  # type: ignore[misc]
                times.append(time.monotonic() - t0)
            await until(every_kline_stream_has(consumer, [K1M, K1S], 3))
        assert_exact_history(sim, consumer, [K1M, K1S])
    times.sort()
    print(
        f"\ndrop -> live data again (backoff 0.05-0.1 s + backfill): median {times[2] * 1000:.0f} ms, "
        f"max {times[-1] * 1000:.0f} ms"
    )
    assert times[2] < 1.0


async def test_a_silent_connection_is_detected_and_replaced(make_sim: MakeSim) -> None:
    consumer = Consumer()
    async with make_sim(speed=SPEED) as sim:
        client = make_client(sim, consumer, market_backfill(sim), watchdog_s=0.5)
        await client.subscribe([K1M, K1S])
        async with client:
            await until(lambda: closes(consumer, K1S) >= 10)
            sim.faults.set_silent(True)  # the socket stays open, pings answered, no data
            t0 = time.monotonic()
            await until(lambda: client.stats.watchdog_trips == 1, what="the watchdog")
            detected = time.monotonic() - t0
            sim.faults.set_silent(False)
            await until(lambda: client.stats.reconnects >= 1)
            n = closes(consumer)
            await until(lambda: closes(consumer) >= n + 1)
            await until(every_kline_stream_has(consumer, [K1M, K1S], 3))
        assert_exact_history(sim, consumer, [K1M, K1S])
    assert 0.4 <= detected < 1.5
    assert sim.stats.connections_total >= 2
    print(f"\nsilent connection detected after {detected * 1000:.0f} ms (watchdog 0.5 s)")


async def test_history_then_live_has_no_hole_when_seeded(make_sim: MakeSim) -> None:
    # The CLI / app pattern: load history over REST, then go live. Candles that close
    # between the two never arrive live; the seed makes the first connection backfill them.
    consumer = Consumer()
    async with make_sim(speed=SPEED) as sim:
        history = sim.market.klines("BTCUSDT", "1m", None, None, 10)
        last_closed = [k for k in history if k.closed][-1]
        for k in history:
            if k.closed:
                consumer.closed[K1M].append(k)
        n0 = closes(consumer)
        await asyncio.sleep(2.5)  # two or three candles close meanwhile
        client = make_client(sim, consumer, market_backfill(sim))
        client.seed(K1M, last_closed.open_time)
        await client.subscribe([K1M])
        async with client:
            await until(lambda: closes(consumer) >= n0 + 4)
        assert_exact_history(sim, consumer, [K1M])


# ---------------------------------------------------------------- rotation


async def test_rotation_before_the_server_lifetime_is_seamless(make_sim: MakeSim) -> None:
    consumer = Consumer()
    async with make_sim(speed=SPEED, server={"max_lifetime_s": 1.5}) as sim:
        client = make_client(sim, consumer, market_backfill(sim), max_lifetime_s=1.0)
        await client.subscribe(STREAMS)
        async with client:
            await until(lambda: client.stats.rotations >= 4, what="four rotations")
            await until(every_kline_stream_has(consumer, STREAMS, 3))
            stats = client.stats
        assert_exact_history(sim, consumer, STREAMS)
    assert stats.reconnects == 0  # each replacement took over before the server closed the old one
    assert ConnState.RECONNECTING not in consumer.states()
    # One connection per completed rotation plus the first; at most one more, opened by a
    # rotation still under way when the client closed.
    assert stats.rotations + 1 <= sim.stats.connections_total <= stats.rotations + 2


async def test_the_server_lifetime_close_1001_is_followed_at_once(make_sim: MakeSim) -> None:
    consumer = Consumer()
    async with make_sim(speed=SPEED, server={"max_lifetime_s": 1.0}) as sim:
        # Long backoff: a 1001 close must not wait for it.
        client = make_client(sim, consumer, market_backfill(sim), backoff_factory=lambda: iter([5.0] * 99))
        await client.subscribe(STREAMS)
        async with client:
            await until(lambda: client.stats.reconnects >= 3, timeout=8, what="three lifetime reconnects")
            await until(every_kline_stream_has(consumer, STREAMS, 3))
        assert_exact_history(sim, consumer, STREAMS)


async def test_server_shutdown_is_followed_by_a_rotation(make_sim: MakeSim) -> None:
    consumer = Consumer()
    async with make_sim(speed=SPEED) as sim:
        client = make_client(sim, consumer, market_backfill(sim))
        await client.subscribe(STREAMS)
        async with client:
            await until(lambda: closes(consumer) >= 1)
            for i in range(3):
                sim.faults.server_shutdown()
                await until(lambda i=i: client.stats.server_shutdowns == i + 1)  # type: ignore[misc]
                await until(lambda i=i: sim.stats.connections_total == i + 2)  # type: ignore[misc]
                await until(lambda: sim.stats.connections_open == 1, what="the old one closed")
            n = closes(consumer)
            await until(lambda: closes(consumer) >= n + 1)
            await until(every_kline_stream_has(consumer, STREAMS, 3))
            stats = client.stats
        assert_exact_history(sim, consumer, STREAMS)
    assert stats.rotations == 3 and stats.reconnects == 0


# ---------------------------------------------------------------- bad data


async def test_duplicate_and_reordered_klines_are_tolerated(make_sim: MakeSim) -> None:
    consumer = Consumer()
    async with make_sim(speed=SPEED) as sim:
        client = make_client(sim, consumer, market_backfill(sim))
        await client.subscribe(STREAMS)
        sim.faults.set_duplicate_klines(True)
        sim.faults.set_reorder_klines(True)
        async with client:
            await until(every_kline_stream_has(consumer, STREAMS, 3))
            stats = client.stats
        assert_exact_history(sim, consumer, STREAMS)
    assert stats.duplicates > 20 and stats.stale > 20
    assert stats.reconnects == 0


async def test_malformed_frames_are_survived(make_sim: MakeSim) -> None:
    consumer = Consumer()
    async with make_sim(speed=SPEED) as sim:
        client = make_client(sim, consumer, market_backfill(sim))
        await client.subscribe(STREAMS)
        sim.faults.set_malformed(7)  # the frame replaced by garbage is lost: gaps to repair
        async with client:
            await until(every_kline_stream_has(consumer, STREAMS, 3))
            await until(lambda: not client.stats.gaps or client.status.state is ConnState.LIVE)
            stats = client.stats
        assert_exact_history(sim, consumer, STREAMS)
    assert stats.malformed > 20 and stats.reconnects == 0
    assert stats.gaps > 0 and stats.backfilled_klines > 0


# ---------------------------------------------------------------- limits and throughput


async def test_runtime_subscriptions_stay_under_the_servers_message_limit(make_sim: MakeSim) -> None:
    consumer = Consumer()
    # Real time: at 60x the 56 streams carry ~60k frames/s, enough for the simulator to drop a
    # client on a loaded machine as a slow consumer, which is not what this test is about.
    async with make_sim(speed=1.0) as sim:
        client = make_client(sim, consumer, None)
        symbols = [s.symbol.lower() for s in sim.market.symbols]
        kinds = ["trade", "aggTrade", "bookTicker", "kline_1m", "kline_1s", "kline_5m", "miniTicker"]
        wanted = [f"{s}@{k}" for s in symbols for k in kinds]
        async with client:
            for name in wanted:  # one at a time, 10 ms apart: 56 calls
                await client.subscribe([name])
                await asyncio.sleep(0.01)
            await client.unsubscribe(wanted[::2])
            await until(lambda: [set(s.streams) for s in sim.engine.sessions] == [set(wanted[1::2])])
            assert client.stats.control_sent >= 4
        assert sim.stats.closed_rate_limit == 0 and sim.stats.connections_total == 1


@pytest.mark.slow
async def test_ingest_rate_from_the_simulator(make_sim: MakeSim) -> None:
    consumer = Consumer()
    async with make_sim(speed=100.0, trade_rate=40.0) as sim:
        client = make_client(sim, consumer, market_backfill(sim))
        streams = [f"{s.symbol.lower()}@{k}" for s in sim.market.symbols for k in ("trade", "aggTrade")]
        await client.subscribe([*streams, K1S])
        async with client:
            await until(lambda: client.stats.frames > 1000)
            f0, e0, t0 = client.stats.frames, consumer.events, time.monotonic()
            await asyncio.sleep(3.0)
            frames, events, dt = client.stats.frames - f0, consumer.events - e0, time.monotonic() - t0
        assert client.stats.malformed == 0
    rate = f"{frames / dt:.0f} frames/s, {events / dt:.0f} events/s"
    print(f"\ningest from the sim (same process and loop): {rate}")
    assert frames / dt > 1000
