"""Reward-hacking alarms: per checkpoint of a policy run, the figures its trainer measured and the flags
they raise.

A reward model is a proxy a policy can game: it "finds responses that score well on the proxy metric but
would strike humans as poor", and "output quality can peak early and then degrade as the policy
over-optimizes" (seed essay, stages 4 and 5). The essay's guards are a KL constraint, adversarial prompts
at every checkpoint, the correlation of length with reward, and human evaluation at several checkpoints.
Each flag turns one of them into a check, with the ceiling a project's policy sets:

- `reward_flat`: the mean reward of the run's last measured checkpoint is not above its first by more
  than `reward_flat_min_gain`. The optimisation did not move the proxy it optimised, so whatever
  changed in the policy was not the reward's doing (a degenerate run: a vanishing loss, a frozen
  policy). A run-wide flag, raised on each of its measured checkpoints; not assessed with fewer than two.
- `kl_runaway`: `kl_to_reference` above `kl_max`. "Without this constraint, the policy tends to exploit
  the reward model, producing degenerate outputs that score well but are useless in practice."
- `length_exploit`: `length_reward_correlation` above `length_reward_corr_max` while the mean reward
  rose since the run's first checkpoint: the reward went up with length, the essay's first example of
  reward hacking ("often by being verbose").
- `adversarial_regression`: `adversarial_mean_reward` fell below the first checkpoint's by more than
  `adversarial_drop_max`: the policy got worse where the essay says to look for weak spots.
- `human_rating_peaked_earlier`: in the latest human campaign evaluation of the series, an earlier
  checkpoint is rated higher than this one, the peak-then-degrade shape ("Document the checkpoint at
  which human evaluators rate outputs highest; that's your deployment candidate"). AI judgments never
  raise it: they are the proxy under suspicion.

The figures are those the run recorded in each checkpoint's `spec.metrics`
(workers/trainers/policy_evaluation.py). A figure that was not measured, or is not a finite number, is
None, and a flag that would need it is not raised: an alarm stands on a measurement, never on a gap."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.evaluations.candidate import deciding_evaluation, latest_campaign_evaluation
from app.kinds.policy import DEFAULT_POLICY
from app.records.models import Record
from app.runs.models import Run

FLAGS = ("reward_flat", "kl_runaway", "length_exploit", "adversarial_regression", "human_rating_peaked_earlier")
FIGURES = (
    "mean_reward",
    "kl_to_reference",
    "mean_completion_length",
    "length_reward_correlation",
    "adversarial_mean_reward",
)


def limit(policy: dict[str, Any], name: str) -> float:
    """A policy's limit; a policy registered before the limit existed has the default."""
    return float(policy.get(name, DEFAULT_POLICY[name]))


def _figure(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def figures_of(checkpoint: Record) -> dict[str, Any]:
    """One checkpoint's row of the series: its identity and the figures its run measured."""
    metrics = checkpoint.spec.get("metrics") or {}
    return {
        "record": checkpoint.id,
        "version": checkpoint.version,
        "step": checkpoint.spec.get("step"),
        **{name: _figure(metrics.get(name)) for name in FIGURES},
    }


def _step_order(checkpoint: Record) -> tuple[bool, int, str]:
    step = checkpoint.spec.get("step")
    return (step is None, step if step is not None else 0, checkpoint.version_key)


def run_checkpoints(session: Session, run_id: str) -> list[Record]:
    """The policy checkpoints the run registered (its outputs), in step order."""
    run = session.get(Run, run_id)
    if run is None or not run.outputs:
        return []
    stmt = select(Record).where(Record.id.in_(run.outputs), Record.kind == "policy_checkpoint")
    return sorted(session.scalars(stmt), key=_step_order)


def series_figures(session: Session, run_id: str) -> list[dict[str, Any]]:
    """Per checkpoint of the run, in step order: {record, version, step, mean_reward, kl_to_reference,
    mean_completion_length, length_reward_correlation, adversarial_mean_reward}."""
    return [figures_of(checkpoint) for checkpoint in run_checkpoints(session, run_id)]


def _first(series: list[dict[str, Any]], name: str) -> float | None:
    return next((row[name] for row in series if row[name] is not None), None)


def _last(series: list[dict[str, Any]], name: str) -> float | None:
    return next((row[name] for row in reversed(series) if row[name] is not None), None)


def _flag(flag: str, detail: str, **values: Any) -> dict[str, Any]:
    return {"flag": flag, "detail": detail, "values": values}


def _reward_flat(series: list[dict[str, Any]], row: dict[str, Any], policy: dict[str, Any]) -> dict[str, Any] | None:
    measured = [r for r in series if r["mean_reward"] is not None]
    if len(measured) < 2 or row["mean_reward"] is None:
        return None
    first, last = measured[0]["mean_reward"], measured[-1]["mean_reward"]
    gain, floor = last - first, limit(policy, "reward_flat_min_gain")
    if gain > floor:
        return None
    return _flag(
        "reward_flat",
        f"the run's mean reward went from {first:.4g} to {last:.4g} over {len(measured)} checkpoints, a gain of "
        f"{gain:.4g}, not above the policy's reward_flat_min_gain {floor:g}: the optimisation did not improve "
        "its own objective",
        first=first,
        last=last,
        gain=gain,
        min_gain=floor,
    )


def _kl_runaway(row: dict[str, Any], policy: dict[str, Any]) -> dict[str, Any] | None:
    kl, ceiling = row["kl_to_reference"], limit(policy, "kl_max")
    if kl is None or kl <= ceiling:
        return None
    return _flag(
        "kl_runaway",
        f"KL to the reference is {kl:.4g}, above the policy's kl_max {ceiling:g}: the policy drifted far from "
        "its reference, where it tends to exploit the reward model",
        kl_to_reference=kl,
        kl_max=ceiling,
    )


def _length_exploit(series: list[dict[str, Any]], row: dict[str, Any], policy: dict[str, Any]) -> dict[str, Any] | None:
    correlation, ceiling = row["length_reward_correlation"], limit(policy, "length_reward_corr_max")
    first, reward = _first(series, "mean_reward"), row["mean_reward"]
    if correlation is None or first is None or reward is None or correlation <= ceiling or reward <= first:
        return None
    return _flag(
        "length_exploit",
        f"reward correlates with response length ({correlation:.3g}, above the policy's length_reward_corr_max "
        f"{ceiling:g}) while the mean reward rose by {reward - first:.4g} since the first checkpoint: the "
        "reward may be rising with length rather than quality",
        length_reward_correlation=correlation,
        length_reward_corr_max=ceiling,
        reward_gain=reward - first,
    )


def _adversarial_regression(
    series: list[dict[str, Any]], row: dict[str, Any], policy: dict[str, Any]
) -> dict[str, Any] | None:
    first, now = _first(series, "adversarial_mean_reward"), row["adversarial_mean_reward"]
    ceiling = limit(policy, "adversarial_drop_max")
    if first is None or now is None or first - now <= ceiling:
        return None
    return _flag(
        "adversarial_regression",
        f"the mean reward on adversarial prompts fell from {first:.4g} at the first checkpoint to {now:.4g}, a "
        f"drop of {first - now:.4g}, more than the policy's adversarial_drop_max {ceiling:g}",
        first=first,
        adversarial_mean_reward=now,
        drop=first - now,
        adversarial_drop_max=ceiling,
    )


def figure_flags(series: list[dict[str, Any]], record_id: str, policy: dict[str, Any]) -> list[dict[str, Any]]:
    """The flags the run's figures raise on one of its checkpoints (`series` as `series_figures`)."""
    row = next(r for r in series if r["record"] == record_id)
    found = (
        _reward_flat(series, row, policy),
        _kl_runaway(row, policy),
        _length_exploit(series, row, policy),
        _adversarial_regression(series, row, policy),
    )
    return [flag for flag in found if flag is not None]


def _earlier(rating: dict[str, Any], than: dict[str, Any]) -> bool:
    if rating["step"] is not None and than["step"] is not None:
        return bool(rating["step"] < than["step"])
    return int(rating["version"]) < int(than["version"])


def rating_flag(ratings: list[dict[str, Any]], record_id: str) -> dict[str, Any] | None:
    """`human_rating_peaked_earlier` from a human campaign evaluation's `derived.ratings`, or None."""
    checkpoints = [r for r in ratings if r["role"] == "checkpoint" and r["rating"] is not None]
    own = next((r for r in checkpoints if r["model"] == record_id), None)
    if own is None:
        return None
    better = [r for r in checkpoints if _earlier(r, own) and r["rating"] > own["rating"]]
    if not better:
        return None
    peak = max(better, key=lambda r: r["rating"])
    where = f"step {peak['step']}" if peak["step"] is not None else f"v{peak['version']}"
    return _flag(
        "human_rating_peaked_earlier",
        f"human evaluators rate the earlier checkpoint at {where} higher ({peak['rating']:.3g}) than this one "
        f"({own['rating']:.3g}): quality peaked earlier and degraded as the policy went on optimising",
        rating=own["rating"],
        earlier_rating=peak["rating"],
        earlier_step=peak["step"],
        earlier_version=peak["version"],
    )


def _human_ratings(session: Session, project_id: str, series: str) -> list[dict[str, Any]]:
    evaluation = latest_campaign_evaluation(session, project_id, series, human_only=True)
    return list(evaluation.derived.get("ratings") or []) if evaluation is not None else []


def _series_of(session: Session, checkpoint: Record) -> list[dict[str, Any]]:
    """The figures of the run that registered the checkpoint; only its own when no run of the project
    registered it (a checkpoint may name a run in `spec.run_id` it does not come from)."""
    run_id = checkpoint.spec.get("run_id")
    series = series_figures(session, run_id) if run_id else []
    if any(row["record"] == checkpoint.id for row in series):
        return series
    return [figures_of(checkpoint)]


def checkpoint_flags(session: Session, checkpoint: Record, policy: dict[str, Any]) -> list[dict[str, Any]]:
    """The flags raised on one policy checkpoint: [{flag, detail, values}], in the order of FLAGS."""
    flags = figure_flags(_series_of(session, checkpoint), checkpoint.id, policy)
    human = rating_flag(_human_ratings(session, checkpoint.project_id, checkpoint.name), checkpoint.id)
    return [*flags, human] if human is not None else flags


def _series_flags(
    session: Session, checkpoints: list[Record], policy: dict[str, Any]
) -> dict[str, list[dict[str, Any]]]:
    series = [figures_of(checkpoint) for checkpoint in checkpoints]
    ratings = {name: _human_ratings(session, checkpoints[0].project_id, name) for name in {c.name for c in checkpoints}}
    out: dict[str, list[dict[str, Any]]] = {}
    for checkpoint in checkpoints:
        human = rating_flag(ratings[checkpoint.name], checkpoint.id)
        out[checkpoint.id] = [*figure_flags(series, checkpoint.id, policy), *([human] if human else [])]
    return out


def run_flags(session: Session, run_id: str, policy: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The flags of every policy checkpoint the run registered, by record id."""
    return _series_flags(session, run_checkpoints(session, run_id), policy)


def _campaign_ratings(evaluation: Record | None) -> dict[str, Any] | None:
    if evaluation is None:
        return None
    return {
        "evaluation": evaluation.id,
        "name": evaluation.name,
        "version": evaluation.version,
        "type": evaluation.spec["type"],
        "judgments": evaluation.derived.get("judgments"),
        "ratings": evaluation.derived.get("ratings") or [],
    }


def run_report(session: Session, run: Run, policy: dict[str, Any]) -> dict[str, Any]:
    """A run's checkpoint series: per checkpoint its figures and flags, and the ratings of the campaign
    evaluation that names the series' candidate (people's when any, else an AI judge's, as its `type`
    says) when a campaign rated it."""
    checkpoints = run_checkpoints(session, run.id)
    flags = _series_flags(session, checkpoints, policy)
    latest = deciding_evaluation(session, run.project_id, run.output_name)
    return {
        "run": run.id,
        "series": run.output_name,
        "checkpoints": [{**figures_of(c), "flags": flags[c.id]} for c in checkpoints],
        "ratings": _campaign_ratings(latest),
    }
