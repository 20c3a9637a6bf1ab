"""Rows in, rows out, and why: one record for every step that drops or changes rows, whether
the data build's (the measures' cleaning) or a job's (missing values, singletons, trimming).

Written as JSON (`build_log.json`) and CSV (`rows.csv`, `build_log.csv`) from `as_dict()`;
read back, a step is that dictionary, so a step also answers `step["dropped"]`.
A bottom module: it imports nothing of eqexp's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Step:
    step: str
    rows_in: int
    rows_out: int
    changed: int = 0  # values replaced (winsorizing) rather than rows dropped
    reason: str = ""
    stage: str = ""  # the build stage (quality, controls, ...); empty for a job's own steps

    @property
    def dropped(self) -> int:
        return self.rows_in - self.rows_out

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "dropped": self.dropped}

    def __getitem__(self, key: str) -> Any:
        return self.as_dict()[key]

    def __eq__(self, other: object) -> bool:
        """A step equals its record: the same fields, those the record leaves out at their defaults."""
        if isinstance(other, Mapping):
            mine = self.as_dict()
            left_out = {k: v for k, v in mine.items() if k not in other}
            return all(mine.get(k, object()) == v for k, v in other.items()) and left_out.keys() <= {"changed", "stage"} \
                and all(v == DEFAULTS[k] for k, v in left_out.items())
        return isinstance(other, Step) and dataclasses.astuple(self) == dataclasses.astuple(other)

    __hash__ = None  # equal to its record (a dict), so not hashable


DEFAULTS = {"changed": 0, "stage": ""}


StepLog = list[Step]


def drop_rows(df: Any, bad: Any, step: str, reason: str, log: StepLog | None) -> Any:
    """Drop the rows of a DataFrame flagged in `bad` and record the step in `log`."""
    out = df[~np.asarray(bad, dtype=bool)]
    record(log, step, len(df), len(out), reason)
    return out


def record(log: StepLog | None, step: str, rows_in: int, rows_out: int, reason: str) -> None:
    """Append one step to the log; `log=None` means the caller does not keep one."""
    if log is not None:
        log.append(Step(step, rows_in, rows_out, reason=reason))
