"""Streamlit-side helpers shared by the pages (kdcore stays free of streamlit)."""


def _use_app_navigation() -> None:
    """Make every run go through app.py's `st.navigation`, even a fresh server's first deep link.

    Streamlit sees the `pages/` folder at start-up and, until some run of app.py has called
    `st.navigation`, runs a requested page (say /distill) directly in its old multipage mode:
    no sidebar, no page config, file names as the menu. The first import of this package happens
    inside such a run (every page imports `ui`), so switching the flag here and asking for a
    rerun sends that very first visit through app.py too. No public option does this (checked
    in Streamlit 1.67: the flag is set from the folder's existence, once per process), and the
    product keeps its `pages/` folder; tests/test_streamlit_contract.py fails the day Streamlit
    renames the flag or stops reading it.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
        from streamlit.runtime.scriptrunner import get_script_run_ctx
    except ImportError:  # a future Streamlit without this internal: nothing to fix
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        if get_script_run_ctx() is not None:
            import streamlit as st
            st.rerun()


_use_app_navigation()
