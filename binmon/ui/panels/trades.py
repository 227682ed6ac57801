"""Trades panel: the last N trades of the charted symbol, newest on top.

A busy symbol sends thousands of ``@trade`` events a second, delivered here in batches;
the model keeps a bounded deque and does one insert (or one reset for a batch larger than
the window), so the cost per batch is independent of how many rows are visible.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from datetime import tzinfo
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QVBoxLayout, QWidget

from binmon.core.models import SymbolInfo, TradeEvent, decimals_of
from binmon.ui.format import format_price, format_qty, format_time_ms
from binmon.ui.panels.watchlist import DEFAULT_PRECISION, DOWN_COLOR, UP_COLOR

COL_TIME, COL_PRICE, COL_SIZE = range(3)
HEADERS = ("Time", "Price", "Size")
DEFAULT_MAX_TRADES = 200

_Index = QModelIndex | QPersistentModelIndex


class TradesModel(QAbstractTableModel):
    """Row 0 is the newest trade; at most ``max_rows`` rows."""

    def __init__(self, max_rows: int = DEFAULT_MAX_TRADES, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        if max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {max_rows}")
        self._rows: deque[TradeEvent] = deque(maxlen=max_rows)
        self._tz: tzinfo | None = None
        self._price_decimals = DEFAULT_PRECISION
        self._qty_decimals: int | None = None

    @property
    def max_rows(self) -> int:
        """The most trades kept."""
        return self._rows.maxlen or DEFAULT_MAX_TRADES

    def trades(self) -> list[TradeEvent]:
        """The kept trades, newest first."""
        return list(self._rows)

    def add_trades(self, trades: Sequence[TradeEvent]) -> None:
        """Add trades given oldest first (as they arrive); keeps the newest ``max_rows``."""
        n = len(trades)
        if n == 0:
            return
        cap = self.max_rows
        if n >= cap // 2:
            # A big burst replaces most rows anyway: one reset is cheaper than insert + remove.
            self.beginResetModel()
            self._rows.extendleft(trades[-cap:])
            self.endResetModel()
            return
        overflow = len(self._rows) + n - cap
        if overflow > 0:
            # Drop the oldest rows at the bottom first, so the insert below never exceeds maxlen.
            self.beginRemoveRows(QModelIndex(), len(self._rows) - overflow, len(self._rows) - 1)
            for _ in range(overflow):
                self._rows.pop()
            self.endRemoveRows()
        self.beginInsertRows(QModelIndex(), 0, n - 1)
        self._rows.extendleft(trades)  # extendleft reverses: the last (newest) ends up in row 0
        self.endInsertRows()

    def clear(self) -> None:
        """Forget every trade (symbol switch)."""
        self.beginResetModel()
        self._rows.clear()
        self.endResetModel()

    def set_timezone(self, tz: tzinfo | None) -> None:
        """Zone the Time column is shown in (None = the machine's local zone)."""
        self._tz = tz
        self._repaint(COL_TIME)

    def set_precision(self, price_decimals: int, qty_decimals: int | None = None) -> None:
        """Decimals of prices and sizes (sizes trimmed when ``qty_decimals`` is None)."""
        self._price_decimals = price_decimals
        self._qty_decimals = qty_decimals
        self._repaint(COL_PRICE, COL_SIZE)

    def _repaint(self, first: int, last: int | None = None) -> None:
        if self._rows:
            end = first if last is None else last
            self.dataChanged.emit(self.index(0, first), self.index(len(self._rows) - 1, end), [])

    # ------------------------------------------------------------- Qt model API

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(HEADERS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(
                (Qt.AlignmentFlag.AlignLeft if section == COL_TIME else Qt.AlignmentFlag.AlignRight)
                | Qt.AlignmentFlag.AlignVCenter
            )
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        t = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == COL_TIME:
                return format_time_ms(t.trade_time, self._tz)
            if col == COL_PRICE:
                return format_price(t.price, self._price_decimals)
            return format_qty(t.qty, self._qty_decimals)
        if role == Qt.ItemDataRole.ForegroundRole:
            # buyer_is_maker means the seller hit the bid: a sell-side aggressor, shown red.
            return DOWN_COLOR if t.buyer_is_maker else UP_COLOR
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(
                (Qt.AlignmentFlag.AlignLeft if col == COL_TIME else Qt.AlignmentFlag.AlignRight)
                | Qt.AlignmentFlag.AlignVCenter
            )
        if role == Qt.ItemDataRole.ToolTipRole:
            side = "sell (seller aggressor)" if t.buyer_is_maker else "buy (buyer aggressor)"
            return f"trade {t.trade_id}, {side}"
        return None


class TradesPanel(QWidget):
    """A read-only table of the latest trades (see :class:`TradesModel`)."""

    def __init__(self, max_trades: int = DEFAULT_MAX_TRADES, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = TradesModel(max_trades, self)
        self.view = QTableView(self)
        self.view.setModel(self.model)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.view.setShowGrid(False)
        self.view.setWordWrap(False)
        self.view.verticalHeader().hide()
        # Fixed row heights: a model reset must not make the view measure every row.
        self.view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.view.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 4)
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.view.horizontalHeader().setHighlightSections(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.view)

    def add_trades(self, trades: Sequence[TradeEvent]) -> None:
        """Add a batch of trades, oldest first; only the newest ``max_trades`` are kept."""
        self.model.add_trades(trades)

    def clear(self) -> None:
        """Drop every trade (call on a symbol switch, before the new symbol's trades arrive)."""
        self.model.clear()

    def trades(self) -> list[TradeEvent]:
        """The shown trades, newest first."""
        return self.model.trades()

    def set_timezone(self, tz: tzinfo | None) -> None:
        """Show times in ``tz`` (None = local time)."""
        self.model.set_timezone(tz)

    def set_precision(self, price_decimals: int, qty_decimals: int | None = None) -> None:
        """Price decimals (from tickSize) and size decimals (from stepSize, None = trimmed)."""
        self.model.set_precision(price_decimals, qty_decimals)

    def set_symbol_info(self, info: SymbolInfo) -> None:
        """Take both precisions from ``info`` (tickSize and stepSize)."""
        self.set_precision(info.price_precision, decimals_of(info.step_size))
