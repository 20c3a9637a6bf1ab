"""The analyses a job can ask for, each returning its fits, tests, tables and figures (`Findings`).

- regression: the columns of `model.columns` (Tables 4 and 5);
- heterogeneity: one column per group plus the group-difference tests (Tables 8–11);
- mediation: the three equations plus Sobel and the bootstrap (Tables 6–7);
- descriptives and correlations (Tables 2 and 3).
Every model with a squared treatment gets the Lind–Mehlum inverted-U test.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from eqexp.analyses.descriptive import correlation, descriptives
from eqexp.analyses.findings import Findings
from eqexp.analyses.regression import regression
from eqexp.spec import Spec

ANALYSES = {"regression": regression, "descriptives": descriptives, "correlations": correlation}


def run(df: pd.DataFrame, spec: Spec, data_key: str | None = None, cache: Any = None) -> Findings:
    """Dispatch on the kind of analysis the spec asks for; `data_key` names the prepared panel in
    the process's `cache` (`eqexp.cache.ProcessCache`), whose absorbed columns and moments it shares."""
    return ANALYSES[spec.analysis](df, spec, data_key, cache)
