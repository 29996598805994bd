"""Does distillation help on digits? The 5-seed table behind the app's defaults (docs/results.md).

For each seed (which changes the split, the initializations and the batch
order) it trains the default teacher, then for each setting a distilled student
and its scratch twin from the same initialization, and prints the mean and
standard deviation of their test accuracies, the mean gain, and on how many
seeds distillation won.

    python -m bench.results_digits            # 5 seeds, ~2 minutes on 2 cores
    python -m bench.results_digits --seeds 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from kdcore.data import load_dataset
from kdcore.distill import KDConfig, distill_and_compare
from kdcore.models import ModelConfig
from kdcore.presets import default_kd, default_student, default_teacher_spec
from kdcore.teachers import TeacherCache
from kdcore.train import TrainConfig


def settings():
    student, train = default_student("digits")
    kd = default_kd("digits")
    full = KDConfig(kd.temperature, kd.alpha, labelled_fraction=1.0)
    return [
        ("app defaults: MLP 16, T=4, α=0.9, 10 % labels", student, train, kd),
        ("same student, 100 % labels", student, train, full),
        ("MLP 16, T=4, α=0.9, 3 % labels", student, train, KDConfig(kd.temperature, kd.alpha, labelled_fraction=0.03)),
        ("MLP 32-32, 60 epochs, T=2, α=0.9, 100 % labels", ModelConfig(hidden=(32, 32)),
         TrainConfig(**{**train.to_dict(), "epochs": 60}), KDConfig(2.0, 0.9, labelled_fraction=1.0)),
    ]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    cache = TeacherCache()
    rows = {name: [] for name, *_ in settings()}
    teachers = []
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        ds = load_dataset("digits", seed)
        teacher = cache.get_or_train(default_teacher_spec("digits", seed, seed), ds)
        teachers.append(teacher.metrics["accuracy"])
        for name, student, train, kd in settings():
            r = distill_and_compare(ds, teacher.logits, teacher.metrics, student, train, kd, seed=seed)
            rows[name].append((r.distilled_metrics["accuracy"], r.scratch_metrics["accuracy"]))
        print(f"seed {seed} done ({time.perf_counter() - t0:.0f} s)", flush=True)

    def ms(xs):
        return f"{100 * statistics.mean(xs):.2f} ± {100 * statistics.stdev(xs):.2f}" if len(xs) > 1 \
            else f"{100 * xs[0]:.2f}"

    print(f"\nTeacher ({default_teacher_spec('digits').model.describe()}): test accuracy {ms(teachers)} %\n")
    print("| setting | distilled (%) | scratch (%) | gain (points) | distilled wins |")
    print("|---|---|---|---|---|")
    for name, vals in rows.items():
        d, s = [v[0] for v in vals], [v[1] for v in vals]
        gains = [a - b for a, b in vals]
        print(f"| {name} | {ms(d)} | {ms(s)} | {ms(gains)} | {sum(g > 0 for g in gains)} / {len(gains)} |")


if __name__ == "__main__":
    main()
