"""Uploaded data in the engine: tables, NPZ and image ZIPs read, checked, stored and loaded by name;
every bad file of issue 15 gets a clear message (UserDataError) and no other exception; the
scikit-learn teacher's soft targets are its predict_proba; uploaded outputs become a teacher."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch

from kdcore import userdata as ud
from kdcore import userteachers as ut
from kdcore.models import ImportedModel


def png(color, size=(6, 6), mode="RGB") -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, format="PNG")
    return buf.getvalue()


def image_zip(extra: dict[str, bytes] | None = None, per_class: int = 4) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for cls, col in (("cats", (250, 10, 10)), ("dogs", (10, 250, 10)), ("owls", (10, 10, 250))):
            for i in range(per_class):
                z.writestr(f"pets/{cls}/{i}.png", png(tuple(max(0, c - 10 * i) for c in col)))
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


def table_csv(n=60, classes=("a", "b", "c")) -> bytes:
    rng = np.random.default_rng(0)
    y = np.array(classes)[np.arange(n) % len(classes)]
    df = pd.DataFrame({"x1": rng.normal(size=n) + (np.arange(n) % len(classes)), "x2": rng.normal(size=n),
                       "label": y})
    return df.to_csv(index=False).encode()


def test_table_round_trip_preprocessing_fitted_on_train_only():
    rng = np.random.default_rng(1)
    n = 90
    df = pd.DataFrame({"num": rng.normal(5, 2, n), "cat": rng.choice(["u", "v", None], n),
                       "when": pd.date_range("2021-01-01", periods=n).astype(str), "ident": [f"id{i}" for i in range(n)],
                       "label": np.arange(n) % 3})
    df.loc[3, "num"] = np.nan
    prep = ud.prepare_upload(df.to_csv(index=False).encode(), "t.csv", ud.UploadOptions(label="label"))
    kinds = {c["name"]: c["kind"] for c in prep.columns}
    assert kinds == {"num": "numeric", "cat": "categorical", "when": "date"}
    assert any("ident" in n and "identifier" in n for n in prep.notes)
    fp = ud.save(prep)
    from kdcore.data import load_dataset
    ds = load_dataset(ud.dataset_name(fp), 3)
    assert ds.n_classes == 3 and ds.class_names == ("0", "1", "2")
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == n
    # standardized with the training rows' statistics: mean 0 / std 1 there, not on the test rows
    num = ds.X_train[:, 0]
    assert abs(float(num.mean())) < 1e-5 and abs(float(num.std(unbiased=False)) - 1) < 1e-4
    # the same split as the built-in datasets' (stratified, seeded): same seed, same rows
    again = ud.load(fp, 3)
    assert torch.equal(again.X_test, ds.X_test)
    assert not torch.equal(ud.load(fp, 4).y_test, ds.y_test) or not torch.equal(ud.load(fp, 4).X_test, ds.X_test)


def test_image_zip_loads_with_the_right_classes():
    data = image_zip({"pets/readme.txt": b"hello"})
    prep = ud.prepare_upload(data, "pets.zip", ud.UploadOptions(image_size=8, color=True))
    assert prep.class_names == ("cats", "dogs", "owls")
    assert prep.X.shape == (12, 3, 8, 8)
    assert any("not images" in n for n in prep.notes)
    ds = ud.load(ud.save(prep), 0)
    assert ds.is_image and ds.input_shape == (3, 8, 8) and ds.n_classes == 3
    X = torch.cat([ds.X_train, ds.X_val, ds.X_test])
    y = torch.cat([ds.y_train, ds.y_val, ds.y_test])
    # each class's images are its colour: red cats, green dogs, blue owls
    assert (X[y == 0][:, 0].mean() > 0.8) and (X[y == 1][:, 1].mean() > 0.8) and (X[y == 2][:, 2].mean() > 0.8)
    gray = ud.prepare_upload(data, "pets.zip", ud.UploadOptions(image_size=5, color=False))
    assert gray.X.shape == (12, 1, 5, 5)


def _utf16_csv() -> bytes:
    return "a,b,label\n1,2,x\n3,4,y\n".encode("utf-16")


BAD_FILES = {
    "empty file": ("e.csv", b"", ud.UploadOptions(), "empty"),
    "header only": ("h.csv", b"a,b,label\n", ud.UploadOptions(), "no data rows"),
    "one class": ("o.csv", b"a,label\n1,x\n2,x\n3,x\n4,x\n", ud.UploadOptions(), "single class"),
    "one example per class": ("u.csv", b"a,label\n1,p\n2,q\n3,r\n4,s\n5,t\n", ud.UploadOptions(),
                              "fewer than 3 examples"),
    "non-numeric (continuous) label": ("c.csv", b"a,label\n1,0.5\n2,1.25\n3,2.75\n4,3.5\n", ud.UploadOptions(),
                                       "not classes"),
    "all-NaN columns only": ("n.csv", b"a,b,label\n,,x\n,,y\n,,x\n,,y\n,,x\n,,y\n", ud.UploadOptions(),
                             "No feature column is usable"),
    "rows of different lengths": ("r.csv", b"a,b,label\n1,2,x\n3,4,y\n5,6,x,7,8\n", ud.UploadOptions(),
                                  "Row 4"),
    "wrong delimiter": ("d.csv", b"a;b;label\n1;2;x\n3;4;y\n", ud.UploadOptions(delimiter=","), "Only one column"),
    "wrong encoding": ("w.csv", "a,b,label\n1,2,é\n".encode("latin-1"), ud.UploadOptions(encoding="utf-8"),
                       "cannot be read as utf-8"),
    "binary file named .csv": ("b.csv", b"\x00\x01\x02\x03" * 100, ud.UploadOptions(), "binary"),
    "over the size limit": ("big.csv", b"a,label\n" + b"1,x\n" * 300_000, ud.UploadOptions(), "the limit is 1 MB"),
    "corrupt image only": ("c.zip", None, ud.UploadOptions(), "No readable image"),
    "path escapes the folder": ("p.zip", None, ud.UploadOptions(), "leaves the archive"),
    "not a zip": ("z.zip", b"PK but not really a zip", ud.UploadOptions(), "not a readable ZIP"),
    "logit columns: wrong count": ("l.csv", b"a,label,l1,l2\n1,x,0,1\n2,y,1,0\n3,x,0,1\n4,y,1,0\n5,x,0,1\n6,y,1,0\n7,z,1,1\n8,z,1,0\n9,z,0,0\n",
                                   ud.UploadOptions(label="label", logit_columns=("l1", "l2")), "2 columns but the label has 3"),
    "logit columns: NaN": ("l.csv", b"a,label,l1,l2\n1,x,0,1\n2,y,,0\n3,x,0,1\n4,y,1,0\n5,x,0,1\n6,y,1,0\n",
                           ud.UploadOptions(label="label", logit_columns=("l1", "l2")), "NaN or infinite"),
    "logit columns: inf": ("l.csv", b"a,label,l1,l2\n1,x,0,1\n2,y,inf,0\n3,x,0,1\n4,y,1,0\n5,x,0,1\n6,y,1,0\n",
                           ud.UploadOptions(label="label", logit_columns=("l1", "l2")), "NaN or infinite"),
    "npz without y": ("a.npz", None, ud.UploadOptions(), "needs arrays named X"),
    "pickled npz": ("p.npz", None, ud.UploadOptions(), "Python objects"),
    "unknown extension": ("a.xlsx", b"something", ud.UploadOptions(), "neither a table"),
}


def _bad_bytes(case: str) -> bytes:
    if case == "corrupt image only":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("cats/1.png", b"\x89PNG\r\n\x1a\n garbage")
            z.writestr("dogs/1.png", png((1, 2, 3))[:40])
        return buf.getvalue()
    if case == "path escapes the folder":
        return image_zip({"../evil.png": png((0, 0, 0))})
    if case == "npz without y":
        buf = io.BytesIO()
        np.savez(buf, X=np.zeros((4, 2)))
        return buf.getvalue()
    if case == "pickled npz":
        buf = io.BytesIO()
        np.savez(buf, X=np.array([{"a": 1}] * 4, dtype=object), y=np.arange(4))
        return buf.getvalue()
    raise KeyError(case)


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_gets_a_clear_message(case):
    filename, data, options, expected = BAD_FILES[case]
    if data is None:
        data = _bad_bytes(case)
    limit = 1 if case == "over the size limit" else ud.UPLOAD_LIMIT_MB
    with pytest.raises(ud.UserDataError) as info:   # any other exception fails the test
        ud.prepare_upload(data, filename, options, limit_mb=limit)
    assert expected.lower() in str(info.value).lower(), str(info.value)
    assert "Traceback" not in str(info.value)


def test_forgiving_reads_say_what_they_did():
    # Windows-1252 bytes under "auto": read, with a note; UTF-16 with a BOM; a semicolon table detected
    prep = ud.prepare_upload("a,b,label\n1,2,é\n3,4,è\n5,6,é\n7,8,è\n9,1,é\n2,3,è\n".encode("cp1252"), "w.csv")
    assert prep.class_names == ("è", "é") and any("Windows-1252" in n for n in prep.notes)
    prep = ud.prepare_upload(b"a;b;label\n1;2;x\n3;4;y\n5;6;x\n7;8;y\n9;1;x\n2;3;y\n", "s.csv")
    assert any("semicolon" in n for n in prep.notes)
    # a corrupt image among good ones: left out and named, the rest kept
    prep = ud.prepare_upload(image_zip({"pets/cats/bad.png": b"not a png"}), "p.zip")
    assert len(prep.y) == 12 and any("bad.png" in n for n in prep.notes)
    # an all-NaN column beside usable ones: left out and said
    df = pd.DataFrame({"a": np.arange(9.0), "empty": np.nan, "label": np.arange(9) % 3})
    prep = ud.prepare_upload(df.to_csv(index=False).encode(), "n.csv")
    assert [c["name"] for c in prep.columns] == ["a"] and any("empty" in n for n in prep.notes)


@pytest.fixture(scope="module")
def wine():
    from sklearn.datasets import load_wine
    d = load_wine(as_frame=True)
    prep = ud.prepare_upload(d.frame.to_csv(index=False).encode(), "wine.csv", ud.UploadOptions(label="target"))
    return ud.load(ud.save(prep), 0)


@pytest.mark.parametrize("arch", ["forest", "boosting"])
def test_sklearn_teacher_soft_targets_are_predict_proba(wine, arch, tmp_path):
    from kdcore.losses import soften
    from kdcore.teachers import TeacherCache
    spec = ut.teacher_spec(wine.name, 0, ImportedModel(arch, 40, 6))
    cache = TeacherCache(tmp_path)
    teacher = cache.get_or_train(spec, wine)
    est = teacher.model.estimator
    for split in ("train", "val", "test"):
        X, _ = wine.split(split)
        proba = est.predict_proba(X.numpy().astype(np.float64))
        p = soften(teacher.logits[split], 1.0).numpy()
        # equal up to the 1e-7 floor of the logarithm (renormalized by the softmax)
        np.testing.assert_allclose(p, proba, atol=1e-5)
    assert teacher.metrics["accuracy"] > 0.8 and teacher.metrics["params"] > 0
    # cached on disk: a fresh cache finds the same estimator and the same logits
    again = TeacherCache(tmp_path).get(spec, wine)
    assert again is not None and again.from_cache
    assert torch.equal(again.logits["test"], teacher.logits["test"])


def test_uploaded_logits_become_a_teacher(wine, tmp_path):
    """A teacher's probabilities uploaded as a second file, aligned by row, are its soft targets."""
    from sklearn.linear_model import LogisticRegression
    from kdcore.teachers import TeacherCache
    fp = wine.extra["fingerprint"]
    meta = ud.read_meta(fp)
    # an "outside" model: logistic regression on the raw file, its probabilities for every row of it
    from sklearn.datasets import load_wine
    d = load_wine()
    model = LogisticRegression(max_iter=5000).fit(d.data, d.target)
    proba = model.predict_proba(d.data)
    assert meta["n_rows_read"] == len(proba)
    buf = io.BytesIO()
    np.save(buf, proba)
    tid, notes = ud.attach_logits(fp, buf.getvalue(), "outside.npy")
    assert any("probabilities" in n for n in notes)
    spec = ut.teacher_spec(wine.name, 0, ImportedModel("logits", source=tid))
    teacher = TeacherCache(tmp_path).get(spec, wine)
    assert teacher is not None
    rows = wine.extra["rows"]["test"]
    np.testing.assert_allclose(torch.softmax(teacher.logits["test"], 1).numpy(), proba[rows], atol=1e-5)
    # its "model" answers for the dataset's own rows and refuses other inputs
    assert torch.equal(teacher.model(wine.X_test), teacher.logits["test"])
    with pytest.raises(ValueError, match="only for the rows"):
        teacher.model(wine.X_test + 1.0)
    # a second file with the wrong number of rows: a clear message
    with pytest.raises(ud.UserDataError, match="aligned by row"):
        ud.attach_logits(fp, b"0.2,0.3,0.5\n0.1,0.1,0.8\n", "short.csv")
    # a headerless file whose rows do not line up: a message, not the parser's traceback
    with pytest.raises(ud.UserDataError, match="has 4 fields"):
        ud.attach_logits(fp, b"0.2,0.3,0.5\n0.1,0.1\n0.3,0.3,0.3,0.1\n", "ragged.csv")


def test_workspace_lists_and_deletes(wine):
    fp = wine.extra["fingerprint"]
    ud.add_to_workspace("wsA", fp)
    ud.add_to_workspace("wsB", fp)
    assert [m["fingerprint"] for m in ud.workspace_datasets("wsA")] == [fp]
    assert not ud.remove_from_workspace("wsA", fp)          # wsB still lists it: the files stay
    assert ud.workspace_datasets("wsA") == [] and ud.read_meta(fp)
    ud.add_to_workspace("wsA", fp)
