"""Run kinds of the Sequences page, registered with the Run protocol (`kdcore.runs`).

- "seq_teacher": a recurrent teacher on a sequence task (`SeqTeacherRun`), one epoch per step.
- "seq_distill": the three students of a finished "seq_teacher" run (`SeqDistillRun`): distilled,
  labels only, teacher's hard labels; one epoch of the three per step. Requires the teacher run.
- "seq_groups": per-campaign teachers, then one student for every campaign (`GroupsIntoOneRun`).
- "chunker": Schmidhuber's 1991 chunker and automatizer (`ChunkerRun`), one epoch per step.

Each kind wraps the engine's own stepped class: the numbers are those of the direct engine calls.
Configs name their data as "dataset" ("seq:events", "seq:reber", "seq:chunker") and "data_seed";
the sequences are made in code from the task config and the seed, so they are not stored with a
result: a stored "seq_teacher" result has `dataset=None` (stored by reference, the config and the
seed), and `teacher_with_dataset` re-makes it (memoised by `make_sequence_dataset`).
"""

from __future__ import annotations

import dataclasses

from kdcore.runs import Progress, RunContext, RunKind, RunSpec, register_kind


CURVE_NAMES = {"labels_only": "labels only", "hard_labels": "hard labels"}   # the lab's names (figures.COLORS)


def _progress(p) -> Progress:
    """The engine's RunProgress as the protocol's Progress (live series named as on the other pages)."""
    return Progress(float(p.fraction), str(p.text),
                    {CURVE_NAMES.get(k, k): [float(x) for x in v] for k, v in p.curves.items()})


class _Wrapped:
    """A stepped engine run as a Run of the protocol (progress converted)."""

    run = None

    @property
    def done(self) -> bool:
        return self.run.done

    def step(self):
        return self.run.step()

    def progress(self) -> Progress:
        return _progress(self.run.progress())

    def result(self):
        return self.run.result()


def _safe(summary):
    return lambda r: {} if r is None else summary(r)


# ---------------------------------------------------------------- teacher

def seq_teacher_config(teacher, seed: int) -> dict:
    """The config of a "seq_teacher" run from a `SeqTeacherConfig` (the seed draws data and weights)."""
    return {"dataset": f"seq:{teacher.task.task}", "data_seed": int(seed), "seed": int(seed), **teacher.to_dict()}


def teacher_with_dataset(teacher):
    """A stored teacher result with its sequences made again from its config and seed."""
    if teacher.dataset is not None:
        return teacher
    from kdcore.sequences import make_sequence_dataset
    return dataclasses.replace(teacher, dataset=make_sequence_dataset(teacher.config.task, teacher.seed))


class SeqTeacherJob(_Wrapped):
    def __init__(self, config: dict, ctx: RunContext):
        from kdcore.seqdistill import SeqTeacherConfig, SeqTeacherRun
        self.run = SeqTeacherRun(SeqTeacherConfig.from_dict(config), int(config["seed"]))

    def result(self):
        # the sequences are made from the config: store the result without them
        return dataclasses.replace(self.run.result(), dataset=None)


def _teacher_name(config: dict) -> str:
    from kdcore.seqdistill import SeqTeacherConfig
    t = SeqTeacherConfig.from_dict(config)
    return f"sequence teacher {t.model.describe()}, {t.train.epochs} epochs ({t.task.task}, seed {config['seed']})"


register_kind(RunKind(
    "seq_teacher", "Sequence teacher", SeqTeacherJob, describe=_teacher_name,
    summary=_safe(lambda t: {"accuracy": t.metrics["accuracy"], "params": t.metrics["params"],
                             "bytes": t.metrics["bytes"], "epochs": len(t.history)})))


# ---------------------------------------------------------------- three students

def seq_distill_config(teacher, distill, seed: int) -> dict:
    """The config of a "seq_distill" run: the teacher's `SeqTeacherConfig`, a `SeqDistillConfig`, a seed."""
    return {"dataset": f"seq:{teacher.task.task}", "data_seed": int(seed), "seed": int(seed),
            "teacher": seq_teacher_config(teacher, seed), "distill": distill.to_dict()}


def _teacher_requirement(config: dict) -> list[RunSpec]:
    return [RunSpec("seq_teacher", config["teacher"])]


class SeqDistillJob(_Wrapped):
    def __init__(self, config: dict, ctx: RunContext):
        from kdcore.seqdistill import SeqDistillConfig, SeqDistillRun
        teacher = teacher_with_dataset(ctx.result_of(RunSpec("seq_teacher", config["teacher"])))
        self.run = SeqDistillRun(SeqDistillConfig.from_dict(config["distill"]), teacher, int(config["seed"]))


def _distill_name(config: dict) -> str:
    from kdcore.seqdistill import SeqDistillConfig
    d = SeqDistillConfig.from_dict(config["distill"])
    return (f"sequence students {d.student.describe()} · T={d.temperature:g}, α={d.alpha:g}, "
            f"{d.n_sequences} sequences, {d.train.epochs} epochs ({config['dataset'][4:]}, seed {config['seed']})")


def _distill_summary(r) -> dict:
    m = r.metrics
    return {"accuracy": m["distilled"]["accuracy"], "scratch_accuracy": m["labels_only"]["accuracy"],
            "hard_labels_accuracy": m["hard_labels"]["accuracy"], "gain_pts": 100 * r.gain,
            "params": m["distilled"]["params"], "bytes": m["distilled"]["bytes"], "epochs": r.epochs_run}


register_kind(RunKind(
    "seq_distill", "Sequence distillation", SeqDistillJob, requires=_teacher_requirement,
    describe=_distill_name, summary=_safe(_distill_summary)))


# ---------------------------------------------------------------- many small models into one

def seq_groups_config(groups, seed: int) -> dict:
    """The config of a "seq_groups" run from a `GroupsIntoOneConfig`."""
    return {"dataset": f"seq:{groups.task.task}", "data_seed": int(seed), "seed": int(seed),
            "groups": groups.to_dict()}


class SeqGroupsJob(_Wrapped):
    def __init__(self, config: dict, ctx: RunContext):
        from kdcore.seqgroups import GroupsIntoOneConfig, GroupsIntoOneRun
        self.run = GroupsIntoOneRun(GroupsIntoOneConfig.from_dict(config["groups"]), int(config["seed"]))


def _groups_name(config: dict) -> str:
    from kdcore.seqgroups import GroupsIntoOneConfig
    g = GroupsIntoOneConfig.from_dict(config["groups"])
    return (f"{g.task.n_campaigns} campaign models {g.group_model.describe()} into one {g.student.describe()} "
            f"(seed {config['seed']})")


def _groups_summary(r) -> dict:
    out = {"campaign_models": len(r.group_models), "bytes_campaign_models": r.sizes["per-campaign models"],
           "bytes": r.sizes["one student"]}
    if "distilled" in r.metrics:
        out.update(accuracy=r.metrics["distilled"]["accuracy"], scratch_accuracy=r.metrics["labels_only"]["accuracy"],
                   campaign_models_accuracy=r.metrics["per-campaign models"]["accuracy"])
    return out


register_kind(RunKind(
    "seq_groups", "Many models into one", SeqGroupsJob, describe=_groups_name, summary=_safe(_groups_summary)))


# ---------------------------------------------------------------- the 1991 chunker

def chunker_config(chunker, seed: int) -> dict:
    """The config of a "chunker" run from a `ChunkerConfig`."""
    return {"dataset": "seq:chunker", "data_seed": int(seed), "seed": int(seed), "chunker": chunker.to_dict()}


class ChunkerJob(_Wrapped):
    def __init__(self, config: dict, ctx: RunContext):
        from kdcore.chunker import ChunkerConfig, ChunkerRun
        self.run = ChunkerRun(ChunkerConfig.from_dict(config["chunker"]), int(config["seed"]))


def _chunker_name(config: dict) -> str:
    c = config["chunker"]
    return (f"chunker and automatizer · lag {c['lag']}, {c['train']['epochs']} epochs, "
            f"state weight {c['state_weight']:g} (seed {config['seed']})")


def _chunker_summary(r) -> dict:
    if not r.history:
        return {}
    last = r.history[-1]
    return {"chunker_share": last["share_all"], "chunker_share_long_lag": last["share_long_lag"],
            "accuracy": last["system_all"], "epochs": len(r.history)}


register_kind(RunKind(
    "chunker", "Chunker and automatizer", ChunkerJob, describe=_chunker_name, summary=_safe(_chunker_summary)))
