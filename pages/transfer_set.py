"""Transfer sets: how many labels a student needs, a class it never sees, and which loss to copy with."""

from dataclasses import replace

import pandas as pd
import streamlit as st

from kdcore import viz
from kdcore.presets import DARK_KNOWLEDGE
from kdcore import records
from kdcore.runkinds_paper import student_config
from kdcore.distill import soft_targets_verdict
from kdcore.runs import RunSpec
from kdcore.transfer import DEFAULT_FRACTIONS, LOSSES
from ui import present
from ui import runs, state
from ui import student as student_ui
from ui import teacher as teacher_ui
from kdcore.text import plural
from ui.fmt import delta

# each experiment's run kind is also its page slot (the current run per dataset and seed)
KINDS = {"fractions": "transfer_fractions", "omitted": "transfer_omitted", "losses": "transfer_losses"}

ds = state.dataset()


def apply_dark_knowledge_preset() -> None:
    """Set the omitted-class widgets to the "Dark knowledge" preset (a button's callback: before they render)."""
    p = DARK_KNOWLEDGE
    st.session_state.update({"to_cls": p.omitted, "to_width": p.width, "to_T": p.temperature, "to_alpha": p.alpha,
                             "to_epochs": p.epochs, "to_fraction": p.fraction})


def submit(what: str, config: dict) -> None:
    runs.submit(RunSpec(KINDS[what], config), slot=KINDS[what])


def shown(what: str, label: str, title: str):
    """The tab's current run: its live progress while it is queued or running (returns (None, True)),
    else its stored result, with its students registered ((result or None, False))."""
    run_id = runs.current(KINDS[what], KINDS[what], ds.name, ds.seed)
    v = runs.view(run_id)
    if v is None:
        return None, False
    if v.active:
        runs.watch(run_id, key=f"transfer_{what}", label=label,
                   chart=lambda c: viz.common.live_curves(c, f"{title}: validation accuracy, live"))
        return None, True
    runs.explain_end(v, title.lower())
    if v.status not in ("finished", "stopped"):
        return None, False
    res = runs.result(run_id)
    if v.status == "stopped":
        st.warning("This experiment was stopped before it finished; below are its students as they were then "
                   "(marked as stopped)." if res else
                   "This experiment was stopped before its first epoch ended; nothing was kept.")
    if res:
        rec = runs.store().get(run_id)
        for model_record in records.records_of(KINDS[what], res, rec.spec.to_dict(), ds.name, ds.seed):
            state.register(model_record)
    return res or None, False


st.title("Transfer sets")
st.markdown("The student learns from a **transfer set**: the inputs on which it copies the teacher. "
            "Hinton et al. (2015) showed that soft targets carry so much information that the student "
            "needs few labels, can learn a class it never saw, and that matching softened "
            "probabilities is not the same as matching raw logits. These three experiments use the "
            "current teacher (set on the Distill page).")

teacher = teacher_ui.require(ds, key="transfer")
tname = teacher_ui.teacher_name(teacher)
st.caption(f"Teacher: **{tname}**, {100 * teacher.metrics['accuracy']:.1f} % test accuracy on {ds.name}.")


tab_f, tab_o, tab_l = st.tabs(["Labelled fraction", "Omitted class", "Soft loss vs logits vs labels"])

# ---------------------------------------------------------------- labelled fraction
with tab_f:
    st.markdown("For each share of labels, a student trained on the teacher's soft targets over the **whole** "
                "transfer set (labels where it has them) and the same student trained on those labels alone. "
                "The paper: with 3 % of the data, soft targets keep nearly all the accuracy, hard targets overfit.")
    with st.form(f"fractions_form_{ds.name}"):
        settings = student_ui.show(ds, key="tf", fraction=False)
        fractions = st.multiselect("Labelled shares", student_ui.FRACTIONS, default=list(DEFAULT_FRACTIONS),
                                   format_func=lambda f: f"{100 * f:g} %", key="tf_fracs", bind="query-params")
        go_f = st.form_submit_button("Run the curve", type="primary", icon=":material/show_chart:")
    if go_f:
        if not fractions:
            st.error("Choose at least one labelled share.")
        else:
            student, train, kd = settings.configs()
            kd = replace(kd, labelled_fraction=1.0)   # the curve sets each run's share itself
            submit("fractions", student_config(teacher.spec, student, train, kd, ds.seed,
                                               fractions=sorted(float(f) for f in fractions)))
    points, live = shown("fractions", "Labelled-fraction curve", "Labelled-fraction curve")
    if live:
        pass   # its live progress is drawn above
    elif not points:
        st.info("Press **Run the curve**: one distilled and one scratch student per share.")
    else:
        present.chart(viz.transfer.fraction_figure(points), width="stretch")
        has_hard = all(p.hard is not None for p in points)
        # short headers (a data grid does not wrap them), each explained in its tooltip
        table = pd.DataFrame([{"labelled (%)": 100 * p.fraction, "labels": p.n_labelled,
                               "soft + labels (%)": 100 * p.distilled["accuracy"],
                               "labels only (%)": 100 * p.scratch["accuracy"],
                               **({"hard labels (%)": 100 * p.hard["accuracy"],
                                   "gain: labels (pts)": 100 * p.gain_from_teacher_labels,
                                   "gain: soft (pts)": 100 * p.gain_from_soft_targets}
                                  if has_hard else {}),
                               "gain (pts)": 100 * p.gain,
                               "epochs": p.epochs_run, "stopped": p.stopped} for p in points])
        helps = {"soft + labels (%)": "Test accuracy of the student on the teacher's soft targets over the whole "
                                      "transfer set, plus the labels it has.",
                 "labels only (%)": "The same student (same initialization and batches) on the labels alone.",
                 "hard labels (%)": "The same student on the teacher's argmax labels over the whole transfer set "
                                    "(the control).",
                 "gain: labels (pts)": "What the teacher's labels alone buy: hard labels − labels only.",
                 "gain: soft (pts)": "What the soft targets add beyond the teacher's labels: soft − hard labels.",
                 "gain (pts)": "Soft targets + labels − labels only."}
        st.dataframe(table, hide_index=True, placeholder="—", width="stretch", column_config={
            c: st.column_config.NumberColumn(help=helps.get(c), format="%.2f") for c in table.columns
            if c.endswith(("(%)", "(pts)")) and c != "labelled (%)"})
        low = min(points, key=lambda p: p.fraction)
        if low.gain > 0.005:
            verdict = (f"With {100 * low.fraction:g} % of the labels, soft targets give "
                       f"{100 * low.gain:.1f} points more than the labels alone")
            if low.hard is not None:
                verdict += (f": {100 * low.gain_from_teacher_labels:+.1f} of them come from the teacher's labels "
                            f"(its argmax on the whole transfer set reaches {100 * low.hard['accuracy']:.1f} %), "
                            f"{100 * low.gain_from_soft_targets:+.1f} from the soft targets beyond them"
                            + soft_targets_verdict(100 * low.gain_from_soft_targets))
            else:
                verdict += "."
            st.success(verdict)
        else:
            st.warning(f"Here soft targets did not help at {100 * low.fraction:g} % of the labels "
                       f"({100 * low.gain:+.1f} points): a weak teacher or too short a schedule gives little "
                       "to copy.")

# ---------------------------------------------------------------- omitted class
with tab_o:
    st.markdown("Every example of one class is removed from the transfer set (inputs, labels and teacher "
                "outputs). The distilled student still meets that class in the soft targets of other examples "
                "(a 5 that looks a bit like a 3); raising the bias of its output then recovers it. "
                "The scratch student, on labels alone, never had a reason to predict it.")
    if ds.name == DARK_KNOWLEDGE.dataset:
        pc1, pc2 = st.columns([1, 3], vertical_alignment="center")
        pc1.button(f"{DARK_KNOWLEDGE.name} preset", key="to_preset", icon=":material/auto_awesome:",
                   on_click=apply_dark_knowledge_preset,
                   help="Sets the widgets below to the measured setting; press Train without it to run it.")
        pc2.caption(f"**{DARK_KNOWLEDGE.name}**: {DARK_KNOWLEDGE.note} On the full transfer set the teacher's "
                    "hard labels do as well as its soft targets (docs/results.md): a class no label names is "
                    "where the soft targets carry something the labels cannot.")
    with st.form(f"omitted_form_{ds.name}"):
        cls = st.selectbox("Class to leave out", list(range(ds.n_classes)),
                           index=min(3, ds.n_classes - 1), format_func=lambda c: ds.class_names[c], key="to_cls", bind="query-params")
        settings = student_ui.show(ds, key="to")
        go_o = st.form_submit_button("Train without it", type="primary", icon=":material/visibility_off:")
    if go_o:
        student, train, kd = settings.configs()
        submit("omitted", student_config(teacher.spec, student, train, kd, ds.seed, omitted=int(cls)))
    res, live = shown("omitted", "Omitted class", "Omitted-class experiment")
    if live:
        pass   # its live progress is drawn above
    elif res is None:
        st.info("Press **Train without it**.")
    else:
        cname = res.class_name
        st.caption(f"Transfer set: {res.n_transfer} examples, none of class {cname}. "
                   f"{100 * res.distilled.kd.labelled_fraction:g} % of them labelled. "
                   f"The teacher gets {100 * res.teacher_class_accuracy:.1f} % of the test {cname}s right."
                   + (" Stopped early." if res.stopped else ""))
        mode = st.radio("Bias on the omitted class's logit", ["manual", "auto"], horizontal=True, key="to_mode", bind="query-params",
                        help="auto: the b that makes the distilled student predict the class as often as the "
                             "teacher does on the (unlabelled) validation inputs: no test labels used.")
        hi = max(15.0, round(res.auto_bias + 2))     # the figure's range; the slider's stays fixed
        if mode == "auto":
            bias = round(res.auto_bias, 2)
            st.caption(f"b = {bias:g} (automatic)")
        else:
            bias = st.slider("b (added to the logit at test time)", -5.0, 15.0, 0.0, 0.1, key="to_bias", bind="query-params")
        d0, d1 = res.evaluate_bias(0.0), res.evaluate_bias(bias)
        s1 = res.evaluate_bias(bias, "scratch")
        h1 = res.evaluate_bias(bias, "hard") if res.hard_test_logits is not None else None
        cols = st.columns(4 if h1 is not None else 3)
        cols[0].metric(f"Distilled: accuracy on {cname}", f"{100 * d1['class_accuracy']:.1f} %",
                       **delta(100 * (d1['class_accuracy'] - d0['class_accuracy']), "vs b = 0"))
        cols[1].metric("Distilled: overall accuracy", f"{100 * d1['accuracy']:.2f} %",
                       **delta(100 * (d1['accuracy'] - d0['accuracy']), "vs b = 0", 2))
        cols[2].metric(f"Labels only: on {cname} / overall",
                       f"{100 * s1['class_accuracy']:.1f} % / {100 * s1['accuracy']:.1f} %")
        if h1 is not None:
            cols[3].metric(f"Teacher's hard labels: on {cname} / overall",
                           f"{100 * h1['class_accuracy']:.1f} % / {100 * h1['accuracy']:.1f} %",
                           help="The control: the same student, initialization and batches, trained on the "
                                "teacher's argmax over this transfer set (same b).")
        gain_soft = d1["accuracy"] - (h1 if h1 is not None else s1)["accuracy"]
        (st.success if gain_soft >= 0.005 else st.info)(res.summary())
        present.chart(viz.transfer.bias_figure(res, bias, -5.0, hi), width="stretch")
        st.caption(f"Test errors at b = {bias:g}: distilled {d1['errors']} ({d1['class_errors']} on {cname}), "
                   f"labels only {s1['errors']} ({s1['class_errors']} on {cname})"
                   + (f", teacher's hard labels {h1['errors']} ({h1['class_errors']} on {cname})" if h1 else "")
                   + ". Moving the slider re-scores stored test logits; nothing is retrained.")

# ---------------------------------------------------------------- loss comparison
with tab_l:
    st.markdown("Three students from the same initialization and batches: the soft loss "
                "α·T²·KL(p_T ‖ q_T) + (1−α)·CE, logit matching α·½·mean((s−t)²) + (1−α)·CE "
                "(Caruana / Ba & Caruana; the T → ∞ limit of the soft loss), and cross-entropy on the labels "
                "alone. Logit matching ignores T.")
    with st.form(f"losses_form_{ds.name}"):
        settings = student_ui.show(ds, key="tl")
        go_l = st.form_submit_button("Compare the losses", type="primary", icon=":material/compare:")
    if go_l:
        student, train, kd = settings.configs()
        submit("losses", student_config(teacher.spec, student, train, kd, ds.seed))
    res_l, live = shown("losses", "Training three students", "Loss comparison")
    if live:
        pass   # its live progress is drawn above
    elif res_l is None:
        st.info("Press **Compare the losses**.")
    else:
        present.chart(viz.transfer.loss_bars(res_l, teacher.metrics["accuracy"]), width="stretch")
        st.dataframe(pd.DataFrame([
            {"loss": LOSSES[k], "test accuracy (%)": 100 * m["accuracy"], "test errors": m["errors"],
             "agreement with teacher (%)": 100 * m["agreement"]} for k, m in res_l.metrics.items()]),
            hide_index=True, column_config={c: st.column_config.NumberColumn(format="%.2f")
                                            for c in ["test accuracy (%)", "agreement with teacher (%)"]})
        present.chart(viz.common.training_curves({LOSSES[k]: h.to_records() for k, h in res_l.histories.items()},
                                                "val_acc", colors={LOSSES[k]: viz.transfer.LOSS_COLORS[k] for k in LOSSES}),
                        width="stretch")
        best = max(res_l.metrics, key=lambda k: res_l.metrics[k]["accuracy"])
        st.caption(f"{res_l.n_labelled} labelled examples ({100 * res_l.kd.labelled_fraction:g} %), "
                   f"T = {res_l.kd.temperature:g}, α = {res_l.kd.alpha:g}, {plural(res_l.train.epochs, 'epoch')}"
                   + (" (stopped early)" if res_l.stopped else "")
                   + f". Best here: {LOSSES[best]}. One seed: differences under a point can be noise.")
