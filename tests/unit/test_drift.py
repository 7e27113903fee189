"""Drift: the five statistical tests, Evidently's choice of test, the verdicts and the reports.

The tests in drift_stats.py reimplement Evidently 0.7's defaults with numpy and
scipy, so each is checked against scipy's own function on random samples and
against values worked out by hand on tiny inputs. The choice of test, the
drift rule at the threshold exactly, the cleaning of nulls and infinities, the
per-column overrides and the dataset verdict are checked with the repository's
params.yaml; the reports and the CLI with synthetic data that follows the
contract.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from pipeline import drift_stats
from pipeline.drift import Predictions, drift_report
from pipeline.drift_columns import ColumnDrift, as_dict, column_drift, dataset_drift, distribution
from pipeline.drift_render import markdown_summary, render_html
from pipeline.drift_stats import CATEGORICAL, NUMERIC, default_method
from pipeline.errors import ConfigError, PipelineError
from pipeline.features import features_of
from pipeline.files import write_csv
from pipeline.metrics import score_classification, score_regression
from pipeline.params import ColumnDriftParams, DriftParams
from pipeline.predictions import classes_of, score
from pipeline.synthetic import generate
from pipeline.train import fit_model

ROOT = Path(__file__).resolve().parents[2]
SMALL_REFERENCE_ROWS, MAX_UNIQUE_FOR_DISCRETE = 1000, 5  # Evidently's defaults


def floats(*values: float) -> np.ndarray:
    return np.asarray(values, dtype="float64")


def labels(text: str) -> np.ndarray:
    """One category per character, as the object array column_drift hands the tests."""
    return np.asarray(list(text), dtype=object)


def with_distinct(rows: int, n_values: int, kind: str) -> np.ndarray:
    """`rows` values cycling over exactly `n_values` distinct values."""
    codes = np.arange(rows) % n_values
    if kind == NUMERIC:
        return codes.astype("float64")
    return np.asarray([f"v{code}" for code in codes], dtype=object)


def overridden(params: DriftParams, **columns: ColumnDriftParams) -> DriftParams:
    return params.model_copy(update={"columns": columns})


@pytest.fixture(scope="module")
def drift_params(params) -> DriftParams:
    """The repository's params.yaml drift section (the shared `params` fixture loads it)."""
    return params.drift


# The five tests against scipy and against hand-worked values


@pytest.mark.parametrize(
    ("n_ref", "n_cur", "shift"),
    [(40, 70, 0.0), (300, 200, 0.3), (1000, 5000, 0.1), (200, 20_000, 0.05)],  # the last takes scipy's asymp path
)
def test_ks_is_scipys_two_sample_ks(n_ref, n_cur, shift):
    rng = np.random.default_rng(n_ref + n_cur)
    ref, cur = rng.normal(size=n_ref), rng.normal(shift, size=n_cur)

    assert drift_stats.ks(ref, cur, NUMERIC) == stats.ks_2samp(ref, cur).pvalue


def scipy_chisquare(ref: np.ndarray, cur: np.ndarray) -> float:
    keys = sorted(set(ref) | set(cur))
    ref_counts = np.array([np.sum(ref == key) for key in keys])
    cur_counts = np.array([np.sum(cur == key) for key in keys])
    return stats.chisquare(cur_counts, ref_counts * len(cur) / len(ref)).pvalue


@pytest.mark.parametrize("kind", [CATEGORICAL, NUMERIC])
def test_chisquare_is_scipys_with_reference_counts_scaled_to_the_current_size(kind):
    rng = np.random.default_rng(3)
    values = np.asarray(["a", "b", "c", "d"], dtype=object) if kind == CATEGORICAL else floats(1, 2, 3, 4)
    ref = rng.choice(values, size=400, p=[0.4, 0.3, 0.2, 0.1])
    cur = rng.choice(values, size=250, p=[0.3, 0.3, 0.2, 0.2])

    assert drift_stats.chisquare(ref, cur, kind) == pytest.approx(scipy_chisquare(ref, cur), rel=1e-12)


def test_chisquare_by_hand_on_tiny_counts():
    # reference a,a,b,b scaled to 8 rows expects 4 and 4; observed 6 and 2:
    # chi2 = (6-4)^2/4 + (2-4)^2/4 = 2 with 1 degree of freedom, so p = erfc(sqrt(2/2)).
    p = drift_stats.chisquare(labels("aabb"), labels("aaaaaabb"), CATEGORICAL)

    assert p == pytest.approx(math.erfc(1.0), rel=1e-12)


def test_chisquare_of_a_value_unseen_in_the_reference_is_zero():
    # An expected count of 0 with an observed count above 0 is an infinite statistic, as in Evidently.
    assert drift_stats.chisquare(labels("aabbcc"), labels("abcd"), CATEGORICAL) == 0.0


def two_proportion_z(ref: np.ndarray, cur: np.ndarray) -> float:
    """The textbook pooled two-proportion Z-test on the share of values other than the smallest."""
    first = min(set(ref) | set(cur))
    p1, p2 = np.mean(ref != first), np.mean(cur != first)
    n1, n2 = len(ref), len(cur)
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return 2 * (1 - stats.norm.cdf(abs(z)))


@pytest.mark.parametrize("kind", [CATEGORICAL, NUMERIC])
def test_z_is_the_two_proportion_z_test(kind):
    rng = np.random.default_rng(5)
    values = np.asarray(["no", "yes"], dtype=object) if kind == CATEGORICAL else floats(0, 1)
    ref, cur = rng.choice(values, size=300, p=[0.6, 0.4]), rng.choice(values, size=120, p=[0.5, 0.5])

    assert drift_stats.z(ref, cur, kind) == pytest.approx(two_proportion_z(ref, cur), rel=1e-12)


def test_z_by_hand():
    # p1 = 2/4, p2 = 4/4, pooled 6/8: z = 0.5 / sqrt(0.75 * 0.25 * (1/4 + 1/4)) = sqrt(8/3);
    # p = 2 * (1 - Phi(z)) = erfc(z / sqrt(2)) = erfc(sqrt(4/3)) ~ 0.1025.
    p = drift_stats.z(floats(0, 0, 1, 1), floats(1, 1, 1, 1), NUMERIC)

    assert p == pytest.approx(math.erfc(math.sqrt(4 / 3)), rel=1e-9)
    assert p == pytest.approx(0.10247, abs=1e-5)


def test_z_does_not_depend_on_which_value_sorts_first():
    assert drift_stats.z(labels("aaab"), labels("abbb"), CATEGORICAL) == pytest.approx(
        drift_stats.z(labels("bbba"), labels("baaa"), CATEGORICAL), rel=1e-12
    )


def test_z_of_the_same_constant_is_one():
    assert drift_stats.z(labels("aaaa"), labels("aa"), CATEGORICAL) == 1.0


def test_z_saturates_to_zero_like_evidently():
    # Evidently computes 2 * (1 - cdf(|z|)), which is exactly 0.0 for |z| above ~8.3 (2 * sf(|z|) would not be).
    ref, cur = with_distinct(1000, 2, NUMERIC), np.ones(1000)

    assert drift_stats.z(ref, cur, NUMERIC) == 0.0


@pytest.mark.parametrize(
    ("ref", "cur"),
    [
        (np.random.default_rng(11).normal(10, 3, 2000), np.random.default_rng(12).normal(10.5, 3, 1500)),
        (np.random.default_rng(13).integers(0, 5, 3000) * 1.0, np.random.default_rng(14).integers(0, 7, 1200) * 1.0),
        (np.random.default_rng(15).normal(0, 1, 1001), np.random.default_rng(16).normal(0, 1, 1)),
        (np.round(np.random.default_rng(17).normal(0, 1e6, 500), -5), np.arange(-1e6, 1e6, 1e4)),
        (np.arange(50.0), np.arange(50.0)[::-1]),
    ],
    ids=["continuous", "ties", "one-current-row", "large-values", "identical"],
)
def test_wasserstein_is_scipys_distance_over_the_reference_std(ref, cur):
    expected = stats.wasserstein_distance(ref, cur) / max(np.std(ref), 0.001)

    assert drift_stats.wasserstein(ref, cur, NUMERIC) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_wasserstein_by_hand_uses_the_population_std():
    # Distance 1 between [0, 1] and [1, 2]; the population std of [0, 1] is 0.5 (the sample std would be 0.71).
    assert drift_stats.wasserstein(floats(0, 1), floats(1, 2), NUMERIC) == pytest.approx(2.0, rel=1e-12)


def test_wasserstein_of_a_constant_reference_divides_by_the_floor():
    assert drift_stats.wasserstein(np.full(10, 5.0), np.full(10, 5.002), NUMERIC) == pytest.approx(2.0, rel=1e-6)


def scipy_js_on_shares(ref: np.ndarray, cur: np.ndarray) -> float:
    keys = sorted(set(ref) | set(cur))
    return distance.jensenshannon(
        [np.sum(ref == key) / len(ref) for key in keys], [np.sum(cur == key) / len(cur) for key in keys]
    )


def scipy_js_on_sturges_histogram(ref: np.ndarray, cur: np.ndarray) -> float:
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    return distance.jensenshannon(np.histogram(ref, edges)[0] / len(ref), np.histogram(cur, edges)[0] / len(cur))


def test_jensenshannon_of_categories_compares_value_shares():
    rng = np.random.default_rng(13)
    values = np.asarray(["Adelie", "Chinstrap", "Gentoo"], dtype=object)
    ref, cur = rng.choice(values, size=1500, p=[0.5, 0.2, 0.3]), rng.choice(values, size=700, p=[0.3, 0.3, 0.4])

    assert drift_stats.jensenshannon(ref, cur, CATEGORICAL) == pytest.approx(scipy_js_on_shares(ref, cur), rel=1e-12)


def test_jensenshannon_of_a_continuous_column_uses_a_sturges_histogram_over_both_samples():
    rng = np.random.default_rng(17)
    ref, cur = rng.normal(size=1500), rng.normal(0.3, 1.2, size=800)

    value = drift_stats.jensenshannon(ref, cur, NUMERIC)

    assert value == pytest.approx(scipy_js_on_sturges_histogram(ref, cur), rel=1e-12)
    assert value != pytest.approx(scipy_js_on_shares(ref, cur))  # value by value, disjoint floats look maximal


@pytest.mark.parametrize(("reference_distinct", "binned"), [(20, False), (21, True)])
def test_jensenshannon_bins_numeric_columns_only_above_20_distinct_reference_values(reference_distinct, binned):
    ref = np.repeat(np.arange(float(reference_distinct)), 5)
    cur = ref + 0.5  # no value in common with the reference, but the same histogram shape

    value = drift_stats.jensenshannon(ref, cur, NUMERIC)

    if binned:
        assert value == pytest.approx(scipy_js_on_sturges_histogram(ref, cur), rel=1e-12)
        assert value < 0.5
    else:
        assert value == pytest.approx(math.sqrt(math.log(2)), rel=1e-12)  # disjoint supports: the maximum


def test_jensenshannon_of_identical_distributions_is_zero():
    assert drift_stats.jensenshannon(labels("aabbc"), labels("cbbaa"), CATEGORICAL) == 0.0
    assert drift_stats.jensenshannon(np.arange(100.0), np.arange(100.0)[::-1], NUMERIC) == 0.0


# default_method: Evidently's choice of test


@pytest.mark.parametrize(
    ("kind", "n_values", "reference_rows", "expected"),
    [
        (NUMERIC, 6, 1000, "ks"),
        (NUMERIC, 40, 1000, "ks"),
        (NUMERIC, 5, 1000, "chisquare"),
        (NUMERIC, 3, 1000, "chisquare"),
        (NUMERIC, 2, 1000, "z"),
        (NUMERIC, 1, 1000, "z"),
        (CATEGORICAL, 3, 1000, "chisquare"),
        (CATEGORICAL, 8, 1000, "chisquare"),
        (CATEGORICAL, 2, 1000, "z"),
        (CATEGORICAL, 1, 1000, "z"),
        (NUMERIC, 6, 1001, "wasserstein"),
        (NUMERIC, 40, 1001, "wasserstein"),
        (NUMERIC, 5, 1001, "jensenshannon"),
        (NUMERIC, 3, 1001, "jensenshannon"),
        (NUMERIC, 2, 1001, "jensenshannon"),
        (CATEGORICAL, 8, 1001, "jensenshannon"),
        (CATEGORICAL, 2, 1001, "jensenshannon"),
    ],
)
def test_default_method_follows_evidentlys_table(kind, n_values, reference_rows, expected):
    ref, cur = with_distinct(reference_rows, n_values, kind), with_distinct(200, n_values, kind)

    assert default_method(ref, cur, kind, SMALL_REFERENCE_ROWS, MAX_UNIQUE_FOR_DISCRETE) == expected


def test_default_method_decides_on_the_reference_size_not_the_current_size():
    small_ref, big_ref = with_distinct(1000, 50, NUMERIC), with_distinct(1001, 50, NUMERIC)

    assert default_method(small_ref, with_distinct(50_000, 50, NUMERIC), NUMERIC, 1000, 5) == "ks"
    assert default_method(big_ref, with_distinct(10, 10, NUMERIC), NUMERIC, 1000, 5) == "wasserstein"


@pytest.mark.parametrize(
    ("kind", "reference", "current", "alone", "together"),
    [
        (CATEGORICAL, labels("ab" * 20), labels("abc" * 5), "z", "chisquare"),
        (NUMERIC, with_distinct(40, 2, NUMERIC), floats(0, 1, 2), "z", "chisquare"),
        (NUMERIC, with_distinct(40, 5, NUMERIC), floats(0, 1, 5), "chisquare", "ks"),
    ],
)
def test_default_method_counts_distinct_values_over_reference_and_current(kind, reference, current, alone, together):
    assert default_method(reference, reference, kind, 1000, 5) == alone
    assert default_method(reference, current, kind, 1000, 5) == together


def test_default_method_counts_distinct_values_beyond_the_first_rows():
    reference = np.concatenate([np.zeros(5000), np.arange(1.0, 8.0)])  # 8 distinct values, 7 of them at the end

    assert default_method(reference, np.zeros(10), NUMERIC, 1000, 5) == "wasserstein"


def test_default_method_reads_its_limits_from_the_arguments():
    ref = with_distinct(60, 4, NUMERIC)

    assert default_method(ref, ref, NUMERIC, 1000, 5) == "chisquare"
    assert default_method(ref, ref, NUMERIC, 1000, 3) == "ks"
    assert default_method(ref, ref, NUMERIC, 59, 3) == "wasserstein"


# Drift rules at the threshold exactly


@pytest.mark.parametrize(
    ("method", "threshold", "at_threshold", "just_below", "just_above"),
    [
        ("ks", 0.05, True, True, False),  # p <= t
        ("chisquare", 0.05, False, True, False),  # p < t
        ("z", 0.05, False, True, False),  # p < t
        ("wasserstein", 0.1, True, False, True),  # d >= t
        ("jensenshannon", 0.1, True, False, True),  # d >= t
    ],
)
def test_drift_rule_at_the_threshold(method, threshold, at_threshold, just_below, just_above):
    drifted = drift_stats.METHODS[method].drifted

    assert drifted(threshold, threshold) is at_threshold
    assert drifted(threshold - 1e-9, threshold) is just_below
    assert drifted(threshold + 1e-9, threshold) is just_above


def test_statistic_kind_of_each_method():
    assert {name: m.statistic for name, m in drift_stats.METHODS.items()} == {
        "ks": "p_value",
        "chisquare": "p_value",
        "z": "p_value",
        "wasserstein": "distance",
        "jensenshannon": "distance",
    }


# The helpers behind the tests


def test_counts_over_union_counts_both_samples_over_every_value_in_the_same_order():
    ref_counts, cur_counts = drift_stats.counts_over_union(labels("abcab"), labels("aad"))

    assert ref_counts.tolist() == [2, 2, 1, 0]  # a, b, c, then d, which only the current sample has
    assert cur_counts.tolist() == [2, 0, 0, 1]
    assert [c.tolist() for c in drift_stats.counts_over_union(labels("abc"), labels("ab"))] == [[1, 1, 1], [1, 1, 0]]


def test_js_distance_normalises_its_inputs_like_scipy():
    p, q = floats(2, 6, 0, 2), floats(1, 1, 3, 0)

    assert drift_stats.js_distance(p, q) == pytest.approx(distance.jensenshannon(p, q), rel=1e-12)


def test_distinct_count_is_exact_up_to_the_cap():
    values = np.arange(8.0)

    assert drift_stats.distinct_count(values[:3], values[1:4], cap=5) == 4
    assert drift_stats.distinct_count(values, values, cap=5) == 6  # past the cap in the first rows: cap + 1


@pytest.mark.parametrize(
    ("method", "reference", "current"),
    [
        ("chisquare", labels("aabbcc"), labels("abcd")),  # an expected count of 0: an infinite statistic
        ("chisquare", labels("ab"), labels("cccc")),
        ("z", labels("aaaa"), labels("bbbb")),
        ("z", with_distinct(1000, 2, NUMERIC), np.ones(1000)),
    ],
)
def test_the_tests_warn_about_nothing_on_extreme_samples(method, reference, current):
    """Infinite statistics are expected values here, not numpy warnings in every drift stage's output."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        drift_stats.METHODS[method].run(reference, current, CATEGORICAL)


# column_drift and dataset_drift with the repository's params


def test_nulls_and_infinities_are_dropped_before_testing(drift_params):
    clean_ref, clean_cur = np.linspace(0, 10, 30), np.linspace(1, 12, 25)
    reference = pd.Series([*clean_ref, np.nan, np.inf, -np.inf, None])
    current = pd.Series([np.nan, *clean_cur, np.inf, np.nan])

    result = column_drift("x", reference, current, NUMERIC, drift_params)

    assert (result.reference_rows, result.current_rows) == (30, 25)
    assert result.method == "ks"
    assert result.value == stats.ks_2samp(clean_ref, clean_cur).pvalue


def test_categorical_nulls_are_dropped_before_testing(drift_params):
    reference = pd.Series(["a", None, "b", "a", np.nan, "b"], dtype=object)
    current = pd.Series(["a", "b", None, None], dtype=object)

    result = column_drift("c", reference, current, CATEGORICAL, drift_params.model_copy(update={"min_rows": 1}))

    assert (result.reference_rows, result.current_rows) == (4, 2)
    assert result.method == "z"  # nulls are not a third value
    assert result.value == 1.0  # half a, half b on both sides


@pytest.mark.parametrize(
    ("values", "reference_rows", "method"),
    [
        (["Biscoe", "Dream", "Torgersen"], 600, "chisquare"),
        (["No", "Yes"], 600, "z"),
        (["Biscoe", "Dream", "Torgersen"], 1500, "jensenshannon"),
    ],
)
def test_categorical_column_verdict_matches_the_test_on_its_values(drift_params, values, reference_rows, method):
    rng = np.random.default_rng(reference_rows + len(values))
    categories = np.asarray(values, dtype=object)
    weights = np.linspace(2, 1, len(values))
    ref = rng.choice(categories, size=reference_rows, p=weights / weights.sum())  # uneven shares
    cur = rng.choice(categories, size=400)  # even shares
    expected = {"chisquare": scipy_chisquare, "z": two_proportion_z, "jensenshannon": scipy_js_on_shares}[method]

    result = column_drift("c", pd.Series(ref), pd.Series(cur), CATEGORICAL, drift_params)

    assert result.method == method
    assert result.value == pytest.approx(expected(ref, cur), rel=1e-9)


def test_reference_size_is_counted_after_dropping_nulls(drift_params):
    assert drift_params.small_reference_rows == 1000
    reference = pd.Series(np.r_[np.linspace(0, 1, 995), np.full(10, np.nan)])  # 1005 rows, 995 values

    result = column_drift("x", reference, pd.Series(np.linspace(0, 1, 50)), NUMERIC, drift_params)

    assert result.method == "ks"  # 1005 rows would pick wasserstein
    assert result.reference_rows == 995


SHIFT_REF, SHIFT_CUR = pd.Series(np.arange(100.0)), pd.Series(np.arange(100.0) + 20)  # KS p 0.036, W 0.69 std


def test_default_verdict_of_the_shift_used_below(drift_params):
    result = column_drift("x", SHIFT_REF, SHIFT_CUR, NUMERIC, drift_params)

    assert (result.method, result.threshold, result.drifted) == ("ks", drift_params.thresholds["ks"], True)
    assert 0.01 < result.value < 0.05


def test_column_override_of_the_threshold_keeps_the_default_method(drift_params):
    params = overridden(drift_params, x=ColumnDriftParams(threshold=0.01))

    result = column_drift("x", SHIFT_REF, SHIFT_CUR, NUMERIC, params)

    assert (result.method, result.threshold, result.drifted) == ("ks", 0.01, False)


def test_column_override_of_the_method_uses_that_methods_threshold(drift_params):
    params = overridden(drift_params, x=ColumnDriftParams(method="wasserstein"))

    result = column_drift("x", SHIFT_REF, SHIFT_CUR, NUMERIC, params)

    assert (result.method, result.statistic, result.threshold) == ("wasserstein", "distance", 0.1)
    assert result.value == pytest.approx(stats.wasserstein_distance(SHIFT_REF, SHIFT_CUR) / np.std(SHIFT_REF))
    assert result.drifted


def test_column_override_of_method_and_threshold(drift_params):
    params = overridden(drift_params, x=ColumnDriftParams(method="wasserstein", threshold=0.8))

    result = column_drift("x", SHIFT_REF, SHIFT_CUR, NUMERIC, params)

    assert (result.method, result.threshold, result.drifted) == ("wasserstein", 0.8, False)


def test_column_override_applies_to_its_column_only(drift_params):
    params = overridden(drift_params, other=ColumnDriftParams(method="wasserstein", threshold=0.8))

    result = column_drift("x", SHIFT_REF, SHIFT_CUR, NUMERIC, params)

    assert (result.method, result.threshold, result.drifted) == ("ks", 0.05, True)


def frame_with(drifted: int, stable: int) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """`drifted` columns shifted far apart and `stable` columns identical in both frames."""
    reference, current = {}, {}
    for i in range(drifted):
        reference[f"moved{i}"], current[f"moved{i}"] = np.arange(100.0), np.arange(100.0) + 80
    for i in range(stable):
        reference[f"stable{i}"], current[f"stable{i}"] = np.arange(100.0), np.arange(100.0)[::-1]
    return pd.DataFrame(reference), pd.DataFrame(current), dict.fromkeys(reference, NUMERIC)


@pytest.mark.parametrize(
    ("n_drifted", "n_stable", "share", "verdict"),
    [(1, 1, 0.5, True), (1, 2, 1 / 3, False), (2, 1, 2 / 3, True), (0, 3, 0.0, False)],
)
def test_dataset_drifts_when_the_drifted_share_reaches_the_threshold(drift_params, n_drifted, n_stable, share, verdict):
    assert drift_params.dataset_drift_share == 0.5
    reference, current, kinds = frame_with(n_drifted, n_stable)

    _, dataset = dataset_drift(reference, current, kinds, drift_params)

    assert dataset == {
        "columns": n_drifted + n_stable,
        "drifted_columns": n_drifted,
        "share": pytest.approx(share),
        "threshold": 0.5,
        "drifted": verdict,
        "note": None,
    }


def test_dataset_drift_share_comes_from_params(drift_params):
    reference, current, kinds = frame_with(1, 1)

    _, dataset = dataset_drift(reference, current, kinds, drift_params.model_copy(update={"dataset_drift_share": 0.6}))

    assert (dataset["share"], dataset["threshold"], dataset["drifted"]) == (0.5, 0.6, False)


def test_columns_are_sorted_most_severe_first(drift_params):
    base = np.arange(100.0)
    reference = pd.DataFrame({"a_stable": base, "b_far": base, "c_near": base, "d_emptied": base, "e_same": base})
    current = pd.DataFrame(
        {"a_stable": base[::-1], "b_far": base + 60, "c_near": base + 25, "d_emptied": np.nan, "e_same": base}
    )

    columns, _ = dataset_drift(reference, current, dict.fromkeys(reference, NUMERIC), drift_params)

    assert [c.column for c in columns] == ["d_emptied", "b_far", "c_near", "a_stable", "e_same"]
    assert [c.severity for c in columns] == sorted((c.severity for c in columns), reverse=True)
    assert [c.drifted for c in columns] == [True, True, True, False, False]


# Everything a column's verdict records


def test_a_column_without_values_records_who_lacks_them(drift_params):
    empty, values = pd.Series([np.nan] * 20), pd.Series(np.arange(20.0))

    emptied = column_drift("x", values, empty, NUMERIC, drift_params)
    never = column_drift("x", empty, empty, NUMERIC, drift_params)

    assert emptied == ColumnDrift(
        "x", NUMERIC, None, None, None, None, True, 20, 0, "no non-null values in current", None, True
    )
    assert never == ColumnDrift(
        "x", NUMERIC, None, None, None, None, False, 0, 0, "no non-null values in reference and current", None, False
    )


def test_a_column_with_too_few_values_records_its_counts(drift_params):
    result = column_drift("c", pd.Series(["a", "b"] * 30), pd.Series(["a", None, "b"]), CATEGORICAL, drift_params)

    assert result == ColumnDrift(
        "c",
        CATEGORICAL,
        None,
        None,
        None,
        None,
        False,
        60,
        2,
        f"too few values for a verdict: 60 reference, 2 current (drift.min_rows is {drift_params.min_rows})",
        None,
        False,
    )


def test_the_note_names_at_most_five_unseen_categories_in_order(drift_params):
    reference, current = pd.Series(["a", "b"] * 30), pd.Series(["a", "b"] * 10 + list("zyxwvu"))

    result = column_drift("c", reference, current, CATEGORICAL, drift_params)

    assert result.note == "values not seen in reference: u, v, w, x, y"


def test_a_nullable_boolean_column_is_compared_as_numbers(drift_params):
    reference = pd.Series([True, False, None] * 20, dtype="boolean")
    current = pd.Series([True, True, False, None] * 10, dtype="boolean")

    result = column_drift("flag", reference, current, NUMERIC, drift_params)

    assert (result.method, result.reference_rows, result.current_rows) == ("z", 40, 30)
    assert result.value == pytest.approx(two_proportion_z(np.r_[[1.0, 0.0] * 20], np.r_[[1.0, 1.0, 0.0] * 10]))


def test_jensenshannon_chosen_for_a_continuous_column_bins_it(drift_params):
    params = overridden(drift_params, x=ColumnDriftParams(method="jensenshannon"))

    result = column_drift("x", SHIFT_REF, SHIFT_CUR, NUMERIC, params)

    assert result.value == pytest.approx(
        scipy_js_on_sturges_histogram(SHIFT_REF.to_numpy(), SHIFT_CUR.to_numpy()), rel=1e-12
    )


def test_numeric_distribution_has_the_configured_bins_over_both_samples():
    shares = distribution(floats(0, 1, 2, 3), floats(2, 3, 4, 4), None, bins=4)

    assert shares == {
        "labels": ["0 to 1", "1 to 2", "2 to 3", "3 to 4"],
        "reference": [0.25, 0.25, 0.25, 0.25],
        "current": [0.0, 0.0, 0.25, 0.75],
    }


def test_shares_are_rounded_to_six_places():
    shares = distribution(floats(0, 0, 1), floats(0, 1, 1), None, bins=2)

    assert shares["reference"] == [0.666667, 0.333333]
    assert shares["current"] == [0.333333, 0.666667]


def test_categorical_distribution_names_the_20_most_common_categories(drift_params):
    names = [f"c{i:02d}" for i in range(22)]
    # c05 first, then c01 and c09 tied; the rest in reverse order, so ties cannot fall back on first appearance
    reference = pd.Series(["c05"] * 3 + ["c01"] * 2 + ["c09"] * 2 + names[::-1])
    current = pd.Series(["c09"] * 4 + ["c01"] * 2 + names[:10] + ["new"] * 7)

    result = column_drift("c", reference, current, CATEGORICAL, drift_params)

    shares = result.distribution
    assert shares["labels"][:3] == ["c05", "c09", "c01"]  # ties on the reference go to the current's count
    assert shares["labels"][3:] == [n for n in names if n not in ("c01", "c05", "c09")][:17]  # then by name
    assert len(shares["labels"]) == 20
    assert "new" not in shares["labels"]  # never in the reference: it ranks last
    assert shares["reference"][:3] == [round(4 / 29, 6), round(3 / 29, 6), round(3 / 29, 6)]
    assert shares["current"][:3] == [round(1 / 23, 6), round(5 / 23, 6), round(3 / 23, 6)]


def test_as_dict_adds_the_rounded_severity_and_none_when_infinite(drift_params):
    judged = column_drift("x", SHIFT_REF, SHIFT_CUR, NUMERIC, drift_params)
    emptied = column_drift("x", SHIFT_REF, pd.Series([np.nan] * 5), NUMERIC, drift_params)

    assert as_dict(judged) == {**judged.__dict__, "severity": round(judged.severity, 6)}
    assert as_dict(judged)["severity"] != judged.severity  # more than six places before rounding
    assert as_dict(emptied)["severity"] is None


# Edge cases


def test_constant_column_is_noted_and_not_drifted_when_unchanged(drift_params):
    result = column_drift("x", pd.Series([3.5] * 80), pd.Series([3.5] * 40), NUMERIC, drift_params)

    assert result.note == "constant in reference"
    assert (result.method, result.value, result.drifted) == ("z", 1.0, False)


def test_constant_column_that_changes_drifts(drift_params):
    result = column_drift("x", pd.Series([3.5] * 80), pd.Series([4.5] * 40), NUMERIC, drift_params)

    assert result.note == "constant in reference"
    assert result.drifted


def test_column_null_in_current_drifts_and_says_so(drift_params):
    result = column_drift("x", pd.Series(np.arange(50.0)), pd.Series([np.nan] * 20), NUMERIC, drift_params)

    assert result.drifted
    assert "current" in result.note
    assert "reference" not in result.note
    assert (result.method, result.value, result.reference_rows, result.current_rows) == (None, None, 50, 0)
    assert result.severity == float("inf")


def test_column_null_in_reference_drifts_and_says_so(drift_params):
    result = column_drift("c", pd.Series([None] * 5, dtype=object), pd.Series(["a", "b"]), CATEGORICAL, drift_params)

    assert result.drifted
    assert result.note == "no non-null values in reference"


def test_column_null_in_both_does_not_drift(drift_params):
    result = column_drift("x", pd.Series([np.nan] * 5), pd.Series([np.inf, np.nan]), NUMERIC, drift_params)

    assert not result.drifted
    assert "reference" in result.note
    assert "current" in result.note
    assert result.severity == 0.0


def test_category_unseen_in_the_reference_is_noted_and_drifts(drift_params):
    reference = pd.Series(["north", "south"] * 30)
    current = pd.Series(["north", "south"] * 10 + ["Atlantis"])

    result = column_drift("place", reference, current, CATEGORICAL, drift_params)

    assert result.note == "values not seen in reference: Atlantis"
    assert (result.method, result.value, result.drifted) == ("chisquare", 0.0, True)


def test_empty_current_batch_is_a_pipeline_error(drift_params):
    reference, _, kinds = frame_with(1, 1)

    with pytest.raises(PipelineError, match=r"^the current batch has no rows; there is nothing to compare$"):
        dataset_drift(reference, reference.iloc[:0], kinds, drift_params)


# drift_report on the project's contract, and on the toy contracts of the other tasks


TEST_METRICS = {"accuracy": 0.9, "balanced_accuracy": 0.89, "f1": 0.88, "roc_auc": 0.95, "log_loss": 0.3}


@pytest.fixture(scope="module", params=["project", "binary", "multiclass", "regression"])
def subject(request, contract, toy_contracts):
    """(features, reference, current with its first numeric feature shifted far) for a contract."""
    schema = contract if request.param == "project" else toy_contracts[request.param]
    features = features_of(schema)
    if not features.numeric:
        pytest.skip("this contract has no numeric feature to shift")
    frame = generate(800, seed=0, contract=schema)
    reference, current = frame.iloc[:500].reset_index(drop=True), frame.iloc[500:].reset_index(drop=True)
    shifted = features.numeric[0]
    spread = float(reference[shifted].std()) or 1.0
    current[shifted] = current[shifted] + 3 * spread
    return features, reference, current, shifted


@pytest.fixture(scope="module")
def model(subject, params):
    """The repository's model (params.yaml's train section) fitted on the reference batch."""
    features, reference, _, _ = subject
    return fit_model(reference, features, params.train)


def test_metrics_of_task(subject):
    """The helper below gives a metrics dict with the task's names."""
    features = subject[0]
    assert (
        set(metrics_for(features))
        == {"classification": set(TEST_METRICS), "regression": {"rmse", "mae", "median_ae", "r2"}}[features.task]
    )


def metrics_for(features):
    return {"classification": dict(TEST_METRICS), "regression": {"rmse": 1.0, "mae": 0.8, "median_ae": 0.5, "r2": 0.7}}[
        features.task
    ]


def test_report_finds_the_shifted_column_first(subject, drift_params):
    features, reference, current, shifted = subject

    report = drift_report(reference, current, features, drift_params)

    assert report["columns"][0]["column"] == shifted
    assert report["columns"][0]["drifted"]
    assert {c["column"] for c in report["columns"]} == set(features.columns)
    assert (report["reference_rows"], report["current_rows"]) == (500, 300)
    assert report["dataset"]["columns"] == len(features.columns)
    assert report["prediction"] is None
    assert report["performance"] is None


def test_report_has_target_drift_when_the_batch_is_labelled(subject, drift_params):
    features, reference, current, _ = subject

    target = drift_report(reference, current, features, drift_params)["target"]

    assert target["column"] == features.target
    assert target["kind"] == (CATEGORICAL if features.is_classification else NUMERIC)
    if features.is_binary:
        assert target["method"] == "z"
    if not features.is_classification:
        assert target["method"] == "ks"  # a numeric target gets the numeric test
    assert target["current_rows"] == len(current)


def test_report_has_no_target_drift_when_the_batch_is_unlabelled(subject, drift_params):
    features, reference, current, shifted = subject

    report = drift_report(reference, current.drop(columns=features.target), features, drift_params)

    assert report["target"] is None
    assert report["columns"][0]["column"] == shifted


def predictions_of(model, subject) -> Predictions:
    """What the predict stage writes for the reference and the current batch."""
    features, reference, current, _ = subject
    return Predictions(
        score(model, reference, features, "test"), score(model, current, features, "test"), classes_of(model)
    )


def test_report_with_a_model_has_prediction_drift_and_performance(subject, drift_params, model):
    features, reference, current, _ = subject
    test_metrics = metrics_for(features)

    report = drift_report(reference, current, features, drift_params, predictions_of(model, subject), test_metrics)

    prediction = report["prediction"]
    assert prediction["column"] == "prediction"
    assert (prediction["reference_rows"], prediction["current_rows"]) == (len(reference), len(current))
    assert prediction["kind"] == (CATEGORICAL if features.is_classification else NUMERIC)
    assert report["performance"]["test"] == test_metrics
    X, y = current[features.columns], current[features.target]
    if features.is_classification:
        expected = score_classification(y, model.predict_proba(X), list(model.classes_), features.positive_class)
    else:
        expected = score_regression(y, model.predict(X))
    assert report["performance"]["current"] == expected


def test_report_of_an_unlabelled_batch_has_no_current_performance(subject, drift_params, model):
    features, reference, current, _ = subject
    test_metrics = metrics_for(features)

    unlabelled = current.drop(columns=features.target)
    report = drift_report(reference, unlabelled, features, drift_params, predictions_of(model, subject), test_metrics)

    assert report["prediction"] is not None
    assert report["performance"] == {"test": test_metrics, "current": None}


def table_rows(markdown: str) -> list[str]:
    """The data rows of the first markdown table."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|---"))
    return [line for line in lines[start + 1 :] if line.startswith("|")]


def test_markdown_summary_without_drift(subject, drift_params, model):
    features, reference, current, shifted = subject
    report = drift_report(
        reference, current, features, drift_params, predictions_of(model, subject), metrics_for(features)
    )

    summary = markdown_summary(report)

    drifted = report["dataset"]["drifted_columns"]
    headline = "**Dataset drift detected**" if report["dataset"]["drifted"] else "**No dataset drift**"
    assert summary.startswith(f"{headline}: {drifted} of {len(features.columns)} columns drifted")
    assert table_rows(summary)[0].startswith(f"| {shifted} | numeric |")
    assert "⚠️ yes" in table_rows(summary)[0]
    assert "| metric | test split | current batch |" in summary
    first_metric = next(iter(metrics_for(features)))
    assert f"| {first_metric} | {metrics_for(features)[first_metric]:.4f} |" in summary
    assert "model predictions" in summary


def test_markdown_summary_with_drift(subject, drift_params):
    features, reference, current, _ = subject
    current = current.copy()
    for name in features.numeric:
        current[name] = current[name] + 3 * (float(reference[name].std()) or 1.0)

    report = drift_report(reference, current, features, drift_params)
    summary = markdown_summary(report)

    if report["dataset"]["share"] >= drift_params.dataset_drift_share:
        assert summary.startswith("**Dataset drift detected**")
    assert table_rows(summary)[0].startswith(f"| {report['columns'][0]['column']} |")
    assert report["columns"][0]["drifted"]


def test_html_is_self_contained(subject, drift_params):
    features, reference, current, _ = subject
    report = drift_report(reference, current, features, drift_params)

    page = render_html(report)

    assert page.startswith("<!doctype html>")
    assert "<script" not in page.lower()
    assert "http" not in page.lower()
    assert re.search(r"\b(?:src|href)\s*=", page) is None
    assert page.count("<svg") == len(report["columns"])  # a distribution chart inline for every column


def test_html_is_deterministic_and_in_severity_order(subject, drift_params):
    features, reference, current, shifted = subject
    first = render_html(drift_report(reference, current, features, drift_params))
    report = drift_report(reference, current, features, drift_params)

    second = render_html(report)

    assert first == second
    positions = [second.index(f"<b>{c['column']}</b>") for c in report["columns"]]
    assert positions == sorted(positions)
    assert positions[0] == second.index(f"<b>{shifted}</b>")


# The CLI


def drift_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """`python -m pipeline.drift ARGS` with the project's interpreter, from the root so params.yaml is found."""
    command = [sys.executable, "-m", "pipeline.drift", *map(str, args)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def batches(contract):
    """The project's contract: a reference and a current batch, the first numeric feature shifted far."""
    features = features_of(contract)
    frame = generate(800, seed=0, contract=contract)
    reference, current = frame.iloc[:500].reset_index(drop=True), frame.iloc[500:].reset_index(drop=True)
    if features.numeric:  # the largest reference values: drifted, and still inside the contract's range
        name = features.numeric[0]
        current[name] = reference[name].sort_values(ascending=False, ignore_index=True).iloc[: len(current)]
    return reference, current


def test_cli_writes_the_three_reports(batches, contract, tmp_path):
    reference, current = tmp_path / "reference.csv", tmp_path / "current.csv"
    write_csv(batches[0], reference)
    write_csv(batches[1], current)
    out = tmp_path / "out"

    result = drift_cli(reference, current, "--out", out)

    assert result.returncode == 0, result.stderr
    report = json.loads((out / "drift.json").read_text(encoding="utf-8"))
    assert {c["column"] for c in report["columns"]} == set(features_of(contract).columns)
    assert report["current_rows"] == len(batches[1])
    assert (out / "drift.md").read_text(encoding="utf-8") in result.stdout
    assert (out / "drift.html").read_text(encoding="utf-8").startswith("<!doctype html>")


def test_cli_rejects_a_current_batch_that_breaks_the_contract(batches, tmp_path):
    reference, current = tmp_path / "reference.csv", tmp_path / "current.csv"
    write_csv(batches[0], reference)
    broken = batches[1].assign(not_in_the_contract=1)
    write_csv(broken, current)

    result = drift_cli(reference, current, "--out", tmp_path / "out")

    assert result.returncode == 1
    assert str(current) in result.stderr
    assert "'not_in_the_contract'" in result.stderr
    assert "unexpected column" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_cli_needs_both_files(tmp_path):
    result = drift_cli(tmp_path / "reference.csv")

    assert result.returncode == 2
    assert "give both REFERENCE and CURRENT" in result.stderr


def test_numeric_only_method_on_a_categorical_column_is_a_config_error(drift_params):
    params = drift_params.model_copy(update={"columns": {"place": ColumnDriftParams(method="ks")}})
    message = r"drift\.columns\.place\.method: ks compares numbers, but 'place' is categorical; use chisquare, z or"
    with pytest.raises(ConfigError, match=message + " jensenshannon$"):
        column_drift("place", pd.Series(["a", "b"] * 5), pd.Series(["a", "a"] * 5), "categorical", params)


def test_empty_reference_is_a_clear_error(drift_params):
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    with pytest.raises(PipelineError, match="the reference has no rows"):
        dataset_drift(frame.iloc[:0], frame, {"x": "numeric"}, drift_params)


# Too little data, typos in overrides, and thresholds checked against the test that runs


def test_a_one_row_batch_is_too_small_for_a_verdict(drift_params):
    reference, current = pd.DataFrame({"x": np.arange(100.0)}), pd.DataFrame({"x": [5.0]})

    columns, verdict = dataset_drift(reference, current, {"x": NUMERIC}, drift_params)

    [column] = columns
    assert (column.judged, column.drifted, column.method) == (False, False, None)
    assert "too few values for a verdict" in column.note
    assert (verdict["drifted"], verdict["share"]) == (None, None)
    assert "no column has enough values" in verdict["note"]


def test_columns_with_too_few_values_are_left_out_of_the_share(drift_params):
    reference = pd.DataFrame({"x": np.arange(100.0), "y": np.arange(100.0)})
    current = pd.DataFrame({"x": np.arange(100.0) + 80, "y": [1.0, *([np.nan] * 99)]})

    _, verdict = dataset_drift(reference, current, {"x": NUMERIC, "y": NUMERIC}, drift_params)

    assert (verdict["columns"], verdict["drifted_columns"], verdict["share"]) == (1, 1, 1.0)


def test_method_of_a_column_without_verdict_prints_n_a(drift_params):
    reference, current = pd.DataFrame({"x": np.arange(100.0)}), pd.DataFrame({"x": [5.0, 6.0]})
    columns, verdict = dataset_drift(reference, current, {"x": NUMERIC}, drift_params)
    report = {
        "dataset": verdict,
        "columns": [as_dict(c) for c in columns],
        "reference_rows": 100,
        "current_rows": 2,
        "target": None,
        "prediction": None,
        "performance": None,
    }

    summary = markdown_summary(report)

    assert "None" not in summary
    assert "| x (too few values for a verdict: 100 reference, 2 current" in summary
    assert summary.startswith("**No drift verdict**")
    assert "| n/a | n/a | n/a | n/a |" in summary


def test_an_override_for_a_column_that_is_not_compared_is_an_error(drift_params):
    params = overridden(
        drift_params, x_typo=ColumnDriftParams(threshold=0.01), y_typo=ColumnDriftParams(threshold=0.01)
    )
    frame = pd.DataFrame({"x": np.arange(50.0), "w": np.arange(50.0)})
    message = r"drift\.columns: x_typo, y_typo is not a column the drift check compares \(w, x\)$"
    with pytest.raises(ConfigError, match=message):
        dataset_drift(frame, frame, {"x": NUMERIC, "w": NUMERIC}, params)


def test_a_threshold_without_a_method_is_checked_against_the_default_test(drift_params):
    """The default test for a small numeric reference is KS, a p-value: a threshold of 2 would always drift."""
    params = overridden(drift_params, x=ColumnDriftParams(threshold=2.0))
    with pytest.raises(ConfigError, match=r"drift\.columns\.x\.threshold: 2\.0 is not below 1.*ks, a p-value test"):
        column_drift("x", SHIFT_REF, SHIFT_CUR, NUMERIC, params)


def test_a_threshold_without_a_method_may_exceed_one_for_a_distance(drift_params):
    params = overridden(
        drift_params.model_copy(update={"small_reference_rows": 10}), x=ColumnDriftParams(threshold=2.0)
    )
    result = column_drift("x", SHIFT_REF, SHIFT_CUR, NUMERIC, params)
    assert (result.method, result.threshold, result.drifted) == ("wasserstein", 2.0, False)


def test_threshold_of_exactly_one_for_a_p_value_test_is_refused(drift_params):
    params = overridden(drift_params, x=ColumnDriftParams(threshold=1.0))
    with pytest.raises(ConfigError, match="is not below 1"):
        column_drift("x", SHIFT_REF, SHIFT_CUR, NUMERIC, params)


def test_markdown_escapes_names_and_notes_from_the_data(drift_params):
    evil = "<img src=x onerror=alert(1)>|[x](javascript:alert(1))"
    reference = pd.DataFrame({evil: ["a", "b"] * 30})
    current = pd.DataFrame({evil: ["a", "b"] * 10 + ["<b>bold</b>|`tick`"]})
    columns, verdict = dataset_drift(reference, current, {evil: CATEGORICAL}, drift_params)
    report = {
        "dataset": verdict,
        "columns": [as_dict(c) for c in columns],
        "reference_rows": 60,
        "current_rows": 21,
        "target": None,
        "prediction": None,
        "performance": None,
    }

    summary = markdown_summary(report)

    assert "<img" not in summary
    assert "<b>" not in summary
    assert "](javascript" not in summary
    [row] = table_rows(summary)
    assert len(re.findall(r"(?<!\\)\|", row)) == 7  # six cells: no pipe from the data splits the row


def test_cli_out_under_a_file_is_a_one_line_error(batches, tmp_path):
    reference, current = tmp_path / "reference.csv", tmp_path / "current.csv"
    write_csv(batches[0], reference)
    write_csv(batches[1], current)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")

    result = drift_cli(reference, current, "--out", blocker / "reports")

    assert result.returncode == 1
    assert f"{blocker} is a file" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
