"""``materials upload`` starts without loading the server: a re-upload it skips costs little."""

from __future__ import annotations

import subprocess
import sys

from tests.server_process import MATERIALS, REPO_ROOT, environment

PROBE = """
import sys
sys.argv = ["materials", "upload", "--help"]
from api.entrypoint import main
try:
    main()
except SystemExit:
    pass
heavy = [
    "fastapi", "sqlalchemy", "pydantic", "minio", "api.app", "services.documents",
    # httpx's own CLI (rich, pygments) and the progress bar, which --help does not show
    "rich", "tqdm",
]
print(sorted(name for name in heavy if name in sys.modules), file=sys.stderr)
"""


def test_the_upload_command_does_not_import_the_server() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO_ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Usage: materials upload" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "[]"


def test_other_commands_still_go_through_the_full_cli() -> None:
    done = subprocess.run(
        [MATERIALS, "--help"],
        cwd=REPO_ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert "upload" in done.stdout
    assert "serve" in done.stdout
