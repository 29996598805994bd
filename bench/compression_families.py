"""The other compression and loss families on digits: Weightless, binary MLP, low rank, DKD / hints / KD.

Run from the repository root: `python -m bench.compression_families [--seeds 3] [--threads 2]
[--json out.json]`. Prints markdown tables for docs/results.md ("Other compression and loss
families"). Everything starts from the app's digits defaults (kdcore.presets); the teacher comes
from the disk cache ($KDLAB_CACHE; trained on the first run).

1. Weightless (Reagen et al. 2017) on the digits teacher (64-512-512-10, 300 k weights): 90 %
   global magnitude pruning + 10 epochs of KD retraining, 16 clusters per layer, t ∈ {6, 8, 10, 12},
   k = 3; the false-positive rate over every pruned position against V / 2^t; accuracy after each
   layer's encoding and after the later layers' retraining; size against float32 and against the
   same pruned model quantized to 8 and 4 bits (kdcore.quantize.model_size).
2. A fully binary MLP 256-256 (Hubara et al. 2016) trained on the labels and by KD; the XNOR-popcount
   forward (numpy) against torch's float forwards.
3. Low-rank factorization of the teacher at several ranks, before and after 5 epochs of KD fine-tuning.
4. Labels only / KD / DKD / KD + hints / hints then KD / KD from a class-distance teacher, over seeds,
   on the default student (16 hidden units, 10 % labels).
5. All of it as accuracy against size, with the Pareto frontier.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from datetime import date

import torch

from kdcore import binary, lowrank
from kdcore.data import load_dataset
from kdcore.loss_families import ClassDistanceConfig, LossFamilyRun
from kdcore.metrics import evaluate
from kdcore.models import format_bytes
from kdcore.presets import default_kd, default_student, default_teacher_spec
from kdcore.teachers import TeacherCache
from kdcore.tradeoffs import pareto_front
from kdcore.train import TrainConfig
from kdcore.weightless import WeightlessConfig, WeightlessRun


def table(rows: list[dict]) -> str:
    cols = list(rows[0])
    fmt = lambda v: (f"{v:.4f}" if isinstance(v, float) and abs(v) < 0.1 and v != 0 else
                     f"{v:.2f}" if isinstance(v, float) else str(v))
    return "\n".join(["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
                     + ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--t", type=int, nargs="+", default=[6, 8, 10, 12])
    ap.add_argument("--json", default="")
    ap.add_argument("--dataset", default="digits", choices=["digits", "mnist"],
                    help="mnist: Weightless and the binary MLP only, on short schedules (needs --data-root)")
    ap.add_argument("--data-root", default=None, help="folder with MNIST/raw/*.gz (default $KDLAB_DATA)")
    ap.add_argument("--only", nargs="+", default=["weightless", "binary", "lowrank", "losses"],
                    help="sections to run (the frontier needs all four)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    print(f"# bench.compression_families · {date.today()} · {platform.machine()} · torch {torch.__version__} · "
          f"{args.threads} thread(s)\n")
    out: dict = {}
    if args.dataset == "mnist":
        mnist_main(args, out)
        return
    ds = load_dataset("digits", 0)
    spec = default_teacher_spec("digits")
    teacher = TeacherCache().get_or_train(spec, ds)
    tm = teacher.metrics
    frontier: list[dict] = [{"model": "teacher 512-512, float32", "bytes": tm["bytes"], "acc": tm["accuracy"]}]

    if "weightless" in args.only:
        weightless_section(args, ds, teacher, tm, frontier, out)
    if "binary" in args.only:
        binary_section(args, ds, teacher, frontier, out)
    if "lowrank" in args.only:
        lowrank_section(ds, teacher, tm, frontier, out)
    if "losses" in args.only:
        losses_section(args, ds, spec, teacher, tm, frontier, out)
    if len(args.only) == 4:
        frontier_section(frontier, out)
    print(f"Total {time.perf_counter() - t_start:.0f} s.")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1, default=str)


def weightless_section(args, ds, teacher, tm, frontier, out) -> None:
    t0 = time.perf_counter()
    wl_rows, fp_rows, stage_rows = [], [], []
    pq_done = False
    for t in args.t:
        cfg = WeightlessConfig(sparsity=0.9, n_clusters=16, t=t, k=3, prune_epochs=10, retrain_epochs=5)
        res = WeightlessRun(cfg, ds, teacher.model, teacher.logits["train"], seed=0).run()
        fp = res.fp_summary()
        fp_rows.append({"t": t, "V": cfg.n_clusters, "pruned positions": fp["pruned positions"],
                        "spurious weights": fp["spurious"], "FP measured": fp["measured"],
                        "FP theory V/2^t": fp["theory"], "measured / theory": fp["measured"] / fp["theory"]})
        enc_accs = [s.accuracy for s in res.stages if s.stage.startswith("encoded")]
        stage_rows.append({"t": t, "pruned + retrained (%)": 100 * res.stages[1].accuracy,
                           "after each encoding (%)": " / ".join(f"{100 * a:.1f}" for a in enc_accs),
                           "after each retraining (%)": " / ".join(
                               f"{100 * s.accuracy:.1f}" for s in res.stages if s.stage.startswith("later")),
                           "final (%)": 100 * res.metrics["accuracy"]})
        wl_rows.append({"model": f"Weightless t = {t}", "bytes": res.bytes, "bits": res.bits,
                        "× vs float32": res.ratio_vs_float32,
                        "× vs pruned + 8-bit": res.prune_quantize[8]["bytes"] / res.bytes,
                        "× vs pruned + 4-bit": res.prune_quantize[4]["bytes"] / res.bytes,
                        "test acc (%)": 100 * res.metrics["accuracy"]})
        frontier.append({"model": f"Weightless t = {t} (teacher, 90 % pruned)", "bytes": res.bytes,
                         "acc": res.metrics["accuracy"]})
        if not pq_done:
            pq_done = True
            for b, pq in sorted(res.prune_quantize.items(), reverse=True):
                wl_rows.insert(0, {"model": f"pruned 90 % + {b}-bit PTQ ({pq['encoding']})", "bytes": pq["bytes"],
                                   "bits": 8 * pq["bytes"], "× vs float32": tm["bytes"] / pq["bytes"],
                                   "× vs pruned + 8-bit": res.prune_quantize[8]["bytes"] / pq["bytes"],
                                   "× vs pruned + 4-bit": res.prune_quantize[4]["bytes"] / pq["bytes"],
                                   "test acc (%)": 100 * pq["accuracy"]})
                frontier.append({"model": f"pruned 90 % + {b}-bit PTQ (teacher)", "bytes": pq["bytes"],
                                 "acc": pq["accuracy"]})
            layer_rows = [l.row() for l in res.layers]
    wl_seconds = time.perf_counter() - t0
    print(f"## 1. Weightless on the digits teacher ({wl_seconds:.0f} s)\n")
    print("False positives over every pruned position of the three layers (V = 16 valid indices):\n")
    print(table(fp_rows) + "\n")
    print(table(stage_rows) + "\n")
    print(table(wl_rows) + "\n")
    print(f"Layers at t = {args.t[0]}:\n")
    print(table([{k: v for k, v in r.items() if k in ("layer", "shape", "stored weights", "filter cells",
                  "filter bits", "centroid bits", "header bits", "bias bits", "total bits", "float32 bits",
                  "FP measured", "FP theory V/2^t", "peeling tries")} for r in layer_rows]) + "\n")
    out["weightless"] = {"fp": fp_rows, "stages": stage_rows, "sizes": wl_rows, "layers": layer_rows}



def binary_section(args, ds, teacher, frontier, out) -> None:
    t0 = time.perf_counter()
    bin_train = TrainConfig(epochs=20, batch_size=64, lr=3e-3)
    bin_rows = []
    for seed in range(min(args.seeds, 2)):
        for how, tl in (("labels", None), ("KD (T = 4, α = 0.9)", teacher.logits["train"])):
            m, _ = binary.train_binary_mlp(ds, (256, 256), bin_train, seed, teacher_logits=tl)
            bin_rows.append({"training": how, "seed": seed, "test acc (%)": 100 * evaluate(m, ds.X_test, ds.y_test)["accuracy"]})
            model_bin = m
    summary_bin = []
    for how in dict.fromkeys(r["training"] for r in bin_rows):
        accs = [r["test acc (%)"] for r in bin_rows if r["training"] == how]
        summary_bin.append({"binary MLP 256-256, 20 epochs": how, "test acc (%)": statistics.mean(accs),
                            "per seed": " / ".join(f"{a:.1f}" for a in accs),
                            "test error (%)": 100 - statistics.mean(accs)})
    bin_bits = binary.binary_model_bits(model_bin)
    lat = binary.latency_comparison(model_bin, ds.X_test)
    print(f"## 2. Binary MLP ({time.perf_counter() - t0:.0f} s)\n")
    print(table(summary_bin) + "\n")
    print(f"Size: {bin_bits} bits = {format_bytes(bin_bits / 8)} (1 bit per weight + thresholds); "
          f"the same MLP in float32: {format_bytes(4 * (64 * 256 + 256 * 256 + 256 * 10 + 256 + 256 + 10))}.\n")
    print(table([l.row() for l in lat]) + "\n")
    out["binary"] = {"rows": bin_rows, "summary": summary_bin, "bits": bin_bits, "latency": [l.row() for l in lat]}
    for how in dict.fromkeys(r["training"] for r in bin_rows):
        frontier.append({"model": f"binary MLP 256-256 ({how}, mean of seeds)", "bytes": math.ceil(bin_bits / 8),
                         "acc": statistics.mean(r["test acc (%)"] for r in bin_rows if r["training"] == how) / 100})



def lowrank_section(ds, teacher, tm, frontier, out) -> None:
    t0 = time.perf_counter()
    ft = TrainConfig(epochs=5, batch_size=64, lr=1e-3)
    configs = [lowrank.LowRankConfig(rank=r, energy=None) for r in (4, 8, 16, 32, 64)] + \
              [lowrank.LowRankConfig(energy=0.9)]
    points = lowrank.low_rank_sweep(teacher.model, ds, configs, ft, seed=0, teacher_logits=teacher.logits["train"])
    print(f"## 3. Low-rank teacher ({time.perf_counter() - t0:.0f} s)\n")
    lr_rows = [{**p.row(), "× vs float32 teacher": tm["bytes"] / p.bytes} for p in points]
    print(table([{k: v for k, v in r.items() if k != "seconds"} for r in lr_rows]) + "\n")
    out["lowrank"] = lr_rows
    for p in points:
        frontier.append({"model": f"low rank {p.config.describe()} (teacher, fine-tuned)", "bytes": p.bytes,
                         "acc": p.accuracy_after})



def losses_section(args, ds, spec, teacher, tm, frontier, out) -> None:
    t0 = time.perf_counter()
    student, train = default_student("digits")
    kd = default_kd("digits")
    run = LossFamilyRun(ds, teacher.model, teacher.logits, tm, student, train, kd, seeds=range(args.seeds),
                        methods=("labels", "kd", "dkd", "hints", "hints_first", "cd_teacher"), teacher_spec=spec,
                        class_distance=ClassDistanceConfig())
    fam = run.run()
    print(f"## 4. Loss families ({time.perf_counter() - t0:.0f} s; student {student.describe()}, "
          f"{train.epochs} epochs, {100 * kd.labelled_fraction:g} % labels, T = {kd.temperature:g}, "
          f"α = {kd.alpha:g}, DKD α = 1, β = 8, hint weight 1, class-distance λ = 1, m = 1)\n")
    print(table([{k: v for k, v in r.items() if k != "key"} for r in fam.table()]) + "\n")
    print(f"Class-distance teacher: test accuracy {100 * fam.cd_teacher_metrics['accuracy']:.2f} % "
          f"(plain teacher {100 * tm['accuracy']:.2f} %); clustering of penultimate test features "
          f"(mean distance to the nearest other centre / to the own centre): "
          f"{fam.cluster_quality.get('cd_teacher', float('nan')):.2f} vs {fam.cluster_quality['teacher']:.2f}.\n")
    out["loss_families"] = {"table": fam.table(), "cd_teacher_acc": fam.cd_teacher_metrics["accuracy"],
                            "cluster_quality": fam.cluster_quality}
    kd_row = next(r for r in fam.table() if r["key"] == "kd")
    frontier.append({"model": f"distilled student {student.describe()} (KD, mean of seeds)",
                     "bytes": fam.rows[0].metrics["bytes"], "acc": kd_row["test accuracy mean (%)"] / 100})



def frontier_section(frontier, out) -> None:
    front = set(pareto_front([f["bytes"] for f in frontier], [f["acc"] for f in frontier]))
    print("## 5. Accuracy against size (Pareto frontier marked)\n")
    print(table([{"model": f["model"], "size": format_bytes(f["bytes"]), "bytes": f["bytes"],
                  "test acc (%)": 100 * f["acc"], "frontier": "yes" if i in front else ""}
                 for i, f in sorted(enumerate(frontier), key=lambda x: x[1]["bytes"])]) + "\n")
    out["frontier"] = [{**f, "on_frontier": i in front} for i, f in enumerate(frontier)]


def mnist_main(args, out: dict) -> None:
    """MNIST, short schedules: the default MNIST teacher (800-800, 5 epochs), Weightless at 95 %
    sparsity (2 epochs of retraining after pruning, 1 after each layer), binary MLPs 3 epochs."""
    t_start = time.perf_counter()
    ds = load_dataset("mnist", 0, data_root=args.data_root)
    spec = default_teacher_spec("mnist")
    t0 = time.perf_counter()
    teacher = TeacherCache().get_or_train(spec, ds)
    tm = teacher.metrics
    print(f"MNIST teacher {spec.model.describe()}: {100 * tm['accuracy']:.2f} % ({time.perf_counter() - t0:.0f} s, "
          f"cached after the first run)\n")
    t0 = time.perf_counter()
    rows, fp_rows = [], []
    for t in args.t:
        cfg = WeightlessConfig(sparsity=0.95, n_clusters=16, t=t, k=3, prune_epochs=2, retrain_epochs=1,
                               batch_size=128, lr=1e-3)
        res = WeightlessRun(cfg, ds, teacher.model, teacher.logits["train"], seed=0).run()
        fp = res.fp_summary()
        fp_rows.append({"t": t, "pruned positions": fp["pruned positions"], "FP measured": fp["measured"],
                        "FP theory V/2^t": fp["theory"]})
        if not rows:
            for b, pq in sorted(res.prune_quantize.items(), reverse=True):
                rows.append({"model": f"pruned 95 % + {b}-bit PTQ ({pq['encoding']})", "bytes": pq["bytes"],
                             "× vs float32": tm["bytes"] / pq["bytes"], "test acc (%)": 100 * pq["accuracy"]})
            rows.append({"model": "pruned 95 %, retrained (float32 values)", "bytes": "",
                         "× vs float32": "", "test acc (%)": 100 * res.stages[1].accuracy})
        rows.append({"model": f"Weightless t = {t}", "bytes": res.bytes, "× vs float32": res.ratio_vs_float32,
                     "test acc (%)": 100 * res.metrics["accuracy"]})
    print(f"## MNIST Weightless ({time.perf_counter() - t0:.0f} s)\n")
    print(table(fp_rows) + "\n")
    print(table(rows) + "\n")
    out["mnist_weightless"] = {"fp": fp_rows, "sizes": rows}
    t0 = time.perf_counter()
    bin_rows = []
    for how, tl in (("labels", None), ("KD (T = 4, α = 0.9)", teacher.logits["train"])):
        m, _ = binary.train_binary_mlp(ds, (512, 512), TrainConfig(epochs=3, batch_size=128, lr=3e-3), 0,
                                       teacher_logits=tl)
        bin_rows.append({"binary MLP 512-512, 3 epochs": how,
                         "test error (%)": 100 - 100 * evaluate(m, ds.X_test, ds.y_test)["accuracy"]})
    lat = binary.latency_comparison(m, ds.X_test)
    print(f"## MNIST binary MLP ({time.perf_counter() - t0:.0f} s; size {format_bytes(binary.binary_model_bits(m) / 8)})\n")
    print(table(bin_rows) + "\n")
    print(table([l.row() for l in lat]) + "\n")
    out["mnist_binary"] = {"rows": bin_rows, "latency": [l.row() for l in lat]}
    print(f"Total {time.perf_counter() - t_start:.0f} s.")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
