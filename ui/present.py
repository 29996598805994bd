"""Presentation mode (the sidebar's toggle, or ?present=1) and the charts' PNG export.

- `css(page)`: in presentation mode, large type, no toolbar or header, the settings forms folded to
  their buttons (Train, Distill, Run… stay pressable) and summed up in one line above the page.
- `low_motion()`: every page, every session: Streamlit's motion without its animation frames (below).
- `chart(fig)`: how every page draws a plotly figure (Streamlit's `plotly_chart` with a config): the
  camera button saves a PNG at presentation resolution (1600 × 900 at scale 2) named after the
  chart's title and the dataset, and in presentation mode the figure is drawn from a projector-sized
  copy (`kdcore.viz.style.for_projector`).
"""

from __future__ import annotations

import streamlit as st
from kdcore.viz.report import png_config
from kdcore.viz.style import for_projector
from ui import state

CSS = """
<style>
html, body, [data-testid="stAppViewContainer"] { font-size: 20px; }
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li { font-size: 1.15rem; }
h1 { font-size: 2.6rem !important; } h2, h3 { font-size: 1.8rem !important; }
[data-testid="stMetricValue"] { font-size: 2.6rem !important; }
[data-testid="stToolbar"], [data-testid="stDecoration"], [data-testid="stHeader"],
[data-testid="stElementToolbar"], .modebar-container { display: none !important; }
[data-testid="stForm"] [data-testid="stElementContainer"]:not(:has([data-testid="stFormSubmitButton"])) {
  display: none !important; }
[data-testid="stForm"] { border: none !important; padding: 0 !important; }
.block-container, [data-testid="stMainBlockContainer"] { padding-top: 1rem !important; max-width: 100% !important; }
</style>
"""

# Streamlit animates while a script runs: a rotating spinner, the header's "Running" icon, elements that
# fade to grey (after 0.5 s, over 1 s) while a rerun redraws them, progress bars that slide. Every
# animation frame is drawn again, and a browser without a GPU (a classroom's laptops, the benchmarks'
# headless Chromium) draws in software: 20 sessions waiting for their results on one 2-core machine
# spent more CPU on these frames than the server on the training (`python -m bench.classroom`: warm
# median 22.6 s with them, docs/performance.md). The same signals stay, without the frames: the
# spinner's icon stands still beside its running clock, and stale elements turn grey after 0.5 s in
# one step instead of a fade.
LOW_MOTION_CSS = """<style>
[data-testid="stSpinnerIcon"], [data-testid="stStatusWidget"] *, [data-testid="stSkeleton"] {
  animation: none !important; }
[data-testid="stElementContainer"][data-stale="true"] { transition: opacity 0s linear 0.5s !important; }
[data-testid="stProgress"] * { transition: none !important; }
</style>"""


def low_motion() -> None:
    """Streamlit's running signals without animation frames (see LOW_MOTION_CSS); style only, no room taken."""
    st.html(LOW_MOTION_CSS)


def chart(fig, *, where=None, **kwargs):
    """`st.plotly_chart(fig, **kwargs)` (or `where.plotly_chart`, for a column or container) with the lab's
    PNG export, and a projector-sized copy of the figure in presentation mode."""
    title = None
    try:
        title = fig.layout.title.text
    except AttributeError:
        pass
    config = dict(png_config(f"{title or 'chart'}-{state.dataset_name()}"))
    config.update(kwargs.pop("config", None) or {})
    if state.present() and hasattr(fig, "layout"):
        fig = for_projector(fig)
    return (where or st).plotly_chart(fig, config=config, **kwargs)


def css(page: str, settings: dict) -> None:
    """In presentation mode: the style, and this view's settings (`settings`: the link's parameters,
    `ui.links.share_params`) in one line above the page."""
    if not state.present():
        return
    st.markdown(CSS, unsafe_allow_html=True)
    params = {k: v for k, v in settings.items() if k != state.PRESENT_KEY}
    for k in st.query_params:     # a link's settings before the page's widgets took them (its first run)
        if k not in params and state.page_of_param(k) == page:
            values = st.query_params.get_all(k)
            params[k] = values if len(values) > 1 else values[0]
    text = " · ".join(f"{k.split('_', 1)[-1] if state.page_of_param(k) else k} = "
                      f"{', '.join(v) if isinstance(v, list) else v}" for k, v in params.items())
    st.caption(f"**{state.PAGE_TITLES.get(page, page)}** · {state.dataset_name()}, seed {state.seed()}"
               + (f" · {text}" if text else " · default settings")
               + " — presentation mode (the sidebar's toggle turns it off)")
