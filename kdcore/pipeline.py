"""distill → prune → quantize: a (distilled) student, pruned by magnitude, fine-tuned by distillation
with the pruned weights held at zero, then quantized; each stage a point on the size axis.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import torch
from torch import nn

from kdcore import pruning
from kdcore.data import Dataset
from kdcore.distill import KDConfig
from kdcore.quantize import FLOAT_BITS, QuantConfig, evaluate_sized, quantize_model
from kdcore.records import ModelRecord
from kdcore.train import EpochLog, TrainConfig

@dataclass
class PipelineStage:
    stage: str             # "pruned" or "pruned + quantized"
    model: nn.Module
    metrics: dict          # test metrics with honest 'bytes' and 'encoding'
    sparsity: float
    bits: int
    recipe: str


class PipelineRun:
    """distill → prune → quantize, one fine-tuning epoch per `step()`; `stages()` ends it.

    The constructor prunes a copy of `model` by global weight magnitude; each step fine-tunes it by
    distillation for one epoch with the masks held (none when `finetune` is None); `stages()` bakes it,
    quantizes it post-training and returns the pruned and the pruned+quantized stages (after a stop:
    those of the model as it is). `prune_then_quantize` is this run driven to the end.
    """

    def __init__(self, model: nn.Module, ds: Dataset, teacher_logits: dict[str, torch.Tensor],
                 sparsity: float, quant: QuantConfig, finetune: TrainConfig | None, kd: KDConfig,
                 seed: int = 0, source_recipe: str = ""):
        from kdcore.quantize import QATDistillRun
        if not 0.0 <= sparsity < 1.0:
            raise ValueError("the sparsity must be in [0, 1)")
        self.ds, self.teacher_logits, self.sparsity, self.quant = ds, teacher_logits, sparsity, quant
        self.finetune, self.source_recipe = finetune, source_recipe
        self.pruned = pruned = copy.deepcopy(model)
        self.masks = masks = pruning.masks_for_sparsity(pruning.MagnitudeScore().scores(pruned), sparsity,
                                                        scope="global")
        pruning.apply_masks(pruned, masks)
        self.tuning = None
        if finetune is not None:
            self.tuning = QATDistillRun(ds, teacher_logits["train"], pruned, None, finetune, kd, seed,
                                        after_step=lambda m: pruning.apply_masks(m, masks))
        self._stages: list[PipelineStage] | None = None

    @property
    def done(self) -> bool:
        return self._stages is not None or self.tuning is None or self.tuning.done

    @property
    def epochs_run(self) -> int:
        return 0 if self.tuning is None else self.tuning.history.epochs_run

    def step(self) -> EpochLog:
        return self.tuning.step()

    def stages(self) -> list[PipelineStage]:
        if self._stages is not None:
            return self._stages
        pruned, sparsity, quant, ds = self.pruned, self.sparsity, self.quant, self.ds
        how = f"magnitude-pruned to {100 * sparsity:g} % sparsity (global)"
        if self.tuning is not None:
            self.tuning.finish()
            pruning.apply_masks(pruned, self.masks)
            how += f", fine-tuned {self.finetune.epochs} epochs by distillation"
        pruned.eval()
        actual = float(pruning.sparsity(pruned))
        quantized = quantize_model(pruned, quant)
        prefix = f"{self.source_recipe}; then " if self.source_recipe else ""
        t_test = self.teacher_logits["test"]
        self._stages = [PipelineStage("pruned", pruned, evaluate_sized(pruned, ds, t_test), actual,
                                      FLOAT_BITS, prefix + how),
                        PipelineStage("pruned + quantized", quantized,
                                      evaluate_sized(quantized, ds, t_test, quant.bits, quant.granularity),
                                      actual, quant.bits, prefix + how + f", then PTQ to {quant.describe()}")]
        return self._stages


def prune_then_quantize(model: nn.Module, ds: Dataset, teacher_logits: dict[str, torch.Tensor],
                        sparsity: float, quant: QuantConfig, finetune: TrainConfig | None, kd: KDConfig,
                        seed: int = 0, source_recipe: str = "",
                        callbacks: Iterable[Callable[[EpochLog], bool | None]] = ()) -> list[PipelineStage]:
    """Prune a copy of `model` by global weight magnitude, fine-tune it by distillation with the masks
    held (optional), then quantize it post-training. Returns the pruned and the pruned+quantized stages."""
    run = PipelineRun(model, ds, teacher_logits, sparsity, quant, finetune, kd, seed, source_recipe)
    try:
        while not run.done:
            log = run.step()
            if any([bool(cb(log)) for cb in callbacks]):
                break
    finally:
        if run.tuning is not None:
            run.tuning.finish()
    return run.stages()


def pipeline_records(stages: Sequence[PipelineStage], source: ModelRecord, quant: QuantConfig,
                     ds: Dataset) -> list[ModelRecord]:
    out = []
    for st_ in stages:
        tag = f"pruned {100 * st_.sparsity:.0f} %"
        if st_.bits < FLOAT_BITS:
            tag += f" + {quant.describe()}"
        role = "pruned" if st_.bits == FLOAT_BITS else "quantized"
        out.append(ModelRecord(f"{tag} of {source.name}", role, st_.model, st_.metrics, st_.recipe, ds.name,
                               ds.seed, extra={"bits": st_.bits, "encoding": st_.metrics["encoding"],
                                               "sparsity": st_.sparsity, "source": source.name,
                                               "pipeline": "distill → prune → quantize"}))
    return out
