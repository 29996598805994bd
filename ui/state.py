"""Shared resources and per-user state for the pages.

Shared, read-only, computed once per process (`st.cache_resource`): datasets
and the teacher cache. Per user (`st.session_state`): the chosen dataset and
seed, the teacher settings, and every model made in this session (for the
views that compare them). Shared objects are never mutated: a page that wants
to change a teacher copies it first (`TrainedTeacher.clone_model()`).
"""

from __future__ import annotations

import re
import secrets

import streamlit as st

from ui import frame

from kdcore import userdata
from kdcore.data import DATASETS, Dataset, DatasetUnavailable, load_dataset
from kdcore.presets import default_teacher_spec
from kdcore.records import ModelRecord
from kdcore.teachers import TeacherCache, TeacherSpec, TrainedTeacher

# ---- every per-user key of the app that is not a widget's own (pages and helpers use these names,
# through the accessors below; a page's widgets keep their keys beside them, prefixed by the page)
DATASET_KEY = "dataset"               # the sidebar's dataset (its selectbox's key; also ?dataset=...)
SEED_KEY = "seed"                     # the sidebar's seed (its number input's key)
TEACHER_SPEC_KEY = "teacher_spec"     # (dataset, seed) -> the TeacherSpec chosen on Distill
MODELS_KEY = "session_models"         # name -> ModelRecord of every model this session made
WORKSPACE_KEY = "ws"                  # also the URL's query parameter (?ws=...) that carries it
CURRENT_RUNS_KEY = "current_runs"     # (slot, dataset, seed) -> the run id a page shows
FIGURES_KEY = "built_figures"         # (page, run id, view...) -> a chart or its data, made once, reused by reruns
REGISTERED_KEY = "registered_runs"    # run ids whose models are already listed in MODELS_KEY
SWEEP_CELL_KEY = "sweep_cell"         # the Sweep page's selected cell (its selectbox's key)
SWEEP_LAST_CLICK_KEY = "sweep_last_click"   # the last heatmap click the Sweep page acted on
TEMPERATURE_STUDENT_KEY = "temperature_student_logits"   # (student module, its test logits)
TEMPERATURE_STANDIN_KEY = "temperature_standin_logits"   # (dataset, seed) -> the stand-in's test logits
TRADEOFFS_LATENCY_KEY = "tradeoffs_latency"    # (record name, id(model)) -> {batch size: Latency}
TRADEOFFS_SIZE_CURVE_ADDED_KEY = "tradeoffs_size_curve_added"   # size-curve run id -> its students plotted?
TRADEOFFS_PANELS_KEY = "tradeoffs_panels"     # (dataset, seed) -> a PTQ panel computed in the page
DATA_TABLES_KEY = "userdata_tables"   # Your data: (upload id, name, delimiter, encoding) -> (DataFrame, notes)
DATA_ADDED_KEY = "data_added"         # Your data: (fingerprint, notes) of the dataset just added, said once
DATA_ATTACHED_KEY = "data_attached"   # Your data: (file name, notes) of the teacher outputs just attached
LIVE_VIEWS_KEY = "live_views"         # a live view's key -> {"detached": bool, "figure": (stamp, fig, time)}
WORKSPACE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{4,64}$")

# ---- the address bar (ui/links.py): every setting is a widget bound to a query parameter ----
PRESENT_KEY = "present"               # presentation mode (?present=1)
RUN_PARAM = "run"                     # ?run=<id>: open a stored run's result (read once, then dropped)
URL_NOTES_KEY = "url_notes"           # (page, [notes]) about parameters that could not be used
URL_SNAPSHOT_KEY = "url_snapshot"     # this script run's query parameters before the page drew its widgets
APP_PARAMS = (DATASET_KEY, SEED_KEY, WORKSPACE_KEY, PRESENT_KEY)   # valid on every page
# each page's settings are bound under its own key prefix(es), so that two pages' parameters never
# collide and a link's parameters can be told apart: page url path -> prefixes of its widget keys
PAGE_PARAM_PREFIXES = {
    "": (),                                          # Home
    "distill": ("distill_",),
    "temperature": ("temperature_",),
    "sweep": ("sweep_",),
    "ensembles": ("ens_",),
    "specialists": ("spec_",),
    "transfer_set": ("to_", "tf_", "tl_"),
    "hinton_mnist": ("hinton_",),
    "sequences": ("seq_",),
    "losses": ("losses_",),
    "prune": ("prune_",),
    "tradeoffs": ("tradeoffs_",),
    "runs": ("runs_",),
    "data": ("data_",),     # Your data: an upload is a file, not a setting; its few options stay off the URL
    "lessons": (),
}
PAGE_TITLES = {"": "Home", "distill": "Distill", "temperature": "Temperature", "sweep": "Sweep",
               "ensembles": "Ensembles", "specialists": "Specialists", "transfer_set": "Transfer sets",
               "hinton_mnist": "Hinton MNIST", "sequences": "Sequences", "losses": "Losses", "prune": "Prune",
               "tradeoffs": "Trade-offs", "runs": "Runs", "data": "Your data", "lessons": "Lessons"}


def page_of_param(key: str) -> str | None:
    """The page (url path) whose setting `key` is; "" for the app's own (dataset, seed...); None if none."""
    if key in APP_PARAMS:
        return ""
    for page, prefixes in PAGE_PARAM_PREFIXES.items():
        if key.startswith(prefixes) and prefixes:
            return page
    return None


def clamp(key: str, lo, hi) -> None:
    """Before a number widget whose bounds depend on the data (an example's index, a count): a value
    kept from another dataset that falls outside them is brought inside (Streamlit refuses it)."""
    v = st.session_state.get(key)
    if isinstance(v, (int, float)) and not isinstance(v, bool) and not lo <= v <= hi:
        st.session_state[key] = type(v)(min(max(v, lo), hi))


def present() -> bool:
    """Presentation mode (large type, settings collapsed, charts sized for a projector)."""
    return bool(st.session_state.get(PRESENT_KEY, False))

DATASET_LABELS = {
    "digits": "digits (8×8, built in)",
    "moons": "moons (2-D)",
    "spirals": "spirals (2-D)",
    "mnist": "MNIST (28×28)",
    "fashion_mnist": "Fashion-MNIST (28×28)",
}
assert set(DATASET_LABELS) == set(DATASETS)


def uploaded_datasets() -> list[dict]:
    """The metadata of this workspace's uploaded datasets (kdcore.userdata), oldest first."""
    return userdata.workspace_datasets(workspace())


def dataset_options() -> list[str]:
    """The dataset picker's choices: the built-in datasets, then this workspace's uploads."""
    return list(DATASET_LABELS) + [userdata.dataset_name(m["fingerprint"]) for m in uploaded_datasets()]


def dataset_label(name: str) -> str:
    """A dataset's name for people: the built-in label, or an upload's own name and size."""
    if name in DATASET_LABELS:
        return DATASET_LABELS[name]
    if userdata.is_user_dataset(name):
        try:
            meta = userdata.read_meta(userdata.fingerprint_of(name))
            return f"{meta['name']} (yours, {meta['n_rows']:,} rows)"
        except DatasetUnavailable:
            return f"{name} (deleted)"
    return name


PENDING_DATASET_KEY = "dataset_pending"   # a dataset chosen by a page, applied before the picker is drawn


def choose_dataset(name: str) -> None:
    """Make `name` the session's dataset from a page (the sidebar's picker, drawn before the page,
    takes it on the next run: call st.rerun() after this)."""
    try:
        st.session_state[DATASET_KEY] = name
    except st.errors.StreamlitAPIException:   # the picker exists in this run: hand it over
        st.session_state[PENDING_DATASET_KEY] = name


def apply_pending_dataset() -> None:
    """Before the picker is drawn: a dataset a page chose in the last run becomes the picker's value."""
    pending = st.session_state.pop(PENDING_DATASET_KEY, None)
    if pending is not None:
        st.session_state[DATASET_KEY] = pending


def new_workspace_id() -> str:
    return secrets.token_urlsafe(9).replace("_", "x").replace("-", "y")


def ensure_workspace() -> str | None:
    """Before the workspace widget is drawn: keep the URL's workspace if it is well formed, else
    start a new one. Returns a note for the user when the URL's value had to be replaced."""
    given = st.session_state.get(WORKSPACE_KEY) or st.query_params.get(WORKSPACE_KEY)
    if given and WORKSPACE_PATTERN.match(str(given)):
        st.session_state[WORKSPACE_KEY] = str(given)
        return None
    st.session_state[WORKSPACE_KEY] = new_workspace_id()
    if given:
        return (f"“{str(given)[:40]}” is not a valid workspace id (4–64 letters, digits, - or _); "
                "a new workspace was started.")
    return None


def workspace() -> str:
    """This browser's workspace id (it is in the URL: a reload or a shared link finds its runs)."""
    ws = st.session_state.get(WORKSPACE_KEY)
    if not ws or not WORKSPACE_PATTERN.match(str(ws)):
        ensure_workspace()   # a page opened without the app's sidebar (tests, scripts)
        ws = st.session_state[WORKSPACE_KEY]
    return ws


def current_run(slot: str, dataset: str | None, data_seed: int | None) -> str | None:
    return st.session_state.get(CURRENT_RUNS_KEY, {}).get((slot, dataset, data_seed))


def set_current_run(slot: str, dataset: str | None, data_seed: int | None, run_id: str) -> None:
    st.session_state.setdefault(CURRENT_RUNS_KEY, {})[(slot, dataset, data_seed)] = run_id


def forget_run(run_id: str) -> None:
    """A deleted run is no page's current run any more."""
    current = st.session_state.get(CURRENT_RUNS_KEY, {})
    for k in [k for k, v in current.items() if v == run_id]:
        del current[k]


def dataset_name() -> str:
    return st.session_state.get(DATASET_KEY, "digits")


def seed() -> int:
    return int(st.session_state.get(SEED_KEY, 0))


@st.cache_resource(show_spinner="Loading the dataset…", max_entries=8)
def _load(name: str, seed: int) -> Dataset:
    return load_dataset(name, seed)


def dataset_or_error() -> tuple[Dataset | None, str | None]:
    """The chosen dataset, or None and a readable reason."""
    try:
        return _load(dataset_name(), seed()), None
    except DatasetUnavailable as err:
        return None, str(err)


def dataset() -> Dataset:
    """The chosen dataset; if it cannot be loaded, say why and stop this page's run."""
    ds, err = dataset_or_error()
    if ds is None:
        st.error(f"**The dataset could not be loaded.** {err}")
        st.info("Pick another dataset in the sidebar; the built-in *digits* always works offline.")
        frame.stop()
    return ds


@st.cache_resource
def teacher_cache() -> TeacherCache:
    """One teacher cache per process, on disk under $KDLAB_CACHE (or ~/.cache/distillation-lab)."""
    return TeacherCache()


def teacher_spec(ds: Dataset) -> TeacherSpec:
    """The teacher settings chosen for this dataset and split (defaults until changed)."""
    specs = st.session_state.setdefault(TEACHER_SPEC_KEY, {})
    spec = specs.get(data_key(ds))
    return spec if spec is not None else default_teacher_spec(ds.name, ds.seed)


def set_teacher_spec(spec: TeacherSpec) -> None:
    st.session_state.setdefault(TEACHER_SPEC_KEY, {})[(spec.dataset, spec.data_seed)] = spec


def cached_teacher(ds: Dataset) -> TrainedTeacher | None:
    """The current teacher if it is already trained (in memory or on disk), without training."""
    return teacher_cache().get(teacher_spec(ds), ds)


def models(ds: Dataset | None = None) -> dict[str, ModelRecord]:
    """Models made in this session (all, or those of one dataset and split), by name."""
    recs = st.session_state.setdefault(MODELS_KEY, {})
    if ds is None:
        return recs
    return {k: r for k, r in recs.items() if r.dataset == ds.name and r.data_seed == ds.seed}


def register(record: ModelRecord) -> None:
    """Add (or replace, by name) a model made in this session."""
    st.session_state.setdefault(MODELS_KEY, {})[record.name] = record


def data_key(ds: Dataset) -> tuple[str, int]:
    """(dataset name, split seed): what per-dataset state is keyed by."""
    return ds.name, ds.seed


def per_user(key: str, default_factory=dict):
    """This user's mutable value under `key` (one of the keys above), made on first use."""
    return st.session_state.setdefault(key, default_factory())


def cached_view(page: str, run_id: str | None, view: tuple, build):
    """A chart (or what a chart is drawn from, e.g. pruning masks) computed once per page, run and view
    (building a plotly figure costs ~25 ms, sending it again ~1 ms): the reruns of a page that only
    change another view reuse it."""
    cache = per_user(FIGURES_KEY)
    key = (page, run_id, *view)
    if key not in cache:
        cache[key] = build()
    return cache[key]


def register_once(run_id: str, register) -> None:
    """Call `register()` (which lists a run's models) once per run and session, not on every rerun."""
    done = per_user(REGISTERED_KEY, set)
    if run_id not in done:
        register()
        done.add(run_id)


SHOWN_RUN_KEY = "links_shown_run"     # the stored run whose result this page run shows (for the Share box)


def set_shown_run(run_id: str | None) -> None:
    """A page says which stored run its results come from (the Share box then links to it too)."""
    st.session_state[SHOWN_RUN_KEY] = run_id


def pop_shown_run() -> str | None:
    return st.session_state.pop(SHOWN_RUN_KEY, None)
