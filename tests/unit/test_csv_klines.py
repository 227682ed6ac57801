"""KlineCsvWriter: Binance's 12 columns, one row per closed candle, safe to resume."""

from __future__ import annotations

import csv
from pathlib import Path

from binmon.binance.codec import decode_kline_row
from binmon.core.models import Kline
from binmon.history.csv_klines import HEADER, KlineCsvWriter


def _real_rows(real_dir: Path, n: int) -> list[list[str]]:
    with (real_dir / "XRPETH-1m-2019-10-11_13.csv").open(newline="") as f:
        return [row for _, row in zip(range(n), csv.reader(f), strict=False)]


def _klines(real_dir: Path, n: int) -> list[Kline]:
    return [decode_kline_row("XRPETH", "1m", r) for r in _real_rows(real_dir, n)]


def test_rows_are_byte_identical_to_binance(real_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "k.csv"
    with KlineCsvWriter(out, header=False) as w:
        for k in _klines(real_dir, 50):
            assert w.write(k)
    expected = (real_dir / "XRPETH-1m-2019-10-11_13.csv").read_text().splitlines()[:50]
    assert out.read_text().splitlines() == expected


def test_header_open_and_duplicate_candles_skipped(real_dir: Path, tmp_path: Path) -> None:
    ks = _klines(real_dir, 5)
    out = tmp_path / "k.csv"
    with KlineCsvWriter(out) as w:
        assert w.write(ks[0])
        assert not w.write(ks[0]), "same candle twice"
        forming = Kline(**{**{f: getattr(ks[1], f) for f in Kline.__slots__}, "closed": False})
        assert not w.write(forming), "a forming candle is never written"
        assert w.write(ks[2])
        assert not w.write(ks[1]), "older than the last row"
    lines = out.read_text().splitlines()
    assert lines[0] == ",".join(HEADER)
    assert [int(x.split(",")[0]) for x in lines[1:]] == [ks[0].open_time, ks[2].open_time]


def test_resume_after_torn_line(real_dir: Path, tmp_path: Path) -> None:
    ks = _klines(real_dir, 6)
    out = tmp_path / "k.csv"
    with KlineCsvWriter(out) as w:
        for k in ks[:3]:
            w.write(k)
    # A kill in the middle of a write leaves half a row behind.
    with out.open("a") as f:
        f.write("1570752180000,0.0014")
    w2 = KlineCsvWriter(out)
    assert w2.last_open_time == ks[2].open_time
    for k in ks:
        w2.write(k)
    w2.close()
    lines = out.read_text().splitlines()
    assert len(lines) == 1 + 6
    assert all(len(x.split(",")) == 12 for x in lines)
    assert [int(x.split(",")[0]) for x in lines[1:]] == [k.open_time for k in ks]


def test_resume_header_only_file(tmp_path: Path, real_dir: Path) -> None:
    out = tmp_path / "k.csv"
    KlineCsvWriter(out).close()
    w = KlineCsvWriter(out)
    assert w.last_open_time is None
    w.write(_klines(real_dir, 1)[0])
    w.close()
    assert out.read_text().count("open_time") == 1
