"""Speed of the engine at the digits defaults (targets of issue 2, on 2 CPU cores).

- the default teacher trains in under 10 s (from scratch, no cache);
- the distilled and the scratch student at the default settings train in under 4 s together;
- a Distill page rerun that retrains nothing (a view change) takes under 100 ms of server time,
  measured through Streamlit's AppTest (which adds its own overhead: the figure is an upper bound).

    python -m bench.engine
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main():
    os.environ.setdefault("KDLAB_CACHE", tempfile.mkdtemp(prefix="kdlab-bench-"))
    torch.set_num_threads(2)
    from kdcore.data import load_dataset
    from kdcore.distill import distill_and_compare
    from kdcore.presets import default_kd, default_student, default_teacher_spec
    from kdcore.teachers import TeacherCache, train_teacher

    ds = load_dataset("digits", 0)
    spec = default_teacher_spec("digits", 0)
    t0 = time.perf_counter()
    teacher = train_teacher(spec, ds)
    t_teacher = time.perf_counter() - t0
    TeacherCache().put(teacher)

    student, train = default_student("digits")
    kd = default_kd("digits")
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        r = distill_and_compare(ds, teacher.logits, teacher.metrics, student, train, kd, seed=0)
        times.append(time.perf_counter() - t0)
    t_students = statistics.median(times)

    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/distill.py").run()
    next(b for b in at.button if b.label == "Distill").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    reruns = []
    for i in range(12):
        t0 = time.perf_counter()
        at.radio(key="distill_confusion").set_value(["scratch", "teacher", "distilled"][i % 3]).run()
        reruns.append(time.perf_counter() - t0)
    t_rerun = statistics.median(reruns[2:])

    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{time.strftime('%Y-%m-%d')}")
    print("| what | measured | target |")
    print("|---|---|---|")
    print(f"| default digits teacher ({spec.model.describe()}, {spec.train.epochs} epochs) | "
          f"{t_teacher:.2f} s | < 10 s |")
    print(f"| distilled + scratch students ({student.describe()}, {train.epochs} epochs, median of 3) | "
          f"{t_students:.2f} s | < 4 s |")
    print(f"| Distill page rerun on a view change (AppTest, median of 10) | {1000 * t_rerun:.0f} ms | < 100 ms |")
    print(f"\n(teacher test accuracy {100 * teacher.metrics['accuracy']:.1f} %, distilled "
          f"{100 * r.distilled_metrics['accuracy']:.1f} %, scratch {100 * r.scratch_metrics['accuracy']:.1f} %)")


if __name__ == "__main__":
    main()
