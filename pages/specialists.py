"""Specialists: a generalist plus specialists for clusters of easily confused classes (Hinton et al. 2015, §5)."""

import pandas as pd
import streamlit as st

from kdcore import viz
from kdcore.runkinds_paper import specialists_config
from kdcore.jobs import UNSTARTED
from kdcore.runs import RunSpec
from kdcore.specialists import SpecialistConfig, SpecialistResult, describe_gain
from kdcore.models import is_imported
from ui import present
from ui import frame
from ui import runs, state
from ui import teacher as teacher_ui
from ui.fmt import delta

SLOT = "specialists"               # the page's current specialists run, per dataset and seed
COMBINE_LABELS = {"kl": "paper: minimize KL to generalist + specialists",
                  "approx": "approximation: specialist's distribution inside its cluster"}

ds = state.dataset()

st.title("Specialists")
st.markdown(
    "Hinton et al. (2015, section 5) add **specialists** to a generalist: each specialist is trained on a "
    "cluster of classes that the generalist confuses, all other classes merged into one *dustbin* class. "
    "The clusters come from the **covariance of the generalist's predicted probabilities**: classes that are "
    "predicted together covary. At test time, the specialists whose cluster contains the generalist's top "
    "class join in, and the final distribution agrees best with the generalist and those specialists.")

if ds.n_classes < 3:
    st.warning(f"*{ds.name}* has {ds.n_classes} classes: specialists need at least 3 (a cluster of several "
               "classes plus a dustbin). Pick *digits*, *spirals* or MNIST in the sidebar.")
    frame.stop()

generalist = teacher_ui.require(ds, key="specialists")
st.caption(f"Generalist: the current teacher, **{teacher_ui.teacher_name(generalist)}**, "
           f"{100 * generalist.metrics['accuracy']:.1f} % test accuracy (change it on the Distill page).")

imported = is_imported(generalist.spec)
if imported:
    st.caption("The generalist is not a network, so the specialists are networks of the lab's default teacher "
               "shape, trained from a fresh initialization (not from the generalist's weights).")
max_clusters = ds.n_classes - 1
with st.form(f"spec_form_{ds.name}"):
    c1, c2, c3 = st.columns(3)
    n_clusters = c1.number_input("Clusters (K of K-means)", 1, max_clusters, min(4, max_clusters),
                                 key="spec_clusters", bind="query-params",
                                 help="Clusters of one class get no specialist; a specialist needs ≥ 2 classes.")
    split = c1.radio("Covariance measured on", ["train", "val"], horizontal=True, key="spec_split", bind="query-params",
                     help="The paper uses the training set.")
    temperature = c2.slider("Temperature of the predictions", 1.0, 10.0, 1.0, 0.5, key="spec_T", bind="query-params",
                            help="Softer predictions reveal more of the similarity between classes.")
    init = c2.radio("Specialists start from", ["scratch"] if imported else ["generalist", "scratch"],
                    horizontal=True, key="spec_init", bind="query-params",
                    format_func={"generalist": "the generalist's weights (paper)",
                                 "scratch": "a fresh initialization"}.get)
    epochs = c3.number_input("Epochs per specialist", 1, 200, 10, key="spec_epochs", bind="query-params")
    lr = c3.select_slider("Learning rate", [3e-4, 1e-3, 3e-3, 1e-2], value=1e-3, key="spec_lr", bind="query-params",
                          format_func=lambda v: f"{v:g}")
    pressed = st.form_submit_button("Train specialists", type="primary", icon=":material/category:")

if pressed:
    try:
        cfg = SpecialistConfig(n_clusters=int(n_clusters), temperature=float(temperature), split=split, init=init,
                               epochs=int(epochs), lr=float(lr), seed=ds.seed)
    except ValueError as err:
        st.error(f"These settings cannot be used: {err}")
        frame.stop()
    runs.submit(RunSpec("specialists", specialists_config(generalist.spec, cfg)), slot=SLOT)

st.divider()
run_id = runs.current(SLOT, "specialists", ds.name, ds.seed)
result: SpecialistResult | None = runs.watched_result(run_id, "spec_train", "Training specialists",
                                                      "specialists' training", "Specialists: validation accuracy, live")
v = runs.view(run_id)
if result is None:
    if v is not None and v.status == "stopped" and v.error != UNSTARTED:   # (explain_end said that one)
        st.warning("Training was stopped before the first specialist finished; nothing was kept.")
    st.info("Press **Train specialists**. On *digits* with the defaults it takes a few seconds per specialist.")
    frame.stop()
if v.status == "stopped":
    if result.specialists:
        st.warning(f"Training stopped: {len(result.specialists)} of {result.planned} specialists were finished "
                   "and are used below (the one in training when stopped is left out).")
    else:
        st.warning("Training stopped before the first specialist finished; nothing was kept.")
elif not result.planned:
    st.warning("K-means put every class in a cluster of its own (or all in one): no cluster of 2 or more "
               "classes needs a specialist. Try fewer clusters.")

# ---- results: everything below reads stored results; the combination is recomputed cheaply, nothing trains ----
names = ds.class_names
left, right = st.columns([1, 1], gap="large")
with left:
    hide_diag = st.toggle("Hide the diagonal (each class's own variance)", value=True, key="spec_hide_diag", bind="query-params")
    present.chart(viz.specialists.covariance_heatmap(result.covariance, result.clusters, names, hide_diag), width="stretch")
    st.caption(f"K-means (K = {result.config.n_clusters}) on the covariance's columns, diagonal set to 0, "
               f"measured on the {result.config.split} split at T = {result.config.temperature:g}. "
               "Red: classes predicted together more than chance; boxes: the clusters.")
with right:
    st.markdown("**Clusters**")
    by_cluster = {tuple(s.cluster): s for s in result.specialists}
    for i, cl in enumerate(result.clusters, 1):
        label = ", ".join(names[c] for c in cl)
        sp = by_cluster.get(tuple(cl))
        if sp is not None:
            st.markdown(f"{i}. **{label}**: specialist trained on {sp.n_train} examples; picks the right class "
                        f"among its own on {100 * sp.in_cluster_accuracy(ds.y_test):.1f} % of their test examples")
        elif len(cl) < 2:
            st.markdown(f"{i}. {label}: a class of its own, no specialist")
        else:
            st.markdown(f"{i}. {label}: no specialist (not trained)")
    c1, c2 = st.columns(2)
    method = c1.radio("Combination", list(COMBINE_LABELS), format_func=COMBINE_LABELS.get, key="spec_combine", bind="query-params")
    top_n = c2.number_input("Generalist's top classes that call specialists (paper: 1)", 1, 3, 1, key="spec_topn", bind="query-params")

if not result.specialists:
    st.warning("No specialist was trained, so the generalist's predictions are unchanged.")
    frame.stop()

report = result.report(method, int(top_n))
net = report["fixed"] - report["broken"]
(st.success if net > 0 else st.warning if net < 0 else st.info)(describe_gain(report))
if net <= 0:
    st.info("Specialists do not help here. The paper's gains came from JFT (15 000 classes, 100 million "
            "images), where the generalist is far from perfect on its confusable clusters; on a small dataset "
            f"the generalist already gets {100 * report['generalist']:.1f} % and leaves a specialist a handful of "
            "errors to fix, while a specialist trained on fewer examples can also add errors.")
c1, c2, c3 = st.columns(3)
c1.metric("Generalist", f"{100 * report['generalist']:.1f} %", help="test accuracy")
c2.metric("Generalist + specialists", f"{100 * report['combined']:.1f} %",
          **delta(100 * (report['combined'] - report['generalist'])))
c3.metric("On the classes with a specialist", f"{100 * report['combined_covered']:.1f} %",
          **delta(100 * (report['combined_covered'] - report['generalist_covered'])),
          help=f"{report['n_covered']} test examples")

show_all = st.toggle("Show every class", value=False, key="spec_all_classes", bind="query-params")
rows = [r for r in report["per_class"] if show_all or r["covered"]]
present.chart(viz.specialists.per_class_bars(rows, "Per-class test accuracy" + ("" if show_all else
                                                                   ": classes with a specialist")), width="stretch")
st.dataframe(pd.DataFrame([{"class": r["class"], "specialist": "yes" if r["covered"] else "no",
                            "test examples": r["n"], "generalist (%)": 100 * r["generalist"],
                            "combined (%)": 100 * r["combined"]} for r in rows]),
             hide_index=True, column_config={"generalist (%)": st.column_config.NumberColumn(format="%.1f"),
                                             "combined (%)": st.column_config.NumberColumn(format="%.1f")})
st.caption("One run on one split: on digits a class has ~36 test examples, so one example is ~3 points of "
           "that class's accuracy. docs/results.md gives means over seeds.")
