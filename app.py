"""Distillation Lab: the frame and router of the Streamlit app.

It sets the page up, draws the shared sidebar (dataset, seed) and hands over
to the chosen page. Pages live in pages/, one thin script each, over kdcore.
Run with `streamlit run app.py`.
"""

import streamlit as st

from ui import frame, links, present, runs, sidebar, state

presenting = st.session_state.get("present") or str(st.query_params.get("present", "")).lower() in links.TRUE_WORDS
st.set_page_config(page_title="Distillation Lab", page_icon="⚗️", layout="wide",
                   initial_sidebar_state="collapsed" if presenting else "auto")

PAGES = {
    "": [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/lessons.py", title="Lessons", icon=":material/cast_for_education:"),
    ],
    "Distillation": [
        st.Page("pages/distill.py", title="Distill", icon=":material/school:"),
        st.Page("pages/temperature.py", title="Temperature", icon=":material/thermostat:"),
        st.Page("pages/sweep.py", title="Sweep", icon=":material/grid_on:"),
        st.Page("pages/ensembles.py", title="Ensembles", icon=":material/groups:"),
        st.Page("pages/specialists.py", title="Specialists", icon=":material/category:"),
        st.Page("pages/transfer_set.py", title="Transfer sets", icon=":material/swap_horiz:"),
        st.Page("pages/hinton_mnist.py", title="Hinton MNIST", icon=":material/history_edu:"),
        st.Page("pages/sequences.py", title="Sequences", icon=":material/timeline:"),
        st.Page("pages/losses.py", title="Losses", icon=":material/functions:"),
    ],
    "Compression": [
        st.Page("pages/prune.py", title="Prune", icon=":material/content_cut:"),
        st.Page("pages/tradeoffs.py", title="Trade-offs", icon=":material/balance:"),
    ],
    "Workspace": [
        st.Page("pages/data.py", title="Your data", icon=":material/upload_file:"),
        st.Page("pages/runs.py", title="Runs", icon=":material/history:"),
    ],
}

runs.runner()   # the job runner's workers start with the server's first visit, not its first run

page = st.navigation({k: v for k, v in PAGES.items() if v}, expanded=True)   # every page in view, Runs too
links.begin(page.url_path)     # a ?run= link, and parameters that are no setting of this page
sidebar.show(key="sidebar")
present.low_motion()   # Streamlit's running signals without animation frames (a classroom's CPUs)
if state.present():   # presentation mode: large type, the settings in one line (its parameters read only then)
    present.css(page.url_path, links.share_params(page.url_path))
notes = st.container()         # on top of the page: what the link asked for and could not get
stopped = frame.run_page(page)   # a page's frame.stop() ends the page, not this frame
# after the page (also one that stopped early): the notes on its link's settings, the Share box with
# its settings, and the models it just made
links.end(page.url_path, notes)
sidebar.show_models(page.url_path)
frame.finish(stopped)
