"""Trade-offs: Pareto frontier by hand, latency, size curve, PTQ vs QAT panel, pipeline, the page (AppTest)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from kdcore import tradeoffs as tr
from kdcore import bitwidths, latency, pipeline, sizecurve
from kdcore import viz
from kdcore.distill import KDConfig
from kdcore.models import ModelConfig, build_model, model_bytes
from kdcore.quantize import QuantConfig, model_size
from kdcore.records import ModelRecord
from kdcore.train import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
KD = KDConfig(4.0, 0.9, labelled_fraction=0.1)


def test_pareto_front_on_hand_made_points():
    #        0    1    2    3    4    5    6
    costs = [10, 100, 20, 100, 1000, 5, 20]
    accs = [.80, .95, .80, .90, .95, .50, .85]
    # 5 (cheapest) → 0 (.80; 2 ties with 0 on accuracy but costs more) → 6 → 1; 3 and 4 are dominated by 1
    assert tr.pareto_front(costs, accs) == [5, 0, 6, 1]
    assert tr.pareto_front([1, 1], [0.5, 0.5]) == [0, 1]          # exact duplicates: neither dominates
    assert tr.pareto_front([1, 2], [0.9, 0.9]) == [0]             # same accuracy, larger: dominated
    assert tr.pareto_front([1, math.nan, 3], [0.1, 0.9, 0.2]) == [0, 2]   # unmeasured points are ignored
    assert tr.pareto_front([], []) == []


def test_pareto_front_agrees_with_the_definition_on_random_points():
    g = torch.Generator().manual_seed(0)
    costs = torch.randint(1, 30, (60,), generator=g).tolist()
    accs = (torch.randint(0, 20, (60,), generator=g) / 20).tolist()
    front = set(tr.pareto_front(costs, accs))
    for i in range(60):
        dominated = any(costs[j] <= costs[i] and accs[j] >= accs[i] and (costs[j] < costs[i] or accs[j] > accs[i])
                        for j in range(60))
        assert (i in front) == (not dominated)


def test_latency_is_measured_per_batch_size():
    m = build_model(ModelConfig(hidden=(32,)), (1, 8, 8), 10).train()
    lat = latency.measure_latencies(m, (1, 8, 8), (1, 256))
    assert set(lat) == {1, 256}
    assert all(l.median_ms > 0 and l.threads == torch.get_num_threads() for l in lat.values())
    assert lat[256].per_example_us < lat[1].per_example_us * 5   # batching amortizes per-call overhead
    assert m.training   # the mode is restored


def test_size_curve_on_a_tiny_setting(digits, digits_teacher):
    sweep = sizecurve.SizeCurve(digits, digits_teacher.logits, digits_teacher.metrics, [8, 4],
                         TrainConfig(epochs=2, lr=1e-2), KD, seed=0)
    seen_epochs, seen_students = [], []
    sweep.run(on_student=lambda p: seen_students.append(p.width),
              on_epoch=lambda w, d, s: seen_epochs.append((w, d.epoch)))
    assert sweep.done and [p.width for p in sweep.points] == [4, 8] == seen_students
    assert seen_epochs == [(4, 1), (4, 2), (8, 1), (8, 2)]
    p4, p8 = sweep.points
    assert p4.bytes == model_bytes(p4.distilled) < p8.bytes
    assert p4.params == (64 * 4 + 4) + (4 * 10 + 10)
    assert 0 <= p4.distilled_accuracy <= 1 and 0 <= p4.scratch_accuracy <= 1
    assert "widths" in sweep.summary()
    recs = sizecurve.size_curve_records(sweep, "teacher")
    assert [r.role for r in recs] == ["distilled", "scratch"] * 2
    # same seed, same numbers
    again = sizecurve.SizeCurve(digits, digits_teacher.logits, digits_teacher.metrics, [4],
                         TrainConfig(epochs=2, lr=1e-2), KD, seed=0).run()
    assert again[0].distilled_accuracy == p4.distilled_accuracy and again[0].scratch_accuracy == p4.scratch_accuracy
    # a stop after the first student keeps it, and run() resumes with the next
    stopped = sizecurve.SizeCurve(digits, digits_teacher.logits, digits_teacher.metrics, [4, 8],
                           TrainConfig(epochs=1), KD, seed=0)
    stopped.run(on_student=lambda p: True)
    assert [p.width for p in stopped.points] == [4] and not stopped.done
    stopped.run()
    assert [p.width for p in stopped.points] == [4, 8]


def test_ptq_and_qat_rows(digits, digits_teacher):
    ptq = bitwidths.ptq_rows(digits_teacher.model, digits, (32, 8, 2, 1))
    assert [r.bits for r in ptq] == [32, 8, 2, 1] and all(r.method == "PTQ" for r in ptq)
    assert ptq[0].accuracy == pytest.approx(digits_teacher.metrics["accuracy"])
    sizes = [r.bytes for r in ptq]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == digits_teacher.metrics["bytes"]
    assert ptq[1].bytes == model_size(digits_teacher.model, 8).bytes
    student = build_model(ModelConfig(hidden=(8,)), digits.input_shape, 10)
    calls = []
    qat = bitwidths.qat_rows(student, digits, digits_teacher.logits["train"], TrainConfig(epochs=1), KD, (32, 1),
                      on_bits=lambda r: calls.append(r.bits))
    assert [r.bits for r in qat] == calls == [32, 1] and all(r.method == "QAT" for r in qat)
    assert all(len(torch.unique(row)) == 2 for row in qat[1].model[1].weight)
    fig = viz.tradeoffs.bits_figure(ptq + qat)
    assert len(fig.data) == 2 and fig.layout.xaxis.title.text


def test_quantized_record_has_an_honest_size(digits, digits_teacher):
    src = ModelRecord("teacher", "teacher", digits_teacher.model, digits_teacher.metrics, "MLP", "digits", 0)
    cfg = QuantConfig(4, "channel")
    q = bitwidths.ptq_rows(src.model, digits, (4,))[0].model
    rec = bitwidths.quantized_record(src, q, cfg, "PTQ", digits, digits_teacher.logits["test"])
    n_w = 64 * 512 + 512 * 512 + 512 * 10
    n_b = 512 + 512 + 10
    assert rec.bytes == n_w * 4 // 8 + (512 + 512 + 10) * 4 + n_b * 4
    assert rec.extra["bits"] == 4 and rec.extra["encoding"] == "dense" and rec.role == "quantized"
    assert "agreement" in rec.metrics


def test_points_summary_and_frontier_figure():
    recs = [ModelRecord("teacher MLP 512", "teacher", None, {"accuracy": 0.986, "bytes": 1_200_000, "params": 1},
                        "big", "digits", 0),
            ModelRecord("2-bit distilled", "quantized", None, {"accuracy": 0.973, "bytes": 12_800}, "d→q", "digits", 0,
                        extra={"bits": 2}),
            ModelRecord("scratch", "scratch", None, {"accuracy": 0.90, "bytes": 20_000}, "s", "digits", 0)]
    lat = {"teacher MLP 512": {1: latency.Latency(1, 0.2, 5, 1, 1), 256: latency.Latency(256, 3.0, 5, 1, 1)}}
    pts = tr.tradeoff_points(recs, lat)
    assert pts[0].latency_b256_ms == 3.0 and math.isnan(pts[1].latency_b1_ms) and pts[1].bits == 2
    lines = tr.stakeholder_summary(pts, pts[0])
    text = " ".join(lines)
    assert "2-bit distilled is 94 × smaller than the teacher" in text and "loses 1.3 points" in text
    assert "1 of the 3 models is dominated" in text and "ship it." in text   # issue 13: grammar
    fig = viz.tradeoffs.frontier_figure(pts, "bytes")
    assert fig.layout.xaxis.type == "log" and fig.data[-1].name == "Pareto frontier"
    assert "size" in fig.layout.xaxis.title.text
    fig_lat = viz.tradeoffs.frontier_figure(pts, "latency_b256_ms")   # only the measured point is drawn
    assert sum(len(t.x) for t in fig_lat.data if t.mode == "markers") == 1


def test_distill_prune_quantize_pipeline(digits, digits_teacher):
    student = build_model(ModelConfig(hidden=(32,)), digits.input_shape, 10)
    stages = pipeline.prune_then_quantize(student, digits, digits_teacher.logits, 0.8, QuantConfig(4),
                                    TrainConfig(epochs=2), KD, seed=0, source_recipe="a student")
    pruned, pq = stages
    assert pruned.sparsity == pytest.approx(0.8, abs=0.01) and pq.sparsity == pruned.sparsity
    n_w = 64 * 32 + 32 * 10
    assert int((pq.model[1].weight == 0).sum() + (pq.model[3].weight == 0).sum()) >= round(0.8 * n_w)
    # sparse sizes: the pruned float model is smaller than dense, the quantized one smaller still
    assert pq.metrics["bytes"] < pruned.metrics["bytes"] < model_bytes(student)
    assert pruned.metrics["encoding"] in ("values+indices", "bitmask", "mixed")
    assert student[1].weight.ne(0).all()   # the source is untouched
    src = ModelRecord("student", "distilled", student, {"accuracy": 0.5, "bytes": 1}, "r", "digits", 0)
    recs = pipeline.pipeline_records(stages, src, QuantConfig(4), digits)
    assert [r.role for r in recs] == ["pruned", "quantized"] and recs[1].extra["bits"] == 4


# ---------------------------------------------------------------- the page

def button(at, label):
    return next(b for b in at.button if b.label == label)


def _shown(at, slot):
    """The stored result of the run the page shows in `slot`."""
    from kdcore.runs import RunContext
    from ui import runs
    run_id = at.session_state["current_runs"][(slot, "digits", 0)]
    return runs.runner().store.load_result(run_id, RunContext())


def test_tradeoffs_page(digits_teacher, open_page, wait_for_runs):
    from ui import runs
    at = open_page("pages/tradeoffs.py")
    assert not at.exception, at.exception
    models = at.session_state["session_models"]
    assert any(r.role == "teacher" for r in models.values())

    # a tiny size curve: 2 widths, 2 epochs
    at.multiselect(key="tradeoffs_sizes_widths").set_value([4, 8])
    at.number_input(key="tradeoffs_sizes_epochs").set_value(2)
    button(at, "Run the size curve").click()
    at.run()
    wait_for_runs(at)
    assert not at.exception, at.exception
    sweep = _shown(at, "tradeoffs_sizes")
    assert [p.width for p in sweep.points] == [4, 8]
    models = at.session_state["session_models"]
    assert {"size-curve distilled MLP 4 (seed 0)", "size-curve scratch MLP 8 (seed 0)"} <= set(models)
    assert len(at.session_state["tradeoffs_latency"]) == len(models)   # every point measured

    # the quantization panel on the distilled width-4 student, PTQ and a 1-epoch QAT
    at.selectbox(key="tradeoffs_bits_model").set_value("size-curve distilled MLP 4 (seed 0)")
    at.multiselect(key="tradeoffs_bits").set_value([32, 2, 1])
    at.number_input(key="tradeoffs_qat_epochs").set_value(1)
    button(at, "Quantize").click()
    at.run()
    wait_for_runs(at)
    assert not at.exception, at.exception
    rows = _shown(at, "tradeoffs_bits").rows
    assert sorted((r.method, r.bits) for r in rows) == [("PTQ", 1), ("PTQ", 2), ("PTQ", 32),
                                                          ("QAT", 1), ("QAT", 2), ("QAT", 32)]
    quantized = [r for r in at.session_state["session_models"].values() if r.role == "quantized"]
    assert len(quantized) == 4 and all(r.extra["bits"] in (1, 2) for r in quantized)
    assert all(r.bytes == model_size(r.model, r.extra["bits"]).bytes for r in quantized)

    # a view change re-measures nothing and retrains nothing
    n_lat = dict(at.session_state["tradeoffs_latency"])
    n_runs = len(runs.runner().store.workspace_runs(at.session_state["ws"]))
    at.radio(key="tradeoffs_axis").set_value("latency_b256_ms")
    at.run()
    assert not at.exception, at.exception
    assert dict(at.session_state["tradeoffs_latency"]) == n_lat
    assert len(runs.runner().store.workspace_runs(at.session_state["ws"])) == n_runs and not runs.runner().active()
    assert any("smaller than the teacher" in m.value for m in at.markdown)
    assert len(at.get("download_button")) == 3

    at.selectbox(key="tradeoffs_pipe_model").set_value("size-curve distilled MLP 8 (seed 0)")
    at.number_input(key="tradeoffs_pipe_epochs").set_value(1)
    button(at, "Prune and quantize").click()
    at.run()
    wait_for_runs(at)
    assert not at.exception, at.exception
    roles = [r.role for r in at.session_state["session_models"].values() if "pruned" in r.name]
    assert roles == ["pruned", "quantized"]
    assert any("Both are now points" in s.value for s in at.success)

    # PTQ of a model no run made is computed in the page; QAT of it is refused with a reason
    sweep4 = at.session_state["session_models"]["size-curve distilled MLP 4 (seed 0)"]
    at.session_state["session_models"]["hand-made copy"] = ModelRecord(
        "hand-made copy", "distilled", sweep4.model, sweep4.metrics, "by hand", "digits", 0)
    at.run()
    at.selectbox(key="tradeoffs_bits_model").set_value("hand-made copy")
    button(at, "Quantize").click()
    at.run()
    assert not at.exception and any("not made by a run" in e.value for e in at.error)
    at.toggle(key="tradeoffs_qat").set_value(False)
    button(at, "Quantize").click()
    at.run()
    assert not at.exception and not runs.runner().active()
    assert [r.method for r in at.session_state["tradeoffs_panels"][("digits", 0)]["rows"]] == ["PTQ"] * 3


# ---------------------------------------------------------------- the compression pages: reload and Stop

def test_pages_find_their_runs_after_a_reload_and_keep_stopped_results(digits_teacher, open_page, wait_for_runs):
    import time

    from ui import runs
    at = open_page("pages/tradeoffs.py")
    ws = at.session_state["ws"]
    # a long sweep, stopped once its first width is done: the finished students are kept
    at.multiselect(key="tradeoffs_sizes_widths").set_value([2, 1024])
    at.number_input(key="tradeoffs_sizes_epochs").set_value(40)
    next(b for b in at.button if b.label == "Run the size curve").click()
    at.run()
    run_id = at.session_state["current_runs"][("tradeoffs_sizes", "digits", 0)]
    assert not at.exception and runs.view(run_id).active
    deadline = time.monotonic() + 120
    while not runs.view(run_id).curves.get("distilled") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert runs.runner().stop(run_id, ws) == "stopping"
    wait_for_runs(at)
    assert runs.view(run_id).status == "stopped"
    assert any("stopped after 1 of 2 widths" in w.value for w in at.warning)
    assert "size-curve distilled MLP 2 (seed 0)" in at.session_state["session_models"]

    # a new session of the same workspace (a reload): the stored sweep is shown and its students listed
    again = open_page("pages/tradeoffs.py", session={"ws": ws})
    assert not again.exception, again.exception
    assert "size-curve scratch MLP 2 (seed 0)" in again.session_state["session_models"]
    assert any("stopped after 1 of 2 widths" in w.value for w in again.warning)

    # the Prune page lists the sweep's students (made by a run) and prunes one as a job
    pr = again
    pr.switch_page("pages/prune.py").run()
    assert not pr.exception, pr.exception
    pr.selectbox[0].set_value("size-curve distilled MLP 2 (seed 0)")
    pr.multiselect[0].set_value([0.5])
    next(b for b in pr.button if b.label == "Compute saliencies").click()
    pr.run()
    wait_for_runs(pr)
    assert not pr.exception, pr.exception
    assert any("size-curve distilled MLP 2" in s.value for s in pr.subheader)
    reload = open_page("pages/prune.py", session={"ws": ws})
    assert not reload.exception and any("size-curve distilled MLP 2" in s.value for s in reload.subheader)
