"""Small reusable widgets of the main window: pickers and the status bar."""

from binmon.ui.widgets.status_bar import StatusBar
from binmon.ui.widgets.symbol_picker import IntervalPicker, SymbolPicker

__all__ = ["IntervalPicker", "StatusBar", "SymbolPicker"]
