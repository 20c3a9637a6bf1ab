"""report.html: one self-contained page per run and sweep.

The fast tests render hand-made directories; the slow one opens a real sweep's report in
headless Chromium (Debian's, driven by Playwright as in test_mlflow_ui.py) and checks what a
co-author sees: tables and figures visible, the numbers of coefficients.csv, failed jobs
with their reasons.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, hand_made_run
from test_mlflow_ui import CHROMIUM_ARGS, chromium  # noqa: F401  (chromium: the fixture)

from eqexp import sweep
from eqexp.report.html import render, write_report
from eqexp.rundir import OutputDirError
from eqexp.sweep.records import JobRecord, write_status


def test_a_run_report_is_self_contained_and_escapes_every_text(tmp_path):
    run = hand_made_run(tmp_path / "run", ROOT)
    page = render(run)
    assert "<script" not in page and "<i " not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;i onclick=alert(1)&gt;" in page  # rows.csv
    assert "&lt;script&gt;alert('x')&lt;/script&gt; &amp; &lt;i onclick=alert(1)&gt;" in page  # the table's note
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    links = [s for s in sources if not s.startswith("data:image/png;base64,")]  # else nothing to fetch
    assert links == ["tables/table.docx"] and (run / links[0]).is_file()  # but the Word table, beside the page
    assert "http://" not in page and "https://" not in page and "<link" not in page
    for expected in ("python run.py hydra.run.dir=", "model.controls=[scale]", "0.0500**", "Observations", "inverted_u_m1.png",
                     "duplicates", "panel-0123abcd", "git commit", "pyfixest"):
        assert expected in page, expected


def hand_made_sweep(tmp_path: Path) -> Path:
    """A sweep of two jobs: the hand-made run, finished, and a job that failed with its reason."""
    sweep_dir = tmp_path / "sweep"
    done = hand_made_run(sweep_dir / "0_a", ROOT)
    shutil.copy(done / ".hydra" / "hydra.yaml", sweep_dir / "multirun.yaml")
    (sweep_dir / "1_b" / ".hydra").mkdir(parents=True)
    records = [JobRecord(0, "trim=none", status="finished", dir=str(done)),
               JobRecord(1, "trim=<p5>", status="failed", reason="SpecError: no observations <left>", dir=str(sweep_dir / "1_b"))]
    (sweep_dir / sweep.PLAN_FILE).write_text(json.dumps({"context": {"sweep_dir": str(sweep_dir), "root": str(ROOT)}, "jobs": []}))
    for record in records:
        write_status(sweep_dir, record)
    pd.DataFrame([{"job": 0, "overrides": "trim=none", "status": "finished", "reason": ""},
                  {"job": 1, "overrides": "trim=<p5>", "status": "failed", "reason": "SpecError: no observations <left>"}]
                 ).to_csv(sweep_dir / "summary.csv", index=False)
    return sweep_dir


def test_a_sweep_report_lists_every_job_and_why_one_failed(tmp_path):
    sweep_dir = hand_made_sweep(tmp_path)
    path = write_report(sweep_dir, ROOT)
    page = path.read_text()
    assert path == sweep_dir / "report.html" and (sweep_dir / "environment.json").exists()
    assert "Job 1 (trim=&lt;p5&gt;) failed:</b> SpecError: no observations &lt;left&gt;" in page
    assert page.count('<tr class="bad">') == 1  # the failed job's line of the summary
    assert "id='job-0'" in page and "id='job-1'" in page and "0.0500**" in page


def test_a_folder_that_is_no_run_says_what_it_expected(tmp_path):
    with pytest.raises(OutputDirError, match="is not an eqexp run or sweep.*outputs/runs/<time>"):
        render(tmp_path)


# --- in a browser -----------------------------------------------------------------------


def table_cells(page, selector: str) -> list[list[str]]:
    return page.eval_on_selector(selector, "t => [...t.tBodies[0].rows].map(r => [...r.cells].map(c => c.innerText.trim()))")


def assert_table_matches(cells: list[list[str]], coefficients: pd.DataFrame) -> None:
    """Each model's column holds its coefficients.csv estimates (4 digits, stars aside) and t-statistics (2 digits)."""
    for column, (model, rows) in enumerate(coefficients.groupby("model", sort=False), start=1):
        shown = [(c[column].rstrip("*"), s[column]) for c, s in zip(cells[::2], cells[1::2]) if c[column]]
        expected = [(f"{r.estimate:.4f}", f"({r.statistic:.2f})") for r in rows.itertuples()]
        assert sorted(shown) == sorted(expected), model


@pytest.mark.slow
def test_a_sweep_report_in_chromium_shows_tables_figures_numbers_and_failures(small_sweep, chromium, tmp_path):  # noqa: F811
    from mlflow.tracking import MlflowClient
    from playwright.sync_api import sync_playwright

    sweep_dir = small_sweep / "sweep"
    report = sweep_dir / "report.html"
    client = MlflowClient(f"sqlite:///{small_sweep / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("eqexp").experiment_id])
    parent = next(r for r in runs if r.data.tags.get("eqexp.kind") == "sweep")
    assert "report.html" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    records = sweep.job_records(sweep_dir)
    finished = [r for r in records if r.status == "finished"]
    assert len(finished) == 2

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(report.as_uri())
        tables = page.locator("table.eqexp")
        assert tables.count() == 1 + len(finished)  # the combined table and each finished job's
        for i in range(tables.count()):
            assert tables.nth(i).is_visible()
        images = page.locator("img")
        assert images.count() == 1 + 2 * len(finished)  # the coefficient plot and two inverted U's per job
        for i in range(images.count()):
            images.nth(i).scroll_into_view_if_needed()
            assert images.nth(i).is_visible()
            assert images.nth(i).evaluate("img => img.complete && img.naturalWidth") > 100
        for r in finished:
            assert_table_matches(table_cells(page, f"#job-{r.num} table.eqexp"), pd.read_csv(Path(r.dir) / "coefficients.csv"))
        failed = next(r for r in records if r.status == "failed")
        reason = page.locator(f"#job-{failed.num} .reason")
        assert reason.is_visible() and "no observations left to estimate" in reason.inner_text()
        assert "no observations left to estimate" in page.locator("#summary tr.bad").inner_text()
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert all(url.startswith(("file:", "data:")) for url in requests)  # nothing from a server
    assert (tmp_path / "report.png").stat().st_size > 50_000
    print(f"screenshot: {tmp_path / 'report.png'}")
