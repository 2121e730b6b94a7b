"""Exact two-sided binomial test against p = 1/2, without scipy."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

# scipy.stats.binomtest counts the far tail's terms that are <= pmf(k) * (1 + 1e-7).
_RELATIVE_TOLERANCE = math.log1p(1e-7)


def _log_pmf_from_mode(n: int) -> npt.NDArray[np.float64]:
    """``log pmf(j) - log pmf(floor(n/2))`` for j = 0..n under Binomial(n, 1/2).

    Built outward from the mode with ``pmf(i) / pmf(i-1) = (n - i + 1) / i``, so the partial sums stay
    small where the terms matter (no lgamma of large arguments, whose absolute error would swamp 1e-9),
    and mirrored (``pmf(j) = pmf(n - j)``) so both tails are bitwise symmetric.
    """
    mode = n // 2
    i = np.arange(1, mode + 1, dtype=np.float64)
    step = np.log1p((n - 2.0 * i + 1.0) / i)  # log pmf(i) - log pmf(i - 1) > 0 below the mode
    left = np.empty(mode + 1, dtype=np.float64)
    left[mode] = 0.0
    left[:mode] = -np.cumsum(step[::-1])[::-1]
    return np.concatenate([left, left[: n - mode][::-1]])


def binomial_two_sided_p(k: int, n: int) -> float | None:
    """Two-sided exact binomial test p-value of `k` successes in `n` trials against p = 1/2.

    The two-sided p-value as the total probability, under Binomial(n, 1/2), of every outcome at most as
    likely as the one observed (the convention of R's ``binom.test`` and ``scipy.stats.binomtest``;
    Agresti, "Categorical Data Analysis", on exact small-sample tests). Replicates scipy's rule
    exactly: ``k = n/2`` gives 1; for ``k < n/2``, ``P(X <= k)`` plus the terms ``j >= ceil(n/2)``
    with ``pmf(j) <= pmf(k) (1 + 1e-7)``; for ``k > n/2`` the mirror image; capped at 1. The pmf is
    normalised by its own sum rather than by ``2^n``, computed in log space relative to the mode.
    ``None`` when ``n = 0``.
    """
    if n == 0:
        return None
    if not 0 <= k <= n:
        raise ValueError(f"k must be in [0, n], got k={k}, n={n}")
    if 2 * k == n:
        return 1.0
    log_pmf = _log_pmf_from_mode(n)
    weights = np.exp(log_pmf)
    pmf = weights / weights.sum()
    j = np.arange(n + 1)
    unlikely = log_pmf <= log_pmf[k] + _RELATIVE_TOLERANCE
    if 2 * k < n:
        own_tail, far_side = j <= k, j >= n - n // 2
    else:
        own_tail, far_side = j >= k, j <= n // 2
    return min(1.0, float(pmf[own_tail | (far_side & unlikely)].sum()))
