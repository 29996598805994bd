"""Click → result in the browser against the engine's own time, at the digits defaults.

    python -m bench.inapp [--repeats 5]

For the default teacher, the Distill students and the default Sweep grid: the time from a click in
headless Chromium to the result on screen (the first frame painted with it, timed inside the page:
`bench.serve.RESULT_CLOCK`), on a served app (`streamlit run app.py`, the project's config), and the
engine's time for the same work in its own Python process, with the job runner's setting of 1 torch
thread and with 2 threads as `bench.engine` runs it. The engine runs *interleaved* with the clicks
(an engine process waits for each job on its stdin): timings on this shared 2-core machine drift by
10-15 % within minutes, and a ratio of two measurements taken minutes apart carried that drift. Each
click uses new settings (another split seed for the teacher, another number of epochs for the
students, another first α for the grid), so nothing is answered from the store, and the engine does
the same work: the Sweep's grid with its two control rows (`controls=True`), the three Distill
students (`DistillRun`, in lockstep). The app trains the three students as parts of the run, on its
two workers at once. A second Distill row, "distill α", changes only α: there the app trains the
distilled student alone (both controls are the same runs as before, taken from the store), while
the engine trains all three again; it is the common case of a slider moved, not a like-for-like
comparison. Target (issue "Runs that outlive the page"): in-app within 1.3 × the engine.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time

from bench.serve import ROOT, Server, chromium, result_clock, timed_click

ENGINE = r'''
import dataclasses, json, sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
from kdcore.data import load_dataset
from kdcore.distill import DistillRun, KDConfig
from kdcore.presets import default_kd, default_student, default_teacher_spec
from kdcore.sweep import SweepConfig, run_sweep
from kdcore.teachers import train_teacher
ds = load_dataset("digits", 0)
teacher = train_teacher(default_teacher_spec("digits", 0, 0), ds)
student, train = default_student("digits")
print("ready", flush=True)
for line in sys.stdin:   # one job per line: "teacher <seed>", "distill <epochs>", "distill_alpha <alpha>", "sweep <first alpha>"
    what, value = line.split()
    if what == "teacher":
        data = load_dataset("digits", int(value))
        t0 = time.perf_counter(); train_teacher(default_teacher_spec("digits", int(value), int(value)), data)
    elif what in ("distill", "distill_alpha"):
        alpha = float(value) if what == "distill_alpha" else default_kd("digits").alpha
        epochs = int(value) if what == "distill" else train.epochs
        kd = KDConfig(**{**default_kd("digits").to_dict(), "alpha": alpha})
        t0 = time.perf_counter()
        run = DistillRun(ds, teacher.logits, teacher.metrics, student, dataclasses.replace(train, epochs=epochs), kd,
                         seed=0, control=True)
        while not run.done:
            run.step()
        run.result()
    else:
        t0 = time.perf_counter()
        run_sweep(ds, teacher.logits, SweepConfig(alphas=(float(value), 0.3, 0.5, 0.7, 0.9), controls=True))
    print(json.dumps(time.perf_counter() - t0), flush=True)
'''


class Engine:
    """The engine in its own process, doing one job when asked (so that its timings interleave the clicks)."""

    def __init__(self, threads: int):
        self.proc = subprocess.Popen([sys.executable, "-c", ENGINE, str(threads)], cwd=ROOT, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env={"KDLAB_CACHE": tempfile.mkdtemp(prefix="kdlab-engine-"),
                                          "PATH": "/usr/bin:/bin"})
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError(self.proc.stderr.read()[-3000:])

    def time(self, what: str, value) -> float:
        self.proc.stdin.write(f"{what} {value}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(self.proc.stderr.read()[-3000:])
        return float(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(30)


def measure(repeats: int) -> dict[str, dict[str, list[float]]]:
    """Per kind of work, the times of each repeat: engine with 1 and 2 threads, then the click."""
    from playwright.sync_api import expect, sync_playwright
    times = {k: {"engine 1": [], "engine 2": [], "browser": []} for k in ("teacher", "distill", "distill α", "sweep")}
    engines = {1: Engine(1), 2: Engine(2)}

    def engine(kind: str, value) -> None:
        for threads, e in engines.items():
            times[kind][f"engine {threads}"].append(e.time(kind.replace(" α", "_alpha"), value))

    cache = tempfile.mkdtemp(prefix="kdlab-inapp-")
    with Server(cache) as server, sync_playwright() as pw:
        browser = chromium(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{server.url}/distill", timeout=300_000)
        expect(page.get_by_role("button", name="Distill")).to_be_visible(timeout=300_000)
        seed = page.get_by_label("Seed", exact=True).and_(page.locator("input"))
        for r in range(repeats):   # the teacher: a new split seed each time, so a new teacher
            engine("teacher", 10 + r)
            seed.fill(str(10 + r))
            seed.press("Enter")
            expect(page.get_by_text("No teacher with these settings yet")).to_be_visible(timeout=60_000)
            page.wait_for_timeout(500)
            times["teacher"]["browser"].append(timed_click(page, page.get_by_role("button", name="Train teacher"),
                                                           result_clock(r"teacher MLP 512-512.*test accuracy",
                                                                        selector="[data-testid=stAlert]")))
        seed.fill("0")             # the students: the split and teacher the engine distils from
        seed.press("Enter")
        expect(page.get_by_text("No teacher with these settings yet")).to_be_visible(timeout=60_000)
        page.get_by_role("button", name="Train teacher").click()
        expect(page.get_by_text(re.compile(r"teacher MLP 512-512.*test accuracy"))).to_be_visible(timeout=300_000)
        epochs = page.get_by_label("Epochs").nth(1)   # the students' (the first is the teacher's)
        default_epochs = int(epochs.input_value())
        for r in range(repeats):   # one epoch more each time: three new students
            n = default_epochs + r + 1
            engine("distill", n)
            epochs.fill(str(n))
            page.wait_for_timeout(300)
            times["distill"]["browser"].append(timed_click(page, page.get_by_role("button", name="Distill"),
                                                           result_clock(f"· {n} epochs · seed")))
        epochs.fill(str(default_epochs))
        page.get_by_role("button", name="Distill").click()   # the default run: its controls are then stored
        expect(page.get_by_text(f"· {default_epochs} epochs · seed")).to_be_visible(timeout=120_000)
        alpha = page.get_by_role("slider", name="α (weight of the soft targets)")
        for r in range(repeats):   # α one step lower each time: a new distilled student, the same controls
            want = f"{0.9 - 0.05 * (r + 1):g}"
            engine("distill α", want)
            alpha.focus()
            page.keyboard.press("ArrowLeft")
            page.wait_for_timeout(300)
            times["distill α"]["browser"].append(timed_click(page, page.get_by_role("button", name="Distill"),
                                                             result_clock(f"α = {re.escape(want)} ·")))
        page.get_by_role("link", name="Sweep").first.click()
        button = page.get_by_role("button", name="Run sweep")
        expect(button).to_be_visible(timeout=120_000)
        for r in range(repeats):   # the default 5 × 5 grid, its first α nudged so that the grid is new
            first = f"{0.1 + 0.01 * (r + 1):g}"
            engine("sweep", first)
            alphas = page.get_by_role("textbox", name="α values")
            alphas.fill(f"{first}, 0.3, 0.5, 0.7, 0.9")
            page.wait_for_timeout(300)
            # the new grid's heatmap has a row for the nudged α (plotly draws tick labels as SVG text),
            # and no spinner or live view is left
            times["sweep"]["browser"].append(timed_click(page, button, result_clock(
                rf"^α={re.escape(first)}$", selector="svg text",
                absent="[data-testid=stSpinner], [data-testid=stProgress]")))
        page.screenshot(path=f"{cache}/last.png", full_page=True)
        browser.close()
    for e in engines.values():
        e.close()
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print(time.strftime("%Y-%m-%d %H:%M"), f"digits defaults; {args.repeats} repeats, engine and clicks interleaved")
    times = measure(args.repeats)
    for kind, t in times.items():
        print(f"{kind:10s} " + "; ".join(f"{k} " + ", ".join(f"{x:.2f}" for x in v) for k, v in t.items()))
    print(f"\n{'medians':10s} {'engine 1 thread':>16s} {'engine 2 threads':>17s} {'in the browser':>15s} "
          f"{'ratio (1 thr)':>14s} {'ratio (2 thr)':>14s}")
    for kind, t in times.items():
        e1, e2, app = (statistics.median(t[k]) for k in ("engine 1", "engine 2", "browser"))
        print(f"{kind:10s} {e1:14.2f} s {e2:15.2f} s {app:13.2f} s {app / e1:13.2f}× {app / e2:13.2f}×")


if __name__ == "__main__":
    main()
