"""Click → result in the browser against the engine's own time, at the digits defaults.

    python -m bench.inapp [--repeats 3]

For the default teacher, the Distill pair and the default Sweep grid: the engine's time (the
same work in a fresh Python process, with the job runner's setting of 1 torch thread, and with
2 threads as `bench.engine` runs it), then the time from a click in headless Chromium to the
result on screen (the first frame painted with it, timed inside the page: `bench.serve.RESULT_CLOCK`),
on a served app (`streamlit run app.py`, the project's config). The Sweep
in the engine trains what the page does: the grid and its two control rows (`controls=True`). Each in-app
measurement uses new settings (another seed for the teacher, another α for the students), so
nothing is answered from the store. Target (issue "Runs that outlive the page"): in-app within
1.3 × the engine.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time

from bench.serve import ROOT, Server, chromium, result_clock, timed_click

ENGINE = r'''
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
from kdcore.data import load_dataset
from kdcore.distill import DistillRun
from kdcore.presets import default_kd, default_student, default_teacher_spec
from kdcore.sweep import SweepConfig, run_sweep
from kdcore.teachers import train_teacher
out = {}
for seed in (1, 2):
    ds = load_dataset("digits", seed)
    t0 = time.perf_counter(); teacher = train_teacher(default_teacher_spec("digits", seed, seed), ds)
    out.setdefault("teacher", []).append(time.perf_counter() - t0)
ds = load_dataset("digits", 0)
teacher = train_teacher(default_teacher_spec("digits", 0, 0), ds)
student, train = default_student("digits")
for i in range(3):
    t0 = time.perf_counter()
    run = DistillRun(ds, teacher.logits, teacher.metrics, student, train, default_kd("digits"), seed=0, control=True)
    while not run.done:
        run.step()
    run.result()
    out.setdefault("distill", []).append(time.perf_counter() - t0)
for i in range(3):
    t0 = time.perf_counter(); run_sweep(ds, teacher.logits, SweepConfig(controls=True)); out.setdefault("sweep", []).append(time.perf_counter() - t0)
print(json.dumps(out))
'''


def engine_times(threads: int) -> dict:
    out = subprocess.run([sys.executable, "-c", ENGINE, str(threads)], cwd=ROOT, capture_output=True, text=True,
                         env={"KDLAB_CACHE": tempfile.mkdtemp(prefix="kdlab-engine-"), "PATH": "/usr/bin:/bin"})
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return {k: statistics.median(v) for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}


def in_app(repeats: int) -> dict:
    from playwright.sync_api import expect, sync_playwright
    times: dict[str, list[float]] = {"teacher": [], "distill": [], "sweep": []}
    cache = tempfile.mkdtemp(prefix="kdlab-inapp-")
    with Server(cache) as server, sync_playwright() as pw:
        browser = chromium(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{server.url}/distill", timeout=300_000)
        expect(page.get_by_role("button", name="Distill")).to_be_visible(timeout=300_000)
        seed = page.get_by_label("Seed", exact=True).and_(page.locator("input"))
        for r in range(repeats):   # the teacher: a new split seed each time, so a new teacher
            seed.fill(str(10 + r))
            seed.press("Enter")
            expect(page.get_by_text("No teacher with these settings yet")).to_be_visible(timeout=60_000)
            page.wait_for_timeout(500)
            times["teacher"].append(timed_click(page, page.get_by_role("button", name="Train teacher"), result_clock(
                r"teacher MLP 512-512.*test accuracy", selector="[data-testid=stAlert]")))
        alpha = page.get_by_role("slider", name="α (weight of the soft targets)")
        for r in range(repeats):   # the students: α one step lower each time, so new students
            alpha.focus()
            page.keyboard.press("ArrowLeft")
            want = f"{0.9 - 0.05 * (r + 1):g}"
            page.wait_for_timeout(300)
            times["distill"].append(timed_click(page, page.get_by_role("button", name="Distill"),
                                                result_clock(f"α = {re.escape(want)} ·")))
        page.get_by_role("link", name="Sweep").first.click()
        button = page.get_by_role("button", name="Run sweep")
        expect(button).to_be_visible(timeout=120_000)
        for r in range(repeats):   # the default 5 × 5 grid, its first α nudged so that the grid is new
            alphas = page.get_by_role("textbox", name="α values")
            alphas.fill(f"{0.1 + 0.01 * (r + 1):g}, 0.3, 0.5, 0.7, 0.9")
            page.wait_for_timeout(300)
            # the new grid's heatmap has a row for the nudged α (plotly draws tick labels as SVG text),
            # and no spinner or live view is left
            times["sweep"].append(timed_click(page, button, result_clock(
                rf"^α={re.escape(f'{0.1 + 0.01 * (r + 1):g}')}$", selector="svg text",
                absent="[data-testid=stSpinner], [data-testid=stProgress]")))
        page.screenshot(path=f"{cache}/last.png", full_page=True)
        browser.close()
    print("in the browser, each click: " + "; ".join(f"{k} " + ", ".join(f"{t:.2f}" for t in v)
                                                   for k, v in times.items() if v))
    return {k: statistics.median(v) for k, v in times.items() if v}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(time.strftime("%Y-%m-%d %H:%M"), "digits defaults; medians")
    e1, e2 = engine_times(1), engine_times(2)
    app = in_app(args.repeats)
    print(f"{'':10s} {'engine 1 thread':>16s} {'engine 2 threads':>17s} {'in the browser':>15s} "
          f"{'ratio (1 thr)':>14s} {'ratio (2 thr)':>14s}")
    for k in ("teacher", "distill", "sweep"):
        if k in app:
            print(f"{k:10s} {e1[k]:14.2f} s {e2[k]:15.2f} s {app[k]:13.2f} s {app[k] / e1[k]:13.2f}× "
                  f"{app[k] / e2[k]:13.2f}×")


if __name__ == "__main__":
    main()
