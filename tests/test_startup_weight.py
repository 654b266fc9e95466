"""What a process loads only when it needs it: Alembic only to change the schema, Jinja2 only for a
page, the login's dummy password hash only at the first login, the upload client's libraries only
for ``materials upload``, the segmenter only for a search or an indexing batch with work, the
Elasticsearch client only when it is configured, the indexer only for an embedded worker, the
command line's maintenance commands only when run (each costs memory the API process keeps
otherwise)."""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import text

from api.cli import main
from indexer.worker import IndexWorker
from services import db as db_module
from services.backends import Backends
from services.db import Database
from services.passwords import Passwords
from services.search import _sqlite
from services.search._sqlite import PAIR_GAP, PAIR_MARK
from tests.conftest import EAST, Api, make_settings

REPO_ROOT = Path(__file__).resolve().parents[1]


def _loaded_after(
    code: str, names: tuple[str, ...] = ("alembic", "mako", "jinja2")
) -> dict[str, bool]:
    """Which of the modules ``names`` a fresh interpreter holds after running ``code``."""
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps({{name: name in sys.modules for name in {names!r}}}))"
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


UPLOAD_CLIENT_LIBRARIES = ("httpx", "rich", "pygments", "tqdm", "api.upload_client")


def test_the_command_line_loads_the_upload_client_only_for_upload() -> None:
    loaded = _loaded_after("import api.cli", UPLOAD_CLIENT_LIBRARIES)
    assert loaded == dict.fromkeys(UPLOAD_CLIENT_LIBRARIES, False)
    listed = CliRunner().invoke(main, ["--help"])
    assert listed.exit_code == 0
    assert "upload" in listed.output
    assert "Upload files and folders" in listed.output
    usage = CliRunner().invoke(main, ["upload", "--help"])
    assert usage.exit_code == 0
    assert "Usage: main upload [OPTIONS] PATHS..." in usage.output


def test_the_elasticsearch_client_is_loaded_only_when_configured(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    assert settings.elasticsearch_url is None
    code = (
        "from pathlib import Path\n"
        "from services.backends import open_backends\n"
        "from services.search import ReadScope, SearchQuery\n"
        "from tests.conftest import make_settings\n"
        f"backends = open_backends(make_settings(Path({str(tmp_path / 'data')!r})))\n"
        "backends.index.search(SearchQuery(text='通知', scope=ReadScope(everything=True)))\n"
        "backends.close()"
    )
    loaded = _loaded_after(code, ("elasticsearch", "elastic_transport"))
    assert loaded == {"elasticsearch": False, "elastic_transport": False}


# What `materials serve` (embedded worker off, as in production) never needs: the indexer, the
# command line's check, sweep and audit report code, the JSON log formatter when logging text,
# a WebSocket library (there are no WebSocket routes) and the QR code maker (receipt pages only).
NOT_IN_THE_SERVER = (
    "indexer",
    "services.consistency",
    "services.maintenance",
    "services.audit_report_words",
    "pythonjsonlogger",
    "uvicorn.protocols.websockets",
    "wsproto",
    "segno",
)


def test_a_started_server_without_the_embedded_worker_stays_light(tmp_path: Path) -> None:
    code = (
        "from pathlib import Path\n"
        "import uvicorn\n"
        "from fastapi.testclient import TestClient\n"
        "from api.app import create_app\n"
        "from api.cli import SERVER_OPTIONS\n"
        "from services.logging_setup import configure_logging\n"
        "from tests.conftest import make_settings\n"
        f"settings = make_settings(Path({str(tmp_path / 'data')!r}), log_format='text')\n"
        "assert not settings.embedded_worker\n"
        "configure_logging(settings)\n"
        "app = create_app(settings)\n"
        "uvicorn.Config(app, **SERVER_OPTIONS).load()  # the protocols `materials serve` runs\n"
        "with TestClient(app) as client:\n"
        "    assert client.get('/healthz').status_code == 200\n"
    )
    assert _loaded_after(code, NOT_IN_THE_SERVER) == dict.fromkeys(NOT_IN_THE_SERVER, False)


def test_the_sqlite_index_holds_no_set_of_characters() -> None:
    sets = [
        name
        for name, value in vars(_sqlite).items()
        if isinstance(value, set | frozenset) and len(value) > 1000
    ]
    assert sets == []


def test_pair_tokens_join_exactly_the_cjk_ideographs() -> None:
    """Pairs where both neighbours are one character of U+3400–U+4DBF or U+4E00–U+9FFF."""
    alphanumeric = [chr(code) for code in range(0x110000) if chr(code).isalnum()]
    tokens = [*alphanumeric, "一二", "村", "2026", "村", "ab", "\u3400", "\u9fff", "\ua000"]
    ideographs = [_sqlite._IDEOGRAPH.fullmatch(token) is not None for token in tokens]
    assert sum(ideographs) > 27_000
    expected = " ".join(
        PAIR_MARK + first + then if first_is and then_is else PAIR_GAP
        for (first, first_is), (then, then_is) in pairwise(zip(tokens, ideographs, strict=True))
    )
    assert _sqlite._pairs(" ".join(tokens)) == expected


def test_an_idle_worker_loads_no_segmenter(api: Api, backends: Backends) -> None:
    built_in = backends.analyzer.segmenter.words
    assert EAST not in built_in
    worker = IndexWorker(backends, backends.index)
    assert worker.run_once() == 0  # the county's words exist (its organisations), no work
    assert backends.analyzer.segmenter.words == built_in
    assert backends.analyzer.segmenter._tokenizer is None
    uploaded = api.upload("east", "报告.txt", "东镇工作报告：走访贫困户。".encode())
    assert uploaded.status_code == 201, uploaded.text
    assert worker.run_once() == 1  # the batch reads the words before indexing
    assert EAST in backends.analyzer.segmenter.words
    assert backends.analyzer.segmenter._tokenizer is not None
