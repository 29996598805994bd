"""Losses: labels only, KD, decoupled KD, FitNets hints and a class-distance teacher, on one student.

The comparison runs as a "loss_families" job (`kdcore.runkinds_families`): for each seed one
student initialization and one batch order for every loss; the page shows mean ± std test
accuracy per loss with its formula and paper, and says whether anything beat plain KD.
"""

import pandas as pd
import streamlit as st

from kdcore import viz
from kdcore import runkinds_families as rf
from kdcore.loss_families import DEFAULT_METHODS, LOSS_FAMILIES, beats_plain_kd, verdict
from kdcore.models import ModelConfig
from kdcore.presets import default_kd, default_student
from kdcore.runs import RunSpec
from kdcore.train import TrainConfig
from ui import present
from ui import frame
from ui import runs, state
from ui import table as csv_table
from ui import teacher as teacher_ui

SLOT = "losses"

ds = state.dataset()

st.title("Losses")
st.markdown("Is plain knowledge distillation the best way to use a teacher? The same student is trained with "
            "each loss below: per seed, **one initialization and one batch order for every loss**, on the same "
            "transfer set (the lab's default labelled fraction, shown under the results; hidden labels count for no loss). The spread "
            "over seeds says how much of a difference is noise.")

teacher = teacher_ui.require(ds, key="losses")
if teacher_ui.not_a_network(teacher, "FitNets hints, one of the losses compared here, match the teacher's "
                                     "hidden layer, which only a network has"):
    frame.stop()
student_cfg, student_train = default_student(ds.name)
kd = default_kd(ds.name)

with st.expander("The losses, their formulas and papers", expanded=False):
    for k, info in LOSS_FAMILIES.items():
        st.markdown(f"**{info['name']}** (`{k}`): `{info['formula']}`  \n*{info['paper']}*")
    st.caption("p_T, q_T: the teacher's and the student's softmax at temperature T; s: the student's logits; "
               "h_s, h_t: the student's and teacher's penultimate features; W_r, b_r: the hint regressor; "
               "TCKD / NCKD: the target-class and non-target-class parts of the KL term.")

with st.form(f"losses_form_{ds.name}"):
    c1, c2 = st.columns([3, 2])
    methods = c1.multiselect("Losses", list(LOSS_FAMILIES), default=list(DEFAULT_METHODS), key="losses_methods", bind="query-params",
                             format_func=lambda k: LOSS_FAMILIES[k]["name"])
    seeds = c2.multiselect("Seeds", list(range(10)), default=[0, 1, 2], key="losses_seeds", bind="query-params",
                           help="Each seed is one student initialization and batch order, shared by every loss.")
    c1, c2, c3, c4 = st.columns(4)
    width = c1.select_slider("Student hidden width", [4, 8, 16, 32, 64, 128, 256], key="losses_width", bind="query-params",
                             value=student_cfg.hidden[0] if student_cfg.hidden[0] in (4, 8, 16, 32, 64, 128, 256)
                             else 16)
    epochs = c2.number_input("Epochs", 1, 300, student_train.epochs, key="losses_epochs", bind="query-params")
    hint_weight = c3.select_slider("Hint weight λ", [0.1, 0.3, 1.0, 3.0, 10.0], value=1.0, key="losses_hint", bind="query-params",
                                   format_func=lambda v: f"{v:g}")
    dkd_beta = c4.select_slider("DKD β (non-target weight)", [1.0, 2.0, 4.0, 8.0, 16.0], value=8.0,
                                key="losses_dkd_beta", bind="query-params", format_func=lambda v: f"{v:g}")
    pressed = st.form_submit_button("Run", type="primary", icon=":material/functions:")

if pressed:
    if not methods or not seeds:
        st.error("Choose at least one loss and one seed.")
    else:
        student = ModelConfig.from_dict({**student_cfg.to_dict(), "hidden": [int(width)] * len(student_cfg.hidden)})
        train = TrainConfig(**{**student_train.to_dict(), "epochs": int(epochs)})
        ordered = [m for m in LOSS_FAMILIES if m in methods]
        cfg = rf.loss_families_config(teacher.spec, student, train, kd, sorted(int(s) for s in seeds), ordered,
                                      dkd_weights=(1.0, float(dkd_beta)), hint_weight=float(hint_weight))
        runs.submit(RunSpec("loss_families", cfg), slot=SLOT)
        st.rerun()

run_id = runs.current(SLOT, "loss_families", ds.name, ds.seed)
state.set_shown_run(run_id)   # the Share box links to this run's result
v = runs.view(run_id)
if v is not None and v.active:
    runs.watch(run_id, key="losses_run", label="Loss families",
               chart=lambda c: viz.common.live_curves(c, "Test accuracy of each finished student, live",
                                                   y_title="test accuracy (%)", x_title="seed (in order)"))
elif v is None:
    st.info("Choose losses and seeds and press **Run**. On *digits* each student takes a few seconds; the "
            "class-distance teacher trains a teacher first.")
elif v.status not in ("finished", "stopped"):
    runs.explain_end(v, "comparison")
else:
    res = runs.result(run_id)
    if res is not None:
        spec = runs.store().get(run_id).spec
        table = res.table()
        if v.status == "stopped":
            st.warning(f"The comparison was stopped after {len(res.rows)} students; the losses and seeds that "
                       "finished are shown.")
        if not table:
            st.info("No student finished before the stop.")
        else:
            (st.success if beats_plain_kd(table) else st.info)(verdict(table))
            shown = pd.DataFrame([{"loss": r["method"],
                                   "test accuracy (%)": f"{r['test accuracy mean (%)']:.2f} ± {r['std (points)']:.2f}",
                                   "seeds": r["seeds"], "per seed (%)": r["per seed (%)"],
                                   "formula": r["formula"], "paper": r["paper"]} for r in table])
            csv_table.show(shown, key="losses_csv", settings=runs.run_settings(run_id), file_name=f"losses_{ds.name}_seed{ds.seed}.csv",
                           label="Download the table (CSV)")
            present.chart(viz.common.mean_std_bars(table, f"Test accuracy per loss: {res.settings['student']}, "
                                                  f"{res.settings['epochs']} epochs, mean ± std over seeds"),
                            width="stretch")
            c = spec.config
            rs = res.settings   # the run's own settings, not today's defaults
            line = (f"Student {rs['student']}, {rs['epochs']} epochs, T = {rs['T']:g}, "
                    f"α = {rs['alpha']:g}, {100 * rs['labelled fraction']:g} % labels; DKD (α, β) = "
                    f"{tuple(c['dkd_weights'])}, hint weight {c['hint_weight']:g}. Teacher "
                    f"{100 * res.teacher_metrics['accuracy']:.1f} %.")
            if res.cd_teacher_metrics is not None:
                cq = res.cluster_quality
                line += (f" The class-distance teacher: {100 * res.cd_teacher_metrics['accuracy']:.1f} %; "
                         f"clustering of its penultimate test features (nearest other centre / own centre) "
                         f"{cq.get('cd_teacher', float('nan')):.2f} against the plain teacher's "
                         f"{cq.get('teacher', float('nan')):.2f}.")
            st.caption(line + f" Test set: {len(ds.y_test)} examples (one example = {100 / len(ds.y_test):.2f} "
                       "points): small differences are noise.")
