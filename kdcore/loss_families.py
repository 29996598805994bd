"""More ways to distill, compared on the same student: labels only, KD, decoupled KD, FitNets hints,
and KD from a teacher trained with a class-distance term.

- `FeatureTap`: a forward hook keeping the input of a module (for an MLP's last Linear: the
  penultimate features, the hidden layer the hint and class-distance losses act on).
- `HintStudent`: a student plus the FitNets regressor (a Linear from the student's hidden width
  to the teacher's); its forward is the student's, so it trains with the ordinary `Trainer`
  (the hint term enters through `Trainer(extra_loss=...)`) and `.student` is what is kept.
- `train_class_distance_teacher`: a teacher of the given spec trained with
  CE + λ·`class_distance_loss` on its penultimate features (our reading of Kim et al.'s abstract).
- `LossFamilyRun`: for each seed, one student initialization copied to every method, trained
  with the same batch order (one `Trainer` seed) on the same transfer labels; one (seed, method)
  per `step()`, the class-distance teacher first when that method is asked for. `table()` gives
  mean ± std test accuracy per method with its formula and paper (`LOSS_FAMILIES`).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Sequence

import torch
from torch import nn

from kdcore.data import Dataset
from kdcore.distill import KDConfig, transfer_labels
from kdcore.losses import class_distance_loss, hint_loss
from kdcore.metrics import evaluate
from kdcore.models import ModelConfig, build_model
from kdcore.teachers import TeacherSpec
from kdcore.train import TrainConfig, Trainer, fit, predict_logits, seeded_model
from kdcore.runs import drive

LOSS_FAMILIES = {
    "labels": {"name": "labels only (cross-entropy)", "formula": "CE(y, softmax(s))",
               "paper": "—"},
    "kd": {"name": "KD", "formula": "α·T²·KL(p_T ‖ q_T) + (1 − α)·CE",
           "paper": "Hinton, Vinyals & Dean 2015, arXiv:1503.02531"},
    "dkd": {"name": "decoupled KD", "formula": "α_kd·T²·(α·TCKD + β·NCKD) + (1 − α_kd)·CE; "
                                             "KL = TCKD + (1 − p_t)·NCKD",
            "paper": "Zhao et al., CVPR 2022, arXiv:2203.08679"},
    "hints": {"name": "KD + FitNets hints", "formula": "KD + λ·½‖W_r h_s + b_r − h_t‖² / D_t",
              "paper": "Romero et al., ICLR 2015, arXiv:1412.6550"},
    "hints_first": {"name": "FitNets hints, then KD", "formula": "stage 1: ½‖W_r h_s + b_r − h_t‖² / D_t on the "
                    "student's first layer; stage 2: KD", "paper": "Romero et al., ICLR 2015, arXiv:1412.6550"},
    "cd_teacher": {"name": "KD from a class-distance teacher",
                   "formula": "teacher: CE + λ·(‖f − c_y‖²/D + μ·mean_k≠y max(0, m − ‖f − c_k‖/√D)²); student: KD",
                   "paper": "Kim, Park & Kwak, ICLR 2017 workshop (our reading of the abstract)"},
}
DEFAULT_METHODS = ("labels", "kd", "dkd", "hints", "cd_teacher")


class FeatureTap:
    """Keeps the input of `module` at every forward (train and eval): `features`."""

    def __init__(self, module: nn.Module):
        self.features: torch.Tensor | None = None
        self.handle = module.register_forward_hook(self._hook)

    def _hook(self, _module, inputs, _output):
        self.features = inputs[0]

    def remove(self) -> None:
        self.handle.remove()


def last_linear(model: nn.Module) -> nn.Linear:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("the model has no Linear layer")
    return linears[-1]


@torch.no_grad()
def penultimate_features(model: nn.Module, X: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """The input of the model's last Linear layer for all of X (eval mode: dropout off)."""
    tap = FeatureTap(last_linear(model))
    was = model.training
    model.eval()
    try:
        out = []
        for i in range(0, len(X), batch_size):
            model(X[i:i + batch_size])
            out.append(tap.features.detach().cpu())
        return torch.cat(out)
    finally:
        tap.remove()
        model.train(was)


class HintStudent(nn.Module):
    """A student and its FitNets regressor r(h) = W_r h + b_r (student hidden width → teacher's)."""

    def __init__(self, student: nn.Module, teacher_width: int):
        super().__init__()
        self.student = student
        self.regressor = nn.Linear(last_linear(student).in_features, teacher_width)
        self.tap = FeatureTap(last_linear(student))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.student(x)

    def hint_term(self, teacher_hidden: torch.Tensor) -> torch.Tensor:
        """½‖r(h_s) − h_t‖² per batch mean, divided by the teacher's width D_t."""
        return hint_loss(self.tap.features, teacher_hidden, self.regressor) / teacher_hidden.shape[1]


# ---------------------------------------------------------------- class-distance teacher

@dataclass(frozen=True)
class ClassDistanceConfig:
    weight: float = 1.0          # λ: weight of the class-distance term beside the cross-entropy
    margin: float = 1.0          # m: distance (per √D) under which another class's centre is pushed away
    push_weight: float = 1.0     # μ: weight of the push term inside the class-distance loss

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ClassDistanceTeacher:
    """A teacher trained with the class-distance term (its own run kind, so a comparison reuses it)."""
    model: nn.Module                       # eval mode
    logits: dict[str, torch.Tensor]        # split -> logits
    metrics: dict                          # test metrics


def train_class_distance_teacher(spec: TeacherSpec, dataset: Dataset, config: ClassDistanceConfig = ClassDistanceConfig()
                                 ) -> tuple[nn.Module, dict[str, torch.Tensor], dict]:
    """A teacher of `spec` trained on CE + λ·class_distance_loss(penultimate features, labels).
    Returns (model in eval mode, logits per split, test metrics)."""
    model = seeded_model(lambda: build_model(spec.model, dataset.input_shape, dataset.n_classes), spec.seed)
    tap = FeatureTap(last_linear(model))

    def extra(_m, _idx, yb):
        return config.weight * class_distance_loss(tap.features, yb, config.margin, config.push_weight)

    try:
        fit(model, dataset.X_train, dataset.y_train, spec.train, spec.seed, X_val=dataset.X_val,
            y_val=dataset.y_val, name="class-distance teacher", extra_loss=extra)
    finally:
        tap.remove()
    model.eval()
    logits = {s: predict_logits(model, getattr(dataset, f"X_{s}")) for s in ("train", "val", "test")}
    return model, logits, evaluate(model, dataset.X_test, dataset.y_test, logits=logits["test"])


def cluster_quality(features: torch.Tensor, y: torch.Tensor) -> float:
    """Mean distance to the nearest other class centre over mean distance to the own centre (higher =
    more clustered), on penultimate features: the property the class-distance term aims at."""
    classes = torch.unique(y)
    centres = torch.stack([features[y == c].mean(0) for c in classes])
    d = torch.cdist(features, centres)
    own = d.gather(1, torch.searchsorted(classes, y)[:, None]).squeeze(1)
    d_other = d.scatter(1, torch.searchsorted(classes, y)[:, None], math.inf).amin(1)
    return float(d_other.mean() / own.mean().clamp_min(1e-12))


# ---------------------------------------------------------------- the comparison

@dataclass
class FamilyRow:
    method: str
    seed: int
    accuracy: float
    metrics: dict
    seconds: float


@dataclass
class LossFamilyResult:
    rows: list[FamilyRow]
    teacher_metrics: dict
    cd_teacher_metrics: dict | None
    cluster_quality: dict = field(default_factory=dict)   # 'teacher' / 'cd_teacher' -> ratio on test features
    settings: dict = field(default_factory=dict)

    def table(self) -> list[dict]:
        out = []
        for m in dict.fromkeys(r.method for r in self.rows):
            accs = [100 * r.accuracy for r in self.rows if r.method == m]
            info = LOSS_FAMILIES[m]
            out.append({"method": info["name"], "key": m, "seeds": len(accs),
                        "test accuracy mean (%)": statistics.mean(accs),
                        "std (points)": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                        "per seed (%)": " / ".join(f"{a:.1f}" for a in accs),
                        "formula": info["formula"], "paper": info["paper"]})
        return out


class LossFamilyRun:
    """The loss families on one student, same initialization and batches per seed; one student per step.

    teacher_model / teacher_logits / teacher_metrics: the (cached) teacher; kd: T, α and the
    labelled fraction of the transfer set (hidden labels are −1 for every method); the
    DKD term uses `dkd_weights` (α, β) in place of KD's soft term; hints add
    λ = `hint_weight` times the per-width hint loss on the teacher's penultimate features.
    `teacher_spec` is needed for the class-distance teacher (same architecture and schedule).
    """

    def __init__(self, dataset: Dataset, teacher_model: nn.Module, teacher_logits: dict[str, torch.Tensor],
                 teacher_metrics: dict, student: ModelConfig, train: TrainConfig, kd: KDConfig,
                 seeds: Sequence[int] = (0, 1, 2), methods: Sequence[str] = DEFAULT_METHODS,
                 dkd_weights: tuple[float, float] = (1.0, 8.0), hint_weight: float = 1.0, hint_epochs: int = 10,
                 teacher_spec: TeacherSpec | None = None, class_distance: ClassDistanceConfig = ClassDistanceConfig(),
                 cd_teacher: ClassDistanceTeacher | None = None):
        unknown = [m for m in methods if m not in LOSS_FAMILIES]
        if unknown:
            raise ValueError(f"unknown methods {unknown}; expected some of {list(LOSS_FAMILIES)}")
        if "cd_teacher" in methods and teacher_spec is None and cd_teacher is None:
            raise ValueError("the class-distance teacher needs the teacher's spec")
        self.dataset, self.teacher_logits, self.teacher_metrics = dataset, teacher_logits, teacher_metrics
        self.teacher_model = teacher_model
        self.student, self.train, self.kd = student, train, kd
        self.seeds, self.methods = list(seeds), list(methods)
        self.dkd_weights, self.hint_weight, self.hint_epochs = tuple(dkd_weights), hint_weight, hint_epochs
        self.teacher_spec, self.class_distance = teacher_spec, class_distance
        self.queue = [(s, m) for s in self.seeds for m in self.methods]
        self.rows: list[FamilyRow] = []
        # given (trained by its own run, reused across comparisons), or trained by the first step
        self.cd_teacher: tuple[nn.Module, dict, dict] | None = \
            (cd_teacher.model, cd_teacher.logits, cd_teacher.metrics) if cd_teacher is not None else None
        self._hidden = None

    @property
    def total_steps(self) -> int:
        return len(self.queue) + int("cd_teacher" in self.methods)

    @property
    def steps_done(self) -> int:
        return len(self.rows) + int(self.cd_teacher is not None)

    @property
    def done(self) -> bool:
        return self.steps_done >= self.total_steps

    def _teacher_hidden(self) -> torch.Tensor:
        if self._hidden is None:
            self._hidden = penultimate_features(self.teacher_model, self.dataset.X_train)
        return self._hidden

    def _hint_stage(self, hs: HintStudent, seed: int) -> None:
        """FitNets stage 1: the student's layers up to its hidden layer and the regressor, on the hint alone."""
        ds, cfg = self.dataset, self.train
        th = self._teacher_hidden()
        # the student's last layer gets no gradient from the hint: AdamW leaves it as initialized
        opt = torch.optim.AdamW(hs.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        g = torch.Generator().manual_seed(seed + 10_000)
        hs.train()
        for _ in range(self.hint_epochs):
            perm = torch.randperm(len(ds.X_train), generator=g)
            for i in range(0, len(perm), cfg.batch_size):
                idx = perm[i:i + cfg.batch_size]
                hs(ds.X_train[idx])
                loss = hs.hint_term(th[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

    def step(self) -> FamilyRow | dict:
        """Train the class-distance teacher (first, when asked for) or the next (seed, method) student."""
        if self.done:
            raise RuntimeError("the comparison is complete")
        ds, kd = self.dataset, self.kd
        if "cd_teacher" in self.methods and self.cd_teacher is None:
            self.cd_teacher = train_class_distance_teacher(self.teacher_spec, ds, self.class_distance)
            return self.cd_teacher[2]
        seed, method = self.queue[len(self.rows)]
        t0 = time.perf_counter()
        y = transfer_labels(ds, kd.labelled_fraction, seed)
        init = seeded_model(lambda: build_model(self.student, ds.input_shape, ds.n_classes), seed)
        model: nn.Module = init
        kw: dict = dict(temperature=kd.temperature, alpha=kd.alpha, teacher_logits=self.teacher_logits["train"])
        if method == "labels":
            kw = dict(loss="ce")
        elif method == "dkd":
            kw.update(loss="dkd", dkd_weights=self.dkd_weights)
        elif method in ("hints", "hints_first"):
            th = self._teacher_hidden()
            model = HintStudent(init, th.shape[1])
            with torch.no_grad():   # the regressor's own seeded initialization
                model.regressor.load_state_dict(seeded_model(lambda: nn.Linear(model.regressor.in_features,
                                                                               th.shape[1]), seed).state_dict())
            if method == "hints":
                weight = self.hint_weight
                kw.update(loss="kd", extra_loss=lambda m, idx, yb: weight * m.hint_term(th[idx.cpu()].to(idx.device)))
            else:
                self._hint_stage(model, seed)
                kw.update(loss="kd")
        elif method == "cd_teacher":
            kw.update(loss="kd", teacher_logits=self.cd_teacher[1]["train"])
        trainer = Trainer(model, ds.X_train, y, self.train, seed, X_val=ds.X_val, y_val=ds.y_val, name=method, **kw)
        for _ in range(self.train.epochs):
            trainer.run_epoch()
        student = model.student if isinstance(model, HintStudent) else model
        if isinstance(model, HintStudent):
            model.tap.remove()
        student.eval()
        metrics = evaluate(student, ds.X_test, ds.y_test, self.teacher_logits["test"])
        row = FamilyRow(method, seed, metrics["accuracy"], metrics, time.perf_counter() - t0)
        self.rows.append(row)
        return row

    def run(self) -> LossFamilyResult:
        return drive(self)[0]

    def result(self) -> LossFamilyResult:
        cq = {}
        ds = self.dataset
        cq["teacher"] = cluster_quality(penultimate_features(self.teacher_model, ds.X_test), ds.y_test)
        if self.cd_teacher is not None:
            cq["cd_teacher"] = cluster_quality(penultimate_features(self.cd_teacher[0], ds.X_test), ds.y_test)
        settings = {"student": self.student.describe(), "epochs": self.train.epochs, "T": self.kd.temperature,
                    "alpha": self.kd.alpha, "labelled fraction": self.kd.labelled_fraction,
                    "dkd (α, β)": self.dkd_weights, "hint weight": self.hint_weight,
                    "class distance": self.class_distance.to_dict()}
        return LossFamilyResult(list(self.rows), self.teacher_metrics,
                                self.cd_teacher[2] if self.cd_teacher else None, cq, settings)


def beats_plain_kd(table: Sequence[dict]) -> bool:
    """Whether some loss beats plain KD by more than the seed-to-seed spread, over at least 2 seeds
    (the case `verdict` reports as a win)."""
    by = {r["key"]: r for r in table}
    others = [r for r in table if r["key"] != "kd"]
    if "kd" not in by or not others or min(r["seeds"] for r in table) < 2:
        return False
    kd = by["kd"]
    best = max(others, key=lambda r: r["test accuracy mean (%)"])
    return best["test accuracy mean (%)"] - kd["test accuracy mean (%)"] > math.hypot(best["std (points)"],
                                                                                      kd["std (points)"])


def verdict(table: Sequence[dict]) -> str:
    """One honest sentence on a `LossFamilyResult.table()`: is anything better than plain KD,
    beyond the seed-to-seed spread (the root of the sum of the two variances)?"""
    if not table:
        return "Nothing has finished yet."
    by = {r["key"]: r for r in table}
    n = min(r["seeds"] for r in table)
    if "kd" not in by:
        best = max(table, key=lambda r: r["test accuracy mean (%)"])
        return (f"{best['method']} is best of those tried ({best['test accuracy mean (%)']:.1f} %); "
                "add plain KD to compare with it.")
    kd = by["kd"]
    others = [r for r in table if r["key"] != "kd"]
    if not others:
        return f"Only plain KD was run ({kd['test accuracy mean (%)']:.1f} %): add other losses to compare."
    best = max(others, key=lambda r: r["test accuracy mean (%)"])
    diff = best["test accuracy mean (%)"] - kd["test accuracy mean (%)"]
    spread = math.hypot(best["std (points)"], kd["std (points)"])
    if diff > 0 and n < 2:
        out = (f"{best['method']} is {diff:.1f} points ahead of plain KD on a single seed, which says little: "
               "run more seeds before believing it.")
    elif diff > spread:
        out = (f"{best['method']} beats plain KD by {diff:.1f} points ({best['test accuracy mean (%)']:.1f} % against "
               f"{kd['test accuracy mean (%)']:.1f} %), more than the seed-to-seed spread ({spread:.1f}).")
    else:
        out = (f"Plain KD is as good as anything tried here: the best alternative, {best['method']}, is "
               f"{diff:+.1f} points from it, within the seed-to-seed spread ({spread:.1f} points, {n} seeds).")
    labels = by.get("labels")
    if labels is not None and labels["test accuracy mean (%)"] >= kd["test accuracy mean (%)"]:
        out += " Plain KD is also no better than labels alone in this setting."
    return out
