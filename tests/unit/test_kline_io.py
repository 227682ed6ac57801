"""Kline files in and out: the fast CSV parser agrees with the strict one, names, export format."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from binmon.history import store_blocks as sb
from binmon.history.archive import ArchiveFormatError, ChecksumMismatch, checksum_line, parse_kline_csv
from binmon.history.kline_io import (
    _parse_fast,
    infer_series,
    iter_stored_klines,
    parse_kline_csv_array,
    read_kline_file,
    write_klines_csv,
)
from binmon.history.ranges import SeriesKey
from binmon.history.store import CandleStore

HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
    "taker_buy_quote_volume,ignore\n"
)


@pytest.fixture(scope="module")
def real_csv(real_dir: Path) -> bytes:
    return (real_dir / "XRPETH-1m-2019-10-11_13.csv").read_bytes()


def _micro(raw: bytes) -> bytes:
    out = []
    for line in raw.decode().splitlines():
        c = line.split(",")
        c[0], c[6] = str(int(c[0]) * 1000), str(int(c[6]) * 1000 + 999)
        out.append(",".join(c))
    return ("\n".join(out) + "\n").encode()


def test_fast_path_equals_the_strict_parser_on_real_data(real_csv: bytes) -> None:
    strict = sb.klines_to_array(parse_kline_csv(real_csv, "XRPETH", "1m"))
    fast = _parse_fast(real_csv, "1m")
    assert fast is not None  # the real file takes the fast path
    assert np.array_equal(fast, strict)
    # Microsecond times (spot files from 2025), a futures header, CRLF line ends: same candles.
    for variant in (_micro(real_csv), HEADER.encode() + real_csv, real_csv.replace(b"\n", b"\r\n")):
        got = _parse_fast(variant, "1m")
        assert got is not None and np.array_equal(got, strict)
    assert parse_kline_csv_array(b"", "XRPETH", "1m").size == 0


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda b: b.replace(b"0.00141342", b"x.1", 1), "line 1: bad XRPETH 1m kline row"),
        (lambda b: b.replace(b",0\n", b",0,7\n", 1), "line 1: kline row must be a list of 12 columns"),
        (lambda b: b.replace(b",0\n", b"\n", 1), "line 1: kline row must be a list of 12 columns"),
        (lambda b: b.replace(b"\n", b"\n\n", 1), "line 3: data after the blank line 2"),
        (lambda b: b.replace(b"1570752060000", b"1570752030000", 1), "not on the 1m grid"),
        (lambda b: b.replace(b"0.00141342", b"nan", 1), "not a finite number"),
        (lambda b: b.split(b"\n", 1)[1].split(b"\n", 1)[0] + b"\n" + b, "does not follow"),
    ],
)
def test_bad_files_get_the_strict_parsers_error(real_csv: bytes, mutate: object, error: str) -> None:
    with pytest.raises(ArchiveFormatError, match=error):
        parse_kline_csv_array(mutate(real_csv), "XRPETH", "1m")  # type: ignore[operator]


def test_mixed_time_units_are_refused(real_csv: bytes) -> None:
    lines = real_csv.splitlines(keepends=True)
    mixed = lines[0] + _micro(b"".join(lines[1:2])) + b"".join(lines[2:])
    with pytest.raises(ArchiveFormatError, match="times not in milliseconds"):
        parse_kline_csv_array(mixed, "XRPETH", "1m")


def test_infer_series_from_archive_names() -> None:
    sym, iv, f = infer_series("BTCUSDT-1m-2024-01.zip")  # type: ignore[misc]
    assert (sym, iv, f.period, f.date) == ("BTCUSDT", "1m", "monthly", "2024-01")  # type: ignore[union-attr]
    sym, iv, f = infer_series("/x/ETHBTC-1mo-2024-01.csv")  # type: ignore[misc]
    assert (sym, iv, f.period) == ("ETHBTC", "1M", "monthly")  # type: ignore[union-attr]
    sym, iv, f = infer_series("BTCUSDT-1h-2024-01-05.zip")  # type: ignore[misc]
    assert (sym, iv, f.period, f.date) == ("BTCUSDT", "1h", "daily", "2024-01-05")  # type: ignore[union-attr]
    assert infer_series("ETHBTC-1mo-2024-01-05.zip") == ("ETHBTC", "1M", None)  # no daily 1M files
    assert infer_series("XRPETH-1m-2019-10-11_13.csv") == ("XRPETH", "1m", None)
    assert infer_series("BTCUSDT-7m-2024-01.zip") is None
    assert infer_series("prices.csv") is None
    assert infer_series("BTCUSDT-1m-2024-13.zip") == ("BTCUSDT", "1m", None)


def test_read_kline_file_zip_checksum_and_interval_check(tmp_path: Path, real_csv: bytes) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("XRPETH-1m-2019-10-11.csv", real_csv)
    z = tmp_path / "XRPETH-1m-2019-10-11.zip"
    z.write_bytes(buf.getvalue())
    assert read_kline_file(z, "XRPETH", "1m").size == 2469
    (tmp_path / (z.name + ".CHECKSUM")).write_text(checksum_line(buf.getvalue(), z.name))
    assert read_kline_file(z, "XRPETH", "1m").size == 2469
    (tmp_path / (z.name + ".CHECKSUM")).write_text(checksum_line(b"other", z.name))
    with pytest.raises(ChecksumMismatch):
        read_kline_file(z, "XRPETH", "1m")
    # 1m rows read as 1s candles: on the grid, but every close time says "not a 1s candle".
    c = tmp_path / "x.csv"
    c.write_bytes(real_csv)
    with pytest.raises(ArchiveFormatError, match="not a 1s candle"):
        read_kline_file(c, "XRPETH", "1s")


def test_export_writes_binance_bytes(tmp_path: Path, real_csv: bytes) -> None:
    key = SeriesKey.spot("XRPETH", "1m")
    with CandleStore.open(tmp_path / "s.db") as store:
        store.upsert_array(key, parse_kline_csv_array(real_csv, "XRPETH", "1m"))
        out = io.StringIO()
        n = write_klines_csv(out, iter_stored_klines(store, key, None, None, chunk=700))
        assert n == 2469 and out.getvalue().encode() == real_csv
        out = io.StringIO()
        first = 1570752000000
        write_klines_csv(out, iter_stored_klines(store, key, first + 60_000, first + 120_000), header=True)
        lines = out.getvalue().splitlines(keepends=True)
        assert lines[0] == HEADER
        assert "".join(lines[1:]).encode() == b"".join(real_csv.splitlines(keepends=True)[1:3])
        assert list(iter_stored_klines(store, SeriesKey.spot("XRPETH", "1h"), None, None)) == []
