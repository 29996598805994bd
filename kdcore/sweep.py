"""Hyperparameter sweeps: many distilled students trained at once as one batched model.

A small student's training time is Python and kernel-launch overhead, not
arithmetic. `BatchedKD` trains K students of the same architecture (an MLP)
with different temperature, alpha and seed as ONE model whose parameters are
stacked along a leading K axis (`torch.bmm`), so a step costs about as much as
one student's step.

Each student is exactly what `kdcore.train.Trainer(loss="kd")` would make of it
alone (as in `kdcore.distill.DistillRun`, the reference single distillation):

- same initialization: `seeded_model(build_model(...), seed)`, then stacked;
- same transfer labels: `transfer_labels(ds, fraction, seed)`;
- same batch order: one `torch.Generator().manual_seed(seed)` per distinct seed
  drawing `randperm` per epoch (students that share a seed share the draw);
- same loss: `kd_loss` per student, with its own T and alpha;
- same optimizer: the total loss is the SUM over students of each student's
  mean loss, so each student's gradient is its own; AdamW (and SGD) are
  elementwise, so one optimizer over the stacked tensors keeps exactly the
  per-student moment estimates K separate optimizers would keep; the cosine
  learning rate is the same function of the step for all.

`tests/test_sweep.py` checks the final weights against K separate Trainer runs.

A grid (`SweepConfig`) is T values × alpha values × widths × seeds per cell;
students of equal width form one batched group. `run_sweep` trains the groups
through a backend: `InProcessBackend` (default) or `RayBackend` (optional,
`pip install ray`), which spreads chunks of the groups over a Ray cluster's
workers. Architectures the batched model does not cover (CNNs, dropout) train
one by one with `Trainer` (`LoopBackend` does that for any grid; it is also the
"one at a time" reference of the benchmark).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from kdcore.data import Dataset
from kdcore.distill import hard_labels, soft_targets_verdict, transfer_labels
from kdcore.losses import IGNORE_LABEL
from kdcore.metrics import evaluate
from kdcore.models import ModelConfig, build_model
from kdcore.train import (EpochLog, History, TrainConfig, Trainer, jitter_images, make_optimizer, predict_logits,
                          scheduled_lr, seeded_model, skeleton_model)


# ---------------------------------------------------------------- specs and configs

from kdcore.inputs import MAX_WIDTH   # widest student a sweep trains (4096: wider ones take minutes and gigabytes)
MAX_TEMPERATURE = 1000.0   # hottest T (beyond it every soft target is uniform to float precision)

@dataclass(frozen=True)
class StudentSpec:
    """One student of a sweep: the hyperparameters that vary across the grid."""
    width: int              # hidden width of each hidden layer
    temperature: float      # T of the soft targets
    alpha: float            # weight of the soft term (1 - alpha weights the labels' CE)
    seed: int               # initialization, batch order and which labels are kept
    control: str = ""       # "" a distilled student; "hard": the teacher's-hard-labels control (CE on the
                            # teacher's argmax over the whole transfer set); "labels": labels only (α = 0)

    @property
    def cell(self) -> tuple[int, float, float]:
        """The grid cell: students differing only by seed share it."""
        return (self.width, self.temperature, self.alpha)

    def label(self) -> str:
        if self.control:
            return f"width {self.width}, {CONTROL_LABELS[self.control]}, seed {self.seed}"
        return f"width {self.width}, T={self.temperature:g}, α={self.alpha:g}, seed {self.seed}"


# the grid's controls (T-independent: trained with α = 0, T = 1), by StudentSpec.control
CONTROL_LABELS = {"hard": "teacher's hard labels", "labels": "labels only (α=0)"}


@dataclass(frozen=True)
class SweepConfig:
    temperatures: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)   # T values (columns of the heatmap)
    alphas: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)           # α values (rows of the heatmap)
    widths: tuple[int, ...] = (16,)         # student hidden widths; equal widths train as one batched group
    depth: int = 1                          # hidden layers of every student
    seeds_per_cell: int = 1                 # students per (T, α, width) cell, seeds base_seed, base_seed+1, ...
    base_seed: int = 0                      # first seed (the app uses the sidebar's seed)
    labelled_fraction: float = 0.1          # share of transfer-set labels the students may use (digits default)
    controls: bool = False                  # also train, per width and seed, the "teacher's hard labels" and
                                            # "labels only" controls in the same batched model
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=30, batch_size=64, lr=1e-2))
    # ^ the digits student's defaults (kdcore.presets)

    def __post_init__(self):
        object.__setattr__(self, "temperatures", tuple(float(t) for t in self.temperatures))
        object.__setattr__(self, "alphas", tuple(float(a) for a in self.alphas))
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        if not self.temperatures or not self.alphas or not self.widths:
            raise ValueError("a sweep needs at least one temperature, one alpha and one width")
        if any(not 0 < t <= MAX_TEMPERATURE for t in self.temperatures):   # also refuses inf and NaN
            raise ValueError(f"temperatures must be positive and at most {MAX_TEMPERATURE:g} "
                             "(an infinite T makes every soft target uniform and the loss NaN)")
        if any(not 0.0 <= a <= 1.0 for a in self.alphas):
            raise ValueError("alpha values must be between 0 and 1")
        if any(w < 1 for w in self.widths) or self.depth < 1:
            raise ValueError("widths and depth must be at least 1")
        if any(w > MAX_WIDTH for w in self.widths):
            raise ValueError(f"student widths must be at most {MAX_WIDTH} (a student that wide is bigger "
                             "than the teacher, and it trains for minutes)")
        if self.seeds_per_cell < 1:
            raise ValueError("at least one seed per cell")
        if not 0.0 < self.labelled_fraction <= 1.0:
            raise ValueError("the labelled fraction must be in (0, 1]")
        for name in ("temperatures", "alphas", "widths"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(f"repeated values in {name}")

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(self.base_seed + r for r in range(self.seeds_per_cell))

    @property
    def n_students(self) -> int:
        return len(self.temperatures) * len(self.alphas) * len(self.widths) * self.seeds_per_cell

    @property
    def n_total(self) -> int:
        """Students trained, the controls included."""
        return self.n_students + len(self.control_students())

    def model_config(self, width: int, base: ModelConfig | None = None) -> ModelConfig:
        base = base or ModelConfig()
        return replace(base, hidden=(int(width),) * self.depth)

    def students(self) -> list[StudentSpec]:
        return [StudentSpec(w, t, a, s) for w in self.widths for a in self.alphas
                for t in self.temperatures for s in self.seeds]

    def control_students(self) -> list[StudentSpec]:
        """The controls (none unless `controls`): per width and seed, the teacher's hard labels and
        labels only, both with α = 0 (so T = 1 is a placeholder: it does not enter their loss)."""
        if not self.controls:
            return []
        return [StudentSpec(w, 1.0, 0.0, s, control=c) for w in self.widths for c in CONTROL_LABELS
                for s in self.seeds]

    def groups(self) -> dict[int, list[StudentSpec]]:
        """Students by width (controls included): each list trains as one batched model."""
        out: dict[int, list[StudentSpec]] = {}
        for s in self.students() + self.control_students():
            out.setdefault(s.width, []).append(s)
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        d["train"] = self.train.to_dict()
        return d


def batchable(model_cfg: ModelConfig) -> bool:
    """Whether `BatchedKD` can stack this architecture (an MLP without dropout)."""
    return model_cfg.arch == "mlp" and not model_cfg.dropout and not model_cfg.input_dropout


# ---------------------------------------------------------------- the batched model

class StackedMLP(nn.Module):
    """K MLPs of identical shape with parameters stacked on a leading K axis.

    weights[l]: (K, out, in), biases[l]: (K, out), the layout of `nn.Linear`, so
    student k's `state_dict` is a slice. Input x: (B, D) shared by all students or
    (K, B, D), one batch per student; output logits (K, B, C).
    """

    def __init__(self, models: Sequence[nn.Sequential]):
        super().__init__()
        linears = [[m for m in model if isinstance(m, nn.Linear)] for model in models]
        if not linears or any(len(ls) != len(linears[0]) for ls in linears):
            raise ValueError("stacked students must have the same architecture")
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([ls[i].weight.detach() for ls in linears]).clone())
            for i in range(len(linears[0])))
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([ls[i].bias.detach() for ls in linears]).clone())
            for i in range(len(linears[0])))
        self.k = len(models)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x   # inputs already flattened: (B, D) or (K, B, D)
        n = len(self.weights)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            if h.dim() == 2:   # shared input: one matmul for all students, (B, D) @ (D, K*out)
                out = torch.addmm(b.reshape(1, -1), h, w.reshape(-1, w.shape[-1]).t())
                h = out.reshape(h.shape[0], self.k, -1).transpose(0, 1)
            else:
                h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
            if i < n - 1:
                h = torch.relu(h)
        return h

    def unstack(self, k: int, model_cfg: ModelConfig, input_shape, n_classes: int) -> nn.Sequential:
        """Student k as an ordinary `nn.Sequential` (a copy)."""
        model = skeleton_model(lambda: build_model(model_cfg, input_shape, n_classes))
        linears = [m for m in model if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for lin, w, b in zip(linears, self.weights, self.biases):
                lin.weight.copy_(w[k])
                lin.bias.copy_(b[k])
        return model.eval()


def batched_kd_loss(logits: torch.Tensor, teacher: torch.Tensor, y: torch.Tensor,
                    temperature: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Per-student `kd_loss` (Hinton, Vinyals & Dean 2015), shape (K,):

        L_k = α_k · mean_b T_k² · KL(softmax(t_b/T_k) ‖ softmax(s_kb/T_k))
              + (1 − α_k) · Σ_b CE(y_kb, s_kb)·[y_kb labelled] / #labelled_k

    logits (K, B, C); teacher (B, C) or (K, B, C); y (B,) or (K, B) with -1 for a
    hidden label; temperature, alpha (K,). The same formula as `kd_loss` with
    float T and α, student by student.
    """
    T = temperature.to(logits.dtype).reshape(-1, 1, 1)
    log_p = torch.log_softmax(teacher / T, dim=-1)            # broadcasts a shared teacher over K
    log_q = torch.log_softmax(logits / T, dim=-1)
    soft = (log_p.exp() * (log_p - log_q)).sum(-1) * T.reshape(-1, 1) ** 2   # (K, B)
    y = y.expand(logits.shape[:2])
    labelled = y != IGNORE_LABEL
    ce = F.cross_entropy(logits.transpose(1, 2), y.clamp_min(0), reduction="none") * labelled   # (K, B)
    hard = ce.sum(1) / labelled.sum(1).clamp_min(1)
    a = alpha.to(logits.dtype)
    return a * soft.mean(1) + (1 - a) * hard


# what each column of `StudentResult.record()` and `SweepResult.cells()` holds, for tables and axes
COLUMN_LABELS = {
    "width": "hidden width", "T": "T", "alpha": "α", "seed": "seed", "seeds": "seeds",
    "test_acc": "test accuracy (%)", "agreement": "agreement with the teacher (%)",
    "kl_teacher": "KL(teacher ‖ student), nats", "val_acc": "validation accuracy (%)",
    "test_loss": "test loss (cross-entropy, nats)", "params": "parameters", "epochs": "epochs run",
}


def column_label(name: str) -> str:
    """The readable name of a record or cell column ('test_acc_std' -> 'test accuracy (%), std over seeds')."""
    for suffix, words in (("_mean", "mean over seeds"), ("_std", "std over seeds")):
        if name.endswith(suffix) and name[:-len(suffix)] in COLUMN_LABELS:
            return f"{COLUMN_LABELS[name[:-len(suffix)]]}, {words}"
    return COLUMN_LABELS.get(name, name)


@dataclass
class StudentResult:
    """What a sweep keeps of one student: its settings, test metrics and curves."""
    spec: StudentSpec
    metrics: dict                       # test accuracy, loss, agreement, kl_teacher, params, bytes
    history: list[dict]                 # EpochLog records
    state_dict: dict | None = None      # the trained weights (an nn.Sequential's state_dict)
    epochs_run: int = 0

    def record(self) -> dict:
        """A flat row for tables and CSV (accuracies in %)."""
        m = self.metrics
        return {"width": self.spec.width, "T": self.spec.temperature, "alpha": self.spec.alpha,
                "seed": self.spec.seed, "test_acc": 100 * m["accuracy"],
                "agreement": 100 * m.get("agreement", float("nan")), "kl_teacher": m.get("kl_teacher"),
                "val_acc": 100 * self.history[-1]["val_acc"] if self.history else float("nan"),
                "test_loss": m["loss"], "params": m["params"], "epochs": self.epochs_run}


class _StudentGroup:
    """What BatchedKD and LoopKD share: one history per student, and the epoch count read from them."""

    train: TrainConfig
    histories: list[History]

    @property
    def epoch(self) -> int:
        return self.histories[0].epochs_run

    @property
    def done(self) -> bool:
        return self.epoch >= self.train.epochs


class BatchedKD(_StudentGroup):
    """K distilled students of one MLP architecture trained as one stacked model, one epoch per `step()`.

    Each student equals `Trainer(seeded_model(build_model(model_cfg), seed), X_train,
    transfer_labels(ds, fraction, seed), train, seed, teacher_logits, T, alpha, loss="kd")`
    (see the module docstring). `result()` can be called at any time.
    """

    def __init__(self, dataset: Dataset, teacher_logits: dict[str, torch.Tensor], model_cfg: ModelConfig,
                 train: TrainConfig, students: Sequence[StudentSpec], labelled_fraction: float = 0.1,
                 validate: bool = True):
        if not students:
            raise ValueError("no students to train")
        if not batchable(model_cfg):
            raise ValueError(f"{model_cfg.describe()} cannot be batched (MLPs without dropout only); "
                             "use LoopBackend")
        self.dataset, self.teacher_logits, self.model_cfg, self.train = dataset, teacher_logits, model_cfg, train
        self.students = list(students)
        self.labelled_fraction, self.validate = labelled_fraction, validate
        ds = dataset
        self.seeds = sorted({s.seed for s in self.students})
        self._sid = torch.tensor([self.seeds.index(s.seed) for s in self.students])
        self._shared = len(self.seeds) == 1
        self._gens = [torch.Generator().manual_seed(s) for s in self.seeds]
        self._y = torch.stack([transfer_labels(ds, labelled_fraction, s) for s in self.seeds])   # (S, N)
        # label rows per student: its seed's transfer labels, or (the hard-label control) the teacher's
        # argmax on every transfer example, appended as row S
        self._y = torch.cat([self._y, hard_labels(teacher_logits["train"]).unsqueeze(0)])
        self._yid = torch.tensor([len(self.seeds) if s.control == "hard" else self.seeds.index(s.seed)
                                  for s in self.students])
        self._per_student_y = bool((self._yid != self._sid).any())
        inits = [seeded_model(lambda: build_model(model_cfg, ds.input_shape, ds.n_classes), s) for s in self.seeds]
        self.model = StackedMLP([inits[i] for i in self._sid.tolist()])
        self._T = torch.tensor([s.temperature for s in self.students], dtype=torch.float32)
        self._alpha = torch.tensor([s.alpha for s in self.students], dtype=torch.float32)
        self.optimizer = make_optimizer(self.model, train)   # Trainer's optimizer, over the stacked weights
        self._X = ds.X_train.reshape(len(ds.X_train), -1)
        self._t_train = teacher_logits["train"].detach()
        n = len(ds.X_train)
        self.steps_per_epoch = math.ceil(n / train.batch_size)
        self.total_steps = self.steps_per_epoch * train.epochs
        self.step_count = 0
        self.histories = [History() for _ in self.students]

    @property
    def k(self) -> int:
        return len(self.students)

    def _lr(self) -> float:
        return scheduled_lr(self.train, self.step_count, self.total_steps)   # exactly Trainer's schedule

    def step(self) -> list[EpochLog]:
        """Train every student for one more epoch; return their logs (in `students` order)."""
        t0 = time.perf_counter()
        cfg, ds, model = self.train, self.dataset, self.model
        perms = [torch.randperm(len(self._X), generator=g) for g in self._gens]    # (S,) draws, as Trainer
        k = self.k
        total_loss = torch.zeros(k)
        correct = torch.zeros(k)
        n_lab = torch.zeros(k)
        n_batches = 0
        for i in range(0, len(self._X), cfg.batch_size):
            idx = torch.stack([p[i:i + cfg.batch_size] for p in perms])            # (S, B)
            if cfg.jitter and ds.is_image:
                xs = torch.stack([jitter_images(ds.X_train[idx[j]], cfg.jitter, g).reshape(idx.shape[1], -1)
                                  for j, g in enumerate(self._gens)])
            else:
                xs = self._X[idx]                                                    # (S, B, D)
            ts = self._t_train[idx]                                                  # (S, B, C)
            if self._per_student_y:   # a control's labels: its own row, in its seed's batch order
                yb = self._y[self._yid.unsqueeze(1), idx[self._sid]]                 # (K, B)
            else:
                ys = self._y[:len(self.seeds)].gather(1, idx)                        # (S, B)
                yb = ys[0] if self._shared else ys[self._sid]
            if self._shared:
                xb, tb = xs[0], ts[0]
            else:
                xb, tb = xs[self._sid], ts[self._sid]
            lr = self._lr()
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            logits = model(xb)
            losses = batched_kd_loss(logits, tb, yb, self._T, self._alpha)
            self.optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()      # a sum: student k's gradient is that of its own mean loss
            self.optimizer.step()
            self.step_count += 1
            with torch.no_grad():
                total_loss += losses.detach()
                yk = yb.expand(logits.shape[:2])
                lab = yk != IGNORE_LABEL
                correct += ((logits.argmax(-1) == yk) & lab).sum(1)
                n_lab += lab.sum(1)
            n_batches += 1
        self.step_count = self.epoch * self.steps_per_epoch + self.steps_per_epoch
        seconds = time.perf_counter() - t0
        val_loss = val_acc = [float("nan")] * k
        if self.validate and len(ds.X_val):
            with torch.no_grad():
                lv = model(ds.X_val.reshape(len(ds.X_val), -1))
                val_loss = F.cross_entropy(lv.transpose(1, 2), ds.y_val.expand(k, -1), reduction="none") \
                    .mean(1).tolist()
                val_acc = (lv.argmax(-1) == ds.y_val).float().mean(1).tolist()
        train_loss = (total_loss / max(n_batches, 1)).tolist()
        train_acc = (correct / n_lab.clamp_min(1)).tolist()
        logs = []
        epoch = self.epoch + 1   # read once: self.epoch reads the first history, which grows in this loop
        for j, s in enumerate(self.students):
            log = EpochLog(epoch, cfg.epochs, train_loss[j], train_acc[j], val_loss[j], val_acc[j],
                           seconds / k, s.label())
            self.histories[j].logs.append(log)
            logs.append(log)
        return logs

    def student_model(self, j: int) -> nn.Sequential:
        """Student j as an ordinary module (a copy, eval mode)."""
        return self.model.unstack(j, self.model_cfg, self.dataset.input_shape, self.dataset.n_classes)

    @torch.no_grad()
    def test_logits(self) -> torch.Tensor:
        """(K, N_test, C) logits of all students on the test split."""
        X = self.dataset.X_test
        return self.model(X.reshape(len(X), -1))

    def result(self, keep_weights: bool = True) -> list[StudentResult]:
        """Every student evaluated as it is now (all epochs, or fewer after a stop)."""
        ds = self.dataset
        logits = self.test_logits()
        t_test = self.teacher_logits["test"]
        one = skeleton_model(lambda: build_model(self.model_cfg, ds.input_shape, ds.n_classes))   # every student's size
        stopped = not self.done
        out = []
        for j, s in enumerate(self.students):
            self.histories[j].stopped_early = stopped
            metrics = evaluate(one, ds.X_test, ds.y_test, t_test, logits=logits[j])
            sd = self.student_model(j).state_dict() if keep_weights else None
            out.append(StudentResult(s, metrics, self.histories[j].to_records(), sd, self.epoch))
        return out


# ---------------------------------------------------------------- one at a time (reference)

class LoopKD(_StudentGroup):
    """The same students trained one after another with `Trainer` (any architecture).

    The interface of `BatchedKD` (`step`, `done`, `epoch`, `result`): `step()`
    trains every student for one epoch in turn.
    """

    def __init__(self, dataset: Dataset, teacher_logits: dict[str, torch.Tensor], model_cfg: ModelConfig,
                 train: TrainConfig, students: Sequence[StudentSpec], labelled_fraction: float = 0.1,
                 validate: bool = True):
        ds = dataset
        self.dataset, self.teacher_logits, self.model_cfg, self.train = dataset, teacher_logits, model_cfg, train
        self.students = list(students)
        self.models, self.trainers = [], []
        for s in self.students:
            cfg = replace(model_cfg, hidden=(s.width,) * len(model_cfg.hidden))
            m = seeded_model(lambda: build_model(cfg, ds.input_shape, ds.n_classes), s.seed)
            self.models.append(m)
            y = (hard_labels(teacher_logits["train"]) if s.control == "hard"
                 else transfer_labels(ds, labelled_fraction, s.seed))
            self.trainers.append(Trainer(m, ds.X_train, y, train,
                                         s.seed, teacher_logits=teacher_logits["train"],
                                         temperature=s.temperature, alpha=s.alpha, loss="kd",
                                         X_val=ds.X_val if validate else None, y_val=ds.y_val, name=s.label()))
        self.histories = [History() for _ in self.students]

    def step(self) -> list[EpochLog]:
        logs = [tr.run_epoch() for tr in self.trainers]
        for h, log in zip(self.histories, logs):
            h.logs.append(log)
        return logs

    def student_model(self, j: int) -> nn.Module:
        return self.models[j].eval()

    def result(self, keep_weights: bool = True) -> list[StudentResult]:
        ds = self.dataset
        t_test = self.teacher_logits["test"]
        out = []
        for j, s in enumerate(self.students):
            m = self.models[j].eval()
            self.histories[j].stopped_early = not self.done
            metrics = evaluate(m, ds.X_test, ds.y_test, t_test, logits=predict_logits(m, ds.X_test))
            out.append(StudentResult(s, metrics, self.histories[j].to_records(),
                                     {k: v.clone() for k, v in m.state_dict().items()} if keep_weights else None,
                                     self.epoch))
        return out


def make_group(dataset: Dataset, teacher_logits: dict[str, torch.Tensor], config: SweepConfig,
               students: Sequence[StudentSpec], base_model: ModelConfig | None = None,
               batched: bool = True, validate: bool = True) -> BatchedKD | LoopKD:
    """The trainer of one group of equal-width students: batched when the architecture allows."""
    model_cfg = config.model_config(students[0].width, base_model)
    if any(s.width != students[0].width for s in students):
        raise ValueError("a group holds students of one width")
    cls = BatchedKD if batched and batchable(model_cfg) else LoopKD
    return cls(dataset, teacher_logits, model_cfg, config.train, students, config.labelled_fraction, validate)


# ---------------------------------------------------------------- results

@dataclass
class SweepResult:
    config: SweepConfig
    students: list[StudentResult] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False
    backend: str = "in-process"
    controls: list[StudentResult] = field(default_factory=list)   # the controls' students (config.controls)

    def records(self) -> list[dict]:
        return [s.record() for s in self.students]

    def control_cells(self):
        """Mean and spread per (width, control) over seeds, as a DataFrame (accuracies in %)."""
        return _cell_table([{**c.record(), "control": c.spec.control} for c in self.controls], ("width", "control"))

    def split_text(self) -> str:
        """The best cell's gain over labels only, split between the teacher's labels and the soft
        targets beyond them ("" without controls)."""
        best, cc = self.best_cell(), self.control_cells()
        if best is None or cc.empty:
            return ""
        at_w = cc[cc["width"] == best["width"]].set_index("control")["test_acc_mean"]
        if not {"hard", "labels"} <= set(at_w.index):
            return ""
        d, h, l = best["test_acc_mean"], at_w["hard"], at_w["labels"]
        from_soft = d - h
        return (f"Against its controls (width {int(best['width'])}, same initialization and batches): labels only "
                f"reach {l:.1f} %, the teacher's hard labels {h:.1f} %, the best cell {d:.1f} %. Of its "
                f"{d - l:+.1f} points over labels only, {h - l:+.1f} come from the teacher's labels and "
                f"{from_soft:+.1f} from its soft targets beyond them" + soft_targets_verdict(from_soft))

    @property
    def epochs_run(self) -> int:
        """The most epochs any student ran (the configured number unless the sweep was stopped)."""
        return max((s.epochs_run for s in self.students), default=0)

    def epochs_text(self) -> str:
        """'30 epochs', or '2 of 300 epochs (stopped)' (the students of a stopped grid may differ)."""
        from kdcore.text import plural
        n, planned = self.epochs_run, self.config.train.epochs
        if self.stopped_early and n < planned:
            return f"{n} of {plural(planned, 'epoch')} (stopped)"
        return plural(planned, "epoch")

    def student_model(self, student: StudentResult, base: ModelConfig | None, input_shape, n_classes: int):
        """One student's trained network, rebuilt from its stored weights (None if they were not kept)."""
        if student.state_dict is None:
            return None
        from kdcore.models import build_model
        net = skeleton_model(lambda: build_model(self.config.model_config(student.spec.width, base), input_shape,
                                                 n_classes))
        net.load_state_dict(student.state_dict)
        return net.eval()

    def find(self, width: int, temperature: float, alpha: float) -> list[StudentResult]:
        """The students (one per seed) of a cell."""
        return [s for s in self.students if s.spec.cell == (width, float(temperature), float(alpha))]

    def cells(self):
        """Mean and spread per (width, T, α) cell, as a pandas DataFrame (accuracies in %)."""
        return _cell_table(self.records(), ("width", "T", "alpha"))

    def best_cell(self, by: str = "val_acc_mean") -> dict | None:
        """The cell with the best mean validation accuracy (test accuracy is for reporting, not choosing)."""
        cells = self.cells()
        if cells.empty:
            return None
        return cells.sort_values([by, "test_acc_mean"], ascending=False).iloc[0].to_dict()


_STAT_COLUMNS = ("test_acc_mean", "test_acc_std", "agreement_mean", "agreement_std", "val_acc_mean", "seeds")


def _cell_table(rows: list[dict], keys: tuple[str, ...]):
    """Mean and spread over seeds per group of `keys`, sorted by them, as a DataFrame: what pandas'
    `groupby(keys).agg(...)` gives (NaN skipped, std with ddof 1, 0 for a single seed), in a loop over
    the few dozen students of a grid: 0.2 ms for the default grid, where pandas took ~20 ms a call and
    the Sweep page asks five times per rerun."""
    import pandas as pd

    def mean(values):
        values = [v for v in values if v is not None and v == v]
        return sum(values) / len(values) if values else float("nan")

    def std(values):
        values = [v for v in values if v is not None and v == v]
        if len(values) < 2:
            return 0.0
        m = sum(values) / len(values)
        return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))

    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    table: dict[str, list] = {k: [] for k in (*keys, *_STAT_COLUMNS)}
    for key in sorted(groups):
        g = groups[key]
        for k, v in zip(keys, key):
            table[k].append(v)
        for col in ("test_acc", "agreement"):
            table[f"{col}_mean"].append(mean([r[col] for r in g]))
            table[f"{col}_std"].append(std([r[col] for r in g]))
        table["val_acc_mean"].append(mean([r["val_acc"] for r in g]))
        table["seeds"].append(len(g))
    return pd.DataFrame(table)


def _split(result: SweepResult) -> SweepResult:
    """Move the controls' students from `students` (where the groups return them) to `controls`."""
    result.controls = [s for s in result.students if s.spec.control]
    result.students = [s for s in result.students if not s.spec.control]
    return result


# ---------------------------------------------------------------- backends

ProgressFn = Callable[[dict], "bool | None"]
# a progress callback gets {"width", "epoch", "epochs", "done_students", "n_students", "students": [StudentResult]
# (set when a group or chunk finishes), "logs": [EpochLog] (in-process only)} and may return True to stop


def _chunks(students: list[StudentSpec], n: int) -> list[list[StudentSpec]]:
    n = max(1, min(n, len(students)))
    size = math.ceil(len(students) / n)
    return [students[i:i + size] for i in range(0, len(students), size)]


class InProcessSweep:
    """The in-process sweep as a stepped run: one `step()` trains the current width group one epoch.

    Groups train one after another (`make_group`); a group's students are evaluated when its last
    epoch ends. `result()` may be called at any time: the finished groups' students plus, after a
    stop, the current group's students as they are now (fewer epochs).
    """

    def __init__(self, dataset: Dataset, teacher_logits: dict[str, torch.Tensor], config: SweepConfig,
                 base_model: ModelConfig | None = None, batched: bool = True, keep_weights: bool = True):
        self.dataset, self.teacher_logits, self.config = dataset, teacher_logits, config
        self.base_model, self.batched, self.keep_weights = base_model, batched, keep_weights
        self.backend = "in-process" if batched else "one at a time"
        self.pending = list(config.groups().items())   # (width, students) not started yet
        self.students: list[StudentResult] = []        # students of the finished groups
        self.group: BatchedKD | LoopKD | None = None    # the group training now (or that just finished)
        self.width: int | None = None
        self.seconds = 0.0

    @property
    def done(self) -> bool:
        return not self.pending and (self.group is None or self.group.done)

    @property
    def done_students(self) -> int:
        """Students of the groups finished before the current one."""
        n = len(self.students)
        return n - len(self.group.students) if self.group is not None and self.group.done else n

    def step(self) -> list[EpochLog]:
        """One epoch of the current group (starting the next group when the current one is done)."""
        t0 = time.perf_counter()
        if self.group is None or self.group.done:
            self.width, students = self.pending.pop(0)
            self.group = make_group(self.dataset, self.teacher_logits, self.config, students, self.base_model,
                                    self.batched)
        logs = self.group.step()
        if self.group.done:
            self.students += self.group.result(self.keep_weights)
        self.seconds += time.perf_counter() - t0
        return logs

    def result(self) -> SweepResult:
        t0 = time.perf_counter()
        students = list(self.students)
        if self.group is not None and not self.group.done and self.group.epoch > 0:
            students += self.group.result(self.keep_weights)
        self.seconds += time.perf_counter() - t0
        return _split(SweepResult(self.config, students, self.seconds, stopped_early=not self.done,
                                  backend=self.backend))


class InProcessBackend:
    """Trains the groups one after another in this process, epoch by epoch (progress after each)."""
    name = "in-process"

    def __init__(self, batched: bool = True):
        self.batched = batched   # False: train one by one with Trainer (the reference)

    def run(self, dataset: Dataset, teacher_logits: dict[str, torch.Tensor], config: SweepConfig,
            base_model: ModelConfig | None = None, progress: ProgressFn | None = None,
            stop=None, keep_weights: bool = True) -> SweepResult:
        sweep = InProcessSweep(dataset, teacher_logits, config, base_model, self.batched, keep_weights)
        n_total = config.n_total
        while not sweep.done:
            logs = sweep.step()
            group, width = sweep.group, sweep.width
            wants = progress({"width": width, "epoch": group.epoch, "epochs": config.train.epochs,
                              "done_students": sweep.done_students, "n_students": n_total,
                              "logs": logs, "group": group}) if progress else False
            if wants or (stop is not None and stop.is_set()):
                result = sweep.result()
                result.stopped_early = True
                return result
            if group.done and progress:
                progress({"width": width, "epoch": group.epoch, "epochs": config.train.epochs,
                          "done_students": len(sweep.students), "n_students": n_total,
                          "students": sweep.students})
        return sweep.result()


class LoopBackend(InProcessBackend):
    """One student after another with `Trainer`: the reference the batched backend is checked against."""

    def __init__(self):
        super().__init__(batched=False)


def _train_chunk(arrays: dict, config_dict: dict, base_model: dict | None, students: list[dict],
                 threads: int, keep_weights: bool) -> list[StudentResult]:
    """A Ray task: rebuild the dataset view, train one chunk of a group batched, return its results."""
    torch.set_num_threads(threads)
    ds = Dataset(name=arrays["name"], X_train=torch.from_numpy(arrays["X_train"]),
                 y_train=torch.from_numpy(arrays["y_train"]), X_val=torch.from_numpy(arrays["X_val"]),
                 y_val=torch.from_numpy(arrays["y_val"]), X_test=torch.from_numpy(arrays["X_test"]),
                 y_test=torch.from_numpy(arrays["y_test"]), class_names=tuple(arrays["class_names"]),
                 input_shape=tuple(arrays["input_shape"]), is_image=arrays["is_image"], seed=arrays["seed"])
    logits = {k: torch.from_numpy(v) for k, v in arrays["teacher_logits"].items()}
    config = _config_from_dict(config_dict)
    specs = [StudentSpec(**s) for s in students]
    group = make_group(ds, logits, config, specs, ModelConfig.from_dict(base_model) if base_model else None)
    while not group.done:
        group.step()
    return group.result(keep_weights)


def _config_from_dict(d: dict) -> SweepConfig:
    return SweepConfig(**{**d, "train": TrainConfig(**d["train"])})


class RayBackend:
    """The sweep spread over a Ray cluster's workers (optional: `pip install ray`).

    Each width group is cut into `chunks_per_group` chunks of students (each
    chunk still one batched model); chunks run as Ray tasks, one CPU each, and
    results come back as chunks finish. A student's result does not depend on
    which chunk it trains in, so the numbers equal the in-process backend's.

    address: None starts (or reuses) a local Ray instance; "auto" or
    "ray://host:10001" joins a cluster. If Ray is already initialized (e.g. the
    caller ran `ray.init(address=...)`), that connection is used as is.
    On a remote cluster kdcore is shipped to the workers with `py_modules`.
    """
    name = "ray"

    def __init__(self, address: str | None = None, chunks_per_group: int | None = None,
                 threads_per_task: int = 1, init_kwargs: dict | None = None):
        try:
            import ray  # noqa: F401
        except ImportError as err:   # readable for the app and the tests
            raise RuntimeError("The Ray backend needs the optional extra `ray` (pip install ray).") from err
        self.address, self.chunks_per_group = address, chunks_per_group
        self.threads_per_task, self.init_kwargs = threads_per_task, dict(init_kwargs or {})

    def _ensure_init(self):
        import ray
        if ray.is_initialized():
            return
        kdcore_dir = str(Path(__file__).resolve().parent)
        kwargs = {"include_dashboard": False, "log_to_driver": False, **self.init_kwargs}
        if self.address is None:   # a local instance: workers import kdcore from this checkout
            root = str(Path(kdcore_dir).parent)
            pythonpath = os.pathsep.join(p for p in [root, os.environ.get("PYTHONPATH", "")] if p)
            kwargs.setdefault("runtime_env", {"env_vars": {"PYTHONPATH": pythonpath}})
        else:
            kwargs.setdefault("runtime_env", {"py_modules": [kdcore_dir]})
        ray.init(address=self.address, **kwargs)

    def start(self, dataset: Dataset, teacher_logits: dict[str, torch.Tensor], config: SweepConfig,
              base_model: ModelConfig | None = None, keep_weights: bool = True) -> "RaySweep":
        """Submit every chunk as a Ray task; the returned stepped run collects one chunk per `step()`."""
        import ray
        self._ensure_init()
        ds = dataset
        arrays = {"name": ds.name, "X_train": ds.X_train.numpy(), "y_train": ds.y_train.numpy(),
                  "X_val": ds.X_val.numpy(), "y_val": ds.y_val.numpy(), "X_test": ds.X_test.numpy(),
                  "y_test": ds.y_test.numpy(), "class_names": list(ds.class_names),
                  "input_shape": list(ds.input_shape), "is_image": ds.is_image, "seed": ds.seed,
                  "teacher_logits": {k: v.detach().numpy() for k, v in teacher_logits.items()}}
        data_ref = ray.put(arrays)
        n_cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        groups = config.groups()
        per_group = self.chunks_per_group or max(1, math.ceil(n_cpus / len(groups)))
        task = ray.remote(num_cpus=self.threads_per_task)(_train_chunk)
        cfg_dict = config.to_dict()
        base = base_model.to_dict() if base_model else None
        pending = {}
        for width, students in groups.items():
            for chunk in _chunks(students, per_group):
                ref = task.remote(data_ref, cfg_dict, base, [asdict(s) for s in chunk],
                                  self.threads_per_task, keep_weights)
                pending[ref] = width
        return RaySweep(config, pending)

    def run(self, dataset: Dataset, teacher_logits: dict[str, torch.Tensor], config: SweepConfig,
            base_model: ModelConfig | None = None, progress: ProgressFn | None = None,
            stop=None, keep_weights: bool = True) -> SweepResult:
        sweep = self.start(dataset, teacher_logits, config, base_model, keep_weights)
        while not sweep.done:
            width = sweep.step()
            wants = progress({"width": width, "epoch": config.train.epochs, "epochs": config.train.epochs,
                              "done_students": len(sweep.students), "n_students": config.n_total,
                              "students": sweep.students}) if progress else False
            if (wants or (stop is not None and stop.is_set())) and not sweep.done:
                sweep.cancel()
                break
        return sweep.result()


class RaySweep:
    """A Ray sweep in flight: `step()` waits for the next chunk to finish and keeps its students.

    `result()` holds the finished chunks' students in the grid's order; after a stop (`cancel()`),
    the chunks still running are cancelled and the result is marked stopped early.
    """

    def __init__(self, config: SweepConfig, pending: dict):
        self.config, self.pending = config, pending
        self.students: list[StudentResult] = []
        self.t0 = time.perf_counter()
        self.cancelled = False

    @property
    def done(self) -> bool:
        return not self.pending or self.cancelled

    def step(self) -> int:
        """Wait for one chunk; returns its width."""
        import ray
        done, _ = ray.wait(list(self.pending), num_returns=1)
        width = self.pending.pop(done[0])
        self.students += ray.get(done[0])
        return width

    def cancel(self) -> None:
        import ray
        for ref in self.pending:
            ray.cancel(ref)
        self.cancelled = True

    def result(self) -> SweepResult:
        return _split(SweepResult(self.config, in_grid_order(self.config, self.students),
                                  time.perf_counter() - self.t0, stopped_early=bool(self.pending),
                                  backend=RayBackend.name))


def in_grid_order(config: SweepConfig, students: list[StudentResult]) -> list[StudentResult]:
    """Students trained in chunks, back in the grid's order (`config.students()`, then its controls)."""
    order = {s: i for i, s in enumerate(config.students())}
    order.update({s: len(order) + i for i, s in enumerate(config.control_students())})
    return sorted(students, key=lambda s: order[s.spec])


# ---------------------------------------------------------------- chunks as runs of their own

CHUNKS_PER_GROUP = 2   # the job runner's parts per width group: one per worker of the default 2-core pool
# A student's numbers depend only on its own settings, up to float rounding: a batched model of other
# students may round differently (the GEMMs' blocking depends on how many students they stack), ~1e-7
# in a weight, as with the Ray backend's chunks. On the default digits grid the two halves equal the
# whole group bit for bit. The chunks are a function of the grid alone: the same grid, the same numbers.


def sweep_chunks(config: SweepConfig) -> list[list[StudentSpec]]:
    """The grid cut into the chunks the job runner trains side by side: each width group in
    `CHUNKS_PER_GROUP` parts, each still one batched model."""
    return [chunk for students in config.groups().values() for chunk in _chunks(students, CHUNKS_PER_GROUP)]


@dataclass
class ChunkResult:
    """A chunk's students, evaluated, and how long it trained."""
    students: list[StudentResult]
    seconds: float = 0.0


class SweepChunk:
    """One chunk of a sweep (a list of equal-width students) as a stepped run: one epoch per `step()`."""

    def __init__(self, dataset: Dataset, teacher_logits: dict[str, torch.Tensor], config: SweepConfig,
                 students: Sequence[StudentSpec], base_model: ModelConfig | None = None):
        self.group = make_group(dataset, teacher_logits, config, students, base_model)
        self.seconds = 0.0

    @property
    def done(self) -> bool:
        return self.group.done

    def step(self) -> list[EpochLog]:
        t0 = time.perf_counter()
        logs = self.group.step()
        self.seconds += time.perf_counter() - t0
        return logs

    def result(self) -> ChunkResult:
        t0 = time.perf_counter()
        students = self.group.result() if self.group.epoch > 0 else []   # untrained: nothing to keep
        return ChunkResult(students, self.seconds + time.perf_counter() - t0)


def assemble_sweep(config: SweepConfig, chunks: list[ChunkResult]) -> SweepResult:
    """The `SweepResult` of a grid trained in chunks (side by side: its time is the longest chunk's);
    stopped early when a chunk is missing or stopped before its last epoch."""
    students = [s for c in chunks for s in c.students]
    stopped = len(students) < config.n_total or any(s.epochs_run < config.train.epochs for s in students)
    return _split(SweepResult(config, in_grid_order(config, students), max((c.seconds for c in chunks), default=0.0),
                              stopped_early=stopped, backend="in-process"))


def run_sweep(dataset: Dataset, teacher_logits: dict[str, torch.Tensor], config: SweepConfig,
              backend=None, base_model: ModelConfig | None = None, progress: ProgressFn | None = None,
              stop=None, keep_weights: bool = True) -> SweepResult:
    """Train every student of `config` (batched per width) and evaluate them on the test split."""
    backend = backend or InProcessBackend()
    return backend.run(dataset, teacher_logits, config, base_model, progress, stop, keep_weights)
