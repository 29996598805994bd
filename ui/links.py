"""Links: every setting in the address bar, a note for what a link asked and could not get, run links, Share.

Each setting is a widget bound to a query parameter with Streamlit's own mechanism
(`bind="query-params"`, the widget's key is the parameter's name; ui/state.py lists the key
prefixes of each page). The framework seeds a widget from the URL when a page opens, writes the
widget's value back as it changes (a value equal to its default is left out), keeps a bound value
when the user goes to another page and puts it back in the URL on return, and silently drops a
value it cannot use (not a number, out of range, not an option). This module adds what it does
not do:

- `begin(page)` (before the sidebar): a `?run=<id>` link opens that stored run's result on its
  page (its dataset and seed chosen, the run listed in this workspace); a parameter that is no
  setting of this page (garbage, or another page's) is removed from the address bar with a note.
- `end(page)` (after the page): a note for each parameter whose value a widget could not take
  (`check`); the notes stay on top of the page until the user goes to another page.
- `share_params(page)` / `share_box(page)`: the link to this view (the settings that differ from
  their defaults, and the run it shows) to copy.
- `on_dataset_change()`: settings still at their dataset-dependent default follow the new dataset.

The widget metadata used here (serializer, options, default) is Streamlit 1.67's, which
requirements.txt pins; where it is missing nothing breaks: no note, no link parameter.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

import streamlit as st

from ui import state

TRUE_WORDS = {"1", "true", "yes", "on"}          # ?present=1 as well as the widget's own ?present=true


# ---- the widget metadata Streamlit keeps for a key ----

def _session():
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx
        ctx = get_script_run_ctx()
        return ctx, (ctx.session_state._state if ctx is not None else None)
    except Exception:   # another Streamlit: no metadata, so no notes and a link with fewer settings
        return None, None


def _meta(key: str):
    _, s = _session()
    if s is None:
        return None
    try:
        wid = s.get_widget_id_from_key(key)
        meta = s.get_widget_metadata(wid) if wid is not None else None
    except Exception:
        return None
    return meta if meta is not None and getattr(meta, "bind", None) == "query-params" else None


def drawn_this_run(key: str) -> bool:
    ctx, _ = _session()
    try:
        return ctx is not None and key in ctx.shared.widget_user_keys_this_run
    except Exception:
        return False


def _url_form(meta, value) -> str | list[str]:
    from streamlit.runtime.state.query_params import _coerce_value_for_query_url
    return _coerce_value_for_query_url(meta.serializer(value), meta.value_type)


def _same(a, b) -> bool:
    """Parsed URL value against a serialized one (numbers with a tolerance, lists element-wise)."""
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        a, b = list(a) if isinstance(a, (list, tuple)) else [a], list(b) if isinstance(b, (list, tuple)) else [b]
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def check(key: str, raw: str | list[str]) -> tuple[Any, str | None]:
    """One parameter's validation: (the value the widget `key` takes from `raw`, None) when it can
    use it, else (its default, a note saying why not). Uses the widget's own parser, options and
    bounds, so it agrees with what the widget did (it is asked after the widget was drawn)."""
    meta = _meta(key)
    if meta is None:
        return None, None
    from streamlit.runtime.state.query_params import parse_url_param
    default = meta.deserializer(None)
    shown = raw if isinstance(raw, str) else ", ".join(raw)
    shown = shown if len(shown) <= 40 else shown[:37] + "…"
    bad = (None if default is None else default,
           f"`{key}={shown}` could not be used, so the default ({_describe(meta, default)}) is shown.")
    if key == state.PRESENT_KEY and isinstance(raw, str) and raw.lower() in TRUE_WORDS | {"0", "false", "no", "off"}:
        return raw.lower() in TRUE_WORDS, None
    try:
        parsed = parse_url_param(raw, meta.value_type)
        value = meta.deserializer(parsed)
    except (ValueError, TypeError, IndexError, KeyError):
        return bad
    options = getattr(meta, "formatted_options", None)
    if options is not None:
        wanted = [parsed] if isinstance(parsed, str) else list(parsed) if isinstance(parsed, list) else []
        if any(w not in options for w in wanted):
            return bad
    if isinstance(value, list) and not value and parsed:
        return bad
    if _same(value, default) and not _same(parsed, meta.serializer(default)) \
            and not _same(raw if isinstance(raw, list) else [raw], _as_list(_url_form(meta, default))):
        return bad      # the widget fell back to its default: the value was out of range or not an option
    return value, None


def _as_list(v):
    return v if isinstance(v, list) else [v]


def _describe(meta, value) -> str:
    try:
        form = _url_form(meta, value)
    except Exception:
        return str(value)
    return ", ".join(form) if isinstance(form, list) else str(form)


# ---- before and after the page ----

def _notes(page: str) -> list[str]:
    kept = st.session_state.get(state.URL_NOTES_KEY)
    if kept is None or kept[0] != page:
        kept = st.session_state[state.URL_NOTES_KEY] = (page, [])
    return kept[1]


def _add_note(page: str, note: str) -> None:
    notes = _notes(page)
    if note not in notes:
        notes.append(note)


def begin(page: str) -> None:
    """Before the sidebar: open a `?run=` link, drop (with a note) parameters this page has none of,
    and remember the rest, which `end` checks once the widgets have taken them."""
    _notes(page)     # a new page starts without the last page's notes
    qp = st.query_params
    if state.RUN_PARAM in qp:
        run_id = qp.get(state.RUN_PARAM)
        del qp[state.RUN_PARAM]
        note = open_run(page, str(run_id))
        if note:
            _add_note(page, note)
    raw_present = qp.get(state.PRESENT_KEY)
    if raw_present is not None and raw_present.lower() in TRUE_WORDS and state.PRESENT_KEY not in st.session_state:
        st.session_state[state.PRESENT_KEY] = True    # ?present=1: the toggle itself reads only true/false
    snapshot = {}
    for key in list(qp.keys()):
        owner = state.page_of_param(key)
        if owner is None or (owner != "" and owner != page):
            del qp[key]
            where = (f"it is a setting of the {state.PAGE_TITLES.get(owner, owner)} page"
                     if owner else "it is not a setting of this app")
            _add_note(page, f"The link's `{key}` was ignored: {where}.")
            continue
        snapshot[key] = qp.get_all(key)
    st.session_state[state.URL_SNAPSHOT_KEY] = snapshot


def end(page: str, box) -> None:
    """After the page: a note for each parameter a widget drawn in this run could not take, then
    every note of this page into `box` (a container on top of the page)."""
    for key, values in st.session_state.get(state.URL_SNAPSHOT_KEY, {}).items():
        if not drawn_this_run(key) or key == state.WORKSPACE_KEY:   # the workspace has its own note
            continue
        raw = values[0] if len(values) == 1 else values
        _, note = check(key, raw)
        if note:
            _add_note(page, note)
    st.session_state[state.URL_SNAPSHOT_KEY] = {}
    notes = _notes(page)
    if notes:
        with box:
            st.warning("**Some of this link's settings could not be used.**\n\n"
                       + "\n".join(f"- {n}" for n in notes), icon=":material/link_off:")


# ---- run links ----

# run kind -> (page url path, the page's slot for it); a slot is per dataset and data seed
RUN_PAGES = {
    "teacher": ("distill", "teacher"),
    "distill": ("distill", "distill"),
    "sweep": ("sweep", "sweep"),
    "ensemble": ("ensembles", "ensemble"),
    "ensemble_distill": ("ensembles", "ensemble_distill"),
    "specialists": ("specialists", "specialists"),
    "hinton_mnist": ("hinton_mnist", "hinton"),
    "loss_families": ("losses", "losses"),
    "prune_analysis": ("prune", "prune"),
    "prune_retrain": ("prune", "prune_retrain"),
    "prune_iterative": ("prune", "prune_iter"),
    "transfer_fractions": ("transfer_set", "transfer_fractions"),
    "transfer_omitted": ("transfer_set", "transfer_omitted"),
    "transfer_losses": ("transfer_set", "transfer_losses"),
    "size_curve": ("tradeoffs", "tradeoffs_sizes"),
    "quant_panel": ("tradeoffs", "tradeoffs_bits"),
    "prune_quantize": ("tradeoffs", "tradeoffs_pipe"),
    "weightless": ("tradeoffs", "tradeoffs_weightless"),
    "binary_mlp": ("tradeoffs", "tradeoffs_binary"),
    "low_rank": ("tradeoffs", "tradeoffs_lowrank"),
    "seq_teacher": ("runs", "seq_teacher"),   # the Sequences page finds its teacher by its settings
    "class_distance_teacher": ("runs", "class_distance_teacher"),   # a step of a Losses comparison
    "seq_distill": ("sequences", "seq_distill"),
    "seq_groups": ("sequences", "seq_groups"),
    "chunker": ("sequences", "chunker"),
}   # every kind: (the page that shows it, the slot that page reads; tests/test_links.py checks the slots)


def page_of_run(kind: str) -> tuple[str, str]:
    """(page, slot) that shows a run of this kind (a kind renamed since it was stored: its new name);
    the Runs page for a kind no page shows."""
    from kdcore.runs import RENAMED_KINDS
    return RUN_PAGES.get(RENAMED_KINDS.get(kind, kind), ("runs", kind))


def open_run(page: str, run_id: str) -> str | None:
    """Make the stored run `run_id` the one its page shows (its dataset and seed chosen, the run
    listed in this workspace); a note when there is no such run."""
    from ui import runs
    rec = runs.store().get(run_id) if run_id and len(run_id) <= 64 else None
    if rec is None:
        return f"The link's run `{run_id[:40]}` is not stored on this server (deleted, or from another server)."
    ws = state.workspace()
    try:
        runs.store().link(ws, rec.id)      # it is listed among this workspace's runs (the name is kept)
    except Exception:
        pass
    if rec.dataset in state.dataset_options():
        st.session_state[state.DATASET_KEY] = rec.dataset
        if rec.data_seed is not None:
            st.session_state[state.SEED_KEY] = int(rec.data_seed)
    target, slot = page_of_run(rec.kind)
    state.set_current_run(slot, rec.dataset, rec.data_seed, rec.id)
    st.session_state["runs_one"] = rec.id           # the Runs page selects it
    if target != page:
        return (f"The link's run `{rec.id}` ({rec.display_name}) is shown on the "
                f"{state.PAGE_TITLES.get(target, target)} page.")
    return None


# ---- Share ----

def share_params(page: str) -> dict[str, str | list[str]]:
    """This view's settings as query parameters: the app's (dataset, seed, presentation) and the
    page's, those that differ from their defaults (the workspace is left out: it is yours)."""
    out: dict[str, str | list[str]] = {}
    prefixes = state.PAGE_PARAM_PREFIXES.get(page, ())
    for key in list(st.session_state.keys()):
        if key == state.WORKSPACE_KEY or not (key in state.APP_PARAMS or (prefixes and key.startswith(prefixes))):
            continue
        meta = _meta(key)
        if meta is None:
            continue
        value = st.session_state[key]
        try:
            if value == meta.deserializer(None):
                continue
            out[key] = _url_form(meta, value)
        except Exception:
            continue
    if state.PRESENT_KEY in out:
        out[state.PRESENT_KEY] = "1"
    return dict(sorted(out.items(), key=lambda kv: (kv[0] not in state.APP_PARAMS, kv[0])))


def link(page: str, params: dict) -> str:
    """An address in this app: the server's own (when the browser told it) or one relative to it."""
    base = ""
    try:
        base = (st.context.url or "").rstrip("/")
    except Exception:
        pass
    for known in state.PAGE_TITLES:        # the browser's address may still end with the page's path
        if known and base.endswith("/" + known):
            base = base[: -len(known) - 1]
            break
    query = urlencode(params, doseq=True)
    return f"{base}/{page}" + (f"?{query}" if query else "")


def share_box(page: str) -> None:
    """The Share button (in the sidebar): this view's link, and its run's, to copy."""
    run_id = state.pop_shown_run()
    with st.popover("Share", icon=":material/share:", width="stretch"):
        st.markdown("**This view**: the page with its settings (copy with the button at the right).")
        st.code(link(page, share_params(page)), language=None, wrap_lines=True)
        if run_id:
            st.markdown("**This result**: opens the stored run, without training again.")
            st.code(link(page, {state.RUN_PARAM: run_id}), language=None, wrap_lines=True)
        st.caption("Your workspace id is not in these links: whoever opens them keeps their own.")


def on_dataset_change() -> None:
    """The sidebar's dataset changed: every page setting still at its default (which may depend on
    the dataset) is forgotten, so that it takes the new dataset's default; changed ones are kept."""
    for key in list(st.session_state.keys()):
        if state.page_of_param(key) in (None, ""):
            continue
        meta = _meta(key)
        if meta is None:
            continue
        try:
            if st.session_state[key] == meta.deserializer(None):
                del st.session_state[key]
        except Exception:
            continue
