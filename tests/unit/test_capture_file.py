"""The raw capture format written by ``binmon record`` and read by the simulator's replay."""

from __future__ import annotations

from pathlib import Path

import pytest

from binmon.history.record import CaptureWriter, combined_url, read_capture

FRAME = '{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":7,"p":"1.00000000"}}'


def test_round_trip_frames_and_gaps(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    with CaptureWriter(path, "ws://x", ["btcusdt@trade"]) as w:
        w.frame(1000, FRAME)
        w.gap(1500, "connection reset")
        w.frame(2000, "garbage {")  # whatever arrived is kept verbatim
    header, recs = read_capture(path)
    assert header["streams"] == ["btcusdt@trade"] and header["url"] == "ws://x"
    assert list(recs) == [
        {"t": 1000, "frame": FRAME},
        {"t": 1500, "gap": "connection reset"},
        {"t": 2000, "frame": "garbage {"},
    ]
    assert w.stats.frames == 2 and w.stats.gaps == 1


def test_torn_last_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    with CaptureWriter(path, "ws://x", ["a@trade"]) as w:
        w.frame(1, FRAME)
    with path.open("a") as f:
        f.write('{"t": 2, "frame": "{\\"str')
    _, recs = read_capture(path)
    assert [r["t"] for r in recs] == [1]


@pytest.mark.parametrize("content", ["", "not json\n", '{"some": "json"}\n', "[1,2]\n"])
def test_not_a_capture_is_a_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(ValueError, match="not a binmon capture"):
        read_capture(path)


def test_combined_url() -> None:
    assert (
        combined_url("ws://h:1/", ["a@trade", "b@kline_1m"]) == "ws://h:1/stream?streams=a@trade/b@kline_1m"
    )
