"""The log's Ed25519 signing key, kept in a file outside the database, and its verifier key.

Whoever can write the database must not be able to sign: the key lives in
``MATERIALS_AUDIT_SIGNING_KEY_FILE`` (PKCS#8 PEM, mode 0600). Without that setting a key is made
beside the data directory on first use, which suits embedded mode only: production keeps the
file on the sequencer's host, away from the database's backups and administrators.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from services.config import Settings
from services.private_files import make_private_dir
from services.signed_notes import NoteError, Signer, Verifier

log = logging.getLogger("materials.audit")


class SigningKeyMissing(RuntimeError):
    """The configured signing key file does not exist or is not an Ed25519 key."""


def _generate(path: Path) -> None:
    """Write a new key to ``path`` unless one is there: whole or not at all, since another
    process starting at the same moment may be reading it (written aside, then linked)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    make_private_dir(path.parent)
    fd, aside = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(pem)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(aside, path)
        except FileExistsError:
            return  # another process made it first: theirs is the key
    finally:
        os.unlink(aside)
    log.warning(
        "made the audit log's signing key %s; production must keep this key elsewhere than the "
        "database and its backups (MATERIALS_AUDIT_SIGNING_KEY_FILE)",
        path,
    )


def load_signer(settings: Settings, *, create: bool = True) -> Signer:
    """The signer of checkpoints; the key is made beside the data directory when none is
    configured and none exists yet (``create``)."""
    path = settings.audit_key_path
    if not path.exists():
        if settings.audit_signing_key_file is not None or not create:
            raise SigningKeyMissing(f"audit signing key {path} does not exist")
        _generate(path)
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyMissing(f"audit signing key {path} is not a PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyMissing(f"audit signing key {path} is not an Ed25519 key")
    return Signer(settings.audit_log_origin, key)


def load_verifier(settings: Settings) -> Verifier | None:
    """The verifier key: the configured one, else derived from the signing key's file; None when
    neither exists yet (no checkpoint was signed)."""
    if settings.audit_public_key:
        try:
            return Verifier.parse(settings.audit_public_key)
        except NoteError as exc:
            raise SigningKeyMissing(f"MATERIALS_AUDIT_PUBLIC_KEY: {exc}") from exc
    if not settings.audit_key_path.exists():
        return None
    return load_signer(settings, create=False).verifier
