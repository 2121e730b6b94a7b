"""RFC 9162 (Certificate Transparency v2) Merkle tree hash, section 2.1.1.

MTH({}) = SHA-256(); MTH of one leaf is its leaf hash SHA-256(0x00 || d); for n > 1, with k the largest
power of two smaller than n, MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])). Audit events are
hashed into leaves by `app.audit.chain.leaf_hash`; proofs over the tree are in `app.audit.proofs`.

Everything here is iterative and keeps O(log n) hashes in memory, so a tree of millions of leaves is
hashed in one streaming pass over its 32-byte leaf hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

EMPTY_ROOT = hashlib.sha256(b"").hexdigest()
HASH_SIZE = 32


def hash_leaf(data: bytes) -> bytes:
    """RFC 9162 section 2.1.1 leaf hash: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 section 2.1.1 interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The k of RFC 9162 section 2.1.1: the largest power of two smaller than `n` (n > 1)."""
    if n < 2:
        raise ValueError(f"a tree of {n} leaves has no split point")
    return 1 << ((n - 1).bit_length() - 1)


class TreeBuilder:
    """Appends leaf hashes and yields the RFC 9162 root of everything appended so far.

    Keeps the compact range of the leaves: one perfect subtree per set bit of the size, largest first.
    Folding them from the right reproduces the left-heavy split of section 2.1.1, because each split
    point k of MTH falls on the boundary between two of these subtrees."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (leaf count, hash), counts strictly decreasing

    def append(self, leaf: bytes) -> None:
        """Add the next leaf hash (32 bytes, already SHA-256(0x00 || data))."""
        if len(leaf) != HASH_SIZE:
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes, not {len(leaf)}")
        count, node = 1, leaf
        while self._stack and self._stack[-1][0] == count:
            left_count, left = self._stack.pop()
            count, node = left_count + count, node_hash(left, node)
        self._stack.append((count, node))
        self.size += 1

    def extend(self, leaves: Iterable[bytes]) -> TreeBuilder:
        """Append every leaf hash of `leaves`, in order; returns the builder."""
        for leaf in leaves:
            self.append(leaf)
        return self

    def root(self) -> bytes:
        """MTH of the leaves appended so far (SHA-256 of the empty string for none)."""
        if not self._stack:
            return bytes.fromhex(EMPTY_ROOT)
        root = self._stack[-1][1]
        for _, node in reversed(self._stack[:-1]):
            root = node_hash(node, root)
        return root


def tree_hash(leaf_hashes: Iterable[bytes]) -> bytes:
    """MTH over a sequence of 32-byte leaf hashes, in one pass."""
    return TreeBuilder().extend(leaf_hashes).root()


def root_from_leaf_hashes(leaf_hashes: Iterable[str]) -> tuple[int, str]:
    """(tree size, root hash hex) over hex leaf hashes, in one pass with O(log n) memory."""
    builder = TreeBuilder().extend(bytes.fromhex(leaf) for leaf in leaf_hashes)
    return builder.size, builder.root().hex()
