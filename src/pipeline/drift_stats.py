"""The statistical tests behind the drift report, with Evidently's defaults and verdicts.

Each test is a plain numpy/scipy function on two 1-D arrays with nulls and
infinities already removed, so it runs in a few vectorised passes however many
rows there are. The choice of test per column and the drift rule of each
(`p <= t` for KS, `p < t` for chi-square and Z, `d >= t` for distances) follow
Evidently 0.7's `legacy/calculations/stattests`, so users get the verdicts they
know; the parity test in tests/parity checks that against Evidently itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

NUMERIC = "numeric"
CATEGORICAL = "categorical"


@dataclass(frozen=True)
class Method:
    name: str
    statistic: str  # "p_value" (small means drift) or "distance" (large means drift)
    run: Callable[[np.ndarray, np.ndarray, str], float]
    drifted: Callable[[float, float], bool]


def counts_over_union(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Value counts of both samples over the union of their distinct values (same order for both)."""
    codes, uniques = pd.factorize(np.concatenate([reference, current]))
    n_keys = len(uniques)
    return np.bincount(codes[: len(reference)], minlength=n_keys), np.bincount(
        codes[len(reference) :], minlength=n_keys
    )


def distinct_count(reference: np.ndarray, current: np.ndarray, cap: int) -> int:
    """Distinct values over both samples, exact up to `cap` (larger counts return cap + 1)."""
    head = pd.unique(np.concatenate([reference[:4096], current[:4096]]))
    if len(head) > cap:
        return cap + 1
    return len(pd.unique(np.concatenate([reference, current])))


def ks(reference: np.ndarray, current: np.ndarray, kind: str) -> float:
    from scipy import stats  # imported here: ~50 MB that only small references need

    return float(stats.ks_2samp(reference, current)[1])


def chisquare(reference: np.ndarray, current: np.ndarray, kind: str) -> float:
    ref_counts, cur_counts = counts_over_union(reference, current)
    expected = ref_counts * (len(current) / len(reference))
    with np.errstate(divide="ignore", invalid="ignore"):
        from scipy import stats  # imported here, as in ks

        return float(stats.chisquare(cur_counts, expected)[1])


def z(reference: np.ndarray, current: np.ndarray, kind: str) -> float:
    """Two-proportion Z-test on the share of the first (sorted) value; symmetric, so the choice does not matter."""
    keys = np.unique(np.concatenate([reference, current]))
    if len(keys) == 1:
        return 1.0
    p1, p2 = np.mean(reference != keys[0]), np.mean(current != keys[0])
    n1, n2 = len(reference), len(current)
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - special.ndtr(np.abs(statistic))))  # ndtr is the standard normal CDF


def wasserstein(reference: np.ndarray, current: np.ndarray, kind: str) -> float:
    """Wasserstein distance in units of the reference's standard deviation (at least 0.001)."""
    return wasserstein_1d(reference, current) / max(float(np.std(reference)), 0.001)


def wasserstein_1d(u: np.ndarray, v: np.ndarray) -> float:
    """The area between the two empirical CDFs, as scipy.stats.wasserstein_distance, from one merge.

    Both samples are sorted, then merged by a stable sort that only has two runs
    to merge. Walking the merged values, the CDF difference moves by +1/n_u or
    -1/n_v; it is kept as an exact integer (scaled by n_u * n_v) so the sum has
    no accumulated rounding.
    """
    n_u, n_v = len(u), len(v)
    merged = np.concatenate([np.sort(u), np.sort(v)])
    steps = np.argsort(merged, kind="stable")
    merged = merged[steps]
    widths = np.subtract(merged[1:], merged[:-1], out=merged[:-1])  # in place: a million-row column is 8 MB
    from_u = steps < n_u
    steps[from_u], steps[~from_u] = n_v, -n_u  # the argsort's buffer becomes the CDF steps
    np.cumsum(steps, out=steps)
    np.abs(steps, out=steps)
    return float(steps[:-1].dot(widths) / (n_u * n_v))


def jensenshannon(reference: np.ndarray, current: np.ndarray, kind: str) -> float:
    """Jensen-Shannon distance (natural log) between binned shares.

    Numeric columns with more than 20 distinct reference values are binned by
    Sturges' rule over both samples; anything else is compared value by value.
    """
    if kind == NUMERIC and len(pd.unique(reference)) > 20:
        edges = np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")
        ref_share = np.histogram(reference, edges)[0] / len(reference)
        cur_share = np.histogram(current, edges)[0] / len(current)
    else:
        ref_counts, cur_counts = counts_over_union(reference, current)
        ref_share, cur_share = ref_counts / len(reference), cur_counts / len(current)
    return js_distance(ref_share, cur_share)


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """scipy.spatial.distance.jensenshannon (natural log), without importing scipy.spatial."""
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2.0
    return float(np.sqrt((special.rel_entr(p, m).sum() + special.rel_entr(q, m).sum()) / 2.0))


NUMERIC_ONLY = frozenset({"ks", "wasserstein"})  # they order values, which categories do not have

METHODS = {
    "ks": Method("ks", "p_value", ks, lambda p, t: p <= t),
    "chisquare": Method("chisquare", "p_value", chisquare, lambda p, t: p < t),
    "z": Method("z", "p_value", z, lambda p, t: p < t),
    "wasserstein": Method("wasserstein", "distance", wasserstein, lambda d, t: d >= t),
    "jensenshannon": Method("jensenshannon", "distance", jensenshannon, lambda d, t: d >= t),
}


def default_method(
    reference: np.ndarray, current: np.ndarray, kind: str, small_reference_rows: int, max_unique_for_discrete: int
) -> str:
    """Evidently's `_get_default_stattest`: by reference size, column kind and distinct values over both."""
    n_values = distinct_count(reference, current, cap=max_unique_for_discrete)
    if len(reference) <= small_reference_rows:
        if kind == NUMERIC and n_values > max_unique_for_discrete:
            return "ks"
        return "chisquare" if n_values > 2 else "z"
    if kind == NUMERIC and n_values > max_unique_for_discrete:
        return "wasserstein"
    return "jensenshannon"
