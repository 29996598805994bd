"""The same seed gives the same numbers, across refactors: a few results pinned to what they were.

Small, fast settings (a 64-unit teacher for 3 epochs, a 16-unit student, a 2 × 2 sweep, OBD on 500
examples) on digits, one torch thread. Accuracies are pinned as counts of correct test examples
(out of 359), losses and saliencies to a relative 1e-5. A change that moves one of them changed
behaviour: say why in the commit, and pin the new value.
"""

from __future__ import annotations

import pytest
import torch

from kdcore.distill import DistillRun, KDConfig
from kdcore.models import ModelConfig
from kdcore.pruning import obd_saliency
from kdcore.runs import drive
from kdcore.sweep import SweepConfig, run_sweep
from kdcore.teachers import TeacherSpec, train_teacher
from kdcore.train import TrainConfig

N_TEST = 359


@pytest.fixture(scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def small_teacher(digits, one_thread):
    spec = TeacherSpec("digits", 0, ModelConfig(hidden=(64,)), TrainConfig(epochs=3, batch_size=64, lr=3e-3), 0)
    return train_teacher(spec, digits)


def correct(accuracy: float) -> int:
    return round(accuracy * N_TEST)


def test_the_digits_split(digits):
    assert (len(digits.X_train), len(digits.X_val), len(digits.X_test)) == (1079, 359, N_TEST)
    assert float(digits.X_train.double().sum()) == pytest.approx(21102.5, rel=1e-9)


def test_a_small_teacher(small_teacher):
    assert correct(small_teacher.metrics["accuracy"]) == 287
    assert small_teacher.metrics["loss"] == pytest.approx(1.631557822227478, rel=1e-5)


def test_distilled_scratch_and_control_students(digits, small_teacher):
    run = DistillRun(digits, small_teacher.logits, small_teacher.metrics, ModelConfig(hidden=(16,)),
                     TrainConfig(epochs=3, batch_size=64, lr=1e-2),
                     KDConfig(temperature=4.0, alpha=0.9, labelled_fraction=0.1), 0, control=True)
    res = drive(run)[0]
    assert [correct(m["accuracy"]) for m in (res.distilled_metrics, res.scratch_metrics, res.hard_metrics)] \
        == [185, 99, 201]
    assert res.distilled_metrics["loss"] == pytest.approx(1.9369215965270996, rel=1e-5)


def test_a_small_sweep(digits, small_teacher):
    cfg = SweepConfig(temperatures=(1.0, 4.0), alphas=(0.5, 0.9), widths=(16,), depth=1, seeds_per_cell=1,
                      base_seed=0, labelled_fraction=0.1, train=TrainConfig(epochs=2, batch_size=64, lr=1e-2))
    res = run_sweep(digits, small_teacher.logits, cfg)
    got = {(s.spec.temperature, s.spec.alpha): correct(s.metrics["accuracy"]) for s in res.students}
    assert got == {(1.0, 0.5): 133, (4.0, 0.5): 149, (1.0, 0.9): 139, (4.0, 0.9): 138}


def test_obd_saliencies(digits, small_teacher):
    sal = obd_saliency(small_teacher.model, digits.X_train[:500], digits.y_train[:500])
    assert float(sum(v.double().sum() for v in sal.values())) == pytest.approx(0.07445919106543028, rel=1e-5)
