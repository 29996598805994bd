"""Trained teachers, cached in memory and on disk, keyed by what made them.

A `TeacherSpec` (dataset, split seed, model config, training config, seed)
hashes to a key; `TeacherCache.get_or_train(spec, dataset)` returns the
`TrainedTeacher` for it, training only when neither the memory nor the disk
cache has it. On disk a teacher is `<key>.safetensors` (weights) beside
`<key>.json` (spec, metrics, history). A file that cannot be read back is
deleted and the teacher retrained: a corrupted cache never crashes the app.

A TrainedTeacher carries its logits on every split, computed once when it is
made, so the soft targets of the transfer set are never recomputed per batch.
It is shared between users and reruns: treat it as read-only (copy the model
before pruning or fine-tuning it: `teacher.clone_model()`).

A teacher may train on a GPU (`device=`); its model is then moved to the CPU
once its logits are computed, like every model kdcore hands back. The device is
not part of the key (the config is the same teacher on any device, though the
last digits differ); the JSON beside the weights records which one trained it.

A spec whose model is an `ImportedModel` (a scikit-learn ensemble, or a teacher's outputs uploaded
with a dataset) is handled by `kdcore.userteachers`: its fitted estimator is cached as `<key>.pkl`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch
from torch import nn

from kdcore.data import Dataset
from kdcore.device import model_device
from kdcore.metrics import evaluate
from kdcore.models import ModelConfig, build_model, is_imported
from kdcore.paths import default_cache_dir
from kdcore.train import EpochLog, History, TrainConfig, fit, predict_logits, seeded_model, skeleton_model

CACHE_FORMAT = 1  # bump when the stored layout or the training code changes what a key means


@dataclass(frozen=True)
class TeacherSpec:
    dataset: str                     # dataset name, e.g. "digits"
    data_seed: int                   # seed of the dataset's split
    model: ModelConfig               # architecture
    train: TrainConfig               # schedule
    seed: int = 0                    # initialization and batch order

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "data_seed": self.data_seed, "seed": self.seed,
                "model": self.model.to_dict(), "train": self.train.to_dict(), "format": CACHE_FORMAT}

    @classmethod
    def from_dict(cls, d: dict) -> "TeacherSpec":
        return cls(d["dataset"], d["data_seed"], ModelConfig.from_dict(d["model"]),
                   TrainConfig(**d["train"]), d["seed"])

    @property
    def key(self) -> str:
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:20]


@dataclass(frozen=True, eq=False)
class TrainedTeacher:
    spec: TeacherSpec
    model: nn.Module                       # eval mode; do not modify (shared)
    logits: dict[str, torch.Tensor]        # 'train' / 'val' / 'test' -> logits at T=1
    metrics: dict                          # test metrics (accuracy, loss, params, bytes, ...)
    history: list[dict] = field(default_factory=list)  # per-epoch logs of its training
    from_cache: bool = False               # loaded rather than trained in this call
    complete: bool = True                  # False if its training was stopped early (never cached)
    trained_on: str = "cpu"                # the device type that trained it ("cpu", "cuda")

    @property
    def key(self) -> str:
        return self.spec.key

    def clone_model(self) -> nn.Module:
        """A private copy of the network, safe to prune or fine-tune."""
        return copy.deepcopy(self.model)


def _build(spec: TeacherSpec, dataset: Dataset) -> nn.Module:
    return build_model(spec.model, dataset.input_shape, dataset.n_classes)


def make_teacher(spec: TeacherSpec, dataset: Dataset, model: nn.Module, history: list[dict],
                 from_cache: bool, complete: bool = True, trained_on: str | None = None) -> TrainedTeacher:
    """Logits on every split (computed on the model's device), test metrics, and the model moved to the CPU."""
    model.eval()
    trained_on = trained_on or model_device(model).type
    logits = {s: predict_logits(model, dataset.split(s)[0]) for s in ("train", "val", "test")}
    metrics = evaluate(model, dataset.X_test, dataset.y_test, logits=logits["test"])
    return TrainedTeacher(spec, model.cpu(), logits, metrics, history, from_cache, complete, trained_on)


def train_teacher(spec: TeacherSpec, dataset: Dataset,
                  callbacks: Iterable[Callable[[EpochLog], bool | None]] = (), stop=None,
                  device: str | torch.device | None = None) -> TrainedTeacher:
    """Train the teacher of `spec` from scratch (no cache involved), on `device` (default: the CPU)."""
    if dataset.name != spec.dataset or dataset.seed != spec.data_seed:
        raise ValueError("the dataset does not match the teacher spec")
    if is_imported(spec):
        from kdcore import userteachers
        if spec.model.arch == "logits":
            return userteachers.logits_teacher(spec, dataset)
        return userteachers.fit_teacher(spec, dataset, stop)   # no epochs: per-epoch callbacks do not apply
    model = seeded_model(lambda: _build(spec, dataset), spec.seed)
    hist: History = fit(model, dataset.X_train, dataset.y_train, spec.train, seed=spec.seed,
                        X_val=dataset.X_val, y_val=dataset.y_val, callbacks=callbacks, stop=stop,
                        name="teacher", device=device)
    return make_teacher(spec, dataset, model, hist.to_records(), from_cache=False,
                        complete=not hist.stopped_early)


class TeacherCache:
    """Memory + disk cache of trained teachers. Thread-safe; one instance per process is enough."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_cache_dir() / "teachers"
        self._memory: dict[str, TrainedTeacher] = {}
        self._lock = threading.Lock()
        self.trained = 0   # how many teachers this cache trained (tests and benchmarks read it)

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.root / f"{key}.safetensors", self.root / f"{key}.json"

    def get(self, spec: TeacherSpec, dataset: Dataset) -> TrainedTeacher | None:
        """The cached teacher of `spec`, or None. A broken file on disk is deleted."""
        with self._lock:
            hit = self._memory.get(spec.key)
        if hit is not None:
            return hit
        if is_imported(spec):   # a scikit-learn ensemble or uploaded outputs (kdcore.userteachers)
            from kdcore import userteachers
            teacher = userteachers.cache_get(self.root, spec, dataset)
            if teacher is not None:
                with self._lock:
                    self._memory[spec.key] = teacher
            return teacher
        weights, meta = self._paths(spec.key)
        if not (weights.exists() and meta.exists()):
            return None
        try:
            from safetensors.torch import load_file
            info = json.loads(meta.read_text())
            if TeacherSpec.from_dict(info["spec"]).key != spec.key:
                raise ValueError("spec mismatch")
            model = skeleton_model(lambda: _build(spec, dataset))
            model.load_state_dict(load_file(str(weights)), strict=True)
        except Exception:
            # unreadable, truncated or from another layout: forget it and retrain
            for p in (weights, meta):
                p.unlink(missing_ok=True)
            return None
        teacher = make_teacher(spec, dataset, model, info.get("history", []), from_cache=True,
                               trained_on=info.get("trained_on", "cpu"))
        with self._lock:
            self._memory[spec.key] = teacher
        return teacher

    def put(self, teacher: TrainedTeacher) -> None:
        if not teacher.complete:
            return  # a stopped training is shown, never cached
        with self._lock:
            self._memory[teacher.key] = teacher
        if is_imported(teacher.spec):
            from kdcore import userteachers
            return userteachers.cache_put(self.root, teacher)
        from safetensors.torch import save_file
        weights, meta = self._paths(teacher.key)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            state = {k: v.detach().cpu().contiguous().clone() for k, v in teacher.model.state_dict().items()}
            tmp_w, tmp_m = weights.with_suffix(".tmp-w"), meta.with_suffix(".tmp-m")
            save_file(state, str(tmp_w))
            tmp_m.write_text(json.dumps({"spec": teacher.spec.to_dict(), "metrics": teacher.metrics,
                                         "history": teacher.history, "trained_on": teacher.trained_on,
                                         "saved": time.time()}, indent=1))
            os.replace(tmp_w, weights)
            os.replace(tmp_m, meta)
        except OSError:
            pass  # a read-only or full disk costs a retrain next time, nothing more

    def get_or_train(self, spec: TeacherSpec, dataset: Dataset,
                     callbacks: Iterable[Callable[[EpochLog], bool | None]] = (), stop=None,
                     device: str | torch.device | None = None) -> TrainedTeacher:
        """The cached teacher of `spec`, else one trained now (on `device`) and cached."""
        teacher = self.get(spec, dataset)
        if teacher is not None:
            return teacher
        teacher = train_teacher(spec, dataset, callbacks, stop, device)
        self.trained += 1
        self.put(teacher)
        return teacher
