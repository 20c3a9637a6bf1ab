"""Word tables: read back with python-docx (labels, numbers, the three rules), laid out on the page
(portrait, landscape, panels), and opened by another reader: LibreOffice converts them to PDF."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from docx import Document
from docx.oxml.ns import qn

from eqexp.coefficients import coefficient_rows
from eqexp.report.regression import regression_table, stars
from eqexp.report.table import Table, write_table
from eqexp.report.word import layout, text_width_cm, to_docx
from test_report import LABELS, fits

ROOT = Path(__file__).resolve().parents[1]
ZH = yaml.safe_load((ROOT / "conf/report/zh.yaml").read_text(encoding="utf-8"))
A4_LANDSCAPE_TEXT_CM = 29.7 - 2 * 2.54


def cells(docx: Path) -> list[list[list[str]]]:
    """Every table of the document, as rows of cell texts."""
    return [[[c.text for c in row.cells] for row in t.rows] for t in Document(str(docx)).tables]


def paragraphs(docx: Path) -> list[str]:
    return [p.text for p in Document(str(docx)).paragraphs]


def formatted(rows, digits: int = 4) -> dict[tuple[str, str], tuple[str, str]]:
    """(model, term) -> the estimate with its stars and the t in parentheses, from the coefficient rows."""
    return {(r.model, r.term): (f"{r.estimate:.{digits}f}{stars(r.p_value)}", f"({r.statistic:.2f})") for r in rows.itertuples()}


def rules(docx: Path) -> tuple[dict[str, tuple[str, str]], list[tuple[int, dict[str, tuple[str, str]]]]]:
    """The table's own borders {edge: (val, size)} and every row whose cells draw a line, with theirs."""
    table = Document(str(docx)).tables[0]._tbl
    def edges(node):
        return {e.tag.split("}")[1]: (e.get(qn("w:val")), e.get(qn("w:sz"))) for e in node} if node is not None else {}
    own = edges(table.tblPr.find(qn("w:tblBorders")))
    lined = []
    for i, tr in enumerate(table.tr_lst):
        for tc in tr.tc_lst:
            found = {k: v for k, v in edges(tc.tcPr.find(qn("w:tcBorders")) if tc.tcPr is not None else None).items() if v[0] != "nil"}
            if found:
                lined.append((i, found))
    return own, lined


def test_the_docx_holds_the_table_numbers_labels_and_only_three_rules(panel, tmp_path):
    two = fits(panel)
    rows = coefficient_rows(two, fixed_effects=True)
    table = regression_table(rows, "Table 4", LABELS, stat="t", digits=4, notes=["Inverted-U test (1): a note"])
    path = to_docx(table, tmp_path / "table.docx")
    (read,) = cells(path)
    assert read == table.header + table.body + table.footer  # every cell as the other renderings write it
    expected = formatted(rows)
    by_label = {"Market": "market", "Market²": "market_sq", "Scale": "scale"}
    checked = 0
    for i in range(len(table.header), len(table.header) + len(table.body), 2):
        term = by_label[read[i][0]]
        for j, model in enumerate(("(1)", "(2)"), start=1):
            if (model, term) in expected:
                assert (read[i][j], read[i + 1][j]) == expected[(model, term)]
                checked += 1
    assert checked == len(rows) == 5
    assert read[-3][0] == "Firm FE" and read[-3][1:] == ["YES", "YES"] and read[-1] == ["S.E. clustered by", "Firm", "Firm"]
    assert read[len(table.header)][0] == "Market" and read[-6][1:] == [f"{int(f.n_obs):,}" for f in two]
    text = paragraphs(path)
    assert text[0] == "Table 4" and text[1:] == ["t-statistics in parentheses; *** p<0.01, ** p<0.05, * p<0.1", "Inverted-U test (1): a note"]
    own, lined = rules(path)
    assert own["top"] == own["bottom"] == ("single", "12")  # 1.5 pt above and below the table
    assert all(own[e] == ("nil", None) for e in ("left", "right", "insideH", "insideV"))
    header_last = len(table.header) - 1
    assert lined and all(i == header_last and found == {"bottom": ("single", "6")} for i, found in lined)  # 0.75 pt under the header
    assert len(lined) == table.n_columns


def test_chinese_labels_reach_the_docx_with_a_chinese_font(panel, tmp_path):
    table = regression_table(coefficient_rows(fits(panel), fixed_effects=True), "Table 4: Benchmark regression estimation results (inverse U-test)",
                             ZH["labels"], stat="t", digits=4)
    path = to_docx(table, tmp_path / "zh.docx")
    (read,) = cells(path)
    stubs = [r[0] for r in read]
    for expected in ("市场一体化", "市场一体化²", "企业规模", "观测值", "企业固定效应", "年份固定效应", "标准误"):
        assert expected in stubs, expected
    assert read[-1][1:] == ["聚类到企业层面"] * 2 and read[-3][1:] == ["是", "是"] and read[len(table.header) - 1][1] == "出口产品质量"
    text = paragraphs(path)
    assert text[0] == "表4 基准回归估计结果（倒U型检验）"
    assert text[1] == "注：括号内为 t 值；***、**、* 分别表示在 1%、5%、10% 的水平上显著。"
    document = Document(str(path))
    normal = document.styles["Normal"].element.rPr.find(qn("w:rFonts"))
    assert normal.get(qn("w:eastAsia")) == "SimSun" and normal.get(qn("w:ascii")) == "Times New Roman"
    assert not list(document.element.body.iter(qn("w:rFonts")))  # every run in the Normal style's fonts


def wide(n_columns: int) -> Table:
    header = [[""] + [f"({i})" for i in range(1, n_columns)], ["VARIABLES"] + [f"hetero=region: group {i}" for i in range(1, n_columns)]]
    return Table("wide", header, [["Market"] + [f"0.{i:04d}***" for i in range(1, n_columns)]])


def test_a_wide_table_goes_landscape_and_a_wider_one_splits_into_panels(tmp_path):
    assert layout(wide(3)) == (False, [[1, 2]])
    landscape, groups = layout(wide(5))  # about 4 cm a column: too wide for portrait's 15.9 cm, not for landscape's 24.6
    assert landscape and groups == [[1, 2, 3, 4]]
    landscape, groups = layout(wide(30))
    assert landscape and len(groups) > 1 and [i for g in groups for i in g] == list(range(1, 30))
    widths = [max(text_width_cm(r[i]) for r in wide(30).header + wide(30).body) + 0.38 for i in range(30)]
    assert all(widths[0] + sum(widths[i] for i in g) <= A4_LANDSCAPE_TEXT_CM for g in groups)
    path = to_docx(wide(30), tmp_path / "wide.docx")
    read = cells(path)
    assert len(read) == len(groups) and all(t[1][0] == "VARIABLES" for t in read)  # the stub column in every panel
    assert [c for t in read for c in t[2][1:]] == wide(30).body[0][1:]
    section = Document(str(path)).sections[0]
    assert section.page_width > section.page_height
    assert [p for p in paragraphs(path) if p.startswith("Panel")] == [f"Panel {chr(65 + k)}" for k in range(len(groups))]


def test_text_width_counts_a_chinese_character_as_two_latin_ones():
    assert text_width_cm("市场") == pytest.approx(text_width_cm("abcd"))


def test_write_table_writes_the_docx_beside_the_other_renderings(panel, tmp_path):
    table = regression_table(coefficient_rows(fits(panel), fixed_effects=True), "T", LABELS)
    written = write_table(table, tmp_path, "table")
    assert sorted(p.name for p in written) == ["table.docx", "table.html", "table.md", "table.tex", "table.txt"]


@pytest.mark.slow
def test_libreoffice_opens_the_docx_and_its_pdf_holds_the_labels_and_numbers(panel, tmp_path):
    soffice, pdftotext = shutil.which("soffice"), shutil.which("pdftotext")
    assert soffice and pdftotext, "LibreOffice or pdftotext is missing: run `make test` (it installs them: make office)"
    rows = coefficient_rows(fits(panel), fixed_effects=True)
    table = regression_table(rows, "Table 8: heterogeneity of property rights", ZH["labels"], groups=["State-Owned", "Non state owned"])
    to_docx(table, tmp_path / "zh.docx")
    to_docx(wide(30), tmp_path / "wide.docx")
    profile = tmp_path / "profile"  # its own LibreOffice profile: no clash with another instance
    done = subprocess.run([soffice, f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to", "pdf", "--outdir",
                           str(tmp_path), str(tmp_path / "zh.docx"), str(tmp_path / "wide.docx")],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0 and (tmp_path / "zh.pdf").exists(), done.stdout + done.stderr
    text = subprocess.run([pdftotext, "-layout", str(tmp_path / "zh.pdf"), "-"], capture_output=True, text=True, check=True).stdout
    compact = "".join(text.split())  # Writer spaces Latin text apart from Chinese (表 8): compare without spaces
    for expected in ("表8产权性质异质性分析", "国有企业", "非国有企业", "市场一体化", "企业规模", "观测值", "企业固定效应", "年份固定效应",
                     "聚类到企业层面", "括号内为t值"):
        assert expected in compact, expected
    for (estimate, t) in formatted(rows).values():
        assert estimate in text and t in text
    wide_text = subprocess.run([pdftotext, str(tmp_path / "wide.pdf"), "-"], capture_output=True, text=True, check=True).stdout
    assert all(cell in wide_text for cell in wide(30).body[0][1:]) and "Panel B" in wide_text


def test_tables_2_and_3_in_chinese_read_back_from_the_docx(panel, tmp_path):
    from eqexp.report.descriptives import correlation_table, correlations, describe, descriptives_table

    variables = ["quality", "market", "scale"]
    table2 = descriptives_table(describe(panel, variables), ZH["labels"], "Table 2: Descriptive statistics")
    (read,) = cells(to_docx(table2, tmp_path / "t2.docx"))
    assert read[1] == ["变量", "样本量", "最小值", "最大值", "中位数", "标准差", "均值"]
    x = panel["market"]
    assert read[3] == ["市场一体化", f"{len(x):,}", f"{x.min():.3f}", f"{x.max():.3f}", f"{x.median():.3f}", f"{x.std():.3f}", f"{x.mean():.3f}"]
    assert paragraphs(tmp_path / "t2.docx")[0] == "表2 描述性统计"
    r, p = correlations(panel, variables)
    table3 = correlation_table(r, p, ZH["labels"], "Table 3: Correlation analysis")
    (read,) = cells(to_docx(table3, tmp_path / "t3.docx"))
    rho = panel["quality"].corr(panel["scale"])
    assert read[0][0] == "变量" and read[3][0] == "(3) 企业规模" and read[3][1].startswith(f"{rho:.3f}")
    assert paragraphs(tmp_path / "t3.docx")[1:] == ["注：***、**、* 分别表示在 1%、5%、10% 的水平上显著。"]
