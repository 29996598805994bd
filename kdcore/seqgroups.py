"""Many small models into one: per-campaign teachers distilled into a single student.

The deployment problem of the lab's brief: one recurrent model per campaign
works, but together they are too many and too large to deploy. Here, on the
`events` task, `GroupsIntoOneRun` trains one teacher per campaign on that
campaign's sessions only, then one student on every session, with the soft
targets of the session's own campaign teacher at each step (`sequence_kd_loss`;
the campaign is the session's first input token, so the one student knows
which campaign it serves). A twin of the student, same initialization and
batch order, learns from the next events alone. Reported: the total size of
the per-campaign models against the one student, and accuracy per campaign
for all three (the per-campaign models each on their own campaign).

Stepped: one epoch of one campaign teacher per `step()`, then one epoch of both
students per `step()`; `result()` may be called at any time.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import numpy as np
import torch

from kdcore.models import format_bytes, model_bytes
from kdcore.seqdistill import (RunProgress, SeqModel, SeqModelConfig, SeqTrainer, accuracy_per_group, best_guess_hits,
                               build_seq_model, sequence_metrics)
from kdcore.sequences import SeqTaskConfig, make_sequence_dataset
from kdcore.train import EpochLog, TrainConfig, predict_logits


@dataclass(frozen=True)
class GroupsIntoOneConfig:
    task: SeqTaskConfig = SeqTaskConfig("events", n_train=800, n_campaigns=4)   # 4 campaigns, ~200 sessions each
    group_model: SeqModelConfig = SeqModelConfig("gru", hidden=32)    # each campaign's own teacher
    group_train: TrainConfig = TrainConfig(epochs=20, batch_size=16, lr=1e-2)   # per campaign teacher
    student: SeqModelConfig = SeqModelConfig("gru", hidden=32)        # the one model for every campaign
    student_train: TrainConfig = TrainConfig(epochs=25, batch_size=32, lr=1e-2)  # both students
    temperature: float = 2.0        # T of the campaign teachers' soft targets
    alpha: float = 0.9              # weight of the soft term; 1 - alpha on the next events' CE

    def __post_init__(self):
        if self.task.task != "events":
            raise ValueError("many models into one needs the 'events' task (its campaigns are the groups)")
        if not self.temperature > 0 or not 0.0 <= self.alpha <= 1.0:
            raise ValueError("the temperature must be positive and alpha in [0, 1]")

    def to_dict(self) -> dict:
        return {"task": self.task.to_dict(), "group_model": self.group_model.to_dict(),
                "group_train": self.group_train.to_dict(), "student": self.student.to_dict(),
                "student_train": self.student_train.to_dict(), "temperature": self.temperature,
                "alpha": self.alpha}

    @classmethod
    def from_dict(cls, d: dict) -> "GroupsIntoOneConfig":
        return cls(SeqTaskConfig.from_dict(d["task"]), SeqModelConfig.from_dict(d["group_model"]),
                   TrainConfig(**d["group_train"]), SeqModelConfig.from_dict(d["student"]),
                   TrainConfig(**d["student_train"]), d["temperature"], d["alpha"])


@dataclass
class GroupsIntoOneResult:
    group_models: list[SeqModel]            # one per campaign trained so far (CPU, eval mode)
    students: dict[str, SeqModel]           # "distilled", "labels_only" (empty if stopped before them)
    accuracy_per_group: dict[str, list[float]]   # "per-campaign models" / "distilled" / "labels_only" -> per campaign
    metrics: dict[str, dict]                # overall test metrics of each (the per-campaign models combined)
    sizes: dict[str, int]                   # bytes: "per-campaign models" (all together), "one student"
    group_names: tuple[str, ...]
    group_histories: list[list[dict]]       # per campaign teacher: EpochLog dicts
    student_histories: dict[str, list[dict]]
    config: GroupsIntoOneConfig
    seed: int
    stopped_early: bool = False

    def summary(self) -> str:
        return describe_groups_outcome(self)


def solved(result) -> bool:
    """The deployment problem solved: the one distilled student as accurate as the per-campaign models
    together (within half a point) and no campaign more than 2 points below its own model."""
    if "distilled" not in result.metrics:
        return False
    g, d = result.metrics["per-campaign models"]["accuracy"], result.metrics["distilled"]["accuracy"]
    diffs = [a_d - a_g for a_d, a_g in zip(result.accuracy_per_group["distilled"],
                                           result.accuracy_per_group["per-campaign models"])]
    return d >= g - 0.005 and min(diffs) >= -0.02


def describe_groups_outcome(result: GroupsIntoOneResult) -> str:
    """Plain sentences: did one student replace the per-campaign models, at what size.

    "Solved" means: overall at most 0.5 points below the per-campaign models and no campaign more
    than 2 points below its own model.
    """
    n = len(result.group_models)
    if "distilled" not in result.metrics:
        return f"Stopped during campaign model {n} of {len(result.group_names)}: no student was trained yet."
    g, d, s = (result.metrics[k]["accuracy"] for k in ("per-campaign models", "distilled", "labels_only"))
    ratio = result.sizes["per-campaign models"] / max(result.sizes["one student"], 1)
    diffs = [a_d - a_g for a_d, a_g in zip(result.accuracy_per_group["distilled"],
                                           result.accuracy_per_group["per-campaign models"])]
    weakest = int(np.argmin(diffs))
    text = (f"One distilled student of {format_bytes(result.sizes['one student'])} reaches {100 * d:.1f} % "
            f"against {100 * g:.1f} % for the {n} per-campaign models together "
            f"({format_bytes(result.sizes['per-campaign models'])}, {ratio:.1f} × larger): ")
    if solved(result):
        text += "the deployment problem is solved here, one model and no campaign more than 2 points worse."
    else:
        overall = f"{100 * (g - d):.1f} points worse overall and" if d < g - 0.005 else "as good overall but"
        text += (f"not solved here: {overall} {-100 * diffs[weakest]:.1f} points below its own model on "
                 f"{result.group_names[weakest]}.")
    gap = 100 * (d - s)
    text += (f" Trained on the next events alone, the same student reaches {100 * s:.1f} % "
             f"({'+' if gap >= 0 else '−'}{abs(gap):.1f} points for distillation).")
    return text


class GroupsIntoOneRun:
    """Per-campaign teachers, then one distilled student and its labels-only twin, one epoch per `step()`."""

    def __init__(self, config: GroupsIntoOneConfig = GroupsIntoOneConfig(), seed: int = 0):
        self.config, self.seed = config, seed
        self.dataset = ds = make_sequence_dataset(config.task, seed)
        self.n_groups = config.task.n_campaigns
        self.group_models: list[SeqModel] = []
        self.group_histories: list[list[dict]] = []
        self._group_trainer: SeqTrainer | None = None
        self.students: dict[str, SeqModel] = {}
        self._student_trainers: dict[str, SeqTrainer] = {}
        self.student_histories: dict[str, list[dict]] = {"distilled": [], "labels_only": []}
        self._val_groups = [ds.val.subset(torch.nonzero(ds.val.groups == g).flatten()) for g in range(self.n_groups)]

    @property
    def units(self) -> int:
        return self.n_groups * self.config.group_train.epochs + self.config.student_train.epochs

    @property
    def units_done(self) -> int:
        return sum(len(h) for h in self.group_histories) + len(self.student_histories["distilled"])

    @property
    def done(self) -> bool:
        return len(self.student_histories["distilled"]) >= self.config.student_train.epochs

    def progress(self) -> RunProgress:
        if not self.students:
            epoch = len(self.group_histories[-1]) if self.group_histories else 0
            text = (f"campaign model {max(len(self.group_models), 1)} / {self.n_groups}: "
                    f"epoch {epoch} / {self.config.group_train.epochs}")
        else:
            text = (f"one student (distilled and labels only): epoch {len(self.student_histories['distilled'])}"
                    f" / {self.config.student_train.epochs}")
        curves = {n: [h["val_acc"] for h in hist] for n, hist in self.student_histories.items() if hist}
        return RunProgress(self.units_done / self.units, text, curves)

    def _start_group(self, g: int) -> None:
        ds, cfg = self.dataset, self.config
        part = ds.train.subset(torch.nonzero(ds.train.groups == g).flatten())
        model = build_seq_model(cfg.group_model, ds, self.seed + 100 + g)
        self.group_models.append(model)
        self.group_histories.append([])
        self._group_trainer = SeqTrainer(model, part.tokens, part.targets, cfg.group_train, self.seed + g, "ce",
                                         val=self._val_groups[g], name=f"campaign {g + 1}")

    def _start_students(self) -> None:
        ds, cfg = self.dataset, self.config
        tr = ds.train
        teacher_logits = torch.zeros(tr.tokens.shape + (ds.n_classes,))
        for g, model in enumerate(self.group_models):
            rows = torch.nonzero(tr.groups == g).flatten()
            teacher_logits[rows] = predict_logits(model, tr.tokens[rows])
        init = build_seq_model(cfg.student, ds, self.seed + 1)
        self.students = {"distilled": init, "labels_only": copy.deepcopy(init)}
        self._student_trainers = {
            "distilled": SeqTrainer(self.students["distilled"], tr.tokens, tr.targets, cfg.student_train, self.seed,
                                    "kd", teacher_logits, cfg.temperature, cfg.alpha, ds.val, "distilled"),
            "labels_only": SeqTrainer(self.students["labels_only"], tr.tokens, tr.targets, cfg.student_train,
                                      self.seed, "ce", val=ds.val, name="labels_only"),
        }

    def step(self) -> list[EpochLog]:
        """One epoch of the current campaign teacher, or of both students once the teachers are done."""
        if self.done:
            raise RuntimeError("every model has trained all its epochs")
        if not self.students:
            if self._group_trainer is None or len(self.group_histories[-1]) >= self.config.group_train.epochs:
                self._start_group(len(self.group_models))
            log = self._group_trainer.run_epoch()
            self.group_histories[-1].append(asdict(log))
            if len(self.group_models) == self.n_groups and len(self.group_histories[-1]) >= self.config.group_train.epochs:
                self._start_students()
            return [log]
        logs = [t.run_epoch() for t in self._student_trainers.values()]
        for name, log in zip(self._student_trainers, logs):
            self.student_histories[name].append(asdict(log))
        return logs

    def result(self) -> GroupsIntoOneResult:
        ds, test = self.dataset, self.dataset.test
        groups = [copy.deepcopy(m).eval() for m in self.group_models]
        per_group: dict[str, list[float]] = {}
        metrics: dict[str, dict] = {}
        sizes = {"per-campaign models": sum(model_bytes(m) for m in groups),
                 "one student": model_bytes(self.students["distilled"]) if self.students
                 else model_bytes(build_seq_model(self.config.student, ds, 0))}
        if groups:
            combined = torch.zeros(test.tokens.shape + (ds.n_classes,))
            covered = torch.zeros(len(test), dtype=torch.bool)
            for g, model in enumerate(groups):
                rows = torch.nonzero(test.groups == g).flatten()
                combined[rows] = predict_logits(model, test.tokens[rows])
                covered[rows] = True
            acc = accuracy_per_group(best_guess_hits(combined, test.true_probs), test, self.n_groups)
            per_group["per-campaign models"] = [a if g < len(groups) else float("nan") for g, a in enumerate(acc)]
            part = test.subset(torch.nonzero(covered).flatten())
            metrics["per-campaign models"] = sequence_metrics(combined[covered], part)
            metrics["per-campaign models"]["bytes"] = sizes["per-campaign models"]
        students = {n: copy.deepcopy(m).eval() for n, m in self.students.items()}
        for name, model in students.items():
            logits = predict_logits(model, test.tokens)
            metrics[name] = sequence_metrics(logits, test, combined if len(groups) == self.n_groups else None, model)
            per_group[name] = accuracy_per_group(best_guess_hits(logits, test.true_probs), test, self.n_groups)
        return GroupsIntoOneResult(groups, students, per_group, metrics, sizes, ds.group_names,
                                   [list(h) for h in self.group_histories],
                                   {n: list(h) for n, h in self.student_histories.items()},
                                   self.config, self.seed, stopped_early=not self.done)
