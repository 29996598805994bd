"""The compression run kinds (kdcore.runkinds_compress): driven through `drive`, each gives the
numbers of the direct engine call it replaces, its result round-trips through the codec with the
weights bit-equal, and a stop after two steps keeps a partial result."""

import copy

import pytest
import torch

from kdcore import pruning as P
from kdcore import runkinds_compress as rc

from kdcore import bitwidths, pipeline, sizecurve
from kdcore.distill import KDConfig
from kdcore.models import ModelConfig
from kdcore.quantize import QuantConfig
from kdcore.runkinds import distill_config
from kdcore.runs import RunContext, RunSpec, kind
from runtools import roundtrip, run_spec, stop_after
from kdcore.store import RunStore
from kdcore.teachers import TeacherCache
from kdcore.train import TrainConfig

KD = KDConfig(temperature=4.0, alpha=0.9, labelled_fraction=1.0)
TINY = TrainConfig(epochs=2, lr=1e-2)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory, private_dirs, digits_teacher):
    return RunContext(RunStore(tmp_path_factory.mktemp("runs")), TeacherCache(private_dirs["cache"] / "teachers"))


@pytest.fixture(scope="module")
def student(ctx, digits_teacher):
    """A tiny distilled student made by a "distill" run: the source of the student runs."""
    spec = RunSpec("distill", distill_config(digits_teacher.spec, ModelConfig(hidden=(8,)), TINY, KD, 0))
    run_spec(spec, ctx)
    return rc.model_source(spec, ["distilled"]), ctx.result_of(spec).distilled


def test_prune_analysis_retrain_and_iterative(ctx, digits, digits_teacher, student):
    source, model = student
    cfg = rc.analysis_config(digits, source, "gauss_newton", 100, 200, "global", [0.5, 0.9])
    a, status = run_spec(RunSpec("prune_analysis", cfg), ctx)
    assert status == "finished" and a.complete
    # the page's former direct computation
    gen = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(digits.X_train), generator=gen)[:200]
    X, y = digits.X_train[idx], digits.y_train[idx]
    m = copy.deepcopy(model).eval()
    obd = P.obd_saliency(m, X, y, "gauss_newton", 100, seed=0)
    scores = {"OBD": obd, "magnitude": P.MagnitudeScore().scores(m), "random": P.RandomScore(0).scores(m)}
    criteria = {"OBD": P.OBDScore(X, y, "gauss_newton", 100, 0), "magnitude": P.MagnitudeScore(),
                "random": P.RandomScore(0)}
    run = P.CurveRun(m, criteria, X, y, digits.X_test, digits.y_test, P.CurveConfig((0.5, 0.9), "global"), seed=0,
                     scores=scores)
    while not run.done:
        run.step()
    key = ("criterion", "sparsity", "accuracy", "actual_increase", "predicted_increase")
    assert [[repr(p[k]) for k in key] for p in a.oneshot] == [[repr(p[k]) for k in key] for p in run.points]
    assert all(torch.equal(a.scores["OBD"][n], obd[n]) for n in obd)
    assert a.sensitivity == P.layer_sensitivity(m, obd, rc.SENSITIVITY_LEVELS, digits.X_test, digits.y_test)
    back = roundtrip(a, ctx)
    assert torch.equal(back.X, X) and back.oneshot[0]["accuracy"] == a.oneshot[0]["accuracy"]

    aspec = RunSpec("prune_analysis", cfg)
    r, status = run_spec(RunSpec("prune_retrain", rc.retrain_config(aspec, 1, 1e-3)), ctx)
    run = P.CurveRun(m, criteria, X, y, digits.X_test, digits.y_test,
                     P.CurveConfig((0.5, 0.9), "global", 1, 1e-3), seed=0, scores=scores)
    while not run.done:
        run.step()
    assert status == "finished" and [p["retrained_accuracy"] for p in r.points] == \
        [p["retrained_accuracy"] for p in run.points]
    back = roundtrip(r, ctx)
    assert [m is None for m in back.models] == [p["criterion"] == "random" for p in r.points]
    assert all(torch.equal(x, y_) for m1, m2 in zip(r.models, back.models) if m1 is not None
               for x, y_ in zip(m1.state_dict().values(), m2.state_dict().values()))
    kept = [m for m in r.models if m is not None]
    assert len(kept) == 4 and all(torch.equal(m[1].weight, run.models[(p["criterion"], p["sparsity"])][1].weight)
                                  for m, p in zip(r.models, r.points) if m is not None)

    it, status = run_spec(RunSpec("prune_iterative", rc.iterative_config(aspec, "magnitude", 0.8, 0.5, 1)), ctx)
    direct = P.prune_iteratively(copy.deepcopy(m), P.criterion_from_name("magnitude", X, y, "gauss_newton", 100, 0),
                                 X, y, digits.X_val, digits.y_val,
                                 P.IterativeConfig(target=0.8, step=0.5, epochs=1, scope="global"), seed=0)
    assert [(s.sparsity, s.accuracy) for s in it.steps] == [(s.sparsity, s.accuracy) for s in direct.steps]
    assert it.complete and torch.equal(roundtrip(it, ctx).model[1].weight, direct.model[1].weight)

    # stops after two steps keep partial results
    part, status = run_spec(RunSpec("prune_analysis", {**cfg, "n_examples": 150}), ctx, stop_after(2))
    assert status == "stopped" and not part.complete and len(part.oneshot) == 1 and part.scores
    roundtrip(part, ctx)
    part, status = run_spec(RunSpec("prune_retrain", rc.retrain_config(aspec, 2, 1e-3)), ctx, stop_after(2))
    assert status == "stopped" and len(part.points) == 2 == len(part.models) and not part.complete
    part, status = run_spec(RunSpec("prune_iterative", rc.iterative_config(aspec, "OBD", 0.95, 0.3, 0)), ctx,
                            stop_after(2))
    assert status == "stopped" and len(part.steps) == 2 and not part.complete
    roundtrip(part, ctx)


def test_exact_on_a_big_model_is_refused(ctx, digits, digits_teacher):
    src = rc.model_source(RunSpec("teacher", digits_teacher.spec.to_dict()), ["model"])
    with pytest.raises(ValueError, match="Hessian-vector product"):
        kind("prune_analysis").make(rc.analysis_config(digits, src, "exact", 0, 100, "global", [0.5]), ctx)


def test_size_curve(ctx, digits, digits_teacher):
    spec = RunSpec("size_curve", rc.size_curve_config(digits_teacher.spec, [8, 4], TINY, KD, 0))
    res, status = run_spec(spec, ctx)
    direct = sizecurve.SizeCurve(digits, digits_teacher.logits, digits_teacher.metrics, [8, 4], TINY, KD, seed=0)
    direct.run()
    assert status == "finished" and res.done
    assert [(p.width, p.distilled_accuracy, p.scratch_accuracy) for p in res.points] == \
        [(p.width, p.distilled_accuracy, p.scratch_accuracy) for p in direct.points]
    assert res.summary() == direct.summary()
    back = roundtrip(res, ctx)
    assert torch.equal(back.points[1].scratch[1].weight, direct.points[1].scratch[1].weight)
    assert [r.name for r in sizecurve.size_curve_records(back, "t")] == [r.name for r in sizecurve.size_curve_records(direct, "t")]
    part, status = run_spec(RunSpec("size_curve", rc.size_curve_config(digits_teacher.spec, [4, 8], TINY, KD, 1)),
                            ctx, stop_after(2))
    assert status == "stopped" and [p.width for p in part.points] == [4]   # 2 epochs: the first pair
    part, _ = run_spec(RunSpec("size_curve", rc.size_curve_config(digits_teacher.spec, [4, 8], TINY, KD, 2)),
                       ctx, stop_after(1))
    assert part.points == []                                               # a half-trained pair is dropped
    roundtrip(part, ctx)


def test_quant_panel(ctx, digits, digits_teacher, student):
    source, model = student
    train = TrainConfig(epochs=1, lr=1e-2)
    spec = RunSpec("quant_panel", rc.panel_config(digits, source, [32, 1], "channel", "mse", True,
                                                  digits_teacher.spec, train, KD))
    panel, status = run_spec(spec, ctx)
    ptq = bitwidths.ptq_rows(model, digits, [32, 1], "channel", "mse")
    qat = bitwidths.qat_rows(model, digits, digits_teacher.logits["train"], train, KD, [32, 1], "channel", "mse", seed=0)
    assert status == "finished" and panel.complete
    assert [(r.method, r.bits, r.accuracy, r.bytes) for r in panel.rows] == \
        [(r.method, r.bits, r.accuracy, r.bytes) for r in ptq + qat]
    back = roundtrip(panel, ctx)
    assert all(torch.equal(a.model[1].weight, b.model[1].weight) for a, b in zip(back.rows, ptq + qat))
    ptq_only, _ = run_spec(RunSpec("quant_panel", rc.panel_config(digits, source, [8, 4], "tensor", "max", False)),
                           ctx)
    assert [r.accuracy for r in ptq_only.rows] == [r.accuracy for r in bitwidths.ptq_rows(model, digits, [8, 4], "tensor",
                                                                                     "max")]
    part, status = run_spec(RunSpec("quant_panel", rc.panel_config(digits, source, [32, 2], "channel", "mse", True,
                                                                   digits_teacher.spec, TINY, KD, seed=1)),
                            ctx, stop_after(2))
    assert status == "stopped" and [r.method for r in part.rows] == ["PTQ", "PTQ"] and not part.complete
    roundtrip(part, ctx)


def test_prune_quantize_pipeline(ctx, digits, digits_teacher, student):
    source, model = student
    quant, ft = QuantConfig(4, "channel", "mse"), TrainConfig(epochs=2, lr=3e-3)
    spec = RunSpec("prune_quantize", rc.pipeline_config(digits_teacher.spec, source, 0.8, quant, ft, KD, 0, "r"))
    res, status = run_spec(spec, ctx)
    direct = pipeline.prune_then_quantize(model, digits, digits_teacher.logits, 0.8, quant, ft, KD, seed=0,
                                    source_recipe="r")
    assert status == "finished" and res.complete and res.epochs_run == 2
    assert [(s.stage, s.metrics, s.sparsity, s.recipe) for s in res.stages] == \
        [(s.stage, s.metrics, s.sparsity, s.recipe) for s in direct]
    back = roundtrip(res, ctx)
    assert torch.equal(back.stages[1].model[1].weight, direct[1].model[1].weight)
    part, status = run_spec(RunSpec("prune_quantize", rc.pipeline_config(
        digits_teacher.spec, source, 0.8, quant, TrainConfig(epochs=5, lr=3e-3), KD, 0)), ctx, stop_after(2))
    assert status == "stopped" and part.epochs_run == 2 and not part.complete and len(part.stages) == 2
    roundtrip(part, ctx)

