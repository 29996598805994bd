"""The Sequences page and its run kinds (kdcore.runkinds_seq).

Kinds: driven as runs they give the direct engine calls' numbers, and their results round-trip
through the codec bit for bit. Page: Distill with tiny settings shows the three students' metrics
and the verdict; moving the soft-targets T slider redraws without a new run.
"""

from __future__ import annotations

import pytest
import torch

from kdcore.chunker import ChunkerConfig, ChunkerRun
from kdcore.runs import RunContext, RunSpec, drive, kind
from kdcore.runkinds_seq import chunker_config, seq_distill_config, seq_groups_config, seq_teacher_config
from kdcore.seqdistill import STUDENTS, SeqDistillConfig, SeqDistillRun, SeqModelConfig, SeqTeacherConfig, SeqTeacherRun
from kdcore.seqgroups import GroupsIntoOneConfig, GroupsIntoOneRun
from kdcore.sequences import SeqTaskConfig
from kdcore.train import TrainConfig

from tests.test_runkinds_paper import assert_round_trip, weights_equal

TEACHER = SeqTeacherConfig(SeqTaskConfig("events", n_train=60, n_val=20, n_test=40, max_len=12),
                           SeqModelConfig("gru", hidden=16), TrainConfig(epochs=2, batch_size=16, lr=1e-2))
STUDENTS_CFG = SeqDistillConfig(SeqModelConfig("gru", hidden=8), TrainConfig(epochs=2, batch_size=16, lr=1e-2),
                                temperature=2.0, alpha=0.9, n_sequences=30)


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def drive_spec(spec: RunSpec, ctx: RunContext):
    run = kind(spec.kind).make(spec.config, ctx)
    steps = []
    result, status = drive(run, steps.append)
    assert status == "finished" and steps and all(0.0 <= p.fraction <= 1.0 for p in steps)
    assert type(steps[-1]).__name__ == "Progress" and steps[-1].fraction == 1.0
    return result


def direct(run):
    while not run.done:
        run.step()
    return run.result()


def test_seq_kinds_are_registered_with_data_names():
    from kdcore.runs import kinds
    assert {"seq_teacher", "seq_distill", "seq_groups", "chunker"} <= set(kinds())
    cfg = seq_distill_config(TEACHER, STUDENTS_CFG, 3)
    assert (cfg["dataset"], cfg["data_seed"]) == ("seq:events", 3)
    assert kind("seq_distill").requires(cfg) == [RunSpec("seq_teacher", seq_teacher_config(TEACHER, 3))]


def test_seq_teacher_and_distill_kinds_equal_the_engine():
    tspec = RunSpec("seq_teacher", seq_teacher_config(TEACHER, 0))
    teacher = drive_spec(tspec, RunContext())
    assert teacher.dataset is None                       # stored by reference: re-made from the config
    back = assert_round_trip(teacher, None)
    t_direct = direct(SeqTeacherRun(TEACHER, 0))
    assert teacher.metrics == t_direct.metrics and weights_equal(teacher.model, t_direct.model)
    assert weights_equal(back.model, t_direct.model)

    # the distill kind gets the (decoded) teacher run's result through the context
    ctx = RunContext(given={tspec.key: back})
    res = drive_spec(RunSpec("seq_distill", seq_distill_config(TEACHER, STUDENTS_CFG, 0)), ctx)
    d_direct = direct(SeqDistillRun(STUDENTS_CFG, t_direct, 0))
    assert res.metrics == d_direct.metrics and res.histories.keys() == d_direct.histories.keys()
    for name in STUDENTS:
        assert weights_equal(res.students[name], d_direct.students[name]), name
    assert_round_trip(res, None)
    assert kind("seq_distill").summary(res)["gain_pts"] == pytest.approx(100 * d_direct.gain)


def test_seq_groups_kind_equals_the_engine():
    cfg = GroupsIntoOneConfig(SeqTaskConfig("events", n_train=48, n_val=16, n_test=32, max_len=10, n_campaigns=2),
                              SeqModelConfig("gru", hidden=8), TrainConfig(epochs=1, batch_size=16, lr=1e-2),
                              SeqModelConfig("gru", hidden=8), TrainConfig(epochs=1, batch_size=16, lr=1e-2))
    res = drive_spec(RunSpec("seq_groups", seq_groups_config(cfg, 1)), RunContext())
    d = direct(GroupsIntoOneRun(cfg, 1))
    assert res.metrics == d.metrics and res.sizes == d.sizes
    assert all(weights_equal(a, b) for a, b in zip(res.group_models, d.group_models))
    assert weights_equal(res.students["distilled"], d.students["distilled"])
    back = assert_round_trip(res, None)
    assert back.summary() == d.summary()


def test_chunker_kind_equals_the_engine():
    cfg = ChunkerConfig(n_train=32, n_test=16, episodes=2, lag=3, hidden=8,
                        train=TrainConfig(epochs=2, batch_size=16, lr=1e-2))
    res = drive_spec(RunSpec("chunker", chunker_config(cfg, 0)), RunContext())
    d = direct(ChunkerRun(cfg, 0))
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in res.history]
    assert strip == [{k: v for k, v in h.items() if k != "seconds"} for h in d.history]
    assert weights_equal(res.automatizer, d.automatizer) and weights_equal(res.chunker, d.chunker)
    assert res.example_owner == d.example_owner
    assert_round_trip(res, None)


# ---------------------------------------------------------------- the page

PAGE = "pages/sequences.py"


def _texts(at) -> str:
    return " ".join(str(e.value) for e in list(at.markdown) + list(at.success) + list(at.info) + list(at.warning))


def test_sequences_page_distills_and_redraws_without_new_runs(open_page, wait_for_runs):
    from kdcore.store import RunStore
    at = open_page(PAGE)
    assert not at.exception
    assert at.title[0].value == "Sequences"
    # tiny settings: a small teacher and students, few epochs
    at.number_input(key="seq_t_epochs_events").set_value(2)
    at.select_slider(key="seq_t_width_events").set_value(16)
    at.number_input(key="seq_s_epochs_events").set_value(2)
    at.number_input(key="seq_s_n_events").set_value(30)
    at.button(key="seq_distill_btn").click().run()
    assert not at.exception, at.exception
    at = wait_for_runs(at)
    assert not at.exception, at.exception
    labels = [m.label for m in at.metric]
    for want in ("Teacher", "Distilled (soft targets)", "Labels only", "Teacher's hard labels"):
        assert want in labels, labels
    verdicts = [s.value for s in list(at.success) + list(at.info) + list(at.warning)]
    assert any("hard labels" in v for v in verdicts), verdicts
    n_runs = len(RunStore().workspace_runs(at.session_state["ws"]))
    assert n_runs == 2    # the teacher (a prerequisite) and the students
    # a new temperature for the soft-targets heatmap: redrawn, nothing trained
    at.slider(key="seq_view_T").set_value(5.0).run()
    assert not at.exception, at.exception
    assert len(RunStore().workspace_runs(at.session_state["ws"])) == n_runs
    assert any("T = 5" in (getattr(c, "proto", None) and c.proto.spec or "") for c in at.get("plotly_chart"))


def test_groups_and_chunker_sections_and_bad_settings(open_page, wait_for_runs):
    at = open_page(PAGE)
    # too few sessions for the campaigns: an error beside the settings, the button disabled, no traceback
    at.slider(key="seq_g_campaigns").set_value(8)
    at.number_input(key="seq_g_sessions").set_value(50).run()
    assert not at.exception
    assert any("at least 80" in e.value for e in at.error)
    assert at.button(key="seq_groups_btn").disabled
    # tiny runs of both sections
    at.slider(key="seq_g_campaigns").set_value(2)
    at.number_input(key="seq_g_sessions").set_value(60)
    at.number_input(key="seq_g_epochs").set_value(1)
    at.number_input(key="seq_g_s_epochs").set_value(1)
    at.number_input(key="seq_c_epochs").set_value(2)
    at.run()
    assert not at.error
    at.button(key="seq_groups_btn").click().run()
    at.button(key="seq_chunker_btn").click().run()
    at = wait_for_runs(at)
    assert not at.exception, at.exception
    labels = [m.label for m in at.metric]
    assert "2 per-campaign models" in labels and "One distilled student" in labels, labels
    texts = [e.value for e in list(at.success) + list(at.warning) + list(at.info)]
    assert any(t.startswith("One distilled student of") for t in texts), texts
    assert any(t.startswith("The chunker's share of the predictions fell") for t in texts), texts
