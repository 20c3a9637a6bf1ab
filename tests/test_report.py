"""The publication table: stars at 10/5/1 %, t or SE in parentheses, fit and FE rows, four renderings."""

import numpy as np

from eqexp.coefficients import coefficient_rows
from eqexp.estimate import fit
from eqexp.panel import add_square
from eqexp.report.regression import label, regression_table, stars
from eqexp.report.table import to_html, to_latex, to_markdown, to_text
from eqexp.spec import VcovSpec

LABELS = {"market": "Market", "firm_id": "Firm", "year": "Year", "scale": "Scale"}


def fits(panel):
    df = add_square(panel, "market")
    return [
        fit(df, "quality", ["market", "market_sq"], ["firm_id", "year"], VcovSpec(label="Firm"), "(1)"),
        fit(df, "quality", ["market", "market_sq", "scale"], ["firm_id", "year"], VcovSpec(label="Firm"), "(2)"),
    ]


def test_stars_thresholds():
    assert [stars(p) for p in (0.009, 0.01, 0.049, 0.05, 0.099, 0.1)] == ["***", "**", "**", "*", "*", ""]


def test_labels_for_lags_and_squares():
    assert label("market_sq", LABELS) == "Market²"
    assert label("L1_market", LABELS) == "L.Market"
    assert label("L3_market_sq", LABELS) == "L3.Market²"


def test_table_cells_come_from_the_fits(panel):
    two = fits(panel)
    table = regression_table(coefficient_rows(two, fixed_effects=True), "Table 4", LABELS, stat="t", digits=4)
    rows = {r[0]: r[1:] for r in table.body[::2]}
    assert list(rows) == ["Market", "Market²", "Scale"]
    est = two[1].tidy.set_index("term").loc["scale"]
    assert rows["Scale"] == ["", f"{est.estimate:.4f}{stars(est.p_value)}"]
    assert table.body[5][2] == f"({est.statistic:.2f})"
    footer = {r[0]: r[1:] for r in table.footer}
    assert footer["Observations"] == [f"{f.n_obs:,}" for f in two]
    assert footer["Firm FE"] == ["YES", "YES"] and footer["Year FE"] == ["YES", "YES"]
    assert footer["S.E. clustered by"] == ["Firm", "Firm"]
    assert footer["R²"][1] == f"{two[1].r2:.3f}" and footer["Within R²"][1] == f"{two[1].r2_within:.3f}"


def test_standard_errors_by_switch(panel):
    two = fits(panel)
    table = regression_table(coefficient_rows(two, fixed_effects=True), "T", LABELS, stat="se", digits=4)
    se = two[0].tidy.std_error.iloc[0]
    assert table.body[1][1] == f"({se:.4f})" and table.notes[0].startswith("Standard errors in parentheses")


def test_renderings_carry_the_same_cells(panel):
    table = regression_table(coefficient_rows(fits(panel), fixed_effects=True), "Table 4", LABELS)
    cell = table.body[0][1]
    number = cell.rstrip("*")
    for text in (to_text(table), to_markdown(table), to_html(table)):
        assert cell in text
    latex = to_latex(table)
    assert number in latex and r"\toprule" in latex and "Market$^2$" in latex
    assert np.isfinite(float(number))
