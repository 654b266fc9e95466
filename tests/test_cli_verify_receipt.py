"""A township's receipt checked offline: ``materials audit verify-receipt RECEIPT --public-key``.

The receipt and the public key are saved from the API as a township would keep them; the command
needs neither server nor database. Forged receipts (an edited event, a changed proof, a
checkpoint signed by another key) and a log that is not the one the receipt was issued by fail
with a reason; tests/rfc9162.py's independent verifier agrees on every case.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from api.cli import main
from services.audit import Actor, AuditAction, Outcome
from services.audit_sequencer import AuditSequencer
from services.backends import Backends
from services.config import Settings
from tests import rfc9162
from tests.conftest import Api, make_settings, served_county
from tests.samples import text_bytes


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded, and a receipt answers at once (no sequencer thread runs to wait for)."""
    return make_settings(tmp_path / "data", audit_receipt_wait_seconds=0)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def json_line(result: Result) -> dict[str, Any]:
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.output
    payload: dict[str, Any] = json.loads(lines[0])
    return payload


def drain(backends: Backends) -> int:
    # One owner throughout: a drain keeps the sequencer's lease for some seconds after it.
    return AuditSequencer(backends.db, backends.settings, backends.blobs, owner="tests").drain()


def key_with_plus() -> Ed25519PrivateKey:
    """A fixed signing key whose verifier key's base64 has a '+' (the separator of its fields)."""
    for number in range(1000):
        key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"%d" % number).digest())
        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        if "+" in base64.b64encode(b"\x01" + public).decode():
            return key
    raise AssertionError("no such key")


def install_key(settings: Settings, key: Ed25519PrivateKey) -> None:
    path = settings.audit_key_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    path.chmod(0o600)


def text(api: Api, url: str, **params: Any) -> str:
    response = api.client.get(url, params=params, headers=api.headers("east"))
    assert response.status_code == 200, response.text
    return response.text


def upload_and_receipt(api: Api, backends: Backends, name: str, body: str) -> dict[str, Any]:
    uploaded = api.upload("east", name, text_bytes(body))
    assert uploaded.status_code == 201, uploaded.text
    drain(backends)
    response = api.client.get(
        f"/api/v1/documents/{uploaded.json()['id']}/receipt", headers=api.headers("east")
    )
    assert response.status_code == 200, response.text
    receipt: dict[str, Any] = response.json()
    assert receipt["pending"] is False
    return receipt


def save(path: Path, receipt: dict[str, Any]) -> Path:
    path.write_text(json.dumps(receipt, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def verify_receipt(receipt: Path, public_key: Path) -> Result:
    return run("audit", "verify-receipt", str(receipt), "--public-key", str(public_key))


def assert_fails(result: Result, reason: str) -> None:
    assert result.exit_code == 1, result.output
    report = json_line(result)
    assert report["ok"] is False
    assert reason in report["reason"], report
    assert "receipt does not verify" in result.stderr


# ---------------------------------------------------------------- forgeries


def leaf_of(event: dict[str, Any]) -> bytes:
    return rfc9162.leaf_hash(rfc9162.event_leaf_bytes(event))


def edited_sha256(receipt: dict[str, Any]) -> None:
    """The event says another file was received (the receipt's sha256 changed to match)."""
    forged = "0" * 64
    receipt["event"]["details"]["sha256"] = forged
    receipt["sha256"] = forged


def edited_sha256_and_leaf(receipt: dict[str, Any]) -> None:
    """As above, with the leaf hash recomputed: the proof no longer leads to the signed root."""
    edited_sha256(receipt)
    leaf = leaf_of(receipt["event"])
    receipt["event"]["leaf_hash"] = base64.b64encode(leaf).decode()
    receipt["audit_hash"] = leaf.hex()


def edited_time(receipt: dict[str, Any]) -> None:
    receipt["event"]["at"] = "2020" + receipt["event"]["at"][4:]


def changed_proof_hash(receipt: dict[str, Any]) -> None:
    hashes = receipt["inclusion_proof"]["hashes"]
    raw = bytearray(base64.b64decode(hashes[0]))
    raw[0] ^= 1
    hashes[0] = base64.b64encode(bytes(raw)).decode()


def dropped_proof_hash(receipt: dict[str, Any]) -> None:
    receipt["inclusion_proof"]["hashes"].pop()


def other_leaf_index(receipt: dict[str, Any]) -> None:
    receipt["inclusion_proof"]["leaf_index"] -= 1
    receipt["event"]["seq"] -= 1
    receipt["event"]["leaf_index"] -= 1


def changed_checkpoint_root(receipt: dict[str, Any]) -> None:
    lines = receipt["checkpoint"].split("\n")
    lines[2] = base64.b64encode(b"\x00" * 32).decode()
    receipt["checkpoint"] = "\n".join(lines)


def resigned_by_another_key(receipt: dict[str, Any], key: Ed25519PrivateKey) -> None:
    """A whole consistent forgery: the edited event, its leaf, and a checkpoint over the root its
    proof now leads to, signed under the log's name by a key that is not the log's."""
    edited_sha256_and_leaf(receipt)
    signed = rfc9162.parse_note(receipt["checkpoint"])
    checkpoint = rfc9162.parse_checkpoint(signed.text)
    proof = receipt["inclusion_proof"]
    root = rfc9162.inclusion_root(
        proof["leaf_index"],
        proof["tree_size"],
        leaf_of(receipt["event"]),
        [base64.b64decode(value) for value in proof["hashes"]],
    )
    assert root is not None
    forged = rfc9162.checkpoint_text(
        checkpoint.origin, checkpoint.size, root, checkpoint.extensions
    )
    receipt["checkpoint"] = rfc9162.sign_note(forged, checkpoint.origin, key)


def test_saved_receipt_verifies_offline_and_forgeries_fail(
    api: Api, backends: Backends, settings: Settings, tmp_path: Path
) -> None:
    install_key(settings, key_with_plus())
    other = upload_and_receipt(api, backends, "另一份.txt", "另一份材料")
    receipt = upload_and_receipt(api, backends, "收据.txt", "第一季度扶贫工作总结")
    public_key = tmp_path / "audit-public-key.txt"
    public_key.write_text(text(api, "/api/v1/audit/public-key"), encoding="utf-8")
    verifier = rfc9162.parse_verifier_key(public_key.read_text(encoding="utf-8"))
    assert "+" in verifier.encode().split("+", 2)[2]
    # The key the command line prints is the one the API publishes.
    printed = run("audit", "public-key", "--data-dir", str(settings.data_dir))
    assert printed.exit_code == 0, printed.output
    assert printed.stdout.strip() == verifier.encode()

    saved = save(tmp_path / "receipt.json", receipt)
    result = verify_receipt(saved, public_key)
    assert result.exit_code == 0, result.output
    report = json_line(result)
    checkpoint = rfc9162.check_receipt(receipt, verifier)
    assert report["ok"] is True
    assert report["document_id"] == receipt["document_id"]
    assert report["sha256"] == receipt["sha256"]
    assert report["seq"] == receipt["event"]["seq"]
    assert report["tree_size"] == checkpoint.size
    assert base64.b64decode(report["root"]) == checkpoint.root
    assert len(receipt["inclusion_proof"]["hashes"]) >= 2

    forger = Ed25519PrivateKey.generate()
    forgeries: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
        "sha256": (edited_sha256, "leaf_hash"),
        "sha256+leaf": (edited_sha256_and_leaf, "inclusion proof"),
        "time": (edited_time, "leaf_hash"),
        "proof hash": (changed_proof_hash, "inclusion proof"),
        "proof short": (dropped_proof_hash, "inclusion proof"),
        "leaf index": (other_leaf_index, ""),
        "checkpoint root": (changed_checkpoint_root, "signature"),
        "other key": (lambda r: resigned_by_another_key(r, forger), "not signed"),
        "other event": (lambda r: r.update(event=other["event"]), "upload of this document"),
        "pending": (lambda r: r.update(pending=True), "no inclusion proof"),
        # The receipt's own fields beside the signed event: each must be the event's.
        "township": (lambda r: r["township"].update(name="河口乡"), "township"),
        "uploaded_by": (lambda r: r.update(uploaded_by="hekou"), "uploaded_by"),
        "received_at": (lambda r: r.update(received_at="2025-01-01T00:00:00Z"), "received_at"),
        "audit_seq": (lambda r: r.update(audit_seq=r["audit_seq"] + 1), "audit_seq"),
        "audit_hash": (lambda r: r.update(audit_hash="00" * 32), "audit_hash"),
    }
    for name, (forge, reason) in forgeries.items():
        forged = copy.deepcopy(receipt)
        forge(forged)
        assert_fails(verify_receipt(save(tmp_path / "forged.json", forged), public_key), reason)
        if name != "pending":
            with pytest.raises(rfc9162.NoteInvalid):
                rfc9162.check_receipt(forged, verifier)

    # The consistent forgery holds together but for the signature: with the forger's key it
    # would pass, so the key kept apart from the server is what the receipt rests on.
    forged = copy.deepcopy(receipt)
    resigned_by_another_key(forged, forger)
    forger_key = tmp_path / "forger-key.txt"
    forger_key.write_text(rfc9162.verifier_of(verifier.name, forger).encode() + "\n")
    assert verify_receipt(save(tmp_path / "forged.json", forged), forger_key).exit_code == 0
    rfc9162.check_receipt(forged, rfc9162.verifier_of(verifier.name, forger))
    # And the genuine receipt does not pass with the forger's key.
    assert_fails(verify_receipt(saved, forger_key), "not signed")


# ---------------------------------------------------------------- a log that is not the receipt's


@pytest.fixture
def second_server(tmp_path: Path) -> Iterator[tuple[Api, Backends]]:
    """Another deployment: its own database and its own signing key, and a log of its own."""
    settings = make_settings(tmp_path / "other", audit_receipt_wait_seconds=0)
    with served_county(settings) as served:
        yield served


def test_receipt_fails_against_a_different_log(
    api: Api,
    backends: Backends,
    settings: Settings,
    second_server: tuple[Api, Backends],
    tmp_path: Path,
) -> None:
    receipt = upload_and_receipt(api, backends, "收据.txt", "第一季度扶贫工作总结")
    size = receipt["inclusion_proof"]["tree_size"]
    public_key = tmp_path / "audit-public-key.txt"
    public_key.write_text(text(api, "/api/v1/audit/public-key"), encoding="utf-8")
    receipts = tmp_path / "receipts"
    receipts.mkdir()
    save(receipts / "receipt.json", receipt)

    # The other log: different events, each sequenced and signed, up to the receipt's tree size
    # and beyond, under another key.
    other_api, other_backends = second_server
    other_api.headers("east")
    drain(other_backends)
    for number in range(size + 2):
        other_backends.audit.record(
            actor=Actor(username=f"别人{number}", org="东镇", role="uploader"),
            action=AuditAction.view,
            outcome=Outcome.allowed,
        )
        drain(other_backends)
    other_key = tmp_path / "other-public-key.txt"
    other_key.write_text(text(other_api, "/api/v1/audit/public-key"), encoding="utf-8")
    assert other_key.read_text() != public_key.read_text()
    other_checkpoint = text(other_api, "/api/v1/audit/checkpoint", size=size)
    assert (
        rfc9162.verify_checkpoint(
            other_checkpoint, rfc9162.parse_verifier_key(other_key.read_text())
        ).size
        == size
    )

    # The receipt against the other server's key: its checkpoint is not signed by it.
    assert_fails(verify_receipt(receipts / "receipt.json", other_key), "not signed")
    # The receipt's proof against the other server's checkpoint of the same size (as a server
    # would answer "here is our checkpoint"): the proof does not lead to its root.
    moved = {**receipt, "checkpoint": other_checkpoint}
    assert_fails(verify_receipt(save(tmp_path / "moved.json", moved), other_key), "root")
    with pytest.raises(rfc9162.NoteInvalid, match="root"):
        rfc9162.check_receipt(moved, rfc9162.parse_verifier_key(other_key.read_text()))
    assert_fails(verify_receipt(save(tmp_path / "moved.json", moved), public_key), "not signed")

    # The whole-log check holds the kept receipts against a log: the genuine one passes, the
    # other one fails naming the receipt.
    genuine = run(
        "audit", "verify", "--data-dir", str(settings.data_dir), "--receipts", str(receipts)
    )
    assert genuine.exit_code == 0, genuine.output
    assert json_line(genuine)["receipts"] == 1
    other = run(
        "audit",
        "verify",
        "--data-dir",
        str(other_backends.settings.data_dir),
        "--receipts",
        str(receipts),
    )
    assert other.exit_code == 1, other.output
    assert json_line(other)["reason"] == "receipt"
