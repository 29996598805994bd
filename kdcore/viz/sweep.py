"""Plotly figures of a hyperparameter sweep: T × α heatmaps and accuracy against T per width.

They take the per-cell table of `SweepResult.cells()` (a pandas DataFrame with
width, T, alpha, *_mean, *_std columns, accuracies in %) and return figures;
no training, no streamlit.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from kdcore.sweep import COLUMN_LABELS, CONTROL_LABELS
from kdcore.viz.style import COLORS, layout

METRIC_LABELS = {k: COLUMN_LABELS[k] for k in ("test_acc", "agreement", "val_acc")}


def _fmt_t(t: float) -> str:
    return f"T={t:g}"


def sweep_heatmap(cells, width: int, metric: str = "test_acc", title: str | None = None,
                  best: tuple[float, float] | None = None, selected: tuple[float, float] | None = None,
                  temperatures=None, alphas=None, controls=None) -> go.Figure:
    """Mean `metric` per (T, α) cell for one width; text shows mean ± spread over seeds.

    Cells not trained yet stay blank (so a live grid fills in). `best` (T, α) gets a
    black frame and a star, `selected` a dashed one. Columns are T, rows are α.
    controls: `SweepResult.control_cells()`; its rows for this width ("teacher's hard labels",
    "labels only (α=0)") go below the grid, the same value in every column (they do not depend on T).
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
    n_ctl = 0
    if controls is not None and len(controls) and mean_col in controls.columns:
        rows = controls[controls["width"] == width]
        for key in ("hard", "labels"):   # each inserted at the bottom: labels only ends lowest
            r = rows[rows["control"] == key]
            if r.empty:
                continue
            r = r.iloc[0]
            spread = r.get(std_col, 0.0) if r.get("seeds", 1) > 1 else None
            z = np.vstack([np.full((1, len(Ts)), r[mean_col]), z])
            text.insert(0, [f"{r[mean_col]:.1f}" + (f" ± {spread:.1f}" if spread is not None else "")] * len(Ts))
            ys.insert(0, CONTROL_LABELS[key])
            n_ctl += 1
    fig = go.Figure(go.Heatmap(
        z=z, x=xs, y=ys, text=text, texttemplate="%{text}", colorscale="Viridis",
        colorbar=dict(title="%"), hoverongaps=False,
        hoverinfo="skip"))
    # clickable, invisible markers on the cells: Streamlit's on_select reports no points for heatmap
    # traces (streamlit/streamlit#8760), so a click is caught by this scatter instead
    cx, cy, ct = [], [], []
    for i, a in enumerate(As):
        for j, t in enumerate(Ts):
            if text[n_ctl + i][j]:
                cx.append(xs[j]), cy.append(ys[n_ctl + i]), ct.append(text[n_ctl + i][j])
    fig.add_trace(go.Scatter(
        x=cx, y=cy, text=ct, mode="markers", showlegend=False, name="cells",
        marker=dict(symbol="square", size=36, color="rgba(0,0,0,0)", opacity=0.01),
        hovertemplate="%{x}, %{y}<br>" + label + ": %{text}<extra>click for curves</extra>"))
    for cell, style in ((selected, dict(color="white", width=3, dash="dash")), (best, dict(color="black", width=4))):
        if cell is not None and cell[0] in Ts and cell[1] in As:
            j, i = Ts.index(cell[0]), n_ctl + As.index(cell[1])
            fig.add_shape(type="rect", x0=j - 0.5, x1=j + 0.5, y0=i - 0.5, y1=i + 0.5, line=style,
                          xref="x", yref="y")
    if best is not None and best[0] in Ts and best[1] in As:
        fig.add_annotation(x=_fmt_t(best[0]), y=f"α={best[1]:g}", text="★ best (val.)", showarrow=False,
                           yshift=14, font=dict(color="white", size=12))
    fig.update_xaxes(title_text="temperature T", type="category")
    fig.update_yaxes(title_text="α (weight of the soft targets)", type="category")
    if n_ctl:   # a line between the grid and its controls
        fig.add_shape(type="line", xref="paper", yref="y", x0=0, x1=1, y0=n_ctl - 0.5, y1=n_ctl - 0.5,
                      line=dict(color="white", width=4))
    return layout(fig, title or f"{label.capitalize()}, student width {width}", height=380 + 40 * n_ctl)


def accuracy_vs_temperature(cells, alpha: float | None = None, metric: str = "test_acc",
                            controls=None) -> go.Figure:
    """One line per width: `metric` against T, at one α or (alpha=None) at the α with the best
    validation accuracy for each T; error bars are the spread (std) over seeds. With `controls`
    (`SweepResult.control_cells()`), each width's controls are flat dashed lines (they ignore T)."""
    fig = go.Figure()
    temps = sorted(set(float(t) for t in cells["T"]))
    if controls is not None and len(controls) and f"{metric}_mean" in controls.columns:
        for r in controls.itertuples():
            name = f"width {r.width}: {CONTROL_LABELS[r.control]}"
            y = getattr(r, f"{metric}_mean")
            fig.add_trace(go.Scatter(
                x=[temps[0], temps[-1]], y=[y, y], mode="lines", name=name,
                line=dict(dash="dash" if r.control == "hard" else "dot", width=1.5,
                          color=COLORS["hard labels"] if r.control == "hard" else COLORS["scratch"]),
                hovertemplate=f"{name}<br>%{{y:.2f}} % (any T)<extra></extra>"))
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
    fig.update_xaxes(title_text="temperature T (log scale)", type="log", tickvals=temps,
                     ticktext=[f"{t:g}" for t in temps])
    fig.update_yaxes(title_text=METRIC_LABELS.get(metric, metric))
    which = f"at α = {alpha:g}" if alpha is not None else "at the best α per T (chosen on validation)"
    # two lines: in a half-width column one long title was clipped
    fig = layout(fig, f"{METRIC_LABELS.get(metric, metric).capitalize()} against T<br><sup>{which}</sup>",
                 height=400)
    fig.update_layout(margin=dict(t=95), title=dict(y=0.97, yanchor="top"))
    return fig
