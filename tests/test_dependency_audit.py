"""The CI step auditing installed packages: which pip-audit reports fail the run, and that one it
could not make is said to be no audit at all rather than a clean one."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

SCRIPT = Path(__file__).parents[1] / "deploy" / "audit_dependencies.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_dependencies", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def judge(*dependencies: dict[str, Any]) -> tuple[int, str]:
    status, lines = _script().judge({"dependencies": list(dependencies), "fixes": []})
    return status, "\n".join(lines)


def vulnerable(name: str, *fixed_in: str) -> dict[str, Any]:
    vulnerability = {"id": "PYSEC-2026-1", "aliases": ["CVE-2026-1"], "fix_versions": fixed_in}
    return {"name": name, "version": "1.0", "vulns": [vulnerability]}


CLEAN = {"name": "jinja2", "version": "3.1.6", "vulns": []}
EDITABLE = {"name": "county-materials", "skip_reason": "distribution marked as editable"}
NOT_FOUND = {"name": "alembic", "skip_reason": "Dependency not found on PyPI and could not be"}


def test_a_vulnerability_with_a_fixed_release_fails_the_run() -> None:
    status, told = judge(CLEAN, vulnerable("pdfminer-six", "20251230"), EDITABLE)

    assert status == 1
    assert "pdfminer-six 1.0: PYSEC-2026-1 / CVE-2026-1, fixed in 20251230" in told


def test_one_without_a_fix_is_shown_but_does_not_fail() -> None:
    status, told = judge(CLEAN, vulnerable("olefile"))

    assert status == 0
    assert "olefile 1.0: PYSEC-2026-1 / CVE-2026-1 has no fixed release yet" in told


def test_packages_pypi_does_not_know_are_named() -> None:
    status, told = judge(CLEAN, NOT_FOUND, EDITABLE)

    assert status == 0
    assert "not audited (not found on PyPI): alembic" in told
    assert "county-materials" not in told


def test_nothing_answered_is_no_audit_rather_than_a_clean_one() -> None:
    status, told = judge(NOT_FOUND, EDITABLE)

    assert status == 0
    assert "NOT AUDITED" in told
    assert "no known vulnerability" not in told
