"""How small can the digits model get, and what does it cost? Size curve, PTQ vs QAT, pipeline, latency.

Run from the repository root: `python -m bench.tradeoffs [--seed 0] [--threads 1]`. Prints tables
(markdown) for docs/performance.md, section "quantization (issue 5)". Everything uses the
app's defaults (kdcore.presets); the teacher comes from the disk cache ($KDLAB_CACHE).
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date

import torch


from kdcore import bitwidths, latency, pipeline, sizecurve
from kdcore.data import load_dataset
from kdcore.distill import DistillRun
from kdcore.models import format_bytes
from kdcore.presets import default_kd, default_student, default_teacher_spec
from kdcore.quantize import QuantConfig, model_size
from kdcore.teachers import TeacherCache
from kdcore.train import TrainConfig


def table(rows: list[dict]) -> str:
    cols = list(rows[0])
    fmt = lambda v: f"{v:.2f}" if isinstance(v, float) else str(v)
    return "\n".join(["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
                     + ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--qat-epochs", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# bench.tradeoffs · {date.today()} · {platform.processor() or platform.machine()} · "
          f"torch {torch.__version__} · {args.threads} thread(s) · seed {args.seed}\n")

    ds = load_dataset("digits", args.seed)
    teacher = TeacherCache().get_or_train(default_teacher_spec("digits", args.seed, args.seed), ds)
    student_cfg, student_train = default_student("digits")
    kd = default_kd("digits")
    tm = teacher.metrics

    t0 = time.perf_counter()
    sweep = sizecurve.SizeCurve(ds, teacher.logits, tm, sizecurve.SIZE_WIDTHS, student_train, kd, seed=args.seed)
    sweep.run()
    print(f"## Size curve ({len(sweep.widths)} widths × 2 students, {student_train.epochs} epochs, "
          f"{100 * kd.labelled_fraction:g} % labels; {time.perf_counter() - t0:.1f} s)\n")
    print(table([{k: v for k, v in p.row().items() if k not in ("size (bytes)",)} for p in sweep.points]))
    print("\n" + sweep.summary() + "\n")

    run = DistillRun(ds, teacher.logits, tm, student_cfg, student_train, kd, args.seed)
    while not run.done:
        run.step()
    student = run.result().distilled
    qat_train = TrainConfig(**{**student_train.to_dict(), "epochs": args.qat_epochs})
    for name, model in (("teacher " + teacher.spec.model.describe(), teacher.model),
                        ("distilled " + student_cfg.describe(), student)):
        t0 = time.perf_counter()
        rows = bitwidths.ptq_rows(model, ds) + bitwidths.qat_rows(model, ds, teacher.logits["train"], qat_train, kd,
                                                    seed=args.seed)
        print(f"## PTQ vs QAT: {name} (per channel, min.-error step; QAT {args.qat_epochs} epochs; "
              f"{time.perf_counter() - t0:.1f} s)\n")
        by = {(r.method, r.bits): r for r in rows}
        print(table([{"bits": b, "size": format_bytes(by[("PTQ", b)].bytes),
                      "× smaller than teacher": tm["bytes"] / by[("PTQ", b)].bytes,
                      "PTQ acc (%)": 100 * by[("PTQ", b)].accuracy, "QAT acc (%)": 100 * by[("QAT", b)].accuracy}
                     for b in bitwidths.PANEL_BITS]))
        print()

    rows = []
    for sparsity, bits in ((0.5, 8), (0.8, 4), (0.9, 2), (0.8, 1)):
        stages = pipeline.prune_then_quantize(student, ds, teacher.logits, sparsity, QuantConfig(bits), qat_train,
                                        kd, seed=args.seed)
        for s in stages:
            rows.append({"stage": s.stage, "sparsity (%)": 100 * s.sparsity, "bits": s.bits,
                         "size": format_bytes(s.metrics["bytes"]), "encoding": s.metrics["encoding"],
                         "× smaller than teacher": tm["bytes"] / s.metrics["bytes"],
                         "acc (%)": 100 * s.metrics["accuracy"]})
    print(f"## Pipeline: distilled {student_cfg.describe()} ({100 * run.result().distilled_metrics['accuracy']:.1f} %, "
          f"{format_bytes(model_size(student).bytes)}) → prune (fine-tune {args.qat_epochs} epochs) → PTQ\n")
    print(table(rows) + "\n")

    lat = []
    for name, model in (("teacher", teacher.model), ("distilled MLP 16", student),
                        ("binary PTQ of MLP 16", bitwidths.ptq_rows(student, ds, (1,))[0].model)):
        m = latency.measure_latencies(model, ds.input_shape)
        lat.append({"model": name, "batch 1 (ms)": m[1].median_ms, "batch 256 (ms)": m[256].median_ms,
                    "µs / example at 256": m[256].per_example_us})
    print("## CPU latency (median, inference mode)\n")
    print(table(lat))
    print(f"\nTeacher: {100 * tm['accuracy']:.1f} %, {format_bytes(tm['bytes'])}.")


if __name__ == "__main__":
    main()
