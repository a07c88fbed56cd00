"""Confidence intervals, paired comparisons and verdicts for eval scores.

Runtime dependencies are numpy and scipy only. Every random draw comes from a
``numpy.random.Generator`` seeded by the caller's ``seed``; nothing touches the
global RNG, so every function is deterministic given its arguments.

Methods (see docs/comparison-stats.md for how to read them):

* single accuracy, independent units: Wilson score interval;
* single accuracy with repeats (clusters): percentile cluster bootstrap;
* paired A/B, 0/1 scores, one run per case: exact McNemar test (two-sided
  binomial test on the discordant pairs) and Newcombe's hybrid-score interval
  for the difference of paired proportions (Newcombe 1998, method 10);
* paired A/B with repeats or fractional scores: percentile (cluster) bootstrap
  of the mean difference and a sign-flip permutation test over cases (exact for
  0/1 scores and for up to 14 cases, else Monte Carlo with ``n_resamples`` draws);
* many comparisons in one run: Holm's step-down adjustment of their p-values;
* what n cases can detect: the minimum detectable paired difference at 80% power
  (Connor 1987 normal approximation for paired proportions).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from statistics import NormalDist
from typing import Any

import numpy as np

__all__ = [
    "AccuracySummary",
    "Label",
    "PairedResult",
    "accuracy_summary",
    "adjusted_label",
    "adjusted_verdict",
    "bootstrap_mean_ci",
    "consistency",
    "holm_adjust",
    "min_detectable_difference",
    "paired_comparison",
    "verdict",
    "wilson_interval",
]


class Label(StrEnum):
    """The direction a paired comparison settles on."""

    BETTER = "better"
    WORSE = "worse"
    NO_DIFFERENCE = "no detectable difference"


NO_DIFFERENCE = Label.NO_DIFFERENCE
POWER = 0.8

# Upper bound on the number of elements drawn per bootstrap chunk (keeps memory flat).
_CHUNK_ELEMENTS = 2_000_000
# Fractional case differences: enumerate all 2**k sign patterns up to this many cases.
_EXACT_SIGN_FLIP_MAX_CASES = 14


# --------------------------------------------------------------------------- helpers


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")


@functools.lru_cache(maxsize=64)
def _z(confidence: float) -> float:
    return float(NormalDist().inv_cdf(0.5 + confidence / 2.0))


def _sps() -> Any:
    """scipy.stats, imported when a paired comparison needs it (its import costs ~0.5 s)."""
    from scipy import stats

    return stats


def _as_scores(values: Sequence[Any] | np.ndarray, name: str, *, unit: bool) -> np.ndarray:
    arr = np.asarray(values, dtype=float).reshape(-1)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if unit and arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
        raise ValueError(f"{name} must hold 0/1 correctness or scores in [0, 1]")
    return arr


def _cluster_codes(clusters: Sequence[Hashable] | None, n: int) -> tuple[np.ndarray, int]:
    """Integer cluster code per unit (first-appearance order) and the number of clusters."""
    if clusters is None:
        return np.arange(n), n
    labels = list(clusters)
    if len(labels) != n:
        raise ValueError(f"clusters has {len(labels)} labels for {n} values")
    index: dict[Hashable, int] = {}
    codes = np.fromiter((index.setdefault(c, len(index)) for c in labels), dtype=np.int64, count=n)
    return codes, len(index)


def _is_binary(*arrays: np.ndarray) -> bool:
    return all(bool(np.all((a == 0.0) | (a == 1.0))) for a in arrays)


def _bootstrap_ratio_means(
    sums: np.ndarray, counts: np.ndarray | None, n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Bootstrap replicates of sum(sums[idx]) / sum(counts[idx]) with idx drawn with replacement."""
    g = sums.size
    out = np.empty(n_resamples, dtype=float)
    chunk = max(1, min(n_resamples, _CHUNK_ELEMENTS // max(g, 1)))
    for start in range(0, n_resamples, chunk):
        m = min(chunk, n_resamples - start)
        idx = rng.integers(0, g, size=(m, g))
        num = sums[idx].sum(axis=1)
        out[start : start + m] = num / (counts[idx].sum(axis=1) if counts is not None else g)
    return out


def _percentile_ci(boot: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(boot, [tail, 1.0 - tail])
    return float(lo), float(hi)


def _cluster_bootstrap_ci(
    values: np.ndarray,
    codes: np.ndarray,
    n_clusters: int,
    *,
    n_resamples: int,
    confidence: float,
    rng: np.random.Generator,
) -> tuple[float, float]:
    if n_clusters == values.size:  # singleton clusters: plain bootstrap of units
        boot = _bootstrap_ratio_means(values, None, n_resamples, rng)
    else:
        sums = np.bincount(codes, weights=values, minlength=n_clusters)
        counts = np.bincount(codes, minlength=n_clusters).astype(float)
        boot = _bootstrap_ratio_means(sums, counts, n_resamples, rng)
    return _percentile_ci(boot, confidence)


def _sign_flip_pvalue(
    cluster_sums: np.ndarray, n_resamples: int, rng: np.random.Generator
) -> float:
    """Two-sided sign-flip permutation p-value for H0: the per-case difference is symmetric about 0."""
    d = cluster_sums[np.abs(cluster_sums) > 1e-12]
    if d.size == 0:
        return 1.0
    observed = abs(float(d.sum()))
    tol = 1e-9 * max(1.0, observed)
    rounded = np.rint(d)
    if np.all(np.abs(d - rounded) < 1e-9):
        # Integer case sums (0/1 scores): exact null distribution, one convolution per step size.
        dist = np.ones(1)
        steps, counts = np.unique(np.abs(rounded).astype(np.int64), return_counts=True)
        for step, count in zip(steps.tolist(), counts.tolist(), strict=True):
            kernel = np.zeros(2 * step * count + 1)
            kernel[:: 2 * step] = _sps().binom.pmf(np.arange(count + 1), count, 0.5)
            dist = np.clip(np.convolve(dist, kernel), 0.0, None)
        half = (dist.size - 1) // 2
        support = np.abs(np.arange(-half, half + 1))
        return float(min(1.0, dist[support >= round(observed)].sum()))
    if d.size <= _EXACT_SIGN_FLIP_MAX_CASES:  # exact: enumerate every sign pattern
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=d.size)))
        return float(np.mean(np.abs(signs @ d) >= observed - tol))
    hits = 0
    chunk = max(1, min(n_resamples, _CHUNK_ELEMENTS // d.size))
    for start in range(0, n_resamples, chunk):
        m = min(chunk, n_resamples - start)
        signs = rng.integers(0, 2, size=(m, d.size)) * 2.0 - 1.0
        hits += int(np.count_nonzero(np.abs(signs @ d) >= observed - tol))
    return (hits + 1.0) / (n_resamples + 1.0)  # Monte Carlo p-value that is never 0


def _newcombe_paired_ci(
    both: int, a_only: int, b_only: int, neither: int, confidence: float
) -> tuple[float, float]:
    """Newcombe (1998) method-10 interval for p_B - p_A from a paired 2x2 table."""
    n = both + a_only + b_only + neither
    p_a, p_b = (both + a_only) / n, (both + b_only) / n
    l_a, u_a = wilson_interval(both + a_only, n, confidence)
    l_b, u_b = wilson_interval(both + b_only, n, confidence)
    margins = (both + a_only) * (b_only + neither) * (both + b_only) * (a_only + neither)
    phi = 0.0
    if margins > 0:
        cross = both * neither - a_only * b_only
        if cross > n / 2.0:
            phi = (cross - n / 2.0) / math.sqrt(margins)
        elif cross < 0:
            phi = cross / math.sqrt(margins)
    diff = p_b - p_a
    lower_sq = (p_b - l_b) ** 2 - 2.0 * phi * (p_b - l_b) * (u_a - p_a) + (u_a - p_a) ** 2
    upper_sq = (u_b - p_b) ** 2 - 2.0 * phi * (u_b - p_b) * (p_a - l_a) + (p_a - l_a) ** 2
    low = diff - math.sqrt(max(lower_sq, 0.0))
    high = diff + math.sqrt(max(upper_sq, 0.0))
    return max(-1.0, low), min(1.0, high)


# --------------------------------------------------------------------------- public API


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (nan, nan) when n == 0."""
    _check_confidence(confidence)
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return (math.nan, math.nan)
    z = _z(confidence)
    p = successes / n
    z2n = z * z / n
    denom = 1.0 + z2n
    centre = (p + z2n / 2.0) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


def bootstrap_mean_ci(
    values: Sequence[float] | np.ndarray,
    clusters: Sequence[Hashable] | None = None,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean, resampling whole clusters when clusters are given."""
    _check_confidence(confidence)
    if n_resamples < 1:
        raise ValueError("n_resamples must be >= 1")
    arr = _as_scores(values, "values", unit=False)
    if arr.size == 0:
        return (math.nan, math.nan)
    codes, n_clusters = _cluster_codes(clusters, arr.size)
    rng = np.random.default_rng(seed)
    return _cluster_bootstrap_ci(
        arr, codes, n_clusters, n_resamples=n_resamples, confidence=confidence, rng=rng
    )


@dataclass(frozen=True)
class AccuracySummary:
    """Accuracy of one variant with its confidence interval."""

    n: int
    successes: int | float
    accuracy: float
    ci_low: float
    ci_high: float
    method: str


def accuracy_summary(
    correct: Sequence[bool | float] | np.ndarray,
    clusters: Sequence[Hashable] | None = None,
    *,
    confidence: float = 0.95,
    seed: int = 0,
    n_resamples: int = 2000,
) -> AccuracySummary:
    """Accuracy with a Wilson interval, or a cluster-bootstrap interval when units repeat."""
    _check_confidence(confidence)
    arr = _as_scores(correct, "correct", unit=True)
    n = int(arr.size)
    codes, n_clusters = _cluster_codes(clusters, n)
    binary = _is_binary(arr)
    total = float(arr.sum())
    successes: int | float = int(round(total)) if binary else total
    if n == 0:
        return AccuracySummary(0, 0, math.nan, math.nan, math.nan, "wilson")
    accuracy = total / n
    if n_clusters == n and binary:
        low, high = wilson_interval(int(successes), n, confidence)
        return AccuracySummary(n, successes, accuracy, low, high, "wilson")
    method = "bootstrap" if n_clusters == n else "cluster-bootstrap"
    low, high = _cluster_bootstrap_ci(
        arr,
        codes,
        n_clusters,
        n_resamples=n_resamples,
        confidence=confidence,
        rng=np.random.default_rng(seed),
    )
    return AccuracySummary(n, successes, accuracy, low, high, method)


@dataclass(frozen=True)
class PairedResult:
    """Paired comparison of variant B against variant A on the same cases (diff = B - A)."""

    n: int
    n_clusters: int
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    wins: int
    losses: int
    ties: int
    method: str
    verdict: str
    label: str
    confidence: float = 0.95
    alpha: float = 0.05
    discordance: float = math.nan


def adjusted_label(ci_low: float, ci_high: float, p_value: float, alpha: float = 0.05) -> Label:
    """Better or worse when p < alpha and the interval excludes 0 on that side, else no detectable difference."""
    if not (math.isfinite(ci_low) and math.isfinite(ci_high) and math.isfinite(p_value)):
        return Label.NO_DIFFERENCE
    if p_value < alpha and ci_low > 0.0:
        return Label.BETTER
    if p_value < alpha and ci_high < 0.0:
        return Label.WORSE
    return Label.NO_DIFFERENCE


def _label(result: PairedResult) -> Label:
    return adjusted_label(result.ci_low, result.ci_high, result.p_value, result.alpha)


def _format_p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3g}"


def verdict(result: PairedResult) -> str:
    """Plain-words verdict for B vs A: 'better (+12.5 pts, p=0.003)', 'worse (...)' or 'no detectable difference at n=48'."""
    label = _label(result)
    if label == NO_DIFFERENCE:
        if result.n_clusters != result.n:
            return f"{NO_DIFFERENCE} at n={result.n_clusters} cases ({result.n} runs)"
        return f"{NO_DIFFERENCE} at n={result.n}"
    return f"{label} ({result.diff * 100:+.1f} pts, {_format_p(result.p_value)})"


def paired_comparison(
    a: Sequence[bool | float] | np.ndarray,
    b: Sequence[bool | float] | np.ndarray,
    *,
    clusters: Sequence[Hashable] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> PairedResult:
    """Compare variant B with variant A on aligned per-unit scores of the same cases."""
    _check_confidence(confidence)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if n_resamples < 1:
        raise ValueError("n_resamples must be >= 1")
    xa = _as_scores(a, "a", unit=True)
    xb = _as_scores(b, "b", unit=True)
    if xa.size != xb.size:
        raise ValueError(f"a and b must be aligned: {xa.size} != {xb.size} values")
    n = int(xa.size)
    codes, n_clusters = _cluster_codes(clusters, n)
    if n == 0:
        empty = PairedResult(
            0, 0, *(math.nan,) * 6, 0, 0, 0, "none", "", NO_DIFFERENCE, confidence, alpha
        )
        return replace(empty, verdict=verdict(empty))

    d = xb - xa
    cluster_d = np.bincount(codes, weights=d, minlength=n_clusters)
    cluster_n = np.bincount(codes, minlength=n_clusters)
    discordance = float(np.mean((cluster_d / cluster_n) ** 2))
    wins = int(np.count_nonzero(cluster_d > 1e-12))
    losses = int(np.count_nonzero(cluster_d < -1e-12))
    ties = n_clusters - wins - losses
    mean_a, mean_b = float(xa.mean()), float(xb.mean())
    diff = mean_b - mean_a

    if n_clusters == n and _is_binary(xa, xb):
        b_only = int(np.count_nonzero((xb == 1.0) & (xa == 0.0)))
        a_only = int(np.count_nonzero((xa == 1.0) & (xb == 0.0)))
        both = int(np.count_nonzero((xa == 1.0) & (xb == 1.0)))
        neither = n - both - a_only - b_only
        discordant = a_only + b_only
        p_value = 1.0 if discordant == 0 else float(_sps().binomtest(b_only, discordant).pvalue)
        ci_low, ci_high = _newcombe_paired_ci(both, a_only, b_only, neither, confidence)
        method = "mcnemar-exact+newcombe"
    else:
        boot_rng, perm_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2)
        )
        ci_low, ci_high = _cluster_bootstrap_ci(
            d, codes, n_clusters, n_resamples=n_resamples, confidence=confidence, rng=boot_rng
        )
        p_value = _sign_flip_pvalue(cluster_d, n_resamples, perm_rng)
        method = "sign-flip+cluster-bootstrap" if n_clusters != n else "sign-flip+bootstrap"

    result = PairedResult(
        n=n,
        n_clusters=n_clusters,
        mean_a=mean_a,
        mean_b=mean_b,
        diff=diff,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=p_value,
        wins=wins,
        losses=losses,
        ties=ties,
        method=method,
        verdict="",
        label=NO_DIFFERENCE,
        confidence=confidence,
        alpha=alpha,
        discordance=discordance,
    )
    return replace(result, label=_label(result), verdict=verdict(result))


def holm_adjust(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (NaN stays NaN and is not counted as a test)."""
    p = np.asarray(p_values, dtype=float).reshape(-1)
    out = np.full(p.shape, math.nan)
    tested = np.flatnonzero(np.isfinite(p))
    m = tested.size
    if m == 0:
        return out
    if np.any((p[tested] < 0.0) | (p[tested] > 1.0)):
        raise ValueError("p-values must lie in [0, 1]")
    order = tested[np.argsort(p[tested], kind="stable")]
    stepped = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(1.0, np.maximum.accumulate(stepped))
    return out


def min_detectable_difference(
    n: int, discordance: float, *, alpha: float = 0.05, power: float = POWER
) -> float:
    """Smallest true paired difference n units detect with this power (two-sided alpha); NaN if none can be.

    Connor's (1987) normal approximation for paired proportions: the variance of a unit's
    difference is the discordance (share of units where the two variants disagree), at least
    the difference itself (a difference of d needs at least that share of disagreeing units).
    """
    if not 0.0 < alpha < 1.0 or not 0.0 < power < 1.0:
        raise ValueError(f"need 0 < alpha < 1 and 0 < power < 1, got {alpha!r}, {power!r}")
    if n < 1:
        return math.nan
    if not math.isfinite(discordance) or not 0.0 <= discordance <= 1.0:
        raise ValueError(f"discordance must be in [0, 1], got {discordance!r}")
    z_a = _z(1.0 - alpha)
    z_b = float(NormalDist().inv_cdf(power))

    def gap(delta: float) -> float:
        psi = max(discordance, delta)
        return (
            delta * math.sqrt(n) - z_a * math.sqrt(psi) - z_b * math.sqrt(max(psi - delta**2, 0.0))
        )

    if gap(1.0) <= 0.0:
        return math.nan
    return _root(gap)


def _root(gap: Callable[[float], float]) -> float:
    """Where a function on (0, 1] that is negative, then positive, changes sign (bisection)."""
    low, high = 0.0, 1.0
    for _ in range(60):
        mid = (low + high) / 2.0
        if gap(mid) > 0.0:
            high = mid
        else:
            low = mid
    return high


def adjusted_verdict(
    label: Label,
    *,
    diff: float,
    p_value: float,
    p_adjusted: float,
    comparisons: int,
    n: int,
    n_clusters: int,
    mdd: float,
    alpha: float = 0.05,
) -> str:
    """Plain-words verdict of one comparison of a family adjusted with Holm's method."""
    holm = f"Holm-adjusted over {comparisons} comparisons" if comparisons > 1 else ""
    if label != Label.NO_DIFFERENCE:
        p_text = _format_p(p_adjusted)
        return f"{label} ({diff * 100:+.1f} pts, {p_text}{', ' + holm if holm else ''})"
    units = f"n={n_clusters} cases ({n} runs)" if n_clusters != n else f"n={n}"
    detects = (
        f"this n detects differences of {100 * mdd:.0f} pts or more"
        if math.isfinite(mdd)
        else "this n is too small to detect any difference"
    )
    text = f"{NO_DIFFERENCE} at {units} ({detects}, {100 * POWER:.0f}% power)"
    if holm and math.isfinite(p_value) and p_value < alpha:
        text += f"; {_format_p(p_value)} before adjustment, {_format_p(p_adjusted)} {holm}"
    return text


def consistency(answers_by_case: Mapping[Hashable, Sequence[Any]]) -> float:
    """Share of cases (with at least two answers) whose answers all agree; nan if there are none."""
    eligible = 0
    agreeing = 0
    for answers in answers_by_case.values():
        items = list(answers)
        if len(items) < 2:
            continue
        eligible += 1
        first = items[0]
        agreeing += all(item == first for item in items[1:])
    return agreeing / eligible if eligible else math.nan
