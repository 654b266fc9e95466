"""What a process loads only when it needs it: Alembic only to change the schema, Jinja2 only for a
page, the login's dummy password hash only at the first login (each costs memory the API process
keeps otherwise)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import text

from services import db as db_module
from services.db import Database
from services.passwords import Passwords
from tests.conftest import make_settings

REPO_ROOT = Path(__file__).resolve().parents[1]


def _loaded_after(code: str) -> dict[str, bool]:
    """Which of Alembic, Mako and Jinja2 a fresh interpreter holds after running ``code``."""
    probe = (
        f"{code}\nimport json, sys\n"
        "print(json.dumps({name: name in sys.modules for name in ('alembic', 'mako', 'jinja2')}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded: dict[str, bool] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_importing_the_app_loads_neither_alembic_nor_jinja2() -> None:
    assert _loaded_after("import api.app") == {"alembic": False, "mako": False, "jinja2": False}


def test_a_database_at_the_newest_migration_is_opened_without_alembic(tmp_path: Path) -> None:
    url = make_settings(tmp_path / "data").resolved_database_url
    open_and_migrate = f"from services.db import Database\nDatabase({url!r}).migrate()"
    # A new database is migrated by Alembic; once at the newest revision, no process loads it.
    assert _loaded_after(open_and_migrate)["alembic"]
    assert not _loaded_after(open_and_migrate)["alembic"]


def test_the_newest_revision_read_from_the_files_is_alembics(tmp_path: Path) -> None:
    scripts = ScriptDirectory(str(Path(db_module.__file__).with_name("migrations")))
    head = db_module._head_revision()
    assert head is not None
    assert head == scripts.get_current_head()

    database = Database(make_settings(tmp_path / "data").resolved_database_url)
    try:
        database.migrate()
        assert database.schema_revision() == head
        assert database._at_head()
        with database.engine.begin() as connection:  # as a database one migration behind
            connection.execute(text("UPDATE alembic_version SET version_num = '0012'"))
        assert not database._at_head()  # left to Alembic
    finally:
        database.dispose()


def test_a_page_is_rendered_by_the_environment_built_at_the_first_page() -> None:
    from api.web import render

    environment = render.templates().env
    assert render.templates().env is environment
    assert environment.autoescape is True
    assert {"local_time", "file_size", "hex_base64", "masked"} <= set(environment.filters)
    assert environment.globals["STATIC_VERSION"] == render.static_version()


def _dummy_hash(passwords: Passwords) -> str | None:
    return passwords._nobody_hash


def test_the_dummy_hash_is_made_at_the_first_check() -> None:
    passwords = Passwords(time_cost=1, memory_kib=1024)
    assert _dummy_hash(passwords) is None  # nothing hashed at start
    assert not passwords.matches(None, "no such user, no such password")
    assert _dummy_hash(passwords) is not None
    stored = passwords.hash("Kx7-quiet-river")
    assert passwords.matches(stored, "Kx7-quiet-river")
    assert not passwords.matches(stored, "Kx7-quiet-rivers")
    assert not passwords.matches(None, "Kx7-quiet-river")
