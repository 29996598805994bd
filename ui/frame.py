"""The app's frame around a page: what app.py draws after the page still appears when the page stops early.

`st.stop()` ends the whole script run: nothing after it is drawn. Pages stop early often (no teacher
yet, a run under way, bad settings), and the frame draws after the page: the notes on a link's
settings, the Share box, the models the page just made. So pages end with `frame.stop()`: inside
`run_page` it ends the page only, the frame draws its part, then `finish` stops the run as the page
asked (Streamlit then keeps the state of the widgets the page did not reach, as after any stop).
Outside the frame (a page run alone, as AppTest's `from_file` does) it is `st.stop()`.
"""

from __future__ import annotations

import threading
from typing import NoReturn

import streamlit as st


class PageStopped(Exception):
    """Raised by `stop()` inside `run_page`: the page ends there, the frame goes on."""


_IN_PAGE = threading.local()      # each session's script runs in its own thread


def stop() -> NoReturn:
    """End the page here (the frame still draws its part after it), or the script run outside the frame."""
    if getattr(_IN_PAGE, "on", False):
        raise PageStopped
    st.stop()


def run_page(page) -> bool:
    """Run the page (an `st.Page`); True if it ended early with `stop()`."""
    _IN_PAGE.on = True
    try:
        page.run()
    except PageStopped:
        return True
    finally:
        _IN_PAGE.on = False
    return False


def finish(stopped: bool) -> None:
    """After the frame's part: stop the script run if the page asked to."""
    if stopped:
        st.stop()
