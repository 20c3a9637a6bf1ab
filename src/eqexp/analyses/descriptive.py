"""Tables 2 and 3: descriptive statistics (also in descriptives.csv) and pairwise correlations
(each pair's test of r = 0 in tests.csv)."""

from __future__ import annotations

import pandas as pd

from eqexp.analyses.findings import Findings
from eqexp.inference.hypothesis import p_test
from eqexp.report.descriptives import correlation_table, correlations, describe, descriptives_table, pairwise
from eqexp.spec import Spec, descriptive_variables

DESCRIPTIVES_FILE = "descriptives.csv"


def descriptives(df: pd.DataFrame, spec: Spec, data_key: str | None = None, cache: object = None) -> Findings:
    summary = describe(df, descriptive_variables(spec))
    return Findings(frames={DESCRIPTIVES_FILE: summary},
                    tables={"table": descriptives_table(summary, spec.report.labels, spec.report.title or "Descriptive statistics")})


def correlation(df: pd.DataFrame, spec: Spec, data_key: str | None = None, cache: object = None) -> Findings:
    variables = descriptive_variables(spec)
    pairs = pairwise(df, variables)
    r, p = correlations(df, variables, pairs)
    tests = [(x, p_test("correlation", y, f"{x} and {y} are uncorrelated", t, p_value, "t", df_t, estimate=rho))
             for (x, y), (rho, t, df_t, p_value) in pairs.items()]
    return Findings(tests=tests, tables={"table": correlation_table(r, p, spec.report.labels, spec.report.title or "Correlation analysis")})
