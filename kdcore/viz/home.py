"""The Home page's one picture: what a temperature does to a teacher's distribution."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from kdcore.viz.style import COLORS, LEGEND_ABOVE, layout


def soft_targets_at(class_names: Sequence[str], probabilities: Sequence[tuple[float, np.ndarray]],
                    title: str) -> go.Figure:
    """Grouped bars of one example's probabilities per class, one series per temperature (T, p)."""
    colors = [COLORS["teacher"], COLORS["distilled"], COLORS["scratch"]]
    fig = go.Figure()
    for (t, p), color in zip(probabilities, colors):
        fig.add_trace(go.Bar(x=list(class_names), y=np.asarray(p), name=f"T = {t:g}", marker_color=color,
                             hovertemplate="class %{x}: %{y:.3f}<extra>T=" + f"{t:g}</extra>"))
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="class", type="category")
    fig.update_yaxes(title_text="probability")
    layout(fig, title, height=340)
    fig.update_layout(legend=LEGEND_ABOVE)
    return fig
