"""The sample of AI-judged items that humans review: a share of each prompt source, drawn from a seed.

Stratifying by source keeps the rare sources (expert and adversarial prompts, where a judge is most
likely to go wrong) in the sample at all: a uniform draw of 10% from a set that is 5% adversarial often
holds none of them. Each source gives at least one item, and the draw depends only on the seed and on
which items each source holds, not on their order, so anyone can redraw the recorded sample.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence


def review_sample(items: Sequence[tuple[str, str]], share: float, seed: int) -> list[str]:
    """The ids of `items` (`(id, source)` pairs; an id given twice counts once, under its first source)
    sampled for human review: `ceil(share * n)` of each source's `n` items, at least one, in the order
    the items were given."""
    order: dict[str, str] = {}
    for item_id, source in items:
        order.setdefault(item_id, source)
    by_source: dict[str, list[str]] = {}
    for item_id, source in order.items():
        by_source.setdefault(source, []).append(item_id)
    chosen: set[str] = set()
    for source, ids in by_source.items():
        # rounded first: 0.1 * 30 is 3.0000000000000004 in floating point, and must give 3
        size = min(len(ids), max(1, math.ceil(round(share * len(ids), 9))))
        chosen.update(random.Random(f"{seed}:{source}").sample(sorted(ids), size))
    return [item_id for item_id in order if item_id in chosen]
