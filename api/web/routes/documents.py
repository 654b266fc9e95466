"""A document's page: metadata, usage, preview, download, withdraw."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
