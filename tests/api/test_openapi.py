"""The OpenAPI document describes the upload form, so that Swagger UI offers a file field.

The upload body is read as a stream, so its fields are declared by hand: they must be the fields
the upload accepts, no more and no fewer.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from services.metadata import KNOWN_FIELDS
from services.models import Visibility


def _upload_form(client: TestClient) -> dict[str, Any]:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200, response.text
    body = response.json()["paths"]["/api/v1/documents"]["post"]["requestBody"]
    assert body["required"] is True
    assert list(body["content"]) == ["multipart/form-data"]
    schema: dict[str, Any] = body["content"]["multipart/form-data"]["schema"]
    return schema


def test_upload_declares_its_multipart_form(client: TestClient) -> None:
    form = _upload_form(client)

    assert form["type"] == "object"
    assert form["required"] == ["file"]
    assert set(form["properties"]) == KNOWN_FIELDS | {"file"}
    file = form["properties"]["file"]
    assert file["type"] == "string"
    assert file["format"] == "binary"
    assert file["contentMediaType"] == "application/octet-stream"
    # Multipart fields are text; none is a JSON number or list.
    assert {field["type"] for field in form["properties"].values()} == {"string"}
    visibility = form["properties"]["visibility"]
    assert visibility["enum"] == [member.value for member in Visibility]
    assert visibility["default"] == "departments"


def test_every_upload_field_is_described_in_chinese_and_english(client: TestClient) -> None:
    for name, field in _upload_form(client)["properties"].items():
        description = field["description"]
        chinese, _, english = description.partition(" / ")
        assert re.search(r"[\u4e00-\u9fff]", chinese), name
        assert re.fullmatch(r"[\x20-\x7e]+", english), name


def test_the_period_field_shows_the_chinese_forms(client: TestClient) -> None:
    description = _upload_form(client)["properties"]["period"]["description"]

    for example in ("2026-Q3", "2026年第三季度", "2026年9月"):
        assert example in description
