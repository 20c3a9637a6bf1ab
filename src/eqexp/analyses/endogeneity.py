"""The diagnostic block under a 2SLS table, as ivreghdfe and esttab users report it: every IV
model's first-stage, weak-identification, under- and over-identification, Anderson–Rubin and
endogeneity tests (eqexp.inference.iv_tests) as rows of tests.csv and notes."""

from __future__ import annotations

from eqexp.analyses.findings import Findings
from eqexp.estimate import Fit
from eqexp.inference.iv_tests import diagnostics
from eqexp.spec import Spec
from eqexp.terms import label


def iv_diagnostics(spec: Spec, fits: list[Fit]) -> Findings:
    rows, notes = [], []
    for f in fits:
        if f.iv is None:
            continue
        tests = diagnostics(f.iv)
        rows += [(f.model, t) for t in tests]
        endogenous = ", ".join(label(e, spec.report.labels) for e in f.iv.endogenous_names)
        instruments = ", ".join(label(z, spec.report.labels) for z in f.iv.instrument_names)
        notes.append(f"2SLS {f.model}: {endogenous} instrumented by {instruments} (and the controls).")
        notes += [f"  {t.test}{'' if t.hypothesis in ('all', 'joint') else ' ' + t.hypothesis}: {t.verdict}" for t in tests
                  if not t.hypothesis.startswith("size_")]
    return Findings(tests=rows, notes=notes)
