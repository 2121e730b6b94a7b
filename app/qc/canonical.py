"""Canonical orientation of pairwise-preference items, encoded as numpy arrays.

Annotators of one pair may have seen the two responses in swapped A/B slots. Every agreement figure is
therefore computed on the *canonical* label: the preference for the lexicographically smaller response
text (`first`), the other one (`second`), or `tie`. An item is *swapped* when ``response_a > response_b``
(UTF-8 byte order, which is Unicode code point order, the order Python's ``str`` comparison uses); then
its `a` means `second` and its `b` means `first`. `gold` and `ai_choice` are in the item's own A/B terms
and are oriented the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

FIRST, SECOND, TIE = 0, 1, 2
LABELS = ("first", "second", "tie")
CHOICES = ("a", "b", "tie")
MISSING = -1

# Row 0: item shown in canonical order (a is first); row 1: swapped. Column: choice code a, b, tie.
_CANONICAL = np.array([[FIRST, SECOND, TIE], [SECOND, FIRST, TIE]], dtype=np.int8)

Codes = npt.NDArray[np.int8]
Index = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]
Micros = npt.NDArray[np.int64]


@dataclass(frozen=True)
class CanonicalItems:
    """One row per item, every column a numpy array of the same length.

    `pair` and `annotator` index `pair_ids` and `annotators` (both sorted ascending); labels are
    `FIRST`/`SECOND`/`TIE`, `MISSING` where null. `chose_shown_first` and `chose_longer` are 1/0, or
    `MISSING` for ties and where undefined (unknown display order; responses of equal length).
    Timestamps are microseconds since the epoch, valid where the matching mask is true.
    """

    pair: Index
    pair_ids: pa.Array
    annotator: Index
    annotators: list[str]
    label: Codes
    gold: Codes
    ai: Codes
    chose_shown_first: Codes
    chose_longer: Codes
    session: Index
    started_at: Micros
    started_valid: Flags
    submitted_at: Micros
    submitted_valid: Flags

    @property
    def size(self) -> int:
        """Number of items."""
        return int(self.label.shape[0])


def _sorted_codes(column: pa.ChunkedArray, name: str) -> tuple[Index, pa.Array]:
    """Dense codes of a non-null string column, numbered in ascending string order, and the values."""
    if column.null_count:
        raise ValueError(f"{name}: null values")
    encoded = pc.dictionary_encode(column).combine_chunks()
    dictionary = encoded.dictionary
    order = np.asarray(pc.sort_indices(dictionary).to_numpy(), dtype=np.int64)
    rank = np.empty_like(order)
    rank[order] = np.arange(order.shape[0], dtype=np.int64)
    codes = rank[np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)]
    return codes, dictionary.take(pa.array(order))


def _choice_codes(column: pa.ChunkedArray, name: str, *, nullable: bool) -> Codes:
    """0/1/2 for a/b/tie, MISSING for null; an unknown value is refused."""
    codes = pc.index_in(column, value_set=pa.array(CHOICES))
    unknown = int(pc.sum(pc.and_(pc.is_null(codes), pc.is_valid(column))).as_py() or 0)
    if unknown:
        raise ValueError(f"{name}: {unknown} value(s) outside {CHOICES}")
    if not nullable and column.null_count:
        raise ValueError(f"{name}: null values")
    return np.asarray(pc.fill_null(codes, MISSING).to_numpy(), dtype=np.int8)


def _orient(codes: Codes, swapped: Flags) -> Codes:
    """Item-terms a/b/tie codes to canonical first/second/tie, keeping MISSING."""
    known = codes >= 0
    oriented = np.full(codes.shape, MISSING, dtype=np.int8)
    oriented[known] = _CANONICAL[swapped[known].astype(np.int64), codes[known]]
    return oriented


FEATURE_COLUMNS = ("swapped", "len_a", "len_b")


def _micros(column: pa.ChunkedArray) -> tuple[Micros, Flags]:
    as_int = pc.cast(pc.cast(column, pa.timestamp("us", tz="UTC")), pa.int64())
    values = np.asarray(pc.fill_null(as_int, 0).to_numpy(), dtype=np.int64)
    return values, np.asarray(pc.is_valid(column).to_numpy(), dtype=np.bool_)


def text_features(response_a: pa.ChunkedArray, response_b: pa.ChunkedArray) -> dict[str, pa.ChunkedArray]:
    """What QC needs of the two response texts: the swap flag and both lengths.

    A caller holding a million items can compute these batch by batch and drop the texts (hundreds of
    megabytes) before calling ``compute_qc``, which then reads these columns instead of the texts."""
    return {
        "swapped": pc.fill_null(pc.greater(response_a, response_b), False),
        "len_a": pc.cast(pc.utf8_length(response_a), pa.int64()),
        "len_b": pc.cast(pc.utf8_length(response_b), pa.int64()),
    }


def canonicalise(items: pa.Table) -> CanonicalItems:
    """Encode an items table (columns as in ``compute_qc``) in canonical orientation.

    Per item, ``swapped = response_a > response_b``; canonical label = ``first`` for a choice of the
    smaller text, ``second`` for the larger, ``tie`` kept. Position and length choices are
    orientation-free (``choice == shown_first``; the chosen text is strictly longer in
    ``utf8_length``), so they are taken in the item's own terms.
    """
    features = (
        {name: items[name] for name in FEATURE_COLUMNS}
        if all(name in items.column_names for name in FEATURE_COLUMNS)
        else text_features(items["response_a"], items["response_b"])
    )
    swapped = np.asarray(pc.fill_null(features["swapped"], False).to_numpy(zero_copy_only=False), dtype=np.bool_)
    choice = _choice_codes(items["choice"], "choice", nullable=False)
    pair, pair_ids = _sorted_codes(items["pair_id"], "pair_id")
    annotator, annotator_names = _sorted_codes(items["annotator"], "annotator")

    shown = _choice_codes(items["shown_first"], "shown_first", nullable=True)
    decided = choice != TIE
    chose_shown_first = np.where(decided & (shown >= 0), (choice == shown).astype(np.int8), MISSING)

    len_a = np.asarray(pc.fill_null(features["len_a"], 0).to_numpy(), dtype=np.int64)
    len_b = np.asarray(pc.fill_null(features["len_b"], 0).to_numpy(), dtype=np.int64)
    longer_is_a = len_a > len_b
    chose_longer = np.where(decided & (len_a != len_b), ((choice == 0) == longer_is_a).astype(np.int8), MISSING)

    # Sessions are keyed by (annotator, session_id): tools often number sessions per annotator.
    session_codes = pc.dictionary_encode(items["session_id"]).combine_chunks().indices
    has_session = np.asarray(pc.is_valid(session_codes).to_numpy(zero_copy_only=False), dtype=np.bool_)
    raw_session = np.asarray(pc.fill_null(session_codes, 0).to_numpy(), dtype=np.int64)
    session = np.full(choice.shape, MISSING, dtype=np.int64)
    if has_session.any():
        key = annotator[has_session] * (int(raw_session.max()) + 1) + raw_session[has_session]
        session[has_session] = np.unique(key, return_inverse=True)[1].reshape(-1)

    started_at, started_valid = _micros(items["started_at"])
    submitted_at, submitted_valid = _micros(items["submitted_at"])
    return CanonicalItems(
        pair=pair,
        pair_ids=pair_ids,
        annotator=annotator,
        annotators=[str(name) for name in annotator_names.to_pylist()],
        label=_orient(choice, swapped),
        gold=_orient(_choice_codes(items["gold"], "gold", nullable=True), swapped),
        ai=_orient(_choice_codes(items["ai_choice"], "ai_choice", nullable=True), swapped),
        chose_shown_first=chose_shown_first.astype(np.int8),
        chose_longer=chose_longer.astype(np.int8),
        session=session,
        started_at=started_at,
        started_valid=started_valid,
        submitted_at=submitted_at,
        submitted_valid=submitted_valid,
    )


def vote_counts(canon: CanonicalItems) -> npt.NDArray[np.int64]:
    """Votes per pair as a (pairs, 3) array: columns first, second, tie (canonical orientation).

    ``counts[p, c] = #{items i : pair(i) = p, label(i) = c}``, one ``bincount`` over ``3 p + c``.
    """
    n_pairs = len(canon.pair_ids)
    flat = np.bincount(canon.pair * 3 + canon.label, minlength=n_pairs * 3)
    return flat.reshape(n_pairs, 3).astype(np.int64)


def pair_votes(items: pa.Table) -> pa.Table:
    """Per pair_id vote counts in canonical orientation, for majority votes downstream.

    Returns a table sorted by ``pair_id`` with columns ``pair_id``, ``first``, ``second``, ``tie``
    (int64 vote counts) and ``first_response`` / ``second_response``: the lexicographically smaller and
    larger of the pair's two response texts (taken from the pair's first item), so that a majority of
    ``first`` votes means ``chosen = first_response``. See the module docstring for the orientation rule.
    """
    canon = canonicalise(items)
    counts = vote_counts(canon)
    _, first_row = np.unique(canon.pair, return_index=True)
    a = items["response_a"].take(pa.array(first_row))
    b = items["response_b"].take(pa.array(first_row))
    swapped = pc.fill_null(pc.greater(a, b), False)
    return pa.table(
        {
            "pair_id": canon.pair_ids.cast(pa.string()),
            "first": pa.array(counts[:, FIRST]),
            "second": pa.array(counts[:, SECOND]),
            "tie": pa.array(counts[:, TIE]),
            "first_response": pc.if_else(swapped, b, a),
            "second_response": pc.if_else(swapped, a, b),
        }
    )
