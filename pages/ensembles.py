"""Ensembles: N teachers from different seeds, combined by a mean, then compressed into one student."""

from dataclasses import replace

import pandas as pd
import streamlit as st

from kdcore import figures
from kdcore.ensemble import (METHODS, Ensemble, EnsembleBuild, EnsembleDistillResult, EnsembleDistillRun,
                             describe_member, ensemble_bars, member_specs)
from kdcore.models import format_bytes
from kdcore.registry import ModelRecord
from kdcore.train import TrainConfig
from ui import state
from ui import student as student_ui
from ui.live import LiveProgress

RESULTS = "ensemble_results"          # (dataset, seed) -> {"ensemble": Ensemble, "distill": EnsembleDistillResult}
LIVE_BUILD = "ensemble_build_live"    # the EnsembleBuild in progress (a stop keeps the finished members)
LIVE_DISTILL = "ensemble_distill_live"  # the EnsembleDistillRun in progress
METHOD_LABELS = {"arithmetic": "arithmetic mean of probabilities", "geometric": "geometric mean (renormalized)"}

ds = state.dataset()
entry: dict = st.session_state.setdefault(RESULTS, {}).setdefault((ds.name, ds.seed), {})


def same_split(other) -> bool:
    return other is ds or (other.name, other.seed) == (ds.name, ds.seed)


def keep_ensemble(ens: Ensemble) -> None:
    entry["ensemble"] = ens
    entry.pop("distill", None)   # a student belongs to the ensemble that taught it
    state.register(ModelRecord(
        f"ensemble of {ens.n_members} ({ens.method}, seed {ds.seed})", "ensemble", ens.module(), ens.metrics,
        f"{ens.describe()}; members: " + "; ".join(describe_member(m.spec) for m in ens.members),
        ds.name, ds.seed, extra={"members": [m.spec.to_dict() for m in ens.members], "method": ens.method}))


def keep_distilled(res: EnsembleDistillResult) -> None:
    entry["distill"] = res
    r, kd = res.result, res.result.kd
    recipe = f"{r.student_config.describe()}, {r.train_config.epochs} epochs, {100 * kd.labelled_fraction:g} % labels"
    for name, model, metrics, how in [
        (f"distilled from ensemble {r.student_config.describe()} (seed {r.seed})", r.distilled,
         r.distilled_metrics, f"distilled from the {res.ensemble_name} at T={kd.temperature:g}, α={kd.alpha:g}"),
        (f"distilled from one member {r.student_config.describe()} (seed {r.seed})", res.single,
         res.single_metrics, f"distilled from {res.single_member} at T={kd.temperature:g}, α={kd.alpha:g}"),
    ]:
        state.register(ModelRecord(name, "distilled", model, metrics, f"{how}; {recipe}", ds.name, ds.seed,
                                   extra={"kd": kd.to_dict(), "student": r.student_config.to_dict()}))


# Work that a Stop (or any other widget) interrupted: keep what was finished.
build = st.session_state.pop(LIVE_BUILD, None)
if build is not None and same_split(build.dataset):
    ens = build.ensemble()
    if ens is not None:
        keep_ensemble(ens)
        st.warning(f"Ensemble training stopped: {ens.n_members} of {ens.planned} members were finished and "
                   "are combined below (a member stopped mid-training is not kept).")
    else:
        st.warning("Ensemble training stopped before the first member finished; nothing was kept.")
run = st.session_state.pop(LIVE_DISTILL, None)
if run is not None and same_split(run.dataset):
    keep_distilled(run.result())
    st.warning(f"Distillation stopped after epoch {run.epoch} of {run.train.epochs}; the students below are "
               "as they were then.")

st.title("Ensembles")
st.markdown(
    "Hinton et al. (2015) start from an **ensemble**: several models trained separately (here: the current "
    "teacher's architecture with different seeds, optionally different widths), whose predictions are "
    "averaged. An ensemble is usually more accurate than its members but N times as costly; distilling it "
    "into **one** small student keeps much of its accuracy at a fraction of the cost.")

base = state.teacher_spec(ds)

col_e, col_s = st.columns(2, gap="large")
with col_e:
    st.subheader("1 · Ensemble")
    with st.form(f"ens_form_{ds.name}"):
        c1, c2 = st.columns(2)
        n_members = c1.number_input("Members", 1, 10, 3, key="ens_members",
                                    help="Separately trained models; member k has seed (teacher seed + k − 1).")
        epochs = c2.number_input("Epochs per member", 1, 300, base.train.epochs, key="ens_epochs",
                                 help="With the teacher's epochs and no widths below, member 1 is the current "
                                      "teacher (already cached when trained).")
        method = st.radio("Combination", METHODS, format_func=METHOD_LABELS.get, horizontal=True,
                          key="ens_method",
                          help="Arithmetic: mean of the members' probabilities. Geometric: mean of their "
                               "log-probabilities, renormalized. Soft targets at T combine the members' "
                               "distributions softened at T.")
        widths_text = st.text_input("Member widths (optional)", "", key="ens_widths",
                                    placeholder=f"e.g. 512, 256, 128 (blank: all {base.model.describe()})",
                                    help="Hidden width of each member, cycled; the depth stays the teacher's.")
        train_pressed = st.form_submit_button("Train ensemble", icon=":material/groups:")
    ensemble_status = st.empty()

with col_s:
    st.subheader("2 · One student from the ensemble")
    with st.form(f"ens_student_form_{ds.name}"):
        settings = student_ui.show(ds, key="ens_student")
        distill_pressed = st.form_submit_button("Distill from the ensemble", type="primary",
                                                icon=":material/science:")
    st.caption("Three students start from the same initialization and batches: one distilled from the "
               "ensemble, one distilled from member 1 alone, one trained on the labels alone.")

# ---- settings -> member specs (bad input: a clear message, no traceback) ----
try:
    widths = [int(w) for w in widths_text.replace(";", ",").split(",") if w.strip()] or None
    base_run = replace(base, train=TrainConfig(**{**base.train.to_dict(), "epochs": int(epochs)}))
    specs = member_specs(base_run, int(n_members), widths)
except ValueError as err:
    st.error(f"These ensemble settings cannot be used: {err}. Widths are positive integers separated by commas.")
    st.stop()

ensemble: Ensemble | None = entry.get("ensemble")
wanted = ([s.key for s in specs], method)
matches = ensemble is not None and ensemble.complete and ([m.key for m in ensemble.members], ensemble.method) == wanted

if train_pressed or (distill_pressed and not matches):
    build = EnsembleBuild(ds, specs, method, state.teacher_cache())
    with col_e:
        live = LiveProgress(f"Training {len(specs)} members…", key="ens_build", keep=(LIVE_BUILD, build))
        curves: dict[str, list[dict]] = {}
        while not build.done:
            k = len(build.members)
            logs: list[dict] = []

            def on_epoch(log, k=k, logs=logs):
                logs.append(vars(log).copy())
                curves[f"member {k + 1}"] = logs
                live.update((k + log.epoch / log.epochs) / len(specs),
                            f"Member {k + 1}/{len(specs)}: epoch {log.epoch}/{log.epochs} · validation accuracy "
                            f"{100 * log.val_acc:.1f} %",
                            figures.training_curves(curves, "val_acc", "Members: validation accuracy"))

            member = build.step([on_epoch])
            if member.from_cache:
                curves[f"member {k + 1}"] = member.history
            live.update(len(build.members) / len(specs), f"Member {k + 1}/{len(specs)} ready"
                        + (" (from the cache)" if member.from_cache else ""))
        live.clear()
    ensemble = build.ensemble()
    keep_ensemble(ensemble)

if ensemble is not None:
    ensemble_status.success(
        f"**{ensemble.describe()}**: {100 * ensemble.metrics['accuracy']:.1f} % test accuracy, "
        f"{ensemble.metrics['params']:,} parameters in all ({format_bytes(ensemble.metrics['bytes'])})")
else:
    ensemble_status.info("No ensemble yet: **Train ensemble**, or press **Distill from the ensemble** and it is "
                         "trained first.")

if distill_pressed:
    student, train_cfg, kd = settings.configs()
    run = EnsembleDistillRun(ds, ensemble, student, train_cfg, kd, seed=ds.seed)
    with col_s:
        live = LiveProgress(f"Distilling the ensemble into {student.describe()}…", key="ens_distill",
                            keep=(LIVE_DISTILL, run))
        while not run.done:
            log_d, log_s, log_1 = run.step()
            live.update(run.epoch / train_cfg.epochs,
                        f"Epoch {run.epoch}/{train_cfg.epochs} · validation accuracy: from the ensemble "
                        f"{100 * log_d.val_acc:.1f} %, from one member {100 * log_1.val_acc:.1f} %, scratch "
                        f"{100 * log_s.val_acc:.1f} %",
                        figures.training_curves(run.curves(), "val_acc", "Students: validation accuracy, live"))
        live.clear()
    keep_distilled(run.result())

st.divider()
if ensemble is None:
    st.info("Press **Train ensemble** to train the members. On *digits* with the defaults each member takes a "
            "few seconds (members already trained come from the cache).")
    st.stop()

# ---- results: everything below reads stored results; nothing here trains ----
st.subheader("3 · Results")
member_acc = [m.metrics["accuracy"] for m in ensemble.members]
best, mean = max(member_acc), sum(member_acc) / len(member_acc)
ens_acc = ensemble.metrics["accuracy"]
gap = 100 * (ens_acc - best)
if ensemble.n_members == 1:
    st.info("An ensemble of one member is that member: add members to see what averaging does.")
elif gap >= 0.05:
    st.success(f"The ensemble ({100 * ens_acc:.1f} %) beats its best member ({100 * best:.1f} %) by "
               f"{gap:.1f} points (members' mean {100 * mean:.1f} %).")
elif gap > -0.05:
    st.info(f"The ensemble ({100 * ens_acc:.1f} %) is as accurate as its best member; the members' mean is "
            f"{100 * mean:.1f} %. On a small test set a point is a handful of examples.")
else:
    st.warning(f"Here the ensemble ({100 * ens_acc:.1f} %) is {-gap:.1f} points below its best member "
               f"({100 * best:.1f} %; members' mean {100 * mean:.1f} %): averaging did not help on this split.")

rows = [{"model": f"member {k + 1}", "role": "member", "recipe": describe_member(m.spec), **m.metrics}
        for k, m in enumerate(ensemble.members)]
for other in METHODS:
    acc = ensemble.combined_accuracy(other, ds.y_test)
    rows.append({"model": f"ensemble ({other})", "role": "ensemble" if other == ensemble.method else "other",
                 "recipe": METHOD_LABELS[other] + (" · the teacher below" if other == ensemble.method else ""),
                 "accuracy": acc, "params": ensemble.metrics["params"], "bytes": ensemble.metrics["bytes"]})
res: EnsembleDistillResult | None = entry.get("distill")
if res is not None:
    for r in res.rows():
        rows.append({**r, "recipe": f"{res.result.student_config.describe()}"})

table = pd.DataFrame([{"model": r["model"], "how": r["recipe"], "test accuracy (%)": 100 * r["accuracy"],
                       "agreement with the ensemble (%)": 100 * r["agreement"] if "agreement" in r else None,
                       "parameters": r["params"], "size": format_bytes(r["bytes"])} for r in rows])
st.dataframe(table, hide_index=True, column_config={
    "test accuracy (%)": st.column_config.NumberColumn(format="%.2f"),
    "agreement with the ensemble (%)": st.column_config.NumberColumn(format="%.2f"),
})
st.plotly_chart(ensemble_bars(rows), width="stretch")

if res is None:
    st.info("Press **Distill from the ensemble** to compress it into one student.")
    st.stop()

summary = res.summary()
if res.stopped_early:
    summary += " (stopped early)"
gain_vs_single = 100 * (res.result.distilled_metrics["accuracy"] - res.single_metrics["accuracy"])
(st.success if gain_vs_single >= 0.5 else st.warning if gain_vs_single <= -0.5 else st.info)(summary)
kd = res.result.kd
st.caption(f"Student {res.result.student_config.describe()} · T = {kd.temperature:g}, α = {kd.alpha:g} · "
           f"{res.result.n_labelled} labelled examples ({100 * kd.labelled_fraction:g} %) · seed {res.result.seed}. "
           "One run: differences of a point can be noise; docs/results.md gives means over seeds.")
metric = st.radio("Curve", ["val_acc", "train_loss", "val_loss"], horizontal=True, key="ens_curve",
                  format_func={"val_acc": "validation accuracy", "train_loss": "training loss",
                               "val_loss": "validation loss"}.get)
st.plotly_chart(figures.training_curves(
    {"from ensemble": res.result.distilled_history.to_records(), "from one member": res.single_history.to_records(),
     "scratch": res.result.scratch_history.to_records()}, metric), width="stretch")
