"""Low-rank factorization of Linear layers (as surveyed by Cheng, Wang, Zhou & Zhang 2017,
"A Survey of Model Compression and Acceleration for Deep Neural Networks", arXiv:1710.09282).

A Linear layer y = W x + b (W: out × in) is replaced by two, of rank r, from the truncated SVD
W ≈ U_r S_r V_rᵀ:

    x ↦ A x  (A = S_r^½ V_rᵀ, r × in, no bias)  ↦  B (A x) + b  (B = U_r S_r^½, out × r),

r·(in + out) weights instead of in·out, so it only saves when r < in·out / (in + out). By
Eckart–Young, U_r S_r V_rᵀ is the best rank-r approximation of W in the Frobenius norm and
‖W − W_r‖²_F = Σ_{i>r} s_i². The rank is given directly, or as the smallest r whose retained
*energy* Σ_{i≤r} s_i² / Σ s_i² reaches a fraction. At full rank the pair reproduces the layer
(to float rounding). `finetune_low_rank` then trains the factorized model (KD or labels).
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from typing import Callable, Iterable, Sequence

import torch
from torch import nn

from kdcore.data import Dataset
from kdcore.metrics import evaluate
from kdcore.models import model_bytes, param_count
from kdcore.train import EpochLog, History, TrainConfig, Trainer, train_to_end


@dataclass(frozen=True)
class LowRankConfig:
    rank: int | None = None          # the same rank r for every layer (capped at min(in, out)); or
    energy: float | None = 0.9       # the smallest r keeping this fraction of Σ s² per layer (when rank is None)
    only_if_smaller: bool = True     # keep a layer whole when two factors would not be fewer weights

    def __post_init__(self):
        if self.rank is None and self.energy is None:
            raise ValueError("give a rank or an energy fraction")
        if self.rank is not None and self.rank < 1:
            raise ValueError("the rank must be at least 1")
        if self.rank is None and not 0.0 < float(self.energy) <= 1.0:
            raise ValueError("the energy fraction must be in (0, 1]")

    def describe(self) -> str:
        return f"rank {self.rank}" if self.rank is not None else f"{100 * self.energy:g} % energy"

    def to_dict(self) -> dict:
        return asdict(self)


def rank_for_energy(singular_values: torch.Tensor, energy: float) -> int:
    """Smallest r with Σ_{i≤r} s_i² ≥ energy · Σ s_i² (at least 1)."""
    e = singular_values.double().pow(2)
    cum = torch.cumsum(e, 0) / e.sum().clamp_min(1e-300)
    return int(min(len(e), int((cum < energy - 1e-12).sum()) + 1))


def factorize_linear(layer: nn.Linear, rank: int) -> nn.Sequential:
    """Two Linear layers (in → r without bias, r → out with the original bias) from the truncated SVD."""
    W = layer.weight.detach().double()
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)
    r = max(1, min(int(rank), len(S)))
    root = S[:r].sqrt()
    first = nn.Linear(layer.in_features, r, bias=False)
    second = nn.Linear(r, layer.out_features, bias=layer.bias is not None)
    with torch.no_grad():
        first.weight.copy_((root[:, None] * Vh[:r]).to(layer.weight.dtype))
        second.weight.copy_((U[:, :r] * root[None]).to(layer.weight.dtype))
        if layer.bias is not None:
            second.bias.copy_(layer.bias.detach())
    return nn.Sequential(first, second)


@dataclass
class LayerRank:
    name: str
    shape: tuple[int, int]       # (out, in)
    rank: int                    # chosen r (full rank when the layer was kept whole)
    full_rank: int
    energy: float                # retained fraction of Σ s²
    factorized: bool
    weights_before: int
    weights_after: int

    def row(self) -> dict:
        return {"layer": self.name, "shape": f"{self.shape[0]}×{self.shape[1]}", "rank": self.rank,
                "full rank": self.full_rank, "energy kept (%)": 100 * self.energy,
                "factorized": self.factorized, "weights before": self.weights_before,
                "weights after": self.weights_after}


def low_rank_model(model: nn.Module, config: LowRankConfig) -> tuple[nn.Module, list[LayerRank]]:
    """A copy of `model` with each nn.Linear replaced by its rank-r factorization (where it saves)."""
    out = copy.deepcopy(model).cpu().eval()
    reports = []
    targets = [(n, m) for n, m in out.named_modules() if isinstance(m, nn.Linear)]
    for name, layer in targets:
        S = torch.linalg.svdvals(layer.weight.detach().double())
        full = len(S)
        r = min(config.rank, full) if config.rank is not None else rank_for_energy(S, float(config.energy))
        o, i = layer.out_features, layer.in_features
        saves = r * (o + i) < o * i
        do = saves or not config.only_if_smaller
        kept = float(S[:r].pow(2).sum() / S.pow(2).sum().clamp_min(1e-300)) if do else 1.0
        reports.append(LayerRank(name, (o, i), r if do else full, full, kept, do, o * i,
                                 r * (o + i) if do else o * i))
        if do:
            parent_name, _, attr = name.rpartition(".")
            parent = out.get_submodule(parent_name) if parent_name else out
            setattr(parent, attr, factorize_linear(layer, r))
    return out, reports


def finetune_low_rank(model: nn.Module, dataset: Dataset, train: TrainConfig, seed: int = 0,
                      teacher_logits: torch.Tensor | None = None, temperature: float = 4.0, alpha: float = 0.9,
                      callbacks: Iterable[Callable[[EpochLog], bool | None]] = ()) -> History:
    """Fine-tune a factorized model in place (KD from the training split's teacher logits, else labels)."""
    history = train_to_end(finetune_trainer(model, dataset, train, seed, teacher_logits, temperature, alpha),
                           callbacks)
    model.eval()
    return history


def finetune_trainer(model: nn.Module, dataset: Dataset, train: TrainConfig, seed: int = 0,
                     teacher_logits: torch.Tensor | None = None, temperature: float = 4.0, alpha: float = 0.9):
    """The Trainer that fine-tunes a factorized model (one epoch per `run_epoch()`)."""
    kw = dict(teacher_logits=teacher_logits, temperature=temperature, alpha=alpha) if teacher_logits is not None \
        else dict(loss="ce")
    return Trainer(model, dataset.X_train, dataset.y_train, train, seed, X_val=dataset.X_val, y_val=dataset.y_val,
                   name="low rank", **kw)


@dataclass
class LowRankPoint:
    config: LowRankConfig
    layers: list[LayerRank]
    params: int
    bytes: int                     # float32, dense
    accuracy_before: float         # right after the SVD truncation
    accuracy_after: float          # after fine-tuning (nan without)
    model: nn.Module               # the fine-tuned (or truncated) model
    seconds: float

    def row(self) -> dict:
        return {"setting": self.config.describe(), "ranks": "/".join(str(l.rank) for l in self.layers),
                "parameters": self.params, "size (bytes)": self.bytes,
                "accuracy before fine-tuning (%)": 100 * self.accuracy_before,
                "accuracy after fine-tuning (%)": 100 * self.accuracy_after, "seconds": round(self.seconds, 2)}


def factorized_point(model: nn.Module, config: LowRankConfig, dataset: Dataset) -> LowRankPoint:
    """`model` factorized at `config`, evaluated before any fine-tuning (accuracy after: nan)."""
    t0 = time.perf_counter()
    m, layers = low_rank_model(model, config)
    before = evaluate(m, dataset.X_test, dataset.y_test)["accuracy"]
    return LowRankPoint(config, layers, param_count(m), model_bytes(m), before, float("nan"), m, time.perf_counter() - t0)


def low_rank_sweep(model: nn.Module, dataset: Dataset, configs: Sequence[LowRankConfig],
                   finetune: TrainConfig | None, seed: int = 0, teacher_logits: torch.Tensor | None = None,
                   temperature: float = 4.0, alpha: float = 0.9,
                   on_point: Callable[[LowRankPoint], bool | None] | None = None) -> list[LowRankPoint]:
    """Factorize `model` at each setting, evaluate, fine-tune (when `finetune`), evaluate again."""
    points = []
    for cfg in configs:
        t0 = time.perf_counter()
        p = factorized_point(model, cfg, dataset)
        if finetune is not None:
            finetune_low_rank(p.model, dataset, finetune, seed, teacher_logits, temperature, alpha)
            p.accuracy_after = evaluate(p.model, dataset.X_test, dataset.y_test)["accuracy"]
        p.seconds = time.perf_counter() - t0
        points.append(p)
        if on_point is not None and on_point(p):
            break
    return points


def low_rank_record(point: LowRankPoint, source_name: str, source_recipe: str, dataset: Dataset,
                    finetune_epochs: int = 0):
    """A `ModelRecord` of a factorized model for the Trade-offs frontier (role "low rank")."""
    from kdcore.records import ModelRecord
    metrics = evaluate(point.model, dataset.X_test, dataset.y_test)
    metrics["encoding"] = "dense"
    tail = f", fine-tuned {finetune_epochs} epochs" if finetune_epochs else ""
    return ModelRecord(f"low rank ({point.config.describe()}) of {source_name}", "low rank", point.model, metrics,
                       f"{source_recipe}; then each Linear as two of rank {'/'.join(str(l.rank) for l in point.layers)}"
                       f" from its truncated SVD{tail}", dataset.name, dataset.seed,
                       extra={"lowrank": point.config.to_dict(), "source": source_name, "bits": 32,
                              "encoding": "dense"})
