"""The shared sidebar: dataset and seed, and what this session has made so far."""

from __future__ import annotations

import streamlit as st

from kdcore.models import format_bytes
from ui import links, state


def show(key: str = "sidebar") -> None:
    note = state.ensure_workspace()
    with st.sidebar:
        st.markdown("### ⚗️ Distillation Lab")
        if note:
            st.warning(note)
        state.apply_pending_dataset()
        options = state.dataset_options()
        if st.session_state.get(state.DATASET_KEY, "digits") not in options:   # e.g. an upload deleted
            st.session_state[state.DATASET_KEY] = "digits"
        # the address bar carries the option as shown: a built-in dataset by its name (?dataset=moons),
        # an upload by its own name and size (its label below says what a built-in one is)
        name = st.selectbox("Dataset", options, key=state.DATASET_KEY, bind="query-params",
                            format_func=lambda n: n if n in state.DATASET_LABELS else state.dataset_label(n),
                            on_change=links.on_dataset_change,
                            help="digits: 8×8 digits, built in, works offline; moons, spirals: 2-D, generated; "
                                 "mnist, fashion_mnist: 28×28, read from the data folder (downloaded when "
                                 "online). Your own datasets are added on the “Your data” page.")
        if name in state.DATASET_LABELS and state.dataset_label(name) != name:
            st.caption(state.dataset_label(name))
        st.number_input("Seed", min_value=0, max_value=10_000, step=1, key=state.SEED_KEY, bind="query-params",
                        help="Seeds the data split, initializations and batch order: "
                             "the same seed gives the same numbers.")
        ds, err = state.dataset_or_error()
        if ds is not None:
            st.caption(ds.summary())
        else:
            st.caption("⚠️ dataset not available (see the page)")
        st.toggle("Presentation mode", key=state.PRESENT_KEY, bind="query-params",
                  help="Large type, the settings in one line, no toolbar, charts sized for a projector "
                       "(1280 × 720). A link with ?present=1 opens in it.")
        st.text_input("Workspace", key=state.WORKSPACE_KEY, bind="query-params", max_chars=64,
                      help="Your runs are kept under this id, which is in the page's address: a reload, "
                           "a bookmark or a server restart finds them again. Paste another id to open "
                           "that workspace.")


def show_models(page: str = "") -> None:
    """The Share box and the models this session made, drawn after the page ran (so the newest run
    is listed, and the link carries the page's settings and run)."""
    ds, _ = state.dataset_or_error()
    with st.sidebar:
        links.share_box(page)
        recs = state.models(ds) if ds is not None else {}
        if recs:
            st.markdown(f"**Models made this session** ({len(recs)})")
            for r in list(recs.values())[-6:]:
                st.caption(f"{r.name}: {100 * r.accuracy:.1f} %, {format_bytes(r.bytes)}")
