"""The page routers, one module per part of the interface."""

from __future__ import annotations

from fastapi import APIRouter

from api.web.routes import (
    account,
    admin,
    audit,
    catalog,
    confirmations,
    documents,
    figures,
    notifications,
    requests,
    search,
    township,
)

ROUTERS: tuple[APIRouter, ...] = (
    account.router,
    township.router,
    search.router,
    documents.router,
    audit.router,
    admin.router,
    confirmations.router,
    requests.router,
    catalog.router,
    notifications.router,
    figures.router,
)
