"""Pages and the job runner: submit a run, watch it live, read its stored result.

- `runner()`: the one JobRunner of this server process (shared by every session).
- `submit(spec, slot=...)`: queue a run for this browser's workspace and remember it as the
  page's current run of that slot (per dataset and seed).
- `current(slot, ds)`: the run a page shows: the one this session last started there, else the
  newest of its kind in the workspace (so a reload or a new tab finds it).
- `watch(run_id, key=...)`: a fragment that refreshes itself a few times a second with the
  progress bar, the queue position, the time left, a small live chart and a Stop button; when
  the run ends it reruns the page, which then draws the stored result. Navigating away leaves
  the run going: the page finds it again on return.
- `result(run_id)`: the decoded result, loaded once per process (read-only: copy before changing).
"""

from __future__ import annotations

import os
import time

import streamlit as st

from kdcore import viz
from kdcore.jobs import UNSTARTED, JobRunner, JobView, freeze_startup_objects
from kdcore.runs import RunContext, RunSpec, kind
from kdcore.store import ArtifactUnreadable, RunStore
from kdcore.text import format_seconds, plural
from ui import present
from ui import frame
from ui import state

DISTILL_SLOT = "distill"   # the Distill page's current run, which Temperature and Prune also read
REFRESH_SECONDS = float(os.environ.get("KDLAB_REFRESH", 1.0))   # the live views' refresh period (s)
CHART_SECONDS = 3.0       # a live chart is redrawn at most this often (the progress bar every refresh)
SUBMIT_WAIT_SECONDS = float(os.environ.get("KDLAB_SUBMIT_WAIT", 3.0))  # a submitting page waits this long for its run to end before it shows
                           # a live view: short runs (a distillation, a sweep on digits) go straight
                           # to their results, with no refresh in between


@st.cache_resource(show_spinner=False)
def runner() -> JobRunner:
    """The server's job runner (workers start once, with the first page that needs them)."""
    job_runner = JobRunner(RunStore(), cache_root=state.teacher_cache().root)
    freeze_startup_objects()   # the server's start-up objects leave the collector's sight
    return job_runner


def store() -> RunStore:
    return runner().store


@st.cache_resource(show_spinner=False)
def _context() -> RunContext:
    return RunContext(store(), state.teacher_cache())


def submit(spec: RunSpec, slot: str | None = None, name: str | None = None,
           wait: float = SUBMIT_WAIT_SECONDS) -> str:
    """Queue `spec` for this workspace; with `slot`, it becomes that page slot's current run.

    Then wait up to `wait` seconds (a spinner, no polling) for it to end, so that a short run's
    page draws its results in this very script run; a longer one is then watched live."""
    run_id = runner().submit(spec, state.workspace(), name)
    if slot is not None:
        cfg = spec.config
        state.set_current_run(slot, cfg.get("dataset"), cfg.get("data_seed"), run_id)
    if wait > 0:
        with st.spinner(f"{kind(spec.kind).title}: training…", show_time=True):
            runner().wait_end(run_id, wait)
    return run_id


def current(slot: str, kind: str, dataset: str | None = None, data_seed: int | None = None) -> str | None:
    """The run a page shows in `slot`: the one started here last, else the workspace's newest."""
    run_id = state.current_run(slot, dataset, data_seed)
    if run_id is not None:
        return run_id
    recs = store().workspace_runs(state.workspace(), kind, dataset, data_seed)
    return recs[0].id if recs else None


def view(run_id: str | None) -> JobView | None:
    return runner().view(run_id) if run_id else None


@st.cache_resource(show_spinner="Loading the stored run…", max_entries=64)
def _load(run_id: str, finished: float | None):
    return store().load_result(run_id, _context())


def result(run_id: str | None):
    """The stored result of an ended run; None for no run, a run still going, one that failed or was
    stopped before it started (nothing stored), or one that cannot be read (with a message)."""
    rec = store().get(run_id) if run_id else None
    if rec is None or rec.status not in ("finished", "stopped") or not store().has_result(run_id):
        return None
    try:
        return _load(run_id, rec.finished)
    except ArtifactUnreadable as err:
        st.error(f"**This run cannot be shown.** {err}")
        return None


def distill_result(ds):
    """The DistillResult the Distill page shows for this dataset and seed (None if none ended yet)."""
    run_id = current(DISTILL_SLOT, "distill", ds.name, ds.seed)
    v = view(run_id)
    if v is None or v.status not in ("finished", "stopped"):
        return None
    try:
        return _load(run_id, store().get(run_id).finished)
    except ArtifactUnreadable:
        return None


def register_distill_models(ds, run_id: str, result=None) -> None:
    """List a distillation's students among this session's models (Prune, Temperature and
    Trade-offs pick from them), with the run that made them (a worker can rebuild them from it)."""
    from kdcore.records import distill_records
    result = result if result is not None else distill_result(ds)
    if result is None:
        return
    rec = store().get(run_id)
    for model_record in distill_records(result, ds.name, ds.seed, rec.spec.to_dict() if rec else None,
                                        rec.display_name if rec else ""):
        state.register(model_record)


def register_workspace_students(ds) -> None:
    """After a reload the session's model list is empty: list the students of every stored run of
    this dataset in the workspace that made some (Distill, Ensembles, Transfer sets), so that pages
    choosing among models (Prune, Trade-offs) find them all, not only those of this session."""
    from kdcore.records import STUDENT_RUN_KINDS, records_of
    done = state.per_user(state.REGISTERED_KEY, set)   # runs already listed in this session: read once
    for kind_name in STUDENT_RUN_KINDS:
        for rec in store().workspace_runs(state.workspace(), kind_name, ds.name, ds.seed):
            if rec.id in done or rec.status not in ("finished", "stopped"):
                continue
            res = result(rec.id)   # None (with a note) for a run that kept nothing or cannot be read
            if res:
                for model_record in records_of(kind_name, res, rec.spec.to_dict(), ds.name, ds.seed,
                                               rec.display_name):
                    state.register(model_record)
            done.add(rec.id)


def status_line(v: JobView) -> str:
    if v.status == "queued":
        if v.waiting_for:
            return f"Waiting for {', '.join(v.waiting_for)} to finish…"
        ahead = "no run" if v.ahead == 0 else plural(v.ahead, "run")
        return f"Queued: {ahead} ahead of yours ({v.running} running on {plural(runner().workers, 'worker')})."
    text = v.text or "running…"
    if v.eta is not None:
        text += f" · about {format_seconds(v.eta)} left"
    if v.watchers > 1:
        text += f" · shared with {plural(v.watchers - 1, 'other session')}"
    return text


def watch(run_id: str, key: str, label: str, chart=None, on_end: str = "app") -> None:
    """Live progress of a run (a fragment, refreshed every REFRESH_SECONDS) with a Stop button.

    chart: optional `f(curves: dict[str, list[float]]) -> figure` for a small live chart.
    When the run ends the whole page reruns (`on_end="app"`) to draw its stored result.
    """

    mine = state.per_user(state.LIVE_VIEWS_KEY).setdefault(key, {})

    @st.fragment(run_every=REFRESH_SECONDS)
    def _live():
        v = view(run_id)
        if v is None or not v.active:
            st.rerun(scope=on_end)
            return
        st.progress(min(max(v.fraction, 0.0), 1.0), text=f"**{label}** · {status_line(v)}")
        if st.button("Stop", key=f"{key}_stop", icon=":material/stop_circle:",
                     help="Stop after the current step and keep what has been learned so far."):
            outcome = runner().stop(run_id, state.workspace())
            if outcome == "detached":
                mine["detached"] = True
        if mine.get("detached"):
            st.caption("Other sessions are watching this run too: it goes on for them, and its "
                       "result will still be listed in your runs.")
        if chart is not None and v.curves and any(v.curves.values()):
            # built again only when a new point arrived, and at most every CHART_SECONDS: an unchanged
            # figure is not drawn again by the browser (a redraw costs it far more than the server)
            stamp = (run_id, tuple(len(c) for c in v.curves.values()))
            cached = mine.get("figure")
            now = time.monotonic()
            if cached is None or cached[0][0] != run_id or (cached[0] != stamp and now - cached[2] >= CHART_SECONDS):
                cached = mine["figure"] = (stamp, chart(v.curves), now)
            present.chart(cached[1], width="stretch", key=f"{key}_chart")

    _live()


def watched_result(run_id: str | None, key: str, label: str, what: str, live_title: str | None = None,
                   chart=None, stop: bool = True, share: bool = True):
    """A page's current run: while it is under way, its live progress and this page's run stops there
    (with `stop=False`, for a page with several runs in tabs, None is returned and the page goes on);
    once it ended, its stored result (None if there is none), after saying how an unfinished run ended.

    live_title: title of the live chart of the run's curves (or `chart`, a function of the curves);
    share: the Share box links to this run (a page with several runs shares its main one)."""
    if share:
        state.set_shown_run(run_id)
    v = view(run_id)
    if v is not None and v.active:
        if chart is None and live_title is not None:
            chart = lambda curves: viz.common.live_curves(curves, live_title)  # noqa: E731
        watch(run_id, key=key, label=label, chart=chart)
        if stop:
            frame.stop()
        return None
    if v is not None:
        explain_end(v, what)
    return result(run_id)


def run_settings(run_id: str | None) -> dict:
    """A stored run's settings for a CSV beside its numbers: run id, dataset, split seed, code version
    and its config flattened (dotted names)."""
    from kdcore.viz.report import flat_settings
    rec = store().get(run_id) if run_id else None
    if rec is None:
        return {}
    return {"run": rec.id, "dataset": rec.dataset, "split seed": rec.data_seed, "code version": rec.code_version,
            **dict(flat_settings(rec.config))}


def explain_end(v: JobView, what: str) -> None:
    """Say how a run that is not finished ended (stopped before it started, failed, interrupted)."""
    if v.status == "stopped" and v.error == UNSTARTED:
        st.info(f"The last {what} was stopped before it started: nothing was trained.")
    elif v.status == "failed":
        st.error(f"**The {what} failed.** {v.error or ''}")
    elif v.status == "interrupted":
        st.warning(f"The {what} was interrupted by a server restart and not started again (an identical run "
                   "had finished or was under way): start it again to see its result here.")
