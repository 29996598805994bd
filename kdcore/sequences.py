"""Sequence datasets made in code, seeded and small: the embedded Reber grammar and user sessions.

Both tasks are next-symbol prediction: the input at step t is symbol x_t, the
target is x_{t+1}. A sequence is stored as `tokens` (input ids, 0 = padding)
and `targets` (class ids, `IGNORE_LABEL` on padding), both (N, L), plus
`true_probs` (N, L, C): the next-symbol distribution of the process that made
the data, given the prefix. With the true distribution known, a prediction is
counted right when the predicted symbol is one the process makes most likely
next (`best_guess` in `kdcore.seqdistill`): a perfect model scores 100 %, which
plain accuracy against the sampled next symbol cannot (its ceiling is the
process's own randomness).

- `reber` (the embedded Reber grammar; Reber 1967, used for recurrent networks
  by Cleeremans, Servan-Schreiber & McClelland 1989 and Hochreiter &
  Schmidhuber 1997): strings B (T|P) <Reber string> (same T|P) E. Each state of
  the grammar has at most two next symbols, drawn 50/50, so the legal next
  symbols are the most likely ones. The step before the final E must repeat
  the second symbol of the string: a model has to carry it across the whole
  inner string (`key_steps` marks that step).
- `events` (user sessions, in the spirit of per-campaign models): each session
  belongs to a campaign (its first input token, known) and to a hidden user
  behaviour (browser, bargain hunter, buyer; not shown). Events follow a Markov
  chain whose transition matrix depends on campaign and behaviour, until
  "buy" (a conversion) or "leave". A model must infer the behaviour from the
  events so far to predict the next one; `true_probs` is the exact posterior
  prediction (a forward pass over behaviours).

`make_sequence_dataset(task, seed)` gives train / validation / test splits as a
`SeqDataset` of `SeqSplit`s; the task's world (the grammar, the campaigns'
transition matrices) is fixed by `world_seed`, the sampled sequences by `seed`.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np
import torch

from kdcore.losses import IGNORE_LABEL

PAD = 0  # input token id of padding (targets there are IGNORE_LABEL)

# ---------------------------------------------------------------- the embedded Reber grammar

REBER_SYMBOLS = ("B", "T", "P", "S", "X", "V", "E")

# the inner Reber grammar: state -> [(symbol, next state)], each edge drawn with equal probability;
# state 0 follows the initial B, "end" expects the final E
_REBER_EDGES = {
    0: [("T", 1), ("P", 2)],
    1: [("S", 1), ("X", 3)],
    2: [("T", 2), ("V", 4)],
    3: [("X", 2), ("S", "end")],
    4: [("P", 3), ("V", "end")],
}


@functools.cache
def embedded_reber_automaton() -> dict:
    """The embedded Reber grammar as a deterministic automaton: state -> {symbol: next state}.

    States: "start" -(B)-> "which" -(T|P)-> (k, "pre") -(B)-> (k, 0) ... inner
    states ... (k, "end") -(E)-> (k, "post") -(k)-> "last" -(E)-> "accept",
    where k is the remembered second symbol. Every state's next symbols are
    equally likely when generating.
    """
    auto: dict = {"start": {"B": "which"}, "which": {"T": ("T", "pre"), "P": ("P", "pre")},
                  "last": {"E": "accept"}, "accept": {}}
    for k in ("T", "P"):
        auto[(k, "pre")] = {"B": (k, 0)}
        for state, edges in _REBER_EDGES.items():
            auto[(k, state)] = {sym: (k, nxt) for sym, nxt in edges}
        auto[(k, "end")] = {"E": (k, "post")}
        auto[(k, "post")] = {k: "last"}
    return auto


def is_embedded_reber(string: str) -> bool:
    """True if `string` (e.g. "BTBTXSETE") is a sentence of the embedded Reber grammar."""
    auto, state = embedded_reber_automaton(), "start"
    for sym in string:
        state = auto[state].get(sym)
        if state is None:
            return False
    return state == "accept"


def generate_embedded_reber(rng: np.random.Generator, max_len: int = 30) -> tuple[str, list[tuple[str, ...]]]:
    """One string of at most `max_len` symbols (longer draws are redrawn) and, per symbol, the
    legal symbols that may follow it (empty after the final E)."""
    auto = embedded_reber_automaton()
    while True:
        state, out, nexts = "start", [], []
        while state != "accept" and len(out) <= max_len:
            options = sorted(auto[state])
            sym = options[rng.integers(len(options))]
            out.append(sym)
            state = auto[state][sym]
            nexts.append(tuple(sorted(auto[state])))
        if state == "accept" and len(out) <= max_len:
            return "".join(out), nexts


# ---------------------------------------------------------------- user sessions

EVENT_NAMES = ("view", "search", "click_ad", "add_to_cart", "remove", "checkout", "buy", "leave")
END_EVENTS = ("buy", "leave")
BEHAVIOURS = ("browser", "bargain hunter", "buyer")

# base next-event weights per hidden behaviour (rows: current event, or "start"; columns: EVENT_NAMES);
# each campaign multiplies them by its own log-normal noise
_BASE_WEIGHTS = {
    "browser": {
        "start": [6, 3, 1, 0.2, 0, 0, 0, 0.5],
        "view": [5, 2, 1, 0.5, 0, 0, 0, 1.5],
        "search": [4, 2, 0.5, 0.2, 0, 0, 0, 1],
        "click_ad": [4, 1, 0.3, 0.3, 0, 0, 0, 1.5],
        "add_to_cart": [3, 1, 0.2, 0.2, 1.5, 0.2, 0, 1],
        "remove": [3, 1, 0.3, 0.2, 0, 0, 0, 2],
        "checkout": [1, 0, 0, 0, 0.5, 0, 0.5, 2],
    },
    "bargain hunter": {
        "start": [1, 5, 3, 0, 0, 0, 0, 0.3],
        "view": [1, 4, 3, 1, 0.2, 0, 0, 0.5],
        "search": [3, 2, 2, 1, 0, 0, 0, 0.5],
        "click_ad": [3, 1, 1, 2, 0, 0, 0, 0.3],
        "add_to_cart": [1, 2, 1, 0.5, 2, 1, 0, 0.3],
        "remove": [1, 3, 2, 0.5, 0.3, 0, 0, 1],
        "checkout": [0, 1, 0, 0, 1, 0, 1.5, 1],
    },
    "buyer": {
        "start": [4, 2, 0.2, 1, 0, 0, 0, 0.1],
        "view": [1, 0.5, 0.1, 4, 0, 0.5, 0, 0.2],
        "search": [3, 0.3, 0, 1, 0, 0, 0, 0.1],
        "click_ad": [2, 0.2, 0, 1, 0, 0, 0, 0.3],
        "add_to_cart": [1, 0.3, 0, 1, 0.2, 4, 0, 0.1],
        "remove": [2, 0.5, 0, 1, 0, 0.5, 0, 0.3],
        "checkout": [0.2, 0, 0, 0, 0.1, 0, 6, 0.3],
    },
}
_ROWS = ("start",) + EVENT_NAMES[:6]   # rows with a next event (buy and leave end the session)


@functools.cache
def campaign_world(n_campaigns: int, world_seed: int, noise: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """Per campaign: the behaviours' prior (G, K) and their next-event matrices (G, K, 7, E) over
    rows ("start", view, ..., checkout), drawn once from `world_seed`."""
    rng = np.random.default_rng(10_000 + world_seed)
    base = np.array([[_BASE_WEIGHTS[b][r] for r in _ROWS] for b in BEHAVIOURS], dtype=float)   # (K, 7, E)
    trans = base[None] * np.exp(noise * rng.standard_normal((n_campaigns,) + base.shape))
    trans /= trans.sum(-1, keepdims=True)
    prior = rng.dirichlet(np.full(len(BEHAVIOURS), 2.0), size=n_campaigns)
    return prior, trans


def generate_session(rng: np.random.Generator, campaign: int, prior: np.ndarray, trans: np.ndarray,
                     max_events: int) -> tuple[list[int], np.ndarray, int]:
    """One session of campaign `campaign`: its event ids, the exact next-event distribution after
    each prefix (campaign token, then each event but the last: (len(events), E)), and its hidden
    behaviour. The session stops at buy/leave or after `max_events` events."""
    g_prior, g_trans = prior[campaign], trans[campaign]           # (K,), (K, 7, E)
    behaviour = int(rng.choice(len(g_prior), p=g_prior))
    events, probs = [], []
    post = g_prior.copy()                                          # P(behaviour | events so far)
    row = 0                                                        # "start"
    end_ids = {EVENT_NAMES.index(e) for e in END_EVENTS}
    while len(events) < max_events:
        probs.append(post @ g_trans[:, row])                       # exact next-event distribution
        e = int(rng.choice(len(EVENT_NAMES), p=g_trans[behaviour, row]))
        post = post * g_trans[:, row, e]
        post /= post.sum()
        events.append(e)
        if e in end_ids:
            break
        row = 1 + e
    return events, np.array(probs), behaviour


# ---------------------------------------------------------------- datasets


@dataclass(frozen=True)
class SeqTaskConfig:
    task: str = "events"        # "events" (user sessions per campaign, the default) or "reber" (embedded Reber grammar)
    n_train: int = 1000         # training sequences (the teacher's training set)
    n_val: int = 200            # validation sequences (curves during training)
    n_test: int = 500           # test sequences (every reported number)
    max_len: int = 30           # Reber: longest string in symbols; events: most events per session
    n_campaigns: int = 4        # events only: campaigns, each with its own transition matrices
    world_seed: int = 0         # events only: draws the campaigns' matrices (the data seed draws sessions)

    def __post_init__(self):
        if self.task not in SEQUENCE_TASKS:
            raise ValueError(f"unknown sequence task {self.task!r}; expected one of {sorted(SEQUENCE_TASKS)}")
        if min(self.n_train, self.n_val, self.n_test) < 1:
            raise ValueError("every split needs at least one sequence")
        if self.task == "reber" and self.max_len < 9:
            raise ValueError("the shortest embedded Reber string has 9 symbols: max_len must be at least 9")
        if self.max_len < 2 or self.n_campaigns < 1:
            raise ValueError("max_len must be at least 2 and there must be at least one campaign")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SeqTaskConfig":
        return cls(**d)


SEQUENCE_TASKS = {
    "reber": "Embedded Reber grammar: predict the next symbol; the end must repeat the 2nd symbol",
    "events": "User sessions of campaigns with hidden behaviours: predict the next event (buy = conversion)",
}


@dataclass(frozen=True, eq=False)
class SeqSplit:
    tokens: torch.Tensor        # (N, L) input ids, PAD (0) after the end
    targets: torch.Tensor       # (N, L) next-symbol class ids, IGNORE_LABEL after the end
    true_probs: torch.Tensor    # (N, L, C) the process's next-symbol distribution given the prefix
    groups: torch.Tensor        # (N,) campaign (events) or the remembered symbol (Reber: 0 = T, 1 = P)
    key_steps: torch.Tensor     # (N, L) bool: steps whose target needs long memory (Reber's final T/P)
    strings: tuple[str, ...] = ()   # readable sequences (Reber strings; events joined by spaces)

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def mask(self) -> torch.Tensor:
        """(N, L) bool: the real steps (not padding)."""
        return self.targets != IGNORE_LABEL

    @property
    def lengths(self) -> torch.Tensor:
        return self.mask.sum(1)

    def subset(self, idx) -> "SeqSplit":
        idx = torch.as_tensor(idx, dtype=torch.long)
        strings = tuple(self.strings[i] for i in idx.tolist()) if self.strings else ()
        return SeqSplit(self.tokens[idx], self.targets[idx], self.true_probs[idx], self.groups[idx],
                        self.key_steps[idx], strings)


@dataclass(frozen=True, eq=False)
class SeqDataset:
    name: str                           # the task ("reber" or "events")
    train: SeqSplit
    val: SeqSplit
    test: SeqSplit
    input_names: tuple[str, ...]        # name of each input token id (0 = padding)
    class_names: tuple[str, ...]        # name of each output class (the next symbol)
    group_names: tuple[str, ...]        # name of each value of `groups`
    task: SeqTaskConfig
    seed: int

    @property
    def n_inputs(self) -> int:
        return len(self.input_names)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def max_len(self) -> int:
        return self.train.tokens.shape[1]


def _pack(seqs_in: list[list[int]], seqs_out: list[list[int]], probs: list[np.ndarray], groups: list[int],
          keys: list[list[bool]], strings: list[str], length: int, n_classes: int) -> SeqSplit:
    n = len(seqs_in)
    tokens = torch.full((n, length), PAD, dtype=torch.long)
    targets = torch.full((n, length), IGNORE_LABEL, dtype=torch.long)
    true_probs = torch.zeros(n, length, n_classes)
    key_steps = torch.zeros(n, length, dtype=torch.bool)
    for i, (a, b, p, k) in enumerate(zip(seqs_in, seqs_out, probs, keys)):
        tokens[i, :len(a)] = torch.tensor(a)
        targets[i, :len(b)] = torch.tensor(b)
        true_probs[i, :len(p)] = torch.as_tensor(p, dtype=torch.float32)
        key_steps[i, :len(k)] = torch.tensor(k, dtype=torch.bool)
    return SeqSplit(tokens, targets, true_probs, torch.tensor(groups, dtype=torch.long), key_steps, tuple(strings))


def _reber_split(n: int, rng: np.random.Generator, max_len: int) -> SeqSplit:
    sym = {s: i for i, s in enumerate(REBER_SYMBOLS)}
    ins, outs, probs, groups, keys, strings = [], [], [], [], [], []
    for _ in range(n):
        s, nexts = generate_embedded_reber(rng, max_len)
        ins.append([1 + sym[c] for c in s[:-1]])                 # input ids: 1 + symbol index
        outs.append([sym[c] for c in s[1:]])
        p = np.zeros((len(s) - 1, len(REBER_SYMBOLS)))
        for t, legal in enumerate(nexts[:-1]):
            p[t, [sym[c] for c in legal]] = 1.0 / len(legal)
        probs.append(p)
        groups.append(0 if s[1] == "T" else 1)
        keys.append([t == len(s) - 3 for t in range(len(s) - 1)])  # target s[-2]: the repeated symbol
        strings.append(s)
    return _pack(ins, outs, probs, groups, keys, strings, max_len - 1, len(REBER_SYMBOLS))


def _events_split(n: int, rng: np.random.Generator, task: SeqTaskConfig) -> SeqSplit:
    prior, trans = campaign_world(task.n_campaigns, task.world_seed)
    ins, outs, probs, groups, keys, strings = [], [], [], [], [], []
    first_campaign_token = 1 + len(EVENT_NAMES)
    for _ in range(n):
        g = int(rng.integers(task.n_campaigns))
        events, p, _behaviour = generate_session(rng, g, prior, trans, task.max_len)
        ins.append([first_campaign_token + g] + [1 + e for e in events[:-1]])
        outs.append(events)
        probs.append(p)
        groups.append(g)
        keys.append([False] * len(events))
        strings.append(f"campaign {g + 1}: " + " ".join(EVENT_NAMES[e] for e in events))
    return _pack(ins, outs, probs, groups, keys, strings, task.max_len, len(EVENT_NAMES))


@functools.lru_cache(maxsize=16)
def make_sequence_dataset(task: SeqTaskConfig = SeqTaskConfig(), seed: int = 0) -> SeqDataset:
    """The train / validation / test splits of `task`, drawn from `seed` (memoised; read-only)."""
    rng = np.random.default_rng(seed)
    if task.task == "reber":
        splits = [_reber_split(n, rng, task.max_len) for n in (task.n_train, task.n_val, task.n_test)]
        return SeqDataset("reber", *splits, input_names=("<pad>",) + REBER_SYMBOLS, class_names=REBER_SYMBOLS,
                          group_names=("T…T", "P…P"), task=task, seed=seed)
    splits = [_events_split(n, rng, task) for n in (task.n_train, task.n_val, task.n_test)]
    campaigns = tuple(f"campaign {g + 1}" for g in range(task.n_campaigns))
    return SeqDataset("events", *splits, input_names=("<pad>",) + EVENT_NAMES + campaigns,
                      class_names=EVENT_NAMES, group_names=campaigns, task=task, seed=seed)
