"""The figures of a campaign evaluation, computed from plain lists: win rates against the reference with
Wilson intervals, Bradley-Terry ratings with bootstrap intervals, evaluator agreement, position bias,
and the deployment candidate they point to.

Everything here is deterministic in its inputs (the bootstrap draws from a generator seeded by the
campaign's seed), because the figures are computed once, at registration, and the record's digest
covers them. A figure that the judgments cannot support is None with the reason, never a guess.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from itertools import combinations
from typing import Any, cast

import evalica
import numpy as np

from app.qc.agreement import kappa_from_confusion
from app.qc.binomial import binomial_two_sided_p

Z_95 = 1.959963984540054  # the standard normal's 97.5% quantile
RESAMPLES = 500
# one drawn comparison added between every two models the judgments compare: without it a model that
# won (or lost) every comparison has no finite maximum-likelihood rating, and neither has a bootstrap
# resample where that happens; with tens of judgments per pair its pull towards 0 is small
PRIOR_TIES = 1.0
_CHOICES = {"a": evalica.Winner.X, "b": evalica.Winner.Y, "tie": evalica.Winner.Draw}
_CODES = {"a": 0, "b": 1, "tie": 2}
DIGITS = 6


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), DIGITS)


def wilson_interval(successes: float, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion `successes / n` (Wilson 1927, "Probable inference, the law
    of succession, and statistical inference", JASA 22): the roots in p of
    ``(p_hat - p)^2 = z^2 p (1 - p) / n``, i.e. ``(p_hat + z^2/2n +- z sqrt(p_hat(1-p_hat)/n + z^2/4n^2))
    / (1 + z^2/n)``. `successes` may be fractional (a tie counted as half a win). None when n = 0."""
    if n <= 0:
        return None
    p = successes / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    denominator = 1 + z2 / n
    return max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator)


def win_rate(wins: int, losses: int, ties: int) -> dict[str, Any] | None:
    """A model's record against another: its win rate with ties counted as half a win (each tie is a
    judgment that neither response is better, worth half of one), and the 95% Wilson interval of that
    rate over all n = wins + losses + ties judgments. None when nothing was judged."""
    n = wins + losses + ties
    interval = wilson_interval(wins + ties / 2, n)
    if interval is None:
        return None
    return {
        "wins": wins,
        "losses": losses,
        "ties": ties,
        "n": n,
        "win_rate": _rounded((wins + ties / 2) / n),
        "low": _rounded(interval[0]),
        "high": _rounded(interval[1]),
    }


def bootstrap_seed(seed: int) -> int:
    """The bootstrap generator's seed, derived from the campaign's (any int, negative included)."""
    return int.from_bytes(hashlib.sha256(f"bradley-terry:{seed}".encode()).digest()[:8], "big")


def _with_prior(pairs: Sequence[tuple[str, str]]) -> Callable[..., evalica.BradleyTerryResult]:
    """`evalica.bradley_terry` with `PRIOR_TIES` drawn comparisons added for each of `pairs`, added again
    to every bootstrap resample (the resample draws judgments, never the prior)."""
    xs_prior = [x for x, _ in pairs]
    ys_prior = [y for _, y in pairs]

    def method(
        xs: Collection[str],
        ys: Collection[str],
        winners: Collection[evalica.Winner],
        index: Any = None,
        weights: Collection[float] | None = None,
        **kw: Any,
    ) -> evalica.BradleyTerryResult:
        # a resample's winners arrive as numpy integers, its weights as an array
        own = [1.0] * len(xs) if weights is None else [float(w) for w in weights]
        return evalica.bradley_terry(
            [*xs, *xs_prior],
            [*ys, *ys_prior],
            [*(evalica.Winner(int(w)) for w in winners), *[evalica.Winner.Draw] * len(pairs)],
            index=index,
            weights=[*own, *[PRIOR_TIES] * len(pairs)],
            tolerance=1e-9,
            limit=10_000,
            **kw,
        )

    return method


def _connected(reference: str, comparisons: Sequence[tuple[str, str, str]]) -> set[str]:
    """The models linked to `reference` by a chain of judged comparisons."""
    neighbours: dict[str, set[str]] = defaultdict(set)
    for left, right, _ in comparisons:
        neighbours[left].add(right)
        neighbours[right].add(left)
    seen, todo = {reference}, [reference]
    while todo:
        for other in neighbours[todo.pop()] - seen:
            seen.add(other)
            todo.append(other)
    return seen if neighbours[reference] else set()


def bradley_terry_ratings(
    comparisons: Sequence[tuple[str, str, str]], reference: str, seed: int, n_resamples: int = RESAMPLES
) -> dict[str, dict[str, float | None]]:
    """Bradley-Terry ratings (Bradley and Terry 1952; fitted by `evalica`'s MM iteration, Newman 2023)
    of every model linked to `reference` by judged comparisons `(left, right, choice)`, a tie counted
    as half a win for each side, with `PRIOR_TIES` drawn comparisons per compared pair.

    A rating is on the natural-log scale with the reference at 0: ``P(i beats j) = 1 / (1 + exp(r_j -
    r_i))``. Its 95% interval is the percentile interval of ``r_i`` over `n_resamples` bootstrap
    resamples of the judgments (`evalica.bootstrap`, which resamples through `scipy.stats.bootstrap`, in
    process), drawn from a generator seeded by `bootstrap_seed(seed)`; percentile rather than BCa
    because the interval is of the difference to the reference, taken from the bootstrap distribution,
    and because BCa's jackknife degenerates on the few, often tied, judgments of a small campaign. The
    interval is None with fewer than two judgments. Models not linked to the reference are left out."""
    linked = _connected(reference, comparisons)
    judged = [c for c in comparisons if c[0] in linked]
    if not judged:
        return {}
    pairs = sorted({(min(left, right), max(left, right)) for left, right, _ in judged})
    xs = [left for left, _, _ in judged]
    ys = [right for _, right, _ in judged]
    winners = [_CHOICES[choice] for _, _, choice in judged]
    method = _with_prior(pairs)
    scores = method(xs, ys, winners).scores
    ratings = np.log(scores) - math.log(scores[reference])
    intervals: dict[str, tuple[float, float]] = {}
    if len(judged) >= 2:
        result = evalica.bootstrap(
            # evalica's results are frozen dataclasses, which mypy does not take for its Result protocol
            cast("evalica.RankingMethod[str]", method),
            xs,
            ys,
            winners,
            n_resamples=n_resamples,
            bootstrap_method="percentile",
            random_state=np.random.default_rng(bootstrap_seed(seed)),
        )
        logs = np.log(result.distribution)
        relative = logs.sub(logs[reference], axis=0)
        for model in relative.columns:
            low, high = np.quantile(relative[model].to_numpy(), [0.025, 0.975])
            intervals[model] = (float(low), float(high))
    return {
        str(model): {
            "rating": _rounded(float(ratings[model])),
            "low": _rounded(intervals[model][0]) if model in intervals else None,
            "high": _rounded(intervals[model][1]) if model in intervals else None,
        }
        for model in ratings.index
    }


def position_bias(choices: Iterable[str]) -> dict[str, Any]:
    """How often the left response (Response A) was chosen among judgments that chose one: `left_share`
    over `n` non-tie judgments, and the exact two-sided binomial p-value against 1/2 (`app.qc.binomial`).
    Tasks' left/right order is drawn at random, so a small p-value points at the evaluators, not the
    models."""
    counts = Counter(choices)
    n = counts["a"] + counts["b"]
    return {
        "left_share": _rounded(counts["a"] / n) if n else None,
        "n": n,
        "p_value": _rounded(binomial_two_sided_p(counts["a"], n)),
    }


def agreement(judgments: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Agreement between evaluators on the tasks two or more of them judged.

    Every task shows all its evaluators the same left/right order, so choices compare as given.
    `pairwise_agreement` is the share of agreeing (evaluator, evaluator) pairs over those tasks (a tie
    agrees only with a tie); per evaluator pair with at least two tasks in common, `kappa` is Cohen's
    kappa over a/b/tie (`app.qc.agreement.kappa_from_confusion`; None where undefined), and
    `kappa_mean` their mean."""
    by_task: dict[str, dict[str, str]] = defaultdict(dict)
    for judgment in judgments:
        by_task[judgment["task_id"]][judgment["evaluator"]] = judgment["choice"]
    shared = [choices for choices in by_task.values() if len(choices) >= 2]
    agreeing = total = 0
    confusion: dict[tuple[str, str], np.ndarray] = defaultdict(lambda: np.zeros((3, 3), dtype=np.int64))
    for choices in shared:
        for first, second in combinations(sorted(choices), 2):
            total += 1
            agreeing += choices[first] == choices[second]
            confusion[(first, second)][_CODES[choices[first]], _CODES[choices[second]]] += 1
    kept = sorted(pair for pair, matrix in confusion.items() if matrix.sum() >= 2)
    kappas = kappa_from_confusion(np.stack([confusion[pair] for pair in kept])) if kept else np.zeros(0)
    by_pair = [
        {
            "evaluators": list(pair),
            "n": int(confusion[pair].sum()),
            "agreement": _rounded(float(np.trace(confusion[pair]) / confusion[pair].sum())),
            "kappa": None if math.isnan(kappa) else _rounded(kappa),
        }
        for pair, kappa in zip(kept, kappas.tolist(), strict=True)
    ]
    defined = [float(kappa) for kappa in kappas.tolist() if not math.isnan(kappa)]
    return {
        "tasks_multiply_judged": len(shared),
        "evaluator_pairs": total,
        "pairwise_agreement": _rounded(agreeing / total) if total else None,
        "kappa_mean": _rounded(sum(defined) / len(defined)) if defined else None,
        "pairs": by_pair,
    }


def _label(rating: dict[str, Any]) -> str:
    step = f" (step {rating['step']})" if rating.get("step") is not None else ""
    return f"{rating['name']} v{rating['version']}{step}"


def _overlap(first: dict[str, Any], second: dict[str, Any]) -> bool:
    """Whether two rating intervals overlap; a missing interval cannot tell the two apart either."""
    if None in (first["low"], first["high"], second["low"], second["high"]):
        return True
    return bool(first["low"] <= second["high"] and second["low"] <= first["high"])


def _advice(best: dict[str, Any], runner_up: dict[str, Any] | None, overlaps: bool, earlier: bool) -> str:
    if runner_up is None:
        advice = f"{_label(best)} is the only rated checkpoint of the series"
    elif not overlaps:
        advice = f"{_label(best)} is rated highest, and its interval clears that of {_label(runner_up)}, the next"
    elif earlier:
        advice = (
            f"{_label(best)} is rated highest, but its interval overlaps that of the earlier {_label(runner_up)}: "
            "prefer the earlier checkpoint, or collect more judgments to separate them"
        )
    else:
        advice = (
            f"{_label(best)} is rated highest, but its interval overlaps that of {_label(runner_up)}: "
            "collect more judgments to separate them"
        )
    if best["low"] is not None and best["low"] <= 0:
        advice += "; its interval includes the reference's rating (0), so it is not shown to beat the reference"
    return advice


def candidate(ratings: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The deployment candidate among `ratings` (in series order, reference first): the checkpoint, never
    the reference, with the highest rating (the earlier one on a tie), the next-best checkpoint, whether
    their intervals overlap, and what to do about it. None when no checkpoint is rated."""
    rated = [(i, r) for i, r in enumerate(ratings) if r["role"] == "checkpoint" and r["rating"] is not None]
    if not rated:
        return None
    ranked = sorted(rated, key=lambda item: (-item[1]["rating"], item[0]))
    (best_at, best), following = ranked[0], ranked[1:]
    runner_up = following[0][1] if following else None
    overlaps = runner_up is not None and _overlap(best, runner_up)
    earlier = bool(following) and following[0][0] < best_at
    figures = ("model", "version", "step", "rating", "low", "high")
    return {
        **{key: best[key] for key in (*figures[:1], "name", *figures[1:])},
        "next": {key: runner_up[key] for key in figures} if runner_up is not None else None,
        "overlaps_next": overlaps,
        "advice": _advice(best, runner_up, overlaps, earlier),
    }


def _record_against_reference(
    model: str, reference: str, comparisons: Sequence[tuple[str, str, str]]
) -> dict[str, Any] | None:
    """`win_rate` of `model` over the judgments of tasks that pit it against `reference`."""
    counts: Counter[str] = Counter()
    for left, right, choice in comparisons:
        if {left, right} == {model, reference}:
            side = "a" if left == model else "b"
            counts["tie" if choice == "tie" else "win" if choice == side else "loss"] += 1
    return win_rate(counts["win"], counts["loss"], counts["tie"])


def _unrated_reason(model: str, comparisons: Sequence[tuple[str, str, str]]) -> str:
    if any(model in (left, right) for left, right, _ in comparisons):
        return "no chain of judged comparisons links it to the reference"
    return "no judgment compares it"


def campaign_figures(
    models: Sequence[dict[str, Any]],
    tasks: Sequence[dict[str, Any]],
    judgments: Sequence[dict[str, Any]],
    seed: int,
) -> dict[str, Any]:
    """The derived figures of a campaign evaluation: `models` as the campaign derived them (reference
    first), its `tasks` (identities inside), and normalised `judgments` whose task ids are all tasks'.

    Per model a Bradley-Terry rating over every judgment and, for a checkpoint, its record against the
    reference; then the candidate, evaluator agreement and position bias."""
    by_id = {task["task_id"]: task for task in tasks}
    comparisons = [
        (by_id[j["task_id"]]["left_model"], by_id[j["task_id"]]["right_model"], j["choice"]) for j in judgments
    ]
    [reference] = [model["id"] for model in models if model["role"] == "reference"]
    fitted = bradley_terry_ratings(comparisons, reference, seed)
    ratings = []
    for model in models:
        rating = fitted.get(model["id"], {"rating": None, "low": None, "high": None})
        ratings.append(
            {
                "model": model["id"],
                **{key: model.get(key) for key in ("name", "version", "step", "role")},
                **rating,
                "reason": None if rating["rating"] is not None else _unrated_reason(model["id"], comparisons),
                "vs_reference": None
                if model["role"] == "reference"
                else _record_against_reference(model["id"], reference, comparisons),
            }
        )
    return {
        "judgments": len(judgments),
        "evaluators": sorted({j["evaluator"] for j in judgments}),
        "ratings": ratings,
        "candidate": candidate(ratings),
        "agreement": agreement(judgments),
        "position_bias": position_bias(j["choice"] for j in judgments),
    }
