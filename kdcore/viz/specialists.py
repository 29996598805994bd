"""Figures of the Specialists page: the generalist's covariance by cluster, per-class accuracy."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from kdcore.specialists import cluster_order
from kdcore.viz.style import COLORS, layout


def covariance_heatmap(cov: torch.Tensor | np.ndarray, clusters: Sequence[Sequence[int]],
                       class_names: Sequence[str], hide_diagonal: bool = True,
                       title: str = "Covariance of the generalist's predictions, by cluster") -> go.Figure:
    """The C × C covariance, rows and columns ordered by cluster, each cluster boxed."""
    order = cluster_order(clusters)
    m = np.array(cov, dtype=float)[np.ix_(order, order)]
    if hide_diagonal:
        np.fill_diagonal(m, np.nan)
    names = [str(class_names[i]) for i in order]
    lim = float(np.nanmax(np.abs(m))) if np.isfinite(m).any() else 1.0
    fig = go.Figure(go.Heatmap(
        z=m, x=names, y=names, colorscale="RdBu", reversescale=True, zmid=0, zmin=-lim, zmax=lim,
        hovertemplate="classes %{y} and %{x}<br>covariance %{z:.2e}<extra></extra>",
        colorbar=dict(title="covariance")))
    start = 0
    for cl in clusters:
        n = len(cl)
        fig.add_shape(type="rect", x0=start - 0.5, x1=start + n - 0.5, y0=start - 0.5, y1=start + n - 0.5,
                      line=dict(color="black", width=2))
        start += n
    fig.update_xaxes(title_text="class (grouped by cluster)", type="category")
    fig.update_yaxes(title_text="class (grouped by cluster)", type="category", autorange="reversed")
    return layout(fig, title + (" (diagonal hidden)" if hide_diagonal else ""), height=420)


def per_class_bars(per_class: Sequence[dict], title: str = "Per-class test accuracy") -> go.Figure:
    """Generalist vs combined accuracy per class (rows of `SpecialistResult.report()['per_class']`)."""
    names = [str(r["class"]) for r in per_class]
    fig = go.Figure()
    for key, color, label in [("generalist", COLORS["teacher"], "generalist"),
                              ("combined", COLORS["distilled"], "generalist + specialists")]:
        fig.add_trace(go.Bar(x=names, y=[100 * r[key] for r in per_class], name=label, marker_color=color,
                             customdata=[r["n"] for r in per_class],
                             hovertemplate=f"{label}<br>class %{{x}}: %{{y:.1f}}% of %{{customdata}} test "
                                           f"examples<extra></extra>"))
    ys = [100 * r[k] for r in per_class for k in ("generalist", "combined") if r[k] == r[k]]
    lo = max(0.0, min(ys) - 10) if ys else 0.0
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="class", type="category")
    fig.update_yaxes(title_text="test accuracy (%)", range=[lo, 101])
    return layout(fig, title, height=380)
