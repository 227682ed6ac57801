"""Fault switches of the simulator: the failures real Binance connections go through, on demand.

One :class:`Faults` object belongs to one running :class:`~binmon.sim.server.SimServer`. Its
switches may be flipped from any thread (a test thread driving a :class:`SimThread`, the HTTP
admin endpoint, the ``--fault`` command-line option); the server's event loop only reads them.
The two one-shot actions (``drop_all``, ``server_shutdown``) must touch websocket connections,
which live on the server's loop: they are run there, and a caller on another thread waits
until they are done so that "drop now" really means now.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import fnmatch
import threading
import time
from collections.abc import Callable
from typing import Any

#: Names accepted by :meth:`Faults.apply` (and ``GET /_sim/fault?name=``).
FAULT_NAMES = (
    "drop_all",
    "silent",
    "malformed",
    "duplicate_klines",
    "reorder_klines",
    "rest_errors",
    "rest_delay",
    "refuse",
    "server_shutdown",
    "archive_corrupt",
    "archive_missing",
)

_TRUE = {"1", "true", "on", "yes"}
_FALSE = {"0", "false", "off", "no"}


def _parse_patterns(value: str | None) -> tuple[str, ...]:
    """``all`` / a file name / a glob, or several separated by commas; ``off`` / ``0`` / ``none`` clears."""
    v = "all" if value is None else value.strip()
    if v.lower() in ("", "off", "none") or v.lower() in _FALSE:
        return ()
    pats = tuple(p.strip() for p in v.split(",") if p.strip())
    return tuple("*" if p.lower() == "all" else p for p in pats)


def _matches(patterns: tuple[str, ...], path: str) -> bool:
    # The zip's name and its checksum's are one file for the switches; a pattern may name the
    # file (`BTCUSDT-1m-2024-05.zip`) or glob over its whole path (`*/daily/*`).
    path = path.lstrip("/").removesuffix(".CHECKSUM")
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(path, p) for p in patterns)


def _parse_bool(value: str | None) -> bool:
    if value is None:
        return True  # `--fault silent` means on
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError(f"expected a boolean (1/0/true/false), got {value!r}")


class Faults:
    """Thread-safe fault switches. All start off.

    Stream data switches (``silent``, ``malformed``, ``duplicate_klines``, ``reorder_klines``)
    act on every connection at the next push; REST switches on the next request; ``refuse`` on
    the next websocket handshake.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.silent = False
        self.malformed_every = 0
        self.duplicate_klines = False
        self.reorder_klines = False
        self.rest_delay = 0.0
        self._rest_error_status = 0
        self._rest_error_count = 0
        self._refuse_until = 0.0  # time.monotonic()
        # Archive switches: glob patterns over file names; tuples are swapped whole (thread-safe).
        self.archive_corrupt: tuple[str, ...] = ()
        self.archive_missing: tuple[str, ...] = ()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drop_all: Callable[[], None] | None = None
        self._shutdown: Callable[[], None] | None = None

    # ------------------------------------------------------------ wiring (server side)

    def bind(
        self,
        loop: asyncio.AbstractEventLoop,
        drop_all: Callable[[], None],
        server_shutdown: Callable[[], None],
    ) -> None:
        """Connect the one-shot actions to a running server on ``loop`` (called by SimServer)."""
        self._loop, self._drop_all, self._shutdown = loop, drop_all, server_shutdown

    def unbind(self) -> None:
        """Detach from a stopped server: later one-shot actions raise RuntimeError."""
        self._loop = self._drop_all = self._shutdown = None

    def _run_on_loop(self, fn: Callable[[], None] | None) -> None:
        loop = self._loop
        if loop is None or fn is None or loop.is_closed():
            raise RuntimeError("the simulator is not running")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fn()
            return
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def call() -> None:
            try:
                fn()
                done.set_result(None)
            except BaseException as exc:  # hand the failure to the waiting thread
                done.set_exception(exc)

        loop.call_soon_threadsafe(call)
        done.result(timeout=10.0)

    # ------------------------------------------------------------ the switches

    def drop_all(self) -> None:
        """Abort every websocket connection now, without a close frame (clients see 1006)."""
        self._run_on_loop(self._drop_all)

    def server_shutdown(self) -> None:
        """Send ``serverShutdown`` to every connection, then close them (1001) after a short grace."""
        self._run_on_loop(self._shutdown)

    def set_silent(self, on: bool) -> None:
        """Keep connections open and answering pings (and control frames) but push no stream data.

        Data produced meanwhile is lost, as on a real stalled stream.
        """
        self.silent = bool(on)

    def set_malformed(self, every_n: int) -> None:
        """Make every ``every_n``-th data frame of each connection garbage; 0 turns it off.

        The garbage cycles through truncated JSON, a binary frame of junk, an event with wrong
        value types and an unknown event type. The frame it replaces is lost.
        """
        if every_n < 0:
            raise ValueError("every_n must be >= 0")
        self.malformed_every = int(every_n)

    def set_duplicate_klines(self, on: bool) -> None:
        """Send every kline push twice."""
        self.duplicate_klines = bool(on)

    def set_reorder_klines(self, on: bool) -> None:
        """After every kline push, re-send the previous (older) push of that stream."""
        self.reorder_klines = bool(on)

    def set_rest_errors(self, status: int, count: int) -> None:
        """Answer the next ``count`` REST requests with HTTP ``status`` (e.g. 500, 502, 503)."""
        if not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        if count < 0:
            raise ValueError("count must be >= 0")
        with self._lock:
            self._rest_error_status, self._rest_error_count = int(status), int(count)

    def set_rest_delay(self, seconds: float) -> None:
        """Delay every REST answer by ``seconds`` (0 = off)."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        self.rest_delay = float(seconds)

    def refuse_connections(self, seconds: float) -> None:
        """Reject new websocket handshakes with HTTP 503 for ``seconds`` from now (0 = stop)."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        self._refuse_until = time.monotonic() + seconds

    def set_archive_corrupt(self, patterns: tuple[str, ...] | list[str]) -> None:
        """Serve archive zips whose name (or path) matches a glob with bytes that fail their ``.CHECKSUM``.

        ``("*",)`` hits every file, ``()`` turns it off. The zip stays a readable zip (its last
        row is dropped): only the checksum can tell.
        """
        self.archive_corrupt = tuple(patterns)

    def set_archive_missing(self, patterns: tuple[str, ...] | list[str]) -> None:
        """Answer 404 for archive files (zip and ``.CHECKSUM``) matching a glob; ``()`` turns it off."""
        self.archive_missing = tuple(patterns)

    # ------------------------------------------------------------ queries (server side)

    def archive_is_corrupt(self, path: str) -> bool:
        """True when the archive file at URL ``path`` must be served corrupted."""
        return _matches(self.archive_corrupt, path)

    def archive_is_missing(self, path: str) -> bool:
        """True when the archive file at URL ``path`` (zip or ``.CHECKSUM``) must be a 404."""
        return _matches(self.archive_missing, path)

    def take_rest_error(self) -> int:
        """Consume one injected REST error: its status, or 0 when none is pending."""
        with self._lock:
            if self._rest_error_count <= 0:
                return 0
            self._rest_error_count -= 1
            return self._rest_error_status

    def refusing(self) -> bool:
        """True while new websocket connections are being refused."""
        return time.monotonic() < self._refuse_until

    def archive_state(self) -> dict[str, list[str]]:
        """The archive switches as a JSON-able dict (``GET /_sim/state`` shows it under ``archive``)."""
        return {"archive_corrupt": list(self.archive_corrupt), "archive_missing": list(self.archive_missing)}

    def state(self) -> dict[str, Any]:
        """The switches as a JSON-able dict (``GET /_sim/state``); archive ones: :meth:`archive_state`."""
        with self._lock:
            errors = {"status": self._rest_error_status, "remaining": self._rest_error_count}
        return {
            "silent": self.silent,
            "malformed": self.malformed_every,
            "duplicate_klines": self.duplicate_klines,
            "reorder_klines": self.reorder_klines,
            "rest_errors": errors,
            "rest_delay": self.rest_delay,
            "refuse_remaining_s": round(max(0.0, self._refuse_until - time.monotonic()), 3),
        }

    # ------------------------------------------------------------ text form

    def apply(self, name: str, value: str | None = None, count: str | None = None) -> None:
        """Flip one switch given as text, as the admin endpoint and ``--fault NAME[=VALUE]`` do.

        ``rest_errors`` takes ``STATUS`` or ``STATUS:COUNT`` (or ``count`` separately; default 1).
        ``archive_corrupt`` / ``archive_missing`` take ``all`` (the default), a file name or a
        glob, several joined by commas, or ``off``; each setting replaces the previous one.
        Raises ValueError for an unknown name or a bad value.
        """
        try:
            if name == "drop_all":
                self.drop_all()
            elif name == "server_shutdown":
                self.server_shutdown()
            elif name == "silent":
                self.set_silent(_parse_bool(value))
            elif name == "malformed":
                self.set_malformed(int(value) if value is not None else 5)
            elif name == "duplicate_klines":
                self.set_duplicate_klines(_parse_bool(value))
            elif name == "reorder_klines":
                self.set_reorder_klines(_parse_bool(value))
            elif name == "rest_errors":
                status_s, _, count_s = (value or "500").partition(":")
                self.set_rest_errors(int(status_s), int(count_s or count or "1"))
            elif name == "rest_delay":
                self.set_rest_delay(float(value if value is not None else "1"))
            elif name == "refuse":
                self.refuse_connections(float(value if value is not None else "5"))
            elif name == "archive_corrupt":
                self.set_archive_corrupt(_parse_patterns(value))
            elif name == "archive_missing":
                self.set_archive_missing(_parse_patterns(value))
            else:
                raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULT_NAMES)}")
        except (TypeError, ArithmeticError) as exc:
            raise ValueError(f"bad value {value!r} for fault {name!r}") from exc


# ---------------------------------------------------------------- garbage frames

_JUNK = bytes([0x00, 0xFF, 0xFE, 0x9C]) + b"binmon-sim junk" + bytes(range(0x80, 0x90))


def garbage(n: int, frame: bytes, stream: str | None, event_ms: int) -> tuple[bytes, bool]:
    """The ``n``-th kind of garbage to send in place of ``frame``: ``(data, is_text)``.

    ``stream`` is the combined-stream name when the connection uses the combined wrapper
    (garbage that is otherwise well-formed keeps the wrapper, so only the payload is wrong).
    """
    kind = n % 4
    if kind == 0:  # truncated JSON: a frame cut in the middle
        return frame[: max(1, len(frame) // 2)], True
    if kind == 1:  # junk in a binary frame (Binance only sends text)
        return _JUNK, False
    if kind == 2:  # the right event type with the wrong value types
        if b'"e":"trade"' in frame or b'"e":"aggTrade"' in frame:
            body = b'{"e":"trade","E":"soon","s":42,"t":"x","p":1.5,"q":null,"T":"x","m":"yes","M":true}'
        else:
            body = (
                b'{"e":"kline","E":"soon","s":42,"k":{"t":"x","T":null,"s":42,"i":1,"f":"a","L":"b",'
                b'"o":1.5,"c":[],"h":{},"l":true,"v":"x","n":"many","x":"yes","q":0,"V":0,"Q":0,"B":0}}'
            )
    else:  # a well-formed event nobody knows
        body = f'{{"e":"simMystery","E":{event_ms},"s":"SIMSIM","z":[1,2,3]}}'.encode()
    if stream is not None:
        body = b'{"stream":"' + stream.encode() + b'","data":' + body + b"}"
    return body, True
