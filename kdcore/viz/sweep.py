"""Plotly figures of a hyperparameter sweep: T × α heatmaps and accuracy against T per width.

They take the per-cell table of `SweepResult.cells()` (a pandas DataFrame with
width, T, alpha, *_mean, *_std columns, accuracies in %) and return figures;
no training, no streamlit.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from kdcore.viz.style import layout
from kdcore.sweep import COLUMN_LABELS

METRIC_LABELS = {k: COLUMN_LABELS[k] for k in ("test_acc", "agreement", "val_acc")}


def _fmt_t(t: float) -> str:
    return f"T={t:g}"


def sweep_heatmap(cells, width: int, metric: str = "test_acc", title: str | None = None,
                  best: tuple[float, float] | None = None, selected: tuple[float, float] | None = None,
                  temperatures=None, alphas=None) -> go.Figure:
    """Mean `metric` per (T, α) cell for one width; text shows mean ± spread over seeds.

    Cells not trained yet stay blank (so a live grid fills in). `best` (T, α) gets a
    black frame and a star, `selected` a dashed one. Columns are T, rows are α.
    """
    sub = cells[cells["width"] == width] if len(cells) else cells
    Ts = sorted(temperatures if temperatures is not None else set(sub["T"]))
    As = sorted(alphas if alphas is not None else set(sub["alpha"]))
    z = np.full((len(As), len(Ts)), np.nan)
    text = [["" for _ in Ts] for _ in As]
    mean_col, std_col = f"{metric}_mean", f"{metric}_std"
    for _, r in sub.iterrows():
        i, j = As.index(r["alpha"]), Ts.index(r["T"])
        z[i, j] = r[mean_col]
        spread = r.get(std_col, 0.0) if std_col in sub.columns else 0.0
        text[i][j] = f"{r[mean_col]:.1f}" + (f" ± {spread:.1f}" if r.get("seeds", 1) > 1 else "")
    xs, ys = [_fmt_t(t) for t in Ts], [f"α={a:g}" for a in As]
    label = METRIC_LABELS.get(metric, metric)
    fig = go.Figure(go.Heatmap(
        z=z, x=xs, y=ys, text=text, texttemplate="%{text}", colorscale="Viridis",
        colorbar=dict(title="%"), hoverongaps=False,
        hoverinfo="skip"))
    # clickable, invisible markers on the cells: Streamlit's on_select reports no points for heatmap
    # traces (streamlit/streamlit#8760), so a click is caught by this scatter instead
    cx, cy, ct = [], [], []
    for i, a in enumerate(As):
        for j, t in enumerate(Ts):
            if text[i][j]:
                cx.append(xs[j]), cy.append(ys[i]), ct.append(text[i][j])
    fig.add_trace(go.Scatter(
        x=cx, y=cy, text=ct, mode="markers", showlegend=False, name="cells",
        marker=dict(symbol="square", size=36, color="rgba(0,0,0,0)", opacity=0.01),
        hovertemplate="%{x}, %{y}<br>" + label + ": %{text}<extra>click for curves</extra>"))
    for cell, style in ((selected, dict(color="white", width=3, dash="dash")), (best, dict(color="black", width=4))):
        if cell is not None and cell[0] in Ts and cell[1] in As:
            j, i = Ts.index(cell[0]), As.index(cell[1])
            fig.add_shape(type="rect", x0=j - 0.5, x1=j + 0.5, y0=i - 0.5, y1=i + 0.5, line=style,
                          xref="x", yref="y")
    if best is not None and best[0] in Ts and best[1] in As:
        fig.add_annotation(x=_fmt_t(best[0]), y=f"α={best[1]:g}", text="★ best", showarrow=False,
                           yshift=14, font=dict(color="white", size=12))
    fig.update_xaxes(title_text="temperature T", type="category")
    fig.update_yaxes(title_text="α (weight of the soft targets)", type="category")
    return layout(fig, title or f"{label.capitalize()}, student width {width}", height=380)


def accuracy_vs_temperature(cells, alpha: float | None = None, metric: str = "test_acc") -> go.Figure:
    """One line per width: `metric` against T, at one α or (alpha=None) at the α with the best
    validation accuracy for each T; error bars are the spread (std) over seeds."""
    fig = go.Figure()
    for width in sorted(set(cells["width"])):
        sub = cells[cells["width"] == width]
        if alpha is not None:
            sub = sub[sub["alpha"] == alpha]
        else:
            sub = sub.sort_values("val_acc_mean", ascending=False).drop_duplicates("T")
        sub = sub.sort_values("T")
        if sub.empty:
            continue
        std = sub[f"{metric}_std"] if f"{metric}_std" in sub.columns else None
        fig.add_trace(go.Scatter(
            x=sub["T"], y=sub[f"{metric}_mean"], mode="lines+markers", name=f"width {width}",
            error_y=dict(type="data", array=std, visible=True) if std is not None else None,
            customdata=sub["alpha"],
            hovertemplate=f"width {width}<br>T=%{{x:g}}, α=%{{customdata:g}}<br>%{{y:.2f}} %<extra></extra>"))
    # a log axis, labelled at the grid's temperatures only (plotly's own log ticks read "9 1 2 … 10")
    temps = sorted(set(float(t) for t in cells["T"]))
    fig.update_xaxes(title_text="temperature T (log scale)", type="log", tickvals=temps,
                     ticktext=[f"{t:g}" for t in temps])
    fig.update_yaxes(title_text=METRIC_LABELS.get(metric, metric))
    which = f"α={alpha:g}" if alpha is not None else "best α per T (chosen on validation)"
    return layout(fig, f"{METRIC_LABELS.get(metric, metric).capitalize()} against T, {which}")
