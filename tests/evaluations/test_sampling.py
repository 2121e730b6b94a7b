"""The human-review sample of AI-judged items: a share of every source, at least one each, redrawn alike."""

from __future__ import annotations

import random

from app.evaluations.sampling import review_sample


def _items(counts: dict[str, int]) -> list[tuple[str, str]]:
    return [(f"{source}-{n}", source) for source, count in counts.items() for n in range(count)]


def test_each_source_gives_its_share_and_a_rare_source_at_least_one() -> None:
    items = _items({"usage": 30, "synthetic": 10, "adversarial": 2})
    sample = review_sample(items, 0.1, seed=7)
    by_source = {s: sum(1 for i in sample if i.startswith(f"{s}-")) for s in ("usage", "synthetic", "adversarial")}
    assert by_source == {"usage": 3, "synthetic": 1, "adversarial": 1}
    assert len(set(sample)) == len(sample) and set(sample) <= {i for i, _ in items}


def test_the_draw_depends_on_the_seed_not_on_the_order_of_the_items() -> None:
    items = _items({"usage": 40, "expert": 12})
    shuffled = random.Random(1).sample(items, len(items))
    assert sorted(review_sample(items, 0.25, seed=3)) == sorted(review_sample(shuffled, 0.25, seed=3))
    assert review_sample(items, 0.25, seed=3) == review_sample(items, 0.25, seed=3)
    assert review_sample(items, 0.25, seed=3) != review_sample(items, 0.25, seed=4)


def test_the_sample_keeps_the_given_order_and_lists_a_repeated_id_once() -> None:
    items = [("p2", "usage"), ("p1", "usage"), ("p2", "usage")]
    assert review_sample(items, 1.0, seed=0) == ["p2", "p1"]
    assert review_sample([], 0.1, seed=0) == []
