"""Prune: Optimal Brain Damage saliencies against magnitude and random pruning, with retraining."""

import copy

import numpy as np
import pandas as pd
import streamlit as st
import torch

from kdcore import figures_pruning as pf
from kdcore import pruning as P
from kdcore.metrics import evaluate
from kdcore.models import format_bytes, param_count
from kdcore.quantize import model_size
from kdcore.registry import ModelRecord
from ui import state
from ui import teacher as teacher_ui
from ui.live import LiveProgress

ANALYSES = "prune_analyses"        # settings key -> analysis (scores, curves, sensitivity), per user
CURRENT = "prune_current"          # (dataset, seed) -> key of the analysis shown
LIVE_CURVES = "prune_live_curves"  # (analysis key, CurveRun) while curves with retraining run
LIVE_ITER = "prune_live_iter"      # (analysis key, IterativePruning, criterion) while iterative pruning runs
EXACT_LIMIT = 20_000               # "exact" costs one Hessian-vector product per parameter
LEVELS = [0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98]
METHOD_LABELS = {"gauss_newton": "Gauss–Newton (fast)", "exact": "exact Hessian diagonal (small nets)",
                 "hutchinson": "Hutchinson estimate"}

ds = state.dataset()
analyses: dict = st.session_state.setdefault(ANALYSES, {})
current: dict = st.session_state.setdefault(CURRENT, {})


def register(a: dict, model, criterion: str, target: float, how: str) -> None:
    metrics = evaluate(model, ds.X_test, ds.y_test, a["teacher_logits_test"])
    s = P.sparsity(model)
    metrics["nonzero_params"] = metrics["params"] - int(round(s * a["n_prunable"]))
    size = model_size(model)   # the cheapest sparse encoding (values + indices, or bitmask), not dense bytes
    metrics["bytes"] = size.bytes
    state.register(ModelRecord(
        f"pruned {a['label']} ({criterion}, {100 * target:g} %{', ' + how if how else ''})", "pruned",
        model, metrics, f"{a['label']} pruned to {100 * s:.1f} % sparsity by {criterion} ({how or 'one-shot'})",
        ds.name, ds.seed, extra={"sparsity": s, "criterion": criterion, "source": a["label"], "how": how,
                   "encoding": size.encoding}))


def finish_curves(key, run) -> None:
    a = analyses.get(key)
    if a is None:
        return
    a["retrained"] = list(run.points)
    a["retrain_done"] = run.done
    for (crit, s), model in run.models.items():
        if crit != "random":
            register(a, model, crit, s, f"retrained {run.config.retrain_epochs} epochs")


def finish_iterative(key, run, crit) -> None:
    a = analyses.get(key)
    if a is None or not run.steps:
        return
    a["iterative"] = {"steps": [vars(s).copy() for s in run.steps], "criterion": crit,
                      "config": run.config.to_dict(), "done": run.done}
    register(a, run.model.eval(), crit, run.steps[-1].sparsity, f"iterative, {len(run.steps)} rounds")


# work stopped before it finished (Stop, or another widget) keeps its partial results
for live_key, finish in ((LIVE_CURVES, finish_curves), (LIVE_ITER, finish_iterative)):
    pending = st.session_state.pop(live_key, None)
    if pending is not None:
        finish(*pending)
        st.warning("The run was stopped before it finished; the results below are those of the points done.")

st.title("Prune")
st.markdown(
    "**Optimal Brain Damage** (LeCun, Denker & Solla, 1990) deletes the weights whose removal the "
    "second-order Taylor expansion of the training loss predicts to cost least: the *saliency* "
    "s = ½·h·θ², with h the diagonal of the Hessian. **Magnitude** pruning deletes the smallest |θ|; "
    "**random** pruning is the baseline both must beat.")

teacher = teacher_ui.require(ds, key="prune")
sources = {f"teacher ({teacher.spec.model.describe()})": ("teacher:" + teacher.key, teacher.model)}
distilled = st.session_state.get("distill_results", {}).get((ds.name, ds.seed))
if distilled is not None:
    sources[f"distilled student ({distilled.student_config.describe()})"] = (f"distilled:{id(distilled.distilled)}",
                                                                            distilled.distilled)
    sources[f"scratch student ({distilled.student_config.describe()})"] = (f"scratch:{id(distilled.scratch)}",
                                                                          distilled.scratch)

with st.form(f"prune_form_{ds.name}"):
    c1, c2, c3 = st.columns(3)
    source = c1.selectbox("Model to prune", list(sources),
                          help="The teacher, or a student from the Distill page (distill one there to see it "
                               "here). The page always prunes a copy.")
    method = c2.selectbox("Hessian diagonal", list(METHOD_LABELS), format_func=METHOD_LABELS.get,
                          help="Gauss–Newton: exact diagonal of Jᵀ·H_out·J (one batched backward pass per "
                               "class). Exact: the true diagonal by autograd, one Hessian-vector product per "
                               "weight. Hutchinson: a stochastic estimate, E[v ⊙ Hv].")
    probes = c3.number_input("Hutchinson probes", 1, 2000, 100, help="Only for the Hutchinson estimate.")
    n_examples = c1.number_input("Training examples for the saliencies", 10, len(ds.X_train),
                                 min(len(ds.X_train), 10_000))
    scope = c2.radio("Ranking", ["global", "layer"], horizontal=True,
                     format_func={"global": "global (one ranking)", "layer": "per layer (same % each)"}.get)
    levels = c3.multiselect("Sparsities for the curves", LEVELS, default=[0.5, 0.8, 0.9, 0.95],
                            format_func=lambda s: f"{100 * s:g} %")
    analyse = st.form_submit_button("Compute saliencies", type="primary", icon=":material/content_cut:")

source_id, source_model = sources[source]
key = (ds.name, ds.seed, source_id, method, int(probes) if method == "hutchinson" else 0, int(n_examples),
       scope, tuple(sorted(levels)))

if analyse:
    if not levels:
        st.error("Choose at least one sparsity for the curves.")
        st.stop()
    model = copy.deepcopy(source_model).eval()     # never touch the shared teacher or the Distill page's student
    if method == "exact" and param_count(model) > EXACT_LIMIT:
        st.error(f"The exact diagonal needs one Hessian-vector product per parameter; this model has "
                 f"{param_count(model):,} (the limit here is {EXACT_LIMIT:,}). Use Gauss–Newton or Hutchinson, "
                 f"or prune a student.")
        st.stop()
    gen = torch.Generator().manual_seed(ds.seed)
    idx = torch.randperm(len(ds.X_train), generator=gen)[:int(n_examples)]
    X, y = ds.X_train[idx], ds.y_train[idx]
    with st.spinner(f"Computing saliencies ({METHOD_LABELS[method]})…"):
        obd = P.obd_saliency(model, X, y, method, int(probes), seed=ds.seed)
        criteria = {"OBD": P.OBDScore(X, y, method, int(probes), ds.seed), "magnitude": P.MagnitudeScore(),
                    "random": P.RandomScore(ds.seed)}
        scores = {"OBD": obd, "magnitude": P.MagnitudeScore().scores(model),
                  "random": P.RandomScore(ds.seed).scores(model)}
        run = P.CurveRun(model, criteria, X, y, ds.X_test, ds.y_test, P.CurveConfig(tuple(sorted(levels)), scope),
                         seed=ds.seed, scores=scores)
        while not run.done:
            run.step()
        for p in run.points:
            if p["criterion"] == "OBD":
                p["first_order"] = P.first_order_increase(model, X, y, P.masks_for_sparsity(obd, p["sparsity"], scope))
        sens = P.layer_sensitivity(model, obd, [0.5, 0.8, 0.9, 0.95, 0.99], ds.X_test, ds.y_test)
    analyses[key] = {"label": source.split(" (")[0], "model": model, "X": X, "y": y, "scores": scores,
                     "criteria": criteria, "oneshot": run.points, "base_accuracy": run.base_accuracy,
                     "base_loss": run.base_loss, "sensitivity": sens, "scope": scope, "method": method,
                     "n_prunable": sum(p.numel() for p in P.prunable_parameters(model).values()),
                     "teacher_logits_test": teacher.logits["test"]}
    current[(ds.name, ds.seed)] = key

a = analyses.get(current.get((ds.name, ds.seed)))
if a is None or current[(ds.name, ds.seed)][2] not in {sid for sid, _ in sources.values()}:
    st.info("Choose a model and press **Compute saliencies**. On *digits* with Gauss–Newton it takes a "
            "second or two.")
    st.stop()
if current.get((ds.name, ds.seed)) != key:
    st.caption("Showing the results of the last settings computed; press **Compute saliencies** for the new ones.")

# ---- everything below reads stored results; only the two buttons train ----
scores, model = a["scores"], a["model"]
layers = list(scores["OBD"])
st.subheader(f"1 · Saliencies of the {a['label']}")
st.caption(f"{a['n_prunable']:,} prunable weights in {len(layers)} layers · Hessian diagonal: "
           f"{METHOD_LABELS[a['method']]} on {len(a['X']):,} training examples · training loss "
           f"{a['base_loss']:.4f} nats · test accuracy {100 * a['base_accuracy']:.2f} %.")
left, right = st.columns(2, gap="large")
with left:
    shown = st.multiselect("Layers", layers, default=layers, key="prune_layers")
    log_x = st.toggle("Log-scaled x axis", value=True, key="prune_logx")
    which = st.radio("Histogram of", ["OBD", "magnitude"], horizontal=True, key="prune_hist_of")
    if shown:
        st.plotly_chart(pf.saliency_histogram(
            {n: scores[which][n] for n in shown}, log_x,
            title=f"{'OBD saliency' if which == 'OBD' else 'Magnitude |θ|'} per layer",
            x_title="saliency ½·h·θ² (nats)" if which == "OBD" else "|θ|"), width="stretch")
    n_neg = sum(int((scores["OBD"][n] < 0).sum()) for n in layers)
    if n_neg:
        st.caption(f"{n_neg:,} weights have a negative exact second derivative (the loss is not convex "
                   "there): OBD predicts that deleting them lowers the loss, and deletes them first.")
with right:
    view_s = st.select_slider("Sparsity for these views", LEVELS, value=0.8, format_func=lambda s: f"{100 * s:g} %",
                              key="prune_view_sparsity")
    masks = {c: P.masks_for_sparsity(scores[c], view_s, a["scope"]) for c in ("OBD", "magnitude", "random")}
    st.plotly_chart(pf.obd_vs_magnitude({n: scores["OBD"][n] for n in shown or layers}, scores["magnitude"],
                                        masks["OBD"], masks["magnitude"]), width="stretch")
    agree = np.mean(np.concatenate([(masks["OBD"][n] == masks["magnitude"][n]).flatten().numpy() for n in layers]))
    st.caption(f"At {100 * view_s:g} % sparsity the two criteria make the same decision on {100 * agree:.1f} % "
               "of the weights. Where they disagree, OBD keeps small weights on which the loss is steep "
               "and drops large ones on which it is flat.")
st.plotly_chart(pf.fraction_removed({c: P.layer_fractions(m) for c, m in masks.items()}, view_s), width="stretch")

st.subheader("2 · Accuracy against sparsity")
points = a["oneshot"]
retrained = {(p["criterion"], p["sparsity"]): p["retrained_accuracy"] for p in a.get("retrained", [])}
merged = [{**p, "retrained_accuracy": retrained.get((p["criterion"], p["sparsity"]), float("nan"))} for p in points]
with st.form(f"prune_retrain_form_{ds.name}"):
    c1, c2, c3 = st.columns([2, 2, 3])
    epochs = c1.number_input("Retraining epochs per point", 1, 50, 3)
    lr = c2.select_slider("Retraining learning rate", [3e-4, 1e-3, 3e-3, 1e-2], value=1e-3)
    c3.caption("Each point is pruned once from the original model, then fine-tuned with the pruned weights "
               "held at exactly zero.")
    retrain_pressed = st.form_submit_button("Retrain the pruned models", icon=":material/model_training:")
if retrain_pressed:
    cfg = P.CurveConfig(tuple(sorted({p["sparsity"] for p in points})), a["scope"], int(epochs), float(lr))
    run = P.CurveRun(model, a["criteria"], a["X"], a["y"], ds.X_test, ds.y_test, cfg, seed=ds.seed,
                     scores=scores)
    live = LiveProgress("Retraining the pruned models…", key="prune_curves",
                        keep=(LIVE_CURVES, (current[(ds.name, ds.seed)], run)))
    while not run.done:
        p = run.step()
        live.update(len(run.points) / run.total,
                    f"{len(run.points)}/{run.total}: {p['criterion']} at {100 * p['sparsity']:g} % → "
                    f"{100 * p['retrained_accuracy']:.1f} % after retraining",
                    pf.accuracy_curves(run.points, a["base_accuracy"], "Accuracy after retraining, live"))
    live.clear()
    finish_curves(current[(ds.name, ds.seed)], run)
    retrained = {(p["criterion"], p["sparsity"]): p["retrained_accuracy"] for p in a.get("retrained", [])}
    merged = [{**p, "retrained_accuracy": retrained.get((p["criterion"], p["sparsity"]), float("nan"))}
              for p in points]

left, right = st.columns(2, gap="large")
with left:
    st.plotly_chart(pf.accuracy_curves(merged, a["base_accuracy"]), width="stretch")
    top = max(p["sparsity"] for p in merged)
    at_top = {p["criterion"]: p for p in merged if p["sparsity"] == top}
    if {"OBD", "magnitude", "random"} <= set(at_top):
        o, m_, r = (at_top[c]["accuracy"] for c in ("OBD", "magnitude", "random"))
        msg = (f"At {100 * top:g} % sparsity without retraining: OBD {100 * o:.1f} %, magnitude "
               f"{100 * m_:.1f} %, random {100 * r:.1f} %.")
        (st.success if o >= m_ else st.info)(msg + (" OBD does best here." if o > max(m_, r) else
                                                    " Here OBD does not beat magnitude pruning." if o < m_ else ""))
    if not retrained:
        st.caption("Dashed: pruned only. Press **Retrain the pruned models** for the solid curves.")
with right:
    st.plotly_chart(pf.predicted_vs_actual(points), width="stretch")
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
sens = pd.DataFrame(a["sensitivity"])
left, right = st.columns([3, 2], gap="large")
left.plotly_chart(pf.sensitivity(a["sensitivity"], a["base_accuracy"]), width="stretch")
pivot = sens.assign(acc=100 * sens["accuracy"], s=(100 * sens["sparsity"]).map(lambda v: f"{v:g} %")) \
    .pivot(index="layer", columns="s", values="acc").loc[layers]
right.dataframe(pivot, column_config={c: st.column_config.NumberColumn(format="%.1f") for c in pivot.columns})
right.caption("Test accuracy (%) when only that layer is pruned (lowest OBD saliency first) to each sparsity.")

st.subheader("4 · Iterative pruning")
with st.form(f"prune_iter_form_{ds.name}"):
    c1, c2, c3, c4 = st.columns(4)
    crit = c1.selectbox("Criterion", ["OBD", "magnitude", "random"])
    target = c2.select_slider("Target sparsity", LEVELS, value=0.9, format_func=lambda s: f"{100 * s:g} %")
    step = c3.slider("Each round prunes (% of what is left)", 10, 80, 40, 5)
    it_epochs = c4.number_input("Retraining epochs per round", 0, 50, 2)
    iter_pressed = st.form_submit_button("Prune iteratively", icon=":material/content_cut:")
if iter_pressed:
    cfg = P.IterativeConfig(target=float(target), step=step / 100, epochs=int(it_epochs), scope=a["scope"])
    criterion = P.criterion_from_name(crit, a["X"], a["y"], a["method"], 100, ds.seed)
    run = P.IterativePruning(copy.deepcopy(model), criterion, a["X"], a["y"], ds.X_val, ds.y_val, cfg, seed=ds.seed)
    live = LiveProgress(f"Pruning iteratively by {crit}…", key="prune_iter",
                        keep=(LIVE_ITER, (current[(ds.name, ds.seed)], run, crit)))
    while not run.done:
        s = run.step()
        live.update(len(run.steps) / len(run.plan),
                    f"Round {s.round}/{s.rounds}: {100 * s.sparsity:.1f} % sparse · validation accuracy "
                    f"{100 * s.accuracy_pruned:.1f} % after pruning, {100 * s.accuracy:.1f} % after retraining",
                    pf.iterative_progress([vars(x) for x in run.steps]))
    live.clear()
    finish_iterative(current[(ds.name, ds.seed)], run, crit)

it = a.get("iterative")
if it is None:
    st.caption("Prune k % of the remaining weights, retrain n epochs, repeat (saliencies recomputed each round). "
               "The result is added to this session's models for the Trade-offs page.")
else:
    final = it["steps"][-1]
    st.plotly_chart(pf.iterative_progress(it["steps"],
                                          f"Iterative pruning by {it['criterion']}: validation accuracy"),
                    width="stretch")
    st.caption(f"{len(it['steps'])} rounds{'' if it['done'] else ' (stopped early)'} · final sparsity "
               f"{100 * final['sparsity']:.1f} % · validation accuracy {100 * final['accuracy']:.2f} % · "
               f"{format_bytes(4 * a['n_prunable'] * (1 - final['sparsity']))} of non-zero prunable weights "
               "(stored densely the model keeps its size; sparse storage is what saves memory).")
