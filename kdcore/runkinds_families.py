"""Run kinds of issue 17's compression and loss families, registered with the Run protocol.

- "weightless": `weightless.WeightlessRun` on a model named by a model source (default: the
  teacher), one stage per step (prune + retrain, then one layer encoded + later layers retrained).
  KD from the teacher's logits while retraining (or the labels, with "kd": false).
- "binary_mlp": a fully binary MLP trained on the labels and, from the same initialization, by
  KD from the teacher (`binary.train_binary_mlp`'s recipe), one epoch of both per step; then one
  step measuring the XNOR-popcount forward against torch's float forwards (optional).
- "low_rank": `lowrank.low_rank_sweep` over ranks / energy fractions of a source model: one step
  factorizes the next setting (accuracy before fine-tuning), then one fine-tuning epoch per step.
- "loss_families": `loss_families.LossFamilyRun` (labels / KD / DKD / hints / hints first / the
  class-distance teacher's student) over seeds: one student (or the class-distance teacher) per step.

Model sources (`kdcore.runkinds_compress.model_source`, `load_model`) name the model a run
starts from; the source run and the teacher run are required first.

A Weightless result's Bloomier filters are stored as plain arrays (`StoredFilter`,
`stored_layer`); `encoded_layer(...)` rebuilds the engine's `EncodedLayer` from one.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from kdcore import runkinds_compress as rc
from kdcore.runs import pct as _pct, EngineRun, Progress, RunContext, RunKind, RunSpec, register_kind


def _teacher_and_source(config: dict) -> list[RunSpec]:
    out = [RunSpec("teacher", config["teacher"])]
    if config.get("source") is not None:
        src = rc.source_requirement(config["source"])
        out += [s for s in src if s.key != out[0].key]
    return out


def _source(config: dict) -> dict:
    """The model source of a config: its "source", else the teacher's model."""
    return config.get("source") or rc.model_source(RunSpec("teacher", config["teacher"]), ["model"])


# ---------------------------------------------------------------- Weightless

@dataclass
class StoredFilter:
    """A Bloomier filter's table and parameters (what a lookup needs), for the run store."""
    t: int
    k: int
    n_keys: int
    segment: int
    m: int
    seed: int
    tries: int
    table: np.ndarray


@dataclass
class StoredLayer:
    shape: tuple
    filter: StoredFilter
    centroids: np.ndarray
    n_kept: int


def stored_layer(layer) -> StoredLayer:
    f = layer.filter
    return StoredLayer(tuple(layer.shape), StoredFilter(f.t, f.k, f.n_keys, f.segment, f.m, f.seed, f.tries,
                                                        np.asarray(f.table, np.int64)),
                       np.asarray(layer.centroids, np.float32), int(layer.n_kept))


def encoded_layer(s: StoredLayer):
    """The engine's EncodedLayer (lookups, decode) of a stored one."""
    from kdcore.weightless import BloomierFilter, EncodedLayer
    f = BloomierFilter.__new__(BloomierFilter)
    for name in ("t", "k", "n_keys", "segment", "m", "seed", "tries"):
        setattr(f, name, int(getattr(s.filter, name)))
    f.table = np.asarray(s.filter.table, np.int64)
    return EncodedLayer(tuple(s.shape), f, np.asarray(s.centroids, np.float32), int(s.n_kept))


def weightless_config(teacher_spec, wl, seed: int, source: dict | None = None, kd: bool = True,
                      quant_bits=(8, 4)) -> dict:
    return {"dataset": teacher_spec.dataset, "data_seed": teacher_spec.data_seed, "seed": int(seed),
            "teacher": teacher_spec.to_dict(), "source": source, "weightless": wl.to_dict(), "kd": bool(kd),
            "quant_bits": [int(b) for b in quant_bits]}


class WeightlessJob(EngineRun):
    def __init__(self, config: dict, ctx: RunContext):
        from kdcore.weightless import WeightlessConfig, WeightlessRun
        teacher = ctx.teacher(config["teacher"])
        ds = ctx.dataset(config["dataset"], config["data_seed"])
        self.run = WeightlessRun(WeightlessConfig(**config["weightless"]), ds, rc.load_model(_source(config), ctx),
                                 teacher.logits["train"] if config.get("kd", True) else None, seed=int(config["seed"]),
                                 quant_bits=tuple(config.get("quant_bits", (8, 4))))

    def progress(self) -> Progress:
        run = self.run
        st = run.stages[-1]
        if not run.steps_done:
            text = "Pruning and retraining…"
        else:
            text = f"Stage {run.steps_done}/{run.total_steps}: {st.stage} → {_pct(st.accuracy)}"
        return Progress(run.steps_done / run.total_steps, text,
                        {"test accuracy": [s.accuracy for s in run.stages]})

    def result(self):
        res = self.run.result()
        return dataclasses.replace(res, encoded={n: stored_layer(e) for n, e in res.encoded.items()})


register_kind(RunKind(
    "weightless", "Weightless encoding", WeightlessJob, requires=_teacher_and_source,
    describe=lambda c: (f"Weightless · {100 * c['weightless']['sparsity']:g} % pruned, "
                        f"{c['weightless']['n_clusters']} clusters, t = {c['weightless']['t']}, "
                        f"k = {c['weightless']['k']} (seed {c['seed']})"),
    summary=lambda r: {"accuracy": r.metrics["accuracy"], "bytes": r.bytes, "ratio": r.ratio_vs_float32}))


# ---------------------------------------------------------------- binary MLP, labels and KD

@dataclass
class BinaryPair:
    """Two binary MLPs of the same initialization: trained on the labels and by KD from the teacher."""
    hidden: list[int]
    epochs: int
    labels: nn.Module
    kd: nn.Module
    labels_history: object          # History
    kd_history: object
    labels_metrics: dict
    kd_metrics: dict
    bits: int                       # storage of either model (binary_model_bits)
    float_bytes: int                # a float32 MLP of the same shape
    latency: list = field(default_factory=list)   # BinaryLatency per batch size (empty if not measured)
    complete: bool = False

    @property
    def bytes(self) -> int:
        return math.ceil(self.bits / 8)


def binary_config(teacher_spec, hidden, train, seed: int, temperature: float = 4.0, alpha: float = 0.9,
                  latency: bool = True) -> dict:
    return {"dataset": teacher_spec.dataset, "data_seed": teacher_spec.data_seed, "seed": int(seed),
            "teacher": teacher_spec.to_dict(), "hidden": [int(h) for h in hidden], "train": train.to_dict(),
            "temperature": float(temperature), "alpha": float(alpha), "latency": bool(latency)}


class BinaryPairRun:
    """`train_binary_mlp` twice (labels, KD) from one initialization: one epoch of each per step."""

    def __init__(self, config: dict, ctx: RunContext):
        from kdcore.binary import binary_trainer, build_binary_mlp
        from kdcore.train import History, TrainConfig
        teacher = ctx.teacher(config["teacher"])
        self.ds = ds = ctx.dataset(config["dataset"], config["data_seed"])
        self.config, seed = config, int(config["seed"])
        self.train = train = TrainConfig(**config["train"])
        init = build_binary_mlp(ds, config["hidden"], seed)
        self.models = {"labels": copy.deepcopy(init), "kd": copy.deepcopy(init)}
        self.trainers = {"labels": binary_trainer(self.models["labels"], ds, train, seed),
                         "kd": binary_trainer(self.models["kd"], ds, train, seed, teacher_logits=teacher.logits["train"],
                                              temperature=float(config["temperature"]), alpha=float(config["alpha"]))}
        self.histories = {k: History() for k in self.models}
        self.latency: list = []
        self.measured = not config.get("latency", True)

    @property
    def epoch(self) -> int:
        return self.histories["kd"].epochs_run

    @property
    def total(self) -> int:
        return self.train.epochs + (0 if not self.config.get("latency", True) else 1)

    @property
    def done(self) -> bool:
        return self.epoch >= self.train.epochs and self.measured

    def step(self):
        if self.epoch < self.train.epochs:
            for k in ("labels", "kd"):
                self.histories[k].logs.append(self.trainers[k].run_epoch())
        else:
            from kdcore.binary import latency_comparison
            self.latency = latency_comparison(self.models["kd"].eval(), self.ds.X_test)
            self.measured = True

    def progress(self) -> Progress:
        h = self.histories
        if self.epoch < self.train.epochs or not self.epoch:
            text = f"Epoch {self.epoch}/{self.train.epochs}"
            if self.epoch:
                text += (f" · validation accuracy: KD {_pct(h['kd'].logs[-1].val_acc)}, "
                         f"labels {_pct(h['labels'].logs[-1].val_acc)}")
            if self.epoch == self.train.epochs:
                text += " · measuring XNOR and float latency…"
        else:
            text = "XNOR and float latency measured"
        steps = self.epoch + int(self.measured and self.config.get("latency", True))
        return Progress(steps / self.total, text,
                        {"distilled": h["kd"].column("val_acc"), "labels only": h["labels"].column("val_acc")})

    def result(self) -> BinaryPair:
        from kdcore.binary import binary_metrics, binary_model_bits
        ds = self.ds
        models = {k: copy.deepcopy(m).eval() for k, m in self.models.items()}
        metrics = {k: binary_metrics(m, ds) for k, m in models.items()}
        widths = [ds.input_dim, *self.config["hidden"], ds.n_classes]
        float_bytes = 4 * sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
        for k, h in self.histories.items():
            h.stopped_early = self.epoch < self.train.epochs
        return BinaryPair(list(self.config["hidden"]), self.train.epochs, models["labels"], models["kd"],
                          self.histories["labels"], self.histories["kd"], metrics["labels"], metrics["kd"],
                          binary_model_bits(models["kd"]), float_bytes, list(self.latency), self.done)


register_kind(RunKind(
    "binary_mlp", "Binary MLP", BinaryPairRun, requires=lambda c: [RunSpec("teacher", c["teacher"])],
    describe=lambda c: (f"binary MLP {'-'.join(map(str, c['hidden']))} · labels and KD, "
                        f"{c['train']['epochs']} epochs (seed {c['seed']})"),
    summary=lambda r: {"accuracy": r.kd_metrics["accuracy"], "labels_accuracy": r.labels_metrics["accuracy"],
                       "bytes": r.bytes}))


# ---------------------------------------------------------------- low rank

@dataclass
class LowRankSweepResult:
    points: list                    # LowRankPoint per setting done (accuracy_after nan while unfinished)
    finetune_epochs: int
    source_accuracy: float
    source_bytes: int
    complete: bool = False


def low_rank_config(teacher_spec, settings, finetune, seed: int, source: dict | None = None,
                    temperature: float = 4.0, alpha: float = 0.9) -> dict:
    """settings: LowRankConfigs (or dicts); finetune: a TrainConfig or None (no fine-tuning)."""
    return {"dataset": teacher_spec.dataset, "data_seed": teacher_spec.data_seed, "seed": int(seed),
            "teacher": teacher_spec.to_dict(), "source": source,
            "settings": [s if isinstance(s, dict) else s.to_dict() for s in settings],
            "finetune": finetune.to_dict() if finetune is not None else None,
            "temperature": float(temperature), "alpha": float(alpha)}


class LowRankRun:
    """Each setting: one step factorizes it (accuracy before fine-tuning), then one step per fine-tuning epoch."""

    def __init__(self, config: dict, ctx: RunContext):
        from kdcore.lowrank import LowRankConfig
        from kdcore.metrics import evaluate
        from kdcore.models import model_bytes
        from kdcore.train import TrainConfig
        self.ds = ds = ctx.dataset(config["dataset"], config["data_seed"])
        self.model = rc.load_model(_source(config), ctx).eval()
        self.settings = [LowRankConfig(**s) for s in config["settings"]]
        if not self.settings:
            raise ValueError("choose at least one rank or energy fraction")
        self.ft = TrainConfig(**config["finetune"]) if config.get("finetune") else None
        self.teacher_train = ctx.teacher(config["teacher"]).logits["train"]
        self.config, self.seed = config, int(config["seed"])
        self.res = LowRankSweepResult([], self.ft.epochs if self.ft else 0,
                                      evaluate(self.model, ds.X_test, ds.y_test)["accuracy"], model_bytes(self.model))
        self.current = None     # (point, Trainer, History, t0) being fine-tuned

    @property
    def epochs_per(self) -> int:
        return self.ft.epochs if self.ft else 0

    @property
    def total(self) -> int:
        return len(self.settings) * (1 + self.epochs_per)

    @property
    def steps_done(self) -> int:
        n = len(self.res.points) * (1 + self.epochs_per)
        if self.current is not None:
            n -= self.epochs_per - self.current[2].epochs_run
        return n

    @property
    def done(self) -> bool:
        return self.res.complete

    def step(self):
        import time
        from kdcore.lowrank import factorized_point, finetune_trainer
        from kdcore.metrics import evaluate
        from kdcore.train import History
        ds = self.ds
        if self.current is None:
            p = factorized_point(self.model, self.settings[len(self.res.points)], ds)
            self.res.points.append(p)
            if self.ft is not None:   # finetune_low_rank, one epoch per step
                trainer = finetune_trainer(p.model, ds, self.ft, self.seed, self.teacher_train,
                                           float(self.config["temperature"]), float(self.config["alpha"]))
                self.current = (p, trainer, History(), time.perf_counter())
        else:
            p, trainer, hist, t0 = self.current
            hist.logs.append(trainer.run_epoch())
            if hist.epochs_run >= self.ft.epochs:
                p.model.eval()
                p.accuracy_after = evaluate(p.model, ds.X_test, ds.y_test)["accuracy"]
                p.seconds += time.perf_counter() - t0
                self.current = None
        self.res.complete = len(self.res.points) == len(self.settings) and self.current is None

    def progress(self) -> Progress:
        pts = self.res.points
        text = f"{len(pts) - (self.current is not None)}/{len(self.settings)} settings done"
        if self.current is not None:
            p, _, hist, _ = self.current
            text += f" · fine-tuning {p.config.describe()}: epoch {hist.epochs_run}/{self.ft.epochs}"
        elif pts:
            p = pts[-1]
            text += f" · {p.config.describe()}: {_pct(p.accuracy_before)} before fine-tuning"
            if not math.isnan(p.accuracy_after):
                text += f", {_pct(p.accuracy_after)} after"
        done = [p for p in pts if self.current is None or p is not self.current[0]]
        curves = {"before fine-tuning": [p.accuracy_before for p in pts]}
        if self.ft is not None:
            curves["after fine-tuning"] = [p.accuracy_after for p in done]
        return Progress(self.steps_done / self.total, text, curves)

    def result(self) -> LowRankSweepResult:
        r = self.res
        pts = [p for p in r.points if self.current is None or p is not self.current[0]]   # a half-tuned one is not kept
        return LowRankSweepResult(list(pts), r.finetune_epochs, r.source_accuracy, r.source_bytes, r.complete)


def _low_rank_name(c: dict) -> str:
    parts = [f"rank {s['rank']}" if s.get("rank") else f"{100 * s['energy']:g} % energy" for s in c["settings"]]
    tail = f", fine-tuned {c['finetune']['epochs']} epochs" if c.get("finetune") else ""
    return f"low rank · {', '.join(parts)}{tail} (seed {c['seed']})"


register_kind(RunKind(
    "low_rank", "Low-rank factorization", LowRankRun, requires=_teacher_and_source,
    describe=_low_rank_name,
    summary=lambda r: {"settings": len(r.points)}))


# ---------------------------------------------------------------- loss families

def loss_families_config(teacher_spec, student, train, kd, seeds, methods, dkd_weights=(1.0, 8.0),
                         hint_weight: float = 1.0, hint_epochs: int = 10, class_distance=None) -> dict:
    from kdcore.loss_families import ClassDistanceConfig
    cd = class_distance if class_distance is not None else ClassDistanceConfig()
    return {"dataset": teacher_spec.dataset, "data_seed": teacher_spec.data_seed,
            "seed": int(min(seeds)) if len(seeds) else 0, "seeds": [int(s) for s in seeds],
            "methods": list(methods), "teacher": teacher_spec.to_dict(), "student": student.to_dict(),
            "train": train.to_dict(), "kd": kd.to_dict(), "dkd_weights": [float(x) for x in dkd_weights],
            "hint_weight": float(hint_weight), "hint_epochs": int(hint_epochs), "class_distance": cd.to_dict()}


def class_distance_spec(config: dict) -> RunSpec:
    """The class-distance teacher a loss-families config needs: trained once per teacher architecture,
    schedule, split and class-distance settings, whatever the students, seeds and epochs compared."""
    return RunSpec("class_distance_teacher", {k: config[k] for k in ("dataset", "data_seed", "teacher",
                                                                       "class_distance")})


class ClassDistanceTeacherRun(EngineRun):
    """Train the teacher's architecture on CE + the class-distance term, in one step."""

    def __init__(self, config: dict, ctx: RunContext):
        from kdcore.loss_families import ClassDistanceConfig
        from kdcore.teachers import TeacherSpec
        self.spec, self.cd = TeacherSpec.from_dict(config["teacher"]), ClassDistanceConfig(**config["class_distance"])
        self.ds = ctx.dataset(config["dataset"], config["data_seed"])
        self.teacher = None

    @property
    def done(self) -> bool:
        return self.teacher is not None

    def step(self):
        from kdcore.loss_families import ClassDistanceTeacher, train_class_distance_teacher
        self.teacher = ClassDistanceTeacher(*train_class_distance_teacher(self.spec, self.ds, self.cd))

    def progress(self) -> Progress:
        if self.teacher is None:
            return Progress(0.0, f"training the class-distance teacher ({self.spec.model.describe()}, "
                                 f"{self.spec.train.epochs} epochs)")
        return Progress(1.0, f"class-distance teacher: {_pct(self.teacher.metrics['accuracy'])}")

    def result(self):
        return self.teacher


register_kind(RunKind(
    "class_distance_teacher", "Class-distance teacher", ClassDistanceTeacherRun,
    describe=lambda c: (f"class-distance teacher · {c['teacher']['model'].get('hidden')} "
                        f"(seed {c['teacher']['seed']})"),
    summary=lambda r: {} if r is None else {"accuracy": r.metrics["accuracy"]}))


class LossFamilyJob(EngineRun):
    def __init__(self, config: dict, ctx: RunContext):
        from kdcore.distill import KDConfig
        from kdcore.loss_families import ClassDistanceConfig, LossFamilyRun
        from kdcore.models import ModelConfig
        from kdcore.teachers import TeacherSpec
        from kdcore.train import TrainConfig
        teacher = ctx.teacher(config["teacher"])
        ds = ctx.dataset(config["dataset"], config["data_seed"])
        if not config["methods"] or not config["seeds"]:
            raise ValueError("choose at least one method and one seed")
        self.run = LossFamilyRun(ds, teacher.model, teacher.logits, teacher.metrics,
                                 ModelConfig.from_dict(config["student"]), TrainConfig(**config["train"]),
                                 KDConfig(**config["kd"]), seeds=config["seeds"], methods=config["methods"],
                                 dkd_weights=tuple(config["dkd_weights"]), hint_weight=float(config["hint_weight"]),
                                 hint_epochs=int(config["hint_epochs"]), teacher_spec=TeacherSpec.from_dict(
                                     config["teacher"]), class_distance=ClassDistanceConfig(**config["class_distance"]),
                                 cd_teacher=ctx.result_of(class_distance_spec(config))
                                 if "cd_teacher" in config["methods"] else None)

    def progress(self) -> Progress:
        from kdcore.loss_families import LOSS_FAMILIES
        run = self.run
        text = f"{run.steps_done}/{run.total_steps} trainings done"
        if run.rows:
            r = run.rows[-1]
            text += f" · {LOSS_FAMILIES[r.method]['name']}, seed {r.seed}: {_pct(r.accuracy)}"
        elif run.cd_teacher is not None:
            text += f" · class-distance teacher: {_pct(run.cd_teacher[2]['accuracy'])}"
        curves: dict[str, list[float]] = {}
        for r in run.rows:
            curves.setdefault(LOSS_FAMILIES[r.method]["name"], []).append(r.accuracy)
        return Progress(run.steps_done / run.total_steps, text, curves)


register_kind(RunKind(
    "loss_families", "Loss families", LossFamilyJob,
    requires=lambda c: [RunSpec("teacher", c["teacher"])] + ([class_distance_spec(c)] if "cd_teacher" in c["methods"]
                                                             else []),
    describe=lambda c: (f"loss families · {', '.join(c['methods'])} × {len(c['seeds'])} seed(s), "
                        f"{c['train']['epochs']} epochs"),
    summary=lambda r: {"students": len(r.rows)}))
