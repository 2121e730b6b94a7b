"""Every record kind the registry knows, by kind name and by collection path."""

from __future__ import annotations

from app.kinds.base import KindDefinition
from app.kinds.criteria import CriteriaKind
from app.kinds.policy import PolicyKind

KINDS: dict[str, KindDefinition] = {kind.name: kind for kind in (PolicyKind(), CriteriaKind())}
BY_COLLECTION: dict[str, KindDefinition] = {kind.collection: kind for kind in KINDS.values()}
