"""Published RFC 6962 / RFC 9162 Merkle tree test vectors, re-typed by hand.

Source: https://github.com/transparency-dev/merkle at commit 417fb0c314750d94e53942e9f92e79b6d35915db
(Apache-2.0, Copyright Google LLC):

- `testonly/constants.go`: `LeafInputs`, `NodeHashes`, `RootHashes` (the tree of the 8 leaf inputs);
- `cmd/proofgen/main.go`: `inclusionProofs`, `consistencyProofs` (the vectors behind the repository's
  `testdata/inclusion` and `testdata/consistency` probes; the Go table's leaf indexes are 1-based,
  they are 0-based here);
- `proof/proof_test.go`: `TestInclusion`, `TestConsistency` (which tree nodes make up each proof);
- `rfc6962/rfc6962_test.go`: `TestRFC6962Hasher` (empty tree, empty leaf, leaf, node).

RFC 9162 hashes exactly as RFC 6962 does (SHA-256, 0x00 leaf and 0x01 node prefixes), so the vectors
hold for both.
"""

from __future__ import annotations

SOURCE = {
    "repo": "github.com/transparency-dev/merkle",
    "commit": "417fb0c314750d94e53942e9f92e79b6d35915db",
    "files": [
        "testonly/constants.go",
        "cmd/proofgen/main.go",
        "proof/proof_test.go",
        "rfc6962/rfc6962_test.go",
    ],
}

# testonly/constants.go: LeafInputs()
LEAF_INPUTS = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]

# testonly/constants.go: NodeHashes(): level 0 (leaf hashes) up to level 3 (the root of all 8)
NODE_HASHES = [
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    [
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ],
]

# testonly/constants.go: RootHashes(), indexed by tree size 0..8 (EmptyRootHash() first)
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

# cmd/proofgen/main.go: inclusionProofs, as (leaf index, tree size, audit path); the Go table writes
# {1, 8, ...} for leaf 0 of the tree of size 8
INCLUSION_PROOFS: list[tuple[int, int, list[str]]] = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        3,
        [
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        ],
    ),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]

# cmd/proofgen/main.go: consistencyProofs, as (size1, size2, proof)
CONSISTENCY_PROOFS: list[tuple[int, int, list[str]]] = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

# cmd/proofgen/main.go: sha256SomeHash, the "random root" of the corrupted probes
SOME_HASH = "abacaba000000000000000000000000000000000000000000060061e00123456"

# proof/proof_test.go: which nodes make up a proof. A node is (level, index) of compact.NewNodeID:
# leaves [index << level, (index + 1) << level). `rehash` = (begin, end) marks the nodes
# ids[begin:end] that are hashed together into one proof element (the right edge of a tree whose size
# is not a power of two); None when every node is a proof element by itself.
Node = tuple[int, int]

# TestInclusion: (tree size, leaf index, node ids, rehash)
INCLUSION_NODES: list[tuple[int, int, list[Node], tuple[int, int] | None]] = [
    (1, 0, [], None),
    (2, 0, [(0, 1)], None),
    (2, 1, [(0, 0)], None),
    (3, 1, [(0, 0), (0, 2)], (1, 2)),
    (7, 0, [(0, 1), (1, 1), (0, 6), (1, 2)], (2, 4)),
    (7, 1, [(0, 0), (1, 1), (0, 6), (1, 2)], (2, 4)),
    (7, 2, [(0, 3), (1, 0), (0, 6), (1, 2)], (2, 4)),
    (7, 3, [(0, 2), (1, 0), (0, 6), (1, 2)], (2, 4)),
    (7, 4, [(0, 5), (0, 6), (2, 0)], (1, 2)),
    (7, 5, [(0, 4), (0, 6), (2, 0)], (1, 2)),
    (7, 6, [(1, 2), (2, 0)], None),
    (4, 2, [(0, 3), (1, 0)], None),
    (5, 3, [(0, 2), (1, 0), (0, 4)], (2, 3)),
    (6, 3, [(0, 2), (1, 0), (1, 2)], (2, 3)),
    (6, 4, [(0, 5), (2, 0)], None),
    (15, 10, [(0, 11), (1, 4), (0, 14), (1, 6), (3, 0)], (2, 4)),
    (31, 24, [(0, 25), (1, 13), (0, 30), (1, 14), (3, 2), (4, 0)], (2, 4)),
    (95, 81, [(0, 80), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)], (3, 6)),
]
# TestInclusion's errors: (tree size, leaf index)
INCLUSION_ERRORS = [(0, 0), (0, 1), (1, 2), (0, 3), (7, 8)]

# TestConsistency: (size1, size2, node ids, rehash)
CONSISTENCY_NODES: list[tuple[int, int, list[Node], tuple[int, int] | None]] = [
    (1, 2, [(0, 1)], None),
    (1, 4, [(0, 1), (1, 1)], None),
    (1, 6, [(0, 1), (1, 1), (1, 2)], (2, 3)),
    (2, 3, [(0, 2)], (0, 1)),
    (2, 8, [(1, 1), (2, 1)], None),
    (3, 7, [(0, 2), (0, 3), (1, 0), (0, 6), (1, 2)], (3, 5)),
    (4, 7, [(0, 6), (1, 2)], (0, 2)),
    (5, 7, [(0, 4), (0, 5), (0, 6), (2, 0)], (2, 3)),
    (6, 7, [(1, 2), (0, 6), (2, 0)], (1, 2)),
    (7, 8, [(0, 6), (0, 7), (1, 2), (2, 0)], None),
    (1, 1, [], None),
    (2, 2, [], None),
    (3, 3, [], None),
    (4, 4, [], None),
    (5, 5, [], None),
    (7, 7, [], None),
    (8, 8, [], None),
    (2, 4, [(1, 1)], None),
    (3, 5, [(0, 2), (0, 3), (1, 0), (0, 4)], (3, 4)),
    (3, 6, [(0, 2), (0, 3), (1, 0), (1, 2)], (3, 4)),
    (4, 6, [(1, 2)], (0, 1)),
    (1, 7, [(0, 1), (1, 1), (0, 6), (1, 2)], (2, 4)),
    (10, 15, [(1, 4), (1, 5), (0, 14), (1, 6), (3, 0)], (2, 4)),
    (24, 31, [(3, 2), (0, 30), (1, 14), (2, 6), (4, 0)], (1, 4)),
    (81, 95, [(0, 80), (0, 81), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)], (4, 7)),
]
# TestConsistency's errors: (size1, size2)
CONSISTENCY_ERRORS = [(5, 0), (9, 8), (0, 5), (0, 0)]

# rfc6962/rfc6962_test.go: TestRFC6962Hasher
HASHER_EMPTY_ROOT = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
HASHER_EMPTY_LEAF = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
HASHER_LEAF = (b"L123456", "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
HASHER_NODE = (b"N123", b"N456", "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb")

# cmd/proofgen/main.go: staticConsistencyProbes(), as (size1, size2, root1, root2, proof, want_valid);
# roots and proof elements are bytes here because some are deliberately not hashes
_CARE1, _CARE2 = b"don't care 1", b"don't care 2"
_EMPTY = bytes.fromhex(HASHER_EMPTY_ROOT)
STATIC_CONSISTENCY_PROBES: list[tuple[int, int, bytes, bytes, list[bytes], bool]] = [
    (0, 0, _CARE1, _CARE2, [], False),  # sizes are equal (zero) but roots are not
    (1, 1, _CARE1, _CARE2, [], False),  # sizes are equal (one) but roots are not
    (0, 0, _CARE1, _CARE1, [], False),  # sizes are equal (zero) and proof is empty
    (0, 1, _CARE1, _CARE2, [], False),  # size1 is zero and does not equal size2
    (1, 1, _CARE2, _CARE2, [], True),  # sizes are equal (one) and proof is empty
    (1, 0, _CARE1, _CARE2, [], False),  # size1 is greater than size2
    (2, 1, _CARE1, _CARE2, [], False),  # size1 is greater than size2 again
    (1, 2, _CARE1, _CARE2, [], False),  # sizes do not match and proof is empty
    (0, 0, _EMPTY, _CARE2, [], False),  # roots do not match and sizes are zero
    (1, 1, _EMPTY, _CARE2, [], False),  # roots do not match and sizes are one
    (0, 0, _EMPTY, _EMPTY, [_EMPTY], False),  # sizes match but proof is not empty (zero)
    (1, 1, _EMPTY, _EMPTY, [_EMPTY], False),  # sizes match but proof is not empty (one)
    (0, 1, _EMPTY, _CARE2, [], False),  # size1 is zero and size2 is not zero
    (0, 1, _EMPTY, _EMPTY, [_EMPTY], False),  # consistency check on empty tree is useless
]

# cmd/proofgen/main.go: staticInclusionProbes() and singleEntryInclusionProbes(), as
# (leaf index, tree size, root, leaf hash, want_valid), all with an empty proof
_SOME = bytes.fromhex(SOME_HASH)
# HashLeaf("data"), from testdata/inclusion/single-entry/matching-root-and-leaf.json (base64 there)
_DATA_LEAF = bytes.fromhex("0d3aed023148ffd2a259fbd0cdc7fb3cf975658760d3775b82af6f90aacc2dfc")
STATIC_INCLUSION_PROBES: list[tuple[int, int, bytes, bytes, bool]] = [
    *[
        probe
        for index, size in ((0, 0), (0, 1), (1, 0), (2, 1))
        for probe in (
            (index, size, b"", _SOME, False),  # random leaf
            (index, size, _EMPTY, b"", False),  # empty root
            (index, size, _EMPTY, _SOME, False),  # empty root and random leaf
        )
    ],
    (0, 1, _DATA_LEAF, _DATA_LEAF, True),  # matching root and leaf
    (0, 1, _DATA_LEAF, b"", False),  # empty leaf
    (0, 1, b"", _DATA_LEAF, False),  # empty root
    (0, 1, b"", b"", False),  # empty root and leaf
]
