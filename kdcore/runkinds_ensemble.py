"""The ensemble run kinds: the members' training ("ensemble") and one student distilled from it
("ensemble_distill").

"ensemble" config: "dataset", "data_seed", "members" (the members' TeacherSpec dicts, from
`member_specs`) and "method" ("arithmetic" or "geometric"). Members train one after another, one
epoch per `step()` (a member already in the teacher cache is loaded in one step); each finished
member goes into the teacher cache, as `TeacherCache.get_or_train` would put it. The result is the
`Ensemble` of the finished members: after a stop, those finished so far (a member stopped
mid-training is not kept), or None when none had finished.

"ensemble_distill" config: "dataset", "data_seed", "seed", "ensemble" (the config of the
"ensemble" run, which is required first and read with `ctx.result_of`), "student", "train", "kd"
(ModelConfig, TrainConfig and KDConfig dicts) and "single_index" (the member that teaches the
single-member student). One `step()` is one epoch of the three students (`EnsembleDistillRun`).
"""

from __future__ import annotations

from kdcore.runkinds import TeacherRun, _pct
from kdcore.runs import EngineRun, Progress, RunContext, RunKind, RunSpec, register_kind


def ensemble_config(specs, method: str) -> dict:
    """The config of an "ensemble" run: its members' TeacherSpecs and the combination."""
    return {"dataset": specs[0].dataset, "data_seed": specs[0].data_seed,
            "members": [s.to_dict() for s in specs], "method": method}


def ensemble_distill_config(build_config: dict, student, train, kd, seed: int, single_index: int = 0) -> dict:
    """The config of an "ensemble_distill" run from the build's config and the engine's configs."""
    return {"dataset": build_config["dataset"], "data_seed": build_config["data_seed"], "seed": int(seed),
            "ensemble": build_config, "student": student.to_dict(), "train": train.to_dict(), "kd": kd.to_dict(),
            "single_index": int(single_index)}


# ---------------------------------------------------------------- the members

class EnsembleBuildRun:
    """The members trained one after another as teacher runs, one epoch per step (see the module docstring)."""

    def __init__(self, config: dict, ctx: RunContext):
        from kdcore.ensemble import METHODS
        from kdcore.teachers import TeacherSpec
        if config["method"] not in METHODS:
            raise ValueError(f"unknown combination {config['method']!r}; expected one of {METHODS}")
        if not config["members"]:
            raise ValueError("an ensemble needs at least one member")
        self.ctx, self.method = ctx, config["method"]
        self.specs = [TeacherSpec.from_dict(d) for d in config["members"]]
        self.dataset = ctx.dataset(config["dataset"], config["data_seed"])
        self.members = []                      # finished TrainedTeachers
        self.current: TeacherRun | None = None   # the member training now
        self.curves: dict[str, list[float]] = {}

    @property
    def done(self) -> bool:
        return len(self.members) >= len(self.specs)

    def step(self):
        k = len(self.members)
        if self.current is None:   # a cached member is done at once
            self.current = TeacherRun(self.specs[k].to_dict(), self.ctx)
        run = self.current
        if not run.done:
            run.step()
            self.curves[f"member {k + 1}"] = [l.val_acc for l in run.history.logs]
        if run.done:
            member = run.result()
            if not member.from_cache:
                self.ctx.teachers.put(member)
            else:
                self.curves[f"member {k + 1}"] = [r["val_acc"] for r in member.history]
            self.members.append(member)
            self.current = None

    def progress(self) -> Progress:
        n, k = len(self.specs), len(self.members)
        run = self.current
        if run is not None and run.cached is None and run.history.logs:
            log = run.history.logs[-1]
            frac = (k + log.epoch / log.epochs) / n
            text = f"Member {k + 1}/{n}: epoch {log.epoch}/{log.epochs} · validation accuracy {_pct(log.val_acc)}"
        else:
            frac = k / n
            text = f"{k}/{n} members ready"
            if k and self.members[-1].from_cache:
                text += f" (member {k} from the cache)"
        return Progress(frac, text, {name: list(v) for name, v in self.curves.items()})

    def result(self):
        from kdcore.ensemble import make_ensemble
        if not self.members:
            return None
        return make_ensemble(self.members, self.dataset, self.method, planned=len(self.specs))


def _ensemble_name(config: dict) -> str:
    from kdcore.ensemble import describe_member
    from kdcore.teachers import TeacherSpec
    specs = [TeacherSpec.from_dict(d) for d in config["members"]]
    models = sorted({s.model.describe() for s in specs})
    return (f"ensemble of {len(specs)} × {' / '.join(models)} ({config['method']} mean), "
            f"{specs[0].train.epochs} epochs; member 1: {describe_member(specs[0])}")


def _ensemble_summary(ens) -> dict:
    if ens is None:
        return {"members": 0}
    return {"accuracy": ens.metrics["accuracy"], "members": ens.n_members, "params": ens.metrics["params"],
            "bytes": ens.metrics["bytes"]}


register_kind(RunKind("ensemble", "Ensemble", EnsembleBuildRun, describe=_ensemble_name,
                      summary=_ensemble_summary))


# ---------------------------------------------------------------- one student from the ensemble

class EnsembleDistillJob(EngineRun):
    """`EnsembleDistillRun` as a job: three students, one epoch of each per step."""

    def __init__(self, config: dict, ctx: RunContext):
        from kdcore.distill import KDConfig
        from kdcore.ensemble import EnsembleDistillRun
        from kdcore.models import ModelConfig
        from kdcore.train import TrainConfig
        ensemble = ctx.result_of(RunSpec("ensemble", config["ensemble"]))
        ds = ctx.dataset(config["dataset"], config["data_seed"])
        self.run = EnsembleDistillRun(ds, ensemble, ModelConfig.from_dict(config["student"]),
                                      TrainConfig(**config["train"]), KDConfig(**config["kd"]),
                                      seed=config["seed"], single_index=config.get("single_index", 0))

    def progress(self) -> Progress:
        run, total = self.run, self.run.train.epochs
        curves = {name: [r["val_acc"] for r in records] for name, records in run.curves().items()}
        text = f"Epoch {run.epoch}/{total}"
        if run.epoch:
            text += (f" · validation accuracy: from the ensemble {_pct(curves['from ensemble'][-1])}, "
                     f"from one member {_pct(curves['from one member'][-1])}, "
                     f"scratch {_pct(curves['scratch'][-1])}")
        return Progress(run.epoch / total, text, curves)



def _ensemble_distill_name(config: dict) -> str:
    from kdcore.models import ModelConfig
    kd = config["kd"]
    return (f"distill ensemble of {len(config['ensemble']['members'])} into "
            f"{ModelConfig.from_dict(config['student']).describe()} · T={kd['temperature']:g}, "
            f"α={kd['alpha']:g}, {100 * kd['labelled_fraction']:g} % labels, "
            f"{config['train']['epochs']} epochs (seed {config['seed']})")


register_kind(RunKind(
    "ensemble_distill", "Ensemble distillation", EnsembleDistillJob,
    requires=lambda config: [RunSpec("ensemble", config["ensemble"])], describe=_ensemble_distill_name,
    summary=lambda r: {"accuracy": r.result.distilled_metrics["accuracy"],
                       "single_accuracy": r.single_metrics["accuracy"],
                       "scratch_accuracy": r.result.scratch_metrics["accuracy"],
                       "params": r.result.distilled_metrics["params"],
                       "epochs": r.result.distilled_history.epochs_run}))
