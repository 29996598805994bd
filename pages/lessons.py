"""Lessons: ready-made links, each opening one page with its settings, with what to press and look for."""

import streamlit as st

from kdcore.lessons import LESSONS
from ui import links, state

st.title("Lessons")
st.markdown("Each lesson opens one page with its settings already chosen, on the built-in *digits* "
            "dataset: press what it says and look for what it names. The links carry every setting, "
            "so a lecturer can put them on a slide; **Open** starts the lesson in a new tab (in your "
            "workspace, so its runs are listed under **Runs**).")

for i, lesson in enumerate(LESSONS, 1):
    params = {state.DATASET_KEY: "digits", **lesson.params, state.WORKSPACE_KEY: state.workspace()}
    params = {k: v for k, v in params.items() if not (k == state.DATASET_KEY and v == "digits")}
    url = links.link(lesson.page, params)
    with st.container(border=True):
        head, button = st.columns([5, 1], vertical_alignment="center")
        head.markdown(f"#### {i} · {lesson.title}")
        button.link_button("Open", url, icon=":material/open_in_new:", type="primary", width="stretch")
        st.markdown(lesson.paragraph)
        st.markdown(f"**On the {state.PAGE_TITLES.get(lesson.page, lesson.page)} page, press:** {lesson.press}  \n"
                    f"**Look for:** {lesson.look_for}")
        st.code(links.link(lesson.page, {k: v for k, v in params.items() if k != state.WORKSPACE_KEY}),
                language=None, wrap_lines=True)
