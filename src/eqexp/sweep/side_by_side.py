"""The side-by-side view of a sweep: every job's coefficients in one long frame, the
combined table of the treatment terms (jobs × models as columns) and the coefficient plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eqexp.coefficients import COLUMNS, FE_SEPARATOR
from eqexp.sweep.records import OK_STATUSES, SKIPPED, JobRecord
from eqexp.terms import base_variable, parse, square_name
from eqexp.terms import label as term_label


def key_results(coefficients: pd.DataFrame, treatment: str | None) -> dict[str, Any]:
    """Treatment coefficient, t and N of the job's last model."""
    if coefficients is None or coefficients.empty or not treatment:
        return {}
    last = coefficients[coefficients.model == coefficients.model.iloc[-1]]
    rows = last[[base_variable(t) == treatment and not parse(t).squared for t in last.term]]
    if rows.empty:
        return {"model": last.model.iloc[0], "n_obs": int(last.n_obs.iloc[0])}
    row = rows.iloc[0]
    return {"model": row.model, "sample": row["sample"], "term": row.term, "estimate": float(row.estimate),
            "t": float(row.statistic), "n_obs": int(row.n_obs)}


def combined_coefficients(records: list[JobRecord], coefficients: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """All jobs' coefficient rows, long, with the job's number, label, treatment and status."""
    frames = [df.assign(job=r.num, label=r.label, treatment=r.treatment or "", fixed_effects=FE_SEPARATOR.join(r.fixed_effects), status=r.status)
              for r in records if (df := coefficients.get(r.num)) is not None and not df.empty]
    first = ["job", "label", "treatment", "fixed_effects", "status"]
    if not frames:
        return pd.DataFrame(columns=first + COLUMNS)
    long = pd.concat(frames, ignore_index=True)
    return long[first + [c for c in long.columns if c not in first]]


def is_treatment_term(term: str, treatment: str) -> bool:
    return bool(treatment) and base_variable(term) == treatment


def _column_labels(rows: pd.DataFrame) -> dict[tuple[int, str], str]:
    """(job, model) -> column label: the job's overrides, then the group (split jobs) or the model id."""
    names = {}
    for job, part in rows.groupby("job", sort=False):
        firsts = part.groupby("model", sort=False).first()
        by_sample = firsts["sample"].astype(str).nunique() == len(firsts)
        for model, first in firsts.iterrows():
            label = str(first["label"])
            if len(firsts) > 1:
                label = f"{label}: {first['sample']}" if by_sample else f"{label} {model}"
            names[(job, model)] = label
    return names


def combined_table(long: pd.DataFrame, title: str, labels: dict[str, str] | None = None, notes: list[str] | None = None, stat: str = "t", digits: int = 4):
    """The treatment terms of every job × model side by side, one column each."""
    from eqexp.report.regression import regression_table

    rows = long[[is_treatment_term(t, tr) for t, tr in zip(long.term, long.treatment)]]
    if rows.empty:
        return None
    names = _column_labels(long)
    groups = [names[key] for key in dict.fromkeys(zip(rows.job, rows.model))]
    first_terms = [t for tr in dict.fromkeys(long.treatment) for t in (tr, square_name(tr))]
    return regression_table(rows, title, labels or {}, stat, digits, first_terms=first_terms, groups=groups, notes=notes, by=("job", "model"))


def coefficient_plot(long: pd.DataFrame, path: Path, title: str, labels: dict[str, str] | None = None) -> Path | None:
    """Treatment coefficients of every job × model with their confidence intervals, one panel per term kind."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from eqexp.report.figures import save_figure

    rows = long[[is_treatment_term(t, tr) for t, tr in zip(long.term, long.treatment)]]
    if rows.empty:
        return None
    rows = rows.assign(kind=["square" if parse(t).squared else "linear" for t in rows.term])
    kinds = [k for k in ("linear", "square") if (rows.kind == k).any()]
    columns = list(dict.fromkeys(zip(rows.job, rows.model)))
    names = _column_labels(long)
    height = max(2.5, 0.32 * len(columns) + 1.2)
    fig = Figure(figsize=(5.2 * len(kinds) + 2.5, height))  # no pyplot: no global state
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(kinds), sharey=True, squeeze=False)
    y = {c: i for i, c in enumerate(reversed(columns))}
    for ax, kind in zip(axes[0], kinds):
        part = rows[rows.kind == kind]
        pos = np.array([y[c] for c in zip(part.job, part.model)], dtype=float)
        for significant, color in ((part.p_value < 0.1, "C0"), (~(part.p_value < 0.1), "C7")):  # one artist per colour
            if significant.any():
                r = part[significant.to_numpy()]
                error = np.vstack([r.estimate - r.conf_low, r.conf_high - r.estimate])  # NaN: no interval drawn
                ax.errorbar(r.estimate, pos[significant.to_numpy()], xerr=error, fmt="o", color=color, ecolor="C0", capsize=3, ms=4)
        ax.axvline(0, color="k", lw=0.8, ls="--")
        ax.set_title(", ".join(term_label(t, labels or {}) for t in dict.fromkeys(part.term)), fontsize=10)
        ax.set_xlabel("estimate (95% CI)")
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(list(y.values()))
    axes[0][0].set_yticklabels([names[c] for c in y], fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()  # margins for the labels, which vary in length
    fig.set_layout_engine(None)  # none left behind: saving would draw the figure once more to run it
    return save_figure(fig, path)


def _notes(records: list[JobRecord]) -> list[str]:
    notes = ["Columns are jobs (× models) of the sweep, labelled by their overrides; only the treatment terms are shown."]
    for r in records:
        if r.status not in OK_STATUSES:
            notes.append(f"Job {r.num} ({r.label}) {r.status}: {r.reason.splitlines()[0][:200] if r.reason else ''}")
        elif r.status == SKIPPED:
            notes.append(f"Job {r.num} ({r.label}) skipped: results from the earlier run {r.reused_run_id or ''}.".replace(" .", "."))
    return notes


def write_side_by_side(records: list[JobRecord], long: pd.DataFrame, out: Path, title: str) -> list[Path]:
    """combined.{md,tex,html,txt}, combined_coefficients.csv and coefplot.png in `out`."""
    from eqexp.report.table import to_text, write_table

    out.mkdir(parents=True, exist_ok=True)
    long.to_csv(out / "combined_coefficients.csv", index=False)
    written = [out / "combined_coefficients.csv"]
    labels = {k: v for r in reversed(records) for k, v in (r.labels or {}).items()}  # the first job's label of a term wins
    table = combined_table(long, title, labels, _notes(records))
    if table is not None:
        written += write_table(table, out, "combined")
        print("\n" + to_text(table) + "\n", flush=True)
    plot = coefficient_plot(long, out / "coefplot.png", title, labels)
    if plot is not None:
        written.append(plot)
    return written
