"""A publication table as plain strings, and its renderings: terminal, Markdown, LaTeX, HTML, Word.

Builders (regression, descriptives, correlations) fill a `Table`; the renderers know
nothing about econometrics.
"""

from __future__ import annotations

import html
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

Row = list[str]


@dataclass(frozen=True)
class Table:
    title: str
    header: list[Row]  # first cell of each row is the stub column
    body: list[Row]
    footer: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def n_columns(self) -> int:
        return len(self.header[0])


def _width(text: str) -> int:
    """Columns a terminal gives `text`: two for a Chinese character."""
    return len(text) + sum(unicodedata.east_asian_width(c) in "WF" for c in text)


def to_text(table: Table) -> str:
    rows = table.header + table.body + table.footer
    widths = [max(_width(r[i]) for r in rows) for i in range(table.n_columns)]

    def line(row: Row) -> str:
        pad = [" " * (w - _width(c)) for c, w in zip(row, widths)]
        return "  ".join([row[0] + pad[0]] + [p + c for c, p in zip(row[1:], pad[1:])])

    rule = "-" * _width(line(rows[0]))
    parts = [table.title, rule, *map(line, table.header), rule, *map(line, table.body)]
    if table.footer:
        parts += [rule, *map(line, table.footer)]
    return "\n".join([*parts, rule, *table.notes])


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(table: Table) -> str:
    header, *more = table.header
    lines = [f"**{table.title}**", "", "| " + " | ".join(map(_md_cell, header)) + " |"]
    lines.append("|" + "|".join([":---"] + ["---:"] * (table.n_columns - 1)) + "|")
    for row in more + table.body + table.footer:
        lines.append("| " + " | ".join(map(_md_cell, row)) + " |")
    return "\n".join(lines + [""] + [f"{n}  " for n in table.notes]) + "\n"


_TEX_ESCAPES = {"&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "$": r"\$", "²": r"$^2$", "×": r"$\times$", "–": "--"}


def _tex(text: str) -> str:
    for char, escaped in _TEX_ESCAPES.items():
        text = text.replace(char, escaped)
    return text.replace("***", "$^{***}$").replace("**", "$^{**}$").replace("*", "$^{*}$")


def to_latex(table: Table) -> str:
    def line(row: Row) -> str:
        return " & ".join(_tex(c) for c in row) + r" \\"

    lines = [
        r"\begin{table}[htbp]\centering",
        rf"\caption{{{_tex(table.title)}}}",
        r"\begin{tabular}{l" + "c" * (table.n_columns - 1) + "}",
        r"\toprule",
        *map(line, table.header),
        r"\midrule",
        *map(line, table.body),
    ]
    if table.footer:
        lines += [r"\midrule", *map(line, table.footer)]
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [rf"\par\footnotesize {_tex(n)}" for n in table.notes]
    return "\n".join(lines + [r"\end{table}"]) + "\n"


def to_html(table: Table) -> str:
    def row(cells: Row, tag: str) -> str:
        inner = "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells)
        return f"<tr>{inner}</tr>"

    parts = [
        '<table class="eqexp">',
        f"<caption>{html.escape(table.title)}</caption>",
        "<thead>",
        *(row(r, "th") for r in table.header),
        "</thead><tbody>",
        *(row(r, "td") for r in table.body),
        "</tbody>",
    ]
    if table.footer:
        parts += ["<tfoot>", *(row(r, "td") for r in table.footer), "</tfoot>"]
    parts.append("</table>")
    parts += [f"<p class=\"note\">{html.escape(n)}</p>" for n in table.notes]
    return "\n".join(parts) + "\n"


RENDERERS = {"md": to_markdown, "tex": to_latex, "html": to_html, "txt": to_text}


def write_table(table: Table, directory: Path, stem: str) -> list[Path]:
    """Write every rendering of `table` as `directory/stem.{md,tex,html,txt,docx}`."""
    from eqexp.report.word import to_docx

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext, render in RENDERERS.items():
        path = directory / f"{stem}.{ext}"
        path.write_text(render(table), encoding="utf-8")
        paths.append(path)
    return paths + [to_docx(table, directory / f"{stem}.docx")]
