"""Multiverses: exclusions, the shared resampling draws under the null, the SSN joint test, a
small Monte Carlo on synthetic worlds with a known truth, and `python run.py -m +multiverse=...`
end to end with its curve and its nested MLflow runs."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from conftest import make_panel
from eqexp.analyses.regression import fit_plans
from eqexp.estimate import Workspace
from eqexp.models import plans
from eqexp.multiverse.axes import MultiverseError, apply_exclusions
from eqexp.multiverse.draws import firm_weights, null_draws, null_estimates
from eqexp.inference import hypothesis
from eqexp.multiverse.joint import joint_tests
from eqexp.runner import prepare
from eqexp.spec import Column, ModelSpec, MultiverseSpec, Spec, TrimSpec

ROOT = Path(__file__).resolve().parents[1]
CONTROLS = ["scale", "age", "roa", "rdebt", "fic"]


# --- axes and exclusions ---------------------------------------------------------------------


def jobs_of(arguments: list[str], exclude) -> list[list[str]]:
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    parsed = OverridesParser.create().parse_overrides(arguments)
    jobs = [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
    return apply_exclusions(jobs, parsed, exclude)


def test_exclusions_remove_exactly_the_named_combinations():
    arguments = ["trim=none,p5,p1", "lags=none,l1", "vcov=firm,province", "data=synthetic_small"]
    exclude = [{"trim": "p5", "lags": "l1"}, {"trim": ["p1"], "vcov": "province"}]
    kept = {tuple(job) for job in jobs_of(arguments, exclude)}
    full = {(f"trim={t}", f"lags={lag}", f"vcov={v}", "data=synthetic_small")
            for t, lag, v in itertools.product(["none", "p5", "p1"], ["none", "l1"], ["firm", "province"])}
    named = {j for j in full if ("trim=p5" in j and "lags=l1" in j) or ("trim=p1" in j and "vcov=province" in j)}
    assert len(named) == 4 and kept == full - named
    assert jobs_of(arguments, None) == jobs_of(arguments, [])  # no exclusions: Hydra's own list, in its order
    assert [tuple(j) for j in jobs_of(arguments, exclude)] == [j for j in map(tuple, jobs_of(arguments, None)) if j in kept]


@pytest.mark.parametrize(("exclude", "message"), [
    ([{"trimm": "p5"}], "names the axis 'trimm', which this sweep does not have. Did you mean 'trim'"),
    ([{"trim": "p10"}], "names trim=p10, which is not an option of the axis 'trim'. Did you mean 'p1'"),
    ([{"data": "synthetic_small"}], "names the axis 'data', which this sweep does not have"),  # not swept: not an axis
    (["trim"], "write a mapping of axes to options"),
    ([{"trim": ["none", "p5", "p1"]}], "leaves none of the 12 combinations"),
])
def test_an_exclusion_that_names_what_the_sweep_lacks_fails_with_the_nearest_name(exclude, message):
    with pytest.raises(MultiverseError, match=message.replace("(", r"\(").replace(")", r"\)")):
        jobs_of(["trim=none,p5,p1", "lags=none,l1", "vcov=firm,province", "data=synthetic_small"], exclude)


def test_a_command_line_override_narrows_an_axis_without_breaking_its_exclusions():
    # the multiverse declares lags none,l1,l2 and excludes l2; the command line keeps only none
    kept = jobs_of(["lags=none,l1,l2", "trim=none,p5", "lags=none"], [{"lags": "l2", "trim": "p5"}])
    assert kept == [["lags=none", "trim=none"], ["lags=none", "trim=p5"]]


def test_the_reference_multiverse_plans_its_product_minus_its_exclusions():
    from hydra.core.global_hydra import GlobalHydra

    from hydra_plugins.eqexp_sweeps import planned_jobs

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["+multiverse=reference"], return_hydra_config=True)
        sweeper = OmegaConf.to_container(cfg.hydra.sweeper, resolve=True)
        jobs = planned_jobs([], GlobalHydra.instance().config_loader(), sweeper["params"], sweeper["exclude"])
    choices = [dict(o.split("=", 1) for o in job) for job in jobs]
    assert len(jobs) == 4 * 3 * 3 * 2 * 2 - 3 * 2 * 2 == 132  # winsor1 without controls: 3 lags × 2 samples × 2 vcov
    assert not any(c["trim"] == "winsor1" and c["controls"] == "none" for c in choices)
    assert {c["trim"] for c in choices} == {"none", "p5", "p1", "winsor1"} and {c["lags"] for c in choices} == {"none", "l1", "l2"}
    assert {c["controls"] for c in choices} == {"none", "size_age", "full"}
    assert cfg.multiverse.draws == 500 and cfg.model.columns == [{"label": ""}]


# --- the shared draws under the null --------------------------------------------------------


def test_a_firms_weights_depend_on_the_seed_the_draw_and_its_id_only():
    ids = np.arange(5000) * 7 + 3
    every = firm_weights(ids, 11, 400)
    some = firm_weights(ids[::3], 11, 400)  # another spec's sample: its firms get the same counts
    assert every.shape == (400, 5000) and np.array_equal(some, every[:, ::3])
    assert abs(every.mean() - 1) < 0.01 and abs(every.var() - 1) < 0.02  # Poisson(1)
    assert np.mean(every == 0) == pytest.approx(np.exp(-1), abs=0.005)
    assert not np.array_equal(firm_weights(ids, 12, 400), every)
    assert np.array_equal(firm_weights(ids[::-1], 11, 400), every[:, ::-1])


def small_spec(draws: int = 4, **model) -> Spec:
    model = {"controls": ["scale", "age"], "columns": [Column(label="")], **model}
    return Spec(model=ModelSpec(**model), multiverse=MultiverseSpec(name="test", draws=draws, seed=5))


def dummies_ols(df: pd.DataFrame, y: str, x: list[str]) -> np.ndarray:
    """Least squares with explicit firm and year dummies (the brute force)."""
    design = np.column_stack([df[x].to_numpy(float), pd.get_dummies(df.firm, dtype=float).to_numpy(),
                              pd.get_dummies(df.year, drop_first=True, dtype=float).to_numpy()])
    return np.linalg.lstsq(design, df[y].to_numpy(float), rcond=None)[0][: len(x)]


@pytest.mark.numerics
@pytest.mark.parametrize("square", [True, False])
def test_null_draws_equal_a_brute_force_loop_over_resampled_panels(square):
    """Each draw: every firm copied as often as its weight (copies are new firms), the outcome
    minus the spec's estimates times its treatment terms, least squares with explicit dummies."""
    spec = small_spec(square=square)
    df, _ = prepare(make_panel(n_firms=150, seed=3), spec)
    workspace, planned = Workspace(df), plans(spec)
    (fit,) = fit_plans(workspace, spec, planned)
    drawn, _ = null_estimates(workspace, spec, planned[0], fit)
    terms = [t for t in fit.regressors if t.startswith("market")]
    null = df.assign(y_null=df.quality - sum(fit.coef(t) * df[t] for t in terms))
    weights = firm_weights(np.sort(df.firm_id.unique()), 5, 4)
    for b in range(4):
        copies = [part.assign(firm=f"{firm}_{k}") for (firm, part), w in zip(null.groupby("firm_id"), weights[b]) for k in range(w)]
        brute = dummies_ols(pd.concat(copies), "y_null", fit.regressors)
        np.testing.assert_allclose(drawn[b], brute, rtol=0, atol=1e-10)
    assert np.abs(drawn[:, : len(terms)]).max() < 5 * fit.tidy.std_error.max()  # centred on the null


@pytest.mark.numerics
def test_specs_on_the_same_rows_share_the_moments_and_get_their_own_null(process_cache):
    """Two control sets on the same rows: the second solves from the first's moments (kept per
    worker) and equals a fresh computation."""
    df, _ = prepare(make_panel(n_firms=150, seed=3), small_spec())
    workspace = Workspace(df, "test-rows", process_cache)  # a data key and the process's cache: kept between specs, as in a sweep worker
    results, shared = {}, []
    for controls in (["scale", "age"], ["scale"]):
        spec = small_spec(controls=controls)
        (fit,) = fit_plans(workspace, spec, plans(spec))
        results[tuple(controls)], reused = null_estimates(workspace, spec, plans(spec)[0], fit)
        shared.append(reused)
    assert shared == [False, True] and len([k for k in process_cache.moments if k[0][0] == "test-rows"]) == 1
    spec = small_spec(controls=["scale"])
    fresh = Workspace(df)
    (fit,) = fit_plans(fresh, spec, plans(spec))
    np.testing.assert_allclose(results[("scale",)], null_estimates(fresh, spec, plans(spec)[0], fit)[0], rtol=0, atol=1e-12)


def test_a_worker_keeps_the_drawn_moments_without_the_per_firm_entries(process_cache):
    """What a worker keeps for later specs is the draws' sums (draws × p × p), not the firms'
    entries (firms × p²): nothing of those, not even a view that would hold them."""
    df, _ = prepare(make_panel(n_firms=150, seed=3), small_spec())
    workspace = Workspace(df, "test-kept", process_cache)
    spec = small_spec()
    (fit,) = fit_plans(workspace, spec, plans(spec))
    null_estimates(workspace, spec, plans(spec)[0], fit)
    kept = [moments for key, (moments, _) in process_cache.moments.items() if key[0][0] == "test-kept"]
    assert len(kept) == 1 and kept[0].cross.size == 0 and kept[0].cross.base is None


def test_jobs_on_the_same_preparation_share_the_prepared_panel_and_no_other_does(process_cache):
    from eqexp.panel import preparation_key

    panel = make_panel(n_firms=50)
    market, other_vcov, scale = small_spec(), small_spec(), small_spec(treatment="scale", controls=["age"])
    other_vcov.vcov.cluster = ["province"]
    keys = [preparation_key(s, "test") for s in (market, other_vcov, scale)]
    assert keys[0] == keys[1] != keys[2]
    first = process_cache.prepare(keys[0], lambda: prepare(panel, market))
    assert process_cache.prepare(keys[1], lambda: prepare(panel, other_vcov)) is first  # kept: prepared once for both
    assert "scale_sq" in process_cache.prepare(keys[2], lambda: prepare(panel, scale))[0] and "scale_sq" not in first[0]


def test_a_job_on_another_prepared_panel_drops_the_absorbed_columns_of_the_previous_one(process_cache):
    """A worker keeps absorbed columns for the later jobs of its chain (same prepared panel); the
    first job on another panel drops the others' columns, which no later job of the chain uses."""
    from eqexp.panel import preparation_key

    panel, blocks = make_panel(n_firms=50), process_cache.blocks
    market, scale = small_spec(), small_spec(treatment="scale", controls=["age"])
    first_key, other_key = preparation_key(market, "test"), preparation_key(scale, "test")
    column = np.ones(100)
    process_cache.prepare(first_key, lambda: prepare(panel, market))
    blocks.put((first_key, "rows", ("firm_id",), "market"), column)
    process_cache.prepare(first_key, lambda: prepare(panel, market))  # the same panel: kept
    assert (first_key, "rows", ("firm_id",), "market") in blocks.columns
    before = blocks.bytes
    process_cache.prepare(other_key, lambda: prepare(panel, scale))
    assert not [k for k in blocks.columns if k[0] != other_key] and blocks.bytes <= before - column.nbytes


# --- the joint test ------------------------------------------------------------------------------


@pytest.mark.numerics
def test_ssn_statistics_equal_a_hand_computation_on_a_tiny_curve():
    estimates, se = np.array([0.5, 0.2, -0.1, 0.3]), np.array([0.1, 0.2, 0.1, 0.05])
    df = np.full(4, 10**12)  # t = normal: z-values by hand
    null = np.array([[0.0, 0.0, 0.0, 0.0],      # sign +, share 0,   median 0,    Z 0
                     [-0.5, -0.2, -0.1, 0.3],   # sign −, share 1/4, median .15,  Z (5+1+1−6)/2 = .5
                     [0.6, 0.4, 0.2, 0.3],      # sign +, share 1 (|t| = 2 > 1.96), median .35, Z (6+2+2+6)/2 = 8
                     [0.3, 0.1, 0.1, 0.1]])     # sign +, share 1/2 (t = 3, 2), median .1, Z (3+.5+1+2)/2 = 3.25
    tests = {t.hypothesis: t for t in joint_tests(estimates, se, df, null, alpha=0.05)}
    # observed: t = 5, 1, −1, 6; three positive: sign +; significant with it: specs 1 and 4
    assert tests["share_significant"].estimate == 0.5 and tests["share_significant"].p_value == pytest.approx(3 / 5)  # draws 3, 4 tie or beat
    assert tests["median"].estimate == pytest.approx(0.25) and tests["median"].p_value == pytest.approx(2 / 5)
    assert tests["stouffer_z"].estimate == pytest.approx((5 + 1 - 1 + 6) / 2, abs=1e-6) and tests["stouffer_z"].p_value == pytest.approx(2 / 5)
    assert all("dominant sign positive" in t.null for t in tests.values()) and {t.draws for t in tests.values()} == {4}
    flipped = {t.hypothesis: t for t in joint_tests(-estimates, se, df, -null, alpha=0.05)}  # a negative curve: the same test
    assert flipped["median"].estimate == pytest.approx(-0.25) and "dominant sign negative" in flipped["median"].null
    assert [flipped[s].p_value for s in tests] == [tests[s].p_value for s in tests]


# --- a small Monte Carlo on synthetic worlds with a known truth ----------------------------------

NULL_WORLD = {"region_mult": {"East": 0.0, "Central": 0.0, "West": 0.0}, "a_h": 0.0, "a_r": 0.0}  # market moves nothing


def joint_p_values(panel: pd.DataFrame, draws: int = 199) -> dict[str, float]:
    """Three specs (control sets, trimming) of the inverted U on one world, and their joint test."""
    rows = []
    for trim, controls in ((TrimSpec(), []), (TrimSpec(), CONTROLS), (TrimSpec(name="p5", method="trim"), ["scale", "age"])):
        spec = Spec(model=ModelSpec(controls=controls, columns=[Column(label="")]), trim=trim,
                    multiverse=MultiverseSpec(name="mc", draws=draws))
        df, _ = prepare(panel, spec)
        workspace, planned = Workspace(df), plans(spec)
        with contextlib.redirect_stdout(io.StringIO()):
            rows += null_draws(workspace, spec, planned, fit_plans(workspace, spec, planned))
    tests = joint_tests(np.array([r["estimate"] for r in rows]), np.array([r["se"] for r in rows]),
                        np.array([r["df_t"] for r in rows]), np.column_stack([r["draws"] for r in rows]), alpha=0.05)
    return {t.hypothesis: t.p_value for t in tests}


@pytest.mark.slow
def test_the_joint_test_rejects_in_the_default_world_and_holds_its_level_in_worlds_without_an_effect():
    from eqexp.data.synthetic import WorldParams, generate_world

    effect = joint_p_values(generate_world(WorldParams(n_firms=12_000, n_obs=72_000)).panel)
    assert max(effect.values()) < 0.05, effect
    null = pd.DataFrame([joint_p_values(generate_world(WorldParams(n_firms=800, n_obs=4800, seed=1000 + s, **NULL_WORLD)).panel)
                         for s in range(25)])
    assert (null < 0.05).sum().max() <= 4, null  # P(Binomial(25, 0.05) ≥ 5) = 0.007
    assert 0.3 < null["median"].mean() < 0.7 and 0.3 < null["stouffer_z"].mean() < 0.7, null  # p-values about uniform


# --- end to end: python run.py -m +multiverse=reference ------------------------------------------

AXES = ["trim=none,p5", "lags=none,l1", "controls=none,full", "vcov=firm,province"]


def multiverse_run(base: Path, *overrides: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "run.py", "-m", "+multiverse=reference", "data=world_small", f"data.cache_dir={base / 'cache'}",
               f"tracking.uri=sqlite:///{base / 'mlflow.db'}", f"tracking.artifact_root={base / 'art'}",
               f"hydra.sweep.dir={base / 'sweep'}", *overrides]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, env={**os.environ, "HYDRA_FULL_ERROR": "0"})


@pytest.fixture(scope="module")
def multiverse(tmp_path_factory) -> Path:
    """16 specs of the reference multiverse on the small world (its own panel: no build to wait for), 4 of
    them excluded from the command line."""
    base = tmp_path_factory.mktemp("multiverse")
    done = multiverse_run(base, *AXES, "sample=all", "multiverse.draws=100", "hydra.sweeper.exclude=[{trim: p5, lags: l1}]")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "[eqexp] curve: Median estimate" in done.stdout
    return base


@pytest.mark.slow
def test_the_curve_has_every_spec_but_the_excluded_and_each_equals_the_spec_run_alone(multiverse):
    from eqexp import runner
    from eqexp.spec import load_spec
    from eqexp.sweep.plan import task_config

    sweep_dir = multiverse / "sweep"
    curve = pd.read_csv(sweep_dir / "curve.csv")
    assert len(curve) == 12 and not ((curve.trim == "p5") & (curve.lags == "l1")).any()
    assert len(json.loads((sweep_dir / "sweep.json").read_text())["jobs"]) == 12  # excluded jobs are never planned
    assert list(curve.estimate) == sorted(curve.estimate) and list(curve["rank"]) == list(range(1, 13))
    assert set(curve.term) == {"market_sq", "L1_market_sq"}  # the inverted U's curvature, lagged as the spec lags it
    joint = hypothesis.read(sweep_dir / "curve_joint.csv").set_index("hypothesis")
    assert list(joint.index) == ["share_significant", "median", "stouffer_z"] and (joint.draws == 100).all()
    assert joint.estimate["median"] == pytest.approx(curve.estimate.median())
    axes = pd.read_csv(sweep_dir / "curve_axes.csv")
    assert list(dict.fromkeys(axes.axis)) == ["trim", "lags", "controls", "vcov"]
    assert (axes[axes.axis == "vcov"].mean_shift.fillna(0) == 0).all()  # clustering never moves an estimate
    for name in ("curve.md", "curve.png"):
        assert (sweep_dir / name).stat().st_size > 1000
    for row in curve.iloc[[0, 7, 11]].itertuples():  # the spec run alone, as `python run.py <its choices>` would
        overrides = [f"trim={row.trim}", f"lags={row.lags}", f"controls={row.controls}", f"vcov={row.vcov}", "data=world_small",
                     f"data.cache_dir={multiverse / 'cache'}", "tracking=off", "model.columns=[{label: ''}]"]
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            spec = load_spec(task_config(compose(config_name="config", overrides=overrides)))
        with contextlib.redirect_stdout(io.StringIO()):
            alone = runner.run_job(spec, multiverse / f"alone_{row.rank}", log=False)
        tidy = alone.fits[0].tidy.set_index("term").loc[row.term]
        assert (tidy.estimate, tidy.std_error, tidy.p_value) == pytest.approx((row.estimate, row.se, row.p), rel=1e-12)
        utest = alone.tests.set_index(["test", "hypothesis"]).estimate["utest", "turning_point_fieller"]
        assert alone.fits[0].n_obs == row.n_obs and float(utest) == pytest.approx(row.turning_point, rel=1e-12)


@pytest.mark.slow
def test_every_model_is_a_nested_mlflow_run_with_uniform_metric_names_and_its_choices(multiverse):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{multiverse / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("eqexp").experiment_id], max_results=1000)
    (parent,) = [r for r in runs if r.data.tags.get("eqexp.kind") == "sweep"]
    jobs = {r.info.run_id: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    models = [r for r in runs if r.data.tags.get("mlflow.parentRunId") in jobs]
    assert len(jobs) == len(models) == 12 and all(m.data.tags["eqexp.kind"] == "model" for m in models)
    assert not any(k.startswith("m1.") for j in jobs.values() for k in j.data.metrics)  # no metric named by a column number
    curve = pd.read_csv(multiverse / "sweep" / "curve.csv").set_index("run_id")
    for model in models:
        row = curve.loc[model.data.tags["mlflow.parentRunId"]]
        metrics, params = model.data.metrics, model.data.params
        assert {"estimate", "se", "t", "p", "ci_low", "ci_high", "n_obs", "r2", "estimate_sq", "turning_point", "utest_p"} <= set(metrics)
        assert (metrics["estimate_sq"], metrics["se_sq"], metrics["p_sq"], metrics["n_obs"], metrics["turning_point"], metrics["utest_p"]) \
            == pytest.approx((row.estimate, row.se, row.p, row.n_obs, row.turning_point, row.utest_p), rel=1e-12)
        assert {k: params[f"choice.{k}"] for k in ("trim", "lags", "controls", "vcov")} == {k: row[k] for k in ("trim", "lags", "controls", "vcov")}
        assert params["fit.column"] == "(1)" and params["fit.term"] == row.term.removesuffix("_sq") and params["choice.multiverse"] == "reference"
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"curve.png", "curve.csv", "curve.md", "curve_joint.csv", "curve_axes.csv"} <= artifacts
    joint = hypothesis.read(multiverse / "sweep" / "curve_joint.csv").set_index("hypothesis")
    assert parent.data.metrics["curve.median_p"] == pytest.approx(joint.p_value["median"]) and parent.data.metrics["curve.n_specs"] == 12


@pytest.mark.slow
def test_an_axis_naming_an_unknown_option_fails_before_anything_runs(tmp_path):
    done = multiverse_run(tmp_path, "trim=none,p10", "hydra.sweeper.exclude=[]", "tracking=off")
    assert done.returncode == 2 and "Could not find 'trim/p10'" in done.stderr and "winsor1" in done.stderr
    assert "Traceback" not in done.stderr and "estimating" not in done.stdout
    assert not [p for p in (tmp_path / "sweep").iterdir() if p.is_dir()]  # no job started
