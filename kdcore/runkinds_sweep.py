"""The "sweep" run kind: a T × α (× width × seeds) grid of distilled students as a job.

Config (JSON): "dataset", "data_seed", "teacher" (the teacher's spec dict; the teacher run is
required first), "sweep" (`SweepConfig.to_dict()`), "base_model" (a ModelConfig dict or None: the
students' architecture apart from their width) and "backend" ("in-process", the default, or "ray").

In process, the grid's chunks (`kdcore.sweep.sweep_chunks`: each width group in two halves, each
one batched model) are the run's parts, "sweep_chunk" runs that the job runner trains side by side,
one epoch per `step()`, so a Stop is quick and keeps every student as it is then; the sweep run
then puts them together (`assemble_sweep`). With the "ray" backend, one `step()` collects one
finished chunk (`RaySweep`); a stop cancels the others.
Progress curves: per width (per chunk while they train), the best and the mean validation accuracy
of its students per epoch.
"""

from __future__ import annotations

from kdcore.runkinds import teacher_requirement
from kdcore.runs import CombinedRun, Progress, RunContext, RunKind, RunSpec, register_kind


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


def _base_model(config: dict):
    from kdcore.models import ModelConfig
    return ModelConfig.from_dict(config["base_model"]) if config.get("base_model") else None


def chunk_config(config: dict, students) -> dict:
    """The config of a "sweep_chunk" run: its sweep's data, teacher, grid and base model, and its students."""
    from dataclasses import asdict
    return {"dataset": config["dataset"], "data_seed": config["data_seed"], "teacher": config["teacher"],
            "sweep": config["sweep"], "base_model": config.get("base_model"),
            "students": [asdict(s) for s in students]}


def sweep_parts(config: dict) -> list[RunSpec]:
    from kdcore.sweep import sweep_chunks
    if config.get("backend", "in-process") != "in-process":
        return []   # Ray: the run sends its chunks to the cluster itself
    return [RunSpec("sweep_chunk", chunk_config(config, chunk)) for chunk in sweep_chunks(sweep_from_config(config))]


def _chunk_run(config: dict, ctx: RunContext):
    from kdcore.sweep import StudentSpec, SweepChunk
    return SweepChunk(ctx.dataset(config["dataset"], config["data_seed"]), ctx.teacher(config["teacher"]).logits,
                      sweep_from_config(config), [StudentSpec(**s) for s in config["students"]], _base_model(config))


def _chunk_label(config: dict) -> str:
    """"width 16, students 15–27 of 27": where a chunk sits in its width group (the group's order: the
    grid's students, then its controls)."""
    from kdcore.sweep import StudentSpec
    specs = [StudentSpec(**s) for s in config["students"]]
    group = sweep_from_config(config).groups()[specs[0].width]
    at = sorted(group.index(s) + 1 for s in specs)
    return f"width {specs[0].width}, students {at[0]}–{at[-1]} of {len(group)}"


def _add_best_and_mean(curves: dict[str, list[float]], label: str, accuracies: list[float]) -> None:
    """One epoch's point on the "best" and "mean" validation-accuracy curves of a group of students."""
    curves.setdefault(f"{label}: best", []).append(max(accuracies))
    curves.setdefault(f"{label}: mean", []).append(sum(accuracies) / len(accuracies))


class SweepChunkRun:
    """A chunk of a sweep as a job (a part of a "sweep" run), one epoch per step."""

    def __init__(self, config: dict, ctx: RunContext):
        self.run = _chunk_run(config, ctx)
        self.label = _chunk_label(config)
        self.curves: dict[str, list[float]] = {}

    @property
    def done(self) -> bool:
        return self.run.done

    def step(self):
        self.run.step()
        _add_best_and_mean(self.curves, self.label, [h.logs[-1].val_acc for h in self.run.group.histories])

    def progress(self) -> Progress:
        group, best = self.run.group, self.curves.get(f"{self.label}: best")
        text = f"{self.label}: epoch {group.epoch}/{group.train.epochs}"
        if best:
            text += f" · best validation accuracy {100 * best[-1]:.1f} %"
        return Progress(group.epoch / group.train.epochs, text, {k: list(v) for k, v in self.curves.items()})

    def result(self):
        return self.run.result()


register_kind(RunKind(
    "sweep_chunk", "Sweep chunk", SweepChunkRun, requires=teacher_requirement, listed=False,
    describe=lambda config: f"sweep chunk: {_chunk_label(config)}",
    summary=lambda chunk: {"students": len(chunk.students)}))


class SweepRun(CombinedRun):
    """A sweep in process as a job: the combination of its chunks (see the module docstring)."""

    def __init__(self, config: dict, ctx: RunContext):
        self.spec_config, self.ctx, self.config = config, ctx, sweep_from_config(config)
        self.curves: dict[str, list[float]] = {}

    def combine(self):
        from kdcore.runs import part_result
        from kdcore.sweep import assemble_sweep
        chunks = [part_result(self.ctx, spec, lambda: _chunk_run(spec.config, self.ctx))
                  for spec in sweep_parts(self.spec_config)]
        result = assemble_sweep(self.config, chunks)
        for width in self.config.widths:   # the stored curves: per width and epoch, over all its students
            hist = [s.history for s in result.students + result.controls if s.spec.width == width]
            for e in range(max((len(h) for h in hist), default=0)):
                _add_best_and_mean(self.curves, f"width {width}", [h[e]["val_acc"] for h in hist if len(h) > e])
        return result

    def progress(self) -> Progress:
        r = self._result
        n = len(r.students) + len(r.controls) if r is not None else 0
        return Progress(1.0 if r is not None else 0.0, f"{n}/{self.config.n_total} students done",
                        {k: list(v) for k, v in self.curves.items()})


class RaySweepRun:
    """A sweep on Ray as a job: one `step()` collects one finished chunk (`RaySweep`)."""

    def __init__(self, config: dict, ctx: RunContext):
        import os
        from kdcore.sweep import RayBackend
        self.config = sweep_from_config(config)
        teacher = ctx.teacher(config["teacher"])
        ds = ctx.dataset(config["dataset"], config["data_seed"])
        self.sweep = RayBackend(address=os.environ.get("KDLAB_RAY_ADDRESS") or None).start(
            ds, teacher.logits, self.config, _base_model(config))
        self.last = ""

    @property
    def done(self) -> bool:
        return self.sweep.done

    def step(self):
        self.last = f"a chunk of width {self.sweep.step()} finished"

    def progress(self) -> Progress:
        n, total = len(self.sweep.students), self.config.n_total
        return Progress(n / total, f"{n}/{total} students done" + (f" · {self.last}" if self.last else ""), {})

    def result(self):
        if not self.sweep.done:
            self.sweep.cancel()   # a stop: the chunks still running are not waited for
        return self.sweep.result()


def make_sweep_run(config: dict, ctx: RunContext):
    backend = config.get("backend", "in-process")
    if backend == "ray":
        return RaySweepRun(config, ctx)
    if backend == "in-process":
        return SweepRun(config, ctx)
    raise ValueError(f"unknown sweep backend {backend!r}")


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
    "sweep", "Sweep", make_sweep_run, requires=teacher_requirement, parts=sweep_parts,
    describe=_sweep_name, summary=_sweep_summary))
