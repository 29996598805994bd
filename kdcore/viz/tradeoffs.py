"""Figures of the Trade-offs page: accuracy against size or latency with the Pareto frontier, the
size curve, accuracy against bits (post-training and quantization-aware), and low rank.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from kdcore.models import format_bytes
from kdcore.bitwidths import BitsRow, PANEL_BITS
from kdcore.sizecurve import SizePoint
from kdcore.tradeoffs import TradeoffPoint, pareto_front
from kdcore.viz.style import COLORS, layout


AXES = {
    "bytes": ("size (bytes, log scale)", "size"),
    "latency_b1_ms": ("CPU latency at batch 1 (ms per batch, log scale)", "latency, batch 1"),
    "latency_b256_ms": ("CPU latency at batch 256 (ms per batch, log scale)", "latency, batch 256"),
}


def frontier_figure(points: Sequence[TradeoffPoint], x: str = "bytes", title: str | None = None) -> go.Figure:
    """Test accuracy against size or latency (log axis), one colour per role, the Pareto frontier drawn."""
    axis_title, short = AXES[x]
    fig = go.Figure()
    usable = [p for p in points if not math.isnan(float(getattr(p, x)))]
    for role in dict.fromkeys(p.role for p in usable):
        ps = [p for p in usable if p.role == role]
        fig.add_trace(go.Scatter(
            x=[getattr(p, x) for p in ps], y=[100 * p.accuracy for p in ps], mode="markers", name=role,
            marker=dict(size=11, color=COLORS.get(role, COLORS["other"]), line=dict(width=1, color="white")),
            customdata=[[p.name, p.recipe, format_bytes(p.bytes), p.bits, p.encoding,
                         p.latency_b1_ms, p.latency_b256_ms] for p in ps],
            hovertemplate="<b>%{customdata[0]}</b><br>%{customdata[1]}<br>test accuracy %{y:.2f} %<br>"
                          "size %{customdata[2]} (%{customdata[3]}-bit, %{customdata[4]})<br>"
                          "latency %{customdata[5]:.3f} ms (batch 1), %{customdata[6]:.3f} ms (batch 256)"
                          "<extra>%{fullData.name}</extra>"))
    front = [usable[i] for i in pareto_front([getattr(p, x) for p in usable], [p.accuracy for p in usable])]
    if front:
        xs, ys = [], []
        for p in front:   # a staircase: accuracy holds until the next, larger model improves it
            if ys:
                xs.append(getattr(p, x))
                ys.append(ys[-1])
            xs.append(getattr(p, x))
            ys.append(100 * p.accuracy)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="Pareto frontier", hoverinfo="skip",
                                 line=dict(color="#333", dash="dash", width=1.5)))
    fig.update_xaxes(title_text=axis_title, type="log")
    fig.update_yaxes(title_text="test accuracy (%)")
    return layout(fig, title or f"Test accuracy against {short}", height=440)


def size_curve_figure(points: Sequence[SizePoint], teacher_metrics: dict | None = None) -> go.Figure:
    """Two curves, distilled and scratch: test accuracy against size (log axis), one point per width."""
    fig = go.Figure()
    pts = sorted(points, key=lambda p: p.bytes)
    for role, acc in (("distilled", lambda p: p.distilled_accuracy), ("scratch", lambda p: p.scratch_accuracy)):
        fig.add_trace(go.Scatter(
            x=[p.bytes for p in pts], y=[100 * acc(p) for p in pts], mode="lines+markers", name=role,
            line=dict(color=COLORS[role]), customdata=[[p.width, p.params, format_bytes(p.bytes)] for p in pts],
            hovertemplate=f"{role}, hidden width %{{customdata[0]}}<br>%{{customdata[1]:,}} parameters, "
                          "%{customdata[2]}<br>test accuracy %{y:.2f} %<extra></extra>"))
    if teacher_metrics:
        fig.add_trace(go.Scatter(
            x=[teacher_metrics["bytes"]], y=[100 * teacher_metrics["accuracy"]], mode="markers", name="teacher",
            marker=dict(color=COLORS["teacher"], size=12, symbol="star"),
            hovertemplate="teacher<br>%{x:,} bytes<br>test accuracy %{y:.2f} %<extra></extra>"))
    fig.update_xaxes(title_text="size (bytes, float32, log scale)", type="log")
    fig.update_yaxes(title_text="test accuracy (%)")
    return layout(fig, "Size curve: distilled vs trained from scratch", height=420)


def bits_figure(rows: Sequence[BitsRow], title: str = "Test accuracy against bits per weight") -> go.Figure:
    """Accuracy against bits (32, 8, 4, 2, 1) for PTQ and QAT."""
    fig = go.Figure()
    order = [str(b) for b in PANEL_BITS]
    for method, color in (("PTQ", COLORS["quantized"]), ("QAT", COLORS["distilled"])):
        rs = sorted([r for r in rows if r.method == method], key=lambda r: -r.bits)
        if not rs:
            continue
        fig.add_trace(go.Scatter(
            x=[str(r.bits) for r in rs], y=[100 * r.accuracy for r in rs], mode="lines+markers",
            name={"PTQ": "post-training (PTQ)", "QAT": "quantization-aware distillation (QAT)"}[method],
            line=dict(color=color), customdata=[format_bytes(r.bytes) for r in rs],
            hovertemplate=f"{method}, %{{x}} bits<br>test accuracy %{{y:.2f}} %<br>size %{{customdata}}"
                          "<extra></extra>"))
    fig.update_xaxes(title_text="bits per weight (32 = float)", type="category", categoryorder="array",
                     categoryarray=order)
    fig.update_yaxes(title_text="test accuracy (%)")
    return layout(fig, title, height=400)


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
    return layout(fig, title)
