"""What an alert condition means, bar by bar: the one definition both engines use. No Qt.

Notation: ``a`` is the subject's series, ``b`` the operand (a level ``x``, a channel
``[lo, hi]`` or another series), ``i`` the bar being evaluated, ``N`` the condition's
``bars``. "Fires at bar i" means: at the close of bar i (closed bars, :func:`condition_series`,
the backtest, "once per bar close"), or on an update of the forming bar i (live, intrabar),
where ``a[i]`` is then the forming bar's current value and ``a[i-1]``, ``a[i-N]`` are values
of CLOSED bars - as TradingView evaluates "once per bar" alerts.

=================  =====================================================================
operator           fires at bar i when
=================  =====================================================================
crossing_up        ``a[i] > b[i]  and a[i-1] <= b[i-1]``  (Pine ``ta.crossover``)
crossing_down      ``a[i] < b[i]  and a[i-1] >= b[i-1]``  (Pine ``ta.crossunder``)
crossing           crossing_up or crossing_down            (Pine ``ta.cross``)
greater_than       ``a[i] > b[i]``
less_than          ``a[i] < b[i]``
inside_channel     ``lo <= a[i] <= hi``  (bounds inclusive)
outside_channel    ``a[i] < lo or a[i] > hi``
entering_channel   inside at i and outside at i-1
exiting_channel    outside at i and inside at i-1
moving_up          ``a[i] - a[i-N] >= amount``
moving_down        ``a[i-N] - a[i] >= amount``
moving_up_pct      ``a[i] - a[i-N] >= amount / 100 * |a[i-N]|``  and ``a[i-N] != 0``
moving_down_pct    ``a[i-N] - a[i] >= amount / 100 * |a[i-N]|``  and ``a[i-N] != 0``
=================  =====================================================================

With a level ``x``, ``b[i] = b[i-1] = x``. A value that does not exist (bar 0 has no
``a[i-1]``; bars before N have no ``a[i-N]``) or is NaN (an indicator's warm-up) never
fires: every comparison with NaN is false. ``moving_*`` compare the bar N bars back with the
current one ("within N bars" = over that span), so N = 1 is the change over one bar.

The same expression (:func:`fires`) runs on numpy arrays (vectorised over all bars) and on
Python floats (one bar live), so the two cannot disagree: IEEE-754 arithmetic gives the same
result for a float64 array element as for the float.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from binmon.alerts.rules import Condition, Operator, Subject
from binmon.indicators.engine import compute
from binmon.indicators.inputs import CandlesLike, candle_columns

__all__ = ["condition_series", "fires", "subject_series"]

NAN = math.nan


def fires(
    op: Operator,
    cur: Any,
    prev: Any,
    back: Any,
    ocur: Any,
    oprev: Any,
    low: float,
    high: float,
) -> Any:
    """The table of the module docstring, for floats (-> bool) or aligned arrays (-> bool array).

    ``cur``/``prev``/``back``: ``a[i]``, ``a[i-1]``, ``a[i-N]`` (NaN when missing);
    ``ocur``/``oprev``: ``b[i]``, ``b[i-1]`` (the level for a value operand; the amount for
    ``moving_*``); ``low``/``high``: the channel (NaN when not a channel). Written with ``&``
    and ``|`` so the same code runs on numpy arrays and Python bools.
    """
    if op is Operator.CROSSING_UP:
        return (cur > ocur) & (prev <= oprev)
    if op is Operator.CROSSING_DOWN:
        return (cur < ocur) & (prev >= oprev)
    if op is Operator.CROSSING:
        return ((cur > ocur) & (prev <= oprev)) | ((cur < ocur) & (prev >= oprev))
    if op is Operator.GREATER_THAN:
        return cur > ocur
    if op is Operator.LESS_THAN:
        return cur < ocur
    if op is Operator.INSIDE_CHANNEL:
        return (low <= cur) & (cur <= high)
    if op is Operator.OUTSIDE_CHANNEL:
        return (cur < low) | (cur > high)
    if op is Operator.ENTERING_CHANNEL:
        return (low <= cur) & (cur <= high) & ((prev < low) | (prev > high))
    if op is Operator.EXITING_CHANNEL:
        return ((cur < low) | (cur > high)) & (low <= prev) & (prev <= high)
    amount = ocur
    if op is Operator.MOVING_UP:
        return (cur - back) >= amount
    if op is Operator.MOVING_DOWN:
        return (back - cur) >= amount
    if op is Operator.MOVING_UP_PCT:
        return ((cur - back) >= amount / 100.0 * abs(back)) & (back != 0.0)
    if op is Operator.MOVING_DOWN_PCT:
        return ((back - cur) >= amount / 100.0 * abs(back)) & (back != 0.0)
    raise ValueError(f"unknown operator {op!r}")


def subject_series(subject: Subject, candles: CandlesLike) -> np.ndarray:
    """The subject's values over ``candles`` (float64, aligned, NaN in an indicator's warm-up).

    Price and volume are the candle columns; an indicator output is computed in full with
    TA-Lib (:func:`binmon.indicators.engine.compute`). Raises SpecError / InputError / KeyError
    for a bad indicator, missing columns or an unknown output.
    """
    if subject.kind == "indicator":
        if subject.indicator is None:
            raise ValueError("an indicator subject needs an indicator")
        return compute(subject.indicator, candles)[subject.field]
    cols, _ = candle_columns(candles)
    return cols["volume" if subject.kind == "volume" else subject.field]


def condition_series(condition: Condition, candles: CandlesLike) -> np.ndarray:
    """Bool array over the CLOSED bars of ``candles``: True at bar i when ``condition`` fires at
    bar i's close (semantics: the module docstring). ``candles`` is a DataFrame or a mapping
    of arrays with ``open, high, low, close, volume`` (``open_time`` optional), oldest first.
    """
    op = Operator(condition.operator)
    a = subject_series(condition.subject, candles)
    n = a.size
    prev, back = _shift(a, 1), _shift(a, condition.bars)
    operand = condition.operand
    low = high = NAN
    ocur: np.ndarray | float
    oprev: np.ndarray | float
    if operand.kind == "series":
        if operand.subject is None:
            raise ValueError("a series operand needs a subject")
        ocur = subject_series(operand.subject, candles)
        oprev = _shift(ocur, 1)
    elif operand.kind == "channel":
        low = float(operand.low) if operand.low is not None else NAN
        high = float(operand.high) if operand.high is not None else NAN
        ocur = oprev = NAN
    else:
        ocur = oprev = float(operand.value if operand.value is not None else NAN)
    with np.errstate(invalid="ignore"):
        out = fires(op, a, prev, back, ocur, oprev, low, high)
    return np.asarray(out, dtype=bool).reshape(n)


def _shift(a: np.ndarray, k: int) -> np.ndarray:
    """``a`` delayed by ``k`` bars, NaN where the earlier bar does not exist."""
    out = np.full(a.size, NAN)
    if k < a.size:
        out[k:] = a[: a.size - k]
    return out
