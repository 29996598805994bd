"""Distillation losses, each with its formula and its paper.

Notation: s = student logits, t = teacher logits (B examples x C classes),
y = integer labels, T = temperature, p_T = softmax(t/T), q_T = softmax(s/T).

Temperature and alpha may be Python floats or tensors broadcastable to (B,)
so that a batched sweep can give every example (or every student stacked in
the batch) its own T and alpha.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_LABEL = -1  # label of a transfer-set example whose label is hidden


def _per_row(x, like: torch.Tensor) -> torch.Tensor:
    """A float or tensor as a (B, 1) column (or a scalar) to scale rows of `like`."""
    if not torch.is_tensor(x):
        return torch.as_tensor(float(x), dtype=like.dtype, device=like.device)
    x = x.to(like.dtype)
    return x.reshape(-1, 1) if x.dim() > 0 else x


def soften(logits: torch.Tensor, temperature=1.0) -> torch.Tensor:
    """Soft targets softmax(z / T) (Hinton, Vinyals & Dean 2015, eq. 1).

    T = 1 is the ordinary softmax; T > 1 raises the small probabilities of the
    wrong classes (the "dark knowledge") towards the top one.
    """
    return torch.softmax(logits / _per_row(temperature, logits), dim=-1)


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                     temperature=1.0) -> torch.Tensor:
    """T² · KL(p_T ‖ q_T), per example (shape (B,)).

    KL(p‖q) = Σ_c p_c (log p_c − log q_c). Its gradient w.r.t. the student
    logits is T·(q_T − p_T) per example: the T² factor cancels the 1/T² that
    softening puts on the gradient, so changing T does not change the soft
    term's weight (Hinton et al. 2015, section 2).
    """
    T = _per_row(temperature, student_logits)
    log_p = torch.log_softmax(teacher_logits / T, dim=-1)
    log_q = torch.log_softmax(student_logits / T, dim=-1)
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)
    return kl * T.reshape(-1) ** 2 if T.dim() else kl * T ** 2


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
            temperature=4.0, alpha=0.5) -> torch.Tensor:
    """Knowledge-distillation loss (Hinton, Vinyals & Dean 2015, "Distilling the
    Knowledge in a Neural Network", arXiv:1503.02531):

        L = α · T² · KL(softmax(t/T) ‖ softmax(s/T)) + (1 − α) · CE(y, softmax(s)),

    each term the mean over the batch. α = 0 is plain cross-entropy, α = 1 pure
    distillation (still scaled by T²). Examples whose label is `IGNORE_LABEL`
    (-1) contribute only to the soft term: a transfer set with few labels.
    With a tensor α (one per example) both terms are averaged per example.
    """
    soft = soft_target_loss(student_logits, teacher_logits, temperature)
    labelled = targets != IGNORE_LABEL
    ce = F.cross_entropy(student_logits, targets.clamp_min(0), reduction="none") * labelled
    if torch.is_tensor(alpha) and alpha.dim() > 0:
        a = alpha.to(soft.dtype).reshape(-1)
        n_lab = labelled.sum().clamp_min(1)
        return (a * soft).mean() + ((1 - a) * ce).sum() / n_lab
    a = float(alpha)
    hard = ce.sum() / labelled.sum().clamp_min(1)
    if a == 0.0:
        return hard
    if a == 1.0:
        return soft.mean()
    return a * soft.mean() + (1 - a) * hard


def logit_matching_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Logit matching (Caruana et al. 2006 "Model Compression"; Ba & Caruana 2014):

        L = ½ · mean over B·C entries of (s − t)²,

    whose gradient is (s − t)/(B·C). It is the high-temperature limit of the
    T²-scaled soft loss when both sets of logits have zero mean per example:
    T·(q_T − p_T)/B → (s − t)/(B·C) as T → ∞ (Hinton et al. 2015, section 2.1).
    """
    return 0.5 * (student_logits - teacher_logits).pow(2).mean()


def sequence_kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
                     mask: torch.Tensor | None = None, temperature=4.0, alpha=0.5) -> torch.Tensor:
    """`kd_loss` per time step of sequences (B, L, C), padding left out:

        L = α · T² · mean over real steps of KL(softmax(t_bl/T) ‖ softmax(s_bl/T))
            + (1 − α) · mean over labelled steps of CE(y_bl, softmax(s_bl)),

    every real step (b, l) weighing as one example, as if the steps were the rows
    of a (N_steps, C) batch (Hinton et al. 2015 applied per step, as in sequence-
    level distillation's word-level form, Kim & Rush 2016, eq. 4). `mask` (B, L)
    is True on real steps (default: every step); targets of `IGNORE_LABEL` on a
    real step are unlabelled steps that feed only the soft term.
    """
    if mask is None:
        mask = torch.ones(targets.shape, dtype=torch.bool, device=targets.device)
    return kd_loss(student_logits[mask], teacher_logits[mask], targets[mask], temperature, alpha)


# ---------------------------------------------------------------- decoupled KD, hints, class distance

def _target_or_teacher_class(teacher_logits: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
    """The class DKD splits on: the label, or the teacher's top class where the label is hidden (-1)."""
    top = teacher_logits.argmax(-1)
    if targets is None:
        return top
    return torch.where(targets == IGNORE_LABEL, top, targets)


def tckd_nckd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor | None,
              temperature=1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The two parts of KL(p_T ‖ q_T) of Decoupled KD (Zhao et al., CVPR 2022), per example (B,), unscaled:

        TCKD = KL(b^p ‖ b^q),  b = (p_t, 1 − p_t): the binary "target vs the rest" distributions;
        NCKD = KL(p̂ ‖ q̂),     p̂_c = p_c / (1 − p_t) for c ≠ t: the distributions over the non-target classes,

    and p_t (the teacher's target probability at T), so that exactly
    KL(p_T ‖ q_T) = TCKD + (1 − p_t) · NCKD. The target t is the label, or the
    teacher's top class for an example whose label is hidden (-1).
    Returns (tckd, nckd, p_t).
    """
    T = _per_row(temperature, student_logits)
    tgt = _target_or_teacher_class(teacher_logits, targets).reshape(-1, 1)
    log_p = torch.log_softmax(teacher_logits / T, dim=-1)
    log_q = torch.log_softmax(student_logits / T, dim=-1)
    lp_t, lq_t = log_p.gather(-1, tgt).squeeze(-1), log_q.gather(-1, tgt).squeeze(-1)
    # log(1 − p_t) as the log-sum-exp of the other classes: stable when p_t → 1
    mask = torch.zeros_like(log_p, dtype=torch.bool).scatter_(-1, tgt, True)
    lp_rest = torch.logsumexp(log_p.masked_fill(mask, -torch.inf), dim=-1)
    lq_rest = torch.logsumexp(log_q.masked_fill(mask, -torch.inf), dim=-1)
    tckd = lp_t.exp() * (lp_t - lq_t) + lp_rest.exp() * (lp_rest - lq_rest)
    # non-target distributions: log p̂_c = log p_c − log(1 − p_t)
    log_ph = (log_p - lp_rest[:, None]).masked_fill(mask, 0.0)
    log_qh = (log_q - lq_rest[:, None]).masked_fill(mask, 0.0)
    nckd = (log_ph.exp() * (log_ph - log_qh)).masked_fill(mask, 0.0).sum(-1)
    return tckd, nckd, lp_t.exp()


def dkd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor | None,
             temperature=4.0, tckd_weight: float = 1.0, nckd_weight: float = 8.0) -> torch.Tensor:
    """Decoupled knowledge distillation (Zhao, Cui, Song, Qiu & Liang, "Decoupled Knowledge
    Distillation", CVPR 2022, arXiv:2203.08679), the batch mean of

        DKD = T² · (α · TCKD + β · NCKD)      (α = tckd_weight, β = nckd_weight; see `tckd_nckd`).

    Classical KD is T² · (TCKD + (1 − p_t) · NCKD): it ties the weight of NCKD to the
    teacher's confidence, which DKD frees (the paper: α = 1, β = 8 at T = 4).
    The labels' cross-entropy is not included (the Trainer adds (1 − alpha)·CE).
    """
    tckd, nckd, _ = tckd_nckd(student_logits, teacher_logits, targets, temperature)
    T = _per_row(temperature, student_logits)
    t2 = T.reshape(-1) ** 2 if T.dim() else T ** 2
    return (t2 * (tckd_weight * tckd + nckd_weight * nckd)).mean()


def hint_loss(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, regressor: torch.nn.Module) -> torch.Tensor:
    """FitNets hint loss (Romero, Ballas, Kahou, Chassang, Gatta & Bengio, "FitNets: Hints for Thin
    Deep Nets", ICLR 2015, arXiv:1412.6550, eq. 3), the batch mean of

        L_HT = ½ · ‖ r(h_s) − h_t ‖²,

    h_s the student's hidden layer (the guided layer), h_t the teacher's (the hint),
    r a learned regressor (here a linear map) taking the student's width to the teacher's.
    Its gradient w.r.t. h_s is Wᵣᵀ (r(h_s) − h_t) / B for a linear r(h) = Wᵣ h + b.
    """
    diff = regressor(student_hidden) - teacher_hidden
    return 0.5 * diff.pow(2).sum(-1).mean()


def class_distance_loss(features: torch.Tensor, targets: torch.Tensor, margin: float = 1.0,
                        push_weight: float = 1.0) -> torch.Tensor:
    """Class-distance loss, OUR READING of the abstract of Kim, Park & Kwak, "Transferring Knowledge
    to Smaller Network with Class-Distance Loss" (ICLR 2017 workshop; only the abstract is public):
    the teacher is trained with an extra term that pulls each example's penultimate features f
    towards its class centre and pushes them at least `margin` away from the other classes' centres:

        L_cd = mean_i ‖f_i − c_{y_i}‖² / D  +  λ · mean_i mean_{k ≠ y_i} max(0, m − ‖f_i − c_k‖ / √D)²,

    c_k the mean feature of class k in the batch (detached: centres are targets, not
    parameters), D the feature width (distances per √D so that m does not depend on it),
    λ = push_weight, m = margin. Classes absent from the batch are skipped; examples
    with a hidden label (-1) do not count. The exact form in the paper may differ.
    """
    keep = targets != IGNORE_LABEL
    f, y = features[keep], targets[keep]
    if len(f) == 0:
        return features.sum() * 0.0
    classes, inverse = torch.unique(y, return_inverse=True)
    counts = torch.bincount(inverse, minlength=len(classes)).to(f.dtype)
    centres = torch.zeros(len(classes), f.shape[1], dtype=f.dtype, device=f.device)
    centres = centres.index_add(0, inverse, f.detach()) / counts[:, None]
    d = f.shape[1]
    dist2 = (f[:, None, :] - centres[None]).pow(2).sum(-1) / d   # (n, K) squared distances per width
    pull = dist2.gather(1, inverse[:, None]).squeeze(1).mean()
    if len(classes) < 2:
        return pull
    other = torch.ones_like(dist2, dtype=torch.bool).scatter_(1, inverse[:, None], False)
    hinge = torch.relu(margin - (dist2 + 1e-12).sqrt()).pow(2)
    push = (hinge * other).sum(1) / other.sum(1)
    return pull + push_weight * push.mean()
