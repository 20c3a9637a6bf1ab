"""The names of derived regressors, made and read in one place.

A lag of variable v by k periods is the column `L{k}_v`; a square is `v_sq`; a lagged square
is `L{k}_v_sq` (the square of the lag). A fixed effect or cluster `a^b` is the groups of a × b
(fixest's syntax), e.g. `province^year`. Tables show them as `L.V`, `L3.V²` with the labels of
`report.labels`. A bottom module: it imports nothing of eqexp's.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_LAG = re.compile(r"^L(\d+)_(.+)$")
_SQUARE = "_sq"
_INTERACTION = "^"


class Term(NamedTuple):
    variable: str  # the panel column it comes from
    lag: int  # periods back, 0 for none
    squared: bool


def lag_name(variable: str, k: int) -> str:
    """`market`, 2 -> `L2_market` (k = 0: the variable itself)."""
    return f"L{k}_{variable}" if k else variable


def square_name(term: str) -> str:
    """`L1_market` -> `L1_market_sq`."""
    return f"{term}{_SQUARE}"


def squared(term: str) -> str | None:
    """`L1_market_sq` -> `L1_market`: what a square term squares (None if it is not one)."""
    return term[: -len(_SQUARE)] if term.endswith(_SQUARE) else None


def interaction_parts(name: str) -> list[str]:
    """`province^year` -> ['province', 'year']: the columns whose combinations are the groups; `firm_id` -> ['firm_id']."""
    return name.split(_INTERACTION)


def parse(term: str) -> Term:
    """`L2_market_sq` -> Term('market', 2, True)."""
    base = squared(term)
    name = base if base is not None else term
    match = _LAG.match(name)
    if match:
        return Term(match.group(2), int(match.group(1)), base is not None)
    return Term(name, 0, base is not None)


def base_variable(term: str) -> str:
    """`L2_market_sq` -> `market`: the panel column a derived regressor comes from."""
    return parse(term).variable


def label(term: str, labels: dict[str, str]) -> str:
    """Human-readable name: `L2_market_sq` -> `L2.Market²` with `labels = {market: Market}`."""
    if term in labels:
        return labels[term]
    if _INTERACTION in term:
        return " × ".join(label(part, labels) for part in interaction_parts(term))
    lag = _LAG.match(term)
    if lag:
        k, rest = lag.groups()
        return f"L{'' if k == '1' else k}.{label(rest, labels)}"
    base = squared(term)
    if base is not None:
        return f"{label(base, labels)}²"
    return term
