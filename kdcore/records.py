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

    @property
    def rebuildable(self) -> bool:
        """True when a worker can rebuild the model from the run that made it (pruning, quantizing
        and the pipeline run as jobs on such a copy)."""
        return bool(self.extra.get("run_spec"))


# roles whose models Prune may take: networks trained by a run (not already compressed copies)
PRUNABLE_ROLES = ("teacher", "distilled", "scratch", "hard labels")


def from_run(run_spec: dict | None, path: list, name: str, role: str, model: nn.Module, metrics: dict,
             recipe: str, dataset: str, data_seed: int, **extra) -> ModelRecord:
    """A record of a model that the run `run_spec` made, found in its result at `path` (list indices,
    dict keys and attribute names, walked in order), so a worker can rebuild it."""
    if run_spec:
        extra.update(run_spec=run_spec, run_path=list(path))
    return ModelRecord(name, role, model, metrics, recipe, dataset, data_seed, extra=extra)


# ---- the records of each experiment's models (the pages list them; Prune and Trade-offs pick from them)

def distill_records(result, dataset: str, data_seed: int, run_spec: dict | None, run_name: str = "") -> list[ModelRecord]:
    """The Distill page's students (distilled, labels only and the hard-label control), named so that two
    distillations with other settings stand side by side."""
    s, kd = result.student_config, result.kd
    recipe = f"{s.describe()}, {result.train_config.epochs} epochs, {100 * kd.labelled_fraction:g} % labels"
    label = (f"{s.describe()} · {100 * kd.labelled_fraction:g} % labels, T={kd.temperature:g}, α={kd.alpha:g}, "
             f"{result.train_config.epochs} epochs (seed {result.seed})")
    members = [("distilled", result.distilled, result.distilled_metrics,
                f"distilled at T={kd.temperature:g}, α={kd.alpha:g}; {recipe}"),
               ("scratch", result.scratch, result.scratch_metrics, f"labels only; {recipe}")]
    if result.hard is not None:
        members.append(("hard labels", result.hard, result.hard_metrics,
                        f"the teacher's argmax labels on the whole transfer set; {recipe}"))
    # the result's attribute of each role (the path a worker walks to rebuild it)
    attr = {"distilled": "distilled", "scratch": "scratch", "hard labels": "hard"}
    return [from_run(run_spec, [attr[role]], f"{role} {label}", role, model, metrics, how, dataset, data_seed,
                     kd=kd.to_dict(), student=s.to_dict(), run=run_name)
            for role, model, metrics, how in members]


def ensemble_student_records(res, dataset: str, data_seed: int, run_spec: dict | None) -> list[ModelRecord]:
    """The student distilled from an ensemble and the one distilled from a single member."""
    r, kd = res.result, res.result.kd
    recipe = f"{r.student_config.describe()}, {r.train_config.epochs} epochs, {100 * kd.labelled_fraction:g} % labels"
    return [from_run(run_spec, path, name, "distilled", model, metrics, f"{how}; {recipe}", dataset, data_seed,
                     kd=kd.to_dict(), student=r.student_config.to_dict())
            for path, name, model, metrics, how in [
                (["result", "distilled"], f"distilled from ensemble {r.student_config.describe()} (seed {r.seed})",
                 r.distilled, r.distilled_metrics,
                 f"distilled from the {res.ensemble_name} at T={kd.temperature:g}, α={kd.alpha:g}"),
                (["single"], f"distilled from one member {r.student_config.describe()} (seed {r.seed})",
                 res.single, res.single_metrics,
                 f"distilled from {res.single_member} at T={kd.temperature:g}, α={kd.alpha:g}")]]


def transfer_records(what: str, res, teacher_name: str, dataset: str, data_seed: int,
                     run_spec: dict | None, losses: dict[str, str]) -> list[ModelRecord]:
    """The Transfer sets page's students: `what` is "fractions", "omitted" or "losses" (names of the
    three loss comparisons' students in `losses`)."""
    out = []
    if what == "fractions":
        for i, p in enumerate(res):
            r = p.result
            if r is None:
                continue
            at = f"{r.student_config.describe()} @ {100 * p.fraction:g} % labels"
            how = f"{r.student_config.describe()}, {p.n_labelled} labels ({100 * p.fraction:g} %)"
            out.append(from_run(run_spec, [i, "result", "distilled"], f"transfer: distilled {at}", "distilled",
                                r.distilled, p.distilled, f"soft targets of {teacher_name} (T={r.kd.temperature:g}) "
                                f"on the whole transfer set + {how}", dataset, data_seed))
            out.append(from_run(run_spec, [i, "result", "scratch"], f"transfer: scratch {at}", "scratch",
                                r.scratch, p.scratch, f"labels only; {how}", dataset, data_seed))
            if r.hard is not None:
                out.append(from_run(run_spec, [i, "result", "hard"], f"transfer: hard labels {at}", "hard labels",
                                    r.hard, r.hard_metrics, f"the argmax labels of {teacher_name} on the whole "
                                    "transfer set", dataset, data_seed))
    elif what == "omitted":
        r = res.distilled
        how = {"distilled": f", soft targets of {teacher_name} (T={r.kd.temperature:g})", "scratch": ", labels only",
               "hard labels": f", the argmax labels of {teacher_name}"}
        for role, attr, model, metrics in [("distilled", "distilled", r.distilled, r.distilled_metrics),
                                           ("scratch", "scratch", r.scratch, r.scratch_metrics),
                                           ("hard labels", "hard", r.hard, r.hard_metrics)]:
            if model is not None:
                out.append(from_run(run_spec, ["distilled", attr],
                                    f"transfer: {role} {r.student_config.describe()} without class {res.class_name}",
                                    role, model, metrics, f"transfer set without any '{res.class_name}'" + how[role],
                                    dataset, data_seed))
    elif what == "losses":
        for k, model in res.models.items():
            out.append(from_run(run_spec, ["models", k],
                                f"transfer: {k} loss {res.student.describe()} @ {100 * res.kd.labelled_fraction:g} % labels",
                                "distilled" if k != "hard" else "scratch", model, res.metrics[k],
                                f"{losses[k]}; teacher {teacher_name}", dataset, data_seed))
    else:
        raise ValueError(f"unknown transfer experiment {what!r}")
    return out


def hinton_records(res, run_spec: dict | None) -> list[ModelRecord]:
    """The Hinton MNIST preset's students (on its MNIST split, or the subset of a short schedule)."""
    p = res.preset
    dataset = "mnist" if p.train_subset is None and p.eval_subset is None else f"mnist ({p.name} subset)"
    out = []
    for key, role, metrics, how in [
        ("distilled", "distilled", res.distilled_metrics, f"soft targets T={p.temperature:g}, α={p.alpha:g}"),
        ("hard", "scratch", res.hard_metrics, "hard labels, no regularization"),
        ("omitted", "distilled", res.omitted_metrics, f"soft targets, no {p.omitted_class} in the transfer set"),
    ]:
        if key in res.models and metrics:
            out.append(from_run(run_spec, ["models", key], f"Hinton {p.name}: {key} {p.student.describe()}", role,
                                res.models[key], metrics, f"{how}; {p.student_train.epochs} epochs", dataset,
                                res.seed, preset=p.name))
    return out


def ensemble_record(ens, dataset: str, data_seed: int) -> ModelRecord:
    """An ensemble as one model (its members averaged): on the frontier, not rebuilt by workers."""
    from kdcore.ensemble import describe_member
    return ModelRecord(f"ensemble of {ens.n_members} ({ens.method}, seed {data_seed})", "ensemble", ens.module(),
                       ens.metrics, f"{ens.describe()}; members: " + "; ".join(describe_member(m.spec)
                                                                               for m in ens.members),
                       dataset, data_seed, extra={"members": [m.spec.to_dict() for m in ens.members],
                                                  "method": ens.method})


def sweep_best_record(res, cell_label: str, model: nn.Module, student, dataset: str, data_seed: int) -> ModelRecord:
    """The best cell's first student of a T × α sweep (its network rebuilt by `SweepResult.student_model`)."""
    cfg = res.config
    return ModelRecord(f"sweep best {cell_label} (seed {student.spec.seed})", "distilled", model, student.metrics,
                       f"best of a {len(cfg.temperatures)}×{len(cfg.alphas)} sweep, {res.epochs_text()}, "
                       f"{100 * cfg.labelled_fraction:g} % labels", dataset, data_seed,
                       extra={"spec": student.spec.label()})


# the kinds of run whose stored results hold students that other pages pick from
STUDENT_RUN_KINDS = ("distill", "ensemble_distill", "transfer_fractions", "transfer_omitted", "transfer_losses")


def records_of(kind: str, result, run_spec: dict, dataset: str, data_seed: int, run_name: str = "") -> list[ModelRecord]:
    """The records of the students a stored run of `kind` made (one of STUDENT_RUN_KINDS)."""
    if kind == "distill":
        return distill_records(result, dataset, data_seed, run_spec, run_name)
    if kind == "ensemble_distill":
        return ensemble_student_records(result, dataset, data_seed, run_spec)
    if kind.startswith("transfer_"):
        from kdcore.teachers import TeacherSpec
        from kdcore.transfer import LOSSES
        teacher_name = f"teacher {TeacherSpec.from_dict(run_spec['config']['teacher']).model.describe()}"
        return transfer_records(kind[len("transfer_"):], result, teacher_name, dataset, data_seed, run_spec, LOSSES)
    raise ValueError(f"runs of kind {kind!r} keep no students")


def pruned_record(source_label: str, n_prunable: int, model: nn.Module, criterion: str, target: float, how: str,
                  run_spec: dict, path: list, ds, teacher_test_logits) -> ModelRecord:
    """A pruned copy of a model, evaluated on the test split, with the size of its cheapest sparse
    encoding (values + indices, or a bitmask + values), not its dense bytes."""
    from kdcore.pruning import sparsity
    from kdcore.quantize import evaluate_sized
    metrics = evaluate_sized(model, ds, teacher_test_logits)
    s = sparsity(model)
    metrics["nonzero_params"] = metrics["params"] - int(round(s * n_prunable))
    return from_run(run_spec, path, pruned_name(source_label, criterion, target, how), "pruned", model, metrics,
                    f"{source_label} pruned to {100 * s:.1f} % sparsity by {criterion} ({how or 'one-shot'})",
                    ds.name, ds.seed, sparsity=s, criterion=criterion, source=source_label, how=how,
                    encoding=metrics["encoding"])


def pruned_name(source_label: str, criterion: str, target: float, how: str) -> str:
    return f"pruned {source_label} ({criterion}, {100 * target:g} %{', ' + how if how else ''})"
