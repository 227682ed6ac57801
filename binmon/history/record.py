"""Raw websocket capture: every frame exactly as received, with its receive time.

File format (JSON lines, UTF-8), readable by ``binmon sim --replay``:

- line 1, a header: ``{"binmon_capture": 1, "url": ..., "streams": [...], "started_ms": ...}``
- then one line per frame: ``{"t": receive_ms, "frame": "<the frame text, verbatim>"}``
- and a marker when the connection dropped and was re-opened: ``{"t": ms, "gap": "<reason>"}``
  (frames sent meanwhile are lost; a replay knows where).

Lines are flushed at least every ``flush_s`` seconds and on close, so an interrupted
capture keeps everything but the last fraction of a second; a torn final line is
ignored by the reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from binmon.binance.backoff import backoff

log = logging.getLogger(__name__)

CAPTURE_VERSION = 1


@dataclass
class CaptureStats:
    """Counters of one capture session."""

    frames: int = 0
    bytes: int = 0
    gaps: int = 0


class CaptureWriter:
    """Writes a capture file (format in the module docstring)."""

    def __init__(self, path: Path, url: str, streams: list[str], *, flush_s: float = 0.5) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = path.open("wb")
        self._flush_s = flush_s
        self._last_flush = time.monotonic()
        self.stats = CaptureStats()
        header = {
            "binmon_capture": CAPTURE_VERSION,
            "url": url,
            "streams": streams,
            "started_ms": int(time.time() * 1000),
        }
        self._f.write(orjson.dumps(header) + b"\n")
        self._f.flush()

    def frame(self, recv_ms: int, text: str) -> None:
        """Append one received frame."""
        self._f.write(orjson.dumps({"t": recv_ms, "frame": text}) + b"\n")
        self.stats.frames += 1
        self.stats.bytes += len(text)
        self._maybe_flush()

    def gap(self, recv_ms: int, reason: str) -> None:
        """Mark that the connection dropped: frames between here and the next are missing."""
        self._f.write(orjson.dumps({"t": recv_ms, "gap": reason}) + b"\n")
        self.stats.gaps += 1
        self._f.flush()

    def _maybe_flush(self) -> None:
        now = time.monotonic()
        if now - self._last_flush >= self._flush_s:
            self._f.flush()
            self._last_flush = now

    def close(self) -> None:
        """Flush everything to disk and close."""
        if not self._f.closed:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def read_capture(path: Path) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """Open a capture: return its header and an iterator over its frame/gap records.

    Raises ``ValueError`` with a one-line reason when the file is not a binmon capture.
    A torn last line (an interrupted capture) is skipped.
    """
    f = path.open("rb")
    first = f.readline()
    try:
        header = orjson.loads(first)
    except orjson.JSONDecodeError as exc:
        f.close()
        raise ValueError(f"{path} is not a binmon capture (bad header line)") from exc
    if not isinstance(header, dict) or header.get("binmon_capture") != CAPTURE_VERSION:
        f.close()
        raise ValueError(f"{path} is not a binmon capture (version {CAPTURE_VERSION})")

    def records() -> Iterator[dict[str, Any]]:
        with f:
            for line in f:
                try:
                    rec = orjson.loads(line)
                except orjson.JSONDecodeError:
                    log.warning("skipping a torn line in %s", path)
                    continue
                if isinstance(rec, dict) and isinstance(rec.get("t"), int):
                    yield rec

    return header, records()


def combined_url(ws_url: str, streams: list[str]) -> str:
    """The combined-stream URL for ``streams`` (frames arrive wrapped with their stream name)."""
    return f"{ws_url.rstrip('/')}/stream?streams={'/'.join(streams)}"


async def record(
    ws_url: str,
    streams: list[str],
    writer: CaptureWriter,
    stop: asyncio.Event,
    *,
    on_status: Callable[[str], None] | None = None,
    clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
) -> CaptureStats:
    """Capture ``streams`` from ``ws_url`` into ``writer`` until ``stop`` is set.

    Reconnects with capped exponential backoff when the connection drops, marking each
    drop as a gap. Never raises for network trouble; returns the writer's stats.
    """
    url = combined_url(ws_url, streams)
    delays = backoff()
    while not stop.is_set():
        reason = "closed by the server"
        try:
            async with connect(url, open_timeout=10, max_size=2**24) as ws:
                delays = backoff()
                if on_status:
                    on_status("recording")
                # Closing the socket is how a stop interrupts the read loop without a
                # per-frame wait on two futures (captures run at thousands of frames/s).
                closer = asyncio.create_task(_close_when_set(stop, ws))
                try:
                    async for raw in ws:
                        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
                        writer.frame(clock_ms(), text)
                finally:
                    closer.cancel()
        except (OSError, WebSocketException, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
        if stop.is_set():
            break
        writer.gap(clock_ms(), reason)
        delay = next(delays)
        if on_status:
            on_status(f"disconnected ({reason}); retrying in {delay:.1f} s")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
    return writer.stats


async def _close_when_set(stop: asyncio.Event, ws: ClientConnection) -> None:
    await stop.wait()
    await ws.close()
