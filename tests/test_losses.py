"""Distillation losses against independent computations (autograd, torch's own KL and CE)."""

import pytest
import torch
import torch.nn.functional as F

from kdcore.losses import IGNORE_LABEL, kd_loss, logit_matching_loss, soft_target_loss, soften


@pytest.fixture(autouse=True)
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def logits(b=16, c=10, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(b, c, generator=g), scale * torch.randn(b, c, generator=g), \
        torch.randint(0, c, (b,), generator=g)


def test_soften_is_softmax_of_scaled_logits():
    s, _, _ = logits()
    for T in (0.5, 1.0, 4.0):
        assert torch.allclose(soften(s, T), torch.softmax(s / T, -1))
    assert torch.allclose(soften(s, 3.0).sum(-1), torch.ones(len(s)))


def test_alpha_zero_is_cross_entropy():
    s, t, y = logits()
    for T in (1.0, 4.0, 20.0):
        assert torch.allclose(kd_loss(s, t, y, T, 0.0), F.cross_entropy(s, y), atol=1e-12)


def test_matches_independent_kl_div_and_cross_entropy():
    s, t, y = logits(seed=1)
    T, a = 3.0, 0.7
    reference = a * T ** 2 * F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean") \
        + (1 - a) * F.cross_entropy(s, y)
    assert torch.allclose(kd_loss(s, t, y, T, a), reference, atol=1e-12)


def test_alpha_one_is_pure_distillation_still_scaled_by_T_squared():
    s, t, y = logits(seed=2)
    T = 5.0
    kl = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean")
    assert torch.allclose(kd_loss(s, t, y, T, 1.0), T ** 2 * kl, atol=1e-12)


def test_equal_logits_give_zero_soft_loss():
    s, _, y = logits(seed=3)
    for T in (1.0, 4.0, 50.0):
        assert soft_target_loss(s, s.clone(), T).abs().max() < 1e-12
        assert abs(float(kd_loss(s, s.clone(), y, T, 1.0))) < 1e-12


def test_soft_gradient_is_T_times_q_minus_p_over_N():
    s, t, y = logits(b=8, seed=4)
    n = len(s)
    for T in (1.0, 2.0, 8.0):
        s_ = s.clone().requires_grad_(True)
        kd_loss(s_, t, y, T, 1.0).backward()
        q, p = torch.softmax(s / T, 1), torch.softmax(t / T, 1)
        assert torch.allclose(s_.grad, T * (q - p) / n, atol=1e-10)


def test_high_temperature_approaches_logit_matching_gradient():
    """With zero-mean logits, T²·KL's gradient -> (s - t)/(B·C), logit matching's gradient."""
    s, t, y = logits(b=8, c=10, seed=5, scale=1.0)
    s, t = s - s.mean(1, keepdim=True), t - t.mean(1, keepdim=True)
    s_lm = s.clone().requires_grad_(True)
    logit_matching_loss(s_lm, t).backward()
    assert torch.allclose(s_lm.grad, (s - t) / s.numel())  # its own closed form
    errors = []
    for T in (2.0, 10.0, 100.0, 1000.0):
        s_kd = s.clone().requires_grad_(True)
        kd_loss(s_kd, t, y, T, 1.0).backward()
        errors.append(float((s_kd.grad - s_lm.grad).norm() / s_lm.grad.norm()))
    assert all(b < a for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 1e-3


def test_unlabelled_examples_only_feed_the_soft_term():
    s, t, y = logits(seed=6)
    y_hidden = y.clone()
    y_hidden[::2] = IGNORE_LABEL
    lab = y_hidden != IGNORE_LABEL
    T, a = 4.0, 0.6
    reference = a * T ** 2 * F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean") \
        + (1 - a) * F.cross_entropy(s[lab], y[lab])
    assert torch.allclose(kd_loss(s, t, y_hidden, T, a), reference, atol=1e-12)


def test_per_example_temperature_and_alpha_match_scalar_ones():
    s, t, y = logits(seed=7)
    T, a = 3.0, 0.25
    per_row = kd_loss(s, t, y, torch.full((len(s),), T), torch.full((len(s),), a))
    assert torch.allclose(per_row, kd_loss(s, t, y, T, a), atol=1e-12)
    # different temperatures per row: each row is the scalar loss of that row
    Ts = torch.linspace(1.0, 8.0, len(s))
    rows = soft_target_loss(s, t, Ts)
    for i in (0, 5, len(s) - 1):
        assert torch.allclose(rows[i], soft_target_loss(s[i:i + 1], t[i:i + 1], float(Ts[i]))[0])
