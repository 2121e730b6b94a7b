"""PandaLM's human-annotated test set."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from app.importers import ImportFormatError, from_pandalm, prompt_id_for
from tests.importers.spec_checks import FIXTURES, assert_valid, shared_data


def test_sample_rows() -> None:
    result = from_pandalm(FIXTURES / "pandalm_sample.json")
    assert_valid(result)
    assert [(i["pair_id"], i["annotator"], i["choice"]) for i in result.items] == [
        ("pandalm-0", "annotator1", "a"),
        ("pandalm-0", "annotator2", "tie"),
        ("pandalm-0", "annotator3", "b"),
        ("pandalm-157", "annotator1", "a"),
        ("pandalm-157", "annotator2", "a"),
        ("pandalm-157", "annotator3", "tie"),
    ]
    first = result.items[0]
    assert (first["model_a"], first["model_b"]) == ("bloom-7b", "llama-7b")
    assert first["shown_first"] is None
    texts = {p["id"]: p for p in result.prompts}
    assert texts[first["prompt_id"]]["text"] == (
        "Rewrite the sentence to be more concise.\n\nIf you have any questions about my rate, please let me know."
    )
    assert texts[first["prompt_id"]]["topic"] == "Grammarly"
    # an empty input adds nothing; the JSON `true` response is kept as text
    assert result.items[3]["prompt_id"] == prompt_id_for("Verify the correctness of the given statement.")
    assert result.items[3]["response_a"] == "True"
    assert any("idx 157 response1" in note for note in result.losses)
    assert result.batch_meta["tool"] == "pandalm"


def test_full_test_set() -> None:
    path = shared_data("pandalm/testset-v1.json")
    rows = json.loads(path.read_text(encoding="utf-8"))
    result = from_pandalm(path)
    assert_valid(result)
    assert len({i["pair_id"] for i in result.items}) == 999
    assert len(result.items) == 2997
    assert len(result.prompts) == 170
    assert {i["annotator"] for i in result.items} == {"annotator1", "annotator2", "annotator3"}
    expected = Counter({0: "tie", 1: "a", 2: "b"}[row[f"annotator{n}"]] for row in rows for n in (1, 2, 3))
    assert Counter(i["choice"] for i in result.items) == expected
    assert {p["turns"] for p in result.prompts} == {1}
    assert all(i["model_a"] and i["model_b"] for i in result.items)
    assert {i["model_a"] for i in result.items} | {i["model_b"] for i in result.items} == {
        "bloom-7b", "cerebras-gpt-6.7B", "llama-7b", "opt-7b", "pythia-6.9b",
    }  # fmt: skip
    assert any("6 response(s) are JSON scalars" in note for note in result.losses)


def test_bad_label_is_refused() -> None:
    rows = json.loads((FIXTURES / "pandalm_sample.json").read_text(encoding="utf-8"))
    rows[0]["annotator2"] = 3
    with pytest.raises(ImportFormatError):
        from_pandalm(rows)
