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


def hard_loss(student_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on the labelled examples only (labels of -1 are skipped)."""
    return F.cross_entropy(student_logits, targets, ignore_index=IGNORE_LABEL)


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
