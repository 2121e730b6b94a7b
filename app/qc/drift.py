"""Drift of a batch's QC figures against the project's earlier batches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Output key -> path of the figure inside a qc dict.
_FIGURES: dict[str, tuple[str, ...]] = {
    "kappa_mean_delta": ("cohen_kappa", "mean"),
    "alpha_delta": ("krippendorff_alpha",),
    "tie_rate_delta": ("tie_rate",),
    "position_share_first_delta": ("position_bias", "share_first"),
}


def _figure(qc: Mapping[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = qc
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def drift(current: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Each figure of this batch minus the mean of the same figure over the earlier batches.

    ``delta_f = f(current) - mean{f(h) : h in history, f(h) defined}``, for f = mean pairwise kappa,
    Krippendorff's alpha, tie rate and position share_first: a plain shift-in-mean check, so that a
    vendor whose agreement slides batch after batch is visible before it crosses a gate. ``None``
    where the current figure or every historical one is undefined; ``batches = len(history)``.
    """
    result: dict[str, Any] = {"batches": len(history)}
    for name, path in _FIGURES.items():
        now = _figure(current, path)
        past = [value for value in (_figure(qc, path) for qc in history) if value is not None]
        result[name] = now - sum(past) / len(past) if now is not None and past else None
    return result
