"""Figures of the Temperature page: one example's input and soft targets, entropy against T, the
class-by-class matrix of mean soft targets, and the gradient story (kdcore.temperature computes them).

These are redrawn on every move of the page's T slider, so they are written as plain trace and
layout dicts (`style.figure`): no plotly property calls, no template copy.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from kdcore.temperature import GradientStory, entropy_and_top_at
from kdcore.viz.style import COLORS, figure, hline, vline


def input_image(image: np.ndarray, title: str) -> go.Figure:
    """A greyscale image (H, W), intensities 0..1, drawn as pixels with hover."""
    img = np.asarray(image, dtype=np.float64)
    data = [dict(type="heatmap", z=img, colorscale="Greys", zmin=0.0, zmax=1.0, showscale=False,
                 hovertemplate="row %{y}, column %{x}<br>intensity %{z:.2f}<extra></extra>")]
    layout = dict(xaxis=dict(visible=False, constrain="domain"),
                  yaxis=dict(visible=False, autorange="reversed", scaleanchor="x", constrain="domain"),
                  margin=dict(l=10, r=10, t=50, b=10))
    return figure(data, layout, title, height=300)


def input_point(points: np.ndarray, labels: np.ndarray, class_names: Sequence[str], point: np.ndarray,
                title: str) -> go.Figure:
    """2-D data: the test points coloured by class, and the chosen one as a star."""
    points = np.asarray(points, dtype=np.float64)
    data = []
    for c, name in enumerate(class_names):
        sel = labels == c
        data.append(dict(type="scatter", mode="markers", x=points[sel, 0], y=points[sel, 1], name=str(name),
                         marker=dict(size=5, opacity=0.35),
                         hovertemplate=f"{name}<br>x₁ %{{x:.2f}}, x₂ %{{y:.2f}}<extra></extra>"))
    data.append(dict(type="scatter", mode="markers", x=[float(point[0])], y=[float(point[1])],
                     name="this example", marker=dict(size=18, symbol="star", color="black",
                                                      line=dict(color="white", width=1)),
                     hovertemplate="this example<br>x₁ %{x:.2f}, x₂ %{y:.2f}<extra></extra>"))
    # the legend to the right: under a plot whose height follows its width (equal axis scales) it would
    # stand on the x-axis title in a narrow column
    layout = dict(xaxis=dict(title=dict(text="x₁ (input feature)")),
                  yaxis=dict(title=dict(text="x₂ (input feature)"), scaleanchor="x"),
                  legend=dict(orientation="v", x=1.02, xanchor="left", yref="paper", y=1.0, yanchor="top"))
    return figure(data, layout, title, height=340)


def probability_bars(class_names: Sequence[str], series: Sequence[tuple[str, np.ndarray, str]],
                     log_scale: bool, title: str) -> go.Figure:
    """Grouped bars of probability per class; series = (legend name, probabilities (C,), colour).

    On a log axis the tiny probabilities of the wrong classes (the dark knowledge) become visible.
    """
    x = [str(c) for c in class_names]
    data = [dict(type="bar", x=x, y=np.asarray(p, dtype=np.float64), name=name, marker=dict(color=color),
                 hovertemplate=f"{name}<br>class %{{x}}: p = %{{y:.3g}}<extra></extra>")
            for name, p, color in series]
    if log_scale:
        lo = min(float(np.min(np.asarray(p)[np.asarray(p) > 0], initial=1.0)) for _, p, _ in series)
        yaxis = dict(type="log", title=dict(text="probability (log scale)"),
                     range=[max(np.log10(lo) - 0.5, -30.0), 0.05], exponentformat="power")
    else:
        yaxis = dict(title=dict(text="probability"), range=[0, 1.02])
    # the legend goes below the classes (the style's): above the plot it printed over the title once a
    # third series (the distilled student) made it wrap
    layout = dict(barmode="group", xaxis=dict(title=dict(text="class"), type="category"), yaxis=yaxis)
    return figure(data, layout, title, height=380 + 22 * max(len(series) - 2, 0))


def entropy_curve(temperatures: np.ndarray, entropies: np.ndarray, top_probs: np.ndarray,
                  temperature: float, n_classes: int, title: str) -> go.Figure:
    """Entropy (left axis, nats) and top-class probability (right axis) against T, log T axis."""
    t = float(temperature)
    h_now, top_now = entropy_and_top_at(temperatures, entropies, top_probs, t)
    max_h = float(np.log(n_classes))
    data = [
        dict(type="scatter", mode="lines", x=temperatures, y=entropies, name="entropy H(p_T)",
             line=dict(color=COLORS["teacher"], width=2.5),
             hovertemplate="T = %{x:.2f}<br>H = %{y:.3f} nats<extra></extra>"),
        dict(type="scatter", mode="lines", x=temperatures, y=top_probs, name="top-class probability",
             yaxis="y2", line=dict(color=COLORS["distilled"], width=2, dash="dash"),
             hovertemplate="T = %{x:.2f}<br>top p = %{y:.3f}<extra></extra>"),
        dict(type="scatter", mode="markers", x=[t], y=[h_now], name=f"T = {t:g}", showlegend=False,
             marker=dict(size=12, color=COLORS["teacher"], line=dict(color="white", width=1.5)),
             hovertemplate=f"T = {t:g}<br>H = {h_now:.3f} nats<extra></extra>"),
        dict(type="scatter", mode="markers", x=[t], y=[top_now], yaxis="y2", showlegend=False,
             marker=dict(size=11, color=COLORS["distilled"], symbol="diamond"),
             hovertemplate=f"T = {t:g}<br>top p = {top_now:.3f}<extra></extra>"),
    ]
    layout = dict(
        xaxis=dict(type="log", title=dict(text="temperature T (log scale)")),
        yaxis=dict(title=dict(text="entropy (nats)"), range=[0, max_h * 1.05]),
        yaxis2=dict(title=dict(text="top-class probability"), overlaying="y", side="right", range=[0, 1.05],
                    showgrid=False),
        shapes=[vline(t), hline(max_h)],
        annotations=[dict(x=1, xref="paper", xanchor="right", y=max_h, yref="y", yanchor="bottom",
                          text=f"log {n_classes} = {max_h:.2f} nats (uniform)", showarrow=False,
                          font=dict(size=11, color="#666"))],
        margin=dict(l=60, r=60, t=50, b=50),
    )
    return figure(data, layout, title, height=360)


def similarity_heatmap(similarity: np.ndarray, class_names: Sequence[str], temperature: float,
                       log_scale: bool, title: str) -> go.Figure:
    """Class-by-class mean soft targets at T; with `log_scale` the colours follow log10 of p."""
    sim = np.asarray(similarity, dtype=np.float64)
    names = [str(c) for c in class_names]
    text = [[f"{100 * v:.1f}" if np.isfinite(v) else "" for v in row] for row in sim]
    if log_scale:
        z = np.log10(np.clip(sim, 1e-12, None))
        colorbar = dict(title=dict(text="log₁₀ p"))
    else:
        z = sim
        colorbar = dict(title=dict(text="p"))
    data = [dict(type="heatmap", z=z, x=names, y=names, customdata=sim, colorscale="Blues", text=text,
                 texttemplate="%{text}" if len(names) <= 12 else None, colorbar=colorbar,
                 hovertemplate="a true “%{y}” looks like “%{x}”<br>mean soft target "
                               f"at T={temperature:g}: " + "%{customdata:.4f}<extra></extra>")]
    layout = dict(xaxis=dict(title=dict(text="class in the soft target"), type="category"),
                  yaxis=dict(title=dict(text="true class of the example"), type="category",
                             autorange="reversed"))
    return figure(data, layout, title, height=420)


def gradient_ratio_figure(story: GradientStory, temperature: float, title: str) -> go.Figure:
    """‖soft‖/‖logit-matching‖ and their cosine against T, with 1 marked."""
    t = float(temperature)
    lt = np.log(story.temperatures)
    r_now = float(np.interp(np.log(t), lt, story.ratio))
    data = [
        dict(type="scatter", mode="lines", x=story.temperatures, y=story.ratio,
             name="‖(q−p)/T‖ ÷ ‖(z−v)/(N·T²)‖", line=dict(color=COLORS["teacher"], width=2.5),
             hovertemplate="T = %{x:.2f}<br>norm ratio %{y:.3f}<extra></extra>"),
        dict(type="scatter", mode="lines", x=story.temperatures, y=story.cosine,
             name="cosine between the two gradients", line=dict(color=COLORS["scratch"], width=2, dash="dash"),
             hovertemplate="T = %{x:.2f}<br>cosine %{y:.3f}<extra></extra>"),
        dict(type="scatter", mode="markers", x=[t], y=[r_now], showlegend=False,
             marker=dict(size=12, color=COLORS["teacher"], line=dict(color="white", width=1.5)),
             hovertemplate=f"T = {t:g}<br>norm ratio {r_now:.3f}<extra></extra>"),
    ]
    ymax = float(max(1.1, min(np.nanmax(story.ratio) * 1.05, 5.0)))
    layout = dict(xaxis=dict(type="log", title=dict(text="temperature T (log scale)")),
                  yaxis=dict(title=dict(text="ratio / cosine (1 = identical gradients)"), range=[0, ymax]),
                  shapes=[vline(t), hline(1.0, color="#444")])
    return figure(data, layout, title, height=360)


def gradient_magnitude_figure(story: GradientStory, temperature: float, hard_norm: float | None,
                              title: str) -> go.Figure:
    """Gradient size against T, without and with the T² factor (log-log), and the labels' for scale."""
    t = float(temperature)
    lt = np.log(story.temperatures)
    data = [
        dict(type="scatter", mode="lines", x=story.temperatures, y=story.soft_norm,
             name="without T²: ‖(q−p)/T‖", line=dict(color=COLORS["quantized"], width=2.5),
             hovertemplate="T = %{x:.2f}<br>‖gradient‖ %{y:.3g}<extra></extra>"),
        dict(type="scatter", mode="lines", x=story.temperatures, y=story.scaled_norm,
             name="with T²: T·‖q−p‖", line=dict(color=COLORS["teacher"], width=2.5),
             hovertemplate="T = %{x:.2f}<br>‖gradient‖ %{y:.3g}<extra></extra>"),
        dict(type="scatter", mode="markers", showlegend=False, x=[t, t],
             y=[float(np.exp(np.interp(np.log(t), lt, np.log(np.maximum(story.soft_norm, 1e-300))))),
                float(np.exp(np.interp(np.log(t), lt, np.log(np.maximum(story.scaled_norm, 1e-300)))))],
             marker=dict(size=11, color=[COLORS["quantized"], COLORS["teacher"]],
                         line=dict(color="white", width=1.5)),
             hovertemplate="T = %{x:g}<br>‖gradient‖ %{y:.3g}<extra></extra>"),
    ]
    shapes = [vline(t)]
    annotations = []
    if hard_norm is not None and hard_norm > 0:
        shapes.append(hline(hard_norm, color=COLORS["scratch"]))
        annotations.append(dict(x=0, xref="paper", xanchor="left", y=np.log10(hard_norm), yref="y",
                                yanchor="bottom", showarrow=False, font=dict(size=11, color=COLORS["scratch"]),
                                text=f"labels' gradient ‖softmax(z) − y‖ = {hard_norm:.3g}"))
    layout = dict(xaxis=dict(type="log", title=dict(text="temperature T (log scale)")),
                  yaxis=dict(type="log", title=dict(text="gradient norm w.r.t. student logits"),
                             exponentformat="power"),
                  shapes=shapes, annotations=annotations)
    return figure(data, layout, title, height=360)
