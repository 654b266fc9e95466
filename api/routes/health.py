"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import BackendsDep
from services import health

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        503: {"description": "有后端不可用，body 中 error 指明 / A backend is down, named in error"}
    },
)
def readyz(backends: BackendsDep) -> JSONResponse:
    """200 when every backend answers, else 503 naming the ones that do not; and the virus
    scanner's state, which new files wait for but readiness does not."""
    report = health.check_backends(backends)
    ready = all(state == "ok" for state in report.values())
    body: dict[str, object] = {
        "ready": ready,
        "backends": report,
        "antivirus": health.check_antivirus(backends),
    }
    if ready:
        return JSONResponse(body)
    failing = ", ".join(name for name, state in report.items() if state != "ok")
    body["error"] = {"code": "backend_unavailable", "message": f"后端不可用：{failing}"}
    return JSONResponse(body, status_code=503, headers={"Retry-After": "30"})
