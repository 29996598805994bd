"""Sequences engine: per-step kd_loss with padding against a loop over steps, the embedded Reber
grammar against an independent regular expression, the chunker's state-prediction loss, the
teacher's-hard-labels control against plain cross-entropy, and same-seed determinism."""

import copy
import json
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdcore.chunker import ChunkerConfig, ChunkerRun
from kdcore.losses import IGNORE_LABEL, sequence_kd_loss
from kdcore.seqdistill import (STUDENTS, SeqDistillConfig, SeqDistillRun, SeqModelConfig, SeqTeacherConfig,
                               SeqTeacherRun, train_seq_teacher)
from kdcore.sequences import REBER_SYMBOLS, SeqTaskConfig, generate_embedded_reber, is_embedded_reber
from kdcore.train import TrainConfig, scheduled_lr

# The embedded Reber grammar written independently of kdcore's automaton: the inner Reber grammar as a
# regular expression (states 4 and 5 of the usual drawing unrolled), embedded with a back-reference.
_S4_TO_END = "(XT*VP)*(S|XT*VV)"
_INNER = f"B(TS*X{_S4_TO_END}|PT*V(V|P{_S4_TO_END}))E"
EMBEDDED_REBER = re.compile(f"^B([TP]){_INNER}\\1E$")



@pytest.fixture(autouse=True)
def one_thread():
    """These models are tiny: one thread is faster than two, and much faster on a busy machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


TINY_TEACHER = SeqTeacherConfig(SeqTaskConfig("reber", n_train=60, n_val=20, n_test=40),
                                SeqModelConfig("gru", hidden=16), TrainConfig(epochs=2, batch_size=16, lr=1e-2))


def test_sequence_kd_loss_with_padding_equals_a_loop_over_steps():
    torch.set_default_dtype(torch.float64)
    try:
        g = torch.Generator().manual_seed(0)
        B, L, C = 6, 9, 5
        s, t = 3 * torch.randn(B, L, C, generator=g), 3 * torch.randn(B, L, C, generator=g)
        y = torch.randint(0, C, (B, L), generator=g)
        lengths = torch.tensor([9, 1, 4, 7, 2, 5])
        mask = torch.arange(L)[None] < lengths[:, None]
        y[~mask] = IGNORE_LABEL                       # padding
        y[0, 3] = y[3, 0] = IGNORE_LABEL               # two real but unlabelled steps: soft term only
        s[~mask] = 1e3                                 # garbage on padding must not matter
        for T, a in ((1.0, 0.0), (4.0, 0.5), (2.0, 0.9), (3.0, 1.0)):
            soft_sum = ce_sum = 0.0
            n_real = n_lab = 0
            for step in range(L):                      # one time step at a time, its real rows only
                rows = mask[:, step]
                if not rows.any():
                    continue
                st, tt, yt = s[rows, step], t[rows, step], y[rows, step]
                soft_sum += T ** 2 * F.kl_div(F.log_softmax(st / T, -1), F.softmax(tt / T, -1), reduction="sum")
                lab = yt != IGNORE_LABEL
                ce_sum += F.cross_entropy(st[lab], yt[lab], reduction="sum") if lab.any() else 0.0
                n_real, n_lab = n_real + int(rows.sum()), n_lab + int(lab.sum())
            reference = a * soft_sum / n_real + (1 - a) * ce_sum / n_lab
            assert abs(float(sequence_kd_loss(s, t, y, mask, T, a)) - float(reference)) < 1e-6, (T, a)
    finally:
        torch.set_default_dtype(torch.float32)


def test_reber_strings_are_accepted_and_corrupted_ones_rejected():
    rng = np.random.default_rng(0)
    strings = [generate_embedded_reber(rng, 30)[0] for _ in range(300)]
    assert len({s[1] for s in strings}) == 2 and max(map(len, strings)) > 15   # both branches, some long loops
    for s in strings:
        assert EMBEDDED_REBER.match(s), s
        assert is_embedded_reber(s), s
    checked = rejected = 0
    for s in strings[:60]:
        swapped = s[:-2] + ("P" if s[-2] == "T" else "T") + "E"     # the end does not repeat the 2nd symbol
        assert not is_embedded_reber(swapped) and not EMBEDDED_REBER.match(swapped)
        assert not is_embedded_reber(s[:-1]) and not is_embedded_reber(s + "E")
        for i in range(len(s)):                                    # every one-symbol substitution
            for c in REBER_SYMBOLS:
                if c != s[i]:
                    corrupted = s[:i] + c + s[i + 1:]
                    assert is_embedded_reber(corrupted) == bool(EMBEDDED_REBER.match(corrupted)), corrupted
                    checked += 1
                    rejected += not is_embedded_reber(corrupted)
    assert rejected > 0.95 * checked


def test_chunker_state_prediction_loss_decreases_on_a_toy():
    """The automatizer's error at predicting the chunker's state falls once the chunker's input stream
    has settled. (Each time the automatizer takes over a part of the sequence, those symbols stop
    reaching the chunker and its states change: the target moves, and the loss jumps before falling.)"""
    config = ChunkerConfig(n_train=96, n_test=32, episodes=2, lag=6, hidden=16,
                           train=TrainConfig(epochs=12, batch_size=16, lr=1e-2))
    run = ChunkerRun(config, seed=0)
    while not run.done:
        run.step()
    h = run.history
    assert h[-1]["share_predictable"] < 0.05 < h[0]["share_predictable"]   # A took over the easy parts
    settled = next(i for i in range(len(h)) if all(abs(e["share_all"] - h[-1]["share_all"]) < 0.01 for e in h[i:]))
    assert settled < len(h) - 4
    assert h[-1]["state_loss"] < 0.75 * h[settled]["state_loss"], [e["state_loss"] for e in h]
    assert h[-1]["state_relative_test"] < 0.75 * h[settled]["state_relative_test"]
    result = run.result()
    assert len(result.example) == len(result.example_owner) + 1


def test_teachers_hard_labels_control_is_plain_cross_entropy_on_the_argmax():
    teacher = train_seq_teacher(TINY_TEACHER, seed=0)
    config = SeqDistillConfig(SeqModelConfig("gru", hidden=8), TrainConfig(epochs=1, batch_size=64, lr=1e-2),
                              n_sequences=40)
    run = SeqDistillRun(config, teacher, seed=0)
    init = copy.deepcopy(run.students["hard_labels"])
    for name in STUDENTS:                            # the three students start from one initialization
        for p_student, p_init in zip(run.students[name].parameters(), init.parameters()):
            assert torch.equal(p_student, p_init)
    part = teacher.dataset.train.subset(range(40))
    with torch.no_grad():
        t_logits = teacher.model.eval()(part.tokens)
    real = part.mask
    argmax_labels = t_logits.argmax(-1)[real]
    # one batch holds every sequence: one optimizer step on plain CE against the teacher's argmax
    reference = copy.deepcopy(init)
    opt = torch.optim.AdamW(reference.parameters(), lr=scheduled_lr(config.train, 0, 1), weight_decay=0.0)
    length = int(part.lengths.max())
    logits = reference(part.tokens[:, :length])
    loss = F.cross_entropy(logits[real[:, :length]], argmax_labels)
    opt.zero_grad()
    loss.backward()
    opt.step()
    run.step()
    assert abs(run.histories["hard_labels"][0]["train_loss"] - float(loss.detach())) < 1e-6
    for p_run, p_ref in zip(run.students["hard_labels"].parameters(), reference.parameters()):
        assert torch.allclose(p_run, p_ref, atol=1e-6)


def test_same_seed_same_numbers():
    def trio(teacher_config: SeqTeacherConfig, distill_config: SeqDistillConfig):
        teacher_run = SeqTeacherRun(teacher_config, seed=3)
        while not teacher_run.done:
            teacher_run.step()
        teacher = teacher_run.result()
        run = SeqDistillRun(distill_config, teacher, seed=3)
        run.step()
        fraction, text = run.progress()
        assert fraction == 0.5 and "epoch 1 / 2" in text and run.progress().curves["distilled"]
        stopped = run.result()                  # a result before the last epoch: stopped early
        assert stopped.stopped_early and stopped.epochs_run == 1
        while not run.done:
            run.step()
        return teacher, run.result()

    distill = SeqDistillConfig(SeqModelConfig("gru", hidden=8, dropout=0.2), TrainConfig(epochs=2, batch_size=16),
                               n_sequences=40)
    t1, r1 = trio(TINY_TEACHER, distill)
    # the same settings after a trip through JSON give the same numbers
    t2, r2 = trio(SeqTeacherConfig.from_dict(json.loads(json.dumps(TINY_TEACHER.to_dict()))),
                  SeqDistillConfig.from_dict(json.loads(json.dumps(distill.to_dict()))))
    assert t1.metrics == t2.metrics and r1.metrics == r2.metrics and not r1.stopped_early
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]
    for name in STUDENTS:
        assert strip(r1.histories[name]) == strip(r2.histories[name])
    assert r1.summary() == r2.summary()
