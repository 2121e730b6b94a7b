"""Every record kind the registry knows, by kind name and by collection path, and the questions other
modules ask about kinds (which are models, which are trained, in what order they are shown). Those
modules ask here instead of keeping their own lists, so a kind is declared in its module and listed
once, below."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

from app.kinds.annotation_batch import AnnotationBatchKind
from app.kinds.base import KindDefinition, ParentRole
from app.kinds.base_model import BaseModelKind
from app.kinds.checkpoints import PolicyCheckpointKind, RewardCheckpointKind
from app.kinds.criteria import CriteriaKind
from app.kinds.demonstration_set import DemonstrationSetKind
from app.kinds.deployment import DeploymentKind
from app.kinds.evaluation import EvaluationKind
from app.kinds.evaluation_campaign import EvaluationCampaignKind
from app.kinds.handoff_package import HandoffPackageKind
from app.kinds.policy import PolicyKind
from app.kinds.preference_dataset import PreferenceDatasetKind
from app.kinds.prompt_set import PromptSetKind
from app.kinds.waiver import WaiverKind

KINDS: dict[str, KindDefinition] = {
    kind.name: kind
    for kind in (
        PolicyKind(),
        CriteriaKind(),
        PromptSetKind(),
        DemonstrationSetKind(),
        AnnotationBatchKind(),
        PreferenceDatasetKind(),
        WaiverKind(),
        BaseModelKind(),
        RewardCheckpointKind(),
        PolicyCheckpointKind(),
        EvaluationCampaignKind(),
        EvaluationKind(),
        DeploymentKind(),
        HandoffPackageKind(),
    )
}
BY_COLLECTION: dict[str, KindDefinition] = {kind.collection: kind for kind in KINDS.values()}


@cache
def display_order() -> tuple[str, ...]:
    """Every kind name by rank: upstream first (policy, criteria, ... deployment, handoff package)."""
    return tuple(sorted(KINDS, key=lambda name: KINDS[name].rank))


def rank_of(kind: str) -> int:
    """Where `kind` sorts among kinds; after every known kind when it is not one (an archive's record)."""
    known = KINDS.get(kind)
    return known.rank if known is not None else max(k.rank for k in KINDS.values()) + 1


def label_of(kind: str) -> str:
    """The words a page shows for `kind`."""
    known = KINDS.get(kind)
    return known.label if known is not None else kind.replace("_", " ")


@cache
def kinds_where(**flags: bool) -> tuple[str, ...]:
    """Names of the kinds whose declarations hold every given flag (`kinds_where(trained=True)`), by rank.
    A flag that no kind declares is an AttributeError, not an empty answer."""
    return tuple(
        name for name in display_order() if all(getattr(KINDS[name], flag) == value for flag, value in flags.items())
    )


def _resolved(role: ParentRole) -> ParentRole:
    if role.kinds_flagged is None:
        return role
    return replace(role, kinds=kinds_where(**{role.kinds_flagged: True}))


def _resolve_flagged_roles() -> None:
    """A parent role declared by flag (a waiver's `covers`: every waivable kind) gets its kinds, which are
    known only once every kind is."""
    for kind in KINDS.values():
        type(kind).parent_roles = tuple(_resolved(role) for role in kind.parent_roles)


_resolve_flagged_roles()
