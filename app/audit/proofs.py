"""RFC 9162 inclusion and consistency proofs (sections 2.1.3 and 2.1.4): generation and verification.

Generation is split in two. `inclusion_ranges` and `consistency_ranges` walk the tree from the root
down, iteratively, and name the leaf ranges [start, end) whose Merkle tree hashes make up the proof
(leaf-to-root order, as the RFC writes them). `inclusion_proof` and `consistency_proof` then ask a
`SubtreeHash` callable for each range; the service answers it by streaming only that range's stored
32-byte leaf hashes through `app.audit.merkle.TreeBuilder`, so a proof over a log of millions of events
reads each leaf hash at most once, in O(log n) memory, and never recurses.

Sizes are leaf counts and indexes start at 0. As in transparency-dev/merkle, a consistency proof from
the empty tree is refused: every tree extends it, so the proof would prove nothing.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence

from app.audit.merkle import HASH_SIZE, node_hash, split_point

SubtreeHash = Callable[[int, int], bytes]
"""MTH(D[start:end]) of the log's leaves, for `start < end`."""


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The subtrees of PATH(index, D[size]) (RFC 9162 section 2.1.3.1), deepest first.

    PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n]) when m < k, else PATH(m - k, D[k:n]) : MTH(D[0:k]);
    the walk below follows the same splits from the root and reverses the result at the end."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split_point(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The subtrees of PROOF(first, D[second]) = SUBPROOF(first, D[second], true) (RFC 9162 section
    2.1.4.1), deepest first; empty when the sizes are equal.

    SUBPROOF(m, D[m], true) = {}; SUBPROOF(m, D[m], false) = {MTH(D[m])}; for m < n, with k the split:
    SUBPROOF(m, D[0:k], b) : MTH(D[k:n]) when m <= k, else SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])."""
    if first < 1:
        raise ValueError("a consistency proof needs 0 < first: every tree extends the empty one")
    if first > second:
        raise ValueError(f"tree size {first} is larger than {second}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, second
    complete = True  # the b of SUBPROOF: the old tree is a complete subtree so far
    while first != hi:  # first always lies in (lo, hi]
        k = split_point(hi - lo)
        if first - lo <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
            complete = False
    if not complete:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def inclusion_proof(index: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    """The audit path of leaf `index` in the tree of the first `size` leaves (RFC 9162 section 2.1.3.1)."""
    return [subtree(start, end) for start, end in inclusion_ranges(index, size)]


def consistency_proof(first: int, second: int, subtree: SubtreeHash) -> list[bytes]:
    """The consistency proof between the trees of the first `first` and `second` leaves (RFC 9162
    section 2.1.4.1)."""
    return [subtree(start, end) for start, end in consistency_ranges(first, second)]


def _well_formed(proof: Sequence[bytes]) -> bool:
    return all(len(node) == HASH_SIZE for node in proof)


def verify_inclusion(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2: does `proof` show that `leaf_hash` is leaf `index` of the tree of
    `size` leaves whose root is `root`?"""
    if not 0 <= index < size or len(leaf_hash) != HASH_SIZE or not _well_formed(proof):
        return False
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and hmac.compare_digest(r, root)


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2: does `proof` show that the tree of `second` leaves with root
    `second_root` extends the tree of `first` leaves with root `first_root`?

    Equal sizes need an empty proof and equal roots; `first` = 0 is refused (see the module)."""
    if first < 1 or second < first or not _well_formed(proof):
        return False
    if first == second:
        return not proof and hmac.compare_digest(first_root, second_root)
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the old root is a node of the new tree
        path.insert(0, first_root)
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
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and hmac.compare_digest(fr, first_root) and hmac.compare_digest(sr, second_root)
