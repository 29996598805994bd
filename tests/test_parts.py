"""Runs made of parts: a distillation's three students train as runs of their own, side by side.

Checked against the lockstep engine run (`DistillRun`, bit for bit), and for what the runner owes
them: they overlap on two workers, a new α reuses the controls, they are not listed, the run's view
is theirs together, Stop keeps what they learned, a part shared by two runs outlives one's Stop,
and a Ray task combines the parts it was handed (not parts of its own).
"""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
import torch

from kdcore import codec
from kdcore.distill import KDConfig, DistillRun, StudentPart
from kdcore.jobs import UNSTARTED, JobRunner, ThreadExecutor
from kdcore.models import ModelConfig
from kdcore.runkinds import _student_run, distill_config, distill_parts, student_config
from kdcore.runs import RunContext, RunKind, RunSpec, drive, register_kind
from kdcore.store import RunStore
from kdcore.teachers import TeacherSpec
from kdcore.train import History, TrainConfig

TEACHER = TeacherSpec("moons", 0, ModelConfig(hidden=(32,)), TrainConfig(epochs=3), seed=0)


def config(epochs=4, alpha=0.9, **kd) -> dict:
    return distill_config(TEACHER, ModelConfig(hidden=(4,)), TrainConfig(epochs=epochs),
                          KDConfig(alpha=alpha, **kd), 0)


@pytest.fixture
def runner(tmp_path):
    r = JobRunner(RunStore(tmp_path / "runs"), workers=2, executor=ThreadExecutor(), cache_root=tmp_path / "t")
    yield r
    r.close()


def students(store: RunStore) -> list:
    return [r for r in (store.get(row["id"]) for row in store._con.execute("SELECT id FROM runs")) if r.kind == "student"]


def test_student_configs_hold_only_what_each_student_depends_on():
    a, b = config(alpha=0.9), config(alpha=0.5, temperature=2.0)
    for role in ("scratch", "hard"):   # the controls: the same for any T and α
        assert student_config(a, role) == student_config(b, role)
    assert student_config(a, "distilled") != student_config(b, "distilled")
    assert "teacher" not in student_config(a, "scratch")
    c = config(labelled_fraction=0.5)
    assert student_config(a, "hard") == student_config(c, "hard")          # argmax over every example
    assert student_config(a, "scratch") != student_config(c, "scratch")    # fewer labels


def test_parts_equal_the_lockstep_engine_run_bit_for_bit(runner):
    cfg = config(epochs=5, labelled_fraction=0.5)
    rid = runner.submit(RunSpec("distill", cfg), "ws")
    assert runner.wait(rid, timeout=120).status == "finished"
    got = runner.store.load_result(rid, RunContext(runner.store))
    ctx = RunContext(runner.store)
    teacher = ctx.teacher(cfg["teacher"])
    ds = ctx.dataset("moons", 0)
    run = DistillRun(ds, teacher.logits, teacher.metrics, ModelConfig(hidden=(4,)), TrainConfig(epochs=5),
                     KDConfig(labelled_fraction=0.5), seed=0, control=True)
    while not run.done:
        run.step()
    want = run.result()
    for name in ("distilled", "scratch", "hard"):
        a, b = getattr(got, name).state_dict(), getattr(want, name).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert got.distilled_metrics == want.distilled_metrics and got.hard_metrics == want.hard_metrics
    assert got.scratch_metrics == want.scratch_metrics and got.n_labelled == want.n_labelled
    assert [l.val_acc for l in got.scratch_history.logs] == [l.val_acc for l in want.scratch_history.logs]
    assert all(torch.equal(got.confusion[k], want.confusion[k]) for k in want.confusion)
    assert not got.stopped_early
    parts = students(runner.store)   # the run's time is its parts' (from the first start), not the 5 ms combining them
    rec = runner.store.get(rid)
    assert rec.seconds >= max(p.finished for p in parts) - min(p.started for p in parts) - 0.05 > 0.01


def test_parts_train_side_by_side_and_are_not_listed(runner):
    runner.submit(RunSpec("teacher", TEACHER.to_dict()), "ws")   # first, so that all three parts can start
    runner.wait(runner.submit(RunSpec("teacher", TEACHER.to_dict()), "ws"))
    rid = runner.submit(RunSpec("distill", config(epochs=60)), "ws")
    assert runner.wait(rid, timeout=120).status == "finished"
    parts = sorted(students(runner.store), key=lambda r: r.started)
    assert len(parts) == 3
    assert parts[1].started < parts[0].finished    # two workers: the second began before the first ended
    assert {r.kind for r in runner.store.workspace_runs("ws")} == {"teacher", "distill"}


def test_a_new_alpha_trains_the_distilled_student_alone(runner):
    first = runner.submit(RunSpec("distill", config(alpha=0.9)), "ws")
    runner.wait(first, timeout=120)
    assert len(students(runner.store)) == 3
    second = runner.submit(RunSpec("distill", config(alpha=0.5)), "ws")
    assert runner.wait(second, timeout=120).status == "finished"
    assert len(students(runner.store)) == 4        # one new part: the distilled student at α = 0.5
    a = runner.store.load_result(first, RunContext(runner.store))
    b = runner.store.load_result(second, RunContext(runner.store))
    assert a.scratch_metrics == b.scratch_metrics and a.hard_metrics == b.hard_metrics
    assert b.kd.alpha == 0.5


def test_the_view_of_a_run_of_parts(runner):
    rid = runner.submit(RunSpec("distill", config(epochs=400)), "ws")
    seen_teacher_wait = seen_together = False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        v = runner.view(rid)
        if v.status == "queued" and v.waiting_for:
            assert all("teacher" in w for w in v.waiting_for)   # its parts are not "waited for"
            seen_teacher_wait = True
        if v.status == "running" and {"distilled", "scratch"} <= set(v.curves):
            assert 0 < v.fraction < 1 and "epoch" in v.text and v.waiting_for == []
            seen_together = True
            break
        time.sleep(0.02)
    assert seen_teacher_wait and seen_together
    runner.stop(rid, "ws")
    runner.wait(rid, timeout=120)


def test_stop_keeps_what_the_parts_learned(runner):
    rid = runner.submit(RunSpec("distill", config(epochs=5000)), "ws")
    while not (runner.view(rid).curves.get("distilled") and runner.view(rid).curves.get("scratch")):
        time.sleep(0.02)
    assert runner.stop(rid, "ws") == "stopping"
    v = runner.wait(rid, timeout=120)
    assert v.status == "stopped"
    r = runner.store.load_result(rid, RunContext(runner.store))
    assert 0 < r.distilled_history.epochs_run < 5000 and r.stopped_early
    assert 0 < r.scratch_history.epochs_run < 5000
    # the hard-label control waited for a worker: left out when it never started (an untrained control
    # would "split" the gain into nonsense), else kept as it was when stopped
    assert (r.hard is None and r.hard_metrics is None) or 0 < r.hard_history.epochs_run < 5000
    assert {p.status for p in students(runner.store)} == {"stopped"}
    # a stopped part is never reused as finished: the same run asked again trains afresh
    again = runner.submit(RunSpec("distill", config(epochs=5000)), "ws")
    assert again != rid and runner.view(again).active
    runner.stop(again, "ws")
    runner.wait(again, timeout=120)


class _Block:
    """A run that holds its worker until `release` is set."""
    release = threading.Event()

    def __init__(self, config, ctx):
        self.n = 0

    @property
    def done(self):
        return self.n > 0

    def step(self):
        _Block.release.wait(30)
        self.n = 1

    def progress(self):
        from kdcore.runs import Progress
        return Progress(self.n, "blocking")

    def result(self):
        return {"n": self.n}


register_kind(RunKind("test-block", "Block", _Block))


def test_stop_before_any_part_started_keeps_nothing_and_stops_the_parts(tmp_path):
    r = JobRunner(RunStore(tmp_path / "runs"), workers=1, executor=ThreadExecutor(), cache_root=tmp_path / "t")
    try:
        r.wait(r.submit(RunSpec("teacher", TEACHER.to_dict()), "ws"), timeout=60)
        _Block.release.clear()
        block = r.submit(RunSpec("test-block", {"n": 1}), "other")
        rid = r.submit(RunSpec("distill", config()), "ws")
        v = r.view(rid)
        assert v.status == "queued" and v.ahead == 0   # the block runs; its own three parts are not "ahead"
        assert r.stop(rid, "ws") == "stopping"
        assert r.view(rid).status == "stopped" and r.view(rid).error == UNSTARTED
        _Block.release.set()
        r.wait(block, timeout=30)
        time.sleep(0.3)
        assert {(p.status, p.error) for p in students(r.store)} == {("stopped", UNSTARTED)}
    finally:
        _Block.release.set()
        r.close()


def test_a_part_shared_by_two_runs_goes_on_when_one_stops(runner):
    runner.wait(runner.submit(RunSpec("teacher", TEACHER.to_dict()), "a"), timeout=60)
    one = runner.submit(RunSpec("distill", config(epochs=300, alpha=0.9)), "a")
    two = runner.submit(RunSpec("distill", config(epochs=300, alpha=0.5)), "b")
    while not runner.view(one).curves.get("scratch"):
        time.sleep(0.02)
    runner.stop(one, "a")
    assert runner.wait(one, timeout=120).status == "stopped"
    assert runner.wait(two, timeout=300).status == "finished"
    r = runner.store.load_result(two, RunContext(runner.store))
    assert r.scratch_history.epochs_run == r.hard_history.epochs_run == 300


def test_a_ray_task_combines_the_parts_it_was_given():
    """`_remote_execute` (what a Ray task runs) reads its teacher and parts from the payloads sent
    with it: marked copies here, so that a result built from anything else would show."""
    pytest.importorskip("ray")
    from kdcore.ray_executor import _remote_execute
    cfg = config(epochs=3)
    ctx = RunContext(None)
    teacher = dataclasses.replace(ctx.teacher(cfg["teacher"]), metrics={"accuracy": 0.123, "params": 1, "bytes": 4})
    payloads = {RunSpec("teacher", cfg["teacher"]).key: teacher}
    for spec in distill_parts(cfg)[:2]:   # the distilled student and its twin; the control never started
        part = StudentPart(spec.config["role"], torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2, 2)),
                           History(stopped_early=True))
        payloads[spec.key] = part
    encoded = {}
    for key, obj in payloads.items():
        doc, tensors = codec.encode(obj)
        encoded[key] = (doc, {k: v.numpy() for k, v in tensors.items()})
    status, doc, arrays, curves = _remote_execute(RunSpec("distill", cfg).to_dict(), encoded, None, None, 1,
                                                  stopping=True)
    result = codec.decode(doc, {k: torch.from_numpy(v.copy()) for k, v in arrays.items()}, ctx)
    assert status == "stopped" and result.teacher_metrics["accuracy"] == 0.123
    assert result.distilled[1].weight.shape == (2, 2)   # the given model, not a student built here
    assert result.hard is None and result.hard_history is None   # the control never started: left out


def test_a_run_of_parts_survives_a_server_restart(tmp_path):
    """What a server that died leaves: the teacher done, one student finished, one running, one queued,
    the distillation queued and listed. The next server finishes it from the parts: none trained twice,
    none doubled in the workspace."""
    cfg = config(epochs=3)
    first = JobRunner(RunStore(tmp_path / "runs"), workers=1, executor=ThreadExecutor(), cache_root=tmp_path / "t")
    try:
        first.wait(first.submit(RunSpec("teacher", TEACHER.to_dict()), "setup"), timeout=60)
    finally:
        first.close()
    store = RunStore(tmp_path / "runs")
    distilled, scratch, hard = distill_parts(cfg)
    ctx = RunContext(store)
    done = store.create(scratch, "scratch")   # finished before the crash
    result, _ = drive(_student_run(scratch.config, ctx))
    store.save_result(done.id, result, "finished", 0.1)
    running = store.create(distilled, "distilled", status="running").id
    queued = store.create(hard, "hard").id
    rid = store.create(RunSpec("distill", cfg), "distill").id
    store.link("ws", rid)
    r = JobRunner(RunStore(tmp_path / "runs"), workers=2, executor=ThreadExecutor(), cache_root=tmp_path / "t")
    try:
        assert r.wait(rid, timeout=120).status == "finished"
        assert r.store.get(running).status == "finished" and r.store.get(queued).status == "finished"
        got = r.store.load_result(rid, RunContext(r.store))
        assert got.distilled_history.epochs_run == got.scratch_history.epochs_run == got.hard_history.epochs_run == 3
        assert len(students(r.store)) == 3   # the finished one reused, the others restored: none doubled
        assert [x.id for x in r.store.workspace_runs("ws")] == [rid]
    finally:
        r.close()
