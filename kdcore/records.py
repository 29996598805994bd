"""A record of a model made in a session, for the views that compare them all.

Pages that make a model (a teacher, a distilled or scratch student, a pruned
or quantized copy) describe it as a `ModelRecord`; the Trade-offs view plots
every record as accuracy against size and speed. A record holds the module
itself (to evaluate, prune or quantize it further) and how it was made.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn


@dataclass
class ModelRecord:
    name: str                  # unique within a session, e.g. "distilled MLP 32 (T=4, α=0.9)"
    role: str                  # "teacher", "distilled", "scratch", "pruned", "quantized", "ensemble", ...
    model: nn.Module           # the network (a private copy: safe to modify for its owner)
    metrics: dict              # test metrics: accuracy, loss, params, bytes, (agreement, kl_teacher)
    recipe: str                # how it was made, in words, for hover text and tables
    dataset: str               # dataset name
    data_seed: int             # split seed: records compare only within one dataset and split
    extra: dict = field(default_factory=dict)   # anything else (configs, history, bits, sparsity)

    @property
    def accuracy(self) -> float:
        return float(self.metrics["accuracy"])

    @property
    def bytes(self) -> int:
        return int(self.metrics["bytes"])
