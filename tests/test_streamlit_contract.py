"""What the app assumes of Streamlit's internals, checked so an upgrade that changes them fails here.

`ui/__init__.py` patches one internal (`PagesManager.uses_pages_directory`): no public option turns
off Streamlit's old "pages/ directory" mode, in which a fresh server runs a deep link such as
/distill as a bare page (no app.py: no sidebar, no page config, file names as the menu) until
some run has called `st.navigation`. The product's layout keeps the `pages/` folder, so the lab
switches the flag off. If Streamlit renames the flag or stops reading it, these tests say so.
"""

from __future__ import annotations

import inspect

import streamlit.runtime.scriptrunner.script_runner as script_runner
from streamlit.runtime.pages_manager import PagesManager


def test_pages_manager_still_has_the_flag_the_app_switches_off():
    assert "uses_pages_directory" in vars(PagesManager), (
        "Streamlit renamed PagesManager.uses_pages_directory: update ui/__init__.py's _use_app_navigation")


def test_the_script_runner_still_reads_that_flag_to_choose_the_old_mode():
    source = inspect.getsource(script_runner.ScriptRunner)
    assert "PagesManager.uses_pages_directory" in source and hasattr(script_runner, "_mpa_v1"), (
        "Streamlit changed how it picks the pages/ directory mode: check whether ui/__init__.py's patch "
        "is still needed (a deep link on a fresh server must run app.py's navigation)")


def test_importing_ui_switches_the_old_mode_off():
    import ui
    PagesManager.uses_pages_directory = True
    ui._use_app_navigation()   # outside a script run: switches the flag, asks for no rerun
    assert PagesManager.uses_pages_directory is False
