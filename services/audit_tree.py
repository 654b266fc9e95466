"""The audit log's Merkle tree as the database keeps it: leaves, perfect subtrees, checkpoints.

Leaf ``i`` is ``audit_leaves`` row ``seq = i + 1``; every perfect subtree above the leaves is an
``audit_tree_nodes`` row, so a root or a proof costs one or two indexed queries.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from services import merkle
from services.errors import NotFound
from services.merkle import NodeKey, Nodes
from services.models import AuditCheckpoint, AuditEvent, AuditLeaf, AuditTreeNode


class TreeIncomplete(RuntimeError):
    """A node the tree should hold is missing: the tables were changed by hand."""


def node_reader(session: Session) -> Nodes:
    """Reads perfect subtrees' hashes from the database, all asked for at once in two queries."""

    def read(keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        wanted = set(keys)
        found: dict[NodeKey, bytes] = {}
        leaves = sorted(index + 1 for level, index in wanted if level == 0)
        inner = sorted(key for key in wanted if key[0] > 0)
        for start in range(0, len(leaves), 500):
            rows = session.execute(
                select(AuditLeaf.seq, AuditLeaf.leaf_hash).where(
                    AuditLeaf.seq.in_(leaves[start : start + 500])
                )
            )
            found.update(((0, seq - 1), bytes(leaf)) for seq, leaf in rows)
        for start in range(0, len(inner), 500):
            rows = session.execute(
                select(AuditTreeNode.level, AuditTreeNode.idx, AuditTreeNode.hash).where(
                    tuple_(AuditTreeNode.level, AuditTreeNode.idx).in_(inner[start : start + 500])
                )
            )
            found.update(((row.level, row.idx), bytes(row.hash)) for row in rows)
        missing = wanted - found.keys()
        if missing:
            raise TreeIncomplete(f"tree nodes missing: {sorted(missing)[:5]}")
        return found

    return read


def tree_size(session: Session) -> int:
    return session.scalar(select(func.max(AuditLeaf.seq))) or 0


@dataclass(frozen=True)
class InclusionProof:
    leaf_index: int
    tree_size: int
    hashes: list[bytes]


@dataclass(frozen=True)
class ConsistencyProof:
    first: int
    second: int
    hashes: list[bytes]


def latest_checkpoint(session: Session) -> AuditCheckpoint | None:
    return session.scalar(
        select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size.desc()).limit(1)
    )


def checkpoint_of_size(session: Session, size: int) -> AuditCheckpoint:
    found = session.get(AuditCheckpoint, size)
    if found is None:
        raise NotFound("没有这一树大小的签名检查点", code="checkpoint_not_found")
    return found


def inclusion_proof(session: Session, *, leaf_index: int, size: int) -> InclusionProof:
    """The path from a leaf to the root of the tree of ``size`` leaves (≤ the current size)."""
    _within(session, size)
    hashes = merkle.inclusion_proof(leaf_index, size, node_reader(session))
    return InclusionProof(leaf_index, size, hashes)


def consistency_proof(session: Session, *, first: int, second: int) -> ConsistencyProof:
    _within(session, second)
    hashes = merkle.consistency_proof(first, second, node_reader(session))
    return ConsistencyProof(first, second, hashes)


def _within(session: Session, size: int) -> None:
    if size > tree_size(session):
        raise merkle.ProofError("tree_size is beyond the events sequenced so far")


@dataclass(frozen=True)
class Anchor:
    """A sequenced event, the newest signed checkpoint covering it and the path between them."""

    event: AuditEvent
    checkpoint: AuditCheckpoint
    proof: InclusionProof


def anchor(session: Session, event_id: int) -> Anchor | None:
    """The event's anchor in the signed tree; None while it waits for its sequence number or
    for a checkpoint that covers it."""
    event = session.get(AuditEvent, event_id)
    if event is None or event.leaf is None:
        return None
    checkpoint = latest_checkpoint(session)
    if checkpoint is None or checkpoint.tree_size < event.leaf.seq:
        return None
    proof = inclusion_proof(session, leaf_index=event.leaf.seq - 1, size=checkpoint.tree_size)
    return Anchor(event, checkpoint, proof)
