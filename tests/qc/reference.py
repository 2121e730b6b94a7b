"""Reference figures computed item by item in plain Python and with the reference libraries."""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from typing import Any

import krippendorff
import numpy as np
from sklearn.metrics import cohen_kappa_score

CANONICAL = {
    False: {"a": "first", "b": "second", "tie": "tie"},
    True: {"a": "second", "b": "first", "tie": "tie"},
}
CODE = {"first": 0, "second": 1, "tie": 2}


def canonical(row: dict[str, Any], field: str = "choice") -> str | None:
    value = row.get(field)
    if value is None:
        return None
    return CANONICAL[row["response_a"] > row["response_b"]][value]


def ratings(rows: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """annotator -> pair_id -> canonical label."""
    table: dict[str, dict[str, str]] = defaultdict(dict)
    for row in rows:
        label = canonical(row)
        assert label is not None
        table[row["annotator"]][row["pair_id"]] = label
    return table


def cohen_pairs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_annotator = ratings(rows)
    pairs = []
    for a1, a2 in itertools.combinations(sorted(by_annotator), 2):
        common = sorted(set(by_annotator[a1]) & set(by_annotator[a2]))
        if len(common) < 2:
            continue
        y1 = [by_annotator[a1][p] for p in common]
        y2 = [by_annotator[a2][p] for p in common]
        kappa = float(cohen_kappa_score(y1, y2))
        pairs.append({"annotators": [a1, a2], "kappa": None if math.isnan(kappa) else kappa, "n": len(common)})
    return pairs


def alpha(rows: list[dict[str, Any]]) -> float | None:
    by_annotator = ratings(rows)
    units = sorted({row["pair_id"] for row in rows})
    matrix = np.full((len(by_annotator), len(units)), np.nan)
    column = {unit: j for j, unit in enumerate(units)}
    for i, annotator in enumerate(sorted(by_annotator)):
        for unit, label in by_annotator[annotator].items():
            matrix[i, column[unit]] = CODE[label]
    try:
        value = float(krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal"))
    except ValueError:  # one value in the domain, or no unit rated twice
        return None
    return None if math.isnan(value) else value


def votes(rows: list[dict[str, Any]]) -> dict[str, Counter[str]]:
    by_pair: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        by_pair[row["pair_id"]][str(canonical(row))] += 1
    return by_pair


def high_disagreement(rows: list[dict[str, Any]], band: tuple[float, float]) -> tuple[int, int]:
    count = eligible = 0
    for tally in votes(rows).values():
        decided = tally["first"] + tally["second"]
        if decided >= 2:
            eligible += 1
            count += band[0] <= tally["first"] / decided <= band[1]
    return count, eligible


def position(rows: list[dict[str, Any]]) -> tuple[int, int]:
    known = [r for r in rows if r["choice"] != "tie" and r.get("shown_first") is not None]
    return sum(r["choice"] == r["shown_first"] for r in known), len(known)


def length(rows: list[dict[str, Any]]) -> tuple[int, int]:
    k = n = 0
    for r in rows:
        la, lb = len(r["response_a"]), len(r["response_b"])
        if r["choice"] != "tie" and la != lb:
            n += 1
            k += (r["choice"] == "a") == (la > lb)
    return k, n


def gold(rows: list[dict[str, Any]]) -> dict[str, Any]:
    graded = [r for r in rows if r.get("gold") is not None]
    per: dict[str, list[bool]] = defaultdict(list)
    for r in graded:
        per[r["annotator"]].append(canonical(r) == canonical(r, "gold"))
    return {
        "overall": sum(map(sum, per.values())) / len(graded) if graded else None,
        "per_annotator": {a: sum(v) / len(v) for a, v in sorted(per.items())},
        "n": len(graded),
        "share": len(graded) / len(rows) if rows else None,
    }


def assert_close(actual: Any, expected: Any, tol: float = 1e-9) -> None:
    if expected is None or actual is None:
        assert actual is None and expected is None, (actual, expected)
    else:
        assert abs(actual - expected) <= tol, (actual, expected)
