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


# ---------------------------------------------------------------- DKD, hints, class distance (issue 17)

from kdcore.losses import class_distance_loss, dkd_loss, hint_loss, tckd_nckd  # noqa: E402


def _reference_tckd_nckd(s, t, y, T):
    """Element by element from the definitions (a second, plain implementation)."""
    p, q = torch.softmax(t / T, 1), torch.softmax(s / T, 1)
    tck, nck, pts = [], [], []
    for i in range(len(s)):
        c = int(y[i])
        pt, qt = p[i, c], q[i, c]
        tck.append(pt * torch.log(pt / qt) + (1 - pt) * torch.log((1 - pt) / (1 - qt)))
        others = [j for j in range(s.shape[1]) if j != c]
        ph, qh = p[i, others] / (1 - pt), q[i, others] / (1 - qt)
        nck.append((ph * torch.log(ph / qh)).sum())
        pts.append(pt)
    return torch.stack(tck), torch.stack(nck), torch.stack(pts)


@pytest.mark.parametrize("T", [1.0, 4.0])
def test_kl_splits_exactly_into_tckd_plus_one_minus_pt_times_nckd(T):
    for seed in range(5):
        s, t, y = logits(b=32, c=10, seed=10 + seed, scale=4.0)
        tckd, nckd, pt = tckd_nckd(s, t, y, T)
        kl = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="none").sum(1)
        assert torch.allclose(tckd + (1 - pt) * nckd, kl, atol=1e-6, rtol=0)
        ref = _reference_tckd_nckd(s, t, y, T)
        for mine, theirs in zip((tckd, nckd, pt), ref):
            assert torch.allclose(mine, theirs, atol=1e-9)
        assert (tckd >= -1e-12).all() and (nckd >= -1e-12).all()


def test_dkd_weights_and_unlabelled_examples():
    s, t, y = logits(b=16, seed=20)
    T = 4.0
    tckd, nckd, _ = tckd_nckd(s, t, y, T)
    assert torch.allclose(dkd_loss(s, t, y, T, 1.0, 8.0), (T ** 2 * (tckd + 8 * nckd)).mean(), atol=1e-12)
    # a hidden label splits on the teacher's top class
    y_hidden = torch.full_like(y, IGNORE_LABEL)
    tck2, nck2, _ = tckd_nckd(s, t, t.argmax(1), T)
    assert torch.allclose(dkd_loss(s, t, y_hidden, T, 2.0, 3.0), (T ** 2 * (2 * tck2 + 3 * nck2)).mean())
    # with β = 1 − p_t per example DKD is KD's soft term: the identity once more, through the loss
    _, _, pt = tckd_nckd(s, t, y, T)
    assert torch.allclose((T ** 2 * (tckd + (1 - pt) * nckd)).mean(), kd_loss(s, t, y, T, 1.0), atol=1e-9)


def test_hint_loss_gradient_matches_autograd_and_closed_form():
    g = torch.Generator().manual_seed(30)
    hs, ht = torch.randn(12, 5, generator=g), torch.randn(12, 9, generator=g)
    reg = torch.nn.Linear(5, 9)
    with torch.no_grad():
        reg.weight.copy_(torch.randn(9, 5, generator=g))
        reg.bias.copy_(torch.randn(9, generator=g))
    h = hs.clone().requires_grad_(True)
    hint_loss(h, ht, reg).backward()
    resid = hs @ reg.weight.T + reg.bias - ht
    assert torch.allclose(h.grad, resid @ reg.weight / len(hs), atol=1e-12)
    # and against an independent autograd of a scalar-by-scalar sum
    h2 = hs.clone().requires_grad_(True)
    ref = sum(0.5 * sum((float(0) + (h2[i] @ reg.weight[j] + reg.bias[j] - ht[i, j])) ** 2 for j in range(9))
              for i in range(12)) / 12
    ref.backward()
    assert torch.allclose(h.grad, h2.grad, atol=1e-12)
    assert torch.allclose(hint_loss(hs, ht, reg), ref.detach(), atol=1e-12)
    # a regressor reaching the hint exactly gives zero
    assert float(hint_loss(hs, reg(hs).detach(), reg).detach()) < 1e-20


def test_class_distance_loss_by_hand():
    f = torch.tensor([[0.0, 0.0], [2.0, 0.0], [10.0, 0.0], [10.0, 2.0]])
    y = torch.tensor([0, 0, 1, 1])
    # centres (1, 0) and (10, 1); pull = mean ‖f − c_y‖² / 2 = 1 / 2
    # push: distances / √2 to the other centre, hinge at margin 20
    c = torch.tensor([[1.0, 0.0], [10.0, 1.0]])
    d_other = torch.stack([(f[i] - c[1 - y[i]]).norm() for i in range(4)]) / 2 ** 0.5
    expect = 0.5 + 0.3 * (torch.relu(20 - d_other) ** 2).mean()
    assert torch.allclose(class_distance_loss(f, y, margin=20.0, push_weight=0.3), expect, atol=1e-9)
    # far apart classes: no push; hidden labels are left out
    assert torch.allclose(class_distance_loss(f, y, margin=1.0), torch.tensor(0.5), atol=1e-9)
    y_h = torch.tensor([0, 0, 1, IGNORE_LABEL])
    # (class 1 is then the one point (10, 0), its own centre: pull = (1 + 1 + 0) / 3 / 2)
    assert torch.allclose(class_distance_loss(f, y_h, margin=1.0), torch.tensor(1 / 3), atol=1e-9)
