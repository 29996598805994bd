"""Your data: upload a dataset (table, NPZ, ZIP of image folders), see what preprocessing did,
manage the workspace's datasets, and bring a teacher (a scikit-learn ensemble, or uploaded outputs).

Reading and checking is kdcore.userdata's; every problem with a file is a `UserDataError` shown as
a message, never a traceback. A dataset added here is stored on the server under its fingerprint,
listed in this workspace and in the sidebar's dataset picker.
"""


import pandas as pd
import streamlit as st

from kdcore import userdata as ud
from kdcore import userteachers as ut
from kdcore.data import DatasetUnavailable
from kdcore.models import ImportedModel, format_bytes, is_imported
from kdcore.presets import default_teacher_spec
from ui import frame
from ui import state
from ui import teacher as teacher_ui

LABEL_NAMES = ("label", "target", "class", "y", "labels", "category")

st.title("Your data")
st.markdown(
    f"Upload your own dataset, distill on it on every page, and bring your own teacher. "
    f"**Tables**: CSV / TSV or Parquet with a label column (the class of each row) and feature columns. "
    f"**NPZ**: arrays `X` and `y`. **Images**: a ZIP with one folder per class (PNG or JPEG). "
    f"At most **{ud.UPLOAD_LIMIT_MB} MB** per file. The data is stored on this server under this workspace "
    f"(it survives a reload) and appears in the sidebar's dataset picker.")


def _kind_text(c: dict) -> str:
    miss = f"{c['missing']:,} missing → " if c["missing"] else ""
    if c["kind"] == "numeric":
        return f"number: {miss + 'median, ' if miss else ''}standardized"
    if c["kind"] == "date":
        return f"date → days since 1970: {miss + 'median, ' if miss else ''}standardized"
    return (f"category: {miss + '“(missing)”, ' if miss else ''}one-hot "
            f"(at most {ud.MAX_CATEGORIES} columns, rarer values grouped)")


def show_preprocessing(meta_or_prep_columns: list[dict], notes: list[str]) -> None:
    for n in notes:
        st.caption(f"• {n}")
    if meta_or_prep_columns:
        st.dataframe(pd.DataFrame([{"column": c["name"], "becomes": _kind_text(c), "note": c.get("note", "")}
                                   for c in meta_or_prep_columns]), hide_index=True, width="stretch")
        st.caption("scikit-learn's ColumnTransformer does this (SimpleImputer, StandardScaler, OneHotEncoder), "
                   "fitted on each seed's training split only; splits are 60 / 20 / 20 %, stratified by class.")


# ---------------------------------------------------------------- upload
st.subheader("1 · Upload")
upload = st.file_uploader("A table (CSV, TSV, Parquet), NPZ or ZIP of image folders",
                          type=["csv", "tsv", "txt", "parquet", "pq", "npz", "zip"], key="data_upload",
                          max_upload_size=ud.UPLOAD_LIMIT_MB,
                          help=f"At most {ud.UPLOAD_LIMIT_MB} MB. Nothing is stored until you press "
                               "“Add to my datasets”.")


def _read(data: bytes, upload_id: str, name: str, delimiter: str, encoding: str):
    """The parsed table, once per uploaded file (Streamlit's id of it) and reading options in this session."""
    key = (upload_id, name, delimiter, encoding)
    cache = state.per_user(state.DATA_TABLES_KEY)
    if key not in cache:
        cache.clear()   # one file at a time in memory
        cache[key] = ud.read_table(data, name, delimiter, encoding)
    df, notes = cache[key]
    return df.copy(deep=False), list(notes)


if upload is not None:
    data = upload.getvalue()
    suffix = upload.name.rsplit(".", 1)[-1].lower() if "." in upload.name else ""
    opts: dict = {}
    try:
        ud.check_size(len(data))
        df = None
        if suffix in ("csv", "tsv", "txt", "parquet", "pq"):
            if suffix not in ("parquet", "pq"):
                c1, c2 = st.columns(2)
                opts["delimiter"] = c1.selectbox(
                    "Delimiter", ["auto", ",", ";", "\t", "|"], key="data_delim",
                    format_func={"auto": "detect", ",": "comma ,", ";": "semicolon ;", "\t": "tab",
                                 "|": "vertical bar |"}.get)
                opts["encoding"] = c2.selectbox("Encoding", ["auto", "utf-8", "cp1252", "latin-1", "utf-16"],
                                                key="data_encoding",
                                                format_func=lambda e: "detect (UTF-8, else Windows-1252)"
                                                if e == "auto" else e)
            df, read_notes = _read(data, upload.file_id, upload.name, opts.get("delimiter", "auto"), opts.get("encoding", "auto"))
            st.caption(" ".join(read_notes))
            st.dataframe(df.head(20), width="stretch", height=230)
            cols = list(df.columns)
            guess = next((c for c in cols if c.strip().lower() in LABEL_NAMES), cols[-1])
            with st.form("data_table_form"):
                c1, c2 = st.columns(2)
                label = c1.selectbox("Label column (the class to predict)", cols, index=cols.index(guess),
                                     key="data_label")
                logit_guess = [c for c in cols if c.lower().startswith(("logit", "prob", "teacher"))]
                logit_cols = c2.multiselect(
                    "Teacher's output columns (optional)", cols, default=logit_guess, key="data_logits",
                    help="One logit (or probability) column per class, from a model trained elsewhere: the lab "
                         "can then distill from that teacher. Columns ending with a class name are matched to it; "
                         "otherwise they are taken in the classes' sorted order.")
                features = st.multiselect("Feature columns", [c for c in cols if c != label],
                                          default=[c for c in cols if c != label and c not in logit_cols],
                                          key="data_features", help="Every other column by default.")
                c1, c2 = st.columns(2)
                opts["dates"] = c1.radio("Date columns", ["numbers", "drop"], horizontal=True, key="data_dates",
                                         format_func={"numbers": "turn into numbers (days)",
                                                      "drop": "leave out"}.get)
                opts["name"] = c2.text_input("Name in the lab", upload.name.rsplit(".", 1)[0][:60], key="data_name")
                add = st.form_submit_button("Add to my datasets", type="primary", icon=":material/add:")
            opts.update(label=label, features=tuple(features), logit_columns=tuple(logit_cols))
        else:
            with st.form("data_other_form"):
                c1, c2, c3 = st.columns(3)
                if suffix == "zip":
                    opts["image_size"] = c1.select_slider("Image size (pixels)", [8, 16, 28, 32, 48, 64], 28,
                                                          key="data_size")
                    opts["color"] = c2.toggle("Colour (RGB)", False, key="data_color",
                                              help="Off: gray, one channel.")
                else:
                    c1.caption("NPZ: arrays X (rows × features, or images) and y (labels); an optional "
                               "array `logits` (rows × classes) is a teacher's outputs.")
                opts["name"] = c3.text_input("Name in the lab", upload.name.rsplit(".", 1)[0][:60], key="data_name")
                add = st.form_submit_button("Add to my datasets", type="primary", icon=":material/add:")
        if add:
            options = ud.UploadOptions(**opts)
            with st.spinner("Checking and storing the dataset…"):
                if df is not None:
                    prep = ud.prepare_table(df, upload.name, options)
                    prep.notes[:0] = read_notes
                    prep.fingerprint = ud.fingerprint(data, options)
                else:
                    prep = ud.prepare_upload(data, upload.name, options)
                fp = ud.save(prep)
                ud.add_to_workspace(state.workspace(), fp)
                state.choose_dataset(ud.dataset_name(fp))   # picked in the sidebar
            st.session_state[state.DATA_ADDED_KEY] = (fp, prep.notes)
            st.rerun()
    except ud.UserDataError as err:
        st.error(f"**This file cannot be used.** {err}")
    except ValueError as err:   # an option out of range
        st.error(f"**These settings cannot be used.** {err}")

added = st.session_state.pop(state.DATA_ADDED_KEY, None)
if added is not None:
    fp, notes = added
    st.success(f"Added **{ud.read_meta(fp)['name']}**; it is now the dataset in the sidebar, on every page.")
    for n in notes:
        st.caption(f"• {n}")

# ---------------------------------------------------------------- the workspace's datasets
st.subheader("2 · Your datasets")
metas = state.uploaded_datasets()
if not metas:
    st.info("No dataset uploaded in this workspace yet.")
current = state.dataset_name()
for meta in metas:
    name = ud.dataset_name(meta["fingerprint"])
    shape = f"{len(meta['columns'])} columns" if meta["kind"] == "table" else \
        "images " + "×".join(map(str, meta["input_shape"]))
    title = (f"{'▶ ' if name == current else ''}{meta['name']}: {meta['n_rows']:,} rows, "
             f"{len(meta['class_names'])} classes, {shape}")
    with st.expander(title, expanded=name == current):
        st.caption(f"From {meta['source']} · fingerprint {meta['fingerprint']} · classes: "
                   f"{', '.join(meta['class_names'][:20])}{'…' if len(meta['class_names']) > 20 else ''}")
        show_preprocessing(meta["columns"], meta["notes"])
        c1, c2, _ = st.columns([1, 1, 3])
        if name != current and c1.button("Use this dataset", key=f"data_use_{meta['fingerprint']}"):
            state.choose_dataset(name)
            st.rerun()
        if c2.button("Delete", key=f"data_del_{meta['fingerprint']}", icon=":material/delete:",
                     help="Takes it off this workspace's list (its files go when no workspace lists it). "
                          "Runs made on it stay in Runs."):
            ud.remove_from_workspace(state.workspace(), meta["fingerprint"])
            if current == name:
                state.choose_dataset("digits")
            st.rerun()

# ---------------------------------------------------------------- bring a teacher
st.subheader("3 · Bring a teacher")
if not ud.is_user_dataset(current):
    st.info("Choose one of your datasets (above, or in the sidebar) to give it a teacher. The built-in "
            "datasets use the lab's network teachers (Distill page).")
    frame.stop()
ds, err = state.dataset_or_error()
if ds is None:
    st.error(f"**The dataset could not be loaded.** {err}")
    frame.stop()
meta = ud.read_meta(ud.fingerprint_of(ds.name))
spec_now = state.teacher_spec(ds)
choices = {"network": "the lab's network teacher (an MLP, set on the Distill page)",
           "forest": "a random forest (scikit-learn)", "boosting": "histogram gradient boosting (scikit-learn)"}
for t in meta.get("teachers", []):
    choices[f"logits:{t['id']}"] = f"your model's {t['name']}"
now_key = ("network" if not is_imported(spec_now) else
           f"logits:{spec_now.model.source}" if spec_now.model.arch == "logits" else spec_now.model.arch)
st.markdown(f"The teacher every page of **{meta['name']}** distills from. Its class probabilities become "
            "the soft targets (its log-probabilities are the logits), so a tabular ensemble, or a model "
            "trained elsewhere, can be distilled into a small network.")
with st.form("data_teacher_form"):
    which = st.radio("Teacher", list(choices), format_func=choices.get,
                     index=list(choices).index(now_key) if now_key in choices else 0, key="data_teacher_kind")
    c1, c2 = st.columns(2)
    n_est = c1.number_input("Trees / boosting iterations", 10, 2000,
                            spec_now.model.estimators if is_imported(spec_now) and spec_now.model.arch != "logits"
                            else 100, step=10, key="data_teacher_n")
    depth = c2.number_input("Maximum depth (0: none)", 0, 64,
                            spec_now.model.max_depth if is_imported(spec_now) and spec_now.model.arch != "logits"
                            else 12, key="data_teacher_depth")
    use = st.form_submit_button("Use this teacher", type="primary", icon=":material/model_training:",
                                help="A forest or boosting teacher is trained now (a run with progress); "
                                     "uploaded outputs are ready at once.")
if use:
    try:
        if which == "network":
            spec = default_teacher_spec(ds.name, ds.seed)
        elif which.startswith("logits:"):
            spec = ut.teacher_spec(ds.name, ds.seed, ImportedModel("logits", source=which.split(":", 1)[1]))
        else:
            spec = ut.teacher_spec(ds.name, ds.seed, ImportedModel(which, int(n_est), int(depth)), seed=ds.seed)
    except ValueError as err:
        st.error(f"**This teacher cannot be used.** {err}")
        frame.stop()
    state.set_teacher_spec(spec)
    if is_imported(spec) and spec.model.arch != "logits" and state.cached_teacher(ds) is None:
        teacher_ui.train(spec)
    st.rerun()

spec = state.teacher_spec(ds)
teacher = state.cached_teacher(ds)
if teacher is not None:
    teacher_ui.register(teacher, ds)
    size = (f"{teacher.metrics['params']:,} tree nodes, {format_bytes(teacher.metrics['bytes'])} pickled"
            if teacher.metrics.get("params") else "trained elsewhere")
    if not is_imported(spec):
        size = f"{teacher.metrics['params']:,} parameters ({format_bytes(teacher.metrics['bytes'])})"
    st.success(f"Current teacher: **{teacher_ui.teacher_name(teacher)}**, {100 * teacher.metrics['accuracy']:.1f} % "
               f"test accuracy · {size}. Distill from it on the **Distill** page (or any other).")
elif not teacher_ui.watch_training(spec, key="data"):
    teacher_ui.warn_if_stopped(ds)
    st.info(f"Current teacher: **{spec.model.describe()}**, not trained yet: it trains when a page needs "
            "it (or press **Use this teacher**).")

attached = st.session_state.pop(state.DATA_ATTACHED_KEY, None)
if attached is not None:
    st.success(f"Attached. Choose “your model's outputs in {attached[0]}” above to distill from them.")
    for n in attached[1]:
        st.caption(f"• {n}")
with st.expander("Upload your model's outputs for this dataset (a second file, aligned by row)"):
    st.caption(f"One row per row of {meta['source']} ({meta['n_rows_read']:,} rows, same order), one column per "
               f"class ({', '.join(meta['class_names'][:10])}): logits or probabilities. CSV (with or without a "
               "header), NPY, or safetensors with a single tensor.")
    second = st.file_uploader("Teacher's outputs", type=["csv", "txt", "npy", "safetensors"], key="data_logits_file",
                              max_upload_size=ud.UPLOAD_LIMIT_MB)
    if second is not None and st.button("Attach these outputs", key="data_attach"):
        try:
            tid, notes = ud.attach_logits(meta["fingerprint"], second.getvalue(), second.name)
            st.session_state[state.DATA_ATTACHED_KEY] = (second.name, notes)
            st.rerun()
        except ud.UserDataError as err:
            st.error(f"**These outputs cannot be used.** {err}")
        except DatasetUnavailable as err:
            st.error(str(err))
