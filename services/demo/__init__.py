"""A small sample county, so every role can be tried at once: ``materials demo``.

Two townships, two departments, an auditor, an admin and a coordinator (减负办) — ``county``;
a material catalog and months of submissions filling its slots — ``catalog``; requests in every
state with their notifications, and departments reusing materials — ``requests``. Periods and
due dates are counted from today, so the grids, inboxes and figures show something on first start.
Loading it again changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from services.backends import Backends
from services.catalog import county_today
from services.demo import catalog, county, requests
from services.demo.county import COUNTY, DEPARTMENTS, LOGINS, MATERIALS, TOWNSHIPS, DemoLogin

__all__ = ["COUNTY", "DEPARTMENTS", "LOGINS", "MATERIALS", "TOWNSHIPS", "DemoLogin", "load_demo"]


def load_demo(backends: Backends, *, now: datetime | None = None) -> list[DemoLogin]:
    """Create the sample county (unless it is there already); the logins."""
    if requests.loaded(backends):
        return list(LOGINS)
    users = county.create_county(backends)
    county.upload_materials(backends, users)
    filled = catalog.load_catalog(backends, users=users, today=county_today(now))
    requests.reuse(backends, users=users, catalog=filled)
    requests.load_requests(backends, users=users, catalog=filled, now=now)
    return list(LOGINS)
