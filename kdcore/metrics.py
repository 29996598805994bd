"""Metrics of a model on a split: accuracy, loss, agreement with the teacher, KL, size.

All functions take logits (computed once) rather than models where they can,
so the app evaluates a model once and derives every number from the result.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kdcore.models import model_bytes, param_count
from kdcore.train import predict_logits


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(1) == y).float().mean()) if len(y) else float("nan")


def agreement(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> float:
    """Fraction of examples where student and teacher predict the same class (top-1)."""
    return float((student_logits.argmax(1) == teacher_logits.argmax(1)).float().mean())


def mean_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor, temperature: float = 1.0) -> float:
    """Mean over examples of KL(softmax(t/T) ‖ softmax(s/T)), in nats."""
    log_p = torch.log_softmax(teacher_logits / temperature, 1)
    log_q = torch.log_softmax(student_logits / temperature, 1)
    return float((log_p.exp() * (log_p - log_q)).sum(1).mean())


def confusion_matrix(logits: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Counts[true, predicted]."""
    pred = logits.argmax(1)
    return torch.bincount(y * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor,
             teacher_logits: torch.Tensor | None = None, logits: torch.Tensor | None = None) -> dict:
    """Test metrics of `model` on (X, y); agreement and KL when the teacher's logits are given."""
    if logits is None:
        logits = predict_logits(model, X)
    out = {
        "accuracy": accuracy(logits, y),
        "loss": float(F.cross_entropy(logits, y)),
        "errors": int((logits.argmax(1) != y).sum()),
        "params": param_count(model),
        "bytes": model_bytes(model),
    }
    if teacher_logits is not None:
        out["agreement"] = agreement(logits, teacher_logits)
        out["kl_teacher"] = mean_kl(teacher_logits, logits)
    return out
