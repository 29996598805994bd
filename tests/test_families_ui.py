"""Issue 17's run kinds (kdcore.runkinds_families) and their pages: driven through `drive`, each kind
gives the numbers of the direct engine call, its result round-trips through the codec with the
weights bit-equal, and a stop after two steps keeps a partial result; the Losses page and the
Trade-offs page's "More compression" section run with tiny settings (AppTests)."""

import math

import numpy as np
import pytest
import torch

from kdcore import codec
from kdcore import runkinds_families as rf
from kdcore.binary import train_binary_mlp
from kdcore.distill import KDConfig
from kdcore.loss_families import LossFamilyRun
from kdcore.lowrank import LowRankConfig, low_rank_sweep
from kdcore.models import ModelConfig
from kdcore.runs import RunContext, RunSpec
from runtools import roundtrip, run_spec, stop_after
from kdcore.store import RunStore
from kdcore.teachers import TeacherCache
from kdcore.train import TrainConfig
from kdcore.weightless import WeightlessConfig, WeightlessRun

KD = KDConfig(temperature=4.0, alpha=0.9, labelled_fraction=0.1)
TINY = TrainConfig(epochs=1, lr=3e-3)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory, private_dirs, digits_teacher):
    return RunContext(RunStore(tmp_path_factory.mktemp("runs")), TeacherCache(private_dirs["cache"] / "teachers"))


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_weightless_kind(ctx, digits, digits_teacher):
    wl = WeightlessConfig(sparsity=0.9, n_clusters=16, t=8, k=3, prune_epochs=1, retrain_epochs=1)
    cfg = rf.weightless_config(digits_teacher.spec, wl, 0)
    res, status = run_spec(RunSpec("weightless", cfg), ctx)
    direct = WeightlessRun(wl, digits, digits_teacher.model, digits_teacher.logits["train"], seed=0).run()
    assert status == "finished" and res.finished
    assert [s.accuracy for s in res.stages] == [s.accuracy for s in direct.stages]
    assert res.bits == direct.bits and res.metrics["accuracy"] == direct.metrics["accuracy"]
    assert [l.fp_measured for l in res.layers] == [l.fp_measured for l in direct.layers]
    assert same_weights(res.model, direct.model) and res.prune_quantize == direct.prune_quantize
    back = roundtrip(res, ctx)
    assert same_weights(back.model, res.model) and back.bits == res.bits
    for name, enc in direct.encoded.items():   # the stored filters decode to the same weights
        assert torch.equal(rf.encoded_layer(back.encoded[name]).decode(), enc.decode())

    part, status = run_spec(RunSpec("weightless", {**cfg, "seed": 1}), ctx, stop_after(2))
    assert status == "stopped" and not part.finished and len(part.layers) == 1 and part.bits > 0
    roundtrip(part, ctx)


def test_binary_mlp_kind(ctx, digits, digits_teacher):
    train = TrainConfig(epochs=2, batch_size=64, lr=3e-3)
    cfg = rf.binary_config(digits_teacher.spec, (32,), train, 0, latency=True)
    res, status = run_spec(RunSpec("binary_mlp", cfg), ctx)
    labels, _ = train_binary_mlp(digits, (32,), train, 0)
    kd, _ = train_binary_mlp(digits, (32,), train, 0, teacher_logits=digits_teacher.logits["train"])
    assert status == "finished" and res.complete
    assert same_weights(res.labels, labels) and same_weights(res.kd, kd)
    assert len(res.latency) == 2 and res.bytes < res.float_bytes / 10
    back = roundtrip(res, ctx)
    assert same_weights(back.kd, kd) and back.latency[0].xnor_ms == res.latency[0].xnor_ms

    part, status = run_spec(RunSpec("binary_mlp", {**cfg, "seed": 1, "train": {**cfg["train"], "epochs": 3}}), ctx,
                            stop_after(2))
    assert status == "stopped" and not part.complete and part.kd_history.epochs_run == 2 and not part.latency


def test_low_rank_kind(ctx, digits, digits_teacher):
    settings = [LowRankConfig(rank=4, energy=None), LowRankConfig(energy=0.5)]
    cfg = rf.low_rank_config(digits_teacher.spec, settings, TINY, 0)
    res, status = run_spec(RunSpec("low_rank", cfg), ctx)
    direct = low_rank_sweep(digits_teacher.model, digits, settings, TINY, 0, digits_teacher.logits["train"])
    assert status == "finished" and res.complete
    assert [(p.accuracy_before, p.accuracy_after, p.params) for p in res.points] == \
        [(p.accuracy_before, p.accuracy_after, p.params) for p in direct]
    assert all(same_weights(a.model, b.model) for a, b in zip(res.points, direct))
    back = roundtrip(res, ctx)
    assert all(same_weights(a.model, b.model) for a, b in zip(res.points, back.points))

    part, status = run_spec(RunSpec("low_rank", {**cfg, "seed": 1}), ctx, stop_after(2))
    # step 1 factorized the first setting, step 2 fine-tuned it (one epoch): one point, complete
    assert status == "stopped" and not part.complete and len(part.points) == 1
    assert not math.isnan(part.points[0].accuracy_after)


def test_loss_families_kind(ctx, digits, digits_teacher):
    student = ModelConfig(hidden=(16,))
    methods = ("labels", "kd", "dkd", "hints")
    cfg = rf.loss_families_config(digits_teacher.spec, student, TINY, KD, [0, 1], methods)
    res, status = run_spec(RunSpec("loss_families", cfg), ctx)
    t = digits_teacher
    direct = LossFamilyRun(digits, t.model, t.logits, t.metrics, student, TINY, KD, seeds=(0, 1),
                           methods=methods, teacher_spec=t.spec).run()
    assert status == "finished" and len(res.rows) == 8
    assert [(r.method, r.seed, r.accuracy) for r in res.rows] == [(r.method, r.seed, r.accuracy) for r in direct.rows]
    back = roundtrip(res, ctx)
    assert back.table() == res.table()

    part, status = run_spec(RunSpec("loss_families", {**cfg, "seeds": [2]}), ctx, stop_after(2))
    assert status == "stopped" and [r.method for r in part.rows] == ["labels", "kd"]


# ---------------------------------------------------------------- the pages

def _button(at, label):
    return next(b for b in at.button if b.label == label)


def test_losses_page(digits_teacher, open_page, wait_for_runs):
    at = open_page("pages/losses.py")
    assert not at.exception, at.exception
    at.multiselect(key="losses_methods").set_value(["labels", "kd"])
    at.multiselect(key="losses_seeds").set_value([0, 1])
    at.number_input(key="losses_epochs").set_value(1)
    _button(at, "Run").click()
    at.run()
    wait_for_runs(at)
    assert not at.exception, at.exception
    text = " ".join(m.value for m in at.markdown) + " ".join(s.value for s in [*at.success, *at.info])
    assert "Hinton, Vinyals & Dean 2015" in text
    assert any("±" in str(v) for df in at.dataframe for v in df.value.to_numpy().ravel())
    assert len(at.get("plotly_chart")) >= 1
    assert any(k in text for k in ("as good as anything", "beats plain KD", "no better than"))


def test_tradeoffs_more_compression(digits_teacher, open_page, wait_for_runs):
    at = open_page("pages/tradeoffs.py")
    assert not at.exception, at.exception
    at.select_slider(key="tradeoffs_bin_width").set_value(16)
    at.slider(key="tradeoffs_bin_depth").set_value(1)
    at.number_input(key="tradeoffs_bin_epochs").set_value(1)
    at.toggle(key="tradeoffs_bin_latency").set_value(False)
    _button(at, "Train binary MLPs").click()
    at.run()
    wait_for_runs(at)
    assert not at.exception, at.exception
    binary = [r.name for r in at.session_state["session_models"].values() if r.role == "binary"]
    assert sorted(binary) == ["binary MLP 16 (KD, seed 0)", "binary MLP 16 (labels only, seed 0)"]
    models = next(df.value for df in at.dataframe if "on size frontier" in df.value.columns)
    listed = models[models["model"].isin(binary)]
    assert len(listed) == 2 and listed["on size frontier"].any()   # the smallest models of the session
    assert any("with KD against" in m.value for m in at.markdown)

    # Weightless and low rank of the teacher (the default source), tiny settings
    at.select_slider(key="tradeoffs_wl_sparsity").set_value(0.9)
    at.slider(key="tradeoffs_wl_t").set_value(8)
    at.number_input(key="tradeoffs_wl_prune_epochs").set_value(0)
    at.number_input(key="tradeoffs_wl_epochs").set_value(0)
    _button(at, "Encode (Weightless)").click()
    at.run()
    wait_for_runs(at)
    assert not at.exception, at.exception
    at.multiselect(key="tradeoffs_lr_ranks").set_value([4])
    at.multiselect(key="tradeoffs_lr_energy").set_value([])
    at.number_input(key="tradeoffs_lr_epochs").set_value(0)
    _button(at, "Factorize").click()
    at.run()
    wait_for_runs(at)
    assert not at.exception, at.exception
    roles = {r.role for r in at.session_state["session_models"].values()}
    assert {"weightless", "low rank", "binary"} <= roles
    assert any("496" in c.value for c in at.caption) and any("V/2^t" in s.value for s in at.success)


def test_codec_stores_each_numpy_array_once_and_as_itself():
    # each array becomes a temporary tensor: its id must not be taken for the next array's
    arrays = [np.arange(5, dtype=np.int64), np.ones(3, np.float32), np.linspace(0, 1, 4)]
    doc, tensors = codec.encode(arrays)
    back = codec.decode(doc, tensors)
    assert len(tensors) == 3 and all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(arrays, back))
