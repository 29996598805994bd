"""Helpers for the tests of run kinds: drive a spec like the runner does, stop early, round-trip."""

from __future__ import annotations

import torch

from kdcore import codec
from kdcore.runs import RunSpec, drive, kind


def run_spec(spec: RunSpec, ctx, should_stop=None):
    """Make and drive a run of `spec` (its requirements first), store it like the runner; the result."""
    k = kind(spec.kind)
    for req in k.requires(spec.config):
        if ctx.store.find_finished(req.key) is None:
            run_spec(req, ctx)
    for part in k.parts(spec.config):   # the runner trains them side by side; here one after the other
        if ctx.store.find_finished(part.key) is None:
            run_spec(part, ctx)
    run = k.make(spec.config, ctx)
    result, status = drive(run, should_stop=should_stop)
    rec = ctx.store.create(spec, spec.kind)
    ctx.store.save_result(rec.id, result, status, 0.0)
    return result, status


def stop_after(n):
    """A should_stop() that lets n steps run."""
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > n
    return should_stop


def roundtrip(result, ctx):
    doc, tensors = codec.encode(result)
    back = codec.decode(doc, tensors, ctx)
    d2, t2 = codec.encode(back)
    assert type(d2) is type(doc)
    assert tensors.keys() == t2.keys() and all(torch.equal(tensors[k], t2[k]) for k in tensors)
    return back
