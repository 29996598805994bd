"""Command line of the lab: `python -m kdcore <command> ...`.

Commands (argparse subcommands; add one with a `_cmd_<name>` function and a
parser in `build_parser`):

- hinton-mnist: the paper's MNIST experiment (kdcore.hinton), with progress per
  epoch and a final table of test errors next to the paper's. It trains on the
  GPU when there is one (`--device auto`), where the default schedule is the
  full one. Exits with code 2 and a readable message (no traceback) when the
  MNIST files are missing or the device asked for is not there.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

EXIT_UNAVAILABLE = 2   # data missing or settings unusable: the message says what to do


def _cmd_hinton_mnist(args: argparse.Namespace) -> int:
    import torch

    from kdcore.data import DatasetUnavailable
    from kdcore.device import DeviceUnavailable, describe_device, resolve_device
    from kdcore.hinton import PRESETS, HintonExperiment, default_schedule, preset_dataset
    from kdcore.teachers import TeacherCache

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
    except DeviceUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    preset = PRESETS[args.schedule or default_schedule(device)]
    try:
        ds = preset_dataset(preset, args.seed, args.data_root)
    except DatasetUnavailable as err:
        print(f"error: MNIST is not available. {err}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    print(f"Hinton MNIST preset, schedule {preset.name!r} ({preset.description}), seed {args.seed}")
    print(f"  device: {describe_device(device)}")
    print(f"  {ds.summary()}")
    print(f"  teacher {preset.teacher.describe()}, input dropout {preset.teacher.input_dropout:g}, "
          f"jitter ±{preset.teacher_train.jitter} px, {preset.teacher_train.epochs} epochs")
    print(f"  student {preset.student.describe()}, {preset.student_train.epochs} epochs, "
          f"T = {preset.temperature:g}, α = {preset.alpha:g}; omitted class {preset.omitted_class}")
    cache = TeacherCache(args.cache) if args.cache else TeacherCache()
    exp = HintonExperiment(preset, ds, args.seed, cache, device)
    t0 = time.perf_counter()

    def on_epoch(stage, log):
        print(f"[{time.perf_counter() - t0:7.1f} s] {stage:9s} epoch {log.epoch}/{log.epochs}: "
              f"train loss {log.train_loss:.4f}, val accuracy {100 * log.val_acc:.2f} % ({log.seconds:.1f} s)",
              flush=True)

    try:
        exp.run(on_epoch)
    except KeyboardInterrupt:
        print("interrupted: reporting the models as they are", file=sys.stderr)
        exp.stopped = True
    res = exp.result()
    if res is None:
        print("stopped before the teacher was trained: nothing to report", file=sys.stderr)
        return 1
    if res.teacher_from_cache:
        print("  (teacher loaded from the cache)")
    print(f"\nTest errors of {res.n_test} images ({res.n_test_class} of class {preset.omitted_class}); "
          f"total time {time.perf_counter() - t0:.0f} s")
    rows = res.rows()
    w = max(len(r["model"]) for r in rows)
    print(f"{'model':{w}s}  {'paper':>6s}  {'ours':>6s}  {'ours %':>7s}")
    for r in rows:
        ours = "-" if r["ours (errors)"] is None else f"{r['ours (errors)']:d}"
        pct = "-" if r["ours (error %)"] is None else f"{r['ours (error %)']:.2f}"
        print(f"{r['model']:{w}s}  {r['paper (errors)']:6d}  {ours:>6s}  {pct:>7s}")
    if res.best_bias_errors >= 0:
        print(f"(b chosen on validation inputs without labels; the best b on a 0.1 grid judged on the test "
              f"set, as the paper chose its 3.5, is {res.best_bias:g}: {res.best_bias_errors} errors)")
    if res.stopped:
        print("note: stopped early; these are partly trained models")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"preset": preset.to_dict(), "seed": args.seed, "device": res.device, "errors": res.errors,
                       "n_test": res.n_test, "best_bias": res.best_bias,
                       "best_bias_errors": res.best_bias_errors, "stopped": res.stopped,
                       "seconds": time.perf_counter() - t0}, f, indent=1)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kdcore", description="Distillation Lab from the command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    from kdcore.hinton import PRESETS
    h = sub.add_parser("hinton-mnist", help="the paper's MNIST experiment (teacher, students at T=20, omitted 3)",
                       description="Hinton et al. (2015) MNIST: teacher 784-1200-1200-10 with dropout and "
                                   "jitter, student 784-800-800-10, T = 20, and the omitted-3 experiment.")
    h.add_argument("--data-root", default=None,
                   help="folder with MNIST/raw/*.gz (default $KDLAB_DATA or ~/.cache/distillation-lab/data)")
    h.add_argument("--schedule", choices=list(PRESETS), default=None,
                   help="cpu: short (minutes on a CPU); full: long (closer to the paper); tiny: seconds, for "
                        "tests (default: full on a GPU, cpu otherwise)")
    h.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where to train: auto (the GPU if torch sees one, else the CPU), cpu or cuda")
    h.add_argument("--seed", type=int, default=0, help="data split, initializations and batch order")
    h.add_argument("--cache", default=None, help="teacher cache folder (default $KDLAB_CACHE/teachers)")
    h.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    h.add_argument("--json", default=None, help="also write the errors to this JSON file")
    h.set_defaults(func=_cmd_hinton_mnist)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
