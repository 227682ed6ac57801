"""Replay controls (``binmon --replay FILE``): play/pause, speed, and the replay's sim time.

The replay runs in the embedded simulator (:mod:`binmon.sim`), so the whole live path
(stream, chart, indicators, alerts) sees it as a market; these controls only drive the
simulator's clock. Pausing freezes sim time: no trade and no new candle is sent, while the
simulator keeps pushing the unchanged forming kline every push period (as Binance does for a
quiet market), so the stream client's watchdog does not take a paused replay for a dead
connection. Resuming and speed changes continue from the same sim time.

* :class:`ReplayControl`: what the bar needs of a replay (a protocol; tests pass a fake).
* :class:`SimReplayControl`: a :class:`ReplayControl` over a running
  :class:`~binmon.sim.thread.SimThread` (thread-safe: the clock is).
* :class:`ReplayBar`: the toolbar.
* :func:`install_replay`: adds the bar to the app's window (called by ``binmon.app`` in
  replay mode only).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QLabel, QToolBar, QWidget

#: The speeds offered, as in TradingView's bar replay (x real time).
SPEEDS = (1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0)
#: How often the bar reads the sim time (ms).
POLL_MS = 250


class ReplayControl(Protocol):
    """A replay's controls: pause / resume / speed, and the sim time."""

    @property
    def paused(self) -> bool:
        """True while the replay is paused."""
        ...

    @property
    def speed(self) -> float:
        """x real time while playing."""
        ...

    def now_ms(self) -> int:
        """The replay's current time (UTC ms)."""
        ...

    def pause(self) -> None:
        """Freeze the replay where it is."""
        ...

    def resume(self) -> None:
        """Play on from where it was paused."""
        ...

    def set_speed(self, speed: float) -> None:
        """Play at ``speed`` x real time from now on."""
        ...


class SimReplayControl:
    """:class:`ReplayControl` over a running simulator thread (anything with ``pause``,
    ``resume``, ``set_speed`` and ``clock_state`` like :class:`~binmon.sim.thread.SimThread`)."""

    def __init__(self, sim: Any) -> None:
        self._sim = sim

    @property
    def paused(self) -> bool:
        """True while the simulator's clock is paused."""
        return bool(self._sim.clock_state()["paused"])

    @property
    def speed(self) -> float:
        """The simulator clock's speed."""
        return float(self._sim.clock_state()["speed"])

    def now_ms(self) -> int:
        """The simulator's clock."""
        return int(self._sim.clock_state()["now_ms"])

    def pause(self) -> None:
        """Pause the simulator's clock."""
        self._sim.pause()

    def resume(self) -> None:
        """Resume the simulator's clock."""
        self._sim.resume()

    def set_speed(self, speed: float) -> None:
        """Set the simulator clock's speed."""
        self._sim.set_speed(speed)

    def delay_of(self, event_time_ms: int) -> float:
        """How late an event with this (replayed) time arrives, in real ms: its age on the
        simulator's clock over the replay speed."""
        state = self._sim.clock_state()
        return (int(state["now_ms"]) - event_time_ms) / max(float(state["speed"]), 1e-9)


def format_sim_time(ms: int) -> str:
    """``YYYY-MM-DD HH:MM:SS UTC`` of epoch ms ``ms``."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class ReplayBar(QToolBar):
    """Play/pause button, speed combo (1x..100x) and the replay's time, over a :class:`ReplayControl`.

    The bar reads the control every ``poll_ms`` (the time text and the button follow changes
    made elsewhere, e.g. over ``/_sim/clock``); user actions go straight to the control.
    """

    def __init__(self, control: ReplayControl, parent: QWidget | None = None, poll_ms: int = POLL_MS) -> None:
        super().__init__("Replay", parent)
        self.setObjectName("toolbar.replay")  # saveState() needs object names
        self.control = control
        self.play_action = QAction("Pause", self)
        self.play_action.setCheckable(True)  # checked = playing
        self.play_action.setToolTip("Pause or resume the replay")
        self.play_action.triggered.connect(self._toggled)
        self.addAction(self.play_action)
        self.speed_box = QComboBox(self)
        self.speed_box.setToolTip("Replay speed (x real time)")
        for s in SPEEDS:
            self.speed_box.addItem(f"{s:g}x", s)
        self.speed_box.activated.connect(self._speed_chosen)
        self.addWidget(self.speed_box)
        self.time_label = QLabel(self)
        self.time_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.time_label.setToolTip("The replay's time")
        self.addWidget(self.time_label)
        self._timer = QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self.refresh()

    def refresh(self) -> None:
        """Show the control's state: time, playing or paused, speed (never calls the control's setters)."""
        c = self.control
        paused = c.paused
        self.play_action.setChecked(not paused)
        self.play_action.setText("Play" if paused else "Pause")
        i = self.speed_box.findData(float(c.speed))
        if i < 0:  # a speed not offered (set over HTTP): show it anyway
            self.speed_box.addItem(f"{c.speed:g}x", float(c.speed))
            i = self.speed_box.count() - 1
        self.speed_box.setCurrentIndex(i)
        self.time_label.setText(("  paused  " if paused else "  ") + format_sim_time(c.now_ms()))

    def _toggled(self, playing: bool) -> None:
        if playing:
            self.control.resume()
        else:
            self.control.pause()
        self.refresh()

    def _speed_chosen(self, index: int) -> None:
        self.control.set_speed(float(self.speed_box.itemData(index)))
        self.refresh()

    def stop(self) -> None:
        """Stop polling (before the simulator stops)."""
        self._timer.stop()


def install_replay(parts: Any, sim_handle: Any) -> ReplayBar:
    """Replay mode: put a :class:`ReplayBar` driving ``sim_handle``'s clock under the window's
    toolbar (``parts``: the app's :class:`~binmon.app.AppParts`). Returns the bar."""
    window = parts.window
    control = SimReplayControl(sim_handle)
    parts.adapter.measure_delay_with(control.delay_of)
    bar = ReplayBar(control, window)
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
    window.closing.connect(bar.stop)
    return bar
