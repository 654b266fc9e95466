"""Schemathesis against the app's own OpenAPI document, signed in as each role, in process.

Every operation gets a few generated requests (valid and invalid ones, derandomized: the same
requests on every run); no answer may be a server error, a status code the operation does not
document, or a body, header or content type other than the one it documents.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from services import orgs
from services.backends import open_backends
from tests.api.ask_once_helpers import create_item, decide, draft
from tests.conftest import EAST, Api, make_settings, seed_county

pytestmark = pytest.mark.fuzz

# One user of each role from tests/conftest.py's county.
ROLES = {
    "admin": "admin",
    "auditor": "auditor",
    "uploader": "east",
    "reader": "poverty",
    "coordinator": "coord",
}
EXAMPLES_PER_OPERATION = 8
SEED = 20260301

CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": SEED,
        "generation": {
            "max-examples": EXAMPLES_PER_OPERATION,
            "deterministic": True,
            "database": "none",
        },
        # The coverage phase's boundary values stay; its requests with other HTTP methods only
        # serve the unsupported_method check, which is not among CHECKS.
        "phases": {"coverage": {"unexpected-methods": []}},
    }
)


def _openapi_document() -> dict[str, Any]:
    """The app's OpenAPI document; read at collection, when no test's app exists yet."""
    with tempfile.TemporaryDirectory() as data_dir:
        settings = make_settings(Path(data_dir))
        backends = open_backends(settings)
        try:
            document: dict[str, Any] = create_app(settings, backends=backends).openapi()
        finally:
            backends.close()
    return document


# Loaded at import: schemathesis.pytest.from_fixture would take it from each test's own app, but
# it does not run under pytest 9.2 (it sets the item's removed ``_nodeid``).
schema = schemathesis.openapi.from_dict(_openapi_document(), config=CONFIG)


def _fill(api: Api) -> None:
    """Something in every list, so that the answers' schemas are checked on real rows too."""
    response = api.upload("east", "防汛值班表.txt", "各乡镇防汛值班安排".encode(), "text/plain")
    assert response.status_code == 201, response.text
    create_item(api, name="月度统计报表")
    request = draft(api, "poverty", EAST, "防汛值班表", category="其他")
    decide(api, "poverty", request["id"], "send", {"reason": "需要最新版本"})


@pytest.fixture(scope="module", params=sorted(ROLES))
def signed_in(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[FastAPI, Callable[[], dict[str, str]]]]:
    """The sample county with something in each list, and bearer headers for the role's user:
    a new token for every request, as the fuzzer may log itself out."""
    settings = make_settings(tmp_path_factory.mktemp(request.param) / "data")
    backends = open_backends(settings)
    seed_county(backends)
    app = create_app(settings, backends=backends)
    with TestClient(app) as client:
        _fill(Api(client, {}))
    authenticator = app.state.authenticator

    def headers() -> dict[str, str]:
        with backends.db.session() as session:
            user = orgs.find_user(session, ROLES[request.param])
            assert user is not None
            token = authenticator.issue(user).access_token
        return {"Authorization": f"Bearer {token}"}

    yield app, headers
    backends.close()


@schema.parametrize()
def test_every_operation_answers_as_documented(
    case: schemathesis.Case, signed_in: tuple[FastAPI, Callable[[], dict[str, str]]]
) -> None:
    app, headers = signed_in
    case.call_and_validate(app=app, headers=headers(), checks=CHECKS)
