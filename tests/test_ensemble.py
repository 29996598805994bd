"""Ensemble teachers: the two means against hand-made distributions, members through the cache,
one student distilled from the ensemble, and the Ensembles page."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from kdcore.distill import KDConfig
from kdcore.ensemble import (EnsembleDistillRun, build_ensemble, combine_logits, distill_from_ensemble,
                             make_ensemble, member_specs)
from kdcore.losses import soften
from kdcore.metrics import accuracy
from kdcore.models import ModelConfig
from kdcore.teachers import TeacherCache, TeacherSpec
from kdcore.train import TrainConfig
from kdcore.viz.ensembles import ensemble_bars

ROOT = Path(__file__).resolve().parents[1]

P1 = [0.7, 0.2, 0.1]
P2 = [0.1, 0.6, 0.3]


def logits_of(*dists):
    # any logits whose softmax is the distribution: log p plus an arbitrary per-row shift
    return [torch.log(torch.tensor([d], dtype=torch.float64)) + 3.0 * i for i, d in enumerate(dists)]


def test_arithmetic_mean_against_hand_computed():
    out = combine_logits(logits_of(P1, P2), "arithmetic")
    assert torch.allclose(torch.softmax(out, 1), torch.tensor([[0.4, 0.4, 0.2]], dtype=torch.float64), atol=1e-12)


def test_geometric_mean_against_hand_computed():
    out = combine_logits(logits_of(P1, P2), "geometric")
    raw = [math.sqrt(a * b) for a, b in zip(P1, P2)]       # sqrt(.07), sqrt(.12), sqrt(.03)
    expected = torch.tensor([[r / sum(raw) for r in raw]], dtype=torch.float64)
    assert torch.allclose(torch.softmax(out, 1), expected, atol=1e-12)
    assert abs(float(torch.softmax(out, 1)[0, 1]) - 0.34641016 / 0.78419037) < 1e-7


def test_three_members_against_hand_computed():
    p3 = [0.2, 0.2, 0.6]
    arith = torch.softmax(combine_logits(logits_of(P1, P2, p3), "arithmetic"), 1)[0]
    assert torch.allclose(arith, torch.tensor([1.0 / 3, 1.0 / 3, 1.0 / 3], dtype=torch.float64), atol=1e-12)
    geo = torch.softmax(combine_logits(logits_of(P1, P2, p3), "geometric"), 1)[0]
    raw = torch.tensor([(a * b * c) ** (1 / 3) for a, b, c in zip(P1, P2, p3)], dtype=torch.float64)
    assert torch.allclose(geo, raw / raw.sum(), atol=1e-12)


@pytest.mark.parametrize("T", [1.0, 2.5, 7.0])
def test_soft_targets_at_T_are_the_mean_of_softened_members(T):
    g = torch.Generator().manual_seed(0)
    members = [torch.randn(50, 6, generator=g) * 4 for _ in range(4)]
    arith = soften(combine_logits(members, "arithmetic", T), T)
    expected = torch.stack([soften(z, T) for z in members]).mean(0)
    assert torch.allclose(arith, expected, atol=1e-6)
    geo = soften(combine_logits(members, "geometric", T), T)
    log_mean = torch.stack([torch.log_softmax(z / T, 1) for z in members]).mean(0)
    assert torch.allclose(geo, torch.softmax(log_mean, 1), atol=1e-6)
    # the geometric mean of softened members is the softened mean logit (temperature commutes with it)
    assert torch.allclose(geo, soften(torch.stack(members).mean(0), T), atol=1e-6)
    # a single member is itself, at any temperature
    assert torch.allclose(soften(combine_logits(members[:1], "arithmetic", T), T), soften(members[0], T), atol=1e-6)


def test_combine_rejects_bad_input():
    with pytest.raises(ValueError):
        combine_logits([torch.zeros(2, 3)], "median")
    with pytest.raises(ValueError):
        combine_logits([], "arithmetic")
    with pytest.raises(ValueError):
        combine_logits([torch.zeros(2, 3)], "arithmetic", temperature=0)


def test_member_specs_seeds_and_widths():
    base = TeacherSpec("digits", 0, ModelConfig(hidden=(64, 64)), TrainConfig(epochs=2), seed=5)
    specs = member_specs(base, 3)
    assert specs[0] == base and [s.seed for s in specs] == [5, 6, 7]
    assert len({s.key for s in specs}) == 3
    varied = member_specs(base, 3, widths=[32, 16])
    assert [s.model.hidden for s in varied] == [(32, 32), (16, 16), (32, 32)]
    with pytest.raises(ValueError):
        member_specs(base, 0)
    with pytest.raises(ValueError):
        member_specs(base, 2, widths=[0])


TINY = TeacherSpec("digits", 0, ModelConfig(hidden=(32,)), TrainConfig(epochs=3, lr=1e-2), seed=0)


@pytest.fixture(scope="module")
def tiny_ensemble(digits, tmp_path_factory):
    cache = TeacherCache(tmp_path_factory.mktemp("ens") / "teachers")
    ens = build_ensemble(digits, member_specs(TINY, 3), "arithmetic", cache)
    return ens, cache


def test_members_are_cached_like_teachers(digits, tiny_ensemble):
    ens, cache = tiny_ensemble
    assert ens.n_members == 3 and ens.complete and cache.trained == 3
    fresh = TeacherCache(cache.root)   # a new process: only the disk
    again = build_ensemble(digits, member_specs(TINY, 3), "geometric", fresh)
    assert fresh.trained == 0 and all(m.from_cache for m in again.members)
    for a, b in zip(ens.members, again.members):
        assert torch.allclose(a.logits["test"], b.logits["test"], atol=1e-6)


def test_ensemble_metrics_module_and_soft_targets(digits, tiny_ensemble):
    ens, _ = tiny_ensemble
    test = [m.logits["test"] for m in ens.members]
    assert torch.allclose(ens.logits["test"], combine_logits(test, "arithmetic"))
    assert ens.metrics["accuracy"] == pytest.approx(accuracy(ens.logits["test"], digits.y_test))
    assert ens.metrics["params"] == sum(m.metrics["params"] for m in ens.members)
    module = ens.module()
    with torch.no_grad():
        assert torch.allclose(module(digits.X_test), ens.logits["test"], atol=1e-5)
    soft = ens.soft_targets(4.0)
    assert torch.allclose(soft["train"], combine_logits([m.logits["train"] for m in ens.members], "arithmetic", 4.0))
    assert soft["test"] is ens.logits["test"]
    # the module holds copies: the shared cached teachers are never touched
    assert all(p is not q for p, q in zip(module.members[0].parameters(), ens.members[0].model.parameters()))
    assert ens.combined_accuracy("geometric", digits.y_test) > 0.5
    fig = ensemble_bars([{"model": "a", "role": "member", "accuracy": 0.9, "params": 10}])
    assert fig.layout.title.text and fig.layout.yaxis.title.text


def test_partial_ensemble_after_a_stop(digits, tiny_ensemble):
    ens, _ = tiny_ensemble
    partial = make_ensemble(ens.members[:2], digits, "geometric", planned=3)
    assert not partial.complete and partial.n_members == 2


def test_distill_from_ensemble_shares_init_and_is_deterministic(digits, tiny_ensemble):
    ens, _ = tiny_ensemble
    student, train = ModelConfig(hidden=(8,)), TrainConfig(epochs=2, lr=1e-2)
    kd = KDConfig(temperature=3.0, alpha=0.9, labelled_fraction=0.2)
    run = EnsembleDistillRun(digits, ens, student, train, kd, seed=1)
    for a, b, c in zip(run.run.distilled.parameters(), run.run.scratch.parameters(), run.single.parameters()):
        assert torch.equal(a, b) and torch.equal(a, c)
    while not run.done:
        run.step()
    res = run.result()
    again = distill_from_ensemble(digits, ens, student, train, kd, seed=1)
    assert res.result.distilled_metrics["accuracy"] == again.result.distilled_metrics["accuracy"]
    assert res.single_metrics["accuracy"] == again.single_metrics["accuracy"]
    assert not res.stopped_early and len(res.rows()) == 3
    assert "member 1" in res.single_member and res.summary()
    # the student from the ensemble and the one from a single member did learn different things
    assert not all(torch.equal(a, b) for a, b in zip(res.result.distilled.parameters(), res.single.parameters()))


def test_ensembles_page(open_page, wait_for_runs):
    from ui import runs
    at = open_page("pages/ensembles.py")
    assert not at.exception
    at.number_input(key="ens_members").set_value(2)
    at.number_input(key="ens_epochs").set_value(2)
    at.number_input(key="ens_student_epochs").set_value(2)
    # the members' settings are in their own form: submitted with "Train ensemble"
    next(b for b in at.button if b.label == "Train ensemble").click()
    at.run()   # submits the members' run and returns at once
    assert not at.exception, at.exception
    wait_for_runs(at)
    assert not at.exception, at.exception
    assert any("ensemble of 2" in s.value for s in at.success)
    next(b for b in at.button if b.label == "Distill from the ensemble").click()
    at.run()   # the members' run is the finished one; the student's run is queued
    assert not at.exception, at.exception
    wait_for_runs(at)
    assert not at.exception, at.exception
    text = " ".join(m.value for m in at.markdown) + " ".join(s.value for s in at.success) \
        + " ".join(s.value for s in at.info) + " ".join(s.value for s in at.warning)
    assert "ensemble" in text.lower()
    roles = {r.role for r in at.session_state["session_models"].values()}
    assert {"ensemble", "distilled"} <= roles
    current = dict(at.session_state["current_runs"])
    assert runs.runner().view(current[("ensemble_distill", "digits", 0)]).status == "finished"
    # a view-only widget does not retrain
    at.radio(key="ens_curve").set_value("train_loss")
    at.run()
    assert not at.exception
    assert dict(at.session_state["current_runs"]) == current and not runs.runner().active(at.session_state["ws"])


def test_ensembles_page_keeps_finished_members_after_a_stop(digits, tiny_ensemble, open_page):
    from kdcore.runkinds_ensemble import ensemble_config
    from kdcore.runs import RunSpec
    from ui import runs

    ens, _ = tiny_ensemble
    # a members' run stopped while member 3 trained: its stored result holds the two finished members
    store = runs.store()
    rec = store.create(RunSpec("ensemble", ensemble_config(member_specs(TINY, 3), "arithmetic")), "stopped build")
    store.save_result(rec.id, make_ensemble(ens.members[:2], digits, "arithmetic", planned=3), "stopped", 1.0)
    store.link("stoptest1", rec.id)
    at = open_page("pages/ensembles.py", session={"ws": "stoptest1"})
    assert not at.exception, at.exception
    assert any("2 of 3 members" in w.value for w in at.warning), [e.value for e in [*at.warning, *at.info, *at.error]]
    assert at.dataframe[0].value.shape[0] == 2 + 2   # two members, the two combinations
    roles = [r.role for r in at.session_state["session_models"].values()]
    assert roles.count("ensemble") == 1


def test_ensembles_page_stop_keeps_the_finished_members(open_page, wait_for_runs):
    import time

    from ui import runs
    at = open_page("pages/ensembles.py")
    at.number_input(key="ens_members").set_value(3)
    at.number_input(key="ens_epochs").set_value(120)
    at.text_input(key="ens_widths").set_value("24")
    next(b for b in at.button if b.label == "Train ensemble").click()
    at.run()
    run_id = at.session_state["current_runs"][("ensemble", "digits", 0)]
    deadline = time.monotonic() + 200
    while runs.runner().view(run_id).fraction < 1 / 3 + 2 / 360:   # member 1 done, member 2 two epochs in
        assert time.monotonic() < deadline
        time.sleep(0.05)
    at.run()   # the live view, with its Stop button
    assert not at.exception, at.exception
    at.button(key="ens_build_stop").click()
    at.run()
    wait_for_runs(at)
    assert not at.exception, at.exception
    assert runs.runner().view(run_id).status == "stopped"
    kept = runs.store().load_result(run_id, None).n_members   # member 2 may have ended before the Stop
    assert kept in (1, 2) and any(f"{kept} of 3 members" in w.value for w in at.warning)
    assert at.dataframe[0].value.shape[0] == kept + 2   # the finished members and the two combinations
