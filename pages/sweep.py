"""Sweep: a whole T × α (× width) grid of distilled students, trained at once, as heatmaps.

The grid trains as a "sweep" run (`kdcore.runkinds_sweep`) in the job runner: the page submits it,
watches it live and draws the stored result, which outlives navigation, reloads and restarts.
"""

import importlib.util

import pandas as pd
import streamlit as st

from kdcore import viz
from kdcore.models import ModelConfig
from kdcore.presets import default_kd, default_student
from kdcore import records
from kdcore.runkinds_sweep import sweep_config
from kdcore.runs import RunSpec
from kdcore.sweep import SweepConfig, SweepResult, column_label
from kdcore.inputs import parse_values
from kdcore.sweep import MAX_TEMPERATURE, MAX_WIDTH
from kdcore.teachers import TeacherSpec
from kdcore.text import format_seconds
from kdcore.train import TrainConfig
from ui import present
from ui import frame
from ui import runs, state
from ui import table as csv_table
from ui import teacher as teacher_ui

SLOT = "sweep"                 # the page's current sweep run, per dataset and seed
MAX_STUDENTS = 400
RAY_AVAILABLE = importlib.util.find_spec("ray") is not None
BACKENDS = {"in-process": "in-process", "Ray": "ray"}


ds = state.dataset()


st.title("Sweep")
st.markdown("Train a whole grid of distilled students — every temperature **T** × weight **α** "
            "(× student width, × seeds) — and see the landscape at once. Students of one width "
            "train **together as batched models** (stacked weights; two halves per width, side by side on "
            "the server's workers), each as it would train alone, so a 5 × 5 grid costs little more "
            "than one student.")

teacher = teacher_ui.require(ds, key="sweep")
student_default, train_default = default_student(ds.name)
kd_default = default_kd(ds.name)

with st.form(f"sweep_form_{ds.name}"):
    c1, c2, c3 = st.columns(3)
    t_text = c1.text_input("Temperatures T", "1, 2, 4, 8, 16", key="sweep_T", bind="query-params",
                           help="Comma-separated, each above 0 and at most "
                                f"{MAX_TEMPERATURE:g}; columns of the heatmap.")
    a_text = c2.text_input("α values", "0.1, 0.3, 0.5, 0.7, 0.9", key="sweep_alpha", bind="query-params",
                           help="Weight of the soft targets, between 0 and 1; rows of the heatmap.")
    w_text = c3.text_input("Student widths", ", ".join(str(h) for h in student_default.hidden[:1]),
                           key="sweep_widths", bind="query-params",
                           help="Hidden units of the student MLP, 1 to "
                                f"{MAX_WIDTH}; two batched models per width (halves of its students).")
    c1, c2, c3, c4 = st.columns(4)
    n_seeds = c1.number_input("Seeds per cell", 1, 10, 1, key="sweep_seeds", bind="query-params",
                              help="Students per cell (different initialization, batch order and "
                                   "labelled subset); the heatmap shows mean ± std.")
    epochs = c2.number_input("Epochs", 1, 300, train_default.epochs, key="sweep_epochs", bind="query-params")
    fraction = c3.select_slider("Labelled examples", [0.02, 0.05, 0.1, 0.2, 0.5, 1.0],
                                value=kd_default.labelled_fraction, format_func=lambda f: f"{100 * f:g} %",
                                key="sweep_fraction", bind="query-params",
                                help="Share of the transfer set whose labels the students may use.")
    backends = ["in-process"] + (["Ray"] if RAY_AVAILABLE else [])
    backend_name = c4.selectbox("Backend", backends, key="sweep_backend", bind="query-params",
                                help="In-process: the server's own workers, two halves of each width side "
                                     "by side. Ray spreads width groups over a Ray cluster's workers "
                                     "(address from $KDLAB_RAY_ADDRESS, else a local instance); "
                                     "progress then arrives per finished chunk. "
                                     + ("" if RAY_AVAILABLE else "Install the optional extra `ray` to use it."))
    run_pressed = st.form_submit_button("Run sweep", type="primary", icon=":material/grid_on:")

if run_pressed:
    try:
        config = SweepConfig(
            temperatures=parse_values(t_text, float, "temperature", hi=MAX_TEMPERATURE),
            alphas=parse_values(a_text, float, "α"),
            widths=parse_values(w_text, int, "width", 1, MAX_WIDTH),
            depth=len(student_default.hidden), seeds_per_cell=int(n_seeds), base_seed=ds.seed,
            labelled_fraction=float(fraction), controls=True,
            train=TrainConfig(**{**train_default.to_dict(), "epochs": int(epochs)}))
        if config.n_total > MAX_STUDENTS:   # the grid's students and their two control rows
            raise ValueError(f"{config.n_total} students (the grid's {config.n_students} and their controls) is "
                             f"more than this page trains at once ({MAX_STUDENTS}); use fewer values or seeds")
    except ValueError as err:
        st.error(f"These settings cannot be used: {err}")
        frame.stop()
    runs.submit(RunSpec("sweep", sweep_config(teacher.spec, config, backend=BACKENDS[backend_name])), slot=SLOT)
    st.session_state.pop(state.SWEEP_CELL_KEY, None)

st.divider()
run_id = runs.current(SLOT, "sweep", ds.name, ds.seed)
res: SweepResult | None = runs.watched_result(run_id, "sweep", "Sweeping", "sweep",
                                              "Validation accuracy per width (best and mean student), live")

if res is None:
    st.info("Press **Run sweep**. On *digits* the default 5 × 5 grid (25 students, 30 epochs) trains "
            "in a few seconds.")
    frame.stop()
if res.stopped_early:
    if not res.students:
        st.warning("The sweep was stopped before its first epoch ended: no student to show.")
        frame.stop()
    st.warning(f"The sweep was stopped: {len(res.students)} of {res.config.n_students} students "
               "are shown, as they were then (some with fewer epochs).")
# the teacher this sweep distilled from (the page's current teacher may have other settings since)
run_teacher_spec = TeacherSpec.from_dict(runs.store().get(run_id).config["teacher"])
if run_teacher_spec.key != teacher.spec.key:
    teacher = state.teacher_cache().get(run_teacher_spec, ds) or teacher

# ---- results: everything below reads stored results; nothing here trains ----
cfg = res.config
cells = res.cells()
best = res.best_cell()
best_key = (float(best["T"]), float(best["alpha"]))
run_rec = runs.store().get(run_id)
run_seconds = run_rec.seconds if run_rec is not None and run_rec.seconds else res.seconds
st.caption(f"{len(res.students)} students · {res.epochs_text()} · {100 * cfg.labelled_fraction:g} % "
           f"labelled · seeds {', '.join(map(str, cfg.seeds))} · backend {res.backend} · "
           f"ran {format_seconds(run_seconds)}")
st.markdown(f"**Best cell** (highest mean validation accuracy): width {int(best['width'])}, "
            f"T = {best['T']:g}, α = {best['alpha']:g} — test accuracy {best['test_acc_mean']:.1f} %"
            + (f" ± {best['test_acc_std']:.1f}" if best["seeds"] > 1 else "")
            + f", agreement with the teacher {best['agreement_mean']:.1f} %. "
            f"The teacher reaches {100 * teacher.metrics['accuracy']:.1f} %.")
split = res.split_text()
if split:
    st.markdown(split)
spread = cells["test_acc_mean"].max() - cells["test_acc_mean"].min()
if spread < 1.0:
    st.info(f"Across this grid test accuracy varies by only {spread:.1f} points: here T and α matter little.")
elif cfg.seeds_per_cell == 1:
    st.caption("One seed per cell: differences of a point or two between cells can be noise. "
               "Use 3 seeds per cell for mean ± std.")

# the selected cell: from a click on a heatmap (when the last click is new), else the selectbox
cell_keys = [(int(r.width), float(r.T), float(r.alpha)) for r in cells.itertuples()]
labels = {k: f"width {k[0]}, T={k[1]:g}, α={k[2]:g}" for k in cell_keys}
by_label = {v: k for k, v in labels.items()}
best_full = (int(best["width"]),) + best_key

widths = sorted(set(cells["width"]))
metric = st.radio("Heatmap of", ["test_acc", "agreement"], horizontal=True, key="sweep_metric", bind="query-params",
                  format_func={"test_acc": "test accuracy", "agreement": "agreement with the teacher"}.get)


def clicked_cell(width: int) -> tuple | None:
    """The cell last clicked in a width's heatmap (its selection state lives in session_state)."""
    event = st.session_state.get(f"sweep_heat_{width}_{metric}")
    try:
        p = event["selection"]["points"][0]
        return int(width), float(str(p["x"]).split("=")[1]), float(str(p["y"]).split("=")[1])
    except (KeyError, IndexError, ValueError, TypeError, AttributeError):
        return None


for width in widths:   # a new click selects its cell (read before drawing, so the frame follows at once)
    clicked = clicked_cell(width)
    if clicked in labels and st.session_state.get(state.SWEEP_LAST_CLICK_KEY) != clicked:
        st.session_state[state.SWEEP_LAST_CLICK_KEY] = clicked
        st.session_state[state.SWEEP_CELL_KEY] = labels[clicked]
selected = by_label.get(st.session_state.get(state.SWEEP_CELL_KEY), best_full)
heat_cols = st.columns(min(len(widths), 2))
for i, width in enumerate(widths):
    with heat_cols[i % len(heat_cols)]:
        fig = viz.sweep.sweep_heatmap(cells, width, metric, best=best_key if width == best_full[0] else None,
                                      controls=res.control_cells(),
                            selected=selected[1:] if selected[0] == width else None,
                            temperatures=cfg.temperatures, alphas=cfg.alphas)
        present.chart(fig, width="stretch", on_select="rerun", selection_mode="points",
                        key=f"sweep_heat_{width}_{metric}")
st.caption("★ marks the best cell **by mean validation accuracy** (the validation split chooses; the test "
           "split only reports), drawn on this map of "
           + ("test accuracy" if metric == "test_acc" else "agreement with the teacher")
           + ": on the test map another cell may be a little higher. The dashed frame is the cell shown below.")

if st.session_state.get(state.SWEEP_CELL_KEY) not in by_label:
    st.session_state[state.SWEEP_CELL_KEY] = labels[best_full]
cell = by_label[st.selectbox("Cell (or click one in a heatmap)", list(by_label), key=state.SWEEP_CELL_KEY,
                             bind="query-params")]
students = res.find(*cell)
left, right = st.columns(2, gap="large")
with left:
    curve_names = {"val_acc": "validation accuracy", "train_loss": "training loss", "val_loss": "validation loss"}
    curve = st.radio("Curve", list(curve_names), horizontal=True, key="sweep_curve", bind="query-params", format_func=curve_names.get)
    present.chart(viz.common.training_curves({f"seed {s.spec.seed}": s.history for s in students}, curve,
                                            f"{labels[cell]}: {curve_names[curve]} per epoch"),
                    width="stretch")
    accs = ", ".join(f"{100 * s.metrics['accuracy']:.1f} %" for s in students)
    st.caption(f"Test accuracy of this cell's students: {accs}.")
with right:
    choices = ["best α per T"] + list(cfg.alphas)
    alpha_choice = st.selectbox("Accuracy against T at", choices, key="sweep_alpha_line", bind="query-params",
                                format_func=lambda a: a if isinstance(a, str) else f"α = {a:g}")
    present.chart(viz.sweep.accuracy_vs_temperature(cells, None if isinstance(alpha_choice, str) else alpha_choice,
                                                      controls=res.control_cells()),
                    width="stretch")
    if len(widths) > 1:
        st.caption("Hinton et al. (2015) observe that larger students tolerate (and benefit from) higher T, "
                   "while very small ones do better at moderate T: compare the lines.")

# the best cell's first student joins the session's models (the Trade-offs view compares them)
# once per run and session: a new network object on every rerun made Trade-offs time it again
def register_best() -> None:
    best_student = res.find(*best_full)[0]
    net = res.student_model(best_student, ModelConfig(hidden=student_default.hidden), ds.input_shape, ds.n_classes)
    if net is not None:
        state.register(records.sweep_best_record(res, labels[best_full], net, best_student, ds.name, ds.seed))


state.register_once(run_id, register_best)

st.subheader("Table")
table = pd.DataFrame(res.records())
tab_cells, tab_students = st.tabs(["per cell (mean ± std over seeds)", "per student"])
with tab_cells:
    csv_table.show(cells, key="sweep_csv_cells", settings=runs.run_settings(run_id), file_name=f"sweep_cells_{ds.name}_seed{ds.seed}.csv",
                   label="Download CSV (per cell)", labels={c: column_label(c) for c in cells.columns},
                   formats={c: "%.2f" for c in cells.columns if c.endswith(("_mean", "_std"))})
with tab_students:
    csv_table.show(table, key="sweep_csv", settings=runs.run_settings(run_id), file_name=f"sweep_{ds.name}_seed{ds.seed}.csv",
                   label="Download CSV (per student)", labels={c: column_label(c) for c in table.columns},
                   formats={"test_acc": "%.2f", "agreement": "%.2f", "val_acc": "%.2f", "kl_teacher": "%.4f",
                            "test_loss": "%.4f"})
