"""Plotly figures for the Prune page: saliency histograms, OBD vs magnitude, curves, sensitivity.

Data in (tensors, lists of dicts from `kdcore.pruning`), `go.Figure` out; no
streamlit, no training. Each figure has a title, axis titles with units and hover.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from kdcore.viz.style import COLORS, layout

CRITERION_COLORS = {"OBD": COLORS["pruned"], "magnitude": COLORS["teacher"], "random": "#9D9D9D"}


def _np(t) -> np.ndarray:
    return t.detach().double().flatten().numpy() if isinstance(t, torch.Tensor) else np.asarray(t, float).ravel()


def saliency_histogram(values: Mapping[str, torch.Tensor], log_x: bool = True, bins: int = 60,
                       title: str = "OBD saliency per layer", x_title: str = "saliency ½·h·θ² (nats)") -> go.Figure:
    """One step-line histogram per layer; on a log axis only positive values can be drawn (the others are counted)."""
    fig = go.Figure()
    arrays = {n: _np(v) for n, v in values.items()}
    pos = np.concatenate([a[a > 0] for a in arrays.values()] or [np.empty(0)])
    if log_x and len(pos):
        lo, hi = np.log10(pos.min()), np.log10(pos.max())
        edges = np.logspace(lo, hi + 1e-9, bins + 1)
    else:
        allv = np.concatenate(list(arrays.values()) or [np.zeros(1)])
        edges = np.linspace(allv.min(), allv.max() + 1e-12, bins + 1)
    for n, a in arrays.items():
        shown = a[a > 0] if log_x else a
        counts, _ = np.histogram(shown, edges)
        hidden = len(a) - len(shown)
        label = f"{n} ({hidden} ≤ 0 not shown)" if hidden else n
        xs = np.repeat(edges, 2)[1:-1]
        ys = np.repeat(counts, 2)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=label, fill="tozeroy", opacity=0.5,
                                 hovertemplate=f"{n}<br>%{{x:.3g}}<br>%{{y}} weights<extra></extra>"))
    fig.update_xaxes(title_text=x_title + (" (log scale)" if log_x else ""), type="log" if log_x else "linear")
    fig.update_yaxes(title_text="weights per bin")
    return layout(fig, title)


def obd_vs_magnitude(obd: Mapping[str, torch.Tensor], magnitude: Mapping[str, torch.Tensor],
                     keep_obd: Mapping[str, torch.Tensor], keep_mag: Mapping[str, torch.Tensor],
                     max_points: int = 4000, seed: int = 0, title: str = "OBD saliency against magnitude") -> go.Figure:
    """Scatter of |θ| against saliency, coloured by what each criterion keeps at the chosen sparsity."""
    rng = np.random.default_rng(seed)
    s = np.concatenate([_np(obd[n]) for n in obd])
    m = np.concatenate([_np(magnitude[n]) for n in obd])
    ko = np.concatenate([_np(keep_obd[n]) > 0 for n in obd])
    km = np.concatenate([_np(keep_mag[n]) > 0 for n in obd])
    layer = np.concatenate([[n] * obd[n].numel() for n in obd])
    idx = np.arange(len(s)) if len(s) <= max_points else rng.choice(len(s), max_points, replace=False)
    groups = [("both keep", ko & km, "#BBBBBB"), ("both prune", ~ko & ~km, "#444444"),
              ("only OBD prunes", ~ko & km, CRITERION_COLORS["OBD"]),
              ("only magnitude prunes", ko & ~km, CRITERION_COLORS["magnitude"])]
    fig = go.Figure()
    floor = max(float(s[s > 0].min()) if (s > 0).any() else 1e-12, 1e-30)
    for name, sel, color in groups:
        i = idx[sel[idx]]
        fig.add_trace(go.Scattergl(
            x=m[i], y=np.maximum(s[i], floor), mode="markers", name=f"{name} ({int(sel.sum())})",
            marker=dict(color=color, size=4, opacity=0.6), customdata=np.stack([layer[i], s[i]], 1),
            hovertemplate="%{customdata[0]}<br>|θ| %{x:.3g}<br>saliency %{customdata[1]:.3g}<extra></extra>"))
    fig.update_xaxes(title_text="magnitude |θ| (log scale)", type="log")
    fig.update_yaxes(title_text="saliency ½·h·θ² (nats, log scale)", type="log")
    note = f" (a sample of {len(idx)} of {len(s)})" if len(idx) < len(s) else ""
    return layout(fig, title + note, height=420)


def fraction_removed(fractions: Mapping[str, Mapping[str, float]], sparsity: float,
                     title: str | None = None) -> go.Figure:
    """Grouped bars: the fraction of each layer each criterion removes at one global sparsity."""
    fig = go.Figure()
    for crit, fr in fractions.items():
        fig.add_trace(go.Bar(x=list(fr), y=[100 * v for v in fr.values()], name=crit,
                             marker_color=CRITERION_COLORS.get(crit),
                             hovertemplate=f"{crit}<br>%{{x}}: %{{y:.1f}} % removed<extra></extra>"))
    fig.update_xaxes(title_text="layer (weight tensor)")
    fig.update_yaxes(title_text="weights removed (%)", range=[0, 100])
    return layout(fig, title or f"Fraction of each layer removed at {100 * sparsity:g} % sparsity")


def accuracy_curves(points: Sequence[Mapping], base_accuracy: float,
                    title: str = "Test accuracy against sparsity") -> go.Figure:
    """Lines per criterion: dashed after pruning alone, solid after retraining with masks kept."""
    fig = go.Figure()
    crits = list(dict.fromkeys(p["criterion"] for p in points))
    for crit in crits:
        pts = sorted((p for p in points if p["criterion"] == crit), key=lambda p: p["sparsity"])
        xs = [100 * p["sparsity"] for p in pts]
        color = CRITERION_COLORS.get(crit)
        fig.add_trace(go.Scatter(x=xs, y=[100 * p["accuracy"] for p in pts], mode="lines+markers",
                                 name=f"{crit}, pruned only", line=dict(color=color, dash="dash"),
                                 hovertemplate=f"{crit}, no retraining<br>%{{x:.0f}} % sparse: %{{y:.2f}} %<extra></extra>"))
        re = [p for p in pts if p.get("retrained_accuracy") == p.get("retrained_accuracy")
              and p.get("retrained_accuracy") is not None]
        if re:
            fig.add_trace(go.Scatter(x=[100 * p["sparsity"] for p in re], y=[100 * p["retrained_accuracy"] for p in re],
                                     mode="lines+markers", name=f"{crit}, retrained", line=dict(color=color),
                                     hovertemplate=f"{crit}, retrained<br>%{{x:.0f}} % sparse: %{{y:.2f}} %<extra></extra>"))
    fig.add_hline(y=100 * base_accuracy, line=dict(color="black", dash="dot", width=1),
                  annotation_text=f"unpruned {100 * base_accuracy:.1f} %", annotation_position="bottom left")
    fig.update_xaxes(title_text="sparsity of the prunable weights (%)")
    fig.update_yaxes(title_text="test accuracy (%)")
    return layout(fig, title, height=400)


def predicted_vs_actual(points: Sequence[Mapping], title: str = "OBD: predicted against actual loss increase") -> go.Figure:
    """Scatter of Σ saliencies of the deleted weights against the measured increase, with the diagonal."""
    pts = [p for p in points if p.get("predicted_increase") == p.get("predicted_increase")
           and p.get("predicted_increase") is not None]
    xs = [p["predicted_increase"] for p in pts]
    ys = [p["actual_increase"] for p in pts]
    fig = go.Figure(go.Scatter(
        x=xs, y=ys, mode="markers+text", text=[f"{100 * p['sparsity']:g} %" for p in pts], textposition="top center",
        marker=dict(color=CRITERION_COLORS["OBD"], size=9), name="one-shot OBD pruning",
        hovertemplate="predicted %{x:.4g} nats<br>actual %{y:.4g} nats<extra>%{text} sparse</extra>"))
    if pts:
        lo = min(0.0, min(xs + ys))
        hi = max(xs + ys) * 1.05 or 1.0
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="predicted = actual",
                                 line=dict(color="black", dash="dot", width=1), hoverinfo="skip"))
    fig.update_xaxes(title_text="predicted increase Σ ½·h·θ² (nats)")
    fig.update_yaxes(title_text="actual increase of the training loss (nats)")
    return layout(fig, title, height=400)


def sensitivity(rows: Sequence[Mapping], base_accuracy: float,
                title: str = "Per-layer sensitivity: only that layer pruned") -> go.Figure:
    """Accuracy against the sparsity of a single layer, one line per layer."""
    fig = go.Figure()
    for layer in dict.fromkeys(r["layer"] for r in rows):
        rs = [r for r in rows if r["layer"] == layer]
        fig.add_trace(go.Scatter(x=[100 * r["sparsity"] for r in rs], y=[100 * r["accuracy"] for r in rs],
                                 mode="lines+markers", name=layer,
                                 hovertemplate=f"{layer}<br>%{{x:.0f}} % of it pruned: %{{y:.2f}} %<extra></extra>"))
    fig.add_hline(y=100 * base_accuracy, line=dict(color="black", dash="dot", width=1))
    fig.update_xaxes(title_text="sparsity of that layer alone (%)")
    fig.update_yaxes(title_text="test accuracy (%)")
    return layout(fig, title)


def iterative_progress(steps: Sequence[Mapping], title: str = "Iterative pruning: validation accuracy") -> go.Figure:
    """Validation accuracy per round, right after pruning and after retraining, against sparsity."""
    xs = [100 * s["sparsity"] for s in steps]
    fig = go.Figure([
        go.Scatter(x=xs, y=[100 * s["accuracy_pruned"] for s in steps], mode="lines+markers", name="after pruning",
                   line=dict(color=CRITERION_COLORS["magnitude"], dash="dash"),
                   hovertemplate="%{x:.1f} % sparse<br>%{y:.2f} % right after pruning<extra></extra>"),
        go.Scatter(x=xs, y=[100 * s["accuracy"] for s in steps], mode="lines+markers", name="after retraining",
                   line=dict(color=CRITERION_COLORS["OBD"]),
                   hovertemplate="%{x:.1f} % sparse<br>%{y:.2f} % after retraining<extra></extra>"),
    ])
    fig.update_xaxes(title_text="sparsity of the prunable weights (%)")
    fig.update_yaxes(title_text="validation accuracy (%)")
    return layout(fig, title)
