"""The app shell, Home and Distill pages, through Streamlit's AppTest."""

import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 300  # torch imports slowly on a cold start


def app() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def click(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click()
    return at.run()


def test_home_renders_with_sidebar_and_picture():
    at = app()
    assert at.title[0].value.startswith("⚗️ Distillation Lab")
    assert at.selectbox(key="dataset").value == "digits"
    assert len(at.get("plotly_chart")) == 1


def test_distill_runs_and_view_changes_do_not_retrain(digits_teacher, settle):
    from kdcore.store import RunStore
    at = app()
    at.switch_page("pages/distill.py").run()
    assert not at.exception
    # the default teacher is on disk (fixture): found without training
    assert "loaded from the cache" in at.success[0].value and "test accuracy" in at.success[0].value
    at.number_input(key="distill_epochs").set_value(4)
    click(at, "Distill")
    settle(at)
    assert not at.exception, [e.value for e in at.exception]
    names = [m.label for m in at.metric]
    assert names == ["Teacher", "Distilled student", "Scratch student", "Teacher's hard labels"]
    summary = " ".join(s.value for s in [*at.success, *at.warning, *at.info])
    assert "labels alone" in summary or "no difference" in summary
    assert at.dataframe[0].value.shape[0] == 4   # teacher, distilled, scratch, hard-label control
    records = dict(at.session_state["session_models"])
    assert {r.role for r in records.values()} >= {"distilled", "scratch"}

    runs_before = [(r.id, r.status) for r in RunStore().workspace_runs(at.session_state["ws"])]
    assert [s for _, s in runs_before] == ["finished", "finished"]   # the students' run and the teacher's
    t0 = time.perf_counter()
    at.radio(key="distill_confusion").set_value("teacher").run()
    at.toggle(key="distill_cm_norm").set_value(True).run()
    at.radio(key="distill_curve").set_value("val_loss").run()
    assert not at.exception
    # nothing retrained: no new run, and the figures came from the stored result
    assert [(r.id, r.status) for r in RunStore().workspace_runs(at.session_state["ws"])] == runs_before
    assert time.perf_counter() - t0 < 30


def test_missing_dataset_is_a_message_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLAB_DATA", str(tmp_path / "nothing-here"))
    at = app()
    # AppTest runs a switched-to page without app.py's sidebar, so set the sidebar's state directly
    at.session_state["dataset"] = "fashion_mnist"
    at.switch_page("pages/distill.py").run()
    assert not at.exception
    assert any("could not be loaded" in e.value for e in at.error)
    assert any("FashionMNIST" in e.value for e in at.error)


def test_two_dimensional_data_shows_decision_regions(settle):
    from kdcore.data import load_dataset
    from kdcore.viz.common import decision_boundary
    from kdcore.models import ModelConfig, build_model
    ds = load_dataset("moons", 0)
    model = build_model(ModelConfig(hidden=(8,)), ds.input_shape, ds.n_classes)
    fig = decision_boundary({"a": model, "b": model}, ds.X_test, ds.y_test, ds.class_names, resolution=20)
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    assert len(heatmaps) == 2 and heatmaps[0].z.shape == (20, 20)
    assert set(heatmaps[0].z.flatten()) <= {0, 1}

    at = app()
    at.session_state["dataset"] = "moons"
    at.switch_page("pages/distill.py").run()
    at.number_input(key="distill_t_epochs").set_value(3)
    at.number_input(key="distill_epochs").set_value(3)
    click(at, "Distill")
    settle(at)
    assert not at.exception, [e.value for e in at.exception]
    titles = [c.proto.spec for c in at.get("plotly_chart")]
    assert any("Decision regions" in t for t in titles)


def test_a_run_outlives_navigation(digits_teacher, settle):
    from kdcore.store import RunStore
    at = app()
    at.switch_page("pages/distill.py").run()
    at.number_input(key="distill_epochs").set_value(300)
    click(at, "Distill")
    ws = at.session_state["ws"]
    run = next(r for r in RunStore().workspace_runs(ws) if r.kind == "distill")
    at.switch_page("pages/home.py").run()          # the user goes elsewhere...
    time.sleep(0.5)
    at.switch_page("pages/distill.py").run()       # ...and comes back: the run is found, not lost
    assert not at.exception
    status = RunStore().get(run.id).status
    assert status in ("queued", "running", "finished")
    if status != "finished":
        shown = " ".join(p.proto.text for p in at.get("progress"))
        assert "Distilling" in shown
        next(b for b in at.button if b.label == "Stop").click().run()
    settle(at)
    assert RunStore().get(run.id).status in ("stopped", "finished")
    labels = [m.label for m in at.metric]
    # a Stop may come before the hard-label control started (the students are parts on two workers):
    # then it is left out, and the page says so
    assert labels[:3] == ["Teacher", "Distilled student", "Scratch student"]
    assert labels[3:] == ["Teacher's hard labels"] or any("left out" in c.value for c in at.caption)


def test_runs_page_lists_compares_renames_and_deletes(digits_teacher, settle):
    from kdcore.store import RunStore
    at = app()
    at.switch_page("pages/distill.py").run()
    for epochs in (2, 3):
        at.number_input(key="distill_epochs").set_value(epochs)
        click(at, "Distill")
        settle(at)
    at.switch_page("pages/runs.py").run()
    assert not at.exception, [e.value for e in at.exception]
    ws = at.session_state["ws"]
    recs = RunStore().workspace_runs(ws)
    assert len(recs) == 3 and at.dataframe[0].value.shape[0] == 3
    distills = [r.id for r in recs if r.kind == "distill"]
    at.multiselect(key="runs_compare").set_value(distills).run()
    assert not at.exception
    assert any("runs overlaid" in c.proto.spec for c in at.get("plotly_chart"))
    assert at.dataframe[1].value.shape[0] == 2
    at.selectbox(key="runs_one").set_value(distills[0]).run()
    at.text_input(key=f"runs_name_{distills[0]}").set_value("few epochs").run()
    next(b for b in at.button if b.label == "Rename").click().run()
    assert RunStore().workspace_runs(ws)[0].display_name in ("few epochs",) or \
        any(r.display_name == "few epochs" for r in RunStore().workspace_runs(ws))
    assert any(d.proto.label == "Weights (safetensors)" for d in at.get("download_button"))
    at.selectbox(key="runs_one").set_value(distills[1]).run()
    at.toggle(key=f"runs_delete_arm_{distills[1]}").set_value(True).run()
    next(b for b in at.button if b.label == "Delete").click().run()
    assert not at.exception
    assert distills[1] not in {r.id for r in RunStore().workspace_runs(ws)}


def test_after_a_reload_trade_offs_lists_the_distill_pages_students(digits_teacher, settle):
    at = app()
    at.switch_page("pages/distill.py").run()
    at.number_input(key="distill_epochs").set_value(2)
    click(at, "Distill")
    settle(at)
    ws = at.session_state["ws"]
    fresh = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)   # a reload: a new session
    fresh.session_state["ws"] = ws
    fresh.run()
    fresh.switch_page("pages/tradeoffs.py").run()
    assert not fresh.exception, [e.value for e in fresh.exception]
    roles = {r.role for r in fresh.session_state["session_models"].values()}
    assert {"distilled", "scratch"} <= roles


def test_a_second_distillation_does_not_replace_the_first(digits_teacher, settle):
    """Issue 13: 10 % and 100 % labels side by side; both pairs stay among the session's models (and
    after a reload), with names that tell them apart."""
    at = app()
    at.switch_page("pages/distill.py").run()
    at.number_input(key="distill_epochs").set_value(2)
    click(at, "Distill")
    settle(at)
    at.select_slider(key="distill_fraction").set_value(1.0)
    click(at, "Distill")
    settle(at)
    assert not at.exception, [e.value for e in at.exception]
    names = [r.name for r in at.session_state["session_models"].values() if r.role == "distilled"]
    assert len(names) == 2 and len(set(names)) == 2, names
    assert any("10 % labels" in n for n in names) and any("100 % labels" in n for n in names)
    # the page compares this dataset's distillations side by side
    table = next(d.value for d in at.dataframe if "labels (%)" in d.value.columns)
    assert sorted(table["labels (%)"]) == [10, 100]
    # a reload (a new session of the same workspace) lists both pairs again
    fresh = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    fresh.session_state["ws"] = at.session_state["ws"]
    fresh.run()
    fresh.switch_page("pages/tradeoffs.py").run()
    assert not fresh.exception
    again = [r.name for r in fresh.session_state["session_models"].values() if r.role == "distilled"]
    assert sorted(again) == sorted(names)


def test_missing_mnist_on_hinton_says_where_to_put_the_files(tmp_path, monkeypatch):
    """Issue 13: the Hinton MNIST page printed raw urlopen output; it says where the files go."""
    monkeypatch.setenv("KDLAB_DATA", str(tmp_path / "nothing-here"))
    import torchvision.datasets.utils as tvu

    def offline(*args, **kwargs):
        raise __import__("urllib.error").error.URLError("[Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(tvu, "download_url", offline)
    from kdcore.data import _load_cached
    _load_cached.cache_clear()
    at = app()
    at.switch_page("pages/hinton_mnist.py").run()
    assert not at.exception
    text = " ".join(e.value for e in at.error)
    assert str(tmp_path / "nothing-here" / "MNIST" / "raw") in text and "KDLAB_DATA" in text
    assert "urlopen" not in text and "Errno" not in text and "URLError" not in text, text
