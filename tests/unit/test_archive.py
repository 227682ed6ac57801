"""data.binance.vision archives, the pure part: file layout, planning, checksums, CSV / zip parsing."""

from __future__ import annotations

import calendar
import hashlib
import io
import itertools
import threading
import time
import zipfile
from pathlib import Path

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from binmon.binance.errors import BinanceAPIError, NetworkError, ProtocolError
from binmon.binance.limiter import Cancelled
from binmon.core.intervals import DAY_MS, HOUR_MS, INTERVALS, MINUTE_MS, open_time
from binmon.history.archive import (
    DAILY_INTERVALS,
    ArchiveFile,
    ArchiveFormatError,
    ChecksumMismatch,
    archive_file,
    checksum_line,
    file_for,
    parse_archive_path,
    parse_checksum,
    parse_kline_csv,
    plan_archive,
    read_kline_zip,
    verify,
)
from binmon.history.archive_client import ArchiveClient
from binmon.history.csv_klines import HEADER

XRPETH_1M = "XRPETH-1m-2019-10-11_13.csv"


def ms(y: int, mo: int, d: int = 1, h: int = 0, mi: int = 0) -> int:
    return calendar.timegm((y, mo, d, h, mi, 0)) * 1000


def names(files: list[ArchiveFile]) -> list[str]:
    return [f"{f.period[0]}:{f.date}" for f in files]


def zipped(text: str | bytes, name: str = "X.csv") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, text)
    return buf.getvalue()


def to_micros(line: str) -> str:
    cols = line.split(",")
    cols[0] = str(int(cols[0]) * 1000)
    cols[6] = str(int(cols[6]) * 1000 + 999)
    return ",".join(cols)


# ---------------------------------------------------------------- files and paths


def test_file_names_paths_and_spans() -> None:
    f = archive_file("btcusdt", "1m", "monthly", "2024-02")
    assert f.symbol == "BTCUSDT" and f.name == "BTCUSDT-1m-2024-02.zip"
    assert f.path == "data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-02.zip"
    assert f.checksum_path == f.path + ".CHECKSUM"
    assert (f.start_ms, f.end_ms) == (ms(2024, 2), ms(2024, 3) - 1)  # a leap February, calendar-aware
    d = archive_file("BTCUSDT", "1h", "daily", "2024-12-31", market="futures/um")
    assert d.path == "data/futures/um/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-12-31.zip"
    assert (d.start_ms, d.end_ms, d.ready_ms) == (ms(2024, 12, 31), ms(2025, 1, 1) - 1, ms(2025, 1, 1))


def test_1M_is_spelled_1mo_both_ways() -> None:
    f = archive_file("ETHBTC", "1M", "monthly", "2023-12")
    assert f.path == "data/spot/monthly/klines/ETHBTC/1mo/ETHBTC-1mo-2023-12.zip"
    assert parse_archive_path("/" + f.checksum_path) == (f, True)
    assert parse_archive_path(f.path) == (f, False)
    with pytest.raises(ValueError, match="1mo"):
        parse_archive_path("data/spot/monthly/klines/ETHBTC/1M/ETHBTC-1M-2023-12.zip")


@pytest.mark.parametrize(
    "path",
    [
        "data/spot/daily/klines/BTCUSDT/1w/BTCUSDT-1w-2024-01-01.zip",  # no daily weeks
        "data/spot/daily/klines/BTCUSDT/1mo/BTCUSDT-1mo-2024-01-01.zip",
        "data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-02-01.zip",  # daily date, monthly dir
        "data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-02-30.zip",  # no such day
        "data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-13.zip",
        "data/spot/monthly/klines/btcusdt/1m/btcusdt-1m-2024-01.zip",  # keys are case-sensitive
        "data/spot/monthly/klines/BTCUSDT/1m/ETHUSDT-1m-2024-01.zip",
        "data/spot/monthly/klines/BTCUSDT/7m/BTCUSDT-7m-2024-01.zip",
        "data/spot/monthly/trades/BTCUSDT/BTCUSDT-trades-2024-01.zip",
        "data/futures/um/daily/klines/BTCUSDT/1s/BTCUSDT-1s-2024-01-01.zip",  # 1s is spot only
        "data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01.zip.sha256",
        "data/spot/monthly/klines/BTCUSDT/1m/../../BTCUSDT-1m-2024-01.zip",
    ],
)
def test_bad_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError):
        parse_archive_path(path)


def test_archive_file_validation() -> None:
    for args in (
        ("X", "1m", "weekly", "2024-01"),
        ("X", "1m", "monthly", "2024-1"),
        ("X", "2m", "monthly", "2024-01"),
    ):
        with pytest.raises(ValueError):
            archive_file(*args)
    with pytest.raises(ValueError, match="market"):
        archive_file("X", "1m", "monthly", "2024-01", market="futures")
    assert file_for("X", "1d", "daily", ms(2024, 3, 5, 23, 59)).date == "2024-03-05"


def test_weekly_and_3d_files_wait_for_their_last_candle() -> None:
    may = archive_file("X", "1w", "monthly", "2024-05")
    # Weeks open on Mondays; the last one opening in May 2024 opens on the 27th, ends June 3rd.
    assert may.ready_ms == ms(2024, 6, 3)
    assert archive_file("X", "1M", "monthly", "2024-05").ready_ms == ms(2024, 6)
    # 3d candles count from the epoch: the one opening 2024-07-31 closes on August 3rd.
    three = archive_file("X", "3d", "monthly", "2024-07")
    assert three.ready_ms == open_time("3d", three.end_ms) + 3 * DAY_MS == ms(2024, 8, 3)
    assert archive_file("X", "3d", "monthly", "2024-05").ready_ms == ms(2024, 6)  # ends on the 1st


# ---------------------------------------------------------------- planning


NOW = ms(2024, 6, 12, 13, 37)


def test_plan_whole_months_then_days_of_this_month_then_rest() -> None:
    files, rest = plan_archive("BTCUSDT", "1m", ms(2024, 3), NOW, NOW)
    assert names(files) == ["m:2024-03", "m:2024-04", "m:2024-05"] + [
        f"d:2024-06-{d:02d}" for d in range(1, 12)
    ]
    assert rest == ms(2024, 6, 12)  # today is REST's
    assert all(f.interval == "1m" and f.market == "spot" for f in files)
    # contiguous: each file starts where the previous ended
    assert all(a.end_ms + 1 == b.start_ms for a, b in itertools.pairwise(files))


def test_plan_range_starting_mid_month_uses_days_for_that_month() -> None:
    listing = ms(2024, 4, 17, 13, 45)  # a symbol listed in the middle of a day of a month
    files, rest = plan_archive("NEWUSDT", "15m", listing, NOW, NOW)
    assert names(files)[:14] == [f"d:2024-04-{d:02d}" for d in range(17, 31)]
    assert names(files)[14] == "m:2024-05"
    assert files[0].start_ms < listing <= files[0].end_ms  # the first day is partial: caller trims
    assert rest == ms(2024, 6, 12)


def test_plan_range_ending_mid_month_in_the_past() -> None:
    files, rest = plan_archive("BTCUSDT", "1h", ms(2024, 1, 30), ms(2024, 3, 2, 5), NOW)
    assert names(files) == ["d:2024-01-30", "d:2024-01-31", "m:2024-02", "d:2024-03-01", "d:2024-03-02"]
    assert rest is None


def test_plan_range_ending_on_the_last_candle_of_a_month_takes_the_month() -> None:
    files, rest = plan_archive("BTCUSDT", "1h", ms(2024, 2), ms(2024, 3) - HOUR_MS, NOW)
    assert names(files) == ["m:2024-02"] and rest is None
    files, _ = plan_archive("BTCUSDT", "1h", ms(2024, 2), ms(2024, 3) - HOUR_MS - 1, NOW)
    assert names(files)[0] == "d:2024-02-01"


def test_plan_range_inside_today_is_all_rest() -> None:
    assert plan_archive("BTCUSDT", "1m", ms(2024, 6, 12, 1), NOW, NOW) == ([], ms(2024, 6, 12, 1))
    assert plan_archive("BTCUSDT", "1m", NOW + DAY_MS, NOW + 2 * DAY_MS, NOW) == ([], NOW + DAY_MS)


def test_plan_first_day_of_month_and_month_boundaries() -> None:
    now = ms(2024, 7, 1, 0, 0)  # midnight: June has just ended, so its monthly file is ready
    files, rest = plan_archive("BTCUSDT", "1m", ms(2024, 6), now, now)
    assert names(files) == ["m:2024-06"] and rest == now
    files, rest = plan_archive("BTCUSDT", "1m", ms(2024, 6), now - 1, now - 1)
    assert names(files) == [f"d:2024-06-{d:02d}" for d in range(1, 30)] and rest == ms(2024, 6, 30)


def test_plan_publish_lag_falls_back_to_days_then_rest() -> None:
    now = ms(2024, 7, 1, 6)  # six hours into July; Binance may not have published June yet
    files, rest = plan_archive("BTCUSDT", "1d", ms(2024, 6), now, now, publish_lag_ms=DAY_MS)
    assert names(files) == [f"d:2024-06-{d:02d}" for d in range(1, 30)]
    assert rest == ms(2024, 6, 30)
    files, _ = plan_archive("BTCUSDT", "1d", ms(2024, 6), now, now, publish_lag_ms=HOUR_MS)
    assert names(files) == ["m:2024-06"]


def test_plan_1s_uses_days_and_months_like_1m() -> None:
    files, rest = plan_archive("BTCUSDT", "1s", ms(2024, 5, 31), ms(2024, 6, 2) - 1, NOW)
    assert names(files) == ["d:2024-05-31", "d:2024-06-01"] and rest is None


@pytest.mark.parametrize("interval", ["1w", "3d", "1M"])
def test_plan_intervals_without_daily_files(interval: str) -> None:
    files, rest = plan_archive("BTCUSDT", interval, ms(2024, 1, 15), NOW, NOW)
    assert names(files) == [f"m:2024-{m:02d}" for m in range(1, 6)]  # the partial January too
    assert all(f.period == "monthly" for f in files)
    if interval == "1M":
        assert files[-1].ready_ms == ms(2024, 6) and rest == ms(2024, 6)
    elif interval == "1w":
        assert rest == ms(2024, 6)  # the first week opening in June is REST's
    assert rest is not None and rest > files[-1].end_ms


def test_plan_weekly_waits_for_the_week_that_straddles_month_end() -> None:
    now = ms(2024, 6, 2)  # the week opening 2024-05-27 is still forming
    files, rest = plan_archive("BTCUSDT", "1w", ms(2024, 4), now, now)
    assert names(files) == ["m:2024-04"] and rest == ms(2024, 5)


def test_plan_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="before"):
        plan_archive("BTCUSDT", "1m", 10, 5, NOW)
    with pytest.raises(ValueError):
        plan_archive("BTCUSDT", "1m", 0, 5, NOW, market="futures")
    with pytest.raises(ValueError):
        plan_archive("BTCUSDT", "1s", 0, 5, NOW, market="futures/um")
    with pytest.raises(ValueError):
        plan_archive("BTCUSDT", "1h", 0, 5, NOW, publish_lag_ms=-1)


@settings(max_examples=200, deadline=None)
@given(
    interval=st.sampled_from(INTERVALS),
    start=st.integers(ms(2023, 1), ms(2024, 7)),
    length=st.integers(0, 200 * DAY_MS),
    now=st.integers(ms(2023, 1), ms(2024, 9)),
    lag=st.sampled_from([0, HOUR_MS, DAY_MS]),
)
def test_plan_covers_the_range_contiguously_with_published_files(
    interval: str, start: int, length: int, now: int, lag: int
) -> None:
    end = start + length
    files, rest = plan_archive("BTCUSDT", interval, start, end, now, publish_lag_ms=lag)
    t = start
    for f in files:
        assert f.start_ms <= t <= f.end_ms, "files must start at the first uncovered open time"
        assert f.ready_ms + lag <= now, "only published files"
        assert f.period == "monthly" or interval in DAILY_INTERVALS
        t = f.end_ms + 1
    if rest is None:
        assert t > end
    else:
        assert rest == t <= end and (rest >= start)


# ---------------------------------------------------------------- checksums


def test_checksums() -> None:
    data = b"PK\x03\x04 some zip"
    line = checksum_line(data, "BTCUSDT-1m-2024-05.zip")
    digest = hashlib.sha256(data).hexdigest()
    assert line == f"{digest}  BTCUSDT-1m-2024-05.zip\n"
    assert parse_checksum(line) == digest
    assert parse_checksum(line.encode(), name="BTCUSDT-1m-2024-05.zip") == digest
    assert parse_checksum(digest.upper() + " *x.zip\n") == digest  # binary-mode marker, upper case
    assert parse_checksum(digest) == digest
    verify(data, line, name="BTCUSDT-1m-2024-05.zip")
    with pytest.raises(
        ChecksumMismatch, match=r"BTCUSDT-1m-2024-05.zip: SHA-256 [0-9a-f]{16}\.\.\. does not"
    ):
        verify(data + b"!", line, name="BTCUSDT-1m-2024-05.zip")
    for bad in ("", "not a digest  x.zip", digest[:-1] + "  x.zip", f"{digest}  a.zip\n{digest}  b.zip"):
        with pytest.raises(ValueError):
            parse_checksum(bad)
    with pytest.raises(ArchiveFormatError, match=r"is for 'other\.zip'"):
        parse_checksum(f"{digest}  other.zip", name="x.zip")


# ---------------------------------------------------------------- parsing


ROW2 = (
    "1704067260000,42283.58,42298.62,42261.02,42298.61,35.92724,1704067319999,1519032.9,1327,23.13,978.21,0"
)
ROW = "1704067200000,42283.58,42298.62,42261.02,42298.61,35.92724,1704067259999,1519032.9,1327,23.13,978.21,0"


def test_parse_ms_and_us_files_give_the_same_candles() -> None:
    ms_rows = [ROW, ROW2]
    a = parse_kline_csv("\n".join(ms_rows) + "\n", "BTCUSDT", "1m")
    b = parse_kline_csv("\n".join(to_micros(r) for r in ms_rows).encode(), "btcusdt", "1m")
    assert a == b and len(a) == 2
    k = a[0]
    assert (k.symbol, k.interval, k.open_time, k.close_time, k.closed) == (
        "BTCUSDT", "1m", 1704067200000, 1704067259999, True
    )  # fmt: skip
    assert (k.open, k.volume, k.trades, k.taker_buy_quote) == (42283.58, 35.92724, 1327, 978.21)


def test_parse_futures_header_and_crlf() -> None:
    text = ",".join(HEADER) + "\r\n" + ROW + "\r\n"
    assert [k.open_time for k in parse_kline_csv(text, "BTCUSDT", "1m")] == [1704067200000]
    assert parse_kline_csv(",".join(HEADER) + "\n", "BTCUSDT", "1m") == []
    assert parse_kline_csv(b"\xef\xbb\xbf" + ROW.encode(), "BTCUSDT", "1m")[0].open_time == 1704067200000
    assert parse_kline_csv("", "BTCUSDT", "1m") == []


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (ROW + "\nopen_time,open\n", "line 2: not a kline row"),
        (ROW + "\n" + ROW.replace(",1327,", ",x,"), "line 2: .*column 8 \\(trades\\)"),
        (ROW + "\n" + ROW.rsplit(",", 1)[0], "line 2: .*12 columns"),
        (ROW.replace("42283.58", "nan"), "line 1: .*not a finite number"),
        (ROW + "\n" + ROW, "line 2: open time 1704067200000 does not follow"),
        (ROW.replace("1704067200000", "1704067200001"), "line 1: .*not on the 1m grid"),
        (ROW + "\n" + to_micros(ROW2), "line 2: times not in milli"),
        (to_micros(ROW).replace("1704067259999999", "1704067259999"), "line 1: times not in micro"),
        (ROW + "\n\n" + ROW, "line 3: data after the blank line 2"),
        (b"\xff\xfe" + ROW.encode(), "not UTF-8"),
    ],
)
def test_parse_is_strict_and_names_the_line(text: str | bytes, match: str) -> None:
    with pytest.raises(ArchiveFormatError, match=match) as info:
        parse_kline_csv(text, "BTCUSDT", "1m")
    assert isinstance(info.value, ProtocolError) and "\n" not in str(info.value)


def test_read_zip_and_bad_zips() -> None:
    assert read_kline_zip(zipped(ROW + "\n"), "BTCUSDT", "1m")[0].open_time == 1704067200000
    good = zipped(ROW + "\n")
    for bad in (b"", b"not a zip", good[: len(good) // 2]):
        with pytest.raises(ArchiveFormatError, match="not a readable zip"):
            read_kline_zip(bad, "BTCUSDT", "1m")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.csv", ROW)
        zf.writestr("b.csv", ROW)
    with pytest.raises(ArchiveFormatError, match=r"found 2: a\.csv, b\.csv"):
        read_kline_zip(buf.getvalue(), "BTCUSDT", "1m")
    # A flipped byte inside the deflated data: the zip's CRC catches it even without a checksum.
    damaged = bytearray(zipped((ROW + "\n") * 3 + "x" * 5000))
    damaged[60] ^= 0xFF
    with pytest.raises(ArchiveFormatError):
        read_kline_zip(bytes(damaged), "BTCUSDT", "1m")


# ---------------------------------------------------------------- real data


def test_real_archive_csv_parses_exactly(real_dir: Path) -> None:
    raw = (real_dir / XRPETH_1M).read_bytes()
    ks = parse_kline_csv(raw, "XRPETH", "1m")
    lines = raw.decode().splitlines()
    assert len(ks) == len(lines) == 2469
    assert all(k.closed and k.close_time == k.open_time + MINUTE_MS - 1 for k in ks)
    first = lines[0].split(",")
    assert (ks[0].open_time, ks[0].open, ks[0].volume, ks[0].trades) == (
        int(first[0]), float(first[1]), float(first[5]), int(first[8])
    )  # fmt: skip
    assert min(k.low for k in ks) < 0.0015  # tiny prices survive
    gaps = sum(1 for a, b in itertools.pairwise(ks) if b.open_time - a.open_time > MINUTE_MS)
    assert gaps > 0, "real data has minutes without trades"


def test_real_rows_as_2025_microseconds_and_futures_header_and_zip(real_dir: Path) -> None:
    lines = (real_dir / XRPETH_1M).read_text().splitlines()
    expected = parse_kline_csv("\n".join(lines), "XRPETH", "1m")
    micros = "\n".join(to_micros(line) for line in lines) + "\n"
    assert parse_kline_csv(micros, "XRPETH", "1m") == expected
    futures = ",".join(HEADER) + "\n" + "\n".join(lines) + "\n"
    assert read_kline_zip(zipped(futures, "XRPETH-1m-2019-10.csv"), "XRPETH", "1m") == expected


def test_real_ohlcv_file_is_not_a_kline_archive(real_dir: Path) -> None:
    # The 6-column OHLCV export has a header too: the header is skipped, its first row refused.
    with pytest.raises(ArchiveFormatError, match=r"line 2: .*12 columns"):
        parse_kline_csv((real_dir / "ETHBTC-5m-2018-01-10_30.ohlcv.csv").read_bytes(), "ETHBTC", "5m")


# ---------------------------------------------------------------- the client, over a fake session


class FakeSession:
    """Answers GETs from a script: per URL suffix, a list of (status, body) or exceptions, used in turn."""

    def __init__(self, script: dict[str, list[tuple[int, bytes] | Exception]]) -> None:
        self.script = script
        self.headers: dict[str, str] = {}
        self.calls: list[str] = []

    def get(self, url: str, timeout: float, stream: bool) -> requests.Response:
        self.calls.append(url)
        key = next(k for k in self.script if url.endswith(k))
        step = self.script[key].pop(0) if len(self.script[key]) > 1 else self.script[key][0]
        if isinstance(step, Exception):
            raise step
        resp = requests.Response()
        resp.status_code, resp.raw, resp.url = step[0], io.BytesIO(step[1]), url
        return resp


DAY = archive_file("BTCUSDT", "1m", "daily", "2024-01-01")


def client(script: dict[str, list[tuple[int, bytes] | Exception]]) -> tuple[ArchiveClient, FakeSession]:
    session = FakeSession(script)
    return ArchiveClient("http://archive.test", session=session, backoff=lambda _: 0.0), session  # type: ignore[arg-type]


def served(csv_text: str) -> tuple[tuple[int, bytes], tuple[int, bytes]]:
    data = zipped(csv_text)
    return (200, data), (200, checksum_line(data, DAY.name).encode())


def test_client_retries_server_errors_and_resets() -> None:
    z, c = served(ROW + "\n")
    c_, session = client({".CHECKSUM": [(503, b"busy"), requests.ConnectionError("reset"), c], ".zip": [z]})
    assert [k.open_time for k in c_.fetch(DAY) or []] == [1704067200000]
    assert c_.stats.retries == 2 and c_.stats.requests == 4
    assert session.calls[0] == "http://archive.test/" + DAY.checksum_path


def test_client_gives_up_with_one_line_errors() -> None:
    c_, _ = client({".CHECKSUM": [requests.ConnectionError("Connection refused")]})
    with pytest.raises(
        NetworkError, match=r"cannot download BTCUSDT-1m-2024-01-01\.zip\.CHECKSUM from archive\.test: "
    ):
        c_.fetch(DAY)
    c_, session = client({".CHECKSUM": [(403, b"<Error><Code>AccessDenied</Code></Error>")]})
    with pytest.raises(BinanceAPIError, match="HTTP 403") as info:
        c_.fetch(DAY)
    assert len(session.calls) == 1 and "\n" not in str(info.value)  # a 403 is not retried
    c_, _ = client({".CHECKSUM": [(404, b"<Error/>")]})
    assert c_.fetch(DAY) is None and c_.stats.not_found == 1


def test_client_heals_a_file_replaced_between_checksum_and_zip() -> None:
    _, old_c = served(ROW + "\n")
    new_z, new_c = served(ROW + "\n" + ROW2 + "\n")
    c_, _ = client({".CHECKSUM": [old_c, new_c], ".zip": [new_z]})
    assert len(c_.fetch(DAY) or []) == 2 and c_.stats.mismatches == 1
    c_, _ = client({".CHECKSUM": [old_c], ".zip": [new_z]})
    with pytest.raises(ChecksumMismatch):
        c_.fetch(DAY)


def test_client_refuses_bad_checksums_bad_rows_and_foreign_rows() -> None:
    z, _ = served(ROW + "\n")
    c_, session = client({".CHECKSUM": [(200, b"<html>oops</html>")], ".zip": [z]})
    with pytest.raises(ArchiveFormatError, match=r"BTCUSDT-1m-2024-01-01\.zip\.CHECKSUM: .*SHA-256"):
        c_.fetch(DAY)
    assert not any(u.endswith(".zip") for u in session.calls), "no big download after a bad checksum"
    z, c = served(ROW + "\nx\n")
    c_, _ = client({".zip": [z], ".CHECKSUM": [c]})
    with pytest.raises(ArchiveFormatError, match=r"BTCUSDT-1m-2024-01-01\.zip: line 2"):
        c_.fetch(DAY)
    other_day = ROW.replace("1704067200000", "1704153600000").replace("1704067259999", "1704153659999")
    z, c = served(other_day + "\n")
    c_, _ = client({".zip": [z], ".CHECKSUM": [c]})
    with pytest.raises(ArchiveFormatError, match="outside 2024-01-01"):
        c_.fetch(DAY)


def test_client_cancel_cuts_a_backoff_short() -> None:
    cancel = threading.Event()
    session = FakeSession({".CHECKSUM": [(503, b"busy")]})
    c_ = ArchiveClient("http://archive.test", session=session, backoff=lambda _: 30.0)  # type: ignore[arg-type]
    threading.Timer(0.1, cancel.set).start()
    t0 = time.monotonic()
    with pytest.raises(Cancelled):
        c_.fetch(DAY, cancel)
    assert time.monotonic() - t0 < 5
    with pytest.raises(ValueError):
        ArchiveClient("ftp://archive.test")
