"""The ASIF stage: codes linked into firms across years, then the accounting rules and the controls.

Linking runs on the accounts as received (a year removed by the cleaning does not break a
firm's chain); the firm is identified by its earliest code (`measures.linking`). The cleaning
(Cai & Liu 2009) and controls then run on firm-years keyed by the firm.
"""

from __future__ import annotations

import pandas as pd

from eqexp.build.options import BuildOptions
from eqexp.build.stages import accounts_controls, info
from eqexp.data.validate import ACCOUNTS, validate
from eqexp.measures import linking
from eqexp.steps import StepLog


def link(accounts: pd.DataFrame, opts: BuildOptions) -> tuple[pd.Series, pd.DataFrame, StepLog]:
    """Each ASIF code's firm, the links made by gap and step, and the steps."""
    validate(accounts, ACCOUNTS, "accounts")
    steps: StepLog = []
    if not opts.link_firms:
        codes = accounts["firm_id"].drop_duplicates()
        steps.append(info("linked_firms", len(codes), "data.build.link_firms is false: each ASIF code is a firm"))
        return pd.Series(codes.to_numpy(), index=codes.to_numpy()), pd.DataFrame(columns=["gap", "step", "links"]), steps
    firm_of, links = linking.link_firms(accounts, opts.link_steps, opts.link_max_gap, log=steps)
    return firm_of, links, steps


def firm_years(accounts: pd.DataFrame, firm_of: pd.Series, opts: BuildOptions) -> tuple[pd.DataFrame, StepLog]:
    """Cleaned accounts keyed by firm, with their controls and SOE status."""
    return accounts_controls(accounts.assign(firm_id=accounts["firm_id"].map(firm_of).to_numpy()), opts)
