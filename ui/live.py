"""Live progress for long work inside one script run: a bar, a status line, a chart.

Streamlit stops a running script when the user presses a button (Stop, or any
other widget outside a form). A page hands its work in progress to the box
(`keep=(state_key, run)`): it stays in `st.session_state` while the box is up,
so the next run finds what was learned up to the stop and shows it instead of
losing it; `clear()`, at the end of the work or on an error, forgets it.
"""

from __future__ import annotations

import streamlit as st


class LiveProgress:
    """A progress bar with a status text, a placeholder for a live chart, and a Stop button."""

    def __init__(self, label: str, key: str, stop_label: str = "Stop", keep: tuple[str, object] | None = None):
        self._keep_key = None
        if keep is not None:
            self._keep_key, work = keep
            st.session_state[self._keep_key] = work   # found by the next run if this one is stopped
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
        """Remove the box and forget the kept work in progress (it finished, or failed with a message)."""
        if self._keep_key is not None:
            st.session_state.pop(self._keep_key, None)
        self._box.empty()
