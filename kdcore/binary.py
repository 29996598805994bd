"""Binarized neural networks (Hubara, Courbariaux, Soudry, El-Yaniv & Bengio 2016, arXiv:1609.07061):
±1 weights and ±1 activations, trained with the saturating straight-through estimator,
and a bit-packed XNOR-popcount forward pass in numpy.

- `SignSTE` / `sign_ste`: forward sign(x) ∈ {−1, +1} (sign(0) = +1), backward the
  saturating STE g · 1{|x| ≤ 1} (the gradient of hard-tanh): no gradient where |x| > 1.
- `BinaryLinear`: a Linear layer computing with sign(W) of latent float weights W, which
  `clip_latent_weights` keeps in [−1, 1] after every update (the paper's clipping).
- `BinaryMLP`: input quantized to 8-bit integers (the paper keeps the first layer's input
  as fixed-point numbers), then [BinaryLinear → BatchNorm → sign] per hidden layer, then
  BinaryLinear → BatchNorm for the logits. In eval mode each BatchNorm + sign is folded into
  a per-unit threshold (h = +1 iff g·(a − τ) ≥ 0, g = sign(γ)) and the last BatchNorm into an
  affine map a·s + b: this folded float forward is the binarized model's inference.
- `train_binary_mlp`: the existing `Trainer` (labels, or KD from teacher logits) with clipping.
- `XnorMLP`: the same inference on bits: weights packed 64 per uint64; a hidden layer's
  pre-activation is n − 2·popcount(h XOR w); the first layer adds up 8 bit planes of the
  integer input, Σ_b 2^b (2·popcount(plane_b AND w⁺) − popcount(plane_b)). It equals the
  float forward exactly: every pre-activation is an integer below 2^24, exact in float32
  whatever the summation order, and the thresholds and the last affine map use the same
  float32 values and operations.
- `latency_comparison`: median wall time of the numpy XNOR forward against torch's float
  forward of the same binarized model and of a float MLP of the same shape.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kdcore.data import Dataset
from kdcore.latency import time_call
from kdcore.train import EpochLog, History, TrainConfig, seeded_model, train_to_end

INPUT_BITS = 8            # the first layer reads the input as 8-bit integers (bit planes in the XNOR forward)


class SignSTE(torch.autograd.Function):
    """sign with the saturating straight-through estimator: ∂/∂x = 1{|x| ≤ 1}."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


def sign_ste(x: torch.Tensor) -> torch.Tensor:
    return SignSTE.apply(x)


class BinaryLinear(nn.Linear):
    """y = x · sign(W)ᵀ (no bias: the BatchNorm after it has one)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features, bias=False)

    def binary_weight(self) -> torch.Tensor:
        return sign_ste(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.binary_weight())


class BinaryMLP(nn.Module):
    """A fully binary MLP (±1 weights and hidden activations) over 8-bit integer inputs."""

    def __init__(self, input_dim: int, hidden: Sequence[int], n_classes: int,
                 input_range: tuple[float, float] = (0.0, 1.0), input_bits: int = INPUT_BITS):
        super().__init__()
        lo, hi = map(float, input_range)
        if not hi > lo:
            raise ValueError("the input range must have hi > lo")
        self.levels = 2 ** input_bits - 1
        self.input_bits = input_bits
        self.register_buffer("input_lo", torch.tensor(lo, dtype=torch.float32))
        self.register_buffer("input_scale", torch.tensor(self.levels / (hi - lo), dtype=torch.float32))
        widths = [input_dim, *hidden]
        self.hidden_layers = nn.ModuleList(BinaryLinear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.hidden_norms = nn.ModuleList(nn.BatchNorm1d(b) for b in widths[1:])
        self.out_layer = BinaryLinear(widths[-1], n_classes)
        self.out_norm = nn.BatchNorm1d(n_classes)

    def quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        """Integers 0..2^bits − 1 (as float32): round((x − lo) · scale), clipped."""
        return torch.clamp(torch.round((x.flatten(1).float() - self.input_lo) * self.input_scale), 0, self.levels)

    def thresholds(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(τ, g) of hidden layer i: BN(a) ≥ 0 ⟺ g·(a − τ) ≥ 0, τ = μ − β·σ/γ, g = sign(γ)."""
        bn = self.hidden_norms[i]
        sigma = torch.sqrt(bn.running_var + bn.eps)
        gamma = torch.where(bn.weight == 0, torch.full_like(bn.weight, 1e-12), bn.weight)
        tau = (bn.running_mean - bn.bias * sigma / gamma).float()
        g = torch.where(gamma >= 0, 1.0, -1.0).float()
        return tau.detach(), g.detach()

    def output_affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(s, b) with eval BN(a) = a·s + b: s = γ/σ, b = β − μ·s."""
        bn = self.out_norm
        s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        return s.float().detach(), (bn.bias - bn.running_mean * s).float().detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.quantize_input(x)
        for i, (lin, bn) in enumerate(zip(self.hidden_layers, self.hidden_norms)):
            a = lin(h)
            if self.training:
                h = sign_ste(bn(a))
            else:
                tau, g = self.thresholds(i)
                h = torch.where(g * (a - tau) >= 0, 1.0, -1.0)
        a = self.out_layer(h)
        if self.training:
            return self.out_norm(a)
        s, b = self.output_affine()
        return a * s + b


def clip_latent_weights(model: nn.Module) -> None:
    """Keep every BinaryLinear's latent weights in [−1, 1] (for `Trainer(after_step=...)`)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, BinaryLinear):
                m.weight.clamp_(-1.0, 1.0)


def build_binary_mlp(dataset: Dataset, hidden: Sequence[int], seed: int = 0) -> BinaryMLP:
    lo, hi = float(dataset.X_train.min()), float(dataset.X_train.max())
    return seeded_model(lambda: BinaryMLP(dataset.input_dim, hidden, dataset.n_classes, (lo, hi)), seed)


def train_binary_mlp(dataset: Dataset, hidden: Sequence[int], train: TrainConfig, seed: int = 0,
                     teacher_logits: torch.Tensor | None = None, temperature: float = 4.0, alpha: float = 0.9,
                     y: torch.Tensor | None = None, model: BinaryMLP | None = None,
                     callbacks: Iterable[Callable[[EpochLog], bool | None]] = ()) -> tuple[BinaryMLP, History]:
    """Train a BinaryMLP on the labels (cross-entropy), or by KD from `teacher_logits` (the training
    split's), latent weights clipped after each update. y: training labels (−1 = hidden), default all."""
    model = model if model is not None else build_binary_mlp(dataset, hidden, seed)
    history = train_to_end(binary_trainer(model, dataset, train, seed, y, teacher_logits, temperature, alpha),
                           callbacks)
    return model.eval(), history


def binary_model_bits(model: BinaryMLP) -> int:
    """Storage of the inference model: 1 bit per weight, per hidden unit a float32 threshold (and its
    sign g as 1 bit), per class a float32 scale and offset, the input's float32 lo and scale."""
    bits = sum(m.weight.numel() for m in model.modules() if isinstance(m, BinaryLinear))
    bits += sum(33 * bn.num_features for bn in model.hidden_norms)
    bits += 64 * model.out_norm.num_features + 64
    return bits


# ---------------------------------------------------------------- XNOR-popcount inference

def _pack_rows(bits: np.ndarray) -> np.ndarray:
    """(..., n) of 0/1 → (..., ceil(n/64)) uint64, zero-padded (padding bits are 0 everywhere)."""
    packed = np.packbits(bits.astype(np.uint8), axis=-1)
    pad = (-packed.shape[-1]) % 8
    if pad:
        packed = np.concatenate([packed, np.zeros((*packed.shape[:-1], pad), np.uint8)], axis=-1)
    return np.ascontiguousarray(packed).view(np.uint64)


if hasattr(np, "bitwise_count"):
    def popcount(x: np.ndarray) -> np.ndarray:
        return np.bitwise_count(x)
else:   # numpy < 2.0: a byte lookup table
    _POP8 = np.array([bin(i).count("1") for i in range(256)], np.uint8)

    def popcount(x: np.ndarray) -> np.ndarray:
        return _POP8[x.view(np.uint8)].reshape(*x.shape, 8).sum(-1)


class XnorMLP:
    """The inference of a trained BinaryMLP on packed bits (numpy), exactly equal to its eval forward."""

    def __init__(self, model: BinaryMLP):
        model = copy.deepcopy(model).cpu().eval()
        self.levels, self.input_bits = model.levels, model.input_bits
        self.lo = model.input_lo.numpy().astype(np.float32)
        self.scale = model.input_scale.numpy().astype(np.float32)
        with torch.no_grad():
            signs = [lin.weight >= 0 for lin in [*model.hidden_layers, model.out_layer]]
        self.n_in = [int(s.shape[1]) for s in signs]
        self.w_bits = [_pack_rows(s.numpy()) for s in signs]           # 1 = +1
        self.w_pos_count = [s.sum(1).numpy().astype(np.int64) for s in signs]
        self.thresholds = [tuple(t.numpy() for t in model.thresholds(i)) for i in range(len(model.hidden_layers))]
        self.s, self.b = (t.numpy() for t in model.output_affine())

    def _first_layer(self, x_int: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Σ_j w_j x_j with w ∈ ±1 and x integer: Σ_b 2^b (2·popcount(plane_b & w⁺) − popcount(plane_b))."""
        a = np.zeros((len(x_int), len(w)), np.int64)
        for b in range(self.input_bits):
            plane = _pack_rows((x_int >> b) & 1)                       # (B, W)
            ones = popcount(plane).sum(-1).astype(np.int64)            # (B,)
            both = popcount(plane[:, None, :] & w[None]).sum(-1).astype(np.int64)   # (B, O)
            a += (2 * both - ones[:, None]) << b
        return a

    @staticmethod
    def _binary_layer(h_bits: np.ndarray, w: np.ndarray, n: int) -> np.ndarray:
        """Σ_j h_j w_j for h, w ∈ ±1: n − 2·popcount(h XOR w)."""
        return n - 2 * popcount(h_bits[:, None, :] ^ w[None]).sum(-1).astype(np.int64)

    def preactivations(self, x: np.ndarray, chunk: int = 256) -> list[np.ndarray]:
        """The integer pre-activations of every layer (for tests), then the logits last.
        Batches are processed `chunk` rows at a time (the XOR tensor is rows × units × words)."""
        x = np.asarray(x, np.float32).reshape(len(x), -1)
        if len(x) > chunk:
            parts = [self.preactivations(x[i:i + chunk], chunk) for i in range(0, len(x), chunk)]
            return [np.concatenate(layer) for layer in zip(*parts)]
        x_int = np.clip(np.round((x - self.lo) * self.scale), 0, self.levels).astype(np.int64)
        out = []
        a = self._first_layer(x_int, self.w_bits[0])
        for i, (tau, g) in enumerate(self.thresholds):
            out.append(a)
            # the sign of a − τ is exact in float64 and in float32 (rounding keeps signs and zeros)
            h = g.astype(np.float64) * (a.astype(np.float64) - tau.astype(np.float64)) >= 0
            a = self._binary_layer(_pack_rows(h), self.w_bits[i + 1], self.n_in[i + 1])
        out.append(a)
        out.append(a.astype(np.float32) * self.s + self.b)
        return out

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Logits (float32) of a batch."""
        return self.preactivations(x)[-1]


def _median_ms(fn: Callable[[], object]) -> float:
    return time_call(fn, target_ms=5.0)[0]


@dataclass(frozen=True)
class BinaryLatency:
    batch_size: int
    xnor_ms: float              # numpy bit-packed XNOR-popcount forward
    binary_float_ms: float      # torch float32 forward of the same binarized model (eval, folded)
    float_mlp_ms: float         # torch float32 forward of a plain MLP of the same shape (ReLU)
    threads: int                # torch threads during the measurement

    @property
    def xnor_speedup_vs_float_mlp(self) -> float:
        return self.float_mlp_ms / self.xnor_ms

    def row(self) -> dict:
        return {"batch": self.batch_size, "XNOR numpy (ms)": self.xnor_ms,
                "binarized model, torch float (ms)": self.binary_float_ms,
                "float MLP, torch (ms)": self.float_mlp_ms,
                "XNOR speed-up vs float MLP": self.xnor_speedup_vs_float_mlp, "torch threads": self.threads}


def latency_comparison(model: BinaryMLP, X: torch.Tensor, batch_sizes: Sequence[int] = (1, 256)) -> list[BinaryLatency]:
    """Median CPU time per batch: XNOR-popcount (numpy) vs torch float forwards."""
    xnor = XnorMLP(model)
    model = copy.deepcopy(model).cpu().eval()
    widths = [model.hidden_layers[0].in_features] + [l.out_features for l in model.hidden_layers]
    layers: list[nn.Module] = [nn.Flatten()]
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(widths[-1], model.out_layer.out_features))
    float_mlp = nn.Sequential(*layers).eval()
    out = []
    for bs in batch_sizes:
        xb = X[:bs] if len(X) >= bs else X[torch.arange(bs) % len(X)]
        xn = xb.numpy()
        with torch.inference_mode():
            out.append(BinaryLatency(bs, _median_ms(lambda: xnor(xn)), _median_ms(lambda: model(xb)),
                                     _median_ms(lambda: float_mlp(xb)), torch.get_num_threads()))
    return out


def binary_metrics(model: BinaryMLP, dataset: Dataset) -> dict:
    """Test metrics of a trained BinaryMLP, its size in bytes by `binary_model_bits`."""
    from kdcore.metrics import evaluate
    metrics = evaluate(model, dataset.X_test, dataset.y_test)
    metrics["bytes"] = -(-binary_model_bits(model) // 8)
    metrics["encoding"] = "1-bit weights and activations"
    return metrics


def binary_trainer(model: BinaryMLP, dataset: Dataset, train: TrainConfig, seed: int, y: torch.Tensor | None = None,
                   teacher_logits: torch.Tensor | None = None, temperature: float = 4.0, alpha: float = 0.9):
    """The Trainer of a BinaryMLP: cross-entropy on `y` (default: every training label), or KD from
    `teacher_logits` (the training split's); latent weights clipped after each update."""
    from kdcore.train import Trainer
    y = dataset.y_train if y is None else y
    kw = dict(teacher_logits=teacher_logits, temperature=temperature, alpha=alpha) if teacher_logits is not None \
        else dict(loss="ce")
    return Trainer(model, dataset.X_train, y, train, seed, X_val=dataset.X_val, y_val=dataset.y_val,
                   name="binary", after_step=clip_latent_weights, **kw)


def binary_record(model: BinaryMLP, dataset: Dataset, recipe: str, name: str = "binary MLP"):
    """A `ModelRecord` of a trained BinaryMLP, sized by `binary_model_bits` (role "binary")."""
    from kdcore.records import ModelRecord
    metrics = binary_metrics(model, dataset)
    return ModelRecord(name, "binary", model, metrics, recipe, dataset.name, dataset.seed,
                       extra={"bits": 1, "encoding": metrics["encoding"]})
