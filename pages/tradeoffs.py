"""Trade-offs: how small can the model get, and what does it cost? Accuracy against size and latency.

The size curve, the quantization panel (PTQ, and QAT by distillation) and the distill → prune →
quantize pipeline run as jobs (`kdcore.runkinds_compress`); the page submits them, watches them and
adds the models of their stored results to this session's models. Post-training quantization of a
model no run made (it cannot be rebuilt by a worker) is computed here: it takes well under a second.
"""


import pandas as pd
import streamlit as st
import torch

from kdcore import viz
from kdcore import runkinds_compress as rc
from kdcore import runkinds_families as rf
from kdcore.binary import binary_record
from kdcore.lowrank import LowRankConfig, low_rank_record
from kdcore.weightless import WeightlessConfig, weightless_record
from kdcore import tradeoffs as tr
from kdcore import bitwidths, latency, pipeline, quantize, sizecurve
from kdcore.distill import KDConfig
from kdcore.store import code_version
from kdcore.models import format_bytes
from kdcore.presets import default_kd, default_student
from kdcore.quantize import QUANT_BITS, QuantConfig
from kdcore.records import ModelRecord
from kdcore.runs import RunSpec
from kdcore.teachers import TeacherSpec
from kdcore.train import TrainConfig
from kdcore.text import plural
from ui import present
from ui import runs, state
from ui import table as csv_table
from ui import teacher as teacher_ui

SLOT_SIZES, SLOT_BITS, SLOT_PIPE = "tradeoffs_sizes", "tradeoffs_bits", "tradeoffs_pipe"
SLOT_WL, SLOT_BIN, SLOT_LR = "tradeoffs_weightless", "tradeoffs_binary", "tradeoffs_lowrank"

ds = state.dataset()
runs.register_workspace_students(ds)   # a reload keeps the Distill page's students in the lists
key = state.data_key(ds)
latencies: dict = state.per_user(state.TRADEOFFS_LATENCY_KEY)
panels: dict = state.per_user(state.TRADEOFFS_PANELS_KEY)
curve_add: dict = state.per_user(state.TRADEOFFS_SIZE_CURVE_ADDED_KEY)


def register_once(name: str, model, build) -> None:
    """Add the record `build()` unless this very model is already listed under `name` (no re-evaluation)."""
    old = state.models(ds).get(name)
    if old is None or old.model is not model:
        state.register(build())


def with_run(rec: ModelRecord, spec: dict, path: list) -> ModelRecord:
    rec.extra.update(run_spec=spec, run_path=path)
    return rec


def ended(slot: str, kind: str):
    """(run id, view, stored result) of the page's current run in `slot`; result None while it runs."""
    run_id = runs.current(slot, kind, ds.name, ds.seed)
    v = runs.view(run_id)
    if v is None or v.active or v.status not in ("finished", "stopped"):
        return run_id, v, None
    return run_id, v, runs.result(run_id)


def teacher_name_of(config: dict) -> str:
    return f"teacher {TeacherSpec.from_dict(config['teacher']).model.describe()}"


def about(rec: ModelRecord) -> dict:
    """What a run's config says of its source model, for names and tables (the record may be gone later)."""
    return {"name": rec.name, "role": rec.role, "recipe": rec.recipe, "accuracy": rec.accuracy, "bytes": rec.bytes,
            "sparsity": rec.extra.get("sparsity", 0.0)}


def source_record(a: dict) -> ModelRecord:
    return ModelRecord(a["name"], a["role"], None, {"accuracy": a["accuracy"], "bytes": a["bytes"]}, a["recipe"],
                       ds.name, ds.seed, extra={"sparsity": a["sparsity"]})


def quant_text(granularity: str, scale: str) -> str:
    return (f"{'per channel' if granularity == 'channel' else 'per tensor'}, "
            f"{'min.-error' if scale == 'mse' else 'max'} step")


def register_size_curve(curve, run_id: str) -> None:
    spec = runs.store().get(run_id).spec
    for i, rec in enumerate(sizecurve.size_curve_records(curve, teacher_name_of(spec.config))):
        register_once(rec.name, rec.model,
                      lambda rec=rec, i=i: with_run(rec, spec.to_dict(),
                                                    ["points", i // 2, "distilled" if i % 2 == 0 else "scratch"]))


def register_panel(source: ModelRecord, rows, settings: str, spec: dict | None) -> None:
    """Add a panel's quantized models (and the float QAT control) to the session's models."""
    t_test = teacher.logits["test"]
    for i, row in enumerate(rows):
        path = ["rows", i, "model"]
        if row.config is not None:
            detail = settings if row.method == "QAT" else ""

            def build(row=row, detail=detail, path=path):
                rec = bitwidths.quantized_record(source, row.model, row.config, row.method, ds, t_test, detail)
                return with_run(rec, spec, path) if spec else rec
            register_once(f"{row.config.describe()} {row.method} of {source.name}", row.model, build)
        elif row.method == "QAT":   # the float control: same distillation, no quantization
            def build(row=row, path=path):
                m = quantize.evaluate_sized(row.model, ds, t_test)
                return with_run(ModelRecord(f"float KD fine-tune of {source.name}", source.role, row.model, m,
                                            f"{source.recipe}; then {settings} at full precision", ds.name, ds.seed,
                                            extra={"source": source.name}), spec, path)
            register_once(f"float KD fine-tune of {source.name}", row.model, build)


def qat_settings(config: dict) -> str:
    if not config.get("qat"):
        return ""
    kd, train = config["kd"], config["train"]
    return (f"distilled {train['epochs']} epochs at lr {train['lr']:g} from {teacher_name_of(config)} "
            f"(T={kd['temperature']:g}, α={kd['alpha']:g})")


st.title("Trade-offs")
st.markdown("How small can the model get, and what does it cost? Every model made in this session "
            "(teacher, students, pruned and quantized copies) is a point: **test accuracy against size** "
            "(bytes in its honest encoding) and against **measured CPU latency**. The dashed line is the "
            "*Pareto frontier*: the models that no other model beats on both size and accuracy.")

teacher = teacher_ui.require(ds, key="tradeoffs")   # also lists a cached teacher among the session's models
t_name = teacher_ui.teacher_name(teacher)

student_cfg, student_train = default_student(ds.name)
kd_default: KDConfig = default_kd(ds.name)

# the stored results of this page's runs: their models join the session's models before section 1
curve_id, curve_view, curve = ended(SLOT_SIZES, "size_curve")
if curve is not None and curve_add.get(curve_id, True):
    register_size_curve(curve, curve_id)
bits_id, bits_view, run_panel = ended(SLOT_BITS, "quant_panel")
if run_panel is not None and key not in panels:
    bits_spec = runs.store().get(bits_id).spec
    register_panel(source_record(bits_spec.config["about"]), run_panel.rows, qat_settings(bits_spec.config),
                   bits_spec.to_dict())
pipe_id, pipe_view, pipe = ended(SLOT_PIPE, "prune_quantize")
if pipe is not None:
    pipe_spec = runs.store().get(pipe_id).spec
    pipe_source = source_record(pipe_spec.config["about"])
    for i, rec in enumerate(pipeline.pipeline_records(pipe.stages, pipe_source, QuantConfig(**pipe_spec.config["quant"]),
                                                ds)):
        register_once(rec.name, rec.model, lambda rec=rec, i=i: with_run(rec, pipe_spec.to_dict(),
                                                                          ["stages", i, "model"]))
wl_id, wl_view, wl = ended(SLOT_WL, "weightless")
if wl is not None:
    wl_spec = runs.store().get(wl_id).spec
    wl_about = wl_spec.config["about"]
    register_once(f"{wl.config.describe()} of {wl_about['name']}", wl.model,
                  lambda: with_run(weightless_record(wl, wl_about["name"], wl_about["recipe"], ds), wl_spec.to_dict(),
                                   ["model"]))
bin_id, bin_view, bin_pair = ended(SLOT_BIN, "binary_mlp")
if bin_pair is not None:
    bin_spec = runs.store().get(bin_id).spec
    shape = "-".join(map(str, bin_pair.hidden))
    for role, how in (("kd", f"KD from {teacher_name_of(bin_spec.config)}"), ("labels", "labels only")):
        bname = f"binary MLP {shape} ({how.split(' from')[0]}, seed {bin_spec.config['seed']})"
        register_once(bname, getattr(bin_pair, role),
                      lambda role=role, how=how, bname=bname: with_run(
                          binary_record(getattr(bin_pair, role), ds, f"±1 weights and activations, {shape}, "
                                        f"{bin_pair.epochs} epochs, {how}", bname), bin_spec.to_dict(), [role]))
lr_id, lr_view, lr_result = ended(SLOT_LR, "low_rank")
if lr_result is not None:
    lr_spec = runs.store().get(lr_id).spec
    lr_about = lr_spec.config["about"]
    for i, p in enumerate(lr_result.points):
        register_once(f"low rank ({p.config.describe()}) of {lr_about['name']}", p.model,
                      lambda p=p, i=i: with_run(low_rank_record(p, lr_about["name"], lr_about["recipe"], ds,
                                                                lr_result.finetune_epochs),
                                                lr_spec.to_dict(), ["points", i, "model"]))
records = state.models(ds)

# ---------------------------------------------------------------- 1 · all models
st.header("1 · Every model of this session")
missing = [r for r in records.values() if (r.name, id(r.model)) not in latencies]
if missing:
    with st.spinner(f"Measuring CPU latency of {len(missing)} model(s)…"):
        for r in missing:
            latencies[(r.name, id(r.model))] = latency.measure_latencies(r.model, ds.input_shape)
by_name = {r.name: latencies[(r.name, id(r.model))] for r in records.values()}
points = tr.tradeoff_points(records.values(), by_name)
teacher_point = next((p for p in points if p.name == t_name), None)

for line in tr.stakeholder_summary(points, teacher_point):
    st.markdown(f"- {line}")
if len(points) < 3:
    st.info("Few models so far: run the **size curve** below, distill a student on the *Distill* page, "
            "or quantize a model in section 3; each new model appears here.")

axis = st.radio("Accuracy against", list(viz.tradeoffs.AXES), horizontal=True, key="tradeoffs_axis", bind="query-params",
                format_func={"bytes": "size (bytes)", "latency_b1_ms": "latency, batch 1",
                             "latency_b256_ms": "latency, batch 256"}.get)
present.chart(viz.tradeoffs.frontier_figure(points, axis), width="stretch")
threads = next(iter(next(iter(by_name.values())).values())).threads if by_name else torch.get_num_threads()
st.caption(f"Latency: median of repeated forward passes on this machine's CPU ({threads} thread(s)), "
           "inference mode, after warm-up; measured once per model. Quantized models here hold "
           "*fake-quantized* float32 weights, and PyTorch on CPU runs them with the same float kernels: "
           "their latency is the float model's. Quantization shows on the **size** axis; a real speed-up "
           "needs integer kernels, and pruning one needs sparse kernels.")
table = pd.DataFrame([p.row() for p in points])
frontier = set(tr.pareto_front([p.bytes for p in points], [p.accuracy for p in points]))
table.insert(1, "on size frontier", [i in frontier for i in range(len(points))])
csv_table.show(table, key="tradeoffs_csv_models",
               settings={"dataset": ds.name, "split seed": ds.seed, "code version": code_version()}, file_name=f"tradeoffs_{ds.name}_seed{ds.seed}.csv",
               label="Download all models (CSV)", hide=["size (bytes)"],
               formats={"test accuracy (%)": "%.2f", "latency batch 1 (ms)": "%.4f",
                        "latency batch 256 (ms)": "%.3f"})

# ---------------------------------------------------------------- 2 · size curve
st.header("2 · Size curve: distilled vs scratch")
st.markdown("Students with one hidden layer of each width, each distilled from the teacher and, from the "
            "same initialization and batches, trained on labels alone "
            f"(T = {kd_default.temperature:g}, α = {kd_default.alpha:g}, "
            f"{100 * kd_default.labelled_fraction:g} % of the labels, the Distill page's defaults). "
            "If distillation helps, its curve lies up and to the left of the scratch curve.")
with st.form(f"tradeoffs_sizes_form_{ds.name}"):
    c1, c2, c3 = st.columns([2.6, 1, 1.6])
    widths = c1.multiselect("Hidden widths", [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
                            default=list(sizecurve.SIZE_WIDTHS), key="tradeoffs_sizes_widths", bind="query-params")
    curve_epochs = c2.number_input("Epochs", 1, 300, student_train.epochs, key="tradeoffs_sizes_epochs", bind="query-params")
    add_curve = c3.checkbox("Add them to section 1", value=True, key="tradeoffs_sizes_add", bind="query-params",
                            help="Plot the curve's students with the other models in section 1.")
    curve_pressed = st.form_submit_button("Run the size curve", type="primary", icon=":material/stacked_line_chart:")

if curve_pressed:
    if len(widths) < 1:
        st.error("Choose at least one width.")
    else:
        train_cfg = TrainConfig(**{**student_train.to_dict(), "epochs": int(curve_epochs)})
        run_id = runs.submit(RunSpec("size_curve", rc.size_curve_config(teacher.spec, widths, train_cfg, kd_default,
                                                                   ds.seed)), slot=SLOT_SIZES)
        curve_add[run_id] = add_curve
        st.rerun()   # the page shows the new run (or, if identical settings ran before, its students at once)

if curve_view is not None and curve_view.active:
    runs.watch(curve_id, key="tradeoffs_sizes", label="Size curve: distilled and scratch students",
               chart=lambda c: viz.common.live_curves(c, "Test accuracy of each finished width, live",
                                                   y_title="test accuracy (%)"))
elif curve is None:
    if curve_view is not None:
        runs.explain_end(curve_view, "size curve")
    st.info(f"Press **Run the size curve**: {len(sizecurve.SIZE_WIDTHS)} widths × 2 students; on *digits* it takes "
            "well under a minute.")
else:
    if not curve.done:
        st.warning(f"The size curve was stopped after {len(curve.points)} of {len(curve.widths)} widths; "
                   "the finished students are kept.")
    (st.success if any(p.gain >= 0.005 for p in curve.points) else st.info)(curve.summary())
    present.chart(viz.tradeoffs.size_curve_figure(curve.points, curve.teacher_metrics), width="stretch")
    curve_table = pd.DataFrame([p.row() for p in curve.points])
    csv_table.show(curve_table, key="tradeoffs_csv_sweep", settings=runs.run_settings(curve_id), file_name=f"size_curve_{ds.name}_seed{ds.seed}.csv",
                   label="Download the size curve (CSV)",
                   formats={"distilled accuracy (%)": "%.2f", "scratch accuracy (%)": "%.2f",
                            "gain (points)": "%+.2f"})
    st.caption(f"{curve.train.epochs} epochs per student, seed {curve.seed}; one run, so gaps of a point "
               "or two can be noise. Sizes are float32.")

# ---------------------------------------------------------------- 3 · quantization panel
st.header("3 · Quantization: bits against accuracy")
st.markdown("Weights stored with fewer bits: **post-training** (PTQ: round the trained weights, no "
            "training) against **quantization-aware distillation** (QAT: keep distilling from the teacher "
            "while the forward pass uses the quantized weights, gradients passed straight through). "
            "1 bit = binary weights (sign × one scale per channel); 2 bits = ternary {−Δ, 0, +Δ}. "
            "Biases stay float32; each scale costs 4 bytes.")
sources = [r for r in state.models(ds).values() if r.role != "quantized"]
names = [r.name for r in sources]
default_source = next((i for i, r in enumerate(sources) if r.role == "distilled"), 0)
with st.form(f"tradeoffs_bits_form_{ds.name}"):
    c1, c2 = st.columns([3, 2])
    source_name = c1.selectbox("Model", names, index=default_source, key="tradeoffs_bits_model", bind="query-params",
                               help="QAT trains, so it runs as a job: it needs a model made by a run (the teacher, "
                                    "Distill's students, the size curve's, pruned models). Any model can be "
                                    "quantized post-training.")
    bits_list = c2.multiselect("Bits", list(bitwidths.PANEL_BITS), default=list(bitwidths.PANEL_BITS), key="tradeoffs_bits", bind="query-params")
    c1, c2, c3, c4, c5 = st.columns(5)
    granularity = c1.radio("Scales", ["channel", "tensor"], key="tradeoffs_gran", bind="query-params",
                           format_func={"channel": "per channel", "tensor": "per tensor"}.get)
    scale = c2.radio("Step chosen by", ["mse", "max"], key="tradeoffs_scale", bind="query-params",
                     format_func={"mse": "min. error", "max": "max |w|"}.get,
                     help="max |w|: nothing clipped, error ≤ half a step. Min. error: clip outliers for a finer "
                          "step (much better at 2 bits).")
    do_qat = c3.toggle("Also QAT", value=True, key="tradeoffs_qat", bind="query-params")
    qat_epochs = c4.number_input("QAT epochs", 1, 200, 15, key="tradeoffs_qat_epochs", bind="query-params")
    qat_lr = c5.select_slider("QAT learning rate", [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2], value=1e-2,
                              key="tradeoffs_qat_lr", bind="query-params", format_func=lambda v: f"{v:g}")
    bits_pressed = st.form_submit_button("Quantize", type="primary", icon=":material/compress:")

if bits_pressed:
    source = state.models(ds).get(source_name)
    src = rc.record_source(source) if source is not None else None
    if not bits_list:
        st.error("Choose at least one bit width.")
    elif source is None:
        st.error("Choose a model.")
    elif src is None and do_qat:
        st.error(f"**{source_name}** was not made by a run, so QAT (which trains, as a job) cannot rebuild it. "
                 "Turn off **Also QAT** to quantize it post-training here, or choose a model made by a run.")
    elif src is None:   # post-training only: instant, computed here
        bits_sorted = sorted({int(b) for b in bits_list}, reverse=True)
        panels[key] = {"source": source, "rows": bitwidths.ptq_rows(source.model, ds, bits_sorted, granularity, scale),
                       "quant": quant_text(granularity, scale)}
        register_panel(source, panels[key]["rows"], "", None)
        st.rerun()
    else:
        qat_train = TrainConfig(**{**student_train.to_dict(), "epochs": int(qat_epochs), "lr": float(qat_lr)})
        cfg = rc.panel_config(ds, src, bits_list, granularity, scale, do_qat, teacher.spec, qat_train, kd_default)
        cfg["about"] = about(source)
        runs.submit(RunSpec("quant_panel", cfg), slot=SLOT_BITS)
        panels.pop(key, None)
        st.rerun()

panel = None
if key in panels:
    panel = panels[key]
elif bits_view is not None and bits_view.active:
    runs.watch(bits_id, key="tradeoffs_bits", label="Quantization panel (PTQ, then quantization-aware distillation)",
               chart=lambda c: viz.common.live_curves(c, "Test accuracy per bit width done, live",
                                                   y_title="test accuracy (%)"))
elif run_panel is not None:
    c = bits_spec.config
    panel = {"source": source_record(c["about"]), "rows": run_panel.rows, "quant": quant_text(c["granularity"],
                                                                                              c["scale"])}
    if not run_panel.complete:
        st.warning("The quantization panel was stopped; the bit widths that finished are shown.")
elif bits_view is not None:
    runs.explain_end(bits_view, "quantization panel")
if panel is None:
    if bits_view is None or not bits_view.active:
        st.info("Choose a model and press **Quantize**. PTQ is instant; QAT distills once per bit width.")
else:
    src, rows = panel["source"], panel["rows"]
    present.chart(viz.tradeoffs.bits_figure(rows, f"Test accuracy against bits: {src.name} ({panel['quant']})"),
                    width="stretch")
    float_acc = src.accuracy
    lines = []
    for method in ("PTQ", "QAT"):
        low = [r for r in rows if r.method == method and r.bits < 32]
        if low:
            worst = min(low, key=lambda r: r.bits)
            lines.append(f"{method} at {plural(worst.bits, 'bit')}: {100 * worst.accuracy:.1f} % "
                         f"({100 * (worst.accuracy - float_acc):+.1f} points against the float model's "
                         f"{100 * float_acc:.1f} %), {format_bytes(worst.bytes)} instead of {format_bytes(src.bytes)}.")
    for line in lines:
        st.markdown(f"- {line}")
    ctrl = next((r for r in rows if r.method == "QAT" and r.bits == 32), None)
    if ctrl is not None:
        st.caption(f"QAT at 32 bits is the same distillation without quantization ({100 * ctrl.accuracy:.1f} %): "
                   "the part of a QAT model's accuracy that comes from extra training, not from QAT.")
    bits_table = pd.DataFrame([r.row() for r in rows])
    csv_table.show(bits_table, key="tradeoffs_csv_bits", settings=runs.run_settings(bits_id), file_name=f"quantization_{ds.name}_seed{ds.seed}.csv",
                   label="Download the panel (CSV)", formats={"test accuracy (%)": "%.2f"})

# ---------------------------------------------------------------- 4 · pipeline
st.header("4 · Pipeline: distill → prune → quantize")
st.markdown("Take a (distilled) student, remove its smallest weights (global magnitude pruning), "
            "fine-tune it by distillation with the pruned weights held at zero, then quantize it. "
            "A pruned model is stored sparsely: the cheaper of *values + indices* and *bitmask + values*.")
pipe_sources = [r for r in state.models(ds).values()
                if r.role in ("distilled", "scratch", "teacher") and rc.record_source(r) is not None]
pipe_names = [r.name for r in pipe_sources]
with st.form(f"tradeoffs_pipe_form_{ds.name}"):
    c1, c2, c3, c4 = st.columns([3, 1, 1, 1])
    pipe_source_name = c1.selectbox(
        "Model", pipe_names, key="tradeoffs_pipe_model", bind="query-params",
        index=next((i for i, r in enumerate(pipe_sources) if r.role == "distilled"), 0),
        help="Models made by a run (the pipeline runs as a job, which rebuilds its model from that run).")
    pipe_sparsity = c2.select_slider("Sparsity", [0.5, 0.6, 0.7, 0.8, 0.9, 0.95], value=0.8,
                                     key="tradeoffs_pipe_sparsity", bind="query-params", format_func=lambda s: f"{100 * s:g} %")
    pipe_bits = c3.selectbox("Bits", list(QUANT_BITS), index=1, key="tradeoffs_pipe_bits", bind="query-params")
    pipe_epochs = c4.number_input("Fine-tune epochs (0 = none)", 0, 200, 10, key="tradeoffs_pipe_epochs", bind="query-params")
    pipe_pressed = st.form_submit_button("Prune and quantize", icon=":material/content_cut:")
if pipe_pressed and pipe_source_name is not None:
    source = state.models(ds)[pipe_source_name]
    quant = QuantConfig(int(pipe_bits), "channel", "mse")
    finetune = (TrainConfig(**{**student_train.to_dict(), "epochs": int(pipe_epochs), "lr": 3e-3})
                if pipe_epochs else None)
    cfg = rc.pipeline_config(teacher.spec, rc.record_source(source), float(pipe_sparsity), quant, finetune,
                             kd_default, ds.seed, source_recipe=source.recipe)
    cfg["about"] = about(source)
    runs.submit(RunSpec("prune_quantize", cfg), slot=SLOT_PIPE)
    st.rerun()
if pipe_view is not None and pipe_view.active:
    runs.watch(pipe_id, key="tradeoffs_pipe", label="Pruning, fine-tuning and quantizing",
               chart=lambda c: viz.common.live_curves(c, "Fine-tuning the pruned model: validation accuracy, live"))
elif pipe is not None:
    if not pipe.complete:
        st.warning(f"The fine-tuning was stopped after {pipe.epochs_run} epochs; the stages below are those "
                   "of the model as it was then.")
    st.success(" ".join(
        f"{s.stage.capitalize()}: {100 * s.metrics['accuracy']:.1f} %, {format_bytes(s.metrics['bytes'])} "
        f"({s.metrics['encoding']})." for s in pipe.stages) + f" The source: {100 * pipe_source.accuracy:.1f} %, "
        f"{format_bytes(pipe_source.bytes)}. Both are now points in section 1.")
elif pipe_view is not None:
    runs.explain_end(pipe_view, "pipeline")

# ---------------------------------------------------------------- 5 · more compression
more_active = any(v is not None for v in (wl_view, bin_view, lr_view))
with st.expander("More compression: Weightless, binary, low rank", expanded=more_active,
                 icon=":material/compress:"):
    st.markdown("Three more ways to shrink a network, each run as a job; their models join section 1's "
                "frontier. **Weightless** (Reagen et al. 2017) prunes, clusters the survivors and stores each layer's "
                "cluster indices in a Bloomier filter; **binary** MLPs (Hubara et al. 2016) keep ±1 weights and "
                "activations; **low rank** replaces each Linear layer by two from its truncated SVD.")
    rebuildable = [r for r in state.models(ds).values() if r.role != "binary" and rc.record_source(r) is not None]
    rb_names = [r.name for r in rebuildable]
    t_index = next((i for i, r in enumerate(rebuildable) if r.role == "teacher"), 0)
    tab_wl, tab_bin, tab_lr = st.tabs(["Weightless", "Binary MLP", "Low rank"])

    with tab_wl:
        with st.form(f"tradeoffs_wl_form_{ds.name}"):
            c1, c2, c3 = st.columns([3, 1, 1])
            wl_source_name = c1.selectbox("Model", rb_names, index=t_index, key="tradeoffs_wl_model", bind="query-params",
                                          help="A model made by a run (the job rebuilds it); the teacher by default.")
            wl_sparsity = c2.select_slider("Sparsity", [0.5, 0.7, 0.8, 0.9, 0.95, 0.98], value=0.9,
                                           key="tradeoffs_wl_sparsity", bind="query-params", format_func=lambda s: f"{100 * s:g} %")
            wl_clusters = c3.selectbox("Clusters V", [4, 8, 16, 32, 64], index=2, key="tradeoffs_wl_clusters", bind="query-params")
            c1, c2, c3, c4 = st.columns(4)
            wl_t = c1.slider("Bits per cell t", 4, 16, 10, key="tradeoffs_wl_t", bind="query-params",
                             help="Spurious weights at pruned positions: V / 2^t of them.")
            wl_k = c2.selectbox("Hash functions k", [2, 3, 4], index=1, key="tradeoffs_wl_k", bind="query-params")
            wl_prune_epochs = c3.number_input("Retrain after pruning (epochs)", 0, 100, 10,
                                              key="tradeoffs_wl_prune_epochs", bind="query-params")
            wl_epochs = c4.number_input("Retrain after each layer (epochs)", 0, 100, 5, key="tradeoffs_wl_epochs", bind="query-params")
            wl_pressed = st.form_submit_button("Encode (Weightless)", icon=":material/filter_alt:")
        if wl_pressed:
            if wl_clusters > 2 ** wl_t:
                st.error(f"{wl_clusters} cluster indices do not fit in t = {wl_t} bits.")
            elif wl_source_name is not None:
                src = state.models(ds)[wl_source_name]
                wl_cfg = WeightlessConfig(sparsity=float(wl_sparsity), n_clusters=int(wl_clusters), t=int(wl_t),
                                          k=int(wl_k), prune_epochs=int(wl_prune_epochs),
                                          retrain_epochs=int(wl_epochs))
                cfg = rf.weightless_config(teacher.spec, wl_cfg, ds.seed, rc.record_source(src))
                cfg["about"] = about(src)
                runs.submit(RunSpec("weightless", cfg), slot=SLOT_WL)
                st.rerun()
        if wl_view is not None and wl_view.active:
            runs.watch(wl_id, key="tradeoffs_wl", label="Weightless: prune, then encode layer by layer",
                       chart=lambda c: viz.common.live_curves(c, "Test accuracy after each stage, live",
                                                           y_title="test accuracy (%)", x_title="stage"))
        elif wl is not None:
            if not wl.finished:
                st.warning(f"The encoding was stopped after {len(wl.layers)} layer(s); the layers not encoded are "
                           "counted as pruned float32 layers.")
            fp = wl.fp_summary()
            pq4 = wl.prune_quantize.get(4)
            st.success(f"{wl.config.describe()} of **{wl_about['name']}**: {format_bytes(wl.bytes)} "
                       f"({wl.ratio_vs_float32:.1f} × smaller than float32), test accuracy "
                       f"{100 * wl.metrics['accuracy']:.1f} % (the source: {100 * wl_about['accuracy']:.1f} %). "
                       f"Spurious weights: {100 * fp['measured']:.2f} % of the pruned positions, theory V/2^t "
                       f"{100 * fp['theory']:.2f} %."
                       + (f" The same pruned model at 4 bits: {format_bytes(pq4['bytes'])}, "
                          f"{100 * pq4['accuracy']:.1f} %." if pq4 else ""))
            st.caption("The paper reports up to 496 × over float32 and 1.51 × over Deep Compression on its networks: "
                       "those numbers are theirs. The ratios here are measured on this model in this session, with "
                       "every bit counted (filter cells, float32 centroids, a header per layer, float32 biases).")
            st.markdown("**Per layer**: false-positive rate measured against the theory V/2^t, sizes in bits.")
            csv_table.show(pd.DataFrame([l.row() for l in wl.layers]), key="tradeoffs_csv_wl_layers",
                           file_name=f"weightless_layers_{ds.name}_seed{ds.seed}.csv",
                           formats={"FP measured": "%.4f", "FP theory V/2^t": "%.4f", "ratio": "%.1f"})
            st.markdown("**Accuracy** after each stage: pruning, encoding each layer, retraining the later ones.")
            st.dataframe(pd.DataFrame([s.row() for s in wl.stages]), hide_index=True, placeholder="—", width="stretch",
                         column_config={"test accuracy (%)": st.column_config.NumberColumn(format="%.2f")})
            st.markdown("**Against prune + quantize** (the same pruned model, post-training quantized):")
            st.dataframe(pd.DataFrame(wl.summary_rows()), hide_index=True, placeholder="—", width="stretch",
                         column_config={"test accuracy (%)": st.column_config.NumberColumn(format="%.2f"),
                                        "ratio vs float32": st.column_config.NumberColumn(format="%.1f")})
        elif wl_view is not None:
            runs.explain_end(wl_view, "Weightless encoding")

    with tab_bin:
        with st.form(f"tradeoffs_bin_form_{ds.name}"):
            c1, c2, c3, c4 = st.columns(4)
            bin_width = c1.select_slider("Hidden width", [16, 32, 64, 128, 256, 512, 1024], value=256,
                                         key="tradeoffs_bin_width", bind="query-params")
            bin_depth = c2.slider("Hidden layers", 1, 3, 2, key="tradeoffs_bin_depth", bind="query-params")
            bin_epochs = c3.number_input("Epochs", 1, 300, 20, key="tradeoffs_bin_epochs", bind="query-params")
            bin_latency = c4.toggle("Measure XNOR latency", value=True, key="tradeoffs_bin_latency", bind="query-params")
            bin_pressed = st.form_submit_button("Train binary MLPs", icon=":material/exposure:")
        if bin_pressed:
            cfg = rf.binary_config(teacher.spec, [int(bin_width)] * int(bin_depth),
                                   TrainConfig(epochs=int(bin_epochs), batch_size=64, lr=3e-3), ds.seed,
                                   kd_default.temperature, kd_default.alpha, bool(bin_latency))
            runs.submit(RunSpec("binary_mlp", cfg), slot=SLOT_BIN)
            st.rerun()
        if bin_view is not None and bin_view.active:
            runs.watch(bin_id, key="tradeoffs_bin", label="Binary MLPs: labels and KD, same initialization",
                       chart=lambda c: viz.common.live_curves(c, "Binary MLPs: validation accuracy, live"))
        elif bin_pair is not None:
            if not bin_pair.complete:
                st.warning(f"Stopped after {bin_pair.kd_history.epochs_run} of {bin_pair.epochs} epochs.")
            gain = bin_pair.kd_metrics["accuracy"] - bin_pair.labels_metrics["accuracy"]
            st.markdown(f"Binary MLP {shape}, {bin_pair.epochs} epochs: **{100 * bin_pair.kd_metrics['accuracy']:.1f} %** "
                        f"with KD against {100 * bin_pair.labels_metrics['accuracy']:.1f} % on the labels alone "
                        f"({100 * gain:+.1f} points, one seed), {format_bytes(bin_pair.bytes)} against "
                        f"{format_bytes(bin_pair.float_bytes)} for a float32 MLP of the same shape.")
            st.dataframe(pd.DataFrame([
                {"model": f"binary MLP {shape}, {how}", "test accuracy (%)": 100 * m["accuracy"],
                 "size": format_bytes(m["bytes"]), "bytes": m["bytes"]}
                for how, m in (("KD", bin_pair.kd_metrics), ("labels only", bin_pair.labels_metrics))]
                + [{"model": f"float32 MLP {shape} (size only)", "test accuracy (%)": float("nan"),
                    "size": format_bytes(bin_pair.float_bytes), "bytes": bin_pair.float_bytes}]),
                hide_index=True, width="stretch",
                column_config={"test accuracy (%)": st.column_config.NumberColumn(format="%.2f")})
            if bin_pair.latency:
                st.dataframe(pd.DataFrame([l.row() for l in bin_pair.latency]), hide_index=True, placeholder="—", width="stretch")
                slower = [l for l in bin_pair.latency if l.xnor_ms > l.float_mlp_ms]
                if slower:
                    st.info("On this CPU the XNOR-popcount forward (numpy) is **slower** than torch's float MLP "
                            "at batch " + ", ".join(f"{l.batch_size} ({l.xnor_ms:.3f} against {l.float_mlp_ms:.3f} ms)"
                                                    for l in slower)
                            + ": the bits save memory here, not time. A speed-up needs fused bit kernels.")
                else:
                    st.success("On this CPU the XNOR-popcount forward is faster than torch's float MLP at every "
                               "batch size measured.")
        elif bin_view is not None:
            runs.explain_end(bin_view, "binary MLP training")

    with tab_lr:
        with st.form(f"tradeoffs_lr_form_{ds.name}"):
            c1, c2 = st.columns([3, 2])
            lr_source_name = c1.selectbox("Model", rb_names, index=t_index, key="tradeoffs_lr_model", bind="query-params")
            lr_ranks = c2.multiselect("Ranks", [1, 2, 4, 8, 16, 32, 64, 128], default=[4, 8, 16, 32, 64],
                                      key="tradeoffs_lr_ranks", bind="query-params")
            c1, c2 = st.columns(2)
            lr_energies = c1.multiselect("Energy fractions", [0.5, 0.8, 0.9, 0.95, 0.99], default=[0.9],
                                         key="tradeoffs_lr_energy", bind="query-params", format_func=lambda e: f"{100 * e:g} %",
                                         help="Per layer the smallest rank keeping this share of Σ s².")
            lr_epochs = c2.number_input("Fine-tune epochs (KD; 0 = none)", 0, 100, 5, key="tradeoffs_lr_epochs", bind="query-params")
            lr_pressed = st.form_submit_button("Factorize", icon=":material/view_week:")
        if lr_pressed:
            settings = ([LowRankConfig(rank=int(r), energy=None) for r in sorted(lr_ranks)]
                        + [LowRankConfig(energy=float(e)) for e in sorted(lr_energies)])
            if not settings:
                st.error("Choose at least one rank or energy fraction.")
            elif lr_source_name is not None:
                src = state.models(ds)[lr_source_name]
                ft = TrainConfig(epochs=int(lr_epochs), batch_size=64, lr=1e-3) if lr_epochs else None
                cfg = rf.low_rank_config(teacher.spec, settings, ft, ds.seed, rc.record_source(src),
                                         kd_default.temperature, kd_default.alpha)
                cfg["about"] = about(src)
                runs.submit(RunSpec("low_rank", cfg), slot=SLOT_LR)
                st.rerun()
        if lr_view is not None and lr_view.active:
            runs.watch(lr_id, key="tradeoffs_lr", label="Low rank: factorize, then fine-tune",
                       chart=lambda c: viz.common.live_curves(c, "Test accuracy per setting, live",
                                                           y_title="test accuracy (%)", x_title="setting"))
        elif lr_result is not None:
            if not lr_result.complete:
                st.warning(f"Stopped after {len(lr_result.points)} setting(s).")
            lr_rows = [p.row() for p in lr_result.points]
            present.chart(viz.tradeoffs.low_rank_figure(lr_rows, f"Low rank of {lr_about['name']}: test accuracy "
                                                    "against size"), width="stretch")
            csv_table.show(pd.DataFrame(lr_rows), key="tradeoffs_csv_lr",
                           file_name=f"low_rank_{ds.name}_seed{ds.seed}.csv",
                           formats={"accuracy before fine-tuning (%)": "%.2f",
                                    "accuracy after fine-tuning (%)": "%.2f"})
            st.caption(f"The source: {100 * lr_result.source_accuracy:.1f} %, {format_bytes(lr_result.source_bytes)} "
                       "(float32). A layer is factorized only where two factors hold fewer weights.")
        elif lr_view is not None:
            runs.explain_end(lr_view, "low-rank comparison")
