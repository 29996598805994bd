"""The loss-family comparison: same initialization and batches for every method (checked through a
hint weight of 0, which must give the KD student bit for bit), and the Trainer's DKD path."""

from __future__ import annotations

import torch

from kdcore.loss_families import LossFamilyRun, penultimate_features
from kdcore.losses import dkd_loss
from kdcore.distill import KDConfig
from kdcore.models import ModelConfig
from kdcore.train import TrainConfig


def test_same_init_and_batches_hint_weight_zero_is_kd(digits, digits_teacher):
    t = digits_teacher
    run = LossFamilyRun(digits, t.model, t.logits, t.metrics, ModelConfig(hidden=(16,)),
                        TrainConfig(epochs=3, batch_size=64, lr=1e-2), KDConfig(4.0, 0.9, labelled_fraction=0.1),
                        seeds=(0,), methods=("labels", "kd", "hints", "dkd"), hint_weight=0.0)
    res = run.run()
    rows = {r.method: r for r in res.rows}
    assert rows["hints"].metrics == rows["kd"].metrics          # same init, same batches, zero hint term
    assert rows["labels"].metrics["kl_teacher"] != rows["kd"].metrics["kl_teacher"]
    assert rows["dkd"].metrics["kl_teacher"] != rows["kd"].metrics["kl_teacher"]
    table = {r["key"]: r for r in res.table()}
    assert set(table) == {"labels", "kd", "hints", "dkd"} and "Zhao" in table["dkd"]["paper"]
    feats = penultimate_features(t.model, digits.X_test[:5])
    assert feats.shape == (5, 512) and bool((feats >= 0).all())   # after the last ReLU


def test_dkd_with_alpha_one_beta_one_minus_pt_trains_like_kd():
    """DKD is KD's soft term when β = 1 − p_t: a check of the Trainer's 'dkd' branch wiring."""
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    y = torch.randint(0, 5, (8,), generator=g)
    from kdcore.losses import tckd_nckd, kd_loss
    _, _, pt = tckd_nckd(s, t, y, 2.0)
    per_example = torch.stack([dkd_loss(s[i:i + 1], t[i:i + 1], y[i:i + 1], 2.0, 1.0, float(1 - pt[i]))
                               for i in range(8)]).mean()
    assert torch.allclose(per_example, kd_loss(s, t, y, 2.0, 1.0), atol=1e-6)


def test_the_verdict_and_its_colour_agree():
    """The page colours the verdict by `beats_plain_kd` (it searched the sentence for words before): both
    say 'win' in exactly the same cases."""
    from kdcore.loss_families import beats_plain_kd, verdict

    def row(key, mean, std, seeds=3):
        return {"method": key.upper(), "key": key, "seeds": seeds, "test accuracy mean (%)": mean, "std (points)": std}
    cases = [[row("kd", 90, 1), row("dkd", 95, 1)],             # a win beyond the spread
             [row("kd", 90, 1), row("dkd", 91, 1)],             # within the spread
             [row("kd", 90, 0, 1), row("dkd", 95, 0, 1)],       # one seed says little
             [row("dkd", 95, 1)],                               # no plain KD to compare with
             [row("kd", 90, 1), row("labels", 92, 1)]]
    for table in cases:
        assert beats_plain_kd(table) == ("beats plain KD" in verdict(table)), table
    assert beats_plain_kd(cases[0]) and not any(beats_plain_kd(t) for t in cases[1:4])


def test_the_class_distance_teacher_is_a_run_reused_across_comparisons(digits, digits_teacher):
    """Comparisons that differ in students, seeds or epochs require the same class-distance teacher run
    (it was retrained inside every comparison); given it, the comparison trains no teacher."""
    from kdcore import runkinds_families as rf
    from kdcore.loss_families import ClassDistanceTeacher, train_class_distance_teacher
    from kdcore.runs import RunContext, kind
    from kdcore.teachers import TeacherSpec
    tiny_teacher = TeacherSpec("digits", 0, ModelConfig(hidden=(32,)), TrainConfig(epochs=1), 0)
    kd = KDConfig(temperature=4.0, alpha=0.9, labelled_fraction=0.5)
    a = rf.loss_families_config(tiny_teacher, ModelConfig(hidden=(8,)), TrainConfig(epochs=1), kd, [0], ["cd_teacher"])
    b = rf.loss_families_config(tiny_teacher, ModelConfig(hidden=(16,)), TrainConfig(epochs=2), kd, [1, 2],
                                ["kd", "cd_teacher"])
    cd_a = [s for s in kind("loss_families").requires(a) if s.kind == "class_distance_teacher"]
    cd_b = [s for s in kind("loss_families").requires(b) if s.kind == "class_distance_teacher"]
    assert len(cd_a) == 1 and cd_a[0].key == cd_b[0].key
    assert not [s for s in kind("loss_families").requires({**a, "methods": ["kd"]}) if s.kind != "teacher"]
    cd = ClassDistanceTeacher(*train_class_distance_teacher(tiny_teacher, digits))
    job = kind("loss_families").make(a, RunContext(given={cd_a[0].key: cd}))
    assert job.run.cd_teacher[0] is cd.model and job.run.steps_done == 1   # nothing left to train but the student
