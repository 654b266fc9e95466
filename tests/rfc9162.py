"""An independent checker of the audit log's proofs and checkpoints, for the tests.

Written from the specifications alone, deliberately sharing no code with ``services.merkle`` or
``services.signed_notes``, so that a mistake there is not repeated here:

* RFC 9162 §2.1.1 (Merkle Tree Hash, computed by its recursive definition over the leaf
  inputs), §2.1.3.1 / §2.1.4.1 (PATH and PROOF, by their recursive definitions) and the
  verification algorithms of §2.1.3.2 and §2.1.4.2, step by step;
* c2sp.org/signed-note (Ed25519 signatures, key ids, verifier keys) and c2sp.org/tlog-checkpoint
  (origin, decimal tree size, base64 root hash, extension lines), with ``cryptography``'s
  Ed25519 directly.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

# ---------------------------------------------------------------- RFC 9162 §2.1


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf_hash(entry: bytes) -> bytes:
    """MTH({d(0)}) = HASH(0x00 || d(0))."""
    return sha256(b"\x00" + entry)


def node_hash(left: bytes, right: bytes) -> bytes:
    """HASH(0x01 || left || right)."""
    return sha256(b"\x01" + left + right)


def _split(n: int) -> int:
    """k, the largest power of two smaller than n (k < n <= 2k), for n > 1."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(entries: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash of a list of leaf inputs (not of leaf hashes), §2.1.1."""
    n = len(entries)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return leaf_hash(entries[0])
    k = _split(n)
    return node_hash(mth(entries[:k]), mth(entries[k:]))


def path(m: int, entries: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]), the audit path of leaf m, §2.1.3.1."""
    n = len(entries)
    if not 0 <= m < n:
        raise ValueError("m must be a leaf of the tree")
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*path(m, entries[:k]), mth(entries[k:])]
    return [*path(m - k, entries[k:]), mth(entries[:k])]


def proof(m: int, entries: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true), the consistency proof, §2.1.4.1."""
    if not 0 < m <= len(entries):
        raise ValueError("0 < m <= n")
    return _subproof(m, entries, True)


def _subproof(m: int, entries: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(entries)
    if m == n:
        return [] if b else [mth(entries)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, entries[:k], b), mth(entries[k:])]
    return [*_subproof(m - k, entries[k:], False), mth(entries[:k])]


def inclusion_root(
    leaf_index: int, tree_size: int, hash_: bytes, inclusion_path: Sequence[bytes]
) -> bytes | None:
    """§2.1.3.2 steps 1-4 and the size check of step 5: the root the path leads to from the
    leaf's hash ``hash_``, or None where the algorithm fails."""
    # 1. leaf_index >= tree_size fails.
    if leaf_index < 0 or leaf_index >= tree_size:
        return None
    # 2. fn = leaf_index, sn = tree_size - 1; 3. r = hash.
    fn, sn, r = leaf_index, tree_size - 1, hash_
    # 4. for each p in inclusion_path:
    for p in inclusion_path:
        # a. sn == 0: fail.
        if sn == 0:
            return None
        # b. LSB(fn) set, or fn == sn:
        if fn % 2 == 1 or fn == sn:
            r = node_hash(p, r)
            # ii. LSB(fn) not set: right-shift both until LSB(fn) is set or fn is 0.
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn //= 2
                    sn //= 2
        else:
            r = node_hash(r, p)
        # c. right-shift both once.
        fn //= 2
        sn //= 2
    # 5. sn must be 0.
    return r if sn == 0 else None


def verify_inclusion(
    leaf_index: int, tree_size: int, hash_: bytes, inclusion_path: Sequence[bytes], root: bytes
) -> bool:
    """§2.1.3.2: the path leads from the leaf's hash ``hash_`` to ``root``."""
    found = inclusion_root(leaf_index, tree_size, hash_, inclusion_path)
    return found is not None and found == root


def verify_consistency(
    first: int,
    second: int,
    first_hash: bytes,
    second_hash: bytes,
    consistency_path: Sequence[bytes],
) -> bool:
    """§2.1.4.2 for 0 < first < second, step by step; the trivial cases (first == 0 or first ==
    second, whose proof §2.1.4.1 makes empty) as the definitions imply."""
    if first < 0 or first > second:
        return False
    if first == second:
        return not consistency_path and first_hash == second_hash
    if first == 0:
        return not consistency_path
    # 1. an empty path fails.
    if not consistency_path:
        return False
    hashes = list(consistency_path)
    # 2. first an exact power of 2: prepend first_hash.
    if first & (first - 1) == 0:
        hashes.insert(0, first_hash)
    # 3. fn = first - 1, sn = second - 1.
    fn, sn = first - 1, second - 1
    # 4. LSB(fn) set: right-shift both until it is not.
    while fn % 2 == 1:
        fn //= 2
        sn //= 2
    # 5. fr = sr = the first value.
    fr = sr = hashes[0]
    # 6. for each subsequent value c:
    for c in hashes[1:]:
        # a. sn == 0: fail.
        if sn == 0:
            return False
        # b. LSB(fn) set, or fn == sn:
        if fn % 2 == 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            # ii. LSB(fn) not set: right-shift both until LSB(fn) is set or fn is 0.
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn //= 2
                    sn //= 2
        else:
            sr = node_hash(sr, c)
        # c. right-shift both once.
        fn //= 2
        sn //= 2
    # 7. fr == first_hash, sr == second_hash, sn == 0.
    return fr == first_hash and sr == second_hash and sn == 0


# ---------------------------------------------------------------- c2sp.org/signed-note

EM_DASH = "\u2014"
ED25519_TYPE = b"\x01"


class NoteInvalid(ValueError):
    """A note, checkpoint or key that is malformed, or whose signature does not verify."""


def _name_ok(name: str) -> bool:
    return bool(name) and not any(ch.isspace() or ch == "+" for ch in name)


def key_id(name: str, public_key: bytes) -> bytes:
    """The first 4 bytes of SHA-256(key name || 0x0A || signature type || public key)."""
    return sha256(name.encode("utf-8") + b"\n" + ED25519_TYPE + public_key)[:4]


@dataclass(frozen=True)
class VerifierKey:
    name: str
    public_key: bytes  # 32 raw Ed25519 bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key)

    def encode(self) -> str:
        encoded = base64.b64encode(ED25519_TYPE + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"


def parse_verifier_key(text: str) -> VerifierKey:
    """``<name>+<hex key id>+<base64(type || public key)>``, the id checked against the rest."""
    fields = text.strip("\n").split("+", 2)
    if len(fields) != 3:
        raise NoteInvalid("verifier key is not name+id+key")
    name, hex_id, encoded = fields
    if not _name_ok(name):
        raise NoteInvalid("bad key name")
    if len(hex_id) != 8 or any(ch not in "0123456789abcdef" for ch in hex_id):
        raise NoteInvalid("key id is not 8 lowercase hex digits")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise NoteInvalid("key is not base64") from exc
    if len(raw) != 33 or raw[:1] != ED25519_TYPE:
        raise NoteInvalid("not an Ed25519 verifier key")
    verifier = VerifierKey(name, raw[1:])
    if verifier.key_id.hex() != hex_id:
        raise NoteInvalid("key id does not match the name and key")
    return verifier


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True)
class Note:
    text: str  # up to and including the newline before the blank line
    signatures: tuple[Signature, ...]


def parse_note(message: str) -> Note:
    """Split a signed note into its text and its signature lines (nothing verified yet)."""
    if not message.endswith("\n"):
        raise NoteInvalid("a signed note ends with a newline")
    for ch in message:
        if ch != "\n" and (ord(ch) < 0x20 or ord(ch) == 0x7F):
            raise NoteInvalid("control character in note")
    # The text ends at the last blank line; the signature lines follow it.
    split = message.rfind("\n\n")
    if split < 0:
        raise NoteInvalid("no blank line before the signatures")
    text, block = message[: split + 1], message[split + 2 :]
    lines = block.split("\n")
    assert lines[-1] == ""  # the message ends with a newline
    if len(lines) < 2:
        raise NoteInvalid("no signature lines")
    signatures = []
    for line in lines[:-1]:
        prefix = EM_DASH + " "
        if not line.startswith(prefix):
            raise NoteInvalid("signature line does not start with an em dash and a space")
        name, space, encoded = line[len(prefix) :].partition(" ")
        if not space or not _name_ok(name) or " " in encoded:
            raise NoteInvalid("signature line is not name and signature")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise NoteInvalid("signature is not base64") from exc
        if len(raw) < 5:
            raise NoteInvalid("signature too short")
        signatures.append(Signature(name, raw[:4], raw[4:]))
    return Note(text, tuple(signatures))


def open_note(message: str, verifier: VerifierKey) -> str:
    """The note's text when it carries a valid signature by ``verifier``; NoteInvalid else."""
    note = parse_note(message)
    public = Ed25519PublicKey.from_public_bytes(verifier.public_key)
    for signature in note.signatures:
        if signature.name != verifier.name or signature.key_id != verifier.key_id:
            continue  # someone else's signature: not ours to judge
        try:
            public.verify(signature.signature, note.text.encode("utf-8"))
        except InvalidSignature as exc:
            raise NoteInvalid("the signature does not verify") from exc
        return note.text
    raise NoteInvalid(f"no signature by {verifier.name}+{verifier.key_id.hex()}")


def sign_note(text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """``text`` signed by ``private_key`` under ``name`` (for forging notes in the tests)."""
    public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    signature = base64.b64encode(key_id(name, public) + private_key.sign(text.encode())).decode()
    return f"{text}\n{EM_DASH} {name} {signature}\n"


def verifier_of(name: str, private_key: Ed25519PrivateKey) -> VerifierKey:
    return VerifierKey(name, private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


# ---------------------------------------------------------------- c2sp.org/tlog-checkpoint


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...]


def parse_checkpoint(text: str) -> Checkpoint:
    """Origin line, tree size in decimal (no leading zeros), base64 root hash, extension lines."""
    if not text.endswith("\n"):
        raise NoteInvalid("checkpoint text ends with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteInvalid("checkpoint needs origin, size and root hash")
    origin, size_line, root_line, *extensions = lines
    if not origin or any(not line for line in extensions):
        raise NoteInvalid("empty line in checkpoint")
    if (
        not size_line.isascii()
        or not size_line.isdigit()
        or (len(size_line) > 1 and size_line[0] == "0")
    ):
        raise NoteInvalid("tree size is not a decimal number")
    try:
        root = base64.b64decode(root_line, validate=True)
    except binascii.Error as exc:
        raise NoteInvalid("root hash is not base64") from exc
    if len(root) != 32 or base64.b64encode(root).decode() != root_line:
        raise NoteInvalid("root hash is not 32 bytes in standard base64")
    return Checkpoint(origin, int(size_line), root, tuple(extensions))


def checkpoint_text(origin: str, size: int, root: bytes, extensions: Sequence[str] = ()) -> str:
    lines = [origin, str(size), base64.b64encode(root).decode(), *extensions]
    return "".join(f"{line}\n" for line in lines)


def verify_checkpoint(message: str, verifier: VerifierKey) -> Checkpoint:
    """A signed checkpoint's content, once its signature verifies and its origin is the key's
    name (the log names its checkpoints by its key)."""
    checkpoint = parse_checkpoint(open_note(message, verifier))
    if checkpoint.origin != verifier.name:
        raise NoteInvalid("checkpoint origin is not the key name")
    return checkpoint


# ---------------------------------------------------------------- the audit log's leaves

LEAF_FIELDS = ("seq", "at", "actor", "org", "role", "action", "document_id", "outcome", "ip")


def event_leaf_bytes(event: dict[str, Any]) -> bytes:
    """An event object's leaf bytes as docs/API.md defines them."""
    fields = {name: event[name] for name in (*LEAF_FIELDS, "details")}
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def check_receipt(receipt: dict[str, Any], verifier: VerifierKey) -> Checkpoint:
    """A document receipt checked alone: its upload event's leaf, the event being this
    document's upload, the checkpoint's signature and the inclusion proof to its root. The
    signed checkpoint; NoteInvalid saying what failed."""
    event = receipt["event"]
    leaf = leaf_hash(event_leaf_bytes(event))
    if base64.b64decode(event["leaf_hash"]) != leaf:
        raise NoteInvalid("the event's leaf_hash is not its fields' hash")
    if (event["action"], event["document_id"], event["details"].get("sha256")) != (
        "upload",
        receipt["document_id"],
        receipt["sha256"],
    ):
        raise NoteInvalid("the event is not this document's upload")
    # What the receipt says beside the event is what the signed event says.
    stated = (
        receipt["township"]["name"],
        receipt["uploaded_by"],
        datetime.fromisoformat(receipt["received_at"]),
        receipt["audit_seq"],
        receipt["audit_hash"],
    )
    signed = (event["org"], event["actor"], datetime.fromisoformat(event["at"]), event["seq"])
    if stated != (*signed, leaf.hex()):
        raise NoteInvalid("the receipt's own fields differ from its upload event")
    checkpoint = verify_checkpoint(receipt["checkpoint"], verifier)
    inclusion = receipt["inclusion_proof"]
    if (
        inclusion["leaf_index"] != event["seq"] - 1
        or inclusion["leaf_index"] != event["leaf_index"]
    ):
        raise NoteInvalid("the proof is not for this event")
    if inclusion["tree_size"] != checkpoint.size:
        raise NoteInvalid("the proof is not for this checkpoint")
    hashes = [base64.b64decode(value, validate=True) for value in inclusion["hashes"]]
    if not verify_inclusion(
        inclusion["leaf_index"], checkpoint.size, leaf, hashes, checkpoint.root
    ):
        raise NoteInvalid("the inclusion proof does not lead to the checkpoint's root")
    return checkpoint
