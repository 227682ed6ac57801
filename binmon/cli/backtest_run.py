"""The backtest commands' work (options: :mod:`binmon.cli.backtest_cmd`).

Reuses the history commands' store selection, progress printer, Ctrl-C handling and atomic
writes (:mod:`binmon.cli.history_run`) and the app's downloader: one download path.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from binmon.backtest.data import load_candles, missing_count, missing_ranges
from binmon.backtest.model import (
    USER_STRATEGY,
    BacktestCancelled,
    BacktestRequest,
    BacktestResult,
    Metrics,
)
from binmon.backtest.strategies import StrategyFileError
from binmon.cli.common import CliError
from binmon.cli.history_run import _cancel_on_sigint, _store_path, _write_atomically
from binmon.history.dates import DateError, format_ms, parse_range
from binmon.history.ranges import SeriesKey
from binmon.history.store import StoreError


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# ---------------------------------------------------------------- parsing


def _value(text: str) -> Any:
    """A ``--param`` value: JSON objects/arrays as JSON (rule conditions), the rest as text
    (the strategy's own validation converts and checks numbers)."""
    t = text.strip()
    if t[:1] in "{[":
        try:
            return json.loads(t)
        except json.JSONDecodeError as exc:
            raise CliError(f"bad JSON in --param value: {exc.msg} at column {exc.colno}") from None
    return t


def _pairs(items: Sequence[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise CliError(f"{option} {item!r}: expected NAME=VALUE")
        out[name.strip()] = value
    return out


def _number(text: str, what: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise CliError(f"{what}: not a number: {text!r}") from None
    if not math.isfinite(x):
        raise CliError(f"{what}: not a finite number: {text!r}")
    return x


def parse_grid_values(name: str, spec: str) -> list[Any]:
    """``FROM:TO:STEP`` (TO included when the steps reach it) or ``a,b,c`` -> values; numbers stay
    ints when every part is an int. CliError (one line) otherwise."""
    spec = spec.strip()
    if ":" in spec:
        parts = spec.split(":")
        if len(parts) != 3:
            raise CliError(f"--grid {name}={spec}: expected FROM:TO:STEP")
        lo, hi, step = (_number(p, f"--grid {name}") for p in parts)
        if step <= 0 or hi < lo:
            raise CliError(f"--grid {name}={spec}: need FROM <= TO and STEP > 0")
        count = math.floor((hi - lo) / step + 1e-9) + 1
        if count > 10_000:
            raise CliError(f"--grid {name}={spec}: {count} values is too many (at most 10000)")
        as_int = all(float(p).is_integer() for p in parts)
        values = [lo + i * step for i in range(count)]
        return [int(v) if as_int else round(v, 12) for v in values]
    texts = [v.strip() for v in spec.split(",") if v.strip()]
    if not texts:
        raise CliError(f"--grid {name}: no value")
    out: list[Any] = []
    for t in texts:
        x = _number(t, f"--grid {name}")
        out.append(int(x) if x.is_integer() and "." not in t and "e" not in t.lower() else x)
    return out


def _sizing(text: str) -> tuple[str, float]:
    t = text.strip()
    if t.endswith("%"):
        return "percent", _number(t[:-1], "--size")
    return "fixed", _number(t, "--size")


def _request(args: argparse.Namespace, start_ms: int, end_ms: int) -> BacktestRequest:
    sizing, size = _sizing(args.size)
    params = {k: _value(v) for k, v in _pairs(args.param, "--param").items()}
    strategy_file = None
    strategy = args.strategy
    if args.strategy_file is not None:
        strategy, strategy_file = USER_STRATEGY, str(args.strategy_file)
    try:
        req = BacktestRequest(
            symbol=args.symbol.strip().upper(),
            interval=args.interval,
            start_ms=start_ms,
            end_ms=end_ms,
            market=args.market,
            strategy=strategy,
            params=params,
            cash=args.cash,
            commission=args.commission,
            slippage=args.slippage,
            sizing=sizing,  # type: ignore[arg-type]
            size=size,
            direction="long_short" if args.long_short else "long",
            strategy_file=strategy_file,
        )
        if strategy != USER_STRATEGY:
            from binmon.backtest.model import validate_params

            validate_params(strategy, params)  # a bad parameter: say so before any download
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return req


# ---------------------------------------------------------------- candles


def _range(args: argparse.Namespace) -> tuple[int, int]:
    now = _now_ms()
    try:
        start_ms, end_ms = parse_range(args.start, args.end, now)
    except DateError as exc:
        raise CliError(str(exc)) from None
    assert start_ms is not None
    return start_ms, end_ms if end_ms is not None else now


def _download(args: argparse.Namespace, key: SeriesKey, start_ms: int, end_ms: int) -> None:
    """Fetch what the store lacks of ``key`` in the range, exactly as ``binmon download`` does."""
    from binmon.binance.errors import BinanceError
    from binmon.binance.rest import RestClient
    from binmon.cli.common import check_symbol, endpoints
    from binmon.cli.history_run import _ProgressPrinter
    from binmon.history.archive_client import ArchiveClient
    from binmon.history.download import Downloader, DownloadRequest, store_clock
    from binmon.history.store import CandleStore

    if key.market != "spot":
        raise CliError("--download fetches spot candles only; use --market spot")
    with endpoints(args) as ep, RestClient(ep.rest) as rest, ArchiveClient(ep.archive) as archive:
        check_symbol(rest, key.symbol, require_trading=False)
        try:
            store = CandleStore.open(_store_path(args), clock=store_clock(rest))
        except StoreError as exc:
            raise CliError(str(exc)) from None
        with store:
            dl = Downloader(store, rest, archive)
            printer = _ProgressPrinter(sys.stderr)
            cancel = threading.Event()
            with _cancel_on_sigint(cancel):
                try:
                    result = dl.run(DownloadRequest(key, start_ms, end_ms), progress=printer, cancel=cancel)
                except (BinanceError, StoreError) as exc:
                    printer.finish()
                    raise CliError(f"download failed: {exc}") from None
            printer.finish()
            if result.cancelled:
                raise CliError("download cancelled; the candles fetched so far are kept")
            for problem in result.problems:
                print(f"binmon: warning: {problem}", file=sys.stderr)
            print(f"binmon: downloaded {result.written} {key.symbol} {key.interval} candles", file=sys.stderr)


def _candles(args: argparse.Namespace, req: BacktestRequest) -> Any:
    """The request's candles from the store, downloading what is missing with ``--download``."""
    try:
        key = SeriesKey(req.market, req.symbol, req.interval)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    path = _store_path(args)
    try:
        gaps = missing_ranges(
            path, req.symbol, req.interval, req.start_ms, req.end_ms, req.market, now_ms=_now_ms()
        )
        if gaps and args.download and not args.allow_gaps:
            _download(args, key, req.start_ms, req.end_ms)
            gaps = missing_ranges(
                path, req.symbol, req.interval, req.start_ms, req.end_ms, req.market, now_ms=_now_ms()
            )
        if gaps and not args.download and not args.allow_gaps:
            n = missing_count(gaps, req.interval)
            first = format_ms(gaps[0].start).removesuffix(" UTC")
            raise CliError(
                f"{n} {req.symbol} {req.interval} candles are missing from the store (from {first}, in "
                f"{len(gaps)} gap{'s' if len(gaps) != 1 else ''}); add --download (or --allow-gaps), or run "
                f"`binmon download {req.symbol} --interval {req.interval} --start {args.start}"
                f"{' --end ' + args.end if args.end else ''}` first"
            )
        if not path.exists():
            raise CliError(f"no candle store at {path}")
        frame = load_candles(path, req.symbol, req.interval, req.start_ms, req.end_ms, req.market)
    except StoreError as exc:
        raise CliError(str(exc)) from None
    if frame.empty:
        raise CliError(
            f"no {req.symbol} {req.interval} candles in the requested range (nothing traded there)"
        )
    return frame


# ---------------------------------------------------------------- output


def _fmt(x: float, digits: int = 2) -> str:
    if math.isinf(x):
        return "inf"
    return f"{x:,.{digits}f}"


def metrics_table(m: Metrics, bars: int, interval: str) -> list[tuple[str, str]]:
    """The rows of the printed metrics table."""
    from binmon.core.intervals import interval_ms

    days = m.max_drawdown_ms / 86_400_000
    dd_span = f"{m.max_drawdown_bars} bars ({days:,.1f} days)" if interval_ms(interval) else ""
    return [
        ("Net profit", _fmt(m.net_profit)),
        ("Total return", f"{_fmt(m.total_return_pct)} %"),
        ("Buy and hold", f"{_fmt(m.buy_hold_return_pct)} %"),
        ("CAGR", f"{_fmt(m.cagr_pct)} %"),
        ("Sharpe", _fmt(m.sharpe)),
        ("Sortino", _fmt(m.sortino)),
        ("Max drawdown", f"{_fmt(m.max_drawdown_pct)} %"),
        ("Max drawdown duration", dd_span),
        ("Trades", str(m.trades)),
        ("Win rate", f"{_fmt(m.win_rate_pct, 1)} %"),
        ("Profit factor", _fmt(m.profit_factor)),
        ("Average trade", f"{_fmt(m.avg_trade)} ({_fmt(m.avg_trade_pct)} %)"),
        ("Exposure", f"{_fmt(m.exposure_pct, 1)} %"),
        ("Final equity", _fmt(m.final_equity)),
        ("Bars", f"{bars:,}"),
    ]


def _print_result(res: BacktestResult, last_trades: int) -> None:
    r = res.request
    name = r.strategy_file if r.strategy == USER_STRATEGY else r.strategy
    params = ", ".join(f"{k}={v}" for k, v in r.params.items() if not isinstance(v, dict))
    print(
        f"{r.symbol} {r.interval} {format_ms(int(res.times[0]))} .. {format_ms(int(res.times[-1]))}: "
        f"{name}{f' ({params})' if params else ''}, {r.direction.replace('_', '/')}"
    )
    if r.strategy == "rule":
        from binmon.alerts.rules import describe_condition
        from binmon.backtest.rule import condition_from_value

        for what in ("entry", "exit"):
            print(f"  {what}: {describe_condition(condition_from_value(r.params[what], what))}")
    rows = metrics_table(res.metrics, res.bars, r.interval)
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k.ljust(width)}  {v}")
    shown = res.trades[-last_trades:] if last_trades > 0 else ()
    if shown:
        print(f"\nLast {len(shown)} of {len(res.trades)} trades:")
        print(
            "  SIDE   ENTRY (UTC)        EXIT (UTC)         ENTRY PRICE    EXIT PRICE     PNL          PNL %"
        )
        for t in shown:
            print(
                f"  {t.side:<6} {format_ms(t.entry_time_ms)[:16]:<18} {format_ms(t.exit_time_ms)[:16]:<18} "
                f"{t.entry_price:<14.8g} {t.exit_price:<14.8g} {t.pnl:<12,.2f} {t.pnl_pct:7.2f}"
                f"{'  (open)' if t.is_open else ''}"
            )
    for w in res.warnings:
        print(f"binmon: warning: {w}", file=sys.stderr)
    print(f"\n{res.bars:,} bars in {res.elapsed_s:.2f} s", file=sys.stderr)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=1, allow_nan=False) + "\n"

    def write(f: Any) -> int:
        f.write(text)
        return 1

    _write_atomically(path, write)
    print(f"binmon: wrote {path}", file=sys.stderr)


# ---------------------------------------------------------------- commands


def run_backtest_cmd(args: argparse.Namespace) -> int:
    """Entry point of ``binmon backtest``: returns the exit code."""
    from binmon.backtest.runner import run_backtest

    start_ms, end_ms = _range(args)
    req = _request(args, start_ms, end_ms)
    frame = _candles(args, req)
    cancel = threading.Event()
    try:
        with _cancel_on_sigint(cancel):
            res = run_backtest(req, frame, cancel=cancel)
    except BacktestCancelled:
        print("binmon: cancelled", file=sys.stderr)
        return 130
    except (ValueError, StrategyFileError) as exc:
        raise CliError(str(exc)) from None
    _print_result(res, args.trades)
    if args.json is not None:
        _write_json(args.json, res.to_dict(curves=False))
    return 0


def _executor(args: argparse.Namespace) -> tuple[Executor, Any]:
    """(executor, closer) for ``--workers`` / ``--cluster``."""
    from binmon.backtest.optimize import close_cluster_executor, cluster_executor
    from binmon.backtest.runner import spawn_context

    if args.cluster:
        if args.workers is not None:
            raise CliError("--workers and --cluster exclude each other (the cluster has its own workers)")
        try:
            ex = cluster_executor(args.cluster)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        return ex, lambda: close_cluster_executor(ex)
    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    if workers < 1:
        raise CliError("--workers must be at least 1")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=spawn_context())
    return pool, lambda: pool.shutdown(wait=True, cancel_futures=True)


def run_optimize_cmd(args: argparse.Namespace) -> int:
    """Entry point of ``binmon optimize``: returns the exit code."""
    from binmon.backtest.optimize import expand_grid, optimize, sort_rows

    start_ms, end_ms = _range(args)
    req = _request(args, start_ms, end_ms)
    grid = {k: parse_grid_values(k, v) for k, v in _pairs(args.grid, "--grid").items()}
    total = len(expand_grid(grid))
    if total > 100_000:
        raise CliError(f"the grid has {total} combinations; at most 100000")
    frame = _candles(args, req)
    executor, close = _executor(args)
    cancel = threading.Event()
    t0 = time.perf_counter()
    try:
        with _cancel_on_sigint(cancel):
            rows = optimize(req, grid, frame, executor, progress=_Progress(total), cancel=cancel)
    except BacktestCancelled:
        print("\nbinmon: cancelled", file=sys.stderr)
        return 130
    except ValueError as exc:
        raise CliError(str(exc)) from None
    finally:
        close()
    elapsed = time.perf_counter() - t0
    ranked = sort_rows(rows, args.sort, descending=args.sort != "max_drawdown_pct")
    _print_rows(ranked[: args.top], list(grid), args.sort)
    skipped = sum(1 for r in rows if r.metrics is None)
    note = f" ({skipped} invalid combinations skipped)" if skipped else ""
    print(f"\n{len(rows)} combinations x {len(frame):,} bars in {elapsed:.1f} s{note}", file=sys.stderr)
    if args.json is not None:
        _write_json(
            args.json,
            {
                "request": req.to_dict(),
                "grid": grid,
                "sort": args.sort,
                "elapsed_s": elapsed,
                "rows": [r.to_dict() for r in ranked],
            },
        )
    return 0


class _Progress:
    """Optimisation progress on stderr, only on a terminal."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.tty = sys.stderr.isatty()

    def __call__(self, fraction: float) -> None:
        if self.tty:
            sys.stderr.write(f"\roptimising: {100 * fraction:5.1f}% of {self.total} combinations")
            sys.stderr.flush()
            if fraction >= 1:
                sys.stderr.write("\n")


def _print_rows(rows: Sequence[Any], names: list[str], sort: str) -> None:
    cols = [*names, "return %", "sharpe", "max dd %", "trades", "win %", "pf"]
    table = []
    for r in rows:
        p = [str(r.params[n]) for n in names]
        m = r.metrics
        if m is None:
            table.append([*p, r.error, "", "", "", "", ""])
            continue
        table.append(
            [
                *p,
                _fmt(m.total_return_pct),
                _fmt(m.sharpe),
                _fmt(m.max_drawdown_pct),
                str(m.trades),
                _fmt(m.win_rate_pct, 1),
                _fmt(m.profit_factor),
            ]
        )
    widths = [max(len(c), *(len(row[i]) for row in table)) if table else len(c) for i, c in enumerate(cols)]
    print(f"Best {len(rows)} by {sort}:")
    for row in (cols, *table):
        print("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
