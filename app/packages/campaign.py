"""What a handoff package says about choosing the deployed checkpoint: the series' ratings from every
campaign evaluation in the package (a chart and a table each), its candidate and whether the deployed
checkpoint is it, the reward-hacking flags of the deployed checkpoint and of the rest of its series, and
the waivers that covered them.

Every figure comes from a record's derived block or from the flags gathered with the closure; nothing
is recomputed here. A campaign judged by an AI judge is named as such in every heading, table and
warning: it shows the shape of the series and is never reported as human evidence."""

from __future__ import annotations

from typing import Any

from app.packages import plots
from app.packages.gather import Closure
from app.packages.render import fmt
from app.records.models import Record

# the rules a waiver overrides when a deployment goes ahead despite what this section reports
CHOICE_RULES = ("not_deployment_candidate", "reward_hacking_flagged", "evaluation_evidence_insufficient")


def campaign_evaluations(closure: Closure) -> list[Record]:
    """The campaign evaluations of the deployed checkpoint's series in the package: people's first, then
    AI judges', each newest first."""
    found = [
        e
        for e in closure.of_kind("evaluation")
        if closure.parents(e, "campaign") and e.derived.get("series") == closure.checkpoint.name
    ]
    newest = sorted(found, key=lambda e: e.id, reverse=True)  # record ids are UUIDv7: time-ordered
    return sorted(newest, key=lambda e: bool(e.derived.get("ai_judged")))


def _checkpoint_label(row: dict[str, Any]) -> str:
    step = row.get("step")
    return f"{row.get('name')} v{row.get('version')}" + (f" (step {step})" if step is not None else "")


def interval(row: dict[str, Any] | None) -> str:
    if not row or row.get("rating") is None:
        return "not measured"
    return f"{fmt(row['rating'])} (95% interval {fmt(row.get('low'))} to {fmt(row.get('high'))})"


def candidate_sentence(derived: dict[str, Any], deployed: Record) -> str:
    """The candidate, whether its interval overlaps the next one's, and whether it is the deployed one."""
    candidate = derived.get("candidate")
    by = "the AI judge" if derived.get("ai_judged") else "human evaluators"
    if not candidate:
        return f"No candidate: no checkpoint of the series has a rating from {by}."
    said = f"Candidate: {_checkpoint_label(candidate)}, rated highest by {by}: {interval(candidate)}."
    if candidate.get("advice"):
        said += f" {candidate['advice'].rstrip('.')}."  # it opens with a record name, written as registered
    elif candidate.get("overlaps_next"):
        said += " Its interval overlaps that of the next-rated checkpoint."
    if candidate.get("model") == deployed.id:
        return said + " The deployed checkpoint is the candidate."
    return said + f" The deployed checkpoint, {deployed.name} v{deployed.version}, is NOT the candidate."


def judge_of(derived: dict[str, Any]) -> str:
    """Who judged: "AI judge ai:rm@1" for an ai_preference evaluation, else the human evaluators."""
    evaluators = derived.get("evaluators") or []
    if derived.get("ai_judged"):
        return "AI judge " + ", ".join(evaluators) if evaluators else "AI judge"
    return f"{len(evaluators)} human evaluator{'s' if len(evaluators) != 1 else ''}"


def _plot_name(evaluation: Record) -> str:
    return f"ratings-{evaluation.name}-v{evaluation.version}.png"


def _title(derived: dict[str, Any]) -> str:
    who = "AI judge" if derived.get("ai_judged") else "Human"
    return f"{who} ratings across checkpoints ({judge_of(derived)})"


def ratings(closure: Closure) -> tuple[list[dict[str, Any]], list[plots.Plot | plots.NotDrawn]]:
    """One entry per campaign evaluation (its table rows, candidate sentence and figure key) and its
    figures."""
    entries, figures = [], []
    for evaluation in campaign_evaluations(closure):
        derived = evaluation.derived
        name = _plot_name(evaluation)
        figures.append(plots.ratings_across_checkpoints(name, _title(derived), derived, closure.checkpoint.id))
        candidate = (derived.get("candidate") or {}).get("model")
        entries.append(
            {
                "evaluation": evaluation,
                "title": _title(derived),
                "ai_judged": bool(derived.get("ai_judged")),
                "judgments": derived.get("judgments"),
                "campaign": derived.get("campaign") or {},
                "candidate_is_deployed": candidate == closure.checkpoint.id,
                "sentence": candidate_sentence(derived, closure.checkpoint),
                "rows": [
                    {
                        "label": _checkpoint_label(row),
                        "role": row.get("role"),
                        "rating": row.get("rating"),
                        "low": row.get("low"),
                        "high": row.get("high"),
                        "vs_reference": row.get("vs_reference") or {},
                        "candidate": row.get("model") == candidate,
                        "deployed": row.get("model") == closure.checkpoint.id,
                    }
                    for row in derived.get("ratings") or []
                ],
                "plot": name.removesuffix(".png"),
            }
        )
    return entries, figures


def flags(closure: Closure) -> dict[str, Any]:
    """The flags of every checkpoint of the series (the deployed one first) and the waivers of the rules
    that let a flagged or non-candidate checkpoint be approved."""
    series = sorted(closure.series, key=lambda r: r.id != closure.checkpoint.id)
    return {
        "checkpoints": [
            {"record": r, "deployed": r.id == closure.checkpoint.id, "flags": closure.flags.get(r.id, [])}
            for r in series
        ],
        "waivers": [w for w in closure.of_kind("waiver") if w.spec.get("rule") in CHOICE_RULES],
    }


def warnings(closure: Closure) -> list[str]:
    """What an approver must not miss: the deployed checkpoint's flags and a deployment of a checkpoint
    that a campaign did not name as its series' candidate."""
    deployed = closure.checkpoint
    out = [
        f"FLAGGED {flag['flag']}: the deployed {deployed.kind} {deployed.name} v{deployed.version}: {flag['detail']}"
        for flag in closure.flags.get(deployed.id, [])
    ]
    for evaluation in campaign_evaluations(closure):
        candidate = evaluation.derived.get("candidate")
        if candidate and candidate.get("model") != deployed.id:
            who = "an AI judge" if evaluation.derived.get("ai_judged") else "human evaluators"
            out.append(
                f"NOT THE CANDIDATE: {deployed.name} v{deployed.version} is deployed, but {who} "
                f"(evaluation {evaluation.name} v{evaluation.version}) rated {_checkpoint_label(candidate)} highest"
            )
    return out
