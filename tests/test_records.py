"""Model records (kdcore.records): every experiment's models named, evaluated and traceable to the run
that made them, so Prune and Trade-offs can take any of them; and the Prune page's readings
(kdcore.pruning: mask agreement, retrained points, the one-shot verdict) against direct computations."""

from __future__ import annotations

import math

import pytest
import torch

from kdcore import pruning as P
from kdcore import records
from kdcore.distill import KDConfig
from kdcore.models import ModelConfig
from kdcore.runkinds_compress import load_model, record_source
from kdcore.runkinds_paper import student_config
from kdcore.runs import RunContext, RunSpec, drive, kind
from kdcore.train import TrainConfig

STUDENT, SHORT = ModelConfig(hidden=(8,)), TrainConfig(epochs=1, batch_size=64, lr=1e-2)
KD = KDConfig(temperature=4.0, alpha=0.9, labelled_fraction=0.5)


def test_mask_agreement_counts_equal_decisions():
    a = {"w": torch.tensor([True, False, True, True]), "v": torch.tensor([[True, True]])}
    b = {"w": torch.tensor([True, True, True, False]), "v": torch.tensor([[True, False]])}
    assert P.mask_agreement(a, b) == pytest.approx(3 / 6)
    assert P.mask_agreement(a, a) == 1.0


def test_retrained_points_and_the_verdict():
    points = [{"criterion": c, "sparsity": s, "accuracy": acc}
              for c, s, acc in [("OBD", 0.5, 0.9), ("magnitude", 0.5, 0.9), ("random", 0.5, 0.5),
                                ("OBD", 0.9, 0.8), ("magnitude", 0.9, 0.6), ("random", 0.9, 0.1)]]
    merged = P.with_retrained(points, [{"criterion": "OBD", "sparsity": 0.9, "retrained_accuracy": 0.85}])
    assert merged[3]["retrained_accuracy"] == 0.85 and math.isnan(merged[0]["retrained_accuracy"])
    text, obd_ok = P.oneshot_verdict(merged)
    assert obd_ok and "At 90 % sparsity" in text and "OBD does best" in text
    worse = [dict(p, accuracy=0.3) if (p["criterion"], p["sparsity"]) == ("OBD", 0.9) else p for p in points]
    text, obd_ok = P.oneshot_verdict(worse)
    assert not obd_ok and "does not beat magnitude" in text
    assert P.oneshot_verdict([p for p in points if p["criterion"] != "random"]) is None


def test_transfer_students_are_records_a_worker_can_rebuild(digits, digits_teacher):
    spec = RunSpec("transfer_omitted", student_config(digits_teacher.spec, STUDENT, SHORT, KD, 0, omitted=3))
    res = drive(kind(spec.kind).make(spec.config, RunContext()))[0]
    recs = records.records_of("transfer_omitted", res, spec.to_dict(), "digits", 0)
    assert [r.role for r in recs] == ["distilled", "scratch", "hard labels"]
    assert all(r.rebuildable and r.role in records.PRUNABLE_ROLES for r in recs)
    # the path of each record leads to its very model in the run's result
    ctx = RunContext(given={spec.key: res})
    for r in recs:
        rebuilt = load_model(record_source(r), ctx)
        assert all(torch.equal(a, b) for a, b in zip(rebuilt.state_dict().values(), r.model.state_dict().values()))


def test_distill_records_name_each_setting(digits, digits_teacher):
    from kdcore.distill import DistillRun
    run = DistillRun(digits, digits_teacher.logits, digits_teacher.metrics, STUDENT, SHORT, KD, 0, control=True)
    res = drive(run)[0]
    recs = records.distill_records(res, "digits", 0, {"kind": "distill", "config": {}}, "a run")
    assert [r.role for r in recs] == ["distilled", "scratch", "hard labels"]
    assert [r.extra["run_path"] for r in recs] == [["distilled"], ["scratch"], ["hard"]]
    assert all("50 % labels, T=4, α=0.9, 1 epochs" in r.name or "50 % labels, T=4, α=0.9, 1 epoch" in r.name
               for r in recs)
    assert recs[0].accuracy == res.distilled_metrics["accuracy"]


def test_a_sweep_student_is_rebuilt_from_its_weights(digits, digits_teacher):
    from kdcore.sweep import SweepConfig, run_sweep
    res = run_sweep(digits, digits_teacher.logits, SweepConfig(temperatures=(2.0,), alphas=(0.5,), widths=(8,),
                                                                  train=SHORT))
    s = res.students[0]
    net = res.student_model(s, ModelConfig(hidden=(16,)), digits.input_shape, digits.n_classes)
    acc = float((net(digits.X_test).argmax(1) == digits.y_test).float().mean())
    assert acc == pytest.approx(s.metrics["accuracy"], abs=1e-9)
    rec = records.sweep_best_record(res, "width 8, T=2, α=0.5", net, s, "digits", 0)
    assert rec.name.startswith("sweep best width 8") and rec.model is net
