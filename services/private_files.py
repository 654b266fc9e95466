"""Files and directories the app creates hold county data: only the service's own user reads them.

Modes are given explicitly (0700 directories, 0600 files) rather than left to the umask, so a
permissive umask (0000, 0002) on the server changes nothing. Existing paths are left as they are.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_dir(path: Path) -> None:
    """Create the directory, and any missing parents, as 0700; existing ones stay untouched."""
    missing: list[Path] = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, PRIVATE_DIR_MODE)
        except FileExistsError:
            continue  # another process or thread made it first
        # mkdir's mode passes through the umask; say exactly what is meant.
        os.chmod(directory, PRIVATE_DIR_MODE)


def create_private_file(path: Path) -> None:
    """Create the file empty as 0600 unless it exists (a SQLite database before its first
    connection: its journal and WAL files then take the same mode)."""
    make_private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
        os.fchmod(fd, PRIVATE_FILE_MODE)
        os.close(fd)
