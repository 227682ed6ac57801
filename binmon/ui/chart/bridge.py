"""The one bridge between Python and the chart page (architecture guide, point 6).

* JS -> Python: one :class:`QWebChannel` with one object, ``bridge``, whose single slot
  ``post(str)`` takes JSON messages: ``ready``, ``crosshair``, ``visibleRange``, ``state``,
  ``error``.
* Python -> JS: scripts built by :func:`binmon.ui.chart.jscall.js_call` are queued and sent
  with ``runJavaScript``, never before the page has said ``ready`` (a handshake, no timers).
  At most one batch is in flight; calls made meanwhile are concatenated into the next batch,
  so a burst of calls costs a few round trips, not one each. Nothing is dropped, except
  when the page is replaced (reload, renderer crash): then the owner sends its state again.
* :class:`ChartPage` routes the page's console into :mod:`logging` (errors at ERROR, so
  tests fail on them), reports load failures and renderer crashes, and refuses every request
  that is not local: the chart must never touch the network.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWebChannel import QWebChannel
from PySide6.QtWebEngineCore import (
    QWebEnginePage,
    QWebEngineUrlRequestInfo,
    QWebEngineUrlRequestInterceptor,
)

from binmon.ui.chart.jscall import js_value

log = logging.getLogger(__name__)
#: The page's own console lands here (JS ``console.error`` -> ERROR, and so on).
js_log = logging.getLogger("binmon.ui.chart.js")

ResultCallback = Callable[[Any], None]

#: What a batch returns when it reached a document other than the one that said ready.
_STALE = "binmon:stale-page"

_LOCAL_SCHEMES = frozenset({"file", "qrc", "data", "blob", "about"})

_CONSOLE_LEVELS = {
    QWebEnginePage.JavaScriptConsoleMessageLevel.InfoMessageLevel: logging.INFO,
    QWebEnginePage.JavaScriptConsoleMessageLevel.WarningMessageLevel: logging.WARNING,
    QWebEnginePage.JavaScriptConsoleMessageLevel.ErrorMessageLevel: logging.ERROR,
}


class _LocalOnly(QWebEngineUrlRequestInterceptor):
    """Blocks every request whose scheme is not local (no CDN, no tracking, no network)."""

    def interceptRequest(self, info: QWebEngineUrlRequestInfo) -> None:
        url = info.requestUrl()
        if url.scheme() not in _LOCAL_SCHEMES:
            log.error("chart page tried to load %s: blocked (the chart is local only)", url.toString())
            info.block(True)


class ChartPage(QWebEnginePage):
    """A page that logs its JS console and reports failures through :attr:`failed`."""

    #: A load failure or renderer crash, as text.
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        """Create the page on the default (off-the-record) profile, local requests only."""
        super().__init__(parent)
        self._interceptor = _LocalOnly(self)
        self.setUrlRequestInterceptor(self._interceptor)
        self.loadFinished.connect(self._on_load_finished)
        self.renderProcessTerminated.connect(self._on_render_terminated)

    def javaScriptConsoleMessage(
        self, level: QWebEnginePage.JavaScriptConsoleMessageLevel, message: str, line: int, source: str
    ) -> None:
        """Route a console message into logging; errors at ERROR."""
        js_log.log(_CONSOLE_LEVELS.get(level, logging.ERROR), "%s (%s:%d)", message, source, line)

    def _on_load_finished(self, ok: bool) -> None:
        if not ok:
            text = f"chart page failed to load: {self.url().toString()}"
            log.error("%s", text)
            self.failed.emit(text)

    def _on_render_terminated(self, status: QWebEnginePage.RenderProcessTerminationStatus, code: int) -> None:
        if status == QWebEnginePage.RenderProcessTerminationStatus.NormalTerminationStatus:
            return  # the page is being closed
        text = f"chart renderer terminated ({status.name}, exit code {code}); reloading"
        log.error("%s", text)
        self.failed.emit(text)
        self.triggerAction(QWebEnginePage.WebAction.Reload)


class _Receiver(QObject):
    """The object JS sees as ``channel.objects.bridge``: one slot, ``post``, and nothing else
    of ours (QWebChannel publishes every signal and slot of the object it registers)."""

    def __init__(self, handler: Callable[[str], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._handler = handler

    @Slot(str)
    def post(self, text: str) -> None:
        """A JSON message from the page (called by QWebChannel on the GUI thread)."""
        self._handler(text)


class ChartBridge(QObject):
    """Messages both ways between Python and one :class:`ChartPage`.

    Signals: :attr:`ready` after the page said ``ready`` and the queue was sent;
    :attr:`reloaded` when a new document said ready after an earlier one (a reload or a
    renderer crash): calls not yet run were dropped, so the owner must queue its whole state
    again from its handler (queries still pending are kept and run after it);
    :attr:`message` for every other message (a dict); :attr:`error` for page errors.
    """

    ready = Signal()
    reloaded = Signal()
    message = Signal(object)
    error = Signal(str)

    def __init__(self, page: ChartPage, parent: QObject | None = None) -> None:
        """Attach a web channel to ``page``; load the page afterwards."""
        super().__init__(parent)
        self._page = page
        self._receiver = _Receiver(self._on_post, self)
        self._channel = QWebChannel(self)
        self._channel.registerObject("bridge", self._receiver)
        page.setWebChannel(self._channel)
        page.loadStarted.connect(self._on_load_started)
        page.failed.connect(self.error)
        self._queue: list[tuple[str, ResultCallback | None]] = []
        self._hooks: list[Callable[[], None]] = []
        self._ready = False
        self._in_flight = False
        self._flushing = False
        self._flight_query: tuple[str, ResultCallback | None] | None = None
        # Bumped when a new document says ready, so a batch sent to the old one cannot clear
        # the in-flight flag of the new one when (if ever) its callback arrives.
        self._generation = 0
        self._load_id = ""  # of the document that said ready; every batch is stamped with it
        #: Batches sent so far (tests check that bursts are coalesced).
        self.batches_sent = 0
        #: Calls sent so far.
        self.calls_sent = 0

    @property
    def is_ready(self) -> bool:
        """True once the current page has said ``ready``."""
        return self._ready

    @property
    def pending(self) -> int:
        """Calls queued and not yet sent."""
        return len(self._queue)

    def add_flush_hook(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` just before each batch is built; it may :meth:`call` to add to it.

        This is how a caller coalesces its own data (e.g. chart updates) until the last moment.
        """
        self._hooks.append(hook)

    def call(self, script: str, callback: ResultCallback | None = None) -> None:
        """Queue ``script`` (from :func:`js_call`); send it as soon as the page is ready and idle.

        ``callback`` gets the script's value (strings, numbers, bools only: return
        ``JSON.stringify(...)`` for anything else) once it has run. Calls run in order.
        """
        self._queue.append((script, callback))
        self.flush()

    def flush(self) -> None:
        """Send the queue now if the page is ready and no batch is in flight."""
        if not self._ready or self._in_flight or self._flushing:
            return
        self._flushing = True
        try:
            for hook in self._hooks:
                hook()
        finally:
            self._flushing = False
        if not self._queue:
            return
        # A batch ends at the first call that wants a result: its value is the batch's value.
        end = next((i + 1 for i, (_, cb) in enumerate(self._queue) if cb is not None), len(self._queue))
        batch, self._queue = self._queue[:end], self._queue[end:]
        callback = batch[-1][1]
        self._send([s for s, _ in batch], callback)

    def _send(self, scripts: list[str], callback: ResultCallback | None) -> None:
        # Each call is isolated: one that throws is reported and the next ones still run.
        body = "".join(f"try{{{s}}}catch(e){{binmon.fail(e)}}\n" for s in scripts[:-1])
        body += f"try{{return {scripts[-1]}}}catch(e){{binmon.fail(e);return null}}"
        # Chromium may run a script sent just before a reload in the new document: a batch
        # runs only in the page load that said ready (the owner resends its state after a reload).
        guard = f"if(!window.binmon||binmon.loadId!=={js_value(self._load_id)})return {js_value(_STALE)};"
        code = f"(function(){{{guard}\n{body}\n}})()"
        generation = self._generation
        query = (scripts[-1], callback) if callback is not None else None
        self._in_flight = True
        self._flight_query = query
        self.batches_sent += 1
        self.calls_sent += len(scripts)

        def done(result: Any) -> None:
            if generation != self._generation:
                return  # sent to a page load that is gone; _on_ready re-queued its query
            self._in_flight = False
            self._flight_query = None
            if result == _STALE:
                # The page was replaced under us: wait for its ready, then ask again.
                self._ready = False
                if query is not None:
                    self._queue.insert(0, query)
                return
            if callback is not None:
                try:
                    callback(result)
                except Exception:
                    log.exception("chart result callback failed")
            self.flush()

        self._page.runJavaScript(code, 0, done)

    def _on_load_started(self) -> None:
        # Stop sending into a document that is going away (not emitted on every reload, so
        # _on_ready does the real work).
        self._ready = False

    def _on_ready(self, load_id: str) -> None:
        reloaded = bool(self._load_id) and load_id != self._load_id
        self._load_id = load_id
        self._ready = True
        if reloaded:
            # A new document (reload, renderer crash): forget batches in flight, keep the
            # queries (calls wanting an answer) and let the owner queue its whole state first.
            self._generation += 1
            self._in_flight = False
            queries = [entry for entry in self._queue if entry[1] is not None]
            if self._flight_query is not None:
                queries.insert(0, self._flight_query)
            self._flight_query = None
            self._queue = []
            self.reloaded.emit()
            self._queue.extend(queries)
        self.flush()
        self.ready.emit()

    def _on_post(self, text: str) -> None:
        try:
            msg = json.loads(text)
            kind = msg["type"]
        except (ValueError, KeyError, TypeError):
            log.error("bad message from the chart page: %.200r", text)
            return
        if kind == "ready":
            log.debug("chart page ready: %s", msg)
            self._on_ready(str(msg.get("loadId", "")))
        elif kind == "error":
            text = str(msg.get("message", ""))
            log.error("chart page error: %s", text)
            self.error.emit(text)
        else:
            self.message.emit(msg)
