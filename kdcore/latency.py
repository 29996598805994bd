"""CPU latency of a model: the median time of one forward pass, measured so tiny models resolve.

- `time_call(fn)`: the median time of one call of `fn`, each timing averaging enough calls to last a
  couple of milliseconds (a batch-1 forward of a small MLP takes microseconds).
- `measure_latency`, `measure_latencies`: a model's forward pass on a random batch, in eval and
  inference mode, as a `Latency` record (also the threads torch used).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn


def time_call(fn: Callable[[], object], repeats: int = 15, warmup: int = 3,
              target_ms: float = 2.0) -> tuple[float, int]:
    """(median milliseconds per call, calls per timing): after `warmup` calls, `repeats` timings of
    `inner` calls each, `inner` chosen (1 to 200) so a timing lasts about `target_ms`."""
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    inner = int(min(max(1, round(target_ms / 1000 / one)), 200))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return 1000 * statistics.median(times), inner


@dataclass(frozen=True)
class Latency:
    batch_size: int
    median_ms: float      # median time of one forward pass of the whole batch
    repeats: int          # timed repeats (each the mean over `inner` calls)
    inner: int            # calls per repeat (tiny models: several, so the timer resolves them)
    threads: int          # torch.get_num_threads() during the measurement

    @property
    def per_example_us(self) -> float:
        return 1000 * self.median_ms / self.batch_size


def measure_latency(model: nn.Module, input_shape: tuple[int, ...], batch_size: int = 1, repeats: int = 15,
                    warmup: int = 3, target_ms: float = 2.0, seed: int = 0) -> Latency:
    """Median CPU time of `model(x)` for a random batch, in inference mode and eval mode.

    After `warmup` calls, each of `repeats` timings averages `inner` calls, with
    `inner` chosen so a timing lasts about `target_ms` (a batch-1 forward of a tiny
    MLP takes microseconds). Threads: whatever torch uses now (the app's setting).
    """
    x = torch.randn((batch_size, *input_shape), generator=torch.Generator().manual_seed(seed))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            median_ms, inner = time_call(lambda: model(x), repeats, warmup, target_ms)
    finally:
        model.train(was_training)
    return Latency(batch_size, median_ms, repeats, inner, torch.get_num_threads())


def measure_latencies(model: nn.Module, input_shape: tuple[int, ...],
                      batch_sizes: Sequence[int] = (1, 256)) -> dict[int, Latency]:
    return {b: measure_latency(model, input_shape, b) for b in batch_sizes}
