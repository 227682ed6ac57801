"""Fail unless a PNG screenshot of the app shows something: ``python3 tools/check_screenshot.py FILE``.

Standard library only (CI runs it with the system Python against the installed package, no
venv): decodes the PNG (8-bit RGB/RGBA, not interlaced: what Qt writes), then requires
- at least :data:`MIN_COLOURS` distinct colours over the whole image (a blank or failed
  WebEngine view is one or two flat colours), and
- the chart area (the left 60 %, between the menu/toolbar and the status bar) not uniform:
  at least :data:`MIN_CHART_COLOURS` colours there (candles, grid, axis labels).
Prints one line with the figures; exit 0 or 1.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

MIN_COLOURS = 50
MIN_CHART_COLOURS = 20


def decode_png(data: bytes) -> tuple[int, int, list[bytes], int]:
    """``(width, height, rows, bytes per pixel)`` of an 8-bit RGB/RGBA non-interlaced PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    pos, idat = 8, []
    width = height = bpp = 0
    while pos < len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _c, _f, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour not in (2, 6) or interlace:
                raise ValueError(f"unsupported PNG: depth {depth}, colour {colour}, interlace {interlace}")
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, rows, bpp


def colours(rows: list[bytes], bpp: int, x0: int, x1: int, y0: int, y1: int) -> int:
    """Distinct RGB colours in the box [x0, x1) x [y0, y1)."""
    seen = set()
    for y in range(y0, y1):
        row = rows[y]
        for x in range(x0, x1):
            seen.add(row[x * bpp : x * bpp + 3])
    return len(seen)


def main(argv: list[str]) -> int:
    """Check the PNG named in ``argv[1]``; 0 if it shows something, 1 otherwise."""
    if len(argv) != 2:
        print("usage: check_screenshot.py FILE.png", file=sys.stderr)
        return 2
    path = Path(argv[1])
    try:
        w, h, rows, bpp = decode_png(path.read_bytes())
    except (OSError, ValueError, zlib.error) as exc:
        print(f"check_screenshot: {path}: {exc}", file=sys.stderr)
        return 1
    whole = colours(rows, bpp, 0, w, 0, h)
    chart = colours(rows, bpp, 0, w * 6 // 10, min(60, h // 4), max(h - 40, h * 3 // 4))
    ok = w >= 640 and h >= 400 and whole >= MIN_COLOURS and chart >= MIN_CHART_COLOURS
    print(
        f"check_screenshot: {path}: {w}x{h}, {whole} colours, {chart} in the chart area: "
        + ("ok" if ok else "looks blank")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
