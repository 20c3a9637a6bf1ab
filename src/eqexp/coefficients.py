"""coefficients.csv: one row per model and term, the contract between a job, a sweep, the
publication tables and the comparison of runs. Its columns are defined here and only here."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from eqexp.estimate import Fit

TERM_COLUMNS = ["term", "estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high"]  # a fit's tidy frame
COLUMNS = ["model", "sample", "outcome", *TERM_COLUMNS, "n_obs", "r2", "r2_within", "vcov"]
FE_SEPARATOR = "+"  # a table's rows also carry each model's fixed effects: "firm_id+year"


def coefficient_rows(fits: list[Fit], fixed_effects: bool = False) -> pd.DataFrame:
    """The rows of `fits`, in COLUMNS; with `fixed_effects`, also the models' effects (what a table shows)."""
    columns = [*COLUMNS, "fixed_effects"] if fixed_effects else COLUMNS
    if not fits:
        return pd.DataFrame(columns=columns)
    return pd.concat([f.tidy.assign(model=f.model, sample=f.sample, outcome=f.outcome, n_obs=f.n_obs, r2=f.r2,
                                    r2_within=f.r2_within, vcov=f.vcov_label, fixed_effects=FE_SEPARATOR.join(f.fixed_effects))
                      for f in fits], ignore_index=True)[columns]


def fixed_effects_of(value: object) -> list[str]:
    """The fixed effects named in a `fixed_effects` cell (empty for none)."""
    return [] if not isinstance(value, str) or not value else value.split(FE_SEPARATOR)
