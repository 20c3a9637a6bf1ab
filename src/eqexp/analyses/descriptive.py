"""Tables 2 and 3: descriptive statistics and pairwise correlations."""

from __future__ import annotations

import pandas as pd

from eqexp.analyses.findings import Findings
from eqexp.report.descriptives import (
    correlation_table,
    correlations,
    describe,
    descriptives_table,
)
from eqexp.spec import Spec, descriptive_variables

def descriptives(df: pd.DataFrame, spec: Spec, data_key: str | None = None) -> Findings:
    summary = describe(df, descriptive_variables(spec))
    rows = summary.melt(id_vars="variable", var_name="statistic").rename(columns={"variable": "model"}).assign(test="describe")
    return Findings(tests=rows.to_dict("records"),
                    tables={"table": descriptives_table(summary, spec.report.labels, spec.report.title or "Descriptive statistics")})


def correlation(df: pd.DataFrame, spec: Spec, data_key: str | None = None) -> Findings:
    r, p = correlations(df, descriptive_variables(spec))
    long = r.stack().rename("value").reset_index().set_axis(["model", "statistic", "value"], axis=1)
    rows = long.assign(test="corr", statistic="corr." + long.statistic)
    return Findings(tests=rows.to_dict("records"),
                    tables={"table": correlation_table(r, p, spec.report.labels, spec.report.title or "Correlation analysis")})
