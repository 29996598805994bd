"""Click → result on the Sequences page against the engine's own time, at the page's defaults.

    python -m bench.inapp_sequences [--repeats 3]

The engine: `SeqTeacherRun` then `SeqDistillRun` at the "events" defaults in a fresh process with
one torch thread (as a worker runs them). In the browser (headless Chromium, a served app): the
Sequences page, a new seed each time (so a new teacher and new sequences), one click on Distill
(the teacher is trained first), until the results are on screen (the first frame painted with them,
timed inside the page: `bench.serve.RESULT_CLOCK`). Target (issue "Sequences"): the page meets the
same in-app rule as Distill, within 1.3 × the engine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

from bench.serve import ROOT, Server, chromium, result_clock, timed_click

ENGINE = r'''
import json, sys, time, torch
torch.set_num_threads(1)
from kdcore.seqdistill import SeqDistillRun, SeqTeacherRun, sequence_presets
t_cfg, d_cfg = sequence_presets()["events"]
out = {"teacher": [], "students": []}
for seed in map(int, sys.argv[1:]):
    t0 = time.perf_counter(); t = SeqTeacherRun(t_cfg, seed=seed)
    while not t.done: t.step()
    teacher = t.result(); out["teacher"].append(time.perf_counter() - t0)
    t0 = time.perf_counter(); s = SeqDistillRun(d_cfg, teacher, seed=seed)
    while not s.done: s.step()
    s.result(); out["students"].append(time.perf_counter() - t0)
print(json.dumps(out))
'''


def engine_times(seeds: list[int]) -> dict:
    out = subprocess.run([sys.executable, "-c", ENGINE, *map(str, seeds)], cwd=ROOT, capture_output=True, text=True,
                         env={"KDLAB_CACHE": tempfile.mkdtemp(prefix="kdlab-engine-"), "PATH": "/usr/bin:/bin"})
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def in_app(seeds: list[int]) -> list[float]:
    from playwright.sync_api import expect, sync_playwright
    times = []
    cache = tempfile.mkdtemp(prefix="kdlab-inapp-seq-")
    with Server(cache) as server, sync_playwright() as pw:
        browser = chromium(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for seed in seeds:
            page.goto(f"{server.url}/sequences?seed={seed}", timeout=300_000)
            button = page.get_by_role("button", name="Distill", exact=True)
            expect(button).to_be_visible(timeout=300_000)
            expect(page.get_by_text("No teacher with these settings yet")).to_be_visible(timeout=60_000)
            page.wait_for_timeout(1000)
            times.append(timed_click(page, button, result_clock(f"seed {seed}\\. One run")))
        browser.close()
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    seeds = [11 + r for r in range(args.repeats)]
    print(time.strftime("%Y-%m-%d %H:%M"), "Sequences page defaults (events); seeds", seeds)
    e = engine_times(seeds)
    engine = [t + s for t, s in zip(e["teacher"], e["students"])]
    app = in_app(seeds)
    print("engine (1 thread): teacher " + ", ".join(f"{t:.2f}" for t in e["teacher"]) + " s; students "
          + ", ".join(f"{t:.2f}" for t in e["students"]) + " s")
    print("in the browser: " + ", ".join(f"{t:.2f}" for t in app) + " s")
    ratio = statistics.median(app) / statistics.median(engine)
    print(f"medians: engine {statistics.median(engine):.2f} s, in the browser {statistics.median(app):.2f} s, "
          f"ratio {ratio:.2f}× (target ≤ 1.3 ×)")


if __name__ == "__main__":
    main()
