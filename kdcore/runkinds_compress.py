"""Run kinds of the compression pages (Prune, Trade-offs), registered with the Run protocol.

- "prune_analysis": OBD / magnitude / random saliencies of a model, the one-shot accuracy-against-
  sparsity curves (one point per step) and the per-layer sensitivity (one layer per step).
- "prune_retrain": the same curve points, each pruned and retrained (one point per step); requires
  its analysis run.
- "prune_iterative": prune k % of what is left, retrain, repeat (one round per step); requires its
  analysis run.
- "size_curve": distilled and scratch MLP students of several widths (one epoch of one pair per step).
- "quant_panel": post-training quantization at each bit width (one step), then optionally
  quantization-aware distillation per bit width (one epoch per step).
- "prune_quantize": the distill → prune → quantize pipeline (one fine-tuning epoch per step).

The model a run prunes or quantizes is named by a **model source** (`model_source`): the spec of
the run that made it plus a path into that run's result, e.g. the "distill" run's spec and
["distilled"], a "teacher" run's spec and ["model"], a size curve's spec and ["points", 2, "scratch"].
A worker rebuilds it from the run store (`load_model`), and the source run is required first.

Config conventions as in `kdcore.runkinds`: "dataset", "data_seed" and "seed" in every config,
"teacher" (a TeacherSpec dict) where the run distills from the teacher.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from kdcore.data import Dataset
from kdcore.runs import pct as _pct, EngineRun, Progress, RunContext, RunKind, RunSpec, register_kind

EXACT_LIMIT = 20_000                           # "exact" costs one Hessian-vector product per parameter
SENSITIVITY_LEVELS = (0.5, 0.8, 0.9, 0.95, 0.99)



# ---------------------------------------------------------------- model sources

def model_source(run_spec: dict | RunSpec, path: list | tuple) -> dict:
    """How a worker finds a model: the run that made it (spec dict) and the path into its result."""
    spec = run_spec.to_dict() if isinstance(run_spec, RunSpec) else run_spec
    return {"run": {"kind": spec["kind"], "config": spec["config"]}, "path": list(path)}


def record_source(record) -> dict | None:
    """The model source of a session's ModelRecord, or None if no run made it (then a worker cannot
    rebuild it). Records carry extra["run_spec"] (the spec of the run that made them) and optionally
    extra["run_path"]; without a path, a teacher is its run's ["model"] and a student its role
    (["distilled"], ["scratch"]: the "distill" run's result)."""
    spec = record.extra.get("run_spec")
    if not spec:
        return None
    path = record.extra.get("run_path")
    if path is None:
        path = ["model"] if spec["kind"] == "teacher" else [record.role]
    return model_source(spec, path)


def source_requirement(source: dict) -> list[RunSpec]:
    return [RunSpec.from_dict(source["run"])]


def load_model(source: dict, ctx: RunContext) -> nn.Module:
    """A private copy of the model a source names (from the teacher cache or the run store)."""
    spec = RunSpec.from_dict(source["run"])
    obj = ctx.teacher(spec.config) if spec.kind == "teacher" else ctx.result_of(spec)
    for part in source["path"]:
        obj = obj[part] if isinstance(obj, (list, tuple, dict)) else getattr(obj, part)
    if not isinstance(obj, nn.Module):
        raise ValueError(f"the model source {source['path']} of the {spec.kind} run is not a network")
    return copy.deepcopy(obj)


def _requires(*keys: str):
    def requires(config: dict) -> list[RunSpec]:
        out = []
        for k in keys:
            if config.get(k) is None:
                continue
            if k == "teacher":
                out.append(RunSpec("teacher", config["teacher"]))
            elif k == "source":
                out += source_requirement(config["source"])
            else:   # a run spec dict
                out.append(RunSpec.from_dict(config[k]))
        return out
    return requires


# ---------------------------------------------------------------- pruning: the analysis

@dataclass
class PruneAnalysis:
    """Saliencies, one-shot curves and per-layer sensitivity of one model (possibly partial)."""
    dataset: Dataset
    idx: torch.Tensor                 # the training examples the saliencies were computed on
    model: nn.Module                  # the unpruned model (eval mode)
    method: str
    probes: int
    scope: str
    seed: int
    sparsities: list[float]
    n_prunable: int
    scores: dict = field(default_factory=dict)        # criterion -> {layer: Tensor}; {} before step 1
    oneshot: list[dict] = field(default_factory=list)  # CurveRun points (+ "first_order" for OBD)
    sensitivity: list[dict] = field(default_factory=list)
    base_accuracy: float = float("nan")
    base_loss: float = float("nan")
    complete: bool = False

    @property
    def X(self) -> torch.Tensor:
        return self.dataset.X_train[self.idx]

    @property
    def y(self) -> torch.Tensor:
        return self.dataset.y_train[self.idx]


def analysis_config(ds: Dataset, source: dict, method: str, probes: int, n_examples: int, scope: str,
                    sparsities, seed: int | None = None) -> dict:
    return {"dataset": ds.name, "data_seed": ds.seed, "seed": int(ds.seed if seed is None else seed),
            "source": source, "method": method, "probes": int(probes) if method == "hutchinson" else 0,
            "n_examples": int(n_examples), "scope": scope, "sparsities": sorted(float(s) for s in sparsities)}


class PruneAnalysisRun:
    """Step 1: saliencies; then one one-shot curve point per step; then one layer's sensitivity per step."""

    def __init__(self, config: dict, ctx: RunContext):
        from kdcore import pruning as P
        from kdcore.models import param_count
        self.P = P
        self.ds = ds = ctx.dataset(config["dataset"], config["data_seed"])
        model = load_model(config["source"], ctx).eval()
        method, seed = config["method"], int(config["seed"])
        if method == "exact" and param_count(model) > EXACT_LIMIT:
            raise ValueError(f"The exact diagonal needs one Hessian-vector product per parameter; this model has "
                             f"{param_count(model):,} (the limit here is {EXACT_LIMIT:,}).")
        if not config["sparsities"]:
            raise ValueError("choose at least one sparsity for the curves")
        gen = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(ds.X_train), generator=gen)[:int(config["n_examples"])]
        self.X, self.y = ds.X_train[idx], ds.y_train[idx]
        self.a = PruneAnalysis(ds, idx, model, method, int(config["probes"]), config["scope"], seed,
                               list(config["sparsities"]),
                               sum(p.numel() for p in P.prunable_parameters(model).values()))
        self.curve = None
        self.layers: list[str] = []
        self.n_points = 3 * len(config["sparsities"])

    @property
    def total(self) -> int:
        return 1 + self.n_points + (len(self.layers) if self.layers else len(self.P.prunable_parameters(self.a.model)))

    @property
    def steps_done(self) -> int:
        return (self.curve is not None) + len(self.a.oneshot) + len({r["layer"] for r in self.a.sensitivity})

    @property
    def done(self) -> bool:
        return self.a.complete

    def step(self):
        P, a, X, y, ds = self.P, self.a, self.X, self.y, self.ds
        if self.curve is None:
            obd = P.obd_saliency(a.model, X, y, a.method, a.probes, seed=a.seed)
            criteria = {name: P.criterion_from_name(name, X, y, a.method, a.probes, a.seed)
                        for name in ("OBD", "magnitude", "random")}
            a.scores = {"OBD": obd, "magnitude": criteria["magnitude"].scores(a.model),
                        "random": criteria["random"].scores(a.model)}
            self.curve = P.CurveRun(a.model, criteria, X, y, ds.X_test, ds.y_test,
                                    P.CurveConfig(tuple(a.sparsities), a.scope), seed=a.seed, scores=a.scores)
            a.base_accuracy, a.base_loss = self.curve.base_accuracy, self.curve.base_loss
            self.layers = list(obd)
        elif not self.curve.done:
            p = self.curve.step()
            self.curve.models.clear()   # the analysis keeps no pruned copies
            if p["criterion"] == "OBD":
                p["first_order"] = P.first_order_increase(a.model, X, y, P.masks_for_sparsity(
                    a.scores["OBD"], p["sparsity"], a.scope))
            a.oneshot.append(p)
        else:
            n = self.layers[len({r["layer"] for r in a.sensitivity})]
            a.sensitivity += P.layer_sensitivity(a.model, {n: a.scores["OBD"][n]}, SENSITIVITY_LEVELS,
                                                 ds.X_test, ds.y_test)
        a.complete = self.curve.done and len({r["layer"] for r in a.sensitivity}) >= len(self.layers)

    def progress(self) -> Progress:
        a = self.a
        if self.curve is None:
            text = f"Computing saliencies ({a.method})…"
        elif not self.curve.done or not a.oneshot:
            text = f"Pruning one-shot: {len(a.oneshot)}/{self.n_points} points"
            if a.oneshot:
                p = a.oneshot[-1]
                text += f" · {p['criterion']} at {100 * p['sparsity']:g} % → {_pct(p['accuracy'])}"
        else:
            text = f"Per-layer sensitivity: {len({r['layer'] for r in a.sensitivity})}/{len(self.layers)} layers"
        curves = {c: [p["accuracy"] for p in a.oneshot if p["criterion"] == c] for c in ("OBD", "magnitude", "random")}
        return Progress(self.steps_done / self.total, text, {k: v for k, v in curves.items() if v})

    def result(self) -> PruneAnalysis:
        return self.a


def _analysis_name(config: dict) -> str:
    return (f"prune analysis · {config['method']}, {config['scope']} ranking, "
            f"{', '.join(f'{100 * s:g}' for s in config['sparsities'])} % (seed {config['seed']})")


register_kind(RunKind(
    "prune_analysis", "Pruning analysis", PruneAnalysisRun, requires=_requires("source"), describe=_analysis_name,
    summary=lambda a: {"accuracy": a.base_accuracy, "points": len(a.oneshot)}))


# ---------------------------------------------------------------- pruning: retrained curves

@dataclass
class PruneRetrain:
    """Curve points pruned once and retrained with the masks kept; `models[i]` is `points[i]`'s model
    (None for the random baseline: its models are not kept)."""
    retrain_epochs: int
    lr: float
    points: list[dict] = field(default_factory=list)
    models: list[nn.Module] = field(default_factory=list)
    complete: bool = False


def retrain_config(analysis: RunSpec, epochs: int, lr: float) -> dict:
    c = analysis.config
    return {"dataset": c["dataset"], "data_seed": c["data_seed"], "seed": c["seed"], "analysis": analysis.to_dict(),
            "retrain_epochs": int(epochs), "lr": float(lr)}


class PruneRetrainRun:
    def __init__(self, config: dict, ctx: RunContext):
        from kdcore import pruning as P
        a: PruneAnalysis = ctx.result_of(RunSpec.from_dict(config["analysis"]))
        ds = a.dataset
        criteria = {name: P.criterion_from_name(name, a.X, a.y, a.method, a.probes, a.seed)
                    for name in ("OBD", "magnitude", "random")}
        cfg = P.CurveConfig(tuple(sorted({p["sparsity"] for p in a.oneshot})), a.scope,
                            int(config["retrain_epochs"]), float(config["lr"]))
        self.base_accuracy = a.base_accuracy
        self.run = P.CurveRun(a.model, criteria, a.X, a.y, ds.X_test, ds.y_test, cfg, seed=int(config["seed"]),
                              scores=a.scores)
        self.r = PruneRetrain(cfg.retrain_epochs, cfg.lr)

    @property
    def done(self) -> bool:
        return self.run.done

    def step(self):
        p = self.run.step()
        self.r.points.append(p)
        model = self.run.models.pop((p["criterion"], p["sparsity"]))
        self.r.models.append(None if p["criterion"] == "random" else model)   # the baseline's are not kept
        self.r.complete = self.run.done

    def progress(self) -> Progress:
        run = self.run
        text = f"{len(run.points)}/{run.total} points retrained"
        if run.points:
            p = run.points[-1]
            text += (f" · {p['criterion']} at {100 * p['sparsity']:g} % → "
                     f"{_pct(p['retrained_accuracy'])} after retraining")
        curves = {c: [p["retrained_accuracy"] for p in run.points if p["criterion"] == c]
                  for c in ("OBD", "magnitude", "random")}
        return Progress(len(run.points) / run.total, text, {k: v for k, v in curves.items() if v})

    def result(self) -> PruneRetrain:
        return self.r


register_kind(RunKind(
    "prune_retrain", "Retrained pruning curves", PruneRetrainRun, requires=_requires("analysis"),
    describe=lambda c: f"retrain pruned models · {c['retrain_epochs']} epochs at lr {c['lr']:g}",
    summary=lambda r: {"points": len(r.points)}))


# ---------------------------------------------------------------- pruning: iterative

@dataclass
class IterativeResult:
    criterion: str
    config: object                    # IterativeConfig
    model: nn.Module                  # the pruned model after the last round done
    steps: list = field(default_factory=list)   # PruneStep per round
    complete: bool = False


def iterative_config(analysis: RunSpec, criterion: str, target: float, step: float, epochs: int) -> dict:
    c = analysis.config
    return {"dataset": c["dataset"], "data_seed": c["data_seed"], "seed": c["seed"], "analysis": analysis.to_dict(),
            "criterion": criterion, "target": float(target), "step": float(step), "epochs": int(epochs)}


class PruneIterativeRun(EngineRun):
    def __init__(self, config: dict, ctx: RunContext):
        from kdcore import pruning as P
        a: PruneAnalysis = ctx.result_of(RunSpec.from_dict(config["analysis"]))
        ds, seed = a.dataset, int(config["seed"])
        X, y = a.X, a.y
        self.cfg = P.IterativeConfig(target=float(config["target"]), step=float(config["step"]),
                                     epochs=int(config["epochs"]), scope=a.scope)
        criterion = P.criterion_from_name(config["criterion"], X, y, a.method, a.probes, seed)   # the analysis's probes
        self.crit = config["criterion"]
        self.run = P.IterativePruning(copy.deepcopy(a.model), criterion, X, y, ds.X_val, ds.y_val, self.cfg, seed=seed)

    def progress(self) -> Progress:
        run = self.run
        text = f"Round {len(run.steps)}/{len(run.plan)}"
        if run.steps:
            s = run.steps[-1]
            text += (f": {100 * s.sparsity:.1f} % sparse · validation accuracy {_pct(s.accuracy_pruned)} after "
                     f"pruning, {_pct(s.accuracy)} after retraining")
        return Progress(len(run.steps) / len(run.plan), text,
                        {"after pruning": [s.accuracy_pruned for s in run.steps],
                         "after retraining": [s.accuracy for s in run.steps]})

    def result(self) -> IterativeResult:
        return IterativeResult(self.crit, self.cfg, self.run.model.eval(), list(self.run.steps), self.run.done)


register_kind(RunKind(
    "prune_iterative", "Iterative pruning", PruneIterativeRun, requires=_requires("analysis"),
    describe=lambda c: f"iterative pruning by {c['criterion']} to {100 * c['target']:g} %",
    summary=lambda r: {"rounds": len(r.steps), "sparsity": r.steps[-1].sparsity if r.steps else 0.0,
                       "accuracy": r.steps[-1].accuracy if r.steps else float("nan")}))


# ---------------------------------------------------------------- the size curve

@dataclass
class SizeCurveResult:
    """What `tradeoffs.SizeCurve` holds after `run()`: the finished pairs (a stop drops a half-trained one)."""
    dataset: Dataset
    widths: list[int]
    train: object                     # TrainConfig
    kd: object                        # KDConfig
    seed: int
    teacher_metrics: dict
    points: list = field(default_factory=list)   # SizePoint per finished width

    @property
    def done(self) -> bool:
        return len(self.points) >= len(self.widths)

    def summary(self) -> str:
        from kdcore.sizecurve import SizeCurve
        return SizeCurve.summary(self)


def size_curve_config(teacher_spec, widths, train, kd, seed: int) -> dict:
    return {"dataset": teacher_spec.dataset, "data_seed": teacher_spec.data_seed, "seed": int(seed),
            "teacher": teacher_spec.to_dict(), "widths": sorted({int(w) for w in widths}),
            "train": train.to_dict(), "kd": kd.to_dict()}


class SizeCurveRun:
    """`SizeCurve.step`: one epoch of one (distilled, scratch) pair per step."""

    def __init__(self, config: dict, ctx: RunContext):
        from kdcore.distill import KDConfig
        from kdcore.sizecurve import SizeCurve
        from kdcore.train import TrainConfig
        teacher = ctx.teacher(config["teacher"])
        ds = ctx.dataset(config["dataset"], config["data_seed"])
        self.sweep = SizeCurve(ds, teacher.logits, teacher.metrics, config["widths"], TrainConfig(**config["train"]),
                               KDConfig(**config["kd"]), seed=int(config["seed"]))
        self.res = SizeCurveResult(ds, list(self.sweep.widths), self.sweep.train, self.sweep.kd, self.sweep.seed,
                                   teacher.metrics, self.sweep.points)
        self.last = None
        self.epochs_done = 0

    @property
    def done(self) -> bool:
        return self.sweep.done

    def step(self):
        self.last = self.sweep.step()
        self.epochs_done += 1

    def progress(self) -> Progress:
        sw = self.sweep
        if sw.pair is not None:
            log_d, log_s = self.last
            text = (f"Width {sw.widths[len(sw.points)]} ({len(sw.points) + 1}/{len(sw.widths)}), epoch "
                    f"{log_d.epoch}/{sw.train.epochs} · validation accuracy: distilled {_pct(log_d.val_acc)}, "
                    f"scratch {_pct(log_s.val_acc)}")
        elif sw.points:
            p = sw.points[-1]
            text = (f"Width {p.width} done: distilled {_pct(p.distilled_accuracy)}, "
                    f"scratch {_pct(p.scratch_accuracy)}")
        else:
            text = "starting…"
        return Progress(self.epochs_done / sw.total_epochs, text,
                        {"distilled": [p.distilled_accuracy for p in sw.points],
                         "scratch": [p.scratch_accuracy for p in sw.points]})

    def result(self) -> SizeCurveResult:
        return self.res


register_kind(RunKind(
    "size_curve", "Size curve", SizeCurveRun, requires=_requires("teacher"),
    describe=lambda c: f"size curve · widths {', '.join(map(str, c['widths']))}, {c['train']['epochs']} epochs "
                       f"(seed {c['seed']})",
    summary=lambda r: {"widths": len(r.points),
                       "best_gain_pts": max((100 * p.gain for p in r.points), default=0.0)}))


# ---------------------------------------------------------------- the quantization panel

@dataclass
class QuantPanel:
    """PTQ rows (and QAT rows, 32 bits = the float control) of one model."""
    bits: list[int]
    granularity: str
    scale: str
    qat: bool
    rows: list = field(default_factory=list)     # BitsRow: PTQ first, then QAT per bit width
    complete: bool = False


def panel_config(ds: Dataset, source: dict, bits, granularity: str, scale: str, qat: bool,
                 teacher_spec=None, train=None, kd=None, seed: int | None = None) -> dict:
    cfg = {"dataset": ds.name, "data_seed": ds.seed, "seed": int(ds.seed if seed is None else seed),
           "source": source, "bits": sorted({int(b) for b in bits}, reverse=True), "granularity": granularity,
           "scale": scale, "qat": bool(qat)}
    if qat:
        cfg.update(teacher=teacher_spec.to_dict(), train=train.to_dict(), kd=kd.to_dict())
    return cfg


class QuantPanelRun:
    """Step 1: PTQ at every bit width (`tradeoffs.ptq_rows`); then `tradeoffs.qat_rows` one epoch per step."""

    def __init__(self, config: dict, ctx: RunContext):
        from kdcore.distill import KDConfig
        from kdcore.train import TrainConfig
        self.ds = ctx.dataset(config["dataset"], config["data_seed"])
        self.model = load_model(config["source"], ctx).eval()
        self.config, self.seed = config, int(config["seed"])
        self.panel = QuantPanel(list(config["bits"]), config["granularity"], config["scale"], bool(config["qat"]))
        self.ptq_done = False
        self.qat_todo = list(config["bits"]) if config["qat"] else []
        self.current = None        # (bits, QATDistillRun) in progress
        if config["qat"]:
            self.teacher_train = ctx.teacher(config["teacher"]).logits["train"]
            self.train, self.kd = TrainConfig(**config["train"]), KDConfig(**config["kd"])

    @property
    def total(self) -> int:
        return 1 + len(self.config["bits"]) * (self.train.epochs if self.config["qat"] else 0)

    @property
    def steps_done(self) -> int:
        qat_rows = sum(r.method == "QAT" for r in self.panel.rows)
        epochs = qat_rows * self.train.epochs if self.config["qat"] else 0
        if self.current is not None:
            epochs += self.current[1].history.epochs_run
        return int(self.ptq_done) + epochs

    @property
    def done(self) -> bool:
        return self.panel.complete

    def step(self):
        from kdcore.quantize import FLOAT_BITS, QATDistillRun, QuantConfig
        from kdcore.bitwidths import BitsRow, ptq_rows
        from kdcore.quantize import evaluate_sized
        c, p = self.config, self.panel
        if not self.ptq_done:
            p.rows += ptq_rows(self.model, self.ds, c["bits"], c["granularity"], c["scale"])
            self.ptq_done = True
        else:
            if self.current is None:
                b = self.qat_todo[0]
                cfg = None if b == FLOAT_BITS else QuantConfig(b, c["granularity"], c["scale"])
                self.current = (b, cfg, QATDistillRun(self.ds, self.teacher_train, copy.deepcopy(self.model), cfg,
                                                      self.train, self.kd, self.seed))
            b, cfg, run = self.current
            run.step()
            if run.done:
                q, _ = run.finish()
                m = evaluate_sized(q, self.ds, None, b, c["granularity"])
                p.rows.append(BitsRow(b, "QAT", m["accuracy"], m["bytes"], q, cfg))
                self.qat_todo.pop(0)
                self.current = None
        p.complete = self.ptq_done and not self.qat_todo

    def progress(self) -> Progress:
        if self.current is not None:
            b, _, run = self.current
            log = run.history.logs[-1]
            text = f"{b} bits: epoch {log.epoch}/{log.epochs} · validation accuracy {_pct(log.val_acc)}"
        elif self.ptq_done:
            text = "post-training quantization done" + (f"; QAT {sum(r.method == 'QAT' for r in self.panel.rows)}/"
                                                        f"{len(self.config['bits'])} bit widths" if self.config["qat"]
                                                        else "")
        else:
            text = "quantizing…"
        curves = {m: [r.accuracy for r in self.panel.rows if r.method == m] for m in ("PTQ", "QAT")}
        return Progress(self.steps_done / self.total, text, {k: v for k, v in curves.items() if v})

    def result(self) -> QuantPanel:
        return self.panel   # a QAT width stopped half-way is not a row


register_kind(RunKind(
    "quant_panel", "Quantization panel", QuantPanelRun, requires=_requires("source", "teacher"),
    describe=lambda c: f"quantize · {', '.join(map(str, c['bits']))} bits, {c['granularity']}, {c['scale']}"
                       + (f", QAT {c['train']['epochs']} epochs at lr {c['train']['lr']:g}" if c["qat"] else ", PTQ"),
    summary=lambda p: {"rows": len(p.rows)}))


# ---------------------------------------------------------------- distill → prune → quantize

@dataclass
class PipelineResult:
    stages: list                      # PipelineStage: pruned, pruned + quantized
    epochs_run: int
    complete: bool


def pipeline_config(teacher_spec, source: dict, sparsity: float, quant, finetune, kd, seed: int,
                    source_recipe: str = "") -> dict:
    return {"dataset": teacher_spec.dataset, "data_seed": teacher_spec.data_seed, "seed": int(seed),
            "teacher": teacher_spec.to_dict(), "source": source, "sparsity": float(sparsity),
            "quant": quant.to_dict(), "finetune": finetune.to_dict() if finetune is not None else None,
            "kd": kd.to_dict(), "source_recipe": source_recipe}


class PipelineJob(EngineRun):
    """`tradeoffs.PipelineRun` as a job: the pruning at once, one fine-tuning epoch per step."""

    def __init__(self, config: dict, ctx: RunContext):
        from kdcore.distill import KDConfig
        from kdcore.quantize import QuantConfig
        from kdcore.pipeline import PipelineRun
        from kdcore.train import TrainConfig
        teacher = ctx.teacher(config["teacher"])
        ds = ctx.dataset(config["dataset"], config["data_seed"])
        ft = config["finetune"]
        self.run = PipelineRun(load_model(config["source"], ctx), ds, teacher.logits, float(config["sparsity"]),
                               QuantConfig(**config["quant"]), TrainConfig(**ft) if ft else None,
                               KDConfig(**config["kd"]), seed=int(config["seed"]),
                               source_recipe=config.get("source_recipe", ""))
        self.epochs = ft["epochs"] if ft else 0

    def progress(self) -> Progress:
        n = self.run.epochs_run
        text = f"Fine-tuning the pruned model: epoch {n}/{self.epochs}"
        hist = self.run.tuning.history if self.run.tuning is not None else None
        if hist is not None and hist.logs:
            text += f" · validation accuracy {_pct(hist.logs[-1].val_acc)}"
        return Progress(n / self.epochs if self.epochs else 1.0, text,
                        {"fine-tune": [l.val_acc for l in hist.logs]} if hist is not None else {})

    def result(self) -> PipelineResult:
        complete = self.run.done
        return PipelineResult(self.run.stages(), self.run.epochs_run, complete)


register_kind(RunKind(
    "prune_quantize", "Prune and quantize", PipelineJob, requires=_requires("source", "teacher"),
    describe=lambda c: f"prune {100 * c['sparsity']:g} % + {c['quant']['bits']}-bit PTQ"
                       + (f", fine-tuned {c['finetune']['epochs']} epochs" if c["finetune"] else ""),
    summary=lambda r: {"accuracy": r.stages[-1].metrics["accuracy"], "bytes": r.stages[-1].metrics["bytes"]}))
