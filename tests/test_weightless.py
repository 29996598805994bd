"""Weightless (Bloomier-filter encoding): exact recall of stored keys, the false-positive rate
against V / 2^t, size accounting by hand, decoding, and a small end-to-end run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from kdcore.data import Dataset
from kdcore.weightless import (CENTROID_BITS, HEADER_BITS, BloomierFilter, WeightlessConfig, WeightlessRun,
                               encode_weights, kmeans_1d, measured_fp_rate)


@pytest.mark.parametrize("t,k", [(4, 3), (8, 3), (12, 4), (16, 2)])
def test_every_stored_key_returns_its_value(t, k):
    rng = np.random.default_rng(t * 10 + k)
    n = 5000
    keys = rng.choice(10 ** 7, n, replace=False)
    values = rng.integers(0, 2 ** t, n)
    f = BloomierFilter(keys, values, t=t, k=k, seed=t)
    got = f.lookup(keys)
    assert np.array_equal(got, values)
    # the filter really stores something: a table of zeros would return only the masks
    assert np.count_nonzero(f.table) > 0 and f.table.max() < 2 ** t


@pytest.mark.parametrize("t,v", [(8, 16), (10, 4), (6, 1)])
def test_false_positive_rate_over_1e5_absent_keys_is_v_over_2_to_the_t(t, v):
    """A key never stored reads as t hash-like bits: P(value < V) = V / 2^t. Tolerance: 5 binomial
    standard deviations of the mean of 10^5 trials (≈ 0.004 at t = 8, V = 16)."""
    rng = np.random.default_rng(1)
    keys = rng.choice(10 ** 6, 20000, replace=False)
    f = BloomierFilter(keys, rng.integers(0, v, len(keys)), t=t, k=3, seed=5)
    absent = np.arange(10 ** 6, 10 ** 6 + 10 ** 5)       # disjoint from every stored key
    measured = float((f.lookup(absent) < v).mean())
    theory = v / 2 ** t
    tol = 5 * math.sqrt(theory * (1 - theory) / len(absent))
    assert abs(measured - theory) <= tol, (measured, theory, tol)


def test_peeling_retries_with_a_new_seed_and_gives_up_on_a_table_too_small():
    rng = np.random.default_rng(2)
    keys = rng.choice(10 ** 6, 3000, replace=False)
    vals = rng.integers(0, 16, len(keys))
    with pytest.raises(RuntimeError, match="peeling failed"):
        BloomierFilter(keys, vals, t=8, k=3, cells_per_key=0.9, max_tries=3)   # below the 1.23 threshold
    tries = [BloomierFilter(keys[:200], vals[:200], t=8, k=3, seed=s).tries for s in range(30)]
    assert max(tries) >= 2           # small tables fail now and then: the retry is exercised ...
    f = BloomierFilter(keys[:200], vals[:200], t=8, k=3, seed=int(np.argmax(tries)))
    assert np.array_equal(f.lookup(keys[:200]), vals[:200])   # ... and the retried filter is right


def test_size_accounting_by_hand_and_decoding_of_a_small_layer():
    g = torch.Generator().manual_seed(3)
    w = torch.randn(4, 8, generator=g)
    w[w.abs() < 0.8] = 0.0
    n_kept = int((w != 0).sum())
    enc = encode_weights(w, n_clusters=4, t=6, k=3, cells_per_key=1.25, seed=0)
    segment = math.ceil(1.25 * n_kept / 3) + 1
    assert enc.n_kept == n_kept and enc.filter.m == 3 * segment
    assert enc.filter.size_bits() == 3 * segment * 6
    assert enc.size_bits() == 3 * segment * 6 + 4 * 32 + 8 * 32
    # stored positions decode to their nearest centroid (k-means assignment), exactly
    dec = enc.decode()
    kept = w != 0
    c = torch.from_numpy(enc.centroids)
    nearest = c[(w[kept][:, None] - c[None]).abs().argmin(1)]
    assert torch.equal(dec[kept], nearest)
    # pruned positions are zero unless their random bits form a valid index
    spurious = (dec != 0) & ~kept
    assert measured_fp_rate(enc, w) == pytest.approx(float(spurious.sum()) / float((~kept).sum()))


def test_kmeans_1d_against_an_independent_lloyd():
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.normal(-2, 0.3, 200), rng.normal(1, 0.2, 300), rng.normal(4, 0.5, 100)])
    c, idx = kmeans_1d(x, 3)
    assert np.allclose(np.sort(c), [-2, 1, 4], atol=0.1)
    # a fixed point of Lloyd: each centroid is the mean of its points, each point at its nearest centroid
    assert np.array_equal(idx, np.abs(x[:, None] - c[None]).argmin(1))
    assert np.allclose([x[idx == j].mean() for j in range(3)], c, atol=1e-5)


def tiny_dataset(n=240, d=8, classes=3, seed=0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    centres = 3 * torch.randn(classes, d, generator=g)
    y = torch.arange(n) % classes
    X = centres[y] + torch.randn(n, d, generator=g)
    return Dataset("tiny", X[:160], y[:160], X[160:200], y[160:200], X[200:], y[200:],
                   tuple(map(str, range(classes))), (d,), False, seed)


def test_weightless_run_accounts_every_bit_and_freezes_encoded_layers():
    ds = tiny_dataset()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    cfg = WeightlessConfig(sparsity=0.5, n_clusters=4, t=6, prune_epochs=2, retrain_epochs=2, lr=1e-2)
    run = WeightlessRun(cfg, ds, model)
    assert run.total_steps == 3
    run.step()                                # prune + retrain
    first = run.step()                        # encode layer "0", retrain "2"
    w0 = run.model[0].weight.detach().clone()
    assert torch.equal(w0, run.encoded["0"].decode())      # layer 0 is exactly its decoded filter ...
    res = run.run()
    assert torch.equal(res.model[0].weight, w0)             # ... and stays frozen while "2" retrains
    assert "retrained" in first.stage and run.done
    expected = 0
    for rep in res.layers:
        m = 3 * (math.ceil(1.25 * rep.n_kept / 3) + 1)
        expected += m * 6 + rep.n_clusters * CENTROID_BITS + HEADER_BITS + 32 * rep.shape[0]
    assert res.bits == expected and res.metrics["bytes"] == math.ceil(expected / 8)
    assert res.dense_float32_bits == 32 * (8 * 16 + 16 + 16 * 3 + 3)
    assert sum(r.n_kept for r in res.layers) == round(0.5 * (8 * 16 + 16 * 3))
    assert set(res.prune_quantize) == {8, 4}
    assert model[0].weight.abs().min() > 0    # the caller's model is untouched
