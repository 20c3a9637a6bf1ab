"""The specification curve of a finished multiverse, in the sweep's parent: one row per spec
(job × model) with its choices, the joint test under the null, a summary per axis and the
figure; written into the sweep directory and returned for the parent MLflow run.

| file | what |
|---|---|
| `curve.csv` | one row per spec, sorted by estimate: its choices, term, estimate, SE, t, p, 95 % CI, N, turning point, utest p |
| `curve_joint.csv` | the joint test: its three statistics in tests.csv's typed shape (`eqexp.inference.hypothesis`), with their p-values under the null |
| `curve_axes.csv` | per axis and option: specs, median estimate, share significant, shift against the axis's first option |
| `curve.md` | all three as Markdown |
| `curve.png` | the curve above the indicator panel of choices (and the turning point and utest p of an inverted U) |
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eqexp.inference import hypothesis
from eqexp.multiverse import NULL_DRAWS_FILE, curve_term
from eqexp.multiverse.axes import axis_key, option_of, sweep_axes
from eqexp.inference.hypothesis import HypothesisTest
from eqexp.multiverse.joint import dominant_sign, joint_tests
from eqexp.sweep.records import OK_STATUSES, JobRecord, read_coefficients

MODEL_AXIS = "model"


def _utest(tests: pd.DataFrame | None, model: str) -> dict[str, float]:
    """The model's turning point, Lind–Mehlum p and three-step verdict (1/0), where it has an inverted-U test."""
    if tests is None or tests.empty:
        return {}
    rows = tests[(tests.model == model) & (tests.test == "utest")].set_index("hypothesis")
    pick = {"turning_point": ("turning_point_fieller", "estimate"), "utest_p": ("lind_mehlum", "p_value"), "inverted_u": ("inverted_u", "reject")}
    return {name: float(rows.at[h, column]) for name, (h, column) in pick.items() if h in rows.index}


def _job_rows(record: JobRecord, axes: dict[str, list[str]], settings: dict[str, Any]) -> list[dict[str, Any]]:
    coefficients = read_coefficients(record)
    if coefficients is None or not record.treatment:
        return []
    job_dir = Path(record.dir)
    tests = hypothesis.read(job_dir / "tests.csv") if (job_dir / "tests.csv").exists() else None
    draws = {d["model"]: d for d in json.loads((job_dir / NULL_DRAWS_FILE).read_text())} if (job_dir / NULL_DRAWS_FILE).exists() else {}
    chosen = {axis_key(o): option_of(o) for o in record.overrides}
    rows = []
    for model, part in coefficients.groupby("model", sort=False):
        term = curve_term(part.term, record.treatment, settings.get("term", "auto"))
        if term is None:
            continue
        row = part.set_index("term").loc[term]
        drawn = draws.get(model, {}) if draws.get(model, {}).get("term") == term else {}  # the draws of this very term only
        rows.append({
            "job": record.num, "label": record.label, MODEL_AXIS: model, "group": row["sample"],
            **{axis: chosen.get(axis, "") for axis in axes},
            "term": term, "estimate": row.estimate, "se": row.std_error, "t": row.statistic, "p": row.p_value,
            "ci_low": row.conf_low, "ci_high": row.conf_high, "n_obs": int(row.n_obs),
            **_utest(tests, model), "run_id": record.run_id or "", "draws": drawn.get("draws"), "df_t": drawn.get("df_t", np.nan),
        })
    return rows


def curve_frame(records: list[JobRecord], settings: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """One row per spec that finished, sorted by estimate (`rank` 1 = lowest), and the axes with
    their options in the order the multiverse declares them (a job's models are an axis too)."""
    axes = sweep_axes([r.overrides for r in records])
    rows = [row for r in records if r.status in OK_STATUSES for row in _job_rows(r, axes, settings)]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame, axes
    if frame[MODEL_AXIS].nunique() > 1:
        axes[MODEL_AXIS] = list(dict.fromkeys(frame[MODEL_AXIS]))
    axes = {axis: [o for o in options if o in set(frame[axis])] for axis, options in axes.items()}
    # Specs whose estimates are equal in exact arithmetic (a choice that changes no row) are ranked
    # by job, not by how their last bits were rounded: sorted on 12 significant digits.
    by_value = frame.estimate.map(lambda v: float(f"{v:.12g}"))
    frame = frame.assign(_by=by_value).sort_values(["_by", "job"], kind="stable").drop(columns="_by").reset_index(drop=True)
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    sign = int(dominant_sign(frame.estimate.to_numpy()))
    frame["significant"] = (frame.p < settings.get("alpha", 0.05)) & (np.sign(frame.estimate) == sign)
    return frame, axes


def joint(frame: pd.DataFrame, alpha: float) -> list[HypothesisTest]:
    """The joint test, when every spec on the curve has its draws under the null."""
    draws = frame["draws"]
    if frame.empty or draws.isna().any() or draws.map(len).nunique() != 1:
        return []
    null = np.column_stack(draws.to_list())
    return joint_tests(frame.estimate.to_numpy(), frame.se.to_numpy(), frame.df_t.to_numpy(), null, alpha)


def axis_summary(frame: pd.DataFrame, axes: dict[str, list[str]]) -> pd.DataFrame:
    """Per axis and option: how many specs, their median estimate and share significant, and
    how far the option moves the estimate from the axis's first option in specs that are the
    same in every other choice (mean and median of the paired differences)."""
    rows = []
    for axis, options in axes.items():
        others = [a for a in axes if a != axis] or ["_none"]
        wide = frame.assign(_none="").pivot_table(index=others, columns=axis, values="estimate", aggfunc="first")
        for option in options:
            part = frame[frame[axis] == option]
            shift = (wide[option] - wide[options[0]]).dropna()
            rows.append({"axis": axis, "option": option, "specs": len(part), "median_estimate": part.estimate.median(),
                         "share_significant": part.significant.mean(), "pairs": len(shift),
                         "mean_shift": shift.mean() if len(shift) else np.nan, "median_shift": shift.median() if len(shift) else np.nan})
    return pd.DataFrame(rows, columns=["axis", "option", "specs", "median_estimate", "share_significant", "pairs", "mean_shift", "median_shift"])


# --- files -----------------------------------------------------------------------------------

SPEC_COLUMNS = ["rank", "job", "label", "group", "term", "estimate", "se", "t", "p", "ci_low", "ci_high", "n_obs",
                "turning_point", "utest_p", "significant", "run_id"]


def _markdown(frame: pd.DataFrame, digits: int = 4) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, (float, np.floating)):
            return "" if np.isnan(value) else f"{value:.{digits}g}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "|".join("---" for _ in frame.columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def verdicts(tests: list[HypothesisTest], sign: int, n_specs: int, alpha: float) -> list[str]:
    """The joint test in words, one line per statistic; `sign` is the curve's dominant sign."""
    named = {t.hypothesis: t for t in tests}
    if not named:
        return ["No joint test: some specs on the curve have no draws under the null of its term (multiverse.draws = 0)."]
    share = named["share_significant"]
    return [
        f"Median estimate {named['median'].estimate:.4g}: p = {named['median'].p_value:.3f}",
        f"Significant (p < {alpha:g}) with the dominant sign ({'positive' if sign > 0 else 'negative'}): "
        f"{round(share.estimate * n_specs)} of {n_specs} specs ({share.estimate:.0%}): p = {share.p_value:.3f}",
        f"Stouffer's Z = {named['stouffer_z'].estimate:.2f}: p = {named['stouffer_z'].p_value:.3f}",
        f"(p-values: share of {share.draws} firm-cluster resampling draws under the null with a curve at least as extreme, "
        "counting the observed curve)",
    ]


def axis_lines(summary: pd.DataFrame) -> list[str]:
    """Per axis, in decreasing order of influence: the option that moves the estimate most from the axis's first."""
    moved = summary.dropna(subset=["mean_shift"]).assign(size=lambda d: d.mean_shift.abs())
    lines = []
    for axis, part in sorted(moved.groupby("axis", sort=False), key=lambda item: -item[1]["size"].max()):
        top, first = part.loc[part["size"].idxmax()], part.option.iloc[0]
        lines.append(f"{axis}: {top.option} instead of {first} moves the estimate by {top.mean_shift:+.4g} on average "
                     f"({int(top.pairs)} pairs of specs alike in every other choice)" if top["size"] else f"{axis}: no shift")
    return lines


def missing_line(records: list[JobRecord], frame: pd.DataFrame) -> list[str]:
    """Planned specs that are not on the curve, said rather than dropped silently."""
    missing = [r.label for r in records if r.num not in set(frame.job)]
    return [f"{len(missing)} planned spec(s) are not on the curve (failed or never finished, see summary.md): "
            f"{'; '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"] if missing else []


def write_markdown(path: Path, title: str, lines: list[str], joint_frame: pd.DataFrame, summary: pd.DataFrame, table: pd.DataFrame) -> None:
    parts = [f"**{title}**", "\n".join(f"- {line}" for line in lines), "**Joint test under the null**", _markdown(joint_frame),
             "**Per axis** (shifts against the axis's first option, in specs alike in every other choice)", _markdown(summary),
             "**Specs**", _markdown(table)]
    path.write_text("\n\n".join(parts))


def write_curve(sweep_dir: Path, records: list[JobRecord], settings: dict[str, Any]) -> tuple[list[Path], dict[str, float], list[str]]:
    """The curve's files in `sweep_dir`, the parent run's metrics (`curve.*`) and the joint test
    in words; nothing when no spec finished."""
    from eqexp.multiverse.figure import curve_figure

    frame, axes = curve_frame(records, settings)
    if frame.empty:
        return [], {}, []
    alpha = settings.get("alpha", 0.05)
    tests = joint(frame, alpha)
    summary = axis_summary(frame, axes)
    columns = [*SPEC_COLUMNS[:3], *(a for a in axes if a != MODEL_AXIS), MODEL_AXIS, *SPEC_COLUMNS[3:]]
    table = frame[[c for c in columns if c in frame]]
    joint_frame = hypothesis.frame(("curve", t) for t in tests)
    paths = {name: sweep_dir / name for name in ("curve.csv", "curve_joint.csv", "curve_axes.csv", "curve.md", "curve.png")}
    table.to_csv(paths["curve.csv"], index=False)
    joint_frame.to_csv(paths["curve_joint.csv"], index=False)
    summary.to_csv(paths["curve_axes.csv"], index=False)
    title = f"Specification curve: {settings.get('name', 'multiverse')}, {len(frame)} specs"
    lines = verdicts(tests, int(dominant_sign(frame.estimate.to_numpy())), len(frame), alpha) + missing_line(records, frame)
    write_markdown(paths["curve.md"], title, lines + axis_lines(summary), joint_frame[["hypothesis", "estimate", "p_value", "draws"]], summary, table)
    curve_figure(frame, axes, title, lines[:3], paths["curve.png"])
    metrics = {"curve.n_specs": len(frame), "curve.share_significant": float(frame.significant.mean())}
    for t in tests:
        metrics |= {f"curve.{t.hypothesis}": t.estimate, f"curve.{t.hypothesis}_p": t.p_value}
    return list(paths.values()), metrics, lines


def finish_multiverse(sweep_dir: Path, records: list[JobRecord], settings: dict[str, Any]) -> tuple[list[Path], dict[str, float]]:
    """At the end of a multiverse's sweep: the curve's files and metrics, and the joint test printed.
    A curve that cannot be drawn is reported, never costing the sweep its summary."""
    try:
        paths, metrics, lines = write_curve(sweep_dir, records, settings)
    except Exception as err:  # reported: the sweep's own results stand
        print(f"[eqexp] could not write the specification curve: {type(err).__name__}: {err}", flush=True)
        return [], {}
    if paths:
        print("\n".join(f"[eqexp] curve: {line}" for line in lines), flush=True)
        print(f"[eqexp] specification curve: {sweep_dir / 'curve.png'}   table: {sweep_dir / 'curve.md'}", flush=True)
    return paths, metrics
