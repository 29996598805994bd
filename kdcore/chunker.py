"""Where distillation began: Schmidhuber's 1991 chunker and automatizer, as a short demo.

J. Schmidhuber, "Neural sequence chunkers" (TR FKI-148-91, TU Munich, 1991) and
"Learning complex, extended sequences using the principle of history
compression" (Neural Computation 4(2), 1992). Two recurrent networks:

- the *automatizer* A reads every symbol and predicts the next one;
- the *chunker* C sees only the symbols that A failed to predict (the
  "unexpected" ones), so it runs on a compressed, slower time scale where long
  lags become short, and predicts what A cannot.

A is also trained to predict C's internal state. Once A's own state carries
what C knows, A predicts those symbols itself, they stop reaching C, and C is
no longer needed: one network remains. Training one network to reproduce
another's internal representation is the first published case of what is now
called distillation (Schmidhuber's own account, and Hinton et al. 2015 solve
the same problem, moving one network's knowledge into another, with soft
targets on outputs instead of hidden states). `ABOUT` says this in a paragraph
for a page.

The toy (`chunk_sequences`): each sequence is a few episodes of
[start ∈ {a, c} at random] [a fixed chunk s1 … s_lag] [end: b after a, d after c].
Chunk symbols are predictable from the symbol before them; the starts are not
predictable at all; the end is predictable only by remembering the start across
the chunk ("long lag").

`ChunkerRun` trains A and C together, one epoch per `step()`, and records per
epoch the chunker's share of the predictions (the steps whose symbol A did not
predict with at least `confidence`), per part of the sequence, and A's
state-prediction loss. A falling share on the long-lag steps is the automatizer
taking over.

Simplifications of the paper, said plainly: GRUs trained by backpropagation
through time on minibatches with teacher forcing (the paper used fully
recurrent nets with online real-time recurrent learning); "A failed" means A's
probability of the actual symbol was below `confidence` (the paper used an
error threshold); A predicts C's current state at every step, with C's state
held fixed as a target (no gradient into C); the two networks are trained at
once rather than the collapse being a separate phase; a single level of
hierarchy; the chunker gets no time stamp of its unexpected inputs, and is
trained only on the steps A fails on.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kdcore.losses import IGNORE_LABEL
from kdcore.seqdistill import RunProgress
from kdcore.train import GLOBAL_RNG_LOCK, TrainConfig, make_optimizer, scheduled_lr, seeded_model

PARTS = ("predictable", "unpredictable", "long_lag")   # what kind of symbol a step's target is

ABOUT = (
    "In 1991 Jürgen Schmidhuber trained two recurrent networks on one stream of symbols. The "
    "*automatizer* reads every symbol and predicts the next; the *chunker* sees only the symbols the "
    "automatizer failed to predict, so its clock ticks only at surprises and a long lag becomes a short "
    "one. The automatizer is also trained to predict the chunker's internal state; once its own state "
    "carries what the chunker knows, it predicts those symbols itself, they stop reaching the chunker, "
    "and the chunker is no longer needed: one network remains, holding what two had learned. That is "
    "distillation's first published case: one network trained to reproduce another's knowledge. "
    "Today's soft targets (Hinton, Vinyals & Dean 2015) move the same knowledge through the teacher's "
    "output distribution instead of its hidden state, which works between networks of different shapes. "
    "This demo simplifies the paper: GRUs trained by backpropagation through time on minibatches (the "
    "paper: online recurrent learning), a probability threshold for 'failed to predict', both networks "
    "trained at once, one level of hierarchy."
)


@dataclass(frozen=True)
class ChunkerConfig:
    n_train: int = 300              # training sequences
    n_test: int = 200               # test sequences (every recorded number)
    episodes: int = 3               # episodes per sequence: start (a|c), chunk, end (b|d)
    lag: int = 8                    # chunk length: steps the start must be remembered across
    hidden: int = 24                # state width of both networks
    confidence: float = 0.8         # A "predicted" a symbol when it gave it at least this probability
    state_weight: float = 1.0       # weight of A's chunker-state prediction loss (0: A never learns from C)
    train: TrainConfig = TrainConfig(epochs=40, batch_size=32, lr=1e-2)   # both networks, one optimizer

    def __post_init__(self):
        if self.episodes < 1 or self.lag < 1 or self.hidden < 1 or min(self.n_train, self.n_test) < 1:
            raise ValueError("episodes, lag, hidden and the set sizes must be at least 1")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError("the confidence must be in (0, 1)")
        if self.state_weight < 0:
            raise ValueError("the state weight cannot be negative")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["train"] = self.train.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ChunkerConfig":
        return cls(**{**d, "train": TrainConfig(**d["train"])})


def chunk_symbols(lag: int) -> tuple[str, ...]:
    """Output symbols of the toy: a, c (starts), b, d (ends), s1 … s_lag (the chunk)."""
    return ("a", "c", "b", "d") + tuple(f"s{i + 1}" for i in range(lag))


def chunk_sequences(n: int, episodes: int, lag: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """n toy sequences: (tokens (n, L), targets (n, L), parts (n, L)) with L = episodes·(lag + 2) − 1.

    tokens are input ids (1 + symbol index; 0 would be padding, unused here), targets the next
    symbol's index, parts the index in PARTS of what kind of symbol each target is.
    """
    g = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, 2, (n, episodes), generator=g)                   # 0 = a, 1 = c
    chunk = torch.arange(4, 4 + lag)
    rows, kinds = [], []
    for e in range(episodes):
        rows += [starts[:, e:e + 1], chunk.expand(n, lag), 2 + starts[:, e:e + 1]]   # end: b (2) or d (3)
        kinds += [PARTS.index("unpredictable")] + [PARTS.index("predictable")] * lag + [PARTS.index("long_lag")]
    symbols = torch.cat(rows, dim=1)                                           # (n, episodes·(lag + 2))
    parts = torch.tensor(kinds[1:]).expand(n, -1).clone()
    return 1 + symbols[:, :-1], symbols[:, 1:].clone(), parts


class Automatizer(nn.Module):
    """A GRU reading every symbol; two heads: the next symbol's logits, and a guess of C's state."""

    def __init__(self, n_inputs: int, n_classes: int, hidden: int, chunker_hidden: int):
        super().__init__()
        self.embedding = nn.Embedding(n_inputs, 16, padding_idx=0)
        self.rnn = nn.GRU(16, hidden, batch_first=True)
        self.next_symbol = nn.Linear(hidden, n_classes)
        self.chunker_state = nn.Linear(hidden, chunker_hidden)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.rnn(self.embedding(tokens))[0]
        return self.next_symbol(h), torch.tanh(self.chunker_state(h))


class Chunker(nn.Module):
    """A GRU cell that updates its state only on the steps marked unexpected, holding it otherwise."""

    def __init__(self, n_inputs: int, n_classes: int, hidden: int):
        super().__init__()
        self.embedding = nn.Embedding(n_inputs, 16, padding_idx=0)
        self.cell = nn.GRUCell(16, hidden)
        self.next_symbol = nn.Linear(hidden, n_classes)
        self.hidden = hidden

    def forward(self, tokens: torch.Tensor, unexpected: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B, L, C), states (B, L, H)): the state after step t has seen the unexpected inputs ≤ t."""
        e = self.embedding(tokens)
        h = e.new_zeros(len(tokens), self.hidden)
        states = []
        for t in range(tokens.shape[1]):
            h = torch.where(unexpected[:, t:t + 1], self.cell(e[:, t], h), h)
            states.append(h)
        states = torch.stack(states, 1)
        return self.next_symbol(states), states


def unexpected_inputs(a_logits: torch.Tensor, targets: torch.Tensor, confidence: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(A failed on step t's target (B, L), input t was unexpected (B, L)); input 0 is always unexpected."""
    p_actual = torch.softmax(a_logits, -1).gather(-1, targets.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    failed = (p_actual < confidence) & (targets != IGNORE_LABEL)
    unexpected = torch.cat([torch.ones_like(failed[:, :1]), failed[:, :-1]], dim=1)
    return failed, unexpected


def chunker_losses(automatizer: Automatizer, chunker: Chunker, tokens: torch.Tensor, targets: torch.Tensor,
                   confidence: float) -> dict[str, torch.Tensor]:
    """The three training losses on a batch, and what the evaluation needs:

    next = CE(A's next-symbol logits, targets) over all steps;
    state = mean squared error between A's guess of C's state and C's state (C's side detached);
    state_relative = that error over the variance of C's states (1 − R², no gradient);
    chunker = CE(C's logits, targets) over the steps A failed on (0 when none).
    """
    a_logits, a_state = automatizer(tokens)
    failed, unexpected = unexpected_inputs(a_logits.detach(), targets, confidence)
    c_logits, c_states = chunker(tokens, unexpected)
    real = targets != IGNORE_LABEL
    state = F.mse_loss(a_state[real], c_states.detach()[real])
    out = {"next": F.cross_entropy(a_logits[real], targets[real]),
           "state": state,
           # the same error as a share of the chunker's state variance: 1 − R², comparable across epochs
           # while the chunker's states themselves grow from their small initial values
           "state_relative": (state.detach() / c_states.detach()[real].var(0).mean().clamp_min(1e-8)),
           "chunker": F.cross_entropy(c_logits[failed], targets[failed]) if bool(failed.any())
           else c_logits.sum() * 0.0,
           "a_logits": a_logits, "c_logits": c_logits, "failed": failed}
    return out


@dataclass
class ChunkerResult:
    automatizer: Automatizer        # CPU, eval mode
    chunker: Chunker
    history: list[dict]             # per epoch: losses, chunker's share and accuracies per part (see ChunkerRun)
    symbols: tuple[str, ...]        # output symbol names
    example: list[str]              # one test sequence, as symbols (the first input onwards)
    example_owner: list[str]        # per predicted symbol (example[1:]): "A" (the automatizer predicted it) or "C" (the chunker's)
    config: ChunkerConfig
    seed: int
    stopped_early: bool = False

    def summary(self) -> str:
        return describe_takeover(self.history)


def describe_takeover(history: list[dict]) -> str:
    """A plain sentence on how far the automatizer took over from the chunker."""
    if not history:
        return "Nothing trained yet."
    first, last = history[0], history[-1]
    return (f"The chunker's share of the predictions fell from {100 * first['share_all']:.0f} % to "
            f"{100 * last['share_all']:.0f} % over {len(history)} epochs; on the long-lag steps (the end symbol, "
            f"which needs the start remembered) from {100 * first['share_long_lag']:.0f} % to "
            f"{100 * last['share_long_lag']:.0f} %, where the automatizer alone now predicts "
            f"{100 * last['automatizer_long_lag']:.0f} % right. The unpredictable starts stay with the chunker "
            f"({100 * last['share_unpredictable']:.0f} %): nobody can predict a coin flip.")


class ChunkerRun:
    """The automatizer and the chunker trained together on the toy, one epoch per `step()`.

    History entries (one per epoch, test set, eval mode): "next_loss", "state_loss",
    "chunker_loss" (training means); "share_<part>" / "share_all": share of the steps
    handed to the chunker; "automatizer_<part>": A alone's accuracy; "system_<part>":
    accuracy of A where it is confident, C elsewhere; "state_loss_test", and
    "state_relative_test" (the state error over the variance of C's states, 1 − R²).
    """

    def __init__(self, config: ChunkerConfig = ChunkerConfig(), seed: int = 0):
        self.config, self.seed = config, seed
        self.symbols = chunk_symbols(config.lag)
        n_in, n_out = len(self.symbols) + 1, len(self.symbols)
        self.train_data = chunk_sequences(config.n_train, config.episodes, config.lag, seed)
        self.test_data = chunk_sequences(config.n_test, config.episodes, config.lag, seed + 10_000)
        self.automatizer = seeded_model(lambda: Automatizer(n_in, n_out, config.hidden, config.hidden), seed)
        self.chunker = seeded_model(lambda: Chunker(n_in, n_out, config.hidden), seed + 1)
        self.optimizer = make_optimizer(nn.ModuleList([self.automatizer, self.chunker]), config.train)
        self.generator = torch.Generator().manual_seed(seed)
        self.steps_per_epoch = -(-config.n_train // config.train.batch_size)
        self.step_count = 0
        self.history: list[dict] = []

    @property
    def done(self) -> bool:
        return len(self.history) >= self.config.train.epochs

    def progress(self) -> RunProgress:
        n, total = len(self.history), self.config.train.epochs
        text = f"automatizer and chunker: epoch {n} / {total}"
        if self.history:
            text += f", chunker's share {100 * self.history[-1]['share_all']:.0f} %"
        return RunProgress(n / total, text, {"chunker's share": [h["share_all"] for h in self.history],
                                             "long-lag share": [h["share_long_lag"] for h in self.history]})

    def step(self) -> dict:
        if self.done:
            raise RuntimeError("the chunker demo has trained all its epochs")
        with GLOBAL_RNG_LOCK:   # no dropout here: the global RNG is untouched, the lock keeps the habit
            return self._step()

    def _step(self) -> dict:
        cfg = self.config
        t0 = time.perf_counter()
        tokens, targets, _ = self.train_data
        self.automatizer.train()
        self.chunker.train()
        total_steps = self.steps_per_epoch * cfg.train.epochs
        perm = torch.randperm(len(tokens), generator=self.generator)
        sums = {"next": 0.0, "state": 0.0, "chunker": 0.0}
        n = 0
        for i in range(0, len(perm), cfg.train.batch_size):
            idx = perm[i:i + cfg.train.batch_size]
            losses = chunker_losses(self.automatizer, self.chunker, tokens[idx], targets[idx], cfg.confidence)
            loss = losses["next"] + cfg.state_weight * losses["state"] + losses["chunker"]
            for group in self.optimizer.param_groups:
                group["lr"] = scheduled_lr(cfg.train, self.step_count, total_steps)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.step_count += 1
            for k in sums:
                sums[k] += float(losses[k].detach())
            n += 1
        entry = {"epoch": len(self.history) + 1, **{f"{k}_loss": v / n for k, v in sums.items()},
                 **self._evaluate(), "seconds": time.perf_counter() - t0}
        self.history.append(entry)
        return entry

    @torch.no_grad()
    def _evaluate(self) -> dict:
        tokens, targets, parts = self.test_data
        self.automatizer.eval()
        self.chunker.eval()
        losses = chunker_losses(self.automatizer, self.chunker, tokens, targets, self.config.confidence)
        failed = losses["failed"]
        a_right = losses["a_logits"].argmax(-1) == targets
        c_right = losses["c_logits"].argmax(-1) == targets
        system_right = torch.where(failed, c_right, a_right)
        out = {"state_loss_test": float(losses["state"]), "state_relative_test": float(losses["state_relative"]),
               "share_all": float(failed.float().mean()),
               "automatizer_all": float(a_right.float().mean()), "system_all": float(system_right.float().mean())}
        for k, part in enumerate(PARTS):
            rows = parts == k
            out[f"share_{part}"] = float(failed[rows].float().mean())
            out[f"automatizer_{part}"] = float(a_right[rows].float().mean())
            out[f"system_{part}"] = float(system_right[rows].float().mean())
        return out

    def result(self) -> ChunkerResult:
        a, c = copy.deepcopy(self.automatizer).eval(), copy.deepcopy(self.chunker).eval()
        tokens, targets, _ = self.test_data
        with torch.no_grad():
            failed = chunker_losses(a, c, tokens[:1], targets[:1], self.config.confidence)["failed"][0]
        example = [self.symbols[int(t) - 1] for t in tokens[0]] + [self.symbols[int(targets[0, -1])]]
        owner = ["C" if bool(f) else "A" for f in failed]
        return ChunkerResult(a, c, [dict(h) for h in self.history], self.symbols, example, owner,
                             self.config, self.seed, stopped_early=not self.done)


def chunker_takeover_shares(history: list[dict]) -> dict[str, np.ndarray]:
    """Per part (and "all"): the chunker's share of the predictions at each epoch, for a curve."""
    return {part: np.array([h[f"share_{part}"] for h in history]) for part in ("all",) + PARTS}
