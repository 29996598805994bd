"""Training on in-memory tensors, with callbacks instead of prints.

`Trainer` owns one model, its optimizer and its (seeded) batch order, and runs
one epoch at a time, so a caller can interleave several trainers (a distilled
and a scratch student, epoch by epoch) and draw live curves. `fit` is the
plain loop: run epochs, call the callbacks after each, stop when one asks.

A callback is any `f(log: EpochLog) -> bool | None`; returning True stops the
training after that epoch (the model keeps what it learned so far). A
`threading.Event` can be passed as `stop` for the same purpose from elsewhere.

The loss is `kd_loss` when teacher logits are given (computed once for the
transfer set by the caller, never per batch), else cross-entropy. `loss="dkd"`
trains on decoupled KD (`dkd_loss`, weights `dkd_weights`) plus (1 − alpha)·CE;
`extra_loss(model, batch_indices, labels)` adds a term per batch (FitNets hints,
the class-distance term: see kdcore.loss_families).

Device: a Trainer trains where `device` says (default: where the model already
is, the CPU for every model kdcore builds). It moves the model and the data
there once, draws the batch order and the jitter shifts on the CPU (so a GPU run
sees the same batches as a CPU run), keeps its own dropout RNG stream on that
device too, and synchronizes with it once per epoch, not per batch.
`predict_logits` runs on the model's device and returns CPU logits.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from kdcore.device import model_device, resolve_device
from kdcore.losses import IGNORE_LABEL, dkd_loss, kd_loss, logit_matching_loss


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30            # passes over the training set
    batch_size: int = 64        # small batches: more updates per epoch on small datasets
    lr: float = 3e-3            # peak learning rate
    weight_decay: float = 0.0   # AdamW's decoupled weight decay (L2 for SGD)
    optimizer: str = "adamw"    # "adamw" or "sgd" (with momentum below)
    momentum: float = 0.9       # SGD only
    schedule: str = "cosine"    # "cosine" decay to 0 over the epochs, or "constant"
    jitter: int = 0             # images only: random shifts of up to ±jitter pixels (Hinton's MNIST teacher: 2)

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch size must be at least 1")
        if self.lr <= 0:
            raise ValueError("the learning rate must be positive")
        if self.optimizer not in ("adamw", "sgd"):
            raise ValueError(f"unknown optimizer {self.optimizer!r}; expected 'adamw' or 'sgd'")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"unknown schedule {self.schedule!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EpochLog:
    epoch: int              # 1-based
    epochs: int             # planned total
    train_loss: float       # mean training loss over the epoch's batches
    train_acc: float        # accuracy on the labelled training examples seen (train mode)
    val_loss: float         # cross-entropy on the validation split (nan if none)
    val_acc: float          # accuracy on the validation split (nan if none)
    seconds: float          # wall time of this epoch
    name: str = ""          # which model (when several train together)


@dataclass
class History:
    logs: list[EpochLog] = field(default_factory=list)
    stopped_early: bool = False

    @property
    def epochs_run(self) -> int:
        return len(self.logs)

    @property
    def seconds(self) -> float:
        return sum(l.seconds for l in self.logs)

    def column(self, name: str) -> list[float]:
        return [getattr(l, name) for l in self.logs]

    def to_records(self) -> list[dict]:
        return [asdict(l) for l in self.logs]


# Initialization and dropout draw from torch's global RNG, which every thread shares. A Streamlit
# server can run two scripts of one session at once for a moment (a rerun starts while the stopped
# run finishes its epoch), so global-RNG work happens under this lock and each Trainer swaps in its
# own copy of the RNG state for its epochs: the same seed gives the same numbers, whatever else runs.
GLOBAL_RNG_LOCK = threading.RLock()


def seeded_model(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """Build a model with the global RNG seeded, without disturbing the caller's RNG."""
    with GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):
        # the CPU generator alone (models are built on the CPU): torch.manual_seed would also reseed
        # every GPU's generator, which fork_rng(devices=[]) does not restore
        torch.default_generator.manual_seed(seed)
        return build()


def skeleton_model(build: Callable[[], nn.Module]) -> nn.Module:
    """A model whose weights the caller overwrites (to load or unstack weights, to count its size): built
    under the RNG lock without drawing from the shared RNG, which another thread may be seeding for a
    student's initialization at that moment (`seeded_model`)."""
    return seeded_model(build, 0)


def jitter_images(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by its own random (dx, dy) in [-max_shift, max_shift], zero-filled."""
    if max_shift <= 0 or x.dim() != 4:
        return x
    b, _, h, w = x.shape
    k = max_shift
    padded = F.pad(x, (k, k, k, k))
    # drawn on the CPU generator whatever the device: the same seed shifts the same way everywhere
    shifts = torch.randint(-k, k + 1, (b, 2), generator=generator).to(x.device)
    rows = torch.arange(h, device=x.device)[None, :] + k + shifts[:, :1]   # (B, H)
    cols = torch.arange(w, device=x.device)[None, :] + k + shifts[:, 1:]   # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    out = padded[batch, :, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def predict_logits(model: nn.Module, X: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Logits of `model` in eval mode (dropout off) for all of X, computed on the model's device,
    returned on the CPU."""
    was_training = model.training
    model.eval()
    dev = model_device(model)
    try:
        return torch.cat([model(X[i:i + batch_size].to(dev)).cpu() for i in range(0, len(X), batch_size)]) \
            if len(X) else torch.empty(0)
    finally:
        model.train(was_training)


def scheduled_lr(config: TrainConfig, step: int, total_steps: int) -> float:
    """The learning rate at optimizer step `step` of `total_steps`: constant, or cosine decay to 0."""
    if config.schedule == "constant":
        return config.lr
    return 0.5 * config.lr * (1 + math.cos(math.pi * step / total_steps))


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


class Trainer:
    """One model, one optimizer, one seeded batch order; `run_epoch()` trains one epoch.

    loss: "ce" (labels only), "kd" (`kd_loss` with temperature and alpha),
    "logits" (logit matching, `logit_matching_loss`, plus (1-alpha) CE on labels) or
    "dkd" (alpha · `dkd_loss` with `dkd_weights` = (TCKD weight, NCKD weight), plus (1-alpha) CE).
    Labels of -1 mark unlabelled transfer examples (soft targets only).
    extra_loss(model, idx, yb): a term added to every batch's loss (idx: the batch's row
    indices into X, on the device; yb its labels), e.g. a hint or class-distance term.
    """

    def __init__(self, model: nn.Module, X: torch.Tensor, y: torch.Tensor, config: TrainConfig,
                 seed: int = 0, teacher_logits: torch.Tensor | None = None, temperature: float = 1.0,
                 alpha: float = 0.0, loss: str | None = None, X_val: torch.Tensor | None = None,
                 y_val: torch.Tensor | None = None, name: str = "",
                 after_step: Callable[[nn.Module], None] | None = None,
                 device: str | torch.device | None = None, dkd_weights: tuple[float, float] = (1.0, 8.0),
                 extra_loss: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None):
        if len(X) != len(y):
            raise ValueError(f"{len(X)} inputs but {len(y)} labels")
        if teacher_logits is not None and len(teacher_logits) != len(X):
            raise ValueError("teacher logits must be given for every training example")
        self.loss_kind = loss or ("kd" if teacher_logits is not None else "ce")
        if self.loss_kind in ("kd", "logits", "dkd") and teacher_logits is None:
            raise ValueError(f"loss {self.loss_kind!r} needs teacher logits")
        self._labelled = (y != IGNORE_LABEL).cpu()   # on the CPU: skipping a batch needs no device sync
        if self.loss_kind == "ce" and not bool(self._labelled.any()):
            raise ValueError("training on labels alone needs at least one labelled example")
        # one move of the model and the data to the device; None keeps the model where it is
        self.device = model_device(model) if device is None else resolve_device(device)
        dev = self.device
        self.model = model.to(dev)
        self.X, self.y, self.config = X.to(dev), y.to(dev), config
        self.teacher_logits = teacher_logits.detach().to(dev) if teacher_logits is not None else None
        self.temperature, self.alpha = temperature, alpha
        self.dkd_weights, self.extra_loss = tuple(dkd_weights), extra_loss
        self.X_val = X_val.to(dev) if X_val is not None else None
        # validation logits come back on the CPU (predict_logits): their labels stay there
        self.y_val, self.name = (y_val.cpu() if y_val is not None else None), name
        self.after_step = after_step  # e.g. re-apply pruning masks after each update
        self.generator = torch.Generator().manual_seed(seed)   # batch order and jitter: CPU, any device
        # dropout draws from the global RNG of the device it runs on: this trainer's own stream there
        self._cuda = dev.type == "cuda"
        self._cuda_index = (dev.index if dev.index is not None else torch.cuda.current_device()) \
            if self._cuda else None
        with GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[self._cuda_index] if self._cuda else []):
            torch.default_generator.manual_seed(seed)
            if self._cuda:
                with torch.cuda.device(self._cuda_index):
                    torch.cuda.manual_seed(seed)   # this GPU only: the one fork_rng restores
            self._rng_state = torch.get_rng_state()
            self._cuda_rng_state = torch.cuda.get_rng_state(self._cuda_index) if self._cuda else None
        self.optimizer = make_optimizer(model, config)
        self.steps_per_epoch = math.ceil(len(X) / config.batch_size)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.step = 0
        self.epoch = 0

    def _lr(self) -> float:
        return scheduled_lr(self.config, self.step, self.total_steps)

    def _loss(self, logits, yb, tb, has_labels: bool):
        if self.loss_kind == "kd":
            return kd_loss(logits, tb, yb, self.temperature, self.alpha)
        if self.loss_kind == "logits":
            soft = logit_matching_loss(logits, tb)
            if self.alpha >= 1.0 or not has_labels:
                return soft
            hard = F.cross_entropy(logits, yb, ignore_index=IGNORE_LABEL)
            return self.alpha * soft + (1 - self.alpha) * hard
        if self.loss_kind == "dkd":
            soft = dkd_loss(logits, tb, yb, self.temperature, *self.dkd_weights)
            if self.alpha >= 1.0 or not has_labels:
                return soft
            hard = F.cross_entropy(logits, yb, ignore_index=IGNORE_LABEL)
            return self.alpha * soft + (1 - self.alpha) * hard
        return F.cross_entropy(logits, yb, ignore_index=IGNORE_LABEL)

    def run_epoch(self) -> EpochLog:
        with GLOBAL_RNG_LOCK:
            caller_state = torch.get_rng_state()
            caller_cuda = torch.cuda.get_rng_state(self._cuda_index) if self._cuda else None
            torch.set_rng_state(self._rng_state)
            if self._cuda:
                torch.cuda.set_rng_state(self._cuda_rng_state, self._cuda_index)
            try:
                return self._run_epoch()
            finally:
                self._rng_state = torch.get_rng_state()
                torch.set_rng_state(caller_state)
                if self._cuda:
                    self._cuda_rng_state = torch.cuda.get_rng_state(self._cuda_index)
                    torch.cuda.set_rng_state(caller_cuda, self._cuda_index)

    def _train_batches(self) -> tuple[torch.Tensor, int, torch.Tensor, int]:
        """One pass over the batches: (summed loss, batches, correct labelled predictions, labelled
        examples). The sums stay on the device: reading them is the epoch's one synchronization."""
        cfg, model, dev = self.config, self.model, self.device
        model.train()
        perm = torch.randperm(len(self.X), generator=self.generator)
        perm_dev = perm.to(dev)
        total_loss = torch.zeros((), dtype=torch.float64, device=dev)
        correct = torch.zeros((), dtype=torch.long, device=dev)
        n_batches = n_lab = 0
        for i in range(0, len(perm), cfg.batch_size):
            n_lab_batch = int(self._labelled[perm[i:i + cfg.batch_size]].sum())
            if self.loss_kind == "ce" and n_lab_batch == 0:
                continue  # a batch of unlabelled examples has nothing to teach a label-only student
            idx = perm_dev[i:i + cfg.batch_size]
            xb, yb = self.X[idx], self.y[idx]
            tb = self.teacher_logits[idx] if self.teacher_logits is not None else None
            if cfg.jitter:
                xb = jitter_images(xb, cfg.jitter, self.generator)
            for group in self.optimizer.param_groups:
                group["lr"] = self._lr()
            logits = model(xb)
            loss = self._loss(logits, yb, tb, n_lab_batch > 0)
            if self.extra_loss is not None:
                loss = loss + self.extra_loss(model, idx, yb)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if self.after_step is not None:
                self.after_step(model)
            self.step += 1
            total_loss += loss.detach()
            n_batches += 1
            correct += ((logits.detach().argmax(1) == yb) & (yb != IGNORE_LABEL)).sum()
            n_lab += n_lab_batch
        return total_loss, n_batches, correct, n_lab

    def _run_epoch(self) -> EpochLog:
        t0 = time.perf_counter()
        total_loss, n_batches, correct, n_lab = self._train_batches()
        self.step = (self.epoch + 1) * self.steps_per_epoch  # keep the schedule aligned if batches were skipped
        self.epoch += 1
        val_loss = val_acc = float("nan")
        if self.X_val is not None and len(self.X_val):
            logits = predict_logits(self.model, self.X_val)
            val_loss = float(F.cross_entropy(logits, self.y_val))
            val_acc = float((logits.argmax(1) == self.y_val).float().mean())
        return EpochLog(self.epoch, self.config.epochs, float(total_loss) / max(n_batches, 1),
                        int(correct) / max(n_lab, 1), val_loss, val_acc, time.perf_counter() - t0, self.name)


def fit(model: nn.Module, X: torch.Tensor, y: torch.Tensor, config: TrainConfig, seed: int = 0,
        teacher_logits: torch.Tensor | None = None, temperature: float = 1.0, alpha: float = 0.0,
        loss: str | None = None, X_val: torch.Tensor | None = None, y_val: torch.Tensor | None = None,
        callbacks: Iterable[Callable[[EpochLog], bool | None]] = (), stop=None, name: str = "",
        after_step: Callable[[nn.Module], None] | None = None,
        device: str | torch.device | None = None, dkd_weights: tuple[float, float] = (1.0, 8.0),
        extra_loss: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> History:
    """Train `model` in place for `config.epochs` epochs (or until a callback or `stop` says so).
    With a `device` the model is moved there and stays there: `.cpu()` it when done."""
    trainer = Trainer(model, X, y, config, seed, teacher_logits, temperature, alpha, loss,
                      X_val, y_val, name, after_step, device, dkd_weights, extra_loss)
    history = train_to_end(trainer, callbacks, stop)
    model.eval()
    return history


def train_to_end(trainer: "Trainer", callbacks: Iterable[Callable[[EpochLog], bool | None]] = (),
                 stop=None) -> History:
    """Run a Trainer's epochs (`trainer.config.epochs`), until a callback returns True or `stop` (an
    Event) is set; every callback sees every epoch."""
    history = History()
    epochs = trainer.config.epochs
    for _ in range(epochs):
        log = trainer.run_epoch()
        history.logs.append(log)
        wants_stop = [bool(cb(log)) for cb in callbacks]
        if any(wants_stop) or (stop is not None and stop.is_set()):
            history.stopped_early = log.epoch < epochs
            break
    return history
