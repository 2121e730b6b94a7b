"""Breaking-change classification of criteria (DESIGN.md), the version bump it demands, and the spec
validation the diff relies on."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from app.core.errors import CriteriaVersionTooLow
from app.kinds.criteria_diff import (
    Change,
    ChangeLevel,
    CriteriaDiff,
    check_declared_version,
    diff_criteria,
    required_version,
)
from app.kinds.criteria_spec import CriteriaSpec
from app.kinds.semver import Semver

# --- factories -----------------------------------------------------------------------------------


def dim(name: str, rank: int, description: str | None = None) -> dict[str, Any]:
    return {"name": name, "description": description or f"how good the {name} is", "rank": rank}


def disq(code: str, description: str | None = None) -> dict[str, Any]:
    return {"code": code, "description": description or f"the response shows {code}"}


def gold(answer: str = "a", prompt: str = "What is 2+2?") -> dict[str, Any]:
    return {"prompt": prompt, "response_a": "4", "response_b": "5", "answer": answer, "why": "arithmetic"}


def spec_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "dimensions": [dim("accuracy", 1), dim("helpfulness", 2)],
        "disqualifiers": [disq("hallucinated_citation")],
        "tie_breaking": ["prefer the more concise response"],
        "scope": {"in_scope": ["single-turn chat"], "out_of_scope": ["code"], "special_handling": []},
        "playbook": "# Playbook\nRead both responses.",
        "gold_examples": [gold()],
        "metadata": {"owner": "annotation-team"},
    }
    data.update(overrides)
    return data


def spec(**overrides: Any) -> CriteriaSpec:
    return CriteriaSpec.model_validate(spec_data(**overrides))


def scope(**overrides: list[str]) -> dict[str, list[str]]:
    return {**spec_data()["scope"], **overrides}


def paths(diff: CriteriaDiff) -> list[str]:
    return [change.path for change in diff.changes]


def only_change(diff: CriteriaDiff) -> Change:
    assert len(diff.changes) == 1, diff.changes
    return diff.changes[0]


# --- classification: major ---------------------------------------------------------------------


def test_dimension_added_is_major() -> None:
    new = spec(dimensions=[dim("accuracy", 1), dim("helpfulness", 2), dim("safety", 3)])
    diff = diff_criteria(spec(), new)
    change = only_change(diff)
    assert diff.level == "major"
    assert (change.path, change.change, change.before) == ("dimensions[safety]", "added", None)
    assert change.after == dim("safety", 3)


def test_dimension_removed_is_major() -> None:
    diff = diff_criteria(spec(), spec(dimensions=[dim("accuracy", 1)]))
    change = only_change(diff)
    assert diff.level == "major"
    assert (change.path, change.change, change.after) == ("dimensions[helpfulness]", "removed", None)


def test_dimension_reranked_is_major() -> None:
    diff = diff_criteria(spec(), spec(dimensions=[dim("accuracy", 2), dim("helpfulness", 1)]))
    assert diff.level == "major"
    assert paths(diff) == ["dimensions[accuracy].rank", "dimensions[helpfulness].rank"]
    assert (diff.changes[0].before, diff.changes[0].after) == (1, 2)


def test_disqualifier_added_is_major() -> None:
    new = spec(disqualifiers=[disq("hallucinated_citation"), disq("unsafe_advice")])
    diff = diff_criteria(spec(), new)
    change = only_change(diff)
    assert diff.level == "major"
    assert (change.path, change.change) == ("disqualifiers[unsafe_advice]", "added")


def test_disqualifier_removed_is_major() -> None:
    diff = diff_criteria(spec(), spec(disqualifiers=[]))
    change = only_change(diff)
    assert diff.level == "major"
    assert (change.path, change.change) == ("disqualifiers[hallucinated_citation]", "removed")


def test_disqualifier_reworded_is_major() -> None:
    new = spec(disqualifiers=[disq("hallucinated_citation", "cites a source that does not say it")])
    diff = diff_criteria(spec(), new)
    change = only_change(diff)
    assert diff.level == "major"
    assert (change.path, change.change) == ("disqualifiers[hallucinated_citation].description", "changed")


@pytest.mark.parametrize(
    "rules",
    [
        ["prefer the more concise response", "prefer the safer response"],  # added
        [],  # removed
        ["prefer the shorter response"],  # changed
    ],
)
def test_tie_breaking_rule_change_is_major(rules: list[str]) -> None:
    diff = diff_criteria(spec(), spec(tie_breaking=rules))
    change = only_change(diff)
    assert diff.level == "major"
    assert change.path == "tie_breaking"
    assert change.after == rules


def test_tie_breaking_reordered_is_major() -> None:
    old = spec(tie_breaking=["prefer the safer response", "prefer the shorter response"])
    new = spec(tie_breaking=["prefer the shorter response", "prefer the safer response"])
    diff = diff_criteria(old, new)
    assert diff.level == "major"
    assert paths(diff) == ["tie_breaking"]


@pytest.mark.parametrize("field", ["in_scope", "out_of_scope", "special_handling"])
def test_each_scope_list_change_is_major(field: str) -> None:
    diff = diff_criteria(spec(), spec(scope=scope(**{field: ["multi-turn conversations"]})))
    change = only_change(diff)
    assert diff.level == "major"
    assert change.path == f"scope.{field}"
    assert change.after == ["multi-turn conversations"]


# --- classification: minor, patch, none --------------------------------------------------------


def test_dimension_description_changed_is_minor() -> None:
    new = spec(dimensions=[dim("accuracy", 1, "facts are right and sourced"), dim("helpfulness", 2)])
    diff = diff_criteria(spec(), new)
    change = only_change(diff)
    assert diff.level == "minor"
    assert (change.path, change.change, change.level) == (
        "dimensions[accuracy].description",
        "changed",
        "minor",
    )


def test_playbook_changed_is_minor() -> None:
    diff = diff_criteria(spec(), spec(playbook="# Playbook\nRead both responses twice."))
    change = only_change(diff)
    assert diff.level == "minor"
    assert change.path == "playbook"


@pytest.mark.parametrize(
    ("examples", "expected_path", "expected_change"),
    [
        ([gold(), gold("b", "Is 5 prime?")], "gold_examples[1]", "added"),
        ([], "gold_examples[0]", "removed"),
        ([gold("tie")], "gold_examples[0]", "changed"),
    ],
)
def test_gold_examples_change_is_minor(
    examples: list[dict[str, Any]], expected_path: str, expected_change: str
) -> None:
    diff = diff_criteria(spec(), spec(gold_examples=examples))
    change = only_change(diff)
    assert diff.level == "minor"
    assert (change.path, change.change) == (expected_path, expected_change)


def test_metadata_only_is_patch() -> None:
    new = spec(metadata={"owner": "quality-team", "changelog": "new owner"})
    diff = diff_criteria(spec(), new)
    assert diff.level == "patch"
    assert paths(diff) == ["metadata.changelog", "metadata.owner"]
    assert {change.level for change in diff.changes} == {"patch"}


def test_identical_is_none() -> None:
    diff = diff_criteria(spec(), spec())
    assert diff == CriteriaDiff(level="none", changes=[])


def test_reordering_dimensions_without_rank_change_is_no_change() -> None:
    new = spec(dimensions=[dim("helpfulness", 2), dim("accuracy", 1)])
    assert diff_criteria(spec(), new).level == "none"


def test_reordering_disqualifiers_is_no_change() -> None:
    old = spec(disqualifiers=[disq("hallucinated_citation"), disq("unsafe_advice")])
    new = spec(disqualifiers=[disq("unsafe_advice"), disq("hallucinated_citation")])
    assert diff_criteria(old, new).level == "none"


def test_mixed_changes_take_the_highest_level() -> None:
    new = spec(
        dimensions=[dim("accuracy", 1, "reworded guidance"), dim("helpfulness", 2)],
        scope=scope(out_of_scope=["code", "medical advice"]),
        metadata={"owner": "someone-else"},
    )
    diff = diff_criteria(spec(), new)
    assert diff.level == "major"
    assert {change.path: change.level for change in diff.changes} == {
        "dimensions[accuracy].description": "minor",
        "scope.out_of_scope": "major",
        "metadata.owner": "patch",
    }


def test_guidance_and_metadata_together_are_minor() -> None:
    diff = diff_criteria(spec(), spec(playbook="new text", metadata={"owner": "someone-else"}))
    assert diff.level == "minor"


def test_to_dict_is_plain_json() -> None:
    diff = diff_criteria(spec(), spec(dimensions=[dim("accuracy", 1)]))
    assert diff.to_dict() == {
        "level": "major",
        "changes": [
            {
                "path": "dimensions[helpfulness]",
                "change": "removed",
                "level": "major",
                "before": dim("helpfulness", 2),
                "after": None,
                "summary": "dimension 'helpfulness' removed",
            }
        ],
    }


# --- declared versions -------------------------------------------------------------------------

LATEST = Semver(1, 4, 2)


# One representative change per level, applied to the default spec.
LEVEL_CHANGES: dict[ChangeLevel, dict[str, Any]] = {
    "major": {"dimensions": [dim("accuracy", 2), dim("helpfulness", 1)]},
    "minor": {"playbook": "changed"},
    "patch": {"metadata": {"owner": "x"}},
    "none": {},
}


def diff_at(level: ChangeLevel) -> CriteriaDiff:
    diff = diff_criteria(spec(), spec(**LEVEL_CHANGES[level]))
    assert diff.level == level
    return diff


@pytest.mark.parametrize(
    ("level", "expected"), [("major", "2.0.0"), ("minor", "1.5.0"), ("patch", "1.4.3"), ("none", "1.4.3")]
)
def test_required_version(level: ChangeLevel, expected: str) -> None:
    assert str(required_version(LATEST, level)) == expected


@pytest.mark.parametrize(
    ("level", "declared"),
    [("major", "2.0.0"), ("minor", "1.5.0"), ("patch", "1.4.3"), ("none", "1.4.3")],
)
def test_minimum_version_accepted(level: ChangeLevel, declared: str) -> None:
    check_declared_version(LATEST, Semver.parse(declared), diff_at(level))


def test_major_change_refuses_minor_bump_with_the_diff() -> None:
    diff = diff_at("major")
    with pytest.raises(CriteriaVersionTooLow) as caught:
        check_declared_version(LATEST, Semver(1, 5, 0), diff)
    error = caught.value
    assert error.code == "criteria_version_too_low"
    assert error.status == 409
    assert error.extra == {
        "diff": diff.to_dict(),
        "latest_version": "1.4.2",
        "minimum_version": "2.0.0",
        "required_level": "major",
    }


def test_minor_change_refuses_patch_bump() -> None:
    with pytest.raises(CriteriaVersionTooLow) as caught:
        check_declared_version(LATEST, Semver(1, 4, 3), diff_at("minor"))
    assert caught.value.code == "criteria_version_too_low"
    assert caught.value.extra["minimum_version"] == "1.5.0"
    assert caught.value.extra["required_level"] == "minor"


@pytest.mark.parametrize(
    ("level", "declared"),
    [
        ("major", "3.0.0"),
        ("major", "2.1.7"),
        ("minor", "2.0.0"),
        ("minor", "1.9.0"),
        ("patch", "1.5.0"),
        ("none", "2.0.0"),
    ],
)
def test_over_bumping_is_allowed(level: ChangeLevel, declared: str) -> None:
    check_declared_version(LATEST, Semver.parse(declared), diff_at(level))


@pytest.mark.parametrize("declared", ["1.4.2", "1.4.1", "0.9.9"])
@pytest.mark.parametrize("level", ["major", "minor", "patch", "none"])
def test_declared_not_above_latest_is_refused(level: ChangeLevel, declared: str) -> None:
    with pytest.raises(CriteriaVersionTooLow) as caught:
        check_declared_version(LATEST, Semver.parse(declared), diff_at(level))
    assert caught.value.code == "criteria_version_too_low"
    assert caught.value.extra["latest_version"] == "1.4.2"


# --- spec validation ---------------------------------------------------------------------------

INVALID_SPECS: dict[str, tuple[dict[str, Any], str]] = {
    "duplicate ranks": ({"dimensions": [dim("accuracy", 1), dim("helpfulness", 1)]}, "duplicate_rank"),
    "rank gap": ({"dimensions": [dim("accuracy", 1), dim("helpfulness", 3)]}, "ranks_not_contiguous"),
    "ranks not from 1": ({"dimensions": [dim("accuracy", 2), dim("helpfulness", 3)]}, "ranks_not_contiguous"),
    "rank zero": ({"dimensions": [dim("accuracy", 0)]}, "greater_than_equal"),
    "rank as text": ({"dimensions": [{**dim("accuracy", 1), "rank": "1"}]}, "int_type"),
    "duplicate names": (
        {"dimensions": [dim("accuracy", 1), dim("accuracy", 2)]},
        "duplicate_dimension_name",
    ),
    "no dimensions": ({"dimensions": []}, "too_short"),
    "name upper case": ({"dimensions": [dim("Accuracy", 1)]}, "dimension_name_not_slug"),
    "name with space": ({"dimensions": [dim("has space", 1)]}, "dimension_name_not_slug"),
    "name leading dash": ({"dimensions": [dim("-accuracy", 1)]}, "dimension_name_not_slug"),
    "name too long": ({"dimensions": [dim("x" * 65, 1)]}, "dimension_name_not_slug"),
    "code camel case": (
        {"disqualifiers": [disq("HallucinatedCitation")]},
        "disqualifier_code_not_snake_case",
    ),
    "code kebab case": (
        {"disqualifiers": [disq("hallucinated-citation")]},
        "disqualifier_code_not_snake_case",
    ),
    "code double underscore": (
        {"disqualifiers": [disq("double__under")]},
        "disqualifier_code_not_snake_case",
    ),
    "duplicate codes": (
        {"disqualifiers": [disq("unsafe_advice"), disq("unsafe_advice", "other words")]},
        "duplicate_disqualifier_code",
    ),
    "gold answer c": ({"gold_examples": [gold("c")]}, "literal_error"),
    "blank tie-breaking rule": ({"tie_breaking": ["   "]}, "blank_text"),
    "blank disqualifier text": ({"disqualifiers": [disq("unsafe_advice", " ")]}, "blank_text"),
    "unknown top-level field": ({"owner": "x"}, "extra_forbidden"),
    "unknown dimension field": ({"dimensions": [{**dim("accuracy", 1), "weight": 2}]}, "extra_forbidden"),
    "unknown scope field": ({"scope": {"in_scope": [], "everywhere": True}}, "extra_forbidden"),
    "unknown gold field": ({"gold_examples": [{**gold(), "difficulty": "hard"}]}, "extra_forbidden"),
}


@pytest.mark.parametrize(("overrides", "error_type"), INVALID_SPECS.values(), ids=INVALID_SPECS.keys())
def test_invalid_spec_refused_with_its_error_type(overrides: dict[str, Any], error_type: str) -> None:
    with pytest.raises(ValidationError) as caught:
        spec(**overrides)
    assert {error["type"] for error in caught.value.errors()} == {error_type}


def test_minimal_spec_gets_defaults_and_free_form_metadata() -> None:
    minimal = CriteriaSpec.model_validate(
        {"dimensions": [dim("accuracy", 1)], "metadata": {"contacts": [{"name": "A", "slack": "#q"}]}}
    )
    assert minimal.disqualifiers == []
    assert minimal.tie_breaking == []
    assert minimal.scope.model_dump() == {"in_scope": [], "out_of_scope": [], "special_handling": []}
    assert minimal.playbook == ""
    assert minimal.gold_examples == []
    assert minimal.metadata["contacts"][0]["slack"] == "#q"


def test_stored_json_form_validates_back_to_the_same_spec() -> None:
    # The pipeline stores model_dump(mode="json") and re-validates it to diff against the next version.
    original = spec()
    assert CriteriaSpec.model_validate(original.model_dump(mode="json")) == original
