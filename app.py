"""Distillation Lab: the frame and router of the Streamlit app.

It sets the page up, draws the shared sidebar (dataset, seed) and hands over
to the chosen page. Pages live in pages/, one thin script each, over kdcore.
Run with `streamlit run app.py`.
"""

import streamlit as st

from ui import sidebar

st.set_page_config(page_title="Distillation Lab", page_icon="⚗️", layout="wide")

PAGES = {
    "": [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    ],
    "Distillation": [
        st.Page("pages/distill.py", title="Distill", icon=":material/school:"),
        # PAGE temperature (issue 3)
        # PAGE sweep (issue 7)
        # PAGE paper experiments (issue 6)
    ],
    "Compression": [
        # PAGE prune (issue 4)
        # PAGE tradeoffs (issue 5)
    ],
}

page = st.navigation({k: v for k, v in PAGES.items() if v})
sidebar.show(key="sidebar")
page.run()
