"""Prune: Optimal Brain Damage saliencies against magnitude and random pruning, with retraining.

Every computation runs as a job (`kdcore.runkinds_compress`): the analysis ("prune_analysis":
saliencies, one-shot curves, per-layer sensitivity), the retrained curves ("prune_retrain") and
iterative pruning ("prune_iterative"), both of which require the analysis. The page submits,
watches and draws the stored results (they survive navigation, reload and a server restart).
"""

import pandas as pd
import streamlit as st

from kdcore import viz
from kdcore import pruning as P
from kdcore import runkinds_compress as rc
from kdcore.models import format_bytes, param_count
from kdcore import records
from kdcore.runs import RunSpec
from ui import present
from ui import frame
from ui import runs, state
from ui import teacher as teacher_ui

SLOT = "prune"                       # the page's current analysis run, per dataset and seed
SLOT_RETRAIN = "prune_retrain"       # its retrained curves
SLOT_ITER = "prune_iter"             # its iterative pruning
EXACT_LIMIT = rc.EXACT_LIMIT         # "exact" costs one Hessian-vector product per parameter
LEVELS = [0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98]
METHOD_LABELS = {"gauss_newton": "Gauss–Newton (fast)", "exact": "exact Hessian diagonal (small nets)",
                 "hutchinson": "Hutchinson estimate"}

ds = state.dataset()
runs.register_workspace_students(ds)   # a reload keeps the Distill page's students in the lists


def register(label: str, n_prunable: int, model, criterion: str, target: float, how: str, run_spec: dict,
             path: list) -> None:
    """List a pruned model among the session's models (once per model object: no re-evaluation)."""
    old = state.models(ds).get(records.pruned_name(label, criterion, target, how))
    if old is None or old.model is not model:
        state.register(records.pruned_record(label, n_prunable, model, criterion, target, how, run_spec, path, ds,
                                             teacher.logits["test"]))


def linked_run(slot: str, kind: str, analysis: RunSpec) -> str | None:
    """The run of `kind` on this analysis that the page shows: started here last, else the newest."""
    store, want = runs.store(), analysis.to_dict()
    ids = [state.current_run(slot, ds.name, ds.seed)]
    ids += [r.id for r in store.workspace_runs(state.workspace(), kind, ds.name, ds.seed)]
    for rid in ids:
        rec = store.get(rid) if rid else None
        if rec is not None and rec.config.get("analysis") == want:
            return rid
    return None


def ended_result(run_id: str | None, what: str):
    """(view, result) of a run: (view, None) while it runs or when it failed."""
    v = runs.view(run_id)
    if v is None or v.active:
        return v, None
    runs.explain_end(v, what)
    return v, runs.result(run_id)


st.title("Prune")
st.markdown(
    "**Optimal Brain Damage** (LeCun, Denker & Solla, 1990) deletes the weights whose removal the "
    "second-order Taylor expansion of the training loss predicts to cost least: the *saliency* "
    "s = ½·h·θ², with h the diagonal of the Hessian. **Magnitude** pruning deletes the smallest |θ|; "
    "**random** pruning is the baseline both must beat.")

teacher = teacher_ui.require(ds, key="prune")
# networks a worker can rebuild from the run that made them: the teacher, and the students of Distill,
# Ensembles, Transfer sets, Hinton MNIST and the size curve (of this session or stored in the workspace)
sources = {}
for r in sorted(state.models(ds).values(), key=lambda r: (r.role != "teacher", r.name)):
    src = rc.record_source(r)
    if r.role in records.PRUNABLE_ROLES and src is not None:
        sources[r.name] = (r, src)

if not sources and teacher_ui.not_a_network(teacher, "pruning works on a network's weights, and no student "
                                                    "of this dataset is listed yet"):
    frame.stop()

with st.form(f"prune_form_{ds.name}"):
    c1, c2, c3 = st.columns(3)
    source = c1.selectbox("Model to prune", list(sources), key="prune_source", bind="query-params",
                          help="The teacher, or any student a run made: Distill, Ensembles, Transfer sets, Hinton "
                               "MNIST, the size curve on Trade-offs (make one there to see it here). The page "
                               "always prunes a copy.")
    method = c2.selectbox("Hessian diagonal", list(METHOD_LABELS), format_func=METHOD_LABELS.get,
                          key="prune_method", bind="query-params",
                          help="Gauss–Newton: exact diagonal of Jᵀ·H_out·J (one batched backward pass per "
                               "class). Exact: the true diagonal by autograd, one Hessian-vector product per "
                               "weight. Hutchinson: a stochastic estimate, E[v ⊙ Hv].")
    probes = c3.number_input("Hutchinson probes", 1, 2000, 100, help="Only for the Hutchinson estimate.",
                             key="prune_probes", bind="query-params")
    state.clamp("prune_examples", 10, len(ds.X_train))
    n_examples = c1.number_input("Training examples for the saliencies", 10, len(ds.X_train),
                                 min(len(ds.X_train), 10_000), key="prune_examples", bind="query-params")
    scope = c2.radio("Ranking", ["global", "layer"], horizontal=True, key="prune_scope", bind="query-params",
                     format_func={"global": "global (one ranking)", "layer": "per layer (same % each)"}.get)
    levels = c3.multiselect("Sparsities for the curves", LEVELS, default=[0.5, 0.8, 0.9, 0.95],
                            format_func=lambda s: f"{100 * s:g} %", key="prune_levels", bind="query-params")
    analyse = st.form_submit_button("Compute saliencies", type="primary", icon=":material/content_cut:")

form_config = None
if source is not None:
    rec, src = sources[source]
    form_config = {**rc.analysis_config(ds, src, method, probes, n_examples, scope, levels),
                   "label": rec.name.replace(", ", " · ")}

if analyse:
    if form_config is None:
        st.error("Choose a model to prune.")
        frame.stop()
    if not levels:
        st.error("Choose at least one sparsity for the curves.")
        frame.stop()
    if method == "exact" and param_count(rec.model) > EXACT_LIMIT:
        st.error(f"The exact diagonal needs one Hessian-vector product per parameter; this model has "
                 f"{param_count(rec.model):,} (the limit here is {EXACT_LIMIT:,}). Use Gauss–Newton or Hutchinson, "
                 f"or prune a student.")
        frame.stop()
    runs.submit(RunSpec("prune_analysis", form_config), slot=SLOT)

run_id = runs.current(SLOT, "prune_analysis", ds.name, ds.seed)
state.set_shown_run(run_id)   # the Share box links to this run's result
v = runs.view(run_id)
if v is not None and v.active:
    runs.watch(run_id, key="prune", label="Computing saliencies and one-shot curves",
               chart=lambda c: viz.common.live_curves(c, "Test accuracy after one-shot pruning, live",
                                                   y_title="test accuracy (%)"))
    frame.stop()
v, a = ended_result(run_id, "pruning analysis")
if a is None or not a.scores:
    st.info("Choose a model and press **Compute saliencies**. On *digits* with Gauss–Newton it takes a "
            "second or two.")
    frame.stop()
analysis_spec = runs.store().get(run_id).spec
label = analysis_spec.config.get("label", "model")
if not a.complete:
    st.warning("The analysis was stopped before it finished; the results below are those of the points done.")
if form_config is not None and form_config != analysis_spec.config:
    st.caption("Showing the results of the last settings computed; press **Compute saliencies** for the new ones.")

# ---- everything below reads stored results; the two buttons submit runs ----
scores = a.scores
layers = list(scores["OBD"])
st.subheader(f"1 · Saliencies of the {label}")
st.caption(f"{a.n_prunable:,} prunable weights in {len(layers)} layers · Hessian diagonal: "
           f"{METHOD_LABELS[a.method]} on {len(a.idx):,} training examples · training loss "
           f"{a.base_loss:.4f} nats · test accuracy {100 * a.base_accuracy:.2f} %.")
left, right = st.columns(2, gap="large")
with left:
    shown = st.multiselect("Layers", layers, default=layers, key="prune_layers", bind="query-params")
    log_x = st.toggle("Log-scaled x axis", value=True, key="prune_logx", bind="query-params")
    which = st.radio("Histogram of", ["OBD", "magnitude"], horizontal=True, key="prune_hist_of", bind="query-params")
    if shown:   # figures built once per run and view (they walk every weight), reused by other reruns
        present.chart(state.cached_view("prune", run_id, ("hist", which, log_x, tuple(shown)),
                                          lambda: viz.pruning.saliency_histogram(
            {n: scores[which][n] for n in shown}, log_x,
            title=f"{'OBD saliency' if which == 'OBD' else 'Magnitude |θ|'} per layer",
            x_title="saliency ½·h·θ² (nats)" if which == "OBD" else "|θ|")), width="stretch")
    n_neg = sum(int((scores["OBD"][n] < 0).sum()) for n in layers)
    if n_neg:
        st.caption(f"{n_neg:,} weights have a negative exact second derivative (the loss is not convex "
                   "there): OBD predicts that deleting them lowers the loss, and deletes them first.")
with right:
    view_s = st.select_slider("Sparsity for these views", LEVELS, value=0.8, format_func=lambda s: f"{100 * s:g} %",
                              key="prune_view_sparsity", bind="query-params")
    masks = state.cached_view("prune", run_id, ("masks", view_s), lambda: {
        c: P.masks_for_sparsity(scores[c], view_s, a.scope) for c in ("OBD", "magnitude", "random")})
    present.chart(state.cached_view("prune", run_id, ("scatter", view_s, tuple(shown or layers)),
                                      lambda: viz.pruning.obd_vs_magnitude(
        {n: scores["OBD"][n] for n in shown or layers}, scores["magnitude"], masks["OBD"], masks["magnitude"])),
        width="stretch")
    agree = P.mask_agreement(masks["OBD"], masks["magnitude"])
    st.caption(f"At {100 * view_s:g} % sparsity the two criteria make the same decision on {100 * agree:.1f} % "
               "of the weights. Where they disagree, OBD keeps small weights on which the loss is steep "
               "and drops large ones on which it is flat.")
present.chart(state.cached_view("prune", run_id, ("fractions", view_s), lambda: viz.pruning.fraction_removed(
    {c: P.layer_fractions(m) for c, m in masks.items()}, view_s)), width="stretch")

st.subheader("2 · Accuracy against sparsity")
points = a.oneshot
retrain_id = linked_run(SLOT_RETRAIN, "prune_retrain", analysis_spec)
if a.complete:
    with st.form(f"prune_retrain_form_{ds.name}"):
        c1, c2, c3 = st.columns([2, 2, 3])
        epochs = c1.number_input("Retraining epochs per point", 1, 50, 3, key="prune_re_epochs", bind="query-params")
        lr = c2.select_slider("Retraining learning rate", [3e-4, 1e-3, 3e-3, 1e-2], value=1e-3,
                              format_func=lambda v: f"{v:g}", key="prune_re_lr", bind="query-params")
        c3.caption("Each point is pruned once from the original model, then fine-tuned with the pruned weights "
                   "held at exactly zero.")
        retrain_pressed = st.form_submit_button("Retrain the pruned models", icon=":material/model_training:")
    if retrain_pressed:
        retrain_id = runs.submit(RunSpec("prune_retrain", rc.retrain_config(analysis_spec, epochs, lr)),
                                 slot=SLOT_RETRAIN)
else:
    st.caption("Retraining and iterative pruning start from a finished analysis: press **Compute saliencies** "
               "again to complete it.")
rv, r = ended_result(retrain_id, "retraining")
if rv is not None and rv.active:
    runs.watch(retrain_id, key="prune_curves", label="Retraining the pruned models",
               chart=lambda c: viz.common.live_curves(c, "Accuracy after retraining, live", y_title="test accuracy (%)"))
retrained = []
if r is not None:
    retrain_spec = runs.store().get(retrain_id).spec.to_dict()
    if not r.complete:
        st.warning(f"Retraining was stopped after {len(r.points)} of {3 * len(a.sparsities)} points; "
                   "the results below are those of the points done.")
    for i, (p, m) in enumerate(zip(r.points, r.models)):
        retrained.append(p)
        if p["criterion"] != "random":
            register(label, a.n_prunable, m, p["criterion"], p["sparsity"], f"retrained {r.retrain_epochs} epochs",
                     retrain_spec, ["models", i])
merged = P.with_retrained(points, retrained)

left, right = st.columns(2, gap="large")
with left:
    present.chart(viz.pruning.accuracy_curves(merged, a.base_accuracy), width="stretch")
    verdict = P.oneshot_verdict(merged)
    if verdict is not None:
        (st.success if verdict[1] else st.info)(verdict[0])
    if not retrained:
        st.caption("Dashed: pruned only. Press **Retrain the pruned models** for the solid curves.")
with right:
    present.chart(viz.pruning.predicted_vs_actual(points), width="stretch")
    st.caption("OBD's prediction is a second-order Taylor expansion at a minimum with the off-diagonal terms "
               "dropped: it holds for small deletions and fails for large ones (points leave the diagonal). "
               "It also assumes the gradient is zero; the neglected first-order term Σ −g·θ is in the table.")
table = pd.DataFrame([{"criterion": p["criterion"], "sparsity (%)": 100 * p["sparsity"],
                       "test accuracy (%)": 100 * p["accuracy"],
                       "after retraining (%)": 100 * p["retrained_accuracy"],
                       "predicted Δloss": p["predicted_increase"], "actual Δloss": p["actual_increase"],
                       "first-order term": p.get("first_order", float("nan"))} for p in merged])
st.dataframe(table, hide_index=True, placeholder="—", column_config={
    c: st.column_config.NumberColumn(format="%.2f") for c in ("test accuracy (%)", "after retraining (%)")} | {
    c: st.column_config.NumberColumn(format="%.4g") for c in ("predicted Δloss", "actual Δloss", "first-order term")})

st.subheader("3 · Per-layer sensitivity")
if not a.sensitivity:
    st.caption("The analysis was stopped before the per-layer sensitivity was measured.")
else:
    sens = pd.DataFrame(a.sensitivity)
    left, right = st.columns([3, 2], gap="large")
    present.chart(viz.pruning.sensitivity(a.sensitivity, a.base_accuracy), where=left, width="stretch")
    measured = [n for n in layers if n in set(sens["layer"])]
    pivot = sens.assign(acc=100 * sens["accuracy"], s=(100 * sens["sparsity"]).map(lambda v: f"{v:g} %")) \
        .pivot(index="layer", columns="s", values="acc").loc[measured]
    right.dataframe(pivot, column_config={c: st.column_config.NumberColumn(format="%.1f") for c in pivot.columns})
    right.caption("Test accuracy (%) when only that layer is pruned (lowest OBD saliency first) to each sparsity.")

st.subheader("4 · Iterative pruning")
iter_id = linked_run(SLOT_ITER, "prune_iterative", analysis_spec)
if a.complete:
    with st.form(f"prune_iter_form_{ds.name}"):
        c1, c2, c3, c4 = st.columns(4)
        crit = c1.selectbox("Criterion", ["OBD", "magnitude", "random"], key="prune_it_crit", bind="query-params")
        target = c2.select_slider("Target sparsity", LEVELS, value=0.9, format_func=lambda s: f"{100 * s:g} %",
                                  key="prune_it_target", bind="query-params")
        step = c3.slider("Each round prunes (% of what is left)", 10, 80, 40, 5, key="prune_it_step", bind="query-params")
        it_epochs = c4.number_input("Retraining epochs per round", 0, 50, 2, key="prune_it_epochs", bind="query-params")
        iter_pressed = st.form_submit_button("Prune iteratively", icon=":material/content_cut:")
    if iter_pressed:
        iter_id = runs.submit(RunSpec("prune_iterative", rc.iterative_config(analysis_spec, crit, target, step / 100,
                                                                             it_epochs)), slot=SLOT_ITER)
iv, it = ended_result(iter_id, "iterative pruning")
if iv is not None and iv.active:
    runs.watch(iter_id, key="prune_iter", label="Pruning iteratively",
               chart=lambda c: viz.common.live_curves(c, "Iterative pruning: validation accuracy, live"))
elif it is None or not it.steps:
    st.caption("Prune k % of the remaining weights, retrain n epochs, repeat (saliencies recomputed each round). "
               "The result is added to this session's models for the Trade-offs page.")
else:
    steps = [vars(x).copy() for x in it.steps]
    register(label, a.n_prunable, it.model, it.criterion, it.steps[-1].sparsity, f"iterative, {len(steps)} rounds",
             runs.store().get(iter_id).spec.to_dict(), ["model"])
    final = steps[-1]
    present.chart(viz.pruning.iterative_progress(steps, f"Iterative pruning by {it.criterion}: validation accuracy"),
                    width="stretch")
    st.caption(f"{len(steps)} rounds{'' if it.complete else ' (stopped early)'} · final sparsity "
               f"{100 * final['sparsity']:.1f} % · validation accuracy {100 * final['accuracy']:.2f} % · "
               f"{format_bytes(4 * a.n_prunable * (1 - final['sparsity']))} of non-zero prunable weights "
               "(stored densely the model keeps its size; sparse storage is what saves memory).")
