"""The Run protocol: every long experiment is a config, a stepped run and a stored result.

- A **RunSpec** is a run kind's name plus its config as a JSON-able dict (dataset, seed and
  every setting in it). Its `key` (a hash of both) identifies identical runs: the job runner
  trains an identical run once and lets every asker watch it, and a finished one is reused.
- A **run** is any object with `step()` (one unit of work: an epoch, a member, a sparsity
  level), `done`, `progress()` and `result()`; `result()` may be called at any time, and after a
  stop it returns what was learned so far.
- A **RunKind** says how to make the run of a config (`make(config, ctx)`), which runs must be
  finished before it may start (`requires(config)`, e.g. the teacher of a distillation), and what
  to do with a finished result (`on_finish`, e.g. put a teacher in the teacher cache).
  Engine modules register their kinds with `@register_kind`; `kind(name)` finds them.
- `drive(run, on_progress, should_stop)` is the one loop that steps a run. Pages never step runs:
  they submit specs to the job runner (`kdcore.jobs`) and watch.

Results are serialised by `kdcore.codec` into JSON plus tensors (a safetensors file) and stored
by `kdcore.store`; `RunContext` is what a run needs from its surroundings (datasets, the teacher
cache, results of the runs it requires).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

# modules that register run kinds, imported on first use of the registry
KIND_MODULES = (
    "kdcore.runkinds",
    "kdcore.runkinds_sweep",
    "kdcore.runkinds_ensemble",
    "kdcore.runkinds_paper",
    "kdcore.runkinds_compress",
    "kdcore.runkinds_seq",
    "kdcore.runkinds_families",
)


@dataclass
class Progress:
    fraction: float = 0.0                     # share of the work done, in [0, 1]
    text: str = ""                            # one line for a person, e.g. "epoch 3/30 · val 91.2 %"
    curves: dict[str, list[float]] = field(default_factory=dict)   # small live series (e.g. val accuracy)


@runtime_checkable
class Run(Protocol):
    def step(self) -> Any: ...

    @property
    def done(self) -> bool: ...

    def progress(self) -> Progress: ...

    def result(self) -> Any: ...


class EngineRun:
    """Base of a kind's run that wraps an engine object with step()/done/result() (`self.run`):
    the kind adds only its `progress()` (and builds `self.run` in `__init__`)."""
    run: Any

    @property
    def done(self) -> bool:
        return self.run.done

    def step(self):
        self.run.step()

    def result(self):
        return self.run.result()


class CombinedRun:
    """Base of a kind's run made of parts (`RunKind.parts`): its one step is `combine()` (the parts'
    results into its own, through `part_result`); after a Stop that came first, `result()` combines."""
    _result: Any = None

    def combine(self) -> Any:
        raise NotImplementedError

    @property
    def done(self) -> bool:
        return self._result is not None

    def step(self):
        self._result = self.combine()

    def result(self):
        if self._result is None:
            self._result = self.combine()
        return self._result


def pct(x: float) -> str:
    """A fraction as a percentage for progress texts: 0.9123 -> "91.2 %"."""
    return f"{100 * x:.1f} %"


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class RunSpec:
    kind: str                 # a registered kind's name, e.g. "distill"
    config: dict              # JSON-able settings; "dataset" and "data_seed" name the data

    @property
    def key(self) -> str:
        return hashlib.sha256(f"{self.kind}:{canonical_json(self.config)}".encode()).hexdigest()[:24]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "config": self.config}

    @classmethod
    def from_dict(cls, d: dict) -> "RunSpec":
        return cls(d["kind"], d["config"])


@dataclass(frozen=True)
class RunKind:
    name: str                                            # registry key, stored with every run
    title: str                                           # for people: "Distillation", "Teacher", ...
    make: Callable[[dict, "RunContext"], Run]            # the run of a config
    requires: Callable[[dict], list[RunSpec]] = lambda config: []   # runs to finish first
    # independent runs this one is made of (e.g. a distillation's three students): they run at once on
    # any free workers, shared like any run but not listed; this run then combines their results
    # (`ctx.result_of`), also after a Stop (`ctx.stopping`: what they learned until then)
    parts: Callable[[dict], list[RunSpec]] = lambda config: []
    listed: bool = True   # False for a kind that only runs as another run's part: in no workspace, on no page
    on_finish: Callable[[Any, str, "RunContext"], None] | None = None   # (result, status, ctx)
    summary: Callable[[Any], dict] = lambda result: {}   # headline metrics for the Runs table
    describe: Callable[[dict], str] = lambda config: ""  # a default name for a run of this config


_KINDS: dict[str, RunKind] = {}
_loaded = False
_load_lock = threading.Lock()


def register_kind(kind: RunKind) -> RunKind:
    _KINDS[kind.name] = kind
    return kind


def _ensure_loaded() -> None:
    global _loaded
    with _load_lock:
        if not _loaded:
            for mod in KIND_MODULES:
                importlib.import_module(mod)
            _loaded = True


# kinds renamed since runs were stored under their old names: old name -> new name
RENAMED_KINDS = {"size_sweep": "size_curve"}


def kind(name: str) -> RunKind:
    _ensure_loaded()
    try:
        return _KINDS[RENAMED_KINDS.get(name, name)]
    except KeyError:
        raise KeyError(f"unknown run kind {name!r}; known: {', '.join(sorted(_KINDS))}") from None


def kinds() -> dict[str, RunKind]:
    _ensure_loaded()
    return dict(_KINDS)


UNSTARTED = "stopped before it started"   # the error of a run stopped while still queued (it kept nothing)


class RunStopped(Exception):
    """Raised by a RunContext when a required run did not finish (stopped or failed)."""


class RunContext:
    """What runs need from their surroundings, one per worker: datasets (loaded once per process),
    the teacher cache, and the stored results of the runs a run requires."""

    def __init__(self, store=None, teacher_cache=None, data_root=None, given: dict | None = None):
        from kdcore.teachers import TeacherCache
        self.store = store
        self.teachers = teacher_cache if teacher_cache is not None else TeacherCache()
        self.data_root = data_root
        self.given = dict(given or {})   # RunSpec key -> result, handed over with the job (Ray workers)
        self.ended: dict[str, str] = {}  # RunSpec key -> id of the run's part that ended (stopped ones too)
        self.stopping = False            # the run was stopped while its parts ran: combine what they learned

    def dataset(self, name: str, seed: int):
        from kdcore.data import load_dataset
        return load_dataset(name, int(seed), self.data_root)

    def teacher(self, spec_dict: dict):
        """The trained teacher of a spec dict: from the teacher cache, else the stored teacher run
        (the runner finishes it first), else trained here without progress (scripts)."""
        from kdcore.teachers import TeacherSpec
        spec = TeacherSpec.from_dict(spec_dict)
        given = self.given.get(RunSpec("teacher", spec_dict).key)
        if given is not None:
            return given
        ds = self.dataset(spec.dataset, spec.data_seed)
        hit = self.teachers.get(spec, ds)
        if hit is None and self.store is not None:
            rec = self.store.find_finished(RunSpec("teacher", spec_dict).key)
            if rec is not None:
                hit = self.store.load_result(rec.id, self)
        return hit if hit is not None else self.teachers.get_or_train(spec, ds)

    def result_of(self, spec: RunSpec):
        """The decoded result of a finished run this one requires."""
        if spec.key in self.given:
            return self.given[spec.key]
        if self.store is None:
            raise RunStopped(f"no run store to read the {spec.kind} run from")
        if spec.key in self.ended:   # a part, stopped or finished: its own result
            rec = self.store.get(self.ended[spec.key])
            if rec is None or rec.status not in ("finished", "stopped") or rec.error == UNSTARTED:
                raise RunStopped(f"the {kind(spec.kind).title.lower()} run {self.ended[spec.key]} kept nothing")
            return self.store.load_result(rec.id, self)
        rec = self.store.find_finished(spec.key)
        if rec is None:
            raise RunStopped(f"the {kind(spec.kind).title.lower()} this run needs has not finished")
        return self.store.load_result(rec.id, self)


def part_result(ctx: RunContext, spec: RunSpec, make: Callable[[], Run]):
    """The result of one of a run's parts (`RunKind.parts`), for the run that combines them: the part's
    stored result (a stopped part's too, when the run was stopped: `ctx.stopping`). A part stopped
    before it started gives `make()`'s run as it is, untrained; a part never run (a script, no job
    runner) is trained here."""
    try:
        return ctx.result_of(spec)
    except RunStopped:
        run = make()
        return run.result() if ctx.stopping else drive(run)[0]


def drive(run: Run, on_progress: Callable[[Progress], None] | None = None,
          should_stop: Callable[[], bool] | None = None,
          on_step: Callable[[Any], bool | None] | None = None) -> tuple[Any, str]:
    """Step `run` until it is done or asked to stop; return (result, status).

    on_progress(run.progress()) after each step (the job runner's live view); on_step(what step()
    returned) after each step, which may return True to stop there (an engine function's callbacks);
    should_stop() before each step (a Stop button). status is "finished" or "stopped"; a stopped
    run's result is what it learned so far. Exceptions from the run propagate (the job runner
    stores them as a failed run).
    """
    stopped = False
    while not run.done:
        if should_stop is not None and should_stop():
            stopped = True
            break
        out = run.step()
        if on_progress is not None:
            on_progress(run.progress())
        if on_step is not None and on_step(out):
            stopped = not run.done
            break
    return run.result(), ("stopped" if stopped else "finished")


class Throttle:
    """Call-rate limiter: `ready()` is True at most once per `interval` seconds (and on `force`)."""

    def __init__(self, interval: float):
        self.interval, self._last = interval, 0.0

    def ready(self, force: bool = False) -> bool:
        now = time.monotonic()
        if force or now - self._last >= self.interval:
            self._last = now
            return True
        return False
