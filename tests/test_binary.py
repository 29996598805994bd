"""Binarized MLP: the saturating STE's gradient, clipping, and the XNOR-popcount forward against the
float forward of the binarized model (exact), plus a short training run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kdcore.binary import (BinaryMLP, XnorMLP, clip_latent_weights, popcount, sign_ste, train_binary_mlp,
                           _pack_rows)
from kdcore.train import TrainConfig


def test_saturating_ste_gradient_is_zero_where_abs_x_exceeds_one():
    x = torch.tensor([-3.0, -1.5, -1.0, -0.4, 0.0, 0.2, 1.0, 1.01, 7.0], requires_grad=True)
    up = torch.arange(1.0, 10.0)
    (sign_ste(x) * up).sum().backward()
    expect = torch.where(x.detach().abs() <= 1, up, torch.zeros_like(up))   # hard-tanh's derivative
    assert torch.equal(x.grad, expect)
    assert torch.equal(sign_ste(x.detach()), torch.tensor([-1.0, -1, -1, -1, 1, 1, 1, 1, 1]))
    # the same rule from autograd on hard-tanh, on random inputs
    z = (3 * torch.randn(1000, generator=torch.Generator().manual_seed(0))).requires_grad_(True)
    sign_ste(z).sum().backward()
    z2 = z.detach().clone().requires_grad_(True)
    torch.nn.functional.hardtanh(z2).sum().backward()
    assert torch.equal(z.grad, z2.grad)
    assert bool((z.grad[z.detach().abs() > 1] == 0).all()) and bool((z.detach().abs() > 1).any())


def test_popcount_against_python():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2 ** 63, 200, dtype=np.uint64)
    assert [int(c) for c in popcount(x)] == [bin(int(v)).count("1") for v in x]
    bits = rng.integers(0, 2, (3, 70))
    packed = _pack_rows(bits)
    assert packed.shape == (3, 2) and list(popcount(packed).sum(1)) == list(bits.sum(1))


def random_binary_mlp(seed=0, hidden=(37, 70), d=64, c=10):
    """Random latent weights and random BatchNorm statistics (γ of both signs)."""
    g = torch.Generator().manual_seed(seed)
    model = BinaryMLP(d, hidden, c, (0.0, 1.0))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.rand(p.shape, generator=g) * 2 - 1)
        for bn in [*model.hidden_norms, model.out_norm]:
            bn.running_mean.copy_(torch.randn(bn.num_features, generator=g) * 20)
            bn.running_var.copy_(torch.rand(bn.num_features, generator=g) * 500 + 1)
    return model.eval()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_xnor_popcount_forward_equals_the_float_forward_exactly(seed):
    model = random_binary_mlp(seed)
    x = torch.rand(300, 64, generator=torch.Generator().manual_seed(10 + seed))
    x[:20] = torch.round(x[:20] * 4) / 4          # some inputs on rounding ties of the 8-bit grid
    xnor = XnorMLP(model)
    pre = xnor.preactivations(x.numpy())
    with torch.no_grad():
        logits = model(x).numpy()
        # an independent float computation of the first layer: integer input times ±1 weights, in float64
        x_int = model.quantize_input(x).double()
        w_pm = torch.where(model.hidden_layers[0].weight >= 0, 1.0, -1.0).double()
        a1 = (x_int @ w_pm.T).numpy()
    assert np.array_equal(pre[0], a1.astype(np.int64)) and np.array_equal(pre[0], a1)
    assert logits.dtype == pre[-1].dtype == np.float32
    assert np.array_equal(pre[-1], logits)                      # bit for bit
    assert np.array_equal(pre[-1].argmax(1), logits.argmax(1))
    # the second layer's pre-activations take both signs (the thresholds and XNORs are exercised)
    h = pre[1]
    assert 0.05 < float((h > 0).mean()) < 0.95


def test_training_clips_latent_weights_and_learns(digits):
    torch.manual_seed(0)
    model, hist = train_binary_mlp(digits, (64,), TrainConfig(epochs=4, batch_size=64, lr=1e-2), seed=0)
    latent = [m.weight.detach() for m in model.hidden_layers] + [model.out_layer.weight.detach()]
    assert all(float(w.abs().max()) <= 1.0 for w in latent)
    acc = float((model(digits.X_test).argmax(1) == digits.y_test).float().mean())
    assert acc > 0.6, acc                                        # chance is 0.1
    xnor = XnorMLP(model)
    with torch.no_grad():
        assert np.array_equal(xnor(digits.X_test.numpy()), model(digits.X_test).numpy())


def test_clip_latent_weights():
    model = random_binary_mlp()
    with torch.no_grad():
        model.out_layer.weight.mul_(5)
    clip_latent_weights(model)
    assert float(model.out_layer.weight.detach().abs().max()) == 1.0
