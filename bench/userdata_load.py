"""Load-to-ready time of an uploaded 100 000-row × 50-column CSV (issue 15: < 10 s on 2 cores).

Times what the "Your data" page does, from the file's bytes to a Dataset ready to train: read the
CSV (pandas), check it and choose what each column becomes (kdcore.userdata.prepare_table), store
it (Parquet + meta.json), then load it by name as a worker does (split, ColumnTransformer fitted on
the training rows, tensors). The table: 45 numeric columns (1 % missing), 4 categorical columns
(8 values each, some missing), a label of 5 classes. Run: `python -m bench.userdata_load [--repeats 3]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time

import numpy as np
import pandas as pd


def make_csv(n_rows: int = 100_000, n_numeric: int = 45, n_categorical: int = 4, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, n_rows)
    cols = {}
    for j in range(n_numeric):
        x = rng.normal(size=n_rows) + 0.3 * y * (j % 3 == 0)
        x[rng.random(n_rows) < 0.01] = np.nan
        cols[f"num{j}"] = np.round(x, 5)
    for j in range(n_categorical):
        c = rng.choice([f"v{k}" for k in range(8)], n_rows).astype(object)
        c[rng.random(n_rows) < 0.01] = None
        cols[f"cat{j}"] = c
    cols["label"] = np.array(["alpha", "beta", "gamma", "delta", "epsilon"])[y]
    return pd.DataFrame(cols).to_csv(index=False).encode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    data = make_csv()
    print(f"CSV: {len(data) / 2 ** 20:.1f} MB, 100 000 rows × 50 columns; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores")
    tmp = tempfile.mkdtemp(prefix="kdlab-bench-")
    os.environ["KDLAB_CACHE"] = tmp
    from kdcore import userdata as ud
    try:
        for r in range(args.repeats):
            shutil.rmtree(os.path.join(tmp, "datasets"), ignore_errors=True)
            t0 = time.perf_counter()
            df, notes = ud.read_table(data, "big.csv")
            t1 = time.perf_counter()
            opts = ud.UploadOptions(label="label")
            prep = ud.prepare_table(df, "big.csv", opts)
            prep.fingerprint = ud.fingerprint(data, opts)
            t2 = time.perf_counter()
            fp = ud.save(prep)
            t3 = time.perf_counter()
            ds = ud.load(fp, 0)
            t4 = time.perf_counter()
            print(f"run {r + 1}: read {t1 - t0:.2f} s · check {t2 - t1:.2f} s · store {t3 - t2:.2f} s · "
                  f"load and preprocess {t4 - t3:.2f} s · total {t4 - t0:.2f} s  ({ds.summary()})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
