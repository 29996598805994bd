"""The transfer-set lab's results table on digits: labelled fraction, omitted class, losses.

Run from the repository root: `python -m bench.paper_transfer [--seeds 3]`. For
each seed: the default digits teacher (cached), the default student; prints
mean ± std over seeds of the test accuracies (points of %). docs/results.md
("Transfer sets") records its output.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from kdcore.data import load_dataset
from kdcore.distill import KDConfig
from kdcore.presets import default_student, default_teacher_spec
from kdcore.teachers import TeacherCache
from kdcore.transfer import LOSSES, LossComparisonRun, OmittedClassRun, fraction_curve


def ms(xs) -> str:
    xs = [100 * x for x in xs]
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):6.2f} ± {sd:4.2f}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--fractions", default="0.03,0.1,0.3,1.0")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    fractions = [float(f) for f in args.fractions.split(",")]
    cache = TeacherCache()
    frac = {f: {"distilled": [], "scratch": []} for f in fractions}
    omitted = {k: [] for k in ("d0", "dauto", "s0", "dall0", "dallauto", "bias")}
    losses = {k: [] for k in LOSSES}
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        ds = load_dataset(args.dataset, seed)
        teacher = cache.get_or_train(default_teacher_spec(args.dataset, seed, seed), ds)
        student, train = default_student(args.dataset)
        kd = KDConfig(temperature=4.0, alpha=0.9)
        for p in fraction_curve(ds, teacher.logits, teacher.metrics, student, train, kd, fractions, seed):
            frac[p.fraction]["distilled"].append(p.distilled["accuracy"])
            frac[p.fraction]["scratch"].append(p.scratch["accuracy"])
        run = OmittedClassRun(ds, teacher.logits, teacher.metrics, 3, student, train, kd, seed)
        while not run.done:
            run.step()
        r = run.result()
        d0, da, s0 = r.evaluate_bias(0.0), r.evaluate_bias(r.auto_bias), r.evaluate_bias(0.0, "scratch")
        omitted["d0"].append(d0["class_accuracy"]); omitted["dauto"].append(da["class_accuracy"])
        omitted["s0"].append(s0["class_accuracy"]); omitted["dall0"].append(d0["accuracy"])
        omitted["dallauto"].append(da["accuracy"]); omitted["bias"].append(r.auto_bias / 100)
        lc = LossComparisonRun(ds, teacher.logits, teacher.metrics, student, train,
                               KDConfig(temperature=4.0, alpha=0.9, labelled_fraction=0.1), seed)
        while not lc.done:
            lc.step()
        for k, m in lc.result().metrics.items():
            losses[k].append(m["accuracy"])
        print(f"seed {seed} done ({time.perf_counter() - t0:.0f} s)", flush=True)

    print(f"\n{args.dataset}, default teacher and student ({student.describe()}, {train.epochs} epochs), "
          f"T = 4, α = 0.9, {args.seeds} seeds: test accuracy (%), mean ± std")
    print("\nLabelled fraction        soft targets + labels   labels only")
    for f in fractions:
        print(f"  {100 * f:5g} %                {ms(frac[f]['distilled'])}          {ms(frac[f]['scratch'])}")
    print("\nOmitted class 3 (transfer set without any 3)")
    print(f"  distilled, accuracy on 3s, b = 0:      {ms(omitted['d0'])}")
    print(f"  distilled, accuracy on 3s, auto b:     {ms(omitted['dauto'])}   (b = {ms(omitted['bias'])})")
    print(f"  scratch,   accuracy on 3s, b = 0:      {ms(omitted['s0'])}")
    print(f"  distilled, overall, b = 0 -> auto b:   {ms(omitted['dall0'])} -> {ms(omitted['dallauto'])}")
    print("\nLoss (10 % labels)")
    for k in LOSSES:
        print(f"  {LOSSES[k]:32s} {ms(losses[k])}")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
