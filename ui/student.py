"""The student and distillation settings shared by pages: width, depth, epochs, T, α, labelled share.

`show(ds, key)` draws the widgets (call it inside an `st.form`) with the dataset's defaults from
`kdcore.presets`; `StudentSettings.configs()` turns what was chosen into the engine's configs.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from ui import frame

from kdcore.data import Dataset
from kdcore.distill import KDConfig
from kdcore.models import ModelConfig
from kdcore.presets import default_kd, default_student
from kdcore.train import TrainConfig

WIDTHS = [2, 4, 8, 16, 32, 64, 128, 256, 800]
FRACTIONS = [0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0]


@dataclass(frozen=True)
class StudentSettings:
    dataset: str
    width: int
    depth: int
    epochs: int
    temperature: float
    alpha: float
    fraction: float

    def configs(self) -> tuple[ModelConfig, TrainConfig, KDConfig]:
        """(student, training, distillation) configs; a bad setting says what is wrong and stops the page."""
        _, train_default = default_student(self.dataset)
        try:
            return (ModelConfig(hidden=(int(self.width),) * int(self.depth)),
                    TrainConfig(**{**train_default.to_dict(), "epochs": int(self.epochs)}),
                    KDConfig(temperature=float(self.temperature), alpha=float(self.alpha),
                             labelled_fraction=float(self.fraction)))
        except ValueError as err:
            st.error(f"These student settings cannot be used: {err}")
            frame.stop()


def show(ds: Dataset, key: str, *, depth: bool = False, fraction: bool = True,
         width_label: str = "Student hidden width") -> StudentSettings:
    """Student and distillation widgets with this dataset's defaults; keys start with `key` (a page's
    prefix: the keys are also the URL's parameters, e.g. ?distill_T=8)."""
    student, train = default_student(ds.name)
    kd = default_kd(ds.name)
    c1, c2 = st.columns(2)
    width = c1.select_slider(width_label, WIDTHS, value=student.hidden[0], key=f"{key}_width", bind="query-params",
                             help="Units in each hidden layer of the student.")
    n_layers = c2.slider("Hidden layers", 1, 3, len(student.hidden), key=f"{key}_depth", bind="query-params") if depth \
        else len(student.hidden)
    temperature = c1.slider("Temperature T", 1.0, 20.0, kd.temperature, 0.5, key=f"{key}_T", bind="query-params",
                            help="Softens the teacher's outputs: p = softmax(z / T).")
    alpha = c2.slider("α (weight of the soft targets)", 0.0, 1.0, kd.alpha, 0.05, key=f"{key}_alpha", bind="query-params",
                      help="Loss = α·T²·KL(teacher ‖ student) + (1−α)·cross-entropy on labels. "
                            "α = 0 gives the teacher no weight: a labels-only run, not a distillation.")
    epochs = c1.number_input("Epochs", 1, 300, train.epochs, key=f"{key}_epochs", bind="query-params")
    share = kd.labelled_fraction
    if fraction:
        share = c2.select_slider("Labelled examples", FRACTIONS,
                                 value=share if share in FRACTIONS else 0.1,
                                 format_func=lambda f: f"{100 * f:g} %", key=f"{key}_fraction", bind="query-params",
                                 help="Share of the training set whose labels the students may use. "
                                      "The distilled student also gets the teacher's soft targets on "
                                      "the rest (an unlabelled transfer set).")
    return StudentSettings(ds.name, int(width), int(n_layers), int(epochs), float(temperature), float(alpha),
                           float(share))
