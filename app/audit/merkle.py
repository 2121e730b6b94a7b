"""RFC 9162 (Certificate Transparency v2) Merkle tree hash, section 2.1.1.

MTH({}) = SHA-256(); MTH of one leaf is its leaf hash; for n > 1, with k the largest power of two
below n, MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])). Leaf hashes are computed by
`app.audit.chain.leaf_hash` (SHA-256(0x00 || data)).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_leaf_hashes(leaf_hashes: Iterable[str]) -> tuple[int, str]:
    """(tree size, root hash hex) in one pass with O(log n) memory.

    Keeps a stack of perfect subtrees of decreasing size (a compact range); the final fold from the
    right reproduces the left-heavy split of RFC 9162."""
    stack: list[tuple[int, bytes]] = []
    size = 0
    for leaf in leaf_hashes:
        node = (1, bytes.fromhex(leaf))
        size += 1
        while stack and stack[-1][0] == node[0]:
            left = stack.pop()
            node = (left[0] * 2, node_hash(left[1], node[1]))
        stack.append(node)
    if not stack:
        return 0, EMPTY_ROOT
    root = stack.pop()[1]
    while stack:
        root = node_hash(stack.pop()[1], root)
    return size, root.hex()
