"""Trade-offs: how small can the model get, and what does it cost? Accuracy against size and latency."""

import pandas as pd
import streamlit as st
import torch

from kdcore import tradeoffs as tr
from kdcore.distill import KDConfig
from kdcore.models import format_bytes
from kdcore.presets import default_kd, default_student
from kdcore.quantize import QUANT_BITS, QuantConfig
from kdcore.registry import ModelRecord
from kdcore.train import TrainConfig
from ui import state
from ui import table as csv_table
from ui import teacher as teacher_ui
from ui.live import LiveProgress

LATENCY = "tradeoffs_latency"        # (record name, id(model)) -> {batch size: Latency}; measured once
SWEEPS = "tradeoffs_sweeps"          # (dataset, seed) -> finished (or stopped) SizeSweep
SWEEP_LIVE = "tradeoffs_sweep_live"  # (SizeSweep, teacher name, register?) while a sweep runs
BITS = "tradeoffs_panels"            # (dataset, seed) -> {"source", "rows", "settings"}
BITS_LIVE = "tradeoffs_bits_live"    # the panel in progress, kept so a stop loses nothing
PIPE_MSG = "tradeoffs_pipeline_msg"  # last pipeline outcome, shown after the rerun

ds = state.dataset()
key = (ds.name, ds.seed)
latencies: dict = st.session_state.setdefault(LATENCY, {})
sweeps: dict = st.session_state.setdefault(SWEEPS, {})
panels: dict = st.session_state.setdefault(BITS, {})


def register_sweep(sweep: tr.SizeSweep, teacher_name: str, add: bool) -> None:
    sweeps[(sweep.dataset.name, sweep.dataset.seed)] = sweep
    if add:
        for rec in tr.sweep_records(sweep, teacher_name):
            state.register(rec)


def register_panel(panel: dict) -> None:
    """Keep the panel and add its quantized models (and the float control) to the session's models."""
    panels[key] = panel
    source: ModelRecord = panel["source"]
    t_test = panel["teacher_test"]
    for row in panel["rows"]:
        if row.config is not None:
            state.register(tr.quantized_record(source, row.model, row.config, row.method, ds, t_test,
                                               panel["settings"] if row.method == "QAT" else ""))
        elif row.method == "QAT":   # the float control: same distillation, no quantization
            m = tr.evaluate_sized(row.model, ds, t_test)
            state.register(ModelRecord(f"float KD fine-tune of {source.name}", source.role, row.model, m,
                                       f"{source.recipe}; then {panel['settings']} at full precision",
                                       ds.name, ds.seed, extra={"source": source.name}))


# Work that ended without finishing (Stop, or another widget pressed) keeps what was done.
interrupted = st.session_state.pop(SWEEP_LIVE, None)
if interrupted is not None:
    sweep, t_name, add = interrupted
    if (sweep.dataset.name, sweep.dataset.seed) == key and sweep.points:
        register_sweep(sweep, t_name, add)
    st.warning(f"The size sweep was stopped after {len(sweep.points)} of {len(sweep.widths)} widths; "
               "the finished students are kept.")
interrupted = st.session_state.pop(BITS_LIVE, None)
if interrupted is not None and interrupted["dataset"] == key:
    register_panel(interrupted)
    st.warning("The quantization panel was stopped; the bit widths that finished are shown.")

st.title("Trade-offs")
st.markdown("How small can the model get, and what does it cost? Every model made in this session "
            "(teacher, students, pruned and quantized copies) is a point: **test accuracy against size** "
            "(bytes in its honest encoding) and against **measured CPU latency**. The dashed line is the "
            "*Pareto frontier*: the models that no other model beats on both size and accuracy.")

teacher = teacher_ui.require(ds, key="tradeoffs")   # also lists a cached teacher among the session's models
t_name = teacher_ui.teacher_name(teacher)
records = state.models(ds)

student_cfg, student_train = default_student(ds.name)
kd_default: KDConfig = default_kd(ds.name)

# ---------------------------------------------------------------- 1 · all models
st.header("1 · Every model of this session")
missing = [r for r in records.values() if (r.name, id(r.model)) not in latencies]
if missing:
    with st.spinner(f"Measuring CPU latency of {len(missing)} model(s)…"):
        for r in missing:
            latencies[(r.name, id(r.model))] = tr.measure_latencies(r.model, ds.input_shape)
by_name = {r.name: latencies[(r.name, id(r.model))] for r in records.values()}
points = tr.tradeoff_points(records.values(), by_name)
teacher_point = next((p for p in points if p.name == t_name), None)

for line in tr.stakeholder_summary(points, teacher_point):
    st.markdown(f"- {line}")
if len(points) < 3:
    st.info("Few models so far: run the **size sweep** below, distill a student on the *Distill* page, "
            "or quantize a model in section 3; each new model appears here.")

axis = st.radio("Accuracy against", list(tr.AXES), horizontal=True, key="tradeoffs_axis",
                format_func={"bytes": "size (bytes)", "latency_b1_ms": "latency, batch 1",
                             "latency_b256_ms": "latency, batch 256"}.get)
st.plotly_chart(tr.frontier_figure(points, axis), width="stretch")
threads = next(iter(next(iter(by_name.values())).values())).threads if by_name else torch.get_num_threads()
st.caption(f"Latency: median of repeated forward passes on this machine's CPU ({threads} thread(s)), "
           "inference mode, after warm-up; measured once per model. Quantized models here hold "
           "*fake-quantized* float32 weights, and PyTorch on CPU runs them with the same float kernels: "
           "their latency is the float model's. Quantization shows on the **size** axis; a real speed-up "
           "needs integer kernels, and pruning one needs sparse kernels.")
table = pd.DataFrame([p.row() for p in points])
frontier = set(tr.pareto_front([p.bytes for p in points], [p.accuracy for p in points]))
table.insert(1, "on size frontier", [i in frontier for i in range(len(points))])
csv_table.show(table, key="tradeoffs_csv_models", file_name=f"tradeoffs_{ds.name}_seed{ds.seed}.csv",
               label="Download all models (CSV)", hide=["size (bytes)"],
               formats={"test accuracy (%)": "%.2f", "latency batch 1 (ms)": "%.4f",
                        "latency batch 256 (ms)": "%.3f"})

# ---------------------------------------------------------------- 2 · size sweep
st.header("2 · Size sweep: distilled vs scratch")
st.markdown("Students with one hidden layer of each width, each distilled from the teacher and, from the "
            "same initialization and batches, trained on labels alone "
            f"(T = {kd_default.temperature:g}, α = {kd_default.alpha:g}, "
            f"{100 * kd_default.labelled_fraction:g} % of the labels, the Distill page's defaults). "
            "If distillation helps, its curve lies up and to the left of the scratch curve.")
with st.form(f"tradeoffs_sweep_form_{ds.name}"):
    c1, c2, c3 = st.columns([3, 1, 1])
    widths = c1.multiselect("Hidden widths", [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
                            default=list(tr.SWEEP_WIDTHS), key="tradeoffs_sweep_widths")
    sweep_epochs = c2.number_input("Epochs", 1, 300, student_train.epochs, key="tradeoffs_sweep_epochs")
    add_sweep = c3.checkbox("Add the students to section 1", value=True, key="tradeoffs_sweep_add")
    sweep_pressed = st.form_submit_button("Run size sweep", type="primary", icon=":material/stacked_line_chart:")

if sweep_pressed:
    if len(widths) < 1:
        st.error("Choose at least one width.")
    else:
        train_cfg = TrainConfig(**{**student_train.to_dict(), "epochs": int(sweep_epochs)})
        sweep = tr.SizeSweep(ds, teacher.logits, teacher.metrics, widths, train_cfg, kd_default, seed=ds.seed)
        st.session_state[SWEEP_LIVE] = (sweep, t_name, add_sweep)
        live = LiveProgress(f"Size sweep: {len(sweep.widths)} widths × 2 students…", key="tradeoffs_sweep")

        def on_epoch(width, log_d, log_s):
            done = len(sweep.points) * train_cfg.epochs + log_d.epoch
            live.update(done / sweep.total_epochs,
                        f"Width {width} ({len(sweep.points) + 1}/{len(sweep.widths)}), epoch "
                        f"{log_d.epoch}/{train_cfg.epochs} · validation accuracy: distilled "
                        f"{100 * log_d.val_acc:.1f} %, scratch {100 * log_s.val_acc:.1f} %")

        def on_student(point):
            live.update(len(sweep.points) * train_cfg.epochs / sweep.total_epochs,
                        f"Width {point.width} done: distilled {100 * point.distilled_accuracy:.1f} %, "
                        f"scratch {100 * point.scratch_accuracy:.1f} %",
                        tr.sweep_figure(sweep.points, teacher.metrics))

        sweep.run(on_student=on_student, on_epoch=on_epoch)
        st.session_state.pop(SWEEP_LIVE, None)
        live.clear()
        register_sweep(sweep, t_name, add_sweep)
        st.rerun()   # redraw section 1 with the new students

sweep = sweeps.get(key)
if sweep is None:
    st.info(f"Press **Run size sweep**: {len(tr.SWEEP_WIDTHS)} widths × 2 students; on *digits* it takes "
            "well under a minute.")
else:
    (st.success if any(p.gain >= 0.005 for p in sweep.points) else st.info)(sweep.summary())
    st.plotly_chart(tr.sweep_figure(sweep.points, teacher.metrics), width="stretch")
    sweep_table = pd.DataFrame([p.row() for p in sweep.points])
    csv_table.show(sweep_table, key="tradeoffs_csv_sweep", file_name=f"size_sweep_{ds.name}_seed{ds.seed}.csv",
                   label="Download the sweep (CSV)",
                   formats={"distilled accuracy (%)": "%.2f", "scratch accuracy (%)": "%.2f",
                            "gain (points)": "%+.2f"})
    st.caption(f"{sweep.train.epochs} epochs per student, seed {sweep.seed}; one run, so gaps of a point "
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
    source_name = c1.selectbox("Model", names, index=default_source, key="tradeoffs_bits_model")
    bits_list = c2.multiselect("Bits", list(tr.PANEL_BITS), default=list(tr.PANEL_BITS), key="tradeoffs_bits")
    c1, c2, c3, c4, c5 = st.columns(5)
    granularity = c1.radio("Scales", ["channel", "tensor"], key="tradeoffs_gran",
                           format_func={"channel": "per channel", "tensor": "per tensor"}.get)
    scale = c2.radio("Step chosen by", ["mse", "max"], key="tradeoffs_scale",
                     format_func={"mse": "min. error", "max": "max |w|"}.get,
                     help="max |w|: nothing clipped, error ≤ half a step. Min. error: clip outliers for a finer "
                          "step (much better at 2 bits).")
    do_qat = c3.toggle("Also QAT", value=True, key="tradeoffs_qat")
    qat_epochs = c4.number_input("QAT epochs", 1, 200, 15, key="tradeoffs_qat_epochs")
    qat_lr = c5.select_slider("QAT learning rate", [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2], value=1e-2,
                              key="tradeoffs_qat_lr", format_func=lambda v: f"{v:g}")
    bits_pressed = st.form_submit_button("Quantize", type="primary", icon=":material/compress:")

if bits_pressed:
    if not bits_list:
        st.error("Choose at least one bit width.")
    else:
        source = state.models(ds)[source_name]
        qat_train = TrainConfig(**{**student_train.to_dict(), "epochs": int(qat_epochs), "lr": float(qat_lr)})
        settings = (f"distilled {int(qat_epochs)} epochs at lr {qat_lr:g} from {t_name} "
                    f"(T={kd_default.temperature:g}, α={kd_default.alpha:g})")
        bits_sorted = sorted({int(b) for b in bits_list}, reverse=True)
        panel = {"dataset": key, "source": source, "rows": [], "settings": settings,
                 "teacher_test": teacher.logits["test"],
                 "quant": f"{'per channel' if granularity == 'channel' else 'per tensor'}, "
                          f"{'min.-error' if scale == 'mse' else 'max'} step"}
        panel["rows"] += tr.ptq_rows(source.model, ds, bits_sorted, granularity, scale)
        if do_qat:
            st.session_state[BITS_LIVE] = panel
            live = LiveProgress(f"Quantization-aware distillation of {source.name}…", key="tradeoffs_bits")
            total = len(bits_sorted) * qat_train.epochs

            def on_epoch(bits, log):
                done = sum(r.method == "QAT" for r in panel["rows"]) * qat_train.epochs + log.epoch
                live.update(done / total, f"{bits} bits: epoch {log.epoch}/{log.epochs} · validation "
                                          f"accuracy {100 * log.val_acc:.1f} %")

            tr.qat_rows(source.model, ds, teacher.logits["train"], qat_train, kd_default, bits_sorted, granularity,
                        scale, seed=ds.seed, on_bits=lambda row: panel["rows"].append(row), on_epoch=on_epoch)
            st.session_state.pop(BITS_LIVE, None)
            live.clear()
        register_panel(panel)
        st.rerun()

panel = panels.get(key)
if panel is None:
    st.info("Choose a model and press **Quantize**. PTQ is instant; QAT distills once per bit width.")
else:
    src, rows = panel["source"], panel["rows"]
    st.plotly_chart(tr.bits_figure(rows, f"Test accuracy against bits: {src.name} ({panel['quant']})"),
                    width="stretch")
    float_acc = src.accuracy
    lines = []
    for method in ("PTQ", "QAT"):
        low = [r for r in rows if r.method == method and r.bits < 32]
        if low:
            worst = min(low, key=lambda r: r.bits)
            lines.append(f"{method} at {worst.bits} bit(s): {100 * worst.accuracy:.1f} % "
                         f"({100 * (worst.accuracy - float_acc):+.1f} points against the float model's "
                         f"{100 * float_acc:.1f} %), {format_bytes(worst.bytes)} instead of {format_bytes(src.bytes)}.")
    for line in lines:
        st.markdown(f"- {line}")
    ctrl = next((r for r in rows if r.method == "QAT" and r.bits == 32), None)
    if ctrl is not None:
        st.caption(f"QAT at 32 bits is the same distillation without quantization ({100 * ctrl.accuracy:.1f} %): "
                   "the part of a QAT model's accuracy that comes from extra training, not from QAT.")
    bits_table = pd.DataFrame([r.row() for r in rows])
    csv_table.show(bits_table, key="tradeoffs_csv_bits", file_name=f"quantization_{ds.name}_seed{ds.seed}.csv",
                   label="Download the panel (CSV)", formats={"test accuracy (%)": "%.2f"})

# ---------------------------------------------------------------- 4 · pipeline
st.header("4 · Pipeline: distill → prune → quantize")
st.markdown("Take a (distilled) student, remove its smallest weights (global magnitude pruning), "
            "fine-tune it by distillation with the pruned weights held at zero, then quantize it. "
            "A pruned model is stored sparsely: the cheaper of *values + indices* and *bitmask + values*.")
pipe_msg = st.session_state.pop(PIPE_MSG, None)
if pipe_msg:
    st.success(pipe_msg)
pruning_error = tr.pruning_unavailable_reason()
if pruning_error:
    st.warning(pruning_error)
else:
    pipe_sources = [r for r in state.models(ds).values() if r.role in ("distilled", "scratch", "teacher")]
    pipe_names = [r.name for r in pipe_sources]
    with st.form(f"tradeoffs_pipe_form_{ds.name}"):
        c1, c2, c3, c4 = st.columns([3, 1, 1, 1])
        pipe_source = c1.selectbox("Model", pipe_names, key="tradeoffs_pipe_model",
                                   index=next((i for i, r in enumerate(pipe_sources) if r.role == "distilled"), 0))
        pipe_sparsity = c2.select_slider("Sparsity", [0.5, 0.6, 0.7, 0.8, 0.9, 0.95], value=0.8,
                                         key="tradeoffs_pipe_sparsity", format_func=lambda s: f"{100 * s:g} %")
        pipe_bits = c3.selectbox("Bits", list(QUANT_BITS), index=1, key="tradeoffs_pipe_bits")
        pipe_epochs = c4.number_input("Fine-tune epochs (0 = none)", 0, 200, 10, key="tradeoffs_pipe_epochs")
        pipe_pressed = st.form_submit_button("Prune and quantize", icon=":material/content_cut:")
    if pipe_pressed:
        source = state.models(ds)[pipe_source]
        quant = QuantConfig(int(pipe_bits), "channel", "mse")
        finetune = (TrainConfig(**{**student_train.to_dict(), "epochs": int(pipe_epochs), "lr": 3e-3})
                    if pipe_epochs else None)
        with st.spinner("Pruning, fine-tuning and quantizing…"):
            try:
                stages = tr.prune_then_quantize(source.model, ds, teacher.logits, float(pipe_sparsity), quant,
                                                finetune, kd_default, seed=ds.seed, source_recipe=source.recipe)
            except (ValueError, tr.PruningUnavailable) as err:
                st.error(f"The pipeline could not run: {err}")
                st.stop()
        for rec in tr.pipeline_records(stages, source, quant, ds):
            state.register(rec)
        st.session_state[PIPE_MSG] = " ".join(
            f"{s.stage.capitalize()}: {100 * s.metrics['accuracy']:.1f} %, {format_bytes(s.metrics['bytes'])} "
            f"({s.metrics['encoding']})." for s in stages) + f" The source: {100 * source.accuracy:.1f} %, " \
            f"{format_bytes(source.bytes)}. Both are now points in section 1."
        st.rerun()
