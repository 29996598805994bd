"""Benchmark: a 5 × 5 T × α grid of digits students, batched vs one at a time, and vs torchdistill.

Run from the repository root:  python -m bench.sweep  [--threads 1] [--loop-students 25] [--td-epochs 30]

All timings are taken in ONE run and reported as ratios (the machine may be shared):

1. one student: `Trainer(loss="kd")` at the digits defaults (MLP 16, 30 epochs, batch 64, lr 1e-2,
   AdamW, cosine; T=4, α=0.9, 10 % labelled), i.e. the Distill page's distilled student;
2. the 5 × 5 grid (T in 1..16, α in 0.1..0.9), batched (`kdcore.sweep.InProcessBackend`);
3. the same 25 students one by one (`LoopBackend`, i.e. 25 Trainer runs); with
   --loop-students N < 25 only N of them are timed and the total is extrapolated (said so);
4. torchdistill (pip install torchdistill --no-deps): its `DistillationBox` with the vanilla
   `KDLoss` (same T, α, AdamW, per-step cosine LR, batch 64) on the same transfer set, student
   initialization and teacher; time per epoch. torchdistill runs the teacher forward on every
   batch (its standard loop); kdcore reads the teacher's logits computed once; the teacher's
   forward cost per epoch is printed too, so the difference can be told apart.

Targets (issue 7): grid ≤ 4 × one student; grid ≥ 8 × faster than one by one.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from datetime import date

import torch

from kdcore.data import load_dataset
from kdcore.distill import transfer_labels
from kdcore.models import build_model
from kdcore.presets import default_kd, default_student, default_teacher_spec
from kdcore.sweep import InProcessBackend, LoopBackend, SweepConfig, run_sweep
from kdcore.teachers import TeacherCache
from kdcore.train import Trainer, seeded_model

GRID_T = (1.0, 2.0, 4.0, 8.0, 16.0)
GRID_ALPHA = (0.1, 0.3, 0.5, 0.7, 0.9)


def time_one_student(ds, teacher, seed=0) -> tuple[float, float]:
    """(seconds, test accuracy) of one default distillation's student, trained with Trainer."""
    student, train = default_student("digits")
    kd = default_kd("digits")
    t0 = time.perf_counter()
    model = seeded_model(lambda: build_model(student, ds.input_shape, ds.n_classes), seed)
    trainer = Trainer(model, ds.X_train, transfer_labels(ds, kd.labelled_fraction, seed), train, seed,
                      teacher_logits=teacher.logits["train"], temperature=kd.temperature, alpha=kd.alpha,
                      loss="kd", X_val=ds.X_val, y_val=ds.y_val)
    for _ in range(train.epochs):
        trainer.run_epoch()
    seconds = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        acc = float((model(ds.X_test).argmax(1) == ds.y_test).float().mean())
    return seconds, acc


def torchdistill_epochs(ds, teacher, epochs: int, seed: int = 0):
    """Seconds per epoch of torchdistill's vanilla KD on the same setting, and its test accuracy.

    Returns (seconds_per_epoch, accuracy, None) or (None, None, reason) when it cannot run.
    """
    try:
        from torch.utils.data import RandomSampler, TensorDataset
        from torchdistill.core.distillation import get_distillation_box
    except Exception as err:   # not installed, or a dependency missing
        return None, None, f"torchdistill unavailable ({type(err).__name__}: {err}); pip install torchdistill --no-deps"
    student_cfg, train = default_student("digits")
    kd = default_kd("digits")
    y = transfer_labels(ds, kd.labelled_fraction, seed)
    student = seeded_model(lambda: build_model(student_cfg, ds.input_shape, ds.n_classes), seed)
    teacher_model = teacher.clone_model().eval()
    steps = math.ceil(len(ds.X_train) / train.batch_size) * epochs
    config = {
        "num_epochs": epochs,
        "train_data_loader": {"dataset_id": "train", "sampler": {"class_or_func": RandomSampler, "kwargs": {}},
                              "kwargs": {"batch_size": train.batch_size, "num_workers": 0}},
        "teacher": {"requires_grad": False, "forward_proc": "forward_batch_only"},
        "student": {"forward_proc": "forward_batch_only"},
        "optimizer": {"key": "AdamW", "kwargs": {"lr": train.lr, "weight_decay": train.weight_decay}},
        "scheduler": {"key": "CosineAnnealingLR", "kwargs": {"T_max": steps}, "scheduling_step": 1},
        "criterion": {"key": "WeightedSumLoss", "kwargs": {"sub_terms": {"kd": {
            "criterion": {"key": "KDLoss", "kwargs": {
                "student_module_path": ".", "student_module_io": "output",
                "teacher_module_path": ".", "teacher_module_io": "output",
                # torchdistill's alpha weights the CE: ours 0.9 on the soft term is its alpha 0.1
                "temperature": kd.temperature, "alpha": 1 - kd.alpha, "reduction": "batchmean",
                "ignore_index": -1}},   # hidden labels, as kd_loss: CE averaged over labelled examples
            "weight": 1.0}}}},
    }
    try:
        import logging
        logging.getLogger("torchdistill").setLevel(logging.WARNING)
        torch.manual_seed(seed)
        box = get_distillation_box(teacher_model, student, {"train": TensorDataset(ds.X_train, y)}, config,
                                   torch.device("cpu"), None, False, 1)
        times = []
        for epoch in range(epochs):
            t0 = time.perf_counter()
            box.pre_epoch_process(epoch=epoch)
            for sample_batch, targets, supp_dict in box.train_data_loader:
                loss = box.forward_process(sample_batch, targets, supp_dict)
                box.post_forward_process(loss=loss)
            box.post_epoch_process()
            times.append(time.perf_counter() - t0)
        box.clean_modules()
    except Exception as err:
        return None, None, f"torchdistill failed to run ({type(err).__name__}: {err})"
    student.eval()
    with torch.no_grad():
        acc = float((student(ds.X_test).argmax(1) == ds.y_test).float().mean())
    return sum(times) / len(times), acc, None


def teacher_forward_per_epoch(ds, teacher, batch_size: int) -> float:
    """What torchdistill's per-batch teacher forward costs over one epoch (kdcore pays it once)."""
    model = teacher.clone_model().eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(ds.X_train), batch_size):
            model(ds.X_train[i:i + batch_size])
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: the fairest for tiny models)")
    ap.add_argument("--loop-students", type=int, default=25,
                    help="how many of the 25 students to time one by one (fewer: extrapolated)")
    ap.add_argument("--td-epochs", type=int, default=None,
                    help="torchdistill epochs to time (default: all of the student's epochs)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    ds = load_dataset("digits", 0)
    args.td_epochs = args.td_epochs or default_student("digits")[1].epochs
    teacher = TeacherCache().get_or_train(default_teacher_spec("digits", 0), ds)
    _, train = default_student("digits")
    kd = default_kd("digits")
    grid = SweepConfig(temperatures=GRID_T, alphas=GRID_ALPHA, widths=(16,), seeds_per_cell=1,
                       labelled_fraction=kd.labelled_fraction, train=train)
    n = grid.n_students

    # warm-up (allocator, first-call costs), not timed
    run_sweep(ds, teacher.logits, SweepConfig(temperatures=(4.0,), alphas=(0.9,), train=train.__class__(
        **{**train.to_dict(), "epochs": 1})))

    one_s, one_acc = time_one_student(ds, teacher)
    t0 = time.perf_counter()
    batched = run_sweep(ds, teacher.logits, grid, InProcessBackend(), keep_weights=False)
    grid_s = time.perf_counter() - t0

    k = max(1, min(args.loop_students, n))
    loop_cfg = grid if k == n else SweepConfig(temperatures=GRID_T, alphas=GRID_ALPHA, train=train,
                                                labelled_fraction=kd.labelled_fraction)
    t0 = time.perf_counter()
    if k == n:
        loop = run_sweep(ds, teacher.logits, loop_cfg, LoopBackend(), keep_weights=False)
        loop_s = time.perf_counter() - t0
        same = max(abs(a.metrics["accuracy"] - b.metrics["accuracy"])
                   for a, b in zip(batched.students, loop.students))
        loop_note = "measured"
    else:
        from kdcore.sweep import LoopKD
        group = LoopKD(ds, teacher.logits, grid.model_config(16), train, grid.students()[:k],
                       kd.labelled_fraction)
        while not group.done:
            group.step()
        loop_s = (time.perf_counter() - t0) * n / k
        same = float("nan")
        loop_note = f"extrapolated from {k} students"

    td_epoch, td_acc, td_reason = torchdistill_epochs(ds, teacher, args.td_epochs)
    tf_epoch = teacher_forward_per_epoch(ds, teacher, train.batch_size)

    epochs = train.epochs
    one_epoch = one_s / epochs
    grid_student_epoch = grid_s / (n * epochs)
    print(f"# bench.sweep — {date.today()} · {platform.processor() or platform.machine()} · "
          f"torch {torch.__version__} · {args.threads} thread(s) · python {sys.version.split()[0]}")
    print(f"digits, student MLP 16, {epochs} epochs, batch {train.batch_size}, lr {train.lr:g}, AdamW cosine, "
          f"{100 * kd.labelled_fraction:g} % labels; grid {len(GRID_T)} T × {len(GRID_ALPHA)} α = {n} students\n")
    print(f"{'run':<44}{'seconds':>10}{'s / student-epoch':>20}")
    print(f"{'one student (Trainer, the Distill page)':<44}{one_s:>10.2f}{one_epoch:>20.4f}")
    print(f"{'5×5 grid batched (kdcore.sweep)':<44}{grid_s:>10.2f}{grid_student_epoch:>20.4f}")
    print(f"{'5×5 grid one by one (' + loop_note + ')':<44}{loop_s:>10.2f}{loop_s / (n * epochs):>20.4f}")
    if td_epoch is not None:
        print(f"{'torchdistill vanilla KD, 1 student':<44}{td_epoch * epochs:>10.2f}{td_epoch:>20.4f}"
              f"   ({args.td_epochs} epochs timed, ×{epochs} for the total)")
        print(f"{'  of which teacher forward per epoch':<44}{'':>10}{tf_epoch:>20.4f}")
    print()
    print(f"grid / one student          = {grid_s / one_s:6.2f} ×   (target ≤ 4)")
    print(f"one by one / grid           = {loop_s / grid_s:6.2f} ×   (target ≥ 8)")
    if td_epoch is not None:
        print(f"torchdistill / kdcore Trainer, per epoch          = {td_epoch / one_epoch:6.2f} ×")
        print(f"torchdistill / kdcore batched, per student-epoch  = {td_epoch / grid_student_epoch:6.2f} ×")
        print(f"torchdistill without its teacher forward / Trainer = "
              f"{max(td_epoch - tf_epoch, 1e-9) / one_epoch:6.2f} ×")
        print(f"test accuracy after {args.td_epochs} epochs (torchdistill) {100 * td_acc:.1f} %; "
              f"kdcore after {epochs}: {100 * one_acc:.1f} %")
    else:
        print(f"torchdistill comparison skipped: {td_reason}")
    if same == same:
        print(f"batched vs one by one: largest test-accuracy difference over the 25 students = {100 * same:.3f} points")
    best = batched.best_cell()
    print(f"best cell (validation): T={best['T']:g}, α={best['alpha']:g}: test {best['test_acc_mean']:.1f} %")
    ok = grid_s / one_s <= 4 and loop_s / grid_s >= 8
    print("targets met" if ok else "TARGETS NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
