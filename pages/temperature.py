"""Temperature: what soft targets are and why they carry more than labels, live as T moves.

The teacher's test logits are computed once (with the teacher); what does not
depend on T is computed once per teacher (`kdcore.temperature.teacher_outputs`)
and the students' logits once per user, so a move of the slider, the example
or the scale toggle only recomputes softmaxes and redraws (docs/performance.md).
"""

import numpy as np
import streamlit as st

from kdcore import temperature as tl
from kdcore import viz
from kdcore.viz.style import COLORS
from kdcore.models import build_model
from kdcore.presets import default_student
from kdcore.train import predict_logits, seeded_model
from ui import present
from ui import frame
from ui import runs, state
from ui import teacher as teacher_ui


ds = state.dataset()
st.title("Temperature")
st.markdown("Soft targets are the teacher's probabilities softened by a **temperature**: "
            "p_i = exp(z_i / T) / Σ_j exp(z_j / T). Move T and watch the wrong classes, almost "
            "invisible at T = 1, come up: how much the teacher thinks this example resembles each "
            "other class is information a label never gives (the *dark knowledge*).")
teacher = teacher_ui.require(ds, key="temperature")


def untrained_student_logits() -> np.ndarray:
    """Test logits of the default student at its seeded initialization (the stand-in), once per user."""
    kept = state.per_user(state.TEMPERATURE_STANDIN_KEY)
    if state.data_key(ds) not in kept:
        cfg, _ = default_student(ds.name)
        model = seeded_model(lambda: build_model(cfg, ds.input_shape, ds.n_classes), ds.seed)
        kept[state.data_key(ds)] = predict_logits(model, ds.X_test).double().numpy()
    return kept[state.data_key(ds)]


def distilled_student():
    """(test logits, temperature it was distilled at) of the Distill page's student, or None."""
    result = runs.distill_result(ds)
    if result is None:
        return None
    kept = st.session_state.get(state.TEMPERATURE_STUDENT_KEY)
    if kept is None or kept[0] is not result.distilled:
        kept = (result.distilled, predict_logits(result.distilled, ds.X_test).double().numpy())
        st.session_state[state.TEMPERATURE_STUDENT_KEY] = kept
    return kept[1], result.kd.temperature


out = tl.teacher_outputs(teacher, ds.y_test.numpy(), ds.n_classes)   # T-independent, once per teacher
names = [str(c) for c in ds.class_names]
C, N = ds.n_classes, len(out.labels)

# ---- controls ----
c_pick, c_which, c_temp = st.columns([1.1, 1.4, 2.2], gap="medium")
with c_pick:
    mode = st.radio("Pick an example", ["most confusing", "by class", "by index"], key="temperature_pick", bind="query-params",
                    help="Most confusing: the test examples on which the teacher's distribution at T = 1 "
                         "has the highest entropy, first.")
with c_which:
    if mode == "most confusing":
        state.clamp("temperature_rank", 1, N)
        rank = st.number_input("Rank (1 = most confusing)", 1, N, 1, key="temperature_rank", bind="query-params")
        idx = int(out.confusing_order[int(rank) - 1])
    elif mode == "by class":
        cls = st.selectbox("Class", range(C), format_func=lambda c: names[c], key="temperature_class",
                           bind="query-params")
        members = out.class_indices[cls]
        if len(members) == 0:
            st.warning(f"The test set has no example of class {names[cls]}.")
            frame.stop()
        state.clamp("temperature_member", 1, len(members))
        k = st.number_input(f"Which one (of {len(members)})", 1, len(members), 1,
                            key="temperature_member", bind="query-params")
        idx = int(members[int(k) - 1])
    else:
        state.clamp("temperature_index", 0, N - 1)
        idx = int(st.number_input(f"Test example (0 to {N - 1})", 0, N - 1, 0, key="temperature_index",
                                  bind="query-params"))
with c_temp:
    T = float(st.select_slider("Temperature T", tl.TEMPERATURES, value=4.0, key="temperature_T", bind="query-params",
                               format_func=lambda t: f"{t:g}",
                               help="p_T = softmax(z / T). T = 1 is the teacher's ordinary output."))
    log_scale = st.toggle("Log scale (shows the tiny probabilities of the wrong classes)", value=True,
                          key="temperature_log", bind="query-params")

v = out.logits[idx]
y_true, y_pred = int(out.labels[idx]), int(out.predictions[idx])
p1, pT = tl.soften_np(v, 1.0), tl.soften_np(v, T)
H1, HT = float(tl.entropy(p1)), float(tl.entropy(pT))
student = distilled_student()

# Fewer, larger elements: each Streamlit call costs about a millisecond of server time per rerun,
# so headings and explanations share one markdown call where they can.

# ---- 1 · the example and its soft targets ----
st.markdown(
    "### 1 · One example, softened\n"
    f"Dividing the logits by T before the softmax keeps their order but shrinks their gaps: at T = 1 "
    f"the teacher is nearly one-hot, at large T every class gets a share. The small probabilities of "
    f"the wrong classes are the teacher's opinion of which classes this example resembles. A label says "
    f"only “{names[y_true]}”; the soft targets say how much it looks like each of the other {C - 1} "
    f"classes, on every training example. Entropy **H = −Σ p_i log p_i**: 0 for a one-hot answer, "
    f"log {C} = {np.log(C):.2f} nats when every class is equally likely.")
left, right = st.columns([1, 2.2], gap="large")
with left:
    verdict = "right" if y_pred == y_true else "wrong"
    title = f"Test example {idx}: a “{names[y_true]}”"
    if ds.is_image:
        img = ds.X_test[idx].numpy().reshape(ds.input_shape[-2:])
        present.chart(viz.temperature.input_image(img, title), width="stretch", key="temperature_input")
    else:
        present.chart(viz.temperature.input_point(ds.X_test.numpy(), out.labels, names, ds.X_test[idx].numpy(), title),
                        width="stretch", key="temperature_input")
    st.caption(f"True class **{names[y_true]}**; the teacher says **{names[y_pred]}** ({verdict}) with "
               f"p = {p1[y_pred]:.3f} at T = 1. Rank {int(out.confusion_rank[idx])} of {N} by entropy "
               "at T = 1 (1 = the most confusing).")
with right:
    series = [(f"teacher, T = 1 (H = {H1:.3f} nats)", p1, "#9ecae9"),
              (f"teacher, T = {T:g} (H = {HT:.3f} nats)", pT, COLORS["teacher"])]
    if student is not None:
        s_logits, s_T = student
        qT = tl.soften_np(s_logits[idx], T)
        series.append((f"distilled student, T = {T:g} (H = {float(tl.entropy(qT)):.3f} nats)", qT,
                       COLORS["distilled"]))
    present.chart(viz.temperature.probability_bars(names, series, log_scale,
                                        f"Probabilities at T = 1 and T = {T:g} · entropy {H1:.3f} → {HT:.3f} "
                                        f"nats (max {np.log(C):.2f})"),
                    width="stretch", key="temperature_bars")
    st.caption("Distill a student on the **Distill** page and its softened distribution appears here, beside "
               "the teacher's." if student is None else
               f"Orange: the Distill page's distilled student (trained at T = {student[1]:g}), softened at "
               "the same T: how closely it learned the teacher's dark knowledge on this example.")

# ---- 2 · entropy against T ----
left, right = st.columns([2.2, 1], gap="large")
H_curve, top_curve = tl.entropy_and_top(v)
with left:
    present.chart(viz.temperature.entropy_curve(tl.CURVE_TEMPERATURES, H_curve, top_curve, T, C,
                                     f"Entropy and top-class probability of example {idx}, T from 0.5 to 50"),
                    width="stretch", key="temperature_entropy")
with right:
    st.markdown(
        "### 2 · Entropy against temperature\n"
        f"**H(p_T) = −Σ p_i log p_i** rises with T towards **log {C} = {np.log(C):.2f} nats** (as T → ∞, "
        f"z/T → 0 and every class gets 1/{C}), and the top-class probability falls towards 1/{C}. As "
        "T → 0 the distribution becomes one-hot on the argmax (entropy 0). Too low a T hides the dark "
        "knowledge; too high a T washes it out into the uniform distribution: distillation uses a middle "
        "ground (T ≈ 2–20).")

# ---- 3 · dark knowledge across the dataset ----
sim = out.similarity(T)
top3 = tl.most_similar(sim, k=3)
left, right = st.columns([2.2, 1], gap="large")
with left:
    present.chart(viz.temperature.similarity_heatmap(sim, names, T, log_scale,
                                          f"Mean soft targets at T = {T:g} per true class (%, rows sum to 100)"),
                    width="stretch", key="temperature_similarity")
with right:
    st.markdown(
        "### 3 · Dark knowledge across the test set\n"
        "**S[c, k] = mean of p_T(k | x) over the test examples x of class c.** Row c is what the teacher, "
        "on average, thinks a “c” resembles. Off the diagonal it is the dark knowledge: which classes "
        "it confuses a little, which it never does. A student trained on these targets learns this "
        "structure of the classes, not just the right answers.\n\n"
        f"**Most similar classes at T = {T:g}** (mean soft target)\n\n" + "\n".join(
            f"- **{names[c]}** → " + ", ".join(f"{names[j]} ({100 * p:.2g} %)" for j, p in row)
            for c, row in enumerate(top3)))

# ---- 4 · the gradient story ----
if student is not None:
    z = student[0][idx]
    z_note = (f"The student is the Distill page's **distilled student** (trained at T = {student[1]:g}); "
              f"its logits on example {idx} are z.")
else:
    z = untrained_student_logits()[idx]
    z_note = ("**Stand-in student:** no student has been distilled on this dataset yet, so z are the logits "
              f"of the default student ({default_student(ds.name)[0].describe()}) **at its initialization** "
              f"(seed {ds.seed}, untrained). Distill one on the Distill page to use it here.")
story = tl.gradient_story(z, v)
st.markdown(
    "### 4 · The gradient: soft targets, logit matching and the T² factor\n"
    f"{z_note} v are the teacher's logits, N = {C} classes. The soft-target loss C = −Σ p_i log q_i, "
    "with p = softmax(v/T) and q = softmax(z/T), has the gradient **∂C/∂z_i = (q_i − p_i)/T**. At high T, "
    "with logits of zero mean (softmax ignores a constant shift, so centring them changes nothing), "
    "exp(x) ≈ 1 + x gives **∂C/∂z_i ≈ (z_i − v_i)/(N·T²)**: distillation at high T *is* matching the "
    "logits (Hinton, Vinyals & Dean 2015, eq. 2–3).")
left, right = st.columns(2, gap="large")
with left:
    present.chart(viz.temperature.gradient_ratio_figure(story, T, "Soft-target gradient ÷ logit-matching gradient"),
                    width="stretch", key="temperature_ratio")
    st.caption("The two gradients become the same vector as T grows: norm ratio and cosine → 1. "
               "At low T the soft targets only care about the few classes with the largest logits.")
with right:
    present.chart(viz.temperature.gradient_magnitude_figure(story, T, tl.hard_gradient_norm(z, y_true),
                                                 "Why the soft loss is multiplied by T²"),
                    width="stretch", key="temperature_magnitude")
    st.caption("Without T² the soft gradient shrinks like 1/T² at high T, so raising T would silently turn "
               "the soft term off next to the labels' cross-entropy. Multiplying the loss by T² keeps its "
               "gradient the same size whatever T (→ ‖z − v‖/N), so T and α can be tuned separately.")
soft_T = tl.soft_target_gradient(z, v, T)
match_T = tl.logit_matching_gradient(z, v, T)
with np.errstate(divide="ignore", invalid="ignore"):
    ratio_T = np.where(np.abs(match_T) > 1e-12, soft_T / match_T, np.nan)
# a markdown table: a few hundred characters, where a dataframe would cost a pandas → arrow conversion
q_T = tl.soften_np(z, T)
rows = "\n".join(f"| {names[i]} | {v[i]:.3g} | {z[i]:.3g} | {pT[i]:.3g} | {q_T[i]:.3g} | {soft_T[i]:.3g} | "
                 f"{match_T[i]:.3g} | {ratio_T[i]:.3g} |" for i in range(C))
with st.expander("Per class, at the current T: logits, soft targets and both gradients", expanded=C <= 10):
    st.markdown("| class | teacher logit v | student logit z | p_T (teacher) | q_T (student) | (q − p)/T | "
                "(z − v)/(N·T²) | ratio |\n|---|--:|--:|--:|--:|--:|--:|--:|\n" + rows)
ratio_now, cosine_now = tl.gradient_agreement(z, v, T)
st.caption(f"At T = {T:g} (logits centred for the logit-matching column): norm ratio {ratio_now:.3f}, "
           f"cosine {cosine_now:.3f}. Per-class ratios are unstable where z_i ≈ v_i.")
