"""The QC gate: whether a batch may enter a dataset (pass), enters with a warning, or needs a waiver."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PASS, WARN, BLOCK = "pass", "warn", "block"


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
    if agreement is None:
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
