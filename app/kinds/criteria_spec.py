"""The `spec` of a criteria record: what annotators are asked to judge and how.

The schema is strict (`extra="forbid"`, strict types) because the breaking-change diff in
`criteria_diff.py` can only classify fields it knows: a misspelt key silently accepted would be a change
that no rule sees. `metadata` is the one free-form field, and the only one a patch version may change.

Validation failures carry stable pydantic error types (`duplicate_rank`, `ranks_not_contiguous`, ...)
so that callers and tests can tell them apart without reading message text; the record pipeline
(`KindDefinition.parse_spec`) turns them into the registry's `validation_failed` problem.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

# Dimension names become keys of per-dimension annotation choices and of per-dimension metrics, so
# they are kept to a portable slug.
DIMENSION_NAME_PATTERN = r"[a-z0-9][a-z0-9_-]{0,63}"
_DIMENSION_NAME_RE = re.compile(DIMENSION_NAME_PATTERN)
# Disqualifier codes are referenced from annotation justifications and reports as identifiers.
DISQUALIFIER_CODE_PATTERN = r"[a-z][a-z0-9]{0,63}(?:_[a-z0-9]+)*"
_DISQUALIFIER_CODE_RE = re.compile(DISQUALIFIER_CODE_PATTERN)


def _not_blank(text: str) -> str:
    """A blank rule or boundary would still count as a breaking change when edited, yet tells an
    annotator nothing; refuse it at the door."""
    if not text.strip():
        raise PydanticCustomError("blank_text", "must contain some text, not only whitespace")
    return text


NonBlankText = Annotated[str, AfterValidator(_not_blank)]

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)

_T = TypeVar("_T")


class Dimension(BaseModel):
    """A quality dimension; `rank` 1 wins over rank 2 when the dimensions disagree."""

    model_config = _STRICT

    name: str
    description: NonBlankText
    rank: Annotated[int, Field(ge=1)]

    @field_validator("name")
    @classmethod
    def _name_is_slug(cls, name: str) -> str:
        # A custom error type rather than Field(pattern=...) so callers can tell this rule apart.
        if _DIMENSION_NAME_RE.fullmatch(name) is None:
            raise PydanticCustomError(
                "dimension_name_not_slug",
                "dimension name '{name}' must be a slug: lowercase letters, digits, '-' or '_', "
                "starting with a letter or digit, at most 64 characters",
                {"name": name},
            )
        return name


class Disqualifier(BaseModel):
    """An absolute disqualifier: a response that shows it loses, whatever the dimensions say."""

    model_config = _STRICT

    code: Annotated[str, Field(max_length=64)]
    description: NonBlankText

    @field_validator("code")
    @classmethod
    def _code_is_snake_case(cls, code: str) -> str:
        if _DISQUALIFIER_CODE_RE.fullmatch(code) is None:
            raise PydanticCustomError(
                "disqualifier_code_not_snake_case",
                "disqualifier code '{code}' must be snake_case (lowercase letters, digits, underscores)",
                {"code": code},
            )
        return code


class Scope(BaseModel):
    """Where the criteria apply; every list empty means no stated boundary."""

    model_config = _STRICT

    in_scope: list[NonBlankText] = Field(default_factory=list)
    out_of_scope: list[NonBlankText] = Field(default_factory=list)
    special_handling: list[NonBlankText] = Field(default_factory=list)


class GoldExample(BaseModel):
    """A pair with a known answer, used to teach annotators and to score their gold accuracy."""

    model_config = _STRICT

    prompt: str
    response_a: str
    response_b: str
    answer: Literal["a", "b", "tie"]
    why: str = ""


class CriteriaSpec(BaseModel):
    """The full criteria content, as registered under one name and version."""

    model_config = _STRICT

    dimensions: Annotated[list[Dimension], Field(min_length=1)]
    disqualifiers: list[Disqualifier] = Field(default_factory=list)
    tie_breaking: list[NonBlankText] = Field(default_factory=list)
    scope: Scope = Field(default_factory=Scope)
    playbook: str = ""
    gold_examples: list[GoldExample] = Field(default_factory=list)
    # Owner, changelog, contacts: anything that cannot change how a pair is annotated.
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _dimensions_form_a_total_order(self) -> CriteriaSpec:
        names = [dimension.name for dimension in self.dimensions]
        duplicates = _duplicates(names)
        if duplicates:
            raise PydanticCustomError(
                "duplicate_dimension_name",
                "dimension names must be unique; repeated: {names}",
                {"names": ", ".join(duplicates)},
            )
        # Ranks must be exactly 1..n: a tie in rank or a gap leaves annotators without a rule for which
        # dimension wins, which is the decision the ranking exists to make.
        ranks = [dimension.rank for dimension in self.dimensions]
        repeated = _duplicates(ranks)
        if repeated:
            raise PydanticCustomError(
                "duplicate_rank",
                "each rank must be used by exactly one dimension; repeated: {ranks}",
                {"ranks": ", ".join(str(rank) for rank in repeated)},
            )
        expected = set(range(1, len(ranks) + 1))
        if set(ranks) != expected:
            raise PydanticCustomError(
                "ranks_not_contiguous",
                "dimension ranks must be 1..{n} with no gaps; missing: {missing}",
                {
                    "n": len(ranks),
                    "missing": ", ".join(str(rank) for rank in sorted(expected - set(ranks))),
                },
            )
        return self

    @model_validator(mode="after")
    def _disqualifier_codes_unique(self) -> CriteriaSpec:
        duplicates = _duplicates(disqualifier.code for disqualifier in self.disqualifiers)
        if duplicates:
            raise PydanticCustomError(
                "duplicate_disqualifier_code",
                "disqualifier codes must be unique; repeated: {codes}",
                {"codes": ", ".join(duplicates)},
            )
        return self


def _duplicates(values: Iterable[_T]) -> list[_T]:
    """Values seen more than once, in first-seen order (so messages are stable)."""
    return [value for value, count in Counter(values).items() if count > 1]
