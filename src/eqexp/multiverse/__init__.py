"""Multiverses: a sweep with a shape, its specification curve and a joint test under the null.

`conf/multiverse/<name>.yaml` declares the axes (`hydra.sweeper.params`), the combinations
left out (`hydra.sweeper.exclude`) and the curve's settings (`multiverse:` in every job):
`python run.py -m +multiverse=reference`. The modules, each importing only those before it:

- `axes`: the sweep's axes and its exclusions (used by eqexp's sweeper and its plan);
- `draws`: in each job, its models' estimates under the null on firm-cluster resampling
  draws that every job shares (weights keyed by the firm's id), written to `multiverse.json`;
- `joint`: Simonsohn, Simmons & Nelson's (2020) statistics and their p-values;
- `curve`: in the sweep's parent at the end, the curve's table, the summary per axis, the
  joint test and the figure, in the sweep directory and on the parent MLflow run.
"""

from __future__ import annotations

from collections.abc import Iterable

from eqexp.terms import base_variable, parse

NULL_DRAWS_FILE = "multiverse.json"  # a job's draws under the null, read by the curve


def curve_term(terms: Iterable[str], treatment: str, setting: str) -> str | None:
    """The regressor a curve shows of a model's: the treatment's term (lagged as the model lags
    it) or its square (`multiverse.term`; auto: the square when there is one); None if absent."""
    own = [t for t in terms if base_variable(t) == treatment]
    squares = [t for t in own if parse(t).squared]
    if setting == "square" or (setting == "auto" and squares):
        return squares[0] if squares else None
    return next((t for t in own if not parse(t).squared), None)
