"""2SLS and its diagnostics against linearmodels on the same within-transformed data, against
hand formulas on small data, the synthetic world's known truth, and the named errors of bad input.

(R fixest's own IV output: tests/test_iv_reference.py.) linearmodels estimates on eqexp's
absorbed columns without knowing the fixed effects, so its small-sample factors count only
the regressors: its variances times (N − k)/(N − K) (K with the fixed effects, as fixest
counts them for the vcov) are eqexp's.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from linearmodels.iv import IV2SLS, IVGMM
from scipy import stats

from eqexp.data.synthetic.world import WorldParams, generate_world
from eqexp.estimate import fit
from eqexp.inference import hypothesis, iv_tests
from eqexp.ols import residual_df
from eqexp.cache import ProcessCache
from eqexp.runner import run_job
from eqexp.spec import SpecError, VcovSpec, load_spec, uses_iv

REFERENCE = Path(__file__).resolve().parent / "data" / "fixest"
VCOVS = {"iid": VcovSpec(type="iid", cluster=[]), "hetero": VcovSpec(type="hetero", cluster=[]), "CRV": VcovSpec()}
LM_COV = {"iid": "unadjusted", "hetero": "robust", "CRV": "clustered"}


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    df = pd.read_csv(REFERENCE / "iv_panel.csv")
    return df.assign(x_sq=df.x**2, z1_sq=df.z1**2)


def iv_fit(panel, kind="iid", instruments=("z1", "z2"), endogenous=("x",)):
    return fit(panel, "y", [*endogenous, "scale", "age"], ["firm_id", "year"], VCOVS[kind],
               endogenous=list(endogenous), instruments=list(instruments))


def linearmodels_fit(data, kind):
    clusters = {"clusters": data.clusters.codes[:, 0]} if kind == "CRV" else {}
    return IV2SLS(data.y, data.exogenous, data.endogenous, data.instruments).fit(cov_type=LM_COV[kind], debiased=True, **clusters)


@pytest.mark.parametrize("kind", list(VCOVS))
@pytest.mark.parametrize("instruments", [("z1",), ("z1", "z2")], ids=["just", "over"])
def test_2sls_equals_linearmodels_on_the_absorbed_columns(panel, kind, instruments):
    result = iv_fit(panel, kind, instruments)
    data = result.iv
    theirs = linearmodels_fit(data, kind)
    order = [2, 0, 1]  # linearmodels: exogenous first, then endogenous
    np.testing.assert_allclose(result.tidy.estimate, theirs.params.to_numpy()[order], rtol=1e-10)
    ratio = (data.n_obs - data.k) / residual_df(data.n_obs, data.k, data.kind, data.fe_names, data.fe_codes, data.clusters)
    np.testing.assert_allclose(result.tidy.std_error, theirs.std_errors.to_numpy()[order] * math.sqrt(ratio), rtol=1e-10)


def test_sargan_durbin_and_wu_hausman_equal_linearmodels(panel):
    data = iv_fit(panel, "iid").iv
    theirs = linearmodels_fit(data, "iid")
    part = iv_tests.partial_out(data)
    sargan = iv_tests.overidentification(part)
    assert sargan.test == "sargan" and sargan.df == 1
    assert sargan.statistic == pytest.approx(theirs.sargan.stat, rel=1e-10)
    wu, c = iv_tests.endogeneity(part)
    # the same F but for the denominator's degrees of freedom (linearmodels does not count the fixed effects)
    assert wu.statistic / wu.df_denom == pytest.approx(theirs.wu_hausman().stat / theirs.wu_hausman().df_denom, rel=1e-10)
    # with iid errors the difference-in-Sargan C statistic is Durbin's
    assert c.statistic == pytest.approx(theirs.durbin().stat, rel=1e-10)


@pytest.mark.parametrize("kind", ["hetero", "CRV"])
def test_hansen_j_equals_linearmodels_two_step_gmm(panel, kind):
    data = iv_fit(panel, kind).iv
    clusters = {"clusters": data.clusters.codes[:, 0]} if kind == "CRV" else {}
    weight = {"weight_type": "clustered", **clusters} if kind == "CRV" else {"weight_type": "robust"}
    gmm = IVGMM(data.y, data.exogenous, data.endogenous, data.instruments, **weight).fit(cov_type=LM_COV[kind], **clusters)
    j = iv_tests.overidentification(iv_tests.partial_out(data))
    assert j.test == "hansen_j"
    assert j.statistic == pytest.approx(gmm.j_stat.stat, rel=1e-8)


# --- hand formulas -----------------------------------------------------------------------------


def canonical_correlations(part) -> np.ndarray:
    """ρ²: eigenvalues of (X⊥ᵀX⊥)⁻¹ X⊥ᵀP_Z X⊥."""
    pz_x = part.z @ np.linalg.lstsq(part.z, part.x, rcond=None)[0]
    return np.sort(np.linalg.eigvals(np.linalg.solve(part.x.T @ part.x, part.x.T @ pz_x)).real)


@pytest.mark.parametrize("kind", list(VCOVS))
def test_kp_rk_wald_with_iid_covariance_is_cragg_donald(panel, kind):
    """Kleibergen–Paap: their rk statistic with Σ̂ ⊗ (ZᵀZ)⁻¹ as the covariance of vec(Π̂) is Cragg–Donald's."""
    part = iv_tests.partial_out(iv_fit(panel, kind, ("z1", "z1_sq", "z2"), ("x", "x_sq")).iv)
    pi, resid, zz_inv = iv_tests.first_stage_coefficients(part)
    sigma = resid.T @ resid / iv_tests.first_df(part)
    rk = iv_tests.rk_statistic(part, pi, np.kron(sigma, zz_inv))
    # Cragg–Donald by hand: the smallest eigenvalue of Σ̂⁻¹ X⊥ᵀP_Z X⊥
    pz_x = part.z @ pi
    cd = np.linalg.eigvals(np.linalg.solve(sigma, part.x.T @ pz_x)).real.min() / part.l
    assert rk / part.l == pytest.approx(cd, rel=1e-9)
    assert iv_tests.cragg_donald_f(part)[0].statistic == pytest.approx(cd, rel=1e-9)


@pytest.mark.parametrize("kind", list(VCOVS))
def test_kp_rk_wald_with_one_endogenous_regressor_is_the_first_stage_wald(panel, kind):
    part = iv_tests.partial_out(iv_fit(panel, kind).iv)
    pi, resid, _ = iv_tests.first_stage_coefficients(part)
    v_pi, _ = iv_tests.vec_pi_covariance(part, resid)
    wald = float(pi[:, 0] @ np.linalg.solve(v_pi, pi[:, 0]))
    assert iv_tests.rk_statistic(part, pi, v_pi) == pytest.approx(wald, rel=1e-9)
    assert iv_tests.kp_wald_f(part).statistic == pytest.approx(wald / 2, rel=1e-9)


def test_kp_lm_iid_is_andersons_canonical_correlation_lm(panel):
    for endogenous, instruments in ((("x",), ("z1", "z2")), (("x", "x_sq"), ("z1", "z1_sq", "z2"))):
        part = iv_tests.partial_out(iv_fit(panel, "iid", instruments, endogenous).iv)
        lm = iv_tests.kp_lm(part)
        assert lm.statistic == pytest.approx(part.data.n_obs * canonical_correlations(part)[0], rel=1e-9)
        assert lm.df == part.l - part.p + 1


def test_kp_lm_robust_with_one_regressor_is_the_robust_score_test(panel):
    """Π = 0 by the heteroskedasticity-robust LM: (Z⊥ᵀx⊥)ᵀ [Σᵢ z⊥ᵢz⊥ᵢᵀ x⊥ᵢ²]⁻¹ (Z⊥ᵀx⊥)."""
    part = iv_tests.partial_out(iv_fit(panel, "hetero").iv)
    g = part.z.T @ part.x[:, 0]
    scores = part.z * part.x[:, [0]]
    assert iv_tests.kp_lm(part).statistic == pytest.approx(float(g @ np.linalg.solve(scores.T @ scores, g)), rel=1e-9)


def test_effective_f_is_the_robust_f_with_one_instrument_and_the_f_with_iid_errors(panel):
    part = iv_tests.partial_out(iv_fit(panel, "CRV", ("z1",)).iv)
    assert iv_tests.effective_f(part).statistic == pytest.approx(iv_tests.kp_wald_f(part).statistic, rel=1e-10)
    # Montiel Olea–Pflueger's table: one instrument, τ = 10 %, 5 % level: 23.109
    assert iv_tests.effective_f(part).point == pytest.approx(23.109, abs=5e-4)
    part = iv_tests.partial_out(iv_fit(panel, "iid").iv)
    assert iv_tests.effective_f(part).statistic == pytest.approx(iv_tests.first_stage_f(part)[0].statistic, rel=1e-10)


def test_stock_yogo_rows(panel):
    part = iv_tests.partial_out(iv_fit(panel, "CRV").iv)
    rows = iv_tests.cragg_donald_f(part)
    assert rows[0].statistic == pytest.approx(iv_tests.first_stage_f(part)[0].statistic, rel=1e-10)  # one regressor: the F
    assert [r.point for r in rows[1:]] == [19.93, 11.59, 8.75, 7.25]  # one endogenous regressor, two instruments
    assert "19.93 / 11.59 / 8.75 / 7.25" in rows[0].verdict and all(r.reject for r in rows)


def ar_by_hand(part, beta0: float) -> float:
    """AR F with iid errors: the F of the instruments in the regression of y⊥ − x⊥β₀ on Z⊥."""
    target = part.y - part.x[:, 0] * beta0
    fitted = part.z @ np.linalg.lstsq(part.z, target, rcond=None)[0]
    return float(fitted @ fitted) / part.l / (float((target - fitted) @ (target - fitted)) / iv_tests.first_df(part))


@pytest.mark.parametrize("kind", list(VCOVS))
@pytest.mark.parametrize("instruments", [("z1",), ("z1", "z2")], ids=["just", "over"])
def test_anderson_rubin_set_is_its_test_inverted(panel, kind, instruments):
    part = iv_tests.partial_out(iv_fit(panel, kind, instruments).iv)
    if kind == "iid":
        assert iv_tests.ar_statistic(part, np.array([0.3]))[0] == pytest.approx(ar_by_hand(part, 0.3), rel=1e-10)
    cs = iv_tests.ar_confidence_set(part)
    (low, high), = cs.intervals
    stat, df = iv_tests.ar_statistic(part, np.array([low]))
    crit = stats.f.isf(0.05, part.l, df)
    for end in (low, high):  # the ends are where AR(β₀) reaches its critical value
        assert iv_tests.ar_statistic(part, np.array([end]))[0] == pytest.approx(crit, rel=1e-6)
    width = high - low
    assert iv_tests.ar_statistic(part, np.array([(low + high) / 2]))[0] < crit
    assert iv_tests.ar_statistic(part, np.array([high + width / 10]))[0] > crit
    if kind != "iid" and part.l > 1:  # the grid inversion, checked against an exact solution of the same set
        return
    grid = iv_tests._grid_set(part, crit)
    assert len(grid.intervals) == 1 and grid.intervals[0] == pytest.approx((low, high), rel=1e-9)


def test_anderson_rubin_set_is_unbounded_exactly_when_the_instrument_is_irrelevant_and_says_so():
    """One instrument, iid errors: the AR set is unbounded exactly when the first stage's F is below the critical value
    (Dufour 1997); then it is the whole line or two half-lines, and the verdict says so in words."""
    shapes = []
    for seed in range(12):
        rng = np.random.default_rng(seed)
        n = 400
        df = pd.DataFrame({"g": rng.integers(0, 40, n), "z": rng.normal(size=n), "x": rng.normal(size=n)})
        df["y"] = 0.5 * df.x + rng.normal(size=n)
        result = fit(df, "y", ["x"], ["g"], VcovSpec(type="iid", cluster=[]), endogenous=["x"], instruments=["z"])
        tests = {(t.test, t.hypothesis): t for t in iv_tests.diagnostics(result.iv)}
        ar, first = tests[("anderson_rubin", "x")], tests[("first_stage_f", "x")]
        unbounded = math.isinf(ar.ci_low) or math.isinf(ar.ci_high)
        assert unbounded == (first.statistic < stats.f.isf(0.05, 1, first.df_denom))
        assert ("unbounded" in ar.verdict) == unbounded and ("(bounded)" in ar.verdict) == (not unbounded)
        if unbounded and "∪" in ar.verdict:
            assert "disjoint" in ar.verdict
        shapes.append(unbounded)
    assert sum(shapes) >= 6  # mostly unbounded: the instrument is irrelevant


# --- the known truth -------------------------------------------------------------------------------


def test_2sls_recovers_the_truth_where_ols_does_not():
    """A world where an unobserved province-year shock moves integration and quality (confounding), with a
    linear effect β1 and the mediators controlled (so the instrument's only path to quality is integration)."""
    p = WorldParams(n_firms=4000, n_obs=24000, beta2=0.0, soe_mult=1.0, region_mult={"East": 1.0, "Central": 1.0, "West": 1.0},
                    early_mult=1.0, late_mult=1.0, confounding=0.3, confounding_quality=0.01, instrument_noise=0.1)
    df = generate_world(p).panel.assign(cell=lambda d: d.province * 10_000 + d.year)
    vcov = VcovSpec(cluster=["cell"])  # the shock is province-year: cluster there
    x = ["market", "scale", "age", "roa", "rdebt", "fic", "humancapital", "rd"]
    ols = fit(df, "quality", x, ["firm_id", "year"], vcov).tidy.set_index("term").loc["market"]
    iv = fit(df, "quality", x, ["firm_id", "year"], vcov, endogenous=["market"], instruments=["market_iv"])
    row = iv.tidy.set_index("term").loc["market"]
    assert abs(ols.estimate - p.beta1) / ols.std_error > 5
    assert abs(row.estimate - p.beta1) / row.std_error < 2.5
    tests = {(t.test, t.hypothesis): t for t in iv_tests.diagnostics(iv.iv)}
    assert tests[("endogeneity", "wu_hausman")].reject and tests[("endogeneity", "c_statistic")].reject
    assert tests[("anderson_rubin", "market")].ci_low <= p.beta1 <= tests[("anderson_rubin", "market")].ci_high


def test_the_reference_world_is_unchanged_by_its_instrument():
    """confounding = 0 (the default): market and quality are draw for draw those of the world without the IV knobs."""
    a = generate_world(WorldParams(n_firms=500, n_obs=3000)).panel
    b = generate_world(WorldParams(n_firms=500, n_obs=3000, confounding_quality=0.5, instrument_noise=2.0)).panel
    pd.testing.assert_frame_equal(a.drop(columns="market_iv"), b.drop(columns="market_iv"))
    within = a.market_iv - a.market
    assert within.std() == pytest.approx(0.1, rel=0.1)


# --- bad input -------------------------------------------------------------------------------------


def spec(**model):
    return {"model": {"controls": ["scale", "age"], "columns": [{}], **model}}


@pytest.mark.parametrize(("model", "message"), [
    ({"instruments": ["scale"]}, "'scale', which is a control"),
    ({"instruments": ["market"]}, "'market', which is the treatment"),
    ({"instruments": ["market_sq", "z"]}, "'market_sq', which is the treatment"),
    ({"instruments": ["z"]}, "under-identified: 2 endogenous regressors"),
    ({"instruments": ["z"], "square": False, "endogenous": ["roa"]}, "under-identified: 2 endogenous"),
    ({"instruments": ["z", "z"]}, "more than once"),
    ({"instruments": ["z", "z_sq"], "endogenous": ["scale"]}, "'scale', which is a control"),
    ({"estimator": "iv"}, "'model.instruments' is empty"),
    ({"estimator": "2sls"}, "not one of auto, ols, iv"),
])
def test_bad_iv_specs_are_named_errors(model, message):
    with pytest.raises(SpecError, match=message):
        load_spec(spec(**model))


def test_iv_refuses_what_only_ols_serves():
    with pytest.raises(SpecError, match="not offered with a mediator"):
        load_spec({**spec(instruments=["z", "z_sq"]), "mediator": {"variable": "rd"}})
    ols = load_spec(spec(instruments=["z"], estimator="ols"))  # ols: the instruments are not used, so not too few
    assert ols.model.instruments == ["z"] and not uses_iv(ols)


def test_an_unknown_instrument_is_named_before_estimation(tmp_path):
    config = {**spec(instruments=["market_ivv", "market_ivv_sq"]), "data": {"name": "world_small", "source": "world",
              "params": {"n_firms": 400, "n_obs": 2400}, "cache_dir": str(tmp_path / "cache")}, "tracking": {"enabled": False}}
    with pytest.raises(SpecError, match="'model.instruments' names the variable 'market_ivv'.*Did you mean 'market_iv'"):
        run_job(config, tmp_path / "run")


def test_an_absorbed_or_collinear_instrument_is_named(panel):
    constant = panel.assign(zf=panel.firm_id % 7, z3=2 * panel.z1 - panel.z2)
    with pytest.raises(SpecError, match="the instrument zf is absorbed by the fixed effects"):
        fit(constant, "y", ["x", "scale"], ["firm_id", "year"], VcovSpec(), endogenous=["x"], instruments=["z1", "zf"])
    with pytest.raises(SpecError, match="the instrument z3 is collinear"):
        fit(constant, "y", ["x", "scale"], ["firm_id", "year"], VcovSpec(), endogenous=["x"], instruments=["z1", "z2", "z3"])


# --- a job ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_job_writes_the_diagnostics_and_group_tests_on_the_iv_estimates(tmp_path):
    data = {"name": "world_small", "source": "world", "params": {"n_firms": 2000, "n_obs": 12000}, "cache_dir": str(tmp_path / "cache")}
    config = {"data": data, "model": {"instruments": ["market_iv", "market_iv_sq"], "columns": [{}]},
              "hetero": {"name": "period", "groups": {"early": "year < 2008", "late": "year >= 2008"}}, "tracking": {"enabled": False}}
    result = run_job(config, tmp_path / "run")
    tests = hypothesis.read(tmp_path / "run" / "tests.csv")
    for model in ("(1)", "(2)"):
        names = set(tests[tests.model == model].test)
        assert {"first_stage_f", "kp_wald_f", "cragg_donald_f", "kp_lm", "effective_f", "anderson_rubin", "hansen_j", "endogeneity",
                "utest"} <= names
    groups = tests[tests.model == "groups"]
    assert {"wald", "suest", "bdiff"} <= set(groups.test) and groups[groups.test == "bdiff"].reject.isna().all()
    # the suest difference is the two groups' 2SLS estimates apart
    early, late = (f.tidy.set_index("term").estimate for f in result.fits)
    diff = groups[(groups.test == "suest") & groups.hypothesis.str.startswith("market_sq")].estimate.iloc[0]
    assert abs(diff) == pytest.approx(abs(early["market_sq"] - late["market_sq"]), rel=1e-10)


def test_uniform_mlflow_metrics_of_an_iv_model(panel):
    from eqexp.model_runs import model_metrics, model_params

    result = fit(panel, "y", ["x", "scale", "age"], ["firm_id", "year"], VCOVS["CRV"], model="(1)", endogenous=["x"], instruments=["z1"])
    tests = hypothesis.frame([("(1)", t) for t in iv_tests.diagnostics(result.iv)])
    rows = tests.set_index(["test", "hypothesis"])
    metrics = model_metrics(result, "x", tests)
    assert metrics["iv_first_stage_f"] == rows.statistic["first_stage_f", "x"]
    assert metrics["iv_kp_wald_f"] == rows.statistic["kp_wald_f", "all"] and metrics["iv_kp_lm_p"] == rows.p_value["kp_lm", "all"]
    assert metrics["iv_effective_f"] == rows.statistic["effective_f", "all"] and metrics["iv_effective_f_cv"] == rows.point["effective_f", "all"]
    assert (metrics["iv_ar_low"], metrics["iv_ar_high"]) == (rows.ci_low["anderson_rubin", "x"], rows.ci_high["anderson_rubin", "x"])
    assert metrics["iv_c_p"] == rows.p_value["endogeneity", "c_statistic"] and "iv_overid_p" not in metrics  # exactly identified
    assert model_params(result, None, "x")["fit.estimator"] == "2sls"


@pytest.mark.slow
def test_an_estimator_sweep_logs_ols_and_2sls_models_side_by_side(tmp_path, small_cache):
    """`-m estimator=ols,iv` (a multiverse's estimator axis) on the measured small world, whose raw sources bring the
    instrument (province_vars): both jobs finish; their model runs carry fit.estimator and, for 2SLS only, the iv_*
    metrics as tests.csv has them. The preset picks no dataset."""
    import os
    import subprocess
    import sys

    from mlflow.tracking import MlflowClient

    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, "run.py", "-m", "estimator=ols,iv", "experiment=endogeneity_iv", "data=synthetic_small",
               f"data.cache_dir={small_cache}",
               f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}", f"tracking.artifact_root={tmp_path / 'mlartifacts'}",
               f"hydra.sweep.dir={tmp_path / 'sweep'}", "report.figures=false"]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=600, env={**os.environ, "HYDRA_FULL_ERROR": "0"})
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("eqexp").experiment_id], "tags.`eqexp.kind` = 'model'")
    by_estimator = {r.data.params["fit.estimator"]: r for r in runs}
    assert set(by_estimator) == {"ols", "2sls"}
    assert not any(k.startswith("iv_") for k in by_estimator["ols"].data.metrics)
    iv_job = next(d for d in (tmp_path / "sweep").iterdir() if "estimator=iv" in d.name)
    tests = hypothesis.read(iv_job / "tests.csv").set_index(["test", "hypothesis"])
    metrics = by_estimator["2sls"].data.metrics
    assert metrics["iv_kp_wald_f"] == pytest.approx(tests.statistic["kp_wald_f", "all"], rel=1e-12)
    assert metrics["iv_ar_p"] == pytest.approx(tests.p_value["anderson_rubin", "joint"], rel=1e-12)
    assert metrics["estimate"] != by_estimator["ols"].data.metrics["estimate"]


# --- Monte Carlo sizes ------------------------------------------------------------------------------


def simulated(rng: np.random.Generator, strength: float, n: int = 200, groups: int = 20, endogeneity: float = 0.8):
    """y = 0·x + u with group effects; x = strength·(z1 + z2) + v, corr(u, v) = endogeneity: the null β = 0 holds."""
    g = np.repeat(np.arange(groups), n // groups)
    z = rng.normal(size=(n, 2))
    u = rng.normal(size=n)
    v = endogeneity * u + math.sqrt(1 - endogeneity**2) * rng.normal(size=n)
    alpha = rng.normal(size=groups)[g]
    frame = pd.DataFrame({"g": g, "z1": z[:, 0], "z2": z[:, 1], "x": strength * z.sum(axis=1) + v + alpha, "w": rng.normal(size=n)})
    return frame.assign(y=u + alpha + 0.3 * frame.w)


def rejection_rates(strength: float, draws: int = 2000, seed: int = 20261208) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    rejected = {"anderson_rubin": 0, "t": 0, "kp_lm": 0}
    for _ in range(draws):
        result = fit(simulated(rng, strength), "y", ["x", "w"], ["g"], VCOVS["iid"], endogenous=["x"], instruments=["z1", "z2"])
        part = iv_tests.partial_out(result.iv)
        rejected["anderson_rubin"] += iv_tests.ar_statistic(part, np.zeros(1))[0] > stats.f.isf(0.05, 2, iv_tests.first_df(part))
        rejected["kp_lm"] += bool(iv_tests.kp_lm(part).reject)
        rejected["t"] += result.tidy.p_value[0] < 0.05
    return {k: v / draws for k, v in rejected.items()}


@pytest.mark.slow
def test_monte_carlo_sizes_of_anderson_rubin_and_kp_lm():
    """On worlds where β = 0: AR rejects 5 % ± 1.5 % with strong and with weak instruments, while the 2SLS t test
    over-rejects with weak ones; with irrelevant instruments the KP rk LM test rejects 5 % ± 1.5 % (2,000 draws each).
    AR at β₀ = 0 regresses y on the instruments, x plays no part: its size is the same whatever their strength
    (5.1 % on these draws; the t test 4.7 % strong, 26 % weak; KP LM 6.0 % irrelevant)."""
    strong, weak, irrelevant = rejection_rates(1.0), rejection_rates(0.05), rejection_rates(0.0)
    for rates in (strong, weak, irrelevant):
        assert abs(rates["anderson_rubin"] - 0.05) <= 0.015
    assert abs(strong["t"] - 0.05) <= 0.015 and weak["t"] > 0.15
    assert abs(irrelevant["kp_lm"] - 0.05) <= 0.015 and strong["kp_lm"] > 0.99


def test_the_iv_table_shows_ols_the_first_stages_and_2sls_on_the_same_rows(tmp_path):
    data = {"name": "world_small", "source": "world", "params": {"n_firms": 1000, "n_obs": 6000}, "cache_dir": str(tmp_path / "cache")}
    config = {"data": data, "experiment": "endogeneity_iv", "tracking": {"enabled": False}, "report": {"figures": False},
              "model": {"instruments": ["market_iv", "market_iv_sq"], "columns": [{}], "controls": ["scale", "age"]}}
    cache = ProcessCache()
    result = run_job(config, tmp_path / "run", cache=cache)
    table = result.tables["table"]
    assert table.header[1][1:] == ["OLS", "First stage", "First stage", "2SLS"]
    assert table.header[2][1:] == ["quality", "market", "market²", "quality"]
    (iv,) = result.fits
    (panel, _), = cache.prepared.values()  # the job's prepared panel (with market_sq), kept in the cache
    ols = fit(panel, "quality", iv.regressors, iv.fixed_effects, VcovSpec())  # the world has no missing instrument: same rows
    assert ols.n_obs == iv.n_obs
    assert table.body[0][1].startswith(f"{ols.coef('market'):.4f}") and table.body[0][4].startswith(f"{iv.coef('market'):.4f}")
    assert any(n.startswith("2SLS (1): market, market² instrumented by market_iv, market_iv²") for n in table.notes)


def test_instruments_are_lagged_as_the_treatment_and_squared_by_the_term_grammar():
    from eqexp.models import plans
    from eqexp.runner import prepare

    config = {"model": {"instruments": ["market_iv", "market_iv_sq", "humancapital"], "columns": [{}], "controls": ["scale"],
                        "endogenous": ["roa"]}, "lags": {"treatment": 1, "controls": 1}}
    (plan,) = plans(load_spec(config))
    assert plan.instruments == ("L1_market_iv", "L1_market_iv_sq", "L1_humancapital") and plan.endogenous == ("L1_market", "L1_market_sq", "L1_roa")
    assert plan.regressors == ["L1_market", "L1_market_sq", "L1_roa", "L1_scale"]
    panel = generate_world(WorldParams(n_firms=300, n_obs=1500)).panel
    df, _ = prepare(panel, load_spec(config))
    lagged = df.merge(panel[["firm_id", "year", "market_iv"]].assign(year=panel.year + 1), on=["firm_id", "year"], how="left",
                      suffixes=("", "_previous"))
    np.testing.assert_array_equal(df.L1_market_iv.to_numpy(), lagged.market_iv_previous.to_numpy())  # gap-aware: a missing year gives NaN
    np.testing.assert_allclose(df.L1_market_iv_sq.dropna(), df.L1_market_iv.dropna() ** 2, rtol=1e-15)


@pytest.mark.parametrize("kind", ["hetero", "CRV"])
def test_robust_c_statistic_equals_linearmodels_hansen_j_with_the_regressor_as_its_own_instrument(panel, kind):
    """Just identified, C is the J of the model whose instruments include x itself: linearmodels' two-step GMM
    (its first step, with x among the instruments, is OLS, whose residuals give the weight)."""
    data = iv_fit(panel, kind, ("z1",)).iv
    clusters = {"clusters": data.clusters.codes[:, 0]} if kind == "CRV" else {}
    weight = {"weight_type": "clustered" if kind == "CRV" else "robust", **clusters}
    gmm = IVGMM(data.y, data.exogenous, data.endogenous, np.column_stack([data.endogenous, data.instruments]), **weight)
    j = gmm.fit(cov_type=LM_COV[kind], **clusters).j_stat.stat
    c = iv_tests.endogeneity(iv_tests.partial_out(data))[1]
    assert c.statistic == pytest.approx(j, rel=1e-9) and c.df == 1


def ar_direct(part, beta: np.ndarray) -> float:
    """AR F by its definition on the rows: y⊥ − X⊥β on Z⊥, the coefficients' Wald with the model's sandwich / l."""
    data = part.data
    target = part.y - part.x @ beta
    zz_inv = np.linalg.inv(part.z.T @ part.z)
    gamma = zz_inv @ part.z.T @ target
    e = target - part.z @ gamma
    k = part.l + data.exogenous.shape[1]
    if data.kind == "iid":
        v = float(e @ e) / residual_df(data.n_obs, k, "iid", data.fe_names, data.fe_codes) * zz_inv
    else:
        v, _ = iv_tests.covariance(part, part.z * e[:, None], zz_inv, k)
    return float(gamma @ np.linalg.solve(v, gamma)) / part.l


TWO_WAY = VcovSpec(cluster=["firm_id", "year"])


@pytest.mark.parametrize("vcov", [*VCOVS.values(), TWO_WAY], ids=[*VCOVS, "two_way"])
def test_ar_from_its_sums_equals_ar_on_the_rows(panel, vcov):
    result = fit(panel, "y", ["x", "x_sq", "scale", "age"], ["firm_id", "year"], vcov, endogenous=["x", "x_sq"],
                 instruments=["z1", "z1_sq", "z2"])
    part = iv_tests.partial_out(result.iv)
    betas = np.array([[0.0, 0.0], [0.4, -0.07], [1.0, 0.3], [-2.0, 0.5]])
    np.testing.assert_allclose(iv_tests.ar_statistics(part.ar, betas), [ar_direct(part, b) for b in betas], rtol=1e-9)


@pytest.mark.parametrize("kind", ["iid", "CRV"])
def test_ar_projection_set_of_the_treatment_with_its_square(panel, kind):
    """{β₁: min over β₂ of AR(β₁, β₂) ≤ F crit}: at its ends the profiled AR equals the critical value (β₂ minimised by
    scipy on AR computed on the rows); inside it the 2SLS estimate; it is wider than the Wald interval."""
    from scipy import optimize

    result = fit(panel, "y", ["x", "x_sq", "scale", "age"], ["firm_id", "year"], VCOVS[kind], endogenous=["x", "x_sq"],
                 instruments=["z1", "z1_sq", "z2"])
    part = iv_tests.partial_out(result.iv)
    rows = {t.hypothesis: t for t in iv_tests.anderson_rubin(part)}
    projection = rows["x_projection"]
    crit = stats.f.isf(0.05, part.l, part.ar.df)
    for end in (projection.ci_low, projection.ci_high):
        best = optimize.minimize_scalar(lambda b2: ar_direct(part, np.array([end, b2])), bracket=(-0.5, 0.5), tol=1e-12)
        assert best.fun == pytest.approx(crit, rel=1e-5)
    x = result.tidy.set_index("term").loc["x"]
    assert projection.ci_low < x.conf_low < x.estimate < x.conf_high < projection.ci_high
    assert projection.reject and "(bounded)" in projection.verdict and rows["joint"].reject


def test_the_reduced_form_column_on_request_is_indirect_least_squares(tmp_path):
    """Just identified with one endogenous regressor: 2SLS = reduced-form coefficient / first-stage coefficient."""
    data = {"name": "world_small", "source": "world", "params": {"n_firms": 1000, "n_obs": 6000}, "cache_dir": str(tmp_path / "cache")}
    config = {"data": data, "tracking": {"enabled": False}, "report": {"figures": False},
              "model": {"instruments": ["market_iv"], "square": False, "columns": [{}], "controls": ["scale"], "reduced_form": True}}
    cache = ProcessCache()
    result = run_job(config, tmp_path / "run", cache=cache)
    table = result.tables["table"]
    assert table.header[1][1:] == ["OLS", "First stage", "Reduced form", "2SLS"]
    (iv,) = result.fits
    (panel, _), = cache.prepared.values()
    first = fit(panel, "market", ["market_iv", "scale"], iv.fixed_effects, VcovSpec()).coef("market_iv")
    reduced = fit(panel, "quality", ["market_iv", "scale"], iv.fixed_effects, VcovSpec()).coef("market_iv")
    assert iv.coef("market") == pytest.approx(reduced / first, rel=1e-10)
    row = next(r for r in table.body if r[0] == "market_iv")
    assert row[3].startswith(f"{reduced:.4f}") and row[2].startswith(f"{first:.4f}")


@pytest.mark.parametrize("split", ["firm_id <= 60", "year < 2009"], ids=["firms", "period"])
def test_group_model_on_2sls_equals_linearmodels_stacked_iv(panel, split):
    """The groups' fully interacted 2SLS model (first stages' fitted values as regressors, ỹ − (X̃ − X̂)β̂ as outcome)
    against linearmodels' IV2SLS of the stacked groups (block-diagonal regressors and instruments), firm-clustered:
    the same coefficients, and the same covariance up to the one small-sample factor (a period split shares firms,
    so the groups' estimates covary)."""
    from eqexp.analyses.heterogeneity import group_design
    from eqexp.estimate import Workspace
    from eqexp.inference.groups import stack_groups
    from eqexp.models import Plan

    regressors, fe = ["x", "scale", "age"], ["firm_id", "year"]
    plan = Plan("(1)", "", "y", regressors, endogenous=("x",), instruments=("z1", "z2"))
    workspace = Workspace(panel)
    queries = {"a": split, "b": f"not ({split})"}
    designs = [group_design(workspace, g, q, "y", regressors, fe, "firm_id", plan, VCOVS["CRV"]) for g, q in queries.items()]
    ours = stack_groups(designs, regressors, fe, "firm_id")
    blocks = {"y": [], "x": [], "w": [], "z": [], "firm": []}
    for query in queries.values():
        data = fit(panel, "y", regressors, fe, VCOVS["CRV"], query=query, endogenous=["x"], instruments=["z1", "z2"]).iv
        blocks["y"].append(data.y)
        for key, block in (("x", data.endogenous), ("w", data.exogenous), ("z", data.instruments)):
            blocks[key].append(block)
        blocks["firm"].append(workspace.values(workspace.sample(["y", *regressors, "z1", "z2", "firm_id"], fe, query), "firm_id"))

    def block_diagonal(key):
        sizes = [len(y) for y in blocks["y"]]
        out = np.zeros((sum(sizes), sum(b.shape[1] for b in blocks[key])))
        row = col = 0
        for b, n in zip(blocks[key], sizes):
            out[row:row + n, col:col + b.shape[1]] = b
            row, col = row + n, col + b.shape[1]
        return out

    y = np.concatenate(blocks["y"])
    theirs = IV2SLS(y, block_diagonal("w"), block_diagonal("x"), block_diagonal("z")).fit(
        cov_type="clustered", clusters=np.concatenate(blocks["firm"]), debiased=False)
    # linearmodels' order: exogenous (scale, age per group), then endogenous (x per group); ours: group-major (x, scale, age)
    order = [4, 0, 1, 5, 2, 3]
    np.testing.assert_allclose(ours.coef.ravel(), theirs.params.to_numpy()[order], rtol=1e-10)
    v = theirs.cov.to_numpy()[np.ix_(order, order)]
    factor = ours.vcov[0, 0] / v[0, 0]
    assert 1 < factor < 1.2  # pyfixest's (N − 1)/(N − K)·G/(G − 1) for the interacted model
    np.testing.assert_allclose(ours.vcov, factor * v, rtol=0, atol=1e-9 * np.abs(factor * v).max())
