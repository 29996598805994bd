"""The trade-off itself: which models are worth keeping on accuracy against size and speed.

- `pareto_front`: which models no other model beats on both cost and accuracy.
- `TradeoffPoint`, `tradeoff_points`: one point per model record (size in its honest encoding,
  latencies when measured).
- `stakeholder_summary`: plain sentences on how small the models get against the teacher.

The models come from elsewhere: `kdcore.sizecurve` (students of several widths), `kdcore.bitwidths`
(PTQ vs QAT), `kdcore.pipeline` (distill → prune → quantize), `kdcore.latency` (timings); the
figures are in `kdcore.viz.tradeoffs`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from kdcore.latency import Latency
from kdcore.models import format_bytes
from kdcore.quantize import FLOAT_BITS
from kdcore.records import ModelRecord


# ---------------------------------------------------------------- Pareto frontier

def pareto_front(costs: Sequence[float], accuracies: Sequence[float]) -> list[int]:
    """Indices of the non-dominated points, cheapest first.

    A point is dominated when another one costs no more and is at least as
    accurate, and is strictly better in one of the two. Exact duplicates of a
    frontier point are on the frontier too. Points with a missing (nan) cost or
    accuracy are ignored.
    """
    ok = [i for i in range(len(costs))
          if not (math.isnan(float(costs[i])) or math.isnan(float(accuracies[i])))]
    order = sorted(ok, key=lambda i: (float(costs[i]), -float(accuracies[i])))
    front: list[int] = []
    best = -math.inf
    for i in order:
        c, a = float(costs[i]), float(accuracies[i])
        if a > best:
            front.append(i)
            best = a
        elif front and a == best and c == float(costs[front[-1]]):
            front.append(i)   # an exact duplicate of the last frontier point
    return front


# ---------------------------------------------------------------- points and records

@dataclass
class TradeoffPoint:
    name: str
    role: str
    accuracy: float                 # test accuracy, a fraction
    bytes: int                      # honest size in its encoding
    recipe: str
    params: int = 0
    bits: int = FLOAT_BITS
    encoding: str = "dense"
    latency_b1_ms: float = math.nan
    latency_b256_ms: float = math.nan

    def row(self) -> dict:
        return {"model": self.name, "role": self.role, "test accuracy (%)": 100 * self.accuracy,
                "size (bytes)": self.bytes, "size": format_bytes(self.bytes), "bits": self.bits,
                "encoding": self.encoding, "parameters": self.params,
                "latency batch 1 (ms)": self.latency_b1_ms, "latency batch 256 (ms)": self.latency_b256_ms,
                "recipe": self.recipe}


def tradeoff_points(records: Iterable[ModelRecord],
                    latencies: dict[str, dict[int, Latency]] | None = None) -> list[TradeoffPoint]:
    """One point per record (latencies by record name, when measured)."""
    latencies = latencies or {}
    points = []
    for r in records:
        lat = latencies.get(r.name, {})
        points.append(TradeoffPoint(
            r.name, r.role, r.accuracy, r.bytes, r.recipe, int(r.metrics.get("params", 0)),
            int(r.extra.get("bits", FLOAT_BITS)), str(r.extra.get("encoding", "dense")),
            lat[1].median_ms if 1 in lat else math.nan, lat[256].median_ms if 256 in lat else math.nan))
    return points


def stakeholder_summary(points: Sequence[TradeoffPoint], teacher: TradeoffPoint | None) -> list[str]:
    """Plain sentences: how small the models get against the teacher, and what it costs."""
    if teacher is None or not points:
        return []
    others = [p for p in points if p is not teacher]
    if not others:
        return ["Only the teacher has been made so far: distill, prune or quantize a model to compare."]

    def versus(p: TradeoffPoint) -> str:
        ratio = teacher.bytes / max(p.bytes, 1)
        gap = 100 * (teacher.accuracy - p.accuracy)
        size = (f"{ratio:.0f} × smaller than the teacher" if ratio >= 10 else
                f"{ratio:.1f} × smaller than the teacher" if ratio >= 1.05 else "about as large as the teacher")
        cost = (f"loses {gap:.1f} points" if gap >= 0.05 else f"gains {-gap:.1f} points" if gap <= -0.05
                else "loses nothing")
        return (f"the {p.name} is {size} ({format_bytes(p.bytes)} vs {format_bytes(teacher.bytes)}) "
                f"and {cost} of test accuracy ({100 * p.accuracy:.1f} % vs {100 * teacher.accuracy:.1f} %)")

    front = [points[i] for i in pareto_front([p.bytes for p in points], [p.accuracy for p in points])]
    lines = []
    smallest = front[0]
    if smallest is not teacher:
        lines.append(f"Smallest model worth keeping: {versus(smallest)}.")
    close = [p for p in others if 100 * (teacher.accuracy - p.accuracy) <= 1.0 and p.bytes < teacher.bytes]
    if close:
        best = min(close, key=lambda p: (p.bytes, -p.accuracy))
        if best is not smallest:
            lines.append(f"Smallest model within 1 point of the teacher: {versus(best)}.")
    else:
        lines.append("No smaller model comes within 1 point of the teacher yet.")
    dominated = [p for p in others if p not in front]
    if dominated:
        one = len(dominated) == 1
        lines.append(f"{len(dominated)} of the {len(points)} models {'is' if one else 'are'} dominated: another "
                     f"model is at least as small and at least as accurate, so there is no reason to ship "
                     f"{'it' if one else 'them'}.")
    return lines
