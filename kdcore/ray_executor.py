"""Runs on a Ray cluster: the job runner's executor when `KDLAB_RAY_ADDRESS` is set.

Each worker slot of the runner is a thread here that sends its job to the cluster as a Ray task
(one CPU, `torch_threads` torch threads) and relays what comes back: progress through a Ray queue
(at most a few messages a second), Stop through a small actor the task polls between steps, and
at the end the encoded result (JSON + tensors), which the slot stores in the local run store.
A task needs nothing from this machine's disk: the results of the runs it requires (its teacher,
an ensemble's members) travel with it, and the data sets are loaded on the worker.

The number of slots defaults to the cluster's CPU count. `address=None` starts (or joins) a
local Ray instance, as the tests do; "auto" or "ray://host:10001" joins a cluster, which receives
kdcore as a `py_module`.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path

from kdcore import codec
from kdcore.runs import RunContext, RunSpec, Throttle, drive, kind


class _StopFlag:
    """A Ray actor holding one flag: the slot sets it, the running task reads it between steps."""

    def __init__(self):
        self.flag = False

    def set(self):
        self.flag = True

    def is_set(self):
        return self.flag


def _remote_execute(spec_dict: dict, given_payloads: dict, progress_queue, stop_flag, torch_threads: int | None,
                    stopping: bool = False):
    """The Ray task: make, drive and encode one run; returns (status, doc, tensors, summary, curves)."""
    import ray
    import torch
    if torch_threads:
        torch.set_num_threads(torch_threads)
    spec = RunSpec.from_dict(spec_dict)
    ctx = RunContext(None, None)
    ctx.stopping = stopping   # stopped while its parts ran: combine what they learned
    for key, (doc, arrays) in given_payloads.items():   # into the context's own dict (it copies what it is given)
        ctx.given[key] = codec.decode(doc, {k: torch.from_numpy(v.copy()) for k, v in arrays.items()}, ctx)
    k = kind(spec.kind)
    run = k.make(spec.config, ctx)
    throttle, check = Throttle(0.2), Throttle(0.25)
    stop_seen = [False]

    def on_progress(p):
        if throttle.ready(force=run.done):
            try:
                progress_queue.put_nowait((p.fraction, p.text, p.curves))
            except Exception:
                pass   # a full queue drops a progress message, never the run

    def should_stop():
        if stopping:
            return True
        if not stop_seen[0] and check.ready():
            stop_seen[0] = ray.get(stop_flag.is_set.remote())
        return stop_seen[0]

    result, status = drive(run, on_progress, should_stop)
    doc, tensors = codec.encode(result)   # its on_finish runs on the server (kdcore.jobs.finish)
    return status, doc, {n: t.numpy() for n, t in tensors.items()}, run.progress().curves


class _RaySlot:
    def __init__(self, executor: "RayExecutor", outbox, store):
        self.inbox, self.stop_event = queue.Queue(), threading.Event()
        self.job = None
        self._executor, self._outbox, self._store = executor, outbox, store
        self.handle = threading.Thread(target=self._loop, daemon=True, name="kdlab-ray-slot")
        self.handle.start()

    def _loop(self):
        while True:
            msg = self.inbox.get()
            if msg is None:
                return
            job_id, spec_dict, extra = msg
            status, error = self._run(job_id, RunSpec.from_dict(spec_dict), extra["ended"], extra["stopping"])
            self._outbox.put(("ended", job_id, status, error))

    def _given(self, spec: RunSpec, ended: dict[str, str]) -> dict:
        """The encoded results of the runs `spec` requires and of its parts (`ended`: key -> id of a
        part that ended, stopped ones included), to travel with the task."""
        from kdcore.runs import UNSTARTED
        out = {}
        k = kind(spec.kind)
        for req in k.requires(spec.config) + k.parts(spec.config):
            rec = self._store.get(ended[req.key]) if req.key in ended else self._store.find_finished(req.key)
            if rec is not None and rec.status in ("finished", "stopped") and rec.error != UNSTARTED:
                doc, tensors = self._store.encoded(rec.id)
                out[req.key] = (doc, {k: v.numpy() for k, v in tensors.items()})
        return out

    def _run(self, job_id: str, spec: RunSpec, ended: dict[str, str], stopping: bool):
        import ray
        from ray.util.queue import Queue
        from kdcore.jobs import _readable, finish
        from kdcore.teachers import TeacherCache
        store = self._store
        t0 = time.perf_counter()
        store.set_status(job_id, "running")
        self._outbox.put(("started", job_id, time.time()))
        progress = Queue(maxsize=100)
        flag = ray.remote(num_cpus=0)(_StopFlag).remote()
        task = ray.remote(num_cpus=1)(_remote_execute)
        ref = task.remote(spec.to_dict(), self._given(spec, ended), progress, flag, self._executor.torch_threads,
                          stopping)
        try:
            stop_sent = False
            while True:
                ready, _ = ray.wait([ref], timeout=0.2)
                while not progress.empty():
                    f, text, curves = progress.get_nowait()
                    self._outbox.put(("progress", job_id, f, text, curves))
                if ready:
                    break
                if self.stop_event.is_set() and not stop_sent:
                    flag.set.remote()
                    stop_sent = True
            status, doc, arrays, curves = ray.get(ref)
            import torch
            cache_root = self._executor.cache_root
            ctx = RunContext(store, TeacherCache(cache_root) if cache_root else None)
            ctx.ended = ended   # its parts, for its time (`kdcore.jobs.finish`)
            result = codec.decode(doc, {k: torch.from_numpy(v.copy()) for k, v in arrays.items()}, ctx)
            finish(job_id, spec, result, status, time.perf_counter() - t0, curves, ctx)
            self._outbox.put(("progress", job_id, 1.0 if status == "finished" else 0.0,
                              f"{status} on the Ray cluster", curves))
            return status, None
        except Exception as err:
            cause = getattr(err, "cause", None) or err
            message = _readable(cause if isinstance(cause, Exception) else err)
            store.set_status(job_id, "failed", message)
            return "failed", message
        finally:
            try:
                progress.shutdown()
                ray.kill(flag)
            except Exception:
                pass


class RayExecutor:
    """The runner's slots on a Ray cluster (see the module docstring)."""
    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, init_kwargs: dict | None = None):
        try:
            import ray
        except ImportError as err:
            raise RuntimeError("Running on Ray needs the optional extra `ray` "
                               "(pip install -r requirements-ray.txt).") from err
        self.address, self.init_kwargs = address, dict(init_kwargs or {})
        self.torch_threads = 1
        self.cache_root = None   # the runner's teacher cache (set by `start`): finished teachers go there
        self._ensure_init()
        self.workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))

    def _ensure_init(self):
        import ray
        if ray.is_initialized():
            return
        kdcore_dir = str(Path(__file__).resolve().parent)
        kwargs = {"include_dashboard": False, "log_to_driver": False, **self.init_kwargs}
        env_vars = {k: v for k, v in os.environ.items() if k.startswith("KDLAB_") and k != "KDLAB_RAY_ADDRESS"}
        if self.address is None:   # a local instance: workers import kdcore from this checkout
            root = str(Path(kdcore_dir).parent)
            env_vars["PYTHONPATH"] = os.pathsep.join(p for p in [root, os.environ.get("PYTHONPATH", "")] if p)
            kwargs.setdefault("runtime_env", {"env_vars": env_vars})
        else:
            kwargs.setdefault("runtime_env", {"py_modules": [kdcore_dir], "env_vars": env_vars})
        ray.init(address=self.address, **kwargs)

    def start(self, n: int, outbox_holder: list, store_root, cache_root, torch_threads) -> list:
        from kdcore.store import RunStore
        if torch_threads:
            self.torch_threads = torch_threads
        self.cache_root = cache_root
        outbox = queue.Queue()
        outbox_holder.append(outbox)
        store = RunStore(store_root)
        return [_RaySlot(self, outbox, store) for _ in range(n)]

    @staticmethod
    def alive(slot) -> bool:
        return slot.handle.is_alive()
