"""The current teacher for pages that need one: found in the cache, or trained by the job runner.

A teacher trains as a "teacher" run (`kdcore.runkinds`): identical requests from several
sessions share one training, it goes on when the user leaves the page, and a stopped teacher is
kept among the runs but never used as the trained teacher of its settings.
"""

from __future__ import annotations

import streamlit as st

from kdcore import viz
from kdcore.data import Dataset
from kdcore.records import ModelRecord
from kdcore.runs import RunSpec
from kdcore.models import is_imported
from kdcore.teachers import TeacherSpec, TrainedTeacher
from ui import frame
from ui import runs, state

SLOT = "teacher"


def teacher_name(t: TrainedTeacher) -> str:
    return f"teacher {t.spec.model.describe()}"


def run_spec(spec: TeacherSpec) -> RunSpec:
    return RunSpec("teacher", spec.to_dict())


def train(spec: TeacherSpec) -> str:
    """Queue the training of `spec`'s teacher for this workspace (shared with identical requests)."""
    return runs.submit(run_spec(spec), slot=SLOT)


def watch_training(spec: TeacherSpec, key: str) -> bool:
    """Draw the live progress of `spec`'s teacher if it is queued or training (for anyone); True if so."""
    run_id = runs.runner().find_active(run_spec(spec))
    if run_id is None:
        return False
    runs.watch(run_id, key=f"{key}_teacher", label=f"Training the teacher ({spec.model.describe()})",
               chart=lambda c: viz.common.live_curves(c, "Teacher: validation accuracy, live"))
    return True


def warn_if_stopped(ds: Dataset) -> None:
    """Say so when this session's last teacher run was stopped or failed."""
    run_id = state.current_run(SLOT, ds.name, ds.seed)
    v = runs.view(run_id)
    if v is None:
        return
    if v.status == "stopped":
        st.warning("Teacher training was stopped before it finished. The stopped teacher is kept in "
                   "**Runs**, but it is not used as the teacher of these settings: train it again to use it.")
    elif v.status == "failed":
        st.error(f"**Teacher training failed.** {v.error or ''}")


def register(teacher: TrainedTeacher, ds: Dataset) -> None:
    """List the teacher among this session's models (for the Trade-offs view)."""
    spec = teacher.spec
    if is_imported(spec):   # not a network: listed on the frontier, never offered for pruning or quantization
        state.register(ModelRecord(teacher_name(teacher), "teacher", teacher.model, teacher.metrics,
                                   spec.model.describe(), ds.name, ds.seed,
                                   extra={"spec": spec.to_dict(), "imported": True}))
        return
    state.register(ModelRecord(teacher_name(teacher), "teacher", teacher.model, teacher.metrics,
                               f"{spec.model.describe()}, {spec.train.epochs} epochs", ds.name, ds.seed,
                               extra={"spec": spec.to_dict(), "run_spec": run_spec(spec).to_dict()}))


def not_a_network(teacher: TrainedTeacher, what: str) -> bool:
    """Say so (and return True) when the teacher is imported (a forest, boosting, uploaded outputs)
    and `what` needs a network teacher."""
    if not is_imported(teacher.spec):
        return False
    st.info(f"The current teacher is **{teacher.spec.model.describe()}**, not a network: {what}. Choose "
            "“the lab's network teacher” on the **Your data** page to use this with a teacher, or distill "
            "a student on **Distill** first.")
    return True


def require(ds: Dataset, key: str) -> TrainedTeacher:
    """The current teacher (settings from the Distill page, else the defaults).

    If it is not trained yet, show its training's progress (when it is under way) or a button
    that starts it, and stop the page's run until it exists.
    """
    teacher = state.cached_teacher(ds)
    if teacher is not None:
        register(teacher, ds)
        return teacher
    spec = state.teacher_spec(ds)
    if watch_training(spec, key):
        frame.stop()
    warn_if_stopped(ds)
    st.info(f"This page needs a trained teacher. The current one ({spec.model.describe()}, "
            f"{spec.train.epochs} epochs on {ds.name}) is not trained yet.")
    if st.button("Train the teacher", key=f"{key}_train_teacher", type="primary",
                 icon=":material/model_training:"):
        train(spec)
        st.rerun()
    frame.stop()
