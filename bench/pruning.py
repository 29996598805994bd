"""Benchmark of the OBD saliencies (issue 4): Gauss–Newton on the Hinton MNIST MLP, exact on the digits student.

Targets: Gauss–Newton diagonal of 784-1200-1200-10 on 10 000 examples < 10 s on 2 cores;
exact Hessian diagonal of the digits student (MLP 16) on its training split < 5 s.
Each timing is printed with the time of one forward pass over the same examples in the
same run, so the ratio can be compared across machines (shared machines inflate both).

    python -m bench.pruning
"""

from __future__ import annotations

import platform
import time
from datetime import date

import torch

from kdcore import pruning as P
from kdcore.data import DatasetUnavailable, load_dataset
from kdcore.models import ModelConfig, build_model, param_count
from kdcore.presets import default_student
from kdcore.train import fit, seeded_model


def timed(fn, repeat: int = 2) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    torch.set_num_threads(2)
    print(f"# pruning benchmark, {date.today()}, {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    try:
        mnist = load_dataset("mnist", 0)
        X, y, src = mnist.X_train[:10_000], mnist.y_train[:10_000], "MNIST"
    except DatasetUnavailable:
        g = torch.Generator().manual_seed(0)
        X, y, src = torch.rand(10_000, 1, 28, 28, generator=g), torch.randint(0, 10, (10_000,), generator=g), "random"
    big = seeded_model(lambda: build_model(ModelConfig(hidden=(1200, 1200)), (1, 28, 28), 10), 0).eval()

    def forward():
        with torch.no_grad():
            for i in range(0, len(X), 2048):
                big(X[i:i + 2048])
    rows = []
    f = timed(forward)
    g = timed(lambda: P.hessian_diagonal(big, X, y, "gauss_newton"))
    rows.append(("gauss_newton", f"MLP 784-1200-1200-10 ({param_count(big):,} params)", f"{len(X):,} {src}",
                 g, f, 10.0))

    d = load_dataset("digits", 0)
    cfg, train = default_student("digits")
    student = seeded_model(lambda: build_model(cfg, d.input_shape, 10), 0)
    fit(student, d.X_train, d.y_train, train, seed=0)
    torch.set_num_threads(1)   # tiny layers: one thread is faster

    def forward_small():
        with torch.no_grad():
            student(d.X_train)
    fs = timed(forward_small, 5)
    e = timed(lambda: P.hessian_diagonal(student, d.X_train, d.y_train, "exact"))
    rows.append(("exact", f"digits student {cfg.describe()} ({param_count(student):,} params)",
                 f"{len(d.X_train):,} digits", e, fs, 5.0))
    h = timed(lambda: P.hessian_diagonal(student, d.X_train, d.y_train, "hutchinson", probes=100))
    rows.append(("hutchinson, 100 probes", f"digits student {cfg.describe()}", f"{len(d.X_train):,} digits",
                 h, fs, float("nan")))
    gs = timed(lambda: P.hessian_diagonal(student, d.X_train, d.y_train, "gauss_newton"))
    rows.append(("gauss_newton", f"digits student {cfg.describe()}", f"{len(d.X_train):,} digits",
                 gs, fs, float("nan")))

    print("| method | model | examples | seconds | forward pass (s) | ratio to forward | target (s) |")
    print("|---|---|---|---|---|---|---|")
    for m, model, ex, t, fw, target in rows:
        tgt = "" if target != target else f"< {target:g}"
        print(f"| {m} | {model} | {ex} | {t:.2f} | {fw:.3f} | {t / fw:.0f}× | {tgt} |")


if __name__ == "__main__":
    main()
