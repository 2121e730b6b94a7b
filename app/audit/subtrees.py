"""Merkle tree hashes of ranges of the stored audit log, for checkpoints and proofs.

A proof over a log of n events needs the hashes of O(log n) subtrees that together cover up to all n
leaves, so computing them from the leaves costs O(n) per request. Instead, the log is cut into tiles
of `TILE` leaves (perfect subtrees, RFC 9162 section 2.1.1): a complete tile never changes in an
append-only log, so its hash is computed once per process, from one streaming read of its 32-byte
leaf hashes, and kept in a bounded per-database cache. A subtree hash then costs a fold over cached
tile hashes plus one read of fewer than `TILE` leaves at its right edge.

Each cached tile also keeps the leaf hash of its last event, and every use checks those against the
rows (one indexed read of one row per tile): a tile computed from rows that were later rolled back, or
a log restored from a backup or cut short, no longer matches and is computed again. Inside a tile whose
last row is unchanged, the cache holds what the server read first: after a row has been changed behind
its back, the server keeps proving the history it has served. `GET /v1/audit/verify` and
`rlhf-registry audit verify` recompute from the rows, without this cache.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from threading import Lock
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.audit.merkle import TreeBuilder, node_hash, tree_hash
from app.audit.models import AuditEvent
from app.core.errors import AppError

TILE = 1024  # leaves per cached tile: a perfect subtree of height 10
MAX_TILES = 1 << 16  # 2 MiB of hashes; covers a log of 67 million events
BATCH = 10_000


class AuditLogBroken(AppError):
    """The stored log does not hold the events its head counts (rows removed behind the service's back)."""

    status = 500
    code = "audit_log_broken"
    title = "Audit log broken"


class TileCache:
    """Hashes of complete tiles of one database's log, each with the leaf hash of the tile's last event,
    least recently used evicted first."""

    def __init__(self, max_tiles: int = MAX_TILES) -> None:
        self._hashes: OrderedDict[int, tuple[bytes, bytes]] = OrderedDict()
        self._lock = Lock()
        self._max = max_tiles

    def get(self, tile: int) -> tuple[bytes, bytes] | None:
        """(tile hash, last leaf hash) of complete tile `tile`, if it is cached."""
        with self._lock:
            found = self._hashes.get(tile)
            if found is not None:
                self._hashes.move_to_end(tile)
            return found

    def put(self, tile: int, value: bytes, last_leaf: bytes) -> None:
        """Remember the hash of complete tile `tile` (only ever called for a complete tile)."""
        with self._lock:
            self._hashes[tile] = (value, last_leaf)
            self._hashes.move_to_end(tile)
            while len(self._hashes) > self._max:
                self._hashes.popitem(last=False)

    def drop(self, tile: int) -> None:
        with self._lock:
            self._hashes.pop(tile, None)


_caches: WeakKeyDictionary[Engine, TileCache] = WeakKeyDictionary()
_caches_lock = Lock()


def tile_cache(session: Session) -> TileCache:
    """The tile cache of the database `session` reads; it lives as long as the engine."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    with _caches_lock:
        cache = _caches.get(engine)
        if cache is None:
            cache = _caches[engine] = TileCache()
        return cache


def leaf_hashes(session: Session, start: int, end: int) -> Iterator[bytes]:
    """The stored leaf hashes of events `start` .. `end - 1`, streamed in index order (Core rows, not
    ORM objects: only the two columns are read). Raises `AuditLogBroken` when one is missing."""
    table = AuditEvent.__table__
    stmt = (
        select(table.c.index, table.c.leaf_hash)
        .where(table.c.index >= start, table.c.index < end)
        .order_by(table.c.index)
        .execution_options(yield_per=BATCH)
    )
    expected = start
    result = session.connection().execute(stmt)
    try:
        for index, leaf in result:
            if index != expected:
                break
            yield bytes.fromhex(leaf)
            expected += 1
    finally:
        result.close()
    if expected != end:
        raise AuditLogBroken(f"audit event {expected} is missing from the log")


def _bit_ceil(n: int) -> int:
    return 1 << (n - 1).bit_length()


def subtree_hash(session: Session, start: int, end: int) -> bytes:
    """MTH(D[start:end]) of the stored log (RFC 9162 section 2.1.1), `start < end` or the empty root
    for `start == end`.

    Every subtree of an RFC 9162 tree starts at a multiple of a power of two at least its size; such a
    range is its whole tiles (largest perfect pieces first) followed by a tail shorter than a tile, and
    its hash is the right fold of their hashes, as `TreeBuilder.root` folds a compact range."""
    size = end - start
    if size < TILE or start % _bit_ceil(size):
        return tree_hash(leaf_hashes(session, start, end))
    tail_start = end - size % TILE
    pieces: list[bytes] = []
    piece_start = start
    while piece_start < tail_start:
        piece = 1 << ((tail_start - piece_start).bit_length() - 1)
        pieces.append(_perfect_hash(session, piece_start, piece))
        piece_start += piece
    if tail_start < end:
        pieces.append(tree_hash(leaf_hashes(session, tail_start, end)))
    root = pieces[-1]
    for piece_hash in reversed(pieces[:-1]):
        root = node_hash(piece_hash, root)
    return root


def _perfect_hash(session: Session, start: int, size: int) -> bytes:
    """The hash of the perfect subtree of `size` (a multiple of TILE) leaves at `start`, from tiles."""
    cache = tile_cache(session)
    first = start // TILE
    cached = {first + i: cache.get(first + i) for i in range(size // TILE)}
    current = _last_leaves(session, [t for t, hit in cached.items() if hit is not None])
    tiles: list[bytes | None] = []
    for tile, hit in cached.items():
        if hit is not None and current.get(tile) != hit[1]:
            cache.drop(tile)  # computed from rows that are no longer there: compute it again
            hit = None
        tiles.append(None if hit is None else hit[0])
    i = 0
    while i < len(tiles):
        if tiles[i] is not None:
            i += 1
            continue
        run_end = i
        while run_end < len(tiles) and tiles[run_end] is None:
            run_end += 1
        for offset, (value, last_leaf) in enumerate(_tile_hashes(session, first + i, first + run_end)):
            tiles[i + offset] = value
            cache.put(first + i + offset, value, last_leaf)
        i = run_end
    return tree_hash(t for t in tiles if t is not None)


def _last_leaves(session: Session, tiles: list[int]) -> dict[int, bytes]:
    """The stored leaf hash of the last event of each tile, by tile (absent where the row is missing)."""
    table = AuditEvent.__table__
    found: dict[int, bytes] = {}
    for chunk in range(0, len(tiles), 500):
        indexes = [(t + 1) * TILE - 1 for t in tiles[chunk : chunk + 500]]
        rows = session.connection().execute(select(table.c.index, table.c.leaf_hash).where(table.c.index.in_(indexes)))
        found.update({index // TILE: bytes.fromhex(leaf) for index, leaf in rows})
    return found


def _tile_hashes(session: Session, first: int, end: int) -> Iterator[tuple[bytes, bytes]]:
    """(hash, last leaf hash) of tiles `first` .. `end - 1`, from one streaming read of their leaves."""
    builder = TreeBuilder()
    for leaf in leaf_hashes(session, first * TILE, end * TILE):
        builder.append(leaf)
        if builder.size == TILE:
            yield builder.root(), leaf
            builder = TreeBuilder()
