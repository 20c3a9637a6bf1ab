"""The one test shape: decisions from p-values and intervals against their definitions, and
tests.csv's typed columns through a real file."""

import math

import pandas as pd
from scipy import stats

from eqexp.inference import hypothesis
from eqexp.inference.hypothesis import interval_test, not_applicable, p_test


def test_a_p_value_test_rejects_below_alpha_and_says_so_with_its_distribution():
    p = float(2 * stats.t.sf(2.1, 40))
    found = p_test("wald", "A vs B", "x equal in A and B", 2.1, p, "t", 40)
    assert found.reject is True and found.applies and found.p_value == p
    assert found.verdict == f"Rejected at 0.05: x equal in A and B (t(40) = 2.1, p = {p:.3g})"
    kept = p_test("wald_f", "A vs B", "x equal in A and B", 1.2, 0.31, "F", 2, 40, alpha=0.1)
    assert kept.reject is False and "(F(2, 40) = 1.2, p = 0.31)" in kept.verdict and kept.verdict.startswith("Not rejected at 0.1")
    assert "(z = -3, p < 1e-15)" in p_test("suest", "x", "x = 0", -3.0, 1e-17, "normal").verdict


def test_an_undefined_statistic_is_a_test_that_does_not_apply():
    found = p_test("goodman", "ab", "a·b = 0", math.nan, math.nan, "normal")
    assert found.reject is None and not found.applies and math.isnan(found.statistic)
    assert found.verdict.startswith("Does not apply: ")


def test_an_interval_test_rejects_when_the_interval_excludes_zero():
    assert interval_test("bootstrap_bc", "ab", "ab = 0", 0.3, 0.1, 0.5, "bias-corrected bootstrap").reject is True
    kept = interval_test("bootstrap_bc", "ab", "ab = 0", 0.3, -0.1, 0.5, "bias-corrected bootstrap")
    assert kept.reject is False and "contains 0" in kept.verdict


def test_tests_csv_keeps_each_column_one_type_through_a_file(tmp_path):
    rows = [("(1)", p_test("wild", "market", "market = 0", 2.5, 0.02, "wild bootstrap (webb)", draws=9999, seed=7, clusters=12,
                           ci_low=0.01, ci_high=0.2)),
            ("groups", not_applicable("bdiff", "market: A vs B", "market no larger in A than in B", "the groups vary within 3 firms"))]
    frame = hypothesis.frame(rows)
    frame.to_csv(tmp_path / "tests.csv", index=False)
    back = hypothesis.read(tmp_path / "tests.csv")
    assert list(back.columns) == list(hypothesis.COLUMNS) and dict(back.dtypes.astype(str)) == hypothesis.DTYPES
    pd.testing.assert_frame_equal(back, frame)
    assert back.reject.tolist()[0] is True and back.reject.isna().tolist() == [False, True]
    assert back.draws.tolist()[0] == 9999 and back.verdict[1] == "Does not apply: the groups vary within 3 firms"
    assert back.null[1] == "market no larger in A than in B" and math.isnan(back.statistic[1])
