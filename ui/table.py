"""A results table with a CSV download of it: the widget every page with a table uses."""

from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd
import streamlit as st


def show(table: pd.DataFrame, *, key: str, file_name: str, label: str = "Download (CSV)",
         formats: Mapping[str, str] | None = None, hide: Sequence[str] = ()) -> None:
    """`table` as a dataframe (numbers in `formats`, printf-style per column; `hide` columns left out
    of the view) and a button that downloads all of it, hidden columns included, as `file_name`."""
    st.dataframe(table.drop(columns=list(hide)), hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format=f) for c, f in (formats or {}).items()})
    st.download_button(label, table.to_csv(index=False).encode(), file_name, "text/csv", key=key,
                       icon=":material/download:")
