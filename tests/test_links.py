"""Links: every page's settings round-trip through the address bar, garbage parameters fall back to
defaults with a note, a run's link opens its stored result, and settings survive leaving a page.

These AppTests run the app's frame (app.py: navigation, sidebar, link notes, Share box) around the
page, as a browser gets it: `framed(page, params)` opens a fresh session on the page with the link's
query parameters, as a user who pastes the link does.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from streamlit.testing.v1 import AppTest

from conftest import APPTEST_TIMEOUT, ROOT

WIDGET_KINDS = ("slider", "select_slider", "number_input", "selectbox", "radio", "multiselect", "toggle",
                "checkbox", "text_input")

# the pages whose settings are checked, with what they need first; hinton_mnist needs MNIST's files
PAGES = ["distill", "temperature", "sweep", "ensembles", "specialists", "transfer_set", "sequences", "losses",
         "prune", "tradeoffs"]


@pytest.fixture
def framed(monkeypatch):
    """`framed("distill", {"distill_T": "8"})`: a fresh session opened on a page with query parameters,
    through app.py (AppTest would otherwise run a file in pages/ on its own, without the frame)."""
    import streamlit.testing.v1.app_test as app_test_module
    from streamlit.runtime.pages_manager import PagesManager

    class NavigationPages(PagesManager):     # st.navigation's pages, not the pages/ folder's
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            PagesManager.uses_pages_directory = False

    monkeypatch.setattr(app_test_module, "PagesManager", NavigationPages)

    def open_(page: str, params: dict | None = None) -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=APPTEST_TIMEOUT)
        if page:
            at.switch_page(f"pages/{page}.py")
        for k, v in (params or {}).items():
            at.query_params[k] = v
        return at.run()

    return open_


def bound_widgets(at: AppTest, prefixes: tuple[str, ...]) -> dict:
    """The page's widgets whose keys carry its prefix (its URL-bound settings), by key."""
    out = {}
    for kind in WIDGET_KINDS:
        for w in getattr(at, kind):
            if w.key and w.key.startswith(prefixes):
                out[w.key] = w
    return out


def other_value(w) -> str | list[str] | None:
    """A valid value other than the current one, as URL text; None where there is no other."""
    t = type(w).__name__
    if t == "Slider":
        v = w.max if w.value != w.max else w.min
        return str(int(v)) if float(v) == int(v) else str(v)
    if t == "NumberInput":
        v = w.max if w.value != w.max else w.min
        return str(int(v)) if float(v) == int(v) else str(v)
    if t in ("SelectSlider", "Selectbox", "Radio"):
        current = str(w.format_func(w.value)) if w.format_func is not None else str(w.value)
        others = [o for o in w.options if o != current]
        return others[-1] if others else None
    if t == "Multiselect":
        opts = list(w.options)
        return [opts[0]] if opts else None
    if t in ("Toggle", "Checkbox"):
        return str(not w.value).lower()
    return None


def share_link(at: AppTest) -> dict[str, list[str]]:
    """The Share box's first link (this view), as parsed query parameters."""
    links = [c.value for c in at.sidebar.code]
    assert links, "no Share link in the sidebar"
    return parse_qs(urlsplit(links[0]).query)


def values(at: AppTest, prefixes) -> dict:
    return {k: w.value for k, w in bound_widgets(at, prefixes).items()}


@pytest.mark.parametrize("page", PAGES)
def test_settings_round_trip_through_the_link(framed, digits_teacher, page):
    """Every setting of the page: a link with other values → those values on screen → the Share
    link → a fresh session → the same values."""
    from ui.state import PAGE_PARAM_PREFIXES
    prefixes = PAGE_PARAM_PREFIXES[page]
    first = framed(page)
    assert not first.exception, first.exception
    widgets = bound_widgets(first, prefixes)
    assert widgets, f"{page}: no URL-bound settings drawn"
    wanted = {k: v for k, w in widgets.items() if type(w).__name__ != "TextInput"
              and (v := other_value(w)) is not None}
    assert wanted
    second = framed(page, wanted)
    assert not second.exception, second.exception
    assert not second.warning or all("could not be used" not in w.value for w in second.warning), \
        [w.value for w in second.warning]
    shown = bound_widgets(second, prefixes)
    changed = {k for k in wanted if k in shown and values(first, prefixes).get(k) != shown[k].value}
    # every asked setting that is still drawn (a mode switch may hide others) took the link's value
    assert changed == {k for k in wanted if k in shown}, (wanted, {k: shown[k].value for k in shown})
    link = share_link(second)
    for k in changed:
        assert k in link, (k, link)
    third = framed(page, {k: v if len(v) > 1 else v[0] for k, v in link.items()})
    assert not third.exception
    assert values(third, prefixes) == values(second, prefixes)


def garbage_for(w) -> str | None:
    t = type(w).__name__
    if t in ("Slider", "NumberInput"):
        return "1e12" if t == "Slider" else "abc"
    if t in ("SelectSlider", "Selectbox", "Radio", "Multiselect"):
        return "10^12"
    if t in ("Toggle", "Checkbox"):
        return "maybe"
    return None


@pytest.mark.parametrize("page", PAGES)
def test_garbage_parameters_fall_back_to_defaults_with_a_note(framed, digits_teacher, page):
    from ui.state import PAGE_PARAM_PREFIXES
    prefixes = PAGE_PARAM_PREFIXES[page]
    first = framed(page)
    defaults = values(first, prefixes)
    garbage = {k: g for k, w in bound_widgets(first, prefixes).items() if (g := garbage_for(w)) is not None}
    garbage |= {"dataset": "no_such_data", "seed": "-1", "bogus": "1"}
    at = framed(page, garbage)
    assert not at.exception, at.exception
    assert values(at, prefixes) == {k: v for k, v in defaults.items() if k in values(at, prefixes)}
    assert at.selectbox(key="dataset").value == "digits" and at.number_input(key="seed").value == 0
    note = "\n".join(w.value for w in at.warning)
    assert "could not be used" in note and "`bogus`" in note
    drawn = bound_widgets(at, prefixes)
    for k in garbage:
        if k in drawn or k in ("dataset", "seed"):
            assert f"`{k}=" in note, (k, note)


def test_a_link_to_another_pages_setting_is_noted(framed):
    at = framed("distill", {"temperature_T": "8", "distill_T": "8"})
    assert at.slider(key="distill_T").value == 8.0
    note = "\n".join(w.value for w in at.warning)
    assert "`temperature_T`" in note and "Temperature page" in note


def test_settings_survive_leaving_the_page(framed, digits_teacher):
    """Distill's settings (set through its link) are still there after a visit to Temperature,
    and its Share link still carries them."""
    at = framed("distill", {"distill_epochs": "120", "distill_T": "20"})
    assert at.number_input(key="distill_epochs").value == 120
    at.switch_page("pages/temperature.py").run()
    assert not at.exception
    at.switch_page("pages/distill.py").run()
    assert at.number_input(key="distill_epochs").value == 120 and at.slider(key="distill_T").value == 20.0
    link = share_link(at)
    assert link["distill_epochs"] == ["120"] and link["distill_T"] == ["20"]


def test_a_runs_link_opens_its_stored_result_without_training(framed, digits_teacher, settle):
    """Distill a student (2 epochs) in one session; its run link opens the result in a fresh one
    (another workspace), which lists the run and trains nothing."""
    at = framed("distill", {"distill_epochs": "2"})
    at.button(key="FormSubmitter:student_form_digits-Distill").click().run()
    at = settle(at)
    assert at.metric, "no result drawn"
    links = [c.value for c in at.sidebar.code]
    run_link = [u for u in links if "run=" in u]
    assert run_link, links
    run_id = parse_qs(urlsplit(run_link[0]).query)["run"][0]
    from kdcore.store import RunStore
    before = len(RunStore().workspace_runs(at.session_state["ws"]))

    other = framed("distill", {"run": run_id})
    assert not other.exception
    assert [m.value for m in other.metric] == [m.value for m in at.metric]
    assert "2 epochs" in " ".join(c.value for c in other.caption)
    assert other.session_state["ws"] != at.session_state["ws"]
    store = RunStore()
    assert [r.id for r in store.workspace_runs(other.session_state["ws"])] == [run_id]
    assert len(store.workspace_runs(at.session_state["ws"])) == before    # nothing new was trained

    bad = framed("distill", {"run": "no-such-run"})
    assert not bad.exception
    assert any("not stored on this server" in w.value for w in bad.warning)


def test_every_run_kind_links_to_the_slot_its_page_reads():
    """A `?run=` link selects its run in the slot the page reads (a guessed slot sent Trade-offs and
    iterative-pruning links to the workspace's newest run of the kind instead)."""
    from pathlib import Path

    from kdcore.runs import kinds
    from ui.links import RUN_PAGES
    root = Path(__file__).resolve().parents[1]
    # other tests register toy kinds; parts of runs (a distillation's students) are never listed nor linked
    lab_kinds = {name for name, k in kinds().items() if not name.startswith("test") and k.listed}
    assert lab_kinds <= set(RUN_PAGES), lab_kinds - set(RUN_PAGES)
    for kind_name, (page, slot) in RUN_PAGES.items():
        if page == "runs":   # shown on the Runs page, where the link selects it
            continue
        if page == "transfer_set":   # its slots are its kinds: runs.current(KINDS[what], KINDS[what], ...)
            assert slot == kind_name
            continue
        lines = [line for f in (root / "pages" / f"{page}.py", root / "ui" / "teacher.py", root / "ui" / "runs.py")
                 for line in f.read_text().splitlines() if "slot" in line.lower()]   # SLOT = "...", slot="..."
        assert any(f'"{slot}"' in line for line in lines), f"{kind_name}: slot {slot!r} is no slot of pages/{page}.py"
