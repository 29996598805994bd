"""The one look of every chart in the lab: colours per role, a light template, titles and legends.

Every figure builder in `kdcore.viz` ends with `layout(fig, title, height)` (a `go.Figure` built
with plotly's API) or `figure(data, layout, title, height)` (traces and layout written as plain
dicts, for the views redrawn on every slider move). Both give the same title placement, margins,
legend under the plot (never over its title) and template.
"""

from __future__ import annotations

import plotly.graph_objects as go

# one colour per role, used by every page so "distilled" always looks the same
COLORS = {
    "teacher": "#4C78A8",
    "distilled": "#F58518",
    "scratch": "#54A24B",
    "hard labels": "#72B7B2",
    "labels only": "#54A24B",   # the sequence students' name for "scratch"
    "pruned": "#B279A2",
    "quantized": "#E45756",
    "other": "#9D755D",
}
# classes in 2-D views and the Home page's bars
PALETTE = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#FF9DA6", "#9D755D",
           "#BAB0AC", "#EECA3B"]
NEUTRAL = "#888"

# plotly_white's look in a few keys: the full template is ~7 kB that plotly deep-copies, walks and
# sends with every figure; this one keeps a chart cheap to build and to send
TEMPLATE = {"layout": {
    "paper_bgcolor": "white", "plot_bgcolor": "white", "font": {"color": "#2a3f5f"},
    "colorway": ["#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692", "#B6E880"],
    "hovermode": "closest", "hoverlabel": {"align": "left"},
    "xaxis": {"gridcolor": "#EBF0F8", "linecolor": "#EBF0F8", "zerolinecolor": "#EBF0F8", "automargin": True,
              "ticks": "", "zerolinewidth": 2},
    "yaxis": {"gridcolor": "#EBF0F8", "linecolor": "#EBF0F8", "zerolinecolor": "#EBF0F8", "automargin": True,
              "ticks": "", "zerolinewidth": 2},
}}
# a horizontal legend at the bottom of the figure: anchored to the figure (container), not to the plot,
# so plotly makes room for it under the x-axis title whatever the plot's height and however many rows
# the legend wraps into (anchored to the plot, a wrapped legend stood on the axis title)
LEGEND_BELOW = dict(orientation="h", x=0.0, xanchor="left", yref="container", y=0.0, yanchor="bottom")
# a legend above the plot on the right, for charts whose x-axis is crowded (grouped bars)
LEGEND_ABOVE = dict(orientation="h", x=1.0, xanchor="right", yref="paper", y=1.02, yanchor="bottom")
MARGIN = dict(l=60, r=20, t=56, b=50)


def base_layout(title: str, height: int = 360) -> dict:
    """The layout every figure starts from: title at the top left, legend below, the light template."""
    lines = title.count("<br>")   # a second line (a subtitle) gets its room above the plot
    return dict(title=dict(text=title, x=0.0, xanchor="left", y=0.98, yanchor="top"), height=height + 22 * lines,
                margin=dict(MARGIN, t=MARGIN["t"] + 22 * lines), legend=dict(LEGEND_BELOW), template=TEMPLATE)


def wrap_label(text: str, width: int = 18) -> str:
    """A long axis label on several short lines (plotly breaks lines only at <br>), so category labels
    stand level instead of slanting across the chart."""
    lines, line = [], ""
    for word in str(text).split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "<br>".join(lines + [line])


def subtitled(title: str, subtitle: str) -> str:
    """A title with a smaller second line (for charts in half-width columns, where one long line is cut)."""
    return f"{title}<br><span style='font-size:12px'>{subtitle}</span>" if subtitle else title


def layout(fig: go.Figure, title: str, height: int = 360) -> go.Figure:
    """Give a figure built with plotly's API the lab's look (settings made before are kept unless they
    are the title, height, margin, legend or template)."""
    base = base_layout(title, height)
    template = base.pop("template")
    fig.update_layout(**base)
    fig.layout.template = template   # assigned, not updated: an update would merge plotly's default template in
    return fig


def figure(data: list[dict], layout_: dict, title: str, height: int = 360) -> go.Figure:
    """A figure from plain trace and layout dicts, with the lab's look; `layout_` overrides the base."""
    base = base_layout(title, height)
    for key, value in layout_.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return go.Figure(dict(data=data, layout=base))


def vline(x: float, color: str = NEUTRAL, dash: str = "dot") -> dict:
    """A vertical line shape at x in data units: plotly places shapes in data units on a log axis too
    (unlike annotations, which want log10 of the value there)."""
    return dict(type="line", xref="x", yref="paper", x0=x, x1=x, y0=0, y1=1,
                line=dict(color=color, dash=dash, width=1.5))


def hline(y: float, color: str = NEUTRAL, dash: str = "dash", yref: str = "y") -> dict:
    """A horizontal line shape at y in axis units."""
    return dict(type="line", xref="paper", yref=yref, x0=0, x1=1, y0=y, y1=y,
                line=dict(color=color, dash=dash, width=1.2))


# ---- presentation mode: the same figure, readable on a projector at 1280 × 720 ----
PROJECTOR_FONT = 18          # axis titles, legend, hover (px); ticks 2 px less, the title 6 px more
PROJECTOR_MIN_HEIGHT = 480   # px: a chart fills most of a 720-px-high screen under the page title


PROJECTOR_TITLE_CHARS = 44  # a longer title gets smaller type, on one line (a half-width chart at 1280 px)


def for_projector(fig: go.Figure) -> go.Figure:
    """A projector-sized copy of a lab figure (the original is shared and never changed): larger
    type, a taller chart, the title on one line above the plot (smaller type when it is long, so
    that it fits a half-width chart) and the legend under the x axis, never over the title."""
    out = go.Figure(fig)
    lay = out.layout
    height = max(int(lay.height or 360), PROJECTOR_MIN_HEIGHT)
    title = (lay.title.text if lay.title is not None else None) or None
    title_size = PROJECTOR_FONT + 6
    if title and len(title) > PROJECTOR_TITLE_CHARS:
        title_size = max(PROJECTOR_FONT - 2, int(title_size * PROJECTOR_TITLE_CHARS / len(title)))
    out.update_layout(
        height=height, font=dict(size=PROJECTOR_FONT),
        title=dict(text=title, font=dict(size=title_size), x=0.0, xanchor="left", xref="container",
                   pad=dict(l=8), y=0.985, yanchor="top", yref="container") if title else None,
        margin=dict(l=80, r=30, t=90 if title else 40, b=60),
        legend=dict(LEGEND_BELOW, font=dict(size=PROJECTOR_FONT - 2)),   # under the plot, also for the
        # charts whose legend sits above it on screen: there it would meet the larger title
        hoverlabel=dict(font=dict(size=PROJECTOR_FONT)),
    )
    out.update_xaxes(tickfont=dict(size=PROJECTOR_FONT - 2), title_font=dict(size=PROJECTOR_FONT))
    out.update_yaxes(tickfont=dict(size=PROJECTOR_FONT - 2), title_font=dict(size=PROJECTOR_FONT))
    out.update_annotations(font=dict(size=PROJECTOR_FONT - 2))
    return out
