"""The ``materials`` command line: the sample county, bootstrap errors, verify and check.

Commands run in-process through click's runner, always with an explicit ``--data-dir``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from api.cli import main
from services import db as db_module
from services.backends import open_backends
from services.demo import COUNTY, DEPARTMENTS, LOGINS, MATERIALS, TOWNSHIPS
from services.models import AuditEvent, Document, Org, User
from tests.conftest import make_settings

SUMMARY = "城关镇2026年第三季度脱贫攻坚工作总结.md"
VISITS_CSV = "入户走访记录（9月）.csv"  # restricted to 县乡村振兴局
PHOTO = "入户走访照片.png"
MINUTES = "河口乡党委会议纪要.txt"  # private to 河口乡
STATISTICS = "河口乡2026年人口与农业统计表.csv"

# Who sees which of the sample materials uploaded without a catalog item in their listing (the
# catalog's submissions are tests/test_demo.py's).
BASE_MATERIALS = {SUMMARY, VISITS_CSV, PHOTO, MINUTES, STATISTICS}
EXPECTED_LISTING = {
    "admin": set(),
    "jianfu": set(),  # the coordinator reads no document
    "auditor": {SUMMARY, VISITS_CSV, PHOTO, MINUTES, STATISTICS},
    "chengguan": {SUMMARY, VISITS_CSV, PHOTO},
    "hekou": {MINUTES, STATISTICS},
    "zhenxing": {SUMMARY, VISITS_CSV, PHOTO, STATISTICS},
    "tongji": {SUMMARY, PHOTO, STATISTICS},
}


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def json_line(result: Result) -> dict[str, Any]:
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.output
    payload: dict[str, Any] = json.loads(lines[0])
    return payload


def counts(data_dir: Path) -> dict[str, int]:
    backends = open_backends(make_settings(data_dir))
    try:
        with backends.db.session() as session:
            return {
                model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
                for model in (Org, User, Document, AuditEvent)
            }
    finally:
        backends.close()


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    result = run("demo", "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    assert "sample county loaded" in result.stderr
    for login in LOGINS:
        assert login.username in result.stderr
    return data_dir


@pytest.fixture(scope="module")
def demo_client(demo_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(demo_dir))) as client:
        yield client


@pytest.fixture(scope="module")
def tokens(demo_client: TestClient) -> dict[str, dict[str, str]]:
    headers = {}
    for login in LOGINS:
        response = demo_client.post(
            "/api/v1/auth/token", data={"username": login.username, "password": login.password}
        )
        assert response.status_code == 200, (login.username, response.text)
        headers[login.username] = {"Authorization": f"Bearer {response.json()['access_token']}"}
    return headers


def documents_by_name(client: TestClient, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    response = client.get("/api/v1/documents", headers=headers, params={"size": 200})
    assert response.status_code == 200, response.text
    return {document["filename"]: document for document in response.json()["documents"]}


def test_demo_loads_the_sample_county(demo_dir: Path) -> None:
    loaded = counts(demo_dir)
    assert loaded["orgs"] == 1 + len(TOWNSHIPS) + len(DEPARTMENTS)
    assert loaded["users"] == len(LOGINS)
    assert loaded["documents"] > len(MATERIALS)  # and the catalog's submissions
    assert {login.org for login in LOGINS} == {COUNTY, *TOWNSHIPS, *DEPARTMENTS}


@pytest.mark.parametrize("login", LOGINS, ids=[login.username for login in LOGINS])
def test_every_demo_login_works_with_its_role(
    login: Any, demo_client: TestClient, tokens: dict[str, dict[str, str]]
) -> None:
    me = demo_client.get("/api/v1/me", headers=tokens[login.username])
    assert me.status_code == 200
    assert me.json()["role"] == login.role
    assert me.json()["org"]["name"] == login.org
    assert me.json()["display_name"] == login.display_name != ""


@pytest.mark.parametrize("username", sorted(EXPECTED_LISTING))
def test_each_role_sees_what_it_should(
    username: str, demo_client: TestClient, tokens: dict[str, dict[str, str]]
) -> None:
    listed = set(documents_by_name(demo_client, tokens[username])) & BASE_MATERIALS
    assert listed == EXPECTED_LISTING[username]


def test_restricted_and_private_materials_stay_hidden(
    demo_client: TestClient, tokens: dict[str, dict[str, str]]
) -> None:
    everything = documents_by_name(demo_client, tokens["auditor"])
    visits, minutes = everything[VISITS_CSV], everything[MINUTES]
    assert visits["visibility"] == "restricted"
    assert visits["departments"] == [DEPARTMENTS[0]]
    assert minutes["visibility"] == "private"

    def status(username: str, path: str) -> int:
        return demo_client.get(path, headers=tokens[username]).status_code

    # 县统计局 is not named on the visit records: they do not exist for it.
    assert status("tongji", f"/api/v1/documents/{visits['id']}") == 404
    assert status("tongji", f"/api/v1/documents/{visits['id']}/download") == 404
    assert status("zhenxing", f"/api/v1/documents/{visits['id']}/download") == 200

    # The private minutes: only 河口乡 reads them; the auditor sees metadata but no bytes.
    for username in ("chengguan", "zhenxing", "tongji", "admin"):
        assert status(username, f"/api/v1/documents/{minutes['id']}") == 404, username
        assert status(username, f"/api/v1/documents/{minutes['id']}/download") == 404, username
    assert status("hekou", f"/api/v1/documents/{minutes['id']}/download") == 200
    assert status("auditor", f"/api/v1/documents/{minutes['id']}") == 200
    assert status("auditor", f"/api/v1/documents/{minutes['id']}/download") == 403
    by_township = demo_client.get(
        "/api/v1/documents", headers=tokens["zhenxing"], params={"township": TOWNSHIPS[1]}
    )
    listed = [d["filename"] for d in by_township.json()["documents"]]
    assert [name for name in listed if name in BASE_MATERIALS] == [STATISTICS]
    assert all(name.startswith(TOWNSHIPS[1]) for name in listed)


def test_demo_minutes_keep_their_bytes(
    demo_client: TestClient, tokens: dict[str, dict[str, str]]
) -> None:
    minutes = documents_by_name(demo_client, tokens["hekou"])[MINUTES]
    download = demo_client.get(
        f"/api/v1/documents/{minutes['id']}/download", headers=tokens["hekou"]
    )
    expected = next(content for _, name, _, content in MATERIALS if name == MINUTES)
    assert download.content == expected
    assert "河口乡党委会议纪要" in download.content.decode("gb18030")


def test_demo_twice_changes_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert run("demo", "--data-dir", str(data_dir)).exit_code == 0
    before = counts(data_dir)
    again = run("demo", "--data-dir", str(data_dir))
    assert again.exit_code == 0, again.output
    assert "sample county loaded" in again.stderr
    after = counts(data_dir)
    # Already loaded: not even an audit event is added, and the chain holds.
    assert after == before
    verified = run("audit", "verify", "--data-dir", str(data_dir))
    assert verified.exit_code == 0
    assert json_line(verified)["ok"] is True
    # Nothing sequenced the demo's events yet (no worker ran): they all wait, none is lost.
    report = json_line(verified)
    assert report["events"] + report["pending"] == after["audit_events"]


def test_create_org_and_user_are_idempotent(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    county = run(
        "admin", "create-org", "--kind", "county", "--name", "某某县", "--data-dir", data_dir
    )
    assert county.exit_code == 0, county.output
    created = json_line(county)
    assert (created["name"], created["kind"], created["created"]) == ("某某县", "county", True)
    again = json_line(
        run("admin", "create-org", "--kind", "county", "--name", "某某县", "--data-dir", data_dir)
    )
    assert (again["id"], again["created"]) == (created["id"], False)

    args = ("--username", "admin", "--password", "long-enough-1", "--org", "某某县")
    user = run("admin", "create-user", *args, "--role", "admin", "--data-dir", data_dir)
    assert user.exit_code == 0, user.output
    first = json_line(user)
    assert first["org"] == {"id": created["id"], "name": "某某县", "kind": "county"}
    second = json_line(
        run("admin", "create-user", *args, "--role", "admin", "--data-dir", data_dir)
    )
    assert (second["id"], second["created"]) == (first["id"], False)

    # Same username, different role: a conflict, not a silent change.
    conflict = run("admin", "create-user", *args, "--role", "auditor", "--data-dir", data_dir)
    assert conflict.exit_code != 0
    assert json_line(conflict)["error"]["code"] == "user_exists"


def test_create_user_in_unknown_org_fails_with_a_json_error(tmp_path: Path) -> None:
    result = run(
        "admin",
        "create-user",
        "--username",
        "nobody",
        "--password",
        "long-enough-1",
        "--org",
        "不存在的乡",
        "--role",
        "uploader",
        "--data-dir",
        str(tmp_path / "data"),
    )
    assert result.exit_code != 0
    error = json_line(result)["error"]
    assert error["code"] == "unknown_org"
    assert "不存在的乡" in error["message"]


def test_reader_in_a_township_is_a_role_org_mismatch(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    county = run(
        "admin", "create-org", "--kind", "county", "--name", "某县", "--data-dir", data_dir
    )
    assert county.exit_code == 0, county.output
    township = run(
        "admin", "create-org", "--kind", "township", "--name", "某镇", "--data-dir", data_dir
    )
    assert township.exit_code == 0, township.output
    result = run(
        "admin",
        "create-user",
        "--username",
        "reader1",
        "--password",
        "long-enough-1",
        "--org",
        "某镇",
        "--role",
        "reader",
        "--data-dir",
        data_dir,
    )
    assert result.exit_code != 0
    error = json_line(result)["error"]
    assert error["code"] == "role_org_mismatch"
    assert "部门工作人员只能属于县直部门" in error["message"]
    assert counts(tmp_path / "data")["users"] == 0


def test_short_password_and_bad_role_are_refused(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    county = run(
        "admin", "create-org", "--kind", "county", "--name", "某县", "--data-dir", data_dir
    )
    assert county.exit_code == 0, county.output
    short = run(
        "admin",
        "create-user",
        "--username",
        "admin",
        "--password",
        "short",
        "--org",
        "某县",
        "--role",
        "admin",
        "--data-dir",
        data_dir,
    )
    assert short.exit_code != 0
    assert json_line(short)["error"]["code"] == "weak_password"
    bad_role = run(
        "admin",
        "create-user",
        "--username",
        "admin",
        "--password",
        "long-enough-1",
        "--org",
        "某县",
        "--role",
        "superuser",
        "--data-dir",
        data_dir,
    )
    assert bad_role.exit_code == 2  # click's usage error


def test_audit_verify_and_check_on_the_demo(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert run("demo", "--data-dir", str(data_dir)).exit_code == 0
    verified = run("audit", "verify", "--data-dir", str(data_dir))
    assert verified.exit_code == 0
    assert json_line(verified)["ok"] is True
    checked = run("check", "--json", "--data-dir", str(data_dir))
    assert checked.exit_code == 0
    report = json_line(checked)
    assert report["ok"] is True
    assert report["checks"]["blobs"]["counts"] == {
        "documents": counts(data_dir)["documents"],
        "missing": 0,
        "corrupt": 0,
    }

    # A blob whose bytes changed is corrupt; the chain is untouched by that.
    blob = next(path for path in (data_dir / "blobs").glob("??/??/*") if path.is_file())
    blob.chmod(0o600)
    blob.write_bytes(b"changed")
    corrupt = run("check", "--json", "--data-dir", str(data_dir))
    assert corrupt.exit_code != 0
    assert len(json_line(corrupt)["checks"]["blobs"]["ids"]["corrupt"]) == 1
    assert run("audit", "verify", "--data-dir", str(data_dir)).exit_code == 0


@pytest.mark.parametrize("command", [["audit", "verify"], ["check"], ["audit", "archive"]])
def test_checks_of_a_data_directory_never_used_fail_and_make_nothing(
    tmp_path: Path, command: list[str]
) -> None:
    """A wrong --data-dir must not be reported as an empty, intact system."""
    unused = tmp_path / "wrong-place"
    result = CliRunner().invoke(main, [*command, "--data-dir", str(unused)])
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["error"]["code"] == "no_database"
    assert not unused.exists()


def test_migrate_brings_an_empty_database_to_the_newest_revision(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    head = ScriptDirectory(str(Path(db_module.__file__).with_name("migrations"))).get_current_head()
    first = run("migrate", "--data-dir", str(data_dir))
    assert first.exit_code == 0, first.output
    assert json_line(first) == {"migrated": True, "revision": head}
    assert (data_dir / "materials.sqlite3").is_file()
    again = run("migrate", "--data-dir", str(data_dir))
    assert json_line(again) == {"migrated": True, "revision": head}


def test_migrate_reports_an_unreachable_database_as_a_json_error(tmp_path: Path) -> None:
    (tmp_path / "a-directory").mkdir()
    result = CliRunner().invoke(
        main,
        ["migrate", "--data-dir", str(tmp_path / "data")],
        env={"MATERIALS_DATABASE_URL": f"sqlite:///{tmp_path / 'a-directory'}"},
    )
    assert result.exit_code == 1
    assert json_line(result)["error"]["code"] == "backend_unavailable"


@pytest.mark.parametrize(
    ("password", "said"),
    [("aaaaaaaaaa", "同一类字符"), ("password123", "常见"), ("Admin@2026", "用户名")],
)
def test_create_user_keeps_the_password_policy(tmp_path: Path, password: str, said: str) -> None:
    data_dir = str(tmp_path / "data")
    county = run(
        "admin", "create-org", "--kind", "county", "--name", "某县", "--data-dir", data_dir
    )
    assert county.exit_code == 0, county.output
    args = ("--username", "admin", "--org", "某县", "--role", "admin", "--data-dir", data_dir)

    weak = run("admin", "create-user", "--password", password, *args)

    assert weak.exit_code != 0
    error = json_line(weak)["error"]
    assert error["code"] == "weak_password"
    assert said in error["message"]
    assert counts(tmp_path / "data")["users"] == 0


def test_create_user_refuses_a_look_alike_of_an_existing_name(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    run("admin", "create-org", "--kind", "county", "--name", "某县", "--data-dir", data_dir)
    rest = ("--password", "long-enough-1", "--org", "某县", "--role", "admin")
    first = run("admin", "create-user", "--username", "admin", *rest, "--data-dir", data_dir)
    assert first.exit_code == 0, first.output

    expected = {
        "Admin": "user_exists",
        "ａｄｍｉｎ": "user_exists",
        "adm\u202ein": "invalid_username",
    }
    for look_alike, code in expected.items():
        refused = run(
            "admin", "create-user", "--username", look_alike, *rest, "--data-dir", data_dir
        )
        assert refused.exit_code != 0, look_alike
        assert json_line(refused)["error"]["code"] == code
    assert counts(tmp_path / "data")["users"] == 1
