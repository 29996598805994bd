"""Recurrent teachers and small students on sequences, distilled per time step.

Models (`SeqModelConfig`, `SeqModel`): a GRU or LSTM (embedding, recurrent
layers, dropout, a linear read-out per step), or a model with no recurrence: an
n-gram MLP (the last k symbols) or a bag-of-events MLP (the counts of every
symbol so far, as shares, and the last symbol). Every model maps tokens (B, L)
to next-symbol logits (B, L, C), causally: step t sees symbols 0..t only.

Runs, stepped one epoch per `step()` (each with `done`, `progress()` and a
`result()` that may be called at any time, also after a stop):

- `SeqTeacherRun(config, seed)`: the teacher on the task's training sequences.
- `SeqDistillRun(config, teacher_result, seed)`: three students from one
  initialization, with one batch order, on the same `n_sequences` training
  sequences: *distilled* (`sequence_kd_loss`: T²·KL to the teacher's soft
  targets at every step + (1 − α) CE on the next symbols), *labels only* (CE
  on the next symbols) and *teacher's hard labels* (CE on the teacher's argmax
  at each step: the teacher's knowledge without its soft targets).

`sequence_presets()` gives the page's defaults per task (teacher and students'
settings). Plain functions give what a page draws, as data: `soft_targets_of_sequence`,
`sequence_symbols`, `accuracy_per_position`, `accuracy_per_group`,
`describe_sequence_outcome`.

Metrics (`sequence_metrics`), over the real steps of the test sequences:
accuracy = share of steps whose predicted symbol is one the generating process
makes most likely next (on Reber: a legal next symbol, the classic criterion);
top1 = accuracy against the symbol that actually came next (its ceiling is the
process's own randomness); kl_true = KL(true next-symbol distribution ‖ model)
in nats; long_range = accuracy on the steps that need long memory (Reber's
final T/P), when the task has them.

Models train on the CPU (these are small; one thread is the fast choice).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kdcore.distill import describe_outcome
from kdcore.losses import IGNORE_LABEL, sequence_kd_loss, soften
from kdcore.models import model_bytes, param_count
from kdcore.sequences import PAD, SeqDataset, SeqSplit, SeqTaskConfig, make_sequence_dataset
from kdcore.train import (GLOBAL_RNG_LOCK, EpochLog, TrainConfig, make_optimizer, predict_logits, scheduled_lr,
                          seeded_model)
from kdcore.runs import drive

SEQ_MODEL_KINDS = {
    "gru": "GRU (recurrent)",
    "lstm": "LSTM (recurrent)",
    "ngram": "n-gram MLP (last k symbols, no recurrence)",
    "bag": "bag-of-events MLP (symbol shares so far + the last one, no recurrence)",
}


class RunProgress(tuple):
    """What a run's `progress()` returns: the pair (fraction in [0, 1], a short text), which unpacks
    as `fraction, text = run.progress()`, also readable by name as `.fraction`, `.text`, `.curves`
    (small live series, e.g. validation accuracy per epoch) and `.unit` (what one step is), the
    fields of the Run protocol's progress record."""

    def __new__(cls, fraction: float, text: str, curves: dict[str, list[float]] | None = None,
                unit: str = "epoch"):
        self = super().__new__(cls, (min(max(float(fraction), 0.0), 1.0), text))
        self.curves, self.unit = dict(curves or {}), unit
        return self

    def __reduce__(self):   # pickles (a run's progress may cross a process boundary)
        return RunProgress, (self[0], self[1], self.curves, self.unit)

    @property
    def fraction(self) -> float:
        return self[0]

    @property
    def text(self) -> str:
        return self[1]


# ---------------------------------------------------------------- models


@dataclass(frozen=True)
class SeqModelConfig:
    kind: str = "gru"       # "gru", "lstm", "ngram" or "bag" (see SEQ_MODEL_KINDS)
    hidden: int = 64        # recurrent: state width; ngram/bag: width of each hidden layer of the MLP
    layers: int = 1         # recurrent layers (ngram/bag: hidden layers of the MLP)
    dropout: float = 0.0    # between stacked layers and before the read-out (a regularized teacher: 0.1-0.3)
    embed: int = 16         # width of the symbol embedding
    context: int = 3        # ngram only: how many last symbols it sees (k)

    def __post_init__(self):
        if self.kind not in SEQ_MODEL_KINDS:
            raise ValueError(f"unknown sequence model {self.kind!r}; expected one of {sorted(SEQ_MODEL_KINDS)}")
        if min(self.hidden, self.layers, self.embed, self.context) < 1:
            raise ValueError("widths, layers and context must be at least 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SeqModelConfig":
        return cls(**d)

    def describe(self) -> str:
        reg = f", dropout {self.dropout:g}" if self.dropout else ""
        if self.kind in ("gru", "lstm"):
            layers = f"{self.layers} × " if self.layers > 1 else ""
            return f"{self.kind.upper()} {layers}{self.hidden}{reg}"
        what = f"{self.context}-symbol n-gram" if self.kind == "ngram" else "bag-of-events"
        return f"{what} MLP {'-'.join([str(self.hidden)] * self.layers)}{reg}"


class SeqModel(nn.Module):
    """Next-symbol logits (B, L, C) from input tokens (B, L); step t sees tokens 0..t only."""

    def __init__(self, config: SeqModelConfig, n_inputs: int, n_classes: int):
        super().__init__()
        self.config, self.n_inputs = config, n_inputs
        self.embedding = nn.Embedding(n_inputs, config.embed, padding_idx=PAD)
        if config.kind in ("gru", "lstm"):
            rnn = nn.GRU if config.kind == "gru" else nn.LSTM
            self.rnn = rnn(config.embed, config.hidden, config.layers, batch_first=True,
                           dropout=config.dropout if config.layers > 1 else 0.0)
            width = config.hidden
        else:
            width = config.embed * config.context if config.kind == "ngram" else config.embed + n_inputs
            layers: list[nn.Module] = []
            for _ in range(config.layers):
                layers += [nn.Linear(width, config.hidden), nn.ReLU()]
                if config.dropout:
                    layers.append(nn.Dropout(config.dropout))
                width = config.hidden
            self.mlp = nn.Sequential(*layers)
        self.dropout = nn.Dropout(config.dropout)
        self.readout = nn.Linear(width, n_classes)

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L, width): what the read-out sees at each step."""
        e = self.embedding(tokens)                                   # (B, L, E), zeros on padding
        kind = self.config.kind
        if kind in ("gru", "lstm"):
            return self.rnn(e)[0]
        if kind == "ngram":
            k = self.config.context
            padded = F.pad(e, (0, 0, k - 1, 0))                      # k - 1 empty symbols before the start
            x = torch.cat([padded[:, i:i + e.shape[1]] for i in range(k)], dim=-1)
        else:
            one_hot = F.one_hot(tokens, self.n_inputs).float()
            one_hot[..., PAD] = 0.0
            counts = one_hot.cumsum(1)
            shares = counts / counts.sum(-1, keepdim=True).clamp_min(1.0)
            x = torch.cat([shares, e], dim=-1)
        return self.mlp(x)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.readout(self.dropout(self.features(tokens)))


def build_seq_model(config: SeqModelConfig, dataset: SeqDataset, seed: int) -> SeqModel:
    """The model of `config` for `dataset`, initialized from `seed`."""
    return seeded_model(lambda: SeqModel(config, dataset.n_inputs, dataset.n_classes), seed)


# ---------------------------------------------------------------- metrics


def best_guess_hits(logits: torch.Tensor, true_probs: torch.Tensor) -> torch.Tensor:
    """(N, L) bool: the predicted symbol is one that the true process makes most likely next."""
    chosen = true_probs.gather(-1, logits.argmax(-1, keepdim=True)).squeeze(-1)
    return chosen >= true_probs.max(-1).values - 1e-6


def sequence_metrics(logits: torch.Tensor, split: SeqSplit, teacher_logits: torch.Tensor | None = None,
                     model: nn.Module | None = None) -> dict:
    """Test metrics over the real steps of `split` (see the module's docstring for each)."""
    m = split.mask
    hits = best_guess_hits(logits, split.true_probs)
    log_q = torch.log_softmax(logits, -1)
    p = split.true_probs
    kl_true = (p * (torch.log(p.clamp_min(1e-12)) - log_q)).sum(-1)
    out = {
        "accuracy": float(hits[m].float().mean()),
        "top1": float((logits.argmax(-1) == split.targets)[m].float().mean()),
        "kl_true": float(kl_true[m].mean()),
        "loss": float(F.cross_entropy(logits[m], split.targets[m])),
        "steps": int(m.sum()),
    }
    key = split.key_steps & m
    if bool(key.any()):
        out["long_range"] = float(hits[key].float().mean())
    if teacher_logits is not None:
        out["agreement"] = float((logits.argmax(-1) == teacher_logits.argmax(-1))[m].float().mean())
        log_t = torch.log_softmax(teacher_logits, -1)
        out["kl_teacher"] = float((log_t.exp() * (log_t - log_q)).sum(-1)[m].mean())
    if model is not None:
        out["params"], out["bytes"] = param_count(model), model_bytes(model)
    return out


def accuracy_per_position(model: nn.Module, split: SeqSplit) -> tuple[np.ndarray, np.ndarray]:
    """(accuracy, count) per step position 0..L-1 over the sequences that reach it (nan where none do)."""
    hits = best_guess_hits(predict_logits(model, split.tokens), split.true_probs)
    m = split.mask
    count = m.sum(0).numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = (hits & m).sum(0).numpy() / count
    return np.where(count > 0, acc, np.nan), count


def accuracy_per_group(hits: torch.Tensor, split: SeqSplit, n_groups: int) -> list[float]:
    """Accuracy over the real steps of each group's sequences, from the best-guess `hits` (N, L) of a
    model on `split` (nan for a group without a real step)."""
    m = split.mask
    out = []
    for g in range(n_groups):
        rows = split.groups == g
        out.append(float(hits[rows][m[rows]].float().mean()) if bool(m[rows].any()) else float("nan"))
    return out


def soft_targets_of_sequence(model: nn.Module, split: SeqSplit, index: int, temperature: float = 1.0) -> np.ndarray:
    """softmax(z/T) of `model` at each real step of sequence `index`: (steps, C), rows sum to 1."""
    n = int(split.lengths[index])
    logits = predict_logits(model, split.tokens[index:index + 1])[0, :n]
    return soften(logits, temperature).numpy()


def sequence_symbols(dataset: SeqDataset, split: SeqSplit, index: int) -> list[str]:
    """The input symbol at each real step of sequence `index` (the rows of `soft_targets_of_sequence`)."""
    n = int(split.lengths[index])
    return [dataset.input_names[int(t)] for t in split.tokens[index, :n]]


# ---------------------------------------------------------------- training


class SeqTrainer:
    """One sequence model, one optimizer, one seeded batch order; `run_epoch()` trains one epoch.

    loss: "ce" (cross-entropy on `targets` at every real step) or "kd"
    (`sequence_kd_loss` against `teacher_logits` (N, L, C) with temperature and
    alpha). Batches are cut to their longest sequence. Dropout draws from this
    trainer's own RNG stream (as `kdcore.train.Trainer`), so the same seed gives
    the same numbers whatever else runs.
    """

    def __init__(self, model: nn.Module, tokens: torch.Tensor, targets: torch.Tensor, config: TrainConfig,
                 seed: int = 0, loss: str = "ce", teacher_logits: torch.Tensor | None = None,
                 temperature: float = 1.0, alpha: float = 0.0, val: SeqSplit | None = None, name: str = ""):
        if loss not in ("ce", "kd"):
            raise ValueError(f"unknown sequence loss {loss!r}; expected 'ce' or 'kd'")
        if loss == "kd" and teacher_logits is None:
            raise ValueError("loss 'kd' needs the teacher's logits")
        self.model, self.tokens, self.targets, self.config = model, tokens, targets, config
        self.lengths = (tokens != PAD).sum(1)
        self.loss_kind, self.teacher_logits = loss, teacher_logits
        self.temperature, self.alpha, self.val, self.name = temperature, alpha, val, name
        self.generator = torch.Generator().manual_seed(seed)
        with GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            self._rng_state = torch.get_rng_state()
        self.optimizer = make_optimizer(model, config)
        self.steps_per_epoch = math.ceil(len(tokens) / config.batch_size)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.step = self.epoch = 0

    def run_epoch(self) -> EpochLog:
        with GLOBAL_RNG_LOCK:
            caller_state = torch.get_rng_state()
            torch.set_rng_state(self._rng_state)
            try:
                return self._run_epoch()
            finally:
                self._rng_state = torch.get_rng_state()
                torch.set_rng_state(caller_state)

    def _run_epoch(self) -> EpochLog:
        t0 = time.perf_counter()
        cfg, model = self.config, self.model
        model.train()
        perm = torch.randperm(len(self.tokens), generator=self.generator)
        total, n_batches, correct, n_steps = 0.0, 0, 0, 0
        for i in range(0, len(perm), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            length = int(self.lengths[idx].max())
            xb, yb = self.tokens[idx, :length], self.targets[idx, :length]
            mask = xb != PAD
            for group in self.optimizer.param_groups:
                group["lr"] = scheduled_lr(cfg, self.step, self.total_steps)
            logits = model(xb)
            if self.loss_kind == "kd":
                loss = sequence_kd_loss(logits, self.teacher_logits[idx, :length], yb, mask,
                                        self.temperature, self.alpha)
            else:
                loss = F.cross_entropy(logits[mask], yb[mask], ignore_index=IGNORE_LABEL)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.step += 1
            total += float(loss.detach())
            n_batches += 1
            lab = mask & (yb != IGNORE_LABEL)
            correct += int((logits.detach().argmax(-1) == yb)[lab].sum())
            n_steps += int(lab.sum())
        self.epoch += 1
        val_loss = val_acc = float("nan")
        if self.val is not None:
            logits = predict_logits(model, self.val.tokens)
            vm = self.val.mask
            val_loss = float(F.cross_entropy(logits[vm], self.val.targets[vm]))
            val_acc = float(best_guess_hits(logits, self.val.true_probs)[vm].float().mean())
        return EpochLog(self.epoch, cfg.epochs, total / max(n_batches, 1), correct / max(n_steps, 1),
                        val_loss, val_acc, time.perf_counter() - t0, self.name)


# ---------------------------------------------------------------- the teacher


@dataclass(frozen=True)
class SeqTeacherConfig:
    task: SeqTaskConfig = SeqTaskConfig()                          # the data (task, sizes, world)
    model: SeqModelConfig = SeqModelConfig("gru", hidden=64)       # a GRU of 64 units: learns the grammar
    train: TrainConfig = TrainConfig(epochs=15, batch_size=32, lr=1e-2)  # 15 epochs, Adam(W) at 1e-2, cosine

    def to_dict(self) -> dict:
        return {"task": self.task.to_dict(), "model": self.model.to_dict(), "train": self.train.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "SeqTeacherConfig":
        return cls(SeqTaskConfig.from_dict(d["task"]), SeqModelConfig.from_dict(d["model"]),
                   TrainConfig(**d["train"]))


@dataclass
class SeqTeacherResult:
    model: SeqModel                 # the teacher (CPU, eval mode)
    metrics: dict                   # test metrics (sequence_metrics, with params and bytes)
    history: list[dict]             # one EpochLog (as a dict) per epoch run
    dataset: SeqDataset             # the sequences it learned from (and the test set)
    config: SeqTeacherConfig
    seed: int
    stopped_early: bool = False     # True when result() came before the last epoch
    seconds: float = 0.0            # training wall time


class SeqTeacherRun:
    """The teacher of `config` on its task's training sequences, one epoch per `step()`."""

    def __init__(self, config: SeqTeacherConfig = SeqTeacherConfig(), seed: int = 0):
        self.config, self.seed = config, seed
        self.dataset = make_sequence_dataset(config.task, seed)
        self.model = build_seq_model(config.model, self.dataset, seed)
        tr = self.dataset.train
        self._trainer = SeqTrainer(self.model, tr.tokens, tr.targets, config.train, seed, "ce",
                                   val=self.dataset.val, name="teacher")
        self.history: list[dict] = []

    @property
    def done(self) -> bool:
        return len(self.history) >= self.config.train.epochs

    def progress(self) -> RunProgress:
        n, total = len(self.history), self.config.train.epochs
        text = f"teacher: epoch {n} / {total}"
        if self.history:
            text += f", validation accuracy {100 * self.history[-1]['val_acc']:.1f} %"
        return RunProgress(n / total, text, {"teacher": [h["val_acc"] for h in self.history]})

    def step(self) -> EpochLog:
        if self.done:
            raise RuntimeError("the teacher has trained all its epochs")
        log = self._trainer.run_epoch()
        self.history.append(asdict(log))
        return log

    def result(self) -> SeqTeacherResult:
        model = copy.deepcopy(self.model).eval()
        test = self.dataset.test
        metrics = sequence_metrics(predict_logits(model, test.tokens), test, model=model)
        return SeqTeacherResult(model, metrics, list(self.history), self.dataset, self.config, self.seed,
                                stopped_early=not self.done, seconds=sum(h["seconds"] for h in self.history))


def train_seq_teacher(config: SeqTeacherConfig = SeqTeacherConfig(), seed: int = 0) -> SeqTeacherResult:
    """Run `SeqTeacherRun` to the end."""
    return drive(SeqTeacherRun(config, seed))[0]


# ---------------------------------------------------------------- the three students

STUDENTS = ("distilled", "labels_only", "hard_labels")
STUDENT_NAMES = {"distilled": "distilled (soft targets)", "labels_only": "labels only",
                 "hard_labels": "teacher's hard labels"}


@dataclass(frozen=True)
class SeqDistillConfig:
    student: SeqModelConfig = SeqModelConfig("gru", hidden=16)  # a GRU of 16 units (~1.9 K parameters)
    train: TrainConfig = TrainConfig(epochs=60, batch_size=16, lr=1e-2)  # the three students' schedule
    temperature: float = 2.0        # T of the soft targets
    alpha: float = 0.9              # weight of the soft term; 1 - alpha on the next symbols' CE
    n_sequences: int = 100          # training sequences the students see (the first n of the teacher's)

    def __post_init__(self):
        if not self.temperature > 0:
            raise ValueError("the temperature must be positive")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError("alpha must be between 0 and 1")
        if self.n_sequences < 1:
            raise ValueError("the students need at least one sequence")

    def to_dict(self) -> dict:
        return {"student": self.student.to_dict(), "train": self.train.to_dict(),
                "temperature": self.temperature, "alpha": self.alpha, "n_sequences": self.n_sequences}

    @classmethod
    def from_dict(cls, d: dict) -> "SeqDistillConfig":
        return cls(SeqModelConfig.from_dict(d["student"]), TrainConfig(**d["train"]),
                   d["temperature"], d["alpha"], d["n_sequences"])


@dataclass
class SeqDistillResult:
    students: dict[str, SeqModel]       # STUDENTS -> model (CPU, eval mode)
    metrics: dict[str, dict]            # STUDENTS -> test metrics (with agreement / KL to the teacher)
    teacher_metrics: dict
    histories: dict[str, list[dict]]    # STUDENTS -> one EpochLog dict per epoch
    config: SeqDistillConfig
    seed: int
    n_sequences: int                    # sequences the students trained on
    epochs_run: int
    stopped_early: bool = False

    @property
    def gain(self) -> float:
        """Distilled minus labels-only test accuracy (a fraction)."""
        return self.metrics["distilled"]["accuracy"] - self.metrics["labels_only"]["accuracy"]

    def summary(self) -> str:
        return describe_sequence_outcome(self.metrics, self.teacher_metrics)


def describe_sequence_outcome(metrics: dict[str, dict], teacher_metrics: dict | None = None) -> str:
    """One or two plain sentences: distilled vs labels only (as on Distill), then the hard-labels control."""
    s = describe_outcome(metrics["distilled"], metrics["labels_only"], teacher_metrics)
    if "hard_labels" in metrics:
        d, h = metrics["distilled"]["accuracy"], metrics["hard_labels"]["accuracy"]
        gap = 100 * (d - h)
        if abs(gap) < 0.05:
            s += f" Trained on the teacher's hard labels instead, it does as well ({100 * h:.1f} %): the soft targets add nothing here."
        elif gap > 0:
            s += (f" On the teacher's hard labels (its argmax at each step) it reaches {100 * h:.1f} %: "
                  f"the soft targets add {gap:.1f} points over the teacher's choices alone.")
        else:
            s += (f" On the teacher's hard labels (its argmax at each step) it reaches {100 * h:.1f} %, "
                  f"{-gap:.1f} points more than with the soft targets.")
    return s


class SeqDistillRun:
    """Three students from one initialization and one batch order, one epoch of each per `step()`.

    They train on the first `config.n_sequences` training sequences of the
    teacher's dataset: the distilled one on the teacher's soft targets (computed
    once, eval mode) plus the next symbols, the labels-only one on the next
    symbols, the hard-labels one on the teacher's argmax at each step.
    """

    def __init__(self, config: SeqDistillConfig, teacher: SeqTeacherResult, seed: int = 0):
        self.config, self.teacher, self.seed = config, teacher, seed
        ds = teacher.dataset
        self.dataset = ds
        n = min(config.n_sequences, len(ds.train))
        self.n_sequences = n
        part = ds.train.subset(range(n))
        self.teacher_logits = predict_logits(teacher.model, part.tokens)
        hard = torch.where(part.mask, self.teacher_logits.argmax(-1), torch.full_like(part.targets, IGNORE_LABEL))
        init = build_seq_model(config.student, ds, seed + 1)   # seed + 1: not the teacher's draws
        self.students = {name: copy.deepcopy(init) for name in STUDENTS}
        cfg, val = config.train, ds.val
        self._trainers = {
            "distilled": SeqTrainer(self.students["distilled"], part.tokens, part.targets, cfg, seed, "kd",
                                    self.teacher_logits, config.temperature, config.alpha, val, "distilled"),
            "labels_only": SeqTrainer(self.students["labels_only"], part.tokens, part.targets, cfg, seed, "ce",
                                      val=val, name="labels_only"),
            "hard_labels": SeqTrainer(self.students["hard_labels"], part.tokens, hard, cfg, seed, "ce",
                                      val=val, name="hard_labels"),
        }
        self.histories: dict[str, list[dict]] = {name: [] for name in STUDENTS}

    @property
    def epoch(self) -> int:
        return len(self.histories["distilled"])

    @property
    def done(self) -> bool:
        return self.epoch >= self.config.train.epochs

    def progress(self) -> RunProgress:
        total = self.config.train.epochs
        text = f"students: epoch {self.epoch} / {total}"
        if self.epoch:
            accs = ", ".join(f"{STUDENT_NAMES[n]} {100 * self.histories[n][-1]['val_acc']:.1f} %" for n in STUDENTS)
            text += f" (validation: {accs})"
        return RunProgress(self.epoch / total, text,
                           {n: [h["val_acc"] for h in self.histories[n]] for n in STUDENTS})

    def step(self) -> dict[str, EpochLog]:
        if self.done:
            raise RuntimeError("the students have trained all their epochs")
        logs = {name: t.run_epoch() for name, t in self._trainers.items()}
        for name, log in logs.items():
            self.histories[name].append(asdict(log))
        return logs

    def result(self) -> SeqDistillResult:
        test = self.dataset.test
        t_logits = predict_logits(self.teacher.model, test.tokens)
        students = {n: copy.deepcopy(m).eval() for n, m in self.students.items()}
        metrics = {n: sequence_metrics(predict_logits(m, test.tokens), test, t_logits, m)
                   for n, m in students.items()}
        return SeqDistillResult(students, metrics, self.teacher.metrics,
                                {n: list(h) for n, h in self.histories.items()}, self.config, self.seed,
                                self.n_sequences, self.epoch, stopped_early=not self.done)


def sequence_presets() -> dict[str, tuple[SeqTeacherConfig, SeqDistillConfig]]:
    """The page's defaults per task (the first is the default task): (teacher settings, students' settings).

    events: the dataclass defaults; the students see 100 of the teacher's 1 000 sessions.
    reber: the same teacher; the students see 200 of its 1 000 strings for 40 epochs.
    """
    return {
        "events": (SeqTeacherConfig(), SeqDistillConfig()),
        "reber": (SeqTeacherConfig(task=SeqTaskConfig("reber")),
                  SeqDistillConfig(train=TrainConfig(epochs=40, batch_size=16, lr=1e-2), n_sequences=200)),
    }
