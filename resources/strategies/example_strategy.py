# An example binmon user strategy: copy this file, edit it, and pick it in the Backtest tab
# ("Strategy file...") or run it headless:
#
#     binmon backtest BTCUSDT --interval 1h --start 2024-01-01 --end 2024-06-30 \
#         --strategy-file my_strategy.py --param period=20 --param threshold=0.5
#
# Rules binmon applies to a strategy file:
#
# * The file must define exactly ONE subclass of backtrader.Strategy (classes you only import
#   do not count). Anything else in the file is yours: helper functions, constants, imports.
# * Parameters are backtrader `params`; `--param NAME=VALUE` (or the tab's parameter table)
#   overrides them. A value is converted to the type of the default (int, float, bool);
#   an unknown name is an error.
# * Data: `self.data` has open, high, low, close, volume for each bar of the chosen series
#   (closed candles from the local store, oldest first, UTC). Use backtrader indicators
#   (`bt.indicators.*`) or TA-Lib through `bt.talib.*`: the lines of every indicator you
#   create are drawn on the result chart (price pane, or a pane below for oscillators).
# * Orders: `self.buy()`, `self.sell()`, `self.close()`, `self.order_target_size(...)`.
#   An order placed in `next()` fills at the NEXT bar's open, with the commission and
#   slippage of the run. `buy()` / `sell()` without a size use the run's sizing
#   (percent of cash, or a fixed size). Going short is allowed.
# * Equity, trades, markers and metrics are recorded by binmon; you need no analyzers,
#   observers or plotting. Never call cerebro.plot().
# * The file runs in a worker process: no GUI, no input(); print() output is discarded.

import backtrader as bt


class MomentumBreakout(bt.Strategy):
    """Buy when the close breaks above the highest close of the last `period` bars by more than
    `threshold` percent; leave when it falls below the `period`-bar moving average."""

    params = (
        ("period", 20),
        ("threshold", 0.5),
    )

    def __init__(self) -> None:
        self.highest = bt.indicators.Highest(self.data.close(-1), period=self.p.period)
        self.sma = bt.talib.SMA(self.data.close, timeperiod=self.p.period)

    def next(self) -> None:
        if not self.position:
            if self.data.close[0] > self.highest[0] * (1 + self.p.threshold / 100):
                self.buy()
        elif self.data.close[0] < self.sma[0]:
            self.close()
