"""Ensembles and specialists on digits, over seeds (the table in docs/results.md, issue 6).

    python -m bench.paper_ensembles [--seeds 5] [--members 3]

Per seed s (data split, initializations and batch order): members = the default
digits teacher with seeds s, s+1, ...; the ensemble combines them (arithmetic and
geometric means); the default student (MLP 16, T = 4, α = 0.9, 10 % labels) is
distilled from the arithmetic ensemble, from member 1 alone and trained on the
labels alone, all three from the same initialization; specialists (defaults of
`SpecialistConfig`, seeded by s) are added to member 1 as the generalist.
Prints per-seed rows and the mean ± std (markdown). Teachers are cached
($KDLAB_CACHE), so a rerun only retrains the students and specialists.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from kdcore.data import load_dataset
from kdcore.ensemble import build_ensemble, distill_from_ensemble, member_specs
from kdcore.presets import default_kd, default_student, default_teacher_spec
from kdcore.specialists import SpecialistConfig, train_specialists
from kdcore.teachers import TeacherCache

COLUMNS = [
    ("member_mean", "members (mean)"), ("member_best", "best member"), ("ens_arith", "ensemble, arithmetic"),
    ("ens_geo", "ensemble, geometric"), ("student_ens", "student from ensemble"),
    ("student_one", "student from member 1"), ("student_scratch", "student, labels only"),
    ("generalist", "generalist (member 1)"), ("spec_kl", "+ specialists (paper's KL)"),
    ("spec_approx", "+ specialists (approx.)"), ("covered_gen", "covered classes: generalist"),
    ("covered_kl", "covered classes: + specialists"),
]


def run_seed(seed: int, n_members: int, cache: TeacherCache) -> dict:
    ds = load_dataset("digits", seed)
    specs = member_specs(default_teacher_spec("digits", seed, seed), n_members)
    ens = build_ensemble(ds, specs, "arithmetic", cache)
    accs = [m.metrics["accuracy"] for m in ens.members]
    student, train = default_student("digits")
    res = distill_from_ensemble(ds, ens, student, train, default_kd("digits"), seed)
    g = ens.members[0]
    spec_res = train_specialists(ds, g.model, g.logits, g.spec.model, SpecialistConfig(seed=seed))
    kl, approx = spec_res.report("kl"), spec_res.report("approx")
    return {
        "member_mean": sum(accs) / len(accs), "member_best": max(accs), "ens_arith": ens.metrics["accuracy"],
        "ens_geo": ens.combined_accuracy("geometric", ds.y_test),
        "student_ens": res.result.distilled_metrics["accuracy"], "student_one": res.single_metrics["accuracy"],
        "student_scratch": res.result.scratch_metrics["accuracy"],
        "generalist": kl["generalist"], "spec_kl": kl["combined"], "spec_approx": approx["combined"],
        "covered_gen": kl["generalist_covered"], "covered_kl": kl["combined_covered"],
        "fixed_broken": f"{kl['fixed']}/{kl['broken']}",
        "clusters": " ".join("{" + ",".join(map(str, s.cluster)) + "}" for s in spec_res.specialists),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1")
    ap.add_argument("--members", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cache = TeacherCache()
    rows = []
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        t = time.perf_counter()
        rows.append(run_seed(seed, args.members, cache))
        r = rows[-1]
        print(f"seed {seed} ({time.perf_counter() - t:.0f} s): " + ", ".join(
            f"{label} {100 * r[key]:.2f}" for key, label in COLUMNS) + f"; KL fixed/broken {r['fixed_broken']}; "
            f"specialist clusters {r['clusters']}", flush=True)
    print(f"\ndigits, {args.seeds} seeds, {args.members} members, {time.perf_counter() - t0:.0f} s in all "
          f"({cache.trained} teachers trained, the rest from the cache)\n")
    print("| test accuracy (%) | mean ± std |")
    print("|---|---|")
    for key, label in COLUMNS:
        vals = [100 * r[key] for r in rows]
        sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
        print(f"| {label} | {statistics.mean(vals):.2f} ± {sd:.2f} |")
    print("\nspecialists' test predictions fixed/broken per seed (paper's KL): "
          + ", ".join(r["fixed_broken"] for r in rows))


if __name__ == "__main__":
    main()
