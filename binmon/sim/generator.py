"""Synthetic trades for one symbol: deterministic, random-access, exact and cheap to summarise.

Every trade is a pure function of ``(seed, symbol, listing time, time)``, produced on demand in
two levels so history and live agree exactly, in any order of asking:

**Day skeleton** (one RNG per ``(seed, symbol, day)``, vectorised over the day's 1,440
minutes). Per minute: an activity level (hourly regime x decaying bursts), a Poisson trade
count (``rate * 60 * activity``) and a log-price step of an Ornstein-Uhlenbeck process with
Student-t shocks, mean-reverting to the symbol's price (half-life ~7 days) so months stay
realistic. A minute's trades come in up to :data:`MAX_LEVELS` *levels*: runs of consecutive
trades by one aggressor side at one price (bid or ask around a Brownian-bridge mid path), as a
taker order filling several makers does. Each level gets its trade count and total volume
here. Because every trade of a level has the level's price, the minute's open/high/low/close,
volumes and quote volumes follow from the levels alone: the 1m statistics of a whole day cost
O(levels), not O(trades), whatever the trade rate. That is what lets a 30-day ``1d`` query at
400 trades/s answer in milliseconds.

**Minute expansion** (one RNG per ``(seed, symbol, minute)``): the trades themselves, only
when asked: sorted millisecond times (some sharing a millisecond, as fills of one order do),
each level's volume split into per-trade quantities (>= one step, exact integer split),
consecutive trade ids. Summing the expanded trades gives back the skeleton's numbers exactly,
in the integer 1e-8 units of :mod:`binmon.core.aggregate` (the tests check it).

Exactness needs tick decimals + step decimals <= 8 (each ``price * qty`` is then an exact
8-decimal number); the constructor enforces it.
"""

from __future__ import annotations

import math
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from binmon.sim.bars import B1, F64, I64, MINUTE_MS, Bars, Trades, empty_bars, empty_trades
from binmon.sim.config import MAX_DECIMALS, SimSymbol, decimal_units

DAY_MINUTES = 1440
#: Most price levels in one minute; busier minutes put more trades on each level.
MAX_LEVELS = 32
#: Mean reversion of the log price per minute (half-life ln 2 / THETA ~ 6.9 days).
THETA = 1.0 / (10 * DAY_MINUTES)
HOURLY_SD = 0.35  # sd of the log activity of each hour
BURST_P = 1.0 / 720  # chance per minute that a burst starts (about two a day)
BURST_AMP = (2.0, 6.0)  # extra activity at a burst's start, uniform in this range
_BURST_KERNEL = np.exp(-np.arange(30) / 5.0)  # bursts decay over ~5 minutes
#: Mean activity, so that the mean trade rate is the configured one.
_ACT_MEAN = math.exp(HOURLY_SD**2 / 2) * (
    1 + BURST_P * (BURST_AMP[0] + BURST_AMP[1]) / 2 * float(_BURST_KERNEL.sum())
)
T_DF = 4.0  # Student-t degrees of freedom of the price shocks: crypto has fat tails
LEVEL_VOL_SD = 1.0  # sd of the log volume of a level around n * median_qty
SPLIT_SD = 1.0  # sd of the log weights that split a level's volume into trades
SAME_MS_P = 0.5  # chance that a fill shares the previous fill's millisecond
SIDE_GAIN = 1.5  # how strongly the aggressor side follows the next price move
_A_POW = (1.0 - THETA) ** np.arange(1, DAY_MINUTES + 1)


@dataclass(frozen=True, slots=True)
class _Levels:
    """The price levels of one day's minutes that have trades."""

    minute: I64  # epoch minute of each active minute
    start: I64  # index of its first level
    levels: I64  # number of its levels
    count: I64  # its trades
    first_id: I64  # id of its first trade
    ticks: I64  # per level: price in ticks
    steps: I64  # per level: volume in steps
    trades: I64  # per level: number of trades
    buy: B1  # per level: the buyer was the taker


@dataclass(frozen=True, slots=True)
class _Minutes:
    """Stage 1 of a day: per minute, the trade count and the log-price path."""

    minutes: I64
    count: I64
    x_start: F64
    x_end: F64
    sigma: F64
    first_ids: I64


@dataclass(frozen=True, slots=True)
class _State:
    """Where a day starts: log-price deviation from the symbol's price, and the next trade id."""

    x: float
    next_id: int


def split_int(total: I64, weights: F64, seg: I64, starts: I64, lens: I64) -> I64:
    """Split each ``total[s]`` into ``lens[s]`` non-negative integers proportional to ``weights``.

    ``seg`` maps every element to its segment, ``starts`` gives each segment's first element;
    segments are contiguous and non-empty. The parts of a segment sum to its total exactly
    (cumulative flooring, the last cut forced to the total).
    """
    cs = np.cumsum(weights)
    base = (cs - weights)[starts]
    seg_sum = np.add.reduceat(weights, starts)
    frac = (cs - base[seg]) / seg_sum[seg]
    tot = total[seg]
    cut = np.minimum(np.floor(frac * tot), tot).astype(np.int64)
    cut[starts + lens - 1] = total
    prev = np.empty_like(cut)
    prev[1:] = cut[:-1]
    prev[starts] = 0
    parts: I64 = cut - prev
    return parts


def _rng(*key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(key))))


class LRU:
    """A least-recently-used map bounded by the total weight of its values (callers lock)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.weight = 0
        self._items: OrderedDict[int, tuple[object, int]] = OrderedDict()

    def put(self, key: int, value: object, weight: int = 1) -> None:
        """Store ``value``, then evict the least recently used entries beyond ``capacity``."""
        old = self._items.pop(key, None)
        if old is not None:
            self.weight -= old[1]
        self._items[key] = (value, weight)
        self.weight += weight
        while self.weight > self.capacity and len(self._items) > 1:
            self.weight -= self._items.popitem(last=False)[1][1]

    def hit(self, key: int) -> object | None:
        """The value under ``key`` (now most recently used), or None."""
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]


class GeneratedSource:
    """The synthetic trades of one symbol, listed at ``listing_ms`` (minute-aligned).

    No trade exists before ``listing_ms`` (the first is exactly there when the first minute
    has trades) nor at or after ``end_ms`` (a halted symbol; None: never ends). Thread-safe.
    """

    def __init__(
        self, sym: SimSymbol, seed: int, listing_ms: int, end_ms: int | None = None, rate: float | None = None
    ) -> None:
        if listing_ms % MINUTE_MS or (end_ms is not None and end_ms % MINUTE_MS):
            raise ValueError("listing_ms and end_ms must be minute-aligned")
        dt, pu = decimal_units(sym.tick_size)
        ds, su = decimal_units(sym.step_size)
        if dt + ds > MAX_DECIMALS:
            raise ValueError(
                f"{sym.symbol}: tick {sym.tick_size} and step {sym.step_size} have {dt + ds} decimals "
                f"together; the generator needs <= {MAX_DECIMALS} so that price * qty is exact"
            )
        self.sym = sym
        self.seed = seed
        self.listing_ms = listing_ms
        self.end_ms = end_ms
        self._key = zlib.crc32(sym.symbol.encode())
        self._first_min = listing_ms // MINUTE_MS
        self._end_min = end_ms // MINUTE_MS if end_ms is not None else 2**62
        self._rate = sym.trade_rate if rate is None else rate
        self._p8 = pu * 10 ** (MAX_DECIMALS - dt)  # 1e-8 units per tick
        self._q8 = su * 10 ** (MAX_DECIMALS - ds)  # 1e-8 units per step
        self._pq8 = pu * su * 10 ** (MAX_DECIMALS - dt - ds)  # 1e-8 units per tick x step
        self._price_ticks = sym.price * 10**dt / pu
        median = sym.median_qty if sym.median_qty is not None else 100 * su / 10**ds
        self._median_steps = max(1.0, median * 10**ds / su)
        self._sigma = sym.volatility / math.sqrt(DAY_MINUTES)  # per minute
        # A mature market's ids, different per symbol: clients must not assume ids start at 0.
        self._id0 = 1_000_000 + (self._key % 9_000) * 10_000
        self._lock = threading.RLock()
        self._states: dict[int, _State] = {self._first_min // DAY_MINUTES: _State(0.0, self._id0)}
        self._last_state_day = self._first_min // DAY_MINUTES
        self._days = LRU(64)  # day -> Bars
        self._levels = LRU(4)  # day -> _Levels
        # minute -> Trades, ~49 bytes a trade: ~6 MB a symbol, i.e. 5 minutes at 400 trades/s.
        # Streaming needs the current minute only (older ones are rebuilt on demand, the same),
        # and the demo embeds the simulator in the app: the cache must stay small.
        self._minutes = LRU(120_000)

    # ------------------------------------------------------------ public

    def bars(self, m0: int, m1: int) -> Bars:
        """Statistics of the minutes ``m0 <= minute < m1`` that have trades."""
        m0, m1 = max(m0, self._first_min), min(m1, self._end_min)
        if m0 >= m1:
            return empty_bars()
        days = [self._day_bars(d) for d in range(m0 // DAY_MINUTES, (m1 - 1) // DAY_MINUTES + 1)]
        return Bars.concat(days).between(m0, m1)

    def minute_trades(self, minute: int) -> Trades:
        """Every trade of the epoch minute ``minute``, in time order."""
        if not self._first_min <= minute < self._end_min:
            return empty_trades()
        with self._lock:
            hit = self._minutes.hit(minute)
            if hit is None:
                hit = self._expand(minute)
                self._minutes.put(minute, hit, len(hit) + 500)  # + the fixed cost of an entry
        assert isinstance(hit, Trades)
        return hit

    # ------------------------------------------------------------ day skeleton

    def _day_bars(self, day: int) -> Bars:
        with self._lock:
            hit = self._days.hit(day)
            if hit is None:
                hit, _ = self._generate(day)
        assert isinstance(hit, Bars)
        return hit

    def _day_levels(self, day: int) -> _Levels:
        with self._lock:
            hit = self._levels.hit(day)
            if hit is None:
                _, hit = self._generate(day)
        assert isinstance(hit, _Levels)
        return hit

    def _state(self, day: int) -> _State:
        # Each day starts where the one before ended: walk forward from the last known day.
        # Only the cheap per-minute stage is needed for that, not the levels.
        while self._last_state_day < day:
            d = self._last_state_day
            sk = self._minutes_of(d, self._states[d])
            self._states[d + 1] = _State(float(sk.x_end[-1]), int(sk.first_ids[-1] + sk.count[-1]))
            self._last_state_day = d + 1
        return self._states[day]

    def _generate(self, day: int) -> tuple[Bars, _Levels]:
        """Build (and cache) one day's bars and levels."""
        if day < self._first_min // DAY_MINUTES:
            bars, levels = empty_bars(), _no_levels()  # before the listing: nothing
        else:
            bars, levels = self._levels_of(day, self._minutes_of(day, self._state(day)))
        self._days.put(day, bars)
        self._levels.put(day, levels)
        return bars, levels

    def _minutes_of(self, day: int, state: _State) -> _Minutes:
        """Stage 1 (its own RNG stream): the day's per-minute trade counts and price path."""
        rng = _rng(self.seed, self._key, day, 0)
        minutes = day * DAY_MINUTES + np.arange(DAY_MINUTES, dtype=np.int64)
        listed = minutes >= self._first_min
        live = listed & (minutes < self._end_min)

        hourly = np.exp(HOURLY_SD * rng.standard_normal(24)).repeat(60)
        burst_amp = np.where(rng.random(DAY_MINUTES) < BURST_P, rng.uniform(*BURST_AMP, DAY_MINUTES), 0.0)
        activity = hourly * (1.0 + np.convolve(burst_amp, _BURST_KERNEL)[:DAY_MINUTES]) / _ACT_MEAN
        count = rng.poisson(self._rate * 60.0 * activity).astype(np.int64) * live

        # OU log price, vectorised: x[k] = a^k (x0 + sum_{i<k} s_i e_i a^-(i+1)); a^+-1440 ~ e^-+0.1.
        sigma = self._sigma * np.sqrt(activity) * listed  # flat before listing: it opens at `price`
        shocks = rng.standard_t(T_DF, DAY_MINUTES) / math.sqrt(T_DF / (T_DF - 2.0))
        x_end = _A_POW * (state.x + np.cumsum(sigma * shocks / _A_POW))
        x_start = np.concatenate(([state.x], x_end[:-1]))
        first_ids = state.next_id + np.cumsum(count) - count
        return _Minutes(minutes, count, x_start, x_end, sigma, first_ids)

    def _levels_of(self, day: int, sk: _Minutes) -> tuple[Bars, _Levels]:
        """Stage 2 (another RNG stream): the price levels of the minutes with trades, and their bars."""
        rng = _rng(self.seed, self._key, day, 2)
        minutes, count, x_start, x_end, sigma, first_ids = (
            sk.minutes,
            sk.count,
            sk.x_start,
            sk.x_end,
            sk.sigma,
            sk.first_ids,
        )
        act = np.flatnonzero(count)
        if not act.size:
            return empty_bars(), _no_levels()
        n = count[act]
        k = np.minimum(n, MAX_LEVELS)
        starts = np.cumsum(k) - k
        seg = np.repeat(np.arange(act.size), k)
        kf = k[seg].astype(np.float64)
        tau = (np.arange(seg.size) - starts[seg]) / kf  # level position in the minute, [0, 1)

        # Mid price: Brownian bridge from the minute's start to its end price.
        steps = rng.standard_normal(seg.size) / np.sqrt(kf)
        walk = np.cumsum(steps) - steps
        walk -= walk[starts][seg]
        bridge = walk - tau * np.add.reduceat(steps, starts)[seg]
        xs, xe = x_start[act][seg], x_end[act][seg]
        mid = self._price_ticks * np.exp(xs + (xe - xs) * tau + sigma[act][seg] * bridge)
        # Takers buy ahead of up-moves; they pay the ask (bid + 1 tick), sellers hit the bid.
        buy = rng.random(seg.size) < 1.0 / (1.0 + np.exp(-SIDE_GAIN * steps * np.sqrt(kf)))
        ticks = np.maximum(np.floor(mid).astype(np.int64) + buy, 1)

        per_level = 1 + split_int(n - k, rng.exponential(size=seg.size) + 1e-9, seg, starts, k)
        noise = np.exp(LEVEL_VOL_SD * rng.standard_normal(seg.size))
        vol_steps = np.maximum(per_level, np.rint(per_level * self._median_steps * noise).astype(np.int64))

        ends = starts + k - 1
        p8 = ticks * self._p8
        v8 = vol_steps * self._q8
        q8 = ticks * vol_steps * self._pq8
        zero = np.zeros(1, np.int64)
        bars = Bars(
            minute=minutes[act],
            count=n,
            first_id=first_ids[act],
            last_id=first_ids[act] + n - 1,
            open=p8[starts],
            high=np.maximum.reduceat(p8, starts),
            low=np.minimum.reduceat(p8, starts),
            close=p8[ends],
            volume=np.add.reduceat(v8, starts),
            quote=np.add.reduceat(q8, starts),
            taker_base=np.add.reduceat(np.where(buy, v8, zero), starts),
            taker_quote=np.add.reduceat(np.where(buy, q8, zero), starts),
        )
        levels = _Levels(minutes[act], starts, k, n, first_ids[act], ticks, vol_steps, per_level, buy)
        return bars, levels

    # ------------------------------------------------------------ minute expansion

    def _expand(self, minute: int) -> Trades:
        lv = self._day_levels(minute // DAY_MINUTES)
        i = int(np.searchsorted(lv.minute, minute))
        if i >= lv.minute.size or lv.minute[i] != minute:
            return empty_trades()
        n, s, k = int(lv.count[i]), int(lv.start[i]), int(lv.levels[i])
        ticks, vol_steps = lv.ticks[s : s + k], lv.steps[s : s + k]
        per_level, buy = lv.trades[s : s + k], lv.buy[s : s + k]

        rng = _rng(self.seed, self._key, minute, 1)
        offsets = np.sort(rng.integers(0, MINUTE_MS, n))
        level_of = np.repeat(np.arange(k), per_level)
        level_start = np.cumsum(per_level) - per_level
        same = rng.random(n) < SAME_MS_P
        same[level_start] = False  # a new level is a new taker order
        offsets = offsets[np.maximum.accumulate(np.where(same, 0, np.arange(n)))]
        if minute == self._first_min:
            offsets[0] = 0  # the listing time is the first trade's time

        weights = rng.lognormal(0.0, SPLIT_SD, n)
        qty_steps = 1 + split_int(vol_steps - per_level, weights, level_of, level_start, per_level)
        p8 = np.repeat(ticks * self._p8, per_level)
        q8 = qty_steps * self._q8
        return Trades(
            ids=int(lv.first_id[i]) + np.arange(n, dtype=np.int64),
            prices=p8 / 1e8,  # both exact in a float: the quotient is the nearest float to the decimal
            qtys=q8 / 1e8,
            times=minute * MINUTE_MS + offsets,
            buyer_is_maker=np.repeat(~buy, per_level),
            price_units=p8,
            qty_units=q8,
        )


def _no_levels() -> _Levels:
    e = np.empty(0, np.int64)
    return _Levels(e, e, e, e, e, e, e, e, np.empty(0, bool))
