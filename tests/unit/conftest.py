"""Fixtures shared by the pure unit tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from binmon.core.models import Kline

XRPETH_1M = "XRPETH-1m-2019-10-11_13.csv"
XRPETH_TRADES = "XRPETH-trades-2019-10-11_13.csv"


@pytest.fixture(scope="session")
def xrpeth_1m_rows(real_dir: Path) -> list[list[str]]:
    """The 2,469 real XRPETH 1m klines as the 12 raw CSV strings per row (archive layout)."""
    rows = [line.split(",") for line in (real_dir / XRPETH_1M).read_text().splitlines() if line]
    assert rows and all(len(r) == 12 for r in rows), f"{XRPETH_1M}: expected 12 columns"
    return rows


@pytest.fixture(scope="session")
def xrpeth_1m(xrpeth_1m_rows: list[list[str]]) -> list[Kline]:
    """The real XRPETH 1m klines as closed :class:`Kline` values (no trade ids: the archive has none)."""
    return [
        Kline(
            symbol="XRPETH",
            interval="1m",
            open_time=int(r[0]),
            open=float(r[1]),
            high=float(r[2]),
            low=float(r[3]),
            close=float(r[4]),
            volume=float(r[5]),
            close_time=int(r[6]),
            quote_volume=float(r[7]),
            trades=int(r[8]),
            taker_buy_base=float(r[9]),
            taker_buy_quote=float(r[10]),
        )
        for r in xrpeth_1m_rows
    ]


@pytest.fixture(scope="session")
def xrpeth_trades(real_dir: Path) -> dict[str, np.ndarray]:
    """The 12,477 real XRPETH trades as numpy columns: id, price, qty, quote_qty, time_ms, buyer_is_maker."""
    cols: dict[str, list[str]] = {k: [] for k in ("id", "price", "qty", "quote_qty", "time_ms", "maker")}
    for line in (real_dir / XRPETH_TRADES).read_text().splitlines():
        tid, price, qty, quote, t, maker, _best = line.split(",")
        for key, value in zip(cols, (tid, price, qty, quote, t, maker), strict=True):
            cols[key].append(value)
    if not set(cols["maker"]) <= {"True", "False"}:
        raise AssertionError(f"{XRPETH_TRADES}: unexpected is_buyer_maker values {set(cols['maker'])}")
    return {
        "id": np.array(cols["id"], dtype=np.int64),
        "price": np.array(cols["price"], dtype=np.float64),
        "qty": np.array(cols["qty"], dtype=np.float64),
        "quote_qty": np.array(cols["quote_qty"], dtype=np.float64),
        "time_ms": np.array(cols["time_ms"], dtype=np.int64),
        "maker": np.array([m == "True" for m in cols["maker"]], dtype=bool),
    }
