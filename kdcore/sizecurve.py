"""The size curve: distilled and scratch MLP students of several widths, accuracy against size.

`SizeCurve` trains one (distilled, scratch) pair per hidden width, one pair at a time; each pair is
a `DistillRun`, so both share an initialization and a batch order and the only difference is the
teacher. Its figure is `kdcore.viz.tradeoffs.size_curve_figure`; its run kind "size_curve".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from kdcore.data import Dataset
from kdcore.distill import DistillRun, KDConfig
from kdcore.models import ModelConfig, format_bytes
from kdcore.records import ModelRecord
from kdcore.train import EpochLog, TrainConfig

SIZE_WIDTHS = (4, 8, 16, 32, 64, 128, 256, 512)   # hidden widths of the size curve's MLP students


@dataclass
class SizePoint:
    width: int
    params: int
    bytes: int
    distilled_accuracy: float
    scratch_accuracy: float
    distilled: nn.Module
    scratch: nn.Module
    distilled_metrics: dict
    scratch_metrics: dict
    epochs_run: int
    seconds: float

    @property
    def gain(self) -> float:
        return self.distilled_accuracy - self.scratch_accuracy

    def row(self) -> dict:
        return {"hidden width": self.width, "parameters": self.params, "size (bytes)": self.bytes,
                "size": format_bytes(self.bytes), "distilled accuracy (%)": 100 * self.distilled_accuracy,
                "scratch accuracy (%)": 100 * self.scratch_accuracy, "gain (points)": 100 * self.gain,
                "epochs": self.epochs_run, "seconds": round(self.seconds, 2)}


class SizeCurve:
    """Distilled and scratch one-hidden-layer MLP students of several widths, trained one pair at a time.

    `run()` appends a `SizePoint` to `points` as each pair finishes, so a curve
    stopped in the middle keeps its finished students. Each pair is a
    `DistillRun` (same initialization, same batches; the only difference is the teacher).
    """

    def __init__(self, dataset: Dataset, teacher_logits: dict[str, torch.Tensor], teacher_metrics: dict,
                 widths: Sequence[int] = SIZE_WIDTHS, train: TrainConfig | None = None,
                 kd: KDConfig | None = None, seed: int = 0):
        from kdcore.presets import default_kd, default_student
        if not widths:
            raise ValueError("the size curve needs at least one width")
        self.dataset, self.teacher_logits, self.teacher_metrics = dataset, teacher_logits, teacher_metrics
        self.widths = sorted({int(w) for w in widths})
        self.train = train or default_student(dataset.name)[1]
        self.kd = kd or default_kd(dataset.name)
        self.seed = seed
        self.points: list[SizePoint] = []
        self.pair: DistillRun | None = None   # the width in training (None between widths)
        self._t0 = 0.0

    @property
    def done(self) -> bool:
        return len(self.points) >= len(self.widths)

    def step(self) -> tuple[EpochLog, EpochLog]:
        """One epoch of the current width's pair (distilled, scratch logs); a finished pair becomes the
        next point of the curve."""
        width = self.widths[len(self.points)]
        if self.pair is None:
            self.pair = DistillRun(self.dataset, self.teacher_logits, self.teacher_metrics,
                                   ModelConfig(hidden=(width,)), self.train, self.kd, self.seed)
            self._t0 = time.perf_counter()
        run = self.pair
        logs = run.step()
        if run.done:
            res = run.result()
            dm, sm = res.distilled_metrics, res.scratch_metrics
            self.points.append(SizePoint(width, dm["params"], dm["bytes"], dm["accuracy"], sm["accuracy"],
                                         res.distilled, res.scratch, dm, sm, run.epoch,
                                         time.perf_counter() - self._t0))
            self.pair = None
        return logs

    @property
    def total_epochs(self) -> int:
        return len(self.widths) * self.train.epochs

    def run(self, on_student: Callable[[SizePoint], bool | None] | None = None,
            on_epoch: Callable[[int, EpochLog, EpochLog], bool | None] | None = None, stop=None) -> list[SizePoint]:
        """Train the remaining widths. on_epoch(width, distilled_log, scratch_log) and on_student(point)
        may return True to stop (after the current epoch / student); so may `stop` (an Event)."""
        while not self.done:
            width = self.widths[len(self.points)]
            log_d, log_s = self.step()
            halt = (on_epoch is not None and on_epoch(width, log_d, log_s)) or (stop is not None and stop.is_set())
            if self.pair is not None:   # the pair is still training
                if halt:
                    self.pair = None     # a half-trained pair is not a point of the curve
                    break
                continue
            if (on_student is not None and on_student(self.points[-1])) or halt:
                break
        return self.points

    def summary(self) -> str:
        if not self.points:
            return "No student has finished yet."
        gains = [100 * p.gain for p in self.points]
        wins = sum(g >= 0.5 for g in gains)
        losses = sum(g <= -0.5 for g in gains)
        best = max(self.points, key=lambda p: p.gain)
        s = (f"Distillation beats training from scratch at {wins} of {len(gains)} widths"
             + (f" and loses at {losses}" if losses else "") + f" (|gap| ≥ 0.5 point counts; "
             f"largest gain {100 * best.gain:+.1f} points at width {best.width}).")
        if wins == 0:
            s += " In this setting the teacher does not move the frontier."
        return s


def size_curve_records(curve: SizeCurve, teacher_name: str) -> list[ModelRecord]:
    """Records of the curve's students for the session's model list."""
    ds, kd, tr = curve.dataset, curve.kd, curve.train
    out = []
    for p in curve.points:
        desc = ModelConfig(hidden=(p.width,)).describe()
        base = f"{desc}, {tr.epochs} epochs, {100 * kd.labelled_fraction:g} % labels (size curve)"
        out.append(ModelRecord(f"size-curve distilled {desc} (seed {curve.seed})", "distilled", p.distilled,
                               p.distilled_metrics, f"distilled from {teacher_name} at T={kd.temperature:g}, "
                               f"α={kd.alpha:g}; {base}", ds.name, ds.seed, extra={"kd": kd.to_dict()}))
        out.append(ModelRecord(f"size-curve scratch {desc} (seed {curve.seed})", "scratch", p.scratch,
                               p.scratch_metrics, f"labels only; {base}", ds.name, ds.seed))
    return out
