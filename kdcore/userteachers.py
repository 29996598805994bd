"""Teachers the lab did not design: a scikit-learn ensemble, or a model's outputs uploaded by the user.

Both become ordinary `TrainedTeacher`s, so every page that distills from a teacher's logits (Distill,
Temperature, Sweep, Transfer sets, ...) uses them unchanged:

- **forest** / **boosting**: a `RandomForestClassifier` or `HistGradientBoostingClassifier` fitted
  by the lab on the dataset's training split. Its logits are log-probabilities,
  `log(max(predict_proba, 1e-7))`, so the soft targets at T = 1 are its `predict_proba` (to 1e-7).
  It trains as a "teacher" run, in steps of trees (forest) or boosting iterations (warm start), with
  progress and validation accuracy after each step; the fitted estimator is cached like a network
  teacher (`<key>.pkl` beside `<key>.json` in the teacher cache).
- **logits**: a teacher's outputs uploaded with the dataset (logit or probability columns, or a
  second file aligned by row; `kdcore.userdata`). Nothing is trained: the teacher's logits on each
  split are the stored rows of that split. Its "model" (`LogitTable`) answers for the dataset's own
  rows and says plainly that it has no outputs for any other input.

Their spec is a `TeacherSpec` whose model is an `ImportedModel` (arch "forest", "boosting" or
"logits"): it hashes, serialises and names runs like a network teacher's `ModelConfig`, and
`ModelConfig.from_dict` hands a dict with one of these archs to `ImportedModel`. An imported
teacher is not a network: pages that need one (pruning or quantizing the teacher, FitNets hints)
check `is_imported` and say so.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kdcore.models import IMPORTED_ARCHS, ImportedModel

EPS = 1e-7   # probabilities are clipped here before the logarithm (a forest's zeros would be -inf)


def estimator_for(model: ImportedModel, seed: int):
    """The scikit-learn estimator of `model`, set up to grow by warm start."""
    if model.arch == "forest":
        from sklearn.ensemble import RandomForestClassifier
        return RandomForestClassifier(n_estimators=0, max_depth=model.max_depth or None, warm_start=True,
                                      random_state=seed, n_jobs=1)
    if model.arch == "boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier
        return HistGradientBoostingClassifier(max_iter=0, max_depth=model.max_depth or None, warm_start=True,
                                              early_stopping=False, random_state=seed)
    raise ValueError("uploaded outputs are not fitted")


def grow(est, n: int) -> None:
    if hasattr(est, "n_estimators"):
        est.n_estimators = n
    else:
        est.max_iter = n


class EstimatorModule(nn.Module):
    """A fitted scikit-learn classifier as a module: forward(x) = log(max(predict_proba(x), 1e-7))."""

    def __init__(self, estimator, n_classes: int):
        super().__init__()
        self.estimator = estimator
        self.n_classes = int(n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.estimator.predict_proba(x.detach().reshape(len(x), -1).cpu().numpy().astype(np.float64))
        full = np.zeros((len(x), self.n_classes))
        full[:, np.asarray(self.estimator.classes_, dtype=np.int64)] = p
        return torch.from_numpy(np.log(np.maximum(full, EPS))).float()


def _row_keys(X: torch.Tensor) -> list[bytes]:
    a = np.ascontiguousarray(X.detach().reshape(len(X), -1).cpu().numpy(), dtype=np.float32)
    return [hashlib.blake2b(row.tobytes(), digest_size=12).digest() for row in a]


class LogitTable(nn.Module):
    """Uploaded outputs as a module: the stored logits of the dataset's own rows, found by their inputs."""

    def __init__(self, X: torch.Tensor, logits: torch.Tensor):
        super().__init__()
        self.register_buffer("table", logits.float().clone())
        self.index = {k: i for i, k in enumerate(_row_keys(X))}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idx = [self.index.get(k) for k in _row_keys(x)]
        if any(i is None for i in idx):
            raise ValueError("an uploaded teacher has outputs only for the rows of its dataset, not for new inputs")
        return self.table[torch.tensor(idx, dtype=torch.long)].to(x.device)


def _size_metrics(est) -> dict:
    """Nodes of all trees (a forest's or a booster's 'parameters') and the pickled size in bytes."""
    nodes = 0
    if hasattr(est, "estimators_"):
        nodes = sum(int(t.tree_.node_count) for t in est.estimators_)
    elif hasattr(est, "_predictors"):
        nodes = sum(len(p.nodes) for it in est._predictors for p in it)
    return {"params": nodes, "bytes": len(pickle.dumps(est, protocol=pickle.HIGHEST_PROTOCOL)),
            "imported": True}


def teacher_from_estimator(spec, dataset, est, history: list[dict], from_cache: bool, complete: bool = True):
    from kdcore.teachers import make_teacher
    t = make_teacher(spec, dataset, EstimatorModule(est, dataset.n_classes), history, from_cache, complete,
                     trained_on="cpu")
    t.metrics.update(_size_metrics(est))
    return t


def logits_teacher(spec, dataset):
    """The TrainedTeacher of uploaded outputs: each split's stored rows, no training."""
    from kdcore import userdata
    from kdcore.metrics import evaluate
    from kdcore.teachers import TrainedTeacher
    if not userdata.is_user_dataset(dataset.name):
        raise ValueError("uploaded outputs belong to an uploaded dataset")
    all_logits = torch.from_numpy(np.array(userdata.stored_logits(userdata.fingerprint_of(dataset.name),
                                                                  spec.model.source)))
    rows = dataset.extra["rows"]
    logits = {s: all_logits[torch.as_tensor(rows[s], dtype=torch.long)] for s in ("train", "val", "test")}
    X_all = torch.cat([dataset.X_train, dataset.X_val, dataset.X_test])
    model = LogitTable(X_all, torch.cat([logits["train"], logits["val"], logits["test"]]))
    metrics = evaluate(model, dataset.X_test, dataset.y_test, logits=logits["test"])
    metrics.update({"params": 0, "bytes": 0, "imported": True})
    return TrainedTeacher(spec, model.eval(), logits, metrics, [], from_cache=True)


def fit_teacher(spec, dataset, stop=None):
    """Fit a forest / boosting teacher without a run (scripts, `TeacherCache.get_or_train`); `stop`: a
    threading.Event, as for a network teacher (checked between steps)."""
    run = SklearnTeacherRun(spec, dataset)
    while not run.done:
        if stop is not None and stop.is_set():
            break
        run.step()
    return run.result()


class SklearnTeacherRun:
    """Fit a forest or boosting teacher in ~10 steps (warm start); validation accuracy after each."""

    def __init__(self, spec, dataset):
        self.spec, self.ds = spec, dataset
        m: ImportedModel = spec.model
        self.est = estimator_for(m, spec.seed)
        self.X = dataset.X_train.reshape(len(dataset.X_train), -1).numpy().astype(np.float64)
        self.y = dataset.y_train.numpy()
        self.Xv = dataset.X_val.reshape(len(dataset.X_val), -1).numpy().astype(np.float64)
        self.yv = dataset.y_val.numpy()
        self.n = 0
        self.history: list[dict] = []

    @property
    def done(self) -> bool:
        return self.n >= self.spec.model.estimators

    def step(self):
        t0 = time.perf_counter()
        m = self.spec.model
        self.n = min(m.estimators, self.n + m.step_size)
        grow(self.est, self.n)
        self.est.fit(self.X, self.y)
        p = self.est.predict_proba(self.Xv)
        full = np.zeros((len(p), self.ds.n_classes))
        full[:, self.est.classes_] = p
        val_loss = float(-np.log(np.maximum(full[np.arange(len(self.yv)), self.yv], EPS)).mean()) if len(p) else float("nan")
        val_acc = float((full.argmax(1) == self.yv).mean()) if len(p) else float("nan")
        self.history.append({"epoch": len(self.history) + 1, "epochs": -(-m.estimators // m.step_size),
                             "train_loss": float("nan"), "train_acc": float("nan"), "val_loss": val_loss,
                             "val_acc": val_acc, "seconds": time.perf_counter() - t0, "name": "teacher"})

    def progress(self):
        from kdcore.runs import Progress, pct
        m = self.spec.model
        what = "trees" if m.arch == "forest" else "iterations"
        text = f"{IMPORTED_ARCHS[m.arch].capitalize()}: {self.n}/{m.estimators} {what}"
        if self.history:
            text += f" · validation accuracy {pct(self.history[-1]['val_acc'])}"
        return Progress(self.n / m.estimators, text, {"teacher": [h["val_acc"] for h in self.history]})

    def result(self):
        if self.n == 0:
            grow(self.est, 1)   # stopped before its first step: one tree, so that there is a model
            self.est.fit(self.X, self.y)
        return teacher_from_estimator(self.spec, self.ds, self.est, list(self.history), from_cache=False,
                                      complete=self.done)


class CachedRun:
    """A teacher that needs no training here (found in the cache, or uploaded outputs)."""

    def __init__(self, teacher):
        self.teacher = teacher
        self.done = True

    def step(self):
        pass

    def progress(self):
        from kdcore.runs import Progress
        return Progress(1.0, "uploaded outputs (nothing to train)" if self.teacher.spec.model.arch == "logits"
                        else "found in the teacher cache")

    def result(self):
        return self.teacher


def make_run(spec, dataset, cache):
    """The run of an imported teacher's "teacher" job."""
    hit = cache.get(spec, dataset)
    if hit is not None:
        return CachedRun(hit)
    return SklearnTeacherRun(spec, dataset)


# ---------------------------------------------------------------- the teacher cache's files

def cache_get(root: Path, spec, dataset):
    """The cached imported teacher of `spec`, or None; uploaded outputs are always 'cached'."""
    if spec.model.arch == "logits":
        try:
            return logits_teacher(spec, dataset)
        except (OSError, KeyError, ValueError):
            return None
    pkl, meta = root / f"{spec.key}.pkl", root / f"{spec.key}.json"
    if not (pkl.exists() and meta.exists()):
        return None
    try:
        info = json.loads(meta.read_text())
        if info["spec"] != spec.to_dict():
            raise ValueError("spec mismatch")
        est = pickle.loads(pkl.read_bytes())   # written by this cache (below), never uploaded
        return teacher_from_estimator(spec, dataset, est, info.get("history", []), from_cache=True)
    except Exception:
        for p in (pkl, meta):
            p.unlink(missing_ok=True)
        return None


def cache_put(root: Path, teacher) -> None:
    if teacher.spec.model.arch == "logits" or not isinstance(teacher.model, EstimatorModule):
        return
    pkl, meta = root / f"{teacher.key}.pkl", root / f"{teacher.key}.json"
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp_p, tmp_m = pkl.with_suffix(".tmp-p"), meta.with_suffix(".tmp-m")
        tmp_p.write_bytes(pickle.dumps(teacher.model.estimator, protocol=pickle.HIGHEST_PROTOCOL))
        tmp_m.write_text(json.dumps({"spec": teacher.spec.to_dict(), "metrics": teacher.metrics,
                                     "history": teacher.history, "saved": time.time()}, indent=1))
        os.replace(tmp_p, pkl)
        os.replace(tmp_m, meta)
    except OSError:
        pass


def teacher_spec(dataset_name: str, data_seed: int, model: ImportedModel, seed: int = 0):
    from kdcore.teachers import TeacherSpec
    from kdcore.train import TrainConfig
    return TeacherSpec(dataset_name, data_seed, model, TrainConfig(epochs=1), seed)
