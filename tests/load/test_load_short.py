"""The load test's 30-second version: 10 Locust users against two API processes and two index
workers on the real stack; no request fails, and rows, blobs, index and audit log agree after.

The full run (50 users, 5 minutes) is ``python -m tests.load.run``; its figures are in the README.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.load.harness import run_load
from tests.real_stack import RealStack

USERS = 10
SECONDS = 30
MAX_BYTES = 2 * 1024 * 1024  # the full run's rare 20 MB files stay out of the short one


@pytest.fixture
def values(real_stack: RealStack) -> Iterator[dict[str, str]]:
    """The session's servers, with a database, bucket and index of this test's own."""
    with real_stack.allocate() as allocated:
        settings: dict[str, Any] = {**allocated, "secret_key": "load-test-key-" + "s" * 32}
        yield {name: str(value) for name, value in settings.items()}


@pytest.mark.slow
def test_thirty_seconds_of_county_load_fail_nothing_and_leave_every_store_agreeing(
    values: dict[str, str], tmp_path: Path
) -> None:
    report = run_load(
        values, tmp_path, users=USERS, seconds=SECONDS, max_bytes=MAX_BYTES, catch_up_timeout=60
    )
    shown = "\n".join(report.lines())
    assert report.total is not None, shown
    assert report.total.failures == 0, shown
    assert report.problems == [], shown
    # The load did happen: every kind of operation ran, and the stores hold what was uploaded.
    names = {operation.name for operation in report.operations if operation.requests}
    assert {"POST /documents", "GET /search", "GET /documents/{id}"} <= names, shown
    assert report.tally["created"] >= 3, shown
    assert report.counts["documents"] == report.counts["indexed"] == report.tally["created"]
    assert report.counts["check_ok"] == 1, shown
    assert report.counts["audit_events_verified"] > report.total.requests // 2, shown
