"""Datasets that users upload: parsing, checks with readable messages, preprocessing, storage.

What can be uploaded (at most `UPLOAD_LIMIT_MB` MB per file):

- a table: CSV / TSV / TXT (delimiter and encoding detected, or chosen) or Parquet, with a label
  column, feature columns and optionally a teacher's logit (or probability) columns;
- NPZ with arrays `X` (N × features, or N × H × W / N × C × H × W images) and `y` (N labels);
- a ZIP of image folders, one folder per class (PNG / JPEG / BMP / GIF / WebP), resized to a
  chosen square size, gray or colour.

`prepare_upload(data, filename, options)` checks the file and returns a `Prepared` (what will be
stored, plus notes that say what was done: dropped columns, imputed values, rows without a
label...); anything wrong raises `UserDataError`, whose message is written for the person who
uploaded the file. `save(prepared)` stores it under `<cache>/datasets/<fingerprint>/` (a Parquet
table or an NPZ of arrays, beside `meta.json`) and returns the fingerprint, a hash of the file's
bytes and of the options it was read with. The dataset's name in the lab is `user-<fingerprint>`:
`kdcore.data.load_dataset` loads it in any process (the job runner's workers too).

Preprocessing is scikit-learn's (`ColumnTransformer`): numeric columns get their missing values
imputed with the median and are standardized; categorical ones get a "(missing)" category and
are one-hot encoded (at most 30 categories, rarer ones grouped); dates become numbers (days since
1970) or are dropped. It is fitted on the training split of each seed only, so validation and
test rows never leak into it. Splits are stratified and seeded like the built-in datasets'.

Which datasets a workspace has is a small JSON per workspace (`datasets/workspaces/<ws>.json`);
deleting a dataset from the last workspace that lists it deletes its files.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import re
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from kdcore.models import format_bytes
from kdcore.paths import default_cache_dir

UPLOAD_LIMIT_MB = 200            # per file; .streamlit/config.toml's server.maxUploadSize says the same
ZIP_UNPACKED_LIMIT_MB = 1024     # an image ZIP may not unpack to more than this (zip bombs)
MAX_IMAGES = 200_000             # images read from one ZIP at most
MIN_PER_CLASS = 3                # one example each for train, validation and test
MAX_CATEGORIES = 30              # one-hot columns per categorical column (rarer values grouped)
PREFIX = "user-"                 # dataset names of uploads: user-<fingerprint>
FORMAT = 1                       # bump when the stored layout changes
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
TABLE_EXTENSIONS = (".csv", ".tsv", ".txt", ".parquet", ".pq")


class UserDataError(ValueError):
    """An uploaded file cannot be used; the message says why and what to do, for a person."""


# ---------------------------------------------------------------- options and results

@dataclass(frozen=True)
class UploadOptions:
    label: str | None = None               # label column of a table (None: the last column)
    features: tuple[str, ...] | None = None  # feature columns (None: every other column)
    logit_columns: tuple[str, ...] = ()    # a teacher's outputs in the table, one column per class
    dates: str = "numbers"                 # date columns: "numbers" (days since 1970) or "drop"
    delimiter: str = "auto"                # "auto", ",", ";", "\t", "|"
    encoding: str = "auto"                 # "auto" (UTF-8, else Windows-1252) or a Python codec name
    image_size: int = 28                   # images are resized to image_size × image_size
    color: bool = False                    # images: RGB (3 channels) rather than gray (1)
    name: str = ""                         # the dataset's name in the lab (default: the file's stem)

    def __post_init__(self):
        if self.dates not in ("numbers", "drop"):
            raise ValueError("dates must be 'numbers' or 'drop'")
        if not 4 <= int(self.image_size) <= 128:
            raise ValueError("the image size must be between 4 and 128 pixels")


@dataclass
class Prepared:
    """A checked upload, ready to be stored."""
    name: str                               # the dataset's name for people
    kind: str                               # "table" or "images"
    source: str                             # the uploaded file's name
    class_names: tuple[str, ...]
    y: np.ndarray                           # int64 class codes, one per kept row
    table: object = None                    # table: pandas DataFrame of the kept feature columns
    columns: list[dict] = field(default_factory=list)   # table: [{name, kind, missing}]
    X: np.ndarray | None = None             # images: uint8 (N, C, H, W)
    logits: np.ndarray | None = None        # a teacher's logits in the file, (N, classes) float32
    notes: list[str] = field(default_factory=list)      # what was done, said on screen
    n_rows_read: int = 0                    # rows in the file (before rows without a label were dropped)
    rows: np.ndarray | None = None          # row numbers in the file of the kept rows
    fingerprint: str = ""

    @property
    def n_rows(self) -> int:
        return int(len(self.y))


def fingerprint(data: bytes, options: UploadOptions) -> str:
    h = hashlib.sha256(data)
    opts = {k: v for k, v in dataclasses.asdict(options).items() if k != "name"}
    h.update(json.dumps({"opts": opts, "format": FORMAT}, sort_keys=True, default=list).encode())
    return h.hexdigest()[:16]


def check_size(n_bytes: int, limit_mb: float = UPLOAD_LIMIT_MB) -> None:
    if n_bytes == 0:
        raise UserDataError("The file is empty (0 bytes). Choose a file with a header row and data rows.")
    if n_bytes > limit_mb * 2 ** 20:
        raise UserDataError(f"The file is {format_bytes(n_bytes)}; the limit is {limit_mb:g} MB per file. Upload a "
                            f"sample of its rows, or Parquet (smaller than CSV for the same table).")


def prepare_upload(data: bytes, filename: str, options: UploadOptions = UploadOptions(),
                   limit_mb: float = UPLOAD_LIMIT_MB) -> Prepared:
    """Check and read an uploaded file; raises UserDataError with a readable message."""
    check_size(len(data), limit_mb)
    suffix = Path(filename).suffix.lower()
    if suffix == ".zip":
        prep = _prepare_images(data, filename, options)
    elif suffix == ".npz":
        prep = _prepare_npz(data, filename, options)
    elif suffix in TABLE_EXTENSIONS:
        df, notes = read_table(data, filename, options.delimiter, options.encoding)
        prep = prepare_table(df, filename, options)
        prep.notes[:0] = notes
    else:
        raise UserDataError(f"“{filename}” is neither a table (CSV, TSV, Parquet), NPZ nor a ZIP of image folders; "
                            f"the lab reads {', '.join(TABLE_EXTENSIONS + ('.npz', '.zip'))}.")
    prep.fingerprint = fingerprint(data, options)
    return prep


# ---------------------------------------------------------------- tables

def _sniff_binary(head: bytes, filename: str) -> None:
    if head.startswith(b"PAR1"):
        raise UserDataError(f"“{filename}” is a Parquet file with a text extension: rename it to .parquet.")
    if head.startswith(b"PK\x03\x04"):
        raise UserDataError(f"“{filename}” is a ZIP archive, not a text table: rename it to .zip if it holds "
                            "image folders, or unpack it and upload the CSV inside.")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return   # UTF-16 text with its byte-order mark
    if b"\x00" in head[:8192]:
        raise UserDataError(f"“{filename}” is not a text table: it holds binary data (NUL bytes). Export the "
                            "table as CSV (or Parquet) and upload that.")


def _decode(data: bytes, encoding: str) -> tuple[str, list[str]]:
    if encoding != "auto":
        try:
            return data.decode(encoding), []
        except (UnicodeDecodeError, LookupError) as err:
            raise UserDataError(f"The file cannot be read as {encoding}: {err}. Choose another encoding "
                                "(or “auto”).") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), ["Read as UTF-16 (the file starts with its byte-order mark)."]
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as err:
        bad = err.start
    try:
        text = data.decode("cp1252")
        return text, [f"The file is not valid UTF-8 (byte {bad}); it was read as Windows-1252 (Latin-1). "
                      "If accents look wrong, choose its encoding."]
    except UnicodeDecodeError:
        return data.decode("latin-1"), [f"The file is not valid UTF-8 (byte {bad}); it was read as Latin-1."]


def _delimiter(text: str, choice: str) -> str:
    if choice != "auto":
        return choice
    sample = text[:65536]
    lines = [l for l in sample.splitlines()[:50] if l.strip()]
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|").delimiter
    except csv.Error:
        # the delimiter seen most often, evenly, in the first lines
        counts = {d: [l.count(d) for l in lines] for d in ",;\t|"}
        best = max(counts, key=lambda d: (min(counts[d]) if counts[d] else 0, sum(counts[d])))
        return best if counts[best] and min(counts[best]) > 0 else ","


def read_table(data: bytes, filename: str, delimiter: str = "auto", encoding: str = "auto"):
    """A pandas DataFrame of a CSV/TSV/Parquet upload and notes on how it was read."""
    import pandas as pd
    check_size(len(data), float("inf"))
    suffix = Path(filename).suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            df = pd.read_parquet(io.BytesIO(data))
        except Exception as err:
            raise UserDataError(f"“{filename}” is not a readable Parquet file ({type(err).__name__}: {err}).") from None
        notes = []
    else:
        _sniff_binary(data[:8192], filename)
        text, notes = _decode(data, encoding)
        if not text.strip():
            raise UserDataError(f"“{filename}” holds no text (only blank space).")
        sep = "\t" if suffix == ".tsv" and delimiter == "auto" else _delimiter(text, delimiter)
        try:
            df = pd.read_csv(io.StringIO(text), sep=sep, engine="c", low_memory=False, skipinitialspace=True)
        except pd.errors.EmptyDataError:
            raise UserDataError(f"“{filename}” has no header row and no data.") from None
        except pd.errors.ParserError as err:
            m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(err))
            if m:
                raise UserDataError(f"Row {m.group(2)} of “{filename}” has {m.group(3)} fields where the rows "
                                    f"before it have {m.group(1)} (delimiter {sep!r}). Every row needs as many "
                                    "fields as the header; check for an unquoted delimiter in a text field, or "
                                    "choose the delimiter.") from None
            raise UserDataError(f"“{filename}” cannot be parsed as a table: {err}") from None
        name = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}.get(sep, repr(sep))
        notes.append(f"Read as a table separated by {name}s: {len(df):,} rows × {df.shape[1]} columns.")
    if df.shape[1] == 0 or (len(df) == 0 and df.shape[1] == 0):
        raise UserDataError(f"“{filename}” has no columns.")
    if len(df) == 0:
        raise UserDataError(f"“{filename}” has a header ({df.shape[1]} columns) but no data rows.")
    if df.shape[1] < 2:
        raise UserDataError(f"Only one column was found in “{filename}” (“{str(df.columns[0])[:60]}”). A table "
                            "needs a label column and at least one feature column: is the delimiter "
                            "something else? Choose it under the file.")
    df.columns = _unique_names([str(c).strip() or f"column {i + 1}" for i, c in enumerate(df.columns)])
    return df, notes


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        out.append(n if k == 0 else f"{n}.{k}")
        seen[n] = k + 1
    return out


def _labels(series, column: str):
    """(codes, class names, keep-mask, notes) of a label column."""
    import pandas as pd
    notes = []
    keep = series.notna().to_numpy().copy()
    if isinstance(series.dtype, pd.StringDtype) or series.dtype == object:
        s = series.astype("string").str.strip()
        keep &= (s != "").fillna(False).to_numpy(dtype=bool)
        values = s[keep]
        # numbers written as text ("1", "2.0") are numbers
        as_num = pd.to_numeric(values, errors="coerce")
        if len(values) and as_num.notna().all():
            values = as_num
    else:
        values = series[keep]
    if not keep.any():
        raise UserDataError(f"The label column “{column}” is empty: no row has a label.")
    if values.dtype.kind == "b":
        values = values.astype(np.int64)
    if values.dtype.kind == "f":
        v = values.to_numpy(dtype=np.float64)
        if not np.isfinite(v).all():
            keep_f = np.isfinite(v)
            idx = np.flatnonzero(keep)
            keep[idx[~keep_f]] = False
            v = v[keep_f]
        if not np.allclose(v, np.round(v)):
            raise UserDataError(
                f"The label column “{column}” holds non-integer numbers ({len(np.unique(v)):,} distinct values, "
                f"e.g. {', '.join(f'{x:g}' for x in np.unique(v)[:3])}): it looks like a quantity to predict "
                "(regression), not classes. Choose the column with the class of each row, or bin this one "
                "into classes first.")
        values = pd.Series(np.round(v).astype(np.int64))
    if values.dtype.kind in "iu":
        uniq = np.unique(values.to_numpy())
        names = [str(int(u)) for u in uniq]
        codes = np.searchsorted(uniq, values.to_numpy())
    else:
        cats = pd.Categorical(values.astype(str))
        names = [str(c) for c in cats.categories]
        codes = cats.codes.astype(np.int64)
    if keep.sum() < len(keep):
        notes.append(f"{int((~keep).sum()):,} rows without a label were left out.")
    return codes.astype(np.int64), names, keep, notes


def _drop_rare(codes, names, keep, column):
    """Leave out classes with fewer than MIN_PER_CLASS examples (they cannot be split)."""
    counts = np.bincount(codes, minlength=len(names))
    if len(names) < 2:
        raise UserDataError(f"The label column “{column}” has a single class (“{names[0]}”): distillation "
                            "needs at least two. Choose another label column.")
    rare = counts < MIN_PER_CLASS
    notes = []
    if rare.all():
        raise UserDataError(
            f"Every class of “{column}” has fewer than {MIN_PER_CLASS} examples ({len(names):,} distinct values in "
            f"{len(codes):,} rows): is it an identifier rather than a label? Each class needs at least "
            f"{MIN_PER_CLASS} rows (one each for training, validation and test).")
    if rare.any():
        dropped = [n for n, r in zip(names, rare) if r]
        if (~rare).sum() < 2:
            raise UserDataError(
                f"Only one class of “{column}” has at least {MIN_PER_CLASS} examples; the others "
                f"({', '.join(dropped[:5])}{'…' if len(dropped) > 5 else ''}) have fewer. Distillation needs two "
                "classes with enough rows.")
        ok_rows = ~rare[codes]
        idx = np.flatnonzero(keep)
        keep = keep.copy()
        keep[idx[~ok_rows]] = False
        remap = np.cumsum(~rare) - 1
        codes = remap[codes[ok_rows]]
        notes.append(f"{len(dropped)} classes with fewer than {MIN_PER_CLASS} rows were left out "
                     f"({', '.join(dropped[:5])}{'…' if len(dropped) > 5 else ''}; {int(counts[rare].sum())} rows).")
        names = [n for n, r in zip(names, rare) if not r]
    return codes, names, keep, notes


def _column_kind(s, dates: str):
    """('numeric' | 'categorical' | 'date' | None, converted series, note)."""
    import pandas as pd
    if s.isna().all():
        return None, s, "is empty in every row"
    if s.dtype.kind == "b":
        return "numeric", s.astype(np.float32), None
    if s.dtype.kind in "iuf":
        v = s.astype(np.float64)
        if not np.isfinite(v.dropna()).all():
            n_inf = int((~np.isfinite(v.dropna())).sum())
            v = v.replace([np.inf, -np.inf], np.nan)
            return "numeric", v, f"{n_inf:,} infinite values treated as missing"
        return "numeric", v, None
    if s.dtype.kind == "M":
        return _date(s, dates)
    text = s.astype("string").str.strip()
    present = text.dropna()
    present = present[present != ""]
    if present.empty:
        return None, s, "is empty in every row"
    num = pd.to_numeric(present, errors="coerce")
    n_bad = int(num.isna().sum())
    if n_bad <= 0.05 * len(present):
        full = pd.to_numeric(text, errors="coerce").astype(np.float64)
        return "numeric", full, (f"{n_bad:,} values that are not numbers treated as missing" if n_bad else None)
    sample = present.iloc[:200]
    parsed = pd.to_datetime(sample, errors="coerce", format="ISO8601")
    fmt = "ISO8601"
    if parsed.notna().mean() < 0.95:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
        fmt = "mixed"
    if parsed.notna().mean() >= 0.95 and not sample.str.fullmatch(r"[A-Za-z ]+").all():
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _date(pd.to_datetime(text, errors="coerce", format=fmt), dates)
    n_unique = present.nunique()
    if n_unique > 50 and n_unique > 0.5 * len(present):
        return None, s, f"looks like an identifier or free text ({n_unique:,} distinct values)"
    return "categorical", text.astype(object).where(text.notna() & (text != ""), None), None


def _date(s, dates: str):
    if dates == "drop":
        return None, s, "holds dates (choose “dates → numbers” to use them)"
    days = (s - np.datetime64("1970-01-01")) / np.timedelta64(1, "D")
    return "date", days.astype(np.float64), "holds dates: turned into days since 1970-01-01"


def prepare_table(df, filename: str, options: UploadOptions = UploadOptions()) -> Prepared:
    """Check a table and choose what each column becomes (fitting happens per split, at load)."""
    import pandas as pd
    if len(df) == 0:
        raise UserDataError(f"“{filename}” has a header but no data rows.")
    columns = [str(c) for c in df.columns]
    df.columns = columns
    label = options.label if options.label is not None else columns[-1]
    if label not in columns:
        raise UserDataError(f"There is no column “{label}” in “{filename}”; its columns are "
                            f"{', '.join(columns[:12])}{'…' if len(columns) > 12 else ''}.")
    logit_cols = list(options.logit_columns)
    missing = [c for c in logit_cols if c not in columns]
    if missing:
        raise UserDataError(f"The logit columns {', '.join(missing)} are not in the file.")
    if label in logit_cols:
        raise UserDataError("The label column cannot also be a logit column.")
    features = list(options.features) if options.features is not None else \
        [c for c in columns if c != label and c not in logit_cols]
    features = [c for c in features if c != label and c not in logit_cols]
    if not features:
        raise UserDataError("Choose at least one feature column (besides the label and logit columns).")
    n_read = len(df)
    codes, names, keep, notes = _labels(df[label], label)
    codes, names, keep, rare_notes = _drop_rare(codes, names, keep, label)
    notes += rare_notes
    rows = np.flatnonzero(keep)
    kept = df.iloc[rows]
    table = {}
    plan = []
    dropped = []
    for c in features:
        kind, values, note = _column_kind(kept[c], options.dates)
        if kind is None:
            dropped.append(f"“{c}” {note}")
            continue
        n_missing = int(pd.isna(values).sum())
        plan.append({"name": c, "kind": kind, "missing": n_missing, "note": note or ""})
        table[c] = values.to_numpy() if kind != "categorical" else values.to_numpy(dtype=object)
    if dropped:
        notes.append("Columns left out: " + "; ".join(dropped) + ".")
    if not plan:
        raise UserDataError("No feature column is usable (" + "; ".join(dropped) + "). The table needs at least "
                            "one column with numbers, categories or dates besides the label.")
    logits = None
    if logit_cols:
        logits, lnotes = logits_from_array(kept[logit_cols].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64),
                                           names, logit_cols, source=f"columns of “{filename}”")
        notes += lnotes
    frame = pd.DataFrame(table, index=pd.RangeIndex(len(rows)))
    return Prepared(options.name or Path(filename).stem, "table", filename, tuple(names), codes,
                    table=frame, columns=plan, logits=logits, notes=notes, n_rows_read=n_read, rows=rows)


def logits_from_array(a: np.ndarray, class_names, column_names=None, source: str = "the file"):
    """A teacher's outputs as float32 logits (N, classes): probabilities become log-probabilities.

    Columns are matched to classes by name when every class name ends a column name, else by
    position (sorted class order)."""
    notes = []
    a = np.asarray(a)
    if a.dtype.kind not in "iuf":
        raise UserDataError(f"The teacher's outputs in {source} are not numbers.")
    a = a.astype(np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise UserDataError(f"The teacher's outputs in {source} have shape {a.shape}; expected rows × classes.")
    k = len(class_names)
    if a.shape[1] != k:
        raise UserDataError(f"The teacher's outputs in {source} have {a.shape[1]} columns but the label has {k} "
                            f"classes ({', '.join(class_names[:8])}{'…' if k > 8 else ''}): give one logit "
                            "(or probability) per class.")
    bad = ~np.isfinite(a)
    if bad.any():
        r = int(np.argwhere(bad)[0][0])
        raise UserDataError(f"The teacher's outputs in {source} hold {int(bad.sum()):,} NaN or infinite values "
                            f"(the first in row {r + 1}); every output must be a finite number.")
    if column_names is not None:
        order = []
        for cname in class_names:
            hits = [i for i, col in enumerate(column_names) if str(col).endswith(str(cname))]
            order.append(hits[0] if len(hits) == 1 else None)
        if None not in order and len(set(order)) == k and order != list(range(k)):
            a = a[:, order]
            notes.append("The teacher's columns were matched to the classes by name.")
        elif None in order:
            notes.append("The teacher's columns are taken in the classes' order: "
                         + ", ".join(f"{col} → {c}" for col, c in zip(column_names, class_names)) + ".")
    if (a >= 0).all() and (a <= 1).all() and np.allclose(a.sum(1), 1.0, atol=1e-3):
        notes.append("The teacher's outputs sum to 1 in every row: read as probabilities, "
                     "their logarithms are the logits.")
        a = np.log(np.clip(a, 1e-7, 1.0))
    return a.astype(np.float32), notes


# ---------------------------------------------------------------- NPZ

def _prepare_npz(data: bytes, filename: str, options: UploadOptions) -> Prepared:
    import pandas as pd
    try:
        z = np.load(io.BytesIO(data), allow_pickle=False)
        arrays = {k: z[k] for k in z.files}
    except ValueError as err:
        if "pickle" in str(err).lower():
            raise UserDataError(f"“{filename}” holds Python objects (pickled arrays), which the lab does not "
                                "load. Save plain numeric arrays: np.savez(f, X=X, y=y).") from None
        raise UserDataError(f"“{filename}” is not a readable NPZ file ({err}).") from None
    except Exception as err:
        raise UserDataError(f"“{filename}” is not a readable NPZ file ({type(err).__name__}: {err}).") from None
    if "X" not in arrays or "y" not in arrays:
        raise UserDataError(f"“{filename}” needs arrays named X (inputs) and y (labels); it has "
                            f"{', '.join(arrays) or 'none'}.")
    X, y = arrays["X"], arrays["y"]
    if len(X) != len(y):
        raise UserDataError(f"X has {len(X):,} rows but y has {len(y):,}: they must match.")
    if len(X) == 0:
        raise UserDataError(f"“{filename}” has no examples (X is empty).")
    if X.dtype.kind not in "iufb":
        raise UserDataError(f"X in “{filename}” is not numeric (dtype {X.dtype}).")
    y_series = pd.Series(y.astype(str) if y.dtype.kind in "US" else y)
    if y.ndim != 1:
        raise UserDataError(f"y must be one label per example; its shape is {y.shape}.")
    codes, names, keep, notes = _labels(y_series, "y")
    codes, names, keep, more = _drop_rare(codes, names, keep, "y")
    notes += more
    rows = np.flatnonzero(keep)
    logits = None
    if "logits" in arrays:
        logits, lnotes = logits_from_array(arrays["logits"][rows], names, source=f"“{filename}” (array logits)")
        notes += lnotes
    if X.ndim == 2:
        frame = pd.DataFrame(X[rows].astype(np.float64), columns=[f"x{i}" for i in range(X.shape[1])])
        frame = frame.replace([np.inf, -np.inf], np.nan)
        plan = [{"name": c, "kind": "numeric", "missing": int(frame[c].isna().sum()), "note": ""} for c in frame]
        all_nan = [c for c in frame if frame[c].isna().all()]
        if all_nan:
            frame = frame.drop(columns=all_nan)
            plan = [p for p in plan if p["name"] not in all_nan]
            notes.append(f"Columns left out (empty in every row): {', '.join(all_nan)}.")
            if not plan:
                raise UserDataError("Every column of X is NaN.")
        return Prepared(options.name or Path(filename).stem, "table", filename, tuple(names), codes, table=frame,
                        columns=plan, logits=logits, notes=notes, n_rows_read=len(y), rows=rows)
    if X.ndim == 3:
        X = X[:, None]
    elif X.ndim == 4 and X.shape[-1] in (1, 3) and X.shape[1] not in (1, 3):
        X = X.transpose(0, 3, 1, 2)
    if X.ndim != 4 or X.shape[1] not in (1, 3):
        raise UserDataError(f"X has shape {X.shape}: expected (N, features), (N, H, W), (N, C, H, W) or (N, H, W, C) "
                            "with 1 or 3 channels.")
    X = X[rows]
    if not np.isfinite(X).all():
        raise UserDataError("X holds NaN or infinite values.")
    if X.dtype != np.uint8:
        hi = float(X.max())
        X = np.clip(np.round(X * (255.0 if hi <= 1.0 else 1.0)), 0, 255).astype(np.uint8)
        notes.append("Pixel values were scaled to 0..255 and stored as bytes." if hi <= 1.0 else
                     "Pixel values were rounded and clipped to 0..255.")
    return Prepared(options.name or Path(filename).stem, "images", filename, tuple(names), codes, X=X,
                    logits=logits, notes=notes, n_rows_read=len(y), rows=rows)


# ---------------------------------------------------------------- image folders in a ZIP

def _safe_parts(name: str) -> list[str] | None:
    """The path parts of a ZIP entry, or None if it escapes the archive's folder."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or "\\" in name:
        return None
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None
    return parts


def _prepare_images(data: bytes, filename: str, options: UploadOptions) -> Prepared:
    from PIL import Image, UnidentifiedImageError
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as err:
        raise UserDataError(f"“{filename}” is not a readable ZIP archive ({err}).") from None
    unsafe = [i.filename for i in infos if _safe_parts(i.filename) is None]
    if unsafe:
        raise UserDataError(f"“{filename}” has entries whose path leaves the archive's folder "
                            f"({', '.join(unsafe[:3])}): the archive was refused and nothing was unpacked.")
    files = [i for i in infos if not i.is_dir()]
    files = [i for i in files if not any(p.startswith(".") or p == "__MACOSX" for p in _safe_parts(i.filename))]
    if sum(i.file_size for i in files) > ZIP_UNPACKED_LIMIT_MB * 2 ** 20:
        raise UserDataError(f"“{filename}” unpacks to more than {ZIP_UNPACKED_LIMIT_MB} MB; upload fewer or smaller "
                            "images.")
    paths = [_safe_parts(i.filename) for i in files]
    # one folder around the class folders (zip of a folder "data/") is looked through
    while paths and any(len(p) >= 3 for p in paths) and all(len(p) >= 2 for p in paths) \
            and len({p[0] for p in paths}) == 1:
        paths = [p[1:] for p in paths]
    size, mode = int(options.image_size), ("RGB" if options.color else "L")
    images, labels, skipped_type, corrupt, loose = [], [], [], [], []
    for info, parts in zip(files, paths):
        if not parts[-1].lower().endswith(IMAGE_EXTENSIONS):
            skipped_type.append(info.filename)
            continue
        if len(parts) < 2:
            loose.append(info.filename)
            continue
        if len(images) >= MAX_IMAGES:
            raise UserDataError(f"“{filename}” holds more than {MAX_IMAGES:,} images, the most the lab reads.")
        try:
            with Image.open(io.BytesIO(zf.read(info))) as im:
                im.load()
                im = im.convert(mode).resize((size, size), Image.Resampling.BILINEAR)
                arr = np.asarray(im, dtype=np.uint8)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError,
                zipfile.BadZipFile) as err:
            corrupt.append(f"{info.filename} ({type(err).__name__})")
            continue
        images.append(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
        labels.append(parts[0])
    notes = []

    def listed(xs):
        return ", ".join(xs[:5]) + (f" and {len(xs) - 5} more" if len(xs) > 5 else "")
    if corrupt:
        notes.append(f"{len(corrupt)} images could not be read and were left out: {listed(corrupt)}.")
    if skipped_type:
        notes.append(f"{len(skipped_type)} files that are not images (by their extension) were left out: "
                     f"{listed(skipped_type)}.")
    if loose:
        notes.append(f"{len(loose)} files outside a class folder were left out: {listed(loose)}.")
    if not images:
        raise UserDataError(f"No readable image in a class folder was found in “{filename}”. The ZIP needs one "
                            "folder per class with PNG or JPEG images in it (e.g. cats/1.png, dogs/7.jpg)."
                            + (" " + " ".join(notes) if notes else ""))
    import pandas as pd
    codes, names, keep, more = _labels(pd.Series(labels, dtype=object), "folder")
    codes, names, keep, rare = _drop_rare(codes, names, keep, "folder (class)")
    rows = np.flatnonzero(keep)
    X = np.stack(images)[rows]
    notes += more + rare
    notes.append(f"{len(rows):,} images in {len(names)} classes, resized to {size}×{size} "
                 f"{'colour (RGB)' if options.color else 'gray'}; pixel values scaled to 0..1.")
    return Prepared(options.name or Path(filename).stem, "images", filename, tuple(names), codes, X=X, notes=notes,
                    n_rows_read=len(labels), rows=rows)


# ---------------------------------------------------------------- storage

def datasets_dir() -> Path:
    return default_cache_dir() / "datasets"


def dataset_name(fp: str) -> str:
    return f"{PREFIX}{fp}"


def is_user_dataset(name: str) -> bool:
    return isinstance(name, str) and name.startswith(PREFIX) and re.fullmatch(r"[0-9a-f]{16}", name[len(PREFIX):]) is not None


def fingerprint_of(name: str) -> str:
    return name[len(PREFIX):]


def save(prep: Prepared, root: Path | None = None) -> str:
    """Store a prepared upload (idempotent: the same file and options give the same fingerprint)."""
    root = Path(root) if root is not None else datasets_dir()
    fp = prep.fingerprint
    folder = root / fp
    tmp = root / f".tmp-{fp}-{os.getpid()}-{time.monotonic_ns()}"
    tmp.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "fingerprint": fp, "name": prep.name, "kind": prep.kind, "source": prep.source,
            "class_names": list(prep.class_names), "n_rows": prep.n_rows, "n_rows_read": prep.n_rows_read,
            "columns": prep.columns, "notes": prep.notes, "created": time.time(), "teachers": []}
    if prep.kind == "table":
        frame = prep.table.copy()
        frame["__label__"] = prep.y
        frame["__row__"] = prep.rows
        frame.to_parquet(tmp / "table.parquet", index=False)
        n_num = sum(p["kind"] != "categorical" for p in prep.columns)
        meta["input_shape"] = None   # known after one-hot encoding (at load)
        meta["n_features"] = len(prep.columns)
        meta["n_numeric"] = n_num
    else:
        np.savez(tmp / "arrays.npz", X=prep.X, y=prep.y, rows=prep.rows)
        meta["input_shape"] = list(prep.X.shape[1:])
    if prep.logits is not None:
        (tmp / "logits").mkdir()
        np.save(tmp / "logits" / "file.npy", prep.logits)
        meta["teachers"].append({"id": "file", "name": f"outputs in {prep.source}", "added": time.time()})
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    if folder.exists():   # the same upload again: keep the stored one
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        os.replace(tmp, folder)
    return fp


def read_meta(fp: str, root: Path | None = None) -> dict:
    root = Path(root) if root is not None else datasets_dir()
    try:
        return json.loads((root / fp / "meta.json").read_text())
    except (OSError, ValueError):
        from kdcore.data import DatasetUnavailable
        raise DatasetUnavailable(f"The uploaded dataset {fp} is no longer stored here (deleted, or the cache "
                                 "folder was moved). Upload it again on the “Your data” page.") from None


def _write_meta(fp: str, meta: dict, root: Path | None = None) -> None:
    root = Path(root) if root is not None else datasets_dir()
    path = root / fp / "meta.json"
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, path)


def _preprocessor(meta: dict):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    num = [c["name"] for c in meta["columns"] if c["kind"] != "categorical"]
    cat = [c["name"] for c in meta["columns"] if c["kind"] == "categorical"]
    parts = []
    if num:
        parts.append(("numeric", make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                                               StandardScaler()), num))
    if cat:
        parts.append(("categorical", make_pipeline(
            SimpleImputer(strategy="constant", fill_value="(missing)"),
            OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=MAX_CATEGORIES,
                          sparse_output=False, dtype=np.float32)), cat))
    return ColumnTransformer(parts, sparse_threshold=0.0)


def load(fp: str, seed: int, root: Path | None = None):
    """The stored upload `fp` as a `Dataset` split by `seed` (preprocessing fitted on its training rows)."""
    import torch
    from kdcore.data import Dataset, DatasetUnavailable, _stratified_split
    root = Path(root) if root is not None else datasets_dir()
    meta = read_meta(fp, root)
    try:
        if meta["kind"] == "table":
            import pandas as pd
            frame = pd.read_parquet(root / fp / "table.parquet")
            y = frame.pop("__label__").to_numpy(np.int64)
            frame.pop("__row__")
            tr, va, te = _stratified_split(y, (0.2, 0.2), seed)
            pre = _preprocessor(meta)
            pre.fit(frame.iloc[tr])
            X = np.asarray(pre.transform(frame), dtype=np.float32)
            input_shape = (X.shape[1],)
            features = [str(n) for n in pre.get_feature_names_out()]
            is_image = False
        else:
            with np.load(root / fp / "arrays.npz") as z:
                X8, y = z["X"], z["y"].astype(np.int64)
            tr, va, te = _stratified_split(y, (0.2, 0.2), seed)
            X = X8.astype(np.float32) / 255.0
            input_shape = tuple(X8.shape[1:])
            features = []
            is_image = True
    except (OSError, KeyError, ValueError) as err:
        raise DatasetUnavailable(f"The stored files of the uploaded dataset “{meta.get('name', fp)}” cannot be read "
                                 f"({type(err).__name__}: {err}). Delete it on the “Your data” page and upload "
                                 "it again.") from None
    Xt, yt = torch.from_numpy(np.array(X)), torch.from_numpy(np.array(y))
    extra = {"user": True, "fingerprint": fp, "label": meta["name"], "rows": {"train": tr, "val": va, "test": te},
             "features": features}
    desc = f"uploaded: {meta['name']} ({meta['source']}, {len(y):,} rows, {len(meta['class_names'])} classes)"
    return Dataset(dataset_name(fp), Xt[tr], yt[tr], Xt[va], yt[va], Xt[te], yt[te],
                   tuple(meta["class_names"]), input_shape, is_image, int(seed), desc, extra)


def delete_files(fp: str, root: Path | None = None) -> None:
    import shutil
    root = Path(root) if root is not None else datasets_dir()
    shutil.rmtree(root / fp, ignore_errors=True)


# ---------------------------------------------------------------- uploaded teacher outputs

def attach_logits(fp: str, data: bytes, filename: str, root: Path | None = None) -> tuple[str, list[str]]:
    """Add a teacher's outputs from a second file aligned by row with the uploaded one (CSV, NPY or
    safetensors; one row per row of the original file). Returns (teacher id, notes)."""
    check_size(len(data))
    root = Path(root) if root is not None else datasets_dir()
    meta = read_meta(fp, root)
    suffix = Path(filename).suffix.lower()
    cols = None
    try:
        if suffix == ".npy":
            a = np.load(io.BytesIO(data), allow_pickle=False)
        elif suffix == ".safetensors":
            from safetensors.numpy import load as st_load
            tensors = st_load(data)
            if len(tensors) != 1:
                raise UserDataError(f"“{filename}” holds {len(tensors)} tensors ({', '.join(list(tensors)[:5])}); "
                                    "expected exactly one, the logits (rows × classes).")
            a = next(iter(tensors.values()))
        elif suffix in (".csv", ".tsv", ".txt"):
            df, _ = read_table(data, filename)
            if all(_is_number(c) for c in df.columns):   # headerless: pandas took the first row as the header
                import pandas as pd
                df = pd.read_csv(io.BytesIO(data), header=None, sep=None, engine="python")
            else:
                cols = list(df.columns)
            a = df.to_numpy()
            if a.dtype.kind not in "iuf":
                import pandas as pd
                a = df.apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
        else:
            raise UserDataError(f"The teacher's outputs can be a .csv, .npy or .safetensors file, not “{filename}”.")
    except UserDataError:
        raise
    except Exception as err:
        raise UserDataError(f"“{filename}” cannot be read ({type(err).__name__}: {err}).") from None
    n_read = meta["n_rows_read"]
    if len(a) != n_read:
        raise UserDataError(f"“{filename}” has {len(a):,} rows but the dataset's file had {n_read:,}: the teacher's "
                            "outputs must be aligned by row with it (one row per row, same order).")
    rows = _stored_rows(fp, meta, root)
    logits, notes = logits_from_array(np.asarray(a)[rows], meta["class_names"], cols, source=f"“{filename}”")
    tid = hashlib.sha256(logits.tobytes()).hexdigest()[:12]
    (root / fp / "logits").mkdir(exist_ok=True)
    np.save(root / fp / "logits" / f"{tid}.npy", logits)
    if not any(t["id"] == tid for t in meta["teachers"]):
        meta["teachers"].append({"id": tid, "name": f"outputs in {filename}", "added": time.time()})
        _write_meta(fp, meta, root)
    return tid, notes


def _is_number(x) -> bool:
    try:
        float(x)
        return True
    except (TypeError, ValueError):
        return False


def _stored_rows(fp: str, meta: dict, root: Path) -> np.ndarray:
    if meta["kind"] == "table":
        import pandas as pd
        return pd.read_parquet(root / fp / "table.parquet", columns=["__row__"])["__row__"].to_numpy()
    with np.load(root / fp / "arrays.npz") as z:
        return z["rows"]


def stored_logits(fp: str, teacher_id: str, root: Path | None = None) -> np.ndarray:
    root = Path(root) if root is not None else datasets_dir()
    if not re.fullmatch(r"[0-9a-z]{1,32}", teacher_id):
        raise ValueError("bad teacher id")
    return np.load(root / fp / "logits" / f"{teacher_id}.npy")


# ---------------------------------------------------------------- workspaces

def _ws_path(ws: str, root: Path) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", ws):
        raise ValueError("bad workspace id")
    return root / "workspaces" / f"{ws}.json"


def workspace_datasets(ws: str, root: Path | None = None) -> list[dict]:
    """The metadata of the uploaded datasets of workspace `ws`, oldest first (missing ones skipped)."""
    root = Path(root) if root is not None else datasets_dir()
    try:
        fps = json.loads(_ws_path(ws, root).read_text())
    except (OSError, ValueError):
        return []
    out = []
    for fp in fps:
        try:
            out.append(json.loads((root / fp / "meta.json").read_text()))
        except (OSError, ValueError):
            continue
    return out


def add_to_workspace(ws: str, fp: str, root: Path | None = None) -> None:
    root = Path(root) if root is not None else datasets_dir()
    path = _ws_path(ws, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fps = json.loads(path.read_text())
    except (OSError, ValueError):
        fps = []
    if fp not in fps:
        fps.append(fp)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(fps))
    os.replace(tmp, path)


def remove_from_workspace(ws: str, fp: str, root: Path | None = None) -> bool:
    """Take `fp` off the workspace's list; delete its files if no workspace lists it. True if deleted."""
    root = Path(root) if root is not None else datasets_dir()
    path = _ws_path(ws, root)
    try:
        fps = [f for f in json.loads(path.read_text()) if f != fp]
    except (OSError, ValueError):
        fps = []
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(fps))
    os.replace(tmp, path)
    for other in (root / "workspaces").glob("*.json"):
        try:
            if fp in json.loads(other.read_text()):
                return False
        except (OSError, ValueError):
            continue
    delete_files(fp, root)
    return True
