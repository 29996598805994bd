"""Plotly figure builders: data in, `go.Figure` out (no streamlit, no training).

Every figure has a title, axis titles with units, and hover text, so a chart
projected in class or pasted in a report says what it shows.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from kdcore.models import format_bytes

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


def _layout(fig: go.Figure, title: str, height: int = 360) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0.0, xanchor="left"), height=height,
                      margin=dict(l=60, r=20, t=50, b=50), legend=dict(orientation="h", y=-0.2),
                      template="plotly_white")
    return fig


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
    return _layout(fig, title or labels.get(metric, metric).capitalize() + " per epoch")


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
    return _layout(fig, title, height=280)


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
    return _layout(fig, title, height=380)


def accuracy_bars(results: Mapping[str, Mapping], title: str = "Test accuracy and size") -> go.Figure:
    """Bars of test accuracy per model, each labelled with its size."""
    names = list(results)
    acc = [100 * results[n]["accuracy"] for n in names]
    text = [f"{a:.1f}%<br>{format_bytes(results[n]['bytes'])}" for n, a in zip(names, acc)]
    fig = go.Figure(go.Bar(x=names, y=acc, text=text, textposition="outside",
                           marker_color=[COLORS.get(n, COLORS["other"]) for n in names],
                           hovertemplate="%{x}: %{y:.2f}%<extra></extra>"))
    lo = max(0.0, min(acc) - 10)
    fig.update_yaxes(title_text="test accuracy (%)", range=[lo, 100.5 + (100 - lo) * 0.12])
    fig.update_xaxes(title_text="model")
    return _layout(fig, title)


def image_grid(images: np.ndarray, captions: Sequence[str], cols: int = 8,
               title: str = "Examples") -> go.Figure:
    """Greyscale images (N, H, W) in a grid, with a caption above each."""
    n = len(images)
    rows = max(1, int(np.ceil(n / cols)))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(captions),
                        horizontal_spacing=0.01, vertical_spacing=0.08)
    for i, img in enumerate(images):
        fig.add_trace(go.Heatmap(z=np.asarray(img)[::-1], colorscale="Greys", reversescale=False,
                                 showscale=False, hoverinfo="skip"), row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title, height=140 * rows + 60)


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
    palette = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#FF9DA6", "#9D755D",
               "#BAB0AC", "#EECA3B"]
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
    return _layout(fig, title, height=380)


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
    return _layout(fig, title)


def low_rank_figure(rows: Sequence[Mapping], title: str = "Low rank: test accuracy against size") -> go.Figure:
    """Accuracy before and after fine-tuning against size, one point per rank setting.

    rows: dicts with 'setting', 'size (bytes)', 'accuracy before fine-tuning (%)',
    'accuracy after fine-tuning (%)' (`LowRankPoint.row()`)."""
    rows = sorted(rows, key=lambda r: r["size (bytes)"])
    fig = go.Figure()
    for col, name, color in (("accuracy before fine-tuning (%)", "before fine-tuning", COLORS["scratch"]),
                             ("accuracy after fine-tuning (%)", "after fine-tuning", COLORS["distilled"])):
        ys = [r[col] for r in rows]
        if all(np.isnan(y) for y in ys):
            continue
        fig.add_trace(go.Scatter(x=[r["size (bytes)"] for r in rows], y=ys, mode="lines+markers", name=name,
                                 line=dict(color=color), text=[r["setting"] for r in rows],
                                 hovertemplate="%{text}<br>%{x:,} bytes<br>%{y:.2f} %<extra></extra>"))
    fig.update_xaxes(title_text="size (bytes, float32)", type="log")
    fig.update_yaxes(title_text="test accuracy (%)")
    return _layout(fig, title)
