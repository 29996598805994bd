"""The "sweep" run kind: a T × α (× width × seeds) grid of distilled students as a job.

Config (JSON): "dataset", "data_seed", "teacher" (the teacher's spec dict; the teacher run is
required first), "sweep" (`SweepConfig.to_dict()`), "base_model" (a ModelConfig dict or None: the
students' architecture apart from their width) and "backend" ("in-process", the default, or "ray").

In process, one `step()` is one epoch of the current width group (`kdcore.sweep.InProcessSweep`,
the loop `InProcessBackend.run` drives), so a Stop is quick and keeps every student as it is then.
With Ray, one `step()` collects one finished chunk (`RaySweep`); a stop cancels the others.
Progress curves: per width, the best and the mean validation accuracy of its students per epoch.
"""

from __future__ import annotations

from kdcore.runkinds import teacher_requirement
from kdcore.runs import Progress, RunContext, RunKind, register_kind


def sweep_config(teacher_spec, config, base_model=None, backend: str = "in-process") -> dict:
    """The config of a "sweep" run from the engine's configs (TeacherSpec, SweepConfig, ModelConfig)."""
    return {"dataset": teacher_spec.dataset, "data_seed": teacher_spec.data_seed,
            "teacher": teacher_spec.to_dict(), "sweep": config.to_dict(),
            "base_model": base_model.to_dict() if base_model is not None else None, "backend": backend}


def sweep_from_config(config: dict):
    """The SweepConfig of a "sweep" run's config."""
    from kdcore.sweep import SweepConfig
    from kdcore.train import TrainConfig
    d = config["sweep"]
    return SweepConfig(**{**d, "train": TrainConfig(**d["train"])})


class SweepRun:
    """A sweep as a job (see the module docstring)."""

    def __init__(self, config: dict, ctx: RunContext):
        from kdcore.models import ModelConfig
        from kdcore.sweep import InProcessSweep, RayBackend
        teacher = ctx.teacher(config["teacher"])
        ds = ctx.dataset(config["dataset"], config["data_seed"])
        self.config = sweep_from_config(config)
        base = ModelConfig.from_dict(config["base_model"]) if config.get("base_model") else None
        self.backend = config.get("backend", "in-process")
        if self.backend == "ray":
            import os
            self.sweep = RayBackend(address=os.environ.get("KDLAB_RAY_ADDRESS") or None).start(
                ds, teacher.logits, self.config, base)
        elif self.backend == "in-process":
            self.sweep = InProcessSweep(ds, teacher.logits, self.config, base)
        else:
            raise ValueError(f"unknown sweep backend {self.backend!r}")
        self.curves: dict[str, list[float]] = {}
        self.last = ""

    @property
    def done(self) -> bool:
        return self.sweep.done

    def step(self):
        cfg = self.config
        if self.backend == "ray":
            width = self.sweep.step()
            self.last = f"a chunk of width {width} finished"
            return
        self.sweep.step()
        group, width = self.sweep.group, self.sweep.width
        acc = [h.logs[-1].val_acc for h in group.histories]
        self.curves.setdefault(f"width {width}: best", []).append(max(acc))
        self.curves.setdefault(f"width {width}: mean", []).append(sum(acc) / len(acc))
        self.last = (f"width {width}: epoch {group.epoch}/{cfg.train.epochs} · best validation accuracy "
                     f"{100 * max(acc):.1f} %")

    def progress(self) -> Progress:
        cfg = self.config
        if self.backend == "ray":
            n = len(self.sweep.students)
            return Progress(n / cfg.n_total, f"{n}/{cfg.n_total} students done"
                            + (f" · {self.last}" if self.last else ""), {})
        total = len(cfg.groups()) * cfg.train.epochs
        groups_done = len(cfg.groups()) - len(self.sweep.pending) - (1 if self.sweep.group is not None else 0)
        epochs = groups_done * cfg.train.epochs + (self.sweep.group.epoch if self.sweep.group is not None else 0)
        text = f"{self.sweep.done_students}/{cfg.n_total} students done"
        if self.last:
            text += f" · {self.last}"
        return Progress(epochs / total, text, {k: list(v) for k, v in self.curves.items()})

    def result(self):
        if self.backend == "ray" and not self.sweep.done:
            self.sweep.cancel()   # a stop: the chunks still running are not waited for
        return self.sweep.result()


def _sweep_name(config: dict) -> str:
    cfg = sweep_from_config(config)
    widths = ", ".join(map(str, cfg.widths))
    return (f"sweep {len(cfg.temperatures)} T × {len(cfg.alphas)} α, width {widths}, "
            f"{cfg.seeds_per_cell} seed(s) per cell, {cfg.train.epochs} epochs, "
            f"{100 * cfg.labelled_fraction:g} % labels")


def _sweep_summary(res) -> dict:
    best = res.best_cell()
    if best is None:
        return {"students": 0}
    return {"accuracy": best["test_acc_mean"] / 100, "students": len(res.students),
            "best_T": float(best["T"]), "best_alpha": float(best["alpha"]), "best_width": int(best["width"])}


register_kind(RunKind(
    "sweep", "Sweep", SweepRun, requires=teacher_requirement,
    describe=_sweep_name, summary=_sweep_summary))
