"""Plotly figures of the Sequences page: data in, `go.Figure` out (no streamlit, no training).

As in `kdcore.figures`: every figure has a title, axis titles with units, and hover text.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from kdcore.viz.style import COLORS, layout

# the students of `kdcore.seqdistill` and the models of `kdcore.seqgroups`, in the lab's colours
SEQ_COLORS = {
    "teacher": COLORS["teacher"],
    "distilled": COLORS["distilled"],
    "labels_only": COLORS["scratch"],
    "hard_labels": COLORS["hard labels"],
    "per-campaign models": COLORS["teacher"],
}
SEQ_NAMES = {"teacher": "teacher", "distilled": "distilled (soft targets)", "labels_only": "labels only",
             "hard_labels": "teacher's hard labels", "per-campaign models": "per-campaign models"}


def soft_targets_heatmap(probs: np.ndarray, inputs: Sequence[str], class_names: Sequence[str],
                         actual_next: Sequence[int] | None = None, temperature: float = 1.0,
                         model_name: str = "teacher", title: str | None = None) -> go.Figure:
    """softmax(z/T) of one model at each step of one sequence: steps across, next symbols down.

    probs: (steps, C), rows sum to 1; inputs: the input symbol at each step; actual_next: the
    class index that really came next at each step (marked with a ring).
    """
    p = 100 * np.asarray(probs, dtype=float)
    xs = [f"{t + 1} · {s}" for t, s in enumerate(inputs)]
    names = [str(c) for c in class_names]
    fig = go.Figure(go.Heatmap(
        z=p.T, x=xs, y=names, zmin=0, zmax=100, colorscale="Blues",
        colorbar=dict(title="probability (%)", thickness=14),
        hovertemplate="step %{x}<br>next symbol %{y}<br>probability %{z:.1f} %<extra></extra>"))
    if actual_next is not None:
        fig.add_trace(go.Scatter(
            x=xs, y=[names[int(c)] for c in actual_next], mode="markers", name="the symbol that came next",
            marker=dict(symbol="circle-open", size=14, color="#E45756", line=dict(width=2)), showlegend=False,
            hovertemplate="step %{x}<br>came next: %{y}<extra></extra>"))
    fig.update_xaxes(title_text="step · input symbol", type="category", tickangle=-45, automargin=True)
    fig.update_yaxes(title_text="next symbol", type="category", autorange="reversed")
    return layout(fig, title or f"Soft targets of the {model_name} at T = {temperature:g}, one test sequence",
                   height=400 + 14 * max(len(names) - 8, 0))


def accuracy_per_position_chart(curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
                                title: str = "Accuracy per position in the sequence (test set)") -> go.Figure:
    """One line per model: accuracy (%) at each step position, over the test sequences that reach it.

    curves: name -> (accuracy per position (nan where none), count of sequences per position).
    """
    fig = go.Figure()
    for name, (acc, count) in curves.items():
        acc, count = np.asarray(acc, dtype=float), np.asarray(count)
        keep = count > 0
        pos = np.arange(1, len(acc) + 1)[keep]
        fig.add_trace(go.Scatter(
            x=pos, y=100 * acc[keep], customdata=count[keep], mode="lines+markers", name=SEQ_NAMES.get(name, name),
            line=dict(color=SEQ_COLORS.get(name)), marker=dict(size=5),
            hovertemplate=f"{SEQ_NAMES.get(name, name)}<br>step %{{x}}<br>accuracy %{{y:.1f}} %"
                          "<br>%{customdata} sequences reach it<extra></extra>"))
    fig.update_xaxes(title_text="position in the sequence (step)", rangemode="tozero")
    fig.update_yaxes(title_text="accuracy (%)", range=[0, 102])
    return layout(fig, title, height=380)


def accuracy_per_group_chart(per_group: Mapping[str, Sequence[float]], group_names: Sequence[str],
                             title: str = "Accuracy per campaign (test sessions)") -> go.Figure:
    """Grouped bars: each model's accuracy (%) on each group's test sequences."""
    fig = go.Figure()
    for name, accs in per_group.items():
        ys = [100 * a for a in accs]
        fig.add_trace(go.Bar(x=list(group_names), y=ys, name=SEQ_NAMES.get(name, name),
                             marker_color=SEQ_COLORS.get(name),
                             text=[f"{y:.1f}" if np.isfinite(y) else "" for y in ys], textposition="outside",
                             hovertemplate=f"{SEQ_NAMES.get(name, name)}<br>%{{x}}: %{{y:.1f}} %<extra></extra>"))
    finite = [100 * a for accs in per_group.values() for a in accs if np.isfinite(a)]
    lo = max(0.0, min(finite) - 15) if finite else 0.0
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="campaign")
    fig.update_yaxes(title_text="accuracy (%)", range=[lo, 100 + (100 - lo) * 0.1])
    return layout(fig, title, height=380)


def model_size_bars(sizes: Mapping[str, int], title: str = "Size of what must be deployed") -> go.Figure:
    """Bars of model sizes in KB (float32 parameters), labelled."""
    from kdcore.models import format_bytes
    names = list(sizes)
    kb = [sizes[n] / 1024 for n in names]
    fig = go.Figure(go.Bar(x=names, y=kb, text=[format_bytes(sizes[n]) for n in names], textposition="outside",
                           marker_color=[SEQ_COLORS.get(n, COLORS["other"]) if n in SEQ_COLORS else
                                         (COLORS["distilled"] if "student" in n else COLORS["teacher"]) for n in names],
                           hovertemplate="%{x}: %{y:.1f} KB<extra></extra>"))
    fig.update_xaxes(title_text="model")
    fig.update_yaxes(title_text="size (KB, float32 parameters)", range=[0, 1.2 * max(kb + [1e-3])])
    return layout(fig, title, height=380)


PART_NAMES = {"all": "all steps", "predictable": "chunk steps (predictable)",
              "unpredictable": "start steps (a coin flip)", "long_lag": "end steps (long lag)"}
PART_COLORS = {"all": "#4C78A8", "predictable": "#54A24B", "unpredictable": "#9D755D", "long_lag": "#F58518"}


def chunker_share_chart(shares: Mapping[str, Sequence[float]],
                        title: str = "The chunker's share of the predictions over training") -> go.Figure:
    """One line per part of the sequence: the share (%) of its steps handed to the chunker, per epoch."""
    fig = go.Figure()
    for part, ys in shares.items():
        ys = [100 * float(y) for y in ys]
        fig.add_trace(go.Scatter(x=list(range(1, len(ys) + 1)), y=ys, mode="lines+markers", marker=dict(size=4),
                                 name=PART_NAMES.get(part, part), line=dict(color=PART_COLORS.get(part),
                                                                             width=3 if part == "all" else 2),
                                 hovertemplate=f"{PART_NAMES.get(part, part)}<br>epoch %{{x}}<br>"
                                               "chunker's share %{y:.1f} %<extra></extra>"))
    fig.update_xaxes(title_text="epoch", rangemode="tozero")
    fig.update_yaxes(title_text="steps handed to the chunker (%)", range=[-2, 102])
    return layout(fig, title, height=380)
