"""Lind–Mehlum inverted-U test against formulas written out independently here.

Stata's `utest` is the reference and no Stata is at hand; tests/test_fixest_reference.py compares
with its authors' R port (jotlind/utest) on fixest's estimates. No worked example with numbers
could be found in Lind and Mehlum's paper or utest's help file to reproduce here."""

import math

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest
from scipy import stats

from eqexp.inference.utest import fieller_interval, utest
from numerics import in_test_order

pytestmark = pytest.mark.numerics  # also run with the rows shuffled (numerics.py)

B1, B2, DF = 0.8, -0.1, 299
V = np.array([[0.004, -0.0004], [-0.0004, 0.00006]])
XL, XH = 0.5, 7.0


def in_fieller_set(x: np.ndarray, b1: float, b2: float, v: np.ndarray, t: float) -> np.ndarray:
    """x is in the Fieller set iff H0: x* = x is not rejected, i.e. the slope at x is
    insignificant: (b1 + 2 b2 x)² ≤ t² Var(b1 + 2 b2 x)."""
    return (b1 + 2 * b2 * x) ** 2 <= t**2 * (v[0, 0] + 4 * x * v[0, 1] + 4 * x**2 * v[1, 1])


def test_matches_hand_formulas():
    r = utest(B1, B2, V, XL, XH, DF)
    s11, s12, s22 = V[0, 0], V[0, 1], V[1, 1]
    t_l = (B1 + 2 * B2 * XL) / math.sqrt(s11 + 4 * XL**2 * s22 + 4 * XL * s12)
    t_h = (B1 + 2 * B2 * XH) / math.sqrt(s11 + 4 * XH**2 * s22 + 4 * XH * s12)
    assert r.slope_low == pytest.approx(B1 + 2 * B2 * XL, abs=1e-10)
    assert r.slope_high == pytest.approx(B1 + 2 * B2 * XH, abs=1e-10)
    assert (r.t_low, r.t_high) == pytest.approx((t_l, t_h), abs=1e-10)
    assert r.t_slm == pytest.approx(min(abs(t_l), abs(t_h)), abs=1e-10)  # Stata's t_sac
    assert r.p_value == pytest.approx(stats.t.sf(min(abs(t_l), abs(t_h)), DF), abs=1e-10)
    assert not r.trivial_failure

    x_star = -B1 / (2 * B2)
    var = s11 / (4 * B2**2) - 2 * s12 * B1 / (4 * B2**3) + s22 * B1**2 / (4 * B2**4)
    t = stats.t.ppf(0.975, DF)
    assert r.turning_point == pytest.approx(x_star, abs=1e-10)
    assert r.turning_point_se == pytest.approx(math.sqrt(var), abs=1e-10)
    assert (r.delta_low, r.delta_high) == pytest.approx(
        (x_star - t * math.sqrt(var), x_star + t * math.sqrt(var)), abs=1e-10
    )

    # Fieller, Stata's formula: theta = b1/b2 bounds, x* interval [-theta_h/2, -theta_l/2].
    d = (s12**2 - s11 * s22) * t**2 + B2**2 * s11 + B1**2 * s22 - 2 * B1 * B2 * s12
    theta_l = (-s12 * t**2 + B1 * B2 - t * math.sqrt(d)) / (B2**2 - s22 * t**2)
    theta_h = (-s12 * t**2 + B1 * B2 + t * math.sqrt(d)) / (B2**2 - s22 * t**2)
    assert r.fieller.kind == "bounded"
    assert (r.fieller.low, r.fieller.high) == pytest.approx((-theta_h / 2, -theta_l / 2), abs=1e-10)
    # ... and the endpoints are where the slope's t-value is exactly ±t.
    roots = np.sort(np.roots([4 * B2**2 - 4 * t**2 * s22, 4 * B1 * B2 - 4 * t**2 * s12, B1**2 - t**2 * s11]))
    assert (r.fieller.low, r.fieller.high) == pytest.approx(tuple(roots), abs=1e-10)


def test_clear_inverted_u_passes_all_steps_and_reports_them_in_the_one_test_shape():
    r = utest(B1, B2, V, XL, XH, DF)
    assert r.step1 and r.step2 and r.step3 and r.inverted_u
    assert r.verdict.startswith("Inverted U: all three steps pass.")
    rows = {t.hypothesis: t for t in r.tests()}
    assert rows["lind_mehlum"].statistic == r.t_slm and rows["lind_mehlum"].p_value == r.p_value and rows["lind_mehlum"].df == DF
    assert rows["turning_point_fieller"].estimate == pytest.approx(4.0)
    assert (rows["turning_point_fieller"].ci_low, rows["turning_point_fieller"].ci_high) == (r.fieller.low, r.fieller.high)
    assert (rows["slope_at_x_low"].point, rows["slope_at_x_high"].point) == (XL, XH)
    assert [rows[h].reject for h in ("beta2_negative", "lind_mehlum", "turning_point_fieller")] == [r.step1, r.step2, r.step3]
    assert rows["inverted_u"].reject is True and rows["inverted_u"].verdict == r.verdict
    assert all(t.test == "utest" and t.applies for t in rows.values())


def test_extremum_outside_the_data_range_is_a_trivial_failure():
    r = utest(1.0, -0.05, V, XL, XH, DF)  # x* = 10 > x_H: slopes positive at both ends
    assert r.trivial_failure and r.t_low > 0 and r.t_high > 0
    assert r.p_value > 0.5 and not r.step2 and not r.step3 and not r.inverted_u
    assert "extremum outside interval — trivial failure to reject H0" in r.verdict
    lind_mehlum = next(t for t in r.tests() if t.hypothesis == "lind_mehlum")
    assert lind_mehlum.reject is False and "trivial failure" in lind_mehlum.verdict


def test_u_shape_fails():
    r = utest(-B1, -B2, V, XL, XH, DF)
    assert not r.trivial_failure and r.t_low < 0 < r.t_high
    assert r.t_slm < 0 and r.p_value > 0.5
    assert not r.step1 and not r.step2 and not r.inverted_u
    assert r.verdict.startswith("No inverted U: step 1, 2 fail.")


@pytest.mark.parametrize(
    ("b1", "b2", "v", "kind"),
    [
        (B1, B2, V, "bounded"),
        (0.8, -0.1, np.diag([0.01, 0.01]), "two_half_lines"),  # β2² < s22·T², d > 0
        (0.1, -0.1, np.diag([0.01, 0.01]), "real_line"),  # d < 0
    ],
)
def test_fieller_kinds_are_the_set_of_insignificant_slopes(b1, b2, v, kind):
    t = stats.t.ppf(0.975, DF)
    f = fieller_interval(b1, b2, v, DF)
    assert f.kind == kind
    grid = np.linspace(-200, 200, 40_001)
    if kind == "bounded":
        inside = (grid >= f.low) & (grid <= f.high)
    elif kind == "two_half_lines":
        assert f.low < f.high
        inside = (grid <= f.low) | (grid >= f.high)
    else:
        inside = np.ones_like(grid, dtype=bool)
    bounds = np.array([b for b in (f.low, f.high) if np.isfinite(b)])
    clear = np.all(np.abs(grid[:, None] - bounds) > 1e-9 * (1 + np.abs(bounds)), axis=1)  # a grid point on a bound is a rounding away from either side
    np.testing.assert_array_equal(inside[clear], in_fieller_set(grid, b1, b2, v, t)[clear])
    assert not f.inside(-1e9, 1e9) or kind == "bounded"


def test_delta_interval_contains_turning_point():
    for b1, b2 in [(B1, B2), (0.3, -0.2), (2.0, -0.01)]:
        r = utest(b1, b2, V, XL, XH, DF)
        assert r.delta_low < r.turning_point < r.delta_high
        assert r.turning_point - r.delta_low == pytest.approx(r.delta_high - r.turning_point)


def test_wide_fieller_interval_fails_step_three():
    # SLM p = 0.03: significant at 5%, but the 95% Fieller set reaches beyond x_H.
    r = utest(0.8, -0.1, np.diag([0.004, 0.0005]), XL, XH, DF)
    assert r.step1 and r.step2 and not r.step3
    assert r.verdict.startswith("No inverted U: step 3 fails.")


def test_slm_at_alpha_is_the_1_minus_2alpha_fieller_set_inside_the_range():
    for s22 in np.linspace(0.0002, 0.0008, 61):
        v = np.diag([0.004, s22])
        inside = fieller_interval(0.8, -0.1, v, DF, alpha=0.10).inside(XL, XH)
        assert inside == (utest(0.8, -0.1, v, XL, XH, DF).p_value < 0.05)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="2x2"):
        utest(B1, B2, np.eye(3), XL, XH, DF)
    with pytest.raises(ValueError, match="x_low < x_high"):
        utest(B1, B2, V, XH, XL, DF)


def test_on_a_fixed_effects_fit_with_clustered_errors():
    rng = np.random.default_rng(5)
    n_firms = 300
    df = pd.DataFrame({"firm": np.repeat(np.arange(n_firms), 8), "year": np.tile(np.arange(8), n_firms)})
    df["x"] = rng.uniform(0, 8, len(df))
    df["x2"] = df.x**2
    df["y"] = 0.8 * df.x - 0.1 * df.x2 + rng.normal(size=n_firms)[df.firm] + rng.normal(size=len(df))
    df = in_test_order(df)
    fit = pf.feols("y ~ x + x2 | firm + year", df, vcov={"CRV1": "firm"})
    r = utest(*fit.coef()[["x", "x2"]], fit._vcov, df.x.min(), df.x.max(), df=n_firms - 1)
    assert r.inverted_u
    assert abs(r.turning_point - 4) < 3 * r.turning_point_se
