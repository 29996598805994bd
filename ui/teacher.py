"""The current teacher for pages that need one: found in the cache, or trained here with progress."""

from __future__ import annotations

import streamlit as st

from kdcore import figures
from kdcore.data import Dataset
from kdcore.registry import ModelRecord
from kdcore.teachers import TeacherSpec, TrainedTeacher, train_teacher
from ui import state
from ui.live import LiveProgress

TEACHER_LIVE = "teacher_training"    # set while a teacher trains; found set on the next run = it was stopped


def teacher_name(t: TrainedTeacher) -> str:
    return f"teacher {t.spec.model.describe()}"


def warn_if_stopped() -> None:
    """Call once near the top of a page that trains teachers."""
    if st.session_state.pop(TEACHER_LIVE, False):
        st.warning("Teacher training was stopped before it finished; a stopped teacher is not kept. "
                   "Train it again to use it.")


def train_live(ds: Dataset, spec: TeacherSpec, key: str) -> TrainedTeacher:
    """Train (or fetch from the cache) the teacher of `spec`, drawing progress and a live curve."""
    cache = state.teacher_cache()
    teacher = cache.get(spec, ds)
    if teacher is None:
        live = LiveProgress(f"Training the teacher ({spec.model.describe()})…", key=key)
        st.session_state[TEACHER_LIVE] = True
        logs: list[dict] = []

        def on_epoch(log):
            logs.append(vars(log).copy())
            live.update(log.epoch / log.epochs,
                        f"Teacher: epoch {log.epoch}/{log.epochs} · validation accuracy {100 * log.val_acc:.1f} %",
                        figures.training_curves({"teacher": logs}, "val_acc", "Teacher: validation accuracy"))

        teacher = train_teacher(spec, ds, callbacks=[on_epoch])
        cache.trained += 1
        cache.put(teacher)
        st.session_state.pop(TEACHER_LIVE, None)
        live.clear()
    state.set_teacher_spec(spec)
    register(teacher, ds)
    return teacher


def register(teacher: TrainedTeacher, ds: Dataset) -> None:
    """List the teacher among this session's models (for the Trade-offs view)."""
    spec = teacher.spec
    state.register(ModelRecord(teacher_name(teacher), "teacher", teacher.model, teacher.metrics,
                               f"{spec.model.describe()}, {spec.train.epochs} epochs", ds.name, ds.seed,
                               extra={"spec": spec.to_dict()}))


def require(ds: Dataset, key: str) -> TrainedTeacher:
    """The current teacher (settings from the Distill page, else the defaults).

    If it is not trained yet, show a button that trains it here and stop the page's run
    until it exists.
    """
    teacher = state.cached_teacher(ds)
    if teacher is not None:
        register(teacher, ds)
        return teacher
    spec = state.teacher_spec(ds)
    st.info(f"This page needs a trained teacher. The current one ({spec.model.describe()}, "
            f"{spec.train.epochs} epochs on {ds.name}) is not trained yet.")
    if st.button("Train the teacher", key=f"{key}_train_teacher", type="primary",
                 icon=":material/model_training:"):
        return train_live(ds, spec, key=f"{key}_teacher")
    st.stop()
