"""The access log for auditors: filters, export, verification."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
