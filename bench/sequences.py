"""The Sequences results: teacher → three students per task, many models into one, the 1991 chunker.

Run from the repository root: `python -m bench.sequences [--seeds 5]` (one thread,
as on the 2-core machine). For each seed and each task preset
(`kdcore.seqdistill.sequence_presets`; the first is the page's default): the
teacher's training time and accuracy, then the three students (distilled,
labels only, teacher's hard labels: one initialization, one batch order) and
their time. Then `GroupsIntoOneRun` and `ChunkerRun` at their defaults (the
chunker with and without the automatizer's state-prediction loss).
Prints markdown tables (mean ± std over seeds); docs/results.md records them.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from kdcore.chunker import ChunkerConfig, ChunkerRun
from kdcore.seqdistill import STUDENT_NAMES, STUDENTS, SeqDistillRun, SeqTeacherRun, sequence_presets
from kdcore.seqgroups import GroupsIntoOneConfig, GroupsIntoOneRun


def ms(xs, scale=100.0, digits=1) -> str:
    xs = [scale * x for x in xs]
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):.{digits}f} ± {sd:.{digits}f}"


CPU_SECONDS: list[float] = []   # CPU time of each run_to_end (one thread: close to the wall time of an idle machine)


def run_to_end(run):
    """Run to the end; (result, wall seconds); the CPU seconds go to CPU_SECONDS."""
    t0, c0 = time.perf_counter(), time.process_time()
    while not run.done:
        run.step()
    result = run.result()
    CPU_SECONDS.append(time.process_time() - c0)
    return result, time.perf_counter() - t0


def bench_students(seeds: list[int]) -> None:
    print("\n## Teacher → three students (per task preset)\n")
    print("| task | model | time (s, wall and CPU) | accuracy (%) | long-range (%) | KL to the truth (nats) | size |")
    print("|---|---|---|---|---|---|---|")
    gains = {}
    for task, (teacher_cfg, distill_cfg) in sequence_presets().items():
        rows = {k: {"acc": [], "long": [], "kl": [], "time": [], "cpu": [], "bytes": 0} for k in ("teacher",) + STUDENTS}
        wins = {"labels_only": 0, "hard_labels": 0}
        for seed in seeds:
            teacher, t_teacher = run_to_end(SeqTeacherRun(teacher_cfg, seed))
            c_teacher = CPU_SECONDS[-1]
            students, t_students = run_to_end(SeqDistillRun(distill_cfg, teacher, seed))
            c_students = CPU_SECONDS[-1]
            for name, metrics, secs, cpu in [("teacher", teacher.metrics, t_teacher, c_teacher)] + \
                    [(n, students.metrics[n], t_students, c_students) for n in STUDENTS]:
                r = rows[name]
                r["cpu"].append(cpu)
                r["acc"].append(metrics["accuracy"])
                r["long"].append(metrics.get("long_range", float("nan")))
                r["kl"].append(metrics["kl_true"])
                r["time"].append(secs)
                r["bytes"] = metrics["bytes"]
            for other in wins:
                wins[other] += students.metrics["distilled"]["accuracy"] > students.metrics[other]["accuracy"]
            print(f"<!-- {task} seed {seed}: teacher {t_teacher:.1f} s wall / {c_teacher:.1f} s CPU, "
                  f"students {t_students:.1f} s wall / {c_students:.1f} s CPU; "
                  f"{students.summary()} -->", flush=True)
        for name, r in rows.items():
            label = "teacher " + teacher_cfg.model.describe() if name == "teacher" else \
                f"{STUDENT_NAMES[name]}, {distill_cfg.student.describe()}"
            long = ms(r["long"]) if task == "reber" else "–"
            time_s = f"{ms(r['time'], 1.0)} wall, {ms(r['cpu'], 1.0)} CPU" + \
                (" (all three)" if name == "distilled" else "") if name in ("teacher", "distilled") else ""
            print(f"| {task} | {label} | {time_s} | {ms(r['acc'])} | {long} | {ms(r['kl'], 1.0, 3)} | "
                  f"{r['bytes'] / 1024:.1f} KB |")
        gains[task] = (ms([d - s for d, s in zip(rows["distilled"]["acc"], rows["labels_only"]["acc"])]), wins)
    print()
    for task, (gain, wins) in gains.items():
        print(f"- {task}: distilled − labels only = {gain} points; distilled wins over labels only on "
              f"{wins['labels_only']} / {len(seeds)} seeds, over the teacher's hard labels on "
              f"{wins['hard_labels']} / {len(seeds)}")


def bench_groups(seeds: list[int]) -> None:
    print("\n## Many campaign models into one (GroupsIntoOneRun defaults)\n")
    acc = {k: [] for k in ("per-campaign models", "distilled", "labels_only")}
    worst, times, sizes = [], [], None
    for seed in seeds:
        res, secs = run_to_end(GroupsIntoOneRun(GroupsIntoOneConfig(), seed))
        times.append(secs)
        sizes = res.sizes
        for k in acc:
            acc[k].append(res.metrics[k]["accuracy"])
        worst.append(min(d - g for d, g in zip(res.accuracy_per_group["distilled"],
                                               res.accuracy_per_group["per-campaign models"])))
        print(f"<!-- seed {seed}: {secs:.1f} s wall / {CPU_SECONDS[-1]:.1f} s CPU; {res.summary()} -->", flush=True)
    print("| models | size | accuracy (%) |\n|---|---|---|")
    print(f"| {GroupsIntoOneConfig().task.n_campaigns} per-campaign models | "
          f"{sizes['per-campaign models'] / 1024:.1f} KB | {ms(acc['per-campaign models'])} |")
    print(f"| one distilled student | {sizes['one student'] / 1024:.1f} KB | {ms(acc['distilled'])} |")
    print(f"| one student, labels only | {sizes['one student'] / 1024:.1f} KB | {ms(acc['labels_only'])} |")
    print(f"\nworst campaign, distilled − its own model: {ms(worst)} points; time {ms(times, 1.0)} s wall, "
          f"{ms(CPU_SECONDS[-len(seeds):], 1.0)} s CPU")


def bench_chunker(seeds: list[int]) -> None:
    print("\n## The 1991 chunker and automatizer (ChunkerRun defaults)\n")
    print("| automatizer learns the chunker's state | chunker's share, first → last epoch (%) | "
          "share on long-lag steps, last (%) | automatizer alone on long-lag steps (%) | time (s) |")
    print("|---|---|---|---|---|")
    for weight in (ChunkerConfig().state_weight, 0.0):
        first, last, long_share, long_acc, times, cpu = [], [], [], [], [], []
        for seed in seeds:
            res, secs = run_to_end(ChunkerRun(dataclasses.replace(ChunkerConfig(), state_weight=weight), seed))
            first.append(res.history[0]["share_all"])
            last.append(res.history[-1]["share_all"])
            long_share.append(res.history[-1]["share_long_lag"])
            long_acc.append(res.history[-1]["automatizer_long_lag"])
            times.append(secs)
            cpu.append(CPU_SECONDS[-1])
        print(f"| {'yes (weight ' + format(weight, 'g') + ')' if weight else 'no (weight 0)'} | "
              f"{ms(first, digits=0)} → {ms(last, digits=0)} | {ms(long_share, digits=0)} | "
              f"{ms(long_acc, digits=0)} | {ms(times, 1.0)} wall, {ms(cpu, 1.0)} CPU |", flush=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--only", choices=("students", "groups", "chunker"), default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    seeds = list(range(args.seeds))
    t0 = time.perf_counter()
    if args.only in (None, "students"):
        bench_students(seeds)
    if args.only in (None, "groups"):
        bench_groups(seeds)
    if args.only in (None, "chunker"):
        bench_chunker(seeds)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
