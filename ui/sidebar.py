"""The shared sidebar: dataset and seed, and what this session has made so far."""

from __future__ import annotations

import streamlit as st

from kdcore.models import format_bytes
from ui import state


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
        st.selectbox("Dataset", options, format_func=state.dataset_label,
                     key=state.DATASET_KEY,
                     help="digits is built in and works offline; MNIST and Fashion-MNIST are read "
                          "from the data folder (downloaded when online). Your own datasets are "
                          "added on the “Your data” page.")
        st.number_input("Seed", min_value=0, max_value=10_000, step=1, key=state.SEED_KEY,
                        help="Seeds the data split, initializations and batch order: "
                             "the same seed gives the same numbers.")
        ds, err = state.dataset_or_error()
        if ds is not None:
            st.caption(ds.summary())
        else:
            st.caption("⚠️ dataset not available (see the page)")
        st.text_input("Workspace", key=state.WORKSPACE_KEY, bind="query-params", max_chars=64,
                      help="Your runs are kept under this id, which is in the page's address: a reload, "
                           "a bookmark or a server restart finds them again. Paste another id to open "
                           "that workspace.")


def show_models() -> None:
    """The models this session made, drawn after the page ran (so the newest run is listed)."""
    ds, _ = state.dataset_or_error()
    with st.sidebar:
        recs = state.models(ds) if ds is not None else {}
        if recs:
            st.markdown(f"**Models made this session** ({len(recs)})")
            for r in list(recs.values())[-6:]:
                st.caption(f"{r.name}: {100 * r.accuracy:.1f} %, {format_bytes(r.bytes)}")
