"""What the app assumes of Streamlit's internals, checked so an upgrade that changes them fails here.

- `ui/__init__.py` patches one internal (`PagesManager.uses_pages_directory`): no public option turns
  off Streamlit's old "pages/ directory" mode, in which a fresh server runs a deep link such as
  /distill as a bare page (no app.py: no sidebar, no page config, file names as the menu) until some
  run has called `st.navigation`. The product's layout keeps the `pages/` folder, so the lab switches
  the flag off.
- `ui/links.py` reads the metadata Streamlit keeps for widgets bound to the URL, to say which
  parameter of a link a widget could not use (Streamlit drops such values silently, and no public
  API tells). Where the metadata is missing the app goes on without those notes.
- `.streamlit/config.toml` turns off `runner.postScriptGC` (a hidden option: a full garbage collection
  after every script run, 160 ms here): the option must still exist, or the setting does nothing.
If Streamlit renames any of it, these tests say so.
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


# ---- ui/links.py reads the metadata Streamlit keeps for a bound widget (no public API gives it) ----

def test_the_widget_metadata_the_link_notes_read_is_still_there():
    """ui/links.py finds a key's widget metadata (its serializer, deserializer, value type, options and
    `bind`) to say which URL value a widget could not use. If Streamlit moves any of it, the notes
    quietly disappear in the app: this test says so first."""
    from streamlit.runtime.state.common import WidgetMetadata
    from streamlit.runtime.state.query_params import _coerce_value_for_query_url, parse_url_param
    from streamlit.runtime.state.session_state import SessionState
    from streamlit.runtime.scriptrunner_utils.script_run_context import ScriptRunContext
    assert callable(_coerce_value_for_query_url) and callable(parse_url_param)
    for name in ("get_widget_id_from_key", "get_widget_metadata"):
        assert hasattr(SessionState, name), name
    fields = set(getattr(WidgetMetadata, "__dataclass_fields__", {}))
    assert {"serializer", "deserializer", "value_type", "bind", "formatted_options"} <= fields, fields
    from streamlit.runtime.scriptrunner_utils import shared_run_state
    assert "widget_user_keys_this_run" in inspect.getsource(shared_run_state)
    assert "session_state" in getattr(ScriptRunContext, "__dataclass_fields__", {})


def test_the_served_config_turns_off_the_collection_after_every_script_run():
    import tomllib
    from pathlib import Path

    from streamlit import config
    assert "runner.postScriptGC" in config._config_options_template, (
        "Streamlit dropped runner.postScriptGC: check whether it still collects garbage after every script run")
    served = tomllib.loads((Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml").read_text())
    assert served["runner"]["postScriptGC"] is False
