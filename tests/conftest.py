"""Fixtures shared by every test layer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def real_dir() -> Path:
    """The directory of real exchange data (``../shared/fixtures/real`` next to the repo).

    ``BINMON_FIXTURES`` overrides it. A missing directory fails the test: the data is part of
    the test suite, so a silently skipped real-data test would hide a broken checkout.
    """
    env = os.environ.get("BINMON_FIXTURES")
    path = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "real"
    if not path.is_dir():
        pytest.fail(
            f"real market data not found at {path}; put ../shared/fixtures/real next to the repo "
            "or point BINMON_FIXTURES at it",
            pytrace=False,
        )
    return path
