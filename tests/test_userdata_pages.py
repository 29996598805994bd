"""AppTests of uploaded data: the "Your data" page, distillation end to end on uploaded CSVs (wine and
breast cancer, written from scikit-learn's bundled copies), imported teachers, and every page on
an uploaded dataset (it works, or it says plainly why not; never a traceback)."""

from __future__ import annotations

import pytest


def csv_of(loader) -> bytes:
    d = loader(as_frame=True)
    df = d.frame.copy()
    df["target"] = df["target"].map(dict(enumerate(d.target_names)))   # class names as text
    return df.to_csv(index=False).encode()


def upload(at, filename: str, data: bytes, label: str | None = None):
    """Upload a file on the Your data page and add it; returns the AppTest after the rerun."""
    at.file_uploader(key="data_upload").set_value((filename, data, "text/csv"))
    at.run()
    assert not at.exception, at.exception
    if label is not None:
        at.selectbox(key="data_label").set_value(label)
        at.run()
    add = next(b for b in at.button if b.label == "Add to my datasets")
    add.click()
    at.run()
    assert not at.exception, at.exception
    return at


def problems(at) -> list[str]:
    return [str(e.value) for e in at.exception] + [e.value for e in at.error]


@pytest.mark.parametrize("loader_name", ["load_wine", "load_breast_cancer"])
def test_uploaded_csv_distilled_end_to_end(open_page, settle, loader_name):
    import sklearn.datasets as skd
    loader = getattr(skd, loader_name)
    at = open_page("pages/data.py")
    upload(at, f"{loader_name[5:]}.csv", csv_of(loader), label="target")
    assert not problems(at), problems(at)
    assert any("Added" in s.value for s in at.success)
    name = at.session_state["dataset"]
    assert name.startswith("user-")
    from kdcore import userdata as ud
    # listed in the workspace (the sidebar's picker draws from this list; AppTest runs a switched-to
    # page without app.py's sidebar)
    assert name in [ud.dataset_name(m["fingerprint"]) for m in ud.workspace_datasets(at.session_state["ws"])]
    at.switch_page("pages/distill.py")
    at.run()
    assert not problems(at), problems(at)
    next(b for b in at.button if b.label == "Distill").click()
    at.run()
    at = settle(at)
    assert not problems(at), problems(at)
    from kdcore.data import load_dataset
    from kdcore.store import RunStore
    store = RunStore()
    rec = next(r for r in store.workspace_runs(at.session_state["ws"]) if r.kind == "distill")
    result = store.load_result(rec.id)
    n_classes = load_dataset(name, 0).n_classes
    chance = 1.0 / n_classes
    assert result.distilled_metrics["accuracy"] > chance + 0.3, result.summary()
    assert result.teacher_metrics["accuracy"] > chance + 0.3
    assert any("Results" in h.value for h in at.subheader)


@pytest.fixture(scope="module")
def wine_name():
    """The wine CSV stored as an uploaded dataset (engine-side, no page)."""
    from sklearn.datasets import load_wine
    from kdcore import userdata as ud
    prep = ud.prepare_upload(csv_of(load_wine), "wine.csv", ud.UploadOptions(label="target"))
    return ud.dataset_name(ud.save(prep)), prep.fingerprint


def _session(wine_name, ws="wineworkspace", teacher=None):
    from kdcore import userdata as ud
    ud.add_to_workspace(ws, wine_name[1])
    s = {"dataset": wine_name[0], "ws": ws}
    if teacher is not None:
        s["teacher_spec"] = {(wine_name[0], 0): teacher}
    return s


PAGES = ["pages/distill.py", "pages/temperature.py", "pages/sweep.py", "pages/ensembles.py",
         "pages/specialists.py", "pages/transfer_set.py", "pages/prune.py", "pages/tradeoffs.py",
         "pages/hinton_mnist.py", "pages/losses.py", "pages/data.py"]


# the page's main button, pressed once on the uploaded dataset (a first distillation feeds Prune)
ACTIONS = {"pages/distill.py": "Distill", "pages/sweep.py": "Run sweep", "pages/ensembles.py": "Train ensemble",
           "pages/specialists.py": "Train specialists", "pages/transfer_set.py": "Run the curve",
           "pages/prune.py": "Compute saliencies", "pages/tradeoffs.py": "Run the size curve",
           "pages/losses.py": "Run"}


@pytest.mark.parametrize("teacher_kind", ["network", "forest"])
def test_every_page_on_an_uploaded_dataset(open_page, settle, wine_name, teacher_kind):
    """Each page works on uploaded wine (its main button pressed, its runs finished) or says why not:
    no traceback, no error box."""
    from kdcore import userteachers as ut
    from kdcore.models import ImportedModel
    from kdcore.presets import default_teacher_spec
    from kdcore.teachers import TeacherCache
    from kdcore.data import load_dataset
    spec = default_teacher_spec(wine_name[0]) if teacher_kind == "network" else \
        ut.teacher_spec(wine_name[0], 0, ImportedModel("forest", 50, 8))
    TeacherCache().get_or_train(spec, load_dataset(wine_name[0], 0))
    session = _session(wine_name, ws=f"ws{teacher_kind}", teacher=spec)
    models = None
    for page in PAGES:
        at = open_page(page, session={**session, **({"session_models": models} if models else {})})
        if page == "pages/hinton_mnist.py":   # MNIST's own experiment: it says it does not use the upload
            assert any("always uses MNIST" in i.value for i in at.info), page
            continue
        assert not problems(at), (page, problems(at))
        label = ACTIONS.get(page)
        buttons = [b for b in at.button if b.label == label]
        if label is None or not buttons:
            # no button: the page must say why (an imported teacher on Prune / Losses)
            assert label is None or any("not a network" in i.value for i in at.info), (page, [i.value for i in at.info])
            continue
        buttons[0].click()
        at.run()
        at = settle(at)
        assert not problems(at), (page, problems(at))
        models = dict(at.session_state["session_models"])   # the next page sees this session's models


def test_forest_teacher_chosen_on_the_data_page_and_distilled(open_page, settle, wine_name):
    at = open_page("pages/data.py", session=_session(wine_name, ws="forestpage"))
    at.radio(key="data_teacher_kind").set_value("forest")
    at.number_input(key="data_teacher_n").set_value(30)
    next(b for b in at.button if b.label == "Use this teacher").click()
    at.run()
    at = settle(at)
    assert not problems(at), problems(at)
    assert any("random forest" in s.value for s in at.success)
    at.switch_page("pages/distill.py")
    at.run()
    assert any("random forest" in m.value for m in at.markdown), [m.value for m in at.markdown]
    next(b for b in at.button if b.label == "Distill").click()
    at.run()
    at = settle(at)
    assert not problems(at), problems(at)
    assert any("Results" in h.value for h in at.subheader)
