"""Dockable side panels of the main window (watchlist, trades)."""

from binmon.ui.panels.trades import TradesPanel
from binmon.ui.panels.watchlist import WatchlistPanel

__all__ = ["TradesPanel", "WatchlistPanel"]
