"""The "sweep", "ensemble" and "ensemble_distill" run kinds: driven through `kdcore.runs.drive` they
give the numbers of the direct engine calls, their results round-trip through the codec bit for
bit, and a stop after two steps keeps a partial result."""

from __future__ import annotations

import pytest
import torch

from kdcore import codec
from kdcore.distill import KDConfig
from kdcore.ensemble import build_ensemble, distill_from_ensemble, member_specs
from kdcore.models import ModelConfig
from kdcore.runkinds_ensemble import ensemble_config, ensemble_distill_config
from kdcore.runkinds_sweep import sweep_config
from kdcore.runs import RunContext, RunSpec, drive, kind
from kdcore.store import RunStore
from kdcore.sweep import SweepConfig, run_sweep
from kdcore.teachers import TeacherCache, TeacherSpec
from kdcore.train import TrainConfig

GRID = SweepConfig(temperatures=(2.0, 4.0), alphas=(0.5, 0.9), widths=(8, 16), train=TrainConfig(epochs=3, lr=1e-2))
MEMBER = TeacherSpec("digits", 0, ModelConfig(hidden=(32,)), TrainConfig(epochs=2, lr=1e-2), seed=0)
STUDENT, STUDENT_TRAIN = ModelConfig(hidden=(8,)), TrainConfig(epochs=3, lr=1e-2)
KD = KDConfig(temperature=3.0, alpha=0.9, labelled_fraction=0.2)


def make(spec: RunSpec, ctx: RunContext):
    return kind(spec.kind).make(spec.config, ctx)


def stop_after(n: int):
    """(on_progress, should_stop) that stop a driven run after n steps."""
    steps = []
    return (lambda p: steps.append(p)), (lambda: len(steps) >= n)


def round_trip(result, ctx):
    return codec.decode(*codec.encode(result), ctx)


def timeless(records: list[dict]) -> list[dict]:
    """Epoch logs without their wall times (the only numbers that differ between two trainings)."""
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def same_module(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture
def teacher_ctx(digits_teacher, private_dirs, tmp_path):
    """A context whose teacher cache holds the default digits teacher, with a private run store."""
    return RunContext(RunStore(tmp_path / "runs"), TeacherCache(private_dirs["cache"] / "teachers"))


# ---------------------------------------------------------------- sweep

def test_sweep_kind_equals_run_sweep_and_round_trips(digits, digits_teacher, teacher_ctx):
    """Driven without a job runner, the sweep trains its chunks itself, one after the other: the students
    of `run_sweep` (which trains each width group as one batched model), up to float rounding."""
    spec = RunSpec("sweep", sweep_config(digits_teacher.spec, GRID))
    assert kind("sweep").requires(spec.config) == [RunSpec("teacher", digits_teacher.spec.to_dict())]
    parts = kind("sweep").parts(spec.config)   # two chunks per width, each one batched model
    assert [len(p.config["students"]) for p in parts] == [2, 2, 2, 2]
    seen = []
    result, status = drive(make(spec, teacher_ctx), seen.append)
    direct = run_sweep(digits, digits_teacher.logits, GRID)
    assert status == "finished" and not result.stopped_early
    assert [s.spec for s in result.students] == [s.spec for s in direct.students]
    for a, b in zip(result.students, direct.students):
        same_student(a, b)
    # the stored curves: per width, best and mean validation accuracy per epoch
    assert seen[-1].fraction == 1.0
    assert set(seen[-1].curves) == {"width 8: best", "width 8: mean", "width 16: best", "width 16: mean"}
    assert all(len(v) == 3 and all(isinstance(x, float) for x in v) for v in seen[-1].curves.values())
    back = round_trip(result, teacher_ctx)
    assert back.config == GRID and back.cells().equals(result.cells())
    for a, b in zip(back.students, result.students):
        assert a.spec == b.spec and a.metrics == b.metrics
        assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in b.state_dict)
    assert kind("sweep").summary(result)["students"] == 8 and kind("sweep").describe(spec.config)


def same_student(a, b):
    """A student trained in a chunk against the same student in its whole width group (`run_sweep`): a
    batched model of other students may round differently (GEMM blocking), as the Ray backend's chunks;
    the same up to float rounding, the same test accuracy."""
    assert a.spec == b.spec and a.epochs_run == b.epochs_run
    for k in b.state_dict:
        assert torch.allclose(a.state_dict[k], b.state_dict[k], atol=1e-5), (a.spec, k)
    assert a.metrics["accuracy"] == b.metrics["accuracy"]
    assert a.metrics["loss"] == pytest.approx(b.metrics["loss"], rel=1e-5)


def _runner(tmp_path, teacher_ctx):
    from kdcore.jobs import JobRunner, ThreadExecutor
    return JobRunner(teacher_ctx.store, workers=2, executor=ThreadExecutor(), cache_root=teacher_ctx.teachers.root)


def test_sweep_chunks_train_side_by_side_in_the_runner(digits, digits_teacher, teacher_ctx, tmp_path):
    grid = SweepConfig(temperatures=(2.0, 4.0), alphas=(0.5, 0.9), widths=(8,), controls=True,
                       train=TrainConfig(epochs=3, lr=1e-2))
    r = _runner(tmp_path, teacher_ctx)
    try:
        rid = r.submit(RunSpec("sweep", sweep_config(digits_teacher.spec, grid)), "ws")
        assert r.wait(rid, timeout=120).status == "finished"
        got = r.store.load_result(rid, RunContext(r.store))
        chunks = sorted((rec for rec in (r.store.get(row["id"]) for row in r.store._con.execute("SELECT id FROM runs"))
                         if rec.kind == "sweep_chunk"), key=lambda rec: rec.started)
        assert len(chunks) == 2 and chunks[1].started < chunks[0].finished   # side by side
        assert {rec.kind for rec in r.store.workspace_runs("ws")} == {"teacher", "sweep"}   # chunks unlisted
    finally:
        r.close()
    direct = run_sweep(digits, digits_teacher.logits, grid)
    assert [s.spec for s in got.students + got.controls] == [s.spec for s in direct.students + direct.controls]
    for a, b in zip(got.students + got.controls, direct.students + direct.controls):
        same_student(a, b)


def test_sweep_stop_keeps_the_students_as_they_are(digits_teacher, teacher_ctx, tmp_path):
    import time
    grid = SweepConfig(temperatures=(2.0, 4.0), alphas=(0.5, 0.9), widths=(8, 16),
                       train=TrainConfig(epochs=3000, lr=1e-2))
    r = _runner(tmp_path, teacher_ctx)
    try:
        rid = r.submit(RunSpec("sweep", sweep_config(digits_teacher.spec, grid)), "ws")
        while True:   # the live view: both chunks of width 8 under way, each with its curves
            v = r.view(rid)
            if v.status == "running" and sum(k.endswith(": best") and len(c) >= 2 for k, c in v.curves.items()) >= 2:
                break
            time.sleep(0.02)
        assert "width 8, students 1–2 of 4: epoch" in v.text and v.waiting_for == []
        assert {"width 8, students 1–2 of 4: best", "width 8, students 3–4 of 4: best"} <= set(v.curves)
        r.stop(rid, "ws")
        assert r.wait(rid, timeout=120).status == "stopped"
        result = r.store.load_result(rid, RunContext(r.store))
    finally:
        r.close()
    assert result.stopped_early
    # the width-8 chunks stopped after some epochs; the width-16 ones never started (nothing to keep)
    assert {s.spec.width for s in result.students} == {8} and len(result.students) == 4
    assert all(0 < s.epochs_run < 3000 and len(s.history) == s.epochs_run for s in result.students)
    assert len(round_trip(result, teacher_ctx).students) == 4


# ---------------------------------------------------------------- ensemble members

def test_ensemble_kind_equals_build_ensemble_and_round_trips(digits, tmp_path):
    specs = member_specs(MEMBER, 3)
    cfg = ensemble_config(specs, "geometric")
    ctx = RunContext(RunStore(tmp_path / "runs"), TeacherCache(tmp_path / "a"))
    seen = []
    ens, status = drive(make(RunSpec("ensemble", cfg), ctx), seen.append)
    direct = build_ensemble(digits, specs, "geometric", TeacherCache(tmp_path / "b"))
    assert status == "finished" and ens.complete and ens.n_members == 3 and len(seen) == 3 * 2
    for a, b in zip(ens.members, direct.members):
        assert a.spec == b.spec and not a.from_cache and same_module(a.model, b.model)
        assert all(torch.equal(a.logits[s], b.logits[s]) for s in b.logits)
        assert a.metrics == b.metrics and timeless(a.history) == timeless(b.history)
    assert all(torch.equal(ens.logits[s], direct.logits[s]) for s in direct.logits)
    assert ens.metrics == direct.metrics
    assert set(seen[-1].curves) == {"member 1", "member 2", "member 3"} and seen[-1].fraction == 1.0
    # finished members went into the teacher cache: a second build loads them, one step each
    again, _ = drive(make(RunSpec("ensemble", cfg), RunContext(None, TeacherCache(tmp_path / "a"))))
    assert all(m.from_cache for m in again.members)
    back = round_trip(ens, ctx)
    assert back.method == "geometric" and back.n_members == 3 and back.metrics == ens.metrics
    for a, b in zip(back.members, ens.members):
        assert a.spec == b.spec and same_module(a.model, b.model)
        assert all(torch.equal(a.logits[s], b.logits[s]) for s in b.logits)


def test_ensemble_kind_stop_keeps_the_finished_members(tmp_path):
    specs = member_specs(replace_epochs(MEMBER, 1), 3)
    ctx = RunContext(None, TeacherCache(tmp_path / "c"))
    on_progress, should_stop = stop_after(2)
    ens, status = drive(make(RunSpec("ensemble", ensemble_config(specs, "arithmetic")), ctx),
                        on_progress, should_stop)
    assert status == "stopped" and ens.n_members == 2 and ens.planned == 3 and not ens.complete
    assert round_trip(ens, ctx).n_members == 2
    # stopped before the first member finished: nothing is kept
    on_progress, should_stop = stop_after(1)
    none, status = drive(make(RunSpec("ensemble", ensemble_config(member_specs(MEMBER, 2, [24]), "arithmetic")),
                              ctx), on_progress, should_stop)
    assert status == "stopped" and none is None


def replace_epochs(spec: TeacherSpec, epochs: int) -> TeacherSpec:
    from dataclasses import replace
    return replace(spec, train=replace(spec.train, epochs=epochs))


# ---------------------------------------------------------------- one student from the ensemble

@pytest.fixture
def stored_ensemble(digits, tmp_path):
    """A finished "ensemble" run in a run store (what the job runner leaves behind)."""
    specs = member_specs(MEMBER, 2)
    cache = TeacherCache(tmp_path / "teachers")
    ens = build_ensemble(digits, specs, "arithmetic", cache)
    store = RunStore(tmp_path / "runs")
    cfg = ensemble_config(specs, "arithmetic")
    rec = store.create(RunSpec("ensemble", cfg), "ensemble")
    store.save_result(rec.id, ens, "finished", 1.0)
    return ens, cfg, RunContext(store, cache)


def test_ensemble_distill_kind_equals_distill_from_ensemble_and_round_trips(digits, stored_ensemble):
    ens, build_cfg, ctx = stored_ensemble
    spec = RunSpec("ensemble_distill", ensemble_distill_config(build_cfg, STUDENT, STUDENT_TRAIN, KD, seed=1))
    assert kind("ensemble_distill").requires(spec.config) == [RunSpec("ensemble", build_cfg)]
    seen = []
    res, status = drive(make(spec, ctx), seen.append)
    direct = distill_from_ensemble(digits, ens, STUDENT, STUDENT_TRAIN, KD, seed=1)
    assert status == "finished" and not res.stopped_early and len(seen) == 3
    assert same_module(res.result.distilled, direct.result.distilled)
    assert same_module(res.result.scratch, direct.result.scratch)
    assert same_module(res.single, direct.single)
    assert res.result.distilled_metrics == direct.result.distilled_metrics
    assert res.single_metrics == direct.single_metrics and res.single_member == direct.single_member
    assert set(seen[-1].curves) == {"from ensemble", "from one member", "scratch"}
    back = round_trip(res, ctx)
    assert same_module(back.single, res.single) and same_module(back.result.distilled, res.result.distilled)
    assert back.single_history.to_records() == res.single_history.to_records() and back.summary() == res.summary()
    assert kind("ensemble_distill").summary(res)["accuracy"] == res.result.distilled_metrics["accuracy"]


def test_ensemble_distill_kind_stop_after_two_steps(stored_ensemble):
    _, build_cfg, ctx = stored_ensemble
    spec = RunSpec("ensemble_distill", ensemble_distill_config(build_cfg, STUDENT, STUDENT_TRAIN, KD, seed=1))
    on_progress, should_stop = stop_after(2)
    res, status = drive(make(spec, ctx), on_progress, should_stop)
    assert status == "stopped" and res.stopped_early
    assert res.result.distilled_history.epochs_run == 2 and res.single_history.epochs_run == 2
    assert round_trip(res, ctx).stopped_early


def test_ensemble_distill_through_the_job_runner(tmp_path):
    """Submitting the distillation queues the members' build first (its requirement), then the student."""
    from kdcore.jobs import JobRunner, ThreadExecutor
    specs = member_specs(replace_epochs(MEMBER, 1), 2)
    build_cfg = ensemble_config(specs, "arithmetic")
    runner = JobRunner(RunStore(tmp_path / "runs"), workers=1, executor=ThreadExecutor(),
                       cache_root=tmp_path / "teachers")
    try:
        cfg = ensemble_distill_config(build_cfg, STUDENT, replace(STUDENT_TRAIN, epochs=1), KD, seed=0)
        run_id = runner.submit(RunSpec("ensemble_distill", cfg), "ws1")
        v = runner.wait(run_id, timeout=300)
        assert v.status == "finished", v.error
        build = runner.store.find_finished(RunSpec("ensemble", build_cfg).key)
        assert build is not None
        res = runner.store.load_result(run_id, RunContext(runner.store, TeacherCache(tmp_path / "teachers")))
        assert res.result.distilled_history.epochs_run == 1
        assert runner.store.load_result(build.id, RunContext()).n_members == 2
    finally:
        runner.close()


def replace(obj, **kw):
    from dataclasses import replace as _replace
    return _replace(obj, **kw)


@pytest.mark.skipif(__import__("importlib").util.find_spec("ray") is None,
                    reason="ray is not installed (optional extra: pip install ray)")
def test_sweep_kind_on_ray_equals_in_process(digits, digits_teacher, teacher_ctx):
    import ray
    ray.shutdown()   # the run starts a local instance (RayBackend: kdcore on the workers' path)
    try:
        spec = RunSpec("sweep", sweep_config(digits_teacher.spec, GRID, backend="ray"))
        seen = []
        remote, status = drive(make(spec, teacher_ctx), seen.append)
    finally:
        ray.shutdown()
    local = run_sweep(digits, digits_teacher.logits, GRID)
    assert status == "finished" and remote.backend == "ray" and seen[-1].fraction == 1.0
    assert [s.spec for s in remote.students] == [s.spec for s in local.students]
    for a, b in zip(remote.students, local.students):
        assert all(torch.allclose(a.state_dict[k], b.state_dict[k], atol=1e-5) for k in b.state_dict)
