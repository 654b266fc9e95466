"""Near-duplicate fingerprints: MinHash signatures over character 5-grams of normalised text.

Layout does not count: NFKC, case, whitespace and punctuation are removed before shingling, so a
DOCX and its PDF export get nearly the same signature. Hashing is SHA-1 based, so a signature is the
same in every process and on every machine.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterator, Sequence

__all__ = ["band_keys", "fingerprint", "similarity"]

_PERMUTATIONS = 128
_SEED = 20240601  # changing it invalidates every stored fingerprint
_SHINGLE = 5
_MIN_CHARS = 20  # shorter texts share too few shingles for the estimate to mean anything
# Locality-sensitive banding: two texts share a band when 4 signature rows agree. With 32 bands a
# pair at Jaccard 0.8 shares one with probability 1 - (1 - 0.8^4)^32 > 0.9999, at 0.3 about 0.23.
_BANDS = 32
_ROWS = _PERMUTATIONS // _BANDS
_BATCH = 4096  # shingles hashed at a time (each costs _PERMUTATIONS × 8 bytes while hashed)


def fingerprint(text: str) -> tuple[int, ...]:
    """MinHash signature of the text; () when it is empty or too short to compare."""
    letters = _normalised(text)
    if len(letters) < _MIN_CHARS:
        return ()
    shingles = list(dict.fromkeys(_shingles(letters)))
    # Imported here: datasketch brings numpy and scipy (tens of MiB), which an API process
    # without the embedded worker never needs.
    from datasketch import MinHash

    signature = MinHash(num_perm=_PERMUTATIONS, seed=_SEED)
    for start in range(0, len(shingles), _BATCH):
        signature.update_batch([s.encode("utf-8") for s in shingles[start : start + _BATCH]])
    return tuple(int(value) for value in signature.hashvalues)


def band_keys(signature: Sequence[int]) -> list[tuple[int, int]]:
    """(band, key) pairs: texts sharing any pair are candidates for a full comparison."""
    if not signature:
        return []
    keys = []
    for band in range(_BANDS):
        rows = signature[band * _ROWS : (band + 1) * _ROWS]
        digest = hashlib.blake2b(repr(tuple(rows)).encode(), digest_size=8).digest()
        keys.append((band, int.from_bytes(digest, "big", signed=True)))
    return keys


def similarity(a: Sequence[int], b: Sequence[int]) -> float:
    """Estimated Jaccard similarity of the two texts' shingles; 0.0 when either has none."""
    if not a or not b:
        return 0.0
    if len(a) != len(b):
        raise ValueError("fingerprints of different lengths cannot be compared")
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def _normalised(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    # Drop separators (Z*), punctuation (P*) and controls (C*): only the wording is compared.
    return "".join(char for char in text if unicodedata.category(char)[0] not in "ZPC")


def _shingles(letters: str) -> Iterator[str]:
    for start in range(len(letters) - _SHINGLE + 1):
        yield letters[start : start + _SHINGLE]
