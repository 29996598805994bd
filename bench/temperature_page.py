"""Server time per rerun of the Temperature page (issue 3), on digits and MNIST.

    python -m bench.temperature_page                 # digits and MNIST
    python -m bench.temperature_page --datasets digits --reruns 30

For each dataset: a teacher is put in a private disk cache first (the default
digits teacher; for MNIST a small one unless --full-mnist-teacher, since the
page's speed depends on N_test × C, not on the teacher's quality), then the
app runs under `streamlit.testing.v1.AppTest` and the script is rerun after
moving the temperature slider, the example, and the log-scale toggle. It
reports the median wall time of a rerun, measured three ways:

- "AppTest": `widget.set_value(...).run()` as is. AppTest builds a fresh
  ScriptCache on every run, so each rerun also recompiles app.py and the page
  (a server compiles them once), and it parses the output into its element
  tree: an upper bound on the server's time.
- "AppTest, compiled once": the same with one ScriptCache kept across reruns,
  as a Streamlit server does.
- "script run only": within those reruns, the time spent in the script
  runner's `_run_script` (the page's code, its Streamlit calls and their
  messages), without AppTest's thread start and element-tree parsing: the
  server's time per rerun, the number compared with the targets.
- "page work only": the page's own computations and chart serialization
  (softmaxes, figure dicts, JSON), without Streamlit: the floor.
- "empty script, AppTest": a one-slider script rerun the same way: AppTest's
  fixed cost, included in the two AppTest rows.

Timings on a shared machine are noisy; compare the rows of one run.
Targets (issue 3): < 50 ms per rerun on digits, < 150 ms on MNIST.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from kdcore.viz import temperature as tv

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KDLAB_SHARED_DATASETS", ROOT.parent / "shared" / "datasets"))
TARGET_MS = {"digits": 50.0, "mnist": 150.0, "fashion_mnist": 150.0}
TEMPS = [1.0, 2.0, 10.0, 50.0, 0.5, 4.0, 20.0, 1.5]
SCRIPT_RUNS: list[float] = []   # seconds spent in each ScriptRunner._run_script (the server's part)


def _time_script_runs() -> None:
    """Record how long each script run takes inside the runner (no AppTest parsing, no thread start)."""
    from streamlit.runtime.scriptrunner import script_runner
    original = script_runner.ScriptRunner._run_script
    if getattr(original, "_timed", False):
        return

    def timed_run(self, *args, **kwargs):
        t = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            SCRIPT_RUNS.append(time.perf_counter() - t)
    timed_run._timed = True
    script_runner.ScriptRunner._run_script = timed_run


def _median_ms(times: list[float]) -> float:
    return 1000 * statistics.median(times)


def _teacher_spec(name: str, full: bool):
    from kdcore.models import ModelConfig
    from kdcore.presets import default_teacher_spec
    from kdcore.teachers import TeacherSpec
    from kdcore.train import TrainConfig
    spec = default_teacher_spec(name, 0)
    if name in ("mnist", "fashion_mnist") and not full:
        # a 1-epoch 128-unit MLP: ~10 s instead of ~1 min; same N_test × C for the page
        spec = TeacherSpec(name, 0, ModelConfig(hidden=(128,)), TrainConfig(epochs=1, batch_size=256, lr=1e-3))
    return spec


def _page_work_ms(ds, teacher, reruns: int) -> float:
    """The page's computations and serialization for one rerun at a new T, without Streamlit."""
    import numpy as np
    import plotly.io as pio
    from kdcore import temperature as tl
    out = tl.TeacherOutputs.from_logits(teacher.logits["test"].numpy(), ds.y_test.numpy(), ds.n_classes)
    names = list(ds.class_names)
    idx = int(out.confusing_order[0])
    z = out.logits[(idx + 1) % len(out.labels)] * 0.3
    times = []
    for i in range(reruns):
        T = TEMPS[i % len(TEMPS)]
        t0 = time.perf_counter()
        v = out.logits[idx]
        p1, pT = tl.soften_np(v, 1.0), tl.soften_np(v, T)
        H, top = tl.entropy_and_top(v)
        sim = out.similarity(T)
        tl.most_similar(sim)
        story = tl.gradient_story(z, v)
        figs = [tv.input_image(ds.X_test[idx].numpy().reshape(ds.input_shape[-2:]), "x") if ds.is_image else
                tv.input_point(ds.X_test.numpy(), out.labels, names, ds.X_test[idx].numpy(), "x"),
                tv.probability_bars(names, [("a", p1, "#000"), ("b", pT, "#111")], True, "x"),
                tv.entropy_curve(tl.CURVE_TEMPERATURES, H, top, T, ds.n_classes, "x"),
                tv.similarity_heatmap(sim, names, T, True, "x"),
                tv.gradient_ratio_figure(story, T, "x"),
                tv.gradient_magnitude_figure(story, T, tl.hard_gradient_norm(z, 0), "x")]
        for f in figs:
            pio.to_json(f.to_dict(), validate=False)
        np.asarray(tl.soft_target_gradient(z, v, T))
        times.append(time.perf_counter() - t0)
    return _median_ms(times)


def _empty_script_ms(reruns: int) -> float:
    """AppTest's own cost of a rerun: a script with one slider and nothing else (compiled once)."""
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache
    from streamlit.testing.v1 import AppTest, local_script_runner
    shared, original = ScriptCache(), local_script_runner.ScriptCache
    local_script_runner.ScriptCache = lambda: shared
    try:
        at = AppTest.from_string('import streamlit as st\nst.select_slider("T", [1.0, 2.0, 4.0], key="T")')
        at.run()
        times = []
        for i in range(reruns):
            w = at.select_slider(key="T").set_value([1.0, 2.0, 4.0][i % 3])
            t = time.perf_counter()
            w.run()
            times.append(time.perf_counter() - t)
        return _median_ms(times)
    finally:
        local_script_runner.ScriptCache = original


def bench_dataset(name: str, reruns: int, full_teacher: bool, script: str) -> dict:
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache
    from streamlit.testing.v1 import AppTest
    from streamlit.testing.v1 import local_script_runner

    from kdcore.data import load_dataset
    from kdcore.teachers import TeacherCache

    ds = load_dataset(name, 0)
    spec = _teacher_spec(name, full_teacher)
    t0 = time.perf_counter()
    teacher = TeacherCache().get_or_train(spec, ds)
    teacher_s = time.perf_counter() - t0

    def open_page() -> AppTest:
        at = AppTest.from_file(str(ROOT / script), default_timeout=600)
        at.session_state["dataset"] = name
        at.session_state["teacher_spec"] = {(name, 0): spec}
        at.run()
        if script == "app.py":
            at.switch_page("pages/temperature.py")
            at.run()
        if at.exception:
            raise RuntimeError(f"the page failed: {at.exception[0].message}")
        if any(b.label == "Train the teacher" for b in at.button):
            raise RuntimeError("the page did not find the cached teacher")
        return at

    def timed(at: AppTest, action, n: int) -> tuple[list[float], list[float]]:
        """Wall times of `.run()` and, inside them, of the script run itself."""
        walls, scripts = [], []
        for i in range(n):
            widget = action(at, i)
            before = len(SCRIPT_RUNS)
            t = time.perf_counter()
            widget.run()
            walls.append(time.perf_counter() - t)
            assert not at.exception, at.exception
            scripts.append(sum(SCRIPT_RUNS[before:]))
        return walls, scripts

    move_T = lambda at, i: at.select_slider(key="temperature_T").set_value(TEMPS[i % len(TEMPS)])  # noqa: E731
    move_example = lambda at, i: at.number_input(key="temperature_rank").set_value(1 + i % 7)  # noqa: E731
    toggle_log = lambda at, i: at.toggle(key="temperature_log").set_value(i % 2 == 0)  # noqa: E731

    row = {"dataset": name, "test examples": len(ds.y_test), "classes": ds.n_classes,
           "teacher": spec.model.describe(), "teacher ready (s)": teacher_s}
    cache = None
    for mode in ("AppTest", "AppTest, compiled once"):
        original = local_script_runner.ScriptCache
        if mode != "AppTest":
            shared = ScriptCache()
            local_script_runner.ScriptCache = lambda: shared
        try:
            at = open_page()
            cache = __import__("ui.state", fromlist=["teacher_cache"]).teacher_cache()
            trained_before = cache.trained
            for label, action, n in [("T", move_T, reruns), ("example", move_example, max(5, reruns // 2)),
                                     ("log toggle", toggle_log, max(5, reruns // 2))]:
                walls, scripts = timed(at, action, n)
                row[f"{mode}: {label} (ms)"] = _median_ms(walls)
                if mode != "AppTest":
                    row[f"script run only: {label} (ms)"] = _median_ms(scripts)
            if cache.trained != trained_before:
                raise RuntimeError("a rerun trained a teacher")
        finally:
            local_script_runner.ScriptCache = original
    row["page work only (ms)"] = _page_work_ms(ds, teacher, reruns)
    row["empty script, AppTest (ms)"] = _empty_script_ms(reruns)
    row["target (ms)"] = TARGET_MS.get(name, float("nan"))
    return row


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["digits", "mnist"])
    ap.add_argument("--reruns", type=int, default=24, help="reruns timed per widget (median reported)")
    ap.add_argument("--full-mnist-teacher", action="store_true",
                    help="use the default 800-800 MNIST teacher (~1 min to train) instead of a small one")
    ap.add_argument("--script", default="app.py",
                    help="the script AppTest runs: app.py (the real app, with its sidebar) or "
                         "pages/temperature.py (the page alone)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    tmp = Path(tempfile.mkdtemp(prefix="kdlab-bench-temperature-"))
    os.environ["KDLAB_CACHE"], os.environ["KDLAB_DATA"] = str(tmp / "cache"), str(tmp / "data")
    for name in args.datasets:
        folder = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}.get(name)
        if folder:
            if not (SHARED / folder / "raw").is_dir():
                sys.exit(f"{SHARED / folder / 'raw'} not found: set KDLAB_SHARED_DATASETS")
            shutil.copytree(SHARED / folder / "raw", tmp / "data" / folder / "raw")
    sys.path.insert(0, str(ROOT))
    import logging
    logging.getLogger("streamlit").setLevel(logging.ERROR)

    _time_script_runs()
    rows = []
    try:
        for name in args.datasets:
            rows.append(bench_dataset(name, args.reruns, args.full_mnist_teacher, args.script))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nTemperature page: median wall time per rerun ({args.reruns} reruns per widget, "
          f"script {args.script}, torch threads 1; {os.cpu_count()} CPUs, load average {load:.1f} at the end)\n")
    keys = list(rows[0])
    width = max(len(k) for k in keys)
    for k in keys:
        cells = [f"{r[k]:.1f}" if isinstance(r[k], float) else str(r[k]) for r in rows]
        print(f"{k:<{width}}  " + "  ".join(f"{c:>26}" for c in cells))
    for r in rows:
        worst = max(r[f"script run only: {w} (ms)"] for w in ("T", "example", "log toggle"))
        ok = worst < r["target (ms)"]
        print(f"{r['dataset']}: script run {worst:.1f} ms (slowest widget): {'meets' if ok else 'MISSES'} "
              f"the {r['target (ms)']:.0f} ms target")


if __name__ == "__main__":
    main()
