"""What an analysis returns, for the runner to write: fits, tests, notes, tables, figures, data files."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from eqexp.estimate import Fit
from eqexp.inference import hypothesis
from eqexp.inference.hypothesis import HypothesisTest
from eqexp.report.figures import Drawing
from eqexp.report.table import Table


@dataclass(frozen=True)
class Findings:
    fits: list[Fit] = field(default_factory=list)
    tests: list[tuple[str, HypothesisTest]] = field(default_factory=list)  # (model, test): tests.csv's rows
    notes: list[str] = field(default_factory=list)  # written under the table
    tables: dict[str, Table] = field(default_factory=dict)
    figures: dict[str, Drawing] = field(default_factory=dict)  # file name in figures/ -> the figure to draw
    null_draws: list[dict[str, Any]] = field(default_factory=list)  # a multiverse spec's estimates on the shared null draws
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)  # file name -> a table of numbers, written as CSV

    def __add__(self, other: Findings) -> Findings:
        return Findings([*self.fits, *other.fits], [*self.tests, *other.tests], [*self.notes, *other.notes],
                        {**self.tables, **other.tables}, {**self.figures, **other.figures}, [*self.null_draws, *other.null_draws],
                        {**self.frames, **other.frames})

    def tests_frame(self) -> pd.DataFrame:
        return hypothesis.frame(self.tests)
