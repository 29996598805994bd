"""Weight quantization: post-training (PTQ), binary weights, quantization-aware training, honest sizes.

What is quantized: the weights of every `nn.Linear` and `nn.Conv2d` (the bulk
of the parameters). Biases and any other parameters stay float32 and are
counted at 4 bytes each.

Uniform symmetric quantization at b bits (b = 8, 4, 2): a weight w becomes an
integer code q = clamp(round(w / Δ), −Q, Q) with Q = 2^(b−1) − 1 and is read
back as q·Δ. The range is the symmetric "restricted" one (−127..127 at 8 bits,
−7..7 at 4, −1..1 at 2: 2-bit weights are ternary, as in ternary weight
networks, Li & Liu 2016), so zero is exactly representable and a pruned weight
stays pruned. One step Δ per tensor, or per output channel (a row of a Linear,
a filter of a conv). Δ is chosen by
  - "max": Δ = max|w| / Q, no weight is clipped and |w − q·Δ| ≤ Δ/2 for all w;
  - "mse": Δ = r·max|w| / Q with r searched on a grid in (0, 1] to minimize
    Σ (w − q·Δ)² (clipping a few outliers buys a finer step for the rest).

Binary weights (b = 1), as in BinaryConnect / XNOR-Net (Courbariaux et al.
2015, Rastegari et al. 2016): w ↦ α·sign(w) with one α per channel (or per
tensor); α = mean|w| is the closed-form minimizer of Σ (w − α·sign(w))². Exact
zeros (pruned weights) stay zero; every other weight takes one of two values.

Quantized models stay ordinary torch modules: `quantize_model` returns a copy
whose float weights hold the dequantized values ("fake quantization"), so
evaluation is a plain forward pass. On CPU this does not make PyTorch faster:
the size is what quantization changes, and `model_size` counts it honestly.

Quantization-aware training (QAT): `prepare_qat` registers a parametrization
on each weight that fake-quantizes it in the forward pass with a
straight-through estimator (Bengio et al. 2013): forward q(w), backward the
identity, i.e. w + (q(w) − w).detach(). The optimizer updates the latent float
weights; `finalize_qat` bakes the quantized values in. `qat_distill` trains
such a student with the distillation loss from the teacher's cached logits.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

import torch
from torch import nn
from torch.nn.utils import parametrize

from kdcore.data import Dataset
from kdcore.distill import KDConfig, transfer_labels
from kdcore.metrics import evaluate
from kdcore.train import EpochLog, History, TrainConfig, Trainer

QUANT_BITS = (8, 4, 2, 1)   # supported low bit widths (32 = float, not quantized)
FLOAT_BITS = 32
SCALE_BYTES = 4             # each scale is stored as a float32
MSE_GRID = 16               # clipping ratios tried by the "mse" scale search (1/16 … 16/16 of max|w|)
MSE_REFINE = 4              # Lloyd refinements of the best grid step (kept only where they lower the error)


@dataclass(frozen=True)
class QuantConfig:
    bits: int = 8                 # 8, 4, 2 (uniform symmetric) or 1 (binary: α·sign(w))
    granularity: str = "channel"  # "channel": one scale per output channel; "tensor": one per layer
    scale: str = "mse"            # "mse": clipping chosen to minimize squared error (much better at 2 bits);
                                  # "max": no clipping. Ignored at 1 bit (α = mean|w|)

    def __post_init__(self):
        if self.bits not in QUANT_BITS:
            raise ValueError(f"unsupported bit width {self.bits}; expected one of {QUANT_BITS}")
        if self.granularity not in ("channel", "tensor"):
            raise ValueError(f"unknown granularity {self.granularity!r}; expected 'channel' or 'tensor'")
        if self.scale not in ("max", "mse"):
            raise ValueError(f"unknown scale method {self.scale!r}; expected 'max' or 'mse'")

    @property
    def per_channel(self) -> bool:
        return self.granularity == "channel"

    def describe(self) -> str:
        gran = "per-channel" if self.per_channel else "per-tensor"
        if self.bits == 1:
            return f"binary {gran}"
        return f"{self.bits}-bit {gran}" + (", MSE scale" if self.scale == "mse" else "")

    def to_dict(self) -> dict:
        return asdict(self)


def qmax(bits: int) -> int:
    """Largest integer code of symmetric b-bit quantization: 2^(b−1) − 1 (1 at 2 bits: ternary)."""
    if bits < 2:
        raise ValueError("uniform quantization needs at least 2 bits; 1 bit is binary (sign × scale)")
    return 2 ** (bits - 1) - 1


def _rows(w: torch.Tensor, per_channel: bool) -> torch.Tensor:
    """w as (channels, weights per channel), or (1, all weights)."""
    return w.reshape(w.shape[0], -1) if per_channel and w.dim() > 1 else w.reshape(1, -1)


def _quantize_rows(rows: torch.Tensor, step: torch.Tensor, q: int) -> torch.Tensor:
    return torch.clamp(torch.round(rows / step[:, None]), -q, q)


def choose_scale(w: torch.Tensor, config: QuantConfig) -> torch.Tensor:
    """The scale of each channel (shape (C,), or (1,) per tensor): the step Δ, or α for binary."""
    rows = _rows(w.detach(), config.per_channel).float()
    absw = rows.abs()
    if config.bits == 1:
        nonzero = (rows != 0).sum(1)
        alpha = absw.sum(1) / nonzero.clamp(min=1)
        return torch.where(nonzero > 0, alpha, torch.ones_like(alpha))
    q = qmax(config.bits)
    amax = absw.amax(1)
    amax = torch.where(amax > 0, amax, torch.ones_like(amax))   # an all-zero channel: any step works
    step = amax / q
    if config.scale == "max":
        return step
    def sq_err(cand):
        codes = _quantize_rows(rows, cand, q)
        return ((rows - codes * cand[:, None]) ** 2).sum(1), codes

    best_err, _ = sq_err(step)
    best = step.clone()
    for i in range(1, MSE_GRID):   # a coarse grid of clipping ratios r = i / MSE_GRID (r = 1 done above)
        cand = step * (i / MSE_GRID)
        err, _ = sq_err(cand)
        better = err < best_err
        best_err, best = torch.where(better, err, best_err), torch.where(better, cand, best)
    for _ in range(MSE_REFINE):    # then Lloyd steps: for fixed codes q the best step is Σ w·q / Σ q²
        _, codes = sq_err(best)
        cand = (rows * codes).sum(1) / (codes * codes).sum(1).clamp(min=1)
        cand = torch.where(cand > 0, cand, best)
        err, _ = sq_err(cand)
        better = err < best_err
        best_err, best = torch.where(better, err, best_err), torch.where(better, cand, best)
    return best


def quantize(w: torch.Tensor, config: QuantConfig, scale: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer codes of w (shape of w; in [−Q, Q], or {−1, 0, +1} for binary) and the scales."""
    if scale is None:
        scale = choose_scale(w, config)
    rows = _rows(w.detach(), config.per_channel).float()
    if config.bits == 1:
        codes = torch.sign(rows)   # exact zeros (pruned weights) stay 0; all others ±1
    else:
        codes = _quantize_rows(rows, scale, qmax(config.bits))
    return codes.reshape(w.shape).to(torch.int8), scale


def dequantize(codes: torch.Tensor, scale: torch.Tensor, per_channel: bool) -> torch.Tensor:
    """Float weights codes · scale (per channel or per tensor)."""
    rows = _rows(codes.float(), per_channel)
    return (rows * scale[:, None]).reshape(codes.shape)


def fake_quantize(w: torch.Tensor, config: QuantConfig) -> torch.Tensor:
    """dequantize(quantize(w)): the float weights a quantized model computes with."""
    codes, scale = quantize(w, config)
    return dequantize(codes, scale, config.per_channel).to(w.dtype)


def quantizable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The Linear and Conv2d layers whose weights are quantized (and counted as weights)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def quantize_model(model: nn.Module, config: QuantConfig) -> nn.Module:
    """A copy of `model` (eval mode) with every Linear/Conv2d weight fake-quantized (post-training)."""
    q = copy.deepcopy(model).eval()
    with torch.no_grad():
        for _, layer in quantizable_layers(q):
            layer.weight.copy_(fake_quantize(layer.weight, config))
    return q


# ---------------------------------------------------------------- honest sizes

@dataclass(frozen=True)
class SizeReport:
    bytes: int           # total: weights (+ indices or bitmask) + scales + other float32 parameters
    weight_bytes: int    # the Linear/Conv2d weights in their encoding
    scale_bytes: int     # float32 scales of quantized weights
    other_bytes: int     # biases and other parameters, float32
    encoding: str        # "dense", "values+indices", "bitmask" or "mixed" (per-layer choices differ)
    bits: int            # bits per stored weight value
    n_weights: int
    n_nonzero: int

    def to_dict(self) -> dict:
        return asdict(self)


def index_bits(n: int) -> int:
    """Bits of a bit-packed index into a tensor of n weights: ceil(log2 n)."""
    return max(1, math.ceil(math.log2(n))) if n > 1 else 1


def encoding_bits(n: int, nnz: int, bits: int) -> dict[str, float]:
    """Bits to store a tensor of n weights with nnz non-zeros at `bits` bits per value, per encoding.

    dense: every weight, n·bits (binary cannot encode a zero: impossible when nnz < n);
    values+indices: each non-zero with its bit-packed position, nnz·(bits + ceil(log2 n));
    bitmask: one bit per weight saying "non-zero", then the non-zeros, n + nnz·bits.
    """
    dense = float(n * bits) if (bits != 1 or nnz == n) else math.inf
    return {"dense": dense, "values+indices": float(nnz * (bits + index_bits(n))),
            "bitmask": float(n + nnz * bits)}


def model_size(model: nn.Module, bits: int = FLOAT_BITS, granularity: str = "channel") -> SizeReport:
    """The bytes a model takes stored at `bits` bits per Linear/Conv2d weight, in its cheapest encoding.

    Each weight tensor is stored in the cheapest of the encodings of `encoding_bits`
    (a dense model is dense; a pruned one pays for its indices or bitmask), rounded up
    to whole bytes; a quantized tensor (bits < 32) adds one float32 scale per output
    channel (granularity "channel") or one per tensor. All other parameters (biases)
    are float32. A dense float32 model's size equals `model_bytes(model)`.
    """
    if bits != FLOAT_BITS and bits not in QUANT_BITS:
        raise ValueError(f"unsupported bit width {bits}")
    weight_bytes = scale_bytes = n_weights = n_nonzero = 0
    chosen: set[str] = set()
    counted: set[int] = set()
    for _, layer in quantizable_layers(model):
        w = layer.weight.detach()
        counted.add(id(layer.weight))
        n, nnz = w.numel(), int((w != 0).sum())
        costs = encoding_bits(n, nnz, bits)
        enc = min(costs, key=lambda k: (costs[k], k != "dense"))   # ties go to dense
        weight_bytes += math.ceil(costs[enc] / 8)
        chosen.add(enc)
        if bits < FLOAT_BITS:
            scale_bytes += SCALE_BYTES * (w.shape[0] if granularity == "channel" and w.dim() > 1 else 1)
        n_weights += n
        n_nonzero += nnz
    other = sum(p.numel() for p in model.parameters() if id(p) not in counted) * 4
    encoding = chosen.pop() if len(chosen) == 1 else ("mixed" if chosen else "dense")
    return SizeReport(weight_bytes + scale_bytes + other, weight_bytes, scale_bytes, other, encoding,
                      bits, n_weights, n_nonzero)


# ---------------------------------------------------------------- quantization-aware training

class FakeQuantize(nn.Module):
    """A parametrization: forward q(w), gradient passed straight through (STE): w + (q(w) − w).detach()."""

    def __init__(self, config: QuantConfig):
        super().__init__()
        self.config = config

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            q = fake_quantize(w, self.config)
        return w + (q - w).detach()


def prepare_qat(model: nn.Module, config: QuantConfig) -> nn.Module:
    """Fake-quantize every Linear/Conv2d weight of `model` in its forward pass (in place; returns it)."""
    for _, layer in quantizable_layers(model):
        if parametrize.is_parametrized(layer, "weight"):
            raise ValueError("this model is already prepared for quantization-aware training")
        parametrize.register_parametrization(layer, "weight", FakeQuantize(config))
    return model


def finalize_qat(model: nn.Module) -> nn.Module:
    """Bake the quantized weights in and drop the latent float ones (in place; returns it, eval mode)."""
    for _, layer in quantizable_layers(model):
        if parametrize.is_parametrized(layer, "weight"):
            config = layer.parametrizations.weight[0].config
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=False)
            with torch.no_grad():   # exactly q(w): w + (q(w) − w) is q(w) only up to float rounding
                layer.weight.copy_(fake_quantize(layer.weight, config))
    return model.eval()


class QATDistillRun:
    """`qat_distill` one epoch per `step()`: `finish()` bakes the quantized weights in (once) and returns
    (model, history). Same numbers as `qat_distill` (which is this run driven to the end)."""

    def __init__(self, dataset: Dataset, teacher_train_logits: torch.Tensor, model: nn.Module,
                 config: QuantConfig | None, train: TrainConfig, kd: KDConfig, seed: int = 0,
                 after_step: Callable[[nn.Module], None] | None = None, keep_zeros: bool = True):
        zero_masks = [(layer, layer.weight.detach() == 0) for _, layer in quantizable_layers(model)]
        zero_masks = [(layer, m) for layer, m in zero_masks if keep_zeros and bool(m.any())]
        if config is not None:
            prepare_qat(model, config)
        if zero_masks:
            user_step = after_step

            def after_step(m: nn.Module) -> None:
                with torch.no_grad():
                    for layer, zero in zero_masks:
                        latent = (layer.parametrizations.weight.original if parametrize.is_parametrized(layer, "weight")
                                  else layer.weight)
                        latent.masked_fill_(zero, 0.0)
                if user_step is not None:
                    user_step(m)
        self.model, self.train = model, train
        y = transfer_labels(dataset, kd.labelled_fraction, seed)
        self.trainer = Trainer(model, dataset.X_train, y, train, seed, teacher_logits=teacher_train_logits,
                               temperature=kd.temperature, alpha=kd.alpha, loss=kd.loss,
                               X_val=dataset.X_val, y_val=dataset.y_val, name="QAT" if config else "float",
                               after_step=after_step)
        self.history = History()
        self.finished = False

    @property
    def done(self) -> bool:
        return self.finished or self.history.epochs_run >= self.train.epochs

    def step(self) -> EpochLog:
        log = self.trainer.run_epoch()
        self.history.logs.append(log)
        return log

    def finish(self) -> tuple[nn.Module, History]:
        """Bake the quantized weights in (the model is then an ordinary module); no more steps after."""
        if not self.finished:
            self.finished = True
            self.history.stopped_early = self.history.epochs_run < self.train.epochs
            finalize_qat(self.model)
        return self.model, self.history


def qat_distill(dataset: Dataset, teacher_train_logits: torch.Tensor, model: nn.Module,
                config: QuantConfig | None, train: TrainConfig, kd: KDConfig, seed: int = 0,
                callbacks: Iterable[Callable[[EpochLog], bool | None]] = (), stop=None,
                after_step: Callable[[nn.Module], None] | None = None,
                keep_zeros: bool = True) -> tuple[nn.Module, History]:
    """Distill into `model` (trained in place) with its weights fake-quantized by `config` during training.

    The loss is `kd_loss` (α·T²·KL + (1−α)·CE) against the teacher's cached logits
    on the training split, with the labels that `kd.labelled_fraction` keeps. The
    model may start fresh or from trained weights (QAT as fine-tuning). config=None
    trains at full precision with the same schedule: the control that says how much
    of a QAT model's accuracy comes from the extra training rather than from QAT.
    keep_zeros: weights that are exactly zero at the start (a pruned model) are held at
    zero after every update, so quantizing a pruned model keeps it sparse.
    Returns the model with its quantized weights baked in (an ordinary module) and its history.
    `QATDistillRun` is the same, one epoch per step.
    """
    run = QATDistillRun(dataset, teacher_train_logits, model, config, train, kd, seed, after_step, keep_zeros)
    try:
        while not run.done:
            log = run.step()
            if any([bool(cb(log)) for cb in callbacks]) or (stop is not None and stop.is_set()):
                break
    finally:
        run.finish()
    return run.model, run.history


def evaluate_sized(model: nn.Module, ds: Dataset, teacher_test_logits: torch.Tensor | None,
                   bits: int = FLOAT_BITS, granularity: str = "channel") -> dict:
    """Test metrics with 'bytes' the honest size of the model stored at `bits` bits, plus its encoding."""
    metrics = evaluate(model, ds.X_test, ds.y_test, teacher_test_logits)
    size = model_size(model, bits, granularity)
    metrics["bytes"] = size.bytes
    metrics["encoding"] = size.encoding
    return metrics
