"""Quantization: round-trip error bounds, an independent quantizer, byte counts by hand, binary weights, STE/QAT."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from kdcore.distill import KDConfig
from kdcore.metrics import evaluate
from kdcore.models import ModelConfig, build_model, model_bytes
from kdcore.quantize import (QuantConfig, choose_scale, dequantize, encoding_bits, fake_quantize, finalize_qat,
                             model_size, prepare_qat, qat_distill, qmax, quantize, quantize_model)
from kdcore.train import TrainConfig, seeded_model


def random_weight(shape=(6, 20), seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=g)
    w[0] *= 10      # channels on very different scales: per-channel and per-tensor differ
    return w


@pytest.mark.parametrize("bits", [8, 4, 2])
@pytest.mark.parametrize("granularity", ["channel", "tensor"])
def test_roundtrip_error_is_at_most_half_a_step(bits, granularity):
    w = random_weight()
    cfg = QuantConfig(bits, granularity, "max")
    codes, step = quantize(w, cfg)
    assert codes.abs().max() <= qmax(bits)
    deq = dequantize(codes, step, cfg.per_channel)
    err = (w - deq).abs()
    rows = err.reshape(w.shape[0], -1) if granularity == "channel" else err.reshape(1, -1)
    assert torch.all(rows <= step[:, None] / 2 + 1e-6)
    assert rows.max() > step.min() / 20   # the bound is not vacuous: the error is not zero
    # the max scale never clips: the largest |weight| of each channel is represented exactly
    w_rows = w.reshape(rows.shape)
    assert torch.allclose(deq.reshape(rows.shape).abs().amax(1), w_rows.abs().amax(1), rtol=1e-6)


@pytest.mark.parametrize("bits", [8, 4, 2])
def test_mse_scale_is_never_worse_and_unclipped_weights_stay_within_half_a_step(bits):
    w = random_weight((8, 50), seed=1)
    for gran in ("channel", "tensor"):
        e_max = float(((w - fake_quantize(w, QuantConfig(bits, gran, "max"))) ** 2).sum())
        cfg = QuantConfig(bits, gran, "mse")
        e_mse = float(((w - fake_quantize(w, cfg)) ** 2).sum())
        assert e_mse <= e_max + 1e-6
        step = choose_scale(w, cfg)
        rows = w.reshape(w.shape[0], -1) if gran == "channel" else w.reshape(1, -1)
        err = (rows - fake_quantize(w, cfg).reshape(rows.shape)).abs()
        inside = rows.abs() <= qmax(bits) * step[:, None]
        assert torch.all(err[inside] <= step[:, None].expand_as(err)[inside] / 2 + 1e-6)


def test_quantizer_matches_an_elementwise_reference():
    """A second, scalar implementation of symmetric per-channel quantization (max step)."""
    w = random_weight((3, 7), seed=2)
    for bits in (8, 4, 2):
        out = fake_quantize(w, QuantConfig(bits, "channel", "max"))
        q = 2 ** (bits - 1) - 1
        for c in range(w.shape[0]):
            step = max(abs(float(v)) for v in w[c]) / q
            for j in range(w.shape[1]):
                code = min(max(round(float(w[c, j]) / step), -q), q)
                assert math.isclose(float(out[c, j]), code * step, rel_tol=1e-5, abs_tol=1e-6)


def test_zeros_stay_zero_at_every_bit_width():
    w = random_weight((4, 30), seed=3)
    w[:, ::3] = 0
    for bits in (8, 4, 2, 1):
        assert torch.all(fake_quantize(w, QuantConfig(bits))[:, ::3] == 0)


def test_binary_weights_take_exactly_two_values_per_channel(digits_teacher):
    q = quantize_model(digits_teacher.model, QuantConfig(1, "channel"))
    for (name, p), (_, p0) in zip(q.named_parameters(), digits_teacher.model.named_parameters()):
        if not name.endswith("weight"):
            assert torch.equal(p, p0)   # biases untouched
            continue
        for row, row0 in zip(p, p0):
            values = torch.unique(row)
            assert len(values) == 2
            alpha = row0.abs().mean()
            assert torch.allclose(values, torch.stack([-alpha, alpha]), rtol=1e-5)
    t = quantize_model(digits_teacher.model, QuantConfig(1, "tensor"))
    assert len(torch.unique(t[-1].weight)) == 2


def test_binary_scale_minimizes_the_squared_error():
    w = random_weight((1, 40), seed=4)
    alpha = float(choose_scale(w, QuantConfig(1, "tensor")))
    err = lambda a: float(((w - a * torch.sign(w)) ** 2).sum())
    for a in torch.linspace(0.5 * alpha, 1.5 * alpha, 41):
        assert err(alpha) <= err(float(a)) + 1e-6


def test_8bit_ptq_of_the_digits_teacher_loses_less_than_a_point(digits, digits_teacher):
    for scale in ("max", "mse"):
        q = quantize_model(digits_teacher.model, QuantConfig(8, "channel", scale))
        acc = evaluate(q, digits.X_test, digits.y_test)["accuracy"]
        assert digits_teacher.metrics["accuracy"] - acc < 0.01
    assert not torch.equal(q[2].weight, digits_teacher.model[2].weight)   # it did quantize, a copy
    assert digits_teacher.model[2].weight.unique().numel() > 1000          # the shared teacher is untouched


def tiny_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))   # 12 + 6 weights, 3 + 2 biases


def test_byte_counts_match_a_hand_computation():
    m = tiny_model()
    # float32: 23 parameters × 4 bytes
    assert model_size(m).bytes == 92 == model_bytes(m)
    # 4 bits per channel: ceil(12·4/8)=6 + ceil(6·4/8)=3 bytes of codes, 3+2 scales × 4 B, 5 biases × 4 B
    r = model_size(m, 4, "channel")
    assert (r.weight_bytes, r.scale_bytes, r.other_bytes, r.bytes) == (9, 20, 20, 49)
    assert model_size(m, 4, "tensor").bytes == 9 + 8 + 20
    # binary per channel: ceil(12/8)=2 + ceil(6/8)=1, + 20 + 20
    assert model_size(m, 1, "channel").bytes == 43
    assert model_size(m, 8, "channel").bytes == 12 + 6 + 20 + 20


def test_sparse_encodings_are_counted_and_the_cheapest_is_chosen():
    m = tiny_model()
    with torch.no_grad():
        m[0].weight.zero_()
        m[0].weight[0, 0], m[0].weight[2, 3] = 1.0, -2.0       # 2 non-zeros of 12
    # layer 1: dense 12·32=384 bits; values+indices 2·(32+4)=72 bits = 9 B; bitmask 12+2·32=76 bits
    assert encoding_bits(12, 2, 32) == {"dense": 384, "values+indices": 72, "bitmask": 76}
    r = model_size(m)
    assert r.weight_bytes == 9 + 24 and r.bytes == 9 + 24 + 20 and r.encoding == "mixed"
    # at 2 bits: layer 1 values+indices 2·(2+4)=12 bits = 2 B (dense 24 bits, bitmask 16); layer 2 dense 12 bits = 2 B
    r2 = model_size(m, 2, "channel")
    assert r2.weight_bytes == 2 + 2 and r2.bytes == 4 + 20 + 20
    # binary cannot store a zero densely: a sparse binary layer must use a sparse encoding
    assert encoding_bits(12, 2, 1)["dense"] == math.inf
    assert model_size(m, 1).weight_bytes == math.ceil(min(2 * (1 + 4), 12 + 2) / 8) + 1


def test_straight_through_estimator_passes_the_gradient():
    """d loss / d latent weight equals d loss / d quantized weight (autograd on a plain quantized copy)."""
    torch.manual_seed(0)
    m = build_model(ModelConfig(hidden=(8,)), (1, 8, 8), 10)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    for cfg in (QuantConfig(2), QuantConfig(1)):
        plain = quantize_model(m, cfg).train()
        nn.functional.cross_entropy(plain(x), y).backward()
        qat = prepare_qat(copy.deepcopy(m), cfg)
        out = qat(x)
        assert torch.allclose(out, plain(x).detach(), atol=1e-6)   # forward uses the quantized weights
        nn.functional.cross_entropy(out, y).backward()
        for layer_q, layer_p in ((qat[1], plain[1]), (qat[3], plain[3])):
            g = layer_q.parametrizations.weight.original.grad
            assert g is not None and g.abs().sum() > 0
            assert torch.allclose(g, layer_p.weight.grad, atol=1e-6)
        finalize_qat(qat)
        assert not hasattr(qat[1], "parametrizations")
        assert torch.allclose(qat[1].weight, fake_quantize(qat[1].weight, cfg))   # baked: already quantized


def test_a_binary_qat_student_trains_from_the_teacher(digits, digits_teacher):
    student = seeded_model(lambda: build_model(ModelConfig(hidden=(32,)), digits.input_shape, 10), 0)
    before = evaluate(student, digits.X_test, digits.y_test)["accuracy"]
    model, hist = qat_distill(digits, digits_teacher.logits["train"], student, QuantConfig(1),
                              TrainConfig(epochs=8, lr=1e-2), KDConfig(4.0, 0.9, labelled_fraction=0.1), seed=0)
    after = evaluate(model, digits.X_test, digits.y_test)["accuracy"]
    assert hist.epochs_run == 8 and hist.logs[-1].train_loss < hist.logs[0].train_loss
    assert after > 0.6 and after > before + 0.3
    assert all(len(torch.unique(row)) == 2 for row in model[1].weight)   # still binary


def test_bad_configs_are_refused():
    with pytest.raises(ValueError):
        QuantConfig(3)
    with pytest.raises(ValueError):
        QuantConfig(8, "row")
    with pytest.raises(ValueError):
        QuantConfig(8, scale="percentile")
    with pytest.raises(ValueError):
        model_size(tiny_model(), 16)
    m = prepare_qat(tiny_model(), QuantConfig(4))
    with pytest.raises(ValueError):
        prepare_qat(m, QuantConfig(4))


def test_qat_of_a_pruned_model_keeps_it_sparse(digits, digits_teacher):
    student = seeded_model(lambda: build_model(ModelConfig(hidden=(16,)), digits.input_shape, 10), 0)
    pruned = torch.arange(64) % 4 != 0     # 75 % of the first layer's weights
    with torch.no_grad():
        student[1].weight[:, pruned] = 0
    model, _ = qat_distill(digits, digits_teacher.logits["train"], student, QuantConfig(2),
                           TrainConfig(epochs=1), KDConfig(4.0, 0.9), seed=0)
    assert torch.all(model[1].weight[:, pruned] == 0)
    # 1024 weights, ≤ 256 non-zeros at 2 bits: a bitmask (1024 + 2·nnz bits) beats dense (2048 bits)
    assert model_size(model, 2).encoding == "mixed"
