"""Toolbar pickers: a searchable symbol box and the 16-interval chooser.

The symbol box ranks matches itself instead of using QCompleter's own filtering, so that
typing "eth" lists ETHUSDT and ETHBTC before ones that merely contain ETH (xxxETH pairs),
and offers only symbols in TRADING status.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtGui import QFocusEvent
from PySide6.QtWidgets import QComboBox, QCompleter, QLineEdit, QWidget

from binmon.core.intervals import INTERVALS
from binmon.core.models import SymbolInfo

#: Quote assets listed first among equally good matches: the most traded markets.
_QUOTE_RANK = {
    q: i for i, q in enumerate(("USDT", "FDUSD", "USDC", "BUSD", "BTC", "ETH", "BNB", "EUR", "TRY"))
}
#: Matches shown in the popup; more than a screenful only slows typing down.
MAX_MATCHES = 50
_ERROR_STYLE = "QLineEdit { border: 1px solid #ef5350; }"


def rank_symbols(query: str, symbols: Iterable[SymbolInfo], limit: int = MAX_MATCHES) -> list[str]:
    """TRADING symbols containing ``query`` (case-insensitive), best first.

    Order: exact symbol, base asset equal to the query, symbol starting with it, base asset
    containing it, then the rest (matches in the quote asset); within each tier popular quote
    assets first, then alphabetical.
    """
    q = query.strip().upper()
    if not q:
        return []
    scored = []
    for s in symbols:
        if not s.trading or q not in s.symbol:
            continue
        if s.symbol == q:
            tier = 0
        elif s.base_asset == q:
            tier = 1  # "eth": ETHUSDT, ETHBTC before ETHDOWNUSDT or ETHFIUSDT
        elif s.symbol.startswith(q):
            tier = 2
        elif q in s.base_asset:
            tier = 3
        else:
            tier = 4  # the query only matches the quote asset (XRPETH for "eth")
        scored.append((tier, _QUOTE_RANK.get(s.quote_asset, len(_QUOTE_RANK)), s.symbol))
    scored.sort()
    return [name for _, _, name in scored[:limit]]


class SymbolPicker(QLineEdit):
    """A line edit with a ranked completion popup over TRADING symbols.

    Enter (or picking from the popup) emits ``symbolChosen(str)`` for a TRADING symbol; any
    other entry turns the box red with the reason in its tooltip and emits nothing.
    """

    symbolChosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText("Symbol (e.g. eth)")
        self.setClearButtonEnabled(True)
        self._infos: dict[str, SymbolInfo] = {}
        self._current = ""
        # Set on typing, cleared on commit: Enter in the popup both activates the completer and
        # reaches returnPressed; the flag makes that one choice, not two.
        self._dirty = False
        self._matches = QStringListModel(self)
        completer = QCompleter(self._matches, self)
        # We filter and rank ourselves (rank_symbols); the completer just shows the list.
        completer.setCompletionMode(QCompleter.CompletionMode.UnfilteredPopupCompletion)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setMaxVisibleItems(15)
        completer.activated.connect(self._on_activated)
        self.setCompleter(completer)
        self.textEdited.connect(self._on_edited)
        self.returnPressed.connect(self.commit)

    def set_symbols(self, symbols: Iterable[SymbolInfo]) -> None:
        """Symbols known from exchangeInfo; only TRADING ones can be chosen."""
        self._infos = {s.symbol: s for s in symbols}

    def matches(self, query: str) -> list[str]:
        """What the popup offers for ``query`` (see :func:`rank_symbols`)."""
        return rank_symbols(query, self._infos.values())

    def set_current(self, symbol: str) -> None:
        """Show ``symbol`` as the charted one without emitting anything."""
        self._current = symbol
        self._dirty = False
        self._set_error("")
        self.setText(symbol)

    def current(self) -> str:
        """The symbol last set or chosen."""
        return self._current

    def error_text(self) -> str:
        """Why the last entry was refused ("" when it was not)."""
        return self.toolTip()

    def commit(self) -> None:
        """Validate the text and emit ``symbolChosen`` for a TRADING symbol."""
        if not self._dirty:
            return
        name = self.text().strip().upper()
        if not name:
            return
        info = self._infos.get(name)
        if info is None:
            self._set_error(f"Unknown symbol {name!r}")
            return
        if not info.trading:
            self._set_error(f"{name} is not trading (status {info.status})")
            return
        self._dirty = False
        self._current = name
        self._set_error("")
        self.setText(name)
        self.symbolChosen.emit(name)

    def focusOutEvent(self, event: QFocusEvent) -> None:
        # Leaving the box without choosing shows the charted symbol again, not a half-typed one.
        # The completion popup itself takes focus with PopupFocusReason: that is not leaving.
        super().focusOutEvent(event)
        if event.reason() != Qt.FocusReason.PopupFocusReason and self._dirty and not self.toolTip():
            self.set_current(self._current)

    def _on_edited(self, text: str) -> None:
        self._dirty = True
        self._set_error("")
        self._matches.setStringList(self.matches(text))

    def _on_activated(self, text: str) -> None:
        # The popup only opens after typing (so _dirty is set); Enter in it also reaches
        # returnPressed, and whichever of the two comes second finds nothing left to commit.
        self.setText(text)
        self.commit()

    def _set_error(self, text: str) -> None:
        self.setToolTip(text)
        self.setStyleSheet(_ERROR_STYLE if text else "")


class IntervalPicker(QComboBox):
    """All 16 Binance intervals; ``intervalChosen(str)`` fires on user choice only."""

    intervalChosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.addItems(list(INTERVALS))
        self.setToolTip("Candle interval")
        # activated (not currentIndexChanged): programmatic set_interval must not emit.
        self.activated.connect(lambda i: self.intervalChosen.emit(self.itemText(i)))

    def set_interval(self, interval: str) -> None:
        """Select ``interval`` without emitting; ValueError for an unknown one."""
        i = self.findText(interval, Qt.MatchFlag.MatchExactly | Qt.MatchFlag.MatchCaseSensitive)
        if i < 0:
            raise ValueError(f"unknown interval {interval!r}")
        self.setCurrentIndex(i)

    def interval(self) -> str:
        """The selected interval."""
        return self.currentText()
