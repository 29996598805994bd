"""Pruning: Optimal Brain Damage saliencies, magnitude and random baselines, masks, retraining.

Optimal Brain Damage (LeCun, Denker & Solla, NIPS 1990) deletes the weights whose
removal is predicted to raise the training loss least. Near a minimum (gradient
≈ 0) and ignoring the Hessian's off-diagonal terms, deleting weight θ_i raises
the loss by its *saliency*

    s_i = ½ · h_ii · θ_i²,     h_ii = ∂²L/∂θ_i²,   L = mean cross-entropy on (X, y)

(model in eval mode: dropout off). Three ways to get the diagonal h_ii:

- ``"exact"``: the true Hessian diagonal by autograd (forward-over-reverse
  Hessian-vector products against basis vectors, batched with `torch.func.vmap`);
  cost ∝ number of parameters, so for small nets only.
- ``"gauss_newton"``: the diagonal of the Gauss–Newton (Levenberg–Marquardt)
  matrix G = (1/N) Σ_n J_nᵀ H_n J_n, with J_n = ∂z_n/∂θ (logits) and
  H_n = diag(p_n) − p_n p_nᵀ the Hessian of the cross-entropy in the logits.
  H_n = Σ_k u_k u_kᵀ with u_k = √p_k (e_k − p) (a square root with C columns),
  so diag(G)_j = (1/N) Σ_n Σ_k (u_kᵀ J_n[:, j])²: backpropagate the C vectors
  u_k once each (batched), and for a Linear layer the per-example gradients
  δ aᵀ square-sum to (Σ_k δ_k²)ᵀ (a²), one matrix product. This is the exact GN
  diagonal; LeCun's 1990 "second-order backprop" further drops the cross terms
  between units of a layer (cheaper, rougher). G is positive semi-definite, so
  GN saliencies are never negative; it leaves out the term Σ (p − y)·∇²z,
  which vanishes where the model fits its targets.
- ``"hutchinson"``: diag(H) ≈ (1/m) Σ_probes v ⊙ (H v) with Rademacher v
  (Bekas, Kokiopoulou & Saad 2007); unbiased, error ∝ 1/√m.

Scores share one interface: an object with ``scores(model) -> {name: Tensor}``
(same shapes as the prunable weights; higher = more important):
`OBDScore`, `MagnitudeScore` (|θ|) and `RandomScore`. How much to prune is
separate: `masks_for_sparsity(scores, sparsity, scope)`. `apply_masks` zeros
the pruned weights and `mask_keeper(masks)` keeps them zero while retraining
(`Trainer(..., after_step=mask_keeper(masks))`). `IterativePruning` repeats
prune k % of what is left / retrain n epochs; `CurveRun` measures accuracy
against sparsity one point per step, for live progress.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass
from typing import Callable, Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, jvp, vmap

from kdcore.train import TrainConfig, Trainer, predict_logits

METHODS = ("gauss_newton", "exact", "hutchinson")
SCOPES = ("global", "layer")


# ---------------------------------------------------------------- parameters, masks

def prunable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The weight tensors of the Linear / Conv2d layers (not biases), by `named_parameters` name."""
    out = {}
    for mod_name, mod in model.named_modules():
        if isinstance(mod, (nn.Linear, nn.Conv2d)):
            out[f"{mod_name}.weight" if mod_name else "weight"] = mod.weight
    return out


def _check_sparsity(sparsity: float) -> None:
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"the sparsity must be between 0 and 1, not {sparsity}")


def _lowest(flat: torch.Tensor, k: int) -> torch.Tensor:
    """Bool mask of the k lowest entries (ties broken by position, so exactly k)."""
    drop = torch.zeros(flat.numel(), dtype=torch.bool)
    if k > 0:
        drop[torch.argsort(flat, stable=True)[:k]] = True
    return drop


def masks_for_sparsity(scores: Mapping[str, torch.Tensor], sparsity: float, scope: str = "global",
                       previous: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Masks (True = keep) removing the lowest-scored fraction `sparsity` of the weights.

    scope "global": one ranking over all tensors (layers lose different fractions);
    "layer": every tensor loses the same fraction. Weights already pruned in
    `previous` masks stay pruned (they count towards the sparsity).
    """
    _check_sparsity(sparsity)
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; expected one of {SCOPES}")
    flat = {}
    for n, s in scores.items():
        s = s.detach().flatten().double().nan_to_num(nan=-math.inf)
        if previous is not None and n in previous:
            s = torch.where(previous[n].flatten(), s, torch.full_like(s, -math.inf))
        flat[n] = s
    if scope == "layer":
        return {n: ~_lowest(s, round(sparsity * s.numel())).view(scores[n].shape) for n, s in flat.items()}
    allv = torch.cat(list(flat.values())) if flat else torch.empty(0)
    drop = _lowest(allv, round(sparsity * allv.numel()))
    out, i = {}, 0
    for n, s in flat.items():
        out[n] = ~drop[i:i + s.numel()].view(scores[n].shape)
        i += s.numel()
    return out


@torch.no_grad()
def apply_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> nn.Module:
    """Zero, in place, the weights whose mask is False; returns the model."""
    params = dict(model.named_parameters())
    for n, m in masks.items():
        if n not in params:
            raise KeyError(f"the model has no parameter {n!r}")
        params[n].mul_(m.to(params[n].dtype))
    return model


def mask_keeper(masks: Mapping[str, torch.Tensor]) -> Callable[[nn.Module], None]:
    """A function for `Trainer(..., after_step=...)` that re-zeros the pruned weights after each update.

    Re-zeroing after the step (rather than only masking gradients) also undoes
    what momentum and AdamW's running averages would move into pruned weights.
    """
    masks = {n: m.clone() for n, m in masks.items()}

    def keep(model: nn.Module) -> None:
        apply_masks(model, masks)
    return keep


def current_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """Masks of the weights that are not exactly zero (what a pruned model keeps)."""
    return {n: p.detach() != 0 for n, p in prunable_parameters(model).items()}


def sparsity(model: nn.Module) -> float:
    """Fraction of the prunable weights that are exactly zero."""
    ps = list(prunable_parameters(model).values())
    total = sum(p.numel() for p in ps)
    return sum(int((p == 0).sum()) for p in ps) / total if total else 0.0


def layer_fractions(masks: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Fraction of each tensor that the masks remove."""
    return {n: 1.0 - float(m.float().mean()) for n, m in masks.items()}


# ---------------------------------------------------------------- Hessian diagonals

def _mean_ce(model: nn.Module, X: torch.Tensor, y: torch.Tensor):
    def loss(params: dict) -> torch.Tensor:
        return F.cross_entropy(functional_call(model, params, (X,)), y)
    return loss


def _chunks(n: int, size: int):
    for i in range(0, n, size):
        yield i, min(n, i + size)


class _EvalMode:
    """Eval mode (dropout off) for the duration, restored after."""

    def __init__(self, model: nn.Module):
        self.model, self.was = model, model.training

    def __enter__(self):
        self.model.eval()

    def __exit__(self, *exc):
        self.model.train(self.was)


def _exact_diagonal(model, X, y, data_chunk: int, basis_chunk: int) -> dict[str, torch.Tensor]:
    params = {n: p.detach() for n, p in model.named_parameters()}
    out = {n: torch.zeros_like(p) for n, p in params.items()}
    for a, b in _chunks(len(X), data_chunk):
        loss = _mean_ce(model, X[a:b], y[a:b])
        weight = (b - a) / len(X)            # the mean over all of X is the weighted mean over chunks
        for name, p in params.items():
            flat = p.flatten()

            def loss_of(v, name=name, shape=p.shape):
                return loss({**params, name: v.view(shape)})
            g = grad(loss_of)

            def hvp(v, g=g, flat=flat):
                return jvp(g, (flat,), (v,))[1]
            m = flat.numel()
            diag = torch.empty(m, dtype=p.dtype)
            for i, j in _chunks(m, basis_chunk):
                idx = torch.arange(i, j)
                basis = torch.zeros(j - i, m, dtype=p.dtype)
                basis[torch.arange(j - i), idx] = 1
                diag[i:j] = vmap(hvp)(basis)[torch.arange(j - i), idx]
            out[name] += weight * diag.view(p.shape)
    return out


def _hutchinson_diagonal(model, X, y, probes: int, seed: int, data_chunk: int,
                         probe_chunk: int) -> dict[str, torch.Tensor]:
    if probes < 1:
        raise ValueError("Hutchinson's estimate needs at least one probe")
    params = {n: p.detach() for n, p in model.named_parameters()}
    names = list(params)
    gen = torch.Generator().manual_seed(seed)
    # the same probes for every data chunk: the estimate is then that of the full-data Hessian
    vs = {n: (torch.randint(0, 2, (probes, *p.shape), generator=gen) * 2 - 1).to(p.dtype)
          for n, p in params.items()}
    out = {n: torch.zeros_like(p) for n, p in params.items()}
    for a, b in _chunks(len(X), data_chunk):
        loss = _mean_ce(model, X[a:b], y[a:b])
        weight = (b - a) / len(X)
        g = grad(lambda ps: loss(ps))
        primals = tuple(params[n] for n in names)

        def hvp(*tangent):
            return jvp(lambda *ps: tuple(g(dict(zip(names, ps))).values()), primals, tangent)[1]
        for i, j in _chunks(probes, probe_chunk):
            hv = vmap(hvp)(*(vs[n][i:j] for n in names))
            for n, h in zip(names, hv):
                out[n] += weight * (vs[n][i:j] * h).sum(0) / probes
    return out


_PASS_THROUGH = (nn.Flatten, nn.Dropout, nn.Identity)   # identities in eval mode, for the MLP fast path


def _is_plain_mlp(model: nn.Module) -> bool:
    return (isinstance(model, nn.Sequential) and any(isinstance(m, nn.Linear) for m in model)
            and all(isinstance(m, (nn.Linear, nn.ReLU) + _PASS_THROUGH) for m in model))


def _gauss_newton_mlp(model: nn.Sequential, X, y, data_chunk: int) -> dict[str, torch.Tensor]:
    """The same GN diagonal for a Sequential of Linear / ReLU / Flatten / Dropout, by hand.

    Backpropagates the C factors as one (C·n, width) matrix per layer (one GEMM each)
    and masks with the ReLU derivative in place: fewer temporaries than autograd.
    """
    mods = list(model)
    first = next(i for i, m in enumerate(mods) if isinstance(m, nn.Linear))
    out = {n: torch.zeros_like(p.detach()) for n, p in model.named_parameters()}
    with torch.no_grad():
        for a, b in _chunks(len(X), data_chunk):
            h = X[a:b]
            inputs: dict[int, torch.Tensor] = {}
            for i, m in enumerate(mods):
                if isinstance(m, nn.Linear):
                    if h.dim() != 2:
                        raise ValueError("Gauss–Newton saliencies need 2-D inputs to Linear layers")
                    inputs[i] = h
                    h = m(h)
                elif isinstance(m, nn.ReLU):
                    inputs[i] = h
                    h = torch.relu(h)
                else:
                    h = m(h)
            p_ = torch.softmax(h, 1)                                          # (n, C)
            n, C = p_.shape
            eye = torch.eye(C, dtype=p_.dtype)
            delta = p_.sqrt().T[:, :, None] * (eye[:, None, :] - p_[None, :, :])  # u_k: (C, n, C)
            delta = delta.reshape(C * n, C)
            for i in range(len(mods) - 1, first - 1, -1):
                m = mods[i]
                if isinstance(m, nn.Linear):
                    d2 = delta.square().view(C, n, -1).sum(0)                 # Σ_k δ_k², per example
                    out[f"{i}.weight"] += d2.T @ inputs[i].square()
                    if m.bias is not None:
                        out[f"{i}.bias"] += d2.sum(0)
                    if i > first:
                        delta = delta @ m.weight.detach()
                elif isinstance(m, nn.ReLU):
                    delta.view(C, n, -1).mul_((inputs[i] > 0).to(delta.dtype))
    return {n: v / len(X) for n, v in out.items()}


def _gauss_newton_diagonal(model, X, y, data_chunk: int) -> dict[str, torch.Tensor]:
    layers = {n: m for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
    prefixes = {f"{n}." if n else "" for n in layers}
    for n, p in model.named_parameters():
        if not any(n == pre + "weight" or n == pre + "bias" for pre in prefixes):
            raise ValueError(f"Gauss–Newton saliencies support Linear and Conv2d layers only; "
                             f"parameter {n!r} belongs to another kind of layer")
    for m in layers.values():
        if isinstance(m, nn.Conv2d) and (m.groups != 1 or m.padding_mode != "zeros" or isinstance(m.padding, str)):
            raise ValueError("Gauss–Newton saliencies support plain Conv2d layers (groups=1, numeric zero padding)")
    out = {n: torch.zeros_like(p, dtype=p.dtype) for n, p in model.named_parameters()}
    seen: dict[str, list] = {}

    def hook(name):
        def f(mod, inp, outp):
            if name in seen:
                raise ValueError(f"layer {name!r} is used twice in one forward pass")
            seen[name] = [inp[0].detach(), outp]
        return f

    handles = [m.register_forward_hook(hook(n)) for n, m in layers.items()]
    req = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in req:
            p.requires_grad_(True)
        for a, b in _chunks(len(X), data_chunk):
            seen.clear()
            with torch.enable_grad():
                logits = model(X[a:b])
            p_ = torch.softmax(logits.detach(), 1)                         # (n, C)
            C = p_.shape[1]
            # columns of a square root of H = diag(p) - p pᵀ: u_k = √p_k (e_k - p)
            eye = torch.eye(C, dtype=p_.dtype)
            U = p_.sqrt().T[:, :, None] * (eye[:, None, :] - p_[None, :, :])   # (C, n, C)
            names = list(seen)
            deltas = torch.autograd.grad(logits, [seen[n][1] for n in names], grad_outputs=U,
                                         is_grads_batched=True)          # each (C, n, *out_shape)
            for name, delta in zip(names, deltas):
                mod, inp = layers[name], seen[name][0]
                pre = f"{name}." if name else ""
                if isinstance(mod, nn.Linear):
                    inp2 = inp.reshape(-1, inp.shape[-1]) ** 2
                    d2 = (delta ** 2).sum(0).reshape(-1, delta.shape[-1])  # Σ_k δ_k², per example
                    if inp.dim() > 2:
                        raise ValueError("Gauss–Newton saliencies need 2-D inputs to Linear layers")
                    out[pre + "weight"] += d2.T @ inp2
                    if mod.bias is not None:
                        out[pre + "bias"] += d2.sum(0)
                else:
                    cols = F.unfold(inp, mod.kernel_size, mod.dilation, mod.padding, mod.stride)  # (n, J, L)
                    dl = delta.flatten(3)                                   # (C, n, O, L)
                    g = torch.einsum("knol,njl->knoj", dl, cols)            # per-example, per-factor grads
                    out[pre + "weight"] += (g ** 2).sum((0, 1)).view_as(mod.weight)
                    if mod.bias is not None:
                        out[pre + "bias"] += (dl.sum(3) ** 2).sum((0, 1))
    finally:
        for h in handles:
            h.remove()
        for p, r in req:
            p.requires_grad_(r)
    return {n: v / len(X) for n, v in out.items()}


def hessian_diagonal(model: nn.Module, X: torch.Tensor, y: torch.Tensor, method: str = "gauss_newton",
                     probes: int = 100, seed: int = 0, data_chunk: int | None = None,
                     basis_chunk: int = 256) -> dict[str, torch.Tensor]:
    """Diagonal of the Hessian (or its Gauss–Newton part) of the mean cross-entropy on (X, y).

    Returns one tensor per entry of `model.named_parameters()` (biases included), in eval
    mode. method: "exact", "gauss_newton" or "hutchinson" (with `probes` Rademacher probes
    drawn from `seed`). See the module docstring for the formulas. data_chunk: examples per
    pass; basis_chunk: vectors per batched Hessian-vector product (basis vectors for "exact",
    probes for "hutchinson"); both only trade memory for speed.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    if len(X) == 0 or len(X) != len(y):
        raise ValueError("saliencies need a non-empty set of examples with one label each")
    with _EvalMode(model):
        if method == "gauss_newton":
            if _is_plain_mlp(model):
                return _gauss_newton_mlp(model, X, y, data_chunk or 2048)
            return _gauss_newton_diagonal(model, X, y, data_chunk or 1024)
        if method == "exact":
            return _exact_diagonal(model, X, y, data_chunk or 4096, basis_chunk)
        return _hutchinson_diagonal(model, X, y, probes, seed, data_chunk or 4096,
                                    probe_chunk=max(1, min(probes, basis_chunk)))


def obd_saliency(model: nn.Module, X: torch.Tensor, y: torch.Tensor, method: str = "gauss_newton",
                 probes: int = 100, seed: int = 0, all_parameters: bool = False) -> dict[str, torch.Tensor]:
    """OBD saliencies s = ½·h_ii·θ² (LeCun et al. 1990) of the prunable weights (or of every parameter).

    h_ii from `hessian_diagonal(model, X, y, method)`: "exact" can be negative away from
    a minimum (then deleting the weight is predicted to lower the loss), "gauss_newton"
    never is.
    """
    h = hessian_diagonal(model, X, y, method, probes, seed)
    keep = dict(model.named_parameters()) if all_parameters else prunable_parameters(model)
    return {n: 0.5 * h[n] * p.detach() ** 2 for n, p in keep.items()}


# ---------------------------------------------------------------- score criteria

class MagnitudeScore:
    """Importance = |θ| (magnitude pruning, e.g. Han et al. 2015): small weights go first."""

    name = "magnitude"

    def scores(self, model: nn.Module) -> dict[str, torch.Tensor]:
        return {n: p.detach().abs() for n, p in prunable_parameters(model).items()}


class RandomScore:
    """Importance drawn uniformly at random (seeded): the baseline any criterion must beat."""

    name = "random"

    def __init__(self, seed: int = 0):
        self.seed = seed

    def scores(self, model: nn.Module) -> dict[str, torch.Tensor]:
        gen = torch.Generator().manual_seed(self.seed)
        return {n: torch.rand(p.shape, generator=gen) for n, p in prunable_parameters(model).items()}


class OBDScore:
    """Importance = OBD saliency ½·h_ii·θ² on (X, y) (LeCun, Denker & Solla 1990), see `obd_saliency`."""

    name = "OBD"

    def __init__(self, X: torch.Tensor, y: torch.Tensor, method: str = "gauss_newton", probes: int = 100,
                 seed: int = 0):
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
        self.X, self.y, self.method, self.probes, self.seed = X, y, method, probes, seed

    def scores(self, model: nn.Module) -> dict[str, torch.Tensor]:
        return obd_saliency(model, self.X, self.y, self.method, self.probes, self.seed)


def unit_scores(scores: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Neuron-level (structured) saliency: the sum of a unit's incoming weights' scores (per output row)."""
    return {n: s.detach().flatten(1).sum(1) for n, s in scores.items()}


def unit_masks(scores: Mapping[str, torch.Tensor], fraction: float, scope: str = "global",
               skip_last: bool = True) -> dict[str, torch.Tensor]:
    """Weight masks removing whole units (rows of a weight tensor) with the lowest summed scores.

    The last tensor (the output layer) is left whole by default: deleting an output
    unit deletes a class.
    """
    names = list(scores)
    units = unit_scores({n: scores[n] for n in (names[:-1] if skip_last else names)})
    keep_units = masks_for_sparsity(units, fraction, scope)
    out = {}
    for n, s in scores.items():
        k = keep_units.get(n)
        out[n] = torch.ones_like(s, dtype=torch.bool) if k is None else \
            k.view(-1, *([1] * (s.dim() - 1))).expand_as(s).clone()
    return out


def criterion_from_name(name: str, X: torch.Tensor, y: torch.Tensor, method: str = "gauss_newton",
                        probes: int = 100, seed: int = 0):
    """"OBD", "magnitude" or "random" as a score object."""
    if name == "OBD":
        return OBDScore(X, y, method, probes, seed)
    if name == "magnitude":
        return MagnitudeScore()
    if name == "random":
        return RandomScore(seed)
    raise ValueError(f"unknown criterion {name!r}")


# ---------------------------------------------------------------- OBD's prediction, evaluation

@torch.no_grad()
def mean_loss(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    """Mean cross-entropy in eval mode."""
    return float(F.cross_entropy(predict_logits(model, X), y))


def predicted_increase(saliency: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]) -> float:
    """OBD's predicted loss increase: the sum of the saliencies of the deleted weights."""
    return float(sum(saliency[n][~m].double().sum() for n, m in masks.items()))


def first_order_increase(model: nn.Module, X: torch.Tensor, y: torch.Tensor,
                         masks: Mapping[str, torch.Tensor]) -> float:
    """The gradient term OBD neglects: Σ over deleted weights of −g_i·θ_i (zero at a minimum)."""
    with _EvalMode(model), torch.enable_grad():
        params = prunable_parameters(model)
        g = torch.autograd.grad(F.cross_entropy(model(X), y), list(params.values()))
    return float(sum((-gi * p.detach())[~masks[n]].double().sum() for (n, p), gi in zip(params.items(), g)))


def pruned_copy(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> nn.Module:
    return apply_masks(copy.deepcopy(model), masks).eval()


def layer_sensitivity(model: nn.Module, scores: Mapping[str, torch.Tensor], levels: Iterable[float],
                      X: torch.Tensor, y: torch.Tensor) -> list[dict]:
    """Accuracy on (X, y) when only one layer is pruned (lowest scores first) to each level."""
    rows = []
    for n, s in scores.items():
        for level in levels:
            m = masks_for_sparsity({n: s}, level, "layer")
            logits = predict_logits(pruned_copy(model, m), X)
            rows.append({"layer": n, "sparsity": float(level),
                         "accuracy": float((logits.argmax(1) == y).float().mean())})
    return rows


# ---------------------------------------------------------------- accuracy against sparsity

@dataclass(frozen=True)
class CurveConfig:
    sparsities: tuple[float, ...] = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98)  # one-shot target sparsities
    scope: str = "global"              # "global" ranking or the same fraction per "layer"
    retrain_epochs: int = 0            # 0: prune only; else fine-tune this long with the masks kept
    lr: float = 1e-3                   # fine-tuning learning rate (a fraction of a from-scratch one)
    batch_size: int = 64               # fine-tuning batch size

    def __post_init__(self):
        for s in self.sparsities:
            _check_sparsity(s)
        if self.scope not in SCOPES:
            raise ValueError(f"unknown scope {self.scope!r}")
        if self.retrain_epochs < 0:
            raise ValueError("retraining epochs cannot be negative")

    def to_dict(self) -> dict:
        return asdict(self)


class CurveRun:
    """Accuracy against sparsity for several criteria, one (criterion, sparsity) point per `step()`.

    Scores are computed once per criterion on the unpruned model (one-shot pruning);
    each point prunes a fresh copy, evaluates it, and optionally retrains it with the
    masks kept and evaluates it again. For criteria with saliencies the point also
    holds OBD's predicted and the actual increase of the loss on (X, y).
    `points` holds every finished point (a partial curve after a stop).
    """

    def __init__(self, model: nn.Module, criteria: Mapping[str, object], X: torch.Tensor, y: torch.Tensor,
                 X_eval: torch.Tensor, y_eval: torch.Tensor, config: CurveConfig = CurveConfig(),
                 seed: int = 0, X_val: torch.Tensor | None = None, y_val: torch.Tensor | None = None,
                 scores: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
                 saliency: Mapping[str, torch.Tensor] | None = None):
        self.model = copy.deepcopy(model).eval()
        self.criteria, self.config, self.seed = dict(criteria), config, seed
        self.X, self.y, self.X_eval, self.y_eval, self.X_val, self.y_val = X, y, X_eval, y_eval, X_val, y_val
        self.scores = dict(scores or {})
        self.saliency = saliency
        self.base_loss = mean_loss(self.model, X, y)
        logits = predict_logits(self.model, X_eval)
        self.base_accuracy = float((logits.argmax(1) == y_eval).float().mean())
        self.todo = [(c, s) for c in self.criteria for s in config.sparsities]
        self.points: list[dict] = []
        self.models: dict[tuple[str, float], nn.Module] = {}

    @property
    def done(self) -> bool:
        return len(self.points) >= len(self.todo)

    @property
    def total(self) -> int:
        return len(self.todo)

    def _scores(self, criterion: str) -> dict[str, torch.Tensor]:
        if criterion not in self.scores:
            self.scores[criterion] = self.criteria[criterion].scores(self.model)
        return self.scores[criterion]

    def step(self) -> dict:
        crit, target = self.todo[len(self.points)]
        t0 = time.perf_counter()
        scores = self._scores(crit)
        masks = masks_for_sparsity(scores, target, self.config.scope)
        pruned = pruned_copy(self.model, masks)
        acc = float((predict_logits(pruned, self.X_eval).argmax(1) == self.y_eval).float().mean())
        point = {"criterion": crit, "sparsity": target, "accuracy": acc, "retrained_accuracy": float("nan"),
                 "actual_increase": mean_loss(pruned, self.X, self.y) - self.base_loss,
                 "predicted_increase": float("nan")}
        if crit == "OBD":   # the OBD scores are the saliencies, unless others were given
            point["predicted_increase"] = predicted_increase(self.saliency or scores, masks)
        if self.config.retrain_epochs:
            cfg = TrainConfig(epochs=self.config.retrain_epochs, batch_size=self.config.batch_size,
                              lr=self.config.lr)
            trainer = Trainer(pruned, self.X, self.y, cfg, self.seed, X_val=self.X_val, y_val=self.y_val,
                              after_step=mask_keeper(masks))
            for _ in range(cfg.epochs):
                trainer.run_epoch()
            pruned.eval()
            point["retrained_accuracy"] = float(
                (predict_logits(pruned, self.X_eval).argmax(1) == self.y_eval).float().mean())
        point["seconds"] = time.perf_counter() - t0
        self.models[(crit, target)] = pruned
        self.points.append(point)
        return point


# ---------------------------------------------------------------- iterative pruning

@dataclass(frozen=True)
class IterativeConfig:
    target: float = 0.9          # final sparsity of the prunable weights
    step: float = 0.3            # each round prunes this fraction of the weights still left
    epochs: int = 2              # retraining epochs after each round (0: prune only)
    scope: str = "global"        # "global" or "layer"
    lr: float = 1e-3             # retraining learning rate
    batch_size: int = 64         # retraining batch size

    def __post_init__(self):
        _check_sparsity(self.target)
        if not 0.0 < self.step < 1.0:
            raise ValueError("the step must be a fraction between 0 and 1")
        if self.epochs < 0:
            raise ValueError("retraining epochs cannot be negative")
        if self.scope not in SCOPES:
            raise ValueError(f"unknown scope {self.scope!r}")

    def schedule(self) -> list[float]:
        """Sparsity after each round: 1 − (1 − step)^r, the last one clipped to the target."""
        out, s = [], 0.0
        while s < self.target - 1e-9:
            s = min(self.target, 1 - (1 - s) * (1 - self.step))
            out.append(s)
        return out

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PruneStep:
    round: int                 # 1-based
    rounds: int                # planned total
    sparsity: float            # fraction of prunable weights now zero
    accuracy_pruned: float     # validation accuracy right after pruning
    accuracy: float            # validation accuracy after retraining (= pruned if no retraining)
    seconds: float             # wall time of the round (scores + retraining)


class IterativePruning:
    """Prune a model in rounds (scores recomputed each round), retraining with masks kept.

    Modifies `model` in place (pass a copy). `step()` runs one round and returns its
    `PruneStep`; `masks` are the current masks; `steps` the rounds done.
    """

    def __init__(self, model: nn.Module, criterion, X: torch.Tensor, y: torch.Tensor, X_val: torch.Tensor,
                 y_val: torch.Tensor, config: IterativeConfig = IterativeConfig(), seed: int = 0):
        self.model, self.criterion, self.config, self.seed = model, criterion, config, seed
        self.X, self.y, self.X_val, self.y_val = X, y, X_val, y_val
        self.plan = config.schedule()
        self.masks = current_masks(model)
        self.steps: list[PruneStep] = []

    @property
    def done(self) -> bool:
        return len(self.steps) >= len(self.plan)

    def _val_acc(self) -> float:
        return float((predict_logits(self.model, self.X_val).argmax(1) == self.y_val).float().mean())

    def step(self) -> PruneStep:
        t0 = time.perf_counter()
        r = len(self.steps)
        scores = self.criterion.scores(self.model)
        self.masks = masks_for_sparsity(scores, self.plan[r], self.config.scope, previous=self.masks)
        apply_masks(self.model, self.masks)
        acc_pruned = self._val_acc()
        acc = acc_pruned
        if self.config.epochs:
            cfg = TrainConfig(epochs=self.config.epochs, batch_size=self.config.batch_size, lr=self.config.lr)
            trainer = Trainer(self.model, self.X, self.y, cfg, self.seed + r, after_step=mask_keeper(self.masks))
            for _ in range(cfg.epochs):
                trainer.run_epoch()
            self.model.eval()
            acc = self._val_acc()
        s = PruneStep(r + 1, len(self.plan), sparsity(self.model), acc_pruned, acc, time.perf_counter() - t0)
        self.steps.append(s)
        return s


def prune_iteratively(model: nn.Module, criterion, X, y, X_val, y_val, config: IterativeConfig = IterativeConfig(),
                      seed: int = 0, callbacks: Iterable[Callable[[PruneStep], bool | None]] = (),
                      stop=None) -> IterativePruning:
    """Run `IterativePruning` to the end (or until a callback returns True / `stop` is set)."""
    run = IterativePruning(model, criterion, X, y, X_val, y_val, config, seed)
    while not run.done:
        s = run.step()
        if any([bool(cb(s)) for cb in callbacks]) or (stop is not None and stop.is_set()):
            break
    return run


# ---------------------------------------------------------------- reading the results (the Prune page's sentences)

def mask_agreement(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float:
    """Share of the weights on which two sets of masks make the same keep/delete decision."""
    same = sum(int((a[n] == b[n]).sum()) for n in a)
    return same / max(sum(a[n].numel() for n in a), 1)


def with_retrained(points: list[dict], retrained: list[dict]) -> list[dict]:
    """The one-shot points, each with the test accuracy of its retrained copy (nan where none was retrained)."""
    after = {(p["criterion"], p["sparsity"]): p["retrained_accuracy"] for p in retrained}
    return [{**p, "retrained_accuracy": after.get((p["criterion"], p["sparsity"]), float("nan"))} for p in points]


def oneshot_verdict(points: list[dict]) -> tuple[str, bool] | None:
    """(sentence, OBD at least as good as magnitude) at the highest sparsity all three criteria reached
    without retraining, or None when one of them is missing there."""
    if not points:
        return None
    top = max(p["sparsity"] for p in points)
    at_top = {p["criterion"]: p["accuracy"] for p in points if p["sparsity"] == top}
    if not {"OBD", "magnitude", "random"} <= set(at_top):
        return None
    o, m, r = (at_top[c] for c in ("OBD", "magnitude", "random"))
    text = (f"At {100 * top:g} % sparsity without retraining: OBD {100 * o:.1f} %, magnitude {100 * m:.1f} %, "
            f"random {100 * r:.1f} %.")
    if o > max(m, r):
        text += " OBD does best here."
    elif o < m:
        text += " Here OBD does not beat magnitude pruning."
    return text, o >= m
