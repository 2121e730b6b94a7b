"""Preference criteria: the annotator playbook, versioned by semver with server-enforced bump levels."""

from __future__ import annotations

from typing import Any, ClassVar

from app.kinds.base import KindContext, KindDefinition
from app.kinds.criteria_diff import check_declared_version, diff_criteria
from app.kinds.criteria_spec import CriteriaSpec
from app.kinds.semver import Semver


class CriteriaKind(KindDefinition):
    name = "criteria"
    collection = "criteria"
    rank = 20
    label = "criteria"
    waivable = True
    # the criteria document and the annotator training materials
    package_fields: ClassVar[tuple[str, ...]] = ("spec.dimensions", "spec.playbook", "spec.gold_examples")
    traces_to_criteria = False
    is_model = False
    trained = False
    built_by_server = False
    version_scheme = "semver"
    write_roles: ClassVar[frozenset[str]] = frozenset({"admin"})
    reads_previous = True
    spec_model = CriteriaSpec

    def check(self, ctx: KindContext) -> None:
        if ctx.previous is None:
            return
        diff = diff_criteria(CriteriaSpec.model_validate(ctx.previous.spec), CriteriaSpec.model_validate(ctx.spec))
        check_declared_version(Semver.parse(ctx.previous.version), Semver.parse(ctx.version), diff)

    def derive(self, ctx: KindContext) -> dict[str, Any]:
        if ctx.previous is None:
            return {"change": None}
        diff = diff_criteria(CriteriaSpec.model_validate(ctx.previous.spec), CriteriaSpec.model_validate(ctx.spec))
        return {"change": {"from_version": ctx.previous.version, **diff.to_dict()}}


def criteria_diff_of(old_spec: dict[str, Any], new_spec: dict[str, Any]) -> dict[str, Any]:
    """The diff endpoint's body: classification and changes between two registered specs."""
    return diff_criteria(CriteriaSpec.model_validate(old_spec), CriteriaSpec.model_validate(new_spec)).to_dict()
