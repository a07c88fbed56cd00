"""Tests for audio_evals.stats: intervals, paired comparison, verdicts, consistency."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from audio_evals.stats import (
    AccuracySummary,
    Label,
    PairedResult,
    accuracy_summary,
    adjusted_label,
    adjusted_verdict,
    bootstrap_mean_ci,
    consistency,
    holm_adjust,
    min_detectable_difference,
    paired_comparison,
    verdict,
    wilson_interval,
)


def paired_from_table(both: int, a_only: int, b_only: int, neither: int) -> tuple[list, list]:
    """Aligned 0/1 vectors for A and B from a paired 2x2 table."""
    a = [1] * both + [1] * a_only + [0] * b_only + [0] * neither
    b = [1] * both + [0] * a_only + [1] * b_only + [0] * neither
    return a, b


# --------------------------------------------------------------------------- Wilson


@pytest.mark.parametrize(
    ("k", "n"),
    [(0, 1), (1, 1), (0, 10), (10, 10), (3, 10), (17, 48), (0, 200), (199, 200), (512, 1000)],
)
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_matches_statsmodels(k, n, confidence):
    expected = proportion_confint(k, n, alpha=1 - confidence, method="wilson")
    assert wilson_interval(k, n, confidence) == pytest.approx(expected, abs=1e-12)


def test_wilson_empty_and_invalid():
    low, high = wilson_interval(0, 0)
    assert math.isnan(low) and math.isnan(high)
    with pytest.raises(ValueError):
        wilson_interval(5, 4)
    with pytest.raises(ValueError):
        wilson_interval(1, 4, confidence=1.0)


@settings(max_examples=100, deadline=None, database=None)
@given(st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_contains_estimate(kn):
    k, n = kn
    low, high = wilson_interval(k, n)
    assert 0.0 <= low <= k / n <= high <= 1.0


# --------------------------------------------------------------------------- McNemar / Newcombe


@pytest.mark.parametrize(
    "table",
    [
        (30, 2, 9, 7),
        (30, 9, 2, 7),
        (10, 0, 6, 2),
        (40, 3, 3, 2),
        (5, 1, 0, 0),
        (20, 0, 0, 28),
        (59, 6, 16, 80),
        (100, 25, 40, 35),
    ],
)
def test_mcnemar_pvalue_matches_statsmodels(table):
    both, a_only, b_only, neither = table
    a, b = paired_from_table(*table)
    result = paired_comparison(a, b)
    expected = mcnemar([[both, a_only], [b_only, neither]], exact=True).pvalue
    assert result.method == "mcnemar-exact+newcombe"
    assert result.p_value == pytest.approx(expected, rel=1e-12)
    assert (result.wins, result.losses, result.ties) == (b_only, a_only, both + neither)
    assert result.diff == pytest.approx((b_only - a_only) / sum(table))


def test_newcombe_interval_matches_published_example():
    # Fagerland, Lydersen & Laake, "Statistical Analysis of Contingency Tables", ch. 8
    # (Cavo et al. 2012; also the R package contingencytables' test): p1+ - p+1 = -0.0621,
    # 95% CI -0.1186 to -0.0046. Rows are A, columns are B, so B - A flips the sign.
    a, b = paired_from_table(59, 6, 16, 80)
    result = paired_comparison(a, b)
    assert result.diff == pytest.approx(0.0621, abs=5e-5)
    assert result.ci_low == pytest.approx(0.0046, abs=5e-5)
    assert result.ci_high == pytest.approx(0.1186, abs=5e-5)


@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(st.integers(0, 15), min_size=4, max_size=4).filter(lambda t: sum(t) > 0))
def test_newcombe_interval_contains_point_estimate(table):
    result = paired_comparison(*paired_from_table(*table))
    assert -1.0 <= result.ci_low <= result.diff <= result.ci_high <= 1.0
    assert 0.0 <= result.p_value <= 1.0


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_is_reproducible_and_seed_dependent():
    values = np.random.default_rng(123).random(200)
    first = bootstrap_mean_ci(values, seed=7)
    assert bootstrap_mean_ci(values, seed=7) == first
    assert bootstrap_mean_ci(values, seed=8) != first
    clusters = np.arange(200) // 4
    clustered = bootstrap_mean_ci(values, clusters, seed=7)
    assert bootstrap_mean_ci(values, clusters, seed=7) == clustered
    assert bootstrap_mean_ci(values, clusters, seed=8) != clustered


def test_bootstrap_leaves_global_rng_alone():
    np.random.seed(0)
    before = np.random.random()
    np.random.seed(0)
    bootstrap_mean_ci([0.1, 0.5, 0.9], seed=3)
    paired_comparison([0.2, 0.4, 0.6], [0.3, 0.6, 0.6], seed=3)
    assert np.random.random() == before


def test_cluster_bootstrap_is_wider_when_repeats_are_correlated():
    rng = np.random.default_rng(0)
    per_case = rng.integers(0, 2, size=40).astype(float)  # each case is all-right or all-wrong
    values = np.repeat(per_case, 5)  # 5 identical repeats per case
    clusters = np.repeat(np.arange(40), 5)
    naive = bootstrap_mean_ci(values, seed=1)
    clustered = bootstrap_mean_ci(values, clusters, seed=1)
    naive_width = naive[1] - naive[0]
    clustered_width = clustered[1] - clustered[0]
    assert clustered_width > 1.8 * naive_width  # about sqrt(5) = 2.24 times wider
    assert clustered[0] <= values.mean() <= clustered[1]


def test_bootstrap_is_fast_for_10k_values():
    values = np.random.default_rng(0).random(10_000)
    clusters = np.arange(10_000) // 3
    start = time.perf_counter()
    low, high = bootstrap_mean_ci(values)
    bootstrap_mean_ci(values, clusters)
    assert time.perf_counter() - start < 5.0
    assert low < values.mean() < high


def test_bootstrap_edge_cases():
    assert all(math.isnan(x) for x in bootstrap_mean_ci([]))
    assert bootstrap_mean_ci([0.25]) == (0.25, 0.25)
    with pytest.raises(ValueError):
        bootstrap_mean_ci([0.1, 0.2], clusters=["a"])
    with pytest.raises(ValueError):
        bootstrap_mean_ci([0.1, float("nan")])


def test_binary_paired_ci_covers_true_difference():
    # Joint law of (A, B) per case: P(1,1)=.55, P(1,0)=.05, P(0,1)=.20, P(0,0)=.20 -> true B-A = +.15
    rng = np.random.default_rng(2024)
    cells = np.array([[1, 1], [1, 0], [0, 1], [0, 0]])
    probs = [0.55, 0.05, 0.20, 0.20]
    trials, covered = 300, 0
    for _ in range(trials):
        draw = cells[rng.choice(4, size=50, p=probs)]
        result = paired_comparison(draw[:, 0], draw[:, 1])
        covered += result.ci_low <= 0.15 <= result.ci_high
    assert covered / trials >= 0.91  # nominal 0.95


def test_clustered_paired_ci_covers_true_difference():
    # 30 cases x 3 repeats with a per-case difficulty shared by both variants; true B-A = +0.10
    rng = np.random.default_rng(99)
    trials, covered = 200, 0
    clusters = np.repeat(np.arange(30), 3)
    for _ in range(trials):
        difficulty = np.repeat(rng.uniform(0.2, 0.8, size=30), 3)
        a = (rng.random(90) < difficulty).astype(float)
        b = (rng.random(90) < difficulty + 0.10).astype(float)
        result = paired_comparison(a, b, clusters=clusters, n_resamples=400, seed=1)
        covered += result.ci_low <= 0.10 <= result.ci_high
    assert result.method == "sign-flip+cluster-bootstrap"
    assert covered / trials >= 0.88  # nominal 0.95; percentile bootstrap runs a bit narrow


# --------------------------------------------------------------------------- paired comparison


def test_sign_flip_test_with_repeats_matches_mcnemar_on_cases():
    # Every case run twice with identical outcomes: the case-level sign-flip test is McNemar's.
    a_case, b_case = paired_from_table(12, 2, 9, 5)
    a = np.repeat(a_case, 2)
    b = np.repeat(b_case, 2)
    clusters = np.repeat(np.arange(len(a_case)), 2)
    result = paired_comparison(a, b, clusters=clusters)
    expected = mcnemar([[12, 2], [9, 5]], exact=True).pvalue
    assert result.method == "sign-flip+cluster-bootstrap"
    assert result.p_value == pytest.approx(expected, rel=1e-12)
    assert (result.n, result.n_clusters) == (56, 28)
    assert (result.wins, result.losses, result.ties) == (9, 2, 17)


def test_wins_losses_ties_use_per_case_means():
    a = [1, 1, 0, 0, 1, 0, 1, 1, 1]
    b = [1, 0, 0, 1, 1, 1, 1, 1, 0]
    clusters = ["x", "x", "x", "y", "y", "y", "z", "z", "z"]
    # x: a=2/3 b=1/3 -> loss; y: a=1/3 b=3/3 -> win; z: a=3/3 b=2/3 -> loss
    result = paired_comparison(a, b, clusters=clusters)
    assert (result.wins, result.losses, result.ties) == (1, 2, 0)
    assert result.n_clusters == 3


def test_fractional_scores_use_bootstrap_and_permutation():
    rng = np.random.default_rng(5)
    a = rng.uniform(0.3, 0.7, size=80)
    b = np.clip(a + 0.08 + rng.normal(0, 0.05, size=80), 0, 1)
    result = paired_comparison(a, b, seed=3)
    assert result.method == "sign-flip+bootstrap"
    assert result.label == "better"
    assert result.p_value == pytest.approx(1 / 2001)  # no flip beats a consistent +8 pts
    assert result.ci_low > 0.05 and result.ci_high < 0.11
    assert paired_comparison(a, b, seed=3) == result  # deterministic given the seed


def test_paired_comparison_validates_inputs():
    with pytest.raises(ValueError):
        paired_comparison([1, 0], [1])
    with pytest.raises(ValueError):
        paired_comparison([1, 2], [1, 0])
    with pytest.raises(ValueError):
        paired_comparison([1, 0], [1, 0], clusters=["a"])


def test_empty_comparison():
    result = paired_comparison([], [])
    assert result.n == 0 and math.isnan(result.diff)
    assert result.verdict == "no detectable difference at n=0"


# --------------------------------------------------------------------------- verdicts


def test_verdict_clear_better():
    a, b = paired_from_table(20, 1, 12, 15)  # n=48
    result = paired_comparison(a, b)
    assert result.label == "better"
    assert result.verdict == verdict(result)
    assert result.verdict == f"better (+22.9 pts, p={result.p_value:.3g})"
    assert result.p_value < 0.05 and result.ci_low > 0


def test_verdict_clear_worse():
    a, b = paired_from_table(20, 12, 1, 15)
    result = paired_comparison(a, b)
    assert result.label == "worse"
    assert result.verdict.startswith("worse (-22.9 pts, p=")


def test_verdict_small_n_is_no_detectable_difference():
    # B wins 3 of 6 cases outright and loses none: promising, but not evidence at n=6.
    a, b = paired_from_table(2, 0, 3, 1)
    result = paired_comparison(a, b)
    assert result.label == "no detectable difference"
    assert result.verdict == "no detectable difference at n=6"
    assert result.p_value == pytest.approx(0.25)


def test_verdict_names_cases_and_runs_with_repeats():
    a, b = paired_from_table(5, 1, 1, 1)
    clusters = np.repeat(np.arange(8), 3)
    result = paired_comparison(np.repeat(a, 3), np.repeat(b, 3), clusters=clusters)
    assert result.verdict == "no detectable difference at n=8 cases (24 runs)"


def test_verdict_needs_both_ci_and_p():
    base = dict(n=48, n_clusters=48, mean_a=0.5, mean_b=0.6, diff=0.1, wins=5, losses=0)
    base |= dict(ties=43, method="x", verdict="", label="")
    ci_only = PairedResult(ci_low=0.01, ci_high=0.2, p_value=0.06, **base)
    p_only = PairedResult(ci_low=-0.01, ci_high=0.2, p_value=0.01, **base)
    both = PairedResult(ci_low=0.01, ci_high=0.2, p_value=0.0004, **base)
    assert verdict(ci_only) == "no detectable difference at n=48"
    assert verdict(p_only) == "no detectable difference at n=48"
    assert verdict(both) == "better (+10.0 pts, p<0.001)"


# --------------------------------------------------------------------------- accuracy summary


def test_accuracy_summary_wilson_without_repeats():
    summary = accuracy_summary([True, False, True, True, True, False, True, True])
    assert isinstance(summary, AccuracySummary)
    assert (summary.n, summary.successes, summary.accuracy) == (8, 6, 0.75)
    assert (summary.ci_low, summary.ci_high) == wilson_interval(6, 8)
    assert summary.method == "wilson"
    # one value per cluster is still Wilson
    assert accuracy_summary([1, 0, 1], clusters=["a", "b", "c"]).method == "wilson"


def test_accuracy_summary_cluster_bootstrap_with_repeats():
    correct = [1, 1, 1, 0, 0, 0, 1, 1, 0, 1, 1, 1]
    clusters = [i // 3 for i in range(12)]
    summary = accuracy_summary(correct, clusters, seed=4)
    assert summary.method == "cluster-bootstrap"
    assert summary.accuracy == pytest.approx(8 / 12)
    assert summary.ci_low <= summary.accuracy <= summary.ci_high
    assert accuracy_summary(correct, clusters, seed=4) == summary


def test_accuracy_summary_fractional_and_empty():
    summary = accuracy_summary([0.5, 1.0, 0.75, 0.25])
    assert summary.method == "bootstrap"
    assert summary.successes == pytest.approx(2.5)
    empty = accuracy_summary([])
    assert empty.n == 0 and math.isnan(empty.accuracy) and math.isnan(empty.ci_low)


# --------------------------------------------------------------------------- consistency


def test_consistency():
    answers = {
        "c1": ["Paris", "Paris", "Paris"],
        "c2": ["Paris", "Lyon", "Paris"],
        "c3": ["Rome"],  # K=1: excluded
        "c4": [{"name": "Marcelo"}, {"name": "Marcelo"}],  # structured answers compare by ==
    }
    assert consistency(answers) == pytest.approx(2 / 3)
    assert math.isnan(consistency({"only": ["x"]}))
    assert math.isnan(consistency({}))


@settings(max_examples=60, deadline=None, database=None)
@given(
    st.lists(
        st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), min_size=1, max_size=4),
        min_size=1,
        max_size=10,
    )
)
def test_sign_flip_pvalue_is_exact_with_repeats(cases):
    import itertools

    a = [pair[0] for runs in cases for pair in runs]
    b = [pair[1] for runs in cases for pair in runs]
    clusters = [i for i, runs in enumerate(cases) for _ in runs]
    sums = np.array([sum(p[1] - p[0] for p in runs) for runs in cases], dtype=float)
    sums = sums[sums != 0]
    if sums.size:
        signs = np.array(list(itertools.product((1, -1), repeat=sums.size)))
        expected = float(np.mean(np.abs(signs @ sums) >= abs(sums.sum())))
    else:
        expected = 1.0
    result = paired_comparison(a, b, clusters=clusters)
    assert result.p_value == pytest.approx(expected, rel=1e-9, abs=1e-12)


# --------------------------------------------------------------------------- Holm, detectable difference


@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=40))
@settings(max_examples=40, deadline=None)  # statsmodels' multipletests costs ~25 ms a call
def test_holm_matches_statsmodels(p_values):
    np.testing.assert_allclose(
        holm_adjust(p_values), multipletests(p_values, method="holm")[1], rtol=1e-12
    )


def test_holm_leaves_untested_out_of_the_count():
    adjusted = holm_adjust([0.01, math.nan, 0.04])
    assert math.isnan(adjusted[1])
    np.testing.assert_allclose(adjusted[[0, 2]], multipletests([0.01, 0.04], method="holm")[1])
    with pytest.raises(ValueError):
        holm_adjust([1.5])


@pytest.mark.parametrize(("n", "discordance"), [(200, 0.3), (400, 0.15), (1000, 0.1)])
def test_minimum_detectable_difference_has_the_stated_power_under_exact_mcnemar(n, discordance):
    """Simulate paired 0/1 data with the detectable difference as the true one: ~80% are detected."""
    mdd = min_detectable_difference(n, discordance)
    assert 0 < mdd < 1
    psi = max(discordance, mdd)
    rng = np.random.default_rng(11)
    detected = 0
    runs = 400
    for _ in range(runs):
        # each case: B wins with (psi + d)/2, loses with (psi - d)/2, ties otherwise
        u = rng.random(n)
        wins = u < (psi + mdd) / 2
        losses = (u >= (psi + mdd) / 2) & (u < psi)
        a = np.where(losses, 1.0, 0.0)
        b = np.where(wins, 1.0, 0.0)
        detected += paired_comparison(a, b).label == Label.BETTER
    assert 0.72 <= detected / runs <= 0.88, (mdd, detected / runs)


def test_minimum_detectable_difference_shrinks_with_n_and_grows_with_stricter_alpha():
    values = [min_detectable_difference(n, 0.2) for n in (32, 100, 1000, 5000)]
    assert values == sorted(values, reverse=True)
    assert min_detectable_difference(100, 0.2, alpha=0.05 / 20) > values[1]
    assert min_detectable_difference(100, 0.0) > 0, "agreeing variants still need n to tell"
    assert math.isnan(min_detectable_difference(3, 0.5)), "3 cases detect nothing"
    assert math.isnan(min_detectable_difference(0, 0.5))


def test_adjusted_verdict_says_holm_and_what_n_detects():
    better = adjusted_verdict(
        adjusted_label(0.1, 0.3, 0.001),
        diff=0.2,
        p_value=0.0001,
        p_adjusted=0.001,
        comparisons=12,
        n=48,
        n_clusters=48,
        mdd=0.15,
    )
    assert better == "better (+20.0 pts, p=0.001, Holm-adjusted over 12 comparisons)"
    lost = adjusted_verdict(
        adjusted_label(0.01, 0.3, 0.12),
        diff=0.15,
        p_value=0.01,
        p_adjusted=0.12,
        comparisons=12,
        n=48,
        n_clusters=48,
        mdd=0.31,
    )
    assert lost == (
        "no detectable difference at n=48 (this n detects differences of 31 pts or more, "
        "80% power); p=0.01 before adjustment, p=0.12 Holm-adjusted over 12 comparisons"
    )
    assert adjusted_label(-0.3, -0.1, 0.01) == Label.WORSE
