"""Properties over many tree sizes: generated proofs match a literal transcription of the RFC 9162
recursive definitions, every proof verifies, and one flipped byte (or a wrong index, size or root)
makes it fail."""

from __future__ import annotations

import hashlib
import random

import pytest

from app.audit import proofs
from app.audit.merkle import TreeBuilder, hash_leaf, node_hash, split_point, tree_hash

MAX = 300
LEAVES = [hash_leaf(i.to_bytes(4, "big")) for i in range(MAX + 1)]
RNG = random.Random(9162)
SIZES = sorted({1, 2, 3, 4, 5, 7, 8, 9, 127, 128, 129, 255, 256, 257, MAX, *RNG.sample(range(1, MAX + 1), 40)})


def mth(d: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1, recursively, as written."""
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = split_point(len(d))
    return node_hash(mth(d[:k]), mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    """RFC 9162 section 2.1.3.1, recursively, as written."""
    if len(d) == 1:
        return []
    k = split_point(len(d))
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    """RFC 9162 section 2.1.4.1, recursively, as written."""
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = split_point(n)
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def subtree(start: int, end: int) -> bytes:
    return tree_hash(LEAVES[start:end])


def flip(proof: list[bytes], i: int, j: int) -> list[bytes]:
    changed = [*proof]
    changed[i] = changed[i][:j] + bytes([changed[i][j] ^ 0x01]) + changed[i][j + 1 :]
    return changed


def test_tree_builder_matches_the_recursive_definition() -> None:
    builder = TreeBuilder()
    assert builder.root() == mth([])
    for size in range(1, MAX + 1):
        builder.append(LEAVES[size - 1])
        if size in SIZES:
            assert builder.root() == mth(LEAVES[:size]), size


@pytest.mark.parametrize("size", SIZES)
def test_inclusion_proofs(size: int) -> None:
    d, root = LEAVES[:size], mth(LEAVES[:size])
    indexes = sorted({0, size - 1, *(RNG.randrange(size) for _ in range(8))})
    for index in indexes:
        proof = proofs.inclusion_proof(index, size, subtree)
        assert proof == path(index, d), (index, size)
        assert proofs.verify_inclusion(index, size, d[index], proof, root)
        for i in range(len(proof)):
            assert not proofs.verify_inclusion(index, size, d[index], flip(proof, i, RNG.randrange(32)), root)
        assert not proofs.verify_inclusion(index, size, flip([d[index]], 0, 31)[0], proof, root)
        assert not proofs.verify_inclusion(index, size, d[index], proof, flip([root], 0, 0)[0])
        if size > 1:
            other = (index + 1) % size
            assert not proofs.verify_inclusion(other, size, d[index], proof, root)


@pytest.mark.parametrize("second", SIZES)
def test_consistency_proofs(second: int) -> None:
    d, root2 = LEAVES[:second], mth(LEAVES[:second])
    firsts = sorted({1, second, *(RNG.randrange(1, second + 1) for _ in range(8))})
    for first in firsts:
        root1 = mth(d[:first])
        proof = proofs.consistency_proof(first, second, subtree)
        assert proof == subproof(first, d, True), (first, second)
        assert proofs.verify_consistency(first, second, root1, root2, proof)
        for i in range(len(proof)):
            assert not proofs.verify_consistency(first, second, root1, root2, flip(proof, i, RNG.randrange(32)))
        if first < second:
            assert not proofs.verify_consistency(first, second, flip([root1], 0, 5)[0], root2, proof)
            assert not proofs.verify_consistency(first, second, root1, flip([root2], 0, 5)[0], proof)
            assert not proofs.verify_consistency(first, second, root1, root2, proof[:-1])


def test_a_rewritten_history_is_not_consistent() -> None:
    """A log that changed an old event cannot prove that it extends a checkpoint taken before."""
    old = LEAVES[:100]
    forged = [*LEAVES[:150]]
    forged[42] = hash_leaf(b"rewritten")
    proof = proofs.consistency_proof(100, 150, lambda s, e: tree_hash(forged[s:e]))
    assert not proofs.verify_consistency(100, 150, mth(old), mth(forged), proof)


def test_large_tree_proofs_are_iterative() -> None:
    """2^20 + 3 leaves: ranges are computed without recursion and each proof is O(log n) long."""
    size = (1 << 20) + 3
    assert proofs.inclusion_ranges(size - 2, size) == [(size - 3, size - 2), (size - 1, size), (0, 1 << 20)]
    ranges = proofs.inclusion_ranges(0, size)
    assert len(ranges) == 21 and ranges[0] == (1, 2) and ranges[-1] == (1 << 20, size)
    assert proofs.consistency_ranges(1000, size)[-1] == (1 << 20, size)
