"""The market service with the local store: stored bars first, the tail from the exchange, live saved.

Real parts only: the simulator over real sockets, a RestClient, the Downloader, a CandleStore
file, and the MarketService as the app runs it; the sink records what the window would get.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from binmon.binance.rest import RestClient
from binmon.core.models import Kline
from binmon.history.archive_client import ArchiveClient
from binmon.history.download import Downloader, store_clock
from binmon.history.ranges import SeriesKey
from binmon.history.store import CandleStore
from binmon.services.history import StoreHistory
from binmon.services.market import MarketService
from binmon.sim.config import SimConfig
from binmon.sim.thread import SimThread


@pytest.fixture
def sim_config(sim_config: SimConfig) -> SimConfig:
    # 60x: a 1m candle closes every real second, so live candles get saved within the test.
    return replace(sim_config, speed=60.0)


class Sink:
    """Records the MarketSink calls the tests look at."""

    def __init__(self) -> None:
        self.histories: list[tuple[float, list[Kline]]] = []
        self.messages: list[tuple[str | None, bool]] = []
        self.older: list[list[Kline]] = []

    def market_history(self, symbol: str, interval: str, bars: Sequence[Kline]) -> None:
        self.histories.append((time.monotonic(), list(bars)))

    def market_older(self, symbol: str, interval: str, bars: Sequence[Kline]) -> None:
        self.older.append(list(bars))

    def market_message(self, text: str | None, blocking: bool) -> None:
        self.messages.append((text, blocking))

    def __getattr__(self, name: str) -> Any:
        return lambda *args: None  # switching, ops, trades, tickers, feed, status, symbols


class Rig:
    def __init__(self, sim: SimThread, path: Path) -> None:
        self.rest = RestClient(sim.urls.rest)
        self.store = CandleStore.open(path, clock=store_clock(self.rest))
        self.downloader = Downloader(self.store, self.rest, ArchiveClient(sim.urls.rest))
        self.sink = Sink()
        self.service = MarketService(
            self.rest,
            sim.urls.ws,
            self.sink,
            history=StoreHistory(self.store, self.downloader),
            save_every_s=0.5,
        )

    async def close(self) -> None:
        await self.service.close()
        self.rest.close()
        self.store.close()


@pytest.fixture
def rigs(tmp_path: Path) -> Iterator[list[Rig]]:
    made: list[Rig] = []
    yield made
    for r in made:
        r.store.close()
        r.rest.close()


async def wait_for(cond: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_chart_opens_from_the_store_then_fills_the_tail_and_saves_live(
    sim_thread: SimThread, tmp_path: Path, rigs: list[Rig]
) -> None:
    # On its own thread: this test also makes blocking REST calls from the event loop.
    sim = sim_thread
    key = SeriesKey.spot("ETHUSDT", "1m")
    path = tmp_path / "candles.sqlite"

    # First run, empty store: history comes from the exchange through the downloader, and stays.
    first = Rig(sim, path)
    rigs.append(first)
    await first.service.start("ETHUSDT", "1m")
    await wait_for(lambda: first.sink.histories)
    bars = first.sink.histories[-1][1]
    assert len(bars) >= 999
    with RestClient(sim.urls.rest) as rest:
        want = {k.open_time: k for k in rest.klines("ETHUSDT", "1m", start_ms=bars[0].open_time, limit=1000)}
    assert all(b.same_values(want[b.open_time]) for b in bars if b.open_time in want)
    assert first.store.count(key) >= len(bars)
    # Live candles close every second at 60x; the service saves them every half second.
    stored_before = first.store.bounds(key)
    assert stored_before is not None
    await wait_for(
        lambda: (b := first.store.bounds(key)) is not None and b.end >= stored_before.end + 3 * 60_000
    )
    await first.service.close()  # saves what is still buffered
    last_stored = first.store.bounds(key)
    assert last_stored is not None
    await first.close()

    # Second run on the same file: the stored bars are shown before the exchange answers,
    # then the tail (candles closed meanwhile) is added.
    second = Rig(sim, path)
    rigs.append(second)
    await asyncio.sleep(2.0)  # two more candles close in the simulator meanwhile
    await second.service.start("ETHUSDT", "1m")
    await wait_for(lambda: len(second.sink.histories) >= 2)
    (t_cached, cached), (t_full, full) = second.sink.histories[:2]
    assert t_cached <= t_full
    assert cached[-1].open_time == last_stored.end  # straight from the file
    assert full[-1].open_time > cached[-1].open_time  # the tail was filled
    times = [b.open_time for b in full]
    assert times == list(range(times[0], times[-1] + 1, 60_000))  # no hole between stored and new
    assert any(text and "stored" in text for text, _ in second.sink.messages)

    # Scrolling back reads older bars through the same path (downloaded, then from the store).
    second.service.request_older()
    await wait_for(lambda: second.sink.older)
    older = second.sink.older[0]
    assert older and older[-1].open_time == full[0].open_time - 60_000
    await second.close()
