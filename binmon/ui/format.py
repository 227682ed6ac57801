"""Text formatting of prices, sizes, volumes, percentages and times for the panels.

Pure functions, no Qt, so they are unit-tested without a display. Prices are always
shown at the symbol's own precision (from its tickSize): a fixed two decimals would turn
0.00000638 BTC into 0.00.
"""

from __future__ import annotations

import math
from datetime import datetime, tzinfo

#: Shown where a value is unknown (no ticker yet, no feed).
MISSING = "—"

_SUFFIXES = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"))
#: Decimals a size is trimmed to when the symbol's step size is unknown (Binance's wire precision).
_MAX_DECIMALS = 8


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def format_price(value: float | None, precision: int) -> str:
    """``value`` with exactly ``precision`` decimals (``0.00000638, 8`` -> ``"0.00000638"``).

    No thousands separators: traders copy prices into order forms. Missing or non-finite
    values give :data:`MISSING`; a negative precision counts as 0.
    """
    if value is None or not _finite(value):
        return MISSING
    return f"{value:.{max(precision, 0)}f}"


def format_qty(value: float | None, precision: int | None = None) -> str:
    """A trade size: at ``precision`` decimals when the step size is known, else trimmed.

    Trimming (``1.50000000`` -> ``"1.5"``) keeps sizes of unknown precision short without
    hiding any digit Binance sent (it sends at most 8 decimals).
    """
    if value is None or not _finite(value):
        return MISSING
    if precision is not None:
        return f"{value:.{max(precision, 0)}f}"
    text = f"{value:.{_MAX_DECIMALS}f}".rstrip("0").rstrip(".")
    return text or "0"


def format_volume(value: float | None) -> str:
    """A volume shortened with K / M / B / T (``1_234_567`` -> ``"1.23M"``), below 1,000 as is."""
    if value is None or not _finite(value):
        return MISSING
    magnitude = abs(value)
    for limit, suffix in _SUFFIXES:
        # Switch unit when the unit below would print 1000.00 or more: 999_999 -> "1.00M", not
        # "1000.00K", while 999.994 stays "999.99".
        if round(magnitude * 1000 / limit, 2) >= 1000:
            return f"{value / limit:.2f}{suffix}"
    return f"{value:.2f}"


def format_pct(value: float | None, decimals: int = 2) -> str:
    """A signed percentage (``1.234`` -> ``"+1.23%"``, ``-0.5`` -> ``"-0.50%"``, ``0`` -> ``"0.00%"``)."""
    if value is None or not _finite(value):
        return MISSING
    text = f"{value:.{decimals}f}"
    if float(text) == 0:
        # Avoid "-0.00%" / "+0.00%" for values that round to zero.
        return f"{0:.{decimals}f}%"
    return f"{value:+.{decimals}f}%"


def format_time_ms(ms: int, tz: tzinfo | None = None) -> str:
    """Epoch ms as ``HH:MM:SS.mmm`` in ``tz`` (None = the machine's local zone)."""
    dt = datetime.fromtimestamp(ms // 1000, tz)
    return f"{dt:%H:%M:%S}.{ms % 1000:03d}"


def format_delay(delay_ms: float | None) -> str:
    """Feed delay for the status bar: ``"delay 120 ms"``, from 10 s on ``"delay 12.3 s"``."""
    if delay_ms is None or not _finite(delay_ms):
        return f"delay {MISSING}"
    if abs(delay_ms) >= 10_000:
        return f"delay {delay_ms / 1000:.1f} s"
    return f"delay {delay_ms:.0f} ms"


def format_rate(msgs_per_s: float) -> str:
    """Message rate for the status bar (``"1,234 msg/s"``; below 10 with one decimal)."""
    if not _finite(msgs_per_s):
        return f"{MISSING} msg/s"
    if msgs_per_s < 10:
        return f"{msgs_per_s:.1f} msg/s"
    return f"{msgs_per_s:,.0f} msg/s"
