"""Distill a student and train its twin on labels alone, side by side.

`distill_and_compare` builds one student initialization, copies it, and trains
the copies epoch by epoch in lockstep with the same batch order: one on
`kd_loss` against the teacher's soft targets, one on cross-entropy only. The
only difference between the two is the teacher, so the gap in their test
accuracy is the effect of distillation.

The transfer set is the training split. With `labelled_fraction < 1` only that
fraction keeps its labels (stratified); the distilled student still sees the
teacher's soft targets on every example, the scratch student sees only the
labelled ones (the paper's few-labels experiment).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

import torch
from torch import nn

from kdcore.data import Dataset, labelled_mask
from kdcore.device import cpu_model
from kdcore.losses import IGNORE_LABEL
from kdcore.metrics import confusion_matrix, evaluate
from kdcore.models import ModelConfig, build_model
from kdcore.runs import drive
from kdcore.train import EpochLog, History, TrainConfig, Trainer, predict_logits, seeded_model


@dataclass(frozen=True)
class KDConfig:
    temperature: float = 4.0        # T of the soft targets (and of the student's softmax in the soft term)
    alpha: float = 0.9              # weight of the soft term; 1 - alpha weights the labels' cross-entropy
    loss: str = "kd"                # "kd" (T²·KL) or "logits" (logit matching, MSE on logits)
    labelled_fraction: float = 1.0  # share of the transfer set whose labels the students may use

    def __post_init__(self):
        if not self.temperature > 0:
            raise ValueError("the temperature must be positive")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError("alpha must be between 0 and 1")
        if self.loss not in ("kd", "logits"):
            raise ValueError(f"unknown distillation loss {self.loss!r}")
        if not 0.0 < self.labelled_fraction <= 1.0:
            raise ValueError("the labelled fraction must be in (0, 1]")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DistillResult:
    distilled: nn.Module
    scratch: nn.Module
    distilled_history: History
    scratch_history: History
    distilled_metrics: dict          # test metrics, with agreement / KL against the teacher
    scratch_metrics: dict
    teacher_metrics: dict
    student_config: ModelConfig
    train_config: TrainConfig
    kd: KDConfig
    seed: int
    confusion: dict = field(default_factory=dict)   # 'teacher' / 'distilled' / 'scratch' (/ 'hard') -> (C, C) counts
    n_labelled: int = 0
    # the control "teacher's hard labels": the same student, init and batches, trained with
    # cross-entropy on the teacher's argmax over the whole transfer set (None when not trained)
    hard: nn.Module | None = None
    hard_history: History | None = None
    hard_metrics: dict | None = None

    @property
    def gain(self) -> float:
        """Distilled minus scratch test accuracy (a fraction; positive when distillation helped)."""
        return self.distilled_metrics["accuracy"] - self.scratch_metrics["accuracy"]

    @property
    def stopped_early(self) -> bool:
        """A Stop reached at least one of the students before its last epoch."""
        return any(h.stopped_early for h in (self.distilled_history, self.scratch_history, self.hard_history) if h)

    @property
    def epochs_run(self) -> dict[str, int]:
        """Epochs each student trained, by role ("distilled", "scratch", "hard"): all the same unless a
        Stop reached them at different epochs (the job runner trains them apart, side by side)."""
        out = {"distilled": self.distilled_history.epochs_run, "scratch": self.scratch_history.epochs_run}
        if self.hard_history is not None:
            out["hard"] = self.hard_history.epochs_run
        return out

    @property
    def gain_from_teacher_labels(self) -> float | None:
        """Hard-label control minus scratch: what the teacher's argmax labels alone buy."""
        return None if self.hard_metrics is None else self.hard_metrics["accuracy"] - self.scratch_metrics["accuracy"]

    @property
    def gain_from_soft_targets(self) -> float | None:
        """Distilled minus hard-label control: what the soft targets add beyond the teacher's labels."""
        return None if self.hard_metrics is None else self.distilled_metrics["accuracy"] - self.hard_metrics["accuracy"]

    def summary(self) -> str:
        return describe_outcome(self.distilled_metrics, self.scratch_metrics, self.teacher_metrics,
                                self.hard_metrics, alpha=self.kd.alpha)


def soft_targets_verdict(from_soft_pts: float) -> str:
    """How a gain split ends: what the soft targets did beyond the teacher's hard labels (points)."""
    return (": here the dark knowledge did not help." if from_soft_pts <= -0.05 else
            ": here the soft targets added almost nothing." if from_soft_pts < 0.5 else ".")


def describe_outcome(distilled: dict, scratch: dict, teacher: dict | None = None, hard: dict | None = None,
                     alpha: float | None = None) -> str:
    """One plain sentence saying what distillation did, honest when it did nothing or harm; with
    the hard-label control, a second one splitting the gain between the teacher's labels and its
    soft targets beyond them. With `alpha` = 0 the soft targets had no weight: it says that this
    was a labels-only run, not a distillation."""
    gap = 100 * (distilled["accuracy"] - scratch["accuracy"])
    if alpha is not None and alpha == 0:
        s = (f"With α = 0 the teacher's soft targets get no weight: the student called “distilled” learned "
             f"from the labels only, like its twin, so this is a labels-only run, not a distillation "
             f"({100 * distilled['accuracy']:.1f} % vs {100 * scratch['accuracy']:.1f} %; they differ only in "
             f"how the unlabelled examples pad their batches). Raise α to distill.")
        if hard is not None:
            s += (f" The teacher's hard labels reach {100 * hard['accuracy']:.1f} %.")
        return s
    if abs(gap) < 0.05:
        s = (f"Distillation made no difference: both students reach "
             f"{100 * distilled['accuracy']:.1f} % test accuracy.")
    elif gap > 0:
        s = (f"The distilled student is {gap:.1f} points better than the same student trained on "
             f"labels alone ({100 * distilled['accuracy']:.1f} % vs {100 * scratch['accuracy']:.1f} %).")
    else:
        s = (f"Here distillation did not help: the distilled student is {-gap:.1f} points worse than "
             f"the same student trained on labels alone ({100 * distilled['accuracy']:.1f} % vs "
             f"{100 * scratch['accuracy']:.1f} %).")
    if teacher is not None and teacher.get("bytes"):
        ratio = teacher["bytes"] / max(distilled["bytes"], 1)
        s += (f" It is {ratio:.1f} × smaller than the teacher ({100 * teacher['accuracy']:.1f} %)"
              if ratio >= 1.05 else f" The teacher reaches {100 * teacher['accuracy']:.1f} %")
        s += "."
    if hard is not None:
        from_labels = 100 * (hard["accuracy"] - scratch["accuracy"])
        from_soft = 100 * (distilled["accuracy"] - hard["accuracy"])
        s += (f" Split: {from_labels:+.1f} points come from the teacher's labels alone (the same student on "
              f"its argmax labels reaches {100 * hard['accuracy']:.1f} %), {from_soft:+.1f} from its soft "
              f"targets beyond them") + soft_targets_verdict(from_soft)
    return s


def hard_labels(teacher_logits: torch.Tensor) -> torch.Tensor:
    """The teacher's argmax on every transfer example: the labels of the hard-label control."""
    return teacher_logits.argmax(1)


def transfer_labels(dataset: Dataset, fraction: float, seed: int) -> torch.Tensor:
    """Training labels with all but `fraction` of them hidden (set to -1)."""
    y = dataset.y_train.clone()
    if fraction < 1.0:
        y[~labelled_mask(y, fraction, seed)] = IGNORE_LABEL
    return y


class DistillRun:
    """A distillation in progress: a distilled student and its scratch twin, one epoch per `step()`.

    Both start from the same initialization and see the same batch order; the
    only difference is the teacher. `result()` can be called at any time (after
    a stop, too) and evaluates the students as they are.

    teacher_logits: the teacher's logits per split ('train' is the transfer set,
    'test' for agreement), computed once by the caller (`TrainedTeacher.logits`).
    device: where both students train (default the CPU); `result()` hands back CPU models.
    control: also train the "teacher's hard labels" twin (same init and batches, cross-entropy on
    the teacher's argmax over the whole transfer set), which splits the gain between the
    teacher's labels and its soft targets.
    """

    def __init__(self, dataset: Dataset, teacher_logits: dict[str, torch.Tensor], teacher_metrics: dict,
                 student: ModelConfig, train: TrainConfig, kd: KDConfig, seed: int = 0,
                 device: str | torch.device | None = None, control: bool = False):
        self.dataset, self.teacher_logits, self.teacher_metrics = dataset, teacher_logits, teacher_metrics
        self.student, self.train, self.kd, self.seed = student, train, kd, seed
        init = seeded_model(lambda: build_model(student, dataset.input_shape, dataset.n_classes), seed)
        roles = ROLES if control else ROLES[:2]
        # the students of `StudentRun`, in lockstep, each from its own copy of the one initialization
        self.students = {role: StudentRun(role, dataset, teacher_logits, student, train, kd, seed, device,
                                          model=init if role == "distilled" else copy.deepcopy(init))
                         for role in roles}

    @property
    def distilled(self) -> nn.Module:
        return self.students["distilled"].model

    @property
    def scratch(self) -> nn.Module:
        return self.students["scratch"].model

    @property
    def hard(self) -> nn.Module | None:
        return self.students["hard"].model if "hard" in self.students else None

    @property
    def distilled_history(self) -> History:
        return self.students["distilled"].history

    @property
    def scratch_history(self) -> History:
        return self.students["scratch"].history

    @property
    def hard_history(self) -> History | None:
        return self.students["hard"].history if "hard" in self.students else None

    @property
    def epoch(self) -> int:
        return self.distilled_history.epochs_run

    @property
    def done(self) -> bool:
        return self.epoch >= self.train.epochs

    def step(self) -> tuple[EpochLog, EpochLog]:
        """Train every student for one more epoch; return the distilled and the scratch student's logs."""
        logs = {role: run.step() for role, run in self.students.items()}
        return logs["distilled"], logs["scratch"]

    def result(self) -> DistillResult:
        """Evaluate the students as they are now (stopped early if not all epochs ran)."""
        return assemble(self.dataset, self.teacher_logits, self.teacher_metrics, self.student, self.train,
                        self.kd, self.seed, {role: run.result() for role, run in self.students.items()})


# ---------------------------------------------------------------- one student at a time

ROLES = ("distilled", "scratch", "hard")   # a distillation's students: soft targets, labels alone, teacher's argmax
ROLE_LABELS = {"distilled": "distilled", "scratch": "scratch", "hard": "hard labels"}   # their curves' names


def count_labelled(dataset: Dataset, kd: KDConfig, seed: int) -> int:
    """How many transfer examples keep their label (`kd.labelled_fraction`, stratified by `seed`)."""
    return int((transfer_labels(dataset, kd.labelled_fraction, seed) != IGNORE_LABEL).sum())


def role_trainer(role: str, model: nn.Module, dataset: Dataset, teacher_logits: dict[str, torch.Tensor] | None,
                 train: TrainConfig, kd: KDConfig, seed: int, device=None) -> Trainer:
    """The trainer of one of a distillation's students (`ROLES`); all three share `seed`'s batch order:
    - "distilled": `kd_loss` (or logit matching) against the teacher on every transfer example, the
      labels that `kd.labelled_fraction` keeps in the (1 - α) term;
    - "scratch": cross-entropy on the labelled examples only (unlabelled ones carry nothing for it);
    - "hard": cross-entropy on the teacher's argmax over the whole transfer set (the control that
      splits the gain between the teacher's labels and its soft targets). Needs no `kd`."""
    common = dict(X_val=dataset.X_val, y_val=dataset.y_val, name=ROLE_LABELS[role], device=device)
    if role == "hard":
        return Trainer(model, dataset.X_train, hard_labels(teacher_logits["train"]), train, seed, loss="ce", **common)
    y_transfer = transfer_labels(dataset, kd.labelled_fraction, seed)
    if role == "distilled":
        return Trainer(model, dataset.X_train, y_transfer, train, seed, teacher_logits=teacher_logits["train"],
                       temperature=kd.temperature, alpha=kd.alpha, loss=kd.loss, **common)
    if role == "scratch":
        lab = y_transfer != IGNORE_LABEL
        return Trainer(model, dataset.X_train[lab], y_transfer[lab], train, seed, loss="ce", **common)
    raise ValueError(f"unknown student role {role!r}; expected one of {', '.join(ROLES)}")


@dataclass
class StudentPart:
    """One trained (or partly trained) student of a distillation and its history."""
    role: str                        # one of ROLES
    model: nn.Module
    history: History


class StudentRun:
    """One of `DistillRun`'s students alone, one epoch per `step()`: the job runner trains the three
    on different workers at once. Same initialization (`seeded_model(seed)`), batch order and dropout
    stream as in `DistillRun`, so its weights equal those of the lockstep run bit for bit.
    `kd` matters to the distilled and scratch students (T, α, labelled fraction); `teacher_logits`
    to the distilled and hard-label ones (None for the scratch student)."""

    def __init__(self, role: str, dataset: Dataset, teacher_logits: dict[str, torch.Tensor] | None,
                 student: ModelConfig, train: TrainConfig, kd: KDConfig, seed: int = 0, device=None,
                 model: nn.Module | None = None):
        self.role, self.train = role, train
        # `model`: the initialization to train (`DistillRun` hands each student a copy of one); by default
        # the same one built here
        self.model = model if model is not None else \
            seeded_model(lambda: build_model(student, dataset.input_shape, dataset.n_classes), seed)
        self.trainer = role_trainer(role, self.model, dataset, teacher_logits, train, kd, seed, device)
        self.history = History()

    @property
    def done(self) -> bool:
        return self.history.epochs_run >= self.train.epochs

    def step(self) -> EpochLog:
        log = self.trainer.run_epoch()
        self.history.logs.append(log)
        return log

    def result(self) -> StudentPart:
        self.history.stopped_early = not self.done
        return StudentPart(self.role, cpu_model(self.model).eval(), self.history)


def assemble(dataset: Dataset, teacher_logits: dict[str, torch.Tensor], teacher_metrics: dict,
             student: ModelConfig, train: TrainConfig, kd: KDConfig, seed: int,
             students: dict[str, StudentPart]) -> DistillResult:
    """A `DistillResult` from its students ("distilled", "scratch", optionally "hard"), evaluated on the
    test split against the teacher: what `DistillRun.result()` returns, also for students trained
    apart (`StudentRun`)."""
    ds, n, t_test = dataset, dataset.n_classes, teacher_logits["test"]
    logits = {role: predict_logits(part.model, ds.X_test) for role, part in students.items()}
    metrics = {role: evaluate(part.model, ds.X_test, ds.y_test, t_test, logits[role]) for role, part in students.items()}
    confusion = {"teacher": confusion_matrix(t_test, ds.y_test, n),
                 **{role: confusion_matrix(logits[role], ds.y_test, n) for role in students}}
    hard = students.get("hard")
    # CPU models (copies when training runs elsewhere, so that a further step() can go on)
    return DistillResult(
        cpu_model(students["distilled"].model).eval(), cpu_model(students["scratch"].model).eval(),
        students["distilled"].history, students["scratch"].history, metrics["distilled"], metrics["scratch"],
        teacher_metrics, student, train, kd, seed, confusion=confusion,
        n_labelled=count_labelled(dataset, kd, seed),
        hard=cpu_model(hard.model).eval() if hard else None, hard_history=hard.history if hard else None,
        hard_metrics=metrics.get("hard"))


def distill_and_compare(dataset: Dataset, teacher_logits: dict[str, torch.Tensor], teacher_metrics: dict,
                        student: ModelConfig, train: TrainConfig, kd: KDConfig, seed: int = 0,
                        callbacks: Iterable[Callable[[EpochLog, EpochLog], bool | None]] = (),
                        stop=None, device: str | torch.device | None = None) -> DistillResult:
    """Train a distilled student and a scratch twin (same init, same batches); return both.

    A callback gets (distilled_log, scratch_log) after each epoch and may return True to stop;
    `stop` may be a threading.Event. See `DistillRun` for the details (and `device`).
    """
    run = DistillRun(dataset, teacher_logits, teacher_metrics, student, train, kd, seed, device)
    callbacks = list(callbacks)
    return drive(run, on_step=lambda logs: any([bool(cb(*logs)) for cb in callbacks]) or
                 (stop is not None and stop.is_set()))[0]
