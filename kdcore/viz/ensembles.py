"""Figures of the Ensembles page: test accuracy of the members, the ensemble and its students."""

from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go

from kdcore.viz.style import COLORS, layout, wrap_label


def ensemble_bars(rows: Sequence[dict], title: str = "Test accuracy: members, ensemble, students") -> go.Figure:
    """Bars of test accuracy; rows: dicts with 'model', 'role' and 'accuracy' (a fraction)."""
    colors = {"member": COLORS["teacher"], "ensemble": "#2E3A87", "distilled": COLORS["distilled"],
              "single": "#FFBF79", "scratch": COLORS["scratch"]}
    names = [wrap_label(r["model"]) for r in rows]
    acc = [100 * r["accuracy"] for r in rows]
    fig = go.Figure(go.Bar(
        x=names, y=acc, text=[f"{a:.1f}%" for a in acc], textposition="outside",
        marker_color=[colors.get(r["role"], COLORS["other"]) for r in rows],
        customdata=[r.get("params", 0) for r in rows],
        hovertemplate="%{x}<br>%{y:.2f}% test accuracy<br>%{customdata:,} parameters<extra></extra>"))
    lo = max(0.0, min(acc) - 8) if acc else 0.0
    fig.update_yaxes(title_text="test accuracy (%)", range=[lo, 100.5 + (100 - lo) * 0.1])
    fig.update_xaxes(title_text="model", tickangle=0)
    return layout(fig, title, height=420)
