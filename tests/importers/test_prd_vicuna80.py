"""PRD's Vicuna-80 human ratings."""

from __future__ import annotations

from collections import Counter

from app.importers import from_prd_vicuna80
from tests.importers.spec_checks import FIXTURES, assert_valid, shared_data


def test_fixture_folder_orients_each_pair_once() -> None:
    result = from_prd_vicuna80(FIXTURES / "prd_vicuna80")
    assert_valid(result)
    items = {(i["pair_id"], i["annotator"]): i for i in result.items}
    assert sorted(items) == [
        ("vicuna80-q1-bard-vs-gpt4", "bard-vs-gpt4-rater-1"),
        ("vicuna80-q1-bard-vs-gpt4", "bard-vs-gpt4-rater-2"),
        ("vicuna80-q1-bard-vs-gpt4", "bard-vs-gpt4-rater-3"),
        ("vicuna80-q1-bard-vs-gpt4", "gpt4-vs-bard-rater-1"),
        ("vicuna80-q2-bard-vs-gpt4", "gpt4-vs-bard-rater-1"),
        ("vicuna80-q2-bard-vs-gpt4", "gpt4-vs-bard-rater-2"),
        ("vicuna80-q2-bard-vs-gpt4", "gpt4-vs-bard-rater-3"),
        ("vicuna80-q3-bard-vs-gpt4", "bard-vs-gpt4-rater-1"),
    ]
    forward = items[("vicuna80-q1-bard-vs-gpt4", "bard-vs-gpt4-rater-1")]
    assert (forward["model_a"], forward["model_b"]) == ("bard:20230327", "gpt-4:20230520")
    assert forward["response_a"] == "Make a list and set priorities."
    assert (forward["choice"], forward["shown_first"]) == ("b", "a")
    # q1 rated in the reversed file: "gpt4 better" (score 1) becomes b in the bard-first orientation
    reversed_rating = items[("vicuna80-q1-bard-vs-gpt4", "gpt4-vs-bard-rater-1")]
    assert (reversed_rating["choice"], reversed_rating["shown_first"]) == ("b", "b")
    assert reversed_rating["response_a"] == forward["response_a"]
    # q2 is only in the gpt4-vs-bard file, which fixes its orientation
    only_reversed = items[("vicuna80-q2-bard-vs-gpt4", "gpt4-vs-bard-rater-1")]
    assert only_reversed["model_a"] == "gpt-4:20230520"
    assert (only_reversed["choice"], only_reversed["shown_first"]) == ("a", "a")
    assert items[("vicuna80-q3-bard-vs-gpt4", "bard-vs-gpt4-rater-1")]["choice"] == "tie"
    assert {p["id"]: p["topic"] for p in result.prompts} == {
        "vicuna80-q1": "generic",
        "vicuna80-q2": "writing",
        "vicuna80-q3": "math",
    }
    assert "skipped 2 rating(s) in files naming models with no generations (guanaco-7b)" in result.losses


def test_real_ratings() -> None:
    result = from_prd_vicuna80(shared_data("prd-vicuna80/vicuna80"))
    assert_valid(result)
    assert len(result.prompts) == 80
    assert len(result.items) == 1760  # 7,040 ratings less the 5,280 in the 44 guanaco files
    per_pair = Counter(i["pair_id"] for i in result.items)
    assert len(per_pair) == 800  # 80 questions x 10 model pairs
    assert Counter(per_pair.values()) == {3: 480, 1: 320}  # claude's four pairs have one rating each
    assert Counter(i["choice"] for i in result.items) == {"a": 829, "b": 727, "tie": 204}
    # each (question, model pair) is rated in one orientation only, so nothing is swapped
    assert {i["shown_first"] for i in result.items} == {"a"}
    assert {i["model_a"] for i in result.items} | {i["model_b"] for i in result.items} == {
        "bard:20230327", "claude:20230617", "gpt-3.5-turbo:20230327", "gpt-4:20230520",
        "vicuna-13b:20230322-clean-lang",
    }  # fmt: skip
    assert (
        "skipped 5280 rating(s) in files naming models with no generations "
        "(guanaco-13b, guanaco-33b, guanaco-65b, guanaco-7b)"
    ) in result.losses
    assert not any("differs from the question file" in note for note in result.losses)
