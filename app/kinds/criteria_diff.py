"""Classify the change between two criteria versions, and enforce the version bump it demands.

The rule (DESIGN.md, "Breaking-change rules for criteria"): a change is MAJOR when it can flip an
annotation decision, because batches labelled under the old text and the new one are then no longer
comparable and must not be mixed in one dataset; MINOR when only guidance changes (descriptions,
playbook, examples), so old and new labels still mean the same thing; PATCH when only metadata changes.
The declared version must be at least the next version of that level, so the version number alone tells
a consumer whether two batches can be pooled (same MAJOR).

Dimensions and disqualifiers are matched by name and code, not by position: their list order carries no
meaning (priority is the explicit `rank`), so reordering the list is no change. Tie-breaking rules are
applied in order, so their order counts. Scope lists are boundaries, compared as collections: a
reordered list draws the same boundary.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from app.core.errors import CriteriaVersionTooLow
from app.kinds.criteria_spec import CriteriaSpec
from app.kinds.semver import Semver

ChangeLevel = Literal["major", "minor", "patch", "none"]
ChangeKind = Literal["added", "removed", "changed"]

_LEVEL_ORDER: dict[ChangeLevel, int] = {"none": 0, "patch": 1, "minor": 2, "major": 3}
_SCOPE_FIELDS = ("in_scope", "out_of_scope", "special_handling")
# How many reasons the refusal's detail spells out before "and N more"; the full list is in `extra`.
_DETAIL_REASONS = 3


@dataclass(frozen=True)
class Change:
    """One difference between two specs, with the level it alone would require.

    `summary` is a short human phrase ("dimension 'accuracy' re-ranked") used in refusal messages.
    """

    path: str
    change: ChangeKind
    level: ChangeLevel
    before: Any
    after: Any
    summary: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "change": self.change,
            "level": self.level,
            "before": self.before,
            "after": self.after,
            "summary": self.summary,
        }


@dataclass(frozen=True)
class CriteriaDiff:
    """Every change from an old spec to a new one; `level` is the highest level among them."""

    level: ChangeLevel
    changes: list[Change] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as returned by the diff endpoint and in `criteria_version_too_low`."""
        return {"level": self.level, "changes": [change.to_dict() for change in self.changes]}


def highest_level(levels: Iterable[ChangeLevel]) -> ChangeLevel:
    """The most demanding of `levels` (`none` for no levels at all)."""
    return max(levels, key=_LEVEL_ORDER.__getitem__, default="none")


def diff_criteria(old: CriteriaSpec, new: CriteriaSpec) -> CriteriaDiff:
    """Compare two criteria specs and classify the change by the breaking-change rules.

    Changes are listed in a fixed order (dimensions, disqualifiers, tie-breaking, scope, playbook, gold
    examples, metadata; names sorted within each), so the same pair of specs always gives the same diff.
    """
    changes = [
        *_diff_dimensions(old, new),
        *_diff_disqualifiers(old, new),
        *_diff_tie_breaking(old.tie_breaking, new.tie_breaking),
        *_diff_scope(old, new),
        *_diff_playbook(old.playbook, new.playbook),
        *_diff_gold_examples(old, new),
        *_diff_metadata(old.metadata, new.metadata),
    ]
    return CriteriaDiff(level=highest_level(change.level for change in changes), changes=changes)


def _diff_dimensions(old: CriteriaSpec, new: CriteriaSpec) -> list[Change]:
    before = {dimension.name: dimension for dimension in old.dimensions}
    after = {dimension.name: dimension for dimension in new.dimensions}
    changes: list[Change] = []
    for name in sorted(before.keys() | after.keys()):
        path = f"dimensions[{name}]"
        was, now = before.get(name), after.get(name)
        if was is None and now is not None:
            dumped = now.model_dump(mode="json")
            changes.append(Change(path, "added", "major", None, dumped, f"dimension '{name}' added"))
        elif now is None and was is not None:
            dumped = was.model_dump(mode="json")
            changes.append(Change(path, "removed", "major", dumped, None, f"dimension '{name}' removed"))
        elif was is not None and now is not None:
            # Any rank change re-orders the priority, which decides pairs where dimensions disagree.
            if was.rank != now.rank:
                changes.append(
                    Change(
                        f"{path}.rank",
                        "changed",
                        "major",
                        was.rank,
                        now.rank,
                        f"dimension '{name}' re-ranked from {was.rank} to {now.rank}",
                    )
                )
            if was.description != now.description:
                changes.append(
                    Change(
                        f"{path}.description",
                        "changed",
                        "minor",
                        was.description,
                        now.description,
                        f"dimension '{name}' description changed",
                    )
                )
    return changes


def _diff_disqualifiers(old: CriteriaSpec, new: CriteriaSpec) -> list[Change]:
    before = {item.code: item.description for item in old.disqualifiers}
    after = {item.code: item.description for item in new.disqualifiers}
    changes: list[Change] = []
    for code in sorted(before.keys() | after.keys()):
        path = f"disqualifiers[{code}]"
        if code not in before:
            changes.append(
                Change(
                    path,
                    "added",
                    "major",
                    None,
                    {"code": code, "description": after[code]},
                    f"disqualifier '{code}' added",
                )
            )
        elif code not in after:
            changes.append(
                Change(
                    path,
                    "removed",
                    "major",
                    {"code": code, "description": before[code]},
                    None,
                    f"disqualifier '{code}' removed",
                )
            )
        elif before[code] != after[code]:
            # A disqualifier's text is its rule: rewording it moves the line between pass and fail.
            changes.append(
                Change(
                    f"{path}.description",
                    "changed",
                    "major",
                    before[code],
                    after[code],
                    f"disqualifier '{code}' reworded",
                )
            )
    return changes


def _diff_tie_breaking(before: list[str], after: list[str]) -> list[Change]:
    if before == after:
        return []
    # Rules are applied in order, so a reordering alone is a different procedure.
    added = [rule for rule in after if rule not in before]
    removed = [rule for rule in before if rule not in after]
    if not added and not removed:
        summary = "tie-breaking rules reordered"
    else:
        parts = [f"rule {rule!r} added" for rule in added] + [f"rule {rule!r} removed" for rule in removed]
        summary = "tie-breaking " + ", ".join(parts)
    if not before:
        kind: ChangeKind = "added"
    elif not after:
        kind = "removed"
    else:
        kind = "changed"
    return [Change("tie_breaking", kind, "major", list(before), list(after), summary)]


def _diff_scope(old: CriteriaSpec, new: CriteriaSpec) -> list[Change]:
    changes: list[Change] = []
    for name in _SCOPE_FIELDS:
        before: list[str] = getattr(old.scope, name)
        after: list[str] = getattr(new.scope, name)
        if sorted(before) == sorted(after):
            continue
        if not before:
            kind: ChangeKind = "added"
        elif not after:
            kind = "removed"
        else:
            kind = "changed"
        changes.append(
            Change(
                f"scope.{name}",
                kind,
                "major",
                list(before),
                list(after),
                f"scope boundary {name} changed",
            )
        )
    return changes


def _diff_playbook(before: str, after: str) -> list[Change]:
    if before == after:
        return []
    return [Change("playbook", "changed", "minor", before, after, "playbook text changed")]


def _diff_gold_examples(old: CriteriaSpec, new: CriteriaSpec) -> list[Change]:
    # Examples have no identity of their own, so they are compared by position.
    before = [example.model_dump(mode="json") for example in old.gold_examples]
    after = [example.model_dump(mode="json") for example in new.gold_examples]
    changes: list[Change] = []
    for index in range(max(len(before), len(after))):
        path = f"gold_examples[{index}]"
        if index >= len(before):
            changes.append(Change(path, "added", "minor", None, after[index], f"gold example {index} added"))
        elif index >= len(after):
            changes.append(Change(path, "removed", "minor", before[index], None, f"gold example {index} removed"))
        elif before[index] != after[index]:
            changes.append(
                Change(path, "changed", "minor", before[index], after[index], f"gold example {index} changed")
            )
    return changes


def _diff_metadata(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    changes: list[Change] = []
    for key in sorted(before.keys() | after.keys()):
        path = f"metadata.{key}"
        if key not in before:
            changes.append(Change(path, "added", "patch", None, after[key], f"metadata '{key}' added"))
        elif key not in after:
            changes.append(Change(path, "removed", "patch", before[key], None, f"metadata '{key}' removed"))
        elif before[key] != after[key]:
            changes.append(Change(path, "changed", "patch", before[key], after[key], f"metadata '{key}' changed"))
    return changes


def required_version(latest: Semver, level: ChangeLevel) -> Semver:
    """The lowest version that may follow `latest` for a change of `level`.

    An unchanged spec (`none`) still needs a version above `latest`, since versions are never reused.
    """
    return latest.bump("patch" if level == "none" else level)


def check_declared_version(latest: Semver, declared: Semver, diff: CriteriaDiff) -> None:
    """Refuse `declared` (raise `CriteriaVersionTooLow`) when it is below the bump `diff` requires.

    Versions above the minimum are accepted (a team may announce a major for a minor change); the
    refusal carries the diff, the latest and the minimum version so a client can fix the request.
    """
    minimum = required_version(latest, diff.level)
    if declared >= minimum:
        return
    extra = {
        "diff": diff.to_dict(),
        "latest_version": str(latest),
        "minimum_version": str(minimum),
        "required_level": diff.level,
    }
    raise CriteriaVersionTooLow(_refusal_detail(latest, declared, minimum, diff), extra=extra)


def _refusal_detail(latest: Semver, declared: Semver, minimum: Semver, diff: CriteriaDiff) -> str:
    if diff.level == "none":
        return (
            f"version {declared} is not above the latest version {latest} "
            f"(the spec is unchanged); register it as {minimum} or later"
        )
    # Name the changes that set the level: those are the ones the author has to know about.
    reasons = [change.summary or change.path for change in diff.changes if change.level == diff.level]
    shown = ", ".join(reasons[:_DETAIL_REASONS])
    if len(reasons) > _DETAIL_REASONS:
        shown += f" and {len(reasons) - _DETAIL_REASONS} more"
    return (
        f"this is a {diff.level} change ({shown}); register it as {minimum} or later "
        f"(declared {declared}, latest {latest}; the full diff is in `diff`)"
    )
