"""Where training runs: the CPU, or a CUDA GPU when one is present.

`resolve_device("auto")` is the GPU when torch sees one, else the CPU;
"cpu" and "cuda" (or "cuda:1", a `torch.device`) are taken as asked, and
asking for a GPU that is not there raises `DeviceUnavailable` with a message
a page or the command line can show as it is.

Models that kdcore hands back (teachers, students, results) live on the CPU,
whatever device trained them: pages, pruning, quantization and latency
benchmarks all expect CPU models, and a cached teacher is shared by every user.
`cpu_model` gives that CPU view of a model without moving the one in training.

"meta" is accepted too: a device without data, on which a tensor left on the
CPU by mistake raises, so the tests check device placement without a GPU.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class DeviceUnavailable(RuntimeError):
    """The device asked for does not exist on this machine (the message says so plainly)."""


def gpu_available() -> bool:
    return torch.cuda.is_available()


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """A `torch.device` for "auto" (GPU if present, else CPU), "cpu", "cuda", "cuda:N" or a device."""
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        return torch.device("cuda") if gpu_available() else torch.device("cpu")
    try:
        dev = torch.device(device.strip().lower() if isinstance(device, str) else device)
    except (RuntimeError, TypeError) as err:
        raise DeviceUnavailable(f"unknown device {device!r}: use 'auto', 'cpu' or 'cuda'") from err
    if dev.type not in ("cpu", "cuda", "meta"):
        raise DeviceUnavailable(f"device {dev.type!r} is not supported here: use 'auto', 'cpu' or 'cuda'")
    if dev.type == "cuda":
        if not gpu_available():
            raise DeviceUnavailable("a CUDA GPU was asked for, but torch sees none on this machine "
                                    "(use 'cpu' or 'auto')")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceUnavailable(f"there is no GPU {dev.index}: torch sees {torch.cuda.device_count()}")
    return dev


def describe_device(device: str | torch.device | None = "auto") -> str:
    """A short human description: 'CPU (2 threads)' or 'GPU 0: NVIDIA H100 80GB HBM3'."""
    dev = resolve_device(device)
    if dev.type == "cuda":
        i = dev.index if dev.index is not None else torch.cuda.current_device()
        return f"GPU {i}: {torch.cuda.get_device_name(i)}"
    if dev.type == "cpu":
        return f"CPU ({torch.get_num_threads()} threads)"
    return str(dev)


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's first parameter (or buffer); the CPU for a model without any."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def cpu_model(model: nn.Module) -> nn.Module:
    """`model` itself when it is on the CPU, else a CPU copy (the original keeps training where it is)."""
    if model_device(model).type == "cpu":
        return model
    return copy.deepcopy(model).cpu()
