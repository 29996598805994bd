"""Models from a small config: an MLP (hidden widths, dropout) and a small CNN.

Both are plain `nn.Sequential`s whose first module flattens or keeps the image,
so pruning and quantization code can walk `model.modules()` and find ordinary
`nn.Linear` / `nn.Conv2d` layers. `param_count` and `model_bytes` give the size
that the Trade-offs views compare.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "mlp"                 # "mlp" or "cnn" (the CNN needs square image inputs)
    hidden: tuple[int, ...] = (64,)   # MLP hidden widths; CNN: widths of the dense layers after the convs
    dropout: float = 0.0              # dropout after each hidden layer (a regularized teacher uses ~0.2-0.5)
    input_dropout: float = 0.0        # dropout on the inputs (Hinton et al. used 0.2 on MNIST)
    channels: tuple[int, ...] = (16, 32)  # CNN only: conv channels, each block conv3x3 -> ReLU -> maxpool2

    def __post_init__(self):
        if self.arch not in ("mlp", "cnn"):
            raise ValueError(f"unknown architecture {self.arch!r}; expected 'mlp' or 'cnn'")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if any(h < 1 for h in self.hidden) or any(c < 1 for c in self.channels):
            raise ValueError("layer widths must be positive")
        if not (0.0 <= self.dropout < 1.0 and 0.0 <= self.input_dropout < 1.0):
            raise ValueError("dropout must be in [0, 1)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        if d.get("arch") in IMPORTED_ARCHS:   # an imported teacher (kdcore.userteachers)
            return ImportedModel.from_dict(d)
        return cls(**{**d, "hidden": tuple(d.get("hidden", ())), "channels": tuple(d.get("channels", (16, 32)))})

    def describe(self) -> str:
        if self.arch == "mlp":
            widths = "-".join(str(h) for h in self.hidden) or "linear"
            reg = f", dropout {self.dropout:g}" if self.dropout else ""
            return f"MLP {widths}{reg}"
        return f"CNN conv {'-'.join(map(str, self.channels))}, dense {'-'.join(map(str, self.hidden))}"


def build_model(config: ModelConfig, input_shape: tuple[int, ...], n_classes: int) -> nn.Sequential:
    """The network of `config` for inputs of `input_shape` and `n_classes` outputs (logits)."""
    layers: list[nn.Module] = []
    if config.arch == "mlp":
        layers.append(nn.Flatten())
        if config.input_dropout:
            layers.append(nn.Dropout(config.input_dropout))
        width = int(math.prod(input_shape))
    else:
        if len(input_shape) != 3:
            raise ValueError("the CNN needs image inputs shaped (channels, height, width)")
        c, h, w = input_shape
        for ch in config.channels:
            if min(h, w) < 2:
                raise ValueError(f"input {input_shape} is too small for {len(config.channels)} conv blocks")
            layers += [nn.Conv2d(c, ch, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c, h, w = ch, h // 2, w // 2
        layers.append(nn.Flatten())
        width = c * h * w
    for h in config.hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        if config.dropout:
            layers.append(nn.Dropout(config.dropout))
        width = h
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_bytes(model: nn.Module, bits: int = 32) -> int:
    """Size of the parameters stored densely at `bits` bits each (float32 by default)."""
    return int(math.ceil(param_count(model) * bits / 8))


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


# ---- teachers that are not networks (kdcore.userteachers trains or reads them) ----

IMPORTED_ARCHS = {"forest": "random forest", "boosting": "histogram gradient boosting",
                  "logits": "uploaded outputs"}


@dataclass(frozen=True)
class ImportedModel:
    arch: str = "forest"       # "forest", "boosting" or "logits"
    estimators: int = 100      # trees (forest) or boosting iterations
    max_depth: int = 12        # deepest tree (0: no limit)
    source: str = ""           # logits: id of the uploaded outputs (kdcore.userdata)
    # what a network's ModelConfig also has, for code that reads a teacher's config
    hidden = ()
    dropout = 0.0
    input_dropout = 0.0
    channels = ()

    def __post_init__(self):
        if self.arch not in IMPORTED_ARCHS:
            raise ValueError(f"unknown imported teacher {self.arch!r}")
        if self.arch != "logits" and not 1 <= self.estimators <= 5000:
            raise ValueError("the number of trees / iterations must be between 1 and 5000")
        if self.max_depth < 0:
            raise ValueError("the depth limit must be 0 (none) or positive")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ImportedModel":
        return cls(**{k: d[k] for k in ("arch", "estimators", "max_depth", "source") if k in d})

    def describe(self) -> str:
        depth = f", depth ≤ {self.max_depth}" if self.max_depth else ""
        if self.arch == "forest":
            return f"random forest, {self.estimators} trees{depth}"
        if self.arch == "boosting":
            return f"gradient boosting, {self.estimators} iterations{depth}"
        return "uploaded outputs"

    @property
    def step_size(self) -> int:
        """Trees or iterations added per step of its run (about 10 steps in all)."""
        return max(1, self.estimators // 10)


def is_imported(spec_or_model) -> bool:
    model = getattr(spec_or_model, "model", spec_or_model)
    return isinstance(model, ImportedModel)
