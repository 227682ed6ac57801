"""Run a :class:`SimServer` on its own thread and event loop.

For callers that are not asyncio code on the sim's loop: demo mode (the GUI's qasync loop
must never be slowed by the simulator's pump), synchronous tests, benchmarks. Everything a
caller touches from its own thread is thread-safe: :attr:`SimThread.urls` is immutable,
:attr:`SimThread.faults` is a thread-safe switch board, and :meth:`SimThread.call` runs a
function (e.g. a Market query) on the simulator's loop and returns its result.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from binmon.sim.config import SimConfig
from binmon.sim.faults import Faults
from binmon.sim.server import ServerConfig, SimServer, SimUrls

log = logging.getLogger("binmon.sim.thread")
T = TypeVar("T")


class SimThread:
    """A simulator running on a daemon thread. Use as a context manager, or ``start``/``stop``."""

    def __init__(
        self, sim: SimConfig | None = None, server: ServerConfig | None = None, clock: Any = None
    ) -> None:
        self._args = (sim, server, clock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: SimServer | None = None
        self._urls: SimUrls | None = None
        self._stopped: asyncio.Event | None = None

    @property
    def server(self) -> SimServer:
        """The running SimServer (touch its non-thread-safe parts only through :meth:`call`)."""
        if self._server is None:
            raise RuntimeError("the simulator thread is not started")
        return self._server

    @property
    def urls(self) -> SimUrls:
        """Where clients connect."""
        if self._urls is None:
            raise RuntimeError("the simulator thread is not started")
        return self._urls

    @property
    def faults(self) -> Faults:
        """The thread-safe fault switches."""
        return self.server.faults

    def pause(self) -> dict[str, Any]:
        """Pause the sim clock (a replay stops where it is; connections stay open). Thread-safe."""
        return self.server.control_clock(paused=True)

    def resume(self) -> dict[str, Any]:
        """Resume the sim clock from where it was paused. Thread-safe."""
        return self.server.control_clock(paused=False)

    def set_speed(self, speed: float) -> dict[str, Any]:
        """Run the sim clock at ``speed`` x real time from now on (ValueError if <= 0). Thread-safe."""
        return self.server.control_clock(speed=speed)

    def clock_state(self) -> dict[str, Any]:
        """``{"now_ms", "speed", "paused"}`` of the sim clock. Thread-safe."""
        return self.server.clock_state()

    def start(self, timeout: float = 30.0) -> SimThread:
        """Start the thread, wait until the server listens (re-raising its start-up error)."""
        if self._thread is not None:
            return self
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._main, args=(ready,), name="binmon-sim", daemon=True)
        self._thread.start()
        try:
            ready.result(timeout=timeout)
        except BaseException:
            self._thread.join(timeout=5.0)
            self._thread = None
            raise
        return self

    def _main(self, ready: concurrent.futures.Future[None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self, ready: concurrent.futures.Future[None]) -> None:
        try:
            sim, server_cfg, clock = self._args
            server = SimServer(sim, server_cfg, clock)
            self._urls = await server.start()
            self._server = server
            self._stopped = asyncio.Event()
        except BaseException as exc:
            ready.set_exception(exc)
            return
        ready.set_result(None)
        try:
            await self._stopped.wait()
        finally:
            await server.stop()

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = 30.0) -> T:
        """Run ``fn(*args)`` on the simulator's loop thread and return its result."""
        loop = self._loop
        if loop is None or self._thread is None:
            raise RuntimeError("the simulator thread is not started")

        async def run() -> T:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server (connections closed with 1001) and join the thread. Idempotent."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed (start-up failed)
                loop.call_soon_threadsafe(stopped.set)
        thread.join(timeout)
        if thread.is_alive():
            log.warning("simulator thread did not stop within %.0f s", timeout)

    def __enter__(self) -> SimThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_sim(sim: SimConfig | None = None, server: ServerConfig | None = None, clock: Any = None) -> SimThread:
    """Start a simulator on its own thread and return it, already listening.

    Use it as a context manager (``with run_sim(SimConfig(), ServerConfig()) as sim: ...``) or
    call ``stop()`` when done.
    """
    return SimThread(sim, server, clock).start()
