"""Weightless: encoding a layer's weights in a Bloomier filter (Reagen et al. 2017, arXiv:1711.04686).

The paper's recipe, as built here:

1. prune the Linear layers by weight magnitude (one global ranking, or per layer) and retrain
   with the masks held;
2. cluster the surviving weights of a layer into V centroids (1-D k-means, linear
   initialization as in Deep Compression), so each survivor is a cluster index in [0, V);
3. store the map position → index in a **Bloomier filter** (Chazelle et al. 2004): a table X
   of m cells of t bits and k hash functions; a lookup returns

       value(x) = M(x) ⊕ X[h₁(x)] ⊕ … ⊕ X[h_k(x)],

   M(x) a t-bit hash mask. Every stored key gets its value back exactly. A key that was never
   stored (a pruned position) gets t random-looking bits: when they form a valid index (< V) a
   *spurious* weight appears there; otherwise the position reads as zero. The rate of spurious
   weights is V / 2^t (each of the V valid values has probability 2^-t): t trades size against it;
4. encode the layers one at a time; each encoded layer is frozen (with its spurious weights) and
   the later layers are retrained a few epochs to absorb the errors.

Construction is the standard peeling algorithm (as for XOR filters): positions come from k
disjoint segments of m/k cells, a cell hit by exactly one remaining key is peeled with that key,
and the keys are assigned in the reverse order of peeling. With k = 3 peeling succeeds with high
probability when m ≥ ~1.23·n; on failure the filter is rebuilt with the next seed (`max_tries`).

Size (bits), honest: m·t for the table, V·32 for the float32 centroids, a 32-bit header per
field (n_keys, m, t, k, seed, V, rows, cols: 8 × 32 bits per layer), plus the float32 biases.
Prune + quantize sizes for comparison come from `kdcore.quantize.model_size`.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from kdcore.data import Dataset
from kdcore.metrics import evaluate
from kdcore.models import model_bytes
from kdcore.quantize import QuantConfig, model_size, quantize_model
from kdcore.train import TrainConfig, Trainer
from kdcore.runs import drive

HEADER_BITS = 8 * 32      # per encoded layer: n_keys, m, t, k, seed, V, rows, cols as 32-bit integers
CENTROID_BITS = 32        # each cluster centre is a float32
_MASK64 = (1 << 64) - 1


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer on uint64 arrays (a good, fast integer hash)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def default_cells_per_key(k: int) -> float:
    """Table cells per stored key at which k-partite peeling succeeds almost always (k = 3: 1.23)."""
    return {2: 2.1, 3: 1.25, 4: 1.32, 5: 1.4}.get(k, 1.5)


class BloomierFilter:
    """A static map from integer keys to t-bit values (numpy), built by peeling.

    keys: distinct non-negative integers (< 2^63); values: integers in [0, 2^t).
    t: bits per cell (1..32); k: hash functions (≥ 2); cells_per_key: table size m / n
    (default for k); seed: first hash seed; max_tries: reseeds before giving up.
    """

    def __init__(self, keys, values, t: int = 8, k: int = 3, cells_per_key: float | None = None,
                 seed: int = 0, max_tries: int = 50):
        keys = np.asarray(keys, dtype=np.int64).ravel()
        values = np.asarray(values, dtype=np.int64).ravel()
        if len(keys) != len(values):
            raise ValueError(f"{len(keys)} keys but {len(values)} values")
        if not 1 <= t <= 32 or k < 2:
            raise ValueError("t must be in 1..32 and k at least 2")
        if len(values) and (values.min() < 0 or values.max() >= 2 ** t):
            raise ValueError(f"values must lie in [0, 2^{t})")
        if len(np.unique(keys)) != len(keys):
            raise ValueError("keys must be distinct")
        self.t, self.k, self.n_keys = int(t), int(k), len(keys)
        ratio = default_cells_per_key(k) if cells_per_key is None else float(cells_per_key)
        self.segment = max(1, math.ceil(ratio * max(len(keys), 1) / k) + 1)
        self.m = self.segment * k
        self.tries = 0
        for attempt in range(max_tries):
            self.seed = int(seed) + attempt
            self.tries = attempt + 1
            table = self._build(keys, values)
            if table is not None:
                self.table = table
                return
        raise RuntimeError(f"peeling failed {max_tries} times: make the table larger (cells_per_key)")

    # hashing -------------------------------------------------------------------------------
    def positions(self, keys) -> np.ndarray:
        """(n, k) table cells of each key: hash i lands in segment i, so the k cells are distinct."""
        x = np.asarray(keys, dtype=np.int64).ravel().astype(np.uint64)
        base = _splitmix64(x ^ np.uint64((self.seed * 0x632BE59BD9B4E019) & _MASK64))
        cols = []
        for i in range(self.k):
            h = _splitmix64(base + np.uint64(i + 1))
            cols.append((h % np.uint64(self.segment)).astype(np.int64) + i * self.segment)
        return np.stack(cols, axis=1)

    def mask(self, keys) -> np.ndarray:
        """M(x): t bits of hash per key."""
        x = np.asarray(keys, dtype=np.int64).ravel().astype(np.uint64)
        h = _splitmix64(_splitmix64(x ^ np.uint64((self.seed * 0xD6E8FEB86659FD93 + 7) & _MASK64)))
        return (h & np.uint64((1 << self.t) - 1)).astype(np.int64)

    # construction ----------------------------------------------------------------------------
    def _build(self, keys: np.ndarray, values: np.ndarray) -> np.ndarray | None:
        n, m = len(keys), self.m
        table = np.zeros(m, dtype=np.int64)
        if n == 0:
            return table
        H = self.positions(keys)
        count = np.bincount(H.ravel(), minlength=m).tolist()
        xor_key = np.zeros(m, dtype=np.int64)
        np.bitwise_xor.at(xor_key, H.ravel(), np.repeat(np.arange(n, dtype=np.int64), self.k))
        xor_key = xor_key.tolist()
        rows = H.tolist()
        stack = [c for c in range(m) if count[c] == 1]
        order: list[tuple[int, int]] = []
        while stack:
            c = stack.pop()
            if count[c] != 1:
                continue
            key = xor_key[c]
            order.append((key, c))
            for c2 in rows[key]:
                xor_key[c2] ^= key
                count[c2] -= 1
                if count[c2] == 1:
                    stack.append(c2)
        if len(order) < n:
            return None   # a 2-core remains: reseed
        target = (values ^ self.mask(keys)).tolist()
        tab = [0] * m
        for key, c in reversed(order):
            v = target[key]
            for c2 in rows[key]:
                if c2 != c:
                    v ^= tab[c2]
            tab[c] = v
        return np.asarray(tab, dtype=np.int64)

    # queries --------------------------------------------------------------------------------
    def lookup(self, keys) -> np.ndarray:
        """value(x) = M(x) ⊕ X[h₁(x)] ⊕ … ⊕ X[h_k(x)] for each key (stored or not)."""
        H = self.positions(keys)
        out = self.mask(keys)
        for i in range(self.k):
            out = out ^ self.table[H[:, i]]
        return out

    def size_bits(self) -> int:
        """Bits of the table: m cells of t bits (the header is counted by the layer encoding)."""
        return self.m * self.t


# ---------------------------------------------------------------- clustering

def kmeans_1d(x: np.ndarray, n_clusters: int, iters: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means on scalars with linear initialization over [min, max] (Han et al.'s Deep
    Compression found linear init best for weights). Returns (float32 centroids, int index per x)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    if len(x) == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    n_clusters = max(1, min(n_clusters, len(np.unique(x))))
    c = np.linspace(x.min(), x.max(), n_clusters)
    idx = np.zeros(len(x), np.int64)
    for _ in range(iters):
        edges = (c[1:] + c[:-1]) / 2          # sorted centroids: nearest = bucket between midpoints
        idx = np.searchsorted(edges, x)
        sums = np.bincount(idx, weights=x, minlength=n_clusters)
        cnt = np.bincount(idx, minlength=n_clusters)
        new = np.where(cnt > 0, sums / np.maximum(cnt, 1), c)
        new = np.sort(new)
        if np.allclose(new, c):
            c = new
            break
        c = new
    idx = np.searchsorted((c[1:] + c[:-1]) / 2, x)
    return c.astype(np.float32), idx


# ---------------------------------------------------------------- one layer

@dataclass
class EncodedLayer:
    """A weight matrix as a Bloomier filter of cluster indices plus a table of float32 centroids."""
    shape: tuple[int, ...]
    filter: BloomierFilter
    centroids: np.ndarray           # (V,) float32
    n_kept: int                     # stored (non-zero) weights

    @property
    def n_clusters(self) -> int:
        return len(self.centroids)

    def decode(self) -> torch.Tensor:
        """The weight matrix a lookup of every position gives, spurious weights included."""
        n = int(np.prod(self.shape))
        vals = self.filter.lookup(np.arange(n))
        valid = vals < self.n_clusters
        w = np.zeros(n, np.float32)
        w[valid] = self.centroids[vals[valid]]
        return torch.from_numpy(w.reshape(self.shape))

    def size_bits(self) -> int:
        """Filter table + centroid table + header (the bias is not in here)."""
        return self.filter.size_bits() + CENTROID_BITS * self.n_clusters + HEADER_BITS

    def theoretical_fp_rate(self) -> float:
        """P(a pruned position decodes to a weight) = V / 2^t: each valid index has probability 2^-t."""
        return self.n_clusters / 2 ** self.filter.t


def encode_weights(w: torch.Tensor, n_clusters: int = 16, t: int = 8, k: int = 3,
                   cells_per_key: float | None = None, seed: int = 0) -> EncodedLayer:
    """Cluster the non-zero entries of `w` (already pruned) and store their indices by position."""
    flat = w.detach().cpu().numpy().astype(np.float32).ravel()
    keys = np.flatnonzero(flat)
    if n_clusters > 2 ** t:
        raise ValueError(f"{n_clusters} cluster indices do not fit in t = {t} bits")
    centroids, idx = kmeans_1d(flat[keys], n_clusters)
    filt = BloomierFilter(keys, idx, t=t, k=k, cells_per_key=cells_per_key, seed=seed)
    return EncodedLayer(tuple(w.shape), filt, centroids, len(keys))


def measured_fp_rate(layer: EncodedLayer, w_pruned: torch.Tensor) -> float:
    """Fraction of the pruned (zero) positions of `w_pruned` that decode to a non-zero weight."""
    zero = (w_pruned.detach().cpu().numpy().ravel() == 0)
    if not zero.any():
        return math.nan
    vals = layer.filter.lookup(np.flatnonzero(zero))
    return float((vals < layer.n_clusters).mean())


# ---------------------------------------------------------------- the whole model

@dataclass(frozen=True)
class WeightlessConfig:
    sparsity: float = 0.9           # fraction of the Linear layers' weights pruned by magnitude
    scope: str = "global"           # "global": one magnitude ranking over all layers; "layer": each loses `sparsity`
    n_clusters: int = 16            # V: cluster centres per layer (16 = 4-bit indices)
    t: int = 10                     # bits per filter cell: spurious-weight rate V / 2^t
    k: int = 3                      # hash functions (cells read per lookup)
    cells_per_key: float = 1.25     # table cells per stored weight (peeling needs ≥ ~1.23 at k = 3)
    prune_epochs: int = 10          # retraining after pruning, masks held (0: none)
    retrain_epochs: int = 5         # retraining of the later layers after each layer is encoded
    lr: float = 3e-3                # learning rate of both retrainings (AdamW, cosine)
    batch_size: int = 64            # batch size of both retrainings
    temperature: float = 4.0        # KD temperature of the retraining when teacher logits are given
    alpha: float = 0.9              # KD weight of the retraining (1 − alpha on the labels)

    def __post_init__(self):
        if not 0.0 <= self.sparsity < 1.0:
            raise ValueError("the sparsity must be in [0, 1)")
        if self.n_clusters < 1 or self.n_clusters > 2 ** self.t:
            raise ValueError(f"{self.n_clusters} clusters do not fit in t = {self.t} bits")
        if self.scope not in ("global", "layer"):
            raise ValueError(f"unknown scope {self.scope!r}; expected 'global' or 'layer'")
        if self.k < 2 or not 1 <= self.t <= 32:
            raise ValueError("k must be at least 2 and t in 1..32")

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        return (f"Weightless: {100 * self.sparsity:g} % pruned, {self.n_clusters} clusters, "
                f"t = {self.t}, k = {self.k}")


def encodable_layers(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]


@dataclass
class WeightlessStage:
    stage: str              # "original", "pruned", "encoded <layer>", "retrained after <layer>"
    accuracy: float         # test accuracy
    layer: str = ""         # the layer just encoded (or "")
    seconds: float = 0.0

    def row(self) -> dict:
        return {"stage": self.stage, "test accuracy (%)": 100 * self.accuracy, "seconds": round(self.seconds, 2)}


@dataclass
class LayerReport:
    name: str
    shape: tuple[int, ...]
    n_kept: int
    n_clusters: int
    filter_cells: int
    t: int
    k: int
    tries: int              # peeling attempts until success
    filter_bits: int
    centroid_bits: int
    header_bits: int
    bias_bits: int
    dense_bits: int         # weight + bias at float32
    fp_measured: float      # spurious weights / pruned positions
    fp_theory: float        # V / 2^t
    n_spurious: int

    @property
    def total_bits(self) -> int:
        return self.filter_bits + self.centroid_bits + self.header_bits + self.bias_bits

    def row(self) -> dict:
        return {"layer": self.name, "shape": "×".join(map(str, self.shape)), "stored weights": self.n_kept,
                "clusters": self.n_clusters, "filter cells": self.filter_cells, "t": self.t, "k": self.k,
                "filter bits": self.filter_bits, "centroid bits": self.centroid_bits,
                "header bits": self.header_bits, "bias bits": self.bias_bits, "total bits": self.total_bits,
                "float32 bits": self.dense_bits, "ratio": self.dense_bits / max(self.total_bits, 1),
                "spurious weights": self.n_spurious, "FP measured": self.fp_measured,
                "FP theory V/2^t": self.fp_theory, "peeling tries": self.tries}


@dataclass
class WeightlessResult:
    model: nn.Module                       # the decoded model (spurious weights in), eval mode
    config: WeightlessConfig
    stages: list[WeightlessStage]
    layers: list[LayerReport]
    encoded: dict[str, EncodedLayer]
    metrics: dict                          # test metrics of the encoded model, 'bytes' = weightless size
    bits: int                              # weightless size in bits (all layers + other float32 params)
    dense_float32_bits: int                # the original model at float32
    prune_quantize: dict[int, dict]        # bits -> {'bytes', 'accuracy', 'encoding'} of the pruned model PTQ'd
    finished: bool = True

    @property
    def bytes(self) -> int:
        return math.ceil(self.bits / 8)

    @property
    def ratio_vs_float32(self) -> float:
        return self.dense_float32_bits / max(self.bits, 1)

    def fp_summary(self) -> dict:
        """Spurious weights over all pruned positions, measured and in theory (weighted by positions)."""
        pruned = sum(int(np.prod(l.shape)) - l.n_kept for l in self.layers)
        spur = sum(l.n_spurious for l in self.layers)
        theory = sum((int(np.prod(l.shape)) - l.n_kept) * l.fp_theory for l in self.layers)
        return {"pruned positions": pruned, "spurious": spur, "measured": spur / max(pruned, 1),
                "theory": theory / max(pruned, 1)}

    def summary_rows(self) -> list[dict]:
        rows = [{"model": "original, float32", "bytes": self.dense_float32_bits // 8,
                 "test accuracy (%)": 100 * self.stages[0].accuracy, "ratio vs float32": 1.0}]
        for b, pq in sorted(self.prune_quantize.items(), reverse=True):
            rows.append({"model": f"pruned + {b}-bit PTQ ({pq['encoding']})", "bytes": pq["bytes"],
                         "test accuracy (%)": 100 * pq["accuracy"],
                         "ratio vs float32": self.dense_float32_bits / 8 / pq["bytes"]})
        rows.append({"model": self.config.describe(), "bytes": self.bytes,
                     "test accuracy (%)": 100 * self.metrics["accuracy"], "ratio vs float32": self.ratio_vs_float32})
        return rows


class WeightlessRun:
    """Weightless encoding of a trained model, one stage per `step()`:

    step 1 prunes every Linear layer by magnitude (per layer) and retrains with the masks held
    (`prune_epochs`); then each step encodes the next layer (cluster, filter, decode with its
    spurious weights, freeze it) and retrains the layers after it (`retrain_epochs`). `done`
    after the last layer; `result()` may be called at any time (unencoded layers are then
    counted as they would be stored by prune + 32-bit bitmask, i.e. `model_size`).

    teacher_logits: the training split's logits to distill from while retraining (KD with
    `config.temperature`, `config.alpha`), else the labels alone. The input model is not modified.
    """

    def __init__(self, config: WeightlessConfig, dataset: Dataset, model: nn.Module,
                 teacher_logits: torch.Tensor | None = None, seed: int = 0, quant_bits: tuple[int, ...] = (8, 4)):
        self.config, self.dataset, self.seed, self.quant_bits = config, dataset, seed, tuple(quant_bits)
        self.original = copy.deepcopy(model).cpu().eval()
        self.model = copy.deepcopy(self.original)
        self.teacher_logits = teacher_logits
        self.layer_names = [n for n, _ in encodable_layers(self.model)]
        self.stages: list[WeightlessStage] = [WeightlessStage("original", self._acc())]
        self.layers: list[LayerReport] = []
        self.encoded: dict[str, EncodedLayer] = {}
        self.masks: dict[str, torch.Tensor] = {}
        self.pruned_model: nn.Module | None = None
        self._pruned = False

    @property
    def total_steps(self) -> int:
        return 1 + len(self.layer_names)

    @property
    def steps_done(self) -> int:
        return int(self._pruned) + len(self.encoded)

    @property
    def done(self) -> bool:
        return self.steps_done >= self.total_steps

    def _acc(self) -> float:
        ds = self.dataset
        return evaluate(self.model, ds.X_test, ds.y_test)["accuracy"]

    def _layer(self, name: str) -> nn.Linear:
        return dict(self.model.named_modules())[name]

    def _retrain(self, epochs: int, trainable: list[str]) -> None:
        if epochs <= 0 or not trainable:
            return
        cfg = self.config
        for p in self.model.parameters():
            p.requires_grad_(False)
        for n in trainable:
            for p in self._layer(n).parameters():
                p.requires_grad_(True)
        masks = {f"{n}.weight": self.masks[n] for n in trainable}
        params = dict(self.model.named_parameters())

        def keep(_m: nn.Module) -> None:
            with torch.no_grad():
                for pn, mk in masks.items():
                    params[pn].mul_(mk)

        ds = self.dataset
        kw = dict(teacher_logits=self.teacher_logits, temperature=cfg.temperature, alpha=cfg.alpha) \
            if self.teacher_logits is not None else {}
        trainer = Trainer(self.model, ds.X_train, ds.y_train,
                          TrainConfig(epochs=epochs, batch_size=cfg.batch_size, lr=cfg.lr),
                          seed=self.seed + len(self.stages), after_step=keep, **kw)
        for _ in range(epochs):
            trainer.run_epoch()
        for p in self.model.parameters():
            p.requires_grad_(True)
        self.model.eval()

    def step(self) -> WeightlessStage:
        """Prune (first step) or encode the next layer and retrain the ones after it."""
        if self.done:
            raise RuntimeError("every layer is encoded already")
        t0 = time.perf_counter()
        cfg = self.config
        if not self._pruned:
            from kdcore.pruning import masks_for_sparsity
            weights = {n: self._layer(n).weight for n in self.layer_names}
            keep = masks_for_sparsity({n: w.detach().abs() for n, w in weights.items()}, cfg.sparsity, cfg.scope)
            with torch.no_grad():
                for n, w in weights.items():
                    self.masks[n] = keep[n].to(w.dtype)
                    w.mul_(self.masks[n])
            self._retrain(cfg.prune_epochs, self.layer_names)
            self._pruned = True
            self.pruned_model = copy.deepcopy(self.model).eval()
            stage = WeightlessStage("pruned" + (f", retrained {cfg.prune_epochs} epochs" if cfg.prune_epochs else ""),
                                    self._acc(), "", time.perf_counter() - t0)
            self.stages.append(stage)
            return stage
        i = len(self.encoded)
        name = self.layer_names[i]
        layer = self._layer(name)
        w = layer.weight.detach().clone()
        enc = encode_weights(w, cfg.n_clusters, cfg.t, cfg.k, cfg.cells_per_key, seed=self.seed * 1000 + i)
        decoded = enc.decode()
        kept = w != 0
        spurious = int(((decoded != 0) & ~kept).sum())
        with torch.no_grad():
            layer.weight.copy_(decoded)
        self.encoded[name] = enc
        n_pruned = int((~kept).sum())
        bias_bits = 32 * (layer.bias.numel() if layer.bias is not None else 0)
        self.layers.append(LayerReport(
            name, tuple(w.shape), enc.n_kept, enc.n_clusters, enc.filter.m, cfg.t, cfg.k, enc.filter.tries,
            enc.filter.size_bits(), CENTROID_BITS * enc.n_clusters, HEADER_BITS, bias_bits,
            32 * w.numel() + bias_bits, spurious / max(n_pruned, 1), enc.theoretical_fp_rate(), spurious))
        self.stages.append(WeightlessStage(f"encoded {name}", self._acc(), name, time.perf_counter() - t0))
        later = self.layer_names[i + 1:]
        if later and cfg.retrain_epochs:
            t1 = time.perf_counter()
            self._retrain(cfg.retrain_epochs, later)
            self.stages.append(WeightlessStage(f"later layers retrained {cfg.retrain_epochs} epochs after {name}",
                                               self._acc(), name, time.perf_counter() - t1))
        return self.stages[-1]

    def run(self) -> "WeightlessResult":
        return drive(self)[0]

    def result(self) -> WeightlessResult:
        ds = self.dataset
        model = copy.deepcopy(self.model).eval()
        metrics = evaluate(model, ds.X_test, ds.y_test)
        encoded_params = set()
        bits = 0
        for name in self.encoded:
            layer = dict(model.named_modules())[name]
            encoded_params.add(id(layer.weight))
            if layer.bias is not None:
                encoded_params.add(id(layer.bias))
        bits += sum(l.total_bits for l in self.layers)
        # layers not yet encoded: stored as prune + float32 in model_size's cheapest encoding
        for name, layer in encodable_layers(model):
            if name not in self.encoded:
                single = nn.Sequential(copy.deepcopy(layer))
                bits += 8 * model_size(single).bytes
                encoded_params.update({id(layer.weight)} | ({id(layer.bias)} if layer.bias is not None else set()))
        bits += 32 * sum(p.numel() for p in model.parameters() if id(p) not in encoded_params)
        metrics["bytes"] = math.ceil(bits / 8)
        metrics["encoding"] = "weightless (Bloomier filter)"
        pq = {}
        base = self.pruned_model if self.pruned_model is not None else self.original
        for b in self.quant_bits:
            q = quantize_model(base, QuantConfig(b))
            size = model_size(q, b)
            pq[b] = {"bytes": size.bytes, "accuracy": evaluate(q, ds.X_test, ds.y_test)["accuracy"],
                     "encoding": size.encoding}
        return WeightlessResult(model, self.config, list(self.stages), list(self.layers), dict(self.encoded),
                                metrics, bits, 8 * model_bytes(self.original), pq, finished=self.done)


def weightless_record(result: WeightlessResult, source_name: str, source_recipe: str, dataset: Dataset):
    """A `ModelRecord` of the encoded model for the Trade-offs frontier (role "weightless")."""
    from kdcore.records import ModelRecord
    cfg = result.config
    return ModelRecord(f"{cfg.describe()} of {source_name}", "weightless", result.model, result.metrics,
                       f"{source_recipe}; then {cfg.describe()}, later layers retrained {cfg.retrain_epochs} "
                       "epochs after each", dataset.name, dataset.seed,
                       extra={"bits": cfg.t, "encoding": result.metrics["encoding"], "weightless": cfg.to_dict(),
                              "source": source_name, "sparsity": cfg.sparsity})
