"""Figures shared by several pages: training curves (stored and live), confusion matrices, 2-D
decision regions, and mean ± std bars over seeds.

Every figure has a title, axis titles with units, and hover text, so a chart projected in class or
pasted in a report says what it shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from kdcore.viz.style import COLORS, PALETTE, layout

if TYPE_CHECKING:
    import torch


def training_curves(histories: Mapping[str, Sequence[Mapping]], metric: str = "val_acc",
                    title: str | None = None, colors: Mapping[str, str] | None = None) -> go.Figure:
    """One line per model of `metric` per epoch.

    histories: name -> list of epoch records (dicts with 'epoch' and the metric),
    e.g. `History.to_records()`. metric: 'val_acc', 'train_loss', 'val_loss' or 'train_acc'.
    colors: name -> colour, so that a page's curves match its other charts (default: COLORS by name).
    """
    colors = {**COLORS, **(colors or {})}
    labels = {"val_acc": "validation accuracy (%)", "train_acc": "training accuracy (%)",
              "val_loss": "validation loss (nats)", "train_loss": "training loss"}
    pct = metric.endswith("acc")
    fig = go.Figure()
    for name, recs in histories.items():
        xs = [r["epoch"] for r in recs]
        ys = [100 * r[metric] if pct else r[metric] for r in recs]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=name,
                                 line=dict(color=colors.get(name, None)),
                                 hovertemplate=f"{name}<br>epoch %{{x}}<br>%{{y:.3f}}<extra></extra>"))
    fig.update_xaxes(title_text="epoch", rangemode="tozero")
    fig.update_yaxes(title_text=labels.get(metric, metric))
    return layout(fig, title or labels.get(metric, metric).capitalize() + " per epoch")


def live_curves(curves: Mapping[str, Sequence[float]], title: str = "Validation accuracy, live",
                y_title: str = "validation accuracy (%)", percent: bool = True, x_title: str = "epoch") -> go.Figure:
    """A light chart of a running job's series (one value per epoch per model), sent a few times
    a second while it trains: lines only, no per-point hover."""
    fig = go.Figure()
    for name, ys in curves.items():
        fig.add_trace(go.Scatter(x=list(range(1, len(ys) + 1)), y=[100 * y if percent else y for y in ys],
                                 mode="lines", name=name, line=dict(color=COLORS.get(name, None))))
    fig.update_xaxes(title_text=x_title, rangemode="tozero")
    fig.update_yaxes(title_text=y_title)
    return layout(fig, title, height=280)


def confusion_heatmap(counts, class_names: Sequence[str], title: str = "Confusion matrix",
                      normalize: bool = False) -> go.Figure:
    """Heatmap of counts[true, predicted] (or row-normalized %, with `normalize`)."""
    m = np.asarray(counts, dtype=float)
    if normalize:
        m = 100 * m / np.maximum(m.sum(1, keepdims=True), 1)
    text = [[(f"{v:.0f}" if not normalize else f"{v:.0f}%") if v else "" for v in row] for row in m]
    names = [str(c) for c in class_names]
    fig = go.Figure(go.Heatmap(
        z=m, x=names, y=names, colorscale="Blues", text=text, texttemplate="%{text}",
        hovertemplate="true %{y}<br>predicted %{x}<br>%{z:.0f}" + ("%" if normalize else " examples")
        + "<extra></extra>", colorbar=dict(title="%" if normalize else "count")))
    fig.update_xaxes(title_text="predicted class", type="category")
    fig.update_yaxes(title_text="true class", type="category", autorange="reversed")
    return layout(fig, title, height=380)


def decision_boundary(models: Mapping[str, "torch.nn.Module"], X, y, class_names: Sequence[str],
                      resolution: int = 150, title: str = "Decision regions") -> go.Figure:
    """For 2-D inputs: each model's predicted class over the plane, with the points on top.

    One panel per model; the regions are the argmax of the model's logits on a
    `resolution`² grid covering the points (with a margin).
    """
    import torch

    from kdcore.train import predict_logits

    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y)
    lo, hi = X.min(0), X.max(0)
    pad = 0.1 * (hi - lo)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution, dtype=np.float32)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution, dtype=np.float32)
    grid = torch.from_numpy(np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2))
    n = len(class_names)
    palette = PALETTE
    scale = [[i / max(n - 1, 1), palette[i % len(palette)]] for i in range(n)]
    fig = make_subplots(rows=1, cols=len(models), subplot_titles=list(models), horizontal_spacing=0.04)
    for col, (name, model) in enumerate(models.items(), start=1):
        pred = predict_logits(model, grid).argmax(1).numpy().reshape(resolution, resolution)
        fig.add_trace(go.Heatmap(x=xs, y=ys, z=pred, zmin=0, zmax=max(n - 1, 1), colorscale=scale, opacity=0.35,
                                 showscale=False, hoverinfo="skip"), row=1, col=col)
        for c in range(n):
            pts = X[y == c]
            fig.add_trace(go.Scatter(x=pts[:, 0], y=pts[:, 1], mode="markers", name=str(class_names[c]),
                                     legendgroup=str(c), showlegend=col == 1,
                                     marker=dict(size=5, color=palette[c % len(palette)],
                                                 line=dict(width=0.5, color="white")),
                                     hovertemplate=f"{class_names[c]}<br>(%{{x:.2f}}, %{{y:.2f}})<extra></extra>"),
                          row=1, col=col)
    fig.update_xaxes(title_text="x₁")
    fig.update_yaxes(title_text="x₂", col=1)
    return layout(fig, title, height=380)


def mean_std_bars(rows: Sequence[Mapping], title: str = "Test accuracy per loss, mean ± std over seeds",
                  x_title: str = "loss") -> go.Figure:
    """Bars of mean test accuracy with ± one standard deviation as error bars.

    rows: dicts with 'method', 'test accuracy mean (%)', 'std (points)', 'seeds'
    (e.g. `LossFamilyResult.table()`)."""
    names = [r["method"] for r in rows]
    means = [r["test accuracy mean (%)"] for r in rows]
    stds = [r["std (points)"] for r in rows]
    seeds = [r["seeds"] for r in rows]
    fig = go.Figure(go.Bar(
        x=names, y=means, error_y=dict(type="data", array=stds, visible=True),
        text=[f"{m:.1f} ± {s:.1f}" for m, s in zip(means, stds)], textposition="outside",
        marker_color=COLORS["distilled"], customdata=np.array([stds, seeds]).T if rows else None,
        hovertemplate="%{x}<br>%{y:.2f} % ± %{customdata[0]:.2f} (%{customdata[1]} seeds)<extra></extra>"))
    lo = max(0.0, min(means, default=0.0) - max(stds, default=0.0) - 10)
    fig.update_yaxes(title_text="test accuracy (%), mean ± std over seeds", range=[lo, 100.5 + (100 - lo) * 0.12])
    fig.update_xaxes(title_text=x_title)
    return layout(fig, title)
