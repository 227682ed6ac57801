"""Watchlist panel: the user's symbols with last price, 24 h change and quote volume.

Fed from ``!miniTicker@arr``, which carries up to ~2,000 tickers every second while the
list holds a few dozen, so :meth:`WatchlistModel.update_tickers` is one dict lookup per
ticker and signals only the cells whose text actually changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    QStringListModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QAction, QColor, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCompleter,
    QHeaderView,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from binmon.core.models import MiniTicker, SymbolInfo
from binmon.ui.format import format_pct, format_price, format_volume

#: Role carrying the raw sortable value (str for the symbol, float for the numbers).
RAW_ROLE = Qt.ItemDataRole.UserRole + 1

COL_SYMBOL, COL_LAST, COL_CHANGE, COL_VOLUME = range(4)
HEADERS = ("Symbol", "Last", "24h %", "Volume")

#: TradingView's up/down colours: readable on both the dark and the light theme.
UP_COLOR = QColor("#26a69a")
DOWN_COLOR = QColor("#ef5350")
#: Precision used until exchangeInfo says otherwise (Binance's wire precision).
DEFAULT_PRECISION = 8
#: Sort value of a row without a ticker yet: last in a descending sort.
_NO_VALUE = float("-inf")

_Index = QModelIndex | QPersistentModelIndex


class WatchlistModel(QAbstractTableModel):
    """Rows are the listed symbols; each keeps its latest :class:`MiniTicker`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._symbols: list[str] = []
        self._row_of: dict[str, int] = {}
        self._tickers: dict[str, MiniTicker] = {}
        # +1 / -1: direction of the last price move, so the Last cell shows ticks up or down.
        self._direction: dict[str, int] = {}
        self._precision: dict[str, int] = {}

    # ------------------------------------------------------------- list editing

    def symbols(self) -> list[str]:
        """The listed symbols in list order."""
        return list(self._symbols)

    def set_symbols(self, symbols: Iterable[str]) -> None:
        """Replace the list (upper-cased, duplicates dropped); tickers of kept symbols stay."""
        clean = list(dict.fromkeys(s.strip().upper() for s in symbols if s.strip()))
        self.beginResetModel()
        self._symbols = clean
        self._row_of = {s: i for i, s in enumerate(clean)}
        keep = set(clean)
        self._tickers = {s: t for s, t in self._tickers.items() if s in keep}
        self._direction = {s: d for s, d in self._direction.items() if s in keep}
        self.endResetModel()

    def add_symbol(self, symbol: str) -> bool:
        """Append ``symbol``; False when it is already listed."""
        symbol = symbol.strip().upper()
        if not symbol or symbol in self._row_of:
            return False
        row = len(self._symbols)
        self.beginInsertRows(QModelIndex(), row, row)
        self._symbols.append(symbol)
        self._row_of[symbol] = row
        self.endInsertRows()
        return True

    def remove_symbols(self, symbols: Iterable[str]) -> list[str]:
        """Remove the given symbols; returns those that were listed."""
        rows = sorted({self._row_of[s] for s in symbols if s in self._row_of}, reverse=True)
        removed = []
        for row in rows:
            self.beginRemoveRows(QModelIndex(), row, row)
            sym = self._symbols.pop(row)
            self._tickers.pop(sym, None)
            self._direction.pop(sym, None)
            self.endRemoveRows()
            removed.append(sym)
        self._row_of = {s: i for i, s in enumerate(self._symbols)}
        return removed

    def set_precisions(self, precisions: Mapping[str, int]) -> None:
        """Price decimals per symbol (from tickSize); repaints the Last column."""
        self._precision = dict(precisions)
        if self._symbols:
            self.dataChanged.emit(
                self.index(0, COL_LAST),
                self.index(len(self._symbols) - 1, COL_LAST),
                [Qt.ItemDataRole.DisplayRole],
            )

    # ------------------------------------------------------------- live updates

    def update_tickers(self, tickers: Iterable[MiniTicker]) -> int:
        """Take the tickers of listed symbols, ignore the rest; returns how many rows changed.

        Each changed row emits one ``dataChanged`` spanning only its changed columns, so the
        view repaints (and the sort proxy re-sorts) just what moved.
        """
        row_of = self._row_of
        old_tickers = self._tickers
        changed = 0
        for t in tickers:
            row = row_of.get(t.symbol)
            if row is None:
                continue
            old = old_tickers.get(t.symbol)
            old_tickers[t.symbol] = t
            if old is None:
                first, last = COL_LAST, COL_VOLUME
            else:
                cols = []
                if t.close != old.close:
                    self._direction[t.symbol] = 1 if t.close > old.close else -1
                    cols.append(COL_LAST)
                if t.change_pct != old.change_pct:
                    cols.append(COL_CHANGE)
                if t.quote_volume != old.quote_volume:
                    cols.append(COL_VOLUME)
                if not cols:
                    continue
                first, last = cols[0], cols[-1]
            changed += 1
            self.dataChanged.emit(self.index(row, first), self.index(row, last), [])
        return changed

    def ticker(self, symbol: str) -> MiniTicker | None:
        """The latest ticker of a listed symbol, if one arrived."""
        return self._tickers.get(symbol)

    # ------------------------------------------------------------- Qt model API

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._symbols)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and 0 <= section < len(HEADERS)
        ):
            return HEADERS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.TextAlignmentRole:
            # Headers aligned like their cells: text left, numbers right.
            return int(
                (Qt.AlignmentFlag.AlignLeft if section == COL_SYMBOL else Qt.AlignmentFlag.AlignRight)
                | Qt.AlignmentFlag.AlignVCenter
            )
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        sym = self._symbols[index.row()]
        col = index.column()
        t = self._tickers.get(sym)
        if role == Qt.ItemDataRole.DisplayRole:
            if col == COL_SYMBOL:
                return sym
            if t is None:
                return "—"
            if col == COL_LAST:
                return format_price(t.close, self._precision.get(sym, DEFAULT_PRECISION))
            if col == COL_CHANGE:
                return format_pct(t.change_pct)
            return format_volume(t.quote_volume)
        if role == RAW_ROLE:
            if col == COL_SYMBOL:
                return sym
            if t is None:
                return _NO_VALUE
            return (t.close, t.change_pct, t.quote_volume)[col - 1]
        if role == Qt.ItemDataRole.ForegroundRole and t is not None:
            if col == COL_CHANGE and t.change_pct:
                return UP_COLOR if t.change_pct > 0 else DOWN_COLOR
            if col == COL_LAST and sym in self._direction:
                return UP_COLOR if self._direction[sym] > 0 else DOWN_COLOR
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole and col != COL_SYMBOL:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and t is not None:
            prec = self._precision.get(sym, DEFAULT_PRECISION)
            return (
                f"{sym}\nopen {format_price(t.open, prec)}  high {format_price(t.high, prec)}  "
                f"low {format_price(t.low, prec)}\nbase volume {format_volume(t.volume)}"
            )
        return None


class _WatchView(QTableView):
    """Table view that turns Delete/Backspace into a removal request and Enter into activation."""

    deleteRequested = Signal()
    activateRequested = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.deleteRequested.emit()
            event.accept()
        elif event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.activateRequested.emit()
            event.accept()
        else:
            super().keyPressEvent(event)


class WatchlistPanel(QWidget):
    """The watchlist: a sortable table plus a line edit (with completion) to add symbols.

    Signals: ``symbolActivated(str)`` on double-click / Enter on a row; ``symbolsChanged(list)``
    whenever the user adds or removes symbols (not on :meth:`set_symbols`).
    """

    symbolActivated = Signal(str)
    symbolsChanged = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = WatchlistModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(RAW_ROLE)
        self._known: dict[str, SymbolInfo] = {}

        self.add_edit = QLineEdit(self)
        self.add_edit.setPlaceholderText("Add symbol…")
        self.add_edit.setClearButtonEnabled(True)
        self._completion = QStringListModel(self)
        completer = QCompleter(self._completion, self.add_edit)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.add_edit.setCompleter(completer)
        self.add_edit.returnPressed.connect(self._add_from_edit)
        self.add_edit.textEdited.connect(self._clear_error)

        self.view = _WatchView(self)
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(COL_SYMBOL, Qt.SortOrder.AscendingOrder)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setAlternatingRowColors(True)
        self.view.setShowGrid(False)
        self.view.setWordWrap(False)
        self.view.verticalHeader().hide()
        # Fixed row heights: no per-row size hint queries when thousands of updates arrive.
        self.view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.view.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setHighlightSections(False)
        self.view.doubleClicked.connect(self._activate_index)
        self.view.deleteRequested.connect(self.remove_selected)
        self.view.activateRequested.connect(lambda: self._activate_index(self.view.currentIndex()))

        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.open_action = QAction("Open on chart", self.view)
        self.open_action.triggered.connect(lambda: self._activate_index(self.view.currentIndex()))
        self.remove_action = QAction("Remove from watchlist", self.view)
        self.remove_action.triggered.connect(self.remove_selected)
        self.view.addActions([self.open_action, self.remove_action])

        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        layout.addWidget(self.add_edit)
        layout.addWidget(self.view)

    # ------------------------------------------------------------- public API

    def symbols(self) -> list[str]:
        """The listed symbols in the order they were added."""
        return self.model.symbols()

    def set_symbols(self, symbols: list[str]) -> None:
        """Replace the list programmatically (restoring config); emits nothing."""
        self.model.set_symbols(symbols)

    def set_symbol_info(self, infos: Mapping[str, SymbolInfo]) -> None:
        """Known symbols: price precision per symbol, and TRADING ones offered for adding."""
        self._known = dict(infos)
        self.model.set_precisions({s: i.price_precision for s, i in infos.items()})
        self._completion.setStringList(sorted(s for s, i in infos.items() if i.trading))

    def update_tickers(self, tickers: Iterable[MiniTicker]) -> int:
        """Apply a ``!miniTicker@arr`` batch; returns the number of listed rows that changed."""
        return self.model.update_tickers(tickers)

    def add_symbol(self, symbol: str) -> bool:
        """Add ``symbol`` as if the user had typed it; False (with an inline message) if refused."""
        symbol = symbol.strip().upper()
        if self._known and symbol not in self._known:
            self._show_error(f"Unknown symbol {symbol}")
            return False
        if not self.model.add_symbol(symbol):
            self._show_error(f"{symbol} is already listed" if symbol else "")
            return False
        self._clear_error()
        self.symbolsChanged.emit(self.symbols())
        return True

    def remove_selected(self) -> list[str]:
        """Remove the selected rows (Delete key, context menu); returns the removed symbols."""
        rows = {self.proxy.mapToSource(i).row() for i in self.view.selectionModel().selectedRows()}
        if not rows and self.view.currentIndex().isValid():
            rows = {self.proxy.mapToSource(self.view.currentIndex()).row()}
        current = self.model.symbols()
        removed = self.model.remove_symbols(current[r] for r in rows)
        if removed:
            self.symbolsChanged.emit(self.symbols())
        return removed

    def error_text(self) -> str:
        """The inline message under the add box ("" when there is none)."""
        return self.add_edit.toolTip()

    # ------------------------------------------------------------- internals

    def _add_from_edit(self) -> None:
        if self.add_symbol(self.add_edit.text()):
            self.add_edit.clear()

    def _activate_index(self, index: QModelIndex) -> None:
        if index.isValid():
            src = self.proxy.mapToSource(index)
            self.symbolActivated.emit(self.model.symbols()[src.row()])

    def _show_error(self, text: str) -> None:
        self.add_edit.setToolTip(text)
        # A red frame says "refused" without a modal dialog interrupting live monitoring.
        self.add_edit.setStyleSheet("QLineEdit { border: 1px solid #ef5350; }" if text else "")

    def _clear_error(self) -> None:
        if self.add_edit.toolTip():
            self._show_error("")
