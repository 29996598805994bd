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
        return self.distilled_history.stopped_early

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
        y_transfer = transfer_labels(dataset, kd.labelled_fraction, seed)
        init = seeded_model(lambda: build_model(student, dataset.input_shape, dataset.n_classes), seed)
        self.distilled, self.scratch = init, copy.deepcopy(init)
        # the scratch student trains only on labelled examples: unlabelled ones carry nothing for it
        lab = y_transfer != IGNORE_LABEL
        self.n_labelled = int(lab.sum())
        self._t_distilled = Trainer(self.distilled, dataset.X_train, y_transfer, train, seed,
                                    teacher_logits=teacher_logits["train"], temperature=kd.temperature,
                                    alpha=kd.alpha, loss=kd.loss, X_val=dataset.X_val, y_val=dataset.y_val,
                                    name="distilled", device=device)
        self._t_scratch = Trainer(self.scratch, dataset.X_train[lab], y_transfer[lab], train, seed, loss="ce",
                                  X_val=dataset.X_val, y_val=dataset.y_val, name="scratch", device=device)
        self.distilled_history, self.scratch_history = History(), History()
        self.hard = self._t_hard = self.hard_history = None
        if control:
            self.hard = copy.deepcopy(init)
            self._t_hard = Trainer(self.hard, dataset.X_train, hard_labels(teacher_logits["train"]), train, seed,
                                   loss="ce", X_val=dataset.X_val, y_val=dataset.y_val, name="hard labels",
                                   device=device)
            self.hard_history = History()

    @property
    def epoch(self) -> int:
        return self.distilled_history.epochs_run

    @property
    def done(self) -> bool:
        return self.epoch >= self.train.epochs

    def step(self) -> tuple[EpochLog, EpochLog]:
        """Train both students for one more epoch; return their logs."""
        log_d, log_s = self._t_distilled.run_epoch(), self._t_scratch.run_epoch()
        self.distilled_history.logs.append(log_d)
        self.scratch_history.logs.append(log_s)
        if self._t_hard is not None:
            self.hard_history.logs.append(self._t_hard.run_epoch())
        return log_d, log_s

    def result(self) -> DistillResult:
        """Evaluate both students as they are now (stopped early if not all epochs ran)."""
        ds = self.dataset
        stopped = not self.done
        self.distilled_history.stopped_early = self.scratch_history.stopped_early = stopped
        t_test = self.teacher_logits["test"]
        logits_d = predict_logits(self.distilled, ds.X_test)
        logits_s = predict_logits(self.scratch, ds.X_test)
        n = ds.n_classes
        hard = {}
        if self.hard is not None:
            self.hard_history.stopped_early = stopped
            logits_h = predict_logits(self.hard, ds.X_test)
            hard = {"hard": cpu_model(self.hard).eval(), "hard_history": self.hard_history,
                    "hard_metrics": evaluate(self.hard, ds.X_test, ds.y_test, t_test, logits_h)}
        # CPU models (copies when training runs elsewhere, so that a further step() can go on)
        result = DistillResult(
            cpu_model(self.distilled).eval(), cpu_model(self.scratch).eval(),
            self.distilled_history, self.scratch_history,
            evaluate(self.distilled, ds.X_test, ds.y_test, t_test, logits_d),
            evaluate(self.scratch, ds.X_test, ds.y_test, t_test, logits_s),
            self.teacher_metrics, self.student, self.train, self.kd, self.seed,
            confusion={"teacher": confusion_matrix(t_test, ds.y_test, n),
                       "distilled": confusion_matrix(logits_d, ds.y_test, n),
                       "scratch": confusion_matrix(logits_s, ds.y_test, n)},
            n_labelled=self.n_labelled, **hard,
        )
        if self.hard is not None:
            result.confusion["hard"] = confusion_matrix(logits_h, ds.y_test, n)
        return result


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
