"""The optimisation view's table model and grid values."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtWidgets import QWidget

from binmon.backtest.optimize import SORT_KEYS, OptimizeRow

#: Metrics where smaller is better.
LOWER_IS_BETTER = {"max_drawdown_pct", "max_drawdown_bars", "max_drawdown_ms"}
METRIC_TITLES = {
    "total_return_pct": "Return %",
    "sharpe": "Sharpe",
    "sortino": "Sortino",
    "max_drawdown_pct": "Max DD %",
    "profit_factor": "Profit factor",
    "win_rate_pct": "Win rate %",
    "trades": "Trades",
}
_Index = QModelIndex | QPersistentModelIndex


def grid_values(lo: float, hi: float, step: float, *, integer: bool) -> list[float]:
    """``lo, lo+step, ... <= hi`` (ints for an int parameter); ``[lo]`` when ``step <= 0`` or
    ``hi <= lo``."""
    if step <= 0 or hi <= lo:
        return [int(lo) if integer else lo]
    n = math.floor((hi - lo) / step + 1e-9) + 1
    values = [lo + i * step for i in range(n)]
    if integer:
        return list(dict.fromkeys(round(v) for v in values))
    return [round(v, 10) for v in values]


class RowsModel(QAbstractTableModel):
    """Optimisation rows: parameter columns, then metric columns (errors shown in the first metric)."""

    SORT_ROLE = Qt.ItemDataRole.UserRole + 1

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[OptimizeRow] = []
        self.params: list[str] = []

    def set_rows(self, rows: Sequence[OptimizeRow], params: Sequence[str]) -> None:
        """Show ``rows``; ``params``: the parameter columns."""
        self.beginResetModel()
        self.rows, self.params = list(rows), list(params)
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.params) + len(SORT_KEYS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role != Qt.ItemDataRole.DisplayRole or orientation != Qt.Orientation.Horizontal:
            return None
        if section < len(self.params):
            return self.params[section]
        return METRIC_TITLES.get(SORT_KEYS[section - len(self.params)], SORT_KEYS[section - len(self.params)])

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, col = self.rows[index.row()], index.column()
        if col < len(self.params):
            v = row.params.get(self.params[col])
            if role == self.SORT_ROLE:
                return float(v) if isinstance(v, int | float) else str(v)
            return str(v) if role == Qt.ItemDataRole.DisplayRole else None
        key = SORT_KEYS[col - len(self.params)]
        if role == self.SORT_ROLE:
            v = row.value(key)
            return v if math.isfinite(v) or v > 0 else -1e300
        if role == Qt.ItemDataRole.DisplayRole:
            if row.metrics is None:
                return row.error if col == len(self.params) else ""
            v = float(getattr(row.metrics, key))
            if math.isinf(v):
                return "∞"
            return f"{int(v):,}" if key == "trades" else f"{v:.2f}"
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None
