"""Every record kind the registry knows, by kind name and by collection path."""

from __future__ import annotations

from app.kinds.annotation_batch import AnnotationBatchKind
from app.kinds.base import KindDefinition
from app.kinds.base_model import BaseModelKind
from app.kinds.checkpoints import PolicyCheckpointKind, RewardCheckpointKind
from app.kinds.criteria import CriteriaKind
from app.kinds.deployment import DeploymentKind
from app.kinds.evaluation import EvaluationKind
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
        AnnotationBatchKind(),
        PreferenceDatasetKind(),
        WaiverKind(),
        BaseModelKind(),
        RewardCheckpointKind(),
        PolicyCheckpointKind(),
        EvaluationKind(),
        DeploymentKind(),
        HandoffPackageKind(),
    )
}
BY_COLLECTION: dict[str, KindDefinition] = {kind.collection: kind for kind in KINDS.values()}
