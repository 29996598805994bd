"""A generalist plus specialists for clusters of confusable classes (Hinton, Vinyals & Dean 2015, section 5).

1. Clusters. The generalist's predicted distributions p(x) over the C classes
   are collected on a split (the training set by default, as in the paper) and
   their C × C covariance Σ = cov_x(p(x)) is computed. Classes that the
   generalist tends to predict together covary; K-means on the columns of Σ
   (the paper's choice; scikit-learn's KMeans, 10 restarts, seeded) groups them.
   One departure, documented: the diagonal of Σ (each class's own variance) is
   set to 0 before clustering. The variances are ten times larger than any
   covariance and make every column look equally unlike every other, so K-means
   on the raw columns only separates the "easy" classes from the rest; with the
   diagonal removed, a column says only how a class covaries with the *others*,
   and on digits the clusters become the familiar pairs {1, 8}, {4, 7}, {0, 6},
   {3, 5, 9}.
2. Specialists. Each cluster S of at least 2 classes (and not all of them)
   gets a specialist: a model with |S| + 1 outputs, its classes plus one
   "dustbin" class for all others. It trains on an enriched set: every training
   example of its classes plus as many drawn at random from the others (the
   paper: half its data from its subset), with labels mapped to the dustbin
   outside S. By default it starts as a copy of the generalist (the paper
   initializes specialists with the generalist's weights): the hidden layers are
   copied, the output layer keeps the generalist's rows of S, and the dustbin
   row starts as the mean of the other rows. `init="scratch"` trains a freshly
   initialized network of the same architecture instead. The paper's dustbin
   logit correction for the oversampling is not needed here: the combination
   below uses the specialists' in-cluster distributions and their dustbin
   probability only through q's own mass outside S.
3. Combination (section 5.1). For each example, take the generalist's top-n
   classes k (paper: n = 1); the active specialists A_k are those whose cluster
   meets k. The combined distribution q = softmax(z) minimizes

       KL(p_g ‖ q) + Σ_{m ∈ A_k} KL(p_m ‖ q_m),

   q_m being q reduced to specialist m's classes plus its dustbin (the sum of q
   outside S_m). `combine_kl` solves it exactly: with one active specialist
   (always, for n = 1, the clusters being disjoint) the minimum has a closed
   form, q_c = (p_g,c + p_m,c) / 2 inside the cluster and p_g's proportions
   outside (see `combine_kl_single`); with several, EM on q (the objective is
   a coarsened-data multinomial likelihood, convex in q; see `_solve_kl`). `combine_approx` is the simple approximation: inside each
   active cluster, q takes the specialist's in-cluster distribution
   (renormalized without its dustbin) scaled by the generalist's total mass on
   the cluster; outside, q = p_g. Examples with no active specialist keep p_g.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import nn

from kdcore.data import Dataset
from kdcore.models import ModelConfig, build_model
from kdcore.runs import drive
from kdcore.train import EpochLog, History, TrainConfig, Trainer, predict_logits, seeded_model

INITS = ("generalist", "scratch")
COMBINES = ("kl", "approx")


@dataclass(frozen=True)
class SpecialistConfig:
    n_clusters: int = 4             # K of K-means on the covariance columns (digits: 4 gives pairs / triples)
    temperature: float = 1.0        # softmax temperature of the predictions whose covariance is clustered
    split: str = "train"            # where the covariance is measured (the paper: the training set)
    init: str = "generalist"        # "generalist": start from the generalist's weights (paper); "scratch"
    epochs: int = 10                # per specialist; short, since it starts from the generalist
    lr: float = 1e-3                # fine-tuning learning rate (smaller than a from-scratch one)
    batch_size: int = 64            # as the teachers
    seed: int = 0                   # K-means, enrichment sampling, initialization, batch order

    def __post_init__(self):
        if self.n_clusters < 1:
            raise ValueError("the number of clusters must be at least 1")
        if not self.temperature > 0:
            raise ValueError("the temperature must be positive")
        if self.split not in ("train", "val", "test"):
            raise ValueError(f"unknown split {self.split!r}")
        if self.init not in INITS:
            raise ValueError(f"unknown initialization {self.init!r}; expected one of {INITS}")
        if self.epochs < 1 or self.lr <= 0 or self.batch_size < 1:
            raise ValueError("epochs, learning rate and batch size must be positive")

    def to_dict(self) -> dict:
        return asdict(self)

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr)


# ---- 1. clusters ----

def prediction_covariance(probs: torch.Tensor) -> torch.Tensor:
    """C × C covariance of predicted distributions across examples (unbiased, like np.cov(rowvar=False))."""
    p = probs.double()
    if len(p) < 2:
        raise ValueError("the covariance needs at least two examples")
    centered = p - p.mean(0, keepdim=True)
    return centered.T @ centered / (len(p) - 1)


def cluster_classes(cov: torch.Tensor | np.ndarray, n_clusters: int, seed: int = 0) -> list[list[int]]:
    """Partition the classes by K-means on the covariance matrix's columns (diagonal set to 0).

    Returns the clusters as sorted lists of class indices, ordered by their smallest class.
    """
    from sklearn.cluster import KMeans

    m = np.array(cov, dtype=np.float64)
    c = m.shape[0]
    if m.shape != (c, c):
        raise ValueError("the covariance must be a square matrix")
    if not 1 <= n_clusters <= c:
        raise ValueError(f"the number of clusters must be between 1 and the number of classes ({c})")
    np.fill_diagonal(m, 0.0)
    labels = KMeans(n_clusters, n_init=10, random_state=seed).fit_predict(m)
    clusters = [sorted(int(i) for i in np.flatnonzero(labels == k)) for k in range(n_clusters)]
    return sorted((cl for cl in clusters if cl), key=lambda cl: cl[0])


def specialist_clusters(clusters: Sequence[Sequence[int]], n_classes: int) -> list[list[int]]:
    """The clusters that get a specialist: at least 2 classes, and not every class (else no dustbin)."""
    return [list(cl) for cl in clusters if 2 <= len(cl) < n_classes]


def cluster_order(clusters: Sequence[Sequence[int]]) -> list[int]:
    """All classes, grouped by cluster (the order of the covariance heatmap)."""
    return [c for cl in clusters for c in cl]


# ---- 2. specialists ----

def map_labels(y: torch.Tensor, cluster: Sequence[int]) -> torch.Tensor:
    """Class c of the cluster -> its index in the cluster; any other class -> len(cluster) (the dustbin)."""
    lut = torch.full((int(max(int(y.max()) + 1, max(cluster) + 1)),), len(cluster), dtype=torch.int64)
    lut[torch.as_tensor(list(cluster))] = torch.arange(len(cluster))
    return lut[y]


def enriched_indices(y: torch.Tensor, cluster: Sequence[int], seed: int) -> torch.Tensor:
    """Every example of the cluster's classes, plus as many others drawn at random (without replacement)."""
    inside = torch.isin(y, torch.as_tensor(list(cluster)))
    idx_in, idx_out = torch.nonzero(inside).flatten(), torch.nonzero(~inside).flatten()
    g = torch.Generator().manual_seed(seed)
    n_out = min(len(idx_in), len(idx_out))
    picked = idx_out[torch.randperm(len(idx_out), generator=g)[:n_out]]
    return torch.cat([idx_in, picked]).sort().values


def specialist_model(cluster: Sequence[int], dataset: Dataset, model_cfg: ModelConfig, init: str,
                     generalist: nn.Module | None, seed: int) -> nn.Module:
    """A network with len(cluster) + 1 outputs, from the generalist's weights or freshly initialized."""
    k = len(cluster)
    if init == "scratch" or generalist is None:
        return seeded_model(lambda: build_model(model_cfg, dataset.input_shape, k + 1), seed)
    model = copy.deepcopy(generalist)
    head = model[-1]
    if not isinstance(head, nn.Linear):
        raise ValueError("the generalist must end with a linear layer")
    new = nn.Linear(head.in_features, k + 1)
    others = [c for c in range(head.out_features) if c not in set(cluster)]
    with torch.no_grad():
        idx = torch.as_tensor(list(cluster))
        new.weight[:k] = head.weight[idx]
        new.bias[:k] = head.bias[idx]
        # dustbin: the mean of the other classes' rows, its bias raised by log(#others) so that its logit
        # is roughly the log-sum-exp of theirs when their logits are alike
        new.weight[k] = head.weight[others].mean(0)
        new.bias[k] = head.bias[others].mean() + float(np.log(len(others)))
    model[-1] = new
    return model


@dataclass
class Specialist:
    cluster: list[int]                  # the classes it covers (its outputs 0..k-1; output k = dustbin)
    model: nn.Module
    history: History
    test_logits: torch.Tensor           # (N_test, k + 1)
    n_train: int                        # size of its enriched training set

    def in_cluster_accuracy(self, y_test: torch.Tensor) -> float:
        """Accuracy on test examples of its classes, choosing among its classes only."""
        mask = torch.isin(y_test, torch.as_tensor(self.cluster))
        if not bool(mask.any()):
            return float("nan")
        pred = self.test_logits[mask, :len(self.cluster)].argmax(1)
        return float((pred == map_labels(y_test[mask], self.cluster)).float().mean())


class SpecialistRun:
    """Specialists trained one after the other, one epoch per `step()` (for live progress and Stop).

    generalist_logits: the generalist's logits per split (computed once, `TrainedTeacher.logits`).
    """

    def __init__(self, dataset: Dataset, generalist: nn.Module, generalist_logits: dict[str, torch.Tensor],
                 model_cfg: ModelConfig, config: SpecialistConfig, generalist_metrics: dict | None = None):
        if dataset.n_classes < 3:
            raise ValueError("specialists need at least 3 classes (a cluster of several classes plus a dustbin)")
        if config.n_clusters >= dataset.n_classes:
            raise ValueError(f"use fewer clusters than classes (at most {dataset.n_classes - 1})")
        self.dataset, self.generalist, self.config, self.model_cfg = dataset, generalist, config, model_cfg
        self.generalist_logits = generalist_logits
        self.generalist_metrics = generalist_metrics or {}
        probs = torch.softmax(generalist_logits[config.split].double() / config.temperature, 1)
        self.covariance = prediction_covariance(probs)
        self.clusters = cluster_classes(self.covariance, config.n_clusters, config.seed)
        self.targets = specialist_clusters(self.clusters, dataset.n_classes)
        self.specialists: list[Specialist] = []
        self._trainer: Trainer | None = None
        self._history: History | None = None

    @property
    def total_epochs(self) -> int:
        return len(self.targets) * self.config.epochs

    @property
    def epochs_run(self) -> int:
        return len(self.specialists) * self.config.epochs + (self._history.epochs_run if self._history else 0)

    @property
    def done(self) -> bool:
        return len(self.specialists) >= len(self.targets)

    @property
    def current(self) -> list[int] | None:
        return None if self.done else self.targets[len(self.specialists)]

    def _start(self, i: int) -> None:
        ds, cfg, cluster = self.dataset, self.config, self.targets[i]
        seed = cfg.seed + 1000 * (i + 1)
        idx = enriched_indices(ds.y_train, cluster, seed)
        model = specialist_model(cluster, ds, self.model_cfg, cfg.init, self.generalist, seed)
        self._model, self._n_train = model, len(idx)
        self._trainer = Trainer(model, ds.X_train[idx], map_labels(ds.y_train[idx], cluster),
                                cfg.train_config(), seed, X_val=ds.X_val, y_val=map_labels(ds.y_val, cluster),
                                name=f"specialist {cluster}")
        self._history = History()

    def step(self) -> EpochLog:
        """One epoch of the specialist in training (starting the next one when needed)."""
        if self.done:
            raise RuntimeError("every specialist is trained")
        i = len(self.specialists)
        if self._trainer is None:
            self._start(i)
        log = self._trainer.run_epoch()
        self._history.logs.append(log)
        if self._history.epochs_run >= self.config.epochs:
            self._model.eval()
            self.specialists.append(Specialist(self.targets[i], self._model, self._history,
                                               predict_logits(self._model, self.dataset.X_test), self._n_train))
            self._trainer = self._history = None
        return log

    def curves(self) -> dict[str, list[dict]]:
        """Epoch records per specialist (finished ones and the one in training), for live charts."""
        out = {f"specialist {', '.join(map(str, sp.cluster))}": sp.history.to_records() for sp in self.specialists}
        if self._history is not None and self.current is not None:
            out[f"specialist {', '.join(map(str, self.current))}"] = self._history.to_records()
        return out

    def result(self) -> "SpecialistResult":
        """The specialists finished so far (one stopped mid-training is left out)."""
        return SpecialistResult(self.dataset.class_names, self.covariance, self.clusters, list(self.specialists),
                                self.generalist_logits["test"], self.dataset.y_test, self.config,
                                planned=len(self.targets), generalist_metrics=self.generalist_metrics)


def train_specialists(dataset: Dataset, generalist: nn.Module, generalist_logits: dict[str, torch.Tensor],
                      model_cfg: ModelConfig, config: SpecialistConfig) -> "SpecialistResult":
    return drive(SpecialistRun(dataset, generalist, generalist_logits, model_cfg, config))[0]


# ---- 3. combination ----

def _active(gen_logits: torch.Tensor, clusters: Sequence[Sequence[int]], top_n: int) -> torch.Tensor:
    """(N, M) bool: specialist m is active for example n (its cluster meets the generalist's top-n)."""
    top = gen_logits.topk(min(top_n, gen_logits.shape[1]), dim=1).indices            # (N, n)
    return torch.stack([torch.isin(top, torch.as_tensor(list(cl))).any(1) for cl in clusters], 1) \
        if clusters else torch.zeros(len(gen_logits), 0, dtype=torch.bool)


def _reduced_log_q(log_q: torch.Tensor, cluster: Sequence[int]) -> torch.Tensor:
    """log of q reduced to the cluster's classes plus the dustbin (log of q's mass outside the cluster)."""
    idx = torch.as_tensor(list(cluster))
    out_mask = torch.ones(log_q.shape[1], dtype=torch.bool)
    out_mask[idx] = False
    return torch.cat([log_q[:, idx], torch.logsumexp(log_q[:, out_mask], 1, keepdim=True)], 1)


def kl_objective(z: torch.Tensor, gen_logits: torch.Tensor, spec_logits: Sequence[torch.Tensor],
                 clusters: Sequence[Sequence[int]], active: torch.Tensor) -> torch.Tensor:
    """Per example: KL(p_g ‖ q) + Σ_{m active} KL(p_m ‖ q_m), q = softmax(z) (section 5.1 of the paper)."""
    log_q = torch.log_softmax(z, 1)
    log_pg = torch.log_softmax(gen_logits.to(z.dtype), 1)
    obj = (log_pg.exp() * (log_pg - log_q)).sum(1)
    for m, (sl, cl) in enumerate(zip(spec_logits, clusters)):
        log_pm = torch.log_softmax(sl.to(z.dtype), 1)
        kl = (log_pm.exp() * (log_pm - _reduced_log_q(log_q, cl))).sum(1)
        obj = obj + active[:, m].to(z.dtype) * kl
    return obj


def combine_kl_single(gen_logits: torch.Tensor, spec_logits: torch.Tensor, cluster: Sequence[int]) -> torch.Tensor:
    """Exact minimizer of KL(p_g ‖ q) + KL(p_m ‖ q_m) for ONE active specialist, in closed form (log q).

    Write the objective as a cross-entropy with weights w_c = p_g,c + p_m,c on the cluster's classes and
    w_out = (p_g's mass outside the cluster) + p_m,dustbin on the rest (total weight 2); given the mass r
    outside, the outside classes keep p_g's proportions. The minimum is q_c = w_c / 2 inside the cluster and
    q_c = p_g,c · w_out / (2 · p_g,out) outside.
    """
    idx = torch.as_tensor(list(cluster))
    pg = torch.softmax(gen_logits.double(), 1)
    pm = torch.softmax(spec_logits.double(), 1)
    k = len(cluster)
    out_mask = torch.ones(pg.shape[1], dtype=torch.bool)
    out_mask[idx] = False
    pg_out = pg[:, out_mask].sum(1, keepdim=True)
    w_out = pg_out + pm[:, k:k + 1]
    q = pg * (w_out / (2 * pg_out.clamp_min(1e-300)))
    q[:, idx] = (pg[:, idx] + pm[:, :k]) / 2
    return torch.log(q.clamp_min(1e-300))


def combine_kl(gen_logits: torch.Tensor, spec_logits: Sequence[torch.Tensor],
               clusters: Sequence[Sequence[int]], top_n: int = 1, max_iter: int = 2000,
               closed_form: bool = True) -> torch.Tensor:
    """Log-probabilities of q minimizing the paper's objective (see `kl_objective`), per example.

    Examples without an active specialist keep the generalist's distribution. With one active
    specialist (always the case for top_n = 1, clusters being disjoint) the minimum has a closed form
    (`combine_kl_single`); with several, EM finds it (`_solve_kl`; `closed_form=False` uses EM
    everywhere: the tests check one against the other).
    """
    active = _active(gen_logits, clusters, top_n)
    out = torch.log_softmax(gen_logits.double(), 1)
    n_active = active.sum(1)
    if closed_form:
        for m, (sl, cl) in enumerate(zip(spec_logits, clusters)):
            rows = active[:, m] & (n_active == 1)
            if bool(rows.any()):
                out[rows] = combine_kl_single(gen_logits[rows], sl[rows], cl)
        numeric = n_active >= 2
    else:
        numeric = n_active >= 1
    if bool(numeric.any()):
        out[numeric] = _solve_kl(gen_logits[numeric], [s[numeric] for s in spec_logits], clusters,
                                 active[numeric], max_iter)
    return out.to(gen_logits.dtype)


def _solve_kl(gen_logits: torch.Tensor, spec_logits: Sequence[torch.Tensor], clusters: Sequence[Sequence[int]],
              active: torch.Tensor, max_iter: int = 2000, tol: float = 1e-13) -> torch.Tensor:
    """Minimize the objective by EM on q (log q out).

    Up to a constant the objective is −Σ_j w_j log q(A_j): the generalist's p_g,c on each class, a
    specialist's p_m,c on each of its classes and its dustbin probability on the set of classes outside
    its cluster. That is the likelihood of coarsened multinomial data, convex in q; EM's update

        q_c ← (p_g,c + Σ_{m active} [c ∈ S_m] p_m,c + [c ∉ S_m] p_m,dustbin · q_c / q(not S_m)) / (1 + #active)

    never increases it and converges to the minimum.
    """
    pg = torch.softmax(gen_logits.double(), 1)
    n_act = active.sum(1, keepdim=True).double()
    fixed = pg.clone()                       # the weights that land on single classes
    dust: list[tuple[torch.Tensor, torch.Tensor]] = []
    for m, (sl, cl) in enumerate(zip(spec_logits, clusters)):
        pm = torch.softmax(sl.double(), 1)
        on = active[:, m:m + 1].double()
        idx = torch.as_tensor(list(cl))
        fixed[:, idx] += on * pm[:, :len(cl)]
        outside = torch.ones(pg.shape[1], dtype=torch.double)
        outside[idx] = 0.0
        dust.append((on * pm[:, len(cl):len(cl) + 1], outside))
    q = pg.clone()
    for _ in range(max_iter):
        new = fixed.clone()
        for w, outside in dust:
            mass_out = (q * outside).sum(1, keepdim=True).clamp_min(1e-300)
            new += w * outside * q / mass_out
        new /= 1.0 + n_act
        done = float((new - q).abs().max()) < tol
        q = new
        if done:
            break
    return torch.log(q.clamp_min(1e-300))


def combine_approx(gen_logits: torch.Tensor, spec_logits: Sequence[torch.Tensor],
                   clusters: Sequence[Sequence[int]], top_n: int = 1) -> torch.Tensor:
    """Log-probabilities of the simple combination: inside each active cluster, the specialist's in-cluster
    distribution times the generalist's mass on the cluster; elsewhere the generalist's probabilities."""
    active = _active(gen_logits, clusters, top_n)
    q = torch.softmax(gen_logits.double(), 1)
    for m, (sl, cl) in enumerate(zip(spec_logits, clusters)):
        idx = torch.as_tensor(list(cl))
        rows = active[:, m]
        if not bool(rows.any()):
            continue
        mass = q[rows][:, idx].sum(1, keepdim=True)
        inside = torch.softmax(sl[rows][:, :len(cl)].double(), 1)
        block = q[rows]
        block[:, idx] = mass * inside
        q[rows] = block
    return torch.log(q.clamp_min(1e-300)).to(gen_logits.dtype)


@dataclass
class SpecialistResult:
    class_names: tuple[str, ...]
    covariance: torch.Tensor                  # (C, C) covariance of the generalist's predictions
    clusters: list[list[int]]                 # every cluster K-means found (singletons included)
    specialists: list[Specialist]             # the trained specialists (clusters of >= 2 classes)
    generalist_test_logits: torch.Tensor
    y_test: torch.Tensor
    config: SpecialistConfig
    planned: int = 0                          # how many specialists were to be trained
    generalist_metrics: dict = field(default_factory=dict)
    _combined: dict = field(default_factory=dict, repr=False)

    @property
    def complete(self) -> bool:
        return len(self.specialists) >= self.planned

    @property
    def covered(self) -> list[int]:
        """Classes that have a specialist."""
        return sorted(c for s in self.specialists for c in s.cluster)

    def combined(self, method: str = "kl", top_n: int = 1) -> torch.Tensor:
        """Combined test log-probabilities (memoised per method and n)."""
        if method not in COMBINES:
            raise ValueError(f"unknown combination {method!r}; expected one of {COMBINES}")
        key = (method, int(top_n))
        if key not in self._combined:
            fn = combine_kl if method == "kl" else combine_approx
            self._combined[key] = fn(self.generalist_test_logits, [s.test_logits for s in self.specialists],
                                     [s.cluster for s in self.specialists], top_n)
        return self._combined[key]

    def report(self, method: str = "kl", top_n: int = 1) -> dict:
        """Overall and per-class accuracy of generalist and combination; predictions fixed and broken."""
        y = self.y_test
        pred_g = self.generalist_test_logits.argmax(1)
        pred_c = self.combined(method, top_n).argmax(1)
        right_g, right_c = pred_g == y, pred_c == y
        per_class = []
        for c in range(len(self.class_names)):
            m = y == c
            n = int(m.sum())
            per_class.append({"class": self.class_names[c], "index": c, "n": n,
                              "covered": c in self.covered,
                              "generalist": float(right_g[m].float().mean()) if n else float("nan"),
                              "combined": float(right_c[m].float().mean()) if n else float("nan")})
        cov_mask = torch.isin(y, torch.as_tensor(self.covered)) if self.covered else torch.zeros_like(y, dtype=torch.bool)
        changed = pred_g != pred_c
        return {
            "generalist": float(right_g.float().mean()),
            "combined": float(right_c.float().mean()),
            "generalist_covered": float(right_g[cov_mask].float().mean()) if bool(cov_mask.any()) else float("nan"),
            "combined_covered": float(right_c[cov_mask].float().mean()) if bool(cov_mask.any()) else float("nan"),
            "n_covered": int(cov_mask.sum()),
            "changed": int(changed.sum()),
            "fixed": int((changed & right_c).sum()),
            "broken": int((changed & right_g).sum()),
            "per_class": per_class,
        }


def describe_gain(report: dict) -> str:
    """One honest sentence about what the specialists did."""
    g, c = 100 * report["generalist"], 100 * report["combined"]
    gc, cc = 100 * report["generalist_covered"], 100 * report["combined_covered"]
    if report["changed"] == 0:
        return (f"The specialists changed no prediction: the combination and the generalist both reach "
                f"{g:.1f} % test accuracy.")
    net = report["fixed"] - report["broken"]
    s = (f"The specialists changed {report['changed']} test predictions: {report['fixed']} fixed, "
         f"{report['broken']} broken. ")
    if net > 0:
        s += (f"Overall {g:.1f} % → {c:.1f} %; on the classes with a specialist "
              f"{gc:.1f} % → {cc:.1f} %.")
    elif net == 0:
        s += f"No net gain: {g:.1f} % overall either way."
    else:
        s += (f"They did harm here: overall {g:.1f} % → {c:.1f} %; on the classes with a specialist "
              f"{gc:.1f} % → {cc:.1f} %.")
    return s
