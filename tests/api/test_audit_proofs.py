"""The provable audit log through the API, checked by code that shares nothing with the server's.

Every event object's leaf is recomputed from its JSON; roots come from the RFC 9162 definition
over all the leaves (tests/rfc9162.py), and the server's inclusion and consistency proofs, its
signed checkpoints and a township's receipt are verified with that independent code, against
those roots and the public key the API publishes. Events are sequenced by draining the sequencer
explicitly, as its thread would.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from api.app import create_app
from services.audit import Actor, AuditAction, Outcome
from services.audit_sequencer import AuditSequencer
from services.backends import Backends, open_backends
from services.config import Settings
from tests import rfc9162
from tests.conftest import Api, seed_county, stack_settings
from tests.samples import text_bytes

# Sizes whose trees get every inclusion proof checked, and the `to` of the consistency proofs
# checked from every `from`: powers of two, their neighbours, and the whole log.
TREE_SIZES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 15, 16, 17, 24, 31, 32, 33, 39, 40)
LOG_SIZE = 40  # at least this many events, each size up to it signed


@pytest.fixture
def settings(request: pytest.FixtureRequest, stack: str, tmp_path: Path) -> Iterator[Settings]:
    """As conftest's, but a receipt answers at once (no sequencer thread runs to wait for)."""
    with stack_settings(request, stack, tmp_path / "data", audit_receipt_wait_seconds=0) as chosen:
        yield chosen


# ---------------------------------------------------------------- helpers


def drain(backends: Backends) -> int:
    """Sequence and sign everything waiting. Always as the same owner: a drain keeps the lease
    when done, so a sequencer of another owner would find it held for the next seconds."""
    sequencer = AuditSequencer(backends.db, backends.settings, backends.blobs, owner="tests")
    return sequencer.drain()


def get_json(api: Api, user: str, url: str, **params: Any) -> Any:
    response = api.client.get(url, params=params, headers=api.headers(user))
    assert response.status_code == 200, response.text
    return response.json()


def get_text(api: Api, user: str, url: str, **params: Any) -> str:
    response = api.client.get(url, params=params, headers=api.headers(user))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def public_key(api: Api, user: str = "east") -> rfc9162.VerifierKey:
    return rfc9162.parse_verifier_key(get_text(api, user, "/api/v1/audit/public-key"))


def checkpoint_note(api: Api, size: int | None = None, user: str = "east") -> str:
    params = {} if size is None else {"size": size}
    return get_text(api, user, "/api/v1/audit/checkpoint", **params)


def sequenced_events(api: Api) -> list[dict[str, Any]]:
    """Every sequenced event object, by seq (reading them logs unsequenced `audit_read`s)."""
    events: list[dict[str, Any]] = []
    page = 1
    while True:
        found = get_json(api, "auditor", "/api/v1/audit/events", size=500, page=page)
        events += found["events"]
        if page * 500 >= found["total"]:
            break
        page += 1
    return sorted((e for e in events if e["seq"] is not None), key=lambda e: e["seq"])


def b64(values: list[str]) -> list[bytes]:
    return [base64.b64decode(value, validate=True) for value in values]


def inclusion(api: Api, leaf_index: int, tree_size: int) -> list[bytes]:
    found = get_json(
        api,
        "auditor",
        "/api/v1/audit/proof/inclusion",
        leaf_index=leaf_index,
        tree_size=tree_size,
    )
    assert (found["leaf_index"], found["tree_size"]) == (leaf_index, tree_size)
    return b64(found["hashes"])


def consistency(api: Api, first: int, second: int) -> list[bytes]:
    found = get_json(
        api, "auditor", "/api/v1/audit/proof/consistency", **{"from": first, "to": second}
    )
    assert (found["from"], found["to"]) == (first, second)
    return b64(found["hashes"])


def assert_error(response: Any, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error["code"], str)
    assert error["message"]
    if code is not None:
        assert error["code"] == code, error


@dataclass
class Log:
    api: Api
    events: list[dict[str, Any]]  # sequenced event objects, by seq
    entries: list[bytes]  # their leaf bytes, recomputed from the JSON
    notes: dict[int, str]  # signed checkpoint notes by tree size
    verifier: rfc9162.VerifierKey
    document_ids: list[str]

    @property
    def size(self) -> int:
        return len(self.entries)

    def root(self, size: int) -> bytes:
        return rfc9162.mth(self.entries[:size])


def grow_log(api: Api, backends: Backends) -> Log:
    """Activity through the API, then events with awkward contents, sequenced and signed one
    step at a time so that every tree size up to LOG_SIZE has its checkpoint; then three events
    under one checkpoint, so that two sizes stay unsigned."""
    notes: dict[int, str] = {}

    def settle() -> None:
        drain(backends)
        note = checkpoint_note(api)
        notes[int(note.split("\n")[1])] = note

    signed_in: set[str] = set()

    def login(user: str) -> None:
        """Sign in first, so that the action that follows is an event of its own."""
        if user not in signed_in:
            signed_in.add(user)
            api.headers(user)
            settle()

    login("east")  # reads the checkpoints
    document_ids = []
    for number, (user, visibility) in enumerate(
        (("east", "departments"), ("west", "private"), ("east2", "restricted"), ("east", "private"))
    ):
        fields = {"visibility": visibility}
        if visibility == "restricted":
            fields["departments"] = "扶贫办"
        login(user)
        response = api.upload(
            user,
            f"第{number}份材料 “引号”.txt",
            text_bytes(f"第{number}份材料：扶贫工作总结。"),
            **fields,
        )
        assert response.status_code == 201, response.text
        document_ids.append(response.json()["id"])
        settle()
    for user, document_id in (
        ("poverty", document_ids[0]),
        ("poverty", document_ids[2]),
        ("stats", document_ids[1]),  # denied: west's private material
        ("stats", document_ids[2]),  # denied: restricted to 扶贫办
    ):
        login(user)
        api.client.get(f"/api/v1/documents/{document_id}", headers=api.headers(user))
        settle()
    failed = api.client.post(
        "/api/v1/auth/token", data={"username": '不存在的"人"\\', "password": "wrong"}
    )
    assert failed.status_code == 401
    settle()
    number = 0
    while max(notes) < LOG_SIZE:
        number += 1
        backends.audit.record(
            actor=Actor(username=f"用户{number}", org="东镇", role="uploader", ip="203.0.113.7"),
            action=AuditAction.view,
            outcome=Outcome.allowed if number % 3 else Outcome.denied,
            document_id=document_ids[number % len(document_ids)],
            details={
                "note": '引号"、反斜杠\\、换行\n、制表\t、emoji 🙂、\u2028',
                "number": number,
                "nested": {"b": [1, None, True, "ä"], "a": {}},
            },
        )
        settle()
    for number in range(3):
        backends.audit.record(
            actor=Actor(username=f"batch{number}"),
            action=AuditAction.search,
            outcome=Outcome.allowed,
            details={"q": f"查询 {number}"},
        )
    drain(backends)
    note = checkpoint_note(api)
    notes[int(note.split("\n")[1])] = note

    events = sequenced_events(api)
    entries = [rfc9162.event_leaf_bytes(event) for event in events]
    return Log(api, events, entries, notes, public_key(api), document_ids)


@pytest.fixture(scope="module")
def log(
    request: pytest.FixtureRequest, stack: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Log]:
    """One log for the module's tests, which only read it: their own reads are events that
    are never sequenced, so its tree stays as grown."""
    data_dir = tmp_path_factory.mktemp("audit-log") / "data"
    with stack_settings(request, stack, data_dir) as settings:
        backends = open_backends(settings)
        try:
            seed_county(backends)
            with TestClient(create_app(settings, backends=backends)) as client:
                yield grow_log(Api(client, {}), backends)
        finally:
            backends.close()


# ---------------------------------------------------------------- the independent code itself


def test_independent_tree_hash_matches_the_ct_test_vectors() -> None:
    """The RFC 6962/9162 reference tree (Certificate Transparency's test vectors), so that the
    independent code is known right before it judges the server."""
    inputs = ("", "00", "10", "2021", "3031", "40414243", "5051525354555657")
    leaves = [bytes.fromhex(value) for value in (*inputs, "606162636465666768696a6b6c6d6e6f")]
    roots = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
    assert rfc9162.mth([]).hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert [rfc9162.mth(leaves[:n]).hex() for n in range(1, 9)] == roots
    # The recursive PATH and PROOF verify with the step-by-step algorithms, and a changed
    # leaf, root or path does not.
    entries = [bytes([number]) * number for number in range(21)]
    for size in range(1, len(entries) + 1):
        root = rfc9162.mth(entries[:size])
        for index in range(size):
            path = rfc9162.path(index, entries[:size])
            leaf = rfc9162.leaf_hash(entries[index])
            assert rfc9162.verify_inclusion(index, size, leaf, path, root)
            assert not rfc9162.verify_inclusion(index, size, rfc9162.leaf_hash(b"x"), path, root)
            assert not rfc9162.verify_inclusion(index, size, leaf, [*path, root], root)
            if path:
                assert not rfc9162.verify_inclusion(index, size, leaf, path[:-1], root)
        for first in range(1, size):
            proof = rfc9162.proof(first, entries[:size])
            old = rfc9162.mth(entries[:first])
            assert rfc9162.verify_consistency(first, size, old, root, proof)
            assert not rfc9162.verify_consistency(first, size, root, root, proof)
            assert not rfc9162.verify_consistency(first, size, old, old, proof)
            assert not rfc9162.verify_consistency(first, size, old, root, proof[:-1])


def test_independent_note_verifier_rejects_forgeries() -> None:
    key = Ed25519PrivateKey.generate()
    verifier = rfc9162.verifier_of("example.org/log", key)
    assert rfc9162.parse_verifier_key(verifier.encode()) == verifier
    text = rfc9162.checkpoint_text("example.org/log", 3, b"\x07" * 32, ["ext one"])
    note = rfc9162.sign_note(text, "example.org/log", key)
    assert rfc9162.verify_checkpoint(note, verifier).size == 3
    other = rfc9162.sign_note(text, "example.org/log", Ed25519PrivateKey.generate())
    for forged in (
        note.replace("\n3\n", "\n4\n"),  # the size changed after signing
        other,  # another key under the same name
        text,  # no signature at all
        note.replace("\u2014", "-"),
    ):
        with pytest.raises(rfc9162.NoteInvalid):
            rfc9162.verify_checkpoint(forged, verifier)
    # Both signatures on one note: ours is found among others.
    both = other + note.split("\n\n")[1]
    assert rfc9162.open_note(both, verifier) == text


# ---------------------------------------------------------------- leaves and checkpoints


def test_every_event_leaf_is_recomputed_from_its_json(log: Log) -> None:
    assert log.size >= LOG_SIZE + 3
    assert [event["seq"] for event in log.events] == list(range(1, log.size + 1))
    for event, entry in zip(log.events, log.entries, strict=True):
        leaf = rfc9162.leaf_hash(entry)
        assert event["leaf_index"] == event["seq"] - 1
        assert base64.b64decode(event["leaf_hash"]) == leaf, event
        assert event["hash"] == leaf.hex()
    # The awkward contents are unescaped in the leaf bytes, as the contract says.
    assert any("🙂".encode() in entry and b"\\u" not in entry for entry in log.entries)
    actions = {event["action"] for event in log.events}
    assert {"login", "upload", "view"} <= actions
    assert any(event["outcome"] == "denied" for event in log.events)


def test_signed_checkpoints_verify_and_hold_the_independent_roots(log: Log) -> None:
    api = log.api
    assert set(range(1, LOG_SIZE + 1)) <= set(log.notes)
    assert log.verifier.encode() == get_text(api, "east", "/api/v1/audit/public-key").strip()
    for size, note in sorted(log.notes.items()):
        assert checkpoint_note(api, size) == note
        checkpoint = rfc9162.verify_checkpoint(note, log.verifier)
        assert checkpoint.origin == log.verifier.name
        assert checkpoint.size == size
        assert checkpoint.root == log.root(size), size
        assert all(line.split(" ", 1)[0] for line in checkpoint.extensions)
    newest = rfc9162.verify_checkpoint(checkpoint_note(api), log.verifier)
    assert newest.size == log.size == max(log.notes)
    assert newest.root == log.root(log.size)


def test_checkpoint_of_an_unsigned_size_is_a_404(log: Log) -> None:
    api = log.api
    unsigned = sorted(set(range(1, log.size + 1)) - set(log.notes))
    assert unsigned == [log.size - 2, log.size - 1]
    for size in (*unsigned, log.size + 1, 10**9):
        response = api.client.get(
            "/api/v1/audit/checkpoint", params={"size": size}, headers=api.headers("auditor")
        )
        assert_error(response, 404, "checkpoint_not_found")
    for bad in (0, -1, "x"):
        response = api.client.get(
            "/api/v1/audit/checkpoint", params={"size": bad}, headers=api.headers("auditor")
        )
        assert_error(response, 422)


# ---------------------------------------------------------------- proofs


def test_inclusion_proofs_verify_against_independent_and_signed_roots(log: Log) -> None:
    api = log.api
    sizes = sorted({*TREE_SIZES, log.size - 1, log.size})
    checked = 0
    for size in sizes:
        root = log.root(size)
        signed = (
            rfc9162.verify_checkpoint(log.notes[size], log.verifier).root
            if size in log.notes
            else None
        )
        for index in range(size):
            hashes = inclusion(api, index, size)
            # The very path RFC 9162 §2.1.3.1 defines, in its order.
            assert hashes == rfc9162.path(index, log.entries[:size]), (index, size)
            leaf = base64.b64decode(log.events[index]["leaf_hash"])
            assert rfc9162.verify_inclusion(index, size, leaf, hashes, root), (index, size)
            if signed is not None:
                assert rfc9162.verify_inclusion(index, size, leaf, hashes, signed)
            # Another leaf does not go up the same path.
            other = base64.b64decode(log.events[(index + 1) % log.size]["leaf_hash"])
            assert not rfc9162.verify_inclusion(index, size, other, hashes, root)
            checked += 1
    assert checked > 300


def test_consistency_proofs_verify_between_independent_and_signed_roots(log: Log) -> None:
    api = log.api
    seconds = sorted({*TREE_SIZES, log.size - 1, log.size})
    for second in seconds:
        second_root = log.root(second)
        for first in range(0, second + 1):
            hashes = consistency(api, first, second)
            first_root = log.root(first)
            if 0 < first < second:
                assert hashes == rfc9162.proof(first, log.entries[:second]), (first, second)
                # A different older root is not consistent with the newer one.
                assert not rfc9162.verify_consistency(
                    first, second, rfc9162.mth(log.entries[1 : first + 1]), second_root, hashes
                )
            else:
                assert hashes == []
            assert rfc9162.verify_consistency(first, second, first_root, second_root, hashes)
            if first in log.notes and second in log.notes:
                old = rfc9162.verify_checkpoint(log.notes[first], log.verifier)
                new = rfc9162.verify_checkpoint(log.notes[second], log.verifier)
                assert rfc9162.verify_consistency(first, second, old.root, new.root, hashes)


def test_proof_parameters_out_of_range_are_422(log: Log) -> None:
    api = log.api
    auditor = api.headers("auditor")
    cases: tuple[dict[str, int | str], ...] = (
        {"leaf_index": 0, "tree_size": log.size + 1},  # beyond the sequenced log
        {"leaf_index": log.size, "tree_size": log.size + 5},
        {"leaf_index": 3, "tree_size": 3},  # leaf_index == tree_size
        {"leaf_index": 7, "tree_size": 3},
        {"leaf_index": 0, "tree_size": 0},
        {"leaf_index": -1, "tree_size": 3},
        {"leaf_index": 0, "tree_size": 2**63},
        {"leaf_index": "a", "tree_size": 3},
        {"tree_size": 3},
    )
    for params in cases:
        response = api.client.get("/api/v1/audit/proof/inclusion", params=params, headers=auditor)
        assert_error(response, 422)
    assert_error(
        api.client.get(
            "/api/v1/audit/proof/inclusion",
            params={"leaf_index": 0, "tree_size": log.size + 1},
            headers=auditor,
        ),
        422,
        "proof_out_of_range",
    )
    for first, second in (
        (5, 4),  # from > to
        (log.size, log.size - 1),
        (1, log.size + 1),  # beyond the sequenced log
        (log.size + 1, log.size + 1),
        (-1, 3),
    ):
        response = api.client.get(
            "/api/v1/audit/proof/consistency",
            params={"from": first, "to": second},
            headers=auditor,
        )
        assert_error(response, 422)
    assert_error(
        api.client.get(
            "/api/v1/audit/proof/consistency", params={"from": 5, "to": 4}, headers=auditor
        ),
        422,
        "proof_out_of_range",
    )
    # The edge cases that are in range answer.
    assert inclusion(api, log.size - 1, log.size)
    assert consistency(api, log.size, log.size) == []
    assert consistency(api, 0, log.size) == []


# ---------------------------------------------------------------- who may read what


def test_proofs_are_the_auditors_checkpoint_and_key_anyone_signed_in(log: Log) -> None:
    api = log.api
    proofs: tuple[tuple[str, dict[str, int]], ...] = (
        ("/api/v1/audit/proof/inclusion", {"leaf_index": 0, "tree_size": 2}),
        ("/api/v1/audit/proof/consistency", {"from": 1, "to": 2}),
    )
    public: tuple[tuple[str, dict[str, int]], ...] = (
        ("/api/v1/audit/checkpoint", {}),
        ("/api/v1/audit/checkpoint", {"size": 2}),
        ("/api/v1/audit/public-key", {}),
    )
    for user in ("east", "west", "poverty", "stats", "admin", "coord"):
        for url, params in proofs:
            response = api.client.get(url, params=params, headers=api.headers(user))
            assert_error(response, 403)
        for url, params in public:
            response = api.client.get(url, params=params, headers=api.headers(user))
            assert response.status_code == 200, (user, url, response.text)
    for url, params in proofs:
        assert api.client.get(url, params=params, headers=api.headers("auditor")).status_code == 200
    for url, params in (*proofs, *public):
        assert_error(api.client.get(url, params=params), 401)
    # Whoever reads them gets the same key and a checkpoint that verifies with it.
    assert public_key(api, "stats") == log.verifier
    rfc9162.verify_checkpoint(checkpoint_note(api, user="coord"), log.verifier)


def test_before_anything_is_signed(api: Api) -> None:
    api.headers("east")  # a login event, not sequenced
    assert_error(
        api.client.get("/api/v1/audit/checkpoint", headers=api.headers("east")),
        404,
        "checkpoint_not_found",
    )
    response = api.client.get(
        "/api/v1/audit/proof/inclusion",
        params={"leaf_index": 0, "tree_size": 1},
        headers=api.headers("auditor"),
    )
    assert_error(response, 422, "proof_out_of_range")


# ---------------------------------------------------------------- receipts


def receipt_of(api: Api, document_id: str) -> dict[str, Any]:
    found: dict[str, Any] = get_json(api, "east", f"/api/v1/documents/{document_id}/receipt")
    return found


def test_receipt_is_pending_until_sequenced_then_verifies_alone(
    api: Api, backends: Backends
) -> None:
    first = api.upload("east", "收据一.txt", text_bytes("第一份"))
    assert first.status_code == 201, first.text
    first_id = first.json()["id"]
    pending = receipt_of(api, first_id)
    assert pending["pending"] is True
    assert pending["event"] is None
    assert pending["checkpoint"] is None
    assert pending["inclusion_proof"] is None
    drain(backends)
    # A checkpoint now exists but does not cover a new upload: still pending.
    second = api.upload("east", "收据二.txt", text_bytes("第二份"))
    assert second.status_code == 201, second.text
    second_id = second.json()["id"]
    assert receipt_of(api, second_id)["pending"] is True
    kept = receipt_of(api, first_id)
    assert kept["pending"] is False
    drain(backends)

    verifier = public_key(api)
    kept_checkpoint = rfc9162.check_receipt(kept, verifier)
    events = sequenced_events(api)
    entries = [rfc9162.event_leaf_bytes(event) for event in events]
    for document_id, sha256 in ((first_id, first.json()["sha256"]), (second_id, None)):
        receipt = receipt_of(api, document_id)
        assert receipt["pending"] is False
        event = receipt["event"]
        assert event["action"] == "upload"
        assert event["document_id"] == document_id
        assert event == next(e for e in events if e["seq"] == event["seq"])
        if sha256 is not None:
            assert receipt["sha256"] == event["details"]["sha256"] == sha256
        checkpoint = rfc9162.check_receipt(receipt, verifier)
        # The newest checkpoint, and the path the independent tree gives.
        assert receipt["checkpoint"] == checkpoint_note(api)
        assert checkpoint.root == rfc9162.mth(entries[: checkpoint.size])
        proof = receipt["inclusion_proof"]
        assert b64(proof["hashes"]) == rfc9162.path(
            proof["leaf_index"], entries[: proof["tree_size"]]
        )
    # The receipt kept from before stays provable: its checkpoint is a prefix of the newest.
    newest = rfc9162.verify_checkpoint(checkpoint_note(api), verifier)
    assert kept_checkpoint.size < newest.size
    assert rfc9162.verify_consistency(
        kept_checkpoint.size,
        newest.size,
        kept_checkpoint.root,
        newest.root,
        consistency(api, kept_checkpoint.size, newest.size),
    )
    # A receipt whose event was edited does not verify.
    forged = {**kept, "event": {**kept["event"], "ip": "198.51.100.1"}}
    with pytest.raises(rfc9162.NoteInvalid):
        rfc9162.check_receipt(forged, verifier)
