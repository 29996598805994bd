"""Low-rank factorization: full rank reproduces the layer, Eckart–Young error, energy ranks, sizes."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from kdcore.lowrank import LowRankConfig, factorize_linear, low_rank_model, rank_for_energy


def layer(o=12, i=20, seed=0):
    torch.manual_seed(seed)
    return nn.Linear(i, o)


def test_full_rank_reproduces_the_layer_to_1e_5():
    lin = layer()
    pair = factorize_linear(lin, 12)
    x = torch.randn(50, 20)
    with torch.no_grad():
        assert torch.allclose(pair(x), lin(x), atol=1e-5, rtol=0)
        assert torch.allclose(pair[1].weight @ pair[0].weight, lin.weight, atol=1e-5, rtol=0)


def test_truncation_error_is_the_dropped_singular_values():
    lin = layer(seed=1)
    W = lin.weight.detach().double()
    s = torch.linalg.svdvals(W)
    for r in (1, 3, 7):
        pair = factorize_linear(lin, r)
        Wr = pair[1].weight.detach().double() @ pair[0].weight.detach().double()
        assert torch.linalg.matrix_rank(Wr, atol=1e-5) == r
        err = float(torch.linalg.norm(W - Wr) ** 2)
        assert err == pytest.approx(float(s[r:].pow(2).sum()), rel=1e-4)   # Eckart–Young


def test_rank_for_energy_by_hand():
    s = torch.tensor([3.0, 2.0, 1.0, 1.0])          # energies 9, 4, 1, 1 of 15
    assert rank_for_energy(s, 0.5) == 1             # 9/15 = 0.6
    assert rank_for_energy(s, 0.6) == 1
    assert rank_for_energy(s, 0.61) == 2            # 13/15
    assert rank_for_energy(s, 0.9) == 3             # 14/15
    assert rank_for_energy(s, 1.0) == 4


def test_low_rank_model_counts_and_keeps_layers_that_would_grow():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    lr_model, reports = low_rank_model(model, LowRankConfig(rank=8))
    # 64×32 → 8·(64+32) = 768 < 2048: factorized; 32×10 → 8·42 = 336 ≥ 320: kept whole
    assert [r.factorized for r in reports] == [True, False]
    assert reports[0].weights_after == 768 and reports[1].weights_after == 320
    n = sum(p.numel() for p in lr_model.parameters())
    assert n == 768 + 32 + 320 + 10
    x = torch.randn(5, 64)
    full, _ = low_rank_model(model, LowRankConfig(rank=32, only_if_smaller=False))
    with torch.no_grad():
        assert torch.allclose(full(x), model(x), atol=1e-5)
    assert math.isclose(reports[0].energy, float((torch.linalg.svdvals(model[1].weight.double())[:8] ** 2).sum()
                        / (torch.linalg.svdvals(model[1].weight.double()) ** 2).sum()), rel_tol=1e-9)
