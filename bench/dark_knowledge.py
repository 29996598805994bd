"""Dark knowledge, isolated: where do soft targets at T > 1 beat BOTH controls? (docs/results.md)

For each setting and seed (the seed picks the data split, the teacher's and the students'
initialization and batch order, as the app's sidebar seed does) it trains the default teacher
(through the teacher cache), then one `DistillRun(control=True)` per temperature: the distilled
student, its labels-only twin and the "teacher's hard labels" control (cross-entropy on the
teacher's argmax over the same transfer set), all from one initialization and batch order.
The labels-only and hard-label students do not depend on T (checked: they are identical for
every T of a seed), so each seed gives one of each.

It prints, per setting, mean ± std over seeds of every student's test accuracy, the gains of
the best T > 1 over both controls with wins per seed, and the seconds one distillation (three
students) took. The machine is shared: timings are approximate.

    python -m bench.dark_knowledge                 # the "Dark knowledge" preset, 5 seeds
    python -m bench.dark_knowledge --search        # every candidate setting (several minutes)
    python -m bench.dark_knowledge --threads 1 --seeds 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass

import torch

from kdcore.data import load_dataset
from kdcore.distill import DistillRun, KDConfig
from kdcore.models import ModelConfig
from kdcore.presets import DARK_KNOWLEDGE, default_student, default_teacher_spec
from kdcore.runs import drive
from kdcore.teachers import TeacherCache
from kdcore.train import TrainConfig
from kdcore.train import predict_logits
from kdcore.transfer import auto_bias, bias_curve, teacher_share, without_class


@dataclass(frozen=True)
class Setting:
    name: str
    dataset: str
    width: int
    depth: int
    epochs: int
    alpha: float
    fraction: float
    temperatures: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    omitted: int | None = None   # a class left out of the transfer set (the paper's omitted 3)


def preset_setting() -> Setting:
    p = DARK_KNOWLEDGE
    return Setting(f"the Dark knowledge preset (class {p.omitted} omitted, MLP {p.width}, T = {p.temperature:g})",
                   p.dataset, p.width, p.depth, p.epochs, p.alpha, p.fraction,
                   tuple(sorted({1.0, 4.0, p.temperature, 20.0})), omitted=p.omitted)


def candidates() -> list[Setting]:
    return [
        Setting("omitted 3, MLP 16, 30 epochs, 100 % labels, α 0.9", "digits", 16, 1, 30, 0.9, 1.0, omitted=3),
        Setting("omitted 3, MLP 32, 30 epochs, 100 % labels, α 0.9", "digits", 32, 1, 30, 0.9, 1.0, omitted=3),
        Setting("omitted 3, MLP 16, 30 epochs, 10 % labels, α 0.9", "digits", 16, 1, 30, 0.9, 0.1, omitted=3),
        Setting("digits defaults (MLP 16, 30 epochs, 10 % labels, α 0.9)", "digits", 16, 1, 30, 0.9, 0.1),
        Setting("MLP 16, 30 epochs, 100 % labels, α 0.9", "digits", 16, 1, 30, 0.9, 1.0),
        Setting("MLP 16, 30 epochs, 100 % labels, α 1", "digits", 16, 1, 30, 1.0, 1.0),
        Setting("MLP 4 (weak), 30 epochs, 100 % labels, α 0.9", "digits", 4, 1, 30, 0.9, 1.0),
        Setting("MLP 8, 30 epochs, 100 % labels, α 0.9", "digits", 8, 1, 30, 0.9, 1.0),
        Setting("MLP 16, 5 epochs, 100 % labels, α 0.9", "digits", 16, 1, 5, 0.9, 1.0),
        Setting("MLP 16, 10 epochs, 30 % labels, α 0.9", "digits", 16, 1, 10, 0.9, 0.3),
        Setting("MLP 32, 30 epochs, 100 % labels, α 0.9", "digits", 32, 1, 30, 0.9, 1.0),
        Setting("MLP 16-16, 30 epochs, 100 % labels, α 0.9", "digits", 16, 2, 30, 0.9, 1.0),
    ]


def measure(setting: Setting, seeds: int, cache: TeacherCache) -> dict:
    out = {"distilled": {t: [] for t in setting.temperatures}, "scratch": [], "hard": [], "teacher": [],
           "seconds": [], "class": {"distilled": {t: [] for t in setting.temperatures}, "scratch": [], "hard": []},
           "fixed": {"distilled": {t: [] for t in setting.temperatures}, "scratch": [], "hard": []}}
    _, train_default = default_student(setting.dataset)
    student = ModelConfig(hidden=(setting.width,) * setting.depth)
    train = TrainConfig(**{**train_default.to_dict(), "epochs": setting.epochs})
    for seed in range(seeds):
        ds = load_dataset(setting.dataset, seed)
        teacher = cache.get_or_train(default_teacher_spec(setting.dataset, seed, seed), ds)
        out["teacher"].append(teacher.metrics["accuracy"])
        data, logits = ds, teacher.logits
        if setting.omitted is not None:
            data, logits = without_class(ds, teacher.logits, setting.omitted)
        controls = None
        for T in setting.temperatures:
            kd = KDConfig(temperature=T, alpha=setting.alpha, labelled_fraction=setting.fraction)
            t0 = time.perf_counter()
            res, _ = drive(DistillRun(data, logits, teacher.metrics, student, train, kd, seed, control=True))
            out["seconds"].append(time.perf_counter() - t0)
            out["distilled"][T].append(res.distilled_metrics["accuracy"])
            pair = (res.scratch_metrics["accuracy"], res.hard_metrics["accuracy"])
            assert controls is None or controls == pair, "the controls must not depend on T"
            controls = pair
            if setting.omitted is not None:
                cls = {k: class_accuracy(res.confusion[k], setting.omitted) for k in ("distilled", "scratch", "hard")}
                out["class"]["distilled"][T].append(cls["distilled"])
                fixed = {k: with_bias_fix(getattr(res, k), ds, teacher.logits, setting.omitted)
                         for k in ("distilled", "scratch", "hard")}
                out["fixed"]["distilled"][T].append(fixed["distilled"])
        out["scratch"].append(controls[0])
        out["hard"].append(controls[1])
        if setting.omitted is not None:
            for k in ("scratch", "hard"):
                out["class"][k].append(cls[k])
                out["fixed"][k].append(fixed[k])
    return out


def class_accuracy(confusion: torch.Tensor, c: int) -> float:
    """Share of class c's test examples predicted as c (confusion rows are true classes)."""
    row = confusion[c].double()
    return float(row[c] / row.sum())


def with_bias_fix(model, ds, teacher_logits, c: int) -> tuple[float, float]:
    """(overall, class c) test accuracy after the paper's fix: a bias on class c's logit chosen, without
    labels, so that c is predicted on the validation inputs as often as the teacher predicts it."""
    b = auto_bias(predict_logits(model, ds.X_val), c, teacher_share(teacher_logits["val"], c))
    r = bias_curve(predict_logits(model, ds.X_test), ds.y_test, c, [b])
    return float(r.accuracy[0]), float(r.class_accuracy[0])


def ms(xs) -> str:
    return f"{100 * statistics.mean(xs):.2f} ± {100 * statistics.stdev(xs):.2f}" if len(xs) > 1 \
        else f"{100 * xs[0]:.2f}"


def report(setting: Setting, m: dict) -> list[str]:
    hot = [t for t in setting.temperatures if t > 1]
    best = max(hot, key=lambda t: statistics.mean(m["distilled"][t])) if hot else None
    lines = [f"### {setting.name} ({setting.dataset})", "",
             f"teacher {ms(m['teacher'])} % · one distillation (3 students) "
             f"{statistics.mean(m['seconds']):.1f} s on average", "",
             "| student | test accuracy (%) |" + (" on the omitted class (%) |" if setting.omitted is not None else ""),
             "|---|---|" + ("---|" if setting.omitted is not None else "")]
    om = setting.omitted is not None
    c = m["class"]
    lines += [f"| labels only | {ms(m['scratch'])} |" + (f" {ms(c['scratch'])} |" if om else ""),
              f"| teacher's hard labels (control) | {ms(m['hard'])} |" + (f" {ms(c['hard'])} |" if om else "")]
    lines += [f"| distilled, T = {t:g} | {ms(m['distilled'][t])} |" + (f" {ms(c['distilled'][t])} |" if om else "")
              for t in setting.temperatures]
    lines.append("")
    if om:
        f = m["fixed"]
        lines += ["", "after the bias fix (b chosen on validation inputs from the teacher's share of the class):", "",
                  "| student | test accuracy (%) | on the omitted class (%) |", "|---|---|---|"]
        rows = [("labels only", f["scratch"]), ("teacher's hard labels (control)", f["hard"])] + \
            [(f"distilled, T = {t:g}", f["distilled"][t]) for t in setting.temperatures]
        lines += [f"| {name} | {ms([v[0] for v in vals])} | {ms([v[1] for v in vals])} |" for name, vals in rows]
        best_fixed = max(setting.temperatures, key=lambda t: statistics.mean(v[0] for v in f["distilled"][t]))
        d = [v[0] for v in f["distilled"][best_fixed]]
        vs_s = [a - b[0] for a, b in zip(d, f["scratch"])]
        vs_h = [a - b[0] for a, b in zip(d, f["hard"])]
        lines += ["", f"after the fix, best T = {best_fixed:g}: {ms(vs_s)} points vs labels only "
                      f"(wins {sum(g > 0 for g in vs_s)}/{len(d)}), {ms(vs_h)} vs the hard-label control "
                      f"(wins {sum(g > 0 for g in vs_h)}/{len(d)})"]
    for t in hot:   # every T > 1 against both controls, with wins per seed
        d = m["distilled"][t]
        vs_s = [a - b for a, b in zip(d, m["scratch"])]
        vs_h = [a - b for a, b in zip(d, m["hard"])]
        lines.append(f"- T = {t:g}: {ms(vs_s)} points vs labels only (wins {sum(g > 0 for g in vs_s)}/{len(d)}), "
                     f"{ms(vs_h)} vs the hard-label control (wins {sum(g > 0 for g in vs_h)}/{len(d)}), beats both "
                     f"on {sum(a > 0 and b > 0 for a, b in zip(vs_s, vs_h))}/{len(d)} seeds")
    if best is not None:
        d = m["distilled"][best]
        vs_s = [a - b for a, b in zip(d, m["scratch"])]
        vs_h = [a - b for a, b in zip(d, m["hard"])]
        both = sum(a > 0 and b > 0 for a, b in zip(vs_s, vs_h))
        lines += ["", f"best T > 1: T = {best:g}: {ms(vs_s)} points vs labels only "
                      f"(wins {sum(g > 0 for g in vs_s)}/{len(d)}), {ms(vs_h)} points vs the hard-label "
                      f"control (wins {sum(g > 0 for g in vs_h)}/{len(d)}); beats both on {both}/{len(d)} seeds"]
        if 1.0 in m["distilled"]:
            vs_1 = [a - b for a, b in zip(d, m["distilled"][1.0])]
            lines[-1] += f"; vs T = 1: {ms(vs_1)} points (wins {sum(g > 0 for g in vs_1)}/{len(d)})"
    return lines + [""]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--search", action="store_true", help="measure every candidate setting")
    ap.add_argument("--timing-only", action="store_true", help="only time one preset run from an empty cache")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cache = TeacherCache()
    t0 = time.perf_counter()
    if not args.search or args.timing_only:   # the preset from an empty cache, teacher included
        p = DARK_KNOWLEDGE
        ds = load_dataset(p.dataset, 0)
        t1 = time.perf_counter()
        teacher = TeacherCache(tempfile.mkdtemp()).get_or_train(default_teacher_spec(p.dataset, 0, 0), ds)
        t2 = time.perf_counter()
        data, logits = without_class(ds, teacher.logits, p.omitted)
        kd = KDConfig(temperature=p.temperature, alpha=p.alpha, labelled_fraction=p.fraction)
        drive(DistillRun(data, logits, teacher.metrics, ModelConfig(hidden=(p.width,) * p.depth),
                         TrainConfig(**{**default_student(p.dataset)[1].to_dict(), "epochs": p.epochs}), kd, 0,
                         control=True))
        print(f"one preset run from an empty cache (seed 0, {args.threads} thread(s)): teacher "
              f"{t2 - t1:.1f} s, three students {time.perf_counter() - t2:.1f} s\n", flush=True)
        if args.timing_only:
            return
    for setting in (candidates() if args.search else [preset_setting()]):
        m = measure(setting, args.seeds, cache)
        print("\n".join(report(setting, m)), flush=True)
        print(f"({time.perf_counter() - t0:.0f} s so far)\n", flush=True)


if __name__ == "__main__":
    main()
