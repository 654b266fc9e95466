"""Checkpoints as C2SP signed notes, the format of Go's checksum database and Sigstore's logs.

A checkpoint (c2sp.org/tlog-checkpoint) is the note text ``<origin>\\n<tree size>\\n<base64 root
hash>\\n`` followed by optional extension lines; a signed note (c2sp.org/signed-note) adds a blank
line and one line per signature: ``— <key name> <base64(key id ‖ signature)>\\n``. For Ed25519
the key id is the first four bytes of ``SHA-256(<key name> ‖ "\\n" ‖ 0x01 ‖ public key)`` and the
verifier key is written ``<key name>+<hex key id>+<base64(0x01 ‖ public key)>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519 = 0x01
_SIGNATURE_PREFIX = "\u2014 "  # an em dash and a space


class NoteError(ValueError):
    """A note, checkpoint or verifier key that is not well formed, or a signature that fails."""


def _key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public).digest()[:4]


def _valid_name(name: str) -> bool:
    return bool(name) and not any(c.isspace() or c == "+" for c in name)


@dataclass(frozen=True)
class Verifier:
    """A note verifier key: a name and an Ed25519 public key."""

    name: str
    public: bytes

    @property
    def key_id(self) -> bytes:
        return _key_id(self.name, self.public)

    def text(self) -> str:
        encoded = base64.b64encode(bytes([ED25519]) + self.public).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def parse(cls, text: str) -> Verifier:
        parts = text.strip().split("+", 2)
        if len(parts) != 3 or not _valid_name(parts[0]):
            raise NoteError("verifier key must be <name>+<hex key id>+<base64 key>")
        name, hex_id, encoded = parts
        try:
            key = base64.b64decode(encoded, validate=True)
            key_id = bytes.fromhex(hex_id)
        except (binascii.Error, ValueError) as exc:
            raise NoteError("verifier key is not hex and base64") from exc
        if len(key) != 33 or key[0] != ED25519:
            raise NoteError("verifier key is not an Ed25519 key")
        verifier = cls(name, key[1:])
        if verifier.key_id != key_id:
            raise NoteError("verifier key id does not match its name and key")
        return verifier


class Signer:
    """Signs notes with an Ed25519 private key under a key name (the log's origin)."""

    def __init__(self, name: str, key: Ed25519PrivateKey) -> None:
        if not _valid_name(name):
            raise NoteError("a key name has no spaces and no '+'")
        self.name = name
        self._key = key
        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.verifier = Verifier(name, public)

    def sign(self, text: str) -> str:
        """The note ``text`` (ending in a newline) with this signer's signature line."""
        if not text.endswith("\n") or "\n\n" in text:
            raise NoteError("note text ends with one newline and has no blank line")
        signature = self._key.sign(text.encode())
        encoded = base64.b64encode(self.verifier.key_id + signature).decode()
        return f"{text}\n{_SIGNATURE_PREFIX}{self.name} {encoded}\n"


def open_note(note: str, verifier: Verifier) -> str:
    """The text of a signed note whose signature by ``verifier`` holds; NoteError otherwise."""
    text, separator, signatures = note.partition("\n\n")
    if not separator:
        raise NoteError("note has no signature block")
    text += "\n"
    for line in signatures.split("\n"):
        if not line:
            continue
        if not line.startswith(_SIGNATURE_PREFIX):
            raise NoteError("malformed signature line")
        name, _, encoded = line[len(_SIGNATURE_PREFIX) :].partition(" ")
        if name != verifier.name:
            continue
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise NoteError("signature is not base64") from exc
        if raw[:4] != verifier.key_id:
            continue
        try:
            Ed25519PublicKey.from_public_bytes(verifier.public).verify(raw[4:], text.encode())
        except InvalidSignature as exc:
            raise NoteError("signature does not verify") from exc
        return text
    raise NoteError(f"note is not signed by {verifier.name}")


@dataclass(frozen=True)
class Checkpoint:
    """A log's state: its origin, tree size and root hash, and any extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "" or any(not line for line in lines[:-1]):
            raise NoteError("checkpoint must be origin, size and root hash lines")
        origin, size_text, root_text, *extensions = lines[:-1]
        if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
            raise NoteError("checkpoint tree size is not a decimal number")
        try:
            root = base64.b64decode(root_text, validate=True)
        except binascii.Error as exc:
            raise NoteError("checkpoint root hash is not base64") from exc
        if len(root) != 32:
            raise NoteError("checkpoint root hash is not 32 bytes")
        return cls(origin, int(size_text), root, tuple(extensions))


def verified_checkpoint(note: str, verifier: Verifier) -> Checkpoint:
    """The checkpoint a signed note carries, once its signature and origin are checked."""
    checkpoint = Checkpoint.parse(open_note(note, verifier))
    if checkpoint.origin != verifier.name:
        raise NoteError("checkpoint origin is not the key's name")
    return checkpoint
