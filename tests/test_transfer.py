"""The transfer-set lab: labelled-fraction curves, the omitted class and its bias, the loss comparison."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from kdcore.distill import DistillRun, KDConfig
from kdcore.models import ModelConfig
from kdcore.train import TrainConfig
from kdcore.transfer import (FractionCurve, LossComparisonRun, OmittedClassRun, adjust_bias, auto_bias,
                             bias_curve, fraction_curve, teacher_share, without_class)

ROOT = Path(__file__).resolve().parents[1]
STUDENT = ModelConfig(hidden=(16,))
SHORT = TrainConfig(epochs=3, batch_size=64, lr=1e-2)


def test_without_class_removes_every_trace_of_the_class(digits, digits_teacher):
    reduced, logits = without_class(digits, digits_teacher.logits, 3)
    keep = digits.y_train != 3
    assert int((digits.y_train == 3).sum()) > 0
    assert not bool((reduced.y_train == 3).any())
    assert len(reduced.X_train) == len(reduced.y_train) == len(logits["train"]) == int(keep.sum())
    # the rows kept are exactly the other classes' rows, inputs and teacher logits alike
    assert torch.equal(reduced.X_train, digits.X_train[keep])
    assert torch.equal(logits["train"], digits_teacher.logits["train"][keep])
    # no input of the omitted class is left (compare against every 3 of the original set)
    threes = digits.X_train[digits.y_train == 3].flatten(1)
    dists = torch.cdist(threes, reduced.X_train.flatten(1))
    assert float(dists.min()) > 0
    # measuring splits are untouched
    assert torch.equal(reduced.y_test, digits.y_test) and torch.equal(logits["test"], digits_teacher.logits["test"])
    with pytest.raises(ValueError):
        without_class(digits, digits_teacher.logits, 10)


def test_omitted_run_trains_on_a_set_without_the_class(digits, digits_teacher):
    run = OmittedClassRun(digits, digits_teacher.logits, digits_teacher.metrics, 3, STUDENT, SHORT,
                          KDConfig(temperature=4, alpha=0.9), seed=0)
    for trainer in (run.run.students["distilled"].trainer, run.run.students["scratch"].trainer):
        assert not bool((trainer.y == 3).any())
        assert len(trainer.X) == run.n_transfer == int((digits.y_train != 3).sum())


def test_adjust_bias_changes_only_that_class():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 10, generator=g)
    out = adjust_bias(logits, 3, 2.5)
    assert torch.allclose(out[:, 3], logits[:, 3] + 2.5)
    others = [c for c in range(10) if c != 3]
    assert torch.equal(out[:, others], logits[:, others])
    assert torch.equal(adjust_bias(logits, 3, 0.0), logits)
    assert out is not logits and not torch.equal(out, logits)   # a new tensor; the input is not modified


def test_bias_curve_matches_adjust_bias_and_argmax():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(400, 5, generator=g) * 3
    y = torch.randint(0, 5, (400,), generator=g)
    biases = [-4.0, -1.0, 0.0, 0.7, 2.0, 6.0]
    curve = bias_curve(logits, y, 2, biases)
    for i, b in enumerate(biases):
        pred = adjust_bias(logits, 2, b).argmax(1)
        assert curve.errors[i] == int((pred != y).sum())
        assert curve.class_errors[i] == int((pred[y == 2] != 2).sum())
        assert curve.accuracy[i] == pytest.approx(float((pred == y).float().mean()))
        assert curve.class_accuracy[i] == pytest.approx(float((pred[y == 2] == 2).float().mean()))


@pytest.mark.parametrize("share", [0.0, 0.05, 0.1, 0.37, 1.0])
def test_auto_bias_hits_the_target_share(share):
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(1000, 10, generator=g)
    logits[:, 3] -= 5                       # a class the model hardly ever predicts, as if never seen
    b = auto_bias(logits, 3, share)
    predicted = float((adjust_bias(logits, 3, b).argmax(1) == 3).float().mean())
    assert predicted == pytest.approx(share, abs=1e-3)


def test_teacher_share():
    logits = torch.eye(4)[[0, 1, 1, 3]]
    assert teacher_share(logits, 1) == 0.5 and teacher_share(logits, 2) == 0.0


def test_fraction_curve_points_are_distill_runs(digits, digits_teacher):
    kd = KDConfig(temperature=4, alpha=0.9)
    seen = []
    points = fraction_curve(digits, digits_teacher.logits, digits_teacher.metrics, STUDENT, SHORT, kd,
                            fractions=[1.0, 0.1], seed=0, on_point=lambda p: seen.append(p.fraction))
    assert [p.fraction for p in points] == [0.1, 1.0] == seen      # sorted, one callback per finished run
    assert points[0].n_labelled < points[1].n_labelled == len(digits.y_train)
    # each point is exactly a DistillRun at that fraction (same seed, same numbers)
    run = DistillRun(digits, digits_teacher.logits, digits_teacher.metrics, STUDENT, SHORT,
                     dataclasses.replace(kd, labelled_fraction=0.1), 0)
    while not run.done:
        run.step()
    res = run.result()
    assert points[0].distilled["accuracy"] == res.distilled_metrics["accuracy"]
    assert points[0].scratch["accuracy"] == res.scratch_metrics["accuracy"]


def test_fraction_curve_stopped_midway_keeps_partial_point(digits, digits_teacher):
    curve = FractionCurve(digits, digits_teacher.logits, digits_teacher.metrics, STUDENT, SHORT,
                          KDConfig(), fractions=[0.05, 0.5], seed=0)
    for _ in range(SHORT.epochs + 1):    # the first fraction and one epoch of the second
        curve.step()
    assert 0 < curve.progress < 1 and len(curve.points) == 1
    points = curve.finish()
    assert [p.stopped for p in points] == [False, True] and points[1].epochs_run == 1
    with pytest.raises(ValueError):
        FractionCurve(digits, digits_teacher.logits, digits_teacher.metrics, STUDENT, SHORT, KDConfig(),
                      fractions=[0.0])


def test_omitted_class_recovered_by_soft_targets_and_bias(digits, digits_teacher):
    """The distilled student learns the class it never saw; the scratch one cannot."""
    train = TrainConfig(epochs=30, batch_size=64, lr=1e-2)
    run = OmittedClassRun(digits, digits_teacher.logits, digits_teacher.metrics, 3, STUDENT, train,
                          KDConfig(temperature=4, alpha=0.9), seed=0)
    while not run.done:
        run.step()
    res = run.result()
    scratch0 = res.evaluate_bias(0.0, "scratch")
    distilled_auto = res.evaluate_bias(res.auto_bias, "distilled")
    assert scratch0["class_accuracy"] < 0.05            # never saw a 3, never says 3
    assert distilled_auto["class_accuracy"] > 0.5       # learned 3s from the other digits' soft targets
    assert distilled_auto["class_accuracy"] >= res.evaluate_bias(0.0)["class_accuracy"]


def test_loss_comparison_students_share_init_and_differ_by_loss(digits, digits_teacher):
    kd = KDConfig(temperature=4, alpha=0.9, labelled_fraction=0.1)
    run = LossComparisonRun(digits, digits_teacher.logits, digits_teacher.metrics, STUDENT, SHORT, kd, seed=0)
    states = [m.state_dict() for m in run.models.values()]
    for s in states[1:]:
        assert all(torch.equal(s[k], states[0][k]) for k in s)
    assert run.trainers["soft"].loss_kind == "kd" and run.trainers["logits"].loss_kind == "logits"
    assert run.trainers["hard"].loss_kind == "ce" and len(run.trainers["hard"].X) == run.n_labelled
    while not run.done:
        run.step()
    res = run.result()
    assert set(res.metrics) == {"soft", "logits", "hard"} and not res.stopped
    first = {k: next(m.parameters()).detach() for k, m in res.models.items()}
    assert not torch.equal(first["soft"], first["logits"]) and not torch.equal(first["soft"], first["hard"])


def test_transfer_page(digits_teacher, open_page, wait_for_runs):
    from ui import runs
    at = open_page("pages/transfer_set.py")
    assert not at.exception
    for key in ("tf_epochs", "to_epochs", "tl_epochs"):
        at.number_input(key=key).set_value(3)
    at.multiselect(key="tf_fracs").set_value([0.05, 1.0])
    # the three experiments run as jobs side by side; the page returns at once each time
    for label in ("Run the curve", "Train without it", "Compare the losses"):
        next(b for b in at.button if b.label == label).click()
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    wait_for_runs(at)
    assert not at.exception, [e.value for e in at.exception]
    current = at.session_state["current_runs"]
    results = {what: runs.result(current[(f"transfer_{what}", "digits", 0)])
               for what in ("fractions", "omitted", "losses")}
    assert all(r is not None for r in results.values())
    assert [p.fraction for p in results["fractions"]] == [0.05, 1.0]
    assert len(at.get("plotly_chart")) >= 4     # curve, bias, loss bars, loss curves
    # issue 13: the hard-label control beside both experiments, and the verdicts split the gain
    assert any(m.label.startswith("Teacher's hard labels") for m in at.metric)
    assert all(p.hard is not None for p in results["fractions"])
    texts = [x.value for x in [*at.success, *at.info, *at.warning]]
    assert any("No 3 in the transfer set" in t and "teacher's hard labels" in t for t in texts), texts
    # moving the bias slider or switching to auto re-scores stored logits: no run is submitted
    store = runs.runner().store
    runs_before = [(r.id, r.status) for r in store.workspace_runs(at.session_state["ws"])]
    bias_before = at.session_state["to_bias"]
    at.slider(key="to_bias").set_value(3.0)
    at.run()
    assert not at.exception and at.session_state["to_bias"] == 3.0 != bias_before
    at.radio(key="to_mode").set_value("auto")
    at.run()
    assert not at.exception and not runs.runner().active()
    assert [(r.id, r.status) for r in store.workspace_runs(at.session_state["ws"])] == runs_before
    assert any("transfer: distilled" in name for name in at.session_state["session_models"])


# ---- issue 13: the teacher's-hard-labels control on the Transfer sets experiments ----

def test_fraction_points_carry_the_hard_label_control(digits, digits_teacher):
    """Each share's point has the control student of a DistillRun(control=True) at that share."""
    kd = KDConfig(temperature=4, alpha=0.9)
    points = fraction_curve(digits, digits_teacher.logits, digits_teacher.metrics, STUDENT, SHORT, kd,
                            fractions=[0.1], seed=0)
    run = DistillRun(digits, digits_teacher.logits, digits_teacher.metrics, STUDENT, SHORT,
                     dataclasses.replace(kd, labelled_fraction=0.1), 0, control=True)
    while not run.done:
        run.step()
    res = run.result()
    (p,) = points
    assert p.hard is not None and p.hard["accuracy"] == res.hard_metrics["accuracy"]
    assert p.distilled["accuracy"] == res.distilled_metrics["accuracy"]
    assert p.gain == pytest.approx(p.gain_from_teacher_labels + p.gain_from_soft_targets, abs=1e-12)
    from kdcore.viz.transfer import fraction_figure
    names = [t.name for t in fraction_figure(points).data]
    assert any("hard labels" in n for n in names) and len(names) == 3


def test_omitted_class_has_the_hard_label_control(digits, digits_teacher):
    """The control learns from the teacher's argmax over the transfer set without the class: it never
    gets that class as a target either (so it cannot learn it, unlike the soft targets)."""
    run = OmittedClassRun(digits, digits_teacher.logits, digits_teacher.metrics, 3, STUDENT, SHORT,
                          KDConfig(temperature=4, alpha=0.9), seed=0)
    while not run.done:
        run.step()
    res = run.result()
    assert res.hard_test_logits is not None and res.distilled.hard is not None
    hard0 = res.evaluate_bias(0.0, "hard")
    assert hard0["accuracy"] == pytest.approx(res.distilled.hard_metrics["accuracy"])
    assert res.auto_bias_hard is not None
    summary = res.summary()
    assert "teacher's hard labels" in summary and "soft targets" in summary


def test_loss_bars_start_at_zero_and_share_colours_and_names_with_the_curves(digits, digits_teacher):
    """Issue 13: the bars' axis started near the lowest bar (~73 %), their colours and names differed
    from the validation curves drawn under them."""
    from kdcore.transfer import LOSSES
    from kdcore.viz import common as figures
    from kdcore.viz.transfer import LOSS_COLORS, loss_bars
    run = LossComparisonRun(digits, digits_teacher.logits, digits_teacher.metrics, STUDENT,
                            TrainConfig(epochs=1, lr=1e-2), KDConfig(), seed=0)
    run.step()
    res = run.result()
    bars = loss_bars(res, digits_teacher.metrics["accuracy"])
    assert bars.layout.yaxis.range[0] == 0
    curves = figures.training_curves({LOSSES[k]: h.to_records() for k, h in res.histories.items()}, "val_acc",
                                     colors={LOSSES[k]: LOSS_COLORS[k] for k in LOSSES})
    bar_colour = dict(zip(bars.data[0].x, bars.data[0].marker.color))
    assert {t.name: t.line.color for t in curves.data} == bar_colour


def test_dark_knowledge_preset_sets_the_omitted_class_widgets(digits_teacher, open_page):
    from kdcore.presets import DARK_KNOWLEDGE as P
    at = open_page("pages/transfer_set.py")
    next(b for b in at.button if b.label == "Dark knowledge preset").click()
    at.run()
    assert not at.exception
    assert at.selectbox(key="to_cls").value == P.omitted == 3
    assert at.select_slider(key="to_width").value == P.width and at.slider(key="to_T").value == P.temperature
    assert at.slider(key="to_alpha").value == P.alpha and at.number_input(key="to_epochs").value == P.epochs
    assert at.select_slider(key="to_fraction").value == P.fraction
