"""Tree hashing, proof generation and proof verification against the published vectors of
transparency-dev/merkle (see `tests.audit.rfc6962_vectors` for the files and commit)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.audit import proofs
from app.audit.merkle import EMPTY_ROOT, hash_leaf, node_hash, root_from_leaf_hashes, tree_hash
from tests.audit import rfc6962_vectors as v

LEAVES = [hash_leaf(bytes.fromhex(data)) for data in v.LEAF_INPUTS]


def subtree(start: int, end: int) -> bytes:
    return tree_hash(LEAVES[start:end])


def h(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(x) for x in values]


def node_ranges(ids: list[v.Node], rehash: tuple[int, int] | None) -> list[tuple[int, int]]:
    """transparency-dev node ids -> leaf ranges; the rehashed nodes make one range together."""
    ranges = [(index << level, (index + 1) << level) for level, index in ids]
    if rehash is None:
        return ranges
    begin, end = rehash
    group = ranges[begin:end]
    return [*ranges[:begin], (min(s for s, _ in group), max(e for _, e in group)), *ranges[end:]]


def test_hasher_vectors() -> None:
    assert EMPTY_ROOT == v.HASHER_EMPTY_ROOT
    assert hash_leaf(b"").hex() == v.HASHER_EMPTY_LEAF
    assert hash_leaf(v.HASHER_LEAF[0]).hex() == v.HASHER_LEAF[1]
    assert node_hash(v.HASHER_NODE[0], v.HASHER_NODE[1]).hex() == v.HASHER_NODE[2]


def test_leaf_and_node_hashes() -> None:
    assert [leaf.hex() for leaf in LEAVES] == v.NODE_HASHES[0]
    for level, row in enumerate(v.NODE_HASHES):
        for index, expected in enumerate(row):
            assert subtree(index << level, (index + 1) << level).hex() == expected, (level, index)


@pytest.mark.parametrize("size", range(9))
def test_roots_for_every_size(size: int) -> None:
    assert tree_hash(LEAVES[:size]).hex() == v.ROOTS[size]
    assert root_from_leaf_hashes(leaf.hex() for leaf in LEAVES[:size]) == (size, v.ROOTS[size])


@pytest.mark.parametrize(("size", "index", "ids", "rehash"), v.INCLUSION_NODES)
def test_inclusion_proof_nodes(size: int, index: int, ids: list[v.Node], rehash: tuple[int, int] | None) -> None:
    assert proofs.inclusion_ranges(index, size) == node_ranges(ids, rehash)


@pytest.mark.parametrize(("size", "index"), v.INCLUSION_ERRORS)
def test_inclusion_proof_refuses(size: int, index: int) -> None:
    with pytest.raises(ValueError):
        proofs.inclusion_ranges(index, size)


@pytest.mark.parametrize(("size1", "size2", "ids", "rehash"), v.CONSISTENCY_NODES)
def test_consistency_proof_nodes(size1: int, size2: int, ids: list[v.Node], rehash: tuple[int, int] | None) -> None:
    assert proofs.consistency_ranges(size1, size2) == node_ranges(ids, rehash)


@pytest.mark.parametrize(("size1", "size2"), v.CONSISTENCY_ERRORS)
def test_consistency_proof_refuses(size1: int, size2: int) -> None:
    with pytest.raises(ValueError):
        proofs.consistency_ranges(size1, size2)


def _bad_inclusion(index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes) -> Iterator[tuple]:
    """proofgen's invalidInclusionProof: each probe must fail."""
    some, empty = bytes.fromhex(v.SOME_HASH), bytes.fromhex(EMPTY_ROOT)
    yield index - 1, size, root, leaf, proof
    yield index + 1, size, root, leaf, proof
    yield index ^ 2, size, root, leaf, proof
    yield index, size * 2, root, leaf, proof
    yield index, size // 2, root, leaf, proof
    yield index, size, root, b"WrongLeaf", proof
    yield index, size, empty, leaf, proof
    yield index, size, some, leaf, proof
    yield index, size, root, leaf, [*proof, b""]
    yield index, size, root, leaf, [*proof, root]
    yield index, size, root, leaf, [b"", *proof]
    yield index, size, root, leaf, [root, *proof]
    for i in range(len(proof)):
        flipped = [*proof]
        flipped[i] = bytes([proof[i][0] ^ 8]) + proof[i][1:]
        yield index, size, root, leaf, flipped
    if proof:
        yield index, size, root, leaf, proof[:-1]
    if len(proof) > 1:
        yield index, size, root, leaf, [proof[0], some, *proof[1:]]


@pytest.mark.parametrize(("index", "size", "path"), v.INCLUSION_PROOFS)
def test_inclusion_proofs(index: int, size: int, path: list[str]) -> None:
    expected = h(path)
    assert proofs.inclusion_proof(index, size, subtree) == expected
    root, leaf = bytes.fromhex(v.ROOTS[size]), LEAVES[index]
    assert proofs.verify_inclusion(index, size, leaf, expected, root)
    for bad_index, bad_size, bad_root, bad_leaf, bad_proof in _bad_inclusion(index, size, expected, root, leaf):
        assert not proofs.verify_inclusion(bad_index, bad_size, bad_leaf, bad_proof, bad_root)


@pytest.mark.parametrize(("index", "size", "root", "leaf", "valid"), v.STATIC_INCLUSION_PROBES)
def test_static_inclusion_probes(index: int, size: int, root: bytes, leaf: bytes, valid: bool) -> None:
    assert proofs.verify_inclusion(index, size, leaf, [], root) is valid


def _bad_consistency(size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes) -> Iterator[tuple]:
    """proofgen's invalidConsistencyProof: each probe must fail."""
    yield size1 - 1, size2, root1, root2, proof
    yield size1 + 1, size2, root1, root2, proof
    yield size1 ^ 2, size2, root1, root2, proof
    yield size1, size2 * 2, root1, root2, proof
    yield size1, size2 // 2, root1, root2, proof
    yield size1, size2, b"WrongRoot", root2, proof
    yield size1, size2, root1, b"WrongRoot", proof
    yield size1, size2, root2, root1, proof
    yield size1, size2, root1, root2, []
    yield size1, size2, root1, root2, [*proof, b""]
    yield size1, size2, root1, root2, [*proof, root1]
    yield size1, size2, root1, root2, [*proof, root2]
    yield size1, size2, root1, root2, [b"", *proof]
    yield size1, size2, root1, root2, [root1, *proof]
    yield size1, size2, root1, root2, [root2, *proof]
    yield size1, size2, root1, root2, [proof[0], *proof]
    yield size1, size2, root1, root2, proof[:-1]
    for i in range(len(proof)):
        flipped = [*proof]
        flipped[i] = bytes([proof[i][0] ^ 16]) + proof[i][1:]
        yield size1, size2, root1, root2, flipped


@pytest.mark.parametrize(("size1", "size2", "path"), v.CONSISTENCY_PROOFS)
def test_consistency_proofs(size1: int, size2: int, path: list[str]) -> None:
    expected = h(path)
    assert proofs.consistency_proof(size1, size2, subtree) == expected
    root1, root2 = bytes.fromhex(v.ROOTS[size1]), bytes.fromhex(v.ROOTS[size2])
    assert proofs.verify_consistency(size1, size2, root1, root2, expected)
    if not expected:  # proofgen corrupts only the non-trivial proofs
        return
    for bad in _bad_consistency(size1, size2, expected, root1, root2):
        bad_size1, bad_size2, bad_root1, bad_root2, bad_proof = bad
        assert not proofs.verify_consistency(bad_size1, bad_size2, bad_root1, bad_root2, bad_proof), bad


@pytest.mark.parametrize(("size1", "size2", "root1", "root2", "proof", "valid"), v.STATIC_CONSISTENCY_PROBES)
def test_static_consistency_probes(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes], valid: bool
) -> None:
    assert proofs.verify_consistency(size1, size2, root1, root2, proof) is valid


def test_every_consistency_proof_among_the_vector_roots() -> None:
    """All pairs 1 <= m <= n <= 8 over the published roots (transparency-dev's TestTreeConsistencyProof)."""
    for size1 in range(1, 9):
        for size2 in range(size1, 9):
            proof = proofs.consistency_proof(size1, size2, subtree)
            root1, root2 = bytes.fromhex(v.ROOTS[size1]), bytes.fromhex(v.ROOTS[size2])
            assert proofs.verify_consistency(size1, size2, root1, root2, proof), (size1, size2)
