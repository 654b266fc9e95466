"""The ``materials`` command's entry point: ``materials upload`` starts without the server's code.

The upload client runs on staff PCs once per file or folder; loading the whole server first
(FastAPI, SQLAlchemy, the audit log) cost it over a second a run, more than a re-upload it skips.
It is an HTTP client: the server's MATERIALS_* settings are not read for it.
"""

from __future__ import annotations

import sys


def main() -> None:
    """``materials upload …`` straight to the client; every other command through ``api.cli``."""
    if sys.argv[1:2] == ["upload"]:
        # httpx's own command-line tool loads rich and pygments whenever they are installed
        # (test tools bring them); httpx falls back without it, and this process never uses it.
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
        from api.upload_client import upload_command

        upload_command(args=sys.argv[2:], prog_name="materials upload")
        return
    from api.cli import main as cli_main

    cli_main()
