"""describe_connect_error: plain words for the status bar, whatever the exception."""

from __future__ import annotations

import socket

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Response

from binmon.binance.errors import describe_connect_error


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 9)"), "connection refused"),
        (socket.gaierror(-2, "Name or service not known"), "host name not found"),
        (ConnectionResetError(104, "Connection reset by peer"), "connection reset by peer"),
        (TimeoutError(), "connection timed out"),
        (
            InvalidStatus(Response(503, "Service Unavailable", Headers(), b"")),
            "server refused the connection (HTTP 503)",
        ),
        (RuntimeError("first line\nsecond line"), "first line"),
        (ValueError(), "ValueError"),
        (RuntimeError("x" * 500), "x" * 120 + "..."),
    ],
)
def test_plain_words(exc: BaseException, text: str) -> None:
    assert describe_connect_error(exc) == text
