"""Temperature lab: soft targets, their entropy, dark knowledge and the gradient story.

Everything here works on logits that are already computed (a teacher's test
logits, `TrainedTeacher.logits["test"]`), so moving the temperature only costs
softmaxes:

- `soften`, `entropy`, `entropy_and_top`: p_T = softmax(z / T) and its entropy
  H = −Σ p log p (nats), for one example over a grid of temperatures.
- `TeacherOutputs`: the T-independent view of a teacher's test logits, made
  once per teacher (entropies at T = 1, "most confusing" ordering, per-class
  averaging matrix); `.similarity(T)` is the class-by-class matrix of mean soft
  targets at T (what the teacher thinks a "2" resembles).
- `soft_target_gradient`, `logit_matching_gradient`, `gradient_story`: Hinton,
  Vinyals & Dean 2015 ("Distilling the Knowledge in a Neural Network",
  arXiv:1503.02531, section 2.1): ∂C/∂z_i = (q_i − p_i)/T ≈ (z_i − v_i)/(N·T²)
  at high T for zero-mean logits, and why the soft loss is multiplied by T².

The figure builders at the bottom return `FigureSpec`s: plotly figures made
from plain dicts without plotly's (slow, 5–20 ms per figure) validation, so a
rerun of the page stays fast; the tests validate every one with `.figure()`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from kdcore.figures import COLORS

# the temperatures the page's slider offers (denser where the distribution changes fastest)
TEMPERATURES = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0,
                25.0, 30.0, 40.0, 50.0)
# the temperatures of the curves against T (log-spaced from 0.5 to 50)
CURVE_TEMPERATURES = np.geomspace(0.5, 50.0, 121)


# ---------------------------------------------------------------------------------------------
# computations
# ---------------------------------------------------------------------------------------------

def soften(logits, temperature) -> np.ndarray:
    """Soft targets p_T = softmax(z / T) along the last axis (Hinton et al. 2015, eq. 1), float64.

    `temperature` may be a float or an array broadcastable against `logits[..., :1]`
    (e.g. a column of temperatures for one example's logits repeated per row).
    """
    z = np.asarray(logits, dtype=np.float64) / np.asarray(temperature, dtype=np.float64)  # a new array
    z -= z.max(axis=-1, keepdims=True)             # stable: the largest exponent is 0
    np.exp(z, out=z)                               # in place: one (N, C) array in all
    z /= z.sum(axis=-1, keepdims=True)
    return z


def entropy(p, axis: int = -1) -> np.ndarray:
    """Shannon entropy H = −Σ p log p in nats (0·log 0 = 0). Between 0 (one-hot) and log C (uniform)."""
    p = np.asarray(p, dtype=np.float64)
    logp = np.log(np.where(p > 0, p, 1.0))
    return -(p * logp).sum(axis=axis)


def entropy_and_top(logits_row, temperatures=CURVE_TEMPERATURES) -> tuple[np.ndarray, np.ndarray]:
    """For one example's logits (C,): entropy (nats) and top-class probability at each temperature."""
    temps = np.asarray(temperatures, dtype=np.float64).reshape(-1, 1)
    p = soften(np.asarray(logits_row, dtype=np.float64)[None, :], temps)   # (len(temps), C)
    return entropy(p), p.max(axis=-1)


def most_similar(similarity: np.ndarray, k: int = 3) -> list[list[tuple[int, float]]]:
    """For each class (row), the k other classes with the largest mean soft target, largest first."""
    sim = np.asarray(similarity, dtype=np.float64)
    out = []
    for c, row in enumerate(sim):
        others = [j for j in np.argsort(-row, kind="stable") if j != c and np.isfinite(row[j])]
        out.append([(int(j), float(row[j])) for j in others[:k]])
    return out


@dataclass(frozen=True, eq=False)
class TeacherOutputs:
    """A teacher's test logits with everything about them that does not depend on T.

    Made once per teacher (`from_logits`); shared and read-only. The
    T-dependent views (`soft_targets`, `similarity`) are one softmax each.
    """
    logits: np.ndarray            # (N, C) float64, the teacher's logits at T = 1
    labels: np.ndarray            # (N,) true classes
    predictions: np.ndarray       # (N,) the teacher's argmax
    entropy_t1: np.ndarray        # (N,) entropy of softmax(z) in nats
    confusing_order: np.ndarray   # example indices by decreasing entropy at T = 1 ("most confusing" first)
    confusion_rank: np.ndarray    # (N,) 1-based rank of each example in that order
    class_indices: tuple          # per class, the indices of its test examples
    by_class_logits: np.ndarray   # (N, C) the logits sorted by true class, for per-class sums in one pass
    class_starts: np.ndarray      # first row of each present class in `by_class_logits`
    present: np.ndarray           # classes that have test examples (the others get NaN rows)
    class_counts: np.ndarray      # (C,) test examples per class

    @classmethod
    def from_logits(cls, logits, labels, n_classes: int | None = None) -> "TeacherOutputs":
        z = np.asarray(logits, dtype=np.float64)
        y = np.asarray(labels, dtype=np.int64)
        if z.ndim != 2 or len(z) != len(y):
            raise ValueError("logits must be (N, C) with one label per row")
        n_classes = int(n_classes or z.shape[1])
        ent = entropy(soften(z, 1.0))
        order = np.argsort(-ent, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(1, len(order) + 1)
        by_class = np.argsort(y, kind="stable")
        counts = np.bincount(y, minlength=n_classes)
        present = np.flatnonzero(counts)
        starts = np.searchsorted(y[by_class], present)
        return cls(z, y, z.argmax(1), ent, order, rank, tuple(np.flatnonzero(y == c) for c in range(n_classes)),
                   np.ascontiguousarray(z[by_class]), starts, present, counts)

    @property
    def n_classes(self) -> int:
        return self.logits.shape[1]

    def soft_targets(self, temperature: float) -> np.ndarray:
        """(N, C) soft targets of every test example at T."""
        return soften(self.logits, temperature)

    def similarity(self, temperature: float) -> np.ndarray:
        """(C, C) mean soft target at T of the examples of each true class; each row sums to 1.

        Row "2", column "3": how much, on average, the teacher thinks a "2" looks like a "3".
        One softmax of the class-sorted logits and one segmented sum (no BLAS call: a
        matrix product here is slow when BLAS threads fight over a busy machine).
        """
        sums = np.add.reduceat(soften(self.by_class_logits, temperature), self.class_starts, axis=0)
        sim = np.full((self.n_classes, self.n_classes), np.nan)
        sim[self.present] = sums / self.class_counts[self.present, None]
        return sim


_OUTPUTS: "OrderedDict[str, TeacherOutputs]" = OrderedDict()
_OUTPUTS_LOCK = threading.Lock()


def teacher_outputs(teacher, labels, n_classes: int, keep: int = 8) -> TeacherOutputs:
    """`TeacherOutputs` of a teacher's test logits, made once per teacher key and shared (read-only).

    A process-wide memo of the last `keep` teachers rather than `st.cache_resource`: a cached
    function defined in a page script is re-keyed (its source read back) on every rerun, which
    costs more than everything this page computes when T moves.
    """
    with _OUTPUTS_LOCK:
        hit = _OUTPUTS.get(teacher.key)
        if hit is not None:
            _OUTPUTS.move_to_end(teacher.key)
            return hit
    made = TeacherOutputs.from_logits(teacher.logits["test"].numpy(), np.asarray(labels), n_classes)
    with _OUTPUTS_LOCK:
        _OUTPUTS[teacher.key] = made
        while len(_OUTPUTS) > keep:
            _OUTPUTS.popitem(last=False)
    return made


def _norm(x: np.ndarray) -> float:
    """Euclidean norm of a vector without a BLAS call (BLAS threads crawl on a busy machine)."""
    return float(np.sqrt((x * x).sum()))


def soft_target_gradient(student_logits, teacher_logits, temperature) -> np.ndarray:
    """∂C/∂z_i = (q_i − p_i) / T, with p = softmax(v/T), q = softmax(z/T), C = −Σ p log q.

    C is the cross-entropy with the soft targets; KL(p ‖ q) differs from it by the
    (student-independent) entropy of p, so this is also ∂KL(p‖q)/∂z (Hinton et al.
    2015, eq. 2). z = student logits, v = teacher logits, along the last axis.
    """
    T = np.asarray(temperature, dtype=np.float64)
    return (soften(student_logits, T) - soften(teacher_logits, T)) / T


def logit_matching_gradient(student_logits, teacher_logits, temperature) -> np.ndarray:
    """(z_i − v_i) / (N · T²), N = number of classes, with z and v centred to zero mean.

    The high-temperature limit of the soft-target gradient (Hinton et al. 2015,
    eq. 3): softmax ignores a constant added to all logits, so centring changes
    neither p nor q, and it is the condition under which the limit holds.
    """
    z = np.asarray(student_logits, dtype=np.float64)
    v = np.asarray(teacher_logits, dtype=np.float64)
    z = z - z.mean(-1, keepdims=True)
    v = v - v.mean(-1, keepdims=True)
    T = np.asarray(temperature, dtype=np.float64)
    return (z - v) / (z.shape[-1] * T * T)


@dataclass(frozen=True)
class GradientStory:
    """Soft-target vs logit-matching gradients of one example, over a grid of temperatures."""
    temperatures: np.ndarray   # (K,)
    soft: np.ndarray           # (K, C) (q − p)/T
    matching: np.ndarray       # (K, C) (z − v)/(N·T²), centred logits
    ratio: np.ndarray          # (K,) ‖soft‖ / ‖matching‖: → 1 as T grows
    cosine: np.ndarray         # (K,) cosine between the two gradient vectors: → 1 as T grows
    soft_norm: np.ndarray      # (K,) ‖(q − p)/T‖: the gradient of the unscaled soft loss, ~1/T² at high T
    scaled_norm: np.ndarray    # (K,) T²·‖(q − p)/T‖ = T·‖q − p‖: the gradient of the T²-scaled loss, → ‖z−v‖/N


def gradient_story(student_logits, teacher_logits, temperatures=CURVE_TEMPERATURES) -> GradientStory:
    """Both gradients of one example (student logits z, teacher logits v, shape (C,)) at each T."""
    temps = np.asarray(temperatures, dtype=np.float64).reshape(-1, 1)
    z = np.asarray(student_logits, dtype=np.float64)[None, :]
    v = np.asarray(teacher_logits, dtype=np.float64)[None, :]
    soft = soft_target_gradient(z, v, temps)
    match = logit_matching_gradient(z, v, temps)
    soft_norm = np.sqrt((soft * soft).sum(1))
    match_norm = np.sqrt((match * match).sum(1))
    tiny = np.finfo(np.float64).tiny
    ratio = soft_norm / np.maximum(match_norm, tiny)
    cosine = (soft * match).sum(1) / np.maximum(soft_norm * match_norm, tiny)
    t = temps[:, 0]
    return GradientStory(t, soft, match, ratio, cosine, soft_norm, soft_norm * t * t)


def gradient_agreement(student_logits, teacher_logits, temperature) -> tuple[float, float]:
    """(‖soft‖ / ‖logit-matching‖, cosine between them) at one temperature, for one example."""
    soft = soft_target_gradient(student_logits, teacher_logits, temperature)
    match = logit_matching_gradient(student_logits, teacher_logits, temperature)
    ns, nm = _norm(soft), _norm(match)
    tiny = np.finfo(np.float64).tiny
    return ns / max(nm, tiny), float((soft * match).sum()) / max(ns * nm, tiny)


def hard_gradient_norm(student_logits, label: int) -> float:
    """‖softmax(z) − onehot(y)‖: the size of the labels' cross-entropy gradient, for scale."""
    q = soften(student_logits, 1.0)
    q[..., int(label)] -= 1.0
    return _norm(q)


# ---------------------------------------------------------------------------------------------
# figures (plain dicts wrapped without validation: fast; validated in the tests)
# ---------------------------------------------------------------------------------------------

# plotly_white's look in a few keys: the full template is ~7 kB that plotly deep-copies and walks
# on every serialization (several ms per figure); this keeps a rerun fast
_TEMPLATE = {"layout": {
    "paper_bgcolor": "white", "plot_bgcolor": "white", "font": {"color": "#2a3f5f"},
    "colorway": ["#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692", "#B6E880"],
    "hovermode": "closest", "hoverlabel": {"align": "left"},
    "xaxis": {"gridcolor": "#EBF0F8", "linecolor": "#EBF0F8", "zerolinecolor": "#EBF0F8", "automargin": True,
              "ticks": "", "zerolinewidth": 2},
    "yaxis": {"gridcolor": "#EBF0F8", "linecolor": "#EBF0F8", "zerolinecolor": "#EBF0F8", "automargin": True,
              "ticks": "", "zerolinewidth": 2},
}}


class FigureSpec(go.Figure):
    """A plotly figure handed to `st.plotly_chart` as a ready-made dict.

    Building a `go.Figure` validates every property (~5–20 ms a figure) and
    `to_dict` deep-copies it again; streamlit only calls `to_dict()` on a
    figure, so this subclass skips both and returns the dict as it is. Use
    `.figure()` for a real, validated `go.Figure` (the tests do, so a wrong
    property name fails there instead of being dropped silently).
    """

    def __init__(self, spec: dict):  # deliberately no super().__init__(): that is the slow part
        self._spec = spec

    def to_dict(self) -> dict:
        return self._spec

    def figure(self) -> go.Figure:
        return go.Figure(self._spec)

    def __repr__(self) -> str:
        return f"FigureSpec({self._spec['layout'].get('title', {}).get('text', '')!r})"


def _figure(data: list[dict], layout: dict, title: str, height: int = 360) -> FigureSpec:
    """The same look as `kdcore.figures._layout`, without plotly's validation pass."""
    base = dict(title=dict(text=title, x=0.0, xanchor="left"), height=height,
                margin=dict(l=60, r=20, t=50, b=50), legend=dict(orientation="h", y=-0.25),
                template=_TEMPLATE)
    base.update(layout)
    return FigureSpec(dict(data=data, layout=base))


def _vline(x: float, color: str = "#888", dash: str = "dot") -> dict:
    """A vertical line at x in data units: plotly places shapes in data units on a log axis too
    (unlike annotations, which want log10 of the value there)."""
    return dict(type="line", xref="x", yref="paper", x0=x, x1=x, y0=0, y1=1,
                line=dict(color=color, dash=dash, width=1.5))


def _hline(y: float, color: str = "#888", dash: str = "dash", yref: str = "y") -> dict:
    return dict(type="line", xref="paper", yref=yref, x0=0, x1=1, y0=y, y1=y,
                line=dict(color=color, dash=dash, width=1.2))


def input_image(image: np.ndarray, title: str) -> FigureSpec:
    """A greyscale image (H, W), intensities 0..1, drawn as pixels with hover."""
    img = np.asarray(image, dtype=np.float64)
    data = [dict(type="heatmap", z=img, colorscale="Greys", zmin=0.0, zmax=1.0, showscale=False,
                 hovertemplate="row %{y}, column %{x}<br>intensity %{z:.2f}<extra></extra>")]
    layout = dict(xaxis=dict(visible=False, constrain="domain"),
                  yaxis=dict(visible=False, autorange="reversed", scaleanchor="x", constrain="domain"),
                  margin=dict(l=10, r=10, t=50, b=10))
    return _figure(data, layout, title, height=300)


def input_point(points: np.ndarray, labels: np.ndarray, class_names: Sequence[str], point: np.ndarray,
                title: str) -> FigureSpec:
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
    layout = dict(xaxis=dict(title=dict(text="x₁ (input feature)")),
                  yaxis=dict(title=dict(text="x₂ (input feature)"), scaleanchor="x"))
    return _figure(data, layout, title, height=340)


def probability_bars(class_names: Sequence[str], series: Sequence[tuple[str, np.ndarray, str]],
                     log_scale: bool, title: str) -> FigureSpec:
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
    # the legend goes below the classes: above the plot it printed over the title once a third
    # series (the distilled student) made it wrap
    layout = dict(barmode="group", xaxis=dict(title=dict(text="class"), type="category"), yaxis=yaxis,
                  legend=dict(orientation="h", y=-0.22, x=0.0, xanchor="left", yanchor="top"),
                  margin=dict(l=60, r=20, t=50, b=40 + 22 * len(series)))
    return _figure(data, layout, title, height=380 + 22 * max(len(series) - 2, 0))


def entropy_curve(temperatures: np.ndarray, entropies: np.ndarray, top_probs: np.ndarray,
                  temperature: float, n_classes: int, title: str) -> FigureSpec:
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
        shapes=[_vline(t), _hline(max_h)],
        annotations=[dict(x=1, xref="paper", xanchor="right", y=max_h, yref="y", yanchor="bottom",
                          text=f"log {n_classes} = {max_h:.2f} nats (uniform)", showarrow=False,
                          font=dict(size=11, color="#666"))],
        margin=dict(l=60, r=60, t=50, b=50),
    )
    return _figure(data, layout, title, height=360)


def entropy_and_top_at(temperatures, entropies, top_probs, t: float) -> tuple[float, float]:
    """Interpolated (in log T) entropy and top probability at T = t, for the marker."""
    lt = np.log(np.asarray(temperatures, dtype=np.float64))
    return (float(np.interp(np.log(t), lt, entropies)), float(np.interp(np.log(t), lt, top_probs)))


def similarity_heatmap(similarity: np.ndarray, class_names: Sequence[str], temperature: float,
                       log_scale: bool, title: str) -> FigureSpec:
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
    return _figure(data, layout, title, height=420)


def gradient_ratio_figure(story: GradientStory, temperature: float, title: str) -> FigureSpec:
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
                  shapes=[_vline(t), _hline(1.0, color="#444")])
    return _figure(data, layout, title, height=360)


def gradient_magnitude_figure(story: GradientStory, temperature: float, hard_norm: float | None,
                              title: str) -> FigureSpec:
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
    shapes = [_vline(t)]
    annotations = []
    if hard_norm is not None and hard_norm > 0:
        shapes.append(_hline(hard_norm, color=COLORS["scratch"]))
        annotations.append(dict(x=0, xref="paper", xanchor="left", y=np.log10(hard_norm), yref="y",
                                yanchor="bottom", showarrow=False, font=dict(size=11, color=COLORS["scratch"]),
                                text=f"labels' gradient ‖softmax(z) − y‖ = {hard_norm:.3g}"))
    layout = dict(xaxis=dict(type="log", title=dict(text="temperature T (log scale)")),
                  yaxis=dict(type="log", title=dict(text="gradient norm w.r.t. student logits"),
                             exponentformat="power"),
                  shapes=shapes, annotations=annotations)
    return _figure(data, layout, title, height=360)
