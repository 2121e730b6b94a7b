"""The QC gate: whether a batch may enter a dataset (pass), enters with a warning, or needs a waiver."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PASS, WARN, BLOCK = "pass", "warn", "block"
AI_LABELLED_REASON = (
    "AI-labelled: every label is an AI judge's, one per pair, so no figure here is human agreement; "
    "a dataset takes it only once a human review of its sample agrees with it (ai_review_insufficient)"
)


def agreement_figure(qc: Mapping[str, Any]) -> float | None:
    """The agreement the gate judges: mean pairwise Cohen's kappa if defined, else Krippendorff's alpha."""
    kappa = qc["cohen_kappa"]["mean"]
    if kappa is not None:
        return float(kappa)
    alpha = qc["krippendorff_alpha"]
    return None if alpha is None else float(alpha)


def gate(qc: Mapping[str, Any], policy: Mapping[str, Any]) -> tuple[str, list[str]]:
    """``(gate, reasons)`` for a qc dict under a policy (DESIGN.md, "Annotation QC").

    Rules, each adding a reason; the gate is the worst level reached:
    agreement (``agreement_figure``) below ``kappa_floor`` -> block; below ``kappa_target`` -> warn;
    no agreement figure (one annotator, no overlap or no variation) -> warn;
    an AI-labelled batch (``qc["ai_labelled"]``) -> warn instead of the two agreement rules: its labels
    are one AI judge's per pair, so there is no human agreement to judge, and what lets it into a
    dataset is a human review of its sample (``ai_review_insufficient`` at the build), not this gate;
    the batch has gold items but their share is below ``gold_share_min`` -> warn (never block);
    any session longer than ``max_session_minutes`` -> warn.
    """
    levels: list[str] = []
    reasons: list[str] = []

    def flag(level: str, reason: str) -> None:
        levels.append(level)
        reasons.append(reason)

    agreement = agreement_figure(qc)
    floor, target = float(policy["kappa_floor"]), float(policy["kappa_target"])
    if qc.get("ai_labelled"):
        flag(WARN, AI_LABELLED_REASON)
    elif agreement is None:
        flag(WARN, "no inter-annotator agreement figure: a single annotator, no overlap or no variation")
    elif agreement < floor:
        flag(BLOCK, f"agreement {agreement:.3f} is below the kappa floor {floor:g}")
    elif agreement < target:
        flag(WARN, f"agreement {agreement:.3f} is below the kappa target {target:g}")

    gold = qc["gold_accuracy"]
    share_min = float(policy["gold_share_min"])
    if gold["n"] and gold["share"] < share_min:
        flag(WARN, f"gold share {gold['share']:.3f} is below the minimum {share_min:g}")

    sessions = qc["sessions_over_limit"]
    if sessions["count"]:
        limit = float(policy["max_session_minutes"])
        flag(WARN, f"{sessions['count']} session(s) longer than {limit:g} minutes")

    if BLOCK in levels:
        return BLOCK, reasons
    return (WARN if levels else PASS), reasons
