"""Merkle tree hashing and proofs as RFC 9162 (Certificate Transparency 2.0) defines them.

A tree over leaves ``D[0:n]``: ``MTH({}) = SHA-256()``, ``MTH({d}) = SHA-256(0x00 ‖ d)``, and for
``n > 1`` with ``k`` the largest power of two below ``n``: ``SHA-256(0x01 ‖ MTH(D[0:k]) ‖
MTH(D[k:n]))``. Every subtree the recursion splits off on its left is perfect (``2**level`` leaves
starting at a multiple of that size), so a store of perfect subtrees' hashes answers any root or
proof: ``Nodes`` fetches them, this module decides which ones are needed.

Verification (``verify_inclusion``, ``verify_consistency``) follows RFC 9162 §2.1.3.2 and
§2.1.4.2 and needs nothing but the hashes: it runs offline, on a receipt.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

# (level, index): the perfect subtree of 2**level leaves starting at leaf index * 2**level.
NodeKey = tuple[int, int]
Nodes = Callable[[Iterable[NodeKey]], Mapping[NodeKey, bytes]]


class ProofError(ValueError):
    """A proof asked for sizes or indexes outside the tree."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _largest_power_below(n: int) -> int:
    """The largest power of two strictly less than ``n`` (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_pieces(start: int, end: int) -> list[NodeKey]:
    """The perfect subtrees whose hashes make ``MTH(D[start:end])``, left to right.

    ``start`` must be where the RFC's recursion can place a subtree (a multiple of the largest
    power of two not above ``end - start``), which every range a root or proof asks for is.
    """
    pieces: list[NodeKey] = []
    while end - start > 0:
        size = end - start
        step = size if size & (size - 1) == 0 else _largest_power_below(size)
        level = step.bit_length() - 1
        pieces.append((level, start >> level))
        start += step
    return pieces


def fold(hashes: Sequence[bytes]) -> bytes:
    """The root over perfect subtrees ordered left to right, each no larger than the one before
    (``MTH`` joins the last two first)."""
    if not hashes:
        return EMPTY_ROOT
    root = hashes[-1]
    for piece in reversed(hashes[:-1]):
        root = node_hash(piece, root)
    return root


def range_hash(nodes: Mapping[NodeKey, bytes], start: int, end: int) -> bytes:
    return fold([nodes[key] for key in perfect_pieces(start, end)])


def _inclusion_ranges(index: int, start: int, end: int) -> list[tuple[int, int]]:
    """RFC 9162 §2.1.3.1 PATH(m, D[start:end]) as the ranges whose hashes it lists, leaf first."""
    ranges: list[tuple[int, int]] = []
    while end - start > 1:
        k = _largest_power_below(end - start)
        if index - start < k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def _consistency_ranges(m: int, start: int, end: int, whole: bool) -> list[tuple[int, int]]:
    """RFC 9162 §2.1.4.1 SUBPROOF(m, D[start:end], b) as ranges, in the RFC's order."""
    n = end - start
    if m == n:
        return [] if whole else [(start, end)]
    k = _largest_power_below(n)
    if m <= k:
        return [*_consistency_ranges(m, start, start + k, whole), (start + k, end)]
    return [*_consistency_ranges(m - k, start + k, end, False), (start, start + k)]


def _hashes_of(ranges: list[tuple[int, int]], nodes: Nodes) -> list[bytes]:
    keys = [key for start, end in ranges for key in perfect_pieces(start, end)]
    found = nodes(set(keys))
    return [range_hash(found, start, end) for start, end in ranges]


def root(size: int, nodes: Nodes) -> bytes:
    """MTH of the first ``size`` leaves."""
    if size == 0:
        return EMPTY_ROOT
    return _hashes_of([(0, size)], nodes)[0]


def inclusion_proof(index: int, size: int, nodes: Nodes) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``size`` leaves (RFC 9162 order)."""
    if not 0 <= index < size:
        raise ProofError("leaf_index must be below tree_size")
    return _hashes_of(_inclusion_ranges(index, 0, size), nodes)


def consistency_proof(first: int, second: int, nodes: Nodes) -> list[bytes]:
    """Proof that the tree of ``first`` leaves is a prefix of the tree of ``second`` leaves."""
    if not 0 <= first <= second:
        raise ProofError("from must not exceed to")
    if first == 0 or first == second:
        return []
    return _hashes_of(_consistency_ranges(first, 0, second, True), nodes)


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` lead from ``leaf`` (its hash) to ``expected_root``?"""
    if index >= size or index < 0:
        return False
    fn, sn, result = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            result = node_hash(p, result)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            result = node_hash(result, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and result == expected_root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: is the tree with ``first_root`` a prefix of the one with
    ``second_root``?"""
    if first > second or first < 0:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the first tree's root is a node of the second
        path.insert(0, first_root)
    if not path:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


@dataclass
class Frontier:
    """The right edge of a tree: the hashes of its perfect subtrees, largest first. Appending a
    leaf yields the new perfect subtrees' hashes to store; ``root`` folds the edge."""

    size: int = 0
    edge: list[bytes] = field(default_factory=list)

    @classmethod
    def of(cls, size: int, nodes: Nodes) -> Frontier:
        keys = perfect_pieces(0, size)
        found = nodes(set(keys))
        return cls(size, [found[key] for key in keys])

    def append(self, leaf: bytes) -> list[tuple[NodeKey, bytes]]:
        """Add a leaf hash; the subtrees completed by it, leaf included, as ((level, index),
        hash)."""
        index = self.size
        made = [((0, index), leaf)]
        current, level = leaf, 0
        while (index >> level) & 1:
            current = node_hash(self.edge.pop(), current)
            level += 1
            made.append(((level, index >> level), current))
        self.edge.append(current)
        self.size += 1
        return made

    def root(self) -> bytes:
        return fold(self.edge)
