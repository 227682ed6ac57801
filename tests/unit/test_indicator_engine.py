"""The indicator engine equals TA-Lib's function API, in full and bar by bar, bit for bit.

"Equal" here is strict: the same NaN mask and, everywhere else, the same float64 bit pattern
(``_assert_bits``), for every one of TA-Lib's functions with default parameters, on the real
candles in ``../shared/fixtures/real/``. The reference is always TA-Lib's function API
(``talib.<NAME>(arrays, **params)``) called here directly, never the engine's own code.

The live replay sends every bar twice, as a real kline stream does: first a partial version
(open = high = low = close = the open, volume 0: the first trade), which is appended, then
its final version, which replaces it; the next bar's arrival commits it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import pytest
import talib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from talib import abstract

from binmon.core.models import Kline
from binmon.history import store_blocks as sb
from binmon.history.kline_io import parse_kline_csv_array
from binmon.indicators import chart_data
from binmon.indicators.catalog import catalog
from binmon.indicators.engine import (
    Engine,
    OutOfOrderBar,
    StaleSnapshot,
    build_engine_async,
    compute,
    compute_async,
    prepare,
    prepare_async,
)
from binmon.indicators.inputs import InputError
from binmon.indicators.spec import IndicatorSpec, Source, default_spec
from binmon.indicators.track import Track

FIELDS = ("open", "high", "low", "close", "volume", "periods")
ALL = sorted(talib.get_functions())


# ---------------------------------------------------------------- data and reference


def _with_periods(frame: pd.DataFrame) -> pd.DataFrame:
    # MAVP takes a per-bar period series; give it a deterministic, varying one (2..30).
    frame = frame.copy()
    frame["periods"] = (2 + (frame["open_time"] // 60_000) % 29).astype(np.float64)
    return frame


@pytest.fixture(scope="module")
def xrpeth(real_dir: Path) -> pd.DataFrame:
    """2,469 real 1m klines, as CandleStore.read_frame returns them (+ periods)."""
    arr = parse_kline_csv_array((real_dir / "XRPETH-1m-2019-10-11_13.csv").read_bytes(), "XRPETH", "1m")
    return _with_periods(sb.frame_from_columns({f: arr[f] for f in sb.FIELDS}))


@pytest.fixture(scope="module")
def ethbtc(real_dir: Path) -> pd.DataFrame:
    """5,760 real 5m candles (open_time, OHLCV CSV with a header) (+ periods)."""
    return _with_periods(pd.read_csv(real_dir / "ETHBTC-5m-2018-01-10_30.ohlcv.csv"))


@pytest.fixture(scope="module")
def default_specs() -> list[IndicatorSpec]:
    return [default_spec(name, id=name) for name in ALL]


@functools.cache
def _input_names(name: str) -> tuple[tuple[str, str], ...]:
    """``(group, series)`` of TA-Lib's inputs, positionally, from abstract's own input list."""
    out = []
    for group, series in cast(Any, abstract).Function(name).input_names.items():
        out += [(group, s) for s in ([series] if isinstance(series, str) else series)]
    return tuple(out)


def _inputs(name: str, cols: Mapping[str, np.ndarray], source: np.ndarray | None = None) -> list[np.ndarray]:
    """TA-Lib's inputs for ``name`` (the 'price' input replaced by ``source`` when given)."""
    return [source if group == "price" and source is not None else cols[s] for group, s in _input_names(name)]


def _talib(
    name: str, cols: Mapping[str, np.ndarray], params: Mapping[str, Any] | None = None, source: Any = None
) -> tuple[np.ndarray, ...]:
    """TA-Lib's function API, outputs as a tuple of float64 arrays (the reference)."""
    out = getattr(talib, name)(*_inputs(name, cols, source), **dict(params or {}))
    return tuple(np.asarray(o, dtype=np.float64) for o in (out if isinstance(out, tuple) else (out,)))


def _columns(frame: pd.DataFrame, stop: int | None = None) -> dict[str, np.ndarray]:
    return {f: frame[f].to_numpy(np.float64)[:stop].copy() for f in FIELDS}


def _assert_bits(got: Any, want: Any, what: object = "") -> None:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, what
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan), (what, np.flatnonzero(np.isnan(got) != nan)[:5])
    diff = np.flatnonzero(got[~nan].view(np.int64) != want[~nan].view(np.int64))
    assert diff.size == 0, (what, diff[:5], got[~nan][diff[:3]], want[~nan][diff[:3]])


def _bar(frame: pd.DataFrame, i: int) -> dict[str, Any]:
    row = {f: float(frame[f].iat[i]) for f in FIELDS}
    row["open_time"] = int(frame["open_time"].iat[i])
    return row


def _partial(bar: Mapping[str, Any]) -> dict[str, Any]:
    """The first version of a bar: one trade at the open, no volume yet."""
    o = bar["open"]
    return {**bar, "high": o, "low": o, "close": o, "volume": 0.0}


# ---------------------------------------------------------------- full computation


@pytest.mark.parametrize("data", ["xrpeth", "ethbtc"])
def test_full_computation_equals_talib_for_every_function(
    data: str, request: pytest.FixtureRequest, default_specs: list[IndicatorSpec]
) -> None:
    frame: pd.DataFrame = request.getfixturevalue(data)
    cols = _columns(frame)
    engine = Engine(default_specs)
    engine.load(frame)
    assert engine.errors == {}
    _assert_bits(engine.open_times(), frame["open_time"].to_numpy(np.float64), "open_time")
    for spec in default_specs:
        want = _talib(spec.function, cols)
        got = compute(spec, frame)
        loaded = engine.values(spec.id)
        assert list(got) == list(catalog()[spec.function].output_names)
        for (name, values), expected in zip(got.items(), want, strict=True):
            assert values.dtype == np.float64 and values.shape == (len(frame),)
            _assert_bits(values, expected, (spec.function, name, "compute"))
            _assert_bits(loaded[name], expected, (spec.function, name, "load"))
        assert engine.mode(spec.id) == "stream"


def test_compute_accepts_numpy_columns_and_sources(xrpeth: pd.DataFrame) -> None:
    cols = _columns(xrpeth)
    o, h, low, c = cols["open"], cols["high"], cols["low"], cols["close"]
    derived = {"hl2": (h + low) / 2, "hlc3": (h + low + c) / 3, "ohlc4": (o + h + low + c) / 4, "open": o}
    for source, series in derived.items():
        for name in ("RSI", "EMA", "BBANDS", "OBV"):
            spec = dataclasses.replace(default_spec(name, id="x"), source=cast(Source, source))
            got = compute(spec, cols)
            for values, expected in zip(got.values(), _talib(name, cols, source=series), strict=True):
                _assert_bits(values, expected, (name, source))


# ---------------------------------------------------------------- live, bar by bar


def _flat(values: Mapping[str, Mapping[str, float]], specs: list[IndicatorSpec]) -> np.ndarray:
    """Every spec's every output value, in spec order, as one vector (one comparison per step)."""
    return np.fromiter((v for s in specs for v in values[s.id].values()), dtype=np.float64)


def _reference(specs: list[IndicatorSpec], cols: Mapping[str, np.ndarray], derived: bool = False) -> Any:
    """TA-Lib over ``cols``: a (bars x all outputs) matrix, columns in spec then output order."""
    src = _sources(cols) if derived else {}
    series = [a for s in specs for a in _talib(s.function, cols, s.params, source=src.get(s.source))]
    return np.column_stack(series)


def _sources(cols: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    o, h, low, c = cols["open"], cols["high"], cols["low"], cols["close"]
    return {
        "close": c,
        "open": o,
        "hl2": (h + low) / 2,
        "hlc3": (h + low + c) / 3,
        "ohlc4": (o + h + low + c) / 4,
    }


def _replay(
    frame: pd.DataFrame, specs: list[IndicatorSpec], start: int, partial_every: int, partial_tail: int
) -> Engine:
    """Load ``frame[:start]``, then stream the rest partial-then-final, checking against TA-Lib.

    Final values are checked at every step against the full-series reference (TA-Lib's
    functions are causal: the checkpoints below verify that too, on the prefix). Partial
    versions are checked against TA-Lib on the prefix ending in the partial bar, at every
    step of the last ``partial_tail`` bars and every ``partial_every`` steps before.
    """
    n = len(frame)
    full = _reference(specs, _columns(frame))
    engine = Engine(specs)
    engine.load(frame.iloc[:start])
    for i in range(start, n):
        bar = _bar(frame, i)
        partial = _partial(bar)
        up = engine.update(partial)
        assert (up.kind, up.index, up.open_time) == ("append", i, bar["open_time"])
        if i >= n - partial_tail or i % partial_every == 0:
            prefix = _columns(frame, i + 1)
            for f in ("high", "low", "close", "volume"):
                prefix[f][i] = partial[f]
            _assert_bits(_flat(up.values, specs), _reference(specs, prefix)[-1], (i, "partial"))
        if i > start:  # the previous bar's final values, committed by this append
            assert up.finished is not None
            _assert_bits(_flat(up.finished, specs), full[i - 1], (i - 1, "finished"))
        final = engine.update(bar)
        assert (final.kind, final.index) == ("replace", i)
        _assert_bits(_flat(final.values, specs), full[i], (i, "final"))
        if i % 500 == 0:  # checkpoint: whole series == TA-Lib on the prefix (causality, buffers)
            got = np.column_stack([a for s in specs for a in engine.values(s.id).values()])
            _assert_bits(got, _reference(specs, _columns(frame, i + 1)), (i, "checkpoint"))
    got = np.column_stack([a for s in specs for a in engine.values(s.id).values()])
    _assert_bits(got, full, "end")
    return engine


def test_live_replay_of_every_function_equals_talib(
    xrpeth: pd.DataFrame, default_specs: list[IndicatorSpec]
) -> None:
    """All 201 functions, all 2,469 bars from a one-bar start (warm-up -> stream hand-over included)."""
    engine = _replay(xrpeth, default_specs, start=1, partial_every=25, partial_tail=150)
    assert {engine.mode(s.id) for s in default_specs} == {"stream"}


def test_live_replay_on_5m_candles(ethbtc: pd.DataFrame, default_specs: list[IndicatorSpec]) -> None:
    _replay(ethbtc, default_specs, start=len(ethbtc) - 300, partial_every=10, partial_tail=20)


def _spec(function: str, sid: str, source: Source = "close", **params: Any) -> IndicatorSpec:
    return dataclasses.replace(default_spec(function, id=sid), params=params, source=source)


OTHER_PARAMS = [
    _spec("MACD", "macd", fastperiod=5, slowperiod=35, signalperiod=5),
    _spec("MACDEXT", "macdext", fastmatype=1, slowmatype=2, signalmatype=6),
    _spec("BBANDS", "bb-ema", timeperiod=10, nbdevup=1.5, nbdevdn=2.5, matype=1),
    _spec("BBANDS", "bb-t3", source="hl2", timeperiod=7, matype=8),
    _spec("STOCH", "stoch", fastk_period=14, slowk_period=3, slowk_matype=1, slowd_period=5, slowd_matype=13),
    _spec("AROON", "aroon", timeperiod=25),
    _spec("RSI", "rsi-ohlc4", source="ohlc4", timeperiod=7),
    _spec("EMA", "ema-hlc3", source="hlc3", timeperiod=200),
    _spec("MAMA", "mama", source="hl2", fastlimit=0.3, slowlimit=0.02),
    _spec("KAMA", "kama-open", source="open", timeperiod=10),
    _spec("HT_PHASOR", "phasor", source="hl2"),
    _spec("SAREXT", "sarext", accelerationinitlong=0.01, accelerationmaxshort=0.3),
    _spec("T3", "t3", timeperiod=9, vfactor=0.5),
    _spec("OBV", "obv-hl2", source="hl2"),
]


def test_live_replay_with_other_parameters_and_sources(xrpeth: pd.DataFrame) -> None:
    specs = OTHER_PARAMS
    full = _reference(specs, _columns(xrpeth), derived=True)
    engine = Engine(specs)
    engine.load(xrpeth.iloc[:2])
    for i in range(2, len(xrpeth)):
        bar = _bar(xrpeth, i)
        engine.update(_partial(bar))
        engine.update({**_partial(bar), "high": bar["high"]})  # a second partial version
        _assert_bits(_flat(engine.update(bar).values, specs), full[i], i)
    assert {engine.mode(s.id) for s in specs} == {"stream"}


_FUZZ_FUNCTIONS = sorted(n for n, i in catalog().items() if i.params and i.chartable)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_live_replay_with_random_parameters_and_data(data: st.DataObject) -> None:
    """Random function, integer periods, MA types and source, on a random walk: still bit-exact."""
    name = data.draw(st.sampled_from(_FUZZ_FUNCTIONS), label="function")
    info = catalog()[name]
    params: dict[str, Any] = {}
    for p in info.params:
        if p.kind == "int":
            lo = int(p.minimum if p.minimum is not None else 1)
            params[p.name] = data.draw(st.integers(lo, max(lo, 40)), label=p.name)
        elif p.kind == "matype":
            params[p.name] = data.draw(st.sampled_from([c for c, _ in p.choices]), label=p.name)
    source = data.draw(
        st.sampled_from(["close", "hl2", "ohlc4"]) if info.takes_single_price else st.just("close")
    )
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    n = 260
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    openp = np.concatenate(([close[0]], close[:-1]))
    spread = np.abs(rng.normal(0, 0.005, n))
    frame = pd.DataFrame(
        {
            "open_time": np.arange(n, dtype=np.int64) * 60_000,
            "open": openp,
            "high": np.maximum(openp, close) * (1 + spread),
            "low": np.minimum(openp, close) * (1 - spread),
            "close": close,
            "volume": rng.gamma(2.0, 3.0, n),
            "periods": np.full(n, 5.0),
        }
    )
    spec = _spec(name, "fuzz", cast(Source, source), **params)
    full = _reference([spec], _columns(frame), derived=True)
    engine = Engine([spec])
    engine.load(frame.iloc[: n - 40])
    for i in range(n - 40, n):
        bar = _bar(frame, i)
        engine.update(_partial(bar))
        _assert_bits(_flat(engine.update(bar).values, [spec]), full[i], (name, params, source, i))


# ---------------------------------------------------------------- engine behaviour


def _kline(frame: pd.DataFrame, i: int, **changes: Any) -> Kline:
    b = _bar(frame, i)
    t = b["open_time"]
    k = Kline(
        "XRPETH",
        "1m",
        t,
        t + 59_999,
        b["open"],
        b["high"],
        b["low"],
        b["close"],
        b["volume"],
        0.0,
        1,
        0.0,
        0.0,
    )
    return dataclasses.replace(k, **changes)


def test_klines_as_bars_and_out_of_order(xrpeth: pd.DataFrame) -> None:
    specs = [default_spec("RSI", id="rsi"), default_spec("MACD", id="macd")]
    engine = Engine(specs)
    engine.load(xrpeth.iloc[:100])
    up = engine.update(_kline(xrpeth, 100))
    assert up.kind == "append" and engine.last_open_time == int(xrpeth["open_time"].iat[100])
    with pytest.raises(OutOfOrderBar):
        engine.update(_kline(xrpeth, 50))
    with pytest.raises(InputError, match="volume"):
        t = int(xrpeth["open_time"].iat[101])
        engine.update({"open_time": t, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0})
    assert len(engine) == 101  # nothing changed
    cols = _columns(xrpeth, 101)
    _assert_bits(engine.values("rsi")["real"], _talib("RSI", cols)[0])
    view = engine.values("rsi")["real"]
    with pytest.raises(ValueError):
        view[0] = 1.0  # views are read-only


def test_empty_engine_and_first_bars(xrpeth: pd.DataFrame) -> None:
    engine = Engine([default_spec("SMA", id="sma"), default_spec("CDLDOJI", id="doji")])
    assert len(engine) == 0 and engine.last_open_time is None
    assert engine.values("sma")["real"].shape == (0,)
    up = engine.update(_bar(xrpeth, 0))
    assert up.kind == "append" and up.finished is None and np.isnan(up.values["sma"]["real"])
    for i in range(1, 40):
        engine.update(_bar(xrpeth, i))
    assert engine.mode("sma") == "stream"
    _assert_bits(engine.values("sma")["real"], _talib("SMA", _columns(xrpeth, 40))[0])
    _assert_bits(engine.values("doji")["integer"], _talib("CDLDOJI", _columns(xrpeth, 40))[0])


def test_non_finite_inputs_fall_back_to_full_recomputes(xrpeth: pd.DataFrame) -> None:
    frame = xrpeth.iloc[:300].copy()
    frame.loc[150, "volume"] = np.nan
    specs = [default_spec("OBV", id="obv"), default_spec("RSI", id="rsi")]
    engine = Engine(specs)
    engine.load(frame)
    assert engine.mode("obv") == "full" and engine.mode("rsi") == "stream"
    engine.update({**_bar(xrpeth, 300), "volume": float("inf")})  # a bad live bar: OBV stays exact
    engine.update(_bar(xrpeth, 301))
    cols = _columns(frame)
    cols = {k: np.append(v, [_bar(xrpeth, 300)[k], _bar(xrpeth, 301)[k]]) for k, v in cols.items()}
    cols["volume"][300] = np.inf
    for s in specs:
        (values,) = engine.values(s.id).values()
        _assert_bits(values, _talib(s.function, cols)[0], s.id)


def test_a_non_finite_live_bar_switches_that_indicator_to_full_recomputes(xrpeth: pd.DataFrame) -> None:
    specs = [default_spec("OBV", id="obv"), default_spec("MFI", id="mfi"), default_spec("EMA", id="ema")]
    engine = Engine(specs)
    engine.load(xrpeth.iloc[:200])
    assert {engine.mode(s.id) for s in specs} == {"stream"}
    bad = {**_bar(xrpeth, 200), "volume": float("nan")}
    engine.update(bad)  # TA-Lib streams refuse a non-finite bar: those indicators recompute instead
    assert (engine.mode("obv"), engine.mode("mfi"), engine.mode("ema")) == ("full", "full", "stream")
    cols = _columns(xrpeth, 201)
    cols["volume"][200] = np.nan
    for s in specs:
        (values,) = engine.values(s.id).values()
        _assert_bits(values, _talib(s.function, cols)[0], s.id)
    engine.update(_bar(xrpeth, 200))  # the bar fixed, then the next one
    engine.update(_bar(xrpeth, 201))
    cols = _columns(xrpeth, 202)
    for s in specs:
        (values,) = engine.values(s.id).values()
        _assert_bits(values, _talib(s.function, cols)[0], s.id)


def test_missing_extra_input_is_reported_not_fatal(xrpeth: pd.DataFrame) -> None:
    engine = Engine([default_spec("MAVP", id="mavp"), default_spec("SMA", id="sma")])
    engine.load(xrpeth.drop(columns=["periods"]).iloc[:100])
    assert set(engine.errors) == {"mavp"} and "periods" in engine.errors["mavp"]
    assert [s.id for s in engine.specs] == ["mavp", "sma"]
    assert engine.values("mavp") == {} and engine.mode("mavp") == "error"
    assert set(engine.update(_bar(xrpeth, 100)).values) == {"sma"}
    engine.load(xrpeth.iloc[:100])  # the column is back: computed again
    assert engine.errors == {} and engine.mode("mavp") == "stream"
    with pytest.raises(KeyError):
        engine.values("nope")
    with pytest.raises(InputError, match="periods"):
        _loaded_add(xrpeth)


def _loaded_add(frame: pd.DataFrame) -> None:
    engine = Engine([default_spec("SMA", id="s")])
    engine.load(frame.drop(columns=["periods"]).iloc[:50])
    try:
        engine.add(default_spec("MAVP", id="m"))
    finally:
        assert [s.id for s in engine.specs] == ["s"]  # nothing added


def test_edits_reuse_or_recompute(xrpeth: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine([default_spec("RSI", id="r"), default_spec("SMA", id="s")])
    engine.load(xrpeth.iloc[:500])
    builds: list[str] = []
    original = Track.build

    def counting(self: Track, *args: Any, **kw: Any) -> None:
        builds.append(self.spec.id)
        original(self, *args, **kw)

    monkeypatch.setattr(Track, "build", counting)
    restyled = dataclasses.replace(engine.specs[0], pane=2, guides=(20.0, 80.0))
    engine.set_specs([default_spec("EMA", id="e"), engine.specs[1], restyled])
    assert builds == ["e"] and [s.id for s in engine.specs] == ["e", "s", "r"]
    assert engine.specs[2].pane == 2
    engine.add(dataclasses.replace(restyled, params={"timeperiod": 7}))
    assert builds == ["e", "r"]
    _assert_bits(engine.values("r")["real"], _talib("RSI", _columns(xrpeth, 500), {"timeperiod": 7})[0])
    engine.remove("s")
    assert [s.id for s in engine.specs] == ["e", "r"]


def test_prepared_indicator_catches_up_on_attach(xrpeth: pd.DataFrame) -> None:
    engine = Engine([default_spec("SMA", id="sma")])
    engine.load(xrpeth.iloc[:1000])
    snap = engine.snapshot()
    prepared = prepare(default_spec("MACD", id="macd"), snap)  # as on a worker thread
    for i in range(1000, 1040):  # meanwhile the live feed moves on
        engine.update(_partial(_bar(xrpeth, i)))
        engine.update(_bar(xrpeth, i))
    engine.update(_partial(_bar(xrpeth, 1040)))
    values = engine.attach(prepared)
    prefix = _columns(xrpeth, 1041)
    prefix["high"][1040] = prefix["low"][1040] = prefix["close"][1040] = prefix["open"][1040]
    prefix["volume"][1040] = 0.0
    for got, want in zip(values.values(), _talib("MACD", prefix), strict=True):
        _assert_bits(got, want)
    engine.update(_bar(xrpeth, 1040))
    engine.update(_bar(xrpeth, 1041))
    for got, want in zip(engine.values("macd").values(), _talib("MACD", _columns(xrpeth, 1042)), strict=True):
        _assert_bits(got, want)
    stale = prepare(default_spec("RSI", id="rsi"), engine.snapshot())
    engine.load(xrpeth.iloc[:10])
    with pytest.raises(StaleSnapshot):
        engine.attach(stale)


async def test_async_helpers_run_on_an_executor(xrpeth: pd.DataFrame) -> None:
    specs = [default_spec("RSI", id="rsi"), default_spec("BBANDS", id="bb")]
    values, engine = await asyncio.gather(compute_async(specs[0], xrpeth), build_engine_async(specs, xrpeth))
    cols = _columns(xrpeth)
    _assert_bits(values["real"], _talib("RSI", cols)[0])
    _assert_bits(engine.values("bb")["middleband"], _talib("BBANDS", cols)[1])
    prepared = await prepare_async(default_spec("ATR", id="atr"), engine.snapshot())
    _assert_bits(engine.attach(prepared)["real"], _talib("ATR", cols)[0])


def test_chart_series_payload(xrpeth: pd.DataFrame) -> None:
    frame = xrpeth.iloc[:400]
    times = frame["open_time"].to_numpy()
    bb = default_spec("BBANDS", id="bb")
    payload = chart_data.chart_series(bb, times, compute(bb, frame))
    mid = payload["outputs"]["middleband"]
    assert payload["id"] == "bb" and len(mid["time"]) == 400 - 19 and mid["time"][0] == times[19] // 1000
    doji = default_spec("CDLDOJI", id="doji")
    values = compute(doji, frame)["integer"]
    marks = chart_data.chart_series(doji, times, {"integer": values})["outputs"]["integer"]
    assert np.all(marks["value"] != 0) and len(marks["value"]) == np.count_nonzero(values)
    maxidx = default_spec("MAXINDEX", id="mi")
    indexes = chart_data.chart_series(maxidx, times, compute(maxidx, frame))["outputs"]["integer"]
    assert len(indexes["time"]) == 400 - 29  # TA-Lib's warm-up zeros are not drawn
    text = chart_data.dumps(payload)
    assert text.startswith(b'{"id":"bb","outputs":{"upperband":{"time":[') and b"NaN" not in text
    engine = Engine([bb])
    engine.load(frame)
    points = chart_data.chart_points(engine.update(_bar(xrpeth, 400)))
    assert set(points["bb"]) == {"upperband", "middleband", "lowerband"}
