"""Live progress for long work inside one script run: a bar, a status line, a chart.

Streamlit stops a running script when the user presses a button (Stop, or any
other widget outside a form); pages keep their work-in-progress in
`st.session_state` before each update, so what was learned up to the stop is
shown on the next run instead of being lost.
"""

from __future__ import annotations

import streamlit as st


class LiveProgress:
    """A progress bar with a status text, a placeholder for a live chart, and a Stop button."""

    def __init__(self, label: str, key: str, stop_label: str = "Stop"):
        self._box = st.empty()   # one slot for all of it, so clear() leaves nothing behind
        with self._box.container():
            cols = st.columns([5, 1], vertical_alignment="bottom")
            with cols[0]:
                self._bar = st.progress(0.0, text=label)
            with cols[1]:
                # pressing it reruns the page, which ends this run; the page then shows the partial result
                st.button(stop_label, key=f"{key}_stop", icon=":material/stop_circle:",
                          help="Stop after the current epoch and keep what has been learned so far.")
            self._chart = st.empty()

    def update(self, fraction: float, text: str, figure=None) -> None:
        self._bar.progress(min(max(fraction, 0.0), 1.0), text=text)
        if figure is not None:
            self._chart.plotly_chart(figure, width="stretch")

    def clear(self) -> None:
        self._box.empty()
