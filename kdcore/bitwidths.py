"""Accuracy against bits per weight (32, 8, 4, 2, 1): post-training quantization (PTQ) against
quantization-aware distillation (QAT) of one model, each point with its honest size.

Fake-quantized weights are float32 tensors in PyTorch: on CPU a quantized model runs exactly as fast
as the float one, so quantization shows on the size axis, not on the latency axes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from kdcore.data import Dataset
from kdcore.distill import KDConfig
from kdcore.quantize import FLOAT_BITS, QuantConfig, evaluate_sized, qat_distill, quantize_model
from kdcore.records import ModelRecord
from kdcore.models import format_bytes
from kdcore.train import EpochLog, TrainConfig

PANEL_BITS = (32, 8, 4, 2, 1)                       # bit widths of the quantization panel


@dataclass
class BitsRow:
    bits: int
    method: str            # "PTQ" or "QAT"
    accuracy: float
    bytes: int
    model: nn.Module
    config: QuantConfig | None   # None at 32 bits

    def row(self) -> dict:
        return {"bits": self.bits, "method": self.method, "test accuracy (%)": 100 * self.accuracy,
                "size (bytes)": self.bytes, "size": format_bytes(self.bytes)}


def ptq_rows(model: nn.Module, ds: Dataset, bits_list: Sequence[int] = PANEL_BITS, granularity: str = "channel",
             scale: str = "mse") -> list[BitsRow]:
    """Post-training quantization of `model` at each bit width (32 = the model itself)."""
    rows = []
    for b in bits_list:
        cfg = None if b == FLOAT_BITS else QuantConfig(b, granularity, scale)
        q = copy.deepcopy(model).eval() if cfg is None else quantize_model(model, cfg)
        m = evaluate_sized(q, ds, None, b, granularity)
        rows.append(BitsRow(b, "PTQ", m["accuracy"], m["bytes"], q, cfg))
    return rows


def qat_rows(model: nn.Module, ds: Dataset, teacher_train_logits: torch.Tensor, train: TrainConfig,
             kd: KDConfig, bits_list: Sequence[int] = PANEL_BITS, granularity: str = "channel",
             scale: str = "mse", seed: int = 0,
             on_bits: Callable[[BitsRow], bool | None] | None = None,
             on_epoch: Callable[[int, EpochLog], bool | None] | None = None) -> list[BitsRow]:
    """Quantization-aware distillation from `model`'s weights at each bit width.

    At 32 bits the same distillation runs without quantization (the control: what
    the extra training alone gives). on_epoch(bits, log) / on_bits(row) may return True to stop.
    """
    rows = []
    for b in bits_list:
        cfg = None if b == FLOAT_BITS else QuantConfig(b, granularity, scale)
        halted = []

        def cb(log, b=b):
            if on_epoch is not None and on_epoch(b, log):
                halted.append(True)
                return True
            return False

        q, hist = qat_distill(ds, teacher_train_logits, copy.deepcopy(model), cfg, train, kd, seed, callbacks=[cb])
        if halted and hist.stopped_early:
            break
        m = evaluate_sized(q, ds, None, b, granularity)
        row = BitsRow(b, "QAT", m["accuracy"], m["bytes"], q, cfg)
        rows.append(row)
        if (on_bits is not None and on_bits(row)) or halted:
            break
    return rows


def quantized_record(source: ModelRecord, model: nn.Module, config: QuantConfig, method: str, ds: Dataset,
                     teacher_test_logits: torch.Tensor | None, detail: str = "") -> ModelRecord:
    """The record of a quantized copy of `source` (method "PTQ" or "QAT"), with its honest size."""
    metrics = evaluate_sized(model, ds, teacher_test_logits, config.bits, config.granularity)
    name = f"{config.describe()} {method} of {source.name}"
    recipe = f"{source.recipe}; then {method} to {config.describe()}" + (f" ({detail})" if detail else "")
    return ModelRecord(name, "quantized", model, metrics, recipe, ds.name, ds.seed,
                       extra={"bits": config.bits, "encoding": metrics["encoding"], "method": method,
                              "quant": config.to_dict(), "source": source.name,
                              "sparsity": source.extra.get("sparsity", 0.0)})
