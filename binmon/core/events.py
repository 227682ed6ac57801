"""Connection-state events: what the stream supervisor tells the rest of binmon.

The UI shows these in its status bar and the CLI logs them; both only need the
state, why, and when the next attempt happens. Pure data, no Qt.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ConnState(StrEnum):
    """Where a market's stream connection stands.

    CONNECTING   first connection attempt in progress.
    LIVE         connected, every kline stream continuous.
    RECONNECTING lost the connection (or failed to open it); retrying.
    BACKFILLING  reconnected; filling the candles missed while away (live klines held back).
    OFFLINE      never connected after several attempts, or idle with no subscriptions;
                 still retrying in the background when there is something to subscribe.
    CLOSED       close() was called; final.
    """

    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    BACKFILLING = "backfilling"
    OFFLINE = "offline"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ConnectionStatus:
    """One status report.

    ``attempt`` counts consecutive failed attempts (0 when healthy); ``retry_in`` is the
    delay in seconds before the next attempt when one is scheduled; ``reason`` is a short
    human-readable cause; ``at_ms`` is the wall-clock time of the report (ms since epoch).
    """

    state: ConnState
    market: str
    attempt: int = 0
    retry_in: float | None = None
    reason: str = ""
    at_ms: int = 0
