"""The transfer-set lab: what the students learn from, and how much of it they need.

Three experiments of Hinton, Vinyals & Dean (2015, "Distilling the Knowledge in
a Neural Network", section 3), on any dataset and the current teacher:

- Labelled fraction (`FractionCurve`): for each fraction f of labels (e.g. 3 %,
  10 %, 30 %, 100 %), one `DistillRun`: a student trained on the teacher's soft
  targets over the whole transfer set (plus the labels it has) and its twin
  trained on the f labels alone. Two accuracy curves against f: soft targets
  act as a regularizer and need far less labelled data.
- Omitted class (`without_class`, `adjust_bias`, `auto_bias`, `bias_curve`):
  the transfer set has no example of one class at all (inputs, labels and
  teacher logits removed). The distilled student still learns that class from
  the soft targets of the other examples ("a 2 that looks a bit like a 3");
  adding a bias b to that class's output logit at test time recovers most of
  its accuracy (the paper: 206 → 109 test errors on MNIST without 3s).
- Soft loss vs logit matching vs hard labels (`LossComparisonRun`): three
  students from the same initialization and batch order, trained on
  T²·KL(p_T ‖ q_T) (+ labels), on ½·mean((s − t)²) (+ labels), and on labels alone.

Every run is stepped one epoch at a time so pages can draw progress and stop.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from kdcore.data import Dataset
from kdcore.distill import DistillResult, DistillRun, KDConfig, describe_outcome, transfer_labels
from kdcore.losses import IGNORE_LABEL
from kdcore.metrics import evaluate
from kdcore.models import ModelConfig, build_model
from kdcore.train import EpochLog, History, TrainConfig, Trainer, predict_logits, seeded_model

DEFAULT_FRACTIONS = (0.03, 0.1, 0.3, 1.0)   # the paper's 3 % and the full set, with two steps between


# ---------------------------------------------------------------- labelled fraction


@dataclass
class FractionPoint:
    fraction: float            # share of the transfer set with labels
    n_labelled: int            # how many labels that is
    distilled: dict            # test metrics of the student with soft targets on all + the labels
    scratch: dict              # test metrics of the twin trained on the labels alone
    epochs_run: int            # epochs actually run (fewer when stopped)
    stopped: bool = False      # True if this run was stopped before its last epoch
    result: DistillResult | None = None   # the full result (students, histories)
    hard: dict | None = None   # test metrics of the control on the teacher's argmax labels (None: stored before it)

    @property
    def gain(self) -> float:
        return self.distilled["accuracy"] - self.scratch["accuracy"]

    @property
    def gain_from_teacher_labels(self) -> float | None:
        """Hard-label control minus labels only: what the teacher's argmax labels alone buy."""
        return None if self.hard is None else self.hard["accuracy"] - self.scratch["accuracy"]

    @property
    def gain_from_soft_targets(self) -> float | None:
        """Distilled minus hard-label control: what the soft targets add beyond the teacher's labels."""
        return None if self.hard is None else self.distilled["accuracy"] - self.hard["accuracy"]


class FractionCurve:
    """One `DistillRun` per labelled fraction, run one after another, one epoch per `step()`.

    `points` holds the finished fractions; `finish()` evaluates a run in progress
    as it is (after a stop) and adds it, marked as stopped.
    """

    def __init__(self, dataset: Dataset, teacher_logits: dict[str, torch.Tensor], teacher_metrics: dict,
                 student: ModelConfig, train: TrainConfig, kd: KDConfig,
                 fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0):
        fractions = sorted({float(f) for f in fractions})
        if not fractions:
            raise ValueError("choose at least one labelled fraction")
        for f in fractions:
            if not 0.0 < f <= 1.0:
                raise ValueError(f"labelled fraction {f:g} is not in (0, 1]")
        self.dataset, self.teacher_logits, self.teacher_metrics = dataset, teacher_logits, teacher_metrics
        self.student, self.train, self.kd, self.seed = student, train, kd, seed
        self.fractions = fractions
        self.points: list[FractionPoint] = []
        self.current: DistillRun | None = None

    @property
    def done(self) -> bool:
        return len(self.points) == len(self.fractions)

    @property
    def progress(self) -> float:
        """Fraction of all planned epochs run so far."""
        per_run = self.train.epochs
        ran = len(self.points) * per_run + (self.current.epoch if self.current is not None else 0)
        return ran / (per_run * len(self.fractions))

    @property
    def current_fraction(self) -> float | None:
        return None if self.done else self.fractions[len(self.points)]

    def _add(self, run: DistillRun) -> FractionPoint:
        res = run.result()
        point = FractionPoint(run.kd.labelled_fraction, res.n_labelled, res.distilled_metrics,
                              res.scratch_metrics, run.epoch, stopped=not run.done, result=res, hard=res.hard_metrics)
        self.points.append(point)
        return point

    def step(self) -> tuple[EpochLog, EpochLog]:
        """One more epoch of the current fraction's two students (starting it if needed)."""
        if self.done:
            raise RuntimeError("all fractions are done")
        if self.current is None:
            kd = dataclasses.replace(self.kd, labelled_fraction=self.current_fraction)
            self.current = DistillRun(self.dataset, self.teacher_logits, self.teacher_metrics,
                                      self.student, self.train, kd, self.seed, control=True)
        logs = self.current.step()
        if self.current.done:
            self._add(self.current)
            self.current = None
        return logs

    def finish(self) -> list[FractionPoint]:
        """Evaluate the run in progress (if any) as it is; the fractions not started are dropped."""
        if self.current is not None and self.current.epoch > 0:
            self._add(self.current)
        self.current = None
        return self.points


def fraction_curve(dataset: Dataset, teacher_logits: dict[str, torch.Tensor], teacher_metrics: dict,
                   student: ModelConfig, train: TrainConfig, kd: KDConfig,
                   fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0,
                   on_point=None) -> list[FractionPoint]:
    """The whole curve at once; `on_point(point)` after each fraction may return True to stop."""
    curve = FractionCurve(dataset, teacher_logits, teacher_metrics, student, train, kd, fractions, seed)
    while not curve.done:
        n = len(curve.points)
        curve.step()
        if len(curve.points) > n and on_point is not None and on_point(curve.points[-1]):
            break
    return curve.finish()


# ---------------------------------------------------------------- omitted class


def without_class(dataset: Dataset, teacher_logits: dict[str, torch.Tensor], omitted: int
                  ) -> tuple[Dataset, dict[str, torch.Tensor]]:
    """The dataset whose transfer (training) split has no example of class `omitted`.

    Inputs, labels and the teacher's logits of that class's examples are all
    removed, so neither student ever sees one. Validation and test splits are
    kept whole: they only measure (the test set is where the omitted class is judged).
    """
    if not 0 <= omitted < dataset.n_classes:
        raise ValueError(f"class {omitted} does not exist in {dataset.name}")
    keep = dataset.y_train != omitted
    if not bool(keep.any()):
        raise ValueError("the transfer set would be empty")
    reduced = dataclasses.replace(
        dataset, X_train=dataset.X_train[keep], y_train=dataset.y_train[keep],
        extra={**dataset.extra, "omitted_class": omitted})
    logits = {**teacher_logits, "train": teacher_logits["train"][keep]}
    return reduced, logits


def adjust_bias(logits: torch.Tensor, cls: int, bias: float) -> torch.Tensor:
    """New logits with `bias` added to class `cls`'s column only (the others unchanged)."""
    out = logits.clone()
    out[:, cls] += bias
    return out


def auto_bias(logits: torch.Tensor, cls: int, target_share: float) -> float:
    """The bias b for class `cls` that makes it the prediction on `target_share` of the inputs.

    The paper's fix for an omitted class: raise its bias until it is predicted
    about as often as it should be. Needs no labels: the share can come from the
    teacher's predictions on unlabelled inputs (see `teacher_share`). Exact:
    example i predicts `cls` once b > max_{j≠cls} z_ij − z_i,cls, so b is taken
    halfway between two consecutive sorted thresholds.
    """
    if len(logits) == 0:
        return 0.0
    others = logits.clone()
    others[:, cls] = -math.inf
    thresholds = torch.sort(others.max(1).values - logits[:, cls]).values
    k = int(round(min(max(target_share, 0.0), 1.0) * len(thresholds)))
    if k <= 0:
        return float(thresholds[0]) - 1.0
    if k >= len(thresholds):
        return float(thresholds[-1]) + 1.0
    return 0.5 * float(thresholds[k - 1] + thresholds[k])


def teacher_share(teacher_logits: torch.Tensor, cls: int) -> float:
    """How often the teacher predicts `cls` (on unlabelled inputs, e.g. the validation split)."""
    return float((teacher_logits.argmax(1) == cls).float().mean())


@dataclass
class BiasCurve:
    biases: np.ndarray          # the b values
    accuracy: np.ndarray        # overall test accuracy at each b
    class_accuracy: np.ndarray  # accuracy on the omitted class's test examples at each b
    errors: np.ndarray          # overall test errors at each b
    class_errors: np.ndarray    # test errors on the omitted class at each b


def bias_curve(logits: torch.Tensor, y: torch.Tensor, cls: int, biases: Sequence[float]) -> BiasCurve:
    """Accuracy overall and on class `cls` for each bias b, from fixed logits (no retraining)."""
    others = logits.clone()
    others[:, cls] = -math.inf
    best_other, other_arg = others.max(1)
    margin = (best_other - logits[:, cls]).numpy()          # b needed for cls to win
    y_np, other_np = y.numpy(), other_arg.numpy()
    is_cls = y_np == cls
    acc, cacc, err, cerr = [], [], [], []
    for b in biases:
        pred = np.where(margin < b, cls, other_np)
        wrong = pred != y_np
        err.append(int(wrong.sum()))
        cerr.append(int(wrong[is_cls].sum()))
        acc.append(1 - wrong.mean())
        cacc.append(1 - wrong[is_cls].mean() if is_cls.any() else float("nan"))
    return BiasCurve(np.asarray(list(biases), float), np.asarray(acc), np.asarray(cacc),
                     np.asarray(err), np.asarray(cerr))


@dataclass
class OmittedResult:
    omitted: int                       # the class left out of the transfer set
    class_name: str
    distilled: DistillResult           # distilled (soft + hard on the rest) and scratch (hard on the rest)
    distilled_test_logits: torch.Tensor   # cached for the bias slider: no retraining on slider moves
    scratch_test_logits: torch.Tensor
    y_test: torch.Tensor
    auto_bias: float                   # b matching the teacher's share of the class on validation inputs
    auto_bias_scratch: float
    n_transfer: int                    # transfer-set size without the class
    teacher_class_accuracy: float      # the teacher's accuracy on the class's test examples
    stopped: bool = False
    # the teacher's-hard-labels control (cross-entropy on the teacher's argmax over the same transfer set);
    # None in results stored before it existed
    hard_test_logits: torch.Tensor | None = None
    auto_bias_hard: float | None = None

    def evaluate_bias(self, bias: float, which: str = "distilled") -> dict:
        logits = {"distilled": self.distilled_test_logits, "scratch": self.scratch_test_logits,
                  "hard": self.hard_test_logits}[which]
        c = bias_curve(logits, self.y_test, self.omitted, [bias])
        return {"bias": bias, "accuracy": float(c.accuracy[0]), "class_accuracy": float(c.class_accuracy[0]),
                "errors": int(c.errors[0]), "class_errors": int(c.class_errors[0])}

    def summary(self) -> str:
        """What the soft targets did for the class no student saw, against both controls (at b = 0 and
        at each student's own automatic bias), then the overall split of the gain."""
        c = self.class_name
        d0, s0 = self.evaluate_bias(0.0), self.evaluate_bias(0.0, "scratch")
        da, sa = self.evaluate_bias(self.auto_bias), self.evaluate_bias(self.auto_bias_scratch, "scratch")
        s = (f"No {c} in the transfer set: the distilled student gets {100 * d0['class_accuracy']:.1f} % of the "
             f"test {c}s right ({100 * da['class_accuracy']:.1f} % with its automatic bias), the labels-only "
             f"student {100 * s0['class_accuracy']:.1f} % ({100 * sa['class_accuracy']:.1f} %)")
        if self.hard_test_logits is not None:
            h0, ha = self.evaluate_bias(0.0, "hard"), self.evaluate_bias(self.auto_bias_hard, "hard")
            s += (f" and the teacher's hard labels {100 * h0['class_accuracy']:.1f} % "
                  f"({100 * ha['class_accuracy']:.1f} %): the teacher's argmax never says {c} on this transfer set, "
                  f"only its soft targets do")
        s += ". " + describe_outcome(self.distilled.distilled_metrics, self.distilled.scratch_metrics, None,
                                     self.distilled.hard_metrics, alpha=self.distilled.kd.alpha)
        return s


class OmittedClassRun:
    """Distilled and scratch students on a transfer set without one class, one epoch per `step()`."""

    def __init__(self, dataset: Dataset, teacher_logits: dict[str, torch.Tensor], teacher_metrics: dict,
                 omitted: int, student: ModelConfig, train: TrainConfig, kd: KDConfig, seed: int = 0):
        self.dataset, self.omitted = dataset, omitted
        self.teacher_logits = teacher_logits
        reduced, logits = without_class(dataset, teacher_logits, omitted)
        self.n_transfer = len(reduced.y_train)
        self.run = DistillRun(reduced, logits, teacher_metrics, student, train, kd, seed, control=True)

    @property
    def done(self) -> bool:
        return self.run.done

    @property
    def epoch(self) -> int:
        return self.run.epoch

    @property
    def train(self):
        return self.run.train

    def step(self):
        return self.run.step()

    def result(self) -> OmittedResult:
        ds, c = self.dataset, self.omitted
        res = self.run.result()
        ld, ls = predict_logits(res.distilled, ds.X_test), predict_logits(res.scratch, ds.X_test)
        share = teacher_share(self.teacher_logits["val"], c)
        is_c = ds.y_test == c
        t_cls = float((self.teacher_logits["test"][is_c].argmax(1) == c).float().mean()) if is_c.any() else float("nan")
        hard = {}
        if res.hard is not None:
            hard = {"hard_test_logits": predict_logits(res.hard, ds.X_test),
                    "auto_bias_hard": auto_bias(predict_logits(res.hard, ds.X_val), c, share)}
        return OmittedResult(c, ds.class_names[c], res, ld, ls, ds.y_test,
                             auto_bias(predict_logits(res.distilled, ds.X_val), c, share),
                             auto_bias(predict_logits(res.scratch, ds.X_val), c, share),
                             self.n_transfer, t_cls, stopped=not self.run.done, **hard)


# ---------------------------------------------------------------- soft loss vs logit matching vs labels

LOSSES = {
    "soft": "soft targets (T²·KL) + labels",
    "logits": "logit matching (MSE) + labels",
    "hard": "labels only",
}



@dataclass
class LossComparison:
    metrics: dict[str, dict]              # loss kind -> test metrics
    histories: dict[str, History]
    models: dict[str, torch.nn.Module]
    student: ModelConfig
    train: TrainConfig
    kd: KDConfig
    n_labelled: int
    seed: int
    stopped: bool = False


class LossComparisonRun:
    """Three students, same init and batch order: soft loss, logit matching, labels alone.

    The soft and logit students use the whole transfer set (teacher outputs on
    every example) plus the `kd.labelled_fraction` of labels weighted by 1 − α;
    the hard student trains on the labelled examples only.
    """

    def __init__(self, dataset: Dataset, teacher_logits: dict[str, torch.Tensor], teacher_metrics: dict,
                 student: ModelConfig, train: TrainConfig, kd: KDConfig, seed: int = 0):
        self.dataset, self.teacher_logits, self.teacher_metrics = dataset, teacher_logits, teacher_metrics
        self.student, self.train, self.kd, self.seed = student, train, kd, seed
        y = transfer_labels(dataset, kd.labelled_fraction, seed)
        lab = y != IGNORE_LABEL
        self.n_labelled = int(lab.sum())
        init = seeded_model(lambda: build_model(student, dataset.input_shape, dataset.n_classes), seed)
        self.models = {k: copy.deepcopy(init) for k in LOSSES}
        common = dict(X_val=dataset.X_val, y_val=dataset.y_val)
        self.trainers = {
            "soft": Trainer(self.models["soft"], dataset.X_train, y, train, seed, teacher_logits["train"],
                            kd.temperature, kd.alpha, "kd", name="soft", **common),
            "logits": Trainer(self.models["logits"], dataset.X_train, y, train, seed, teacher_logits["train"],
                              1.0, kd.alpha, "logits", name="logits", **common),
            "hard": Trainer(self.models["hard"], dataset.X_train[lab], y[lab], train, seed, loss="ce",
                            name="hard", **common),
        }
        self.histories = {k: History() for k in LOSSES}

    @property
    def epoch(self) -> int:
        return self.histories["soft"].epochs_run

    @property
    def done(self) -> bool:
        return self.epoch >= self.train.epochs

    def step(self) -> dict[str, EpochLog]:
        logs = {k: t.run_epoch() for k, t in self.trainers.items()}
        for k, log in logs.items():
            self.histories[k].logs.append(log)
        return logs

    def result(self) -> LossComparison:
        ds = self.dataset
        stopped = not self.done
        for h in self.histories.values():
            h.stopped_early = stopped
        metrics = {k: evaluate(m, ds.X_test, ds.y_test, self.teacher_logits["test"]) for k, m in self.models.items()}
        return LossComparison(metrics, self.histories, {k: m.eval() for k, m in self.models.items()},
                              self.student, self.train, self.kd, self.n_labelled, self.seed, stopped)
