"""Figures of the Transfer sets page: students against the labelled share, recovering an omitted class
with a bias, and soft targets vs logit matching vs labels.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from kdcore.transfer import LOSSES, FractionPoint, LossComparison, OmittedResult, bias_curve
from kdcore.viz.style import COLORS, layout


# one colour per loss, in the bars and in the curves alike
LOSS_COLORS = {"soft": COLORS["distilled"], "logits": COLORS["quantized"], "hard": COLORS["scratch"]}


def fraction_figure(points: Sequence[FractionPoint], title: str | None = None) -> go.Figure:
    """Test accuracy of the students against the labelled fraction (log axis): distilled, labels only and
    (when the points have it) the teacher's-hard-labels control."""
    fig = go.Figure()
    xs = [100 * p.fraction for p in points]
    roles = [("distilled", "soft targets on all + labels"), ("scratch", "labels only")]
    if points and all(p.hard is not None for p in points):
        roles.append(("hard", "teacher's hard labels on all (control)"))
    for role, label in roles:
        ys = [100 * getattr(p, role)["accuracy"] for p in points]
        hover = [f"{label}<br>{100 * p.fraction:g} % labelled ({p.n_labelled} labels)<br>"
                 f"test accuracy {y:.2f} %" + (" (stopped early)" if p.stopped else "")
                 for p, y in zip(points, ys)]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=label,
                                 line=dict(color=COLORS["hard labels" if role == "hard" else role],
                                           dash="dash" if role == "hard" else None),
                                 hovertext=hover, hoverinfo="text"))
    fig.update_xaxes(title_text="labelled share of the transfer set (%, log scale)", type="log")
    fig.update_yaxes(title_text="test accuracy (%)")
    return layout(fig, title or "Students against the share of labelled examples")


def bias_figure(result: OmittedResult, bias: float, lo: float, hi: float, n: int = 121) -> go.Figure:
    """Test accuracy overall and on the omitted class against the bias added to its logit."""
    biases = np.linspace(lo, hi, n)
    fig = go.Figure()
    for which, logits, dash in [("distilled", result.distilled_test_logits, "solid"),
                                ("scratch", result.scratch_test_logits, "dot")]:
        c = bias_curve(logits, result.y_test, result.omitted, biases)
        for name, ys, width in [(f"{which}: overall", c.accuracy, 3),
                                (f"{which}: class {result.class_name}", c.class_accuracy, 1.5)]:
            fig.add_trace(go.Scatter(x=biases, y=100 * ys, mode="lines", name=name,
                                     line=dict(color=COLORS[which], dash=dash if "overall" in name else "dash",
                                               width=width),
                                     hovertemplate=name + "<br>b = %{x:.2f}<br>%{y:.2f} %<extra></extra>"))
    fig.add_vline(x=bias, line=dict(color="#888", width=1), annotation_text=f"b = {bias:g}")
    fig.update_xaxes(title_text=f"bias added to the logit of class {result.class_name} (logit units)")
    fig.update_yaxes(title_text="test accuracy (%)", range=[-2, 102])
    return layout(fig, f"Recovering class {result.class_name} with a bias on its logit")


def loss_bars(result: LossComparison, teacher_accuracy: float | None = None) -> go.Figure:
    """Test accuracy of the three students (and the teacher as a line)."""
    names = list(result.metrics)
    acc = [100 * result.metrics[k]["accuracy"] for k in names]
    colors = LOSS_COLORS
    fig = go.Figure(go.Bar(
        x=[LOSSES[k] for k in names], y=acc, text=[f"{a:.1f}%" for a in acc], textposition="outside",
        marker_color=[colors[k] for k in names],
        customdata=[100 * result.metrics[k].get("agreement", float("nan")) for k in names],
        hovertemplate="%{x}<br>test accuracy %{y:.2f} %<br>agrees with the teacher on %{customdata:.1f} %"
                      "<extra></extra>"))
    if teacher_accuracy is not None:
        fig.add_hline(y=100 * teacher_accuracy, line=dict(color=COLORS["teacher"], dash="dash"),
                      annotation_text=f"teacher {100 * teacher_accuracy:.1f} %")
    # from 0: an axis starting near the lowest bar (it was ~73 %) makes small gaps look huge
    fig.update_yaxes(title_text="test accuracy (%)", range=[0, 108])
    fig.update_xaxes(title_text="student's training loss")
    return layout(fig, "Soft targets vs logit matching vs labels alone")
