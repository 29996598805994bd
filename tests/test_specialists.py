"""Specialists: covariance clustering on a constructed example, dustbin labels, the paper's combination
(closed form against EM and against the gradient), a short run on digits, and the Specialists page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kdcore.models import ModelConfig
from kdcore.specialists import (SpecialistConfig, SpecialistRun, cluster_classes, combine_approx, combine_kl,
                                enriched_indices, kl_objective, map_labels,
                                prediction_covariance, specialist_clusters, specialist_model)
from kdcore.train import predict_logits
from kdcore.viz.specialists import covariance_heatmap, per_class_bars

ROOT = Path(__file__).resolve().parents[1]


def constructed_predictions(groups, n_per_class=60, seed=0):
    """Predicted distributions where each example's mass spreads over its class's group only."""
    rng = np.random.default_rng(seed)
    c = sum(len(g) for g in groups)
    rows = []
    for g in groups:
        for cls in g:
            for _ in range(n_per_class):
                p = np.full(c, 1e-3)
                share = rng.dirichlet(np.ones(len(g)))
                p[g] += share
                p[cls] += 1.0              # the true class stays the most likely
                rows.append(p / p.sum())
    return torch.tensor(np.array(rows))


def test_covariance_matches_numpy():
    p = constructed_predictions([[0, 1], [2, 3, 4]])
    assert np.allclose(prediction_covariance(p).numpy(), np.cov(p.numpy(), rowvar=False), atol=1e-12)


@pytest.mark.parametrize("groups", [[[0, 1, 2], [3, 4, 5]], [[0, 3], [1, 4, 6], [2, 5], [7]]])
def test_clustering_groups_classes_whose_predictions_covary(groups):
    p = constructed_predictions(groups)
    clusters = cluster_classes(prediction_covariance(p), len(groups), seed=0)
    assert sorted(map(tuple, clusters)) == sorted(tuple(sorted(g)) for g in groups)
    # deterministic
    assert cluster_classes(prediction_covariance(p), len(groups), seed=0) == clusters


def test_clusters_that_get_a_specialist():
    assert specialist_clusters([[0, 1], [2], [3, 4, 5]], 6) == [[0, 1], [3, 4, 5]]
    assert specialist_clusters([[0, 1, 2]], 3) == []
    with pytest.raises(ValueError):
        cluster_classes(np.eye(3), 4)


def test_dustbin_labels_and_enrichment():
    y = torch.tensor([0, 1, 2, 3, 4, 1, 3, 3, 0, 2, 4, 4])
    assert map_labels(y, [1, 3]).tolist() == [2, 0, 2, 1, 2, 0, 1, 1, 2, 2, 2, 2]
    idx = enriched_indices(y, [1, 3], seed=0)
    assert len(set(idx.tolist())) == len(idx)
    inside = torch.isin(y[idx], torch.tensor([1, 3]))
    assert int(inside.sum()) == 5 and int((~inside).sum()) == 5   # all 5 of the cluster, as many others
    assert torch.equal(idx, enriched_indices(y, [1, 3], seed=0))


def random_case(n=40, c=6, cluster=(1, 4, 5), seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    gen = torch.randn(n, c, generator=g, dtype=torch.float64) * scale
    gen[:, list(cluster)] += 2.0   # most examples have their top class in the cluster
    spec = torch.randn(n, len(cluster) + 1, generator=g, dtype=torch.float64) * scale
    return gen, spec


def test_kl_closed_form_matches_em_and_is_optimal():
    cluster = [1, 4, 5]
    gen, spec = random_case(cluster=tuple(cluster))
    exact = combine_kl(gen, [spec], [cluster])
    numeric = combine_kl(gen, [spec], [cluster], closed_form=False)
    assert torch.allclose(exact.exp(), numeric.exp(), atol=1e-7)
    active = torch.isin(gen.argmax(1), torch.tensor(cluster))
    assert bool(active.any()) and not bool(active.all())
    a = torch.ones(int(active.sum()), 1, dtype=torch.bool)
    with torch.no_grad():
        o_exact = kl_objective(exact[active], gen[active], [spec[active]], [cluster], a)
        o_numeric = kl_objective(numeric[active], gen[active], [spec[active]], [cluster], a)
    assert bool((o_exact <= o_numeric + 1e-12).all()) and float((o_numeric - o_exact).max()) < 1e-6
    # inactive examples keep the generalist's distribution
    assert torch.allclose(exact[~active].exp(), torch.softmax(gen[~active], 1), atol=1e-12)
    # active ones: the objective's gradient vanishes at the solution, and nothing nearby is lower
    z = exact[active].clone().requires_grad_(True)
    obj = kl_objective(z, gen[active], [spec[active]], [cluster], a)
    obj.sum().backward()
    assert float(z.grad.abs().max()) < 1e-9
    approx = combine_approx(gen, [spec], [cluster])
    with torch.no_grad():
        at_approx = kl_objective(approx[active], gen[active], [spec[active]], [cluster], a)
        at_gen = kl_objective(torch.log_softmax(gen[active], 1), gen[active], [spec[active]], [cluster], a)
        assert bool((obj <= at_approx + 1e-12).all()) and bool((obj <= at_gen + 1e-12).all())
        for _ in range(5):
            bumped = kl_objective(z + 0.05 * torch.randn_like(z), gen[active], [spec[active]], [cluster], a)
            assert bool((obj <= bumped + 1e-12).all())


def test_kl_with_two_active_specialists_uses_em():
    gen, s1 = random_case(cluster=(0, 1), seed=1)
    _, s2 = random_case(cluster=(2, 3, 4), seed=2)
    out = combine_kl(gen, [s1, s2], [[0, 1], [2, 3, 4]], top_n=6)   # top 6 of 6: both always active
    z = out.clone().requires_grad_(True)
    a = torch.ones(len(gen), 2, dtype=torch.bool)
    kl_objective(z, gen, [s1, s2], [[0, 1], [2, 3, 4]], a).sum().backward()
    assert float(z.grad.abs().max()) < 1e-5
    assert torch.allclose(out.exp().sum(1), torch.ones(len(gen), dtype=torch.float64))


def test_a_specialist_that_agrees_with_the_generalist_changes_nothing():
    cluster = [0, 2]
    gen, _ = random_case(cluster=tuple(cluster), seed=3)
    p = torch.softmax(gen, 1)
    reduced = torch.cat([p[:, cluster], p[:, [1, 3, 4, 5]].sum(1, keepdim=True)], 1)
    for fn in (combine_kl, combine_approx):
        assert torch.allclose(fn(gen, [reduced.log()], [cluster]).exp(), p, atol=1e-9)


def test_approximation_by_hand():
    gen = torch.log(torch.tensor([[0.5, 0.3, 0.1, 0.1]], dtype=torch.float64))
    spec = torch.log(torch.tensor([[0.2, 0.6, 0.2]], dtype=torch.float64))    # classes 0, 1 + dustbin
    q = combine_approx(gen, [spec], [[0, 1]]).exp()
    # mass 0.8 on the cluster, split 1:3 as the specialist's in-cluster distribution
    assert torch.allclose(q, torch.tensor([[0.2, 0.6, 0.1, 0.1]], dtype=torch.float64))
    exact = combine_kl(gen, [spec], [[0, 1]]).exp()
    # closed form by hand: inside (p_g + p_m) / 2; outside p_g scaled by (0.2 + 0.2) / (2 · 0.2)
    assert torch.allclose(exact, torch.tensor([[0.35, 0.45, 0.1, 0.1]], dtype=torch.float64))


def test_specialist_from_the_generalist_keeps_its_cluster_logits(digits, digits_teacher):
    cluster = [3, 5, 9]
    model = specialist_model(cluster, digits, digits_teacher.spec.model, "generalist", digits_teacher.model, 0)
    out = predict_logits(model, digits.X_test[:50])
    assert out.shape == (50, 4)
    assert torch.allclose(out[:, :3], digits_teacher.logits["test"][:50, cluster], atol=1e-5)
    # the shared teacher is untouched
    assert digits_teacher.model[-1].out_features == 10
    fresh = specialist_model(cluster, digits, ModelConfig(hidden=(16,)), "scratch", None, 0)
    assert predict_logits(fresh, digits.X_test[:5]).shape == (5, 4)


def test_specialist_run_on_digits(digits, digits_teacher):
    cfg = SpecialistConfig(n_clusters=4, epochs=1, seed=0)
    run = SpecialistRun(digits, digits_teacher.model, digits_teacher.logits, digits_teacher.spec.model, cfg)
    assert sorted(c for cl in run.clusters for c in cl) == list(range(10))
    assert all(2 <= len(t) < 10 for t in run.targets) and run.targets
    while not run.done:
        run.step()
    res = run.result()
    assert res.complete and len(res.specialists) == len(run.targets)
    for sp in res.specialists:
        assert sp.test_logits.shape == (len(digits.y_test), len(sp.cluster) + 1)
    for method in ("kl", "approx"):
        rep = res.report(method)
        assert rep["fixed"] - rep["broken"] == round((rep["combined"] - rep["generalist"]) * len(digits.y_test))
        assert rep["generalist"] == pytest.approx(digits_teacher.metrics["accuracy"])
    again = SpecialistRun(digits, digits_teacher.model, digits_teacher.logits, digits_teacher.spec.model, cfg)
    assert again.clusters == run.clusters
    fig = covariance_heatmap(res.covariance, res.clusters, digits.class_names)
    assert fig.layout.title.text and fig.layout.xaxis.title.text and len(fig.layout.shapes) == len(res.clusters)
    assert per_class_bars(res.report()["per_class"]).layout.yaxis.title.text
    with pytest.raises(ValueError):
        SpecialistRun(digits, digits_teacher.model, digits_teacher.logits, digits_teacher.spec.model,
                      SpecialistConfig(n_clusters=10))


def test_specialists_page(digits_teacher, open_page, wait_for_runs):
    at = open_page("pages/specialists.py")
    assert not at.exception
    at.number_input(key="spec_epochs").set_value(1)
    next(b for b in at.button if b.label == "Train specialists").click()
    at.run()
    assert not at.exception, at.exception
    wait_for_runs(at)
    assert not at.exception, at.exception
    assert len(at.metric) == 3
    at.radio(key="spec_combine").set_value("approx")
    at.run()
    assert not at.exception
    assert "changed" in " ".join(m.value for m in [*at.success, *at.warning, *at.info])
