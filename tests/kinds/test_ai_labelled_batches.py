"""AI-labelled annotation batches over the API: what such a batch and its human review must hold (each
refusal located), the review's QC, and the dataset build that takes AI labels only behind a review
agreeing at least the policy floor, or a waiver."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import pytest
from sklearn.metrics import cohen_kappa_score

from tests.conftest import World
from tests.factories import agreeing_items, batch_body, criteria_body, item, prompt_set_body

JUDGE = "ai:rm-judge@1"
PAIRS = 20
SAMPLE = [f"p{p}" for p in range(10)]


def ai_label(pair: int) -> str:
    return "a" if pair % 3 else "b"


def flipped(choice: str) -> str:
    return {"a": "b", "b": "a", "tie": "tie"}[choice]


def ai_items(pairs: int = PAIRS) -> list[dict[str, Any]]:
    return [item(f"p{p}", f"q{p}", JUDGE, ai_label(p), ai_choice=ai_label(p)) for p in range(pairs)]


def review_items(pairs: range, disagree: Collection[int] = (), reviewer: str = "rev-1") -> list[dict[str, Any]]:
    """A human's labels of sampled pairs, each beside the AI's label; `disagree` pairs labelled the other way."""
    return [
        item(
            f"p{p}",
            f"q{p}",
            reviewer,
            flipped(ai_label(p)) if p in disagree else ai_label(p),
            ai_choice=ai_label(p),
        )
        for p in pairs
    ]


class Setup:
    def __init__(self, world: World) -> None:
        self.project = world.project()
        self.admin = world.admin
        self.annotator = world.member(self.project, "annotator")
        self.approver = world.member(self.project, "approver")
        assert self.admin.post(self.url("criteria"), json=criteria_body("1.0.0")).status_code == 201
        assert self.annotator.post(self.url("prompt-sets"), json=prompt_set_body()).status_code == 201

    def url(self, collection: str) -> str:
        return f"/v1/projects/{self.project}/{collection}"

    def ai_batch(self, items: list[dict[str, Any]] | None = None, name: str = "judged", **spec: Any) -> Any:
        fields = {"ai_assisted": True, "ai_model": "rm-judge@1", "ai_labelled": True, "review_sample": SAMPLE}
        body = batch_body(ai_items() if items is None else items, **{**fields, **spec})
        body["name"] = name
        return self.annotator.post(self.url("annotation-batches"), json=body)

    def review(self, reviewed: str, items: list[dict[str, Any]], name: str = "judged-review", **spec: Any) -> Any:
        body = batch_body(items, **spec) | {"name": name, "reviews": {"id": reviewed}}
        return self.annotator.post(self.url("annotation-batches"), json=body)

    def dataset(self, batches: list[str], name: str = "prefs") -> Any:
        body = {"name": name, "batches": [{"id": b} for b in batches], "spec": {"seed": 0}}
        return self.annotator.post(self.url("preference-datasets"), json=body)


@pytest.fixture
def setup(world: World) -> Setup:
    return Setup(world)


def _locs(response: Any) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_failed"
    return [e["loc"] for e in response.json()["errors"]]


# registration


def test_an_ai_labelled_batch_says_its_labels_are_no_human_agreement(setup: Setup) -> None:
    response = setup.ai_batch()
    assert response.status_code == 201, response.text
    qc = response.json()["derived"]["qc"]
    assert qc["ai_labelled"] is True
    # the judge's own ai_choice is not agreement with anyone
    assert qc["ai_agreement"] is None and qc["ai_review"] is None
    assert qc["cohen_kappa"]["mean"] is None and qc["krippendorff_alpha"] is None
    assert qc["gate"] == "warn"
    assert any(reason.startswith("AI-labelled") for reason in qc["gate_reasons"])
    assert qc["counts"] == {"items": PAIRS, "pairs": PAIRS, "annotators": 1}


def test_ai_labelled_spec_rules_are_located(setup: Setup) -> None:
    assert ["body", "spec", "ai_labelled"] in _locs(setup.ai_batch(ai_assisted=False))
    assert ["body", "spec", "ai_labelled"] in _locs(setup.ai_batch(ai_model=None))
    assert ["body", "spec", "review_sample"] in _locs(setup.ai_batch(review_sample=["p1", "p1"]))
    human = batch_body(agreeing_items(), review_sample=["p1"])
    assert ["body", "spec", "review_sample"] in _locs(setup.annotator.post(setup.url("annotation-batches"), json=human))


def test_ai_labelled_item_rules_are_located(setup: Setup) -> None:
    rows = ai_items()
    rows[3]["annotator"] = "ann-1"
    rows[5]["ai_choice"] = flipped(rows[5]["choice"])
    rows[7]["ai_choice"] = None
    rows.append(item("p2", "q2", "ai:other-judge@2", "a", ai_choice="a"))
    response = setup.ai_batch(rows, review_sample=["p1", "p404"])
    locs = _locs(response)
    assert ["spec", "items", 3, "annotator"] in locs
    assert ["spec", "items", 5, "ai_choice"] in locs and ["spec", "items", 7, "ai_choice"] in locs
    assert ["spec", "review_sample", 1] in locs and ["spec", "review_sample", 0] not in locs
    assert any(e["msg"].startswith("pair 'p2' has 2 labels") for e in response.json()["errors"])
    assert setup.annotator.get(setup.url("annotation-batches") + "/judged/1").status_code == 404


def test_a_human_batch_holds_no_ai_annotator(setup: Setup) -> None:
    rows = agreeing_items()
    rows[4]["annotator"] = "ai:rm-judge@1"
    response = setup.annotator.post(setup.url("annotation-batches"), json=batch_body(rows))
    assert _locs(response) == [["spec", "items", 4, "annotator"]]


def test_a_review_reviews_an_ai_labelled_batch_and_is_human(setup: Setup) -> None:
    human = setup.annotator.post(setup.url("annotation-batches"), json=batch_body(agreeing_items())).json()
    assert _locs(setup.review(human["id"], review_items(range(5)))) == [["body", "reviews"]]
    judged = setup.ai_batch().json()
    as_ai = [{**row, "annotator": JUDGE} for row in review_items(range(5))]
    spec: dict[str, Any] = {"ai_assisted": True, "ai_model": "rm-judge@1", "ai_labelled": True}
    assert _locs(setup.review(judged["id"], as_ai, **spec)) == [["body", "spec", "ai_labelled"]]


def test_a_review_cannot_change_what_the_ai_said(setup: Setup) -> None:
    judged = setup.ai_batch().json()
    rows = review_items(range(8))
    rows[1]["ai_choice"] = flipped(rows[1]["ai_choice"])  # misquotes the AI
    rows[2]["ai_choice"] = None
    rows[3]["response_b"] = "a different answer"
    rows[4]["prompt_id"] = "q5"
    rows += [item("p12", "q12", "rev-1", "a", ai_choice=ai_label(12))]  # a pair outside the sample
    rows += [item("p99", "q19", "rev-1", "a", ai_choice="a")]  # no pair of the batch
    response = setup.review(judged["id"], rows)
    locs = _locs(response)
    assert ["spec", "items", 1, "ai_choice"] in locs and ["spec", "items", 2, "ai_choice"] in locs
    assert ["spec", "items", 3, "response_a"] in locs and ["spec", "items", 4, "prompt_id"] in locs
    assert ["spec", "items", 8, "pair_id"] in locs and ["spec", "items", 9, "pair_id"] in locs
    assert not {0, 5, 6, 7} & {loc[2] for loc in locs}
    assert setup.annotator.get(setup.url("annotation-batches") + "/judged-review/1").status_code == 404


def test_a_review_may_show_the_pair_in_swapped_slots(setup: Setup) -> None:
    judged = setup.ai_batch().json()
    rows = review_items(range(3))
    a, b = rows[0]["response_a"], rows[0]["response_b"]
    rows[0] |= {"response_a": b, "response_b": a, "choice": flipped(rows[0]["choice"])}
    rows[0]["ai_choice"] = flipped(rows[0]["ai_choice"])
    response = setup.review(judged["id"], rows)
    assert response.status_code == 201, response.text
    assert response.json()["derived"]["qc"]["ai_agreement"]["agreement"] == 1.0


def test_without_a_sample_any_pair_of_the_batch_may_be_reviewed(setup: Setup) -> None:
    judged = setup.ai_batch(review_sample=None).json()
    response = setup.review(judged["id"], review_items(range(12, 16)))
    assert response.status_code == 201, response.text
    assert response.json()["derived"]["qc"]["ai_review"] == {"sampled": PAIRS, "reviewed": 4, "coverage": 0.2}


# the review's QC


def test_the_review_qc_carries_agreement_kappa_and_coverage(setup: Setup) -> None:
    judged = setup.ai_batch().json()
    rows = review_items(range(8), disagree={2, 6})
    response = setup.review(judged["id"], rows)
    assert response.status_code == 201, response.text
    derived = response.json()["derived"]
    assert derived["reviews"] == {"id": judged["id"], "name": "judged", "version": "1"}
    qc = derived["qc"]
    assert qc["ai_labelled"] is False
    assert qc["ai_review"] == {"sampled": 10, "reviewed": 8, "coverage": 0.8}
    figures = qc["ai_agreement"]
    assert figures["n"] == 8 and figures["agreement"] == pytest.approx(6 / 8)
    expected = cohen_kappa_score([r["ai_choice"] for r in rows], [r["choice"] for r in rows])
    assert figures["kappa"] == pytest.approx(expected)
    # two reviewers of the same pairs: the AI figures count both, the human agreement is theirs alone
    second = review_items(range(8), disagree={2}, reviewer="rev-2")
    both = setup.review(judged["id"], rows + second, name="judged-review-2").json()["derived"]["qc"]
    assert both["ai_agreement"]["n"] == 16 and both["ai_agreement"]["agreement"] == pytest.approx(13 / 16)
    assert [p["annotators"] for p in both["cohen_kappa"]["pairs"]] == [["rev-1", "rev-2"]]


# the dataset build


def test_an_unreviewed_ai_batch_is_refused_naming_it(setup: Setup) -> None:
    judged = setup.ai_batch().json()
    refused = setup.dataset([judged["id"]])
    assert refused.status_code == 409 and refused.json()["code"] == "ai_review_insufficient"
    body = refused.json()
    assert body["batches"] == [judged["id"]] and body["agreements"] == [None] and body["floor"] == 0.7
    assert "judged v1 (no review)" in body["detail"]


def test_the_best_review_must_reach_the_policy_floor(setup: Setup) -> None:
    judged = setup.ai_batch().json()
    setup.review(judged["id"], review_items(range(10), disagree={0, 1, 2, 3, 4}), name="weak")
    setup.review(judged["id"], review_items(range(10), disagree={0, 1, 2, 3}), name="weak-2")
    refused = setup.dataset([judged["id"]])
    assert refused.status_code == 409 and refused.json()["code"] == "ai_review_insufficient"
    assert refused.json()["agreements"] == [pytest.approx(0.6)]
    assert "best review agreement 0.600" in refused.json()["detail"]

    policy = {"spec": {"ai_review_agreement_min": 0.6}}
    assert setup.admin.post(setup.url("policies"), json=policy).status_code == 201
    allowed = setup.dataset([judged["id"]])
    assert allowed.status_code == 201, allowed.text
    [review] = allowed.json()["derived"]["ai_reviews"]
    assert review["agreement"] == pytest.approx(0.6) and review["floor"] == 0.6 and review["waived"] is False


def test_a_reviewed_ai_batch_enters_and_the_dataset_counts_its_ai_pairs(setup: Setup) -> None:
    judged = setup.ai_batch().json()
    review = setup.review(judged["id"], review_items(range(10), disagree={3})).json()
    assert review["derived"]["qc"]["ai_agreement"]["agreement"] == pytest.approx(0.9)
    built = setup.dataset([judged["id"]])
    assert built.status_code == 201, built.text
    derived = built.json()["derived"]
    assert derived["ai_reviews"] == [
        {"batch": judged["id"], "review": review["id"], "agreement": pytest.approx(0.9), "floor": 0.7, "waived": False}
    ]
    counts = derived["counts"]
    assert counts["ai_labelled_pairs"] == counts["ai_only_pairs"] == counts["pairs_out"] > 0
    assert any("AI-labelled" in warning for warning in derived["warnings"])

    # the review enters like any human batch; its pairs then carry human votes beside the AI's
    both = setup.dataset([judged["id"], review["id"]], name="prefs-with-review").json()["derived"]["counts"]
    # p3's single human vote against the AI is a split pair, dropped; the other sampled pairs are mixed
    assert both["pairs_out"] == PAIRS - 1
    assert both["ai_labelled_pairs"] == PAIRS - 1 and both["ai_only_pairs"] == PAIRS - 10
    human_only = setup.dataset([review["id"]], name="prefs-human").json()["derived"]
    assert human_only["counts"]["ai_labelled_pairs"] == 0 and human_only["ai_reviews"] == []


def test_a_revoked_review_does_not_count(setup: Setup) -> None:
    judged = setup.ai_batch().json()
    review = setup.review(judged["id"], review_items(range(10))).json()
    revoked = setup.approver.post(f"/v1/records/{review['id']}/revoke", json={"reason": "reviewer never saw the pairs"})
    assert revoked.status_code == 201, revoked.text
    refused = setup.dataset([judged["id"]])
    assert refused.status_code == 409 and refused.json()["code"] == "ai_review_insufficient"


def test_a_waiver_lets_an_unreviewed_ai_batch_in_and_becomes_a_parent(setup: Setup) -> None:
    judged = setup.ai_batch().json()
    body = {
        "name": "pilot-ai-labels",
        "rule": "ai_review_insufficient",
        "covers": [{"id": judged["id"]}],
        "spec": {"reason": "pilot reward model only; never shipped"},
    }
    assert setup.annotator.post(setup.url("waivers"), json=body).status_code == 403
    waiver = setup.approver.post(setup.url("waivers"), json=body)
    assert waiver.status_code == 201, waiver.text
    allowed = setup.dataset([judged["id"]])
    assert allowed.status_code == 201, allowed.text
    assert {"id": waiver.json()["id"], "kind": "waiver", "role": "waiver"} in allowed.json()["parents"]
    assert waiver.json()["id"] in allowed.json()["derived"]["waivers"]
    assert allowed.json()["derived"]["ai_reviews"] == [
        {
            "batch": judged["id"],
            "review": None,
            "agreement": None,
            "floor": 0.7,
            "waived": True,
        }
    ]
