"""Temperature lab: soft targets, their entropy, dark knowledge and the gradient story.

Everything here works on logits that are already computed (a teacher's test
logits, `TrainedTeacher.logits["test"]`), so moving the temperature only costs
softmaxes:

- `soften_np`, `entropy`, `entropy_and_top`: p_T = softmax(z / T) and its entropy
  H = −Σ p log p (nats), for one example over a grid of temperatures.
- `TeacherOutputs`: the T-independent view of a teacher's test logits, made
  once per teacher (entropies at T = 1, "most confusing" ordering, per-class
  averaging matrix); `.similarity(T)` is the class-by-class matrix of mean soft
  targets at T (what the teacher thinks a "2" resembles).
- `soft_target_gradient`, `logit_matching_gradient`, `gradient_story`: Hinton,
  Vinyals & Dean 2015 ("Distilling the Knowledge in a Neural Network",
  arXiv:1503.02531, section 2.1): ∂C/∂z_i = (q_i − p_i)/T ≈ (z_i − v_i)/(N·T²)
  at high T for zero-mean logits, and why the soft loss is multiplied by T².

- `entropy_and_top_at`: the entropy and top probability at one T, read off the curves.

Its figures are in `kdcore.viz.temperature`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np


# the temperatures the page's slider offers (denser where the distribution changes fastest)
TEMPERATURES = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0,
                25.0, 30.0, 40.0, 50.0)
# the temperatures of the curves against T (log-spaced from 0.5 to 50)
CURVE_TEMPERATURES = np.geomspace(0.5, 50.0, 121)


# ---------------------------------------------------------------------------------------------
# computations
# ---------------------------------------------------------------------------------------------

def soften_np(logits, temperature) -> np.ndarray:
    """Soft targets p_T = softmax(z / T) along the last axis (Hinton et al. 2015, eq. 1), float64.

    The NumPy twin of `kdcore.losses.soften` (which trains on torch tensors): the Temperature page
    redraws from NumPy arrays on every slider move; the tests check the two agree.

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
    p = soften_np(np.asarray(logits_row, dtype=np.float64)[None, :], temps)   # (len(temps), C)
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
        ent = entropy(soften_np(z, 1.0))
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
        return soften_np(self.logits, temperature)

    def similarity(self, temperature: float) -> np.ndarray:
        """(C, C) mean soft target at T of the examples of each true class; each row sums to 1.

        Row "2", column "3": how much, on average, the teacher thinks a "2" looks like a "3".
        One softmax of the class-sorted logits and one segmented sum (no BLAS call: a
        matrix product here is slow when BLAS threads fight over a busy machine).
        """
        sums = np.add.reduceat(soften_np(self.by_class_logits, temperature), self.class_starts, axis=0)
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
    return (soften_np(student_logits, T) - soften_np(teacher_logits, T)) / T


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
    q = soften_np(student_logits, 1.0)
    q[..., int(label)] -= 1.0
    return _norm(q)


def entropy_and_top_at(temperatures, entropies, top_probs, t: float) -> tuple[float, float]:
    """Interpolated (in log T) entropy and top probability at T = t, for the marker."""
    lt = np.log(np.asarray(temperatures, dtype=np.float64))
    return (float(np.interp(np.log(t), lt, entropies)), float(np.interp(np.log(t), lt, top_probs)))


