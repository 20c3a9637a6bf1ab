"""`report.html`: one self-contained page for a run or a sweep, for someone who did not run it.

It needs no server and nothing from the network: figures are embedded as data URIs, the
style is inline, there is no script. `render` is a pure function from the directory's files
to the page (every text escaped; the tables' own HTML files are re-emitted through a
whitelist); `write_report` records the environment and writes the file.

    the command and each job's overrides · the summary of every job (failed ones with their
    reasons) · the combined table and coefficient plot · each job's tables with its tests,
    figures, dropped rows and resolved configuration · the data's build log · the data
    fingerprint, git commit and package versions
"""

from __future__ import annotations

import base64
import csv
import html
import json
import math
import shlex
from collections.abc import Iterable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

from eqexp import environment
from eqexp.report.language import needs_cjk
from eqexp.rundir import Job, OutputDir, command, job_overrides, open_dir, read_json, resolved_config, yaml_text
from eqexp.sweep.records import OK_STATUSES

FILE = "report.html"
_KEY_PACKAGES = ("eqexp", "pyfixest", "numpy", "pandas", "scipy", "hydra-core", "omegaconf", "mlflow", "matplotlib")
_IMAGES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}

_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;margin:0;background:#f4f5f7}
main{max-width:1180px;margin:0 auto;padding:1.5rem 2rem 4rem;background:#fff;box-shadow:0 0 12px #0001}
h1{font-size:1.6rem;margin:.2rem 0 .3rem}h2{font-size:1.25rem;border-bottom:2px solid #d8dce3;padding-bottom:.2rem;margin-top:2.2rem}
h3{font-size:1.05rem;margin:1.6rem 0 .5rem}h4{font-size:.95rem;margin:1rem 0 .3rem;color:#4a5263}
nav a{margin-right:1rem}a{color:#1f5fbf}.meta{color:#5c6475;margin:.2rem 0}
pre{background:#f6f7f9;border:1px solid #e2e5ea;padding:.6rem .8rem;overflow-x:auto;white-space:pre-wrap;word-break:break-all;font-size:.85rem}
table{border-collapse:collapse;margin:.4rem 0 .8rem;font-size:.85rem}
td,th{padding:.22rem .6rem;vertical-align:top}
.scroll{overflow-x:auto}
table.grid td,table.grid th{border-bottom:1px solid #e6e8ec;text-align:left;max-width:34rem;overflow-wrap:break-word}
table.grid th{background:#f0f2f5;white-space:nowrap}table.grid td.long{min-width:20rem}
table.eqexp{border-top:2px solid #222;border-bottom:2px solid #222}
table.eqexp caption{font-weight:600;text-align:left;padding-bottom:.3rem}
table.eqexp thead tr:last-child th{border-bottom:1px solid #222}table.eqexp tfoot tr:first-child td{border-top:1px solid #222}
table.eqexp td:not(:first-child),table.eqexp th:not(:first-child){text-align:center}
p.note{margin:.1rem 0;font-size:.82rem;color:#3d4452;max-width:60rem}
tr.bad td{background:#fdecec}.status{font-size:.8rem;padding:.1rem .45rem;border-radius:.6rem;background:#e3f3e6;color:#1d6b2c}
.status.bad{background:#fde2e2;color:#a11d1d}.reason{border-left:4px solid #c62828;background:#fdf3f3;padding:.5rem .8rem}
.warn{border-left:4px solid #e0a800;background:#fff8e1;padding:.5rem .8rem}
figure{margin:.6rem 1rem .6rem 0;display:inline-block;vertical-align:top;max-width:calc(50% - 1rem)}
figure.wide{max-width:100%}figure img{max-width:100%;border:1px solid #e2e5ea}
figcaption{font-size:.8rem;color:#5c6475}details{margin:.4rem 0}summary{cursor:pointer;color:#1f5fbf}
section.job{border-top:1px dashed #ccd1d9;margin-top:1.4rem}
"""


def esc(value: Any) -> str:
    return html.escape(str(value))


# --- building blocks --------------------------------------------------------------------


def _cell(text: str) -> str:
    """Long floats shortened to 6 significant digits; everything else as written."""
    try:
        number = float(text)
    except ValueError:
        return text
    return f"{number:.6g}" if "." in text and math.isfinite(number) else text


def _td(text: str) -> str:
    cls = ' class="long"' if len(text) > 60 else ""  # a long text gets room rather than a column one word wide
    return f"<td{cls}>{esc(text)}</td>"


def grid(header: list[str], rows: Iterable[list[Any]], bad: Iterable[bool] = ()) -> str:
    """A plain data table; rows flagged `bad` are highlighted."""
    flags = list(bad)
    body = []
    for i, row in enumerate(rows):
        cls = ' class="bad"' if i < len(flags) and flags[i] else ""
        body.append(f"<tr{cls}>" + "".join(_td(_cell(str(c))) for c in row) + "</tr>")
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    return f'<div class="scroll"><table class="grid"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


# tests.csv's columns the report leaves to the file: the verdicts and the table's notes say the nulls, intervals and draws
_TESTS_HIDDEN = ("null", "se", "point", "ci_low", "ci_high", "df_denom", "alpha", "draws", "seed", "clusters")


def csv_table(path: Path, hide: tuple[str, ...] = ()) -> str:
    """Any CSV, every column but `hide`; rows whose `status` is not ok are highlighted."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        return "<p>(empty)</p>"
    header, keep = rows[0], [i for i, h in enumerate(rows[0]) if h not in hide]
    status = header.index("status") if "status" in header else None
    bad = [status is not None and r[status] not in OK_STATUSES for r in rows[1:]]
    return grid([header[i] for i in keep], ([r[i] for i in keep] for r in rows[1:]), bad)


def key_values(mapping: dict[str, Any]) -> str:
    return grid(["key", "value"], ([k, v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)]
                                   for k, v in mapping.items()))


def image(path: Path, wide: bool = False) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    cls = ' class="wide"' if wide else ""
    return (f'<figure{cls}><img alt="{esc(path.name)}" src="data:{_IMAGES[path.suffix.lower()]};base64,{data}">'
            f"<figcaption>{esc(path.name)}</figcaption></figure>")


def word_links(paths: Iterable[Path], base: Path) -> str:
    """Links to the Word renderings of the tables (`tables/*.docx`, `combined.docx`), relative to the page."""
    links = [f'<a href="{esc(quote(p.relative_to(base).as_posix()))}">{esc(p.relative_to(base).as_posix())}</a>' for p in paths]
    return f"<p class='meta'>Word: {' · '.join(links)}</p>" if links else ""


def details(summary: str, inner: str) -> str:
    return f"<details><summary>{esc(summary)}</summary>{inner}</details>"


def pre(text: str) -> str:
    return f"<pre>{esc(text)}</pre>"


class _TableFragment(HTMLParser):
    """Re-emits a written table (tables/*.html, combined.html) keeping only table tags and
    paragraphs, no attribute but `class`, every text escaped: no script or link gets through."""

    TAGS = frozenset({"table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td", "p"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.TAGS:
            cls = dict(attrs).get("class")
            self.out.append(f'<{tag} class="{esc(cls)}">' if cls else f"<{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.TAGS:
            self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        self.out.append(html.escape(data, quote=False))


def table_fragment(path: Path) -> str:
    parser = _TableFragment()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return "".join(parser.out)


# --- sections ---------------------------------------------------------------------------


def _command(out: OutputDir) -> str:
    typed = shlex.join(command(out)) if out.hydra else "(not recorded: Hydra's multirun.yaml is missing)"
    parts = [pre(typed), f"<p class='meta'>run in {esc(out.root)}</p>"]
    if out.is_sweep:
        rows = [[j.num, j.label, " ".join(job_overrides(j))] for j in out.jobs]
        parts += ["<h4>Each job's overrides</h4>", grid(["job", "label", "resolved overrides"], rows)]
    return "".join(parts)


def _summary(out: OutputDir) -> str:
    parts = []
    counts: dict[str, int] = {}
    for j in out.jobs:
        counts[j.status] = counts.get(j.status, 0) + 1
    parts.append(f"<p>{len(out.jobs)} job(s): " + ", ".join(f"{n} {esc(s)}" for s, n in counts.items()) + "</p>")
    if (out.path / "summary.csv").exists():
        parts.append(csv_table(out.path / "summary.csv", hide=("dir",)))
    elif not out.is_sweep and out.jobs[0].dir and (out.jobs[0].dir / "job.json").exists():
        parts.append(key_values(read_json(out.jobs[0].dir / "job.json")))
    for j in out.jobs:
        if j.status not in OK_STATUSES:
            parts.append(f"<p class='reason'><b>Job {j.num} ({esc(j.label)}) {esc(j.status)}:</b> {esc(j.reason)}</p>")
    return "".join(parts)


def _combined(out: OutputDir) -> str:
    parts = []
    if (out.path / "combined.html").exists():
        parts.append(table_fragment(out.path / "combined.html"))
    parts.append(word_links(sorted(out.path.glob("combined.docx")), out.path))
    if (out.path / "coefplot.png").exists():
        parts.append(image(out.path / "coefplot.png", wide=True))
    return "".join(parts) or "<p>No job has coefficients to combine.</p>"


def _job(job: Job, heading: bool, base: Path) -> str:
    ok = job.status in OK_STATUSES
    parts = [f"<section class='job' id='job-{job.num}'>"]
    if heading:
        parts.append(f"<h3>Job {job.num}: {esc(job.label)} <span class='status{'' if ok else ' bad'}'>{esc(job.status)}</span></h3>")
    if not ok:
        parts.append(f"<p class='reason'><b>{esc(job.status.capitalize())}:</b> {esc(job.reason)}</p>")
    d = job.dir
    if d is None:
        return "".join(parts) + "</section>"
    if (d / "traceback.txt").exists():
        parts.append(details("Traceback", pre((d / "traceback.txt").read_text())))
    for table in sorted((d / "tables").glob("*.html")):
        parts.append(table_fragment(table))
    parts.append(word_links(sorted((d / "tables").glob("*.docx")), base))
    if (d / "tests.csv").exists():
        n = max(len((d / "tests.csv").read_text(encoding="utf-8").splitlines()) - 1, 0)
        parts.append(details(f"Tests ({n} rows of tests.csv; the file has every column)", csv_table(d / "tests.csv", _TESTS_HIDDEN)))
    figures = [p for p in sorted((d / "figures").glob("*")) if p.suffix.lower() in _IMAGES]
    if figures:
        parts.append("<h4>Figures</h4>" + "".join(image(p) for p in figures))
    if (d / "rows.csv").exists():
        parts.append("<h4>Rows dropped or changed by the job</h4>" + csv_table(d / "rows.csv"))
    config = resolved_config(job)
    if config is not None:
        parts.append(details("Resolved configuration", pre(yaml_text(config))))
    return "".join(parts) + "</section>"


def _build_log(log: dict[str, Any]) -> str:
    """Every part of a build log: mappings as key-value tables, lists of records as tables."""
    parts = []
    for key, value in log.items():
        if isinstance(value, dict):
            parts.append(details(f"{key} ({len(value)})", key_values(value)))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            header = list(dict.fromkeys(k for v in value for k in v))
            parts.append(f"<h4>{esc(key)}</h4>" + grid(header, ([v.get(h, "") for h in header] for v in value)))
        else:
            parts.append(f"<p>{esc(key)}: {esc(value)}</p>")
    return "".join(parts)


def _data(out: OutputDir) -> str:
    """One block per distinct data (fingerprint): its configuration and its build log."""
    parts = []
    seen: set[str | None] = set()
    for job in out.jobs:
        if job.dir is None or job.fingerprint in seen:
            continue
        seen.add(job.fingerprint)
        parts.append(f"<h3>Data fingerprint <code>{esc(job.fingerprint or 'unknown')}</code></h3>")
        data = (resolved_config(job) or {}).get("data")
        if data is not None:
            parts.append(details("Data configuration", pre(yaml_text(data))))
        log = read_json(job.dir / "build_log.json")
        parts.append(_build_log(log) if log else "<p>No build log: the panel was read as it is.</p>")
    return "".join(parts)


def _provenance(env: dict[str, Any] | None, out: OutputDir) -> str:
    parts = []
    prints = sorted({j.fingerprint for j in out.jobs if j.fingerprint})
    rows = [["data fingerprint", ", ".join(prints) or "unknown"]]
    if env is None:
        return grid(["", ""], rows) + "<p class='warn'>No environment.json: the software was not recorded.</p>"
    packages = env.get("packages", {})
    rows += [["git commit", env.get("git_commit", "unknown")], ["python", env.get("python", "")],
             ["platform", env.get("platform", "")], ["recorded", env.get("recorded", "")]]
    rows += [[name, packages[name]] for name in _KEY_PACKAGES if name in packages]
    parts.append(grid(["", ""], rows))
    if env.get("git_modified"):
        parts.append("<p class='warn'>Tracked files were modified after the commit when these results were made: "
                     + esc(", ".join(env["git_modified"])) + "</p>")
    parts.append(details(f"All {len(packages)} installed packages", grid(["package", "version"], packages.items())))
    return "".join(parts)


# --- the page ---------------------------------------------------------------------------


def render(directory: Path) -> str:
    """The report of the run or sweep in `directory`, as one HTML page."""
    out = open_dir(directory)
    title = f"eqexp {'sweep' if out.is_sweep else 'run'} {out.path.name}"
    sections = [("command", "Command", _command(out)), ("summary", "Summary", _summary(out))]
    if out.is_sweep:
        sections.append(("combined", "Combined table and coefficient plot", _combined(out)))
    sections += [
        ("jobs", "Jobs" if out.is_sweep else "Results", "".join(_job(j, out.is_sweep, out.path) for j in out.jobs)),
        ("data", "Data", _data(out)),
        ("provenance", "Provenance", _provenance(environment.read(out.path), out)),
    ]
    nav = "".join(f"<a href='#{anchor}'>{name.split()[0]}</a>" for anchor, name, _ in sections)
    body = "".join(f"<section id='{anchor}'><h2>{name}</h2>{inner}</section>" for anchor, name, inner in sections)
    lang = "zh" if needs_cjk(body) else "en"  # a browser picks its fonts by the page's language
    return (f"<!DOCTYPE html><html lang='{lang}'><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{_STYLE}</style></head>"
            f"<body><main><h1>{esc(title)}</h1><p class='meta'>{esc(out.path)}</p><nav>{nav}</nav>{body}</main></body></html>\n")


def write_report(directory: Path, root: Path) -> Path:
    """Record the environment (run from the project at `root`) and write `directory/report.html`."""
    environment.write(directory, root)
    path = Path(directory) / FILE
    path.write_text(render(directory), encoding="utf-8")
    return path
