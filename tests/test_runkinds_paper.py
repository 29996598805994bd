"""The paper's run kinds (kdcore.runkinds_paper): driven as runs they give the direct engine calls'
numbers, their results round-trip through the codec bit for bit, and a stop keeps what was learned."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from kdcore import codec
from kdcore.distill import KDConfig
from kdcore.models import ModelConfig
from kdcore.runs import RunContext, RunSpec, drive, kind
from kdcore.runkinds_paper import hinton_config, specialists_config, student_config
from kdcore.specialists import SpecialistConfig, SpecialistRun
from kdcore.teachers import TeacherCache
from kdcore.train import TrainConfig
from kdcore.transfer import FractionCurve, LossComparisonRun, OmittedClassRun

STUDENT = ModelConfig(hidden=(16,))
SHORT = TrainConfig(epochs=3, batch_size=64, lr=1e-2)
KD = KDConfig(temperature=4, alpha=0.9, labelled_fraction=0.1)


@pytest.fixture(scope="module")
def ctx(digits_teacher, private_dirs):
    return RunContext(None, TeacherCache(private_dirs["cache"] / "teachers"))


def run_of(spec: RunSpec, ctx, stop_after: int | None = None):
    """Make and drive the run of `spec` (stopped after `stop_after` steps); (result, status)."""
    run = kind(spec.kind).make(spec.config, ctx)
    steps = []
    should_stop = (lambda: len(steps) >= stop_after) if stop_after is not None else None
    return drive(run, lambda p: steps.append(p), should_stop)


def _strip_skeletons(doc):
    if isinstance(doc, dict):
        return {k: _strip_skeletons(v) for k, v in doc.items() if k != "skeleton"}
    if isinstance(doc, list):
        return [_strip_skeletons(x) for x in doc]
    return doc


def assert_round_trip(result, ctx):
    """decode(encode(r)) encodes to the same document and bit-equal tensors (weights included)."""
    doc, tensors = codec.encode(result)
    back = codec.decode(doc, tensors, ctx)
    doc2, tensors2 = codec.encode(back)
    assert _strip_skeletons(doc2) == _strip_skeletons(doc)
    assert tensors2.keys() == tensors.keys()
    for k in tensors:
        assert tensors[k].dtype == tensors2[k].dtype and torch.equal(tensors[k], tensors2[k]), k
    return back


def weights_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_all_paper_kinds_are_registered():
    from kdcore.runs import kinds
    assert {"specialists", "transfer_fractions", "transfer_omitted", "transfer_losses", "hinton_mnist"} <= set(kinds())


def test_specialists_kind(digits, digits_teacher, ctx):
    cfg = SpecialistConfig(n_clusters=4, epochs=1, seed=0)
    spec = RunSpec("specialists", specialists_config(digits_teacher.spec, cfg))
    assert kind("specialists").requires(spec.config) == [RunSpec("teacher", digits_teacher.spec.to_dict())]
    res, status = run_of(spec, ctx)
    run = SpecialistRun(digits, digits_teacher.model, digits_teacher.logits, digits_teacher.spec.model, cfg,
                        digits_teacher.metrics)
    while not run.done:
        run.step()
    direct = run.result()
    assert status == "finished" and res.complete and res.clusters == direct.clusters
    assert torch.equal(res.covariance, direct.covariance)
    assert len(res.specialists) == len(direct.specialists) >= 3
    for a, b in zip(res.specialists, direct.specialists):
        assert a.cluster == b.cluster and torch.equal(a.test_logits, b.test_logits)
    assert res.report("kl") == direct.report("kl")
    back = assert_round_trip(res, ctx)
    assert all(weights_equal(a.model, b.model) for a, b in zip(back.specialists, res.specialists))
    assert back.report("approx") == res.report("approx")

    partial, status = run_of(spec, ctx, stop_after=2)
    assert status == "stopped" and len(partial.specialists) == 2 < partial.planned and not partial.complete
    assert all(torch.equal(a.test_logits, b.test_logits) for a, b in zip(partial.specialists, res.specialists))


def test_fraction_curve_kind(digits, digits_teacher, ctx):
    spec = RunSpec("transfer_fractions", student_config(digits_teacher.spec, STUDENT, SHORT, KD, 0,
                                                        fractions=[1.0, 0.1]))
    points, status = run_of(spec, ctx)
    curve = FractionCurve(digits, digits_teacher.logits, digits_teacher.metrics, STUDENT, SHORT, KD, [1.0, 0.1], 0)
    while not curve.done:
        curve.step()
    direct = curve.finish()
    assert status == "finished" and [p.fraction for p in points] == [0.1, 1.0]
    for a, b in zip(points, direct):
        assert (a.distilled, a.scratch, a.n_labelled, a.stopped) == (b.distilled, b.scratch, b.n_labelled, b.stopped)
        assert weights_equal(a.result.distilled, b.result.distilled)
    back = assert_round_trip(points, ctx)
    assert weights_equal(back[1].result.scratch, points[1].result.scratch)

    partial, status = run_of(spec, ctx, stop_after=2)
    assert status == "stopped" and len(partial) == 1
    assert partial[0].stopped and partial[0].epochs_run == 2 and partial[0].fraction == 0.1


def test_omitted_class_kind(digits, digits_teacher, ctx):
    spec = RunSpec("transfer_omitted", student_config(digits_teacher.spec, STUDENT, SHORT, KD, 0, omitted=3))
    res, status = run_of(spec, ctx)
    run = OmittedClassRun(digits, digits_teacher.logits, digits_teacher.metrics, 3, STUDENT, SHORT, KD, 0)
    while not run.done:
        run.step()
    direct = run.result()
    assert status == "finished" and not res.stopped
    assert torch.equal(res.distilled_test_logits, direct.distilled_test_logits)
    assert torch.equal(res.scratch_test_logits, direct.scratch_test_logits)
    assert (res.auto_bias, res.n_transfer, res.class_name) == (direct.auto_bias, direct.n_transfer, direct.class_name)
    back = assert_round_trip(res, ctx)
    assert weights_equal(back.distilled.distilled, res.distilled.distilled)
    assert back.evaluate_bias(2.0) == res.evaluate_bias(2.0)

    partial, status = run_of(spec, ctx, stop_after=2)
    assert status == "stopped" and partial.stopped and partial.distilled.distilled_history.epochs_run == 2
    nothing, status = run_of(spec, ctx, stop_after=0)
    assert status == "stopped" and nothing is None        # stopped before the first epoch: nothing kept


def test_loss_comparison_kind(digits, digits_teacher, ctx):
    spec = RunSpec("transfer_losses", student_config(digits_teacher.spec, STUDENT, SHORT, KD, 0))
    res, status = run_of(spec, ctx)
    run = LossComparisonRun(digits, digits_teacher.logits, digits_teacher.metrics, STUDENT, SHORT, KD, 0)
    while not run.done:
        run.step()
    direct = run.result()
    assert status == "finished" and not res.stopped and res.metrics == direct.metrics
    assert all(weights_equal(res.models[k], direct.models[k]) for k in direct.models)
    back = assert_round_trip(res, ctx)
    assert all(weights_equal(back.models[k], res.models[k]) for k in res.models)
    assert back.histories["soft"].to_records() == res.histories["soft"].to_records()

    partial, status = run_of(spec, ctx, stop_after=2)
    assert status == "stopped" and partial.stopped and partial.histories["hard"].epochs_run == 2


def test_hinton_kind(mnist_root, tmp_path):
    from kdcore.hinton import PRESETS, run_hinton_mnist
    ctx = RunContext(None, TeacherCache(tmp_path / "run"), data_root=mnist_root)
    spec = RunSpec("hinton_mnist", hinton_config(PRESETS["tiny"], 0, "cpu"))
    res, status = run_of(spec, ctx)
    direct = run_hinton_mnist("tiny", 0, mnist_root, TeacherCache(tmp_path / "direct"), device="cpu")
    assert status == "finished" and not res.stopped and ctx.teachers.trained == 1
    assert res.errors == direct.errors and res.best_bias == direct.best_bias
    assert torch.equal(res.omitted_test_logits, direct.omitted_test_logits)
    assert all(weights_equal(res.models[k], direct.models[k]) for k in direct.models)
    assert set(res.histories) == {"teacher", "distilled", "hard", "omitted"}
    back = assert_round_trip(res, ctx)
    assert back.preset == res.preset and back.errors == res.errors
    assert all(weights_equal(back.models[k], res.models[k]) for k in res.models)

    # the teacher is cached now: step 1 is the students' epoch; with two student epochs, stop after 2 steps
    preset = dataclasses.replace(PRESETS["tiny"], student_train=TrainConfig(epochs=2, batch_size=128, lr=3e-3))
    run = kind("hinton_mnist").make(hinton_config(preset, 0, "cpu"), ctx)
    steps = []
    partial, status = drive(run, lambda p: steps.append(p), lambda: len(steps) >= 2)
    assert status == "stopped" and partial.stopped and run.stepper.finished and len(steps) == 2
    assert steps[-1].curves == {"students": [l["val_acc"] for l in partial.histories["distilled"]]}
    assert {"teacher", "distilled", "hard"} <= set(partial.errors) and "omitted" not in partial.errors
    assert ctx.teachers.trained == 1          # the teacher came from the cache

    # stopped while its teacher trains: nothing is kept (a stopped teacher is never used)
    fresh = RunContext(None, TeacherCache(tmp_path / "fresh"), data_root=mnist_root)
    slow_teacher = dataclasses.replace(PRESETS["tiny"], teacher_train=TrainConfig(epochs=2, batch_size=128, lr=3e-3,
                                                                                  jitter=2))
    nothing, status = run_of(RunSpec("hinton_mnist", hinton_config(slow_teacher, 0, "cpu")), fresh, stop_after=1)
    assert status == "stopped" and nothing is None and fresh.teachers.trained == 0


def test_stop_on_the_transfer_page_keeps_what_was_learned(digits_teacher, open_page, wait_for_runs):
    import time
    from ui import runs
    at = open_page("pages/transfer_set.py")
    at.number_input(key="tl_epochs").set_value(300)
    next(b for b in at.button if b.label == "Compare the losses").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    run_id = at.session_state["current_runs"][("transfer_losses", "digits", 0)]
    deadline = time.monotonic() + 120
    while not (runs.view(run_id).status == "running" and runs.view(run_id).fraction > 0):   # an epoch ended
        assert time.monotonic() < deadline, "the run did not start"
        time.sleep(0.2)
    at.run()
    assert any("epoch" in p.proto.text for p in at.get("progress"))
    at.button(key="transfer_losses_stop").click()
    at.run()
    wait_for_runs(at)
    assert not at.exception, [e.value for e in at.exception]
    assert runs.view(run_id).status == "stopped"
    assert any("stopped before it finished" in w.value for w in at.warning)
    assert any("(stopped early)" in c.value for c in at.caption)
    res = runs.result(run_id)
    assert res.stopped and 0 < res.histories["soft"].epochs_run < 300
    # the page finds the stored, stopped result again after navigating away and back
    at.switch_page("pages/distill.py").run()
    at.switch_page("pages/transfer_set.py").run()
    assert any("(stopped early)" in c.value for c in at.caption)
