"""Figures of the Hinton MNIST page: the paper's test errors next to ours, and recovering the omitted
class with a bias on its logit."""

from __future__ import annotations

from typing import Mapping, Sequence

import plotly.graph_objects as go

from kdcore.viz.style import COLORS, layout

PAPER_COLOR = "#BAB0AC"   # the paper's numbers, in grey beside ours


def errors_bars(ours: Mapping[str, int], paper: Mapping[str, int], labels: Mapping[str, str],
                n_test: int) -> go.Figure:
    """Grouped bars of test errors per model (the keys of `ours`, named by `labels`), paper and ours."""
    keys = list(ours)
    fig = go.Figure([
        go.Bar(name="paper", x=[labels[k] for k in keys], y=[paper[k] for k in keys], marker_color=PAPER_COLOR,
               hovertemplate="paper: %{x}<br>%{y} errors<extra></extra>"),
        go.Bar(name="ours", x=[labels[k] for k in keys], y=[ours[k] for k in keys],
               marker_color=COLORS["distilled"], hovertemplate="ours: %{x}<br>%{y} errors<extra></extra>"),
    ])
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="model")
    fig.update_yaxes(title_text=f"test errors (of {n_test:,})")
    return layout(fig, "Test errors: the paper's and ours")


def bias_errors(grid: Sequence[float], errors: Sequence[int], class_errors: Sequence[int], cls: int,
                bias: float, paper_errors: int, paper_bias: float, n_test: int) -> go.Figure:
    """Test errors (all, and on the omitted class) against the bias added to its logit."""
    fig = go.Figure([
        go.Scatter(x=list(grid), y=list(errors), name="all errors", line=dict(color=COLORS["distilled"]),
                   hovertemplate="b = %{x:.1f}<br>%{y} errors<extra></extra>"),
        go.Scatter(x=list(grid), y=list(class_errors), name=f"errors on {cls}s",
                   line=dict(color=COLORS["distilled"], dash="dash"),
                   hovertemplate="b = %{x:.1f}<br>%{y} errors on " + str(cls) + "s<extra></extra>"),
    ])
    fig.add_vline(x=bias, line=dict(color="#888", width=1))
    fig.add_hline(y=paper_errors, line=dict(color=PAPER_COLOR, dash="dot"),
                  annotation_text=f"paper: {paper_errors} errors at b = {paper_bias}")
    fig.update_xaxes(title_text=f"bias added to the {cls}'s logit (logit units)")
    fig.update_yaxes(title_text=f"test errors (of {n_test:,})", rangemode="tozero")
    return layout(fig, f"Recovering the {cls}s with a bias")
