"""Parameter grid search over any ``concurrent.futures`` executor. No Qt.

The grid (every combination of the listed values, in the order given) is cut into chunks;
each chunk is one task that runs its combinations one after the other on the same candles.
So the candles are pickled once per chunk, not per combination (about ``4 x workers``
chunks: enough to balance the load and to cancel quickly, few enough to pickle rarely). On
a Dask cluster (:func:`cluster_executor`) the candles are scattered to the workers once and
the tasks carry a reference.

Results come back in grid order whatever the executor, so a run with N workers equals the
serial run exactly (each backtest is deterministic).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from binmon.backtest.model import USER_STRATEGY, BacktestCancelled, BacktestRequest, Metrics, strategy_info
from binmon.backtest.runner import (
    Cancel,
    Progress,
    _cancel_check,
    run_backtest,
    select_candles,
    spawn_context,
)

__all__ = ["SORT_KEYS", "OptimizeRow", "cluster_executor", "expand_grid", "optimize", "sort_rows"]

#: Metrics a results table is usually sorted by (any Metrics field works).
SORT_KEYS = (
    "total_return_pct",
    "sharpe",
    "sortino",
    "max_drawdown_pct",
    "profit_factor",
    "win_rate_pct",
    "trades",
)


@dataclass(frozen=True)
class OptimizeRow:
    """One grid point: its parameters and the metrics of its backtest (``error``: why it could
    not run, e.g. ``"fast must be < slow"``; metrics None then)."""

    params: dict[str, Any]
    metrics: Metrics | None
    error: str = ""

    def value(self, key: str) -> float:
        """Metric ``key`` (a :class:`Metrics` field) for sorting; -inf for a row with an error."""
        return -math.inf if self.metrics is None else float(getattr(self.metrics, key))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "params": dict(self.params),
            "metrics": None if self.metrics is None else self.metrics.to_dict(),
            "error": self.error,
        }


def sort_rows(
    rows: Sequence[OptimizeRow], key: str = "total_return_pct", *, descending: bool = True
) -> list[OptimizeRow]:
    """``rows`` sorted by metric ``key`` (best first when ``descending``); rows with an error last.
    Stable: equal values keep grid order. ``max_drawdown_pct``: smaller is better, pass
    ``descending=False``."""
    ok = [r for r in rows if r.metrics is not None]
    bad = [r for r in rows if r.metrics is None]
    return sorted(ok, key=lambda r: r.value(key), reverse=descending) + bad


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of ``grid``'s values, the first parameter varying slowest.
    ValueError when a parameter has no value."""
    for name, values in grid.items():
        if len(values) == 0:
            raise ValueError(f"grid for {name} has no value")
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(grid[n] for n in names))]


def _run_chunk(
    request: BacktestRequest, candles: pd.DataFrame, combos: list[dict[str, Any]]
) -> list[OptimizeRow]:
    """Worker task: one backtest per combination on the same candles (module level: it pickles)."""
    rows: list[OptimizeRow] = []
    for params in combos:
        merged = {**request.params, **params}
        try:
            result = run_backtest(replace(request, params=merged), candles)
        except ValueError as exc:
            rows.append(OptimizeRow(params, None, str(exc)))
        else:
            rows.append(OptimizeRow(params, result.metrics))
    return rows


def _workers(executor: Executor) -> int:
    n = getattr(executor, "_max_workers", None)  # ProcessPool/ThreadPoolExecutor
    if isinstance(n, int) and n > 0:
        return n
    client = getattr(executor, "_client", None)  # distributed.ClientExecutor
    if client is not None:
        try:
            return max(1, sum(client.nthreads().values()))
        except Exception:  # a cluster that cannot tell: assume a few
            return 4
    return 4


def _scatter(executor: Executor, candles: pd.DataFrame) -> Any:
    """On a Dask executor: the candles sent once to every worker (a Future tasks can take);
    elsewhere the frame itself (pickled with each chunk)."""
    client = getattr(executor, "_client", None)
    if client is not None and hasattr(client, "scatter"):
        return client.scatter(candles, broadcast=True)
    return candles


def optimize(
    request: BacktestRequest,
    grid: Mapping[str, Sequence[Any]],
    candles: pd.DataFrame,
    executor: Executor | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    *,
    chunks: int | None = None,
) -> list[OptimizeRow]:
    """Backtest every combination of ``grid`` (param -> values; the other parameters come from
    ``request.params``) on ``candles``; rows in grid order (see :func:`sort_rows`).

    Combinations the strategy rejects (``fast >= slow``) come back as rows with ``error`` set
    and no run. ``executor``: any concurrent.futures executor (a ProcessPoolExecutor, a Dask
    ``client.get_executor()``); None: a spawn-context process pool of ``os.cpu_count()``
    workers made for this call. ``progress(fraction)`` after each chunk; ``cancel`` (Event-like
    or callable) stops submitting and raises BacktestCancelled (chunks already running finish
    in their worker). ValueError (one line) for an empty grid or a parameter the strategy lacks.
    """
    combos = expand_grid(grid)
    if not combos:
        raise ValueError("the grid is empty")
    if request.strategy != USER_STRATEGY:  # a misspelt name: say so before starting any process
        names = _param_names(request.strategy)
        bad = [n for n in grid if n not in names]
        if bad:
            raise ValueError(
                f"{request.strategy} has no parameter {bad[0]!r} (it has: {', '.join(sorted(names))})"
            )
    frame = select_candles(candles, request.start_ms, request.end_ms)  # fail early, pickle less
    own = executor is None
    ex: Executor = executor if executor is not None else ProcessPoolExecutor(mp_context=spawn_context())
    stop = _cancel_check(cancel)
    try:
        n_chunks = max(1, min(len(combos), chunks or 4 * _workers(ex)))
        size = math.ceil(len(combos) / n_chunks)
        parts = [combos[i : i + size] for i in range(0, len(combos), size)]
        data = _scatter(ex, frame)
        pending: dict[Future[list[OptimizeRow]], int] = {
            ex.submit(_run_chunk, request, data, part): k for k, part in enumerate(parts)
        }
        results: list[list[OptimizeRow]] = [[] for _ in parts]
        done_rows = 0
        while pending:
            finished, _ = wait(list(pending), timeout=0.1, return_when=FIRST_COMPLETED)
            if stop():
                for f in pending:
                    f.cancel()
                raise BacktestCancelled()
            for f in finished:
                k = pending.pop(f)
                results[k] = f.result()
                done_rows += len(results[k])
                if progress is not None:
                    progress(done_rows / len(combos))
        return [row for part in results for row in part]
    finally:
        if own:
            ex.shutdown(wait=True, cancel_futures=True)


def _param_names(strategy: str) -> set[str]:
    """The parameter names of built-in ``strategy`` (ValueError when unknown)."""
    return {p.name for p in strategy_info(strategy).params}


def cluster_executor(address: str, *, timeout_s: float = 10.0) -> Executor:
    """A ``concurrent.futures`` executor running on the Dask distributed scheduler at ``address``
    (``tcp://HOST:PORT``): ``distributed.Client(address).get_executor()``.

    Dask is an optional extra (``pip install 'binmon[cluster]'``); without it, or when the
    scheduler cannot be reached, ValueError with one line. The workers need binmon, backtrader
    and TA-Lib installed. Close it with ``executor.shutdown()`` and ``executor._client.close()``
    (or :func:`close_cluster_executor`).
    """
    try:
        from distributed import Client
    except ImportError:
        raise ValueError("--cluster needs Dask: pip install 'binmon[cluster]' (dask[distributed])") from None
    try:
        client = Client(address, timeout=timeout_s)
    except (OSError, TimeoutError) as exc:
        raise ValueError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    executor: Executor = client.get_executor()
    return executor


def close_cluster_executor(executor: Executor) -> None:
    """Shut down a :func:`cluster_executor` executor and close its client connection."""
    executor.shutdown(wait=True)
    client = getattr(executor, "_client", None)
    if client is not None:
        client.close()
