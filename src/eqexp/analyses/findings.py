"""What an analysis returns, for the runner to write: fits, test rows, notes, tables, figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from eqexp.estimate import Fit
from eqexp.report.table import Table

TEST_COLUMNS = ["model", "test", "statistic", "value"]  # tests.csv


@dataclass(frozen=True)
class Findings:
    fits: list[Fit] = field(default_factory=list)
    tests: list[dict] = field(default_factory=list)  # tests.csv rows (TEST_COLUMNS)
    notes: list[str] = field(default_factory=list)  # written under the table
    tables: dict[str, Table] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)  # file name in figures/ -> matplotlib Figure
    null_draws: list[dict[str, Any]] = field(default_factory=list)  # a multiverse spec's estimates on the shared null draws

    def __add__(self, other: Findings) -> Findings:
        return Findings([*self.fits, *other.fits], [*self.tests, *other.tests], [*self.notes, *other.notes],
                        {**self.tables, **other.tables}, {**self.figures, **other.figures}, [*self.null_draws, *other.null_draws])

    def tests_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.tests, columns=TEST_COLUMNS)
