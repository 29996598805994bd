"""A results table with a CSV download of all its columns: the widget of the tables a user takes away
(the Sweep's cells and students, the Trade-offs tables, the Runs history). Small summary tables that
only restate numbers shown beside them (metrics of a few models) are plain `st.dataframe`s."""

from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd
import streamlit as st


def show(table: pd.DataFrame, *, key: str, file_name: str, label: str = "Download (CSV)",
         formats: Mapping[str, str] | None = None, hide: Sequence[str] = (),
         labels: Mapping[str, str] | None = None, settings: Mapping[str, object] | None = None) -> None:
    """`table` as a dataframe (numbers in `formats`, printf-style per column; headers renamed by
    `labels` in the view only; `hide` columns left out of the view) and a button that downloads all
    of it, with its own column names and the hidden columns, as `file_name`. `settings` (e.g. the
    run's config, flattened) go into the CSV as leading columns, the same on every row, so that the
    numbers never travel without the settings that made them."""
    formats, labels = formats or {}, labels or {}
    config = {c: st.column_config.NumberColumn(labels.get(c), format=formats[c]) if c in formats
              else st.column_config.Column(labels.get(c)) for c in {*formats, *labels} if c in table.columns}
    st.dataframe(table.drop(columns=list(hide)), hide_index=True, width="stretch", column_config=config,
                 placeholder="—")   # a value that does not apply (a teacher's gain over itself) reads "—", not "None"
    csv = table
    if settings:
        front = pd.DataFrame({f"setting: {k}": [v if not isinstance(v, (list, tuple, dict)) else str(v)] * len(table)
                              for k, v in settings.items()}, index=table.index)
        csv = pd.concat([front, table], axis=1)
    st.download_button(label, csv.to_csv(index=False).encode(), file_name, "text/csv", key=key,
                       icon=":material/download:")
