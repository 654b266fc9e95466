"""The two-person rule for auditors: auditor accounts an admin created, enabled or reset wait
here for an auditor's confirmation, beside every download grant (waiting or confirmed).

Reads and confirmations go through ``services.administration``, which refuses and audits them
exactly as the API does.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import BackendsDep, ClientIP
from api.web.render import render
from api.web.routes.admin import confirm_account
from api.web.session import CheckedForm, SignedIn
from services import administration

router = APIRouter(include_in_schema=False)

PAGE = "/confirmations"


@router.get(PAGE)
def confirmations_page(
    request: Request, web: SignedIn, backends: BackendsDep, ip: ClientIP
) -> Response:
    """The accounts waiting for the caller's confirmation, and every download grant."""
    pending = administration.list_pending_accounts(backends, principal=web.principal, ip=ip)
    grants = administration.list_grants(backends, principal=web.principal, ip=ip)
    return render(
        request,
        "confirmations.html",
        principal=web.principal,
        csrf_token=web.csrf_token,
        pending=pending,
        grants=grants,
    )


@router.post(f"{PAGE}/accounts")
def confirm_pending_account(
    request: Request, web: SignedIn, form: CheckedForm, backends: BackendsDep, ip: ClientIP
) -> Response:
    """Confirm an account waiting for the caller (an auditor confirms auditor accounts)."""
    return confirm_account(request, web, form, backends, ip, back=PAGE)
