"""Every run kind of the lab, registered with the Run protocol (`kdcore.runs`).

Each kind turns a JSON config into a stepped run over the engine's own classes (Trainer,
DistillRun, SweepGroup, ...): what one `step()` does, what `progress()` says, what `result()`
returns. The engine classes stay usable on their own; this module is the one place that says
how each experiment runs as a job.

Config conventions: every config names its data as "dataset" and "data_seed"; a run that needs a
teacher carries the teacher's spec dict under "teacher" and requires the teacher run.
"""

from __future__ import annotations

from kdcore.runs import pct as _pct, CombinedRun, EngineRun, Progress, RunContext, RunKind, RunSpec, register_kind



def val_curve(history) -> list[float]:
    return [l.val_acc for l in history.logs]


def teacher_requirement(config: dict) -> list[RunSpec]:
    """The run a kind needs first when its config names a network teacher under "teacher"."""
    return [RunSpec("teacher", config["teacher"])]


# ---------------------------------------------------------------- teacher

class TeacherRun:
    """Train the teacher of a TeacherSpec one epoch per step; a cached teacher is done at once."""

    def __init__(self, config: dict, ctx: RunContext):
        from kdcore.models import build_model
        from kdcore.teachers import TeacherSpec
        from kdcore.train import History, Trainer, seeded_model
        self.spec = spec = TeacherSpec.from_dict(config)
        self.ds = ds = ctx.dataset(spec.dataset, spec.data_seed)
        self.cached = ctx.teachers.get(spec, ds)
        self.history = History()
        if self.cached is None:
            self.model = seeded_model(lambda: build_model(spec.model, ds.input_shape, ds.n_classes), spec.seed)
            # exactly what train_teacher does through fit(): the same numbers
            self.trainer = Trainer(self.model, ds.X_train, ds.y_train, spec.train, spec.seed,
                                   X_val=ds.X_val, y_val=ds.y_val, name="teacher")

    @property
    def done(self) -> bool:
        return self.cached is not None or self.history.epochs_run >= self.spec.train.epochs

    def step(self):
        self.history.logs.append(self.trainer.run_epoch())

    def progress(self) -> Progress:
        if self.cached is not None:
            return Progress(1.0, "found in the teacher cache")
        n, total = self.history.epochs_run, self.spec.train.epochs
        text = f"Teacher: epoch {n}/{total}"
        if n:
            text += f" · validation accuracy {_pct(self.history.logs[-1].val_acc)}"
        return Progress(n / total, text, {"teacher": val_curve(self.history)})

    def result(self):
        from kdcore.teachers import make_teacher
        if self.cached is not None:
            return self.cached
        self.history.stopped_early = not self.done
        return make_teacher(self.spec, self.ds, self.model, self.history.to_records(), from_cache=False,
                            complete=self.done)


def make_teacher_run(config: dict, ctx: RunContext):
    """A network teacher's TeacherRun, or an imported teacher's run (kdcore.userteachers)."""
    from kdcore.models import is_imported
    from kdcore.teachers import TeacherSpec
    spec = TeacherSpec.from_dict(config)
    if is_imported(spec):
        from kdcore import userteachers
        return userteachers.make_run(spec, ctx.dataset(spec.dataset, spec.data_seed), ctx.teachers)
    return TeacherRun(config, ctx)


def _teacher_finished(teacher, status: str, ctx: RunContext) -> None:
    if status == "finished" and teacher.complete and not teacher.from_cache:
        ctx.teachers.put(teacher)   # a stopped teacher is stored as a run, never as the cached teacher


def _teacher_name(config: dict) -> str:
    from kdcore.teachers import TeacherSpec
    from kdcore.models import is_imported
    spec = TeacherSpec.from_dict(config)
    if is_imported(spec):
        return f"teacher {spec.model.describe()} ({spec.dataset}, seed {spec.seed})"
    return f"teacher {spec.model.describe()}, {spec.train.epochs} epochs ({spec.dataset}, seed {spec.seed})"


register_kind(RunKind(
    "teacher", "Teacher", make_teacher_run, on_finish=_teacher_finished, describe=_teacher_name,
    summary=lambda t: {"accuracy": t.metrics["accuracy"], "params": t.metrics["params"],
                       "bytes": t.metrics["bytes"], "epochs": len(t.history)}))


# ---------------------------------------------------------------- distilled student and its twin

def distill_config(teacher_spec, student, train, kd, seed: int) -> dict:
    """The config of a "distill" run from the engine's configs."""
    return {"dataset": teacher_spec.dataset, "data_seed": teacher_spec.data_seed, "seed": int(seed),
            "teacher": teacher_spec.to_dict(), "student": student.to_dict(), "train": train.to_dict(),
            "kd": kd.to_dict()}


def student_config(config: dict, role: str) -> dict:
    """The config of one of a "distill" run's students (`kdcore.distill.ROLES`): only what that student
    depends on, so that a new T or α trains the distilled student alone and reuses both controls
    (the scratch twin needs no teacher; the hard-label control no T, α or labelled fraction)."""
    out = {"dataset": config["dataset"], "data_seed": config["data_seed"], "seed": config["seed"],
           "student": config["student"], "train": config["train"], "role": role}
    if role in ("distilled", "hard"):
        out["teacher"] = config["teacher"]
    if role == "distilled":
        out["kd"] = config["kd"]
    elif role == "scratch":
        out["labelled_fraction"] = config["kd"]["labelled_fraction"]
    return out


def distill_parts(config: dict) -> list[RunSpec]:
    from kdcore.distill import ROLES
    return [RunSpec("student", student_config(config, role)) for role in ROLES]


def _student_run(config: dict, ctx: RunContext):
    """The `StudentRun` of a "student" config (see `student_config`)."""
    from kdcore.distill import KDConfig, StudentRun
    from kdcore.models import ModelConfig
    from kdcore.train import TrainConfig
    kd = KDConfig(**config["kd"]) if "kd" in config else \
        KDConfig(labelled_fraction=config.get("labelled_fraction", 1.0))
    logits = ctx.teacher(config["teacher"]).logits if "teacher" in config else None
    return StudentRun(config["role"], ctx.dataset(config["dataset"], config["data_seed"]), logits,
                      ModelConfig.from_dict(config["student"]), TrainConfig(**config["train"]), kd, config["seed"])


class StudentPartRun(EngineRun):
    """One student of a distillation as a job (a part of a "distill" run), one epoch per step."""

    def __init__(self, config: dict, ctx: RunContext):
        from kdcore.distill import ROLE_LABELS
        self.run = _student_run(config, ctx)
        self.label = ROLE_LABELS[config["role"]]

    def progress(self) -> Progress:
        h, total = self.run.history, self.run.train.epochs
        text = f"{self.label}: epoch {h.epochs_run}/{total}"
        if h.epochs_run:
            text += f", validation {_pct(h.logs[-1].val_acc)}"
        return Progress(h.epochs_run / total, text, {self.label: val_curve(h)})


def _student_name(config: dict) -> str:
    from kdcore.distill import ROLE_LABELS
    from kdcore.models import ModelConfig
    return (f"{ROLE_LABELS[config['role']]} student {ModelConfig.from_dict(config['student']).describe()} "
            f"(seed {config['seed']})")


register_kind(RunKind(
    "student", "Student", StudentPartRun, describe=_student_name, listed=False,
    requires=lambda config: teacher_requirement(config) if "teacher" in config else [],
    summary=lambda part: {"val_accuracy": part.history.logs[-1].val_acc if part.history.logs else None,
                          "epochs": part.history.epochs_run}))


class DistillPairRun(CombinedRun):
    """A "distill" run: its three students (distilled, labels-only twin, hard-label control) are its
    parts, trained in parallel on the runner's workers; this run evaluates them together as
    `DistillRun` would (`kdcore.distill.assemble`), in one step. Outside a job runner (a script) it
    trains them itself, one after the other (`kdcore.runs.part_result`)."""

    def __init__(self, config: dict, ctx: RunContext):
        self.config, self.ctx = config, ctx

    def combine(self):
        from kdcore.distill import KDConfig, assemble
        from kdcore.models import ModelConfig
        from kdcore.runs import part_result
        from kdcore.train import TrainConfig
        cfg, ctx = self.config, self.ctx
        teacher = ctx.teacher(cfg["teacher"])
        # a student stopped before it started learned nothing: it comes as initialized
        students = {spec.config["role"]: part_result(ctx, spec, lambda: _student_run(spec.config, ctx))
                    for spec in distill_parts(cfg)}
        if students["hard"].history.epochs_run == 0:   # stopped before it started: no control to split the gain with
            del students["hard"]
        return assemble(ctx.dataset(cfg["dataset"], cfg["data_seed"]), teacher.logits, teacher.metrics,
                        ModelConfig.from_dict(cfg["student"]), TrainConfig(**cfg["train"]), KDConfig(**cfg["kd"]),
                        cfg["seed"], students)

    def progress(self) -> Progress:
        from kdcore.distill import ROLE_LABELS
        r = self._result
        if r is None:
            return Progress(0.0, "combining the students")
        histories = {"distilled": r.distilled_history, "scratch": r.scratch_history, "hard": r.hard_history}
        return Progress(1.0, f"Epoch {r.distilled_history.epochs_run}/{r.train_config.epochs}",
                        {ROLE_LABELS[k]: val_curve(h) for k, h in histories.items() if h is not None})


def _distill_name(config: dict) -> str:
    from kdcore.models import ModelConfig
    kd = config["kd"]
    return (f"distill {ModelConfig.from_dict(config['student']).describe()} · T={kd['temperature']:g}, "
            f"α={kd['alpha']:g}, {100 * kd['labelled_fraction']:g} % labels, "
            f"{config['train']['epochs']} epochs (seed {config['seed']})")


register_kind(RunKind(
    "distill", "Distillation", DistillPairRun, requires=teacher_requirement, parts=distill_parts,
    describe=_distill_name,
    summary=lambda r: {"accuracy": r.distilled_metrics["accuracy"],
                       "scratch_accuracy": r.scratch_metrics["accuracy"],
                       "gain_pts": 100 * r.gain, "params": r.distilled_metrics["params"],
                       "hard_labels_accuracy": r.hard_metrics["accuracy"] if r.hard_metrics else None,
                       "bytes": r.distilled_metrics["bytes"], "epochs": r.distilled_history.epochs_run}))
