"""Results to JSON plus tensors, and back: how a run's result is stored.

`encode(obj)` walks a result (dataclasses, lists, dicts, numbers, strings, tensors, numpy
arrays, nn.Modules, Datasets) and returns `(doc, tensors)`: a JSON-able document and a flat
dict of named tensors, written to one safetensors file. `decode(doc, tensors, ctx)` rebuilds it.

- A tensor or array is stored once in `tensors` and referenced by name (bit for bit).
- An nn.Module is stored as its weights (in `tensors`) plus its structure: a pickled copy
  on torch's `meta` device, which holds no numbers. Decoding builds that skeleton and assigns
  the stored weights, so any module kdcore makes (MLPs, CNNs, stacked sweeps, ensembles,
  quantized copies) round-trips without a per-class recipe.
- A Dataset is stored by reference (name and split seed) and loaded again through the run
  context: results never carry a copy of their data.
- Dataclasses are stored with their import path; dict keys that are not strings as item lists.

A document from an older code version may name a class that no longer exists: decoding then
raises `CodecError` with a message that says so, and the store reports the run as unreadable.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import importlib
import io
import math

import numpy as np
import torch
from torch import nn


class CodecError(ValueError):
    """A stored result cannot be rebuilt (missing class, missing tensor, unknown tag)."""


def _qualname(obj) -> str:
    cls = type(obj)
    return f"{cls.__module__}:{cls.__qualname__}"


# classes moved since results were stored under their old paths: old path -> new path
MOVED = {
    "kdcore.tradeoffs:SweepPoint": "kdcore.sizecurve:SizePoint",
    "kdcore.tradeoffs:BitsRow": "kdcore.bitwidths:BitsRow",
    "kdcore.tradeoffs:PipelineStage": "kdcore.pipeline:PipelineStage",
    "kdcore.tradeoffs:Latency": "kdcore.latency:Latency",
    "kdcore.runkinds_compress:SizeSweepResult": "kdcore.runkinds_compress:SizeCurveResult",
    "kdcore.registry:ModelRecord": "kdcore.records:ModelRecord",
}


def _import(path: str):
    mod, _, qual = MOVED.get(path, path).partition(":")
    try:
        obj = importlib.import_module(mod)
        for part in qual.split("."):
            obj = getattr(obj, part)
        return obj
    except (ImportError, AttributeError) as err:
        raise CodecError(f"the stored result names {path}, which this version of the code does not have") from err


class _Encoder:
    def __init__(self):
        self.tensors: dict[str, torch.Tensor] = {}
        self._seen: dict[int, str] = {}   # id of a tensor or module -> its name (stored once)
        self._alive: list = []            # what _seen names stays alive, so no id is reused by another object

    def _tensor(self, t: torch.Tensor) -> str:
        name = self._seen.get(id(t))
        if name is None:
            name = f"t{len(self.tensors)}"
            self.tensors[name] = t.detach().cpu().contiguous().clone()
            self._seen[id(t)] = name
            self._alive.append(t)   # a numpy array's temporary tensor would free its id for the next one
        return name

    def encode(self, obj):
        if obj is None or isinstance(obj, (bool, int, str)):
            return obj
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else {"__f__": repr(obj)}
        if isinstance(obj, (np.floating, np.integer, np.bool_)):
            return self.encode(obj.item())
        if isinstance(obj, torch.Tensor):
            return {"__t__": self._tensor(obj)}
        if isinstance(obj, np.ndarray):
            if obj.dtype == object:
                return {"__list__": [self.encode(x) for x in obj.tolist()]}
            return {"__np__": self._tensor(torch.from_numpy(np.ascontiguousarray(obj)))}
        if isinstance(obj, nn.Module):
            return self._module(obj)
        from kdcore.data import Dataset
        if isinstance(obj, Dataset):
            return {"__ds__": {"name": obj.name, "seed": obj.seed}}
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return {"__dc__": _qualname(obj),
                    "f": {f.name: self.encode(getattr(obj, f.name)) for f in dataclasses.fields(obj)}}
        if isinstance(obj, tuple):
            return {"__tuple__": [self.encode(x) for x in obj]}
        if isinstance(obj, list):
            return [self.encode(x) for x in obj]
        if isinstance(obj, dict):
            if all(isinstance(k, str) and not k.startswith("__") for k in obj):
                return {k: self.encode(v) for k, v in obj.items()}
            return {"__items__": [[self.encode(k), self.encode(v)] for k, v in obj.items()]}
        if hasattr(obj, "to_dict") and hasattr(type(obj), "__module__") and type(obj).__module__.startswith("pandas"):
            return {"__df__": obj.to_dict(orient="split")}
        raise CodecError(f"cannot store a {type(obj).__name__} in a run result")

    def _module(self, m: nn.Module) -> dict:
        name = self._seen.get(id(m))
        if name is not None:
            return {"__nn_ref__": name}
        name = f"m{len(self._seen)}"
        self._seen[id(m)] = name
        state = m.state_dict(keep_vars=False)
        keys = []
        for k, v in state.items():
            self.tensors[f"{name}/{k}"] = v.detach().cpu().contiguous().clone()
            keys.append(k)
        skeleton = copy.deepcopy(m).to("meta")
        buf = io.BytesIO()
        torch.save(skeleton, buf)
        return {"__nn__": name, "keys": keys, "training": m.training,
                "skeleton": base64.b64encode(buf.getvalue()).decode("ascii")}


def encode(obj) -> tuple[object, dict[str, torch.Tensor]]:
    enc = _Encoder()
    doc = enc.encode(obj)
    return doc, enc.tensors


class _Decoder:
    def __init__(self, tensors: dict[str, torch.Tensor], ctx=None):
        self.tensors, self.ctx = tensors, ctx
        self._modules: dict[str, nn.Module] = {}

    def _get(self, name: str) -> torch.Tensor:
        try:
            return self.tensors[name]
        except KeyError:
            raise CodecError(f"the stored weights lack tensor {name!r}") from None

    def decode(self, doc):
        if doc is None or isinstance(doc, (bool, int, float, str)):
            return doc
        if isinstance(doc, list):
            return [self.decode(x) for x in doc]
        if not isinstance(doc, dict):
            raise CodecError(f"unexpected stored value {doc!r}")
        if "__f__" in doc:
            return float(doc["__f__"])
        if "__t__" in doc:
            return self._get(doc["__t__"])
        if "__np__" in doc:
            return self._get(doc["__np__"]).numpy()
        if "__list__" in doc:
            return np.array([self.decode(x) for x in doc["__list__"]], dtype=object)
        if "__nn__" in doc:
            return self._module(doc)
        if "__nn_ref__" in doc:
            return self._modules[doc["__nn_ref__"]]
        if "__ds__" in doc:
            if self.ctx is None:
                raise CodecError("a stored result refers to a dataset, but no context was given to load it")
            return self.ctx.dataset(doc["__ds__"]["name"], doc["__ds__"]["seed"])
        if "__dc__" in doc:
            cls = _import(doc["__dc__"])
            kwargs = {k: self.decode(v) for k, v in doc["f"].items()}
            names = {f.name for f in dataclasses.fields(cls) if f.init}
            obj = cls(**{k: v for k, v in kwargs.items() if k in names})
            for k, v in kwargs.items():   # fields with init=False
                if k not in names:
                    object.__setattr__(obj, k, v)
            return obj
        if "__tuple__" in doc:
            return tuple(self.decode(x) for x in doc["__tuple__"])
        if "__items__" in doc:
            return {_hashable(self.decode(k)): self.decode(v) for k, v in doc["__items__"]}
        if "__df__" in doc:
            import pandas as pd
            d = doc["__df__"]
            return pd.DataFrame(d["data"], index=d["index"], columns=d["columns"])
        return {k: self.decode(v) for k, v in doc.items()}

    def _module(self, doc) -> nn.Module:
        name = doc["__nn__"]
        try:
            skeleton = torch.load(io.BytesIO(base64.b64decode(doc["skeleton"])), weights_only=False)
        except Exception as err:   # a class renamed or removed since the run was stored
            raise CodecError(f"the stored network cannot be rebuilt with this version of the code ({err})") from err
        state = {k: self._get(f"{name}/{k}") for k in doc["keys"]}
        skeleton.load_state_dict(state, strict=True, assign=True)
        if any(t.is_meta for t in list(skeleton.parameters()) + list(skeleton.buffers())):
            raise CodecError("the stored network has tensors that were not stored")
        skeleton.train(doc.get("training", False))
        self._modules[name] = skeleton
        return skeleton


def _hashable(x):
    return tuple(_hashable(v) for v in x) if isinstance(x, list) else x


def decode(doc, tensors: dict[str, torch.Tensor], ctx=None):
    return _Decoder(tensors, ctx).decode(doc)


def modules_in(obj, prefix: str = "") -> dict[str, nn.Module]:
    """The networks inside a result, by a readable path ("distilled", "members[2].model", ...)."""
    found: dict[str, nn.Module] = {}
    seen: set[int] = set()

    def walk(x, path: str, depth: int) -> None:
        if depth > 4 or id(x) in seen:
            return
        seen.add(id(x))
        if isinstance(x, nn.Module):
            found[path or "model"] = x
        elif dataclasses.is_dataclass(x) and not isinstance(x, type):
            for f in dataclasses.fields(x):
                walk(getattr(x, f.name), f"{path}.{f.name}" if path else f.name, depth + 1)
        elif isinstance(x, (list, tuple)):
            for i, v in enumerate(x):
                walk(v, f"{path}[{i}]", depth + 1)
        elif isinstance(x, dict):
            for k, v in x.items():
                walk(v, f"{path}[{k!r}]" if path else str(k), depth + 1)

    walk(obj, prefix, 0)
    return found


def module_file(model: nn.Module, metadata: dict[str, str]) -> bytes:
    """A network's weights as a safetensors file (bytes), with string metadata (its run, config)."""
    from safetensors.torch import save
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    return save(state, metadata=metadata)
