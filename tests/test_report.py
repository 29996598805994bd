"""Reports: a stored run's HTML report (and a comparison's) opens in headless Chromium with every
request outside the file refused and recorded: none is made, and every figure is drawn."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kdcore.viz.report import PNG_HEIGHT, PNG_SCALE, PNG_WIDTH, comparison_report, run_report

CHROMIUM = os.environ.get("KDLAB_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def two_distillations(digits_teacher):
    """Two stored distill runs (2 and 3 epochs) of the default digits teacher, through the job runner."""
    from kdcore.jobs import JobRunner
    from kdcore.presets import default_kd, default_student, default_teacher_spec
    from kdcore.runkinds import distill_config
    from kdcore.runs import RunContext, RunSpec
    from kdcore.train import TrainConfig
    from kdcore.teachers import TeacherCache
    runner = JobRunner(workers=1)
    try:
        ids = []
        student, train = default_student("digits")
        for epochs in (2, 3):
            cfg = distill_config(default_teacher_spec("digits"), student,
                                 TrainConfig(**{**train.to_dict(), "epochs": epochs}), default_kd("digits"), 0)
            run_id = runner.submit(RunSpec("distill", cfg), workspace="report-test")
            assert runner.wait(run_id, timeout=240).status == "finished"
            ids.append(run_id)
        ctx = RunContext(runner.store, TeacherCache())
        yield [(runner.store.get(i), runner.store.load_result(i, ctx)) for i in ids]
    finally:
        runner.close()


def open_offline(path: Path):
    """Open a local file in headless Chromium with the network refused; (figures drawn, requests tried, errors)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    tried, errors = [], []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                           "--disable-component-update", "--disable-sync"])
        try:
            context = browser.new_context(offline=True)
            page = context.new_page()

            def route(r):
                if r.request.url.startswith("file://"):
                    return r.continue_()
                tried.append(r.request.url)
                return r.abort()
            context.route("**/*", route)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(path.as_uri())
            page.wait_for_selector(".plotly .main-svg", timeout=30_000)
            page.wait_for_timeout(500)
            drawn = page.locator(".js-plotly-plot").count()
            titles = page.eval_on_selector_all(".js-plotly-plot .gtitle", "els => els.map(e => e.textContent)")
        finally:
            browser.close()
    return drawn, titles, tried, errors


def test_a_runs_report_opens_offline_with_its_figures(two_distillations, tmp_path):
    rec, result = two_distillations[0]
    rep = run_report(rec, result)
    html = rep.to_html()
    assert len(html) > 3_000_000                                         # plotly.js (~4.6 MB) is embedded
    assert "<script src=" not in html                                   # nothing loaded from elsewhere
    from plotly.offline import get_plotlyjs
    assert html.count(get_plotlyjs()[-300:]) == 1                       # plotly.js once, for every figure
    import html as html_lib
    assert rec.id in html and str(rec.code_version) in html and html_lib.escape(result.summary()) in html
    assert '"epochs": 2' in html or ">2<" in html                       # the settings are there
    assert f'"width": {PNG_WIDTH}' in html and f'"height": {PNG_HEIGHT}' in html and f'"scale": {PNG_SCALE}' in html
    assert f"distill-digits-{rec.id}-confusion-distilled" in html        # a meaningful PNG file name
    path = tmp_path / "run.html"
    path.write_text(html, encoding="utf-8")
    drawn, titles, tried, errors = open_offline(path)
    assert tried == [], tried
    assert errors == [], errors
    assert drawn == len(rep.figures) >= 4        # curves and three or four confusion matrices
    assert any("Confusion matrix: distilled" in t for t in titles)


def test_a_comparison_report_opens_offline(two_distillations, tmp_path):
    recs = [rec for rec, _ in two_distillations]
    rep = comparison_report(recs)
    html = rep.to_html()
    diff = dict(rep.tables)["Settings that differ"]
    assert [row["train.epochs"] for row in diff] == ["2", "3"]          # only the settings that differ
    assert rep.verdict and "Highest test accuracy" in rep.verdict
    path = tmp_path / "comparison.html"
    path.write_text(html, encoding="utf-8")
    drawn, titles, tried, errors = open_offline(path)
    assert tried == [] and errors == []
    assert drawn == len(rep.figures) == 1
