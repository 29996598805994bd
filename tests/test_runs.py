"""The Run protocol, the result codec, the run store and the job runner.

Runner tests use small kinds registered here (a countdown that records when it ran) on worker
threads; one test runs real teacher and distillation kinds on worker processes, as the app does.
"""

from __future__ import annotations

import importlib.util
import multiprocessing as mp
import sqlite3
import threading
import time

import pytest
import torch

from kdcore import codec
from kdcore.jobs import JobRunner, ProcessExecutor, ThreadExecutor
from kdcore.runs import Progress, RunContext, RunKind, RunSpec, drive, register_kind
from kdcore.store import ArtifactUnreadable, RunStore

# ---------------------------------------------------------------- test kinds

EVENTS: list[tuple] = []          # (what, name, time) from the countdown runs, in this process
RUNNING = {"now": 0, "max": 0}
_lock = threading.Lock()


class Countdown:
    """`steps` steps of `seconds` each; fails at step `fail_at` if given. Result: steps taken."""

    def __init__(self, config, ctx):
        self.config, self.n = config, 0
        with _lock:
            EVENTS.append(("start", config["name"], time.monotonic()))

    @property
    def done(self):
        finished = self.n >= self.config["steps"]
        if finished:
            with _lock:
                EVENTS.append(("end", self.config["name"], time.monotonic()))
        return finished

    def step(self):
        with _lock:
            RUNNING["now"] += 1
            RUNNING["max"] = max(RUNNING["max"], RUNNING["now"])
        try:
            time.sleep(self.config.get("seconds", 0.01))
            self.n += 1
            if self.config.get("fail_at") == self.n:
                raise RuntimeError("deliberate failure at step %d" % self.n)
        finally:
            with _lock:
                RUNNING["now"] -= 1

    def progress(self):
        return Progress(self.n / self.config["steps"], f"step {self.n}", {"steps": [float(self.n)]})

    def result(self):
        return {"steps": self.n, "weights": torch.arange(self.n, dtype=torch.float32)}


register_kind(RunKind("test-countdown", "Countdown", Countdown, describe=lambda c: c["name"],
                      summary=lambda r: {"steps": r["steps"]}))
register_kind(RunKind("test-after", "Dependent countdown", Countdown, describe=lambda c: c["name"],
                      requires=lambda c: [RunSpec("test-countdown", c["needs"])]))


def countdown(name, steps=3, seconds=0.01, **kw) -> RunSpec:
    return RunSpec("test-countdown", {"name": name, "steps": steps, "seconds": seconds, **kw})


@pytest.fixture
def runner(tmp_path):
    EVENTS.clear()
    RUNNING.update(now=0, max=0)
    r = JobRunner(RunStore(tmp_path / "runs"), workers=1, executor=ThreadExecutor())
    yield r
    r.close()


def starts() -> list[str]:
    return [name for what, name, _ in EVENTS if what == "start"]


# ---------------------------------------------------------------- protocol

def test_drive_steps_until_done_or_stopped():
    run = Countdown({"name": "a", "steps": 5, "seconds": 0}, None)
    seen = []
    result, status = drive(run, seen.append)
    assert status == "finished" and result["steps"] == 5 and [p.fraction for p in seen] == [0.2, 0.4, 0.6, 0.8, 1.0]
    run = Countdown({"name": "b", "steps": 5, "seconds": 0}, None)
    result, status = drive(run, should_stop=lambda: run.n >= 2)
    assert status == "stopped" and result["steps"] == 2


def test_spec_key_ignores_dict_order_and_sees_every_setting():
    a = RunSpec("distill", {"x": 1, "y": {"b": 2, "a": 1}})
    assert a.key == RunSpec("distill", {"y": {"a": 1, "b": 2}, "x": 1}).key
    assert a.key != RunSpec("distill", {"x": 2, "y": {"a": 1, "b": 2}}).key
    assert a.key != RunSpec("teacher", a.config).key


# ---------------------------------------------------------------- codec

def test_codec_round_trip_of_the_engine_results(digits, digits_teacher):
    from kdcore.distill import distill_and_compare
    from kdcore.presets import default_kd, default_student
    from kdcore.train import TrainConfig
    student, train = default_student("digits")
    res = distill_and_compare(digits, digits_teacher.logits, digits_teacher.metrics, student,
                              TrainConfig(**{**train.to_dict(), "epochs": 2}), default_kd("digits"))
    ctx = RunContext()
    for original in (res, digits_teacher):
        doc, tensors = codec.encode(original)
        back = codec.decode(doc, tensors, ctx)
        assert type(back) is type(original)
        for name in ("distilled", "scratch", "model"):
            if hasattr(original, name):
                a, b = getattr(original, name).state_dict(), getattr(back, name).state_dict()
                assert a.keys() == b.keys()
                assert all(torch.equal(a[k], b[k]) for k in a)   # bit for bit
                x = digits.X_test[:50]
                assert torch.equal(getattr(original, name).eval()(x), getattr(back, name).eval()(x))
    back = codec.decode(*codec.encode(res), ctx)
    assert back.distilled_metrics == res.distilled_metrics and back.kd == res.kd
    assert back.distilled_history.to_records() == res.distilled_history.to_records()
    assert torch.equal(back.confusion["distilled"], res.confusion["distilled"])


def test_codec_keeps_odd_values():
    obj = {"nan": float("nan"), "inf": float("-inf"), 3: (1, 2), "arr": torch.ones(2).numpy(), "t": (torch.zeros(1),)}
    back = codec.decode(*codec.encode(obj))
    assert back["inf"] == float("-inf") and back["nan"] != back["nan"]
    assert back[3] == (1, 2) and back["arr"].tolist() == [1.0, 1.0] and torch.equal(back["t"][0], torch.zeros(1))


def test_codec_names_what_it_cannot_rebuild():
    doc, tensors = codec.encode({"c": RunSpec("x", {})})
    doc["c"]["__dc__"] = "kdcore.runs:NoSuchClass"
    with pytest.raises(codec.CodecError, match="does not have"):
        codec.decode(doc, tensors)


# ---------------------------------------------------------------- store

def test_store_corrupted_database_is_moved_aside(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    (root / "runs.db").write_bytes(b"this is not a database" * 100)
    store = RunStore(root)
    assert store.notices and "moved aside" in store.notices[0]
    assert list(root.glob("runs.db.damaged-*"))
    rec = store.create(countdown("after-damage"), "after damage")
    assert store.get(rec.id).name == "after damage"


def test_store_missing_artifact_is_reported_for_that_run_alone(runner):
    a, b = runner.submit(countdown("a"), "ws"), runner.submit(countdown("b"), "ws")
    runner.wait(a), runner.wait(b)
    runner.store.artifact_path(a).unlink()
    with pytest.raises(ArtifactUnreadable, match="missing"):
        runner.store.load_result(a)
    assert runner.store.load_result(b)["steps"] == 3
    runner.store.artifact_path(b).write_bytes(b"garbage")
    with pytest.raises(ArtifactUnreadable, match="cannot be read"):
        runner.store.load_result(b)
    assert {r.name for r in runner.store.workspace_runs("ws")} == {"a", "b"}   # still listed


def _write_rows(root, n, tag):
    store = RunStore(root)
    for i in range(n):
        rec = store.create(countdown(f"{tag}-{i}"), f"{tag}-{i}")
        store.link("shared", rec.id)
        store.save_result(rec.id, {"i": i, "w": torch.full((3,), float(i))}, "finished", 0.0)


def test_store_concurrent_writers_threads_and_processes(tmp_path):
    root = tmp_path / "runs"
    RunStore(root)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_write_rows, args=(root, 15, f"p{k}")) for k in range(2)]
    threads = [threading.Thread(target=_write_rows, args=(root, 15, f"t{k}")) for k in range(3)]
    for w in procs + threads:
        w.start()
    for w in procs + threads:
        w.join(120)
    assert all(p.exitcode == 0 for p in procs)
    store = RunStore(root)
    recs = store.workspace_runs("shared")
    assert len(recs) == 5 * 15 and all(r.status == "finished" for r in recs)
    assert all(store.load_result(r.id)["w"][0] == store.load_result(r.id)["i"] for r in recs[:10])


# ---------------------------------------------------------------- runner

def test_queue_is_fair_across_workspaces_and_fifo_within_one(runner):
    blocker = runner.submit(countdown("blocker", steps=3, seconds=0.05), "a")
    ids = [runner.submit(countdown(n), ws) for n, ws in [("a1", "a"), ("a2", "a"), ("a3", "a"), ("b1", "b"), ("c1", "c")]]
    views = {runner.view(i).name: runner.view(i) for i in ids}
    assert views["b1"].ahead == 0 and views["c1"].ahead == 1 and views["a1"].ahead == 2
    for i in [blocker] + ids:
        runner.wait(i)
    assert starts() == ["blocker", "b1", "c1", "a1", "a2", "a3"]


def test_worker_bound_is_respected(tmp_path):
    RUNNING.update(now=0, max=0)
    r = JobRunner(RunStore(tmp_path / "runs"), workers=2, executor=ThreadExecutor())
    try:
        ids = [r.submit(countdown(f"j{i}", steps=4, seconds=0.03), f"ws{i}") for i in range(6)]
        time.sleep(0.05)
        assert sum(1 for i in ids if r.view(i).status == "running") == 2
        for i in ids:
            assert r.wait(i).status == "finished"
        assert RUNNING["max"] == 2
    finally:
        r.close()


def test_identical_runs_are_trained_once_and_shared(runner):
    spec = countdown("same", steps=4, seconds=0.03)
    a, b = runner.submit(spec, "alice"), runner.submit(spec, "bob")
    assert a == b and runner.view(a).watchers == 2
    runner.wait(a)
    again = runner.submit(spec, "carol")             # finished: answered from the store
    assert again == a and starts().count("same") == 1
    assert [r.id for r in runner.store.workspace_runs("carol")] == [a]


def test_stop_keeps_what_was_learned(runner):
    rid = runner.submit(countdown("long", steps=200, seconds=0.01), "ws")
    while runner.view(rid).fraction < 0.05:
        time.sleep(0.01)
    assert runner.stop(rid, "ws") == "stopping"
    v = runner.wait(rid)
    assert v.status == "stopped"
    steps = runner.store.load_result(rid)["steps"]
    assert 0 < steps < 200
    assert torch.equal(runner.store.load_result(rid)["weights"], torch.arange(steps, dtype=torch.float32))
    # a stopped run is not reused: asking again trains it anew
    assert runner.submit(countdown("long", steps=200, seconds=0.01), "ws") != rid


def test_stop_of_a_shared_run_detaches_until_the_last_watcher(runner):
    spec = countdown("shared", steps=100, seconds=0.01)
    rid = runner.submit(spec, "alice")
    runner.submit(spec, "bob")
    assert runner.stop(rid, "alice") == "detached"
    assert runner.view(rid).active
    assert runner.stop(rid, "bob") == "stopping"
    assert runner.wait(rid).status == "stopped"


def test_a_queued_run_can_be_stopped_before_it_starts(runner):
    first = runner.submit(countdown("first", steps=20, seconds=0.01), "ws")
    queued = runner.submit(countdown("queued"), "ws")
    assert runner.stop(queued, "ws") == "stopping"
    assert runner.view(queued).status == "stopped"
    runner.wait(first)
    assert "queued" not in starts()


def test_a_failing_run_is_reported_and_others_go_on(runner):
    bad = runner.submit(countdown("bad", steps=5, fail_at=2), "ws")
    good = runner.submit(countdown("good"), "ws")
    assert runner.wait(bad).status == "failed"
    assert "deliberate failure at step 2" in runner.view(bad).error
    assert runner.wait(good).status == "finished"
    assert runner.store.get(bad).error == runner.view(bad).error


def test_prerequisites_run_first_and_their_failure_is_explained(runner):
    ok = runner.submit(RunSpec("test-after", {"name": "after", "steps": 1, "needs": countdown("need").config}), "ws")
    assert runner.wait(ok).status == "finished" and starts() == ["need", "after"]
    bad = runner.submit(RunSpec("test-after", {"name": "after2", "steps": 1,
                                               "needs": countdown("need2", steps=3, fail_at=1).config}), "ws")
    v = runner.wait(bad)
    assert v.status == "failed" and "did not finish (failed: " in v.error and "deliberate failure" in v.error
    # a finished run answered from the store brings its prerequisites into the new workspace too
    again = runner.submit(RunSpec("test-after", {"name": "after", "steps": 1, "needs": countdown("need").config}), "other")
    assert again == ok and {r.name for r in runner.store.workspace_runs("other")} == {"after", "need"}


def test_runs_survive_a_server_restart(tmp_path):
    # what a server that died leaves behind: one run marked running, one queued, both listed
    store = RunStore(tmp_path / "runs")
    busy = store.create(countdown("busy", steps=5), "busy", status="running").id
    waiting = store.create(countdown("waiting"), "waiting").id
    for rid in (busy, waiting):
        store.link("ws", rid)
    r2 = JobRunner(RunStore(tmp_path / "runs"), workers=1, executor=ThreadExecutor())
    try:
        assert r2.wait(busy).status == "finished" and r2.wait(waiting).status == "finished"
        assert {r.id for r in r2.store.workspace_runs("ws")} == {busy, waiting}   # same runs, none doubled
    finally:
        r2.close()


def test_real_runs_on_worker_processes(tmp_path):
    """The app's set-up: spawned workers train a teacher once for two sessions, then the students."""
    from kdcore.distill import KDConfig
    from kdcore.models import ModelConfig
    from kdcore.runkinds import distill_config
    from kdcore.teachers import TeacherCache, TeacherSpec
    from kdcore.train import TrainConfig
    cache = tmp_path / "teachers"
    r = JobRunner(RunStore(tmp_path / "runs"), workers=2, executor=ProcessExecutor(), cache_root=cache)
    try:
        teacher = TeacherSpec("moons", 0, ModelConfig(hidden=(32,)), TrainConfig(epochs=3), seed=0)
        cfg = distill_config(teacher, ModelConfig(hidden=(4,)), TrainConfig(epochs=3), KDConfig(), 0)
        a = r.submit(RunSpec("distill", cfg), "alice")
        b = r.submit(RunSpec("distill", cfg), "bob")
        assert a == b
        v = r.wait(a, timeout=240)
        assert v.status == "finished", v.error
        res = r.store.load_result(a, RunContext(r.store, TeacherCache(cache)))
        assert res.distilled_history.epochs_run == 3
        assert len([x for x in r.store.workspace_runs("alice") if x.kind == "teacher"]) == 1
        assert TeacherCache(cache).get(teacher, RunContext().dataset("moons", 0)) is not None
    finally:
        r.close()


def test_sqlite_is_in_wal_mode(tmp_path):
    store = RunStore(tmp_path / "runs")
    con = sqlite3.connect(store.db_path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="ray is not installed (optional extra: pip install -r requirements-ray.txt)")
def test_runner_on_a_local_ray_instance(tmp_path):
    """KDLAB_RAY_ADDRESS's path: runs go to Ray tasks; prerequisites' results travel with them;
    progress, Stop and failures come back; the numbers equal an in-process run's."""
    import ray
    from kdcore.distill import KDConfig
    from kdcore.models import ModelConfig
    from kdcore.ray_executor import RayExecutor
    from kdcore.runkinds import distill_config
    from kdcore.teachers import TeacherSpec
    from kdcore.train import TrainConfig
    ray.shutdown()
    teacher = TeacherSpec("moons", 0, ModelConfig(hidden=(32,)), TrainConfig(epochs=3), seed=0)
    cfg = distill_config(teacher, ModelConfig(hidden=(4,)), TrainConfig(epochs=4), KDConfig(), 0)
    try:
        r = JobRunner(RunStore(tmp_path / "runs"), executor=RayExecutor(None, workers=2, init_kwargs={"num_cpus": 2}),
                      cache_root=tmp_path / "ray-teachers")
        rid = r.submit(RunSpec("distill", cfg), "ws")
        v = r.wait(rid, timeout=300)
        assert v.status == "finished", v.error
        on_ray = r.store.load_result(rid, RunContext(r.store))
        local = JobRunner(RunStore(tmp_path / "local"), workers=1, executor=ThreadExecutor(),
                          cache_root=tmp_path / "local-teachers")
        lid = local.submit(RunSpec("distill", cfg), "ws")
        assert local.wait(lid).status == "finished"
        here = local.store.load_result(lid, RunContext(local.store))
        local.close()
        assert on_ray.distilled_metrics["accuracy"] == pytest.approx(here.distilled_metrics["accuracy"], abs=0.02)
        assert r.store.get(rid).history["distilled"]       # the curves came back
        long = r.submit(RunSpec("distill", {**cfg, "train": {**cfg["train"], "epochs": 3000}}), "ws")
        while not r.view(long).curves.get("distilled"):   # the distilled student (a part) has an epoch
            time.sleep(0.1)
        r.stop(long, "ws")
        v = r.wait(long, timeout=120)
        assert v.status == "stopped"
        assert 0 < r.store.load_result(long, RunContext(r.store)).distilled_history.epochs_run < 3000
        bad = r.submit(RunSpec("distill", {**cfg, "dataset": "no-such-data"}), "ws")
        v = r.wait(bad, timeout=120)
        assert v.status == "failed" and v.error
        r.close()
    finally:
        ray.shutdown()


def test_a_stopped_teacher_is_kept_as_a_run_but_never_cached(tmp_path):
    from kdcore.models import ModelConfig
    from kdcore.teachers import TeacherCache, TeacherSpec
    from kdcore.train import TrainConfig
    cache = TeacherCache(tmp_path / "teachers")
    r = JobRunner(RunStore(tmp_path / "runs"), workers=1, executor=ThreadExecutor(), cache_root=cache.root)
    try:
        spec = TeacherSpec("moons", 0, ModelConfig(hidden=(64,)), TrainConfig(epochs=2000), seed=0)
        rid = r.submit(RunSpec("teacher", spec.to_dict()), "ws")
        while r.view(rid).fraction < 0.002:
            time.sleep(0.02)
        r.stop(rid, "ws")
        assert r.wait(rid).status == "stopped"
        stopped = r.store.load_result(rid, RunContext(r.store, cache))
        assert not stopped.complete and 0 < len(stopped.history) < 2000
        ds = RunContext().dataset("moons", 0)
        assert cache.get(spec, ds) is None                      # not the teacher of these settings
        assert r.store.find_finished(RunSpec("teacher", spec.to_dict()).key) is None
    finally:
        r.close()


def test_results_stored_before_a_class_moved_still_load():
    from kdcore import codec, runs as runs_mod
    from kdcore.sizecurve import SizePoint
    assert codec._import("kdcore.tradeoffs:SweepPoint") is SizePoint
    assert runs_mod.kind("size_sweep").name == "size_curve"
    for old, new in codec.MOVED.items():   # every alias points at a class that exists
        assert codec._import(new) is codec._import(old)
