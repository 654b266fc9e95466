"""``materials admin create-user --display-name``: the person's name (姓名) is stored and printed;
a bad one is a JSON error and no account is made."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from services.backends import open_backends
from services.models import User
from tests.conftest import make_settings
from tests.test_cli import json_line, run


def _names(data_dir: Path) -> dict[str, str]:
    backends = open_backends(make_settings(data_dir))
    try:
        with backends.db.session() as session:
            return {user.username: user.display_name for user in session.scalars(select(User))}
    finally:
        backends.close()


def test_create_user_with_and_without_a_display_name(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    org = run(
        "admin", "create-org", "--kind", "township", "--name", "城关镇", "--data-dir", data_dir
    )
    assert org.exit_code == 0, org.output
    common = ("--password", "long-enough-1", "--org", "城关镇", "--role", "uploader")

    named = run(
        "admin", "create-user", "--username", "chengguan", *common,
        "--display-name", " 张明 ", "--data-dir", data_dir,
    )  # fmt: skip
    assert named.exit_code == 0, named.output
    assert json_line(named)["display_name"] == "张明"
    plain = run("admin", "create-user", "--username", "hekou", *common, "--data-dir", data_dir)
    assert plain.exit_code == 0, plain.output
    assert json_line(plain)["display_name"] == ""

    for bad in ("张" * 41, "张\n明", "张\u202e明"):
        refused = run(
            "admin", "create-user", "--username", "lisi", *common,
            "--display-name", bad, "--data-dir", data_dir,
        )  # fmt: skip
        assert refused.exit_code != 0
        assert json_line(refused)["error"]["code"] == "invalid_display_name"

    assert _names(tmp_path / "data") == {"chengguan": "张明", "hekou": ""}
