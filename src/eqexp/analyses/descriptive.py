"""Tables 2 and 3: descriptive statistics and pairwise correlations."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from eqexp.report.descriptives import (
    correlation_table,
    correlations,
    describe,
    descriptives_table,
)
from eqexp.spec import Spec, descriptive_variables

if TYPE_CHECKING:
    from eqexp.runner import JobResult


def descriptives(df: pd.DataFrame, spec: Spec, result: JobResult) -> None:
    summary = describe(df, descriptive_variables(spec))
    result.tests = summary.melt(id_vars="variable", var_name="statistic").rename(columns={"variable": "model"}).assign(test="describe")
    result.tables["table"] = descriptives_table(summary, spec.report.labels, spec.report.title or "Descriptive statistics")


def correlation(df: pd.DataFrame, spec: Spec, result: JobResult) -> None:
    r, p = correlations(df, descriptive_variables(spec))
    long = r.stack().rename("value").reset_index().set_axis(["model", "statistic", "value"], axis=1)
    result.tests = long.assign(test="corr", statistic="corr." + long.statistic)
    result.tables["table"] = correlation_table(r, p, spec.report.labels, spec.report.title or "Correlation analysis")
