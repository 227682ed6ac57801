"""The simulator's data.binance.vision: kline archive files built from its own market.

``GET /data/spot/{monthly|daily}/klines/<SYM>/<iv>/<SYM>-<iv>-<date>.zip`` (and ``.CHECKSUM``)
on the simulator's port answers like the real archive, so the archive client and the
downloader are tested end to end:

* rows are exactly the ``/api/v3/klines`` rows of the same candles (the same row source, paged
  through the same selection), times written in microseconds in files dated 2025-01-01 or
  later, as Binance does;
* a file exists only once its period is complete on the sim clock (and every candle opening
  in it has closed: see :attr:`~binmon.history.archive.ArchiveFile.ready_ms`), only for
  symbols the market knows, periods reaching past the symbol's listing and periods holding at
  least one candle; otherwise 404 with S3's ``NoSuchKey`` XML body;
* only spot klines (the simulator is a spot exchange), daily files only for the intervals
  Binance has them for;
* no request weight (it is a CDN), but the ``rest_delay`` fault applies; the
  ``archive_missing`` / ``archive_corrupt`` faults turn chosen files into 404s or into zips
  that fail their ``.CHECKSUM``.

Built files are kept in a bounded LRU cache (a complete period never changes). Building from
the generated or replayed market runs on a worker thread (a month of 1m candles takes ~0.5 s;
its sources are read-only or locked); capture mode's row source lives on the event loop, so
it is read there.
"""

from __future__ import annotations

import asyncio
import calendar
import io
import itertools
import logging
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from websockets.http11 import Response

from binmon.history.archive import ArchiveFile, checksum_line, parse_archive_path
from binmon.sim import wire
from binmon.sim.faults import Faults
from binmon.sim.rest import make_response

log = logging.getLogger("binmon.sim.archive")

#: ``(symbol, interval, startTime, endTime, limit) -> rows``, as ``/api/v3/klines`` serves them.
KlineRows = Callable[[str, str, int | None, int | None, int], list[list[Any]]]

#: Files dated from here on carry microsecond times (Binance's spot archives since 2025).
MICROS_FROM_MS = calendar.timegm((2025, 1, 1, 0, 0, 0)) * 1000
_PAGE = 1000
_ZIP_TYPE = "application/zip"


@dataclass(frozen=True, slots=True)
class _Built:
    zip: bytes
    checksum: str  # the .CHECKSUM text


def not_found(key: str) -> Response:
    """The real archive's 404 (an S3 ``NoSuchKey`` error document) for ``key``."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message>"
        f"<Key>{escape(key)}</Key></Error>"
    ).encode()
    return make_response(404, body, "application/xml")


def archive_csv_line(row: list[Any], micros: bool) -> str:
    """One REST kline row as an archive CSV line (with ``\\n``); times in µs when ``micros``.

    A millisecond close time ``...59999`` becomes ``...59999999``: the last microsecond of
    the candle, as in Binance's files.
    """
    cols = [str(v) for v in row]
    if micros:
        cols[0] = str(int(row[0]) * 1000)
        cols[6] = str(int(row[6]) * 1000 + 999)
    return ",".join(cols) + "\n"


def build_zip(csv_name: str, chunks: Iterable[str], when_ms: int) -> bytes:
    """A deflated zip holding one CSV, the concatenation of ``chunks``, stamped ``when_ms``.

    The fixed stamp makes the bytes (and so the checksum) reproducible. Chunks are compressed
    as they come: a month of 1s candles is ~200 MB of text, never held at once.
    """
    d = datetime.fromtimestamp(max(when_ms, 315_532_800_000) / 1000, tz=UTC)  # zip dates start in 1980
    info = zipfile.ZipInfo(csv_name, (d.year, d.month, d.day, d.hour, d.minute, d.second))
    info.compress_type = zipfile.ZIP_DEFLATED
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf, zf.open(info, "w") as out:
        for chunk in chunks:
            out.write(chunk.encode())
    return buf.getvalue()


def corrupt_zip(data: bytes, when_ms: int) -> bytes:
    """``data`` rebuilt without its CSV's last row: still a valid zip, but a different one."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.infolist()[0]
        lines = zf.read(info).decode().splitlines(keepends=True)
    return build_zip(info.filename, ["".join(lines[:-1]) if lines else "0\n"], when_ms)


class SimArchive:
    """Answers archive URLs from ``market``'s candles as of ``clock``'s now.

    ``kline_rows`` is the ``/api/v3/klines`` row source when it is not the Market (capture
    mode; read on the event loop). ``max_files`` / ``max_bytes`` bound the cache of built zips.
    """

    def __init__(
        self,
        market: Any,
        clock: Any,
        faults: Faults,
        kline_rows: KlineRows | None = None,
        *,
        max_files: int = 64,
        max_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        self.market, self.clock, self.faults = market, clock, faults
        self._on_loop = kline_rows is not None
        self._rows: KlineRows = kline_rows if kline_rows is not None else self._market_rows
        self.max_files, self.max_bytes = max_files, max_bytes
        self._cache: OrderedDict[str, _Built] = OrderedDict()
        self._cache_bytes = 0
        self._building: dict[str, asyncio.Future[_Built | None]] = {}
        self.requests = 0
        self.not_found = 0
        self.built = 0

    def state(self) -> dict[str, int]:
        """Counters for ``GET /_sim/state``."""
        return {
            "requests": self.requests,
            "not_found": self.not_found,
            "built": self.built,
            "cached_files": len(self._cache),
            "cached_bytes": self._cache_bytes,
        }

    async def handle(self, target: str) -> Response:
        """Answer one ``GET /data/...`` (``target`` may carry a query string, which is ignored)."""
        self.requests += 1
        key = target.partition("?")[0].lstrip("/")
        if self.faults.rest_delay > 0:
            await asyncio.sleep(self.faults.rest_delay)
        try:
            file, is_checksum = parse_archive_path(key)
        except ValueError:
            file = None
        if file is None or not self._exists(file) or self.faults.archive_is_missing(key):
            return self._missing(key)
        try:
            built = await self._get(file)
        except Exception:  # a bug here must not look like a missing file, nor kill the server
            log.exception("cannot build %s", key)
            return make_response(500, b"<Error><Code>InternalError</Code></Error>", "application/xml")
        if built is None:  # no candle in the period: Binance publishes no file
            return self._missing(key)
        if is_checksum:
            return make_response(200, built.checksum.encode(), "text/plain")
        data = built.zip
        if self.faults.archive_is_corrupt(key):
            data = corrupt_zip(data, file.ready_ms)
        return make_response(200, data, _ZIP_TYPE)

    # ------------------------------------------------------------ what exists

    def _exists(self, file: ArchiveFile) -> bool:
        """Spot, a known symbol, a complete period, reaching past the listing."""
        if file.market != "spot" or self.market.symbol(file.symbol) is None:
            return False
        if file.ready_ms > self.clock.now_ms():
            return False
        listing = getattr(self.market, "listing_ms", None)  # capture mode has no listing time
        return listing is None or file.end_ms >= listing(file.symbol)

    def _missing(self, key: str) -> Response:
        self.not_found += 1
        return not_found(key)

    # ------------------------------------------------------------ building and caching

    async def _get(self, file: ArchiveFile) -> _Built | None:
        key = file.path
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        pending = self._building.get(key)
        if pending is not None:  # the .CHECKSUM and the zip asked together: build once
            return await asyncio.shield(pending)
        fut: asyncio.Future[_Built | None] = asyncio.get_running_loop().create_future()
        self._building[key] = fut
        try:
            built = self._build(file) if self._on_loop else await asyncio.to_thread(self._build, file)
        except Exception as exc:
            fut.set_exception(exc)
            fut.exception()  # mark it retrieved: a build nobody else waited on must not warn
            raise
        except BaseException:  # cancelled (server stopping): waiters are cancelled too
            fut.cancel()
            raise
        finally:
            self._building.pop(key, None)
        fut.set_result(built)
        if built is not None:
            self.built += 1  # counted here, on the loop: builds run on worker threads
            self._store(key, built)
        return built

    def _store(self, key: str, built: _Built) -> None:
        size = len(built.zip)
        if size > self.max_bytes:
            return
        self._cache[key] = built
        self._cache_bytes += size
        while len(self._cache) > self.max_files or self._cache_bytes > self.max_bytes:
            _, old = self._cache.popitem(last=False)
            self._cache_bytes -= len(old.zip)

    def _build(self, file: ArchiveFile) -> _Built | None:
        """The file's zip and checksum, or None when no candle opens in its span."""
        pages = self._period_pages(file)
        first = next(pages, None)
        if first is None:
            return None
        micros = file.start_ms >= MICROS_FROM_MS
        chunks = (
            "".join(archive_csv_line(r, micros) for r in page) for page in itertools.chain([first], pages)
        )
        data = build_zip(file.name.removesuffix(".zip") + ".csv", chunks, file.ready_ms)
        log.debug("built %s: %d bytes", file.name, len(data))
        return _Built(data, checksum_line(data, file.name))

    def _period_pages(self, file: ArchiveFile) -> Iterator[list[list[Any]]]:
        """The REST rows opening in the file's span, in non-empty pages, paged as a REST client would."""
        start = file.start_ms
        while start <= file.end_ms:
            page = self._rows(file.symbol, file.interval, start, file.end_ms, _PAGE)
            if page:
                yield page
            if len(page) < _PAGE:
                return
            start = int(page[-1][0]) + 1

    def _market_rows(
        self, sym: str, iv: str, start: int | None, end: int | None, limit: int
    ) -> list[list[Any]]:
        return [wire.kline_row(k) for k in self.market.klines(sym, iv, start, end, limit)]
