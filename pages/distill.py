"""Distill: a teacher, then a student with soft targets and its twin on labels alone."""

import pandas as pd
import streamlit as st

from kdcore import viz
from kdcore.distill import DistillResult
from kdcore.models import ModelConfig, format_bytes
from kdcore.presets import DARK_KNOWLEDGE
from kdcore.runkinds import distill_config
from kdcore.runs import RunSpec
from kdcore.presets import default_teacher_spec
from kdcore.models import is_imported
from kdcore.teachers import TeacherSpec
from kdcore.text import plural
from kdcore.train import TrainConfig
from ui import present
from ui import frame
from ui import runs, state
from ui import student as student_ui
from ui import teacher as teacher_ui
from ui.fmt import delta

SLOT = runs.DISTILL_SLOT             # the page's current distillation run, per dataset and seed

ds = state.dataset()


teacher_ui.warn_if_stopped(ds)

st.title("Distill")
st.markdown("Train a big **teacher**, then a small **student** on the teacher's softened outputs "
            "and, from the very same initialization and batches, the same student on the labels "
            "alone. The difference between the two students is what distillation buys.")

spec_now = state.teacher_spec(ds)
spec_default = default_teacher_spec(ds.name, ds.seed)   # the widgets' defaults: a link leaves them out
WIDTHS_T = [32, 64, 128, 256, 512, 800, 1024, 1200]

col_t, col_s = st.columns(2, gap="large")
with col_t:
    st.subheader("1 · Teacher")
imported = is_imported(spec_now)
if imported:   # a scikit-learn ensemble or uploaded outputs, chosen on the Your data page
    with col_t:
        st.markdown(f"**{spec_now.model.describe()}**, chosen on the **Your data** page: the students learn "
                    "from its class probabilities (log-probabilities as logits).")
        if st.button("Use a network teacher instead", key=f"t_network_{ds.name}"):
            state.set_teacher_spec(default_teacher_spec(ds.name, ds.seed))
            st.rerun()
    spec, train_teacher_pressed = spec_now, False
else:
    with col_t:
        with st.form(f"teacher_form_{ds.name}"):
            m, tr = spec_default.model, spec_default.train
            c1, c2 = st.columns(2)
            t_width = c1.select_slider("Hidden width", WIDTHS_T, value=m.hidden[0] if m.hidden[0] in WIDTHS_T else 512,
                                       help="Units in each hidden layer.", key="distill_t_width",
                                       bind="query-params")
            t_depth = c2.slider("Hidden layers", 1, 3, len(m.hidden), key="distill_t_depth", bind="query-params")
            t_dropout = c1.slider("Dropout", 0.0, 0.7, float(m.dropout), 0.05,
                                  help="A regularized teacher gives better soft targets.", key="distill_t_dropout",
                                  bind="query-params")
            t_epochs = c2.number_input("Epochs", 1, 300, tr.epochs, key="distill_t_epochs", bind="query-params")
            t_arch = "mlp"
            if ds.is_image:
                t_arch = c1.radio("Architecture", ["mlp", "cnn"], index=["mlp", "cnn"].index(m.arch), horizontal=True,
                                  format_func={"mlp": "MLP", "cnn": "small CNN"}.get, key="distill_t_arch",
                                  bind="query-params",
                                  help="The CNN has two conv3×3 → ReLU → max-pool blocks (16 and 32 channels) "
                                       "before the dense layers.")
            else:
                c1.caption("MLP teacher: the small CNN needs images, and these inputs are a vector.")
            train_teacher_pressed = st.form_submit_button("Train teacher", icon=":material/model_training:")
        spec = TeacherSpec(ds.name, ds.seed,
                           ModelConfig(arch=t_arch, hidden=(t_width,) * t_depth, dropout=t_dropout,
                                       input_dropout=m.input_dropout if t_arch == "mlp" else 0.0),
                           TrainConfig(**{**tr.to_dict(), "epochs": int(t_epochs)}), seed=ds.seed)
with col_t:
    teacher_status = st.empty()

with col_s:
    st.subheader("2 · Student")
    with st.form(f"student_form_{ds.name}"):
        settings = student_ui.show(ds, key="distill", depth=True, width_label="Hidden width")
        distill_pressed = st.form_submit_button("Distill", type="primary", icon=":material/science:")


if train_teacher_pressed:
    teacher_ui.train(spec)
if distill_pressed:   # the teacher is trained first when it is missing (the runner sees to it)
    student, train_cfg, kd = settings.configs()
    runs.submit(RunSpec("distill", distill_config(spec, student, train_cfg, kd, ds.seed)), slot=SLOT)

teacher = state.teacher_cache().get(spec, ds)
if teacher is not None:
    state.set_teacher_spec(spec)
    teacher_ui.register(teacher, ds)
    teacher_status.success(
        f"**{teacher_ui.teacher_name(teacher)}**: {100 * teacher.metrics['accuracy']:.1f} % test accuracy, "
        f"{teacher.metrics['params']:,} parameters ({format_bytes(teacher.metrics['bytes'])})"
        + (" · loaded from the cache" if teacher.from_cache else ""))
st.divider()
run_id = runs.current(SLOT, "distill", ds.name, ds.seed)
v = runs.view(run_id)
if teacher is None:
    with teacher_status.container():
        if v is not None and v.active and v.waiting_for:   # its progress shows in the students' box below
            st.info("The teacher trains first (its progress is shown below, with the students'); "
                    "it is listed here once it is done.")
        elif not teacher_ui.watch_training(spec, key="distill"):
            st.info("No teacher with these settings yet: **Train teacher**, or press **Distill** "
                    "and it is trained first.")
result: DistillResult | None = runs.watched_result(run_id, "distill", "Distilling", "distillation",
                                                   "Validation accuracy of the students, live")

if result is None:
    st.info("Press **Distill** to train the students (distilled, labels only, and the hard-label control). On *digits* at the default settings it "
            "takes a few seconds.")
    frame.stop()

# ---- results: everything below reads stored results; nothing here trains ----
def figure(view: tuple, build):
    return state.cached_view("distill", run_id, view, build)


runs.register_distill_models(ds, run_id, result)
st.subheader("3 · Results")
gain_pts = 100 * result.gain
summary = result.summary()
epochs = result.epochs_run
uneven = len(set(epochs.values())) > 1   # a Stop found the students (trained side by side) at different epochs
if result.stopped_early:
    total = result.train_config.epochs
    if not uneven:
        st.warning(f"Distillation stopped after epoch {epochs['distilled']} of {total}; the results below are "
                   f"those of the students as they were then.")
    else:
        names = {"distilled": "the distilled student", "scratch": "its labels-only twin",
                 "hard": "the hard-label control"}
        st.warning("Distillation stopped before its last epoch: " + ", ".join(
            f"{names[role]} after epoch {n}" for role, n in epochs.items()) + f" of {total}. Students "
            "stopped at different epochs do not compare fairly: the results below are those of the students "
            "as they were then; press **Distill** again for the full comparison.")
    summary += f" (stopped after {min(epochs.values())}–{max(epochs.values())} of {plural(total, 'epoch')})" \
        if uneven else f" (stopped after {epochs['distilled']} of {plural(total, 'epoch')})"
    if result.hard is None:
        st.caption("The hard-label control was still waiting for a worker when the run stopped: it is left out.")
labels_only_run = result.kd.alpha == 0   # no weight on the soft targets: not a distillation
# students stopped at different epochs: the summary gets no verdict in colour
(st.info if labels_only_run or uneven else st.success if gain_pts >= 0.5 else st.warning if gain_pts <= -0.5
 else st.info)(summary)
kd = result.kd
st.caption(f"Student {result.student_config.describe()} · T = {kd.temperature:g}, α = {kd.alpha:g} · "
           f"{result.n_labelled} labelled training examples ({100 * kd.labelled_fraction:g} %) · "
           f"{plural(result.train_config.epochs, 'epoch')} · seed {result.seed}. One run: differences of a point "
           f"or two can be noise; docs/results.md gives the 5-seed means.")

tm, dm, sm, hm = result.teacher_metrics, result.distilled_metrics, result.scratch_metrics, result.hard_metrics
c1, c2, c3, c4 = st.columns(4)
c1.metric("Teacher", f"{100 * tm['accuracy']:.1f} %", help="test accuracy")
c1.caption(f"{tm['params']:,} parameters · {format_bytes(tm['bytes'])}")
c2.metric("Student at α = 0 (labels only)" if labels_only_run else "Distilled student", f"{100 * dm['accuracy']:.1f} %",
          **delta(gain_pts, "vs scratch"))
c2.caption(f"{dm['params']:,} parameters · {format_bytes(dm['bytes'])} · "
           f"agrees with the teacher on {100 * dm['agreement']:.1f} %")
c3.metric("Scratch student", f"{100 * sm['accuracy']:.1f} %", help="same student, labels only")
c3.caption(f"{sm['params']:,} parameters · {format_bytes(sm['bytes'])} · "
           f"agrees with the teacher on {100 * sm['agreement']:.1f} %")
if hm is not None:   # runs stored before the control existed have none
    c4.metric("Teacher's hard labels", f"{100 * hm['accuracy']:.1f} %",
              **delta(100 * result.gain_from_teacher_labels, "vs scratch"),
              help="The control: the same student, initialization and batches, trained with cross-entropy "
                   "on the teacher's argmax over the whole transfer set. Distilled minus this one is what "
                   "the soft targets add beyond the teacher's labels.")
    c4.caption(f"same student · agrees with the teacher on {100 * hm['agreement']:.1f} % · soft targets add "
               f"{100 * result.gain_from_soft_targets:+.1f} pts beyond it")
    if result.gain_from_soft_targets < 0.005 and ds.name == DARK_KNOWLEDGE.dataset:
        st.caption(f"Here the teacher's labels do as much as its soft targets. Where the soft targets carry what "
                   f"no label can (a class absent from the transfer set): **Transfer sets → Omitted class → "
                   f"{DARK_KNOWLEDGE.name} preset** ({DARK_KNOWLEDGE.note})")

table = pd.DataFrame([
    {"model": name, "test accuracy (%)": 100 * m["accuracy"], "test errors": m["errors"],
     # the teacher agrees with itself, at zero divergence
     "agreement with teacher (%)": 100 * m.get("agreement", 1.0),
     "KL(teacher ‖ model), nats": m.get("kl_teacher", 0.0), "parameters": m["params"], "size": format_bytes(m["bytes"])}
    for name, m in [("teacher", tm), ("distilled", dm), ("scratch", sm), ("teacher's hard labels", hm)]
    if m is not None
])
st.dataframe(table, hide_index=True, placeholder="—", column_config={
    "test accuracy (%)": st.column_config.NumberColumn(format="%.2f"),
    "agreement with teacher (%)": st.column_config.NumberColumn(format="%.2f"),
    "KL(teacher ‖ model), nats": st.column_config.NumberColumn(format="%.4f"),
})

# every distillation of this dataset in the workspace, side by side (a new run does not replace the last)
others = [r for r in runs.store().workspace_runs(state.workspace(), "distill", ds.name, ds.seed)
          if r.status in ("finished", "stopped") and r.summary]
if len(others) > 1:
    st.markdown(f"**Your distillations on {ds.name}** (newest first; the one shown above is marked):")
    st.dataframe(pd.DataFrame([{
        "shown": "▶" if r.id == run_id else "",
        "student": ModelConfig.from_dict(r.config["student"]).describe(),
        "labels (%)": 100 * r.config["kd"]["labelled_fraction"], "T": r.config["kd"]["temperature"],
        "α": r.config["kd"]["alpha"], "epochs": r.summary.get("epochs"),
        "distilled (%)": 100 * r.summary["accuracy"], "labels only (%)": 100 * r.summary["scratch_accuracy"],
        "teacher's hard labels (%)": (100 * r.summary["hard_labels_accuracy"]
                                      if r.summary.get("hard_labels_accuracy") is not None else None),
        "gain (points)": r.summary["gain_pts"]} for r in others]), hide_index=True, column_config={
        c: st.column_config.NumberColumn(format="%.1f") for c in
        ("distilled (%)", "labels only (%)", "teacher's hard labels (%)", "gain (points)")})
    st.caption("Every pair's students are listed among this session's models (Trade-offs, Prune, Temperature).")

left, right = st.columns(2, gap="large")
with left:
    metric = st.radio("Curve", ["val_acc", "train_loss", "val_loss"], horizontal=True, key="distill_curve", bind="query-params",
                      format_func={"val_acc": "validation accuracy", "train_loss": "training loss",
                                   "val_loss": "validation loss"}.get)
    curves = {"distilled": result.distilled_history.to_records(), "scratch": result.scratch_history.to_records()}
    if result.hard_history is not None:
        curves["hard labels"] = result.hard_history.to_records()
    present.chart(figure(("curves", metric), lambda: viz.common.training_curves(curves, metric)), width="stretch")
    st.caption("The distilled student's training loss includes the T²-scaled soft term, so it is "
               "not on the same scale as the others' cross-entropy; compare validation curves.")
with right:
    which = st.radio("Confusion matrix of", [k for k in ("distilled", "scratch", "hard", "teacher")
                                              if k in result.confusion], horizontal=True, key="distill_confusion",
                     bind="query-params",
                     format_func=lambda k: "hard labels" if k == "hard" else k)
    normalize = st.toggle("Row percentages", key="distill_cm_norm", bind="query-params")
    present.chart(figure(("confusion", which, normalize), lambda: viz.common.confusion_heatmap(
        result.confusion[which], ds.class_names, f"Confusion matrix: {which} (test set)", normalize)),
        width="stretch")

if ds.input_shape == (2,):   # 2-D data: where each model draws its class boundaries
    # uploaded outputs exist only for the dataset's rows, not for the plane's grid
    panels = {"teacher": teacher.model} if teacher is not None and getattr(spec.model, "arch", "") != "logits" else {}
    panels |= {"distilled": result.distilled, "scratch": result.scratch}
    present.chart(figure(("regions", tuple(panels)), lambda: viz.common.decision_boundary(
        panels, ds.X_test, ds.y_test, ds.class_names,
        title="Decision regions on the plane (test points on top)")), width="stretch")
