"""Run kinds of the paper's experiments (Hinton, Vinyals & Dean 2015), registered with `kdcore.runs`.

- "specialists": a generalist (the current teacher) plus specialists (`SpecialistRun`), one epoch per step.
- "transfer_fractions": the labelled-fraction curve (`FractionCurve`), one epoch per step.
- "transfer_omitted": a distilled student and its twin without one class (`OmittedClassRun`).
- "transfer_losses": soft loss vs logit matching vs labels (`LossComparisonRun`).
- "hinton_mnist": the MNIST preset (`HintonExperiment`), one epoch of its current stage per step; it
  trains (or finds in the teacher cache) its own teacher.

Each kind wraps the engine's own stepped class: the numbers are those of the direct engine calls.
Configs name their data as "dataset" and "data_seed"; a run that needs the current teacher carries
its spec dict under "teacher" and requires the "teacher" run.
"""

from __future__ import annotations

import copy
import threading

from kdcore.runkinds import teacher_requirement, val_curve
from kdcore.runs import pct as _pct, EngineRun, Progress, RunContext, RunKind, register_kind



def _student_configs(config: dict):
    from kdcore.distill import KDConfig
    from kdcore.models import ModelConfig
    from kdcore.train import TrainConfig
    return (ModelConfig.from_dict(config["student"]), TrainConfig(**config["train"]), KDConfig(**config["kd"]))


def student_config(teacher_spec, student, train, kd, seed: int, **extra) -> dict:
    """The config of a transfer-set run from the engine's configs (plus `extra` settings)."""
    return {"dataset": teacher_spec.dataset, "data_seed": teacher_spec.data_seed, "seed": int(seed),
            "teacher": teacher_spec.to_dict(), "student": student.to_dict(), "train": train.to_dict(),
            "kd": kd.to_dict(), **extra}


def _safe(summary):
    """A summary function that gives {} for a run that kept nothing (a None result)."""
    return lambda r: {} if r is None else summary(r)


# ---------------------------------------------------------------- specialists

def specialists_config(teacher_spec, config) -> dict:
    """The config of a "specialists" run: the generalist's spec and a `SpecialistConfig`."""
    return {"dataset": teacher_spec.dataset, "data_seed": teacher_spec.data_seed,
            "teacher": teacher_spec.to_dict(), "specialists": config.to_dict()}


class SpecialistsJob:
    """`SpecialistRun` as a job: one epoch of the specialist in training per step."""

    def __init__(self, config: dict, ctx: RunContext):
        from kdcore.specialists import SpecialistConfig, SpecialistRun
        generalist = ctx.teacher(config["teacher"])
        self.ds = ctx.dataset(config["dataset"], config["data_seed"])
        from kdcore.models import is_imported
        net, net_cfg = generalist.model, generalist.spec.model
        if is_imported(generalist.spec):   # a forest / boosting / uploaded generalist: network specialists
            from kdcore.presets import default_teacher_spec   # from scratch, of the default teacher's shape
            net, net_cfg = None, default_teacher_spec(self.ds.name, self.ds.seed).model
        self.run = SpecialistRun(self.ds, net, generalist.logits, net_cfg,
                                 SpecialistConfig(**config["specialists"]), generalist.metrics)
        self._last = None

    @property
    def done(self) -> bool:
        return self.run.done

    def step(self):
        self._last = (self.run.current, self.run.step())

    def progress(self) -> Progress:
        run = self.run
        n = len(run.targets)
        text = f"{len(run.specialists)}/{n} specialists trained"
        if self._last is not None:
            cluster, log = self._last
            names = ", ".join(str(self.ds.class_names[c]) for c in cluster)
            text = (f"Specialist for classes {names}: epoch {log.epoch}/{log.epochs} · validation accuracy "
                    f"(its classes + dustbin) {_pct(log.val_acc)} · {text}")
        curves = {name: [float(r["val_acc"]) for r in recs] for name, recs in run.curves().items()}
        return Progress(run.epochs_run / max(run.total_epochs, 1), text, curves)

    def result(self):
        return self.run.result()


def _specialists_summary(r) -> dict:
    out = {"specialists": len(r.specialists), "planned": r.planned}
    if r.specialists:
        rep = r.report("kl")
        out.update(accuracy=rep["combined"], generalist_accuracy=rep["generalist"])
    return out


def _specialists_name(config: dict) -> str:
    s = config["specialists"]
    return (f"specialists · K={s['n_clusters']}, T={s['temperature']:g}, from {s['init']}, "
            f"{s['epochs']} epochs each (seed {s['seed']})")


register_kind(RunKind(
    "specialists", "Specialists", SpecialistsJob, requires=teacher_requirement,
    summary=_safe(_specialists_summary), describe=_specialists_name))


# ---------------------------------------------------------------- transfer sets: labelled fraction

class FractionCurveJob:
    """`FractionCurve` as a job: one epoch of the current share's two students per step.
    Its result is the list of `FractionPoint`s (a stopped share evaluated as it was)."""

    def __init__(self, config: dict, ctx: RunContext):
        from kdcore.transfer import FractionCurve
        teacher = ctx.teacher(config["teacher"])
        ds = ctx.dataset(config["dataset"], config["data_seed"])
        student, train, kd = _student_configs(config)
        self.curve = FractionCurve(ds, teacher.logits, teacher.metrics, student, train, kd,
                                   config["fractions"], config["seed"])

    @property
    def done(self) -> bool:
        return self.curve.done

    def step(self):
        self.curve.step()

    def progress(self) -> Progress:
        c = self.curve
        text = f"{len(c.points)}/{len(c.fractions)} shares done"
        curves = {}
        if c.current is not None:
            text += f" · now {100 * c.current_fraction:g} % labelled, epoch {c.current.epoch}/{c.train.epochs}"
            curves = {"distilled": val_curve(c.current.distilled_history), "scratch": val_curve(c.current.scratch_history)}
        elif c.points and c.points[-1].result is not None:
            r = c.points[-1].result
            curves = {"distilled": val_curve(r.distilled_history), "scratch": val_curve(r.scratch_history)}
        return Progress(c.progress, text, curves)

    def result(self):
        partial = copy.copy(self.curve)        # finish() on a copy: the curve itself may go on
        partial.points = list(self.curve.points)
        return partial.finish()


def _fractions_summary(points) -> dict:
    if not points:
        return {}
    low = min(points, key=lambda p: p.fraction)
    return {"shares": len(points), "lowest_share": low.fraction, "accuracy": low.distilled["accuracy"],
            "scratch_accuracy": low.scratch["accuracy"], "gain_pts": 100 * low.gain}


def _fractions_name(config: dict) -> str:
    shares = ", ".join(f"{100 * f:g}" for f in sorted(config["fractions"]))
    return f"labelled-fraction curve · {shares} % labels, {config['train']['epochs']} epochs (seed {config['seed']})"


register_kind(RunKind(
    "transfer_fractions", "Labelled-fraction curve", FractionCurveJob, requires=teacher_requirement,
    summary=_safe(_fractions_summary), describe=_fractions_name))


# ---------------------------------------------------------------- transfer sets: omitted class, losses

class _PairJob(EngineRun):
    """A run over a `DistillRun`-like object with `epoch`, `done`, `step()`, `result()`; its result is
    None when stopped before the first epoch (nothing was learned)."""

    label = ""

    def _histories(self) -> dict:
        raise NotImplementedError

    def progress(self) -> Progress:
        total, n = self.run.train.epochs, self.run.epoch
        curves = {k: val_curve(h) for k, h in self._histories().items()}
        text = f"{self.label}: epoch {n}/{total}"
        if n:
            text += " · validation accuracy: " + ", ".join(f"{k} {_pct(v[-1])}" for k, v in curves.items() if v)
        return Progress(n / total, text, curves)

    def result(self):
        return self.run.result() if self.run.epoch > 0 else None


class OmittedClassJob(_PairJob):
    def __init__(self, config: dict, ctx: RunContext):
        from kdcore.transfer import OmittedClassRun
        teacher = ctx.teacher(config["teacher"])
        ds = ctx.dataset(config["dataset"], config["data_seed"])
        student, train, kd = _student_configs(config)
        self.label = f"Training without class {ds.class_names[int(config['omitted'])]}"
        self.run = OmittedClassRun(ds, teacher.logits, teacher.metrics, int(config["omitted"]), student, train,
                                   kd, config["seed"])

    def _histories(self) -> dict:
        r = self.run.run
        return {"distilled": r.distilled_history, "scratch": r.scratch_history} | \
            ({"hard labels": r.hard_history} if r.hard_history is not None else {})


def _omitted_summary(r) -> dict:
    auto = r.evaluate_bias(r.auto_bias)
    return {"accuracy": r.distilled.distilled_metrics["accuracy"],
            "scratch_accuracy": r.distilled.scratch_metrics["accuracy"],
            "class_accuracy_auto_bias": auto["class_accuracy"], "auto_bias": r.auto_bias,
            "epochs": r.distilled.distilled_history.epochs_run}


def _omitted_name(config: dict) -> str:
    return (f"without class {config['omitted']} · T={config['kd']['temperature']:g}, α={config['kd']['alpha']:g}, "
            f"{config['train']['epochs']} epochs (seed {config['seed']})")


register_kind(RunKind(
    "transfer_omitted", "Omitted class", OmittedClassJob, requires=teacher_requirement,
    summary=_safe(_omitted_summary), describe=_omitted_name))


# ---------------------------------------------------------------- transfer sets: loss comparison

class LossComparisonJob(_PairJob):
    label = "Three students"

    def __init__(self, config: dict, ctx: RunContext):
        from kdcore.transfer import LossComparisonRun
        teacher = ctx.teacher(config["teacher"])
        ds = ctx.dataset(config["dataset"], config["data_seed"])
        student, train, kd = _student_configs(config)
        self.run = LossComparisonRun(ds, teacher.logits, teacher.metrics, student, train, kd, config["seed"])

    def _histories(self) -> dict:
        return self.run.histories


def _losses_summary(r) -> dict:
    return {f"{k}_accuracy": m["accuracy"] for k, m in r.metrics.items()} | {"epochs": r.histories["soft"].epochs_run}


def _losses_name(config: dict) -> str:
    kd = config["kd"]
    return (f"soft vs logits vs labels · T={kd['temperature']:g}, α={kd['alpha']:g}, "
            f"{100 * kd['labelled_fraction']:g} % labels, {config['train']['epochs']} epochs (seed {config['seed']})")


register_kind(RunKind(
    "transfer_losses", "Loss comparison", LossComparisonJob, requires=teacher_requirement,
    summary=_safe(_losses_summary), describe=_losses_name))


# ---------------------------------------------------------------- the Hinton MNIST preset

class _Abort(BaseException):
    """Raised inside a callback-driven run to end it where it stands (not an `Exception`: nothing in
    the engine catches it)."""


class EpochStepper:
    """One epoch per `step()` out of a function that trains with an epoch callback.

    `target(on_epoch)` runs the whole experiment and calls `on_epoch(stage, log)` after every epoch.
    It runs in a helper thread that pauses in each callback until the next `step()`, so exactly one
    side trains at a time and the numbers are those of a direct call. `last(stage, log)` says
    whether an epoch is the experiment's final one (the thread then runs to its end in that step).
    `abort()` ends a paused run where it stands: nothing more is trained.
    """

    def __init__(self, target, last=lambda stage, log: False):
        self._target, self._last = target, last
        self._go, self._back = threading.Semaphore(0), threading.Semaphore(0)
        self._thread: threading.Thread | None = None
        self._abort = False
        self.finished = False
        self.error: BaseException | None = None
        self.epochs: list[tuple[str, object]] = []      # (stage, epoch log), in order

    def _on_epoch(self, stage, log):
        self.epochs.append((stage, log))
        if self._last(stage, log):
            return False                 # run on to the end; the thread's exit wakes step()
        self._back.release()
        self._go.acquire()
        if self._abort:
            raise _Abort()
        return False

    def _main(self):
        try:
            self._target(self._on_epoch)
        except _Abort:
            pass
        except BaseException as err:    # handed to the caller of step()
            self.error = err
        finally:
            self.finished = True
            self._back.release()

    def step(self) -> None:
        if self.finished:
            raise RuntimeError("the run has ended")
        if self._thread is None:
            self._thread = threading.Thread(target=self._main, name="kdlab-epoch-stepper", daemon=True)
            self._thread.start()
        else:
            self._go.release()
        self._back.acquire()
        if self.error is not None:
            err, self.error = self.error, None
            raise err

    def abort(self) -> None:
        if self._thread is not None and not self.finished:
            self._abort = True
            self._go.release()
            self._thread.join()
        self.finished = True


def preset_from_dict(d: dict):
    from kdcore.hinton import HintonPreset
    from kdcore.models import ModelConfig
    from kdcore.train import TrainConfig
    return HintonPreset(**{**d, "teacher": ModelConfig.from_dict(d["teacher"]),
                           "teacher_train": TrainConfig(**d["teacher_train"]),
                           "student": ModelConfig.from_dict(d["student"]),
                           "student_train": TrainConfig(**d["student_train"])})


def hinton_config(preset, seed: int = 0, device: str = "cpu") -> dict:
    """The config of a "hinton_mnist" run: the whole preset (so a changed schedule is another run),
    the seed and the device it trains on ("cpu", "cuda")."""
    return {"dataset": "mnist", "data_seed": int(seed), "seed": int(seed), "schedule": preset.name,
            "preset": preset.to_dict(), "device": device}


class HintonJob:
    """`HintonExperiment` as a job: one epoch of its current stage (teacher, students, omitted) per step."""

    def __init__(self, config: dict, ctx: RunContext):
        from kdcore.hinton import HintonExperiment, preset_dataset, teacher_spec
        preset = preset_from_dict(config["preset"])
        seed = int(config["seed"])
        ds = preset_dataset(preset, int(config["data_seed"]), ctx.data_root)
        self.exp = HintonExperiment(preset, ds, seed, ctx.teachers, config.get("device", "cpu"))
        cached = ctx.teachers.get(teacher_spec(preset, ds, seed), ds) is not None
        self.total = self.exp.total_epochs - (preset.teacher_train.epochs if cached else 0)
        final = HintonExperiment.STAGES[-1]
        self.stepper = EpochStepper(self.exp.run, last=lambda stage, log: stage == final and log.epoch >= log.epochs)

    @property
    def done(self) -> bool:
        return self.stepper.finished

    def step(self):
        self.stepper.step()

    def progress(self) -> Progress:
        epochs = self.stepper.epochs
        curves: dict[str, list[float]] = {}
        for stage, log in epochs:
            curves.setdefault(stage, []).append(float(log.val_acc))
        text = "starting"
        if epochs:
            stage, log = epochs[-1]
            text = f"{stage}: epoch {log.epoch}/{log.epochs} · validation accuracy {100 * log.val_acc:.2f} %"
        return Progress(1.0 if self.done else len(epochs) / max(self.total, 1), text, curves)

    def result(self):
        """The experiment's `HintonResult` (None when stopped while its teacher was training)."""
        if not self.stepper.finished:
            self.stepper.abort()
            self.exp.stopped = True
        return self.exp.result()


def _hinton_summary(r) -> dict:
    return dict(r.errors) | {"stopped": r.stopped}


def _hinton_name(config: dict) -> str:
    return f"Hinton MNIST · {config['schedule']} schedule on {config.get('device', 'cpu')} (seed {config['seed']})"


register_kind(RunKind(
    "hinton_mnist", "Hinton MNIST", HintonJob, summary=_safe(_hinton_summary), describe=_hinton_name))
