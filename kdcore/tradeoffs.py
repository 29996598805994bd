"""Accuracy against size and speed: Pareto frontiers, latency, the size sweep, PTQ vs QAT, pipelines.

- `pareto_front`: which models no other model beats on both cost and accuracy.
- `measure_latency`: CPU inference time (inference mode, warm-up, median of repeats).
- `SizeSweep`: distilled and scratch MLP students of several widths, one pair at a time
  (a `DistillRun` each, so both share an initialization and a batch order).
- `bits_panel`: test accuracy against bits (32, 8, 4, 2, 1) for post-training
  quantization and for quantization-aware distillation, of one model.
- `prune_then_quantize`: the distill → prune → quantize pipeline (uses kdcore.pruning).
- `quantized_record`, `tradeoff_points`, `stakeholder_summary`: records and words for the page.

Its figures are in `kdcore.viz.tradeoffs`.

Fake-quantized weights are float32 tensors in PyTorch: on CPU a quantized model
runs exactly as fast as the float one, so quantization shows on the size axis,
not on the latency axes.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import torch
from torch import nn

from kdcore.data import Dataset
from kdcore.distill import DistillRun, KDConfig
from kdcore.metrics import evaluate
from kdcore import pruning
from kdcore.models import ModelConfig, format_bytes
from kdcore.quantize import FLOAT_BITS, QuantConfig, model_size, qat_distill, quantize_model
from kdcore.registry import ModelRecord
from kdcore.train import EpochLog, TrainConfig

SWEEP_WIDTHS = (4, 8, 16, 32, 64, 128, 256, 512)   # hidden widths of the size sweep's MLP students
PANEL_BITS = (32, 8, 4, 2, 1)                       # bit widths of the quantization panel


# ---------------------------------------------------------------- Pareto frontier

def pareto_front(costs: Sequence[float], accuracies: Sequence[float]) -> list[int]:
    """Indices of the non-dominated points, cheapest first.

    A point is dominated when another one costs no more and is at least as
    accurate, and is strictly better in one of the two. Exact duplicates of a
    frontier point are on the frontier too. Points with a missing (nan) cost or
    accuracy are ignored.
    """
    ok = [i for i in range(len(costs))
          if not (math.isnan(float(costs[i])) or math.isnan(float(accuracies[i])))]
    order = sorted(ok, key=lambda i: (float(costs[i]), -float(accuracies[i])))
    front: list[int] = []
    best = -math.inf
    for i in order:
        c, a = float(costs[i]), float(accuracies[i])
        if a > best:
            front.append(i)
            best = a
        elif front and a == best and c == float(costs[front[-1]]):
            front.append(i)   # an exact duplicate of the last frontier point
    return front


# ---------------------------------------------------------------- latency

@dataclass(frozen=True)
class Latency:
    batch_size: int
    median_ms: float      # median time of one forward pass of the whole batch
    repeats: int          # timed repeats (each the mean over `inner` calls)
    inner: int            # calls per repeat (tiny models: several, so the timer resolves them)
    threads: int          # torch.get_num_threads() during the measurement

    @property
    def per_example_us(self) -> float:
        return 1000 * self.median_ms / self.batch_size


def measure_latency(model: nn.Module, input_shape: tuple[int, ...], batch_size: int = 1, repeats: int = 15,
                    warmup: int = 3, target_ms: float = 2.0, seed: int = 0) -> Latency:
    """Median CPU time of `model(x)` for a random batch, in inference mode and eval mode.

    After `warmup` calls, each of `repeats` timings averages `inner` calls, with
    `inner` chosen so a timing lasts about `target_ms` (a batch-1 forward of a tiny
    MLP takes microseconds). Threads: whatever torch uses now (the app's setting).
    """
    x = torch.randn((batch_size, *input_shape), generator=torch.Generator().manual_seed(seed))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            t0 = time.perf_counter()
            model(x)
            one = max(time.perf_counter() - t0, 1e-7)
            inner = int(min(max(1, round(target_ms / 1000 / one)), 200))
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                for _ in range(inner):
                    model(x)
                times.append((time.perf_counter() - t0) / inner)
    finally:
        model.train(was_training)
    return Latency(batch_size, 1000 * statistics.median(times), repeats, inner, torch.get_num_threads())


def measure_latencies(model: nn.Module, input_shape: tuple[int, ...],
                      batch_sizes: Sequence[int] = (1, 256)) -> dict[int, Latency]:
    return {b: measure_latency(model, input_shape, b) for b in batch_sizes}


# ---------------------------------------------------------------- points and records

@dataclass
class TradeoffPoint:
    name: str
    role: str
    accuracy: float                 # test accuracy, a fraction
    bytes: int                      # honest size in its encoding
    recipe: str
    params: int = 0
    bits: int = FLOAT_BITS
    encoding: str = "dense"
    latency_b1_ms: float = math.nan
    latency_b256_ms: float = math.nan

    def row(self) -> dict:
        return {"model": self.name, "role": self.role, "test accuracy (%)": 100 * self.accuracy,
                "size (bytes)": self.bytes, "size": format_bytes(self.bytes), "bits": self.bits,
                "encoding": self.encoding, "parameters": self.params,
                "latency batch 1 (ms)": self.latency_b1_ms, "latency batch 256 (ms)": self.latency_b256_ms,
                "recipe": self.recipe}


def tradeoff_points(records: Iterable[ModelRecord],
                    latencies: dict[str, dict[int, Latency]] | None = None) -> list[TradeoffPoint]:
    """One point per record (latencies by record name, when measured)."""
    latencies = latencies or {}
    points = []
    for r in records:
        lat = latencies.get(r.name, {})
        points.append(TradeoffPoint(
            r.name, r.role, r.accuracy, r.bytes, r.recipe, int(r.metrics.get("params", 0)),
            int(r.extra.get("bits", FLOAT_BITS)), str(r.extra.get("encoding", "dense")),
            lat[1].median_ms if 1 in lat else math.nan, lat[256].median_ms if 256 in lat else math.nan))
    return points


def evaluate_sized(model: nn.Module, ds: Dataset, teacher_test_logits: torch.Tensor | None,
                   bits: int = FLOAT_BITS, granularity: str = "channel") -> dict:
    """Test metrics with 'bytes' the honest size of the model stored at `bits` bits, plus its encoding."""
    metrics = evaluate(model, ds.X_test, ds.y_test, teacher_test_logits)
    size = model_size(model, bits, granularity)
    metrics["bytes"] = size.bytes
    metrics["encoding"] = size.encoding
    return metrics


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


def stakeholder_summary(points: Sequence[TradeoffPoint], teacher: TradeoffPoint | None) -> list[str]:
    """Plain sentences: how small the models get against the teacher, and what it costs."""
    if teacher is None or not points:
        return []
    others = [p for p in points if p is not teacher]
    if not others:
        return ["Only the teacher has been made so far: distill, prune or quantize a model to compare."]

    def versus(p: TradeoffPoint) -> str:
        ratio = teacher.bytes / max(p.bytes, 1)
        gap = 100 * (teacher.accuracy - p.accuracy)
        size = (f"{ratio:.0f} × smaller than the teacher" if ratio >= 10 else
                f"{ratio:.1f} × smaller than the teacher" if ratio >= 1.05 else "about as large as the teacher")
        cost = (f"loses {gap:.1f} points" if gap >= 0.05 else f"gains {-gap:.1f} points" if gap <= -0.05
                else "loses nothing")
        return (f"the {p.name} is {size} ({format_bytes(p.bytes)} vs {format_bytes(teacher.bytes)}) "
                f"and {cost} of test accuracy ({100 * p.accuracy:.1f} % vs {100 * teacher.accuracy:.1f} %)")

    front = [points[i] for i in pareto_front([p.bytes for p in points], [p.accuracy for p in points])]
    lines = []
    smallest = front[0]
    if smallest is not teacher:
        lines.append(f"Smallest model worth keeping: {versus(smallest)}.")
    close = [p for p in others if 100 * (teacher.accuracy - p.accuracy) <= 1.0 and p.bytes < teacher.bytes]
    if close:
        best = min(close, key=lambda p: (p.bytes, -p.accuracy))
        if best is not smallest:
            lines.append(f"Smallest model within 1 point of the teacher: {versus(best)}.")
    else:
        lines.append("No smaller model comes within 1 point of the teacher yet.")
    dominated = [p for p in others if p not in front]
    if dominated:
        lines.append(f"{len(dominated)} of the {len(points)} models are dominated: another model is at "
                     "least as small and at least as accurate, so there is no reason to ship them.")
    return lines


# ---------------------------------------------------------------- size sweep

@dataclass
class SweepPoint:
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


class SizeSweep:
    """Distilled and scratch one-hidden-layer MLP students of several widths, trained one pair at a time.

    `run()` appends a `SweepPoint` to `points` as each pair finishes, so a sweep
    stopped in the middle keeps its finished students. Each pair is a
    `DistillRun` (same initialization, same batches; the only difference is the teacher).
    """

    def __init__(self, dataset: Dataset, teacher_logits: dict[str, torch.Tensor], teacher_metrics: dict,
                 widths: Sequence[int] = SWEEP_WIDTHS, train: TrainConfig | None = None,
                 kd: KDConfig | None = None, seed: int = 0):
        from kdcore.presets import default_kd, default_student
        if not widths:
            raise ValueError("the sweep needs at least one width")
        self.dataset, self.teacher_logits, self.teacher_metrics = dataset, teacher_logits, teacher_metrics
        self.widths = sorted({int(w) for w in widths})
        self.train = train or default_student(dataset.name)[1]
        self.kd = kd or default_kd(dataset.name)
        self.seed = seed
        self.points: list[SweepPoint] = []

    @property
    def done(self) -> bool:
        return len(self.points) >= len(self.widths)

    @property
    def total_epochs(self) -> int:
        return len(self.widths) * self.train.epochs

    def run(self, on_student: Callable[[SweepPoint], bool | None] | None = None,
            on_epoch: Callable[[int, EpochLog, EpochLog], bool | None] | None = None, stop=None) -> list[SweepPoint]:
        """Train the remaining widths. on_epoch(width, distilled_log, scratch_log) and on_student(point)
        may return True to stop (after the current epoch / student); so may `stop` (an Event)."""
        for width in self.widths[len(self.points):]:
            run = DistillRun(self.dataset, self.teacher_logits, self.teacher_metrics,
                             ModelConfig(hidden=(width,)), self.train, self.kd, self.seed)
            t0 = time.perf_counter()
            halt = False
            while not run.done:
                log_d, log_s = run.step()
                if (on_epoch is not None and on_epoch(width, log_d, log_s)) or (stop is not None and stop.is_set()):
                    halt = True
                    break
            if halt and not run.done:
                return self.points   # a half-trained pair is not a point of the curve
            res = run.result()
            dm, sm = res.distilled_metrics, res.scratch_metrics
            point = SweepPoint(width, dm["params"], dm["bytes"], dm["accuracy"], sm["accuracy"], res.distilled,
                               res.scratch, dm, sm, run.epoch, time.perf_counter() - t0)
            self.points.append(point)
            if (on_student is not None and on_student(point)) or halt:
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


def sweep_records(sweep: SizeSweep, teacher_name: str) -> list[ModelRecord]:
    """Records of the sweep's students for the session's model list."""
    ds, kd, tr = sweep.dataset, sweep.kd, sweep.train
    out = []
    for p in sweep.points:
        desc = ModelConfig(hidden=(p.width,)).describe()
        base = f"{desc}, {tr.epochs} epochs, {100 * kd.labelled_fraction:g} % labels (size sweep)"
        out.append(ModelRecord(f"sweep distilled {desc} (seed {sweep.seed})", "distilled", p.distilled,
                               p.distilled_metrics, f"distilled from {teacher_name} at T={kd.temperature:g}, "
                               f"α={kd.alpha:g}; {base}", ds.name, ds.seed, extra={"kd": kd.to_dict()}))
        out.append(ModelRecord(f"sweep scratch {desc} (seed {sweep.seed})", "scratch", p.scratch,
                               p.scratch_metrics, f"labels only; {base}", ds.name, ds.seed))
    return out


# ---------------------------------------------------------------- PTQ vs QAT

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


# ---------------------------------------------------------------- distill → prune → quantize

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
