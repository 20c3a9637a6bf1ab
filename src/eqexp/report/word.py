"""A publication table as a Word document (`.docx`), in the three-line style (三线表) that
Chinese journals ask for: a thick rule above the table, a thin one under its header, a thick
one below it, and no other lines.

A real Word table (python-docx), cells as the other renderings write them, the title above
and the notes below. A table too wide for an A4 page in portrait turns the page to landscape;
one too wide even then is split into panels (A, B, ...) of columns, each repeating the stub
column. Latin text is set in Times New Roman, Chinese in SimSun (宋体), as the journals do.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # report.table calls this module to write a .docx: types only, no cycle
    from eqexp.report.table import Row, Table

_A4_CM = (21.0, 29.7)
_MARGIN_CM = 2.54
_FONT_PT = 9.0  # 小五, the journals' size for tables
_TITLE_PT = 10.5  # 五号
_CELL_PAD_CM = 0.38  # Word's default cell margins, both sides
_RULE_THICK, _RULE_THIN = 12, 6  # eighths of a point: 1.5 pt and 0.75 pt
LATIN_FONT, CJK_FONT = "Times New Roman", "SimSun"


def text_width_cm(text: str, points: float = _FONT_PT) -> float:
    """The printed width of `text`: a CJK character is one em, a Latin one about half."""
    ems = sum(1.0 if unicodedata.east_asian_width(c) in "WF" else 0.5 for c in text)
    return ems * points * 2.54 / 72


def column_widths_cm(table: Table) -> list[float]:
    rows = table.header + table.body + table.footer
    return [max(text_width_cm(r[i]) for r in rows) + _CELL_PAD_CM for i in range(table.n_columns)]


def panels(table: Table, width_cm: float) -> list[list[int]]:
    """The data columns of each panel: as many as fit beside the stub column in `width_cm`."""
    widths = column_widths_cm(table)
    groups: list[list[int]] = [[]]
    used = widths[0]
    for i in range(1, table.n_columns):
        if groups[-1] and used + widths[i] > width_cm:
            groups.append([])
            used = widths[0]
        groups[-1].append(i)
        used += widths[i]
    return groups


def layout(table: Table) -> tuple[bool, list[list[int]]]:
    """(landscape?, the panels' columns): portrait when the table fits, else landscape, else panels."""
    portrait, landscape = (side - 2 * _MARGIN_CM for side in _A4_CM)
    if sum(column_widths_cm(table)) <= portrait:
        return False, [list(range(1, table.n_columns))]
    return True, panels(table, landscape)


def _normal_style(style) -> None:
    """Every text of the document: Times New Roman for Latin, SimSun for Chinese, 9 pt, no spacing
    between paragraphs (set once here; the runs inherit it)."""
    from docx.oxml.ns import qn
    from docx.shared import Pt

    style.font.name = LATIN_FONT
    style.font.size = Pt(_FONT_PT)
    style.paragraph_format.space_before = style.paragraph_format.space_after = Pt(0)
    rpr = style.element.get_or_add_rPr()
    rfonts = rpr.find(qn("w:rFonts"))
    if rfonts is None:
        rfonts = rpr.makeelement(qn("w:rFonts"), {})
        rpr.append(rfonts)
    for attr in ("w:ascii", "w:hAnsi", "w:cs"):
        rfonts.set(qn(attr), LATIN_FONT)
    rfonts.set(qn("w:eastAsia"), CJK_FONT)


def _border(parent, tag: str, edges: dict[str, int]) -> None:
    """`parent`'s `tag` (w:tblBorders, w:tcBorders) with a single rule of the given size on each
    edge listed, and no line on the others (size 0)."""
    from docx.oxml.ns import qn

    old = parent.find(qn(tag))
    if old is not None:
        parent.remove(old)
    borders = parent.makeelement(qn(tag), {})
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        if tag == "w:tcBorders" and edge.startswith("inside"):
            continue
        size = edges.get(edge, 0)
        attrs = {qn("w:val"): "single", qn("w:sz"): str(size), qn("w:space"): "0", qn("w:color"): "000000"} if size else {qn("w:val"): "nil"}
        borders.append(borders.makeelement(qn(f"w:{edge}"), attrs))
    parent.append(borders)


def _paragraph(container, text: str, size: float | None = None, bold: bool = False, align=None):
    """A paragraph in the document's fonts (its Normal style), of another size or bold if asked."""
    from docx.shared import Pt

    p = container.add_paragraph()
    if align is not None:
        p.alignment = align
    run = p.add_run(text)
    run.font.bold = bold or None
    if size is not None:
        run.font.size = Pt(size)
    return p


def _word_table(document, rows: list[Row], n_header: int) -> None:
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml.ns import qn

    table = document.add_table(rows=len(rows), cols=len(rows[0]))
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    tbl_pr = table._tbl.tblPr
    _border(tbl_pr, "w:tblBorders", {"top": _RULE_THICK, "bottom": _RULE_THICK})
    for i, (cells, row) in enumerate(zip(rows, table.rows)):
        for j, (text, cell) in enumerate(zip(cells, row.cells)):  # a row's cells listed once: each listing walks the row
            cell.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.LEFT if j == 0 else WD_ALIGN_PARAGRAPH.CENTER
            cell.paragraphs[0].add_run(text)  # in the Normal style's fonts
            if i == n_header - 1:  # the header's rule, under its last row
                _border(cell._tc.get_or_add_tcPr(), "w:tcBorders", {"bottom": _RULE_THIN})
        if i < n_header:  # Word repeats the header on every page the table runs onto
            tr_pr = row._tr.get_or_add_trPr()
            tr_pr.append(tr_pr.makeelement(qn("w:tblHeader"), {}))


def to_docx(table: Table, path: Path) -> Path:
    """Write `table` as the Word document `path`."""
    from docx import Document
    from docx.enum.section import WD_ORIENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Cm, Pt

    document = Document()
    _normal_style(document.styles["Normal"])
    landscape, groups = layout(table)
    section = document.sections[0]
    width, height = _A4_CM[::-1] if landscape else _A4_CM
    section.orientation = WD_ORIENT.LANDSCAPE if landscape else WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Cm(width), Cm(height)
    for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(section, side, Cm(_MARGIN_CM))
    title = _paragraph(document, table.title, _TITLE_PT, bold=True, align=WD_ALIGN_PARAGRAPH.CENTER)
    title.paragraph_format.space_after = Pt(_FONT_PT / 2)
    rows = table.header + table.body + table.footer
    for k, columns in enumerate(groups):
        if len(groups) > 1:
            _paragraph(document, f"Panel {chr(ord('A') + k)}", bold=True)
        _word_table(document, [[r[0]] + [r[i] for i in columns] for r in rows], len(table.header))
    for note in table.notes:
        _paragraph(document, note)
    path.parent.mkdir(parents=True, exist_ok=True)
    document.save(str(path))
    return path
