"""Sweeps: the batched trainer equals separate Trainer runs; grids, backends (Ray) and the page."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch

from kdcore.distill import DistillRun, KDConfig, transfer_labels
from kdcore.losses import kd_loss
from kdcore.models import ModelConfig, build_model
from kdcore.sweep import (BatchedKD, InProcessBackend, LoopBackend, RayBackend, StackedMLP, StudentSpec,
                          SweepConfig, batched_kd_loss, run_sweep)
from kdcore.train import TrainConfig, Trainer, seeded_model

ROOT = Path(__file__).resolve().parents[1]
TINY = TrainConfig(epochs=2, batch_size=64, lr=1e-2)


def reference_student(ds, teacher, spec: StudentSpec, train: TrainConfig, fraction: float, hidden=None):
    """One student trained alone, exactly as the Distill page's DistillRun trains its distilled student."""
    cfg = ModelConfig(hidden=hidden or (spec.width,))
    model = seeded_model(lambda: build_model(cfg, ds.input_shape, ds.n_classes), spec.seed)
    trainer = Trainer(model, ds.X_train, transfer_labels(ds, fraction, spec.seed), train, spec.seed,
                      teacher_logits=teacher.logits["train"], temperature=spec.temperature, alpha=spec.alpha,
                      loss="kd")
    return model, trainer


def test_batched_kd_loss_equals_kd_loss_per_student():
    g = torch.Generator().manual_seed(0)
    K, B, C = 4, 12, 5
    s, t = torch.randn(K, B, C, generator=g), torch.randn(B, C, generator=g)
    y = torch.randint(0, C, (K, B), generator=g)
    y[:, ::3] = -1
    y[3] = -1   # a student whose batch has no labels at all
    T, a = torch.tensor([1.0, 2.0, 4.0, 8.0]), torch.tensor([0.0, 0.3, 1.0, 0.5])
    got = batched_kd_loss(s, t, y, T, a)
    for k in range(K):
        want = kd_loss(s[k], t, y[k], float(T[k]), float(a[k]))
        assert torch.allclose(got[k], want, atol=1e-6), k


def test_stacked_mlp_matches_each_model_and_unstacks():
    cfg = ModelConfig(hidden=(7, 5))
    models = [seeded_model(lambda: build_model(cfg, (1, 8, 8), 10), s) for s in range(3)]
    stacked = StackedMLP(models)
    x = torch.randn(6, 64)
    shared, per = stacked(x), stacked(x.expand(3, 6, 64))
    for k, m in enumerate(models):
        assert torch.allclose(shared[k], m(x), atol=1e-6)
        assert torch.allclose(per[k], m(x), atol=1e-6)
        back = stacked.unstack(k, cfg, (1, 8, 8), 10)
        assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), m.state_dict().values()))


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_batched_training_equals_separate_trainers(digits, digits_teacher, optimizer):
    """Final weights of K students trained as one stacked model == K Trainer runs (1e-5), with
    different T, α and seeds (so different inits, batch orders and labelled subsets)."""
    train = TrainConfig(epochs=2, batch_size=64, lr=1e-2, optimizer=optimizer, weight_decay=1e-3)
    specs = [StudentSpec(16, 1.0, 0.5, 0), StudentSpec(16, 4.0, 0.9, 0), StudentSpec(16, 8.0, 0.0, 1),
             StudentSpec(16, 2.0, 1.0, 2), StudentSpec(16, 4.0, 0.9, 1)]
    batched = BatchedKD(digits, digits_teacher.logits, ModelConfig(hidden=(16,)), train, specs, 0.1)
    while not batched.done:
        batched.step()
    assert batched.step_count == 2 * math.ceil(len(digits.X_train) / 64)
    for j, spec in enumerate(specs):
        model, trainer = reference_student(digits, digits_teacher, spec, train, 0.1)
        for _ in range(train.epochs):
            log = trainer.run_epoch()
        got = batched.student_model(j).state_dict()
        for name, want in model.state_dict().items():
            assert torch.allclose(got[name], want, atol=1e-5, rtol=0), (spec, name)
        assert batched.histories[j].logs[-1].train_loss == pytest.approx(log.train_loss, abs=1e-5)


def test_same_students_as_the_distill_page(digits, digits_teacher):
    """The grid cell at the Distill defaults reproduces DistillRun's distilled student."""
    train = TrainConfig(epochs=2, batch_size=64, lr=1e-2)
    kd = KDConfig(temperature=4.0, alpha=0.9, labelled_fraction=0.1)
    run = DistillRun(digits, digits_teacher.logits, digits_teacher.metrics, ModelConfig(hidden=(16,)), train, kd, seed=3)
    while not run.done:
        run.step()
    res = run.result()
    cfg = SweepConfig(temperatures=(1.0, 4.0), alphas=(0.9,), widths=(16,), base_seed=3, train=train)
    sweep = run_sweep(digits, digits_teacher.logits, cfg)
    (student,) = sweep.find(16, 4.0, 0.9)
    for name, want in res.distilled.state_dict().items():
        assert torch.allclose(student.state_dict[name], want, atol=1e-5), name
    assert student.metrics["accuracy"] == pytest.approx(res.distilled_metrics["accuracy"], abs=1e-9)
    assert student.metrics["agreement"] == pytest.approx(res.distilled_metrics["agreement"], abs=1e-9)


def test_different_temperatures_and_alphas_really_differ(digits, digits_teacher):
    cfg = SweepConfig(temperatures=(1.0, 8.0), alphas=(0.1, 0.9), widths=(16,), train=TINY)
    res = run_sweep(digits, digits_teacher.logits, cfg)
    weights = [s.state_dict["3.weight"] for s in res.students]
    assert len(weights) == 4
    for i in range(4):
        for j in range(i + 1, 4):
            assert (weights[i] - weights[j]).abs().max() > 1e-3, (res.students[i].spec, res.students[j].spec)


def test_grid_groups_widths_and_aggregates_seeds(digits, digits_teacher):
    cfg = SweepConfig(temperatures=(2.0, 4.0), alphas=(0.5,), widths=(8, 16), seeds_per_cell=2, base_seed=5,
                      train=TINY)
    assert cfg.n_students == 8 and set(cfg.groups()) == {8, 16} and cfg.seeds == (5, 6)
    events = []
    res = run_sweep(digits, digits_teacher.logits, cfg, progress=lambda e: events.append(e) and False)
    assert len(res.students) == 8 and not res.stopped_early
    assert [e["epoch"] for e in events if "logs" in e] == [1, 2, 1, 2]
    cells = res.cells()
    assert len(cells) == 4 and (cells["seeds"] == 2).all()
    row = cells[(cells.width == 8) & (cells["T"] == 2.0)].iloc[0]
    accs = [100 * s.metrics["accuracy"] for s in res.find(8, 2.0, 0.5)]
    assert row.test_acc_mean == pytest.approx(sum(accs) / 2)
    assert row.test_acc_std == pytest.approx(float(torch.tensor(accs, dtype=torch.float64).std()), abs=1e-9)
    assert res.find(16, 4.0, 0.5)[0].metrics["params"] == 64 * 16 + 16 + 16 * 10 + 10
    best = res.best_cell()
    assert best["val_acc_mean"] == cells["val_acc_mean"].max()
    # each caller gets its own table (the stored result is shared by the sessions that read it)
    before = cells["test_acc_mean"].tolist()
    cells.loc[:, "test_acc_mean"] = -1.0
    again = res.cells()
    assert again["test_acc_mean"].tolist() == pytest.approx(before)
    assert (again["test_acc_mean"] >= 0).all()
    cells = again
    # the figure labels the T axis at the grid's temperatures; every table column has a readable name
    from kdcore.viz.sweep import accuracy_vs_temperature
    from kdcore.sweep import COLUMN_LABELS, column_label
    xaxis = accuracy_vs_temperature(cells).layout.xaxis
    assert tuple(xaxis.tickvals) == (2.0, 4.0) and tuple(xaxis.ticktext) == ("2", "4") and xaxis.type == "log"
    assert column_label("test_acc_std") == "test accuracy (%), std over seeds"
    assert all(c.removesuffix("_mean").removesuffix("_std") in COLUMN_LABELS
               for c in [*cells.columns, *res.records()[0]])


def test_cell_tables_equal_pandas_group_by(digits, digits_teacher):
    # the cell tables are a loop over students (pandas took ~20 ms per call): the reference is pandas
    import pandas as pd
    cfg = SweepConfig(temperatures=(2.0, 4.0), alphas=(0.3, 0.7), widths=(8,), seeds_per_cell=3, controls=True,
                      train=TINY)
    res = run_sweep(digits, digits_teacher.logits, cfg)
    aggs = dict(test_acc_mean=("test_acc", "mean"), test_acc_std=("test_acc", "std"),
                agreement_mean=("agreement", "mean"), agreement_std=("agreement", "std"),
                val_acc_mean=("val_acc", "mean"), seeds=("seed", "count"))
    fill = {"test_acc_std": 0.0, "agreement_std": 0.0}
    rows = res.records()
    rows[0] = {**rows[0], "agreement": float("nan")}   # a missing value is skipped, as pandas does
    want = pd.DataFrame(rows).groupby(["width", "T", "alpha"], as_index=False).agg(**aggs).fillna(fill)
    from kdcore.sweep import _cell_table
    pd.testing.assert_frame_equal(_cell_table(rows, ("width", "T", "alpha")), want, check_exact=False, rtol=1e-12)
    controls = pd.DataFrame([{**c.record(), "control": c.spec.control} for c in res.controls])
    want = controls.groupby(["width", "control"], as_index=False).agg(**aggs).fillna(fill)
    pd.testing.assert_frame_equal(res.control_cells(), want, check_exact=False, rtol=1e-12)
    assert len(res.cells()) == 4 and (res.cells()["seeds"] == 3).all()


def test_loop_backend_agrees_and_stop_keeps_partial_results(digits, digits_teacher):
    cfg = SweepConfig(temperatures=(2.0,), alphas=(0.5, 0.9), widths=(16,), train=TrainConfig(epochs=3, lr=1e-2))
    batched = run_sweep(digits, digits_teacher.logits, cfg, InProcessBackend())
    loop = run_sweep(digits, digits_teacher.logits, cfg, LoopBackend())
    for a, b in zip(batched.students, loop.students):
        assert a.spec == b.spec
        assert a.metrics["accuracy"] == pytest.approx(b.metrics["accuracy"], abs=1e-9)
    stopped = run_sweep(digits, digits_teacher.logits, cfg, progress=lambda e: e.get("epoch") == 1)
    assert stopped.stopped_early and len(stopped.students) == 2
    assert all(s.epochs_run == 1 for s in stopped.students)


def test_non_batchable_students_fall_back_to_trainer(digits, digits_teacher):
    cfg = SweepConfig(temperatures=(2.0,), alphas=(0.5,), widths=(8,), train=TrainConfig(epochs=1, lr=1e-2))
    res = run_sweep(digits, digits_teacher.logits, cfg, base_model=ModelConfig(hidden=(8,), dropout=0.2))
    assert len(res.students) == 1 and res.students[0].epochs_run == 1
    with pytest.raises(ValueError, match="cannot be batched"):
        BatchedKD(digits, digits_teacher.logits, ModelConfig(hidden=(8,), dropout=0.2), TINY,
                  [StudentSpec(8, 2.0, 0.5, 0)])


def test_bad_grids_are_refused():
    for bad in [dict(temperatures=()), dict(temperatures=(0.0,)), dict(alphas=(1.5,)), dict(widths=(0,)),
                dict(seeds_per_cell=0), dict(temperatures=(2.0, 2.0)),
                # issue 13: T = inf made NaN students reported at chance; widths had no upper bound
                dict(temperatures=(float("inf"),)), dict(temperatures=(float("nan"),)),
                dict(alphas=(float("nan"),)), dict(widths=(10 ** 12,)), dict(widths=(4097,))]:
        with pytest.raises(ValueError):
            SweepConfig(**bad)
    with pytest.raises(ValueError, match="4096"):
        SweepConfig(widths=(100_000,))
    SweepConfig(widths=(4096,), temperatures=(1000.0,))   # the bounds themselves are fine


def test_every_student_of_a_batched_group_logs_epochs_1_to_n(digits, digits_teacher):
    """Issue 13: all but the first student logged epochs 2..n+1 (the epoch was read while appending)."""
    specs = [StudentSpec(8, 2.0, 0.5, 0), StudentSpec(8, 4.0, 0.9, 0), StudentSpec(8, 4.0, 0.9, 1)]
    batched = BatchedKD(digits, digits_teacher.logits, ModelConfig(hidden=(8,)), TINY, specs, 0.1)
    while not batched.done:
        batched.step()
    assert [[log.epoch for log in h.logs] for h in batched.histories] == [[1, 2]] * 3
    assert [[r["epoch"] for r in s.history] for s in batched.result()] == [[1, 2]] * 3


@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="ray is not installed (optional extra: pip install ray)")
def test_ray_backend_equals_in_process(digits, digits_teacher):
    import ray
    ray.shutdown()
    cfg = SweepConfig(temperatures=(1.0, 4.0), alphas=(0.5, 0.9), widths=(8, 16), train=TINY)
    try:
        backend = RayBackend(chunks_per_group=2, init_kwargs={"num_cpus": 2})
        remote = run_sweep(digits, digits_teacher.logits, cfg, backend)
    finally:
        ray.shutdown()
    local = run_sweep(digits, digits_teacher.logits, cfg)
    assert remote.backend == "ray" and len(remote.students) == 8
    for a, b in zip(remote.students, local.students):
        assert a.spec == b.spec
        for name in b.state_dict:
            assert torch.allclose(a.state_dict[name], b.state_dict[name], atol=1e-5), (a.spec, name)
        assert a.metrics["accuracy"] == pytest.approx(b.metrics["accuracy"], abs=1e-9)


def test_sweep_page_runs_a_tiny_grid(digits_teacher, open_page, wait_for_runs):
    from kdcore.runs import RunContext
    from ui import runs
    at = open_page("pages/sweep.py")
    assert not at.exception
    at.text_input(key="sweep_T").set_value("2, 4")
    at.text_input(key="sweep_alpha").set_value("0.5, 0.9")
    at.text_input(key="sweep_widths").set_value("8")
    at.number_input(key="sweep_epochs").set_value(2)
    next(b for b in at.button if b.label == "Run sweep").click()
    at.run()   # submits the sweep to the job runner and returns at once
    assert not at.exception, at.exception
    wait_for_runs(at)
    assert not at.exception, at.exception
    run_id = at.session_state["current_runs"][("sweep", "digits", 0)]
    assert runs.runner().view(run_id).status == "finished"
    res = runs.store().load_result(run_id, RunContext())
    assert len(res.students) == 4 and not res.stopped_early
    assert any("Best cell" in m.value for m in at.markdown)
    # issue 13: the grid's controls, and the verdict splits the gain
    assert {c.spec.control for c in res.controls} == {"hard", "labels"}
    assert any("teacher's hard labels" in m.value and "soft targets beyond them" in m.value for m in at.markdown)
    assert any(r.name.startswith("sweep best") for r in at.session_state["session_models"].values())
    # choosing another cell only changes the view: nothing retrains
    at.selectbox(key="sweep_cell").select_index(1)
    at.run()
    assert not at.exception
    assert at.session_state["current_runs"][("sweep", "digits", 0)] == run_id
    assert not runs.runner().active(at.session_state["ws"])
    # bad input: a clear message, no traceback
    at.text_input(key="sweep_T").set_value("2, hot")
    next(b for b in at.button if b.label == "Run sweep").click()
    at.run()
    assert not at.exception
    assert any("temperature" in e.value.lower() for e in at.error)
    # issue 13: T = inf and unbounded widths get a message, not NaN students or an allocator error
    for t_text, w_text, words in (("inf", "8", "finite"), ("2", "1000000000000", "between 1 and 4096")):
        at.text_input(key="sweep_T").set_value(t_text)
        at.text_input(key="sweep_widths").set_value(w_text)
        next(b for b in at.button if b.label == "Run sweep").click()
        at.run()
        assert not at.exception
        assert any(words in e.value for e in at.error), [e.value for e in at.error]


def test_sweep_page_stop_keeps_what_was_learned(digits_teacher, open_page, wait_for_runs):
    import time

    from kdcore.runs import RunContext
    from ui import runs
    at = open_page("pages/sweep.py")
    at.text_input(key="sweep_T").set_value("2, 8")
    at.text_input(key="sweep_alpha").set_value("0.5")
    at.text_input(key="sweep_widths").set_value("8")
    at.number_input(key="sweep_epochs").set_value(300)
    next(b for b in at.button if b.label == "Run sweep").click()
    at.run()
    run_id = at.session_state["current_runs"][("sweep", "digits", 0)]
    deadline = time.monotonic() + 120
    while runs.runner().view(run_id).fraction < 2 / 300:   # a couple of epochs in
        assert time.monotonic() < deadline
        time.sleep(0.1)
    at.run()   # the live view, with its Stop button
    assert not at.exception, at.exception
    at.button(key="sweep_stop").click()
    at.run()
    wait_for_runs(at)
    assert not at.exception, at.exception
    assert runs.runner().view(run_id).status == "stopped"
    assert any("The sweep was stopped: 2 of 2 students" in w.value for w in at.warning)
    res = runs.store().load_result(run_id, RunContext())
    assert res.stopped_early and all(0 < s.epochs_run < 300 for s in res.students)
    assert any("Best cell" in m.value for m in at.markdown)   # the stopped students are drawn as they are
    # issue 13: the caption and the Trade-offs recipe say how many epochs ran, and a real time
    n = res.students[0].epochs_run
    caption = next(c.value for c in at.caption if "students ·" in c.value)
    assert f"{n} of 300 epochs" in caption and "· 300 epochs" not in caption, caption
    assert "trained in 0.0 s" not in caption
    rec = next(r for r in at.session_state["session_models"].values() if r.name.startswith("sweep best"))
    assert f"{n} of 300 epochs (stopped)" in rec.recipe and ", 300 epochs" not in rec.recipe, rec.recipe


# ---- issue 13: the controls of the grid, trained in the same batched model ----

def test_sweep_controls_equal_the_distill_pages_control_and_an_alpha_zero_cell(digits, digits_teacher):
    """The "teacher's hard labels" row equals DistillRun's control student (same init and batches);
    the "labels only" row equals the grid's own α = 0 student (T does not matter there)."""
    train = TrainConfig(epochs=2, batch_size=64, lr=1e-2)
    kd = KDConfig(temperature=4.0, alpha=0.9, labelled_fraction=0.1)
    run = DistillRun(digits, digits_teacher.logits, digits_teacher.metrics, ModelConfig(hidden=(16,)), train, kd,
                     seed=3, control=True)
    while not run.done:
        run.step()
    ref = run.result()
    cfg = SweepConfig(temperatures=(2.0, 4.0), alphas=(0.0, 0.9), widths=(16,), base_seed=3, train=train,
                      controls=True)
    assert cfg.n_students == 4 and len(cfg.control_students()) == 2
    res = run_sweep(digits, digits_teacher.logits, cfg)
    assert len(res.students) == 4 and {c.spec.control for c in res.controls} == {"hard", "labels"}
    hard = next(c for c in res.controls if c.spec.control == "hard")
    for name, want in ref.hard.state_dict().items():
        assert torch.allclose(hard.state_dict[name], want, atol=1e-5), name
    assert hard.metrics["accuracy"] == pytest.approx(ref.hard_metrics["accuracy"], abs=1e-9)
    labels = next(c for c in res.controls if c.spec.control == "labels")
    (alpha0,) = res.find(16, 4.0, 0.0)
    for name, want in alpha0.state_dict.items():
        assert torch.allclose(labels.state_dict[name], want, atol=1e-5), name
    assert [r["epoch"] for r in hard.history] == [1, 2]
    # per width: mean ± std over seeds, and the verdict splits the best cell's gain
    cc = res.control_cells()
    assert set(cc["control"]) == {"hard", "labels"} and (cc["seeds"] == 1).all()
    text = res.split_text()
    assert "teacher's hard labels" in text and "soft targets" in text
    # the loop backend trains the same controls
    loop = run_sweep(digits, digits_teacher.logits, cfg, LoopBackend())
    for a, b in zip(res.controls, loop.controls):
        assert a.spec == b.spec and a.metrics["accuracy"] == pytest.approx(b.metrics["accuracy"], abs=1e-9)


def test_sweep_heatmap_and_T_chart_show_the_control_rows(digits, digits_teacher):
    from kdcore.viz.sweep import accuracy_vs_temperature, sweep_heatmap
    cfg = SweepConfig(temperatures=(2.0, 4.0), alphas=(0.5,), widths=(8,), train=TINY, controls=True)
    res = run_sweep(digits, digits_teacher.logits, cfg)
    fig = sweep_heatmap(res.cells(), 8, controls=res.control_cells())
    ys = list(fig.data[0].y)
    assert ys == ["labels only (α=0)", "teacher's hard labels", "α=0.5"]   # the controls below the grid
    z = fig.data[0].z
    assert list(z[1]) == [res.control_cells().set_index("control").loc["hard", "test_acc_mean"]] * 2
    names = [t.name for t in accuracy_vs_temperature(res.cells(), controls=res.control_cells()).data]
    assert any("hard labels" in n for n in names)
