"""Status bar: connection state, feed delay, message rate and transient messages.

The state is a coloured dot plus words a user understands ("reconnecting (attempt 3,
retry in 4 s)"); the retry countdown ticks down locally once a second so the bar never
claims "retry in 8 s" for eight seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QLabel, QPushButton, QStatusBar, QWidget

from binmon.core.events import ConnectionStatus, ConnState
from binmon.ui.format import format_delay, format_rate

#: Dot colour per state: green live, amber while (re)connecting, blue backfilling, red offline.
STATE_COLORS: dict[ConnState, str] = {
    ConnState.LIVE: "#26a69a",
    ConnState.CONNECTING: "#f0b90b",
    ConnState.RECONNECTING: "#f0b90b",
    ConnState.BACKFILLING: "#2962ff",
    ConnState.OFFLINE: "#ef5350",
    ConnState.CLOSED: "#787b86",
}
#: A feed delay above this (ms) is shown in amber: the chart is visibly behind the market.
SLOW_FEED_MS = 1_000.0


def state_text(status: ConnectionStatus, remaining_s: float | None = None) -> str:
    """Words for ``status``; ``remaining_s`` overrides ``status.retry_in`` (live countdown)."""
    retry = status.retry_in if remaining_s is None else remaining_s
    if status.state is ConnState.RECONNECTING:
        parts = [f"attempt {status.attempt}"] if status.attempt else []
        if retry is not None:
            parts.append(f"retry in {max(retry, 0):.0f} s")
        return "reconnecting" + (f" ({', '.join(parts)})" if parts else "")
    if status.state is ConnState.OFFLINE:
        detail = status.reason or (f"retry in {max(retry, 0):.0f} s" if retry is not None else "")
        return "offline" + (f": {detail}" if detail else "")
    return str(status.state.value)


class StatusBar(QStatusBar):
    """The main window's status bar. Setters only; it never talks to the network."""

    def __init__(self, parent: QWidget | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(parent)
        self._clock = clock
        self._status: ConnectionStatus | None = None
        self._status_at = 0.0
        self.state_label = QLabel(self)
        self.delay_label = QLabel(self)
        self.rate_label = QLabel(self)
        for label in (self.state_label, self.delay_label, self.rate_label):
            label.setContentsMargins(6, 0, 6, 0)
            self.addPermanentWidget(label)
        # Offered while the exchange cannot be reached (hidden once in demo mode).
        self.demo_button = QPushButton("Use demo market", self)
        self.demo_button.setToolTip("Switch to the built-in simulated exchange (works without a network)")
        self.demo_button.hide()
        self.addPermanentWidget(self.demo_button)
        self._demo = False
        self.state_label.setTextFormat(Qt.TextFormat.RichText)
        self.delay_label.setToolTip("Feed delay: now minus the exchange's event time")
        self.rate_label.setToolTip("Stream messages per second")
        self._countdown = QTimer(self)
        self._countdown.setInterval(1000)
        self._countdown.timeout.connect(self.refresh)
        self.set_status(None)
        self.set_feed(None, 0.0)

    def set_status(self, status: ConnectionStatus | None) -> None:
        """Show a connection status (None: nothing known yet, shown as offline-grey "—")."""
        self._status = status
        self._status_at = self._clock()
        if status is not None and status.retry_in is not None:
            self._countdown.start()
        else:
            self._countdown.stop()
        self.refresh()

    def set_demo(self, demo: bool) -> None:
        """True once the app runs on the simulator: the "Use demo market" button is never shown."""
        self._demo = demo
        self.refresh()

    def status(self) -> ConnectionStatus | None:
        """The last status set."""
        return self._status

    def state_text(self) -> str:
        """The state words currently shown (without the dot)."""
        return self.state_label.property("plainText") or ""

    def set_feed(self, delay_ms: float | None, msgs_per_s: float) -> None:
        """Feed delay (None when no event arrived recently) and message rate."""
        self.delay_label.setText(format_delay(delay_ms))
        slow = delay_ms is not None and delay_ms > SLOW_FEED_MS
        self.delay_label.setStyleSheet("color: #f0b90b;" if slow else "")
        self.rate_label.setText(format_rate(msgs_per_s))

    def refresh(self) -> None:
        """Re-render the state text (the retry countdown timer calls this every second)."""
        st = self._status
        if st is None:
            text, color, tip = "—", STATE_COLORS[ConnState.CLOSED], "No connection status yet"
        else:
            remaining = None
            if st.retry_in is not None:
                remaining = st.retry_in - (self._clock() - self._status_at)
                if remaining <= 0:
                    self._countdown.stop()
            text, color = state_text(st, remaining), STATE_COLORS[st.state]
            tip = f"{st.market} stream: {st.state.value}" + (f"\n{st.reason}" if st.reason else "")
        offline = st is not None and st.state in (ConnState.OFFLINE, ConnState.RECONNECTING)
        self.demo_button.setVisible(offline and not self._demo)
        self.state_label.setProperty("plainText", text)
        self.state_label.setText(f'<span style="color:{color}">●</span> {_escape(text)}')
        self.state_label.setToolTip(tip)


def _escape(text: str) -> str:
    # Reasons come from exception messages: keep "<" in them from being read as markup.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
