"""Ensembles: N teachers from different seeds, combined by a mean, then compressed into one student.

The members train as an "ensemble" run and the student as an "ensemble_distill" run
(`kdcore.runkinds_ensemble`) in the job runner: the page submits them, watches them live and
draws their stored results, which outlive navigation, reloads and restarts.
"""

from dataclasses import replace

import pandas as pd
import streamlit as st

from kdcore import viz
from kdcore.ensemble import (METHOD_LABELS, METHODS, Ensemble, EnsembleDistillResult, comparison_rows,
                             member_specs)
from kdcore.inputs import MAX_WIDTH, parse_values
from kdcore.models import format_bytes
from kdcore.presets import default_teacher_spec
from kdcore import records
from kdcore.runkinds_ensemble import ensemble_config, ensemble_distill_config
from kdcore.runs import RunSpec
from kdcore.models import is_imported
from kdcore.train import TrainConfig
from kdcore.jobs import UNSTARTED
from ui import present
from ui import frame
from ui import runs, state
from ui import student as student_ui

BUILD_SLOT = "ensemble"                 # the page's current members' run, per dataset and seed
DISTILL_SLOT = "ensemble_distill"       # the page's current ensemble -> student run


ds = state.dataset()


st.title("Ensembles")
st.markdown(
    "Hinton et al. (2015) start from an **ensemble**: several models trained separately (here: the current "
    "teacher's architecture with different seeds, optionally different widths), whose predictions are "
    "averaged. An ensemble is usually more accurate than its members but N times as costly; distilling it "
    "into **one** small student keeps much of its accuracy at a fraction of the cost.")

base = state.teacher_spec(ds)
if is_imported(base):   # a forest, boosting or uploaded outputs: members are the lab's network teacher
    st.info(f"The current teacher is **{base.model.describe()}**, not a network: the members here are the lab's "
            "default network teacher for this dataset, with different seeds.")
    base = default_teacher_spec(ds.name, ds.seed)

col_e, col_s = st.columns(2, gap="large")
with col_e:
    st.subheader("1 · Ensemble")
    with st.form(f"ens_form_{ds.name}"):
        c1, c2 = st.columns(2)
        n_members = c1.number_input("Members", 1, 10, 3, key="ens_members", bind="query-params",
                                    help="Separately trained models; member k has seed (teacher seed + k − 1).")
        epochs = c2.number_input("Epochs per member", 1, 300, base.train.epochs, key="ens_epochs", bind="query-params",
                                 help="With the teacher's epochs and no widths below, member 1 is the current "
                                      "teacher (already cached when trained).")
        method = st.radio("Combination", METHODS, format_func=METHOD_LABELS.get, horizontal=True,
                          key="ens_method", bind="query-params",
                          help="Arithmetic: mean of the members' probabilities. Geometric: mean of their "
                               "log-probabilities, renormalized. Soft targets at T combine the members' "
                               "distributions softened at T.")
        widths_text = st.text_input("Member widths (optional)", "", key="ens_widths", bind="query-params",
                                    placeholder=f"e.g. 512, 256, 128 (blank: all {base.model.describe()})",
                                    help=f"Hidden width of each member (whole numbers from 1 to {MAX_WIDTH}, separated by "
                                         "commas), cycled; the depth stays the teacher's.")
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
    widths = list(parse_values(widths_text, int, "member width", 1, MAX_WIDTH)) if widths_text.strip() else None
    base_run = replace(base, train=TrainConfig(**{**base.train.to_dict(), "epochs": int(epochs)}))
    specs = member_specs(base_run, int(n_members), widths)
except ValueError as err:
    st.error(f"These ensemble settings cannot be used: {err}.")
    frame.stop()

build_cfg = ensemble_config(specs, method)
if train_pressed:
    runs.submit(RunSpec("ensemble", build_cfg), slot=BUILD_SLOT)
if distill_pressed:   # the members are trained first when they are not (the runner sees to it)
    student, train_cfg, kd = settings.configs()
    runs.submit(RunSpec("ensemble", build_cfg), slot=BUILD_SLOT)   # the finished one, or shared
    runs.submit(RunSpec("ensemble_distill", ensemble_distill_config(build_cfg, student, train_cfg, kd, ds.seed)),
                slot=DISTILL_SLOT)

build_id = runs.current(BUILD_SLOT, "ensemble", ds.name, ds.seed)
bv = runs.view(build_id)
distill_id = runs.current(DISTILL_SLOT, "ensemble_distill", ds.name, ds.seed)
state.set_shown_run(distill_id)   # the Share box links to this run's result
dv = runs.view(distill_id)
distilling = dv is not None and dv.active
if distilling:
    with col_s:
        runs.watch(distill_id, key="ens_distill", label="Distilling the ensemble",
                   chart=lambda c: viz.common.live_curves(c, "Students: validation accuracy, live"))
if bv is not None and bv.active:
    with ensemble_status.container():
        runs.watch(build_id, key="ens_build", label="Training the members",
                   chart=lambda c: viz.common.live_curves(c, "Members: validation accuracy, live"))
    frame.stop()

ensemble: Ensemble | None = None
if bv is not None:
    runs.explain_end(bv, "ensemble training")
    ensemble = runs.result(build_id)
    if bv.status == "stopped" and bv.error != UNSTARTED:
        if ensemble is not None:
            st.warning(f"Ensemble training stopped: {ensemble.n_members} of {ensemble.planned} members were "
                       "finished and are combined below (a member stopped mid-training is not kept).")
        else:
            st.warning("Ensemble training stopped before the first member finished; nothing was kept.")

if ensemble is not None:
    state.register_once(build_id, lambda: state.register(records.ensemble_record(ensemble, ds.name, ds.seed)))
    ensemble_status.success(
        f"**{ensemble.describe()}**: {100 * ensemble.metrics['accuracy']:.1f} % test accuracy, "
        f"{ensemble.metrics['params']:,} parameters in all ({format_bytes(ensemble.metrics['bytes'])})")
else:
    ensemble_status.info("No ensemble yet: **Train ensemble**, or press **Distill from the ensemble** and it is "
                         "trained first.")

# the student shown belongs to the ensemble shown: the one that taught it
res: EnsembleDistillResult | None = None
if dv is not None and not distilling and ensemble is not None:
    if runs.store().get(distill_id).config["ensemble"] == runs.store().get(build_id).config:
        runs.explain_end(dv, "distillation")
        res = runs.result(distill_id)
if res is not None:
    state.register_once(distill_id, lambda: [state.register(r) for r in records.ensemble_student_records(
        res, ds.name, ds.seed, runs.store().get(distill_id).spec.to_dict())])
    if res.stopped_early:
        st.warning(f"Distillation stopped after epoch {res.result.distilled_history.epochs_run} of "
                   f"{res.result.train_config.epochs}; the students below are as they were then.")

st.divider()
if ensemble is None:
    st.info("Press **Train ensemble** to train the members. On *digits* with the defaults each member takes a "
            "few seconds (members already trained come from the cache).")
    frame.stop()

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

rows = comparison_rows(ensemble, ds.y_test, res)
table = pd.DataFrame([{"model": r["model"], "how": r["how"], "test accuracy (%)": 100 * r["accuracy"],
                       "agreement with the ensemble (%)": 100 * r["agreement"], "parameters": r["params"],
                       "size": format_bytes(r["bytes"])} for r in rows])
st.dataframe(table, hide_index=True, width="stretch", placeholder="—", column_config={
    "model": st.column_config.TextColumn(width="large"),
    "test accuracy (%)": st.column_config.NumberColumn(format="%.2f"),
    "agreement with the ensemble (%)": st.column_config.NumberColumn(format="%.2f"),
})
present.chart(viz.ensembles.ensemble_bars(rows), width="stretch")

if res is None:
    if not distilling:
        st.info("Press **Distill from the ensemble** to compress it into one student.")
    frame.stop()

summary = res.summary()
if res.stopped_early:
    summary += " (stopped early)"
gain_vs_single = 100 * (res.result.distilled_metrics["accuracy"] - res.single_metrics["accuracy"])
(st.success if gain_vs_single >= 0.5 else st.warning if gain_vs_single <= -0.5 else st.info)(summary)
kd = res.result.kd
st.caption(f"Student {res.result.student_config.describe()} · T = {kd.temperature:g}, α = {kd.alpha:g} · "
           f"{res.result.n_labelled} labelled examples ({100 * kd.labelled_fraction:g} %) · seed {res.result.seed}. "
           "One run: differences of a point can be noise; docs/results.md gives means over seeds.")
metric = st.radio("Curve", ["val_acc", "train_loss", "val_loss"], horizontal=True, key="ens_curve", bind="query-params",
                  format_func={"val_acc": "validation accuracy", "train_loss": "training loss",
                               "val_loss": "validation loss"}.get)
present.chart(viz.common.training_curves(
    {"from ensemble": res.result.distilled_history.to_records(), "from one member": res.single_history.to_records(),
     "scratch": res.result.scratch_history.to_records()}, metric), width="stretch")
