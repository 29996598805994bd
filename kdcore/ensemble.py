"""Ensemble teachers, and one student distilled from an ensemble (Hinton, Vinyals & Dean 2015).

An ensemble is N separately trained models: teacher specs that differ only in
their seed (and optionally their width), trained and cached like any teacher
through `TeacherCache.get_or_train`. Member k of `member_specs(base, n)` has
seed `base.seed + k`, so member 1 *is* the base teacher (already cached when
the current teacher was trained).

Combining the members' predictions (z_k = logits of member k, T = temperature):

- arithmetic mean:  p = (1/N) Σ_k softmax(z_k / T)
- geometric mean:   p ∝ Π_k softmax(z_k / T)^(1/N)  (renormalized) = softmax(mean_k z_k / T)

`combine_logits` returns T · log p, "logits" whose softening at T gives back
exactly p: `soften(combine_logits(z, m, T), T) == p`. That is how an ensemble's
soft targets at temperature T are made here: the members' distributions are
softened at T *first*, then averaged, as in the paper (section 3: "the
arithmetic or geometric mean of their individual predictive distributions"
serves as the soft target). For the geometric mean the order does not matter
(softmax(mean z / T) either way); for the arithmetic mean it does, which is
why `Ensemble.soft_targets(T)` recombines the members at T rather than
softening the T = 1 combination. Accuracy and the other test metrics of the
ensemble use the T = 1 combination.

`EnsembleDistillRun` distills one student from the ensemble (`DistillRun`:
the distilled student and its scratch twin) and, from the same initialization
and batch order, the same student from one member alone: the three accuracies
answer "does compressing an ensemble into one model beat distilling a single
model?".
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from kdcore.data import Dataset
from kdcore.distill import DistillResult, DistillRun, KDConfig, transfer_labels
from kdcore.metrics import accuracy, agreement, evaluate, mean_kl
from kdcore.models import ModelConfig, model_bytes, param_count
from kdcore.runs import drive
from kdcore.teachers import TeacherCache, TeacherSpec, TrainedTeacher
from kdcore.train import EpochLog, History, TrainConfig, Trainer, predict_logits

METHODS = ("arithmetic", "geometric")
SPLITS = ("train", "val", "test")


def combine_logits(member_logits: Sequence[torch.Tensor], method: str = "arithmetic",
                   temperature: float = 1.0) -> torch.Tensor:
    """T · log p, p the arithmetic or geometric mean of the members' softmax(z_k / T).

    member_logits: N tensors of shape (B, C). The result (B, C) satisfies
    softmax(result / T) = p, so it can stand wherever teacher logits are expected
    (distillation at the same T, argmax, agreement).
    """
    if method not in METHODS:
        raise ValueError(f"unknown combination {method!r}; expected one of {METHODS}")
    if len(member_logits) == 0:
        raise ValueError("an ensemble needs at least one member")
    if not temperature > 0:
        raise ValueError("the temperature must be positive")
    T = float(temperature)
    log_p = torch.stack([torch.log_softmax(z.double() / T, dim=-1) for z in member_logits])  # (N, B, C)
    if method == "arithmetic":
        # log mean_k p_k, computed stably as logsumexp_k log p_k - log N
        combined = torch.logsumexp(log_p, dim=0) - np.log(len(member_logits))
    else:
        # mean of log-probabilities, renormalized so the probabilities sum to 1
        combined = torch.log_softmax(log_p.mean(dim=0), dim=-1)
    return (T * combined).to(member_logits[0].dtype)


def member_specs(base: TeacherSpec, n_members: int, widths: Sequence[int] | None = None) -> list[TeacherSpec]:
    """N teacher specs like `base`, with seeds base.seed, base.seed + 1, ...

    widths: optional hidden widths, member k using widths[k % len(widths)] for every hidden layer
    (the depth stays that of `base`). Member 1 (k = 0) with no widths is `base` itself.
    """
    if n_members < 1:
        raise ValueError("an ensemble needs at least one member")
    if widths is not None and (len(widths) == 0 or any(int(w) < 1 for w in widths)):
        raise ValueError("member widths must be positive integers")
    specs = []
    for k in range(n_members):
        model = base.model
        if widths:
            w = int(widths[k % len(widths)])
            model = replace(model, hidden=(w,) * max(len(model.hidden), 1))
        specs.append(replace(base, model=model, seed=base.seed + k))
    return specs


def describe_member(spec: TeacherSpec) -> str:
    return f"{spec.model.describe()}, seed {spec.seed}"


class EnsembleModule(nn.Module):
    """The ensemble as one module: its forward returns the combined logits (at T = 1).

    Holds private copies of the members (the cached teachers are shared and read-only).
    """

    def __init__(self, members: Sequence[nn.Module], method: str):
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"unknown combination {method!r}")
        self.members = nn.ModuleList([copy.deepcopy(m) for m in members])
        self.method = method
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return combine_logits([m(x) for m in self.members], self.method)


@dataclass(eq=False)
class Ensemble:
    """Trained members and their combination, with logits per split computed once."""

    members: list[TrainedTeacher]
    method: str                               # "arithmetic" or "geometric"
    logits: dict[str, torch.Tensor]           # split -> combined logits at T = 1
    metrics: dict                             # test metrics of the ensemble (params/bytes summed)
    complete: bool = True                     # False when it was stopped before all members trained
    planned: int = 0                          # how many members were asked for

    @property
    def n_members(self) -> int:
        return len(self.members)

    def member_logits(self, split: str) -> list[torch.Tensor]:
        return [m.logits[split] for m in self.members]

    def soft_targets(self, temperature: float) -> dict[str, torch.Tensor]:
        """Logits for `DistillRun` at temperature T.

        'train' and 'val': the members softened at T, then combined (T · log p_T), so the student's
        soft targets at T are exactly the mean of the members' softened distributions. 'test': the
        T = 1 combination (what the ensemble predicts), for the student's agreement and KL.
        """
        out = {s: combine_logits(self.member_logits(s), self.method, temperature) for s in ("train", "val")}
        out["test"] = self.logits["test"]
        return out

    def combined_accuracy(self, method: str, y_test: torch.Tensor) -> float:
        """Test accuracy of the members combined by `method` (to compare both means)."""
        return accuracy(combine_logits(self.member_logits("test"), method), y_test)

    def module(self) -> EnsembleModule:
        return EnsembleModule([m.model for m in self.members], self.method)

    def describe(self) -> str:
        widths = sorted({m.spec.model.describe() for m in self.members})
        return f"ensemble of {self.n_members} × {' / '.join(widths)} ({self.method} mean)"


def make_ensemble(members: Sequence[TrainedTeacher], dataset: Dataset, method: str = "arithmetic",
                  planned: int | None = None) -> Ensemble:
    """Combine trained members: logits per split (once), test metrics of the combination."""
    if not members:
        raise ValueError("an ensemble needs at least one trained member")
    if method not in METHODS:
        raise ValueError(f"unknown combination {method!r}; expected one of {METHODS}")
    logits = {s: combine_logits([m.logits[s] for m in members], method) for s in SPLITS}
    metrics = evaluate(nn.Identity(), dataset.X_test, dataset.y_test, logits=logits["test"])
    metrics["params"] = sum(param_count(m.model) for m in members)
    metrics["bytes"] = sum(model_bytes(m.model) for m in members)
    planned = len(members) if planned is None else planned
    return Ensemble(list(members), method, logits, metrics, complete=len(members) >= planned, planned=planned)


class EnsembleBuild:
    """Members trained one at a time (`step()`), each through the teacher cache.

    A page keeps this object in its session while members train: after a stop,
    `ensemble()` combines the members finished so far.
    """

    def __init__(self, dataset: Dataset, specs: Sequence[TeacherSpec], method: str, cache: TeacherCache):
        if method not in METHODS:
            raise ValueError(f"unknown combination {method!r}; expected one of {METHODS}")
        if not specs:
            raise ValueError("an ensemble needs at least one member")
        self.dataset, self.specs, self.method, self.cache = dataset, list(specs), method, cache
        self.members: list[TrainedTeacher] = []

    @property
    def done(self) -> bool:
        return len(self.members) >= len(self.specs)

    def next_spec(self) -> TeacherSpec:
        return self.specs[len(self.members)]

    def step(self, callbacks: Iterable[Callable[[EpochLog], bool | None]] = (), stop=None) -> TrainedTeacher:
        """Train (or load) the next member. A member whose training was stopped is not kept."""
        member = self.cache.get_or_train(self.next_spec(), self.dataset, callbacks, stop)
        if member.complete:
            self.members.append(member)
        return member

    def ensemble(self) -> Ensemble | None:
        if not self.members:
            return None
        return make_ensemble(self.members, self.dataset, self.method, planned=len(self.specs))


def build_ensemble(dataset: Dataset, specs: Sequence[TeacherSpec], method: str = "arithmetic",
                   cache: TeacherCache | None = None,
                   callbacks: Iterable[Callable[[int, EpochLog], bool | None]] = ()) -> Ensemble:
    """Train (or load) every member and combine them. A callback gets (member index, epoch log)."""
    build = EnsembleBuild(dataset, specs, method, cache or TeacherCache())
    while not build.done:
        k = len(build.members)
        build.step([lambda log, cb=cb, k=k: cb(k, log) for cb in callbacks])
        if len(build.members) == k:   # stopped by a callback
            break
    return build.ensemble()


@dataclass
class EnsembleDistillResult:
    """The student distilled from the ensemble, its scratch twin, and the student distilled from one member."""

    result: DistillResult                 # distilled-from-ensemble and scratch students
    single: nn.Module                     # same student, same init, distilled from `single_member` alone
    single_history: History
    single_metrics: dict                  # test metrics (agreement / KL against the ensemble)
    single_member: str                    # which member taught it
    ensemble_metrics: dict
    ensemble_name: str
    stopped_early: bool = False
    extra: dict = field(default_factory=dict)

    def rows(self) -> list[dict]:
        r = self.result
        return [
            {"model": "student distilled from the ensemble", "role": "distilled", **r.distilled_metrics},
            {"model": f"student distilled from {self.single_member}", "role": "single", **self.single_metrics},
            {"model": "student on labels alone (scratch)", "role": "scratch", **r.scratch_metrics},
        ]

    def summary(self) -> str:
        d = 100 * self.result.distilled_metrics["accuracy"]
        s1 = 100 * self.single_metrics["accuracy"]
        sc = 100 * self.result.scratch_metrics["accuracy"]
        vs_single = d - s1
        if abs(vs_single) < 0.05:
            a = f"Distilling from the ensemble or from one member made no difference ({d:.1f} %)."
        elif vs_single > 0:
            a = (f"The student distilled from the ensemble is {vs_single:.1f} points better than the same "
                 f"student distilled from one member ({d:.1f} % vs {s1:.1f} %).")
        else:
            a = (f"Here the ensemble was no better a teacher: its student is {-vs_single:.1f} points worse "
                 f"than the same student distilled from one member ({d:.1f} % vs {s1:.1f} %).")
        return a + f" On labels alone the student reaches {sc:.1f} %."


class EnsembleDistillRun:
    """`DistillRun` from the ensemble's soft targets, plus the same student distilled from one member.

    All three students (from the ensemble, from one member, scratch) start from the same
    initialization and see the same batch order; one epoch of each per `step()`.
    """

    def __init__(self, dataset: Dataset, ensemble: Ensemble, student: ModelConfig, train: TrainConfig,
                 kd: KDConfig, seed: int = 0, single_index: int = 0):
        if not 0 <= single_index < ensemble.n_members:
            raise ValueError("the single-member teacher must be one of the members")
        self.dataset, self.ensemble, self.kd, self.seed = dataset, ensemble, kd, seed
        self.train = train
        self.run = DistillRun(dataset, ensemble.soft_targets(kd.temperature), ensemble.metrics, student,
                              train, kd, seed)
        member = ensemble.members[single_index]
        self.single_member = f"member {single_index + 1} ({describe_member(member.spec)})"
        self.single_teacher_logits = member.logits
        self.single = copy.deepcopy(self.run.scratch)   # the shared init, before any step
        self._t_single = Trainer(self.single, dataset.X_train, transfer_labels(dataset, kd.labelled_fraction, seed),
                                 train, seed, teacher_logits=member.logits["train"], temperature=kd.temperature,
                                 alpha=kd.alpha, loss=kd.loss, X_val=dataset.X_val, y_val=dataset.y_val,
                                 name="single")
        self.single_history = History()

    @property
    def epoch(self) -> int:
        return self.run.epoch

    @property
    def done(self) -> bool:
        return self.run.done

    def step(self) -> tuple[EpochLog, EpochLog, EpochLog]:
        """One more epoch of each student: (from the ensemble, scratch, from one member)."""
        log_d, log_s = self.run.step()
        log_1 = self._t_single.run_epoch()
        self.single_history.logs.append(log_1)
        return log_d, log_s, log_1

    def curves(self) -> dict[str, list[dict]]:
        return {"from ensemble": self.run.distilled_history.to_records(),
                "from one member": self.single_history.to_records(),
                "scratch": self.run.scratch_history.to_records()}

    def result(self) -> EnsembleDistillResult:
        ds = self.dataset
        res = self.run.result()
        self.single_history.stopped_early = not self.done
        logits = predict_logits(self.single, ds.X_test)
        single_metrics = evaluate(self.single, ds.X_test, ds.y_test, self.ensemble.logits["test"], logits)
        # agreement with the member that taught it, too
        single_metrics["agreement_member"] = agreement(logits, self.single_teacher_logits["test"])
        single_metrics["kl_member"] = mean_kl(self.single_teacher_logits["test"], logits)
        return EnsembleDistillResult(res, self.single.eval(), self.single_history, single_metrics,
                                     self.single_member, self.ensemble.metrics, self.ensemble.describe(),
                                     stopped_early=not self.done)


def distill_from_ensemble(dataset: Dataset, ensemble: Ensemble, student: ModelConfig, train: TrainConfig,
                          kd: KDConfig, seed: int = 0, single_index: int = 0) -> EnsembleDistillResult:
    """Run `EnsembleDistillRun` to the end."""
    return drive(EnsembleDistillRun(dataset, ensemble, student, train, kd, seed, single_index))[0]
