"""Hinton MNIST: the paper's MNIST experiment in one click, its figures next to ours."""

import pandas as pd
import streamlit as st

from kdcore import userdata, viz
from kdcore import device as devices
from kdcore.data import DatasetUnavailable
from kdcore.jobs import UNSTARTED
from kdcore.hinton import PAPER, PRESETS, HintonResult, default_schedule, preset_dataset
from kdcore import records
from kdcore.runkinds_paper import hinton_config
from kdcore.runs import RunSpec
from kdcore.transfer import bias_curve
from ui import present
from ui import frame
from ui import runs, state
from ui.fmt import delta

SLOT = "hinton"                 # the page's current Hinton MNIST run, per seed
SCHEDULES = {"cpu": "CPU (short)", "full": "full (long)", "tiny": "tiny (seconds, small nets: a smoke test)"}


st.title("Hinton MNIST")
st.markdown(
    "Hinton, Vinyals & Dean (2015), section 3. A **teacher** 784-1200-1200-10 with dropout (0.2 on the "
    "inputs, 0.5 on hidden units) and inputs jittered by up to ±2 pixels; a **student** 784-800-800-10 "
    "without any regularization, trained once on the hard labels and once on the teacher's soft targets "
    "at **T = 20**; then the distilled student again, on a transfer set with **no 3 at all**, and the "
    "bias of its 3 raised afterwards.")
if userdata.is_user_dataset(state.dataset_name()):
    st.info(f"This page replays the paper's MNIST experiment: it always uses MNIST, not the dataset chosen in "
            f"the sidebar ({state.dataset_label(state.dataset_name())}). Your dataset works on Distill, "
            "Temperature, Sweep, Ensembles, Specialists, Transfer sets, Prune and Trade-offs.")

seed = state.seed()
has_gpu = devices.gpu_available()
with st.form("hinton_form"):
    c1, c2 = st.columns([2, 3])
    # with a GPU the full schedule is the default (minutes there); on a CPU the short one
    schedule = c1.radio("Schedule", list(SCHEDULES), format_func=SCHEDULES.get, key="hinton_schedule", bind="query-params",
                        index=list(SCHEDULES).index(default_schedule()))
    use_gpu = c1.toggle("Train on the GPU", value=True, key="hinton_gpu", bind="query-params",
                        help=devices.describe_device("cuda")) if has_gpu else False
    c2.markdown("\n".join(f"- **{k}**: {p.description}" for k, p in PRESETS.items()))
    c2.caption(("A GPU is present (" + devices.describe_device("cuda") + "): the preset trains there and "
                "defaults to the full schedule." if has_gpu else
                "No GPU here: the preset trains on the " + devices.describe_device("cpu") +
                " and defaults to the short schedule; with a GPU it would default to the full one.") +
               f" The same run from a terminal: `python -m kdcore hinton-mnist --schedule {schedule} "
               f"--seed {seed}`. The teacher is cached: a second run skips it.")
    run_pressed = st.form_submit_button("Run the Hinton MNIST experiment", type="primary",
                                        icon=":material/play_arrow:")
device = "cuda" if use_gpu else "cpu"

preset = PRESETS[schedule]
try:
    preset_dataset(preset, seed)   # only to say now, before any run, when the MNIST files are missing
except DatasetUnavailable as err:
    st.error(f"**MNIST could not be loaded.** {err}")
    st.info("This page needs the MNIST files; every other page works with the built-in *digits*.")
    if getattr(err, "detail", ""):
        with st.expander("Technical detail"):
            st.code(err.detail, language=None)
    frame.stop()

if run_pressed:
    try:
        devices.resolve_device(device)
    except devices.DeviceUnavailable as err:
        st.error(f"**The GPU cannot be used:** {err}. Switch *Train on the GPU* off to run on the CPU.")
        frame.stop()
    runs.submit(RunSpec("hinton_mnist", hinton_config(preset, seed, device)), slot=SLOT)

st.divider()
run_id = runs.current(SLOT, "hinton_mnist", "mnist", seed)
res: HintonResult | None = runs.watched_result(run_id, "hinton", "Hinton MNIST", "Hinton MNIST experiment",
                                               "Validation accuracy, live")
v = runs.view(run_id)
if v is not None and v.status == "failed" and "out of memory" in (v.error or "") and \
        runs.store().get(run_id).config.get("device") == "cuda":
    st.info("Close other programs using the GPU, or switch *Train on the GPU* off to run on the CPU.")
if v is not None and v.status == "stopped" and v.error != UNSTARTED:   # (explain_end said that one)
    if res is None:
        st.warning("The experiment was stopped before its teacher finished training; nothing was kept "
                   "(a stopped teacher is not kept).")
    else:
        stage = "omitted" if "omitted" in res.histories else "students"
        st.warning(f"The experiment was stopped during the {stage} stage; the numbers below are "
                   "those of the models as they were then.")
if res is None:
    st.info("Press **Run the Hinton MNIST experiment**. The CPU schedule takes a few minutes; the tiny "
            "one seconds.")
    frame.stop()

# ---- results: nothing below trains ----
for model_record in records.hinton_records(res, runs.store().get(run_id).spec.to_dict()):
    state.register(model_record)
p = res.preset
st.subheader(f"Paper vs ours ({p.name} schedule, seed {res.seed})")
if res.stopped:
    st.warning("Stopped early: partly trained models.")
if p.name == "tiny":
    st.info("The tiny schedule uses small nets and a slice of MNIST: its numbers only show that the "
            "pipeline works, they are not comparable with the paper's.")
rows = pd.DataFrame(res.rows())
st.dataframe(rows, hide_index=True, placeholder="—", column_config={"ours (error %)": st.column_config.NumberColumn(format="%.2f")})
st.caption(f"Errors on {res.n_test:,} test images ({res.n_test_class} of them 3s); trained on {res.device}. "
           "The paper trained for far longer (SGD, many epochs); ours uses AdamW with a cosine schedule, so "
           "the gaps matter more than the absolute counts." +
           (" Teacher loaded from the cache." if res.teacher_from_cache else ""))

keys = [k for k in ("teacher", "hard", "distilled", "omitted", "omitted_bias") if k in res.errors]
labels = {"teacher": "teacher", "hard": "student, hard labels", "distilled": "student, soft T=20",
          "omitted": "distilled, no 3s", "omitted_bias": "… + bias on 3"}
present.chart(viz.hinton.errors_bars({k: res.errors[k] for k in keys}, PAPER, labels, res.n_test), width="stretch")

if "hard" in res.errors and "distilled" in res.errors:
    d, h = res.errors["distilled"], res.errors["hard"]
    if d < h:
        st.success(f"As in the paper, the distilled student makes fewer errors than the same net on hard "
                   f"labels ({d} vs {h}; the paper: {PAPER['distilled']} vs {PAPER['hard']}).")
    else:
        st.warning(f"Here the distilled student is not better than the hard-label one ({d} vs {h}); the "
                   "paper's gap needs its long schedule, where the unregularized student overfits.")

if res.omitted_test_logits is not None:
    st.subheader("The omitted 3")
    c = p.omitted_class
    bias = st.slider(f"Bias added to the {c}'s logit", -2.0, 15.0, float(min(max(round(res.errors["bias"], 1), -2.0), 15.0)), 0.1,
                     key="hinton_bias", bind="query-params", help="Re-scores stored test logits; nothing is retrained.")
    grid = [x / 10 for x in range(-20, 151)]
    curve = bias_curve(res.omitted_test_logits, res.y_test, c, grid)
    now = bias_curve(res.omitted_test_logits, res.y_test, c, [bias])
    m1, m2 = st.columns(2)
    m1.metric("Test errors", int(now.errors[0]),
              **delta(int(now.errors[0]) - res.errors['omitted'], "vs b = 0", 0, inverse=True, unit=""))
    m2.metric(f"… of which on {c}s", int(now.class_errors[0]),
              **delta(int(now.class_errors[0]) - res.errors['omitted_on_class'], "vs b = 0", 0, inverse=True, unit=""))
    present.chart(viz.hinton.bias_errors(grid, curve.errors, curve.class_errors, c, bias, PAPER["omitted_bias"],
                                           PAPER["bias"], res.n_test), width="stretch")
    st.caption(f"Automatic b = {res.errors['bias']:.2f}: the 3 is then predicted on validation inputs as "
               f"often as the teacher predicts it (no labels used). The best b on a 0.1 grid, judged on the test "
               f"set, is {res.best_bias:g} ({res.best_bias_errors} errors); the paper chose its 3.5 on the test set.")

if res.histories:
    present.chart(viz.common.training_curves({k: v for k, v in res.histories.items() if v}, "val_acc",
                                            "Validation accuracy per epoch"), width="stretch")
