"""Tests of kdcore.pruning: Hessian diagonals against autograd, masks, OBD's prediction, the page."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import kdcore.pruning as P
from kdcore.models import ModelConfig, build_model
from kdcore.train import TrainConfig, fit, seeded_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: one thread is faster than two, and far faster on a busy machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# ---------------------------------------------------------------- helpers: independent computations

def _flat_fn(model, fn):
    """fn(params dict) as a function of all parameters flattened (named_parameters order)."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]

    def f(v):
        ps, i = {}, 0
        for n, s in zip(names, shapes):
            ps[n] = v[i:i + s.numel()].view(s)
            i += s.numel()
        return fn(ps)
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    return f, flat


def _flatten(d: dict) -> torch.Tensor:
    return torch.cat([v.flatten() for v in d.values()])


def tiny_mlp(act=nn.Tanh, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 5), act(), nn.Linear(5, 3)).double().eval()


def tiny_data(n=40, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g)


def explicit_gauss_newton_diag(model, X, y):
    """diag((1/N) Σ_n J_nᵀ (diag p_n − p_n p_nᵀ) J_n) with J from autograd.functional.jacobian."""
    f, flat = _flat_fn(model, lambda ps: torch.func.functional_call(model, ps, (X,)))
    J = torch.autograd.functional.jacobian(f, flat)              # (N, C, P)
    p = torch.softmax(f(flat), 1)
    H = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    return torch.einsum("ncp,ncd,ndp->p", J, H, J) / len(X)


def full_hessian_diag(model, X, y):
    f, flat = _flat_fn(model, lambda ps: F.cross_entropy(torch.func.functional_call(model, ps, (X,)), y))
    return torch.autograd.functional.hessian(f, flat).diagonal()


# ---------------------------------------------------------------- Hessian diagonals

@pytest.mark.parametrize("act", [nn.Tanh, nn.ReLU])
def test_exact_equals_autograd_hessian_diagonal(act):
    model = tiny_mlp(act)
    X, y = tiny_data()
    ref = full_hessian_diag(model, X, y)
    got = _flatten(P.hessian_diagonal(model, X, y, "exact", data_chunk=16))
    assert torch.allclose(got, ref, atol=1e-5, rtol=0)
    assert got.abs().max() > 1e-3   # not trivially zero


@pytest.mark.parametrize("act", [nn.Tanh, nn.ReLU])
def test_gauss_newton_equals_explicit_jt_h_j(act):
    model = tiny_mlp(act)
    X, y = tiny_data()
    ref = explicit_gauss_newton_diag(model, X, y)
    if act is nn.ReLU:   # the hand-written MLP path and the general autograd path
        assert P._is_plain_mlp(model)
        got = _flatten(P.hessian_diagonal(model, X, y, "gauss_newton", data_chunk=16))
        assert torch.allclose(got, ref, atol=1e-10, rtol=1e-8)
    got = _flatten(P._gauss_newton_diagonal(model, X, y, data_chunk=16))
    assert torch.allclose(got, ref, atol=1e-10, rtol=1e-8)


def test_gauss_newton_on_a_cnn_equals_explicit():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(3, 2, 2, stride=2),
                          nn.Tanh(), nn.Flatten(), nn.Linear(2, 3)).double().eval()
    g = torch.Generator().manual_seed(1)
    X, y = torch.randn(12, 1, 4, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (12,), generator=g)
    ref = explicit_gauss_newton_diag(model, X, y)
    got = _flatten(P.hessian_diagonal(model, X, y, "gauss_newton", data_chunk=5))
    assert torch.allclose(got, ref, atol=1e-10, rtol=1e-8)


def test_gauss_newton_float32_matches_float64():
    model = build_model(ModelConfig(hidden=(32, 32)), (1, 8, 8), 10).eval()
    X, y = tiny_data(200, 64)
    X, y = X.view(200, 1, 8, 8), torch.randint(0, 10, (200,))
    h32 = P.hessian_diagonal(model, X.float(), y, "gauss_newton", data_chunk=64)
    h64 = P.hessian_diagonal(copy.deepcopy(model).double(), X, y, "gauss_newton")
    for n in h64:
        assert torch.allclose(h32[n].double(), h64[n], rtol=1e-4, atol=1e-7)


def test_hutchinson_converges_to_exact():
    model = tiny_mlp()
    X, y = tiny_data()
    exact = _flatten(P.hessian_diagonal(model, X, y, "exact"))
    errs = [float((_flatten(P.hessian_diagonal(model, X, y, "hutchinson", probes=m, seed=3)) - exact).norm()
                  / exact.norm()) for m in (4, 64, 1024)]
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 0.12
    # deterministic for a seed
    a = P.hessian_diagonal(model, X, y, "hutchinson", probes=8, seed=5)
    b = P.hessian_diagonal(model, X, y, "hutchinson", probes=8, seed=5)
    assert all(torch.equal(a[n], b[n]) for n in a)


def test_saliency_formula_and_dropout_off():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(4, 5), nn.ReLU(), nn.Dropout(0.5),
                          nn.Linear(5, 3)).double().train()
    X, y = tiny_data()
    s = P.obd_saliency(model, X, y, "exact")
    assert model.training                          # restored
    assert set(s) == {"2.weight", "5.weight"}      # prunable weights only
    ref_model = nn.Sequential(nn.Flatten(), nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3)).double()
    ref_model.load_state_dict({k.replace("2.", "1.").replace("5.", "3."): v for k, v in model.state_dict().items()})
    h = full_hessian_diag(ref_model.eval(), X, y)
    w = torch.cat([p.detach().flatten() for p in ref_model.parameters()])
    ref = 0.5 * h * w ** 2
    got_all = P.obd_saliency(model, X, y, "exact", all_parameters=True)
    assert torch.allclose(_flatten(got_all), ref, atol=1e-10)


def test_bad_method_is_a_clear_error():
    model = tiny_mlp()
    X, y = tiny_data()
    with pytest.raises(ValueError, match="unknown method"):
        P.hessian_diagonal(model, X, y, "newton")
    with pytest.raises(ValueError, match="unknown method"):
        P.OBDScore(X, y, method="diag")
    with pytest.raises(ValueError, match="non-empty"):
        P.hessian_diagonal(model, X[:0], y[:0])


# ---------------------------------------------------------------- masks

def test_prunable_parameters_and_masks():
    model = build_model(ModelConfig(hidden=(20, 10)), (1, 8, 8), 10)
    params = P.prunable_parameters(model)
    assert list(params) == ["1.weight", "3.weight", "5.weight"]
    scores = P.MagnitudeScore().scores(model)
    total = sum(p.numel() for p in params.values())
    for scope in ("global", "layer"):
        masks = P.masks_for_sparsity(scores, 0.6, scope)
        assert sum(int((~m).sum()) for m in masks.values()) == round(0.6 * total) or scope == "layer"
        if scope == "layer":
            for n, m in masks.items():
                assert int((~m).sum()) == round(0.6 * m.numel())
        else:   # global: everything removed scores no higher than anything kept
            removed = torch.cat([scores[n][~m] for n, m in masks.items()])
            kept = torch.cat([scores[n][m] for n, m in masks.items()])
            assert removed.max() <= kept.min()
    pruned = P.apply_masks(copy.deepcopy(model), masks)
    assert abs(P.sparsity(pruned) - 0.6) < 0.01
    assert P.sparsity(model) == 0.0
    with pytest.raises(ValueError):
        P.masks_for_sparsity(scores, 1.5)
    # previously pruned weights stay pruned even under a criterion that would keep them
    rnd = P.RandomScore(1).scores(model)
    again = P.masks_for_sparsity(rnd, 0.7, "global", previous=masks)
    assert all(bool((~again[n] | masks[n]).all()) for n in masks)   # kept now ⇒ kept before
    assert sum(int((~m).sum()) for m in again.values()) == round(0.7 * total)


def test_random_score_is_seeded():
    model = tiny_mlp()
    a, b, c = (P.RandomScore(s).scores(model) for s in (1, 1, 2))
    assert all(torch.equal(a[n], b[n]) for n in a) and not torch.equal(a["1.weight"], c["1.weight"])


def test_unit_masks_remove_whole_rows_but_not_outputs():
    model = build_model(ModelConfig(hidden=(20, 10)), (1, 8, 8), 10)
    scores = P.MagnitudeScore().scores(model)
    masks = P.unit_masks(scores, 0.5, "layer")
    for n in ("1.weight", "3.weight"):
        rows = masks[n].all(1) | (~masks[n]).all(1)
        assert bool(rows.all()) and int((~masks[n]).all(1).sum()) == masks[n].shape[0] // 2
    assert bool(masks["5.weight"].all())
    u = P.unit_scores(scores)
    assert torch.allclose(u["1.weight"], scores["1.weight"].sum(1))


def test_masks_survive_retraining(digits):
    model = seeded_model(lambda: build_model(ModelConfig(hidden=(32,)), digits.input_shape, 10), 0)
    masks = P.masks_for_sparsity(P.RandomScore(0).scores(model), 0.8)
    P.apply_masks(model, masks)
    fit(model, digits.X_train, digits.y_train, TrainConfig(epochs=2, lr=1e-2), seed=0,
        after_step=P.mask_keeper(masks))
    for n, p in P.prunable_parameters(model).items():
        assert bool((p[~masks[n]] == 0).all())
        assert bool((p[masks[n]] != 0).all())   # and training did move the kept ones
    assert abs(P.sparsity(model) - 0.8) < 1e-3


# ---------------------------------------------------------------- OBD's prediction

@pytest.fixture(scope="module")
def converged():
    """Multinomial logistic regression at its (unique) minimum; inputs 4 and 5 carry no signal."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(2000, 6, generator=g, dtype=torch.float64)
    w_true = torch.randn(6, 3, generator=g, dtype=torch.float64)
    w_true[4:] = 0
    y = torch.multinomial(torch.softmax(X @ w_true, 1), 1, generator=g).squeeze(1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 3)).double()
    opt = torch.optim.LBFGS(model.parameters(), lr=1, max_iter=1000, tolerance_grad=1e-12,
                            tolerance_change=1e-15, history_size=50, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(model(X), y)
        loss.backward()
        return loss
    for _ in range(3):
        opt.step(closure)
    return model.eval(), X, y


def test_predicted_loss_increase_matches_for_tiny_deletions(converged):
    model, X, y = converged
    sal = P.obd_saliency(model, X, y, "exact")
    base = P.mean_loss(model, X, y)
    w = model[0].weight.detach()
    ones = {"0.weight": torch.ones_like(w, dtype=torch.bool)}
    tested = 0
    for idx in itertools.product(range(3), range(6)):
        if abs(float(w[idx])) > 0.2:
            continue                       # not a tiny deletion
        masks = {"0.weight": ones["0.weight"].clone()}
        masks["0.weight"][idx] = False
        predicted = P.predicted_increase(sal, masks)
        actual = P.mean_loss(P.pruned_copy(model, masks), X, y) - base
        assert abs(P.first_order_increase(model, X, y, masks)) < 1e-8     # at a minimum
        assert actual > 0 and abs(actual - predicted) <= 0.03 * predicted, (idx, predicted, actual)
        tested += 1
    assert tested >= 6
    # two deletions at once, of one class's weights on two independent inputs: the cross term
    # E[p(1-p)·x4·x5] is ~0, so the sum of saliencies still predicts the change
    masks = {"0.weight": ones["0.weight"].clone()}
    masks["0.weight"][0, 4:] = False
    predicted = P.predicted_increase(sal, masks)
    actual = P.mean_loss(P.pruned_copy(model, masks), X, y) - base
    assert abs(actual - predicted) <= 0.1 * predicted, (predicted, actual)
    # and a big deletion is not predicted well: that is why OBD deletes a few at a time
    masks = P.masks_for_sparsity(sal, 0.8)
    assert abs(P.mean_loss(P.pruned_copy(model, masks), X, y) - base - P.predicted_increase(sal, masks)) > 0.01


# ---------------------------------------------------------------- criteria after retraining

def test_obd_is_not_worse_than_random_after_retraining(digits):
    torch.manual_seed(0)
    model = seeded_model(lambda: build_model(ModelConfig(hidden=(32,)), digits.input_shape, 10), 0)
    fit(model, digits.X_train, digits.y_train, TrainConfig(epochs=10, lr=1e-2), seed=0)
    criteria = {"OBD": P.OBDScore(digits.X_train, digits.y_train, "gauss_newton"),
                "random": P.RandomScore(0)}
    run = P.CurveRun(model, criteria, digits.X_train, digits.y_train, digits.X_test, digits.y_test,
                     P.CurveConfig(sparsities=(0.9,), retrain_epochs=3, lr=3e-3))
    while not run.done:
        run.step()
    acc = {p["criterion"]: p for p in run.points}
    assert acc["OBD"]["retrained_accuracy"] >= acc["random"]["retrained_accuracy"] - 0.01, acc
    assert acc["OBD"]["accuracy"] > acc["random"]["accuracy"]
    assert acc["OBD"]["predicted_increase"] > 0
    for (crit, s), m in run.models.items():
        assert abs(P.sparsity(m) - s) < 1e-3


def test_iterative_pruning_reaches_target(digits):
    model = seeded_model(lambda: build_model(ModelConfig(hidden=(16,)), digits.input_shape, 10), 0)
    fit(model, digits.X_train, digits.y_train, TrainConfig(epochs=5, lr=1e-2), seed=0)
    cfg = P.IterativeConfig(target=0.8, step=0.5, epochs=1)
    assert cfg.schedule() == [0.5, 0.75, 0.8]
    seen = []
    run = P.prune_iteratively(model, P.MagnitudeScore(), digits.X_train, digits.y_train, digits.X_val,
                              digits.y_val, cfg, callbacks=[seen.append])
    assert [round(s.sparsity, 3) for s in seen] == [0.5, 0.75, 0.8]
    assert run.done and abs(P.sparsity(model) - 0.8) < 1e-3
    assert seen[-1].accuracy > 0.5
    stopped = P.prune_iteratively(copy.deepcopy(model), P.MagnitudeScore(), digits.X_train, digits.y_train,
                                  digits.X_val, digits.y_val, P.IterativeConfig(target=0.95, step=0.3, epochs=0),
                                  callbacks=[lambda s: True])
    assert len(stopped.steps) == 1 and not stopped.done


# ---------------------------------------------------------------- the page

def _click(at, label):
    next(b for b in at.button if b.label == label).click()
    at.run()


def _shown(at, slot):
    """The stored result of the run the page shows in `slot` (and its id)."""
    from kdcore.runs import RunContext
    from ui import runs
    run_id = at.session_state["current_runs"][(slot, "digits", 0)]
    return runs.runner().store.load_result(run_id, RunContext()), run_id


def test_prune_page(digits_teacher, open_page, wait_for_runs):
    from ui import runs
    at = open_page("pages/prune.py")
    assert not at.exception
    assert any("Compute saliencies" in i.value for i in at.info)
    at.number_input[1].set_value(300)                       # examples for the saliencies
    at.multiselect[0].set_value([0.5, 0.9])                 # curve sparsities
    _click(at, "Compute saliencies")
    wait_for_runs(at)
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) >= 5
    a, analysis_id = _shown(at, "prune")
    assert a.complete and {p["criterion"] for p in a.oneshot} == {"OBD", "magnitude", "random"}
    # a view change recomputes nothing
    n_runs = len(runs.runner().store.workspace_runs(at.session_state["ws"]))
    at.toggle[0].set_value(False)
    at.select_slider[0].set_value(0.9)
    at.run()
    assert not at.exception and not runs.runner().active()
    assert len(runs.runner().store.workspace_runs(at.session_state["ws"])) == n_runs
    assert _shown(at, "prune")[1] == analysis_id
    # retraining the curve points (1 epoch) and registering them
    next(n for n in at.number_input if n.label == "Retraining epochs per point").set_value(1)
    _click(at, "Retrain the pruned models")
    wait_for_runs(at)
    assert not at.exception, at.exception
    r, _ = _shown(at, "prune_retrain")
    assert len(r.points) == 6 and r.complete
    models = at.session_state["session_models"]
    pruned = [r for r in models.values() if r.role == "pruned"]
    assert len(pruned) == 4 and all(abs(r.extra["sparsity"] - float(r.name.split(", ")[1].split(" %")[0]) / 100)
                                    < 1e-3 for r in pruned)
    # iterative pruning, one round of retraining
    next(n for n in at.number_input if n.label == "Retraining epochs per round").set_value(1)
    _click(at, "Prune iteratively")
    wait_for_runs(at)
    assert not at.exception, at.exception
    it, _ = _shown(at, "prune_iter")
    assert it.complete and abs(it.steps[-1].sparsity - 0.9) < 1e-3
    assert any(r.extra.get("how", "").startswith("iterative") for r in at.session_state["session_models"].values())
    # the shared teacher was never modified
    assert P.sparsity(digits_teacher.model) == 0.0


def test_prune_page_exact_on_the_teacher_is_refused(digits_teacher, open_page):
    at = open_page("pages/prune.py")
    at.selectbox[1].set_value("exact")
    _click(at, "Compute saliencies")
    assert not at.exception
    assert any("Hessian-vector product per parameter" in e.value for e in at.error)


def test_prune_page_offers_every_student_a_run_made(digits_teacher, open_page, wait_for_runs):
    """Not only the teacher and the Distill page's students: a Transfer sets run's students (the
    hard-label control included), found in the workspace after a reload, and pruned by a worker that
    rebuilds the model from that run."""
    from kdcore.distill import KDConfig
    from kdcore.runkinds_paper import student_config
    from kdcore.runs import RunSpec
    from ui import runs
    at = open_page("pages/prune.py")
    spec = RunSpec("transfer_omitted", student_config(digits_teacher.spec, ModelConfig(hidden=(8,)),
                                                      TrainConfig(epochs=1, batch_size=64, lr=1e-2),
                                                      KDConfig(temperature=4.0, alpha=0.9, labelled_fraction=1.0),
                                                      0, omitted=3))
    runs.runner().submit(spec, workspace=at.session_state["ws"])
    wait_for_runs(at)   # a run of the workspace that this session did not start (as after a reload)
    assert not at.exception, at.exception
    options = at.selectbox[0].options
    wanted = "transfer: hard labels MLP 8 without class 3"
    assert any(o.startswith(wanted) for o in options), options
    at.selectbox[0].set_value(next(o for o in options if o.startswith(wanted)))
    at.number_input[1].set_value(200)
    at.multiselect[0].set_value([0.5])
    _click(at, "Compute saliencies")
    wait_for_runs(at)
    assert not at.exception, at.exception
    a, _ = _shown(at, "prune")
    assert a.complete and a.n_prunable == 64 * 8 + 8 * 10


def test_predicted_against_actual_is_drawn_against_sparsity():
    """The old scatter of predicted against actual put every point at x ≈ 0 (OBD's predictions are orders
    of magnitude below the actual increase at high sparsity): both now stand against sparsity."""
    from kdcore.viz.pruning import predicted_vs_actual
    points = [{"criterion": "OBD", "sparsity": s, "predicted_increase": p, "actual_increase": a}
              for s, p, a in [(0.5, 1e-4, 2e-3), (0.9, 3e-3, 0.8), (0.98, 2e-2, 2.1)]]
    points.append({"criterion": "magnitude", "sparsity": 0.9, "predicted_increase": float("nan"), "actual_increase": 1.0})
    fig = predicted_vs_actual(points)
    assert [list(t.x) for t in fig.data] == [[50, 90, 98], [50, 90, 98]]
    assert fig.layout.yaxis.type == "log" and "sparsity" in fig.layout.xaxis.title.text
    points[0]["actual_increase"] = -1e-4   # a loss that fell: no log axis
    assert predicted_vs_actual(points).layout.yaxis.type == "linear"
