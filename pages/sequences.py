"""Sequences: a recurrent teacher and three small students, many campaign models into one, and the
1991 chunker. Every training runs as a job (`kdcore.runkinds_seq`); this page submits, watches and
draws stored results (and runs the stored models on the test sequences for its charts)."""

import pandas as pd
import streamlit as st

from kdcore import viz
from kdcore.jobs import UNSTARTED
from kdcore.chunker import ABOUT, ChunkerConfig, chunker_takeover_shares, describe_takeover
from kdcore.models import format_bytes
from kdcore.runkinds_seq import chunker_config, seq_distill_config, seq_groups_config, seq_teacher_config
from kdcore.runs import RunSpec
from kdcore.seqdistill import (SEQ_MODEL_KINDS, STUDENT_NAMES, STUDENTS, SeqDistillConfig, SeqModelConfig,
                               SeqTeacherConfig, accuracy_per_position, describe_sequence_outcome,
                               sequence_presets, sequence_symbols, soft_targets_of_sequence)
from kdcore.seqgroups import GroupsIntoOneConfig, describe_groups_outcome
from kdcore.seqgroups import solved as groups_solved
from kdcore.sequences import SEQUENCE_TASKS, SeqTaskConfig, make_sequence_dataset
from kdcore.train import TrainConfig
from ui import present
from ui import runs, state
from ui.fmt import delta

TASK_TITLES = {"events": "User sessions (events)", "reber": "Embedded Reber grammar"}
TEACHER_WIDTHS = [8, 16, 32, 64, 128, 256]
STUDENT_WIDTHS = [2, 4, 8, 16, 32, 64, 128]
seed = state.seed()


def figure(run_id: str, view: tuple, build):
    return state.cached_view("sequences", run_id, view, build)


def ended_result(slot: str, dataset: str, label: str, what: str, live_title: str,
                 y_title: str = "validation accuracy (%)"):
    """(run id, stored result) of a tab's current run (its slot is its kind): (None, None) without one;
    (run id, None) while it runs (its live progress drawn, the other tabs go on) or when it kept nothing."""
    run_id = runs.current(slot, slot, dataset, seed)
    res = runs.watched_result(run_id, f"{slot}_w", label, what, stop=False, share=slot == "seq_distill",
                              chart=lambda c: viz.common.live_curves(c, live_title, y_title))
    v = runs.view(run_id)
    if v is not None and v.status == "stopped" and v.error != UNSTARTED:   # (explain_end said that one)
        st.warning(f"This {what} was stopped before it finished; below is what it had learned then."
                   if res is not None else f"This {what} was stopped before its first epoch ended; nothing was kept.")
    return run_id, res


def teacher_of(teacher_config: dict):
    """The stored result of a finished seq_teacher run of this config, or None."""
    rec = runs.store().find_finished(RunSpec("seq_teacher", teacher_config).key)
    return runs.result(rec.id) if rec is not None else None


st.title("Sequences")
st.markdown("Distillation on data that comes **one symbol at a time**: a recurrent teacher predicts the next "
            "symbol at every step, and a small student learns from its softened predictions at every step. "
            "Both tasks are made in code by a known process, so at each step the true next-symbol "
            "distribution is known: a prediction counts as right when it picks a symbol the process makes "
            "most likely next (a perfect model scores 100 %).")
st.caption(f"The sequences are drawn from the seed in the sidebar (now {seed}); the sidebar's dataset is not "
           "used on this page.")

tab_kd, tab_groups, tab_1991 = st.tabs(["Teacher → students", "Many small models into one",
                                        "Where it began: the 1991 chunker"])

# ================================================================ teacher → three students
with tab_kd:
    task = st.radio("Task", list(TASK_TITLES), format_func=TASK_TITLES.get, horizontal=True, key="seq_task", bind="query-params",
                    help="events: " + SEQUENCE_TASKS["events"] + ". Reber: " + SEQUENCE_TASKS["reber"] + ".")
    st.caption(SEQUENCE_TASKS[task] + ".")
    t_pre, d_pre = sequence_presets()[task]
    col_t, col_s = st.columns(2, gap="large")

    with col_t:
        st.subheader("1 · Teacher")
        c1, c2 = st.columns(2)
        t_kind = c1.radio("Recurrent cell", ["gru", "lstm"], index=["gru", "lstm"].index(t_pre.model.kind),
                          format_func=str.upper, horizontal=True, key=f"seq_t_kind_{task}", bind="query-params")
        t_width = c2.select_slider("State width", TEACHER_WIDTHS, value=t_pre.model.hidden, key=f"seq_t_width_{task}", bind="query-params",
                                   help="Units in each recurrent layer.")
        t_layers = c1.slider("Layers", 1, 3, t_pre.model.layers, key=f"seq_t_layers_{task}", bind="query-params")
        t_dropout = c2.slider("Dropout", 0.0, 0.5, float(t_pre.model.dropout), 0.05, key=f"seq_t_dropout_{task}", bind="query-params",
                              help="Between stacked layers and before the read-out.")
        t_epochs = c1.number_input("Epochs", 1, 200, t_pre.train.epochs, key=f"seq_t_epochs_{task}", bind="query-params")
        teacher_cfg, teacher_err = None, None
        try:
            teacher_cfg = SeqTeacherConfig(t_pre.task, SeqModelConfig(t_kind, hidden=int(t_width), layers=int(t_layers),
                                                                      dropout=float(t_dropout)),
                                           TrainConfig(**{**t_pre.train.to_dict(), "epochs": int(t_epochs)}))
        except (ValueError, TypeError) as err:
            teacher_err = str(err)
        if teacher_err:
            st.error(f"**These teacher settings cannot be used.** {teacher_err}")
        train_teacher = st.button("Train teacher", icon=":material/model_training:", key="seq_teacher_btn",
                                  disabled=teacher_cfg is None)
        teacher_status = st.container()

    with col_s:
        st.subheader("2 · Students")
        kinds = list(SEQ_MODEL_KINDS)
        c1, c2 = st.columns(2)
        s_kind = c1.selectbox("Student", kinds, index=kinds.index(d_pre.student.kind), key=f"seq_s_kind_{task}", bind="query-params",
                              format_func=SEQ_MODEL_KINDS.get,
                              help="The three students share this model: distilled, labels only, teacher's hard labels.")
        s_width = c2.select_slider("Width", STUDENT_WIDTHS, value=d_pre.student.hidden, key=f"seq_s_width_{task}", bind="query-params",
                                   help="Recurrent: state width; n-gram / bag: width of the MLP's hidden layer.")
        s_context = d_pre.student.context
        if s_kind == "ngram":
            s_context = c1.slider("Context (last k symbols)", 1, 8, d_pre.student.context, key=f"seq_s_context_{task}", bind="query-params")
        s_T = c1.slider("Temperature T", 1.0, 10.0, float(d_pre.temperature), 0.5, key=f"seq_s_T_{task}", bind="query-params",
                        help="Softens the teacher's predictions at every step.")
        s_alpha = c2.slider("α (weight of the soft targets)", 0.0, 1.0, float(d_pre.alpha), 0.05,
                            key=f"seq_s_alpha_{task}", bind="query-params", help="1 − α goes to the next symbols' cross-entropy.")
        s_n = c1.number_input("Labelled sequences", 1, t_pre.task.n_train, d_pre.n_sequences, key=f"seq_s_n_{task}", bind="query-params",
                              help=f"The students see the first n of the teacher's {t_pre.task.n_train} "
                                   "training sequences.")
        s_epochs = c2.number_input("Epochs", 1, 300, d_pre.train.epochs, key=f"seq_s_epochs_{task}", bind="query-params")
        distill_cfg, distill_err = None, None
        try:
            distill_cfg = SeqDistillConfig(SeqModelConfig(s_kind, hidden=int(s_width), context=int(s_context)),
                                           TrainConfig(**{**d_pre.train.to_dict(), "epochs": int(s_epochs)}),
                                           float(s_T), float(s_alpha), int(s_n))
        except (ValueError, TypeError) as err:
            distill_err = str(err)
        if distill_err:
            st.error(f"**These student settings cannot be used.** {distill_err}")
        elif teacher_cfg is not None and s_kind == t_kind and s_width >= t_width:
            st.warning("The student is not smaller than the teacher: nothing is compressed.")
        distill = st.button("Distill", type="primary", icon=":material/science:", key="seq_distill_btn",
                            disabled=teacher_cfg is None or distill_cfg is None,
                            help="Trains the teacher first if it is missing (the queue sees to it).")

    if train_teacher and teacher_cfg is not None:
        runs.submit(RunSpec("seq_teacher", seq_teacher_config(teacher_cfg, seed)))
    if distill and teacher_cfg is not None and distill_cfg is not None:
        runs.submit(RunSpec("seq_distill", seq_distill_config(teacher_cfg, distill_cfg, seed)), slot="seq_distill")

    with teacher_status:
        if teacher_cfg is not None:
            t_spec = RunSpec("seq_teacher", seq_teacher_config(teacher_cfg, seed))
            t_res = teacher_of(t_spec.config)
            active = runs.runner().find_active(t_spec) if t_res is None else None
            if t_res is not None:
                m = t_res.metrics
                st.success(f"**Teacher {teacher_cfg.model.describe()}**: {100 * m['accuracy']:.1f} % test accuracy, "
                           f"{m['params']:,} parameters ({format_bytes(m['bytes'])}).")
            elif active is not None:
                runs.watch(active, key="seq_teacher_w", label="Training the teacher",
                           chart=lambda c: viz.common.live_curves(c, "Teacher's validation accuracy, live"))
            else:
                st.info("No teacher with these settings yet: **Train teacher**, or press **Distill** and it is "
                        "trained first.")

    st.divider()
    run_id, res = ended_result("seq_distill", f"seq:{task}", "Distilling", "distillation",
                               "Validation accuracy of the three students, live")
    if run_id is None or res is None:
        if run_id is None:
            st.info("Press **Distill** to train the three students (and the teacher first, if needed). At the "
                    "defaults it takes about 10 s.")
    else:
        cfg = runs.store().get(run_id).config
        t_cfg = SeqTeacherConfig.from_dict(cfg["teacher"])
        d_cfg = res.config
        ds = make_sequence_dataset(t_cfg.task, int(cfg["teacher"]["seed"]))
        teacher = teacher_of(cfg["teacher"])
        st.subheader("3 · Results")
        tm, m = res.teacher_metrics, res.metrics
        verdict = describe_sequence_outcome(m, tm)
        if res.stopped_early:
            verdict += f" (stopped after {res.epochs_run} of {d_cfg.train.epochs} epochs)"
        control_ahead = m["hard_labels"]["accuracy"] >= m["distilled"]["accuracy"] + 0.005
        (st.info if control_ahead or abs(res.gain) < 0.005 else st.success if res.gain > 0 else st.warning)(verdict)
        st.caption(f"Teacher {t_cfg.model.describe()} ({t_cfg.train.epochs} epochs on {t_cfg.task.n_train} "
                   f"sequences) · students {d_cfg.student.describe()} · T = {d_cfg.temperature:g}, "
                   f"α = {d_cfg.alpha:g} · {res.n_sequences} sequences · {d_cfg.train.epochs} epochs · seed "
                   f"{res.seed}. One run: a point or two can be noise; docs/results.md gives 5-seed means.")
        cols = st.columns(4)
        cols[0].metric("Teacher", f"{100 * tm['accuracy']:.1f} %", help="test accuracy (best guess at each step)")
        cols[0].caption(f"{tm['params']:,} parameters · {format_bytes(tm['bytes'])}")
        labels = {"distilled": "Distilled (soft targets)", "labels_only": "Labels only",
                  "hard_labels": "Teacher's hard labels"}
        for col, name in zip(cols[1:], STUDENTS):
            d = {} if name == "labels_only" else \
                delta(100 * (m[name]['accuracy'] - m['labels_only']['accuracy']), "vs labels only")
            col.metric(labels[name], f"{100 * m[name]['accuracy']:.1f} %", **d)
            col.caption(f"{m[name]['params']:,} parameters · {format_bytes(m[name]['bytes'])} · agrees with the "
                        f"teacher on {100 * m[name]['agreement']:.1f} %")
        table = pd.DataFrame([
            {"model": STUDENT_NAMES.get(n, n), "accuracy (%)": 100 * mm["accuracy"],
             "top-1 vs actual next (%)": 100 * mm["top1"],
             "long-range (%)": 100 * mm["long_range"] if "long_range" in mm else None,
             "KL to the truth (nats)": mm["kl_true"], "agrees with teacher (%)": 100 * mm.get("agreement", 1.0),
             "parameters": mm["params"], "size": format_bytes(mm["bytes"])}
            for n, mm in [("teacher", tm)] + [(n, m[n]) for n in STUDENTS]])
        if table["long-range (%)"].isna().all():
            table = table.drop(columns="long-range (%)")
        st.dataframe(table, hide_index=True, placeholder="—", column_config={
            c: st.column_config.NumberColumn(format="%.2f") for c in table.columns if "%" in c} |
            {"KL to the truth (nats)": st.column_config.NumberColumn(format="%.3f")})
        ratio = tm["bytes"] / max(m["distilled"]["bytes"], 1)
        st.caption(f"Sizes (float32 parameters): teacher {format_bytes(tm['bytes'])}, each student "
                   f"{format_bytes(m['distilled']['bytes'])}: the student is {ratio:.1f} × smaller. "
                   "KL to the truth: how well the whole next-symbol distribution is learned (lower is better); "
                   "a student on hard labels can be as accurate yet badly overconfident.")

        models = ({"teacher": teacher.model} if teacher is not None else {}) | dict(res.students)
        left, right = st.columns(2, gap="large")
        with left:
            st.markdown("**Soft targets, step by step**")
            c1, c2, c3 = st.columns(3)
            who = c1.selectbox("Model", list(models), key="seq_view_model", bind="query-params",
                               format_func=lambda n: viz.sequences.SEQ_NAMES.get(n, n))
            n_test = len(ds.test)
            idx = int(c2.number_input("Test sequence", 1, n_test, 1, key="seq_view_index", bind="query-params",
                                      help=f"One of the {n_test} test sequences.")) - 1
            T = c3.slider("T", 0.5, 10.0, float(d_cfg.temperature), 0.5, key="seq_view_T", bind="query-params",
                          help="Redraws the same model's predictions softened at this temperature; nothing is retrained.")
            steps = int(ds.test.lengths[idx])
            heat = figure(run_id, ("soft", who, idx, T), lambda: viz.sequences.soft_targets_heatmap(
                soft_targets_of_sequence(models[who], ds.test, idx, T), sequence_symbols(ds, ds.test, idx),
                ds.class_names, ds.test.targets[idx, :steps].tolist(), T, viz.sequences.SEQ_NAMES.get(who, who)))
            present.chart(heat, width="stretch", key="seq_heatmap")
            st.caption(f"Sequence: `{ds.test.strings[idx]}` · red rings: the symbol that came next.")
        with right:
            st.markdown("**Accuracy along the sequence**")
            pos = figure(run_id, ("positions",), lambda: viz.sequences.accuracy_per_position_chart(
                {n: accuracy_per_position(mod, ds.test) for n, mod in models.items()}))
            present.chart(pos, width="stretch", key="seq_positions")
            st.caption("Each point: the share of right predictions at that step, over the test sequences long "
                       "enough to reach it (hover for how many): late steps rest on few sequences.")

# ================================================================ many small models into one
with tab_groups:
    st.markdown("One model per **campaign** works, but together they are too many and too large to deploy. "
                "Here one teacher per campaign learns from its own campaign's sessions only; then **one** "
                "student, told the campaign by its first input, learns from every session with the soft "
                "targets of that session's own campaign model, beside a twin that learns from the events alone.")
    g_pre = GroupsIntoOneConfig()
    c1, c2, c3, c4 = st.columns(4)
    g_n = c1.slider("Campaigns", 2, 8, g_pre.task.n_campaigns, key="seq_g_campaigns", bind="query-params")
    g_sessions = c2.number_input("Training sessions (all campaigns)", 50, 5000, g_pre.task.n_train, 50,
                                 key="seq_g_sessions", bind="query-params")
    g_width = c3.select_slider("Each campaign model: GRU width", TEACHER_WIDTHS, value=g_pre.group_model.hidden,
                               key="seq_g_width", bind="query-params")
    g_epochs = c4.number_input("Campaign models: epochs", 1, 200, g_pre.group_train.epochs, key="seq_g_epochs", bind="query-params")
    c1, c2, c3, c4 = st.columns(4)
    s_width_g = c1.select_slider("One student: GRU width", STUDENT_WIDTHS, value=g_pre.student.hidden,
                                 key="seq_g_s_width", bind="query-params")
    s_epochs_g = c2.number_input("One student: epochs", 1, 200, g_pre.student_train.epochs, key="seq_g_s_epochs", bind="query-params")
    g_T = c3.slider("Temperature T", 1.0, 10.0, float(g_pre.temperature), 0.5, key="seq_g_T", bind="query-params")
    g_alpha = c4.slider("α (weight of the soft targets)", 0.0, 1.0, float(g_pre.alpha), 0.05, key="seq_g_alpha", bind="query-params")
    groups_cfg, groups_err = None, None
    try:
        if g_sessions < 10 * g_n:
            raise ValueError(f"{int(g_sessions)} sessions for {g_n} campaigns leaves some campaign models almost "
                             f"nothing to learn from: use at least {10 * g_n}.")
        groups_cfg = GroupsIntoOneConfig(
            SeqTaskConfig("events", n_train=int(g_sessions), n_campaigns=int(g_n)),
            SeqModelConfig("gru", hidden=int(g_width)), TrainConfig(**{**g_pre.group_train.to_dict(), "epochs": int(g_epochs)}),
            SeqModelConfig("gru", hidden=int(s_width_g)),
            TrainConfig(**{**g_pre.student_train.to_dict(), "epochs": int(s_epochs_g)}), float(g_T), float(g_alpha))
    except (ValueError, TypeError) as err:
        groups_err = str(err)
    if groups_err:
        st.error(f"**These settings cannot be used.** {groups_err}")
    if st.button("Train the campaign models and one student", type="primary", icon=":material/merge:",
                 key="seq_groups_btn", disabled=groups_cfg is None) and groups_cfg is not None:
        runs.submit(RunSpec("seq_groups", seq_groups_config(groups_cfg, seed)), slot="seq_groups")

    g_id, g_res = ended_result("seq_groups", "seq:events", "Many models into one", "run",
                               "Validation accuracy of the one student, live")
    if g_id is None or g_res is None:
        if g_id is None:
            st.info("Press the button to train one model per campaign, then one student for all of them "
                    "(about 10 s of CPU at the defaults).")
    else:
        verdict = describe_groups_outcome(g_res)
        solved = groups_solved(g_res)
        (st.success if solved else st.warning if "distilled" in g_res.metrics else st.info)(verdict)
        n_models = len(g_res.group_models)
        cols = st.columns(3)
        if "per-campaign models" in g_res.metrics:
            cols[0].metric(f"{n_models} per-campaign models", f"{100 * g_res.metrics['per-campaign models']['accuracy']:.1f} %",
                           help="each campaign's sessions predicted by its own model")
        cols[0].caption(f"{format_bytes(g_res.sizes['per-campaign models'])} together")
        if "distilled" in g_res.metrics:
            d, s = g_res.metrics["distilled"]["accuracy"], g_res.metrics["labels_only"]["accuracy"]
            cols[1].metric("One distilled student", f"{100 * d:.1f} %", **delta(100 * (d - s), "vs labels only"))
            cols[1].caption(f"{format_bytes(g_res.sizes['one student'])} · "
                            f"{g_res.sizes['per-campaign models'] / max(g_res.sizes['one student'], 1):.1f} × smaller "
                            "than the campaign models together")
            cols[2].metric("One student, labels only", f"{100 * s:.1f} %")
            cols[2].caption(f"{format_bytes(g_res.sizes['one student'])} · same initialization and batches")
        left, right = st.columns([3, 2], gap="large")
        with left:
            present.chart(figure(g_id, ("groups",), lambda: viz.sequences.accuracy_per_group_chart(
                g_res.accuracy_per_group, g_res.group_names)), width="stretch", key="seq_groups_chart")
        with right:
            present.chart(figure(g_id, ("sizes",), lambda: viz.sequences.model_size_bars(
                {f"{n_models} campaign models": g_res.sizes["per-campaign models"],
                 "one student": g_res.sizes["one student"]})), width="stretch", key="seq_groups_sizes")
        st.caption("'Solved' means: overall at most 0.5 points below the per-campaign models and no campaign more "
                   "than 2 points below its own model. One run: docs/results.md gives 5-seed means.")

# ================================================================ the 1991 chunker and automatizer
with tab_1991:
    st.markdown(ABOUT)
    c_pre = ChunkerConfig()
    c1, c2, c3, c4 = st.columns([1, 1, 1, 1.3])
    c_lag = c1.slider("Lag (chunk length)", 2, 16, c_pre.lag, key="seq_c_lag", bind="query-params",
                      help="Steps the start symbol must be remembered across to predict the end.")
    c_epochs = c2.number_input("Epochs", 1, 200, c_pre.train.epochs, key="seq_c_epochs", bind="query-params")
    c_hidden = c3.select_slider("State width (both networks)", [8, 16, 24, 32, 64], value=c_pre.hidden,
                                key="seq_c_hidden", bind="query-params")
    c_state = c4.toggle("Automatizer learns C's state", True, key="seq_c_state", bind="query-params",
                        help="The automatizer (A) is trained to predict the chunker's (C's) internal state. Off: "
                             "that loss is left out, and the chunker is never made redundant.")
    chunk_cfg, chunk_err = None, None
    try:
        chunk_cfg = ChunkerConfig(lag=int(c_lag), hidden=int(c_hidden), state_weight=1.0 if c_state else 0.0,
                                  train=TrainConfig(**{**c_pre.train.to_dict(), "epochs": int(c_epochs)}))
    except (ValueError, TypeError) as err:
        chunk_err = str(err)
    if chunk_err:
        st.error(f"**These settings cannot be used.** {chunk_err}")
    if st.button("Run the chunker and automatizer", type="primary", icon=":material/history_edu:",
                 key="seq_chunker_btn", disabled=chunk_cfg is None) and chunk_cfg is not None:
        runs.submit(RunSpec("chunker", chunker_config(chunk_cfg, seed)), slot="chunker")

    c_id, c_res = ended_result("chunker", "seq:chunker", "Chunker and automatizer", "chunker demo",
                               "The chunker's share of the predictions, live", "steps handed to the chunker (%)")
    if c_id is None or c_res is None:
        if c_id is None:
            st.info("Press the button to train both networks (about 5 s of CPU at the defaults).")
    elif c_res.history:
        st.info(describe_takeover(c_res.history))
        present.chart(figure(c_id, ("shares",), lambda: viz.sequences.chunker_share_chart(
            chunker_takeover_shares(c_res.history))), width="stretch", key="seq_chunker_chart")
        ex = c_res.example
        st.markdown("**Who predicts what, on one test sequence** (A: the automatizer was confident; C: handed to "
                    "the chunker)")
        st.dataframe(pd.DataFrame([ex[1:], c_res.example_owner], index=["next symbol", "predicted by"],
                                  columns=[f"{t + 1}" for t in range(len(ex) - 1)]))
        st.caption("Honest simplifications: GRUs trained by backpropagation through time on minibatches (the paper "
                   "used online real-time recurrent learning); 'failed to predict' is a probability threshold "
                   f"({c_res.config.confidence:g}); both networks train at once; one level of hierarchy; a toy "
                   "sequence of episodes [a|c] s1…s_lag [b|d], not the paper's tasks.")
