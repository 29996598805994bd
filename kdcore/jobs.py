"""The job runner: one per server process, it runs every session's runs on a bounded pool.

- **Workers**: `workers` slots (default: one per core), each running one run at a time with
  `torch_threads` torch threads (default 1), so N sessions never put N × cores threads on the
  cores. Slots are processes (default; true parallelism, as small nets are Python-bound), threads
  (tests, or where processes cannot start) or a Ray cluster (`RayExecutor`).
- **Queue**: FIFO within a workspace, round-robin between workspaces: a class of 20 that press
  Distill together is served one run each in turn. `view(job)` tells a waiting user how many
  runs are ahead of theirs.
- **Identical runs are shared**: a spec whose key matches a queued or running job attaches to it
  (both users watch one training); one that matches a finished stored run is answered at once.
- **Prerequisites**: a run kind's `requires(config)` (e.g. the teacher of a distillation) is
  submitted first (and shared like any run); the run starts when they have finished, and fails
  with a clear message when one of them was stopped or failed.
- **Parts**: a kind's `parts(config)` (a distillation's three students) are runs of their own, queued
  at once, so that free workers train them side by side; shared like any run (a new α reuses the
  controls), not listed in a workspace. The run itself then combines them in one short step. Its
  view while they train is theirs together; its Stop stops them, and the combination keeps what
  they learned.
- **Stop** keeps what was learned (the run's partial result is stored, status "stopped"). A run
  watched by several workspaces stops only when every watcher asked; until then a Stop detaches.
- Runs live in the run store (`kdcore.store`), not in a page: a user who navigates away finds
  the run again by its id; a server restart re-queues the runs it interrupted.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import multiprocessing as mp
import os
import queue
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from kdcore.runs import UNSTARTED, RunContext, RunSpec, Throttle, drive, kind, kinds
from kdcore.store import ACTIVE, RunStore, dataset_fingerprint

PROGRESS_INTERVAL = 0.2   # seconds between progress messages of one run (a live chart needs no more)


# ---------------------------------------------------------------- the work, in a worker

def execute(job_id: str, spec: RunSpec, ctx: RunContext, should_stop, report) -> tuple[str, str | None]:
    """Make, drive and store one run; `report(event_tuple)` sends progress. Returns (status, error)."""
    store = ctx.store
    k = kind(spec.kind)
    t0 = time.perf_counter()
    store.set_status(job_id, "running")
    report(("started", job_id, time.time()))
    try:
        run = k.make(spec.config, ctx)
        throttle = Throttle(PROGRESS_INTERVAL)

        def on_progress(p):
            if throttle.ready(force=run.done):
                report(("progress", job_id, p.fraction, p.text, p.curves))

        result, status = drive(run, on_progress, should_stop)
        final = run.progress()
        finish(job_id, spec, result, status, time.perf_counter() - t0, final.curves, ctx)
        report(("progress", job_id, final.fraction, final.text, final.curves))
        return status, None
    except Exception as err:  # the run failed: say why, keep the worker
        message = _readable(err)
        store.set_status(job_id, "failed", message)
        return "failed", message


def finish(job_id: str, spec: RunSpec, result, status: str, seconds: float, curves: dict, ctx: RunContext) -> None:
    """After a run, wherever it ran: its kind's `on_finish` (a finished teacher goes into the runner's
    teacher cache), then the result stored with its summary, curves and dataset fingerprint."""
    k = kind(spec.kind)
    if k.on_finish is not None:
        k.on_finish(result, status, ctx)
    seconds = _with_parts(job_id, seconds, ctx)
    fingerprint = None
    cfg = spec.config
    if "dataset" in cfg and "data_seed" in cfg:
        try:
            fingerprint = dataset_fingerprint(ctx.dataset(cfg["dataset"], cfg["data_seed"]))
        except Exception:
            pass
    ctx.store.save_result(job_id, result, status, seconds, k.summary(result), curves, fingerprint)


def _with_parts(job_id: str, seconds: float, ctx: RunContext) -> float:
    """A run's time, its parts' included: from the first start of a part trained for it (not one
    reused from before it was asked for) to now; a run of parts alone only combines them (ms)."""
    rec = ctx.store.get(job_id) if ctx.ended else None
    if rec is None:
        return seconds
    starts = [p.started for p in (ctx.store.get(i) for i in ctx.ended.values())
              if p is not None and p.started and p.started >= rec.created]
    return max(seconds, time.time() - min(starts)) if starts else seconds


def _readable(err: Exception) -> str:
    from kdcore.data import DatasetUnavailable
    from kdcore.runs import RunStopped
    if isinstance(err, (DatasetUnavailable, RunStopped, ValueError)):
        return str(err)
    if isinstance(err, MemoryError) or "out of memory" in str(err).lower():
        return "the run ran out of memory; try a smaller model or batch"
    tb = traceback.format_exception_only(type(err), err)[-1].strip()
    return f"the run failed: {tb}"


def freeze_startup_objects() -> None:
    """Move what a long-lived process holds after its start (torch, plotly, pandas, Streamlit, the kinds'
    modules: ~330 000 objects, alive until it exits) out of the garbage collector's sight (`gc.freeze`).
    Python's full collections, which run by themselves from time to time, walked them all: 190-280 ms
    with the GIL held, measured in the served app, twice in 16 Distill clicks, each in the middle of
    someone's click (21-31 ms after). Once per process: the server calls it when its runner starts,
    each worker after its warm-up."""
    global _FROZEN
    if not _FROZEN:
        gc.collect()
        gc.freeze()
        _FROZEN = True


_FROZEN = False


def _warm_up(ds) -> None:
    """One epoch of a tiny distillation, alone and batched as a sweep trains, thrown away: a process's
    first training pays ~1 s of torch's one-time set-up (autograd, the optimizer's kernels), measured
    on the second worker's first student (0.64 s instead of 0.24 s) and first sweep chunk (1.2 s
    instead of 0.5 s). Paid here, at start-up, not in the first user's click. Seeded models and its
    own data: the shared RNG's state is left as it was."""
    import torch
    from kdcore.models import ModelConfig, build_model
    from kdcore.sweep import BatchedKD, StudentSpec
    from kdcore.train import TrainConfig, Trainer, seeded_model
    tiny, train = ModelConfig(hidden=(8,)), TrainConfig(epochs=1)
    logits = torch.zeros(len(ds.X_train), ds.n_classes)
    model = seeded_model(lambda: build_model(tiny, ds.input_shape, ds.n_classes), 0)
    Trainer(model, ds.X_train, ds.y_train, train, 0, teacher_logits=logits, temperature=2.0, alpha=0.5,
            X_val=ds.X_val, y_val=ds.y_val).run_epoch()
    BatchedKD(ds, {"train": logits, "test": torch.zeros(len(ds.X_test), ds.n_classes)}, tiny, train,
              [StudentSpec(8, 2.0, 0.5, 0), StudentSpec(8, 4.0, 0.5, 0)]).step()


def _worker_loop(inbox, outbox, stop_event, store_root: str, cache_root: str | None, torch_threads: int | None):
    """A worker slot: take jobs from `inbox` until None, run each, post events to `outbox`."""
    import torch
    if torch_threads:
        torch.set_num_threads(torch_threads)
    from kdcore.teachers import TeacherCache
    store = RunStore(store_root)
    ctx = RunContext(store, TeacherCache(cache_root) if cache_root else None)
    kinds()                     # import every kind's module now, not in the first user's run
    try:
        _warm_up(ctx.dataset("digits", 0))   # the default dataset: loaded before anyone waits for it
    except Exception:
        pass
    freeze_startup_objects()
    outbox.put(("ready", None))
    while True:
        msg = inbox.get()
        if msg is None:
            return
        job_id, spec_dict, extra = msg
        ctx.ended, ctx.stopping = extra["ended"], extra["stopping"]
        should_stop = (lambda: True) if ctx.stopping else stop_event.is_set
        status, error = execute(job_id, RunSpec.from_dict(spec_dict), ctx, should_stop, outbox.put)
        outbox.put(("ended", job_id, status, error))


# ---------------------------------------------------------------- executors: where slots live

class _Slot:
    def __init__(self, inbox, stop_event, handle):
        self.inbox, self.stop_event, self.handle = inbox, stop_event, handle
        self.job: str | None = None


@contextlib.contextmanager
def _main_module_hidden():
    """Spawned workers need nothing from `__main__` (the streamlit launcher, a test runner, a
    notebook): hide it so that spawn does not re-run it in every worker."""
    main = sys.modules.get("__main__")
    saved = {a: main.__dict__[a] for a in ("__file__", "__spec__") if main is not None and a in main.__dict__}
    try:
        for a in saved:
            if a == "__spec__":
                main.__spec__ = None
            else:
                del main.__dict__[a]
        yield
    finally:
        for a, v in saved.items():
            main.__dict__[a] = v


class ProcessExecutor:
    """Worker processes (spawned: no fork of a threaded server)."""
    name = "processes"

    def start(self, n: int, outbox_holder: list, store_root, cache_root, torch_threads) -> list[_Slot]:
        ctx = mp.get_context("spawn")
        outbox = ctx.Queue()
        outbox_holder.append(outbox)
        slots = []
        with _main_module_hidden():
            for i in range(n):
                inbox, stop = ctx.Queue(), ctx.Event()
                p = ctx.Process(target=_worker_loop, name=f"kdlab-worker-{i}", daemon=True,
                                args=(inbox, outbox, stop, str(store_root), cache_root, torch_threads))
                p.start()
                slots.append(_Slot(inbox, stop, p))
        return slots

    @staticmethod
    def alive(slot: _Slot) -> bool:
        return slot.handle.is_alive()


class ThreadExecutor:
    """Worker threads in this process (tests; torch threads are then shared by the process)."""
    name = "threads"

    def start(self, n: int, outbox_holder: list, store_root, cache_root, torch_threads) -> list[_Slot]:
        outbox = queue.Queue()
        outbox_holder.append(outbox)
        slots = []
        for i in range(n):
            inbox, stop = queue.Queue(), threading.Event()
            t = threading.Thread(target=_worker_loop, name=f"kdlab-worker-{i}", daemon=True,
                                 args=(inbox, outbox, stop, str(store_root), cache_root, None))
            t.start()
            slots.append(_Slot(inbox, stop, t))
        return slots

    @staticmethod
    def alive(slot: _Slot) -> bool:
        return slot.handle.is_alive()


# ---------------------------------------------------------------- the runner

@dataclass
class _Job:
    id: str
    spec: RunSpec
    name: str
    owner: str                       # the workspace that asked first (for fair order)
    seq: int
    needs: list[str]                 # ids of the runs to end first: requirements, then parts
    watchers: set[str] = field(default_factory=set)
    parts: dict[str, str] = field(default_factory=dict)   # its parts: RunSpec key -> run id
    stopping: bool = False           # stopped while its parts ran: combine what they learned
    status: str = "queued"
    fraction: float = 0.0
    text: str = "waiting for a worker"
    curves: dict = field(default_factory=dict)
    error: str | None = None
    started: float | None = None
    ended: float | None = None
    slot: int | None = None


@dataclass
class JobView:
    """What a page shows of a job: a snapshot, safe to read without locks."""
    id: str
    kind: str
    name: str
    status: str                       # queued, running, finished, stopped, failed, interrupted
    fraction: float
    text: str
    curves: dict
    error: str | None
    ahead: int = 0                    # queued runs that will start before this one
    running: int = 0                  # runs on the workers now
    elapsed: float = 0.0              # seconds since it started
    eta: float | None = None          # seconds left, estimated from the progress so far
    watchers: int = 1
    waiting_for: list[str] = field(default_factory=list)   # names of required runs not yet done

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


class JobRunner:
    """The process-wide runner (see the module docstring). Thread-safe."""

    def __init__(self, store: RunStore | None = None, workers: int | None = None,
                 torch_threads: int | None = 1, executor=None, cache_root: str | Path | None = None,
                 restore: bool = True):
        self.store = store or RunStore()
        self.executor = executor or _default_executor()
        self.workers = max(1, int(workers or os.environ.get("KDLAB_WORKERS")
                                  or getattr(self.executor, "workers", None) or os.cpu_count() or 1))
        env_threads = os.environ.get("KDLAB_TORCH_THREADS")
        self.torch_threads = int(env_threads) if env_threads else torch_threads
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)   # notified on every job event
        self._jobs: dict[str, _Job] = {}
        self._by_key: dict[str, str] = {}
        self._queue: list[str] = []
        self._served: dict[str, int] = {}
        self._seq = itertools.count()
        holder: list = []
        self._cache_root = str(cache_root) if cache_root else None
        self._slots = self.executor.start(self.workers, holder, self.store.root, self._cache_root,
                                          self.torch_threads)
        self._outbox = holder[0]
        self._closed = False
        self._collector = threading.Thread(target=self._collect, name="kdlab-runner", daemon=True)
        self._collector.start()
        if restore:
            self._restore()

    # ---------------------------------------------------------------- submitting

    def submit(self, spec: RunSpec, workspace: str, name: str | None = None) -> str:
        """Queue `spec` for `workspace` (or join an identical queued/running run, or reuse a finished
        one); returns the run id. The run is listed in the workspace at once."""
        if not kind(spec.kind).listed:
            raise ValueError(f"a {kind(spec.kind).title.lower()} run is only a part of other runs; submit those")
        return self._submit(spec, workspace, name)

    def _submit(self, spec: RunSpec, workspace: str, name: str | None = None, part_of: str | None = None) -> str:
        """`submit`; with `part_of` (the key of the run it is a part of) the run is not listed, and
        its watcher is that run, not the workspace."""
        k = kind(spec.kind)
        watcher = workspace if part_of is None else _part_watcher(part_of)
        with self._lock:
            jid = self._by_key.get(spec.key)
            if jid is not None and self._jobs[jid].status in ACTIVE:
                job = self._jobs[jid]
                job.watchers.add(watcher)
                if part_of is None:
                    self.store.link(workspace, jid, name)
                return jid
            done = self.store.find_finished(spec.key)
            if done is not None:   # answered from the store: list it, and what it was made from
                for req in k.requires(spec.config):
                    self.submit(req, workspace)
                if part_of is None:
                    self.store.link(workspace, done.id, name)
                return done.id
            needs = [self.submit(req, workspace) for req in k.requires(spec.config)]
            parts = {p.key: self._submit(p, workspace, part_of=spec.key) for p in k.parts(spec.config)}
            default_name = k.describe(spec.config) or k.title
            rec = self.store.create(spec, default_name)
            if part_of is None:
                self.store.link(workspace, rec.id, name)
            self._enqueue(_Job(rec.id, spec, name or default_name, workspace, next(self._seq),
                               needs + list(parts.values()), {watcher}, parts))
            return rec.id

    def _enqueue(self, job: _Job) -> None:
        self._jobs[job.id] = job
        self._by_key[job.spec.key] = job.id
        self._queue.append(job.id)
        self._dispatch()

    def _restore(self) -> None:
        """Runs a previous server left queued or running go back in the queue (same ids)."""
        for rec in self.store.mark_interrupted():
            with self._lock:
                if self.store.find_finished(rec.key) is not None:
                    continue
                self.store.set_status(rec.id, "queued")
                # its requirements and parts interrupted too (made before it, so restored already)
                k = kind(rec.kind)
                parts = {p.key: self._by_key[p.key] for p in k.parts(rec.config) if p.key in self._by_key}
                needs = [self._by_key[r.key] for r in k.requires(rec.config) if r.key in self._by_key]
                needs += list(parts.values())
                self._enqueue(_Job(rec.id, rec.spec, rec.name, "restored", next(self._seq), needs, {"restored"},
                                   parts))

    # ---------------------------------------------------------------- scheduling

    def _ordered_queue(self) -> list[_Job]:
        """Queued jobs in the order they will start: round-robin across owners, FIFO within one."""
        served = dict(self._served)
        pending = sorted((self._jobs[j] for j in self._queue), key=lambda j: j.seq)
        order = []
        while pending:
            best = min(pending, key=lambda j: (served.get(j.owner, 0), j.seq))
            order.append(best)
            pending.remove(best)
            served[best.owner] = served.get(best.owner, 0) + 1
        return order

    def _need_state(self, job: _Job) -> tuple[bool, str | None]:
        """(ready, failure message) of a queued job's prerequisites."""
        for nid in job.needs:
            need = self._jobs.get(nid)
            status = need.status if need is not None else (self.store.get(nid).status if self.store.get(nid) else "failed")
            if status in ACTIVE:
                return False, None
            if status == "stopped" and job.stopping and nid in job.parts.values():
                continue   # stopped with its run: combined as it is
            if status != "finished":
                title = kind(need.spec.kind).title.lower() if need else "required run"
                why = f"{status}: {need.error}" if need is not None and need.error else status
                return False, f"its {title} did not finish ({why})"
        return True, None

    def _dispatch(self) -> None:
        with self._lock:
            if self._closed:
                return
            for job in self._ordered_queue():
                ready, failure = self._need_state(job)
                if failure:
                    self._queue.remove(job.id)
                    self._end(job, "failed", f"This run cannot start: {failure}.")
                    self.store.set_status(job.id, "failed", job.error)
                    continue
                if not ready:
                    continue
                free = [i for i, s in enumerate(self._slots) if s.job is None]
                if not free:
                    return
                i = free[0]
                slot = self._slots[i]
                slot.stop_event.clear()
                slot.job = job.id
                job.slot, job.status, job.text = i, "running", "starting…"
                job.started = time.time()
                self._queue.remove(job.id)
                if not job.parts:   # combining parts is no turn of its own: they had theirs
                    self._served[job.owner] = self._served.get(job.owner, 0) + 1
                slot.inbox.put((job.id, job.spec.to_dict(), {"ended": job.parts, "stopping": job.stopping}))

    def _end(self, job: _Job, status: str, error: str | None = None) -> None:
        job.status, job.error, job.ended = status, error, time.time()
        self._changed.notify_all()
        if status != "finished" and self._by_key.get(job.spec.key) == job.id:
            del self._by_key[job.spec.key]   # a stopped or failed run may be asked for again

    def _collect(self) -> None:
        while not self._closed:
            try:
                event = self._outbox.get(timeout=0.5)
            except queue.Empty:
                self._check_workers()
                continue
            except (EOFError, OSError):
                return
            with self._lock:
                self._on_event(event)

    def _on_event(self, event) -> None:
        what = event[0]
        if what == "ready":
            return
        job = self._jobs.get(event[1])
        if job is None:
            return
        self._changed.notify_all()
        if what == "started":
            job.started = event[2]
        elif what == "progress":
            _, _, job.fraction, job.text, job.curves = event
        elif what == "ended":
            _, _, status, error = event
            if job.slot is not None:
                self._slots[job.slot].job = None
                job.slot = None
            self._end(job, status, error)
            self._dispatch()

    def _check_workers(self) -> None:
        """A worker that died (killed, out of memory) fails its run and is replaced."""
        with self._lock:
            for i, slot in enumerate(self._slots):
                if not self.executor.alive(slot) and not self._closed:
                    if slot.job is not None:
                        job = self._jobs[slot.job]
                        self._end(job, "failed", "its worker process ended unexpectedly (out of memory?)")
                        self.store.set_status(job.id, "failed", job.error)
                    holder: list = []
                    new = self.executor.start(1, holder, self.store.root, self._cache_root, self.torch_threads)[0]
                    # the new slot posts to its own outbox: forward it into ours
                    threading.Thread(target=_forward, args=(holder[0], self._outbox), daemon=True).start()
                    self._slots[i] = new
            self._dispatch()

    # ---------------------------------------------------------------- watching and stopping

    def find_active(self, spec: RunSpec) -> str | None:
        """The id of the queued or running run of `spec`, if any (whoever asked for it)."""
        with self._lock:
            jid = self._by_key.get(spec.key)
            return jid if jid is not None and self._jobs[jid].status in ACTIVE else None

    def view(self, run_id: str) -> JobView | None:
        """A snapshot of a run: live while the runner has it, else from the store."""
        with self._lock:
            job = self._jobs.get(run_id)
            if job is not None:
                running = sum(1 for s in self._slots if s.job is not None)
                together = self._parts_view(job, running) if job.status == "queued" and job.parts else None
                if together is not None:
                    return together
                ahead = 0
                if job.status == "queued":   # its first queued part's place for a run of parts
                    mine = {job.id} | {p for p in job.parts.values() if p in self._jobs}
                    for other in self._ordered_queue():
                        if other.id in mine:
                            break
                        ahead += 0 if other.parts else 1   # combining parts takes no worker for long
                elapsed = time.time() - job.started if job.started and job.status == "running" else \
                    ((job.ended or time.time()) - job.started if job.started else 0.0)
                eta = elapsed * (1 - job.fraction) / job.fraction if job.status == "running" and \
                    job.fraction > 0.02 else None
                waiting = [f"{self._jobs[n].name} ({100 * self._jobs[n].fraction:.0f} %)" for n in job.needs
                           if n in self._jobs and self._jobs[n].status in ACTIVE and n not in job.parts.values()]
                return JobView(job.id, job.spec.kind, job.name, job.status, job.fraction, job.text, job.curves,
                               job.error, ahead, running, elapsed, eta, len(job.watchers), waiting)
        rec = self.store.get(run_id)
        if rec is None:
            return None
        return JobView(rec.id, rec.kind, rec.display_name, rec.status, 1.0 if rec.status == "finished" else 0.0,
                       "", rec.history, rec.error, elapsed=rec.seconds or 0.0)

    def _parts_view(self, job: _Job, running: int) -> JobView | None:
        """The view of a run whose parts are under way: their progress together (mean fraction,
        every curve, the running ones' texts). None while its requirements or all parts still wait."""
        if any(n in self._jobs and self._jobs[n].status in ACTIVE for n in job.needs if n not in job.parts.values()):
            return None
        parts = [self._jobs.get(pid) for pid in job.parts.values()]
        if all(p is not None and p.status == "queued" for p in parts):
            return None
        fractions, texts, curves, starts, etas = [], [], {}, [], []
        now = time.time()
        for pid, p in zip(job.parts.values(), parts):
            if p is None:   # finished before this run was asked for: from the store
                rec = self.store.get(pid)
                fractions.append(1.0)
                curves.update(rec.history if rec is not None else {})
                continue
            fractions.append(1.0 if p.status == "finished" else p.fraction)
            curves.update(p.curves)
            if p.status == "running":
                texts.append(p.text)
                if p.started and p.fraction > 0.02:   # each part at its own pace; the slowest decides
                    etas.append((now - p.started) * (1 - p.fraction) / p.fraction)
            if p.started:
                starts.append(p.started)
        fraction = sum(fractions) / len(fractions)
        elapsed = now - min(starts) if starts else 0.0
        waiting = any(p is not None and p.status == "queued" for p in parts)   # not started: no pace yet
        eta = max(etas) if etas and not waiting else None
        text = "stopping after this epoch…" if job.stopping else " · ".join(texts) or "combining the results…"
        return JobView(job.id, job.spec.kind, job.name, "running", fraction, text, curves, None, 0, running,
                       elapsed, eta, len(job.watchers), [])

    def wait_end(self, run_id: str, timeout: float) -> JobView | None:
        """Block until the run has ended or `timeout` seconds pass (no polling); return its view."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                job = self._jobs.get(run_id)
                left = deadline - time.monotonic()
                if job is None or job.status not in ACTIVE or left <= 0:
                    break
                self._changed.wait(left)
        return self.view(run_id)

    def stop(self, run_id: str, workspace: str) -> str:
        """Ask to stop a run for `workspace`. Returns "stopping", "detached" (others still watch it:
        it goes on for them) or "ended" (it had already ended)."""
        with self._lock:
            job = self._jobs.get(run_id)
            if job is None or job.status not in ACTIVE:
                return "ended"
            if len(job.watchers - {workspace}) > 0 and workspace in job.watchers:
                job.watchers.discard(workspace)
                return "detached"
            if job.status == "queued" and job.parts:
                parts = [self._jobs.get(pid) for pid in job.parts.values()]
                if not all(p is not None and p.status == "queued" for p in parts):
                    job.stopping = True   # some part learned something: stop the others, then combine
                    for p in parts:
                        if p is not None and p.status in ACTIVE:
                            self.stop(p.id, _part_watcher(job.spec.key))
                    self._changed.notify_all()
                    return "stopping"
            if job.status == "queued":
                self._queue.remove(job.id)
                self._end(job, "stopped", UNSTARTED)
                self.store.set_status(job.id, "stopped", job.error)
                for pid in job.parts.values():   # none started: nothing to keep
                    if pid in self._jobs:
                        self.stop(pid, _part_watcher(job.spec.key))
                self._dispatch()
                return "stopping"
            self._slots[job.slot].stop_event.set()
            job.text = "stopping after this step…"
            self._changed.notify_all()
            return "stopping"

    def active(self, workspace: str | None = None) -> list[JobView]:
        with self._lock:
            ids = [j.id for j in self._jobs.values() if j.status in ACTIVE and
                   (workspace is None or workspace in j.watchers)]
        return [v for v in (self.view(i) for i in ids) if v is not None]

    def wait(self, run_id: str, timeout: float = 600.0) -> JobView:
        """Block until a run has ended (tests, benchmarks, scripts); TimeoutError if it has not."""
        v = self.wait_end(run_id, timeout)
        if v is not None and v.active:
            raise TimeoutError(f"run {run_id} still {v.status} after {timeout:.0f} s")
        return v

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for s in self._slots:
                s.stop_event.set()
                s.inbox.put(None)
        for s in self._slots:
            if hasattr(s.handle, "join"):
                s.handle.join(timeout=5)


def _part_watcher(key: str) -> str:
    """Who watches a part: the run it is part of (by key), so that one run's Stop leaves a part that
    another run shares going on."""
    return f"part of run {key}"


def _forward(src, dst) -> None:
    while True:
        try:
            dst.put(src.get())
        except (EOFError, OSError):
            return


def _default_executor():
    choice = os.environ.get("KDLAB_EXECUTOR", "processes")
    if choice == "threads":
        return ThreadExecutor()
    if choice == "ray" or os.environ.get("KDLAB_RAY_ADDRESS"):
        from kdcore.ray_executor import RayExecutor
        return RayExecutor(os.environ.get("KDLAB_RAY_ADDRESS") or None)
    return ProcessExecutor()
