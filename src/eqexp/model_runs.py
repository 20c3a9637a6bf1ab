"""One MLflow run per model, nested under its job's run, with the same metric names in every run.

A table's column number means different things in different jobs ((1) is State-owned in one
job and East in another), so no metric is named by it. Each model's run has:

- metrics: `estimate`, `se`, `t`, `p`, `ci_low`, `ci_high` of the treatment's term (lagged or
  not), `estimate_sq`, `se_sq`, `t_sq`, `p_sq` of its square, `n_obs`, `r2`, `r2_within`;
  for an inverted U `turning_point`, `turning_point_se`, `utest_p`, `utest_t`, `slope_low`,
  `slope_high`, `fieller_low`, `fieller_high` (when bounded), `inverted_u` (1/0); with the
  two-lines test `two_lines_confirmed` (1/0), `two_lines_breakpoint`, `two_lines_slope1`,
  `two_lines_p1`, `two_lines_slope2`, `two_lines_p2`; with the wild bootstrap `wild_p`,
  `wild_ci_low`, `wild_ci_high` of the treatment's term (`…_sq` of its square), `wild_joint_p`;
  with 2SLS `iv_first_stage_f` (the treatment's first stage), `iv_kp_wald_f`, `iv_kp_wald_p`, `iv_kp_lm_p`,
  `iv_cragg_donald_f`, `iv_effective_f`, `iv_effective_f_cv`, `iv_ar_p`, `iv_ar_low`, `iv_ar_high`
  (the AR set's outer ends), `iv_overid_p` (Sargan's or Hansen's), `iv_wu_hausman_p`, `iv_c_p`;
  `coef.<term>` and `se.<term>` of every regressor; `rows_dropped.missing_values`,
  `rows_dropped.singletons`;
- params: `choice.<group>` for every config group the job chose (`choice.trim` = `p5`) and
  every other override that changes results (`choice.data.build.sigma` = `5`), and the
  model's own `fit.column`, `fit.group` (the sample or group), `fit.equation` (a
  mediation's equation, a column's label), `fit.outcome`, `fit.term`, `fit.estimator` (ols, 2sls); the whole resolved
  spec is in the params of the job's run, the model run's parent.

So the MLflow run table can sort and filter every model of a sweep in one view.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from eqexp.estimate import Fit
from eqexp.models import Plan
from eqexp.terms import base_variable, parse

# tests.csv's (test, hypothesis, column) -> the model run's metric
_TESTS = {
    ("utest", "turning_point_fieller", "estimate"): "turning_point", ("utest", "turning_point_fieller", "se"): "turning_point_se",
    ("utest", "lind_mehlum", "p_value"): "utest_p", ("utest", "lind_mehlum", "statistic"): "utest_t",
    ("utest", "slope_at_x_low", "estimate"): "slope_low", ("utest", "slope_at_x_high", "estimate"): "slope_high",
    ("utest", "turning_point_fieller", "ci_low"): "fieller_low", ("utest", "turning_point_fieller", "ci_high"): "fieller_high",
    ("utest", "inverted_u", "reject"): "inverted_u",
    ("two_lines", "u_shape", "reject"): "two_lines_confirmed", ("two_lines", "u_shape", "estimate"): "two_lines_breakpoint",
    ("two_lines", "slope_below", "estimate"): "two_lines_slope1", ("two_lines", "slope_below", "p_value"): "two_lines_p1",
    ("two_lines", "slope_above", "estimate"): "two_lines_slope2", ("two_lines", "slope_above", "p_value"): "two_lines_p2",
    ("wild", "joint", "p_value"): "wild_joint_p",
    ("kp_wald_f", "all", "statistic"): "iv_kp_wald_f", ("kp_wald_f", "all", "p_value"): "iv_kp_wald_p",
    ("kp_lm", "all", "p_value"): "iv_kp_lm_p", ("cragg_donald_f", "all", "statistic"): "iv_cragg_donald_f",
    ("effective_f", "all", "statistic"): "iv_effective_f", ("effective_f", "all", "point"): "iv_effective_f_cv",
    ("anderson_rubin", "joint", "p_value"): "iv_ar_p", ("sargan", "all", "p_value"): "iv_overid_p",
    ("hansen_j", "all", "p_value"): "iv_overid_p", ("endogeneity", "wu_hausman", "p_value"): "iv_wu_hausman_p",
    ("endogeneity", "c_statistic", "p_value"): "iv_c_p",
}
_STATS = {"estimate": "estimate", "std_error": "se", "statistic": "t", "p_value": "p"}


def _wild_names(linear: pd.Series | None, square: pd.Series | None) -> dict[tuple[str, str, str], str]:
    """The wild bootstrap's rows of the treatment's term -> `wild_p`, `wild_ci_low`, `wild_ci_high` (`…_sq` of its square), whatever the term's name."""
    names = {}
    for row, suffix in ((linear, ""), (square, "_sq")):
        if row is not None:
            names |= {("wild", row.term, column): f"wild_{short}{suffix}" for column, short in (("p_value", "p"), ("ci_low", "ci_low"), ("ci_high", "ci_high"))}
    return names


def _iv_names(linear: pd.Series | None) -> dict[tuple[str, str, str], str]:
    """The rows named by the treatment's term: its first stage's F and its AR test and set (one endogenous regressor)."""
    if linear is None:
        return {}
    projection = f"{linear.term}_projection"  # several endogenous regressors: the treatment's AR set by projection
    return {("first_stage_f", linear.term, "statistic"): "iv_first_stage_f", ("anderson_rubin", linear.term, "p_value"): "iv_ar_p",
            ("anderson_rubin", linear.term, "ci_low"): "iv_ar_low", ("anderson_rubin", linear.term, "ci_high"): "iv_ar_high",
            ("anderson_rubin", projection, "ci_low"): "iv_ar_low", ("anderson_rubin", projection, "ci_high"): "iv_ar_high"}


def treatment_rows(fit: Fit, treatment: str) -> tuple[pd.Series | None, pd.Series | None]:
    """The tidy rows of the treatment's term and of its square (None where the model has none)."""
    rows = {parse(r.term).squared: r for r in fit.tidy.itertuples(index=False) if base_variable(r.term) == treatment}
    as_series = lambda r: pd.Series(r._asdict()) if r is not None else None  # noqa: E731
    return as_series(rows.get(False)), as_series(rows.get(True))


def model_metrics(fit: Fit, treatment: str, tests: pd.DataFrame) -> dict[str, float]:
    """The uniform metrics of one model (see the module docstring)."""
    linear, square = treatment_rows(fit, treatment)
    metrics: dict[str, float] = {"n_obs": fit.n_obs, "r2": fit.r2, "r2_within": fit.r2_within}
    if linear is not None:
        metrics |= {short: linear[column] for column, short in _STATS.items()}
        metrics |= {"ci_low": linear.conf_low, "ci_high": linear.conf_high}
    if square is not None:
        metrics |= {f"{short}_sq": square[column] for column, short in _STATS.items()}
    for row in fit.tidy.itertuples(index=False):
        metrics |= {f"coef.{row.term}": row.estimate, f"se.{row.term}": row.std_error}
    names = _TESTS | _wild_names(linear, square) | _iv_names(linear)
    for row in tests[(tests.model == fit.model) & tests.reject.notna()].itertuples(index=False):
        metrics |= {name: getattr(row, column) for (test, hypothesis, column), name in names.items()
                    if (test, hypothesis) == (row.test, row.hypothesis)}
    metrics |= {f"rows_dropped.{s.step.replace(' ', '_')}": s.dropped for s in fit.steps}
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}


def model_params(fit: Fit, plan: Plan | None, treatment: str) -> dict[str, str]:
    linear, _ = treatment_rows(fit, treatment)
    return {"fit.column": fit.model, "fit.group": fit.sample, "fit.equation": plan.label if plan else "",
            "fit.outcome": fit.outcome, "fit.term": linear.term if linear is not None else "",
            "fit.estimator": "2sls" if fit.iv is not None else "ols"}


_NOT_CHOICES = ("hydra", "tracking", "force", "data.cache_dir", "data.path")


def choices_of(hydra_cfg: Any) -> dict[str, str]:
    """The job's choices: each config group's option (`trim` = `p5`) and every other override
    that changes results (`data.build.sigma` = `5`), from Hydra's runtime config."""
    from eqexp.multiverse.axes import axis_key, option_of

    groups = {k: str(v) for k, v in hydra_cfg.runtime.choices.items() if v is not None and not k.startswith(_NOT_CHOICES)}
    values = {axis_key(o): option_of(o) for o in hydra_cfg.overrides.task}
    values = {k: v for k, v in values.items() if k not in groups and not k.startswith(_NOT_CHOICES)}
    return groups | values


def model_runs(fits: list[Fit], tests: pd.DataFrame, treatment: str, planned: list[Plan], choices: dict[str, str],
               run_name: str) -> list[dict[str, Any]]:
    """The nested runs of a job's models: name, params, metrics and tags of each (the job's full
    spec is in the job's run, their parent)."""
    by_model = {p.model: p for p in planned}
    runs = []
    for fit in fits:
        plan = by_model.get(fit.model)
        params = {**{f"choice.{k}": str(v) for k, v in choices.items()}, **model_params(fit, plan, treatment)}
        name = " ".join(part for part in (run_name, fit.model, plan.label if plan else "") if part)
        runs.append({"name": name, "params": params, "metrics": model_metrics(fit, treatment, tests),
                     "tags": {"eqexp.kind": "model", "eqexp.model": fit.model}})
    return runs
