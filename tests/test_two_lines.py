"""Simonsohn's two-lines test: its published procedure on a case computed by hand, its slopes
against separate regressions and pf.feols, and its verdict on worlds with and without a U."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest
from hydra import compose, initialize_config_dir

from eqexp.analyses.inverted_u import two_lines
from eqexp.estimate import Workspace, fit
from eqexp.inference import two_lines as tl
from eqexp.runner import run_job
from eqexp.spec import VcovSpec

from conftest import make_panel
from numerics import in_test_order

pytestmark = pytest.mark.numerics  # also run with the rows shuffled (numerics.py)

ROOT = Path(__file__).resolve().parents[1]


def test_flat_region_and_robin_hood_breakpoint_by_hand():
    """x = 1..10: the 10th and 90th percentiles (R type 7) are 1.9 and 9.1, so the middle is 2..9;
    its highest ŷ is 4.5 at x = 6, and ŷ + SE (SE = 0.4) exceeds 4.5 at x = 6 (4.9) and 7 (4.6):
    the flat region is {6, 7}, its median 6.5. With z1 = 3 and z2 = 1 the breakpoint is the
    1/(3 + 1) = 25th percentile of {6, 7}: 6 + 0.25 = 6.25."""
    x = np.arange(1.0, 11.0)
    yhat = np.array([0, 1, 2, 3, 4, 4.5, 4.2, 3, 2, 1.0])
    flat = tl.flat_region(x, yhat, np.full(10, 0.4), "inverted_u")
    np.testing.assert_array_equal(flat, [6.0, 7.0])
    assert np.median(flat) == 6.5
    assert tl.robin_hood(flat, 3.0, 1.0) == pytest.approx(6.25, abs=1e-15)
    assert tl.robin_hood(flat, -1.0, 3.0) == pytest.approx(6.75, abs=1e-15)  # |z|: the signs do not matter
    # a U: the lowest ŷ in the middle, and ŷ − SE below it
    np.testing.assert_array_equal(tl.flat_region(x, -yhat, np.full(10, 0.4), "u"), [6.0, 7.0])


def test_shape_follows_the_quadratic_slope_at_the_lowest_x():
    assert tl.shape_of(0.05, -0.006, 3.3) == "inverted_u"  # 0.05 − 0.0396 > 0: rising at first
    assert tl.shape_of(-0.05, 0.006, 3.3) == "u"


def test_the_breakpoint_belongs_to_the_first_line_in_line_one_and_to_the_second_in_line_two():
    x = np.array([1.0, 2.0, 3.0])
    one, two = tl.segments(x, 2.0, 1), tl.segments(x, 2.0, 2)
    np.testing.assert_array_equal(one["x_low"], [-1, 0, 0]) and np.testing.assert_array_equal(one["high"], [0, 0, 1])
    np.testing.assert_array_equal(two["high"], [0, 1, 1]) and np.testing.assert_array_equal(two["x_high"], [0, 0, 1])


def test_spline_is_linear_beyond_its_outer_knots_and_reproduces_a_line():
    knots = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    x = np.linspace(5.5, 9.0, 8)
    second_difference = np.diff(tl.spline_basis(x, knots), 2, axis=0)
    np.testing.assert_allclose(second_difference, 0, atol=1e-12)


def rising_falling(seed: int = 3, n: int = 4000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, n)
    y = np.where(x < 6, 0.5 * x, 3 - 0.8 * (x - 6)) + rng.normal(0, 1, n)
    return in_test_order(pd.DataFrame({"x": x, "x_sq": x**2, "y": y, "one": 0}))


def test_slopes_equal_separate_regressions_on_each_side():
    """Without controls and with only an intercept (a one-level effect), the interrupted regression is
    two separate lines: its slopes are those of OLS on x ≤ x_c and on x ≥ x_c."""
    df = rising_falling()
    workspace = Workspace(df)
    vcov = VcovSpec("robust", "hetero", [], "Robust")
    f = fit(df, "y", ["x", "x_sq"], ["one"], vcov, workspace=workspace)
    result, _ = two_lines(workspace, f, "x", vcov, None)
    xc = result.breakpoint
    below, above = df[df.x <= xc], df[df.x >= xc]
    assert result.first.slope == pytest.approx(np.polyfit(below.x, below.y, 1)[0], rel=1e-10)
    assert result.second.slope == pytest.approx(np.polyfit(above.x, above.y, 1)[0], rel=1e-10)
    assert result.confirmed and result.shape == "inverted_u"
    assert 4.5 < xc < 7.5  # the true break is at 6
    assert result.n_low + result.n_high == len(df)


def test_interrupted_regressions_equal_pf_feols_with_fixed_effects_and_clusters():
    df = make_panel(n_firms=300)
    df["market_sq"] = df.market**2
    workspace = Workspace(df)
    vcov = VcovSpec("firm", "CRV1", ["firm_id"], "Firm")
    f = fit(df, "quality", ["market", "market_sq", "scale"], ["firm_id", "year"], vcov, workspace=workspace)
    result, _ = two_lines(workspace, f, "market", vcov, None)
    sample = df.iloc[workspace.sample(["quality", "market", "market_sq", "scale", "firm_id"], ["firm_id", "year"]).positions]
    for line, term, found in ((1, "x_low", result.first), (2, "x_high", result.second)):
        data = sample.assign(**tl.segments(sample.market.to_numpy(), result.breakpoint, line))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = pf.feols("quality ~ x_low + x_high + high + scale | firm_id + year", data, vcov={"CRV1": "firm_id"},
                                 demeaner=pf.MapDemeaner(fixef_tol=1e-13))
        assert found.slope == pytest.approx(reference.coef()[term], rel=1e-8)
        assert found.t == pytest.approx(reference.tstat()[term], rel=1e-8)
        assert found.p == pytest.approx(reference.pvalue()[term], rel=1e-6)


def job(tmp: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["data=world_small", "tracking=off", f"data.cache_dir={tmp / 'cache'}", *overrides])
    return run_job(cfg, tmp / "run")


def verdicts(result) -> pd.DataFrame:
    return result.tests.set_index(["model", "test", "hypothesis"])


@pytest.mark.slow
def test_a_monotone_world_fails_the_two_lines_test_where_the_quadratic_finds_curvature(tmp_path):
    """beta2 = 0: quality rises with integration everywhere (heterogeneous multipliers bend the pooled
    line, so the square is significant); both slopes are positive and the U is rejected. The default
    world's U is confirmed at full size (test_recovery)."""
    result = job(tmp_path, "+data.params.beta2=0", "model.two_lines=true")
    found = verdicts(result)
    assert found.reject["(2)", "utest", "beta2_negative"] and not found.reject["(2)", "utest", "inverted_u"]
    assert not found.reject["(2)", "two_lines", "u_shape"]
    assert found.estimate["(2)", "two_lines", "slope_below"] > 0 and found.estimate["(2)", "two_lines", "slope_above"] > 0
    figures = sorted(p.name for p in (tmp_path / "run" / "figures").glob("*.png"))
    assert figures == ["inverted_u_m1.png", "inverted_u_m2.png", "two_lines_m1.png", "two_lines_m2.png"]
    assert any(n.startswith("Two-lines test (2)") and "No inverted U" in n for n in result.tables["table"].notes)


def test_a_treatment_with_two_values_is_a_named_error_not_a_traceback():
    from eqexp.inference import InferenceError

    with pytest.raises(InferenceError, match="2 distinct values: a flexible fit needs at least 3"):
        tl.spline_knots(np.array([0.0, 1.0, 1.0, 0.0]))


@pytest.mark.slow
def test_turning_figures_off_draws_none_and_keeps_every_test(tmp_path):
    """`report.figures=false` (a key of conf/report/default.yaml) skips the figures only: the
    two-lines test, which once was skipped with them, gives the same rows as with figures."""
    drawn = job(tmp_path / "drawn", "model.two_lines=true").tests
    plain = job(tmp_path / "plain", "model.two_lines=true", "report.figures=false")
    assert not (tmp_path / "plain" / "run" / "figures").exists() and plain.figures == {}
    assert (plain.tests.test == "two_lines").sum() == (drawn.test == "two_lines").sum() > 0
    pd.testing.assert_frame_equal(plain.tests, drawn)
